//! Built components by the digest of everything that went into them — the project's files,
//! its WIT and the toolchain's pinned version — under `~/.cache/taskhost/builds`. The same
//! inputs give the same component, so a second build of them is a copy, not a minute of
//! componentize-py or componentize-js. Only the newest [`KEEP`] builds are kept.

use super::project::Project;
use super::toolchain::Toolchain;
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Builds kept (a Python build is ~18 MB).
const KEEP: usize = 24;

/// What is not an input of a build: outputs, caches, dependencies fetched by tools.
const SKIPPED: [&str; 7] = [
    "target",
    "dist",
    "bindings",
    "node_modules",
    "__pycache__",
    ".git",
    ".pytest_cache",
];

pub struct BuildCache {
    dir: PathBuf,
}

impl BuildCache {
    pub fn open() -> anyhow::Result<Self> {
        let root = std::env::var_os("TASKHOST_CACHE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/taskhost")))
            .context("neither TASKHOST_CACHE nor HOME is set: no place for the build cache")?;
        Ok(Self {
            dir: root.join("builds"),
        })
    }

    /// The digest of the project's inputs.
    pub fn key(&self, project: &Project, toolchain: &Toolchain) -> anyhow::Result<String> {
        let mut hash = Sha256::new();
        hash.update(b"taskhost-build-1\0");
        hash.update(project.language.as_str());
        hash.update(b"\0");
        hash.update(toolchain.id());
        hash.update(b"\0");
        hash_tree(&mut hash, &project.dir, &project.dir)?;
        // The WIT may live outside the project (a project inside the taskhost repository).
        hash_tree(&mut hash, &project.wit, &project.wit)?;
        Ok(hex::encode(hash.finalize()))
    }

    /// Copies the build of `key` to `out`, if there is one.
    pub fn restore(&self, key: &str, out: &Path) -> anyhow::Result<bool> {
        let cached = self.path(key);
        if !cached.is_file() {
            return Ok(false);
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&cached, out)
            .with_context(|| format!("copying {} to {}", cached.display(), out.display()))?;
        // Kept as recently used.
        let _ =
            std::fs::File::open(&cached).and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Ok(true)
    }

    /// Keeps `out` as the build of `key` (written atomically), and forgets the oldest builds.
    pub fn store(&self, key: &str, out: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let tmp = self.dir.join(format!("{key}.tmp{}", std::process::id()));
        std::fs::copy(out, &tmp)?;
        std::fs::rename(&tmp, self.path(key))?;
        self.prune();
        Ok(())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.wasm"))
    }

    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut builds: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        builds.sort();
        let excess = builds.len().saturating_sub(KEEP);
        for (_, path) in builds.into_iter().take(excess) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Hashes every file under `dir` (relative path and content, in a stable order), skipping
/// [`SKIPPED`] directories.
fn hash_tree(hash: &mut Sha256, root: &Path, dir: &Path) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        // Followed through symbolic links: what a build reads.
        let kind = std::fs::metadata(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .file_type();
        if kind.is_dir() {
            if !SKIPPED.contains(&entry.file_name().to_string_lossy().as_ref()) {
                hash_tree(hash, root, &path)?;
            }
        } else if kind.is_file() {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            hash.update(relative.to_string_lossy().as_bytes());
            hash.update(b"\0");
            let content =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            hash.update((content.len() as u64).to_le_bytes());
            hash.update(&content);
        }
    }
    Ok(())
}
