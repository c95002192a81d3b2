//! The reference for the Dapr rows: a Rust app with taskhost's delivery route that does
//! nothing with a delivery but read it — parse the JSON, answer `SUCCESS` (per entry for a bulk
//! delivery). What it manages under the same load is the ceiling of the HTTP path itself.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::net::SocketAddr;

async fn deliver(body: Bytes) -> Json<Value> {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return Json(json!({ "status": "DROP" })),
    };
    match value.get("entries").and_then(Value::as_array) {
        Some(entries) => {
            let statuses: Vec<Value> = entries
                .iter()
                .map(|e| json!({ "entryId": e.get("entryId").cloned().unwrap_or(Value::Null), "status": "SUCCESS" }))
                .collect();
            Json(json!({ "statuses": statuses }))
        }
        None => Json(json!({ "status": "SUCCESS" })),
    }
}

/// Serves on `addr` (port 0: a free one) until the task is aborted; returns the bound address.
pub async fn serve(addr: SocketAddr) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = Router::new()
        .route("/dapr/events/{topic}", post(deliver))
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    // As taskhost does (app.rs): no Nagle delay on accepted sockets.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((bound, task))
}
