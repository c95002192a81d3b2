//! Configuration: flags, each with a `TASKHOST_*` environment variable. Values are checked
//! before anything starts, and an error says which setting is wrong and how to fix it.

use crate::runtime::{
    AutoRollback, Ceilings, LARGE_IMAGE_KEEP_RESIDENT, Limits, RuntimeConfig, SwapPolicy,
};
use anyhow::{Context, bail};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Kept in the API's auth module (the dev sign-in checks for it); re-exported here, with the
/// settings that choose it.
pub use crate::api::auth::DEV_JWT_SECRET;

#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// HS256 secret for API tokens (at least 32 bytes).
    #[arg(long, env = "TASKHOST_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Development mode: allows the built-in development JWT secret. Never in production.
    #[arg(long, env = "TASKHOST_DEV")]
    pub dev: bool,
}

impl AuthArgs {
    pub fn secret(&self) -> anyhow::Result<Vec<u8>> {
        match (&self.jwt_secret, self.dev) {
            (Some(s), _) if s.len() >= 32 => Ok(s.clone().into_bytes()),
            (Some(s), _) => bail!(
                "TASKHOST_JWT_SECRET is {} bytes long; use at least 32 random bytes",
                s.len()
            ),
            (None, true) => Ok(DEV_JWT_SECRET.as_bytes().to_vec()),
            (None, false) => bail!(
                "no JWT secret: set TASKHOST_JWT_SECRET (at least 32 bytes), or pass --dev to use the development secret"
            ),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (use port 0 for any free port).
    #[arg(long, env = "TASKHOST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// sqlite://path?mode=rwc (embedded default) or postgres://user:pass@host/db.
    #[arg(
        long,
        env = "TASKHOST_DATABASE_URL",
        default_value = "sqlite://data/taskhost.db?mode=rwc"
    )]
    pub database_url: String,
    /// PostgreSQL pool size (SQLite always uses one connection).
    #[arg(long, env = "TASKHOST_DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,
    #[command(flatten)]
    pub components: ComponentArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Token for the /admin routes; without it they are disabled.
    #[arg(long, env = "TASKHOST_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Attempts per outbox event before it is dead-lettered.
    #[arg(long, env = "TASKHOST_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: u32,
    /// Wait before the second attempt of a failed delivery, in milliseconds; it doubles with
    /// every further attempt, up to TASKHOST_RETRY_MAX_BACKOFF_MS.
    #[arg(long, env = "TASKHOST_RETRY_BACKOFF_MS", default_value_t = 200)]
    pub retry_backoff_ms: u64,
    /// Longest wait between two attempts, in milliseconds.
    #[arg(long, env = "TASKHOST_RETRY_MAX_BACKOFF_MS", default_value_t = 30_000)]
    pub retry_max_backoff_ms: u64,
    #[command(flatten)]
    pub swap: SwapArgs,
    #[command(flatten)]
    pub dapr: crate::dapr::DaprArgs,
    #[command(flatten)]
    pub traces: crate::telemetry::TraceArgs,
    /// How long a SIGTERM waits for in-flight work before exiting.
    #[arg(long, env = "TASKHOST_SHUTDOWN_GRACE_MS", default_value_t = 10_000)]
    pub shutdown_grace_ms: u64,
    #[command(flatten)]
    pub retention: RetentionArgs,
}

