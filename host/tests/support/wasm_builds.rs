//! The test-only component builds: misbehaving components, audit's `marked` build (the
//! candidate of the hot-swap and rollout tests), a trapping audit, a component of another
//! world. Each test binary builds what it needs on first use with `cargo build --profile
//! release-wasm --target wasm32-wasip2` into a target directory of its own kind (cargo skips
//! what is up to date), so the tests that share a directory share the builds.

use std::path::{Path, PathBuf};

/// The packages the hot-swap and rollout tests swap in: audit's `marked` build (version
/// `0.2.0-marked`: identical behaviour, so each audit entry says which build wrote it), a
/// trapping `audit`, and a component of another world.
pub const SWAP_PACKAGES: &[&str] = &[
    "-p",
    "audit",
    "--features",
    "audit/marked",
    "-p",
    "trapping-audit",
    "-p",
    "other-world",
];

/// Audit's `marked` build alone (the first of [`SWAP_PACKAGES`]).
pub const MARKED_AUDIT: &[&str] = &["-p", "audit", "--features", "audit/marked"];

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The real components as `just build-components` leaves them (`target/components`), or
/// `TASKHOST_TEST_COMPONENTS_DIR`.
pub fn built_components_dir() -> PathBuf {
    std::env::var_os("TASKHOST_TEST_COMPONENTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/components"))
}

/// A component's bytes; a missing one names the file and how to build it.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (build the components with `just build-components`)",
            path.display()
        )
    })
}

/// Runs `cargo build --profile release-wasm --target wasm32-wasip2 <args>` with `target` as its
/// target directory and returns where the `.wasm` files are. `what` names the builds in the
/// messages of a failure.
pub fn build_wasm(target: &Path, args: &[&str], what: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(workspace())
        .args([
            "build",
            "--profile",
            "release-wasm",
            "--target",
            "wasm32-wasip2",
        ])
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .status()
        .unwrap_or_else(|e| panic!("running cargo to build {what}: {e}"));
    assert!(
        status.success(),
        "building {what} failed: cargo build {args:?}"
    );
    target.join("wasm32-wasip2/release-wasm")
}

/// The directory of the swap builds: `TASKHOST_TEST_SWAP_COMPONENTS_DIR` (`audit.wasm` = the
/// marked build, `trapping_audit.wasm`, `other_world.wasm`) when set, else `args` (some of
/// [`SWAP_PACKAGES`]) built into `<target>/hot-swap`, where the target is `CARGO_TARGET_DIR`
/// or the workspace's.
pub fn swap_builds(args: &[&str], what: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("TASKHOST_TEST_SWAP_COMPONENTS_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
        .join("hot-swap");
    build_wasm(&target, args, what)
}
