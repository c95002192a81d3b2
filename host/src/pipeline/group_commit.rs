//! Where the exactly-once record is written: with the effects it guards, in one transaction,
//! shared with concurrent messages (group commit); each message is answered only after that
//! transaction has committed.
//!
//! Why batch: one transaction (one fsync / one WAL write) per (component, message) caps every
//! route at what the database can commit one by one. A committer takes whatever is queued (up
//! to [`MAX_BATCH`] components' worth) and commits it together, so the cost of a commit is
//! shared by everything that arrived while the previous one ran — and a lone message still
//! commits at once (no timer, no added latency when idle).
//!
//! What holds: the record of (component, event id) is inserted in the same transaction as that
//! component's effects, and an existing record (an earlier delivery, or an earlier part of the
//! same batch) means nothing is applied — the insert decides, there is no separate look
//! beforehand; one component's failing effects fail only that component (the batch is rolled
//! back and its parts committed one by one, each answered with its own result); and nothing is
//! answered before the transaction holding it has committed.
//!
//! How the insert decides cheaply: a batch is first committed on the bet that none of its
//! records existed (a plain insert whose row count is checked); a batch holding a redelivery
//! loses the bet, is rolled back and runs again with an insert that names each row it added
//! (`RETURNING`). On the Dapr route that bet spared ~70 rows sent back per commit, each a
//! hand-off from SQLite's thread, while the one writer is the bottleneck.

use super::handler::Handler;
use crate::domain::Effect;
use crate::effects::{self, Applied, EffectsConfig, Origin};
use crate::storage::{Backend, Db, StorageError, half_the_pool, processed};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::Instrument;

/// Most components' effects in one transaction: bounds how long one commit holds the writer.
/// A committer adds queued items to its batch while the batch is smaller than this and takes
/// each item whole (one message's parts, or a wave's share of at most this many: `send`), so a
/// batch stays under twice this.
pub const MAX_BATCH: usize = 256;

/// One component's share of a message (or the host's, `in_host.rs`): its effects, to apply
/// exactly once.
pub(super) struct Part {
    pub component: Handler,
    pub effects: Vec<Effect>,
    /// The component's span: its effects are applied inside it, so their spans and the trace
    /// context of the outbox rows they write stay in the message's trace, though a committer
    /// shared by many messages applies them.
    pub span: tracing::Span,
}

/// What became of a part: its applied effects, `None` if the (component, event) pair was
/// recorded already (nothing applied), or why it failed.
pub(super) type PartResult = Result<Option<Applied>, StorageError>;

/// One message's parts, queued for a committer.
pub(super) struct Job {
    event_id: String,
    now: DateTime<Utc>,
    parts: Vec<Part>,
    reply: oneshot::Sender<Vec<PartResult>>,
}

/// The queue in front of the committers. Cheap to clone; the committers stop when the last
/// clone is dropped.
///
/// An item of the queue is one message's job, or a wave's jobs (`wave.rs`): a committer takes
/// an item whole, so the messages of a wave share a transaction.
#[derive(Clone)]
pub(super) struct GroupCommit {
    queue: mpsc::UnboundedSender<Vec<Job>>,
}

impl GroupCommit {
    /// Starts the committers on the current Tokio runtime: one per two pool connections on
    /// PostgreSQL (batches commit in parallel), one on SQLite, whose one writer connection
    /// commits one batch at a time anyway. A second committer there took a batch of whatever
    /// had arrived just after the first took its own and waited for the writer with it, so
    /// every other batch was small: on the Dapr route (`taskhost-bench load-route`, 8 s,
    /// three alternating pairs) two committers carried ~69 parts a batch, one carries
    /// ~98–103, at 6,604/6,642/5,718 → 6,677/6,725/5,894 deliveries/s and 214/212/245 →
    /// 208/210/239 µs of host CPU each: a little, since the writer's time grows with a
    /// batch's rows, not its statements.
    pub fn start(db: Db, config: Arc<EffectsConfig>) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        let committers = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => half_the_pool(db.pool().options().get_max_connections()),
        };
        for _ in 0..committers {
            tokio::spawn(committer(db.clone(), config.clone(), rx.clone()));
        }
        Self { queue }
    }

    /// Applies each part's effects and records (component, `event_id`) exactly once, durably,
    /// before it returns. One result per part, in order.
    pub async fn commit(
        &self,
        event_id: &str,
        now: DateTime<Utc>,
        parts: Vec<Part>,
    ) -> Vec<PartResult> {
        let (job, pending) = Job::new(event_id, now, parts);
        self.send(vec![job]);
        pending.results().await
    }

    /// A queue no committer reads, for tests that look at what is queued.
    #[cfg(test)]
    pub(super) fn unattended() -> (Self, mpsc::UnboundedReceiver<Vec<Job>>) {
        let (queue, rx) = mpsc::unbounded_channel();
        (Self { queue }, rx)
    }

    /// Queues `jobs` for the committers, in items of at most [`MAX_BATCH`] parts (a lone job
    /// larger than that is an item of its own), so however large a wave, its transactions stay
    /// within the bound [`MAX_BATCH`] gives every batch.
    pub(super) fn send(&self, jobs: Vec<Job>) {
        let mut item = Vec::new();
        let mut parts = 0;
        for job in jobs {
            if !item.is_empty() && parts + job.parts.len() > MAX_BATCH {
                // Dropped with its replies if the committers have stopped.
                let _ = self.queue.send(std::mem::take(&mut item));
                parts = 0;
            }
            parts += job.parts.len();
            item.push(job);
        }
        if !item.is_empty() {
            let _ = self.queue.send(item);
        }
    }
}

