//! The result of a run: rows (taskhost beside its reference, with the ratio), the machine, the
//! commands; printed as a table, written as Markdown (`docs/benchmarks.md`) and as raw JSON
//! (`docs/benchmarks.json`) so that a later run can be compared figure by figure.

use crate::stats::Summary;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// One measured figure, formatted for the table and kept raw for the JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Value {
    pub text: String,
    pub summary: Option<Summary>,
    pub rate_per_s: Option<f64>,
}

impl Value {
    pub fn latency_us(s: Summary) -> Self {
        Self {
            text: format!("p50 {:.1} µs · p99 {:.1} µs", s.p50_us, s.p99_us),
            summary: Some(s),
            rate_per_s: None,
        }
    }

    pub fn rate(rate: f64, unit: &str, s: Summary) -> Self {
        Self {
            text: format!(
                "{rate:.0} {unit}/s · p50 {:.2} ms · p99 {:.2} ms",
                s.p50_ms(),
                s.p99_ms()
            ),
            summary: Some(s),
            rate_per_s: Some(rate),
        }
    }

    /// [`Value::rate`], with the CPU the server spent per item when it was measured.
    pub fn rate_cpu(rate: f64, unit: &str, s: Summary, cpu_us: Option<f64>) -> Self {
        let mut v = Self::rate(rate, unit, s);
        if let Some(cpu) = cpu_us {
            v.text.push_str(&format!(" · CPU {cpu:.0} µs each"));
        }
        v
    }

    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            summary: None,
            rate_per_s: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Stable key for comparing runs (`dapr_route.sqlite.bulk`).
    pub id: String,
    pub what: String,
    pub taskhost: Value,
    pub reference: Value,
    pub reference_what: String,
    /// taskhost ÷ reference (what is divided is `ratio_what`).
    pub ratio: Option<f64>,
    pub ratio_what: String,
    /// The target for this row and whether this run met it.
    pub target: Option<String>,
    pub raw: serde_json::Value,
}

impl Row {
    /// A row that was not measured, and why: printed as such, never as a number.
    pub fn not_measured(id: &str, what: &str, why: &str) -> Self {
        Self {
            id: id.into(),
            what: what.into(),
            taskhost: Value::text(format!("not measured: {why}")),
            reference: Value::text("—"),
            reference_what: String::new(),
            ratio: None,
            ratio_what: String::new(),
            target: None,
            raw: serde_json::json!({"not_measured": why}),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub mode: String,
    pub command: String,
    /// The runner's own command line, exactly.
    pub argv: String,
    pub machine: Vec<(String, String)>,
    /// How loaded the machine was around the run (1-minute load average before and after).
    pub load: Vec<(String, String)>,
    pub rows: Vec<Row>,
    pub seconds: f64,
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| what | taskhost | reference in the same run | ratio | target |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for r in &self.rows {
            let reference = if r.reference_what.is_empty() {
                r.reference.text.clone()
            } else {
                format!("{} — {}", r.reference.text, r.reference_what)
            };
            let ratio = match r.ratio {
                Some(x) => format!("{x:.2} ({})", r.ratio_what),
                None => "—".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                r.what,
                r.taskhost.text,
                reference,
                ratio,
                r.target.as_deref().unwrap_or("—")
            );
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n")?;
        Ok(())
    }
}

/// How a target cell says whether this run met it.
pub fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "missed" }
}
