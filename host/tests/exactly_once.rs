//! Exactly-once effects through the real pipeline: real components (the built .wasm files),
//! a real database (SQLite, or PostgreSQL when TASKHOST_TEST_DATABASE_URL is set).
//!
//! - Delivering every event twice leaves exactly the state delivering it once leaves.
//! - Interleaving different users' events in any order gives each user the same state.

mod support;

use chrono::{Duration, Timelike, Utc};
use serde_json::{Value, json};
use sqlx::Row;
use std::path::PathBuf;
use std::sync::Arc;
use taskhost::pipeline::{Answer, Attempt, Pipeline, Received, Wakers};
use taskhost::runtime::{Registry, Runtime, RuntimeConfig};
use taskhost::sockets::SocketHub;
use taskhost::storage::Db;

/// A pipeline over a fresh database (SQLite) or a shared one (PostgreSQL; runs are isolated by
/// their user ids).
async fn pipeline() -> (Pipeline, Db, Option<tempfile::TempDir>) {
    let (url, dir) = match std::env::var("TASKHOST_TEST_DATABASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let dir = tempfile::tempdir().unwrap();
            (
                format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
                Some(dir),
            )
        }
    };
    let db = Db::connect(&url, 5).await.expect("database");
    let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-compiled-cache");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let dir_path = support::components_dir();
    let registry = Registry::load_dir(&runtime, &dir_path).unwrap_or_else(|e| {
        panic!(
            "loading components from {}: {e} (run `just build-components`)",
            dir_path.display()
        )
    });
    let p = Pipeline::new(
        runtime,
        Arc::new(registry),
        db.clone(),
        Arc::new(SocketHub::default()),
        Wakers::default(),
        Default::default(),
    );
    (p, db, dir)
}

fn ts(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One user's story: create a recurring task, move its due date, complete it, get a reminder,
/// create and delete another task. Returns (topic, payload) in the user's order.
fn story(user: &str) -> Vec<(&'static str, String)> {
    // The same instants for every user, so their states compare equal.
    static BASE: std::sync::LazyLock<chrono::DateTime<Utc>> =
        std::sync::LazyLock::new(|| Utc::now().with_nanosecond(0).expect("valid"));
    let now = *BASE;
    let due = now + Duration::days(30);
    let moved = now + Duration::days(40);
    let task = |id: &str, due: chrono::DateTime<Utc>, done: bool| {
        json!({"id": id, "title": format!("{id} title"), "priority": "high", "due_date": ts(due),
               "is_recurring": true, "recurrence_frequency": "weekly", "tags": ["t"],
               "is_completed": done, "created_at": ts(now), "updated_at": ts(now)})
    };
    let t1 = format!("{user}-t1");
    let t2 = format!("{user}-t2");
    let ev = |n: u32, ty: &str, task: Value, previous: Value| {
        json!({"event_id": format!("{user}-e{n}"), "event_type": ty, "event_timestamp": ts(now),
               "user_id": user, "task": task, "previous": previous})
        .to_string()
    };
    vec![
        ("task-events", ev(1, "task.created", task(&t1, due, false), Value::Null)),
        ("task-events", ev(2, "task.updated", task(&t1, moved, false), task(&t1, due, false))),
        ("task-updates", ev(3, "task.updated", task(&t1, moved, false), Value::Null)),
        ("task-events", ev(4, "task.completed", task(&t1, moved, true), task(&t1, moved, false))),
        (
            "reminders",
            json!({"event_id": format!("{user}-r1"), "event_type": "reminder.due_soon", "event_timestamp": ts(now),
                   "user_id": user, "task": {"id": t1, "title": "t1 title", "due_date": ts(moved), "priority": "high"},
                   "reminder_type": "1_hour_before"})
            .to_string(),
        ),
        ("task-events", ev(5, "task.created", task(&t2, due, false), Value::Null)),
        ("task-events", ev(6, "task.deleted", task(&t2, due, false), Value::Null)),
    ]
}

/// Hands the message to the pipeline as a transport would, once.
async fn handle(p: &Pipeline, topic: &str, payload: &[u8]) -> taskhost::pipeline::Fate {
    let received = Received {
        topic,
        payload,
        id: None,
    };
    p.handle(received, Attempt::UNCOUNTED).await
}

async fn deliver(p: &Pipeline, topic: &str, payload: &str) {
    let fate = handle(p, topic, payload.as_bytes()).await;
    assert_eq!(fate.answer, Answer::Done, "{topic} {payload}: {fate:?}");
}

/// Everything one user's events left in the database, without generated ids and wall-clock
/// times, in a stable order.
async fn snapshot(db: &Db, user: &str) -> Value {
    let mut c = db.pool().acquire().await.unwrap();
    let rows = |sql: &'static str| sqlx::query(sql).bind(user.to_string());
    let tasks: Vec<Value> = rows("SELECT title, due_date, occurrence, series_id, is_completed, origin_key FROM tasks WHERE user_id = $1 ORDER BY title, occurrence")
        .fetch_all(&mut *c).await.unwrap().iter()
        .map(|r| json!([r.get::<String, _>(0), r.get::<Option<i64>, _>(1), r.get::<i64, _>(2), r.get::<Option<String>, _>(3), r.get::<i64, _>(4), r.get::<Option<String>, _>(5)]))
        .collect();
    let audit: Vec<Value> = rows("SELECT event_id, task_id, operation, changes FROM audit_log WHERE user_id = $1 ORDER BY event_id")
        .fetch_all(&mut *c).await.unwrap().iter()
        .map(|r| json!([r.get::<String, _>(0), r.get::<String, _>(1), r.get::<String, _>(2), r.get::<String, _>(3)]))
        .collect();
    let inbox: Vec<Value> = rows("SELECT idempotency_key, title, body FROM notifications WHERE user_id = $1 ORDER BY idempotency_key")
        .fetch_all(&mut *c).await.unwrap().iter()
        .map(|r| json!([r.get::<String, _>(0), r.get::<String, _>(1), r.get::<String, _>(2)]))
        .collect();
    let jobs: Vec<Value> = rows(
        "SELECT name, due_at, offset_minutes FROM scheduled_jobs WHERE user_id = $1 ORDER BY name",
    )
    .fetch_all(&mut *c)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        json!([
            r.get::<String, _>(0),
            r.get::<i64, _>(1),
            r.get::<i64, _>(2)
        ])
    })
    .collect();
    let outbox: Vec<Value> = rows(
        "SELECT topic, COUNT(*) FROM outbox WHERE partition_key = $1 GROUP BY topic ORDER BY topic",
    )
    .fetch_all(&mut *c)
    .await
    .unwrap()
    .iter()
    .map(|r| json!([r.get::<String, _>(0), r.get::<i64, _>(1)]))
    .collect();
    json!({"tasks": tasks, "audit": audit, "inbox": inbox, "jobs": jobs, "outbox": outbox})
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivering_every_event_twice_equals_delivering_it_once() {
    let (p, db, _dir) = pipeline().await;
    let (once, twice) = (unique("once"), unique("twice"));
    for (topic, payload) in story(&once) {
        deliver(&p, topic, &payload).await;
    }
    let story_twice = story(&twice);
    for (topic, payload) in &story_twice {
        deliver(&p, topic, payload).await;
        deliver(&p, topic, payload).await; // immediate redelivery
    }
    for (topic, payload) in &story_twice {
        deliver(&p, topic, payload).await; // late redelivery of everything
    }
    let a = snapshot(&db, &once).await;
    let b = snapshot(&db, &twice).await;
    let normalize = |v: &Value, user: &str| v.to_string().replace(user, "USER");
    assert_eq!(normalize(&a, &once), normalize(&b, &twice));
    // And the state is the one the story should leave: the recurring task completed once →
    // exactly one next instance; one notification; one audit entry per task event.
    // (The events were injected, not written through the API, so `tasks` holds only what
    // the recurrence component created: exactly one next occurrence of t1.)
    assert_eq!(
        a["tasks"].as_array().unwrap().len(),
        1,
        "one next occurrence: {a}"
    );
    assert_eq!(a["tasks"][0][2], json!(2), "it is occurrence 2: {a}");
    assert_eq!(a["inbox"].as_array().unwrap().len(), 1, "{a}");
    // Six task events, one on task-updates (audited too since the audit consumes both topics).
    assert_eq!(a["audit"].as_array().unwrap().len(), 6, "{a}");
    assert_eq!(
        a["outbox"],
        json!([["task-events", 1]]),
        "one task.created for the next occurrence: {a}"
    );
}

