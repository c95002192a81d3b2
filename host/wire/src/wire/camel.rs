//! The camelCase variant published by the existing Python producer, accepted unchanged:
//! `{"eventId","timestamp","eventType":"created|updated|completed|deleted","taskId","userId",
//!   "taskData":{…,"recurrenceRule":{"enabled","pattern":"daily|weekly|monthly|interval",
//!   "intervalDays","endsOn","occurrencesCount"},"reminderConfig":{…}},"previousTaskData":{…}}`
//!
//! `pattern: "interval"` means every `intervalDays` days. `reminderConfig` is read as
//! `{"enabled": bool, "notifyBefore" | "offsetsMinutes" | "minutesBefore": [n, …] | n,
//! "method": "email|push|both"}`; `enabled: false` means no reminders. The Python backend
//! (`backend/src/api/api_v1/tasks.py` of AqsaIftikhar15/Full-Stack-TODO-App-Phase-2, branch
//! `006-event-driven-dapr`) reminds `notifyBefore` minutes before the due date, 15 when it is
//! not set, by `method`: an enabled config without minutes is read the same way, so that the
//! reminder jobs taskhost derives from the task are the very jobs that backend's own reminder
//! events ask for (same task and offset, so the same job; see `camel_reminder.rs`).
//!
//! Its `previousTaskData` is built after its ORM applied the update (the task it reads back is
//! the same session object), so it always equals `taskData`; `wire::decode` treats a previous
//! state equal to the new one as absent.

use super::time;
use crate::domain::{
    EventId, Frequency, NotificationMethod, Priority, Recurrence, Task, TaskEvent, TaskId,
    TaskOperation, UserId,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CamelEvent {
    event_id: String,
    #[serde(default, with = "time::optional")]
    timestamp: Option<DateTime<Utc>>,
    event_type: String,
    #[serde(default)]
    task_id: Option<String>,
    user_id: String,
    task_data: CamelTask,
    #[serde(default)]
    previous_task_data: Option<CamelTask>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CamelTask {
    #[serde(default)]
    id: Option<String>,
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, alias = "completed")]
    is_completed: bool,
    #[serde(default)]
    priority: Priority,
    #[serde(default, with = "time::optional")]
    due_date: Option<DateTime<Utc>>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    recurrence_rule: Option<RecurrenceRule>,
    #[serde(default)]
    reminder_config: Option<ReminderConfig>,
    #[serde(default)]
    occurrence: Option<u32>,
    #[serde(default)]
    series_id: Option<String>,
    #[serde(default, with = "time::optional")]
    created_at: Option<DateTime<Utc>>,
    #[serde(default, with = "time::optional")]
    updated_at: Option<DateTime<Utc>>,
    #[serde(default, with = "time::optional")]
    completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecurrenceRule {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    interval_days: Option<u32>,
    #[serde(default)]
    interval: Option<u32>,
    #[serde(default, with = "time::optional")]
    ends_on: Option<DateTime<Utc>>,
    #[serde(default)]
    occurrences_count: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReminderConfig {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default, alias = "minutesBefore", alias = "notifyBefore")]
    offsets_minutes: Option<OneOrMany>,
    #[serde(default)]
    method: Option<String>,
}

/// The Python backend's `reminder_config.get("notifyBefore", 15)`.
const DEFAULT_NOTIFY_BEFORE: u32 = 15;

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(u32),
    Many(Vec<u32>),
}

