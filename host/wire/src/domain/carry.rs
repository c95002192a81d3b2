//! What a message says that the WIT contract cannot hand to a component, carried by the host
//! onto the effects the component returns for it.
//!
//! `todo:events@0.1.0` has no field for a reminder's delivery method (the Python backend's
//! `notificationMethod`, its tasks' `reminderConfig.method`), and a new field is a new minor
//! version of the contract that every component would be rebuilt against (`wit/README.md`).
//! The method is not business logic — nothing a component decides depends on it — so the host
//! keeps it beside the call and puts it on what the component asked for *about the same task*:
//! the notification a reminder becomes, and the reminder jobs it schedules (whose payload then
//! carries it to the notification when the job fires).

use super::effect::Effect;
use super::event::Message;
use super::ids::TaskId;
use super::notification_method::NotificationMethod;

impl Message {
    /// The delivery method this message asks for, and the task it is about.
    fn method(&self) -> Option<(&TaskId, NotificationMethod)> {
        match self {
            Message::Task(e) => e.reminder_method.map(|m| (&e.task.id, m)),
            Message::Reminder(r) => r.notification_method.map(|m| (&r.task.id, m)),
            Message::ReminderCancel(_) => None,
        }
    }

    /// Puts the message's delivery method on the notifications and reminder jobs of its task
    /// among `effects` (leaving a method a job or notification already has).
    pub fn carry_into(&self, effects: &mut [Effect]) {
        let Some((task_id, method)) = self.method() else {
            return;
        };
        for effect in effects {
            match effect {
                Effect::Notify(n) if &n.task_id == task_id => {
                    n.method.get_or_insert(method);
                }
                Effect::ScheduleReminder(job) if &job.reminder.task.id == task_id => {
                    job.reminder.notification_method.get_or_insert(method);
                }
                _ => {}
            }
        }
    }
}

impl Message {
    /// Removes the notifications and reminder jobs of the message's task from `effects`: the
    /// host knows the task was closed (completed or deleted) after the message was published
    /// (see `host/src/pipeline/context.rs`). Returns how many.
    pub fn withhold_reminders(&self, effects: &mut Vec<Effect>) -> usize {
        let task_id = match self {
            Message::Task(e) => &e.task.id,
            Message::Reminder(r) => &r.task.id,
            Message::ReminderCancel(_) => return 0,
        };
        let before = effects.len();
        effects.retain(|e| match e {
            Effect::Notify(n) => &n.task_id != task_id,
            Effect::ScheduleReminder(job) => &job.reminder.task.id != task_id,
            _ => true,
        });
        before - effects.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        EventId, Notification, Priority, ReminderDue, ReminderJob, ReminderTask, UserId,
    };
    use chrono::{DateTime, Utc};

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    fn reminder(task: &str, method: Option<NotificationMethod>) -> ReminderDue {
        ReminderDue {
            event_id: EventId::new("e1").unwrap(),
            occurred_at: at(1_000),
            user_id: UserId::new("u1").unwrap(),
            task: ReminderTask {
                id: TaskId::new(task).unwrap(),
                title: "Pay rent".into(),
                description: None,
                due_date: at(61_000),
                priority: Priority::Medium,
            },
            offset_minutes: 1,
            notification_method: method,
        }
    }

    fn notify(task: &str) -> Effect {
        Effect::Notify(Notification {
            idempotency_key: format!("k-{task}"),
            user_id: UserId::new("u1").unwrap(),
            task_id: TaskId::new(task).unwrap(),
            title: "t".into(),
            body: "b".into(),
            created_at: at(0),
            method: None,
        })
    }

    fn schedule(task: &str) -> Effect {
        Effect::ScheduleReminder(ReminderJob {
            name: format!("reminder-{task}-1"),
            due_at: at(1_000),
            reminder: reminder(task, None),
        })
    }

    fn methods(effects: &[Effect]) -> Vec<Option<NotificationMethod>> {
        effects
            .iter()
            .map(|e| match e {
                Effect::Notify(n) => n.method,
                Effect::ScheduleReminder(j) => j.reminder.notification_method,
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_method_goes_on_the_notifications_and_jobs_of_the_same_task_only() {
        let message = Message::Reminder(reminder("t1", Some(NotificationMethod::Push)));
        let mut effects = vec![notify("t1"), schedule("t1"), notify("t2"), schedule("t2")];
        message.carry_into(&mut effects);
        let push = Some(NotificationMethod::Push);
        assert_eq!(methods(&effects), vec![push, push, None, None]);
    }

    #[test]
    fn withholding_removes_the_reminders_of_the_reminders_task_only() {
        let message = Message::Reminder(reminder("t1", None));
        let mut effects = vec![notify("t1"), schedule("t1"), notify("t2"), schedule("t2")];
        assert_eq!(message.withhold_reminders(&mut effects), 2);
        assert_eq!(effects, vec![notify("t2"), schedule("t2")]);
    }

    #[test]
    fn a_message_without_a_method_changes_nothing() {
        let message = Message::Reminder(reminder("t1", None));
        let mut effects = vec![notify("t1"), schedule("t1")];
        message.carry_into(&mut effects);
        assert_eq!(methods(&effects), vec![None, None]);
    }
}
