//! Per-component limits, through the host's runtime and registry (no database): set in the
//! components directory's `limits.toml` or at push, bounded by the host's ceilings, checked
//! against the component's memory image at load, enforced per call, and named in the error
//! when hit — so an operator knows which setting to change.
//!
//! Uses the real audit component and two misbehaving ones (`components/testing/`), built by
//! this test with
//!
//! ```sh
//! cargo build --profile release-wasm --target wasm32-wasip2 -p memory-hog -p looping --target-dir <target>/limits
//! ```

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use support::wasm_builds::build_wasm;
use taskhost::runtime::{
    Ceilings, LimitOverrides, LoadError, Registry, RegistryError, Runtime, RuntimeConfig,
    SwapError, convert,
};
use taskhost::wire;

/// `memory_hog.wasm` and `looping.wasm`, built once per test binary.
fn misbehaving() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        build_wasm(
            &support::target_dir().join("limits"),
            &["-p", "memory-hog", "-p", "looping"],
            "memory-hog and looping",
        )
    })
}

/// A components directory with these files (copied) and this `limits.toml`.
fn components(files: &[(&Path, &str)], limits: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (from, name) in files {
        std::fs::copy(from, dir.path().join(name))
            .unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    }
    if let Some(text) = limits {
        std::fs::write(dir.path().join("limits.toml"), text).unwrap();
    }
    dir
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        ceilings: Ceilings {
            memory_bytes: 128 << 20,
            call_timeout: Duration::from_secs(2),
        },
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn audit() -> PathBuf {
    support::components_dir().join("audit.wasm")
}

/// One created task, through the host's decoder.
fn created() -> taskhost::runtime::wit::Message {
    let event = r#"{"event_id":"e1","event_type":"task.created","user_id":"u1",
        "task":{"id":"t1","title":"Pay rent"}}"#;
    convert::message_to(&wire::decode("task-events", event.as_bytes(), wire::time::now()).unwrap())
        .expect("a created task is handed to components")
}

#[test]
fn limits_toml_gives_a_component_its_own_limits_and_the_calls_name_it() {
    let hog = misbehaving().join("memory_hog.wasm");
    let looping = misbehaving().join("looping.wasm");
    let dir = components(
        &[
            (&hog, "memory_hog.wasm"),
            (&looping, "looping.wasm"),
            (&audit(), "audit.wasm"),
        ],
        Some("[memory-hog]\nmemory_mib = 24\n\n[looping]\ncall_timeout_ms = 40\n"),
    );
    let runtime = runtime();
    let registry = Registry::load_dir(&runtime, dir.path()).unwrap();
    let limits_file = dir.path().join("limits.toml").display().to_string();

    let hog = registry.slot("memory-hog").unwrap().current();
    assert_eq!(hog.limits.memory_bytes, 24 << 20);
    assert_eq!(
        hog.limits.memory_setting,
        format!("memory_mib of {limits_file} [memory-hog]")
    );
    assert_eq!(hog.limits.timeout_setting, "TASKHOST_CALL_TIMEOUT_MS");
    let err = runtime
        .call(&hog, "task-events", &created(), 0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("exceeded the memory limit")
            && err.contains(&format!("the limit is {} bytes", 24 << 20))
            && err.contains("memory_mib of ")
            && err.contains("limits.toml [memory-hog]"),
        "{err}"
    );
    let peak = hog.stats.snapshot().memory_peak_bytes;
    assert!(
        peak > (20 << 20) && peak <= 24 << 20,
        "the instance grew up to its limit: {peak}"
    );

    let looping = registry.slot("looping").unwrap().current();
    assert_eq!(looping.limits.call_timeout, Duration::from_millis(40));
    let started = std::time::Instant::now();
    let err = runtime
        .call(&looping, "task-events", &created(), 0)
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_millis(450),
        "ended by its own 40 ms"
    );
    assert!(
        err.contains("timed out")
            && err.contains("call_timeout_ms of ")
            && err.contains("[looping]"),
        "{err}"
    );

    // A component the file does not name keeps the host's defaults.
    let audit = registry.slot("audit").unwrap().current();
    assert_eq!(audit.limits.memory_bytes, 64 << 20);
    assert_eq!(audit.limits.memory_setting, "TASKHOST_MEMORY_LIMIT_MIB");
    assert!(
        runtime
            .call(&audit, "task-events", &created(), 0)
            .unwrap()
            .is_ok()
    );
    assert!(audit.start_memory_bytes > 0 && audit.start_memory_bytes < 8 << 20);
}

