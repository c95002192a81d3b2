//! Shadow and canary on the real binary, through its command-line client and embedded delivery
//! (Task API → outbox → relay → pipeline): `taskhost components push --shadow`, `shadow`,
//! `canary`, `promote`, `rollback`, each step in the journal with who and why. The candidate is
//! audit's `marked` build (`0.2.0-marked`), built as `host/tests/hot_swap.rs` builds it.

mod support;

use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::wasm_builds::{MARKED_AUDIT, swap_builds};
use support::{HostOptions, TestEnv, User};

const V2: &str = "0.2.0-marked";
const ADMIN_TOKEN: &str = "rollout-cli-test-admin-token";

/// The marked audit, built on first use into `<target>/hot-swap` (cargo skips it when fresh).
fn marked_audit() -> PathBuf {
    swap_builds(MARKED_AUDIT, "the marked audit").join("audit.wasm")
}

fn cli(url: &str, args: &[&str]) -> (bool, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_taskhost"))
        .arg("components")
        .args(args)
        .args(["--url", url])
        .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("running taskhost components");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stderr,
    )
}

/// Creates `n` tasks for `user` through the Task API; returns their ids.
async fn create_tasks(api: &support::Api, n: usize, title: &str) -> Vec<String> {
    let mut ids = vec![];
    for i in 0..n {
        let reply = api
            .post(
                "/api/tasks",
                &json!({ "title": format!("{title} {i}"), "priority": "low" }),
            )
            .await
            .expect(201);
        ids.push(reply.value()["id"].as_str().unwrap().to_string());
    }
    ids
}

