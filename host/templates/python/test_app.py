"""Tests of the handler in plain CPython: `python3 -m unittest` (after `taskhost build`, which
generates the WIT bindings into bindings/)."""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "bindings"))
try:
    from componentize_py_types import Err
    from wit_world.imports.types import (
        Effect_Notify,
        Failure_Drop,
        Message_TaskEvent,
        Priority,
        Task,
        TaskEvent,
        TaskOperation,
    )
except ImportError as e:
    sys.exit(f"{e}: run `taskhost build` first (it generates the WIT bindings into bindings/)")

import app


def created(title: str) -> Message_TaskEvent:
    task = Task(
        id="t1", title=title, description=None, is_completed=False, priority=Priority.HIGH,
        due_date=None, recurrence=None, tags=[], reminder_offsets=None, occurrence=1,
        series_id=None, created_at=1769850000000, updated_at=1769850000000, completed_at=None,
    )
    return Message_TaskEvent(TaskEvent(
        event_id="evt-1", operation=TaskOperation.CREATED, occurred_at=1769850000000,
        user_id="alice", task=task, previous=None,
    ))


class HandlerTest(unittest.TestCase):
    def test_a_new_task_gets_a_note(self):
        effects = app.Handler().handle("task-events", created("Pay rent"), 0)
        self.assertEqual(len(effects), 1)
        self.assertIsInstance(effects[0], Effect_Notify)
        note = effects[0].value
        self.assertEqual(note.idempotency_key, f"{app.NAME}:evt-1")
        self.assertEqual(note.user_id, "alice")
        self.assertEqual(note.title, "New task: Pay rent")

    def test_a_task_without_a_title_is_dropped(self):
        with self.assertRaises(Err) as failed:
            app.Handler().handle("task-events", created(" "), 0)
        self.assertIsInstance(failed.exception.value, Failure_Drop)

    def test_it_describes_itself(self):
        manifest = app.Handler().describe()
        self.assertEqual((manifest.name, manifest.version), (app.NAME, app.VERSION))


if __name__ == "__main__":
    unittest.main()
