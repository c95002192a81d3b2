//! Deliveries from daprd: `POST /dapr/events/{topic}`, single or bulk, answered with Dapr's
//! contract — `SUCCESS`, `RETRY` (transient) or `DROP` (permanent; daprd then forwards the
//! message to the subscription's dead-letter topic). Every non-success says why in the log, and
//! a drop's reason is kept in the dead-letter table.
//!
//! `POST /dapr/sockets/{topic}` takes the socket fan-out (`sockets/fanout.rs`): deliveries of
//! `task-updates` through a pub/sub with a consumer group per sidecar, so every replica gets
//! each one. A socket push there goes to this replica's sockets, and nothing else happens (no
//! component, no exactly-once record: each replica must push). The same push also reaches one
//! replica through the shared subscription on `/dapr/events/task-updates`, where it is
//! acknowledged and ignored; task events on `task-updates` are handled there, once.

use super::cloudevent::{self, Delivered};
use super::config::dead_letter_topic;
use crate::api::AppState;
use crate::pipeline::Disposition;
use crate::sockets::Push;
use crate::storage::dead_letters;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;

fn status(d: &Disposition) -> &'static str {
    match d {
        Disposition::Success => "SUCCESS",
        Disposition::Retry(_) => "RETRY",
        Disposition::Drop(_) => "DROP",
    }
}

#[derive(Debug, Deserialize)]
struct BulkEntry {
    #[serde(rename = "entryId")]
    entry_id: String,
    event: Value,
    #[serde(rename = "contentType", default)]
    content_type: String,
}

#[derive(Debug, Deserialize)]
struct BulkRequest {
    entries: Vec<BulkEntry>,
}

/// Which subscription a delivery came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// `/dapr/events/{topic}`: shared by the app id's consumer group; through the pipeline.
    Events,
    /// `/dapr/sockets/{topic}`: every replica; socket pushes to this replica's sockets.
    Sockets,
}

/// `POST /dapr/events/{topic}`.
pub async fn deliver(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(state, topic, Route::Events, headers, body).await
}

/// `POST /dapr/sockets/{topic}`.
pub async fn sockets(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(state, topic, Route::Sockets, headers, body).await
}

async fn receive(
    state: AppState,
    topic: String,
    route: Route,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let header_traceparent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let span =
        tracing::info_span!("dapr.delivery", %topic, ?route, traceparent = header_traceparent);
    async move {
        if route == Route::Events && !state.registry.subscribes(&topic) {
            tracing::warn!(%topic, "DROP: no component consumes this topic");
            return Json(json!({ "status": "DROP" })).into_response();
        }
        if !(content_type.is_empty() || content_type.contains("json")) {
            let reason = format!("unsupported content type `{content_type}`: expected application/cloudevents+json or application/json");
            return Json(json!({ "status": drop_single(&state, &topic, None, &body, reason).await })).into_response();
        }
        let value: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let reason = format!("body is not JSON: {e}");
                return Json(json!({ "status": drop_single(&state, &topic, None, &body, reason).await })).into_response();
            }
        };
        if value.get("entries").is_some() && value.get("specversion").is_none() {
            return match bulk(&state, &topic, route, value).await {
                Ok(statuses) => Json(statuses).into_response(),
                // Not 2xx: daprd retries the whole batch.
                Err(error) => (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response(),
            };
        }
        let disposition = match cloudevent::unwrap(value, &content_type) {
            Ok(d) => handle(&state, &topic, route, &d).await,
            Err(reason) => {
                let disposition = Disposition::Drop(reason);
                record_drop(&state, &topic, None, &body, reason_of(&disposition)).await;
                log(&topic, None, &disposition);
                disposition
            }
        };
        Json(json!({ "status": status(&disposition) })).into_response()
    }
    .instrument(span)
    .await
}

async fn bulk(state: &AppState, topic: &str, route: Route, value: Value) -> Result<Value, String> {
    let request: BulkRequest = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => {
            // Without entry ids there is nothing to answer per entry: an error status makes
            // daprd retry the whole batch (and the resiliency policy bounds that).
            tracing::warn!(%topic, error = %e, "RETRY: malformed bulk delivery");
            return Err(format!("malformed bulk delivery: {e}"));
        }
    };
    // Entries of one user run in the order daprd gave them; different users' entries run side
    // by side, so that their commits meet in the pipeline's group commit instead of each
    // waiting for the previous one's (a bulk delivery is up to 100 entries of one partition).
    let entries: Vec<Entry> = request.entries.into_iter().map(Entry::unwrap).collect();
    let chains = chains_by_user(&entries);
    let answered = futures::future::join_all(chains.into_iter().map(|chain| {
        let entries = &entries;
        async move {
            let mut answered = Vec::with_capacity(chain.len());
            for i in chain {
                answered.push((i, entries[i].handle(state, topic, route).await));
            }
            answered
        }
    }))
    .await;
    let mut statuses = vec![Value::Null; entries.len()];
    for (i, disposition) in answered.into_iter().flatten() {
        statuses[i] = json!({ "entryId": entries[i].entry_id, "status": status(&disposition) });
    }
    Ok(json!({ "statuses": statuses }))
}

