-- How a reminder's producer wants it delivered (`email`, `push`, `both`: the Python backend's
-- `notificationMethod`); NULL for reminders that do not say, which is all of taskhost's own.
ALTER TABLE notifications ADD COLUMN method TEXT;
