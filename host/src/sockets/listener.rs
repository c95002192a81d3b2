//! The PostgreSQL side of the socket fan-out (see [`super::fanout`]): a `LISTEN` connection of
//! its own (sqlx's `PgListener`; the Any pool cannot listen) receives the id of every push
//! committed by any instance on the database, reads the push and hands it to this instance's
//! sockets. Also purges pushes old enough that no listener can still need them.
//!
//! Notifications are not queued for a listener that is disconnected: if the `LISTEN`
//! connection drops, pushes committed meanwhile never reach this instance. So when it
//! reconnects, every socket of this instance is closed — its client reconnects and reloads the
//! list from the Task API — rather than left open and silently stale.

use super::SocketHub;
use crate::storage::{Db, socket_pushes};
use crate::wire::time;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a push row is kept: far longer than a commit-to-listener round trip.
const KEEP: Duration = Duration::from_secs(60);
/// How often old pushes are purged.
const PURGE_EVERY: Duration = Duration::from_secs(30);

/// Connects and starts listening (so that a failure stops the start, with its reason); the
/// returned task pushes until `shutdown`.
pub async fn spawn(
    url: &str,
    db: Db,
    hub: Arc<SocketHub>,
    shutdown: CancellationToken,
) -> sqlx::Result<tokio::task::JoinHandle<()>> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(socket_pushes::CHANNEL).await?;
    tracing::info!(
        channel = socket_pushes::CHANNEL,
        "listening for socket pushes of every instance on this database"
    );
    Ok(tokio::spawn(run(listener, db, hub, shutdown)))
}

async fn run(mut listener: PgListener, db: Db, hub: Arc<SocketHub>, shutdown: CancellationToken) {
    let mut purge = tokio::time::interval(PURGE_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = purge.tick() => {
                let cutoff = time::now().timestamp_millis() - KEEP.as_millis() as i64;
                if let Err(e) = socket_pushes::purge_before(db.pool(), cutoff).await {
                    tracing::warn!(error = %e, "purging old socket pushes failed; retried later");
                }
            }
            received = listener.try_recv() => match received {
                Ok(Some(n)) => push_notified(&db, &hub, n.payload()).await,
                Ok(None) => {
                    let closed = hub.close_all();
                    tracing::warn!(closed, "the LISTEN connection was lost (pushes meanwhile are missed): closed this instance's sockets so their clients reload; reconnecting");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "receiving socket pushes failed; retrying in 1 s");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
}

/// Pushes the socket message a `NOTIFY` names (by its row id) to this instance's sockets.
async fn push_notified(db: &Db, hub: &SocketHub, payload: &str) {
    let Ok(id) = payload.parse::<i64>() else {
        tracing::warn!(
            payload,
            "ignoring a notification that is not a socket push id"
        );
        return;
    };
    match socket_pushes::get(db.pool(), id).await {
        Ok(Some(push)) => {
            let Some(user) = crate::domain::UserId::new(push.user_id) else {
                tracing::warn!(id, "socket push without a user");
                return;
            };
            // In the trace of the change that caused it, whichever instance committed it.
            let span = tracing::info_span!(target: crate::telemetry::SPANS, "ws.push", user_id = %user, sockets = tracing::field::Empty);
            if let Some(trace) = &push.trace {
                trace.continue_in(&span);
            }
            let _entered = span.enter();
            let sent = hub.push_frame(&user, push.frame.into());
            span.record("sockets", sent);
            tracing::debug!(id, user_id = %user, sockets = sent, "pushed sync message");
        }
        Ok(None) => tracing::warn!(id, "socket push already purged: not pushed"),
        Err(e) => {
            tracing::warn!(id, error = %e, "cannot read a socket push: not pushed; closing this instance's sockets so their clients reload");
            hub.close_all();
        }
    }
}
