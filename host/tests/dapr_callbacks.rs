//! The Dapr app callbacks of the real `taskhost` binary, without any sidecar: the test plays
//! daprd and sends exactly what daprd 1.16 sends (see `dapr-http-contract.md` and
//! `deploy/local-stack/README.md` §5), then checks the documented answers — `SUCCESS`,
//! `RETRY` or `DROP` per message, per entry for bulk deliveries — their effects, and that every
//! refusal is explained in the host's log.
//!
//! The host runs with `TASKHOST_DELIVERY=dapr`, `APP_API_TOKEN` set and `DAPR_HTTP_PORT`
//! pointing at a closed port, so it never becomes ready and its relay holds everything it would
//! publish: the only way in is the callbacks. Runs on SQLite, or on PostgreSQL when
//! `TASKHOST_TEST_DATABASE_URL` is set (fresh random user ids keep runs apart).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use support::wasm_builds::build_wasm;
use support::{Api, EFFECT_TIMEOUT, HostOptions, TestEnv, User, assert_holds, wait_until};

const APP_TOKEN: &str = "app-token-for-the-callback-test";
const ADMIN_TOKEN: &str = "admin-token-for-the-callback-test";
const CLOUDEVENT: &str = "application/cloudevents+json";

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A valid `task.created` event of `user` for a new task; returns (event id, task id, event).
fn task_created(user: &User, title: &str) -> (String, String, Value) {
    let event_id = uuid::Uuid::new_v4().to_string();
    let task_id = uuid::Uuid::new_v4().to_string();
    let event = json!({
        "event_id": event_id,
        "event_type": "task.created",
        "event_timestamp": now(),
        "user_id": user.id,
        "task": {
            "id": task_id, "user_id": user.id, "title": title, "description": null,
            "is_completed": false, "priority": "medium", "due_date": null,
            "is_recurring": false, "recurrence_frequency": null, "tags": ["dapr"],
            "created_at": now(), "updated_at": now(),
        },
    });
    (event_id, task_id, event)
}

/// The CloudEvent envelope daprd 1.16 delivers for a JSON payload published to `topic`.
fn dapr_cloudevent(topic: &str, data: Value) -> Value {
    json!({
        "data": data,
        "datacontenttype": "application/json",
        "id": uuid::Uuid::new_v4().to_string(),
        "pubsubname": "pubsub-kafka",
        "source": "taskhost",
        "specversion": "1.0",
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "topic": topic,
        "traceid": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": "",
        "type": "com.dapr.event.sent",
    })
}

/// A bulk delivery's body as daprd sends it to `task-events`: each `(entry id, event)` as a
/// CloudEvent entry.
fn bulk_body(entries: impl IntoIterator<Item = (String, Value)>) -> Vec<u8> {
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|(entry_id, event)| {
            json!({
                "entryId": entry_id,
                "event": dapr_cloudevent("task-events", event),
                "contentType": CLOUDEVENT,
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "entries": entries, "topic": "task-events", "pubsubname": "pubsub-kafka", "type": "com.dapr.event.sent.bulk", "id": uuid::Uuid::new_v4().to_string() })).unwrap()
}

/// `{"status": ...}` of a single delivery's answer.
fn status_of(reply: &support::Reply) -> String {
    let body = reply.value();
    body.get("status")
        .and_then(Value::as_str)
        .unwrap_or_else(|| {
            panic!(
                "{}: expected {{\"status\": ...}}, got {body}",
                reply.request
            )
        })
        .to_owned()
}

/// The lines of the host's stderr that contain every one of `needles`.
fn log_lines_with(stderr: &str, needles: &[&str]) -> Vec<String> {
    stderr
        .lines()
        .filter(|line| needles.iter().all(|n| line.contains(n)))
        .map(str::to_owned)
        .collect()
}

/// Starts taskhost in Dapr mode with no sidecar: it stays live but not ready.
async fn start_without_sidecar(env: &mut TestEnv) -> support::Host {
    env.start_with(
        &HostOptions::dapr_without_sidecar(APP_TOKEN)
            .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN)
            .env_remove("TASKHOST_DAPR_BULK"),
    )
    .await
}

