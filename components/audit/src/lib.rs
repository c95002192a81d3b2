//! The audit consumer: one audit-trail entry per task event — who did what to which task, when,
//! the states before and after, and the fields that changed.
//!
//! The entry's event id is the event's own, and the host appends effects at most once per
//! (component, event id), whichever topic the event came on: a redelivered event, or one a
//! producer published on both topics, does not write a second line.

mod changes;
mod json;

/// Each instance handles one message and is then thrown away, so the heap never gives memory
/// back: a bump arena instead of dlmalloc (`components/arena`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

wit_bindgen::generate!({ path: "../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{
    AuditEntry, Effect, Failure, Manifest, Message, TaskEvent, TaskOperation, Timestamp,
};

/// The version `describe()` reports. The `marked` feature gives a second build that differs in
/// this string only (hot-swap tests tell the two apart by the entries' component_version).
#[cfg(not(feature = "marked"))]
const VERSION: &str = env!("CARGO_PKG_VERSION");
#[cfg(feature = "marked")]
const VERSION: &str = "0.2.0-marked";

/// Task operations. Every operation must reach the trail whichever topic it comes on.
const TASK_EVENTS: &str = "task-events";
/// The Python backend publishes its `updated` events here (created, completed and deleted on
/// `task-events`).
const TASK_UPDATES: &str = "task-updates";

/// The component's exports. Only exported in the wasm build: a native build of this crate (for
/// `cargo test`) cannot link symbols named like `todo:events/handler@0.1.0#handle`.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "audit".into(),
            version: VERSION.into(),
            topics: vec![TASK_EVENTS.into(), TASK_UPDATES.into()],
        }
    }

    /// The entry is dated by the event, not by `now`: the trail records when things happened.
    fn handle(topic: String, message: Message, _now: Timestamp) -> Result<Vec<Effect>, Failure> {
        match message {
            Message::TaskEvent(event) if topic == TASK_EVENTS || topic == TASK_UPDATES => {
                Ok(vec![Effect::AppendAudit(entry(event)?)])
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// The audit entry for one task event.
///
/// A deletion records the last known state as `previous` and no change list: the task is gone,
/// not edited. Any other operation lists the fields that differ from `previous` — all of them
/// when the producer did not send `previous`, as for a creation.
fn entry(event: TaskEvent) -> Result<AuditEntry, Failure> {
    let TaskEvent {
        event_id,
        operation,
        occurred_at,
        user_id,
        task,
        previous,
    } = event;
    let task_id = task.id.clone();
    let (previous, current, changes) = match operation {
        TaskOperation::Created => {
            let changes = changes::between(None, &task)?;
            (None, Some(task), changes)
        }
        TaskOperation::Updated | TaskOperation::Completed => {
            let changes = changes::between(previous.as_ref(), &task)?;
            (previous, Some(task), changes)
        }
        TaskOperation::Deleted => (Some(previous.unwrap_or(task)), None, Vec::new()),
    };
    Ok(AuditEntry {
        event_id,
        task_id,
        actor: user_id,
        operation,
        at: occurred_at,
        previous,
        current,
        changes,
    })
}

#[cfg(target_arch = "wasm32")]
export!(Component);
