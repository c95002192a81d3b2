//! A loaded component and typed calls into it, one fresh `Store` and instance per call as the
//! host makes them, so no state can leak from one message to the next.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::bindings::{self, ConsumerPre};
use crate::locate::wasm_path;
use crate::types::{Effect, Failure, Manifest, Message, Timestamp};

/// A consumer component loaded from its `.wasm`, ready to be called.
#[derive(Clone)]
pub struct Consumer {
    name: String,
    pre: ConsumerPre<Sandbox>,
}

impl Consumer {
    /// Loads `<name>.wasm` from `$TASKHOST_COMPONENTS_DIR` (or `$TASKHOST_TEST_COMPONENTS_DIR`, set
    /// by `just test`) if set, else from `<target dir>/wasm32-wasip2/release-wasm/`.
    ///
    /// Panics with the command to run when the file is missing, and with wasmtime's reason when
    /// it does not compile or does not fit the `consumer` world. Compiled components are cached
    /// for the life of the test process: each test may call `load` without paying for it twice.
    pub fn load(name: &str) -> Self {
        let path = wasm_path(name);
        if !path.is_file() {
            panic!(
                "component {name}.wasm not found at {}: run `just build-components` \
                 (or `cargo build --profile release-wasm --target wasm32-wasip2 -p {name}`)",
                path.display()
            );
        }
        Self::load_file(name, &path)
    }

    /// Loads a component from an explicit path.
    pub fn load_file(name: &str, path: &Path) -> Self {
        static LOADED: OnceLock<Mutex<HashMap<PathBuf, ConsumerPre<Sandbox>>>> = OnceLock::new();
        let mut loaded = LOADED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let pre = match loaded.get(path) {
            Some(pre) => pre.clone(),
            None => {
                let pre =
                    prepare(path).unwrap_or_else(|e| panic!("cannot load component {name}: {e:?}"));
                loaded.insert(path.to_owned(), pre.clone());
                pre
            }
        };
        Consumer {
            name: name.to_owned(),
            pre,
        }
    }

    /// Calls `describe()`.
    pub fn describe(&self) -> Manifest {
        self.call(|store, consumer| consumer.todo_events_handler().call_describe(store))
    }

    /// Calls `handle(topic, message, now)`. A trap (e.g. a panic in the component) fails the test.
    pub fn handle(
        &self,
        topic: &str,
        message: &Message,
        now: Timestamp,
    ) -> Result<Vec<Effect>, Failure> {
        self.call(|store, consumer| {
            consumer
                .todo_events_handler()
                .call_handle(store, topic, message, now)
        })
    }

    fn call<R>(
        &self,
        f: impl FnOnce(&mut Store<Sandbox>, &bindings::Consumer) -> wasmtime::Result<R>,
    ) -> R {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let mut store = Store::new(self.pre.engine(), Sandbox::new(stderr.clone()));
        let result = self
            .pre
            .instantiate(&mut store)
            .and_then(|consumer| f(&mut store, &consumer));
        // Re-emitted through `eprint!` so that the test harness captures it: shown for a failing
        // test (or with `--nocapture`), hidden for a passing one.
        for line in String::from_utf8_lossy(&stderr.contents()).lines() {
            eprintln!("[{}] {line}", self.name);
        }
        result.unwrap_or_else(|e| panic!("component {} trapped: {e:?}", self.name))
    }
}

/// Compiles the component and links it against WASI p2 only: Rust's std on wasm32-wasip2 imports
/// `wasi:cli` and `wasi:io` even when the component never uses them; the contract itself imports
/// nothing.
fn prepare(path: &Path) -> wasmtime::Result<ConsumerPre<Sandbox>> {
    let engine = engine();
    let component = Component::from_file(engine, path)
        .with_context(|| format!("compiling {}", path.display()))?;
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let pre = linker.instantiate_pre(&component)?;
    ConsumerPre::new(pre).context("the component does not export the `consumer` world")
}

/// wasmtime's default engine, with its compiled-code cache (`~/.cache/wasmtime`): a Python or
/// JavaScript build (tens of MB) takes seconds to compile, and each test process compiles it
/// again otherwise. A cache that cannot be set up only costs time.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        match wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => eprintln!("testkit: no compiled-code cache ({e}); compiling every time"),
        }
        Engine::new(&config).expect("the default engine configuration is valid")
    })
}

/// Enough for any sane amount of logging from one call; more is cut off, not an error.
const STDERR_CAPACITY: usize = 1 << 20;

/// The store's state: a WASI context with no capabilities beyond stderr, so a component's
/// `eprintln!` and panic messages reach the test output. No files, network, env or args.
struct Sandbox {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl Sandbox {
    fn new(stderr: MemoryOutputPipe) -> Self {
        Sandbox {
            ctx: WasiCtxBuilder::new().stderr(stderr).build(),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "component no-such-component.wasm not found at ")]
    fn a_missing_component_says_how_to_build_it() {
        Consumer::load("no-such-component");
    }
}
