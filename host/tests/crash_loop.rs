//! The crash loop: the host is SIGKILLed at random points, again and again, while a few
//! thousand task writes from several users flow in over HTTP, and restarted each time on the
//! same database. Afterwards every event has been applied exactly once by every component.
//!
//! The random points come from a seeded RNG whose seed the test prints; set
//! `TASKHOST_CRASH_SEED=<seed>` to replay a run (the kill points are the same; the timing of
//! the host, and with it what each kill interrupts, is not). `TASKHOST_CRASH_WRITES` and
//! `TASKHOST_CRASH_KILLS` change the size of the run.
//!
//! The clients behave like real ones: a write whose answer was lost to a kill is sent again to
//! the next host. That write may or may not have happened the first time (a create may then
//! exist twice, a completion answers 409), so the checks count what the database holds and
//! derive from it what every component must have done, rather than assuming.
//!
//! What is checked, once the last host has drained:
//! - every write acknowledged with 2xx before a kill is there;
//! - the outbox is fully delivered, and nothing is dead-lettered;
//! - `processed_messages` is exactly {every component subscribed to a topic} × {every event of
//!   that topic in the outbox}: nothing missed, nothing extra;
//! - one audit entry per task event, and each task's trail matches what happened to it;
//! - exactly one next instance per completed recurring task;
//! - one reminder message per reminder job at most, one notification per reminder message,
//!   and every open task with a future due date holds exactly its reminder jobs.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row as _;
use support::ledger::{
    EventsByTask, SUBSCRIBERS, TaskRow, check_acknowledged, check_audit, check_recurrence,
    check_reminders, count_by_task, event_id,
};
use support::stream::{Kind, Profile, Writes};
use support::{Api, HostOptions, TestEnv, User, env_number, wait_until};
use taskhost::storage::Db;

const ADMIN_TOKEN: &str = "crash-loop-test-admin-token";
const USERS: usize = 4;
const DEFAULT_WRITES: usize = 2400;
const DEFAULT_KILLS: usize = 16;
/// Generous: a loaded CI machine, a debug build, PostgreSQL.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(240);

/// The crash loop's mix of writes: more plain and recurring tasks than the stream's, one in ten
/// a reminder that falls due during the run (due in 75–120 s, reminded 1 minute before), no
/// bound on open tasks, and a 503 is an unexpected answer (the host is started before writes).
fn profile() -> Profile {
    use Kind::*;
    Profile {
        kinds: [
            Plain, Plain, Plain, Plain, Recurring, Recurring, Recurring, RemindSoon, Undated,
            Undated,
        ],
        remind_soon_secs: 75..120,
        max_open: usize::MAX,
        retry_unavailable: false,
    }
}

/// One client: its writes (support's, with the crash loop's mix) and how many are left.
struct Client {
    writes: Writes,
    writes_left: usize,
    /// Writes sent again because a kill cut their answer.
    resent: usize,
}

impl Client {
    /// Writes until the host dies under it (`Err`) or `stop` is set or its writes run out.
    async fn run(mut self, api: Api, stop: Arc<AtomicBool>, acked: Arc<AtomicUsize>) -> Self {
        while !stop.load(Ordering::Relaxed) {
            let op = match self.writes.pending().cloned() {
                Some(op) => {
                    self.resent += 1;
                    op
                }
                None if self.writes_left == 0 => break,
                None => {
                    self.writes_left -= 1;
                    self.writes.fresh_op()
                }
            };
            if self.writes.attempt(&api, op).await.is_err() {
                // The host is gone: the write goes to the next one.
                break;
            }
            acked.fetch_add(1, Ordering::Relaxed);
        }
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_sigkills_lose_and_double_nothing() {
    let seed = env_number("TASKHOST_CRASH_SEED", fastrand::u64(..));
    let writes = env_number("TASKHOST_CRASH_WRITES", DEFAULT_WRITES as u64) as usize;
    let kills = env_number("TASKHOST_CRASH_KILLS", DEFAULT_KILLS as u64) as usize;
    eprintln!(
        "crash_loop: seed {seed} ({writes} writes, {kills} kills); replay with TASKHOST_CRASH_SEED={seed}"
    );
    let mut rng = fastrand::Rng::with_seed(seed);

    let mut env = TestEnv::new();
    let options = HostOptions::new()
        .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN)
        // Short backoff: a delivery cut by a kill is retried soon after the restart.
        .env("TASKHOST_RETRY_BACKOFF_MS", "50");
    let mut clients = Vec::new();
    for i in 0..USERS {
        clients.push(Client {
            writes: Writes::new(
                User::new().await,
                seed.wrapping_add(i as u64 + 1),
                profile(),
            ),
            writes_left: writes / USERS,
            resent: 0,
        });
    }

    // The kills. Each round: start the host, let the clients write until a random number of
    // writes is acknowledged (and a random few milliseconds more, so a kill lands anywhere:
    // mid-request, mid-relay, mid-commit), then SIGKILL it. Once the writes are done, the
    // remaining kills hit the host while it drains.
    let per_round = writes / kills.max(1);
    for round in 1..=kills {
        let writing = clients
            .iter()
            .any(|c| c.writes_left > 0 || c.writes.pending().is_some());
        let host = env.start_with(&options).await;
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = clients
            .drain(..)
            .map(|c| {
                let api = host.api(&c.writes.user);
                tokio::spawn(c.run(api, stop.clone(), acked.clone()))
            })
            .collect();
        let target = rng.usize(per_round / 3..=per_round * 5 / 3 + 1);
        // While writes flow, a few milliseconds past the count; once they are all done,
        // anywhere in the drain that follows the restart.
        let extra_ms = if writing {
            rng.u64(0..60)
        } else {
            rng.u64(0..1500)
        };
        let idle = wait_until(
            &format!("round {round}: {target} acknowledged writes"),
            DRAIN_TIMEOUT,
            async || {
                let n = acked.load(Ordering::Relaxed);
                if n >= target || workers.iter().all(|w| w.is_finished()) {
                    Ok(n)
                } else {
                    Err(format!("{n} acknowledged"))
                }
            },
        )
        .await;
        tokio::time::sleep(Duration::from_millis(extra_ms)).await;
        host.kill().await;
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            clients.push(w.await.expect("a client task"));
        }
        let left: usize = clients.iter().map(|c| c.writes_left).sum();
        eprintln!(
            "crash_loop: round {round}: killed after {idle} acknowledged writes (+{extra_ms} ms); {left} writes left"
        );
    }

