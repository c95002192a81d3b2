//! The database: sqlx with migrations, PostgreSQL in production and SQLite embedded, chosen by
//! the URL. One SQL dialect serves both (sqlx's Any driver; `$n` parameters, BIGINT epoch-ms
//! times, TEXT JSON), so the same code and the same test suite run on both.
//!
//! Knows nothing about HTTP or wasm: each file is one table's queries.

pub mod audit;
pub mod checkpoint;
pub mod dead_letters;
pub mod gauges;
pub mod jobs;
pub mod leader;
pub mod notifications;
pub mod outbox;
pub mod processed;
pub mod retention;
pub mod sidecar_calls;
pub mod socket_pushes;
pub mod tasks;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub type Tx = Transaction<'static, Any>;
pub type Conn = AnyConnection;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend behind a connection of the Any driver.
    pub fn of(conn: &Conn) -> Self {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database URL `{0}`: use postgres://… or sqlite://…")]
    UnsupportedUrl(String),
}

impl StorageError {
    /// Whether trying again later may succeed (database down, busy, or a serialization
    /// conflict) — such failures become `RETRY`, never `DROP`.
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Sqlx(e) => is_transient(e),
            _ => false,
        }
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: connection exceptions (08), serialization failure, deadlock,
            // admin/crash shutdown, cannot connect now. SQLite: BUSY (5), LOCKED (6).
            code.starts_with("08")
                || matches!(
                    code.as_ref(),
                    "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "5" | "6" | "517" | "262"
                )
        }
        _ => false,
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The connection pool and which database is behind it.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    /// Connections for reads that must not queue behind the writer: on a SQLite file, WAL
    /// readers of their own (SQLite has one writer, so `pool` has one connection, held for a
    /// whole group commit); otherwise `pool` itself.
    reads: AnyPool,
    backend: Backend,
    /// A SQLite database in a file (not in memory): it has a WAL to checkpoint
    /// (`checkpoint.rs`) and reader connections of its own.
    sqlite_file: bool,
    /// Room for the producer transactions that may wait for a connection at once
    /// ([`Db::begin_producer`]).
    producer_turn: Arc<tokio::sync::Semaphore>,
}

/// A transaction of a producer of new work (the Task API's writes), holding its turn at the
/// writer until it commits or is dropped. Derefs to the transaction.
pub struct ProducerTx {
    tx: Tx,
    _turn: tokio::sync::OwnedSemaphorePermit,
}

impl ProducerTx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl std::ops::Deref for ProducerTx {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        &self.tx
    }
}

impl std::ops::DerefMut for ProducerTx {
    fn deref_mut(&mut self) -> &mut Tx {
        &mut self.tx
    }
}

/// Producer transactions (the Task API's writes) that may wait for SQLite's one writer at
/// once (see [`Db::begin_producer`]). Embedded row alone (`taskhost-bench --quick
/// --only-embedded`, 64 writers), two runs each: unbounded (as before) lag p99 1.6–1.7 s, the
/// API accepting ~400 writes/s more than the consumers finished; 4: p99 ~50 ms, 2,137/2,225
/// writes/s end to end; 16: p99 75/81 ms, 2,490/2,302 writes/s (no fewer than unbounded);
/// 32: p99 490/549 ms; 1: p99 ~70 ms but 1,178/1,495 writes/s.
const PRODUCERS_AT_WRITER: usize = 16;

/// How many producer transactions may wait for a connection at once: on SQLite
/// [`PRODUCERS_AT_WRITER`]; on PostgreSQL half the pool, the other half left to the consumers'
/// committers (`pipeline::group_commit`, one per two connections) and the relay.
fn producer_turns(backend: Backend, max_connections: u32) -> usize {
    match backend {
        Backend::Sqlite => PRODUCERS_AT_WRITER,
        Backend::Postgres => half_the_pool(max_connections),
    }
}

/// Half of a PostgreSQL pool of `max_connections` (at least one): the Task API's transactions
/// may hold this many ([`producer_turns`]), and the consumers' group committers are this many
/// (`pipeline::group_commit`), so the two split the pool between them.
pub fn half_the_pool(max_connections: u32) -> usize {
    (max_connections as usize / 2).max(1)
}

