//! Hot swap: a new version of a component is compiled and checked off the hot path, then made
//! the serving version of its slot in one atomic step; rollback makes a kept version serve
//! again.
//!
//! What a new version must pass before it takes traffic (else it is refused with the reason
//! and the serving version keeps serving):
//! - it is a wasm component (not a core module, not a truncated file) and compiles;
//! - it targets the `todo:events/consumer@0.1.0` world: its imports resolve against the host's
//!   linker and it exports `todo:events/handler@0.1.0` with the expected types;
//! - its `describe()` runs and names the slot it is pushed to (`audit` can only replace
//!   `audit`), with topics that taskhost can decode.
//!
//! Its topics may differ from the version it replaces: routing reads the serving version's
//! topics for every message (see `registry.rs`), so it follows the swap at once. (Through Dapr,
//! the sidecar reads the subscriptions only when it starts: see the README, "Hot swap".)

use super::component::{LoadError, LoadedComponent};
use super::component_limits::{LimitOverrides, LimitRequest};
use super::registry::{ComponentSlot, JournalEntry, Registry};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error(
        "no component named `{name}` is loaded (loaded: {loaded}); hot swap replaces a version, \
         a new component needs a restart with its .wasm in the components directory"
    )]
    UnknownComponent { name: String, loaded: String },
    #[error("refused: {0}")]
    Invalid(#[from] LoadError),
    #[error(
        "refused: {origin} is the component `{found}`, not `{expected}`; push it to \
         /admin/components/{found} if that is what you meant"
    )]
    NameMismatch {
        origin: String,
        expected: String,
        found: String,
    },
    #[error("no earlier version of `{name}` is kept{}", target.as_ref().map(|t| format!(" that matches `{t}`")).unwrap_or_default())]
    NoPrevious {
        name: String,
        target: Option<String>,
    },
    #[error("validating the new version was interrupted: {0}")]
    Interrupted(String),
}

/// What a swap or a rollback did.
#[derive(Debug)]
pub struct Swapped {
    pub from: Arc<LoadedComponent>,
    pub to: Arc<LoadedComponent>,
    /// The pushed bytes are the serving version already: nothing changed.
    pub unchanged: bool,
    pub topics_added: Vec<String>,
    pub topics_removed: Vec<String>,
    /// Compiling and checking the new version (zero for a rollback).
    pub validation: Duration,
}

impl Swapped {
    pub(super) fn new(
        from: Arc<LoadedComponent>,
        to: Arc<LoadedComponent>,
        validation: Duration,
    ) -> Self {
        let diff = |a: &LoadedComponent, b: &LoadedComponent| {
            a.topics
                .iter()
                .filter(|t| !b.topics.contains(t))
                .cloned()
                .collect()
        };
        Self {
            topics_added: diff(&to, &from),
            topics_removed: diff(&from, &to),
            unchanged: Arc::ptr_eq(&from, &to),
            from,
            to,
            validation,
        }
    }
}

impl Registry {
    /// Validates `bytes` as the next version of `name` on the blocking pool (compiling takes
    /// milliseconds to seconds; messages keep flowing meanwhile), then swaps it in. `origin`
    /// names the source in logs and errors (a path, "upload"). Its limits are those of the
    /// components directory's `limits.toml`, else the host's defaults.
    pub async fn swap_bytes(
        &self,
        name: &str,
        bytes: Vec<u8>,
        origin: &str,
    ) -> Result<Swapped, SwapError> {
        self.swap_bytes_with(name, bytes, origin, None).await
    }

    /// As [`Registry::swap_bytes`], with the limits given at push (`None`: those of
    /// `limits.toml`, else the defaults). Limits belong to the version: a later push without
    /// any does not inherit them, and a rollback brings back the old version's own.
    pub async fn swap_bytes_with(
        &self,
        name: &str,
        bytes: Vec<u8>,
        origin: &str,
        pushed: Option<LimitOverrides>,
    ) -> Result<Swapped, SwapError> {
        let started = Instant::now();
        let next = self.validate_bytes(name, bytes, origin, pushed).await?;
        let validation = started.elapsed();
        let slot = self.known_slot(name)?;
        let current = slot.current();
        if current.digest == next.digest {
            tracing::info!(component = %slot.name, version = %current.version, %origin, "same bytes as the serving version: nothing to swap");
            return Ok(Swapped::new(current.clone(), current, validation));
        }
        let change = slot.versions().swap(Arc::new(next));
        let swapped = Swapped::new(change.from, change.to, validation);
        log_swap(slot, &swapped, "swap", origin, None);
        Ok(swapped)
    }

