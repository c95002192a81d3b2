//! Logs of the real binary with `--log-format json`: every line about a message carries its
//! event id and topic and, for a component's part, the component and version — including what
//! a component writes to stderr (recurrence logs a series that ends), and the line about each
//! task a component created (its key, occurrence and due date).

mod support;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use support::{EFFECT_TIMEOUT, Host, HostOptions, TestEnv, User, wait_until};

/// The value of `key` on a JSON log line: the event's own fields, then its spans, innermost
/// first.
fn field<'a>(line: &'a Value, key: &str) -> Option<&'a Value> {
    line.get(key).or_else(|| {
        line.get("spans")?
            .as_array()?
            .iter()
            .rev()
            .find_map(|span| span.get(key))
    })
}

fn in_span(line: &Value, name: &str) -> bool {
    line.get("spans")
        .and_then(Value::as_array)
        .is_some_and(|spans| spans.iter().any(|s| s["name"] == name))
}

/// The first JSON line of the host's log that `matches`, waited for.
async fn logged(host: &Host, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
    wait_until(what, EFFECT_TIMEOUT, async || {
        host.stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| matches(l))
            .ok_or_else(|| "not logged yet".to_string())
    })
    .await
}

#[tokio::test]
async fn every_line_about_a_message_names_the_event_topic_component_and_version() {
    let mut env = TestEnv::new();
    let host = env
        .start_with(
            &HostOptions::new()
                .env("TASKHOST_LOG_FORMAT", "json")
                // The per-component "handled" lines are debug.
                .env("TASKHOST_LOG", "info,taskhost=debug,sqlx=warn"),
        )
        .await;
    let user = User::new().await;
    let api = host.api(&user);
    let due = (Utc::now() + TimeDelta::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let task = api
        .create_task(&json!({ "title": "logged", "due_date": due,
                              "is_recurring": true, "recurrence_frequency": "daily" }))
        .await;
    api.complete_task(&task.id).await;
    // Recurrence's answer to the completion: the next instance, and the host's line about it.
    wait_until("the next instance", EFFECT_TIMEOUT, async || {
        let n = api.tasks().await.len();
        if n == 2 {
            Ok(())
        } else {
            Err(format!("{n} tasks"))
        }
    })
    .await;
    let key = format!("recurrence:{}:2", task.id);
    let created_line = logged(&host, "the line about the created task", |l| {
        l["message"] == "created task from component effect" && field(l, "key") == Some(&json!(key))
    })
    .await;
    assert_eq!(
        field(&created_line, "component"),
        Some(&json!("recurrence"))
    );
    assert_eq!(field(&created_line, "occurrence"), Some(&json!(2)));
    assert_eq!(field(&created_line, "series_id"), Some(&json!(task.id)));
    let next_due = field(&created_line, "due_date")
        .and_then(Value::as_str)
        .and_then(|d| DateTime::parse_from_rfc3339(d).ok());
    assert_eq!(
        next_due,
        Some(DateTime::parse_from_rfc3339(&due).unwrap() + TimeDelta::days(1)),
        "the next occurrence is due a day after the first: {created_line}"
    );

    // A series that ends: recurrence says why on its stderr.
    let last = api
        .create_task(&json!({ "title": "last of its series", "due_date": due,
                              "is_recurring": true, "recurrence_frequency": "daily",
                              "recurrence_max_occurrences": 1 }))
        .await;
    api.complete_task(&last.id).await;
    let ended = format!("series {} ended: occurrence 1 of at most 1", last.id);
    let stderr_line = logged(&host, "recurrence's stderr line in the log", |l| {
        l["target"] == "taskhost::component"
            && l["message"].as_str().is_some_and(|m| m.starts_with(&ended))
    })
    .await;

    // The component's stderr: attributed to the message and the component version.
    assert_eq!(field(&stderr_line, "component"), Some(&json!("recurrence")));
    assert!(
        field(&stderr_line, "version")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    );
    assert_eq!(field(&stderr_line, "topic"), Some(&json!("task-events")));
    assert!(
        field(&stderr_line, "event_id")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    );

    // Every line about a component's part of a message (the component's own span is in the
    // trace only, so the line names the component itself) has all four.
    let lines: Vec<Value> = host
        .stderr()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let about_components: Vec<&Value> = lines
        .iter()
        .filter(|l| in_span(l, "message") && field(l, "component").is_some())
        .collect();
    // What only a component's part logs (its stderr, its effects) must name it.
    for line in lines.iter().filter(|l| in_span(l, "message")) {
        let target = line["target"].as_str().unwrap_or("");
        if target == "taskhost::component" || target.starts_with("taskhost::effects") {
            assert!(
                field(line, "component").is_some(),
                "a line of a component's part without `component`: {line}"
            );
        }
    }
    assert!(
        about_components.len() >= 8,
        "at least two events × four components: at least 8 lines, got {}",
        about_components.len()
    );
    for line in about_components {
        for key in ["event_id", "topic", "component", "version"] {
            assert!(
                field(line, key)
                    .and_then(Value::as_str)
                    .is_some_and(|v| !v.is_empty()),
                "`{key}` missing on {line}"
            );
        }
    }
}
