//! taskhost: hosts the Todo system's event consumers as sandboxed WebAssembly components.
//!
//! A message's path is one straight line, whichever way it came in (the embedded outbox relay,
//! the reminder scheduler, or later a Dapr delivery):
//!
//! ```text
//! delivery ─▶ wire::decode ─▶ runtime (route, call component) ─▶ effects (one transaction) ─▶ ack
//! ```
//!
//! Modules, from the outside in: `cli` and `api` (ways in for people), `delivery` (ways in for
//! messages), `pipeline` (the straight line above), `runtime` (wasm), `effects` and `storage`
//! (I/O), `wire` (JSON ⇄ `domain`).

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod dapr;
pub mod delivery;
pub mod domain;
pub mod effects;
pub mod invoke;
pub mod metrics;
pub mod pipeline;
pub mod runtime;
pub mod sockets;
pub mod storage;
pub mod telemetry;
pub mod watch;
pub mod wire;
