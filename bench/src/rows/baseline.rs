//! Row 6 (optional) — this build beside a baseline build of another commit, in one run: the
//! wasm floor and the Dapr delivery route. For a dependency bump (a new wasmtime), the figures
//! of both versions measured on the same machine at the same time, instead of against an older
//! report taken under another load.
//!
//! - **floor**: the empty component handling recurrence's message (row 1's floor), each build
//!   in its own runtime: this one in-process, the baseline through its own runner
//!   (`taskhost-bench --floor-only`, which prints the per-message samples). Interleaved in
//!   rounds so that both see the same machine load.
//! - **route**: row 2's Dapr delivery route (SQLite, one event per request) against this host
//!   binary and against the baseline's, alternately, twice each; the better run of each counts
//!   (a run only gets slower from outside interference).

use crate::Ctx;
use crate::db::Backend;
use crate::report::{Row, Value};
use crate::rows::dapr_route::{self, Shape};
use crate::rows::host_cost;
use crate::stats::Nanos;
use anyhow::{Context, bail};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The other build: its host binary and its bench runner, and what to call it in the report.
pub struct Baseline {
    pub host_bin: PathBuf,
    pub bench_bin: PathBuf,
    pub label: String,
    /// What to call this build in the report.
    pub current_label: String,
}

pub async fn run(
    ctx: &Ctx,
    baseline: &Baseline,
    empty_wasm: &Path,
    peak_rss: &mut f64,
) -> anyhow::Result<Vec<Row>> {
    let floor = floor(ctx, baseline, empty_wasm).await?;
    let route = route(ctx, baseline, peak_rss).await?;
    Ok(vec![floor, route])
}

async fn floor(ctx: &Ctx, baseline: &Baseline, empty_wasm: &Path) -> anyhow::Result<Row> {
    let iterations: u64 = if ctx.quick { 2_000 } else { 20_000 };
    let rounds = 10;
    let (mut current, mut other) = (Nanos::default(), Nanos::default());
    for _ in 0..rounds {
        for ns in baseline_floor(baseline, empty_wasm, iterations / rounds).await? {
            other.record(Duration::from_nanos(ns));
        }
        let empty = empty_wasm.to_path_buf();
        let samples = tokio::task::spawn_blocking(move || {
            host_cost::floor_samples(&empty, iterations / rounds)
        })
        .await??;
        for ns in samples {
            current.record(Duration::from_nanos(ns));
        }
    }
    let (c, b) = (current.summary(), other.summary());
    Ok(Row {
        id: "baseline.floor".into(),
        what: format!(
            "wasm floor per message (empty component, recurrence's message): {} vs {}",
            baseline.current_label, baseline.label
        ),
        taskhost: Value::latency_us(c),
        reference: Value::latency_us(b),
        reference_what: baseline.label.clone(),
        ratio: Some(c.p99_us / b.p99_us),
        ratio_what: format!("p99 ÷ baseline p99; p50 {:.2}", c.p50_us / b.p50_us),
        target: None,
        raw: json!({"current": c, "baseline": b, "iterations": iterations, "rounds": rounds,
                    "current_label": baseline.current_label, "baseline_label": baseline.label}),
    })
}

/// One round of the baseline's floor, measured by the baseline's own runner.
async fn baseline_floor(
    baseline: &Baseline,
    empty_wasm: &Path,
    iterations: u64,
) -> anyhow::Result<Vec<u64>> {
    let out = tokio::process::Command::new(&baseline.bench_bin)
        .arg("--floor-only")
        .arg("--empty-wasm")
        .arg(empty_wasm)
        .arg("--iterations")
        .arg(iterations.to_string())
        .output()
        .await
        .with_context(|| format!("running {}", baseline.bench_bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} --floor-only failed ({}): {}",
            baseline.bench_bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "{} --floor-only printed no JSON: {}",
            baseline.bench_bin.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    serde_json::from_value(parsed["floor_ns"].clone())
        .context("the baseline runner's --floor-only output has no floor_ns samples")
}

async fn route(ctx: &Ctx, baseline: &Baseline, peak_rss: &mut f64) -> anyhow::Result<Row> {
    let other_ctx = Ctx {
        quick: ctx.quick,
        host_bin: baseline.host_bin.clone(),
        components_dir: ctx.components_dir.clone(),
        // Compiled components are per wasmtime version: never share the cache.
        cache_dir: ctx.scratch.join("compiled-cache-baseline"),
        scratch: ctx.scratch.clone(),
        connections: ctx.connections,
        warm_up: ctx.warm_up,
        duration: ctx.duration,
    };
    let (mut current, mut other) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        other.push(
            dapr_route::run(&other_ctx, &Backend::Sqlite, Shape::Single, peak_rss)
                .await
                .context("the Dapr route against the baseline host")?
                .row,
        );
        current.push(
            dapr_route::run(ctx, &Backend::Sqlite, Shape::Single, peak_rss)
                .await?
                .row,
        );
    }
    let best = |rows: Vec<Row>| {
        rows.into_iter()
            .max_by(|a, b| rate(a).total_cmp(&rate(b)))
            .expect("two runs")
    };
    let (c, b) = (best(current), best(other));
    Ok(Row {
        id: "baseline.dapr_route".into(),
        what: format!(
            "Dapr delivery route, sqlite, single ({} connections; best of 2 each): {} vs {}",
            ctx.connections, baseline.current_label, baseline.label
        ),
        ratio: Some(rate(&c) / rate(&b)),
        ratio_what: "deliveries/s ÷ baseline".into(),
        target: None,
        raw: json!({"current": c.raw, "baseline": b.raw,
                    "current_label": baseline.current_label, "baseline_label": baseline.label}),
        taskhost: c.taskhost,
        reference: b.taskhost,
        reference_what: baseline.label.clone(),
    })
}

fn rate(row: &Row) -> f64 {
    row.taskhost.rate_per_s.unwrap_or(0.0)
}
