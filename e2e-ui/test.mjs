// taskhost's web page in a real browser: Debian's Chromium driven by playwright-core, against
// the real host binary (`serve --dev`, SQLite, a free port). Run it with `e2e-ui/run.sh`
// (`just e2e-ui`), which builds what it needs and sets the environment below.
//
//   TASKHOST_BIN              the taskhost binary
//   TASKHOST_COMPONENTS_DIR   the four .wasm consumers
//   UI_SCREENSHOTS            where screenshots go (target/ui-screenshots)
//   UI_WORK_DIR               scratch: database, host log, browser profile
//   CHROMIUM                  default /usr/bin/chromium
//
// The tests run in order and share one host: each builds on what the previous one left.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { Host, sleep } from './host.mjs';

const env = (name, fallback) => {
  const v = process.env[name] || fallback;
  if (!v) throw new Error(`${name} is not set: run e2e-ui/run.sh`);
  return v;
};
const SHOTS = env('UI_SCREENSHOTS');
const WORK = env('UI_WORK_DIR');
mkdirSync(SHOTS, { recursive: true });

// Fresh names per run, so a rerun on a kept database starts clean.
const run = randomBytes(3).toString('hex');
const ALICE = `alice-${run}`;
const BOB = `bob-${run}`;
const ADMIN_TOKEN = `admin-${randomBytes(16).toString('hex')}`;

const host = new Host({
  bin: env('TASKHOST_BIN'),
  componentsDir: env('TASKHOST_COMPONENTS_DIR'),
  workDir: WORK,
  adminToken: ADMIN_TOKEN,
});
let browser;
/** Pages by name, and what each logged as an error (a CSP violation would show up here). */
const pages = {};
const problems = [];
const timings = {};
const EXPECTED_CONSOLE = /Failed to load resource|WebSocket connection to .* failed|ERR_CONNECTION_REFUSED/;

