//! {{name}}: a taskhost consumer. `describe` tells the host who this is and which topics it
//! reads; `handle` gets one message and returns the effects the host should carry out (in one
//! transaction, at most once per event). It does no I/O and reads no clock: the same message
//! always gives the same effects. Its only output besides effects is stderr, which the host logs.

wit_bindgen::generate!({ path: "wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{
    Effect, Failure, Manifest, Message, Notification, TaskEvent, TaskOperation, Timestamp,
};

const NAME: &str = "{{name}}";
const VERSION: &str = env!("CARGO_PKG_VERSION");
const TOPICS: &[&str] = &[{{topics}}];

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: NAME.into(),
            version: VERSION.into(),
            topics: TOPICS.iter().map(|topic| topic.to_string()).collect(),
        }
    }

    fn handle(_topic: String, message: Message, _now: Timestamp) -> Result<Vec<Effect>, Failure> {
        match message {
            Message::TaskEvent(event) if event.operation == TaskOperation::Created => {
                Ok(vec![note(event)?])
            }
            // Messages this consumer does not care about: nothing to do.
            _ => Ok(vec![]),
        }
    }
}

/// The example: a note in the owner's inbox for each new task. Replace it with yours.
fn note(event: TaskEvent) -> Result<Effect, Failure> {
    if event.task.title.trim().is_empty() {
        // Malformed data: `drop` dead-letters the message with this reason (`retry` would
        // have it delivered again later).
        return Err(Failure::Drop(format!("task {} has no title", event.task.id)));
    }
    eprintln!("{NAME} {VERSION}: noting task {}", event.task.id);
    Ok(Effect::Notify(Notification {
        // The host stores one notification per key: a redelivered event adds nothing.
        idempotency_key: format!("{NAME}:{}", event.event_id),
        user_id: event.user_id,
        task_id: event.task.id,
        title: format!("New task: {}", event.task.title),
        body: format!("noted by {NAME} {VERSION}"),
        created_at: event.occurred_at,
    }))
}

// Only in the wasm build: a native build (`cargo test`) cannot link the export names.
#[cfg(target_arch = "wasm32")]
export!(Component);

#[cfg(test)]
mod tests {
    use super::*;
    use todo::events::types::{Priority, Task};

    fn created(title: &str) -> Message {
        let task = Task {
            id: "t1".into(),
            title: title.into(),
            description: None,
            is_completed: false,
            priority: Priority::High,
            due_date: None,
            recurrence: None,
            tags: vec![],
            reminder_offsets: None,
            occurrence: 1,
            series_id: None,
            created_at: 1_769_850_000_000,
            updated_at: 1_769_850_000_000,
            completed_at: None,
        };
        Message::TaskEvent(TaskEvent {
            event_id: "evt-1".into(),
            operation: TaskOperation::Created,
            occurred_at: 1_769_850_000_000,
            user_id: "alice".into(),
            task,
            previous: None,
        })
    }

    #[test]
    fn a_new_task_gets_a_note() {
        let effects = Component::handle("task-events".into(), created("Pay rent"), 0).unwrap();
        let [Effect::Notify(note)] = effects.as_slice() else {
            panic!("expected one notify, got {effects:?}");
        };
        assert_eq!(note.idempotency_key, format!("{NAME}:evt-1"));
        assert_eq!(note.user_id, "alice");
        assert_eq!(note.title, "New task: Pay rent");
    }

    #[test]
    fn a_task_without_a_title_is_dropped() {
        let result = Component::handle("task-events".into(), created(" "), 0);
        assert!(matches!(result, Err(Failure::Drop(_))), "{result:?}");
    }

    #[test]
    fn it_describes_itself() {
        let manifest = Component::describe();
        assert_eq!((manifest.name.as_str(), manifest.version.as_str()), (NAME, VERSION));
    }
}
