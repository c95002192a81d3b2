//! `notify`: an entry in the user's in-app inbox, at most once per idempotency key; with a
//! configured Dapr output binding, also sent there (queued in the same transaction), with the
//! delivery method its producer asked for when there is one.

use super::Origin;
use crate::domain::Notification;
use crate::storage::sidecar_calls::{BINDING_TOPIC, BindingCall};
use crate::storage::{Conn, Result, notifications, outbox};
use crate::wire::time;
use chrono::{DateTime, Utc};
use serde_json::json;

/// Returns whether something was queued in the outbox.
pub async fn notify(
    conn: &mut Conn,
    n: &Notification,
    binding: Option<&str>,
    origin: Origin<'_>,
    now: DateTime<Utc>,
) -> Result<bool> {
    if !notifications::insert(conn, n).await? {
        tracing::debug!(component = origin.component, version = origin.version, key = %n.idempotency_key, "notification already delivered");
        return Ok(false);
    }
    let Some(binding) = binding else {
        return Ok(false);
    };
    let mut data = json!({ "user_id": n.user_id, "task_id": n.task_id, "title": n.title, "body": n.body,
                           "created_at": time::format(&n.created_at) });
    // How the producer wants it delivered (email, push or both): the binding's to honour.
    if let Some(method) = n.method {
        data["notification_method"] = json!(method.as_str());
    }
    let call = BindingCall {
        binding: binding.to_string(),
        data,
    };
    outbox::enqueue(
        conn,
        BINDING_TOPIC,
        n.user_id.as_str(),
        &serde_json::to_string(&call).expect("JSON"),
        now.timestamp_millis(),
    )
    .await?;
    Ok(true)
}
