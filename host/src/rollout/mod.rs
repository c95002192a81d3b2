//! Shadow runs and canary rollouts: a candidate version of a component beside its serving
//! version, on live traffic.
//!
//! - **Shadow** ([`Mode::Shadow`]): the candidate is called on every message the serving
//!   version gets, on its own fresh instance with the same `now`, off the serving path
//!   (`shadow.rs`: its own threads behind a bounded queue); its effects are compared with the
//!   serving version's (`diff.rs`) and never applied. What differs is kept in its
//!   [`Report`](report::Report).
//! - **Canary** ([`Mode::Canary`]): a stable slice of users (`bucket.rs`) is routed to the
//!   candidate, whose effects are applied like any version's; `guard.rs` ends a canary whose
//!   own failure rate crosses the automatic-rollback threshold.
//! - Shadow → canary, canary → serving ([`Rollouts::promote`]) and ending either
//!   ([`Rollouts::end`]) are each one atomic step, recorded in the component's journal with
//!   who, when and why.
//!
//! The pipeline asks two things per message, both lock-free: which version serves this user
//! ([`Rollouts::route`]) and, after the serving calls, whether a shadow wants the message
//! ([`Rollouts::shadowing`], [`Rollouts::shadow`]). Nothing here survives a restart: the host
//! starts with the components directory, as it always has.

pub mod bucket;
pub mod candidate;
pub mod diff;
pub mod guard;
pub mod report;
mod shadow;

pub use candidate::{Candidate, Mode};
pub use report::{Counts, Outcome, Sample};
pub use shadow::Served;

use crate::runtime::swap::entry;
use crate::runtime::{LimitOverrides, LoadedComponent, Registry, SwapError, Swapped, wit};
use arc_swap::ArcSwapOption;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Why a rollout step was refused.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error(transparent)]
    Swap(#[from] SwapError),
    #[error(
        "`{name}` already has a {mode} candidate, {candidate}: promote it or roll it back first"
    )]
    Busy {
        name: String,
        mode: &'static str,
        candidate: String,
    },
    #[error("no shadow or canary of `{0}` is running")]
    NoCandidate(String),
    #[error("refused: {origin} is {version} of `{name}`, the serving version already")]
    AlreadyServing {
        name: String,
        origin: String,
        version: String,
    },
    #[error("a canary takes 1 to 100 percent of the users, not {0}")]
    Percent(u32),
}

/// Who asked for a step, and why: written to the journal.
#[derive(Clone, Debug)]
pub struct Actor {
    /// A person or a tool (`admin API (by alice)`, `guard`).
    pub who: String,
    pub reason: Option<String>,
}

/// The candidates of every component. One per process, held by the pipeline.
pub struct Rollouts {
    registry: Arc<Registry>,
    /// By component name; the names are fixed at start-up, as the registry's are.
    slots: BTreeMap<String, ArcSwapOption<Candidate>>,
    /// How many candidates are in each mode: the per-message checks read only these.
    shadows: AtomicUsize,
    canaries: AtomicUsize,
    /// Serializes the steps (rare), so that two cannot interleave.
    steps: Mutex<()>,
    threads: shadow::ShadowThreads,
    samples: usize,
}

impl Rollouts {
    /// No candidates; shadow calls keep [`report::SAMPLES`] samples each.
    pub fn new(registry: Arc<Registry>) -> Self {
        Self::with_samples(registry, report::SAMPLES)
    }

    /// As [`Rollouts::new`], keeping `samples` differences per shadow.
    pub fn with_samples(registry: Arc<Registry>, samples: usize) -> Self {
        let slots = registry
            .slots()
            .map(|s| (s.name.clone(), ArcSwapOption::empty()))
            .collect();
        Self {
            threads: shadow::ShadowThreads::start(registry.runtime().clone()),
            registry,
            slots,
            shadows: AtomicUsize::new(0),
            canaries: AtomicUsize::new(0),
            steps: Mutex::new(()),
            samples,
        }
    }

    /// The candidate of `name`, if any.
    pub fn candidate(&self, name: &str) -> Option<Arc<Candidate>> {
        self.slots.get(name).and_then(|s| s.load_full())
    }

    /// Every current candidate, by component name.
    pub fn candidates(&self) -> Vec<(String, Arc<Candidate>)> {
        self.slots
            .iter()
            .filter_map(|(name, s)| s.load_full().map(|c| (name.clone(), c)))
            .collect()
    }

