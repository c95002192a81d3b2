//! PostgreSQL goes away mid-stream and comes back: nothing is lost, nothing is doubled, the
//! host never exits, and readiness follows the database.
//!
//! Runs on the test cluster of `scripts/pg-test.sh` (`just test-pg`), which it stops and starts
//! again with the same script; on SQLite, or on another PostgreSQL server, it says so and
//! checks nothing.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use support::{HostOptions, TestEnv, User, wait_until};

const ADMIN_TOKEN: &str = "db-outage-test-admin-token";

fn pg_script(command: &str) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-test.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .arg(command)
        .output()
        .unwrap_or_else(|e| panic!("running {} {command}: {e}", script.display()));
    assert!(
        output.status.success(),
        "scripts/pg-test.sh {command} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// `host:port` of a postgres:// URL.
fn server_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    Some(rest.split('/').next()?.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_loses_and_doubles_nothing() {
    let Some(url) = std::env::var("TASKHOST_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        eprintln!("db_outage: skipped (needs PostgreSQL: run `just test-pg`)");
        return;
    };
    if server_of(&url) != server_of(&pg_script("url")) {
        eprintln!(
            "db_outage: skipped (TASKHOST_TEST_DATABASE_URL is not the scripts/pg-test.sh cluster, which this test stops and starts)"
        );
        return;
    }

    let mut env = TestEnv::new();
    let mut host = env
        .start_with(
            &HostOptions::new()
                .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN)
                // Few attempts: were the outage to spend them, messages would be dead-lettered.
                .env("TASKHOST_MAX_ATTEMPTS", "2")
                .env("TASKHOST_RETRY_BACKOFF_MS", "50"),
        )
        .await;
    let user = User::new().await;
    let api = host.api(&user);

    // A client writing all along: creates tasks (every third one a daily series) and completes
    // the series. Requests the database cannot serve fail (503, or no answer); it moves on, as
    // a client would, and never retries a write blindly (that could create a task twice).
    let created = Arc::new(AtomicUsize::new(0));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (api, created, unavailable, stop) = (
            api.clone(),
            created.clone(),
            unavailable.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let recurring = i % 3 == 0;
                let body = json!({"title": format!("task {i}"), "due_date": "2031-01-10T09:00:00Z",
                                  "is_recurring": recurring,
                                  "recurrence_frequency": if recurring { Some("daily") } else { None }});
                match api
                    .try_send(reqwest::Method::POST, "/api/tasks", Some(&body))
                    .await
                {
                    Ok(r) if r.status == 201 => {
                        created.fetch_add(1, Ordering::Relaxed);
                        if recurring {
                            let id = r.value()["id"].as_str().unwrap().to_string();
                            let path = format!("/api/tasks/{id}/complete");
                            let _ = api.try_send(reqwest::Method::POST, &path, None).await;
                        }
                    }
                    Ok(r) if r.status == 503 => {
                        unavailable.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => panic!("POST /api/tasks answered {}: {}", r.status, r.text),
                    Err(_) => {
                        unavailable.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let anonymous = host.api_with_authorization(None);
    wait_until(
        "20 tasks before the outage",
        Duration::from_secs(60),
        async || {
            let n = created.load(Ordering::Relaxed);
            if n >= 20 { Ok(()) } else { Err(format!("{n}")) }
        },
    )
    .await;

    // The outage.
    pg_script("stop");
    wait_until(
        "/readyz to report the outage",
        Duration::from_secs(30),
        async || {
            let r = anonymous.get("/readyz").await;
            if r.status == 503 && r.text.contains("database unavailable") {
                Ok(())
            } else {
                Err(format!("{} {}", r.status, r.text))
            }
        },
    )
    .await;
    let before = unavailable.load(Ordering::Relaxed);
    wait_until(
        "writes to fail during the outage",
        Duration::from_secs(30),
        async || {
            let n = unavailable.load(Ordering::Relaxed);
            if n >= before + 5 {
                Ok(())
            } else {
                Err(format!("{n}"))
            }
        },
    )
    .await;
    assert!(host.is_running(), "the host must survive the outage");
    let during = created.load(Ordering::Relaxed);

    pg_script("start");
    wait_until("/readyz to recover", Duration::from_secs(60), async || {
        anonymous.get("/readyz").await.status_is(200)
    })
    .await;
    wait_until(
        "20 more tasks after the outage",
        Duration::from_secs(60),
        async || {
            let n = created.load(Ordering::Relaxed);
            if n >= during + 20 {
                Ok(())
            } else {
                Err(format!("{n}"))
            }
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("the writer");
    assert!(host.is_running(), "the host never exited");

    // Every task that exists (the ones whose write committed, even if its answer was lost,
    // and the next instances) has each of its events applied exactly once by every component.
    let check = async || -> Result<(), String> {
        let tasks = api.tasks().await;
        let mut next_of: BTreeMap<String, usize> = BTreeMap::new();
        for t in &tasks {
            if let Some(series) = &t.series_id
                && series != &t.id
            {
                *next_of.entry(series.clone()).or_default() += 1;
            }
        }
        for t in &tasks {
            let ops: Vec<String> = api
                .task_audit(&t.id)
                .await
                .into_iter()
                .map(|e| e.operation)
                .collect();
            let want: Vec<&str> = if t.is_completed {
                vec!["created", "completed"]
            } else {
                vec!["created"]
            };
            if ops != want {
                return Err(format!(
                    "task {} ({}): audit {ops:?}, want {want:?}",
                    t.id, t.title
                ));
            }
            let originals = t.series_id.is_none() || t.series_id.as_deref() == Some(&t.id);
            if t.is_completed && t.is_recurring && originals {
                let n = next_of.get(&t.id).copied().unwrap_or(0);
                if n != 1 {
                    return Err(format!("series {} has {n} next instances", t.id));
                }
            }
            if !t.is_completed && api.reminders_for(&t.id).await.is_empty() {
                return Err(format!("task {} has no reminders", t.id));
            }
        }
        Ok(())
    };
    wait_until(
        "every event applied once by every component",
        Duration::from_secs(120),
        check,
    )
    .await;
    support::assert_holds(
        "nothing applied twice afterwards",
        Duration::from_secs(2),
        check,
    )
    .await;

    // The outage spent no delivery attempts: nothing was dead-lettered.
    let dead: Vec<Value> = host
        .api_with_authorization(Some(&format!("Bearer {ADMIN_TOKEN}")))
        .get("/admin/dead-letters")
        .await
        .expect(200)
        .json();
    assert!(
        dead.is_empty(),
        "the outage dead-lettered messages: {dead:#?}"
    );
    eprintln!(
        "db_outage: {} tasks written, {} writes refused during the outage",
        created.load(Ordering::Relaxed),
        unavailable.load(Ordering::Relaxed)
    );
}
