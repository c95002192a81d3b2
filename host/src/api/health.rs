//! Liveness and readiness. Ready means: migrations ran, components loaded, the database answers.

use super::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if !state.ready.load(Ordering::Acquire) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "starting" })),
        );
    }
    if let Some(sidecar) = &state.sidecar_ready
        && !sidecar.load(Ordering::Acquire)
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "waiting for the Dapr sidecar" })),
        );
    }
    match state.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({
                "status": "ready",
                "components": state.registry.slots().map(|s| s.name.clone()).collect::<Vec<_>>(),
                "sockets": state.hub.connections(),
            })),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "database unavailable", "error": e.to_string() })),
        ),
    }
}
