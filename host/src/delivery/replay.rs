//! Replaying dead letters: one more way in to the pipeline, started by an operator once the
//! cause is fixed (a new component version swapped in, a database back).
//!
//! A dead letter that names its component goes to that component only, straight through the
//! pipeline: the others handled the message already. The exactly-once record makes a replay
//! safe whenever it happens — a message the component has handled since (a redelivery, an
//! earlier replay) is a duplicate and changes nothing. A dead letter without a component (it
//! did not decode, or the transport gave up on it) is put back in the outbox, as if the write
//! that caused it had just committed, and takes the normal way to every component (or to the
//! sidecar).

use crate::pipeline::{ComponentOutcome, Pipeline};
use crate::storage::dead_letters::{self, DeadLetterRecord};
use crate::storage::{Db, StorageError, outbox};
use crate::wire::{self, time};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::Instrument;

/// What one replay did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum ReplayOutcome {
    /// The component handled it: its effects are applied.
    Applied,
    /// The component had handled this event already: nothing was applied again.
    Duplicate,
    /// Put back in the outbox for every consumer.
    Requeued,
    /// It failed again, for this reason; the dead letter stays pending.
    Failed(String),
}

impl ReplayOutcome {
    fn stored(&self) -> Result<&'static str, &str> {
        match self {
            ReplayOutcome::Applied => Ok("applied"),
            ReplayOutcome::Duplicate => Ok("duplicate"),
            ReplayOutcome::Requeued => Ok("requeued"),
            ReplayOutcome::Failed(reason) => Err(reason),
        }
    }
}

#[derive(Clone)]
pub struct Replayer {
    pipeline: Pipeline,
    db: Db,
    relay: Arc<Notify>,
}

impl Replayer {
    pub fn new(pipeline: Pipeline, db: Db, relay: Arc<Notify>) -> Self {
        Self {
            pipeline,
            db,
            relay,
        }
    }

    /// Replays one dead letter and records the outcome on it.
    pub async fn replay(&self, dead: &DeadLetterRecord) -> Result<ReplayOutcome, StorageError> {
        let id: i64 = dead
            .id
            .parse()
            .map_err(|_| StorageError::Corrupt(format!("dead letter id {:?}", dead.id)))?;
        // A message recovered from a Dapr dead-letter topic is replayed on its original topic.
        let topic = dead.topic.strip_suffix("-dlq").unwrap_or(&dead.topic);
        let now = time::now();
        let outcome = match &dead.component {
            Some(component) => {
                let span = tracing::info_span!("replay", dead_letter = id, %component);
                let report = self
                    .pipeline
                    .deliver_to_component(topic, dead.payload.as_bytes(), component)
                    .instrument(span)
                    .await;
                match (&report.undecodable, report.components.first()) {
                    (Some(reason), _) => {
                        ReplayOutcome::Failed(format!("does not decode: {reason}"))
                    }
                    (None, None) => ReplayOutcome::Failed(format!(
                        "component {component} is not loaded or no longer consumes {topic}"
                    )),
                    (None, Some(c)) => match &c.outcome {
                        ComponentOutcome::Applied { .. } => ReplayOutcome::Applied,
                        ComponentOutcome::Duplicate => ReplayOutcome::Duplicate,
                        ComponentOutcome::Retry(r) | ComponentOutcome::Drop(r) => {
                            ReplayOutcome::Failed(format!("{}@{}: {r}", c.component, c.version))
                        }
                    },
                }
            }
            None => match wire::decode(topic, dead.payload.as_bytes(), now) {
                Err(e) => ReplayOutcome::Failed(format!("does not decode: {e}")),
                Ok(message) => {
                    let mut tx = self.db.begin().await?;
                    outbox::enqueue(
                        &mut tx,
                        topic,
                        message.user_id().as_str(),
                        &dead.payload,
                        now.timestamp_millis(),
                    )
                    .await?;
                    dead_letters::record_replay(
                        &mut tx,
                        id,
                        Ok("requeued"),
                        now.timestamp_millis(),
                    )
                    .await?;
                    tx.commit().await?;
                    self.relay.notify_one();
                    tracing::info!(
                        dead_letter = id,
                        topic,
                        "dead letter put back in the outbox"
                    );
                    return Ok(ReplayOutcome::Requeued);
                }
            },
        };
        let mut conn = self.db.pool().acquire().await?;
        dead_letters::record_replay(&mut conn, id, outcome.stored(), now.timestamp_millis())
            .await?;
        match &outcome {
            ReplayOutcome::Failed(reason) => {
                tracing::warn!(dead_letter = id, %reason, "replay failed; the dead letter stays")
            }
            other => tracing::info!(dead_letter = id, outcome = ?other, "dead letter replayed"),
        }
        Ok(outcome)
    }
}
