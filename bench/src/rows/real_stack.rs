//! Row 5 — through the real stack: events published into Kafka through daprd's publish API,
//! delivered by daprd to the release `taskhost` (Dapr mode, a fresh PostgreSQL database of the
//! local stack), single and bulk subscribe. Reference in the same run: the same daprd + Kafka
//! delivering the same events to the no-op app ([`crate::noop::serve_for_daprd`]), the ceiling
//! of Dapr itself on this machine.
//!
//! Two phases per subscriber, because one burst cannot show both figures honestly:
//! - **burst**: `BURST` events bulk-published as fast as daprd takes them; events/s = events ÷
//!   (last effect − first publish). Its latencies are mostly queueing and are kept in the JSON.
//! - **paced**: `PACED` events published one by one at `PACED_RATE`/s, well under both
//!   ceilings; publish → last effect p50/p95/p99 from these.
//!
//! The effect time of an event in taskhost is the latest `processed_at` of its four components
//! (`processed_messages`, written in the same transaction as the effects); in the no-op app the
//! time it received the event. Both clocks are this machine's wall clock in epoch ms.
//!
//! daprd runs with one app id for every phase (`taskhost-bench`, so one Kafka consumer group):
//! each phase starts where the previous one stopped reading, and a first drain consumes whatever
//! an earlier run or the e2e suite left in the topic.

use crate::Ctx;
use crate::db::Backend;
use crate::events;
use crate::host_proc::{Host, HostSpec};
use crate::noop;
use crate::report::{Row, Value, met};
use crate::stats::{Latencies, Summary};
use anyhow::{Context, bail};
use serde_json::{Value as Json, json};
use sqlx::Connection;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const BURST: u64 = 5_000;
const PACED: u64 = 500;
const PACED_RATE: f64 = 100.0;
/// Events per bulk-publish request in the burst.
const PUBLISH_CHUNK: u64 = 100;
const USERS: u64 = 50;
const APP_ID: &str = "taskhost-bench";
const PUBSUB: &str = "pubsub-kafka";
const TOPIC: &str = "task-events";

/// Where the local stack is and which ports it uses (deploy/local-stack/env.sh defaults).
pub struct Stack {
    pub scripts: PathBuf,
    pub app_port: u16,
    pub dapr_http_port: u16,
    /// The stack's PostgreSQL; fresh databases are created beside it.
    pub pg_url: String,
}

impl Stack {
    pub fn from_env(pg_url: String) -> anyhow::Result<Self> {
        let port = |var: &str, default: u16| -> anyhow::Result<u16> {
            match std::env::var(var) {
                Ok(v) => v
                    .parse()
                    .with_context(|| format!("{var}={v:?} is not a port")),
                Err(_) => Ok(default),
            }
        };
        Ok(Self {
            scripts: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/local-stack"),
            app_port: port("APP_PORT", 8080)?,
            dapr_http_port: port("DAPR_HTTP_PORT", 3500)?,
            pg_url,
        })
    }

    fn sidecar(&self) -> String {
        format!("http://127.0.0.1:{}", self.dapr_http_port)
    }

