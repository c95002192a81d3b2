//! The messages the benchmarks send: the event schemas of the Task API's outbox (README
//! "Events"), each chosen so the component it is meant for does real work with it.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn task(
    id: &str,
    due: Option<DateTime<Utc>>,
    recurring: bool,
    done: bool,
    now: DateTime<Utc>,
) -> Value {
    json!({
        "id": id, "title": format!("benchmark task {id}"), "description": "measured by taskhost-bench",
        "priority": "high", "due_date": due.map(ts), "is_recurring": recurring,
        "recurrence_frequency": recurring.then_some("weekly"), "tags": ["bench", "work"],
        "is_completed": done, "created_at": ts(now), "updated_at": ts(now)
    })
}

fn event(
    id: &str,
    ty: &str,
    user: &str,
    task: Value,
    previous: Value,
    now: DateTime<Utc>,
) -> String {
    json!({"event_id": id, "event_type": ty, "event_timestamp": ts(now), "user_id": user,
           "task": task, "previous": previous})
    .to_string()
}

/// The message each component is measured with (row 1), on topic `task-events`:
/// recurrence gets a completion of a recurring task (creates the next instance), notification
/// a new task with a due date (schedules two reminders), audit an update with a previous state
/// (field-level changes), sync an update (a socket message).
pub fn for_component(component: &str, n: u64) -> String {
    let now = Utc::now();
    let due = now + Duration::days(30);
    let (user, id, ev) = (format!("u{n}"), format!("t{n}"), format!("e{n}"));
    match component {
        "recurrence" => event(
            &ev,
            "task.completed",
            &user,
            task(&id, Some(due), true, true, now),
            task(&id, Some(due), true, false, now),
            now,
        ),
        "notification" => event(
            &ev,
            "task.created",
            &user,
            task(&id, Some(due), false, false, now),
            Value::Null,
            now,
        ),
        _ => {
            let mut before = task(&id, Some(due), false, false, now);
            before["title"] = json!("old title");
            before["priority"] = json!("low");
            event(
                &ev,
                "task.updated",
                &user,
                task(&id, Some(due + Duration::days(1)), false, false, now),
                before,
                now,
            )
        }
    }
}

/// A `task.created` without a due date for `user`: every `task-events` consumer handles it
/// (audit appends, sync broadcasts, recurrence and notification record it as processed), and
/// none of its effects needs the Dapr sidecar. Used for the delivery-route rows.
pub fn created(event_id: &str, user: &str) -> String {
    let now = Utc::now();
    event(
        event_id,
        "task.created",
        user,
        task(&format!("{event_id}-task"), None, false, false, now),
        Value::Null,
        now,
    )
}

/// The Task API body of one write (row 3): no due date, so no reminder jobs.
pub fn new_task_body(n: u64) -> Value {
    json!({"title": format!("benchmark task {n}"), "priority": "medium", "tags": ["bench"]})
}

/// A CloudEvent envelope as daprd delivers it (structured mode, JSON data).
pub fn cloudevent(id: &str, topic: &str, data: &str) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": "taskhost-bench", "type": "com.dapr.event.sent",
        "datacontenttype": "application/json", "topic": topic, "pubsubname": "pubsub-kafka",
        "data": serde_json::from_str::<Value>(data).expect("benchmark events are JSON")
    })
}
