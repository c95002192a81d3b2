//! The one path every message takes, whichever way it came in (the embedded outbox relay, a
//! Dapr delivery single or bulk, a dead-letter topic arrival, a replay):
//!
//! ```text
//! Received ─▶ decode ─▶ route ─▶ call each component (call.rs) ─▶ commit effects + exactly-once
//!   record (group_commit.rs) ─▶ Verdict per component (verdict.rs) ─▶ dead letters
//!   (dead_letter.rs) ─▶ Answer (answer.rs) ─▶ the transport's own words
//! ```
//!
//! Where to look:
//! - a message is dead-lettered in `dead_letter.rs` — the only writer of dead letters;
//! - the exactly-once record is written in `group_commit.rs`, with the effects it guards;
//!   the messages of a bulk delivery handled side by side (one per user) share its
//!   transaction through `wave.rs`;
//! - a verdict becomes an answer in `answer.rs` ([`Handled::answer`]); each transport turns an
//!   [`Answer`] into its words in one small function (named there);
//! - what the host adds to a message before its components see it (the previous state a
//!   producer did not send) and to their effects after (a delivery method the WIT cannot
//!   carry; no reminders of a task closed since) is in `context.rs`;
//! - a message no component can be handed (a producer's reminder cancellation) is carried out
//!   by the host itself, `in_host.rs`, and judged like a component's under the name
//!   [`HOST`] ([`Handler`]).

mod answer;
mod call;
mod context;
pub mod dead_letter;
mod executor;
mod group_commit;
mod handler;
mod in_host;
mod shadow;
mod verdict;
mod wave;

pub use answer::Answer;
pub use dead_letter::{DeadLetters, Undelivered, dlq_topic, message_key, origin_topic};
pub use handler::Handler;
pub use in_host::HOST;
pub use verdict::{ComponentVerdict, Failure, Handled, HeldBehind, Verdict};
pub use wave::{Earlier, Seat, Settle, Started};

use crate::domain::Message;
use crate::effects::{Applied, EffectsConfig};
use crate::metrics;
use crate::rollout::Rollouts;
use crate::runtime::{Registry, Runtime, convert};
use crate::sockets::SocketHub;
use crate::storage::{Db, processed};
use crate::wire::{self, time};
use chrono::{DateTime, Utc};
use group_commit::{GroupCommit, Part};
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::Instrument;

/// One message as a transport hands it over.
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    pub topic: &'a str,
    /// The producer's JSON payload.
    pub payload: &'a [u8],
    /// The transport's own id for the message (a CloudEvent id), if it has one: it names the
    /// message in a dead letter when its payload does not decode.
    pub id: Option<&'a str>,
}

/// Which attempt at a message this is, as far as the transport knows.
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    /// 1 for the first.
    pub number: u32,
    /// No attempt follows: what still fails is dead-lettered now.
    pub last: bool,
}

impl Attempt {
    /// A transport that retries on its own and does not say how often (daprd): this is the
    /// one attempt the host sees, and not the last.
    pub const UNCOUNTED: Attempt = Attempt {
        number: 1,
        last: false,
    };
    /// Nothing follows this attempt.
    pub const LAST: Attempt = Attempt {
        number: 1,
        last: true,
    };
}

/// What the pipeline did with a message, and what the transport answers.
#[derive(Debug)]
pub struct Fate {
    pub handled: Handled,
    pub answer: Answer,
}

/// Who to wake when effects created work for them.
#[derive(Clone, Default)]
pub struct Wakers {
    pub relay: Arc<Notify>,
    pub scheduler: Arc<Notify>,
}

/// The pipeline. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    runtime: Runtime,
    registry: Arc<Registry>,
    db: Db,
    hub: Arc<SocketHub>,
    wakers: Wakers,
    dead_letters: DeadLetters,
    /// Where effects are committed, batched with concurrent messages' (group_commit.rs).
    commit: GroupCommit,
    threads: executor::WasmThreads,
    /// Shadow and canary candidates (`crate::rollout`): who serves a user, who shadows.
    rollouts: Arc<Rollouts>,
}

impl Pipeline {
    /// The pipeline, applying effects as `effects` says (Dapr Jobs API, output binding,
    /// socket fan-out).
    pub fn new(
        runtime: Runtime,
        registry: Arc<Registry>,
        db: Db,
        hub: Arc<SocketHub>,
        wakers: Wakers,
        effects: EffectsConfig,
    ) -> Self {
        let commit = GroupCommit::start(db.clone(), Arc::new(effects));
        Self {
            runtime,
            dead_letters: DeadLetters::new(db.clone()),
            db,
            hub,
            wakers,
            commit,
            threads: executor::WasmThreads::start(),
            rollouts: Arc::new(Rollouts::new(registry.clone())),
            registry,
        }
    }

