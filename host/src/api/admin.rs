//! Operator routes (components and hot swap, dead letters), guarded by the admin token (`Authorization: Bearer <admin token>`). Without
//! a configured token they answer 404, as if they did not exist.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::delivery::{ReplayOutcome, Replayer};
use crate::runtime::{Cause, LimitOverrides, LoadedComponent, SwapError, Swapped};
use crate::storage::dead_letters::{self, DeadLetterRecord};
use crate::wire::time;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

pub(super) fn authorize(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let Some(expected) = &state.admin_token else {
        return Err(ApiError::not_found(
            "admin routes are disabled: set TASKHOST_ADMIN_TOKEN",
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::unauthorized("admin routes need Authorization: Bearer <admin token>")
        })?;
    // Constant-time enough for a shared secret of fixed length: compare digests.
    use sha2::{Digest, Sha256};
    if Sha256::digest(given.trim().as_bytes()) != Sha256::digest(expected.as_bytes()) {
        return Err(ApiError::forbidden("wrong admin token"));
    }
    Ok(())
}

/// Largest component accepted by `PUT /admin/components/{name}` (a Rust component is ~100 KB,
/// a JavaScript one ~12 MB, a Python one ~18 MB).
pub const MAX_COMPONENT_BYTES: usize = 32 << 20;

/// An uploaded component (`PUT /admin/components/{name}`, `PUT .../candidate`): the whole
/// body, at most [`MAX_COMPONENT_BYTES`] (413 beyond), and not empty (400). Read only after
/// the token is checked.
pub(super) async fn read_component_body(body: Body) -> ApiResult<Bytes> {
    let bytes = axum::body::to_bytes(body, MAX_COMPONENT_BYTES)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "cannot read the component: {e} (the limit is {} MiB)",
                    MAX_COMPONENT_BYTES >> 20
                ),
            )
        })?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the body must be the component's .wasm file (got nothing)",
        ));
    }
    Ok(bytes)
}

/// `GET /admin/components`: per component, the serving version and the kept earlier ones, each
/// with its own message and error counts, and what happened to the slot lately.
pub async fn components(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&state, &headers)?;
    let probation = state
        .registry
        .policy()
        .auto_rollback
        .as_ref()
        .map(|p| p.window);
    let list: Vec<Value> = state
        .registry
        .slots()
        .map(|slot| {
            let (current, activation) = slot.serving();
            let mut serving = version_json(&current);
            let on_probation = activation.cause == Cause::Swap
                && probation.is_some_and(|w| activation.at.elapsed() < w);
            serving["serving_since"] = json!(time::format(&activation.wall));
            serving["became_current_by"] = json!(match activation.cause {
                Cause::Startup => "startup",
                Cause::Swap => "swap",
                Cause::Rollback => "rollback",
            });
            serving["on_probation"] = json!(on_probation);
            serving["name"] = json!(slot.name);
            serving["previous"] = json!(
                slot.previous()
                    .iter()
                    .map(|v| version_json(v))
                    .collect::<Vec<_>>()
            );
            serving["journal"] = json!(slot.journal());
            serving["candidate"] = state
                .pipeline
                .rollouts()
                .candidate(&slot.name)
                .map_or(Value::Null, |c| super::rollout_view::candidate_json(&c));
            serving
        })
        .collect();
    Ok(Json(json!(list)))
}

fn version_json(c: &LoadedComponent) -> Value {
    let stats = c.stats.snapshot();
    json!({
        "version": c.version,
        "digest": c.digest,
        "world": crate::runtime::WORLD,
        "topics": c.topics,
        "loaded_at": time::format(&c.loaded_at),
        "origin": c.origin,
        "messages_handled": stats.messages,
        "errors": stats.errors(),
        "error_kinds": { "traps": stats.traps, "retries": stats.retries, "drops": stats.drops },
        "limits": c.limits.to_json(),
        "memory": {
            "start_mib": mib(c.start_memory_bytes as u64),
            "peak_mib": mib(stats.memory_peak_bytes),
        },
    })
}

/// MiB with a tenth: 0.3 for a Rust component's 320 KiB, 41.2 for a Python one.
fn mib(bytes: u64) -> f64 {
    (bytes as f64 / (1u64 << 20) as f64 * 10.0).round() / 10.0
}

