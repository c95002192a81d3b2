//! `/metrics` counts exactly what happened: a known set of task operations through the real
//! binary, then a scrape; every component's counters equal what was sent, per outcome.

mod support;

use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{TestEnv, User};

/// `taskhost_messages_total` samples: (topic, component, outcome) → value.
fn messages(text: &str) -> BTreeMap<(String, String, String), u64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("taskhost_messages_total{"))
    {
        let (labels, value) = line.rsplit_once(' ').expect("sample line");
        let label = |name: &str| {
            let start = labels.find(&format!("{name}=\"")).expect("label") + name.len() + 2;
            labels[start..].split('"').next().unwrap().to_string()
        };
        out.insert(
            (label("topic"), label("component"), label("outcome")),
            value.parse::<f64>().expect("number") as u64,
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_equal_what_was_sent_per_component_and_outcome() {
    let mut env = TestEnv::new();
    let host = env.start().await;
    let user = User::new().await;
    let api = host.api(&user);

    // 5 creations, 2 updates, 1 completion: 8 task-events, no due dates (so no reminders) and
    // nothing recurring (so no task created by a component).
    let mut ids = vec![];
    for i in 0..5 {
        let task = api
            .send(
                reqwest::Method::POST,
                "/api/tasks",
                Some(&json!({"title": format!("m{i}")})),
            )
            .await
            .expect(201);
        ids.push(task.value()["id"].as_str().unwrap().to_string());
    }
    for id in &ids[..2] {
        api.send(
            reqwest::Method::PATCH,
            &format!("/api/tasks/{id}"),
            Some(&json!({"priority": "high"})),
        )
        .await
        .expect(200);
    }
    api.send(
        reqwest::Method::POST,
        &format!("/api/tasks/{}/complete", ids[4]),
        None,
    )
    .await
    .expect(200);
    let sent = 8u64;

    let components = ["audit", "notification", "recurrence", "sync"];
    let expected: BTreeMap<_, _> = components
        .iter()
        .map(|c| {
            (
                (
                    "task-events".to_string(),
                    c.to_string(),
                    "applied".to_string(),
                ),
                sent,
            )
        })
        .collect();
    let scrape = || async {
        reqwest::get(host.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = BTreeMap::new();
    while Instant::now() < deadline {
        last = messages(&scrape().await);
        if last == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        last, expected,
        "messages_total per (topic, component, outcome) after {sent} events"
    );

    // Nothing more arrives later (no double counting), and the other families are there.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let text = scrape().await;
    assert_eq!(messages(&text), expected, "counters are stable");
    for family in [
        "taskhost_component_call_seconds_bucket",
        "taskhost_event_lag_seconds_bucket",
        "taskhost_outbox_depth",
        "taskhost_db_pool_connections",
    ] {
        assert!(text.contains(family), "/metrics lacks {family}:\n{text}");
    }
}
