//! What became of one message: for each component it went to, a [`Verdict`] — applied,
//! duplicate, or failed with a typed [`Failure`] — or, when it did not decode, why not.
//!
//! A failure keeps its cause as a type (a storage error with its transience, a call error,
//! the component's own answer) until it must become text: [`Failure`]'s `Display`, used only
//! where a reason is logged, answered or dead-lettered (`answer.rs`, `dead_letter.rs`).

use super::handler::Handler;
use crate::domain::EventId;
use crate::runtime::CallError;
use crate::storage::StorageError;
use crate::wire::DecodeError;
use std::sync::Arc;

/// Why a component did not apply a message.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The database failed while recording or applying: transient (down, busy, restarting:
    /// the message is fine, try again when it is back) or not.
    #[error("applying effects failed: {0}")]
    Storage(#[source] StorageError),
    /// The database failed while the host read what it adds to the message (the task's
    /// history in the audit trail, `context.rs`), before any component was called. One
    /// error for all of the message's components, hence shared.
    #[error("reading the task's history failed: {0}")]
    History(#[source] Arc<StorageError>),
    /// The call produced no answer: trap, timeout, memory limit, effect limits, instantiation.
    #[error("component call failed: {0}")]
    Call(#[source] CallError),
    /// The call could not be run to its end by the host (its thread panicked or was cancelled).
    #[error("component call aborted in the host: {0}")]
    Aborted(String),
    /// The component answered `failure::retry`.
    #[error("component asked to retry: {0}")]
    AskedToRetry(String),
    /// The component answered `failure::drop`.
    #[error("component dropped the message: {0}")]
    Dropped(String),
    /// The component returned an effect the host cannot carry out (an invalid id, …).
    #[error("component returned an invalid effect: {0}")]
    InvalidEffect(String),
}

impl Failure {
    /// Whether no later attempt can succeed: the component itself dropped the message, or
    /// returned what can never be applied. Everything else is worth its few retries — even a
    /// call that the same input will fail again, since a hot swap or a rollback between two
    /// attempts can fix it, and a message is never dropped for a bug a newer version no longer
    /// has.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Failure::Dropped(_) | Failure::InvalidEffect(_))
    }

    /// Whether the database, not the message or the component, is at fault, and it may come
    /// back: the transport then holds the message without spending one of its attempts.
    pub fn is_storage_unavailable(&self) -> bool {
        match self {
            Failure::Storage(e) => e.is_transient(),
            Failure::History(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// What became of one message for one component.
#[derive(Debug)]
pub enum Verdict {
    /// Its effects (this many) are committed with the exactly-once record.
    Applied { effects: usize },
    /// This component had handled this event already: nothing was done again.
    Duplicate,
    /// Not applied, for this reason.
    Failed(Failure),
}

impl Verdict {
    /// The `outcome` label of metrics and traces.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Applied { .. } => "applied",
            Verdict::Duplicate => "duplicate",
            Verdict::Failed(f) if f.is_permanent() => "drop",
            Verdict::Failed(_) => "retry",
        }
    }

    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Verdict::Failed(f) => Some(f),
            _ => None,
        }
    }
}

/// A component's verdict, with the version that reached it (or the host's, for a message the
/// host carries out itself: `in_host.rs`).
#[derive(Debug)]
pub struct ComponentVerdict {
    pub component: Handler,
    pub verdict: Verdict,
}

impl ComponentVerdict {
    /// `name@version`, as reasons name a component.
    pub fn who(&self) -> String {
        format!("{}@{}", self.component.name(), self.component.version())
    }
}

/// Why a message is not handled now: the same user's previous message of its delivery is to
/// be retried, and this one must not overtake it. Its answer is a retry, without a dead
/// letter; the transport delivers both again, in order.
#[derive(Clone, Debug)]
pub struct HeldBehind(String);

impl HeldBehind {
    /// Held behind the message the transport calls `name` (e.g. `entry 7`).
    pub(super) fn new(name: &str) -> Self {
        Self(name.to_owned())
    }
}

impl std::fmt::Display for HeldBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "held behind {} of the same user, which is to be retried",
            self.0
        )
    }
}

/// Everything the pipeline did with one message.
#[derive(Debug)]
pub enum Handled {
    /// It is not a message of its topic; no component saw it.
    Undecodable(DecodeError),
    /// One verdict per component that consumes the topic (none when no component does).
    Decoded {
        event_id: EventId,
        verdicts: Vec<ComponentVerdict>,
    },
    /// Not handled: the same user's previous message of its delivery is to be retried, and
    /// this one waits for its redelivery behind it (`wave.rs`). Nothing of it was committed.
    Held(HeldBehind),
}

impl Handled {
    /// The event id, when the message decoded.
    pub fn event_id(&self) -> Option<&EventId> {
        match self {
            Handled::Decoded { event_id, .. } => Some(event_id),
            Handled::Undecodable(_) | Handled::Held(_) => None,
        }
    }

    /// The verdicts, one per component (empty when it did not decode).
    pub fn verdicts(&self) -> &[ComponentVerdict] {
        match self {
            Handled::Decoded { verdicts, .. } => verdicts,
            Handled::Undecodable(_) | Handled::Held(_) => &[],
        }
    }

    /// The components that failed, each with its failure.
    pub fn failures(&self) -> impl Iterator<Item = (&ComponentVerdict, &Failure)> {
        self.verdicts()
            .iter()
            .filter_map(|v| v.verdict.failure().map(|f| (v, f)))
    }
}