    // The last host: the clients finish (sending again what a kill cut), then it drains.
    let host = env.start_with(&options).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = clients
        .drain(..)
        .map(|c| {
            let api = host.api(&c.writes.user);
            tokio::spawn(c.run(api, stop.clone(), acked.clone()))
        })
        .collect();
    for w in workers {
        let c = w.await.expect("a client task");
        assert!(
            c.writes.pending().is_none() && c.writes_left == 0,
            "{}: the last host must take every write (pending {:?})",
            c.writes.user.id,
            c.writes.pending()
        );
        clients.push(c);
    }
    let db = Db::connect(env.database_url(), 8)
        .await
        .expect("connect to the test database");

    // Drain; then wait for the reminders that fall due during the run (all scheduled by now),
    // and drain again.
    drained(&db, Utc::now().timestamp_millis()).await;
    let soon_due = scalar(
        &db,
        "SELECT COALESCE(MAX(due_at), 0) FROM scheduled_jobs WHERE offset_minutes = 1",
    )
    .await;
    let wait = DateTime::from_timestamp_millis(soon_due).expect("an instant") - Utc::now();
    if let Ok(wait) = wait.to_std() {
        eprintln!("crash_loop: waiting {wait:?} for the last reminder to fall due");
        tokio::time::sleep(wait).await;
    }
    drained(&db, Utc::now().timestamp_millis()).await;

    check_everything(&db, &clients).await;
    // Nothing applied late or twice afterwards.
    tokio::time::sleep(Duration::from_secs(2)).await;
    check_everything(&db, &clients).await;

    let dead: Vec<Value> = host
        .api_with_authorization(Some(&format!("Bearer {ADMIN_TOKEN}")))
        .get("/admin/dead-letters")
        .await
        .expect(200)
        .json();
    assert!(
        dead.is_empty(),
        "the kills dead-lettered messages: {dead:#?}"
    );
    let acked: usize = clients
        .iter()
        .map(|c| {
            let w = &c.writes;
            w.acked_created.len() + w.acked_completed.len() + w.acked_titles.len()
        })
        .sum();
    let events = scalar(&db, "SELECT COUNT(*) FROM outbox").await;
    let resent: usize = clients.iter().map(|c| c.resent).sum();
    eprintln!(
        "crash_loop: seed {seed}: {kills} kills, {events} events, {acked} acknowledgements checked, {resent} writes sent again after a kill"
    );
}

/// Waits until the outbox is delivered, every reminder job due at `now_ms` has fired, and
/// every event has been processed by every component subscribed to its topic.
async fn drained(db: &Db, now_ms: i64) {
    wait_until(
        "the outbox delivered, the due reminders fired and every event processed",
        DRAIN_TIMEOUT,
        async || {
            let pending =
                scalar(db, "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").await;
            let due = scalar_with(
                db,
                "SELECT COUNT(*) FROM scheduled_jobs WHERE due_at <= $1",
                now_ms,
            )
            .await;
            let (expected, processed) = processed_sets(db).await;
            if pending == 0 && due == 0 && expected == processed {
                Ok(())
            } else {
                let missing: Vec<_> = expected.difference(&processed).collect();
                let unexpected: Vec<_> = processed.difference(&expected).collect();
                Err(format!(
                    "{pending} outbox rows pending, {due} due reminder jobs, {} processed records, \
                     {} expected, {} missing (first: {:?}), {} unexpected (first: {:?})",
                    processed.len(),
                    expected.len(),
                    missing.len(),
                    &missing[..missing.len().min(3)],
                    unexpected.len(),
                    &unexpected[..unexpected.len().min(3)],
                ))
            }
        },
    )
    .await;
}

