-- +goose Up
-- Durable message delivery: PostgreSQL owns every message until it is final;
-- a task in Redis is only a wake-up (docs/messages.md).
--
-- An event someone is to be told about owes its messages until the worker
-- has stored their rows (messages_owed, cleared by the worker); the sweep
-- wakes the worker again for events that stay owed.
ALTER TABLE events ADD COLUMN messages_owed BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX events_messages_owed ON events (at) WHERE messages_owed;

-- event_id and event_at order the messages of one request to one recipient
-- (they leave in event order); technician_id is the technician a message is
-- about, checked against the request when it is sent; next_attempt_at is
-- when a queued message is due; lease_until is how long a send attempt may
-- hold a message in 'sending' before the sweep takes it back (and asks the
-- provider whether it went out before sending it again).
ALTER TABLE messages ADD COLUMN event_id TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN event_at TIMESTAMP;
ALTER TABLE messages ADD COLUMN technician_id TEXT;
ALTER TABLE messages ADD COLUMN next_attempt_at TIMESTAMP;
ALTER TABLE messages ADD COLUMN lease_until TIMESTAMP;
UPDATE messages SET event_at = created_at;
UPDATE messages SET next_attempt_at = updated_at WHERE state = 'queued';
UPDATE messages SET lease_until = updated_at WHERE state = 'sending';
CREATE INDEX messages_due ON messages (next_attempt_at) WHERE state = 'queued';
CREATE INDEX messages_leased ON messages (lease_until) WHERE state = 'sending';
CREATE INDEX messages_lane ON messages (request_id, recipient, event_at) WHERE state IN ('queued', 'sending');

-- +goose Down
DROP INDEX messages_lane;
DROP INDEX messages_leased;
DROP INDEX messages_due;
ALTER TABLE messages DROP COLUMN lease_until;
ALTER TABLE messages DROP COLUMN next_attempt_at;
ALTER TABLE messages DROP COLUMN technician_id;
ALTER TABLE messages DROP COLUMN event_at;
ALTER TABLE messages DROP COLUMN event_id;
DROP INDEX events_messages_owed;
ALTER TABLE events DROP COLUMN messages_owed;
