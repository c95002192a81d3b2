//! Deliveries from daprd: `POST /dapr/events/{topic}`, single or bulk, answered with Dapr's
//! contract — `SUCCESS`, `RETRY` (transient) or `DROP` (permanent; daprd then forwards the
//! message to the subscription's dead-letter topic). Every message goes through the pipeline,
//! which records the reason of a drop ([`crate::pipeline::dead_letter`]); what cannot even be
//! read is recorded the same way before it is dropped.
//!
//! `POST /dapr/sockets/{topic}` takes the socket fan-out (`sockets/fanout.rs`): deliveries of
//! `task-updates` through a pub/sub with a consumer group per sidecar, so every replica gets
//! each one. A socket push there goes to this replica's sockets, and nothing else happens (no
//! component, no exactly-once record: each replica must push). The same push also reaches one
//! replica through the shared subscription on `/dapr/events/task-updates`, where it is
//! acknowledged and ignored; task events on `task-updates` are handled there, once.

use super::DaprState;
use super::cloudevent::{self, Unwrapped};
use crate::pipeline::{
    Answer, Attempt, Handled, HeldBehind, Received, Seat, Settle, Started, Undelivered, dlq_topic,
};
use crate::sockets::Push;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;
use tracing::Instrument;

/// Dapr's word for an answer: the one place an [`Answer`] becomes `SUCCESS`/`RETRY`/`DROP`.
fn status(answer: &Answer) -> &'static str {
    match answer {
        Answer::Done => "SUCCESS",
        // Dapr has no "hold": daprd retries by its resiliency policy either way.
        Answer::Retry(_) | Answer::Hold(_) => "RETRY",
        Answer::Drop(_) => "DROP",
    }
}

/// One entry of a bulk delivery; its event is kept as the JSON text it came as (each entry is
/// read on its own, most in one pass: `cloudevent::unwrap_plain`).
#[derive(Debug, Deserialize)]
struct BulkEntry<'a> {
    #[serde(rename = "entryId")]
    entry_id: String,
    #[serde(borrow)]
    event: &'a RawValue,
    #[serde(rename = "contentType", default)]
    content_type: String,
}

#[derive(Debug, Deserialize)]
struct BulkRequest<'a> {
    #[serde(borrow)]
    entries: Vec<BulkEntry<'a>>,
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
pub async fn events(
    State(state): State<Arc<DaprState>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(state, topic, Route::Events, headers, body).await
}

/// `POST /dapr/sockets/{topic}`.
pub async fn sockets(
    State(state): State<Arc<DaprState>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(state, topic, Route::Sockets, headers, body).await
}

async fn receive(
    state: Arc<DaprState>,
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
        let single = |answer: Answer| Json(json!({ "status": status(&answer) })).into_response();
        if route == Route::Events && !state.registry.subscribes(&topic) {
            let reason = "no component consumes this topic".to_string();
            return single(refuse(&state, &topic, None, &body, reason).await);
        }
        if !(content_type.is_empty() || content_type.contains("json")) {
            let reason = format!("unsupported content type `{content_type}`: expected application/cloudevents+json or application/json");
            return single(refuse(&state, &topic, None, &body, reason).await);
        }
        // Nearly every delivery: a structured CloudEvent with JSON data, read in one pass.
        if let Some(event) = cloudevent::unwrap_plain(&body) {
            return single(one(&state, &topic, route, &event, None).await);
        }
        let value: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let reason = format!("body is not JSON: {e}");
                return single(refuse(&state, &topic, None, &body, reason).await);
            }
        };
        if value.get("entries").is_some() && value.get("specversion").is_none() {
            return match bulk(&state, &topic, route, &body).await {
                Ok(statuses) => Json(statuses).into_response(),
                // Not 2xx: daprd retries the whole batch.
                Err(error) => (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response(),
            };
        }
        let answer = match cloudevent::unwrap(value, &content_type) {
            Ok(event) => one(&state, &topic, route, &event, None).await,
            Err(reason) => refuse(&state, &topic, None, &body, reason).await,
        };
        single(answer)
    }
    .instrument(span)
    .await
}

