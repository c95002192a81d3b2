//! One component call: a fresh `Store` and instance from the cached `InstancePre`, with the
//! per-call limits armed, stderr captured, and the result checked against the effect limits.

use super::bindings::{ConsumerPre, wit};
use super::component::LoadedComponent;
use super::component_limits::ComponentLimits;
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
    /// `setting` names what set the limit: `TASKHOST_CALL_TIMEOUT_MS`, or the component's own.
    #[error("timed out: ran past the call timeout of {limit:?} ({setting})")]
    Timeout {
        limit: std::time::Duration,
        setting: String,
    },
    #[error(
        "exceeded the memory limit: asked for {desired} bytes, the limit is {limit} bytes ({setting})"
    )]
    MemoryLimit {
        desired: usize,
        limit: usize,
        setting: String,
    },
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
    /// Calls `describe()` on a fresh instance (at load time), with the ceilings as limits: the
    /// component's own limits depend on its name, which this tells. Also says how much linear
    /// memory the instance held before running any code.
    pub(super) fn describe(&self, pre: &ConsumerPre<CallState>) -> anyhow::Result<Described> {
        let ceilings = self.ceilings();
        let (mut store, _stderr) = self.new_store(ceilings.memory_bytes, ceilings.call_timeout);
        let consumer = pre.instantiate(&mut store)?;
        let start_memory = store.data().memory.peak;
        let manifest = consumer.todo_events_handler().call_describe(&mut store)?;
        Ok(Described {
            manifest,
            start_memory,
        })
    }

    /// Handles one message. The instance lives exactly as long as this call.
    pub fn call(
        &self,
        component: &LoadedComponent,
        topic: &str,
        message: &wit::Message,
        now_ms: i64,
    ) -> Result<Answer, CallError> {
        let limits = &component.limits;
        let (mut store, stderr) = self.new_store(limits.memory_bytes, limits.call_timeout);
        let result = (|| {
            let consumer = component
                .pre
                .instantiate(&mut store)
                .map_err(|e| CallError::Instantiate(format!("{e:#}")))?;
            consumer
                .todo_events_handler()
                .call_handle(&mut store, topic, message, now_ms)
                .map_err(|e| classify(e, &store.data().memory, limits))
        })();
        let memory_peak = store.data().memory.peak;
        drop(store);
        forward_stderr(component, &stderr);
        let result = result.and_then(|answer| {
            if let Ok(effects) = &answer {
                self.check_effects(effects)?;
            }
            Ok(answer)
        });
        component.stats.record(&result);
        component.stats.record_memory(memory_peak);
        result
    }

    fn new_store(
        &self,
        memory_bytes: usize,
        call_timeout: std::time::Duration,
    ) -> (Store<CallState>, MemoryOutputPipe) {
        let stderr = MemoryOutputPipe::new(self.limits().max_stderr_bytes);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap::new(memory_bytes),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        let ticks = (call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        (store, stderr)
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

/// What `describe()` told at load time.
pub(super) struct Described {
    pub manifest: wit::Manifest,
    /// Linear memory of a fresh instance: its memory image.
    pub start_memory: usize,
}

/// Why a call trapped, naming the limit (and the setting that set it) when one was hit.
fn classify(e: wasmtime::Error, memory: &MemoryCap, limits: &ComponentLimits) -> CallError {
    if let Some(desired) = memory.exceeded {
        CallError::MemoryLimit {
            desired,
            limit: limits.memory_bytes,
            setting: limits.memory_setting.clone(),
        }
    } else if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        CallError::Timeout {
            limit: limits.call_timeout,
            setting: limits.timeout_setting.clone(),
        }
    } else {
        CallError::Trap(format!("{e:#}"))
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
