//! Operator routes (components and hot swap, dead letters), guarded by the admin token (`Authorization: Bearer <admin token>`). Without
//! a configured token they answer 404, as if they did not exist.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::runtime::{Cause, LoadedComponent, SwapError, Swapped};
use crate::storage::dead_letters::{self, DeadLetterRecord};
use crate::wire::time;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

fn authorize(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
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

/// Largest component accepted by `PUT /admin/components/{name}` (components are ~100 KB).
pub const MAX_COMPONENT_BYTES: usize = 32 << 20;

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
    })
}

fn swapped_json(name: &str, s: &Swapped) -> Value {
    json!({
        "name": name,
        "unchanged": s.unchanged,
        "from": { "version": s.from.version, "digest": s.from.digest },
        "to": { "version": s.to.version, "digest": s.to.digest, "topics": s.to.topics },
        "topics_added": s.topics_added,
        "topics_removed": s.topics_removed,
        "validation_ms": s.validation.as_secs_f64() * 1000.0,
    })
}

fn swap_error(e: SwapError) -> ApiError {
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

/// `PUT /admin/components/{name}` with the `.wasm` as the body: validates it off the hot path
/// and makes it the serving version of `name`. 200 with what changed; 422 with the reason
/// when it is refused (the serving version keeps serving); 404 for an unknown component.
///
/// The token is checked before the body is read, so an unauthenticated client cannot make
/// the host buffer 32 MiB.
pub async fn push(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    authorize(&state, &headers)?;
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
    let origin = format!("upload of {} bytes", bytes.len());
    let swapped = state
        .registry
        .swap_bytes(&name, bytes.to_vec(), &origin)
        .await
        .map_err(swap_error)?;
    Ok(Json(swapped_json(&name, &swapped)))
}

#[derive(serde::Deserialize)]
pub struct RollbackQuery {
    /// A kept version (its version string or a digest prefix); default: the newest kept one.
    to: Option<String>,
}

/// `POST /admin/components/{name}/rollback[?to=<version or digest prefix>]`: serves a kept
/// earlier version again, at once. 409 when none is kept.
pub async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<RollbackQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&state, &headers)?;
    let swapped = state
        .registry
        .rollback(&name, query.to.as_deref(), "admin API")
        .map_err(swap_error)?;
    Ok(Json(swapped_json(&name, &swapped)))
}

/// `GET /admin/dead-letters`: the newest messages that could not be handled, with reasons.
pub async fn dead_letters(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<DeadLetterRecord>>> {
    authorize(&state, &headers)?;
    let mut conn = state.db.pool().acquire().await?;
    Ok(Json(dead_letters::list(&mut conn, 500).await?))
}
