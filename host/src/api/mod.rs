//! The HTTP surface: the Task API (JSON, JWT), the WebSocket, health, and admin routes.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod dev;
pub mod health;
pub mod inbox;
pub mod json;
pub mod rollout;
pub mod rollout_view;
pub mod tasks;
pub mod ui;
pub mod ws;

/// Shared with the Dapr callbacks (`crate::http`); re-exported where the API's code and tests
/// have always found them.
pub use crate::http::{error, routes};

use crate::pipeline::{Pipeline, Wakers};
use crate::runtime::Registry;
use crate::sockets::SocketHub;
use crate::storage::Db;
use crate::telemetry;
use auth::JwtKeys;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{get, post, put};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Largest request body accepted (a task is a few KiB; a component upload will have its own).
pub const MAX_BODY_BYTES: usize = 1 << 20;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub keys: Arc<JwtKeys>,
    pub hub: Arc<SocketHub>,
    pub wakers: Wakers,
    pub registry: Arc<Registry>,
    pub ready: Arc<AtomicBool>,
    pub admin_token: Option<Arc<str>>,
    /// For replays of dead letters.
    pub pipeline: Pipeline,
    /// Whether the Dapr sidecar answers; `None` without one. Readiness waits for it.
    pub sidecar_ready: Option<Arc<AtomicBool>>,
}

impl FromRef<AppState> for Arc<JwtKeys> {
    fn from_ref(s: &AppState) -> Self {
        s.keys.clone()
    }
}

/// The host's HTTP routes: the API's, with `others` (the Dapr callbacks) merged in before the
/// layers every route shares (tracing, the body limit, the fallback).
pub fn router(state: AppState, others: Router) -> Router {
    Router::new()
        .route(
            routes::at("/api/tasks"),
            post(tasks::create).get(tasks::list),
        )
        .route(
            routes::at("/api/tasks/{id}"),
            get(tasks::get).patch(tasks::patch).delete(tasks::delete),
        )
        .route(
            routes::at("/api/tasks/{id}/complete"),
            post(tasks::complete),
        )
        .route(
            routes::at("/api/audit-logs/user/{user_id}"),
            get(audit::by_user),
        )
        .route(routes::at("/api/audit-logs/{task_id}"), get(audit::by_task))
        .route(routes::at("/api/notifications"), get(inbox::notifications))
        .route(routes::at("/api/reminders"), get(inbox::reminders))
        .route(routes::at("/ws"), get(ws::upgrade))
        .route(routes::at("/healthz"), get(health::healthz))
        .route(routes::at("/readyz"), get(health::readyz))
        .route(
            routes::at("/metrics"),
            get(|| async { crate::metrics::render() }),
        )
        .route(routes::at("/admin/components"), get(admin::components))
        .route(routes::at("/admin/components/{name}"), put(admin::push))
        .route(
            routes::at("/admin/components/{name}/rollback"),
            post(rollout::rollback),
        )
        .route(
            routes::at("/admin/components/{name}/candidate"),
            put(rollout::start),
        )
        .route(
            routes::at("/admin/components/{name}/shadow"),
            get(rollout::report),
        )
        .route(
            routes::at("/admin/components/{name}/canary"),
            post(rollout::canary),
        )
        .route(
            routes::at("/admin/components/{name}/promote"),
            post(rollout::promote),
        )
        .route(routes::at("/admin/dead-letters"), get(admin::dead_letters))
        .route(
            routes::at("/admin/dead-letters/replay"),
            post(admin::replay_all),
        )
        .route(
            routes::at("/admin/dead-letters/{id}/replay"),
            post(admin::replay),
        )
        .route(routes::at("/"), get(ui::index))
        .route(routes::at("/ui/{*path}"), get(ui::asset))
        .merge(dev::routes(&state))
        .with_state(state)
        .merge(others)
        .route_layer(axum::middleware::from_fn(telemetry::http::record_route))
        .fallback(|| async { error::ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(telemetry::http::request_span)
                .on_response(telemetry::http::record_response),
        )
}