async fn scalar(db: &Db, sql: &'static str) -> i64 {
    let mut c = db.pool().acquire().await.expect("a connection");
    sqlx::query(sql)
        .fetch_one(&mut *c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get::<i64, _>(0)
}

async fn scalar_with(db: &Db, sql: &'static str, arg: i64) -> i64 {
    let mut c = db.pool().acquire().await.expect("a connection");
    sqlx::query(sql)
        .bind(arg)
        .fetch_one(&mut *c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get::<i64, _>(0)
}

/// Every outbox message: (topic, payload).
async fn outbox(db: &Db) -> Vec<(String, Value)> {
    let mut c = db.pool().acquire().await.expect("a connection");
    sqlx::query("SELECT topic, payload FROM outbox ORDER BY id")
        .fetch_all(&mut *c)
        .await
        .expect("read the outbox")
        .iter()
        .map(|r| {
            let payload: String = r.get(1);
            (
                r.get::<String, _>(0),
                serde_json::from_str(&payload).expect("an outbox payload is JSON"),
            )
        })
        .collect()
}

/// (what `processed_messages` must hold, what it holds) as (component, event id) sets.
async fn processed_sets(db: &Db) -> (BTreeSet<(String, String)>, BTreeSet<(String, String)>) {
    let mut expected = BTreeSet::new();
    for (topic, payload) in outbox(db).await {
        let (_, components) = SUBSCRIBERS
            .iter()
            .find(|(t, _)| *t == topic)
            .unwrap_or_else(|| panic!("an outbox message on an unexpected topic {topic}"));
        let id = event_id(&payload);
        for c in *components {
            expected.insert(((*c).to_owned(), id.clone()));
        }
    }
    let mut c = db.pool().acquire().await.expect("a connection");
    let processed = sqlx::query("SELECT component, event_id FROM processed_messages")
        .fetch_all(&mut *c)
        .await
        .expect("read processed_messages")
        .iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect();
    (expected, processed)
}

/// The whole exactly-once check over what the database holds.
async fn check_everything(db: &Db, clients: &[Client]) {
    // Read first: a SQLite pool has one connection, held below.
    let messages = outbox(db).await;
    let mut c = db.pool().acquire().await.expect("a connection");
    let tasks: BTreeMap<String, TaskRow> = sqlx::query(
        "SELECT id, title, is_completed, due_date, recurrence, occurrence, series_id FROM tasks",
    )
    .fetch_all(&mut *c)
    .await
    .expect("read tasks")
    .iter()
    .map(|r| {
        let t = TaskRow {
            id: r.get(0),
            title: r.get(1),
            is_completed: r.get::<i64, _>(2) != 0,
            due_date: r.get(3),
            recurring: r.get::<Option<String>, _>(4).is_some(),
            occurrence: r.get(5),
            series_id: r.get(6),
        };
        (t.id.clone(), t)
    })
    .collect();

    // Acknowledged writes survived every kill.
    for client in clients {
        check_acknowledged(&tasks, &client.writes);
    }

    // The events by task; audit, recurrence and reminders checked against them.
    let events = EventsByTask::of(messages.iter().map(|(topic, payload)| (topic, payload)));
    let audit: Vec<(String, String, String)> =
        sqlx::query("SELECT event_id, task_id, operation FROM audit_log ORDER BY id")
            .fetch_all(&mut *c)
            .await
            .expect("read audit_log")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    check_audit(&audit, &events, &tasks);
    check_recurrence(&tasks);
    let notifications = count_by_task(
        sqlx::query("SELECT task_id FROM notifications")
            .fetch_all(&mut *c)
            .await
            .expect("read notifications")
            .iter()
            .map(|r| r.get(0)),
    );
    check_reminders(&events, &notifications);

    // Reminder jobs: an open task due in days holds the default two, a completed or undated
    // task none. (A task due within the day only had the one that fell due: checked above.)
    let mut jobs: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for r in sqlx::query("SELECT task_id, offset_minutes FROM scheduled_jobs")
        .fetch_all(&mut *c)
        .await
        .expect("read scheduled_jobs")
    {
        jobs.entry(r.get(0)).or_default().insert(r.get(1));
    }
    let in_a_day = Utc::now().timestamp_millis() + 86_400_000 + 3_600_000;
    for t in tasks.values() {
        let held = jobs.remove(&t.id).unwrap_or_default();
        let want: BTreeSet<i64> = match t.due_date {
            _ if t.is_completed => BTreeSet::new(),
            None => BTreeSet::new(),
            Some(due) if due > in_a_day => [60, 1440].into(),
            Some(_) => BTreeSet::new(),
        };
        assert_eq!(held, want, "task {} ({}): reminder jobs", t.id, t.title);
    }
    assert!(
        jobs.is_empty(),
        "reminder jobs of tasks that do not exist: {jobs:?}"
    );
}
