//! `create-task`: a task created by a component (the next occurrence of a recurring task).

use super::Origin;
use crate::domain::{EventId, NewTask, Task, TaskEvent, TaskId, TaskOperation, topics};
use crate::storage::{Conn, Result, outbox, tasks};
use crate::wire::event_json::encode_task_event;
use chrono::{DateTime, Utc};

/// Inserts the task unless one was already created under its idempotency key, and publishes
/// its `task.created` event like any API write. Returns whether anything was written.
pub async fn create(
    conn: &mut Conn,
    t: NewTask,
    origin: Origin<'_>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let task = Task {
        id: TaskId::generate(),
        user_id: t.user_id,
        title: t.title,
        description: t.description,
        is_completed: false,
        priority: t.priority,
        due_date: t.due_date,
        recurrence: t.recurrence,
        tags: t.tags,
        reminder_offsets_minutes: t.reminder_offsets_minutes,
        occurrence: t.occurrence,
        series_id: t.series_id,
        created_at: now,
        updated_at: now,
        completed_at: None,
    };
    if !tasks::insert(conn, &task, Some(&t.idempotency_key)).await? {
        tracing::debug!(component = origin.component, version = origin.version, key = %t.idempotency_key, "task already created under this key");
        return Ok(false);
    }
    let event = TaskEvent {
        event_id: EventId::generate(),
        operation: TaskOperation::Created,
        occurred_at: now,
        user_id: task.user_id.clone(),
        task,
        previous: None,
        reminder_method: None,
    };
    let payload = encode_task_event(&event).to_string();
    outbox::enqueue(
        conn,
        topics::TASK_EVENTS,
        event.user_id.as_str(),
        &payload,
        now.timestamp_millis(),
    )
    .await?;
    // The one line about a created task: recurrence does not log its next occurrences itself
    // (it would on every redelivery too), so the key, occurrence and due date are here.
    tracing::info!(
        component = origin.component,
        version = origin.version,
        task_id = %event.task.id,
        user_id = %event.user_id,
        key = %t.idempotency_key,
        occurrence = event.task.occurrence,
        series_id = event.task.series_id.as_ref().map(tracing::field::display),
        due_date = event.task.due_date.map(|d| tracing::field::display(d.to_rfc3339())),
        "created task from component effect"
    );
    Ok(true)
}