    /// Compiles and checks `bytes` as a version of `name` (on the blocking pool), without
    /// making it serve: what a swap does before its atomic step, and what a shadow or canary
    /// candidate (`crate::rollout`) is loaded with. A refusal is recorded in the journal.
    pub async fn validate_bytes(
        &self,
        name: &str,
        bytes: Vec<u8>,
        origin: &str,
        pushed: Option<LimitOverrides>,
    ) -> Result<LoadedComponent, SwapError> {
        let slot = self.known_slot(name)?;
        let runtime = self.runtime().clone();
        let source = origin.to_string();
        let request = match pushed {
            Some(overrides) => Ok(LimitRequest::new(overrides, "the push")),
            None => self.limits_file().map(|file| file.request_for(name)),
        };
        let loaded = tokio::task::spawn_blocking(move || {
            runtime.load_bytes_with(&bytes, &source, &|_| request.clone())
        })
        .await;
        let checked = match loaded {
            Err(e) => Err(SwapError::Interrupted(e.to_string())),
            Ok(Err(e)) => Err(SwapError::Invalid(e)),
            Ok(Ok(c)) if c.name != slot.name => Err(SwapError::NameMismatch {
                origin: origin.to_string(),
                expected: slot.name.clone(),
                found: c.name.clone(),
            }),
            Ok(Ok(c)) => Ok(c),
        };
        checked.inspect_err(|e| {
            tracing::warn!(component = %slot.name, %origin, error = %e, "new version refused; the serving version keeps serving");
            slot.record(entry("refused", None, None, origin, Some(e.to_string())));
        })
    }

    /// Makes an already loaded version (a canary being promoted) the serving version of
    /// `name` in one atomic step, recorded in the journal as `action` by `origin` for `reason`.
    pub fn serve(
        &self,
        name: &str,
        next: Arc<LoadedComponent>,
        action: &'static str,
        origin: &str,
        reason: Option<String>,
    ) -> Result<Swapped, SwapError> {
        let slot = self.known_slot(name)?;
        let change = slot.versions().swap(next);
        let swapped = Swapped::new(change.from, change.to, Duration::ZERO);
        log_swap(slot, &swapped, action, origin, reason);
        Ok(swapped)
    }

    /// Serves a kept earlier version again: the newest one, or the newest whose version or
    /// digest (prefix) is `target`. Instant: nothing is compiled.
    pub fn rollback(
        &self,
        name: &str,
        target: Option<&str>,
        origin: &str,
    ) -> Result<Swapped, SwapError> {
        self.rollback_for(name, target, origin, None)
    }

    /// As [`Registry::rollback`], with why, for the journal.
    pub fn rollback_for(
        &self,
        name: &str,
        target: Option<&str>,
        origin: &str,
        reason: Option<String>,
    ) -> Result<Swapped, SwapError> {
        let slot = self.known_slot(name)?;
        let change = slot
            .versions()
            .rollback(|v| target.is_none_or(|t| v.version == t || v.digest.starts_with(t)))
            .ok_or_else(|| SwapError::NoPrevious {
                name: name.to_string(),
                target: target.map(String::from),
            })?;
        let swapped = Swapped::new(change.from, change.to, Duration::ZERO);
        log_rollback(slot, &swapped, "rollback", origin, reason);
        Ok(swapped)
    }

    fn known_slot(&self, name: &str) -> Result<&Arc<ComponentSlot>, SwapError> {
        self.slot(name).ok_or_else(|| SwapError::UnknownComponent {
            name: name.to_string(),
            loaded: self
                .slots()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

fn log_swap(
    slot: &ComponentSlot,
    swapped: &Swapped,
    action: &'static str,
    origin: &str,
    reason: Option<String>,
) {
    tracing::info!(
        component = %slot.name, action, from = %swapped.from.version, from_digest = swapped.from.short_digest(),
        to = %swapped.to.version, to_digest = swapped.to.short_digest(), %origin,
        validation_ms = swapped.validation.as_millis() as u64,
        topics_added = ?swapped.topics_added, topics_removed = ?swapped.topics_removed,
        "swapped: new messages go to the new version, messages in flight finish on the old one"
    );
    slot.record(entry(
        action,
        Some(&swapped.from),
        Some(&swapped.to),
        origin,
        reason,
    ));
}

pub(super) fn log_rollback(
    slot: &ComponentSlot,
    swapped: &Swapped,
    action: &'static str,
    origin: &str,
    reason: Option<String>,
) {
    tracing::warn!(
        component = %slot.name, action, from = %swapped.from.version, from_digest = swapped.from.short_digest(),
        to = %swapped.to.version, to_digest = swapped.to.short_digest(), %origin, reason = reason.as_deref().unwrap_or(""),
        "rolled back: new messages go to the earlier version"
    );
    slot.record(entry(
        action,
        Some(&swapped.from),
        Some(&swapped.to),
        origin,
        reason,
    ));
}

/// A journal entry about `from` → `to` (either may be absent), now.
pub fn entry(
    action: &'static str,
    from: Option<&LoadedComponent>,
    to: Option<&LoadedComponent>,
    origin: &str,
    reason: Option<String>,
) -> JournalEntry {
    let label = |c: &LoadedComponent| format!("{}@{}", c.version, c.short_digest());
    JournalEntry {
        at: chrono::Utc::now(),
        action,
        from: from.map(label),
        to: to.map(label),
        origin: origin.to_string(),
        reason,
    }
}
