//! The state before an event, when its producer sent none worth having.
//!
//! The Python backend sends no `previousTaskData` with `completed`, and with `updated` one equal
//! to the new state (it is built after its ORM applied the update), which `wire::decode` drops.
//! Its consumers would then see an edit without knowing what changed: the audit trail could not
//! name the changed fields, and the notification component could not tell that a due date moved
//! or reminders were turned off. The host has the last state of the task it saw: the `current`
//! state of the task's latest audit entry at or before the event. That becomes the `previous`
//! of an update or completion that came without one.
//!
//! Best the host can know, not more: that backend publishes without partition keys and its
//! updates on another topic than its other operations, so Kafka does not order them; an event
//! handled before an earlier one of the same task gets the state before that earlier one.

use crate::domain::{Message, TaskOperation};
use crate::storage::{Db, StorageError, audit};

/// `message` with the previous state filled in, or `None` when it needs none or the host has
/// none to give.
pub(super) async fn fill(db: &Db, message: &Message) -> Result<Option<Message>, StorageError> {
    let Message::Task(event) = message else {
        return Ok(None);
    };
    if event.previous.is_some()
        || !matches!(
            event.operation,
            TaskOperation::Updated | TaskOperation::Completed
        )
    {
        return Ok(None);
    }
    // A reader connection: on SQLite the one writer connection is busy with group commits.
    let mut conn = db.read_pool().acquire().await?;
    let Some(previous) = audit::last_state(
        &mut conn,
        &event.user_id,
        &event.task.id,
        event.occurred_at,
        &event.event_id,
    )
    .await?
    else {
        tracing::debug!(task_id = %event.task.id, "no previous state sent, none recorded");
        return Ok(None);
    };
    tracing::debug!(task_id = %event.task.id, "previous state from the audit trail");
    let mut event = event.clone();
    event.previous = Some(previous);
    Ok(Some(Message::Task(event)))
}
