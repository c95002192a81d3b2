//! The reminder events of the Python backend on `reminders` (`publish_reminder_event` in
//! `backend/src/utils/dapr_publisher.py` of AqsaIftikhar15/Full-Stack-TODO-App-Phase-2, branch
//! `006-event-driven-dapr`):
//!
//! `{"eventId","timestamp","taskId","title","dueAt","remindAt","userId",
//!   "notificationMethod":"email|push|both","status":"scheduled|sent|cancelled"}`
//!
//! "Remind this user at `remindAt` of the task due at `dueAt`" — published when a task with a
//! due date and an enabled reminder config is created or updated, with `remindAt = dueAt -
//! notifyBefore minutes`. Not "due now": `remindAt` is usually ahead.
//!
//! - `scheduled` becomes a [`ReminderDue`] for `remindAt` (its `occurred_at`), with the offset
//!   `dueAt - remindAt` in whole minutes. The notification component decides: a reminder for a
//!   time still ahead becomes a reminder job due then, one whose time has come notifies.
//! - `cancelled` and `sent` become a [`ReminderCancel`]: the host removes the user's jobs of that
//!   task due at `remindAt` (`sent`: someone else delivered it; it must not come twice).
//!
//! Times without an offset are UTC: that backend writes `datetime.utcnow()` for its own times
//! (`timestamp`, `createdAt`) and checks due dates against `utcnow()`, so it reads its naive due
//! dates as UTC itself (`TaskValidator.validate_due_date`); `dueAt`/`remindAt` are those due
//! dates `.isoformat()`ed, naive when read back from its database.

use super::time;
use crate::domain::{
    EventId, Message, NotificationMethod, Priority, ReminderCancel, ReminderDue, ReminderTask,
    ReminderWithdrawn, TaskId, UserId,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CamelReminder {
    event_id: String,
    #[serde(default, with = "time::optional")]
    timestamp: Option<DateTime<Utc>>,
    task_id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(with = "time::required")]
    due_at: DateTime<Utc>,
    #[serde(with = "time::required")]
    remind_at: DateTime<Utc>,
    user_id: String,
    #[serde(default)]
    notification_method: Option<String>,
    status: String,
}

/// Whether a `reminders` payload is in this shape rather than taskhost's own.
pub fn is_camel(v: &Value) -> bool {
    v.get("event_id").is_none() && v.get("eventId").is_some()
}

pub fn decode(v: Value, received_at: DateTime<Utc>) -> Result<Message, String> {
    let raw: CamelReminder = super::from_value(v)?;
    let event_id = EventId::new(raw.event_id).ok_or("eventId must not be empty")?;
    let user_id = UserId::new(raw.user_id).ok_or("userId must not be empty")?;
    let task_id = TaskId::new(raw.task_id).ok_or("taskId must not be empty")?;
    let notification_method =
        NotificationMethod::parse_field("notificationMethod", raw.notification_method.as_deref())?;
    let offset_minutes = offset_minutes(raw.due_at, raw.remind_at)?;
    let withdrawn = match raw.status.as_str() {
        "scheduled" => None,
        "cancelled" => Some(ReminderWithdrawn::Cancelled),
        "sent" => Some(ReminderWithdrawn::Sent),
        other => {
            return Err(format!(
                "status `{other}` is not one of scheduled, sent, cancelled"
            ));
        }
    };
    if let Some(reason) = withdrawn {
        return Ok(Message::ReminderCancel(ReminderCancel {
            event_id,
            occurred_at: raw.timestamp.unwrap_or(received_at),
            user_id,
            task_id,
            due_at: raw.due_at,
            remind_at: raw.remind_at,
            reason,
            notification_method,
        }));
    }
    let title = raw
        .title
        .filter(|t| !t.trim().is_empty())
        .ok_or("title is required for a scheduled reminder (it is what the user is told)")?;
    Ok(Message::Reminder(ReminderDue {
        event_id,
        occurred_at: raw.remind_at,
        user_id,
        task: ReminderTask {
            id: task_id,
            title,
            // Not in the event: the notification says what is due and when.
            description: None,
            due_date: raw.due_at,
            priority: Priority::default(),
        },
        offset_minutes,
        notification_method,
    }))
}

