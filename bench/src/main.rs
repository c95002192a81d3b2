//! `taskhost-bench`: measures taskhost row by row (issue 12), each figure beside a reference
//! measured in the same run, and writes `docs/benchmarks.md` and `docs/benchmarks.json`.
//!
//! `just bench` runs every row; `just bench-quick` a short subset for CI (`--quick`), which
//! prints ratios and fails only when a row cannot be measured — never on a noisy number.

mod cpu;
mod db;
mod events;
mod host_proc;
mod loadgen;
mod machine;
mod markdown;
mod noop;
mod report;
mod rows;
mod stats;

use anyhow::Context;
use clap::Parser;
use report::{Report, Row};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Benchmarks taskhost against its ceilings, side by side in one run")]
struct Args {
    /// The short CI subset: fewer iterations, shorter loads, SQLite only, no real stack.
    #[arg(long)]
    quick: bool,
    /// The release `taskhost` binary to measure.
    #[arg(long, required_unless_present = "floor_only")]
    host_bin: Option<PathBuf>,
    /// Where the four component .wasm files are.
    #[arg(long, required_unless_present = "floor_only")]
    components_dir: Option<PathBuf>,
    /// The empty component (components/testing/empty) built as .wasm.
    #[arg(long)]
    empty_wasm: PathBuf,
    /// A PostgreSQL database URL; the PostgreSQL rows create databases beside it.
    #[arg(long, env = "TASKHOST_BENCH_PG_URL")]
    pg_url: Option<String>,
    /// Hot-swap latency lines (`hot-swap latency: …`) captured from the hot-swap stream test.
    #[arg(long)]
    hot_swap_log: Option<PathBuf>,
    /// Concurrent connections of the HTTP rows.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Where to write benchmarks.md and benchmarks.json (nothing is written when absent).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// The local stack's PostgreSQL (deploy/local-stack, `$DATABASE_URL` of its env.sh): row 5
    /// runs taskhost behind a real daprd + Kafka with a fresh database beside it. daprd is
    /// started and stopped by the runner (deploy/local-stack/daprd.sh, APP_PORT/DAPR_HTTP_PORT).
    #[arg(long, env = "TASKHOST_BENCH_STACK_PG_URL")]
    stack_pg_url: Option<String>,
    /// Run only row 5 (through the real stack); with --out-dir the report holds that row only.
    #[arg(long)]
    only_real_stack: bool,
    /// Where the Python and JavaScript builds of audit are (`python/audit.wasm`,
    /// `javascript/audit.wasm`: `just build-polyglot`), for row 7.
    #[arg(long)]
    polyglot_dir: Option<PathBuf>,
    /// audit built with its `marked` feature: shadows the serving audit in row 8.
    #[arg(long)]
    shadow_wasm: Option<PathBuf>,
    /// Run only row 8 (the serving path with a candidate in shadow); nothing is written unless
    /// --out-dir.
    #[arg(long, requires = "shadow_wasm")]
    only_shadow: bool,
    /// Run only row 7 (audit in three languages); nothing is written unless --out-dir.
    #[arg(long)]
    only_languages: bool,
    /// Run only row 3 (embedded end to end); nothing is written unless --out-dir.
    #[arg(long)]
    only_embedded: bool,
    /// Run only row 1 (each component beside the empty one, in-process); nothing is written
    /// unless --out-dir.
    #[arg(long)]
    only_components: bool,
    /// The command line to print in the report as how it was run.
    #[arg(long, default_value = "just bench")]
    command: String,
    /// A `taskhost` binary built from another commit (e.g. before a dependency bump): row 6
    /// measures the wasm floor and the Dapr route of this build beside it, in this run.
    #[arg(long, requires = "baseline_bench_bin")]
    baseline_host_bin: Option<PathBuf>,
    /// The `taskhost-bench` built from that same commit: it measures the baseline's floor in
    /// the baseline's own runtime (`--floor-only`).
    #[arg(long, requires = "baseline_host_bin")]
    baseline_bench_bin: Option<PathBuf>,
    /// What to call the baseline in the report (e.g. `abc1234 (wasmtime 50.0.1)`).
    #[arg(long, default_value = "baseline")]
    baseline_label: String,
    /// What to call this build in the report (e.g. `def5678 (wasmtime 51.0.0)`).
    #[arg(long, default_value = "this build")]
    label: String,
    /// Only measure the wasm floor (row 1's empty component) and print its per-message samples
    /// as JSON (`{"floor_ns": [...]}`): how another build's runner is asked for its floor.
    #[arg(long)]
    floor_only: bool,
    /// Run only row 6 (this build beside the baseline); with --out-dir the report holds it only.
    #[arg(
        long,
        requires = "baseline_host_bin",
        conflicts_with = "only_real_stack"
    )]
    only_baseline: bool,
    /// Messages for --floor-only.
    #[arg(long, default_value_t = 2_000)]
    iterations: u64,
}

