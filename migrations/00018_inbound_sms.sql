-- +goose Up
-- Inbound SMS already handled, by Twilio's MessageSid, kept a day: a signed
-- webhook captured and sent again is answered but changes nothing.
CREATE TABLE inbound_sms (
    sid          TEXT PRIMARY KEY,
    received_at  TIMESTAMP NOT NULL
);
CREATE INDEX inbound_sms_received ON inbound_sms (received_at);

-- +goose Down
DROP TABLE inbound_sms;
