//! What a shadow found: how many of its calls matched the serving version, differed, failed or
//! were skipped, and the last few differences and failures (bounded, newest first), each with
//! the event id and the fields that differ.

use super::diff::FieldDiff;
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many samples a report keeps by default.
pub const SAMPLES: usize = 100;

/// How one shadow call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The candidate would have had the host do exactly what the serving version did.
    Same,
    /// It would have done something else (or the serving version failed where it did not).
    Different,
    /// It trapped, timed out, asked to retry or drop, or broke an effect limit.
    CandidateFailed,
    /// It was not called: its queue was full, or the call could not start before its deadline.
    /// Never retried.
    Skipped,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Same => "same",
            Outcome::Different => "different",
            Outcome::CandidateFailed => "candidate_failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One difference or failure, as `GET /admin/components/{name}/shadow` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Sample {
    /// When it was kept.
    pub at: DateTime<Utc>,
    pub event_id: String,
    pub topic: String,
    pub outcome: Outcome,
    pub serving_version: String,
    pub candidate_version: String,
    /// The fields that differ (empty for a failure).
    pub diff: Vec<FieldDiff>,
    /// Why the candidate (or the serving version) produced no effects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The counts, for the admin API and the page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub same: u64,
    pub different: u64,
    pub candidate_failed: u64,
    pub skipped: u64,
}

/// A shadow's running account. Counters are lock-free; the samples take a short lock, and only
/// for a difference or a failure.
#[derive(Debug)]
pub struct Report {
    same: AtomicU64,
    different: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    samples: Mutex<VecDeque<Sample>>,
    limit: usize,
}

impl Report {
    pub fn new(limit: usize) -> Self {
        Self {
            same: AtomicU64::new(0),
            different: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            samples: Mutex::new(VecDeque::new()),
            limit,
        }
    }

    /// Counts one call; keeps `sample` (a difference or a failure) as the newest.
    pub fn record(&self, outcome: Outcome, sample: Option<Sample>) {
        let counter = match outcome {
            Outcome::Same => &self.same,
            Outcome::Different => &self.different,
            Outcome::CandidateFailed => &self.failed,
            Outcome::Skipped => &self.skipped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(mut sample) = sample.filter(|_| self.limit > 0) {
            let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
            // Dated as kept, under the lock: two shadow threads finishing at once keep their
            // samples newest first.
            sample.at = Utc::now();
            samples.push_front(sample);
            samples.truncate(self.limit);
        }
    }

    pub fn counts(&self) -> Counts {
        Counts {
            same: self.same.load(Ordering::Relaxed),
            different: self.different.load(Ordering::Relaxed),
            candidate_failed: self.failed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }

    /// The kept samples, newest first.
    pub fn samples(&self) -> Vec<Sample> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &str) -> Sample {
        Sample {
            at: Utc::now(),
            event_id: id.into(),
            topic: "t".into(),
            outcome: Outcome::Different,
            serving_version: "1".into(),
            candidate_version: "2".into(),
            diff: vec![],
            error: None,
        }
    }

    #[test]
    fn counts_everything_and_keeps_the_newest_samples() {
        let r = Report::new(2);
        r.record(Outcome::Same, None);
        for id in ["a", "b", "c"] {
            r.record(Outcome::Different, Some(sample(id)));
        }
        r.record(Outcome::Skipped, None);
        r.record(Outcome::CandidateFailed, Some(sample("d")));
        assert_eq!(
            r.counts(),
            Counts {
                same: 1,
                different: 3,
                candidate_failed: 1,
                skipped: 1
            }
        );
        let ids: Vec<String> = r.samples().into_iter().map(|s| s.event_id).collect();
        assert_eq!(ids, ["d", "c"]);
    }
}
