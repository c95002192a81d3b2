//! What one call produced: the component's own answer, or why there is none ([`CallError`]).

use super::bindings::wit;

/// Why a call produced no answer from the component. Each is contained to this one call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("timed out: ran past the call timeout of {0:?} (TASKHOST_CALL_TIMEOUT_MS)")]
    Timeout(std::time::Duration),
    #[error(
        "exceeded the memory limit: asked for {desired} bytes, the limit is {limit} bytes (TASKHOST_MEMORY_LIMIT_MIB)"
    )]
    MemoryLimit { desired: usize, limit: usize },
    #[error("trapped: {0}")]
    Trap(String),
    #[error("could not instantiate: {0}")]
    Instantiate(String),
    #[error("returned {count} effects, more than the limit of {max} (TASKHOST_MAX_EFFECTS)")]
    TooManyEffects { count: usize, max: usize },
    #[error(
        "returned {bytes} bytes of effects, more than the limit of {max} (TASKHOST_MAX_EFFECT_BYTES)"
    )]
    EffectsTooLarge { bytes: usize, max: usize },
}

/// What the component answered.
pub type Answer = Result<Vec<wit::Effect>, wit::Failure>;
