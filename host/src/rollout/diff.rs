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

/// The fields that differ between what `serving` (returned by `serving_version`) and
/// `candidate` (by `candidate_version`) would have the host apply: [`fields`] of their
/// [`view`]s, without building either when the effects are equal (the common case of a
/// candidate that behaves the same), where only what the host adds from the version can differ.
pub fn between(
    serving: &[Effect],
    serving_version: &str,
    candidate: &[Effect],
    candidate_version: &str,
    limit: usize,
) -> Vec<FieldDiff> {
    if serving != candidate {
        return fields(
            &view(serving, serving_version),
            &view(candidate, candidate_version),
            limit,
        );
    }
    if serving_version == candidate_version {
        return Vec::new();
    }
    // What `view` adds from the version, and nothing else.
    serving
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Effect::AppendAudit(_)))
        .take(limit)
        .map(|(i, _)| FieldDiff {
            path: format!("[{i}].append_audit.component_version"),
            serving: json!(serving_version),
            candidate: json!(candidate_version),
        })
        .collect()
}

/// Whether [`between`] would name any field, without building one: the effects differ, or they
/// are equal and the versions differ in what the host adds from the version (an audit entry's
/// `component_version`). `Effect`'s equality is that of its JSON (derived, no skipped field, no
/// float), so this is exactly `!between(..).is_empty()`. The shadow counts every call with it
/// and leaves the field-level diff to the few samples a report is asked for.
pub fn differs(
    serving: &[Effect],
    serving_version: &str,
    candidate: &[Effect],
    candidate_version: &str,
) -> bool {
    serving != candidate
        || (serving_version != candidate_version
            && serving.iter().any(|e| matches!(e, Effect::AppendAudit(_))))
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

    fn audit(task: &str) -> Effect {
        use crate::domain::{AuditEntry, EventId, TaskId, TaskOperation, UserId};
        Effect::AppendAudit(AuditEntry {
            event_id: EventId::new("e1").unwrap(),
            task_id: TaskId::new(task).unwrap(),
            actor: UserId::new("u1").unwrap(),
            operation: TaskOperation::Created,
            at: chrono::DateTime::UNIX_EPOCH,
            previous: None,
            current: None,
            changes: vec![],
        })
    }

    #[test]
    fn between_equals_the_diff_of_the_views_without_building_them() {
        let ours = vec![Effect::CancelReminder("job".into()), audit("t1")];
        let theirs_same = ours.clone();
        let theirs_other = vec![Effect::CancelReminder("job".into()), audit("t2")];
        for (theirs, v2) in [
            (&theirs_same, "0.1.0"),
            (&theirs_same, "0.2.0"),
            (&theirs_other, "0.1.0"),
            (&theirs_other, "0.2.0"),
        ] {
            assert_eq!(
                between(&ours, "0.1.0", theirs, v2, 32),
                fields(&view(&ours, "0.1.0"), &view(theirs, v2), 32),
                "{v2} {theirs:?}"
            );
        }
        let none: Vec<Effect> = Vec::new();
        let cancel = vec![Effect::CancelReminder("job".into())];
        for (a, b) in [
            (&ours, &theirs_same),
            (&ours, &theirs_other),
            (&none, &none),
            (&cancel, &cancel),
            (&none, &ours),
            (&cancel, &ours),
        ] {
            for (v1, v2) in [("0.1.0", "0.1.0"), ("0.1.0", "0.2.0")] {
                assert_eq!(
                    differs(a, v1, b, v2),
                    !between(a, v1, b, v2, 32).is_empty(),
                    "{a:?} {v1} / {b:?} {v2}"
                );
            }
        }
        let d = between(&ours, "0.1.0", &theirs_same, "0.2.0", 32);
        assert_eq!(d[0].path, "[1].append_audit.component_version");
    }
}
