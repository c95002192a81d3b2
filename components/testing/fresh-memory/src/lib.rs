//! Fails any message that finds memory an earlier message wrote: the host's promise of a fresh
//! instance per message, checked from inside the guest where the host reuses memory the most.
//!
//! Its 2 MiB of initialised data make the file larger than the host's copy threshold, so the
//! host maps its image copy-on-write and, when an instance is freed, resets the pages it wrote
//! in place — copied back from the image, or zeroed above it — instead of giving them back
//! (`host/src/runtime/engine.rs`, `keep_resident`). Every message reads one byte per page of
//! the image and of 4 MiB of heap, fails naming the first that is not pristine, then writes
//! them all, so the next instance in the same slot sees them if the reset missed any.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

wit_bindgen::generate!({ path: "../../../wit", world: "consumer" });

use exports::todo::events::handler::Guest;
use todo::events::types::{Effect, Failure, Manifest, Message, Timestamp};

/// The image's bytes: non-zero, so that they are data in the file, not zero-filled memory.
const PRISTINE: u8 = 0x5A;
const IMAGE_BYTES: usize = 2 << 20;
static IMAGE: [AtomicU8; IMAGE_BYTES] = [const { AtomicU8::new(PRISTINE) }; IMAGE_BYTES];

/// Heap the message allocates (not zeroed by the allocator: fresh memory is zero).
const HEAP_BYTES: usize = 4 << 20;
/// One byte checked and written per host page.
const PAGE: usize = 4096;
/// What a message leaves behind.
const WRITTEN: u8 = 0xA5;

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            name: "fresh-memory".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            topics: vec!["task-events".into()],
        }
    }

    fn handle(_topic: String, _message: Message, _now: Timestamp) -> Result<Vec<Effect>, Failure> {
        for (i, byte) in IMAGE.iter().enumerate().step_by(PAGE) {
            let found = byte.load(Relaxed);
            if found != PRISTINE {
                return Err(Failure::Drop(format!(
                    "image byte {i} is {found:#04x}, not {PRISTINE:#04x}: an earlier message's write"
                )));
            }
        }
        let layout = std::alloc::Layout::from_size_align(HEAP_BYTES, PAGE).expect("a valid layout");
        // SAFETY: the layout is not zero-sized; the memory is only read and written as bytes
        // and freed below with the same layout.
        let heap = unsafe { std::alloc::alloc(layout) };
        if heap.is_null() {
            return Err(Failure::Drop("no memory for 4 MiB of heap".into()));
        }
        let mut dirty = None;
        for i in (0..HEAP_BYTES).step_by(PAGE) {
            // SAFETY: `i` < HEAP_BYTES, inside the allocation; volatile so the read is not
            // assumed from the write below.
            unsafe {
                let at = heap.add(i);
                let found = at.read_volatile();
                if found != 0 && dirty.is_none() {
                    dirty = Some((i, found));
                }
                at.write_volatile(WRITTEN);
            }
        }
        // SAFETY: allocated above with this layout.
        unsafe { std::alloc::dealloc(heap, layout) };
        for byte in IMAGE.iter().step_by(PAGE) {
            byte.store(WRITTEN, Relaxed);
        }
        match dirty {
            Some((i, found)) => Err(Failure::Drop(format!(
                "heap byte {i} is {found:#04x}, not 0: an earlier message's write"
            ))),
            None => Ok(Vec::new()),
        }
    }
}

// Only in the wasm build: a native build (`cargo clippy --workspace`) cannot link the
// component-model export names.
#[cfg(target_arch = "wasm32")]
export!(Component);
