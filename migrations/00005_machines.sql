-- +goose Up
-- API keys of machine customers (devices acting for an owner customer),
-- stored hashed; the secret is shown once.
CREATE TABLE machine_keys (
    id            TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL,
    name          TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    auto_confirm  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMP NOT NULL,
    revoked_at    TIMESTAMP
);
CREATE UNIQUE INDEX machine_keys_secret ON machine_keys (secret_hash);

ALTER TABLE requests ADD COLUMN device_id TEXT;
ALTER TABLE requests ADD COLUMN fault_code TEXT;
ALTER TABLE requests ADD COLUMN diagnostics TEXT;
ALTER TABLE requests ADD COLUMN faults INTEGER NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN confirmed_at TIMESTAMP;
-- One open request per device: a second fault is attached to it.
CREATE UNIQUE INDEX requests_open_device ON requests (customer_id, device_id)
    WHERE device_id IS NOT NULL AND state IN ('pending_confirmation', 'scheduled', 'searching', 'assigned', 'en_route', 'on_site');

-- +goose Down
DROP INDEX requests_open_device;
ALTER TABLE requests DROP COLUMN confirmed_at;
ALTER TABLE requests DROP COLUMN faults;
ALTER TABLE requests DROP COLUMN diagnostics;
ALTER TABLE requests DROP COLUMN fault_code;
ALTER TABLE requests DROP COLUMN device_id;
DROP TABLE machine_keys;
