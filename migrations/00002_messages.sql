-- +goose Up
-- Every SMS Onsite sends or means to send. dedupe_key (event, kind,
-- recipient) makes a message exist at most once per event, however often the
-- task that creates it runs.
CREATE TABLE messages (
    id            TEXT PRIMARY KEY,
    dedupe_key    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    request_id    TEXT,
    offer_id      TEXT,
    recipient     TEXT NOT NULL,
    to_phone      TEXT NOT NULL,
    locale        TEXT NOT NULL,
    body          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed')),
    provider_sid  TEXT,
    error         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX messages_dedupe ON messages (dedupe_key);
CREATE INDEX messages_provider_sid ON messages (provider_sid);
CREATE INDEX messages_request ON messages (request_id);

-- +goose Down
DROP TABLE messages;
