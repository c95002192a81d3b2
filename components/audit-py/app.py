"""The audit consumer, in Python: one audit-trail entry per task event — who did what to which
task, when, the states before and after, and the fields that changed.

A second build of components/audit (Rust), written to give the very same answers: the changed
fields are named as in the public JSON API and valued as JSON text, built by hand exactly as the
Rust build does (its escaping, its RFC 3339 timestamps with chrono's range and year format).
components/audit/tests run against this build too, and host/tests/polyglot_audit.rs compares its
answers with the Rust build's on recorded messages.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import (
    AuditEntry,
    Effect,
    Effect_AppendAudit,
    Failure_Drop,
    FieldChange,
    Frequency,
    Manifest,
    Message,
    Message_TaskEvent,
    Priority,
    Recurrence,
    Task,
    TaskEvent,
    TaskOperation,
)

VERSION = "0.1.0"
# Task operations: every one must reach the trail whichever topic it comes on.
TASK_EVENTS = "task-events"
# The Python backend publishes its `updated` events here (the others on task-events).
TASK_UPDATES = "task-updates"

# The fields the audit trail tracks, in the order changes are listed.
TRACKED = (
    "title",
    "description",
    "is_completed",
    "priority",
    "due_date",
    "recurrence",
    "tags",
    "reminder_offsets_minutes",
    "completed_at",
)


class Handler(exports.Handler):
    def describe(self) -> Manifest:
        return Manifest(name="audit", version=VERSION, topics=[TASK_EVENTS, TASK_UPDATES])

    def handle(self, topic: str, message: Message, now: int) -> list[Effect]:
        """The entry is dated by the event, not by `now`: the trail records when things happened."""
        if topic in (TASK_EVENTS, TASK_UPDATES) and isinstance(message, Message_TaskEvent):
            return [Effect_AppendAudit(entry(message.value))]
        return []


def entry(event: TaskEvent) -> AuditEntry:
    """A deletion records the last known state as `previous` and no change list; any other
    operation lists the fields that differ from `previous` (all of them without one)."""
    task = event.task
    if event.operation == TaskOperation.CREATED:
        previous, current, changes = None, task, between(None, task)
    elif event.operation in (TaskOperation.UPDATED, TaskOperation.COMPLETED):
        previous, current, changes = event.previous, task, between(event.previous, task)
    else:
        previous = event.previous if event.previous is not None else task
        current, changes = None, []
    return AuditEntry(
        event_id=event.event_id,
        task_id=task.id,
        actor=event.user_id,
        operation=event.operation,
        at=event.occurred_at,
        previous=previous,
        current=current,
        changes=changes,
    )


def between(previous: Task | None, current: Task) -> list[FieldChange]:
    old = values(previous) if previous is not None else [None] * len(TRACKED)
    new = values(current)
    return [
        FieldChange(field=field, old=o, new=n)
        for field, o, n in zip(TRACKED, old, new)
        if o != n
    ]


def values(task: Task) -> list[str | None]:
    """Each tracked field as JSON text, None where the task has none (in TRACKED's order, which
    is also the order a malformed timestamp is found in)."""
    return [
        string(task.title),
        None if task.description is None else string(task.description),
        "true" if task.is_completed else "false",
        string(PRIORITIES[task.priority]),
        None if task.due_date is None else timestamp(task.due_date),
        None if task.recurrence is None else recurrence(task.recurrence),
        array(string(tag) for tag in task.tags),
        None if task.reminder_offsets is None else array(str(o) for o in task.reminder_offsets),
        None if task.completed_at is None else timestamp(task.completed_at),
    ]


PRIORITIES = {Priority.HIGH: "high", Priority.MEDIUM: "medium", Priority.LOW: "low"}
FREQUENCIES = {Frequency.DAILY: "daily", Frequency.WEEKLY: "weekly", Frequency.MONTHLY: "monthly"}


def recurrence(rule: Recurrence) -> str:
    """The anchor is bookkeeping of the series, not something the user set: left out."""
    ends_on = "null" if rule.ends_on is None else timestamp(rule.ends_on)
    most = "null" if rule.max_occurrences is None else str(rule.max_occurrences)
    return (
        f'{{"frequency":{string(FREQUENCIES[rule.frequency])},"interval":{rule.interval},'
        f'"ends_on":{ends_on},"max_occurrences":{most}}}'
    )


def array(items) -> str:
    return "[" + ",".join(items) + "]"


ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def string(text: str) -> str:
    """A JSON string literal: escapes what JSON requires and leaves the rest as it is."""
    out = ['"']
    for c in text:
        if c in ESCAPES:
            out.append(ESCAPES[c])
        elif c < " ":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


MS_PER_DAY = 86_400_000


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


# The instants chrono (the Rust build) can represent: years -262143 to 262142.
FIRST_DAY = days_from_civil(-262143, 1, 1)
LAST_DAY = days_from_civil(262142, 12, 31)


def timestamp(ms: int) -> str:
    """`"2026-01-31T09:00:00Z"`, with milliseconds only when there are some; out of range it is
    malformed data, dropped with the reason."""
    days, in_day = divmod(ms, MS_PER_DAY)
    if not FIRST_DAY <= days <= LAST_DAY:
        raise Err(Failure_Drop(f"timestamp {ms} ms is out of range"))
    y, m, d = civil_from_days(days)
    year = f"{y:04d}" if 0 <= y <= 9999 else f"{y:+05d}"
    seconds, millis = divmod(in_day, 1000)
    hh, rest = divmod(seconds, 3600)
    mm, ss = divmod(rest, 60)
    fraction = f".{millis:03d}" if millis else ""
    return f'"{year}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}{fraction}Z"'
