//! The events the existing Python backend really publishes (captured from its own code, see
//! `tests/fixtures/python-backend/README.md`) decode, each to what it means.

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use taskhost_wire::domain::{
    Frequency, Message, NotificationMethod, Priority, ReminderWithdrawn, TaskOperation,
};
use taskhost_wire::wire::{self, time};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/python-backend");

/// (topic, body) of each request in a fixture file.
fn requests(file: &str) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(format!("{DIR}/{file}"))
        .unwrap_or_else(|e| panic!("read {file}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let path = r["path"].as_str().unwrap();
            let topic = path
                .strip_prefix("/v1.0/publish/kafka-pubsub/")
                .unwrap_or_else(|| panic!("{path}: not published to kafka-pubsub"));
            assert_eq!(r["content_type"], "application/json");
            (topic.to_owned(), r["body"].clone())
        })
        .collect()
}

fn decode(topic: &str, body: &Value) -> Message {
    let received = time::parse("2026-01-01T00:00:00Z").unwrap();
    wire::decode(topic, body.to_string().as_bytes(), received)
        .unwrap_or_else(|e| panic!("{topic}: {e}\n{body}"))
}

/// A naive ISO time of the fixture, read as UTC.
fn utc(body: &Value, field: &str) -> DateTime<Utc> {
    let s = body[field].as_str().unwrap();
    assert!(
        !s.ends_with('Z') && !s.contains('+'),
        "{field} {s} is naive"
    );
    time::parse(&format!("{s}Z")).unwrap()
}

#[test]
fn the_session_decodes_operation_by_operation_on_the_backends_topics() {
    let all = requests("requests.json");
    let seen: Vec<(String, String)> = all
        .iter()
        .map(|(topic, body)| {
            let what = body["eventType"]
                .as_str()
                .or(body["status"].as_str())
                .unwrap();
            (topic.clone(), what.to_owned())
        })
        .collect();
    let want = [
        ("task-events", "created"),
        ("reminders", "scheduled"),
        ("task-updates", "updated"),
        ("reminders", "scheduled"),
        ("task-events", "completed"),
        ("task-events", "created"),
        ("reminders", "scheduled"),
        ("task-events", "deleted"),
    ];
    assert_eq!(
        seen,
        want.map(|(t, w)| (t.to_owned(), w.to_owned())).to_vec()
    );
    for (topic, body) in &all {
        let m = decode(topic, body);
        assert_eq!(m.event_id().as_str(), body["eventId"].as_str().unwrap());
        assert_eq!(m.user_id().as_str(), body["userId"].as_str().unwrap());
    }
}

#[test]
fn task_events_carry_the_reminder_config_and_times_as_utc() {
    let all = requests("requests.json");
    let (topic, created) = &all[0];
    let Message::Task(e) = decode(topic, created) else {
        panic!("not a task event")
    };
    assert_eq!(e.operation, TaskOperation::Created);
    assert_eq!(e.task.id.as_str(), created["taskId"].as_str().unwrap());
    assert_eq!(e.task.title, "Pay rent");
    assert_eq!(e.task.priority, Priority::High);
    assert_eq!(e.task.tags, vec!["home".to_owned()]);
    assert_eq!(e.task.due_date, Some(utc(&created["taskData"], "dueDate")));
    assert_eq!(e.task.created_at, utc(&created["taskData"], "createdAt"));
    // The envelope's timestamp is utcnow().isoformat() + "Z".
    assert_eq!(
        time::format(&e.occurred_at),
        time::format(&time::parse(created["timestamp"].as_str().unwrap()).unwrap())
    );
    assert_eq!(
        e.task.reminder_offsets_minutes,
        Some(vec![15]),
        "reminderConfig.notifyBefore"
    );
    assert_eq!(e.reminder_method, Some(NotificationMethod::Push));
    assert_eq!(
        e.task
            .recurrence
            .as_ref()
            .map(|r| (r.frequency, r.interval)),
        Some((Frequency::Monthly, 1))
    );
    assert_eq!(e.previous, None);
}

