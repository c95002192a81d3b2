//! What is cheaper to read from the database now and then than to track on every change — the
//! outbox's depth and oldest row, the scheduled reminder jobs, the pool — sampled into gauges.

use super::{Db, Result, jobs, outbox};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the gauges are refreshed.
const EVERY: Duration = Duration::from_secs(5);

/// Samples every [`EVERY`] until `shutdown`.
pub async fn sample_forever(db: Db, shutdown: CancellationToken) {
    loop {
        if let Err(e) = sample(&db).await {
            tracing::debug!(error = %e, "metrics sampling failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

async fn sample(db: &Db) -> Result<()> {
    let pool = db.pool();
    crate::metrics::db_pool(pool.num_idle(), pool.size() as usize);
    let mut conn = pool.acquire().await?;
    let (depth, oldest) = outbox::stats(&mut conn).await?;
    let age = oldest.map_or(0.0, |t| {
        ((crate::wire::time::now().timestamp_millis() - t).max(0) as f64) / 1000.0
    });
    crate::metrics::outbox(depth, age);
    crate::metrics::scheduled_jobs(jobs::count(&mut conn).await?);
    Ok(())
}