before(async () => {
  let t0 = Date.now();
  await host.start();
  timings.hostReady = Date.now() - t0;
  t0 = Date.now();
  browser = await chromium.launch({
    executablePath: env('CHROMIUM', '/usr/bin/chromium'),
    // Playwright passes --headless and a fresh profile dir; the rest keep Chromium off the
    // network, which this machine closes (see .library/env/machines/polyglot.md).
    args: ['--lang=en-GB', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  timings.browserLaunched = Date.now() - t0;
});

after(async () => {
  let t0 = Date.now();
  await browser?.close();
  timings.browserClosed = Date.now() - t0;
  t0 = Date.now();
  await host.stop();
  timings.hostStopped = Date.now() - t0;
  console.log(`timings (ms): ${JSON.stringify(timings)}`);
});

afterEach((t) => {
  if (t.passed === false) console.log(`--- host log tail ---\n${host.tail()}`);
});

/** A new browser context (its own storage: a separate "device") with one page. */
async function open(name, { path = '/', timezoneId = 'Europe/Berlin', viewport = { width: 1280, height: 860 }, ...rest } = {}) {
  const context = await browser.newContext({ locale: 'en-GB', timezoneId, viewport, ...rest });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('console', (m) => {
    // Chromium logs every refused request (a 403 the test provokes, the host down during the
    // restart test) as an error; those are expected. Script errors and CSP violations are not.
    if (m.type() === 'error' && !EXPECTED_CONSOLE.test(m.text())) problems.push(`${name}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${name}: ${e.message}`));
  await page.goto(`${host.url}${path}`);
  pages[name] = page;
  return page;
}

async function signInByName(page, user) {
  await page.getByLabel('Your name').fill(user);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { name: 'Tasks', level: 1 }).waitFor();
  await page.locator('#live-status[data-state="live"]').waitFor();
}

const task = (page, title) => page.locator('.task', { has: page.getByRole('heading', { name: title, exact: true }) });
/** A screenshot without the passing toasts (they would hide what the picture is about). */
async function shot(page, name, options = {}) {
  await page.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
  await page.screenshot({ path: join(SHOTS, name), ...options });
}

/** Waits until `fn()` is truthy, polling; fails with `what` after `ms`. */
async function until(what, fn, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

test('the sign-in page offers sign-in by name on a --dev host', async () => {
  const page = await open('alice-1', { timezoneId: 'America/New_York' });
  await page.getByLabel('Your name').waitFor();
  await assert.doesNotReject(page.getByLabel('Access token (JWT)').waitFor());
  // The name field has focus: the page can be used from the keyboard right away.
  assert.equal(await page.evaluate(() => document.activeElement.id), 'dev-user');
  await shot(page, 'signin.png');
  // The page and its assets come from the binary, with types and caching headers.
  const index = await fetch(`${host.url}/`);
  assert.match(index.headers.get('content-type'), /^text\/html/);
  assert.match(index.headers.get('content-security-policy'), /script-src 'self'/);
  const js = await fetch(`${host.url}/ui/app.js`);
  assert.match(js.headers.get('content-type'), /javascript/);
  const again = await fetch(`${host.url}/ui/app.js`, { headers: { 'If-None-Match': js.headers.get('etag') } });
  assert.equal(again.status, 304);
  // A name the dev route refuses, with a message the sign-in form shows.
  await page.getByLabel('Your name').fill('not a name');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  assert.equal(await page.getByLabel('Your name').evaluate((el) => el.validity.valid), false);
  const refused = await fetch(`${host.url}/api/dev/token`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user_id: 'not a name' }),
  });
  assert.equal(refused.status, 422);
  await page.getByLabel('Your name').fill('');
});

test('two tabs of one user: a task created in one appears in the other within a second', async () => {
  const a = pages['alice-1'];
  await signInByName(a, ALICE);
  const b = await open('alice-2', { timezoneId: 'Asia/Tokyo' });
  await signInByName(b, ALICE);

  await a.getByRole('textbox', { name: 'New task' }).fill('Buy oat milk');
  const created = a.waitForResponse((r) => r.url().endsWith('/api/tasks') && r.request().method() === 'POST');
  await a.getByRole('textbox', { name: 'New task' }).press('Enter');
  await created;
  const t0 = Date.now();
  await task(b, 'Buy oat milk').waitFor({ timeout: 1000 });
  timings.otherTabSees = Date.now() - t0;
  await task(a, 'Buy oat milk').waitFor({ timeout: 1000 });
});

test('a change made through the API appears without a reload', async () => {
  const token = await host.token(ALICE);
  const t0 = Date.now();
  await host.api('POST', '/api/tasks', token, { title: 'Renew passport', priority: 'high', tags: ['admin'] });
  await Promise.all(['alice-1', 'alice-2'].map((p) => task(pages[p], 'Renew passport').waitFor({ timeout: 1000 })));
  timings.apiChangeSeen = Date.now() - t0;
});

test('a recurring task: created with the form, edited in the other tab, completed, next instance shown', async () => {
  const a = pages['alice-1'];
  const b = pages['alice-2'];
  // Everything through the form, from the keyboard where it matters.
  await a.getByRole('textbox', { name: 'New task' }).fill('Water the plants');
  await a.getByRole('button', { name: 'Details…' }).click();
  const dialog = a.getByRole('dialog', { name: 'New task' });
  await dialog.waitFor();
  assert.equal(await dialog.getByLabel('Title').inputValue(), 'Water the plants');
  await dialog.getByLabel(/^Due/).fill('2031-01-15T09:00');
  await dialog.getByLabel(/^Tags/).fill('home, garden');
  await dialog.getByLabel('Repeats').check();
  await dialog.getByLabel('Every').fill('1');
  await dialog.getByLabel('Unit').selectOption('daily');
  await dialog.getByLabel('Number of occurrences').fill('5');
  await dialog.getByLabel('Custom').check();
  await dialog.getByLabel('1 hour', { exact: true }).check();
  await dialog.getByLabel('At due time').check();
  await shot(a, 'task-form.png');
  await dialog.getByRole('button', { name: 'Add task' }).click();
  await dialog.waitFor({ state: 'hidden' });

  // Typed as 09:00 in New York (EST, UTC-5): the API holds 14:00 UTC; Tokyo shows 23:00.
  const token = await host.token(ALICE);
  const stored = (await host.api('GET', '/api/tasks', token)).find((t) => t.title === 'Water the plants');
  assert.equal(stored.due_date, '2031-01-15T14:00:00Z');
  assert.equal(stored.recurrence_frequency, 'daily');
  assert.equal(stored.recurrence_max_occurrences, 5);
  assert.deepEqual(stored.tags, ['home', 'garden']);
  assert.deepEqual(stored.reminder_offsets_minutes, [60, 0]);
  await until('Tokyo tab to show 23:00', async () => (await task(b, 'Water the plants').textContent()).includes('23:00'), 2000);
  assert.match(await task(a, 'Water the plants').textContent(), /09:00/);

  // Edit in the other tab: priority up.
  await b.getByRole('button', { name: 'Edit “Water the plants”' }).click();
  const edit = b.getByRole('dialog', { name: 'Edit task' });
  await edit.getByRole('radio', { name: 'High' }).check();
  await edit.getByRole('button', { name: 'Save changes' }).click();
  await edit.waitFor({ state: 'hidden' });
  await until('the first tab to show high priority',
    async () => (await task(a, 'Water the plants').textContent()).includes('High priority'), 1000);

  // Complete it in the first tab: the recurrence component creates #2, due a day later.
  const t0 = Date.now();
  await a.getByRole('checkbox', { name: 'Complete “Water the plants”' }).click();
  for (const p of [a, b]) {
    await task(p, 'Water the plants').filter({ hasText: '#2' }).waitFor({ timeout: 5000 });
  }
  timings.nextInstanceShown = Date.now() - t0;
  const next = (await host.api('GET', '/api/tasks', token)).find((t) => t.title === 'Water the plants' && !t.is_completed);
  assert.equal(next.occurrence, 2);
  assert.equal(next.due_date, '2031-01-16T14:00:00Z');
  assert.match(await task(a, 'Water the plants').textContent(), /Thu 16 Jan 2031|16 Jan 2031/);
});

test('the audit panel lists the operations with their field changes', async () => {
  const a = pages['alice-1'];
  await a.getByRole('radio', { name: 'Completed' }).check();
  await a.getByRole('button', { name: 'History of “Water the plants”' }).click();
  const panel = a.getByRole('dialog', { name: 'History of “Water the plants”' });
  await panel.waitFor();
  const entries = panel.locator('#audit-list > li');
  await until('created, updated and completed entries', async () => (await entries.count()) === 3);
  assert.deepEqual(await panel.locator('.op').allTextContents(), ['created', 'updated', 'completed']);
  const updated = entries.nth(1);
  assert.equal(await updated.locator('th').allTextContents().then((x) => x.join()), 'Priority');
  assert.match(await updated.locator('td').textContent(), /medium\s*→\s*high/);
  assert.match(await entries.nth(2).textContent(), /Completed\s*no\s*→\s*yes/);
  assert.match(await entries.nth(0).textContent(), /Every day, 5 times/);
  await shot(a, 'audit.png');
  await a.keyboard.press('Escape');
  await panel.waitFor({ state: 'hidden' });
  await a.getByRole('radio', { name: 'Active' }).check();
});

test('a second user sees none of it', async () => {
  const c = await open('bob', { timezoneId: 'Europe/London' });
  await signInByName(c, BOB);
  await c.getByText('Nothing to do').waitFor();
  // Alice keeps working; nothing reaches Bob's page.
  const aliceToken = await host.token(ALICE);
  const secret = await host.api('POST', '/api/tasks', aliceToken, { title: 'Alice’s secret plan' });
  await task(pages['alice-1'], 'Alice’s secret plan').waitFor({ timeout: 1000 });
  await sleep(1000);
  assert.equal(await c.locator('.task').count(), 0);
  await c.getByRole('radio', { name: 'All' }).check();
  assert.equal(await c.locator('.task').count(), 0);
  // Asked directly, with Bob's token, the host does not know Alice's task.
  const status = await c.evaluate(async (id) => {
    const token = localStorage.getItem('taskhost.token');
    const r = await fetch(`/api/audit-logs/${id}`, { headers: { Authorization: `Bearer ${token}` } });
    return r.status;
  }, secret.id);
  assert.equal(status, 404);
  await shot(c, 'second-user.png');
});

test('a reminder lands in the notifications inbox', async () => {
  const a = pages['alice-1'];
  const token = await host.token(ALICE);
  const due = new Date(Date.now() + 4000).toISOString();
  await host.api('POST', '/api/tasks', token, { title: 'Call the dentist', due_date: due, reminder_offsets_minutes: [0] });
  const t0 = Date.now();
  // The inbox is polled every 10 s: the reminder shows within about 15 s of being due.
  await a.locator('#inbox-badge:not([hidden])').waitFor({ timeout: 25_000 });
  timings.reminderInInbox = Date.now() - t0;
  await a.getByRole('button', { name: /Notifications, 1 unread/ }).click();
  const inbox = a.getByRole('dialog', { name: 'Notifications' });
  await inbox.getByText('Reminder: Call the dentist').waitFor();
  await shot(a, 'inbox.png');
  await a.keyboard.press('Escape');
  await a.locator('#inbox-badge').waitFor({ state: 'hidden' });
});

test('the live socket reconnects by itself after the host restarts', async () => {
  const a = pages['alice-1'];
  await host.stop();
  await a.locator('#live-status[data-state="offline"]').waitFor({ timeout: 5000 });
  await shot(a, 'reconnecting.png', { clip: { x: 0, y: 0, width: 1280, height: 120 } });
  const t0 = Date.now();
  await host.start();
  await a.locator('#live-status[data-state="live"]').waitFor({ timeout: 30_000 });
  timings.reconnectAfterRestart = Date.now() - t0;
  const token = await host.token(ALICE);
  await host.api('POST', '/api/tasks', token, { title: 'After the restart', tags: ['live'] });
  for (const p of ['alice-1', 'alice-2']) await task(pages[p], 'After the restart').waitFor({ timeout: 2000 });
});

test('keyboard only: add with "n" and Enter, complete with Space, delete with a confirmation', async () => {
  const a = pages['alice-1'];
  await a.locator('body').click({ position: { x: 5, y: 400 } });
  await a.keyboard.press('n');
  assert.equal(await a.evaluate(() => document.activeElement.id), 'quick-title');
  await a.keyboard.type('Take out the bins');
  await a.keyboard.press('Enter');
  const item = task(a, 'Take out the bins');
  await item.waitFor();
  await item.getByRole('checkbox').focus();
  await a.keyboard.press('Space');
  await item.waitFor({ state: 'detached' });
  await a.getByRole('radio', { name: 'Completed' }).check();
  await task(a, 'Take out the bins').getByRole('button', { name: /^Delete/ }).focus();
  await a.keyboard.press('Enter');
  const confirm = a.getByRole('dialog', { name: 'Delete this task?' });
  await confirm.waitFor();
  await confirm.getByRole('button', { name: 'Delete' }).focus();
  await a.keyboard.press('Enter');
  await task(a, 'Take out the bins').waitFor({ state: 'detached' });
  await task(pages['alice-2'], 'Take out the bins').waitFor({ state: 'detached', timeout: 1000 });
  await a.getByRole('radio', { name: 'Active' }).check();
  // Every visible form control has a name a screen reader can read.
  const unnamed = await a.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((el) => el.offsetParent !== null)
    .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
      || (el.tagName === 'BUTTON' && el.textContent.trim())))
    .map((el) => el.outerHTML.slice(0, 80)));
  assert.deepEqual(unnamed, []);
});

