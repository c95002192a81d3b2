//! What the database must hold after a stream of writes ([`super::stream`]) went through the
//! real Dapr stack, checked for the stream's users only (the stack's database is shared with
//! other tests and earlier runs).
//!
//! From the outbox (every event the host published, every reminder that fired) it derives what
//! each component must have done, and compares with what was recorded:
//! - the exactly-once ledger (`processed_messages`) is exactly {consumer} × {event of its topic};
//! - one audit entry per task event, each task's trail in the order of its events;
//! - one next instance per completed occurrence of a series;
//! - at most one reminder message per job, one notification per reminder message, every job due
//!   by now fired, and every pending job held by the Dapr scheduler with its due time (and no job
//!   of a completed task left there);
//! - no dead letter that names one of the users; the outbox delivered.
//!
//! A run long enough for retention to prune (the soak) installs an [`Archive`] first: the rows
//! retention deletes from `outbox` and `processed_messages` are copied aside by a trigger, and the
//! check reads the live table and its archive together, so the host's tables can shrink while the
//! check still sees every event.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row as _;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::stack::Stack;
use super::stream::{Writer, Writes};

/// The consumers of each topic (README, "The consumers"): the host publishes its task events on
/// `task-events`; a fired reminder job becomes a `reminders` message (in embedded mode both are
/// in the outbox). Rows on `__dapr/jobs` are Jobs API calls (Dapr mode), consumed by nobody.
pub const SUBSCRIBERS: [(&str, &[&str]); 2] = [
    (
        "task-events",
        &["recurrence", "notification", "audit", "sync"],
    ),
    ("reminders", &["notification"]),
];
const JOBS_TOPIC: &str = "__dapr/jobs";

/// The figures of one check, printed per case.
#[derive(Debug, Default)]
pub struct Figures {
    pub writes: usize,
    pub unanswered: usize,
    pub events: usize,
    pub ledger: usize,
    pub audit: usize,
    pub completed_series: usize,
    pub next_instances: usize,
    pub reminders_fired: usize,
    pub notifications: usize,
    pub jobs_pending: usize,
    pub job_calls: usize,
    pub dead_letters: usize,
}

/// The stack's database, read for one set of users.
pub struct Ledger {
    pool: PgPool,
    users: Vec<String>,
    /// Read `outbox` and `processed_messages` together with their [`Archive`].
    archived: bool,
}

/// The tables retention prunes, and where their deleted rows are copied by a trigger.
const ARCHIVED: [(&str, &str); 2] = [
    ("outbox", "soak_archive_outbox"),
    ("processed_messages", "soak_archive_processed"),
];

/// A trigger on the stack's database that copies every row deleted from the pruned tables into
/// an archive table, for as long as it is installed. Test instrumentation only: the host knows
/// nothing of it, and its own tables shrink as they would in production.
pub struct Archive {
    pool: PgPool,
}

