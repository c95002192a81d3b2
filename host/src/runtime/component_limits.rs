//! Per-component memory and time limits.
//!
//! Components differ by orders of magnitude: a Rust consumer's memory image is a few hundred
//! KiB, a Python one's (componentize-py: CPython and its heap, snapshotted) tens of MiB. So a
//! component may be given its own memory limit and call timeout — when it is pushed, or in the
//! components directory's `limits.toml` (`limits_file.rs`). The host-wide limits
//! (`TASKHOST_MEMORY_LIMIT_MIB`, `TASKHOST_CALL_TIMEOUT_MS`) are the defaults, and the
//! host-wide ceilings (`TASKHOST_MAX_MEMORY_LIMIT_MIB`, `TASKHOST_MAX_CALL_TIMEOUT_MS`) bound
//! what any component may be given: the pooling allocator's memory slots are sized for the
//! ceiling (`engine.rs`), so nothing above it could run anyway.
//!
//! A version's limits are fixed when it is loaded and travel with it: a rollback brings back
//! the version's own limits.

use super::limits::Limits;
use std::time::Duration;

/// What one component asks for instead of the host-wide defaults (`None`: the default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Largest linear memory of one instance, in MiB.
    pub memory_mib: Option<usize>,
    /// Wall-clock budget of one `handle` call, in milliseconds.
    pub call_timeout_ms: Option<u64>,
}

impl LimitOverrides {
    pub fn is_empty(&self) -> bool {
        self.memory_mib.is_none() && self.call_timeout_ms.is_none()
    }
}

/// Overrides, and where they were set: errors name the setting to change.
#[derive(Clone, Debug, Default)]
pub struct LimitRequest {
    pub overrides: LimitOverrides,
    /// `"the push"`, `"/srv/components/limits.toml [audit]"`, … (unused when there are none).
    pub source: String,
}

impl LimitRequest {
    pub fn new(overrides: LimitOverrides, source: impl Into<String>) -> Self {
        Self {
            overrides,
            source: source.into(),
        }
    }
}

/// The most any one component may be given.
#[derive(Clone, Debug)]
pub struct Ceilings {
    pub memory_bytes: usize,
    pub call_timeout: Duration,
}

impl Default for Ceilings {
    /// Room for a Python or JavaScript component (tens of MiB) by default, and for a slow
    /// first call; see `docs/` and `components/README.md` for what a larger slot costs.
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            call_timeout: Duration::from_secs(10),
        }
    }
}

/// The memory and time limits of one component version, resolved, with the setting each came
/// from (named in a dead letter's reason, so the operator knows what to change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentLimits {
    pub memory_bytes: usize,
    pub call_timeout: Duration,
    /// `TASKHOST_MEMORY_LIMIT_MIB`, or `memory_mib of the push`, or `memory_mib in <file> [name]`.
    pub memory_setting: String,
    pub timeout_setting: String,
}

