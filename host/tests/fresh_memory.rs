//! A fresh instance per message holds where the host reuses memory the most: a component with
//! a large image (mapped copy-on-write, its written pages reset in place when an instance is
//! freed, `host/src/runtime/engine.rs`) never sees what an earlier message wrote — one message
//! after another in the same slot, on several threads at once, and with the window of pages
//! kept resident larger than, smaller than, and nothing of what a message writes.
//!
//! The component (`components/testing/fresh-memory`) is built by this test:
//!
//! ```sh
//! cargo build --profile release-wasm --target wasm32-wasip2 -p fresh-memory --target-dir <target>/faults
//! ```

mod support;

use std::path::PathBuf;
use support::wasm_builds::build_wasm;
use taskhost::runtime::image::{COPY_UP_TO_BYTES, ImageInit};
use taskhost::runtime::{LoadedComponent, Runtime, RuntimeConfig, convert, wit};
use taskhost::wire;

/// Messages each thread hands the component.
const MESSAGES: usize = 40;
/// Threads calling at once (the host runs at least four wasm threads).
const THREADS: usize = 4;

fn component() -> PathBuf {
    let dir = build_wasm(
        &support::target_dir().join("faults"),
        &["-p", "fresh-memory"],
        "the fresh-memory test component",
    );
    dir.join("fresh_memory.wasm")
}

/// A task event; the component does not look at it.
fn message() -> wit::Message {
    let payload = r#"{"event_id":"7d4c2a9e-0c1b-4f5e-9a77-2f1f3e5b6c01","event_type":"task.created",
        "event_timestamp":"2026-12-07T10:00:00Z","user_id":"fresh-memory-user","previous":null,
        "task":{"id":"3f0b8a52-5b0e-4b8e-8f43-0b7b7c1d2e11","user_id":"fresh-memory-user",
        "title":"t","description":null,"priority":"medium","tags":[],"due_date":null,
        "is_completed":false,"completed_at":null,"is_recurring":false,"occurrence":1,
        "created_at":"2026-12-07T10:00:00Z","updated_at":"2026-12-07T10:00:00Z"}}"#;
    let decoded = wire::decode("task-events", payload.as_bytes(), wire::time::now())
        .expect("the test's task event decodes");
    convert::message_to(&decoded).expect("a task event is handed to components")
}

fn call_many(runtime: &Runtime, component: &LoadedComponent, message: &wit::Message, who: &str) {
    for i in 0..MESSAGES {
        let answer = runtime
            .call(component, "task-events", message, 0)
            .unwrap_or_else(|e| panic!("{who}, message {i}: the call failed: {e}"));
        if let Err(failure) = answer {
            panic!("{who}, message {i}: {failure:?}");
        }
    }
}

#[test]
fn a_large_image_is_pristine_for_every_message_whatever_is_kept_resident() {
    let wasm = component();
    let bytes = std::fs::read(&wasm).expect("the built component");
    assert_eq!(
        ImageInit::for_component(&bytes),
        ImageInit::Mapped,
        "{} is {} bytes: it must be larger than {COPY_UP_TO_BYTES} for its image to be mapped",
        wasm.display(),
        bytes.len()
    );
    let message = message();
    // Default (more than a message writes), 1 MiB (less: the rest decommitted), none.
    for keep in [
        RuntimeConfig::default().large_image_keep_resident,
        1 << 20,
        0,
    ] {
        let runtime = Runtime::new(RuntimeConfig {
            large_image_keep_resident: keep,
            ..RuntimeConfig::default()
        })
        .expect("a runtime");
        let component = runtime.load_file(&wasm).expect("fresh-memory loads");
        call_many(
            &runtime,
            &component,
            &message,
            &format!("keep {keep} B, one thread"),
        );
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (runtime, component, message) = (&runtime, &component, &message);
                s.spawn(move || {
                    call_many(
                        runtime,
                        component,
                        message,
                        &format!("keep {keep} B, thread {t}"),
                    )
                });
            }
        });
    }
}
