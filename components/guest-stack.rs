//! The build script of the shipped consumers and the empty component (each `Cargo.toml` names
//! it as `build`): the guest stack, 32 KiB instead of wasm-ld's 1 MiB.
//!
//! Rust puts the stack first in linear memory, then the data, then the heap up to the end of
//! the initial memory. Every page of that initial memory ends up written and is reset when the
//! instance's pool slot is freed (`host/src/runtime/engine.rs`, `MEMORY_KEEP_RESIDENT`), so the
//! initial memory's size is a cost paid per message. With 32 KiB of stack, the stack, the data
//! (~11 KiB) and a 21 KiB heap fit in one 64 KiB wasm page, where 64 KiB of stack needed two:
//! per-call cost of each component −1 to −1.5 µs (docs/benchmarks.md). A message whose values
//! need more heap grows the memory, as any would.
//!
//! The calls are shallow (no recursion over their input): the four consumers ran the bench's
//! messages with a 4 KiB stack. A stack overflow would not corrupt anything: below address 0
//! is out of bounds, so it traps and the message is retried, then dead-lettered.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=32768");
    }
}
