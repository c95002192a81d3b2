//! The wasmtime floor for `taskhost-bench`: a component of the real world that takes every
//! topic and answers with no effects. Everything the host spends on it — a fresh `Store`, an
//! instance from the `InstancePre`, lifting and lowering the message — is what any consumer
//! costs before doing any work, so the benchmarks report each real component beside it.

/// Built like the consumers (`components/arena`, `guest-stack.rs`), so that the floor is what
/// any of them costs before doing any work.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: arena::Arena = arena::Arena::new();

wit_bindgen::generate!({ path: "../../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{Effect, Failure, Manifest, Message, Timestamp};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "empty".into(),
            version: "0.0.0-floor".into(),
            topics: vec![
                "task-events".into(),
                "task-updates".into(),
                "reminders".into(),
            ],
        }
    }

    fn handle(_topic: String, _message: Message, _now: Timestamp) -> Result<Vec<Effect>, Failure> {
        Ok(Vec::new())
    }
}

// Only in the wasm build: a native build (`cargo clippy --workspace`) cannot link the
// component-model export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
