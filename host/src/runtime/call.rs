//! One component call: a fresh `Store` and instance from the cached `InstancePre`, with the
//! per-call limits armed, stderr captured, and the result checked against the effect limits.

use super::bindings::wit;
use super::component::LoadedComponent;
use super::component_limits::ComponentLimits;
use super::engine::Runtime;
use super::limits::MemoryCap;
use super::outcome::{Answer, CallError};
use super::sandbox::new_store;
use wasmtime::Trap;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

impl Runtime {
    /// Handles one message. The instance lives exactly as long as this call.
    pub fn call(
        &self,
        component: &LoadedComponent,
        topic: &str,
        message: &wit::Message,
        now_ms: i64,
    ) -> Result<Answer, CallError> {
        let limits = &component.limits;
        let (mut store, stderr) = new_store(
            component.pre.engine(),
            self.limits(),
            limits.memory_bytes,
            limits.call_timeout,
        );
        let result = (|| {
            let instance = component
                .pre
                .instance_pre()
                .instantiate(&mut store)
                // Starting counts against the call's limits too: a thread kept off the CPU
                // past the deadline while the instance starts is a timeout, not a broken
                // component ("wasm trap: interrupt" said neither).
                .map_err(|e| classify(e, &store.data().memory, limits, CallError::Instantiate))?;
            component
                .handle
                .call(&mut store, &instance, topic, message, now_ms)
                .map_err(|e| classify(e, &store.data().memory, limits, CallError::Trap))
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

/// Why a call failed, naming the limit (and the setting that set it) when one was hit;
/// `otherwise` words any other failure.
fn classify(
    e: wasmtime::Error,
    memory: &MemoryCap,
    limits: &ComponentLimits,
    otherwise: fn(String) -> CallError,
) -> CallError {
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
        otherwise(format!("{e:#}"))
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
