-- +goose Up
-- Owners' webhook deliveries: one row per (endpoint, event), written in the
-- same transaction as the event and kept by the database until it is final
-- (delivered, or failed for good with the reason). Redis only holds
-- wake-ups; the sweep re-enqueues whatever is due or whose lease lapsed.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event_id        TEXT NOT NULL REFERENCES events (id),
    request_id      TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    seq             INTEGER NOT NULL,          -- the request's webhook sequence number (requests.webhook_seq)
    body            TEXT NOT NULL,             -- the JSON sent, as of the event
    state           TEXT NOT NULL,             -- pending, delivering, delivered, failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP,                 -- NULL once final
    lease_until     TIMESTAMP,                 -- while delivering: a lapsed lease is retried
    queued_at       TIMESTAMP NOT NULL,        -- retries run for 24 h from here (the event, or a redeliver)
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TIMESTAMP NOT NULL,        -- the event's time
    delivered_at    TIMESTAMP,
    failed_at       TIMESTAMP
);
CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries (endpoint_id, event_id);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, created_at, id);
CREATE INDEX webhook_deliveries_line ON webhook_deliveries (endpoint_id, request_id, seq);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state IN ('pending', 'delivering');

-- The last webhook sequence number given to one of the request's events.
ALTER TABLE requests ADD COLUMN webhook_seq INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE requests DROP COLUMN webhook_seq;
DROP TABLE webhook_deliveries;