/// How long delivered outbox rows and exactly-once records are kept (storage/retention.rs).
///
/// Hours, fractions allowed (`0.25` is 15 minutes): production keeps days, a soak or a test
/// that wants to watch the tables level off keeps minutes.
#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// Hours a delivered outbox event is kept before it is deleted (fractions allowed, at least
    /// one minute); 0 keeps them forever.
    #[arg(long, env = "TASKHOST_OUTBOX_RETENTION_HOURS", default_value_t = 168.0)]
    pub outbox_retention_hours: f64,
    /// Hours an exactly-once record is kept (fractions allowed, at least one minute); it must
    /// outlive every redelivery of its event (topic and dead-letter topic retention, replays).
    /// 0 keeps them forever.
    #[arg(
        long,
        env = "TASKHOST_PROCESSED_RETENTION_HOURS",
        default_value_t = 840.0
    )]
    pub processed_retention_hours: f64,
    /// Minutes between two retention passes.
    #[arg(
        long,
        env = "TASKHOST_RETENTION_INTERVAL_MINUTES",
        default_value_t = 10
    )]
    pub retention_interval_minutes: u64,
}

impl RetentionArgs {
    pub fn policy(&self) -> anyhow::Result<crate::storage::retention::RetentionPolicy> {
        let outbox = retention_hours(
            "TASKHOST_OUTBOX_RETENTION_HOURS",
            self.outbox_retention_hours,
        )?;
        let processed = retention_hours(
            "TASKHOST_PROCESSED_RETENTION_HOURS",
            self.processed_retention_hours,
        )?;
        if !(1..=24 * 60).contains(&self.retention_interval_minutes) {
            bail!(
                "TASKHOST_RETENTION_INTERVAL_MINUTES must be 1..=1440, not {}",
                self.retention_interval_minutes
            );
        }
        Ok(crate::storage::retention::RetentionPolicy {
            outbox_delivered: outbox,
            processed,
            every: Duration::from_secs(self.retention_interval_minutes * 60),
        })
    }
}

/// A retention in hours: `0` keeps forever (`None`), otherwise one minute ..= ten years.
fn retention_hours(name: &str, hours: f64) -> anyhow::Result<Option<Duration>> {
    const MAX_HOURS: f64 = 24.0 * 365.0 * 10.0;
    const MIN_HOURS: f64 = 1.0 / 60.0;
    if hours == 0.0 {
        return Ok(None);
    }
    // A rounding of one minute (0.0167) is accepted as one minute.
    if !hours.is_finite() || !(MIN_HOURS - 1e-3..=MAX_HOURS).contains(&hours) {
        bail!(
            "{name} must be 0 (keep forever) or hours from one minute (0.0167) to ten years \
             ({MAX_HOURS}), not {hours}"
        );
    }
    Ok(Some(Duration::from_secs_f64((hours * 3600.0).max(60.0))))
}

/// Where components come from and what each call may use.
#[derive(Debug, Clone, Args)]
pub struct ComponentArgs {
    /// Directory of consumer components (*.wasm).
    #[arg(
        long,
        env = "TASKHOST_COMPONENTS_DIR",
        default_value = "target/components"
    )]
    pub components_dir: PathBuf,
    /// Cache of compiled components (default: $XDG_CACHE_HOME or ~/.cache, /taskhost/compiled).
    #[arg(long, env = "TASKHOST_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile components on every start instead of caching.
    #[arg(long, env = "TASKHOST_NO_CACHE")]
    pub no_cache: bool,
    /// Wall-clock limit for one component call, in milliseconds (the default of components not
    /// given their own).
    #[arg(long, env = "TASKHOST_CALL_TIMEOUT_MS", default_value_t = 500)]
    pub call_timeout_ms: u64,
    /// Memory limit per component instance, in MiB (the default of components not given their
    /// own).
    #[arg(long, env = "TASKHOST_MEMORY_LIMIT_MIB", default_value_t = 64)]
    pub memory_limit_mib: usize,
    /// The largest memory limit a component may be given (at push or in limits.toml), in MiB;
    /// default: 256, or TASKHOST_MEMORY_LIMIT_MIB if larger. Every instance slot of the pooling
    /// allocator is sized for it.
    #[arg(long, env = "TASKHOST_MAX_MEMORY_LIMIT_MIB")]
    pub max_memory_limit_mib: Option<usize>,
    /// The longest call timeout a component may be given, in milliseconds; default: 10000, or
    /// TASKHOST_CALL_TIMEOUT_MS if longer.
    #[arg(long, env = "TASKHOST_MAX_CALL_TIMEOUT_MS")]
    pub max_call_timeout_ms: Option<u64>,
    /// Most effects one call may return.
    #[arg(long, env = "TASKHOST_MAX_EFFECTS", default_value_t = 256)]
    pub max_effects: usize,
    /// Most bytes of text (titles, payloads, ids, ...) all effects of one call may carry.
    #[arg(long, env = "TASKHOST_MAX_EFFECT_BYTES", default_value_t = 4 << 20)]
    pub max_effect_bytes: usize,
    /// MiB of the pages a large (Python, JavaScript) component's instance wrote that its pool
    /// slot keeps resident when the instance is freed, so that the next message does not fault
    /// them in again: such components cost half to a third of the CPU with it, paid in up to
    /// this much (~10 MiB for the Python audit) kept per wasm thread at rest. 0: give them all back. Taken only on Linux 6.7+
    /// (PAGEMAP_SCAN).
    #[arg(long, env = "TASKHOST_LARGE_IMAGE_KEEP_RESIDENT_MIB", default_value_t = LARGE_IMAGE_KEEP_RESIDENT >> 20)]
    pub large_image_keep_resident_mib: usize,
}

