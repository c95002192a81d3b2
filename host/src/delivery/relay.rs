//! The outbox relay: hands committed outbox rows on, in order per user, at least once, to a
//! sink — the in-process pipeline (embedded mode) or the Dapr sidecar. Combined with the
//! pipeline's exactly-once record, each component applies each event exactly once, even across
//! crashes.

use super::retry::RetryPolicy;
use crate::pipeline::{Answer, Attempt, DeadLetters, Undelivered};
use crate::storage::Db;
use crate::storage::leader::Leadership;
use crate::storage::outbox::{self, OutboxRow};
use chrono::Utc;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Rows fetched per round.
const BATCH: i64 = 256;
/// Users whose rows a round hands on at the same time: enough for two full group commits
/// (`pipeline::group_commit::MAX_BATCH` parts, four per task event), one committing while the
/// next gathers. Each chain holds at most one row in flight (and its database connections).
/// At 32, a commit carried at most 32 rows' parts while 64 users waited: `taskhost-bench
/// --quick --only-embedded` (SQLite, 64 writers), four alternating runs, lag p50
/// 1,595/1,641/1,585/1,669 → 1,110/1,175/1,061/1,070 ms, p99 ~2.35 → ~1.75 s, end to end
/// 1,629/1,505/1,798/1,860 → 1,686/1,679/1,783/1,952 writes/s.
const CONCURRENT_KEYS: usize = 128;
/// How long the relay sleeps when it has nothing to do and nobody wakes it (it also wakes for
/// retries that came due).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Where the relay hands rows on. Its [`Answer`] decides the row's next step
/// ([`Relay::settle`]): `Done` and `Drop` (the sink recorded the dead letter) finish it,
/// `Retry` schedules it again (or, on the last attempt, the relay dead-letters it), `Hold`
/// keeps it and every later row without spending an attempt.
#[async_trait::async_trait]
pub trait OutboxSink: Send + Sync + 'static {
    /// Hands one row on. On `attempt.last` no retry follows: a sink that can dead-letter part of
    /// a row (the pipeline, per component) does so instead of answering `Retry`.
    async fn forward(&self, row: &OutboxRow, attempt: Attempt) -> Answer;
}

/// How often a standby instance checks whether the relay lock became free.
const STANDBY_POLL: Duration = Duration::from_secs(2);

/// How long the relay waits before trying an unavailable destination again.
const STALLED_WAIT: Duration = Duration::from_secs(1);

/// What one round did.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// Rows delivered or dead-lettered.
    pub finished: usize,
    /// The destination was unavailable; the round stopped early.
    pub stalled: bool,
}

pub struct Relay {
    db: Db,
    sink: Arc<dyn OutboxSink>,
    wake: Arc<Notify>,
    policy: RetryPolicy,
    dead_letters: DeadLetters,
}

impl Relay {
    pub fn new(db: Db, sink: Arc<dyn OutboxSink>, wake: Arc<Notify>, policy: RetryPolicy) -> Self {
        Self {
            dead_letters: DeadLetters::new(db.clone()),
            db,
            sink,
            wake,
            policy,
        }
    }

