//! SQLite's WAL checkpoints, off the writer's path.
//!
//! By default SQLite checkpoints in the connection that commits, once the WAL holds 1,000
//! pages: copying them back into the database file then runs inside a `COMMIT` while every
//! other write waits for the one writer connection. On the Dapr route that writer is the
//! bottleneck (docs/benchmarks.md, item 12) and checkpoints were ~13 % of its thread's CPU.
//! So while [`run`] runs, the writer's automatic checkpoints are off and a reader connection
//! checkpoints every [`EVERY`] instead. `PASSIVE`: it neither waits for nor blocks the writer or
//! a reader; it copies what no reader still needs and leaves the rest for the next round. When
//! [`run`] ends, the writer checkpoints on its own again.
//!
//! Only for a SQLite file (PostgreSQL has no WAL to manage here, an in-memory SQLite none at all).

use super::{Db, Result};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the WAL is checkpointed. Short enough that the WAL stays a few MiB at the route's
/// full rate; each round copies every page written since the last one once, however often
/// it was rewritten.
const EVERY: Duration = Duration::from_millis(200);

/// The writer's automatic checkpoint threshold, SQLite's default, restored when [`run`] ends.
const SQLITE_DEFAULT_PAGES: u32 = 1000;

/// Checkpoints every [`EVERY`] until `shutdown`, with the writer's own checkpoints off meanwhile.
/// Returns at once for anything but a SQLite file.
pub async fn run(db: Db, shutdown: CancellationToken) {
    if !db.is_sqlite_file() {
        return;
    }
    if let Err(e) = writer_checkpoints_at(&db, 0).await {
        tracing::warn!(error = %e, "cannot take WAL checkpoints off the writer; it keeps checkpointing itself");
        return;
    }
    tracing::debug!(every = ?EVERY, "WAL checkpoints run apart from the writer");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(EVERY) => {}
        }
        match checkpoint(&db).await {
            Ok((wal_pages, copied)) => {
                tracing::trace!(wal_pages, copied, "WAL checkpoint")
            }
            Err(e) => tracing::debug!(error = %e, "WAL checkpoint failed; trying again"),
        }
    }
    if let Err(e) = writer_checkpoints_at(&db, SQLITE_DEFAULT_PAGES).await {
        tracing::debug!(error = %e, "cannot give WAL checkpoints back to the writer");
    }
}

/// Sets the writer connection's automatic checkpoint threshold (0: never). A connection the
/// pool opens anew starts at SQLite's default, so a lost setting only brings back the default.
async fn writer_checkpoints_at(db: &Db, pages: u32) -> Result<()> {
    // A PRAGMA's value cannot be bound; it is a number formatted here.
    let sql = format!("PRAGMA wal_autocheckpoint = {pages}");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(db.pool())
        .await?;
    Ok(())
}

/// One passive checkpoint on a reader connection: the WAL's pages, and how many of them are now
/// in the database file.
async fn checkpoint(db: &Db) -> Result<(i64, i64)> {
    let mut conn = db.read_pool().acquire().await?;
    let (_busy, wal_pages, copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut *conn)
            .await?;
    Ok((wal_pages, copied))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn autocheckpoint(db: &Db) -> i64 {
        sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(db.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn checkpoints_apart_from_the_writer_and_gives_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("taskhost.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let db = Db::connect(&url, 1).await.unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(db.clone(), shutdown.clone()));
        for _ in 0..100 {
            if autocheckpoint(&db).await == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(autocheckpoint(&db).await, 0, "the writer still checkpoints");

        // ~4 MiB into the WAL: more than the writer's default threshold (1,000 pages).
        let before = std::fs::metadata(&file).unwrap().len();
        sqlx::query("CREATE TABLE filler (x TEXT)")
            .execute(db.pool())
            .await
            .unwrap();
        let row = "x".repeat(4000);
        for _ in 0..1000 {
            sqlx::query("INSERT INTO filler (x) VALUES ($1)")
                .bind(&row)
                .execute(db.pool())
                .await
                .unwrap();
        }
        // Only a checkpoint moves pages from the WAL into the database file.
        let mut grown = false;
        for _ in 0..50 {
            if std::fs::metadata(&file).unwrap().len() > before + 3_000_000 {
                grown = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(grown, "no checkpoint copied the WAL into the database file");

        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(autocheckpoint(&db).await, i64::from(SQLITE_DEFAULT_PAGES));
    }
}
