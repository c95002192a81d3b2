//! The build script of the shipped consumers and the empty component (each `Cargo.toml` names
//! it as `build`): the guest stack, 64 KiB instead of wasm-ld's 1 MiB. Rust puts the stack first in linear
//! memory, so with 1 MiB every page a fresh instance writes (the top of the stack, the data,
//! the heap) lay above 1 MiB, out of the host pool's keep-resident window
//! (`host/src/runtime/engine.rs`, `MEMORY_KEEP_RESIDENT`), and was faulted in and decommitted
//! on every message. The calls are shallow (no recursion over their input).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=65536");
    }
}