    /// As built, with these candidates instead of none (a test that wants more samples).
    pub fn with_rollouts(mut self, rollouts: Rollouts) -> Self {
        self.rollouts = Arc::new(rollouts);
        self
    }

    /// The shadow and canary candidates of this pipeline's components.
    pub fn rollouts(&self) -> &Arc<Rollouts> {
        &self.rollouts
    }

    /// The dead-letter writer, for what a transport cannot hand to the pipeline.
    pub fn dead_letters(&self) -> &DeadLetters {
        &self.dead_letters
    }

    /// Handles one message with every component subscribed to its topic, records what failed
    /// for good on this `attempt`, and says what the transport answers.
    pub async fn handle(&self, received: Received<'_>, attempt: Attempt) -> Fate {
        self.handle_seated(received, attempt, None).await
    }

    /// Places for `messages` messages of different users to be handled side by side, each
    /// with [`Pipeline::handle_seated`], whose effects commit together (`wave.rs`): a bulk
    /// delivery's next entry of each user.
    pub fn wave(&self, messages: usize) -> Vec<Seat> {
        wave::seats(&self.commit, messages)
    }

    /// [`Pipeline::handle`], committing with the rest of `seat`'s wave when given one.
    pub async fn handle_seated(
        &self,
        received: Received<'_>,
        attempt: Attempt,
        seat: Option<Seat>,
    ) -> Fate {
        let earlier = seat.as_ref().and_then(Seat::earlier);
        let handled = self.run(&received, None, seat).await;
        // A message chained behind the same user's previous one (`wave.rs`) that ended without
        // a commit — it did not decode, nothing consumes it, every call failed — has that fate
        // only if the previous one goes on; otherwise it is held, as if never handled.
        let handled = match earlier {
            Some(earlier) if !matches!(handled, Handled::Held(_)) => {
                match earlier.settled().await {
                    Ok(()) => handled,
                    Err(held) => Handled::Held(held),
                }
            }
            _ => handled,
        };
        let answer = self.dead_letters.settle(&received, &handled, attempt).await;
        Fate { handled, answer }
    }

    /// Handles one message with `component` only, if it consumes the topic (a replay of what
    /// that component could not handle; the others handled it already). Records no dead
    /// letter: the replay keeps its own. No verdict when the component does not consume it.
    pub async fn handle_for(&self, received: Received<'_>, component: &str) -> Handled {
        self.run(&received, Some(component), None).await
    }