/// The dead letters whose payload contains `marker`.
async fn dead_letters_with(host: &support::Host, marker: &str) -> Vec<Value> {
    let dead = host
        .api_with_authorization(Some(&format!("Bearer {ADMIN_TOKEN}")))
        .get("/admin/dead-letters")
        .await
        .expect(200)
        .value();
    dead.as_array()
        .unwrap_or_else(|| panic!("GET /admin/dead-letters: expected an array, got {dead}"))
        .iter()
        .filter(|d| d["payload"].as_str().is_some_and(|p| p.contains(marker)))
        .cloned()
        .collect()
}

#[tokio::test]
async fn callbacks_answer_as_documented_without_a_sidecar() {
    let mut env = TestEnv::new();
    let host = start_without_sidecar(&mut env).await;
    // What daprd sends: the token, and (for single deliveries) the Kafka metadata as headers.
    let daprd = host.as_daprd(APP_TOKEN);
    let anonymous = host.api_with_authorization(None);
    let impostor = host.as_daprd("not-the-app-token");
    let user = User::new().await;
    let api = host.api(&user);
    // A single delivery also carries the Kafka record's metadata as headers.
    let daprd_single = daprd
        .clone()
        .with_header("Partitionkey", &user.id)
        .with_header("__key", &user.id)
        .with_header("__topic", "task-events")
        .with_header("__partition", "0")
        .with_header("__offset", "41")
        .with_header(
            "Traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );

    // Live, not ready: there is no sidecar.
    anonymous.get("/readyz").await.expect(503);

    // --- GET /dapr/subscribe needs the token. ---
    anonymous
        .get("/dapr/subscribe")
        .await
        .expect(401)
        .error_message();
    impostor
        .get("/dapr/subscribe")
        .await
        .expect(401)
        .error_message();
    let subscriptions = daprd.get("/dapr/subscribe").await.expect(200).value();
    let subscriptions = subscriptions.as_array().unwrap_or_else(|| {
        panic!("GET /dapr/subscribe: expected a JSON array, got {subscriptions}")
    });
    let by_topic: BTreeMap<&str, &Value> = subscriptions
        .iter()
        .map(|s| {
            (
                s["topic"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a subscription without topic: {s}")),
                s,
            )
        })
        .collect();
    assert_eq!(
        by_topic.len(),
        subscriptions.len(),
        "one subscription per topic: {subscriptions:?}"
    );
    assert_eq!(
        by_topic.keys().copied().collect::<Vec<_>>(),
        [
            "reminders",
            "reminders-dlq",
            "task-events",
            "task-events-dlq",
            "task-updates",
            "task-updates-dlq"
        ],
        "the topics the four components consume, and their dead-letter topics"
    );
    for topic in ["task-events", "task-updates", "reminders"] {
        let sub = by_topic[topic];
        assert_eq!(sub["pubsubname"], "pubsub-kafka", "{sub}");
        assert_eq!(
            sub["routes"]["default"],
            format!("/dapr/events/{topic}"),
            "{sub}"
        );
        assert_eq!(sub["deadLetterTopic"], format!("{topic}-dlq"), "{sub}");
        assert_eq!(
            sub["bulkSubscribe"]["enabled"], true,
            "bulk delivery is on: {sub}"
        );
        let max = sub["bulkSubscribe"]["maxMessagesCount"]
            .as_u64()
            .unwrap_or(0);
        assert!(
            max >= 1,
            "bulkSubscribe.maxMessagesCount must be set: {sub}"
        );

        let dlq = by_topic[format!("{topic}-dlq").as_str()];
        assert_eq!(dlq["pubsubname"], "pubsub-kafka", "{dlq}");
        assert_eq!(
            dlq["routes"]["default"],
            format!("/dapr/dead-letters/{topic}"),
            "{dlq}"
        );
        assert!(
            dlq.get("deadLetterTopic").is_none(),
            "a dead-letter topic has no dead-letter topic of its own: {dlq}"
        );
    }

    // --- A single delivery, exactly as daprd sends it. ---
    let (event_id, task_id, event) = task_created(&user, "delivered by daprd");
    let envelope = dapr_cloudevent("task-events", event);
    let body = serde_json::to_vec(&envelope).unwrap();
    let deliver = |api: &Api, body: Vec<u8>| {
        let api = api.clone();
        async move {
            api.post_bytes("/dapr/events/task-events", CLOUDEVENT, body)
                .await
                .expect(200)
        }
    };
    // Without the token: refused before anything is handled.
    let refused = anonymous
        .post_bytes("/dapr/events/task-events", CLOUDEVENT, body.clone())
        .await
        .expect(401);
    refused.error_message();
    assert_eq!(
        status_of(&deliver(&daprd_single, body.clone()).await),
        "SUCCESS"
    );
    let audit_of_user = async || api.user_audit(&user.id).await;
    wait_until(
        "the audit entry of the delivered task.created",
        EFFECT_TIMEOUT,
        async || {
            let trail = audit_of_user().await;
            match &trail[..] {
                [entry]
                    if entry.event_id == event_id
                        && entry.task_id == task_id
                        && entry.operation == "created" =>
                {
                    Ok(())
                }
                _ => Err(format!("{trail:?}")),
            }
        },
    )
    .await;

    // --- Garbage, a wrong content type, an unknown topic: each DROP. ---
    let garbage = deliver(
        &daprd,
        format!("{{this is not json, {}", user.id).into_bytes(),
    )
    .await;
    assert_eq!(status_of(&garbage), "DROP", "an undecodable body");
    let (_, _, plain_event) = task_created(&user, "sent as text/plain");
    let plain = daprd
        .post_bytes(
            "/dapr/events/task-events",
            "text/plain",
            serde_json::to_vec(&dapr_cloudevent("task-events", plain_event)).unwrap(),
        )
        .await
        .expect(200);
    assert_eq!(
        status_of(&plain),
        "DROP",
        "a body that is not JSON by its content type"
    );
    let (_, _, stray_event) = task_created(&user, "on a topic nobody consumes");
    let unknown = daprd
        .post_bytes(
            "/dapr/events/no-such-topic",
            CLOUDEVENT,
            serde_json::to_vec(&dapr_cloudevent("no-such-topic", stray_event)).unwrap(),
        )
        .await
        .expect(200);
    assert_eq!(status_of(&unknown), "DROP", "a topic no component consumes");

    // --- A bulk delivery: one good entry, one undecodable: per-entry answers. ---
    let (good_event_id, good_task_id, good_event) = task_created(&user, "bulk entry");
    let mut bad_event = task_created(&user, "bulk entry that explodes").2;
    bad_event["event_type"] = json!("task.exploded");
    let bulk = json!({
        "entries": [
            {"entryId": "entry-good", "event": dapr_cloudevent("task-events", good_event),
             "contentType": CLOUDEVENT, "metadata": {"__key": user.id, "__offset": "17", "__partition": "0"}},
            {"entryId": "entry-bad", "event": dapr_cloudevent("task-events", bad_event),
             "contentType": CLOUDEVENT, "metadata": {"__key": user.id, "__offset": "18", "__partition": "0"}},
        ],
        "id": uuid::Uuid::new_v4().to_string(),
        "metadata": {},
        "pubsubname": "pubsub-kafka",
        "topic": "task-events",
        "type": "com.dapr.event.sent",
    });
    let reply = daprd
        .post_bytes(
            "/dapr/events/task-events",
            "application/json",
            serde_json::to_vec(&bulk).unwrap(),
        )
        .await
        .expect(200);
    let statuses = reply.value();
    let statuses: BTreeMap<String, String> = statuses["statuses"]
        .as_array()
        .unwrap_or_else(|| panic!("a bulk answer is {{\"statuses\": [...]}}, got {statuses}"))
        .iter()
        .map(|s| {
            (
                s["entryId"].as_str().unwrap_or_default().to_owned(),
                s["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        BTreeMap::from([
            ("entry-bad".to_owned(), "DROP".to_owned()),
            ("entry-good".to_owned(), "SUCCESS".to_owned()),
        ]),
        "one status per entry, by entryId: {}",
        reply.text
    );
    wait_until(
        "the audit entry of the good bulk entry",
        EFFECT_TIMEOUT,
        async || {
            let trail = audit_of_user().await;
            let good = trail
                .iter()
                .filter(|e| e.event_id == good_event_id && e.task_id == good_task_id)
                .count();
            if good == 1 {
                Ok(())
            } else {
                Err(format!("{trail:?}"))
            }
        },
    )
    .await;

    // --- A redelivery of the first CloudEvent changes nothing. ---
    assert_eq!(
        status_of(&deliver(&daprd_single, body.clone()).await),
        "SUCCESS",
        "a redelivery is acknowledged"
    );
    assert_holds(
        "one audit entry per delivered event, none for the dropped ones",
        Duration::from_secs(2),
        async || {
            let trail = audit_of_user().await;
            let mut ids: Vec<&str> = trail.iter().map(|e| e.event_id.as_str()).collect();
            ids.sort_unstable();
            let mut want = vec![event_id.as_str(), good_event_id.as_str()];
            want.sort_unstable();
            if ids == want {
                Ok(())
            } else {
                Err(format!("event ids {ids:?}, expected {want:?}"))
            }
        },
    )
    .await;

    // --- Still not ready: the sidecar is absent. ---
    let ready = anonymous.get("/readyz").await.expect(503);
    assert!(
        ready.text.contains("Dapr sidecar"),
        "/readyz says it waits for the sidecar: {}",
        ready.text
    );

    // --- Every refusal is explained in the log. ---
    let why = [
        (vec!["DROP", "body is not JSON"], "the garbage body"),
        (
            vec!["DROP", "unsupported content type", "text/plain"],
            "the text/plain body",
        ),
        (
            vec!["DROP", "no-such-topic", "no component consumes this topic"],
            "the unknown topic",
        ),
        (vec!["DROP", "task.exploded"], "the undecodable bulk entry"),
        (
            vec![
                "rejected a sidecar callback",
                "dapr-api-token",
                "/dapr/subscribe",
            ],
            "the subscribe call without the token",
        ),
        (
            vec![
                "rejected a sidecar callback",
                "dapr-api-token",
                "/dapr/events/task-events",
            ],
            "the delivery without the token",
        ),
    ];
    wait_until(
        "a log line for each refusal",
        Duration::from_secs(5),
        async || {
            let stderr = host.stderr();
            let missing: Vec<&str> = why
                .iter()
                .filter(|(needles, _)| log_lines_with(&stderr, needles).is_empty())
                .map(|(_, what)| *what)
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("no log line explains {missing:?}"))
            }
        },
    )
    .await;

    // The reasons of the drops are also kept for operators (every dropped body names the user).
    let dead = dead_letters_with(&host, &user.id).await;
    let reasons: Vec<&str> = dead
        .iter()
        .filter(|d| d["topic"] == "task-events")
        .filter_map(|d| d["reason"].as_str())
        .collect();
    for needle in [
        "body is not JSON",
        "unsupported content type",
        "task.exploded",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(needle)),
            "GET /admin/dead-letters keeps a task-events drop whose reason says {needle:?}: {reasons:?}"
        );
    }

    // --- Still alive. ---
    let mut host = host;
    assert!(host.is_running(), "taskhost exited during the test");
    anonymous.get("/healthz").await.expect(200);
}

