//! The tracked fields of a task as JSON values, and which of them differ between two states.
//!
//! Field names and value shapes are those of the public JSON API (snake_case), so an audit
//! line reads like the API's own representation of the task.

use crate::json::{self, Json};
use crate::todo::events::types::{Failure, FieldChange, Frequency, Priority, Recurrence, Task};

/// A field the audit trail tracks: its name, its value as JSON text (`None` where the task has
/// none), and whether two states hold the same value.
///
/// `same` compares the typed values, so that an update formats only the fields it changed —
/// formatting every field of both states (two RFC 3339 dates, a recurrence object, …) was most
/// of this component's work per message. It must never call two values the same when their
/// JSON differs; the reverse is allowed (the recurrence's anchor is not shown), because
/// `between` compares the JSON of the fields it does format.
struct Field {
    name: &'static str,
    value: fn(&Task) -> Result<Option<Json>, Failure>,
    same: fn(&Task, &Task) -> bool,
}

/// The fields the audit trail tracks, in the order changes are listed.
const TRACKED: [Field; 9] = [
    Field {
        name: "title",
        value: |t| Ok(Some(json::string(&t.title))),
        same: |a, b| a.title == b.title,
    },
    Field {
        name: "description",
        value: |t| Ok(t.description.as_deref().map(json::string)),
        same: |a, b| a.description == b.description,
    },
    Field {
        name: "is_completed",
        value: |t| Ok(Some(t.is_completed.to_string())),
        same: |a, b| a.is_completed == b.is_completed,
    },
    Field {
        name: "priority",
        value: |t| Ok(Some(json::string(priority(t.priority)))),
        same: |a, b| a.priority == b.priority,
    },
    Field {
        name: "due_date",
        value: |t| t.due_date.map(json::timestamp).transpose(),
        same: |a, b| a.due_date == b.due_date,
    },
    Field {
        name: "recurrence",
        value: |t| t.recurrence.as_ref().map(recurrence).transpose(),
        same: |a, b| match (&a.recurrence, &b.recurrence) {
            (Some(a), Some(b)) => {
                a.frequency == b.frequency
                    && a.interval == b.interval
                    && a.ends_on == b.ends_on
                    && a.max_occurrences == b.max_occurrences
            }
            (a, b) => a.is_none() && b.is_none(),
        },
    },
    Field {
        name: "tags",
        value: |t| {
            Ok(Some(json::array(
                t.tags.iter().map(|tag| json::string(tag)),
            )))
        },
        same: |a, b| a.tags == b.tags,
    },
    Field {
        name: "reminder_offsets_minutes",
        value: |t| {
            Ok(t.reminder_offsets
                .as_ref()
                .map(|offsets| json::array(offsets.iter().map(u32::to_string))))
        },
        same: |a, b| a.reminder_offsets == b.reminder_offsets,
    },
    Field {
        name: "completed_at",
        value: |t| t.completed_at.map(json::timestamp).transpose(),
        same: |a, b| a.completed_at == b.completed_at,
    },
];

/// The tracked fields whose values differ from `previous` to `current`. Without a previous
/// state, every field that has a value, with no old value.
pub fn between(previous: Option<&Task>, current: &Task) -> Result<Vec<FieldChange>, Failure> {
    let mut changes = Vec::new();
    for field in &TRACKED {
        if previous.is_some_and(|previous| (field.same)(previous, current)) {
            continue;
        }
        let old = match previous {
            Some(task) => (field.value)(task)?,
            None => None,
        };
        let new = (field.value)(current)?;
        if old != new {
            changes.push(FieldChange {
                field: field.name.into(),
                old,
                new,
            });
        }
    }
    Ok(changes)
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
