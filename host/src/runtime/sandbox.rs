//! The sandbox of one call: a fresh `Store` whose state grants the guest nothing but a captured
//! stderr, under the per-call memory cap and epoch deadline.
//!
//! Everything a component can reach is here: no filesystem, network, environment or
//! arguments — only the `todo:events` types and a stderr that goes to the host's log.

use super::bindings::todo;
use super::limits::{Limits, MemoryCap};
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How often the engine's epoch ticks; call deadlines are counted in ticks of this length.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Everything a Store holds for one call. The WasiCtx grants no filesystem, network,
/// environment or arguments: only a stderr that goes to the host's log.
pub struct CallState {
    /// Built on the guest's first WASI call, if it makes one: most calls make none (a consumer
    /// that does not write to stderr never touches WASI), and building one — its builder seeds
    /// a random source and sets up clocks — was ~2 % of every call's cost.
    wasi: Option<WasiCtx>,
    stderr: MemoryOutputPipe,
    table: ResourceTable,
    pub(super) memory: MemoryCap,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let stderr = &self.stderr;
        let wasi = self
            .wasi
            .get_or_insert_with(|| WasiCtx::builder().stderr(stderr.clone()).build());
        WasiCtxView {
            ctx: wasi,
            table: &mut self.table,
        }
    }
}

/// The types-only WIT interface needs an (empty) host implementation.
impl todo::events::types::Host for CallState {}

/// A fresh store for one call, with its memory cap and deadline armed, and the pipe its stderr
/// goes to. `memory_bytes` and `call_timeout` are the component's own limits (the host-wide
/// defaults unless it was given its own: `component_limits.rs`); `limits` gives the rest.
pub(super) fn new_store(
    engine: &Engine,
    limits: &Limits,
    memory_bytes: usize,
    call_timeout: Duration,
) -> (Store<CallState>, MemoryOutputPipe) {
    let stderr = MemoryOutputPipe::new(limits.max_stderr_bytes);
    let state = CallState {
        wasi: None,
        stderr: stderr.clone(),
        table: ResourceTable::new(),
        memory: MemoryCap::new(memory_bytes),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.memory);
    let ticks = (call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_trap();
    (store, stderr)
}
