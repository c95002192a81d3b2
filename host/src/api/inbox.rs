//! The user's notifications (fed by reminders) and pending reminder jobs.

use super::error::ApiResult;
use super::{AppState, auth::AuthUser};
use crate::storage::jobs::{self, JobRecord};
use crate::storage::notifications::{self, NotificationRecord};
use axum::Json;
use axum::extract::State;

const INBOX_LIMIT: i64 = 200;

pub async fn notifications(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<Vec<NotificationRecord>>> {
    let mut conn = state.db.pool().acquire().await?;
    Ok(Json(
        notifications::list(&mut conn, &user, INBOX_LIMIT).await?,
    ))
}

pub async fn reminders(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<Vec<JobRecord>>> {
    let mut conn = state.db.pool().acquire().await?;
    Ok(Json(jobs::by_user(&mut conn, &user).await?))
}
