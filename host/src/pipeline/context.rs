//! What the host knows about a message's task that its producer did not say: the task's
//! history in the audit trail, the one record of every state of every task the host has seen
//! (its own tasks' and other producers').
//!
//! - **The state before an event**, when its producer sent none worth having. The Python
//!   backend sends no `previousTaskData` with `completed`, and with `updated` one equal to the
//!   new state (it is built after its ORM applied the update), which `wire::decode` drops. Its
//!   consumers would then see an edit without knowing what changed: the audit trail could not
//!   name the changed fields, and the notification component could not tell that a due date
//!   moved or reminders were turned off. The `current` state of the task's latest audit entry at
//!   or before the event becomes the `previous` of an update or completion that came without one.
//! - **Whether the task of a reminder asked for a later time is closed**: its latest recorded
//!   operation is a completion or a deletion. That backend publishes a task's reminder on
//!   `reminders` and its completion on `task-events`, so a reminder it published just before the
//!   task was completed (an edit, then "done") can be handled after the completion cancelled the
//!   task's jobs, and would schedule the job again. The host withholds the jobs (and
//!   notifications) a component asks for such a reminder (`Message::withhold_reminders`).
//!   Reminders that are due (a job firing, another producer's "due now") are delivered as before.
//!
//! Best the host can know, not more: that backend publishes without partition keys and its
//! updates on another topic than its other operations, so Kafka does not order them; an event
//! handled before an earlier one of the same task gets the state before that earlier one.

use crate::domain::{Message, TaskOperation};
use crate::storage::{Db, StorageError, audit};
use chrono::{DateTime, Utc};

/// What the host adds to a message.
#[derive(Default)]
pub(super) struct Context {
    /// The message with the previous state filled in; `None` when it needs none or the host has
    /// none to give.
    pub filled: Option<Message>,
    /// The message is a reminder for a later time of a task whose latest recorded operation
    /// closed it.
    pub task_closed: bool,
}

pub(super) async fn of(
    db: &Db,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<Context, StorageError> {
    Ok(match message {
        Message::Task(_) => Context {
            filled: fill(db, message).await?,
            task_closed: false,
        },
        Message::Reminder(r) if r.occurred_at > now => {
            // A reader connection: on SQLite the one writer is busy with group commits.
            let mut conn = db.read_pool().acquire().await?;
            let last = audit::last_operation(&mut conn, &r.user_id, &r.task.id).await?;
            let task_closed = matches!(
                last.as_deref(),
                Some(op) if op == TaskOperation::Completed.as_str() || op == TaskOperation::Deleted.as_str()
            );
            if task_closed {
                tracing::info!(task_id = %r.task.id, last = ?last, "a reminder for a later time of a closed task: its job is withheld");
            }
            Context {
                filled: None,
                task_closed,
            }
        }
        Message::Reminder(_) | Message::ReminderCancel(_) => Context::default(),
    })
}

/// `message` with the previous state filled in, or `None` when it needs none or the host has
/// none to give.
async fn fill(db: &Db, message: &Message) -> Result<Option<Message>, StorageError> {
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
