//! Row 2 — the Dapr delivery route: CloudEvents POSTed over loopback HTTP to the real host
//! binary's `/dapr/events/task-events` (Dapr mode, no sidecar needed for this route), single
//! and bulk, at `connections` concurrent connections; every delivery's effects are committed
//! before its answer, and the run checks afterwards that the database holds a processed record
//! for each (component, delivered event). Reference: the same load against the no-op app.

use crate::Ctx;
use crate::db::Backend;
use crate::events;
use crate::host_proc::{Host, HostSpec, RssSampler};
use crate::loadgen::{self, Load, Outcome};
use crate::noop;
use crate::report::{Row, Value, met};
use anyhow::{Context, bail};
use bytes::Bytes;
use serde_json::{Value as Json, json};
use sqlx::Connection;

#[derive(Clone, Copy)]
pub enum Shape {
    Single,
    /// Entries per bulk delivery.
    Bulk(usize),
}

impl Shape {
    fn name(&self) -> &'static str {
        match self {
            Shape::Single => "single",
            Shape::Bulk(_) => "bulk",
        }
    }
}

/// Request bodies: unique event ids per run, users spread over 1,000 ids.
fn body(run: String, shape: Shape) -> impl Fn(u64) -> (Bytes, u64) + Send + Sync + 'static {
    move |n| match shape {
        Shape::Single => {
            let id = format!("{run}-{n}");
            let data = events::created(&id, &format!("{run}-u{}", n % 1000));
            (
                Bytes::from(events::cloudevent(&id, "task-events", &data).to_string()),
                1,
            )
        }
        Shape::Bulk(k) => {
            let entries: Vec<Json> = (0..k as u64)
                .map(|i| {
                    let id = format!("{run}-{n}-{i}");
                    let data = events::created(&id, &format!("{run}-u{}", (n * k as u64 + i) % 1000));
                    json!({"entryId": format!("{i}"), "event": events::cloudevent(&id, "task-events", &data),
                           "contentType": "application/cloudevents+json"})
                })
                .collect();
            (Bytes::from(json!({"entries": entries, "id": format!("{run}-{n}"), "topic": "task-events", "pubsubname": "pubsub-kafka", "type": "com.dapr.event.sent.bulk"}).to_string()), k as u64)
        }
    }
}

/// Every answer must be SUCCESS (each entry's, for bulk).
fn accept(status: u16, body: &[u8]) -> Result<(), String> {
    if status != 200 {
        return Err(format!(
            "answer {status}: {}",
            String::from_utf8_lossy(body)
        ));
    }
    let v: Json = serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    let ok = match v.get("statuses").and_then(Json::as_array) {
        Some(s) => s.iter().all(|e| e["status"] == "SUCCESS"),
        None => v["status"] == "SUCCESS",
    };
    if ok {
        Ok(())
    } else {
        Err(format!("not SUCCESS: {v}"))
    }
}

fn load(ctx: &Ctx, url: String, cpu_of: Option<u32>) -> Load {
    Load {
        url,
        connections: ctx.connections,
        warm_up: ctx.warm_up,
        duration: ctx.duration,
        headers: vec![],
        cpu_of,
    }
}

/// A route row, with the CPU each side spent per delivery (µs).
pub struct Measured {
    pub row: Row,
    pub host_cpu_us: f64,
    pub noop_cpu_us: f64,
}

pub async fn run(
    ctx: &Ctx,
    backend: &Backend,
    shape: Shape,
    peak_rss: &mut f64,
) -> anyhow::Result<Measured> {
    let label = format!("dapr_{}_{}", backend.name(), shape.name());
    let run = format!("b{}", uuid::Uuid::new_v4().simple());

    // The reference first, then taskhost, under the same generator. The no-op app runs in a
    // process of its own, so that its CPU time is measured apart from the generator's.
    let noop = noop::NoopProcess::start().await?;
    let reference = loadgen::run(
        &load(
            ctx,
            format!("http://{}/dapr/events/task-events", noop.addr),
            noop.pid(),
        ),
        body(format!("{run}-ref"), shape),
        accept,
    )
    .await;
    drop(noop);
    let reference = reference.context("load against the no-op app")?;

    let db_url = backend.fresh(&ctx.scratch, &label).await?;
    let host = Host::start(HostSpec {
        binary: &ctx.host_bin,
        components_dir: &ctx.components_dir,
        database_url: db_url.clone(),
        cache_dir: ctx.cache_dir.clone(),
        env: vec![
            ("TASKHOST_DELIVERY", "dapr".into()),
            // Nothing listens there: the outbound side stays idle for this row.
            ("DAPR_HTTP_PORT", "9".into()),
        ],
        wait_ready: false,
        log: ctx.scratch.join(format!("{label}.log")),
        port: None,
    })
    .await?;
    let pid = host.pid().context("host pid")?;
    let sampler = RssSampler::start(pid);
    let measured = loadgen::run(
        &load(
            ctx,
            format!("{}/dapr/events/task-events", host.url),
            Some(pid),
        ),
        body(run.clone(), shape),
        accept,
    )
    .await;
    *peak_rss = peak_rss.max(sampler.peak_mib());
    host.stop().await;
    let measured = measured.with_context(|| {
        format!(
            "load against taskhost ({label}); host log in {}",
            ctx.scratch.join(format!("{label}.log")).display()
        )
    });
    let verified = match &measured {
        Ok(_) => verify(&db_url, &run).await,
        Err(_) => Ok(0),
    };
    backend.drop_database(&db_url).await;
    let measured = measured?;
    let processed = verified?;
    // Every answered delivery (inside and outside the window) left 4 records; at least the
    // measured ones must be there.
    if processed < measured.items * 4 {
        bail!(
            "{label}: {} deliveries answered SUCCESS in the window but only {processed} processed records (want ≥ 4 each)",
            measured.items
        );
    }
    Ok(Measured {
        host_cpu_us: measured.cpu_us_per_item().unwrap_or(f64::NAN),
        noop_cpu_us: reference.cpu_us_per_item().unwrap_or(f64::NAN),
        row: row(
            ctx, &label, backend, shape, &measured, &reference, processed,
        ),
    })
}

