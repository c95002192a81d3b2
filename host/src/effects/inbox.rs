//! `notify`: an entry in the user's in-app inbox, at most once per idempotency key.

use crate::domain::Notification;
use crate::storage::{Conn, Result, notifications};

pub async fn notify(conn: &mut Conn, n: &Notification) -> Result<()> {
    if !notifications::insert(conn, n).await? {
        tracing::debug!(key = %n.idempotency_key, "notification already delivered");
    }
    Ok(())
}
