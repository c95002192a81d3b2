//! Operator routes, guarded by the admin token (`Authorization: Bearer <admin token>`). Without
//! a configured token they answer 404, as if they did not exist.

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::storage::dead_letters::{self, DeadLetterRecord};
use crate::wire::time;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
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

/// `GET /admin/components`: what is loaded and which version serves.
pub async fn components(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&state, &headers)?;
    let list: Vec<Value> = state
        .registry
        .slots()
        .map(|slot| {
            let c = slot.current();
            json!({
                "name": c.name,
                "version": c.version,
                "digest": c.digest,
                "world": crate::runtime::WORLD,
                "topics": c.topics,
                "loaded_at": time::format(&c.loaded_at),
            })
        })
        .collect();
    Ok(Json(json!(list)))
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
