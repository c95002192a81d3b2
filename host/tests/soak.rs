//! The soak: a steady stream of task writes (`support::stream`) through the real Dapr stack for
//! a long time, sampling the host's resident memory and open file descriptors, the rows of the
//! outbox and the exactly-once ledger, and the delivery lag (write → audit entry, and the age
//! of the oldest undelivered outbox row). At the end the stream is drained and checked like a
//! fault case (`support::ledger`).
//!
//! Run it with `just soak` (not in CI): it starts the stack and runs
//! `cargo test --release -p taskhost --test soak -- --ignored`, then
//! `scripts/soak-report.py` turns the samples into `docs/soak.md` (table, slopes) and
//! `docs/soak.svg` (the plot).
//!
//! Retention runs with a short window (`TASKHOST_SOAK_RETENTION_MINUTES`, 10, passes every
//! minute) so that the outbox and the ledger level off within the run, as they do in production
//! after their days; a trigger copies the pruned rows aside (`support::ledger::Archive`) so the
//! end check still sees every event.
//!
//! Settings: `TASKHOST_SOAK_MINUTES` (30), `TASKHOST_SOAK_RATE` (writes/s, 40; `just soak` sets
//! 150), `TASKHOST_SOAK_USERS` (one per 10 writes/s, at least 4), `TASKHOST_SOAK_SAMPLE_SECS`
//! (10), `TASKHOST_SOAK_RETENTION_MINUTES` (10), `TASKHOST_SOAK_OUT` (the samples' CSV,
//! `<target dir>/soak/samples.csv`), plus those of `e2e_dapr.rs`.

mod support;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sqlx::Row as _;
use sqlx::postgres::PgPoolOptions;

use support::env_number;
use support::ledger::{Archive, Ledger};
use support::stack::E2e;
use support::stream::Stream;

/// Resident memory of a process, in KiB (`VmRSS` of `/proc/<pid>/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/fd: {e}"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a long run through the local Dapr stack: run `just soak`"]
async fn soak() {
    let minutes: f64 = env_number("TASKHOST_SOAK_MINUTES", 30.0);
    let rate: f64 = env_number("TASKHOST_SOAK_RATE", 40.0);
    let users = env_number("TASKHOST_SOAK_USERS", (rate / 10.0).ceil().max(4.0)) as usize;
    let every = Duration::from_secs_f64(env_number("TASKHOST_SOAK_SAMPLE_SECS", 10.0));
    let out = std::env::var("TASKHOST_SOAK_OUT")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map_or_else(
            || support::target_dir().join("soak/samples.csv"),
            PathBuf::from,
        );
    let pace = Duration::from_secs_f64(users as f64 / rate);
    println!(
        "soak: {minutes} min at {rate} writes/s ({users} users, one write each every {pace:?}), a sample every {every:?} into {}",
        out.display()
    );

    let retention_min: f64 = env_number("TASKHOST_SOAK_RETENTION_MINUTES", 10.0);
    println!(
        "soak: delivered outbox rows and exactly-once records kept {retention_min} min, pruned every minute"
    );

    let mut e2e = E2e::new().await;
    // A short retention, checked every minute: the outbox and the ledger stop growing once
    // their oldest rows pass it, well inside the run.
    let hours = format!("{}", retention_min / 60.0);
    for (key, value) in [
        ("TASKHOST_OUTBOX_RETENTION_HOURS", hours.as_str()),
        ("TASKHOST_PROCESSED_RETENTION_HOURS", hours.as_str()),
        ("TASKHOST_RETENTION_INTERVAL_MINUTES", "1"),
    ] {
        e2e.extra_env.push((key.to_owned(), value.to_owned()));
    }
    let archive = Archive::install(&e2e.stack.database_url).await;
    let host = e2e.start().await;
    let pid = host.pid().expect("the host runs");
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&e2e.stack.database_url)
        .await
        .expect("connect to the stack's database");
    let seed = fastrand::u64(..);
    let stream = Stream::start(e2e.stack.app_addr(), users, seed, pace).await;
    let ids = stream.users.clone();

    std::fs::create_dir_all(out.parent().expect("a directory")).expect("create the output dir");
    let mut csv = std::fs::File::create(&out).expect("create the samples file");
    writeln!(
        csv,
        "t_s,writes,writes_per_s,rss_kib,fds,outbox_rows,outbox_pending,oldest_pending_ms,ledger_rows,lag_p50_ms,lag_p99_ms,lag_max_ms"
    )
    .expect("write");

    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(minutes * 60.0);
    let mut last_writes = 0;
    let mut last_at = started;
    let mut window_from = chrono::Utc::now().timestamp_millis();
    while Instant::now() < deadline {
        tokio::time::sleep(every).await;
        let now = Instant::now();
        let writes = stream.acked();
        let per_s = (writes - last_writes) as f64 / (now - last_at).as_secs_f64();
        last_writes = writes;
        last_at = now;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM outbox), \
                    (SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL), \
                    (SELECT COALESCE($1 - MIN(created_at), 0) FROM outbox WHERE delivered_at IS NULL), \
                    (SELECT COUNT(*) FROM processed_messages)",
        )
        .bind(now_ms)
        .fetch_one(&pool)
        .await
        .expect("sample the tables");
        let lag = sqlx::query(
            "SELECT COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY recorded_at - at), 0)::float8, \
                    COALESCE(percentile_cont(0.99) WITHIN GROUP (ORDER BY recorded_at - at), 0)::float8, \
                    COALESCE(MAX(recorded_at - at), 0) \
             FROM audit_log WHERE user_id = ANY($1) AND recorded_at > $2",
        )
        .bind(&ids)
        .bind(window_from)
        .fetch_one(&pool)
        .await
        .expect("sample the lag");
        window_from = now_ms;
        let line = format!(
            "{:.1},{writes},{per_s:.1},{},{},{},{},{},{},{:.0},{:.0},{}",
            started.elapsed().as_secs_f64(),
            rss_kib(pid),
            open_fds(pid),
            row.get::<i64, _>(0),
            row.get::<i64, _>(1),
            row.get::<i64, _>(2),
            row.get::<i64, _>(3),
            lag.get::<f64, _>(0),
            lag.get::<f64, _>(1),
            lag.get::<i64, _>(2),
        );
        writeln!(csv, "{line}").expect("write a sample");
        println!("soak: {line}");
    }

    let writers = stream.stop().await;
    let ledger = Ledger::connect(&e2e.stack.database_url, ids)
        .await
        .with_archive(&archive);
    let drain = ledger.wait_drained(Duration::from_secs(600)).await;
    let figures = ledger.check(&e2e.stack, &writers).await;
    println!("soak: drained {drain:.1?} after the stream stopped; {figures}");
    println!(
        "soak: rows retention deleted during the run (all users): {:?}",
        archive.counts().await
    );
    host.kill().await;
    archive.remove().await;
}
