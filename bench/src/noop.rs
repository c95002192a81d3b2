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

/// What daprd asks at start-up: the same topics and bulk settings taskhost subscribes with.
async fn subscribe(topics: Vec<String>, bulk: bool) -> Json<Value> {
    let subs: Vec<Value> = topics
        .iter()
        .map(|t| {
            let mut s = json!({"pubsubname": "pubsub-kafka", "topic": t, "routes": {"default": format!("/dapr/events/{t}")}, "metadata": {}});
            if bulk {
                s["bulkSubscribe"] = json!({"enabled": true, "maxMessagesCount": 100, "maxAwaitDurationMs": 40});
            }
            s
        })
        .collect();
    Json(Value::Array(subs))
}

/// Serves on `addr` (port 0: a free one) until the task is aborted; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    topics: Vec<String>,
    bulk: bool,
    on_delivery: Option<std::sync::Arc<dyn Fn(&Bytes) + Send + Sync>>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let hook = on_delivery.clone();
    let app = Router::new()
        .route(
            "/dapr/events/{topic}",
            post(move |body: Bytes| {
                let hook = hook.clone();
                async move {
                    if let Some(h) = &hook {
                        h(&body);
                    }
                    deliver(body).await
                }
            }),
        )
        .route(
            "/dapr/subscribe",
            get(move || subscribe(topics.clone(), bulk)),
        )
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
