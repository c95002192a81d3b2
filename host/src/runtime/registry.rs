//! Which component version serves which topic.
//!
//! Each component name has a slot holding its serving version and the last few it replaced
//! ([`Versions`]). Routing pins versions: [`Registry::route`] returns, for each subscribed
//! component, the one `Arc` of the version that will handle the message from start to end, so
//! a message is handled wholly by one version even if the slot is swapped meanwhile, and only
//! by a version that subscribes to its topic. The old version is freed when its last message
//! is done and it has left the rollback history. Swapping is in `swap.rs`.
//!
//! The set of component *names* is fixed at start-up: a swap replaces a version, it never adds
//! or removes a consumer.

use super::component::{LoadError, LoadedComponent};
use super::engine::Runtime;
use super::limits_file::LimitsFile;
use super::policy::SwapPolicy;
use super::versions::{Activation, Versions};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How many swap/rollback/refusal records each slot keeps for `GET /admin/components`.
const JOURNAL_LEN: usize = 32;

/// One named component: its serving version, its rollback history, what happened to it.
pub struct ComponentSlot {
    pub name: String,
    versions: Versions<LoadedComponent>,
    /// The file its start-up version came from: the directory watcher swaps this slot when
    /// that file changes.
    pub(crate) path: Option<PathBuf>,
    journal: Mutex<VecDeque<JournalEntry>>,
}

/// One thing that happened to a slot, newest last.
#[derive(Clone, Debug, serde::Serialize)]
pub struct JournalEntry {
    pub at: DateTime<Utc>,
    /// `swap`, `rollback`, `auto-rollback` or `refused`.
    pub action: &'static str,
    pub from: Option<String>,
    pub to: Option<String>,
    pub origin: String,
    pub reason: Option<String>,
}

impl ComponentSlot {
    fn new(component: LoadedComponent, path: Option<PathBuf>, keep: usize) -> Self {
        Self {
            name: component.name.clone(),
            versions: Versions::new(component, keep),
            path,
            journal: Mutex::default(),
        }
    }

    /// The version that will handle the next message.
    pub fn current(&self) -> Arc<LoadedComponent> {
        self.versions.current()
    }

    /// The serving version, and when and why it became current.
    pub fn serving(&self) -> (Arc<LoadedComponent>, Activation) {
        self.versions.serving()
    }

    /// The kept replaced versions (rollback targets), newest first.
    pub fn previous(&self) -> Vec<Arc<LoadedComponent>> {
        self.versions.previous()
    }

    pub(super) fn versions(&self) -> &Versions<LoadedComponent> {
        &self.versions
    }

    /// What happened to this slot, oldest first.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.lock_journal().iter().cloned().collect()
    }

    /// Adds `entry` (the oldest beyond the journal's length is let go). Also written by
    /// `crate::rollout` for shadow and canary steps.
    pub fn record(&self, entry: JournalEntry) {
        let mut journal = self.lock_journal();
        if journal.len() == JOURNAL_LEN {
            journal.pop_front();
        }
        journal.push_back(entry);
    }

    fn lock_journal(&self) -> std::sync::MutexGuard<'_, VecDeque<JournalEntry>> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Registry {
    /// By component name (sorted, so routing order is stable).
    slots: BTreeMap<String, Arc<ComponentSlot>>,
    /// Compiles new versions (hot swap).
    runtime: Runtime,
    policy: SwapPolicy,
    /// The directory the start-up versions came from: its `limits.toml` gives each new version
    /// its limits unless the push brings its own.
    dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot list the components directory {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("two components are named `{name}`: {first} and {second}")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
    #[error("no component (*.wasm) found in {0}: build them with `just build-components`")]
    Empty(String),
    #[error("{0}")]
    LimitsFile(String),
}

impl Registry {
    /// An empty registry; components are added with [`Registry::insert`].
    pub fn new(runtime: Runtime) -> Self {
        Self {
            slots: BTreeMap::new(),
            runtime,
            policy: SwapPolicy::default(),
            dir: None,
        }
    }

