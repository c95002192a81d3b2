//! `limits.toml` in the components directory: per-component limits set by the operator, next
//! to the `.wasm` files they apply to.
//!
//! ```toml
//! # One table per component name (what its describe() says).
//! [audit-py]
//! memory_mib = 160          # instead of TASKHOST_MEMORY_LIMIT_MIB
//! call_timeout_ms = 2000    # instead of TASKHOST_CALL_TIMEOUT_MS
//! ```
//!
//! It is read whenever a version is loaded — at start-up, and for every swap (push or watched
//! file) that does not bring its own limits — so an edit applies from the next version on. A
//! file that does not parse fails the start-up, or refuses the swap, with the reason: limits
//! are never silently ignored.

use super::component_limits::{LimitOverrides, LimitRequest};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file's name in the components directory.
pub const FILE_NAME: &str = "limits.toml";

/// The parsed file: overrides by component name. A missing file is an empty one.
#[derive(Debug, Default)]
pub struct LimitsFile {
    path: PathBuf,
    by_component: BTreeMap<String, LimitOverrides>,
}

impl LimitsFile {
    /// Reads `dir/limits.toml`.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path,
                    by_component: BTreeMap::new(),
                });
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let by_component = toml::from_str(&text).map_err(|e| {
            format!(
                "{} is not valid: {e}(expected one table per component, with memory_mib and/or call_timeout_ms)",
                path.display()
            )
        })?;
        Ok(Self { path, by_component })
    }

    /// What the file asks for `component` (nothing if it has no table for it).
    pub fn request_for(&self, component: &str) -> LimitRequest {
        LimitRequest::new(
            self.by_component
                .get(component)
                .copied()
                .unwrap_or_default(),
            format!("{} [{component}]", self.path.display()),
        )
    }

    /// Component names the file sets limits for.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.by_component.keys().map(String::as_str)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), text).unwrap();
        dir
    }

    #[test]
    fn a_missing_file_sets_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = LimitsFile::read(dir.path()).unwrap();
        assert!(file.request_for("audit").overrides.is_empty());
    }

    #[test]
    fn tables_set_limits_by_component() {
        let dir =
            write("[audit-py]\nmemory_mib = 160\ncall_timeout_ms = 2000\n[sync]\nmemory_mib = 8\n");
        let file = LimitsFile::read(dir.path()).unwrap();
        let request = file.request_for("audit-py");
        assert_eq!(
            request.overrides,
            LimitOverrides {
                memory_mib: Some(160),
                call_timeout_ms: Some(2000)
            }
        );
        assert!(
            request.source.ends_with("limits.toml [audit-py]"),
            "{}",
            request.source
        );
        assert_eq!(file.request_for("sync").overrides.memory_mib, Some(8));
        assert!(file.request_for("audit").overrides.is_empty());
        assert_eq!(file.components().collect::<Vec<_>>(), ["audit-py", "sync"]);
    }

    #[test]
    fn a_misspelt_key_is_an_error_naming_it() {
        let dir = write("[audit]\nmemory = 160\n");
        let err = LimitsFile::read(dir.path()).unwrap_err();
        assert!(err.contains("memory"), "{err}");
        assert!(err.contains("limits.toml is not valid"), "{err}");
    }
}
