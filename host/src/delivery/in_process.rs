//! The embedded sink: hands outbox rows straight to the pipeline, and keeps the dead-letter
//! table (embedded mode's dead-letter topic).

use super::relay::{OutboxSink, SinkResult};
use crate::pipeline::{Disposition, Pipeline, Report};
use crate::storage::outbox::OutboxRow;
use crate::storage::{Db, dead_letters};
use chrono::Utc;

pub struct InProcessSink {
    pipeline: Pipeline,
    db: Db,
}

impl InProcessSink {
    pub fn new(pipeline: Pipeline, db: Db) -> Self {
        Self { pipeline, db }
    }

    /// Records every failed component (or the undecodable message) with its reason.
    async fn dead_letter(
        &self,
        row: &OutboxRow,
        report: &Report,
        only_drops: bool,
    ) -> Result<(), crate::storage::StorageError> {
        let now = Utc::now().timestamp_millis();
        let mut tx = self.db.begin().await?;
        if let Some(reason) = &report.undecodable {
            let d = dead_letters::NewDeadLetter {
                topic: &row.topic,
                component: None,
                event_id: None,
                payload: &row.payload,
                reason,
            };
            dead_letters::insert(&mut tx, d, now).await?;
        }
        for (c, reason) in report.failures() {
            let is_drop = matches!(c.outcome, crate::pipeline::ComponentOutcome::Drop(_));
            if only_drops && !is_drop {
                continue;
            }
            let reason = format!("{}@{}: {reason}", c.component, c.version);
            let d = dead_letters::NewDeadLetter {
                topic: &row.topic,
                component: Some(&c.component),
                event_id: report.event_id.as_deref(),
                payload: &row.payload,
                reason: &reason,
            };
            dead_letters::insert(&mut tx, d, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl OutboxSink for InProcessSink {
    async fn deliver(&self, row: &OutboxRow, final_attempt: bool) -> SinkResult {
        let report = self
            .pipeline
            .deliver(&row.topic, row.payload.as_bytes())
            .await;
        let outcome = match report.disposition() {
            Disposition::Success => return SinkResult::Done,
            // Components that dropped are dead-lettered at once; ones that asked for a retry
            // get it, and are dead-lettered when the attempts run out.
            Disposition::Drop(_) => self.dead_letter(row, &report, false).await.map(|_| SinkResult::Done),
            Disposition::Retry(reason) if final_attempt => self.dead_letter(row, &report, false).await.map(|_| {
                tracing::error!(topic = %row.topic, event_id = report.event_id.as_deref().unwrap_or(""), %reason, "retries exhausted; dead-lettered");
                SinkResult::Done
            }),
            Disposition::Retry(reason) => {
                // Drops among the components are final now: record them before retrying the
                // rest (recording is idempotent per component and event).
                if report.failures().any(|(c, _)| matches!(c.outcome, crate::pipeline::ComponentOutcome::Drop(_)))
                    && let Err(e) = self.dead_letter(row, &report, true).await
                {
                    return SinkResult::Retry(format!("{reason}; recording dead letters failed: {e}"));
                }
                return SinkResult::Retry(reason);
            }
        };
        outcome.unwrap_or_else(|e| SinkResult::Retry(format!("recording dead letters failed: {e}")))
    }
}
