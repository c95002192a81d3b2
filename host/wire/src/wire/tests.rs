use super::*;
use crate::domain::{Frequency, Message, Priority, TaskOperation};
use chrono::Utc;

fn now() -> DateTime<Utc> {
    time::parse("2026-01-01T00:00:00Z").unwrap()
}

fn decode_ok(topic: &str, v: serde_json::Value) -> Message {
    decode(topic, v.to_string().as_bytes(), now()).unwrap()
}

fn decode_err(topic: &str, v: &str) -> String {
    decode(topic, v.as_bytes(), now()).unwrap_err().to_string()
}

#[test]
fn decodes_the_snake_case_schema() {
    let m = decode_ok(
        "task-events",
        serde_json::json!({
            "event_id": "e1", "event_type": "task.completed", "event_timestamp": "2026-01-02T10:00:00Z",
            "user_id": "u1",
            "task": {"id": "t1", "title": "Pay rent", "description": null, "is_completed": true,
                     "priority": "high", "due_date": "2026-01-31T09:00:00Z", "is_recurring": true,
                     "recurrence_frequency": "monthly", "tags": ["home"],
                     "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T10:00:00Z"}
        }),
    );
    let Message::Task(e) = m else {
        panic!("not a task event")
    };
    assert_eq!(e.operation, TaskOperation::Completed);
    assert_eq!(e.task.priority, Priority::High);
    let r = e.task.recurrence.unwrap();
    assert_eq!((r.frequency, r.interval), (Frequency::Monthly, 1));
    assert_eq!(e.task.user_id.as_str(), "u1");
}

#[test]
fn decodes_the_camel_case_producer() {
    let m = decode_ok(
        "task-events",
        serde_json::json!({
            "eventId": "e2", "timestamp": "2026-01-02T10:00:00", "eventType": "completed",
            "taskId": "t2", "userId": "u2",
            "taskData": {"title": "Water plants", "priority": "low", "dueDate": "2026-01-03T08:00:00",
                         "recurrenceRule": {"enabled": true, "pattern": "interval", "intervalDays": 3,
                                            "occurrencesCount": 5},
                         "reminderConfig": {"enabled": true, "minutesBefore": 30}},
            "previousTaskData": {"title": "Water plants", "completed": false}
        }),
    );
    let Message::Task(e) = m else {
        panic!("not a task event")
    };
    assert_eq!(e.task.id.as_str(), "t2");
    assert!(
        e.task.is_completed,
        "a completed event marks the task completed"
    );
    let r = e.task.recurrence.unwrap();
    assert_eq!(
        (r.frequency, r.interval, r.max_occurrences),
        (Frequency::Daily, 3, Some(5))
    );
    assert_eq!(e.task.reminder_offsets_minutes, Some(vec![30]));
    assert!(!e.previous.unwrap().is_completed);
}

#[test]
fn decodes_reminders_by_type_name() {
    let m = decode_ok(
        "reminders",
        serde_json::json!({
            "event_id": "r1", "event_type": "reminder.due_soon", "event_timestamp": "2026-01-30T09:00:00Z",
            "user_id": "u1", "task": {"id": "t1", "title": "Pay rent", "due_date": "2026-01-31T09:00:00Z", "priority": "high"},
            "reminder_type": "24_hours_before"
        }),
    );
    let Message::Reminder(r) = m else {
        panic!("not a reminder")
    };
    assert_eq!(r.offset_minutes, 1440);
}

#[test]
fn round_trips_what_taskhost_publishes() {
    let Message::Task(e) = decode_ok(
        "task-events",
        serde_json::json!({"event_id": "e", "event_type": "task.created", "user_id": "u",
            "task": {"id": "t", "title": "x", "is_recurring": true, "recurrence_frequency": "weekly",
                     "recurrence_interval": 2, "reminder_offsets_minutes": [5]}}),
    ) else {
        panic!()
    };
    let again = decode(
        "task-events",
        event_json::encode_task_event(&e).to_string().as_bytes(),
        now(),
    )
    .unwrap();
    assert_eq!(again, Message::Task(e));
}

