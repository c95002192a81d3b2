//! `POST /dapr/dead-letters/{topic}`: a message arrived on `{topic}-dlq`.
//!
//! Two ways a message gets there. This app dropped it: its dead letter, with the reason, was
//! recorded when it was answered `DROP`, and the arrival is only noted on that row (one dead
//! letter per message, not two). Or daprd gave up retrying it (taskhost was down longer than
//! the resiliency policy's budget, say): then it is handled once more now — exactly-once makes
//! a late or repeated delivery safe — and dead-lettered only if that fails too.

use super::DaprState;
use super::cloudevent;
use crate::pipeline::{Answer, Attempt, Received, Undelivered, dlq_topic, message_key};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;

pub async fn arrived(
    State(state): State<Arc<DaprState>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let dlq = dlq_topic(&topic);
    let unwrapped = serde_json::from_slice::<Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|v| cloudevent::unwrap(v, &content_type));
    let answer = match unwrapped {
        Ok(event) => {
            let key = message_key(None, event.id.as_deref(), &event.payload);
            tracing::warn!(topic = %dlq, event_id = %key, "message arrived on the dead-letter topic");
            let dead_letters = state.pipeline.dead_letters();
            match dead_letters.forwarded(&topic, &key).await {
                Ok(true) => Answer::Done,
                Ok(false) => {
                    let received = Received {
                        topic: &topic,
                        payload: &event.payload,
                        id: event.id.as_deref(),
                    };
                    match state.pipeline.handle(received, Attempt::LAST).await.answer {
                        Answer::Done => {
                            tracing::info!(topic = %dlq, event_id = %key, "recovered a message from the dead-letter topic");
                            Answer::Done
                        }
                        // Dead-lettered now: note where it came from.
                        Answer::Drop(reason) => match dead_letters.forwarded(&topic, &key).await {
                            Ok(_) => Answer::Drop(reason),
                            Err(e) => Answer::Retry(e.to_string()),
                        },
                        other => other,
                    }
                }
                Err(e) => Answer::Retry(format!("cannot look up its dead letter: {e}")),
            }
        }
        Err(reason) => {
            // Refused on arrival already (the same bytes, so the same key), or never seen.
            let dead_letters = state.pipeline.dead_letters();
            let key = message_key(None, None, &body);
            let reason = format!("arrived on {dlq} and cannot be read: {reason}");
            let recorded = match dead_letters.forwarded(&topic, &key).await {
                Ok(true) => Ok(()),
                Ok(false) => {
                    dead_letters
                        .undelivered(Undelivered {
                            topic: &topic,
                            id: None,
                            payload: &body,
                            reason: &reason,
                            attempts: 1,
                            exhausted: false,
                            forwarded_to: Some(&dlq),
                        })
                        .await
                }
                Err(e) => Err(e),
            };
            match recorded {
                Ok(()) => Answer::Drop(reason),
                Err(e) => Answer::Retry(format!("{reason}; recording it failed: {e}")),
            }
        }
    };
    // The message is on its last stop: anything but a retry is acknowledged, since its dead
    // letter is recorded.
    let status = match &answer {
        Answer::Retry(reason) | Answer::Hold(reason) => {
            tracing::warn!(topic = %dlq, %reason, "RETRY: cannot settle a dead-lettered message for now");
            "RETRY"
        }
        Answer::Done | Answer::Drop(_) => "SUCCESS",
    };
    Json(json!({ "status": status }))
}
