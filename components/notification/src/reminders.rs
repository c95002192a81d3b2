//! Which reminder jobs a task should have after an event, as schedule and cancel effects.
//!
//! A job is named after its task and offset (`reminder-{task-id}-{offset}`), so scheduling it
//! again replaces it and cancelling it needs nothing but the task: the component keeps no state.

use crate::todo::events::types::{
    Effect, Failure, ReminderDue, ReminderJob, ReminderTask, Task, TaskEvent, TaskOperation,
    Timestamp,
};

/// Minutes before the due date when a task does not choose: 24 hours and 1 hour.
const DEFAULT_OFFSETS: [u32; 2] = [1440, 60];

const MINUTE_MS: i64 = 60_000;

/// The effects that bring `event.task`'s reminder jobs up to date.
pub fn on_task_event(event: &TaskEvent, now: Timestamp) -> Result<Vec<Effect>, Failure> {
    let task = &event.task;
    let previous = event.previous.as_ref();
    match event.operation {
        TaskOperation::Created => schedule(task, &event.user_id, now),
        TaskOperation::Updated if previous.is_some_and(|p| same_reminders(p, task)) => {
            Ok(Vec::new())
        }
        TaskOperation::Updated => {
            let scheduled = schedule(task, &event.user_id, now)?;
            let kept: Vec<&str> = scheduled.iter().filter_map(job_name).collect();
            let mut effects: Vec<Effect> = offsets(previous.unwrap_or(task))
                .into_iter()
                .map(|offset| job(&task.id, offset))
                .filter(|name| !kept.contains(&name.as_str()))
                .map(Effect::CancelReminder)
                .collect();
            effects.extend(scheduled);
            Ok(effects)
        }
        TaskOperation::Completed | TaskOperation::Deleted => {
            let mut all = offsets(task);
            for offset in previous.map(offsets).unwrap_or_default() {
                if !all.contains(&offset) {
                    all.push(offset);
                }
            }
            Ok(all
                .into_iter()
                .map(|offset| Effect::CancelReminder(job(&task.id, offset)))
                .collect())
        }
    }
}

/// Whether an update leaves everything a reminder depends on as it was, so the jobs stand.
fn same_reminders(previous: &Task, task: &Task) -> bool {
    previous.due_date == task.due_date
        && previous.reminder_offsets == task.reminder_offsets
        && previous.title == task.title
        && previous.priority == task.priority
        && previous.is_completed == task.is_completed
}

/// One job per offset whose time is still ahead of `now` — a reminder for a time already past
/// would fire at once and say something untrue — for an open task with a due date.
fn schedule(task: &Task, user_id: &str, now: Timestamp) -> Result<Vec<Effect>, Failure> {
    let Some(due) = task.due_date.filter(|_| !task.is_completed) else {
        return Ok(Vec::new());
    };
    let mut jobs = Vec::new();
    for offset in offsets(task) {
        let fires_at = i64::from(offset)
            .checked_mul(MINUTE_MS)
            .and_then(|before| due.checked_sub(before))
            .ok_or_else(|| {
                Failure::Drop(format!(
                    "reminder {offset} minutes before {due} ms is out of range"
                ))
            })?;
        if fires_at <= now {
            continue;
        }
        jobs.push(Effect::ScheduleReminder(ReminderJob {
            name: job(&task.id, offset),
            due_at: fires_at,
            reminder: ReminderDue {
                event_id: reminder_key(&task.id, offset, due),
                occurred_at: fires_at,
                user_id: user_id.to_owned(),
                task: ReminderTask {
                    id: task.id.clone(),
                    title: task.title.clone(),
                    description: task.description.clone(),
                    due_date: due,
                    priority: task.priority,
                },
                offset_minutes: offset,
            },
        }));
    }
    Ok(jobs)
}

/// The task's reminder offsets, or the defaults; each once, in the task's order.
fn offsets(task: &Task) -> Vec<u32> {
    let chosen = task.reminder_offsets.as_deref().unwrap_or(&DEFAULT_OFFSETS);
    let mut unique = Vec::with_capacity(chosen.len());
    for &offset in chosen {
        if !unique.contains(&offset) {
            unique.push(offset);
        }
    }
    unique
}

/// The name of `task_id`'s job for `offset`: one job per task and offset.
pub fn job(task_id: &str, offset: u32) -> String {
    let mut name = String::with_capacity(task_id.len() + 20);
    name.push_str("reminder-");
    name.push_str(task_id);
    name.push('-');
    push_decimal(&mut name, i64::from(offset));
    name
}

fn job_name(effect: &Effect) -> Option<&str> {
    match effect {
        Effect::ScheduleReminder(job) => Some(&job.name),
        _ => None,
    }
}

/// Identifies one reminder of one task for one due date: the reminder's event id and the key of
/// the notification it becomes, so a user is notified once per (task, offset, due date) however
/// often the job fires or is rescheduled to the same time.
pub fn reminder_key(task_id: &str, offset: u32, due: Timestamp) -> String {
    let mut key = String::with_capacity(task_id.len() + 40);
    key.push_str("reminder:");
    key.push_str(task_id);
    key.push(':');
    push_decimal(&mut key, i64::from(offset));
    key.push(':');
    push_decimal(&mut key, due);
    key
}

/// Appends `n` in decimal, as `format!("{n}")` would: the names and keys above are built once
/// or twice per reminder on every task event, and `format!`'s machinery cost more than the
/// rest of building them.
fn push_decimal(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut rest = n.unsigned_abs();
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        out.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_read_as_format_writes_them() {
        for n in [
            0,
            7,
            10,
            60,
            1440,
            -1,
            -60,
            1_769_850_000_000,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = String::from("x");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
        assert_eq!(job("t1", 1440), "reminder-t1-1440");
        assert_eq!(
            reminder_key("t1", 60, -5),
            format!("reminder:{}:{}:{}", "t1", 60, -5)
        );
    }
}
