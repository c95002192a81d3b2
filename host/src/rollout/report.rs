//! What a shadow found: how many of its calls matched the serving version, differed, failed or
//! were skipped, and the last few differences and failures (bounded, newest first), each with
//! the event id and the fields that differ.
//!
//! A shadow call records a [`Finding`]: the two effect lists as they came, moved, not compared
//! field by field. The field-level diff (JSON views of both lists, `diff.rs`) is built only when
//! someone reads the samples ([`Report::samples`]), for the few the report keeps: a candidate
//! that differs on every message costs the shadow thread a comparison and a move per message,
//! never a JSON document.

use super::diff::{self, FieldDiff};
use crate::domain::Effect;
use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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

/// One difference or failure as a shadow call records it: what its [`Sample`] is made of, the
/// fields that differ not yet worked out.
#[derive(Debug)]
pub struct Finding {
    pub event_id: String,
    pub topic: String,
    pub serving_version: String,
    pub candidate_version: String,
    pub what: Found,
}

/// What a [`Finding`] is.
#[derive(Debug)]
pub enum Found {
    /// The candidate trapped, timed out, asked to retry or drop, or broke an effect limit.
    CandidateFailed(String),
    /// The serving version failed (why) where the candidate produced `candidate`.
    ServingFailed {
        error: String,
        candidate: Vec<Effect>,
    },
    /// Both produced effects, and [`diff::differs`] said they differ.
    Differs {
        serving: Vec<Effect>,
        candidate: Vec<Effect>,
    },
}

impl Finding {
    pub fn outcome(&self) -> Outcome {
        match self.what {
            Found::CandidateFailed(_) => Outcome::CandidateFailed,
            Found::ServingFailed { .. } | Found::Differs { .. } => Outcome::Different,
        }
    }

    /// The sample as the API shows it, kept at `at`: the field-level diff is built here, at
    /// most `fields` fields.
    pub fn sample(&self, at: DateTime<Utc>, fields: usize) -> Sample {
        let (diff, error) = match &self.what {
            Found::CandidateFailed(e) => (Vec::new(), Some(e.clone())),
            Found::ServingFailed { error, candidate } => (
                diff::fields(
                    &serde_json::Value::Null,
                    &diff::view(candidate, &self.candidate_version),
                    fields,
                ),
                Some(format!("the serving version failed: {error}")),
            ),
            Found::Differs { serving, candidate } => (
                diff::between(
                    serving,
                    &self.serving_version,
                    candidate,
                    &self.candidate_version,
                    fields,
                ),
                None,
            ),
        };
        Sample {
            at,
            event_id: self.event_id.clone(),
            topic: self.topic.clone(),
            outcome: self.outcome(),
            serving_version: self.serving_version.clone(),
            candidate_version: self.candidate_version.clone(),
            diff,
            error,
        }
    }
}

/// The counts, for the admin API and the page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub same: u64,
    pub different: u64,
    pub candidate_failed: u64,
    pub skipped: u64,
}

/// A shadow's running account. Counters are lock-free; the samples take a short lock (a push
/// and a pop, nothing built under it), and only for a difference or a failure.
#[derive(Debug)]
pub struct Report {
    same: AtomicU64,
    different: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
    samples: Mutex<VecDeque<(DateTime<Utc>, Arc<Finding>)>>,
    limit: usize,
    /// Differing fields shown per sample.
    fields: usize,
}

impl Report {
    /// A report keeping `limit` samples, each naming at most `fields` differing fields.
    pub fn new(limit: usize, fields: usize) -> Self {
        Self {
            same: AtomicU64::new(0),
            different: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            samples: Mutex::new(VecDeque::with_capacity(limit.min(SAMPLES))),
            limit,
            fields,
        }
    }

