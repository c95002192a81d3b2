//! The components directory, watched: a `.wasm` file that changes becomes the next version of
//! its component (hot swap), once the file has stopped changing and only if it validates.
//!
//! A half-written file is never served:
//! - only files named `*.wasm` count, so the usual way to replace one — write `x.wasm.tmp`
//!   (or any other name), then rename it over `x.wasm` — is seen once, when the rename lands;
//! - a file is read only after [`debounce`](spawn) of quiet (no event for it), so a writer that
//!   writes in place is usually done by then;
//! - and whatever is read must pass the full validation of a swap (a truncated component does
//!   not compile; see `runtime/swap.rs`), else it is refused, logged, and the serving version
//!   keeps serving. The next write to the file triggers another attempt.
//!
//! **Kubernetes ConfigMap (and Secret, projected) volumes** change differently: the kubelet
//! writes the new files into a fresh hidden directory (`..2026_01_31_10_00_00.123`), points a
//! `..data_tmp` symlink at it and renames that over `..data`; the visible `audit.wasm` is a
//! symlink to `..data/audit.wasm` and never gets an event of its own. So an event on any name
//! starting with `..` schedules a *rescan* (debounced like a file): every visible `*.wasm` is
//! read, and only those whose sha256 differs from the last one this watcher saw for that file
//! are swapped. Comparing with the last *seen* bytes, not with the serving version, keeps a
//! version pushed through the admin API serving when an unrelated file of the volume changes.
//!
//! A file maps to the component it was loaded as at start-up (else to the component named by
//! its file stem), and the new version must have that name. Removing a file changes nothing:
//! the serving version keeps serving until a restart.

use crate::runtime::{Registry, SwapError};
use notify::{EventKind, RecursiveMode, Watcher, event::ModifyKind};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Starts watching `dir`; the returned task runs until `shutdown`.
pub fn spawn(
    registry: Arc<Registry>,
    dir: &Path,
    debounce: Duration,
    shutdown: CancellationToken,
) -> notify::Result<tokio::task::JoinHandle<()>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // The receiver is gone only when the task has stopped: nothing to tell anyone.
        let _ = tx.send(event);
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    tracing::info!(dir = %dir.display(), ?debounce, "watching the components directory for new versions");
    let watch = Watch {
        seen: start_up_digests(&registry),
        registry,
        dir: dir.to_path_buf(),
    };
    Ok(tokio::spawn(async move {
        // The watcher stops when dropped: it lives as long as this task.
        let _watcher = watcher;
        watch.run(rx, debounce, shutdown).await;
    }))
}

/// What a settled event asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Target {
    /// One `*.wasm` file was written, renamed over or removed.
    File(PathBuf),
    /// A `..`-name changed (a kubelet volume update): look at every file.
    Rescan,
}

/// Which target an event path stands for, if any.
fn target_of(path: &Path) -> Option<Target> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with("..") {
        Some(Target::Rescan)
    } else if is_component_file(path) {
        Some(Target::File(path.to_path_buf()))
    } else {
        None
    }
}

struct Watch {
    registry: Arc<Registry>,
    dir: PathBuf,
    /// File → sha256 of the bytes last read from it (or loaded from it at start-up).
    seen: HashMap<PathBuf, String>,
}

/// The digests the start-up versions were loaded with, by file.
fn start_up_digests(registry: &Registry) -> HashMap<PathBuf, String> {
    registry
        .slots()
        .filter_map(|s| Some((s.path.clone()?, s.current().digest.clone())))
        .collect()
}

