//! The local Dapr stack (deploy/local-stack) as the real-stack tests use it: daprd started with
//! the tests' tokens, the stack's PostgreSQL, the Dapr HTTP API, and one taskhost at a time on
//! the app port daprd calls. Shared by `e2e_dapr.rs` and `e2e_faults.rs`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration as StdDuration, Instant};

use reqwest::Method;
use serde_json::Value;
use tokio::process::Command;

use super::{Api, Host, HostOptions, TestEnv, wait_until};

pub const APP_API_TOKEN: &str = "taskhost-e2e-app-api-token";
pub const DAPR_API_TOKEN: &str = "taskhost-e2e-dapr-api-token";
pub const ADMIN_TOKEN: &str = "taskhost-e2e-admin-token";
pub const PUBSUB: &str = "pubsub-kafka";

/// How long an effect may take through daprd and Kafka. A hop takes ~15 ms once daprd's Kafka
/// consumer runs, but the first deliveries after daprd (re)joins its consumer group, or after
/// the app comes back, can wait several seconds.
pub const DAPR_TIMEOUT: StdDuration = StdDuration::from_secs(30);

/// Prints a step with the time since the test started (shown by `--show-output`).
pub fn step(started: Instant, what: &str) {
    println!("[{:>6.1} s] {what}", started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------
// The local stack: daprd, PostgreSQL, the Dapr HTTP API.
// ---------------------------------------------------------------------------

pub struct Stack {
    pub repo: PathBuf,
    pub run_dir: PathBuf,
    pub app_port: u16,
    pub dapr_http_port: u16,
    pub database_url: String,
}

impl Stack {
    pub fn from_env() -> Self {
        let var = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
        let port = |key: &str, default: u16| {
            var(key).map_or(default, |v| {
                v.parse()
                    .unwrap_or_else(|e| panic!("{key}={v:?} is not a port: {e}"))
            })
        };
        Self {
            repo: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
            run_dir: var("TASKHOST_STACK_RUN")
                .map_or_else(|| PathBuf::from("/tmp/taskhost-stack"), PathBuf::from),
            app_port: port("APP_PORT", 8080),
            dapr_http_port: port("DAPR_HTTP_PORT", 3500),
            database_url: var("TASKHOST_E2E_DATABASE_URL").unwrap_or_else(|| {
                "postgres://postgres:postgres@127.0.0.1:54329/taskhost".to_owned()
            }),
        }
    }

    pub fn daprd_log(&self) -> PathBuf {
        self.run_dir.join("logs/daprd.log")
    }

    pub fn app_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.app_port))
    }

    pub fn sidecar_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.dapr_http_port)
    }

    /// The Dapr HTTP API, as the app calls it (with `dapr-api-token`).
    pub fn sidecar(&self) -> Api {
        Api::at(&self.sidecar_url()).with_header("dapr-api-token", DAPR_API_TOKEN)
    }

    /// Runs a bash snippet at the repository root with `deploy/local-stack/env.sh` sourced;
    /// fails the test with its output if it fails.
    pub async fn sh(&self, what: &str, script: &str) -> String {
        self.try_sh(what, script).await.unwrap_or_else(|failure| {
            panic!("{failure}");
        })
    }

    /// [`Stack::sh`], returning a failure (with the output) instead of failing the test.
    pub async fn try_sh(&self, what: &str, script: &str) -> Result<String, String> {
        let output = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -euo pipefail; . deploy/local-stack/env.sh; {script}"
            ))
            .current_dir(&self.repo)
            .env("APP_PORT", self.app_port.to_string())
            .env("DAPR_HTTP_PORT", self.dapr_http_port.to_string())
            .env("TASKHOST_STACK_RUN", &self.run_dir)
            .env("APP_API_TOKEN", APP_API_TOKEN)
            .env("DAPR_API_TOKEN", DAPR_API_TOKEN)
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("{what}: cannot run bash: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "{what} failed ({}); is the local stack up (deploy/local-stack/up.sh)?\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// Starts daprd for the app port with the test's tokens unless it runs, and checks that
    /// the one that runs is usable: it requires our `DAPR_API_TOKEN` and calls our app port.
    pub async fn ensure_daprd(&self) {
        // daprd's default ports (50001, 50002, 59091) lie in Linux's ephemeral port range, so
        // a client connection elsewhere on the machine can hold one for a while and daprd
        // then exits with "address already in use". daprd.sh starts it again itself (3 tries
        // within seconds: `wait_restarting` in deploy/local-stack/env.sh); this loop is the
        // slower outer try for a port held longer than that, and shows who held the ports
        // when giving up.
        let mut failures = Vec::new();
        for attempt in 1..=4 {
            match self
                .try_sh(
                    "deploy/local-stack/daprd.sh",
                    "deploy/local-stack/daprd.sh --app-port \"$APP_PORT\"",
                )
                .await
            {
                Ok(_) => break,
                Err(failure) => {
                    let log = super::tail(&self.daprd_log(), 5);
                    let sockets = self
                        .try_sh(
                            "ss",
                            r#"ss -tanp | grep -E ":($DAPR_HTTP_PORT|$DAPR_GRPC_PORT|$DAPR_INTERNAL_GRPC_PORT|$DAPR_METRICS_PORT) " || true"#,
                        )
                        .await
                        .unwrap_or_else(|e| e);
                    failures.push(format!(
                        "attempt {attempt}: {failure}\ndaprd.log:\n{log}\nsockets on daprd's ports:\n{sockets}"
                    ));
                    if attempt == 4 {
                        panic!("daprd did not start:\n{}", failures.join("\n\n"));
                    }
                    tokio::time::sleep(StdDuration::from_secs(5)).await;
                }
            }
        }
        if !failures.is_empty() {
            println!(
                "daprd started after {} failed attempts:\n{}",
                failures.len(),
                failures.join("\n")
            );
        }
        wait_for_daprd(self.dapr_http_port, StdDuration::from_secs(90)).await;
        let metadata = self.sidecar().get("/v1.0/metadata").await;
        assert_eq!(
            (
                metadata.status.as_u16(),
                Api::at(&self.sidecar_url())
                    .get("/v1.0/metadata")
                    .await
                    .status
                    .as_u16()
            ),
            (200, 401),
            "the daprd on port {} must require the tests' DAPR_API_TOKEN; it runs with other \
             settings: stop it with `deploy/local-stack/daprd.sh stop` ({})",
            self.dapr_http_port,
            metadata.text
        );
        let port = &metadata.value()["appConnectionProperties"]["port"];
        assert_eq!(
            port.as_u64(),
            Some(u64::from(self.app_port)),
            "the daprd on port {} calls the app on port {port}, not {}: stop it with \
             `deploy/local-stack/daprd.sh stop`",
            self.dapr_http_port,
            self.app_port
        );
    }

    /// Waits until daprd has read the app's subscriptions (`GET /v1.0/metadata`).
    pub async fn wait_for_subscriptions(&self) {
        let sidecar = self.sidecar();
        wait_until(
            "daprd to list the app's subscriptions in GET /v1.0/metadata",
            DAPR_TIMEOUT,
            async || {
                let metadata = sidecar.get("/v1.0/metadata").await.expect(200).value();
                let topics: HashSet<&str> = metadata["subscriptions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["topic"].as_str())
                    .collect();
                let want = [
                    "task-events",
                    "task-events-dlq",
                    "reminders",
                    "reminders-dlq",
                    "task-updates",
                    "task-updates-dlq",
                ];
                if want.iter().all(|t| topics.contains(t)) {
                    Ok(())
                } else {
                    Err(format!("subscriptions {topics:?}"))
                }
            },
        )
        .await;
    }

    /// Publishes a JSON payload through daprd, keyed by user like the host does.
    pub async fn publish(&self, topic: &str, user: &str, payload: &Value) {
        self.sidecar()
            .post(
                &format!("/v1.0/publish/{PUBSUB}/{topic}?metadata.partitionKey={user}"),
                payload,
            )
            .await
            .expect(204);
    }

    /// A job in the Dapr scheduler, read through the stable Jobs API the host uses, or `None`
    /// when it does not exist (daprd answers a 500 `DAPR_SCHEDULER_GET_JOB` … NotFound for a
    /// missing job).
    pub async fn job(&self, name: &str) -> Option<Value> {
        let reply = self.sidecar().get(&format!("/v1.0/jobs/{name}")).await;
        match reply.status.as_u16() {
            200 => Some(reply.value()),
            500 if reply.text.contains("NotFound") || reply.text.contains("not found") => None,
            _ => panic!(
                "{}: expected 200 or a NotFound 500, got {} {:?}",
                reply.request, reply.status, reply.text
            ),
        }
    }

    /// Stops the stack's PostgreSQL (fast shutdown), as `down.sh` does. The guard starts it
    /// again if the test fails before it does.
    pub async fn stop_postgres(&self) -> PostgresStopped {
        self.sh(
            "stopping PostgreSQL",
            r#"cd / && if ((EUID == 0)); then runuser -u "$PG_OS_USER" -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop; else "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop; fi"#,
        )
        .await;
        PostgresStopped {
            repo: self.repo.clone(),
            run_dir: self.run_dir.clone(),
            running: false,
        }
    }
}

/// PostgreSQL is stopped while this lives; [`PostgresStopped::start`] (`up.sh`, idempotent)
/// starts it again, and so does dropping the guard, so a failed test leaves the stack up.
pub struct PostgresStopped {
    pub repo: PathBuf,
    pub run_dir: PathBuf,
    pub running: bool,
}

impl PostgresStopped {
    pub async fn start(mut self) {
        let output = Command::new("deploy/local-stack/up.sh")
            .current_dir(&self.repo)
            .env("TASKHOST_STACK_RUN", &self.run_dir)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run deploy/local-stack/up.sh");
        assert!(
            output.status.success(),
            "deploy/local-stack/up.sh failed to start PostgreSQL again ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        self.running = true;
    }
}

impl Drop for PostgresStopped {
    fn drop(&mut self) {
        if !self.running {
            let _ = std::process::Command::new("deploy/local-stack/up.sh")
                .current_dir(&self.repo)
                .env("TASKHOST_STACK_RUN", &self.run_dir)
                .stdin(Stdio::null())
                .status();
        }
    }
}

/// One test's world: the stack, and the taskhost runs of the test.
pub struct E2e {
    pub stack: Stack,
    pub env: TestEnv,
    pub started: Instant,
    /// Further environment of every host [`E2e::start`] starts (e.g. retention settings).
    pub extra_env: Vec<(String, String)>,
}

impl E2e {
    pub async fn new() -> Self {
        let stack = Stack::from_env();
        let mut env = TestEnv::on_database(&stack.database_url);
        env.tail_on_failure("daprd log", stack.daprd_log());
        stack.ensure_daprd().await;
        Self {
            stack,
            env,
            started: Instant::now(),
            extra_env: Vec::new(),
        }
    }

    pub fn step(&self, what: &str) {
        step(self.started, what);
    }

    /// Starts taskhost on the app port daprd calls, and waits until it is ready (which needs
    /// the sidecar) and daprd knows its subscriptions.
    pub async fn start(&mut self) -> Host {
        let addr = self.stack.app_addr();
        wait_until(
            &format!("{addr} to be free for taskhost"),
            StdDuration::from_secs(15),
            async || {
                std::net::TcpListener::bind(addr)
                    .map(drop)
                    .map_err(|e| format!("{e} (another process listens there?)"))
            },
        )
        .await;
        let options = dapr_host_options(addr, self.stack.dapr_http_port);
        let options = self
            .extra_env
            .iter()
            .fold(options, |o, (k, v)| o.env(k, v.clone()));
        let host = self.env.start_with(&options).await;
        self.stack.wait_for_subscriptions().await;
        host
    }
}

/// taskhost in Dapr mode on `addr`, calling the daprd on `dapr_http_port`, with the tests'
/// tokens and the defaults for everything the environment might set otherwise.
pub fn dapr_host_options(addr: SocketAddr, dapr_http_port: u16) -> HostOptions {
    HostOptions::new()
        .listen(addr)
        .env("TASKHOST_DELIVERY", "dapr")
        .env("DAPR_HTTP_PORT", dapr_http_port.to_string())
        .env("DAPR_API_TOKEN", DAPR_API_TOKEN)
        .env("APP_API_TOKEN", APP_API_TOKEN)
        .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("DAPR_HTTP_ENDPOINT")
        .env_remove("TASKHOST_DAPR_PUBSUB")
        .env_remove("TASKHOST_DAPR_BULK")
}

/// Waits until the daprd whose HTTP API is on `port` answers its outbound health check.
pub async fn wait_for_daprd(port: u16, timeout: StdDuration) {
    let anonymous = Api::at(&format!("http://127.0.0.1:{port}"));
    wait_until(
        &format!("daprd's GET /v1.0/healthz/outbound on port {port} to answer 204"),
        timeout,
        async || match anonymous
            .try_send(Method::GET, "/v1.0/healthz/outbound", None)
            .await
        {
            Ok(reply) => reply.status_is(204),
            Err(e) => Err(e),
        },
    )
    .await;
}

impl Stack {
    /// Sends `signal` (`KILL`, `TERM`) to the stack's process `name` (`kafka`, `scheduler`,
    /// `daprd`, by its pid file) and waits until it is gone; returns how long it took to exit.
    pub async fn signal(&self, name: &str, signal: &str) -> StdDuration {
        let started = Instant::now();
        self.sh(
            &format!("SIG{signal} to the stack's {name}"),
            &format!(
                "pid=$(pid_of {name}) || {{ echo '{name} is not running' >&2; exit 1; }}; \
                 kill -s {signal} \"$pid\"; \
                 for ((i = 0; i < 600; i++)); do kill -0 \"$pid\" 2>/dev/null || exit 0; sleep 0.1; done; \
                 echo \"{name} (pid $pid) still runs 60 s after SIG{signal}\" >&2; exit 1"
            ),
        )
        .await;
        started.elapsed()
    }

    /// Starts whatever of Kafka, PostgreSQL and the scheduler is not running (`up.sh`,
    /// idempotent) and returns once they answer; returns how long that took.
    pub async fn up(&self) -> StdDuration {
        let started = Instant::now();
        self.sh("deploy/local-stack/up.sh", "deploy/local-stack/up.sh")
            .await;
        started.elapsed()
    }
}
