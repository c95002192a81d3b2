//! taskhost: hosts the Todo system's event consumers as sandboxed WebAssembly components.
//!
//! A message's path is one straight line, whichever way it came in (the embedded outbox relay,
//! a Dapr delivery single or bulk, a dead-letter topic, a replay):
//!
//! ```text
//! way in ─▶ pipeline: decode ─▶ route ─▶ call components ─▶ effects + exactly-once record (one
//!           transaction) ─▶ verdicts ─▶ dead letters ─▶ answer ─▶ the way in's own words
//! ```
//!
//! Modules, from the outside in (each uses only those after it; `just lint` checks it):
//! `cli`, `app`, `config` (the binary); `api` (ways in for people), `dapr` and `delivery`
//! (ways in for messages), `watch` (for files), `http` (what the HTTP ways in share);
//! `pipeline` (the straight line above); `rollout` (shadow and canary candidates the pipeline
//! routes to and hands messages to); `runtime` (wasm), `effects` and `sockets` (I/O);
//! `storage`; and the leaves `metrics`, `telemetry`, `wire` (JSON ⇄ `domain`).

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod dapr;
pub mod delivery;
pub mod effects;
pub mod http;
pub mod invoke;
pub mod metrics;
pub mod pipeline;
pub mod rollout;
pub mod runtime;
pub mod sockets;
pub mod storage;
pub mod telemetry;
pub mod watch;

/// `domain` and `wire` live in their own crate (host/wire) so the fuzz target builds cheaply.
pub use taskhost_wire::{domain, wire};