    async fn daprd(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = tokio::process::Command::new(self.scripts.join("daprd.sh"))
            .args(args)
            .env("APP_ID", APP_ID)
            .env("APP_PORT", self.app_port.to_string())
            .env("DAPR_HTTP_PORT", self.dapr_http_port.to_string())
            .env("DAPR_LOG_LEVEL", "warn")
            .env_remove("APP_API_TOKEN")
            .env_remove("DAPR_API_TOKEN")
            .output()
            .await
            .context("running deploy/local-stack/daprd.sh")?;
        if !out.status.success() {
            bail!(
                "daprd.sh {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    async fn start_daprd(&self) -> anyhow::Result<()> {
        // One left by an earlier phase or run would have other settings.
        self.daprd(&["stop"]).await?;
        self.daprd(&[]).await
    }

    async fn stop_daprd(&self) {
        if let Err(e) = self.daprd(&["stop"]).await {
            eprintln!("!! stopping daprd: {e:#}");
        }
    }

    /// Until daprd has read the app's subscriptions (it does once the app answers).
    async fn wait_for_subscription(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        let began = Instant::now();
        loop {
            if let Ok(r) = client
                .get(format!("{}/v1.0/metadata", self.sidecar()))
                .send()
                .await
                && let Ok(v) = r.json::<Json>().await
                && v["subscriptions"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s["topic"] == TOPIC))
            {
                return Ok(());
            }
            if began.elapsed() > Duration::from_secs(60) {
                bail!("daprd did not report the task-events subscription within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// What a subscriber (taskhost or the no-op app) reports: how many events of the run have had
/// their effect, and when each did (epoch ms).
trait Effects {
    async fn count(&self, prefix: &str) -> anyhow::Result<u64>;
    async fn times(&self, prefix: &str) -> anyhow::Result<HashMap<String, i64>>;
}

struct NoopEffects(noop::Receipts);

impl Effects for NoopEffects {
    async fn count(&self, prefix: &str) -> anyhow::Result<u64> {
        Ok(self
            .0
            .lock()
            .expect("receipts lock")
            .keys()
            .filter(|k| k.starts_with(prefix))
            .count() as u64)
    }
    async fn times(&self, prefix: &str) -> anyhow::Result<HashMap<String, i64>> {
        let r = self.0.lock().expect("receipts lock");
        Ok(r.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), *v))
            .collect())
    }
}

struct HostEffects(String);

impl HostEffects {
    async fn conn(&self) -> anyhow::Result<sqlx::AnyConnection> {
        sqlx::any::install_default_drivers();
        Ok(sqlx::AnyConnection::connect(&self.0).await?)
    }
}

impl Effects for HostEffects {
    /// Events all four components have processed.
    async fn count(&self, prefix: &str) -> anyhow::Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT event_id FROM processed_messages WHERE event_id LIKE $1 \
             GROUP BY event_id HAVING COUNT(*) >= 4) AS done",
        )
        .bind(format!("{prefix}%"))
        .fetch_one(&mut self.conn().await?)
        .await?;
        Ok(n as u64)
    }
    async fn times(&self, prefix: &str) -> anyhow::Result<HashMap<String, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT event_id, MAX(processed_at) FROM processed_messages WHERE event_id LIKE $1 \
             GROUP BY event_id HAVING COUNT(*) >= 4",
        )
        .bind(format!("{prefix}%"))
        .fetch_all(&mut self.conn().await?)
        .await?;
        Ok(rows.into_iter().collect())
    }
}

/// One phase's figures.
struct Phase {
    events: u64,
    seconds: f64,
    latency: Summary,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }
}

fn entry(id: &str, n: u64, run: &str) -> (String, Json) {
    let user = format!("{run}-u{}", n % USERS);
    let data = events::created(id, &user);
    (user, events::cloudevent(id, TOPIC, &data))
}

