//! `taskhost build [DIR]`: builds a consumer project's `.wasm`, whatever its language, and checks
//! it with the host's own loading code (`Runtime::load_bytes_with`) — compile, world, describe,
//! limits, memory image — so a build that passes here is refused by no host with the same
//! settings, and one that fails says exactly what a push would say.
//!
//! A build whose inputs (sources, WIT, toolchain) have been built before is taken from the build
//! cache (`~/.cache/taskhost/builds`) instead of being built again: a Python or JavaScript
//! build takes tens of seconds, and CI builds the same generated projects on every run.

use super::build_cache::BuildCache;
use super::components::PushLimits;
use super::project::{Language, Project};
use super::toolchain::Toolchain;
use crate::config::ComponentArgs;
use crate::runtime::{LimitOverrides, LimitRequest, LoadedComponent, Runtime, WORLD, convert};
use crate::wire;
use anyhow::{Context, bail};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The project (a directory made by `taskhost new`).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where to write the component (default: DIR/dist/NAME.wasm).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Build even if the build cache holds a build of the same inputs.
    #[arg(long)]
    pub rebuild: bool,
    /// Check the component under the limits you will push it with.
    #[command(flatten)]
    pub limits: PushLimits,
    /// The host's settings to check against (the same flags and TASKHOST_* variables as
    /// `taskhost serve`).
    #[command(flatten)]
    pub components: ComponentArgs,
}

/// A created task, as the sample message of the check's trial call.
const SAMPLE_EVENT: &str = r#"{"event_id":"taskhost-build-sample","event_type":"task.created",
"event_timestamp":"2026-01-31T09:00:00Z","user_id":"alice","task":{"id":"t1","title":"Pay rent",
"priority":"high","due_date":"2026-02-01T09:00:00Z","tags":["home"]}}"#;

pub fn run(args: BuildArgs) -> anyhow::Result<()> {
    let project = Project::read(&args.dir)?;
    let out = args.out.clone().unwrap_or_else(|| project.default_output());
    let started = Instant::now();
    let toolchain = Toolchain::ensure(project.language)?;
    prepare(&project, &toolchain)?;
    let cache = BuildCache::open()?;
    let key = cache.key(&project, &toolchain)?;
    let reused = !args.rebuild && cache.restore(&key, &out)?;
    if !reused {
        build(&project, &toolchain, &out)?;
        cache.store(&key, &out)?;
    }
    let took = started.elapsed();
    let bytes = std::fs::read(&out).with_context(|| format!("reading {}", out.display()))?;
    eprintln!(
        "{} {} ({}) → {}, {:.1} MB, in {:.1} s{}",
        if reused { "reused" } else { "built" },
        project.name,
        project.language.as_str(),
        out.display(),
        bytes.len() as f64 / 1e6,
        took.as_secs_f64(),
        if reused {
            " (the same sources were built before: --rebuild builds anyway)"
        } else {
            ""
        },
    );
    check(&project, &args, &out, &bytes)
}

/// What the project's own tests need, made even when the component comes from the cache: for
/// Python, the WIT bindings `test_app.py` imports in plain CPython (a second or two).
fn prepare(project: &Project, toolchain: &Toolchain) -> anyhow::Result<()> {
    if project.language == Language::Python {
        // componentize-py writes into a directory that does not exist yet; these are generated
        // files, made anew from the WIT each time.
        let generated = project.dir.join("bindings");
        if generated.exists() {
            std::fs::remove_dir_all(&generated)
                .with_context(|| format!("removing the old {}", generated.display()))?;
        }
        let mut bindings = toolchain.command();
        bindings
            .current_dir(&project.dir)
            .arg("-d")
            .arg(std::path::absolute(&project.wit)?)
            .args(["-w", "consumer", "bindings", "bindings"]);
        run_tool(bindings, "componentize-py bindings (for the tests)")?;
    }
    Ok(())
}

