//! The notification component, loaded from its .wasm with wasmtime alone.

use testkit::types::*;
use testkit::{Consumer, USER, event, reminder_task, task, ts};

fn component() -> Consumer {
    Consumer::load("notification")
}

const DUE: &str = "2026-02-01T09:00:00Z";
/// Well before both default reminders of a task due at [`DUE`].
const EARLY: &str = "2026-01-15T00:00:00Z";

fn rent() -> Task {
    Task {
        due_date: Some(ts(DUE)),
        ..task("t1", "Pay rent")
    }
}

fn on_event(event: TaskEvent, now: &str) -> Vec<Effect> {
    component()
        .handle("task-events", &event.into(), ts(now))
        .unwrap()
}

fn updated(previous: Task, current: Task) -> TaskEvent {
    TaskEvent {
        previous: Some(previous),
        ..event(TaskOperation::Updated, current)
    }
}

/// The job for `offset` minutes before `task`'s due date, as the component should schedule it.
fn job(task: &Task, offset: u32) -> Effect {
    let due = task.due_date.unwrap();
    let fires_at = due - i64::from(offset) * 60_000;
    Effect::ScheduleReminder(ReminderJob {
        name: format!("reminder-{}-{offset}", task.id),
        due_at: fires_at,
        reminder: ReminderDue {
            event_id: format!("reminder:{}:{offset}:{due}", task.id),
            occurred_at: fires_at,
            user_id: USER.into(),
            task: reminder_task(task),
            offset_minutes: offset,
        },
    })
}

fn cancel(name: &str) -> Effect {
    Effect::CancelReminder(name.into())
}

fn reminder(task: &Task, offset: u32) -> ReminderDue {
    let Effect::ScheduleReminder(job) = job(task, offset) else {
        unreachable!()
    };
    job.reminder
}

#[test]
fn describes_itself() {
    let manifest = component().describe();
    assert_eq!(manifest.name, "notification");
    assert_eq!(manifest.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        manifest.topics,
        ["task-events", "task-updates", "reminders"]
    );
}

#[test]
fn a_new_task_gets_the_default_reminders() {
    let task = rent();
    assert_eq!(
        on_event(event(TaskOperation::Created, task.clone()), EARLY),
        [job(&task, 1440), job(&task, 60)]
    );
    let Effect::ScheduleReminder(day_before) = &job(&task, 1440) else {
        unreachable!()
    };
    assert_eq!(day_before.due_at, ts("2026-01-31T09:00:00Z"));
    assert_eq!(
        day_before.reminder.event_id,
        format!("reminder:t1:1440:{}", ts(DUE))
    );
}

#[test]
fn a_task_chooses_its_own_reminders() {
    let task = Task {
        reminder_offsets: Some(vec![30, 2880]),
        description: Some("flat 4".into()),
        ..rent()
    };
    assert_eq!(
        on_event(event(TaskOperation::Created, task.clone()), EARLY),
        [job(&task, 30), job(&task, 2880)]
    );
    let none = Task {
        reminder_offsets: Some(vec![]),
        ..rent()
    };
    assert_eq!(on_event(event(TaskOperation::Created, none), EARLY), []);
}

#[test]
fn the_same_offset_twice_is_one_job() {
    let task = Task {
        reminder_offsets: Some(vec![60, 60]),
        ..rent()
    };
    assert_eq!(
        on_event(event(TaskOperation::Created, task.clone()), EARLY),
        [job(&task, 60)]
    );
}

#[test]
fn reminders_in_the_past_are_not_scheduled() {
    let task = rent();
    let created = || event(TaskOperation::Created, task.clone());
    // Past the day-before reminder, not yet the hour-before one.
    assert_eq!(
        on_event(created(), "2026-02-01T07:00:00Z"),
        [job(&task, 60)]
    );
    // A reminder due exactly now is as good as past.
    assert_eq!(on_event(created(), "2026-02-01T08:00:00Z"), []);
    assert_eq!(on_event(created(), "2026-02-02T00:00:00Z"), []);
}

