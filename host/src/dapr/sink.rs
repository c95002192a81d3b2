//! The Dapr sink: the outbox relay publishes through the sidecar. Rows on the internal
//! `__dapr/…` topics are sidecar calls other than publishing (Jobs API, output bindings) that
//! the effects queued in their transaction (`storage::sidecar_calls`), so they too happen
//! exactly when the change commits.

use super::client::{Sidecar, SidecarError};
use crate::delivery::OutboxSink;
use crate::pipeline::{Answer, Attempt, DeadLetters, Undelivered};
use crate::storage::outbox::OutboxRow;
use crate::storage::sidecar_calls::{BINDING_TOPIC, BindingCall, JOBS_TOPIC, JobCall};
use crate::telemetry::TraceContext;
use tracing::Instrument;

pub struct DaprSink {
    sidecar: Sidecar,
    pubsub: String,
    dead_letters: DeadLetters,
}

/// Why a row was not handed to the sidecar.
enum NotSent {
    /// The sidecar refused or is away.
    Sidecar(SidecarError),
    /// The row is no call the sink can make: no later attempt can send it.
    Unreadable(String),
}

impl DaprSink {
    pub fn new(sidecar: Sidecar, pubsub: String, dead_letters: DeadLetters) -> Self {
        Self {
            sidecar,
            pubsub,
            dead_letters,
        }
    }

    async fn send(&self, row: &OutboxRow) -> Result<(), NotSent> {
        match row.topic.as_str() {
            JOBS_TOPIC => match serde_json::from_str::<JobCall>(&row.payload) {
                Ok(JobCall::Schedule {
                    name,
                    due_time,
                    data,
                }) => self.sidecar.schedule_job(&name, &due_time, data).await,
                Ok(JobCall::Delete { name }) => self.sidecar.delete_job(&name).await,
                Err(e) => return Err(NotSent::Unreadable(format!("unreadable job call: {e}"))),
            },
            BINDING_TOPIC => match serde_json::from_str::<BindingCall>(&row.payload) {
                Ok(c) => self.sidecar.invoke_binding(&c.binding, c.data).await,
                Err(e) => {
                    return Err(NotSent::Unreadable(format!("unreadable binding call: {e}")));
                }
            },
            topic => {
                // daprd puts the `traceparent`/`tracestate` it receives into the CloudEvent, so
                // the consumer's delivery continues this span's trace.
                let span = tracing::info_span!(target: crate::telemetry::SPANS, "dapr.publish", otel.kind = "producer", topic, pubsub = %self.pubsub);
                let trace = TraceContext::of(&span);
                self.sidecar
                    .publish(
                        &self.pubsub,
                        topic,
                        &row.partition_key,
                        &row.payload,
                        trace.as_ref(),
                    )
                    .instrument(span)
                    .await
            }
        }
        .map_err(NotSent::Sidecar)
    }
}

#[async_trait::async_trait]
impl OutboxSink for DaprSink {
    async fn forward(&self, row: &OutboxRow, _attempt: Attempt) -> Answer {
        match self.send(row).await {
            Ok(()) => Answer::Done,
            // The sidecar is down or starting, or the broker or scheduler behind it is away:
            // hold everything until it is back, without spending the row's attempts (an
            // outage would otherwise dead-letter every row written meanwhile; `backend.rs`).
            Err(NotSent::Sidecar(
                e @ (SidecarError::Unreachable { .. } | SidecarError::BackendUnavailable { .. }),
            )) => Answer::Hold(e.to_string()),
            Err(NotSent::Sidecar(e)) => Answer::Retry(e.to_string()),
            Err(NotSent::Unreadable(reason)) => {
                let recorded = self
                    .dead_letters
                    .undelivered(Undelivered {
                        topic: &row.topic,
                        id: None,
                        payload: row.payload.as_bytes(),
                        reason: &reason,
                        attempts: row.attempts + 1,
                        exhausted: false,
                        forwarded_to: None,
                    })
                    .await;
                match recorded {
                    Ok(()) => Answer::Drop(reason),
                    Err(e) => Answer::Retry(format!("{reason}; recording it failed: {e}")),
                }
            }
        }
    }
}
