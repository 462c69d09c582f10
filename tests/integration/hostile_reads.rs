//! Reads that could be turned against the server, over the EventStoreDB protocol with the
//! generated clients: a ReDoS filter is refused or stopped with INVALID_ARGUMENT, a read its
//! client abandoned stops scanning, and subscribers that stop reading are cut with
//! RESOURCE_EXHAUSTED and a resume position while the server's buffers stay under budget and
//! a subscriber that reads gets everything.
//!
//! These are the embedded store's behaviours (its scans, its live buffers); with
//! `DAOJIA_TEST_STORE=kurrentdb` the tests that look at them say so and return.

use std::time::Duration;

use clap::Parser;
use daojia_server::esdb::ReadStats;
use daojia_server::esdb::proto::event_store::client::streams::streams_client::StreamsClient;
use daojia_server::esdb::proto::event_store::client::streams::{
    AppendReq, ReadReq, ReadResp, append_req, read_req, read_resp,
};
use daojia_server::esdb::proto::event_store::client::{Empty, StreamIdentifier, Uuid, uuid};
use daojia_server::{Cli, Command};
use daojia_store::{EmbeddedStore, EventId, EventStore, ExpectedRevision, ProposedEvent};
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};

use crate::harness::{Started, kurrent_mode};
use crate::store::{TempDir, tempdir};

/// The look-around pattern of the report: 52 ms of CPU per event scanned before the fix.
const REDOS: &str = r"^((?<=[\w-])[\w-]|[\w-])+\s$";

/// An insecure server (every caller is admin) on `dir/data` with `extra` options, whose read
/// counters the test keeps.
async fn server(dir: &TempDir, extra: &[&str]) -> (Started, ReadStats) {
    let datadir = dir.path().join("data");
    let argv = [
        "daojia",
        "serve",
        "--insecure",
        "--data-dir",
        datadir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]
    .into_iter()
    .chain(extra.iter().copied());
    let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else {
        panic!("not serve")
    };
    let mut config = args.resolve(None).unwrap();
    config.dispatch = None;
    config.reactor = false;
    let stats = config.esdb_reads.clone();
    (crate::harness::start(config, "").await, stats)
}

