//! Calendar arithmetic for the next due date, in UTC.
//!
//! Days and weeks are fixed lengths, so they are added as milliseconds (the time of day stays).
//! Months are not: "one month after Jan 31" has no single answer. A monthly series therefore
//! follows its anchor — the first occurrence's due date — and the k-th step of the series is
//! `anchor + k·interval months` with the day clamped to the month's last day. The series goes
//! Jan 31 → Feb 28 (29 in leap years) → Mar 31 instead of drifting to the 28th for good, which
//! adding a month to the previous due date (or +30 days, as the Python system did) would do.

use chrono::{DateTime, Datelike, Months, NaiveDateTime, SecondsFormat};

use crate::todo::events::types::{Frequency, Recurrence, Timestamp};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The due date of the occurrence after one due at `due` (or, for a task without a due date,
/// completed at `completed_at`). The error names the problem, for a dead-lettered message.
///
/// Monthly: the first date of the anchor's series after the current due date. When the anchor
/// is the first occurrence's due date and the due dates kept to the series, that is exactly
/// `anchor + interval·occurrence months`; unlike that formula it stays right when the anchor is
/// missing mid-series (`none` means "the current due date") or a due date was moved by hand.
/// Without a due date the next one is one interval after the completion, on the anchor's day
/// of month if there is an anchor, else on the completion's.
pub fn next_due(
    rule: &Recurrence,
    due: Option<Timestamp>,
    completed_at: Timestamp,
) -> Result<Timestamp, String> {
    let from = due.unwrap_or(completed_at);
    let interval = i64::from(rule.interval);
    let next = match rule.frequency {
        Frequency::Daily => add_days(from, interval),
        Frequency::Weekly => add_days(from, 7 * interval),
        Frequency::Monthly => {
            let anchor = datetime(rule.anchor.or(due).unwrap_or(completed_at))?;
            let from_dt = datetime(from)?;
            let elapsed = months_between(anchor, from_dt);
            match due {
                Some(_) => first_step_after(
                    anchor,
                    elapsed.div_euclid(interval) * interval,
                    interval,
                    from,
                ),
                None => add_months(anchor, elapsed + interval),
            }
        }
    };
    next.ok_or_else(|| format!("next due date after {} is out of range", rfc3339(from)))
}

/// `anchor + steps months`, stepping on by `interval` months until it is after `from`. Starting
/// at the step that falls in `from`'s month (or before), this loops at most twice.
fn first_step_after(
    anchor: NaiveDateTime,
    mut steps: i64,
    interval: i64,
    from: Timestamp,
) -> Option<Timestamp> {
    loop {
        let candidate = add_months(anchor, steps)?;
        if candidate > from {
            return Some(candidate);
        }
        steps += interval;
    }
}

fn add_days(from: Timestamp, days: i64) -> Option<Timestamp> {
    from.checked_add(days.checked_mul(DAY_MS)?)
}

/// `start` moved by `months` calendar months, the day clamped to the month's end, the time kept.
fn add_months(start: NaiveDateTime, months: i64) -> Option<Timestamp> {
    let shift = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    let date = if months >= 0 {
        start.date().checked_add_months(shift)
    } else {
        start.date().checked_sub_months(shift)
    }?;
    Some(date.and_time(start.time()).and_utc().timestamp_millis())
}

/// Whole calendar months from `a`'s month to `b`'s month, ignoring the day.
fn months_between(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    (i64::from(b.year()) - i64::from(a.year())) * 12
        + (i64::from(b.month0()) - i64::from(a.month0()))
}

fn datetime(ms: Timestamp) -> Result<NaiveDateTime, String> {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.naive_utc())
        .ok_or_else(|| format!("timestamp {ms} ms is out of range"))
}

/// For logs and error messages.
pub fn rfc3339(ms: Timestamp) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| format!("{ms} ms"))
}