/// A bulk delivery: each user's entries in the order daprd gave them, different users' side by
/// side in waves — each user's next entry — whose commits share one transaction
/// (`pipeline/wave.rs`) instead of each reaching a committer on its own; a bulk delivery is up
/// to 100 entries of one partition.
///
/// Once one of a user's entries is to be retried, that user's later entries are not handled
/// now but answered `RETRY` too: handling them would apply them before the one retried, and
/// a user's events are applied in order.
async fn bulk(state: &DaprState, topic: &str, route: Route, body: &[u8]) -> Result<Value, String> {
    let request: BulkRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            // Without entry ids there is nothing to answer per entry: an error status makes
            // daprd retry the whole batch (and the resiliency policy bounds that).
            tracing::warn!(%topic, error = %e, "RETRY: malformed bulk delivery");
            return Err(format!("malformed bulk delivery: {e}"));
        }
    };
    let entries: Vec<Entry> = request.entries.into_iter().map(Entry::unwrap).collect();
    let chains = chains_by_user(&entries);
    // How long a bulk delivery takes and how deep its users' chains are: a user's entries
    // commit one after another, each after the previous one's answer, so the longest chain
    // bounds the delivery's time however many users run side by side (docs/benchmarks.md,
    // items 24 and 29).
    let started = std::time::Instant::now();
    let (users, longest_chain) = (chains.len(), chains.iter().map(Vec::len).max().unwrap_or(0));
    // One wave per depth: each user's next entry, side by side, committing together
    // (pipeline/wave.rs). A user's entries are chained from one wave to the next: the next
    // starts once the previous one's wave is queued, so that its calls run while that wave
    // commits, and commits — or is held, if the previous one is to be retried — only after the
    // previous one is answered. Each user's entries keep their order.
    let mut waves: Vec<std::vec::IntoIter<Seat>> = (0..longest_chain)
        .map(|depth| {
            let members = chains.iter().filter(|c| c.len() > depth).count();
            state.pipeline.wave(members).into_iter()
        })
        .collect();
    let mut work = Vec::with_capacity(entries.len());
    for chain in &chains {
        let mut seats: Vec<Seat> = (0..chain.len())
            .map(|depth| {
                waves[depth]
                    .next()
                    .expect("one seat per chain reaching this depth")
            })
            .collect();
        let mut links: Vec<(Option<Started>, Option<Settle>)> =
            chain.iter().map(|_| (None, None)).collect();
        for k in 1..chain.len() {
            let (earlier, later) = seats.split_at_mut(k);
            let (started, settle) = Seat::chain(&mut earlier[k - 1], &mut later[0]);
            links[k].0 = Some(started);
            links[k - 1].1 = Some(settle);
        }
        work.extend(chain.iter().zip(seats).zip(links));
    }
    let answered =
        futures::future::join_all(work.into_iter().map(|((&i, seat), (started, settle))| {
            let entry = &entries[i];
            async move {
                if let Some(started) = started {
                    started.wait().await;
                }
                let answer = entry.handle(state, topic, route, Some(seat)).await;
                if let Some(settle) = settle {
                    let retried = matches!(answer, Answer::Retry(_) | Answer::Hold(_));
                    settle.answered(&format!("entry {}", entry.entry_id), retried);
                }
                (i, answer)
            }
        }))
        .await;
    let mut answers: Vec<Option<Answer>> = entries.iter().map(|_| None).collect();
    for (i, answer) in answered {
        answers[i] = Some(answer);
    }
    tracing::debug!(
        %topic,
        entries = entries.len(),
        users,
        longest_chain,
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "bulk delivery handled"
    );
    let statuses: Vec<Value> = entries
        .iter()
        .zip(answers)
        .map(|(entry, answer)| {
            let answer = answer.expect("every entry is in one chain, answered at its depth");
            json!({ "entryId": entry.entry_id, "status": status(&answer) })
        })
        .collect();
    Ok(json!({ "statuses": statuses }))
}

/// One entry of a bulk delivery, unwrapped.
struct Entry {
    entry_id: String,
    /// The entry's event as received, for the dead letter of an entry that does not unwrap.
    raw: Vec<u8>,
    event: Result<Unwrapped, String>,
}

