//! A closed-loop HTTP load generator: `connections` workers, each with a client of its own
//! (one keep-alive connection, TCP_NODELAY), sending the next request as soon as the previous
//! answer is in, for a fixed time after a warm-up. Every answer is checked by the caller's
//! `accept`; a run with any refused answer cannot be reported as throughput and fails.

use crate::stats::Latencies;
use anyhow::bail;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Load {
    pub url: String,
    pub connections: usize,
    pub warm_up: Duration,
    pub duration: Duration,
    pub headers: Vec<(String, String)>,
    /// A process whose CPU time to measure over the measured window (the server under load).
    pub cpu_of: Option<u32>,
}

pub struct Outcome {
    /// Requests answered and accepted during the measured window.
    pub requests: u64,
    /// Work items they carried (entries of bulk deliveries; 1 per request otherwise).
    pub items: u64,
    pub elapsed: Duration,
    pub latency: Latencies,
    /// CPU seconds [`Load::cpu_of`] used over the measured window, if asked.
    pub cpu_seconds: Option<f64>,
}

impl Outcome {
    pub fn items_per_s(&self) -> f64 {
        self.items as f64 / self.elapsed.as_secs_f64()
    }

    /// CPU time of the measured process per item, in µs.
    pub fn cpu_us_per_item(&self) -> Option<f64> {
        self.cpu_seconds.map(|s| s * 1e6 / self.items.max(1) as f64)
    }
}

/// `body(n)` gives the n-th request body (unique across workers) and how many items it
/// carries; `accept(status, body)` says whether the answer is a success.
pub async fn run<B, A>(load: &Load, body: B, accept: A) -> anyhow::Result<Outcome>
where
    B: Fn(u64) -> (Bytes, u64) + Send + Sync + 'static,
    A: Fn(u16, &[u8]) -> Result<(), String> + Send + Sync + 'static,
{
    let body = Arc::new(body);
    let accept = Arc::new(accept);
    let seq = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + load.warm_up;
    let end = measure_from + load.duration;
    // The server's CPU time from the start of the window to its end.
    let cpu = load.cpu_of.map(|pid| {
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let before = crate::cpu::seconds(pid)?;
            tokio::time::sleep_until(end.into()).await;
            Ok::<_, anyhow::Error>(crate::cpu::seconds(pid)? - before)
        })
    });
    let mut workers = Vec::new();
    for _ in 0..load.connections {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .build()?;
        let (body, accept, seq, url) =
            (body.clone(), accept.clone(), seq.clone(), load.url.clone());
        let headers = load.headers.clone();
        workers.push(tokio::spawn(async move {
            let mut latency = Latencies::default();
            let (mut requests, mut items) = (0u64, 0u64);
            loop {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let (payload, count) = body(n);
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let mut req = client.post(&url).header("content-type", "application/json");
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                let response = req
                    .body(payload)
                    .send()
                    .await
                    .map_err(|e| format!("request failed: {e}"))?;
                let status = response.status().as_u16();
                let answer = response
                    .bytes()
                    .await
                    .map_err(|e| format!("reading the answer: {e}"))?;
                let done = Instant::now();
                accept(status, &answer)?;
                // Counted by when the answer came: a long request (a big bulk delivery) that
                // began in the warm-up still counts if it finished inside the window.
                if done >= measure_from && done <= end {
                    latency.record(done - sent);
                    requests += 1;
                    items += count;
                }
            }
            Ok::<_, String>((latency, requests, items))
        }));
    }
    let mut out = Outcome {
        requests: 0,
        items: 0,
        elapsed: load.duration,
        latency: Latencies::default(),
        cpu_seconds: None,
    };
    for w in workers {
        match w.await? {
            Ok((latency, requests, items)) => {
                out.latency.merge(&latency);
                out.requests += requests;
                out.items += items;
            }
            Err(e) => bail!("{}: {e}", load.url),
        }
    }
    if let Some(cpu) = cpu {
        out.cpu_seconds = Some(cpu.await??);
    }
    if out.requests == 0 {
        bail!(
            "{}: no request completed inside the measured window",
            load.url
        );
    }
    Ok(out)
}
