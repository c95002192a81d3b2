//! Ways messages come in without a person: the outbox relay (every task write's event) and
//! the reminder scheduler (due jobs), and the replay of dead letters. All end in the same [`crate::pipeline::Pipeline`].

pub mod chains;
pub mod in_process;
pub mod relay;
pub mod replay;
pub mod retry;
pub mod scheduler;

pub use in_process::InProcessSink;
pub use relay::{OutboxSink, Relay, SinkResult};
pub use replay::{ReplayOutcome, Replayer};
pub use retry::RetryPolicy;
pub use scheduler::Scheduler;
