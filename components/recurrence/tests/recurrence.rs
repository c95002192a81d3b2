//! The recurrence component, loaded from its .wasm with wasmtime alone.

use testkit::types::*;
use testkit::{Consumer, USER, event, recurrence, rfc3339, task, ts};

fn component() -> Consumer {
    Consumer::load("recurrence")
}

/// The host's clock; recurrence never needs it.
const NOW: &str = "2026-06-01T00:00:00Z";

/// A recurring task, first of its series, due at `due`.
fn recurring(frequency: Frequency, interval: u32, due: &str) -> Task {
    Task {
        due_date: Some(ts(due)),
        recurrence: Some(recurrence(frequency, interval)),
        ..task("t1", "Pay rent")
    }
}

/// `task` completed at its `completed-at`, else at its due date, else at the start of 2026.
fn completion(task: Task) -> TaskEvent {
    let done = task
        .completed_at
        .or(task.due_date)
        .unwrap_or(ts("2026-01-01T00:00:00Z"));
    event(
        TaskOperation::Completed,
        Task {
            is_completed: true,
            completed_at: Some(done),
            updated_at: done,
            ..task
        },
    )
}

fn handle(event: TaskEvent) -> Result<Vec<Effect>, Failure> {
    component().handle("task-events", &event.into(), ts(NOW))
}

/// The next occurrence the component asks for, or `None` if it asks for nothing.
fn next(task: Task) -> Option<NewTask> {
    match &handle(completion(task)).unwrap()[..] {
        [] => None,
        [Effect::CreateTask(new)] => Some(new.clone()),
        other => panic!("expected at most one create-task, got {other:?}"),
    }
}

fn next_due(task: Task) -> String {
    rfc3339(
        next(task)
            .expect("a next occurrence")
            .due_date
            .expect("a due date"),
    )
}

/// The task the host creates from `new`, as the next completion will carry it.
fn created_from(new: NewTask) -> Task {
    Task {
        id: format!("t{}", new.occurrence),
        title: new.title,
        description: new.description,
        priority: new.priority,
        due_date: new.due_date,
        recurrence: new.recurrence,
        tags: new.tags,
        reminder_offsets: new.reminder_offsets,
        occurrence: new.occurrence,
        series_id: new.series_id,
        ..task("unused", "unused")
    }
}

/// The due dates of `n` occurrences after `first`, completing each one as it comes.
fn series(first: Task, n: usize) -> Vec<String> {
    let mut current = first;
    (0..n)
        .map(|_| {
            let new = next(current.clone()).expect("the series goes on");
            current = created_from(new);
            rfc3339(current.due_date.unwrap())
        })
        .collect()
}

#[test]
fn describes_itself() {
    let manifest = component().describe();
    assert_eq!(manifest.name, "recurrence");
    assert_eq!(manifest.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest.topics, ["task-events"]);
}

#[test]
fn daily_adds_days_and_keeps_the_time_of_day() {
    assert_eq!(
        next_due(recurring(Frequency::Daily, 1, "2026-01-31T09:30:00Z")),
        "2026-02-01T09:30:00Z"
    );
    assert_eq!(
        next_due(recurring(Frequency::Daily, 3, "2026-02-27T09:30:00Z")),
        "2026-03-02T09:30:00Z"
    );
}

#[test]
fn weekly_adds_weeks() {
    assert_eq!(
        next_due(recurring(Frequency::Weekly, 1, "2026-01-31T09:00:00Z")),
        "2026-02-07T09:00:00Z"
    );
    assert_eq!(
        next_due(recurring(Frequency::Weekly, 2, "2026-12-28T18:00:00Z")),
        "2027-01-11T18:00:00Z"
    );
}

#[test]
fn monthly_keeps_the_day_of_month() {
    assert_eq!(
        series(recurring(Frequency::Monthly, 1, "2026-01-15T09:00:00Z"), 3),
        [
            "2026-02-15T09:00:00Z",
            "2026-03-15T09:00:00Z",
            "2026-04-15T09:00:00Z"
        ]
    );
}

