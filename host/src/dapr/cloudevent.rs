//! Getting the producer's payload out of what daprd delivers: a structured CloudEvent 1.0
//! (payload under `data` or `data_base64` — the old Python consumers read the envelope's top
//! level and saw nothing), or the raw payload when the subscription set `rawPayload`.

use crate::telemetry::TraceContext;
use cloudevents::event::{AttributesReader, Data};
use serde_json::Value;

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
    fn rejects_broken_envelopes() {
        let err = unwrap(
            json!({"specversion": "1.0", "id": "x"}),
            "application/cloudevents+json",
        )
        .unwrap_err();
        assert!(err.contains("CloudEvent"), "{err}");
    }
}
