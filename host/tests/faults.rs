//! Misbehaving components against the real binary: each is contained to its own calls, its
//! messages are retried with backoff and then dead-lettered with a reason that names the limit
//! it hit, and the real components handle the very same messages as if nothing happened. Then
//! the dead-letter API: list with filters and paging, and replay after a fixed version is
//! swapped in, with every replayed message applied exactly once.
//!
//! The misbehaving components (`components/testing/`, never shipped) are built by this test:
//!
//! ```sh
//! cargo build --profile release-wasm --target wasm32-wasip2 -p panicking --features panicking/fixed \
//!   --target-dir <target>/faults        # read at once: the next build overwrites it
//! cargo build --profile release-wasm --target wasm32-wasip2 -p looping -p memory-hog -p trapping \
//!   -p panicking -p effect-flood -p oversized-effect --target-dir <target>/faults
//! ```

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use support::wasm_builds::build_wasm;
use support::{EFFECT_TIMEOUT, HostOptions, TestEnv, User, same, wait_until};

const ADMIN_TOKEN: &str = "faults-test-admin-token";

/// Limits made small so that every fault is hit quickly; each test asserts the reason names
/// the variable that set the limit.
const MAX_ATTEMPTS: u32 = 3;
const RETRY_BACKOFF_MS: u64 = 50;

/// How long all the retries of a few messages may take: each attempt of the looping component
/// costs its call timeout, and a user's messages are retried one after the other.
const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(90);

/// The misbehaving components, as `(describe name, .wasm file, what its dead letter must say)`.
const MISBEHAVING: [(&str, &str, &[&str]); 6] = [
    (
        "looping",
        "looping.wasm",
        &["timed out", "TASKHOST_CALL_TIMEOUT_MS"],
    ),
    (
        "memory-hog",
        "memory_hog.wasm",
        &["exceeded the memory limit", "TASKHOST_MEMORY_LIMIT_MIB"],
    ),
    ("trapping", "trapping.wasm", &["trapped", "unreachable"]),
    ("panicking", "panicking.wasm", &["trapped"]),
    (
        "effect-flood",
        "effect_flood.wasm",
        &["returned 10000 effects", "TASKHOST_MAX_EFFECTS"],
    ),
    (
        "oversized-effect",
        "oversized_effect.wasm",
        &["bytes of effects", "TASKHOST_MAX_EFFECT_BYTES"],
    ),
];

const MISBEHAVING_BUILDS: &str = "the misbehaving test components";

struct Builds {
    /// The misbehaving components' .wasm files.
    dir: PathBuf,
    /// `panicking` 0.2.0-fixed.
    panicking_fixed: Vec<u8>,
}

/// Builds the test components once per test binary (cargo skips what is up to date). The
/// fixed `panicking` is built first and read at once: the second build, without the feature,
/// puts 0.1.0 at the same path (sharing one target directory builds wit-bindgen once).
fn builds() -> &'static Builds {
    static BUILDS: OnceLock<Builds> = OnceLock::new();
    BUILDS.get_or_init(|| {
        let target = support::target_dir().join("faults");
        let out = target.join("wasm32-wasip2/release-wasm");
        build_wasm(
            &target,
            &["-p", "panicking", "--features", "panicking/fixed"],
            MISBEHAVING_BUILDS,
        );
        let fixed_wasm = out.join("panicking.wasm");
        let panicking_fixed = std::fs::read(&fixed_wasm)
            .unwrap_or_else(|e| panic!("reading {}: {e}", fixed_wasm.display()));
        build_wasm(
            &target,
            &[
                "-p",
                "looping",
                "-p",
                "memory-hog",
                "-p",
                "trapping",
                "-p",
                "panicking",
                "-p",
                "effect-flood",
                "-p",
                "oversized-effect",
            ],
            MISBEHAVING_BUILDS,
        );
        Builds {
            dir: out,
            panicking_fixed,
        }
    })
}

/// A components directory with the four real components and the named misbehaving ones.
fn components_with(bad: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("taskhost-faults-components-")
        .tempdir()
        .expect("a temporary components directory");
    let real = support::components_dir();
    for c in ["recurrence", "notification", "audit", "sync"] {
        let name = format!("{c}.wasm");
        std::fs::copy(real.join(&name), dir.path().join(&name))
            .unwrap_or_else(|e| panic!("copying {name}: {e}"));
    }
    for file in bad {
        std::fs::copy(builds().dir.join(file), dir.path().join(file))
            .unwrap_or_else(|e| panic!("copying {file}: {e}"));
    }
    dir
}