impl ComponentLimits {
    /// The host-wide defaults, unchanged.
    pub fn defaults(limits: &Limits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            call_timeout: limits.call_timeout,
            memory_setting: "TASKHOST_MEMORY_LIMIT_MIB".into(),
            timeout_setting: "TASKHOST_CALL_TIMEOUT_MS".into(),
        }
    }

    /// The defaults with `request`'s overrides applied, each checked against its ceiling.
    pub fn resolve(
        defaults: &Limits,
        ceilings: &Ceilings,
        request: &LimitRequest,
    ) -> Result<Self, String> {
        let mut limits = Self::defaults(defaults);
        let LimitOverrides {
            memory_mib,
            call_timeout_ms,
        } = request.overrides;
        if let Some(mib) = memory_mib {
            let ceiling = ceilings.memory_bytes >> 20;
            if mib == 0 || mib > ceiling {
                return Err(format!(
                    "memory_mib = {mib} ({}) must be 1..={ceiling}: the host's ceiling is {ceiling} MiB \
                     (TASKHOST_MAX_MEMORY_LIMIT_MIB)",
                    request.source
                ));
            }
            limits.memory_bytes = mib << 20;
            limits.memory_setting = format!("memory_mib of {}", request.source);
        }
        if let Some(ms) = call_timeout_ms {
            let ceiling = ceilings.call_timeout.as_millis() as u64;
            if ms == 0 || ms > ceiling {
                return Err(format!(
                    "call_timeout_ms = {ms} ({}) must be 1..={ceiling}: the host's ceiling is {ceiling} ms \
                     (TASKHOST_MAX_CALL_TIMEOUT_MS)",
                    request.source
                ));
            }
            limits.call_timeout = Duration::from_millis(ms);
            limits.timeout_setting = format!("call_timeout_ms of {}", request.source);
        }
        Ok(limits)
    }

    /// An instance that cannot even start within its memory limit would fail every message:
    /// refused at load, saying how much it needs (`start`, its memory image) and which setting
    /// gives it more.
    pub fn check_image_fits(&self, name: &str, start: usize) -> Result<(), String> {
        if start <= self.memory_bytes {
            return Ok(());
        }
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        Err(format!(
            "component `{name}` needs {:.1} MiB of linear memory to start (its memory image), more than \
             its memory limit of {:.0} MiB ({}); give it more with `--memory-mib` at push or `memory_mib` \
             in the components directory's limits.toml",
            mib(start),
            mib(self.memory_bytes),
            self.memory_setting,
        ))
    }

    /// As the admin API and `taskhost build` show them.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "memory_mib": self.memory_bytes as f64 / (1 << 20) as f64,
            "memory_setting": self.memory_setting,
            "call_timeout_ms": self.call_timeout.as_millis() as u64,
            "call_timeout_setting": self.timeout_setting,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(memory_mib: Option<usize>, call_timeout_ms: Option<u64>) -> LimitRequest {
        LimitRequest::new(
            LimitOverrides {
                memory_mib,
                call_timeout_ms,
            },
            "the push",
        )
    }

    #[test]
    fn no_overrides_are_the_host_defaults() {
        let limits = ComponentLimits::resolve(
            &Limits::default(),
            &Ceilings::default(),
            &request(None, None),
        )
        .unwrap();
        assert_eq!(limits, ComponentLimits::defaults(&Limits::default()));
        assert_eq!(limits.memory_setting, "TASKHOST_MEMORY_LIMIT_MIB");
    }

    #[test]
    fn overrides_apply_and_name_their_source() {
        let limits = ComponentLimits::resolve(
            &Limits::default(),
            &Ceilings::default(),
            &request(Some(160), Some(2000)),
        )
        .unwrap();
        assert_eq!(limits.memory_bytes, 160 << 20);
        assert_eq!(limits.call_timeout, Duration::from_secs(2));
        assert_eq!(limits.memory_setting, "memory_mib of the push");
        assert_eq!(limits.timeout_setting, "call_timeout_ms of the push");
    }

    #[test]
    fn overrides_above_the_ceiling_or_zero_are_refused() {
        let ceilings = Ceilings {
            memory_bytes: 128 << 20,
            call_timeout: Duration::from_secs(1),
        };
        let err =
            ComponentLimits::resolve(&Limits::default(), &ceilings, &request(Some(129), None))
                .unwrap_err();
        assert!(
            err.contains("memory_mib = 129 (the push) must be 1..=128"),
            "{err}"
        );
        assert!(err.contains("TASKHOST_MAX_MEMORY_LIMIT_MIB"), "{err}");
        let err = ComponentLimits::resolve(&Limits::default(), &ceilings, &request(None, Some(0)))
            .unwrap_err();
        assert!(err.contains("call_timeout_ms = 0"), "{err}");
        assert!(err.contains("TASKHOST_MAX_CALL_TIMEOUT_MS"), "{err}");
    }
}