impl Entry {
    fn unwrap(entry: BulkEntry) -> Self {
        let raw = entry.event.get().as_bytes().to_vec();
        // The general path for what is not a plain CloudEvent.
        let event = cloudevent::unwrap_plain(&raw).map(Ok).unwrap_or_else(|| {
            serde_json::from_str::<Value>(entry.event.get())
                .map_err(|e| format!("event is not JSON: {e}"))
                .and_then(|value| cloudevent::unwrap(value, &entry.content_type))
        });
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

    async fn handle(
        &self,
        state: &DaprState,
        topic: &str,
        route: Route,
        seat: Option<Seat>,
    ) -> Answer {
        match &self.event {
            Ok(event) => one(state, topic, route, event, seat).await,
            Err(reason) => {
                // Nothing to commit: the rest of the wave need not wait for the dead letter.
                drop(seat);
                refuse(state, topic, None, &self.raw, reason.clone()).await
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
/// With a `seat`, its effects commit with the rest of a bulk delivery's wave.
async fn one(
    state: &DaprState,
    topic: &str,
    route: Route,
    event: &Unwrapped,
    seat: Option<Seat>,
) -> Answer {
    // For the trace only: on a log line the message span gives the event id (a log line
    // about an entry that never reached it names the CloudEvent id itself, see `refuse`).
    let span = tracing::info_span!(
        target: crate::telemetry::SPANS,
        "cloudevent",
        id = event.id.as_deref().unwrap_or(""),
        traceparent = event.trace.as_ref().map_or("", |t| t.traceparent.as_str())
    );
    // Each entry of a bulk delivery continues its own publisher's trace.
    if let Some(trace) = &event.trace {
        trace.continue_in(&span);
    }
    async {
        let parsed = Push::parse(&event.payload);
        if matches!((&parsed, route), (Ok(None), Route::Events)) {
            let received = Received {
                topic,
                payload: &event.payload,
                id: event.id.as_deref(),
            };
            let fate = state
                .pipeline
                .handle_seated(received, Attempt::UNCOUNTED, seat)
                .await;
            let event_id = fate.handled.event_id().map(|e| e.as_str()).or(event.id.as_deref());
            match &fate.handled {
                // The entry it waits behind was logged with its own reason.
                Handled::Held(held) => log_held(topic, event_id, held),
                _ => log(topic, event_id, &fate.answer),
            }
            return fate.answer;
        }
        // Not through the pipeline, so nothing to commit with the wave; but not before the same
        // user's previous entry either (pipeline/wave.rs).
        let earlier = seat.as_ref().and_then(Seat::earlier);
        drop(seat);
        if let Some(earlier) = earlier
            && let Err(held) = earlier.settled().await
        {
            log_held(topic, event.id.as_deref(), &held);
            return (&held).into();
        }
        match (parsed, route) {
            (Err(reason), _) => {
                refuse(state, topic, event.id.as_deref(), &event.payload, reason).await
            }
            (Ok(Some(push)), Route::Sockets) => {
                // In the trace of the change (the CloudEvent carries the publisher's context).
                let span = tracing::info_span!(target: crate::telemetry::SPANS, "ws.push", user_id = %push.user_id, sockets = tracing::field::Empty).entered();
                let sent = state.hub.push_frame(&push.user_id, push.frame_text().into());
                span.record("sockets", sent);
                tracing::debug!(user_id = %push.user_id, sockets = sent, "pushed sync message");
                Answer::Done
            }
            (Ok(Some(push)), Route::Events) => {
                tracing::debug!(user_id = %push.user_id, "socket push on the shared subscription: every replica pushes it from /dapr/sockets");
                Answer::Done
            }
            (Ok(None), _) => {
                tracing::debug!("not a socket push: handled once through the shared subscription");
                Answer::Done
            }
        }
    }
    .instrument(span)
    .await
}

/// A delivery the host cannot read: its reason is recorded as a dead letter, then it is
/// dropped (daprd forwards it to the dead-letter topic). If the record cannot be written, it
/// is retried instead: nothing is dropped without its reason kept.
async fn refuse(
    state: &DaprState,
    topic: &str,
    id: Option<&str>,
    body: &[u8],
    reason: String,
) -> Answer {
    let recorded = state
        .pipeline
        .dead_letters()
        .undelivered(Undelivered {
            topic,
            id,
            payload: body,
            reason: &reason,
            attempts: 1,
            exhausted: false,
            forwarded_to: None,
        })
        .await;
    let answer = match recorded {
        Ok(()) => Answer::Drop(reason),
        Err(e) => Answer::Retry(format!("{reason}; recording the dead letter failed: {e}")),
    };
    log(topic, id, &answer);
    answer
}

/// A `RETRY` for an entry held behind the same user's earlier one: at debug, since that one's
/// own line says why.
fn log_held(topic: &str, event_id: Option<&str>, held: &HeldBehind) {
    tracing::debug!(%topic, event_id = event_id.unwrap_or(""), reason = %held, "RETRY");
}

/// The answer for one message, with its event id (the CloudEvent id when the payload did not
/// decode); the reason names the component and version that failed.
fn log(topic: &str, event_id: Option<&str>, answer: &Answer) {
    let event_id = event_id.unwrap_or("");
    match answer {
        Answer::Done => tracing::debug!(%topic, event_id, "SUCCESS"),
        Answer::Retry(reason) | Answer::Hold(reason) => {
            tracing::warn!(%topic, event_id, %reason, "RETRY")
        }
        Answer::Drop(reason) => {
            tracing::warn!(%topic, event_id, %reason, dead_letter_topic = %dlq_topic(topic), "DROP")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, event: Value) -> Entry {
        let text = serde_json::to_string(&event).unwrap();
        Entry::unwrap(BulkEntry {
            entry_id: id.into(),
            event: serde_json::from_str::<&RawValue>(&text).unwrap(),
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

    #[test]
    fn every_answer_has_its_dapr_word() {
        assert_eq!(status(&Answer::Done), "SUCCESS");
        assert_eq!(status(&Answer::Retry("x".into())), "RETRY");
        assert_eq!(status(&Answer::Hold("x".into())), "RETRY");
        assert_eq!(status(&Answer::Drop("x".into())), "DROP");
    }
}