/// Runs the language's build, leaving the component at `out`.
fn build(project: &Project, toolchain: &Toolchain, out: &Path) -> anyhow::Result<()> {
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let out = std::path::absolute(out)?;
    let wit = std::path::absolute(&project.wit)?;
    match project.language {
        Language::Rust => {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| project.dir.join("target"));
            let target = std::path::absolute(target)?;
            let mut cargo = toolchain.command();
            cargo
                .current_dir(&project.dir)
                .args(["build", "--release", "--target", "wasm32-wasip2"])
                .arg("--target-dir")
                .arg(&target);
            run_tool(cargo, "cargo build")?;
            let built = target
                .join("wasm32-wasip2/release")
                .join(format!("{}.wasm", project.name.replace('-', "_")));
            std::fs::copy(&built, &out).with_context(|| {
                format!(
                    "cargo built no {} (is the package in Cargo.toml named `{}`?)",
                    built.display(),
                    project.name
                )
            })?;
        }
        Language::Python => {
            let mut componentize = toolchain.command();
            componentize
                .current_dir(&project.dir)
                .arg("-d")
                .arg(&wit)
                .args(["-w", "consumer", "componentize", "app", "-p", ".", "-o"])
                .arg(&out);
            run_tool(componentize, "componentize-py componentize")?;
        }
        Language::Javascript => {
            let mut componentize = toolchain.command();
            componentize
                .current_dir(&project.dir)
                .arg("app.js")
                .arg("--wit")
                .arg(&wit)
                .args(["--world-name", "consumer"])
                // The host links no wasi:http: leave out what would import it.
                .args(["--disable", "http", "fetch-event"])
                .arg("--out")
                .arg(&out);
            run_tool(componentize, "componentize-js")?;
        }
    }
    Ok(())
}

/// Runs a toolchain command, its output shown as it goes.
fn run_tool(mut command: Command, what: &str) -> anyhow::Result<()> {
    eprintln!("== {what} ==");
    let status = command
        .status()
        .with_context(|| format!("running {what} ({:?})", command.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status}): its output is above");
    }
    Ok(())
}

/// The checks a push makes, through the host's own code, then one trial call.
fn check(project: &Project, args: &BuildArgs, out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let runtime = Runtime::new(args.components.runtime_config()?)?;
    let overrides = LimitOverrides {
        memory_mib: args.limits.memory_mib,
        call_timeout_ms: args.limits.timeout_ms,
    };
    let request = LimitRequest::new(overrides, "the push");
    let started = Instant::now();
    let loaded = runtime
        .load_bytes_with(bytes, &out.display().to_string(), &|_| Ok(request.clone()))
        .context("the host would refuse this component")?;
    if loaded.name != project.name {
        bail!(
            "{} says it is `{}`, but taskhost.toml names `{}`: make them the same (the host swaps \
             a component by the name its describe() gives)",
            out.display(),
            loaded.name,
            project.name
        );
    }
    eprintln!(
        "checked as a push would be ({:.1} s): {} {} targets {WORLD}, topics {}; memory at start \
         {:.1} MiB of its {:.0} MiB limit ({}), call timeout {} ms ({})",
        started.elapsed().as_secs_f64(),
        loaded.name,
        loaded.version,
        loaded.topics.join(", "),
        mib(loaded.start_memory_bytes),
        mib(loaded.limits.memory_bytes),
        loaded.limits.memory_setting,
        loaded.limits.call_timeout.as_millis(),
        loaded.limits.timeout_setting,
    );
    trial_call(&runtime, &loaded);
    eprintln!(
        "next: wasmtime run --invoke 'describe()' {}\n      taskhost components push {}{}",
        out.display(),
        out.display(),
        if overrides.memory_mib.is_some() {
            format!(" --memory-mib {}", loaded.limits.memory_bytes >> 20)
        } else {
            String::new()
        }
    );
    Ok(())
}

/// One `handle` call with a created task, as the host would make it: shows the memory an
/// instance reaches (what to base `--memory-mib` on) and a trap before any push. Its answer is
/// the component's business: a consumer may well ignore created tasks.
fn trial_call(runtime: &Runtime, loaded: &LoadedComponent) {
    let now = wire::time::now();
    let outcome = wire::decode("task-events", SAMPLE_EVENT.as_bytes(), now)
        .map_err(|e| e.to_string())
        .and_then(|message| {
            let message = convert::message_to(&message)
                .ok_or("the sample event has no form a component is handed")?;
            let started = Instant::now();
            let answer = runtime
                .call(loaded, "task-events", &message, now.timestamp_millis())
                .map_err(|e| e.to_string())?;
            Ok((answer, started.elapsed()))
        });
    let peak = mib(loaded.stats.snapshot().memory_peak_bytes as usize);
    match outcome {
        Ok((Ok(effects), took)) => eprintln!(
            "trial call (a created task on task-events): {} effect(s) in {:.1} ms, memory peak {peak:.1} MiB",
            effects.len(),
            took.as_secs_f64() * 1e3
        ),
        Ok((Err(failure), _)) => {
            eprintln!("trial call (a created task on task-events): answered {failure:?}")
        }
        Err(e) => eprintln!("warning: the trial call (a created task on task-events) failed: {e}"),
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1 << 20) as f64
}
