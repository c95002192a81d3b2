//! A black-box harness for the real `taskhost` binary.
//!
//! Tests never link against the host: they start the binary that Cargo built
//! (`CARGO_BIN_EXE_taskhost`), talk to it over HTTP and WebSocket exactly as a
//! client would, and mint tokens with its own `token` subcommand. That way the
//! suite checks the contract, not the implementation.
//!
//! What the harness guarantees:
//! - every child process is killed when its [`Host`] is dropped, even when a
//!   test panics, so a failing test never leaks a server;
//! - every run's stderr goes to a file, and when a test fails the tail of every
//!   run of that test is printed (and its temporary directory is kept), so a
//!   failure can be debugged from the test output alone;
//! - every wait is bounded and names what never happened.
//!
//! Set `TASKHOST_TEST_KEEP=1` to keep every test's directory (database and
//! logs) even when it passes.

#![allow(dead_code)] // Each test binary uses a different subset of the harness.

pub mod in_process;
pub mod ledger;
pub mod python_backend;
pub mod stack;
pub mod stream;
pub mod wasm_builds;

use std::fmt::Debug;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{SinkExt as _, StreamExt as _};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{self, Message};

/// How long a consumer effect (audit entry, next instance, reminder, socket
/// message) may take to appear after the write that causes it. The contract
/// says "within about a second"; the margin absorbs a loaded CI machine.
pub const EFFECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the binary may take to print its listening line and then to
/// report ready: a debug build compiles four components at start-up.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(180);

/// How often [`wait_until`] and [`assert_holds`] look again.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The components the host must be given, as `cargo build --profile release-wasm` names them.
const COMPONENTS: [&str; 4] = [
    "recurrence.wasm",
    "notification.wasm",
    "audit.wasm",
    "sync.wasm",
];

const BUILD_COMPONENTS_HINT: &str = "build them with `just build-components` (it copies the four \
     into target/components), or point TASKHOST_TEST_COMPONENTS_DIR at a directory that holds \
     them";

// ---------------------------------------------------------------------------
// Environment: one database and the logs of every run of one test.
// ---------------------------------------------------------------------------

/// The state one test's hosts share: a database (so that a restart sees the
/// data of the previous run) and a directory with every run's log.
///
/// With `TASKHOST_TEST_DATABASE_URL` set, all tests share that PostgreSQL
/// database; tests stay independent because every test uses fresh random user
/// ids. Otherwise each test gets its own SQLite file.
pub struct TestEnv {
    dir: Option<TempDir>,
    /// A PostgreSQL database created for this test, dropped with it.
    created_database: Option<String>,
    database_url: String,
    components_dir: PathBuf,
    /// One stderr log per run, in start order.
    logs: Vec<PathBuf>,
    /// Logs of other processes (e.g. the Dapr sidecar) whose tails a failure prints too.
    other_logs: Vec<(String, PathBuf)>,
}

/// How [`TestEnv::start_with`] runs the binary. The default is what [`TestEnv::start`] does:
/// a free port, the test's own environment, and a wait until `/readyz` answers 200.
#[derive(Clone, Debug, Default)]
pub struct HostOptions {
    listen: Option<std::net::SocketAddr>,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
    args: Vec<String>,
    live_only: bool,
    components_dir: Option<PathBuf>,
}

impl HostOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Listen on this address instead of a free port (e.g. the app port a sidecar calls).
    pub fn listen(mut self, addr: std::net::SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// Sets an environment variable of the child.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }

    /// Removes a variable the child would otherwise inherit from the test.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env_remove.push(key.to_owned());
        self
    }

    /// Loads the components of this directory instead of the four real ones.
    pub fn components_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.components_dir = Some(dir.into());
        self
    }

    /// Appends an argument to `taskhost serve ...`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Return once `/healthz` answers, without waiting for `/readyz` (for a host that is
    /// meant to stay unready, e.g. one whose sidecar is absent).
    pub fn live_only(mut self) -> Self {
        self.live_only = true;
        self
    }

    /// taskhost in Dapr mode with no sidecar (`DAPR_HTTP_PORT` is a [`closed_port`]): it stays
    /// live but not ready, and the test calls its callbacks as daprd would, with `app_token`
    /// ([`Host::as_daprd`]). No Dapr endpoint, API token or pub/sub name is inherited from the
    /// test's environment.
    pub fn dapr_without_sidecar(app_token: &str) -> Self {
        Self::new()
            .env("TASKHOST_DELIVERY", "dapr")
            .env("DAPR_HTTP_PORT", closed_port().to_string())
            .env("APP_API_TOKEN", app_token)
            .env_remove("DAPR_HTTP_ENDPOINT")
            .env_remove("DAPR_API_TOKEN")
            .env_remove("TASKHOST_DAPR_PUBSUB")
            .live_only()
    }
}

