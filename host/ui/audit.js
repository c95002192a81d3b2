// The audit-trail panel of one task: `GET /api/audit-logs/{task_id}`, oldest first, each
// entry with its operation, time, actor and field changes. Values arrive as JSON text
// (`"\"high\""`, `["home"]`, a recurrence object) and are shown the way the form shows them.

import { api } from './api.js';
import { $, h, openDialog } from './dom.js';
import { formatDateTime, formatFull, fromNow, formatOffset } from './time.js';
import { recurrenceText } from './tasks.js';

const LABELS = {
  title: 'Title', description: 'Description', is_completed: 'Completed', priority: 'Priority',
  due_date: 'Due', recurrence: 'Repeats', tags: 'Tags', reminder_offsets_minutes: 'Reminders',
  completed_at: 'Completed at',
};
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

export function createAuditPanel({ token, onError }) {
  const dialog = $('#audit-dialog');
  const listEl = $('#audit-list');
  let current = null;
  let loading = null;

  async function open(task) {
    current = task;
    $('#audit-title').textContent = `History of “${task.title}”`;
    $('#audit-subtitle').textContent = task.series_id
      ? `Occurrence #${task.occurrence} of a repeating task`
      : `Created ${fromNow(task.created_at)}`;
    listEl.replaceChildren(h('li', { class: 'muted' }, 'Loading…'));
    openDialog(dialog);
    await load();
  }

  /** Reads every page of the trail (50 entries each). */
  async function load() {
    const task = current;
    if (!task) return;
    const run = (loading = Symbol('load'));
    try {
      const entries = [];
      let cursor = null;
      do {
        const page = await api(`/api/audit-logs/${encodeURIComponent(task.id)}${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`,
          { token: token() });
        entries.push(...page.entries);
        cursor = page.next_cursor;
      } while (cursor && entries.length < 1000);
      if (run !== loading || current !== task) return;
      listEl.replaceChildren(...(entries.length ? entries.map(entry)
        : [h('li', { class: 'muted' }, 'No history yet: the first entry is on its way.')]));
    } catch (err) {
      if (run !== loading) return;
      listEl.replaceChildren(h('li', { class: 'form-error' }, err.message));
      if (err.status === 401) onError(err);
    }
  }

  dialog.addEventListener('close', () => { current = null; });

  return {
    open,
    /** A frame about the open task: its audit entry lands right after the change. */
    onFrame(frame) {
      if (current && dialog.open && frame.task_id === current.id) {
        if (frame.task) current = frame.task;
        // The audit consumer and the sync consumer handle the same event; give the audit
        // entry a moment to be written, and look again in case it was slower.
        setTimeout(load, 250);
        setTimeout(load, 1500);
      }
    },
  };
}

function entry(e) {
  const changes = e.operation === 'created'
    ? e.changes.filter((c) => c.new !== null && c.new !== '[]' && c.field !== 'is_completed')
    : e.changes;
  return h('li', { dataset: { op: e.operation } },
    h('div', { class: 'entry-head' },
      h('span', { class: 'op' }, e.operation),
      h('time', { datetime: e.at, title: formatFull(e.at), class: 'entry-meta' }, `${formatDateTime(e.at)} · ${fromNow(e.at)}`)),
    h('p', { class: 'entry-meta' }, `by ${e.user_id} · recorded by audit ${e.component_version}`),
    changes.length ? table(changes, e.operation === 'created') : null);
}

function table(changes, created) {
  return h('table', { class: 'changes' },
    h('caption', { class: 'visually-hidden' }, created ? 'Initial values' : 'Field changes'),
    h('tbody', {}, changes.map((c) => h('tr', {},
      h('th', { scope: 'row' }, LABELS[c.field] || c.field),
      h('td', {},
        created ? null : h('span', { class: 'old' }, show(c.field, c.old)),
        created ? null : ' → ',
        h('span', { class: 'new' }, show(c.field, c.new)))))));
}

/** One audit value (JSON text, or null) as people read it. */
function show(field, raw) {
  if (raw === null || raw === undefined) return '—';
  let v;
  try { v = JSON.parse(raw); } catch { return raw; }
  if (v === null) return '—';
  if (field === 'recurrence' && typeof v === 'object') {
    return recurrenceText({
      recurrence_frequency: v.frequency, recurrence_interval: v.interval,
      recurrence_ends_on: v.ends_on, recurrence_max_occurrences: v.max_occurrences,
    });
  }
  if (field === 'reminder_offsets_minutes' && Array.isArray(v)) {
    return v.length ? v.map((o) => (o === 0 ? 'at due time' : `${formatOffset(o)} before`)).join(', ') : 'none';
  }
  if (Array.isArray(v)) return v.length ? v.map((t) => `#${t}`).join(' ') : 'none';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'string' && RFC3339.test(v)) return formatDateTime(v);
  return String(v);
}
