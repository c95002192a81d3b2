//! Where a verdict becomes an answer: what the transport should do with a message as a whole,
//! given what each component made of it ([`Handled::answer`]).
//!
//! Each transport turns an [`Answer`] into its own words in one small function: Dapr's
//! `SUCCESS`/`RETRY`/`DROP` (`dapr/events.rs`, `status`), the relay's next step for an outbox
//! row (`delivery/relay.rs`, `Relay::settle`), a replay's outcome (`delivery/replay.rs`).

use super::verdict::{Failure, Handled, HeldBehind};

/// What the transport does with the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Every component applied it or had already: acknowledge it, never deliver it again.
    Done,
    /// Some component failed in a way a later attempt may not: deliver it again later (the
    /// components that applied it will see the redelivery as a duplicate).
    Retry(String),
    /// The database is away: keep the message, and every later one of its key, without
    /// spending an attempt, until it is back.
    Hold(String),
    /// Failed for good. The host has recorded the dead letter with this reason (a transport
    /// that has a dead-letter topic, Dapr, also forwards the message there).
    Drop(String),
}

impl Answer {
    /// Why, when it is not [`Answer::Done`].
    pub fn reason(&self) -> Option<&str> {
        match self {
            Answer::Done => None,
            Answer::Retry(r) | Answer::Hold(r) | Answer::Drop(r) => Some(r),
        }
    }
}

/// A message held behind the same user's earlier one is retried with it, without a dead letter.
impl From<&HeldBehind> for Answer {
    fn from(held: &HeldBehind) -> Self {
        Answer::Retry(held.to_string())
    }
}

impl Handled {
    /// One answer for the whole message: the database being away holds it; then any retry
    /// wins (the components that succeeded will see the redelivery as a duplicate); then any
    /// drop; otherwise it is done. An undecodable message is dropped.
    pub fn answer(&self) -> Answer {
        match self {
            Handled::Undecodable(e) => Answer::Drop(e.to_string()),
            Handled::Held(held) => held.into(),
            Handled::Decoded { .. } => decide(self.failures().map(|(v, f)| (v.who(), f))),
        }
    }
}

/// The rule of [`Handled::answer`] over each failed component's `name@version` and failure.
fn decide<'a>(failures: impl Iterator<Item = (String, &'a Failure)>) -> Answer {
    let failures: Vec<(String, &Failure)> = failures.collect();
    let reasons = |pick: &dyn Fn(&Failure) -> bool| -> Option<String> {
        let picked: Vec<String> = failures
            .iter()
            .filter(|(_, f)| pick(f))
            .map(|(who, f)| format!("{who}: {f}"))
            .collect();
        (!picked.is_empty()).then(|| picked.join("; "))
    };
    if let Some(r) = reasons(&Failure::is_storage_unavailable) {
        return Answer::Hold(r);
    }
    if let Some(r) = reasons(&|f| !f.is_permanent()) {
        return Answer::Retry(r);
    }
    if let Some(r) = reasons(&Failure::is_permanent) {
        return Answer::Drop(r);
    }
    Answer::Done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::CallError;
    use crate::storage::StorageError;

    fn answer(failures: Vec<Failure>) -> Answer {
        decide(
            failures
                .iter()
                .enumerate()
                .map(|(i, f)| (format!("c{i}@1"), f)),
        )
    }

    #[test]
    fn the_database_away_holds_then_retry_wins_over_drop_and_drop_over_success() {
        let retry = || Failure::Call(CallError::Trap("boom".into()));
        let drop = || Failure::Dropped("bad".into());
        let away = || Failure::Storage(StorageError::Sqlx(sqlx::Error::PoolTimedOut));
        assert_eq!(answer(vec![]), Answer::Done);
        assert_eq!(
            answer(vec![drop()]),
            Answer::Drop("c0@1: component dropped the message: bad".into())
        );
        assert!(
            matches!(answer(vec![drop(), retry()]), Answer::Retry(r) if r == "c1@1: component call failed: trapped: boom")
        );
        assert!(
            matches!(answer(vec![retry(), away(), drop()]), Answer::Hold(r) if r.starts_with("c1@1: applying effects failed"))
        );
        let undecodable = Handled::Undecodable(crate::wire::DecodeError {
            topic: "task-events".into(),
            reason: "bad".into(),
        });
        assert_eq!(
            undecodable.answer(),
            Answer::Drop("cannot decode task-events message: bad".into())
        );
    }
}
