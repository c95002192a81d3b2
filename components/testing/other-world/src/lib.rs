//! A well-formed component for a world other than `todo:events/consumer`: the hot-swap tests
//! push it to check that the host refuses it, names the expected world, and keeps serving.

wit_bindgen::generate!({ path: "wit", world: "elsewhere" });

use exports::taskhost_test::elsewhere::greeter::Guest;

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> String {
        "audit".into()
    }

    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

// Only in the wasm build: a native build (`cargo clippy --workspace`) cannot link the
// component-model export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