impl ComponentArgs {
    pub fn runtime_config(&self) -> anyhow::Result<RuntimeConfig> {
        if !(1..=60_000).contains(&self.call_timeout_ms) {
            bail!(
                "TASKHOST_CALL_TIMEOUT_MS must be 1..=60000, not {}",
                self.call_timeout_ms
            );
        }
        if !(1..=4096).contains(&self.memory_limit_mib) {
            bail!(
                "TASKHOST_MEMORY_LIMIT_MIB must be 1..=4096, not {}",
                self.memory_limit_mib
            );
        }
        // The ceilings bound the components' own limits; the defaults must fit under them.
        let defaults = Ceilings::default();
        let max_memory_mib = self
            .max_memory_limit_mib
            .unwrap_or((defaults.memory_bytes >> 20).max(self.memory_limit_mib));
        if !(self.memory_limit_mib..=4096).contains(&max_memory_mib) {
            bail!(
                "TASKHOST_MAX_MEMORY_LIMIT_MIB must be TASKHOST_MEMORY_LIMIT_MIB ({})..=4096, not {max_memory_mib}",
                self.memory_limit_mib,
            );
        }
        let max_timeout_ms = self
            .max_call_timeout_ms
            .unwrap_or((defaults.call_timeout.as_millis() as u64).max(self.call_timeout_ms));
        if !(self.call_timeout_ms..=60_000).contains(&max_timeout_ms) {
            bail!(
                "TASKHOST_MAX_CALL_TIMEOUT_MS must be TASKHOST_CALL_TIMEOUT_MS ({})..=60000, not {max_timeout_ms}",
                self.call_timeout_ms,
            );
        }
        if !(1..=100_000).contains(&self.max_effects) {
            bail!(
                "TASKHOST_MAX_EFFECTS must be 1..=100000, not {}",
                self.max_effects
            );
        }
        if !(1024..=(256 << 20)).contains(&self.max_effect_bytes) {
            bail!(
                "TASKHOST_MAX_EFFECT_BYTES must be 1024..=268435456, not {}",
                self.max_effect_bytes
            );
        }
        if self.large_image_keep_resident_mib > max_memory_mib {
            bail!(
                "TASKHOST_LARGE_IMAGE_KEEP_RESIDENT_MIB must be 0..=TASKHOST_MAX_MEMORY_LIMIT_MIB ({max_memory_mib}), not {}",
                self.large_image_keep_resident_mib
            );
        }
        let cache_dir = if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(default_cache_dir)
        };
        Ok(RuntimeConfig {
            limits: Limits {
                call_timeout: Duration::from_millis(self.call_timeout_ms),
                memory_bytes: self.memory_limit_mib << 20,
                max_effects: self.max_effects,
                max_effect_bytes: self.max_effect_bytes,
                ..Limits::default()
            },
            ceilings: Ceilings {
                memory_bytes: max_memory_mib << 20,
                call_timeout: Duration::from_millis(max_timeout_ms),
            },
            cache_dir,
            large_image_keep_resident: self.large_image_keep_resident_mib << 20,
            ..RuntimeConfig::default()
        })
    }

    pub fn checked_dir(&self) -> anyhow::Result<&PathBuf> {
        let dir = &self.components_dir;
        if !dir.is_dir() {
            bail!(
                "components directory {} does not exist: build the components with `just build-components` \
                 or point TASKHOST_COMPONENTS_DIR at a directory of .wasm files",
                dir.display()
            );
        }
        Ok(dir)
    }
}

