//! The recurrence consumer: when a recurring task is completed, it asks the host to create the
//! task's next occurrence.
//!
//! Only `completed` starts a new occurrence. The Python system acted on `created` and published
//! into the topic it consumed, so each new task made another; here the task this component asks
//! for comes back as a `created` event, which it ignores, and the idempotency key of
//! `series::next_occurrence` makes a redelivered completion create nothing twice.

mod schedule;
mod series;

/// Each instance handles one message and is then thrown away, so the heap never gives memory
/// back: a bump arena instead of dlmalloc (`components/arena`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

wit_bindgen::generate!({ path: "../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{Effect, Failure, Manifest, Message, TaskOperation, Timestamp};

/// The only topic this component consumes.
const TASK_EVENTS: &str = "task-events";

/// The component's exports. Only exported in the wasm build: a native build of this crate (for
/// `cargo test`) cannot link symbols named like `todo:events/handler@0.1.0#handle`.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "recurrence".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            topics: vec![TASK_EVENTS.into()],
        }
    }

    /// `now` is not needed: the next due date follows from the task and its completion time.
    fn handle(topic: String, message: Message, _now: Timestamp) -> Result<Vec<Effect>, Failure> {
        match message {
            Message::TaskEvent(event)
                if topic == TASK_EVENTS && event.operation == TaskOperation::Completed =>
            {
                Ok(series::next_occurrence(event)?
                    .map(Effect::CreateTask)
                    .into_iter()
                    .collect())
            }
            _ => Ok(Vec::new()),
        }
    }
}

#[cfg(target_arch = "wasm32")]
export!(Component);
