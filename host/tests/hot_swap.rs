//! Hot swap while messages flow: the audit component is replaced v1 → v2 → v1 → … through the
//! admin API, rolled back, pushed bad builds, and watched in its directory, while a steady
//! stream of events goes through the real pipeline (real components, real database: SQLite,
//! or PostgreSQL when TASKHOST_TEST_DATABASE_URL is set).
//!
//! v2 is the real audit crate built with its `marked` feature: identical behaviour, version
//! `0.2.0-marked`, so each audit entry's `component_version` says which build wrote it. The
//! test-only components (a trapping `audit`, a component of another world) are in
//! `components/testing/`. All three are built on first use with
//!
//! ```sh
//! cargo build --profile release-wasm --target wasm32-wasip2 -p audit --features audit/marked \
//!   -p trapping-audit -p other-world --target-dir <target>/hot-swap
//! ```
//!
//! or taken from `TASKHOST_TEST_SWAP_COMPONENTS_DIR` (`audit.wasm` = the marked build,
//! `trapping_audit.wasm`, `other_world.wasm`).

mod support;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use support::in_process;
use support::wasm_builds::{SWAP_PACKAGES, built_components_dir, read, swap_builds};
use taskhost::pipeline::{Answer, Attempt, Pipeline, Received, Verdict, Wakers};
use taskhost::runtime::{AutoRollback, Registry, Runtime, RuntimeConfig, SwapPolicy};
use taskhost::sockets::SocketHub;
use taskhost::storage::Db;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

const V2: &str = "0.2.0-marked";
const TRAPS: &str = "0.0.0-traps";
const ADMIN_TOKEN: &str = "hot-swap-test-admin-token";

// ---------------------------------------------------------------------------------------------
// The builds.
// ---------------------------------------------------------------------------------------------

struct Builds {
    audit_v1: Vec<u8>,
    audit_v2: Vec<u8>,
    trapping: Vec<u8>,
    other_world: Vec<u8>,
    recurrence: Vec<u8>,
    dir: PathBuf,
}

