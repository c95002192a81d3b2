//! The Task API: the producer. Each write stores the task and its event in the outbox in one
//! transaction, so no event is lost if the process dies right after the write.

use super::error::{ApiError, ApiResult};
use super::json::JsonBody;
use super::{AppState, auth::AuthUser};
use crate::domain::{
    EventId, Frequency, Priority, Recurrence, Task, TaskEvent, TaskId, TaskOperation, UserId,
    topics,
};
use crate::storage::{Tx, outbox, tasks};
use crate::wire::event_json::encode_task_event;
use crate::wire::task_json::{TaskJson, recurrence_from_parts};
use crate::wire::time;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Months, Utc};
use serde::{Deserialize, Deserializer};

const MAX_TITLE: usize = 500;
const MAX_DESCRIPTION: usize = 10_000;
const MAX_TAGS: usize = 50;
const MAX_TAG: usize = 64;
const MAX_OFFSETS: usize = 10;
const MAX_OFFSET_MINUTES: u32 = 366 * 24 * 60;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default, with = "time::optional")]
    due_date: Option<DateTime<Utc>>,
    #[serde(default)]
    is_recurring: Option<bool>,
    #[serde(default)]
    recurrence_frequency: Option<Frequency>,
    #[serde(default)]
    recurrence_interval: Option<u32>,
    #[serde(default, with = "time::optional")]
    recurrence_ends_on: Option<DateTime<Utc>>,
    #[serde(default)]
    recurrence_max_occurrences: Option<u32>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    reminder_offsets_minutes: Option<Vec<u32>>,
}

/// `null` and absent differ in a PATCH: absent keeps the value, `null` clears it.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchTask {
    #[serde(default)]
    title: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default, deserialize_with = "nullable")]
    due_date: Option<Option<String>>,
    #[serde(default)]
    is_recurring: Option<bool>,
    #[serde(default)]
    recurrence_frequency: Option<Frequency>,
    #[serde(default)]
    recurrence_interval: Option<u32>,
    #[serde(default, deserialize_with = "nullable")]
    recurrence_ends_on: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    recurrence_max_occurrences: Option<Option<u32>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    reminder_offsets_minutes: Option<Option<Vec<u32>>>,
}

fn parse_time(field: &str, v: Option<String>) -> ApiResult<Option<DateTime<Utc>>> {
    v.map(|s| time::parse(&s).map_err(|e| ApiError::unprocessable(format!("{field}: {e}"))))
        .transpose()
}

fn validate(t: &Task) -> ApiResult<()> {
    let title = t.title.trim();
    if title.is_empty() {
        return Err(ApiError::unprocessable("title must not be empty"));
    }
    if t.title.chars().count() > MAX_TITLE {
        return Err(ApiError::unprocessable(format!(
            "title is longer than {MAX_TITLE} characters"
        )));
    }
    if t.description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        return Err(ApiError::unprocessable(format!(
            "description is longer than {MAX_DESCRIPTION} characters"
        )));
    }
    if t.tags.len() > MAX_TAGS {
        return Err(ApiError::unprocessable(format!(
            "tags: at most {MAX_TAGS} tags"
        )));
    }
    if let Some(tag) = t
        .tags
        .iter()
        .find(|g| g.trim().is_empty() || g.chars().count() > MAX_TAG)
    {
        return Err(ApiError::unprocessable(format!(
            "tags: `{tag}` must be 1 to {MAX_TAG} characters"
        )));
    }
    if let Some(offsets) = &t.reminder_offsets_minutes {
        if offsets.len() > MAX_OFFSETS {
            return Err(ApiError::unprocessable(format!(
                "reminder_offsets_minutes: at most {MAX_OFFSETS} offsets"
            )));
        }
        if let Some(o) = offsets.iter().find(|o| **o > MAX_OFFSET_MINUTES) {
            return Err(ApiError::unprocessable(format!(
                "reminder_offsets_minutes: {o} is more than a year ({MAX_OFFSET_MINUTES} minutes)"
            )));
        }
    }
    if let Some(r) = &t.recurrence
        && r.frequency == Frequency::Monthly
        && r.interval > 1200
    {
        return Err(ApiError::unprocessable(
            "recurrence_interval: at most 1200 months",
        ));
    }
    Ok(())
}

