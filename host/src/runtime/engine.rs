//! One wasmtime [`Engine`] for the whole process, its [`Linker`], and the compiled-code cache.
//!
//! Per-message isolation comes from a fresh `Store` + instance for every call (`sandbox.rs`,
//! `call.rs`);
//! what makes that cheap is built here once: the pooling allocator (instances reuse pre-mapped
//! slots), `InstancePre` (imports resolved at load time), and a cache of compiled components
//! so a restart does not recompile (≈ 20 ms per component → ≈ 0.1 ms). There are two engines,
//! one per way a memory image reaches an instance (`image.rs`): copied for small components,
//! mapped copy-on-write for large ones.

use super::bindings::Consumer;
use super::component_limits::Ceilings;
use super::image::ImageInit;
use super::limits::Limits;
use super::sandbox::{CallState, EPOCH_TICK};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Bytes of each freed table zeroed in place instead of decommitted (see `Flavour::new`).
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Bytes at the start of each freed linear memory reset in place instead of decommitted (see
/// `Flavour::new`): a Rust consumer's whole initial memory (its 32 KiB stack, data and heap in
/// one 64 KiB wasm page, `components/guest-stack.rs`), with room for one that grows.
const MEMORY_KEEP_RESIDENT: usize = 256 << 10;

/// Default of [`RuntimeConfig::large_image_keep_resident`]: more than a Python or JavaScript
/// consumer writes while handling one message (~10 MiB of a 9–12 MiB memory; docs/benchmarks.md,
/// item 32).
pub const LARGE_IMAGE_KEEP_RESIDENT: usize = 16 << 20;

/// Instance slots freed per batched decommit (see `Runtime::new`).
const DECOMMIT_BATCH: usize = 16;

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// The defaults of every component.
    pub limits: Limits,
    /// The most any one component may be given (per-component limits).
    pub ceilings: Ceilings,
    /// Where compiled components are cached (`None`: compile on every load).
    pub cache_dir: Option<PathBuf>,
    /// Concurrent instances the pooling allocator reserves slots for.
    pub max_instances: u32,
    /// Bytes of the pages a large-image component's instance wrote (see `image.rs`: Python,
    /// JavaScript) that are reset in place when it is freed rather than decommitted, so that
    /// the next instance in the slot does not fault them in again. Each pool slot such a
    /// component used keeps up to this much resident until it is reused. Only taken where the
    /// kernel reports written pages (`PAGEMAP_SCAN`, Linux 6.7+); elsewhere wasmtime would reset
    /// the whole window on every free, so large images keep what small ones keep.
    pub large_image_keep_resident: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            ceilings: Ceilings::default(),
            cache_dir: None,
            max_instances: 1000,
            large_image_keep_resident: LARGE_IMAGE_KEEP_RESIDENT,
        }
    }
}

/// The process-wide wasm runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    /// Components whose memory image is copied into each instance (image.rs).
    copied: Arc<Flavour>,
    /// Components whose memory image is mapped copy-on-write.
    mapped: Arc<Flavour>,
    pub(super) config: Arc<RuntimeConfig>,
    _ticker: Arc<EpochTicker>,
}

/// One engine and what goes with it. A component compiled by one engine can only be
/// instantiated in stores of that engine, and its compiled code only cached for it.
pub(super) struct Flavour {
    pub engine: Engine,
    pub linker: Linker<CallState>,
    /// Hex digest of everything that makes compiled code incompatible (wasmtime version,
    /// target, settings, image init): part of the cache key.
    pub fingerprint: String,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        if !PoolingAllocationConfig::is_pagemap_scan_available() {
            tracing::info!(
                keep_resident_bytes = MEMORY_KEEP_RESIDENT,
                "the kernel has no PAGEMAP_SCAN (Linux < 6.7): freed instance memories are reset \
                 by their first bytes, and large images keep only what small ones keep"
            );
        }
        let copied = Arc::new(Flavour::new(&config, ImageInit::Copied)?);
        let mapped = Arc::new(Flavour::new(&config, ImageInit::Mapped)?);
        let ticker = Arc::new(EpochTicker::start(vec![
            copied.engine.clone(),
            mapped.engine.clone(),
        ]));
        Ok(Self {
            copied,
            mapped,
            config: Arc::new(config),
            _ticker: ticker,
        })
    }

    /// The engine (and linker) for components whose image reaches instances `init`'s way.
    pub(super) fn flavour(&self, init: ImageInit) -> &Flavour {
        match init {
            ImageInit::Copied => &self.copied,
            ImageInit::Mapped => &self.mapped,
        }
    }

    /// The host-wide defaults.
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// The most any one component may be given.
    pub fn ceilings(&self) -> &Ceilings {
        &self.config.ceilings
    }
}

