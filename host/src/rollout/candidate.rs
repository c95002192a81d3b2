//! A candidate version of one component: loaded and validated like a hot swap, but not
//! serving. It runs in one of two modes ([`Mode`]); a change of mode replaces the whole
//! [`Candidate`] in one atomic store, keeping its report.

use super::report::Report;
use crate::runtime::{LoadedComponent, StatsSnapshot};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Instant;

/// What a candidate does with the messages of its component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Called on every message the serving version gets, its effects compared, never applied.
    Shadow,
    /// Serves the users whose bucket (`bucket.rs`) is below `percent`; its effects are applied.
    Canary { percent: u8 },
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Shadow => "shadow",
            Mode::Canary { .. } => "canary",
        }
    }
}

/// One component's candidate, as it is now.
#[derive(Debug)]
pub struct Candidate {
    pub version: Arc<LoadedComponent>,
    pub mode: Mode,
    /// When this mode began (wall clock, for people).
    pub since: DateTime<Utc>,
    /// When this mode began (for the canary guard).
    pub(super) started: Instant,
    /// What its shadow found (kept across shadow → canary).
    pub report: Arc<Report>,
    /// Its counters when its canary began: the canary's failure rate counts from there, so its
    /// shadow calls do not count against it.
    pub(super) canary_base: StatsSnapshot,
}

impl Candidate {
    pub(super) fn new(version: Arc<LoadedComponent>, mode: Mode, report: Arc<Report>) -> Self {
        let canary_base = version.stats.snapshot();
        Self {
            version,
            mode,
            since: Utc::now(),
            started: Instant::now(),
            report,
            canary_base,
        }
    }

    /// The same candidate in another mode, its report kept.
    pub(super) fn with_mode(&self, mode: Mode) -> Self {
        Self::new(self.version.clone(), mode, self.report.clone())
    }

    /// The canary's own calls since it began: (calls, failures).
    pub fn canary_calls(&self) -> (u64, u64) {
        let now = self.version.stats.snapshot();
        (
            now.messages.saturating_sub(self.canary_base.messages),
            now.errors().saturating_sub(self.canary_base.errors()),
        )
    }

    /// `audit@0.2.0-marked (9c1b…)`, for the journal.
    pub fn label(&self) -> String {
        format!("{}@{}", self.version.version, self.version.short_digest())
    }
}
