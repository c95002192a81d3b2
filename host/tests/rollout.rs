//! Shadow runs and canaries while messages flow: audit v2 (the real audit crate built with its
//! `marked` feature, version `0.2.0-marked`, as in `hot_swap.rs`) shadows v1, then serves a
//! canary slice of the users, then everyone, then is rolled back; a trapping candidate shadows
//! without touching a real delivery. Real components, the real pipeline, a real database
//! (SQLite, or PostgreSQL when TASKHOST_TEST_DATABASE_URL is set), the real admin API.
//!
//! The test-only builds are made on first use with
//!
//! ```sh
//! cargo build --profile release-wasm --target wasm32-wasip2 -p audit --features audit/marked \
//!   -p trapping-audit -p other-world --target-dir <target>/hot-swap
//! ```
//!
//! (the same command and directory as `hot_swap.rs`), or taken from
//! `TASKHOST_TEST_SWAP_COMPONENTS_DIR`.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use support::in_process;
use support::wasm_builds::{SWAP_PACKAGES, built_components_dir, read, swap_builds};
use taskhost::pipeline::{Answer, Attempt, Pipeline, Received, Verdict, Wakers};
use taskhost::rollout::{Rollouts, bucket};
use taskhost::runtime::{AutoRollback, Registry, Runtime, RuntimeConfig, SwapPolicy};
use taskhost::sockets::SocketHub;
use taskhost::storage::Db;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

const V2: &str = "0.2.0-marked";
const ADMIN_TOKEN: &str = "rollout-test-admin-token";
/// Ordered streams sending at once; each owns its users.
const STREAMS: usize = 8;
const USERS_PER_STREAM: usize = 16;

// ---------------------------------------------------------------------------------------------
// The builds.
// ---------------------------------------------------------------------------------------------

struct Builds {
    audit_v1: Vec<u8>,
    audit_v2: Vec<u8>,
    trapping: Vec<u8>,
}

