//! The exactly-once ledger: one row per (component, event id), written in the same
//! transaction as that component's effects for that event.

use super::{Conn, Result};
use std::collections::HashMap;

/// Which of `components` have already recorded `event_id`: one query for all the components
/// a message goes to (each an equality on the primary key's leading column).
pub async fn done_by(conn: &mut Conn, components: &[&str], event_id: &str) -> Result<Vec<String>> {
    if components.is_empty() {
        return Ok(Vec::new());
    }
    let alternatives: Vec<String> = (0..components.len())
        .map(|i| format!("component = ${}", i + 2))
        .collect();
    // Only placeholders are formatted into the text; the values are bound.
    let sql = format!(
        "SELECT component FROM processed_messages WHERE event_id = $1 AND ({})",
        alternatives.join(" OR ")
    );
    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(event_id);
    for c in components {
        query = query.bind(*c);
    }
    Ok(query.fetch_all(&mut *conn).await?)
}

/// Records the pair; `false` when it was already there (a concurrent or earlier delivery won,
/// and the caller must roll back its effects).
pub async fn record(
    conn: &mut Conn,
    component: &str,
    event_id: &str,
    version: &str,
    now_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO processed_messages (component, event_id, component_version, processed_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(component)
    .bind(event_id)
    .bind(version)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One (component, event) pair to record.
pub struct Record<'a> {
    pub component: &'a str,
    pub event_id: &'a str,
    pub version: &'a str,
    pub now_ms: i64,
}

/// Columns of a [`Record`] row.
const COLUMNS: usize = 4;

/// The insert of `rows` records that skips pairs recorded before, then `tail` (`RETURNING …`
/// or nothing).
fn insert_sql(conn: &Conn, rows: usize, tail: &str) -> String {
    format!(
        "INSERT INTO processed_messages (component, event_id, component_version, processed_at) \
         VALUES {} ON CONFLICT DO NOTHING{tail}",
        super::values_rows(conn, rows, COLUMNS)
    )
}

/// Records many pairs in one statement (a group commit's batch); returns, per pair in order,
/// whether this call inserted it. `false`: it was already there, or an earlier pair of the
/// same call was the same (component, event) — exactly one of equal pairs wins, the first.
pub async fn record_many(conn: &mut Conn, records: &[Record<'_>]) -> Result<Vec<bool>> {
    // The first record naming each pair is the one an insert of that pair counts for.
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        first.entry((r.component, r.event_id)).or_insert(i);
    }
    let mut inserted = vec![false; records.len()];
    for chunk in records.chunks(super::rows_per_statement(COLUMNS)) {
        let sql = insert_sql(conn, chunk.len(), " RETURNING component, event_id");
        let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            query = query
                .bind(r.component)
                .bind(r.event_id)
                .bind(r.version)
                .bind(r.now_ms);
        }
        for (component, event_id) in query.fetch_all(&mut *conn).await? {
            if let Some(&i) = first.get(&(component.as_str(), event_id.as_str())) {
                inserted[i] = true;
            }
        }
    }
    Ok(inserted)
}

/// Records many pairs in one plain statement, on the bet that none was recorded before (a
/// first delivery: nearly always). `Some`: the bet held — per record in order, whether this call
/// inserted it (`false` only for a repeat of an earlier record of the same call). `None`: some
/// pair was there already; the others are inserted now and which is which cannot be told, so
/// the caller must roll the transaction back and use [`record_many`].
///
/// Why not always [`record_many`]: its `RETURNING` sends every inserted row back on its own,
/// and on SQLite each is a hand-off between the connection's thread and the caller — ~70 per
/// group commit on the Dapr route, where the one writer is the bottleneck.
pub async fn record_if_all_new(
    conn: &mut Conn,
    records: &[Record<'_>],
) -> Result<Option<Vec<bool>>> {
    let mut seen = std::collections::HashSet::with_capacity(records.len());
    let firsts: Vec<bool> = records
        .iter()
        .map(|r| seen.insert((r.component, r.event_id)))
        .collect();
    let distinct: Vec<&Record<'_>> = records
        .iter()
        .zip(&firsts)
        .filter_map(|(r, &first)| first.then_some(r))
        .collect();
    let mut inserted = 0;
    for chunk in distinct.chunks(super::rows_per_statement(COLUMNS)) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert_sql(conn, chunk.len(), "")));
        for r in chunk {
            query = query
                .bind(r.component)
                .bind(r.event_id)
                .bind(r.version)
                .bind(r.now_ms);
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok((inserted == distinct.len() as u64).then_some(firsts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Db;

    fn rec<'a>(component: &'a str, event_id: &'a str) -> Record<'a> {
        Record {
            component,
            event_id,
            version: "0.1.0",
            now_ms: 1,
        }
    }

    #[tokio::test]
    async fn record_many_inserts_each_pair_once_and_says_which_it_inserted() {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        assert!(record(&mut conn, "audit", "e0", "0.1.0", 1).await.unwrap());
        let got = record_many(
            &mut conn,
            &[
                rec("audit", "e0"), // recorded before
                rec("audit", "e1"),
                rec("sync", "e1"),
                rec("audit", "e1"), // the same pair again in one batch
                rec("audit", "e2"),
            ],
        )
        .await
        .unwrap();
        assert_eq!(got, vec![false, true, true, false, true]);
        let done = done_by(&mut conn, &["audit", "sync"], "e1").await.unwrap();
        assert_eq!(done.len(), 2);
        assert!(record_many(&mut conn, &[]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn record_if_all_new_answers_only_when_no_pair_was_recorded_before() {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        let mut conn = db.pool().acquire().await.unwrap();
        let got = record_if_all_new(
            &mut conn,
            &[rec("audit", "e1"), rec("sync", "e1"), rec("audit", "e1")],
        )
        .await
        .unwrap();
        assert_eq!(got, Some(vec![true, true, false]));
        let done = done_by(&mut conn, &["audit", "sync"], "e1").await.unwrap();
        assert_eq!(done.len(), 2);
        // (sync, e1) is there already: no answer, though (audit, e2) is inserted.
        let got = record_if_all_new(&mut conn, &[rec("audit", "e2"), rec("sync", "e1")])
            .await
            .unwrap();
        assert_eq!(got, None);
        assert_eq!(
            record_if_all_new(&mut conn, &[]).await.unwrap(),
            Some(vec![])
        );
    }
}
