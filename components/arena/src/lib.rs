//! The global allocator of the consumer components: a bump arena.
//!
//! The host gives every message a fresh instance and throws it away after the call (nothing is
//! shared between two messages), so a consumer's heap lives for one call and never needs to
//! give memory back. A general-purpose allocator is wasted on that: wasi-libc's dlmalloc, which
//! Rust's `System` allocator uses on wasm32-wasip2, set itself up on each instance's first
//! allocation and kept free lists for a heap that is discarded a few microseconds later. It was
//! the largest single item of a consumer's own code in a profile (recurrence: ~1.6 of its
//! ~3.7 µs inside the guest, in `dlmalloc`, `dlfree` and their wrappers). Measured per
//! component in docs/benchmarks.md (item 28).
//!
//! How it works: memory is taken from `System` in chunks of [`CHUNK`] bytes (one chunk holds
//! everything the four consumers allocate for the benchmark's messages, so an instance still
//! fits its first wasm page) and handed out by moving a pointer. Freeing the most recent
//! allocation gives its space back, and growing the most recent one extends it in place —
//! the common cases of building a string or a vector; any other free is a no-op, and any other
//! growth copies. An allocation larger than a chunk gets a chunk of its own. What is not given
//! back is bounded by what the message's handling allocates in all, and the host's per-call
//! memory cap still applies: a component that outgrows it traps, and the message is retried,
//! then dead-lettered, as with any allocator.
//!
//! Only for instances that live for one call: a long-lived program would grow without bound.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The bytes taken from `System` at a time.
pub const CHUNK: usize = 16 << 10;

/// A bump allocator over chunks taken from `System`; see the crate documentation.
pub struct Arena {
    /// Where the current chunk starts; 0 before the first allocation.
    start: Cell<usize>,
    /// The next free byte of the current chunk.
    top: Cell<usize>,
    /// One past the current chunk's last byte.
    end: Cell<usize>,
}

// The cells are touched without synchronisation, which is sound only where there is one
// thread: wasm32 without the `atomics` feature (wasm32-wasip2 is such a target). Elsewhere an
// `Arena` can be used directly, as the tests do, but not as a `static` global allocator.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl Sync for Arena {}

impl Arena {
    pub const fn new() -> Self {
        Self {
            start: Cell::new(0),
            top: Cell::new(0),
            end: Cell::new(0),
        }
    }

    /// `layout` from the current chunk, or from a new one when it does not fit.
    #[inline]
    fn bump(&self, layout: Layout) -> *mut u8 {
        // `Layout` guarantees a power-of-two alignment and that size rounded up to it does not
        // overflow `isize`; the chunk's addresses are real ones, so neither sum can wrap.
        let at = self.top.get().next_multiple_of(layout.align());
        let new_top = at + layout.size();
        if self.start.get() != 0 && new_top <= self.end.get() {
            self.top.set(new_top);
            at as *mut u8
        } else {
            self.refill(layout)
        }
    }

    /// Starts a new chunk big enough for `layout` and allocates it there. The rest of the
    /// previous chunk is left unused.
    #[cold]
    fn refill(&self, layout: Layout) -> *mut u8 {
        let Some(size) = layout
            .size()
            .checked_add(layout.align())
            .map(|needed| needed.max(CHUNK))
        else {
            return std::ptr::null_mut();
        };
        let Ok(chunk_layout) = Layout::from_size_align(size, 16) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `chunk_layout` has a non-zero size.
        let chunk = unsafe { System.alloc(chunk_layout) };
        if chunk.is_null() {
            return chunk;
        }
        let start = chunk as usize;
        self.start.set(start);
        self.top.set(start);
        self.end.set(start + size);
        self.bump(layout)
    }

