//! The tracked fields of a task as JSON values, and which of them differ between two states.
//!
//! Field names and value shapes are those of the public JSON API (snake_case), so an audit
//! line reads like the API's own representation of the task.

use crate::json::{self, Json};
use crate::todo::events::types::{Failure, FieldChange, Frequency, Priority, Recurrence, Task};

/// The fields the audit trail tracks, in the order changes are listed.
const TRACKED: [&str; 9] = [
    "title",
    "description",
    "is_completed",
    "priority",
    "due_date",
    "recurrence",
    "tags",
    "reminder_offsets_minutes",
    "completed_at",
];

/// The tracked fields whose values differ from `previous` to `current`. Without a previous
/// state, every field that has a value, with no old value.
pub fn between(previous: Option<&Task>, current: &Task) -> Result<Vec<FieldChange>, Failure> {
    let old = match previous {
        Some(task) => values(task)?,
        None => [const { None }; TRACKED.len()],
    };
    let new = values(current)?;
    Ok(TRACKED
        .iter()
        .zip(old.into_iter().zip(new))
        .filter(|(_, (old, new))| old != new)
        .map(|(field, (old, new))| FieldChange {
            field: (*field).into(),
            old,
            new,
        })
        .collect())
}

/// The value of each field of [`TRACKED`] as JSON text; `None` where the task has none.
fn values(task: &Task) -> Result<[Option<String>; TRACKED.len()], Failure> {
    Ok([
        Some(json::string(&task.title)),
        task.description.as_deref().map(json::string),
        Some(task.is_completed.to_string()),
        Some(json::string(priority(task.priority))),
        task.due_date.map(json::timestamp).transpose()?,
        task.recurrence.as_ref().map(recurrence).transpose()?,
        Some(json::array(task.tags.iter().map(|tag| json::string(tag)))),
        task.reminder_offsets
            .as_ref()
            .map(|offsets| json::array(offsets.iter().map(u32::to_string))),
        task.completed_at.map(json::timestamp).transpose()?,
    ])
}

fn priority(priority: Priority) -> &'static str {
    match priority {
        Priority::High => "high",
        Priority::Medium => "medium",
        Priority::Low => "low",
    }
}

/// `{"frequency":"monthly","interval":1,"ends_on":null,"max_occurrences":null}`. The anchor is
/// bookkeeping of the series, not something the user set, and the public API does not show it.
fn recurrence(rule: &Recurrence) -> Result<Json, Failure> {
    let frequency = match rule.frequency {
        Frequency::Daily => "daily",
        Frequency::Weekly => "weekly",
        Frequency::Monthly => "monthly",
    };
    Ok(json::object([
        ("frequency", json::string(frequency)),
        ("interval", rule.interval.to_string()),
        (
            "ends_on",
            json::nullable(rule.ends_on.map(json::timestamp).transpose()?),
        ),
        (
            "max_occurrences",
            json::nullable(rule.max_occurrences.map(|n| n.to_string())),
        ),
    ]))
}
