//! Several hosts on one PostgreSQL database: exactly one relays the outbox at a time, and
//! another takes over when it dies — no event is delivered twice or lost. (SQLite is one
//! process per file by construction, so this needs TASKHOST_TEST_DATABASE_URL; `just test`
//! runs it in its PostgreSQL pass.)

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::{TestEnv, User};

async fn wait_for(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if ok().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_relay_per_database_and_a_standby_takes_over() {
    if std::env::var("TASKHOST_TEST_DATABASE_URL").is_err() {
        eprintln!("skipped: needs PostgreSQL (TASKHOST_TEST_DATABASE_URL)");
        return;
    }
    let mut env = TestEnv::new();
    let a = env.start().await;
    let b = env.start().await;
    const LEADS: &str = "this instance relays the outbox";
    const STANDS_BY: &str = "another instance relays the outbox";
    wait_for("one leader and one standby", async || {
        let (la, lb) = (a.stderr(), b.stderr());
        (la.contains(LEADS) && lb.contains(STANDS_BY))
            || (lb.contains(LEADS) && la.contains(STANDS_BY))
    })
    .await;
    let (leader, standby) = if a.stderr().contains(LEADS) {
        (a, b)
    } else {
        (b, a)
    };
    assert!(!standby.stderr().contains(LEADS), "both instances relay");

    let user = User::new().await;
    let api = standby.api(&user);
    let mut ids = vec![];
    for i in 0..10 {
        let t = api
            .send(
                reqwest::Method::POST,
                "/api/tasks",
                Some(&json!({"title": format!("r{i}")})),
            )
            .await
            .expect(201);
        ids.push(t.value()["id"].as_str().unwrap().to_string());
    }
    let created_entries = async |ids: &[String]| {
        let mut n = 0;
        for id in ids {
            let page = api.get(&format!("/api/audit-logs/{id}")).await.value();
            n += page["entries"].as_array().map_or(0, |e| {
                e.iter().filter(|e| e["operation"] == "created").count()
            });
        }
        n
    };
    wait_for("the leader to deliver the first 10 events", async || {
        created_entries(&ids).await == 10
    })
    .await;

    leader.kill().await;
    for i in 10..20 {
        let t = api
            .send(
                reqwest::Method::POST,
                "/api/tasks",
                Some(&json!({"title": format!("r{i}")})),
            )
            .await
            .expect(201);
        ids.push(t.value()["id"].as_str().unwrap().to_string());
    }
    wait_for(
        "the standby to take over and deliver the next 10",
        async || created_entries(&ids).await == 20,
    )
    .await;
    assert!(
        standby.stderr().contains(LEADS),
        "the standby took the lead"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        created_entries(&ids).await,
        20,
        "every task has exactly one created entry"
    );
}
