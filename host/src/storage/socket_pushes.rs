//! Socket pushes on their way to every instance on this PostgreSQL database (see
//! `sockets/fanout.rs`): written with the change, announced by `NOTIFY` at commit, read by
//! each listening instance, and purged when no listener can still need them.

use super::{Conn, Result};
use crate::domain::UserId;
use crate::telemetry::TraceContext;
use sqlx::{AnyPool, Row};

/// A push as stored: for whom, the frame, and the trace of the change that caused it.
#[derive(Debug)]
pub struct StoredPush {
    pub user_id: String,
    pub frame: String,
    pub trace: Option<TraceContext>,
}

/// The `LISTEN`/`NOTIFY` channel; a notification's payload is the row's id.
pub const CHANNEL: &str = "taskhost_socket_pushes";

/// Records a push (with the current trace context) and notifies the channel; both take effect
/// when the transaction commits (PostgreSQL delivers notifications at commit, and drops them on
/// rollback).
pub async fn insert(conn: &mut Conn, user: &UserId, frame: &str, now_ms: i64) -> Result<()> {
    let trace = TraceContext::current();
    let id: i64 = sqlx::query(
        "INSERT INTO socket_pushes (user_id, frame, traceparent, tracestate, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(user.as_str())
    .bind(frame)
    .bind(trace.as_ref().map(|t| t.traceparent.as_str()))
    .bind(trace.as_ref().map(|t| t.tracestate.as_str()))
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?
    .try_get("id")?;
    // `pg_notify` returns void, a type the Any driver cannot map: select something else.
    sqlx::query("SELECT 1 AS notified FROM (SELECT pg_notify($1, $2)) AS n")
        .bind(CHANNEL)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The push with this id (`None` once purged).
pub async fn get(pool: &AnyPool, id: i64) -> Result<Option<StoredPush>> {
    let row = sqlx::query(
        "SELECT user_id, frame, traceparent, tracestate FROM socket_pushes WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let traceparent: Option<String> = r.try_get("traceparent")?;
    let tracestate: Option<String> = r.try_get("tracestate")?;
    Ok(Some(StoredPush {
        user_id: r.try_get("user_id")?,
        frame: r.try_get("frame")?,
        trace: TraceContext::received(traceparent.as_deref(), tracestate.as_deref()),
    }))
}

/// Deletes pushes created before `cutoff_ms`; returns how many.
pub async fn purge_before(pool: &AnyPool, cutoff_ms: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM socket_pushes WHERE created_at < $1")
        .bind(cutoff_ms)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