#[test]
fn the_update_on_task_updates_comes_without_a_usable_previous_state() {
    let all = requests("requests.json");
    let (topic, updated) = &all[2];
    assert_eq!(topic, "task-updates");
    assert_eq!(
        updated["previousTaskData"], updated["taskData"],
        "the backend builds previousTaskData after the update"
    );
    let Message::Task(e) = decode(topic, updated) else {
        panic!("not a task event")
    };
    assert_eq!(e.operation, TaskOperation::Updated);
    assert_eq!(
        (e.task.title.as_str(), e.task.priority),
        ("Pay the rent", Priority::Medium)
    );
    assert_eq!(
        e.previous, None,
        "a previous state equal to the new one is no previous state"
    );
}

#[test]
fn completion_and_deletion_decode() {
    let all = requests("requests.json");
    let Message::Task(done) = decode(&all[4].0, &all[4].1) else {
        panic!()
    };
    assert_eq!(done.operation, TaskOperation::Completed);
    assert!(done.task.is_completed);
    let Message::Task(gone) = decode(&all[7].0, &all[7].1) else {
        panic!()
    };
    assert_eq!(gone.operation, TaskOperation::Deleted);
    assert_eq!(gone.reminder_method, Some(NotificationMethod::Both));
}

#[test]
fn scheduled_reminders_are_reminders_for_remind_at() {
    let all = requests("requests.json");
    let reminders: Vec<&Value> = all
        .iter()
        .filter(|(t, _)| t == "reminders")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(reminders.len(), 3);
    for body in reminders {
        let Message::Reminder(r) = decode("reminders", body) else {
            panic!("not a reminder: {body}")
        };
        assert_eq!(r.occurred_at, utc(body, "remindAt"));
        assert_eq!(r.task.due_date, utc(body, "dueAt"));
        assert_eq!(
            r.task.due_date - r.occurred_at,
            Duration::minutes(15),
            "{body}"
        );
        assert_eq!(r.offset_minutes, 15);
        assert_eq!(r.task.id.as_str(), body["taskId"].as_str().unwrap());
        assert_eq!(r.task.title, body["title"].as_str().unwrap());
        let method = NotificationMethod::parse(body["notificationMethod"].as_str().unwrap());
        assert_eq!(r.notification_method, method);
    }
}

#[test]
fn withdrawn_reminders_are_cancellations_of_that_reminder() {
    for (topic, body) in requests("withdrawn-reminders.json") {
        let Message::ReminderCancel(c) = decode(&topic, &body) else {
            panic!("not a cancellation: {body}")
        };
        assert_eq!(c.remind_at, utc(&body, "remindAt"));
        assert_eq!(c.task_id.as_str(), body["taskId"].as_str().unwrap());
        let want = match body["status"].as_str().unwrap() {
            "cancelled" => ReminderWithdrawn::Cancelled,
            "sent" => ReminderWithdrawn::Sent,
            other => panic!("{other}"),
        };
        assert_eq!(c.reason, want);
    }
}

#[test]
fn the_fuzz_seeds_hold_every_body() {
    let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/decode_event");
    let mut bodies: Vec<Value> = requests("requests.json")
        .into_iter()
        .chain(requests("withdrawn-reminders.json"))
        .map(|(_, b)| b)
        .collect();
    let mut seeded = Vec::new();
    for entry in std::fs::read_dir(seeds).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("python_backend_")
        {
            let text = std::fs::read_to_string(&path).unwrap();
            seeded.push(serde_json::from_str::<Value>(&text).unwrap());
        }
    }
    let key = |v: &Value| v.to_string();
    bodies.sort_by_key(key);
    seeded.sort_by_key(key);
    assert_eq!(
        seeded, bodies,
        "host/fuzz/seeds/decode_event/python_backend_*.json are the fixture bodies"
    );
}
