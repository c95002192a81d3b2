//! Row 7's second half — what keeping a freed instance's written pages resident buys a large
//! (Python, JavaScript) component, and what it costs: the host's default window for large
//! images (`LARGE_IMAGE_KEEP_RESIDENT`, 16 MiB) beside the small images' 256 KiB, which is what
//! large images had before (`host/src/runtime/engine.rs`, `keep_resident`).
//!
//! - per message: the call's latency, one message at a time, with the two runtimes side by side
//!   taking turns in blocks of [`BLOCK`] messages, so that both see the same machine (turns of
//!   one message each would measure each runtime with the other's pages in the caches);
//! - a burst: as many threads as the host runs wasm on (twice the cores, at least four), each
//!   handing the component its share of the messages at once, after a short burst that is not
//!   timed — messages per second, and the process's resident memory at its peak during the
//!   timed burst and after it, each less what it was before the first call (the peak read
//!   from the kernel's high-water mark, reset as the timed burst starts): a slot keeps its
//!   pages after the burst, and pages waiting for a batched decommit are still resident.

use super::languages::time_call;
use crate::host_proc::status_mib;
use crate::report::{Row, Value};
use crate::stats::{Nanos, Summary};
use anyhow::Context;
use serde_json::json;
use std::path::Path;
use std::time::Instant;
use taskhost::runtime::{LARGE_IMAGE_KEEP_RESIDENT, LoadedComponent, Runtime, RuntimeConfig};

/// Messages one runtime handles before the other takes its turn.
const BLOCK: u64 = 100;

/// The small images' window (engine.rs `MEMORY_KEEP_RESIDENT`): the reference.
const SMALL_IMAGE_KEEP_RESIDENT: usize = 256 << 10;

struct Measured {
    per_message: Summary,
    burst: Burst,
}

/// What a burst measured.
struct Burst {
    per_s: f64,
    /// Resident memory at the burst's peak, less before it.
    peak_growth_mib: f64,
    /// Resident memory after the burst, less before it.
    after_growth_mib: f64,
}

/// Both windows for one build; `cache` holds its compiled code (a runtime compiles it once).
pub fn run(lang: &str, wasm: &Path, cache: &Path, iterations: u64) -> anyhow::Result<Row> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get() * 2)
        .max(4);
    let windows = [LARGE_IMAGE_KEEP_RESIDENT, SMALL_IMAGE_KEEP_RESIDENT];
    let per_message = per_message(wasm, cache, &windows, iterations)?;
    let mut measured = Vec::new();
    for (keep, per_message) in windows.iter().zip(per_message) {
        let burst = burst(wasm, cache, *keep, threads, iterations)?;
        measured.push(Measured { per_message, burst });
    }
    let (kept, reference) = (&measured[0], &measured[1]);
    let text = |m: &Measured| {
        format!(
            "p50 {:.1} µs · p99 {:.1} µs; burst on {threads} threads: {:.0} messages/s, resident memory +{:.1} MiB at its peak, +{:.1} MiB after",
            m.per_message.p50_us,
            m.per_message.p99_us,
            m.burst.per_s,
            m.burst.peak_growth_mib,
            m.burst.after_growth_mib
        )
    };
    Ok(Row {
        id: format!("languages.keep_resident.{lang}"),
        what: format!(
            "audit built from {lang}: a freed instance's written pages kept resident up to {} MiB (the default for large images)",
            LARGE_IMAGE_KEEP_RESIDENT >> 20
        ),
        taskhost: Value::text(text(kept)),
        reference: Value::text(text(reference)),
        reference_what: format!(
            "the same with {} KiB kept (the small images' window, and what large ones had before); per message in alternating blocks of {BLOCK}",
            SMALL_IMAGE_KEEP_RESIDENT >> 10
        ),
        ratio: Some(kept.per_message.p50_us / reference.per_message.p50_us),
        ratio_what: "p50 ÷ reference p50".into(),
        target: None,
        raw: json!({
            "threads": threads,
            "iterations": iterations,
            "measured": raw(kept, LARGE_IMAGE_KEEP_RESIDENT),
            "reference": raw(reference, SMALL_IMAGE_KEEP_RESIDENT),
        }),
    })
}

