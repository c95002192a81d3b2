//! Group commit: the effects of concurrent deliveries are applied in one database transaction,
//! and each delivery is answered only after that transaction has committed.
//!
//! Why: one transaction (one fsync / one WAL write) per (component, message) caps the Dapr
//! delivery route at what the database can commit one by one; with 64 deliveries in flight,
//! most of them wait for the single SQLite writer or for a pool connection anyway. A committer
//! takes whatever is queued (up to [`MAX_BATCH`]) and commits it together, so the cost of a
//! commit is shared by everything that arrived while the previous one was running — and a lone
//! delivery still commits at once (no timer, no added latency when idle).
//!
//! What stays as before: one job's failing effects fail only that job (the batch is rolled
//! back and its jobs are committed one by one, each answered with its own result); the
//! exactly-once record is inserted in the same transaction as the effects (a duplicate inside
//! or across batches inserts nothing and applies nothing); and no job is answered before the
//! transaction holding its effects has committed.

use crate::domain::Effect;
use crate::effects::{self, Applied, EffectsConfig, Origin};
use crate::storage::{Backend, Db, StorageError, processed};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::Instrument;

/// Most jobs in one transaction: bounds how long one commit holds the writer.
pub const MAX_BATCH: usize = 256;

/// What a job's caller gets: the applied effects, `None` if another delivery of the same
/// (component, event) committed first, or why it failed.
pub type JobResult = Result<Option<Applied>, CommitFailure>;

/// Why a job was not committed, and whether trying again later may succeed (the database was
/// away or busy: the transport then waits without spending one of the message's attempts).
#[derive(Clone, Debug)]
pub struct CommitFailure {
    pub reason: String,
    pub transient: bool,
}

impl CommitFailure {
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// The committers are gone: only during shutdown; another delivery will do it.
    fn stopped(reason: &str) -> Self {
        Self {
            reason: reason.to_string(),
            transient: true,
        }
    }
}

impl From<StorageError> for CommitFailure {
    fn from(e: StorageError) -> Self {
        Self {
            transient: e.is_transient(),
            reason: e.to_string(),
        }
    }
}

impl std::fmt::Display for CommitFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

struct Job {
    data: JobData,
    reply: oneshot::Sender<JobResult>,
}

/// The queue in front of the committers. Cheap to clone; the committers stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Job>,
}

impl GroupCommit {
    /// Starts the committers on the current Tokio runtime: one per two pool connections on
    /// PostgreSQL (batches commit in parallel), two on SQLite (one commits while the next
    /// batch gathers; SQLite has one writer connection anyway).
    pub fn start(db: Db, config: Arc<EffectsConfig>) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        let committers = match db.backend() {
            Backend::Sqlite => 2,
            Backend::Postgres => (db.pool().options().get_max_connections() as usize / 2).max(1),
        };
        for _ in 0..committers {
            tokio::spawn(committer(db.clone(), config.clone(), rx.clone()));
        }
        Self { queue }
    }

    /// Applies `effects` and records (component, event) exactly once, durably, before it
    /// returns.
    pub async fn commit(
        &self,
        origin: Origin<'_>,
        event_id: &str,
        effects: Vec<Effect>,
        now: DateTime<Utc>,
    ) -> JobResult {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            data: JobData {
                component: origin.component.to_string(),
                version: origin.version.to_string(),
                event_id: event_id.to_string(),
                effects,
                now,
                span: tracing::Span::current(),
            },
            reply,
        };
        self.queue
            .send(job)
            .map_err(|_| CommitFailure::stopped("the committer has stopped"))?;
        answer
            .await
            .map_err(|_| CommitFailure::stopped("the committer dropped the job"))?
    }
}

async fn committer(
    db: Db,
    config: Arc<EffectsConfig>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
) {
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(job) => batch.push(job),
                None => return,
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        run_batch(&db, &config, batch).await;
    }
}

async fn run_batch(db: &Db, config: &EffectsConfig, batch: Vec<Job>) {
    let size = batch.len();
    let (replies, jobs): (Vec<_>, Vec<_>) = batch.into_iter().map(|j| (j.reply, j.data)).unzip();
    // Optimistic: the whole batch in one transaction, no savepoints (each would cost two
    // more statements per job). If any job's effects fail, nothing of the batch is kept and
    // each job runs again in a transaction of its own, so the failure stays that job's.
    let started = std::time::Instant::now();
    let together_result = together(db, config, &jobs).await;
    crate::metrics::group_commit(size, started.elapsed().as_secs_f64());
    let results = match together_result {
        Ok(results) => results,
        Err(e) => {
            if size > 1 {
                tracing::debug!(jobs = size, error = %e, "a group commit failed; committing its jobs one by one");
            }
            let mut results = Vec::with_capacity(size);
            for job in &jobs {
                results.push(
                    together(db, config, std::slice::from_ref(job))
                        .await
                        .map(|mut r| r.pop().expect("one result per job"))
                        .map_err(CommitFailure::from),
                );
            }
            results.into_iter().map(|r| r.and_then(|x| x)).collect()
        }
    };
    for (reply, result) in replies.into_iter().zip(results) {
        let _ = reply.send(result);
    }
}

/// What a delivery asks the committers to apply.
struct JobData {
    component: String,
    version: String,
    event_id: String,
    effects: Vec<Effect>,
    now: DateTime<Utc>,
    /// The caller's (component) span: the effects are applied inside it, so their spans and
    /// the trace context of the outbox rows they write stay in the message's own trace, though
    /// a committer task shared by many messages applies them.
    span: tracing::Span,
}

/// Applies `jobs` in one transaction: every job's effects and record, or (on any error)
/// nothing. A job whose record exists already applies nothing and gets `None`.
async fn together(
    db: &Db,
    config: &EffectsConfig,
    jobs: &[JobData],
) -> Result<Vec<JobResult>, StorageError> {
    let mut tx = db.begin().await?;
    // Every job's exactly-once record in one statement; a job whose record existed already
    // (or an earlier job of this batch holds the same pair) applies nothing.
    let records: Vec<processed::Record> = jobs
        .iter()
        .map(|job| processed::Record {
            component: &job.component,
            event_id: &job.event_id,
            version: &job.version,
            now_ms: job.now.timestamp_millis(),
        })
        .collect();
    let inserted = processed::record_many(&mut tx, &records).await?;
    let mut results = Vec::with_capacity(jobs.len());
    let mut deferred = effects::Deferred::default();
    for (job, inserted) in jobs.iter().zip(inserted) {
        if !inserted {
            results.push(Ok(None));
            continue;
        }
        let origin = Origin {
            component: &job.component,
            version: &job.version,
        };
        let applied = effects::apply(
            &mut tx,
            config,
            origin,
            job.effects.clone(),
            job.now,
            &mut deferred,
        )
        .instrument(job.span.clone())
        .await?;
        results.push(Ok(Some(applied)));
    }
    deferred.flush(&mut tx).await?;
    tx.commit().await?;
    Ok(results)
}
