//! The Dapr sink: the outbox relay publishes through the sidecar. Rows on the internal
//! `__dapr/…` topics are sidecar calls other than publishing (Jobs API, output bindings) that
//! the effects queued in their transaction, so they too happen exactly when the change commits.

use super::client::{Sidecar, SidecarError};
use crate::delivery::{OutboxSink, SinkResult};
use crate::storage::outbox::OutboxRow;
use crate::telemetry::TraceContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

/// Outbox topic for Jobs API calls.
pub const JOBS_TOPIC: &str = "__dapr/jobs";
/// Outbox topic for output-binding calls.
pub const BINDING_TOPIC: &str = "__dapr/binding";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum JobCall {
    Schedule {
        name: String,
        due_time: String,
        data: Value,
    },
    Delete {
        name: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BindingCall {
    pub binding: String,
    pub data: Value,
}

pub struct DaprSink {
    sidecar: Sidecar,
    pubsub: String,
}

impl DaprSink {
    pub fn new(sidecar: Sidecar, pubsub: String) -> Self {
        Self { sidecar, pubsub }
    }

    async fn call(&self, row: &OutboxRow) -> Result<(), SidecarError> {
        match row.topic.as_str() {
            JOBS_TOPIC => match serde_json::from_str::<JobCall>(&row.payload) {
                Ok(JobCall::Schedule {
                    name,
                    due_time,
                    data,
                }) => self.sidecar.schedule_job(&name, &due_time, data).await,
                Ok(JobCall::Delete { name }) => self.sidecar.delete_job(&name).await,
                Err(e) => {
                    tracing::error!(outbox_id = row.id, error = %e, "skipping an unreadable job call");
                    Ok(())
                }
            },
            BINDING_TOPIC => match serde_json::from_str::<BindingCall>(&row.payload) {
                Ok(c) => self.sidecar.invoke_binding(&c.binding, c.data).await,
                Err(e) => {
                    tracing::error!(outbox_id = row.id, error = %e, "skipping an unreadable binding call");
                    Ok(())
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
    }
}

#[async_trait::async_trait]
impl OutboxSink for DaprSink {
    async fn deliver(&self, row: &OutboxRow, _final_attempt: bool) -> SinkResult {
        match self.call(row).await {
            Ok(()) => SinkResult::Done,
            // The sidecar is down or starting: hold everything until it is back, without
            // spending the row's attempts.
            Err(e @ SidecarError::Unreachable { .. }) => SinkResult::Unavailable(e.to_string()),
            Err(e) => SinkResult::Retry(e.to_string()),
        }
    }
}
