//! [`run`]: serves every gRPC service on one listener until the shutdown future resolves,
//! then drains in-flight requests and closes the event store.
//!
//! Startup order: the router starts answering at once, with health NOT_SERVING, while the
//! embedded store opens (recovery) on the blocking pool. When it is open: the read models'
//! projector starts (from its last checkpoint under `<data-dir>/projections`, or from position
//! 0), the reactor (credit rules and follow-ups) and the dispatcher (offers) start following
//! `$all`, the notification hub (every `WatchNotifications` stream, one shared reader) starts,
//! and health turns SERVING. If the store cannot be opened the server stops and `run`
//! returns the error.
//!
//! When the embedded log cannot write (see "When the disk fails" in the crate's README),
//! health turns NOT_SERVING at once and the failure is logged once, with its cause. After a
//! full disk the log recovers by itself once space is freed, and health turns SERVING again;
//! after a failure only a restart cures (a failed fsync) the server shuts down as below and
//! `run` returns [`ServeError::LogFailed`], so that the process exits non-zero and its
//! supervisor restarts it.
//!
//! Shutdown: health turns NOT_SERVING, notification streams end, the listener stops
//! accepting, connections get a GOAWAY and in-flight requests finish (up to the configured
//! grace period); then the dispatcher and the reactor stop, the projector writes a last
//! checkpoint and stops, and the store is closed (each of them held a handle to it).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use daojia_domain::OrderTerms;
use daojia_kurrent::KurrentStore;
use daojia_projections::{Projector, ReadModels};
use daojia_store::{EmbeddedStore, LogHealth, StoreError};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot, watch};
use tonic::server::NamedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::admin::AdminService;
use crate::admission::AdmissionLayer;
use crate::catalog::CatalogService;
use crate::clock::Clock;
use crate::config::{Security, ServerConfig, StoreConfig, is_loopback};
use crate::customer_app::CustomerAppService;
use crate::dispatcher::{DispatchConfig, Dispatcher};
use crate::esdb::proto::event_store::client::{
    gossip as esdb_gossip, persistent_subscriptions as esdb_persistent,
    server_features as esdb_features, streams as esdb_streams,
};
use crate::interceptor::{AuthLayer, AuthPolicy};
use crate::locations::LiveLocations;
use crate::meta::MetaService;
use crate::notify_hub::{HubTask, NotifyConfig, NotifyHubSlot};
use crate::pb;
use crate::progress::Progress;
use crate::queries::QueriesService;
use crate::reactor::Reactor;
use crate::read_models::ReadModelsSlot;
use crate::store_backend::Store;
use crate::store_slot::StoreSlot;
use crate::worker_app::WorkerAppService;

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener's address is not loopback but the security mode requires it.
    #[error("refusing to serve on {0}: without TLS the server only listens on a loopback address")]
    NotLoopback(SocketAddr),
    /// The listener's address is unknown.
    #[error("cannot read the listener's address: {0}")]
    Listener(#[source] std::io::Error),
    /// The TLS certificate or key was refused.
    #[error("invalid TLS certificate or key: {0}")]
    Tls(#[source] tonic::transport::Error),
    /// The reflection service could not read the descriptor sets.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The event store could not be opened.
    #[error("cannot open the event store in {dir}: {source}")]
    OpenStore {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        source: StoreError,
    },
    /// The KurrentDB server named by `--store` could not be reached (or refused the client).
    #[error("cannot use the event store at {url}: {source}")]
    ConnectStore {
        /// The `--store` URL, password hidden.
        url: String,
        /// Why.
        source: StoreError,
    },
    /// The transport failed.
    #[error("gRPC transport failed: {0}")]
    Transport(#[source] tonic::transport::Error),
    /// The embedded log hit a write failure that only a restart cures (a failed fsync); the
    /// server drained and stopped.
    #[error("the event log failed and needs a restart: {cause}")]
    LogFailed {
        /// The failure, with the file and operation.
        cause: String,
    },
}

/// Serves daojia on `listener` until `shutdown` resolves, then drains and closes the store.
///
/// Returns an error if the configuration does not fit the listener (a non-loopback address
/// without TLS), if the store cannot be opened, or if the transport fails.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let health_listener = match config.health_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(ServeError::Listener)?,
        ),
        None => None,
    };
    run_with(listener, health_listener, config, shutdown).await
}

