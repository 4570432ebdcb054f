-- +goose Up
-- Phones that replied STOP: Onsite sends them nothing until they reply START
-- (notify.Guards; docs/messages.md).
CREATE TABLE sms_optouts (
    phone         TEXT PRIMARY KEY,
    opted_out_at  TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE sms_optouts;