/// What every row needs.
pub struct Ctx {
    pub quick: bool,
    pub host_bin: PathBuf,
    pub components_dir: PathBuf,
    pub scratch: PathBuf,
    pub cache_dir: PathBuf,
    pub connections: usize,
    pub warm_up: Duration,
    pub duration: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some(noop::SERVE_NOOP) => return noop::serve_noop_forever().await,
        Some(rows::dapr_route::LOAD) => return rows::dapr_route::load_forever().await,
        _ => {}
    }
    let args = Args::parse();
    if args.floor_only {
        let samples = rows::host_cost::floor_samples(&args.empty_wasm, args.iterations)?;
        println!("{}", serde_json::json!({ "floor_ns": samples }));
        return Ok(());
    }
    let (Some(host_bin), Some(components_dir)) = (&args.host_bin, &args.components_dir) else {
        anyhow::bail!("--host-bin and --components-dir are required");
    };
    let baseline = match (&args.baseline_host_bin, &args.baseline_bench_bin) {
        (Some(host), Some(bench)) => Some(rows::baseline::Baseline {
            host_bin: std::fs::canonicalize(host)
                .with_context(|| format!("baseline host binary {}", host.display()))?,
            bench_bin: std::fs::canonicalize(bench)
                .with_context(|| format!("baseline bench runner {}", bench.display()))?,
            label: args.baseline_label.clone(),
            current_label: args.label.clone(),
        }),
        _ => None,
    };
    let began = Instant::now();
    let scratch = std::env::temp_dir().join(format!("taskhost-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let ctx = Ctx {
        quick: args.quick,
        host_bin: std::fs::canonicalize(host_bin)
            .with_context(|| format!("host binary {}", host_bin.display()))?,
        components_dir: std::fs::canonicalize(components_dir)?,
        cache_dir: scratch.join("compiled-cache"),
        scratch: scratch.clone(),
        connections: args.connections,
        warm_up: Duration::from_millis(if args.quick { 500 } else { 2000 }),
        duration: Duration::from_secs(if args.quick { 3 } else { 10 }),
    };
    let load_before = machine::load_average();
    let chosen: Vec<rows::Only> = [
        (args.only_real_stack, rows::Only::RealStack),
        (args.only_baseline, rows::Only::Baseline),
        (args.only_languages, rows::Only::Languages),
        (args.only_shadow, rows::Only::Shadow),
        (args.only_embedded, rows::Only::Embedded),
        (args.only_components, rows::Only::Components),
    ]
    .into_iter()
    .filter_map(|(given, only)| given.then_some(only))
    .collect();
    let only = match chosen[..] {
        [] => rows::Only::All,
        [only] => only,
        _ => anyhow::bail!(
            "--only-real-stack, --only-baseline, --only-languages, --only-shadow, --only-embedded and --only-components exclude each other"
        ),
    };
    let inputs = rows::Inputs {
        empty_wasm: &args.empty_wasm,
        pg_url: args.pg_url.as_deref(),
        hot_swap_log: args.hot_swap_log.as_deref(),
        stack_pg_url: args.stack_pg_url.as_deref(),
        baseline: baseline.as_ref(),
        polyglot_dir: args.polyglot_dir.as_deref(),
        shadow_wasm: args.shadow_wasm.as_deref(),
    };
    let result = rows::run_all(&ctx, &inputs, only).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let (rows, failures): (Vec<Row>, Vec<String>) = result?;
    let report = Report {
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        mode: if args.quick { "quick" } else { "full" }.into(),
        command: args.command.clone(),
        argv: std::env::args().collect::<Vec<_>>().join(" "),
        machine: machine::describe(),
        load: vec![
            ("before".into(), load_before),
            ("after".into(), machine::load_average()),
        ],
        rows,
        seconds: began.elapsed().as_secs_f64(),
    };
    println!("\n{}", report.table());
    println!(
        "(load average before: {}, after: {}; {:.0} s)",
        report.load[0].1, report.load[1].1, report.seconds
    );
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)?;
        report.write_json(&dir.join("benchmarks.json"))?;
        markdown::write(&report, &dir.join("benchmarks.md"))?;
        println!(
            "wrote {} and {}",
            dir.join("benchmarks.md").display(),
            dir.join("benchmarks.json").display()
        );
    }
    if !failures.is_empty() {
        anyhow::bail!(
            "{} row(s) could not be measured:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}