    /// Counts one call (`Same` or `Skipped`: nothing to keep).
    pub fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Same => &self.same,
            Outcome::Different => &self.different,
            Outcome::CandidateFailed => &self.failed,
            Outcome::Skipped => &self.skipped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one difference or failure and keeps it as the newest sample.
    pub fn record(&self, finding: Finding) {
        self.count(finding.outcome());
        if self.limit == 0 {
            return;
        }
        let finding = Arc::new(finding);
        let dropped = {
            let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
            // Dated as kept, under the lock: two shadow threads finishing at once keep their
            // samples newest first.
            samples.push_front((Utc::now(), finding));
            (samples.len() > self.limit).then(|| samples.pop_back())
        };
        // The oldest sample's effects are freed here, outside the lock.
        drop(dropped);
    }

    pub fn counts(&self) -> Counts {
        Counts {
            same: self.same.load(Ordering::Relaxed),
            different: self.different.load(Ordering::Relaxed),
            candidate_failed: self.failed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }

    /// The kept samples, newest first, each with its field-level diff (built now, outside the
    /// lock the shadow threads record under).
    pub fn samples(&self) -> Vec<Sample> {
        let kept: Vec<(DateTime<Utc>, Arc<Finding>)> = {
            let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
            samples.iter().cloned().collect()
        };
        kept.iter()
            .map(|(at, finding)| finding.sample(*at, self.fields))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(id: &str, what: Found) -> Finding {
        Finding {
            event_id: id.into(),
            topic: "t".into(),
            serving_version: "1".into(),
            candidate_version: "2".into(),
            what,
        }
    }

    fn differs(id: &str) -> Finding {
        let task = |name: &str| Effect::CancelReminder(name.into());
        finding(
            id,
            Found::Differs {
                serving: vec![task("a")],
                candidate: vec![task("b")],
            },
        )
    }

    #[test]
    fn counts_everything_and_keeps_the_newest_samples() {
        let r = Report::new(2, 32);
        r.count(Outcome::Same);
        for id in ["a", "b", "c"] {
            r.record(differs(id));
        }
        r.count(Outcome::Skipped);
        r.record(finding("d", Found::CandidateFailed("trapped".into())));
        assert_eq!(
            r.counts(),
            Counts {
                same: 1,
                different: 3,
                candidate_failed: 1,
                skipped: 1
            }
        );
        let samples = r.samples();
        let ids: Vec<&str> = samples.iter().map(|s| s.event_id.as_str()).collect();
        assert_eq!(ids, ["d", "c"]);
        assert!(samples[0].at >= samples[1].at, "newest first");
        assert_eq!(samples[0].outcome, Outcome::CandidateFailed);
        assert_eq!(samples[0].error.as_deref(), Some("trapped"));
        assert!(samples[0].diff.is_empty());
    }

    #[test]
    fn a_sample_shows_the_diff_of_what_was_recorded() {
        let r = Report::new(4, 32);
        r.record(differs("e1"));
        r.record(finding(
            "e2",
            Found::ServingFailed {
                error: "trapped".into(),
                candidate: vec![Effect::CancelReminder("x".into())],
            },
        ));
        let samples = r.samples();
        assert_eq!(samples[1].event_id, "e1");
        assert_eq!(samples[1].outcome, Outcome::Different);
        assert_eq!(samples[1].diff.len(), 1);
        assert_eq!(samples[1].diff[0].path, "[0].cancel_reminder");
        assert_eq!(samples[1].diff[0].serving, serde_json::json!("a"));
        assert_eq!(samples[1].diff[0].candidate, serde_json::json!("b"));
        assert_eq!(samples[0].outcome, Outcome::Different);
        assert_eq!(samples[0].diff[0].path, "");
        assert_eq!(
            samples[0].error.as_deref(),
            Some("the serving version failed: trapped")
        );
        assert_eq!(r.counts().different, 2);
    }

    #[test]
    fn keeps_nothing_when_asked_to_keep_nothing() {
        let r = Report::new(0, 32);
        r.record(differs("a"));
        assert_eq!(r.counts().different, 1);
        assert!(r.samples().is_empty());
    }
}