#[test]
fn errors_name_what_was_wrong() {
    assert!(decode_err("task-events", "{").contains("invalid JSON"));
    assert!(decode_err("task-events", "[]").contains("expected a JSON object"));
    let e = decode_err(
        "task-events",
        r#"{"event_id":"e","event_type":"task.created","user_id":"u","task":{"id":"t","title":"x","priority":"urgent"}}"#,
    );
    assert!(e.contains("task.priority") && e.contains("urgent"), "{e}");
    let e = decode_err(
        "task-events",
        r#"{"event_id":"e","event_type":"task.exploded","user_id":"u","task":{"id":"t","title":"x"}}"#,
    );
    assert!(e.contains("task.exploded"), "{e}");
    let e = decode_err(
        "task-events",
        r#"{"event_id":"e","event_type":"task.created","user_id":"u","task":{"id":"t","title":"x","due_date":"tomorrow"}}"#,
    );
    assert!(e.contains("due_date") && e.contains("tomorrow"), "{e}");
    let e = decode_err(
        "task-events",
        r#"{"event_id":"e","event_type":"task.created","user_id":"u","task":{"id":"t","title":"x","is_recurring":true}}"#,
    );
    assert!(e.contains("recurrence_frequency"), "{e}");
    assert!(decode_err("nope", "{}").contains("no decoder for topic `nope`"));
}

#[test]
fn peeks_the_event_id_of_either_schema() {
    assert_eq!(
        super::peek_event_id(br#"{"event_id":"e1","task":{}}"#).as_deref(),
        Some("e1")
    );
    assert_eq!(
        super::peek_event_id(br#"{"eventId":"e2"}"#).as_deref(),
        Some("e2")
    );
    assert_eq!(super::peek_event_id(b"not json"), None);
}

#[test]
fn peek_and_decode_agree_on_duplicated_keys() {
    // Found by the fuzz target: the last of duplicated keys wins in both.
    let payload = br#"{"eventId":"e3","eventType":"updated","taskId":"t4","eventId":"e4",
        "userId":"u3","taskData":{"title":"Standup"}}"#;
    let m = decode("task-events", payload, now()).unwrap();
    assert_eq!(m.event_id().as_str(), "e4");
    assert_eq!(super::peek_event_id(payload).as_deref(), Some("e4"));
}

#[test]
fn camel_case_refuses_a_series_of_zero_occurrences() {
    // Found by the fuzz target (host/fuzz): the camelCase decoder took `occurrencesCount: 0`,
    // which the snake_case schema (and so taskhost's own re-encoding) refuses.
    let e = decode_err(
        "task-events",
        r#"{"eventId":"e2","eventType":"completed","taskId":"t2","userId":"u2",
            "taskData":{"title":"Water plants","recurrenceRule":{"enabled":true,"pattern":"interval",
            "intervalDays":3,"occurrencesCount":0}}}"#,
    );
    assert!(e.contains("occurrencesCount must be at least 1"), "{e}");
}

