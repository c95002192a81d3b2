//! Messages the host could not handle, kept with the reason: the table behind
//! `GET /admin/dead-letters` and replays. Written only by `pipeline::dead_letter`.

use super::{Conn, Result};
use crate::wire::time::{self, from_millis};
use serde::Serialize;
use sqlx::Row;

pub struct NewDeadLetter<'a> {
    /// The topic the message came on (never its dead-letter topic: see `forwarded_to`).
    pub topic: &'a str,
    /// The component that failed; `None` when the message failed before any component saw it.
    pub component: Option<&'a str>,
    /// What names the message (`pipeline::dead_letter::message_key`): its event id, else the
    /// transport's id, else a digest; `None` (older rows only) is never de-duplicated.
    pub event_id: Option<&'a str>,
    pub payload: &'a str,
    pub reason: &'a str,
    /// Deliveries made before giving up.
    pub attempts: u32,
    /// The dead-letter topic the message also reached, when it arrived from there.
    pub forwarded_to: Option<&'a str>,
}

/// What [`insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new dead letter.
    Added,
    /// The message had been dead-lettered and replayed, and failed again: that dead letter is
    /// pending again, the new failure as its `last_replay_error`.
    Reopened,
    /// It is pending already: nothing changed.
    AlreadyPending,
}

/// Records a dead letter — unless one of the same message (topic and key) and component is
/// recorded already, however often its redeliveries fail; a missing component counts as a
/// component of its own. Only `pipeline::dead_letter` calls it.
pub async fn insert(conn: &mut Conn, d: NewDeadLetter<'_>, now_ms: i64) -> Result<Recorded> {
    const SAME: &str =
        "topic = $1 AND event_id = $2 AND COALESCE(component, '') = COALESCE($3, '')";
    if d.event_id.is_some() {
        let reopened = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE dead_letters SET replayed_at = NULL, replay_result = NULL, last_replay_error = $4 \
             WHERE {SAME} AND replayed_at IS NOT NULL"
        )))
        .bind(d.topic)
        .bind(d.event_id)
        .bind(d.component)
        .bind(d.reason)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if reopened > 0 {
            return Ok(Recorded::Reopened);
        }
    }
    let added = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO dead_letters (topic, event_id, component, payload, reason, created_at, attempts, forwarded_to) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
         WHERE $2 IS NULL OR NOT EXISTS (SELECT 1 FROM dead_letters WHERE {SAME})"
    )))
    .bind(d.topic)
    .bind(d.event_id)
    .bind(d.component)
    .bind(d.payload)
    .bind(d.reason)
    .bind(now_ms)
    .bind(i64::from(d.attempts))
    .bind(d.forwarded_to)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(if added == 1 {
        Recorded::Added
    } else {
        Recorded::AlreadyPending
    })
}

/// Notes on the dead letters of a message (of `topic`, named `key`) that it also reached
/// `forwarded_to`. Returns how many rows it noted it on: zero when none was recorded.
pub async fn mark_forwarded(
    conn: &mut Conn,
    topic: &str,
    key: &str,
    forwarded_to: &str,
) -> Result<u64> {
    Ok(
        sqlx::query("UPDATE dead_letters SET forwarded_to = $1 WHERE topic = $2 AND event_id = $3")
            .bind(forwarded_to)
            .bind(topic)
            .bind(key)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterRecord {
    pub id: String,
    pub topic: String,
    pub component: Option<String>,
    pub event_id: Option<String>,
    pub payload: String,
    pub reason: String,
    #[serde(with = "time::required")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Deliveries made before the message was dead-lettered.
    pub attempts: i64,
    /// Replays tried so far.
    pub replays: i64,
    /// When a replay handled it (`null`: still to be handled).
    #[serde(with = "time::optional")]
    pub replayed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// What that replay did (`applied`, `duplicate`, `requeued`).
    pub replay_result: Option<String>,
    /// Why the last replay failed, if it did.
    pub last_replay_error: Option<String>,
    /// The dead-letter topic the message also reached (through Dapr: `{topic}-dlq`), if it did.
    pub forwarded_to: Option<String>,
}

/// Which dead letters to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not handled by a replay yet.
    Pending,
    /// Handled by a replay.
    Replayed,
    #[default]
    All,
}

/// Filters and keyset paging for [`list`]: newest first, `before` an id.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub component: Option<String>,
    pub topic: Option<String>,
    pub event_id: Option<String>,
    pub status: Status,
    /// Only ids smaller than this (the last id of the previous page).
    pub before: Option<i64>,
    pub limit: i64,
}

