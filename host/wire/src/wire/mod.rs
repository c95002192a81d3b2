//! JSON on the wire ⇄ domain types. Decoding accepts both event schemas the system has seen
//! (snake_case, and the Python producer's camelCase, for task events and reminders) and names
//! what was wrong when it fails.

pub mod camel;
pub mod camel_reminder;
pub mod event_json;
pub mod task_json;
pub mod time;

use crate::domain::{Message, TaskEvent, topics};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a message could not be decoded. Permanent: the message goes to the dead-letter path
/// with this text as the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {topic} message: {reason}")]
pub struct DecodeError {
    pub topic: String,
    pub reason: String,
}

/// Deserializes with the JSON path of the failing field in the message (`task.priority: …`).
pub(crate) fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

/// The event id of a payload without decoding the rest (`event_id`, or the Python producer's
/// `eventId`), for log lines about a message outside the pipeline (retries, dead letters).
///
/// Read through a `Value`, as [`decode`] reads it, so the two agree on every payload (found by
/// the fuzz target: with a duplicated key, which `Value` resolves to the last one, a derived
/// struct refused the payload and the id of a decodable event was not found).
pub fn peek_event_id(payload: &[u8]) -> Option<String> {
    peek_str(payload, &["event_id", "eventId"])
}

/// The user a payload belongs to (`user_id`, or the Python producer's `userId`) without
/// decoding the rest: a bulk delivery runs different users' entries side by side and each
/// user's in order, and needs the user before the pipeline decodes the message.
pub fn peek_user_id(payload: &[u8]) -> Option<String> {
    peek_str(payload, &["user_id", "userId"]).filter(|u| !u.is_empty())
}

fn peek_str(payload: &[u8], keys: &[&str]) -> Option<String> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    keys.iter()
        .find_map(|key| v.get(key).and_then(Value::as_str))
        .map(str::to_owned)
}

/// Decodes one message of `topic` from its JSON payload.
pub fn decode(
    topic: &str,
    payload: &[u8],
    received_at: DateTime<Utc>,
) -> Result<Message, DecodeError> {
    let err = |reason: String| DecodeError {
        topic: topic.to_string(),
        reason,
    };
    // taskhost's own task events (snake_case) straight from the bytes: no `Value` tree.
    if matches!(topic, topics::TASK_EVENTS | topics::TASK_UPDATES)
        && let Some(decoded) = event_json::decode_task_event_fast(payload, received_at)
    {
        return decoded
            .map(|e| Message::Task(without_empty_previous(e)))
            .map_err(err);
    }
    let v: Value =
        serde_json::from_slice(payload).map_err(|e| err(format!("invalid JSON: {e}")))?;
    if !v.is_object() {
        return Err(err("expected a JSON object".into()));
    }
    match topic {
        topics::TASK_EVENTS | topics::TASK_UPDATES => {
            if v.get("eventType").is_some() && v.get("event_type").is_none() {
                camel::decode_task_event(v, received_at)
            } else {
                event_json::decode_task_event(v, received_at)
            }
            .map(|e| Message::Task(without_empty_previous(e)))
        }
        topics::REMINDERS if camel_reminder::is_camel(&v) => camel_reminder::decode(v, received_at),
        topics::REMINDERS => event_json::decode_reminder(v, received_at).map(Message::Reminder),
        other => Err(format!(
            "no decoder for topic `{other}` (known: {})",
            topics::ALL.join(", ")
        )),
    }
    .map_err(err)
}

/// A previous state equal to the new one says nothing about what changed: it is treated as
/// absent, so that consumers do not take an edit for a no-op (the Python backend sends such a
/// `previousTaskData` with every update; see `camel.rs`). The host may then supply the state it
/// last recorded for the task.
fn without_empty_previous(mut e: TaskEvent) -> TaskEvent {
    if e.previous.as_ref() == Some(&e.task) {
        e.previous = None;
    }
    e
}

#[cfg(test)]
mod tests;
