-- +goose Up
-- What the texts need to say true things (jobs/notify.go, docs/messages.md).
--
-- requests.eta_promised_at: the arrival time the customer was last told (at
-- assignment, or in a "running late" text); a predicted arrival that slips
-- well past it tells them again. requests.time_zone: the IANA zone the
-- request's clock times are written in, when the caller gave one (else the
-- deployment's ONSITE_TIME_ZONE).
ALTER TABLE requests ADD COLUMN eta_promised_at TIMESTAMP;
ALTER TABLE requests ADD COLUMN time_zone TEXT;

-- skills.names: the skill's display name by locale, as a JSON object
-- ({"de": "Router ersetzen", ...}); skills.name is the fallback.
ALTER TABLE skills ADD COLUMN names TEXT NOT NULL DEFAULT '{}';

-- technicians.duty_reason: why Onsite last took the technician off duty
-- (shift_ended, no_position, suspended); duty_notice_at: when, while the
-- technician is still to be texted about it (set in the same update,
-- cleared once the text is stored; the sweep finds what a crash left owed).
ALTER TABLE technicians ADD COLUMN duty_reason TEXT;
ALTER TABLE technicians ADD COLUMN duty_notice_at TIMESTAMP;
CREATE INDEX technicians_duty_notice ON technicians (id) WHERE duty_notice_at IS NOT NULL;

-- +goose Down
DROP INDEX technicians_duty_notice;
ALTER TABLE technicians DROP COLUMN duty_notice_at;
ALTER TABLE technicians DROP COLUMN duty_reason;
ALTER TABLE skills DROP COLUMN names;
ALTER TABLE requests DROP COLUMN time_zone;
ALTER TABLE requests DROP COLUMN eta_promised_at;
