//! Traces: one task write is one trace, from the HTTP request through the outbox, the relay,
//! the pipeline, each component call and each effect to the WebSocket push; and a Dapr
//! delivery continues the trace of the CloudEvent it carries.
//!
//! Unlike the other suites this one runs the host in its own process ([`App::build`] /
//! [`App::run`], the same code as `taskhost serve`): the spans go to OpenTelemetry's
//! in-memory exporter through the same layer the binary installs
//! ([`taskhost::telemetry::otel_layer`]), and the test reads them back. It checks the links
//! between spans (each parent is the span it must be), not only that they share a trace id.
//! Runs on SQLite, or on PostgreSQL when `TASKHOST_TEST_DATABASE_URL` is set.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use chrono::{SecondsFormat, TimeDelta, Utc};
use clap::Parser;
use futures::StreamExt as _;
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry::{Key, Value as OtelValue};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::{Value, json};
use taskhost::app::App;
use taskhost::cli::{Cli, Command};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use support::{Api, EFFECT_TIMEOUT, TestEnv, User, wait_until};

const COMPONENTS: [&str; 4] = ["audit", "notification", "recurrence", "sync"];

/// The process-wide subscriber: logs (to the test's captured output) and traces into one
/// in-memory exporter. Both tests share it; each finds its own spans by its own ids.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<(InMemorySpanExporter, SdkTracerProvider)> = OnceLock::new();
    &EXPORTER
        .get_or_init(|| {
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .build();
            tracing_subscriber::registry()
                .with(taskhost::telemetry::fmt_layer("text"))
                .with(taskhost::telemetry::otel_layer(&provider))
                .try_init()
                .expect("no other global subscriber in this test binary");
            (exporter, provider)
        })
        .0
}

fn spans() -> Vec<SpanData> {
    exporter()
        .get_finished_spans()
        .expect("read the in-memory exporter")
}

/// The host, in this process, on a free port.
struct InProcessHost {
    base: String,
    stop: CancellationToken,
    run: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcessHost {
    async fn start(env: &TestEnv, extra: &[&str]) -> Self {
        exporter();
        let mut argv = vec![
            "taskhost".to_string(),
            "serve".into(),
            "--dev".into(),
            "--database-url".into(),
            env.database_url().into(),
            "--components-dir".into(),
            env.components_dir().display().to_string(),
            "--watch-components".into(),
            "false".into(),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        let Command::Serve(args) = Cli::try_parse_from(&argv)
            .expect("valid serve flags")
            .command
        else {
            unreachable!("parsed `serve`")
        };
        let app = App::build(&args).await.expect("build the host");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let run = tokio::spawn(app.run(listener, async move { stopped.cancelled().await }));
        Self { base, stop, run }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.run
            .await
            .expect("the host task")
            .expect("the host stops cleanly");
    }
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a OtelValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == Key::new(key.to_string()))
        .map(|kv| &kv.value)
}

fn attr_str(span: &SpanData, key: &str) -> String {
    attr(span, key)
        .map(|v| v.as_str().into_owned())
        .unwrap_or_else(|| {
            panic!(
                "span `{}` has no attribute `{key}`: {:?}",
                span.name, span.attributes
            )
        })
}

/// The spans whose parent is `parent`, checked to be in the parent's trace.
fn children<'a>(all: &'a [SpanData], parent: &SpanData) -> Vec<&'a SpanData> {
    let kids: Vec<&SpanData> = all
        .iter()
        .filter(|s| s.parent_span_id == parent.span_context.span_id())
        .collect();
    for kid in &kids {
        assert_eq!(
            kid.span_context.trace_id(),
            parent.span_context.trace_id(),
            "span `{}` is a child of `{}` but in another trace",
            kid.name,
            parent.name
        );
    }
    kids
}

fn only<'a>(spans: Vec<&'a SpanData>, what: &str) -> &'a SpanData {
    assert_eq!(
        spans.len(),
        1,
        "expected exactly one {what}, got {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    spans[0]
}

fn named<'a>(spans: &[&'a SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().copied().filter(|s| s.name == name).collect()
}

/// Checks the pipeline's part of a trace under `message`: one `component` span per consumer
/// (name, version, outcome), each with one `component.call` and its effects; returns the
/// component spans by name.
fn check_pipeline<'a>(all: &'a [SpanData], message: &SpanData) -> BTreeMap<String, &'a SpanData> {
    let components: BTreeMap<String, &SpanData> = children(all, message)
        .into_iter()
        .filter(|s| s.name == "component")
        .map(|s| (attr_str(s, "component"), s))
        .collect();
    assert_eq!(
        components.keys().map(String::as_str).collect::<Vec<_>>(),
        COMPONENTS,
        "one component span per consumer under the message span"
    );
    for (name, span) in &components {
        assert!(
            !attr_str(span, "version").is_empty(),
            "{name}: the component span names the version"
        );
        assert_eq!(attr_str(span, "outcome"), "applied", "{name}: outcome");
        let kids = children(all, span);
        let call = only(
            named(&kids, "component.call"),
            "component.call per component",
        );
        assert_eq!(attr_str(call, "component"), *name);
        assert_eq!(attr_str(call, "version"), attr_str(span, "version"));
    }
    components
}

