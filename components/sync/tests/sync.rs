//! The sync component, loaded from its .wasm with wasmtime alone.

use testkit::types::*;
use testkit::{Consumer, USER, event, reminder_task, task, ts};

fn component() -> Consumer {
    Consumer::load("sync")
}

const NOW: &str = "2030-01-01T00:00:00Z";

fn rent() -> Task {
    Task {
        due_date: Some(ts("2026-02-01T09:00:00Z")),
        updated_at: ts("2026-01-20T10:00:00Z"),
        ..task("t1", "Pay rent")
    }
}

fn broadcast(topic: &str, event: TaskEvent) -> SyncMessage {
    match component()
        .handle(topic, &event.into(), ts(NOW))
        .unwrap()
        .as_slice()
    {
        [Effect::Broadcast(message)] => message.clone(),
        other => panic!("expected one broadcast, got {other:?}"),
    }
}

#[test]
fn describes_itself() {
    let manifest = component().describe();
    assert_eq!(manifest.name, "sync");
    assert_eq!(manifest.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest.topics, ["task-events", "task-updates"]);
}

#[test]
fn every_change_is_pushed_with_the_new_state() {
    for operation in [
        TaskOperation::Created,
        TaskOperation::Updated,
        TaskOperation::Completed,
    ] {
        let message = broadcast("task-events", event(operation, rent()));
        assert_eq!(
            message,
            SyncMessage {
                user_id: USER.into(),
                operation,
                task_id: "t1".into(),
                task: Some(rent()),
                at: ts("2026-01-20T10:00:00Z"),
            }
        );
    }
}

#[test]
fn a_deletion_is_pushed_without_the_task() {
    let message = broadcast("task-events", event(TaskOperation::Deleted, rent()));
    assert_eq!(
        (message.operation, message.task_id.as_str(), message.task),
        (TaskOperation::Deleted, "t1", None)
    );
}

#[test]
fn task_updates_are_pushed_too() {
    let updated = TaskEvent {
        user_id: "user-2".into(),
        ..event(TaskOperation::Updated, rent())
    };
    let message = broadcast("task-updates", updated);
    assert_eq!(
        (message.user_id.as_str(), message.task),
        ("user-2", Some(rent()))
    );
}

#[test]
fn reminders_and_other_topics_are_ignored() {
    let reminder = ReminderDue {
        event_id: "reminder:t1:60:0".into(),
        occurred_at: 0,
        user_id: USER.into(),
        task: reminder_task(&rent()),
        offset_minutes: 60,
    };
    assert_eq!(
        component().handle("reminders", &reminder.clone().into(), ts(NOW)),
        Ok(vec![])
    );
    assert_eq!(
        component().handle("task-events", &reminder.into(), ts(NOW)),
        Ok(vec![])
    );
    let created = event(TaskOperation::Created, rent());
    assert_eq!(
        component().handle("reminders", &created.into(), ts(NOW)),
        Ok(vec![])
    );
}

#[test]
fn the_same_input_gives_the_same_message() {
    let event = event(TaskOperation::Updated, rent());
    let first = component().handle("task-events", &event.clone().into(), ts(NOW));
    assert_eq!(
        component().handle("task-events", &event.into(), ts("2031-06-01T00:00:00Z")),
        first
    );
}
