-- +goose Up
-- Leases: which process runs a periodic job (per region) right now. The
-- holder renews its row by a conditional update; another process takes it
-- over only once expires_at has passed, and every change of owner raises
-- token, the fencing token its writes are checked against (internal/lease).
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    token      BIGINT NOT NULL CHECK (token >= 1),
    expires_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE leases;
