//! Allocates (and touches) memory until it is stopped on every message: the memory cap must
//! trap the call, and the dead letter must name the memory limit.

wit_bindgen::generate!({ path: "../../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{Effect, Failure, Manifest, Message, Timestamp};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "memory-hog".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            topics: vec!["task-events".into()],
        }
    }

    fn handle(_topic: String, _message: Message, _now: Timestamp) -> Result<Vec<Effect>, Failure> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        // 4 GiB is more than a 32-bit memory can hold: the cap is hit long before.
        for _ in 0..4096 {
            hoard.push(std::hint::black_box(vec![0xA5u8; 1 << 20]));
        }
        Ok(vec![Effect::CancelReminder(format!("{}", hoard.len()))])
    }
}

// Only in the wasm build: a native build (`cargo clippy --workspace`) cannot link the
// component-model export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
