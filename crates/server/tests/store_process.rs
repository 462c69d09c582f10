//! `daojia serve --store kurrentdb://…` with a second daojia *process* as its KurrentDB: the
//! events live in the store process (read back over the EventStoreDB protocol), the front
//! keeps only local state, and a front killed with SIGKILL comes back with the same answers.
//! Both are the real `daojia` binary, started on port 0.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use daojia_server::esdb::proto::event_store::client::streams::streams_client::StreamsClient;
use daojia_server::esdb::proto::event_store::client::streams::{ReadReq, read_req, read_resp};
use daojia_server::esdb::proto::event_store::client::{Empty, StreamIdentifier};
use daojia_server::pb;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A `daojia serve` child process, killed (SIGKILL) when dropped.
struct Daojia {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Daojia {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `daojia serve --insecure --no-dispatch ARGS` and returns once it listens (its address
/// is read from its JSON log) and reports SERVING.
async fn serve(args: &[&str]) -> Daojia {
    let mut child = Command::new(env!("CARGO_BIN_EXE_daojia"))
        .args([
            "--log-format",
            "json",
            "serve",
            "--insecure",
            "--no-dispatch",
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start daojia");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr: SocketAddr = loop {
        let line = lines
            .next()
            .expect("daojia exited before listening")
            .expect("read daojia's log");
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if entry["fields"]["message"] == "listening" {
            break entry["fields"]["addr"]
                .as_str()
                .expect("addr")
                .parse()
                .expect("an address");
        }
    };
    // Keep reading its log so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let daojia = Daojia { child, addr };
    let mut health = HealthClient::new(channel(addr).await)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health watch")
        .into_inner();
    while let Some(update) = health.next().await {
        if update.expect("health update").status == ServingStatus::Serving as i32 {
            return daojia;
        }
    }
    panic!("daojia at {addr} stopped before serving");
}

async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

fn scratch() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "daojia-store-process-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn timestamp(unix_secs: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: unix_secs,
        nanos: 0,
    })
}

/// The events of `stream` as the store process holds them, read over the EventStoreDB protocol.
async fn store_events(store: SocketAddr, stream: &str) -> Vec<String> {
    use read_req::options::{self, StreamOptions, stream_options::RevisionOption};
    let request = ReadReq {
        options: Some(read_req::Options {
            stream_option: Some(options::StreamOption::Stream(StreamOptions {
                stream_identifier: Some(StreamIdentifier {
                    stream_name: stream.as_bytes().to_vec().into(),
                }),
                revision_option: Some(RevisionOption::Start(Empty {})),
            })),
            read_direction: options::ReadDirection::Forwards as i32,
            resolve_links: false,
            count_option: Some(options::CountOption::Count(100)),
            filter_option: Some(options::FilterOption::NoFilter(Empty {})),
            uuid_option: None,
            control_option: None,
        }),
    };
    let mut reads = StreamsClient::new(channel(store).await)
        .read(request)
        .await
        .expect("read")
        .into_inner();
    let mut types = Vec::new();
    while let Some(resp) = reads.next().await {
        if let Some(read_resp::Content::Event(e)) = resp.expect("read response").content {
            types.push(e.event.expect("event").metadata["type"].clone());
        }
    }
    types
}

async fn customer_orders(front: SocketAddr, customer: &str, min_position: u64) -> Vec<String> {
    pb::queries_client::QueriesClient::new(channel(front).await)
        .list_customer_orders(pb::ListCustomerOrdersRequest {
            customer_id: customer.into(),
            min_position,
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .expect("list orders")
        .into_inner()
        .orders
        .into_iter()
        .map(|o| o.order.expect("order").order_id)
        .collect()
}

#[tokio::test]
async fn a_front_on_a_store_process_keeps_its_events_there_and_survives_sigkill() {
    let dir = scratch();
    let store_dir = dir.join("store");
    let front_dir = dir.join("front");
    let store = serve(&[
        "--listen",
        "127.0.0.1:0",
        "--no-reactor",
        "--data-dir",
        store_dir.to_str().expect("utf-8 path"),
    ])
    .await;
    let url = format!("kurrentdb://{}?tls=false", store.addr);
    let front_args = [
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        front_dir.to_str().expect("utf-8 path"),
        "--store",
        &url,
    ];
    let front = serve(&front_args).await;

    let order_id = "0c2e6a1b-3f4d-4e5a-8b9c-1d2e3f4a5b6c";
    let customer = "9a41c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d";
    let tomorrow = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
        / 3600
        * 3600
        + 86_400;
    let posted = pb::customer_app_client::CustomerAppClient::new(channel(front.addr).await)
        .post_order(pb::PostOrderRequest {
            command_id: "6f1c0d4e-8d3b-4a52-9b1e-2f0c5d7a9e11".into(),
            order_id: order_id.into(),
            customer_id: customer.into(),
            service_code: "C01".into(),
            quantity: 3,
            workers: 1,
            window_start: timestamp(tomorrow),
            window_end: timestamp(tomorrow + 3 * 3600),
            location: Some(pb::LatLon {
                lat: 27.95,
                lon: 116.36,
            }),
            dispatch: Some(pb::post_order_request::Dispatch::Platform(
                pb::PlatformDispatch {},
            )),
        })
        .await
        .expect("post an order")
        .into_inner();
    assert_eq!(posted.event_types, ["OrderPosted"]);

    // The event is in the store process, at the position the front acknowledged.
    assert_eq!(
        store_events(store.addr, &format!("order-{order_id}")).await,
        ["OrderPosted"]
    );
    // The front's queries answer from read models fed by the store.
    assert_eq!(
        customer_orders(front.addr, customer, posted.commit_position).await,
        [order_id]
    );
    // The front keeps no event log of its own: its data directory holds local state only.
    let front_files: Vec<String> = std::fs::read_dir(&front_dir)
        .expect("front data dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !front_files
            .iter()
            .any(|f| f.ends_with(".log") || f.starts_with("segment")),
        "{front_files:?}"
    );

    // SIGKILL the front; a new one on the same store answers the same.
    drop(front);
    let front = serve(&front_args).await;
    assert_eq!(
        customer_orders(front.addr, customer, posted.commit_position).await,
        [order_id]
    );
    drop(front);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