/// daprd forwards a dropped message to `{topic}-dlq` as it was (the same CloudEvent, id
/// included: checked with daprd 1.16.5), and `POST /dapr/dead-letters/{topic}` notes its
/// arrival on the dead letter recorded when it was dropped: one dead letter per message, with
/// the reason of its drop, not a second one for the arrival.
#[tokio::test]
async fn a_dead_letter_arrival_keeps_the_reason_of_its_drop() {
    let mut env = TestEnv::new();
    let host = start_without_sidecar(&mut env).await;
    let daprd = host.as_daprd(APP_TOKEN);
    let user = User::new().await;

    let (event_id, _, mut event) = task_created(&user, "explodes on arrival");
    event["event_type"] = json!("task.exploded");
    let body = serde_json::to_vec(&dapr_cloudevent("task-events", event)).unwrap();
    let dropped = daprd
        .post_bytes("/dapr/events/task-events", CLOUDEVENT, body.clone())
        .await
        .expect(200);
    assert_eq!(status_of(&dropped), "DROP");
    // What daprd then delivers from task-events-dlq (twice: a redelivery changes nothing).
    for _ in 0..2 {
        let arrived = daprd
            .post_bytes("/dapr/dead-letters/task-events", CLOUDEVENT, body.clone())
            .await
            .expect(200);
        assert_eq!(
            status_of(&arrived),
            "SUCCESS",
            "a dead letter is acknowledged once recorded"
        );
    }

    let records = dead_letters_with(&host, &user.id).await;
    assert_eq!(
        records.len(),
        1,
        "one dead letter for the dropped message, its arrival on task-events-dlq included: {records:?}"
    );
    let record = &records[0];
    assert_eq!(record["topic"], "task-events", "{record}");
    assert_eq!(
        record["forwarded_to"], "task-events-dlq",
        "the record notes the arrival on the dead-letter topic: {record}"
    );
    assert_eq!(
        record["event_id"],
        json!(event_id),
        "the record names the event: {record}"
    );
    let reason = record["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("task.exploded"),
        "the record keeps the reason of the drop (naming `task.exploded`), got {reason:?}"
    );
}

