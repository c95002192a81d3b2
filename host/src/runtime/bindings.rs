//! Host bindings generated from `wit/` — the only place the WIT types enter the host.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "consumer",
});

pub use todo::events::types as wit;
