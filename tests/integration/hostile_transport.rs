//! The transport edge under hostile clients, through real sockets against the server on
//! 127.0.0.1:0: undecodable request bodies answer INVALID_ARGUMENT naming the message,
//! oversized ones RESOURCE_EXHAUSTED with the limit; past the in-flight limit of a service
//! class calls answer RESOURCE_EXHAUSTED at once (with retry advice) while health answers;
//! past the connection cap new connections are closed at once; connections that never
//! complete their handshake (slowloris) are closed after the handshake timeout.

use std::time::Duration;

use prost::bytes::{Buf, BufMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

use crate::harness::{Serve, Started, as_};
use crate::store::{TempDir, tempdir};

const TOKEN: &str = "customer-token-hostile-0123456789";
const ADMIN_TOKEN: &str = "admin-token-hostile-0123456789ab";

async fn serve(args: &[&str]) -> (Started, TempDir) {
    let dir = tempdir();
    let datadir = dir.path().join("data");
    let tokens = format!("customer-app:{TOKEN},admin:{ADMIN_TOKEN}");
    let started = Serve {
        datadir: &datadir,
        tokens: &tokens,
        clock: daojia_server::Clock::system(),
        dispatch: false,
        reactor: false,
        args,
        service: "daojia.v1.Queries",
    }
    .start()
    .await;
    (started, dir)
}

async fn stop(started: Started) {
    let _ = started.shutdown.send(());
    started.task.await.unwrap().unwrap();
}

/// Sends and receives message bodies as raw bytes, whatever they are.
#[derive(Clone, Copy, Debug, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Calls the unary method at `path` with `body` as the request message's bytes.
async fn call_raw(channel: &Channel, path: &'static str, body: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let uri = http::uri::PathAndQuery::from_static(path);
    match grpc.unary(as_(TOKEN, body), uri, Raw).await {
        Ok(response) => panic!("{path:?} accepted a bad body: {:?}", response.into_inner()),
        Err(status) => status,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_bodies_are_invalid_argument_and_oversized_ones_resource_exhausted() {
    let (server, _dir) = serve(&["--max-message-bytes", "1024"]).await;
    let post = "/daojia.v1.CustomerApp/PostOrder";
    // Field 3 (customer_id, a string) holding bytes that are not UTF-8.
    let status = call_raw(&server.channel, post, vec![0x1a, 0x02, 0xff, 0xfe]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("PostOrderRequest"), "{status:?}");
    assert!(status.message().contains("customer_id"), "{status:?}");
    let violations = status.get_details_bad_request().unwrap().field_violations;
    assert_eq!(violations[0].field, "customer_id");

    // Truncated: a string field announcing 100 bytes and carrying 2.
    let status = call_raw(&server.channel, post, vec![0x0a, 100, b'a', b'b']).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("PostOrderRequest"), "{status:?}");
    // Garbage: an invalid wire type.
    let status = call_raw(&server.channel, post, vec![0xff, 0xff, 0xff, 0xff, 0x0f]).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // The EventStoreDB protocol's services are generated with the same codec.
    let status = call_raw(
        &server.channel,
        "/event_store.client.streams.Streams/Delete",
        vec![0x0a, 0x05, 0x01],
    )
    .await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("DeleteReq"), "{status:?}");

    // In a client stream too (the status comes in the trailers).
    let mut grpc = tonic::client::Grpc::new(server.channel.clone());
    grpc.ready().await.unwrap();
    let uri = http::uri::PathAndQuery::from_static("/event_store.client.streams.Streams/Append");
    let messages = tokio_stream::iter([vec![0x0a, 0x64, 0x01]]);
    let status = grpc
        .client_streaming(as_(ADMIN_TOKEN, messages), uri, Raw)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("AppendReq"), "{status:?}");

    // Over --max-message-bytes: RESOURCE_EXHAUSTED naming the limit.
    let mut big = vec![0x12, 0xd0, 0x0f]; // field 2, 2000 bytes
    big.extend(std::iter::repeat_n(b'x', 2000));
    let status = call_raw(&server.channel, post, big).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("1024"), "{status:?}");
    stop(server).await;
}

async fn health(channel: &Channel) -> i32 {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_in_flight_limit_calls_are_shed_at_once_while_health_answers() {
    const LIMIT: usize = 2;
    const CALLS: usize = 12;
    let (server, _dir) = serve(&["--max-inflight-queries", "2", "--shutdown-grace", "1"]).await;
    let mut calls = JoinSet::new();
    for _ in 0..CALLS {
        let channel = server.channel.clone();
        calls.spawn(async move {
            // A query whose request message never comes: the server has taken the call (it is
            // in flight, waiting for the message) until the client gives up.
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.unwrap();
            let uri = http::uri::PathAndQuery::from_static("/daojia.v1.Queries/ListCustomerOrders");
            let body = tokio_stream::pending::<Vec<u8>>();
            grpc.client_streaming(as_(TOKEN, body), uri, Raw)
                .await
                .map(|_| ())
        });
    }
    // The calls past the limit answer at once; LIMIT of them stay blocked.
    for _ in 0..CALLS - LIMIT {
        let refused = calls.join_next().await.unwrap().unwrap().unwrap_err();
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        let retry = refused.get_details_retry_info().unwrap();
        assert!(retry.retry_delay.is_some_and(|d| d > Duration::ZERO));
        assert!(refused.metadata().get("retry-after-ms").is_some());
        assert!(refused.message().contains("queries"), "{refused:?}");
    }
    assert_eq!(calls.len(), LIMIT);
    // Health has its own lane: it answers while the queries lane is full.
    assert_eq!(health(&server.channel).await, ServingStatus::Serving as i32);
    calls.abort_all();
    while calls.join_next().await.is_some() {}
    stop(server).await;
}

/// An HTTP/2 client preface and an empty SETTINGS frame: what a client sends first.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Reads what the server sends until it closes the connection, with a generous bound.
async fn read_until_closed(socket: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(30), socket.read(&mut buf))
            .await
            .expect("the server did not close the connection");
        match read {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_are_closed_and_slowloris_times_out() {
    // The harness's channel holds one connection of the three.
    let (server, _dir) = serve(&["--max-connections", "3", "--handshake-timeout-ms", "200"]).await;
    let addr = server.addr;
    // Two clients that complete their handshake hold the other two places: the server
    // answers them with its SETTINGS frame.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket.write_all(PREFACE).await.unwrap();
        let mut buf = [0u8; 9];
        socket.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf[3], 4, "the server's first frame is SETTINGS");
        held.push(socket);
    }
    // Past the cap: closed at once, without a byte from the server.
    for _ in 0..3 {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        let _ = socket.write_all(PREFACE).await;
        assert_eq!(read_until_closed(&mut socket).await, Vec::<u8>::new());
    }
    // The existing channel still answers.
    assert_eq!(health(&server.channel).await, ServingStatus::Serving as i32);
    // Free the two places: each client ends its side, the server closes its own.
    for mut socket in held {
        socket.shutdown().await.unwrap();
        read_until_closed(&mut socket).await;
    }
    // A new client gets in.
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(health(&channel).await, ServingStatus::Serving as i32);
    // Slowloris: a connection that sends nothing is closed after the handshake timeout (the
    // server's SETTINGS frame aside).
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let got = read_until_closed(&mut slow).await;
    assert!(got.len() < 100, "{} bytes", got.len());
    // And the channels are unaffected.
    assert_eq!(health(&server.channel).await, ServingStatus::Serving as i32);
    drop(channel);
    stop(server).await;
}
