//! The existing Python backend's events, as its code publishes them (`support::python_backend`,
//! built on the requests captured from it), delivered to the real `taskhost` binary the way its
//! daprd delivers them: every operation reaches the audit trail once whichever topic it came
//! on, with the fields it changed; its reminders become jobs, notify once, carry their delivery
//! method, and can be withdrawn; an envelope with attributes no extension can hold is read from
//! its `data`.
//!
//! The test plays daprd (as `dapr_callbacks.rs` does): taskhost runs with
//! `TASKHOST_DELIVERY=dapr`, a closed sidecar port (its relay holds what it would publish), and
//! the deliveries come as CloudEvents to `/dapr/events/{topic}`. The same backend through a
//! real daprd and Kafka is `e2e_dapr.rs`. Runs on SQLite, or on PostgreSQL when
//! `TASKHOST_TEST_DATABASE_URL` is set.

mod support;

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use sqlx::Row as _;
use taskhost::storage::Db;

use support::python_backend::{Published, PyTask};
use support::{Api, Host, HostOptions, TestEnv, User, assert_holds, same, wait_until};

const APP_TOKEN: &str = "app-token-for-the-python-backend-test";
const BINDING: &str = "notify-out";

/// How long "nothing more happens" is watched.
const QUIET: std::time::Duration = std::time::Duration::from_secs(2);

async fn start(env: &mut TestEnv) -> Host {
    env.start_with(
        &HostOptions::dapr_without_sidecar(APP_TOKEN)
            .env("TASKHOST_NOTIFICATION_BINDING", BINDING)
            .env_remove("TASKHOST_DAPR_BULK"),
    )
    .await
}

/// The CloudEvent taskhost's daprd delivers for what the backend published through its own.
fn envelope(p: &Published) -> Value {
    json!({
        "data": p.body,
        "datacontenttype": "application/json",
        "id": uuid::Uuid::new_v4().to_string(),
        "pubsubname": "pubsub-kafka",
        "source": "backend",
        "specversion": "1.0",
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "topic": p.topic,
        "traceid": "", "traceparent": "", "tracestate": "",
        "type": "com.dapr.event.sent",
    })
}

/// Delivers `p` on `topic` as daprd would, and expects `SUCCESS`.
async fn deliver_on(host: &Host, topic: &str, p: &Published) {
    deliver_envelope(host, topic, &envelope(p)).await;
}

async fn deliver(host: &Host, p: &Published) {
    deliver_on(host, &p.topic, p).await;
}

async fn deliver_envelope(host: &Host, topic: &str, envelope: &Value) {
    let reply = host
        .as_daprd(APP_TOKEN)
        .with_header("content-type", "application/cloudevents+json")
        .post(&format!("/dapr/events/{topic}"), envelope)
        .await
        .expect(200);
    assert_eq!(
        reply.value()["status"],
        "SUCCESS",
        "{topic}: {envelope}\n{}",
        reply.text
    );
}

fn ops(api_trail: &[support::AuditEntry]) -> Vec<String> {
    api_trail.iter().map(|e| e.operation.clone()).collect()
}

