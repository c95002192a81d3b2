//! What one loaded version did with its messages: counted by [`Runtime::call`], read by the
//! admin API and by the rollback guard.
//!
//! Counters belong to a version (a [`LoadedComponent`]), not to a component name, so after a
//! swap the old and the new version each keep their own numbers, and a new version's failure
//! rate is its own from its first message on.
//!
//! [`Runtime::call`]: super::Runtime::call
//! [`LoadedComponent`]: super::LoadedComponent

use super::outcome::{Answer, CallError};
use super::wit;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Per-version counters. Lock-free: every call of every worker thread updates them.
#[derive(Debug, Default)]
pub struct VersionStats {
    calls: AtomicU64,
    retries: AtomicU64,
    drops: AtomicU64,
    traps: AtomicU64,
    first_call: OnceLock<Instant>,
}

/// A consistent-enough copy of [`VersionStats`] (each counter is read once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    /// `handle` calls made on this version.
    pub messages: u64,
    /// Calls answered `failure::retry`.
    pub retries: u64,
    /// Calls answered `failure::drop`.
    pub drops: u64,
    /// Calls that produced no answer: trap, timeout, failed instantiation, effect limits.
    pub traps: u64,
}

impl StatsSnapshot {
    /// Calls that did not end in effects: what the rollback guard measures.
    pub fn errors(&self) -> u64 {
        self.retries + self.drops + self.traps
    }
}

impl VersionStats {
    /// Counts one `handle` call and how it ended.
    pub(super) fn record(&self, result: &Result<Answer, CallError>) {
        self.first_call.get_or_init(Instant::now);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let counter = match result {
            Ok(Ok(_)) => return,
            Ok(Err(wit::Failure::Retry(_))) => &self.retries,
            Ok(Err(wit::Failure::Drop(_))) => &self.drops,
            Err(_) => &self.traps,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            messages: self.calls.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            drops: self.drops.load(Ordering::Relaxed),
            traps: self.traps.load(Ordering::Relaxed),
        }
    }

    /// When this version handled its first message (for measuring how long a swap takes to
    /// reach traffic).
    pub fn first_call(&self) -> Option<Instant> {
        self.first_call.get().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_outcome_once() {
        let s = VersionStats::default();
        assert!(s.first_call().is_none());
        s.record(&Ok(Ok(vec![])));
        s.record(&Ok(Err(wit::Failure::Retry("busy".into()))));
        s.record(&Ok(Err(wit::Failure::Drop("bad".into()))));
        s.record(&Err(CallError::Trap("unreachable".into())));
        s.record(&Err(CallError::Timeout(std::time::Duration::from_millis(
            1,
        ))));
        let snap = s.snapshot();
        assert_eq!(
            snap,
            StatsSnapshot {
                messages: 5,
                retries: 1,
                drops: 1,
                traps: 2
            }
        );
        assert_eq!(snap.errors(), 4);
        assert!(s.first_call().is_some());
    }
}
