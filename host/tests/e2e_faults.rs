//! The real stack under faults: the parts around a running taskhost (Kafka, daprd, the Dapr
//! scheduler) and taskhost itself are killed while a steady stream of task writes from several
//! users flows, and brought back. Then the database is checked against what was written
//! (`support::ledger`): every event applied exactly once by each of its consumers, one audit
//! entry per operation, one next instance per completed series, each due reminder notified once
//! (and every pending job held by the Dapr scheduler), no dead letters, the outbox drained. Each
//! case prints those figures and the time the backlog took to clear after the part came back.
//!
//! Needs the local stack: run `just e2e-faults` (`deploy/local-stack/e2e.sh --suite e2e_faults`),
//! which builds, starts the stack and runs
//! `cargo test -p taskhost --test e2e_faults -- --ignored --test-threads=1`. The cases stop and
//! start the stack's own processes (by their pid files) and leave them running.
//!
//! Settings: `TASKHOST_FAULTS_SHORT=1` is CI's short form: a slower stream, shorter warm-up,
//! daprd and the scheduler down 12 s instead of 20 (Kafka stays down 20 s); `TASKHOST_FAULTS_SEED` replays the kill points of the taskhost case;
//! plus those of `e2e_dapr.rs` (`TASKHOST_E2E_DATABASE_URL`, `APP_PORT`, `DAPR_HTTP_PORT`,
//! `TASKHOST_STACK_RUN`).

mod support;

use std::time::{Duration, Instant};

use support::ledger::{Figures, Ledger};
use support::stack::E2e;
use support::stream::{Stream, short};
use support::{Api, Host, wait_until};

/// Writers, one per user.
const USERS: usize = 4;
/// Each writer's pause between two writes: ~27 writes/s together (16 in the short form), each
/// one event and a few Jobs API calls (a debug build on a shared 2-core machine).
fn pace() -> Duration {
    if short() {
        Duration::from_millis(250)
    } else {
        Duration::from_millis(150)
    }
}
/// How long Kafka stays down.
const KAFKA_OUTAGE: Duration = Duration::from_secs(20);
/// How long daprd and the scheduler stay down: longer than the host's whole retry budget
/// (`TASKHOST_MAX_ATTEMPTS` 5 with a backoff from 200 ms: ~3 s), long enough for reminders
/// written before to fall due meanwhile; shorter in the short form.
fn outage() -> Duration {
    if short() {
        Duration::from_secs(12)
    } else {
        Duration::from_secs(20)
    }
}
/// How long a backlog may take to clear, and the final drain.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(240);
/// The taskhost case: at least this many SIGKILLs.
const HOST_KILLS: usize = 8;

/// The stream's time before the fault (reminder jobs scheduled, some about to fall due) and
/// after the recovery.
fn warm() -> Duration {
    if short() {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(10)
    }
}

/// One case: the stack with daprd, a host beside it, the stream, and the database view.
struct Case {
    name: &'static str,
    e2e: E2e,
    host: Option<Host>,
    stream: Stream,
    ledger: Ledger,
    notes: Vec<String>,
}

impl Case {
    async fn begin(name: &'static str, seed: u64) -> Self {
        println!(
            "[{name}] ==== starting: {USERS} users, one write each every {:?}",
            pace()
        );
        let mut e2e = E2e::new().await;
        let host = e2e.start().await;
        let stream = Stream::start(e2e.stack.app_addr(), USERS, seed, pace()).await;
        let ledger = Ledger::connect(&e2e.stack.database_url, stream.users.clone()).await;
        Self {
            name,
            e2e,
            host: Some(host),
            stream,
            ledger,
            notes: Vec::new(),
        }
    }

    fn say(&self, what: &str) {
        println!(
            "[{}] {:>6.1} s  {what}",
            self.name,
            self.e2e.started.elapsed().as_secs_f64()
        );
    }

    fn note(&mut self, what: String) {
        self.say(&what);
        self.notes.push(what);
    }

