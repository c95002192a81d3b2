//! The sidecar client (app → daprd), over HTTP with reqwest. Every call carries
//! `dapr-api-token` when one is configured.
//!
//! Reminder jobs go through the Jobs API's stable endpoints, `/v1.0/jobs/{name}` (Dapr 1.18 made
//! the API stable and deprecated `/v1.0-alpha1/jobs`). An older daprd has no such route and
//! answers with its service-invocation fallback; that answer becomes
//! [`SidecarError::JobsApiUnsupported`], which says to upgrade the sidecar.

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
    /// daprd answered that the backend of the building block (the broker, the scheduler) is
    /// away: transient however long it lasts (`backend.rs`).
    #[error("{backend} behind the Dapr sidecar is unavailable ({what}: {status} {body})")]
    BackendUnavailable {
        backend: &'static str,
        what: String,
        status: StatusCode,
        body: String,
    },
    #[error(
        "the Dapr sidecar at {endpoint} does not serve the stable Jobs API ({what}: {status} {body}); \
         taskhost schedules reminders through {JOBS_PATH}, which needs Dapr 1.18 or newer: upgrade \
         daprd (the job call is retried, then dead-lettered, and can be replayed after the upgrade)"
    )]
    JobsApiUnsupported {
        endpoint: String,
        what: String,
        status: StatusCode,
        body: String,
    },
}

/// The Jobs API's stable endpoints (Dapr >= 1.18).
pub const JOBS_PATH: &str = "/v1.0/jobs";

/// Whether daprd answered a call on a route it does not have. daprd routes every unknown path to
/// service invocation, which, without a `dapr-app-id`, answers (checked with daprd 1.16.5)
/// `404 {"errorCode":"ERR_DIRECT_INVOKE","message":"failed getting app id either from the URL
/// path or the header dapr-app-id"}`. A Jobs API error of a daprd that has the route carries
/// another code (`ERR_SCHEDULER_…`, `ERR_JOB_…`).
fn is_unknown_route(status: StatusCode, body: &str) -> bool {
    status == StatusCode::NOT_FOUND
        && serde_json::from_str::<Value>(body)
            .is_ok_and(|v| v["errorCode"].as_str() == Some("ERR_DIRECT_INVOKE"))
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
        if let Some(backend) = super::backend::unavailable(status, &body) {
            return Err(SidecarError::BackendUnavailable {
                backend,
                what: what.to_string(),
                status,
                body,
            });
        }
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
            .request(Method::POST, &format!("{JOBS_PATH}/{name}"))
            .json(&body);
        self.send_job(&format!("schedule job {name}"), r).await
    }

    /// Deletes a job; deleting one that does not exist succeeds.
    pub async fn delete_job(&self, name: &str) -> Result<(), SidecarError> {
        let r = self.request(Method::DELETE, &format!("{JOBS_PATH}/{name}"));
        self.send_job(&format!("delete job {name}"), r).await
    }

    /// [`Self::send`] for a Jobs API call: a sidecar without the stable route says so.
    async fn send_job(&self, what: &str, r: RequestBuilder) -> Result<(), SidecarError> {
        match self.send(what, r).await {
            Ok(_) => Ok(()),
            Err(SidecarError::Status { what, status, body }) if is_unknown_route(status, &body) => {
                Err(SidecarError::JobsApiUnsupported {
                    endpoint: self.endpoint.clone(),
                    what,
                    status,
                    body,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The sidecar's Dapr version (`runtimeVersion` of `GET /v1.0/metadata`), `None` when the
    /// sidecar does not report one.
    pub async fn runtime_version(&self) -> Result<Option<String>, SidecarError> {
        let resp = self
            .send("metadata", self.request(Method::GET, "/v1.0/metadata"))
            .await?;
        let body: Value = resp.json().await.unwrap_or_default();
        Ok(body["runtimeVersion"].as_str().map(str::to_owned))
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::http::StatusCode as AxumStatus;
    use axum::routing::any;
    use serde_json::json;

    /// A fake sidecar answering every request with `status` and `body`, as daprd would.
    async fn sidecar_answering(status: u16, body: &'static str) -> Sidecar {
        let app = Router::new().fallback(any(move || async move {
            (
                AxumStatus::from_u16(status).expect("a status"),
                [("content-type", "application/json")],
                body,
            )
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Sidecar::new(format!("http://{addr}"), None).unwrap()
    }

    /// daprd 1.16.5's answer to `POST /v1.0/jobs/{name}` (no such route: service invocation's
    /// fallback), taken from a real daprd 1.16.5.
    const DAPRD_1_16_UNKNOWN_ROUTE: &str = r#"{"errorCode":"ERR_DIRECT_INVOKE","message":"failed getting app id either from the URL path or the header dapr-app-id"}"#;

    #[tokio::test]
    async fn a_sidecar_without_the_stable_jobs_api_is_named_as_too_old() {
        let sidecar = sidecar_answering(404, DAPRD_1_16_UNKNOWN_ROUTE).await;
        for result in [
            sidecar
                .schedule_job("j", "2030-01-01T00:00:00Z", json!({}))
                .await,
            sidecar.delete_job("j").await,
        ] {
            let err = result.expect_err("the job call must fail");
            assert!(
                matches!(err, SidecarError::JobsApiUnsupported { .. }),
                "{err:?}"
            );
            let text = err.to_string();
            assert!(
                text.contains("/v1.0/jobs") && text.contains("Dapr 1.18 or newer"),
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn a_jobs_api_error_of_a_current_sidecar_stays_a_status_error() {
        let sidecar = sidecar_answering(
            500,
            r#"{"errorCode":"ERR_SCHEDULE_JOB","message":"failed to schedule job"}"#,
        )
        .await;
        let err = sidecar
            .schedule_job("j", "2030-01-01T00:00:00Z", json!({}))
            .await
            .expect_err("the job call must fail");
        assert!(matches!(err, SidecarError::Status { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn an_unknown_route_elsewhere_is_not_blamed_on_the_jobs_api() {
        let sidecar = sidecar_answering(404, DAPRD_1_16_UNKNOWN_ROUTE).await;
        let err = sidecar
            .publish("pubsub", "topic", "key", "{}", None)
            .await
            .expect_err("the publish must fail");
        assert!(matches!(err, SidecarError::Status { .. }), "{err:?}");
    }
}
