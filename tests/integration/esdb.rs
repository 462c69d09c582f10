//! The EventStoreDB protocol at the wire: what the official clients decode (statuses,
//! `exception` trailers, both UUID encodings, BatchAppend results, checkpoints), bad input of
//! every kind refused with nothing appended, and who may read and write. The official clients
//! themselves are driven in tests/kurrentdb-client (Rust) and tests/python.

use std::collections::HashMap;

use daojia_server::Clock;
use daojia_server::esdb::proto::event_store::client::gossip::gossip_client::GossipClient;
use daojia_server::esdb::proto::event_store::client::server_features::server_features_client::ServerFeaturesClient;
use daojia_server::esdb::proto::event_store::client::streams::streams_client::StreamsClient;
use daojia_server::esdb::proto::event_store::client::streams::{
    AppendReq, BatchAppendReq, BatchAppendResp, DeleteReq, ReadReq, ReadResp, TombstoneReq,
    append_req, append_resp, batch_append_req, batch_append_resp, delete_req, read_req, read_resp,
    tombstone_req,
};
use daojia_server::esdb::proto::event_store::client::{
    Empty, StreamIdentifier, Uuid, WrongExpectedVersion, uuid,
};
use prost::Message;
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::store::{TempDir, tempdir};

pub(crate) const ADMIN: &str = "admin-token-0123456789";
const ANALYTICS: &str = "analytics-token-0123456789";
const APP: &str = "customer-app-token-0123456789";

