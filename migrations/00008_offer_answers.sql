-- +goose Up
-- The batch strategy learns the typical answer time from the latest answers.
CREATE INDEX offers_answered ON offers (answered_at) WHERE answered_at IS NOT NULL;

-- +goose Down
DROP INDEX offers_answered;