#[tokio::test]
async fn every_operation_is_audited_once_with_its_changes_whichever_topic_it_came_on() {
    let mut env = TestEnv::new();
    let host = start(&mut env).await;
    let user = User::new().await;
    let api = host.api(&user);
    let mut task = PyTask::new(
        &user.id,
        "Pay rent",
        Utc::now() + Duration::days(2),
        15,
        "push",
        None,
    );

    let created = task.created();
    assert_eq!(created.topic, "task-events");
    deliver(&host, &created).await;
    let updated = task.updated(|t| {
        t["title"] = json!("Pay the rent");
        t["priority"] = json!("medium");
    });
    assert_eq!(updated.topic, "task-updates");
    assert_eq!(
        updated.body["previousTaskData"], updated.body["taskData"],
        "as that backend sends it"
    );
    deliver(&host, &updated).await;
    let completed = task.completed();
    deliver(&host, &completed).await;

    let trail = api.task_audit(&task.id).await;
    assert_eq!(ops(&trail), ["created", "updated", "completed"]);
    let update = &trail[1];
    assert_eq!(update.event_id, updated.event_id());
    let mut fields = update.changed_fields();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["priority", "title"],
        "the update's own changes, from the state taskhost recorded: {:?}",
        update.changes
    );
    let title = update.change("title").unwrap();
    assert_eq!(
        (title.old_value(), title.new_value()),
        (json!("Pay rent"), json!("Pay the rent"))
    );
    let priority = update.change("priority").unwrap();
    assert_eq!(
        (priority.old_value(), priority.new_value()),
        (json!("high"), json!("medium"))
    );
    let completion = &trail[2];
    assert_eq!(
        completion
            .change("is_completed")
            .map(|c| (c.old_value(), c.new_value())),
        Some((json!(false), json!(true)))
    );
    assert!(
        completion.change("title").is_none(),
        "the completion changed no title: {:?}",
        completion.changes
    );

    // Redelivered, and the update published on both topics under its one id: nothing new.
    deliver(&host, &created).await;
    deliver(&host, &updated).await;
    deliver_on(&host, "task-events", &updated).await;
    deliver(&host, &completed).await;
    assert_holds("three entries, one per operation", QUIET, async || {
        same(
            ops(&api.task_audit(&task.id).await),
            vec!["created".into(), "updated".into(), "completed".into()],
        )
        .map(drop)
    })
    .await;
    host.kill().await;
}

/// `(name, due at)` of the user's jobs for `task`.
async fn jobs_of(api: &Api, task: &PyTask) -> Vec<(String, String)> {
    api.reminders_for(&task.id)
        .await
        .into_iter()
        .map(|r| (r.name, support::python_backend::rfc3339(r.due_at)))
        .collect()
}

fn job_at_remind_at(task: &PyTask) -> Vec<(String, String)> {
    vec![(
        format!("reminder-{}-{}", task.id, task.notify_before()),
        support::python_backend::rfc3339(task.remind_at()),
    )]
}

/// The `__dapr/binding` calls the host queued, as `data` objects.
async fn binding_calls(db: &Db) -> Vec<Value> {
    let mut c = db.pool().acquire().await.expect("a connection");
    sqlx::query("SELECT payload FROM outbox WHERE topic = '__dapr/binding' ORDER BY id")
        .fetch_all(&mut *c)
        .await
        .expect("read the outbox")
        .iter()
        .map(|r| {
            let call: Value = serde_json::from_str(&r.get::<String, _>(0)).unwrap();
            assert_eq!(call["binding"], BINDING);
            call["data"].clone()
        })
        .collect()
}

