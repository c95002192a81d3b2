-- Dead letters can be listed by component and replayed (GET /admin/dead-letters,
-- POST /admin/dead-letters/{id}/replay).
-- attempts: deliveries made before the message was dead-lettered.
-- replayed_at / replay_result: the last replay that succeeded (NULL: not replayed yet);
-- last_replay_error: why the last replay failed, if it did.
ALTER TABLE dead_letters ADD COLUMN attempts BIGINT NOT NULL DEFAULT 1;
ALTER TABLE dead_letters ADD COLUMN replays BIGINT NOT NULL DEFAULT 0;
ALTER TABLE dead_letters ADD COLUMN replayed_at BIGINT;
ALTER TABLE dead_letters ADD COLUMN replay_result TEXT;
ALTER TABLE dead_letters ADD COLUMN last_replay_error TEXT;
CREATE INDEX dead_letters_by_component ON dead_letters (component, id);
