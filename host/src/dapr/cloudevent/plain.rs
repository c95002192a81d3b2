//! The common case read in one pass: a structured CloudEvent 1.0 whose `data` is a JSON object,
//! as daprd delivers nearly every message.
//!
//! The general path (`super::unwrap`) builds the body's whole value tree, converts it into the
//! SDK's event (a second tree), and serialises `data` again — three passes and a few hundred
//! allocations per delivery before the payload is even decoded. Here the body is scanned once,
//! the attributes borrowed from it, and the payload is `data`'s own bytes.
//!
//! This only ever says "plain" about an envelope the general path accepts with the same id,
//! trace context and payload; anything else — `data_base64`, a `dataschema`, data that is not
//! an object, an escaped string, an attribute no extension can hold (which the general path
//! sets aside and logs), a repeated attribute, a broken one — is left to the general path,
//! which accepts or refuses it as it always has.

use super::Unwrapped;
use crate::telemetry::TraceContext;
use serde::Deserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// The envelope's unwrapped message, if `body` is a plain CloudEvent; `None` leaves it to the
/// general path.
pub fn unwrap_plain(body: &[u8]) -> Option<Unwrapped> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let envelope = de.deserialize_map(PlainVisitor).ok()?;
    de.end().ok()?;
    envelope.unwrapped()
}

/// What the scan found, borrowed from the body.
#[derive(Default)]
struct Plain<'a> {
    specversion: Option<&'a str>,
    id: Option<&'a str>,
    source: bool,
    kind: bool,
    time: Option<&'a str>,
    datacontenttype: Option<&'a str>,
    data: Option<&'a RawValue>,
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
    /// Something only the general path handles (see the module's doc).
    unusual: bool,
}

impl Plain<'_> {
    fn unwrapped(self) -> Option<Unwrapped> {
        if self.unusual || self.specversion != Some("1.0") || !self.source || !self.kind {
            return None;
        }
        let id = self.id?;
        if let Some(time) = self.time {
            chrono::DateTime::parse_from_rfc3339(time).ok()?;
        }
        if self
            .datacontenttype
            .is_some_and(|t| !t.to_ascii_lowercase().contains("json"))
        {
            return None;
        }
        let data = self.data?.get();
        if !data.starts_with('{') {
            return None;
        }
        Some(Unwrapped {
            id: Some(id.to_string()),
            trace: TraceContext::received(self.traceparent, self.tracestate),
            payload: data.as_bytes().to_vec(),
        })
    }
}

struct PlainVisitor;

impl<'de> Visitor<'de> for PlainVisitor {
    type Value = Plain<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CloudEvent envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Plain<'de>, A::Error> {
        let mut p = Plain::default();
        let mut seen: Vec<&'de str> = Vec::with_capacity(16);
        while let Some(key) = map.next_key::<&'de str>()? {
            if seen.contains(&key) {
                p.unusual = true;
            }
            seen.push(key);
            match key {
                "specversion" => p.specversion = Some(map.next_value()?),
                "id" => p.id = Some(map.next_value()?),
                "source" => p.source = map.next_value::<&str>().is_ok(),
                "type" => p.kind = map.next_value::<&str>().is_ok(),
                "time" => p.time = Some(map.next_value()?),
                "subject" => {
                    map.next_value::<&str>()?;
                }
                "datacontenttype" => p.datacontenttype = Some(map.next_value()?),
                "data" => p.data = Some(map.next_value()?),
                "data_base64" | "dataschema" | "schemaurl" | "datacontentencoding" => {
                    map.next_value::<IgnoredAny>()?;
                    p.unusual = true;
                }
                "traceparent" | "tracestate" => {
                    let value: &RawValue = map.next_value()?;
                    match serde_json::from_str::<&str>(value.get()) {
                        Ok(s) if key == "traceparent" => p.traceparent = Some(s),
                        Ok(s) => p.tracestate = Some(s),
                        Err(_) => p.unusual = true,
                    }
                }
                _ => {
                    let value: &RawValue = map.next_value()?;
                    p.unusual |= !fits_an_extension(value.get());
                }
            }
        }
        Ok(p)
    }
}

