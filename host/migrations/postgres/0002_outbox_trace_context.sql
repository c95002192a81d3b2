-- W3C trace context of the span that wrote each outbox row (the API request, or the component
-- whose effect it is), so that the relay and the Dapr publish continue the same trace.
-- NULL when traces are off. Keep this file and its sqlite/postgres twin in step.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
ALTER TABLE outbox ADD COLUMN tracestate TEXT;
