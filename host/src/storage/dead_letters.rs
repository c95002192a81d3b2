//! Messages the host could not handle, kept with the reason (embedded mode's dead-letter topic).

use super::{Conn, Result};
use crate::wire::time::{self, from_millis};
use serde::Serialize;
use sqlx::Row;

pub struct NewDeadLetter<'a> {
    pub topic: &'a str,
    pub component: Option<&'a str>,
    pub event_id: Option<&'a str>,
    pub payload: &'a str,
    pub reason: &'a str,
}

/// Records a dead letter; a (component, event) pair already recorded is not recorded twice,
/// however often its redeliveries fail.
pub async fn insert(conn: &mut Conn, d: NewDeadLetter<'_>, now_ms: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO dead_letters (topic, component, event_id, payload, reason, created_at) \
         SELECT $1, $2, $3, $4, $5, $6 \
         WHERE NOT EXISTS (SELECT 1 FROM dead_letters WHERE component = $2 AND event_id = $3)",
    )
    .bind(d.topic)
    .bind(d.component)
    .bind(d.event_id)
    .bind(d.payload)
    .bind(d.reason)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    crate::metrics::dead_letter(d.topic);
    Ok(())
}

/// The reason recorded when a message of `topic` with this event id was dropped.
pub async fn reason_for(conn: &mut Conn, topic: &str, event_id: &str) -> Result<Option<String>> {
    Ok(sqlx::query(
        "SELECT reason FROM dead_letters WHERE topic = $1 AND event_id = $2 ORDER BY id LIMIT 1",
    )
    .bind(topic)
    .bind(event_id)
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| r.try_get::<String, _>("reason"))
    .transpose()?)
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterRecord {
    pub id: String,
    pub topic: String,
    pub component: Option<String>,
    pub event_id: Option<String>,
    pub payload: String,
    pub reason: String,
    #[serde(with = "time::required")]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub async fn list(conn: &mut Conn, limit: i64) -> Result<Vec<DeadLetterRecord>> {
    let rows = sqlx::query(
        "SELECT id, topic, component, event_id, payload, reason, created_at FROM dead_letters ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DeadLetterRecord {
                id: r.try_get::<i64, _>("id")?.to_string(),
                topic: r.try_get("topic")?,
                component: r.try_get("component")?,
                event_id: r.try_get("event_id")?,
                payload: r.try_get("payload")?,
                reason: r.try_get("reason")?,
                created_at: from_millis(r.try_get("created_at")?),
            })
        })
        .collect()
}
