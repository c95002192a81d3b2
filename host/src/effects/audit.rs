//! `append-audit`: one line of a task's audit trail, tagged with the component version.

use super::Origin;
use crate::domain::AuditEntry;
use crate::storage::{Conn, Result, audit};
use chrono::{DateTime, Utc};

pub async fn append(
    conn: &mut Conn,
    e: &AuditEntry,
    origin: Origin<'_>,
    now: DateTime<Utc>,
) -> Result<()> {
    if !audit::insert(conn, e, origin.version, now.timestamp_millis()).await? {
        tracing::debug!(event_id = %e.event_id, "audit entry already recorded");
    }
    Ok(())
}