/// [`run`] with the health-only listener (`--health-listen`) already bound by the caller, so
/// that tests can bind it to port 0.
pub async fn run_with(
    listener: TcpListener,
    health_listener: Option<TcpListener>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    crate::install_crypto_provider();
    let local = listener.local_addr().map_err(ServeError::Listener)?;
    if config.security.loopback_only() && !is_loopback(local) {
        return Err(ServeError::NotLoopback(local));
    }

    let (health, health_service) = tonic_health::server::health_reporter();
    let health_only_service = health_service.clone();
    set_health(&health, ServingStatus::NotServing).await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let slot = StoreSlot::default();
    let reads = ReadModelsSlot::default();
    let progress = Progress::default();
    let locations = LiveLocations::default();
    let notify = NotifyHubSlot::default();
    // Tells long-lived response streams (worker notifications) to end when draining starts:
    // graceful shutdown waits for every open stream.
    let (end_streams, streams_end) = watch::channel(false);

    let (mode, policy, tls) = match config.security {
        Security::Insecure => ("insecure", AuthPolicy::Insecure, None),
        Security::LoopbackPlaintext { tokens } => {
            ("plaintext, bearer tokens", AuthPolicy::Tokens(tokens), None)
        }
        Security::Tls { tokens, identity } => (
            "TLS, bearer tokens",
            AuthPolicy::Tokens(tokens),
            Some(Identity::from_pem(identity.cert_pem, identity.key_pem)),
        ),
    };
    let transport = config.transport;
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(transport.keepalive_interval))
        .http2_keepalive_timeout(Some(transport.keepalive_timeout))
        .max_concurrent_streams(Some(transport.max_concurrent_streams))
        .trace_fn(|req| tracing::info_span!("grpc", path = %req.uri().path()));
    if let Some(identity) = tls {
        // The crypto provider tonic's TLS needs was chosen above (`install_crypto_provider`).
        // The handshake timeout covers the TLS handshake (src/incoming.rs).
        builder = builder
            .tls_config(
                ServerTlsConfig::new()
                    .identity(identity)
                    .timeout(transport.handshake_timeout),
            )
            .map_err(ServeError::Tls)?;
    }
    let max_message = transport.max_message_bytes;
    let esdb = crate::esdb::Services::new(
        slot.clone(),
        local,
        streams_end.clone(),
        config.esdb_reads.clone(),
        config.appends,
    );
    let router = builder
        .layer(AuthLayer::new(policy).with_end_users(config.end_users))
        .layer(AdmissionLayer::new(transport.admission))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            pb::meta_server::MetaServer::new(MetaService::new(
                slot.clone(),
                reads.clone(),
                progress.clone(),
            ))
            .max_decoding_message_size(max_message),
        )
        .add_service(pb::catalog_server::CatalogServer::new(CatalogService))
        .add_service(
            pb::customer_app_server::CustomerAppServer::new(CustomerAppService::new(
                slot.clone(),
                config.clock.clone(),
                OrderTerms::default(),
                config.limits,
            ))
            .max_decoding_message_size(max_message),
        )
        .add_service(
            pb::worker_app_server::WorkerAppServer::new(WorkerAppService::new(
                slot.clone(),
                config.clock.clone(),
                locations.clone(),
                reads.clone(),
                notify.clone(),
            ))
            .max_decoding_message_size(max_message),
        )
        .add_service(
            pb::queries_server::QueriesServer::new(QueriesService::new(
                slot.clone(),
                reads.clone(),
                config.clock.clone(),
                config.query_wait,
            ))
            .max_decoding_message_size(max_message),
        )
        .add_service(
            pb::admin_server::AdminServer::new(AdminService::new(
                slot.clone(),
                reads.clone(),
                config.clock.clone(),
                progress.clone(),
                config.limits,
            ))
            .max_decoding_message_size(max_message),
        )
        // The EventStoreDB protocol, for analytics jobs using the official clients.
        .add_service(
            esdb_streams::streams_server::StreamsServer::new(esdb.streams)
                .max_decoding_message_size(
                    max_message.max(crate::esdb::errors::MAX_APPEND_BYTES + (1 << 20)),
                ),
        )
        .add_service(
            esdb_features::server_features_server::ServerFeaturesServer::new(esdb.features),
        )
        .add_service(esdb_gossip::gossip_server::GossipServer::new(esdb.gossip))
        .add_service(
            esdb_persistent::persistent_subscriptions_server::PersistentSubscriptionsServer::new(
                esdb.persistent,
            ),
        );

    // Shutdown plumbing: `stop` resolves on the caller's signal or when the store fails to
    // open; `draining` tells the grace timer that draining has begun.
    let (open_failed_tx, open_failed_rx) = oneshot::channel::<()>();
    // Set (once) by the log-health follower when the log fails for good.
    let (log_failed_tx, log_failed) = watch::channel::<Option<String>>(None);
    let draining = Arc::new(Notify::new());
    let stop = {
        let health = health.clone();
        let draining = draining.clone();
        let log_failed = log_failed.clone();
        async move {
            tokio::select! {
                () = shutdown => tracing::info!("shutdown requested, draining"),
                Ok(()) = open_failed_rx => tracing::info!("stopping: the store did not open"),
                () = failure_of(log_failed) => tracing::error!(
                    "stopping: the event log failed; exiting so that a supervisor restarts the server"
                ),
            }
            set_health(&health, ServingStatus::NotServing).await;
            let _ = end_streams.send(true);
            draining.notify_one();
        }
    };

    let background = Background::default();
    let opening = tokio::spawn(open_store(
        config.data_dir.clone(),
        config.store.clone(),
        Started {
            slot: slot.clone(),
            reads: reads.clone(),
            background: background.clone(),
            progress: progress.clone(),
            locations,
            clock: config.clock.clone(),
            dispatch: config.dispatch,
            reactor: config.reactor,
            draining: streams_end.clone(),
            log_failed: log_failed_tx,
            subscribers: config.subscribers,
            notify,
            notify_config: config.notifications,
        },
        health.clone(),
        open_failed_tx,
    ));
    tracing::info!(addr = %local, mode, data_dir = %config.data_dir.display(), "listening");

    // Health alone, in plaintext and without authentication, for probes that cannot speak
    // TLS; it stops when draining starts (health has turned NOT_SERVING by then).
    let health_only = match health_listener {
        Some(health_listener) => {
            let addr = health_listener.local_addr().map_err(ServeError::Listener)?;
            let mut ended = streams_end.clone();
            let server = Server::builder()
                .max_concurrent_streams(Some(transport.max_concurrent_streams))
                .add_service(health_only_service)
                .serve_with_incoming_shutdown(
                    crate::incoming::incoming(health_listener, &transport),
                    async move {
                        let _ = ended.wait_for(|end| *end).await;
                    },
                );
            tracing::info!(%addr, "serving health alone in plaintext");
            Some(tokio::spawn(server))
        }
        None => None,
    };

    // Connection cap, handshake and idle timeouts, accept errors backing off.
    let incoming = crate::incoming::incoming(listener, &transport);
    let serve = Box::pin(router.serve_with_incoming_shutdown(incoming, stop));
    let grace = config.shutdown_grace;
    let served = tokio::select! {
        r = serve => r.map_err(ServeError::Transport),
        () = async { draining.notified().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "requests still running after the grace period; closing their connections");
            Ok(())
        }
    };

    // The store task owns the data dir until it has finished opening (the blocking open
    // cannot be cancelled), so wait for it either way.
    let opened = match opening.await {
        Ok(r) => r,
        Err(e) => Err(StoreError::Internal(format!("store open task failed: {e}"))),
    };
    background.stop().await;
    if !reads.stop().await {
        tracing::warn!("connections past the grace period still hold the read models");
    }
    close_store(slot).await;
    if let Some(task) = health_only {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the health-only listener failed"),
            Err(e) => tracing::warn!(error = %e, "the health-only listener's task failed"),
        }
    }
    served?;
    if let Some(cause) = log_failed.borrow().clone() {
        return Err(ServeError::LogFailed { cause });
    }
    opened.map_err(|source| match &config.store {
        StoreConfig::Embedded => ServeError::OpenStore {
            dir: config.data_dir,
            source,
        },
        StoreConfig::Kurrent { url, .. } => ServeError::ConnectStore {
            url: daojia_kurrent::redacted(url),
            source,
        },
    })?;
    tracing::info!("stopped");
    Ok(())
}

