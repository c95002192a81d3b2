"""{{name}}: a taskhost consumer.

`describe` tells the host who this is and which topics it reads; `handle` gets one message and
returns the effects the host should carry out (in one transaction, at most once per event). It
does no I/O and reads no clock: the same message always gives the same effects. Its only output
besides effects is stderr, which the host logs.

The types come from the WIT in wit/ (`taskhost build` generates them into bindings/).
"""

import sys

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import (
    Effect,
    Effect_Notify,
    Failure_Drop,
    Manifest,
    Message,
    Message_TaskEvent,
    Notification,
    TaskEvent,
    TaskOperation,
)

NAME = "{{name}}"
# What describe() reports: bump it for every version you push, so that the host's records
# (and `taskhost components list`) tell the versions apart.
VERSION = "0.1.0"
TOPICS = [{{topics}}]


class Handler(exports.Handler):
    def describe(self) -> Manifest:
        return Manifest(name=NAME, version=VERSION, topics=TOPICS)

    def handle(self, topic: str, message: Message, now: int) -> list[Effect]:
        if isinstance(message, Message_TaskEvent) and message.value.operation == TaskOperation.CREATED:
            return [note(message.value)]
        # Messages this consumer does not care about: nothing to do.
        return []


def note(event: TaskEvent) -> Effect:
    """The example: a note in the owner's inbox for each new task. Replace it with yours."""
    if not event.task.title.strip():
        # Malformed data: a `drop` failure dead-letters the message with this reason
        # (Failure_Retry would have it delivered again later).
        raise Err(Failure_Drop(f"task {event.task.id} has no title"))
    print(f"{NAME} {VERSION}: noting task {event.task.id}", file=sys.stderr)
    return Effect_Notify(
        Notification(
            # The host stores one notification per key: a redelivered event adds nothing.
            idempotency_key=f"{NAME}:{event.event_id}",
            user_id=event.user_id,
            task_id=event.task.id,
            title=f"New task: {event.task.title}",
            body=f"noted by {NAME} {VERSION}",
            created_at=event.occurred_at,
        )
    )
