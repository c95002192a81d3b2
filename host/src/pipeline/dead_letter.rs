//! Where a message is dead-lettered: the only code that writes a dead letter.
//!
//! It owns what a dead letter says and when there is one:
//! - [`DeadLetters::settle`]: after the pipeline handled a message, what failed for good is
//!   recorded — every component that dropped it, and on the transport's last attempt every
//!   component that still fails ("gave up after N attempts: …"), or the whole message when it
//!   did not decode — and the transport's answer follows from that.
//! - [`DeadLetters::undelivered`]: a message that never reached a component — a delivery the
//!   host cannot read, an outbox row the sidecar would not take before the attempts ran out.
//! - [`DeadLetters::forwarded`]: through Dapr, a dropped message also arrives on its
//!   dead-letter topic ([`dlq_topic`]); that notes the arrival on the row already there.
//!
//! One row per message and component (a missing component counts as one): the message is
//! named by its key ([`message_key`]: its event id, else the transport's id, else a digest of
//! its bytes), and a second failure of the same pair adds nothing
//! (`storage::dead_letters::insert`).

use super::answer::Answer;
use super::verdict::Handled;
use super::{Attempt, Received};
use crate::storage::{Db, StorageError, dead_letters};
use crate::wire;

/// The dead-letter topic of `topic` (Dapr's subscriptions name it; daprd forwards a `DROP`
/// there).
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}-dlq")
}

/// The topic a dead-letter topic belongs to (`task-events-dlq` → `task-events`); a topic that
/// is not one is its own.
pub fn origin_topic(topic: &str) -> &str {
    topic.strip_suffix("-dlq").unwrap_or(topic)
}

/// What names a message in the dead letters (the `event_id` column), the same however often it
/// arrives: its event id when it decodes, else the event id its payload carries, else the
/// transport's id for it (a CloudEvent id), else a digest of its bytes.
pub fn message_key(event_id: Option<&str>, transport_id: Option<&str>, payload: &[u8]) -> String {
    event_id
        .map(str::to_string)
        .or_else(|| wire::peek_event_id(payload))
        .or_else(|| transport_id.map(str::to_string))
        .unwrap_or_else(|| {
            use sha2::{Digest, Sha256};
            format!("sha256:{}", hex::encode(Sha256::digest(payload)))
        })
}

/// The dead-letter writer. Cheap to clone.
#[derive(Clone)]
pub struct DeadLetters {
    db: Db,
}

/// One row to write.
struct Row<'a> {
    component: Option<&'a str>,
    reason: String,
}

impl DeadLetters {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Records what of `handled` failed for good on this `attempt`, and says what the
    /// transport answers: the pipeline's [`Handled::answer`], except that a retry on the last
    /// attempt becomes a drop (recorded), and that when recording fails the message is kept
    /// (a retry, or a hold while the database is away) so that nothing is lost.
    pub(super) async fn settle(
        &self,
        received: &Received<'_>,
        handled: &Handled,
        attempt: Attempt,
    ) -> Answer {
        let answer = handled.answer();
        let rows: Vec<Row> = match (&answer, handled) {
            (Answer::Done | Answer::Hold(_), _) | (_, Handled::Held(_)) => return answer,
            (_, Handled::Undecodable(e)) => vec![Row {
                component: None,
                reason: e.to_string(),
            }],
            // Drops are final whenever they happen; retries only when no attempt follows.
            (_, Handled::Decoded { .. }) => handled
                .failures()
                .filter(|(_, f)| f.is_permanent() || attempt.last)
                .map(|(v, f)| Row {
                    component: Some(v.component.name()),
                    reason: if f.is_permanent() {
                        format!("{}: {f}", v.who())
                    } else {
                        format!("{}: {}: {f}", v.who(), gave_up(attempt.number))
                    },
                })
                .collect(),
        };
        if rows.is_empty() {
            return answer;
        }
        let key = message_key(
            handled.event_id().map(|e| e.as_str()),
            received.id,
            received.payload,
        );
        let payload = String::from_utf8_lossy(received.payload);
        let written = self
            .write(received.topic, &key, &payload, attempt.number, None, &rows)
            .await;
        match (written, answer) {
            (Err(e), answer) => unrecorded(e, answer),
            (Ok(()), Answer::Retry(_)) if attempt.last => {
                let reasons: Vec<&str> = rows.iter().map(|r| r.reason.as_str()).collect();
                Answer::Drop(reasons.join("; "))
            }
            (Ok(()), answer) => answer,
        }
    }

    /// Records a message that never reached a component, with why.
    pub async fn undelivered(&self, message: Undelivered<'_>) -> Result<(), StorageError> {
        let reason = if message.exhausted {
            format!("{}: {}", gave_up(message.attempts), message.reason)
        } else {
            message.reason.to_string()
        };
        let key = message_key(None, message.id, message.payload);
        let payload = String::from_utf8_lossy(message.payload);
        let row = Row {
            component: None,
            reason,
        };
        self.write(
            message.topic,
            &key,
            &payload,
            message.attempts.max(1),
            message.forwarded_to,
            std::slice::from_ref(&row),
        )
        .await
    }

