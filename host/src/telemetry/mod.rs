//! Traces and logs: what an operator follows to see where a message went.
//!
//! Logs are `tracing` events, human-readable by default and JSON lines with
//! `--log-format json`; the pipeline's `message` and `component` spans put the event id, topic,
//! component and version on every line about a message (`subscriber.rs`).
//!
//! Traces are OpenTelemetry spans made from the same `tracing` spans (tracing-opentelemetry),
//! exported with OTLP only when an endpoint is configured (`config.rs`, `export.rs`). One task
//! write is one trace:
//!
//! ```text
//! http.request                     POST /api/tasks (continues an incoming `traceparent`)
//! └ outbox.deliver                 the relay, later, continuing the outbox row's `traceparent`
//!   ├ dapr.publish                 (Dapr mode: to the sidecar, with `traceparent`/`tracestate`)
//!   └ message                      the pipeline, once per delivery (event id, topic, user)
//!     └ component                  once per subscribed component (name, version, outcome)
//!       ├ component.call           the wasm call on the blocking pool
//!       ├ effect                   once per effect applied (kind), in the commit's transaction
//!       └ ws.push                  a sync message pushed to the user's WebSockets
//! ```
//!
//! In Dapr mode the `message` span hangs under `dapr.delivery` → `cloudevent`, which continues
//! the CloudEvent's `traceparent` extension (daprd carries the publisher's context there), so
//! the trace goes on through Kafka. Writes that components cause (a recurring task's next
//! instance, a reminder) go to the outbox with the component span's context: they stay in the
//! same trace.
//!
//! Spans that only matter to traces (request, relay, call, effect, push) use the
//! [`SPANS`] target, which the log filter turns off: with no exporter configured nothing enables
//! them, so `tracing` skips them at the call site and the per-message path pays nothing for them.

mod config;
mod export;
pub mod http;
mod propagation;
mod subscriber;

pub use config::TraceArgs;
pub use propagation::TraceContext;
pub use subscriber::{Telemetry, fmt_layer, init, log_filter, otel_layer};

/// The `tracing` target of spans made for traces only (never logged).
pub const SPANS: &str = "taskhost::spans";

/// Puts a component's outcome on its span in the trace (an error status when it failed).
/// Touches only the OpenTelemetry layer: nothing is logged, nothing allocated with traces off.
pub fn record_outcome(span: &tracing::Span, outcome: &'static str, failure: Option<&str>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    span.set_attribute("outcome", outcome);
    if let Some(reason) = failure {
        span.set_status(opentelemetry::trace::Status::error(reason.to_string()));
    }
}
