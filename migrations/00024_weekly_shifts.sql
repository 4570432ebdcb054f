-- +goose Up
-- Breaks, and shifts and breaks that recur every week.
--
-- A one-off entry in shifts is a shift or (kind 'break') a break: a span in
-- which the technician takes no work. weekly_shifts repeat every week at a
-- clock time in the deployment's time zone (ONSITE_TIME_ZONE): weekday as Go
-- counts it (0 Sunday … 6 Saturday), start in minutes after midnight, and a
-- length in minutes (a night shift runs past midnight).
ALTER TABLE shifts ADD COLUMN kind TEXT NOT NULL DEFAULT 'shift' CHECK (kind IN ('shift', 'break'));

CREATE TABLE weekly_shifts (
    id            TEXT PRIMARY KEY,
    technician_id TEXT NOT NULL REFERENCES technicians (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('shift', 'break')),
    weekday       INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    start_minute  INTEGER NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    minutes       INTEGER NOT NULL CHECK (minutes BETWEEN 1 AND 1440)
);
CREATE INDEX weekly_shifts_technician ON weekly_shifts (technician_id);

-- +goose Down
DROP TABLE weekly_shifts;
ALTER TABLE shifts DROP COLUMN kind;
