//! The one path every message takes: decode → route → call each subscribed component →
//! apply its effects with the exactly-once record in one transaction → tell the transport
//! what to answer. The embedded relay, the reminder scheduler and (later) Dapr deliveries all
//! call [`Pipeline::deliver`]; none has a pipeline of its own.

mod context;
mod group_commit;
mod in_host;
mod outcome;

pub use outcome::{ComponentOutcome, ComponentReport, Disposition, Report};

use crate::domain::Message;
use crate::effects::{Applied, EffectsConfig, Origin};
use crate::metrics;
use crate::runtime::{CallError, LoadedComponent, Registry, Runtime, convert, wit};
use crate::sockets::SocketHub;
use crate::storage::{Db, processed};
use crate::wire::{self, time};
use chrono::{DateTime, Utc};
use group_commit::GroupCommit;
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::Instrument;

/// What the pipeline looked up once for all of a message's components.
struct Lookups {
    /// Which of them handled the event already (the exactly-once ledger).
    done: Result<Vec<String>, crate::storage::StorageError>,
    /// The message's task was closed after it (context.rs): what reminds of it is withheld.
    task_closed: bool,
}

/// Who to wake when effects created work for them.
#[derive(Clone, Default)]
pub struct Wakers {
    pub relay: Arc<Notify>,
    pub scheduler: Arc<Notify>,
}

#[derive(Clone)]
pub struct Pipeline {
    runtime: Runtime,
    registry: Arc<Registry>,
    db: Db,
    hub: Arc<SocketHub>,
    wakers: Wakers,
    effects: Arc<EffectsConfig>,
    /// Where effects are committed, batched with concurrent deliveries' (group_commit.rs).
    group: GroupCommit,
}

impl Pipeline {
    pub fn new(
        runtime: Runtime,
        registry: Arc<Registry>,
        db: Db,
        hub: Arc<SocketHub>,
        wakers: Wakers,
    ) -> Self {
        let effects = Arc::<EffectsConfig>::default();
        let group = GroupCommit::start(db.clone(), effects.clone());
        Self {
            runtime,
            registry,
            db,
            hub,
            wakers,
            effects,
            group,
        }
    }

    /// Where effects that leave the database go (Dapr Jobs API, output binding).
    pub fn with_effects_config(mut self, config: EffectsConfig) -> Self {
        self.effects = Arc::new(config);
        // The committers apply effects with this config: restart them (the old ones stop
        // when their queue's last sender, replaced here, is dropped).
        self.group = GroupCommit::start(self.db.clone(), self.effects.clone());
        self
    }

    /// Handles one message of `topic` with every component subscribed to it.
    pub async fn deliver(&self, topic: &str, payload: &[u8]) -> Report {
        self.deliver_filtered(topic, payload, None).await
    }

    /// Handles one message of `topic` with `component` only, if it consumes `topic` (a replay
    /// of what that component could not handle; the others handled it already). The report
    /// lists no component when it does not.
    pub async fn deliver_to_component(
        &self,
        topic: &str,
        payload: &[u8],
        component: &str,
    ) -> Report {
        self.deliver_filtered(topic, payload, Some(component)).await
    }

