//! `taskhost serve`: wires the parts together ([`App::build`]), runs until SIGTERM/SIGINT
//! ([`App::run`]), then shuts down in order (stop accepting, let in-flight work finish within
//! the grace period, stop the relay and scheduler). Building and running are separate so that
//! tests can run the whole host in their own process (e.g. to see its spans).

use crate::api::{self, AppState, auth::JwtKeys};
use crate::config::ServeArgs;
use crate::dapr::sink::DaprSink;
use crate::dapr::{DaprEdge, DaprState, DeliveryMode};
use crate::delivery::{InProcessSink, OutboxSink, Relay, Scheduler};
use crate::effects::EffectsConfig;
use crate::pipeline::{Pipeline, Wakers};
use crate::runtime::{Registry, Runtime};
use crate::sockets::{SocketFanout, SocketHub};
use crate::storage::{Backend, Db, redact};
use anyhow::Context;
use axum::serve::ListenerExt;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// `taskhost serve`: builds the host, binds, serves until a signal.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let app = App::build(&args).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "binding {} (is another process using it? set TASKHOST_LISTEN)",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    println!("taskhost listening on http://{addr}");
    std::io::stdout().flush().ok();
    app.run(listener, wait_for_signal()).await
}

/// The host, built and with its background work (relay, scheduler, watchers) running, not yet
/// serving HTTP.
pub struct App {
    router: axum::Router,
    db: Db,
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
    background: Vec<JoinHandle<()>>,
    grace: Duration,
}

impl App {
    /// Checks `args`, opens the database, loads the components and starts the background work.
    pub async fn build(args: &ServeArgs) -> anyhow::Result<App> {
        build(args).await
    }

    /// Serves HTTP on `listener` until `stop` completes, then shuts down in order.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = listener.local_addr()?;
        // daprd delivers one message at a time per partition: Nagle + delayed ACK would cap it
        // at ~25 deliveries/s. Answer without delay.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        self.ready.store(true, Ordering::Release);
        tracing::info!(%addr, "ready");

        let cancel = self.shutdown.clone();
        let server = axum::serve(listener, self.router).with_graceful_shutdown(async move {
            stop.await;
            tracing::info!("shutting down: no new requests; finishing in-flight work");
            cancel.cancel();
        });
        server.await.context("HTTP server failed")?;
        self.ready.store(false, Ordering::Release);
        // However the server ended, the background work stops now.
        self.shutdown.cancel();

