//! The HTTP surface: the Task API (JSON, JWT), the WebSocket, health, and admin routes.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod dev;
pub mod error;
pub mod health;
pub mod inbox;
pub mod json;
pub mod tasks;
pub mod ui;
pub mod ws;

use crate::dapr::DaprEdge;
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
    /// For deliveries arriving over HTTP (Dapr).
    pub pipeline: Pipeline,
    /// Present in Dapr mode.
    pub dapr: Option<Arc<DaprEdge>>,
}

impl FromRef<AppState> for Arc<JwtKeys> {
    fn from_ref(s: &AppState) -> Self {
        s.keys.clone()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/tasks", post(tasks::create).get(tasks::list))
        .route(
            "/api/tasks/{id}",
            get(tasks::get).patch(tasks::patch).delete(tasks::delete),
        )
        .route("/api/tasks/{id}/complete", post(tasks::complete))
        .route("/api/audit-logs/user/{user_id}", get(audit::by_user))
        .route("/api/audit-logs/{task_id}", get(audit::by_task))
        .route("/api/notifications", get(inbox::notifications))
        .route("/api/reminders", get(inbox::reminders))
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(|| async { crate::metrics::render() }))
        .route("/admin/components", get(admin::components))
        .route("/admin/components/{name}", put(admin::push))
        .route("/admin/components/{name}/rollback", post(admin::rollback))
        .route("/admin/dead-letters", get(admin::dead_letters))
        .route("/", get(ui::index))
        .route("/ui/{*path}", get(ui::asset))
        .merge(dev::routes(&state))
        .merge(crate::dapr::routes(state.clone()))
        .route_layer(axum::middleware::from_fn(telemetry::http::record_route))
        .fallback(|| async { error::ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(telemetry::http::request_span)
                .on_response(telemetry::http::record_response),
        )
        .with_state(state)
}
