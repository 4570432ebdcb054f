-- +goose Up
-- The same SQL runs on PostgreSQL and SQLite: TEXT ids made by the app
-- (UUIDv7), TIMESTAMP columns holding UTC, and invariants held by CHECK
-- constraints, unique (partial) indexes and conditional updates.

CREATE TABLE skills (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE technicians (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    phone         TEXT NOT NULL,
    locale        TEXT NOT NULL DEFAULT 'en',
    duty_status   TEXT NOT NULL DEFAULT 'offline' CHECK (duty_status IN ('offline', 'available', 'busy')),
    suspended     BOOLEAN NOT NULL DEFAULT FALSE,
    lat           DOUBLE PRECISION,
    lng           DOUBLE PRECISION,
    cell          BIGINT,
    position_at   TIMESTAMP,
    travel_mode   TEXT NOT NULL DEFAULT 'car' CHECK (travel_mode IN ('car', 'bike', 'foot')),
    speed_kmh     DOUBLE PRECISION NOT NULL DEFAULT 25 CHECK (speed_kmh > 0),
    radius_km     DOUBLE PRECISION NOT NULL DEFAULT 30 CHECK (radius_km > 0),
    capacity      INTEGER NOT NULL DEFAULT 1 CHECK (capacity >= 1),
    active_jobs   INTEGER NOT NULL DEFAULT 0 CHECK (active_jobs >= 0 AND active_jobs <= capacity),
    rating        DOUBLE PRECISION NOT NULL DEFAULT 0,
    rating_count  INTEGER NOT NULL DEFAULT 0,
    offers_sent   INTEGER NOT NULL DEFAULT 0,
    offers_accepted INTEGER NOT NULL DEFAULT 0,
    idle_since    TIMESTAMP,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX technicians_phone ON technicians (phone);
CREATE INDEX technicians_cell_available ON technicians (cell) WHERE duty_status = 'available';

CREATE TABLE certifications (
    technician_id TEXT NOT NULL REFERENCES technicians (id) ON DELETE CASCADE,
    skill_code    TEXT NOT NULL REFERENCES skills (code),
    certified_at  TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (technician_id, skill_code),
    CHECK (expires_at > certified_at)
);
CREATE INDEX certifications_skill ON certifications (skill_code, expires_at);

CREATE TABLE shifts (
    id            TEXT PRIMARY KEY,
    technician_id TEXT NOT NULL REFERENCES technicians (id) ON DELETE CASCADE,
    starts_at     TIMESTAMP NOT NULL,
    ends_at       TIMESTAMP NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX shifts_technician ON shifts (technician_id, ends_at);

CREATE TABLE customers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    phone      TEXT,
    locale     TEXT NOT NULL DEFAULT 'en',
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE requests (
    id              TEXT PRIMARY KEY,
    customer_id     TEXT NOT NULL REFERENCES customers (id),
    created_by      TEXT NOT NULL CHECK (created_by IN ('customer', 'machine', 'ops')),
    idempotency_key TEXT,
    body_hash       TEXT,
    skill_code      TEXT NOT NULL REFERENCES skills (code),
    lat             DOUBLE PRECISION NOT NULL,
    lng             DOUBLE PRECISION NOT NULL,
    cell            BIGINT NOT NULL,
    address         TEXT NOT NULL DEFAULT '',
    notes           TEXT NOT NULL DEFAULT '',
    mode            TEXT NOT NULL CHECK (mode IN ('asap', 'window')),
    window_start    TIMESTAMP,
    window_end      TIMESTAMP,
    state           TEXT NOT NULL CHECK (state IN ('pending_confirmation', 'scheduled', 'searching', 'assigned', 'en_route', 'on_site', 'completed', 'cancelled', 'unfulfilled')),
    sla_deadline    TIMESTAMP,
    give_up_at      TIMESTAMP,
    at_risk         BOOLEAN NOT NULL DEFAULT FALSE,
    technician_id   TEXT REFERENCES technicians (id),
    eta_at          TIMESTAMP,
    outcome         TEXT CHECK (outcome IN ('fixed', 'not_fixed', 'needs_parts')),
    visits          INTEGER NOT NULL DEFAULT 0,
    cancel_reason   TEXT,
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    searching_at    TIMESTAMP,
    assigned_at     TIMESTAMP,
    en_route_at     TIMESTAMP,
    on_site_at      TIMESTAMP,
    completed_at    TIMESTAMP,
    cancelled_at    TIMESTAMP,
    unfulfilled_at  TIMESTAMP,
    CHECK (window_end IS NULL OR window_end > window_start)
);
-- Invariant 5: a retried create with the same key finds the first request.
CREATE UNIQUE INDEX requests_idempotency ON requests (customer_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX requests_state ON requests (state, created_at);
CREATE INDEX requests_customer ON requests (customer_id, created_at);
CREATE INDEX requests_technician ON requests (technician_id, state);

-- Invariant 1: at most one live assignment per request.
CREATE TABLE assignments (
    id            TEXT PRIMARY KEY,
    request_id    TEXT NOT NULL REFERENCES requests (id),
    technician_id TEXT NOT NULL REFERENCES technicians (id),
    offer_id      TEXT,
    started_at    TIMESTAMP NOT NULL,
    ended_at      TIMESTAMP,
    end_reason    TEXT
);
CREATE UNIQUE INDEX assignments_live ON assignments (request_id) WHERE ended_at IS NULL;
CREATE INDEX assignments_technician ON assignments (technician_id, ended_at);

CREATE TABLE offers (
    id            TEXT PRIMARY KEY,
    request_id    TEXT NOT NULL REFERENCES requests (id),
    technician_id TEXT NOT NULL REFERENCES technicians (id),
    rank          INTEGER NOT NULL,
    round         INTEGER NOT NULL,
    eta_seconds   INTEGER NOT NULL,
    distance_m    INTEGER NOT NULL,
    score         DOUBLE PRECISION NOT NULL,
    reason        TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'accepted', 'declined', 'expired', 'withdrawn')),
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL,
    answered_at   TIMESTAMP
);
CREATE UNIQUE INDEX offers_one_pending ON offers (request_id, technician_id) WHERE state = 'pending';
CREATE INDEX offers_technician ON offers (technician_id, state);
CREATE INDEX offers_request ON offers (request_id, state);

-- Append-only audit of everything that happened to a request.
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL REFERENCES requests (id),
    type        TEXT NOT NULL,
    actor_role  TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    data        TEXT NOT NULL DEFAULT '{}',
    at          TIMESTAMP NOT NULL
);
CREATE INDEX events_request ON events (request_id, id);

-- Tasks implied by committed state changes, relayed to asynq.
CREATE TABLE outbox (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    queue       TEXT NOT NULL,
    process_at  TIMESTAMP NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    relayed_at  TIMESTAMP,
    locked_until TIMESTAMP,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT
);
CREATE INDEX outbox_pending ON outbox (created_at) WHERE relayed_at IS NULL;

-- +goose Down
DROP TABLE outbox;
DROP TABLE events;
DROP TABLE offers;
DROP TABLE assignments;
DROP TABLE requests;
DROP TABLE customers;
DROP TABLE shifts;
DROP TABLE certifications;
DROP TABLE technicians;
DROP TABLE skills;