/// Hot swap: the watched components directory, versions kept, automatic rollback.
#[derive(Debug, Clone, Args)]
pub struct SwapArgs {
    /// Swap a component when its .wasm in the components directory changes.
    #[arg(long, env = "TASKHOST_WATCH_COMPONENTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub watch_components: bool,
    /// Quiet time after the last change of a .wasm file before it is loaded, in milliseconds.
    #[arg(long, env = "TASKHOST_WATCH_DEBOUNCE_MS", default_value_t = 300)]
    pub watch_debounce_ms: u64,
    /// Replaced versions kept per component for instant rollback.
    #[arg(long, env = "TASKHOST_KEEP_VERSIONS", default_value_t = 5)]
    pub keep_versions: usize,
    /// Roll a swapped-in version back on its own when it fails too often in its first minutes.
    #[arg(long, env = "TASKHOST_AUTO_ROLLBACK", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_rollback: bool,
    /// How long after a swap the new version is on probation, in seconds.
    #[arg(
        long,
        env = "TASKHOST_AUTO_ROLLBACK_WINDOW_SECS",
        default_value_t = 300
    )]
    pub auto_rollback_window_secs: u64,
    /// Share of failed calls (traps, timeouts, retry or drop answers) that rolls back, 0..1.
    #[arg(
        long,
        env = "TASKHOST_AUTO_ROLLBACK_FAILURE_RATE",
        default_value_t = 0.5
    )]
    pub auto_rollback_failure_rate: f64,
    /// Calls a new version must have made before its failure rate counts.
    #[arg(
        long,
        env = "TASKHOST_AUTO_ROLLBACK_MIN_MESSAGES",
        default_value_t = 20
    )]
    pub auto_rollback_min_messages: u64,
}

impl SwapArgs {
    pub fn policy(&self) -> anyhow::Result<SwapPolicy> {
        if self.keep_versions > 100 {
            bail!(
                "TASKHOST_KEEP_VERSIONS must be 0..=100, not {} (each kept version holds its compiled code in memory)",
                self.keep_versions
            );
        }
        if !(self.auto_rollback_failure_rate > 0.0 && self.auto_rollback_failure_rate <= 1.0) {
            bail!(
                "TASKHOST_AUTO_ROLLBACK_FAILURE_RATE must be in (0, 1], not {}",
                self.auto_rollback_failure_rate
            );
        }
        if !(10..=60_000).contains(&self.watch_debounce_ms) {
            bail!(
                "TASKHOST_WATCH_DEBOUNCE_MS must be 10..=60000, not {}",
                self.watch_debounce_ms
            );
        }
        Ok(SwapPolicy {
            keep_versions: self.keep_versions,
            auto_rollback: self.auto_rollback.then(|| AutoRollback {
                window: Duration::from_secs(self.auto_rollback_window_secs),
                failure_rate: self.auto_rollback_failure_rate,
                min_messages: self.auto_rollback_min_messages,
            }),
        })
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("taskhost").join("compiled"))
}

