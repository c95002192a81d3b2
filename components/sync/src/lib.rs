//! The sync consumer: every task change becomes one compact message broadcast to the owner's
//! open sockets, so all of a user's clients show the same list without polling.
//!
//! It listens to `task-updates` as well as `task-events` so that clients see changes published
//! only for them. What happens to a socket that is gone is the host's business: a broadcast
//! never fails a delivery.

/// Each instance handles one message and is then thrown away, so the heap never gives memory
/// back: a bump arena instead of dlmalloc (`components/arena`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

wit_bindgen::generate!({ path: "../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{
    Effect, Failure, Manifest, Message, SyncMessage, TaskOperation, Timestamp,
};

/// The domain's task events.
const TASK_EVENTS: &str = "task-events";
/// Task changes published for clients.
const TASK_UPDATES: &str = "task-updates";

/// The component's exports. Only exported in the wasm build: a native build of this crate (for
/// `cargo test`) cannot link symbols named like `todo:events/handler@0.1.0#handle`.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "sync".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            topics: vec![TASK_EVENTS.into(), TASK_UPDATES.into()],
        }
    }

    /// Dated by the event, not by `now`, so clients can order what they receive.
    fn handle(topic: String, message: Message, _now: Timestamp) -> Result<Vec<Effect>, Failure> {
        let Message::TaskEvent(event) = message else {
            return Ok(Vec::new());
        };
        if topic != TASK_EVENTS && topic != TASK_UPDATES {
            return Ok(Vec::new());
        }
        Ok(vec![Effect::Broadcast(SyncMessage {
            user_id: event.user_id,
            operation: event.operation,
            task_id: event.task.id.clone(),
            // A deleted task's last state is of no use to a client, which only removes it.
            task: (event.operation != TaskOperation::Deleted).then_some(event.task),
            at: event.occurred_at,
        })])
    }
}

#[cfg(target_arch = "wasm32")]
export!(Component);
