#!/usr/bin/env python3
"""Records the task events a real host publishes, for the polyglot comparison
(host/tests/polyglot_audit.rs): starts `taskhost serve --dev` on a throwaway SQLite database with
the four components, drives the Task API through creations, updates of every field, completions
(recurring ones make the recurrence component create the next occurrence), deletions and awkward
text, then writes every `task-events` message of the outbox, in order, one JSON per line — followed by
the camelCase events of the existing Python producer that host/fuzz keeps as seeds
(`camel_*.json`), which the host decodes too.

    python3 components/audit/tests/recorded/record.py <taskhost binary> <components dir>

Rewrites task-events.jsonl next to this file. Standard library only.
"""

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(binary: str, components: str) -> None:
    with tempfile.TemporaryDirectory(prefix="taskhost-record-") as tmp:
        db = Path(tmp) / "record.db"
        host = subprocess.Popen(
            [binary, "serve", "--dev", "--listen", "127.0.0.1:0", "--components-dir", components,
             "--database-url", f"sqlite://{db}?mode=rwc", "--no-cache"],
            stdout=subprocess.PIPE, stderr=open(Path(tmp) / "host.log", "w"), text=True,
            env={**os.environ, "TASKHOST_WATCH_COMPONENTS": "false"},
        )
        try:
            line = host.stdout.readline()
            base = line.strip().removeprefix("taskhost listening on ")
            wait_ready(base)
            drive(base, token(binary, "alice"), token(binary, "bob"))
            time.sleep(2)  # the relay delivers, the recurrence component publishes its creations
            events = outbox(db) + producer_events()
        finally:
            host.terminate()
            host.wait(timeout=30)
    out = HERE / "task-events.jsonl"
    out.write_text("".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events))
    print(f"wrote {len(events)} events to {out}")


def token(binary: str, user: str) -> str:
    return subprocess.run([binary, "token", user, "--dev"], check=True, capture_output=True,
                          text=True).stdout.strip()


def wait_ready(base: str) -> None:
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{base}/readyz") as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("the host never became ready")


def call(base: str, tok: str, method: str, path: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", data=data, method=method, headers={
        "Authorization": f"Bearer {tok}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as r:
        text = r.read()
        return json.loads(text) if text else None


def drive(base: str, alice: str, bob: str) -> None:
    post = lambda tok, body: call(base, tok, "POST", "/api/tasks", body)
    patch = lambda tok, tid, body: call(base, tok, "PATCH", f"/api/tasks/{tid}", body)
    complete = lambda tok, tid: call(base, tok, "POST", f"/api/tasks/{tid}/complete")
    delete = lambda tok, tid: call(base, tok, "DELETE", f"/api/tasks/{tid}")

    minimal = post(alice, {"title": "Pay rent"})
    full = post(alice, {
        "title": 'Say "hi" to C:\\Users\nthen\ttab \u0001 — café ✓ 😀',
        "description": "flat 4\r\nsecond line \u001f end",
        "priority": "high", "due_date": "2026-01-31T09:00:00.250Z",
        "tags": ["home", 'a"b', "\\", "ünï"], "reminder_offsets_minutes": [1440, 60, 5],
        "is_recurring": True, "recurrence_frequency": "monthly", "recurrence_interval": 1,
        "recurrence_ends_on": "2026-12-31T00:00:00Z", "recurrence_max_occurrences": 12,
    })
    patch(alice, minimal["id"], {"title": "Pay the rent", "priority": "low"})
    patch(alice, minimal["id"], {"description": "before the 5th", "tags": ["money"]})
    patch(alice, minimal["id"], {"description": None, "tags": []})
    patch(alice, minimal["id"], {"due_date": "2026-02-05T18:30:00Z", "reminder_offsets_minutes": []})
    patch(alice, minimal["id"], {"is_recurring": True, "recurrence_frequency": "weekly",
                                 "recurrence_interval": 2})
    patch(alice, minimal["id"], {"title": "Pay the rent"})  # changes no tracked field
    complete(alice, full["id"])  # monthly: the next occurrence is created (Jan 31 → Feb 28)
    complete(alice, minimal["id"])  # weekly, every 2
    daily = post(bob, {"title": "Water plants", "priority": "low", "due_date": "2026-03-01T07:00:00Z",
                       "is_recurring": True, "recurrence_frequency": "daily",
                       "recurrence_max_occurrences": 2})
    complete(bob, daily["id"])
    undated = post(bob, {"title": "Someday", "is_recurring": True, "recurrence_frequency": "daily"})
    complete(bob, undated["id"])
    far = post(bob, {"title": "Far future", "due_date": "2999-12-31T23:59:59.999Z",
                     "reminder_offsets_minutes": [0]})
    old = post(bob, {"title": "Long ago", "due_date": "1969-07-20T20:17:40Z"})
    plain = post(bob, {"title": "One-off"})
    complete(bob, plain["id"])
    delete(bob, plain["id"])
    delete(bob, far["id"])
    delete(alice, full["id"])
    patch(bob, old["id"], {"title": "Long, long ago", "due_date": None})


def producer_events() -> list:
    seeds = HERE.parents[3] / "host/fuzz/seeds/decode_event"
    return [json.loads(p.read_text()) for p in sorted(seeds.glob("camel_*.json"))]


def outbox(db: Path) -> list:
    rows = sqlite3.connect(db).execute(
        "SELECT payload FROM outbox WHERE topic = 'task-events' ORDER BY id").fetchall()
    return [json.loads(payload) for (payload,) in rows]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
