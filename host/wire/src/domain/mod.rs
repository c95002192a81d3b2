//! The host's vocabulary: ids, tasks, topic messages and effects. No I/O here.

pub mod carry;
pub mod effect;
pub mod event;
pub mod ids;
pub mod notification_method;
pub mod task;

pub use effect::*;
pub use event::*;
pub use ids::*;
pub use notification_method::NotificationMethod;
pub use task::*;
