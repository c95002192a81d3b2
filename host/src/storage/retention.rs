//! Retention: what the host deletes so that its tables do not grow without bound.
//!
//! - **Delivered outbox rows.** Once the relay has handed an event over (to the sidecar or to
//!   the in-process pipeline) its row is history; it is kept a while for operators
//!   (`--outbox-retention-hours`) and then deleted. Undelivered rows are never touched.
//! - **Exactly-once records** (`processed_messages`). A record must outlive every way its event
//!   can come back: Kafka's retention of the topic, the dead-letter topic's retention (a message
//!   parked there can be re-driven weeks later), an operator's replay. The default, 35 days,
//!   covers the 30-day dead-letter retention in `deploy/k8s/strimzi/topics.yaml`; a record older
//!   than any redelivery can no longer prevent a duplicate, so keeping it buys nothing. `0`
//!   keeps them forever.
//! - **Fired reminders** (`fired_reminders`): what keeps a reminder from being published twice
//!   (`storage/jobs.rs` `fire`). Kept as long as the exactly-once records, by the same reasoning.
//!
//! Deletes run in small batches (each its own statement) so that a large backlog never holds
//! a long lock on SQLite's single writer or PostgreSQL's rows. Several replicas pruning the same
//! database at once is harmless: a row is deleted once, by whichever gets there first.

use super::{Db, Result};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rows deleted per statement.
const BATCH: i64 = 5_000;

/// How long each kind of row is kept; `None` keeps it forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub outbox_delivered: Option<Duration>,
    pub processed: Option<Duration>,
    /// Time between two pruning passes.
    pub every: Duration,
}

/// What one pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub outbox: u64,
    pub processed: u64,
    pub fired_reminders: u64,
}

/// Deletes what `policy` no longer keeps at `now_ms`.
pub async fn prune(db: &Db, policy: &RetentionPolicy, now_ms: i64) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    if let Some(keep) = policy.outbox_delivered {
        pruned.outbox = delete_in_batches(
            db,
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
             WHERE delivered_at IS NOT NULL AND delivered_at < $1 LIMIT $2)",
            cutoff(now_ms, keep),
        )
        .await?;
    }
    if let Some(keep) = policy.processed {
        // (component, event_id) is the key; the sub-select by age uses the processed_at index.
        pruned.processed = delete_in_batches(
            db,
            "DELETE FROM processed_messages WHERE (component, event_id) IN \
             (SELECT component, event_id FROM processed_messages WHERE processed_at < $1 LIMIT $2)",
            cutoff(now_ms, keep),
        )
        .await?;
        pruned.fired_reminders = delete_in_batches(
            db,
            "DELETE FROM fired_reminders WHERE event_id IN \
             (SELECT event_id FROM fired_reminders WHERE fired_at < $1 LIMIT $2)",
            cutoff(now_ms, keep),
        )
        .await?;
    }
    Ok(pruned)
}

fn cutoff(now_ms: i64, keep: Duration) -> i64 {
    now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX))
}

async fn delete_in_batches(db: &Db, sql: &'static str, cutoff_ms: i64) -> Result<u64> {
    let mut total = 0;
    loop {
        let done = sqlx::query(sql)
            .bind(cutoff_ms)
            .bind(BATCH)
            .execute(db.pool())
            .await?
            .rows_affected();
        total += done;
        if done < BATCH as u64 {
            return Ok(total);
        }
        // Let the pipeline's transactions in between batches (SQLite has one writer).
        tokio::task::yield_now().await;
    }
}