pub(crate) struct Node {
    pub(crate) channel: Channel,
    addr: std::net::SocketAddr,
    _dir: TempDir,
    pub(crate) shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn node() -> Node {
    node_with(&[]).await
}

/// A node started with `args` added to `daojia serve`'s.
pub(crate) async fn node_with(args: &[&str]) -> Node {
    let dir = tempdir();
    let datadir = dir.path().join("data");
    let tokens = format!("admin:{ADMIN}:root,analytics:{ANALYTICS}:bi,customer-app:{APP}");
    let started = crate::harness::Serve {
        datadir: &datadir,
        tokens: &tokens,
        clock: Clock::manual(daojia_domain::Timestamp(1_800_000_000_000)),
        dispatch: false,
        reactor: false,
        args,
        service: "",
    }
    .start()
    .await;
    Node {
        channel: started.channel,
        addr: started.addr,
        _dir: dir,
        shutdown: started.shutdown,
    }
}

fn with_auth<T>(value: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", value.parse().unwrap());
    // What every official client sends; a single node is the leader and accepts it.
    request
        .metadata_mut()
        .insert("requires-leader", "true".parse().unwrap());
    request
}

pub(crate) fn bearer<T>(token: &str, message: T) -> Request<T> {
    with_auth(&format!("Bearer {token}"), message)
}

fn basic<T>(user: &str, password: &str, message: T) -> Request<T> {
    let raw = format!("{user}:{password}");
    with_auth(&format!("Basic {}", base64(raw.as_bytes())), message)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn stream(name: &str) -> Option<StreamIdentifier> {
    Some(StreamIdentifier {
        stream_name: name.as_bytes().to_vec().into(),
    })
}

pub(crate) fn string_id(n: u128) -> Option<Uuid> {
    let hex = format!("{n:032x}");
    Some(Uuid {
        value: Some(uuid::Value::String(format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        ))),
    })
}

fn structured_id(n: u128) -> Option<Uuid> {
    Some(Uuid {
        value: Some(uuid::Value::Structured(uuid::Structured {
            most_significant_bits: (n >> 64) as u64 as i64,
            least_significant_bits: n as u64 as i64,
        })),
    })
}

pub(crate) fn json_metadata(event_type: &str) -> HashMap<String, String> {
    HashMap::from([
        ("type".to_string(), event_type.to_string()),
        ("content-type".to_string(), "application/json".to_string()),
    ])
}

pub(crate) fn options(
    name: &str,
    expected: append_req::options::ExpectedStreamRevision,
) -> AppendReq {
    AppendReq {
        content: Some(append_req::Content::Options(append_req::Options {
            stream_identifier: stream(name),
            expected_stream_revision: Some(expected),
        })),
    }
}

fn proposed(id: Option<Uuid>, event_type: &str, data: &str) -> AppendReq {
    AppendReq {
        content: Some(append_req::Content::ProposedMessage(
            append_req::ProposedMessage {
                id,
                metadata: json_metadata(event_type),
                custom_metadata: b"{\"actor\":\"test\"}".to_vec().into(),
                data: data.as_bytes().to_vec().into(),
            },
        )),
    }
}

async fn append(
    channel: &Channel,
    token: &str,
    messages: Vec<AppendReq>,
) -> Result<append_resp::Result, Status> {
    let resp = StreamsClient::new(channel.clone())
        .append(bearer(token, tokio_stream::iter(messages)))
        .await?;
    Ok(resp.into_inner().result.expect("an append result"))
}

fn read_options(
    target: read_req::options::StreamOption,
    count: Option<u64>,
    backwards: bool,
    structured: bool,
) -> ReadReq {
    use read_req::options::{self, uuid_option::Content};
    ReadReq {
        options: Some(read_req::Options {
            stream_option: Some(target),
            read_direction: i32::from(backwards),
            resolve_links: false,
            count_option: Some(match count {
                Some(n) => options::CountOption::Count(n),
                None => options::CountOption::Subscription(Default::default()),
            }),
            filter_option: Some(options::FilterOption::NoFilter(Empty {})),
            uuid_option: Some(options::UuidOption {
                content: Some(if structured {
                    Content::Structured(Empty {})
                } else {
                    Content::String(Empty {})
                }),
            }),
            control_option: None,
        }),
    }
}

fn stream_from_start(name: &str) -> read_req::options::StreamOption {
    use read_req::options::{StreamOption, StreamOptions, stream_options::RevisionOption};
    StreamOption::Stream(StreamOptions {
        stream_identifier: stream(name),
        revision_option: Some(RevisionOption::Start(Empty {})),
    })
}

fn all_from(position: Option<u64>) -> read_req::options::StreamOption {
    use read_req::options::{AllOptions, Position, StreamOption, all_options::AllOption};
    StreamOption::All(AllOptions {
        all_option: Some(match position {
            Some(p) => AllOption::Position(Position {
                commit_position: p,
                prepare_position: p,
            }),
            None => AllOption::Start(Empty {}),
        }),
    })
}

async fn read(channel: &Channel, request: ReadReq) -> Result<Vec<ReadResp>, Status> {
    let mut stream = StreamsClient::new(channel.clone())
        .read(bearer(ADMIN, request))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(item) = stream.next().await {
        out.push(item?);
    }
    Ok(out)
}

fn events(responses: &[ReadResp]) -> Vec<&read_resp::read_event::RecordedEvent> {
    responses
        .iter()
        .filter_map(|r| match &r.content {
            Some(read_resp::Content::Event(e)) => e.event.as_ref(),
            _ => None,
        })
        .collect()
}

/// Every event in `$all` (user and system), to check that refused requests appended nothing.
pub(crate) async fn all_events(channel: &Channel) -> usize {
    events(
        &read(
            channel,
            read_options(all_from(None), Some(u64::MAX), false, false),
        )
        .await
        .unwrap(),
    )
    .len()
}

fn trailer<'a>(status: &'a Status, key: &str) -> Option<&'a str> {
    status.metadata().get(key).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn appends_and_reads_speak_both_uuid_encodings_and_the_created_ticks() {
    let node = node().await;
    use append_req::options::ExpectedStreamRevision as E;
    let r = append(
        &node.channel,
        ADMIN,
        vec![
            options("order-1", E::NoStream(Empty {})),
            proposed(
                structured_id(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
                "OrderPosted",
                "{\"n\":1}",
            ),
            proposed(string_id(2), "OrderOffered", "{\"n\":2}"),
        ],
    )
    .await
    .unwrap();
    let append_resp::Result::Success(success) = r else {
        panic!("expected success, got {r:?}")
    };
    use append_resp::success::{CurrentRevisionOption, PositionOption};
    assert_eq!(
        success.current_revision_option,
        Some(CurrentRevisionOption::CurrentRevision(1))
    );
    let Some(PositionOption::Position(p)) = success.position_option else {
        panic!("a position")
    };
    assert_eq!(p.commit_position, p.prepare_position);

    for structured in [false, true] {
        let responses = read(
            &node.channel,
            read_options(stream_from_start("order-1"), Some(10), false, structured),
        )
        .await
        .unwrap();
        let got = events(&responses);
        assert_eq!(got.len(), 2);
        let want_first = if structured {
            structured_id(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210)
        } else {
            Some(Uuid {
                value: Some(uuid::Value::String(
                    "01234567-89ab-cdef-fedc-ba9876543210".into(),
                )),
            })
        };
        assert_eq!(got[0].id, want_first);
        assert_eq!(got[0].metadata["type"], "OrderPosted");
        assert_eq!(got[0].metadata["content-type"], "application/json");
        assert_eq!(&got[0].custom_metadata[..], b"{\"actor\":\"test\"}");
        assert_eq!(got[1].stream_revision, 1);
        // The last event's position is the one the append acknowledged.
        assert_eq!(got[1].commit_position, p.commit_position);
        // `created`: 100 ns ticks since the Unix epoch, within this decade.
        let ticks: i64 = got[0].metadata["created"].parse().unwrap();
        let secs = ticks / 10_000_000;
        assert!((1_700_000_000..2_100_000_000).contains(&secs), "{ticks}");
    }
    let _ = node.shutdown.send(());
}

#[tokio::test]
async fn wrong_expectations_and_deleted_streams_are_reported_as_the_clients_decode_them() {
    let node = node().await;
    use append_req::options::ExpectedStreamRevision as E;
    append(
        &node.channel,
        ADMIN,
        vec![
            options("order-2", E::Any(Empty {})),
            proposed(string_id(10), "A", "{}"),
        ],
    )
    .await
    .unwrap();

    // Append: a response variant with both encodings.
    let r = append(
        &node.channel,
        ADMIN,
        vec![
            options("order-2", E::Revision(5)),
            proposed(string_id(11), "A", "{}"),
        ],
    )
    .await
    .unwrap();
    let append_resp::Result::WrongExpectedVersion(wev) = r else {
        panic!("expected a wrong expected version, got {r:?}")
    };
    use append_resp::wrong_expected_version as w;
    assert_eq!(
        wev.current_revision_option,
        Some(w::CurrentRevisionOption::CurrentRevision(0))
    );
    assert_eq!(
        wev.expected_revision_option,
        Some(w::ExpectedRevisionOption::ExpectedRevision(5))
    );
    assert_eq!(
        wev.current_revision_option_20_6_0,
        Some(w::CurrentRevisionOption2060::CurrentRevision2060(0))
    );

    // Delete with a wrong expectation: FAILED_PRECONDITION, the message the Python client
    // parses, and the trailers.
    let err = StreamsClient::new(node.channel.clone())
        .delete(bearer(
            ADMIN,
            DeleteReq {
                options: Some(delete_req::Options {
                    stream_identifier: stream("order-2"),
                    expected_stream_revision: Some(
                        delete_req::options::ExpectedStreamRevision::Revision(3),
                    ),
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.message(),
        "Delete failed due to WrongExpectedVersion. Stream: order-2, Expected version: 3, Actual version: 0"
    );
    assert_eq!(trailer(&err, "exception"), Some("wrong-expected-version"));
    assert_eq!(trailer(&err, "actual-version"), Some("0"));

    // Tombstone, then append and read: stream-deleted.
    StreamsClient::new(node.channel.clone())
        .tombstone(bearer(
            ADMIN,
            TombstoneReq {
                options: Some(tombstone_req::Options {
                    stream_identifier: stream("order-2"),
                    expected_stream_revision: Some(
                        tombstone_req::options::ExpectedStreamRevision::Any(Empty {}),
                    ),
                }),
            },
        ))
        .await
        .unwrap();
    let err = append(
        &node.channel,
        ADMIN,
        vec![
            options("order-2", E::Any(Empty {})),
            proposed(string_id(12), "A", "{}"),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(trailer(&err, "exception"), Some("stream-deleted"));
    assert_eq!(trailer(&err, "stream-name"), Some("order-2"));
    assert!(err.message().contains("is deleted"), "{}", err.message());
    let err = read(
        &node.channel,
        read_options(stream_from_start("order-2"), Some(10), false, false),
    )
    .await
    .unwrap_err();
    assert_eq!(trailer(&err, "exception"), Some("stream-deleted"));

    // A stream that never existed: a stream_not_found message, not an error.
    let responses = read(
        &node.channel,
        read_options(stream_from_start("order-none"), Some(10), false, false),
    )
    .await
    .unwrap();
    assert!(matches!(
        responses.as_slice(),
        [ReadResp {
            content: Some(read_resp::Content::StreamNotFound(_))
        }]
    ));
    let _ = node.shutdown.send(());
}

fn batch(
    correlation: u128,
    name: &str,
    expected: Option<batch_append_req::options::ExpectedStreamPosition>,
    events: &[u128],
    is_final: bool,
) -> BatchAppendReq {
    BatchAppendReq {
        correlation_id: string_id(correlation),
        options: expected.map(|e| batch_append_req::Options {
            stream_identifier: stream(name),
            expected_stream_position: Some(e),
            deadline_option: None,
        }),
        proposed_messages: events
            .iter()
            .map(|&id| batch_append_req::ProposedMessage {
                id: string_id(id),
                metadata: json_metadata("Batched"),
                custom_metadata: Default::default(),
                data: b"{}".to_vec().into(),
            })
            .collect(),
        is_final,
    }
}

async fn batch_call(channel: &Channel, requests: Vec<BatchAppendReq>) -> Vec<BatchAppendResp> {
    batch_call_as(channel, ADMIN, requests).await
}

async fn batch_call_as(
    channel: &Channel,
    token: &str,
    requests: Vec<BatchAppendReq>,
) -> Vec<BatchAppendResp> {
    let mut responses = StreamsClient::new(channel.clone())
        .batch_append(bearer(token, tokio_stream::iter(requests)))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = responses.next().await {
        out.push(r.unwrap());
    }
    out
}

#[tokio::test]
async fn batch_appends_accumulate_parts_keep_order_and_pack_errors_as_any() {
    let node = node().await;
    use batch_append_req::options::ExpectedStreamPosition as P;
    // Two batches with interleaved parts, then 40 batches to one stream with exact
    // expectations sent back to back: they must apply in order.
    let mut requests = vec![
        batch(1, "order-b1", Some(P::NoStream(())), &[101, 102], false),
        batch(2, "order-b2", Some(P::Any(())), &[201], false),
        batch(1, "order-b1", None, &[103], true),
        batch(2, "order-b2", None, &[202], true),
    ];
    for i in 0..40u128 {
        let expected = if i == 0 {
            P::NoStream(())
        } else {
            P::StreamPosition(i as u64 - 1)
        };
        requests.push(batch(
            100 + i,
            "order-seq",
            Some(expected),
            &[1000 + i],
            true,
        ));
    }
    // A wrong expectation, and a deadline already passed.
    requests.push(batch(
        900,
        "order-b1",
        Some(P::StreamPosition(7)),
        &[901],
        true,
    ));
    let mut late = batch(901, "order-b3", Some(P::Any(())), &[902], true);
    late.options.as_mut().unwrap().deadline_option = Some(
        batch_append_req::options::DeadlineOption::Deadline(prost_types::Duration {
            seconds: 0,
            nanos: 0,
        }),
    );
    requests.push(late);
    let responses = batch_call(&node.channel, requests).await;
    assert_eq!(responses.len(), 44);
    let by_id: HashMap<_, _> = responses
        .iter()
        .map(|r| (format!("{:?}", r.correlation_id), r))
        .collect();
    let get = |n: u128| by_id[&format!("{:?}", string_id(n))];

    use batch_append_resp::success::CurrentRevisionOption as C;
    let ok = |r: &BatchAppendResp| match &r.result {
        Some(batch_append_resp::Result::Success(s)) => s.current_revision_option,
        other => panic!("expected success, got {other:?}"),
    };
    assert_eq!(ok(get(1)), Some(C::CurrentRevision(2)));
    assert_eq!(get(1).stream_identifier, stream("order-b1"));
    assert_eq!(ok(get(2)), Some(C::CurrentRevision(1)));
    for i in 0..40u128 {
        assert_eq!(
            ok(get(100 + i)),
            Some(C::CurrentRevision(i as u64)),
            "batch {i}"
        );
    }
    let Some(batch_append_resp::Result::Error(wev)) = &get(900).result else {
        panic!("expected an error")
    };
    assert_eq!(wev.code, Code::AlreadyExists as i32);
    let any = wev.details.as_ref().unwrap();
    assert_eq!(
        any.type_url,
        "type.googleapis.com/event_store.client.WrongExpectedVersion"
    );
    let detail = WrongExpectedVersion::decode(&any.value[..]).unwrap();
    use daojia_server::esdb::proto::event_store::client::wrong_expected_version as w;
    assert_eq!(
        detail.current_stream_revision_option,
        Some(w::CurrentStreamRevisionOption::CurrentStreamRevision(2))
    );
    let Some(batch_append_resp::Result::Error(timeout)) = &get(901).result else {
        panic!("expected a timeout")
    };
    assert_eq!(timeout.code, Code::DeadlineExceeded as i32);
    assert!(
        timeout
            .details
            .as_ref()
            .unwrap()
            .type_url
            .ends_with(".Timeout")
    );

    // Nothing of the failed batches was written.
    let written = events(
        &read(
            &node.channel,
            read_options(stream_from_start("order-b3"), Some(10), false, false),
        )
        .await
        .unwrap(),
    )
    .len();
    assert_eq!(written, 0);
    let _ = node.shutdown.send(());
}

#[tokio::test]
async fn bad_requests_get_a_clear_status_and_append_nothing() {
    let node = node().await;
    let before = all_events(&node.channel).await;
    use append_req::options::ExpectedStreamRevision as E;
    let no_type = AppendReq {
        content: Some(append_req::Content::ProposedMessage(
            append_req::ProposedMessage {
                id: string_id(1),
                metadata: HashMap::from([("content-type".into(), "application/json".into())]),
                custom_metadata: Default::default(),
                data: b"{}".to_vec().into(),
            },
        )),
    };
    let mut xml = proposed(string_id(2), "A", "<a/>");
    if let Some(append_req::Content::ProposedMessage(m)) = &mut xml.content {
        m.metadata.insert("content-type".into(), "text/xml".into());
    }
    let big = "x".repeat(3 << 20);
    let oversized: Vec<AppendReq> = std::iter::once(options("order-big", E::Any(Empty {})))
        .chain((0..6).map(|i| proposed(string_id(50 + i), "Big", &big)))
        .collect();
    let cases: Vec<(&str, Vec<AppendReq>, Code, Option<&str>)> = vec![
        (
            "no options first",
            vec![proposed(string_id(3), "A", "{}")],
            Code::InvalidArgument,
            None,
        ),
        (
            "options twice",
            vec![
                options("order-x", E::Any(Empty {})),
                options("order-x", E::Any(Empty {})),
            ],
            Code::InvalidArgument,
            None,
        ),
        (
            "no expectation",
            vec![AppendReq {
                content: Some(append_req::Content::Options(append_req::Options {
                    stream_identifier: stream("order-x"),
                    expected_stream_revision: None,
                })),
            }],
            Code::InvalidArgument,
            None,
        ),
        (
            "empty stream name",
            vec![options("", E::Any(Empty {}))],
            Code::InvalidArgument,
            None,
        ),
        (
            "no type",
            vec![options("order-x", E::Any(Empty {})), no_type],
            Code::InvalidArgument,
            Some("missing-required-metadata-property"),
        ),
        (
            "unknown content type",
            vec![options("order-x", E::Any(Empty {})), xml],
            Code::InvalidArgument,
            None,
        ),
        (
            "malformed uuid",
            vec![
                options("order-x", E::Any(Empty {})),
                proposed(
                    Some(Uuid {
                        value: Some(uuid::Value::String("not-a-uuid".into())),
                    }),
                    "A",
                    "{}",
                ),
            ],
            Code::InvalidArgument,
            None,
        ),
        (
            "no id",
            vec![
                options("order-x", E::Any(Empty {})),
                proposed(None, "A", "{}"),
            ],
            Code::InvalidArgument,
            None,
        ),
        (
            "over 16 MiB",
            oversized,
            Code::InvalidArgument,
            Some("maximum-append-size-exceeded"),
        ),
    ];
    for (what, messages, code, exception) in cases {
        let err = append(&node.channel, ADMIN, messages).await.unwrap_err();
        assert_eq!(err.code(), code, "{what}: {err:?}");
        assert!(!err.message().is_empty(), "{what}");
        if let Some(exception) = exception {
            assert_eq!(trailer(&err, "exception"), Some(exception), "{what}");
        }
    }

    // Reads.
    use read_req::options::{self, FilterOptions, filter_options};
    let mut bad_direction = read_options(all_from(None), Some(1), false, false);
    bad_direction.options.as_mut().unwrap().read_direction = 7;
    let mut filtered_stream = read_options(stream_from_start("order-x"), Some(1), false, false);
    let filter = |regex: &str| {
        options::FilterOption::Filter(FilterOptions {
            filter: Some(filter_options::Filter::StreamIdentifier(
                filter_options::Expression {
                    regex: regex.into(),
                    prefix: vec![],
                },
            )),
            window: Some(filter_options::Window::Max(10)),
            checkpoint_interval_multiplier: 1,
        })
    };
    filtered_stream.options.as_mut().unwrap().filter_option = Some(filter("^order"));
    let mut empty_filter = read_options(all_from(None), Some(1), false, false);
    empty_filter.options.as_mut().unwrap().filter_option = Some(filter(""));
    let mut bad_regex = read_options(all_from(None), Some(1), false, false);
    bad_regex.options.as_mut().unwrap().filter_option = Some(filter("(unclosed"));
    let backwards_subscription = read_options(all_from(None), None, true, false);
    let reads = [
        ("no options", ReadReq { options: None }),
        ("bad direction", bad_direction),
        ("filter on a stream read", filtered_stream),
        ("filter without regex or prefix", empty_filter),
        ("invalid regex", bad_regex),
        ("backwards subscription", backwards_subscription),
    ];
    for (what, request) in reads {
        let err = read(&node.channel, request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
    }
    let err = StreamsClient::new(node.channel.clone())
        .delete(bearer(ADMIN, DeleteReq { options: None }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // A BatchAppend part without a correlation id ends the call.
    let mut no_correlation = batch(
        1,
        "order-x",
        Some(batch_append_req::options::ExpectedStreamPosition::Any(())),
        &[7],
        true,
    );
    no_correlation.correlation_id = None;
    let mut responses = StreamsClient::new(node.channel.clone())
        .batch_append(bearer(ADMIN, tokio_stream::iter(vec![no_correlation])))
        .await
        .unwrap()
        .into_inner();
    let err = responses.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    assert_eq!(
        all_events(&node.channel).await,
        before,
        "a refused request appended"
    );
    let _ = node.shutdown.send(());
}

#[tokio::test]
async fn analytics_reads_admin_writes_other_roles_and_bad_credentials_are_refused() {
    let node = node().await;
    use append_req::options::ExpectedStreamRevision as E;
    let msgs = |id| {
        vec![
            options("order-r", E::Any(Empty {})),
            proposed(string_id(id), "A", "{}"),
        ]
    };
    let mut streams = StreamsClient::new(node.channel.clone());

    // Admin over Basic credentials (actor:token) writes.
    streams
        .append(basic("root", ADMIN, tokio_stream::iter(msgs(1))))
        .await
        .unwrap();
    // Analytics reads, over Basic and Bearer, but may not write.
    let read_all = || read_options(all_from(None), Some(100), false, false);
    for request in [
        basic("bi", ANALYTICS, read_all()),
        bearer(ANALYTICS, read_all()),
    ] {
        let mut s = streams.read(request).await.unwrap().into_inner();
        assert!(s.next().await.unwrap().is_ok());
    }
    let err = streams
        .append(basic("bi", ANALYTICS, tokio_stream::iter(msgs(2))))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(trailer(&err, "exception"), Some("access-denied"));
    // BatchAppend answers write access per batch, as EventStoreDB does: the call is open and
    // each batch is answered AccessDenied, whenever the client sends it; nothing is written.
    let before = all_events(&node.channel).await;
    let denied = batch_call_as(
        &node.channel,
        ANALYTICS,
        vec![
            batch(
                7,
                "order-r",
                Some(batch_append_req::options::ExpectedStreamPosition::Any(())),
                &[71],
                true,
            ),
            batch(
                8,
                "order-r",
                Some(batch_append_req::options::ExpectedStreamPosition::Any(())),
                &[81],
                true,
            ),
        ],
    )
    .await;
    assert_eq!(denied.len(), 2);
    for r in &denied {
        let Some(batch_append_resp::Result::Error(e)) = &r.result else {
            panic!("expected AccessDenied, got {r:?}")
        };
        assert_eq!(e.code, Code::PermissionDenied as i32);
        assert_eq!(
            e.details.as_ref().map(|d| d.type_url.as_str()),
            Some("type.googleapis.com/event_store.client.AccessDenied")
        );
    }
    assert_eq!(all_events(&node.channel).await, before);
    // An app backend may neither read nor write the raw log.
    let err = streams.read(bearer(APP, read_all())).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Wrong password, wrong user for a token, no credentials: unauthenticated.
    for request in [
        basic("bi", "analytics-token-wrong-0000", read_all()),
        basic("root", ANALYTICS, read_all()),
        Request::new(read_all()),
    ] {
        let err = streams.read(request).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    let _ = node.shutdown.send(());
}

#[tokio::test]
async fn features_gossip_and_unknown_methods_answer_as_a_single_leader() {
    let node = node().await;
    // Clients ask for features and members while connecting, before any credentials.
    let features = ServerFeaturesClient::new(node.channel.clone())
        .get_supported_methods(Request::new(Empty {}))
        .await
        .unwrap()
        .into_inner();
    let version: Vec<u64> = features
        .event_store_server_version
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(version.len(), 3, "semver expected");
    assert!(
        features
            .methods
            .iter()
            .any(|m| m.method_name == "batchappend"
                && m.service_name == "event_store.client.streams.streams")
    );

    let cluster = GossipClient::new(node.channel.clone())
        .read(Request::new(Empty {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cluster.members.len(), 1);
    let member = &cluster.members[0];
    assert!(member.is_alive);
    assert_eq!(member.state, 8, "leader");
    assert_eq!(
        member.http_end_point.as_ref().unwrap().port,
        u32::from(node.addr.port())
    );

    // A method of the protocol daojia does not serve.
    let mut grpc = tonic::client::Grpc::new(node.channel.clone());
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/event_store.client.users.Users/Details");
    let err = grpc
        .unary::<Empty, Empty, _>(
            bearer(ADMIN, Empty {}),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    let _ = node.shutdown.send(());
}

#[tokio::test]
async fn a_filtered_subscription_confirms_then_catches_up_and_its_checkpoints_resume_exactly() {
    let node = node().await;
    use append_req::options::ExpectedStreamRevision as E;
    // 30 streams of 2 events; only `order-` streams match the filter.
    for i in 0..30u128 {
        let name = if i % 3 == 0 {
            format!("order-{i}")
        } else {
            format!("other-{i}")
        };
        append(
            &node.channel,
            ADMIN,
            vec![
                options(&name, E::Any(Empty {})),
                proposed(string_id(2 * i + 1), "A", "{}"),
                proposed(string_id(2 * i + 2), "B", "{}"),
            ],
        )
        .await
        .unwrap();
    }
    use read_req::options::{self, FilterOptions, filter_options};
    let subscribe = |from: Option<u64>| {
        let mut request = read_options(all_from(from), None, false, false);
        request.options.as_mut().unwrap().filter_option =
            Some(options::FilterOption::Filter(FilterOptions {
                filter: Some(filter_options::Filter::StreamIdentifier(
                    filter_options::Expression {
                        regex: String::new(),
                        prefix: vec!["order-".into()],
                    },
                )),
                window: Some(filter_options::Window::Max(4)),
                checkpoint_interval_multiplier: 2,
            }));
        request
    };
    let mut sub = StreamsClient::new(node.channel.clone())
        .read(bearer(ANALYTICS, subscribe(None)))
        .await
        .unwrap()
        .into_inner();
    let first = sub.next().await.unwrap().unwrap();
    assert!(matches!(
        first.content,
        Some(read_resp::Content::Confirmation(_))
    ));
    let mut seen = Vec::new();
    let mut checkpoints = Vec::new();
    loop {
        match sub.next().await.unwrap().unwrap().content {
            Some(read_resp::Content::Event(e)) => {
                let e = e.event.unwrap();
                assert!(
                    e.stream_identifier
                        .as_ref()
                        .unwrap()
                        .stream_name
                        .starts_with(b"order-")
                );
                seen.push(e.commit_position);
            }
            Some(read_resp::Content::Checkpoint(c)) => {
                checkpoints.push((c.commit_position, seen.len()))
            }
            Some(read_resp::Content::CaughtUp(_)) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen.len(), 20);
    assert!(
        !checkpoints.is_empty(),
        "a checkpoint every 8 events considered"
    );
    drop(sub);
    // Resuming after each checkpoint gives exactly the events not yet seen at that checkpoint.
    for (checkpoint, seen_before) in checkpoints {
        let mut sub = StreamsClient::new(node.channel.clone())
            .read(bearer(ANALYTICS, subscribe(Some(checkpoint))))
            .await
            .unwrap()
            .into_inner();
        let mut resumed = Vec::new();
        while let Some(item) = sub.next().await {
            match item.unwrap().content {
                Some(read_resp::Content::Event(e)) => {
                    resumed.push(e.event.unwrap().commit_position)
                }
                Some(read_resp::Content::CaughtUp(_)) => break,
                _ => {}
            }
        }
        assert_eq!(
            resumed,
            seen[seen_before..],
            "resumed after checkpoint {checkpoint}"
        );
    }
    let _ = node.shutdown.send(());
}