#[test]
fn monthly_clamps_to_the_month_end_and_returns_to_the_anchor_day() {
    assert_eq!(
        series(recurring(Frequency::Monthly, 1, "2026-01-31T09:00:00Z"), 4),
        [
            "2026-02-28T09:00:00Z",
            "2026-03-31T09:00:00Z",
            "2026-04-30T09:00:00Z",
            "2026-05-31T09:00:00Z"
        ]
    );
}

#[test]
fn monthly_in_a_leap_year_lands_on_february_29() {
    assert_eq!(
        series(recurring(Frequency::Monthly, 1, "2028-01-31T09:00:00Z"), 2),
        ["2028-02-29T09:00:00Z", "2028-03-31T09:00:00Z"]
    );
    assert_eq!(
        series(recurring(Frequency::Monthly, 12, "2028-02-29T09:00:00Z"), 4),
        [
            "2029-02-28T09:00:00Z",
            "2030-02-28T09:00:00Z",
            "2031-02-28T09:00:00Z",
            "2032-02-29T09:00:00Z"
        ]
    );
}

#[test]
fn every_n_months() {
    assert_eq!(
        series(recurring(Frequency::Monthly, 2, "2026-12-31T09:00:00Z"), 3),
        [
            "2027-02-28T09:00:00Z",
            "2027-04-30T09:00:00Z",
            "2027-06-30T09:00:00Z"
        ]
    );
}

#[test]
fn monthly_follows_the_anchor_and_the_occurrence() {
    // The third occurrence of a series anchored on Jan 31: anchor + 3 months.
    let third = Task {
        occurrence: 3,
        series_id: Some("t1".into()),
        recurrence: Some(Recurrence {
            anchor: Some(ts("2026-01-31T09:00:00Z")),
            ..recurrence(Frequency::Monthly, 1)
        }),
        ..recurring(Frequency::Monthly, 1, "2026-03-31T09:00:00Z")
    };
    assert_eq!(next_due(third), "2026-04-30T09:00:00Z");
}

#[test]
fn monthly_after_a_due_date_moved_by_hand_is_the_next_date_of_the_series() {
    // Anchored on the 31st, but this occurrence was moved to the 10th of March.
    let moved = Task {
        occurrence: 2,
        recurrence: Some(Recurrence {
            anchor: Some(ts("2026-01-31T09:00:00Z")),
            ..recurrence(Frequency::Monthly, 1)
        }),
        ..recurring(Frequency::Monthly, 1, "2026-03-10T09:00:00Z")
    };
    assert_eq!(next_due(moved), "2026-03-31T09:00:00Z");
}

#[test]
fn the_next_occurrence_copies_the_task_and_anchors_the_series() {
    let task = Task {
        description: Some("flat 4".into()),
        priority: Priority::High,
        tags: vec!["home".into(), "money".into()],
        reminder_offsets: Some(vec![30]),
        ..recurring(Frequency::Monthly, 1, "2026-01-31T09:00:00Z")
    };
    let new = next(task).unwrap();
    assert_eq!(
        new,
        NewTask {
            idempotency_key: "recurrence:t1:2".into(),
            user_id: USER.into(),
            title: "Pay rent".into(),
            description: Some("flat 4".into()),
            priority: Priority::High,
            due_date: Some(ts("2026-02-28T09:00:00Z")),
            recurrence: Some(Recurrence {
                anchor: Some(ts("2026-01-31T09:00:00Z")),
                ..recurrence(Frequency::Monthly, 1)
            }),
            tags: vec!["home".into(), "money".into()],
            reminder_offsets: Some(vec![30]),
            occurrence: 2,
            series_id: Some("t1".into()),
        }
    );
}

