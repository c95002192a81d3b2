//! `POST /job/{name}`: daprd's scheduler fired a reminder job. Its data is the `reminders`
//! message the job was created with; it goes to the outbox (so it is published to
//! `reminders` durably, in order for the user) in the same transaction that removes the job
//! from the host's list. 2xx tells daprd the job was handled. Each reminder is queued once
//! (`storage::jobs::fire`): a repeated trigger, a trigger of a job cancelled after it was sent,
//! and one of a version rescheduled since to another due date queue nothing.
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
use std::sync::Arc;

pub async fn fire(
    State(state): State<Arc<DaprState>>,
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
    let event_id = message.event_id().to_string();
    let firing = jobs::fire(&mut tx, &name, Some(&event_id), now.timestamp_millis()).await?;
    if let jobs::Firing::Publish(payload) = &firing {
        outbox::enqueue(
            &mut tx,
            topics::REMINDERS,
            message.user_id().as_str(),
            payload,
            now.timestamp_millis(),
        )
        .await?;
    }
    tx.commit().await?;
    match firing {
        jobs::Firing::Publish(_) => {
            state.wakers.relay.notify_one();
            tracing::info!(job = %name, %event_id, "reminder job fired");
        }
        jobs::Firing::AlreadyFired => {
            tracing::info!(job = %name, %event_id, "a repeated trigger of a reminder published already: acknowledged, nothing queued")
        }
        jobs::Firing::NotListed => {
            tracing::info!(job = %name, %event_id, "a trigger of a job no longer scheduled (fired already, or cancelled): acknowledged, nothing queued")
        }
        jobs::Firing::Superseded => {
            tracing::info!(job = %name, %event_id, "a trigger of an earlier version of a rescheduled job: acknowledged, nothing queued; the newer version stays scheduled")
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
