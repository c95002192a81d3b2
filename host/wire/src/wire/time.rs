//! Timestamps on the wire: RFC 3339 out; RFC 3339, naive ISO 8601 (read as UTC) or a plain date in.
//!
//! The Python producer this system replaces wrote naive `datetime.isoformat()` strings; comparing
//! naive and aware times crashed its consumers (lesson 9). Here every time is UTC-aware from the
//! moment it is decoded, and a string that is none of the accepted forms is a decode error that
//! names the value.

use chrono::{DateTime, Datelike as _, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Parses a wire timestamp. Years outside 0000-9999 are refused: RFC 3339 cannot write them,
/// so such a time could be read in but never written out again (found by the fuzz target:
/// chrono's `%Y` takes `-202` or `+12026`).
pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    let t = parse_any(s)
        .ok_or_else(|| format!("`{s}` is not an RFC 3339 timestamp (e.g. 2026-01-31T09:00:00Z)"))?;
    if !(0..=9999).contains(&t.year()) {
        return Err(format!("`{s}` is outside the years 0000-9999"));
    }
    Ok(t)
}

fn parse_any(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
}

/// The current time at millisecond precision: the precision of the database, the WIT
/// `timestamp` and the wire, so a value read back equals the value written.
pub fn now() -> DateTime<Utc> {
    from_millis(Utc::now().timestamp_millis())
}

/// Formats as RFC 3339 UTC with a `Z`, milliseconds only when non-zero.
pub fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// From epoch milliseconds (the WIT `timestamp` and the database representation).
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// serde adapter for `DateTime<Utc>` fields.
pub mod required {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }
}

/// serde adapter for `Option<DateTime<Utc>>` fields (null or absent = `None`).
pub mod optional {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) if s.trim().is_empty() => Ok(None),
            Some(s) => parse(&s).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_aware_naive_and_date_forms() {
        let z = parse("2026-01-31T09:00:00Z").unwrap();
        assert_eq!(parse("2026-01-31T10:00:00+01:00").unwrap(), z);
        assert_eq!(parse("2026-01-31T09:00:00").unwrap(), z);
        assert_eq!(parse("2026-01-31T09:00:00.000000").unwrap(), z);
        assert_eq!(
            format(&parse("2026-01-31").unwrap()),
            "2026-01-31T00:00:00Z"
        );
    }

    #[test]
    fn rejects_garbage_naming_the_value() {
        let err = parse("next tuesday").unwrap_err();
        assert!(err.contains("next tuesday"), "{err}");
    }

    #[test]
    fn refuses_years_rfc_3339_cannot_write() {
        for s in ["-0202-01-02T10:00:00", "+12026-01-02T10:00:00", "-1-01-01"] {
            let err = parse(s).unwrap_err();
            assert!(err.contains(s), "{err}");
        }
        assert_eq!(
            format(&parse("0000-01-01").unwrap()),
            "0000-01-01T00:00:00Z"
        );
        assert_eq!(
            format(&parse("9999-12-31T23:59:59Z").unwrap()),
            "9999-12-31T23:59:59Z"
        );
    }

    #[test]
    fn formats_millis_only_when_present() {
        assert_eq!(format(&from_millis(1_000)), "1970-01-01T00:00:01Z");
        assert_eq!(format(&from_millis(1_500)), "1970-01-01T00:00:01.500Z");
    }
}
