//! `schedule-reminder` / `cancel-reminder`: durable reminder jobs.

use crate::domain::ReminderJob;
use crate::storage::{Conn, Result, jobs};
use chrono::{DateTime, Utc};

pub async fn schedule(conn: &mut Conn, job: &ReminderJob, now: DateTime<Utc>) -> Result<()> {
    jobs::upsert(conn, job, now.timestamp_millis()).await
}

pub async fn cancel(conn: &mut Conn, name: &str) -> Result<()> {
    jobs::delete(conn, name).await.map(|_| ())
}
