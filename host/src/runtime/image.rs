//! How a fresh instance gets its component's memory image: copied in, or mapped copy-on-write.
//!
//! Every message runs on a fresh instance, so this is paid once per call. Measured on the Dapr
//! route (SQLite, single, c64; docs/benchmarks.md):
//! - **Mapped** (wasmtime's default, `memory_init_cow`): the image is mapped from a memfd and
//!   pages are shared until written. A Rust consumer reads an image page, then writes it: the
//!   write is a write-protect fault whose TLB flush interrupts every core running one of the
//!   host's threads — ~7 % of the host's CPU in `smp_call_function_many_cond` on the route.
//! - **Copied** (`memory_init_cow(false)`): the data segments are written into the slot on
//!   instantiation. No shared page, no write-protect fault, no flush; the price is the copy, a
//!   few KiB for a Rust consumer but the whole 12 MiB for a Python or JavaScript one (~4× slower
//!   per message when they were copied too).
//!
//! So the host keeps one engine of each kind and picks per component by its size. The image is
//! made of the data segments inside the file, so a small file has a small image: files up to
//! [`COPY_UP_TO_BYTES`] are copied, larger ones mapped.

/// The largest component file whose memory image is copied into each instance.
pub const COPY_UP_TO_BYTES: usize = 1 << 20;

/// How a component's memory image reaches each fresh instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageInit {
    /// Written into the instance's memory on instantiation (small images).
    Copied,
    /// Mapped copy-on-write from the compiled image (large images).
    Mapped,
}

impl ImageInit {
    /// The way for a component of `bytes`.
    pub fn for_component(bytes: &[u8]) -> Self {
        if bytes.len() <= COPY_UP_TO_BYTES {
            Self::Copied
        } else {
            Self::Mapped
        }
    }

    /// Names the way in the compiled-code cache's file names and in logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Copied => "copied",
            Self::Mapped => "mapped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_are_copied_and_large_ones_mapped() {
        assert_eq!(ImageInit::for_component(&[0; 1000]), ImageInit::Copied);
        assert_eq!(
            ImageInit::for_component(&vec![0; COPY_UP_TO_BYTES]),
            ImageInit::Copied
        );
        assert_eq!(
            ImageInit::for_component(&vec![0; COPY_UP_TO_BYTES + 1]),
            ImageInit::Mapped
        );
    }
}
