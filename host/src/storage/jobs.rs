//! Reminder jobs. In embedded mode the scheduler fires them from this table.

use super::{Conn, Result};
use crate::domain::{ReminderJob, UserId};
use crate::wire::event_json::encode_reminder;
use crate::wire::time::{self, from_millis};
use serde::Serialize;
use sqlx::Row;

/// Creates or replaces the job of that name.
pub async fn upsert(conn: &mut Conn, job: &ReminderJob, now_ms: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO scheduled_jobs (name, user_id, task_id, due_at, offset_minutes, payload, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (name) DO UPDATE SET user_id = excluded.user_id, task_id = excluded.task_id, \
         due_at = excluded.due_at, offset_minutes = excluded.offset_minutes, payload = excluded.payload, \
         created_at = excluded.created_at",
    )
    .bind(&job.name)
    .bind(job.reminder.user_id.as_str())
    .bind(job.reminder.task.id.as_str())
    .bind(job.due_at.timestamp_millis())
    .bind(job.reminder.offset_minutes as i64)
    .bind(encode_reminder(&job.reminder).to_string())
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, name: &str) -> Result<bool> {
    Ok(sqlx::query("DELETE FROM scheduled_jobs WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        == 1)
}

/// The user a job belongs to, if it exists.
pub async fn owner(conn: &mut Conn, name: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query("SELECT user_id FROM scheduled_jobs WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get::<String, _>("user_id"))
            .transpose()?,
    )
}

/// Jobs scheduled and not yet fired.
pub async fn count(conn: &mut Conn) -> Result<i64> {
    Ok(sqlx::query("SELECT COUNT(*) AS n FROM scheduled_jobs")
        .fetch_one(&mut *conn)
        .await?
        .try_get("n")?)
}

/// When the earliest job is due, if any.
pub async fn next_due(conn: &mut Conn) -> Result<Option<i64>> {
    Ok(sqlx::query("SELECT MIN(due_at) AS due FROM scheduled_jobs")
        .fetch_one(&mut *conn)
        .await?
        .try_get::<Option<i64>, _>("due")?)
}

#[derive(Debug, Clone)]
pub struct DueJob {
    pub name: String,
    pub user_id: String,
    pub payload: String,
}

/// Jobs due at `now_ms`, earliest first.
pub async fn due(conn: &mut Conn, now_ms: i64, limit: i64) -> Result<Vec<DueJob>> {
    let rows = sqlx::query(
        "SELECT name, user_id, payload FROM scheduled_jobs WHERE due_at <= $1 ORDER BY due_at, name LIMIT $2",
    )
    .bind(now_ms)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DueJob {
                name: r.try_get("name")?,
                user_id: r.try_get("user_id")?,
                payload: r.try_get("payload")?,
            })
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    pub name: String,
    pub task_id: String,
    #[serde(with = "time::required")]
    pub due_at: chrono::DateTime<chrono::Utc>,
    pub offset_minutes: i64,
}

/// The user's pending reminders, soonest first.
pub async fn by_user(conn: &mut Conn, user: &UserId) -> Result<Vec<JobRecord>> {
    let rows = sqlx::query(
        "SELECT name, task_id, due_at, offset_minutes FROM scheduled_jobs WHERE user_id = $1 ORDER BY due_at, name",
    )
    .bind(user.as_str())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(JobRecord {
                name: r.try_get("name")?,
                task_id: r.try_get("task_id")?,
                due_at: from_millis(r.try_get("due_at")?),
                offset_minutes: r.try_get("offset_minutes")?,
            })
        })
        .collect()
}
