//! What a shadow compares: the effects each version would have the host apply, as JSON, field
//! by field.
//!
//! The view of an effect list ([`view`]) is what the component returned plus what the host
//! adds from the version itself (an audit entry's `component_version`): two builds that
//! return the same effects but would write different rows are different.

use crate::domain::Effect;
use serde_json::{Value, json};

/// One field that differs: its path in the effect list (`[0].append_audit.component_version`)
/// and its value on each side (`null` where it is absent).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FieldDiff {
    pub path: String,
    pub serving: Value,
    pub candidate: Value,
}

/// The effects as `version` would have the host apply them.
pub fn view(effects: &[Effect], version: &str) -> Value {
    Value::Array(
        effects
            .iter()
            .map(|effect| {
                let mut value = serde_json::to_value(effect).unwrap_or_else(
                    |e| json!({ "unserializable": effect.kind(), "reason": e.to_string() }),
                );
                if let (Effect::AppendAudit(_), Some(entry)) = (
                    effect,
                    value.get_mut("append_audit").and_then(Value::as_object_mut),
                ) {
                    entry.insert("component_version".into(), json!(version));
                }
                value
            })
            .collect(),
    )
}

/// Every leaf where `serving` and `candidate` differ (object keys in JSON order, array items in
/// order), at most `limit`
/// (an effect list can be large; the first differences are what a person reads).
pub fn fields(serving: &Value, candidate: &Value, limit: usize) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    walk(String::new(), serving, candidate, limit, &mut out);
    out
}

fn walk(path: String, a: &Value, b: &Value, limit: usize, out: &mut Vec<FieldDiff>) {
    if out.len() >= limit || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let keys = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let (x, y) = (
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                );
                walk(child, x, y, limit, out);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                walk(
                    format!("{path}[{i}]"),
                    a.get(i).unwrap_or(&Value::Null),
                    b.get(i).unwrap_or(&Value::Null),
                    limit,
                    out,
                );
            }
        }
        _ => out.push(FieldDiff {
            path,
            serving: a.clone(),
            candidate: b.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_differing_leaf_by_its_path() {
        let a = json!([{ "append_audit": { "actor": "u", "component_version": "0.1.0", "changes": [1, 2] } }]);
        let b = json!([{ "append_audit": { "actor": "u", "component_version": "0.2.0", "changes": [1] } }, { "notify": {} }]);
        let d = fields(&a, &b, 10);
        let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
        // Keys in JSON object order (sorted), array items in order.
        assert_eq!(
            paths,
            [
                "[0].append_audit.changes[1]",
                "[0].append_audit.component_version",
                "[1]"
            ]
        );
        assert_eq!((&d[0].serving, &d[0].candidate), (&json!(2), &Value::Null));
        assert_eq!(d[1].serving, json!("0.1.0"));
        assert_eq!(d[1].candidate, json!("0.2.0"));
        assert_eq!(
            (&d[2].serving, &d[2].candidate),
            (&Value::Null, &json!({ "notify": {} }))
        );
        assert!(fields(&a, &a, 10).is_empty());
        assert_eq!(fields(&a, &b, 1).len(), 1, "bounded");
    }
}