fn options(components: &Path) -> HostOptions {
    HostOptions::new()
        .components_dir(components)
        .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("TASKHOST_CALL_TIMEOUT_MS", "300")
        .env("TASKHOST_MEMORY_LIMIT_MIB", "16")
        .env("TASKHOST_MAX_EFFECTS", "64")
        .env("TASKHOST_MAX_EFFECT_BYTES", "65536")
        .env("TASKHOST_MAX_ATTEMPTS", MAX_ATTEMPTS.to_string())
        .env("TASKHOST_RETRY_BACKOFF_MS", RETRY_BACKOFF_MS.to_string())
        // The fixed build is pushed in the replay test: no probation to get in the way.
        .env("TASKHOST_AUTO_ROLLBACK", "false")
        .env("TASKHOST_WATCH_COMPONENTS", "false")
}

fn admin(host: &support::Host) -> support::Api {
    host.api_with_authorization(Some(&format!("Bearer {ADMIN_TOKEN}")))
}

async fn dead_letters(host: &support::Host, query: &str) -> Vec<Value> {
    admin(host)
        .get(&format!("/admin/dead-letters{query}"))
        .await
        .expect(200)
        .json()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

/// The event ids the real audit component recorded for these tasks: every event that flowed.
async fn audited_events(api: &support::Api, tasks: &[&str]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for t in tasks {
        for e in api.task_audit(t).await {
            ids.insert(e.event_id);
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_components_are_contained_retried_and_dead_lettered() {
    let bad_files: Vec<&str> = MISBEHAVING.iter().map(|(_, f, _)| *f).collect();
    let components = components_with(&bad_files);
    let mut env = TestEnv::new();
    let mut host = env.start_with(&options(components.path())).await;
    let alice = User::new().await;
    let bob = User::new().await;
    let a = host.api(&alice);
    let b = host.api(&bob);

    // Alice: a daily series, completed (the real recurrence creates the next instance, whose
    // creation is one more event). Bob: one task of his own.
    let due = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let series = a
        .create_task(&json!({"title": "water the plants", "due_date": due,
                             "is_recurring": true, "recurrence_frequency": "daily"}))
        .await;
    let before_complete = a.task(&series.id).await;
    a.complete_task(&series.id).await;
    let bobs = b
        .create_task(&json!({"title": "bob's own task", "due_date": due}))
        .await;

    // The healthy components handle the same messages: the next instance exists, with its
    // reminders scheduled, and every operation is audited once.
    let next = wait_until(
        "recurrence to create the next instance of alice's series",
        EFFECT_TIMEOUT * 3,
        async || {
            let tasks = a.tasks().await;
            tasks
                .into_iter()
                .find(|t| t.id != series.id && t.series_id.as_deref() == Some(&series.id))
                .ok_or_else(|| "no next instance yet".to_string())
        },
    )
    .await;
    wait_until(
        "notification to schedule the next instance's reminders",
        EFFECT_TIMEOUT * 3,
        async || {
            let r = a.reminders_for(&next.id).await;
            if r.is_empty() {
                Err("no reminders".into())
            } else {
                Ok(())
            }
        },
    )
    .await;
    for (api, task, ops) in [
        (&a, &series.id, vec!["created", "completed"]),
        (&a, &next.id, vec!["created"]),
        (&b, &bobs.id, vec!["created"]),
    ] {
        wait_until(
            &format!("audit to record {ops:?} for task {task}"),
            EFFECT_TIMEOUT * 3,
            async || {
                let got: Vec<String> = api
                    .task_audit(task)
                    .await
                    .into_iter()
                    .map(|e| e.operation)
                    .collect();
                same(got, ops.iter().map(|s| s.to_string()).collect()).map(|_| ())
            },
        )
        .await;
    }
    let events = {
        let mut all = audited_events(&a, &[&series.id, &next.id]).await;
        all.extend(audited_events(&b, &[&bobs.id]).await);
        all
    };
    assert_eq!(events.len(), 4, "four events flowed: {events:?}");

    // Every misbehaving component gets every one of those events dead-lettered, after all its
    // attempts, with a reason that names what it hit.
    let expected_total = events.len() * MISBEHAVING.len();
    let all = wait_until(
        &format!("{expected_total} dead letters (4 events × 6 misbehaving components)"),
        DEAD_LETTER_TIMEOUT,
        async || {
            let all = dead_letters(&host, "?limit=1000").await;
            if all.len() >= expected_total {
                Ok(all)
            } else {
                Err(format!("{} so far", all.len()))
            }
        },
    )
    .await;
    assert_eq!(
        all.len(),
        expected_total,
        "one dead letter per (component, event), none for the healthy components: {all:#?}"
    );
    for (name, _, phrases) in MISBEHAVING {
        let mine = dead_letters(&host, &format!("?component={name}")).await;
        let ids: BTreeSet<String> = mine.iter().map(|d| str_of(d, "event_id").into()).collect();
        assert_eq!(ids, events, "{name}: one dead letter per event");
        for d in &mine {
            let reason = str_of(d, "reason");
            assert!(
                reason.starts_with(&format!(
                    "{name}@0.1.0: gave up after {MAX_ATTEMPTS} attempts"
                )),
                "{name}: the reason names the component, version and attempts: {reason}"
            );
            for phrase in phrases {
                assert!(
                    reason.contains(phrase),
                    "{name}: the reason must say {phrase:?}: {reason}"
                );
            }
            assert_eq!(d["attempts"], json!(MAX_ATTEMPTS), "{name}: {d}");
            assert_eq!(d["topic"], json!("task-events"), "{name}: {d}");
            assert!(d["replayed_at"].is_null(), "{name}: {d}");
        }
    }
    for healthy in ["audit", "recurrence", "notification", "sync"] {
        assert_eq!(
            dead_letters(&host, &format!("?component={healthy}")).await,
            Vec::<Value>::new(),
            "{healthy} handled every message"
        );
    }

    // Retried with backoff: the first event was dead-lettered no sooner than the backoff
    // between its attempts allows (50 ms, then 100 ms), counted from the write that made it.
    let first_created = all
        .iter()
        .filter(|d| d["component"] == json!("trapping"))
        .map(|d| support::instant_of(&d["created_at"]).expect("created_at is an instant"))
        .min()
        .expect("trapping has dead letters");
    let min_wait = chrono::Duration::milliseconds(
        (0..MAX_ATTEMPTS - 1)
            .map(|i| (RETRY_BACKOFF_MS << i) as i64)
            .sum(),
    );
    assert!(
        first_created - before_complete.created_at >= min_wait,
        "dead-lettered at {first_created}, only {} after the first write at {}: the retries did not back off",
        first_created - before_complete.created_at,
        before_complete.created_at
    );
    let log = host.stderr();
    let retries = log
        .lines()
        .filter(|l| l.contains("delivery will be retried"))
        .count();
    assert!(
        retries >= events.len() * (MAX_ATTEMPTS as usize - 1),
        "each event was retried {} times before it was dead-lettered; the log has {retries} retries",
        MAX_ATTEMPTS - 1
    );

    // The guest's panic message reached the log, attributed to the component and version.
    let panic_line = log
        .lines()
        .find(|l| {
            l.contains(&format!(
                "panicking component gives up on task {}",
                series.id
            ))
        })
        .unwrap_or_else(|| panic!("the panic message of `panicking` is not in the log"));
    assert!(
        panic_line.contains("component=panicking") && panic_line.contains("version=0.1.0"),
        "the panic line names the component and version: {panic_line}"
    );

    // Exactly once for the healthy components despite the redeliveries: one audit entry per
    // event, one next instance.
    assert_eq!(a.task_audit(&series.id).await.len(), 2);
    let instances = a
        .tasks()
        .await
        .into_iter()
        .filter(|t| t.series_id.as_deref() == Some(&series.id) && t.id != series.id)
        .count();
    assert_eq!(instances, 1, "one next instance of the series");

    // The host is still up, ready, and handles new work.
    assert!(host.is_running(), "the host survived every fault");
    host.api_with_authorization(None)
        .get("/readyz")
        .await
        .expect(200);
    let later = b.create_task(&json!({"title": "after the storm"})).await;
    wait_until(
        "audit of a task written after the faults",
        EFFECT_TIMEOUT * 3,
        async || {
            let n = b.task_audit(&later.id).await.len();
            if n == 1 {
                Ok(())
            } else {
                Err(format!("{n} entries"))
            }
        },
    )
    .await;
    // Each misbehaving component's error counts are its own.
    let components: Vec<Value> = admin(&host)
        .get("/admin/components")
        .await
        .expect(200)
        .json();
    let errors: BTreeMap<String, u64> = components
        .iter()
        .map(|c| {
            (
                str_of(c, "name").to_string(),
                c["errors"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    for healthy in ["audit", "recurrence", "notification", "sync"] {
        assert_eq!(errors[healthy], 0, "{healthy} made no errors: {errors:?}");
    }
    for (name, _, _) in MISBEHAVING {
        assert!(
            errors[name] >= events.len() as u64 * u64::from(MAX_ATTEMPTS),
            "{name} failed every attempt: {errors:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_replayed_exactly_once_after_a_fix() {
    let components = components_with(&["panicking.wasm"]);
    let mut env = TestEnv::new();
    let host = env.start_with(&options(components.path())).await;
    let user = User::new().await;
    let api = host.api(&user);

    let mut tasks = Vec::new();
    for i in 0..3 {
        tasks.push(
            api.create_task(&json!({ "title": format!("task {i}") }))
                .await,
        );
    }
    let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    let dead = wait_until(
        "three dead letters of `panicking`",
        DEAD_LETTER_TIMEOUT,
        async || {
            let d = dead_letters(&host, "?component=panicking&status=pending").await;
            if d.len() == 3 {
                Ok(d)
            } else {
                Err(format!("{} so far", d.len()))
            }
        },
    )
    .await;
    let events = audited_events(&api, &ids).await;
    let dead_events: BTreeSet<String> = dead.iter().map(|d| str_of(d, "event_id").into()).collect();
    assert_eq!(dead_events, events, "one dead letter per event");

    // Listing: filters and paging, newest first.
    let page1 = dead_letters(&host, "?component=panicking&limit=2").await;
    assert_eq!(page1.len(), 2);
    let last = str_of(&page1[1], "id");
    let page2 = dead_letters(
        &host,
        &format!("?component=panicking&limit=2&before={last}"),
    )
    .await;
    assert_eq!(page2.len(), 1);
    let paged: Vec<&str> = page1
        .iter()
        .chain(&page2)
        .map(|d| str_of(d, "id"))
        .collect();
    let listed: Vec<&str> = dead.iter().map(|d| str_of(d, "id")).collect();
    assert_eq!(paged, listed, "two pages give the whole list, in order");
    let first = str_of(&dead[2], "event_id");
    assert_eq!(
        dead_letters(&host, &format!("?event_id={first}"))
            .await
            .len(),
        1
    );
    assert!(dead_letters(&host, "?component=audit").await.is_empty());
    assert!(dead_letters(&host, "?status=replayed").await.is_empty());
    assert!(dead_letters(&host, "?topic=reminders").await.is_empty());
    for (bad, says) in [
        ("?status=done", "status must be"),
        ("?limit=0", "limit must be"),
        ("?limit=abc", "limit must be"),
        ("?before=-3", "before must be"),
        ("?component=", "component must not be empty"),
        ("?colour=red", "invalid query"),
    ] {
        let reply = admin(&host)
            .get(&format!("/admin/dead-letters{bad}"))
            .await
            .expect(400);
        assert!(
            reply.error_message().contains(says),
            "{bad}: {}",
            reply.error_message()
        );
    }

    // Replaying before the fix fails again, says why, and leaves the dead letter pending.
    let oldest = str_of(&dead[2], "id").to_string();
    let again: Value = admin(&host)
        .post(&format!("/admin/dead-letters/{oldest}/replay"), &json!({}))
        .await
        .expect(200)
        .json();
    assert_eq!(again["outcome"], json!("failed"), "{again}");
    assert!(str_of(&again, "reason").contains("trapped"), "{again}");
    let still = dead_letters(&host, "?component=panicking&status=pending").await;
    assert_eq!(still.len(), 3);
    let record = still.iter().find(|d| d["id"] == json!(oldest)).unwrap();
    assert_eq!(record["replays"], json!(1));
    assert!(str_of(record, "last_replay_error").contains("trapped"));
    admin(&host)
        .post("/admin/dead-letters/999999/replay", &json!({}))
        .await
        .expect(404);
    admin(&host)
        .post("/admin/dead-letters/replay", &json!({}))
        .await
        .expect(400);

    // The fix: swap in 0.2.0-fixed through the admin API.
    let swapped: Value = admin(&host)
        .send_bytes(
            Method::PUT,
            "/admin/components/panicking",
            "application/wasm",
            builds().panicking_fixed.clone(),
        )
        .await
        .expect(200)
        .json();
    assert_eq!(swapped["to"]["version"], json!("0.2.0-fixed"), "{swapped}");

    // One replay by id, then the same one again (a duplicate: nothing applied twice), then
    // everything still pending for the component.
    let one: Value = admin(&host)
        .post(&format!("/admin/dead-letters/{oldest}/replay"), &json!({}))
        .await
        .expect(200)
        .json();
    assert_eq!(one["outcome"], json!("applied"), "{one}");
    let twice: Value = admin(&host)
        .post(&format!("/admin/dead-letters/{oldest}/replay"), &json!({}))
        .await
        .expect(200)
        .json();
    assert_eq!(twice["outcome"], json!("duplicate"), "{twice}");
    let all: Value = admin(&host)
        .post("/admin/dead-letters/replay?component=panicking", &json!({}))
        .await
        .expect(200)
        .json();
    assert_eq!(all["replayed"], json!(2), "{all}");
    assert_eq!(all["counts"], json!({"applied": 2}), "{all}");
    let none: Value = admin(&host)
        .post("/admin/dead-letters/replay?component=panicking", &json!({}))
        .await
        .expect(200)
        .json();
    assert_eq!(
        none["replayed"],
        json!(0),
        "nothing is pending any more: {none}"
    );
    assert!(
        dead_letters(&host, "?status=pending").await.is_empty(),
        "every dead letter is replayed"
    );
    for d in dead_letters(&host, "?status=replayed").await {
        assert!(d["replayed_at"].is_string(), "{d}");
    }

    // Exactly once: the fixed build notifies once per call with a key of its own, so only the
    // exactly-once record keeps a replay from applying twice. One notification per event.
    let fixed_title = "handled by panicking 0.2.0-fixed";
    let handled: Vec<String> = api
        .notifications()
        .await
        .into_iter()
        .filter(|n| n.title == fixed_title)
        .map(|n| n.body)
        .collect();
    let handled_set: BTreeSet<String> = handled.iter().cloned().collect();
    assert_eq!(
        handled.len(),
        3,
        "one notification per replayed event: {handled:?}"
    );
    assert_eq!(handled_set, events);

    // New messages go straight to the fixed version; nothing more is dead-lettered.
    let later = api.create_task(&json!({"title": "after the fix"})).await;
    wait_until(
        "the fixed version to handle a new task",
        EFFECT_TIMEOUT * 3,
        async || {
            let n = api
                .notifications()
                .await
                .into_iter()
                .filter(|n| n.title == fixed_title && n.task_id == later.id)
                .count();
            same(n, 1).map(|_| ())
        },
    )
    .await;
    assert_eq!(dead_letters(&host, "").await.len(), 3);

    // The command-line client says the same.
    let listed = cli(
        &host,
        &["list", "--component", "panicking", "--status", "replayed"],
    )
    .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    let replayed = cli(&host, &["replay", "--component", "panicking"]).await;
    assert_eq!(replayed["replayed"], json!(0), "{replayed}");
    let by_id = cli(&host, &["replay", &oldest]).await;
    assert_eq!(by_id["outcome"], json!("duplicate"), "{by_id}");
}

/// Runs `taskhost dead-letters <args>` against the host and parses what it prints.
async fn cli(host: &support::Host, args: &[&str]) -> Value {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_taskhost"))
        .arg("dead-letters")
        .args(args)
        .args(["--url", &host.url("")])
        .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .expect("running taskhost dead-letters");
    assert!(
        output.status.success(),
        "taskhost dead-letters {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "taskhost dead-letters {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
