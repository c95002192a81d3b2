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
}
