//! Row 8 — the serving path with a candidate in shadow beside without (issue 20): the real
//! pipeline in-process (audit only, a fresh SQLite database), `STREAMS` ordered streams handing
//! it task events for a fixed time; measured: each message's `Pipeline::handle` (decode, route,
//! call, commit, verdict: the serving path), and the process's CPU per message. Rounds
//! alternate without and with the shadow (audit's `marked` build, which differs from the
//! serving audit in every message's version mark, so every shadow call is a full comparison
//! and a kept sample), so both see the same machine load.
//!
//! What the issue asks of it: the serving path's latency grows by at most the candidate's own
//! call cost. The row prints that call cost beside it (a `Runtime::call` of the candidate on
//! one thread, as row 1 measures a component).
//!
//! Two loads, two rows. At saturation (each stream sends its next message when the last is
//! answered) the two cores are the limit, so any CPU the shadow takes lowers the rate and
//! raises every latency: that row shows what a shadow costs the process. At a steady rate (half
//! of what the no-shadow rounds reached; each stream sends on a clock, and a message's latency
//! counts from when it was due, so a late send is not hidden) there is CPU to spare, as in a
//! deployment not run flat out: that row shows what a shadow does to a real delivery.

use crate::Ctx;
use crate::cpu;
use crate::events;
use crate::report::{Row, Value, met};
use crate::stats::{Latencies, Nanos, Summary};
use anyhow::{Context, bail};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use taskhost::pipeline::{Answer, Attempt, Pipeline, Received, Wakers};
use taskhost::rollout::{Actor, Mode};
use taskhost::runtime::{Registry, Runtime, RuntimeConfig, convert};
use taskhost::sockets::SocketHub;
use taskhost::storage::Db;
use taskhost::wire;

const STREAMS: usize = 8;

struct Round {
    latencies: Latencies,
    messages: u64,
    cpu_seconds: f64,
    elapsed: Duration,
}

pub async fn run(ctx: &Ctx, shadow_wasm: &Path) -> anyhow::Result<Vec<Row>> {
    let candidate = std::fs::read(shadow_wasm)
        .with_context(|| format!("reading the shadow candidate {}", shadow_wasm.display()))?;
    let dir = ctx.scratch.join("shadow-row");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("components"))?;
    std::fs::copy(
        ctx.components_dir.join("audit.wasm"),
        dir.join("components/audit.wasm"),
    )?;
    let db = Db::connect(
        &format!("sqlite://{}?mode=rwc", dir.join("shadow.db").display()),
        8,
    )
    .await?;
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let registry = Arc::new(Registry::load_dir(&runtime, &dir.join("components"))?);
    let pipeline = Pipeline::new(
        runtime.clone(),
        registry.clone(),
        db,
        Arc::new(SocketHub::default()),
        Wakers::default(),
        Default::default(),
    );
    let rollouts = pipeline.rollouts().clone();
    let actor = Actor {
        who: "taskhost-bench".into(),
        reason: None,
    };
    let rounds = if ctx.quick { 2 } else { 3 };
    let round_time = if ctx.quick {
        Duration::from_millis(800)
    } else {
        ctx.duration / 2
    };
    // Warm-up: the database file, the compile of both builds.
    measure(&pipeline, "warm", Duration::from_millis(300), None).await?;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        without.push(measure(&pipeline, &format!("off{r}"), round_time, None).await?);
        start_shadow(&rollouts, &candidate, &actor).await?;
        with.push(measure(&pipeline, &format!("on{r}"), round_time, None).await?);
        end_shadow(&rollouts, &actor, &format!("round {r}"))?;
    }
    // The steady rate: half of what the rounds without a shadow reached, spread over the streams.
    let saturated: f64 = without
        .iter()
        .map(|r| r.messages as f64 / r.elapsed.as_secs_f64())
        .sum::<f64>()
        / without.len() as f64;
    let steady_rate = saturated / 2.0;
    let pace = Duration::from_secs_f64(STREAMS as f64 / steady_rate);
    let (mut steady_without, mut steady_with) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        steady_without
            .push(measure(&pipeline, &format!("s-off{r}"), round_time, Some(pace)).await?);
        start_shadow(&rollouts, &candidate, &actor).await?;
        steady_with.push(measure(&pipeline, &format!("s-on{r}"), round_time, Some(pace)).await?);
        end_shadow(&rollouts, &actor, &format!("steady round {r}"))?;
    }
    let call = candidate_call_cost(&runtime, &candidate)?;
    let raw = json!({ "rounds": rounds, "round_seconds": round_time.as_secs_f64() });
    let saturated_row = comparison(
        "shadow",
        format!(
            "serving path per message (Pipeline::handle, audit, SQLite, {STREAMS} streams) with a candidate in shadow"
        ),
        "the same, no candidate (rounds interleaved)",
        (&with, &without),
        &call,
        raw.clone(),
    );
    let mut raw = raw;
    raw["offered_rate"] = json!(steady_rate);
    let steady_row = comparison(
        "shadow.steady",
        format!(
            "serving path per message at a steady {steady_rate:.0} msg/s (half the no-shadow saturation; audit, SQLite, {STREAMS} streams) with a candidate in shadow"
        ),
        "the same rate, no candidate (rounds interleaved)",
        (&steady_with, &steady_without),
        &call,
        raw,
    );
    Ok(vec![saturated_row, steady_row])
}

