// The task list and the task form. The list is a keyed view of a Map of tasks: the API's
// answers and the WebSocket's frames both go through `apply`, which keeps the newest state of
// each task (by `updated_at`), so a late frame never undoes a newer answer.

import { api } from './api.js';
import { $, $$, h, icon, announce, toast, openDialog, confirmAction } from './dom.js';
import {
  timeZone, toLocalInput, fromLocalInput, toLocalDateInput, endOfLocalDay,
  formatDateTime, formatDay, formatFull, fromNow, formatOffset,
} from './time.js';

const PRIORITY_RANK = { high: 0, medium: 1, low: 2 };
const UNIT = { daily: ['day', 'days'], weekly: ['week', 'weeks'], monthly: ['month', 'months'] };
/** How long after this tab changed a task a frame about it counts as this tab's own echo. */
const OWN_ECHO_MS = 4000;

export function createTasksView({ token, onError, openHistory }) {
  const tasks = new Map();
  const deleted = new Set();
  const elements = new Map();
  const ownChanges = new Map();
  const list = $('#task-list');
  const template = $('#task-template');
  let editing = null;
  let syncing = null;

  // ---------- state ----------

  const stamp = (t) => Date.parse(t.updated_at || t.created_at || 0) || 0;

  /** Keeps `task` unless a newer state of it is known; returns true if the list changed. */
  function upsert(task) {
    if (deleted.has(task.id)) return false;
    const known = tasks.get(task.id);
    if (known && stamp(known) > stamp(task)) return false;
    tasks.set(task.id, task);
    return true;
  }

  function remove(id) {
    deleted.add(id);
    return tasks.delete(id);
  }

  const markOwn = (id) => ownChanges.set(id, Date.now());
  const isOwn = (id) => Date.now() - (ownChanges.get(id) || 0) < OWN_ECHO_MS;

  /** Reloads every task; frames that arrive meanwhile are applied on top of the answer. */
  async function reload() {
    const buffered = [];
    syncing = buffered;
    try {
      const fresh = await api('/api/tasks', { token: token() });
      tasks.clear();
      for (const t of fresh) if (!deleted.has(t.id)) tasks.set(t.id, t);
      for (const frame of buffered) applyFrame(frame, { quiet: true });
    } finally {
      syncing = null;
    }
    render();
  }

  /** A WebSocket frame: another tab, the API, or a component (the recurrence's next instance). */
  function onFrame(frame) {
    if (syncing) { syncing.push(frame); return; }
    applyFrame(frame, { quiet: false });
  }

  function applyFrame(frame, { quiet }) {
    const id = frame.task_id;
    const before = tasks.get(id);
    let changed;
    if (frame.type === 'task.deleted') {
      changed = remove(id);
    } else if (frame.task) {
      changed = upsert(frame.task);
    }
    if (!changed || quiet) {
      if (changed) render();
      return;
    }
    render();
    if (isOwn(id)) return;
    const task = tasks.get(id) || before;
    const title = task ? `“${task.title}”` : 'A task';
    let message;
    switch (frame.type) {
      case 'task.created':
        message = task && task.occurrence > 1 && task.series_id
          ? `Next ${title} (#${task.occurrence}) is ${task.due_date ? `due ${formatDateTime(task.due_date)}` : 'ready'}`
          : `${title} was added`;
        break;
      case 'task.completed': message = `${title} was completed`; break;
      case 'task.deleted': message = `${title} was deleted`; break;
      default: message = `${title} was changed`;
    }
    announce(message);
    const el = elements.get(id);
    if (el) {
      el.classList.remove('flash');
      void el.offsetWidth; // restart the animation
      el.classList.add('flash');
    }
  }

  // ---------- rendering ----------

  const filter = () => $('input[name="filter"]:checked').value;
  const query = () => $('#search').value.trim().toLowerCase();

  function matches(t, q) {
    if (!q) return true;
    if (q.startsWith('#')) return t.tags.some((tag) => tag.toLowerCase().startsWith(q.slice(1)));
    return t.title.toLowerCase().includes(q) || t.tags.some((tag) => tag.toLowerCase().includes(q));
  }

  function compare(a, b) {
    if (a.is_completed !== b.is_completed) return a.is_completed ? 1 : -1;
    if (a.is_completed) return (Date.parse(b.completed_at) || 0) - (Date.parse(a.completed_at) || 0);
    const da = a.due_date ? Date.parse(a.due_date) : Infinity;
    const db = b.due_date ? Date.parse(b.due_date) : Infinity;
    if (da !== db) return da - db;
    if (a.priority !== b.priority) return PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority];
    return (Date.parse(a.created_at) || 0) - (Date.parse(b.created_at) || 0);
  }

  function render() {
    const f = filter();
    const q = query();
    const all = [...tasks.values()];
    const shown = all
      .filter((t) => (f === 'all' || (f === 'completed') === t.is_completed) && matches(t, q))
      .sort(compare);

    // Keyed update: reuse each task's element and move only what changed place, so focus
    // and hover survive a live update.
    const keep = new Set(shown.map((t) => t.id));
    for (const [id, el] of elements) {
      if (!keep.has(id)) { el.remove(); elements.delete(id); }
    }
    shown.forEach((task, i) => {
      let el = elements.get(task.id);
      if (!el) {
        el = template.content.firstElementChild.cloneNode(true);
        el.dataset.id = task.id;
        elements.set(task.id, el);
      }
      fill(el, task);
      if (list.children[i] !== el) list.insertBefore(el, list.children[i] || null);
    });

    const active = all.filter((t) => !t.is_completed);
    const overdue = active.filter((t) => t.due_date && Date.parse(t.due_date) < Date.now()).length;
    const done = all.length - active.length;
    $('#tasks-summary').textContent = [
      `${active.length} active`, overdue ? `${overdue} overdue` : null, done ? `${done} completed` : null,
    ].filter(Boolean).join(' · ');
    $('#empty').hidden = shown.length > 0;
    $('#empty-text').textContent = q ? 'No task matches this filter.'
      : f === 'completed' ? 'Nothing completed yet.' : 'Nothing to do. Add a task above.';
  }

  function fill(el, task) {
    el.classList.toggle('done', task.is_completed);
    const check = $('.task-check', el);
    check.checked = task.is_completed;
    check.disabled = task.is_completed;
    check.setAttribute('aria-label', task.is_completed ? `“${task.title}” is completed` : `Complete “${task.title}”`);
    $('.prio', el).dataset.p = task.priority;
    $('.task-title', el).textContent = task.title;
    $('.task-desc', el).textContent = task.description || '';
    $('[data-action="history"]', el).setAttribute('aria-label', `History of “${task.title}”`);
    $('[data-action="edit"]', el).setAttribute('aria-label', `Edit “${task.title}”`);
    $('[data-action="delete"]', el).setAttribute('aria-label', `Delete “${task.title}”`);
    $('.task-meta', el).replaceChildren(...meta(task));
  }

  function meta(task) {
    const items = [h('li', { class: 'visually-hidden' }, `${task.priority} priority`)];
    if (task.priority !== 'medium') {
      items[0] = h('li', {}, `${task.priority[0].toUpperCase()}${task.priority.slice(1)} priority`);
    }
    if (task.due_date) {
      const due = Date.parse(task.due_date);
      const late = !task.is_completed && due < Date.now();
      const soon = !task.is_completed && !late && due - Date.now() < 24 * 3600 * 1000;
      items.push(h('li', { class: late ? 'overdue' : soon ? 'soon' : '', title: formatFull(task.due_date) },
        icon('clock'),
        h('span', {}, `${late ? 'Overdue · ' : ''}${formatDateTime(task.due_date)} (${fromNow(task.due_date)})`)));
    }
    if (task.is_recurring && task.recurrence_frequency) {
      items.push(h('li', {}, icon('repeat'), recurrenceText(task)));
    }
    if (task.series_id || (task.is_recurring && task.occurrence)) {
      items.push(h('li', { class: 'series' }, `#${task.occurrence || 1}`));
    }
    if (task.due_date && !task.is_completed) {
      items.push(h('li', { title: 'Reminders' }, icon('bell'), reminderText(task.reminder_offsets_minutes)));
    }
    if (task.is_completed && task.completed_at) {
      items.push(h('li', {}, icon('check'), `Done ${fromNow(task.completed_at)}`));
    }
    for (const tag of task.tags) items.push(h('li', { class: 'tag' }, `#${tag}`));
    return items;
  }

  // ---------- actions ----------

  list.addEventListener('change', async (e) => {
    const check = e.target.closest('.task-check');
    if (!check) return;
    const id = check.closest('.task').dataset.id;
    check.disabled = true;
    try {
      markOwn(id);
      const task = await api(`/api/tasks/${id}/complete`, { token: token(), method: 'POST' });
      upsert(task);
      render();
      announce(`“${task.title}” completed${task.is_recurring ? '; its next one follows shortly' : ''}`);
      focusAfterMove(id);
    } catch (err) {
      check.checked = false;
      check.disabled = false;
      onError(err);
    }
  });

  list.addEventListener('click', async (e) => {
    const button = e.target.closest('button[data-action]');
    if (!button) return;
    const id = button.closest('.task').dataset.id;
    const task = tasks.get(id);
    if (!task) return;
    if (button.dataset.action === 'edit') openForm(task);
    if (button.dataset.action === 'history') openHistory(task);
    if (button.dataset.action === 'delete') {
      const ok = await confirmAction('Delete this task?', `“${task.title}” will be deleted. Its history is kept.`, 'Delete');
      if (!ok) return;
      try {
        markOwn(id);
        const next = neighbour(id);
        await api(`/api/tasks/${id}`, { token: token(), method: 'DELETE' });
        remove(id);
        render();
        toast(`Deleted “${task.title}”`);
        (next ? $('.task-check', next) : $('#quick-title')).focus();
      } catch (err) {
        onError(err);
      }
    }
  });

  function neighbour(id) {
    const el = elements.get(id);
    return el && (el.nextElementSibling || el.previousElementSibling);
  }

  /** After a task leaves the visible list (completed), focus what took its place. */
  function focusAfterMove(id) {
    const el = elements.get(id);
    if (el && document.activeElement && el.contains(document.activeElement)) return;
    const first = list.querySelector('.task-check:not(:disabled)');
    (first || $('#quick-title')).focus();
  }

  // ---------- the form ----------

  const dialog = $('#task-dialog');
  const form = $('#task-form');
  $('#tz-name').textContent = timeZone;

  $('#quick-add').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('#quick-title');
    const title = input.value.trim();
    if (!title) return;
    try {
      const task = await api('/api/tasks', { token: token(), method: 'POST', body: { title } });
      markOwn(task.id);
      upsert(task);
      render();
      input.value = '';
      announce(`Added “${task.title}”`);
    } catch (err) {
      onError(err);
    }
  });
  $('#quick-more').addEventListener('click', () => openForm(null, $('#quick-title').value.trim()));

  form.elements.recurring.addEventListener('change', syncFormVisibility);
  for (const r of form.elements.reminders) r.addEventListener('change', syncFormVisibility);
  $('#f-due-clear').addEventListener('click', () => { form.elements.due.value = ''; form.elements.due.focus(); });
  // Typing an end date or a count picks that option.
  form.elements.ends_on.addEventListener('input', () => { form.elements.ends.value = 'on'; });
  form.elements.max.addEventListener('input', () => { form.elements.ends.value = 'after'; });

  function syncFormVisibility() {
    $('#recurrence-fields').hidden = !form.elements.recurring.checked;
    $('#reminder-offsets').hidden = form.elements.reminders.value !== 'custom';
  }

  function openForm(task, title = '') {
    editing = task;
    form.reset();
    $('#task-form-error').textContent = '';
    $('#task-dialog-title').textContent = task ? 'Edit task' : 'New task';
    $('#task-submit').textContent = task ? 'Save changes' : 'Add task';
    const f = form.elements;
    const t = task || {};
    f.title.value = task ? t.title : title;
    f.description.value = t.description || '';
    f.priority.value = t.priority || 'medium';
    f.due.value = toLocalInput(t.due_date);
    f.tags.value = (t.tags || []).join(', ');
    f.recurring.checked = Boolean(t.is_recurring);
    f.frequency.value = t.recurrence_frequency || 'weekly';
    f.interval.value = t.recurrence_interval || 1;
    f.ends.value = t.recurrence_ends_on ? 'on' : t.recurrence_max_occurrences ? 'after' : 'never';
    f.ends_on.value = toLocalDateInput(t.recurrence_ends_on);
    f.max.value = t.recurrence_max_occurrences || 10;
    const offsets = t.reminder_offsets_minutes;
    f.reminders.value = offsets == null ? 'default' : offsets.length === 0 ? 'none' : 'custom';
    const presets = new Set($$('input[name="offset"]', form).map((c) => Number(c.value)));
    for (const c of $$('input[name="offset"]', form)) c.checked = (offsets || []).includes(Number(c.value));
    f.offset_other.value = (offsets || []).filter((o) => !presets.has(o)).join(', ');
    syncFormVisibility();
    openDialog(dialog);
    f.title.focus();
  }

  /** The form as the API's task fields; throws a message for a value that cannot be sent. */
  function readForm() {
    const f = form.elements;
    const title = f.title.value.trim();
    if (!title) throw new Error('Give the task a title.');
    const tags = [...new Set(f.tags.value.split(',').map((s) => s.trim().replace(/^#/, '')).filter(Boolean))];
    const due = fromLocalInput(f.due.value);
    const body = {
      title,
      description: f.description.value.trim() || null,
      priority: f.priority.value,
      due_date: due,
      tags,
      is_recurring: f.recurring.checked,
      recurrence_frequency: null,
      recurrence_interval: null,
      recurrence_ends_on: null,
      recurrence_max_occurrences: null,
      reminder_offsets_minutes: null,
    };
    if (body.is_recurring) {
      const interval = Number(f.interval.value);
      if (!Number.isInteger(interval) || interval < 1) throw new Error('“Every” must be a whole number of at least 1.');
      body.recurrence_frequency = f.frequency.value;
      body.recurrence_interval = interval;
      if (f.ends.value === 'on') {
        body.recurrence_ends_on = endOfLocalDay(f.ends_on.value);
        if (!body.recurrence_ends_on) throw new Error('Pick the date the series ends on.');
      }
      if (f.ends.value === 'after') {
        const max = Number(f.max.value);
        if (!Number.isInteger(max) || max < 1) throw new Error('The number of times must be at least 1.');
        body.recurrence_max_occurrences = max;
      }
    }
    if (f.reminders.value === 'none') body.reminder_offsets_minutes = [];
    if (f.reminders.value === 'custom') {
      const picked = $$('input[name="offset"]:checked', form).map((c) => Number(c.value));
      const other = f.offset_other.value.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
      if (other.some((n) => !Number.isInteger(n) || n < 0)) throw new Error('Other reminders: whole minutes before the due time, comma separated.');
      body.reminder_offsets_minutes = [...new Set([...picked, ...other])].sort((a, b) => b - a);
      if (body.reminder_offsets_minutes.length === 0) throw new Error('Pick at least one reminder, or choose None.');
    }
    if (body.reminder_offsets_minutes?.length && !due) {
      throw new Error('Reminders need a due date.');
    }
    return body;
  }

  const RECURRENCE_FIELDS = ['is_recurring', 'recurrence_frequency', 'recurrence_interval', 'recurrence_ends_on', 'recurrence_max_occurrences'];
  const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

  /** Only what changed, so the audit trail shows what the user meant to change. */
  function patchFor(task, body) {
    const patch = {};
    for (const key of ['title', 'description', 'priority', 'tags', 'reminder_offsets_minutes']) {
      if (!same(task[key], body[key])) patch[key] = body[key];
    }
    if (!same(task.due_date && Date.parse(task.due_date), body.due_date && Date.parse(body.due_date))) {
      patch.due_date = body.due_date;
    }
    const rule = (t) => (t.is_recurring
      ? [t.recurrence_frequency, t.recurrence_interval || 1, t.recurrence_ends_on && Date.parse(t.recurrence_ends_on), t.recurrence_max_occurrences ?? null]
      : null);
    if (!same(rule(task), rule(body))) {
      for (const key of RECURRENCE_FIELDS) patch[key] = body[key];
      if (!body.is_recurring) patch.is_recurring = false;
    }
    return patch;
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const error = $('#task-form-error');
    error.textContent = '';
    let body;
    try {
      body = readForm();
    } catch (err) {
      error.textContent = err.message;
      return;
    }
    const submit = $('#task-submit');
    submit.disabled = true;
    try {
      let task;
      if (editing) {
        const patch = patchFor(editing, body);
        if (Object.keys(patch).length === 0) { dialog.close(); return; }
        markOwn(editing.id);
        task = await api(`/api/tasks/${editing.id}`, { token: token(), method: 'PATCH', body: patch });
      } else {
        for (const key of Object.keys(body)) if (body[key] === null) delete body[key];
        task = await api('/api/tasks', { token: token(), method: 'POST', body });
        markOwn(task.id);
        $('#quick-title').value = '';
      }
      upsert(task);
      render();
      dialog.close();
      toast(editing ? `Saved “${task.title}”` : `Added “${task.title}”`);
    } catch (err) {
      if (err.status === 401) onError(err);
      error.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  });

  // ---------- toolbar and keys ----------

  for (const r of $$('input[name="filter"]')) r.addEventListener('change', render);
  $('#search').addEventListener('input', render);
  document.addEventListener('keydown', (e) => {
    const typing = e.target.closest('input, textarea, select, [contenteditable]');
    if (e.key === 'n' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey && !document.querySelector('dialog[open]')
        && !$('#view-tasks').hidden) {
      e.preventDefault();
      $('#quick-title').focus();
    }
  });
  // Relative times ("in 5 minutes", overdue) move on even when nothing else happens.
  setInterval(() => { if (!$('#view-tasks').hidden) render(); }, 30_000);

  return {
    reload,
    onFrame,
    get: (id) => tasks.get(id),
    clear() {
      tasks.clear();
      deleted.clear();
      render();
    },
  };
}

export function recurrenceText(t) {
  const n = t.recurrence_interval || 1;
  const [one, many] = UNIT[t.recurrence_frequency];
  let text = n === 1 ? `Every ${one}` : `Every ${n} ${many}`;
  if (t.recurrence_ends_on) text += ` until ${formatDay(t.recurrence_ends_on)}`;
  else if (t.recurrence_max_occurrences) text += `, ${t.recurrence_max_occurrences} times`;
  return text;
}

function reminderText(offsets) {
  if (offsets == null) return '1 day, 1 h before';
  if (offsets.length === 0) return 'No reminders';
  const before = offsets.filter((o) => o > 0).map(formatOffset);
  const parts = before.length ? [`${before.join(', ')} before`] : [];
  if (offsets.includes(0)) parts.push('at due time');
  return parts.join(', ');
}
