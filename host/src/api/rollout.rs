//! Admin routes for shadow runs and canaries (`crate::rollout`), beside the hot-swap ones in
//! `admin.rs` and guarded the same way (the admin token).
//!
//! - `PUT /admin/components/{name}/candidate?mode=shadow|canary[&percent=][&memory_mib=]
//!   [&call_timeout_ms=][&by=][&reason=]` with the `.wasm` as the body: validates it like a
//!   hot swap and makes it the component's shadow, or a canary at `percent`.
//! - `GET /admin/components/{name}/shadow`: counts (same / different / candidate failed /
//!   skipped) and the newest differences, each with its event id and field-level diff.
//! - `POST /admin/components/{name}/canary?percent=[&by=][&reason=]`: shadow → canary (or a
//!   canary's new share), one atomic step.
//! - `POST /admin/components/{name}/promote[?by=][&reason=]`: candidate → serving everyone.
//! - `POST /admin/components/{name}/rollback` ends a candidate when there is one (`admin.rs`).
//!
//! Every step is written to the component's journal with who (`by`), when and why (`reason`).

use super::AppState;
use super::admin::{
    RollbackQuery, authorize, query_error, read_component_body, swap_error, swapped_json,
};
use super::error::{ApiError, ApiResult};
use super::rollout_view::{actor, candidate_json};
use crate::rollout::{Actor, Mode, RolloutError};
use crate::runtime::LimitOverrides;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandidateQuery {
    /// `shadow` or `canary`.
    mode: Option<String>,
    percent: Option<u32>,
    memory_mib: Option<usize>,
    call_timeout_ms: Option<u64>,
    by: Option<String>,
    reason: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepQuery {
    percent: Option<u32>,
    by: Option<String>,
    reason: Option<String>,
}

pub(super) fn rollout_error(e: RolloutError) -> ApiError {
    match e {
        RolloutError::Swap(e) => swap_error(e),
        RolloutError::Busy { .. } => ApiError::conflict(e.to_string()),
        RolloutError::NoCandidate(_) => ApiError::not_found(e.to_string()),
        RolloutError::AlreadyServing { .. } => ApiError::unprocessable(e.to_string()),
        RolloutError::Percent(_) => ApiError::bad_request(e.to_string()),
    }
}

/// What every step on a running candidate (`canary`, `promote`) does first: checks the admin
/// token, reads the query, and says who asks and why; returns the `percent` asked for, if any.
fn step(
    state: &AppState,
    headers: &HeaderMap,
    query: QueryResult<StepQuery>,
) -> ApiResult<(Option<u32>, Actor)> {
    authorize(state, headers)?;
    let q = query.map_err(query_error)?.0;
    Ok((q.percent, actor(q.by, q.reason)))
}

/// `PUT /admin/components/{name}/candidate`: see the module docs.
pub async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: QueryResult<CandidateQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    authorize(&state, &headers)?;
    let q = query.map_err(query_error)?.0;
    let mode = match (q.mode.as_deref(), q.percent) {
        (Some("shadow"), None) => Mode::Shadow,
        (Some("shadow"), Some(_)) => {
            return Err(ApiError::bad_request(
                "a shadow takes no percent: it sees every message (use mode=canary&percent=N)",
            ));
        }
        (Some("canary"), Some(p)) => Mode::Canary {
            percent: u8::try_from(p)
                .ok()
                .filter(|p| (1..=100).contains(p))
                .ok_or_else(|| rollout_error(RolloutError::Percent(p)))?,
        },
        (Some("canary"), None) => {
            return Err(ApiError::bad_request(
                "a canary needs percent=N (1 to 100): the share of users it serves",
            ));
        }
        (other, _) => {
            return Err(ApiError::bad_request(format!(
                "mode must be `shadow` or `canary`, not {}",
                other.map_or("nothing".to_string(), |m| format!("`{m}`"))
            )));
        }
    };
    let bytes = read_component_body(body).await?;
    let limits = LimitOverrides {
        memory_mib: q.memory_mib,
        call_timeout_ms: q.call_timeout_ms,
    };
    let origin = format!("upload of {} bytes", bytes.len());
    let candidate = state
        .pipeline
        .rollouts()
        .start(
            &name,
            bytes.to_vec(),
            &origin,
            (!limits.is_empty()).then_some(limits),
            mode,
            &actor(q.by, q.reason),
        )
        .await
        .map_err(rollout_error)?;
    let serving = state
        .registry
        .slot(&name)
        .map(|s| s.current().version.clone());
    Ok(Json(json!({
        "name": name,
        "serving": serving,
        "candidate": candidate_json(&candidate),
    })))
}

/// `GET /admin/components/{name}/shadow`: the candidate's shadow report.
pub async fn report(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&state, &headers)?;
    let candidate = state
        .pipeline
        .rollouts()
        .candidate(&name)
        .ok_or_else(|| rollout_error(RolloutError::NoCandidate(name.clone())))?;
    let serving = state.registry.slot(&name).map(|s| {
        let v = s.current();
        json!({ "version": v.version, "digest": v.digest })
    });
    Ok(Json(json!({
        "name": name,
        "serving": serving,
        "candidate": candidate_json(&candidate),
        "counts": candidate.report.counts(),
        "samples": candidate.report.samples(),
    })))
}

/// `POST /admin/components/{name}/canary?percent=N`: shadow → canary, or a new share.
pub async fn canary(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: QueryResult<StepQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let (percent, who) = step(&state, &headers, query)?;
    let percent = percent.ok_or_else(|| {
        ApiError::bad_request("percent=N (1 to 100) is required: the share of users it serves")
    })?;
    let candidate = state
        .pipeline
        .rollouts()
        .canary(&name, percent, &who)
        .map_err(rollout_error)?;
    Ok(Json(
        json!({ "name": name, "candidate": candidate_json(&candidate) }),
    ))
}

/// `POST /admin/components/{name}/promote`: the candidate serves everyone.
pub async fn promote(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: QueryResult<StepQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let (percent, who) = step(&state, &headers, query)?;
    if percent.is_some() {
        return Err(ApiError::bad_request(
            "promote takes no percent: the candidate serves everyone",
        ));
    }
    let swapped = state
        .pipeline
        .rollouts()
        .promote(&name, &who)
        .map_err(rollout_error)?;
    Ok(Json(swapped_json(&name, &swapped)))
}

/// `POST /admin/components/{name}/rollback[?to=][&by=][&reason=]`: ends the component's shadow
/// or canary when it has one (everyone is served by the serving version again, which does not
/// change); otherwise serves a kept earlier version again (`admin::rollback`).
pub async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: QueryResult<RollbackQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&state, &headers)?;
    let query = query.map_err(query_error)?.0;
    let rollouts = state.pipeline.rollouts();
    let Some(candidate) = rollouts.candidate(&name) else {
        return super::admin::rollback(&state, name, query);
    };
    if query.to.is_some() {
        return Err(ApiError::conflict(format!(
            "`{name}` has a {} candidate: roll it back first (without `to`)",
            candidate.mode.label()
        )));
    }
    let action = match candidate.mode {
        Mode::Shadow => "end-shadow",
        Mode::Canary { .. } => "end-canary",
    };
    let ended = rollouts
        .end(&name, action, &actor(query.by, query.reason))
        .map_err(rollout_error)?;
    let serving = state.registry.slot(&name).map(|s| s.current());
    Ok(Json(json!({
        "name": name,
        "ended": candidate_json(&ended),
        "unchanged": false,
        "from": { "version": ended.version.version, "digest": ended.version.digest },
        "to": serving.map(|v| json!({ "version": v.version, "digest": v.digest })),
    })))
}