/// A row of rounds with the shadow beside rounds without it, judged against the candidate's
/// own call cost; `raw` gets both sides' figures and the call added.
fn comparison(
    id: &str,
    what: String,
    reference_what: &str,
    (with, without): (&[Round], &[Round]),
    call: &Summary,
    mut raw: serde_json::Value,
) -> Row {
    let sum = |rounds: &[Round]| {
        let mut l = Latencies::default();
        let (mut n, mut cpu, mut t) = (0, 0.0, Duration::ZERO);
        for r in rounds {
            l.merge(&r.latencies);
            n += r.messages;
            cpu += r.cpu_seconds;
            t += r.elapsed;
        }
        (
            l.summary(),
            n,
            cpu / n as f64 * 1e6,
            n as f64 / t.as_secs_f64(),
        )
    };
    let side = |rounds: &[Round]| {
        let (summary, n, cpu, rate) = sum(rounds);
        let value = Value {
            text: format!(
                "handle p50 {:.0} µs · p99 {:.0} µs · CPU {cpu:.0} µs/msg · {rate:.0} msg/s",
                summary.p50_us, summary.p99_us
            ),
            summary: Some(summary),
            rate_per_s: Some(rate),
        };
        let raw =
            json!({ "summary": summary, "messages": n, "cpu_us_per_message": cpu, "rate": rate });
        (summary, value, raw)
    };
    let (on, taskhost, on_raw) = side(with);
    let (off, reference, off_raw) = side(without);
    raw["with"] = on_raw;
    raw["without"] = off_raw;
    raw["candidate_call"] = json!(call);
    let grew = on.p50_us - off.p50_us;
    Row {
        id: id.into(),
        what,
        taskhost,
        reference,
        reference_what: reference_what.into(),
        ratio: Some(on.p50_us / off.p50_us),
        ratio_what: "p50 with shadow ÷ without".into(),
        target: Some(format!(
            "p50 grows ≤ the candidate's call cost ({:.0} µs vs {:.1} µs p50: {})",
            grew,
            call.p50_us,
            met(grew <= call.p50_us)
        )),
        raw,
    }
}

/// Puts `candidate` in shadow of the serving audit.
async fn start_shadow(
    rollouts: &taskhost::rollout::Rollouts,
    candidate: &[u8],
    actor: &Actor,
) -> anyhow::Result<()> {
    rollouts
        .start(
            "audit",
            candidate.to_vec(),
            "bench",
            None,
            Mode::Shadow,
            actor,
        )
        .await
        .context("starting the shadow")?;
    Ok(())
}