    /// Lets the stream flow for `d`, and checks it was answered meanwhile.
    async fn flow(&self, d: Duration) {
        let before = self.stream.acked();
        tokio::time::sleep(d).await;
        let after = self.stream.acked();
        self.say(&format!(
            "stream: {} writes acknowledged in {d:?} ({after} in all)",
            after - before
        ));
    }

    /// The part came back: waits until everything written so far is delivered and handled
    /// by all its consumers, and records how long that took.
    async fn recovered(&mut self, what: &str) -> Duration {
        let mark = self.ledger.mark().await;
        let (pending, _) = self.ledger.pending().await;
        let took = self.ledger.wait_recovered(mark, RECOVERY_TIMEOUT).await;
        self.note(format!(
            "recovered {took:.1?} after {what}: the {pending} outbox rows pending then delivered \
             and every event up to then applied by all its consumers"
        ));
        took
    }

    /// Stops the stream, drains, checks the database, prints the figures.
    async fn finish(self, recovery: Duration) -> Figures {
        let Case {
            name,
            e2e,
            host,
            stream,
            ledger,
            notes,
        } = self;
        let writers = stream.stop().await;
        let drain = ledger.wait_drained(RECOVERY_TIMEOUT).await;
        println!(
            "[{name}] {:>6.1} s  stream stopped; drained {drain:.1?} later",
            e2e.started.elapsed().as_secs_f64()
        );
        let figures = ledger.check(&e2e.stack, &writers).await;
        // Nothing arrives late or twice: redeliveries have time to come in.
        tokio::time::sleep(Duration::from_secs(if short() { 3 } else { 5 })).await;
        let again = ledger.check(&e2e.stack, &writers).await;
        assert_eq!(
            (
                again.ledger,
                again.audit,
                again.notifications,
                again.next_instances
            ),
            (
                figures.ledger,
                figures.audit,
                figures.notifications,
                figures.next_instances
            ),
            "the figures changed after the drain"
        );
        println!("[{name}] RESULT: {figures}");
        println!(
            "[{name}] RESULT: time to recover after the part came back: {:.1} s",
            recovery.as_secs_f64()
        );
        for n in &notes {
            println!("[{name}]   {n}");
        }
        if let Some(host) = host {
            host.kill().await;
        }
        figures
    }
}

/// `/readyz` of the host on the app port.
async fn readyz(api: &Api) -> (u16, String) {
    match api.try_send(reqwest::Method::GET, "/readyz", None).await {
        Ok(r) => (r.status.as_u16(), r.text),
        Err(e) => (0, e),
    }
}

async fn kafka_down_for_20s(name: &'static str, signal: &str) {
    let mut case = Case::begin(name, fastrand::u64(..)).await;
    case.flow(warm()).await;
    let took = case.e2e.stack.signal("kafka", signal).await;
    let down_at = Instant::now();
    case.note(format!("Kafka broker SIG{signal}: gone {took:.1?} later"));
    let wait = if signal == "TERM" {
        // A rolling upgrade: the broker shuts down cleanly and starts again at once.
        Duration::ZERO
    } else {
        KAFKA_OUTAGE
    };
    case.flow(wait).await;
    let (pending, attempts) = case.ledger.pending().await;
    let dead = case.ledger.dead_letters().await.len();
    case.note(format!(
        "while Kafka was down: {pending} outbox rows pending (at most {attempts} attempts spent), {dead} dead letters"
    ));
    let restart_after = down_at.elapsed();
    let up = case.e2e.stack.up().await;
    case.note(format!(
        "Kafka started again {:.1} s after the {signal}; up.sh had it answering {up:.1?} later",
        restart_after.as_secs_f64()
    ));
    let recovery = case.recovered("Kafka came back").await;
    case.flow(warm()).await;
    case.finish(recovery).await;
}

/// Kafka SIGKILLed mid-stream, down for 20 s, started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the local Dapr stack: run `just e2e-faults`"]
async fn kafka_sigkilled_for_20s_mid_stream() {
    kafka_down_for_20s("kafka-sigkill", "KILL").await;
}

