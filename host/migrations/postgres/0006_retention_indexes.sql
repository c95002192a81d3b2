-- Retention (storage/retention.rs) deletes delivered outbox rows and old exactly-once records by
-- age: these indexes let it find them without scanning the tables.
CREATE INDEX outbox_delivered_at ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;
CREATE INDEX processed_messages_processed_at ON processed_messages (processed_at);