fn builds() -> &'static Builds {
    static BUILDS: OnceLock<Builds> = OnceLock::new();
    BUILDS.get_or_init(|| {
        let dir = swap_builds(SWAP_PACKAGES, "the test components");
        Builds {
            audit_v1: read(&built_components_dir().join("audit.wasm")),
            audit_v2: read(&dir.join("audit.wasm")),
            trapping: read(&dir.join("trapping_audit.wasm")),
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
    url: String,
    shutdown: CancellationToken,
    _dirs: Vec<TempDir>,
}

async fn rig() -> Rig {
    // The Prometheus recorder, as the host installs it: the shadow's counters are checked.
    taskhost::metrics::install();
    let b = builds();
    let (db, db_dir) = in_process::database().await;
    let mut dirs: Vec<TempDir> = db_dir.into_iter().collect();
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let components = tempfile::tempdir().unwrap();
    std::fs::write(components.path().join("audit.wasm"), &b.audit_v1).unwrap();
    let policy = SwapPolicy {
        keep_versions: 5,
        auto_rollback: Some(AutoRollback {
            window: Duration::from_secs(60),
            failure_rate: 0.5,
            min_messages: 20,
        }),
    };
    let registry = Arc::new(
        Registry::load_dir(&runtime, components.path())
            .unwrap()
            .with_policy(policy),
    );
    // Every difference kept, so that the report can be checked against every event.
    let pipeline = Pipeline::new(
        runtime,
        registry.clone(),
        db.clone(),
        Arc::new(SocketHub::default()),
        Wakers::default(),
        Default::default(),
    )
    .with_rollouts(Rollouts::with_samples(registry.clone(), 1_000_000));
    dirs.push(components);
    let shutdown = CancellationToken::new();
    // Both guards run, as in the host: the serving version's and the canary's.
    tokio::spawn(taskhost::runtime::guard::guard(
        registry.clone(),
        shutdown.child_token(),
    ));
    tokio::spawn(taskhost::rollout::guard::guard(
        pipeline.rollouts().clone(),
        shutdown.child_token(),
    ));
    let url = in_process::serve(&db, &registry, &pipeline, ADMIN_TOKEN).await;
    Rig {
        pipeline,
        registry,
        db,
        url,
        shutdown,
        _dirs: dirs,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

impl Rig {
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> (u16, Value) {
        let mut request = http()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .query(query);
        if let Some(body) = body {
            request = request.body(body.to_vec());
        }
        let r = request.send().await.expect("admin request");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn shadow_report(&self) -> Value {
        let (status, body) = self
            .admin(
                reqwest::Method::GET,
                "/admin/components/audit/shadow",
                &[],
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until the shadow has accounted for `n` calls (they run off the serving path, so
    /// they may finish after the deliveries they shadow).
    async fn shadow_accounted(&self, n: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let report = self.shadow_report().await;
            let c = &report["counts"];
            let total: u64 = ["same", "different", "candidate_failed", "skipped"]
                .iter()
                .map(|k| c[k].as_u64().unwrap())
                .sum();
            if total >= n {
                assert_eq!(total, n, "more shadow calls than deliveries: {c}");
                return report;
            }
            assert!(
                Instant::now() < deadline,
                "the shadow accounted for {total} of {n} calls"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POSTs a rollout step of audit's (`promote`, `rollback`) by `test` for `reason` and checks
    /// it was taken; returns (sent, answered, the answer).
    async fn step(&self, step: &str, reason: &str) -> (Instant, Instant, Value) {
        let sent = Instant::now();
        let (status, body) = self
            .admin(
                reqwest::Method::POST,
                &format!("/admin/components/audit/{step}"),
                &[("by", "test"), ("reason", reason)],
                None,
            )
            .await;
        let answered = Instant::now();
        assert_eq!(status, 200, "{body}");
        (sent, answered, body)
    }

    fn serving(&self) -> String {
        self.registry
            .slot("audit")
            .unwrap()
            .current()
            .version
            .clone()
    }
}

// ---------------------------------------------------------------------------------------------
// The stream.
// ---------------------------------------------------------------------------------------------

fn task_created(user: &str, event_id: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::json!({
        "event_id": event_id, "event_type": "task.created", "event_timestamp": now, "user_id": user,
        "task": {"id": format!("{event_id}-task"), "title": "shadow me", "priority": "medium",
                 "is_completed": false, "is_recurring": false, "tags": ["t"],
                 "created_at": now, "updated_at": now}
    })
    .to_string()
}

#[derive(Clone, Debug)]
struct Delivered {
    event_id: String,
    user: String,
    started: Instant,
    ended: Instant,
    version: String,
    retried_by: Vec<String>,
}

/// One ordered stream over `users` (round robin) until `stop`, redelivering on RETRY as a
/// transport would.
async fn stream(
    pipeline: Pipeline,
    users: Vec<String>,
    phase: &'static str,
    stop: Arc<AtomicBool>,
) -> Vec<Delivered> {
    let mut out = Vec::new();
    let mut seq = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let user = &users[seq % users.len()];
        seq += 1;
        let event_id = format!("{user}-{phase}-{seq:06}");
        let payload = task_created(user, &event_id);
        let started = Instant::now();
        let mut retried_by = vec![];
        loop {
            let received = Received {
                topic: "task-events",
                payload: payload.as_bytes(),
                id: None,
            };
            let fate = pipeline.handle(received, Attempt::UNCOUNTED).await;
            let c = &fate.handled.verdicts()[0];
            match fate.answer {
                Answer::Done => {
                    assert!(
                        matches!(c.verdict, Verdict::Applied { effects: 1 }),
                        "{event_id}: {:?}",
                        fate.handled
                    );
                    out.push(Delivered {
                        event_id,
                        user: user.clone(),
                        started,
                        ended: Instant::now(),
                        version: c.component.version().to_string(),
                        retried_by,
                    });
                    break;
                }
                Answer::Retry(_) | Answer::Hold(_) => {
                    retried_by.push(c.component.version().to_string());
                    assert!(retried_by.len() < 500, "{event_id} never succeeded");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Answer::Drop(reason) => panic!("{event_id} was dropped: {reason}"),
            }
        }
    }
    out
}

/// The users of every stream of one run.
fn users(run: &str) -> Vec<Vec<String>> {
    (0..STREAMS)
        .map(|s| {
            (0..USERS_PER_STREAM)
                .map(|u| format!("{run}-s{s}-u{u:02}"))
                .collect()
        })
        .collect()
}

/// Streams running until [`Streams::stop`].
struct Streams {
    stop: Arc<AtomicBool>,
    senders: Vec<tokio::task::JoinHandle<Vec<Delivered>>>,
}

impl Streams {
    fn start(pipeline: &Pipeline, users: &[Vec<String>], phase: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let senders = users
            .iter()
            .map(|u| tokio::spawn(stream(pipeline.clone(), u.clone(), phase, stop.clone())))
            .collect();
        Self { stop, senders }
    }

    async fn stop(self) -> Vec<Delivered> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = vec![];
        for s in self.senders {
            all.extend(s.await.expect("a sender panicked"));
        }
        all
    }
}

/// Exactly one audit entry and one exactly-once record per delivered event, each by the
/// version that handled it, and nothing else of the run.
async fn exactly_once(db: &Db, run: &str, all: &[&Delivered]) {
    let (entries, processed) = in_process::audit_records(db, run).await;
    assert_eq!(
        entries.len(),
        all.len(),
        "an audit entry per event, no more"
    );
    assert_eq!(processed.len(), all.len(), "a record per event, no more");
    for d in all {
        assert_eq!(
            entries.get(&d.event_id),
            Some(&vec![d.version.clone()]),
            "{}: exactly one entry, by the version that handled it",
            d.event_id
        );
        assert_eq!(processed[&d.event_id], d.version, "{}", d.event_id);
    }
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shadow_then_canary_then_promote_then_rollback_under_a_steady_stream() {
    let b = builds();
    let rig = rig().await;
    let v1 = rig.serving();
    assert_ne!(v1, V2);
    let run = unique("rollout");
    let users = users(&run);
    let phase_time = Duration::from_millis(1500);

    // --- Shadow ---------------------------------------------------------------------------
    let (status, body) = rig
        .admin(
            reqwest::Method::PUT,
            "/admin/components/audit/candidate",
            // A generous call timeout: a shadow call must start within it, and the shadow
            // threads yield to the serving path, so on a loaded machine a short one would
            // skip many of the calls whose comparison this test checks.
            &[
                ("mode", "shadow"),
                ("call_timeout_ms", "10000"),
                ("by", "test"),
                ("reason", "does v2 write what v1 writes?"),
            ],
            Some(&b.audit_v2),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["candidate"]["version"], V2, "{body}");
    assert_eq!(body["candidate"]["mode"], "shadow", "{body}");
    // A second candidate is refused while this one runs.
    let (status, body) = rig
        .admin(
            reqwest::Method::PUT,
            "/admin/components/audit/candidate",
            &[("mode", "shadow")],
            Some(&b.trapping),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("already has a shadow candidate"),
        "{body}"
    );

    let streams = Streams::start(&rig.pipeline, &users, "shadow");
    tokio::time::sleep(phase_time).await;
    let shadowed = streams.stop().await;
    assert!(shadowed.len() > 50, "a steady stream: {}", shadowed.len());
    for d in &shadowed {
        assert_eq!(d.version, v1, "{}: a shadow serves no one", d.event_id);
        assert!(d.retried_by.is_empty(), "{}: retried", d.event_id);
    }
    let report = rig.shadow_accounted(shadowed.len() as u64).await;
    let counts = &report["counts"];
    // A shadow call that could not start within its deadline (a machine short of CPU: the
    // shadow threads yield to the serving path) is skipped, never retried; every other one
    // differs by the version mark.
    let (different, skipped) = (
        counts["different"].as_u64().unwrap(),
        counts["skipped"].as_u64().unwrap(),
    );
    assert_eq!(
        different + skipped,
        shadowed.len() as u64,
        "every event handled differs by the version mark: {counts}"
    );
    assert!(different > shadowed.len() as u64 / 2, "{counts}");
    assert_eq!(counts["same"], 0, "{counts}");
    assert_eq!(counts["candidate_failed"], 0, "{counts}");
    let samples = report["samples"].as_array().unwrap();
    let reported: HashSet<&str> = samples
        .iter()
        .map(|s| s["event_id"].as_str().unwrap())
        .collect();
    let sent: HashSet<&str> = shadowed.iter().map(|d| d.event_id.as_str()).collect();
    assert_eq!(reported.len(), samples.len(), "each event reported once");
    assert_eq!(reported.len() as u64, different, "every difference kept");
    assert!(
        reported.is_subset(&sent),
        "the reported differences are events the serving version handled"
    );
    let times: Vec<chrono::DateTime<chrono::Utc>> = samples
        .iter()
        .map(|s| s["at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "samples newest first"
    );
    for s in samples {
        let diff = s["diff"].as_array().unwrap();
        assert_eq!(diff.len(), 1, "only the version mark differs: {s}");
        assert_eq!(diff[0]["path"], "[0].append_audit.component_version", "{s}");
        assert_eq!(diff[0]["serving"], v1.as_str(), "{s}");
        assert_eq!(diff[0]["candidate"], V2, "{s}");
        assert_eq!(s["serving_version"], v1.as_str());
        assert_eq!(s["candidate_version"], V2);
    }
    // Nothing of v2 reached the database.
    let refs: Vec<&Delivered> = shadowed.iter().collect();
    exactly_once(&rig.db, &run, &refs).await;
    let metrics = taskhost::metrics::render();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("taskhost_shadow_calls_total")
                && l.contains("outcome=\"different\"")
                && l.contains(V2)),
        "the shadow is counted by version"
    );
    eprintln!(
        "shadow: {} events, {different} differences reported, each at [0].append_audit.component_version, {skipped} skipped",
        shadowed.len(),
    );

    // --- Canary at 25 % ---------------------------------------------------------------------
    let (status, body) = rig
        .admin(
            reqwest::Method::POST,
            "/admin/components/audit/canary",
            &[
                ("percent", "25"),
                ("by", "test"),
                ("reason", "the shadow differs only by the mark"),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["candidate"]["mode"], "canary", "{body}");
    assert_eq!(body["candidate"]["percent"], 25, "{body}");
    let streams = Streams::start(&rig.pipeline, &users, "canary");
    tokio::time::sleep(phase_time).await;
    let canaried = streams.stop().await;
    // The version a user's bucket gives it at 25 %.
    let canary_version = |user: &str| {
        if bucket::takes(user, 25) {
            V2
        } else {
            v1.as_str()
        }
    };
    let mut by_user: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for d in &canaried {
        assert!(d.retried_by.is_empty(), "{}: retried", d.event_id);
        by_user
            .entry(d.user.as_str())
            .or_default()
            .insert(d.version.as_str());
    }
    assert_eq!(by_user.len(), STREAMS * USERS_PER_STREAM, "every user sent");
    let mut on_v2 = 0;
    for (user, versions) in &by_user {
        assert_eq!(versions.len(), 1, "{user} was served by {versions:?}");
        let version = *versions.iter().next().unwrap();
        let expected = canary_version(user);
        assert_eq!(version, expected, "{user}: its bucket says {expected}");
        on_v2 += usize::from(version == V2);
    }
    // 128 users at 25 %: 32 expected, σ ≈ 4.9; ±4.5σ.
    let n = by_user.len() as f64;
    let (mean, sd) = (n * 0.25, (n * 0.25 * 0.75).sqrt());
    let range = (mean - 4.5 * sd)..=(mean + 4.5 * sd);
    assert!(
        range.contains(&(on_v2 as f64)),
        "{on_v2} of {n} users on v2, expected {range:?}"
    );
    eprintln!(
        "canary: {} events, {on_v2} of {n} users on v2 (expected {mean:.0} ± {:.0}), each user on one version",
        canaried.len(),
        4.5 * sd
    );

    // --- Promote, then roll back, both under traffic -----------------------------------------
    let streams = Streams::start(&rig.pipeline, &users, "promote");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (promote_sent, promoted, body) = rig.step("promote", "the canary is clean").await;
    assert_eq!(body["to"]["version"], V2, "{body}");
    assert_eq!(rig.serving(), V2);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (rollback_sent, rolled_back, body) = rig.step("rollback", "back to v1").await;
    assert_eq!(body["to"]["version"], v1.as_str(), "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last = streams.stop().await;
    let (mut after_promote, mut after_rollback) = (0, 0);
    for d in &last {
        assert!(d.retried_by.is_empty(), "{}: retried", d.event_id);
        if d.ended < promote_sent {
            assert_eq!(
                d.version,
                canary_version(&d.user),
                "{}: still the canary",
                d.event_id
            );
        } else if d.started > promoted && d.ended < rollback_sent {
            assert_eq!(d.version, V2, "{}: promoted", d.event_id);
            after_promote += 1;
        } else if d.started > rolled_back {
            assert_eq!(d.version, v1, "{}: rolled back", d.event_id);
            after_rollback += 1;
        }
    }
    assert!(
        after_promote > 10 && after_rollback > 10,
        "{after_promote} / {after_rollback}"
    );

    // --- Nothing lost or doubled, throughout ------------------------------------------------
    let all: Vec<&Delivered> = shadowed.iter().chain(&canaried).chain(&last).collect();
    exactly_once(&rig.db, &run, &all).await;

    // --- The journal: each step, who, why -----------------------------------------------------
    let journal = rig.registry.slot("audit").unwrap().journal();
    let steps: Vec<(&str, &str, Option<&str>)> = journal
        .iter()
        .map(|e| (e.action, e.origin.as_str(), e.reason.as_deref()))
        .collect();
    assert_eq!(
        steps,
        [
            (
                "shadow",
                "admin API (by test)",
                Some("does v2 write what v1 writes?")
            ),
            (
                "canary",
                "admin API (by test)",
                Some("the shadow differs only by the mark")
            ),
            (
                "promote",
                "admin API (by test)",
                Some("the canary is clean")
            ),
            ("rollback", "admin API (by test)", Some("back to v1")),
        ]
    );
    // After the promotion the candidate is gone.
    let (status, _) = rig
        .admin(
            reqwest::Method::GET,
            "/admin/components/audit/shadow",
            &[],
            None,
        )
        .await;
    assert_eq!(status, 404);
    eprintln!(
        "promote/rollback: {} events, {after_promote} on v2 after promote, {after_rollback} on v1 after rollback; {} events in all, one audit entry each",
        last.len(),
        all.len()
    );
    rig.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trapping_shadow_is_counted_as_failed_and_touches_no_delivery() {
    let b = builds();
    let rig = rig().await;
    let v1 = rig.serving();
    let run = unique("trapshadow");
    let users = users(&run);

    // The same stream without a shadow, for the latencies beside it.
    let streams = Streams::start(&rig.pipeline, &users, "alone");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let alone = streams.stop().await;

    let (status, body) = rig
        .admin(
            reqwest::Method::PUT,
            "/admin/components/audit/candidate",
            &[("mode", "shadow"), ("by", "test")],
            Some(&b.trapping),
        )
        .await;
    assert_eq!(status, 200, "the trapping build validates: {body}");
    let deadline = rig
        .pipeline
        .rollouts()
        .candidate("audit")
        .unwrap()
        .version
        .limits
        .call_timeout;
    let streams = Streams::start(&rig.pipeline, &users, "shadow");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let shadowed = streams.stop().await;
    assert!(shadowed.len() > 50, "a steady stream: {}", shadowed.len());
    let report = rig.shadow_accounted(shadowed.len() as u64).await;
    let counts = &report["counts"];
    let (failed, skipped) = (
        counts["candidate_failed"].as_u64().unwrap(),
        counts["skipped"].as_u64().unwrap(),
    );
    // Skipped: could not start within its deadline (the shadow threads yield to the serving
    // path on a busy machine), counted, never retried.
    assert_eq!(failed + skipped, shadowed.len() as u64, "{counts}");
    assert!(failed > 0, "{counts}");
    let samples = report["samples"].as_array().unwrap();
    for s in samples {
        assert_eq!(s["outcome"], "candidate_failed", "{s}");
        // Or, like a skip, its deadline: kept off the CPU past it while starting.
        let error = s["error"].as_str().unwrap();
        assert!(
            error.contains("trapped") || error.starts_with("component call failed: timed out"),
            "the reason names the trap (or the call deadline): {s}"
        );
    }
    assert!(
        samples
            .iter()
            .any(|s| s["error"].as_str().unwrap().contains("trapped")),
        "the reason names the trap: {samples:?}"
    );
    // Slowed beyond its call deadline: slower than the slowest delivery of the same streams
    // without the shadow (what this machine does anyway: a database sync, a busy neighbour)
    // by more than the candidate's call deadline.
    let slowest_alone = alone.iter().map(|d| d.ended - d.started).max().unwrap();
    for d in &shadowed {
        assert_eq!(d.version, v1, "{}", d.event_id);
        assert!(
            d.retried_by.is_empty(),
            "{}: a real delivery was retried",
            d.event_id
        );
        let took = d.ended - d.started;
        assert!(
            took < slowest_alone + deadline,
            "{}: took {took:?}, beyond the slowest delivery without the shadow ({slowest_alone:?}) \
             plus the candidate's call deadline {deadline:?}",
            d.event_id
        );
    }
    // The serving version is untouched: no error, no rollback; the candidate is still there
    // (the serving guard watches the serving version only, and a shadow is no canary).
    assert_eq!(rig.serving(), v1);
    let serving = rig.registry.slot("audit").unwrap().current();
    assert_eq!(serving.stats.snapshot().errors(), 0);
    assert!(rig.pipeline.rollouts().candidate("audit").is_some());
    let all: Vec<&Delivered> = alone.iter().chain(&shadowed).collect();
    exactly_once(&rig.db, &run, &all).await;
    let lat = |v: &[Delivered]| v.iter().map(|d| d.ended - d.started).collect::<Vec<_>>();
    eprintln!(
        "trapping shadow: {} events, {failed} counted failed, {skipped} skipped, none retried; \
         delivery p50/p99/max {:?}/{:?}/{:?} with it, {:?}/{:?}/{slowest_alone:?} without ({} events); \
         call deadline {deadline:?}",
        shadowed.len(),
        percentile(lat(&shadowed), 0.5),
        percentile(lat(&shadowed), 0.99),
        percentile(lat(&shadowed), 1.0),
        percentile(lat(&alone), 0.5),
        percentile(lat(&alone), 0.99),
        alone.len()
    );
    rig.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_canary_is_rolled_back_apart_from_the_serving_version() {
    let b = builds();
    let rig = rig().await;
    let v1 = rig.serving();
    let run = unique("trapcanary");
    let users = users(&run);
    let (status, body) = rig
        .admin(
            reqwest::Method::PUT,
            "/admin/components/audit/candidate",
            &[("mode", "canary"), ("percent", "50"), ("by", "test")],
            Some(&b.trapping),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let streams = Streams::start(&rig.pipeline, &users, "canary");
    let deadline = Instant::now() + Duration::from_secs(20);
    while rig.pipeline.rollouts().candidate("audit").is_some() {
        assert!(
            Instant::now() < deadline,
            "the failing canary was not ended"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = streams.stop().await;
    // Its users' failed events were retried and served by v1; the serving version stayed.
    assert_eq!(rig.serving(), v1);
    let retried: Vec<&Delivered> = delivered
        .iter()
        .filter(|d| !d.retried_by.is_empty())
        .collect();
    assert!(!retried.is_empty(), "the canary served no one");
    for d in &delivered {
        assert_eq!(d.version, v1, "{}", d.event_id);
        assert!(
            d.retried_by.iter().all(|v| v == "0.0.0-traps"),
            "{}: only the canary fails",
            d.event_id
        );
        assert!(
            d.retried_by.is_empty() || bucket::takes(&d.user, 50),
            "{}: only the canary's users were retried",
            d.event_id
        );
    }
    let journal = rig.registry.slot("audit").unwrap().journal();
    let last = journal.last().unwrap();
    assert_eq!(last.action, "canary-auto-rollback");
    assert_eq!(last.origin, "guard");
    assert!(
        last.reason.as_deref().unwrap().contains("failed"),
        "{last:?}"
    );
    let all: Vec<&Delivered> = delivered.iter().collect();
    exactly_once(&rig.db, &run, &all).await;
    eprintln!(
        "failing canary: ended by the guard after {} retried events; {}",
        retried.len(),
        last.reason.as_deref().unwrap()
    );
    rig.shutdown.cancel();
}

/// A query, a body, the status and the words of the reason expected.
type Refusal<'a> = (&'a [(&'a str, &'a str)], &'a [u8], u16, &'a str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_steps_refuse_what_they_cannot_do_with_the_reason() {
    let b = builds();
    let rig = rig().await;
    let put = |query: &'static [(&'static str, &'static str)], body: &'static [u8]| {
        let rig = &rig;
        async move {
            rig.admin(
                reqwest::Method::PUT,
                "/admin/components/audit/candidate",
                query,
                Some(body),
            )
            .await
        }
    };
    let cases: [Refusal; 6] = [
        (&[], &b.audit_v2, 400, "mode must be `shadow` or `canary`"),
        (&[("mode", "canary")], &b.audit_v2, 400, "needs percent"),
        (
            &[("mode", "canary"), ("percent", "0")],
            &b.audit_v2,
            400,
            "1 to 100 percent",
        ),
        (
            &[("mode", "shadow"), ("percent", "5")],
            &b.audit_v2,
            400,
            "a shadow takes no percent",
        ),
        (
            &[("mode", "shadow")],
            &b.audit_v1,
            422,
            "the serving version already",
        ),
        (
            &[("mode", "shadow")],
            b"not a component",
            422,
            "not a valid wasm component",
        ),
    ];
    for (query, body, status, reason) in cases {
        let (got, answer) = put(query, body).await;
        assert_eq!(got, status, "{query:?}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{query:?}: `{reason}` in {error}");
    }
    for (path, method) in [
        ("/admin/components/audit/canary", reqwest::Method::POST),
        ("/admin/components/audit/promote", reqwest::Method::POST),
        ("/admin/components/audit/shadow", reqwest::Method::GET),
    ] {
        let (status, answer) = rig.admin(method, path, &[("percent", "10")], None).await;
        assert!(
            matches!(status, 400 | 404),
            "{path} without a candidate: {status} {answer}"
        );
    }
    let (status, answer) = rig
        .admin(
            reqwest::Method::POST,
            "/admin/components/audit/canary",
            &[("percent", "10")],
            None,
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no shadow or canary of `audit` is running"),
        "{answer}"
    );
    assert!(rig.pipeline.rollouts().candidate("audit").is_none());
    // A refused candidate is in the journal, as a refused swap is.
    let journal = rig.registry.slot("audit").unwrap().journal();
    assert!(journal.iter().any(|e| e.action == "refused"), "{journal:?}");
    rig.shutdown.cancel();
}
