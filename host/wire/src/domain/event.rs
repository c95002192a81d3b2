//! The messages that flow on the topics, decoded and typed.

use super::ids::{EventId, TaskId, UserId};
use super::task::{Priority, Task};
use chrono::{DateTime, Utc};

/// The topics taskhost knows how to decode.
pub mod topics {
    pub const TASK_EVENTS: &str = "task-events";
    pub const REMINDERS: &str = "reminders";
    pub const TASK_UPDATES: &str = "task-updates";
    pub const ALL: [&str; 3] = [TASK_EVENTS, REMINDERS, TASK_UPDATES];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskOperation {
    Created,
    Updated,
    Completed,
    Deleted,
}

impl TaskOperation {
    /// The short name used in the API and audit trail (`created`).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskOperation::Created => "created",
            TaskOperation::Updated => "updated",
            TaskOperation::Completed => "completed",
            TaskOperation::Deleted => "deleted",
        }
    }

    /// The `event_type` on the wire (`task.created`).
    pub fn event_type(self) -> &'static str {
        match self {
            TaskOperation::Created => "task.created",
            TaskOperation::Updated => "task.updated",
            TaskOperation::Completed => "task.completed",
            TaskOperation::Deleted => "task.deleted",
        }
    }

    /// Accepts both `task.created` and the camelCase producer's `created`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.strip_prefix("task.").unwrap_or(s) {
            "created" => Some(TaskOperation::Created),
            "updated" => Some(TaskOperation::Updated),
            "completed" => Some(TaskOperation::Completed),
            "deleted" => Some(TaskOperation::Deleted),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TaskEvent {
    pub event_id: EventId,
    pub operation: TaskOperation,
    pub occurred_at: DateTime<Utc>,
    pub user_id: UserId,
    pub task: Task,
    pub previous: Option<Task>,
}

/// The part of a task a reminder carries.
#[derive(Clone, Debug, PartialEq)]
pub struct ReminderTask {
    pub id: TaskId,
    pub title: String,
    pub description: Option<String>,
    pub due_date: DateTime<Utc>,
    pub priority: Priority,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReminderDue {
    pub event_id: EventId,
    pub occurred_at: DateTime<Utc>,
    pub user_id: UserId,
    pub task: ReminderTask,
    pub offset_minutes: u32,
}

/// A decoded topic message.
#[derive(Clone, Debug, PartialEq)]
// Values are built once per message and moved, never stored in bulk: boxing the large variant
// would add an allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Message {
    Task(TaskEvent),
    Reminder(ReminderDue),
}

impl Message {
    pub fn event_id(&self) -> &EventId {
        match self {
            Message::Task(e) => &e.event_id,
            Message::Reminder(r) => &r.event_id,
        }
    }

    pub fn user_id(&self) -> &UserId {
        match self {
            Message::Task(e) => &e.user_id,
            Message::Reminder(r) => &r.user_id,
        }
    }

    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Message::Task(e) => e.occurred_at,
            Message::Reminder(r) => r.occurred_at,
        }
    }
}
