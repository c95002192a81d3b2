//! The inbox notification a reminder that came due becomes.

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::reminders::reminder_key;
use crate::todo::events::types::{Failure, Notification, ReminderDue, Timestamp};

/// How late a reminder may arrive and still say how soon the task is due: later than that (a
/// reminder whose time had passed when it was published, a job that fired after an outage),
/// "in 1 hour" is no longer true, and the notification says when instead.
const LATE_MS: i64 = 60_000;

/// "Reminder: Pay rent" / "“Pay rent” is due in 1 hour (2026-02-01 09:00 UTC)"; when late,
/// "“Pay rent” is due at 2026-02-01 09:00 UTC" (or "was due at", once that has passed).
///
/// The key is rebuilt from the reminder's task, offset and due date rather than taken from its
/// event id, so the guarantee (one notification per task, offset and due date) does not depend
/// on who published the reminder.
pub fn notification(reminder: &ReminderDue, now: Timestamp) -> Result<Notification, Failure> {
    let task = &reminder.task;
    let due = DateTime::from_timestamp_millis(task.due_date).ok_or_else(|| {
        Failure::Drop(format!(
            "reminder due date {} ms is out of range",
            task.due_date
        ))
    })?;
    Ok(Notification {
        idempotency_key: reminder_key(&task.id, reminder.offset_minutes, task.due_date),
        user_id: reminder.user_id.clone(),
        task_id: task.id.clone(),
        title: format!("Reminder: {}", task.title),
        body: body(reminder, due, now),
        created_at: now,
    })
}

fn body(reminder: &ReminderDue, due: DateTime<Utc>, now: Timestamp) -> String {
    let title = &reminder.task.title;
    if now.saturating_sub(reminder.occurred_at) <= LATE_MS {
        format!(
            "“{title}” is due {} ({})",
            how_soon(reminder.offset_minutes),
            minute(due)
        )
    } else if reminder.task.due_date > now {
        format!("“{title}” is due at {}", minute(due))
    } else {
        format!("“{title}” was due at {}", minute(due))
    }
}

/// The offset as people say it: the two defaults by their names, anything else in minutes.
fn how_soon(offset_minutes: u32) -> String {
    match offset_minutes {
        0 => "now".into(),
        1 => "in 1 minute".into(),
        60 => "in 1 hour".into(),
        1440 => "in 24 hours".into(),
        minutes => format!("in {minutes} minutes"),
    }
}

/// `2026-02-01 09:00 UTC`. Written out rather than with `format("%Y-…")`, whose format-string
/// machinery would be a third of the component's size.
fn minute(t: DateTime<Utc>) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute()
    )
}
