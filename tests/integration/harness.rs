//! Starting the real server in-process on port 0 and waiting until it serves, shared by the
//! modules that drive it through gRPC clients.

use std::net::SocketAddr;

use daojia_server::{ServeError, ServerConfig};
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
