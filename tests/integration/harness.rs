//! Starting the real server in-process on port 0 and waiting until it serves, shared by the
//! modules that drive it through gRPC clients.

use std::net::SocketAddr;
use std::path::Path;

use clap::Parser;
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
pub(crate) async fn start(config: ServerConfig, service: &str) -> Started {
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