    /// Loads every `*.wasm` in `dir`. Any invalid file fails the whole load, so that a host
    /// never starts with a consumer silently missing.
    pub fn load_dir(runtime: &Runtime, dir: &Path) -> Result<Self, RegistryError> {
        let entries = std::fs::read_dir(dir).map_err(|source| RegistryError::Dir {
            dir: dir.display().to_string(),
            source,
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
            .collect();
        paths.sort();
        let limits = LimitsFile::read(dir).map_err(RegistryError::LimitsFile)?;
        let mut registry = Registry::new(runtime.clone());
        registry.dir = Some(dir.to_path_buf());
        for path in paths {
            let component = runtime.load_file_with(&path, &|name| Ok(limits.request_for(name)))?;
            tracing::info!(
                component = %component.name, version = %component.version,
                digest = component.short_digest(), topics = ?component.topics,
                memory_limit_mib = component.limits.memory_bytes >> 20,
                call_timeout_ms = component.limits.call_timeout.as_millis() as u64,
                start_memory_kib = component.start_memory_bytes >> 10,
                path = %path.display(), "loaded component"
            );
            if let Some(first) = registry.slots.get(&component.name) {
                return Err(RegistryError::Duplicate {
                    name: component.name.clone(),
                    first: first.current().origin.clone(),
                    second: path.display().to_string(),
                });
            }
            registry.insert_from(component, Some(path));
        }
        if registry.slots.is_empty() {
            return Err(RegistryError::Empty(dir.display().to_string()));
        }
        // A table for no component is most likely a typo: say so rather than ignore it.
        for name in limits.components() {
            if !registry.slots.contains_key(name) {
                tracing::warn!(
                    file = %limits.path().display(), component = name,
                    loaded = ?registry.slots.keys().collect::<Vec<_>>(),
                    "limits.toml sets limits for a component that is not loaded"
                );
            }
        }
        Ok(registry)
    }

    /// How swaps are handled: versions kept, automatic rollback.
    pub fn with_policy(mut self, policy: SwapPolicy) -> Self {
        for slot in self.slots.values() {
            slot.versions.set_keep(policy.keep_versions);
        }
        self.policy = policy;
        self
    }

    pub fn insert(&mut self, component: LoadedComponent) {
        self.insert_from(component, None);
    }

    fn insert_from(&mut self, component: LoadedComponent, path: Option<PathBuf>) {
        let slot = ComponentSlot::new(component, path, self.policy.keep_versions);
        self.slots.insert(slot.name.clone(), Arc::new(slot));
    }

    /// The versions that handle a message of `topic`: for each component whose serving version
    /// subscribes to it, that version, pinned for the whole message.
    pub fn route(&self, topic: &str) -> Vec<Arc<LoadedComponent>> {
        self.slots
            .values()
            .map(|s| s.current())
            .filter(|c| c.topics.iter().any(|t| t == topic))
            .collect()
    }

    /// Whether some serving version subscribes to `topic` (per delivery: no allocation).
    pub fn subscribes(&self, topic: &str) -> bool {
        self.slots
            .values()
            .any(|s| s.current().topics.iter().any(|t| t == topic))
    }

    /// Every topic some serving version subscribes to (it follows swaps).
    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .slots
            .values()
            .flat_map(|s| s.current().topics.clone())
            .collect();
        t.sort();
        t.dedup();
        t
    }

    pub fn slots(&self) -> impl Iterator<Item = &Arc<ComponentSlot>> {
        self.slots.values()
    }

    pub fn slot(&self, name: &str) -> Option<&Arc<ComponentSlot>> {
        self.slots.get(name)
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn policy(&self) -> &SwapPolicy {
        &self.policy
    }

    /// The components directory's `limits.toml`, read now (empty without a directory).
    pub(super) fn limits_file(&self) -> Result<LimitsFile, String> {
        match &self.dir {
            Some(dir) => LimitsFile::read(dir),
            None => Ok(LimitsFile::default()),
        }
    }
}