impl ServeArgs {
    /// How failed deliveries are retried before they are dead-lettered.
    pub fn retry_policy(&self) -> anyhow::Result<crate::delivery::RetryPolicy> {
        if !(1..=3_600_000).contains(&self.retry_backoff_ms) {
            bail!(
                "TASKHOST_RETRY_BACKOFF_MS must be 1..=3600000, not {}",
                self.retry_backoff_ms
            );
        }
        if !(self.retry_backoff_ms..=3_600_000).contains(&self.retry_max_backoff_ms) {
            bail!(
                "TASKHOST_RETRY_MAX_BACKOFF_MS must be at least TASKHOST_RETRY_BACKOFF_MS ({}) and at most 3600000, not {}",
                self.retry_backoff_ms,
                self.retry_max_backoff_ms
            );
        }
        Ok(crate::delivery::RetryPolicy {
            max_attempts: self.max_attempts,
            initial_backoff: Duration::from_millis(self.retry_backoff_ms),
            max_backoff: Duration::from_millis(self.retry_max_backoff_ms),
        })
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.auth.secret()?;
        if !(1..=1000).contains(&self.max_attempts) {
            bail!(
                "TASKHOST_MAX_ATTEMPTS must be 1..=1000, not {}",
                self.max_attempts
            );
        }
        self.retry_policy()?;
        if !(1..=1000).contains(&self.db_max_connections) {
            bail!(
                "TASKHOST_DB_MAX_CONNECTIONS must be 1..=1000, not {}",
                self.db_max_connections
            );
        }
        if let Some(t) = &self.admin_token
            && t.len() < 16
        {
            bail!("TASKHOST_ADMIN_TOKEN must be at least 16 characters");
        }
        self.components
            .checked_dir()
            .context("checking TASKHOST_COMPONENTS_DIR")?;
        self.swap.policy()?;
        self.retention.policy()?;
        self.dapr.validate()?;
        self.traces.endpoint()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_takes_fractions_of_an_hour_and_names_a_bad_value() {
        let minutes = |h| retention_hours("X", h).unwrap().map(|d| d.as_secs() / 60);
        assert_eq!(minutes(0.0), None, "0 keeps forever");
        assert_eq!(minutes(0.25), Some(15));
        assert_eq!(minutes(0.0167), Some(1), "a rounded minute is a minute");
        assert_eq!(minutes(168.0), Some(168 * 60));
        for bad in [0.001, -1.0, f64::NAN, f64::INFINITY, 1e9] {
            let e = retention_hours("TASKHOST_OUTBOX_RETENTION_HOURS", bad)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("TASKHOST_OUTBOX_RETENTION_HOURS") && e.contains("one minute"),
                "{e}"
            );
        }
    }

    /// The component settings as the command line gives them (environment variables aside).
    fn component_args(flags: &[&str]) -> ComponentArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            components: ComponentArgs,
        }
        let args = std::iter::once("taskhost").chain(flags.iter().copied());
        <Cli as clap::Parser>::try_parse_from(args)
            .expect("the flags parse")
            .components
    }

    #[test]
    fn large_images_keep_16_mib_resident_unless_told_and_never_more_than_a_slot() {
        let keep = |flags: &[&str]| {
            component_args(flags)
                .runtime_config()
                .map(|c| c.large_image_keep_resident)
                .map_err(|e| e.to_string())
        };
        assert_eq!(keep(&[]), Ok(16 << 20));
        assert_eq!(keep(&["--large-image-keep-resident-mib", "0"]), Ok(0));
        assert_eq!(
            keep(&["--large-image-keep-resident-mib", "256"]),
            Ok(256 << 20)
        );
        let e = keep(&["--large-image-keep-resident-mib", "257"]).unwrap_err();
        assert!(
            e.contains("TASKHOST_LARGE_IMAGE_KEEP_RESIDENT_MIB") && e.contains("257"),
            "{e}"
        );
    }
}
