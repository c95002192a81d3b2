//! End to end through the real Dapr stack: the `taskhost` binary with `TASKHOST_DELIVERY=dapr`
//! next to a real daprd 1.18, Kafka 4 and the Dapr scheduler, on the stack's PostgreSQL.
//!
//! Every event takes the production path: the outbox relay publishes through daprd to Kafka,
//! daprd delivers it back as a CloudEvent (bulk) to `/dapr/events/{topic}`, reminder jobs live
//! in the Dapr scheduler and fire as `POST /job/{name}`, drops travel to `{topic}-dlq`.
//!
//! Needs the local stack (`deploy/local-stack/up.sh`): run `just e2e`, or
//! `deploy/local-stack/e2e.sh`, which builds, starts the stack and runs
//! `cargo test -p taskhost --test e2e_dapr -- --ignored --test-threads=1`. The tests start daprd
//! themselves (`daprd.sh`, idempotent) with the test tokens and leave it running; they listen
//! on the stack's app port (`APP_PORT`, 8080), hence one test at a time. The database is shared
//! and persists: every test uses fresh random users.
//!
//! Settings (environment): `TASKHOST_E2E_DATABASE_URL` (default: the stack's PostgreSQL),
//! `APP_PORT`, `DAPR_HTTP_PORT`, `TASKHOST_STACK_RUN` — the names `deploy/local-stack/env.sh`
//! uses. A failure prints the tails of every taskhost run's stderr and of daprd's log.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, SecondsFormat, SubsecRound as _, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::process::Command;

use support::python_backend::{self, Published, PyTask};
use support::stack::{
    ADMIN_TOKEN, APP_API_TOKEN, DAPR_API_TOKEN, DAPR_TIMEOUT, E2e, PUBSUB, Stack,
    dapr_host_options, wait_for_daprd,
};
use support::{
    Api, AuditEntry, Host, Socket, SocketEvent, Task, User, assert_holds, same, wait_until,
};

/// How long a "nothing more happens" check keeps watching: longer than daprd's redelivery
/// backoff, so a redelivery that would double something has time to arrive.
const QUIET_PERIOD: StdDuration = StdDuration::from_secs(5);

