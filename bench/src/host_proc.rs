//! The real `taskhost` binary as a child process: started on a free loopback port with the
//! environment a row asks for, waited for over HTTP, measured from `/proc`, killed on drop.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub struct HostSpec<'a> {
    pub binary: &'a Path,
    pub components_dir: &'a Path,
    pub database_url: String,
    pub cache_dir: PathBuf,
    /// Extra environment (`TASKHOST_DELIVERY=dapr`, …).
    pub env: Vec<(&'static str, String)>,
    /// Wait for `/readyz` (embedded) or only `/healthz` (Dapr mode without a sidecar stays
    /// unready by design, yet serves its delivery routes).
    pub wait_ready: bool,
    pub log: PathBuf,
    /// Listen on this loopback port (the app port a daprd calls) instead of a free one.
    pub port: Option<u16>,
}

pub struct Host {
    child: Child,
    pub url: String,
    /// Process start → the awaited health route answered 200.
    pub startup: Duration,
}

impl Host {
    pub async fn start(spec: HostSpec<'_>) -> anyhow::Result<Self> {
        let port = match spec.port {
            Some(p) => p,
            None => free_port()?,
        };
        let url = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(&spec.log)
            .with_context(|| format!("creating {}", spec.log.display()))?;
        let mut cmd = Command::new(spec.binary);
        cmd.arg("serve")
            .arg("--dev")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--components-dir")
            .arg(spec.components_dir)
            .arg("--database-url")
            .arg(&spec.database_url)
            .env("TASKHOST_CACHE_DIR", &spec.cache_dir)
            .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .env_remove("TASKHOST_DELIVERY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        let began = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", spec.binary.display()))?;
        let route = if spec.wait_ready {
            "/readyz"
        } else {
            "/healthz"
        };
        let client = reqwest::Client::new();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "taskhost exited with {status} before it was ready; see {}",
                    spec.log.display()
                );
            }
            if began.elapsed() > Duration::from_secs(120) {
                bail!(
                    "taskhost was not ready after 120 s; see {}",
                    spec.log.display()
                );
            }
            if let Ok(r) = client.get(format!("{url}{route}")).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(Self {
            startup: began.elapsed(),
            child,
            url,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Resident set size now, in MiB.
    pub fn rss_mib(&self) -> anyhow::Result<f64> {
        let pid = self.pid().context("taskhost has exited")?;
        rss_mib(pid)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

pub const ADMIN_TOKEN: &str = "taskhost-bench-admin-token";

pub fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    status_mib(&pid.to_string(), "VmRSS")
}

/// A memory figure of `/proc/<pid>/status` (`VmRSS`, `VmHWM`, …; `pid` may be `self`), in MiB.
pub fn status_mib(pid: &str, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(kib / 1024.0)
}

/// Samples a process's RSS every 100 ms until dropped; keeps the peak.
pub struct RssSampler {
    peak_kib: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let peak_kib = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let peak = peak_kib.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(mib) = rss_mib(pid) {
                    peak.fetch_max((mib * 1024.0) as u64, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { peak_kib, task }
    }

    pub fn peak_mib(self) -> f64 {
        self.task.abort();
        self.peak_kib.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A dev JWT for `user`, from the binary's own `token` subcommand.
pub fn dev_token(binary: &Path, user: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new(binary)
        .args(["token", user, "--dev"])
        .output()
        .context("running `taskhost token`")?;
    if !out.status.success() {
        bail!(
            "`taskhost token` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}
