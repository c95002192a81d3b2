//! How a socket push committed by one instance reaches the sockets of every instance.
//!
//! A component's `broadcast` effect is applied in the transaction of the message that caused
//! it, like every effect, but a socket is not transactional and may be held by any replica. So
//! the push is *recorded* in the transaction and each instance pushes to the sockets it holds
//! when the record reaches it — exactly once per socket, because each instance receives each
//! push exactly once and pushes only to its own sockets:
//!
//! | mode | recorded as | reaches every instance through |
//! |---|---|---|
//! | [`Local`](SocketFanout::Local) (SQLite, or one instance) | nothing: pushed after the commit | — (one instance) |
//! | [`Postgres`](SocketFanout::Postgres) (embedded, several instances on one PostgreSQL) | a `socket_pushes` row + `NOTIFY` (sent by PostgreSQL at commit) | `LISTEN` on a connection of each instance ([`super::listener`]) |
//! | [`Dapr`](SocketFanout::Dapr) (several replicas behind Dapr) | an outbox row on `task-updates` | the relay publishes it; `pubsub-kafka-sockets` (a consumer group per sidecar) delivers it to every replica's `/dapr/sockets/task-updates` |
//!
//! The exactly-once record of the message (component, event id) stays shared: only one
//! instance handles a task event, and its one push fans out.

use crate::domain::UserId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which way pushes travel; chosen at start from the database and the delivery mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SocketFanout {
    /// Push to this instance's sockets right after the commit.
    #[default]
    Local,
    /// `NOTIFY` every instance listening on the same PostgreSQL database.
    Postgres,
    /// Publish through the outbox to `task-updates`, delivered to every replica by Dapr.
    Dapr,
}

/// The `type` that marks a socket push among the messages of `task-updates` (which also
/// carries task events published by other systems for clients).
pub const PUSH_TYPE: &str = "taskhost.socket-push";

/// One push on the wire: who it is for, and the frame their sockets receive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Push {
    #[serde(rename = "type")]
    pub kind: String,
    pub user_id: UserId,
    /// The frame exactly as sockets receive it ([`super::encode`]).
    pub frame: Value,
}

impl Push {
    pub fn new(user_id: UserId, frame: &str) -> Self {
        Self {
            kind: PUSH_TYPE.to_string(),
            user_id,
            frame: serde_json::from_str(frame).expect("frames are JSON"),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a push serializes")
    }

    /// The frame's text, as sent to sockets.
    pub fn frame_text(&self) -> String {
        self.frame.to_string()
    }

    /// Reads a push from a message payload: `Ok(None)` when the payload is something else (a
    /// task event on `task-updates`), `Err` when it says it is a push but is not a valid one.
    pub fn parse(payload: &[u8]) -> Result<Option<Push>, String> {
        #[derive(Deserialize)]
        struct Kind {
            #[serde(rename = "type")]
            kind: Option<String>,
        }
        let Ok(Kind { kind: Some(kind) }) = serde_json::from_slice::<Kind>(payload) else {
            return Ok(None);
        };
        if kind != PUSH_TYPE {
            return Ok(None);
        }
        let push: Push = serde_json::from_slice(payload)
            .map_err(|e| format!("invalid {PUSH_TYPE} message: {e}"))?;
        if push.user_id.as_str().trim().is_empty() {
            return Err(format!("invalid {PUSH_TYPE} message: empty user_id"));
        }
        if !push.frame.is_object() {
            return Err(format!(
                "invalid {PUSH_TYPE} message: `frame` must be a JSON object"
            ));
        }
        Ok(Some(push))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_round_trips_and_other_payloads_are_not_pushes() {
        let push = Push::new(
            UserId::new("u1").unwrap(),
            r#"{"type":"task.created","task_id":"t1"}"#,
        );
        let parsed = Push::parse(push.to_json().as_bytes()).unwrap().unwrap();
        assert_eq!(parsed, push);
        assert_eq!(
            parsed.frame_text(),
            r#"{"task_id":"t1","type":"task.created"}"#
        );
        // A task event (no `type`, or another one) is not a push.
        assert_eq!(
            Push::parse(br#"{"event_id":"e1","operation":"created"}"#),
            Ok(None)
        );
        assert_eq!(Push::parse(br#"{"type":"task.created"}"#), Ok(None));
        assert_eq!(Push::parse(b"not json"), Ok(None));
        // A push that is broken says why.
        let err = Push::parse(br#"{"type":"taskhost.socket-push","user_id":"u1"}"#).unwrap_err();
        assert!(err.contains("frame"), "{err}");
        let err = Push::parse(br#"{"type":"taskhost.socket-push","user_id":" ","frame":{}}"#)
            .unwrap_err();
        assert!(err.contains("user_id"), "{err}");
    }
}
