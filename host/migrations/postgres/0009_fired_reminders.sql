-- Reminders that fired, by the reminder's event id (its task, offset and due date), so that each
-- is published once: the Dapr scheduler delivers a trigger at least once, a reschedule computed
-- before a job fired can commit after it and list the same reminder again, and two replicas'
-- embedded schedulers can both see a job due. See storage/jobs.rs `fire`. Pruned with the
-- exactly-once records (storage/retention.rs).
CREATE TABLE fired_reminders (
    event_id           TEXT PRIMARY KEY,
    fired_at           BIGINT NOT NULL
);
CREATE INDEX fired_reminders_fired_at ON fired_reminders (fired_at);
