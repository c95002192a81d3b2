//! The snake_case event schema of the existing system, which is also what taskhost publishes.
//!
//! `task-events` / `task-updates`:
//! `{"event_id","event_type":"task.created|…","event_timestamp","user_id","task":{…},"previous":{…}?}`
//! `reminders`:
//! `{"event_id","event_type":"reminder.due_soon","event_timestamp","user_id",
//!   "task":{"id","title","description","due_date","priority"},"reminder_type":"1_hour_before",
//!   "offset_minutes":60?}`
//!
//! Both may carry `"notification_method": "email|push|both"`, taskhost's extension for the
//! delivery method of a producer that has one (the Python backend): a reminder job scheduled
//! for such a producer's reminder keeps it in its payload until it fires.

use super::task_json::TaskJson;
use super::time;
use crate::domain::{
    EventId, NotificationMethod, Priority, ReminderDue, ReminderTask, TaskEvent, TaskId,
    TaskOperation, UserId,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const REMINDER_EVENT_TYPE: &str = "reminder.due_soon";

#[derive(Debug, Deserialize)]
struct TaskEventJson {
    event_id: String,
    event_type: String,
    #[serde(default, with = "time::optional")]
    event_timestamp: Option<DateTime<Utc>>,
    user_id: String,
    task: TaskJson,
    #[serde(default)]
    previous: Option<TaskJson>,
    #[serde(default)]
    notification_method: Option<String>,
}

pub fn decode_task_event(v: Value, received_at: DateTime<Utc>) -> Result<TaskEvent, String> {
    task_event_from(super::from_value(v)?, received_at)
}

/// The fast way for the common case, taskhost's own events: `payload` read straight into the
/// event's fields, without building a `Value` tree first. `None` when that does not succeed
/// (another schema, a duplicated key, anything wrong): [`decode_task_event`] through a `Value`
/// then decides, with its error messages. When this succeeds the `Value` path would have read
/// the same fields (`payload` is an object with each field once), so both agree on every payload
/// this takes.
pub fn decode_task_event_fast(
    payload: &[u8],
    received_at: DateTime<Utc>,
) -> Option<Result<TaskEvent, String>> {
    // A derived struct also accepts a JSON array (its fields in order); the `Value` path
    // takes objects only.
    if payload.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    // Text first: reading bytes, serde_json checks UTF-8 only in the strings it keeps, and an
    // ignored field's invalid bytes would pass here though the `Value` path refuses them
    // (found by the fuzz target).
    let text = std::str::from_utf8(payload).ok()?;
    // Likewise what serde_json checks only in the values it keeps, so that an ignored field
    // holding it would pass here though the `Value` path refuses it (both found by the fuzz
    // target): a lone surrogate escape, a number beyond an `f64`, nesting past its limit. Such
    // payloads (and any with a surrogate escape, an exponent or deep nesting: declining costs
    // only speed) go to the `Value` path.
    if leave_to_value_path(payload) {
        return None;
    }
    let raw: TaskEventJson = serde_json::from_str(text).ok()?;
    Some(task_event_from(raw, received_at))
}

/// Nesting the fast path takes, well inside serde_json's limit of 128 for a `Value`.
const MAX_FAST_DEPTH: usize = 64;

/// Digits in a row the fast path takes, short of the 309 an `f64` ends at.
const MAX_FAST_DIGITS: usize = 300;

/// Whether `payload` has, in a string, a `\u` escape of a surrogate (`D800`–`DFFF`: a lone one
/// is refused by the `Value` path, a pair is an emoji a Python producer's `ensure_ascii` wrote),
/// or outside strings a number with an exponent (an `e` or `E` right after a digit: `true` and
/// `false` have theirs after a letter) or a run of more than [`MAX_FAST_DIGITS`] digits — the only ways for a
/// JSON number to be beyond an `f64` (~1.8e308, 309 digits); or arrays and objects nested
/// more than [`MAX_FAST_DEPTH`] deep (serde_json's `Value` stops at 128 levels, its skipping of
/// an ignored value has no limit). One pass; memchr through the strings, which are most of a
/// payload.
fn leave_to_value_path(payload: &[u8]) -> bool {
    let (mut digits, mut depth) = (0usize, 0usize);
    let mut i = 0;
    while let Some(&b) = payload.get(i) {
        match b {
            b'[' | b'{' => {
                digits = 0;
                depth += 1;
                if depth > MAX_FAST_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => {
                digits = 0;
                depth = depth.saturating_sub(1);
            }
            b'0'..=b'9' => {
                digits += 1;
                if digits > MAX_FAST_DIGITS {
                    return true;
                }
            }
            b'e' | b'E' if digits > 0 => return true,
            b'"' => {
                digits = 0;
                i += 1;
                // To the closing quote; an escape's backslash and the byte after it together.
                loop {
                    let rest = payload.get(i..).unwrap_or_default();
                    match memchr::memchr2(b'"', b'\\', rest) {
                        Some(k) if rest[k] == b'\\' => {
                            if let [
                                b'u',
                                b'd' | b'D',
                                b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F',
                                ..,
                            ] = rest[k + 1..]
                            {
                                return true;
                            }
                            i += k + 2;
                        }
                        Some(k) => {
                            i += k;
                            break;
                        }
                        // Unterminated: serde_json refuses it either way.
                        None => return false,
                    }
                }
            }
            _ => digits = 0,
        }
        i += 1;
    }
    false
}

fn task_event_from(raw: TaskEventJson, received_at: DateTime<Utc>) -> Result<TaskEvent, String> {
    let event_id = EventId::new(raw.event_id).ok_or("event_id must not be empty")?;
    let user_id = UserId::new(raw.user_id).ok_or("user_id must not be empty")?;
    let operation = TaskOperation::parse(&raw.event_type).ok_or_else(|| {
        format!(
            "event_type `{}` is not one of task.created, task.updated, task.completed, task.deleted",
            raw.event_type
        )
    })?;
    let occurred_at = raw.event_timestamp.unwrap_or(received_at);
    let task = raw.task.into_task(&user_id, occurred_at)?;
    let previous = raw
        .previous
        .map(|p| {
            p.into_task(&user_id, occurred_at)
                .map_err(|e| format!("previous: {e}"))
        })
        .transpose()?;
    let reminder_method =
        NotificationMethod::parse_field("notification_method", raw.notification_method.as_deref())?;
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

pub fn encode_task_event(e: &TaskEvent) -> Value {
    let mut v = json!({
        "event_id": e.event_id,
        "event_type": e.operation.event_type(),
        "event_timestamp": time::format(&e.occurred_at),
        "user_id": e.user_id,
        "task": TaskJson::from(&e.task),
        "previous": e.previous.as_ref().map(TaskJson::from),
    });
    with_method(&mut v, e.reminder_method);
    v
}

/// Adds `notification_method` when there is one (taskhost's own events have none, and stay as
/// they were).
fn with_method(v: &mut Value, method: Option<NotificationMethod>) {
    if let Some(m) = method {
        v["notification_method"] = json!(m.as_str());
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ReminderTaskJson {
    id: String,
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(with = "time::required")]
    due_date: DateTime<Utc>,
    #[serde(default)]
    priority: Priority,
}

#[derive(Debug, Deserialize)]
struct ReminderJson {
    event_id: String,
    event_type: String,
    #[serde(default, with = "time::optional")]
    event_timestamp: Option<DateTime<Utc>>,
    user_id: String,
    task: ReminderTaskJson,
    #[serde(default)]
    reminder_type: Option<String>,
    #[serde(default)]
    offset_minutes: Option<u32>,
    #[serde(default)]
    notification_method: Option<String>,
}

/// `24_hours_before` → 1440, `1_hour_before` → 60, `15_minutes_before` → 15.
pub fn offset_from_reminder_type(s: &str) -> Option<u32> {
    let (n, unit) = s.strip_suffix("_before")?.split_once('_')?;
    let n: u32 = n.parse().ok()?;
    match unit {
        "hour" | "hours" => n.checked_mul(60),
        "minute" | "minutes" => Some(n),
        "day" | "days" => n.checked_mul(1440),
        _ => None,
    }
}

/// The inverse of [`offset_from_reminder_type`], in the largest whole unit.
pub fn reminder_type(offset_minutes: u32) -> String {
    match offset_minutes {
        60 => "1_hour_before".into(),
        m if m % 60 == 0 && m > 0 => format!("{}_hours_before", m / 60),
        1 => "1_minute_before".into(),
        m => format!("{m}_minutes_before"),
    }
}

pub fn decode_reminder(v: Value, received_at: DateTime<Utc>) -> Result<ReminderDue, String> {
    let raw: ReminderJson = super::from_value(v)?;
    if raw.event_type != REMINDER_EVENT_TYPE {
        return Err(format!(
            "event_type `{}` is not `{REMINDER_EVENT_TYPE}`",
            raw.event_type
        ));
    }
    let offset_minutes = match (raw.offset_minutes, raw.reminder_type.as_deref()) {
        (Some(m), _) => m,
        (None, Some(t)) => offset_from_reminder_type(t).ok_or_else(|| {
            format!("reminder_type `{t}` is not like 24_hours_before or 1_hour_before")
        })?,
        (None, None) => return Err("reminder_type is missing".into()),
    };
    Ok(ReminderDue {
        event_id: EventId::new(raw.event_id).ok_or("event_id must not be empty")?,
        occurred_at: raw.event_timestamp.unwrap_or(received_at),
        user_id: UserId::new(raw.user_id).ok_or("user_id must not be empty")?,
        task: ReminderTask {
            id: TaskId::new(raw.task.id).ok_or("task.id must not be empty")?,
            title: raw.task.title,
            description: raw.task.description,
            due_date: raw.task.due_date,
            priority: raw.task.priority,
        },
        offset_minutes,
        notification_method: NotificationMethod::parse_field(
            "notification_method",
            raw.notification_method.as_deref(),
        )?,
    })
}

pub fn encode_reminder(r: &ReminderDue) -> Value {
    let mut v = json!({
        "event_id": r.event_id,
        "event_type": REMINDER_EVENT_TYPE,
        "event_timestamp": time::format(&r.occurred_at),
        "user_id": r.user_id,
        "task": ReminderTaskJson {
            id: r.task.id.to_string(),
            title: r.task.title.clone(),
            description: r.task.description.clone(),
            due_date: r.task.due_date,
            priority: r.task.priority,
        },
        "reminder_type": reminder_type(r.offset_minutes),
        "offset_minutes": r.offset_minutes,
    });
    with_method(&mut v, r.notification_method);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminder_types_round_trip() {
        for m in [1, 15, 60, 120, 1440] {
            assert_eq!(offset_from_reminder_type(&reminder_type(m)), Some(m));
        }
        assert_eq!(reminder_type(1440), "24_hours_before");
        assert_eq!(offset_from_reminder_type("soon"), None);
    }
}
