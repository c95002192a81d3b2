//! Where a component's `.wasm` is found, so tests run against what `just build-components` built.

use std::path::{Path, PathBuf};

/// Variables that override the directory the `.wasm` files are read from, first set wins:
/// the components' own, then the one `just test` exports for every test suite (the directory
/// `just build-components` copies the host's components to).
const COMPONENTS_DIR_VARS: [&str; 2] = ["TASKHOST_COMPONENTS_DIR", "TASKHOST_TEST_COMPONENTS_DIR"];

/// `<dir>/<name>.wasm` for the first of [`COMPONENTS_DIR_VARS`] that is set, else the
/// `release-wasm` output of `cargo build --profile release-wasm --target wasm32-wasip2` in the
/// target directory.
pub fn wasm_path(name: &str) -> PathBuf {
    components_dir().join(format!("{name}.wasm"))
}

fn components_dir() -> PathBuf {
    COMPONENTS_DIR_VARS
        .iter()
        .find_map(|var| std::env::var_os(var).filter(|dir| !dir.is_empty()))
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("wasm32-wasip2").join("release-wasm"))
}

/// `$CARGO_TARGET_DIR` as seen when the tests run (or, failing that, when they were built), else
/// the workspace's `target/`. A relative directory is taken relative to the workspace root, where
/// cargo is normally invoked from (tests themselves run in their package's directory).
fn target_dir() -> PathBuf {
    let workspace = workspace_root();
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target"));
    if dir.is_absolute() {
        dir
    } else {
        workspace.join(dir)
    }
}

fn workspace_root() -> PathBuf {
    // This crate lives at <workspace>/components/testkit.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