/// Merges the users' stories in a random order that keeps each user's own order.
fn interleave(stories: &[Vec<(&'static str, String)>], seed: u64) -> Vec<(&'static str, String)> {
    let mut rng = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut cursors = vec![0; stories.len()];
    let mut out = vec![];
    loop {
        let open: Vec<usize> = (0..stories.len())
            .filter(|&i| cursors[i] < stories[i].len())
            .collect();
        if open.is_empty() {
            return out;
        }
        let i = open[next(open.len())];
        out.push(stories[i][cursors[i]].clone());
        cursors[i] += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_interleaving_of_users_gives_each_user_the_same_state() {
    let (p, db, _dir) = pipeline().await;
    // Reference: each user alone.
    let reference = unique("ref");
    for (topic, payload) in story(&reference) {
        deliver(&p, topic, &payload).await;
    }
    let expected = snapshot(&db, &reference)
        .await
        .to_string()
        .replace(&reference, "USER");
    for seed in 1..=4u64 {
        let users: Vec<String> = (0..3).map(|i| unique(&format!("s{seed}u{i}"))).collect();
        let stories: Vec<_> = users.iter().map(|u| story(u)).collect();
        for (topic, payload) in interleave(&stories, seed) {
            deliver(&p, topic, &payload).await;
        }
        for u in &users {
            let got = snapshot(&db, u)
                .await
                .to_string()
                .replace(u.as_str(), "USER");
            assert_eq!(got, expected, "seed {seed}, user {u}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_message_is_dropped_with_a_reason() {
    let (p, _db, _dir) = pipeline().await;
    let fate = handle(&p, "task-events", br#"{"event_id":"x","event_type":"task.created","user_id":"u","task":{"id":"t","title":"x","priority":"urgent"}}"#).await;
    match fate.answer {
        Answer::Drop(reason) => assert!(
            reason.contains("task.priority") && reason.contains("urgent"),
            "{reason}"
        ),
        other => panic!("expected a drop, got {other:?}"),
    }
}
