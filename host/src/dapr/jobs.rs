//! `POST /job/{name}`: daprd's scheduler fired a reminder job. Its data is the `reminders`
//! message the job was created with; it goes to the outbox (so it is published to
//! `reminders` durably, in order for the user) in the same transaction that removes the job
//! from the host's list. 2xx tells daprd the job was handled. A trigger of a job the host no
//! longer lists (a repeated trigger, or a job cancelled after it was sent) queues nothing.
//!
//! A job whose data is not a reminder is dead-lettered with the reason and acknowledged: the
//! scheduler would otherwise retry it a few times and then forget it.

use super::DaprState;
use crate::domain::topics;
use crate::http::error::{ApiError, ApiResult};
use crate::pipeline::Undelivered;
use crate::storage::{jobs, outbox};
use crate::wire;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;

pub async fn fire(
    State(state): State<DaprState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let now = wire::time::now();
    let message = match wire::decode(topics::REMINDERS, &body, now) {
        Ok(m) => m,
        Err(e) => {
            let reason = format!("reminder job {name} fired with data that is not a reminder: {e}");
            tracing::warn!(job = %name, %reason, "dead-lettering a job whose data is not a reminder");
            state
                .pipeline
                .dead_letters()
                .undelivered(Undelivered {
                    topic: topics::REMINDERS,
                    id: Some(&name),
                    payload: &body,
                    reason: &reason,
                    attempts: 1,
                    exhausted: false,
                    forwarded_to: None,
                })
                .await
                .map_err(ApiError::from)?;
            let mut conn = state.db.pool().acquire().await.map_err(ApiError::from)?;
            jobs::delete(&mut conn, &name).await?;
            return Ok(StatusCode::NO_CONTENT);
        }
    };
    let mut tx = state.db.begin().await?;
    // The scheduler delivers a trigger at least once: one whose acknowledgement was lost (daprd
    // killed after the host committed, the scheduler stopped or restarted meanwhile) comes
    // again. A job the host no longer lists was fired already (or cancelled since: its task was
    // completed or deleted before the delete reached the scheduler), so it queues nothing.
    let Some(listed) = jobs::payload(&mut tx, &name).await? else {
        tx.commit().await?;
        tracing::info!(job = %name, event_id = %message.event_id(), "a trigger of a job no longer scheduled (fired already, or cancelled): acknowledged, nothing queued");
        return Ok(StatusCode::NO_CONTENT);
    };
    outbox::enqueue(
        &mut tx,
        topics::REMINDERS,
        message.user_id().as_str(),
        &String::from_utf8_lossy(&body),
        now.timestamp_millis(),
    )
    .await?;
    // A trigger of an earlier version of a job rescheduled since (the overwrite had not reached
    // the scheduler yet) leaves the newer version listed, so that its own trigger is not taken
    // for a repeat.
    let same_version = wire::peek_event_id(listed.as_bytes()).as_deref()
        == Some(message.event_id().to_string().as_str());
    if same_version {
        jobs::delete(&mut tx, &name).await?;
    } else {
        tracing::info!(job = %name, event_id = %message.event_id(), "a trigger of an earlier version of a rescheduled job: queued, the newer version stays scheduled");
    }
    tx.commit().await?;
    state.wakers.relay.notify_one();
    tracing::info!(job = %name, event_id = %message.event_id(), "reminder job fired");
    Ok(StatusCode::NO_CONTENT)
}