    /// Everything but the dead letters and the answer. A `seat` not used for a commit is
    /// dropped as soon as it is known none will be made, so its wave does not wait for this
    /// message's remaining work.
    async fn run(
        &self,
        received: &Received<'_>,
        only: Option<&str>,
        seat: Option<Seat>,
    ) -> Handled {
        let now = time::now();
        let message = match wire::decode(received.topic, received.payload, now) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(topic = received.topic, id = received.id.unwrap_or(""), reason = %e, "undecodable message");
                metrics::undecodable(received.topic);
                return Handled::Undecodable(e);
            }
        };
        let span = tracing::info_span!("message", topic = received.topic, event_id = %message.event_id(), user_id = %message.user_id());
        self.run_decoded(received.topic, message, now, only, seat)
            .instrument(span)
            .await
    }

    async fn run_decoded(
        &self,
        topic: &str,
        message: Message,
        now: DateTime<Utc>,
        only: Option<&str>,
        seat: Option<Seat>,
    ) -> Handled {
        let event_id = message.event_id().clone();
        // A message no component can be handed: the host carries it out itself (in_host.rs).
        let Some(wit_message) = convert::message_to(&message) else {
            return self.run_in_host(topic, message, now, only, seat).await;
        };
        // One version per component for the whole message, pinned here: a swap meanwhile
        // changes what the next message gets, never this one.
        let mut versions = self.registry.route(topic);
        if let Some(name) = only {
            versions.retain(|c| c.name == name);
        }
        // A canary takes its slice of users (crate::rollout), for the whole message.
        self.rollouts
            .route(&mut versions, topic, message.user_id().as_str());
        if versions.is_empty() {
            tracing::debug!("no component subscribes to this topic");
            return Handled::Decoded {
                event_id,
                verdicts: Vec::new(),
            };
        }
        let spans: Vec<tracing::Span> = versions
            .iter()
            .map(|c| component_span(&c.name, &c.version))
            .collect();
        let handlers: Vec<Handler> = versions.iter().cloned().map(Handler::Component).collect();

        // What the host knows of the task that the producer did not say (context.rs), read
        // only after the same user's previous message of a bulk delivery, which may be writing
        // it, is answered. A database that cannot say fails every component alike, before any
        // is called.
        if let Some(seat) = &seat
            && context::reads(&message, now)
            && let Err(held) = seat.after_earlier().await
        {
            return Handled::Held(held);
        }
        let mut context = match context::of(&self.db, &message, now).await {
            Ok(context) => context,
            Err(e) => {
                let e = Arc::new(e);
                let calls = versions
                    .iter()
                    .map(|_| Err(Failure::History(e.clone())))
                    .collect();
                return self
                    .judge(
                        topic,
                        &message,
                        now,
                        Answered {
                            handlers,
                            spans,
                            calls,
                        },
                        seat,
                    )
                    .await;
            }
        };
        let (message, wit_message) = match context.filled.take() {
            // The message as it reaches the components is the one with its previous state.
            Some(filled) => {
                let wit_filled = convert::message_to(&filled).unwrap_or(wit_message);
                (filled, wit_filled)
            }
            None => (message, wit_message),
        };
        // A shadow gets the message as the serving versions did (shadow.rs), off this path.
        let shadowed = self.rollouts.shadowing().then(|| wit_message.clone());
        let mut calls = call::call_all(
            &self.threads,
            &self.runtime,
            &versions,
            &spans,
            topic,
            wit_message,
            now,
        )
        .await;
        if let Some(wit_message) = shadowed {
            shadow::hand_over(
                &self.rollouts,
                topic,
                &message,
                wit_message,
                now,
                &versions,
                &calls,
            );
        }
        for effects in calls.iter_mut().flatten() {
            context.complete(&message, effects);
        }
        let answered = Answered {
            handlers,
            spans,
            calls,
        };
        self.judge(topic, &message, now, answered, seat).await
    }

    /// A message the host carries out itself (in_host.rs): from the commit on, the same path
    /// as a component's effects, under the name [`in_host::HOST`].
    async fn run_in_host(
        &self,
        topic: &str,
        message: Message,
        now: DateTime<Utc>,
        only: Option<&str>,
        seat: Option<Seat>,
    ) -> Handled {
        if only.is_some_and(|name| name != in_host::HOST) {
            return Handled::Decoded {
                event_id: message.event_id().clone(),
                verdicts: Vec::new(),
            };
        }
        let span = component_span(in_host::HOST, in_host::VERSION);
        let calls = vec![Ok(in_host::effects(&message))];
        let answered = Answered {
            handlers: vec![Handler::Host],
            spans: vec![span],
            calls,
        };
        self.judge(topic, &message, now, answered, seat).await
    }

    /// Commits what the handlers answered with effects (together, with the exactly-once
    /// record) and turns every handler's result into its verdict, logged and counted.
    async fn judge(
        &self,
        topic: &str,
        message: &Message,
        now: DateTime<Utc>,
        answered: Answered,
        seat: Option<Seat>,
    ) -> Handled {
        let Answered {
            handlers,
            spans,
            calls,
        } = answered;
        let event_id = message.event_id().clone();
        // What the handlers answered with effects is committed together; the rest failed.
        let mut verdicts: Vec<Option<verdict::Verdict>> = Vec::with_capacity(handlers.len());
        let mut parts = Vec::new();
        for ((handler, span), called) in handlers.iter().zip(&spans).zip(calls) {
            match called {
                Ok(effects) => {
                    verdicts.push(None);
                    parts.push(Part {
                        component: handler.clone(),
                        effects,
                        span: span.clone(),
                    });
                }
                Err(failure) => verdicts.push(Some(Verdict::Failed(failure))),
            }
        }
        if !parts.is_empty() {
            let counts: Vec<(usize, tracing::Span)> = parts
                .iter()
                .map(|p| (p.effects.len(), p.span.clone()))
                .collect();
            let results = match seat {
                Some(seat) => match seat.commit(event_id.as_str(), now, parts).await {
                    Ok(results) => results,
                    Err(held) => return Handled::Held(held),
                },
                None => self.commit.commit(event_id.as_str(), now, parts).await,
            };
            let mut results = results.into_iter().zip(counts);
            for (handler, slot) in handlers
                .iter()
                .zip(&mut verdicts)
                .filter(|(_, v)| v.is_none())
            {
                let (result, (effects, span)) = results.next().expect("one result per part");
                *slot = Some(match result {
                    Ok(Some(applied)) => {
                        // Pushes to sockets happen in the component's span, like its effects.
                        span.in_scope(|| self.after_commit(handler, applied));
                        Verdict::Applied { effects }
                    }
                    Ok(None) => Verdict::Duplicate,
                    Err(e) => Verdict::Failed(Failure::Storage(e)),
                });
            }
        } else {
            // Nothing to commit: the rest of the wave need not wait for the look below.
            drop(seat);
        }
        let mut verdicts: Vec<Verdict> = verdicts
            .into_iter()
            .map(|v| v.expect("every component has a verdict"))
            .collect();
        self.duplicates_of_failures(&handlers, event_id.as_str(), &mut verdicts)
            .await;

        let verdicts = handlers
            .into_iter()
            .zip(spans)
            .zip(verdicts)
            .map(|((component, span), verdict)| {
                observe(&span, topic, &component, &verdict, message);
                ComponentVerdict { component, verdict }
            })
            .collect();
        Handled::Decoded { event_id, verdicts }
    }

    /// A component that fails on an event it has handled before (a redelivery reaching a
    /// version that now fails on it) has nothing left to do: its verdict is a duplicate, not a
    /// failure to retry or dead-letter. Only failures pay for this look at the ledger.
    async fn duplicates_of_failures(
        &self,
        handlers: &[Handler],
        event_id: &str,
        verdicts: &mut [Verdict],
    ) {
        let failed: Vec<&str> = handlers
            .iter()
            .zip(verdicts.iter())
            .filter(|(_, v)| matches!(v, Verdict::Failed(f) if !matches!(f, Failure::Storage(_))))
            .map(|(c, _)| c.name())
            .collect();
        if failed.is_empty() {
            return;
        }
        let done = async {
            let mut conn = self.db.read_pool().acquire().await?;
            processed::done_by(&mut conn, &failed, event_id).await
        }
        .await;
        match done {
            Ok(done) => {
                for (c, v) in handlers.iter().zip(verdicts.iter_mut()) {
                    if done.iter().any(|d| d == c.name()) && matches!(v, Verdict::Failed(_)) {
                        *v = Verdict::Duplicate;
                    }
                }
            }
            // The failure stands; the message is retried and looked at again then.
            Err(e) => tracing::debug!(error = %e, "cannot check the ledger for failed components"),
        }
    }

    fn after_commit(&self, handler: &Handler, applied: Applied) {
        for m in &applied.broadcasts {
            let _push = tracing::info_span!(target: crate::telemetry::SPANS, "ws.push", user_id = %m.user_id, sockets = tracing::field::Empty).entered();
            let sent = self.hub.broadcast(m);
            _push.record("sockets", sent);
            tracing::debug!(component = handler.name(), version = handler.version(), user_id = %m.user_id, sockets = sent, "pushed sync message");
        }
        if applied.outbox_written {
            self.wakers.relay.notify_one();
        }
        if applied.jobs_changed {
            self.wakers.scheduler.notify_one();
        }
    }
}