#[test]
fn tasks_without_a_due_date_or_already_done_get_no_reminders() {
    assert_eq!(
        on_event(event(TaskOperation::Created, task("t1", "Someday")), EARLY),
        []
    );
    let done = Task {
        is_completed: true,
        ..rent()
    };
    assert_eq!(on_event(event(TaskOperation::Created, done), EARLY), []);
}

#[test]
fn an_update_that_changes_nothing_reminders_use_changes_no_job() {
    let before = rent();
    let after = Task {
        description: Some("now with a note".into()),
        tags: vec!["home".into()],
        ..before.clone()
    };
    assert_eq!(on_event(updated(before, after), EARLY), []);
}

#[test]
fn a_new_due_date_reschedules_the_jobs() {
    let before = rent();
    let after = Task {
        due_date: Some(ts("2026-02-10T09:00:00Z")),
        ..before.clone()
    };
    // Same job names: scheduling them again replaces them.
    assert_eq!(
        on_event(updated(before, after.clone()), EARLY),
        [job(&after, 1440), job(&after, 60)]
    );
}

#[test]
fn a_due_date_moved_closer_cancels_the_reminders_now_past() {
    let before = rent();
    let after = Task {
        due_date: Some(ts("2026-01-15T12:00:00Z")),
        ..before.clone()
    };
    assert_eq!(
        on_event(updated(before, after.clone()), EARLY),
        [cancel("reminder-t1-1440"), job(&after, 60)]
    );
}

#[test]
fn a_removed_due_date_only_cancels() {
    let before = rent();
    let after = Task {
        due_date: None,
        ..before.clone()
    };
    assert_eq!(
        on_event(updated(before, after), EARLY),
        [cancel("reminder-t1-1440"), cancel("reminder-t1-60")]
    );
}

#[test]
fn changed_offsets_cancel_the_old_jobs_and_schedule_the_new() {
    let before = rent();
    let after = Task {
        reminder_offsets: Some(vec![30, 60]),
        ..before.clone()
    };
    assert_eq!(
        on_event(updated(before, after.clone()), EARLY),
        [cancel("reminder-t1-1440"), job(&after, 30), job(&after, 60)]
    );
}

#[test]
fn a_new_title_or_priority_reschedules_so_reminders_say_the_right_thing() {
    let before = rent();
    for after in [
        Task {
            title: "Pay the rent".into(),
            ..before.clone()
        },
        Task {
            priority: Priority::High,
            ..before.clone()
        },
    ] {
        assert_eq!(
            on_event(updated(before.clone(), after.clone()), EARLY),
            [job(&after, 1440), job(&after, 60)]
        );
    }
}

#[test]
fn an_update_without_the_previous_state_reschedules_the_current_offsets() {
    let task = Task {
        reminder_offsets: Some(vec![60]),
        ..rent()
    };
    assert_eq!(
        on_event(event(TaskOperation::Updated, task.clone()), EARLY),
        [job(&task, 60)]
    );
    let done = Task {
        is_completed: true,
        ..task
    };
    assert_eq!(
        on_event(event(TaskOperation::Updated, done), EARLY),
        [cancel("reminder-t1-60")]
    );
}

#[test]
fn completion_and_deletion_cancel_every_job_the_task_may_have() {
    let before = rent();
    let after = Task {
        is_completed: true,
        reminder_offsets: Some(vec![30]),
        ..before.clone()
    };
    for operation in [TaskOperation::Completed, TaskOperation::Deleted] {
        let event = TaskEvent {
            previous: Some(before.clone()),
            ..event(operation, after.clone())
        };
        assert_eq!(
            on_event(event, EARLY),
            [
                cancel("reminder-t1-30"),
                cancel("reminder-t1-1440"),
                cancel("reminder-t1-60")
            ]
        );
    }
    let deleted = event(TaskOperation::Deleted, rent());
    assert_eq!(
        on_event(deleted, EARLY),
        [cancel("reminder-t1-1440"), cancel("reminder-t1-60")]
    );
}

