//! The public JSON shape of a task: the `task` object in `task-events` messages and the body of
//! the Task API's responses. Field names follow the existing system (`is_recurring`,
//! `recurrence_frequency`, ...); taskhost's extensions are flat `recurrence_*` fields,
//! `reminder_offsets_minutes`, `occurrence`, `series_id` and `completed_at`.

use super::time;
use crate::domain::{Frequency, Priority, Recurrence, Task, TaskId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskJson {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub is_completed: bool,
    #[serde(default)]
    pub priority: Priority,
    #[serde(default, with = "time::optional")]
    pub due_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub is_recurring: bool,
    #[serde(default)]
    pub recurrence_frequency: Option<Frequency>,
    #[serde(default)]
    pub recurrence_interval: Option<u32>,
    #[serde(default, with = "time::optional")]
    pub recurrence_ends_on: Option<DateTime<Utc>>,
    #[serde(default)]
    pub recurrence_max_occurrences: Option<u32>,
    #[serde(default, with = "time::optional")]
    pub recurrence_anchor: Option<DateTime<Utc>>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub reminder_offsets_minutes: Option<Vec<u32>>,
    #[serde(default)]
    pub occurrence: Option<u32>,
    #[serde(default)]
    pub series_id: Option<String>,
    #[serde(default, with = "time::optional")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, with = "time::optional")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default, with = "time::optional")]
    pub completed_at: Option<DateTime<Utc>>,
}

/// Builds a validated recurrence from the flat fields; `what` names the object in errors.
pub fn recurrence_from_parts(
    is_recurring: bool,
    frequency: Option<Frequency>,
    interval: Option<u32>,
    ends_on: Option<DateTime<Utc>>,
    max_occurrences: Option<u32>,
    anchor: Option<DateTime<Utc>>,
) -> Result<Option<Recurrence>, String> {
    if !is_recurring {
        return Ok(None);
    }
    let frequency = frequency.ok_or_else(|| {
        "recurrence_frequency is required when is_recurring is true (daily, weekly or monthly)"
            .to_string()
    })?;
    let interval = interval.unwrap_or(1);
    if interval == 0 {
        return Err("recurrence_interval must be at least 1".into());
    }
    if max_occurrences == Some(0) {
        return Err("recurrence_max_occurrences must be at least 1".into());
    }
    Ok(Some(Recurrence {
        frequency,
        interval,
        ends_on,
        max_occurrences,
        anchor,
    }))
}

impl TaskJson {
    /// Converts to a host task. `owner` comes from the event (the JSON's own `user_id`, when
    /// present, must agree); `fallback_time` fills timestamps an external producer left out.
    pub fn into_task(self, owner: &UserId, fallback_time: DateTime<Utc>) -> Result<Task, String> {
        let id = TaskId::new(self.id).ok_or("task.id must not be empty")?;
        if let Some(u) = &self.user_id
            && u != owner.as_str()
        {
            return Err(format!(
                "task.user_id `{u}` differs from the event's user_id `{owner}`"
            ));
        }
        let recurrence = recurrence_from_parts(
            self.is_recurring,
            self.recurrence_frequency,
            self.recurrence_interval,
            self.recurrence_ends_on,
            self.recurrence_max_occurrences,
            self.recurrence_anchor,
        )
        .map_err(|e| format!("task.{e}"))?;
        let created_at = self.created_at.unwrap_or(fallback_time);
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
            reminder_offsets_minutes: self.reminder_offsets_minutes,
            occurrence: self.occurrence.unwrap_or(1).max(1),
            series_id: self.series_id.and_then(TaskId::new),
            created_at,
            updated_at: self.updated_at.unwrap_or(created_at),
            completed_at: self.completed_at,
        })
    }
}

impl From<&Task> for TaskJson {
    fn from(t: &Task) -> Self {
        let r = t.recurrence.as_ref();
        TaskJson {
            id: t.id.to_string(),
            user_id: Some(t.user_id.to_string()),
            title: t.title.clone(),
            description: t.description.clone(),
            is_completed: t.is_completed,
            priority: t.priority,
            due_date: t.due_date,
            is_recurring: r.is_some(),
            recurrence_frequency: r.map(|r| r.frequency),
            recurrence_interval: r.map(|r| r.interval),
            recurrence_ends_on: r.and_then(|r| r.ends_on),
            recurrence_max_occurrences: r.and_then(|r| r.max_occurrences),
            recurrence_anchor: r.and_then(|r| r.anchor),
            tags: t.tags.clone(),
            reminder_offsets_minutes: t.reminder_offsets_minutes.clone(),
            occurrence: Some(t.occurrence),
            series_id: t.series_id.as_ref().map(|s| s.to_string()),
            created_at: Some(t.created_at),
            updated_at: Some(t.updated_at),
            completed_at: t.completed_at,
        }
    }
}
