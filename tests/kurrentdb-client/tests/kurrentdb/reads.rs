//! Reads of a stream and of `$all`, both directions, from every kind of start, with counts and
//! filters; events come back as written (ids in both UUID encodings, data, metadata, times).

use std::time::{SystemTime, UNIX_EPOCH};

use kurrentdb::{
    AppendToStreamOptions, Client, Error, Position, ReadAllOptions, ReadStreamOptions,
    RecordedEvent, StreamPosition, StreamState, SubscriptionFilter,
};

use crate::harness::{Server, collect, event, n_of};

async fn read_stream(client: &Client, stream: &str, options: ReadStreamOptions) -> Vec<u64> {
    let read = client.read_stream(stream, &options).await.unwrap();
    collect(read).await.unwrap().iter().map(n_of).collect()
}

async fn read_all(client: &Client, options: ReadAllOptions) -> Vec<RecordedEvent> {
    collect(client.read_all(&options).await.unwrap())
        .await
        .unwrap()
}

fn streams_of(events: &[RecordedEvent]) -> Vec<(String, u64)> {
    events
        .iter()
        .map(|e| (e.stream_id().to_string(), n_of(e)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_reads_go_both_ways_from_start_end_and_revisions_with_counts() {
    let server = Server::insecure().await;
    let client = server.client();
    let stream = "order-reads";
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let custom = br#"{"correlation_id":"c-1"}"#;
    let first = event("Posted", 0).metadata(custom.as_slice().into());
    let mut events = vec![first];
    events.extend((1..5).map(|n| event("Updated", n)));
    let written = client
        .append_to_stream(stream, &AppendToStreamOptions::default(), events)
        .await
        .unwrap();
    assert_eq!(written.next_expected_version, 4);

    let all = ReadStreamOptions::default();
    assert_eq!(
        read_stream(&client, stream, all.clone()).await,
        [0, 1, 2, 3, 4]
    );
    assert_eq!(
        read_stream(&client, stream, all.clone().max_count(2)).await,
        [0, 1]
    );
    let from_end = all.clone().position(StreamPosition::End);
    assert_eq!(
        read_stream(&client, stream, from_end.clone()).await,
        [4, 3, 2, 1, 0]
    );
    assert_eq!(
        read_stream(&client, stream, from_end.clone().max_count(2)).await,
        [4, 3]
    );
    let at_2 = all.clone().position(StreamPosition::Position(2));
    assert_eq!(
        read_stream(&client, stream, at_2.clone().forwards()).await,
        [2, 3, 4]
    );
    assert_eq!(
        read_stream(&client, stream, at_2.clone().backwards()).await,
        [2, 1, 0]
    );
    assert_eq!(
        read_stream(&client, stream, at_2.backwards().max_count(1)).await,
        [2]
    );
    // Forwards from the end, backwards from the start and past the end: nothing.
    assert!(
        read_stream(&client, stream, from_end.forwards())
            .await
            .is_empty()
    );
    assert!(
        read_stream(
            &client,
            stream,
            all.clone().position(StreamPosition::Position(9))
        )
        .await
        .is_empty()
    );

    // What came back is what was written.
    let events = collect(client.read_stream(stream, &all).await.unwrap())
        .await
        .unwrap();
    let first = &events[0];
    assert_eq!(first.stream_id(), stream);
    assert_eq!(first.event_type, "Posted");
    assert!(first.is_json);
    assert_eq!(first.custom_metadata.as_ref(), custom.as_slice());
    assert_eq!(
        first.metadata.get("content-type").unwrap(),
        "application/json"
    );
    // `created` is 100 ns ticks since the Unix epoch: the client turns it into now-ish.
    let created = first.created.timestamp();
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (before - 1..=after + 1).contains(&created),
        "created {created} not within {before}..={after}"
    );
    // Positions increase and the last one is the append's.
    assert!(
        events
            .windows(2)
            .all(|w| w[0].position.commit < w[1].position.commit)
    );
    assert_eq!(events[4].position, written.position);
    assert_eq!(events[4].position.commit, events[4].position.prepare);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_events_come_back_as_written() {
    let server = Server::insecure().await;
    let client = server.client();
    let payload: Vec<u8> = (0..=255u8).collect();
    let id = uuid::Uuid::new_v4();
    client
        .append_to_stream(
            "order-binary",
            &AppendToStreamOptions::default(),
            kurrentdb::EventData::binary("Scanned", payload.clone().into()).id(id),
        )
        .await
        .unwrap();
    let events = collect(
        client
            .read_stream("order-binary", &ReadStreamOptions::default())
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!((e.id, e.event_type.as_str()), (id, "Scanned"));
    assert!(!e.is_json);
    assert_eq!(
        e.metadata.get("content-type").map(String::as_str),
        Some("application/octet-stream")
    );
    assert_eq!(e.data.as_ref(), payload.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream_reads_as_not_found() {
    let server = Server::insecure().await;
    let client = server.client();
    for options in [
        ReadStreamOptions::default(),
        ReadStreamOptions::default().position(StreamPosition::End),
    ] {
        let mut read = client.read_stream("order-missing", &options).await.unwrap();
        let err = read.next().await.unwrap_err();
        assert!(matches!(err, Error::ResourceNotFound), "{err:?}");
    }
}

/// Five events in three streams: (order-1, 0) Posted, (worker-1, 1) ShiftStarted,
/// (order-1, 2) Updated, (customer-1, 3) Registered, (order-2, 4) Posted.
async fn five_events(client: &Client) -> Vec<Position> {
    let mut positions = Vec::new();
    for (stream, event_type, n) in [
        ("order-1", "Posted", 0),
        ("worker-1", "ShiftStarted", 1),
        ("order-1", "Updated", 2),
        ("customer-1", "Registered", 3),
        ("order-2", "Posted", 4),
    ] {
        let written = client
            .append_to_stream(
                stream,
                &AppendToStreamOptions::default(),
                event(event_type, n),
            )
            .await
            .unwrap();
        positions.push(written.position);
    }
    positions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_reads_go_both_ways_from_start_end_and_positions() {
    let server = Server::insecure().await;
    let client = server.client();
    let positions = five_events(&client).await;
    let ns = |events: Vec<RecordedEvent>| events.iter().map(n_of).collect::<Vec<_>>();

    let forwards = read_all(&client, ReadAllOptions::default()).await;
    assert_eq!(
        streams_of(&forwards),
        [
            ("order-1".to_string(), 0),
            ("worker-1".to_string(), 1),
            ("order-1".to_string(), 2),
            ("customer-1".to_string(), 3),
            ("order-2".to_string(), 4),
        ]
    );
    let read_positions: Vec<Position> = forwards.iter().map(|e| e.position).collect();
    assert_eq!(read_positions, positions);
    assert_eq!(forwards[2].revision, 1, "order-1's second event");

    assert_eq!(
        ns(read_all(&client, ReadAllOptions::default().max_count(2)).await),
        [0, 1]
    );
    let from_end = ReadAllOptions::default().position(StreamPosition::End);
    assert_eq!(
        ns(read_all(&client, from_end.clone()).await),
        [4, 3, 2, 1, 0]
    );
    assert_eq!(
        ns(read_all(&client, from_end.clone().max_count(3)).await),
        [4, 3, 2]
    );
    // Forwards from a position includes its event; backwards from it starts before it.
    let at_third = ReadAllOptions::default().position(StreamPosition::Position(positions[2]));
    assert_eq!(
        ns(read_all(&client, at_third.clone().forwards()).await),
        [2, 3, 4]
    );
    assert_eq!(ns(read_all(&client, at_third.backwards()).await), [1, 0]);
    assert!(read_all(&client, from_end.forwards()).await.is_empty());
    assert!(
        read_all(
            &client,
            ReadAllOptions::default()
                .position(StreamPosition::Start)
                .backwards()
        )
        .await
        .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_reads_filter_by_stream_and_event_type_prefixes_and_regexes() {
    let server = Server::insecure().await;
    let client = server.client();
    five_events(&client).await;
    let filtered = |filter: SubscriptionFilter| ReadAllOptions::default().filter(filter);
    let ns = |events: Vec<RecordedEvent>| events.iter().map(n_of).collect::<Vec<_>>();

    let orders = SubscriptionFilter::on_stream_name().add_prefix("order-");
    assert_eq!(
        ns(read_all(&client, filtered(orders.clone())).await),
        [0, 2, 4]
    );
    assert_eq!(
        ns(read_all(
            &client,
            filtered(orders.clone()).position(StreamPosition::End)
        )
        .await),
        [4, 2, 0]
    );
    assert_eq!(
        ns(read_all(&client, filtered(orders).max_count(2)).await),
        [0, 2]
    );
    let two_prefixes = SubscriptionFilter::on_stream_name()
        .add_prefix("worker-")
        .add_prefix("customer-");
    assert_eq!(ns(read_all(&client, filtered(two_prefixes)).await), [1, 3]);
    let posted = SubscriptionFilter::on_event_type().add_prefix("Post");
    assert_eq!(ns(read_all(&client, filtered(posted)).await), [0, 4]);
    let regex = SubscriptionFilter::on_stream_name().regex("^(worker|customer)-1$");
    assert_eq!(ns(read_all(&client, filtered(regex)).await), [1, 3]);
    let type_regex = SubscriptionFilter::on_event_type().regex("^(Updated|Registered)$");
    assert_eq!(ns(read_all(&client, filtered(type_regex)).await), [2, 3]);
    // The client's own "exclude system events" filter keeps every event written here.
    let no_system = SubscriptionFilter::on_event_type().exclude_system_events();
    assert_eq!(
        ns(read_all(&client, filtered(no_system)).await),
        [0, 1, 2, 3, 4]
    );
    let nothing = SubscriptionFilter::on_stream_name().add_prefix("nothing-");
    assert!(read_all(&client, filtered(nothing)).await.is_empty());

    // A regex the server cannot compile is refused, not ignored.
    let broken = SubscriptionFilter::on_stream_name().regex("(unclosed");
    let refused = match client.read_all(&filtered(broken)).await {
        Err(e) => Err(e),
        Ok(read) => collect(read).await,
    };
    assert!(
        matches!(&refused, Err(Error::Grpc { code, .. }) if *code as i32 == 3),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_ids_come_back_equal_in_both_uuid_encodings() {
    use daojia_server::esdb::proto::event_store::client::streams::read_req::options::{
        self as read_options, StreamOptions,
    };
    use daojia_server::esdb::proto::event_store::client::streams::{
        AppendReq, ReadReq, append_req, read_req, read_resp, streams_client::StreamsClient,
    };
    use daojia_server::esdb::proto::event_store::client::{
        Empty, StreamIdentifier, Uuid, uuid as wire_uuid,
    };

    let server = Server::insecure().await;
    let client = server.client();
    let stream = "order-uuids";
    // One id written by the Rust client (structured encoding on the wire)...
    let structured_id = uuid::Uuid::new_v4();
    client
        .append_to_stream(
            stream,
            &AppendToStreamOptions::default().stream_state(StreamState::NoStream),
            event("A", 0).id(structured_id),
        )
        .await
        .unwrap();
    // ...and one in the string encoding, as the Python clients send it, through the
    // protocol's generated client.
    let string_id = uuid::Uuid::new_v4();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw = StreamsClient::new(channel);
    let identifier = StreamIdentifier {
        stream_name: stream.as_bytes().to_vec().into(),
    };
    let messages = vec![
        AppendReq {
            content: Some(append_req::Content::Options(append_req::Options {
                stream_identifier: Some(identifier.clone()),
                expected_stream_revision: Some(
                    append_req::options::ExpectedStreamRevision::Revision(0),
                ),
            })),
        },
        AppendReq {
            content: Some(append_req::Content::ProposedMessage(
                append_req::ProposedMessage {
                    id: Some(Uuid {
                        value: Some(wire_uuid::Value::String(string_id.hyphenated().to_string())),
                    }),
                    metadata: [
                        ("type".to_string(), "B".to_string()),
                        ("content-type".to_string(), "application/json".to_string()),
                    ]
                    .into(),
                    custom_metadata: Vec::new().into(),
                    data: br#"{"n":1}"#.to_vec().into(),
                },
            )),
        },
    ];
    raw.append(tokio_stream::iter(messages)).await.unwrap();

    // The Rust client asks for strings.
    let events = collect(
        client
            .read_stream(stream, &ReadStreamOptions::default())
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, [structured_id, string_id]);

    // Structured, asked for explicitly.
    for (format, expect_structured) in [
        (
            read_options::uuid_option::Content::Structured(Empty {}),
            true,
        ),
        (read_options::uuid_option::Content::String(Empty {}), false),
    ] {
        let request = ReadReq {
            options: Some(read_req::Options {
                stream_option: Some(read_options::StreamOption::Stream(StreamOptions {
                    stream_identifier: Some(identifier.clone()),
                    revision_option: Some(read_options::stream_options::RevisionOption::Start(
                        Empty {},
                    )),
                })),
                read_direction: read_options::ReadDirection::Forwards as i32,
                resolve_links: false,
                count_option: Some(read_options::CountOption::Count(10)),
                filter_option: Some(read_options::FilterOption::NoFilter(Empty {})),
                uuid_option: Some(read_options::UuidOption {
                    content: Some(format),
                }),
                control_option: Some(read_options::ControlOption { compatibility: 1 }),
            }),
        };
        let mut responses = raw.read(request).await.unwrap().into_inner();
        let mut ids = Vec::new();
        while let Some(resp) = responses.message().await.unwrap() {
            let Some(read_resp::Content::Event(e)) = resp.content else {
                continue;
            };
            let wire = e.event.unwrap().id.unwrap().value.unwrap();
            let id = match wire {
                wire_uuid::Value::Structured(s) => {
                    assert!(expect_structured);
                    let bits = ((s.most_significant_bits as u64 as u128) << 64)
                        | s.least_significant_bits as u64 as u128;
                    uuid::Uuid::from_u128(bits)
                }
                wire_uuid::Value::String(text) => {
                    assert!(!expect_structured);
                    text.parse().unwrap()
                }
            };
            ids.push(id);
        }
        assert_eq!(ids, [structured_id, string_id], "{expect_structured}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_reads_page_through_without_gaps_or_repeats() {
    let server = Server::insecure().await;
    let client = server.client();
    // More than the server's pages (512 events), in one append; a second stream interleaved.
    let total = 1100u64;
    client
        .append_to_stream(
            "order-long",
            &AppendToStreamOptions::default(),
            (0..600).map(|n| event("A", n)).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    client
        .append_to_stream(
            "worker-between",
            &AppendToStreamOptions::default(),
            event("W", 9999),
        )
        .await
        .unwrap();
    client
        .append_to_stream(
            "order-long",
            &AppendToStreamOptions::default(),
            (600..total).map(|n| event("A", n)).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let upto = |a: u64, b: u64| (a..b).collect::<Vec<u64>>();
    let down = |a: u64, b: u64| (b..=a).rev().collect::<Vec<u64>>();

    let all = ReadStreamOptions::default();
    assert_eq!(
        read_stream(&client, "order-long", all.clone()).await,
        upto(0, total)
    );
    assert_eq!(
        read_stream(
            &client,
            "order-long",
            all.clone().position(StreamPosition::End)
        )
        .await,
        down(total - 1, 0)
    );
    assert_eq!(
        read_stream(
            &client,
            "order-long",
            all.clone()
                .position(StreamPosition::Position(1000))
                .backwards()
                .max_count(700)
        )
        .await,
        down(1000, 301)
    );
    assert_eq!(
        read_stream(
            &client,
            "order-long",
            all.clone()
                .position(StreamPosition::Position(100))
                .forwards()
                .max_count(520)
        )
        .await,
        upto(100, 620)
    );

    let ns = |events: Vec<RecordedEvent>| events.iter().map(n_of).collect::<Vec<_>>();
    let mut expected: Vec<u64> = upto(0, 600);
    expected.push(9999);
    expected.extend(upto(600, total));
    assert_eq!(
        ns(read_all(&client, ReadAllOptions::default()).await),
        expected
    );
    let reversed: Vec<u64> = expected.iter().rev().copied().collect();
    assert_eq!(
        ns(read_all(
            &client,
            ReadAllOptions::default().position(StreamPosition::End)
        )
        .await),
        reversed
    );
    let only_worker = SubscriptionFilter::on_stream_name().add_prefix("worker-");
    assert_eq!(
        ns(read_all(
            &client,
            ReadAllOptions::default()
                .filter(only_worker.clone())
                .position(StreamPosition::End)
        )
        .await),
        [9999]
    );
    assert_eq!(
        ns(read_all(&client, ReadAllOptions::default().filter(only_worker)).await),
        [9999]
    );
}