impl Flavour {
    fn new(config: &RuntimeConfig, init: ImageInit) -> anyhow::Result<Self> {
        let keep_resident = keep_resident(config, init);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 4)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * 4)
            // Each slot is sized for the largest memory any component may be given, so that a
            // component with its own, larger limit fits (component_limits.rs). Only the pages
            // an instance touches are committed; docs/benchmarks.md measures what a larger
            // slot costs the small components.
            .max_memory_size(config.ceilings.memory_bytes.max(config.limits.memory_bytes))
            // Freeing an instance's slot is an madvise + TLB shootdown; one per message was
            // ~6 % of the per-message host cost (docs/benchmarks.md). Batch them: a slot waits
            // in the queue until its batch is flushed, which the pool's size absorbs.
            .decommit_batch_size(DECOMMIT_BATCH)
            // The first 256 KiB of a freed memory are reset in place (only the pages the
            // instance wrote, found with PAGEMAP_SCAN where the kernel has it) rather than
            // decommitted: every fresh instance writes its stack, data and first heap pages,
            // and decommitting them meant a zero-fill fault, an madvise and a cross-core TLB
            // flush per page per message. Route CPU per delivery 305/340/397/393 →
            // 246/275/310/285 µs (docs/benchmarks.md). It pays only together with the
            // consumers' 64 KiB stack: with wasm-ld's 1 MiB stack first in memory, the window
            // held untouched stack and every written page lay above it (445 → 464 µs at
            // 64 KiB, 708 µs at 1 MiB, measured before the stack was cut). Large images
            // (Python, JavaScript) get a larger window: see `keep_resident`.
            .linear_memory_keep_resident(keep_resident)
            .pagemap_scan(wasmtime::Enabled::Auto)
            // A freed instance's tables are zeroed in place rather than decommitted: a Rust
            // consumer's tables are a page or two, and decommitting them meant that the next
            // instance's first lazy-init write to a table faulted on the zero page, each fault
            // a cross-core TLB flush (~5 % of the wasm threads' CPU on the Dapr route).
            .table_keep_resident(TABLE_KEEP_RESIDENT);
        let mut cfg = Config::new();
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .memory_init_cow(init == ImageInit::Mapped)
            .epoch_interruption(true)
            // Sync, instance-per-message host: the component-model-async machinery would
            // cost ~1.3 µs per message for nothing.
            .concurrency_support(false);
        // For profiling only: `perf` then names the guests' functions (`wasm[0]::function[N]`)
        // from /tmp/perf-<pid>.map instead of showing bare JIT addresses
        // (scripts/profile-route.sh).
        if std::env::var_os("TASKHOST_WASM_PERFMAP").is_some_and(|v| v == "1") {
            cfg.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&cfg)?;

        let mut linker = Linker::new(&engine);
        // Rust's std on wasm32-wasip2 imports wasi:cli and wasi:io, so they must be linked;
        // the WasiCtx each call gets grants nothing but a captured stderr (see call.rs).
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Consumer::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)?;

        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        init.label().hash(&mut h);
        let fingerprint = format!("{:016x}", h.finish());
        Ok(Self {
            engine,
            linker,
            fingerprint,
        })
    }
}

/// Bytes of a freed memory reset in place for components whose image reaches instances `init`'s
/// way. Small images: [`MEMORY_KEEP_RESIDENT`]. Large ones (Python, JavaScript): the configured
/// window. Decommitting what such an instance wrote meant the next one faulted ~10 MiB back
/// in, each fault and each batched decommit a cross-core TLB flush, with the pool's threads
/// faulting at once: on the Dapr route with the Python audit the host spent 5,000–5,900 µs of
/// CPU per delivery, 1,900–2,300 with the window (docs/benchmarks.md, item 32). Its price: each
/// slot such a component used keeps what it wrote until reused — about 10 MiB per wasm thread
/// once all have run one, kept at rest — though the peak under load is lower, since slots no
/// longer wait for their batched decommit holding the same pages. Without `PAGEMAP_SCAN`,
/// wasmtime resets the window's first bytes whole, written or not (a 16 MiB copy per
/// message), so there large images keep what small ones keep.
fn keep_resident(config: &RuntimeConfig, init: ImageInit) -> usize {
    match init {
        ImageInit::Copied => MEMORY_KEEP_RESIDENT,
        ImageInit::Mapped if PoolingAllocationConfig::is_pagemap_scan_available() => {
            config.large_image_keep_resident
        }
        ImageInit::Mapped => MEMORY_KEEP_RESIDENT.min(config.large_image_keep_resident),
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] so calls past their deadline trap.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engines: Vec<Engine>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    for engine in &engines {
                        engine.increment_epoch();
                    }
                }
            })
            .expect("spawning the epoch thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