fn raw(m: &Measured, keep: usize) -> serde_json::Value {
    json!({
        "keep_resident_bytes": keep, "per_message": m.per_message,
        "burst_per_s": m.burst.per_s, "burst_peak_growth_mib": m.burst.peak_growth_mib,
        "burst_after_growth_mib": m.burst.after_growth_mib,
    })
}

/// A runtime as the host makes it, but with `keep` bytes kept resident for large images, and
/// the build loaded on it (from `cache` after the first).
fn load(wasm: &Path, cache: &Path, keep: usize) -> anyhow::Result<(Runtime, LoadedComponent)> {
    let runtime = Runtime::new(RuntimeConfig {
        large_image_keep_resident: keep,
        cache_dir: Some(cache.to_path_buf()),
        ..RuntimeConfig::default()
    })?;
    let component = runtime
        .load_file(wasm)
        .with_context(|| format!("loading {} with {keep} bytes kept resident", wasm.display()))?;
    Ok((runtime, component))
}

/// Per-message latency on one runtime per window, taking turns in blocks of [`BLOCK`].
fn per_message(
    wasm: &Path,
    cache: &Path,
    windows: &[usize],
    iterations: u64,
) -> anyhow::Result<Vec<Summary>> {
    let loaded = windows
        .iter()
        .map(|keep| load(wasm, cache, *keep))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut latencies: Vec<Nanos> = windows.iter().map(|_| Nanos::default()).collect();
    let warm_up = (iterations / 10).max(5);
    let mut start = 0;
    while start < warm_up + iterations {
        let block = start..(start + BLOCK).min(warm_up + iterations);
        for ((runtime, component), latency) in loaded.iter().zip(&mut latencies) {
            for i in block.clone() {
                let took = time_call(runtime, component, i)?;
                if i >= warm_up {
                    latency.record(took);
                }
            }
        }
        start = block.end;
    }
    Ok(latencies.iter().map(Nanos::summary).collect())
}

/// `iterations` messages spread over `threads` calling at once, on a runtime of its own.
fn burst(
    wasm: &Path,
    cache: &Path,
    keep: usize,
    threads: usize,
    iterations: u64,
) -> anyhow::Result<Burst> {
    let (runtime, component) = load(wasm, cache, keep)?;
    let before = status_mib("self", "VmRSS")?;
    // A short burst first, whose time is not counted: the first use of a pool slot maps the
    // image into it, which a host that has been running has long done for the slots it cycles
    // through. What it leaves resident is counted.
    on_threads(&runtime, &component, threads, 10)?;
    // "5" resets the process's resident high-water mark (VmHWM) to what is resident now.
    std::fs::write("/proc/self/clear_refs", "5")
        .context("resetting the resident high-water mark (/proc/self/clear_refs)")?;
    let each = (iterations / threads as u64).max(1);
    let t0 = Instant::now();
    on_threads(&runtime, &component, threads, each)?;
    let took = t0.elapsed();
    let peak = status_mib("self", "VmHWM")?;
    let after = status_mib("self", "VmRSS")?;
    Ok(Burst {
        per_s: (each * threads as u64) as f64 / took.as_secs_f64(),
        peak_growth_mib: peak - before,
        after_growth_mib: after - before,
    })
}

/// `each` messages on each of `threads` threads calling at once.
fn on_threads(
    runtime: &Runtime,
    component: &LoadedComponent,
    threads: usize,
    each: u64,
) -> anyhow::Result<()> {
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> anyhow::Result<()> {
                    for i in 0..each {
                        time_call(runtime, component, t as u64 * each + i + 1)?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("a burst thread panicked"))
    })
}
