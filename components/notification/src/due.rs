//! A reminder on `reminders`: notify when its time has come, keep it as a job until then.
//!
//! Two kinds arrive there. Jobs this component scheduled publish their reminder when they fire;
//! it carries the component's own key as its event id and always notifies (whatever the clocks
//! say: the job fired, and a reminder sent back as a job again would reuse that event id, which
//! the host's exactly-once record has seen, and never notify). Other systems publish reminders
//! of their own: the Python backend asks "remind this user at `remindAt`" when a task is
//! created or updated, usually well ahead. Such a reminder for a time still ahead becomes this
//! component's job for that task and offset — the job its task events schedule too, so the
//! two make one job, moved by either and cancelled with the task — and one whose time has come
//! notifies at once. The notification's key is the same either way, so the user hears once.

use crate::notify;
use crate::reminders::{job, reminder_key};
use crate::todo::events::types::{Effect, Failure, ReminderDue, ReminderJob, Timestamp};

pub fn on_reminder(reminder: &ReminderDue, now: Timestamp) -> Result<Vec<Effect>, Failure> {
    let task = &reminder.task;
    let key = reminder_key(&task.id, reminder.offset_minutes, task.due_date);
    if reminder.event_id != key && reminder.occurred_at > now {
        return Ok(vec![Effect::ScheduleReminder(ReminderJob {
            name: job(&task.id, reminder.offset_minutes),
            due_at: reminder.occurred_at,
            reminder: ReminderDue {
                event_id: key,
                ..reminder.clone()
            },
        })]);
    }
    notify::notification(reminder, now).map(|n| vec![Effect::Notify(n)])
}