/// One entry of a bulk delivery, unwrapped.
struct Entry {
    entry_id: String,
    /// The entry's event as received, for the dead-letter record of an entry that does not
    /// unwrap.
    raw: Vec<u8>,
    event: Result<Delivered, String>,
}

impl Entry {
    fn unwrap(entry: BulkEntry) -> Self {
        let raw = serde_json::to_vec(&entry.event).unwrap_or_default();
        let event = cloudevent::unwrap(entry.event, &entry.content_type);
        Self {
            entry_id: entry.entry_id,
            raw,
            event,
        }
    }

    /// The user whose order this entry keeps; `None` for one that does not say (it is handled
    /// on its own).
    fn user(&self) -> Option<String> {
        self.event
            .as_ref()
            .ok()
            .and_then(|d| crate::wire::peek_user_id(&d.payload))
    }

    async fn handle(&self, state: &AppState, topic: &str, route: Route) -> Disposition {
        match &self.event {
            Ok(d) => handle(state, topic, route, d).await,
            Err(reason) => {
                let disposition = Disposition::Drop(reason.clone());
                record_drop(state, topic, None, &self.raw, reason_of(&disposition)).await;
                log(topic, None, &disposition);
                disposition
            }
        }
    }
}

/// Indexes of `entries` grouped per user, each group in delivery order; an entry without a
/// user is a group of its own.
fn chains_by_user(entries: &[Entry]) -> Vec<Vec<usize>> {
    crate::delivery::chains::by_key(0..entries.len(), |&i| entries[i].user())
}

/// One unwrapped message: a socket push to the sockets, anything else through the pipeline.
async fn handle(state: &AppState, topic: &str, route: Route, d: &Delivered) -> Disposition {
    let span = tracing::info_span!(
        "cloudevent",
        id = d.id.as_deref().unwrap_or(""),
        traceparent = d.trace.as_ref().map_or("", |t| t.traceparent.as_str())
    );
    // Each entry of a bulk delivery continues its own publisher's trace.
    if let Some(trace) = &d.trace {
        trace.continue_in(&span);
    }
    async {
        match (Push::parse(&d.payload), route) {
            (Err(reason), _) => {
                record_drop(state, topic, d.id.as_deref(), &d.payload, &reason).await;
                return Disposition::Drop(reason);
            }
            (Ok(Some(push)), Route::Sockets) => {
                // In the trace of the change (the CloudEvent carries the publisher's context).
                let span = tracing::info_span!(target: crate::telemetry::SPANS, "ws.push", user_id = %push.user_id, sockets = tracing::field::Empty).entered();
                let sent = state.hub.push_frame(&push.user_id, push.frame_text().into());
                span.record("sockets", sent);
                tracing::debug!(user_id = %push.user_id, sockets = sent, "pushed sync message");
                return Disposition::Success;
            }
            (Ok(Some(push)), Route::Events) => {
                tracing::debug!(user_id = %push.user_id, "socket push on the shared subscription: every replica pushes it from /dapr/sockets");
                return Disposition::Success;
            }
            (Ok(None), Route::Sockets) => {
                tracing::debug!("not a socket push: handled once through the shared subscription");
                return Disposition::Success;
            }
            (Ok(None), Route::Events) => {}
        }
        let report = state.pipeline.deliver(topic, &d.payload).await;
        let disposition = report.disposition();
        let event_id = report.event_id.as_deref().or(d.id.as_deref());
        if let Disposition::Drop(reason) = &disposition {
            record_drop(state, topic, event_id, &d.payload, reason).await;
        }
        log(topic, event_id, &disposition);
        disposition
    }
    .instrument(span)
    .await
}

async fn drop_single(
    state: &AppState,
    topic: &str,
    id: Option<&str>,
    body: &[u8],
    reason: String,
) -> &'static str {
    record_drop(state, topic, id, body, &reason).await;
    log(topic, id, &Disposition::Drop(reason));
    "DROP"
}

/// Keeps the reason of a drop: daprd forwards the message itself to the dead-letter topic,
/// but a topic carries no reason.
async fn record_drop(
    state: &AppState,
    topic: &str,
    event_id: Option<&str>,
    body: &[u8],
    reason: &str,
) {
    let payload = String::from_utf8_lossy(body);
    let result = async {
        let mut conn = state.db.pool().acquire().await?;
        let d = dead_letters::NewDeadLetter {
            topic,
            component: None,
            event_id,
            payload: &payload,
            reason,
            // Dapr counts the attempts of a dropped message; the host sees one.
            attempts: 1,
        };
        dead_letters::insert(&mut conn, d, crate::wire::time::now().timestamp_millis()).await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(%topic, error = %e, %reason, "could not record a dropped message's reason");
    }
}