/// A number from the environment (a test's size or seed), `default` when unset or blank; a
/// value that does not parse fails the test naming it.
pub fn env_number<T: std::str::FromStr>(key: &str, default: T) -> T
where
    T::Err: std::fmt::Display,
{
    match std::env::var(key) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{key}={v:?} is not a number: {e}")),
        _ => default,
    }
}

/// A TCP port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

impl TestEnv {
    pub fn new() -> Self {
        Self::with_database(None)
    }

    /// Like [`TestEnv::new`], but on the given database whatever
    /// `TASKHOST_TEST_DATABASE_URL` says (e.g. the local Dapr stack's PostgreSQL).
    pub fn on_database(url: &str) -> Self {
        Self::with_database(Some(url.to_owned()))
    }

    fn with_database(url: Option<String>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("taskhost-e2e-")
            .tempdir()
            .expect("create a temporary directory for the test");
        // Each test gets a database of its own on the PostgreSQL server: a host's relay
        // delivers every pending event in its database, so two tests' hosts sharing one
        // database would handle (and push to sockets) each other's events. (One embedded
        // host per database is also the supported deployment.)
        // A test given its database (`on_database`) gets no database of its own.
        let from_env = std::env::var("TASKHOST_TEST_DATABASE_URL")
            .ok()
            .filter(|env_url| url.is_none() && !env_url.trim().is_empty())
            .map(|env_url| fresh_postgres_database(&env_url));
        let created = from_env.is_some();
        let database_url = url.or(from_env).unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("taskhost.db").display()
            )
        });
        Self {
            dir: Some(dir),
            created_database: created.then(|| database_url.clone()),
            database_url,
            components_dir: components_dir(),
            logs: Vec::new(),
            other_logs: Vec::new(),
        }
    }

    /// Whether the hosts of this environment run on PostgreSQL (else SQLite).
    pub fn on_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }

    /// Also print the tail of `path` (labelled `name`) when the test fails.
    pub fn tail_on_failure(&mut self, name: &str, path: impl Into<PathBuf>) {
        self.other_logs.push((name.to_owned(), path.into()));
    }

    /// A path for the log of another process (e.g. a Dapr sidecar) in this environment's
    /// directory, which a failure keeps with the host's own logs.
    pub fn log_path(&self, file: &str) -> PathBuf {
        self.dir().join(file)
    }

    fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("the test directory lives as long as the TestEnv")
            .path()
    }

    /// Starts the binary on this environment's database and waits until it
    /// listens and reports ready.
    pub async fn start(&mut self) -> Host {
        self.start_with(&HostOptions::default()).await
    }

    /// Starts the binary as `options` say and waits until it listens and reports
    /// ready (or only live, with [`HostOptions::live_only`]).
    pub async fn start_with(&mut self, options: &HostOptions) -> Host {
        let run = self.logs.len() + 1;
        let log_path = self.dir().join(format!("run-{run}.log"));
        self.logs.push(log_path.clone());
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap_or_else(|e| panic!("open {}: {e}", log_path.display()));

        let mut command = Command::new(env!("CARGO_BIN_EXE_taskhost"));
        command
            .arg("serve")
            .arg("--dev")
            .arg("--listen")
            .arg(
                options
                    .listen
                    .map_or_else(|| "127.0.0.1:0".to_owned(), |a| a.to_string()),
            )
            .arg("--database-url")
            .arg(&self.database_url)
            .arg("--components-dir")
            .arg(
                options
                    .components_dir
                    .as_ref()
                    .unwrap_or(&self.components_dir),
            )
            .args(&options.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                log.try_clone().expect("clone the log file handle"),
            ))
            // The log is a file: colour codes would only make it harder to read.
            .env("NO_COLOR", "1")
            .kill_on_drop(true);
        for key in &options.env_remove {
            command.env_remove(key);
        }
        command.envs(options.env.iter().map(|(k, v)| (k, v)));
        let mut child = command.spawn().expect("spawn the taskhost binary");

        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let first = match tokio::time::timeout(STARTUP_TIMEOUT, lines.next_line()).await {
            Err(_) => panic!(
                "run {run}: taskhost printed no listening line on stdout within {STARTUP_TIMEOUT:?}"
            ),
            Ok(Err(e)) => panic!("run {run}: reading taskhost's stdout failed: {e}"),
            Ok(Ok(None)) => {
                let status = child.wait().await;
                panic!(
                    "run {run}: taskhost exited before it printed its listening line ({status:?}); its stderr:\n{}",
                    tail(&log_path, 30)
                )
            }
            Ok(Ok(Some(line))) => line,
        };
        let base_url = first
            .strip_prefix("taskhost listening on ")
            .filter(|url| url.starts_with("http://"))
            .unwrap_or_else(|| {
                panic!(
                    "run {run}: the first line on stdout must be `taskhost listening on http://<ip:port>`, got {first:?}"
                )
            })
            .trim_end_matches('/')
            .to_owned();

        // The contract promises one line; anything after it goes into the log
        // (marked) so that it is seen, and so that the child never blocks on a
        // full pipe.
        let mut stray = log;
        let drain = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = writeln!(stray, "[stdout] {line}");
            }
        });

        let host = Host {
            child,
            base_url,
            http: reqwest::Client::new(),
            drain,
            run,
            log: log_path,
        };
        if options.live_only {
            host.wait_until_live().await;
        } else {
            host.wait_until_ready().await;
        }
        host
    }

    /// The database URL the hosts run on.
    /// The directory of the four `.wasm` consumers (for tests that run the host in-process).
    pub fn components_dir(&self) -> &Path {
        &self.components_dir
    }

    pub fn database_url(&self) -> &str {
        &self.database_url
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if !std::thread::panicking()
            && let Some(url) = self.created_database.take()
        {
            drop_postgres_database(&url);
        }
        if !std::thread::panicking() {
            if std::env::var_os("TASKHOST_TEST_KEEP").is_some()
                && let Some(dir) = self.dir.take()
            {
                eprintln!(
                    "----- kept the test directory (TASKHOST_TEST_KEEP): {} -----",
                    dir.keep().display()
                );
            }
            return;
        }
        for (i, log) in self.logs.iter().enumerate() {
            eprintln!(
                "----- taskhost run {} stderr (last 80 lines of {}) -----",
                i + 1,
                log.display()
            );
            eprintln!("{}", tail(log, 80));
        }
        for (name, log) in &self.other_logs {
            eprintln!("----- {name} (last 80 lines of {}) -----", log.display());
            eprintln!("{}", tail(log, 80));
        }
        if let Some(dir) = self.dir.take() {
            eprintln!(
                "----- kept the test directory (database, logs): {} -----",
                dir.keep().display()
            );
        }
    }
}

