//! Ways messages come in without a person or a sidecar: the outbox relay (every task write's
//! event, handed to the in-process pipeline or to the sidecar), the reminder scheduler (due
//! jobs), and the replay of dead letters. All end in the same [`crate::pipeline::Pipeline`].

pub mod chains;
pub mod in_process;
pub mod relay;
pub mod replay;
pub mod retry;
pub mod scheduler;

pub use in_process::InProcessSink;
pub use relay::{OutboxSink, Relay};
pub use replay::{ReplayOutcome, Replayer};
pub use retry::RetryPolicy;
pub use scheduler::Scheduler;
