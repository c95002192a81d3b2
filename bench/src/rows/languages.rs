//! Row 7 — one consumer, three languages: the audit component built from Rust
//! (`components/audit`), Python (`components/audit-py`, componentize-py) and JavaScript
//! (`components/audit-js`, componentize-js), each measured on the host's own call path
//! (`Runtime::call`: a fresh store and instance from the cached `InstancePre`, the call, the
//! effect checks), one message at a time on one thread, beside the Rust build:
//!
//! - per message: the call's latency, with audit's benchmark message (an update with a
//!   previous state, so every field is compared);
//! - memory per instance: the linear memory one instance holds — at start (its image) and at
//!   its peak during a call (what its memory limit must allow);
//! - start-up: compiling the component and its first call (a cold start), and loading it from
//!   the compiled-component cache and its first call (every restart after the first).
//!
//! The Rust build is also measured on a runtime whose pool slots are sized for 64 MiB (the
//! host-wide default limit) instead of the 256 MiB ceiling the slots now follow, so that what a
//! larger ceiling costs the small components is measured, not guessed. The Python and
//! JavaScript builds are measured again with the small images' window of freed pages kept
//! resident beside the large images' (`resident.rs`).

use crate::events;
use crate::report::{Row, Value};
use crate::stats::{Nanos, Summary};
use anyhow::{Context, bail};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use taskhost::runtime::{Ceilings, LoadedComponent, Runtime, RuntimeConfig, convert};
use taskhost::wire;

/// What one build measured.
struct Measured {
    per_message: Summary,
    start_mib: f64,
    peak_mib: f64,
    compile: Duration,
    cold_first_call: Duration,
    warm_load: Duration,
    warm_first_call: Duration,
    wasm_bytes: u64,
}

/// `builds`: (language, .wasm) with Rust first. `iterations`: messages per build.
pub fn run(builds: &[(&str, &Path)], scratch: &Path, iterations: u64) -> anyhow::Result<Vec<Row>> {
    let ceiling_mib = Ceilings::default().memory_bytes >> 20;
    let mut measured = Vec::new();
    for (lang, wasm) in builds {
        eprintln!("   {lang}");
        let cache = scratch.join(format!("languages-cache-{lang}"));
        let m = measure(wasm, &cache, iterations, ceiling_mib)
            .with_context(|| format!("the {lang} build ({})", wasm.display()))?;
        measured.push((*lang, m));
    }
    // The Rust build again, on pool slots sized for the 64 MiB default rather than the ceiling.
    let (_, rust_wasm) = builds.first().context("no builds to measure")?;
    eprintln!("   rust, 64 MiB slots");
    let rust_small = measure(
        rust_wasm,
        &scratch.join("languages-cache-rust-64"),
        iterations,
        64,
    )?;

    let rust = &measured[0].1;
    let mut rows = Vec::new();
    for (lang, m) in &measured {
        let (reference, reference_what, ratio) = if *lang == "rust" {
            (
                &rust_small,
                "the same build on 64 MiB pool slots (the default limit) instead of the 256 MiB ceiling",
                m.per_message.p50_us / rust_small.per_message.p50_us,
            )
        } else {
            (
                rust,
                "the Rust build of audit, same message",
                m.per_message.p50_us / rust.per_message.p50_us,
            )
        };
        rows.push(Row {
            id: format!("languages.{lang}"),
            what: format!(
                "audit built from {lang}: per message, memory per instance, start-up (compile + first call; cached load + first call)"
            ),
            taskhost: Value::text(text(m)),
            reference: Value::text(text(reference)),
            reference_what: reference_what.into(),
            ratio: Some(ratio),
            ratio_what: "p50 ÷ reference p50".into(),
            target: None,
            raw: json!({"measured": raw(m), "reference": raw(reference), "iterations": iterations}),
        });
    }
    for (lang, wasm) in builds.iter().skip(1) {
        eprintln!("   {lang}, freed pages kept resident: the large images' window beside 256 KiB");
        let cache = scratch.join(format!("languages-cache-{lang}"));
        rows.push(
            super::resident::run(lang, wasm, &cache, iterations).unwrap_or_else(|e| {
                Row::not_measured(
                    &format!("languages.keep_resident.{lang}"),
                    &format!("audit built from {lang}: freed pages kept resident"),
                    &format!("{e:#}"),
                )
            }),
        );
    }
    Ok(rows)
}

