//! `taskhost-bench`: measures taskhost row by row (issue 12), each figure beside a reference
//! measured in the same run, and writes `docs/benchmarks.md` and `docs/benchmarks.json`.
//!
//! `just bench` runs every row; `just bench-quick` a short subset for CI (`--quick`), which
//! prints ratios and fails only when a row cannot be measured — never on a noisy number.

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
    #[arg(long)]
    host_bin: PathBuf,
    /// Where the four component .wasm files are.
    #[arg(long)]
    components_dir: PathBuf,
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
    /// `javascript/audit.wasm`: `just build-polyglot`), for row 6.
    #[arg(long)]
    polyglot_dir: Option<PathBuf>,
    /// Run only row 6 (audit in three languages); nothing is written unless --out-dir.
    #[arg(long)]
    only_languages: bool,
    /// The command line to print in the report as how it was run.
    #[arg(long, default_value = "just bench")]
    command: String,
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
    let args = Args::parse();
    let began = Instant::now();
    let scratch = std::env::temp_dir().join(format!("taskhost-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let ctx = Ctx {
        quick: args.quick,
        host_bin: std::fs::canonicalize(&args.host_bin)
            .with_context(|| format!("host binary {}", args.host_bin.display()))?,
        components_dir: std::fs::canonicalize(&args.components_dir)?,
        cache_dir: scratch.join("compiled-cache"),
        scratch: scratch.clone(),
        connections: args.connections,
        warm_up: Duration::from_millis(if args.quick { 500 } else { 2000 }),
        duration: Duration::from_secs(if args.quick { 3 } else { 10 }),
    };
    let load_before = machine::load_average();
    let selection = match (args.only_real_stack, args.only_languages) {
        (false, false) => rows::Selection::All,
        (true, false) => rows::Selection::RealStack,
        (false, true) => rows::Selection::Languages,
        (true, true) => anyhow::bail!("--only-real-stack and --only-languages exclude each other"),
    };
    let result = rows::run_all(
        &ctx,
        selection,
        &args.empty_wasm,
        args.pg_url.as_deref(),
        args.hot_swap_log.as_deref(),
        args.stack_pg_url.as_deref(),
        args.polyglot_dir.as_deref(),
    )
    .await;
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
