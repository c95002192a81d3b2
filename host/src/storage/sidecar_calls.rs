//! Calls to the Dapr sidecar other than publishing — Jobs API and output-binding calls — queued
//! in the outbox by the effects that cause them, in the same transaction, so they happen exactly
//! when the change commits. They travel as outbox rows on the internal `__dapr/…` topics; the
//! Dapr sink (`dapr/sink.rs`) reads them back and makes the call.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Outbox topic for Jobs API calls.
pub const JOBS_TOPIC: &str = "__dapr/jobs";
/// Outbox topic for output-binding calls.
pub const BINDING_TOPIC: &str = "__dapr/binding";

/// A Jobs API call.
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

/// An output-binding call (`create` operation).
#[derive(Debug, Serialize, Deserialize)]
pub struct BindingCall {
    pub binding: String,
    pub data: Value,
}