/// Prunes every `policy.every` until shut down; a failed pass is logged and tried again at the
/// next tick (the database may be briefly away: that is the pipeline's concern, not ours).
pub async fn run(db: Db, policy: RetentionPolicy, shutdown: CancellationToken) {
    if policy.outbox_delivered.is_none() && policy.processed.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(policy.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = crate::wire::time::now().timestamp_millis();
        match prune(&db, &policy, now).await {
            Ok(p) => {
                crate::metrics::pruned("outbox", p.outbox);
                crate::metrics::pruned("processed_messages", p.processed);
                crate::metrics::pruned("fired_reminders", p.fired_reminders);
                if p != Pruned::default() {
                    tracing::info!(
                        outbox = p.outbox,
                        processed = p.processed,
                        fired_reminders = p.fired_reminders,
                        "retention: deleted old rows"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention pass failed; trying again at the next one")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{outbox, processed};

    const HOUR: i64 = 3_600_000;

    async fn db() -> Db {
        Db::connect("sqlite::memory:", 1).await.unwrap()
    }

    async fn count(db: &Db, table: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(db.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn deletes_only_old_delivered_rows_and_old_records() {
        let db = db().await;
        let now = 1_000 * HOUR;
        let mut conn = db.pool().acquire().await.unwrap();
        // 1: delivered long ago; 2: delivered recently; 3: old but never delivered.
        for i in 0..3 {
            outbox::enqueue(&mut conn, "task-events", "u1", "{}", now - 500 * HOUR + i)
                .await
                .unwrap();
        }
        outbox::mark_delivered(&mut conn, 1, now - 400 * HOUR)
            .await
            .unwrap();
        outbox::mark_delivered(&mut conn, 2, now - HOUR)
            .await
            .unwrap();
        processed::record(&mut conn, "audit", "old", "0.1.0", now - 900 * HOUR)
            .await
            .unwrap();
        processed::record(&mut conn, "audit", "new", "0.1.0", now - HOUR)
            .await
            .unwrap();
        for (event_id, at) in [("fired-old", now - 900 * HOUR), ("fired-new", now - HOUR)] {
            sqlx::query("INSERT INTO fired_reminders (event_id, fired_at) VALUES ($1, $2)")
                .bind(event_id)
                .bind(at)
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        drop(conn);

        let policy = RetentionPolicy {
            outbox_delivered: Some(Duration::from_secs(7 * 24 * 3600)),
            processed: Some(Duration::from_secs(35 * 24 * 3600)),
            every: Duration::from_secs(600),
        };
        let pruned = prune(&db, &policy, now).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                outbox: 1,
                processed: 1,
                fired_reminders: 1
            }
        );
        let fired: Vec<String> = sqlx::query_scalar("SELECT event_id FROM fired_reminders")
            .fetch_all(db.pool())
            .await
            .unwrap();
        assert_eq!(fired, vec!["fired-new"], "the recent fired reminder stays");
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM outbox ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap();
        assert_eq!(
            ids,
            vec![2, 3],
            "the recent delivered row and the undelivered one stay"
        );
        let mut conn = db.pool().acquire().await.unwrap();
        let new = processed::done_by(&mut conn, &["audit"], "new")
            .await
            .unwrap();
        assert_eq!(new, vec!["audit".to_string()]);
        let old = processed::done_by(&mut conn, &["audit"], "old")
            .await
            .unwrap();
        assert!(old.is_empty(), "the old record is gone");
    }

    #[tokio::test]
    async fn keeps_everything_when_retention_is_off_and_deletes_past_one_batch() {
        let db = db().await;
        let now = 10_000 * HOUR;
        let mut conn = db.pool().acquire().await.unwrap();
        let n = BATCH + 7;
        for i in 0..n {
            processed::record(&mut conn, "audit", &format!("e{i}"), "0.1.0", HOUR)
                .await
                .unwrap();
        }
        drop(conn);
        let off = RetentionPolicy {
            outbox_delivered: None,
            processed: None,
            every: Duration::from_secs(1),
        };
        assert_eq!(prune(&db, &off, now).await.unwrap(), Pruned::default());
        assert_eq!(count(&db, "processed_messages").await, n);

        let on = RetentionPolicy {
            processed: Some(Duration::from_secs(3600)),
            ..off
        };
        assert_eq!(prune(&db, &on, now).await.unwrap().processed, n as u64);
        assert_eq!(count(&db, "processed_messages").await, 0);
    }
}
