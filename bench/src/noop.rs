//! The reference for the Dapr rows: a Rust app with taskhost's delivery route that does
//! nothing with a delivery but read it — parse the JSON, answer `SUCCESS` (per entry for a bulk
//! delivery). What it manages under the same load is the ceiling of the HTTP path itself.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Event id (the payload's `event_id`) → first receipt, epoch ms.
pub type Receipts = Arc<Mutex<HashMap<String, i64>>>;

fn record(receipts: &Receipts, event: &Value) {
    if let Some(id) = event
        .get("data")
        .and_then(|d| d.get("event_id"))
        .and_then(Value::as_str)
    {
        let now = chrono::Utc::now().timestamp_millis();
        receipts
            .lock()
            .expect("receipts lock")
            .entry(id.to_string())
            .or_insert(now);
    }
}

async fn deliver_recorded(
    axum::extract::State(receipts): axum::extract::State<Receipts>,
    body: Bytes,
) -> Json<Value> {
    if let Ok(value) = serde_json::from_slice::<Value>(&body) {
        match value.get("entries").and_then(Value::as_array) {
            Some(entries) => entries
                .iter()
                .filter_map(|e| e.get("event"))
                .for_each(|e| record(&receipts, e)),
            None => record(&receipts, &value),
        }
    }
    deliver(body).await
}

/// taskhost's subscriptions for `task-events` (host/src/dapr/subscribe.rs): the topic with its
/// dead-letter topic, bulk or not with the same batch settings, and the dead-letter topic.
fn subscriptions(bulk: bool) -> Value {
    let mut sub = json!({"pubsubname": "pubsub-kafka", "topic": "task-events",
        "routes": {"default": "/dapr/events/task-events"}, "deadLetterTopic": "task-events-dlq", "metadata": {}});
    if bulk {
        sub["bulkSubscribe"] =
            json!({"enabled": true, "maxMessagesCount": 100, "maxAwaitDurationMs": 40});
    }
    json!([sub, {"pubsubname": "pubsub-kafka", "topic": "task-events-dlq",
        "routes": {"default": "/dapr/dead-letters/task-events"}, "metadata": {}}])
}

/// The no-op app as daprd's app: subscriptions, delivery recording receipt times, health.
pub async fn serve_for_daprd(
    addr: SocketAddr,
    bulk: bool,
) -> anyhow::Result<(Receipts, tokio::task::JoinHandle<()>)> {
    let receipts = Receipts::default();
    let subs = subscriptions(bulk);
    let app = Router::new()
        .route("/dapr/subscribe", get(move || async move { Json(subs) }))
        .route("/dapr/events/{topic}", post(deliver_recorded))
        .route("/dapr/dead-letters/{topic}", post(deliver_recorded))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(receipts.clone());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((receipts, task))
}

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

/// The no-op app in a process of its own (`taskhost-bench serve-noop`), so that its CPU time
/// is its own and not the load generator's: the reference for the host's CPU per delivery.
pub struct NoopProcess {
    child: tokio::process::Child,
    pub addr: SocketAddr,
}

impl NoopProcess {
    pub async fn start() -> anyhow::Result<Self> {
        use anyhow::Context;
        use tokio::io::AsyncBufReadExt;
        let exe = std::env::current_exe().context("the benchmark runner's own path")?;
        let mut child = tokio::process::Command::new(exe)
            .arg(SERVE_NOOP)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the no-op app process")?;
        let stdout = child.stdout.take().context("the no-op app's stdout")?;
        let mut line = String::new();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut line)
            .await?;
        let addr = line
            .trim()
            .parse()
            .with_context(|| format!("the no-op app printed {line:?}, not its address"))?;
        Ok(Self { child, addr })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// The argument that makes `taskhost-bench` the no-op app's process.
pub const SERVE_NOOP: &str = "serve-noop";

/// `taskhost-bench serve-noop`: serves the no-op app on a free loopback port, prints the
/// address on stdout, and runs until killed.
pub async fn serve_noop_forever() -> anyhow::Result<()> {
    let (addr, task) = serve("127.0.0.1:0".parse()?).await?;
    println!("{addr}");
    use std::io::Write;
    std::io::stdout().flush()?;
    task.await?;
    Ok(())
}