/// Kafka stopped cleanly (SIGTERM) mid-stream and started again at once, as in a rolling
/// upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the local Dapr stack: run `just e2e-faults`"]
async fn kafka_restarted_cleanly_mid_stream() {
    kafka_down_for_20s("kafka-sigterm", "TERM").await;
}

/// daprd SIGKILLed mid-stream while the host keeps running: the host turns unready (and
/// keeps taking writes into its outbox without spending their attempts); daprd started again
/// beside it, everything drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the local Dapr stack: run `just e2e-faults`"]
async fn daprd_sigkilled_mid_stream_and_started_beside_the_running_host() {
    let mut case = Case::begin("daprd-sigkill", fastrand::u64(..)).await;
    let probe = Api::at(&format!("http://{}", case.e2e.stack.app_addr()));
    case.flow(warm()).await;
    assert_eq!(readyz(&probe).await.0, 200, "ready before the fault");
    let daprd_before = case.e2e.stack.sh("daprd pid", "pid_of daprd").await;
    let took = case.e2e.stack.signal("daprd", "KILL").await;
    let down_at = Instant::now();
    case.note(format!("daprd SIGKILL: gone {took:.1?} later"));
    let (status, body) = wait_until(
        "GET /readyz to answer 503 while daprd is gone",
        Duration::from_secs(15),
        async || match readyz(&probe).await {
            (503, body) => Ok((503, body)),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    assert!(
        body.contains("waiting for the Dapr sidecar"),
        "/readyz {status} names the sidecar: {body}"
    );
    case.note(format!(
        "/readyz answered {status} {body} {:.1} s after the kill",
        down_at.elapsed().as_secs_f64()
    ));
    let acked = case.stream.acked();
    tokio::time::sleep(outage().saturating_sub(down_at.elapsed())).await;
    let taken = case.stream.acked() - acked;
    assert!(taken > 0, "the API takes writes while daprd is gone");
    let (pending, attempts) = case.ledger.pending().await;
    let dead = case.ledger.dead_letters().await.len();
    case.note(format!(
        "while daprd was gone: {taken} writes taken into the outbox, {pending} rows pending with \
         at most {attempts} attempts spent (held, not retried), {dead} dead letters"
    ));
    assert!(
        pending > 0,
        "the outbox holds the writes while daprd is gone"
    );
    assert_eq!(
        attempts, 0,
        "rows held for an absent sidecar spend no attempts"
    );
    assert_eq!(dead, 0, "nothing dead-lettered while daprd is gone");
    let restarted = Instant::now();
    case.e2e.stack.ensure_daprd().await;
    case.e2e.stack.wait_for_subscriptions().await;
    let daprd_after = case.e2e.stack.sh("daprd pid", "pid_of daprd").await;
    assert_ne!(
        daprd_before, daprd_after,
        "a new daprd runs beside the host"
    );
    wait_until(
        "GET /readyz to answer 200 once daprd is back",
        Duration::from_secs(30),
        async || match readyz(&probe).await {
            (200, _) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    case.note(format!(
        "daprd started again after {:.1} s down; /readyz 200 {:.1} s after its start",
        down_at.elapsed().as_secs_f64(),
        restarted.elapsed().as_secs_f64()
    ));
    let recovery = case.recovered("daprd came back").await;
    case.flow(warm()).await;
    case.finish(recovery).await;
}

/// The Dapr scheduler stopped while reminder jobs are being scheduled and while some fall due;
/// started again: every job scheduled meanwhile is in it, every one that fell due fires once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the local Dapr stack: run `just e2e-faults`"]
async fn the_dapr_scheduler_stopped_while_jobs_are_scheduled_and_fall_due() {
    let mut case = Case::begin("scheduler-stop", fastrand::u64(..)).await;
    case.flow(warm()).await;
    // One reminder certain to fall due in the middle of the outage, in the scheduler before it
    // stops (the stream's own reminders fall due 5–20 s after their write: some inside it).
    let lead = Duration::from_secs(2) + outage() / 2;
    let due = chrono::Utc::now()
        + chrono::Duration::seconds(60)
        + chrono::Duration::from_std(lead).expect("a duration");
    let task = case.stream.apis[0]
        .create_task(&serde_json::json!({
            "title": format!("{} due in the outage v0", case.stream.users[0]),
            "due_date": due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "reminder_offsets_minutes": [1],
        }))
        .await;
    let job = format!("reminder-{}-1", task.id);
    wait_until(
        &format!("job {job} in the Dapr scheduler"),
        Duration::from_secs(20),
        async || {
            case.e2e
                .stack
                .job(&job)
                .await
                .ok_or_else(|| "not there yet".to_owned())
        },
    )
    .await;
    case.note(format!(
        "job {job} scheduled, due {lead:.1?} after the scheduler stops"
    ));
    let took = case.e2e.stack.signal("scheduler", "TERM").await;
    let down_ms = chrono::Utc::now().timestamp_millis();
    let down_at = Instant::now();
    case.note(format!("scheduler SIGTERM: stopped {took:.1?} later"));
    case.flow(outage()).await;
    let up_ms = chrono::Utc::now().timestamp_millis();
    let fell_due = case.ledger.jobs_due_between(down_ms, up_ms).await;
    let (pending, attempts) = case.ledger.pending().await;
    let dead = case.ledger.dead_letters().await.len();
    case.note(format!(
        "while the scheduler was down: {fell_due} reminder jobs fell due, {pending} outbox rows \
         pending (at most {attempts} attempts spent), {dead} dead letters"
    ));
    assert!(
        fell_due > 0,
        "a reminder job must fall due while the scheduler is down"
    );
    let restart_after = down_at.elapsed();
    let up = case.e2e.stack.up().await;
    case.note(format!(
        "scheduler started again {:.1} s after it stopped; up.sh had it answering {up:.1?} later",
        restart_after.as_secs_f64()
    ));
    let recovery = case.recovered("the scheduler came back").await;
    let fired = case.ledger.wait_jobs_fired(up_ms, RECOVERY_TIMEOUT).await;
    case.note(format!(
        "every job that fell due while the scheduler was down fired {fired:.1?} after it came back"
    ));
    case.flow(warm()).await;
    case.finish(recovery.max(fired)).await;
}

/// taskhost SIGKILLed at seeded random points while the stream flows, restarted each time
/// beside the same daprd.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the local Dapr stack: run `just e2e-faults`"]
async fn taskhost_sigkilled_repeatedly_beside_the_same_daprd() {
    let seed = std::env::var("TASKHOST_FAULTS_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut case = Case::begin("taskhost-sigkill", seed).await;
    case.note(format!(
        "seed {seed} (replay the kill points with TASKHOST_FAULTS_SEED={seed})"
    ));
    let daprd_pid = case.e2e.stack.sh("daprd pid", "pid_of daprd").await;
    let mut restarts = Vec::new();
    for kill in 1..=HOST_KILLS {
        let after = Duration::from_millis(rng.u64(1_000..4_000));
        case.flow(after).await;
        let killed_at = Instant::now();
        case.host.take().expect("a running host").kill().await;
        case.host = Some(case.e2e.start().await);
        restarts.push(killed_at.elapsed());
        case.say(&format!(
            "kill {kill}: SIGKILL after {after:?}; ready again {:.1?} later",
            restarts.last().expect("a restart")
        ));
    }
    assert_eq!(
        case.e2e.stack.sh("daprd pid", "pid_of daprd").await,
        daprd_pid,
        "the same daprd throughout"
    );
    let mean = restarts.iter().sum::<Duration>() / restarts.len() as u32;
    let max = restarts.iter().max().copied().unwrap_or_default();
    case.note(format!(
        "{HOST_KILLS} SIGKILLs; restart to ready (and daprd listing the subscriptions): mean {mean:.1?}, max {max:.1?}"
    ));
    let recovery = case.recovered("the last restart").await;
    case.flow(warm()).await;
    case.finish(recovery).await;
}
