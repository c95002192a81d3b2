//! W3C trace context across process and time boundaries: an outbox row, a publish to the
//! sidecar, a CloudEvent, an HTTP request. The wire format is the standard `traceparent` /
//! `tracestate` pair, read and written by OpenTelemetry's [`TraceContextPropagator`].

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The context of one span, as carried outside the process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: String,
    /// Vendor state; empty when there is none.
    pub tracestate: String,
}

impl TraceContext {
    /// The context of the current span; `None` when it is not traced (no exporter configured),
    /// which costs a lookup and no allocation.
    pub fn current() -> Option<Self> {
        Self::of(&Span::current())
    }

    /// The context of `span`; `None` when it is not traced.
    pub fn of(span: &Span) -> Option<Self> {
        let cx = span.context();
        if !cx.span().span_context().is_valid() {
            return None;
        }
        let mut out = Self::default();
        TraceContextPropagator::new().inject_context(&cx, &mut out);
        (!out.traceparent.is_empty()).then_some(out)
    }

    /// A context received from outside; `None` when there is no `traceparent`.
    pub fn received(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<Self> {
        let traceparent = traceparent.map(str::trim).filter(|t| !t.is_empty())?;
        Some(Self {
            traceparent: traceparent.to_string(),
            tracestate: tracestate.unwrap_or_default().trim().to_string(),
        })
    }

    /// Makes `span` a child of this context (call it right after creating the span, before
    /// anything runs in it). A malformed `traceparent` is ignored, with a debug line: the span
    /// then starts a trace of its own.
    pub fn continue_in(&self, span: &Span) {
        if span.is_disabled() {
            return;
        }
        let cx = TraceContextPropagator::new().extract(self);
        if !cx.span().span_context().is_valid() {
            tracing::debug!(traceparent = %self.traceparent, "ignoring a malformed traceparent");
            return;
        }
        if let Err(e) = span.set_parent(cx) {
            tracing::debug!(error = %e, "cannot continue the received trace context");
        }
    }
}

impl Injector for TraceContext {
    fn set(&mut self, key: &str, value: String) {
        match key {
            TRACEPARENT => self.traceparent = value,
            TRACESTATE => self.tracestate = value,
            _ => {}
        }
    }
}

impl Extractor for TraceContext {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => Some(self.traceparent.as_str()),
            TRACESTATE => Some(self.tracestate.as_str()).filter(|s| !s.is_empty()),
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untraced_spans_have_no_context() {
        // No OpenTelemetry layer in unit tests: nothing to carry.
        assert_eq!(TraceContext::current(), None);
        assert_eq!(TraceContext::of(&tracing::info_span!("x")), None);
    }

    #[test]
    fn received_needs_a_traceparent() {
        assert_eq!(TraceContext::received(None, Some("a=b")), None);
        assert_eq!(TraceContext::received(Some("  "), None), None);
        let cx = TraceContext::received(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("congo=t61rcWkgMzE"),
        )
        .unwrap();
        let parsed = TraceContextPropagator::new().extract(&cx);
        let sc = parsed.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(sc.trace_state().header(), "congo=t61rcWkgMzE");
    }
}