/// A message's handlers, each with its span and what its call returned, in one order.
struct Answered {
    handlers: Vec<Handler>,
    spans: Vec<tracing::Span>,
    calls: Vec<call::Called>,
}

/// The span of one component's part of a message: its call, its effects, its verdict.
///
/// It goes to the trace only (target [`crate::telemetry::SPANS`]): a log line about a
/// component's part names the component and version in its own fields, and the message span
/// around it gives the event id and topic. Four spans per message that the log layer would
/// format, store and drop cost ~3 µs each on the delivery route (issue 17's profile), so with
/// traces off this is the message span itself (`Span::current()`), and the calls, effects and
/// verdicts run in that.
fn component_span(name: &str, version: &str) -> tracing::Span {
    let span = tracing::info_span!(target: crate::telemetry::SPANS, "component", component = %name, version = %version);
    if span.is_disabled() {
        tracing::Span::current()
    } else {
        span
    }
}

/// Logs, traces and counts one component's verdict, inside its span. The lines name the
/// component and version themselves ([`component_span`] is not in the log).
fn observe(
    span: &tracing::Span,
    topic: &str,
    component: &Handler,
    verdict: &Verdict,
    message: &Message,
) {
    let (name, version) = (component.name(), component.version());
    span.in_scope(|| match verdict {
        Verdict::Applied { effects } => {
            tracing::debug!(component = name, version, effects, "handled")
        }
        Verdict::Duplicate => {
            tracing::debug!(
                component = name,
                version,
                "duplicate delivery: already handled"
            )
        }
        Verdict::Failed(f) if f.is_permanent() => {
            tracing::warn!(component = name, version, reason = %f, "dropped")
        }
        Verdict::Failed(f) => tracing::warn!(component = name, version, reason = %f, "will retry"),
    });
    let reason = verdict.failure().map(|f| f.to_string());
    crate::telemetry::record_outcome(span, verdict.label(), reason.as_deref());
    let applied = matches!(verdict, Verdict::Applied { .. });
    let lag = || (Utc::now() - message.occurred_at()).as_seconds_f64();
    match component {
        Handler::Component(c) => {
            c.metrics.message(topic, verdict.label());
            if applied {
                c.metrics.lag(topic, lag());
            }
        }
        Handler::Host => {
            metrics::message(
                topic,
                component.name(),
                component.version(),
                verdict.label(),
            );
            if applied {
                metrics::lag(topic, component.name(), lag());
            }
        }
    }
}
