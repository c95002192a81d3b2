//! The shadow calls, off the serving path: their own threads behind a bounded queue.
//!
//! What keeps a candidate from slowing or failing a real delivery:
//! - the pipeline only *submits* a job (a `try_send`): it never waits for a shadow call, and a
//!   full queue (a candidate slower than the traffic, a flood) makes the call `skipped`;
//! - the calls run on these threads, not on the wasm threads the serving calls share, so a
//!   looping candidate holds a shadow thread (to its own call timeout), never a serving one;
//! - these threads run only on CPU nothing else wants (`SCHED_IDLE`, else nice 10): on a
//!   machine short of cores, a busy candidate gets the CPU the serving path leaves;
//! - a job that could not start within the candidate's call timeout of being queued missed
//!   its deadline: it is counted as `skipped` and dropped, never retried;
//! - nothing a shadow call produces is applied: the effects are compared and let go.
//!
//! What a shadow call costs beyond the candidate's own call is kept small, because on a machine
//! short of cores it is CPU the serving path does not get: the effect lists are compared as
//! values (`diff::differs`) and, when they differ, moved into the report as they are; the
//! field-level diff is built only when the report's samples are read (`report.rs`).

use super::candidate::Candidate;
use super::diff;
use super::report::{Finding, Found, Outcome};
use crate::domain::Effect;
use crate::runtime::{LoadedComponent, Runtime, convert, wit};
use std::sync::Arc;
use std::time::Instant;

/// Jobs waiting for a shadow thread, at most.
const QUEUE: usize = 1024;
/// Shadow threads: at most one core's worth of candidate work per two cores.
const THREADS: usize = 2;
/// Differing fields shown per sample.
pub(super) const FIELDS: usize = 32;

/// What one serving version did with the message: its effects, or why it produced none.
#[derive(Debug)]
pub struct Served {
    pub version: Arc<LoadedComponent>,
    pub effects: Result<Vec<Effect>, String>,
}

pub(super) struct Job {
    pub candidate: Arc<Candidate>,
    pub served: Served,
    pub topic: String,
    pub event_id: String,
    pub message: Arc<wit::Message>,
    pub now_ms: i64,
    pub queued: Instant,
}

pub(super) struct ShadowThreads {
    jobs: crossbeam_channel::Sender<Job>,
}

impl ShadowThreads {
    pub fn start(runtime: Runtime) -> Self {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(QUEUE);
        // WASI's sync stderr blocks on the ambient tokio runtime, as for the serving threads.
        let handle = tokio::runtime::Handle::try_current().ok();
        for i in 0..THREADS {
            let (rx, runtime, handle) = (rx.clone(), runtime.clone(), handle.clone());
            std::thread::Builder::new()
                .name(format!("shadow-{i}"))
                .spawn(move || {
                    lower_priority();
                    let _entered = handle.as_ref().map(|h| h.enter());
                    while let Ok(job) = rx.recv() {
                        let component = job.candidate.clone();
                        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                            || run(&runtime, job),
                        ));
                        if outcome.is_err() {
                            tracing::error!(component = %component.version.name, "a shadow call panicked in the host");
                        }
                    }
                })
                .expect("spawning a shadow thread");
        }
        Self { jobs: tx }
    }

    /// Queues `job`, or counts it as skipped when the queue is full.
    pub fn submit(&self, job: Job) {
        if let Err(e) = self.jobs.try_send(job) {
            let job = e.into_inner();
            tracing::debug!(component = %job.candidate.version.name, event_id = %job.event_id, "shadow queue full: skipped");
            count(&job.candidate, Outcome::Skipped, None);
        }
    }
}

/// Makes the calling thread run only on CPU the host's other threads leave: `SCHED_IDLE`, or,
/// where that is refused, nice 10.
///
/// Why not nice alone: a nice-10 thread still holds its share of a core (~1/10 against each
/// busy nice-0 thread) and, once running, keeps the core until the scheduler's next decision, so
/// at a steady rate the serving path waited behind candidate calls: row 8 of `just bench` grew
/// the serving p50 by 20–67 µs against a ~15 µs candidate call. A `SCHED_IDLE` thread is
/// preempted as soon as a normal thread wakes.
#[cfg(target_os = "linux")]
fn lower_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread (sched_setscheduler acts on one thread on Linux); the
    // parameter is a valid `sched_param` for SCHED_IDLE, whose priority must be 0.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
        return;
    }
    let idle_refused = std::io::Error::last_os_error();
    // SAFETY: on Linux, PRIO_PROCESS with a thread id sets that one thread's nice value; this
    // is the calling thread's own id, and nothing else is touched.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
    if rc != 0 {
        tracing::debug!(%idle_refused, error = %std::io::Error::last_os_error(), "cannot lower a shadow thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// One shadow call and its comparison.
fn run(runtime: &Runtime, job: Job) {
    let candidate = &job.candidate.version;
    if job.queued.elapsed() > candidate.limits.call_timeout {
        tracing::debug!(component = %candidate.name, event_id = %job.event_id, "shadow call missed its deadline: skipped");
        count(&job.candidate, Outcome::Skipped, None);
        return;
    }
    let _span = tracing::info_span!("shadow", component = %candidate.name, version = %candidate.version, event_id = %job.event_id).entered();
    let effects = if candidate.topics.contains(&job.topic) {
        effects_of(runtime.call(candidate, &job.topic, &job.message, job.now_ms))
    } else {
        // It would not get this message at all.
        Ok(Vec::new())
    };
    let serving = &job.served.version;
    let what = match (job.served.effects, effects) {
        (_, Err(e)) => Found::CandidateFailed(e),
        (Err(error), Ok(candidate)) => Found::ServingFailed { error, candidate },
        (Ok(ours), Ok(theirs)) => {
            if !diff::differs(&ours, &serving.version, &theirs, &candidate.version) {
                count(&job.candidate, Outcome::Same, None);
                return;
            }
            Found::Differs {
                serving: ours,
                candidate: theirs,
            }
        }
    };
    let finding = Finding {
        event_id: job.event_id,
        topic: job.topic,
        serving_version: serving.version.clone(),
        candidate_version: candidate.version.clone(),
        what,
    };
    let outcome = finding.outcome();
    tracing::debug!(outcome = outcome.label(), "shadow call differs");
    count(&job.candidate, outcome, Some(finding));
}

/// Counts one call (metrics and report), keeping `finding` as the report's newest sample.
fn count(candidate: &Candidate, outcome: Outcome, finding: Option<Finding>) {
    let version = &candidate.version;
    crate::metrics::shadow(&version.name, &version.version, outcome.label());
    match finding {
        Some(finding) => candidate.report.record(finding),
        None => candidate.report.count(outcome),
    }
}

/// The candidate's effects in host types, or why it has none.
fn effects_of(
    result: Result<crate::runtime::Answer, crate::runtime::CallError>,
) -> Result<Vec<Effect>, String> {
    match result.map_err(|e| format!("component call failed: {e}"))? {
        Ok(effects) => effects
            .into_iter()
            .map(convert::effect_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("component returned an invalid effect: {e}")),
        Err(wit::Failure::Retry(reason)) => Err(format!("component asked to retry: {reason}")),
        Err(wit::Failure::Drop(reason)) => Err(format!("component dropped the message: {reason}")),
    }
}