/// The last `lines` lines of a log file (or why it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// A directory holding the four consumers and nothing else, for the hosts the tests start.
///
/// They come from `TASKHOST_TEST_COMPONENTS_DIR` (`just` sets it) or `target/components`, where
/// `just build-components` copies them — but a host loads every `.wasm` in its directory, and
/// those may hold more: `target/components` is also what `just run` serves, where a user drops
/// a consumer of their own, and cargo's output directory holds the benchmarks' empty component
/// and the test-only builds. A fifth consumer would be extra work that the checks, which count
/// on these four, see as a bug. So the four are copied into `<target dir>/test-components`
/// (only when changed, each by a rename, so concurrent test binaries agree) and that is used.
pub fn components_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let from = wasm_builds::built_components_dir();
        let missing: Vec<&str> = COMPONENTS
            .iter()
            .copied()
            .filter(|c| !from.join(c).is_file())
            .collect();
        assert!(
            missing.is_empty(),
            "the components directory {} lacks {}; {BUILD_COMPONENTS_HINT}",
            from.display(),
            missing.join(", "),
        );
        let dir = target_dir().join("test-components");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        for c in COMPONENTS {
            let bytes = wasm_builds::read(&from.join(c));
            let to = dir.join(c);
            if std::fs::read(&to).ok().as_deref() != Some(&bytes[..]) {
                let tmp = dir.join(format!(".{c}.{}.tmp", std::process::id()));
                std::fs::write(&tmp, &bytes)
                    .and_then(|()| std::fs::rename(&tmp, &to))
                    .unwrap_or_else(|e| panic!("copying {c} into {}: {e}", dir.display()));
            }
        }
        dir
    })
    .clone()
}

pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // The binary is <target>/<profile>/taskhost.
    Path::new(env!("CARGO_BIN_EXE_taskhost"))
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

// ---------------------------------------------------------------------------
// The running binary.
// ---------------------------------------------------------------------------

/// One running `taskhost serve`. Dropping it kills the process.
pub struct Host {
    child: Child,
    base_url: String,
    http: reqwest::Client,
    drain: JoinHandle<()>,
    run: usize,
    log: PathBuf,
}

