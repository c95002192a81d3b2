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
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row as _;
use support::{Api, HostOptions, TestEnv, User, wait_until};
use taskhost::storage::Db;

const ADMIN_TOKEN: &str = "crash-loop-test-admin-token";
const USERS: usize = 4;
const DEFAULT_WRITES: usize = 2400;
const DEFAULT_KILLS: usize = 16;
/// Generous: a loaded CI machine, a debug build, PostgreSQL.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(240);

/// The components and the topics they subscribe to (README, "The consumers"). Embedded mode
/// puts `task-events` and `reminders` in the outbox.
const SUBSCRIBERS: [(&str, &[&str]); 2] = [
    (
        "task-events",
        &["recurrence", "notification", "audit", "sync"],
    ),
    ("reminders", &["notification"]),
];

fn env_number(key: &str, default: u64) -> u64 {
    match std::env::var(key) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{key}={v:?} is not a number: {e}")),
        _ => default,
    }
}

/// What kind of task a create makes.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Due in a few days, default reminders (24 h and 1 h before).
    Plain,
    /// A daily series due in a few days.
    Recurring,
    /// A reminder that falls due during the run: due in about a minute, reminded 1 minute before.
    RemindSoon,
    /// No due date, no reminders.
    Undated,
}

#[derive(Clone, Debug)]
enum Op {
    Create { title: String, kind: Kind },
    Update { id: String, title: String },
    Complete { id: String },
}

/// One client: its own RNG, the tasks it knows, and what the host acknowledged.
struct Client {
    user: User,
    rng: fastrand::Rng,
    /// Tasks this client created and has not completed (as far as it knows).
    open: Vec<String>,
    /// The write whose answer was lost to a kill, sent again to the next host.
    pending: Option<Op>,
    /// Whether `pending` was sent at least once (so a 409 on a completion means it happened).
    pending_sent: bool,
    acked_created: Vec<String>,
    acked_completed: Vec<String>,
    /// The last acknowledged title of each task (titles carry a version number).
    acked_titles: BTreeMap<String, String>,
    writes_left: usize,
    seq: usize,
    /// Writes sent again because a kill cut their answer.
    resent: usize,
}

impl Client {
    fn next_op(&mut self) -> Op {
        self.seq += 1;
        let roll = self.rng.u32(0..100);
        if self.open.len() < 3 || roll < 45 {
            let kind = match self.rng.u32(0..10) {
                0..=3 => Kind::Plain,
                4..=6 => Kind::Recurring,
                7 => Kind::RemindSoon,
                _ => Kind::Undated,
            };
            return Op::Create {
                title: format!("{} task {} v0", self.user.id, self.seq),
                kind,
            };
        }
        let index = self.rng.usize(0..self.open.len());
        let id = self.open[index].clone();
        if roll < 65 {
            Op::Update {
                title: format!("{} task {} v{}", self.user.id, self.seq, self.seq),
                id,
            }
        } else {
            self.open.swap_remove(index);
            Op::Complete { id }
        }
    }

    /// Sends `op`; `Err` when the host gave no answer (it was killed).
    async fn send(&mut self, api: &Api, op: &Op) -> Result<(), String> {
        let now = Utc::now();
        let reply = match op {
            Op::Create { title, kind } => {
                let body = match kind {
                    Kind::Plain => {
                        json!({"title": title, "due_date": at(now + chrono::Duration::days(3))})
                    }
                    Kind::Recurring => json!({"title": title,
                        "due_date": at(now + chrono::Duration::days(2)),
                        "is_recurring": true, "recurrence_frequency": "daily"}),
                    Kind::RemindSoon => json!({"title": title,
                        "due_date": at(now + chrono::Duration::seconds(self.rng.i64(75..120))),
                        "reminder_offsets_minutes": [1]}),
                    Kind::Undated => json!({"title": title}),
                };
                api.try_send(Method::POST, "/api/tasks", Some(&body))
                    .await?
            }
            Op::Update { id, title } => {
                api.try_send(
                    Method::PATCH,
                    &format!("/api/tasks/{id}"),
                    Some(&json!({"title": title})),
                )
                .await?
            }
            Op::Complete { id } => {
                api.try_send(Method::POST, &format!("/api/tasks/{id}/complete"), None)
                    .await?
            }
        };
        let status = reply.status.as_u16();
        match op {
            Op::Create { title, .. } if status == 201 => {
                let id = reply.value()["id"].as_str().expect("a task id").to_owned();
                self.acked_created.push(id.clone());
                self.acked_titles.insert(id.clone(), title.clone());
                self.open.push(id);
            }
            Op::Update { id, title } if status == 200 => {
                self.acked_titles.insert(id.clone(), title.clone());
            }
            // A completion sent again whose first attempt had committed.
            Op::Complete { id } if status == 200 || (status == 409 && self.pending_sent) => {
                self.acked_completed.push(id.clone());
            }
            _ => panic!(
                "{} as {}: unexpected answer {status}: {}",
                reply.request, self.user.id, reply.text
            ),
        }
        Ok(())
    }

