//! The threads component calls run on. Wasm must not occupy an async worker (a call may run
//! until its deadline; WASI's sync stderr blocks on the runtime), so each message's calls are
//! handed, as one job, to a small fixed set of threads fed by one queue.
//!
//! Why not tokio's blocking pool: it gives every call in flight a thread of its own, and each
//! hand-off wakes a sleeping thread and puts it back to sleep — two context switches and a
//! futex wake per message. These threads stay busy while the queue holds work and take the
//! next job without sleeping. Measured on the Dapr route (SQLite, single, c64, same run):
//! 507/567 → 472/439 µs of CPU per delivery with four threads.
//!
//! What it costs: a call that runs to its deadline (TASKHOST_CALL_TIMEOUT_MS, a looping
//! component) holds one of the threads that long, and jobs behind it wait. Calls are CPU-bound,
//! so more threads than cores would not run more of them at once anyway; there are twice as
//! many as cores (at least four), so that a few runaway calls leave the others running.

use std::sync::Arc;

type Job = Box<dyn FnOnce() + Send>;

/// The queue in front of the threads. Cheap to clone; the threads end when the last clone is
/// dropped.
#[derive(Clone)]
pub(super) struct WasmThreads {
    jobs: Arc<crossbeam_channel::Sender<Job>>,
}

impl WasmThreads {
    /// Twice as many threads as cores, at least four.
    pub fn start() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with_threads((2 * cores).max(4))
    }

    pub fn with_threads(threads: usize) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        // WASI's sync bindings (a component's stderr) block on the ambient tokio runtime: the
        // threads enter the host's, as tokio's own blocking threads would have.
        let runtime = tokio::runtime::Handle::try_current().ok();
        for i in 0..threads {
            let (rx, runtime) = (rx.clone(), runtime.clone());
            std::thread::Builder::new()
                .name(format!("wasm-{i}"))
                .spawn(move || {
                    let _runtime = runtime.as_ref().map(|r| r.enter());
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                })
                .expect("spawning a wasm thread");
        }
        Self { jobs: Arc::new(tx) }
    }

    /// Runs `f` on one of the threads. `Err` says why it produced nothing (it panicked — a bug
    /// in the host, not in a component, whose traps are results).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = reply.send(out);
        });
        self.jobs
            .send(job)
            .map_err(|_| "the wasm threads have stopped".to_string())?;
        match answer.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(panic)) => Err(format!(
                "the call panicked in the host: {}",
                panic
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(no message)")
            )),
            Err(_) => Err("the wasm thread dropped the call".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_reports_a_panic_as_an_error() {
        let threads = WasmThreads::with_threads(2);
        assert_eq!(threads.run(|| 40 + 2).await, Ok(42));
        let err = threads.run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(err.contains("boom"), "{err}");
        // Still serving after a panic.
        assert_eq!(threads.run(|| 7).await, Ok(7));
    }
}
