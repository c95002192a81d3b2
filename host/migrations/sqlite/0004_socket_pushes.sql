-- Socket pushes fanned out to every instance on one database (sockets/fanout.rs). SQLite has
-- one instance, which pushes directly: the table stays empty here and exists so that both
-- schemas have the same tables. Keep in step with ../postgres/0004_socket_pushes.sql.
CREATE TABLE socket_pushes (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id            TEXT NOT NULL,
    frame              TEXT NOT NULL,
    traceparent        TEXT,            -- W3C trace context of the change: the push joins its trace
    tracestate         TEXT,
    created_at         BIGINT NOT NULL
);
CREATE INDEX socket_pushes_by_age ON socket_pushes (created_at);
