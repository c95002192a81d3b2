//! Socket pushes on their way to every instance on this PostgreSQL database (see
//! `sockets/fanout.rs`): written with the change, announced by `NOTIFY` at commit, read by
//! each listening instance, and purged when no listener can still need them.

use super::{Conn, Result};
use crate::domain::UserId;
use sqlx::{AnyPool, Row};

/// The `LISTEN`/`NOTIFY` channel; a notification's payload is the row's id.
pub const CHANNEL: &str = "taskhost_socket_pushes";

/// Records a push and notifies the channel; both take effect when the transaction commits
/// (PostgreSQL delivers notifications at commit, and drops them on rollback).
pub async fn insert(conn: &mut Conn, user: &UserId, frame: &str, now_ms: i64) -> Result<()> {
    let id: i64 = sqlx::query(
        "INSERT INTO socket_pushes (user_id, frame, created_at) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(user.as_str())
    .bind(frame)
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?
    .try_get("id")?;
    // `pg_notify` returns void, a type the Any driver cannot map: select something else.
    sqlx::query("SELECT 1 AS notified FROM (SELECT pg_notify($1, $2)) AS n")
        .bind(CHANNEL)
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The push with this id: its user and frame (`None` once purged).
pub async fn get(pool: &AnyPool, id: i64) -> Result<Option<(String, String)>> {
    let row = sqlx::query("SELECT user_id, frame FROM socket_pushes WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        Some(r) => Some((r.try_get("user_id")?, r.try_get("frame")?)),
        None => None,
    })
}

/// Deletes pushes created before `cutoff_ms`; returns how many.
pub async fn purge_before(pool: &AnyPool, cutoff_ms: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM socket_pushes WHERE created_at < $1")
        .bind(cutoff_ms)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