async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    for service in [
        <pb::meta_server::MetaServer<MetaService> as NamedService>::NAME,
        <pb::catalog_server::CatalogServer<CatalogService> as NamedService>::NAME,
        <pb::customer_app_server::CustomerAppServer<CustomerAppService> as NamedService>::NAME,
        <pb::worker_app_server::WorkerAppServer<WorkerAppService> as NamedService>::NAME,
        <pb::queries_server::QueriesServer<QueriesService> as NamedService>::NAME,
        <pb::admin_server::AdminServer<AdminService> as NamedService>::NAME,
    ] {
        health.set_service_status(service, status).await;
    }
}

/// The tasks that work on the store once it is open, each holding a handle to it.
#[derive(Clone, Debug, Default)]
struct Background(Arc<std::sync::Mutex<Vec<BackgroundTask>>>);

#[derive(Debug)]
enum BackgroundTask {
    Reactor(Reactor),
    Dispatcher(Dispatcher),
    NotifyHub(HubTask),
}

impl Background {
    fn push(&self, task: BackgroundTask) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(task);
    }

    /// Stops every task (the dispatcher first: its offers are reacted to by nobody, but the
    /// reactor should see everything the dispatcher appended).
    async fn stop(&self) {
        let tasks = std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in tasks.into_iter().rev() {
            match task {
                BackgroundTask::Reactor(r) => r.stop().await,
                BackgroundTask::Dispatcher(d) => d.stop().await,
                BackgroundTask::NotifyHub(h) => h.stop().await,
            }
        }
    }
}

