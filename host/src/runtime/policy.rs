//! How hot swaps are handled: how many replaced versions are kept for rollback, and when a new
//! version is rolled back without anyone asking. Read by the registry, the swap and the guard.

use std::time::Duration;

/// How swaps are handled.
#[derive(Clone, Debug)]
pub struct SwapPolicy {
    /// Replaced versions kept per component for instant rollback.
    pub keep_versions: usize,
    /// `None`: never roll back on its own.
    pub auto_rollback: Option<AutoRollback>,
}

impl Default for SwapPolicy {
    fn default() -> Self {
        Self {
            keep_versions: 5,
            auto_rollback: Some(AutoRollback::default()),
        }
    }
}

/// When a swapped-in version is rolled back without anyone asking: if, within `window` of
/// becoming current, at least `min_messages` calls were made on it and the share of them that
/// failed (trap, timeout, `failure::retry`, `failure::drop`, effect limits) reaches
/// `failure_rate`. After the window the version is trusted like any other. Versions loaded at
/// start-up or made current by a rollback are never rolled back automatically.
#[derive(Clone, Debug)]
pub struct AutoRollback {
    pub window: Duration,
    pub failure_rate: f64,
    pub min_messages: u64,
}

impl Default for AutoRollback {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            failure_rate: 0.5,
            min_messages: 20,
        }
    }
}
