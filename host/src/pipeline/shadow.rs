//! The hand-over to the shadows (`crate::rollout`): after the serving calls of a message, and
//! before their effects are completed and committed, what each serving version answered goes
//! with the message to its component's shadow, if it has one. It only queues: the shadow call
//! runs on the rollout's own threads, and this message's commit does not wait for it.

use super::call::Called;
use crate::domain::Message;
use crate::rollout::{Rollouts, Served};
use crate::runtime::{LoadedComponent, wit};
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub(super) fn hand_over(
    rollouts: &Rollouts,
    topic: &str,
    message: &Message,
    wit_message: wit::Message,
    now: DateTime<Utc>,
    versions: &[Arc<LoadedComponent>],
    calls: &[Called],
) {
    // Only the versions with a shadow: what the others answered is not copied.
    let served: Vec<Served> = versions
        .iter()
        .zip(calls)
        .filter(|(version, _)| rollouts.shadows(&version.name))
        .map(|(version, called)| Served {
            version: version.clone(),
            effects: match called {
                Ok(effects) => Ok(effects.clone()),
                Err(failure) => Err(failure.to_string()),
            },
        })
        .collect();
    if served.is_empty() {
        return;
    }
    rollouts.shadow(
        topic,
        message.event_id().as_str(),
        wit_message,
        now.timestamp_millis(),
        served,
    );
}
