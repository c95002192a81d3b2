//! Calling the components a message goes to: one hand-off to the wasm threads per message
//! (`executor.rs`), the calls one after another on that thread, each on a fresh instance
//! inside its component's span.

use super::verdict::Failure;
use crate::domain::Effect;
use crate::runtime::{LoadedComponent, Runtime, convert, wit};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// What one component answered, as effects the host can apply, or why it did not.
pub(super) type Called = Result<Vec<Effect>, Failure>;

/// Calls each of `components` with `message`, in order, each inside its span of `spans`.
/// Returns one result per component, in the same order.
pub(super) async fn call_all(
    threads: &super::executor::WasmThreads,
    runtime: &Runtime,
    components: &[Arc<LoadedComponent>],
    spans: &[tracing::Span],
    topic: &str,
    message: wit::Message,
    now: DateTime<Utc>,
) -> Vec<Called> {
    let (runtime, components, spans, topic) = (
        runtime.clone(),
        components.to_vec(),
        spans.to_vec(),
        topic.to_string(),
    );
    let count = components.len();
    let calls = threads.run(move || {
        components
            .iter()
            .zip(&spans)
            .map(|(component, span)| {
                // The call runs inside the component span, so what the component writes to
                // stderr is logged with the message's event id and topic and its version.
                let _component = span.enter();
                let _call = tracing::info_span!(target: crate::telemetry::SPANS, "component.call", component = %component.name, version = %component.version).entered();
                let started = std::time::Instant::now();
                let answer = runtime.call(component, &topic, &message, now.timestamp_millis());
                component
                    .metrics
                    .call_duration(started.elapsed().as_secs_f64());
                effects_of(answer)
            })
            .collect::<Vec<Called>>()
    })
    .await;
    match calls {
        Ok(calls) => calls,
        Err(e) => (0..count)
            .map(|_| Err(Failure::Aborted(e.clone())))
            .collect(),
    }
}

/// The host's effects from a call's result, or the failure it amounts to.
fn effects_of(result: Result<crate::runtime::Answer, crate::runtime::CallError>) -> Called {
    match result.map_err(Failure::Call)? {
        Ok(effects) => effects
            .into_iter()
            .map(convert::effect_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(Failure::InvalidEffect),
        Err(wit::Failure::Retry(reason)) => Err(Failure::AskedToRetry(reason)),
        Err(wit::Failure::Drop(reason)) => Err(Failure::Dropped(reason)),
    }
}
