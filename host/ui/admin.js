// The admin page: the loaded components (`GET /admin/components`), a new version of one
// (`PUT /admin/components/{name}`, the .wasm as the body), a rollback
// (`POST /admin/components/{name}/rollback`), a shadow or canary candidate
// (`PUT /admin/components/{name}/candidate`, its report from `GET …/shadow`, then
// `POST …/canary`, `…/promote` or `…/rollback`) and the dead letters. Fields the host adds to a
// component (counters such as messages handled and errors) are shown as they come, so the
// page needs no change when the host reports more. A host without the upload or rollback
// routes answers 404 or 405: the page says so instead of failing.

import { api } from './api.js';
import { $, h, icon, toast, confirmAction } from './dom.js';
import { formatDateTime, fromNow } from './time.js';
import { adminToken } from './session.js';

const REFRESH_MS = 5000;
const KNOWN = new Set(['name', 'version', 'digest', 'world', 'topics', 'loaded_at', 'origin', 'messages_handled',
  'errors', 'error_kinds', 'serving_since', 'became_current_by', 'on_probation', 'previous', 'journal', 'candidate']);
const BAD = /error|fail|trap|dead|timeout|drop/i;

export function createAdminView() {
  let timer = null;
  let active = false;

  const humanize = (key) => key.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
  /** A digest (64 hex) shortened to 12; anything else as it is. */
  const short = (v) => (!v ? '—' : /^[0-9a-f]{20,}$/.test(v) ? `${v.slice(0, 12)}…` : v);

  function show(part) {
    $('#admin-signin').hidden = part !== 'signin';
    $('#admin-body').hidden = part !== 'body';
  }

  async function refresh() {
    clearTimeout(timer);
    if (!active) return;
    const token = adminToken.get();
    if (!token) { show('signin'); $('#admin-token').focus(); return; }
    try {
      const [components, deadLetters, ready] = await Promise.all([
        api('/admin/components', { token }),
        api('/admin/dead-letters', { token }).catch((e) => e),
        fetch('/readyz', { cache: 'no-store' }).then((r) => r.json()).catch(() => null),
      ]);
      show('body');
      renderComponents(components);
      renderDeadLetters(deadLetters);
      const pill = $('#admin-health');
      pill.textContent = ready ? `Host ${ready.status}${ready.sockets !== undefined ? ` · ${ready.sockets} open socket${ready.sockets === 1 ? '' : 's'}` : ''}` : 'Host unreachable';
      pill.className = `pill ${ready && ready.status === 'ready' ? 'ok' : 'bad'}`;
      $('#admin-summary').textContent = `${components.length} loaded · updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      if (err.status === 401 || err.status === 403) {
        adminToken.clear();
        show('signin');
        $('#admin-error').textContent = err.status === 403 ? 'That is not this host’s admin token.' : err.message;
        return;
      }
      if (err.status === 404) {
        show('signin');
        $('#admin-error').textContent = 'This host has no admin routes: start it with TASKHOST_ADMIN_TOKEN set.';
        return;
      }
      toast(err.message, { error: true });
    }
    if (active) timer = setTimeout(refresh, REFRESH_MS);
  }

  function renderComponents(components) {
    const grid = $('#components');
    // Keep a card whose file picker or buttons have focus; rebuild the rest.
    const focused = document.activeElement && grid.contains(document.activeElement)
      ? document.activeElement.closest('.component')?.dataset.name : null;
    const cards = components.map((c) => {
      const old = focused === c.name ? grid.querySelector(`.component[data-name="${CSS.escape(c.name)}"]`) : null;
      if (old) { fillCard(old, c, true); return old; }
      const card = h('article', { class: 'component card', dataset: { name: c.name }, 'aria-labelledby': `c-${c.name}` });
      fillCard(card, c, false);
      return card;
    });
    grid.replaceChildren(...cards);
  }

  function fillCard(card, c, keepActions) {
    const extra = Object.entries(c).filter(([k]) => !KNOWN.has(k));
    const kinds = c.error_kinds && typeof c.error_kinds === 'object'
      ? Object.entries(c.error_kinds).map(([k, v]) => `${v} ${k}`).join(' · ') : null;
    const stats = [
      typeof c.messages_handled === 'number' ? ['Messages handled', c.messages_handled, false, null] : null,
      typeof c.errors === 'number' ? ['Errors', c.errors, c.errors > 0, kinds] : null,
      ...extra.filter(([, v]) => typeof v === 'number').map(([k, v]) => [humanize(k), v, BAD.test(k) && v > 0, null]),
    ].filter(Boolean);
    const since = c.serving_since || c.loaded_at;
    const kv = h('dl', { class: 'kv' },
      h('dt', {}, 'Topics'), h('dd', {}, (c.topics || []).join(', ') || '—'),
      h('dt', {}, 'Serving'), h('dd', { title: since || '' },
        since ? `since ${formatDateTime(since)} (${fromNow(since)})` : '—',
        c.became_current_by ? ` · by ${c.became_current_by}` : ''),
      c.origin ? [h('dt', {}, 'From'), h('dd', { title: c.origin }, c.origin.startsWith('/') ? `…/${c.origin.split('/').pop()}` : c.origin)] : null,
      h('dt', {}, 'Digest'), h('dd', { class: 'mono', title: c.digest || '' }, short(c.digest)),
      c.world ? [h('dt', {}, 'World'), h('dd', { class: 'mono' }, c.world)] : null,
      extra.filter(([, v]) => typeof v !== 'number').map(([k, v]) => [h('dt', {}, humanize(k)),
        h('dd', { class: typeof v === 'object' ? 'mono' : '' }, v === null ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v))]));
    const parts = [
      h('div', { class: 'component-head' }, icon('box'), h('h2', { id: `c-${c.name}` }, c.name),
        h('span', { class: 'version' }, `v${c.version}`),
        c.on_probation ? h('span', { class: 'pill warn', title: 'Rolled back by itself if it fails in its first minutes' }, 'on probation') : null),
      stats.length ? h('div', { class: 'stats' }, stats.map(([label, v, bad, detail]) =>
        h('div', { class: `stat${bad ? ' bad' : ''}`, title: detail || null }, h('b', {}, v.toLocaleString()), h('span', {}, label),
          detail ? h('small', {}, detail) : null))) : null,
      kv,
      c.candidate ? candidatePanel(c) : null,
      Array.isArray(c.previous) ? earlier(c) : null,
      Array.isArray(c.journal) && c.journal.length ? journal(c.journal) : null,
    ];
    const actions = keepActions && card.querySelector(':scope > .component-actions');
    card.replaceChildren(...parts.filter(Boolean), actions || componentActions(c));
    const back = card.querySelector('[data-rollback]');
    // Without an earlier version there is nothing to roll back to (an older host does not say).
    if (back) back.disabled = Array.isArray(c.previous) && c.previous.length === 0 && !c.candidate;
  }

  /** The shadow or canary beside the serving version: its counts, its newest differences. */
  function candidatePanel(c) {
    const k = c.candidate;
    const counts = k.shadow || {};
    const title = k.mode === 'canary'
      ? `Canary v${k.version} · ${k.percent}% of the users`
      : `Shadow v${k.version} · every message, nothing applied`;
    const samples = h('div', { class: 'shadow-samples' });
    return h('div', { class: 'earlier candidate' },
      h('h3', { class: 'label-like' }, title),
      h('p', { class: 'muted' }, `since ${formatDateTime(k.since)} (${fromNow(k.since)}) · ${short(k.digest)}`),
      h('div', { class: 'stats' }, [
        ['Same', counts.same, false], ['Different', counts.different, counts.different > 0],
        ['Candidate failed', counts.candidate_failed, counts.candidate_failed > 0], ['Skipped', counts.skipped, counts.skipped > 0],
        k.mode === 'canary' ? ['Canary messages', k.canary?.messages, false] : null,
        k.mode === 'canary' ? ['Canary errors', k.canary?.errors, k.canary?.errors > 0] : null,
      ].filter((s) => s && typeof s[1] === 'number').map(([label, v, bad]) =>
        h('div', { class: `stat${bad ? ' bad' : ''}` }, h('b', {}, v.toLocaleString()), h('span', {}, label)))),
      h('div', { class: 'component-actions' },
        h('button', { class: 'button ghost small', type: 'button', onclick: () => showSamples(c, samples) }, 'Differences…'),
        k.mode === 'shadow' ? h('button', { class: 'button small', type: 'button', onclick: () => step(c, 'canary') }, 'Canary…') : null,
        h('button', { class: 'button small', type: 'button', onclick: () => step(c, 'promote') }, 'Promote'),
        h('button', { class: 'button ghost small', type: 'button', onclick: () => step(c, 'rollback') }, icon('undo'), 'End')),
      samples);
  }

  async function showSamples(c, box) {
    try {
      const report = await api(`/admin/components/${encodeURIComponent(c.name)}/shadow`, { token: adminToken.get() });
      const rows = (report.samples || []).slice(0, 20);
      if (!rows.length) { box.replaceChildren(h('p', { class: 'muted' }, 'No difference so far.')); return; }
      box.replaceChildren(h('ul', { class: 'versions' }, rows.map((s) => h('li', {},
        h('strong', {}, s.outcome.replace(/_/g, ' ')), ` · ${s.event_id} · ${s.topic} · ${fromNow(s.at)}`,
        s.error ? h('div', { class: 'form-error' }, s.error) : null,
        (s.diff || []).map((d) => h('div', { class: 'mono' },
          `${d.path}: ${JSON.stringify(d.serving)} → ${JSON.stringify(d.candidate)}`))))));
    } catch (err) {
      if (!missingRoute(err, `The shadow report (GET /admin/components/${c.name}/shadow)`)) toast(err.message, { error: true });
    }
  }

  /** shadow → canary (asks the share), candidate → serving, or the candidate ended. */
  async function step(c, what) {
    const k = c.candidate;
    let query = '';
    if (what === 'canary') {
      const percent = window.prompt(`Serve v${k.version} of ${c.name} to what percent of the users (1–100)?`, '10');
      if (!percent) return;
      query = `?percent=${encodeURIComponent(percent.trim())}`;
    } else {
      const text = what === 'promote'
        ? [`Promote ${c.name} v${k.version}?`, `It serves everyone from the next message on; v${c.version} is kept for a rollback.`, 'Promote']
        : [`End the ${k.mode} of ${c.name} v${k.version}?`, `Everyone is served by v${c.version} from the next message on.`, 'End it'];
      if (!(await confirmAction(...text))) return;
    }
    try {
      await api(`/admin/components/${encodeURIComponent(c.name)}/${what}${query}`, { token: adminToken.get(), method: 'POST' });
      notice('');
      toast(`${c.name}: ${what === 'canary' ? 'canary started' : what === 'promote' ? `v${k.version} serves everyone` : `${k.mode} ended`}`);
    } catch (err) {
      if (!missingRoute(err, `POST /admin/components/${c.name}/${what}`)) toast(err.message, { error: true });
    }
    refresh();
  }

  function earlier(c) {
    if (!c.previous.length) return h('p', { class: 'hint' }, 'No earlier version kept: upload one to be able to roll back.');
    return h('div', { class: 'earlier' },
      h('h3', { class: 'label-like' }, 'Earlier versions'),
      h('ul', { class: 'versions' }, c.previous.map((v) => h('li', {},
        h('span', { class: 'mono', title: v.digest }, `v${v.version} · ${short(v.digest)}`),
        typeof v.messages_handled === 'number' ? h('span', { class: 'muted' }, ` ${v.messages_handled} handled, ${v.errors ?? 0} errors`) : null,
        h('button', {
          class: 'button ghost small', type: 'button', 'aria-label': `Serve ${c.name} ${v.version} ${short(v.digest)} again`,
          onclick: () => rollback(c, v),
        }, 'Serve again')))));
  }

  function journal(entries) {
    return h('div', { class: 'earlier' },
      h('h3', { class: 'label-like' }, 'Recent changes'),
      h('ul', { class: 'versions' }, entries.slice(-3).reverse().map((j) => h('li', {},
        h('strong', {}, j.action), ` ${short(j.from)} → ${short(j.to)}`,
        h('span', { class: 'muted' }, ` · ${j.origin || ''} · ${j.at ? fromNow(j.at) : ''}`),
        j.reason ? h('div', { class: 'form-error' }, j.reason) : null))));
  }

  function componentActions(c) {
    // One file picker: "New version…" swaps, "Shadow…" starts a shadow (the mode is set by the
    // button that opened it; a file set any other way is a new version).
    const file = h('input', { type: 'file', accept: '.wasm,application/wasm', id: `upload-${c.name}`, 'aria-label': `New version of ${c.name} (.wasm)` });
    file.addEventListener('change', () => {
      const shadowing = file.dataset.mode === 'shadow';
      delete file.dataset.mode;
      if (file.files[0]) (shadowing ? shadow : upload)(c, file.files[0]);
      file.value = '';
    });
    const pick = (mode) => { if (mode) file.dataset.mode = mode; else delete file.dataset.mode; file.click(); };
    return h('div', { class: 'component-actions' },
      file,
      h('button', { class: 'button small', type: 'button', 'aria-label': `Upload a new version of ${c.name}`, onclick: () => pick(null) },
        icon('upload'), 'New version…'),
      h('button', { class: 'button ghost small', type: 'button', 'aria-label': `Shadow a new version of ${c.name}`, onclick: () => pick('shadow') },
        'Shadow…'),
      h('button', { class: 'button ghost small', type: 'button', 'data-rollback': true, onclick: () => rollback(c) }, icon('undo'), 'Roll back'));
  }

  function notice(text) {
    const el = $('#admin-notice');
    el.textContent = text;
    el.hidden = !text;
  }

  /** 404 / 405 / 501 from a route this host may not have yet. */
  function missingRoute(err, what) {
    if (![404, 405, 501].includes(err.status)) return false;
    notice(`${what} is not available on this host yet (it answered ${err.status}${err.message ? `: ${err.message}` : ''}).`);
    return true;
  }

  /** What a swap answer says happened (`{from, to, unchanged}`), for a toast. */
  function swapped(name, result, verb) {
    if (!result || !result.to) return `${name} ${verb}`;
    if (result.unchanged) return `${name}: that is the version already serving; nothing changed`;
    return `${name} ${verb}: now v${result.to.version} (${short(result.to.digest)})`;
  }

  async function upload(c, file) {
    const ok = await confirmAction(`Upload a new ${c.name}?`,
      `${file.name} (${Math.ceil(file.size / 1024)} KiB) replaces v${c.version} (${short(c.digest)}) once it passes validation. Messages keep flowing; the old version is kept for a rollback.`,
      'Upload');
    if (!ok) return;
    try {
      const result = await api(`/admin/components/${encodeURIComponent(c.name)}`,
        { token: adminToken.get(), method: 'PUT', body: file, contentType: 'application/wasm' });
      notice('');
      toast(swapped(c.name, result, 'updated'));
    } catch (err) {
      if (!missingRoute(err, `Uploading a component (PUT /admin/components/${c.name})`)) toast(err.message, { error: true });
    }
    refresh();
  }

  /** A candidate in shadow: run beside the serving version, compared, never applied. */
  async function shadow(c, file) {
    const ok = await confirmAction(`Shadow a new ${c.name}?`,
      `${file.name} runs beside v${c.version} on every message once it passes validation; its effects are compared and never applied.`,
      'Shadow');
    if (!ok) return;
    try {
      await api(`/admin/components/${encodeURIComponent(c.name)}/candidate?mode=shadow`,
        { token: adminToken.get(), method: 'PUT', body: file, contentType: 'application/wasm' });
      notice('');
      toast(`${c.name}: shadow started`);
    } catch (err) {
      if (!missingRoute(err, `Shadowing (PUT /admin/components/${c.name}/candidate)`)) toast(err.message, { error: true });
    }
    refresh();
  }

  /** Back to `to` (an entry of `previous`), or to the newest kept version. */
  async function rollback(c, to) {
    const target = to ? `v${to.version} (${short(to.digest)})` : 'the version that served before it';
    // With a shadow or canary, the route ends that instead.
    const ok = c.candidate && !to
      ? await confirmAction(`End the ${c.candidate.mode} of ${c.name}?`, `v${c.candidate.version} stops; everyone is served by v${c.version}.`, 'End it')
      : await confirmAction(`Roll back ${c.name}?`, `v${c.version} (${short(c.digest)}) is replaced by ${target}, at once.`, 'Roll back');
    if (!ok) return;
    const query = to ? `?to=${encodeURIComponent(to.digest ? to.digest.slice(0, 16) : to.version)}` : '';
    try {
      const result = await api(`/admin/components/${encodeURIComponent(c.name)}/rollback${query}`, { token: adminToken.get(), method: 'POST' });
      notice('');
      toast(swapped(c.name, result, 'rolled back'));
    } catch (err) {
      if (!missingRoute(err, `Rolling back (POST /admin/components/${c.name}/rollback)`)) toast(err.message, { error: true });
    }
    refresh();
  }

  function renderDeadLetters(rows) {
    const box = $('#dead-letters');
    if (rows instanceof Error) { box.replaceChildren(h('p', { class: 'form-error' }, rows.message)); return; }
    if (!rows.length) { box.replaceChildren(h('p', { class: 'muted' }, 'None: every message was handled.')); return; }
    box.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ['When', 'Topic', 'Component', 'Reason'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.slice(0, 50).map((d) => h('tr', {},
        h('td', {}, formatDateTime(d.created_at)), h('td', {}, d.topic), h('td', {}, d.component || '—'), h('td', {}, d.reason)))))));
  }

  $('#admin-signin').addEventListener('submit', (e) => {
    e.preventDefault();
    $('#admin-error').textContent = '';
    adminToken.set($('#admin-token').value.trim());
    $('#admin-token').value = '';
    refresh();
  });
  $('#admin-refresh').addEventListener('click', refresh);
  $('#admin-forget').addEventListener('click', () => { adminToken.clear(); notice(''); refresh(); });

  return {
    enter() { active = true; refresh(); },
    leave() { active = false; clearTimeout(timer); },
  };
}