    /// Runs until `shutdown`; a round in progress finishes first.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!("outbox relay started");
        let mut leadership: Option<Leadership> = None;
        let mut standby_logged = false;
        loop {
            // Only one instance per database relays (see storage::leader).
            let leads = match &mut leadership {
                Some(l) => l.still_held().await,
                None => false,
            };
            if !leads {
                leadership = match Leadership::try_acquire(&self.db).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot take the relay lock (database unavailable?); will retry");
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(STALLED_WAIT) => {}
                        }
                        continue;
                    }
                };
                match &leadership {
                    Some(_) => {
                        standby_logged = false;
                        tracing::info!("this instance relays the outbox");
                    }
                    None => {
                        if !standby_logged {
                            standby_logged = true;
                            tracing::info!("another instance relays the outbox; standing by");
                        }
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(STANDBY_POLL) => {}
                        }
                        continue;
                    }
                }
            }
            let busy = match self.round().await {
                Ok(Round { stalled: true, .. }) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(STALLED_WAIT) => {}
                    }
                    continue;
                }
                Ok(r) => r.finished > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay round failed; will retry");
                    false
                }
            };
            if busy {
                if shutdown.is_cancelled() {
                    break;
                }
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
            }
        }
        tracing::info!("outbox relay stopped");
    }

    /// Hands on what is pending now: each user's rows in order, different users' rows
    /// concurrently (up to [`CONCURRENT_KEYS`] chains at once), so that the deliveries of one
    /// round meet in the pipeline's group commit instead of each waiting for the previous
    /// one's commit. The rows delivered are marked in one statement at the end of the round;
    /// a crash before that only redelivers them, which the exactly-once record absorbs.
    pub async fn round(&self) -> Result<Round, crate::storage::StorageError> {
        let now = Utc::now().timestamp_millis();
        let rows = {
            let mut conn = self.db.pool().acquire().await?;
            outbox::pending(&mut conn, now, BATCH).await?
        };
        let stall = CancellationToken::new();
        let outcomes: Vec<Chain> = futures::stream::iter(chains(rows))
            .map(|chain| self.chain(chain, &stall))
            .buffer_unordered(CONCURRENT_KEYS)
            .collect()
            .await;
        let delivered: Vec<i64> = outcomes
            .iter()
            .flat_map(|c| c.delivered.iter().copied())
            .collect();
        if !delivered.is_empty() {
            let mut conn = self.db.pool().acquire().await?;
            outbox::mark_delivered_many(&mut conn, &delivered, Utc::now().timestamp_millis())
                .await?;
        }
        let mut finished = 0;
        let mut error = None;
        for c in outcomes {
            finished += c.finished;
            if error.is_none() {
                error = c.error;
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        Ok(Round {
            finished,
            stalled: stall.is_cancelled(),
        })
    }

    /// Hands on one user's rows in order; stops at the first that must wait for a retry (a
    /// later event never overtakes an earlier one of the same user), and before the next row
    /// once any chain found the destination unavailable.
    async fn chain(&self, rows: Vec<OutboxRow>, stall: &CancellationToken) -> Chain {
        let mut out = Chain::default();
        for row in rows {
            if stall.is_cancelled() {
                break;
            }
            match self.forward_one(&row).await {
                Ok(Answer::Done | Answer::Drop(_)) => {
                    out.delivered.push(row.id);
                    out.finished += 1;
                }
                Ok(Answer::Retry(_)) => break,
                Ok(Answer::Hold(reason)) => {
                    if !stall.is_cancelled() {
                        tracing::warn!(topic = %row.topic, %reason, "destination unavailable; holding the outbox");
                    }
                    stall.cancel();
                    break;
                }
                Err(e) => {
                    out.error = Some(e);
                    break;
                }
            }
        }
        out
    }

    /// One attempt at one row, settled: see [`Relay::settle`].
    async fn forward_one(&self, row: &OutboxRow) -> Result<Answer, crate::storage::StorageError> {
        let number = row.attempts + 1;
        let attempt = Attempt {
            number,
            last: self.policy.exhausted(number),
        };
        // The delivery continues the trace of the write that queued the row.
        let span = tracing::info_span!(target: crate::telemetry::SPANS, "outbox.deliver", outbox_id = row.id, topic = %row.topic, attempt = number);
        if let Some(trace) = &row.trace {
            trace.continue_in(&span);
        }
        let answer = self.sink.forward(row, attempt).instrument(span).await;
        self.settle(row, attempt, answer).await
    }

    /// The relay's words for an answer: the row is finished (`Done`, `Drop`), waits for its
    /// retry (`Retry`; recorded here), or holds the round (`Hold`). A retry on the last attempt
    /// is dead-lettered here instead, and finishes the row.
    async fn settle(
        &self,
        row: &OutboxRow,
        attempt: Attempt,
        answer: Answer,
    ) -> Result<Answer, crate::storage::StorageError> {
        let Answer::Retry(reason) = answer else {
            return Ok(answer);
        };
        let event_id = crate::wire::peek_event_id(row.payload.as_bytes());
        let event_id = event_id.as_deref().unwrap_or("");
        if attempt.last {
            tracing::error!(outbox_id = row.id, topic = %row.topic, event_id, %reason, "retries exhausted; dead-lettering");
            self.dead_letters
                .undelivered(Undelivered {
                    topic: &row.topic,
                    id: None,
                    payload: row.payload.as_bytes(),
                    reason: &reason,
                    attempts: attempt.number,
                    exhausted: true,
                    forwarded_to: None,
                })
                .await?;
            return Ok(Answer::Drop(reason));
        }
        let wait = self.policy.backoff(attempt.number);
        tracing::warn!(outbox_id = row.id, topic = %row.topic, event_id, attempt = attempt.number, ?wait, %reason, "delivery will be retried");
        let next = Utc::now().timestamp_millis() + wait.as_millis() as i64;
        let mut conn = self.db.pool().acquire().await?;
        outbox::schedule_retry(&mut conn, row.id, next, &reason).await?;
        Ok(Answer::Retry(reason))
    }
}

/// What one user's chain of a round did.
#[derive(Default)]
struct Chain {
    delivered: Vec<i64>,
    finished: usize,
    error: Option<crate::storage::StorageError>,
}

/// Splits a round's rows (oldest first) into one chain per partition key, each in id order,
/// the chains in the order of their oldest row.
fn chains(rows: Vec<OutboxRow>) -> Vec<Vec<OutboxRow>> {
    super::chains::by_key(rows, |row| Some(row.partition_key.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Records what it was given, holds each delivery a moment (longer for some rows, so that
    /// chains finish out of step), and answers per row as told.
    #[derive(Default)]
    struct FakeSink {
        seen: Mutex<Vec<(String, i64)>>,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        answers: Mutex<HashMap<i64, Answer>>,
    }

    #[async_trait::async_trait]
    impl OutboxSink for FakeSink {
        async fn forward(&self, row: &OutboxRow, _attempt: Attempt) -> Answer {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1 + (row.id as u64 * 7) % 5)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.seen
                .lock()
                .unwrap()
                .push((row.partition_key.clone(), row.id));
            self.answers
                .lock()
                .unwrap()
                .get(&row.id)
                .cloned()
                .unwrap_or(Answer::Done)
        }
    }

    async fn relay_with(rows: &[&str], sink: Arc<FakeSink>) -> (Relay, Db) {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        {
            let mut conn = db.pool().acquire().await.unwrap();
            for (i, key) in rows.iter().enumerate() {
                outbox::enqueue(&mut conn, "task-events", key, "{}", i as i64)
                    .await
                    .unwrap();
            }
        }
        let relay = Relay::new(
            db.clone(),
            sink,
            Arc::new(Notify::new()),
            RetryPolicy::default(),
        );
        (relay, db)
    }

    async fn undelivered(db: &Db) -> Vec<i64> {
        sqlx::query_scalar("SELECT id FROM outbox WHERE delivered_at IS NULL ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap()
    }

    fn ids_of(sink: &FakeSink, key: &str) -> Vec<i64> {
        let seen = sink.seen.lock().unwrap();
        seen.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, id)| *id)
            .collect()
    }

    #[tokio::test]
    async fn users_are_delivered_side_by_side_each_in_order() {
        let keys: Vec<&str> = (0..60).map(|i| ["a", "b", "c"][i % 3]).collect();
        let sink = Arc::new(FakeSink::default());
        let (relay, db) = relay_with(&keys, sink.clone()).await;
        let round = relay.round().await.unwrap();
        assert_eq!((round.finished, round.stalled), (60, false));
        assert!(undelivered(&db).await.is_empty());
        for (key, first) in [("a", 1), ("b", 2), ("c", 3)] {
            let expected: Vec<i64> = (0..20).map(|i| first + 3 * i).collect();
            assert_eq!(ids_of(&sink, key), expected, "user {key}'s order");
        }
        assert!(
            sink.max_in_flight.load(Ordering::SeqCst) > 1,
            "the users' chains never overlapped"
        );
    }

    #[tokio::test]
    async fn a_retry_holds_back_only_that_users_later_rows() {
        // ids: a=1,3,5  b=2,4,6; a's first row asks for a retry.
        let sink = Arc::new(FakeSink::default());
        sink.answers
            .lock()
            .unwrap()
            .insert(1, Answer::Retry("not yet".into()));
        let (relay, db) = relay_with(&["a", "b", "a", "b", "a", "b"], sink.clone()).await;
        let round = relay.round().await.unwrap();
        assert_eq!((round.finished, round.stalled), (3, false));
        assert_eq!(ids_of(&sink, "a"), vec![1], "a's later rows were attempted");
        assert_eq!(ids_of(&sink, "b"), vec![2, 4, 6]);
        assert_eq!(undelivered(&db).await, vec![1, 3, 5]);
        // The next round skips a entirely until its retry is due.
        let next = relay.round().await.unwrap();
        assert_eq!(next.finished, 0);
        assert_eq!(ids_of(&sink, "a"), vec![1]);
    }

    #[tokio::test]
    async fn an_unavailable_destination_stalls_the_round_and_keeps_the_rest() {
        let sink = Arc::new(FakeSink::default());
        sink.answers
            .lock()
            .unwrap()
            .insert(2, Answer::Hold("sidecar down".into()));
        let (relay, db) = relay_with(&["a", "b", "a", "b", "a", "b"], sink.clone()).await;
        let round = relay.round().await.unwrap();
        assert!(round.stalled);
        // b stopped at its first row; nothing of b is marked, and what a finished is.
        assert_eq!(ids_of(&sink, "b"), vec![2]);
        let left = undelivered(&db).await;
        assert!(
            left.contains(&2) && left.contains(&4) && left.contains(&6),
            "{left:?}"
        );
        for id in ids_of(&sink, "a") {
            assert!(
                !left.contains(&id),
                "a's delivered row {id} is still pending"
            );
        }
        let attempts: i64 = sqlx::query_scalar("SELECT attempts FROM outbox WHERE id = 2")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(
            attempts, 0,
            "an unavailable destination must not spend an attempt"
        );
    }

    fn row(id: i64, key: &str) -> OutboxRow {
        OutboxRow {
            id,
            topic: "task-events".into(),
            partition_key: key.into(),
            payload: "{}".into(),
            attempts: 0,
            trace: None,
        }
    }

    #[test]
    fn chains_keep_each_users_order_and_the_order_of_first_appearance() {
        let rows = vec![
            row(1, "a"),
            row(2, "b"),
            row(3, "a"),
            row(4, "c"),
            row(5, "b"),
            row(6, "a"),
        ];
        let ids: Vec<Vec<i64>> = chains(rows)
            .into_iter()
            .map(|c| c.into_iter().map(|r| r.id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 3, 6], vec![2, 5], vec![4]]);
    }
}
