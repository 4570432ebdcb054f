-- +goose Up
-- Answers to Idempotency-Key calls (internal/idempotency), kept for a day.
-- The first call claims its key by inserting the row (ON CONFLICT DO
-- NOTHING), so the database, not Redis, decides which call runs: a Redis
-- restart cannot turn one key into two resources. state is 'running' until
-- the answer is stored ('done'); claim is the running call's token, so a
-- call taken over after its lease cannot overwrite its successor's answer.
CREATE TABLE idempotency_keys (
    role          TEXT NOT NULL,
    subject       TEXT NOT NULL,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    body_hash     TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('running', 'done')),
    claim         TEXT NOT NULL,
    status        INTEGER NOT NULL DEFAULT 0,
    content_type  TEXT NOT NULL DEFAULT '',
    body          BYTEA,
    created_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (role, subject, method, path, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
