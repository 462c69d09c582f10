//! Appends (single, many, batch) with every expectation, wrong expected versions and
//! idempotent retries.

use kurrentdb::{
    AppendToStreamOptions, BatchAppendOptions, CurrentRevision, Error, EventData,
    ReadStreamOptions, StreamState,
};

use crate::harness::{Server, collect, event, n_of};

fn expecting(state: StreamState) -> AppendToStreamOptions {
    AppendToStreamOptions::default().stream_state(state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_honour_every_expectation_and_report_wrong_versions() {
    let server = Server::insecure().await;
    let client = server.client();
    let stream = "order-appends";

    // stream_exists on a missing stream fails with the current state "no stream".
    let err = client
        .append_to_stream(stream, &expecting(StreamState::StreamExists), event("A", 0))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongExpectedVersion {
                expected: StreamState::StreamExists,
                current: CurrentRevision::NoStream
            }
        ),
        "{err:?}"
    );

    // One event with no_stream creates the stream at revision 0.
    let first = client
        .append_to_stream(stream, &expecting(StreamState::NoStream), event("A", 0))
        .await
        .unwrap();
    assert_eq!(first.next_expected_version, 0);
    assert_eq!(first.position.commit, first.position.prepare);

    // Many events with an exact expectation.
    let many = client
        .append_to_stream(
            stream,
            &expecting(StreamState::StreamRevision(0)),
            vec![event("B", 1), event("B", 2), event("B", 3)],
        )
        .await
        .unwrap();
    assert_eq!(many.next_expected_version, 3);
    assert!(many.position.commit > first.position.commit);

    // any and stream_exists on an existing stream.
    let any = client
        .append_to_stream(stream, &expecting(StreamState::Any), event("C", 4))
        .await
        .unwrap();
    assert_eq!(any.next_expected_version, 4);
    let exists = client
        .append_to_stream(stream, &expecting(StreamState::StreamExists), event("C", 5))
        .await
        .unwrap();
    assert_eq!(exists.next_expected_version, 5);
    assert!(exists.position.commit > any.position.commit);

    // A stale exact expectation and no_stream on an existing stream: expected and actual.
    let err = client
        .append_to_stream(
            stream,
            &expecting(StreamState::StreamRevision(1)),
            event("D", 99),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongExpectedVersion {
                expected: StreamState::StreamRevision(1),
                current: CurrentRevision::Current(5)
            }
        ),
        "{err:?}"
    );
    let err = client
        .append_to_stream(stream, &expecting(StreamState::NoStream), event("D", 99))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongExpectedVersion {
                expected: StreamState::NoStream,
                current: CurrentRevision::Current(5)
            }
        ),
        "{err:?}"
    );

    // Nothing of the refused appends was written.
    let events = collect(
        client
            .read_stream(stream, &ReadStreamOptions::default())
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    let ns: Vec<u64> = events.iter().map(n_of).collect();
    assert_eq!(ns, [0, 1, 2, 3, 4, 5]);
    let revisions: Vec<u64> = events.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, [0, 1, 2, 3, 4, 5]);
    assert_eq!(events[1].event_type, "B");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_the_same_event_ids_returns_the_first_result_and_writes_nothing() {
    let server = Server::insecure().await;
    let client = server.client();
    let stream = "order-idempotent";
    let ids = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()];
    let batch = || {
        ids.iter()
            .enumerate()
            .map(|(n, id)| event("Posted", n as u64).id(*id))
            .collect::<Vec<EventData>>()
    };

    let first = client
        .append_to_stream(stream, &expecting(StreamState::NoStream), batch())
        .await
        .unwrap();
    let again = client
        .append_to_stream(stream, &expecting(StreamState::NoStream), batch())
        .await
        .unwrap();
    assert_eq!(again.next_expected_version, first.next_expected_version);
    assert_eq!(again.position, first.position);

    // The same with an exact expectation, after more events.
    let next = [uuid::Uuid::new_v4()];
    let third = client
        .append_to_stream(
            stream,
            &expecting(StreamState::StreamRevision(1)),
            event("Posted", 2).id(next[0]),
        )
        .await
        .unwrap();
    let retried = client
        .append_to_stream(
            stream,
            &expecting(StreamState::StreamRevision(1)),
            event("Posted", 2).id(next[0]),
        )
        .await
        .unwrap();
    assert_eq!(third.next_expected_version, 2);
    assert_eq!(retried.next_expected_version, 2);
    assert_eq!(retried.position, third.position);

    let events = collect(
        client
            .read_stream(stream, &ReadStreamOptions::default())
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    let read_ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
    assert_eq!(read_ids, [ids[0], ids[1], next[0]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_append_writes_reports_and_refuses_like_append() {
    let server = Server::insecure().await;
    let client = server.client();
    let batch = client
        .batch_append(&BatchAppendOptions::default())
        .await
        .unwrap();

    let created = batch
        .append_to_stream(
            "order-batch",
            StreamState::NoStream,
            vec![event("A", 0), event("A", 1)],
        )
        .await
        .unwrap();
    assert_eq!(created.stream_name(), "order-batch");
    assert_eq!(created.current_revision(), Some(1));
    assert_eq!(created.stream_state(), Some(StreamState::NoStream));
    let first_position = created.current_position().unwrap();

    let ids = [uuid::Uuid::new_v4()];
    let exact = batch
        .append_to_stream(
            "order-batch",
            StreamState::StreamRevision(1),
            vec![event("B", 2).id(ids[0])],
        )
        .await
        .unwrap();
    assert_eq!(exact.current_revision(), Some(2));
    assert!(exact.current_position().unwrap().commit > first_position.commit);
    // A retry of the same ids through the batch API: same answer, nothing written.
    let retry = batch
        .append_to_stream(
            "order-batch",
            StreamState::StreamRevision(1),
            vec![event("B", 2).id(ids[0])],
        )
        .await
        .unwrap();
    assert_eq!(retry.current_revision(), Some(2));
    assert_eq!(retry.current_position(), exact.current_position());

    let any = batch
        .append_to_stream("order-batch", StreamState::Any, vec![event("C", 3)])
        .await
        .unwrap();
    assert_eq!(any.current_revision(), Some(3));
    let exists = batch
        .append_to_stream("order-batch-2", StreamState::Any, vec![event("C", 0)])
        .await
        .unwrap();
    assert_eq!(exists.current_revision(), Some(0));
    let exists = batch
        .append_to_stream(
            "order-batch-2",
            StreamState::StreamExists,
            vec![event("C", 1)],
        )
        .await
        .unwrap();
    assert_eq!(exists.current_revision(), Some(1));

    // A wrong expected version is the batch's error (the client closes its session then).
    let err = batch
        .append_to_stream(
            "order-batch",
            StreamState::StreamRevision(0),
            vec![event("D", 99)],
        )
        .await
        .unwrap_err();
    assert!(
        // ALREADY_EXISTS (6), as EventStoreDB encodes a batch's wrong expected version.
        matches!(&err, Error::Grpc { code, message } if *code as i32 == 6 && message == "WrongExpectedVersion"),
        "{err:?}"
    );

    let events = collect(
        client
            .read_stream("order-batch", &ReadStreamOptions::default())
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(events.iter().map(n_of).collect::<Vec<_>>(), [0, 1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_appends_check_the_expectation_and_write_nothing() {
    let server = Server::insecure().await;
    let client = server.client();
    let none: Vec<EventData> = Vec::new();
    client
        .append_to_stream("order-empty", &expecting(StreamState::Any), none.clone())
        .await
        .unwrap();
    client
        .append_to_stream(
            "order-empty",
            &expecting(StreamState::NoStream),
            event("A", 0),
        )
        .await
        .unwrap();
    let same = client
        .append_to_stream(
            "order-empty",
            &expecting(StreamState::StreamRevision(0)),
            none.clone(),
        )
        .await
        .unwrap();
    assert_eq!(same.next_expected_version, 0);
    let err = client
        .append_to_stream(
            "order-empty",
            &expecting(StreamState::StreamRevision(3)),
            none,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WrongExpectedVersion {
                expected: StreamState::StreamRevision(3),
                current: CurrentRevision::Current(0)
            }
        ),
        "{err:?}"
    );
    let events = collect(
        client
            .read_stream("order-empty", &ReadStreamOptions::default())
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(events.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batches_on_one_call_apply_in_the_order_they_were_sent() {
    let server = Server::insecure().await;
    let client = server.client();
    let batch = client
        .batch_append(&BatchAppendOptions::default())
        .await
        .unwrap();
    // Twenty batches sent without waiting for answers, each expecting the one before it.
    let sends = (0..20u64).map(|k| {
        let expected = match k {
            0 => StreamState::NoStream,
            k => StreamState::StreamRevision(k - 1),
        };
        batch.append_to_stream("order-pipelined", expected, vec![event("A", k)])
    });
    let results = futures_util::future::join_all(sends).await;
    let revisions: Vec<Option<u64>> = results
        .into_iter()
        .map(|r| r.unwrap().current_revision())
        .collect();
    assert_eq!(revisions, (0..20).map(Some).collect::<Vec<_>>());
    let events = collect(
        client
            .read_stream("order-pipelined", &ReadStreamOptions::default())
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        events.iter().map(n_of).collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
}
