//! The host's CPU per delivery on the Dapr route (SQLite, single, one CloudEvent per request),
//! beside the sum of its parts measured in the same run:
//!
//! - the no-op app's CPU per request under the same load (HTTP in and out, JSON parsed): from
//!   the route row, the no-op app running in a process of its own;
//! - the empty component's cost per call (a fresh store and instance from the cached
//!   `InstancePre`, the call, the teardown) on the route's own message, times the components
//!   that consume it (four): measured here, one call after another on one thread;
//! - the database alone per event: the statements the host commits for one such event — four
//!   exactly-once records and one audit entry — through the host's own storage code and pool,
//!   batched as its group commit batches them, measured here as this process's CPU time. The
//!   rows are the route's: each event its own id and task, users spread over 1,000 ids, so the
//!   indexes are written where the route's rows write them.
//!
//! Everything else the host spends per delivery is the path between the parts: what this row
//! exists to keep small (issue 17: ≤ 1.3 × the sum).

use crate::Ctx;
use crate::db::Backend;
use crate::events;
use crate::report::{Row, Value, met};
use anyhow::{Context, bail};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use taskhost::domain::{Effect, EventId, TaskId, UserId};
use taskhost::runtime::{Runtime, RuntimeConfig, convert};
use taskhost::storage::{Db, audit, processed};
use taskhost::wire;

/// The components that consume the route's message (every `task-events` consumer).
const CONSUMERS: usize = 4;
/// Events per transaction in the database-alone reference: what the host's group commit
/// gathers at 64 connections (`taskhost_group_commit_jobs` ≈ 100 parts ≈ 25 events since it
/// has one committer on SQLite; ≈ 50 parts with two, before 2026-12-07).
const EVENTS_PER_COMMIT: usize = 25;
/// Writers in the database-alone reference: the host's committers on SQLite.
const WRITERS: u64 = 1;

/// The parts, in µs of CPU per event.
pub struct Parts {
    pub noop_us: f64,
    pub empty_us: f64,
    pub db_us: f64,
}

impl Parts {
    pub fn sum(&self) -> f64 {
        self.noop_us + self.empty_us * CONSUMERS as f64 + self.db_us
    }
}

/// Measures the empty component and the database alone; `noop_us` comes from the route row.
pub async fn parts(
    ctx: &Ctx,
    empty_wasm: &Path,
    audit_wasm: &Path,
    noop_us: f64,
) -> anyhow::Result<Parts> {
    let iterations = if ctx.quick { 3_000 } else { 20_000 };
    let (empty, audit_path) = (empty_wasm.to_path_buf(), audit_wasm.to_path_buf());
    let (empty_us, audit_entry) =
        tokio::task::spawn_blocking(move || empty_cost(&empty, &audit_path, iterations)).await??;
    let db_us = database_alone(ctx, audit_entry).await?;
    Ok(Parts {
        noop_us,
        empty_us,
        db_us,
    })
}

/// The empty component's mean CPU time per call on the route's message (decode and convert
/// included, as the host does them once per message: counted with the calls here, a slight
/// overestimate of the parts), and the audit entry the real audit component makes of it.
fn empty_cost(
    empty_wasm: &Path,
    audit_wasm: &Path,
    iterations: u64,
) -> anyhow::Result<(f64, taskhost::domain::AuditEntry)> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let empty = runtime
        .load_file(empty_wasm)
        .with_context(|| format!("loading {}", empty_wasm.display()))?;
    let audit_component = runtime
        .load_file(audit_wasm)
        .with_context(|| format!("loading {}", audit_wasm.display()))?;
    let message_of = |i: u64| {
        let payload = events::created(&format!("cost-{i}"), &format!("u{}", i % 1000));
        let now = wire::time::now();
        let message = wire::decode("task-events", payload.as_bytes(), now)?;
        let wit_message = convert::message_to(&message)
            .ok_or_else(|| anyhow::anyhow!("a task event is a message for components"))?;
        anyhow::Ok((wit_message, now))
    };
    let (first, now) = message_of(0)?;
    let entry = match runtime.call(
        &audit_component,
        "task-events",
        &first,
        now.timestamp_millis(),
    )? {
        Ok(effects) => effects
            .into_iter()
            .map(convert::effect_from)
            .find_map(|e| match e {
                Ok(Effect::AppendAudit(entry)) => Some(entry),
                _ => None,
            })
            .context("audit made no audit entry of the route's message")?,
        Err(f) => bail!("audit refused the route's message: {f:?}"),
    };
    let call = |i: u64| -> anyhow::Result<()> {
        let (m, now) = message_of(i)?;
        match runtime.call(&empty, "task-events", &m, now.timestamp_millis())? {
            Ok(effects) => {
                std::hint::black_box(effects);
                Ok(())
            }
            Err(f) => bail!("the empty component refused the route's message: {f:?}"),
        }
    };
    for i in 0..200 {
        call(i)?;
    }
    // CPU time of this thread, not wall time: on a busy machine another process taking the
    // core would otherwise count as the component's cost.
    let started = crate::cpu::thread_seconds();
    for i in 0..iterations {
        call(i)?;
    }
    Ok((
        (crate::cpu::thread_seconds() - started) * 1e6 / iterations as f64,
        entry,
    ))
}

