//! The transactional outbox: events written with the change that caused them, delivered later
//! by the relay, in order per partition key (the user).

use super::{Conn, Result};
use crate::telemetry::TraceContext;
use sqlx::Row;

#[derive(Clone, Debug)]
pub struct OutboxRow {
    pub id: i64,
    pub topic: String,
    pub partition_key: String,
    pub payload: String,
    pub attempts: u32,
    /// The trace the row was written in (`None` when traces were off).
    pub trace: Option<TraceContext>,
}

/// Adds an event; it is delivered once the surrounding transaction commits. The row carries
/// the trace context of the current span (the request or the component that caused it), so
/// its delivery continues that trace; with traces off that is `NULL` and costs nothing.
pub async fn enqueue(
    conn: &mut Conn,
    topic: &str,
    key: &str,
    payload: &str,
    now_ms: i64,
) -> Result<()> {
    let trace = TraceContext::current();
    let (traceparent, tracestate) = match &trace {
        Some(t) => (
            Some(t.traceparent.as_str()),
            Some(t.tracestate.as_str()).filter(|s| !s.is_empty()),
        ),
        None => (None, None),
    };
    sqlx::query(
        "INSERT INTO outbox (topic, partition_key, payload, created_at, traceparent, tracestate) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(topic)
    .bind(key)
    .bind(payload)
    .bind(now_ms)
    .bind(traceparent)
    .bind(tracestate)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Undelivered events that may be attempted now, oldest first. A key with an event waiting
/// for its retry time is skipped entirely, so a later event never overtakes an earlier one of
/// the same user.
pub async fn pending(conn: &mut Conn, now_ms: i64, limit: i64) -> Result<Vec<OutboxRow>> {
    let rows = sqlx::query(
        "SELECT id, topic, partition_key, payload, attempts, traceparent, tracestate FROM outbox \
         WHERE delivered_at IS NULL AND partition_key NOT IN \
           (SELECT partition_key FROM outbox WHERE delivered_at IS NULL AND next_attempt_at > $1) \
         ORDER BY id LIMIT $2",
    )
    .bind(now_ms)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(OutboxRow {
                id: r.try_get("id")?,
                topic: r.try_get("topic")?,
                partition_key: r.try_get("partition_key")?,
                payload: r.try_get("payload")?,
                attempts: r.try_get::<i64, _>("attempts")?.clamp(0, u32::MAX as i64) as u32,
                trace: TraceContext::received(
                    r.try_get::<Option<String>, _>("traceparent")?.as_deref(),
                    r.try_get::<Option<String>, _>("tracestate")?.as_deref(),
                ),
            })
        })
        .collect()
}

pub async fn mark_delivered(conn: &mut Conn, id: i64, now_ms: i64) -> Result<()> {
    sqlx::query("UPDATE outbox SET delivered_at = $1, attempts = attempts + 1 WHERE id = $2")
        .bind(now_ms)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Marks many rows delivered in one statement (the relay's round, once its deliveries are done).
pub async fn mark_delivered_many(conn: &mut Conn, ids: &[i64], now_ms: i64) -> Result<()> {
    // Bounded statements: SQLite allows 32,766 parameters, PostgreSQL 65,535; a round is far
    // smaller, but the function must not depend on that.
    for chunk in ids.chunks(1_000) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        // Only placeholders are formatted into the text; the values are bound.
        let sql = format!(
            "UPDATE outbox SET delivered_at = $1, attempts = attempts + 1 WHERE id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_ms);
        for id in chunk {
            query = query.bind(*id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn schedule_retry(
    conn: &mut Conn,
    id: i64,
    next_attempt_ms: i64,
    error: &str,
) -> Result<()> {
    sqlx::query("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE id = $3")
        .bind(next_attempt_ms)
        .bind(error)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Events not yet delivered, and when the oldest was written (for metrics).
pub async fn stats(conn: &mut Conn) -> Result<(i64, Option<i64>)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox WHERE delivered_at IS NULL",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok((row.try_get("n")?, row.try_get("oldest")?))
}
