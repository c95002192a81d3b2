//! Panics on every message, with a message naming the task: the panic text must reach the
//! host's log under this component's name and version, and the message must be retried, then
//! dead-lettered.
//!
//! Built with the `fixed` feature it is version `0.2.0-fixed`, the bug fixed: it handles every
//! task event by notifying the task's owner. The dead-letter replay test swaps it in and
//! replays what 0.1.0 could not handle. The notification's idempotency key includes the call
//! time on purpose, so that only the host's exactly-once record (not the inbox's own key) keeps
//! a replayed message from being applied twice.

wit_bindgen::generate!({ path: "../../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{Effect, Failure, Manifest, Message, Timestamp};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

#[cfg(not(feature = "fixed"))]
const VERSION: &str = env!("CARGO_PKG_VERSION");
#[cfg(feature = "fixed")]
const VERSION: &str = "0.2.0-fixed";

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "panicking".into(),
            version: VERSION.into(),
            topics: vec!["task-events".into()],
        }
    }

    #[cfg(not(feature = "fixed"))]
    fn handle(_topic: String, message: Message, _now: Timestamp) -> Result<Vec<Effect>, Failure> {
        let id = match message {
            Message::TaskEvent(e) => e.task.id,
            Message::ReminderDue(r) => r.task.id,
        };
        // With `panic = "abort"` (the release-wasm profile) std prints this to stderr, then
        // the abort is a trap.
        panic!("panicking component gives up on task {id}, on purpose")
    }

    #[cfg(feature = "fixed")]
    fn handle(_topic: String, message: Message, now: Timestamp) -> Result<Vec<Effect>, Failure> {
        let Message::TaskEvent(e) = message else {
            return Ok(vec![]);
        };
        Ok(vec![Effect::Notify(todo::events::types::Notification {
            idempotency_key: format!("panicking-fixed:{}:{now}", e.event_id),
            user_id: e.user_id,
            task_id: e.task.id,
            title: "handled by panicking 0.2.0-fixed".into(),
            body: e.event_id,
            created_at: now,
        })])
    }
}

// Only in the wasm build: a native build (`cargo clippy --workspace`) cannot link the
// component-model export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
