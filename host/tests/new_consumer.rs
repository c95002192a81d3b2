//! From `taskhost new` to live traffic, in Rust, Python and JavaScript, with the real tools:
//!
//! 1. `taskhost new greeter --lang L` writes a project; its version is bumped as a user would
//!    before a push; its own test (`cargo test`, `python3 -m unittest`, `node --test`) passes;
//!    `taskhost build` builds it (installing the pinned toolchain if it is missing) and checks
//!    it as the host checks a push;
//! 2. `wasmtime run --invoke` runs the `.wasm` standalone: `describe()` and one `handle` call
//!    with a real message;
//! 3. a host (SQLite) starts with the Rust project as generated (`greeter` 0.1.0); while a
//!    stream of task creations flows through the Task API, each language's build is pushed
//!    with `taskhost components push`, then rolled back with `taskhost components rollback`.
//!    Every task created after a push answered is handled exactly once (one exactly-once
//!    record, one notification) by the pushed version; after the rollback, by 0.1.0; no task
//!    of the whole run is missed or handled twice. Per-component limits are exercised on the
//!    way: `--memory-mib` at push, and `limits.toml` in the components directory.
//!
//! Needs cargo, python3, node and npm, and the wasmtime CLI (`just test-new-consumer` has them
//! all). Builds are cached by their sources (`~/.cache/taskhost/builds`) and compiled
//! components by digest (`<target>/new-consumer/compiled`), so a second run costs little.

mod support;

use serde_json::Value;
use sqlx::Row;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{HostOptions, TestEnv, User, wait_until};
use taskhost::storage::Db;

const NAME: &str = "greeter";
const FIRST: &str = "0.1.0";
const ADMIN_TOKEN: &str = "new-consumer-test-admin-token";
/// How long each version takes traffic before the next change.
const PHASE: Duration = Duration::from_millis(1500);

#[derive(Clone, Copy, Debug)]
enum Lang {
    Rust,
    Python,
    Javascript,
}

impl Lang {
    fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Javascript => "javascript",
        }
    }

    /// The file that holds the version describe() reports, and how it is written there.
    fn version_line(self, version: &str) -> (&'static str, String) {
        match self {
            Lang::Rust => ("Cargo.toml", format!("version = \"{version}\"")),
            Lang::Python => ("app.py", format!("VERSION = \"{version}\"")),
            Lang::Javascript => ("app.js", format!("const VERSION = \"{version}\";")),
        }
    }

    /// The project's own test command.
    fn test_command(self) -> Vec<&'static str> {
        match self {
            Lang::Rust => vec!["cargo", "test", "--quiet"],
            Lang::Python => vec!["python3", "-m", "unittest", "-v"],
            Lang::Javascript => vec!["node", "--test"],
        }
    }
}

fn target_dir() -> PathBuf {
    support::target_dir().join("new-consumer")
}

/// Runs a command to success and returns its stdout; on failure, panics with both outputs.
fn run(what: &str, command: &mut Command) -> String {
    let started = Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    eprintln!("{what}: ok in {:.1} s", started.elapsed().as_secs_f64());
    stdout
}

fn taskhost(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskhost"));
    command
        .args(args)
        // The generated Rust projects share one target dir: their dependencies build once.
        .env("CARGO_TARGET_DIR", target_dir().join("cargo"))
        // Compiled components land where the host of this test finds them: the push is fast.
        .env("TASKHOST_CACHE_DIR", target_dir().join("compiled"))
        .env("RUST_BACKTRACE", "0");
    command
}