#[tokio::test]
async fn its_reminders_become_one_job_notify_once_with_their_method_and_can_be_withdrawn() {
    let mut env = TestEnv::new();
    let host = start(&mut env).await;
    let db = Db::connect(env.database_url(), 2)
        .await
        .expect("the test's database");
    let user = User::new().await;
    let api = host.api(&user);

    // Due in two days, reminding 15 minutes before: one job, due at remindAt, whether the task
    // event or the reminder event schedules it, and however often the reminder is published.
    let rent = PyTask::new(
        &user.id,
        "Pay rent",
        Utc::now() + Duration::days(2),
        15,
        "push",
        None,
    );
    let scheduled = rent.reminder("scheduled");
    assert_eq!(scheduled.topic, "reminders");
    deliver(&host, &rent.created()).await;
    deliver(&host, &scheduled).await;
    assert_eq!(jobs_of(&api, &rent).await, job_at_remind_at(&rent));
    deliver(&host, &rent.reminder("scheduled")).await;
    deliver(&host, &scheduled).await;
    assert_eq!(jobs_of(&api, &rent).await, job_at_remind_at(&rent));

    // Due in 10 minutes with a 15-minute reminder: remindAt is past, so it notifies at once —
    // once, however often it comes.
    let bank = PyTask::new(
        &user.id,
        "Call the bank",
        Utc::now() + Duration::minutes(10),
        15,
        "both",
        None,
    );
    let past = bank.reminder("scheduled");
    deliver(&host, &bank.created()).await;
    deliver(&host, &past).await;
    deliver(&host, &past).await;
    deliver(&host, &bank.reminder("scheduled")).await;
    let inbox = api.notifications().await;
    let [notification] = &inbox[..] else {
        panic!("one notification, got {inbox:?}")
    };
    assert_eq!(notification.task_id, bank.id);
    assert_eq!(notification.notification_method.as_deref(), Some("both"));
    assert_eq!(notification.title, "Reminder: Call the bank");
    assert!(
        notification.body.contains("is due at"),
        "a late reminder says when: {}",
        notification.body
    );
    assert_eq!(jobs_of(&api, &bank).await, vec![]);
    let calls = binding_calls(&db).await;
    let for_bank: Vec<&Value> = calls.iter().filter(|c| c["task_id"] == bank.id).collect();
    assert_eq!(for_bank.len(), 1, "{calls:?}");
    assert_eq!(for_bank[0]["notification_method"], "both");

    // Cancelled: the job goes. Redelivering the first `scheduled`, or the cancellation, changes
    // nothing (the first was handled already).
    let cancelled = rent.reminder("cancelled");
    deliver(&host, &cancelled).await;
    assert_eq!(jobs_of(&api, &rent).await, vec![]);
    deliver(&host, &scheduled).await;
    deliver(&host, &cancelled).await;
    assert_eq!(jobs_of(&api, &rent).await, vec![]);

    // Sent (delivered by someone else): the job goes too, and nothing is notified.
    let passport = PyTask::new(
        &user.id,
        "Renew the passport",
        Utc::now() + Duration::days(3),
        60,
        "email",
        None,
    );
    deliver(&host, &passport.reminder("scheduled")).await;
    assert_eq!(jobs_of(&api, &passport).await, job_at_remind_at(&passport));
    deliver(&host, &passport.reminder("sent")).await;
    assert_eq!(jobs_of(&api, &passport).await, vec![]);

    assert_holds("one notification, no jobs", QUIET, async || {
        let inbox = api.notifications().await;
        let jobs = api.reminders().await;
        if inbox.len() == 1 && jobs.is_empty() {
            Ok(())
        } else {
            Err(format!("inbox {inbox:?}, jobs {jobs:?}"))
        }
    })
    .await;
    host.kill().await;
}

#[tokio::test]
async fn an_edit_and_its_reminder_handled_after_the_completion_schedule_nothing() {
    let mut env = TestEnv::new();
    let host = start(&mut env).await;
    let user = User::new().await;
    let api = host.api(&user);
    let mut rent = PyTask::new(
        &user.id,
        "Pay rent",
        Utc::now() + Duration::days(2),
        15,
        "push",
        None,
    );
    deliver(&host, &rent.created()).await;
    deliver(&host, &rent.reminder("scheduled")).await;
    assert_eq!(jobs_of(&api, &rent).await, job_at_remind_at(&rent));
    // Edited, then completed at once: the backend publishes the update (on `task-updates`), its
    // reminder (on `reminders`), the completion (on `task-events`); the update and the reminder
    // are handled after the completion, which cancelled the job.
    let updated = rent.updated(|t| t["title"] = json!("Pay the rent"));
    let reminder = rent.reminder("scheduled");
    let completed = rent.completed();
    deliver(&host, &completed).await;
    assert_eq!(
        jobs_of(&api, &rent).await,
        vec![],
        "the completion cancels it"
    );
    deliver(&host, &updated).await;
    assert_eq!(
        jobs_of(&api, &rent).await,
        vec![],
        "an edit published before the completion schedules no job"
    );
    deliver(&host, &reminder).await;
    assert_eq!(
        jobs_of(&api, &rent).await,
        vec![],
        "a reminder for later of a completed task schedules no job"
    );
    assert!(
        host.stderr()
            .contains("the task was closed since: its reminders asked for now are withheld"),
        "the host says why"
    );
    let mut operations = ops(&api.task_audit(&rent.id).await);
    operations.sort();
    assert_eq!(
        operations,
        ["completed", "created", "updated"],
        "each audited all the same"
    );
    // Reopened: its reminders count again.
    let reopened = rent.updated(|t| {
        t["completed"] = json!(false);
        t["status"] = json!("pending");
    });
    deliver(&host, &reopened).await;
    deliver(&host, &rent.reminder("scheduled")).await;
    assert_eq!(jobs_of(&api, &rent).await, job_at_remind_at(&rent));
    host.kill().await;
}

