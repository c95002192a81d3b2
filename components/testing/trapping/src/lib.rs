//! Executes `unreachable` on every message, without a panic message: a bare trap.

wit_bindgen::generate!({ path: "../../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{Effect, Failure, Manifest, Message, Timestamp};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "trapping".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            topics: vec!["task-events".into()],
        }
    }

    fn handle(_topic: String, _message: Message, _now: Timestamp) -> Result<Vec<Effect>, Failure> {
        // The wasm `unreachable` instruction; a native build (clippy) only needs to compile.
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_arch = "wasm32"))]
        std::process::abort()
    }
}

// Only in the wasm build: a native build (`cargo clippy --workspace`) cannot link the
// component-model export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