impl Watch {
    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
        debounce: Duration,
        shutdown: CancellationToken,
    ) {
        // Target → when it is quiet enough to be read.
        let mut pending: HashMap<Target, Instant> = HashMap::new();
        loop {
            let next_due = pending.values().min().copied();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                event = events.recv() => match event {
                    None => return,
                    Some(Err(e)) => tracing::warn!(error = %e, "watching the components directory failed for one event"),
                    Some(Ok(event)) => {
                        if is_content_change(&event.kind) {
                            for target in event.paths.iter().filter_map(|p| target_of(p)) {
                                pending.insert(target, Instant::now() + debounce);
                            }
                        }
                    }
                },
                _ = sleep_until(next_due) => {
                    let now = Instant::now();
                    let due: Vec<Target> = pending.iter().filter(|(_, at)| **at <= now).map(|(t, _)| t.clone()).collect();
                    for target in due {
                        pending.remove(&target);
                        match target {
                            Target::File(path) => self.file_changed(&path).await,
                            Target::Rescan => self.rescan().await,
                        }
                    }
                }
            }
        }
    }

    /// A write or rename onto the file itself: always an attempt (the swap skips bytes that
    /// are already serving).
    async fn file_changed(&mut self, path: &Path) {
        let Some(bytes) = read(path).await else {
            return;
        };
        self.seen.insert(path.to_path_buf(), digest(&bytes));
        swap(&self.registry, path, bytes).await;
    }

    /// Every visible `*.wasm` of the directory whose bytes changed since last seen.
    async fn rescan(&mut self) {
        let files = match list_components(&self.dir).await {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot list the components directory after a volume update");
                return;
            }
        };
        let mut changed = 0;
        for path in files {
            let Some(bytes) = read(&path).await else {
                continue;
            };
            let d = digest(&bytes);
            if self.seen.get(&path) == Some(&d) {
                continue;
            }
            changed += 1;
            self.seen.insert(path.clone(), d);
            swap(&self.registry, &path, bytes).await;
        }
        tracing::info!(dir = %self.dir.display(), changed, "components directory updated as a whole (`..data` switched)");
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Creations, writes, renames and removals; not metadata changes (a `touch` of an unchanged
/// file would only find the same digest anyway).
fn is_content_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Any | EventKind::Access(_) | EventKind::Other => false,
    }
}

fn is_component_file(path: &Path) -> bool {
    let visible = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| !n.starts_with('.'));
    visible && path.extension().is_some_and(|e| e == "wasm")
}

/// The visible `*.wasm` entries of `dir` (symlinks included: a ConfigMap volume's files are).
async fn list_components(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries = tokio::fs::read_dir(dir).await?;
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        if is_component_file(&path) {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The component a file stands for: the one loaded from it at start-up, else its stem.
fn component_for(registry: &Registry, path: &Path) -> Option<String> {
    let name = path.file_name()?;
    registry
        .slots()
        .find(|s| s.path.as_deref().and_then(Path::file_name) == Some(name))
        .map(|s| s.name.clone())
        .or_else(|| Some(path.file_stem()?.to_str()?.to_string()))
}

/// The file's bytes; `None` (logged) when it is gone or unreadable.
async fn read(path: &Path) -> Option<Vec<u8>> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(path = %path.display(), "component file removed; the serving version keeps serving until a restart");
            None
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the changed component file");
            None
        }
    }
}

async fn swap(registry: &Registry, path: &Path, bytes: Vec<u8>) {
    let Some(name) = component_for(registry, path) else {
        return;
    };
    match registry
        .swap_bytes(&name, bytes, &path.display().to_string())
        .await
    {
        Ok(_) => {}
        Err(SwapError::UnknownComponent { .. }) => tracing::warn!(
            path = %path.display(),
            "a new component file appeared: it will be loaded at the next restart (hot swap only replaces loaded components)"
        ),
        // Logged and journaled by the swap itself.
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_wasm_files_count() {
        assert!(is_component_file(Path::new("/c/audit.wasm")));
        assert!(!is_component_file(Path::new("/c/audit.wasm.tmp")));
        assert!(!is_component_file(Path::new("/c/.audit.wasm")));
        assert!(!is_component_file(Path::new("/c/audit.part")));
    }

    #[test]
    fn kubelet_names_ask_for_a_rescan() {
        for name in ["..data", "..data_tmp", "..2026_01_31_10_00_00.123"] {
            assert_eq!(
                target_of(&Path::new("/c").join(name)),
                Some(Target::Rescan),
                "{name}"
            );
        }
        assert_eq!(
            target_of(Path::new("/c/audit.wasm")),
            Some(Target::File("/c/audit.wasm".into()))
        );
        assert_eq!(target_of(Path::new("/c/.audit.wasm.swp")), None);
        assert_eq!(target_of(Path::new("/c/audit.wasm.tmp")), None);
    }
}
