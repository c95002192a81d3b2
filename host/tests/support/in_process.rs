//! For the tests that run the host's parts in the test process (a registry, a pipeline, the
//! router) rather than the binary: their database and the admin API in front of them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use sqlx::Row as _;
use taskhost::api::{AppState, auth::JwtKeys};
use taskhost::pipeline::{Pipeline, Wakers};
use taskhost::runtime::Registry;
use taskhost::sockets::SocketHub;
use taskhost::storage::Db;
use tempfile::TempDir;

/// The test's database: `TASKHOST_TEST_DATABASE_URL` when set and not blank (a shared
/// PostgreSQL database; runs keep apart by their ids), else a fresh SQLite file in a temporary
/// directory, returned to be kept as long as the database is used.
pub async fn database() -> (Db, Option<TempDir>) {
    let (url, dir) = match std::env::var("TASKHOST_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => (url, None),
        _ => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
            (url, Some(dir))
        }
    };
    (Db::connect(&url, 8).await.expect("database"), dir)
}

/// Serves the real router (the admin routes behind `admin_token` included) over these parts on
/// a free port of 127.0.0.1, ready at once; returns its base URL.
pub async fn serve(
    db: &Db,
    registry: &Arc<Registry>,
    pipeline: &Pipeline,
    admin_token: &str,
) -> String {
    let state = AppState {
        db: db.clone(),
        keys: Arc::new(
            JwtKeys::from_secret(b"in-process-test-jwt-secret-of-at-least-32-bytes")
                .expect("a long secret"),
        ),
        hub: Arc::new(SocketHub::default()),
        wakers: Wakers::default(),
        registry: registry.clone(),
        ready: Arc::new(AtomicBool::new(true)),
        admin_token: Some(Arc::from(admin_token)),
        pipeline: pipeline.clone(),
        sidecar_ready: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, taskhost::api::router(state, axum::Router::new())).await
    });
    url
}

/// What audit recorded for the run (the users and event ids that start with `{run}-`), by
/// event id: the versions of its audit entries, and the version of its exactly-once record.
pub async fn audit_records(
    db: &Db,
    run: &str,
) -> (HashMap<String, Vec<String>>, HashMap<String, String>) {
    let mut conn = db.pool().acquire().await.unwrap();
    let rows =
        sqlx::query("SELECT event_id, component_version FROM audit_log WHERE user_id LIKE $1")
            .bind(format!("{run}-%"))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let mut entries: HashMap<String, Vec<String>> = HashMap::new();
    for r in &rows {
        entries
            .entry(r.get::<String, _>(0))
            .or_default()
            .push(r.get::<String, _>(1));
    }
    let processed = sqlx::query(
        "SELECT event_id, component_version FROM processed_messages WHERE component = 'audit' AND event_id LIKE $1",
    )
    .bind(format!("{run}-%"))
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
    .collect();
    (entries, processed)
}
