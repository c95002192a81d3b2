//! The exactly-once ledger: one row per (component, event id), written in the same
//! transaction as that component's effects for that event.

use super::{Conn, Result};

/// Which of `components` have already recorded `event_id`: one query for all the components
/// a message goes to (each an equality on the primary key's leading column).
pub async fn done_by(conn: &mut Conn, components: &[&str], event_id: &str) -> Result<Vec<String>> {
    if components.is_empty() {
        return Ok(Vec::new());
    }
    let alternatives: Vec<String> = (0..components.len())
        .map(|i| format!("component = ${}", i + 2))
        .collect();
    // Only placeholders are formatted into the text; the values are bound.
    let sql = format!(
        "SELECT component FROM processed_messages WHERE event_id = $1 AND ({})",
        alternatives.join(" OR ")
    );
    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(event_id);
    for c in components {
        query = query.bind(*c);
    }
    Ok(query.fetch_all(&mut *conn).await?)
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
