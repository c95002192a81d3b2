//! Prometheus metrics (`GET /metrics`), through the `metrics` facade and its Prometheus
//! exporter. Every name is declared here, with what it means; labels are bounded (topic,
//! component, version, outcome — never an id). A leaf: it knows no database; what is sampled
//! from one is read by `storage::gauges`.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const MESSAGES: &str = "taskhost_messages_total";
pub const UNDECODABLE: &str = "taskhost_undecodable_messages_total";
pub const CALL_SECONDS: &str = "taskhost_component_call_seconds";
pub const LAG_SECONDS: &str = "taskhost_event_lag_seconds";
pub const OUTBOX_DEPTH: &str = "taskhost_outbox_depth";
pub const OUTBOX_OLDEST: &str = "taskhost_outbox_oldest_age_seconds";
pub const DEAD_LETTERS: &str = "taskhost_dead_letters_total";
pub const SCHEDULED_JOBS: &str = "taskhost_scheduled_reminder_jobs";
pub const SOCKETS: &str = "taskhost_websocket_connections";
pub const DB_POOL: &str = "taskhost_db_pool_connections";
pub const SWAPS: &str = "taskhost_component_swaps_total";
pub const ROLLBACKS: &str = "taskhost_component_rollbacks_total";
pub const PRUNED: &str = "taskhost_retention_deleted_rows_total";
pub const COMMIT_SECONDS: &str = "taskhost_group_commit_seconds";
pub const COMMIT_JOBS: &str = "taskhost_group_commit_jobs";
pub const SHADOW_CALLS: &str = "taskhost_shadow_calls_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(CALL_SECONDS.into()),
                &[
                    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.025,
                    0.1, 0.5,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(LAG_SECONDS.into()),
                    &[
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    ],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(COMMIT_SECONDS.into()),
                    &[
                        0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 1.0,
                    ],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(COMMIT_JOBS.into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
                )
            })
            .expect("static bucket lists are non-empty")
            .install_recorder()
            .expect("the metrics recorder is installed once");
        describe();
        start_upkeep(handle.clone());
        handle
    })
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds the histograms' recorded samples into their buckets every [`UPKEEP_EVERY`].
///
/// The exporter keeps each histogram sample until upkeep or a scrape of `/metrics` folds it in;
/// `install_recorder` leaves upkeep to its caller. A host nobody scrapes (`just run`, a pod
/// whose Prometheus is away) kept every call's duration, lag and commit size: its resident
/// memory grew with the messages it handled (the soak at 150 writes/s: ~27 KiB/s).
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread: histograms are folded only when /metrics is scraped");
    }
}

fn describe() {
    describe_counter!(
        MESSAGES,
        "Messages handled per topic, component, version and outcome (applied, duplicate, retry, drop)"
    );
    describe_counter!(
        UNDECODABLE,
        "Messages that could not be decoded, per topic (dead-lettered)"
    );
    describe_histogram!(
        CALL_SECONDS,
        metrics::Unit::Seconds,
        "Component call duration (fresh instance + handle)"
    );
    describe_histogram!(
        LAG_SECONDS,
        metrics::Unit::Seconds,
        "From the event's time to its effects applied, per topic and component"
    );
    describe_gauge!(OUTBOX_DEPTH, "Outbox events not yet delivered");
    describe_gauge!(
        OUTBOX_OLDEST,
        metrics::Unit::Seconds,
        "Age of the oldest undelivered outbox event"
    );
    describe_counter!(DEAD_LETTERS, "Messages dead-lettered, per topic");
    describe_gauge!(SCHEDULED_JOBS, "Reminder jobs scheduled and not yet fired");
    describe_gauge!(SOCKETS, "Open WebSocket connections");
    describe_gauge!(
        DB_POOL,
        "Database pool connections, by state (idle, in_use)"
    );
    describe_counter!(SWAPS, "Component versions swapped in, per component");
    describe_counter!(
        ROLLBACKS,
        "Component rollbacks, per component and cause (manual, automatic)"
    );
    describe_histogram!(
        COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "One group commit: the transaction applying a batch of deliveries' effects, begin to commit"
    );
    describe_histogram!(
        COMMIT_JOBS,
        "Jobs (component, message) per group commit: how many deliveries share one transaction"
    );
    describe_counter!(
        SHADOW_CALLS,
        "Shadow calls of a candidate version, per component, candidate version and outcome \
         (same, different, candidate_failed, skipped)"
    );
    describe_counter!(
        PRUNED,
        "Rows deleted by retention, per table (delivered outbox rows, exactly-once records)"
    );
}

/// The exposition text, for `GET /metrics`.
pub fn render() -> String {
    install().render()
}

/// One component version's metric handles, each registered at its first use and then kept.
///
/// Why: `counter!`/`histogram!` with owned labels build a key (an allocation per label) and look
/// it up in the recorder's registry on every call — three metrics per component per message,
/// twelve per task event, ~2 % of the host's CPU on the Dapr route. A kept handle records with
/// one atomic operation. Keeping handles is sound because the exporter never expires a metric
/// (no idle timeout is set in [`install`]). Registered lazily, so `/metrics` shows only the
/// series that happened, as before.
pub struct VersionMetrics {
    component: String,
    version: String,
    call_seconds: OnceLock<metrics::Histogram>,
    /// One per topic the version consumes.
    topics: Vec<TopicMetrics>,
}

