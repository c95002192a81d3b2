//! The in-app inbox. One row per idempotency key, so a reminder delivered twice notifies once.

use super::{Conn, Result};
use crate::domain::{Notification, UserId};
use crate::wire::time::{self, from_millis};
use serde::Serialize;
use sqlx::Row;

pub async fn insert(conn: &mut Conn, n: &Notification) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO notifications (idempotency_key, user_id, task_id, title, body, created_at, method) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(&n.idempotency_key)
    .bind(n.user_id.as_str())
    .bind(n.task_id.as_str())
    .bind(&n.title)
    .bind(&n.body)
    .bind(n.created_at.timestamp_millis())
    .bind(n.method.map(|m| m.as_str()))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, Serialize)]
pub struct NotificationRecord {
    pub id: String,
    pub task_id: String,
    pub title: String,
    pub body: String,
    #[serde(with = "time::required")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// How the reminder's producer wants it delivered (`email`, `push`, `both`); absent when it
    /// did not say (taskhost's own reminders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_method: Option<String>,
}

/// The user's notifications, newest first.
pub async fn list(conn: &mut Conn, user: &UserId, limit: i64) -> Result<Vec<NotificationRecord>> {
    let rows = sqlx::query(
        "SELECT id, task_id, title, body, created_at, method FROM notifications WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(user.as_str())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(NotificationRecord {
                id: r.try_get::<i64, _>("id")?.to_string(),
                task_id: r.try_get("task_id")?,
                title: r.try_get("title")?,
                body: r.try_get("body")?,
                created_at: from_millis(r.try_get("created_at")?),
                notification_method: r.try_get("method")?,
            })
        })
        .collect()
}
