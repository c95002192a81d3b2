// The audit consumer, in JavaScript: one audit-trail entry per task event — who did what to
// which task, when, the states before and after, and the fields that changed.
//
// A second build of components/audit (Rust), written to give the very same answers: the changed
// fields are named as in the public JSON API and valued as JSON text, built by hand exactly as
// the Rust build does (its escaping, its RFC 3339 timestamps with chrono's range and year
// format). components/audit/tests run against this build too, and host/tests/polyglot_audit.rs
// compares its answers with the Rust build's on recorded messages.
//
// componentize-js maps the WIT so: records are objects with camelCase fields, variants
// `{ tag, val }`, enums strings, `option` a value or undefined, timestamps (s64) BigInts; a
// thrown `{ tag: "drop", val }` is the `failure`.

const VERSION = "0.1.0";
// Task operations: every one must reach the trail whichever topic it comes on.
const TASK_EVENTS = "task-events";
// The Python backend publishes its `updated` events here (the others on task-events).
const TASK_UPDATES = "task-updates";

// The fields the audit trail tracks, in the order changes are listed.
const TRACKED = [
  "title",
  "description",
  "is_completed",
  "priority",
  "due_date",
  "recurrence",
  "tags",
  "reminder_offsets_minutes",
  "completed_at",
];

export const handler = {
  describe() {
    return { name: "audit", version: VERSION, topics: [TASK_EVENTS, TASK_UPDATES] };
  },

  // The entry is dated by the event, not by `now`: the trail records when things happened.
  handle(topic, message, now) {
    if ((topic === TASK_EVENTS || topic === TASK_UPDATES) && message.tag === "task-event") {
      return [{ tag: "append-audit", val: entry(message.val) }];
    }
    return [];
  },
};

// A deletion records the last known state as `previous` and no change list; any other
// operation lists the fields that differ from `previous` (all of them without one).
function entry(event) {
  const task = event.task;
  let previous, current, changes;
  switch (event.operation) {
    case "created":
      [previous, current, changes] = [undefined, task, between(undefined, task)];
      break;
    case "updated":
    case "completed":
      [previous, current, changes] = [event.previous, task, between(event.previous, task)];
      break;
    default:
      [previous, current, changes] = [event.previous ?? task, undefined, []];
  }
  return {
    eventId: event.eventId,
    taskId: task.id,
    actor: event.userId,
    operation: event.operation,
    at: event.occurredAt,
    previous,
    current,
    changes,
  };
}

function between(previous, current) {
  const old = previous == null ? TRACKED.map(() => undefined) : values(previous);
  const now = values(current);
  return TRACKED.flatMap((field, i) =>
    old[i] === now[i] ? [] : [{ field, old: old[i], new: now[i] }],
  );
}

// Each tracked field as JSON text, undefined where the task has none (in TRACKED's order,
// which is also the order a malformed timestamp is found in).
function values(task) {
  const optional = (value, f) => (value == null ? undefined : f(value));
  return [
    string(task.title),
    optional(task.description, string),
    task.isCompleted ? "true" : "false",
    string(task.priority),
    optional(task.dueDate, timestamp),
    optional(task.recurrence, recurrence),
    array(task.tags.map(string)),
    optional(task.reminderOffsets, (offsets) => array(offsets.map(String))),
    optional(task.completedAt, timestamp),
  ];
}

// The anchor is bookkeeping of the series, not something the user set: left out.
function recurrence(rule) {
  const endsOn = rule.endsOn == null ? "null" : timestamp(rule.endsOn);
  const most = rule.maxOccurrences == null ? "null" : String(rule.maxOccurrences);
  return (
    `{"frequency":${string(rule.frequency)},"interval":${rule.interval},` +
    `"ends_on":${endsOn},"max_occurrences":${most}}`
  );
}

function array(items) {
  return `[${items.join(",")}]`;
}

const ESCAPES = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f" };

// A JSON string literal: escapes what JSON requires and leaves the rest as it is.
function string(text) {
  let out = '"';
  for (const c of text) {
    if (c in ESCAPES) out += ESCAPES[c];
    else if (c < " ") out += "\\u" + c.codePointAt(0).toString(16).padStart(4, "0");
    else out += c;
  }
  return out + '"';
}

// Floor division of BigInts (`/` truncates towards zero).
function div(a, b) {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), in BigInts.
function daysFromCivil(y, m, d) {
  y -= m <= 2n ? 1n : 0n;
  const era = div(y, 400n);
  const yoe = y - era * 400n;
  const doy = div(153n * (m > 2n ? m - 3n : m + 9n) + 2n, 5n) + d - 1n;
  const doe = yoe * 365n + div(yoe, 4n) - div(yoe, 100n) + doy;
  return era * 146097n + doe - 719468n;
}

function civilFromDays(z) {
  z += 719468n;
  const era = div(z, 146097n);
  const doe = z - era * 146097n;
  const yoe = div(doe - div(doe, 1460n) + div(doe, 36524n) - div(doe, 146096n), 365n);
  const doy = doe - (365n * yoe + div(yoe, 4n) - div(yoe, 100n));
  const mp = div(5n * doy + 2n, 153n);
  const d = doy - div(153n * mp + 2n, 5n) + 1n;
  const m = mp < 10n ? mp + 3n : mp - 9n;
  return [yoe + era * 400n + (m <= 2n ? 1n : 0n), m, d];
}

// The instants chrono (the Rust build) can represent: years -262143 to 262142.
const FIRST_DAY = daysFromCivil(-262143n, 1n, 1n);
const LAST_DAY = daysFromCivil(262142n, 12n, 31n);
const MS_PER_DAY = 86400000n;

const pad = (n, width) => String(n).padStart(width, "0");

// `"2026-01-31T09:00:00Z"`, with milliseconds only when there are some; out of range it is
// malformed data, dropped with the reason.
function timestamp(ms) {
  const days = div(ms, MS_PER_DAY);
  if (days < FIRST_DAY || days > LAST_DAY) {
    throw { tag: "drop", val: `timestamp ${ms} ms is out of range` };
  }
  const [y, m, d] = civilFromDays(days);
  const year =
    y >= 0n && y <= 9999n ? pad(y, 4) : (y < 0n ? "-" : "+") + pad(y < 0n ? -y : y, 4);
  const inDay = Number(ms - days * MS_PER_DAY);
  const millis = inDay % 1000;
  const seconds = (inDay - millis) / 1000;
  const time = `${pad(Math.floor(seconds / 3600), 2)}:${pad(Math.floor(seconds / 60) % 60, 2)}:${pad(seconds % 60, 2)}`;
  const fraction = millis ? `.${pad(millis, 3)}` : "";
  return `"${year}-${pad(m, 2)}-${pad(d, 2)}T${time}${fraction}Z"`;
}
