//! Automatic rollback: watches each newly swapped-in version during its probation window and
//! rolls it back when its failure rate crosses the threshold ([`AutoRollback`]).
//!
//! It reads the per-version counters every [`TICK`], off the message path: a message never
//! waits for it. A failing version therefore serves for at most about one tick after reaching
//! `min_messages`; the messages it failed are answered `RETRY` like any failed call, and their
//! redelivery finds the earlier version again.

use super::policy::AutoRollback;
use super::registry::Registry;
use super::swap::{Swapped, log_rollback};
use super::versions::Cause;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the counters are read.
pub const TICK: Duration = Duration::from_millis(100);

/// Runs until `shutdown` (returns at once if the policy has no automatic rollback).
pub async fn guard(registry: Arc<Registry>, shutdown: CancellationToken) {
    let Some(policy) = registry.policy().auto_rollback.clone() else {
        return;
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => check(&registry, &policy),
        }
    }
}

/// One look at every slot; rolls back what crossed the threshold.
pub fn check(registry: &Registry, policy: &AutoRollback) {
    for slot in registry.slots() {
        let (serving, activation) = slot.serving();
        if activation.cause != Cause::Swap || activation.at.elapsed() > policy.window {
            continue;
        }
        let stats = serving.stats.snapshot();
        if stats.messages < policy.min_messages.max(1) {
            continue;
        }
        let rate = stats.errors() as f64 / stats.messages as f64;
        if rate < policy.failure_rate {
            continue;
        }
        let Some(change) = slot.versions().rollback_if_current(&serving) else {
            continue;
        };
        let reason = format!(
            "{} of its first {} messages failed ({} traps or timeouts, {} retries, {} drops), \
             at least {:.0}% within {:?} of the swap",
            stats.errors(),
            stats.messages,
            stats.traps,
            stats.retries,
            stats.drops,
            policy.failure_rate * 100.0,
            policy.window
        );
        let swapped = Swapped::new(change.from, change.to, Duration::ZERO);
        log_rollback(slot, &swapped, "auto-rollback", "guard", Some(reason));
    }
}
