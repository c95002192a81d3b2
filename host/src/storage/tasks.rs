//! The `tasks` table. Every query is scoped by `user_id`: a caller can never reach another
//! user's task, whatever id it sends.

use super::{Conn, Result, from_json, to_json};
use crate::domain::{Priority, Recurrence, Task, TaskId, UserId};
use crate::wire::time::from_millis;
use sqlx::Row;
use sqlx::any::AnyRow;

const COLUMNS: &str = "id, user_id, title, description, is_completed, priority, due_date, recurrence, \
     tags, reminder_offsets, occurrence, series_id, created_at, updated_at, completed_at";

fn from_row(row: &AnyRow) -> Result<Task> {
    let recurrence: Option<String> = row.try_get("recurrence")?;
    let offsets: Option<String> = row.try_get("reminder_offsets")?;
    let priority: String = row.try_get("priority")?;
    Ok(Task {
        id: TaskId::new(row.try_get::<String, _>("id")?).ok_or_else(|| corrupt("empty id"))?,
        user_id: UserId::new(row.try_get::<String, _>("user_id")?)
            .ok_or_else(|| corrupt("empty user_id"))?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        is_completed: row.try_get::<i64, _>("is_completed")? != 0,
        priority: Priority::parse(&priority)
            .ok_or_else(|| corrupt(&format!("priority {priority}")))?,
        due_date: row.try_get::<Option<i64>, _>("due_date")?.map(from_millis),
        recurrence: recurrence
            .map(|r| from_json::<Recurrence>("recurrence", &r))
            .transpose()?,
        tags: from_json("tags", &row.try_get::<String, _>("tags")?)?,
        reminder_offsets_minutes: offsets
            .map(|o| from_json("reminder_offsets", &o))
            .transpose()?,
        occurrence: row
            .try_get::<i64, _>("occurrence")?
            .clamp(1, u32::MAX as i64) as u32,
        series_id: row
            .try_get::<Option<String>, _>("series_id")?
            .and_then(TaskId::new),
        created_at: from_millis(row.try_get("created_at")?),
        updated_at: from_millis(row.try_get("updated_at")?),
        completed_at: row
            .try_get::<Option<i64>, _>("completed_at")?
            .map(from_millis),
    })
}

fn corrupt(what: &str) -> super::StorageError {
    super::StorageError::Corrupt(format!("tasks: {what}"))
}

/// Inserts a task. With `origin_key`, inserts only if no task was created under that key
/// yet; returns whether a row was written.
pub async fn insert(conn: &mut Conn, t: &Task, origin_key: Option<&str>) -> Result<bool> {
    let sql = "INSERT INTO tasks (id, user_id, title, description, is_completed, priority, due_date, \
         recurrence, tags, reminder_offsets, occurrence, series_id, origin_key, created_at, updated_at, completed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT DO NOTHING";
    let done = sqlx::query(sql)
        .bind(t.id.as_str())
        .bind(t.user_id.as_str())
        .bind(&t.title)
        .bind(t.description.as_deref())
        .bind(t.is_completed as i64)
        .bind(t.priority.as_str())
        .bind(t.due_date.map(|d| d.timestamp_millis()))
        .bind(t.recurrence.as_ref().map(to_json))
        .bind(to_json(&t.tags))
        .bind(t.reminder_offsets_minutes.as_ref().map(to_json))
        .bind(t.occurrence as i64)
        .bind(t.series_id.as_ref().map(|s| s.as_str()))
        .bind(origin_key)
        .bind(t.created_at.timestamp_millis())
        .bind(t.updated_at.timestamp_millis())
        .bind(t.completed_at.map(|d| d.timestamp_millis()))
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes every mutable field of an existing task of its owner.
pub async fn update(conn: &mut Conn, t: &Task) -> Result<bool> {
    let sql = "UPDATE tasks SET title = $1, description = $2, is_completed = $3, priority = $4, due_date = $5, \
         recurrence = $6, tags = $7, reminder_offsets = $8, updated_at = $9, completed_at = $10 \
         WHERE id = $11 AND user_id = $12";
    let done = sqlx::query(sql)
        .bind(&t.title)
        .bind(t.description.as_deref())
        .bind(t.is_completed as i64)
        .bind(t.priority.as_str())
        .bind(t.due_date.map(|d| d.timestamp_millis()))
        .bind(t.recurrence.as_ref().map(to_json))
        .bind(to_json(&t.tags))
        .bind(t.reminder_offsets_minutes.as_ref().map(to_json))
        .bind(t.updated_at.timestamp_millis())
        .bind(t.completed_at.map(|d| d.timestamp_millis()))
        .bind(t.id.as_str())
        .bind(t.user_id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get(conn: &mut Conn, user: &UserId, id: &TaskId) -> Result<Option<Task>> {
    let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = $1 AND user_id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.as_str())
        .bind(user.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The user's tasks, oldest first.
pub async fn list(conn: &mut Conn, user: &UserId) -> Result<Vec<Task>> {
    let sql = format!("SELECT {COLUMNS} FROM tasks WHERE user_id = $1 ORDER BY created_at, id");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(user.as_str())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn delete(conn: &mut Conn, user: &UserId, id: &TaskId) -> Result<bool> {
    let done = sqlx::query("DELETE FROM tasks WHERE id = $1 AND user_id = $2")
        .bind(id.as_str())
        .bind(user.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}
