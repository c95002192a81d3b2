//! The audit component, loaded from its .wasm with wasmtime alone.

use testkit::types::*;
use testkit::{Consumer, USER, event, recurrence, task, ts};

fn component() -> Consumer {
    Consumer::load("audit")
}

/// The host's clock; an audit entry is dated by its event instead.
const NOW: &str = "2030-01-01T00:00:00Z";

fn entry(event: TaskEvent) -> AuditEntry {
    match component()
        .handle("task-events", &event.into(), ts(NOW))
        .unwrap()
        .as_slice()
    {
        [Effect::AppendAudit(entry)] => entry.clone(),
        other => panic!("expected one append-audit, got {other:?}"),
    }
}

/// Changes as `(field, old, new)` for compact assertions.
fn changes(entry: &AuditEntry) -> Vec<(&str, Option<&str>, Option<&str>)> {
    entry
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c.old.as_deref(), c.new.as_deref()))
        .collect()
}

fn rent() -> Task {
    Task {
        due_date: Some(ts("2026-02-01T09:00:00Z")),
        ..task("t1", "Pay rent")
    }
}

fn updated(previous: Task, current: Task) -> TaskEvent {
    TaskEvent {
        previous: Some(previous),
        ..event(TaskOperation::Updated, current)
    }
}

#[test]
fn describes_itself() {
    let manifest = component().describe();
    assert_eq!(manifest.name, "audit");
    assert_eq!(manifest.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest.topics, ["task-events", "task-updates"]);
}

