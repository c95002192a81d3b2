//! Reminder jobs. In embedded mode the scheduler fires them from this table.

use super::{Conn, Result};
use crate::domain::{ReminderJob, UserId};
use crate::wire::event_json::encode_reminder;
use crate::wire::time::{self, from_millis};
use serde::Serialize;
use sqlx::Row;

/// Creates or replaces many jobs in as few statements as the bind limit allows (a group
/// commit's batch). Of several
/// jobs with one name the last wins, as if upserted one after another (one statement cannot
/// upsert a row twice on PostgreSQL).
pub async fn upsert_many(conn: &mut Conn, jobs: &[(ReminderJob, i64)]) -> Result<()> {
    let mut last: std::collections::HashMap<&str, usize> = Default::default();
    for (i, (job, _)) in jobs.iter().enumerate() {
        last.insert(job.name.as_str(), i);
    }
    let unique: Vec<&(ReminderJob, i64)> = jobs
        .iter()
        .enumerate()
        .filter(|(i, (job, _))| last[job.name.as_str()] == *i)
        .map(|(_, j)| j)
        .collect();
    const COLUMNS: usize = 7;
    for chunk in unique.chunks(super::rows_per_statement(COLUMNS)) {
        let sql = format!(
            "INSERT INTO scheduled_jobs (name, user_id, task_id, due_at, offset_minutes, payload, created_at) \
             VALUES {} \
             ON CONFLICT (name) DO UPDATE SET user_id = excluded.user_id, task_id = excluded.task_id, \
             due_at = excluded.due_at, offset_minutes = excluded.offset_minutes, payload = excluded.payload, \
             created_at = excluded.created_at",
            super::values_rows(conn, chunk.len(), COLUMNS)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (job, now_ms) in chunk {
            query = query
                .bind(&job.name)
                .bind(job.reminder.user_id.as_str())
                .bind(job.reminder.task.id.as_str())
                .bind(job.due_at.timestamp_millis())
                .bind(job.reminder.offset_minutes as i64)
                .bind(encode_reminder(&job.reminder).to_string())
                .bind(*now_ms);
        }
        query.execute(&mut *conn).await?;
    }
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

/// Deletes the user's jobs of `task_id` due at `due_at_ms`; returns their names.
pub async fn delete_at(
    conn: &mut Conn,
    user_id: &str,
    task_id: &str,
    due_at_ms: i64,
) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "DELETE FROM scheduled_jobs WHERE user_id = $1 AND task_id = $2 AND due_at = $3 RETURNING name",
    )
    .bind(user_id)
    .bind(task_id)
    .bind(due_at_ms)
    .fetch_all(&mut *conn)
    .await?;
    let mut names = rows
        .iter()
        .map(|r| r.try_get::<String, _>("name"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    names.sort();
    Ok(names)
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

/// The `reminders` message a listed job publishes when it fires, if the job is listed.
pub async fn payload(conn: &mut Conn, name: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query("SELECT payload FROM scheduled_jobs WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get::<String, _>("payload"))
            .transpose()?,
    )
}

/// What a job's trigger comes to ([`fire`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firing {
    /// The first trigger of the listed reminder: publish this `reminders` message (the listed
    /// payload, the newest the host has of that reminder). The job is off the list.
    Publish(String),
    /// This reminder (its event id) was published already: a repeated trigger, a second
    /// replica's scheduler, or the same reminder listed again by a reschedule that was computed
    /// before the job fired and committed after. Off the list; nothing to publish.
    AlreadyFired,
    /// The host lists no such job: it fired already, or was cancelled (its task completed or
    /// deleted) before the cancellation reached the scheduler. Nothing to publish.
    NotListed,
    /// The host lists a newer version of the job (rescheduled to another due date) than the one
    /// that fired: the trigger says something no longer true ("due in 1 hour" of the old date).
    /// The newer version stays listed and fires at its own time; nothing to publish.
    Superseded,
}

/// Fires job `name` in the caller's transaction: each reminder is published at most once,
/// however many triggers come and whoever sends them. `trigger` is the event id of the version
/// that fired (the data of the Dapr scheduler's trigger); `None` when the host fires its own
/// list (the embedded scheduler), which is always the listed version.
///
/// The reminder is recorded as fired (`fired_reminders`, keyed by its event id) in the same
/// transaction that takes the job off the list and, with [`Firing::Publish`], queues its
/// message: on PostgreSQL a concurrent trigger of the same reminder waits on that key and then
/// finds it fired; SQLite has one writer.
pub async fn fire(
    conn: &mut Conn,
    name: &str,
    trigger: Option<&str>,
    now_ms: i64,
) -> Result<Firing> {
    let Some(row) = sqlx::query("SELECT payload, due_at FROM scheduled_jobs WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(Firing::NotListed);
    };
    let payload: String = row.try_get("payload")?;
    let listed = crate::wire::peek_event_id(payload.as_bytes());
    if let Some(trigger) = trigger
        && listed.as_deref() != Some(trigger)
    {
        return Ok(Firing::Superseded);
    }
    // Every payload the host writes has an event id (`encode_reminder`); a row written by
    // hand without one is still fired once, by its name and due time.
    let key = match listed {
        Some(event_id) => event_id,
        None => format!("{name}@{}", row.try_get::<i64, _>("due_at")?),
    };
    let first = sqlx::query(
        "INSERT INTO fired_reminders (event_id, fired_at) VALUES ($1, $2) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&key)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    delete(conn, name).await?;
    Ok(if first {
        Firing::Publish(payload)
    } else {
        Firing::AlreadyFired
    })
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{EventId, Priority, ReminderDue, ReminderTask, TaskId};
    use crate::storage::Db;
    use chrono::{DateTime, Utc};

    pub(crate) fn job(name: &str, due_ms: i64) -> ReminderJob {
        let due_at: DateTime<Utc> = DateTime::from_timestamp_millis(due_ms).unwrap();
        ReminderJob {
            name: name.into(),
            due_at,
            reminder: ReminderDue {
                event_id: EventId::new(format!("ev-{name}")).unwrap(),
                occurred_at: due_at,
                user_id: UserId::new("u1").unwrap(),
                task: ReminderTask {
                    id: TaskId::new("t1").unwrap(),
                    title: "Pay rent".into(),
                    description: None,
                    due_date: due_at,
                    priority: Priority::Medium,
                },
                offset_minutes: 60,
                notification_method: None,
            },
        }
    }

    pub(crate) async fn due_of(conn: &mut Conn, name: &str) -> Option<i64> {
        sqlx::query_scalar("SELECT due_at FROM scheduled_jobs WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn upsert_many_inserts_replaces_and_lets_the_last_of_a_name_win() {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        upsert_many(&mut conn, &[(job("a", 1_000), 1)])
            .await
            .unwrap();
        upsert_many(
            &mut conn,
            &[
                (job("a", 2_000), 2),
                (job("b", 5_000), 2),
                (job("a", 3_000), 2),
            ],
        )
        .await
        .unwrap();
        assert_eq!(due_of(&mut conn, "a").await, Some(3_000));
        assert_eq!(due_of(&mut conn, "b").await, Some(5_000));
        assert_eq!(count(&mut conn).await.unwrap(), 2);
    }

    /// A reminder whose event id names its due date, as the notification component's do.
    fn reminder_due(name: &str, due_ms: i64) -> ReminderJob {
        let mut j = job(name, due_ms);
        j.reminder.event_id = EventId::new(format!("reminder:{name}:{due_ms}")).unwrap();
        j
    }

    #[tokio::test]
    async fn a_reminder_is_published_once_however_often_and_by_whomever_it_fires() {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        let a = reminder_due("a", 1_000);
        let id = a.reminder.event_id.to_string();
        upsert_many(&mut conn, &[(a.clone(), 1)]).await.unwrap();

        let Firing::Publish(payload) = fire(&mut conn, "a", Some(&id), 1_000).await.unwrap() else {
            panic!("the first trigger publishes")
        };
        assert_eq!(payload, encode_reminder(&a.reminder).to_string());
        assert_eq!(due_of(&mut conn, "a").await, None, "off the list");
        assert_eq!(
            fire(&mut conn, "a", Some(&id), 1_001).await.unwrap(),
            Firing::NotListed,
            "a repeated trigger"
        );

        // A reschedule computed before the job fired commits after it: the same reminder
        // listed again. Its trigger (or the embedded scheduler) takes it off and publishes nothing.
        upsert_many(&mut conn, &[(a.clone(), 2)]).await.unwrap();
        assert_eq!(
            fire(&mut conn, "a", Some(&id), 1_002).await.unwrap(),
            Firing::AlreadyFired
        );
        assert_eq!(due_of(&mut conn, "a").await, None);
        upsert_many(&mut conn, &[(a.clone(), 3)]).await.unwrap();
        assert_eq!(
            fire(&mut conn, "a", None, 1_003).await.unwrap(),
            Firing::AlreadyFired
        );
        assert_eq!(due_of(&mut conn, "a").await, None);

        // Rescheduled to another due date: a new reminder, published in its turn.
        let later = reminder_due("a", 5_000);
        upsert_many(&mut conn, &[(later.clone(), 4)]).await.unwrap();
        assert!(matches!(
            fire(&mut conn, "a", None, 5_000).await.unwrap(),
            Firing::Publish(_)
        ));
    }

    #[tokio::test]
    async fn a_trigger_of_a_version_rescheduled_since_leaves_the_newer_one_listed() {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        let old = reminder_due("a", 1_000);
        let new = reminder_due("a", 9_000);
        upsert_many(&mut conn, &[(old.clone(), 1), (new.clone(), 1)])
            .await
            .unwrap();
        assert_eq!(
            fire(&mut conn, "a", Some(old.reminder.event_id.as_ref()), 1_000)
                .await
                .unwrap(),
            Firing::Superseded
        );
        assert_eq!(due_of(&mut conn, "a").await, Some(9_000), "the newer stays");
        assert!(matches!(
            fire(&mut conn, "a", Some(new.reminder.event_id.as_ref()), 9_000)
                .await
                .unwrap(),
            Firing::Publish(_)
        ));
    }
}
