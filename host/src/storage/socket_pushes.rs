//! Socket pushes on their way to every instance on this PostgreSQL database (see
//! `sockets/fanout.rs`): written with the change, announced by `NOTIFY` at commit, read by
//! each listening instance, and purged when no listener can still need them.

use super::{Conn, Result};
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

/// A push to record: for whom, the frame, and the trace of the change that caused it — taken
/// when the effect was applied, in its span, since the rows of a whole group commit are
/// written together later in the transaction.
#[derive(Debug)]
pub struct NewPush {
    pub user_id: String,
    pub frame: String,
    pub trace: Option<TraceContext>,
    pub now_ms: i64,
}

/// Records pushes and notifies the channel of each one's id, in id order, in one statement:
/// both take effect when the transaction commits (PostgreSQL delivers notifications at commit,
/// and drops them on rollback). One statement for a group commit's pushes: the insert and the
/// `NOTIFY` were two round trips per push inside the transaction, ~14 of a group commit of
/// seven task events on the embedded route (docs/benchmarks.md, item 27).
pub async fn insert_many(conn: &mut Conn, pushes: &[NewPush]) -> Result<()> {
    const COLUMNS: usize = 5;
    for chunk in pushes.chunks(super::rows_per_statement(COLUMNS)) {
        // `pg_notify` returns void, a type the Any driver cannot map: count its calls instead
        // (a volatile call in a subquery is evaluated however little of it the outer query
        // reads, after the subquery's ORDER BY).
        let sql = format!(
            "WITH added AS (INSERT INTO socket_pushes (user_id, frame, traceparent, tracestate, \
             created_at) VALUES {} RETURNING id) \
             SELECT COUNT(n.notified) AS notified FROM \
             (SELECT pg_notify('{CHANNEL}', id::text)::text AS notified FROM added ORDER BY id) AS n",
            super::values_rows(conn, chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for p in chunk {
            query = query
                .bind(p.user_id.as_str())
                .bind(p.frame.as_str())
                .bind(p.trace.as_ref().map(|t| t.traceparent.as_str()))
                .bind(p.trace.as_ref().map(|t| t.tracestate.as_str()))
                .bind(p.now_ms);
        }
        let notified: i64 = query.fetch_one(&mut *conn).await?.try_get("notified")?;
        debug_assert_eq!(notified as usize, chunk.len(), "one NOTIFY per push");
    }
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