#[test]
fn limits_above_the_ceilings_or_below_the_image_are_refused_at_load() {
    let runtime = runtime();
    let over = components(
        &[(&audit(), "audit.wasm")],
        Some("[audit]\nmemory_mib = 129\n"),
    );
    let err = Registry::load_dir(&runtime, over.path())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("memory_mib = 129") && err.contains("TASKHOST_MAX_MEMORY_LIMIT_MIB"),
        "{err}"
    );

    // memory-hog's image is a little over 1 MiB (wasm-ld's default 1 MiB stack; the shipped
    // consumers link a 64 KiB one): a 1 MiB limit cannot even start it.
    let hog = misbehaving().join("memory_hog.wasm");
    let under = components(
        &[(&hog, "memory_hog.wasm")],
        Some("[memory-hog]\nmemory_mib = 1\n"),
    );
    let err = Registry::load_dir(&runtime, under.path())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("component `memory-hog` needs") && err.contains("to start (its memory image)"),
        "{err}"
    );

    let typo = components(&[(&audit(), "audit.wasm")], Some("[audit]\nmemory = 16\n"));
    match Registry::load_dir(&runtime, typo.path()) {
        Err(RegistryError::LimitsFile(reason)) => {
            assert!(reason.contains("unknown field `memory`"), "{reason}")
        }
        other => panic!("a misspelt key must fail the load, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn a_push_brings_its_own_limits_else_the_directorys_and_a_rollback_restores_them() {
    let runtime = runtime();
    let dir = components(
        &[(&audit(), "audit.wasm")],
        Some("[audit]\ncall_timeout_ms = 900\n"),
    );
    let registry = Registry::load_dir(&runtime, dir.path()).unwrap();
    let bytes = std::fs::read(audit()).unwrap();
    let mut other_build = bytes.clone();
    // A custom section changes the digest, not the behaviour: a "new version" to push.
    other_build.extend_from_slice(&[0, 6, 5, b'x', b'-', b'a', b'b', b'c']);

    let pushed = LimitOverrides {
        memory_mib: Some(96),
        call_timeout_ms: None,
    };
    let swapped = registry
        .swap_bytes_with("audit", other_build, "test", Some(pushed))
        .await
        .unwrap();
    assert_eq!(swapped.to.limits.memory_bytes, 96 << 20);
    assert_eq!(swapped.to.limits.memory_setting, "memory_mib of the push");
    // Limits given at push replace the directory's: its timeout is the host's default again.
    assert_eq!(swapped.to.limits.call_timeout, Duration::from_millis(500));

    let back = registry.rollback("audit", None, "test").unwrap();
    assert_eq!(back.to.limits.call_timeout, Duration::from_millis(900));
    assert_eq!(back.to.limits.memory_bytes, 64 << 20);

    let too_much = LimitOverrides {
        memory_mib: Some(4096),
        call_timeout_ms: None,
    };
    match registry
        .swap_bytes_with("audit", bytes, "test", Some(too_much))
        .await
    {
        Err(SwapError::Invalid(LoadError::Limits { reason, .. })) => {
            assert!(reason.contains("must be 1..=128"), "{reason}")
        }
        other => panic!("a limit above the ceiling must refuse the push, got {other:?}"),
    }
    assert_eq!(
        registry
            .slot("audit")
            .unwrap()
            .current()
            .limits
            .call_timeout,
        Duration::from_millis(900),
        "the refused push changed nothing"
    );
}
