//! The messages that flow on the topics, decoded and typed.

use super::ids::{EventId, TaskId, UserId};
use super::notification_method::NotificationMethod;
use super::task::{Priority, Task};
use chrono::{DateTime, Utc};

/// The topics taskhost knows how to decode.
pub mod topics {
    pub const TASK_EVENTS: &str = "task-events";
    pub const REMINDERS: &str = "reminders";
    pub const TASK_UPDATES: &str = "task-updates";
    pub const ALL: [&str; 3] = [TASK_EVENTS, REMINDERS, TASK_UPDATES];
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// How the producer wants this task's reminders delivered (the Python backend's
    /// `reminderConfig.method`). Host-only: the WIT `task-event` of `todo:events@0.1.0` has no
    /// such field, so the host puts it on the reminder jobs a component schedules for this task
    /// itself ([`Message::carry_into`](super::carry)).
    pub reminder_method: Option<NotificationMethod>,
}

/// The part of a task a reminder carries.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReminderTask {
    pub id: TaskId,
    pub title: String,
    pub description: Option<String>,
    pub due_date: DateTime<Utc>,
    pub priority: Priority,
}

/// A reminder for `occurred_at`: a reminder job that came due (taskhost's own), or a producer's
/// request to remind the user at that time (the Python backend's `status: scheduled`, whose
/// `remindAt` may still be ahead).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReminderDue {
    pub event_id: EventId,
    /// The instant the reminder is for.
    pub occurred_at: DateTime<Utc>,
    pub user_id: UserId,
    pub task: ReminderTask,
    pub offset_minutes: u32,
    /// How the producer wants it delivered. Host-only (not in the WIT `reminder-due`): the
    /// host carries it onto the notification and the job a component makes of this reminder.
    pub notification_method: Option<NotificationMethod>,
}

/// Why a producer withdrew a reminder it had asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReminderWithdrawn {
    /// `status: cancelled`.
    Cancelled,
    /// `status: sent`: delivered by someone else, so taskhost must not deliver it again.
    Sent,
}

impl ReminderWithdrawn {
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderWithdrawn::Cancelled => "cancelled",
            ReminderWithdrawn::Sent => "sent",
        }
    }
}

/// A producer's word that the reminder of `task_id` at `remind_at` must not be delivered (the
/// Python backend's reminder event with `status: cancelled` or `sent`).
///
/// The host handles it itself, because the WIT of `todo:events@0.1.0` has no message that
/// says "cancel": it removes the user's reminder jobs of that task due at `remind_at`, whatever
/// component named them.
#[derive(Clone, Debug, PartialEq)]
pub struct ReminderCancel {
    pub event_id: EventId,
    /// When the producer published it.
    pub occurred_at: DateTime<Utc>,
    pub user_id: UserId,
    pub task_id: TaskId,
    pub due_at: DateTime<Utc>,
    pub remind_at: DateTime<Utc>,
    pub reason: ReminderWithdrawn,
    pub notification_method: Option<NotificationMethod>,
}

/// A decoded topic message.
#[derive(Clone, Debug, PartialEq)]
// Values are built once per message and moved, never stored in bulk: boxing the large variant
// would add an allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Message {
    Task(TaskEvent),
    Reminder(ReminderDue),
    /// Handled by the host, never handed to a component (see [`ReminderCancel`]).
    ReminderCancel(ReminderCancel),
}

impl Message {
    pub fn event_id(&self) -> &EventId {
        match self {
            Message::Task(e) => &e.event_id,
            Message::Reminder(r) => &r.event_id,
            Message::ReminderCancel(c) => &c.event_id,
        }
    }

    pub fn user_id(&self) -> &UserId {
        match self {
            Message::Task(e) => &e.user_id,
            Message::Reminder(r) => &r.user_id,
            Message::ReminderCancel(c) => &c.user_id,
        }
    }

    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Message::Task(e) => e.occurred_at,
            Message::Reminder(r) => r.occurred_at,
            Message::ReminderCancel(c) => c.occurred_at,
        }
    }
}
