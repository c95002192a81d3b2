//! End-to-end tests of the `taskhost` binary through its public contract:
//! the task API, the audit and inbox routes, the reminder list and `/ws`.
//!
//! Every test starts its own binary (see `support`), uses fresh random users,
//! and can run in parallel with the others. Effects of the asynchronous
//! consumers are polled for with a bounded deadline; things that must *not*
//! happen are checked only after a positive signal that the consumers have
//! run, and then watched for a while.
//!
//! Needs the four components built (`just build-components`); set
//! `TASKHOST_TEST_DATABASE_URL` to run against PostgreSQL instead of SQLite.

mod support;

use std::collections::HashSet;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use support::{
    AuditEntry, EFFECT_TIMEOUT, Reminder, Socket, Task, TestEnv, User, assert_holds,
    assert_task_keys, instant_of, same, wait_until, ws_handshake_status,
};

/// How long a "nothing more happens" check keeps watching.
const QUIET_PERIOD: StdDuration = StdDuration::from_secs(3);

/// Now plus `offset`, to the whole second, so that it survives any RFC 3339
/// rendering unchanged.
fn from_now(offset: Duration) -> DateTime<Utc> {
    (Utc::now() + offset).trunc_subsecs(0)
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("a valid RFC 3339 literal")
        .with_timezone(&Utc)
}

/// The operations of an audit trail, in order.
fn operations(trail: &[AuditEntry]) -> Vec<&str> {
    trail.iter().map(|e| e.operation.as_str()).collect()
}

/// `(due_at, offset_minutes)` of reminder jobs.
fn schedule(jobs: &[Reminder]) -> Vec<(DateTime<Utc>, i64)> {
    jobs.iter().map(|r| (r.due_at, r.offset_minutes)).collect()
}

/// The default reminders of a task due at `due`: 24 h and 1 h before.
fn default_schedule(due: DateTime<Utc>) -> Vec<(DateTime<Utc>, i64)> {
    vec![
        (due - Duration::hours(24), 1440),
        (due - Duration::hours(1), 60),
    ]
}

/// The tasks of the series started by `first_id`, oldest first.
fn series<'a>(tasks: &'a [Task], first_id: &str) -> Vec<&'a Task> {
    tasks
        .iter()
        .filter(|t| t.id == first_id || t.series_id.as_deref() == Some(first_id))
        .collect()
}

/// Asserts that `entry` records `field` going from `old` to `new` (compared as JSON values).
fn assert_change(entry: &AuditEntry, field: &str, old: Value, new: Value) {
    let change = entry.change(field).unwrap_or_else(|| {
        panic!(
            "the {} entry has no change of {field:?}: {:?}",
            entry.operation, entry.changes
        )
    });
    assert_eq!(
        (change.old_value(), change.new_value()),
        (old, new),
        "the {} entry's change of {field:?} (raw: {:?} -> {:?})",
        entry.operation,
        change.old,
        change.new
    );
}

