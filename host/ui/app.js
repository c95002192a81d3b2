// The page's entry point: sign-in, the two views (#/tasks, #/admin), and the wiring between
// the task list, the live socket, the audit panel and the inbox.

import { api } from './api.js';
import { $, $$, h, announce, toast } from './dom.js';
import { loadSession, saveSession, clearSession, sessionFrom, recentUsers } from './session.js';
import { LiveSocket } from './live.js';
import { createTasksView } from './tasks.js';
import { createAuditPanel } from './audit.js';
import { createInbox } from './inbox.js';
import { createAdminView } from './admin.js';

let session = null;
let expiryTimer = null;
const token = () => session && session.token;

const tasks = createTasksView({ token, onError, openHistory: (task) => audit.open(task) });
const audit = createAuditPanel({ token, onError });
const inbox = createInbox({
  token, onError, user: () => session && session.user, taskTitle: (id) => tasks.get(id)?.title,
});
const admin = createAdminView();

const live = new LiveSocket(token, {
  onOpen: () => tasks.reload().catch(onError),
  onFrame: (frame) => {
    tasks.onFrame(frame);
    audit.onFrame(frame);
    inbox.poke();
  },
  onState: showLiveState,
  onAuthSuspect: () => api('/api/tasks', { token: token() }).catch(onError),
});

/** Errors from any part: a refused token signs out, anything else is shown. */
function onError(err) {
  if (err && err.status === 401) {
    signOut(`Signed out: ${err.message}`);
  } else {
    toast(err && err.message ? err.message : String(err), { error: true });
  }
}

// ---------- live status ----------

let lastState = 'off';
function showLiveState(state, retryInMs) {
  const el = $('#live-status');
  el.hidden = state === 'off';
  el.dataset.state = state;
  const text = { live: 'Live', connecting: 'Connecting…', off: 'Offline' }[state]
    || `Offline · retrying in ${Math.max(1, Math.round(retryInMs / 1000))} s`;
  $('.live-text', el).textContent = text;
  el.title = state === 'live' ? 'Changes from other tabs and devices appear here as they happen' : text;
  if (state === 'offline' && lastState === 'live') announce('Live updates lost; reconnecting.');
  if (state === 'live' && lastState === 'offline') announce('Live updates are back.');
  lastState = state;
}

// ---------- sign in / out ----------

async function signIn(next) {
  session = next;
  saveSession(session);
  $('#signin-error').textContent = '';
  $('#account-name').textContent = session.user;
  $('.avatar').textContent = session.user.slice(0, 1);
  $('#account').hidden = false;
  clearTimeout(expiryTimer);
  if (session.expiresAt) {
    // setTimeout's limit is ~24.8 days; a longer token simply is not timed here.
    const left = session.expiresAt - Date.now();
    if (left < 2 ** 31) expiryTimer = setTimeout(() => signOut('Your session expired; sign in again.'), left);
  }
  route();
  try {
    await tasks.reload();
  } catch (err) {
    onError(err);
    return;
  }
  live.start();
  inbox.start();
}

function signOut(message) {
  live.stop();
  inbox.stop();
  tasks.clear();
  clearSession();
  clearTimeout(expiryTimer);
  session = null;
  $('#account').hidden = true;
  for (const d of $$('dialog[open]')) d.close();
  route();
  if (message) $('#signin-error').textContent = message;
}

$('#sign-out').addEventListener('click', () => signOut());

$('#dev-signin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = $('#dev-user').value.trim();
  $('#signin-error').textContent = '';
  try {
    const answer = await api('/api/dev/token', { method: 'POST', body: { user_id: name } });
    await signIn(sessionFrom(answer.token));
  } catch (err) {
    $('#signin-error').textContent = err.message;
  }
});

$('#token-signin').addEventListener('submit', async (e) => {
  e.preventDefault();
  const raw = $('#jwt').value.trim();
  const next = sessionFrom(raw);
  if (!next) {
    $('#signin-error').textContent = 'That is not a valid JWT with a user (`sub`), or it has expired.';
    return;
  }
  try {
    // Ask the host: only it can tell whether the signature is good.
    await api('/api/tasks', { token: next.token });
    $('#jwt').value = '';
    await signIn(next);
  } catch (err) {
    $('#signin-error').textContent = err.message;
  }
});

/** Offers sign-in by name when the host runs in development mode. */
async function offerDevSignIn() {
  const dev = await api('/api/dev').then(() => true, () => false);
  $('#dev-signin').hidden = !dev;
  $('#signin-divider').hidden = !dev;
  $('#recent-users').replaceChildren(...recentUsers().map((u) => h('button', {
    class: 'chip', type: 'button', 'aria-label': `Sign in as ${u}`,
    onclick: () => { $('#dev-user').value = u; $('#dev-signin').requestSubmit(); },
  }, u)));
}

// ---------- views ----------

function route() {
  const view = location.hash === '#/admin' ? 'admin' : 'tasks';
  const signedOut = view === 'tasks' && !session;
  $('#view-signin').hidden = !signedOut;
  $('#view-tasks').hidden = signedOut || view !== 'tasks';
  $('#view-admin').hidden = view !== 'admin';
  for (const a of $$('[data-view-link]')) {
    if (a.dataset.viewLink === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = view === 'admin' ? 'Components · taskhost' : signedOut ? 'Sign in · taskhost' : 'Tasks · taskhost';
  if (view === 'admin') admin.enter(); else admin.leave();
  if (signedOut) {
    offerDevSignIn().then(() => {
      if (!session) ($('#dev-signin').hidden ? $('#jwt') : $('#dev-user')).focus();
    });
  }
}

window.addEventListener('hashchange', () => {
  route();
  $('#main').focus({ preventScroll: true });
});

const stored = loadSession();
if (stored) signIn(stored); else route();
