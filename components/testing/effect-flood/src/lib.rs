//! Returns ten thousand effects for every message: the host must refuse the answer (more than
//! `TASKHOST_MAX_EFFECTS`), apply none of them, and dead-letter the message with that reason.

wit_bindgen::generate!({ path: "../../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{Effect, Failure, Manifest, Message, Timestamp};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "effect-flood".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            topics: vec!["task-events".into()],
        }
    }

    fn handle(_topic: String, message: Message, _now: Timestamp) -> Result<Vec<Effect>, Failure> {
        let id = match message {
            Message::TaskEvent(e) => e.task.id,
            Message::ReminderDue(r) => r.task.id,
        };
        Ok((0..10_000)
            .map(|i| Effect::CancelReminder(format!("flood-{id}-{i}")))
            .collect())
    }
}

// Only in the wasm build: a native build (`cargo clippy --workspace`) cannot link the
// component-model export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
