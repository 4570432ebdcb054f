-- +goose Up
-- Exceptions in the field and call-centre intake (docs/dispatch.md
-- "Exceptions in the field").
--
-- no_show_due_at: a technician at the door found nobody; unless the customer
-- (or the technician) says they are there, the request closes as a no-show at
-- this time. NULL when nobody is waited for.
ALTER TABLE requests ADD COLUMN no_show_due_at TIMESTAMP;
CREATE INDEX requests_no_show_due ON requests (no_show_due_at) WHERE no_show_due_at IS NOT NULL;

-- One open request per device and skill: a fault of another skill opens its
-- own request instead of joining the open one.
DROP INDEX requests_open_device;
CREATE UNIQUE INDEX requests_open_device ON requests (customer_id, device_id, skill_code)
    WHERE device_id IS NOT NULL AND state IN ('pending_confirmation', 'scheduled', 'searching', 'assigned', 'en_route', 'on_site');

-- confirmed_by: who proved a contact phone other than by a code typed back:
-- 'ops:<dispatcher>' for the phone a caller gave a dispatcher (intake).
-- NULL: the customer typed the code texted there.
ALTER TABLE contact_phones ADD COLUMN confirmed_by TEXT;

-- +goose Down
ALTER TABLE contact_phones DROP COLUMN confirmed_by;
DROP INDEX requests_open_device;
CREATE UNIQUE INDEX requests_open_device ON requests (customer_id, device_id)
    WHERE device_id IS NOT NULL AND state IN ('pending_confirmation', 'scheduled', 'searching', 'assigned', 'en_route', 'on_site');
DROP INDEX requests_no_show_due;
ALTER TABLE requests DROP COLUMN no_show_due_at;