/// Builds `components/testing/not-before` (once per test binary) and returns a components
/// directory holding only it.
fn not_before_only() -> tempfile::TempDir {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let wasm = BUILT.get_or_init(|| {
        build_wasm(
            &support::target_dir().join("ordering"),
            &["-p", "not-before"],
            "the not-before test component",
        )
        .join("not_before.wasm")
    });
    let dir = tempfile::tempdir().expect("a temporary components directory");
    std::fs::copy(wasm, dir.path().join("not-before.wasm")).expect("copying not-before.wasm");
    dir
}

/// The bodies (event ids) of `user`'s notifications, in the order they were written.
async fn notified(host: &support::Host, user: &User) -> Vec<String> {
    let listed = host
        .api(user)
        .get("/api/notifications")
        .await
        .expect(200)
        .value();
    let mut bodies: Vec<String> = listed
        .as_array()
        .unwrap_or_else(|| panic!("GET /api/notifications: expected an array, got {listed}"))
        .iter()
        .filter_map(|n| n["body"].as_str().map(str::to_owned))
        .collect();
    bodies.reverse(); // listed newest first
    bodies
}

/// A bulk delivery in which one user's second of three entries is answered `RETRY`: that
/// user's third entry is answered `RETRY` too — handling it now would apply it before the one
/// retried — and on redelivery it is applied after the second; another user's entries in the
/// same request are `SUCCESS`. (`not-before` asks to retry a task that is not due yet.)
#[tokio::test]
async fn a_retried_bulk_entry_holds_back_its_users_later_entries() {
    let components = not_before_only();
    let mut env = TestEnv::new();
    let host = env
        .start_with(&HostOptions::dapr_without_sidecar(APP_TOKEN).components_dir(components.path()))
        .await;
    let daprd = host.as_daprd(APP_TOKEN);
    let (a, b) = (User::new().await, User::new().await);
    let due = Utc::now() + chrono::Duration::seconds(3);
    let event = |user: &User, title: &str, due_date: Option<chrono::DateTime<Utc>>| {
        let (event_id, _, mut event) = task_created(user, title);
        if let Some(due) = due_date {
            event["task"]["due_date"] = json!(due.to_rfc3339_opts(SecondsFormat::Millis, true));
        }
        (event_id, event)
    };
    let (a1, a2, a3) = (
        event(&a, "a1", None),
        event(&a, "a2: not due yet", Some(due)),
        event(&a, "a3", None),
    );
    let (b1, b2) = (event(&b, "b1", None), event(&b, "b2", None));
    let bulk = |entries: &[(&str, &(String, Value))]| {
        bulk_body(
            entries
                .iter()
                .map(|(entry_id, (_, event))| (entry_id.to_string(), event.clone())),
        )
    };
    let statuses = |reply: &support::Reply| -> BTreeMap<String, String> {
        reply.value()["statuses"]
            .as_array()
            .unwrap_or_else(|| panic!("expected {{\"statuses\": [...]}}, got {}", reply.value()))
            .iter()
            .map(|s| {
                (
                    s["entryId"].as_str().unwrap().to_owned(),
                    s["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };

    // One request, the two users interleaved as one partition would give them.
    let body = bulk(&[
        ("a1", &a1),
        ("b1", &b1),
        ("a2", &a2),
        ("b2", &b2),
        ("a3", &a3),
    ]);
    let reply = daprd
        .post_bytes("/dapr/events/task-events", "application/json", body)
        .await
        .expect(200);
    let expected: BTreeMap<String, String> = [
        ("a1", "SUCCESS"),
        ("a2", "RETRY"),
        ("a3", "RETRY"),
        ("b1", "SUCCESS"),
        ("b2", "SUCCESS"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(statuses(&reply), expected, "per-entry answers");
    assert_eq!(
        notified(&host, &a).await,
        vec![a1.0.clone()],
        "a's third entry must wait for its second"
    );
    assert_eq!(notified(&host, &b).await, vec![b1.0.clone(), b2.0.clone()]);

    // daprd redelivers what it was told to retry, in order, until it succeeds.
    wait_until(
        "a2 and a3 to be taken on redelivery",
        Duration::from_secs(20),
        async || {
            let reply = daprd
                .post_bytes(
                    "/dapr/events/task-events",
                    "application/json",
                    bulk(&[("a2", &a2), ("a3", &a3)]),
                )
                .await
                .expect(200);
            let got = statuses(&reply);
            if got.values().all(|s| s == "SUCCESS") {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    )
    .await;
    assert_eq!(
        notified(&host, &a).await,
        vec![a1.0.clone(), a2.0.clone(), a3.0.clone()],
        "a's events applied in a's order"
    );
}

/// A user's next entry in a bulk delivery runs its calls while the previous entry commits, but
/// reads what that one writes only after it is answered: an update published without its
/// previous state (as the Python backend publishes) gets it from the audit entry of the
/// creation in the same bulk, and the audit trail names only the field it changed.
#[tokio::test]
async fn a_bulk_entry_reads_the_state_its_users_previous_entry_wrote() {
    let mut env = TestEnv::new();
    let host = start_without_sidecar(&mut env).await;
    let daprd = host.as_daprd(APP_TOKEN);
    let user = User::new().await;
    let api = host.api(&user);
    // Several tasks, each created and then updated in the same delivery, so that an update
    // reading too early would show in at least one of them.
    let mut entries = Vec::new();
    let mut tasks = Vec::new();
    for n in 0..8 {
        let (_, task_id, created) = task_created(&user, &format!("task {n}"));
        let mut updated = created.clone();
        updated["event_id"] = json!(uuid::Uuid::new_v4().to_string());
        updated["event_type"] = json!("task.updated");
        updated["task"]["title"] = json!(format!("task {n}, renamed"));
        entries.push((format!("c{n}"), created));
        entries.push((format!("u{n}"), updated));
        tasks.push(task_id);
    }
    let body = bulk_body(entries);
    let reply = daprd
        .post_bytes("/dapr/events/task-events", "application/json", body)
        .await
        .expect(200);
    let statuses = reply.value()["statuses"].clone();
    assert!(
        statuses
            .as_array()
            .is_some_and(|s| s.len() == 16 && s.iter().all(|s| s["status"] == "SUCCESS")),
        "every entry handled: {statuses}"
    );
    for task_id in &tasks {
        let trail = api.task_audit(task_id).await;
        let ops: Vec<&str> = trail.iter().map(|e| e.operation.as_str()).collect();
        assert_eq!(ops, ["created", "updated"], "{task_id}: {trail:?}");
        assert_eq!(
            trail[1].changed_fields(),
            ["title"],
            "{task_id}: the update compared with the state the creation wrote: {:?}",
            trail[1].changes
        );
    }
}

/// The Dapr scheduler delivers a job's trigger at least once (the fault suite saw one job fire
/// twice after daprd was killed, four times after a scheduler restart). The first trigger queues
/// the reminder and takes the job off the host's list; a repeat, or a trigger of a job cancelled
/// meanwhile, is acknowledged and queues nothing.
#[tokio::test]
async fn a_repeated_job_trigger_queues_its_reminder_once() {
    let mut env = TestEnv::new();
    let host = start_without_sidecar(&mut env).await;
    let daprd = host.as_daprd(APP_TOKEN);
    // A task event as daprd delivers it, answered SUCCESS once its effects are committed.
    let deliver = async |event: Value| {
        let reply = daprd
            .post(
                "/dapr/events/task-events",
                &dapr_cloudevent("task-events", event),
            )
            .await
            .expect(200);
        assert_eq!(status_of(&reply), "SUCCESS", "{}", reply.text);
    };
    let user = User::new().await;
    let (_, task_id, mut event) = task_created(&user, "reminded once");
    let due = (Utc::now() + chrono::Duration::days(2)).to_rfc3339_opts(SecondsFormat::Millis, true);
    event["task"]["due_date"] = json!(due);
    deliver(event).await;

    let db = taskhost::storage::Db::connect(env.database_url(), 2)
        .await
        .expect("connect to the test database");
    let query = |sql: &'static str, name: String| {
        let db = db.clone();
        async move {
            let mut c = db.pool().acquire().await.expect("a connection");
            sqlx::query(sql)
                .bind(name)
                .fetch_all(&mut *c)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .iter()
                .map(|r| sqlx::Row::get::<String, _>(r, 0))
                .collect::<Vec<String>>()
        }
    };
    // The payload of the job the host lists under `name`, if it lists one.
    let listed = async |name: &String| {
        query(
            "SELECT payload FROM scheduled_jobs WHERE name = $1",
            name.clone(),
        )
        .await
        .pop()
    };
    // The Dapr scheduler firing job `name` with `payload`: daprd posts it, the host answers 204.
    let trigger = async |name: &String, payload: String| {
        daprd
            .post_bytes(
                &format!("/job/{name}"),
                "application/json",
                payload.into_bytes(),
            )
            .await
            .expect(204);
    };
    let name = format!("reminder-{task_id}-60");
    let payload = listed(&name)
        .await
        .unwrap_or_else(|| panic!("the host lists job {name}"));
    let reminders = async || {
        query(
            "SELECT payload FROM outbox WHERE topic = 'reminders' AND payload LIKE $1",
            format!("%{task_id}%"),
        )
        .await
        .len()
    };

    for time in 1..=3 {
        trigger(&name, payload.clone()).await;
        assert_eq!(
            reminders().await,
            1,
            "after trigger {time}: one reminder queued"
        );
    }
    assert!(
        listed(&name).await.is_none(),
        "the fired job is off the host's list"
    );

    // A rename computed before the job fired and committed after it (the soak saw one):
    // the notification component schedules the same reminder (same task, offset and due date)
    // again, so the host lists it and asks the scheduler for it once more. Its trigger takes
    // it off the list and queues nothing: the reminder was published already.
    let mut renamed = task_created(&user, "reminded once, renamed").2;
    renamed["event_type"] = json!("task.updated");
    renamed["task"]["id"] = json!(task_id);
    renamed["task"]["due_date"] = json!(due);
    let mut before = renamed["task"].clone();
    before["title"] = json!("reminded once");
    renamed["previous"] = before;
    deliver(renamed).await;
    let relisted = listed(&name)
        .await
        .unwrap_or_else(|| panic!("the rename lists job {name} again"));
    assert!(relisted.contains("renamed"), "{relisted}");
    trigger(&name, relisted).await;
    assert_eq!(
        reminders().await,
        1,
        "a reminder listed again after it fired is not queued twice"
    );
    assert!(
        listed(&name).await.is_none(),
        "and it is off the host's list"
    );

    // The other job of the task, cancelled (the task completed) before its trigger came.
    let other = format!("reminder-{task_id}-1440");
    let payload = listed(&other)
        .await
        .unwrap_or_else(|| panic!("the host lists job {other}"));
    let mut completed = task_created(&user, "reminded once").2;
    completed["event_id"] = json!(uuid::Uuid::new_v4().to_string());
    completed["event_type"] = json!("task.completed");
    completed["task"]["id"] = json!(task_id);
    completed["task"]["due_date"] = json!(due);
    completed["task"]["is_completed"] = json!(true);
    deliver(completed).await;
    wait_until(
        "the completion to cancel the job",
        EFFECT_TIMEOUT,
        async || {
            if listed(&other).await.is_none() {
                Ok(())
            } else {
                Err(format!("{other} still listed"))
            }
        },
    )
    .await;
    trigger(&other, payload).await;
    assert_eq!(
        reminders().await,
        1,
        "a cancelled job's trigger queues nothing"
    );
}