pub(super) fn swapped_json(name: &str, s: &Swapped) -> Value {
    json!({
        "name": name,
        "unchanged": s.unchanged,
        "from": { "version": s.from.version, "digest": s.from.digest },
        "to": {
            "version": s.to.version, "digest": s.to.digest, "topics": s.to.topics,
            "limits": s.to.limits.to_json(),
            "start_memory_mib": mib(s.to.start_memory_bytes as u64),
        },
        "topics_added": s.topics_added,
        "topics_removed": s.topics_removed,
        "validation_ms": s.validation.as_secs_f64() * 1000.0,
    })
}

pub(super) fn swap_error(e: SwapError) -> ApiError {
    match e {
        SwapError::UnknownComponent { .. } => ApiError::not_found(e.to_string()),
        SwapError::NoPrevious { .. } => ApiError::conflict(e.to_string()),
        SwapError::Invalid(_) | SwapError::NameMismatch { .. } => {
            ApiError::unprocessable(e.to_string())
        }
        SwapError::Interrupted(_) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

/// `PUT /admin/components/{name}[?memory_mib=&call_timeout_ms=]` with the `.wasm` as the body:
/// validates it off the hot path and makes it the serving version of `name`, with the limits
/// given (else those of the components directory's `limits.toml`, else the host's defaults).
/// 200 with what changed; 422 with the reason when it is refused (the serving version keeps
/// serving); 404 for an unknown component.
///
/// The token is checked before the body is read, so an unauthenticated client cannot make
/// the host buffer 32 MiB.
pub async fn push(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<LimitOverrides>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    authorize(&state, &headers)?;
    let limits = query.map_err(query_error)?.0;
    let bytes = read_component_body(body).await?;
    let origin = format!("upload of {} bytes", bytes.len());
    let pushed = (!limits.is_empty()).then_some(limits);
    let swapped = state
        .registry
        .swap_bytes_with(&name, bytes.to_vec(), &origin, pushed)
        .await
        .map_err(swap_error)?;
    Ok(Json(swapped_json(&name, &swapped)))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackQuery {
    /// A kept version (its version string or a digest prefix); default: the newest kept one.
    pub(super) to: Option<String>,
    /// Who asks and why, for the journal.
    pub(super) by: Option<String>,
    pub(super) reason: Option<String>,
}

/// `POST /admin/components/{name}/rollback[?to=<version or digest prefix>]`: serves a kept
/// earlier version again, at once. 409 when none is kept. (When the component has a shadow or
/// a canary, the route ends that instead: `api/rollout.rs`, which calls this otherwise.)
pub(super) fn rollback(
    state: &AppState,
    name: String,
    query: RollbackQuery,
) -> ApiResult<Json<Value>> {
    let who = super::rollout_view::actor(query.by, query.reason);
    let swapped = state
        .registry
        .rollback_for(&name, query.to.as_deref(), &who.who, who.reason)
        .map_err(swap_error)?;
    Ok(Json(swapped_json(&name, &swapped)))
}

/// Dead letters per page by default, and at most.
const DEAD_LETTER_PAGE: i64 = 100;
const MAX_DEAD_LETTER_PAGE: i64 = 1000;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    component: Option<String>,
    topic: Option<String>,
    event_id: Option<String>,
    /// `pending` (not replayed yet), `replayed` or `all` (the default).
    status: Option<String>,
    /// Only dead letters older than this id: the last id of the previous page.
    before: Option<String>,
    limit: Option<String>,
}

impl DeadLetterQuery {
    fn filter(self, default_limit: i64) -> ApiResult<dead_letters::Filter> {
        let status = match self.status.as_deref() {
            None | Some("all") => dead_letters::Status::All,
            Some("pending") => dead_letters::Status::Pending,
            Some("replayed") => dead_letters::Status::Replayed,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "status must be `pending`, `replayed` or `all`, not `{other}`"
                )));
            }
        };
        let before = self
            .before
            .map(|b| {
                b.parse::<i64>().ok().filter(|b| *b > 0).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "before must be a dead letter id (a positive number), not `{b}`"
                    ))
                })
            })
            .transpose()?;
        let limit = match self.limit {
            None => default_limit,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_DEAD_LETTER_PAGE).contains(l))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit must be a number from 1 to {MAX_DEAD_LETTER_PAGE}, not `{l}`"
                    ))
                })?,
        };
        let nonempty = |name: &str, v: Option<String>| match v {
            Some(v) if v.trim().is_empty() => Err(ApiError::bad_request(format!(
                "{name} must not be empty (leave it out to match any)"
            ))),
            v => Ok(v),
        };
        Ok(dead_letters::Filter {
            component: nonempty("component", self.component)?,
            topic: nonempty("topic", self.topic)?,
            event_id: nonempty("event_id", self.event_id)?,
            status,
            before,
            limit,
        })
    }
}

