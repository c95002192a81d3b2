//! Getting the producer's payload out of what daprd delivers: a structured CloudEvent 1.0
//! (payload under `data` or `data_base64` — the old Python consumers read the envelope's top
//! level and saw nothing), or the raw payload when the subscription set `rawPayload`.
//!
//! The meaning is in `data`. An envelope may carry more top-level attributes than CloudEvents
//! extensions can hold (a string, a boolean or an integer): a producer that copies its event's
//! fields into the envelope as well as into `data` adds objects, arrays, fractions. Those are
//! set aside (each attribute name logged once per process) rather than dropping the whole
//! message, whose `data` is intact; an envelope whose own attributes are broken (no `id`, a
//! `time` that is no time) is still refused.

mod plain;

pub use plain::unwrap_plain;

use crate::telemetry::TraceContext;
use cloudevents::event::{AttributesReader, Data};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// The attributes CloudEvents defines (1.0, and 0.3's two others): everything else at the top
/// level is an extension.
const DEFINED: [&str; 12] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
    "schemaurl",
    "datacontentencoding",
];

/// One message of a delivery, out of its envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Unwrapped {
    /// The CloudEvent id (for logs and dead letters); `None` for raw payloads.
    pub id: Option<String>,
    /// The CloudEvent's `traceparent`/`tracestate` extensions (daprd fills them from the
    /// publisher's headers): the delivery continues that trace.
    pub trace: Option<TraceContext>,
    /// The producer's JSON payload.
    pub payload: Vec<u8>,
}

/// Unwraps one event from its JSON value and content type.
pub fn unwrap(value: Value, content_type: &str) -> Result<Unwrapped, String> {
    let is_cloudevent =
        content_type.starts_with("application/cloudevents") || value.get("specversion").is_some();
    if !is_cloudevent {
        return Ok(Unwrapped {
            id: None,
            trace: None,
            payload: serde_json::to_vec(&value).expect("JSON"),
        });
    }
    let extension = |name| value.get(name).and_then(Value::as_str);
    let trace = TraceContext::received(extension("traceparent"), extension("tracestate"));
    let mut value = value;
    if let Some(envelope) = value.as_object_mut() {
        let odd = set_aside_odd_extensions(envelope);
        if !odd.is_empty() {
            log_once(envelope.get("id").and_then(Value::as_str), &odd);
        }
    }
    let event: cloudevents::Event =
        serde_json::from_value(value).map_err(|e| format!("not a valid CloudEvent 1.0: {e}"))?;
    let payload = match event.data() {
        Some(Data::Json(v)) => serde_json::to_vec(v).expect("JSON"),
        // A JSON payload published as a string, or as bytes (data_base64).
        Some(Data::String(s)) => s.clone().into_bytes(),
        Some(Data::Binary(b)) => b.clone(),
        None => return Err(format!("CloudEvent {} has no data", event.id())),
    };
    Ok(Unwrapped {
        id: Some(event.id().to_string()),
        trace,
        payload,
    })
}

