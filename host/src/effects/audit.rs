//! `append-audit`: one line of a task's audit trail, tagged with the component version.
//! Appended in bulk: the entries of a whole group commit go into one statement
//! ([`super::Deferred`]), since nothing else in the transaction reads the audit trail.

use super::{Deferred, Origin};
use crate::domain::AuditEntry;
use crate::storage::audit::NewAudit;
use chrono::{DateTime, Utc};
use std::borrow::Cow;

/// Borrows the entry from the effect it came in: the batch's statement reads it in place.
pub fn append<'a>(
    deferred: &mut Deferred<'a>,
    e: &'a AuditEntry,
    origin: Origin<'a>,
    now: DateTime<Utc>,
) {
    deferred.audit.push(NewAudit {
        entry: Cow::Borrowed(e),
        version: Cow::Borrowed(origin.version),
        now_ms: now.timestamp_millis(),
    });
}