impl Host {
    /// The process id, e.g. to signal it.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Everything this run wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.log.display()))
    }

    /// The file this run's stderr goes to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `http://ip:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `ws://ip:port` + `path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.base_url.trim_start_matches("http://"))
    }

    /// A client that sends `Authorization: Bearer <user's token>`.
    pub fn api(&self, user: &User) -> Api {
        self.api_with_authorization(Some(&format!("Bearer {}", user.token)))
    }

    /// A client that calls the host as daprd does: `dapr-api-token: <app_token>`, no user's
    /// token.
    pub fn as_daprd(&self, app_token: &str) -> Api {
        self.api_with_authorization(None)
            .with_header("dapr-api-token", app_token)
    }

    /// A client that sends the given `Authorization` header verbatim, or none.
    pub fn api_with_authorization(&self, authorization: Option<&str>) -> Api {
        Api {
            http: self.http.clone(),
            base_url: self.base_url.clone(),
            authorization: authorization.map(str::to_owned),
            headers: Vec::new(),
        }
    }

    async fn wait_until_live(&self) {
        let client = self.api_with_authorization(None);
        wait_until(
            &format!("run {}: GET /healthz to answer 200", self.run),
            Duration::from_secs(10),
            async || client.get("/healthz").await.status_is(200),
        )
        .await;
    }

    async fn wait_until_ready(&self) {
        let started = Instant::now();
        let client = self.api_with_authorization(None);
        wait_until(
            &format!("run {}: GET /healthz to answer 200", self.run),
            Duration::from_secs(10),
            async || client.get("/healthz").await.status_is(200),
        )
        .await;
        wait_until(
            &format!("run {}: GET /readyz to answer 200", self.run),
            STARTUP_TIMEOUT.saturating_sub(started.elapsed()),
            async || client.get("/readyz").await.status_is(200),
        )
        .await;
    }

    /// Kills the process with SIGKILL (no graceful shutdown, like a crash or
    /// an OOM kill) and waits until it is gone.
    pub async fn kill(mut self) {
        self.child
            .kill()
            .await
            .expect("SIGKILL the taskhost process");
        self.drain.abort();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // A server that died under the test (crashed, or was signalled from outside) explains
        // failures like "no response" or a reset socket: say so next to the log.
        if std::thread::panicking()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            eprintln!(
                "----- taskhost run {} had already exited: {status} -----",
                self.run
            );
        }
        // kill_on_drop does the killing; the drain task ends with the pipe.
        self.drain.abort();
    }
}

// ---------------------------------------------------------------------------
// Users and tokens.
// ---------------------------------------------------------------------------

/// A user with a fresh random id and a token minted by the binary itself.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub token: String,
}

impl User {
    pub async fn new() -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        let output = Command::new(env!("CARGO_BIN_EXE_taskhost"))
            .args(["token", &id, "--dev"])
            .stdin(Stdio::null())
            .output()
            .await
            .expect("run `taskhost token`");
        assert!(
            output.status.success(),
            "`taskhost token {id} --dev` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let token = String::from_utf8(output.stdout)
            .expect("the token is UTF-8")
            .trim()
            .to_owned();
        assert_eq!(
            token.split('.').count(),
            3,
            "`taskhost token {id} --dev` must print one JWT (header.payload.signature), got {token:?}"
        );
        Self { id, token }
    }

    /// A token that claims to be `victim` but carries this user's signature:
    /// what an attacker gets by editing the payload of a token they own.
    pub fn forge_token_for(&self, victim: &User) -> String {
        let mine: Vec<&str> = self.token.split('.').collect();
        let theirs: Vec<&str> = victim.token.split('.').collect();
        format!("{}.{}.{}", mine[0], theirs[1], mine[2])
    }
}

// ---------------------------------------------------------------------------
// HTTP.
// ---------------------------------------------------------------------------

/// An HTTP client bound to one host and one `Authorization` header.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base_url: String,
    authorization: Option<String>,
    /// Further headers sent on every request (e.g. `dapr-api-token`).
    headers: Vec<(String, String)>,
}

/// A response, kept whole so that a failed expectation can show it.
#[derive(Debug)]
pub struct Reply {
    pub request: String,
    pub status: StatusCode,
    pub text: String,
}