/// Whole minutes from `remind_at` to `due_at` (rounded down).
fn offset_minutes(due_at: DateTime<Utc>, remind_at: DateTime<Utc>) -> Result<u32, String> {
    if remind_at > due_at {
        return Err(format!(
            "remindAt {} is after dueAt {}: a reminder comes before the due date",
            time::format(&remind_at),
            time::format(&due_at)
        ));
    }
    u32::try_from((due_at - remind_at).num_minutes()).map_err(|_| {
        format!(
            "remindAt {} is more than {} minutes before dueAt {}",
            time::format(&remind_at),
            u32::MAX,
            time::format(&due_at)
        )
    })
}

/// A withdrawn reminder in this shape (what the fuzz target re-encodes: taskhost never
/// publishes it).
pub fn encode_cancel(c: &ReminderCancel) -> Value {
    let mut v = json!({
        "eventId": c.event_id,
        "timestamp": time::format(&c.occurred_at),
        "taskId": c.task_id,
        "dueAt": time::format(&c.due_at),
        "remindAt": time::format(&c.remind_at),
        "userId": c.user_id,
        "status": c.reason.as_str(),
    });
    if let Some(m) = c.notification_method {
        v["notificationMethod"] = json!(m.as_str());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        time::parse("2026-12-06T03:00:00Z").unwrap()
    }

    fn event(status: &str) -> Value {
        json!({"eventId": "b66c094f", "timestamp": "2026-12-06T03:01:37.023619Z",
               "taskId": "6bb245cb", "title": "Pay rent", "dueAt": "2026-12-08T03:01:36",
               "remindAt": "2026-12-08T02:46:36", "userId": "bea318a2",
               "notificationMethod": "push", "status": status})
    }

    #[test]
    fn scheduled_is_a_reminder_for_remind_at_with_naive_times_read_as_utc() {
        let Message::Reminder(r) = decode(event("scheduled"), now()).unwrap() else {
            panic!("not a reminder")
        };
        assert_eq!(r.occurred_at, time::parse("2026-12-08T02:46:36Z").unwrap());
        assert_eq!(
            r.task.due_date,
            time::parse("2026-12-08T03:01:36Z").unwrap()
        );
        assert_eq!(r.offset_minutes, 15);
        assert_eq!(r.task.title, "Pay rent");
        assert_eq!(r.notification_method, Some(NotificationMethod::Push));
        assert_eq!(r.event_id.as_str(), "b66c094f");
    }

    #[test]
    fn cancelled_and_sent_withdraw_the_reminder() {
        for (status, reason) in [
            ("cancelled", ReminderWithdrawn::Cancelled),
            ("sent", ReminderWithdrawn::Sent),
        ] {
            let Message::ReminderCancel(c) = decode(event(status), now()).unwrap() else {
                panic!("{status}: not a cancellation")
            };
            assert_eq!(c.reason, reason);
            assert_eq!(c.remind_at, time::parse("2026-12-08T02:46:36Z").unwrap());
            assert_eq!(c.task_id.as_str(), "6bb245cb");
            let again = decode(encode_cancel(&c), now()).unwrap();
            assert_eq!(again, Message::ReminderCancel(c));
        }
    }

    #[test]
    fn errors_name_what_was_wrong() {
        let mut e = event("postponed");
        assert!(
            decode(e.clone(), now())
                .unwrap_err()
                .contains("status `postponed`")
        );
        e["status"] = json!("scheduled");
        e["notificationMethod"] = json!("sms");
        assert!(
            decode(e.clone(), now())
                .unwrap_err()
                .contains("notificationMethod `sms`")
        );
        e["notificationMethod"] = json!("email");
        e["remindAt"] = json!("2026-12-09T00:00:00");
        assert!(
            decode(e.clone(), now())
                .unwrap_err()
                .contains("is after dueAt")
        );
        e["remindAt"] = json!("tomorrow");
        let err = decode(e.clone(), now()).unwrap_err();
        assert!(
            err.contains("remindAt") && err.contains("tomorrow"),
            "{err}"
        );
        e["remindAt"] = json!("2026-12-08T02:46:36");
        e["title"] = json!(" ");
        assert!(decode(e, now()).unwrap_err().contains("title is required"));
    }

    #[test]
    fn a_withdrawal_needs_no_title() {
        let mut e = event("cancelled");
        e.as_object_mut().unwrap().remove("title");
        assert!(matches!(decode(e, now()), Ok(Message::ReminderCancel(_))));
    }
}