    /// A message arrived on `dlq_topic(topic)`: notes it on the dead letters this host wrote
    /// when it dropped that message (`key`: its [`message_key`]). `false`: the host never
    /// dropped it (daprd gave up retrying it).
    pub async fn forwarded(&self, topic: &str, key: &str) -> Result<bool, StorageError> {
        let mut conn = self.db.pool().acquire().await?;
        let noted = dead_letters::mark_forwarded(&mut conn, topic, key, &dlq_topic(topic)).await?;
        Ok(noted > 0)
    }

    async fn write(
        &self,
        topic: &str,
        key: &str,
        payload: &str,
        attempts: u32,
        forwarded_to: Option<&str>,
        rows: &[Row<'_>],
    ) -> Result<(), StorageError> {
        let now = wire::time::now().timestamp_millis();
        let mut tx = self.db.begin().await?;
        let mut added = Vec::new();
        for row in rows {
            let d = dead_letters::NewDeadLetter {
                topic,
                component: row.component,
                event_id: Some(key),
                payload,
                reason: &row.reason,
                attempts,
                forwarded_to,
            };
            match dead_letters::insert(&mut tx, d, now).await? {
                dead_letters::Recorded::Added => added.push((row, "dead-lettered")),
                dead_letters::Recorded::Reopened => added.push((
                    row,
                    "failed again after a replay: dead letter pending again",
                )),
                dead_letters::Recorded::AlreadyPending => {}
            }
        }
        tx.commit().await?;
        for (row, what) in added {
            crate::metrics::dead_letter(topic);
            tracing::error!(
                topic,
                event_id = key,
                component = row.component.unwrap_or(""),
                reason = %row.reason,
                "{what}"
            );
        }
        Ok(())
    }
}

/// A message to record with [`DeadLetters::undelivered`].
pub struct Undelivered<'a> {
    pub topic: &'a str,
    /// The transport's id for it (a CloudEvent id), if it has one.
    pub id: Option<&'a str>,
    pub payload: &'a [u8],
    pub reason: &'a str,
    /// Deliveries tried.
    pub attempts: u32,
    /// Its attempts ran out (the reason then says after how many); otherwise it was refused.
    pub exhausted: bool,
    /// The dead-letter topic it arrived from, when it did.
    pub forwarded_to: Option<&'a str>,
}

/// The words for a message whose attempts ran out.
fn gave_up(attempts: u32) -> String {
    format!(
        "gave up after {attempts} attempt{}",
        if attempts == 1 { "" } else { "s" }
    )
}

/// The answer when what failed for good could not be recorded: nothing may be lost, so the
/// message is kept — held while the database is away, retried otherwise.
fn unrecorded(e: StorageError, answer: Answer) -> Answer {
    let reason = format!(
        "{}; recording the dead letter failed: {e}",
        answer.reason().unwrap_or_default()
    );
    tracing::warn!(error = %e, "cannot record a dead letter; the message is kept");
    if e.is_transient() {
        Answer::Hold(reason)
    } else {
        Answer::Retry(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_topics_are_named_one_way() {
        assert_eq!(dlq_topic("task-events"), "task-events-dlq");
        assert_eq!(origin_topic("task-events-dlq"), "task-events");
        assert_eq!(origin_topic("reminders"), "reminders");
        assert_eq!(gave_up(1), "gave up after 1 attempt");
        assert_eq!(gave_up(5), "gave up after 5 attempts");
    }

    #[test]
    fn a_message_is_named_the_same_however_it_arrives() {
        let with_id = br#"{"event_id": "e-1"}"#;
        assert_eq!(message_key(Some("e-0"), Some("ce"), with_id), "e-0");
        assert_eq!(message_key(None, Some("ce"), with_id), "e-1");
        assert_eq!(message_key(None, Some("ce"), b"{}"), "ce");
        let digest = message_key(None, None, b"not json");
        assert!(digest.starts_with("sha256:"), "{digest}");
        assert_eq!(digest, message_key(None, None, b"not json"));
        assert_ne!(digest, message_key(None, None, b"other"));
    }

    #[tokio::test]
    async fn one_row_per_message_and_component_and_a_forwarded_copy_adds_none() {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        let dead = DeadLetters::new(db.clone());
        let message = |reason| Undelivered {
            topic: "task-events",
            id: Some("ce-1"),
            payload: b"{}",
            reason,
            attempts: 1,
            exhausted: false,
            forwarded_to: None,
        };
        dead.undelivered(message("first")).await.unwrap();
        dead.undelivered(message("again")).await.unwrap();
        assert!(dead.forwarded("task-events", "ce-1").await.unwrap());
        assert!(!dead.forwarded("task-events", "other").await.unwrap());
        let mut conn = db.pool().acquire().await.unwrap();
        let rows = dead_letters::list(
            &mut conn,
            &dead_letters::Filter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].reason, "first");
        assert_eq!(rows[0].forwarded_to.as_deref(), Some("task-events-dlq"));
        assert_eq!(rows[0].component, None);
    }
}
