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
use daojia_store::{EmbeddedStore, StoreError};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot, watch};
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::admin::AdminService;
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
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .trace_fn(|req| tracing::info_span!("grpc", path = %req.uri().path()));
    if let Some(identity) = tls {
        // The crypto provider tonic's TLS needs was chosen above (`install_crypto_provider`).
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(identity))
            .map_err(ServeError::Tls)?;
    }
    let esdb = crate::esdb::Services::new(slot.clone(), local, streams_end.clone());
    let router = builder
        .layer(AuthLayer::new(policy))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(pb::meta_server::MetaServer::new(MetaService::new(
            slot.clone(),
            reads.clone(),
            progress.clone(),
        )))
        .add_service(pb::customer_app_server::CustomerAppServer::new(
            CustomerAppService::new(slot.clone(), config.clock.clone(), OrderTerms::default()),
        ))
        .add_service(pb::worker_app_server::WorkerAppServer::new(
            WorkerAppService::new(
                slot.clone(),
                config.clock.clone(),
                locations.clone(),
                reads.clone(),
                notify.clone(),
            ),
        ))
        .add_service(pb::queries_server::QueriesServer::new(QueriesService::new(
            reads.clone(),
            config.clock.clone(),
            config.query_wait,
        )))
        .add_service(pb::admin_server::AdminServer::new(AdminService::new(
            slot.clone(),
            reads.clone(),
            config.clock.clone(),
            progress.clone(),
        )))
        // The EventStoreDB protocol, for analytics jobs using the official clients.
        .add_service(
            esdb_streams::streams_server::StreamsServer::new(esdb.streams)
                .max_decoding_message_size(crate::esdb::errors::MAX_APPEND_BYTES + (1 << 20)),
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
    let draining = Arc::new(Notify::new());
    let stop = {
        let health = health.clone();
        let draining = draining.clone();
        async move {
            tokio::select! {
                () = shutdown => tracing::info!("shutdown requested, draining"),
                Ok(()) = open_failed_rx => tracing::info!("stopping: the store did not open"),
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
            notify,
            notify_config: config.notifications,
            streams_end: streams_end.clone(),
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
                .add_service(health_only_service)
                .serve_with_incoming_shutdown(TcpIncoming::from(health_listener), async move {
                    let _ = ended.wait_for(|end| *end).await;
                });
            tracing::info!(%addr, "serving health alone in plaintext");
            Some(tokio::spawn(server))
        }
        None => None,
    };

    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
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
    notify: NotifyHubSlot,
    notify_config: NotifyConfig,
    streams_end: watch::Receiver<bool>,
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
        notify,
        notify_config,
        streams_end,
    } = started;
    let started = std::time::Instant::now();
    let task_dir = dir.clone();
    let embedded = store == StoreConfig::Embedded;
    let opened = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&task_dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", task_dir.display()))
        })?;
        // With --store the data directory only holds local state (read-model checkpoints).
        embedded.then(|| EmbeddedStore::open(&task_dir)).transpose()
    })
    .await
    .unwrap_or_else(|e| Err(StoreError::Internal(format!("store open task failed: {e}"))));
    let opened = match (opened, store) {
        (Ok(Some(embedded)), _) => Ok(Store::Embedded(embedded)),
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
                crate::notify_hub::spawn(store.clone(), notify_config, streams_end);
            notify.set(hub);
            background.push(BackgroundTask::NotifyHub(hub_task));
            slot.set(store);
            set_health(&health, ServingStatus::Serving).await;
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
