-- +goose Up
-- What keeps Onsite's texts from being used against people (notify, signin).
--
-- contact_phones: phones a customer proved they may be texted about their
-- requests (a code sent there and typed back), beside their sign-in phone.
-- code_hash and expires_at are the pending code; confirmed_at is set once.
CREATE TABLE contact_phones (
    customer_id   TEXT NOT NULL,
    phone         TEXT NOT NULL,
    code_hash     TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    expires_at    TIMESTAMP,
    confirmed_at  TIMESTAMP,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (customer_id, phone)
);

-- sms_counts: texts stored for sending per scope (phone:<E.164> or
-- account:<customer id>) and UTC day, raised by a conditional upsert that
-- stops at the day's cap.
CREATE TABLE sms_counts (
    scope  TEXT NOT NULL,
    day    TEXT NOT NULL,
    sent   INTEGER NOT NULL CHECK (sent >= 0),
    PRIMARY KEY (scope, day)
);

-- sms_withheld: texts Onsite meant to send and did not, and why
-- (contact_unconfirmed, country_not_allowed, cap_phone, cap_account); at
-- most one per message key, like messages.
CREATE TABLE sms_withheld (
    id          TEXT PRIMARY KEY,
    dedupe_key  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    request_id  TEXT,
    recipient   TEXT NOT NULL,
    to_phone    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX sms_withheld_dedupe ON sms_withheld (dedupe_key);
CREATE INDEX sms_withheld_request ON sms_withheld (request_id);
CREATE INDEX sms_withheld_created ON sms_withheld (created_at);

-- +goose Down
DROP TABLE sms_withheld;
DROP TABLE sms_counts;
DROP TABLE contact_phones;