#[test]
fn a_due_reminder_becomes_one_notification() {
    let now = ts("2026-02-01T08:00:02Z");
    let effects = component()
        .handle("reminders", &reminder(&rent(), 60).into(), now)
        .unwrap();
    assert_eq!(
        effects,
        [Effect::Notify(Notification {
            idempotency_key: format!("reminder:t1:60:{}", ts(DUE)),
            user_id: USER.into(),
            task_id: "t1".into(),
            title: "Reminder: Pay rent".into(),
            body: "“Pay rent” is due in 1 hour (2026-02-01 09:00 UTC)".into(),
            created_at: now,
        })]
    );
}

#[test]
fn the_notification_says_how_soon() {
    let body = |offset| {
        let effects = component()
            .handle("reminders", &reminder(&rent(), offset).into(), ts(EARLY))
            .unwrap();
        let [Effect::Notify(notification)] = &effects[..] else {
            panic!("expected one notify, got {effects:?}")
        };
        notification.body.clone()
    };
    assert_eq!(
        body(1440),
        "“Pay rent” is due in 24 hours (2026-02-01 09:00 UTC)"
    );
    assert_eq!(
        body(60),
        "“Pay rent” is due in 1 hour (2026-02-01 09:00 UTC)"
    );
    assert_eq!(
        body(30),
        "“Pay rent” is due in 30 minutes (2026-02-01 09:00 UTC)"
    );
    assert_eq!(
        body(1),
        "“Pay rent” is due in 1 minute (2026-02-01 09:00 UTC)"
    );
    assert_eq!(body(0), "“Pay rent” is due now (2026-02-01 09:00 UTC)");
}

#[test]
fn a_reminder_notifies_once_per_task_offset_and_due_date() {
    let key = |reminder: ReminderDue| {
        // When it has come: a reminder of another producer for a later time is kept as a job.
        let now = reminder.occurred_at.max(ts(EARLY));
        let effects = component()
            .handle("reminders", &reminder.into(), now)
            .unwrap();
        let [Effect::Notify(notification)] = &effects[..] else {
            panic!("expected one notify, got {effects:?}")
        };
        notification.idempotency_key.clone()
    };
    let first = reminder(&rent(), 60);
    // The same reminder published again under another event id: the same notification.
    let again = ReminderDue {
        event_id: "something-else".into(),
        occurred_at: ts("2026-02-01T08:05:00Z"),
        ..first.clone()
    };
    assert_eq!(key(first.clone()), key(again));
    let other_due = reminder(
        &Task {
            due_date: Some(ts("2026-03-01T09:00:00Z")),
            ..rent()
        },
        60,
    );
    assert_ne!(key(first.clone()), key(other_due));
    assert_ne!(key(first), key(reminder(&rent(), 1440)));
}

#[test]
fn messages_on_the_wrong_topic_are_ignored() {
    let created = event(TaskOperation::Created, rent());
    assert_eq!(
        component().handle("reminders", &created.into(), ts(EARLY)),
        Ok(vec![])
    );
    assert_eq!(
        component().handle("task-events", &reminder(&rent(), 60).into(), ts(EARLY)),
        Ok(vec![])
    );
    assert_eq!(
        component().handle("task-updates", &reminder(&rent(), 60).into(), ts(EARLY)),
        Ok(vec![])
    );
}

#[test]
fn the_same_input_gives_the_same_effects() {
    let event = updated(
        rent(),
        Task {
            due_date: Some(ts("2026-01-15T12:00:00Z")),
            ..rent()
        },
    );
    let first = on_event(event.clone(), EARLY);
    assert!(!first.is_empty());
    assert_eq!(on_event(event, EARLY), first);
}

#[test]
fn a_reminder_time_out_of_range_is_dropped() {
    let ancient = Task {
        due_date: Some(i64::MIN + 1),
        ..rent()
    };
    let result = component().handle(
        "task-events",
        &event(TaskOperation::Created, ancient).into(),
        i64::MIN,
    );
    assert!(
        matches!(&result, Err(Failure::Drop(reason)) if reason.contains("out of range")),
        "{result:?}"
    );
}

