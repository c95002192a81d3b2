// Tests of the handler in plain Node.js: `node --test`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { handler, NAME, VERSION } from "./app.js";

function created(title) {
  const task = {
    id: "t1", title, isCompleted: false, priority: "high", tags: [], occurrence: 1,
    createdAt: 1769850000000n, updatedAt: 1769850000000n,
  };
  return {
    tag: "task-event",
    val: { eventId: "evt-1", operation: "created", occurredAt: 1769850000000n, userId: "alice", task },
  };
}

test("a new task gets a note", () => {
  const effects = handler.handle("task-events", created("Pay rent"), 0n);
  assert.equal(effects.length, 1);
  assert.equal(effects[0].tag, "notify");
  assert.equal(effects[0].val.idempotencyKey, `${NAME}:evt-1`);
  assert.equal(effects[0].val.userId, "alice");
  assert.equal(effects[0].val.title, "New task: Pay rent");
});

test("a task without a title is dropped", () => {
  assert.throws(() => handler.handle("task-events", created(" "), 0n), { tag: "drop" });
});

test("it describes itself", () => {
  const manifest = handler.describe();
  assert.deepEqual([manifest.name, manifest.version], [NAME, VERSION]);
});
