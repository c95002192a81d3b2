//! Row 3 — embedded end-to-end: `connections` writers create tasks through the real binary's
//! Task API (each its own user) for a fixed time; then the run waits until all four consumers
//! have handled every write's event. Reported: writes/s end to end (first write → last consumer
//! done) and the lag of each event (outbox row written → the last of its four processed
//! records). Reference: the database alone doing the same inserts (task row + outbox row in one
//! transaction, through the host's own storage code) with the same concurrency.

use crate::Ctx;
use crate::db::Backend;
use crate::events;
use crate::host_proc::{Host, HostSpec, RssSampler, dev_token};
use crate::report::{Row, Value, met};
use crate::stats::Latencies;
use anyhow::{Context, bail};
use serde_json::json;
use sqlx::{Connection, Row as _};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use taskhost::domain::{EventId, Task, TaskEvent, TaskId, TaskOperation, UserId, topics};
use taskhost::storage::{Db, outbox, tasks};

pub async fn run(ctx: &Ctx, backend: &Backend, peak_rss: &mut f64) -> anyhow::Result<Row> {
    let label = format!("embedded_{}", backend.name());
    let writers = ctx.connections;

    // The reference: the same inserts straight into a fresh database.
    let ref_url = backend.fresh(&ctx.scratch, &format!("{label}_ref")).await?;
    let reference = db_alone(&ref_url, writers, ctx.duration).await;
    backend.drop_database(&ref_url).await;
    let (ref_writes, ref_elapsed, ref_latency) = reference.context("database-alone reference")?;

    let db_url = backend.fresh(&ctx.scratch, &label).await?;
    let log = ctx.scratch.join(format!("{label}.log"));
    let host = Host::start(HostSpec {
        binary: &ctx.host_bin,
        components_dir: &ctx.components_dir,
        database_url: db_url.clone(),
        cache_dir: ctx.cache_dir.clone(),
        env: vec![],
        wait_ready: true,
        log: log.clone(),
        port: None,
    })
    .await?;
    let sampler = RssSampler::start(host.pid().context("host pid")?);
    let result = through_host(ctx, &host, &db_url, writers).await;
    *peak_rss = peak_rss.max(sampler.peak_mib());
    host.stop().await;
    backend.drop_database(&db_url).await;
    let m = result.with_context(|| format!("{label}; host log in {}", log.display()))?;

    let ref_rate = ref_writes as f64 / ref_elapsed.as_secs_f64();
    let lag = m.lag.summary();
    Ok(Row {
        id: format!("embedded.{}", backend.name()),
        what: format!(
            "embedded end-to-end, {}: Task API writes → all four consumers done ({writers} writers)",
            backend.name()
        ),
        taskhost: Value {
            text: format!(
                "{:.0} writes/s end to end ({:.0}/s accepted by the API) · lag p50 {:.0} ms · p99 {:.0} ms",
                m.end_to_end_rate,
                m.api_rate,
                lag.p50_ms(),
                lag.p99_ms()
            ),
            summary: Some(lag),
            rate_per_s: Some(m.end_to_end_rate),
        },
        reference: Value::rate(ref_rate, "inserts", ref_latency.summary()),
        reference_what: "the database alone: task + outbox row per transaction".into(),
        ratio: Some(m.end_to_end_rate / ref_rate),
        ratio_what: "writes/s ÷ database alone".into(),
        target: Some(format!(
            "≥ 0.8 × the database alone ({}), lag p99 ≤ 1 s ({}); first wave: ≥ 5,000 writes/s ({})",
            met(m.end_to_end_rate >= 0.8 * ref_rate),
            met(lag.p99_ms() <= 1000.0),
            met(m.end_to_end_rate >= 5000.0)
        )),
        raw: json!({"writes": m.writes, "write_seconds": m.write_phase.as_secs_f64(), "drain_seconds": m.total.as_secs_f64(),
                    "api_latency": m.api_latency.summary(), "lag": lag,
                    "reference": {"inserts": ref_writes, "seconds": ref_elapsed.as_secs_f64(), "latency": ref_latency.summary()}}),
    })
}

struct Measured {
    writes: u64,
    write_phase: Duration,
    total: Duration,
    api_rate: f64,
    end_to_end_rate: f64,
    api_latency: Latencies,
    lag: Latencies,
}

