// The notifications inbox, fed by reminders. There is no WebSocket frame for a notification,
// so the page asks `GET /api/notifications` every 10 s while it is visible, and soon after
// any task frame (a change can schedule or cancel reminders). Unread = newer than the last
// time this browser opened the inbox.

import { api } from './api.js';
import { $, h, announce, toast, openDialog } from './dom.js';
import { formatDateTime, fromNow, formatOffset } from './time.js';

const POLL_MS = 10_000;
const AFTER_FRAME_MS = 1500;

export function createInbox({ token, user, taskTitle, onError }) {
  const dialog = $('#inbox-dialog');
  const button = $('#inbox-button');
  const badge = $('#inbox-badge');
  const seenKey = () => `taskhost.inbox-seen.${user()}`;
  let items = [];
  let known = null;
  let timer = null;
  let soon = null;
  let stopped = true;

  const lastSeen = () => Number(localStorage.getItem(seenKey()) || 0);
  const unread = () => items.filter((n) => Date.parse(n.created_at) > lastSeen());

  async function poll() {
    clearTimeout(timer);
    if (stopped) return;
    if (document.visibilityState === 'visible') {
      try {
        items = await api('/api/notifications', { token: token() });
        const fresh = known ? items.filter((n) => !known.has(n.id)) : [];
        known = new Set(items.map((n) => n.id));
        for (const n of fresh.slice(0, 3)) toast(n.title, { icon: 'bell' });
        if (fresh.length) announce(fresh.length === 1 ? `New notification: ${fresh[0].body}` : `${fresh.length} new notifications`);
        render();
      } catch (err) {
        if (err.status === 401) { onError(err); return; }
      }
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  function render() {
    const count = unread().length;
    badge.hidden = count === 0;
    badge.textContent = count > 99 ? '99+' : String(count);
    button.setAttribute('aria-label', count ? `Notifications, ${count} unread` : 'Notifications');
    if (!dialog.open) return;
    const seen = Number(dialog.dataset.seenBefore || 0);
    $('#inbox-list').replaceChildren(...(items.length ? items.map((n) => h('li',
      { class: Date.parse(n.created_at) > seen ? 'unread' : '' },
      h('strong', {}, n.title),
      h('p', {}, n.body),
      h('time', { class: 'when', datetime: n.created_at }, `${formatDateTime(n.created_at)} · ${fromNow(n.created_at)}`)))
      : [h('li', { class: 'muted' }, 'No notifications yet. Reminders of tasks with a due date land here.')]));
  }

  async function renderReminders() {
    const listEl = $('#reminder-list');
    try {
      const jobs = await api('/api/reminders', { token: token() });
      listEl.replaceChildren(...(jobs.length ? jobs.slice(0, 20).map((j) => h('li', {},
        h('strong', {}, taskTitle(j.task_id) || 'A task'), ' · ',
        `${formatDateTime(j.due_at)} (${fromNow(j.due_at)}) · ${j.offset_minutes === 0 ? 'at due time' : `${formatOffset(j.offset_minutes)} before`}`))
        : [h('li', { class: 'muted' }, 'None scheduled.')]));
    } catch (err) {
      listEl.replaceChildren(h('li', { class: 'form-error' }, err.message));
    }
  }

  button.addEventListener('click', async () => {
    dialog.dataset.seenBefore = String(lastSeen());
    openDialog(dialog);
    render();
    renderReminders();
    const newest = Math.max(0, ...items.map((n) => Date.parse(n.created_at)));
    if (newest > lastSeen()) localStorage.setItem(seenKey(), String(newest));
    render();
  });
  document.addEventListener('visibilitychange', () => {
    if (!stopped && document.visibilityState === 'visible') poll();
  });

  return {
    start() { stopped = false; known = null; button.hidden = false; poll(); },
    stop() { stopped = true; clearTimeout(timer); clearTimeout(soon); items = []; button.hidden = true; badge.hidden = true; },
    /** A task changed: reminders may have been scheduled, cancelled or become due. */
    poke() {
      clearTimeout(soon);
      soon = setTimeout(poll, AFTER_FRAME_MS);
    },
  };
}