/// Builds the test-only components once per test binary (cargo skips what is up to date).
fn builds() -> &'static Builds {
    static BUILDS: OnceLock<Builds> = OnceLock::new();
    BUILDS.get_or_init(|| {
        let dir = swap_builds(SWAP_PACKAGES, "the hot-swap test components");
        let components = built_components_dir();
        Builds {
            audit_v1: read(&components.join("audit.wasm")),
            audit_v2: read(&dir.join("audit.wasm")),
            trapping: read(&dir.join("trapping_audit.wasm")),
            other_world: read(&dir.join("other_world.wasm")),
            recurrence: read(&components.join("recurrence.wasm")),
            dir,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// A pipeline with only `audit` loaded, and the admin API in front of it.
// ---------------------------------------------------------------------------------------------

struct Rig {
    pipeline: Pipeline,
    registry: Arc<Registry>,
    db: Db,
    components: PathBuf,
    admin_url: Option<String>,
    _dirs: Vec<TempDir>,
}

async fn rig(policy: SwapPolicy) -> Rig {
    let b = builds();
    let (db, db_dir) = in_process::database().await;
    let mut dirs: Vec<TempDir> = db_dir.into_iter().collect();
    // A fresh compile cache: the first swap to a build compiles it for real.
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let components = tempfile::tempdir().unwrap();
    std::fs::write(components.path().join("audit.wasm"), &b.audit_v1).unwrap();
    let registry = Arc::new(
        Registry::load_dir(&runtime, components.path())
            .unwrap()
            .with_policy(policy),
    );
    let pipeline = Pipeline::new(
        runtime,
        registry.clone(),
        db.clone(),
        Arc::new(SocketHub::default()),
        Wakers::default(),
        Default::default(),
    );
    let components_path = components.path().to_path_buf();
    dirs.push(cache);
    dirs.push(components);
    Rig {
        pipeline,
        registry,
        db,
        components: components_path,
        admin_url: None,
        _dirs: dirs,
    }
}

impl Rig {
    /// Serves the real router (admin routes included) on a free port.
    async fn serve_admin(&mut self) -> String {
        let url = in_process::serve(&self.db, &self.registry, &self.pipeline, ADMIN_TOKEN).await;
        self.admin_url = Some(url.clone());
        url
    }

    fn audit(&self) -> Arc<taskhost::runtime::LoadedComponent> {
        self.registry
            .slot("audit")
            .expect("audit is loaded")
            .current()
    }

    fn journal_actions(&self) -> Vec<&'static str> {
        self.registry
            .slot("audit")
            .unwrap()
            .journal()
            .iter()
            .map(|e| e.action)
            .collect()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

async fn put_component(url: &str, name: &str, bytes: &[u8]) -> (u16, Value) {
    let r = http()
        .put(format!("{url}/admin/components/{name}"))
        .bearer_auth(ADMIN_TOKEN)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("PUT /admin/components");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post_rollback(url: &str, name: &str) -> (u16, Value) {
    let r = http()
        .post(format!("{url}/admin/components/{name}/rollback"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("POST rollback");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn task_created(user: &str, event_id: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "event_id": event_id, "event_type": "task.created", "event_timestamp": now, "user_id": user,
        "task": {"id": format!("{event_id}-task"), "title": "swap me", "priority": "medium",
                 "is_completed": false, "is_recurring": false, "tags": ["t"],
                 "created_at": now, "updated_at": now}
    })
    .to_string()
}

// ---------------------------------------------------------------------------------------------
// The stream.
// ---------------------------------------------------------------------------------------------

/// One event of one stream, as the sender saw it.
#[derive(Clone, Debug)]
struct Delivered {
    event_id: String,
    /// Start of the first attempt, end of the successful one.
    started: Instant,
    ended: Instant,
    /// The version that handled it (from the pipeline's report).
    version: String,
    /// Versions whose attempts answered RETRY before it succeeded.
    retried_by: Vec<String>,
}

/// Sends events one after the other (a stream is ordered, like one user's events or one
/// partition) until `stop`, redelivering on RETRY as a transport would.
async fn stream(pipeline: Pipeline, prefix: String, stop: Arc<AtomicBool>) -> Vec<Delivered> {
    let mut out = Vec::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let event_id = format!("{prefix}-{seq:06}");
        let payload = task_created(&prefix, &event_id);
        let started = Instant::now();
        let mut retried_by = vec![];
        loop {
            let received = Received {
                topic: "task-events",
                payload: payload.as_bytes(),
                id: None,
            };
            let fate = pipeline.handle(received, Attempt::UNCOUNTED).await;
            let report = &fate.handled;
            assert_eq!(
                report.verdicts().len(),
                1,
                "only audit consumes task-events here: {report:?}"
            );
            let c = &report.verdicts()[0];
            match fate.answer {
                Answer::Done => {
                    assert!(
                        matches!(c.verdict, Verdict::Applied { effects: 1 }),
                        "{event_id}: {report:?}"
                    );
                    out.push(Delivered {
                        event_id,
                        started,
                        ended: Instant::now(),
                        version: c.component.version().to_string(),
                        retried_by,
                    });
                    break;
                }
                Answer::Retry(_) | Answer::Hold(_) => {
                    retried_by.push(c.component.version().to_string());
                    assert!(
                        retried_by.len() < 500,
                        "{event_id} never succeeded: {report:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Answer::Drop(reason) => panic!("{event_id} was dropped: {reason}"),
            }
        }
    }
    out
}

/// A change of the serving version, as the controller made or saw it.
#[derive(Debug)]
struct Change {
    what: String,
    /// Request sent … answer received (or change observed).
    start: Instant,
    end: Instant,
    to: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_survives_swaps_back_and_forth_rollbacks_and_bad_builds() {
    let b = builds();
    let mut rig = rig(SwapPolicy {
        keep_versions: 5,
        auto_rollback: Some(AutoRollback {
            window: Duration::from_secs(60),
            failure_rate: 0.5,
            min_messages: 20,
        }),
    })
    .await;
    let url = rig.serve_admin().await;
    let shutdown = CancellationToken::new();
    tokio::spawn(taskhost::runtime::guard::guard(
        rig.registry.clone(),
        shutdown.child_token(),
    ));
    let v1 = rig.audit().version.clone();
    assert_ne!(v1, V2);

    // Ordered streams sending concurrently (TASKHOST_SWAP_TEST_STREAMS, default 8).
    let streams_n: usize = std::env::var("TASKHOST_SWAP_TEST_STREAMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let run = unique("swap");
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..streams_n)
        .map(|i| {
            tokio::spawn(stream(
                rig.pipeline.clone(),
                format!("{run}-s{i}"),
                stop.clone(),
            ))
        })
        .collect();
    let began = Instant::now();
    let settle = Duration::from_millis(600);
    tokio::time::sleep(settle).await;

    let mut changes: Vec<Change> = vec![];
    let mut latencies: Vec<(String, Duration, Duration)> = vec![];
    // Swaps through the admin API: v2, v1, v2 — each a new deployment.
    for (what, bytes, want) in [
        ("push v2 (compiled)", &b.audit_v2, V2),
        ("push v1", &b.audit_v1, v1.as_str()),
        ("push v2 (from cache)", &b.audit_v2, V2),
    ] {
        let start = Instant::now();
        let (status, body) = put_component(&url, "audit", bytes).await;
        let end = Instant::now();
        assert_eq!(status, 200, "{what}: {body}");
        assert_eq!(body["to"]["version"], want, "{what}: {body}");
        let serving = rig.audit();
        assert_eq!(serving.version, want);
        let first = wait_for_first_message(&serving).await;
        latencies.push((what.to_string(), end - start, first - start));
        changes.push(Change {
            what: what.into(),
            start,
            end,
            to: want.into(),
        });
        tokio::time::sleep(settle).await;
    }
    // Two rollbacks: v2 → v1 → v2 (the earlier deployments, instantly).
    for want in [v1.as_str(), V2] {
        let start = Instant::now();
        let (status, body) = post_rollback(&url, "audit").await;
        let end = Instant::now();
        assert_eq!(status, 200, "rollback: {body}");
        assert_eq!(body["to"]["version"], want, "rollback: {body}");
        latencies.push(("rollback".into(), end - start, Duration::ZERO));
        changes.push(Change {
            what: "rollback".into(),
            start,
            end,
            to: want.into(),
        });
        tokio::time::sleep(settle).await;
    }
    // Bad builds are refused, and v2 keeps serving.
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    for (what, bytes, expect) in [
        (
            "not wasm",
            b"this is not a component".to_vec(),
            "not a valid wasm component",
        ),
        ("a core module", core_module, "not a valid wasm component"),
        (
            "another world",
            b.other_world.clone(),
            "todo:events/consumer@0.1.0",
        ),
        (
            "another component",
            b.recurrence.clone(),
            "is the component `recurrence`, not `audit`",
        ),
    ] {
        let (status, body) = put_component(&url, "audit", &bytes).await;
        assert_eq!(status, 422, "{what}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("refused") && error.contains(expect),
            "{what}: the reason should say `{expect}`: {error}"
        );
        assert_eq!(
            rig.audit().version,
            V2,
            "{what} must not change what serves"
        );
    }
    tokio::time::sleep(settle).await;
    // A build that validates but traps on every message is rolled back on its own.
    let start = Instant::now();
    let (status, body) = put_component(&url, "audit", &b.trapping).await;
    let end = Instant::now();
    assert_eq!(status, 200, "the trapping build validates: {body}");
    changes.push(Change {
        what: "push trapping build".into(),
        start,
        end,
        to: TRAPS.into(),
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while rig.audit().version == TRAPS {
        assert!(
            Instant::now() < deadline,
            "the trapping build was not rolled back"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    changes.push(Change {
        // The guard may act before the PUT is even answered.
        what: "auto-rollback".into(),
        start,
        end: Instant::now(),
        to: V2.into(),
    });
    assert_eq!(rig.audit().version, V2, "auto-rollback returns to v2");
    tokio::time::sleep(settle).await;
    // And one more swap to v1 under traffic.
    let start = Instant::now();
    let (status, body) = put_component(&url, "audit", &b.audit_v1).await;
    let end = Instant::now();
    assert_eq!(status, 200, "{body}");
    latencies.push((
        "push v1 (from cache)".into(),
        end - start,
        wait_for_first_message(&rig.audit()).await - start,
    ));
    changes.push(Change {
        what: "push v1 again".into(),
        start,
        end,
        to: v1.clone(),
    });
    tokio::time::sleep(settle).await;

    stop.store(true, Ordering::Relaxed);
    let mut streams = vec![];
    for s in senders {
        streams.push(s.await.expect("a sender panicked"));
    }
    let elapsed = began.elapsed();
    shutdown.cancel();

    // --- What the senders saw -------------------------------------------------------------
    let all: Vec<&Delivered> = streams.iter().flatten().collect();
    let total = all.len();
    let rate = total as f64 / elapsed.as_secs_f64();
    let retried: Vec<&Delivered> = all
        .iter()
        .copied()
        .filter(|d| !d.retried_by.is_empty())
        .collect();
    for d in &retried {
        assert!(
            d.retried_by.iter().all(|v| v == TRAPS),
            "{} was retried by {:?}: only the trapping build may fail a delivery",
            d.event_id,
            d.retried_by
        );
    }
    assert!(
        !retried.is_empty(),
        "the trapping build served no message: the auto-rollback was not exercised"
    );

    // Deployments in order: what served from the start, then after each change.
    let mut deployments = vec![v1.clone()];
    deployments.extend(changes.iter().map(|c| c.to.clone()));
    for (i, events) in streams.iter().enumerate() {
        check_stream_order(i, events, &deployments, &changes);
    }

    // --- What the database holds ----------------------------------------------------------
    let (entries, processed) = in_process::audit_records(&rig.db, &run).await;
    let rows: usize = entries.values().map(Vec::len).sum();
    assert_eq!(rows, total, "one audit entry per event, no more");
    assert_eq!(processed.len(), total);
    for d in &all {
        let versions = entries
            .get(&d.event_id)
            .unwrap_or_else(|| panic!("{} has no audit entry", d.event_id));
        assert_eq!(
            versions,
            &vec![d.version.clone()],
            "{}: exactly one entry, by the version that handled it",
            d.event_id
        );
        assert_eq!(processed[&d.event_id], d.version, "{}", d.event_id);
        assert!(d.version == v1 || d.version == V2, "{}", d.event_id);
    }
    let per_version = |v: &str| all.iter().filter(|d| d.version == v).count();

    // --- The slot's own account -------------------------------------------------------------
    let actions = rig.journal_actions();
    assert_eq!(
        actions,
        [
            "swap",
            "swap",
            "swap",
            "rollback",
            "rollback",
            "refused",
            "refused",
            "refused",
            "refused",
            "swap",
            "auto-rollback",
            "swap"
        ],
        "{:#?}",
        rig.registry.slot("audit").unwrap().journal()
    );

    println!(
        "hot-swap stream: {total} events in {:.1} s = {rate:.0} events/s over {streams_n} ordered streams; \
         {} by {v1}, {} by {V2}; {} deliveries retried because of the trapping build, none otherwise",
        elapsed.as_secs_f64(),
        per_version(&v1),
        per_version(V2),
        retried.len()
    );
    for (what, answered, first) in &latencies {
        if first.is_zero() {
            println!(
                "hot-swap latency: {what:<22} request → answer {:>7.2} ms (the next routed message takes the earlier version)",
                answered.as_secs_f64() * 1e3
            );
        } else {
            println!(
                "hot-swap latency: {what:<22} request → answer {:>7.2} ms, request → first message on the new version {:>7.2} ms",
                answered.as_secs_f64() * 1e3,
                first.as_secs_f64() * 1e3
            );
        }
    }
}

/// When `version` handled its first message (the stream never stops, so it does soon).
async fn wait_for_first_message(version: &taskhost::runtime::LoadedComponent) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(at) = version.stats.first_call() {
            return at;
        }
        assert!(
            Instant::now() < deadline,
            "{} handled no message",
            version.version
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Within one ordered stream, versions switch over exactly once per change, in the order of the
/// changes, and at a time consistent with the change: an event that started after a change had
/// been made was handled by that change's version (or a later one); an event that ended before
/// a change was requested, by an earlier one.
fn check_stream_order(
    stream: usize,
    events: &[Delivered],
    deployments: &[String],
    changes: &[Change],
) {
    // Deployment k serves from change k-1 on.
    let mut k = 0;
    for d in events {
        let lo = changes.iter().filter(|c| c.end < d.started).count();
        let hi = changes.iter().filter(|c| c.start < d.ended).count();
        let found = (k.max(lo)..=hi).find(|&j| deployments[j] == d.version);
        let Some(j) = found else {
            let history: Vec<String> = changes
                .iter()
                .zip(&deployments[1..])
                .map(|(c, v)| format!("{} → {v}", c.what))
                .collect();
            panic!(
                "stream {stream}: {} was handled by {}, but only deployments {}..={hi} of {deployments:?}                  could have handled it (the stream was at {k}; changes: {history:?}): versions did not                  switch over once per change, in order",
                d.event_id,
                d.version,
                k.max(lo),
            )
        };
        k = j;
    }
    // What the stream saw, run by run: one run per deployment that handled anything (the
    // trapping build handled nothing, so v2 before and after it is one run).
    let mut runs: Vec<&str> = events.iter().map(|d| d.version.as_str()).collect();
    runs.dedup();
    let mut expected: Vec<&str> = deployments
        .iter()
        .map(String::as_str)
        .filter(|v| *v != TRAPS)
        .collect();
    expected.dedup();
    assert_eq!(
        runs, expected,
        "stream {stream}: one switch-over per swap, in order"
    );
}

// ---------------------------------------------------------------------------------------------
// The other ways in, and memory.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_version_is_freed_when_its_last_message_is_done() {
    let b = builds();
    let rig = rig(SwapPolicy {
        keep_versions: 1,
        auto_rollback: None,
    })
    .await;
    // A message that took v1 before the swap.
    let in_flight = rig.audit();
    let v1 = Arc::downgrade(&in_flight);
    rig.registry
        .swap_bytes("audit", b.audit_v2.clone(), "test")
        .await
        .unwrap();
    assert_eq!(rig.audit().version, V2);
    drop(in_flight);
    assert!(v1.upgrade().is_some(), "v1 is the one kept rollback target");
    // Another message pins v2, then v1 leaves the history (keep = 1).
    let in_flight = rig.audit();
    let v2 = Arc::downgrade(&in_flight);
    rig.registry
        .swap_bytes("audit", b.audit_v1.clone(), "test")
        .await
        .unwrap();
    assert!(
        v1.upgrade().is_none(),
        "v1 is freed: out of history, no message holds it"
    );
    drop(in_flight);
    assert!(v2.upgrade().is_some(), "v2 is now the kept rollback target");
    // A rollback lets go of what it leaves; a message still on it keeps it to its end.
    let in_flight = rig.audit();
    let v3 = Arc::downgrade(&in_flight);
    rig.registry.rollback("audit", None, "test").unwrap();
    assert_eq!(rig.audit().version, V2);
    assert!(v3.upgrade().is_some(), "alive while its message is");
    drop(in_flight);
    assert!(
        v3.upgrade().is_none(),
        "freed when its last message is done"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watched_directory_takes_renames_and_never_a_half_written_file() {
    let b = builds();
    let rig = rig(SwapPolicy::default()).await;
    let shutdown = CancellationToken::new();
    let debounce = Duration::from_millis(400);
    taskhost::watch::spawn(
        rig.registry.clone(),
        &rig.components,
        debounce,
        shutdown.child_token(),
    )
    .expect("watching");
    let v1 = rig.audit().version.clone();
    let file = rig.components.join("audit.wasm");
    let quiet = debounce * 3;

    // Half of v2 written in place and left so: it is refused, v1 keeps serving.
    std::fs::write(&file, &b.audit_v2[..b.audit_v2.len() / 2]).unwrap();
    wait_for(
        || rig.journal_actions() == ["refused"],
        "the half file refused",
    )
    .await;
    assert_eq!(rig.audit().version, v1);

    // v2 written in place in two parts, with a pause shorter than the debounce: loaded once,
    // whole.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&file).unwrap();
        f.write_all(&b.audit_v2[..b.audit_v2.len() / 3]).unwrap();
        f.flush().unwrap();
        std::thread::sleep(debounce / 8);
        f.write_all(&b.audit_v2[b.audit_v2.len() / 3..]).unwrap();
    }
    wait_for(|| rig.audit().version == V2, "v2 serving").await;
    assert_eq!(rig.journal_actions(), ["refused", "swap"]);

    // A temporary file is not a component; the rename that lands it is.
    let tmp = rig.components.join("audit.wasm.tmp");
    std::fs::write(&tmp, &b.audit_v1).unwrap();
    tokio::time::sleep(quiet).await;
    assert_eq!(rig.audit().version, V2, "the .tmp file is ignored");
    std::fs::rename(&tmp, &file).unwrap();
    wait_for(|| rig.audit().version == v1, "v1 serving after the rename").await;

    // Another component's build landing on audit.wasm is refused.
    std::fs::write(&tmp, &b.recurrence).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    wait_for(
        || rig.journal_actions().last() == Some(&"refused"),
        "recurrence.wasm refused as audit",
    )
    .await;
    assert_eq!(rig.audit().version, v1);
    // A new file is not a new component (that needs a restart), and nothing else changed.
    std::fs::write(rig.components.join("other.wasm"), &b.other_world).unwrap();
    tokio::time::sleep(quiet).await;
    assert_eq!(
        rig.journal_actions(),
        ["refused", "swap", "swap", "refused"]
    );
    assert_eq!(rig.registry.slots().count(), 1);
    shutdown.cancel();
}

/// Writes `files` into `dir` the way the kubelet updates a ConfigMap volume (its
/// `AtomicWriter`): a new hidden `..<timestamp>` directory, a `..data_tmp` symlink to it renamed
/// over `..data`, visible `<name>` symlinks into `..data` (made once), the old directory removed.
fn kubelet_write(dir: &Path, generation: u32, files: &[(&str, &[u8])]) {
    use std::os::unix::fs::symlink;
    let ts = format!("..2026_01_31_10_00_00.{generation}");
    std::fs::create_dir(dir.join(&ts)).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(&ts).join(name), bytes).unwrap();
    }
    let old = std::fs::read_link(dir.join("..data")).ok();
    symlink(&ts, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    for (name, _) in files {
        let visible = dir.join(name);
        if std::fs::symlink_metadata(&visible).is_err() {
            symlink(Path::new("..data").join(name), visible).unwrap();
        }
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(dir.join(old)).unwrap();
    }
}

/// A ConfigMap volume's update never touches `audit.wasm` itself (only `..data` is renamed):
/// the watcher rescans, swaps the component whose bytes changed and leaves the others alone —
/// also a version pushed through the admin API, when its file did not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubelet_configmap_update_swaps_only_the_changed_components() {
    let b = builds();
    let volume = tempfile::tempdir().unwrap();
    let dir = volume.path();
    kubelet_write(
        dir,
        1,
        &[
            ("audit.wasm", &b.audit_v1),
            ("recurrence.wasm", &b.recurrence),
        ],
    );
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let registry = Arc::new(Registry::load_dir(&runtime, dir).unwrap());
    let version = |name: &str| registry.slot(name).unwrap().current().version.clone();
    let actions = |name: &str| -> Vec<&'static str> {
        let journal = registry.slot(name).unwrap().journal();
        journal.iter().map(|e| e.action).collect()
    };
    let v1 = version("audit");
    let shutdown = CancellationToken::new();
    taskhost::watch::spawn(
        registry.clone(),
        dir,
        Duration::from_millis(200),
        shutdown.child_token(),
    )
    .expect("watching");

    // audit changes, recurrence is rewritten with the same bytes.
    kubelet_write(
        dir,
        2,
        &[
            ("audit.wasm", &b.audit_v2),
            ("recurrence.wasm", &b.recurrence),
        ],
    );
    wait_for(
        || version("audit") == V2,
        "audit v2 serving after `..data` switched",
    )
    .await;
    assert_eq!(actions("audit"), ["swap"]);

    // An operator rolls audit back on this pod through the admin API; then the volume changes
    // recurrence only (a truncated build, refused): audit's file did not change, so v1 stays.
    registry.rollback("audit", None, "admin").unwrap();
    assert_eq!(version("audit"), v1);
    kubelet_write(
        dir,
        3,
        &[
            ("audit.wasm", &b.audit_v2),
            ("recurrence.wasm", &b.recurrence[..b.recurrence.len() / 2]),
        ],
    );
    wait_for(
        || actions("recurrence") == ["refused"],
        "the changed recurrence.wasm tried (and refused)",
    )
    .await;
    assert_eq!(
        version("audit"),
        v1,
        "an unchanged file is not swapped again"
    );
    assert_eq!(actions("audit"), ["swap", "rollback"]);
    shutdown.cancel();
}

async fn wait_for(mut check: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The binary end to end: `serve` with the admin API, and `taskhost components` as its client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_pushes_lists_and_rolls_back_a_running_host() {
    let b = builds();
    let dir = tempfile::tempdir().unwrap();
    let components = dir.path().join("components");
    std::fs::create_dir(&components).unwrap();
    std::fs::write(components.join("audit.wasm"), &b.audit_v1).unwrap();
    let mut host = tokio::process::Command::new(env!("CARGO_BIN_EXE_taskhost"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--no-cache"])
        .arg("--database-url")
        .arg(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("t.db").display()
        ))
        .arg("--components-dir")
        .arg(&components)
        .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("TASKHOST_DELIVERY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("host.log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("starting taskhost serve");
    let stdout = host.stdout.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let first = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
        .await
        .expect("taskhost did not start")
        .unwrap()
        .unwrap_or_default();
    let url = first
        .strip_prefix("taskhost listening on ")
        .unwrap_or_else(|| {
            panic!(
                "unexpected first line {first:?}; log:\n{}",
                std::fs::read_to_string(dir.path().join("host.log")).unwrap_or_default()
            )
        })
        .to_string();

    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_taskhost"))
            .arg("components")
            .args(args)
            .args(["--url", &url])
            .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .expect("running taskhost components");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.success(), stdout, stderr)
    };
    let v2_file = b.dir.join("audit.wasm");
    let (ok, stdout, stderr) = cli(&["push", v2_file.to_str().unwrap(), "--name", "audit"]);
    assert!(ok, "push failed: {stderr}");
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(answer["to"]["version"], V2, "{stdout}");
    assert!(
        stderr.contains("audit: 0.1.0") && stderr.contains(V2),
        "{stderr}"
    );

    let (ok, stdout, stderr) = cli(&["list"]);
    assert!(ok, "{stderr}");
    let list: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list[0]["name"], "audit");
    assert_eq!(list[0]["version"], V2);
    assert_eq!(list[0]["world"], "todo:events/consumer@0.1.0");
    assert_eq!(list[0]["on_probation"], true);
    assert_eq!(list[0]["previous"][0]["version"], "0.1.0");
    for key in ["digest", "loaded_at", "messages_handled", "errors"] {
        assert!(!list[0][key].is_null(), "{key} missing: {stdout}");
    }

    let (ok, stdout, stderr) = cli(&["rollback", "audit", "--to", "0.1.0"]);
    assert!(ok, "{stderr}");
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(answer["to"]["version"], "0.1.0");

    let other = b.dir.join("other_world.wasm");
    let (ok, _, stderr) = cli(&["push", other.to_str().unwrap(), "--name", "audit"]);
    assert!(!ok);
    assert!(
        stderr.contains("422") && stderr.contains("todo:events/consumer@0.1.0"),
        "{stderr}"
    );
    let (ok, _, stderr) = cli(&["push", v2_file.to_str().unwrap(), "--name", "billing"]);
    assert!(
        !ok && stderr.contains("404") && stderr.contains("billing"),
        "{stderr}"
    );
    let (ok, _, stderr) = cli(&["rollback", "audit"]);
    assert!(
        !ok && stderr.contains("409"),
        "nothing older than 0.1.0 is kept: {stderr}"
    );

    // The admin token guards every route; the upload limit is 32 MiB.
    let r = http()
        .put(format!("{url}/admin/components/audit"))
        .bearer_auth("wrong-token-wrong-token")
        .body(b.audit_v2.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = http()
        .put(format!("{url}/admin/components/audit"))
        .bearer_auth(ADMIN_TOKEN)
        .body(vec![0u8; 33 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    // A 2 MiB body (above the API's default 1 MiB limit) reaches validation.
    let mut big = b.audit_v2.clone();
    big.resize(2 << 20, 0);
    let r = http()
        .put(format!("{url}/admin/components/audit"))
        .bearer_auth(ADMIN_TOKEN)
        .body(big)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert!(
        status == 422 || status == 200,
        "a 2 MiB upload reaches validation, got {status}"
    );

    // The watcher runs in `serve`: a rename into the directory swaps.
    let tmp = components.join("audit.wasm.tmp");
    std::fs::write(&tmp, &b.audit_v2).unwrap();
    std::fs::rename(&tmp, components.join("audit.wasm")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, stdout, _) = cli(&["list"]);
        let list: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        if list[0]["version"] == V2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the watcher did not swap: {stdout}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    host.kill().await.ok();
}