/// Ends the shadow, checking that it made calls.
fn end_shadow(
    rollouts: &taskhost::rollout::Rollouts,
    actor: &Actor,
    round: &str,
) -> anyhow::Result<()> {
    let ended = rollouts.end("audit", "end-shadow", actor)?;
    let counts = ended.report.counts();
    if counts.same + counts.different + counts.candidate_failed == 0 {
        bail!("the shadow made no call: {counts:?}");
    }
    eprintln!("   {round}: shadow {counts:?}");
    Ok(())
}

/// `STREAMS` ordered streams through `pipeline` for `time`: each sends its next message when
/// the last is answered, or, with `pace`, every `pace` (latency then counts from when the
/// message was due, so a stream that falls behind shows it).
async fn measure(
    pipeline: &Pipeline,
    label: &str,
    time: Duration,
    pace: Option<Duration>,
) -> anyhow::Result<Round> {
    let stop = Arc::new(AtomicBool::new(false));
    let cpu0 = cpu::own_seconds()?;
    let started = Instant::now();
    let streams: Vec<_> = (0..STREAMS)
        .map(|s| {
            let (pipeline, stop) = (pipeline.clone(), stop.clone());
            let user = format!("shadow-{label}-{s}-{}", uuid::Uuid::new_v4().simple());
            tokio::spawn(async move {
                let mut l = Latencies::default();
                let mut n = 0u64;
                let mut clock = pace.map(|p| {
                    // Streams start spread over one period, not all at once.
                    let offset = p.mul_f64(s as f64 / STREAMS as f64);
                    tokio::time::interval_at(tokio::time::Instant::now() + offset, p)
                });
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let payload = events::created(&format!("{user}-{n}"), &user);
                    let t = match clock.as_mut() {
                        Some(clock) => clock.tick().await.into_std(),
                        None => Instant::now(),
                    };
                    let fate = pipeline
                        .handle(
                            Received {
                                topic: "task-events",
                                payload: payload.as_bytes(),
                                id: None,
                            },
                            Attempt::LAST,
                        )
                        .await;
                    l.record(t.elapsed());
                    if !matches!(fate.answer, Answer::Done) {
                        anyhow::bail!("a message was not handled: {:?}", fate.handled);
                    }
                }
                Ok((l, n))
            })
        })
        .collect();
    tokio::time::sleep(time).await;
    stop.store(true, Ordering::Relaxed);
    let mut round = Round {
        latencies: Latencies::default(),
        messages: 0,
        cpu_seconds: 0.0,
        elapsed: Duration::ZERO,
    };
    for s in streams {
        let (l, n) = s.await??;
        round.latencies.merge(&l);
        round.messages += n;
    }
    round.elapsed = started.elapsed();
    round.cpu_seconds = cpu::own_seconds()? - cpu0;
    Ok(round)
}

/// The candidate's own call: decode excluded, a fresh instance and `handle`, on this thread.
fn candidate_call_cost(runtime: &Runtime, bytes: &[u8]) -> anyhow::Result<Summary> {
    let candidate = runtime.load_bytes(bytes, "shadow candidate")?;
    let mut calls = Nanos::default();
    for i in 0..2_200u64 {
        let payload = events::created(&format!("call-{i}"), "call-user");
        let now = wire::time::now();
        let message = wire::decode("task-events", payload.as_bytes(), now)?;
        let wit = convert::message_to(&message).context("a task event goes to components")?;
        let t = Instant::now();
        let answer = runtime.call(&candidate, "task-events", &wit, now.timestamp_millis())?;
        let took = t.elapsed();
        let effects =
            answer.map_err(|f| anyhow::anyhow!("the candidate refused the message: {f:?}"))?;
        std::hint::black_box(effects);
        if i >= 200 {
            calls.record(took);
        }
    }
    Ok(calls.summary())
}
