//! Runs a consumer component's `.wasm` with wasmtime alone — nothing of the host — so that each
//! component's tests check the component, and only the component, through its WIT contract.
//!
//! ```no_run
//! use testkit::{Consumer, event, task, ts, types::*};
//!
//! let audit = Consumer::load("audit");
//! let created = event(TaskOperation::Created, task("t1", "Pay rent"));
//! let effects = audit.handle("task-events", &created.into(), ts("2026-01-31T09:00:00Z")).unwrap();
//! assert!(matches!(effects[..], [Effect::AppendAudit(_)]));
//! ```

mod builders;
mod consumer;
mod locate;

pub use builders::{USER, event, recurrence, reminder_task, rfc3339, task, ts};
pub use consumer::Consumer;

/// Host-side bindings generated from `wit/`, the same contract the components are built against.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "consumer",
        // Tests compare whole effects, e.g. to check that the same input gives the same output.
        additional_derives: [PartialEq],
    });
}

/// The contract's value types (`Task`, `Message`, `Effect`, `Failure`, `Manifest`, …), to build
/// messages and to match on what a component returns.
pub mod types {
    pub use crate::bindings::todo::events::types::*;
}
