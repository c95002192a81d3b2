//! Messages the host carries out itself, because no component can be handed them: a producer's
//! reminder cancellation (`domain::ReminderCancel`; the WIT of `todo:events@0.1.0` has no
//! message that says "cancel"). Their effects take the components' path from the commit on
//! (`Pipeline::run_in_host`): a group commit with the exactly-once record under the name
//! [`HOST`], a typed verdict, dead letters and replays under that name — so a redelivered
//! cancellation changes nothing, even after the reminder was asked for again under a new
//! event id.

use crate::domain::{Effect, Message, RemindersAt};

/// The name the host's own handling goes by in verdicts, metrics, dead letters and the
/// exactly-once record (a replay of such a dead letter names it).
pub const HOST: &str = "taskhost";
/// The version it goes by: the host's.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the host does for `message` (one `convert::message_to` has no WIT message for).
pub(super) fn effects(message: &Message) -> Vec<Effect> {
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