fn kinds(all: &[SpanData], component: &SpanData) -> BTreeSet<String> {
    children(all, component)
        .into_iter()
        .filter(|s| s.name == "effect")
        .map(|s| attr_str(s, "kind"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_task_write_is_one_trace_from_the_request_to_the_last_effect() {
    let env = TestEnv::new();
    let host = InProcessHost::start(&env, &[]).await;
    let user = User::new().await;

    // A live socket, so the push has somewhere to go (and is seen arriving).
    let (mut socket, _) = tokio_tungstenite::connect_async(format!(
        "{}/ws?token={}",
        host.base.replace("http", "ws"),
        user.token
    ))
    .await
    .expect("open /ws");

    let due = (Utc::now() + TimeDelta::days(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let api = Api::at(&host.base).with_header("authorization", &format!("Bearer {}", user.token));
    let created = api
        .post(
            "/api/tasks",
            &json!({ "title": "traced", "due_date": due, "priority": "high" }),
        )
        .await
        .expect(201)
        .value();
    let task_id = created["id"].as_str().expect("task id").to_owned();

    // The push reaches the socket: the pipeline ran to its last effect.
    let pushed = tokio::time::timeout(EFFECT_TIMEOUT, async {
        while let Some(frame) = socket.next().await {
            if let Ok(tokio_tungstenite::tungstenite::Message::Text(text)) = frame
                && text.contains(&task_id)
            {
                return text.to_string();
            }
        }
        panic!("/ws closed before the push")
    })
    .await
    .expect("the task's sync message on /ws");
    assert!(pushed.contains(&task_id));

    // The relay's span ends after the pipeline's: once it is exported, the trace is complete.
    let (all, message, deliver) =
        wait_until("the trace of the task write", EFFECT_TIMEOUT, async || {
            let all = spans();
            let message = all
                .iter()
                .find(|s| {
                    s.name == "message" && attr(s, "user_id").is_some_and(|u| u.as_str() == user.id)
                })
                .ok_or("no message span for the user yet")?
                .clone();
            let deliver = all
                .iter()
                .find(|s| s.span_context.span_id() == message.parent_span_id)
                .ok_or("the message span's parent is not exported yet")?
                .clone();
            // On PostgreSQL the push is made by the LISTEN task, possibly after the relay's
            // span has ended.
            all.iter()
                .find(|s| {
                    s.name == "ws.push" && attr(s, "user_id").is_some_and(|u| u.as_str() == user.id)
                })
                .ok_or("no ws.push span for the user yet")?;
            Ok((all, message, deliver))
        })
        .await;
    let trace_id = message.span_context.trace_id();
    assert_ne!(trace_id, TraceId::INVALID);

    // message ← outbox.deliver ← http.request (the root).
    assert_eq!(deliver.name, "outbox.deliver", "the message span's parent");
    assert_eq!(attr_str(&deliver, "topic"), "task-events");
    assert_eq!(attr_str(&message, "topic"), "task-events");
    let request = all
        .iter()
        .find(|s| s.span_context.span_id() == deliver.parent_span_id)
        .expect("the relay's span continues the request's context stored with the outbox row");
    assert_eq!(request.name, "POST /api/tasks", "{request:?}");
    assert_eq!(request.span_kind, SpanKind::Server);
    assert_eq!(attr_str(request, "http.route"), "/api/tasks");
    assert_eq!(
        attr(request, "http.response.status_code").map(|v| v.to_string()),
        Some("201".into())
    );
    assert_eq!(
        request.parent_span_id,
        SpanId::INVALID,
        "the request is the root"
    );
    for span in [request, &deliver, &message] {
        assert_eq!(span.span_context.trace_id(), trace_id, "{}", span.name);
    }

    // The pipeline: one component span per consumer, a call and effects under each.
    let components = check_pipeline(&all, &message);
    assert!(
        kinds(&all, components["audit"]).contains("append-audit"),
        "audit appended its entry"
    );
    assert!(
        kinds(&all, components["notification"]).contains("schedule-reminder"),
        "notification scheduled the reminders of a task due in 3 days"
    );
    assert!(kinds(&all, components["sync"]).contains("broadcast"));
    // The last effect: the push to the user's socket, after the commit. On SQLite it is pushed
    // right after the commit (a child of sync); on PostgreSQL it fans out to every instance by
    // LISTEN/NOTIFY and is pushed by the listener, in the same trace, under sync's broadcast
    // effect (sockets/fanout.rs).
    let sync_kids = children(&all, components["sync"]);
    let mut under_sync = sync_kids.clone();
    for kid in &sync_kids {
        under_sync.extend(children(&all, kid));
    }
    let push = only(named(&under_sync, "ws.push"), "ws.push under sync");
    assert_eq!(attr_str(push, "user_id"), user.id);
    assert_eq!(
        attr(push, "sockets").map(|v| v.to_string()),
        Some("1".into())
    );

    host.stop().await;
}

/// A `task.created` event of `user` as the Python producer's successor publishes it.
fn task_created(user: &User) -> Value {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let task_id = uuid::Uuid::new_v4().to_string();
    json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "event_type": "task.created",
        "event_timestamp": now,
        "user_id": user.id,
        "task": {
            "id": task_id, "user_id": user.id, "title": "from dapr", "description": null,
            "is_completed": false, "priority": "medium", "due_date": null,
            "is_recurring": false, "recurrence_frequency": null, "tags": [],
            "created_at": now, "updated_at": now,
        },
    })
}

/// What daprd delivers for `data` published with `traceparent` (it copies the publisher's
/// context into the CloudEvent).
fn cloudevent(data: Value, traceparent: &str) -> Value {
    json!({
        "data": data, "datacontenttype": "application/json", "id": uuid::Uuid::new_v4().to_string(),
        "pubsubname": "pubsub-kafka", "source": "taskhost", "specversion": "1.0",
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true), "topic": "task-events",
        "traceid": traceparent, "traceparent": traceparent, "tracestate": "vendor=x",
        "type": "com.dapr.event.sent",
    })
}

/// A fresh remote context: (trace id, span id, traceparent).
fn remote_context() -> (TraceId, SpanId, String) {
    let trace = TraceId::from_bytes(*uuid::Uuid::new_v4().as_bytes());
    let span = SpanId::from_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap());
    (trace, span, format!("00-{trace}-{span}-01"))
}

/// The `cloudevent` span of the delivery in `trace`, its parent being the publisher's span,
/// and the message span under it.
fn delivery_in(
    all: &[SpanData],
    trace: TraceId,
    publisher: SpanId,
) -> Result<(SpanData, SpanData), String> {
    let cloudevent = all
        .iter()
        .find(|s| s.name == "cloudevent" && s.span_context.trace_id() == trace)
        .ok_or_else(|| format!("no cloudevent span in trace {trace} yet"))?;
    if cloudevent.parent_span_id != publisher || !cloudevent.parent_span_is_remote {
        return Err(format!(
            "the cloudevent span's parent is {} (remote: {}), not the publisher's span {publisher}",
            cloudevent.parent_span_id, cloudevent.parent_span_is_remote
        ));
    }
    let message = all
        .iter()
        .find(|s| s.name == "message" && s.parent_span_id == cloudevent.span_context.span_id())
        .ok_or("no message span under the cloudevent span yet")?;
    Ok((cloudevent.clone(), message.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dapr_delivery_continues_the_cloudevent_trace() {
    let env = TestEnv::new();
    // Dapr mode with no sidecar (a closed port): the callbacks are the only way in.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{closed}");
    let host = InProcessHost::start(
        &env,
        &["--delivery", "dapr", "--dapr-http-endpoint", &endpoint],
    )
    .await;
    let user = User::new().await;
    let dapr = Api::at(&host.base);

    // A single delivery: daprd sends the same context as a header and in the CloudEvent.
    let (single_trace, single_parent, traceparent) = remote_context();
    let reply = dapr
        .clone()
        .with_header("traceparent", &traceparent)
        .post_bytes(
            "/dapr/events/task-events",
            "application/cloudevents+json",
            serde_json::to_vec(&cloudevent(task_created(&user), &traceparent)).unwrap(),
        )
        .await;
    assert_eq!(reply.value(), json!({ "status": "SUCCESS" }));

    // A bulk delivery: each entry continues its own publisher's trace.
    let bulk: Vec<(TraceId, SpanId, String)> = (0..2).map(|_| remote_context()).collect();
    let entries: Vec<Value> = bulk
        .iter()
        .enumerate()
        .map(|(i, (_, _, tp))| {
            json!({ "entryId": i.to_string(), "event": cloudevent(task_created(&user), tp),
                    "contentType": "application/cloudevents+json", "metadata": {} })
        })
        .collect();
    let reply = dapr
        .post(
            "/dapr/events/task-events",
            &json!({ "entries": entries, "id": uuid::Uuid::new_v4().to_string(),
                     "topic": "task-events", "pubsubname": "pubsub-kafka" }),
        )
        .await
        .expect(200)
        .value();
    assert_eq!(
        reply,
        json!({ "statuses": [{ "entryId": "0", "status": "SUCCESS" }, { "entryId": "1", "status": "SUCCESS" }] })
    );

    let expected = std::iter::once((single_trace, single_parent))
        .chain(bulk.iter().map(|(t, s, _)| (*t, *s)))
        .collect::<Vec<_>>();
    for (trace, publisher) in expected {
        let (_, message) = wait_until(
            "the delivery's spans in the publisher's trace",
            EFFECT_TIMEOUT,
            async || delivery_in(&spans(), trace, publisher),
        )
        .await;
        // The pipeline under it, all in the publisher's trace; the message span ends last.
        let all = spans();
        let components = check_pipeline(&all, &message);
        assert!(kinds(&all, components["audit"]).contains("append-audit"));
        for span in components.values() {
            assert_eq!(span.span_context.trace_id(), trace);
        }
    }

    host.stop().await;
}