/// Sorted, without duplicates: offsets are a set.
fn normalize_offsets(o: Option<Vec<u32>>) -> Option<Vec<u32>> {
    o.map(|mut v| {
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.dedup();
        v
    })
}

/// Writes the task change and its event in `tx`.
async fn emit(
    tx: &mut Tx,
    operation: TaskOperation,
    task: &Task,
    previous: Option<Task>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let event = TaskEvent {
        event_id: EventId::generate(),
        operation,
        occurred_at: now,
        user_id: task.user_id.clone(),
        task: task.clone(),
        previous,
        reminder_method: None,
    };
    let payload = encode_task_event(&event).to_string();
    outbox::enqueue(
        tx,
        topics::TASK_EVENTS,
        task.user_id.as_str(),
        &payload,
        now.timestamp_millis(),
    )
    .await?;
    Ok(())
}

fn task_id(id: String) -> ApiResult<TaskId> {
    TaskId::new(id).ok_or_else(|| ApiError::not_found("task not found"))
}

async fn load(tx: &mut Tx, user: &UserId, id: &TaskId) -> ApiResult<Task> {
    tasks::get(tx, user, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id} not found")))
}

pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody<CreateTask>,
) -> ApiResult<(StatusCode, Json<TaskJson>)> {
    let now = time::now();
    let recurrence = recurrence_from_parts(
        body.is_recurring.unwrap_or(false),
        body.recurrence_frequency,
        body.recurrence_interval,
        body.recurrence_ends_on,
        body.recurrence_max_occurrences,
        body.due_date,
    )
    .map_err(ApiError::unprocessable)?;
    let task = Task {
        id: TaskId::generate(),
        user_id: user,
        title: body.title.trim().to_string(),
        description: body.description,
        is_completed: false,
        priority: body.priority.unwrap_or_default(),
        due_date: body.due_date,
        recurrence,
        tags: body.tags.unwrap_or_default(),
        reminder_offsets_minutes: normalize_offsets(body.reminder_offsets_minutes),
        occurrence: 1,
        series_id: None,
        created_at: now,
        updated_at: now,
        completed_at: None,
    };
    validate(&task)?;
    let mut tx = state.db.begin_producer().await?;
    tasks::insert(&mut tx, &task, None).await?;
    emit(&mut tx, TaskOperation::Created, &task, None, now).await?;
    tx.commit().await?;
    state.wakers.relay.notify_one();
    tracing::info!(task_id = %task.id, user_id = %task.user_id, "task created");
    Ok((StatusCode::CREATED, Json(TaskJson::from(&task))))
}

pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<Vec<TaskJson>>> {
    let mut conn = state.db.pool().acquire().await?;
    let list = tasks::list(&mut conn, &user).await?;
    Ok(Json(list.iter().map(TaskJson::from).collect()))
}

pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<TaskJson>> {
    let id = task_id(id)?;
    let mut conn = state.db.pool().acquire().await?;
    let task = tasks::get(&mut conn, &user, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id} not found")))?;
    Ok(Json(TaskJson::from(&task)))
}

