//! Carrying out what a component returned. All effects of one (component, message) are applied
//! in the caller's transaction, so they happen together or not at all. A socket is not
//! transactional: a push is recorded in the transaction for every instance
//! (`sockets/fanout.rs`), or, for a lone instance, collected here and sent after the commit.

mod audit;
mod broadcast;
mod inbox;
mod publish;
mod reminders;
mod tasks;

use crate::domain::{Effect, SyncMessage};
use crate::sockets::SocketFanout;
use crate::storage::{Conn, Result};
use chrono::{DateTime, Utc};
use tracing::Instrument;

/// Who asked for the effects (stored with audit entries; used in logs).
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    pub component: &'a str,
    pub version: &'a str,
}

/// Where effects that leave the database go.
#[derive(Clone, Debug, Default)]
pub struct EffectsConfig {
    /// Mirror reminder jobs to the Dapr Jobs API (through the outbox) instead of firing them
    /// from the embedded scheduler.
    pub dapr_jobs: bool,
    /// Also send each new notification to this Dapr output binding.
    pub notification_binding: Option<String>,
    /// How socket pushes reach every instance.
    pub sockets: SocketFanout,
}

/// Writes that [`apply`] leaves for later in the transaction, so that a batch of deliveries
/// makes one statement of them instead of one each: audit entries (nothing in the transaction
/// reads them), reminder-job upserts (written before anything reads or deletes a job, see
/// `reminders::cancel`) and socket pushes fanned out through PostgreSQL (read only by
/// listeners, after the commit). [`Deferred::flush`] must run before the commit.
#[derive(Debug, Default)]
pub struct Deferred<'a> {
    audit: Vec<crate::storage::audit::NewAudit<'a>>,
    jobs: Vec<(crate::domain::ReminderJob, i64)>,
    pushes: Vec<crate::storage::socket_pushes::NewPush>,
}

impl Deferred<'_> {
    /// Writes the deferred job upserts (in order; the last of one name wins).
    pub async fn flush_jobs(&mut self, conn: &mut Conn) -> Result<()> {
        if !self.jobs.is_empty() {
            let jobs = std::mem::take(&mut self.jobs);
            crate::storage::jobs::upsert_many(conn, &jobs).await?;
        }
        Ok(())
    }

    /// Writes everything deferred, in the order it was deferred.
    pub async fn flush(&mut self, conn: &mut Conn) -> Result<()> {
        self.flush_jobs(conn).await?;
        if !self.audit.is_empty() {
            let entries = std::mem::take(&mut self.audit);
            let added = crate::storage::audit::insert_many(conn, &entries).await?;
            if (added as usize) < entries.len() {
                tracing::debug!(
                    entries = entries.len(),
                    added,
                    "some audit entries were recorded already"
                );
            }
        }
        if !self.pushes.is_empty() {
            let pushes = std::mem::take(&mut self.pushes);
            crate::storage::socket_pushes::insert_many(conn, &pushes).await?;
        }
        Ok(())
    }
}

/// What applying effects changed that someone outside the transaction must hear about.
#[derive(Debug, Default)]
pub struct Applied {
    /// To push to this instance's sockets once the transaction has committed
    /// ([`SocketFanout::Local`] only).
    pub broadcasts: Vec<SyncMessage>,
    /// New outbox rows: wake the relay.
    pub outbox_written: bool,
    /// Reminder jobs changed: wake the scheduler.
    pub jobs_changed: bool,
}

/// Applies `effects` in `conn`'s transaction, leaving some writes in `deferred`. The effects
/// are borrowed, not consumed: a group commit that fails is retried part by part with the same
/// effects, and an audit entry is written from the effect itself (no copy of its task states).
pub async fn apply<'a>(
    conn: &mut Conn,
    config: &EffectsConfig,
    origin: Origin<'a>,
    effects: &'a [Effect],
    now: DateTime<Utc>,
    deferred: &mut Deferred<'a>,
) -> Result<Applied> {
    let mut applied = Applied::default();
    for effect in effects {
        tracing::debug!(
            kind = effect.kind(),
            component = origin.component,
            version = origin.version,
            "applying effect"
        );
        // A span per effect for traces only: never logged, free when traces are off.
        let span =
            tracing::info_span!(target: crate::telemetry::SPANS, "effect", kind = effect.kind());
        async {
            match effect {
                Effect::CreateTask(t) => {
                    applied.outbox_written |= tasks::create(conn, t.clone(), origin, now).await?
                }
                Effect::ScheduleReminder(job) => {
                    reminders::schedule(conn, deferred, job, now, config.dapr_jobs).await?;
                    applied.jobs_changed = true;
                    applied.outbox_written |= config.dapr_jobs;
                }
                Effect::CancelReminder(name) => {
                    reminders::cancel(conn, deferred, name, now, config.dapr_jobs).await?;
                    applied.jobs_changed = true;
                    applied.outbox_written |= config.dapr_jobs;
                }
                Effect::CancelRemindersAt(at) => {
                    let cancelled =
                        reminders::cancel_at(conn, deferred, at, origin, now, config.dapr_jobs)
                            .await?;
                    applied.jobs_changed |= cancelled;
                    applied.outbox_written |= cancelled && config.dapr_jobs;
                }
                Effect::Notify(n) => {
                    applied.outbox_written |=
                        inbox::notify(conn, n, config.notification_binding.as_deref(), origin, now)
                            .await?
                }
                Effect::AppendAudit(entry) => audit::append(deferred, entry, origin, now),
                Effect::Broadcast(m) => match config.sockets {
                    SocketFanout::Local => applied.broadcasts.push(m.clone()),
                    SocketFanout::Postgres => broadcast::notify(deferred, m, now),
                    SocketFanout::Dapr => {
                        broadcast::publish(conn, m, now).await?;
                        applied.outbox_written = true;
                    }
                },
                Effect::Publish(e) => {
                    publish::publish(conn, e, now).await?;
                    applied.outbox_written = true;
                }
            }
            Ok::<_, crate::storage::StorageError>(())
        }
        .instrument(span)
        .await?;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Db;
    use crate::storage::jobs::tests::{due_of, job};

    const ORIGIN: Origin<'static> = Origin {
        component: "notification",
        version: "0.1.0",
    };

    async fn apply_all<'a>(conn: &mut Conn, d: &mut Deferred<'a>, effects: &'a [Effect]) {
        let now = Utc::now();
        apply(conn, &EffectsConfig::default(), ORIGIN, effects, now, d)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn deferred_job_upserts_keep_their_order_with_cancels_in_one_batch() {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        // Two deliveries of one batch: x scheduled then cancelled; y cancelled then scheduled.
        let deliveries = [
            vec![Effect::ScheduleReminder(job("x", 1_000))],
            vec![Effect::CancelReminder("y".into())],
            vec![Effect::CancelReminder("x".into())],
            vec![Effect::ScheduleReminder(job("y", 2_000))],
        ];
        let mut d = Deferred::default();
        for effects in &deliveries {
            apply_all(&mut conn, &mut d, effects).await;
        }
        d.flush(&mut conn).await.unwrap();
        assert_eq!(
            due_of(&mut conn, "x").await,
            None,
            "x was cancelled after it was scheduled"
        );
        assert_eq!(
            due_of(&mut conn, "y").await,
            Some(2_000),
            "y was scheduled after its cancel"
        );
    }
}
