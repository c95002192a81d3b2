//! The server span of each HTTP request: the root of a task write's trace, or the continuation
//! of the caller's (an incoming `traceparent`, e.g. from daprd or a traced frontend).

use super::{SPANS, TraceContext};
use axum::extract::{MatchedPath, Request};
use axum::http::Response;
use axum::middleware::Next;
use opentelemetry::trace::TraceContextExt;
use std::time::Duration;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// For `TraceLayer::make_span_with`: named after the method until the route is known.
pub fn request_span<B>(request: &axum::http::Request<B>) -> Span {
    let span = tracing::info_span!(
        target: SPANS,
        "http.request",
        otel.name = %request.method(),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
        http.route = Empty,
        http.response.status_code = Empty,
    );
    if !span.is_disabled() {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        if let Some(cx) = TraceContext::received(header("traceparent"), header("tracestate")) {
            cx.continue_in(&span);
        }
    }
    span
}

/// For `TraceLayer::on_response`: the status, and an error status for 5xx.
pub fn record_response<B>(response: &Response<B>, _latency: Duration, span: &Span) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// A route layer: names the request span after its route (`POST /api/tasks/{id}`), which has
/// no ids in it, unlike the path.
pub async fn record_route(request: Request, next: Next) -> axum::response::Response {
    let span = Span::current();
    if !span.is_disabled()
        && let Some(route) = request.extensions().get::<MatchedPath>()
    {
        span.record("http.route", route.as_str());
        // The span has started by now (recording `otel.name` would be ignored): rename it.
        span.context()
            .span()
            .update_name(format!("{} {}", request.method(), route.as_str()));
    }
    next.run(request).await
}
