-- +goose Up
-- Owners' webhook endpoints: request status changes are POSTed there,
-- signed with the endpoint's secret.
CREATE TABLE webhook_endpoints (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    revoked_at  TIMESTAMP
);
CREATE INDEX webhook_endpoints_owner ON webhook_endpoints (owner_id) WHERE revoked_at IS NULL;

-- +goose Down
DROP TABLE webhook_endpoints;
