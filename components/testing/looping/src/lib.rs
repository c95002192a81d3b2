//! Loops forever on every message: the call timeout (epoch interruption) must end the call,
//! and the message must be retried, then dead-lettered with a reason naming the timeout.

wit_bindgen::generate!({ path: "../../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{Effect, Failure, Manifest, Message, Timestamp};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "looping".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            topics: vec!["task-events".into()],
        }
    }

    fn handle(_topic: String, _message: Message, _now: Timestamp) -> Result<Vec<Effect>, Failure> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

// Only in the wasm build: a native build (`cargo clippy --workspace`) cannot link the
// component-model export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