/// Whether a CloudEvents extension can hold `v` (the SDK's `ExtensionValue`: string, boolean,
/// 64-bit integer; a null extension is ignored).
fn fits_an_extension(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(_) | Value::String(_) => true,
        Value::Number(n) => n.is_i64(),
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// Removes the top-level extension attributes no extension can hold; returns their names.
fn set_aside_odd_extensions(envelope: &mut Map<String, Value>) -> Vec<String> {
    let odd: Vec<String> = envelope
        .iter()
        .filter(|(name, v)| !DEFINED.contains(&name.as_str()) && !fits_an_extension(v))
        .map(|(name, _)| name.clone())
        .collect();
    for name in &odd {
        envelope.remove(name);
    }
    odd
}

/// A warning the first time an attribute name is set aside, a debug line after that: a
/// producer that adds such attributes adds them to every message.
fn log_once(id: Option<&str>, odd: &[String]) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let new: Vec<&String> = {
        let mut seen = SEEN
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        odd.iter()
            .filter(|name| seen.insert((*name).clone()))
            .collect()
    };
    let id = id.unwrap_or("");
    if new.is_empty() {
        tracing::debug!(cloudevent_id = id, attributes = ?odd, "set aside CloudEvent attributes that are not extensions");
    } else {
        tracing::warn!(cloudevent_id = id, attributes = ?new,
            "CloudEvent envelope has top-level attributes that are not valid extensions (objects, arrays or fractions): \
             set aside, the message is read from its `data` (logged once per attribute name)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dapr_envelope(data: Value) -> Value {
        json!({"data": data, "datacontenttype": "application/json", "id": "abe9051a", "pubsubname": "pubsub-kafka",
               "source": "taskhost", "specversion": "1.0", "time": "2026-11-24T12:46:57Z", "topic": "task-events",
               "traceid": "", "traceparent": "", "tracestate": "", "type": "com.dapr.event.sent"})
    }

    #[test]
    fn unwraps_data_from_what_daprd_sends() {
        let d = unwrap(
            dapr_envelope(json!({"a": 1})),
            "application/cloudevents+json",
        )
        .unwrap();
        assert_eq!(d.id.as_deref(), Some("abe9051a"));
        assert_eq!(
            serde_json::from_slice::<Value>(&d.payload).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(d.trace, None, "an empty traceparent is none");
    }

    #[test]
    fn keeps_the_trace_context_extensions() {
        let mut e = dapr_envelope(json!({"a": 1}));
        e["traceparent"] = json!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        e["tracestate"] = json!("congo=t61rcWkgMzE");
        let d = unwrap(e, "application/cloudevents+json").unwrap();
        let trace = d.trace.expect("a trace context");
        assert_eq!(
            trace.traceparent,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(trace.tracestate, "congo=t61rcWkgMzE");
    }

    #[test]
    fn unwraps_data_base64() {
        let mut e = dapr_envelope(Value::Null);
        e.as_object_mut().unwrap().remove("data");
        e["data_base64"] = json!("eyJhIjoxfQ==");
        let d = unwrap(e, "application/cloudevents+json").unwrap();
        assert_eq!(d.payload, br#"{"a":1}"#);
    }

    #[test]
    fn passes_raw_payloads_through() {
        let d = unwrap(json!({"event_id": "x"}), "application/json").unwrap();
        assert_eq!(d.id, None);
        assert_eq!(
            serde_json::from_slice::<Value>(&d.payload).unwrap(),
            json!({"event_id": "x"})
        );
    }

    #[test]
    fn reads_data_when_the_envelope_carries_object_attributes_too() {
        // A producer that copies its event's fields into the envelope as well as into `data`:
        // the SDK alone refuses the whole message ("data did not match any variant of
        // untagged enum ExtensionValue").
        let data = json!({"eventId": "e1", "eventType": "updated", "userId": "u1",
                          "taskData": {"title": "x", "tags": ["a"]}});
        let mut e = dapr_envelope(data.clone());
        e["taskData"] = data["taskData"].clone();
        e["tags"] = json!(["a", "b"]);
        e["ratio"] = json!(0.5);
        e["eventid"] = json!("e1");
        e["attempt"] = json!(2);
        e["retried"] = json!(true);
        e["nothing"] = Value::Null;
        assert!(
            serde_json::from_value::<cloudevents::Event>(e.clone()).is_err(),
            "the SDK refuses it as it is"
        );
        let d = unwrap(e, "application/cloudevents+json").unwrap();
        assert_eq!(d.id.as_deref(), Some("abe9051a"));
        assert_eq!(serde_json::from_slice::<Value>(&d.payload).unwrap(), data);
    }

    #[test]
    fn sets_aside_only_what_no_extension_can_hold() {
        let mut envelope = dapr_envelope(json!({"a": 1}));
        envelope["taskData"] = json!({"title": "x"});
        envelope["big"] = json!(u64::MAX);
        envelope["ok"] = json!(7);
        let mut odd = set_aside_odd_extensions(envelope.as_object_mut().unwrap());
        odd.sort();
        assert_eq!(odd, ["big", "taskData"]);
        assert_eq!(envelope["ok"], 7);
        assert_eq!(envelope["data"], json!({"a": 1}));
    }

    #[test]
    fn rejects_broken_envelopes() {
        let err = unwrap(
            json!({"specversion": "1.0", "id": "x"}),
            "application/cloudevents+json",
        )
        .unwrap_err();
        assert!(err.contains("CloudEvent"), "{err}");
        // A defined attribute of the wrong kind is not set aside: the envelope is broken.
        let mut e = dapr_envelope(json!({"a": 1}));
        e["time"] = json!({"at": "noon"});
        let err = unwrap(e, "application/cloudevents+json").unwrap_err();
        assert!(err.contains("CloudEvent"), "{err}");
    }
}