pub(super) fn query_error(e: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::bad_request(format!("invalid query: {e}"))
}

/// `GET /admin/dead-letters[?component=&topic=&event_id=&status=pending|replayed|all&before=<id>&limit=]`:
/// the messages that could not be handled, newest first, with reasons and replay state. A page
/// holds `limit` (100, at most 1000); the next page is `before=<the last id of this one>`.
pub async fn dead_letters(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<DeadLetterQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Vec<DeadLetterRecord>>> {
    authorize(&state, &headers)?;
    let filter = query.map_err(query_error)?.0.filter(DEAD_LETTER_PAGE)?;
    let mut conn = state.db.pool().acquire().await?;
    Ok(Json(dead_letters::list(&mut conn, &filter).await?))
}

fn replayer(state: &AppState) -> Replayer {
    Replayer::new(
        state.pipeline.clone(),
        state.db.clone(),
        state.wakers.relay.clone(),
    )
}

/// `POST /admin/dead-letters/{id}/replay`: delivers the message again (to the component that
/// could not handle it, or through the outbox when none is named) and says what happened:
/// `{"id", "outcome": "applied"|"duplicate"|"requeued"|"failed", "reason"?}`. A message the
/// component has handled since is a `duplicate`: nothing is applied twice.
pub async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&state, &headers)?;
    let not_found = || ApiError::not_found(format!("no dead letter with id `{id}`"));
    let numeric = id.parse::<i64>().map_err(|_| not_found())?;
    let mut conn = state.db.pool().acquire().await?;
    let dead = dead_letters::get(&mut conn, numeric)
        .await?
        .ok_or_else(not_found)?;
    drop(conn);
    let outcome = replayer(&state).replay(&dead).await?;
    Ok(Json(replay_json(&dead.id, &outcome)))
}

fn replay_json(id: &str, outcome: &ReplayOutcome) -> Value {
    let mut v = json!(outcome);
    v["id"] = json!(id);
    v
}

/// `POST /admin/dead-letters/replay?component=<name>&topic=&event_id=&limit=`: replays every
/// pending dead letter that matches (at most `limit`, default 1000), oldest first, one by one.
/// At least one of `component`, `topic`, `event_id` is required, so that no one replays
/// everything by accident; `topic` alone includes the dead letters that name no component (a
/// message that did not decode, or that a transport gave up on).
pub async fn replay_all(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<DeadLetterQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    authorize(&state, &headers)?;
    let query = query.map_err(query_error)?.0;
    if query.status.is_some() || query.before.is_some() {
        return Err(ApiError::bad_request(
            "replay takes component, topic, event_id and limit; it always replays pending dead letters",
        ));
    }
    let mut filter = query.filter(MAX_DEAD_LETTER_PAGE)?;
    if filter.component.is_none() && filter.topic.is_none() && filter.event_id.is_none() {
        return Err(ApiError::bad_request(
            "name what to replay: ?component=<name>, ?topic=<topic> (every pending dead letter of \
             the topic, those of no component included) or ?event_id=<id>",
        ));
    }
    filter.status = dead_letters::Status::Pending;
    let mut conn = state.db.pool().acquire().await?;
    let mut pending = dead_letters::list(&mut conn, &filter).await?;
    drop(conn);
    // Oldest first: the order the messages were meant to be handled in.
    pending.reverse();
    let replayer = replayer(&state);
    let mut results = Vec::with_capacity(pending.len());
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for dead in &pending {
        let outcome = replayer.replay(dead).await?;
        *counts
            .entry(match outcome {
                ReplayOutcome::Applied => "applied",
                ReplayOutcome::Duplicate => "duplicate",
                ReplayOutcome::Requeued => "requeued",
                ReplayOutcome::Failed(_) => "failed",
            })
            .or_default() += 1;
        results.push(replay_json(&dead.id, &outcome));
    }
    Ok(Json(
        json!({ "replayed": pending.len(), "counts": counts, "results": results }),
    ))
}