#[test]
fn a_creation_records_who_what_when_and_every_field_set() {
    let created = TaskEvent {
        occurred_at: ts("2026-01-20T10:00:00Z"),
        ..event(TaskOperation::Created, rent())
    };
    let entry = entry(created.clone());
    assert_eq!(entry.event_id, created.event_id);
    assert_eq!(entry.task_id, "t1");
    assert_eq!(entry.actor, USER);
    assert_eq!(entry.operation, TaskOperation::Created);
    assert_eq!(entry.at, ts("2026-01-20T10:00:00Z"));
    assert_eq!(entry.previous, None);
    assert_eq!(entry.current, Some(rent()));
    assert_eq!(
        changes(&entry),
        [
            ("title", None, Some(r#""Pay rent""#)),
            ("is_completed", None, Some("false")),
            ("priority", None, Some(r#""medium""#)),
            ("due_date", None, Some(r#""2026-02-01T09:00:00Z""#)),
            ("tags", None, Some("[]")),
        ]
    );
}

#[test]
fn every_tracked_field_has_its_json_shape() {
    let full = Task {
        description: Some("flat 4".into()),
        is_completed: true,
        priority: Priority::High,
        due_date: Some(ts("2026-02-01T09:00:00.250Z")),
        recurrence: Some(Recurrence {
            ends_on: Some(ts("2026-12-31T00:00:00Z")),
            max_occurrences: Some(12),
            anchor: Some(ts("2026-01-01T09:00:00Z")),
            ..recurrence(Frequency::Monthly, 1)
        }),
        tags: vec!["home".into(), "money".into()],
        reminder_offsets: Some(vec![1440, 60]),
        completed_at: Some(ts("2026-01-31T18:00:00Z")),
        ..task("t1", "Pay rent")
    };
    assert_eq!(
        changes(&entry(event(TaskOperation::Created, full))),
        [
            ("title", None, Some(r#""Pay rent""#)),
            ("description", None, Some(r#""flat 4""#)),
            ("is_completed", None, Some("true")),
            ("priority", None, Some(r#""high""#)),
            ("due_date", None, Some(r#""2026-02-01T09:00:00.250Z""#)),
            (
                "recurrence",
                None,
                Some(
                    r#"{"frequency":"monthly","interval":1,"ends_on":"2026-12-31T00:00:00Z","max_occurrences":12}"#
                )
            ),
            ("tags", None, Some(r#"["home","money"]"#)),
            ("reminder_offsets_minutes", None, Some("[1440,60]")),
            ("completed_at", None, Some(r#""2026-01-31T18:00:00Z""#)),
        ]
    );
}

#[test]
fn a_recurrence_without_limits_shows_nulls() {
    let weekly = Task {
        recurrence: Some(recurrence(Frequency::Weekly, 2)),
        ..rent()
    };
    let entry = entry(updated(rent(), weekly));
    assert_eq!(
        changes(&entry),
        [(
            "recurrence",
            None,
            Some(r#"{"frequency":"weekly","interval":2,"ends_on":null,"max_occurrences":null}"#)
        )]
    );
}

#[test]
fn an_update_records_only_what_changed() {
    let before = Task {
        description: Some("flat 4".into()),
        ..rent()
    };
    let after = Task {
        title: "Pay the rent".into(),
        description: None,
        priority: Priority::High,
        tags: vec!["home".into()],
        updated_at: ts("2026-01-21T08:00:00Z"),
        ..before.clone()
    };
    let entry = entry(updated(before.clone(), after.clone()));
    assert_eq!(entry.operation, TaskOperation::Updated);
    assert_eq!(entry.previous, Some(before));
    assert_eq!(entry.current, Some(after));
    assert_eq!(
        changes(&entry),
        [
            ("title", Some(r#""Pay rent""#), Some(r#""Pay the rent""#)),
            ("description", Some(r#""flat 4""#), None),
            ("priority", Some(r#""medium""#), Some(r#""high""#)),
            ("tags", Some("[]"), Some(r#"["home"]"#)),
        ]
    );
}

/// Each tracked field changed on its own is listed with both values: an update formats only the
/// fields whose typed values differ, so a field wrongly taken for unchanged would go missing here.
#[test]
fn a_change_to_any_one_tracked_field_is_listed() {
    let before = Task {
        recurrence: Some(recurrence(Frequency::Monthly, 1)),
        reminder_offsets: Some(vec![60]),
        ..rent()
    };
    type Edit = fn(&mut Task);
    let edits: [(&str, Edit); 13] = [
        ("title", |t| t.title = "Pay the rent".into()),
        ("description", |t| t.description = Some("flat 4".into())),
        ("is_completed", |t| t.is_completed = true),
        ("priority", |t| t.priority = Priority::Low),
        ("due_date", |t| {
            t.due_date = Some(ts("2026-02-01T09:00:01Z"))
        }),
        ("due_date", |t| t.due_date = None),
        ("recurrence", |t| t.recurrence = None),
        ("recurrence", |t| {
            t.recurrence.as_mut().unwrap().frequency = Frequency::Weekly
        }),
        ("recurrence", |t| {
            t.recurrence.as_mut().unwrap().interval = 2
        }),
        ("recurrence", |t| {
            t.recurrence.as_mut().unwrap().max_occurrences = Some(3)
        }),
        ("tags", |t| t.tags = vec!["home".into()]),
        ("reminder_offsets_minutes", |t| {
            t.reminder_offsets = Some(vec![60, 15])
        }),
        ("completed_at", |t| {
            t.completed_at = Some(ts("2026-01-31T18:00:00Z"))
        }),
    ];
    for (field, edit) in edits {
        let mut after = before.clone();
        edit(&mut after);
        let entry = entry(updated(before.clone(), after));
        let listed: Vec<&str> = entry.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(listed, [field], "{field}");
        assert_ne!(entry.changes[0].old, entry.changes[0].new, "{field}");
    }
}

/// The anchor is the series' bookkeeping, which the trail does not show (`changes::recurrence`).
#[test]
fn an_update_that_moves_only_the_series_anchor_has_no_changes() {
    let before = Task {
        recurrence: Some(recurrence(Frequency::Monthly, 1)),
        ..rent()
    };
    let mut after = before.clone();
    after.recurrence.as_mut().unwrap().anchor = Some(ts("2026-01-31T09:00:00Z"));
    assert_eq!(entry(updated(before, after)).changes, []);
}

#[test]
fn an_update_that_changes_no_tracked_field_has_no_changes() {
    let after = Task {
        updated_at: ts("2026-01-21T08:00:00Z"),
        occurrence: 2,
        ..rent()
    };
    assert_eq!(entry(updated(rent(), after)).changes, []);
}

#[test]
fn an_update_without_the_previous_state_lists_every_field_as_new() {
    let entry = entry(event(TaskOperation::Updated, rent()));
    assert_eq!(entry.previous, None);
    assert_eq!(
        changes(&entry),
        changes(&self::entry(event(TaskOperation::Created, rent())))
    );
}

#[test]
fn a_completion_records_the_completion() {
    let done = Task {
        is_completed: true,
        completed_at: Some(ts("2026-01-31T18:00:00Z")),
        ..rent()
    };
    let completed = TaskEvent {
        previous: Some(rent()),
        ..event(TaskOperation::Completed, done)
    };
    let entry = entry(completed);
    assert_eq!(entry.operation, TaskOperation::Completed);
    assert_eq!(
        changes(&entry),
        [
            ("is_completed", Some("false"), Some("true")),
            ("completed_at", None, Some(r#""2026-01-31T18:00:00Z""#)),
        ]
    );
}

#[test]
fn a_deletion_keeps_the_last_state_and_lists_no_changes() {
    let before = Task {
        title: "Pay rent (old)".into(),
        ..rent()
    };
    let with_previous = TaskEvent {
        previous: Some(before.clone()),
        ..event(TaskOperation::Deleted, rent())
    };
    let entry = entry(with_previous);
    assert_eq!(
        (entry.previous, entry.current, entry.changes),
        (Some(before), None, vec![])
    );
    let without = entry_of_deletion(rent());
    assert_eq!(
        (without.previous, without.current, without.changes),
        (Some(rent()), None, vec![])
    );
}

fn entry_of_deletion(task: Task) -> AuditEntry {
    entry(event(TaskOperation::Deleted, task))
}

#[test]
fn strings_are_escaped_as_json() {
    let tricky = Task {
        title: "Say \"hi\" to C:\\Users\nthen\ttab \u{1} and \u{1f} — café ✓ 😀".into(),
        tags: vec!["a\"b".into(), "\\".into()],
        ..task("t1", "")
    };
    let entry = entry(event(TaskOperation::Created, tricky));
    assert_eq!(
        changes(&entry)[0],
        (
            "title",
            None,
            Some(r#""Say \"hi\" to C:\\Users\nthen\ttab \u0001 and \u001f — café ✓ 😀""#)
        )
    );
    let tags = changes(&entry)
        .into_iter()
        .find(|(field, ..)| *field == "tags");
    assert_eq!(tags, Some(("tags", None, Some(r#"["a\"b","\\"]"#))));
}

#[test]
fn an_update_on_task_updates_is_audited_as_on_task_events() {
    // The Python backend publishes `updated` on task-updates only.
    let event = updated(
        rent(),
        Task {
            title: "Pay the rent".into(),
            ..rent()
        },
    );
    let on_updates = component()
        .handle("task-updates", &event.clone().into(), ts(NOW))
        .unwrap();
    assert_eq!(
        on_updates,
        component()
            .handle("task-events", &event.into(), ts(NOW))
            .unwrap()
    );
    let [Effect::AppendAudit(entry)] = &on_updates[..] else {
        panic!("expected one entry, got {on_updates:?}")
    };
    assert_eq!(entry.operation, TaskOperation::Updated);
    assert_eq!(
        changes(entry),
        [("title", Some(r#""Pay rent""#), Some(r#""Pay the rent""#))]
    );
}

#[test]
fn other_topics_and_messages_are_ignored() {
    let created = event(TaskOperation::Created, rent());
    assert_eq!(
        component().handle("reminders", &created.into(), ts(NOW)),
        Ok(vec![])
    );
    let reminder = ReminderDue {
        event_id: "reminder:t1:60:0".into(),
        occurred_at: 0,
        user_id: USER.into(),
        task: testkit::reminder_task(&rent()),
        offset_minutes: 60,
    };
    assert_eq!(
        component().handle("task-events", &reminder.into(), ts(NOW)),
        Ok(vec![])
    );
}

#[test]
fn the_same_input_gives_the_same_entry() {
    let event = updated(
        rent(),
        Task {
            title: "Pay the rent".into(),
            ..rent()
        },
    );
    let first = component().handle("task-events", &event.clone().into(), ts(NOW));
    assert_eq!(
        component().handle("task-events", &event.into(), ts("2031-06-01T00:00:00Z")),
        first
    );
}

#[test]
fn a_timestamp_out_of_range_is_dropped() {
    let far = Task {
        due_date: Some(i64::MAX),
        ..rent()
    };
    let result = component().handle(
        "task-events",
        &event(TaskOperation::Created, far).into(),
        ts(NOW),
    );
    assert!(
        matches!(&result, Err(Failure::Drop(reason)) if reason.contains("out of range")),
        "{result:?}"
    );
}
