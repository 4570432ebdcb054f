-- +goose Up
-- A follow-up request is opened by a visit that closed not_fixed or
-- needs_parts: follow_up_of links it to that request (one follow-up per
-- request), and preferred_technician_id names the technician who came first,
-- who is offered it first when they suit. No foreign key: SQLite cannot drop
-- a column that has one, and the link is written in the transaction that
-- closes the first visit.
ALTER TABLE requests ADD COLUMN follow_up_of TEXT;
ALTER TABLE requests ADD COLUMN preferred_technician_id TEXT;
CREATE UNIQUE INDEX requests_follow_up_of ON requests (follow_up_of) WHERE follow_up_of IS NOT NULL;

-- Where the technician was, by their latest position, when they said they
-- had arrived; an arrival farther than ONSITE_ARRIVAL_RADIUS from the site
-- (or with no position) is flagged for ops and not counted on time.
ALTER TABLE requests ADD COLUMN arrival_distance_m INTEGER;
ALTER TABLE requests ADD COLUMN arrival_flagged BOOLEAN NOT NULL DEFAULT FALSE;

-- The KPIs read requests by creation time, and repeat visits by customer.
CREATE INDEX requests_created ON requests (created_at);

-- +goose Down
DROP INDEX requests_created;
ALTER TABLE requests DROP COLUMN arrival_flagged;
ALTER TABLE requests DROP COLUMN arrival_distance_m;
DROP INDEX requests_follow_up_of;
ALTER TABLE requests DROP COLUMN preferred_technician_id;
ALTER TABLE requests DROP COLUMN follow_up_of;
