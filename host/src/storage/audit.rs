//! The audit trail, read newest-last with keyset (cursor) pagination.

use super::{Conn, Result, from_json, to_json};
use crate::domain::{AuditEntry, TaskId, UserId};
use crate::wire::task_json::TaskJson;
use crate::wire::time::{self, from_millis};
use serde::Serialize;
use sqlx::Row;

/// One stored entry, in the API's JSON shape.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditRecord {
    pub id: String,
    pub event_id: String,
    pub task_id: String,
    pub user_id: String,
    pub operation: String,
    #[serde(with = "time::required")]
    pub at: chrono::DateTime<chrono::Utc>,
    pub previous: Option<serde_json::Value>,
    pub current: Option<serde_json::Value>,
    pub changes: Vec<ChangeJson>,
    pub component_version: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ChangeJson {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// Appends an entry; `false` if one for this event exists already.
pub async fn insert(conn: &mut Conn, e: &AuditEntry, version: &str, now_ms: i64) -> Result<bool> {
    let changes: Vec<ChangeJson> = e
        .changes
        .iter()
        .map(|c| ChangeJson {
            field: c.field.clone(),
            old: c.old.clone(),
            new: c.new.clone(),
        })
        .collect();
    let done = sqlx::query(
        "INSERT INTO audit_log (event_id, task_id, user_id, operation, at, previous, current, changes, \
         component_version, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(e.event_id.as_str())
    .bind(e.task_id.as_str())
    .bind(e.actor.as_str())
    .bind(e.operation.as_str())
    .bind(e.at.timestamp_millis())
    .bind(e.previous.as_ref().map(|t| to_json(&TaskJson::from(t))))
    .bind(e.current.as_ref().map(|t| to_json(&TaskJson::from(t))))
    .bind(to_json(&changes))
    .bind(version)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A page of entries after `cursor` (an entry id), oldest first, at most `limit`.
pub struct Page {
    pub entries: Vec<AuditRecord>,
    pub next_cursor: Option<String>,
}

pub async fn by_task(
    conn: &mut Conn,
    user: &UserId,
    task: &TaskId,
    after: i64,
    limit: i64,
) -> Result<Page> {
    let rows = sqlx::query(
        "SELECT id, event_id, task_id, user_id, operation, at, previous, current, changes, component_version \
         FROM audit_log WHERE user_id = $1 AND task_id = $2 AND id > $3 ORDER BY id LIMIT $4",
    )
    .bind(user.as_str())
    .bind(task.as_str())
    .bind(after)
    .bind(limit + 1)
    .fetch_all(&mut *conn)
    .await?;
    page(rows, limit)
}

pub async fn by_user(conn: &mut Conn, user: &UserId, after: i64, limit: i64) -> Result<Page> {
    let rows = sqlx::query(
        "SELECT id, event_id, task_id, user_id, operation, at, previous, current, changes, component_version \
         FROM audit_log WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(user.as_str())
    .bind(after)
    .bind(limit + 1)
    .fetch_all(&mut *conn)
    .await?;
    page(rows, limit)
}

fn page(rows: Vec<sqlx::any::AnyRow>, limit: i64) -> Result<Page> {
    let more = rows.len() as i64 > limit;
    let mut entries = Vec::with_capacity(rows.len());
    for r in rows.iter().take(limit as usize) {
        let json = |col: &str| -> Result<Option<serde_json::Value>> {
            r.try_get::<Option<String>, _>(col)?
                .map(|s| from_json(col, &s))
                .transpose()
        };
        entries.push(AuditRecord {
            id: r.try_get::<i64, _>("id")?.to_string(),
            event_id: r.try_get("event_id")?,
            task_id: r.try_get("task_id")?,
            user_id: r.try_get("user_id")?,
            operation: r.try_get("operation")?,
            at: from_millis(r.try_get("at")?),
            previous: json("previous")?,
            current: json("current")?,
            changes: from_json("changes", &r.try_get::<String, _>("changes")?)?,
            component_version: r.try_get("component_version")?,
        });
    }
    let next_cursor = if more {
        entries.last().map(|e| e.id.clone())
    } else {
        None
    };
    Ok(Page {
        entries,
        next_cursor,
    })
}
