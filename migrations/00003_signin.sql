-- +goose Up
-- One-time sign-in codes (stored hashed) and refresh tokens (stored hashed,
-- rotated on every use).
CREATE TABLE otp_codes (
    id          TEXT PRIMARY KEY,
    phone       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('customer', 'technician')),
    code_hash   TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP,
    ip          TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX otp_codes_phone ON otp_codes (phone, role, created_at);

CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL,
    role        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    revoked_at  TIMESTAMP,
    created_at  TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX refresh_tokens_hash ON refresh_tokens (token_hash);

CREATE INDEX customers_phone ON customers (phone);

-- +goose Down
DROP INDEX customers_phone;
DROP TABLE refresh_tokens;
DROP TABLE otp_codes;
