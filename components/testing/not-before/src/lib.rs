//! Asks to retry (`failure::retry`) a task event whose task is due later than the call's `now`;
//! handles any other task event by notifying the task's owner, the event id as the body. Being
//! stateless, it behaves the same on every attempt: what changes between attempts is only
//! `now`. The ordering tests use it to have one chosen message of a user retried while that
//! user's other messages are not, and read the order in which messages were applied from the
//! order of the notifications.

wit_bindgen::generate!({ path: "../../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{Effect, Failure, Manifest, Message, Notification, Timestamp};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "not-before".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            topics: vec!["task-events".into()],
        }
    }

    fn handle(_topic: String, message: Message, now: Timestamp) -> Result<Vec<Effect>, Failure> {
        let Message::TaskEvent(e) = message else {
            return Ok(vec![]);
        };
        if let Some(due) = e.task.due_date
            && due > now
        {
            return Err(Failure::Retry(format!(
                "task {} is not due yet ({} ms to go)",
                e.task.id,
                due - now
            )));
        }
        Ok(vec![Effect::Notify(Notification {
            idempotency_key: format!("not-before:{}", e.event_id),
            user_id: e.user_id,
            task_id: e.task.id,
            title: e.task.title,
            body: e.event_id,
            created_at: now,
        })])
    }
}

// Only in the wasm build: a native build (`cargo clippy --workspace`) cannot link the
// component-model export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
