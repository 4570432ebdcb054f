-- +goose Up
-- The region a request belongs to (an H3 parent cell of its place, or '' when
-- the deployment is one region), so periodic rounds can be partitioned by
-- region across processes.
ALTER TABLE requests ADD COLUMN region TEXT NOT NULL DEFAULT '';
CREATE INDEX requests_region_searching ON requests (region, created_at) WHERE state = 'searching';

-- +goose Down
DROP INDEX requests_region_searching;
ALTER TABLE requests DROP COLUMN region;