#[test]
fn the_user_is_the_events() {
    let mut completed = completion(recurring(Frequency::Daily, 1, "2026-01-31T09:00:00Z"));
    completed.user_id = "someone-else".into();
    let [Effect::CreateTask(new)] = &handle(completed).unwrap()[..] else {
        panic!("expected one create-task")
    };
    assert_eq!(new.user_id, "someone-else");
}

#[test]
fn later_occurrences_keep_the_series_id() {
    let fourth = Task {
        id: "t4".into(),
        occurrence: 4,
        series_id: Some("s1".into()),
        ..recurring(Frequency::Daily, 1, "2026-01-31T09:00:00Z")
    };
    let new = next(fourth).unwrap();
    assert_eq!(new.idempotency_key, "recurrence:s1:5");
    assert_eq!(new.series_id.as_deref(), Some("s1"));
    assert_eq!(new.occurrence, 5);
}

#[test]
fn without_a_due_date_the_next_is_one_interval_after_completion() {
    let done = ts("2026-03-10T17:45:00Z");
    let task = Task {
        due_date: None,
        completed_at: Some(done),
        is_completed: true,
        recurrence: Some(recurrence(Frequency::Weekly, 1)),
        ..task("t1", "Water plants")
    };
    let new = &handle(event(TaskOperation::Completed, task)).unwrap();
    let [Effect::CreateTask(new)] = &new[..] else {
        panic!("expected one create-task, got {new:?}")
    };
    assert_eq!(rfc3339(new.due_date.unwrap()), "2026-03-17T17:45:00Z");
    // No due date, so nothing to anchor on yet.
    assert_eq!(new.recurrence.unwrap().anchor, None);
}

#[test]
fn without_a_due_date_or_completion_time_the_event_time_counts() {
    let task = Task {
        recurrence: Some(recurrence(Frequency::Daily, 2)),
        ..task("t1", "Stretch")
    };
    let completed = TaskEvent {
        occurred_at: ts("2026-03-10T07:00:00Z"),
        ..event(TaskOperation::Completed, task)
    };
    let [Effect::CreateTask(new)] = &handle(completed).unwrap()[..] else {
        panic!("expected one create-task")
    };
    assert_eq!(rfc3339(new.due_date.unwrap()), "2026-03-12T07:00:00Z");
}

#[test]
fn monthly_without_a_due_date_starts_a_series_on_the_completion_day() {
    let task = Task {
        completed_at: Some(ts("2026-01-31T10:00:00Z")),
        recurrence: Some(recurrence(Frequency::Monthly, 1)),
        ..task("t1", "Backup")
    };
    let new = next(task).unwrap();
    assert_eq!(rfc3339(new.due_date.unwrap()), "2026-02-28T10:00:00Z");
    // The new task's own due date anchors what follows it: one month on, not two.
    assert_eq!(
        series(created_from(new), 2),
        ["2026-03-28T10:00:00Z", "2026-04-28T10:00:00Z"]
    );
}

#[test]
fn monthly_without_a_due_date_but_with_an_anchor_keeps_the_anchor_day() {
    let task = Task {
        completed_at: Some(ts("2026-04-10T08:00:00Z")),
        recurrence: Some(Recurrence {
            anchor: Some(ts("2026-01-31T09:00:00Z")),
            ..recurrence(Frequency::Monthly, 1)
        }),
        ..task("t1", "Backup")
    };
    assert_eq!(next_due(task), "2026-05-31T09:00:00Z");
}

#[test]
fn ends_on_stops_the_series_after_the_last_due_date() {
    let ending = |ends_on: &str| Task {
        recurrence: Some(Recurrence {
            ends_on: Some(ts(ends_on)),
            ..recurrence(Frequency::Daily, 1)
        }),
        ..recurring(Frequency::Daily, 1, "2026-01-31T09:00:00Z")
    };
    assert_eq!(next(ending("2026-02-01T08:59:59Z")), None);
    // The end date itself may still be due.
    assert_eq!(
        next_due(ending("2026-02-01T09:00:00Z")),
        "2026-02-01T09:00:00Z"
    );
}

