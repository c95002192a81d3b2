//! The exactly-once ledger: one row per (component, event id), written in the same
//! transaction as that component's effects for that event.

use super::{Conn, Result};

pub async fn contains(conn: &mut Conn, component: &str, event_id: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM processed_messages WHERE component = $1 AND event_id = $2")
            .bind(component)
            .bind(event_id)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

/// Records the pair; `false` when it was already there (a concurrent or earlier delivery won,
/// and the caller must roll back its effects).
pub async fn record(
    conn: &mut Conn,
    component: &str,
    event_id: &str,
    version: &str,
    now_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO processed_messages (component, event_id, component_version, processed_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(component)
    .bind(event_id)
    .bind(version)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