impl Job {
    /// A job, and where its results will come once a committer has run it.
    pub(super) fn new(event_id: &str, now: DateTime<Utc>, parts: Vec<Part>) -> (Self, Pending) {
        let count = parts.len();
        let (reply, answer) = oneshot::channel();
        let job = Job {
            event_id: event_id.to_string(),
            now,
            parts,
            reply,
        };
        (job, Pending { count, answer })
    }

    /// A job of `parts` empty parts, for tests that look at what is queued.
    #[cfg(test)]
    pub(super) fn for_test(event_id: &str, parts: usize) -> Self {
        let (reply, _) = oneshot::channel();
        Job {
            event_id: event_id.to_string(),
            now: Utc::now(),
            parts: (0..parts)
                .map(|_| Part {
                    component: Handler::Host,
                    effects: Vec::new(),
                    span: tracing::Span::none(),
                })
                .collect(),
            reply,
        }
    }

    #[cfg(test)]
    pub(super) fn event_id(&self) -> &str {
        &self.event_id
    }

    #[cfg(test)]
    pub(super) fn part_count(&self) -> usize {
        self.parts.len()
    }
}

/// A queued job's results, to wait for.
pub(super) struct Pending {
    count: usize,
    answer: oneshot::Receiver<Vec<PartResult>>,
}

impl Pending {
    /// One result per part, in order, once the transaction holding them has ended.
    pub async fn results(self) -> Vec<PartResult> {
        // A job the committers never took (they stopped) drops its reply: the message is
        // kept for another delivery.
        self.answer.await.unwrap_or_else(|_| stopped(self.count))
    }
}

/// The committers are gone (only during shutdown): the message is kept for another delivery.
fn stopped(count: usize) -> Vec<PartResult> {
    (0..count)
        .map(|_| Err(StorageError::Sqlx(sqlx::Error::PoolClosed)))
        .collect()
}

async fn committer(
    db: Db,
    config: Arc<EffectsConfig>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Vec<Job>>>>,
) {
    loop {
        let mut batch;
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(item) => batch = item,
                None => return,
            }
            let mut parts: usize = batch.iter().map(|job| job.parts.len()).sum();
            while parts < MAX_BATCH {
                match rx.try_recv() {
                    Ok(item) => {
                        parts += item.iter().map(|job| job.parts.len()).sum::<usize>();
                        batch.extend(item);
                    }
                    Err(_) => break,
                }
            }
        }
        run_batch(&db, &config, batch).await;
    }
}

/// One part to commit, with what its job knows.
struct Unit<'a> {
    event_id: &'a str,
    now: DateTime<Utc>,
    part: &'a Part,
}

async fn run_batch(db: &Db, config: &EffectsConfig, batch: Vec<Job>) {
    let units: Vec<Unit> = batch
        .iter()
        .flat_map(|job| {
            job.parts.iter().map(|part| Unit {
                event_id: &job.event_id,
                now: job.now,
                part,
            })
        })
        .collect();
    let size = units.len();
    // Optimistic: the whole batch in one transaction, no savepoints (each would cost two more
    // statements per part). If any part's effects fail, nothing of the batch is kept and each
    // part runs again in a transaction of its own, so the failure stays that part's.
    let started = std::time::Instant::now();
    let together_result = match optimistic(db, config, &units).await {
        Ok(Some(applied)) => Ok(applied),
        Ok(None) => {
            tracing::debug!(
                parts = size,
                "some parts of a group commit were recorded before (a redelivery); committing it again, told which"
            );
            exact(db, config, &units).await
        }
        Err(e) => Err(e),
    };
    crate::metrics::group_commit(size, started.elapsed().as_secs_f64());
    let mut results: Vec<PartResult> = match together_result {
        Ok(applied) => applied.into_iter().map(Ok).collect(),
        Err(e) => {
            if size > 1 {
                tracing::debug!(parts = size, error = %e, "a group commit failed; committing its parts one by one");
            }
            let mut results = Vec::with_capacity(size);
            for unit in &units {
                results.push(
                    exact(db, config, std::slice::from_ref(unit))
                        .await
                        .map(|mut r| r.pop().expect("one result per part")),
                );
            }
            results
        }
    };
    drop(units);
    // Hand each job its parts' results, in order.
    let mut rest = results.drain(..);
    for job in batch {
        let mine: Vec<PartResult> = rest.by_ref().take(job.parts.len()).collect();
        let _ = job.reply.send(mine);
    }
}