/// Where `open_store` puts what it starts.
struct Started {
    slot: StoreSlot,
    reads: ReadModelsSlot,
    background: Background,
    progress: Progress,
    locations: LiveLocations,
    clock: Clock,
    dispatch: Option<DispatchConfig>,
    reactor: bool,
    /// Turns true when draining starts.
    draining: watch::Receiver<bool>,
    /// Where the log-health follower reports a failure that needs a restart.
    log_failed: watch::Sender<Option<String>>,
    subscribers: crate::config::SubscriberBudgets,
    notify: NotifyHubSlot,
    notify_config: NotifyConfig,
}

/// Opens the store on the blocking pool, fills the slot and starts the read models' projector
/// (it replays `$all` from position 0; queries wait for it through `min_position`), the
/// reactor (credit rules and follow-ups) and, if configured, the dispatcher; health turns
/// SERVING.
async fn open_store(
    dir: PathBuf,
    store: StoreConfig,
    started: Started,
    health: HealthReporter,
    failed: oneshot::Sender<()>,
) -> Result<(), StoreError> {
    let Started {
        slot,
        reads,
        background,
        progress,
        locations,
        clock,
        dispatch,
        reactor,
        draining,
        log_failed,
        subscribers,
        notify,
        notify_config,
    } = started;
    let started = std::time::Instant::now();
    let task_dir = dir.clone();
    let embedded = store == StoreConfig::Embedded;
    let opened = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&task_dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", task_dir.display()))
        })?;
        // With --store the data directory only holds local state (read-model checkpoints).
        embedded
            .then(|| {
                EmbeddedStore::open_with_budgets(
                    &task_dir,
                    subscribers.per_subscriber,
                    subscribers.total,
                )
            })
            .transpose()
    })
    .await
    .unwrap_or_else(|e| Err(StoreError::Internal(format!("store open task failed: {e}"))));
    let opened = match (opened, store) {
        (Ok(Some(embedded)), _) => {
            log_recovery(embedded.log().recovery());
            Ok(Store::Embedded(embedded))
        }
        (
            Ok(None),
            StoreConfig::Kurrent {
                url,
                connect_timeout,
            },
        ) => connect_kurrent(&url, connect_timeout)
            .await
            .map(Store::Kurrent),
        (Ok(None), StoreConfig::Embedded) => Err(StoreError::Internal(
            "the embedded store was not opened".into(),
        )),
        (Err(e), _) => Err(e),
    };
    match opened {
        Ok(store) => {
            let source = Arc::new(store.clone());
            let projections = dir.join("projections");
            let kpis = crate::read_models::kpis_view(&projections);
            reads.set(Projector::spawn_with(
                source,
                move || ReadModels::new(kpis.clone()),
                daojia_projections::CheckpointConfig::new(projections),
            ));
            if reactor {
                let reactor = Reactor::spawn(store.clone(), clock.clone());
                let _ = progress.reactor.set(reactor.progress());
                background.push(BackgroundTask::Reactor(reactor));
            }
            if let Some(config) = dispatch {
                let dispatcher = Dispatcher::spawn(store.clone(), clock, config, locations);
                let _ = progress.dispatcher.set(dispatcher.progress());
                background.push(BackgroundTask::Dispatcher(dispatcher));
            }
            // Worker notification streams: one shared reader of `$all` for the process.
            let (hub, hub_task) =
                crate::notify_hub::spawn(store.clone(), notify_config, draining.clone());
            notify.set(hub);
            background.push(BackgroundTask::NotifyHub(hub_task));
            let log_health = match &store {
                Store::Embedded(embedded) => Some(embedded.health()),
                Store::Kurrent(_) => None,
            };
            slot.set(store);
            set_health(&health, ServingStatus::Serving).await;
            if let Some(log_health) = log_health {
                tokio::spawn(follow_log_health(log_health, health, draining, log_failed));
            }
            tracing::info!(dir = %dir.display(), elapsed = ?started.elapsed(), "event store open, serving");
            Ok(())
        }
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot open the event store");
            let _ = failed.send(());
            Err(e)
        }
    }
}