async fn through_host(
    ctx: &Ctx,
    host: &Host,
    db_url: &str,
    writers: usize,
) -> anyhow::Result<Measured> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut tokens = Vec::new();
    for i in 0..writers {
        tokens.push(dev_token(&ctx.host_bin, &format!("bench-{run}-{i}"))?);
    }
    let began = Instant::now();
    let end = began + ctx.duration;
    let mut tasks_ = Vec::new();
    for token in tokens {
        let url = format!("{}/api/tasks", host.url);
        tasks_.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .build()?;
            let (mut n, mut latency) = (0u64, Latencies::default());
            while Instant::now() < end {
                let sent = Instant::now();
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&events::new_task_body(n))
                    .send()
                    .await?;
                if r.status().as_u16() != 201 {
                    bail!(
                        "POST /api/tasks answered {}: {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    );
                }
                latency.record(sent.elapsed());
                n += 1;
            }
            Ok::<_, anyhow::Error>((n, latency))
        }));
    }
    let (mut writes, mut api_latency) = (0u64, Latencies::default());
    for t in tasks_ {
        let (n, l) = t.await??;
        writes += n;
        api_latency.merge(&l);
    }
    let write_phase = began.elapsed();

    // Wait for the four consumers: 4 processed records per write.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(db_url).await?;
    let want = (writes * 4) as i64;
    let deadline = Instant::now() + Duration::from_secs(if ctx.quick { 60 } else { 300 });
    loop {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM processed_messages")
            .fetch_one(&mut conn)
            .await?;
        if n >= want {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "after {writes} writes only {n} of {want} processed records appeared within the deadline"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = began.elapsed();

    // Lag per event: outbox row written → latest of its processed records.
    let created: HashMap<String, i64> =
        sqlx::query("SELECT payload, created_at FROM outbox WHERE topic = 'task-events'")
            .fetch_all(&mut conn)
            .await?
            .iter()
            .filter_map(|r| {
                let payload: String = r.get(0);
                let v: serde_json::Value = serde_json::from_str(&payload).ok()?;
                Some((v["event_id"].as_str()?.to_string(), r.get::<i64, _>(1)))
            })
            .collect();
    let mut done: HashMap<String, i64> = HashMap::new();
    for r in sqlx::query("SELECT event_id, processed_at FROM processed_messages")
        .fetch_all(&mut conn)
        .await?
    {
        let (id, at): (String, i64) = (r.get(0), r.get(1));
        let e = done.entry(id).or_insert(at);
        *e = (*e).max(at);
    }
    let mut lag = Latencies::default();
    for (id, at) in &created {
        let finished = done
            .get(id)
            .with_context(|| format!("event {id} has no processed record"))?;
        lag.record(Duration::from_millis((finished - at).max(0) as u64));
    }
    Ok(Measured {
        writes,
        write_phase,
        total,
        api_rate: writes as f64 / write_phase.as_secs_f64(),
        end_to_end_rate: writes as f64 / total.as_secs_f64(),
        api_latency,
        lag,
    })
}

/// The same inserts the Task API makes for a create, through the host's storage code, with the
/// host's pool settings (`Db::connect`), from `writers` concurrent tasks.
async fn db_alone(
    url: &str,
    writers: usize,
    duration: Duration,
) -> anyhow::Result<(u64, Duration, Latencies)> {
    let db = Arc::new(Db::connect(url, 10).await?);
    let began = Instant::now();
    let end = began + duration;
    let mut handles = Vec::new();
    for w in 0..writers {
        let db = db.clone();
        handles.push(tokio::spawn(async move {
            let user = UserId::new(format!("ref-{w}")).context("user id")?;
            let (mut n, mut latency) = (0u64, Latencies::default());
            while Instant::now() < end {
                let sent = Instant::now();
                let now = taskhost::wire::time::now();
                let task = Task {
                    id: TaskId::generate(),
                    user_id: user.clone(),
                    title: format!("benchmark task {n}"),
                    description: None,
                    is_completed: false,
                    priority: Default::default(),
                    due_date: None,
                    recurrence: None,
                    tags: vec!["bench".into()],
                    reminder_offsets_minutes: None,
                    occurrence: 1,
                    series_id: None,
                    created_at: now,
                    updated_at: now,
                    completed_at: None,
                };
                let event = TaskEvent {
                    event_id: EventId::generate(),
                    operation: TaskOperation::Created,
                    occurred_at: now,
                    user_id: user.clone(),
                    task: task.clone(),
                    previous: None,
                    reminder_method: None,
                };
                let payload = taskhost::wire::event_json::encode_task_event(&event).to_string();
                let mut tx = db.begin().await?;
                tasks::insert(&mut tx, &task, None).await?;
                outbox::enqueue(
                    &mut tx,
                    topics::TASK_EVENTS,
                    user.as_str(),
                    &payload,
                    now.timestamp_millis(),
                )
                .await?;
                tx.commit().await?;
                latency.record(sent.elapsed());
                n += 1;
            }
            Ok::<_, anyhow::Error>((n, latency))
        }));
    }
    let (mut writes, mut latency) = (0u64, Latencies::default());
    for h in handles {
        let (n, l) = h.await??;
        writes += n;
        latency.merge(&l);
    }
    Ok((writes, began.elapsed(), latency))
}
