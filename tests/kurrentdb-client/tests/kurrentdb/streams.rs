//! Soft delete, tombstone and stream metadata.

use kurrentdb::{
    AppendToStreamOptions, BatchAppendOptions, Client, DeleteStreamOptions, Error, ReadAllOptions,
    ReadStreamOptions, StreamMetadata, StreamMetadataResult, StreamPosition, StreamState,
    SubscribeToStreamOptions, SubscriptionFilter, TombstoneStreamOptions,
};

use crate::harness::{Server, collect, event, n_of};

async fn read(client: &Client, stream: &str) -> kurrentdb::Result<Vec<(u64, u64)>> {
    let read = client
        .read_stream(stream, &ReadStreamOptions::default())
        .await?;
    Ok(collect(read)
        .await?
        .iter()
        .map(|e| (e.revision, n_of(e)))
        .collect())
}

fn expecting(state: StreamState) -> AppendToStreamOptions {
    AppendToStreamOptions::default().stream_state(state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stream_reads_as_not_found_and_an_append_reopens_it_where_it_was() {
    let server = Server::insecure().await;
    let client = server.client();
    let stream = "order-deleted";
    let written = client
        .append_to_stream(
            stream,
            &expecting(StreamState::NoStream),
            vec![event("A", 0), event("A", 1)],
        )
        .await
        .unwrap();

    // A stale expectation is refused and deletes nothing.
    let err = client
        .delete_stream(
            stream,
            &DeleteStreamOptions::default().stream_state(StreamState::StreamRevision(0)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Grpc { code, message } if *code as i32 == 9 && message.contains("Expected version: 0, Actual version: 1")),
        "{err:?}"
    );
    assert_eq!(read(&client, stream).await.unwrap(), [(0, 0), (1, 1)]);

    let deleted = client
        .delete_stream(
            stream,
            &DeleteStreamOptions::default().stream_state(StreamState::StreamRevision(1)),
        )
        .await
        .unwrap()
        .expect("a delete position");
    assert!(deleted.commit > written.position.commit);
    let err = read(&client, stream).await.unwrap_err();
    assert!(matches!(err, Error::ResourceNotFound), "{err:?}");
    // The delete is a `$tb` in the stream's metadata, past every event.
    let latest = ReadStreamOptions::default()
        .position(StreamPosition::End)
        .max_count(1);
    let StreamMetadataResult::Success(marker) =
        client.get_stream_metadata(stream, &latest).await.unwrap()
    else {
        panic!("a deletion marker")
    };
    assert!(
        marker.metadata().truncate_before >= Some(2),
        "{:?}",
        marker.metadata()
    );

    // no_stream succeeds on a soft-deleted stream, and revisions continue.
    let reopened = client
        .append_to_stream(stream, &expecting(StreamState::NoStream), event("B", 2))
        .await
        .unwrap();
    assert_eq!(reopened.next_expected_version, 2);
    assert_eq!(read(&client, stream).await.unwrap(), [(2, 2)]);
    let StreamMetadataResult::Success(reopened) =
        client.get_stream_metadata(stream, &latest).await.unwrap()
    else {
        panic!("metadata after reopening")
    };
    assert_eq!(reopened.metadata().truncate_before, Some(2));
    let more = client
        .append_to_stream(
            stream,
            &expecting(StreamState::StreamRevision(2)),
            event("B", 3),
        )
        .await
        .unwrap();
    assert_eq!(more.next_expected_version, 3);
    assert_eq!(read(&client, stream).await.unwrap(), [(2, 2), (3, 3)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstoned_stream_refuses_reads_appends_and_subscriptions() {
    let server = Server::insecure().await;
    let client = server.client();
    let stream = "order-tombstoned";
    client
        .append_to_stream(stream, &expecting(StreamState::NoStream), event("A", 0))
        .await
        .unwrap();
    let err = client
        .tombstone_stream(
            stream,
            &TombstoneStreamOptions::default().stream_state(StreamState::StreamRevision(5)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Grpc { code, .. } if *code as i32 == 9),
        "a stale tombstone is refused: {err:?}"
    );
    client
        .tombstone_stream(stream, &TombstoneStreamOptions::default())
        .await
        .unwrap()
        .expect("a tombstone position");

    let err = read(&client, stream).await.unwrap_err();
    assert!(matches!(err, Error::ResourceDeleted), "read: {err:?}");
    for state in [
        StreamState::Any,
        StreamState::NoStream,
        StreamState::StreamRevision(0),
    ] {
        let err = client
            .append_to_stream(stream, &expecting(state), event("B", 1))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::ResourceDeleted),
            "append {state:?}: {err:?}"
        );
    }
    let err = client
        .tombstone_stream(stream, &TombstoneStreamOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ResourceDeleted),
        "tombstone again: {err:?}"
    );
    let err = client
        .delete_stream(stream, &DeleteStreamOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ResourceDeleted), "delete: {err:?}");

    let batch = client
        .batch_append(&BatchAppendOptions::default())
        .await
        .unwrap();
    let err = batch
        .append_to_stream(stream, StreamState::Any, vec![event("B", 1)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Grpc { code, message } if *code as i32 == 5 && message == "StreamDeleted"),
        "batch append: {err:?}"
    );

    for from in [StreamPosition::Start, StreamPosition::End] {
        let mut subscription = client
            .subscribe_to_stream(
                stream,
                &SubscribeToStreamOptions::default().start_from(from),
            )
            .await;
        let err = loop {
            match subscription.next_subscription_event().await {
                Ok(kurrentdb::SubscriptionEvent::Confirmed(_)) => continue,
                Ok(other) => panic!("subscription to a tombstoned stream: {other:?}"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, Error::ResourceDeleted), "subscribe: {err:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstoning_a_stream_ends_its_live_subscriptions() {
    let server = Server::insecure().await;
    let client = server.client();
    let stream = "order-tombstoned-live";
    client
        .append_to_stream(stream, &expecting(StreamState::NoStream), event("A", 0))
        .await
        .unwrap();
    let mut subscription = client
        .subscribe_to_stream(
            stream,
            &SubscribeToStreamOptions::default().start_from(StreamPosition::Start),
        )
        .await;
    let mut seen = Vec::new();
    loop {
        match subscription.next_subscription_event().await.unwrap() {
            kurrentdb::SubscriptionEvent::EventAppeared(e) => {
                seen.push(n_of(e.event.as_ref().unwrap()))
            }
            kurrentdb::SubscriptionEvent::CaughtUp(_) => break,
            _ => {}
        }
    }
    assert_eq!(seen, [0]);
    client
        .tombstone_stream(stream, &TombstoneStreamOptions::default())
        .await
        .unwrap();
    let ended = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        subscription.next_subscription_event(),
    )
    .await
    .expect("the subscription went on after its stream was tombstoned");
    assert!(matches!(ended, Err(Error::ResourceDeleted)), "{ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_metadata_is_set_read_back_and_enforced() {
    let server = Server::insecure().await;
    let client = server.client();
    let stream = "order-meta";
    let latest = ReadStreamOptions::default()
        .position(StreamPosition::End)
        .max_count(1);

    let none = client.get_stream_metadata(stream, &latest).await.unwrap();
    assert!(none.is_not_found(), "{none:?}");

    client
        .append_to_stream(
            stream,
            &AppendToStreamOptions::default(),
            (0..5).map(|n| event("A", n)).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    let max_two = StreamMetadata::builder()
        .max_count(2)
        .insert_custom_property("owner", "analytics")
        .insert_custom_property("retention", serde_json::json!({ "days": 30 }))
        .build();
    let set = client
        .set_stream_metadata(stream, &expecting(StreamState::NoStream), &max_two)
        .await
        .unwrap();
    assert_eq!(set.next_expected_version, 0);

    let StreamMetadataResult::Success(got) =
        client.get_stream_metadata(stream, &latest).await.unwrap()
    else {
        panic!("metadata expected")
    };
    assert_eq!(got.stream_name(), "$$order-meta");
    assert_eq!(got.version(), 0);
    assert_eq!(got.metadata(), &max_two);
    assert_eq!(read(&client, stream).await.unwrap(), [(3, 3), (4, 4)]);

    // $tb replaces $maxCount: events before revision 1 are gone.
    let truncated = StreamMetadata::builder()
        .truncate_before(1)
        .insert_custom_property("owner", "ops")
        .build();
    client
        .set_stream_metadata(
            stream,
            &expecting(StreamState::StreamRevision(0)),
            &truncated,
        )
        .await
        .unwrap();
    let StreamMetadataResult::Success(got) =
        client.get_stream_metadata(stream, &latest).await.unwrap()
    else {
        panic!("metadata expected")
    };
    assert_eq!(got.version(), 1);
    assert_eq!(got.metadata().truncate_before, Some(1));
    assert_eq!(got.metadata().max_count, None);
    assert_eq!(
        got.metadata().custom_properties.get("owner"),
        Some(&serde_json::json!("ops"))
    );
    assert_eq!(
        read(&client, stream)
            .await
            .unwrap()
            .iter()
            .map(|(r, _)| *r)
            .collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );

    // Metadata events are in `$all`, in their `$$` stream, and system events by type.
    let all = collect(client.read_all(&Default::default()).await.unwrap())
        .await
        .unwrap();
    let metadata_events: Vec<(&str, &str)> = all
        .iter()
        .filter(|e| e.stream_id().starts_with("$$"))
        .map(|e| (e.stream_id(), e.event_type.as_str()))
        .collect();
    assert_eq!(
        metadata_events,
        [("$$order-meta", "$metadata"), ("$$order-meta", "$metadata")]
    );
    let user_events = collect(
        client
            .read_all(
                &ReadAllOptions::default()
                    .filter(SubscriptionFilter::on_event_type().exclude_system_events()),
            )
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(user_events.len(), 5);

    // A stale expectation on the metadata stream is a wrong expected version like any other.
    let err = client
        .set_stream_metadata(stream, &expecting(StreamState::NoStream), &truncated)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongExpectedVersion { .. }), "{err:?}");
}
