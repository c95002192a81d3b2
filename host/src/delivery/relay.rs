//! The outbox relay: delivers committed events in order, at least once, to a sink (in-process
//! components now; the Dapr sidecar later). Combined with the pipeline's exactly-once record,
//! each component applies each event exactly once, even across crashes.

use super::retry::RetryPolicy;
use crate::storage::leader::Leadership;
use crate::storage::outbox::{self, OutboxRow};
use crate::storage::{Db, dead_letters};
use chrono::Utc;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Rows fetched per round.
const BATCH: i64 = 256;
/// How long the relay sleeps when it has nothing to do and nobody wakes it (it also wakes for
/// retries that came due).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// What a sink made of one outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkResult {
    /// Handled (or dead-lettered by the sink itself): never deliver again.
    Done,
    /// Try again later; the relay dead-letters it once the retry policy is exhausted.
    Retry(String),
    /// The destination is down (e.g. the sidecar): keep this and every later row, spend no
    /// attempt, and try again shortly.
    Unavailable(String),
}

/// Where the relay delivers.
#[async_trait::async_trait]
pub trait OutboxSink: Send + Sync + 'static {
    /// Delivers one row. `final_attempt`: no retry will follow, so a sink with per-component
    /// state must dead-letter what still fails instead of answering `Retry`.
    async fn deliver(&self, row: &OutboxRow, final_attempt: bool) -> SinkResult;
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
}

impl Relay {
    pub fn new(db: Db, sink: Arc<dyn OutboxSink>, wake: Arc<Notify>, policy: RetryPolicy) -> Self {
        Self {
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
                        tracing::warn!(error = %e, "cannot take the relay lock; will retry");
                        None
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

    /// Delivers what is pending now.
    pub async fn round(&self) -> Result<Round, crate::storage::StorageError> {
        let now = Utc::now().timestamp_millis();
        let rows = {
            let mut conn = self.db.pool().acquire().await?;
            outbox::pending(&mut conn, now, BATCH).await?
        };
        let mut blocked: HashSet<String> = HashSet::new();
        let mut finished = 0;
        for row in rows {
            // A user whose earlier event waits for a retry gets nothing newer delivered.
            if blocked.contains(&row.partition_key) {
                continue;
            }
            let attempt = row.attempts + 1;
            let final_attempt = self.policy.exhausted(attempt);
            // The delivery continues the trace of the write that queued the row.
            let span = tracing::info_span!(target: crate::telemetry::SPANS, "outbox.deliver", outbox_id = row.id, topic = %row.topic, attempt);
            if let Some(trace) = &row.trace {
                trace.continue_in(&span);
            }
            match self
                .sink
                .deliver(&row, final_attempt)
                .instrument(span)
                .await
            {
                SinkResult::Done => {
                    let mut conn = self.db.pool().acquire().await?;
                    outbox::mark_delivered(&mut conn, row.id, Utc::now().timestamp_millis())
                        .await?;
                    finished += 1;
                }
                SinkResult::Unavailable(reason) => {
                    tracing::warn!(topic = %row.topic, %reason, "destination unavailable; holding the outbox");
                    return Ok(Round {
                        finished,
                        stalled: true,
                    });
                }
                SinkResult::Retry(reason) if final_attempt => {
                    self.dead_letter(&row, &reason).await?;
                    finished += 1;
                }
                SinkResult::Retry(reason) => {
                    let wait = self.policy.backoff(attempt);
                    let event_id = crate::wire::peek_event_id(row.payload.as_bytes());
                    tracing::warn!(outbox_id = row.id, topic = %row.topic, event_id = event_id.as_deref().unwrap_or(""), attempt, ?wait, %reason, "delivery will be retried");
                    let next = Utc::now().timestamp_millis() + wait.as_millis() as i64;
                    let mut conn = self.db.pool().acquire().await?;
                    outbox::schedule_retry(&mut conn, row.id, next, &reason).await?;
                    blocked.insert(row.partition_key.clone());
                }
            }
        }
        Ok(Round {
            finished,
            stalled: false,
        })
    }

    async fn dead_letter(
        &self,
        row: &OutboxRow,
        reason: &str,
    ) -> Result<(), crate::storage::StorageError> {
        let event_id = crate::wire::peek_event_id(row.payload.as_bytes());
        tracing::error!(outbox_id = row.id, topic = %row.topic, event_id = event_id.as_deref().unwrap_or(""), %reason, "retries exhausted; dead-lettering");
        let now = Utc::now().timestamp_millis();
        let mut tx = self.db.begin().await?;
        let reason = format!(
            "gave up after {} attempts: {reason}",
            self.policy.max_attempts
        );
        dead_letters::insert(
            &mut tx,
            dead_letters::NewDeadLetter {
                topic: &row.topic,
                component: None,
                event_id: None,
                payload: &row.payload,
                reason: &reason,
            },
            now,
        )
        .await?;
        outbox::mark_delivered(&mut tx, row.id, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