/// Resolves once the log-health follower has reported a failure that needs a restart (never,
/// if it stops without one).
async fn failure_of(mut log_failed: watch::Receiver<Option<String>>) {
    if log_failed.wait_for(Option::is_some).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Keeps health in step with the embedded log's: NOT_SERVING as soon as the log stops taking
/// appends, SERVING again when it has recovered from a full disk by itself; logs each change
/// once, with its cause. A failure that needs a restart goes to `log_failed`, which stops the
/// server. Ends when draining starts (health stays NOT_SERVING then) or the log closes.
async fn follow_log_health(
    mut log: watch::Receiver<LogHealth>,
    health: HealthReporter,
    mut draining: watch::Receiver<bool>,
    log_failed: watch::Sender<Option<String>>,
) {
    let mut serving = true;
    loop {
        let now = log.borrow_and_update().clone();
        if *draining.borrow() {
            return;
        }
        match now {
            LogHealth::Healthy => {
                if !serving {
                    serving = true;
                    set_health(&health, ServingStatus::Serving).await;
                    tracing::info!("the event log recovered (disk space was freed): serving");
                }
            }
            LogHealth::Recovering { cause } => {
                if serving {
                    serving = false;
                    set_health(&health, ServingStatus::NotServing).await;
                    tracing::error!(
                        %cause,
                        "the event log cannot write (disk full): NOT_SERVING, writes fail with \
                         UNAVAILABLE until disk space is freed, then it recovers by itself"
                    );
                }
            }
            LogHealth::Failed { cause } => {
                set_health(&health, ServingStatus::NotServing).await;
                tracing::error!(
                    %cause,
                    "the event log failed (an fsync or write error that only a restart cures): \
                     NOT_SERVING, stopping"
                );
                log_failed.send_replace(Some(cause));
                return;
            }
            _ => {
                if serving {
                    serving = false;
                    set_health(&health, ServingStatus::NotServing).await;
                    tracing::error!(health = ?now, "the event log is not healthy: NOT_SERVING");
                }
            }
        }
        tokio::select! {
            changed = log.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = draining.wait_for(|d| *d) => return,
        }
    }
}

/// Connects to the KurrentDB server at `url`, trying again (every half second) while it is
/// unreachable, for at most `timeout`; says on each failed attempt what it is waiting for. A
/// malformed URL fails at once.
async fn connect_kurrent(url: &str, timeout: Duration) -> Result<KurrentStore, StoreError> {
    let shown = daojia_kurrent::redacted(url);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let error = match tokio::time::timeout(left, KurrentStore::connect(url)).await {
            Ok(Ok(store)) => {
                tracing::info!(store = %shown, attempts, "connected to the event store");
                return Ok(store);
            }
            Ok(Err(e @ StoreError::InvalidArgument(_))) => return Err(e),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer from {shown}"),
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(StoreError::Unavailable(format!(
                "gave up waiting for the KurrentDB server after {attempts} attempts in \
                 {timeout:?} (--store-connect-timeout): {error}"
            )));
        }
        tracing::warn!(store = %shown, %error, attempts, ?left, "waiting for the event store (--store) to answer");
        tokio::time::sleep(RETRY_CONNECT.min(left)).await;
    }
}