/// Writes a project, bumps its version to `version` (unless it is the first), runs its own
/// tests, builds and checks it; returns the `.wasm`.
fn new_project(work: &Path, lang: Lang, version: &str) -> PathBuf {
    let dir = work.join(format!("{}-{version}", lang.name()));
    run(
        &format!("taskhost new --lang {}", lang.name()),
        taskhost(&["new", NAME, "--lang", lang.name(), "--dir"]).arg(&dir),
    );
    if version != FIRST {
        let (file, line) = lang.version_line(FIRST);
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.matches(&line).count(),
            1,
            "{}: the template must hold `{line}` once",
            path.display()
        );
        std::fs::write(&path, text.replace(&line, &lang.version_line(version).1)).unwrap();
    }
    let built = run(
        &format!("taskhost build ({} {version})", lang.name()),
        taskhost(&["build"]).arg(&dir),
    );
    let _ = built;
    let test = lang.test_command();
    run(
        &format!("the {} project's own tests", lang.name()),
        Command::new(test[0])
            .args(&test[1..])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", target_dir().join("cargo-native")),
    );
    let wasm = dir.join("dist").join(format!("{NAME}.wasm"));
    assert!(wasm.is_file(), "taskhost build made no {}", wasm.display());
    wasm
}

/// A created task as a WAVE value, the way the wasmtime CLI takes it.
const HANDLE: &str = r#"handle("task-events", task-event({event-id: "evt-1", operation: created,
    occurred-at: 1769850000000, user-id: "alice", task: {id: "t1", title: "Pay rent",
    description: none, is-completed: false, priority: high, due-date: some(1769936400000),
    recurrence: none, tags: ["home"], reminder-offsets: none, occurrence: 1, series-id: none,
    created-at: 1769850000000, updated-at: 1769850000000, completed-at: none}, previous: none}),
    1769850000000)"#;

