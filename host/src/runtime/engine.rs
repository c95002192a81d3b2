//! One wasmtime [`Engine`] for the whole process, its [`Linker`], and the compiled-code cache.
//!
//! Per-message isolation comes from a fresh `Store` + instance for every call (`sandbox.rs`,
//! `call.rs`);
//! what makes that cheap is built here once: the pooling allocator (instances reuse pre-mapped
//! slots), `InstancePre` (imports resolved at load time), and a cache of compiled components
//! so a restart does not recompile (≈ 20 ms per component → ≈ 0.1 ms).

use super::bindings::Consumer;
use super::limits::Limits;
use super::sandbox::{CallState, EPOCH_TICK};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Instance slots freed per batched decommit (see `Runtime::new`).
const DECOMMIT_BATCH: usize = 16;

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub limits: Limits,
    /// Where compiled components are cached (`None`: compile on every load).
    pub cache_dir: Option<PathBuf>,
    /// Concurrent instances the pooling allocator reserves slots for.
    pub max_instances: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            cache_dir: None,
            max_instances: 1000,
        }
    }
}

/// The process-wide wasm runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(super) engine: Engine,
    pub(super) linker: Arc<Linker<CallState>>,
    pub(super) config: Arc<RuntimeConfig>,
    /// Hex digest of everything that makes compiled code incompatible (wasmtime version,
    /// target, settings): part of the cache key.
    pub(super) engine_fingerprint: String,
    _ticker: Arc<EpochTicker>,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances)
            .total_core_instances(config.max_instances * 4)
            .total_memories(config.max_instances * 2)
            .total_tables(config.max_instances * 4)
            .max_memory_size(config.limits.memory_bytes)
            // Freeing an instance's slot is an madvise + TLB shootdown; one per message was
            // ~6 % of the per-message host cost (docs/benchmarks.md). Batch them: a slot waits
            // in the queue until its batch is flushed, which the pool's size absorbs.
            .decommit_batch_size(DECOMMIT_BATCH);
        let mut cfg = Config::new();
        // Copy each instance's data segments into fresh memory rather than mapping the
        // compiled image copy-on-write. A consumer writes its few KiB of statics on every call:
        // with the image mapped, each such write is a copy-on-write fault whose TLB flush
        // interrupts the other core (the host's threads run on both); copying them in takes
        // ordinary zero-fill faults, which flush nothing. Measured on the Dapr route (SQLite,
        // single, c64, same run, 2 × 8 s each): 586/595 → 548/474 µs of CPU per delivery.
        cfg.memory_init_cow(false);
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .epoch_interruption(true)
            // Sync, instance-per-message host: the component-model-async machinery would
            // cost ~1.3 µs per message for nothing.
            .concurrency_support(false);
        let engine = Engine::new(&cfg)?;

        let mut linker = Linker::new(&engine);
        // Rust's std on wasm32-wasip2 imports wasi:cli and wasi:io, so they must be linked;
        // the WasiCtx each call gets grants nothing but a captured stderr (see call.rs).
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Consumer::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)?;

        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_fingerprint = format!("{:016x}", h.finish());

        let ticker = Arc::new(EpochTicker::start(engine.clone()));
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            config: Arc::new(config),
            engine_fingerprint,
            _ticker: ticker,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] so calls past their deadline trap.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
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
