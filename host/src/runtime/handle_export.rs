//! The component's `handle` export, found and type-checked once, when the component is loaded.
//!
//! The generated bindings (`ConsumerPre::instantiate`) look every export up by name and check
//! its whole signature against the WIT types again on each instantiation — for `handle`, the
//! `message` record with its nested task, options and lists: `typecheck_tuple` and
//! `get_typed_func` were ~5 % of the host's CPU on the Dapr route, paid per message per
//! component. The component cannot change after loading, so one check is enough.

use super::bindings::wit;
use super::sandbox::CallState;
use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, Instance, InstancePre, TypedFunc};

/// The interface the world exports `handle` in.
const HANDLER: &str = "todo:events/handler@0.1.0";

/// What `handle(topic, message, now)` returns.
type HandleResult = Result<Vec<wit::Effect>, wit::Failure>;

/// Where `handle` is in one component; type-checked against the host's WIT when made.
#[derive(Clone, Copy, Debug)]
pub(super) struct HandleExport {
    index: ComponentExportIndex,
}

impl HandleExport {
    /// Finds `handle` in `pre`'s component and checks its signature on `instance` (an instance
    /// of that component, e.g. the one `describe` ran on at load time).
    pub fn find(
        pre: &InstancePre<CallState>,
        store: &mut Store<CallState>,
        instance: &Instance,
    ) -> anyhow::Result<Self> {
        let component = pre.component();
        let interface = component
            .get_export_index(None, HANDLER)
            .ok_or_else(|| anyhow::anyhow!("the component exports no `{HANDLER}`"))?;
        let index = component
            .get_export_index(Some(&interface), "handle")
            .ok_or_else(|| anyhow::anyhow!("`{HANDLER}` has no `handle`"))?;
        instance
            .get_typed_func::<(&str, &wit::Message, i64), (HandleResult,)>(&mut *store, index)?;
        Ok(Self { index })
    }

    /// Calls `handle` on `instance`, a fresh instance of the component this was found in.
    pub fn call(
        self,
        store: &mut Store<CallState>,
        instance: &Instance,
        topic: &str,
        message: &wit::Message,
        now_ms: i64,
    ) -> wasmtime::Result<HandleResult> {
        let func = instance
            .get_func(&mut *store, self.index)
            .ok_or_else(|| wasmtime::Error::msg("`handle` is missing from the instance"))?;
        // SAFETY: `find` checked this export's signature against exactly these types on an
        // instance of the same component (`LoadedComponent` keeps the two together), and a
        // component's types do not change after it is compiled.
        let typed = unsafe {
            TypedFunc::<(&str, &wit::Message, i64), (HandleResult,)>::new_unchecked(func)
        };
        let (result,) = typed.call(&mut *store, (topic, message, now_ms))?;
        Ok(result)
    }
}
