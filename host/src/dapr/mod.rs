//! The Dapr edge: one more way in and out of the same pipeline.
//!
//! In: daprd calls the app — `GET /dapr/subscribe` (`subscribe.rs`), deliveries on
//! `/dapr/events/{topic}` and the socket fan-out on `/dapr/sockets/{topic}` (CloudEvents, single
//! or bulk: `events.rs`), dead-letter topic arrivals on `/dapr/dead-letters/{topic}`
//! (`dead_letters.rs`), due jobs on `/job/{name}` (`jobs.rs`). Out: the outbox relay publishes
//! through the sidecar and makes the Jobs API and output-binding calls the effects queued
//! (`sink.rs`, over `client.rs`).

pub mod backend;
pub mod client;
pub mod cloudevent;
pub mod config;
pub mod dead_letters;
pub mod events;
pub mod jobs;
pub mod sink;
pub mod subscribe;
pub mod version;

pub use client::Sidecar;
pub use config::{DaprArgs, DeliveryMode};

use crate::http::error::ApiError;
use crate::http::routes::at;
use crate::pipeline::{Pipeline, Wakers};
use crate::runtime::Registry;
use crate::sockets::SocketHub;
use crate::storage::Db;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The sidecar connection and what the host knows about it.
pub struct DaprEdge {
    pub args: DaprArgs,
    pub sidecar: Sidecar,
    /// Whether the sidecar's outbound side answers (readiness follows it).
    ready: Arc<AtomicBool>,
}

impl DaprEdge {
    pub fn new(args: DaprArgs) -> anyhow::Result<Self> {
        args.validate()?;
        let sidecar = Sidecar::new(args.endpoint(), args.dapr_api_token.clone())?;
        Ok(Self {
            args,
            sidecar,
            ready: Arc::default(),
        })
    }

    /// Whether the sidecar's outbound side (pub/sub, jobs) answered.
    pub fn sidecar_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The flag behind [`DaprEdge::sidecar_ready`], for readiness checks elsewhere.
    pub fn readiness(&self) -> Arc<AtomicBool> {
        self.ready.clone()
    }
    /// Polls `/v1.0/healthz/outbound` until the sidecar answers, then keeps watching it so that
    /// readiness follows the sidecar. The first time it answers, its Dapr version is checked
    /// (`version.rs`).
    pub async fn watch_sidecar(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut logged_waiting = false;
        let mut version_checked = false;
        loop {
            let ok = self.sidecar.outbound_ready().await;
            let was = self.ready.swap(ok, Ordering::AcqRel);
            match (was, ok) {
                (false, true) => {
                    tracing::info!(endpoint = %self.sidecar.endpoint(), "Dapr sidecar is ready");
                    if !version_checked {
                        version_checked = true;
                        version::check(&self.sidecar).await;
                    }
                }
                (true, false) => {
                    tracing::warn!(endpoint = %self.sidecar.endpoint(), "Dapr sidecar is not answering; not ready")
                }
                (false, false) if !logged_waiting => {
                    logged_waiting = true;
                    tracing::info!(endpoint = %self.sidecar.endpoint(), "waiting for the Dapr sidecar");
                }
                _ => {}
            }
            let wait = if ok {
                Duration::from_secs(5)
            } else {
                Duration::from_millis(250)
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// What the sidecar's callbacks use, shared behind one `Arc` by the routes (each request's
/// extractors clone the state: one reference count, not one per field).
pub struct DaprState {
    /// `None` outside Dapr mode: every callback then answers 404.
    pub edge: Option<Arc<DaprEdge>>,
    pub pipeline: Pipeline,
    pub registry: Arc<Registry>,
    pub hub: Arc<SocketHub>,
    pub db: Db,
    pub wakers: Wakers,
}

/// The routes daprd calls, guarded by `APP_API_TOKEN` when it is set.
pub fn routes(state: DaprState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route(at("/dapr/subscribe"), get(subscribe_handler))
        .route(at("/dapr/events/{topic}"), post(events::events))
        .route(at("/dapr/sockets/{topic}"), post(events::sockets))
        .route(
            at("/dapr/dead-letters/{topic}"),
            post(dead_letters::arrived),
        )
        .route(at("/job/{name}"), post(jobs::fire))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_app_token,
        ))
        .with_state(state)
}

async fn subscribe_handler(State(state): State<Arc<DaprState>>) -> Response {
    match &state.edge {
        Some(edge) => {
            axum::Json(subscribe::subscriptions(edge, &state.registry.topics())).into_response()
        }
        None => ApiError::not_found("Dapr delivery is not enabled (TASKHOST_DELIVERY=dapr)")
            .into_response(),
    }
}

async fn require_app_token(
    State(state): State<Arc<DaprState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(edge) = &state.edge else {
        return ApiError::not_found("Dapr delivery is not enabled (TASKHOST_DELIVERY=dapr)")
            .into_response();
    };
    if let Some(expected) = &edge.args.app_api_token {
        let given = request
            .headers()
            .get("dapr-api-token")
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            tracing::warn!(path = %request.uri().path(), "rejected a sidecar callback without the right dapr-api-token");
            return ApiError::unauthorized("missing or wrong dapr-api-token").into_response();
        }
    }
    next.run(request).await
}
