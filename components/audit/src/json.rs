//! Just enough JSON writing for audit values: strings, timestamps, arrays and flat objects.
//!
//! Hand-written because a serializer crate would be most of the component's size for a handful
//! of shapes; every value is built from these functions, so escaping happens in one place.

use chrono::{DateTime, SecondsFormat};

use crate::todo::events::types::{Failure, Timestamp};

/// A piece of JSON text.
pub type Json = String;

/// A JSON string literal. Escapes what JSON requires (`"`, `\` and the control characters
/// U+0000–U+001F) and leaves everything else, non-ASCII included, as UTF-8.
pub fn string(text: &str) -> Json {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An instant as an RFC 3339 UTC string, `"2026-01-31T09:00:00Z"`, with milliseconds only when
/// there are any (`"2026-01-31T09:00:00.250Z"`). Out of chrono's range (±262,000 years) it is
/// malformed data, not something to write into a trail.
pub fn timestamp(ms: Timestamp) -> Result<Json, Failure> {
    DateTime::from_timestamp_millis(ms)
        .map(|t| string(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
        .ok_or_else(|| Failure::Drop(format!("timestamp {ms} ms is out of range")))
}

/// `[a,b]` from values that are already JSON.
pub fn array(items: impl IntoIterator<Item = Json>) -> Json {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(","))
}

/// `{"key":value,…}` from keys that need no escaping and values that are already JSON.
pub fn object<const N: usize>(fields: [(&str, Json); N]) -> Json {
    let fields: Vec<String> = fields
        .into_iter()
        .map(|(key, value)| format!("{}:{value}", string(key)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

/// The value, or `null`.
pub fn nullable(value: Option<Json>) -> Json {
    value.unwrap_or_else(|| "null".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_what_json_requires() {
        assert_eq!(string(r#"say "hi" \o/"#), r#""say \"hi\" \\o/""#);
        assert_eq!(string("a\nb\tc\r\u{08}\u{0C}"), r#""a\nb\tc\r\b\f""#);
        assert_eq!(string("\u{0}\u{1f}\u{7f}"), "\"\\u0000\\u001f\u{7f}\"");
        assert_eq!(string("café ✓ 😀"), "\"café ✓ 😀\"");
        assert_eq!(string("é\"ü\u{1}x\\"), r#""é\"ü\u0001x\\""#);
    }

    #[test]
    fn strings_are_what_serde_json_writes() {
        let mut samples: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        samples.extend([
            String::new(),
            every_ascii.clone(),
            every_ascii.chars().rev().collect(),
            "plain title".into(),
            "\"quoted\" at both ends\"".into(),
            "ünïcödé\u{1}\u{1f}\\\n 😀\t".into(),
        ]);
        for text in samples {
            assert_eq!(
                string(&text),
                serde_json::to_string(&text).unwrap(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn timestamps_show_milliseconds_only_when_there_are_some() {
        assert_eq!(
            timestamp(1_769_850_000_000).unwrap(),
            r#""2026-01-31T09:00:00Z""#
        );
        assert_eq!(
            timestamp(1_769_850_000_250).unwrap(),
            r#""2026-01-31T09:00:00.250Z""#
        );
        assert_eq!(timestamp(0).unwrap(), r#""1970-01-01T00:00:00Z""#);
        assert_eq!(timestamp(-1).unwrap(), r#""1969-12-31T23:59:59.999Z""#);
        assert!(timestamp(i64::MAX).is_err());
    }
}
