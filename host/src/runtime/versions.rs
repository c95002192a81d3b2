//! The versions of one component: the one serving, and the last few it replaced.
//!
//! Guarantees, which `tests` below check:
//! - **One version per message.** A reader takes one `Arc` ([`Versions::current`]) and keeps
//!   it for as long as it works; a swap only changes what the *next* reader gets. Readers never
//!   lock: the serving version sits in an [`ArcSwap`], and the mutex is taken only by the
//!   (rare) writers, so that a swap and a rollback cannot interleave.
//! - **The old version lives exactly as long as someone needs it**: the messages still holding
//!   it, or the rollback history (the `keep` newest replaced versions). When the last of these
//!   lets go, it is freed — wasmtime unmaps its code with it.
//! - **Rollback is instant**: the history holds versions ready to serve, nothing is recompiled.
//!
//! Generic over the version type so that these guarantees are tested without wasm.

use arc_swap::ArcSwap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Why the serving version is serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Loaded at start-up.
    Startup,
    /// Swapped in (admin API or components directory): on probation.
    Swap,
    /// Made current again by a rollback.
    Rollback,
}

/// When and why the serving version became current.
#[derive(Clone, Copy, Debug)]
pub struct Activation {
    pub at: Instant,
    pub wall: chrono::DateTime<chrono::Utc>,
    pub cause: Cause,
}

impl Activation {
    fn now(cause: Cause) -> Self {
        Self {
            at: Instant::now(),
            wall: chrono::Utc::now(),
            cause,
        }
    }
}

pub struct Versions<T> {
    current: ArcSwap<T>,
    writers: Mutex<History<T>>,
}

struct History<T> {
    /// Replaced versions, newest first, at most `keep`.
    previous: VecDeque<Arc<T>>,
    keep: usize,
    activation: Activation,
}

/// A change of the serving version: what served before and what serves now.
#[derive(Debug)]
pub struct Change<T> {
    pub from: Arc<T>,
    pub to: Arc<T>,
}

impl<T> Versions<T> {
    /// `keep`: how many replaced versions are kept for rollback.
    pub fn new(initial: T, keep: usize) -> Self {
        Self {
            current: ArcSwap::from_pointee(initial),
            writers: Mutex::new(History {
                previous: VecDeque::new(),
                keep,
                activation: Activation::now(Cause::Startup),
            }),
        }
    }

