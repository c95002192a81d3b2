//! The host's vocabulary: ids, tasks, topic messages and effects. No I/O here.

pub mod effect;
pub mod event;
pub mod ids;
pub mod task;

pub use effect::*;
pub use event::*;
pub use ids::*;
pub use task::*;
