//! The sidecar client (app → daprd), over HTTP with reqwest. Every call carries
//! `dapr-api-token` when one is configured.

use crate::telemetry::TraceContext;
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error("the Dapr sidecar at {endpoint} is unreachable: {source}")]
    Unreachable {
        endpoint: String,
        source: reqwest::Error,
    },
    #[error("the Dapr sidecar answered {status} to {what}: {body}")]
    Status {
        what: String,
        status: StatusCode,
        body: String,
    },
}

#[derive(Clone)]
pub struct Sidecar {
    http: Client,
    endpoint: String,
    token: Option<String>,
}

impl Sidecar {
    pub fn new(endpoint: String, token: Option<String>) -> anyhow::Result<Self> {
        let http = Client::builder()
            .timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(16)
            .build()?;
        Ok(Self {
            http,
            endpoint,
            token,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self
            .http
            .request(method, format!("{}{path}", self.endpoint));
        match &self.token {
            Some(t) => r.header("dapr-api-token", t),
            None => r,
        }
    }

    async fn send(&self, what: &str, r: RequestBuilder) -> Result<reqwest::Response, SidecarError> {
        let resp = r.send().await.map_err(|source| SidecarError::Unreachable {
            endpoint: self.endpoint.clone(),
            source,
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        Err(SidecarError::Status {
            what: what.to_string(),
            status,
            body,
        })
    }

    /// Whether the sidecar's components (pub/sub, ...) are ready: `/v1.0/healthz/outbound`.
    pub async fn outbound_ready(&self) -> bool {
        self.send(
            "healthz/outbound",
            self.request(Method::GET, "/v1.0/healthz/outbound"),
        )
        .await
        .is_ok()
    }

    /// Publishes a JSON payload; `key` becomes the Kafka partition key (per-user order), and
    /// `trace` the CloudEvent's `traceparent`/`tracestate`.
    pub async fn publish(
        &self,
        pubsub: &str,
        topic: &str,
        key: &str,
        payload: &str,
        trace: Option<&TraceContext>,
    ) -> Result<(), SidecarError> {
        let mut r = self
            .request(Method::POST, &format!("/v1.0/publish/{pubsub}/{topic}"))
            .query(&[("metadata.partitionKey", key)])
            .header("content-type", "application/json")
            .body(payload.to_string());
        if let Some(t) = trace {
            r = r.header("traceparent", &t.traceparent);
            if !t.tracestate.is_empty() {
                r = r.header("tracestate", &t.tracestate);
            }
        }
        self.send(&format!("publish to {topic}"), r)
            .await
            .map(|_| ())
    }

    /// Creates or replaces a one-shot job due at `due_time` (RFC 3339), carrying `data`.
    pub async fn schedule_job(
        &self,
        name: &str,
        due_time: &str,
        data: Value,
    ) -> Result<(), SidecarError> {
        let body = serde_json::json!({ "dueTime": due_time, "data": data, "overwrite": true });
        let r = self
            .request(Method::POST, &format!("/v1.0-alpha1/jobs/{name}"))
            .json(&body);
        self.send(&format!("schedule job {name}"), r)
            .await
            .map(|_| ())
    }

    /// Deletes a job; deleting one that does not exist succeeds.
    pub async fn delete_job(&self, name: &str) -> Result<(), SidecarError> {
        let r = self.request(Method::DELETE, &format!("/v1.0-alpha1/jobs/{name}"));
        self.send(&format!("delete job {name}"), r)
            .await
            .map(|_| ())
    }

    /// Sends data to an output binding.
    pub async fn invoke_binding(&self, binding: &str, data: Value) -> Result<(), SidecarError> {
        let body = serde_json::json!({ "operation": "create", "data": data, "metadata": {} });
        let r = self
            .request(Method::POST, &format!("/v1.0/bindings/{binding}"))
            .json(&body);
        self.send(&format!("binding {binding}"), r)
            .await
            .map(|_| ())
    }
}