struct TopicMetrics {
    topic: String,
    /// By outcome, in the order of [`OUTCOMES`].
    messages: [OnceLock<metrics::Counter>; OUTCOMES.len()],
    lag: OnceLock<metrics::Histogram>,
}

/// The `outcome` label's values (`pipeline::Verdict::label`).
pub const OUTCOMES: [&str; 4] = ["applied", "duplicate", "drop", "retry"];

impl VersionMetrics {
    pub fn new(component: &str, version: &str, topics: &[String]) -> Self {
        Self {
            component: component.to_string(),
            version: version.to_string(),
            call_seconds: OnceLock::new(),
            topics: topics
                .iter()
                .map(|topic| TopicMetrics {
                    topic: topic.clone(),
                    messages: Default::default(),
                    lag: OnceLock::new(),
                })
                .collect(),
        }
    }

    /// How long one call of this version took.
    pub fn call_duration(&self, seconds: f64) {
        self.call_seconds
            .get_or_init(|| {
                histogram!(CALL_SECONDS, "component" => self.component.clone(), "version" => self.version.clone())
            })
            .record(seconds);
    }

    /// One message of `topic` handled by this version with `outcome`.
    pub fn message(&self, topic: &str, outcome: &'static str) {
        let slot = self.topic(topic).and_then(|t| {
            let i = OUTCOMES.iter().position(|o| *o == outcome)?;
            Some((t, i))
        });
        match slot {
            Some((t, i)) => t.messages[i]
                .get_or_init(|| {
                    counter!(MESSAGES, "topic" => t.topic.clone(), "component" => self.component.clone(),
                             "version" => self.version.clone(), "outcome" => outcome)
                })
                .increment(1),
            // A topic it does not consume (a replay naming it) or a new outcome: the slow way.
            None => message(topic, &self.component, &self.version, outcome),
        }
    }

    /// Event time → applied by this version, for one message of `topic`.
    pub fn lag(&self, topic: &str, seconds: f64) {
        match self.topic(topic) {
            Some(t) => t
                .lag
                .get_or_init(|| {
                    histogram!(LAG_SECONDS, "topic" => t.topic.clone(), "component" => self.component.clone())
                })
                .record(seconds.max(0.0)),
            None => lag(topic, &self.component, seconds),
        }
    }

    fn topic(&self, topic: &str) -> Option<&TopicMetrics> {
        self.topics.iter().find(|t| t.topic == topic)
    }
}

pub fn message(topic: &str, component: &str, version: &str, outcome: &'static str) {
    counter!(MESSAGES, "topic" => topic.to_string(), "component" => component.to_string(),
             "version" => version.to_string(), "outcome" => outcome)
    .increment(1);
}

pub fn undecodable(topic: &str) {
    counter!(UNDECODABLE, "topic" => topic.to_string()).increment(1);
}

pub fn lag(topic: &str, component: &str, seconds: f64) {
    histogram!(LAG_SECONDS, "topic" => topic.to_string(), "component" => component.to_string())
        .record(seconds.max(0.0));
}

pub fn dead_letter(topic: &str) {
    counter!(DEAD_LETTERS, "topic" => topic.to_string()).increment(1);
}

pub fn sockets(open: usize) {
    gauge!(SOCKETS).set(open as f64);
}

pub fn swap(component: &str) {
    counter!(SWAPS, "component" => component.to_string()).increment(1);
}

pub fn pruned(table: &'static str, rows: u64) {
    counter!(PRUNED, "table" => table).increment(rows);
}

/// One group commit: its jobs and how long its transaction took.
pub fn group_commit(jobs: usize, seconds: f64) {
    histogram!(COMMIT_JOBS).record(jobs as f64);
    histogram!(COMMIT_SECONDS).record(seconds);
}

/// One shadow call of a candidate and how it compared with the serving version.
pub fn shadow(component: &str, version: &str, outcome: &'static str) {
    counter!(SHADOW_CALLS, "component" => component.to_string(), "version" => version.to_string(), "outcome" => outcome).increment(1);
}

pub fn rollback(component: &str, cause: &'static str) {
    counter!(ROLLBACKS, "component" => component.to_string(), "cause" => cause).increment(1);
}

/// The database pool's connections (sampled by `storage::gauges`).
pub fn db_pool(idle: usize, size: usize) {
    gauge!(DB_POOL, "state" => "idle").set(idle as f64);
    gauge!(DB_POOL, "state" => "in_use").set(size.saturating_sub(idle) as f64);
}

/// The outbox's undelivered rows and the age of the oldest (sampled by `storage::gauges`).
pub fn outbox(depth: i64, oldest_age_seconds: f64) {
    gauge!(OUTBOX_DEPTH).set(depth as f64);
    gauge!(OUTBOX_OLDEST).set(oldest_age_seconds);
}

/// Reminder jobs scheduled and not yet fired (sampled by `storage::gauges`).
pub fn scheduled_jobs(count: i64) {
    gauge!(SCHEDULED_JOBS).set(count as f64);
}
