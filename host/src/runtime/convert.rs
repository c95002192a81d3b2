//! Host types ⇄ WIT types. Incoming effects are validated here: a component can return
//! anything the WIT allows, and the host must not store an impossible time or an empty id.

use super::bindings::wit;
use crate::domain::{self as d, EventId, TaskId, UserId};
use chrono::{DateTime, Utc};

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(field: &str, ms: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("{field} {ms} is not a valid time"))
}

fn opt_time(field: &str, ms: Option<i64>) -> Result<Option<DateTime<Utc>>, String> {
    ms.map(|m| time(field, m)).transpose()
}

fn id<T>(field: &str, make: impl Fn(String) -> Option<T>, v: String) -> Result<T, String> {
    make(v).ok_or_else(|| format!("{field} must not be empty"))
}

fn priority_to(p: d::Priority) -> wit::Priority {
    match p {
        d::Priority::High => wit::Priority::High,
        d::Priority::Medium => wit::Priority::Medium,
        d::Priority::Low => wit::Priority::Low,
    }
}

fn priority_from(p: wit::Priority) -> d::Priority {
    match p {
        wit::Priority::High => d::Priority::High,
        wit::Priority::Medium => d::Priority::Medium,
        wit::Priority::Low => d::Priority::Low,
    }
}

fn operation_to(o: d::TaskOperation) -> wit::TaskOperation {
    match o {
        d::TaskOperation::Created => wit::TaskOperation::Created,
        d::TaskOperation::Updated => wit::TaskOperation::Updated,
        d::TaskOperation::Completed => wit::TaskOperation::Completed,
        d::TaskOperation::Deleted => wit::TaskOperation::Deleted,
    }
}

fn operation_from(o: wit::TaskOperation) -> d::TaskOperation {
    match o {
        wit::TaskOperation::Created => d::TaskOperation::Created,
        wit::TaskOperation::Updated => d::TaskOperation::Updated,
        wit::TaskOperation::Completed => d::TaskOperation::Completed,
        wit::TaskOperation::Deleted => d::TaskOperation::Deleted,
    }
}

fn recurrence_to(r: &d::Recurrence) -> wit::Recurrence {
    wit::Recurrence {
        frequency: match r.frequency {
            d::Frequency::Daily => wit::Frequency::Daily,
            d::Frequency::Weekly => wit::Frequency::Weekly,
            d::Frequency::Monthly => wit::Frequency::Monthly,
        },
        interval: r.interval,
        ends_on: r.ends_on.map(ms),
        max_occurrences: r.max_occurrences,
        anchor: r.anchor.map(ms),
    }
}

fn recurrence_from(r: wit::Recurrence) -> Result<d::Recurrence, String> {
    if r.interval == 0 {
        return Err("recurrence.interval must be at least 1".into());
    }
    Ok(d::Recurrence {
        frequency: match r.frequency {
            wit::Frequency::Daily => d::Frequency::Daily,
            wit::Frequency::Weekly => d::Frequency::Weekly,
            wit::Frequency::Monthly => d::Frequency::Monthly,
        },
        interval: r.interval,
        ends_on: opt_time("recurrence.ends-on", r.ends_on)?,
        max_occurrences: r.max_occurrences,
        anchor: opt_time("recurrence.anchor", r.anchor)?,
    })
}

pub fn task_to(t: &d::Task) -> wit::Task {
    wit::Task {
        id: t.id.to_string(),
        title: t.title.clone(),
        description: t.description.clone(),
        is_completed: t.is_completed,
        priority: priority_to(t.priority),
        due_date: t.due_date.map(ms),
        recurrence: t.recurrence.as_ref().map(recurrence_to),
        tags: t.tags.clone(),
        reminder_offsets: t.reminder_offsets_minutes.clone(),
        occurrence: t.occurrence,
        series_id: t.series_id.as_ref().map(|s| s.to_string()),
        created_at: ms(t.created_at),
        updated_at: ms(t.updated_at),
        completed_at: t.completed_at.map(ms),
    }
}

/// A task handed back inside an effect (audit states, sync messages) belongs to `owner`.
fn task_from(t: wit::Task, owner: &UserId) -> Result<d::Task, String> {
    Ok(d::Task {
        id: id("task.id", TaskId::new, t.id)?,
        user_id: owner.clone(),
        title: t.title,
        description: t.description,
        is_completed: t.is_completed,
        priority: priority_from(t.priority),
        due_date: opt_time("task.due-date", t.due_date)?,
        recurrence: t.recurrence.map(recurrence_from).transpose()?,
        tags: t.tags,
        reminder_offsets_minutes: t.reminder_offsets,
        occurrence: t.occurrence.max(1),
        series_id: t.series_id.and_then(TaskId::new),
        created_at: time("task.created-at", t.created_at)?,
        updated_at: time("task.updated-at", t.updated_at)?,
        completed_at: opt_time("task.completed-at", t.completed_at)?,
    })
}

fn reminder_to(r: &d::ReminderDue) -> wit::ReminderDue {
    wit::ReminderDue {
        event_id: r.event_id.to_string(),
        occurred_at: ms(r.occurred_at),
        user_id: r.user_id.to_string(),
        task: wit::ReminderTask {
            id: r.task.id.to_string(),
            title: r.task.title.clone(),
            description: r.task.description.clone(),
            due_date: ms(r.task.due_date),
            priority: priority_to(r.task.priority),
        },
        offset_minutes: r.offset_minutes,
    }
}