const COLUMNS: &str = "id, topic, component, event_id, payload, reason, created_at, attempts, \
                       replays, replayed_at, replay_result, last_replay_error, forwarded_to";

/// Dead letters matching `filter`, newest first.
pub async fn list(conn: &mut Conn, filter: &Filter) -> Result<Vec<DeadLetterRecord>> {
    let mut sql = format!("SELECT {COLUMNS} FROM dead_letters WHERE 1 = 1");
    let mut text: Vec<&str> = Vec::new();
    for (column, value) in [
        ("component", &filter.component),
        ("topic", &filter.topic),
        ("event_id", &filter.event_id),
    ] {
        if let Some(v) = value {
            text.push(v);
            sql.push_str(&format!(" AND {column} = ${}", text.len()));
        }
    }
    match filter.status {
        Status::Pending => sql.push_str(" AND replayed_at IS NULL"),
        Status::Replayed => sql.push_str(" AND replayed_at IS NOT NULL"),
        Status::All => {}
    }
    let mut n = text.len();
    if filter.before.is_some() {
        n += 1;
        sql.push_str(&format!(" AND id < ${n}"));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", n + 1));
    // Built from constants only; every value is a bound parameter.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for v in text {
        query = query.bind(v);
    }
    if let Some(before) = filter.before {
        query = query.bind(before);
    }
    let rows = query.bind(filter.limit).fetch_all(&mut *conn).await?;
    rows.iter().map(record).collect()
}

/// One dead letter by id.
pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<DeadLetterRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM dead_letters WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(record)
    .transpose()
}

/// Records what a replay did: handled (`Ok(result)`) or failed again (`Err(reason)`).
pub async fn record_replay(
    conn: &mut Conn,
    id: i64,
    outcome: std::result::Result<&str, &str>,
    now_ms: i64,
) -> Result<()> {
    let query = match outcome {
        Ok(result) => sqlx::query(
            "UPDATE dead_letters SET replays = replays + 1, replayed_at = $1, replay_result = $2, \
             last_replay_error = NULL WHERE id = $3",
        )
        .bind(now_ms)
        .bind(result),
        Err(reason) => sqlx::query(
            "UPDATE dead_letters SET replays = replays + 1, last_replay_error = $1 WHERE id = $2",
        )
        .bind(reason),
    };
    query.bind(id).execute(&mut *conn).await?;
    Ok(())
}

fn record(r: &sqlx::any::AnyRow) -> Result<DeadLetterRecord> {
    Ok(DeadLetterRecord {
        id: r.try_get::<i64, _>("id")?.to_string(),
        topic: r.try_get("topic")?,
        component: r.try_get("component")?,
        event_id: r.try_get("event_id")?,
        payload: r.try_get("payload")?,
        reason: r.try_get("reason")?,
        created_at: from_millis(r.try_get("created_at")?),
        attempts: r.try_get("attempts")?,
        replays: r.try_get("replays")?,
        replayed_at: r.try_get::<Option<i64>, _>("replayed_at")?.map(from_millis),
        replay_result: r.try_get("replay_result")?,
        last_replay_error: r.try_get("last_replay_error")?,
        forwarded_to: r.try_get("forwarded_to")?,
    })
}
