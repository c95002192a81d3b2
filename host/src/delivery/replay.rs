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

use crate::pipeline::{Handled, Pipeline, Received, Verdict, origin_topic};
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
        // Rows of older versions name the dead-letter topic a message arrived on; it is
        // replayed on its own topic.
        let topic = origin_topic(&dead.topic);
        let now = time::now();
        let outcome = match &dead.component {
            Some(component) => {
                let span = tracing::info_span!("replay", dead_letter = id, %component);
                let received = Received {
                    topic,
                    payload: dead.payload.as_bytes(),
                    id: None,
                };
                let handled = self
                    .pipeline
                    .handle_for(received, component)
                    .instrument(span)
                    .await;
                outcome_of(&handled, component, topic)
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

/// A replay's words for what the component made of the message.
fn outcome_of(handled: &Handled, component: &str, topic: &str) -> ReplayOutcome {
    match handled {
        Handled::Undecodable(e) => ReplayOutcome::Failed(format!("does not decode: {e}")),
        // A replay handles one message on its own: nothing is chained before it.
        Handled::Held(held) => ReplayOutcome::Failed(held.to_string()),
        Handled::Decoded { verdicts, .. } => match verdicts.first() {
            None => ReplayOutcome::Failed(format!(
                "component {component} is not loaded or no longer consumes {topic}"
            )),
            Some(v) => match &v.verdict {
                Verdict::Applied { .. } => ReplayOutcome::Applied,
                Verdict::Duplicate => ReplayOutcome::Duplicate,
                Verdict::Failed(f) => ReplayOutcome::Failed(format!("{}: {f}", v.who())),
            },
        },
    }
}