/// The headline scenario: completing a recurring task shows up everywhere.
#[tokio::test]
async fn completing_a_recurring_task_creates_the_next_instance_everywhere() {
    let mut env = TestEnv::new();
    let host = env.start().await;
    let user = User::new().await;
    let api = host.api(&user);

    let due = from_now(Duration::days(3));
    let reply = api
        .post(
            "/api/tasks",
            &json!({
                "title": "Water the plants",
                "description": "the ones on the balcony",
                "priority": "high",
                "due_date": due.to_rfc3339(),
                "is_recurring": true,
                "recurrence_frequency": "daily",
                "tags": ["home", "garden"],
            }),
        )
        .await
        .expect(201);
    assert_task_keys(&reply.value());
    let first: Task = reply.json();
    assert_eq!(first.user_id, user.id);
    assert_eq!(first.title, "Water the plants");
    assert_eq!(
        first.description.as_deref(),
        Some("the ones on the balcony")
    );
    assert_eq!(first.priority, "high");
    assert_eq!(first.due_date, Some(due));
    assert!(first.is_recurring && !first.is_completed && first.completed_at.is_none());
    assert_eq!(first.recurrence_frequency.as_deref(), Some("daily"));
    assert_eq!(
        first.recurrence_interval,
        Some(1),
        "recurrence_interval defaults to 1"
    );
    assert_eq!(first.tags, ["home", "garden"]);
    assert_eq!(first.occurrence, 1);

    // The first instance has its default reminders before it is completed, so
    // that "none left" below means they were cancelled.
    wait_until(
        "the default reminders of the first instance in GET /api/reminders",
        EFFECT_TIMEOUT,
        async || {
            same(
                schedule(&api.reminders_for(&first.id).await),
                default_schedule(due),
            )
        },
    )
    .await;

    let socket = Socket::connect(&host, &user).await;
    let completed = api.complete_task(&first.id).await;
    assert_eq!(completed.id, first.id);
    assert!(
        completed.is_completed,
        "POST /complete returns the completed task"
    );
    assert!(
        completed.completed_at.is_some(),
        "a completed task has completed_at"
    );
    // A second completion is refused, and (checked below) creates no second instance.
    api.send(
        Method::POST,
        &format!("/api/tasks/{}/complete", first.id),
        None,
    )
    .await
    .expect(409)
    .error_message();

    let next = wait_until(
        "the next instance of the series in GET /api/tasks",
        EFFECT_TIMEOUT,
        async || {
            let tasks = api.tasks().await;
            match tasks
                .iter()
                .filter(|t| t.id != first.id)
                .collect::<Vec<_>>()[..]
            {
                [next] => Ok(next.clone()),
                ref others => Err(format!(
                    "{} tasks besides the completed one: {others:?}",
                    others.len()
                )),
            }
        },
    )
    .await;
    assert_eq!(
        next.series_id.as_deref(),
        Some(first.id.as_str()),
        "series_id is the first task's id"
    );
    assert_eq!(next.occurrence, 2);
    assert_eq!(
        next.due_date,
        Some(due + Duration::days(1)),
        "a daily task's next due date is one day later"
    );
    assert_eq!(
        (&next.title, &next.description, &next.priority, &next.tags),
        (
            &first.title,
            &first.description,
            &first.priority,
            &first.tags
        ),
        "the next instance copies title, description, priority and tags"
    );
    assert!(
        !next.is_completed && next.completed_at.is_none(),
        "the next instance is open: {next:?}"
    );
    assert!(
        next.is_recurring && next.recurrence_frequency.as_deref() == Some("daily"),
        "{next:?}"
    );
    assert_holds(
        "exactly two tasks: the completed one, then its one next instance",
        QUIET_PERIOD,
        async || {
            let tasks = api.tasks().await;
            let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
            same(ids, vec![first.id.as_str(), next.id.as_str()]).map(drop)
        },
    )
    .await;
    assert!(
        api.task(&first.id).await.is_completed,
        "the first instance stays completed"
    );

    let trail = wait_until(
        "the completed entry in the first instance's audit trail",
        EFFECT_TIMEOUT,
        async || {
            let trail = api.task_audit(&first.id).await;
            if trail.iter().any(|e| e.operation == "completed") {
                Ok(trail)
            } else {
                Err(format!("{trail:?}"))
            }
        },
    )
    .await;
    assert_eq!(operations(&trail), ["created", "completed"]);
    let (created, completion) = (&trail[0], &trail[1]);
    for entry in &trail {
        assert_eq!(
            (entry.task_id.as_str(), entry.user_id.as_str()),
            (first.id.as_str(), user.id.as_str())
        );
        assert!(
            !entry.component_version.is_empty(),
            "component_version is set: {entry:?}"
        );
    }
    assert_ne!(
        created.event_id, completion.event_id,
        "each operation is its own event"
    );
    assert!(created.at <= completion.at, "the trail is chronological");
    assert!(
        created.previous.is_none(),
        "a created entry has no previous state"
    );
    assert_eq!(
        created.current.as_ref().map(|t| t.title.as_str()),
        Some("Water the plants")
    );
    assert_eq!(
        completion.previous.as_ref().map(|t| t.is_completed),
        Some(false)
    );
    assert_eq!(
        completion.current.as_ref().map(|t| t.is_completed),
        Some(true)
    );
    assert_change(completion, "is_completed", json!(false), json!(true));

    wait_until(
        "the new instance's reminders, and none for the completed one",
        EFFECT_TIMEOUT,
        async || {
            let jobs = api.reminders().await;
            let of = |id: &str| {
                let mut s: Vec<_> = jobs
                    .iter()
                    .filter(|r| r.task_id == id)
                    .map(|r| (r.due_at, r.offset_minutes))
                    .collect();
                s.sort();
                s
            };
            same(
                (of(&first.id), of(&next.id)),
                (vec![], default_schedule(due + Duration::days(1))),
            )
        },
    )
    .await;

    let message = socket
        .wait_for("task.completed of the first instance", |m| {
            m.kind == "task.completed" && m.task_id == first.id
        })
        .await;
    assert_eq!(
        message.task.as_ref().map(|t| t.is_completed),
        Some(true),
        "{message:?}"
    );
    let message = socket
        .wait_for("task.created of the next instance", |m| {
            m.kind == "task.created" && m.task_id == next.id
        })
        .await;
    assert_eq!(
        message.task.as_ref().map(|t| t.occurrence),
        Some(2),
        "{message:?}"
    );
}