    /// Writes until the host dies under it (`Err`) or `stop` is set or its writes run out.
    async fn run(mut self, api: Api, stop: Arc<AtomicBool>, acked: Arc<AtomicUsize>) -> Self {
        while !stop.load(Ordering::Relaxed) {
            let op = match self.pending.clone() {
                Some(op) => {
                    self.resent += 1;
                    op
                }
                None if self.writes_left == 0 => break,
                None => {
                    self.writes_left -= 1;
                    self.pending_sent = false;
                    self.next_op()
                }
            };
            self.pending = Some(op.clone());
            let sent = self.send(&api, &op).await;
            self.pending_sent = true;
            if sent.is_err() {
                // The host is gone: the write goes to the next one.
                break;
            }
            self.pending = None;
            acked.fetch_add(1, Ordering::Relaxed);
        }
        self
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
            user: User::new().await,
            rng: fastrand::Rng::with_seed(seed.wrapping_add(i as u64 + 1)),
            open: Vec::new(),
            pending: None,
            pending_sent: false,
            acked_created: Vec::new(),
            acked_completed: Vec::new(),
            acked_titles: BTreeMap::new(),
            writes_left: writes / USERS,
            seq: 0,
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
            .any(|c| c.writes_left > 0 || c.pending.is_some());
        let host = env.start_with(&options).await;
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = clients
            .drain(..)
            .map(|c| {
                let api = host.api(&c.user);
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
            let api = host.api(&c.user);
            tokio::spawn(c.run(api, stop.clone(), acked.clone()))
        })
        .collect();
    for w in workers {
        let c = w.await.expect("a client task");
        assert!(
            c.pending.is_none() && c.writes_left == 0,
            "{}: the last host must take every write (pending {:?})",
            c.user.id,
            c.pending
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
        .map(|c| c.acked_created.len() + c.acked_completed.len() + c.acked_titles.len())
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
            let pending = scalar(db, "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL").await;
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
                Err(format!(
                    "{pending} outbox rows pending, {due} due reminder jobs, {} processed records, {} expected, {} unexpected",
                    processed.len(),
                    expected.len(),
                    processed.difference(&expected).count()
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

fn event_id(payload: &Value) -> String {
    payload["event_id"]
        .as_str()
        .unwrap_or_else(|| panic!("an outbox message without event_id: {payload}"))
        .to_owned()
}

#[derive(Debug)]
struct TaskRow {
    id: String,
    title: String,
    is_completed: bool,
    due_date: Option<i64>,
    recurring: bool,
    occurrence: i64,
    series_id: Option<String>,
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
        for id in &client.acked_created {
            assert!(tasks.contains_key(id), "acknowledged task {id} is missing");
        }
        for id in &client.acked_completed {
            assert!(
                tasks[id].is_completed,
                "acknowledged completion of {id} is missing"
            );
        }
        for (id, title) in &client.acked_titles {
            // A later update may have committed without its answer: never an older title.
            let version = |t: &str| -> u64 {
                t.rsplit_once(" v")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or_else(|| panic!("a title with a version: {t:?}"))
            };
            assert!(
                version(&tasks[id].title) >= version(title),
                "task {id}: acknowledged title {title:?}, found {:?}",
                tasks[id].title
            );
        }
    }

    // The events, by task.
    let mut ops_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut reminders_of: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (topic, payload) in &messages {
        let task_id = payload["task"]["id"]
            .as_str()
            .expect("a task id")
            .to_owned();
        match topic.as_str() {
            "task-events" => ops_of.entry(task_id).or_default().push(
                payload["event_type"]
                    .as_str()
                    .expect("an event type")
                    .to_owned(),
            ),
            _ => reminders_of
                .entry(task_id)
                .or_default()
                .push(payload["offset_minutes"].as_i64().unwrap_or(-1)),
        }
    }

    // Audit: exactly one entry per task event, the same operations in the same order.
    let audit = sqlx::query("SELECT event_id, task_id, operation FROM audit_log ORDER BY id")
        .fetch_all(&mut *c)
        .await
        .expect("read audit_log");
    let mut audit_ids = BTreeSet::new();
    let mut audit_ops: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &audit {
        let id: String = r.get(0);
        assert!(audit_ids.insert(id.clone()), "two audit entries for {id}");
        audit_ops
            .entry(r.get(1))
            .or_default()
            .push(format!("task.{}", r.get::<String, _>(2)));
    }
    let task_event_ids: BTreeSet<String> = messages
        .iter()
        .filter(|(t, _)| t == "task-events")
        .map(|(_, p)| event_id(p))
        .collect();
    assert_eq!(audit_ids, task_event_ids, "one audit entry per task event");
    assert_eq!(
        audit_ops, ops_of,
        "each task's audit trail follows its events"
    );
    for (id, ops) in &ops_of {
        let created = ops.iter().filter(|o| *o == "task.created").count();
        let completed = ops.iter().filter(|o| *o == "task.completed").count();
        assert!(
            created == 1 && completed <= 1 && ops[0] == "task.created",
            "task {id}: events {ops:?}"
        );
        let task = tasks
            .get(id)
            .unwrap_or_else(|| panic!("an event of a missing task {id}"));
        assert_eq!(
            task.is_completed,
            completed == 1,
            "task {id}: events {ops:?}"
        );
    }
    assert_eq!(
        ops_of.len(),
        tasks.len(),
        "every task has its events in the outbox"
    );

    // Recurrence: exactly one next instance per completed recurring task, and none otherwise.
    let mut next_count: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for t in tasks.values().filter(|t| t.occurrence > 1) {
        let series = t.series_id.clone().expect("a next instance has a series");
        *next_count.entry((series, t.occurrence - 1)).or_default() += 1;
    }
    let mut expected_next = BTreeMap::new();
    for t in tasks.values().filter(|t| t.recurring && t.is_completed) {
        let series = t.series_id.clone().unwrap_or_else(|| t.id.clone());
        expected_next.insert((series, t.occurrence), 1);
    }
    assert_eq!(
        next_count, expected_next,
        "one next instance per completed recurring task ((series, occurrence completed) → instances)"
    );

    // Reminders: at most one message per job, one notification per message.
    for (id, offsets) in &reminders_of {
        let distinct: BTreeSet<&i64> = offsets.iter().collect();
        assert_eq!(
            distinct.len(),
            offsets.len(),
            "task {id}: reminder messages {offsets:?}"
        );
    }
    let reminder_messages: usize = reminders_of.values().map(Vec::len).sum();
    let notifications: BTreeMap<String, usize> = sqlx::query("SELECT task_id FROM notifications")
        .fetch_all(&mut *c)
        .await
        .expect("read notifications")
        .iter()
        .fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r.get::<String, _>(0)).or_default() += 1;
            m
        });
    let per_task: BTreeMap<String, usize> = reminders_of
        .iter()
        .map(|(id, o)| (id.clone(), o.len()))
        .collect();
    assert_eq!(
        notifications, per_task,
        "one notification per reminder message"
    );
    assert!(
        reminder_messages > 0,
        "no reminder fell due during the run: the test must exercise the scheduler"
    );

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
