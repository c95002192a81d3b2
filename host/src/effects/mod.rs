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

/// Writes that [`apply`] leaves for the end of the transaction, so that a batch of deliveries
/// makes one statement of them instead of one each: only those nothing else in the transaction
/// reads (audit entries). [`Deferred::flush`] must run before the commit.
#[derive(Debug, Default)]
pub struct Deferred {
    audit: Vec<crate::storage::audit::NewAudit>,
}

impl Deferred {
    /// Writes what was deferred, in the order it was deferred.
    pub async fn flush(&mut self, conn: &mut Conn) -> Result<()> {
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

pub async fn apply(
    conn: &mut Conn,
    config: &EffectsConfig,
    origin: Origin<'_>,
    effects: Vec<Effect>,
    now: DateTime<Utc>,
    deferred: &mut Deferred,
) -> Result<Applied> {
    let mut applied = Applied::default();
    for effect in effects {
        tracing::debug!(
            kind = effect.kind(),
            component = origin.component,
            "applying effect"
        );
        // A span per effect for traces only: never logged, free when traces are off.
        let span =
            tracing::info_span!(target: crate::telemetry::SPANS, "effect", kind = effect.kind());
        async {
            match effect {
                Effect::CreateTask(t) => {
                    applied.outbox_written |= tasks::create(conn, t, now).await?
                }
                Effect::ScheduleReminder(job) => {
                    reminders::schedule(conn, &job, now, config.dapr_jobs).await?;
                    applied.jobs_changed = true;
                    applied.outbox_written |= config.dapr_jobs;
                }
                Effect::CancelReminder(name) => {
                    reminders::cancel(conn, &name, now, config.dapr_jobs).await?;
                    applied.jobs_changed = true;
                    applied.outbox_written |= config.dapr_jobs;
                }
                Effect::Notify(n) => {
                    applied.outbox_written |=
                        inbox::notify(conn, &n, config.notification_binding.as_deref(), now).await?
                }
                Effect::AppendAudit(entry) => audit::append(deferred, entry, origin, now),
                Effect::Broadcast(m) => match config.sockets {
                    SocketFanout::Local => applied.broadcasts.push(m),
                    SocketFanout::Postgres => broadcast::notify(conn, &m, now).await?,
                    SocketFanout::Dapr => {
                        broadcast::publish(conn, &m, now).await?;
                        applied.outbox_written = true;
                    }
                },
                Effect::Publish(e) => {
                    publish::publish(conn, &e, now).await?;
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