    /// Validates `bytes` as a version of `name` (as a hot swap does: same checks, same
    /// limits) and makes it the component's candidate in `mode`.
    pub async fn start(
        &self,
        name: &str,
        bytes: Vec<u8>,
        origin: &str,
        limits: Option<LimitOverrides>,
        mode: Mode,
        actor: &Actor,
    ) -> Result<Arc<Candidate>, RolloutError> {
        check_mode(mode)?;
        self.free(name)?;
        let loaded = self
            .registry
            .validate_bytes(name, bytes, origin, limits)
            .await?;
        let _steps = self.lock();
        let slot = self.free(name)?;
        let component = self.registry.slot(name).expect("a known component");
        let serving = component.current();
        if serving.digest == loaded.digest {
            return Err(RolloutError::AlreadyServing {
                name: name.into(),
                origin: origin.into(),
                version: serving.version.clone(),
            });
        }
        let candidate = Arc::new(Candidate::new(
            Arc::new(loaded),
            mode,
            Arc::new(report::Report::new(self.samples, shadow::FIELDS)),
        ));
        self.count(mode, 1);
        slot.store(Some(candidate.clone()));
        component.record(entry(
            mode.label(),
            Some(&serving),
            Some(&candidate.version),
            &actor.who,
            actor.reason.clone(),
        ));
        tracing::info!(component = name, mode = mode.label(), candidate = %candidate.label(), serving = %serving.version, who = %actor.who, "candidate started");
        Ok(candidate)
    }

    /// Turns the shadow of `name` into a canary at `percent` (or changes a canary's share), in
    /// one step: from the next message on, that slice of users is served by the candidate.
    pub fn canary(
        &self,
        name: &str,
        percent: u32,
        actor: &Actor,
    ) -> Result<Arc<Candidate>, RolloutError> {
        let mode = Mode::Canary {
            percent: u8::try_from(percent).map_err(|_| RolloutError::Percent(percent))?,
        };
        check_mode(mode)?;
        let _steps = self.lock();
        let (slot, current) = self.current(name)?;
        let next = Arc::new(current.with_mode(mode));
        self.count(mode, 1);
        slot.store(Some(next.clone()));
        self.count(current.mode, -1);
        self.journal(name, "canary", &next.version, actor);
        tracing::info!(component = name, percent, from = current.mode.label(), candidate = %next.label(), who = %actor.who, "canary");
        Ok(next)
    }

    /// Makes the candidate of `name` the serving version for everyone, in one step (a hot swap
    /// to it: the replaced version is kept for rollback), and ends the candidate.
    pub fn promote(&self, name: &str, actor: &Actor) -> Result<Swapped, RolloutError> {
        let _steps = self.lock();
        let (slot, current) = self.current(name)?;
        // Serving first, then the candidate gone: a message routed in between gets the
        // candidate either way.
        let swapped = self.registry.serve(
            name,
            current.version.clone(),
            "promote",
            &actor.who,
            actor.reason.clone(),
        )?;
        slot.store(None);
        self.count(current.mode, -1);
        crate::metrics::swap(name);
        Ok(swapped)
    }

    /// Ends the candidate of `name` (a rollback of a shadow or a canary): from the next message
    /// on, everyone is served by the serving version again. `action` names it in the journal.
    pub fn end(
        &self,
        name: &str,
        action: &'static str,
        actor: &Actor,
    ) -> Result<Arc<Candidate>, RolloutError> {
        self.end_if(name, action, actor, |_| true)
    }

    /// As [`Rollouts::end`], if `judged` says yes to the candidate (under the step lock, so
    /// that a decision made on one candidate never ends a newer one).
    pub(super) fn end_if(
        &self,
        name: &str,
        action: &'static str,
        actor: &Actor,
        judged: impl Fn(&Arc<Candidate>) -> bool,
    ) -> Result<Arc<Candidate>, RolloutError> {
        let _steps = self.lock();
        let (slot, current) = self.current(name)?;
        if !judged(&current) {
            return Err(RolloutError::NoCandidate(name.into()));
        }
        slot.store(None);
        self.count(current.mode, -1);
        self.journal(name, action, &current.version, actor);
        tracing::warn!(component = name, action, mode = current.mode.label(), candidate = %current.label(), who = %actor.who, reason = actor.reason.as_deref().unwrap_or(""), "candidate ended");
        Ok(current)
    }

