//! Loading a component: compile (or fetch from the cache), resolve imports once into an
//! `InstancePre`, and ask the component who it is (`describe`). What a version must pass to be
//! loaded is checked here, for start-up and hot swap alike.

use super::bindings::{ConsumerPre, wit};
use super::component::{LoadError, LoadedComponent};
use super::engine::Runtime;
use super::sandbox::{CallState, new_store};
use super::stats::VersionStats;
use crate::domain::topics;
use chrono::Utc;
use sha2::{Digest, Sha256};
use std::path::Path;
use wasmtime::component::Component;

impl Runtime {
    /// Calls `describe()` on a fresh instance (at load time).
    pub(super) fn describe(&self, pre: &ConsumerPre<CallState>) -> anyhow::Result<wit::Manifest> {
        let (mut store, _stderr) = new_store(&self.engine, self.limits());
        let consumer = pre.instantiate(&mut store)?;
        Ok(consumer.todo_events_handler().call_describe(&mut store)?)
    }

    /// Loads a component from a file.
    pub fn load_file(&self, path: &Path) -> Result<LoadedComponent, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.load_bytes(&bytes, &path.display().to_string())
    }

    /// Loads a component from its bytes; `origin` names it in errors (a path, an upload).
    pub fn load_bytes(&self, bytes: &[u8], origin: &str) -> Result<LoadedComponent, LoadError> {
        let digest = hex::encode(Sha256::digest(bytes));
        let component = self.compile(bytes, &digest, origin)?;
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|e| LoadError::World {
                    origin: origin.into(),
                    reason: format!("{e:#}"),
                })?;
        let pre = ConsumerPre::new(instance_pre).map_err(|e| LoadError::World {
            origin: origin.into(),
            reason: format!("{e:#}"),
        })?;
        let manifest = self.describe(&pre).map_err(|e| LoadError::Describe {
            origin: origin.into(),
            reason: format!("{e:#}"),
        })?;
        validate_manifest(&manifest).map_err(|reason| LoadError::Manifest {
            origin: origin.into(),
            reason,
        })?;
        Ok(LoadedComponent {
            name: manifest.name,
            version: manifest.version,
            topics: manifest.topics,
            digest,
            loaded_at: Utc::now(),
            origin: origin.to_string(),
            stats: VersionStats::default(),
            pre,
        })
    }

    /// Compiles, or deserializes what an earlier compile of the same bytes by a compatible
    /// engine left in the cache. The cache is written atomically (temp file + rename).
    fn compile(&self, bytes: &[u8], digest: &str, origin: &str) -> Result<Component, LoadError> {
        let compile_err = |e: wasmtime::Error| LoadError::Compile {
            origin: origin.into(),
            reason: format!("{e:#}"),
        };
        let Some(dir) = &self.config.cache_dir else {
            return Component::new(&self.engine, bytes).map_err(compile_err);
        };
        let cached = dir.join(format!("{digest}-{}.cwasm", self.engine_fingerprint));
        if cached.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // compatibility fingerprint, into a directory only taskhost writes.
            match unsafe { Component::deserialize_file(&self.engine, &cached) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(path = %cached.display(), error = %e, "ignoring unusable compiled-component cache entry")
                }
            }
        }
        let component = Component::new(&self.engine, bytes).map_err(compile_err)?;
        if let Err(e) = write_cache(dir, &cached, &component) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot write the compiled-component cache");
        }
        Ok(component)
    }
}

fn write_cache(dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize()?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn validate_manifest(m: &wit::Manifest) -> Result<(), String> {
    let valid_name = !m.name.is_empty()
        && m.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid_name {
        return Err(format!(
            "component name `{}` must be non-empty lowercase [a-z0-9_-]",
            m.name
        ));
    }
    if m.topics.is_empty() {
        return Err(format!("component `{}` subscribes to no topic", m.name));
    }
    if let Some(t) = m.topics.iter().find(|t| !topics::ALL.contains(&t.as_str())) {
        return Err(format!(
            "component `{}` subscribes to `{t}`, which taskhost cannot decode (known: {})",
            m.name,
            topics::ALL.join(", ")
        ));
    }
    Ok(())
}
