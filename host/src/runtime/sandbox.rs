//! The sandbox of one call: a fresh `Store` whose state grants the guest nothing but a captured
//! stderr, under the per-call memory cap and epoch deadline.
//!
//! Everything a component can reach is here: no filesystem, network, environment or
//! arguments — only the `todo:events` types and a stderr that goes to the host's log.

use super::bindings::todo;
use super::limits::{Limits, MemoryCap};
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// How often the engine's epoch ticks; call deadlines are counted in ticks of this length.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Everything a Store holds for one call. The WasiCtx grants no filesystem, network,
/// environment or arguments: only a stderr that goes to the host's log.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) memory: MemoryCap,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The types-only WIT interface needs an (empty) host implementation.
impl todo::events::types::Host for CallState {}

/// A fresh store for one call, with `limits` armed, and the pipe its stderr goes to.
pub(super) fn new_store(engine: &Engine, limits: &Limits) -> (Store<CallState>, MemoryOutputPipe) {
    let stderr = MemoryOutputPipe::new(limits.max_stderr_bytes);
    let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
    let state = CallState {
        wasi,
        table: ResourceTable::new(),
        memory: MemoryCap::new(limits.memory_bytes),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.memory);
    let ticks = (limits.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
    store.set_epoch_deadline(ticks);
    store.epoch_deadline_trap();
    (store, stderr)
}
