-- taskhost schema (PostgreSQL). Times are epoch milliseconds (BIGINT) so that the same SQL
-- runs on PostgreSQL and SQLite through sqlx's Any driver; JSON columns are TEXT for the same
-- reason. Keep this file and ../sqlite/0001_init.sql in step.

CREATE TABLE tasks (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,
    title              TEXT NOT NULL,
    description        TEXT,
    is_completed       BIGINT NOT NULL DEFAULT 0,   -- 0/1: sqlx Any cannot decode SQLite booleans
    priority           TEXT NOT NULL,
    due_date           BIGINT,
    recurrence         TEXT,            -- JSON domain::Recurrence, NULL when not recurring
    tags               TEXT NOT NULL,   -- JSON array
    reminder_offsets   TEXT,            -- JSON array of minutes, NULL = defaults
    occurrence         BIGINT NOT NULL DEFAULT 1,
    series_id          TEXT,
    origin_key         TEXT UNIQUE,     -- idempotency key of the effect that created it
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    completed_at       BIGINT
);
CREATE INDEX tasks_by_user ON tasks (user_id, created_at, id);

-- Transactional outbox: every task write adds its event here in the same transaction.
CREATE TABLE outbox (
    id                 BIGSERIAL PRIMARY KEY,
    topic              TEXT NOT NULL,
    partition_key      TEXT NOT NULL,
    payload            TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at    BIGINT NOT NULL DEFAULT 0,
    last_error         TEXT,
    delivered_at       BIGINT
);
CREATE INDEX outbox_pending ON outbox (id) WHERE delivered_at IS NULL;

-- Exactly-once: a (component, event) pair is recorded in the transaction that applies its effects.
CREATE TABLE processed_messages (
    component          TEXT NOT NULL,
    event_id           TEXT NOT NULL,
    component_version  TEXT NOT NULL,
    processed_at       BIGINT NOT NULL,
    PRIMARY KEY (component, event_id)
);

CREATE TABLE audit_log (
    id                 BIGSERIAL PRIMARY KEY,
    event_id           TEXT NOT NULL UNIQUE,
    task_id            TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    operation          TEXT NOT NULL,
    at                 BIGINT NOT NULL,
    previous           TEXT,
    current            TEXT,
    changes            TEXT NOT NULL,
    component_version  TEXT NOT NULL,
    recorded_at        BIGINT NOT NULL
);
CREATE INDEX audit_by_task ON audit_log (task_id, id);
CREATE INDEX audit_by_user ON audit_log (user_id, id);

CREATE TABLE notifications (
    id                 BIGSERIAL PRIMARY KEY,
    idempotency_key    TEXT NOT NULL UNIQUE,
    user_id            TEXT NOT NULL,
    task_id            TEXT NOT NULL,
    title              TEXT NOT NULL,
    body               TEXT NOT NULL,
    created_at         BIGINT NOT NULL
);
CREATE INDEX notifications_by_user ON notifications (user_id, id);

-- Reminder jobs. Embedded mode fires them from here; with Dapr they mirror the Jobs API.
CREATE TABLE scheduled_jobs (
    name               TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,
    task_id            TEXT NOT NULL,
    due_at             BIGINT NOT NULL,
    offset_minutes     BIGINT NOT NULL,
    payload            TEXT NOT NULL,   -- the reminders-topic message it publishes
    created_at         BIGINT NOT NULL
);
CREATE INDEX scheduled_jobs_due ON scheduled_jobs (due_at);
CREATE INDEX scheduled_jobs_by_user ON scheduled_jobs (user_id, due_at);

-- Messages that could not be handled, with the reason. Nothing is dropped silently.
CREATE TABLE dead_letters (
    id                 BIGSERIAL PRIMARY KEY,
    topic              TEXT NOT NULL,
    component          TEXT,
    event_id           TEXT,
    payload            TEXT NOT NULL,
    reason             TEXT NOT NULL,
    created_at         BIGINT NOT NULL
);
