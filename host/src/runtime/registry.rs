//! Which component version serves which topic.
//!
//! Each component name has a slot holding its current version behind an `ArcSwap`. A message
//! takes one `Arc` from the slot before the call and keeps it to the end, so it is handled
//! wholly by one version even if the slot is swapped meanwhile; the old version is freed when
//! its last message is done. (The swap itself arrives with hot swap; routing already works so.)

use super::component::{LoadError, LoadedComponent};
use super::engine::Runtime;
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The current version of one named component.
pub struct ComponentSlot {
    pub name: String,
    current: ArcSwap<LoadedComponent>,
}

impl ComponentSlot {
    fn new(component: LoadedComponent) -> Self {
        Self {
            name: component.name.clone(),
            current: ArcSwap::from_pointee(component),
        }
    }

    /// The version that will handle the next message.
    pub fn current(&self) -> Arc<LoadedComponent> {
        self.current.load_full()
    }
}

#[derive(Default)]
pub struct Registry {
    /// By component name (sorted, so routing order is stable).
    slots: BTreeMap<String, Arc<ComponentSlot>>,
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
}

impl Registry {
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
        let mut registry = Registry::default();
        let mut origins: BTreeMap<String, String> = BTreeMap::new();
        for path in paths {
            let component = runtime.load_file(&path)?;
            tracing::info!(
                component = %component.name, version = %component.version,
                digest = component.short_digest(), topics = ?component.topics,
                path = %path.display(), "loaded component"
            );
            if let Some(first) = origins.insert(component.name.clone(), path.display().to_string())
            {
                return Err(RegistryError::Duplicate {
                    name: component.name.clone(),
                    first,
                    second: path.display().to_string(),
                });
            }
            registry.insert(component);
        }
        if registry.slots.is_empty() {
            return Err(RegistryError::Empty(dir.display().to_string()));
        }
        Ok(registry)
    }

    pub fn insert(&mut self, component: LoadedComponent) {
        self.slots.insert(
            component.name.clone(),
            Arc::new(ComponentSlot::new(component)),
        );
    }

    /// The slots whose current version subscribes to `topic`.
    pub fn route(&self, topic: &str) -> Vec<Arc<ComponentSlot>> {
        self.slots
            .values()
            .filter(|s| s.current().topics.iter().any(|t| t == topic))
            .cloned()
            .collect()
    }

    /// Every topic some component subscribes to.
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
}
