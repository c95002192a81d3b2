//! The existing Python backend as a producer: the events its code publishes — the requests
//! captured from it (`host/wire/tests/fixtures/python-backend/requests.json`, with the file and
//! commit they came from) — for a task of the test's user, at times relative to now.
//!
//! Every event is the captured one with its values replaced, never a shape written here: the
//! same keys, the same topics, the same component, naive ISO times where it writes them, a
//! fresh `eventId` per publish, `previousTaskData` built as it builds it (after the update, so
//! equal to `taskData`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// The pub/sub component its publisher names in `POST /v1.0/publish/{pubsub}/{topic}`.
pub const PUBSUB: &str = "kafka-pubsub";

const REQUESTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/wire/tests/fixtures/python-backend/requests.json"
);

/// The captured request bodies of one kind: `created`, `updated`, … or a reminder `scheduled`.
fn template(kind: &str) -> (String, Value) {
    let text = std::fs::read_to_string(REQUESTS).unwrap_or_else(|e| panic!("{REQUESTS}: {e}"));
    let doc: Value = serde_json::from_str(&text).expect("requests.json is JSON");
    doc["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .find(|r| r["body"]["eventType"] == kind || r["body"]["status"] == kind)
        .map(|r| {
            let path = r["path"].as_str().expect("path");
            let topic = path
                .strip_prefix(&format!("/v1.0/publish/{PUBSUB}/"))
                .unwrap_or_else(|| panic!("{path}: not a publish to {PUBSUB}"));
            (topic.to_owned(), r["body"].clone())
        })
        .unwrap_or_else(|| panic!("no {kind} request in {REQUESTS}"))
}

/// `datetime.isoformat()` of a naive UTC datetime (microseconds only when not zero).
pub fn naive(t: DateTime<Utc>) -> String {
    t.naive_utc()
        .format(if t.timestamp_subsec_micros() == 0 {
            "%Y-%m-%dT%H:%M:%S"
        } else {
            "%Y-%m-%dT%H:%M:%S%.6f"
        })
        .to_string()
}

/// Its envelope `timestamp`: `datetime.utcnow().isoformat() + "Z"`.
fn stamp(t: DateTime<Utc>) -> String {
    format!("{}Z", naive(t))
}

/// One event as the backend publishes it: the topic and the JSON body.
#[derive(Clone, Debug)]
pub struct Published {
    pub topic: String,
    pub body: Value,
}

impl Published {
    pub fn event_id(&self) -> &str {
        self.body["eventId"].as_str().expect("eventId")
    }

    /// The path its publisher posts to on its sidecar.
    pub fn path(&self) -> String {
        format!("/v1.0/publish/{PUBSUB}/{}", self.topic)
    }
}

/// A task of that backend, and the events its API publishes for it.
#[derive(Clone, Debug)]
pub struct PyTask {
    pub id: String,
    pub user_id: String,
    /// `taskData` now.
    state: Value,
}

impl PyTask {
    /// A task created now, due at `due`, reminding `notify_before` minutes before by
    /// `method` (`reminderConfig`), with no recurrence unless `recurrence_rule` is given.
    pub fn new(
        user_id: &str,
        title: &str,
        due: DateTime<Utc>,
        notify_before: u32,
        method: &str,
        recurrence_rule: Option<Value>,
    ) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        let (_, created) = template("created");
        let mut state = created["taskData"].clone();
        let now = naive(Utc::now());
        for (key, value) in [
            ("id", json!(id)),
            ("title", json!(title)),
            ("description", Value::Null),
            ("completed", json!(false)),
            ("userId", json!(user_id)),
            ("createdAt", json!(now)),
            ("updatedAt", json!(now)),
            ("priority", json!("high")),
            ("tags", json!(["home"])),
            ("dueDate", json!(naive(due))),
            (
                "reminderConfig",
                json!({"enabled": true, "notifyBefore": notify_before, "method": method}),
            ),
            ("recurrenceRule", recurrence_rule.unwrap_or(Value::Null)),
            ("status", json!("pending")),
        ] {
            assert!(
                state.get(key).is_some(),
                "the captured taskData has no {key}"
            );
            state[key] = value;
        }
        Self {
            id,
            user_id: user_id.to_owned(),
            state,
        }
    }

    /// `taskData` as it is now.
    pub fn data(&self) -> &Value {
        &self.state
    }

    fn event(&self, kind: &str, previous: Option<Value>) -> Published {
        let (topic, mut body) = template(kind);
        body["eventId"] = json!(uuid::Uuid::new_v4().to_string());
        body["timestamp"] = json!(stamp(Utc::now()));
        body["taskId"] = json!(self.id);
        body["userId"] = json!(self.user_id);
        body["taskData"] = self.state.clone();
        match previous {
            Some(previous) => body["previousTaskData"] = previous,
            None => assert!(body.get("previousTaskData").is_none()),
        }
        Published { topic, body }
    }

    /// `create_task`: `created` on `task-events`.
    pub fn created(&self) -> Published {
        self.event("created", None)
    }

    /// `update_task` with the fields `change` sets in `taskData`: `updated` on `task-updates`,
    /// with a `previousTaskData` equal to the new `taskData`, as that backend builds it.
    pub fn updated(&mut self, change: impl FnOnce(&mut Value)) -> Published {
        change(&mut self.state);
        self.state["updatedAt"] = json!(naive(Utc::now()));
        let previous = self.state.clone();
        self.event("updated", Some(previous))
    }

    /// `complete_task`: `completed` on `task-events`.
    pub fn completed(&mut self) -> Published {
        self.state["completed"] = json!(true);
        self.state["status"] = json!("completed");
        self.state["updatedAt"] = json!(naive(Utc::now()));
        self.event("completed", None)
    }

    /// `delete_task`: `deleted` on `task-events`.
    pub fn deleted(&self) -> Published {
        self.event("deleted", None)
    }

    /// When the reminder is for: `due_date - notifyBefore` minutes.
    pub fn remind_at(&self) -> DateTime<Utc> {
        self.due() - chrono::Duration::minutes(self.notify_before())
    }

    pub fn due(&self) -> DateTime<Utc> {
        let due = self.state["dueDate"].as_str().expect("a due date");
        DateTime::parse_from_rfc3339(&format!("{due}Z"))
            .expect("a naive ISO due date")
            .with_timezone(&Utc)
    }

    pub fn notify_before(&self) -> i64 {
        self.state["reminderConfig"]["notifyBefore"]
            .as_i64()
            .expect("notifyBefore")
    }

    /// `publish_reminder_event` after a create or update: a reminder on `reminders` with
    /// `status` (it always sends `scheduled`; its schema also allows `sent` and `cancelled`).
    pub fn reminder(&self, status: &str) -> Published {
        let (topic, mut body) = template("scheduled");
        for (key, value) in [
            ("eventId", json!(uuid::Uuid::new_v4().to_string())),
            ("timestamp", json!(stamp(Utc::now()))),
            ("taskId", json!(self.id)),
            ("title", self.state["title"].clone()),
            ("dueAt", self.state["dueDate"].clone()),
            ("remindAt", json!(naive(self.remind_at()))),
            ("userId", json!(self.user_id)),
            (
                "notificationMethod",
                self.state["reminderConfig"]["method"].clone(),
            ),
            ("status", json!(status)),
        ] {
            assert!(
                body.get(key).is_some(),
                "the captured reminder has no {key}"
            );
            body[key] = value;
        }
        Published { topic, body }
    }
}

/// An RFC 3339 instant, for assertions.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
