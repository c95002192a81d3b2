//! `schedule-reminder` / `cancel-reminder`: durable reminder jobs. The host's table is the
//! source of truth (and what `GET /api/reminders` lists); with Dapr, each change is also queued
//! for the Jobs API in the same transaction, and the Dapr scheduler fires the job.

use super::{Deferred, Origin};
use crate::domain::{ReminderJob, RemindersAt};
use crate::storage::sidecar_calls::{JOBS_TOPIC, JobCall};
use crate::storage::{Conn, Result, jobs, outbox};
use crate::wire::{event_json::encode_reminder, time};
use chrono::{DateTime, Utc};

/// The job's row is written with the batch's others ([`Deferred`]); its Jobs API call, if any,
/// is queued now, in order with the user's other outbox rows.
pub async fn schedule(
    conn: &mut Conn,
    deferred: &mut Deferred<'_>,
    job: &ReminderJob,
    now: DateTime<Utc>,
    dapr: bool,
) -> Result<()> {
    deferred.jobs.push((job.clone(), now.timestamp_millis()));
    if dapr {
        let call = JobCall::Schedule {
            name: job.name.clone(),
            due_time: time::format(&job.due_at),
            data: encode_reminder(&job.reminder),
        };
        let payload = serde_json::to_string(&call).expect("JSON");
        outbox::enqueue(
            conn,
            JOBS_TOPIC,
            job.reminder.user_id.as_str(),
            &payload,
            now.timestamp_millis(),
        )
        .await?;
    }
    Ok(())
}

pub async fn cancel(
    conn: &mut Conn,
    deferred: &mut Deferred<'_>,
    name: &str,
    now: DateTime<Utc>,
    dapr: bool,
) -> Result<()> {
    // A schedule earlier in the batch must be in the table before it is read and deleted.
    deferred.flush_jobs(conn).await?;
    let user = jobs::owner(conn, name).await?;
    jobs::delete(conn, name).await?;
    if dapr {
        let payload = serde_json::to_string(&JobCall::Delete {
            name: name.to_string(),
        })
        .expect("JSON");
        // Keyed like the schedule call (by user when known) so a cancel never overtakes it.
        let key = user.unwrap_or_else(|| name.to_string());
        outbox::enqueue(conn, JOBS_TOPIC, &key, &payload, now.timestamp_millis()).await?;
    }
    Ok(())
}

/// Removes the user's jobs of a task due at one instant, whatever their names (a producer
/// withdrew the reminder it asked for). Returns whether there was one.
pub async fn cancel_at(
    conn: &mut Conn,
    deferred: &mut Deferred<'_>,
    at: &RemindersAt,
    origin: Origin<'_>,
    now: DateTime<Utc>,
    dapr: bool,
) -> Result<bool> {
    deferred.flush_jobs(conn).await?;
    let names = jobs::delete_at(
        conn,
        at.user_id.as_str(),
        at.task_id.as_str(),
        at.due_at.timestamp_millis(),
    )
    .await?;
    tracing::info!(component = origin.component, version = origin.version, task_id = %at.task_id, due_at = %time::format(&at.due_at), jobs = ?names, "reminder withdrawn by its producer");
    if dapr {
        for name in &names {
            let payload =
                serde_json::to_string(&JobCall::Delete { name: name.clone() }).expect("JSON");
            outbox::enqueue(
                conn,
                JOBS_TOPIC,
                at.user_id.as_str(),
                &payload,
                now.timestamp_millis(),
            )
            .await?;
        }
    }
    Ok(!names.is_empty())
}