impl RecurrenceRule {
    fn into_recurrence(self) -> Result<Option<Recurrence>, String> {
        if !self.enabled {
            return Ok(None);
        }
        let pattern = self.pattern.as_deref().unwrap_or("daily");
        let (frequency, interval) = match pattern {
            "interval" => (
                Frequency::Daily,
                self.interval_days
                    .ok_or("recurrenceRule.intervalDays is required for pattern `interval`")?,
            ),
            other => (
                Frequency::parse(other).ok_or_else(|| {
                    format!(
                        "recurrenceRule.pattern `{other}` is not daily, weekly, monthly or interval"
                    )
                })?,
                self.interval.unwrap_or(1),
            ),
        };
        if interval == 0 {
            return Err("recurrenceRule interval must be at least 1".into());
        }
        // As the snake_case schema: a series of zero occurrences is not a series (found by
        // the fuzz target: it decoded here, and taskhost's own re-encoding was refused).
        if self.occurrences_count == Some(0) {
            return Err("recurrenceRule.occurrencesCount must be at least 1".into());
        }
        Ok(Some(Recurrence {
            frequency,
            interval,
            ends_on: self.ends_on,
            max_occurrences: self.occurrences_count,
            anchor: None,
        }))
    }
}

impl CamelTask {
    fn into_task(
        self,
        fallback_id: Option<&str>,
        owner: &UserId,
        at: DateTime<Utc>,
    ) -> Result<Task, String> {
        let id = self
            .id
            .as_deref()
            .or(fallback_id)
            .and_then(TaskId::new)
            .ok_or("taskId (or taskData.id) is missing")?;
        let recurrence = self
            .recurrence_rule
            .map(RecurrenceRule::into_recurrence)
            .transpose()?
            .flatten();
        let reminder_offsets_minutes = match self.reminder_config {
            None => None,
            Some(ReminderConfig { enabled: false, .. }) => Some(vec![]),
            Some(ReminderConfig {
                offsets_minutes: None,
                ..
            }) => Some(vec![DEFAULT_NOTIFY_BEFORE]),
            Some(ReminderConfig {
                offsets_minutes: Some(OneOrMany::One(m)),
                ..
            }) => Some(vec![m]),
            Some(ReminderConfig {
                offsets_minutes: Some(OneOrMany::Many(v)),
                ..
            }) => Some(v),
        };
        let created_at = self.created_at.unwrap_or(at);
        Ok(Task {
            id,
            user_id: owner.clone(),
            title: self.title,
            description: self.description,
            is_completed: self.is_completed,
            priority: self.priority,
            due_date: self.due_date,
            recurrence,
            tags: self.tags,
            reminder_offsets_minutes,
            occurrence: self.occurrence.unwrap_or(1).max(1),
            series_id: self.series_id.and_then(TaskId::new),
            created_at,
            updated_at: self.updated_at.unwrap_or(created_at),
            completed_at: self.completed_at,
        })
    }
}

pub fn decode_task_event(v: Value, received_at: DateTime<Utc>) -> Result<TaskEvent, String> {
    let raw: CamelEvent = super::from_value(v)?;
    let event_id = EventId::new(raw.event_id).ok_or("eventId must not be empty")?;
    let user_id = UserId::new(raw.user_id).ok_or("userId must not be empty")?;
    let operation = TaskOperation::parse(&raw.event_type).ok_or_else(|| {
        format!(
            "eventType `{}` is not one of created, updated, completed, deleted",
            raw.event_type
        )
    })?;
    let occurred_at = raw.timestamp.unwrap_or(received_at);
    let task_id = raw.task_id.as_deref();
    let reminder_method = NotificationMethod::parse_field(
        "taskData.reminderConfig.method",
        raw.task_data
            .reminder_config
            .as_ref()
            .and_then(|c| c.method.as_deref()),
    )?;
    let mut task = raw
        .task_data
        .into_task(task_id, &user_id, occurred_at)
        .map_err(|e| format!("taskData: {e}"))?;
    if operation == TaskOperation::Completed && !task.is_completed {
        // The producer's `completed` event is authoritative even when taskData lags behind.
        task.is_completed = true;
        task.completed_at.get_or_insert(occurred_at);
    }
    let previous = raw
        .previous_task_data
        .map(|p| {
            p.into_task(task_id, &user_id, occurred_at)
                .map_err(|e| format!("previousTaskData: {e}"))
        })
        .transpose()?;
    Ok(TaskEvent {
        event_id,
        operation,
        occurred_at,
        user_id,
        task,
        previous,
        reminder_method,
    })
}
