//! Row 4 — start-up to ready with a warm compiled-component cache, RSS idle and under load
//! (from `/proc/<pid>/status`), and hot-swap latency (read from the hot-swap stream test's
//! output, which measures it through the admin API under a steady stream).

use crate::Ctx;
use crate::host_proc::{Host, HostSpec};
use crate::report::{Row, Value, met};
use anyhow::bail;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Starts the host twice on SQLite: the first start fills the compiled-component cache, the
/// second is the one timed (process spawn → `/readyz` 200). Then idles and reads the RSS.
pub async fn startup_and_idle(ctx: &Ctx) -> anyhow::Result<(Row, Row)> {
    let cache = ctx.scratch.join("startup-cache");
    let mut startups = Vec::new();
    let mut idle = 0.0;
    for (i, label) in ["cold", "warm", "warm2", "warm3"].iter().enumerate() {
        let host = Host::start(HostSpec {
            binary: &ctx.host_bin,
            components_dir: &ctx.components_dir,
            database_url: format!(
                "sqlite://{}?mode=rwc",
                ctx.scratch.join(format!("startup-{label}.db")).display()
            ),
            cache_dir: cache.clone(),
            env: vec![],
            wait_ready: true,
            log: ctx.scratch.join(format!("startup-{label}.log")),
            port: None,
        })
        .await?;
        startups.push(host.startup);
        if i == 1 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            idle = host.rss_mib()?;
        }
        host.stop().await;
    }
    let cold = startups[0];
    let mut warm: Vec<Duration> = startups[1..].to_vec();
    warm.sort();
    let median = warm[warm.len() / 2];
    let startup = Row {
        id: "startup".into(),
        what: "start-up to ready (`/readyz` 200), SQLite, warm compiled-component cache".into(),
        taskhost: Value::text(format!(
            "{:.0} ms (median of {} warm starts)",
            median.as_secs_f64() * 1e3,
            warm.len()
        )),
        reference: Value::text(format!("{:.0} ms", cold.as_secs_f64() * 1e3)),
        reference_what: "cold start of the same run (compiles the four components)".into(),
        ratio: Some(median.as_secs_f64() / cold.as_secs_f64()),
        ratio_what: "warm ÷ cold".into(),
        target: Some(format!("≤ 1 s ({})", met(median <= Duration::from_secs(1)))),
        raw: json!({"warm_ms": warm.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>(), "cold_ms": cold.as_secs_f64() * 1e3}),
    };
    let rss = Row {
        id: "rss.idle".into(),
        what: "RSS idle (2 s after ready, four components loaded)".into(),
        taskhost: Value::text(format!("{idle:.1} MiB")),
        reference: Value::text("—"),
        reference_what: String::new(),
        ratio: None,
        ratio_what: String::new(),
        target: Some(format!("≤ 64 MiB ({})", met(idle <= 64.0))),
        raw: json!({"idle_mib": idle}),
    };
    Ok((startup, rss))
}

pub fn rss_under_load(peak: f64) -> Row {
    Row {
        id: "rss.load".into(),
        what: "RSS under load (peak, sampled every 100 ms during the HTTP rows)".into(),
        taskhost: Value::text(format!("{peak:.1} MiB")),
        reference: Value::text("—"),
        reference_what: String::new(),
        ratio: None,
        ratio_what: String::new(),
        target: None,
        raw: json!({"peak_mib": peak}),
    }
}

/// Parses `hot-swap latency: <what> request → answer X ms, request → first message on the new
/// version Y ms` lines.
pub fn hot_swap(log: &Path) -> anyhow::Result<Row> {
    let text = std::fs::read_to_string(log)?;
    let mut first = Vec::new();
    let mut raw = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("hot-swap")) {
        raw.push(line.to_string());
        if let Some((_, tail)) = line.split_once("first message on the new version")
            && let Some(ms) = tail
                .trim()
                .strip_suffix("ms")
                .and_then(|v| v.trim().parse::<f64>().ok())
        {
            let what = line
                .trim_start_matches("hot-swap latency:")
                .split("request")
                .next()
                .unwrap_or("")
                .trim();
            first.push((what.to_string(), ms));
        }
    }
    if first.is_empty() {
        bail!(
            "no `hot-swap latency … first message on the new version` line in {}",
            log.display()
        );
    }
    let text = first
        .iter()
        .map(|(w, ms)| format!("{w}: {ms:.1} ms"))
        .collect::<Vec<_>>()
        .join(" · ");
    Ok(Row {
        id: "hot_swap".into(),
        what: "hot swap under a steady stream: request → first message on the new version".into(),
        taskhost: Value::text(text),
        reference: Value::text("—"),
        reference_what: String::new(),
        ratio: None,
        ratio_what: String::new(),
        target: None,
        raw: json!({"lines": raw}),
    })
}
