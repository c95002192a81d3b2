//! Sign-in by name, for development: `POST /api/dev/token {"user_id": "alice"}` answers a JWT
//! for that user, so the web page can offer "pick a name" instead of "paste a token".
//!
//! The routes exist only when the host signs tokens with the public development secret
//! (`serve --dev` without `TASKHOST_JWT_SECRET`); otherwise they are not mounted and answer
//! 404 like any unknown path. With that secret anyone can already mint any token offline
//! (`taskhost token alice --dev`), so this route opens nothing that was not open; with a real
//! secret it never exists.

use super::AppState;
use super::auth::DEV_JWT_SECRET;
use super::auth::JwtKeys;
use super::error::{ApiError, ApiResult};
use super::json::JsonBody;
use crate::domain::UserId;
use crate::wire::time;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// As long as `taskhost token` makes them by default.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
const MAX_USER_ID: usize = 64;

/// The development routes, or none when the host does not use the development secret.
pub fn routes(state: &AppState) -> Router<AppState> {
    if !signs_with_dev_secret(&state.keys) {
        return Router::new();
    }
    tracing::warn!(
        "development sign-in enabled (POST /api/dev/token): never use --dev in production"
    );
    Router::new()
        .route(crate::api::routes::at("/api/dev"), get(status))
        .route(crate::api::routes::at("/api/dev/token"), post(token))
}

/// True when `keys` accept a token signed with [`DEV_JWT_SECRET`].
fn signs_with_dev_secret(keys: &JwtKeys) -> bool {
    let probe = UserId::new("dev-probe").expect("a non-empty id");
    JwtKeys::from_secret(DEV_JWT_SECRET.as_bytes())
        .mint(&probe, Duration::from_secs(60))
        .is_ok_and(|t| keys.verify(&t).is_ok())
}

/// `GET /api/dev`: lets the page know it may offer sign-in by name.
async fn status() -> Json<Value> {
    Json(json!({ "dev": true }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    user_id: String,
}

/// `POST /api/dev/token`: `{"token", "user_id", "expires_at"}`.
async fn token(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<TokenRequest>,
) -> ApiResult<Json<Value>> {
    let name = body.user_id.trim();
    let valid = (1..=MAX_USER_ID).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if !valid {
        return Err(ApiError::unprocessable(format!(
            "user_id must be 1 to {MAX_USER_ID} letters, digits or . _ @ -"
        )));
    }
    let user = UserId::new(name).expect("checked non-empty");
    let token = state
        .keys
        .mint(&user, TOKEN_TTL)
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let expires_at = time::now() + chrono::Duration::from_std(TOKEN_TTL).expect("fits");
    Ok(Json(json!({
        "token": token,
        "user_id": user.as_str(),
        "expires_at": time::format(&expires_at),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_development_secret_enables_the_routes() {
        assert!(signs_with_dev_secret(&JwtKeys::from_secret(
            DEV_JWT_SECRET.as_bytes()
        )));
        assert!(!signs_with_dev_secret(&JwtKeys::from_secret(
            b"a-real-production-secret-32-bytes-long"
        )));
    }
}
