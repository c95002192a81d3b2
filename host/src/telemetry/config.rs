//! The trace settings: the standard OpenTelemetry variables, as `serve` flags.

use anyhow::bail;
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct TraceArgs {
    /// Export traces with OTLP over HTTP/protobuf to this collector base URL, e.g.
    /// http://otel-collector:4318 (`/v1/traces` is appended). Traces are off when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the exported spans.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "taskhost")]
    pub service_name: String,
}

impl TraceArgs {
    /// No export (for the commands other than `serve`).
    pub fn off() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "taskhost".into(),
        }
    }

    /// The collector to export to, checked; `None` when traces are off.
    pub fn endpoint(&self) -> anyhow::Result<Option<&str>> {
        let Some(endpoint) = self.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) else {
            return Ok(None);
        };
        if let Ok(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")
            && !protocol.is_empty()
            && protocol != "http/protobuf"
        {
            bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL is `{protocol}`: taskhost exports OTLP over http/protobuf only \
                 (the collector's port 4318); unset it or set it to http/protobuf"
            );
        }
        if endpoint.starts_with("https://") {
            bail!(
                "OTEL_EXPORTER_OTLP_ENDPOINT `{endpoint}`: taskhost's OTLP client speaks plain HTTP only; \
                 send to a collector next to it (e.g. http://localhost:4318) and let that one use TLS"
            );
        }
        if !endpoint.starts_with("http://") {
            bail!(
                "OTEL_EXPORTER_OTLP_ENDPOINT `{endpoint}` is not an http:// URL (expected e.g. http://otel-collector:4318)"
            );
        }
        if self.service_name.trim().is_empty() {
            bail!("OTEL_SERVICE_NAME must not be empty");
        }
        Ok(Some(endpoint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(endpoint: &str) -> TraceArgs {
        TraceArgs {
            otlp_endpoint: Some(endpoint.into()),
            ..TraceArgs::off()
        }
    }

    #[test]
    fn off_unless_an_endpoint_is_set() {
        assert_eq!(TraceArgs::off().endpoint().unwrap(), None);
        assert_eq!(with("").endpoint().unwrap(), None);
        assert_eq!(
            with("http://collector:4318").endpoint().unwrap(),
            Some("http://collector:4318")
        );
    }

    #[test]
    fn refuses_what_it_cannot_send_to() {
        let e = with("https://collector:4318").endpoint().unwrap_err();
        assert!(e.to_string().contains("plain HTTP"), "{e}");
        let e = with("collector:4318").endpoint().unwrap_err();
        assert!(e.to_string().contains("not an http:// URL"), "{e}");
    }
}
