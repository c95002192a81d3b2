//! What the next occurrence of a completed recurring task is, and whether there is one.

use crate::schedule::{next_due, rfc3339};
use crate::todo::events::types::{Failure, NewTask, Recurrence, TaskEvent};

/// The task that follows the one `event` completed: same content, incomplete, the next occurrence
/// number and due date; `None` when the task does not recur or its series has ended.
///
/// The idempotency key names the occurrence (`recurrence:{series-id}:{n}`), not the event, so
/// that a redelivered or duplicated completion event — or the same task completed twice —
/// never creates the n-th occurrence twice.
///
/// A series that ends is logged here, since nothing else says why no task followed; the next
/// occurrence is not: the host logs each task it creates, with this key, its occurrence and
/// due date — and only once, where a line here would repeat on every redelivery.
pub fn next_occurrence(event: TaskEvent) -> Result<Option<NewTask>, Failure> {
    let task = event.task;
    let Some(rule) = task.recurrence else {
        return Ok(None);
    };
    if rule.interval == 0 {
        return Err(Failure::Drop(
            "recurrence interval must be at least 1".into(),
        ));
    }
    let series_id = task.series_id.unwrap_or(task.id);
    if let Some(max) = rule.max_occurrences
        && task.occurrence >= max
    {
        log(format_args!(
            "series {series_id} ended: occurrence {} of at most {max}",
            task.occurrence
        ));
        return Ok(None);
    }
    let occurrence = task.occurrence.checked_add(1).ok_or_else(|| {
        Failure::Drop(format!("occurrence {} cannot be followed", task.occurrence))
    })?;
    let completed_at = task.completed_at.unwrap_or(event.occurred_at);
    let due = next_due(&rule, task.due_date, completed_at).map_err(Failure::Drop)?;
    if let Some(ends_on) = rule.ends_on
        && due > ends_on
    {
        log(format_args!(
            "series {series_id} ended: next due {} is after {}",
            rfc3339(due),
            rfc3339(ends_on)
        ));
        return Ok(None);
    }
    Ok(Some(NewTask {
        idempotency_key: format!("recurrence:{series_id}:{occurrence}"),
        user_id: event.user_id,
        title: task.title,
        description: task.description,
        priority: task.priority,
        due_date: Some(due),
        // Monthly series keep the first due date's day of month: see `schedule::next_due`.
        recurrence: Some(Recurrence {
            anchor: rule.anchor.or(task.due_date),
            ..rule
        }),
        tags: task.tags,
        reminder_offsets: task.reminder_offsets,
        occurrence,
        series_id: Some(series_id),
    }))
}

/// One line to stderr, which the host puts in its log under this component's name. Written in
/// one piece: `eprintln!` writes each formatted part on its own (stderr is unbuffered), and on
/// wasip2 every write is a call into the host.
fn log(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut text = line.to_string();
    text.push('\n');
    // Nothing to do if the host's stderr refuses it: the line is for people, not for the host.
    let _ = std::io::stderr().write_all(text.as_bytes());
}