    /// Whether `ptr..ptr + size` is the most recent allocation of the current chunk.
    #[inline]
    fn is_latest(&self, ptr: *mut u8, size: usize) -> bool {
        let at = ptr as usize;
        at >= self.start.get() && at + size == self.top.get()
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for Arena {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.bump(layout)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.is_latest(ptr, layout.size()) {
            self.top.set(ptr as usize);
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.is_latest(ptr, layout.size()) {
            // The caller guarantees that `new_size`, rounded up to the alignment, does not
            // overflow `isize`.
            let new_top = ptr as usize + new_size;
            if new_top <= self.end.get() {
                self.top.set(new_top);
                return ptr;
            }
        } else if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the caller guarantees that `new_size` with `layout`'s alignment is a valid
        // layout of non-zero size.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = self.bump(new_layout);
        if !new.is_null() {
            // SAFETY: `new` is a fresh allocation (it cannot overlap `ptr`'s, which lies below
            // the old top or in an earlier chunk) of at least the bytes copied.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    fn fill(ptr: *mut u8, size: usize, byte: u8) {
        unsafe { std::ptr::write_bytes(ptr, byte, size) };
    }

    fn holds(ptr: *mut u8, size: usize, byte: u8) -> bool {
        unsafe { std::slice::from_raw_parts(ptr, size) }
            .iter()
            .all(|&b| b == byte)
    }

    #[test]
    fn allocations_are_aligned_and_do_not_overlap() {
        let arena = Arena::new();
        let mut live = Vec::new();
        for (i, (size, align)) in [(3, 1), (8, 8), (5, 2), (24, 16), (1, 1), (40, 4), (7, 64)]
            .into_iter()
            .enumerate()
        {
            let ptr = unsafe { arena.alloc(layout(size, align)) };
            assert!(!ptr.is_null());
            assert_eq!(ptr as usize % align, 0, "allocation {i} misaligned");
            fill(ptr, size, i as u8);
            live.push((ptr, size, i as u8));
        }
        for (ptr, size, byte) in live {
            assert!(
                holds(ptr, size, byte),
                "an allocation was overwritten by a later one"
            );
        }
    }

    #[test]
    fn freeing_the_latest_allocation_gives_its_space_back() {
        let arena = Arena::new();
        let first = unsafe { arena.alloc(layout(32, 8)) };
        let second = unsafe { arena.alloc(layout(32, 8)) };
        unsafe { arena.dealloc(second, layout(32, 8)) };
        let third = unsafe { arena.alloc(layout(32, 8)) };
        assert_eq!(third, second, "the freed top was not reused");
        // An earlier allocation's free is a no-op: its space is not handed out again while a
        // later one lives.
        unsafe { arena.dealloc(first, layout(32, 8)) };
        let fourth = unsafe { arena.alloc(layout(32, 8)) };
        assert!(fourth as usize >= third as usize + 32);
    }

    #[test]
    fn growing_the_latest_allocation_extends_it_in_place() {
        let arena = Arena::new();
        let ptr = unsafe { arena.alloc(layout(16, 1)) };
        fill(ptr, 16, 7);
        let grown = unsafe { arena.realloc(ptr, layout(16, 1), 1000) };
        assert_eq!(grown, ptr);
        assert!(holds(grown, 16, 7));
        let next = unsafe { arena.alloc(layout(1, 1)) };
        assert!(
            next as usize >= ptr as usize + 1000,
            "the grown block was handed out again"
        );
        // Shrinking it back (now that it is not the latest) keeps it where it is.
        let shrunk = unsafe { arena.realloc(grown, layout(1000, 1), 10) };
        assert_eq!(shrunk, grown);
    }

    #[test]
    fn growing_an_earlier_allocation_moves_and_copies_it() {
        let arena = Arena::new();
        let ptr = unsafe { arena.alloc(layout(16, 8)) };
        fill(ptr, 16, 9);
        let later = unsafe { arena.alloc(layout(8, 8)) };
        fill(later, 8, 1);
        let grown = unsafe { arena.realloc(ptr, layout(16, 8), 64) };
        assert_ne!(grown, ptr);
        assert_eq!(grown as usize % 8, 0);
        assert!(holds(grown, 16, 9), "the contents were not copied");
        assert!(holds(later, 8, 1), "the move overwrote a later allocation");
    }

    #[test]
    fn a_full_chunk_is_followed_by_a_new_one() {
        let arena = Arena::new();
        let mut blocks = Vec::new();
        // Three chunks' worth of 1 KiB blocks.
        for i in 0..3 * CHUNK / 1024 {
            let ptr = unsafe { arena.alloc(layout(1024, 8)) };
            assert!(!ptr.is_null());
            fill(ptr, 1024, i as u8);
            blocks.push(ptr);
        }
        for (i, &ptr) in blocks.iter().enumerate() {
            assert!(holds(ptr, 1024, i as u8), "block {i} was overwritten");
        }
        // Growing the latest block past its chunk's end moves it to a new chunk.
        let last = *blocks.last().unwrap();
        let grown = unsafe { arena.realloc(last, layout(1024, 8), CHUNK) };
        assert!(!grown.is_null());
        assert!(holds(grown, 1024, (blocks.len() - 1) as u8));
    }

    #[test]
    fn an_allocation_larger_than_a_chunk_gets_its_own() {
        let arena = Arena::new();
        let small = unsafe { arena.alloc(layout(100, 1)) };
        fill(small, 100, 3);
        let big = unsafe { arena.alloc(layout(4 * CHUNK, 4096)) };
        assert!(!big.is_null());
        assert_eq!(big as usize % 4096, 0);
        fill(big, 4 * CHUNK, 4);
        let after = unsafe { arena.alloc(layout(100, 1)) };
        fill(after, 100, 5);
        assert!(holds(small, 100, 3) && holds(big, 4 * CHUNK, 4) && holds(after, 100, 5));
    }

    #[test]
    fn a_layout_the_system_cannot_give_is_refused_with_null() {
        let arena = Arena::new();
        let huge = layout(isize::MAX as usize - 4096, 1);
        assert!(unsafe { arena.alloc(huge) }.is_null());
        // And the arena still works afterwards.
        assert!(!unsafe { arena.alloc(layout(8, 8)) }.is_null());
    }
}