/// Publishes `n` events with ids `<prefix><i>`; returns each id's publish time (epoch ms, taken
/// just before the request that carries it). `rate` paces single publishes; without it the
/// events go out in bulk-publish requests of [`PUBLISH_CHUNK`], back to back.
async fn publish(
    client: &reqwest::Client,
    stack: &Stack,
    run: &str,
    prefix: &str,
    n: u64,
    rate: Option<f64>,
) -> anyhow::Result<HashMap<String, i64>> {
    let mut sent = HashMap::new();
    let began = Instant::now();
    match rate {
        Some(rate) => {
            for i in 0..n {
                let due = began + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let id = format!("{prefix}{i}");
                let (user, event) = entry(&id, i, run);
                sent.insert(id, chrono::Utc::now().timestamp_millis());
                let r = client
                    .post(format!(
                        "{}/v1.0/publish/{PUBSUB}/{TOPIC}?metadata.partitionKey={user}",
                        stack.sidecar()
                    ))
                    .header("content-type", "application/cloudevents+json")
                    .body(event.to_string())
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("publish answered {}: {}", r.status(), r.text().await?);
                }
            }
        }
        None => {
            let mut i = 0;
            while i < n {
                let end = (i + PUBLISH_CHUNK).min(n);
                let mut ids = Vec::new();
                let entries: Vec<Json> = (i..end)
                    .map(|k| {
                        let id = format!("{prefix}{k}");
                        let (user, event) = entry(&id, k, run);
                        ids.push(id.clone());
                        json!({"entryId": id, "event": event, "contentType": "application/cloudevents+json",
                               "metadata": {"partitionKey": user}})
                    })
                    .collect();
                let now = chrono::Utc::now().timestamp_millis();
                sent.extend(ids.into_iter().map(|id| (id, now)));
                // Bulk publish is stable from Dapr 1.18 (`/v1.0-alpha1/...` still answers).
                let r = client
                    .post(format!(
                        "{}/v1.0/publish/bulk/{PUBSUB}/{TOPIC}",
                        stack.sidecar()
                    ))
                    .json(&entries)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("bulk publish answered {}: {}", r.status(), r.text().await?);
                }
                i = end;
            }
        }
    }
    Ok(sent)
}

