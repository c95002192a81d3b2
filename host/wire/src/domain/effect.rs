//! What components ask the host to do, in host types (validated, chrono times, newtypes).
//! Serializable so that a shadow run can show, field by field, how a candidate's effects
//! differ from the serving version's (`host/src/rollout/diff.rs`).

use super::event::{ReminderDue, TaskOperation};
use super::ids::{EventId, TaskId, UserId};
use super::notification_method::NotificationMethod;
use super::task::{Priority, Recurrence, Task};
use chrono::{DateTime, Utc};

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NewTask {
    pub idempotency_key: String,
    pub user_id: UserId,
    pub title: String,
    pub description: Option<String>,
    pub priority: Priority,
    pub due_date: Option<DateTime<Utc>>,
    pub recurrence: Option<Recurrence>,
    pub tags: Vec<String>,
    pub reminder_offsets_minutes: Option<Vec<u32>>,
    pub occurrence: u32,
    pub series_id: Option<TaskId>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReminderJob {
    pub name: String,
    pub due_at: DateTime<Utc>,
    pub reminder: ReminderDue,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Notification {
    pub idempotency_key: String,
    pub user_id: UserId,
    pub task_id: TaskId,
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// How the producer of the reminder wants it delivered. Host-only (not in the WIT
    /// `notification`): set by the host from the message the component handled.
    pub method: Option<NotificationMethod>,
}

/// The reminder jobs of one task of one user due at one instant, whatever their names.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RemindersAt {
    pub user_id: UserId,
    pub task_id: TaskId,
    pub due_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AuditEntry {
    pub event_id: EventId,
    pub task_id: TaskId,
    pub actor: UserId,
    pub operation: TaskOperation,
    pub at: DateTime<Utc>,
    pub previous: Option<Task>,
    pub current: Option<Task>,
    pub changes: Vec<FieldChange>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SyncMessage {
    pub user_id: UserId,
    pub operation: TaskOperation,
    pub task_id: TaskId,
    pub task: Option<Task>,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OutboundEvent {
    pub topic: String,
    pub key: String,
    /// Validated JSON text.
    pub payload: String,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
// Values are built once per message and moved, never stored in bulk: boxing the large variant
// would add an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    CreateTask(NewTask),
    ScheduleReminder(ReminderJob),
    CancelReminder(String),
    /// Host-only (no WIT counterpart): the host's own handling of a producer's reminder
    /// cancellation ([`super::ReminderCancel`]).
    CancelRemindersAt(RemindersAt),
    Notify(Notification),
    AppendAudit(AuditEntry),
    Broadcast(SyncMessage),
    Publish(OutboundEvent),
}

impl Effect {
    /// Short kind name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Effect::CreateTask(_) => "create-task",
            Effect::ScheduleReminder(_) => "schedule-reminder",
            Effect::CancelReminder(_) => "cancel-reminder",
            Effect::CancelRemindersAt(_) => "cancel-reminders-at",
            Effect::Notify(_) => "notify",
            Effect::AppendAudit(_) => "append-audit",
            Effect::Broadcast(_) => "broadcast",
            Effect::Publish(_) => "publish",
        }
    }
}