/// Applies `units` in one transaction on the bet that none was recorded before (a batch of
/// first deliveries: nearly every batch): their records in one plain insert whose count is
/// checked (`processed::record_if_all_new`). `None`: the bet failed — some unit was recorded
/// before, which one the count cannot say — and nothing was kept; [`exact`] then runs them.
async fn optimistic(
    db: &Db,
    config: &EffectsConfig,
    units: &[Unit<'_>],
) -> Result<Option<Vec<Option<Applied>>>, StorageError> {
    let mut tx = db.begin().await?;
    match processed::record_if_all_new(&mut tx, &records(units)).await? {
        Some(inserted) => apply_and_commit(tx, config, units, inserted)
            .await
            .map(Some),
        // Dropping the transaction rolls it back.
        None => Ok(None),
    }
}

/// Applies `units` in one transaction, told which units were recorded before by the record
/// insert itself (`processed::record_many`, one row back per new unit): a unit whose record
/// existed already (or an earlier unit of this batch holds the same pair) applies nothing and
/// gets `None`.
async fn exact(
    db: &Db,
    config: &EffectsConfig,
    units: &[Unit<'_>],
) -> Result<Vec<Option<Applied>>, StorageError> {
    let mut tx = db.begin().await?;
    let inserted = processed::record_many(&mut tx, &records(units)).await?;
    apply_and_commit(tx, config, units, inserted).await
}

/// Every unit's exactly-once record.
fn records<'a>(units: &'a [Unit<'_>]) -> Vec<processed::Record<'a>> {
    units
        .iter()
        .map(|u| processed::Record {
            component: u.part.component.name(),
            event_id: u.event_id,
            version: u.part.component.version(),
            now_ms: u.now.timestamp_millis(),
        })
        .collect()
}

/// Applies the effects of the units whose record `inserted` says is new, and commits: all of
/// it, or (on any error) nothing.
async fn apply_and_commit(
    mut tx: crate::storage::Tx,
    config: &EffectsConfig,
    units: &[Unit<'_>],
    inserted: Vec<bool>,
) -> Result<Vec<Option<Applied>>, StorageError> {
    let mut results = Vec::with_capacity(units.len());
    let mut deferred = effects::Deferred::default();
    for (unit, inserted) in units.iter().zip(inserted) {
        if !inserted {
            results.push(None);
            continue;
        }
        let origin = Origin {
            component: unit.part.component.name(),
            version: unit.part.component.version(),
        };
        let applied = effects::apply(
            &mut tx,
            config,
            origin,
            &unit.part.effects,
            unit.now,
            &mut deferred,
        )
        .instrument(unit.part.span.clone())
        .await?;
        results.push(Some(applied));
    }
    deferred.flush(&mut tx).await?;
    tx.commit().await?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Db;

    fn part() -> Part {
        Part {
            component: Handler::Host,
            effects: Vec::new(),
            span: tracing::Span::none(),
        }
    }

    fn applied(results: &[PartResult]) -> Vec<bool> {
        results
            .iter()
            .map(|r| r.as_ref().expect("committed").is_some())
            .collect()
    }

    #[test]
    fn jobs_sent_together_are_queued_in_items_of_at_most_max_batch_parts() {
        let (commit, mut queued) = GroupCommit::unattended();
        let half = MAX_BATCH / 2;
        commit.send(vec![
            Job::for_test("a", half),
            Job::for_test("b", half),
            Job::for_test("c", 1),
            Job::for_test("huge", MAX_BATCH + 1),
            Job::for_test("d", 1),
        ]);
        let mut items = Vec::new();
        while let Ok(item) = queued.try_recv() {
            items.push(
                item.iter()
                    .map(|j| j.event_id().to_owned())
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(
            items,
            [vec!["a", "b"], vec!["c"], vec!["huge"], vec!["d"]],
            "in order, each item within the bound unless one job alone exceeds it"
        );
    }

    #[tokio::test]
    async fn a_batch_holding_a_redelivery_applies_only_the_new_parts() {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        let commit = GroupCommit::start(db.clone(), Arc::default());
        let now = Utc::now();
        assert_eq!(
            applied(&commit.commit("e1", now, vec![part()]).await),
            [true]
        );
        // Both jobs are queued before a committer runs (one thread): one batch, whose first
        // insert finds e1 recorded and must be told which part is new.
        let (again, fresh) = tokio::join!(
            commit.commit("e1", now, vec![part()]),
            commit.commit("e2", now, vec![part(), part()]),
        );
        assert_eq!(applied(&again), [false]);
        assert_eq!(
            applied(&fresh),
            [true, false],
            "the same pair twice applies once"
        );
        let mut conn = db.pool().acquire().await.unwrap();
        let done = processed::done_by(&mut conn, &[crate::pipeline::HOST], "e2")
            .await
            .unwrap();
        assert_eq!(done.len(), 1);
    }
}