        let grace = self.grace;
        if tokio::time::timeout(grace, async {
            for task in self.background {
                let _ = task.await;
            }
        })
        .await
        .is_err()
        {
            tracing::warn!(
                ?grace,
                "background work did not finish within the grace period"
            );
        }
        self.db.pool().close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

async fn build(args: &ServeArgs) -> anyhow::Result<App> {
    args.validate()?;
    let ready = Arc::new(AtomicBool::new(false));
    crate::metrics::install();

    let db = Db::connect(&args.database_url, args.db_max_connections)
        .await
        .with_context(|| format!("opening the database {}", redact(&args.database_url)))?;
    tracing::info!(database = %redact(&args.database_url), backend = ?db.backend(), "database ready");

    let runtime =
        Runtime::new(args.components.runtime_config()?).context("starting the wasm runtime")?;
    let dir = args.components.checked_dir()?;
    let registry = Arc::new(
        tokio::task::block_in_place(|| Registry::load_dir(&runtime, dir))
            .with_context(|| format!("loading components from {}", dir.display()))?
            .with_policy(args.swap.policy()?),
    );

    let hub = Arc::new(SocketHub::default());
    let wakers = Wakers::default();
    let shutdown = CancellationToken::new();
    let dapr = match args.dapr.delivery {
        DeliveryMode::Embedded => None,
        DeliveryMode::Dapr => Some(Arc::new(DaprEdge::new(args.dapr.clone())?)),
    };
    // How socket pushes reach every instance (sockets/fanout.rs).
    let sockets = match (&dapr, db.backend()) {
        (Some(_), _) if args.dapr.dapr_socket_fanout => SocketFanout::Dapr,
        (Some(_), _) | (None, Backend::Sqlite) => SocketFanout::Local,
        (None, Backend::Postgres) => SocketFanout::Postgres,
    };
    tracing::info!(?sockets, "socket pushes fan out");
    let pipeline = Pipeline::new(
        runtime,
        registry.clone(),
        db.clone(),
        hub.clone(),
        wakers.clone(),
        EffectsConfig {
            dapr_jobs: dapr.is_some(),
            notification_binding: args
                .dapr
                .notification_binding
                .clone()
                .filter(|_| dapr.is_some()),
            sockets,
        },
    );

    // Embedded: the relay calls the components and the scheduler fires reminder jobs.
    // Dapr: the relay publishes through the sidecar, which delivers back to /dapr/events and
    // fires jobs through its scheduler.
    let policy = args.retry_policy()?;
    let sink: Arc<dyn OutboxSink> = match &dapr {
        None => Arc::new(InProcessSink::new(pipeline.clone())),
        Some(edge) => Arc::new(DaprSink::new(
            edge.sidecar.clone(),
            edge.args.dapr_pubsub.clone(),
            pipeline.dead_letters().clone(),
        )),
    };
    let relay = Relay::new(db.clone(), sink, wakers.relay.clone(), policy);
    let mut background = vec![tokio::spawn(relay.run(shutdown.child_token()))];
    if sockets == SocketFanout::Postgres {
        background.push(
            crate::sockets::listener::spawn(
                &args.database_url,
                db.clone(),
                hub.clone(),
                shutdown.child_token(),
            )
            .await
            .context("listening for socket pushes (PostgreSQL LISTEN)")?,
        );
    }
    // Hot swap: automatic rollback of failing new versions, and the watched directory.
    background.push(tokio::spawn(crate::runtime::guard::guard(
        registry.clone(),
        shutdown.child_token(),
    )));
    // Canaries: their own automatic rollback, apart from the serving versions'.
    background.push(tokio::spawn(crate::rollout::guard::guard(
        pipeline.rollouts().clone(),
        shutdown.child_token(),
    )));
    if args.swap.watch_components {
        background.push(
            crate::watch::spawn(
                registry.clone(),
                dir,
                Duration::from_millis(args.swap.watch_debounce_ms),
                shutdown.child_token(),
            )
            .with_context(|| {
                format!(
                    "watching the components directory {} (set TASKHOST_WATCH_COMPONENTS=false to run without)",
                    dir.display()
                )
            })?,
        );
    }
    background.push(tokio::spawn(crate::storage::retention::run(
        db.clone(),
        args.retention.policy()?,
        shutdown.child_token(),
    )));
    background.push(tokio::spawn(crate::storage::gauges::sample_forever(
        db.clone(),
        shutdown.child_token(),
    )));
    background.push(tokio::spawn(crate::storage::checkpoint::run(
        db.clone(),
        shutdown.child_token(),
    )));
    match &dapr {
        None => {
            let scheduler =
                Scheduler::new(db.clone(), wakers.scheduler.clone(), wakers.relay.clone());
            background.push(tokio::spawn(scheduler.run(shutdown.child_token())));
        }
        Some(edge) => {
            tracing::info!(sidecar = %edge.sidecar.endpoint(), pubsub = %edge.args.dapr_pubsub, "delivering through Dapr");
            background.push(tokio::spawn(
                edge.clone().watch_sidecar(shutdown.child_token()),
            ));
        }
    }

    let callbacks = crate::dapr::routes(DaprState {
        edge: dapr.clone(),
        pipeline: pipeline.clone(),
        registry: registry.clone(),
        hub: hub.clone(),
        db: db.clone(),
        wakers: wakers.clone(),
    });
    let state = AppState {
        db: db.clone(),
        keys: Arc::new(JwtKeys::from_secret(&args.auth.secret()?)?),
        hub,
        wakers,
        registry,
        ready: ready.clone(),
        admin_token: args.admin_token.as_deref().map(Arc::from),
        pipeline,
        sidecar_ready: dapr.as_ref().map(|edge| edge.readiness()),
    };
    Ok(App {
        router: api::router(state, callbacks),
        db,
        ready,
        shutdown,
        background,
        grace: Duration::from_millis(args.shutdown_grace_ms),
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