#[test]
fn task_events_on_task_updates_move_the_jobs_too() {
    // The Python backend publishes its updates on task-updates only.
    let moved = Task {
        due_date: Some(ts("2026-02-10T09:00:00Z")),
        ..rent()
    };
    let event = updated(rent(), moved.clone());
    let on_updates = component()
        .handle("task-updates", &event.clone().into(), ts(EARLY))
        .unwrap();
    assert_eq!(on_updates, on_event(event, EARLY));
    assert_eq!(on_updates, [job(&moved, 1440), job(&moved, 60)]);
}

/// A reminder as the Python backend publishes it: "remind at `remind_at`", under its own
/// event id (a fresh one with every publish).
fn requested(task: &Task, offset: u32, event_id: &str) -> ReminderDue {
    ReminderDue {
        event_id: event_id.into(),
        ..reminder(task, offset)
    }
}

#[test]
fn a_reminder_requested_for_later_becomes_the_tasks_job_for_that_offset() {
    let task = rent();
    let effects = component()
        .handle(
            "reminders",
            &requested(&task, 15, "b66c094f").into(),
            ts(EARLY),
        )
        .unwrap();
    // The very job the task's own events schedule for a 15-minute reminder.
    assert_eq!(effects, [job(&task, 15)]);
    let Effect::ScheduleReminder(scheduled) = &effects[0] else {
        unreachable!()
    };
    assert_eq!(scheduled.name, "reminder-t1-15");
    assert_eq!(scheduled.due_at, ts("2026-02-01T08:45:00Z"));
    // Published again (every update of the task does, under a new id): the same job again,
    // which replaces it — never a second one.
    let again = component()
        .handle(
            "reminders",
            &requested(&task, 15, "fc8e445c").into(),
            ts(EARLY),
        )
        .unwrap();
    assert_eq!(again, effects);
    // The task's events agree: a task reminding 15 minutes before schedules that job.
    let with_offset = Task {
        reminder_offsets: Some(vec![15]),
        ..task
    };
    assert_eq!(
        on_event(event(TaskOperation::Created, with_offset.clone()), EARLY),
        [job(&with_offset, 15)]
    );
}

#[test]
fn a_requested_reminder_whose_time_has_come_notifies_at_once_under_the_jobs_key() {
    let task = rent();
    let remind_at = ts("2026-02-01T08:45:00Z");
    for now in [remind_at, ts("2026-02-01T08:50:00Z")] {
        let effects = component()
            .handle("reminders", &requested(&task, 15, "d7f7a060").into(), now)
            .unwrap();
        let [Effect::Notify(n)] = &effects[..] else {
            panic!("expected one notify, got {effects:?}")
        };
        // The key the job would have notified under: one notification, whichever came.
        assert_eq!(n.idempotency_key, format!("reminder:t1:15:{}", ts(DUE)));
        assert_eq!(n.created_at, now);
    }
}

#[test]
fn a_jobs_own_reminder_notifies_even_if_it_fires_before_the_hosts_clock() {
    // The job's reminder carries the component's key: it notifies, never becomes a job again
    // (that one would reuse this event id, which the host has recorded, and never notify).
    let early_by_a_second = ts("2026-02-01T07:59:59Z");
    let effects = component()
        .handle(
            "reminders",
            &reminder(&rent(), 60).into(),
            early_by_a_second,
        )
        .unwrap();
    assert!(matches!(&effects[..], [Effect::Notify(_)]), "{effects:?}");
}

#[test]
fn a_late_reminder_says_when_not_how_soon() {
    let body = |now: &str| {
        let effects = component()
            .handle("reminders", &requested(&rent(), 15, "x").into(), ts(now))
            .unwrap();
        let [Effect::Notify(n)] = &effects[..] else {
            panic!("expected one notify, got {effects:?}")
        };
        n.body.clone()
    };
    // Within a minute of its time: how soon.
    assert_eq!(
        body("2026-02-01T08:45:30Z"),
        "“Pay rent” is due in 15 minutes (2026-02-01 09:00 UTC)"
    );
    // Five minutes late: "in 15 minutes" would be untrue.
    assert_eq!(
        body("2026-02-01T08:50:00Z"),
        "“Pay rent” is due at 2026-02-01 09:00 UTC"
    );
    assert_eq!(
        body("2026-02-01T09:30:00Z"),
        "“Pay rent” was due at 2026-02-01 09:00 UTC"
    );
}