/// `wasmtime run --invoke`: describe() and one handle() with a real message, nothing of the host.
fn run_standalone(lang: Lang, wasm: &Path, version: &str) {
    let wasmtime = |call: &str| {
        run(
            &format!("wasmtime run --invoke ({}, {})", lang.name(), &call[..8]),
            Command::new("wasmtime")
                .args(["run", "--invoke", call])
                .arg(wasm)
                .env("RUST_BACKTRACE", "0"),
        )
    };
    let described = wasmtime("describe()");
    assert_eq!(
        described.trim(),
        format!(r#"{{name: "{NAME}", version: "{version}", topics: ["task-events"]}}"#),
        "{}",
        lang.name()
    );
    let handled = wasmtime(HANDLE);
    assert_eq!(
        handled.trim(),
        format!(
            r#"ok([notify({{idempotency-key: "{NAME}:evt-1", user-id: "alice", task-id: "t1", title: "New task: Pay rent", body: "noted by {NAME} {version}", created-at: 1769850000000}})])"#
        ),
        "{}",
        lang.name()
    );
}

/// A task created through the API, and when its creation was answered.
#[derive(Clone, Debug)]
struct Created {
    task_id: String,
    answered: Instant,
}

/// A version change, and when it was asked for and answered.
#[derive(Debug)]
struct Change {
    version: String,
    asked: Instant,
    answered: Instant,
}

/// Pushes or rolls back with the CLI, against the running host.
fn admin_cli(url: &str, args: &[&str]) -> Value {
    let stdout = run(
        &format!("taskhost components {}", args.join(" ")),
        taskhost(&["components"])
            .args(args)
            .args(["--url", url])
            .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN),
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

async fn serving(host: &support::Host) -> Value {
    let list: Value = host
        .api_with_authorization(Some(&format!("Bearer {ADMIN_TOKEN}")))
        .get("/admin/components")
        .await
        .expect(200)
        .value();
    list.as_array()
        .and_then(|l| l.iter().find(|c| c["name"] == NAME))
        .cloned()
        .unwrap_or_else(|| panic!("{NAME} is not listed: {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs cargo, python3, node/npm and wasmtime, and minutes on a cold cache: `just test-new-consumer`"]
async fn a_new_consumer_in_each_language_is_built_run_pushed_and_rolled_back() {
    let work = tempfile::Builder::new()
        .prefix("taskhost-new-consumer-")
        .tempdir()
        .unwrap();
    let work = work.path();

    // --- 1 and 2: new → version → own tests → build → wasmtime, in each language -----------
    let first = new_project(work, Lang::Rust, FIRST);
    run_standalone(Lang::Rust, &first, FIRST);
    let mut pushes = Vec::new();
    for lang in [Lang::Python, Lang::Javascript, Lang::Rust] {
        let version = format!("0.2.0-{}", lang.name());
        let wasm = new_project(work, lang, &version);
        run_standalone(lang, &wasm, &version);
        eprintln!(
            "{}: {} ({:.1} MB)",
            lang.name(),
            wasm.display(),
            std::fs::metadata(&wasm).unwrap().len() as f64 / 1e6
        );
        pushes.push((lang, version, wasm));
    }

    // --- 3: a host with greeter 0.1.0; pushes and rollbacks while events flow ----------------
    let components = work.join("components");
    std::fs::create_dir_all(&components).unwrap();
    std::fs::copy(&first, components.join(format!("{NAME}.wasm"))).unwrap();
    // The directory's limits: versions pushed without their own get this call timeout.
    std::fs::write(
        components.join("limits.toml"),
        format!("[{NAME}]\ncall_timeout_ms = 3000\n"),
    )
    .unwrap();
    let mut env = TestEnv::new();
    let host = env
        .start_with(
            &HostOptions::new()
                .components_dir(&components)
                .env("TASKHOST_ADMIN_TOKEN", ADMIN_TOKEN)
                .env(
                    "TASKHOST_CACHE_DIR",
                    target_dir().join("compiled").display().to_string(),
                )
                .env("TASKHOST_WATCH_COMPONENTS", "false")
                // The test rolls back itself.
                .env("TASKHOST_AUTO_ROLLBACK", "false"),
        )
        .await;
    let url = host.url("");
    let start = serving(&host).await;
    assert_eq!(start["version"], FIRST);
    assert_eq!(start["limits"]["call_timeout_ms"], 3000, "{start}");

    // The stream: one task every 25 ms, each creation answered before the next.
    let user = User::new().await;
    let api = host.api(&user);
    let created: Arc<Mutex<Vec<Created>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let stream = {
        let (created, stop) = (created.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.is_cancelled() {
                i += 1;
                let task = api
                    .create_task(&serde_json::json!({ "title": format!("Task {i}") }))
                    .await;
                created.lock().unwrap().push(Created {
                    task_id: task.id,
                    answered: Instant::now(),
                });
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };

    let mut changes = vec![Change {
        version: FIRST.into(),
        asked: Instant::now(),
        answered: Instant::now(),
    }];
    tokio::time::sleep(PHASE).await;
    for (lang, version, wasm) in &pushes {
        // Python's and JavaScript's memory images are tens of MiB: give the version its own
        // memory limit at push. The Rust build gets limits.toml's (and the default memory).
        let memory = match lang {
            Lang::Rust => None,
            _ => Some("128"),
        };
        let mut args = vec!["push", wasm.to_str().unwrap()];
        if let Some(mib) = memory {
            args.extend(["--memory-mib", mib]);
        }
        let asked = Instant::now();
        let answer = admin_cli(&url, &args);
        changes.push(Change {
            version: version.clone(),
            asked,
            answered: Instant::now(),
        });
        assert_eq!(answer["to"]["version"], version.as_str(), "{answer}");
        let now = serving(&host).await;
        assert_eq!(now["version"], version.as_str());
        match memory {
            Some(mib) => {
                assert_eq!(
                    now["limits"]["memory_mib"],
                    mib.parse::<f64>().unwrap(),
                    "{now}"
                );
                assert_eq!(now["limits"]["memory_setting"], "memory_mib of the push");
            }
            None => {
                assert_eq!(now["limits"]["call_timeout_ms"], 3000, "{now}");
                assert_eq!(now["limits"]["memory_setting"], "TASKHOST_MEMORY_LIMIT_MIB");
            }
        }
        tokio::time::sleep(PHASE).await;
        let now = serving(&host).await;
        assert!(
            now["messages_handled"].as_u64().unwrap() > 0,
            "{version} took no traffic: {now}"
        );
        eprintln!(
            "{}: start memory {} MiB, peak {} MiB, {} messages",
            version, now["memory"]["start_mib"], now["memory"]["peak_mib"], now["messages_handled"]
        );

        let asked = Instant::now();
        let answer = admin_cli(&url, &["rollback", NAME]);
        changes.push(Change {
            version: FIRST.into(),
            asked,
            answered: Instant::now(),
        });
        assert_eq!(answer["to"]["version"], FIRST, "{answer}");
        let back = serving(&host).await;
        assert_eq!(back["version"], FIRST);
        assert_eq!(
            back["limits"]["call_timeout_ms"], 3000,
            "the first version's own limits"
        );
        tokio::time::sleep(PHASE).await;
    }
    stop.cancel();
    stream.await.unwrap();
    let created = created.lock().unwrap().clone();
    assert!(created.len() > 100, "only {} tasks flowed", created.len());

    // --- What the database holds ------------------------------------------------------------
    let db = Db::connect(env.database_url(), 1).await.unwrap();
    let handled = wait_until(
        "every task's creation to be handled by greeter",
        Duration::from_secs(60),
        async || {
            let rows = handled_by(&db).await;
            let missing = created
                .iter()
                .filter(|c| !rows.iter().any(|r| r.task_id == c.task_id))
                .count();
            if missing == 0 {
                Ok(rows)
            } else {
                Err(format!(
                    "{missing} of {} tasks not handled yet",
                    created.len()
                ))
            }
        },
    )
    .await;
    let count = async |sql: &'static str| -> i64 {
        sqlx::query(sql)
            .bind(NAME)
            .fetch_one(&mut *db.pool().acquire().await.unwrap())
            .await
            .unwrap()
            .get(0)
    };
    assert_eq!(
        count("SELECT COUNT(*) FROM processed_messages WHERE component = $1").await,
        created.len() as i64,
        "one exactly-once record per task creation, no more"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM notifications WHERE idempotency_key LIKE $1 || ':%'").await,
        created.len() as i64,
        "one notification per task creation, no more"
    );
    let mut checked_after_change = 0;
    for c in &created {
        let rows: Vec<&Handled> = handled.iter().filter(|r| r.task_id == c.task_id).collect();
        let [row] = rows.as_slice() else {
            panic!(
                "task {} was handled {} times: {rows:?}",
                c.task_id,
                rows.len()
            );
        };
        assert_eq!(
            row.note_body,
            format!("noted by {NAME} {}", row.version),
            "task {}: the effect is the version's own",
            c.task_id
        );
        // The version serving when the creation was answered, if no change was under way.
        let serving = changes
            .iter()
            .rev()
            .find(|change| change.asked <= c.answered);
        if let Some(change) = serving
            && change.answered < c.answered
        {
            assert_eq!(
                row.version, change.version,
                "task {} was created after {} was serving",
                c.task_id, change.version
            );
            checked_after_change += 1;
        }
    }
    for version in changes.iter().map(|c| &c.version) {
        assert!(
            handled.iter().any(|r| &r.version == version),
            "{version} handled nothing"
        );
    }
    eprintln!(
        "{} tasks, each handled once; {checked_after_change} created after a change answered, each by the version then serving",
        created.len()
    );
    assert!(checked_after_change * 10 >= created.len() * 8);
    drop(host);
}

/// One task's creation as greeter handled it: its exactly-once record and its notification.
#[derive(Debug)]
struct Handled {
    task_id: String,
    version: String,
    note_body: String,
}

async fn handled_by(db: &Db) -> Vec<Handled> {
    let mut conn = db.pool().acquire().await.unwrap();
    sqlx::query(
        "SELECT n.task_id, p.component_version, n.body FROM notifications n \
         JOIN processed_messages p ON p.component = $1 AND n.idempotency_key = $1 || ':' || p.event_id",
    )
    .bind(NAME)
    .fetch_all(&mut *conn)
    .await
    .unwrap()
    .iter()
    .map(|r| Handled {
        task_id: r.get(0),
        version: r.get(1),
        note_body: r.get(2),
    })
    .collect()
}
