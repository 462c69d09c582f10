//! Starting the real server in-process on port 0 and waiting until it serves, shared by the
//! modules that drive it through gRPC clients.
//!
//! With `DAOJIA_TEST_STORE=kurrentdb` in the environment every server started here keeps its
//! events on a second daojia server over the EventStoreDB protocol (`--store
//! kurrentdb://127.0.0.1:PORT?tls=false`), as it would on a KurrentDB cluster. That backing
//! server keeps its embedded store in the test's data directory, so tests that seed or inspect
//! `<dir>/data` with `EmbeddedStore` work unchanged; it stops after the front server has stopped
//! (and a restarted front server gets a new one on the same directory, so the events survive).
//! The front server's own local state goes to `<dir>/data-front` ([`local_dir`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use daojia_server::config::StoreConfig;
use daojia_server::{Cli, Clock, Command, ServeError, ServerConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A server started by [`start`].
pub(crate) struct Started {
    pub(crate) channel: Channel,
    pub(crate) addr: SocketAddr,
    pub(crate) shutdown: oneshot::Sender<()>,
    pub(crate) task: JoinHandle<Result<(), ServeError>>,
}

/// Binds `config.listen`, runs the server until the returned sender fires, connects a channel
/// and waits (through the health Watch stream, no sleeps) until `service` is SERVING (`""`:
/// the server as a whole).
pub(crate) async fn start(mut config: ServerConfig, service: &str) -> Started {
    let backing = if kurrent_mode() {
        let backing = BackingStore::start(&config.data_dir).await;
        config.store = StoreConfig::Kurrent {
            url: format!("kurrentdb://{}?tls=false", backing.addr),
            connect_timeout: Duration::from_secs(10),
        };
        config.data_dir = local_dir(&config.data_dir);
        Some(backing)
    } else {
        None
    };
    let started = start_server(config, service).await;
    match backing {
        None => started,
        Some(backing) => {
            let front = started.task;
            let task = tokio::spawn(async move {
                let result = front.await.unwrap();
                backing.stop().await;
                result
            });
            Started { task, ..started }
        }
    }
}

/// Whether `DAOJIA_TEST_STORE` asks for the KurrentDB backend (`kurrentdb`) rather than the
/// embedded one (unset, empty or `embedded`).
pub(crate) fn kurrent_mode() -> bool {
    match std::env::var("DAOJIA_TEST_STORE").as_deref() {
        Err(_) | Ok("" | "embedded") => false,
        Ok("kurrentdb") => true,
        Ok(other) => panic!("DAOJIA_TEST_STORE={other:?}: expected kurrentdb or embedded"),
    }
}

/// Where a server started by [`start`] on `data_dir` keeps its local state (read-model
/// checkpoints): `data_dir` itself, or beside it with the KurrentDB backend.
pub(crate) fn local_dir(data_dir: &Path) -> PathBuf {
    if kurrent_mode() {
        let mut name = data_dir.file_name().unwrap_or_default().to_os_string();
        name.push("-front");
        data_dir.with_file_name(name)
    } else {
        data_dir.to_path_buf()
    }
}

/// A daojia server (`--insecure`, port 0, no dispatcher, no reactor) serving the events of
/// `data_dir` over the EventStoreDB protocol to a front server.
struct BackingStore {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl BackingStore {
    async fn start(data_dir: &Path) -> BackingStore {
        let argv = [
            "daojia",
            "serve",
            "--insecure",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--shutdown-grace",
            "5",
        ];
        let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not serve")
        };
        let mut config = args.resolve(None).unwrap();
        config.dispatch = None;
        config.reactor = false;
        let Started {
            addr,
            shutdown,
            task,
            ..
        } = start_server(config, "").await;
        BackingStore {
            addr,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// [`start`] without the backend choice.
async fn start_server(config: ServerConfig, service: &str) -> Started {
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, rx) = oneshot::channel();
    let task = tokio::spawn(daojia_server::run(listener, config, async {
        let _ = rx.await;
    }));
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut updates = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(update) = updates.next().await {
        if update.unwrap().status == ServingStatus::Serving as i32 {
            break;
        }
    }
    Started {
        channel,
        addr,
        shutdown,
        task,
    }
}

/// `daojia serve` on port 0 as a test wants it: the data directory, the token table (the
/// `DAOJIA_TOKENS` format), the clock, which background tasks run, extra command-line options,
/// and the service whose SERVING status [`start`] waits for.
pub(crate) struct Serve<'a> {
    pub(crate) datadir: &'a Path,
    pub(crate) tokens: &'a str,
    pub(crate) clock: Clock,
    /// Run the dispatcher (tests that make offers by hand turn it off).
    pub(crate) dispatch: bool,
    /// Run the reactor (tests that check that nothing at all was appended turn it off).
    pub(crate) reactor: bool,
    pub(crate) args: &'a [&'a str],
    pub(crate) service: &'a str,
}

impl Serve<'_> {
    /// Resolves the configuration as `daojia serve` would and starts the server.
    pub(crate) async fn start(self) -> Started {
        let datadir = self.datadir.to_str().unwrap();
        let argv = [
            "daojia",
            "serve",
            "--data-dir",
            datadir,
            "--listen",
            "127.0.0.1:0",
        ]
        .into_iter()
        .chain(self.args.iter().copied());
        let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not serve")
        };
        let mut config = args.resolve(Some(self.tokens)).unwrap();
        if !self.dispatch {
            config.dispatch = None;
        }
        config.reactor = self.reactor;
        config.clock = self.clock;
        start(config, self.service).await
    }
}

/// Runs `daojia admin` with `args` (what follows `admin`) against the server at `addr` with
/// `token`, and returns what it printed.
pub(crate) async fn admin_cli(
    addr: SocketAddr,
    token: &str,
    args: &[&str],
) -> Result<String, daojia_server::admin_cli::CliError> {
    let server = format!("http://{addr}");
    let argv = ["daojia", "admin", "--server", &server]
        .into_iter()
        .chain(args.iter().copied());
    let Command::Admin(parsed) = Cli::try_parse_from(argv).unwrap().command else {
        panic!("not admin")
    };
    let mut out = Vec::new();
    daojia_server::admin_cli::run(parsed, Some(token.into()), &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
}

/// `message` with `authorization: Bearer <token>`.
pub(crate) fn as_<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_run_on_the_backend_the_environment_asks_for() {
    let dir = crate::store::tempdir();
    crate::lifecycle::seed(&dir).await;
    let datadir = dir.path().join("data");
    let started = Serve {
        datadir: &datadir,
        tokens: "ops:ops-token-0123456789",
        clock: Clock::system(),
        dispatch: false,
        reactor: false,
        args: &[],
        service: "",
    }
    .start()
    .await;
    let _ = started.shutdown.send(());
    started.task.await.unwrap().unwrap();
    // The events are in `<dir>/data` either way (the backing server's embedded store with
    // DAOJIA_TEST_STORE=kurrentdb, closed by now), and the front server made its local
    // directory, which is only `<dir>/data` itself on the embedded store.
    let store = daojia_store::EmbeddedStore::open(&datadir).unwrap();
    assert!(store.log().head().0 > 0);
    let local = local_dir(&datadir);
    assert!(local.is_dir(), "{local:?}");
    assert_eq!(local != datadir, kurrent_mode());
}