#[tokio::test]
async fn a_job_for_its_reminder_keeps_the_delivery_method_in_its_payload() {
    let mut env = TestEnv::new();
    let host = start(&mut env).await;
    let db = Db::connect(env.database_url(), 2)
        .await
        .expect("the test's database");
    let user = User::new().await;
    let rent = PyTask::new(
        &user.id,
        "Pay rent",
        Utc::now() + Duration::days(2),
        15,
        "push",
        None,
    );
    // The task event alone schedules the job (its reminderConfig.method goes with it)...
    deliver(&host, &rent.created()).await;
    // ...and so does the reminder event; either way the job's payload, which is what comes
    // back on `reminders` when it fires, says how to deliver it.
    for step in ["task event", "reminder event"] {
        let mut c = db.pool().acquire().await.unwrap();
        let payload: String = sqlx::query("SELECT payload FROM scheduled_jobs WHERE task_id = $1")
            .bind(&rent.id)
            .fetch_one(&mut *c)
            .await
            .unwrap_or_else(|e| panic!("{step}: the job: {e}"))
            .get(0);
        let reminder: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(
            reminder["notification_method"], "push",
            "{step}: {reminder}"
        );
        assert_eq!(reminder["offset_minutes"], 15);
        drop(c);
        deliver(&host, &rent.reminder("scheduled")).await;
    }
    host.kill().await;
}

#[tokio::test]
async fn an_envelope_with_attributes_no_extension_holds_is_read_from_its_data() {
    let mut env = TestEnv::new();
    let host = start(&mut env).await;
    let user = User::new().await;
    let api = host.api(&user);
    let task = PyTask::new(
        &user.id,
        "Water the plants",
        Utc::now() + Duration::days(1),
        15,
        "push",
        None,
    );
    // A producer that copies its event's fields into the envelope as well as into `data`.
    for p in [task.created(), task.reminder("scheduled")] {
        let mut e = envelope(&p);
        for (key, value) in p.body.as_object().unwrap() {
            e[key] = value.clone();
        }
        e["score"] = json!(0.5);
        deliver_envelope(&host, &p.topic, &e).await;
    }
    wait_until(
        "the task's audit entry",
        support::EFFECT_TIMEOUT,
        async || same(ops(&api.task_audit(&task.id).await), vec!["created".into()]).map(drop),
    )
    .await;
    assert_eq!(jobs_of(&api, &task).await, job_at_remind_at(&task));
    let warnings: Vec<String> = host
        .stderr()
        .lines()
        .filter(|l| l.contains("not valid extensions"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning for taskData (the reminder's odd attributes are numbers and strings but \
         for `score`, already reported): {warnings:?}"
    );
    assert!(
        warnings[0].contains("taskData") && warnings[0].contains("score"),
        "{}",
        warnings[0]
    );
    host.kill().await;
}