pub async fn patch(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PatchTask>,
) -> ApiResult<Json<TaskJson>> {
    let id = task_id(id)?;
    let now = time::now();
    let mut tx = state.db.begin_producer().await?;
    let previous = load(&mut tx, &user, &id).await?;
    let mut task = previous.clone();
    if let Some(t) = body.title {
        task.title = t.trim().to_string();
    }
    if let Some(d) = body.description {
        task.description = d;
    }
    if let Some(p) = body.priority {
        task.priority = p;
    }
    if let Some(d) = body.due_date {
        task.due_date = parse_time("due_date", d)?;
    }
    if let Some(tags) = body.tags {
        task.tags = tags;
    }
    if let Some(o) = body.reminder_offsets_minutes {
        task.reminder_offsets_minutes = normalize_offsets(o);
    }
    let recurrence_touched = body.is_recurring.is_some()
        || body.recurrence_frequency.is_some()
        || body.recurrence_interval.is_some()
        || body.recurrence_ends_on.is_some()
        || body.recurrence_max_occurrences.is_some();
    if recurrence_touched || task.due_date != previous.due_date {
        let old = previous.recurrence.as_ref();
        let ends_on = match body.recurrence_ends_on {
            Some(v) => parse_time("recurrence_ends_on", v)?,
            None => old.and_then(|r| r.ends_on),
        };
        task.recurrence = recurrence_from_parts(
            body.is_recurring.unwrap_or(old.is_some()),
            body.recurrence_frequency.or(old.map(|r| r.frequency)),
            body.recurrence_interval.or(old.map(|r| r.interval)),
            ends_on,
            body.recurrence_max_occurrences
                .unwrap_or(old.and_then(|r| r.max_occurrences)),
            None,
        )
        .map_err(ApiError::unprocessable)?;
        if let Some(r) = &mut task.recurrence {
            r.anchor = anchor_for(
                r,
                task.due_date,
                task.occurrence,
                old.and_then(|o| o.anchor),
                task.due_date != previous.due_date,
            );
        }
    }
    validate(&task)?;
    if task == previous {
        tx.rollback().await?;
        return Ok(Json(TaskJson::from(&task)));
    }
    task.updated_at = now;
    tasks::update(&mut tx, &task).await?;
    emit(&mut tx, TaskOperation::Updated, &task, Some(previous), now).await?;
    tx.commit().await?;
    state.wakers.relay.notify_one();
    Ok(Json(TaskJson::from(&task)))
}

/// The anchor (first due date of the series) after an edit. When the due date of the n-th
/// occurrence moves, the anchor moves with it so the series continues from the new date.
fn anchor_for(
    r: &Recurrence,
    due: Option<DateTime<Utc>>,
    occurrence: u32,
    old_anchor: Option<DateTime<Utc>>,
    due_changed: bool,
) -> Option<DateTime<Utc>> {
    if !due_changed && old_anchor.is_some() {
        return old_anchor;
    }
    let due = due?;
    match r.frequency {
        Frequency::Monthly => due.checked_sub_months(Months::new(
            r.interval.saturating_mul(occurrence.saturating_sub(1)),
        )),
        Frequency::Daily | Frequency::Weekly => Some(due),
    }
}

pub async fn complete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<TaskJson>> {
    let id = task_id(id)?;
    let now = time::now();
    let mut tx = state.db.begin_producer().await?;
    let previous = load(&mut tx, &user, &id).await?;
    if previous.is_completed {
        return Err(ApiError::conflict(format!(
            "task {id} is already completed"
        )));
    }
    let mut task = previous.clone();
    task.is_completed = true;
    task.completed_at = Some(now);
    task.updated_at = now;
    tasks::update(&mut tx, &task).await?;
    emit(
        &mut tx,
        TaskOperation::Completed,
        &task,
        Some(previous),
        now,
    )
    .await?;
    tx.commit().await?;
    state.wakers.relay.notify_one();
    tracing::info!(task_id = %task.id, user_id = %task.user_id, "task completed");
    Ok(Json(TaskJson::from(&task)))
}

pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = task_id(id)?;
    let now = time::now();
    let mut tx = state.db.begin_producer().await?;
    let task = load(&mut tx, &user, &id).await?;
    tasks::delete(&mut tx, &user, &id).await?;
    emit(&mut tx, TaskOperation::Deleted, &task, None, now).await?;
    tx.commit().await?;
    state.wakers.relay.notify_one();
    Ok(StatusCode::NO_CONTENT)
}
