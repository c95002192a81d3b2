//! Row 1 — per-message host cost of each component, beside the empty component (the wasmtime
//! floor). Runs the host's own code path in-process, one message at a time on one thread:
//! `wire::decode` + `convert::message_to` (decode), `Runtime::call` (a fresh `Store` and
//! instance from the cached `InstancePre`, the `handle` call, the effect-limit checks), and
//! `convert::effect_from` over the answer (effects, up to the database: applying them in a
//! transaction is what rows 2 and 3 measure).

use crate::events;
use crate::report::{Row, Value, met};
use crate::stats::{Nanos, Summary};
use anyhow::{Context, bail};
use serde_json::json;
use std::path::Path;
use std::time::Instant;
use taskhost::runtime::{LoadedComponent, Runtime, RuntimeConfig, convert};
use taskhost::wire;

pub const COMPONENTS: [&str; 4] = ["recurrence", "notification", "audit", "sync"];

/// The stages of one message, and their sum measured around them.
#[derive(Default)]
struct Stages {
    decode: Nanos,
    call: Nanos,
    effects: Nanos,
    total: Nanos,
    /// Every message's total, in nanoseconds, when the caller wants the samples themselves.
    samples: Option<Vec<u64>>,
}

pub fn run(components_dir: &Path, empty_wasm: &Path, iterations: u64) -> anyhow::Result<Vec<Row>> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let empty = runtime
        .load_file(empty_wasm)
        .with_context(|| format!("loading the empty component {}", empty_wasm.display()))?;
    let mut rows = Vec::new();
    for name in COMPONENTS {
        let path = components_dir.join(format!("{name}.wasm"));
        let component = runtime
            .load_file(&path)
            .with_context(|| format!("loading {}", path.display()))?;
        // Interleaved in rounds so that both see the same machine load.
        let (mut real, mut floor) = (Stages::default(), Stages::default());
        let rounds = 10;
        let mut effects = 0;
        for round in 0..rounds {
            effects = measure(
                &runtime,
                &component,
                name,
                iterations / rounds,
                round == 0,
                &mut real,
            )?;
            measure(
                &runtime,
                &empty,
                name,
                iterations / rounds,
                round == 0,
                &mut floor,
            )?;
        }
        if effects == 0 {
            bail!(
                "{name} returned no effects for its benchmark message: it would measure nothing but the floor"
            );
        }
        let (r, f) = (real.total.summary(), floor.total.summary());
        rows.push(Row {
            id: format!("host_cost.{name}"),
            what: format!(
                "host cost per message: {name} (decode + store/instance + call + effects)"
            ),
            taskhost: Value::latency_us(r),
            reference: Value::latency_us(f),
            reference_what: "empty component, same message".into(),
            ratio: Some(r.p99_us / f.p99_us),
            ratio_what: "p99 ÷ floor p99".into(),
            target: Some(format!(
                "≤ 1.3 × the empty component at p50 ({:.2}: {}); first wave: ≤ 2× floor at p99 ({}), ≤ 50 µs p99 ({})",
                r.p50_us / f.p50_us,
                met(r.p50_us <= 1.3 * f.p50_us),
                met(r.p99_us <= 2.0 * f.p99_us),
                met(r.p99_us <= 50.0)
            )),
            raw: json!({
                "taskhost": stages_json(&real), "floor": stages_json(&floor),
                "iterations": iterations, "effects_per_message": effects,
            }),
        });
    }
    Ok(rows)
}

/// The floor alone, as row 1 measures it beside recurrence: the empty component handling
/// recurrence's message, `iterations` times after a warm-up, in this binary's runtime. Returns
/// each message's total in nanoseconds. `taskhost-bench --floor-only` prints them, so that a
/// runner built from another commit (another wasmtime) is measured by its own runtime
/// (`rows/baseline.rs`).
pub fn floor_samples(empty_wasm: &Path, iterations: u64) -> anyhow::Result<Vec<u64>> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let empty = runtime
        .load_file(empty_wasm)
        .with_context(|| format!("loading the empty component {}", empty_wasm.display()))?;
    let mut stages = Stages {
        samples: Some(Vec::with_capacity(iterations as usize)),
        ..Stages::default()
    };
    measure(
        &runtime,
        &empty,
        "recurrence",
        iterations,
        true,
        &mut stages,
    )?;
    Ok(stages.samples.unwrap_or_default())
}

fn stages_json(s: &Stages) -> serde_json::Value {
    let j = |x: Summary| serde_json::to_value(x).expect("summary serializes");
    json!({"decode": j(s.decode.summary()), "store_instance_call": j(s.call.summary()),
           "effects": j(s.effects.summary()), "total": j(s.total.summary())})
}

fn measure(
    runtime: &Runtime,
    component: &LoadedComponent,
    name: &str,
    iterations: u64,
    warm_up: bool,
    into: &mut Stages,
) -> anyhow::Result<usize> {
    let mut count = 0;
    let warm = if warm_up { 200 } else { 0 };
    for i in 0..warm + iterations {
        let payload = events::for_component(name, i);
        let now = wire::time::now();
        let t0 = Instant::now();
        let message = wire::decode("task-events", payload.as_bytes(), now)?;
        let wit_message = convert::message_to(&message)
            .ok_or_else(|| anyhow::anyhow!("a task event is a message for components"))?;
        let t1 = Instant::now();
        let answer = runtime.call(
            component,
            "task-events",
            &wit_message,
            now.timestamp_millis(),
        )?;
        let t2 = Instant::now();
        let effects = match answer {
            Ok(effects) => effects
                .into_iter()
                .map(convert::effect_from)
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?,
            Err(failure) => bail!(
                "{} refused the benchmark message: {failure:?}",
                component.name
            ),
        };
        let t3 = Instant::now();
        count = effects.len();
        std::hint::black_box(effects);
        if i >= warm {
            into.decode.record(t1 - t0);
            into.call.record(t2 - t1);
            into.effects.record(t3 - t2);
            into.total.record(t3 - t0);
            if let Some(samples) = &mut into.samples {
                samples.push((t3 - t0).as_nanos() as u64);
            }
        }
    }
    Ok(count)
}
