//! `broadcast` to every instance: the push recorded in the transaction (see
//! `sockets/fanout.rs`), so that it leaves exactly when the change commits.

use super::Deferred;
use crate::domain::{SyncMessage, topics};
use crate::sockets::{self, Push};
use crate::storage::socket_pushes::NewPush;
use crate::storage::{Conn, Result, outbox};
use crate::telemetry::TraceContext;
use chrono::{DateTime, Utc};

/// PostgreSQL: a `socket_pushes` row and a `NOTIFY` to every listening instance, written with
/// the rest of the group commit's pushes ([`Deferred::flush`]), in this effect's trace.
pub fn notify(deferred: &mut Deferred<'_>, m: &SyncMessage, now: DateTime<Utc>) {
    deferred.pushes.push(NewPush {
        user_id: m.user_id.as_str().to_owned(),
        frame: sockets::encode(m),
        trace: TraceContext::current(),
        now_ms: now.timestamp_millis(),
    });
}

/// Dapr: an outbox row on `task-updates`, keyed by user like the task events (so a user's
/// pushes keep their order), published by the relay and delivered to every replica.
pub async fn publish(conn: &mut Conn, m: &SyncMessage, now: DateTime<Utc>) -> Result<()> {
    let push = Push::new(m.user_id.clone(), &sockets::encode(m));
    outbox::enqueue(
        conn,
        topics::TASK_UPDATES,
        m.user_id.as_str(),
        &push.to_json(),
        now.timestamp_millis(),
    )
    .await
}
