//! Small builders for test data, so a test states only what it is about:
//! `Task { due_date: Some(ts("2026-02-01T09:00:00Z")), ..task("t1", "Pay rent") }`.

use chrono::{DateTime, SecondsFormat};

use crate::types::{
    Frequency, Message, Priority, Recurrence, ReminderDue, ReminderTask, Task, TaskEvent,
    TaskOperation, Timestamp,
};

/// The user every builder's task and event belong to.
pub const USER: &str = "user-1";

/// When every built task was created and last updated.
const CREATED: &str = "2026-01-01T00:00:00Z";

/// An RFC 3339 instant as epoch milliseconds, the contract's `timestamp`. Panics on a typo.
pub fn ts(rfc3339: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("bad timestamp {rfc3339:?} in test: {e}"))
        .timestamp_millis()
}

/// The inverse of [`ts`], for readable assertion messages: `2026-01-31T09:00:00Z`.
pub fn rfc3339(ms: Timestamp) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| format!("<{ms} ms: out of range>"))
}

/// A first, open, medium-priority task with no due date, recurrence, tags or reminder settings.
pub fn task(id: &str, title: &str) -> Task {
    Task {
        id: id.to_owned(),
        title: title.to_owned(),
        description: None,
        is_completed: false,
        priority: Priority::Medium,
        due_date: None,
        recurrence: None,
        tags: Vec::new(),
        reminder_offsets: None,
        occurrence: 1,
        series_id: None,
        created_at: ts(CREATED),
        updated_at: ts(CREATED),
        completed_at: None,
    }
}

/// Every `interval` days/weeks/months, with no end and no anchor.
pub fn recurrence(frequency: Frequency, interval: u32) -> Recurrence {
    Recurrence {
        frequency,
        interval,
        ends_on: None,
        max_occurrences: None,
        anchor: None,
    }
}

/// `operation` on `task` by [`USER`], at the task's `updated-at`, without a previous state.
/// The event id is derived from both, so two different events never share one.
pub fn event(operation: TaskOperation, task: Task) -> TaskEvent {
    let kind = match operation {
        TaskOperation::Created => "created",
        TaskOperation::Updated => "updated",
        TaskOperation::Completed => "completed",
        TaskOperation::Deleted => "deleted",
    };
    TaskEvent {
        event_id: format!("evt-{}-{kind}", task.id),
        operation,
        occurred_at: task.updated_at,
        user_id: USER.to_owned(),
        task,
        previous: None,
    }
}

/// The part of `task` a reminder carries. Panics if the task has no due date.
pub fn reminder_task(task: &Task) -> ReminderTask {
    ReminderTask {
        id: task.id.clone(),
        title: task.title.clone(),
        description: task.description.clone(),
        due_date: task
            .due_date
            .expect("a reminder needs a task with a due date"),
        priority: task.priority,
    }
}

impl From<TaskEvent> for Message {
    fn from(event: TaskEvent) -> Self {
        Message::TaskEvent(event)
    }
}

impl From<ReminderDue> for Message {
    fn from(reminder: ReminderDue) -> Self {
        Message::ReminderDue(reminder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(ts("2026-01-31T09:00:00Z"), 1_769_850_000_000);
        assert_eq!(
            rfc3339(ts("2026-01-31T09:00:00.250Z")),
            "2026-01-31T09:00:00.250Z"
        );
        assert_eq!(
            rfc3339(i64::MAX),
            format!("<{} ms: out of range>", i64::MAX)
        );
    }

    #[test]
    fn events_are_told_apart_by_id() {
        let created = event(TaskOperation::Created, task("t1", "a"));
        let deleted = event(TaskOperation::Deleted, task("t1", "a"));
        assert_eq!(created.event_id, "evt-t1-created");
        assert_ne!(created.event_id, deleted.event_id);
    }
}