/// A task reads back exactly as the write answered it: every field, every
/// instant, whether through GET by id or the list.
#[tokio::test]
async fn a_task_reads_back_exactly_as_it_was_written() {
    let mut env = TestEnv::new();
    let host = env.start().await;
    let user = User::new().await;
    let api = host.api(&user);

    let due = from_now(Duration::days(10));
    let ends = from_now(Duration::days(100));
    let reply = api
        .post(
            "/api/tasks",
            &json!({
                "title": "Review the budget",
                "description": "Q1",
                "priority": "low",
                "due_date": due.to_rfc3339(),
                "is_recurring": true,
                "recurrence_frequency": "weekly",
                "recurrence_interval": 2,
                "recurrence_ends_on": ends.to_rfc3339(),
                "recurrence_max_occurrences": 5,
                "tags": ["work"],
                "reminder_offsets_minutes": [120, 30],
            }),
        )
        .await
        .expect(201);
    assert_task_keys(&reply.value());
    let created: Task = reply.json();
    let expected = Task {
        // What the server chooses: ids and instants.
        id: created.id.clone(),
        series_id: created.series_id.clone(),
        created_at: created.created_at,
        updated_at: created.updated_at,
        // What was sent, or the documented default.
        user_id: user.id.clone(),
        title: "Review the budget".into(),
        description: Some("Q1".into()),
        is_completed: false,
        priority: "low".into(),
        due_date: Some(due),
        is_recurring: true,
        recurrence_frequency: Some("weekly".into()),
        recurrence_interval: Some(2),
        recurrence_ends_on: Some(ends),
        recurrence_max_occurrences: Some(5),
        tags: vec!["work".into()],
        reminder_offsets_minutes: Some(vec![120, 30]),
        occurrence: 1,
        completed_at: None,
    };
    assert_eq!(created, expected, "the created task carries what was sent");
    assert_eq!(
        created.created_at, created.updated_at,
        "a new task was never updated"
    );

    let read = api
        .get(&format!("/api/tasks/{}", created.id))
        .await
        .expect(200);
    assert_task_keys(&read.value());
    assert_eq!(
        read.json::<Task>(),
        created,
        "GET /api/tasks/{{id}} returns exactly what POST returned"
    );
    assert_eq!(
        api.tasks().await,
        vec![created.clone()],
        "GET /api/tasks lists exactly what POST returned"
    );

    let completed = api.complete_task(&created.id).await;
    assert_eq!(
        api.task(&created.id).await,
        completed,
        "GET returns exactly what POST /complete returned"
    );
    let patched = api
        .update_task(&created.id, &json!({"title": "Review the budget again"}))
        .await;
    assert_eq!(
        api.task(&created.id).await,
        patched,
        "GET returns exactly what PATCH returned"
    );
}