/// Waits until each of `tasks` has its `created` audit entry; returns their versions.
async fn audit_versions(api: &support::Api, tasks: &[String]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut versions = vec![];
    for task in tasks {
        loop {
            let entries = api
                .get(&format!("/api/audit-logs/{task}"))
                .await
                .expect(200)
                .value();
            // A page (`{"entries": [...]}`) or a plain list.
            let entries = entries
                .get("entries")
                .unwrap_or(&entries)
                .as_array()
                .cloned()
                .unwrap_or_default();
            if let Some(e) = entries.iter().find(|e| e["operation"] == "created") {
                assert_eq!(entries.len(), 1, "one audit entry for {task}: {entries:?}");
                versions.push(e["component_version"].as_str().unwrap().to_string());
                break;
            }
            assert!(Instant::now() < deadline, "{task} has no audit entry");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    versions
}

#[tokio::test]
async fn the_cli_shadows_canaries_promotes_and_rolls_back_a_running_host() {
    let v2 = marked_audit();
    let mut env = TestEnv::new();
    let host = env
        .start_with(
            &HostOptions::new()
                .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN)
                .env_remove("TASKHOST_DELIVERY"),
        )
        .await;
    let url = host.url("");
    let url = url.trim_end_matches('/');
    let user = User::new().await;
    let api = host.api(&user);

    // Shadow.
    let (ok, answer, stderr) = cli(
        url,
        &[
            "push",
            v2.to_str().unwrap(),
            "--name",
            "audit",
            "--shadow",
            "--by",
            "tester",
            "--reason",
            "compare first",
        ],
    );
    assert!(ok, "push --shadow: {stderr}");
    assert_eq!(answer["candidate"]["mode"], "shadow", "{answer}");
    assert!(stderr.contains("shadows the serving version"), "{stderr}");
    let shadowed = create_tasks(&api, 12, "shadowed").await;
    let versions = audit_versions(&api, &shadowed).await;
    assert!(
        versions.iter().all(|v| v == "0.1.0"),
        "a shadow applies nothing: {versions:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let (ok, report, stderr) = cli(url, &["shadow", "audit"]);
        assert!(ok, "shadow: {stderr}");
        let c = &report["counts"];
        let seen = c["different"].as_u64().unwrap() + c["skipped"].as_u64().unwrap();
        if seen >= shadowed.len() as u64 {
            break report;
        }
        assert!(Instant::now() < deadline, "the shadow saw {seen}: {report}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let c = &report["counts"];
    assert_eq!(c["same"], 0, "{report}");
    assert_eq!(c["candidate_failed"], 0, "{report}");
    for s in report["samples"].as_array().unwrap() {
        assert_eq!(s["diff"][0]["path"], "[0].append_audit.component_version");
        assert_eq!(s["diff"][0]["candidate"], V2);
    }

    // Canary for everyone: its effects are applied.
    let (ok, answer, stderr) = cli(
        url,
        &[
            "canary", "audit", "100", "--by", "tester", "--reason", "clean",
        ],
    );
    assert!(ok, "canary: {stderr}");
    assert_eq!(answer["candidate"]["percent"], 100, "{answer}");
    let canaried = create_tasks(&api, 5, "canaried").await;
    let versions = audit_versions(&api, &canaried).await;
    assert!(versions.iter().all(|v| v == V2), "{versions:?}");

    // Promote, then roll back.
    let (ok, answer, stderr) = cli(url, &["promote", "audit", "--by", "tester"]);
    assert!(ok, "promote: {stderr}");
    assert_eq!(answer["to"]["version"], V2, "{answer}");
    let (ok, answer, stderr) = cli(
        url,
        &["rollback", "audit", "--by", "tester", "--reason", "enough"],
    );
    assert!(ok, "rollback: {stderr}");
    assert_eq!(answer["to"]["version"], "0.1.0", "{answer}");
    let after = create_tasks(&api, 3, "after").await;
    let versions = audit_versions(&api, &after).await;
    assert!(versions.iter().all(|v| v == "0.1.0"), "{versions:?}");

    let (ok, list, stderr) = cli(url, &["list"]);
    assert!(ok, "{stderr}");
    let audit = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "audit")
        .unwrap();
    assert!(audit["candidate"].is_null(), "{audit}");
    let steps: Vec<(String, String)> = audit["journal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["origin"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let by = "admin API (by tester)".to_string();
    assert_eq!(
        steps,
        [
            ("shadow".to_string(), by.clone()),
            ("canary".to_string(), by.clone()),
            ("promote".to_string(), by.clone()),
            ("rollback".to_string(), by),
        ]
    );
    host.kill().await;
}

/// The Dapr way in (`POST /dapr/events/{topic}` as daprd calls it; no sidecar needed for the
/// callbacks) goes through the same pipeline: the shadow sees each delivery, and a canary's
/// effects are applied.
#[tokio::test]
async fn dapr_deliveries_are_shadowed_and_canaried_like_embedded_ones() {
    const APP_TOKEN: &str = "app-token-for-the-rollout-test";
    let v2 = marked_audit();
    let mut env = TestEnv::new();
    let host = env
        .start_with(
            &HostOptions::dapr_without_sidecar(APP_TOKEN)
                .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN)
                .env_remove("TASKHOST_DAPR_BULK"),
        )
        .await;
    let url = host.url("");
    let url = url.trim_end_matches('/');
    let daprd = host.as_daprd(APP_TOKEN);
    let user = User::new().await;
    let deliver = async |n: usize, label: &str| {
        for i in 0..n {
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let event = json!({
                "event_id": uuid::Uuid::new_v4().to_string(), "event_type": "task.created",
                "event_timestamp": now, "user_id": user.id,
                "task": {
                    "id": uuid::Uuid::new_v4().to_string(), "user_id": user.id,
                    "title": format!("{label} {i}"), "description": null, "is_completed": false,
                    "priority": "medium", "due_date": null, "is_recurring": false,
                    "recurrence_frequency": null, "tags": [], "created_at": now, "updated_at": now,
                },
            });
            let envelope = json!({
                "data": event, "datacontenttype": "application/json",
                "id": uuid::Uuid::new_v4().to_string(), "pubsubname": "pubsub-kafka",
                "source": "taskhost", "specversion": "1.0", "topic": "task-events",
                "type": "com.dapr.event.sent",
            });
            let reply = daprd
                .post_bytes(
                    "/dapr/events/task-events",
                    "application/cloudevents+json",
                    serde_json::to_vec(&envelope).unwrap(),
                )
                .await
                .expect(200);
            assert_eq!(reply.value()["status"], "SUCCESS", "{label} {i}");
        }
    };

    let (ok, _, stderr) = cli(
        url,
        &["push", v2.to_str().unwrap(), "--name", "audit", "--shadow"],
    );
    assert!(ok, "push --shadow: {stderr}");
    deliver(10, "shadowed").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, report, stderr) = cli(url, &["shadow", "audit"]);
        assert!(ok, "{stderr}");
        let c = &report["counts"];
        if c["different"].as_u64().unwrap() + c["skipped"].as_u64().unwrap() >= 10 {
            assert_eq!(c["same"], 0, "{report}");
            assert_eq!(c["candidate_failed"], 0, "{report}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the shadow saw too little: {report}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ok, _, stderr) = cli(url, &["canary", "audit", "100"]);
    assert!(ok, "canary: {stderr}");
    deliver(5, "canaried").await;
    let api = host.api(&user);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let trail = api.user_audit(&user.id).await;
        if trail.len() >= 15 {
            assert_eq!(trail.len(), 15, "one entry per delivery");
            let v2_entries = trail.iter().filter(|e| e.component_version == V2).count();
            assert_eq!(v2_entries, 5, "only the canary's deliveries are v2's");
            break;
        }
        assert!(Instant::now() < deadline, "{} audit entries", trail.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    host.kill().await;
}
