//! The `tracing` subscriber: a log layer (text or JSON lines on stderr) and, when traces are
//! exported, an OpenTelemetry layer, each with its own filter so that trace-only spans never
//! reach the log and the log level never hides spans from a trace.

use super::{SPANS, TraceArgs, export};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] flushes what is still queued.
#[must_use = "dropping it without shutdown() may lose the last spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn traces_on(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still queued and stops the exporter (blocks for at most ~5 s when the
    /// collector does not answer). Call it after the runtime has stopped: the exporter thread
    /// is independent of tokio.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: flushing the last spans to the OTLP collector failed: {e}");
        }
    }
}

/// Installs the global subscriber: logs as `log_format` (`text` or `json`), and traces when
/// `traces` names an OTLP endpoint.
pub fn init(log_format: &str, traces: &TraceArgs) -> anyhow::Result<Telemetry> {
    let provider = traces
        .endpoint()?
        .map(|endpoint| export::provider(traces, endpoint))
        .transpose()?;
    tracing_subscriber::registry()
        .with(fmt_layer(log_format))
        .with(trace_layer(provider.as_ref()))
        .try_init()?;
    if let Some(endpoint) = traces.endpoint()? {
        tracing::info!(%endpoint, service = %traces.service_name, "exporting traces with OTLP");
    }
    Ok(Telemetry { provider })
}

/// What the log shows: `TASKHOST_LOG` (a `tracing` filter) or `info` with sqlx and tower-http
/// quieter; never the trace-only spans.
pub fn log_filter() -> EnvFilter {
    EnvFilter::try_from_env("TASKHOST_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"))
        .add_directive(format!("{SPANS}=off").parse().expect("a valid directive"))
}

/// The log layer, filtered by [`log_filter`]. JSON lines carry the current span and the list of
/// enclosing spans, so `event_id`, `topic`, `component` and `version` are on every line about a
/// message.
pub fn fmt_layer<S>(format: &str) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // Colours only for a person at a terminal: a log collector (kubectl logs, a file) would
    // get escape codes in every line, and styling each span's fields costs CPU per message.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if format == "json" {
        layer
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .with_filter(log_filter())
            .boxed()
    } else {
        layer.with_filter(log_filter()).boxed()
    }
}

/// The trace layer when spans are exported, and otherwise a layer that wants nothing.
///
/// Not an `Option` layer: `None` counts as a layer interested in *everything*, so every
/// trace-only span ([`SPANS`]: a request's, each component call's, each effect's) would still
/// be created, entered and closed in the registry with traces off. With this one saying
/// "never", those spans are disabled at their call site and cost nothing.
fn trace_layer<S>(provider: Option<&SdkTracerProvider>) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    match provider {
        Some(provider) => otel_layer(provider).boxed(),
        None => tracing_subscriber::layer::Identity::new()
            .with_filter(LevelFilter::OFF)
            .boxed(),
    }
}

/// Spans (and the events inside them) that go to the trace: everything of taskhost's at info
/// and above, including the trace-only [`SPANS`], whatever the log filter says.
pub fn otel_layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("taskhost"))
        .with_location(false)
        .with_threads(false)
        .with_filter(
            Targets::new()
                .with_target("taskhost", LevelFilter::INFO)
                .with_target(SPANS, LevelFilter::INFO),
        )
}