/// CPU of this process per event while [`WRITERS`] writers (the host's SQLite committers) commit
/// the route's per-event rows, [`EVENTS_PER_COMMIT`] events a transaction.
async fn database_alone(ctx: &Ctx, entry: taskhost::domain::AuditEntry) -> anyhow::Result<f64> {
    let url = Backend::Sqlite.fresh(&ctx.scratch, "cost_db_alone").await?;
    let db = Db::connect(&url, 8).await?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let seconds = if ctx.quick { 2 } else { 5 };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let cpu_before = crate::cpu::own_seconds()?;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, run, entry) = (db.clone(), run.clone(), entry.clone());
            tokio::spawn(async move {
                let mut events = 0u64;
                let mut batch = 0u64;
                while Instant::now() < deadline {
                    // The route's ids, users and tasks (dapr_route.rs, events::created): event
                    // `{run}-{n}`, its own task `{run}-{n}-task`, users spread over 1,000 ids.
                    // Their spread is what the audit indexes (by task, by user) pay for.
                    let first = (batch * WRITERS + w) * EVENTS_PER_COMMIT as u64;
                    let numbers: Vec<u64> = (first..first + EVENTS_PER_COMMIT as u64).collect();
                    let ids: Vec<String> = numbers.iter().map(|n| format!("{run}-{n}")).collect();
                    let records: Vec<processed::Record> = ids
                        .iter()
                        .flat_map(|id| {
                            ["recurrence", "notification", "audit", "sync"].map(|component| {
                                processed::Record {
                                    component,
                                    event_id: id,
                                    version: "0.1.0",
                                    now_ms: 1,
                                }
                            })
                        })
                        .collect();
                    let entries: Vec<audit::NewAudit> = ids
                        .iter()
                        .zip(&numbers)
                        .map(|(id, n)| {
                            let mut entry = entry.clone();
                            entry.event_id = EventId::new(id.clone()).expect("an id");
                            entry.task_id = TaskId::new(format!("{id}-task")).expect("an id");
                            entry.actor =
                                UserId::new(format!("{run}-u{}", n % 1000)).expect("an id");
                            audit::NewAudit {
                                entry: std::borrow::Cow::Owned(entry),
                                version: "0.1.0".into(),
                                now_ms: 1,
                            }
                        })
                        .collect();
                    let mut tx = db.begin().await?;
                    processed::record_many(&mut tx, &records).await?;
                    audit::insert_many(&mut tx, &entries).await?;
                    tx.commit().await?;
                    events += EVENTS_PER_COMMIT as u64;
                    batch += 1;
                }
                Ok::<_, anyhow::Error>(events)
            })
        })
        .collect();
    let mut events = 0;
    for w in writers {
        events += w.await??;
    }
    let cpu = crate::cpu::own_seconds()? - cpu_before;
    db.pool().close().await;
    Ok(cpu * 1e6 / events.max(1) as f64)
}

/// The row: the host's CPU per delivery beside the sum of its parts.
pub fn row(host_us: f64, parts: &Parts) -> Row {
    let sum = parts.sum();
    let ratio = host_us / sum;
    Row {
        id: "cpu_per_delivery.sqlite.single".into(),
        what: "host CPU per delivery: Dapr route, sqlite, single, 64 connections".into(),
        taskhost: Value::text(format!("{host_us:.0} µs")),
        reference: Value::text(format!(
            "{sum:.0} µs = no-op app {:.0} µs per request + empty component {:.1} µs × {CONSUMERS} consumers + database alone {:.0} µs per event",
            parts.noop_us, parts.empty_us, parts.db_us
        )),
        reference_what: "the sum of its parts".into(),
        ratio: Some(ratio),
        ratio_what: "host CPU ÷ sum of parts".into(),
        target: Some(format!(
            "≤ 1.3 × the sum of its parts ({})",
            met(ratio <= 1.3)
        )),
        raw: json!({"host_cpu_us": host_us, "noop_cpu_us": parts.noop_us, "empty_component_us": parts.empty_us,
                    "consumers": CONSUMERS, "database_alone_us": parts.db_us, "sum_us": sum,
                    "events_per_commit": EVENTS_PER_COMMIT}),
    }
}