/// Reader connections beside SQLite's one writer.
const SQLITE_READERS: u32 = 4;

impl Db {
    /// Connects and runs the migrations. SQLite gets one connection (SQLite has one writer;
    /// a single connection avoids `database is locked` under concurrent transactions) in WAL
    /// mode; PostgreSQL gets `max_connections`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StorageError::UnsupportedUrl(redact(url)));
        };
        let options = AnyConnectOptions::from_str(url)?;
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await?
            }
        };
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        // An in-memory SQLite database exists only on its one connection: reads share it.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let reads = if backend == Backend::Sqlite && !in_memory {
            AnyPoolOptions::new()
                .max_connections(SQLITE_READERS)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA query_only = 1").await?;
                        Ok(())
                    })
                })
                .connect_with(AnyConnectOptions::from_str(url)?)
                .await?
        } else {
            pool.clone()
        };
        Ok(Self {
            pool,
            reads,
            backend,
            sqlite_file: backend == Backend::Sqlite && !in_memory,
            producer_turn: Arc::new(tokio::sync::Semaphore::new(producer_turns(
                backend,
                max_connections,
            ))),
        })
    }

    /// For reads that may see the database as of the last commit and must not wait for the
    /// writer: the exactly-once pre-check of every delivery (the ledger insert in the commit
    /// is what guarantees exactly once; the pre-check only spares a duplicate its call).
    pub fn read_pool(&self) -> &AnyPool {
        &self.reads
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether this is a SQLite database in a file, with a WAL to checkpoint.
    pub fn is_sqlite_file(&self) -> bool {
        self.sqlite_file
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn begin(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }

    /// A transaction that adds new work (the Task API's writes), behind the work already
    /// accepted. On SQLite at most [`PRODUCERS_AT_WRITER`] such transactions wait for the one
    /// writer at once, so that the consumers' group commit, waiting for the writer too, queues
    /// behind at most that many instead of every API write in flight (64 in the embedded
    /// benchmark): the consumers keep up with what the producers gave them before the
    /// producers add much more, and the lag between a write and its consumers stays bounded
    /// (p99 ~80 ms there) instead of growing with the backlog (p99 1.7 s after 3 s of writes,
    /// growing). On PostgreSQL at most half the pool's connections ([`producer_turns`]): the
    /// embedded benchmark's 64 writers otherwise held all ten, every consumer commit and
    /// exactly-once read queued behind them, and the lag grew to p99 9.7–10.8 s over 10 s of
    /// writes; bounded, 447/498 ms (`taskhost-bench --only-embedded`, two alternating pairs,
    /// end to end 1,722/1,501 → 1,588/1,690 writes/s: the consumers' own rate, unchanged).
    pub async fn begin_producer(&self) -> Result<ProducerTx> {
        let turn = self
            .producer_turn
            .clone()
            .acquire_owned()
            .await
            .expect("the producers' semaphore is never closed");
        Ok(ProducerTx {
            tx: self.pool.begin().await?,
            _turn: turn,
        })
    }

    /// A cheap round trip, for readiness. Bounded to a second, so that a database that is down
    /// makes readiness answer "unavailable" at once rather than after the pool's timeout.
    pub async fn ping(&self) -> Result<()> {
        match tokio::time::timeout(
            Duration::from_secs(1),
            sqlx::query("SELECT 1").execute(&self.pool),
        )
        .await
        {
            Ok(result) => {
                result?;
                Ok(())
            }
            Err(_) => Err(StorageError::Sqlx(sqlx::Error::PoolTimedOut)),
        }
    }
}

/// A database URL with its password replaced, safe for logs and errors.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((cred, host)) => {
                let user = cred.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Bind parameters per multi-row statement: under SQLite's 32,766 and PostgreSQL's 65,535.
const MAX_BIND_PARAMS: usize = 4_000;

/// How many rows of `columns` values one multi-row statement takes (see [`values_rows`]).
pub(crate) fn rows_per_statement(columns: usize) -> usize {
    (MAX_BIND_PARAMS / columns).max(1)
}

/// The `VALUES` list of a multi-row insert on `conn`: `($1, $2), ($3, $4)` for 2 rows of 2
/// columns on PostgreSQL, `(?, ?), (?, ?)` on SQLite. Only placeholders are formatted into SQL
/// text; the values are bound.
///
/// Why SQLite gets anonymous `?`: SQLite treats `$1` as a *named* parameter, and binding looks
/// each name up by walking the statement's list of names (sqlx asks for every parameter's name),
/// so a statement of n named parameters costs O(n²) to bind — 4 % of the host's CPU on the
/// Dapr route at 256-part batches. Anonymous parameters have no name to look up.
pub(crate) fn values_rows(conn: &Conn, rows: usize, columns: usize) -> String {
    placeholders(Backend::of(conn), rows, columns)
}

fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=columns {
            if c > 1 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    use std::fmt::Write;
                    let _ = write!(sql, "${}", r * columns + c);
                }
            }
        }
        sql.push(')');
    }
    sql
}