/// Whether an extension attribute's JSON text is something a CloudEvents extension holds
/// (a string, a boolean, a 64-bit integer, null), as `super::fits_an_extension` decides for a
/// parsed value.
fn fits_an_extension(json: &str) -> bool {
    match json.as_bytes().first() {
        Some(b'"' | b't' | b'f' | b'n') => true,
        Some(b'-' | b'0'..=b'9') => json.parse::<i64>().is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::unwrap;
    use super::*;
    use serde_json::{Value, json};

    fn envelope() -> Value {
        json!({"data": {"event_id": "e1", "user_id": "u1", "task": {"title": "x", "tags": ["a"]}},
               "datacontenttype": "application/json", "id": "abe9051a", "pubsubname": "pubsub-kafka",
               "source": "taskhost", "specversion": "1.0", "time": "2026-11-24T12:46:57Z",
               "topic": "task-events", "traceid": "", "traceparent": "", "tracestate": "",
               "type": "com.dapr.event.sent"})
    }

    /// The plain reading agrees with the general path wherever it reads at all.
    fn agrees(e: &Value) -> bool {
        let body = serde_json::to_vec(e).unwrap();
        let general = unwrap(e.clone(), "application/cloudevents+json");
        match unwrap_plain(&body) {
            Some(plain) => {
                let general = general.expect("the general path accepts what the plain one reads");
                assert_eq!(plain.id, general.id);
                assert_eq!(plain.trace, general.trace);
                assert_eq!(
                    serde_json::from_slice::<Value>(&plain.payload).unwrap(),
                    serde_json::from_slice::<Value>(&general.payload).unwrap()
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn reads_what_daprd_sends_as_the_general_path_does() {
        assert!(agrees(&envelope()));
        let mut e = envelope();
        e["traceparent"] = json!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        e["tracestate"] = json!("congo=t61rcWkgMzE");
        e["attempt"] = json!(2);
        e["retried"] = json!(true);
        e["nothing"] = Value::Null;
        e["subject"] = json!("task");
        assert!(agrees(&e));
        let mut e = envelope();
        e.as_object_mut().unwrap().remove("datacontenttype");
        e.as_object_mut().unwrap().remove("time");
        assert!(agrees(&e));
    }

    #[test]
    fn the_payload_is_datas_own_bytes() {
        let body = br#"{"specversion":"1.0","id":"x","source":"s","type":"t","data": {"b": 2, "a": [1]} }"#;
        let d = unwrap_plain(body).unwrap();
        assert_eq!(d.payload, br#"{"b": 2, "a": [1]}"#);
        assert_eq!(d.id.as_deref(), Some("x"));
        assert_eq!(d.trace, None);
    }

    #[test]
    fn leaves_everything_else_to_the_general_path() {
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "data_base64",
                Box::new(|e| {
                    e.as_object_mut().unwrap().remove("data");
                    e["data_base64"] = json!("eyJhIjoxfQ==");
                }),
            ),
            (
                "data as a string",
                Box::new(|e| e["data"] = json!("{\"a\":1}")),
            ),
            ("data an array", Box::new(|e| e["data"] = json!([1]))),
            (
                "no data",
                Box::new(|e| {
                    e.as_object_mut().unwrap().remove("data");
                }),
            ),
            (
                "an object attribute",
                Box::new(|e| e["taskData"] = json!({"title": "x"})),
            ),
            ("an array attribute", Box::new(|e| e["tags"] = json!(["a"]))),
            ("a fraction", Box::new(|e| e["ratio"] = json!(0.5))),
            ("beyond i64", Box::new(|e| e["big"] = json!(u64::MAX))),
            (
                "a time that is no time",
                Box::new(|e| e["time"] = json!("noon")),
            ),
            (
                "a time of the wrong kind",
                Box::new(|e| e["time"] = json!({"at": "noon"})),
            ),
            (
                "no id",
                Box::new(|e| {
                    e.as_object_mut().unwrap().remove("id");
                }),
            ),
            (
                "no source",
                Box::new(|e| {
                    e.as_object_mut().unwrap().remove("source");
                }),
            ),
            (
                "no type",
                Box::new(|e| {
                    e.as_object_mut().unwrap().remove("type");
                }),
            ),
            (
                "specversion 0.3",
                Box::new(|e| e["specversion"] = json!("0.3")),
            ),
            (
                "a dataschema",
                Box::new(|e| e["dataschema"] = json!("https://example.com/s")),
            ),
            (
                "not JSON data",
                Box::new(|e| e["datacontenttype"] = json!("text/plain")),
            ),
            (
                "a numeric traceparent",
                Box::new(|e| e["traceparent"] = json!(7)),
            ),
            ("an escaped id", Box::new(|e| e["id"] = json!("a\"b"))),
        ];
        for (name, change) in cases {
            let mut e = envelope();
            change(&mut e);
            assert!(!agrees(&e), "{name}: left to the general path");
        }
        assert!(unwrap_plain(b"not json").is_none());
        assert!(unwrap_plain(br#"{"entries": []}"#).is_none());
        let doubled =
            br#"{"specversion":"1.0","id":"x","id":"y","source":"s","type":"t","data":{}}"#;
        assert!(unwrap_plain(doubled).is_none(), "a repeated attribute");
        let trailing = br#"{"specversion":"1.0","id":"x","source":"s","type":"t","data":{}} {}"#;
        assert!(unwrap_plain(trailing).is_none(), "trailing input");
    }
}
