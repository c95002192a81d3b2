//! Returns one notification with a 1 MiB body for every message: the host must refuse the
//! answer (more than `TASKHOST_MAX_EFFECT_BYTES`) and dead-letter the message with that reason.

wit_bindgen::generate!({ path: "../../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{Effect, Failure, Manifest, Message, Timestamp};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "oversized-effect".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            topics: vec!["task-events".into()],
        }
    }

    fn handle(_topic: String, message: Message, now: Timestamp) -> Result<Vec<Effect>, Failure> {
        let Message::TaskEvent(e) = message else {
            return Ok(vec![]);
        };
        Ok(vec![Effect::Notify(todo::events::types::Notification {
            idempotency_key: format!("oversized-{}", e.event_id),
            user_id: e.user_id,
            task_id: e.task.id,
            title: "oversized".into(),
            body: "x".repeat(1 << 20),
            created_at: now,
        })])
    }
}

// Only in the wasm build: a native build (`cargo clippy --workspace`) cannot link the
// component-model export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
