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
//! - **Whether the task is closed since**: its latest recorded completion or deletion is not
//!   older than any other operation recorded for it, nor than the message. That backend publishes an edit on `task-updates`, the
//!   edit's reminder on `reminders` and a completion on `task-events`: a task edited and then
//!   completed at once ("done" right after an edit) can have its edit or its reminder handled
//!   after the completion cancelled its jobs, and they would schedule the job again (the edit's
//!   task is still open). The host withholds the jobs and notifications a component asks for
//!   such a message (`Message::withhold_reminders`): an edit published before the completion,
//!   and a reminder asked for a later time of a task now closed. (A task reopened later is
//!   open again: its reopening's own task event schedules its jobs.) Reminders that are due (a
//!   job firing, another producer's "due now") are delivered as before.
//!
//! Best the host can know, not more: that backend publishes without partition keys and its
//! updates on another topic than its other operations, so Kafka does not order them; an event
//! handled before an earlier one of the same task gets the state before that earlier one.

use crate::domain::{Effect, Message, TaskId, TaskOperation, UserId};
use crate::storage::{Db, StorageError, audit};
use chrono::{DateTime, Utc};

/// What the host adds to a message.
#[derive(Default)]
pub(super) struct Context {
    /// The message with the previous state filled in; `None` when it needs none or the host has
    /// none to give.
    pub filled: Option<Message>,
    /// The message's task was closed after it (see the module documentation): what a component
    /// asks to remind of it is withheld.
    pub task_closed: bool,
}

impl Context {
    /// Adds to a component's `effects` for `message` what the component could not say: the
    /// delivery method the WIT cannot carry (`domain::carry`); and, when the task was closed
    /// since, takes out what would remind of it.
    pub(super) fn complete(&self, message: &Message, effects: &mut Vec<Effect>) {
        message.carry_into(effects);
        if self.task_closed {
            let withheld = message.withhold_reminders(effects);
            if withheld > 0 {
                tracing::debug!(withheld, "reminders of a closed task withheld");
            }
        }
    }
}

/// What the host knows of `message`'s task. Reads the database only for the messages that
/// need it — task events without a previous state, reminders asked for a later time — never
/// for taskhost's own events, which carry their previous state.
pub(super) async fn of(
    db: &Db,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<Context, StorageError> {
    match message {
        Message::Task(event) if reads(message, now) => {
            // A reader connection: on SQLite the one writer is busy with group commits.
            let mut conn = db.read_pool().acquire().await?;
            let (user, task) = (&event.user_id, &event.task.id);
            let task_closed = event.operation == TaskOperation::Updated
                && closed(&mut conn, user, task, Some(event.occurred_at)).await?;
            let previous =
                audit::last_state(&mut conn, user, task, event.occurred_at, &event.event_id)
                    .await?;
            tracing::debug!(task_id = %task, found = previous.is_some(), "no previous state sent: the audit trail's");
            let filled = previous.map(|previous| {
                let mut event = event.clone();
                event.previous = Some(previous);
                Message::Task(event)
            });
            Ok(Context {
                filled,
                task_closed,
            })
        }
        Message::Reminder(r) if reads(message, now) => {
            let mut conn = db.read_pool().acquire().await?;
            Ok(Context {
                filled: None,
                task_closed: closed(&mut conn, &r.user_id, &r.task.id, None).await?,
            })
        }
        Message::Task(_) | Message::Reminder(_) | Message::ReminderCancel(_) => {
            Ok(Context::default())
        }
    }
}

/// Whether [`of`] reads the database for `message`. What it reads, an earlier message of the
/// same user may still be writing: a message chained behind another (`wave.rs`) waits for that
/// one's answer before its context is read.
pub(super) fn reads(message: &Message, now: DateTime<Utc>) -> bool {
    match message {
        Message::Task(event) => {
            event.previous.is_none()
                && matches!(
                    event.operation,
                    TaskOperation::Updated | TaskOperation::Completed
                )
        }
        Message::Reminder(r) => r.occurred_at > now,
        Message::ReminderCancel(_) => false,
    }
}

/// Whether the task is closed — its latest closing entry (completion or deletion) is not older
/// than any other of its entries — and was closed not before `since`, when given. At the
/// trail's precision (milliseconds), a closure at the same instant as another operation, or as
/// the message, counts as after it: an edit and a completion published in one millisecond
/// leave the task completed.
async fn closed(
    conn: &mut crate::storage::Conn,
    user: &UserId,
    task: &TaskId,
    since: Option<DateTime<Utc>>,
) -> Result<bool, StorageError> {
    let (closed_at, open_at) = audit::last_closed_and_open(conn, user, task).await?;
    let ms = |t: DateTime<Utc>| t.timestamp_millis();
    let closed = closed_at.is_some_and(|c| {
        open_at.is_none_or(|o| ms(c) >= ms(o)) && since.is_none_or(|s| ms(c) >= ms(s))
    });
    if closed {
        tracing::info!(task_id = %task, closed_at = ?closed_at, "the task was closed since: its reminders asked for now are withheld");
    }
    Ok(closed)
}
