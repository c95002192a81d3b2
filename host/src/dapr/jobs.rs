//! `POST /job/{name}`: daprd's scheduler fired a reminder job. Its data is the `reminders`
//! message the job was created with; it goes to the outbox (so it is published to
//! `reminders` durably, in order for the user) in the same transaction that removes the job
//! from the host's list. 2xx tells daprd the job was handled.

use crate::api::AppState;
use crate::api::error::{ApiError, ApiResult};
use crate::domain::topics;
use crate::storage::{jobs, outbox};
use crate::wire;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bytes::Bytes;

pub async fn fire(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let now = wire::time::now();
    // Validate before accepting: a job whose data does not decode is refused (daprd retries a
    // few times, then gives up) and the reason is logged.
    let message = wire::decode(topics::REMINDERS, &body, now).map_err(|e| {
        tracing::warn!(job = %name, reason = %e, "refusing a job whose data is not a reminder");
        ApiError::bad_request(e.to_string())
    })?;
    let mut tx = state.db.begin().await?;
    outbox::enqueue(
        &mut tx,
        topics::REMINDERS,
        message.user_id().as_str(),
        &String::from_utf8_lossy(&body),
        now.timestamp_millis(),
    )
    .await?;
    jobs::delete(&mut tx, &name).await?;
    tx.commit().await?;
    state.wakers.relay.notify_one();
    tracing::info!(job = %name, event_id = %message.event_id(), "reminder job fired");
    Ok(StatusCode::NO_CONTENT)
}
