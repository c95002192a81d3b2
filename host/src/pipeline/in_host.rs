//! Messages the host carries out itself, because no component can be handed them: a producer's
//! reminder cancellation (`domain::ReminderCancel`; the WIT of `todo:events@0.1.0` has no
//! message that says "cancel"). Applied as a component's effects are — in a group commit, with
//! the exactly-once record under the name [`HOST`] — so a redelivered cancellation changes
//! nothing, even after the reminder was asked for again under a new event id.

use super::{ComponentOutcome, ComponentReport, Pipeline, Report};
use crate::domain::{Effect, Message, RemindersAt};
use crate::effects::Origin;
use crate::metrics;
use chrono::{DateTime, Utc};
use tracing::Instrument;

/// The name the host's own handling goes by in reports, metrics, dead letters and the
/// exactly-once record.
pub const HOST: &str = "taskhost";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the host does for `message`.
fn effects(message: &Message) -> Vec<Effect> {
    match message {
        Message::ReminderCancel(c) => vec![Effect::CancelRemindersAt(RemindersAt {
            user_id: c.user_id.clone(),
            task_id: c.task_id.clone(),
            due_at: c.remind_at,
        })],
        // Handed to components.
        Message::Task(_) | Message::Reminder(_) => Vec::new(),
    }
}

impl Pipeline {
    /// Handles a message no component is handed; `only` names the one handler a replay is for.
    pub(super) async fn deliver_in_host(
        &self,
        topic: &str,
        message: &Message,
        now: DateTime<Utc>,
        only: Option<&str>,
    ) -> Report {
        let mut report = Report::decoded(message.event_id().to_string());
        if only.is_some_and(|name| name != HOST) {
            return report;
        }
        let span = tracing::info_span!("component", component = HOST, version = VERSION);
        let effects = effects(message);
        let count = effects.len();
        let origin = Origin {
            component: HOST,
            version: VERSION,
        };
        let mut storage_unavailable = false;
        let outcome = async {
            match self
                .commit(origin, message.event_id().as_str(), effects, now)
                .await
            {
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
        metrics::message(topic, HOST, VERSION, outcome.label());
        report.components.push(ComponentReport {
            component: HOST.to_string(),
            version: VERSION.to_string(),
            outcome,
            storage_unavailable,
        });
        report
    }
}
