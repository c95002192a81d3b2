//! Bearer JWTs (HS256): the user id is the token's `sub`. Every /api route takes an
//! [`AuthUser`]; a handler can only ever see the caller's own data because every storage
//! query is scoped by that id.

use super::error::ApiError;
use crate::domain::UserId;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// A JWT secret for development only; `serve` refuses it unless `--dev` is given.
pub const DEV_JWT_SECRET: &str = "taskhost-dev-secret-never-use-in-production";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    exp: u64,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl JwtKeys {
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Mints a token for `user` valid for `ttl`.
    pub fn mint(&self, user: &UserId, ttl: Duration) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let claims = Claims {
            sub: user.to_string(),
            iat: now,
            exp: now + ttl.as_secs(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The user a token belongs to, or why it is not accepted.
    pub fn verify(&self, token: &str) -> Result<UserId, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| ApiError::unauthorized(format!("invalid token: {e}")))?;
        UserId::new(data.claims.sub)
            .ok_or_else(|| ApiError::unauthorized("invalid token: empty sub"))
    }
}

/// The authenticated caller.
pub struct AuthUser(pub UserId);

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Arc<JwtKeys>: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let keys: Arc<JwtKeys> = axum::extract::FromRef::from_ref(state);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized("missing Authorization: Bearer <token> header")
            })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("Authorization header must be `Bearer <token>`")
            })?;
        keys.verify(token.trim()).map(AuthUser)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_secrets() {
        let keys = JwtKeys::from_secret(b"0123456789abcdef0123456789abcdef");
        let user = UserId::new("alice").unwrap();
        let token = keys.mint(&user, Duration::from_secs(60)).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), user);
        let other = JwtKeys::from_secret(b"another-secret-another-secret-xx");
        assert_eq!(
            other.verify(&token).unwrap_err().status,
            axum::http::StatusCode::UNAUTHORIZED
        );
    }
}