#[test]
fn max_occurrences_stops_the_series() {
    let nth = |occurrence: u32| Task {
        occurrence,
        recurrence: Some(Recurrence {
            max_occurrences: Some(3),
            ..recurrence(Frequency::Daily, 1)
        }),
        ..recurring(Frequency::Daily, 1, "2026-01-31T09:00:00Z")
    };
    assert_eq!(next(nth(2)).map(|new| new.occurrence), Some(3));
    assert_eq!(next(nth(3)), None);
    assert_eq!(next(nth(4)), None);
}

#[test]
fn a_task_that_does_not_recur_has_no_next() {
    assert_eq!(
        next(Task {
            due_date: Some(ts("2026-01-31T09:00:00Z")),
            ..task("t1", "Once")
        }),
        None
    );
}

#[test]
fn only_completion_creates_the_next_occurrence() {
    let task = recurring(Frequency::Daily, 1, "2026-01-31T09:00:00Z");
    for operation in [
        TaskOperation::Created,
        TaskOperation::Updated,
        TaskOperation::Deleted,
    ] {
        assert_eq!(
            handle(event(operation, task.clone())),
            Ok(vec![]),
            "{operation:?}"
        );
    }
}

#[test]
fn other_topics_and_messages_are_ignored() {
    let completed = completion(recurring(Frequency::Daily, 1, "2026-01-31T09:00:00Z"));
    assert_eq!(
        component().handle("task-updates", &completed.into(), ts(NOW)),
        Ok(vec![])
    );
    let reminder = ReminderDue {
        event_id: "reminder:t1:60:0".into(),
        occurred_at: 0,
        user_id: USER.into(),
        task: testkit::reminder_task(&recurring(Frequency::Daily, 1, "2026-01-31T09:00:00Z")),
        offset_minutes: 60,
    };
    assert_eq!(
        component().handle("task-events", &reminder.into(), ts(NOW)),
        Ok(vec![])
    );
}

#[test]
fn a_redelivered_completion_asks_for_the_same_task() {
    let completed = completion(recurring(Frequency::Monthly, 1, "2026-01-31T09:00:00Z"));
    let first = handle(completed.clone()).unwrap();
    assert_eq!(handle(completed.clone()).unwrap(), first);
    // A duplicate event under another id, handled at another time: the same occurrence.
    let duplicate = TaskEvent {
        event_id: "evt-other".into(),
        ..completed
    };
    assert_eq!(
        component()
            .handle("task-events", &duplicate.into(), ts("2030-01-01T00:00:00Z"))
            .unwrap(),
        first
    );
    let [Effect::CreateTask(new)] = &first[..] else {
        panic!("expected one create-task")
    };
    assert_eq!(new.idempotency_key, "recurrence:t1:2");
}

#[test]
fn interval_zero_is_dropped() {
    let broken = recurring(Frequency::Weekly, 0, "2026-01-31T09:00:00Z");
    assert_eq!(
        handle(completion(broken)),
        Err(Failure::Drop(
            "recurrence interval must be at least 1".into()
        ))
    );
}

#[test]
fn a_due_date_out_of_range_is_dropped() {
    let far = Task {
        due_date: Some(i64::MAX - 1),
        ..recurring(Frequency::Daily, 1, "2026-01-31T09:00:00Z")
    };
    let completed = TaskEvent {
        occurred_at: 0,
        ..event(TaskOperation::Completed, far.clone())
    };
    assert!(
        matches!(handle(completed), Err(Failure::Drop(reason)) if reason.contains("out of range"))
    );
    let monthly = Task {
        recurrence: Some(recurrence(Frequency::Monthly, 1)),
        ..far
    };
    assert!(
        matches!(handle(completion(monthly)), Err(Failure::Drop(reason)) if reason.contains("out of range"))
    );
}