/// A due reminder puts exactly one notification in the inbox, and a restart
/// does not deliver it again.
#[tokio::test]
async fn a_due_reminder_notifies_once_even_across_a_restart() {
    let mut env = TestEnv::new();
    let host = env.start().await;
    let user = User::new().await;
    let api = host.api(&user);

    // Due in 70 s with a reminder 1 minute before: it fires about 10 s from now.
    let due = from_now(Duration::seconds(70));
    let task = api
        .create_task(&json!({
            "title": "Call the dentist",
            "due_date": due.to_rfc3339(),
            "reminder_offsets_minutes": [1],
        }))
        .await;
    assert_eq!(task.reminder_offsets_minutes, Some(vec![1]));
    let jobs = wait_until(
        "one reminder job at due − 1 min",
        EFFECT_TIMEOUT,
        async || {
            same(
                schedule(&api.reminders_for(&task.id).await),
                vec![(due - Duration::minutes(1), 1)],
            )
        },
    )
    .await;
    assert_eq!(jobs.len(), 1);
    assert!(
        api.notifications().await.is_empty(),
        "nothing is in the inbox before the reminder is due"
    );

    let notification = wait_until(
        "the reminder's notification in GET /api/notifications",
        StdDuration::from_secs(60),
        async || match &api.notifications().await[..] {
            [one] => Ok(one.clone()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    assert_eq!(notification.task_id, task.id);
    assert!(
        !notification.title.is_empty(),
        "a notification has a title: {notification:?}"
    );
    let fired_at = notification.created_at;
    assert!(
        fired_at >= due - Duration::minutes(1) - Duration::seconds(2),
        "the notification ({fired_at}) must not come before the reminder is due ({})",
        due - Duration::minutes(1)
    );
    assert_holds(
        "exactly one notification before the restart",
        QUIET_PERIOD,
        async || same(api.notifications().await.len(), 1).map(drop),
    )
    .await;

    host.kill().await;
    let host = env.start().await;
    let api = host.api(&user);

    // A write processed by the restarted host proves its relay runs; only
    // then does "no second notification" mean something.
    let probe = api
        .create_task(&json!({"title": "probe after restart"}))
        .await;
    wait_until(
        "the restarted host to audit a new task",
        EFFECT_TIMEOUT,
        async || {
            same(
                operations(&api.task_audit(&probe.id).await),
                vec!["created"],
            )
            .map(drop)
        },
    )
    .await;
    assert_holds(
        "exactly the one notification after the restart",
        QUIET_PERIOD,
        async || {
            let ids: Vec<Value> = api
                .notifications()
                .await
                .into_iter()
                .map(|n| n.id)
                .collect();
            same(ids, vec![notification.id.clone()]).map(drop)
        },
    )
    .await;
}

/// PATCH and DELETE: audit, reminders and the socket follow.
#[tokio::test]
async fn updating_and_deleting_a_task_is_audited_rescheduled_and_broadcast() {
    let mut env = TestEnv::new();
    let host = env.start().await;
    let user = User::new().await;
    let api = host.api(&user);
    let socket = Socket::connect(&host, &user).await;
    // A second client of the same user: every socket of the owner hears every change.
    let other_client = Socket::connect(&host, &user).await;

    let due = from_now(Duration::days(2));
    let task = api
        .create_task(&json!({
            "title": "a",
            "description": "unchanged",
            "priority": "low",
            "tags": ["x"],
            "due_date": due.to_rfc3339(),
        }))
        .await;
    wait_until(
        "the default reminders for the original due date",
        EFFECT_TIMEOUT,
        async || {
            same(
                schedule(&api.reminders_for(&task.id).await),
                default_schedule(due),
            )
        },
    )
    .await;

    let new_due = from_now(Duration::days(5));
    let updated = api
        .update_task(
            &task.id,
            &json!({"title": "b", "priority": "high", "tags": ["x", "y"], "due_date": new_due.to_rfc3339()}),
        )
        .await;
    assert_eq!(
        (
            updated.title.as_str(),
            updated.priority.as_str(),
            &updated.tags,
            updated.due_date
        ),
        (
            "b",
            "high",
            &vec!["x".to_owned(), "y".to_owned()],
            Some(new_due)
        )
    );
    assert_eq!(
        updated.description.as_deref(),
        Some("unchanged"),
        "PATCH leaves absent fields alone"
    );
    assert!(updated.updated_at >= task.updated_at);
    assert_eq!(api.task(&task.id).await, updated);

    let trail = wait_until(
        "the updated entry in the audit trail",
        EFFECT_TIMEOUT,
        async || {
            let trail = api.task_audit(&task.id).await;
            if trail.iter().any(|e| e.operation == "updated") {
                Ok(trail)
            } else {
                Err(format!("{trail:?}"))
            }
        },
    )
    .await;
    assert_eq!(operations(&trail), ["created", "updated"]);
    let update = &trail[1];
    assert_eq!(
        update.changed_fields(),
        ["due_date", "priority", "tags", "title"],
        "the updated entry records exactly the patched fields: {:?}",
        update.changes
    );
    assert_change(update, "title", json!("a"), json!("b"));
    assert_change(update, "priority", json!("low"), json!("high"));
    assert_change(update, "tags", json!(["x"]), json!(["x", "y"]));
    let due_change = update.change("due_date").expect("a due_date change");
    assert_eq!(
        (
            instant_of(&due_change.old_value()),
            instant_of(&due_change.new_value())
        ),
        (Some(due), Some(new_due)),
        "the due_date change (raw: {:?} -> {:?})",
        due_change.old,
        due_change.new
    );
    assert_eq!(
        update.previous.as_ref().map(|t| t.title.as_str()),
        Some("a")
    );
    assert_eq!(update.current.as_ref().map(|t| t.title.as_str()), Some("b"));

    wait_until(
        "the reminders rescheduled to the new due date",
        EFFECT_TIMEOUT,
        async || {
            same(
                schedule(&api.reminders_for(&task.id).await),
                default_schedule(new_due),
            )
        },
    )
    .await;
    let message = socket
        .wait_for("task.updated", |m| {
            m.kind == "task.updated" && m.task_id == task.id
        })
        .await;
    assert_eq!(message.task.as_ref().map(|t| t.title.as_str()), Some("b"));

    api.delete_task(&task.id).await;
    let gone = api
        .get(&format!("/api/tasks/{}", task.id))
        .await
        .expect(404);
    gone.error_message();
    assert!(api.tasks().await.is_empty(), "a deleted task is not listed");

    let trail = wait_until(
        "the deleted entry in the audit trail",
        EFFECT_TIMEOUT,
        async || {
            let trail = api.task_audit(&task.id).await;
            if trail.iter().any(|e| e.operation == "deleted") {
                Ok(trail)
            } else {
                Err(format!("{trail:?}"))
            }
        },
    )
    .await;
    assert_eq!(
        operations(&trail),
        ["created", "updated", "deleted"],
        "the audit trail outlives the task"
    );
    assert_eq!(
        trail[2].previous.as_ref().map(|t| t.title.as_str()),
        Some("b"),
        "deleted keeps the last state"
    );
    wait_until(
        "no reminders left for the deleted task",
        EFFECT_TIMEOUT,
        async || same(api.reminders_for(&task.id).await, vec![]).map(drop),
    )
    .await;
    let message = socket
        .wait_for("task.deleted", |m| {
            m.kind == "task.deleted" && m.task_id == task.id
        })
        .await;
    assert!(
        message.task.is_none(),
        "task.deleted carries task: null, got {message:?}"
    );
    let heard: Vec<(String, String)> = socket
        .events()
        .into_iter()
        .map(|m| (m.kind, m.task_id))
        .collect();
    let expected: Vec<(String, String)> = ["task.created", "task.updated", "task.deleted"]
        .iter()
        .map(|kind| (kind.to_string(), task.id.clone()))
        .collect();
    assert_eq!(heard, expected, "one message per change, in order");
    other_client
        .wait_for("task.deleted on the second socket", |m| {
            m.kind == "task.deleted" && m.task_id == task.id
        })
        .await;
    let heard_too: Vec<(String, String)> = other_client
        .events()
        .into_iter()
        .map(|m| (m.kind, m.task_id))
        .collect();
    assert_eq!(heard_too, expected, "the second socket hears the same");
}

/// Monthly recurrence keeps the anchor's day of month, and max_occurrences ends a series.
#[tokio::test]
async fn monthly_recurrence_clamps_to_month_end_and_max_occurrences_ends_a_series() {
    let mut env = TestEnv::new();
    let host = env.start().await;
    let user = User::new().await;
    let api = host.api(&user);

    let first = api
        .create_task(&json!({
            "title": "Pay rent",
            "due_date": "2027-01-31T09:00:00Z",
            "is_recurring": true,
            "recurrence_frequency": "monthly",
        }))
        .await;
    let mut current = first.clone();
    for (occurrence, expected_due) in [(2, "2027-02-28T09:00:00Z"), (3, "2027-03-31T09:00:00Z")] {
        api.complete_task(&current.id).await;
        let next = wait_until(
            &format!("occurrence {occurrence} of the monthly series"),
            EFFECT_TIMEOUT,
            async || {
                let tasks = api.tasks().await;
                match series(&tasks, &first.id)
                    .iter()
                    .filter(|t| t.occurrence == occurrence)
                    .collect::<Vec<_>>()[..]
                {
                    [next] => Ok((*next).clone()),
                    ref found => Err(format!("{found:?} in {tasks:?}")),
                }
            },
        )
        .await;
        assert_eq!(
            next.due_date,
            Some(at(expected_due)),
            "occurrence {occurrence} of a Jan 31 monthly series"
        );
        assert_eq!(next.series_id.as_deref(), Some(first.id.as_str()));
        assert!(!next.is_completed);
        current = next;
    }
    let tasks = api.tasks().await;
    assert_eq!(
        series(&tasks, &first.id).len(),
        3,
        "one task per completion: {tasks:?}"
    );

    let limited = api
        .create_task(&json!({
            "title": "Take the pills",
            "due_date": from_now(Duration::days(1)).to_rfc3339(),
            "is_recurring": true,
            "recurrence_frequency": "daily",
            "recurrence_max_occurrences": 2,
        }))
        .await;
    assert_eq!(limited.recurrence_max_occurrences, Some(2));
    api.complete_task(&limited.id).await;
    let second = wait_until(
        "occurrence 2 of the series limited to 2",
        EFFECT_TIMEOUT,
        async || {
            let tasks = api.tasks().await;
            match series(&tasks, &limited.id)[..] {
                [_, second] => Ok(second.clone()),
                ref found => Err(format!("{found:?}")),
            }
        },
    )
    .await;
    assert_eq!(second.occurrence, 2);
    api.complete_task(&second.id).await;
    // The completion reaching the audit consumer shows that the event went
    // out; the recurrence consumer then gets the quiet period to misbehave.
    wait_until(
        "the completion of occurrence 2 in its audit trail",
        EFFECT_TIMEOUT,
        async || {
            same(
                operations(&api.task_audit(&second.id).await),
                vec!["created", "completed"],
            )
            .map(drop)
        },
    )
    .await;
    assert_holds(
        "the series limited to 2 to stay at 2 completed tasks",
        QUIET_PERIOD,
        async || {
            let tasks = api.tasks().await;
            let found: Vec<(i64, bool)> = series(&tasks, &limited.id)
                .iter()
                .map(|t| (t.occurrence, t.is_completed))
                .collect();
            same(found, vec![(1, true), (2, true)]).map(drop)
        },
    )
    .await;
}

/// Another user sees and touches nothing, and hears nothing on their socket.
#[tokio::test]
async fn users_are_isolated_from_each_other() {
    let mut env = TestEnv::new();
    let host = env.start().await;
    let (alice, bob) = (User::new().await, User::new().await);
    let (a, b) = (host.api(&alice), host.api(&bob));
    let alice_socket = Socket::connect(&host, &alice).await;
    let bob_socket = Socket::connect(&host, &bob).await;

    let task = a.create_task(&json!({"title": "alice's secret", "due_date": from_now(Duration::days(2)).to_rfc3339()})).await;
    let task_path = format!("/api/tasks/{}", task.id);
    for reply in [
        b.get(&task_path).await,
        b.patch(&task_path, &json!({"title": "pwned"})).await,
        b.send(Method::POST, &format!("{task_path}/complete"), None)
            .await,
        b.delete(&task_path).await,
        b.get(&format!("/api/audit-logs/{}", task.id)).await,
    ] {
        reply.expect(404).error_message();
    }
    // Not even the message may tell "exists, not yours" from "does not exist".
    let nobody = uuid::Uuid::new_v4().to_string();
    for (theirs, missing) in [
        (
            b.get(&task_path).await,
            b.get(&format!("/api/tasks/{nobody}")).await,
        ),
        (
            b.get(&format!("/api/audit-logs/{}", task.id)).await,
            b.get(&format!("/api/audit-logs/{nobody}")).await,
        ),
    ] {
        assert_eq!(
            (
                theirs.status,
                theirs.error_message().replace(&task.id, "<id>")
            ),
            (
                missing.status,
                missing.error_message().replace(&nobody, "<id>")
            ),
            "{} answers like {} does",
            theirs.request,
            missing.request
        );
    }
    b.get(&format!("/api/audit-logs/user/{}", alice.id))
        .await
        .expect(403)
        .error_message();
    assert!(
        b.tasks().await.is_empty(),
        "bob lists none of alice's tasks"
    );
    assert!(
        b.reminders().await.is_empty(),
        "bob sees none of alice's reminders"
    );
    let untouched = a.task(&task.id).await;
    assert_eq!(untouched, task, "bob's attempts changed nothing");

    a.update_task(&task.id, &json!({"title": "alice's renamed secret"}))
        .await;
    a.complete_task(&task.id).await;
    alice_socket
        .wait_for("task.completed of her own task", |m| {
            m.kind == "task.completed" && m.task_id == task.id
        })
        .await;
    // Bob's socket works (it hears his own change) and heard none of alice's.
    let own = b.create_task(&json!({"title": "bob's"})).await;
    bob_socket
        .wait_for("task.created of his own task", |m| m.task_id == own.id)
        .await;
    assert_holds(
        "bob's socket to carry only bob's task",
        QUIET_PERIOD,
        async || {
            let heard: Vec<(String, String)> = bob_socket
                .events()
                .into_iter()
                .map(|m| (m.kind, m.task_id))
                .collect();
            same(heard, vec![("task.created".to_owned(), own.id.clone())]).map(drop)
        },
    )
    .await;
    assert!(
        alice_socket.events().iter().all(|m| m.task_id != own.id),
        "alice's socket heard bob's task: {:?}",
        alice_socket.events()
    );
    let alice_trail = a.user_audit(&alice.id).await;
    assert!(
        alice_trail
            .iter()
            .all(|e| e.user_id == alice.id && e.task_id == task.id),
        "alice's audit holds only her entries: {alice_trail:?}"
    );
}

/// Without a valid token nothing is served; bad bodies are rejected naming the field.
#[tokio::test]
async fn bad_tokens_and_bad_bodies_are_rejected() {
    let mut env = TestEnv::new();
    let host = env.start().await;
    let (alice, mallory) = (User::new().await, User::new().await);
    let api = host.api(&alice);
    let task = api.create_task(&json!({"title": "guarded"})).await;

    let routes: Vec<(Method, String)> = vec![
        (Method::GET, "/api/tasks".into()),
        (Method::POST, "/api/tasks".into()),
        (Method::GET, format!("/api/tasks/{}", task.id)),
        (Method::PATCH, format!("/api/tasks/{}", task.id)),
        (Method::POST, format!("/api/tasks/{}/complete", task.id)),
        (Method::DELETE, format!("/api/tasks/{}", task.id)),
        (Method::GET, format!("/api/audit-logs/{}", task.id)),
        (Method::GET, format!("/api/audit-logs/user/{}", alice.id)),
        (Method::GET, "/api/notifications".into()),
        (Method::GET, "/api/reminders".into()),
    ];
    let forged = mallory.forge_token_for(&alice);
    let credentials = [
        None,
        Some("Bearer not-a-jwt".to_owned()),
        Some(format!("Bearer {forged}")),
        Some(format!("Basic {}", alice.token)),
        Some(alice.token.clone()),
    ];
    for authorization in &credentials {
        let client = host.api_with_authorization(authorization.as_deref());
        for (method, path) in &routes {
            let body =
                matches!(*method, Method::POST | Method::PATCH).then(|| json!({"title": "x"}));
            let reply = client.send(method.clone(), path, body.as_ref()).await;
            assert_eq!(
                reply.status.as_u16(),
                401,
                "{} with Authorization {authorization:?}: expected 401, got {} {:?}",
                reply.request,
                reply.status,
                reply.text
            );
            reply.error_message();
        }
    }
    let unchanged = api.task(&task.id).await;
    assert_eq!(
        unchanged, task,
        "no unauthenticated request changed the task"
    );
    assert_eq!(
        api.tasks().await.len(),
        1,
        "no unauthenticated request created a task"
    );

    assert_eq!(
        ws_handshake_status(&host.ws_url("/ws")).await,
        401,
        "/ws without a token"
    );
    assert_eq!(
        ws_handshake_status(&host.ws_url("/ws?token=not-a-jwt")).await,
        401,
        "/ws with garbage"
    );
    assert_eq!(
        ws_handshake_status(&host.ws_url(&format!("/ws?token={forged}"))).await,
        401,
        "/ws with a forged token"
    );
    assert_eq!(
        ws_handshake_status(&host.ws_url(&format!("/ws?token={}", alice.token))).await,
        101,
        "/ws with a valid token is accepted"
    );

    let task_path = format!("/api/tasks/{}", task.id);
    let cases = [
        (
            Method::POST,
            "/api/tasks",
            json!({"description": "no title"}),
            "title",
        ),
        (
            Method::POST,
            "/api/tasks",
            json!({"title": "x", "priority": "urgent"}),
            "priority",
        ),
        (
            Method::POST,
            "/api/tasks",
            json!({"title": "x", "due_date": "next tuesday"}),
            "due_date",
        ),
        (
            Method::POST,
            "/api/tasks",
            json!({"title": "x", "due_date": "2027-13-45T00:00:00Z"}),
            "due_date",
        ),
        (
            Method::POST,
            "/api/tasks",
            json!({"title": "x", "is_recurring": true}),
            "recurrence_frequency",
        ),
        (
            Method::POST,
            "/api/tasks",
            json!({"title": "x", "is_recurring": true, "recurrence_frequency": "hourly"}),
            "recurrence_frequency",
        ),
        (
            Method::PATCH,
            task_path.as_str(),
            json!({"priority": "urgent"}),
            "priority",
        ),
        (
            Method::PATCH,
            task_path.as_str(),
            json!({"due_date": "yesterday"}),
            "due_date",
        ),
    ];
    for (method, path, body, field) in cases {
        let reply = api.send(method, path, Some(&body)).await;
        assert!(
            matches!(reply.status.as_u16(), 400 | 422),
            "{} with {body}: expected 400 or 422, got {} {:?}",
            reply.request,
            reply.status,
            reply.text
        );
        let message = reply.error_message();
        assert!(
            message.to_lowercase().contains(field),
            "{} with {body}: the error must name {field:?}, got {message:?}",
            reply.request
        );
    }
    let reply = api.send_raw(Method::POST, "/api/tasks", "{not json").await;
    assert!(
        matches!(reply.status.as_u16(), 400 | 422),
        "{}: got {} {:?}",
        reply.request,
        reply.status,
        reply.text
    );
    reply.error_message();

    assert_eq!(
        api.tasks().await,
        vec![unchanged],
        "no rejected request created or changed a task"
    );
}

/// The user audit route pages with a cursor and loses or repeats nothing.
#[tokio::test]
async fn audit_pagination_returns_every_entry_once_in_order() {
    let mut env = TestEnv::new();
    let host = env.start().await;
    let user = User::new().await;
    let api = host.api(&user);

    // Entries are ordered by time; a few milliseconds between writes keep
    // two of them from sharing a timestamp, so that the expected order is
    // the order of the writes.
    let pause = || tokio::time::sleep(StdDuration::from_millis(15));
    let mut expected: Vec<(String, &str)> = Vec::new();
    let t1 = api.create_task(&json!({"title": "one"})).await;
    expected.push((t1.id.clone(), "created"));
    pause().await;
    let t2 = api.create_task(&json!({"title": "two"})).await;
    expected.push((t2.id.clone(), "created"));
    pause().await;
    api.update_task(&t1.id, &json!({"title": "one, renamed"}))
        .await;
    expected.push((t1.id.clone(), "updated"));
    pause().await;
    let t3 = api.create_task(&json!({"title": "three"})).await;
    expected.push((t3.id.clone(), "created"));
    pause().await;
    api.complete_task(&t2.id).await;
    expected.push((t2.id.clone(), "completed"));
    pause().await;
    api.delete_task(&t1.id).await;
    expected.push((t1.id.clone(), "deleted"));
    pause().await;
    api.update_task(&t3.id, &json!({"priority": "high"})).await;
    expected.push((t3.id.clone(), "updated"));

    let route = format!("/api/audit-logs/user/{}", user.id);
    let all = wait_until(
        &format!("{} entries in the user's audit trail", expected.len()),
        EFFECT_TIMEOUT,
        async || {
            let all = api.user_audit(&user.id).await;
            if all.len() >= expected.len() {
                Ok(all)
            } else {
                Err(format!("{} entries: {all:?}", all.len()))
            }
        },
    )
    .await;
    let sequence: Vec<(String, &str)> = all
        .iter()
        .map(|e| (e.task_id.clone(), e.operation.as_str()))
        .collect();
    assert_eq!(
        sequence, expected,
        "the user's trail, in chronological order"
    );
    assert!(
        all.windows(2).all(|w| w[0].at <= w[1].at),
        "entries are in chronological order"
    );

    for limit in [1, 2, 3] {
        let (paged, sizes) = api.audit_pages(&route, Some(limit)).await;
        assert!(
            sizes.iter().all(|&n| n <= limit as usize),
            "limit={limit}: a page holds at most {limit} entries, got page sizes {sizes:?}"
        );
        assert!(
            sizes.len() >= expected.len().div_ceil(limit as usize),
            "limit={limit}: {} entries need several pages, got page sizes {sizes:?}",
            expected.len()
        );
        let ids: Vec<&Value> = paged.iter().map(|e| &e.id).collect();
        let unique: HashSet<String> = ids.iter().map(|id| id.to_string()).collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "limit={limit}: an entry came twice: {ids:?}"
        );
        assert_eq!(
            ids,
            all.iter().map(|e| &e.id).collect::<Vec<_>>(),
            "limit={limit}: paging yields every entry exactly once, in order (page sizes {sizes:?})"
        );
    }
}

/// A SIGKILL loses and doubles nothing: not right after the last acknowledged
/// write (the outbox must survive), and not while the relay is half-way
/// through a batch (each component applies each event exactly once).
#[tokio::test]
async fn a_crash_loses_and_doubles_nothing() {
    const TASKS: usize = 30;
    let mut env = TestEnv::new();
    let host = env.start().await;
    let user = User::new().await;
    let api = host.api(&user);

    // Phase 1: kill right after the last write is acknowledged.
    let due = from_now(Duration::days(2));
    let created: Vec<Task> = futures::future::join_all((0..TASKS).map(|i| {
        let api = api.clone();
        async move {
            api.create_task(&json!({
                "title": format!("task {i}"),
                "due_date": due.to_rfc3339(),
                "is_recurring": true,
                "recurrence_frequency": "daily",
            }))
            .await
        }
    }))
    .await;
    host.kill().await;

    let host = env.start().await;
    let api = host.api(&user);
    let mut ids: Vec<String> = created.iter().map(|t| t.id.clone()).collect();
    ids.sort();
    let mut listed: Vec<String> = api.tasks().await.into_iter().map(|t| t.id).collect();
    listed.sort();
    assert_eq!(listed, ids, "every acknowledged task survives the crash");
    wait_until(
        &format!("exactly one created entry for each of the {TASKS} tasks after the restart"),
        EFFECT_TIMEOUT * 3,
        async || trails_are(&api, &user, &ids, &["created"]).await,
    )
    .await;
    assert_holds(
        "exactly one created entry per task, and nothing else",
        QUIET_PERIOD,
        async || trails_are(&api, &user, &ids, &["created"]).await,
    )
    .await;

    // Phase 2: complete every task, and kill as soon as the first next
    // instance shows that the relay is working through the completions.
    futures::future::join_all(ids.iter().map(|id| {
        let api = api.clone();
        async move { api.complete_task(id).await }
    }))
    .await;
    let deadline = std::time::Instant::now() + EFFECT_TIMEOUT;
    while api.tasks().await.len() <= TASKS {
        assert!(
            std::time::Instant::now() < deadline,
            "no next instance appeared within {EFFECT_TIMEOUT:?} of completing {TASKS} recurring tasks"
        );
        // Polled faster than `wait_until` does: the point is to kill mid-batch.
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    host.kill().await;

    let host = env.start().await;
    let api = host.api(&user);
    let next_instances = async || {
        let tasks = api.tasks().await;
        let wrong: Vec<(&String, Vec<i64>)> = ids
            .iter()
            .map(|id| {
                (
                    id,
                    series(&tasks, id)
                        .iter()
                        .map(|t| t.occurrence)
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, occurrences)| occurrences[..] != [1, 2])
            .collect();
        if wrong.is_empty() && tasks.len() == 2 * TASKS {
            Ok(())
        } else {
            Err(format!(
                "{} tasks; series without exactly occurrences [1, 2]: {wrong:?}",
                tasks.len()
            ))
        }
    };
    wait_until(
        "exactly one next instance per completed task after the restart",
        EFFECT_TIMEOUT * 3,
        next_instances,
    )
    .await;
    wait_until(
        "created + completed entries for each completed task after the restart",
        EFFECT_TIMEOUT * 3,
        async || trails_are(&api, &user, &ids, &["created", "completed"]).await,
    )
    .await;
    assert_holds(
        "one next instance per series, and created + completed per task",
        QUIET_PERIOD,
        async || {
            next_instances().await?;
            trails_are(&api, &user, &ids, &["created", "completed"]).await
        },
    )
    .await;
}

/// `Ok` when each of `ids` has exactly the audit operations `expected`.
async fn trails_are(
    api: &support::Api,
    user: &User,
    ids: &[String],
    expected: &[&str],
) -> Result<(), String> {
    let trail = api.user_audit(&user.id).await;
    let wrong: Vec<(&str, Vec<&str>)> = ids
        .iter()
        .map(|id| {
            let ops = trail
                .iter()
                .filter(|e| &e.task_id == id)
                .map(|e| e.operation.as_str())
                .collect::<Vec<_>>();
            (id.as_str(), ops)
        })
        .filter(|(_, ops)| ops[..] != *expected)
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} tasks lack exactly {expected:?}: {wrong:?}",
            wrong.len(),
            ids.len()
        ))
    }
}