/// Now plus `offset`, to the whole second.
fn from_now(offset: Duration) -> DateTime<Utc> {
    (Utc::now() + offset).trunc_subsecs(0)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn admin(host: &Host) -> Api {
    host.api_with_authorization(Some(&format!("Bearer {ADMIN_TOKEN}")))
}

async fn dead_letters(host: &Host) -> Vec<Value> {
    let list = admin(host)
        .get("/admin/dead-letters")
        .await
        .expect(200)
        .value();
    list.as_array()
        .unwrap_or_else(|| panic!("GET /admin/dead-letters: expected an array, got {list}"))
        .clone()
}

/// A valid `task.created` event for a new task of `user`: (event id, task id, event).
fn task_created_event(user: &User, title: &str) -> (String, String, Value) {
    let event_id = uuid::Uuid::new_v4().to_string();
    let task_id = uuid::Uuid::new_v4().to_string();
    let now = rfc3339(Utc::now());
    let event = json!({
        "event_id": event_id,
        "event_type": "task.created",
        "event_timestamp": now,
        "user_id": user.id,
        "task": {
            "id": task_id, "user_id": user.id, "title": title, "description": null,
            "is_completed": false, "priority": "medium", "due_date": null,
            "is_recurring": false, "recurrence_frequency": null, "tags": [],
            "created_at": now, "updated_at": now,
        },
    });
    (event_id, task_id, event)
}

fn operations(trail: &[AuditEntry]) -> Vec<&str> {
    trail.iter().map(|e| e.operation.as_str()).collect()
}

/// The reminder jobs a task should have: (offset minutes, due at).
fn default_jobs(due: DateTime<Utc>) -> Vec<(i64, DateTime<Utc>)> {
    vec![
        (1440, due - Duration::hours(24)),
        (60, due - Duration::hours(1)),
    ]
}

fn job_name(task_id: &str, offset: i64) -> String {
    format!("reminder-{task_id}-{offset}")
}

/// The `dueTime` of a Dapr job, as an instant.
fn job_due(job: &Value) -> Option<DateTime<Utc>> {
    job["dueTime"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Waits until the Dapr scheduler holds exactly these reminder jobs of the task (and the
/// host's list agrees), each due at its time.
async fn wait_for_jobs(
    stack: &Stack,
    api: &Api,
    task_id: &str,
    want: &[(i64, DateTime<Utc>)],
    what: &str,
) {
    wait_until(
        &format!("the reminder jobs of task {task_id} in the Dapr scheduler ({what})"),
        DAPR_TIMEOUT,
        async || {
            let mut seen = Vec::new();
            for (offset, due) in want {
                let name = job_name(task_id, *offset);
                match stack.job(&name).await {
                    Some(job) if job_due(&job) == Some(*due) => {}
                    Some(job) => seen.push(format!("{name} is {job}, expected due {due}")),
                    None => seen.push(format!("{name} is missing")),
                }
            }
            let listed: Vec<(i64, DateTime<Utc>)> = api
                .reminders_for(task_id)
                .await
                .iter()
                .map(|r| (r.offset_minutes, r.due_at))
                .collect();
            let mut expected = want.to_vec();
            expected.sort_by_key(|(_, due)| *due);
            if listed != expected {
                seen.push(format!("GET /api/reminders lists {listed:?}"));
            }
            if seen.is_empty() {
                Ok(())
            } else {
                Err(seen.join("; "))
            }
        },
    )
    .await;
}

/// Waits until none of these reminder jobs of the task is left, in Dapr or in the host.
async fn wait_for_no_jobs(stack: &Stack, api: &Api, task_id: &str, offsets: &[i64], what: &str) {
    wait_until(
        &format!("the reminder jobs of task {task_id} to be gone ({what})"),
        DAPR_TIMEOUT,
        async || {
            let mut left = Vec::new();
            for offset in offsets {
                let name = job_name(task_id, *offset);
                if let Some(job) = stack.job(&name).await {
                    left.push(format!("{name} still exists: {job}"));
                }
            }
            let listed = api.reminders_for(task_id).await;
            if !listed.is_empty() {
                left.push(format!("GET /api/reminders still lists {listed:?}"));
            }
            if left.is_empty() {
                Ok(())
            } else {
                Err(left.join("; "))
            }
        },
    )
    .await;
}

/// (kind, task id) of socket events, in order.
fn kinds(events: &[SocketEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| (e.kind.clone(), e.task_id.clone()))
        .collect()
}

// ---------------------------------------------------------------------------
// (a) The task lifecycle.
// ---------------------------------------------------------------------------

/// Create, move the due date, complete, delete: each step comes back through Kafka as audit
/// entries, the next recurring instance, WebSocket messages and reminder jobs in the Dapr
/// scheduler that follow the task.
#[tokio::test]
#[ignore = "needs the local Dapr stack: run `just e2e`"]
async fn a_task_lifecycle_through_kafka_audits_recurs_broadcasts_and_moves_dapr_jobs() {
    let mut e2e = E2e::new().await;
    let host = e2e.start().await;
    e2e.step("taskhost ready behind daprd");
    let stack = &e2e.stack;
    let user = User::new().await;
    let api = host.api(&user);
    let socket = Socket::connect(&host, &user).await;

    // Create: a recurring task with the default reminders (24 h and 1 h before).
    let due = from_now(Duration::days(3));
    let first = api
        .create_task(&json!({
            "title": "Water the plants",
            "due_date": due.to_rfc3339(),
            "is_recurring": true,
            "recurrence_frequency": "daily",
        }))
        .await;
    socket
        .wait_for_within("task.created", DAPR_TIMEOUT, |m| {
            m.kind == "task.created" && m.task_id == first.id
        })
        .await;
    wait_for_jobs(stack, &api, &first.id, &default_jobs(due), "after create").await;
    e2e.step("created: WebSocket message and two jobs in the Dapr scheduler");

    // Move the due date: the same jobs, rescheduled.
    let moved = from_now(Duration::days(5));
    api.update_task(&first.id, &json!({"due_date": moved.to_rfc3339()}))
        .await;
    socket
        .wait_for_within("task.updated", DAPR_TIMEOUT, |m| {
            m.kind == "task.updated"
                && m.task_id == first.id
                && m.task.as_ref().and_then(|t| t.due_date) == Some(moved)
        })
        .await;
    wait_for_jobs(
        stack,
        &api,
        &first.id,
        &default_jobs(moved),
        "after the due date moved",
    )
    .await;
    e2e.step("updated: jobs rescheduled to the new due date");

    // Complete: the jobs go, the next instance comes with its own jobs.
    api.complete_task(&first.id).await;
    let next = wait_until(
        "the next instance of the series in GET /api/tasks",
        DAPR_TIMEOUT,
        async || {
            let tasks = api.tasks().await;
            match tasks
                .iter()
                .filter(|t| t.id != first.id)
                .collect::<Vec<_>>()[..]
            {
                [next] => Ok(next.clone()),
                ref others => Err(format!("{} other tasks: {others:?}", others.len())),
            }
        },
    )
    .await;
    assert_eq!(next.series_id.as_deref(), Some(first.id.as_str()));
    assert_eq!(next.occurrence, 2);
    let next_due = moved + Duration::days(1);
    assert_eq!(
        next.due_date,
        Some(next_due),
        "a daily task recurs one day later"
    );
    socket
        .wait_for_within("task.completed", DAPR_TIMEOUT, |m| {
            m.kind == "task.completed" && m.task_id == first.id
        })
        .await;
    socket
        .wait_for_within("task.created of the next instance", DAPR_TIMEOUT, |m| {
            m.kind == "task.created" && m.task_id == next.id
        })
        .await;
    wait_for_no_jobs(stack, &api, &first.id, &[1440, 60], "after completion").await;
    wait_for_jobs(
        stack,
        &api,
        &next.id,
        &default_jobs(next_due),
        "next instance",
    )
    .await;
    e2e.step("completed: next instance, its jobs; the completed task's jobs gone");

    // Delete the next instance: its jobs go.
    api.delete_task(&next.id).await;
    socket
        .wait_for_within("task.deleted", DAPR_TIMEOUT, |m| {
            m.kind == "task.deleted" && m.task_id == next.id
        })
        .await;
    wait_for_no_jobs(stack, &api, &next.id, &[1440, 60], "after deletion").await;
    e2e.step("deleted: jobs gone");

    // The audit trails.
    let trail = wait_until("the first task's audit trail", DAPR_TIMEOUT, async || {
        let trail = api.task_audit(&first.id).await;
        let ops: Vec<String> = operations(&trail).into_iter().map(str::to_owned).collect();
        same(
            ops,
            vec!["created".into(), "updated".into(), "completed".into()],
        )
        .map(|_| trail)
    })
    .await;
    let change = trail[1].change("due_date").unwrap_or_else(|| {
        panic!(
            "the updated entry records the due date change: {:?}",
            trail[1].changes
        )
    });
    assert_eq!(
        (
            support::instant_of(&change.old_value()),
            support::instant_of(&change.new_value())
        ),
        (Some(due), Some(moved)),
        "the updated entry's due_date change"
    );
    assert!(
        trail
            .iter()
            .all(|e| e.user_id == user.id && e.task_id == first.id)
    );
    wait_until(
        "the next instance's audit trail",
        DAPR_TIMEOUT,
        async || {
            same(
                operations(&api.task_audit(&next.id).await),
                vec!["created", "deleted"],
            )
            .map(drop)
        },
    )
    .await;

    // Nothing more happens: no duplicate from a redelivery, no second next instance, no job.
    let expected_socket = vec![
        ("task.created".to_owned(), first.id.clone()),
        ("task.updated".to_owned(), first.id.clone()),
        ("task.completed".to_owned(), first.id.clone()),
        ("task.created".to_owned(), next.id.clone()),
        ("task.deleted".to_owned(), next.id.clone()),
    ];
    assert_holds(
        "the final state: 5 audit entries, one task left, 5 socket messages, no jobs",
        QUIET_PERIOD,
        async || {
            let trail = api.user_audit(&user.id).await;
            let tasks = api.tasks().await;
            let mut heard = kinds(&socket.events());
            heard.sort();
            let mut want = expected_socket.clone();
            want.sort();
            let mut problems = Vec::new();
            if trail.len() != 5 {
                problems.push(format!(
                    "{} audit entries: {:?}",
                    trail.len(),
                    operations(&trail)
                ));
            }
            if tasks.len() != 1 || tasks[0].id != first.id || !tasks[0].is_completed {
                problems.push(format!("tasks {tasks:?}"));
            }
            if heard != want {
                problems.push(format!("socket messages {heard:?}"));
            }
            if !api.reminders().await.is_empty() {
                problems.push("reminders left in GET /api/reminders".to_owned());
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("; "))
            }
        },
    )
    .await;
    for (task, offset) in [
        (&first.id, 1440),
        (&first.id, 60),
        (&next.id, 1440),
        (&next.id, 60),
    ] {
        assert_eq!(stack.job(&job_name(task, offset)).await, None);
    }
    e2e.step("audit trails complete, nothing doubled");
    host.kill().await;
}

// ---------------------------------------------------------------------------
// (b) A reminder job fires through the Dapr scheduler.
// ---------------------------------------------------------------------------

/// A task due in 70 s with a reminder 1 minute before: the job is in the Dapr scheduler,
/// fires ~10 s later as `POST /job/{name}`, and the user's inbox gets exactly one notification.
#[tokio::test]
#[ignore = "needs the local Dapr stack: run `just e2e`"]
async fn a_reminder_job_fires_through_the_dapr_scheduler_into_the_inbox_once() {
    let mut e2e = E2e::new().await;
    let host = e2e.start().await;
    let stack = &e2e.stack;
    let user = User::new().await;
    let api = host.api(&user);

    let due = from_now(Duration::seconds(70));
    let task = api
        .create_task(&json!({
            "title": "Call the dentist",
            "due_date": due.to_rfc3339(),
            "reminder_offsets_minutes": [1],
        }))
        .await;
    let fires_at = due - Duration::minutes(1);
    wait_for_jobs(stack, &api, &task.id, &[(1, fires_at)], "after create").await;
    e2e.step(&format!(
        "job {} scheduled for {fires_at}",
        job_name(&task.id, 1)
    ));
    assert!(
        api.notifications().await.is_empty(),
        "nothing is in the inbox before the reminder is due"
    );

    let until_due = (fires_at - Utc::now()).to_std().unwrap_or_default();
    let notification = wait_until(
        "the reminder's notification in GET /api/notifications",
        until_due + DAPR_TIMEOUT,
        async || match &api.notifications().await[..] {
            [one] => Ok(one.clone()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    assert_eq!(notification.task_id, task.id);
    assert!(
        notification.created_at >= fires_at - Duration::seconds(2),
        "the notification ({}) came before the job was due ({fires_at})",
        notification.created_at
    );
    e2e.step(&format!(
        "notified {} ms after the job was due",
        (notification.created_at - fires_at).num_milliseconds()
    ));
    assert!(
        host.stderr().contains(&job_name(&task.id, 1)),
        "the host logs the job it received"
    );

    assert_holds("exactly one notification", QUIET_PERIOD, async || {
        same(api.notifications().await.len(), 1).map(drop)
    })
    .await;
    wait_for_no_jobs(stack, &api, &task.id, &[1], "after it fired").await;
    e2e.step("one notification; the job is gone from the scheduler and the host");
    host.kill().await;
}

// ---------------------------------------------------------------------------
// (c) RETRY is redelivered.
// ---------------------------------------------------------------------------

/// With PostgreSQL down the host answers RETRY; daprd redelivers (resiliency policy) and, once
/// the database is back, the event is applied exactly once and not dead-lettered.
#[tokio::test]
#[ignore = "needs the local Dapr stack: run `just e2e`"]
async fn a_retry_while_postgres_is_down_is_redelivered_and_applied_once() {
    let mut e2e = E2e::new().await;
    let host = e2e.start().await;
    let user = User::new().await;
    let api = host.api(&user);

    // The subscription delivers (a warm path), so what follows tests the retry alone.
    let warm = api.create_task(&json!({"title": "warm-up"})).await;
    wait_until("the warm-up task's audit entry", DAPR_TIMEOUT, async || {
        same(operations(&api.task_audit(&warm.id).await), vec!["created"]).map(drop)
    })
    .await;
    e2e.step("warm");

    let postgres = e2e.stack.stop_postgres().await;
    e2e.step("PostgreSQL stopped");
    let (event_id, task_id, event) =
        task_created_event(&user, "published while the database is down");
    e2e.stack.publish("task-events", &user.id, &event).await;
    let retry_line = wait_until(
        &format!("a RETRY of event {event_id} in taskhost's stderr"),
        StdDuration::from_secs(60),
        async || {
            host.stderr()
                .lines()
                .find(|l| l.contains(&event_id) && l.to_ascii_lowercase().contains("retry"))
                .map(str::to_owned)
                .ok_or_else(|| "no such line yet".to_owned())
        },
    )
    .await;
    e2e.step(&format!("host answered RETRY: {retry_line}"));
    postgres.start().await;
    e2e.step("PostgreSQL started again (up.sh)");

    let entry = wait_until(
        "the event's audit entry after PostgreSQL came back",
        DAPR_TIMEOUT,
        async || {
            let trail = api.user_audit(&user.id).await;
            trail
                .iter()
                .find(|e| e.event_id == event_id)
                .cloned()
                .ok_or_else(|| format!("trail {:?}", operations(&trail)))
        },
    )
    .await;
    assert_eq!(
        (entry.task_id.as_str(), entry.operation.as_str()),
        (task_id.as_str(), "created")
    );
    e2e.step("audit entry applied after redelivery");
    assert_holds(
        "exactly one audit entry for the event",
        QUIET_PERIOD,
        async || {
            let trail = api.user_audit(&user.id).await;
            same(trail.iter().filter(|e| e.event_id == event_id).count(), 1).map(drop)
        },
    )
    .await;
    let retries = host
        .stderr()
        .lines()
        .filter(|l| l.contains(&event_id) && l.contains("will retry"))
        .count();
    assert!(retries >= 1, "the host answered RETRY at least once");
    let dead: Vec<Value> = dead_letters(&host)
        .await
        .into_iter()
        .filter(|d| d["payload"].as_str().is_some_and(|p| p.contains(&event_id)))
        .collect();
    assert!(
        dead.is_empty(),
        "a retried event is not dead-lettered: {dead:?}"
    );
    e2e.step(&format!(
        "{retries} RETRY answer(s), then applied once; not dead-lettered"
    ));
    host.kill().await;
}

// ---------------------------------------------------------------------------
// (d) DROP goes to the dead-letter topic, with its reason.
// ---------------------------------------------------------------------------

/// An event the host cannot decode is answered DROP with its reason recorded; daprd forwards
/// it to `task-events-dlq`, whose arrival is noted on that same dead letter: the message is
/// listed exactly once. Replaying every pending dead letter of the topic then takes it once.
#[tokio::test]
#[ignore = "needs the local Dapr stack: run `just e2e`"]
async fn a_dropped_event_arrives_on_the_dead_letter_topic_with_its_reason() {
    let mut e2e = E2e::new().await;
    let host = e2e.start().await;
    let user = User::new().await;

    let (event_id, _, mut event) = task_created_event(&user, "this one explodes");
    event["event_type"] = json!("task.exploded");
    e2e.stack.publish("task-events", &user.id, &event).await;

    let records_of_event = async || -> Vec<Value> {
        dead_letters(&host)
            .await
            .into_iter()
            .filter(|d| d["payload"].as_str().is_some_and(|p| p.contains(&event_id)))
            .collect()
    };
    let arrived = wait_until(
        "the dropped event's dead letter to note its arrival on task-events-dlq",
        DAPR_TIMEOUT,
        async || {
            let mine = records_of_event().await;
            mine.iter()
                .find(|d| d["forwarded_to"] == "task-events-dlq")
                .cloned()
                .ok_or_else(|| format!("records of the event: {mine:?}"))
        },
    )
    .await;
    e2e.step(&format!("arrived on task-events-dlq: {arrived}"));
    let stderr = host.stderr();
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("DROP") && l.contains("task.exploded")),
        "the host logs the DROP with its reason"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("dead-letter topic") && l.contains(&event_id)),
        "the host logs the arrival on the dead-letter topic"
    );
    // Give a second copy time to show up if there were one.
    tokio::time::sleep(StdDuration::from_secs(2)).await;
    let mine = records_of_event().await;
    assert_eq!(
        mine.len(),
        1,
        "one dead letter for the dropped message, its arrival on task-events-dlq included: {mine:?}"
    );
    assert_eq!(arrived["topic"], "task-events", "{arrived}");
    assert_eq!(
        arrived["event_id"],
        json!(event_id),
        "the record names the event: {arrived}"
    );
    let reason = arrived["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("task.exploded"),
        "the dead letter keeps the reason of the drop, naming `task.exploded`; got {reason:?}"
    );

    // Replaying every pending dead letter of the event's topic takes this one once: it still
    // does not decode, so it stays pending with the reason, replayed once.
    let replayed = admin(&host)
        .post(
            &format!("/admin/dead-letters/replay?topic=task-events&event_id={event_id}"),
            &json!({}),
        )
        .await
        .expect(200)
        .value();
    e2e.step(&format!(
        "replay of the topic's pending dead letters: {replayed}"
    ));
    let results = replayed["results"].as_array().cloned().unwrap_or_default();
    let ours: Vec<&Value> = results
        .iter()
        .filter(|r| r["id"] == arrived["id"])
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "the dead letter is replayed once: {replayed}"
    );
    assert_eq!(replayed["replayed"], json!(1), "{replayed}");
    assert_eq!(ours[0]["outcome"], "failed", "{replayed}");
    assert!(
        ours[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("does not decode"),
        "{replayed}"
    );
    let after = records_of_event().await;
    assert_eq!(after.len(), 1, "still one dead letter: {after:?}");
    assert_eq!(after[0]["replays"], json!(1), "{after:?}");
    assert_eq!(
        after[0]["replayed_at"],
        Value::Null,
        "it stays pending: {after:?}"
    );
    host.kill().await;
}

// ---------------------------------------------------------------------------
// (e) SIGKILL in the middle of a burst.
// ---------------------------------------------------------------------------

const BURST_USERS: usize = 5;
const BURST_PER_USER: usize = 40;
const BURST_WORKERS_PER_USER: usize = 2;
/// Pause of each worker between two creations: the burst (~50/s) then lasts about 4 s and
/// keeps the relay and daprd's deliveries busy, so the kill cuts all of them mid-way.
const BURST_PACE: StdDuration = StdDuration::from_millis(200);

/// What became of one POST /api/tasks of the burst.
#[derive(Clone, Debug)]
enum Sent {
    /// 201: the task exists.
    Created(Box<Task>),
    /// No answer (the host was killed): it may or may not exist.
    Unknown(String),
}

/// One user's share of the burst.
struct BurstUser {
    user: User,
    titles: Vec<String>,
    next: AtomicUsize,
    sent: Mutex<BTreeMap<usize, Sent>>,
}

/// Sends this user's creations from `next` on, until they are all sent or one gets no
/// answer (then this worker stops: the host is gone).
async fn burst_worker(
    api: Api,
    who: Arc<BurstUser>,
    acked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Acquire) {
        let i = who.next.fetch_add(1, Ordering::AcqRel);
        if i >= who.titles.len() {
            return;
        }
        let body = json!({"title": who.titles[i]});
        match api.try_send(Method::POST, "/api/tasks", Some(&body)).await {
            Ok(reply) => {
                let task: Task = reply.expect(201).json();
                who.sent
                    .lock()
                    .unwrap()
                    .insert(i, Sent::Created(Box::new(task)));
                acked.fetch_add(1, Ordering::AcqRel);
                tokio::time::sleep(BURST_PACE).await;
            }
            Err(e) => {
                who.sent.lock().unwrap().insert(i, Sent::Unknown(e));
                return;
            }
        }
    }
}

/// ~200 creations by 5 users; taskhost is SIGKILLed when half are acknowledged, restarted on
/// the same port and database, and the rest are sent. Every task that exists has exactly one
/// `created` audit entry, no acknowledged task is lost, no socket message is doubled, and the
/// restarted host's sockets hear every task created after the restart.
#[tokio::test]
#[ignore = "needs the local Dapr stack: run `just e2e`"]
async fn a_sigkill_in_the_middle_of_a_burst_loses_and_doubles_nothing() {
    let mut e2e = E2e::new().await;
    let host = e2e.start().await;
    let mut users = Vec::new();
    for u in 0..BURST_USERS {
        let user = User::new().await;
        users.push(Arc::new(BurstUser {
            titles: (0..BURST_PER_USER)
                .map(|i| format!("burst u{u} #{i} {}", user.id))
                .collect(),
            user,
            next: AtomicUsize::new(0),
            sent: Mutex::new(BTreeMap::new()),
        }));
    }
    let mut before = Vec::new();
    for who in &users {
        before.push(Socket::connect(&host, &who.user).await);
    }
    e2e.step("sockets open; burst starts");

    let total = BURST_USERS * BURST_PER_USER;
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for who in &users {
        for _ in 0..BURST_WORKERS_PER_USER {
            workers.push(tokio::spawn(burst_worker(
                host.api(&who.user),
                who.clone(),
                acked.clone(),
                stop.clone(),
            )));
        }
    }
    // Kill when half the burst is acknowledged and deliveries from daprd are under way, so
    // that writes, outbox rows being published and deliveries being handled are all cut.
    wait_until(
        "half of the burst acknowledged and its first deliveries heard",
        StdDuration::from_secs(120),
        async || {
            let n = acked.load(Ordering::Acquire);
            let heard: usize = before.iter().map(|s| s.events().len()).sum();
            if n >= total / 2 && heard >= 10 {
                Ok(())
            } else {
                Err(format!("{n} acknowledged, {heard} heard on the sockets"))
            }
        },
    )
    .await;
    let killed_at = Instant::now();
    host.kill().await;
    stop.store(true, Ordering::Release);
    for worker in workers {
        worker.await.expect("a burst worker panicked");
    }
    let acked_before = acked.load(Ordering::Acquire);
    let unknown: Vec<String> = users
        .iter()
        .flat_map(|w| {
            w.sent
                .lock()
                .unwrap()
                .values()
                .filter_map(|s| match s {
                    Sent::Unknown(e) => Some(e.clone()),
                    Sent::Created(_) => None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let heard_at_kill: usize = before.iter().map(|s| s.events().len()).sum();
    e2e.step(&format!(
        "SIGKILL after {acked_before} acknowledged creations, {heard_at_kill} heard on sockets; \
         {} requests got no answer (e.g. {:?})",
        unknown.len(),
        unknown.first()
    ));

    let host = e2e.start().await;
    let restart = killed_at.elapsed();
    e2e.step(&format!(
        "restarted on the same port in {:.1} s",
        restart.as_secs_f64()
    ));
    let mut after = Vec::new();
    for who in &users {
        after.push(Socket::connect(&host, &who.user).await);
    }
    // The rest of the burst, on the restarted host: every one must succeed.
    let mut rest = Vec::new();
    for who in &users {
        let api = host.api(&who.user);
        let who = who.clone();
        rest.push(tokio::spawn(async move {
            let mut created = Vec::new();
            loop {
                let i = who.next.fetch_add(1, Ordering::AcqRel);
                if i >= who.titles.len() {
                    return created;
                }
                let task = api.create_task(&json!({"title": who.titles[i]})).await;
                who.sent
                    .lock()
                    .unwrap()
                    .insert(i, Sent::Created(Box::new(task.clone())));
                created.push(task.id);
            }
        }));
    }
    let mut created_after: Vec<Vec<String>> = Vec::new();
    for r in rest {
        created_after.push(r.await.expect("a creation after the restart failed"));
    }
    e2e.step(&format!(
        "{} more created after the restart",
        created_after.iter().map(Vec::len).sum::<usize>()
    ));

    // The tasks: every acknowledged one, plus perhaps some of the unanswered ones, each once.
    let mut all_tasks: Vec<Vec<Task>> = Vec::new();
    for who in &users {
        let api = host.api(&who.user);
        let tasks = api.tasks().await;
        let sent = who.sent.lock().unwrap().clone();
        let by_title: HashMap<&str, usize> = who
            .titles
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i))
            .collect();
        let mut seen_titles = HashSet::new();
        for task in &tasks {
            let i = by_title
                .get(task.title.as_str())
                .unwrap_or_else(|| panic!("{}: a task nobody created: {task:?}", who.user.id));
            assert!(
                seen_titles.insert(task.title.clone()),
                "{}: task {:?} exists twice",
                who.user.id,
                task.title
            );
            match &sent[i] {
                Sent::Created(acked) => {
                    assert_eq!(acked.id, task.id, "{}: {:?}", who.user.id, task.title)
                }
                Sent::Unknown(_) => {}
            }
        }
        for (i, s) in &sent {
            if let Sent::Created(acked) = s {
                assert!(
                    tasks.iter().any(|t| t.id == acked.id),
                    "{}: the acknowledged task #{i} {} was lost",
                    who.user.id,
                    acked.id
                );
            }
        }
        all_tasks.push(tasks);
    }
    let existing: usize = all_tasks.iter().map(Vec::len).sum();
    e2e.step(&format!(
        "{existing} tasks exist ({total} sent), none lost, none doubled"
    ));

    // Audit: one created entry per existing task, eventually, and nothing else.
    let count_created = |trail: &[AuditEntry], id: &str| {
        trail
            .iter()
            .filter(|e| e.task_id == id && e.operation == "created")
            .count()
    };
    for (who, tasks) in users.iter().zip(&all_tasks) {
        let api = host.api(&who.user);
        wait_until(
            &format!(
                "a created audit entry for each of {}'s {} tasks",
                who.user.id,
                tasks.len()
            ),
            DAPR_TIMEOUT * 2,
            async || {
                let trail = api.user_audit(&who.user.id).await;
                let missing: Vec<&str> = tasks
                    .iter()
                    .filter(|t| count_created(&trail, &t.id) == 0)
                    .map(|t| t.id.as_str())
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{} without: {missing:?}", missing.len()))
                }
            },
        )
        .await;
    }
    e2e.step("every task has its created entry");
    assert_holds(
        "exactly one created entry per task, and only those, for every user",
        QUIET_PERIOD,
        async || {
            for (who, tasks) in users.iter().zip(&all_tasks) {
                let trail = host.api(&who.user).user_audit(&who.user.id).await;
                let wrong: Vec<(&str, usize)> = tasks
                    .iter()
                    .map(|t| (t.id.as_str(), count_created(&trail, &t.id)))
                    .filter(|(_, n)| *n != 1)
                    .collect();
                if !wrong.is_empty() || trail.len() != tasks.len() {
                    return Err(format!(
                        "{}: {} entries for {} tasks; not exactly one created: {wrong:?}",
                        who.user.id,
                        trail.len(),
                        tasks.len()
                    ));
                }
            }
            Ok(())
        },
    )
    .await;
    e2e.step("audit consistent");

    // Sockets: tasks created after the restart reach the new sockets; nothing is heard twice
    // across the old and the new socket, and nothing of another user's.
    for ((who, socket), created) in users.iter().zip(&after).zip(&created_after) {
        wait_until(
            &format!(
                "{}'s new socket to hear the {} tasks created after the restart",
                who.user.id,
                created.len()
            ),
            DAPR_TIMEOUT,
            async || {
                let heard: HashSet<String> =
                    socket.events().into_iter().map(|e| e.task_id).collect();
                let missing: Vec<&String> =
                    created.iter().filter(|id| !heard.contains(*id)).collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("missing {missing:?}"))
                }
            },
        )
        .await;
    }
    assert_holds(
        "no socket message doubled or foreign",
        QUIET_PERIOD,
        async || {
            for (((who, old), new), tasks) in users.iter().zip(&before).zip(&after).zip(&all_tasks)
            {
                let ids: HashSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
                let mut count: HashMap<String, usize> = HashMap::new();
                for e in old.events().into_iter().chain(new.events()) {
                    if e.kind != "task.created" || !ids.contains(e.task_id.as_str()) {
                        return Err(format!(
                            "{}: unexpected message {} {}",
                            who.user.id, e.kind, e.task_id
                        ));
                    }
                    *count.entry(e.task_id).or_default() += 1;
                }
                let doubled: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
                if !doubled.is_empty() {
                    return Err(format!("{}: heard twice: {doubled:?}", who.user.id));
                }
            }
            Ok(())
        },
    )
    .await;
    let heard_old: usize = before.iter().map(|s| s.events().len()).sum();
    let heard_new: usize = after.iter().map(|s| s.events().len()).sum();
    e2e.step(&format!(
        "sockets consistent: {heard_old} messages before the kill, {heard_new} after, none twice"
    ));

    // Nothing of the burst was dead-lettered.
    let dead: Vec<Value> = dead_letters(&host)
        .await
        .into_iter()
        .filter(|d| {
            let payload = d["payload"].as_str().unwrap_or_default();
            users.iter().any(|w| payload.contains(&w.user.id))
        })
        .collect();
    assert!(
        dead.is_empty(),
        "events of the burst were dead-lettered: {dead:?}"
    );
    host.kill().await;
}

// ---------------------------------------------------------------------------
// Two replicas: two taskhost + daprd pairs on one database.
// ---------------------------------------------------------------------------

/// A free port on 127.0.0.1 (bound and released; a race with another process is possible
/// and would show as daprd or taskhost failing to listen, with its log).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// The Helm chart's socket fan-out Subscription (deploy/helm/taskhost/templates/
/// dapr-socket-fanout.yaml with the default values), for the standalone daprds of this test.
const SOCKET_FANOUT_SUBSCRIPTION: &str = "apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: taskhost-task-updates-fanout
spec:
  pubsubname: pubsub-kafka-sockets
  topic: task-updates
  routes:
    default: /dapr/sockets/task-updates
  deadLetterTopic: task-updates-dlq
  bulkSubscribe:
    enabled: true
    maxMessagesCount: 100
    maxAwaitDurationMs: 40
scopes:
  - taskhost
";

/// One replica: a daprd (a child of the test, its own ports) and the taskhost it fronts.
struct Replica {
    daprd: tokio::process::Child,
    host: Host,
    dapr_http_port: u16,
}

impl Replica {
    /// Starts daprd with `resources` (the project's Dapr files plus the fan-out Subscription),
    /// then taskhost with the socket fan-out through Dapr, as the chart configures a replica.
    ///
    /// daprd's log goes to the test's directory, never into `resources`: daprd >= 1.18
    /// hot-reloads its resources directory, and a standalone daprd takes any change there for a
    /// new Configuration and restarts its runtime (`Received Configuration CREATED event ...
    /// triggering SIGHUP reload`), so a log written into it restarts daprd, whose restart writes
    /// the log, and so on for ever.
    async fn start(e2e: &mut E2e, name: &str, resources: &std::path::Path) -> Self {
        let (app_port, http, grpc, internal, metrics) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        let log_path = e2e.env.log_path(&format!("daprd-{name}.log"));
        let log = std::fs::File::create(&log_path).expect("daprd log file");
        e2e.env
            .tail_on_failure(&format!("daprd {name} log"), &log_path);
        let daprd = Command::new("bash")
            .arg("deploy/local-stack/daprd.sh")
            .args(["--foreground", "--app-port", &app_port.to_string()])
            .arg("--resources-path")
            .arg(resources)
            .current_dir(&e2e.stack.repo)
            .env("TASKHOST_STACK_RUN", &e2e.stack.run_dir)
            .env("DAPR_HTTP_PORT", http.to_string())
            .env("DAPR_GRPC_PORT", grpc.to_string())
            .env("DAPR_INTERNAL_GRPC_PORT", internal.to_string())
            .env("DAPR_METRICS_PORT", metrics.to_string())
            .env("APP_API_TOKEN", APP_API_TOKEN)
            .env("DAPR_API_TOKEN", DAPR_API_TOKEN)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("daprd log file"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start daprd.sh --foreground");
        wait_for_daprd(http, DAPR_TIMEOUT).await;
        let options = dapr_host_options(SocketAddr::from(([127, 0, 0, 1], app_port)), http)
            .env("TASKHOST_DAPR_SOCKET_FANOUT", "true");
        let host = e2e.env.start_with(&options).await;
        Self {
            daprd,
            host,
            dapr_http_port: http,
        }
    }

    /// Waits until this replica's daprd has both the app's subscriptions and the fan-out one.
    async fn wait_for_subscriptions(&self) {
        let sidecar = Api::at(&format!("http://127.0.0.1:{}", self.dapr_http_port))
            .with_header("dapr-api-token", DAPR_API_TOKEN);
        wait_until(
            "daprd to list the app's and the fan-out subscriptions",
            DAPR_TIMEOUT,
            async || {
                let metadata = sidecar.get("/v1.0/metadata").await.expect(200).value();
                let subs: HashSet<(String, String)> = metadata["subscriptions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        let field = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
                        (field("pubsubname"), field("topic"))
                    })
                    .collect();
                let want = [
                    (PUBSUB, "task-events"),
                    (PUBSUB, "reminders"),
                    (PUBSUB, "task-updates"),
                    ("pubsub-kafka-sockets", "task-updates"),
                ];
                if want
                    .iter()
                    .all(|(p, t)| subs.contains(&(p.to_string(), t.to_string())))
                {
                    Ok(())
                } else {
                    Err(format!("subscriptions {subs:?}"))
                }
            },
        )
        .await;
    }

    /// Stops daprd gracefully (it leaves its consumer groups at once, so nothing waits for a
    /// session timeout), then kills it if it does not exit.
    async fn stop_daprd(mut self) {
        if let Some(pid) = self.daprd.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(StdDuration::from_secs(15), self.daprd.wait())
            .await
            .is_err()
        {
            let _ = self.daprd.kill().await;
        }
        drop(self.host);
    }
}

/// With two replicas — two taskhost + daprd pairs on one database, what the chart's
/// `replicaCount: 2` runs — a change made through either one reaches the owner's sockets on
/// both (each sidecar's own consumer group on `pubsub-kafka-sockets`), and is handled once
/// (the app id's shared group on `pubsub-kafka`, one exactly-once record).
#[tokio::test]
#[ignore = "needs the local Dapr stack: run `just e2e`"]
async fn two_replicas_push_each_change_to_the_owners_sockets_on_both_and_handle_it_once() {
    let mut e2e = E2e::new().await;
    // The stack's daprd has the same app id, so it would share the consumer group: stop it
    // (the next test's E2e::new starts it again).
    e2e.stack
        .sh("stop the stack's daprd", "deploy/local-stack/daprd.sh stop")
        .await;
    let resources = tempfile::tempdir().expect("a temporary resources dir");
    for file in [
        "pubsub-kafka.yaml",
        "pubsub-kafka-sockets.yaml",
        "resiliency.yaml",
        "config.yaml",
    ] {
        std::fs::copy(
            e2e.stack.repo.join("deploy/dapr").join(file),
            resources.path().join(file),
        )
        .unwrap_or_else(|e| panic!("copy deploy/dapr/{file}: {e}"));
    }
    std::fs::write(
        resources.path().join("subscription-socket-fanout.yaml"),
        SOCKET_FANOUT_SUBSCRIPTION,
    )
    .expect("write the fan-out subscription");

    let a = Replica::start(&mut e2e, "a", resources.path()).await;
    let b = Replica::start(&mut e2e, "b", resources.path()).await;
    a.wait_for_subscriptions().await;
    b.wait_for_subscriptions().await;
    e2e.step("two taskhost + daprd pairs ready");

    let user = User::new().await;
    let socket_a = Socket::connect(&a.host, &user).await;
    let socket_b = Socket::connect(&b.host, &user).await;
    let (api_a, api_b) = (a.host.api(&user), b.host.api(&user));

    // A new sockets group starts at the newest offset once Kafka has assigned it the
    // partition: until both sidecars hold theirs, a push can miss one. Warm up until a change
    // reaches both sockets.
    let warm_up = Instant::now();
    let mut warmed = false;
    for i in 0.. {
        let t = api_a
            .create_task(&json!({"title": format!("warm-up {i}")}))
            .await;
        let seen = |s: &Socket| {
            s.events()
                .iter()
                .any(|e| e.kind == "task.created" && e.task_id == t.id)
        };
        let deadline = Instant::now() + StdDuration::from_secs(3);
        while Instant::now() < deadline && !(seen(&socket_a) && seen(&socket_b)) {
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        if seen(&socket_a) && seen(&socket_b) {
            warmed = true;
            break;
        }
        if warm_up.elapsed() > StdDuration::from_secs(90) {
            break;
        }
    }
    assert!(
        warmed,
        "after 90 s no change had reached the user's sockets on both replicas; socket a: {:?}, socket b: {:?}",
        socket_a.events(),
        socket_b.events()
    );
    e2e.step("both sidecars' socket groups receive pushes");

    // Through each replica's API in turn: both sockets get each change, once.
    for (via, api) in [("a", &api_a), ("b", &api_b)] {
        let task = api
            .create_task(&json!({"title": format!("made through replica {via}")}))
            .await;
        let is_it = |e: &SocketEvent| e.kind == "task.created" && e.task_id == task.id;
        socket_a
            .wait_for_within(
                &format!("task {} on replica a", task.id),
                DAPR_TIMEOUT,
                is_it,
            )
            .await;
        socket_b
            .wait_for_within(
                &format!("task {} on replica b", task.id),
                DAPR_TIMEOUT,
                is_it,
            )
            .await;
        assert_holds(
            "each socket got the change once, and it was audited once",
            QUIET_PERIOD,
            async || {
                for (name, s) in [("a", &socket_a), ("b", &socket_b)] {
                    let n = s.events().iter().filter(|e| is_it(e)).count();
                    if n != 1 {
                        return Err(format!("socket on replica {name} got it {n} times"));
                    }
                }
                let trail = api_a.task_audit(&task.id).await;
                if operations(&trail) != ["created"] {
                    return Err(format!("audit trail {:?}", operations(&trail)));
                }
                Ok(())
            },
        )
        .await;
        e2e.step(&format!(
            "a task made through replica {via}: on both sockets once, audited once"
        ));
    }
    a.stop_daprd().await;
    b.stop_daprd().await;
}

// ---------------------------------------------------------------------------
// (g) The existing Python backend as a producer, through its own sidecar.
// ---------------------------------------------------------------------------

/// The Python backend's pub/sub component (its `k8s/dapr-components/kafka-pubsub.yaml`,
/// branch `006-event-driven-dapr`): the same settings, the stack's Kafka for its brokers, and
/// no `namespace` (standalone daprd).
const BACKEND_PUBSUB: &str = "apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: kafka-pubsub
spec:
  type: pubsub.kafka
  version: v1
  metadata:
  - name: brokers
    envRef: TASKHOST_KAFKA_BROKERS
  - name: authType
    value: none
  - name: consumerGroup
    value: dapr-group
  - name: clientID
    value: dapr-kafka-client
  - name: disableAutoCommit
    value: \"false\"
  - name: maxMessageBytes
    value: 1048576
  - name: consumeRetryInterval
    value: 200ms
";

/// The operations of a task's audit trail, or why there are none yet (the route answers 404
/// until the task's first entry).
async fn trail_operations(api: &Api, task_id: &str) -> Result<Vec<String>, String> {
    let reply = api.get(&format!("/api/audit-logs/{task_id}")).await;
    if reply.status.as_u16() == 404 {
        return Err(format!("no trail yet: {}", reply.text));
    }
    let page: support::AuditPage = reply.expect(200).json();
    Ok(page.entries.into_iter().map(|e| e.operation).collect())
}

/// The Python backend's sidecar: a daprd of its own (app id `backend`, as its Helm chart names
/// it) with its pub/sub component `kafka-pubsub`, on the same Kafka as taskhost's. The backend
/// itself only publishes, so no app listens behind it.
struct BackendSidecar {
    daprd: tokio::process::Child,
    api: Api,
    _resources: tempfile::TempDir,
}

impl BackendSidecar {
    async fn start(e2e: &mut E2e) -> Self {
        let resources = tempfile::tempdir().expect("a temporary resources dir");
        std::fs::write(resources.path().join("kafka-pubsub.yaml"), BACKEND_PUBSUB)
            .expect("write kafka-pubsub.yaml");
        std::fs::copy(
            e2e.stack.repo.join("deploy/dapr/config.yaml"),
            resources.path().join("config.yaml"),
        )
        .expect("copy deploy/dapr/config.yaml");
        let (app_port, http, grpc, internal, metrics) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        // Not into `resources`: daprd >= 1.18 reloads on any change there (Replica::start).
        let log_path = e2e.env.log_path("daprd-backend.log");
        let log = std::fs::File::create(&log_path).expect("daprd log file");
        e2e.env.tail_on_failure("daprd backend log", &log_path);
        let daprd = Command::new("bash")
            .arg("deploy/local-stack/daprd.sh")
            .args(["--foreground", "--app-id", "backend"])
            .args(["--app-port", &app_port.to_string()])
            .arg("--resources-path")
            .arg(resources.path())
            .current_dir(&e2e.stack.repo)
            .env("TASKHOST_STACK_RUN", &e2e.stack.run_dir)
            .env("DAPR_HTTP_PORT", http.to_string())
            .env("DAPR_GRPC_PORT", grpc.to_string())
            .env("DAPR_INTERNAL_GRPC_PORT", internal.to_string())
            .env("DAPR_METRICS_PORT", metrics.to_string())
            // The backend sends no dapr-api-token.
            .env_remove("APP_API_TOKEN")
            .env_remove("DAPR_API_TOKEN")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("daprd log file"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start daprd.sh --foreground");
        wait_for_daprd(http, DAPR_TIMEOUT).await;
        Self {
            daprd,
            api: Api::at(&format!("http://127.0.0.1:{http}")),
            _resources: resources,
        }
    }

    /// What its publisher does: `POST /v1.0/publish/kafka-pubsub/{topic}` with the JSON event,
    /// no partition key. daprd answers 204 (which that publisher logs as a failure).
    async fn publish(&self, p: &Published) {
        self.publish_on(&p.topic, p).await;
    }

    async fn publish_on(&self, topic: &str, p: &Published) {
        self.api
            .post(
                &format!("/v1.0/publish/{}/{topic}", python_backend::PUBSUB),
                &p.body,
            )
            .await
            .expect(204);
    }

    async fn stop(mut self) {
        if let Some(pid) = self.daprd.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(StdDuration::from_secs(15), self.daprd.wait())
            .await
            .is_err()
        {
            let _ = self.daprd.kill().await;
        }
    }
}

/// The Python backend's task API, publishing through its own sidecar with its component name,
/// topics and event shapes (the requests captured from its code, `support::python_backend`),
/// to taskhost behind its own daprd on the same Kafka: created → updated (on `task-updates`) →
/// completed is audited once per operation with the update's changes; a reminder whose time
/// has passed reaches the inbox once; a future one is a job due at `remindAt` in the Dapr
/// scheduler; a cancelled one is removed; redelivering any of them changes nothing.
#[tokio::test]
#[ignore = "needs the local Dapr stack: run `just e2e`"]
async fn the_python_backend_publishing_through_its_sidecar_is_audited_and_its_reminders_honoured() {
    let mut e2e = E2e::new().await;
    let host = e2e.start().await;
    let backend = BackendSidecar::start(&mut e2e).await;
    e2e.step("taskhost behind its daprd; the backend's daprd with kafka-pubsub");
    let stack = &e2e.stack;
    let user = User::new().await;
    let api = host.api(&user);

    // Create: its task event on task-events, then its reminder for 15 minutes before.
    let mut rent = PyTask::new(
        &user.id,
        "Pay rent",
        from_now(Duration::days(2)),
        15,
        "push",
        Some(json!({"enabled": true, "pattern": "monthly"})),
    );
    let created = rent.created();
    backend.publish(&created).await;
    backend.publish(&rent.reminder("scheduled")).await;
    let remind_at = rent.remind_at();
    wait_for_jobs(stack, &api, &rent.id, &[(15, remind_at)], "after create").await;
    wait_until("the created entry", DAPR_TIMEOUT, async || {
        same(
            trail_operations(&api, &rent.id).await?,
            vec!["created".into()],
        )
        .map(drop)
    })
    .await;
    e2e.step("created: audited; one job due at remindAt in the Dapr scheduler");

    // Update, on task-updates, with previousTaskData as it sends it (equal to taskData), and
    // its reminder again under a new id.
    let updated = rent.updated(|t| {
        t["title"] = json!("Pay the rent");
        t["priority"] = json!("medium");
    });
    assert_eq!(updated.topic, "task-updates");
    backend.publish(&updated).await;
    backend.publish(&rent.reminder("scheduled")).await;
    let trail = wait_until("the updated entry", DAPR_TIMEOUT, async || {
        let trail = api.task_audit(&rent.id).await;
        same(operations(&trail), vec!["created", "updated"]).map(|_| trail.clone())
    })
    .await;
    let update = &trail[1];
    assert_eq!(update.changed_fields(), ["priority", "title"]);
    let title = update.change("title").expect("a title change");
    assert_eq!(
        (title.old_value(), title.new_value()),
        (json!("Pay rent"), json!("Pay the rent"))
    );
    let priority = update.change("priority").expect("a priority change");
    assert_eq!(
        (priority.old_value(), priority.new_value()),
        (json!("high"), json!("medium"))
    );
    wait_for_jobs(stack, &api, &rent.id, &[(15, remind_at)], "after update").await;
    e2e.step("updated on task-updates: audited with its changes; still one job");

    // Complete: audited, the job goes, the monthly series goes on once.
    let completed = rent.completed();
    backend.publish(&completed).await;
    wait_until("the completed entry", DAPR_TIMEOUT, async || {
        same(
            operations(&api.task_audit(&rent.id).await),
            vec!["created", "updated", "completed"],
        )
        .map(drop)
    })
    .await;
    wait_for_no_jobs(stack, &api, &rent.id, &[15], "after completion").await;
    let next = wait_until("the next instance", DAPR_TIMEOUT, async || {
        match &api.tasks().await[..] {
            [next] if next.series_id.as_deref() == Some(rent.id.as_str()) => Ok(next.clone()),
            other => Err(format!("tasks {other:?}")),
        }
    })
    .await;
    e2e.step("completed: audited, job gone, next instance created");

    // A reminder whose time has passed: due in 10 minutes, reminding 15 before.
    let bank = PyTask::new(
        &user.id,
        "Call the bank",
        from_now(Duration::minutes(10)),
        15,
        "both",
        None,
    );
    let past = bank.reminder("scheduled");
    backend.publish(&bank.created()).await;
    backend.publish(&past).await;
    let notification =
        wait_until(
            "the bank reminder in the inbox",
            DAPR_TIMEOUT,
            async || match &api.notifications().await[..] {
                [one] => Ok(one.clone()),
                other => Err(format!("{other:?}")),
            },
        )
        .await;
    assert_eq!(notification.task_id, bank.id);
    assert_eq!(notification.notification_method.as_deref(), Some("both"));
    e2e.step("a reminder whose time had passed: one notification, method kept");

    // A future reminder, then cancelled.
    let passport = PyTask::new(
        &user.id,
        "Renew the passport",
        from_now(Duration::days(3)),
        60,
        "email",
        None,
    );
    let scheduled = passport.reminder("scheduled");
    backend.publish(&passport.created()).await;
    backend.publish(&scheduled).await;
    wait_for_jobs(
        stack,
        &api,
        &passport.id,
        &[(60, passport.remind_at())],
        "a future reminder",
    )
    .await;
    let cancelled = passport.reminder("cancelled");
    backend.publish(&cancelled).await;
    wait_for_no_jobs(stack, &api, &passport.id, &[60], "cancelled").await;
    e2e.step("a future reminder: a job due at remindAt; cancelled: gone");

    // Edited, then completed at once, as a user clicking "done" right after an edit: the
    // update, its reminder and the completion go out back to back on three topics, and reach
    // taskhost in any order. No job is left for the completed task.
    let mut quick = PyTask::new(
        &user.id,
        "Book the flights",
        from_now(Duration::days(4)),
        30,
        "push",
        None,
    );
    backend.publish(&quick.created()).await;
    backend.publish(&quick.reminder("scheduled")).await;
    wait_for_jobs(
        stack,
        &api,
        &quick.id,
        &[(30, quick.remind_at())],
        "before the edit",
    )
    .await;
    let edit = quick.updated(|t| t["title"] = json!("Book the flights to Lisbon"));
    let edit_reminder = quick.reminder("scheduled");
    let done = quick.completed();
    for p in [&edit, &edit_reminder, &done] {
        backend.publish(p).await;
    }
    wait_until("the quick task's three entries", DAPR_TIMEOUT, async || {
        // In the order taskhost handled them, which Kafka does not fix across topics.
        let mut ops = trail_operations(&api, &quick.id).await?;
        ops.sort_unstable();
        same(
            ops,
            vec!["completed".into(), "created".into(), "updated".into()],
        )
        .map(drop)
    })
    .await;
    wait_for_no_jobs(
        stack,
        &api,
        &quick.id,
        &[30],
        "edited then completed at once",
    )
    .await;
    e2e.step("edited then completed at once: no job left, whatever the order");

    // Redeliver everything (the same events, the same ids), the update on both topics.
    for p in [
        &created, &updated, &completed, &past, &scheduled, &cancelled,
    ] {
        backend.publish(p).await;
    }
    backend.publish_on("task-events", &updated).await;
    backend.publish(&bank.reminder("scheduled")).await;
    assert_holds("nothing changes on redelivery", QUIET_PERIOD, async || {
        let mut problems = Vec::new();
        let ops: Vec<String> = operations(&api.task_audit(&rent.id).await)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if ops != ["created", "updated", "completed"] {
            problems.push(format!("rent's audit trail {ops:?}"));
        }
        let inbox = api.notifications().await;
        if inbox.len() != 1 {
            problems.push(format!("inbox {inbox:?}"));
        }
        let tasks = api.tasks().await;
        if tasks.len() != 1 {
            problems.push(format!("tasks {tasks:?}"));
        }
        let jobs: Vec<_> = api
            .reminders()
            .await
            .into_iter()
            .filter(|r| r.task_id != next.id)
            .collect();
        if !jobs.is_empty() {
            problems.push(format!("jobs {jobs:?}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    })
    .await;
    for (task, offset) in [
        (&rent.id, 15),
        (&passport.id, 60),
        (&bank.id, 15),
        (&quick.id, 30),
    ] {
        assert_eq!(stack.job(&job_name(task, offset)).await, None);
    }
    let ours: Vec<Value> = dead_letters(&host)
        .await
        .into_iter()
        .filter(|d| d.to_string().contains(&user.id))
        .collect();
    assert!(ours.is_empty(), "dead letters: {ours:?}");
    e2e.step("redelivered: nothing doubled, no dead letter");

    // Leave no job behind: the next instance is taskhost's own task.
    api.delete_task(&next.id).await;
    wait_for_no_jobs(stack, &api, &next.id, &[15], "next instance deleted").await;
    backend.stop().await;
    host.kill().await;
}
