//! One outbox relay per database. Several taskhost replicas may share a PostgreSQL database;
//! if each relayed the outbox, events would be published twice and a user's events could be
//! published out of order. The relay therefore runs only while its instance holds a
//! PostgreSQL session advisory lock; the others stand by and take over when the holder's
//! connection goes away (crash, shutdown, network). SQLite has one process by construction.

use super::{Backend, Db, Result};
use sqlx::Row;
use sqlx::pool::PoolConnection;
use sqlx::{Any, Executor};

/// The advisory lock key: any constant unique to taskhost's relay ("taskhost" in ASCII).
const RELAY_LOCK: i64 = 0x7461_736b_686f_7374;

/// Leadership of the relay, held as long as this value lives.
pub struct Leadership {
    /// The session holding the lock (PostgreSQL); `None` for SQLite.
    conn: Option<PoolConnection<Any>>,
}

impl Leadership {
    /// Takes the relay lock if it is free; `None` when another instance holds it.
    pub async fn try_acquire(db: &Db) -> Result<Option<Leadership>> {
        if db.backend() == Backend::Sqlite {
            return Ok(Some(Leadership { conn: None }));
        }
        let mut conn = db.pool().acquire().await?;
        let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS held")
            .bind(RELAY_LOCK)
            .fetch_one(&mut *conn)
            .await?;
        if row.try_get::<bool, _>("held")? {
            // Keep this session out of the pool's hands for as long as we lead.
            Ok(Some(Leadership { conn: Some(conn) }))
        } else {
            Ok(None)
        }
    }

    /// Whether the session holding the lock is still alive (if it died, so did the lock).
    pub async fn still_held(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(conn) => conn.execute("SELECT 1").await.is_ok(),
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // Closing the session releases the lock; never return it to the pool still locked.
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}
