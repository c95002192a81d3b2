//! PostgreSQL over TLS (rustls): a real PostgreSQL that serves TLS only (`scripts/pg-test.sh
//! start --tls`: `ssl=on`, `hostssl` in pg_hba, a server certificate signed by a CA made for
//! the run with the openssl CLI), reached through the `sslmode`/`sslrootcert` of the URL.
//!
//! Runs where PostgreSQL is installed, i.e. with `TASKHOST_TEST_DATABASE_URL` set (`just
//! test-pg`); it starts a cluster of its own on a free port and stops it at the end. Without
//! that variable it says it is skipped and checks nothing.

mod support;

use serde_json::json;
use sqlx::Row;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Socket, TestEnv, User};
use taskhost::storage::Db;

/// A TLS-only PostgreSQL in a temporary directory, stopped when dropped.
struct TlsPostgres {
    dir: tempfile::TempDir,
    port: u16,
    /// postgres://…?sslmode=verify-full&sslrootcert=<the run's CA>
    url: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-test.sh")
}

impl TlsPostgres {
    fn start() -> Self {
        // Under /tmp: as root, the server runs as `postgres`, who must reach the directory.
        let dir = tempfile::Builder::new()
            .prefix("taskhost-pg-tls-")
            .tempdir_in("/tmp")
            .expect("a temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let out = Command::new("bash")
            .arg(script())
            .args(["start", "--tls"])
            .env("TASKHOST_PG_DIR", dir.path())
            .env("TASKHOST_PG_PORT", port.to_string())
            .output()
            .expect("running scripts/pg-test.sh");
        assert!(
            out.status.success(),
            "scripts/pg-test.sh start --tls failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(url.contains("sslmode=verify-full"), "{url}");
        Self { dir, port, url }
    }

    /// The same server under another `sslmode` (and root certificate, if any).
    fn url_with(&self, query: &str) -> String {
        format!(
            "postgres://postgres:postgres@127.0.0.1:{}/taskhost_test?{query}",
            self.port
        )
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .env("TASKHOST_PG_DIR", self.dir.path())
            .env("TASKHOST_PG_PORT", self.port.to_string())
            .output();
    }
}

/// A CA that did not sign the server's certificate.
fn other_ca(dir: &Path) -> PathBuf {
    let (key, crt) = (dir.join("other-ca.key"), dir.join("other-ca.crt"));
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=another CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("running openssl")
        .status;
    assert!(status.success(), "openssl could not make a CA");
    crt
}

/// Whether the pool's connection is encrypted, asked of the server.
async fn server_says_tls(db: &Db) -> bool {
    let row = sqlx::query(
        "SELECT CAST(CASE WHEN ssl THEN 1 ELSE 0 END AS BIGINT) AS tls FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .fetch_one(db.pool())
    .await
    .expect("pg_stat_ssl");
    row.try_get::<i64, _>("tls").unwrap() == 1
}

fn skipped() -> bool {
    let skip = std::env::var("TASKHOST_TEST_DATABASE_URL")
        .map(|u| u.trim().is_empty())
        .unwrap_or(true);
    if skip {
        eprintln!(
            "skipped: needs PostgreSQL (run with TASKHOST_TEST_DATABASE_URL set, as `just test-pg` does)"
        );
    }
    skip
}

#[tokio::test]
async fn the_host_speaks_tls_to_postgresql_and_verifies_the_server() {
    if skipped() {
        return;
    }
    let pg = TlsPostgres::start();

    // verify-full: the run's CA, and the certificate names 127.0.0.1.
    let db = Db::connect(&pg.url, 2)
        .await
        .expect("verify-full with the run's CA");
    assert!(server_says_tls(&db).await, "verify-full: not encrypted");
    drop(db);

    // verify-ca and require connect too (require: encrypted, the server is not checked).
    let ca = pg.dir.path().join("tls/ca.crt");
    for query in [
        format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
        "sslmode=require".to_string(),
    ] {
        let db = Db::connect(&pg.url_with(&query), 2)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        assert!(server_says_tls(&db).await, "{query}: not encrypted");
    }

    // A CA that did not sign the server's certificate: refused, and the error says why.
    let wrong = other_ca(pg.dir.path());
    let query = format!("sslmode=verify-full&sslrootcert={}", wrong.display());
    let err = Db::connect(&pg.url_with(&query), 2)
        .await
        .err()
        .expect("a server certificate from another CA must be refused");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{query}: {err}"
    );

    // Without TLS the server refuses us: so the connections above were TLS or nothing.
    let err = Db::connect(&pg.url_with("sslmode=disable"), 2)
        .await
        .err()
        .expect("the server accepts TLS only");
    assert!(err.to_string().contains("no encryption"), "{err}");

    // The binary on the TLS URL: migrations, the Task API, and the socket fan-out's LISTEN
    // connection (a connection of its own, from the same URL).
    let mut env = TestEnv::on_database(&pg.url);
    let host = env.start().await;
    let user = User::new().await;
    let socket = Socket::connect(&host, &user).await;
    let task = host
        .api(&user)
        .create_task(&json!({"title": "over TLS"}))
        .await;
    socket
        .wait_for("task.created pushed through LISTEN over TLS", |m| {
            m.kind == "task.created" && m.task_id == task.id
        })
        .await;
}