/// Two hosts on one PostgreSQL database, as behind a load balancer: a change written through
/// one reaches the owner's sockets on both, exactly once each (PostgreSQL `LISTEN`/`NOTIFY`,
/// `sockets/fanout.rs`). One relay (the leader) handles the event; its push fans out.
///
/// PostgreSQL only: SQLite is one instance per database by construction (the test says so and
/// passes there without checking anything).
#[tokio::test]
async fn a_change_reaches_the_owners_socket_on_another_instance() {
    let mut env = TestEnv::new();
    if !env.on_postgres() {
        eprintln!(
            "skipped: several instances on one database need PostgreSQL (set TASKHOST_TEST_DATABASE_URL)"
        );
        return;
    }
    let first = env.start().await;
    let second = env.start().await;
    let user = User::new().await;
    let on_first = Socket::connect(&first, &user).await;
    let on_second = Socket::connect(&second, &user).await;
    let task = second
        .api(&user)
        .create_task(&json!({"title": "written elsewhere"}))
        .await;
    // A second change after it: once it has arrived, the first one can no longer arrive twice
    // (a user's pushes keep their order), so the counts below are final.
    first.api(&user).complete_task(&task.id).await;
    for (name, socket) in [("first", &on_first), ("second", &on_second)] {
        socket
            .wait_for(&format!("task.completed on the {name} instance"), |m| {
                m.kind == "task.completed" && m.task_id == task.id
            })
            .await;
        let kinds: Vec<String> = socket
            .events()
            .iter()
            .filter(|m| m.task_id == task.id)
            .map(|m| m.kind.clone())
            .collect();
        assert_eq!(
            kinds,
            ["task.created", "task.completed"],
            "the {name} instance's socket: each push exactly once, in order"
        );
    }
}
