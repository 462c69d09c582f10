//! The `daojia` server in-process on 127.0.0.1:0 with real tonic clients: health, reflection,
//! bearer-token authentication, insecure mode, TLS, configuration refusals and shutdown.

use std::net::SocketAddr;

use clap::Parser;
use daojia_server::pb::meta_client::MetaClient;
use daojia_server::pb::{Role, ServerInfoRequest};
use daojia_server::{Cli, Command, ServeArgs, ServeError};
use daojia_store::{EmbeddedStore, EventStore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::store::{TempDir, tempdir};

const OPS_TOKEN: &str = "ops-token-0123456789abcdef";
const ANALYTICS_TOKEN: &str = "analytics-token-0123456789";

fn serve_args(args: &[&str]) -> ServeArgs {
    let argv = ["daojia", "serve"].iter().chain(args);
    match Cli::try_parse_from(argv)
        .expect("valid command line")
        .command
    {
        Command::Serve(a) => a,
        other => panic!("not serve: {other:?}"),
    }
}

/// A server running in-process until `stop` is called or the value is dropped.
struct TestServer {
    addr: SocketAddr,
    dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestServer {
    /// Starts `daojia serve ARGS --data-dir <fresh dir> --listen 127.0.0.1:0` with
    /// `env_tokens` as DAOJIA_TOKENS.
    async fn start(args: &[&str], env_tokens: Option<&str>) -> TestServer {
        let dir = tempdir();
        let data_dir = dir.path().join("data");
        let data_dir = data_dir.to_str().unwrap();
        let mut argv = vec!["--data-dir", data_dir, "--listen", "127.0.0.1:0"];
        argv.extend_from_slice(args);
        let config = serve_args(&argv).resolve(env_tokens).unwrap();
        let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(daojia_server::run(listener, config, async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            dir,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Signals shutdown and returns what `run` returned.
    async fn stop(&mut self) -> Result<(), ServeError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().expect("stopped once").await.unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Waits, through the health Watch stream, until the server reports SERVING.
async fn wait_serving(channel: Channel) {
    let mut health = HealthClient::new(channel);
    let mut updates = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(update) = updates.next().await {
        if update.unwrap().status == ServingStatus::Serving as i32 {
            return;
        }
    }
    panic!("health stream ended before SERVING");
}

fn with_bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn tokens_file(dir: &TempDir) -> String {
    let path = dir.path().join("tokens.txt");
    std::fs::write(
        &path,
        format!("# role token actor\nops {OPS_TOKEN} alice\n"),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving_and_reflection_lists_services_without_a_token() {
    let mut server = TestServer::start(&[], Some(&format!("analytics:{ANALYTICS_TOKEN}"))).await;
    let channel = server.channel().await;
    wait_serving(channel.clone()).await;

    let mut health = HealthClient::new(channel.clone());
    for service in [
        "",
        "daojia.v1.Meta",
        "daojia.v1.Catalog",
        "daojia.v1.CustomerApp",
        "daojia.v1.WorkerApp",
        "daojia.v1.Queries",
        "daojia.v1.Admin",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "daojia.v1.Admin",
            "daojia.v1.Catalog",
            "daojia.v1.CustomerApp",
            "daojia.v1.Meta",
            "daojia.v1.Queries",
            "daojia.v1.WorkerApp",
            "event_store.client.gossip.Gossip",
            "event_store.client.persistent_subscriptions.PersistentSubscriptions",
            "event_store.client.server_features.ServerFeatures",
            "event_store.client.streams.Streams",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection"
        ]
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_info_needs_a_valid_bearer_token_and_reports_its_role() {
    let dir = tempdir();
    let file = tokens_file(&dir);
    let mut server = TestServer::start(
        &["--tokens", &file],
        Some(&format!("analytics:{ANALYTICS_TOKEN}:nightly-export")),
    )
    .await;
    let channel = server.channel().await;
    wait_serving(channel.clone()).await;
    let mut meta = MetaClient::new(channel);

    let err = meta.server_info(ServerInfoRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("Bearer"), "{}", err.message());
    for token in ["wrong-token-0123456789", "", &OPS_TOKEN[1..]] {
        let err = meta
            .server_info(with_bearer(ServerInfoRequest {}, token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{token:?}: {err:?}");
    }
    let mut basic = Request::new(ServerInfoRequest {});
    basic.metadata_mut().insert(
        "authorization",
        format!("Basic {OPS_TOKEN}").parse().unwrap(),
    );
    let err = meta.server_info(basic).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let ops = meta
        .server_info(with_bearer(ServerInfoRequest {}, OPS_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ops.role(), Role::Ops);
    assert_eq!(ops.actor, "alice");
    assert_eq!(ops.version, env!("CARGO_PKG_VERSION"));

    let analytics = meta
        .server_info(with_bearer(ServerInfoRequest {}, ANALYTICS_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(analytics.role(), Role::Analytics);
    assert_eq!(analytics.actor, "nightly-export");
    server.stop().await.unwrap();
    let store = EmbeddedStore::open(server.dir.path().join("data")).unwrap();
    assert_eq!(ops.head_position, store.head().await.unwrap().0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_mode_serves_loopback_without_tokens_and_refuses_other_addresses() {
    for addr in ["0.0.0.0:2113", "[::]:2113"] {
        let err = serve_args(&["--insecure", "--listen", addr])
            .resolve(None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("refusing to listen on {addr} with --insecure"))
                && err.contains("loopback"),
            "{err}"
        );
    }
    let err = serve_args(&["--listen", "0.0.0.0:2113"])
        .resolve(Some(&format!("ops:{OPS_TOKEN}")))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("refusing to serve plaintext on 0.0.0.0:2113"),
        "{err}"
    );

    let mut server = TestServer::start(&["--insecure"], None).await;
    let channel = server.channel().await;
    wait_serving(channel.clone()).await;
    let info = MetaClient::new(channel)
        .server_info(ServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.role(), Role::Admin);
    assert_eq!(info.actor, "insecure-local");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_authenticates_over_tls_and_refuses_plaintext_clients() {
    let dir = tempdir();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    let mut server = TestServer::start(
        &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
        Some(&format!("ops:{OPS_TOKEN}")),
    )
    .await;

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(cert.pem()))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{}", server.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    wait_serving(channel.clone()).await;
    let mut meta = MetaClient::new(channel);
    let info = meta
        .server_info(with_bearer(ServerInfoRequest {}, OPS_TOKEN))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.role(), Role::Ops);
    let err = meta.server_info(ServerInfoRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    // A plaintext HTTP/2 client gets no gRPC answer from the TLS port.
    let plaintext = Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect_lazy();
    let err = HealthClient::new(plaintext)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap_err();
    assert_ne!(err.code(), Code::Ok);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_and_closes_the_store_so_it_reopens() {
    let mut server = TestServer::start(&[], Some(&format!("ops:{OPS_TOKEN}"))).await;
    let channel = server.channel().await;
    wait_serving(channel.clone()).await;
    let mut meta = MetaClient::new(channel);
    meta.server_info(with_bearer(ServerInfoRequest {}, OPS_TOKEN))
        .await
        .unwrap();
    // The client keeps its connection open: graceful shutdown must still finish.
    server.stop().await.unwrap();
    // The store is closed: its lock is released and the log opens again.
    EmbeddedStore::open(server.dir.path().join("data")).unwrap();
    drop(meta);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_open_stops_the_server_with_the_reason() {
    let dir = tempdir();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"not a directory").unwrap();
    let config = serve_args(&["--insecure", "--data-dir", not_a_dir.to_str().unwrap()])
        .resolve(None)
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = daojia_server::run(listener, config, std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(err, ServeError::OpenStore { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "cannot open the event store in {}",
            not_a_dir.display()
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_url_stops_the_server_after_the_bounded_wait() {
    // A port nothing listens on any more.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let dir = tempdir();
    let url = format!("kurrentdb://admin:secret@127.0.0.1:{port}?tls=false");
    let data_dir = dir.path().join("data");
    let config = serve_args(&[
        "--insecure",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--store",
        &url,
        "--store-connect-timeout",
        "1",
    ])
    .resolve(None)
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let started = std::time::Instant::now();
    let err = daojia_server::run(listener, config, std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(err, ServeError::ConnectStore { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot use the event store at kurrentdb://admin:***@127.0.0.1:{port}?tls=false"
        )) && message.contains("gave up waiting"),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // Local state still goes to the data directory.
    assert!(data_dir.is_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_only_listener_answers_in_plaintext_next_to_a_tls_server_and_nothing_else() {
    let dir = tempdir();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    let data_dir = dir.path().join("data");
    let argv = [
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
        "--health-listen",
        "127.0.0.1:0",
    ];
    let config = serve_args(&argv)
        .resolve(Some(&format!("ops:{OPS_TOKEN}")))
        .unwrap();
    assert!(config.health_listen.is_some());
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let health_listener = tokio::net::TcpListener::bind(config.health_listen.unwrap())
        .await
        .unwrap();
    let health_addr = health_listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(daojia_server::run_with(
        listener,
        Some(health_listener),
        config,
        async {
            let _ = rx.await;
        },
    ));

    // Plaintext, no token: health reaches SERVING once the store is open.
    let plaintext = Endpoint::from_shared(format!("http://{health_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    wait_serving(plaintext.clone()).await;
    // Nothing but health is served there, with or without a token.
    let err = MetaClient::new(plaintext)
        .server_info(with_bearer(ServerInfoRequest {}, OPS_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");

    let _ = tx.send(());
    task.await.unwrap().unwrap();
}
