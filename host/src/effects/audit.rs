//! `append-audit`: one line of a task's audit trail, tagged with the component version.
//! Appended in bulk: the entries of a whole group commit go into one statement
//! ([`super::Deferred`]), since nothing else in the transaction reads the audit trail.

use super::{Deferred, Origin};
use crate::domain::AuditEntry;
use crate::storage::audit::NewAudit;
use chrono::{DateTime, Utc};

pub fn append(deferred: &mut Deferred, e: AuditEntry, origin: Origin<'_>, now: DateTime<Utc>) {
    deferred.audit.push(NewAudit {
        entry: e,
        version: origin.version.to_string(),
        now_ms: now.timestamp_millis(),
    });
}
