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
//! A file maps to the component it was loaded as at start-up (else to the component named by
//! its file stem), and the new version must have that name. Removing a file changes nothing:
//! the serving version keeps serving until a restart.

use crate::runtime::{Registry, SwapError};
use notify::{EventKind, RecursiveMode, Watcher, event::ModifyKind};
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
    Ok(tokio::spawn(async move {
        // The watcher stops when dropped: it lives as long as this task.
        let _watcher = watcher;
        run(registry, rx, debounce, shutdown).await;
    }))
}

async fn run(
    registry: Arc<Registry>,
    mut events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    debounce: Duration,
    shutdown: CancellationToken,
) {
    // File → when it is quiet enough to be read.
    let mut pending: HashMap<PathBuf, Instant> = HashMap::new();
    loop {
        let next_due = pending.values().min().copied();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.recv() => match event {
                None => return,
                Some(Err(e)) => tracing::warn!(error = %e, "watching the components directory failed for one event"),
                Some(Ok(event)) => {
                    if is_content_change(&event.kind) {
                        for path in event.paths.into_iter().filter(|p| is_component_file(p)) {
                            pending.insert(path, Instant::now() + debounce);
                        }
                    }
                }
            },
            _ = sleep_until(next_due) => {
                let now = Instant::now();
                let due: Vec<PathBuf> = pending.iter().filter(|(_, at)| **at <= now).map(|(p, _)| p.clone()).collect();
                for path in due {
                    pending.remove(&path);
                    load(&registry, &path).await;
                }
            }
        }
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

/// The component a file stands for: the one loaded from it at start-up, else its stem.
fn component_for(registry: &Registry, path: &Path) -> Option<String> {
    let name = path.file_name()?;
    registry
        .slots()
        .find(|s| s.path.as_deref().and_then(Path::file_name) == Some(name))
        .map(|s| s.name.clone())
        .or_else(|| Some(path.file_stem()?.to_str()?.to_string()))
}

async fn load(registry: &Registry, path: &Path) {
    let Some(name) = component_for(registry, path) else {
        return;
    };
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(path = %path.display(), component = %name, "component file removed; the serving version keeps serving until a restart");
            return;
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the changed component file");
            return;
        }
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
}