/// JSON text for a TEXT column.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serializing plain data cannot fail")
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(column: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StorageError::Corrupt(format!("column {column}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_rows_numbers_the_placeholders_row_by_row() {
        assert_eq!(
            placeholders(Backend::Postgres, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(placeholders(Backend::Postgres, 1, 1), "($1)");
        assert_eq!(placeholders(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
        assert_eq!(rows_per_statement(10), 400);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    /// On PostgreSQL the Task API's transactions hold at most half the pool, so the consumers'
    /// commits find a connection while every API write in flight holds or waits (the embedded
    /// benchmark's lag grew to seconds when 64 API writes queued ahead of each commit). Runs
    /// when `TASKHOST_TEST_DATABASE_URL` is a PostgreSQL URL (`just test-pg`).
    #[tokio::test]
    async fn producers_leave_half_the_postgres_pool_to_the_consumers() {
        let url = match std::env::var("TASKHOST_TEST_DATABASE_URL") {
            Ok(url) if url.starts_with("postgres") => url,
            _ => {
                eprintln!("skipped: TASKHOST_TEST_DATABASE_URL is not a PostgreSQL URL");
                return;
            }
        };
        let db = Db::connect(&url, 4).await.unwrap();
        let go = Arc::new(tokio::sync::Semaphore::new(0));
        let mut producers = Vec::new();
        for _ in 0..8 {
            let (db, go) = (db.clone(), go.clone());
            producers.push(tokio::spawn(async move {
                let tx = db.begin_producer().await.unwrap();
                let _go = go.acquire().await.unwrap();
                tx.commit().await.unwrap();
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let consumer = tokio::time::timeout(Duration::from_secs(2), db.begin())
            .await
            .expect("the consumers' commit waited for a connection behind the producers")
            .unwrap();
        consumer.commit().await.unwrap();
        go.add_permits(8);
        for p in producers {
            p.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_consumer_waits_for_the_writer_behind_a_bounded_number_of_producers() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Db::connect(&url, 1).await.unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        // One producer holds the writer; twice the bound more ask for it.
        let first = db.begin_producer().await.unwrap();
        let mut waiting = Vec::new();
        for i in 0..2 * PRODUCERS_AT_WRITER {
            let (db, order) = (db.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let tx = db.begin_producer().await.unwrap();
                order.lock().unwrap().push(format!("producer {i}"));
                tx.commit().await.unwrap();
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Then the consumers' commit asks for it.
        let consumer = {
            let (db, order) = (db.clone(), order.clone());
            tokio::spawn(async move {
                let tx = db.begin().await.unwrap();
                order.lock().unwrap().push("consumer".to_string());
                tx.commit().await.unwrap();
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        first.commit().await.unwrap();
        consumer.await.unwrap();
        for w in waiting {
            w.await.unwrap();
        }
        let order = order.lock().unwrap();
        let at = order.iter().position(|o| o == "consumer").unwrap();
        assert!(
            at < PRODUCERS_AT_WRITER,
            "the consumer got the writer after {at} producers: {order:?}"
        );
    }
}
