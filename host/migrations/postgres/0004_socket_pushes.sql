-- Socket pushes fanned out to every instance on this database (sockets/fanout.rs): a row per
-- push, written in the transaction that applied the broadcast, with a NOTIFY carrying its id;
-- each listening instance reads the row and pushes the frame to its own sockets. Rows are
-- deleted a minute later (only instances listening at commit time receive a push).
-- Keep in step with ../sqlite/0004_socket_pushes.sql.
CREATE TABLE socket_pushes (
    id                 BIGSERIAL PRIMARY KEY,
    user_id            TEXT NOT NULL,
    frame              TEXT NOT NULL,
    traceparent        TEXT,            -- W3C trace context of the change: the push joins its trace
    tracestate         TEXT,
    created_at         BIGINT NOT NULL
);
CREATE INDEX socket_pushes_by_age ON socket_pushes (created_at);