#[test]
fn peek_user_id_reads_either_spelling_and_ignores_empty_ids() {
    assert_eq!(
        super::peek_user_id(br#"{"event_id":"e1","user_id":"u1"}"#).as_deref(),
        Some("u1")
    );
    assert_eq!(
        super::peek_user_id(br#"{"userId":"u2"}"#).as_deref(),
        Some("u2")
    );
    assert_eq!(super::peek_user_id(br#"{"user_id":""}"#), None);
    assert_eq!(super::peek_user_id(b"[1]"), None);
}

fn camel_task(reminder_config: serde_json::Value) -> crate::domain::TaskEvent {
    let Message::Task(e) = decode_ok(
        "task-events",
        serde_json::json!({"eventId": "e", "eventType": "created", "taskId": "t", "userId": "u",
            "taskData": {"title": "x", "dueDate": "2026-02-01T09:00:00",
                         "reminderConfig": reminder_config}}),
    ) else {
        panic!("not a task event")
    };
    e
}

#[test]
fn camel_reminder_config_reads_the_python_backends_notify_before_and_method() {
    let e = camel_task(serde_json::json!({"enabled": true, "notifyBefore": 30, "method": "email"}));
    assert_eq!(e.task.reminder_offsets_minutes, Some(vec![30]));
    assert_eq!(
        e.reminder_method,
        Some(crate::domain::NotificationMethod::Email)
    );
    // That backend reminds 15 minutes before when notifyBefore is not set.
    let e = camel_task(serde_json::json!({"enabled": true}));
    assert_eq!(e.task.reminder_offsets_minutes, Some(vec![15]));
    assert_eq!(e.reminder_method, None);
    // Its web client's default: disabled.
    let e = camel_task(serde_json::json!({"enabled": false, "notifyBefore": 15, "method": "push"}));
    assert_eq!(e.task.reminder_offsets_minutes, Some(vec![]));
    let e = decode_err(
        "task-events",
        r#"{"eventId":"e","eventType":"created","taskId":"t","userId":"u",
            "taskData":{"title":"x","reminderConfig":{"enabled":true,"method":"pigeon"}}}"#,
    );
    assert!(e.contains("taskData.reminderConfig.method `pigeon`"), "{e}");
}

#[test]
fn a_previous_state_equal_to_the_new_one_is_no_previous_state() {
    let task = serde_json::json!({"title": "Standup", "priority": "low",
                                  "updatedAt": "2026-03-01T08:00:00"});
    let Message::Task(e) = decode_ok(
        "task-updates",
        serde_json::json!({"eventId": "e", "eventType": "updated", "taskId": "t", "userId": "u",
            "taskData": task, "previousTaskData": task}),
    ) else {
        panic!()
    };
    assert_eq!(e.previous, None);
    let mut before = task.clone();
    before["priority"] = serde_json::json!("high");
    let Message::Task(e) = decode_ok(
        "task-updates",
        serde_json::json!({"eventId": "e", "eventType": "updated", "taskId": "t", "userId": "u",
            "taskData": task, "previousTaskData": before}),
    ) else {
        panic!()
    };
    assert_eq!(e.previous.map(|p| p.priority), Some(Priority::High));
}

#[test]
fn the_delivery_method_round_trips_through_taskhosts_encoding() {
    let e = camel_task(serde_json::json!({"enabled": true, "notifyBefore": 5, "method": "both"}));
    let encoded = event_json::encode_task_event(&e);
    assert_eq!(encoded["notification_method"], "both");
    let again = decode("task-events", encoded.to_string().as_bytes(), now()).unwrap();
    assert_eq!(again, Message::Task(e));

    let Message::Reminder(r) = decode_ok(
        "reminders",
        serde_json::json!({"eventId": "r", "taskId": "t", "title": "x", "userId": "u",
            "dueAt": "2026-02-01T09:00:00", "remindAt": "2026-02-01T08:55:00",
            "notificationMethod": "push", "status": "scheduled"}),
    ) else {
        panic!()
    };
    let encoded = event_json::encode_reminder(&r);
    assert_eq!(encoded["notification_method"], "push");
    assert_eq!(encoded["offset_minutes"], 5);
    let again = decode("reminders", encoded.to_string().as_bytes(), now()).unwrap();
    assert_eq!(again, Message::Reminder(r));
}

#[test]
fn taskhosts_own_events_carry_no_delivery_method() {
    let Message::Task(e) = decode_ok(
        "task-events",
        serde_json::json!({"event_id": "e", "event_type": "task.created", "user_id": "u",
            "task": {"id": "t", "title": "x"}}),
    ) else {
        panic!()
    };
    assert_eq!(e.reminder_method, None);
    assert!(
        event_json::encode_task_event(&e)
            .get("notification_method")
            .is_none()
    );
}

#[test]
fn the_fast_task_event_path_leaves_what_it_cannot_read_to_the_value_path() {
    let event = r#"{"event_id": "e1", "event_type": "task.created", "user_id": "u1",
        "task": {"id": "t1", "title": "A", "is_completed": false, "priority": "low",
                 "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}}"#;
    let fast = event_json::decode_task_event_fast(event.as_bytes(), now()).expect("taken");
    let slow = event_json::decode_task_event(serde_json::from_str(event).unwrap(), now());
    assert_eq!(fast, slow);
    // A duplicated key: the `Value` path takes the last one; the fast path declines.
    let twice = event.replacen(
        r#""user_id": "u1""#,
        r#""user_id": "u0", "user_id": "u1""#,
        1,
    );
    assert!(event_json::decode_task_event_fast(twice.as_bytes(), now()).is_none());
    let Message::Task(e) = decode("task-events", twice.as_bytes(), now()).unwrap() else {
        panic!("not a task event")
    };
    assert_eq!(e.user_id.as_str(), "u1");
    // The fields in an array: a derived struct would read them; the host takes objects only.
    let array = r#"["e1", "task.created", null, "u1", {"id": "t1"}]"#;
    assert!(event_json::decode_task_event_fast(array.as_bytes(), now()).is_none());
    assert!(decode_err("task-events", array).contains("expected a JSON object"));
    // The Python producer's camelCase: declined, decoded by its own reader.
    let camel = r#"{"eventId": "e1", "eventType": "created", "userId": "u1", "taskData": {}}"#;
    assert!(event_json::decode_task_event_fast(camel.as_bytes(), now()).is_none());
}

#[test]
fn invalid_utf8_in_an_ignored_field_is_refused_both_ways() {
    let mut payload = br#"{"event_id": "e1", "event_type": "task.created", "user_id": "u1",
        "task": {"id": "t1", "title": "A", "is_completed": false, "priority": "low",
                 "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"},
        "extra": "x"}"#
        .to_vec();
    let at = payload.iter().rposition(|b| *b == b'x').unwrap();
    payload[at] = 0xbe;
    assert!(event_json::decode_task_event_fast(&payload, now()).is_none());
    let e = decode("task-events", &payload, now())
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid JSON"), "{e}");
}

#[test]
fn a_lone_surrogate_in_an_ignored_field_is_refused_both_ways() {
    let event = r#"{"event_id": "e1", "event_type": "task.created", "user_id": "u1",
        "task": {"id": "t1", "title": "A", "is_completed": false, "priority": "low",
                 "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"},
        "extra": "\udcAe"}"#;
    assert!(event_json::decode_task_event_fast(event.as_bytes(), now()).is_none());
    let e = decode("task-events", event.as_bytes(), now())
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid JSON"), "{e}");
    // A surrogate pair (an escaped emoji) is read by the `Value` path, as before.
    let emoji = event.replace("\\udcAe", "\\ud83d\\ude00");
    assert!(event_json::decode_task_event_fast(emoji.as_bytes(), now()).is_none());
    assert!(decode("task-events", emoji.as_bytes(), now()).is_ok());
}

/// A minimal `task.created` whose task has `id` and `title`, with `extra` (JSON) as a field
/// nothing reads.
fn event_with(id: &str, title: &str, extra: &str) -> String {
    format!(
        r#"{{"event_id": "e1", "event_type": "task.created", "user_id": "u1",
        "task": {{"id": "{id}", "title": "{title}", "is_completed": false, "priority": "low",
                 "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}},
        "extra": {extra}}}"#
    )
}

#[test]
fn a_number_beyond_an_f64_in_an_ignored_field_is_refused_both_ways() {
    let with = |extra: &str| event_with("1e5", "3E8 true", &format!("[{extra}, 60]"));
    // Digits and `e` inside strings, `true`/`false` and ordinary numbers: the fast path takes it.
    assert!(event_json::decode_task_event_fast(with("-12.5").as_bytes(), now()).is_some());
    for huge in ["1e440".to_string(), "-2.5E+400".into(), "9".repeat(400)] {
        let payload = with(&huge);
        assert!(
            event_json::decode_task_event_fast(payload.as_bytes(), now()).is_none(),
            "{huge}"
        );
        let e = decode("task-events", payload.as_bytes(), now())
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid JSON"), "{huge}: {e}");
    }
    // An exponent within range is read by the `Value` path, as before.
    let payload = with("1.5e3");
    assert!(event_json::decode_task_event_fast(payload.as_bytes(), now()).is_none());
    assert!(decode("task-events", payload.as_bytes(), now()).is_ok());
}

#[test]
fn an_ignored_field_nested_past_serde_jsons_limit_is_refused_both_ways() {
    let event = |depth: usize| {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        event_with("t1", "[[{", &nested)
    };
    // Brackets in strings do not count; a shallow ignored value takes the fast path.
    assert!(event_json::decode_task_event_fast(event(3).as_bytes(), now()).is_some());
    // serde_json's `Value` stops at 128 levels; it skips an ignored value without a limit.
    let deep = event(127);
    assert!(event_json::decode_task_event_fast(deep.as_bytes(), now()).is_none());
    let e = decode("task-events", deep.as_bytes(), now())
        .unwrap_err()
        .to_string();
    assert!(e.contains("recursion limit"), "{e}");
}
