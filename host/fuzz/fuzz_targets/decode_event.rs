//! Fuzzes the event decoding path: every payload the host receives goes through
//! `wire::decode` (both task-event schemas, and both reminder schemas) before any component
//! sees it.
//!
//! Each input is one payload, decoded as a message of every topic. Properties:
//! - decoding never panics, whatever the bytes (it answers `Ok` or a `DecodeError`);
//! - a decoded message has a non-empty event id, user id and task id, and its event id is the
//!   payload's own `event_id` / `eventId` string (nothing is invented for a message without one);
//! - `peek_event_id` (used for log lines about undecodable messages) never panics and agrees;
//! - what taskhost publishes round-trips: encoding a decoded message and decoding that again
//!   gives the same message, and encoding it again the same JSON (a withdrawn reminder, which
//!   taskhost never publishes, in the Python backend's shape it came in);
//! - a topic nobody decodes is refused, never guessed;
//! - the fast task-event decoding (no `Value` tree) agrees with the `Value` path whenever it
//!   takes a payload.

#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use taskhost_wire::domain::Message;
use taskhost_wire::wire::{self, camel_reminder, event_json};

const TOPICS: [&str; 3] = ["task-events", "task-updates", "reminders"];

fuzz_target!(|data: &[u8]| {
    // A fixed instant: the decoders use it for a missing timestamp, and a fixed one keeps a
    // crash reproducible.
    let received_at =
        DateTime::<Utc>::from_timestamp_millis(1_767_225_600_000).expect("an instant");
    let peeked = wire::peek_event_id(data);
    let json: Option<Value> = serde_json::from_slice(data).ok();

    // The fast way for taskhost's own task events (straight from the bytes) decides exactly
    // as the `Value` path whenever it takes a payload.
    if let Some(fast) = event_json::decode_task_event_fast(data, received_at) {
        let value = json.clone().expect("the fast path took a payload that is not JSON");
        assert_eq!(
            fast,
            event_json::decode_task_event(value, received_at),
            "the fast task-event decoding disagrees with the Value path"
        );
    }

    for topic in TOPICS {
        let Ok(message) = wire::decode(topic, data, received_at) else {
            continue;
        };
        let json = json
            .as_ref()
            .expect("a payload that is not JSON was decoded");
        let id = message.event_id().as_str();
        assert!(
            !id.is_empty(),
            "{topic}: decoded a message with an empty event id"
        );
        assert!(
            ["event_id", "eventId"]
                .iter()
                .any(|key| json.get(key).and_then(Value::as_str) == Some(id)),
            "{topic}: event id {id:?} is not the payload's event_id/eventId: {json}"
        );
        assert!(
            peeked.is_some(),
            "{topic}: decoded event {id:?}, but peek_event_id found no id"
        );
        assert!(
            !message.user_id().as_str().is_empty(),
            "{topic}: empty user id"
        );

        let encoded = match &message {
            Message::Task(e) => {
                assert!(
                    topic != "reminders",
                    "a reminder payload decoded as a task event"
                );
                assert!(!e.task.id.as_str().is_empty(), "{topic}: empty task id");
                event_json::encode_task_event(e)
            }
            Message::Reminder(r) => {
                assert_eq!(topic, "reminders", "a task payload decoded as a reminder");
                assert!(!r.task.id.as_str().is_empty(), "{topic}: empty task id");
                event_json::encode_reminder(r)
            }
            Message::ReminderCancel(c) => {
                assert_eq!(topic, "reminders", "a task payload decoded as a reminder");
                assert!(!c.task_id.as_str().is_empty(), "{topic}: empty task id");
                assert!(
                    c.remind_at <= c.due_at,
                    "{topic}: a reminder after its due date"
                );
                camel_reminder::encode_cancel(c)
            }
        };
        let bytes = encoded.to_string();
        let again = wire::decode(topic, bytes.as_bytes(), received_at).unwrap_or_else(|e| {
            panic!("{topic}: taskhost's own encoding of a decoded message is refused: {e}\n{bytes}")
        });
        assert_eq!(
            again, message,
            "{topic}: decode(encode(m)) != m\nencoded: {bytes}"
        );
        let re_encoded = match &again {
            Message::Task(e) => event_json::encode_task_event(e),
            Message::Reminder(r) => event_json::encode_reminder(r),
            Message::ReminderCancel(c) => camel_reminder::encode_cancel(c),
        };
        assert_eq!(re_encoded, encoded, "{topic}: encoding is not stable");
    }

    assert!(
        wire::decode("no-such-topic", data, received_at).is_err(),
        "a message of an unknown topic was decoded"
    );
});
