//! Latency summaries: an HDR histogram per measurement (microsecond resolution, 3 significant
//! digits), reduced to the percentiles the report prints. Percentiles of a histogram are exact
//! to its precision, unlike an average of averages, and merging per-worker histograms is exact.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;

/// Recorded latencies, in microseconds.
#[derive(Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_nanos() / 1000).max(1) as u64;
        self.0.saturating_record(us);
    }

    /// Adds another histogram's samples (per-worker histograms into one).
    pub fn merge(&mut self, other: &Latencies) {
        self.0
            .add(&other.0)
            .expect("histograms with the same bounds");
    }

    pub fn summary(&self) -> Summary {
        let q = |p: f64| self.0.value_at_quantile(p) as f64;
        Summary {
            count: self.0.len(),
            p50_us: q(0.50),
            p95_us: q(0.95),
            p99_us: q(0.99),
            max_us: self.0.max() as f64,
            mean_us: self.0.mean(),
        }
    }
}

/// Nanosecond-resolution latencies, for per-message stages that take a few microseconds.
#[derive(Clone)]
pub struct Nanos(Histogram<u64>);

impl Default for Nanos {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Nanos {
    pub fn record(&mut self, d: Duration) {
        self.0.saturating_record((d.as_nanos() as u64).max(1));
    }

    pub fn summary(&self) -> Summary {
        let q = |p: f64| self.0.value_at_quantile(p) as f64 / 1000.0;
        Summary {
            count: self.0.len(),
            p50_us: q(0.50),
            p95_us: q(0.95),
            p99_us: q(0.99),
            max_us: self.0.max() as f64 / 1000.0,
            mean_us: self.0.mean() / 1000.0,
        }
    }
}

/// What the report keeps of a histogram.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_us: f64,
    pub p95_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Summary {
    pub fn p50_ms(&self) -> f64 {
        self.p50_us / 1000.0
    }
    pub fn p99_ms(&self) -> f64 {
        self.p99_us / 1000.0
    }
}
