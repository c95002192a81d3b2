//! Reading the audit trail: per task, or per user with cursor pagination.

use super::error::{ApiError, ApiResult};
use super::{AppState, auth::AuthUser};
use crate::domain::{TaskId, UserId};
use crate::storage::audit::{self, AuditRecord};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

impl PageQuery {
    fn parse(&self) -> ApiResult<(i64, i64)> {
        let limit = match &self.limit {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit must be a number from 1 to {MAX_LIMIT}, not `{l}`"
                    ))
                })?,
        };
        let after = match &self.cursor {
            None => 0,
            Some(c) => c.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(|| {
                ApiError::bad_request(format!("cursor `{c}` is not one this API returned"))
            })?,
        };
        Ok((limit, after))
    }
}

#[derive(Debug, Serialize)]
pub struct AuditPage {
    entries: Vec<AuditRecord>,
    next_cursor: Option<String>,
}

impl From<audit::Page> for AuditPage {
    fn from(p: audit::Page) -> Self {
        Self {
            entries: p.entries,
            next_cursor: p.next_cursor,
        }
    }
}

fn query_error(e: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::bad_request(format!("invalid query: {e}"))
}

/// `GET /api/audit-logs/{task_id}`: an unknown task and another user's task look the same.
pub async fn by_task(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(task): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
    let (limit, after) = query.map_err(query_error)?.parse()?;
    let task = TaskId::new(task).ok_or_else(|| ApiError::not_found("task not found"))?;
    let mut conn = state.db.pool().acquire().await?;
    let page = audit::by_task(&mut conn, &user, &task, after, limit).await?;
    // A deleted task keeps its trail; a task with no trail yet (its first entry is still on
    // its way) has an empty one; an unknown task, or another user's, is not found.
    if page.entries.is_empty()
        && after == 0
        && crate::storage::tasks::get(&mut conn, &user, &task)
            .await?
            .is_none()
    {
        return Err(ApiError::not_found(format!(
            "no audit trail for task {task}"
        )));
    }
    Ok(Json(page.into()))
}

/// `GET /api/audit-logs/user/{user_id}`: only your own.
pub async fn by_user(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(of): Path<String>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AuditPage>> {
    let (limit, after) = query.map_err(query_error)?.parse()?;
    if UserId::new(of).as_ref() != Some(&user) {
        return Err(ApiError::forbidden(
            "you can only read your own audit trail",
        ));
    }
    let mut conn = state.db.pool().acquire().await?;
    Ok(Json(
        audit::by_user(&mut conn, &user, after, limit).await?.into(),
    ))
}