fn reason_of(d: &Disposition) -> &str {
    match d {
        Disposition::Retry(r) | Disposition::Drop(r) => r,
        Disposition::Success => "",
    }
}

/// The answer for one message, with its event id (the CloudEvent id when the payload did not
/// decode); the reason names the component and version that failed.
fn log(topic: &str, event_id: Option<&str>, d: &Disposition) {
    let event_id = event_id.unwrap_or("");
    match d {
        Disposition::Success => tracing::debug!(%topic, event_id, "SUCCESS"),
        Disposition::Retry(reason) => tracing::warn!(%topic, event_id, %reason, "RETRY"),
        Disposition::Drop(reason) => {
            tracing::warn!(%topic, event_id, %reason, dead_letter_topic = %dead_letter_topic(topic), "DROP")
        }
    }
}

/// `POST /dapr/dead-letters/{topic}`: a message arrived on `{topic}-dlq`. One this app dropped
/// is recorded with the reason of its drop; one daprd gave up retrying is handled again (and
/// recorded only if it fails for good).
pub async fn dead_letter(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let dlq = dead_letter_topic(&topic);
    let delivered = serde_json::from_slice::<Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|v| cloudevent::unwrap(v, &content_type));
    let (id, payload) = match &delivered {
        Ok(d) => (
            d.id.clone(),
            String::from_utf8_lossy(&d.payload).into_owned(),
        ),
        Err(_) => (None, String::from_utf8_lossy(&body).into_owned()),
    };
    let event_id = crate::wire::peek_event_id(payload.as_bytes());
    tracing::warn!(topic = %dlq, event_id = event_id.as_deref().or(id.as_deref()).unwrap_or(""), "message arrived on the dead-letter topic");
    let result = async {
        let mut conn = state.db.pool().acquire().await?;
        // A drop is recorded under the payload's event id when it decoded, and under the
        // CloudEvent id (which daprd keeps when it forwards) when it did not: look under both.
        let mut reason = None;
        for key in [event_id.as_deref(), id.as_deref()].into_iter().flatten() {
            if reason.is_none() {
                reason = dead_letters::reason_for(&mut conn, &topic, key).await?;
            }
        }
        drop(conn);
        let reason = match reason {
            Some(reason) => reason,
            // Not dropped by this app: daprd gave up retrying (e.g. taskhost was down longer
            // than the resiliency policy's budget). Handle it now — exactly-once makes a late
            // or repeated delivery safe — and only keep it as a dead letter if that fails.
            None => match state.pipeline.deliver(&topic, payload.as_bytes()).await.disposition() {
                Disposition::Success => {
                    tracing::info!(topic = %dlq, event_id = event_id.as_deref().unwrap_or(""), "recovered a message from the dead-letter topic");
                    return Ok(true);
                }
                Disposition::Retry(reason) => {
                    tracing::warn!(topic = %dlq, %reason, "RETRY: recovering a dead-lettered message failed for now");
                    return Ok(false);
                }
                Disposition::Drop(reason) => reason,
            },
        };
        let mut conn = state.db.pool().acquire().await?;
        let d = dead_letters::NewDeadLetter {
            topic: &dlq,
            component: None,
            event_id: event_id.as_deref().or(id.as_deref()),
            payload: &payload,
            reason: &reason,
            // The sidecar's retries are not visible to the host.
            attempts: 1,
        };
        dead_letters::insert(&mut conn, d, crate::wire::time::now().timestamp_millis()).await?;
        Ok::<_, crate::storage::StorageError>(true)
    }
    .await;
    match result {
        Ok(true) => Json(json!({ "status": "SUCCESS" })),
        Ok(false) => Json(json!({ "status": "RETRY" })),
        Err(e) => {
            tracing::warn!(topic = %dlq, error = %e, "RETRY: cannot record dead letter");
            Json(json!({ "status": "RETRY" }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, event: Value) -> Entry {
        Entry::unwrap(BulkEntry {
            entry_id: id.into(),
            event,
            content_type: "application/json".into(),
        })
    }

    #[test]
    fn bulk_entries_are_chained_per_user_in_delivery_order() {
        let entries = vec![
            entry("0", json!({"event_id": "e0", "user_id": "a"})),
            entry("1", json!({"event_id": "e1", "user_id": "b"})),
            entry("2", json!({"event_id": "e2", "userId": "a"})),
            // No user: its own chain (the pipeline drops it with the reason).
            entry("3", json!({"event_id": "e3"})),
            entry("4", json!({"event_id": "e4", "user_id": "b"})),
            entry("5", json!({"event_id": "e5"})),
            entry("6", json!({"event_id": "e6", "user_id": "a"})),
        ];
        assert_eq!(
            chains_by_user(&entries),
            vec![vec![0, 2, 6], vec![1, 4], vec![3], vec![5]]
        );
    }
}
