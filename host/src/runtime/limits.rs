//! What one component call may use. Every limit is per call, so a component that hits one
//! fails that message only.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock budget for one `handle` call (enforced by epoch interruption); the default
    /// of components not given their own.
    pub call_timeout: Duration,
    /// Largest linear memory an instance may hold, all its memories together (the default of
    /// components not given their own: see `component_limits.rs`).
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

/// The memory cap of one call's store. Unlike wasmtime's `StoreLimits` it remembers that the
/// cap was hit, so the failure is reported as "over the memory limit" rather than as an
/// anonymous trap (a guest that checks `memory.grow` and aborts would otherwise look like any
/// other crash).
pub struct MemoryCap {
    limit: usize,
    /// The largest size the guest asked for beyond the limit, if it did.
    pub exceeded: Option<usize>,
    /// The most linear memory this instance held at once, all its memories together: what one
    /// instance of the component costs (shown per version by the admin API).
    pub peak: usize,
    /// Linear memory granted now, all memories together. Memories are created at their
    /// initial size (for Python, an image of tens of MiB) and grown from there.
    granted: usize,
}

impl MemoryCap {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            exceeded: None,
            peak: 0,
            granted: 0,
        }
    }
}

/// The trap raised when a guest grows its memory past the cap.
#[derive(Debug, thiserror::Error)]
#[error("memory growth to {desired} bytes refused: the limit is {limit} bytes")]
pub struct MemoryLimitExceeded {
    pub desired: usize,
    pub limit: usize,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The limit is on the instance, not on each memory: a component made of several core
        // modules (Python, JavaScript) has several memories.
        let total = self.granted - current.min(self.granted) + desired;
        if total > self.limit || maximum.is_some_and(|m| desired > m) {
            self.exceeded = Some(self.exceeded.unwrap_or(0).max(total));
            // A trap, not a failed `memory.grow`: the guest cannot carry on with less memory
            // than it asked for, and a trap names the limit in the dead letter.
            return Err(MemoryLimitExceeded {
                desired: total,
                limit: self.limit,
            }
            .into());
        }
        self.granted = total;
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|m| desired <= m))
    }
}
