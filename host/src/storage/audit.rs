//! The audit trail, read newest-last with keyset (cursor) pagination.

use super::{Conn, Result, StorageError, from_json, to_json};
use crate::domain::{AuditEntry, EventId, Task, TaskId, UserId};
use crate::wire::task_json::TaskJson;
use crate::wire::time::{self, from_millis};
use serde::Serialize;
use sqlx::Row;
use std::borrow::Cow;

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

/// Appends many entries, in order, in as few statements as the bind limit allows (a group
/// commit's batch); an entry whose event has one already is skipped. Returns how many were added.
pub async fn insert_many(conn: &mut Conn, entries: &[NewAudit<'_>]) -> Result<u64> {
    const COLUMNS: usize = 10;
    let mut added = 0;
    for chunk in entries.chunks(super::rows_per_statement(COLUMNS)) {
        let sql = format!(
            "INSERT INTO audit_log (event_id, task_id, user_id, operation, at, previous, current, changes, \
             component_version, recorded_at) VALUES {} ON CONFLICT DO NOTHING",
            super::values_rows(conn, chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for n in chunk {
            let e = &n.entry;
            query = query
                .bind(e.event_id.as_str())
                .bind(e.task_id.as_str())
                .bind(e.actor.as_str())
                .bind(e.operation.as_str())
                .bind(e.at.timestamp_millis())
                .bind(e.previous.as_ref().map(|t| to_json(&TaskJson::from(t))))
                .bind(e.current.as_ref().map(|t| to_json(&TaskJson::from(t))))
                .bind(to_json(&changes_json(e)))
                .bind(n.version.as_ref())
                .bind(n.now_ms);
        }
        added += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(added)
}

/// An entry to append with [`insert_many`]. Borrowed when it can be: a group commit appends
/// the entries of the effects it applies without copying them (tasks' previous and current
/// states are the bulk of an event).
#[derive(Debug, Clone)]
pub struct NewAudit<'a> {
    pub entry: Cow<'a, AuditEntry>,
    /// The version of the component that produced it.
    pub version: Cow<'a, str>,
    pub now_ms: i64,
}

fn changes_json(e: &AuditEntry) -> Vec<ChangeJson> {
    e.changes
        .iter()
        .map(|c| ChangeJson {
            field: c.field.clone(),
            old: c.old.clone(),
            new: c.new.clone(),
        })
        .collect()
}

/// The state of `task` after the latest operation recorded for it at or before `at` (other
/// than `except`, the event asking), from the trail: the last state of that task the host has
/// seen. `None` when there is none (no entry yet, or the latest one deleted it).
pub async fn last_state(
    conn: &mut Conn,
    user: &UserId,
    task: &TaskId,
    at: chrono::DateTime<chrono::Utc>,
    except: &EventId,
) -> Result<Option<Task>> {
    let row = sqlx::query(
        "SELECT current FROM audit_log WHERE user_id = $1 AND task_id = $2 AND at <= $3 AND event_id <> $4 \
         ORDER BY at DESC, id DESC LIMIT 1",
    )
    .bind(user.as_str())
    .bind(task.as_str())
    .bind(at.timestamp_millis())
    .bind(except.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(current) = row
        .map(|r| r.try_get::<Option<String>, _>("current"))
        .transpose()?
        .flatten()
    else {
        return Ok(None);
    };
    let json: TaskJson = from_json("current", &current)?;
    json.into_task(user, at)
        .map(Some)
        .map_err(|e| StorageError::Corrupt(format!("column current: {e}")))
}

/// When `task` was last closed (its latest `completed` or `deleted` entry) and last opened or
/// changed (its latest other entry), as recorded; `None` for what never happened.
pub async fn last_closed_and_open(
    conn: &mut Conn,
    user: &UserId,
    task: &TaskId,
) -> Result<(
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
)> {
    let row = sqlx::query(
        "SELECT MAX(CASE WHEN operation IN ('completed', 'deleted') THEN at END) AS closed_at, \
                MAX(CASE WHEN operation IN ('completed', 'deleted') THEN NULL ELSE at END) AS open_at \
         FROM audit_log WHERE user_id = $1 AND task_id = $2",
    )
    .bind(user.as_str())
    .bind(task.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let at = |col: &str| -> Result<_> { Ok(row.try_get::<Option<i64>, _>(col)?.map(from_millis)) };
    Ok((at("closed_at")?, at("open_at")?))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EventId, FieldChange, TaskOperation};
    use crate::storage::Db;

    fn new_audit(event: &str, task: &str, user: &str) -> NewAudit<'static> {
        NewAudit {
            entry: Cow::Owned(AuditEntry {
                event_id: EventId::new(event).unwrap(),
                task_id: TaskId::new(task).unwrap(),
                actor: UserId::new(user).unwrap(),
                operation: TaskOperation::Updated,
                at: chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
                previous: None,
                current: None,
                changes: vec![FieldChange {
                    field: "title".into(),
                    old: Some("a".into()),
                    new: Some(event.into()),
                }],
            }),
            version: "0.1.0".into(),
            now_ms: 1,
        }
    }

    #[tokio::test]
    async fn insert_many_keeps_the_order_and_skips_events_recorded_already() {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        let first = insert_many(&mut conn, &[new_audit("e1", "t1", "u1")])
            .await
            .unwrap();
        assert_eq!(first, 1);
        let batch = [
            new_audit("e2", "t1", "u1"),
            new_audit("e1", "t1", "u1"), // recorded already
            new_audit("e3", "t2", "u1"),
            new_audit("e4", "t1", "u1"),
        ];
        assert_eq!(insert_many(&mut conn, &batch).await.unwrap(), 3);
        let user = UserId::new("u1").unwrap();
        let page = by_task(&mut conn, &user, &TaskId::new("t1").unwrap(), 0, 10)
            .await
            .unwrap();
        let events: Vec<&str> = page.entries.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(events, ["e1", "e2", "e4"]);
        assert_eq!(page.entries[1].changes[0].new.as_deref(), Some("e2"));
    }
}
