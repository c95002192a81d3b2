-- One dead letter per message and component (pipeline/dead_letter.rs): a message dropped
-- through Dapr is recorded when it is answered DROP; when daprd then delivers the same message
-- from the dead-letter topic, that row notes it here instead of a second row being added.
-- forwarded_to: the dead-letter topic the message also reached (NULL: none, or not yet).
ALTER TABLE dead_letters ADD COLUMN forwarded_to TEXT;
-- The dedup lookup: by event (or transport) id within a topic.
CREATE INDEX dead_letters_by_event ON dead_letters (topic, event_id);