impl Reply {
    /// Panics unless the status is `status`, showing the request and the body.
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}: expected status {status}, got {} with body {:?}",
            self.request,
            self.status,
            self.text
        );
        self
    }

    /// For [`wait_until`]: `Ok` when the status is `status`.
    pub fn status_is(&self, status: u16) -> Result<(), String> {
        if self.status.as_u16() == status {
            Ok(())
        } else {
            Err(format!(
                "{} answered {} {:?}",
                self.request, self.status, self.text
            ))
        }
    }

    /// The body as JSON.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "{}: the body is not JSON ({e}): {:?}",
                self.request, self.text
            )
        })
    }

    /// The body as `T`; a mismatch is a contract violation and says where.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "{}: the body does not match the contract's {} ({e}): {}",
                self.request,
                std::any::type_name::<T>(),
                self.text
            )
        })
    }

    /// The message of a contract error body, `{"error": "<non-empty message>"}`.
    pub fn error_message(&self) -> String {
        let body: Value = serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "{}: an error ({}) must have a JSON body {{\"error\": ...}}, got ({e}) {:?}",
                self.request, self.status, self.text
            )
        });
        match body.get("error").and_then(Value::as_str) {
            Some(message) if !message.trim().is_empty() => message.to_owned(),
            _ => panic!(
                "{}: an error ({}) must have a body {{\"error\": \"<message>\"}}, got {body}",
                self.request, self.status
            ),
        }
    }
}