/// Pause between attempts to reach a `--store` server.
const RETRY_CONNECT: Duration = Duration::from_millis(500);

/// Closes the store (its writer thread stops after the queued appends and it writes its index
/// snapshot) once no service holds it any more.
async fn close_store(slot: StoreSlot) {
    match slot.into_store() {
        Ok(Some(store)) => {
            // Dropping the last handle joins the writer thread: do it on the blocking pool.
            let closed = tokio::task::spawn_blocking(move || drop(store)).await;
            match closed {
                Ok(()) => tracing::info!("event store closed"),
                Err(e) => tracing::error!(error = %e, "closing the event store failed"),
            }
        }
        Ok(None) => {}
        Err(_still_shared) => tracing::warn!(
            "connections past the grace period still hold the event store; it closes when \
             they end"
        ),
    }
}

/// Logs what opening the embedded log did: a torn tail cut from the last segment is a warning
/// (those bytes were never acknowledged, but an operator should know).
fn log_recovery(report: &daojia_store::eventlog::RecoveryReport) {
    if let Some(torn) = &report.torn_tail {
        tracing::warn!(
            file = %torn.file,
            offset = torn.offset,
            bytes = torn.bytes,
            damage_offset = torn.damage_offset,
            reason = %torn.reason,
            durable_end = report.durable_end,
            "event log: cut a torn tail past the proven-durable end (never acknowledged)"
        );
    }
}

#[cfg(test)]
mod tests {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus as Status;
    use tonic_health::pb::health_server::Health;

    use super::*;

    async fn status(service: &tonic_health::server::HealthService, name: &str) -> i32 {
        service
            .check(tonic::Request::new(HealthCheckRequest {
                service: name.into(),
            }))
            .await
            .unwrap()
            .into_inner()
            .status
    }

    /// Waits until the reporter says `want` for `""` and every daojia service.
    async fn until(service: &tonic_health::server::HealthService, want: Status) {
        let names = [
            "",
            <pb::customer_app_server::CustomerAppServer<CustomerAppService> as NamedService>::NAME,
            <pb::admin_server::AdminServer<AdminService> as NamedService>::NAME,
        ];
        let mut watch = service
            .watch(tonic::Request::new(HealthCheckRequest {
                service: String::new(),
            }))
            .await
            .unwrap()
            .into_inner();
        use tokio_stream::StreamExt;
        loop {
            let mut all = true;
            for name in names {
                all &= status(service, name).await == want as i32;
            }
            if all {
                return;
            }
            watch.next().await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn health_follows_the_log_and_a_failed_log_is_reported_once() {
        let reporter = HealthReporter::new();
        let service = tonic_health::server::HealthService::from_health_reporter(reporter.clone());
        set_health(&reporter, ServingStatus::Serving).await;
        let (log_tx, log_rx) = watch::channel(LogHealth::Healthy);
        let (_draining_tx, draining) = watch::channel(false);
        let (failed_tx, mut failed) = watch::channel(None);
        let follower = tokio::spawn(follow_log_health(log_rx, reporter, draining, failed_tx));

        log_tx.send_replace(LogHealth::Recovering {
            cause: "write: No space left on device".into(),
        });
        until(&service, Status::NotServing).await;
        log_tx.send_replace(LogHealth::Healthy);
        until(&service, Status::Serving).await;
        assert!(failed.borrow().is_none());

        log_tx.send_replace(LogHealth::Failed {
            cause: "fdatasync: Input/output error".into(),
        });
        let cause = failed.wait_for(Option::is_some).await.unwrap().clone();
        assert_eq!(cause.as_deref(), Some("fdatasync: Input/output error"));
        until(&service, Status::NotServing).await;
        follower.await.unwrap();
        assert_eq!(status(&service, "").await, Status::NotServing as i32);
    }
}
