-- +goose Up
-- Escalation of requests at risk (dispatch/match/risk.go): since when the
-- request has been at risk (debounced: it leaves only with time to spare),
-- and the furthest step taken (1 wider search, 2 bigger wave, 3 paged,
-- 4 customer told), each once per request and each an "escalated" event.
ALTER TABLE requests ADD COLUMN at_risk_since TIMESTAMP;
ALTER TABLE requests ADD COLUMN escalation INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE requests DROP COLUMN escalation;
ALTER TABLE requests DROP COLUMN at_risk_since;