    /// The version that will handle the next message. Lock-free.
    pub fn current(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// Makes `next` the serving version; the one it replaces becomes the newest rollback
    /// target, and the oldest target beyond `keep` is let go.
    pub fn swap(&self, next: Arc<T>) -> Change<T> {
        let mut history = self.lock();
        let to = next;
        let from = self.current.swap(to.clone());
        history.previous.push_front(from.clone());
        let keep = history.keep;
        history.previous.truncate(keep);
        history.activation = Activation::now(Cause::Swap);
        Change { from, to }
    }

    /// Serves the newest replaced version that `target` accepts again. The serving version,
    /// and the replaced versions newer than the target, are let go (history is a stack: a
    /// rollback walks back in time). `None`: no kept version matches.
    pub fn rollback(&self, target: impl Fn(&T) -> bool) -> Option<Change<T>> {
        let mut history = self.lock();
        self.rollback_locked(&mut history, target)
    }

    /// Rolls back to the newest replaced version, but only if `expected` is still the serving
    /// version (so that a decision made on a version never undoes a later swap).
    pub fn rollback_if_current(&self, expected: &Arc<T>) -> Option<Change<T>> {
        let mut history = self.lock();
        if !Arc::ptr_eq(&self.current.load(), expected) {
            return None;
        }
        self.rollback_locked(&mut history, |_| true)
    }

    fn rollback_locked(
        &self,
        history: &mut History<T>,
        target: impl Fn(&T) -> bool,
    ) -> Option<Change<T>> {
        let index = history.previous.iter().position(|v| target(v))?;
        let to = history.previous.drain(..=index).next_back()?;
        let from = self.current.swap(to.clone());
        history.activation = Activation::now(Cause::Rollback);
        Some(Change { from, to })
    }

    /// Changes how many replaced versions are kept (the oldest beyond it are let go now).
    pub fn set_keep(&self, keep: usize) {
        let mut history = self.lock();
        history.keep = keep;
        history.previous.truncate(keep);
    }

    /// The kept replaced versions, newest first.
    pub fn previous(&self) -> Vec<Arc<T>> {
        self.lock().previous.iter().cloned().collect()
    }

    /// The serving version together with when and why it became current.
    pub fn serving(&self) -> (Arc<T>, Activation) {
        let history = self.lock();
        (self.current(), history.activation)
    }

    fn lock(&self) -> MutexGuard<'_, History<T>> {
        // A panic while holding the lock cannot leave the history half-changed in a way that
        // matters (every change is one swap of `current` plus deque edits): keep going.
        self.writers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Weak;

    #[derive(Debug, PartialEq)]
    struct V(&'static str);

    #[test]
    fn a_message_in_flight_keeps_its_version_and_frees_it_when_done() {
        // keep = 0: no rollback history, so only the message holds the old version.
        let slot = Versions::new(V("v1"), 0);
        let in_flight = slot.current();
        let old: Weak<V> = Arc::downgrade(&in_flight);

        let change = slot.swap(Arc::new(V("v2")));
        assert_eq!(change.from.0, "v1");
        drop(change);
        assert_eq!(slot.current().0, "v2", "the next message gets v2");
        assert_eq!(in_flight.0, "v1", "the message in flight still has v1");
        assert!(old.upgrade().is_some(), "v1 is alive while its message is");

        drop(in_flight);
        assert!(
            old.upgrade().is_none(),
            "v1 is freed when its last message is done"
        );
    }

    #[test]
    fn history_keeps_the_newest_replaced_versions_only() {
        let slot = Versions::new(V("v1"), 2);
        let v1 = Arc::downgrade(&slot.current());
        slot.swap(Arc::new(V("v2")));
        slot.swap(Arc::new(V("v3")));
        assert!(v1.upgrade().is_some(), "v1 is a rollback target");
        slot.swap(Arc::new(V("v4")));
        assert!(v1.upgrade().is_none(), "v1 fell out of the history");
        let previous: Vec<_> = slot.previous().iter().map(|v| v.0).collect();
        assert_eq!(previous, ["v3", "v2"]);
    }

    #[test]
    fn rollback_walks_back_and_lets_go_of_what_it_leaves() {
        let slot = Versions::new(V("v1"), 5);
        slot.swap(Arc::new(V("v2")));
        slot.swap(Arc::new(V("v3")));
        let v3 = Arc::downgrade(&slot.current());
        let change = slot.rollback(|_| true).expect("a previous version");
        assert_eq!((change.from.0, change.to.0), ("v3", "v2"));
        drop(change);
        assert!(v3.upgrade().is_none(), "a rolled-back version is not kept");
        assert_eq!(slot.serving().1.cause, Cause::Rollback);

        slot.swap(Arc::new(V("v4")));
        let change = slot.rollback(|v| v.0 == "v1").expect("v1 is kept");
        assert_eq!((change.from.0, change.to.0), ("v4", "v1"));
        assert!(slot.previous().is_empty(), "v2, newer than v1, went too");
        assert!(
            slot.rollback(|_| true).is_none(),
            "nothing left to roll back to"
        );
    }

    #[test]
    fn a_conditional_rollback_never_undoes_a_later_swap() {
        let slot = Versions::new(V("v1"), 5);
        slot.swap(Arc::new(V("bad")));
        let judged = slot.current();
        slot.swap(Arc::new(V("v3")));
        assert!(slot.rollback_if_current(&judged).is_none());
        assert_eq!(slot.current().0, "v3");
        let judged = slot.current();
        let change = slot.rollback_if_current(&judged).expect("still current");
        assert_eq!(change.to.0, "bad");
    }

    #[test]
    fn readers_racing_swaps_always_see_a_whole_version() {
        let slot = Arc::new(Versions::new(V("a"), 1));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let slot = slot.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let v = slot.current();
                        assert!(v.0 == "a" || v.0 == "b");
                    }
                })
            })
            .collect();
        for i in 0..2_000 {
            slot.swap(Arc::new(if i % 2 == 0 { V("b") } else { V("a") }));
        }
        for r in readers {
            r.join().unwrap();
        }
    }
}
