//! The OTLP exporter behind the traces.
//!
//! Transport: OTLP over HTTP with protobuf bodies (`http-proto`), sent by reqwest's blocking
//! client from the batch span processor's own thread. Why:
//! - reqwest 0.13 is already in the host (the sidecar client), and opentelemetry-otlp 0.33 uses
//!   the same major version, so the exporter adds only the OpenTelemetry crates and prost;
//!   `grpc-tonic` would add tonic, h2 and its tower stack for the same spans.
//! - The SDK's batch processor runs on a dedicated thread, not on tokio: the blocking client
//!   suits it (the async client would need a tokio reactor on that thread), and a slow
//!   collector never occupies an async worker. Spans queue in memory (2048 by default) and are
//!   dropped, not blocked on, when the collector falls behind.
//!
//! Plain HTTP only (no TLS stack in the binary): send to a collector next to the host. The SDK
//! reads the standard variables we do not set here: `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_TRACES_SAMPLER`/`_ARG`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_BSP_*`.

use super::TraceArgs;
use anyhow::Context;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// A tracer provider exporting to `endpoint` (a collector's base URL).
pub fn provider(args: &TraceArgs, endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(&url)
        .build()
        .with_context(|| format!("setting up the OTLP trace exporter to {url}"))?;
    let resource = Resource::builder()
        .with_service_name(args.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