fn text(m: &Measured) -> String {
    format!(
        "p50 {:.1} µs · p99 {:.1} µs; {:.1} MiB/instance (image {:.1}); start-up {:.0} ms + {:.1} ms first call, cached {:.1} ms + {:.1} ms; {:.2} MB .wasm",
        m.per_message.p50_us,
        m.per_message.p99_us,
        m.peak_mib,
        m.start_mib,
        m.compile.as_secs_f64() * 1e3,
        m.cold_first_call.as_secs_f64() * 1e3,
        m.warm_load.as_secs_f64() * 1e3,
        m.warm_first_call.as_secs_f64() * 1e3,
        m.wasm_bytes as f64 / 1e6,
    )
}

fn raw(m: &Measured) -> serde_json::Value {
    json!({
        "per_message": m.per_message, "start_mib": m.start_mib, "peak_mib": m.peak_mib,
        "compile_ms": m.compile.as_secs_f64() * 1e3,
        "cold_first_call_ms": m.cold_first_call.as_secs_f64() * 1e3,
        "warm_load_ms": m.warm_load.as_secs_f64() * 1e3,
        "warm_first_call_ms": m.warm_first_call.as_secs_f64() * 1e3,
        "wasm_bytes": m.wasm_bytes,
    })
}

/// A runtime as the host makes it (pool slots sized for `ceiling_mib`), caching compiled
/// components in `cache`.
fn runtime(ceiling_mib: usize, cache: &Path) -> anyhow::Result<Runtime> {
    Runtime::new(RuntimeConfig {
        ceilings: Ceilings {
            memory_bytes: ceiling_mib << 20,
            ..Ceilings::default()
        },
        cache_dir: Some(cache.to_path_buf()),
        ..RuntimeConfig::default()
    })
}

fn measure(
    wasm: &Path,
    cache: &Path,
    iterations: u64,
    ceiling_mib: usize,
) -> anyhow::Result<Measured> {
    let _ = std::fs::remove_dir_all(cache);
    // Cold: nothing compiled yet (the cache directory is empty).
    let cold_runtime = runtime(ceiling_mib, cache)?;
    let t0 = Instant::now();
    let component = cold_runtime.load_file(wasm)?;
    let compile = t0.elapsed();
    let cold_first_call = time_call(&cold_runtime, &component, 0)?;
    drop((component, cold_runtime));
    // Warm: a new runtime loads what the first one cached, as a restart does.
    let warm_runtime = runtime(ceiling_mib, cache)?;
    let t0 = Instant::now();
    let warm = warm_runtime.load_file(wasm)?;
    let warm_load = t0.elapsed();
    let warm_first_call = time_call(&warm_runtime, &warm, 0)?;

    let mut per_message = Nanos::default();
    let warm_up = (iterations / 10).max(5);
    for i in 0..warm_up + iterations {
        let took = time_call(&warm_runtime, &warm, i + 1)?;
        if i >= warm_up {
            per_message.record(took);
        }
    }
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    Ok(Measured {
        per_message: per_message.summary(),
        start_mib: mib(warm.start_memory_bytes as u64),
        peak_mib: mib(warm.stats.snapshot().memory_peak_bytes),
        compile,
        cold_first_call,
        warm_load,
        warm_first_call,
        wasm_bytes: std::fs::metadata(wasm)?.len(),
    })
}

/// One call with audit's benchmark message; its latency (the call alone, not the decode).
pub(super) fn time_call(
    runtime: &Runtime,
    component: &LoadedComponent,
    n: u64,
) -> anyhow::Result<Duration> {
    let payload = events::for_component("audit", n);
    let now = wire::time::now();
    let message = convert::message_to(&wire::decode("task-events", payload.as_bytes(), now)?)
        .context("audit's benchmark message has no form a component is handed")?;
    let t0 = Instant::now();
    let answer = runtime.call(component, "task-events", &message, now.timestamp_millis())?;
    let took = t0.elapsed();
    match answer {
        Ok(effects) if !effects.is_empty() => Ok(took),
        Ok(_) => bail!(
            "{} returned no effect for its benchmark message",
            component.name
        ),
        Err(failure) => bail!(
            "{} refused the benchmark message: {failure:?}",
            component.name
        ),
    }
}
