//! A daojia server started in-process on port 0 for one test, and `kurrentdb` clients for it.
//!
//! The server also gets a plaintext health-only listener (port 0 too): the harness watches it
//! until the server reports SERVING, so no test sleeps or polls to wait for startup, and the
//! same wait works for the TLS server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use daojia_server::{Cli, Command, ServeError};
use kurrentdb::{Client, ClientSettings, EventData};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "daojia-kurrentdb-client-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Tokens of the TLS server, in the `DAOJIA_TOKENS` format (`ROLE:TOKEN:ACTOR`).
pub const TOKENS: &str = "admin:admin-token-0123456789:root,\
                          analytics:analytics-token-0123456789:reporter";

/// A running server; shut down when dropped.
pub struct Server {
    pub addr: SocketAddr,
    /// The CA (here: the self-signed certificate itself) of a TLS server.
    pub ca_file: Option<PathBuf>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    // Dropped last: the store's files live here.
    _dir: TempDir,
}

impl Server {
    /// `daojia serve --insecure`: plaintext, every caller is an admin.
    pub async fn insecure() -> Server {
        Server::start(TempDir::new(), &["--insecure"], None, None).await
    }

    /// `daojia serve --tls-cert --tls-key` with [`TOKENS`]: a self-signed certificate for
    /// `localhost` and 127.0.0.1.
    pub async fn tls() -> Server {
        let dir = TempDir::new();
        let cert = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .unwrap();
        let cert_file = dir.path().join("cert.pem");
        let key_file = dir.path().join("key.pem");
        std::fs::write(&cert_file, cert.cert.pem()).unwrap();
        std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
        let (cert_arg, key_arg) = (
            cert_file.to_str().unwrap().to_string(),
            key_file.to_str().unwrap().to_string(),
        );
        let args = ["--tls-cert", &cert_arg, "--tls-key", &key_arg];
        Server::start(dir, &args, Some(TOKENS), Some(cert_file)).await
    }

    async fn start(
        dir: TempDir,
        args: &[&str],
        tokens: Option<&str>,
        ca_file: Option<PathBuf>,
    ) -> Server {
        let data = dir.path().join("data");
        let argv = [
            "daojia",
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]
        .into_iter()
        .chain(args.iter().copied());
        let Command::Serve(serve) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not serve")
        };
        let mut config = serve.resolve(tokens).unwrap();
        // Only what the tests append is in the log: no dispatcher offers, no reactions.
        config.dispatch = None;
        config.reactor = false;

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let health = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let health_addr = health.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(daojia_server::run_with(
            listener,
            Some(health),
            config,
            async {
                let _ = stop.await;
            },
        ));

        let channel = tonic::transport::Endpoint::from_shared(format!("http://{health_addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut updates = HealthClient::new(channel)
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        loop {
            let update = updates.next().await.expect("health stream ended").unwrap();
            if update.status == ServingStatus::Serving as i32 {
                break;
            }
        }
        Server {
            addr,
            ca_file,
            shutdown: Some(shutdown),
            task: Some(task),
            _dir: dir,
        }
    }

    /// The connection string of this server with extra `query` parameters (`&`-joined).
    pub fn connection_string(&self, credentials: Option<&str>, query: &str) -> String {
        let user = credentials.map(|c| format!("{c}@")).unwrap_or_default();
        let tls = match &self.ca_file {
            None => "tls=false".to_string(),
            Some(ca) => format!("tls=true&tlsCaFile={}", ca.display()),
        };
        let extra = if query.is_empty() {
            String::new()
        } else {
            format!("&{query}")
        };
        // The client waits `discoveryInterval` (500 ms by default) before its first connection
        // even to a single node; 1 ms keeps the tests fast.
        format!(
            "kurrentdb://{user}{}?{tls}&discoveryInterval=1{extra}",
            self.addr
        )
    }

    /// A client of an insecure server.
    pub fn client(&self) -> Client {
        client(&self.connection_string(None, ""))
    }

    /// Stops the server and returns how `run` ended.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A client for a connection string.
pub fn client(connection_string: &str) -> Client {
    let settings: ClientSettings = connection_string.parse().unwrap();
    Client::new(settings).unwrap()
}

/// A JSON event of type `event_type` with `{"n": n}` as data and a fresh id.
pub fn event(event_type: &str, n: u64) -> EventData {
    EventData::json(event_type, &serde_json::json!({ "n": n }))
        .unwrap()
        .id(uuid::Uuid::new_v4())
}

/// The `n` of an event written by [`event`].
pub fn n_of(event: &kurrentdb::RecordedEvent) -> u64 {
    event.as_json::<serde_json::Value>().unwrap()["n"]
        .as_u64()
        .unwrap()
}

/// Every event of a read, in order.
pub async fn collect(
    mut read: kurrentdb::ReadStream,
) -> kurrentdb::Result<Vec<kurrentdb::RecordedEvent>> {
    let mut out = Vec::new();
    while let Some(resolved) = read.next().await? {
        assert!(resolved.link.is_none(), "no link events were written");
        out.push(resolved.event.expect("an event"));
    }
    Ok(out)
}
