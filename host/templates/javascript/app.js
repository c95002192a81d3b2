// {{name}}: a taskhost consumer.
//
// `describe` tells the host who this is and which topics it reads; `handle` gets one message
// and returns the effects the host should carry out (in one transaction, at most once per
// event). It does no I/O and reads no clock: the same message always gives the same effects.
// Its only output besides effects is stderr (console.error), which the host logs.
//
// Values are those of the WIT in wit/, as componentize-js maps them: records are objects with
// camelCase fields, variants `{ tag, val }`, enums strings, `option` a value or undefined,
// timestamps (s64) BigInts. A thrown `{ tag: "drop" | "retry", val: reason }` is the `failure`.

const NAME = "{{name}}";
// What describe() reports: bump it for every version you push, so that the host's records
// (and `taskhost components list`) tell the versions apart.
const VERSION = "0.1.0";
const TOPICS = [{{topics}}];

export const handler = {
  describe() {
    return { name: NAME, version: VERSION, topics: TOPICS };
  },

  handle(topic, message, now) {
    if (message.tag === "task-event" && message.val.operation === "created") {
      return [note(message.val)];
    }
    // Messages this consumer does not care about: nothing to do.
    return [];
  },
};

/** The example: a note in the owner's inbox for each new task. Replace it with yours. */
function note(event) {
  if (event.task.title.trim() === "") {
    // Malformed data: `drop` dead-letters the message with this reason (`retry` would have
    // it delivered again later).
    throw { tag: "drop", val: `task ${event.task.id} has no title` };
  }
  console.error(`${NAME} ${VERSION}: noting task ${event.task.id}`);
  return {
    tag: "notify",
    val: {
      // The host stores one notification per key: a redelivered event adds nothing.
      idempotencyKey: `${NAME}:${event.eventId}`,
      userId: event.userId,
      taskId: event.task.id,
      title: `New task: ${event.task.title}`,
      body: `noted by ${NAME} ${VERSION}`,
      createdAt: event.occurredAt,
    },
  };
}

export { NAME, VERSION };
