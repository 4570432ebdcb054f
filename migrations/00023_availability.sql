-- +goose Up
-- Availability that matches a day.
--
-- A windowed job assigned before its hold begins is a booking: its
-- assignment is live but not counted in the technician's active_jobs
-- (counted = FALSE) until holds_from (the window's start less the drive
-- there), when the sweep counts it, or the technician sets off earlier.
-- Every other assignment is counted from the start, as before.
ALTER TABLE assignments ADD COLUMN counted BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE assignments ADD COLUMN holds_from TIMESTAMP;
CREATE INDEX assignments_booked ON assignments (holds_from) WHERE counted = FALSE AND ended_at IS NULL;

-- A technician who goes on duty before their shift is kept: on_duty_from is
-- when it takes effect (the shift's start); the shift clock puts them on
-- duty then. NULL: nothing pending.
ALTER TABLE technicians ADD COLUMN on_duty_from TIMESTAMP;
CREATE INDEX technicians_on_duty_from ON technicians (on_duty_from) WHERE on_duty_from IS NOT NULL;

-- +goose Down
DROP INDEX technicians_on_duty_from;
ALTER TABLE technicians DROP COLUMN on_duty_from;
DROP INDEX assignments_booked;
ALTER TABLE assignments DROP COLUMN holds_from;
ALTER TABLE assignments DROP COLUMN counted;