/// Waits until every published event of `prefix` has had its effect (fails after `limit`).
async fn wait_all(
    effects: &impl Effects,
    prefix: &str,
    n: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let began = Instant::now();
    loop {
        let done = effects.count(prefix).await?;
        if done >= n {
            return Ok(());
        }
        if began.elapsed() > limit {
            bail!(
                "only {done} of {n} events had their effect after {} s",
                limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn phase(
    client: &reqwest::Client,
    stack: &Stack,
    effects: &impl Effects,
    run: &str,
    name: &str,
    n: u64,
    rate: Option<f64>,
) -> anyhow::Result<Phase> {
    let prefix = format!("{run}-{name}-");
    let sent = publish(client, stack, run, &prefix, n, rate).await?;
    wait_all(effects, &prefix, n, Duration::from_secs(600)).await?;
    let done = effects.times(&prefix).await?;
    let mut latency = Latencies::default();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for (id, at) in &sent {
        let effect = *done.get(id).context("an event without its effect")?;
        first = first.min(*at);
        last = last.max(effect);
        latency.record(Duration::from_millis((effect - at).max(0) as u64));
    }
    Ok(Phase {
        events: n,
        seconds: ((last - first).max(1) as f64) / 1000.0,
        latency: latency.summary(),
    })
}

/// Drains what is already in the topic for this consumer group: waits until the subscriber's
/// count of any events stops growing for 2 s.
async fn drain(effects: &impl Effects) -> anyhow::Result<u64> {
    let mut last = effects.count("").await?;
    let mut stable_since = Instant::now();
    let began = Instant::now();
    while stable_since.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = effects.count("").await?;
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
        if began.elapsed() > Duration::from_secs(300) {
            bail!("the topic's backlog was still being delivered after 300 s");
        }
    }
    Ok(last)
}

/// Both phases against whatever subscriber runs on the app port, under a fresh daprd.
async fn measure(
    stack: &Stack,
    effects: &impl Effects,
    run: &str,
) -> anyhow::Result<(Phase, Phase, u64)> {
    let client = reqwest::Client::new();
    stack.start_daprd().await?;
    let result = async {
        stack.wait_for_subscription(&client).await?;
        let backlog = drain(effects).await?;
        let burst = phase(&client, stack, effects, run, "burst", BURST, None).await?;
        let paced = phase(
            &client,
            stack,
            effects,
            run,
            "paced",
            PACED,
            Some(PACED_RATE),
        )
        .await?;
        Ok((burst, paced, backlog))
    }
    .await;
    stack.stop_daprd().await;
    result
}

pub async fn run(ctx: &Ctx, stack: &Stack, bulk: bool) -> anyhow::Result<Row> {
    let shape = if bulk { "bulk" } else { "single" };
    let run = format!("s{}", uuid::Uuid::new_v4().simple());

    eprintln!("   {shape}: no-op app behind daprd");
    let addr = format!("127.0.0.1:{}", stack.app_port).parse()?;
    let (receipts, task) = noop::serve_for_daprd(addr, bulk).await?;
    let reference = measure(stack, &NoopEffects(receipts), &format!("{run}-ref")).await;
    task.abort();
    let _ = task.await;
    let (ref_burst, ref_paced, ref_backlog) = reference.context("the no-op app behind daprd")?;

    eprintln!("   {shape}: taskhost behind daprd");
    let backend = Backend::Postgres(stack.pg_url.clone());
    let db_url = backend
        .fresh(&ctx.scratch, &format!("stack_{shape}"))
        .await?;
    let log = ctx.scratch.join(format!("stack_{shape}.log"));
    let measured = async {
        let host = Host::start(HostSpec {
            binary: &ctx.host_bin,
            components_dir: &ctx.components_dir,
            database_url: db_url.clone(),
            cache_dir: ctx.cache_dir.clone(),
            env: vec![
                ("TASKHOST_DELIVERY", "dapr".into()),
                ("DAPR_HTTP_PORT", stack.dapr_http_port.to_string()),
                ("TASKHOST_DAPR_BULK", bulk.to_string()),
            ],
            wait_ready: false,
            log: log.clone(),
            port: Some(stack.app_port),
        })
        .await?;
        let m = measure(stack, &HostEffects(db_url.clone()), &run).await;
        host.stop().await;
        m
    }
    .await;
    backend.drop_database(&db_url).await;
    let (burst, paced, backlog) =
        measured.with_context(|| format!("taskhost behind daprd; host log {}", log.display()))?;

    let ratio = burst.rate() / ref_burst.rate();
    let p99 = paced.latency.p99_ms();
    let cell = |b: &Phase, p: &Phase| Value {
        text: format!(
            "{:.0} events/s · publish → effect p50 {:.0} ms · p95 {:.0} ms · p99 {:.0} ms",
            b.rate(),
            p.latency.p50_ms(),
            p.latency.p95_us / 1000.0,
            p.latency.p99_ms()
        ),
        summary: Some(p.latency),
        rate_per_s: Some(b.rate()),
    };
    let raw_phase = |p: &Phase| json!({"events": p.events, "seconds": p.seconds, "events_per_s": p.rate(), "latency": p.latency});
    Ok(Row {
        id: format!("stack.{shape}"),
        what: format!(
            "through daprd + Kafka + PostgreSQL, {shape} subscribe ({BURST} events bulk-published at once for events/s; \
             {PACED} at {PACED_RATE:.0}/s for publish → last effect; {USERS} users)"
        ),
        taskhost: cell(&burst, &paced),
        reference: cell(&ref_burst, &ref_paced),
        reference_what: "same daprd + Kafka delivering to the no-op app (publish → receipt)".into(),
        ratio: Some(ratio),
        ratio_what: "events/s ÷ no-op".into(),
        target: Some(if bulk {
            format!(
                "≥ 50 % of the no-op ceiling ({}), p99 ≤ 250 ms ({}); first wave: ≥ 80 % ({})",
                met(ratio >= 0.5),
                met(p99 <= 250.0),
                met(ratio >= 0.8)
            )
        } else {
            format!(
                "p99 ≤ 250 ms ({}); the events/s target is for bulk",
                met(p99 <= 250.0)
            )
        }),
        raw: json!({"taskhost": {"burst": raw_phase(&burst), "paced": raw_phase(&paced), "backlog_drained": backlog},
                    "reference": {"burst": raw_phase(&ref_burst), "paced": raw_phase(&ref_paced), "backlog_drained": ref_backlog},
                    "paced_rate_per_s": PACED_RATE, "publish_chunk": PUBLISH_CHUNK}),
    })
}
