//! How a candidate (`crate::rollout`) and who asked for a step look in the admin API's answers:
//! shared by the component list (`admin.rs`) and the rollout routes (`rollout.rs`).

use crate::rollout::{Actor, Candidate, Mode};
use crate::wire::time;
use serde_json::{Value, json};

/// Who asked, for the journal: `admin API (by alice)`.
pub(super) fn actor(by: Option<String>, reason: Option<String>) -> Actor {
    let by = by.map(|b| b.trim().to_string()).filter(|b| !b.is_empty());
    Actor {
        who: match by {
            Some(by) => format!("admin API (by {by})"),
            None => "admin API".into(),
        },
        reason: reason.filter(|r| !r.trim().is_empty()),
    }
}

/// The candidate as the admin API and the page show it.
pub fn candidate_json(c: &Candidate) -> Value {
    json!({
        "version": c.version.version,
        "digest": c.version.digest,
        "mode": c.mode.label(),
        "percent": match c.mode { Mode::Canary { percent } => json!(percent), Mode::Shadow => Value::Null },
        "since": time::format(&c.since),
        "shadow": c.report.counts(),
        "canary": {
            "messages": c.canary_calls().0,
            "errors": c.canary_calls().1,
        },
    })
}
