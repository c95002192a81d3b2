//! A component that passes every check of a hot swap — right world, named `audit`, consumes
//! `task-events` — and then traps on every message: what a bad release looks like once it is
//! serving. The host must roll it back on its own.

wit_bindgen::generate!({ path: "../../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{Effect, Failure, Manifest, Message, Timestamp};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "audit".into(),
            version: "0.0.0-traps".into(),
            topics: vec!["task-events".into()],
        }
    }

    fn handle(_topic: String, _message: Message, _now: Timestamp) -> Result<Vec<Effect>, Failure> {
        // With `panic = "abort"` (the release-wasm profile) this is a trap.
        panic!("this build traps on every message, on purpose")
    }
}

// Only in the wasm build: a native build (`cargo clippy --workspace`) cannot link the
// component-model export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
