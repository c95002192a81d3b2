//! One component call: a fresh `Store` and instance from the cached `InstancePre`, with the
//! per-call limits armed, stderr captured, and the result checked against the effect limits.

use super::bindings::{ConsumerPre, wit};
use super::component::LoadedComponent;
use super::engine::{EPOCH_TICK, Runtime};
use super::limits::MemoryCap;
use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Everything a Store holds for one call. The WasiCtx grants no filesystem, network,
/// environment or arguments: only a stderr that goes to the host's log.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Why a call produced no answer from the component. Each is contained to this one call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("timed out: ran past the call timeout of {0:?} (TASKHOST_CALL_TIMEOUT_MS)")]
    Timeout(std::time::Duration),
    #[error(
        "exceeded the memory limit: asked for {desired} bytes, the limit is {limit} bytes (TASKHOST_MEMORY_LIMIT_MIB)"
    )]
    MemoryLimit { desired: usize, limit: usize },
    #[error("trapped: {0}")]
    Trap(String),
    #[error("could not instantiate: {0}")]
    Instantiate(String),
    #[error("returned {count} effects, more than the limit of {max} (TASKHOST_MAX_EFFECTS)")]
    TooManyEffects { count: usize, max: usize },
    #[error(
        "returned {bytes} bytes of effects, more than the limit of {max} (TASKHOST_MAX_EFFECT_BYTES)"
    )]
    EffectsTooLarge { bytes: usize, max: usize },
}

/// What the component answered.
pub type Answer = Result<Vec<wit::Effect>, wit::Failure>;

impl Runtime {
    /// Calls `describe()` on a fresh instance (at load time).
    pub(super) fn describe(&self, pre: &ConsumerPre<CallState>) -> anyhow::Result<wit::Manifest> {
        let (mut store, _stderr) = self.new_store();
        let consumer = pre.instantiate(&mut store)?;
        Ok(consumer.todo_events_handler().call_describe(&mut store)?)
    }

    /// Handles one message. The instance lives exactly as long as this call.
    pub fn call(
        &self,
        component: &LoadedComponent,
        topic: &str,
        message: &wit::Message,
        now_ms: i64,
    ) -> Result<Answer, CallError> {
        let (mut store, stderr) = self.new_store();
        let result = (|| {
            let consumer = component
                .pre
                .instantiate(&mut store)
                .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
            consumer
                .todo_events_handler()
                .call_handle(&mut store, topic, message, now_ms)
                .map_err(|e| self.classify(e, &store.data().memory))
        })();
        drop(store);
        forward_stderr(component, &stderr);
        let result = result.and_then(|answer| {
            if let Ok(effects) = &answer {
                self.check_effects(effects)?;
            }
            Ok(answer)
        });
        component.stats.record(&result);
        result
    }

    fn new_store(&self) -> (Store<CallState>, MemoryOutputPipe) {
        let limits = self.limits();
        let stderr = MemoryOutputPipe::new(limits.max_stderr_bytes);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap::new(limits.memory_bytes),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        let ticks = (limits.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        (store, stderr)
    }

    fn classify(&self, e: wasmtime::Error, memory: &MemoryCap) -> CallError {
        if let Some(desired) = memory.exceeded {
            CallError::MemoryLimit {
                desired,
                limit: self.limits().memory_bytes,
            }
        } else if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            CallError::Timeout(self.limits().call_timeout)
        } else {
            CallError::Trap(format!("{e:#}"))
        }
    }

    fn check_effects(&self, effects: &[wit::Effect]) -> Result<(), CallError> {
        let limits = self.limits();
        if effects.len() > limits.max_effects {
            return Err(CallError::TooManyEffects {
                count: effects.len(),
                max: limits.max_effects,
            });
        }
        let bytes: usize = effects.iter().map(effect_text_bytes).sum();
        if bytes > limits.max_effect_bytes {
            return Err(CallError::EffectsTooLarge {
                bytes,
                max: limits.max_effect_bytes,
            });
        }
        Ok(())
    }
}

/// Text carried by an effect: what a hostile component could inflate.
fn effect_text_bytes(e: &wit::Effect) -> usize {
    fn task(t: &wit::Task) -> usize {
        t.id.len()
            + t.title.len()
            + t.description.as_ref().map_or(0, String::len)
            + t.tags.iter().map(String::len).sum::<usize>()
            + t.series_id.as_ref().map_or(0, String::len)
            + t.reminder_offsets.as_ref().map_or(0, |o| o.len() * 4)
    }
    match e {
        wit::Effect::CreateTask(t) => {
            t.idempotency_key.len()
                + t.user_id.len()
                + t.title.len()
                + t.description.as_ref().map_or(0, String::len)
                + t.tags.iter().map(String::len).sum::<usize>()
        }
        wit::Effect::ScheduleReminder(j) => {
            j.name.len()
                + j.reminder.task.title.len()
                + j.reminder.task.description.as_ref().map_or(0, String::len)
        }
        wit::Effect::CancelReminder(n) => n.len(),
        wit::Effect::Notify(n) => n.idempotency_key.len() + n.title.len() + n.body.len(),
        wit::Effect::AppendAudit(a) => {
            a.previous.as_ref().map_or(0, task)
                + a.current.as_ref().map_or(0, task)
                + a.changes
                    .iter()
                    .map(|c| {
                        c.field.len()
                            + c.old.as_ref().map_or(0, String::len)
                            + c.new.as_ref().map_or(0, String::len)
                    })
                    .sum::<usize>()
        }
        wit::Effect::Broadcast(s) => s.task.as_ref().map_or(0, task),
        wit::Effect::Publish(p) => p.topic.len() + p.key.len() + p.payload.len(),
    }
}

/// Sends what the component wrote to stderr to the log, one event per line, attributed.
fn forward_stderr(component: &LoadedComponent, stderr: &MemoryOutputPipe) {
    let bytes = stderr.contents();
    if bytes.is_empty() {
        return;
    }
    for line in String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        tracing::info!(
            target: "taskhost::component",
            component = %component.name,
            version = %component.version,
            "{line}"
        );
    }
}