    /// Per message, before the calls: replaces, in `versions` (the serving versions the
    /// registry routed `topic` to), each component whose canary takes `user_id` by its
    /// candidate. One atomic load when no canary runs.
    pub fn route(&self, versions: &mut [Arc<LoadedComponent>], topic: &str, user_id: &str) {
        if self.canaries.load(Ordering::Acquire) == 0 {
            return;
        }
        for version in versions.iter_mut() {
            let Some(candidate) = self.candidate(&version.name) else {
                continue;
            };
            if let Mode::Canary { percent } = candidate.mode
                && candidate.version.topics.iter().any(|t| t == topic)
                && bucket::takes(user_id, percent)
            {
                *version = candidate.version.clone();
            }
        }
    }

    /// Whether any shadow runs (one atomic load): only then does the pipeline keep what
    /// [`Rollouts::shadow`] needs.
    pub fn shadowing(&self) -> bool {
        self.shadows.load(Ordering::Acquire) > 0
    }

    /// Whether `name` has a shadow now: only for those does the pipeline copy what the
    /// serving version answered.
    pub fn shadows(&self, name: &str) -> bool {
        self.candidate(name)
            .is_some_and(|candidate| candidate.mode == Mode::Shadow)
    }

    /// After the serving calls of one message: hands the message, with what each serving
    /// version answered, to the shadows of those components. Never waits: a full queue counts
    /// the call as skipped.
    pub fn shadow(
        &self,
        topic: &str,
        event_id: &str,
        message: wit::Message,
        now_ms: i64,
        served: Vec<Served>,
    ) {
        let message = Arc::new(message);
        for served in served {
            let Some(candidate) = self.candidate(&served.version.name) else {
                continue;
            };
            if candidate.mode != Mode::Shadow {
                continue;
            }
            self.threads.submit(shadow::Job {
                candidate,
                served,
                topic: topic.to_string(),
                event_id: event_id.to_string(),
                message: message.clone(),
                now_ms,
                queued: std::time::Instant::now(),
            });
        }
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn journal(&self, name: &str, action: &'static str, to: &LoadedComponent, actor: &Actor) {
        if let Some(component) = self.registry.slot(name) {
            let serving = component.current();
            component.record(entry(
                action,
                Some(&serving),
                Some(to),
                &actor.who,
                actor.reason.clone(),
            ));
        }
    }

    /// The slot of `name`, if it has no candidate.
    fn free(&self, name: &str) -> Result<&ArcSwapOption<Candidate>, RolloutError> {
        let slot = self.slots.get(name).ok_or_else(|| {
            RolloutError::Swap(SwapError::UnknownComponent {
                name: name.into(),
                loaded: self.slots.keys().cloned().collect::<Vec<_>>().join(", "),
            })
        })?;
        match slot.load_full() {
            None => Ok(slot),
            Some(c) => Err(RolloutError::Busy {
                name: name.into(),
                mode: c.mode.label(),
                candidate: c.label(),
            }),
        }
    }

    /// The slot of `name` and its candidate.
    fn current(
        &self,
        name: &str,
    ) -> Result<(&ArcSwapOption<Candidate>, Arc<Candidate>), RolloutError> {
        let slot = self
            .slots
            .get(name)
            .ok_or_else(|| RolloutError::NoCandidate(name.into()))?;
        let current = slot
            .load_full()
            .ok_or_else(|| RolloutError::NoCandidate(name.into()))?;
        Ok((slot, current))
    }

    fn count(&self, mode: Mode, delta: isize) {
        let counter = match mode {
            Mode::Shadow => &self.shadows,
            Mode::Canary { .. } => &self.canaries,
        };
        if delta > 0 {
            counter.fetch_add(delta as usize, Ordering::AcqRel);
        } else {
            counter.fetch_sub(delta.unsigned_abs(), Ordering::AcqRel);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.steps.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn check_mode(mode: Mode) -> Result<(), RolloutError> {
    match mode {
        Mode::Canary { percent } if !(1..=100).contains(&percent) => {
            Err(RolloutError::Percent(percent.into()))
        }
        _ => Ok(()),
    }
}
