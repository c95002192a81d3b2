//! The notification consumer: keeps a task's reminder jobs in step with the task, and turns a
//! reminder that came due into one inbox notification.
//!
//! It never waits for a reminder's time (the Python system slept inside the delivery handler,
//! holding the message for hours): it asks the host to schedule a named job that publishes the
//! reminder to `reminders` at the right time, and answers at once. A reminder another system
//! publishes for a later time (the Python backend's `remindAt`) becomes such a job too.

mod due;
mod notify;
mod reminders;

/// Each instance handles one message and is then thrown away, so the heap never gives memory
/// back: a bump arena instead of dlmalloc (`components/arena`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

wit_bindgen::generate!({ path: "../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{Effect, Failure, Manifest, Message, Timestamp};

/// Task changes, which decide which reminder jobs exist.
const TASK_EVENTS: &str = "task-events";
/// Task changes too: the Python backend publishes its `updated` events here (a changed due
/// date or reminder setting moves or cancels the jobs).
const TASK_UPDATES: &str = "task-updates";
/// Reminder jobs that came due, published by the host's scheduler.
const REMINDERS: &str = "reminders";

/// The component's exports. Only exported in the wasm build: a native build of this crate (for
/// `cargo test`) cannot link symbols named like `todo:events/handler@0.1.0#handle`.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "notification".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            topics: vec![TASK_EVENTS.into(), TASK_UPDATES.into(), REMINDERS.into()],
        }
    }

    fn handle(topic: String, message: Message, now: Timestamp) -> Result<Vec<Effect>, Failure> {
        match (topic.as_str(), message) {
            (TASK_EVENTS | TASK_UPDATES, Message::TaskEvent(event)) => {
                reminders::on_task_event(&event, now)
            }
            (REMINDERS, Message::ReminderDue(reminder)) => due::on_reminder(&reminder, now),
            _ => Ok(Vec::new()),
        }
    }
}

#[cfg(target_arch = "wasm32")]
export!(Component);
