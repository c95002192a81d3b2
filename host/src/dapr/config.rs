//! How taskhost finds and talks to its Dapr sidecar.

use anyhow::bail;
use clap::{Args, ValueEnum};

/// How messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeliveryMode {
    /// No sidecar: the outbox relay calls the components in-process and reminder jobs fire from
    /// the database (the default, for `just run`).
    Embedded,
    /// Through a Dapr sidecar: the relay publishes to pub/sub, deliveries arrive as app
    /// callbacks, reminder jobs go to the Dapr Jobs API.
    Dapr,
}

#[derive(Debug, Clone, Args)]
pub struct DaprArgs {
    /// embedded (no sidecar) or dapr.
    #[arg(
        long,
        env = "TASKHOST_DELIVERY",
        value_enum,
        default_value = "embedded"
    )]
    pub delivery: DeliveryMode,
    /// The sidecar's HTTP endpoint (default: http://127.0.0.1:$DAPR_HTTP_PORT, port 3500).
    #[arg(long, env = "DAPR_HTTP_ENDPOINT")]
    pub dapr_http_endpoint: Option<String>,
    /// Set by `dapr run` and the Dapr sidecar injector.
    #[arg(long, env = "DAPR_HTTP_PORT", default_value_t = 3500)]
    pub dapr_http_port: u16,
    /// The pub/sub component to publish to and subscribe on.
    #[arg(long, env = "TASKHOST_DAPR_PUBSUB", default_value = "pubsub-kafka")]
    pub dapr_pubsub: String,
    /// Sent as `dapr-api-token` on every call to the sidecar.
    #[arg(long, env = "DAPR_API_TOKEN", hide_env_values = true)]
    pub dapr_api_token: Option<String>,
    /// When set, every callback from the sidecar must carry it as `dapr-api-token`.
    #[arg(long, env = "APP_API_TOKEN", hide_env_values = true)]
    pub app_api_token: Option<String>,
    /// Subscribe with bulk delivery (batches of up to 100 messages).
    #[arg(long, env = "TASKHOST_DAPR_BULK", default_value_t = true, action = clap::ArgAction::Set)]
    pub dapr_bulk: bool,
    /// Also send every notification to this Dapr output binding (e.g. SMTP, Twilio), if set.
    #[arg(long, env = "TASKHOST_NOTIFICATION_BINDING")]
    pub notification_binding: Option<String>,
    /// Several replicas: publish each socket push to `task-updates` (through the outbox) and
    /// push to this replica's sockets only from `POST /dapr/sockets/task-updates`, which a
    /// subscription on a pub/sub with a consumer group per sidecar must deliver (the Helm
    /// chart's `dapr.socketFanout`). Off: push directly after the commit (one replica).
    #[arg(long, env = "TASKHOST_DAPR_SOCKET_FANOUT", default_value_t = false, action = clap::ArgAction::Set)]
    pub dapr_socket_fanout: bool,
}

impl DaprArgs {
    pub fn endpoint(&self) -> String {
        self.dapr_http_endpoint
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", self.dapr_http_port))
            .trim_end_matches('/')
            .to_string()
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let ok = !self.dapr_pubsub.is_empty()
            && self
                .dapr_pubsub
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !ok {
            bail!(
                "TASKHOST_DAPR_PUBSUB `{}` is not a valid Dapr component name",
                self.dapr_pubsub
            );
        }
        let endpoint = self.endpoint();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            bail!("DAPR_HTTP_ENDPOINT `{endpoint}` must start with http:// or https://");
        }
        Ok(())
    }
}