    async fn deliver_filtered(&self, topic: &str, payload: &[u8], only: Option<&str>) -> Report {
        let now = time::now();
        let message = match wire::decode(topic, payload, now) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(topic, reason = %e, "dropping undecodable message");
                metrics::undecodable(topic);
                return Report::undecodable(e.to_string());
            }
        };
        let span = tracing::info_span!("message", topic, event_id = %message.event_id(), user_id = %message.user_id());
        self.deliver_decoded(topic, &message, now, only)
            .instrument(span)
            .await
    }

    async fn deliver_decoded(
        &self,
        topic: &str,
        message: &Message,
        now: DateTime<Utc>,
        only: Option<&str>,
    ) -> Report {
        // One version per component for the whole message, pinned here: a swap meanwhile
        // changes what the next message gets, never this one.
        let mut versions = self.registry.route(topic);
        if let Some(name) = only {
            versions.retain(|c| c.name == name);
        }
        if versions.is_empty() {
            tracing::debug!("no component subscribes to this topic");
        }
        let Some(mut wit_message) = convert::message_to(message) else {
            return self.deliver_in_host(topic, message, now, only).await;
        };
        let mut report = Report::decoded(message.event_id().to_string());
        // One look at the exactly-once ledger for all of them, then the components run side
        // by side: each has its own ledger entry and transaction (batched with concurrent
        // deliveries' by the group commit), so none waits for another's commit.
        let names: Vec<&str> = versions.iter().map(|c| c.name.as_str()).collect();
        let done = self
            .already_processed(&names, message.event_id().as_str())
            .await;
        // What the host knows of the task that the producer did not say (context.rs); a
        // database that cannot say is a retry, as for the ledger.
        let (done, context) = match done {
            Ok(done) if names.iter().any(|n| !done.iter().any(|d| d == n)) => {
                match context::of(&self.db, message, now).await {
                    Ok(context) => (Ok(done), context),
                    Err(e) => (Err(e), context::Context::default()),
                }
            }
            other => (other, context::Context::default()),
        };
        let message = match &context.filled {
            Some(filled) => {
                wit_message = convert::message_to(filled).unwrap_or(wit_message);
                filled
            }
            None => message,
        };
        let lookups = Lookups {
            done,
            task_closed: context.task_closed,
        };
        let outcomes = futures::future::join_all(versions.iter().map(|component| {
            self.deliver_to(
                component.clone(),
                topic,
                message,
                &wit_message,
                now,
                &lookups,
            )
        }))
        .await;
        report.components.extend(outcomes);
        report
    }

    async fn deliver_to(
        &self,
        component: Arc<LoadedComponent>,
        topic: &str,
        message: &Message,
        wit_message: &wit::Message,
        now: DateTime<Utc>,
        lookups: &Lookups,
    ) -> ComponentReport {
        let span = tracing::info_span!("component", component = %component.name, version = %component.version);
        let event_id = message.event_id().as_str();
        // Set when the database (not the component) failed transiently: the transport then
        // waits for it without spending one of the message's attempts.
        let mut storage_unavailable = false;
        let outcome = async {
            match &lookups.done {
                Ok(done) if done.contains(&component.name) => return ComponentOutcome::Duplicate,
                Ok(_) => {}
                Err(e) => {
                    storage_unavailable = e.is_transient();
                    return ComponentOutcome::Retry(format!("database unavailable: {e}"));
                }
            }
            let answer = match self.call(&component, topic, wit_message, now).await {
                Ok(answer) => answer,
                Err(outcome) => return outcome,
            };
            let effects = match answer {
                Ok(effects) => effects,
                Err(wit::Failure::Retry(reason)) => {
                    return ComponentOutcome::Retry(format!("component asked to retry: {reason}"));
                }
                Err(wit::Failure::Drop(reason)) => {
                    return ComponentOutcome::Drop(format!(
                        "component dropped the message: {reason}"
                    ));
                }
            };
            let mut effects = match effects
                .into_iter()
                .map(convert::effect_from)
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(e) => e,
                Err(reason) => {
                    return ComponentOutcome::Drop(format!(
                        "component returned an invalid effect: {reason}"
                    ));
                }
            };
            // What the WIT cannot carry (a delivery method), from the message (domain::carry);
            // nothing reminds of a closed task (context.rs).
            message.carry_into(&mut effects);
            if lookups.task_closed {
                message.withhold_reminders(&mut effects);
            }
            let count = effects.len();
            let origin = Origin {
                component: &component.name,
                version: &component.version,
            };
            match self.commit(origin, event_id, effects, now).await {
                Ok(Some(applied)) => {
                    self.after_commit(applied);
                    ComponentOutcome::Applied { effects: count }
                }
                Ok(None) => ComponentOutcome::Duplicate,
                Err(e) => {
                    storage_unavailable = e.is_transient();
                    ComponentOutcome::Retry(format!("applying effects failed: {e}"))
                }
            }
        }
        .instrument(span.clone())
        .await;
        span.in_scope(|| outcome.log());
        crate::telemetry::record_outcome(&span, outcome.label(), outcome.reason());
        metrics::message(topic, &component.name, &component.version, outcome.label());
        if matches!(outcome, ComponentOutcome::Applied { .. }) {
            let lag = Utc::now() - message.occurred_at();
            metrics::lag(topic, &component.name, lag.as_seconds_f64());
        }
        ComponentReport {
            component: component.name.clone(),
            version: component.version.clone(),
            outcome,
            storage_unavailable,
        }
    }

    /// Runs the (synchronous) component call on the blocking pool: wasm must not occupy an
    /// async worker, and WASI's sync stderr blocks on the runtime internally.
    async fn call(
        &self,
        component: &Arc<crate::runtime::LoadedComponent>,
        topic: &str,
        wit_message: &wit::Message,
        now: DateTime<Utc>,
    ) -> Result<crate::runtime::Answer, ComponentOutcome> {
        let (runtime, component, topic, message) = (
            self.runtime.clone(),
            component.clone(),
            topic.to_string(),
            wit_message.clone(),
        );
        // The blocking thread runs inside the component span, so what the component writes to
        // stderr is logged with the message's event id and topic and the component's version.
        let parent = tracing::Span::current();
        match tokio::task::spawn_blocking(move || {
            let _parent = parent.enter();
            let _call = tracing::info_span!(target: crate::telemetry::SPANS, "component.call", component = %component.name, version = %component.version).entered();
            let started = std::time::Instant::now();
            let answer = runtime.call(&component, &topic, &message, now.timestamp_millis());
            metrics::call_duration(
                &component.name,
                &component.version,
                started.elapsed().as_secs_f64(),
            );
            answer
        })
        .await
        {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(call_failed(e)),
            Err(e) => Err(ComponentOutcome::Retry(format!(
                "component call aborted in the host: {e}"
            ))),
        }
    }

    /// Which of `components` already handled `event_id` (their effects are in the database).
    async fn already_processed(
        &self,
        components: &[&str],
        event_id: &str,
    ) -> Result<Vec<String>, crate::storage::StorageError> {
        // A reader connection: on SQLite the one writer connection is busy with group commits.
        let mut conn = self.db.read_pool().acquire().await?;
        processed::done_by(&mut conn, components, event_id).await
    }

    /// Applies the effects and records the (component, event) pair in one transaction, shared
    /// with concurrent deliveries (group commit); returns once that transaction has committed.
    /// `None`: another delivery of the same event committed first; nothing was applied.
    async fn commit(
        &self,
        origin: Origin<'_>,
        event_id: &str,
        effects: Vec<crate::domain::Effect>,
        now: DateTime<Utc>,
    ) -> group_commit::JobResult {
        self.group.commit(origin, event_id, effects, now).await
    }

    fn after_commit(&self, applied: Applied) {
        for m in &applied.broadcasts {
            let _push = tracing::info_span!(target: crate::telemetry::SPANS, "ws.push", user_id = %m.user_id, sockets = tracing::field::Empty).entered();
            let sent = self.hub.broadcast(m);
            _push.record("sockets", sent);
            tracing::debug!(user_id = %m.user_id, sockets = sent, "pushed sync message");
        }
        if applied.outbox_written {
            self.wakers.relay.notify_one();
        }
        if applied.jobs_changed {
            self.wakers.scheduler.notify_one();
        }
    }
}

fn call_failed(e: CallError) -> ComponentOutcome {
    // Every way a call can fail is retried, bounded by the transport's retry policy, then
    // dead-lettered with this reason (which names the limit that was hit). Even a failure that
    // the same input will repeat (an effect list over the limits) is worth its few retries:
    // a hot swap or a rollback between two attempts can fix it, and a message is never
    // dropped because of a bug a newer version no longer has.
    ComponentOutcome::Retry(format!("component call failed: {e}"))
}