/// Processed records of this run's events (all four components record every task event).
async fn verify(db_url: &str, run: &str) -> anyhow::Result<u64> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(db_url).await?;
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM processed_messages WHERE event_id LIKE $1")
            .bind(format!("{run}-%"))
            .fetch_one(&mut conn)
            .await?;
    Ok(n as u64)
}

fn row(
    ctx: &Ctx,
    label: &str,
    backend: &Backend,
    shape: Shape,
    m: &Outcome,
    r: &Outcome,
    processed: u64,
) -> Row {
    let (ms, rs) = (m.latency.summary(), r.latency.summary());
    let rate = m.items_per_s();
    let per = match shape {
        Shape::Single => "one event per request".to_string(),
        Shape::Bulk(k) => format!("{k} events per bulk request; latency per request"),
    };
    Row {
        id: format!("dapr_route.{}.{}", backend.name(), shape.name()),
        what: format!(
            "Dapr delivery route, {}, {} ({per}, {} connections)",
            backend.name(),
            shape.name(),
            ctx.connections
        ),
        taskhost: Value::rate_cpu(rate, "deliveries", ms, m.cpu_us_per_item()),
        reference: Value::rate_cpu(r.items_per_s(), "deliveries", rs, r.cpu_us_per_item()),
        reference_what: "no-op Rust app answering SUCCESS".into(),
        ratio: Some(rate / r.items_per_s()),
        ratio_what: "deliveries/s ÷ no-op".into(),
        target: Some(format!(
            "≥ 0.35 × the no-op app ({}), p99 ≤ 15 ms ({}); first wave: ≥ 25,000/s ({})",
            met(rate >= 0.35 * r.items_per_s()),
            met(ms.p99_ms() <= 15.0),
            met(rate >= 25_000.0)
        )),
        raw: json!({"label": label, "taskhost": {"deliveries": m.items, "requests": m.requests, "seconds": m.elapsed.as_secs_f64(), "latency": ms, "cpu_seconds": m.cpu_seconds},
                    "reference": {"deliveries": r.items, "requests": r.requests, "seconds": r.elapsed.as_secs_f64(), "latency": rs, "cpu_seconds": r.cpu_seconds},
                    "processed_records": processed}),
    }
}

/// The argument that makes `taskhost-bench` a load generator only:
/// `taskhost-bench load-route URL SECONDS [CONNECTIONS [PID]]` sends single CloudEvents as this
/// row does to URL (`…/dapr/events/task-events`) for SECONDS and prints what it measured (with
/// PID, that process's CPU per delivery) — the load to profile the host under
/// (`scripts/profile-route.sh`).
pub const LOAD: &str = "load-route";

pub async fn load_forever() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let (Some(url), Some(seconds)) = (args.first(), args.get(1)) else {
        bail!("usage: taskhost-bench {LOAD} URL SECONDS [CONNECTIONS [PID]]");
    };
    let connections = args.get(2).map_or(Ok(64), |c| c.parse())?;
    let cpu_of = args.get(3).map(|p| p.parse()).transpose()?;
    let load = Load {
        url: url.clone(),
        connections,
        warm_up: std::time::Duration::from_millis(500),
        duration: std::time::Duration::from_secs_f64(seconds.parse()?),
        headers: vec![],
        cpu_of,
    };
    let run = format!("p{}", uuid::Uuid::new_v4().simple());
    let out = loadgen::run(&load, body(run, Shape::Single), accept).await?;
    let l = out.latency.summary();
    let cpu = out
        .cpu_us_per_item()
        .map(|us| format!(" · CPU {us:.0} µs per delivery"))
        .unwrap_or_default();
    println!(
        "{:.0} deliveries/s · p50 {:.2} ms · p99 {:.2} ms{cpu} ({} in {:.1} s)",
        out.items_per_s(),
        l.p50_ms(),
        l.p99_ms(),
        out.items,
        out.elapsed.as_secs_f64()
    );
    Ok(())
}