impl Archive {
    /// Installs the triggers on fresh archive tables (a previous run's are dropped).
    pub async fn install(url: &str) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        let archive = Self { pool };
        archive.remove().await;
        for (table, copy) in ARCHIVED {
            for sql in [
                format!("CREATE TABLE {copy} (LIKE {table})"),
                format!(
                    "CREATE FUNCTION {copy}_keep() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN INSERT INTO {copy} SELECT OLD.*; RETURN OLD; END $$"
                ),
                format!(
                    "CREATE TRIGGER {copy}_keep BEFORE DELETE ON {table} \
                     FOR EACH ROW EXECUTE FUNCTION {copy}_keep()"
                ),
            ] {
                archive.execute(&sql).await;
            }
        }
        archive
    }

    /// Drops the triggers and the archive tables.
    pub async fn remove(&self) {
        for (table, copy) in ARCHIVED {
            self.execute(&format!("DROP TRIGGER IF EXISTS {copy}_keep ON {table}"))
                .await;
            self.execute(&format!("DROP FUNCTION IF EXISTS {copy}_keep()"))
                .await;
            self.execute(&format!("DROP TABLE IF EXISTS {copy}")).await;
        }
    }

    /// Rows copied aside so far, per pruned table.
    pub async fn counts(&self) -> [(&'static str, i64); 2] {
        let mut out = [("", 0); 2];
        for (slot, (table, copy)) in out.iter_mut().zip(ARCHIVED) {
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {copy}")))
                    .fetch_one(&self.pool)
                    .await
                    .unwrap_or_else(|e| panic!("count {copy}: {e}"));
            *slot = (table, n);
        }
        out
    }

    async fn execute(&self, sql: &str) {
        // Table names from ARCHIVED, no input.
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Ledger {
    pub async fn connect(url: &str, users: Vec<String>) -> Self {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        Self {
            pool,
            users,
            archived: false,
        }
    }

    /// Reads the pruned tables together with the rows `archive` copied aside.
    pub fn with_archive(mut self, _archive: &Archive) -> Self {
        self.archived = true;
        self
    }

    /// `sql` with each pruned table read together with its archive when there is one (the
    /// statements are this file's constants and the table names ARCHIVED's: no input).
    fn source(&self, sql: &str) -> sqlx::AssertSqlSafe<String> {
        let mut sql = sql.to_owned();
        if self.archived {
            for (table, copy) in ARCHIVED {
                sql = sql.replace(
                    &format!("FROM {table} "),
                    &format!(
                        "FROM (SELECT * FROM {table} UNION ALL SELECT * FROM {copy}) {table} "
                    ),
                );
            }
        }
        sqlx::AssertSqlSafe(sql)
    }

    async fn rows(&self, sql: &'static str) -> Vec<sqlx::postgres::PgRow> {
        sqlx::query(self.source(sql))
            .bind(&self.users)
            .fetch_all(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query(self.source(sql))
            .bind(&self.users)
            .fetch_one(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get::<Option<i64>, _>(0)
            .unwrap_or(0)
    }

    /// The newest outbox row of the users now: what [`Ledger::wait_recovered`] waits for.
    pub async fn mark(&self) -> i64 {
        self.scalar("SELECT MAX(id) FROM outbox WHERE partition_key = ANY($1)")
            .await
    }

    /// Outbox rows of the users not delivered yet, and the most attempts one of them spent.
    pub async fn pending(&self) -> (i64, i64) {
        let r = &self
            .rows(
                "SELECT COUNT(*), COALESCE(MAX(attempts), 0) FROM outbox \
                 WHERE delivered_at IS NULL AND partition_key = ANY($1)",
            )
            .await[0];
        (r.get(0), r.get(1))
    }

    /// Every outbox row of the users: (id, topic, payload, delivered).
    async fn outbox(&self) -> Vec<(i64, String, Value, bool)> {
        self.rows(
            "SELECT id, topic, payload, delivered_at IS NOT NULL FROM outbox \
             WHERE partition_key = ANY($1) ORDER BY id",
        )
        .await
        .iter()
        .map(|r| {
            let payload: String = r.get(2);
            (
                r.get(0),
                r.get(1),
                serde_json::from_str(&payload).expect("an outbox payload is JSON"),
                r.get(3),
            )
        })
        .collect()
    }

    /// (what `processed_messages` must hold, what it holds) for the users' events up to outbox
    /// id `upto`, and how many of those rows are not delivered yet.
    async fn ledger_sets(
        &self,
        upto: i64,
    ) -> (
        BTreeSet<(String, String)>,
        BTreeSet<(String, String)>,
        usize,
    ) {
        let mut expected = BTreeSet::new();
        let mut ids = Vec::new();
        let mut undelivered = 0;
        for (id, topic, payload, delivered) in self.outbox().await {
            if id > upto {
                continue;
            }
            if !delivered {
                undelivered += 1;
            }
            if topic == JOBS_TOPIC {
                continue;
            }
            let (_, components) = SUBSCRIBERS
                .iter()
                .find(|(t, _)| *t == topic)
                .unwrap_or_else(|| panic!("an outbox message on an unexpected topic {topic}"));
            let event = event_id(&payload);
            for c in *components {
                expected.insert(((*c).to_owned(), event.clone()));
            }
            ids.push(event);
        }
        let processed =
            sqlx::query(self.source(
                "SELECT component, event_id FROM processed_messages WHERE event_id = ANY($1)",
            ))
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
            .expect("read processed_messages")
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
            .collect();
        (expected, processed, undelivered)
    }

    /// Waits until every outbox row of the users up to `mark` is delivered and handled by all
    /// its consumers; returns how long that took.
    pub async fn wait_recovered(&self, mark: i64, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let (expected, processed, undelivered) = self.ledger_sets(mark).await;
            if undelivered == 0 && expected.is_subset(&processed) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < timeout,
                "the backlog up to outbox row {mark} did not drain within {timeout:?}: \
                 {undelivered} rows undelivered, {} of {} ledger entries missing",
                expected.difference(&processed).count(),
                expected.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the reminders due by now have fired, the outbox is delivered and every event
    /// handled by all its consumers; then for the last reminder due within two minutes (its job
    /// may have been scheduled by the last events), and again until everything is handled.
    pub async fn wait_drained(&self, timeout: Duration) -> Duration {
        let started = Instant::now();
        self.wait_settled(started, timeout).await;
        let soon = self
            .scalar(
                "SELECT MAX(due_at) FROM scheduled_jobs WHERE user_id = ANY($1) \
                 AND due_at < (extract(epoch from now()) * 1000)::bigint + 120000",
            )
            .await;
        if soon > 0 {
            let wait = DateTime::from_timestamp_millis(soon).expect("an instant") - Utc::now();
            if let Ok(wait) = wait.to_std() {
                println!("    waiting {wait:.1?} for the last reminder to fall due");
                tokio::time::sleep(wait + Duration::from_secs(1)).await;
            }
        }
        self.wait_settled(started, timeout).await;
        started.elapsed()
    }

    /// No reminder job due by now left unfired, the outbox delivered, the ledger complete.
    async fn wait_settled(&self, started: Instant, timeout: Duration) {
        loop {
            let due = self
                .scalar(
                    "SELECT COUNT(*) FROM scheduled_jobs WHERE user_id = ANY($1) \
                     AND due_at <= (extract(epoch from now()) * 1000)::bigint - 2000",
                )
                .await;
            let (expected, processed, undelivered) = self.ledger_sets(i64::MAX).await;
            if due == 0 && undelivered == 0 && expected == processed {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "not drained within {timeout:?}: {due} reminder jobs due and not fired, \
                 {undelivered} outbox rows undelivered, {} of {} ledger entries missing, {} unexpected",
                expected.difference(&processed).count(),
                expected.len(),
                processed.difference(&expected).count()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The dead letters whose message names one of the users: (id, topic, component, reason).
    pub async fn dead_letters(&self) -> Vec<(i64, String, Option<String>, String)> {
        let mut out = Vec::new();
        for user in &self.users {
            let rows = sqlx::query(
                "SELECT id, topic, component, reason FROM dead_letters WHERE payload LIKE $1",
            )
            .bind(format!("%{user}%"))
            .fetch_all(&self.pool)
            .await
            .expect("read dead_letters");
            out.extend(
                rows.iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))),
            );
        }
        out
    }

    /// The whole check; panics naming the first thing that is wrong, else returns the figures.
    pub async fn check(&self, stack: &Stack, writers: &[Writer]) -> Figures {
        let mut figures = Figures {
            writes: writers.iter().map(|w| w.acked).sum(),
            unanswered: writers.iter().map(|w| w.unanswered).sum(),
            ..Figures::default()
        };
        let messages = self.outbox().await;
        let undelivered = messages.iter().filter(|m| !m.3).count();
        assert_eq!(
            undelivered, 0,
            "the outbox of the stream's users is drained"
        );
        figures.job_calls = messages.iter().filter(|m| m.1 == JOBS_TOPIC).count();

        let tasks: BTreeMap<String, TaskRow> = self
            .rows(
                "SELECT id, title, is_completed, due_date, recurrence IS NOT NULL, occurrence, \
                 series_id FROM tasks WHERE user_id = ANY($1)",
            )
            .await
            .iter()
            .map(|r| {
                let t = TaskRow {
                    id: r.get(0),
                    title: r.get(1),
                    is_completed: r.get::<i64, _>(2) != 0,
                    due_date: r.get(3),
                    recurring: r.get(4),
                    occurrence: r.get(5),
                    series_id: r.get(6),
                };
                (t.id.clone(), t)
            })
            .collect();

        // Acknowledged writes are there.
        for w in writers {
            check_acknowledged(&tasks, &w.writes);
        }

        // The ledger: every event applied once by each of its consumers, nothing else.
        let (expected, processed, _) = self.ledger_sets(i64::MAX).await;
        let missing: Vec<_> = expected.difference(&processed).take(5).collect();
        let extra: Vec<_> = processed.difference(&expected).take(5).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "ledger = expected set: {} missing (e.g. {missing:?}), {} unexpected (e.g. {extra:?})",
            expected.difference(&processed).count(),
            processed.difference(&expected).count()
        );
        figures.ledger = processed.len();

        let events = EventsByTask::of(
            messages
                .iter()
                .map(|(_, topic, payload, _)| (topic, payload)),
        );
        figures.events = events.count;

        let audit: Vec<(String, String, String)> = self
            .rows(
                "SELECT event_id, task_id, operation FROM audit_log WHERE user_id = ANY($1) \
                 ORDER BY id",
            )
            .await
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        check_audit(&audit, &events, &tasks);
        figures.audit = audit.len();

        (figures.completed_series, figures.next_instances) = check_recurrence(&tasks);

        let notifications = count_by_task(
            self.rows("SELECT task_id FROM notifications WHERE user_id = ANY($1)")
                .await
                .iter()
                .map(|r| r.get(0)),
        );
        check_reminders(&events, &notifications);
        figures.reminders_fired = events.reminders_of.values().map(Vec::len).sum();
        figures.notifications = notifications.values().sum();

        // Jobs: none due left unfired; an open task due in days holds its two default jobs
        // (in the host's list and in the Dapr scheduler, due when they should be); a completed
        // task holds none, in either.
        let now_ms = Utc::now().timestamp_millis();
        let mut jobs: BTreeMap<String, BTreeMap<i64, i64>> = BTreeMap::new();
        for r in self
            .rows("SELECT task_id, offset_minutes, due_at FROM scheduled_jobs WHERE user_id = ANY($1)")
            .await
        {
            let due: i64 = r.get(2);
            assert!(due > now_ms - 2000, "a reminder job due at {due} never fired");
            jobs.entry(r.get(0)).or_default().insert(r.get(1), due);
        }
        figures.jobs_pending = jobs.values().map(BTreeMap::len).sum();
        let in_a_day = now_ms + 86_400_000 + 3_600_000;
        for t in tasks.values() {
            let held: BTreeSet<i64> = jobs
                .get(&t.id)
                .map(|j| j.keys().copied().collect())
                .unwrap_or_default();
            let want: BTreeSet<i64> = match t.due_date {
                _ if t.is_completed => BTreeSet::new(),
                Some(due) if due > in_a_day => [60, 1440].into(),
                _ => BTreeSet::new(),
            };
            assert_eq!(held, want, "task {} ({}): reminder jobs", t.id, t.title);
        }
        for (task, offsets) in &jobs {
            for (offset, due) in offsets {
                let name = format!("reminder-{task}-{offset}");
                let job = stack.job(&name).await.unwrap_or_else(|| {
                    panic!("job {name} is in the host's list but not in the Dapr scheduler")
                });
                let dapr_due = job["dueTime"]
                    .as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.timestamp_millis());
                assert_eq!(
                    dapr_due,
                    Some(*due),
                    "job {name} in the Dapr scheduler: {job}"
                );
            }
        }
        for t in tasks.values().filter(|t| t.is_completed) {
            for offset in [60, 1440, 1] {
                let name = format!("reminder-{}-{offset}", t.id);
                assert!(
                    stack.job(&name).await.is_none(),
                    "job {name} of the completed task {} is still in the Dapr scheduler",
                    t.id
                );
            }
        }

        let dead = self.dead_letters().await;
        assert!(dead.is_empty(), "dead letters of the stream: {dead:#?}");
        figures
    }
}

/// A task as the checks read it from the database.
#[derive(Debug)]
pub struct TaskRow {
    pub id: String,
    pub title: String,
    pub is_completed: bool,
    pub due_date: Option<i64>,
    pub recurring: bool,
    pub occurrence: i64,
    pub series_id: Option<String>,
}

/// Every write the writer saw acknowledged is in `tasks`: its creations, its completions, and
/// each title at least as new as the one acknowledged (a later update may have committed
/// without its answer: never an older title).
pub fn check_acknowledged(tasks: &BTreeMap<String, TaskRow>, writes: &Writes) {
    for id in &writes.acked_created {
        assert!(tasks.contains_key(id), "acknowledged task {id} is missing");
    }
    for id in &writes.acked_completed {
        assert!(
            tasks[id].is_completed,
            "acknowledged completion of {id} is missing"
        );
    }
    for (id, title) in &writes.acked_titles {
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

/// The outbox's events, by task: the task events' types in order, the reminder messages'
/// offsets, and the task events' ids. Rows on other topics (Jobs API calls) are passed over.
#[derive(Debug, Default)]
pub struct EventsByTask {
    pub ops_of: BTreeMap<String, Vec<String>>,
    pub reminders_of: BTreeMap<String, Vec<i64>>,
    pub task_event_ids: BTreeSet<String>,
    /// Task events and reminder messages together.
    pub count: usize,
}

impl EventsByTask {
    /// From (topic, payload) in outbox order.
    pub fn of<'a>(messages: impl IntoIterator<Item = (&'a String, &'a Value)>) -> Self {
        let mut events = Self::default();
        for (topic, payload) in messages {
            match topic.as_str() {
                "task-events" => {
                    events.count += 1;
                    events.task_event_ids.insert(event_id(payload));
                    events.ops_of.entry(task_of(payload)).or_default().push(
                        payload["event_type"]
                            .as_str()
                            .expect("event type")
                            .to_owned(),
                    );
                }
                "reminders" => {
                    events.count += 1;
                    events
                        .reminders_of
                        .entry(task_of(payload))
                        .or_default()
                        .push(payload["offset_minutes"].as_i64().unwrap_or(-1));
                }
                _ => {}
            }
        }
        events
    }
}

/// Audit: one entry per task event (`audit` is (event id, task id, operation) in id order),
/// each task's trail in the order of its events; every task created once, completed at most
/// once, and has its events.
pub fn check_audit(
    audit: &[(String, String, String)],
    events: &EventsByTask,
    tasks: &BTreeMap<String, TaskRow>,
) {
    let mut audit_ids = BTreeSet::new();
    let mut audit_ops: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, task, operation) in audit {
        assert!(audit_ids.insert(id.clone()), "two audit entries for {id}");
        audit_ops
            .entry(task.clone())
            .or_default()
            .push(format!("task.{operation}"));
    }
    assert_eq!(
        audit_ids, events.task_event_ids,
        "one audit entry per task event"
    );
    assert_eq!(
        audit_ops, events.ops_of,
        "each task's audit trail follows its events"
    );
    for (id, ops) in &events.ops_of {
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
        events.ops_of.len(),
        tasks.len(),
        "every task has its events in the outbox"
    );
}

/// Recurrence: exactly one next instance per completed occurrence of a series, none otherwise.
/// Returns (completed occurrences, next instances).
pub fn check_recurrence(tasks: &BTreeMap<String, TaskRow>) -> (usize, usize) {
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
    (expected_next.len(), next_count.values().sum())
}

/// How many of `task_ids` name each task.
pub fn count_by_task(task_ids: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    task_ids.into_iter().fold(BTreeMap::new(), |mut m, id| {
        *m.entry(id).or_default() += 1;
        m
    })
}

/// Reminders: at most one message per job, one notification per message (`notifications`:
/// how many each task got), and at least one reminder fell due.
pub fn check_reminders(events: &EventsByTask, notifications: &BTreeMap<String, usize>) {
    for (id, offsets) in &events.reminders_of {
        let distinct: BTreeSet<&i64> = offsets.iter().collect();
        assert_eq!(
            distinct.len(),
            offsets.len(),
            "task {id}: reminder messages {offsets:?}"
        );
    }
    let per_task: BTreeMap<String, usize> = events
        .reminders_of
        .iter()
        .map(|(id, o)| (id.clone(), o.len()))
        .collect();
    assert_eq!(
        *notifications, per_task,
        "one notification per reminder message"
    );
    assert!(
        per_task.values().sum::<usize>() > 0,
        "no reminder fell due during the run: it must exercise the scheduler"
    );
}

pub fn event_id(payload: &Value) -> String {
    payload["event_id"]
        .as_str()
        .unwrap_or_else(|| panic!("an outbox message without event_id: {payload}"))
        .to_owned()
}

fn task_of(payload: &Value) -> String {
    payload["task"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("an outbox message without task.id: {payload}"))
        .to_owned()
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} writes acknowledged ({} attempts unanswered, sent again); {} events → ledger {} \
             entries = expected; {} audit entries (one per task event); {} completed series → {} \
             next instances; {} reminders fired → {} notifications; {} jobs pending, all in the \
             Dapr scheduler; {} Jobs API calls; {} dead letters; outbox drained",
            self.writes,
            self.unanswered,
            self.events,
            self.ledger,
            self.audit,
            self.completed_series,
            self.next_instances,
            self.reminders_fired,
            self.notifications,
            self.jobs_pending,
            self.job_calls,
            self.dead_letters
        )
    }
}

impl Ledger {
    /// How many of the users' reminder jobs were due between two instants (ms) and had not
    /// fired by now (they are still in the host's list).
    pub async fn jobs_due_between(&self, from_ms: i64, to_ms: i64) -> i64 {
        sqlx::query(
            "SELECT COUNT(*) FROM scheduled_jobs WHERE user_id = ANY($1) AND due_at > $2 AND due_at <= $3",
        )
        .bind(&self.users)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(&self.pool)
        .await
        .expect("count due jobs")
        .get(0)
    }

    /// Waits until no job of the users due by `before_ms` is left unfired; returns how long.
    pub async fn wait_jobs_fired(&self, before_ms: i64, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let left: i64 = sqlx::query(
                "SELECT COUNT(*) FROM scheduled_jobs WHERE user_id = ANY($1) AND due_at <= $2",
            )
            .bind(&self.users)
            .bind(before_ms)
            .fetch_one(&self.pool)
            .await
            .expect("count due jobs")
            .get(0);
            if left == 0 {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < timeout,
                "{left} reminder jobs due by {before_ms} had not fired {timeout:?} after the scheduler came back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
