//! A loaded component version: what it is (name, version, topics, digest), where it came from,
//! what it did (its counters), and its `InstancePre`, ready to instantiate per message.
//! Loading one is `load.rs`.

use super::bindings::ConsumerPre;
use super::component_limits::ComponentLimits;
use super::handle_export::HandleExport;
use super::sandbox::CallState;
use super::stats::VersionStats;
use chrono::{DateTime, Utc};

/// The WIT world every consumer must target.
pub const WORLD: &str = "todo:events/consumer@0.1.0";

/// A compiled, validated component version, ready to instantiate per message.
pub struct LoadedComponent {
    pub name: String,
    pub version: String,
    pub topics: Vec<String>,
    /// sha256 of the `.wasm` bytes: identifies this exact build.
    pub digest: String,
    pub loaded_at: DateTime<Utc>,
    /// Where it came from: a file path, or an upload through the admin API.
    pub origin: String,
    /// What this version did with its messages (counted per version, see `stats.rs`).
    pub stats: VersionStats,
    /// Its Prometheus series, kept as handles.
    pub metrics: crate::metrics::VersionMetrics,
    /// Its memory and time limits (the host's defaults unless it was given its own).
    pub limits: ComponentLimits,
    /// Linear memory an instance holds before it runs any code: its memory image.
    pub start_memory_bytes: usize,
    pub(super) pre: ConsumerPre<CallState>,
    /// Its `handle` export, checked at load time (`handle_export.rs`).
    pub(super) handle: HandleExport,
}

/// A version's compiled code is unmapped when its last user lets go: the last message that
/// took it, or the rollback history. Logged, so that "the old version is freed when its last
/// message is done" can be seen.
impl Drop for LoadedComponent {
    fn drop(&mut self) {
        tracing::debug!(
            component = %self.name, version = %self.version, digest = self.short_digest(),
            messages = self.stats.snapshot().messages, "released component version"
        );
    }
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("topics", &self.topics)
            .field("digest", &self.short_digest())
            .finish()
    }
}

impl LoadedComponent {
    pub fn short_digest(&self) -> &str {
        &self.digest[..12]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin} is not a valid wasm component: {reason}")]
    Compile { origin: String, reason: String },
    #[error("{origin} does not target the {WORLD} world: {reason}")]
    World { origin: String, reason: String },
    #[error("{origin}: describe() failed: {reason}")]
    Describe { origin: String, reason: String },
    #[error("{origin}: {reason}")]
    Manifest { origin: String, reason: String },
    #[error("{origin}: {reason}")]
    Limits { origin: String, reason: String },
}
