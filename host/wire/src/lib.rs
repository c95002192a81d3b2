//! taskhost's vocabulary (`domain`: ids, tasks, topic messages, effects) and its JSON wire
//! forms (`wire`: event decoding and encoding, both event schemas).
//!
//! A crate of its own, with no I/O and no dependency beyond serde, chrono and uuid, so that
//! the fuzz target of the decoding path (`host/fuzz/`) builds in seconds instead of rebuilding
//! wasmtime with coverage instrumentation. The host re-exports both modules
//! (`taskhost::domain`, `taskhost::wire`).

pub mod domain;
pub mod wire;
