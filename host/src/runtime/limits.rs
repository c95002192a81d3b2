//! What one component call may use. Every limit is per call, so a component that hits one
//! fails that message only.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock budget for one `handle` call (enforced by epoch interruption).
    pub call_timeout: Duration,
    /// Largest linear memory an instance may grow to.
    pub memory_bytes: usize,
    /// Most effects one call may return.
    pub max_effects: usize,
    /// Most bytes of text (ids, titles, payloads, ...) all effects of one call may carry.
    pub max_effect_bytes: usize,
    /// Most stderr bytes kept per call; the rest is cut (and the cut is logged).
    pub max_stderr_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_millis(500),
            memory_bytes: 64 << 20,
            max_effects: 256,
            max_effect_bytes: 4 << 20,
            max_stderr_bytes: 64 << 10,
        }
    }
}