impl Api {
    /// A client for any other HTTP server (e.g. the Dapr sidecar), without
    /// `Authorization`.
    pub fn at(base_url: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            authorization: None,
            headers: Vec::new(),
        }
    }

    /// This client, also sending `name: value` on every request.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(authorization) = &self.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut request = self.request(method.clone(), path);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.finish(format!("{method} {path}"), request).await
    }

    /// Like [`Api::send`], but a request that gets no response (the server died,
    /// the connection was reset) is an `Err` instead of a panic.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let mut request = self.request(method.clone(), path);
        if let Some(body) = body {
            request = request.json(body);
        }
        let what = format!("{method} {path}");
        let response = request
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| format!("{what}: no response: {e}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{what}: reading the body failed: {e}"))?;
        Ok(Reply {
            request: what,
            status,
            text,
        })
    }

    /// Posts `body` verbatim with the given `Content-Type`.
    pub async fn post_bytes(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let shown = String::from_utf8_lossy(&body);
        let shown: String = shown.chars().take(200).collect();
        let request = self
            .request(Method::POST, path)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.finish(
            format!("POST {path} ({content_type}) with body {shown:?}"),
            request,
        )
        .await
    }

    /// Sends `body` verbatim with the given `Content-Type` and method.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let len = body.len();
        let request = self
            .request(method.clone(), path)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.finish(
            format!("{method} {path} ({content_type}, {len} bytes)"),
            request,
        )
        .await
    }

    /// Sends `body` verbatim as `application/json`, for bodies that are not JSON.
    pub async fn send_raw(&self, method: Method, path: &str, body: &'static str) -> Reply {
        let request = self
            .request(method.clone(), path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.finish(format!("{method} {path} with body {body:?}"), request)
            .await
    }

    async fn finish(&self, request: String, builder: reqwest::RequestBuilder) -> Reply {
        let response = builder
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{request}: no response: {e}"));
        let status = response.status();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("{request}: reading the body failed: {e}"));
        Reply {
            request,
            status,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    // -- Typed calls that expect success. -------------------------------

    pub async fn create_task(&self, body: &Value) -> Task {
        self.post("/api/tasks", body).await.expect(201).json()
    }

    pub async fn task(&self, id: &str) -> Task {
        self.get(&format!("/api/tasks/{id}"))
            .await
            .expect(200)
            .json()
    }

    pub async fn tasks(&self) -> Vec<Task> {
        self.get("/api/tasks").await.expect(200).json()
    }

    pub async fn update_task(&self, id: &str, body: &Value) -> Task {
        self.patch(&format!("/api/tasks/{id}"), body)
            .await
            .expect(200)
            .json()
    }

    pub async fn complete_task(&self, id: &str) -> Task {
        self.send(Method::POST, &format!("/api/tasks/{id}/complete"), None)
            .await
            .expect(200)
            .json()
    }

    pub async fn delete_task(&self, id: &str) {
        let reply = self.delete(&format!("/api/tasks/{id}")).await.expect(204);
        assert!(
            reply.text.is_empty(),
            "{}: a 204 has no body, got {:?}",
            reply.request,
            reply.text
        );
    }

    pub async fn notifications(&self) -> Vec<Notification> {
        self.get("/api/notifications").await.expect(200).json()
    }

    pub async fn reminders(&self) -> Vec<Reminder> {
        self.get("/api/reminders").await.expect(200).json()
    }

    /// The caller's reminder jobs for one task, earliest first.
    pub async fn reminders_for(&self, task_id: &str) -> Vec<Reminder> {
        let mut jobs: Vec<Reminder> = self
            .reminders()
            .await
            .into_iter()
            .filter(|r| r.task_id == task_id)
            .collect();
        jobs.sort_by_key(|r| r.due_at);
        jobs
    }

    /// One page of an audit route (`/api/audit-logs/{task}` or
    /// `/api/audit-logs/user/{user}`).
    pub async fn audit_page(
        &self,
        route: &str,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> AuditPage {
        let mut url = Url::parse(&format!("{}{route}", self.base_url)).expect("a valid audit URL");
        {
            let mut query = url.query_pairs_mut();
            if let Some(limit) = limit {
                query.append_pair("limit", &limit.to_string());
            }
            if let Some(cursor) = cursor {
                query.append_pair("cursor", cursor);
            }
        }
        let path_and_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        self.get(&path_and_query).await.expect(200).json()
    }

    /// Every entry of an audit route, following `next_cursor` until it is null.
    /// Returns the entries and the size of each page.
    pub async fn audit_pages(
        &self,
        route: &str,
        limit: Option<u32>,
    ) -> (Vec<AuditEntry>, Vec<usize>) {
        let mut entries = Vec::new();
        let mut sizes = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen_cursors = std::collections::HashSet::new();
        loop {
            let page = self.audit_page(route, limit, cursor.as_deref()).await;
            sizes.push(page.entries.len());
            entries.extend(page.entries);
            match page.next_cursor {
                None => return (entries, sizes),
                Some(next) => {
                    assert!(
                        seen_cursors.insert(next.clone()),
                        "GET {route}: next_cursor {next:?} came back a second time; paging would never end"
                    );
                    assert!(
                        sizes.len() < 10_000,
                        "GET {route}: more than 10000 pages; paging does not seem to end"
                    );
                    cursor = Some(next);
                }
            }
        }
    }

    /// A task's whole audit trail.
    pub async fn task_audit(&self, task_id: &str) -> Vec<AuditEntry> {
        self.audit_pages(&format!("/api/audit-logs/{task_id}"), None)
            .await
            .0
    }

    /// A user's whole audit trail.
    pub async fn user_audit(&self, user_id: &str) -> Vec<AuditEntry> {
        self.audit_pages(&format!("/api/audit-logs/user/{user_id}"), None)
            .await
            .0
    }
}

// ---------------------------------------------------------------------------
// The contract's JSON shapes.
//
// `#[serde(deserialize_with = "Option::deserialize")]` makes a nullable field
// required: the contract says the key is always there, possibly null.
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Task {
    pub id: String,
    pub user_id: String,
    pub title: String,
    #[serde(deserialize_with = "Option::deserialize")]
    pub description: Option<String>,
    pub is_completed: bool,
    pub priority: String,
    #[serde(deserialize_with = "Option::deserialize")]
    pub due_date: Option<DateTime<Utc>>,
    pub is_recurring: bool,
    #[serde(deserialize_with = "Option::deserialize")]
    pub recurrence_frequency: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub recurrence_interval: Option<i64>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub recurrence_ends_on: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub recurrence_max_occurrences: Option<i64>,
    pub tags: Vec<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub reminder_offsets_minutes: Option<Vec<i64>>,
    pub occurrence: i64,
    #[serde(deserialize_with = "Option::deserialize")]
    pub series_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AuditEntry {
    /// The contract does not fix the type of the entry id; it is only compared.
    pub id: Value,
    pub event_id: String,
    pub task_id: String,
    pub user_id: String,
    pub operation: String,
    pub at: DateTime<Utc>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub previous: Option<Task>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub current: Option<Task>,
    pub changes: Vec<FieldChange>,
    pub component_version: String,
}

impl AuditEntry {
    /// The change of `field`, if the entry records one.
    pub fn change(&self, field: &str) -> Option<&FieldChange> {
        self.changes.iter().find(|c| c.field == field)
    }

    /// The names of the changed fields, sorted.
    pub fn changed_fields(&self) -> Vec<&str> {
        let mut fields: Vec<&str> = self.changes.iter().map(|c| c.field.as_str()).collect();
        fields.sort_unstable();
        fields
    }
}

/// One changed field; `old` and `new` are JSON text.
#[derive(Clone, Debug, Deserialize)]
pub struct FieldChange {
    pub field: String,
    #[serde(deserialize_with = "Option::deserialize")]
    pub old: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    pub new: Option<String>,
}

impl FieldChange {
    /// `old` parsed as JSON (absent → `null`).
    pub fn old_value(&self) -> Value {
        parse_change_value(&self.field, self.old.as_deref())
    }

    /// `new` parsed as JSON (absent → `null`).
    pub fn new_value(&self) -> Value {
        parse_change_value(&self.field, self.new.as_deref())
    }
}

fn parse_change_value(field: &str, text: Option<&str>) -> Value {
    match text {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).unwrap_or_else(|e| {
            panic!("the change of {field:?} must hold JSON text, got {text:?} ({e})")
        }),
    }
}

/// The instant an audit change value denotes. The contract fixes change
/// values as JSON text but not how an instant is written in it, so both an
/// RFC 3339 string and epoch milliseconds (the WIT `timestamp`) are read.
pub fn instant_of(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        Value::Number(n) => n.as_i64().and_then(DateTime::from_timestamp_millis),
        _ => None,
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Notification {
    pub id: Value,
    pub task_id: String,
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// How the reminder's producer wants it delivered; absent for taskhost's own.
    #[serde(default)]
    pub notification_method: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Reminder {
    pub name: String,
    pub task_id: String,
    pub due_at: DateTime<Utc>,
    pub offset_minutes: i64,
}

/// One WebSocket frame.
#[derive(Clone, Debug, Deserialize)]
pub struct SocketEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub task_id: String,
    #[serde(deserialize_with = "Option::deserialize")]
    pub task: Option<Task>,
    pub at: DateTime<Utc>,
}

/// The keys every task response must carry.
pub const TASK_KEYS: [&str; 19] = [
    "id",
    "user_id",
    "title",
    "description",
    "is_completed",
    "priority",
    "due_date",
    "is_recurring",
    "recurrence_frequency",
    "recurrence_interval",
    "recurrence_ends_on",
    "recurrence_max_occurrences",
    "tags",
    "reminder_offsets_minutes",
    "occurrence",
    "series_id",
    "created_at",
    "updated_at",
    "completed_at",
];

/// Panics unless `task` is an object with every key of the contract's task JSON.
pub fn assert_task_keys(task: &Value) {
    let object = task
        .as_object()
        .unwrap_or_else(|| panic!("a task must be a JSON object, got {task}"));
    let missing: Vec<&str> = TASK_KEYS
        .iter()
        .copied()
        .filter(|k| !object.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "the task JSON lacks {missing:?}: {task}"
    );
}

// ---------------------------------------------------------------------------
// WebSocket.
// ---------------------------------------------------------------------------

/// A `/ws` connection whose frames are collected in the background.
pub struct Socket {
    frames: Arc<Mutex<Frames>>,
    reader: JoinHandle<()>,
    user: String,
}

#[derive(Default)]
struct Frames {
    events: Vec<SocketEvent>,
    /// Frames that break the contract (not a JSON event, binary, ...).
    bad: Vec<String>,
    closed: Option<String>,
}

impl Socket {
    /// Connects as `user` and waits until the server's side of the socket is
    /// live, so that no change made afterwards can be missed.
    pub async fn connect(host: &Host, user: &User) -> Self {
        let url = host.ws_url(&format!("/ws?token={}", user.token));
        let (mut stream, response) = tokio::time::timeout(
            Duration::from_secs(30),
            tokio_tungstenite::connect_async(url),
        )
        .await
        .unwrap_or_else(|_| panic!("GET /ws as {}: no handshake within 30 s", user.id))
        .unwrap_or_else(|e| panic!("GET /ws as {}: the handshake failed: {e}", user.id));
        assert_eq!(
            response.status().as_u16(),
            101,
            "GET /ws as {}: expected 101",
            user.id
        );

        let frames = Arc::new(Mutex::new(Frames::default()));
        // A pong proves the server is reading this socket, which a handler
        // does once it has registered it. A handler that never reads still
        // works; it only gets no such proof, hence the short bound.
        stream
            .send(Message::Ping(b"ready?".to_vec().into()))
            .await
            .expect("send a ping on /ws");
        let ponged = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(message) = stream.next().await {
                match message {
                    Ok(Message::Pong(_)) => return,
                    Ok(other) => record(&frames, other),
                    Err(e) => {
                        frames.lock().unwrap().closed = Some(e.to_string());
                        return;
                    }
                }
            }
        })
        .await;
        if ponged.is_err() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }

        let sink = frames.clone();
        let reader = tokio::spawn(async move {
            while let Some(message) = stream.next().await {
                match message {
                    Ok(message) => record(&sink, message),
                    Err(e) => {
                        sink.lock().unwrap().closed = Some(e.to_string());
                        return;
                    }
                }
            }
            sink.lock()
                .unwrap()
                .closed
                .get_or_insert_with(|| "stream ended".to_owned());
        });
        Self {
            frames,
            reader,
            user: user.id.clone(),
        }
    }

    /// Every event received so far. Panics if a frame broke the contract.
    pub fn events(&self) -> Vec<SocketEvent> {
        let frames = self.frames.lock().unwrap();
        assert!(
            frames.bad.is_empty(),
            "the socket of {} received frames that are not task events: {:?}",
            self.user,
            frames.bad
        );
        frames.events.clone()
    }

    /// Waits for the first event matching `matches`.
    pub async fn wait_for(
        &self,
        desc: &str,
        matches: impl Fn(&SocketEvent) -> bool,
    ) -> SocketEvent {
        self.wait_for_within(desc, EFFECT_TIMEOUT, matches).await
    }

    /// [`Socket::wait_for`] with another deadline (e.g. through a message broker).
    pub async fn wait_for_within(
        &self,
        desc: &str,
        timeout: Duration,
        matches: impl Fn(&SocketEvent) -> bool,
    ) -> SocketEvent {
        wait_until(
            &format!("a WebSocket message on {}'s socket: {desc}", self.user),
            timeout,
            async || {
                let events = self.events();
                if let Some(event) = events.iter().find(|e| matches(e)) {
                    return Ok(event.clone());
                }
                let closed = self.frames.lock().unwrap().closed.clone();
                Err(format!(
                    "received {:?}{}",
                    events
                        .iter()
                        .map(|e| (&e.kind, &e.task_id))
                        .collect::<Vec<_>>(),
                    closed
                        .map(|c| format!("; the socket closed: {c}"))
                        .unwrap_or_default()
                ))
            },
        )
        .await
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn record(frames: &Mutex<Frames>, message: Message) {
    let mut frames = frames.lock().unwrap();
    match message {
        Message::Text(text) => match serde_json::from_str::<SocketEvent>(text.as_str()) {
            Ok(event) => frames.events.push(event),
            Err(e) => frames.bad.push(format!("{text} ({e})")),
        },
        Message::Binary(bytes) => frames
            .bad
            .push(format!("binary frame of {} bytes", bytes.len())),
        Message::Close(frame) => frames.closed = Some(format!("close frame {frame:?}")),
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
    }
}

/// The HTTP status with which the server answers a `/ws` handshake: 101 when
/// it accepts it, the error status otherwise.
pub async fn ws_handshake_status(url: &str) -> u16 {
    match tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async(url),
    )
    .await
    {
        Err(_) => panic!("GET {url}: no handshake answer within 30 s"),
        Ok(Ok((_, response))) => response.status().as_u16(),
        Ok(Err(tungstenite::Error::Http(response))) => response.status().as_u16(),
        Ok(Err(e)) => panic!("GET {url}: the handshake failed without an HTTP status: {e}"),
    }
}

// ---------------------------------------------------------------------------
// Waiting.
// ---------------------------------------------------------------------------

/// Polls `check` until it returns `Ok`, and returns that value. `Err` carries
/// what was observed instead; if the deadline passes, the test fails naming
/// `desc` and the last observation.
pub async fn wait_until<T>(
    desc: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {desc}; last observed: {last}")
            }
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

/// Checks `check` repeatedly for `duration` and fails at the first `Err`:
/// for things that must stay true (nothing doubled, nothing leaked) while
/// the asynchronous consumers get every chance to break them.
pub async fn assert_holds(
    desc: &str,
    duration: Duration,
    mut check: impl AsyncFnMut() -> Result<(), String>,
) {
    let deadline = Instant::now() + duration;
    loop {
        if let Err(observed) = check().await {
            panic!("expected {desc} to hold, but: {observed}");
        }
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL * 2).await;
    }
}

/// `Ok(value)` if `actual == expected`, else an observation for [`wait_until`].
pub fn same<T: PartialEq + Debug>(actual: T, expected: T) -> Result<T, String> {
    if actual == expected {
        Ok(actual)
    } else {
        Err(format!("{actual:?}, expected {expected:?}"))
    }
}

/// Creates a new, empty database on the server of `url` and returns its URL.
fn fresh_postgres_database(url: &str) -> String {
    let name = format!("taskhost_t_{}", uuid::Uuid::new_v4().simple());
    let (base, _) = url
        .rsplit_once('/')
        .expect("a PostgreSQL URL ends in /<database>");
    run_psql(url, &format!("CREATE DATABASE {name}"));
    format!("{base}/{name}")
}

fn drop_postgres_database(url: &str) {
    let (base, name) = url
        .rsplit_once('/')
        .expect("a PostgreSQL URL ends in /<database>");
    let _ = std::process::Command::new("psql")
        .args([
            &format!("{base}/postgres"),
            "-qc",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ])
        .output();
}

fn run_psql(url: &str, sql: &str) {
    let out = std::process::Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .expect("running psql (the PostgreSQL client) to create the test's database");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
