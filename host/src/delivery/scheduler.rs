//! The embedded, durable reminder scheduler. A due job is moved, in one transaction, from
//! `scheduled_jobs` to the outbox as a `reminders` message, once per reminder
//! (`storage::jobs::fire`); the relay then delivers it like any event. A crash before the commit leaves the job due; after it, the message is in the outbox.
//! (With Dapr, the Jobs API fires jobs instead.)

use crate::domain::topics;
use crate::storage::{Db, jobs, outbox};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const BATCH: i64 = 256;
/// Longest sleep, so a job scheduled by another process is still noticed.
const MAX_SLEEP: Duration = Duration::from_secs(5);

pub struct Scheduler {
    db: Db,
    wake: Arc<Notify>,
    relay: Arc<Notify>,
}

impl Scheduler {
    pub fn new(db: Db, wake: Arc<Notify>, relay: Arc<Notify>) -> Self {
        Self { db, wake, relay }
    }

    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!("reminder scheduler started");
        loop {
            let sleep = match self.tick().await {
                Ok(sleep) => sleep,
                Err(e) => {
                    tracing::warn!(error = %e, "reminder scheduler tick failed; will retry");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
        tracing::info!("reminder scheduler stopped");
    }

    /// Fires what is due; returns how long to sleep until the next job.
    pub async fn tick(&self) -> Result<Duration, crate::storage::StorageError> {
        loop {
            let now = Utc::now().timestamp_millis();
            let mut tx = self.db.begin().await?;
            let due = jobs::due(&mut tx, now, BATCH).await?;
            if due.is_empty() {
                let next = jobs::next_due(&mut tx).await?;
                tx.commit().await?;
                return Ok(match next {
                    Some(at) => Duration::from_millis((at - now).max(0) as u64).min(MAX_SLEEP),
                    None => MAX_SLEEP,
                });
            }
            let mut published = 0;
            for job in &due {
                // Another replica's scheduler may have fired it since `due` read it.
                if let jobs::Firing::Publish(payload) =
                    jobs::fire(&mut tx, &job.name, None, now).await?
                {
                    outbox::enqueue(&mut tx, topics::REMINDERS, &job.user_id, &payload, now)
                        .await?;
                    published += 1;
                }
            }
            tx.commit().await?;
            tracing::info!(count = due.len(), published, "fired reminder jobs");
            if published > 0 {
                self.relay.notify_one();
            }
        }
    }
}