test('desktop and phone screenshots of the task list', async () => {
  const token = await host.token(ALICE);
  const inDays = (d, h) => { const t = new Date(); t.setUTCDate(t.getUTCDate() + d); t.setUTCHours(h, 0, 0, 0); return t.toISOString(); };
  await host.api('POST', '/api/tasks', token, {
    title: 'Pay rent', due_date: inDays(9, 8), is_recurring: true, recurrence_frequency: 'monthly', tags: ['bills'],
    priority: 'high', description: 'Standing order is off this month, pay by hand.',
  });
  await host.api('POST', '/api/tasks', token, {
    title: 'Team retro notes', due_date: inDays(0, 23), tags: ['work'], reminder_offsets_minutes: [30],
  });
  await host.api('POST', '/api/tasks', token, {
    title: 'Book train to Lyon', due_date: inDays(-1, 12), priority: 'low', tags: ['travel'],
  });
  const a = pages['alice-1'];
  await task(a, 'Book train to Lyon').waitFor({ timeout: 1000 });
  await sleep(1700); // let the live-update highlight fade
  await shot(a, 'tasks-desktop.png');

  const phone = await open('phone', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  await signInByName(phone, ALICE);
  await task(phone, 'Pay rent').waitFor();
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone screen`);
  await shot(phone, 'tasks-phone.png');
  await phone.getByRole('button', { name: 'Edit “Pay rent”' }).click();
  await phone.getByRole('dialog', { name: 'Edit task' }).waitFor();
  await shot(phone, 'task-form-phone.png');

  const dark = await open('dark', { colorScheme: 'dark', timezoneId: 'America/New_York' });
  await signInByName(dark, ALICE);
  await task(dark, 'Pay rent').waitFor();
  await shot(dark, 'tasks-dark.png');
});

test('the admin page lists the components and handles upload and rollback', async () => {
  const page = await open('admin', { path: '/#/admin', viewport: { width: 1280, height: 1280 } });
  await page.getByLabel('Admin token').fill('not-the-token-at-all');
  await page.getByRole('button', { name: 'Open' }).click();
  await page.getByText('That is not this host’s admin token.').waitFor();
  await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Open' }).click();
  for (const name of ['recurrence', 'notification', 'audit', 'sync']) {
    await page.getByRole('heading', { name, exact: true, level: 2 }).waitFor();
  }
  // Upload a new sync (the built one plus a custom section: another digest, the same code),
  // then roll back. A host without these routes must get a clear notice, not a broken page.
  const listed = await (await fetch(`${host.url}/admin/components`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
  const original = listed.find((c) => c.name === 'sync').digest;
  const hostSwaps = Array.isArray(listed[0].previous);
  const card = page.locator('.component[data-name="sync"]');
  const file = join(WORK, 'sync-next.wasm');
  writeFileSync(file, withCustomSection(readFileSync(join(env('TASKHOST_COMPONENTS_DIR'), 'sync.wasm')), 'taskhost-e2e-ui', run));
  await card.locator('input[type="file"]').setInputFiles(file);
  await page.getByRole('dialog', { name: 'Upload a new sync?' }).getByRole('button', { name: 'Upload' }).click();
  if (!hostSwaps) {
    await page.locator('#admin-notice', { hasText: 'not available on this host yet' }).waitFor();
    console.log(`upload → ${await page.locator('#admin-notice').textContent()}`);
    await shot(page, 'admin.png');
    return;
  }
  await page.locator('.toast', { hasText: 'sync updated: now v' }).waitFor();
  await until('the new digest on the sync card', async () => !(await card.textContent()).includes(original.slice(0, 12))
    || (await card.locator('.earlier li').count()) > 0);
  await card.getByText('Earlier versions').waitFor();
  // The swapped-in sync still carries live updates to the task pages.
  await host.api('POST', '/api/tasks', await host.token(ALICE), { title: 'Sent through the new sync' });
  await task(pages['alice-2'], 'Sent through the new sync').waitFor({ timeout: 2000 });

  await card.getByRole('button', { name: 'Roll back', exact: true }).click();
  await page.getByRole('dialog', { name: 'Roll back sync?' }).getByRole('button', { name: 'Roll back' }).click();
  await page.locator('.toast', { hasText: 'sync rolled back' }).waitFor();
  await until('the original digest back', async () => {
    const now = await (await fetch(`${host.url}/admin/components`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
    return now.find((c) => c.name === 'sync').digest === original;
  });
  await card.getByText('Recent changes').waitFor();
  await sleep(300);
  await shot(page, 'admin.png');

  // Shadow the same build through the page: every message compared, nothing applied; then end it.
  const chooser = page.waitForEvent('filechooser');
  await card.getByRole('button', { name: 'Shadow a new version of sync' }).click();
  await (await chooser).setFiles(file);
  await page.getByRole('dialog', { name: 'Shadow a new sync?' }).getByRole('button', { name: 'Shadow' }).click();
  await page.locator('.toast', { hasText: 'sync: shadow started' }).waitFor();
  await host.api('POST', '/api/tasks', await host.token(ALICE), { title: 'Seen by the shadow' });
  await until('the shadow counted the message', async () => {
    const report = await (await fetch(`${host.url}/admin/components/sync/shadow`, { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
    return report.counts && report.counts.same + report.counts.different > 0;
  });
  await page.getByRole('button', { name: 'Refresh' }).click().catch(() => {});
  await card.getByText('Shadow v').waitFor();
  await card.getByRole('button', { name: 'Differences…' }).click();
  await card.locator('.shadow-samples').getByText(/No difference so far|different/).waitFor();
  await shot(page, 'admin-shadow.png');
  await card.getByRole('button', { name: 'End', exact: true }).click();
  await page.getByRole('dialog', { name: /End the shadow of sync/ }).getByRole('button', { name: 'End it' }).click();
  await page.locator('.toast', { hasText: 'sync: shadow ended' }).waitFor();
});

/** `bytes` (a component) with a custom section appended: valid, and a different digest. */
function withCustomSection(bytes, name, payload) {
  const leb = (n) => { const out = []; do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n); return out; };
  const nameBytes = Buffer.from(name);
  const body = Buffer.concat([Buffer.from(leb(nameBytes.length)), nameBytes, Buffer.from(payload)]);
  return Buffer.concat([bytes, Buffer.from([0, ...leb(body.length)]), body]);
}

test('without --dev there is no sign-in by name: the dev routes answer 404', async () => {
  const dir = join(WORK, 'production');
  mkdirSync(dir, { recursive: true });
  const prod = new Host({ bin: env('TASKHOST_BIN'), componentsDir: env('TASKHOST_COMPONENTS_DIR'), workDir: dir, adminToken: ADMIN_TOKEN, production: true });
  await prod.start();
  try {
    assert.equal((await fetch(`${prod.url}/api/dev`)).status, 404);
    const minted = await fetch(`${prod.url}/api/dev/token`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user_id: 'mallory' }),
    });
    assert.equal(minted.status, 404);
    const context = await browser.newContext({ locale: 'en-GB' });
    const page = await context.newPage();
    await page.goto(prod.url);
    await page.getByLabel('Access token (JWT)').waitFor();
    assert.equal(await page.getByLabel('Your name').isVisible(), false);
    // A token of the development secret is refused by this host.
    await page.getByLabel('Access token (JWT)').fill(await host.token(ALICE));
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByText(/invalid token/).waitFor();
    await shot(page, 'signin-production.png');
    await context.close();
  } finally {
    await prod.stop();
  }
});

test('no page logged an error', () => {
  assert.deepEqual(problems, []);
});
