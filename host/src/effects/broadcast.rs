//! `broadcast` to every instance: the push recorded in the transaction (see
//! `sockets/fanout.rs`), so that it leaves exactly when the change commits.

use crate::domain::{SyncMessage, topics};
use crate::sockets::{self, Push};
use crate::storage::{Conn, Result, outbox, socket_pushes};
use chrono::{DateTime, Utc};

/// PostgreSQL: a `socket_pushes` row and a `NOTIFY` to every listening instance.
pub async fn notify(conn: &mut Conn, m: &SyncMessage, now: DateTime<Utc>) -> Result<()> {
    socket_pushes::insert(
        conn,
        &m.user_id,
        &sockets::encode(m),
        now.timestamp_millis(),
    )
    .await
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
