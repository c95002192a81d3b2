//! The canary's own automatic rollback: a canary whose failure rate crosses the threshold of
//! [`AutoRollback`] (the same one the serving version's probation uses, `runtime/guard.rs`) is
//! ended, and its users go back to the serving version. The canary is measured apart from the
//! serving version: on its own calls since it began, shadow calls excluded.
//!
//! It reads the counters every [`TICK`], off the message path, as the serving guard does. The
//! messages the canary failed are answered `RETRY` like any failed call; their redelivery finds
//! the serving version.

use super::{Actor, Mode, Rollouts};
use crate::runtime::AutoRollback;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const TICK: Duration = Duration::from_millis(100);

/// Runs until `shutdown` (returns at once if the policy has no automatic rollback).
pub async fn guard(rollouts: Arc<Rollouts>, shutdown: CancellationToken) {
    let Some(policy) = rollouts.registry().policy().auto_rollback.clone() else {
        return;
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => check(&rollouts, &policy),
        }
    }
}

/// One look at every canary; ends what crossed the threshold within the window.
pub fn check(rollouts: &Rollouts, policy: &AutoRollback) {
    for (name, candidate) in rollouts.candidates() {
        if !matches!(candidate.mode, Mode::Canary { .. })
            || candidate.started.elapsed() > policy.window
        {
            continue;
        }
        let (calls, failures) = candidate.canary_calls();
        if calls < policy.min_messages.max(1) {
            continue;
        }
        let rate = failures as f64 / calls as f64;
        if rate < policy.failure_rate {
            continue;
        }
        let reason = format!(
            "{failures} of the canary's first {calls} messages failed, at least {:.0}% within {:?} of its start",
            policy.failure_rate * 100.0,
            policy.window
        );
        let actor = Actor {
            who: "guard".into(),
            reason: Some(reason),
        };
        // Only the canary judged here: a newer candidate pushed meanwhile is not ended.
        let ended = rollouts.end_if(&name, "canary-auto-rollback", &actor, |c| {
            Arc::ptr_eq(c, &candidate)
        });
        if ended.is_ok() {
            crate::metrics::rollback(&name, "canary");
        }
    }
}
