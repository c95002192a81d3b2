// The real taskhost binary, started for the browser tests: `serve --dev` on a SQLite file,
// listening on a free port (then, after a restart, on the same one), with an admin token.
// Its stderr goes to a log file whose tail is printed when a test fails.

import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

const STARTUP_MS = 180_000;

export class Host {
  /** `production: true` runs it as production would: a real JWT secret, no --dev. */
  constructor({ bin, componentsDir, workDir, adminToken, production = false }) {
    this.production = production;
    this.bin = bin;
    this.componentsDir = componentsDir;
    this.workDir = workDir;
    this.adminToken = adminToken;
    this.databaseUrl = `sqlite://${join(workDir, 'taskhost.db')}?mode=rwc`;
    this.logPath = join(workDir, 'taskhost.log');
    this.pidPath = join(workDir, 'taskhost.pid');
    this.listen = '127.0.0.1:0';
    this.child = null;
    this.url = null;
  }

  /** Starts the binary and resolves once it listens and `/readyz` answers 200. */
  async start() {
    const log = createWriteStream(this.logPath, { flags: 'a' });
    // --dev signs with the development secret only when no real one is configured.
    const env = { ...process.env };
    delete env.TASKHOST_JWT_SECRET;
    delete env.TASKHOST_DEV;
    if (this.production) env.TASKHOST_JWT_SECRET = 'e2e-ui-production-secret-at-least-32-bytes';
    const child = spawn(this.bin, [
      'serve', ...(this.production ? [] : ['--dev']),
      '--listen', this.listen,
      '--database-url', this.databaseUrl,
      '--components-dir', this.componentsDir,
    ], {
      env: {
        ...env,
        TASKHOST_ADMIN_TOKEN: this.adminToken,
        TASKHOST_LOG: process.env.TASKHOST_LOG || 'info,taskhost=debug',
        NO_COLOR: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    // run.sh stops it by this id should this process die without stopping it.
    writeFileSync(this.pidPath, String(child.pid));
    child.stderr.pipe(log);
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.exited = exited;

    const lines = createInterface({ input: child.stdout });
    const first = await Promise.race([
      new Promise((resolve) => lines.once('line', resolve)),
      exited.then((s) => { throw new Error(`taskhost exited before listening (${JSON.stringify(s)}):\n${this.tail()}`); }),
      guard(STARTUP_MS).then(() => { throw new Error(`taskhost printed no listening line within ${STARTUP_MS} ms`); }),
    ]);
    const match = /^taskhost listening on (http:\/\/\S+)$/.exec(first);
    if (!match) throw new Error(`unexpected first line from taskhost: ${first}`);
    this.url = match[1].replace(/\/$/, '');
    // A restart must come back on the same address: the pages reconnect to it.
    this.listen = new URL(this.url).host;
    lines.on('line', () => {});

    const deadline = Date.now() + STARTUP_MS;
    for (;;) {
      const ready = await fetch(`${this.url}/readyz`).then((r) => r.status === 200, () => false);
      if (ready) return this;
      if (Date.now() > deadline) throw new Error(`taskhost never became ready:\n${this.tail()}`);
      await sleep(100);
    }
  }

  /** SIGTERM, then wait for the process to exit. */
  async stop() {
    if (!this.child) return;
    const child = this.child;
    this.child = null;
    child.kill('SIGTERM');
    const done = await Promise.race([this.exited, guard(15_000).then(() => null)]);
    if (!done) child.kill('SIGKILL');
    await this.exited;
    rmSync(this.pidPath, { force: true });
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  /** A development token for `user`, the way the page gets one. */
  async token(user) {
    const r = await this.api('POST', '/api/dev/token', null, { user_id: user });
    return r.token;
  }

  /** Calls the API as a client other than the browser would. */
  async api(method, path, token, body) {
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(`${this.url}${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} → ${response.status}: ${text}`);
    return text ? JSON.parse(text) : null;
  }

  tail(lines = 40) {
    try {
      return readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves after `ms` without keeping the process alive: a guard raced against the real work. */
const guard = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());