/// A second connection to the same server (its own HTTP/2 flow-control windows).
async fn connect(started: &Started) -> Channel {
    Endpoint::from_shared(format!("http://{}", started.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A read of `$all` from the start (`count` events) or a subscription from the end (`None`),
/// filtered by stream name with `regex`.
fn all_read(count: Option<u64>, regex: Option<&str>) -> ReadReq {
    all_read_from(count, regex, count.is_some())
}

fn all_read_from(count: Option<u64>, regex: Option<&str>, from_start: bool) -> ReadReq {
    use read_req::options::{
        self, AllOptions, FilterOptions, StreamOption, all_options::AllOption, filter_options,
        uuid_option,
    };
    let from = if from_start {
        AllOption::Start(Empty {})
    } else {
        AllOption::End(Empty {})
    };
    ReadReq {
        options: Some(read_req::Options {
            stream_option: Some(StreamOption::All(AllOptions {
                all_option: Some(from),
            })),
            read_direction: 0,
            resolve_links: false,
            count_option: Some(match count {
                Some(n) => options::CountOption::Count(n),
                None => options::CountOption::Subscription(Default::default()),
            }),
            filter_option: Some(match regex {
                None => options::FilterOption::NoFilter(Empty {}),
                Some(regex) => options::FilterOption::Filter(FilterOptions {
                    filter: Some(filter_options::Filter::StreamIdentifier(
                        filter_options::Expression {
                            regex: regex.into(),
                            prefix: vec![],
                        },
                    )),
                    window: Some(filter_options::Window::Max(32)),
                    checkpoint_interval_multiplier: 1,
                }),
            }),
            uuid_option: Some(options::UuidOption {
                content: Some(uuid_option::Content::String(Empty {})),
            }),
            control_option: None,
        }),
    }
}

async fn open(channel: &Channel, request: ReadReq) -> Result<Streaming<ReadResp>, Status> {
    Ok(StreamsClient::new(channel.clone())
        .read(request)
        .await?
        .into_inner())
}

/// Everything a read answers, up to its end or its error.
async fn drain(mut stream: Streaming<ReadResp>) -> (Vec<ReadResp>, Option<Status>) {
    let mut out = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(resp) => out.push(resp),
            Err(status) => return (out, Some(status)),
        }
    }
    (out, None)
}

fn event_position(resp: &ReadResp) -> Option<u64> {
    match &resp.content {
        Some(read_resp::Content::Event(e)) => e.event.as_ref().map(|e| e.commit_position),
        _ => None,
    }
}

/// Appends one event of `size` bytes of data to `stream` over the protocol.
async fn append(channel: &Channel, stream: &str, n: u128, size: usize) {
    let id = format!("{n:032x}");
    let messages = vec![
        AppendReq {
            content: Some(append_req::Content::Options(append_req::Options {
                stream_identifier: Some(StreamIdentifier {
                    stream_name: stream.as_bytes().to_vec().into(),
                }),
                expected_stream_revision: Some(append_req::options::ExpectedStreamRevision::Any(
                    Empty {},
                )),
            })),
        },
        AppendReq {
            content: Some(append_req::Content::ProposedMessage(
                append_req::ProposedMessage {
                    id: Some(Uuid {
                        value: Some(uuid::Value::String(format!(
                            "{}-{}-{}-{}-{}",
                            &id[..8],
                            &id[8..12],
                            &id[12..16],
                            &id[16..20],
                            &id[20..]
                        ))),
                    }),
                    metadata: [
                        ("type".to_string(), "Blob".to_string()),
                        (
                            "content-type".to_string(),
                            "application/octet-stream".to_string(),
                        ),
                    ]
                    .into(),
                    custom_metadata: Vec::new().into(),
                    data: vec![b'x'; size].into(),
                },
            )),
        },
    ];
    StreamsClient::new(channel.clone())
        .append(tokio_stream::iter(messages))
        .await
        .unwrap();
}

/// Waits (a generous bound, in small steps) until `done` holds; false if it never did.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..6_000 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redos_filter_ends_the_read_with_invalid_argument_naming_it() {
    let dir = tempdir();
    let (node, _) = server(&dir, &[]).await;
    // Stream names long enough that the pattern needs far more than the backtracking limit.
    for i in 0..3 {
        append(
            &node.channel,
            &format!("order-0123456789abcdef0123456789-{i}"),
            i,
            10,
        )
        .await;
    }
    let requests = [
        all_read(Some(100), Some(REDOS)),
        all_read_from(None, Some(REDOS), true),
    ];
    // With a KurrentDB store the filter runs on that server; only the refusal at parse time
    // below is this server's.
    for request in requests.into_iter().filter(|_| !kurrent_mode()) {
        let stream = open(&node.channel, request).await;
        let status = match stream {
            Err(status) => status,
            Ok(stream) => drain(stream)
                .await
                .1
                .expect("the read ends with an error, not as if nothing matched"),
        };
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("filter regex"), "{status:?}");
        assert!(status.message().contains("backtracking"), "{status:?}");
    }
    // A pattern that compiles too big is refused before anything is read.
    let Err(status) = open(&node.channel, all_read(Some(1), Some(r"\w{1000}{1000}"))).await else {
        panic!("a pattern that compiles too big is refused when the request is read")
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // Ordinary filters, with and without look-around, still read.
    for (regex, want) in [(r"^(?!\$)", 3), ("^order-", 3), ("^nothing", 0)] {
        let (resps, error) = drain(
            open(&node.channel, all_read(Some(100), Some(regex)))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(error.map(|s| s.code()), None, "{regex}");
        let events = resps.iter().filter_map(event_position).count();
        assert_eq!(events, want, "{regex}");
    }
    let _ = node.shutdown.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_its_client_abandoned_stops_scanning() {
    if kurrent_mode() {
        eprintln!("skipped: scans of the embedded store (DAOJIA_TEST_STORE=kurrentdb)");
        return;
    }
    let dir = tempdir();
    // 60,000 events of one stream whose 11-byte name costs the ReDoS pattern some 10,000
    // backtracking steps per event without failing: a full filtered scan takes many seconds.
    let total_bytes = {
        let store = EmbeddedStore::open(dir.path().join("data")).unwrap();
        for batch in 0..120u128 {
            let events = (0..500u128)
                .map(|i| {
                    ProposedEvent::json(EventId::from_u128(batch * 500 + i + 1), "Tick", &b"{}"[..])
                })
                .collect();
            store
                .append("abcdefghijk", ExpectedRevision::Any, events)
                .await
                .unwrap();
        }
        let head = store.head().await.unwrap().0;
        drop(store);
        head
    };
    let (node, stats) = server(&dir, &[]).await;
    let stream = open(&node.channel, all_read(Some(10), Some(REDOS)))
        .await
        .unwrap();
    assert!(
        eventually(|| stats.bytes_scanned() > 0).await,
        "the read started scanning"
    );
    drop(stream);
    assert!(
        eventually(|| stats.tasks_running() == 0).await,
        "the read task ended after its client went away"
    );
    let scanned = stats.bytes_scanned();
    assert!(
        scanned < total_bytes / 2,
        "scanned {scanned} of {total_bytes} bytes after the client went away"
    );
    let _ = node.shutdown.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_that_stop_reading_are_cut_with_a_resume_position_within_the_budget() {
    if kurrent_mode() {
        eprintln!("skipped: live buffers of the embedded store (DAOJIA_TEST_STORE=kurrentdb)");
        return;
    }
    const PER_SUBSCRIBER: u64 = 512 << 10;
    const TOTAL: u64 = 2 << 20;
    const EVENT: usize = 64 << 10;
    const EVENTS: u128 = 150;
    let dir = tempdir();
    let (node, stats) = server(
        &dir,
        &[
            "--subscriber-buffer-bytes",
            &PER_SUBSCRIBER.to_string(),
            "--subscribers-buffer-bytes",
            &TOTAL.to_string(),
        ],
    )
    .await;
    // Eight subscribers on one connection that read up to caught-up and then stop.
    let slow_connection = connect(&node).await;
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut stream = open(&slow_connection, all_read(None, None)).await.unwrap();
        loop {
            let resp = stream.next().await.unwrap().unwrap();
            if matches!(resp.content, Some(read_resp::Content::CaughtUp(_))) {
                break;
            }
        }
        slow.push(stream);
    }
    // One subscriber on its own connection that reads everything.
    let mut reader = open(&connect(&node).await, all_read(None, None))
        .await
        .unwrap();
    loop {
        let resp = reader.next().await.unwrap().unwrap();
        if matches!(resp.content, Some(read_resp::Content::CaughtUp(_))) {
            break;
        }
    }
    let reading = tokio::spawn(async move {
        let mut positions = Vec::new();
        while positions.len() < EVENTS as usize {
            let resp = reader.next().await.expect("the reader's stream goes on")?;
            positions.extend(event_position(&resp));
        }
        Ok::<_, Status>(positions)
    });
    for n in 0..EVENTS {
        append(&node.channel, &format!("blob-{}", n % 7), n + 1, EVENT).await;
    }
    let positions = reading
        .await
        .unwrap()
        .expect("the subscriber that reads is never cut");
    assert_eq!(positions.len(), EVENTS as usize);
    assert!(positions.windows(2).all(|w| w[0] < w[1]));

    let (_, peak) = stats.subscriber_bytes().unwrap();
    assert!(
        peak <= TOTAL,
        "live buffers held {peak} bytes at most, budget {TOTAL}"
    );
    // Drained all at once: they share a connection, whose flow-control window the ones not
    // being read would keep for themselves.
    let drains: Vec<_> = slow.into_iter().map(|s| tokio::spawn(drain(s))).collect();
    for (i, drained) in drains.into_iter().enumerate() {
        let (resps, status) = drained.await.unwrap();
        let status = status.unwrap_or_else(|| panic!("slow subscriber {i} ended without a status"));
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains("fell behind by more than"),
            "{status:?}"
        );
        let received: Vec<u64> = resps.iter().filter_map(event_position).collect();
        assert!(received.len() < EVENTS as usize, "subscriber {i} was cut");
        match received.last() {
            Some(last) => {
                assert!(
                    status
                        .message()
                        .contains(&format!("resubscribe from position {last}")),
                    "{status:?}"
                );
                assert_eq!(
                    status
                        .metadata()
                        .get("resume-from")
                        .unwrap()
                        .to_str()
                        .unwrap(),
                    last.to_string()
                );
            }
            None => assert!(status.message().contains("where it subscribed from")),
        }
    }
    assert!(stats.subscribers_cut() >= 8);
    assert!(eventually(|| stats.subscriber_bytes().unwrap().0 == 0).await);
    let _ = node.shutdown.send(());
}
