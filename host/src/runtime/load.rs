//! Loading a component: compile (or fetch from the cache), resolve imports once into an
//! `InstancePre`, and ask the component who it is (`describe`). What a version must pass to be
//! loaded is checked here, for start-up and hot swap alike.

use super::bindings::{Consumer, ConsumerPre, wit};
use super::component::{LoadError, LoadedComponent};
use super::component_limits::{ComponentLimits, LimitRequest};
use super::engine::Runtime;
use super::handle_export::HandleExport;
use super::image::ImageInit;
use super::sandbox::{CallState, new_store};
use super::stats::VersionStats;
use crate::domain::topics;
use chrono::Utc;
use sha2::{Digest, Sha256};
use std::path::Path;
use wasmtime::component::Component;

/// What `describe()` told at load time.
pub(super) struct Described {
    pub manifest: wit::Manifest,
    /// Linear memory of a fresh instance: its memory image.
    pub start_memory: usize,
    /// Its `handle` export, type-checked.
    pub handle: HandleExport,
}

impl Runtime {
    /// Calls `describe()` on a fresh instance (at load time), with the ceilings as limits: the
    /// component's own limits depend on its name, which this tells. Also says how much linear
    /// memory the instance held before running any code.
    pub(super) fn describe(&self, pre: &ConsumerPre<CallState>) -> anyhow::Result<Described> {
        let ceilings = self.ceilings();
        let (mut store, _stderr) = new_store(
            pre.engine(),
            self.limits(),
            ceilings.memory_bytes,
            ceilings.call_timeout,
        );
        let instance = pre.instance_pre().instantiate(&mut store)?;
        let start_memory = store.data().memory.peak;
        let handle = HandleExport::find(pre.instance_pre(), &mut store, &instance)?;
        let consumer = Consumer::new(&mut store, &instance)?;
        let manifest = consumer.todo_events_handler().call_describe(&mut store)?;
        Ok(Described {
            manifest,
            start_memory,
            handle,
        })
    }

    /// Loads a component from a file, with the host-wide default limits.
    pub fn load_file(&self, path: &Path) -> Result<LoadedComponent, LoadError> {
        self.load_file_with(path, &|_| Ok(LimitRequest::default()))
    }

    /// Loads a component from a file with the limits `limits_for(name)` asks for.
    pub fn load_file_with(
        &self,
        path: &Path,
        limits_for: &dyn Fn(&str) -> Result<LimitRequest, String>,
    ) -> Result<LoadedComponent, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.load_bytes_with(&bytes, &path.display().to_string(), limits_for)
    }

    /// Loads a component from its bytes; `origin` names it in errors (a path, an upload). It
    /// gets the host-wide default limits.
    pub fn load_bytes(&self, bytes: &[u8], origin: &str) -> Result<LoadedComponent, LoadError> {
        self.load_bytes_with(bytes, origin, &|_| Ok(LimitRequest::default()))
    }

    /// Loads a component from its bytes with the limits `limits_for(name)` asks for, `name`
    /// being what its `describe()` says. This is every check a version must pass before it
    /// serves — at start-up, on a push, for a watched file, and in `taskhost build`:
    /// it compiles, targets the world, describes itself validly, its limits are within the
    /// host's ceilings, and its memory image fits its memory limit.
    pub fn load_bytes_with(
        &self,
        bytes: &[u8],
        origin: &str,
        limits_for: &dyn Fn(&str) -> Result<LimitRequest, String>,
    ) -> Result<LoadedComponent, LoadError> {
        let digest = hex::encode(Sha256::digest(bytes));
        let init = ImageInit::for_component(bytes);
        let component = self.compile(bytes, &digest, origin, init)?;
        let instance_pre = self
            .flavour(init)
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::World {
                origin: origin.into(),
                reason: format!("{e:#}"),
            })?;
        let pre = ConsumerPre::new(instance_pre).map_err(|e| LoadError::World {
            origin: origin.into(),
            reason: format!("{e:#}"),
        })?;
        let described = self.describe(&pre).map_err(|e| LoadError::Describe {
            origin: origin.into(),
            reason: format!("{e:#}"),
        })?;
        let manifest = described.manifest;
        validate_manifest(&manifest).map_err(|reason| LoadError::Manifest {
            origin: origin.into(),
            reason,
        })?;
        let limits_error = |reason| LoadError::Limits {
            origin: origin.into(),
            reason,
        };
        let request = limits_for(&manifest.name).map_err(limits_error)?;
        let limits = ComponentLimits::resolve(self.limits(), self.ceilings(), &request)
            .map_err(limits_error)?;
        limits
            .check_image_fits(&manifest.name, described.start_memory)
            .map_err(limits_error)?;
        Ok(LoadedComponent {
            metrics: crate::metrics::VersionMetrics::new(
                &manifest.name,
                &manifest.version,
                &manifest.topics,
            ),
            name: manifest.name,
            version: manifest.version,
            topics: manifest.topics,
            digest,
            loaded_at: Utc::now(),
            origin: origin.to_string(),
            stats: VersionStats::default(),
            limits,
            start_memory_bytes: described.start_memory,
            pre,
            handle: described.handle,
        })
    }

    /// Compiles, or deserializes what an earlier compile of the same bytes by a compatible
    /// engine left in the cache. The cache is written atomically (temp file + rename).
    fn compile(
        &self,
        bytes: &[u8],
        digest: &str,
        origin: &str,
        init: ImageInit,
    ) -> Result<Component, LoadError> {
        let flavour = self.flavour(init);
        let compile_err = |e: wasmtime::Error| LoadError::Compile {
            origin: origin.into(),
            reason: format!("{e:#}"),
        };
        let Some(dir) = &self.config.cache_dir else {
            return Component::new(&flavour.engine, bytes).map_err(compile_err);
        };
        let cached = dir.join(format!("{digest}-{}.cwasm", flavour.fingerprint));
        if cached.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // compatibility fingerprint, into a directory only taskhost writes.
            match unsafe { Component::deserialize_file(&flavour.engine, &cached) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(path = %cached.display(), error = %e, "ignoring unusable compiled-component cache entry")
                }
            }
        }
        let component = Component::new(&flavour.engine, bytes).map_err(compile_err)?;
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

/// What `describe()` must say: a valid name and topics taskhost can decode. Public so that
/// `taskhost new` holds a new project to the very same rules.
pub fn validate_manifest(m: &wit::Manifest) -> Result<(), String> {
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
