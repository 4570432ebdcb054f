-- +goose Up
-- One retry chain per request (issue 18): when a searching request has
-- no candidate, its next matching round is due at match_retry_at, and no
-- other round schedules another retry before then (the sweep and the
-- task's own round would each start a chain otherwise).
ALTER TABLE requests ADD COLUMN match_retry_at TIMESTAMP;

-- +goose Down
ALTER TABLE requests DROP COLUMN match_retry_at;