fn reminder_from(r: wit::ReminderDue) -> Result<d::ReminderDue, String> {
    Ok(d::ReminderDue {
        event_id: id("reminder.event-id", EventId::new, r.event_id)?,
        occurred_at: time("reminder.occurred-at", r.occurred_at)?,
        user_id: id("reminder.user-id", UserId::new, r.user_id)?,
        task: d::ReminderTask {
            id: id("reminder.task.id", TaskId::new, r.task.id)?,
            title: r.task.title,
            description: r.task.description,
            due_date: time("reminder.task.due-date", r.task.due_date)?,
            priority: priority_from(r.task.priority),
        },
        offset_minutes: r.offset_minutes,
        // Not in the WIT: the host carries it from the message (`domain::carry`).
        notification_method: None,
    })
}

/// The message as components receive it; `None` for one no component is handed (a producer's
/// reminder cancellation, which the host carries out itself: the WIT has no message for it).
pub fn message_to(m: &d::Message) -> Option<wit::Message> {
    Some(match m {
        d::Message::Task(e) => wit::Message::TaskEvent(wit::TaskEvent {
            event_id: e.event_id.to_string(),
            operation: operation_to(e.operation),
            occurred_at: ms(e.occurred_at),
            user_id: e.user_id.to_string(),
            task: task_to(&e.task),
            previous: e.previous.as_ref().map(task_to),
        }),
        d::Message::Reminder(r) => wit::Message::ReminderDue(reminder_to(r)),
        d::Message::ReminderCancel(_) => return None,
    })
}

/// Converts and validates one effect a component returned.
pub fn effect_from(e: wit::Effect) -> Result<d::Effect, String> {
    Ok(match e {
        wit::Effect::CreateTask(t) => {
            let user_id = id("create-task.user-id", UserId::new, t.user_id)?;
            if t.idempotency_key.is_empty() {
                return Err("create-task.idempotency-key must not be empty".into());
            }
            if t.title.trim().is_empty() {
                return Err("create-task.title must not be empty".into());
            }
            d::Effect::CreateTask(d::NewTask {
                idempotency_key: t.idempotency_key,
                user_id,
                title: t.title,
                description: t.description,
                priority: priority_from(t.priority),
                due_date: opt_time("create-task.due-date", t.due_date)?,
                recurrence: t.recurrence.map(recurrence_from).transpose()?,
                tags: t.tags,
                reminder_offsets_minutes: t.reminder_offsets,
                occurrence: t.occurrence.max(1),
                series_id: t.series_id.and_then(TaskId::new),
            })
        }
        wit::Effect::ScheduleReminder(j) => {
            if j.name.is_empty() {
                return Err("schedule-reminder.name must not be empty".into());
            }
            d::Effect::ScheduleReminder(d::ReminderJob {
                name: j.name,
                due_at: time("schedule-reminder.due-at", j.due_at)?,
                reminder: reminder_from(j.reminder)?,
            })
        }
        wit::Effect::CancelReminder(name) => d::Effect::CancelReminder(name),
        wit::Effect::Notify(n) => {
            if n.idempotency_key.is_empty() {
                return Err("notify.idempotency-key must not be empty".into());
            }
            d::Effect::Notify(d::Notification {
                idempotency_key: n.idempotency_key,
                user_id: id("notify.user-id", UserId::new, n.user_id)?,
                task_id: id("notify.task-id", TaskId::new, n.task_id)?,
                title: n.title,
                body: n.body,
                created_at: time("notify.created-at", n.created_at)?,
                method: None,
            })
        }
        wit::Effect::AppendAudit(a) => {
            let actor = id("append-audit.actor", UserId::new, a.actor)?;
            d::Effect::AppendAudit(d::AuditEntry {
                event_id: id("append-audit.event-id", EventId::new, a.event_id)?,
                task_id: id("append-audit.task-id", TaskId::new, a.task_id)?,
                operation: operation_from(a.operation),
                at: time("append-audit.at", a.at)?,
                previous: a.previous.map(|t| task_from(t, &actor)).transpose()?,
                current: a.current.map(|t| task_from(t, &actor)).transpose()?,
                changes: a
                    .changes
                    .into_iter()
                    .map(|c| d::FieldChange {
                        field: c.field,
                        old: c.old,
                        new: c.new,
                    })
                    .collect(),
                actor,
            })
        }
        wit::Effect::Broadcast(s) => {
            let user_id = id("broadcast.user-id", UserId::new, s.user_id)?;
            d::Effect::Broadcast(d::SyncMessage {
                operation: operation_from(s.operation),
                task_id: id("broadcast.task-id", TaskId::new, s.task_id)?,
                task: s.task.map(|t| task_from(t, &user_id)).transpose()?,
                at: time("broadcast.at", s.at)?,
                user_id,
            })
        }
        wit::Effect::Publish(p) => {
            if p.topic.is_empty() {
                return Err("publish.topic must not be empty".into());
            }
            serde_json::from_str::<serde_json::Value>(&p.payload)
                .map_err(|e| format!("publish.payload is not JSON: {e}"))?;
            d::Effect::Publish(d::OutboundEvent {
                topic: p.topic,
                key: p.key,
                payload: p.payload,
            })
        }
    })
}
