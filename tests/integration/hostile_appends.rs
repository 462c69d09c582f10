//! Appends past their byte budgets: a BatchAppend call that holds more than its own budget of
//! open batches, and calls that together hold more than the server's, get RESOURCE_EXHAUSTED
//! for the batch (or Append) that would pass it, with nothing of it written; the call goes
//! on, what fitted is written, and once answered the budget is free again.

use daojia_server::esdb::proto::event_store::client::streams::streams_client::StreamsClient;
use daojia_server::esdb::proto::event_store::client::streams::{
    AppendReq, BatchAppendReq, BatchAppendResp, append_req, batch_append_req, batch_append_resp,
};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;

use crate::esdb::{
    ADMIN, all_events, bearer, json_metadata, node_with, options, stream, string_id,
};

const MIB: usize = 1 << 20;

/// A JSON string of 1 MiB (the events say `application/json`, and a KurrentDB-backed server
/// checks).
fn json_mib(fill: u8) -> Vec<u8> {
    let mut data = vec![fill; MIB];
    data[0] = b'"';
    data[MIB - 1] = b'"';
    data
}

/// A batch part of `events` events of 1 MiB each, with its options when it is the first.
fn part(correlation: u128, first: bool, events: u128, is_final: bool) -> BatchAppendReq {
    use batch_append_req::options::ExpectedStreamPosition as P;
    BatchAppendReq {
        correlation_id: string_id(correlation),
        options: first.then(|| batch_append_req::Options {
            stream_identifier: stream(&format!("budget-{correlation}")),
            expected_stream_position: Some(P::Any(())),
            deadline_option: None,
        }),
        proposed_messages: (0..events)
            .map(|i| batch_append_req::ProposedMessage {
                id: string_id((correlation << 32) + i + 1),
                metadata: json_metadata("Big"),
                custom_metadata: Default::default(),
                data: json_mib(b'x').into(),
            })
            .collect(),
        is_final,
    }
}

/// One BatchAppend call whose parts the test sends one by one.
struct Call {
    tx: mpsc::Sender<BatchAppendReq>,
    responses: tonic::Streaming<BatchAppendResp>,
}

impl Call {
    async fn open(channel: &Channel) -> Call {
        let (tx, rx) = mpsc::channel(64);
        let responses = StreamsClient::new(channel.clone())
            .max_encoding_message_size(64 * MIB)
            .batch_append(bearer(ADMIN, ReceiverStream::new(rx)))
            .await
            .unwrap()
            .into_inner();
        Call { tx, responses }
    }

    async fn send(&self, part: BatchAppendReq) {
        self.tx.send(part).await.unwrap();
    }

    /// Sends a small final batch and waits for its answer: every part sent before it has
    /// been taken by the server (a call's parts are taken in order).
    async fn sync(&mut self, correlation: u128) {
        self.send(part(correlation, true, 0, true)).await;
        let r = self.next().await;
        assert_eq!(r.correlation_id, string_id(correlation));
    }

    async fn next(&mut self) -> BatchAppendResp {
        self.responses.next().await.unwrap().unwrap()
    }
}

fn result_code(r: &BatchAppendResp) -> (i32, String) {
    match &r.result {
        Some(batch_append_resp::Result::Success(_)) => (0, String::new()),
        Some(batch_append_resp::Result::Error(e)) => (e.code, e.message.clone()),
        None => panic!("a response without a result"),
    }
}

async fn append_mib(channel: &Channel, name: &str, mib: usize) -> Result<(), tonic::Status> {
    use append_req::options::ExpectedStreamRevision as E;
    let mut messages = vec![options(name, E::Any(Default::default()))];
    messages.extend((0..mib).map(|_| AppendReq {
        content: Some(append_req::Content::ProposedMessage(
            append_req::ProposedMessage {
                id: string_id(rand_id()),
                metadata: json_metadata("Big"),
                custom_metadata: Default::default(),
                data: json_mib(b'y').into(),
            },
        )),
    }));
    StreamsClient::new(channel.clone())
        .max_encoding_message_size(64 * MIB)
        .append(bearer(ADMIN, tokio_stream::iter(messages)))
        .await
        .map(drop)
}

fn rand_id() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    (0xa11u128 << 100) + u128::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

#[tokio::test]
async fn appends_past_the_call_or_server_byte_budget_are_refused_alone_and_the_budget_comes_back() {
    // The server holds 24 MiB of unanswered appends at most, one BatchAppend call 17 MiB.
    let node = node_with(&[
        "--append-buffer-bytes",
        &(24 * MIB).to_string(),
        "--batch-append-call-bytes",
        &(17 * MIB).to_string(),
    ])
    .await;
    let before = all_events(&node.channel).await;

    // Call A opens five batches of 4 MiB without finishing them: the fifth passes the call's
    // budget (16 MiB held).
    let mut a = Call::open(&node.channel).await;
    for c in 1..=5u128 {
        a.send(part(c, true, 4, false)).await;
    }
    a.sync(100).await;

    // Call B: a first batch fits the server's budget (20 MiB held), a second does not.
    let mut b = Call::open(&node.channel).await;
    b.send(part(11, true, 4, false)).await;
    b.send(part(12, true, 4, false)).await;
    b.sync(200).await;

    // A plain Append of 4 MiB would pass the server's budget too: refused, with retry advice.
    let refused = append_mib(&node.channel, "budget-append", 4)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused
            .message()
            .starts_with("appends in flight on this server hold their budget of 25165824 bytes"),
        "{refused:?}"
    );
    assert!(refused.metadata().get("retry-after-ms").is_some());

    // The batches are finished: what fitted is written, the others are refused, each alone.
    for c in 1..=5u128 {
        a.send(part(c, false, 0, true)).await;
    }
    for c in [11u128, 12] {
        b.send(part(c, false, 0, true)).await;
    }
    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..5 {
        let r = a.next().await;
        answers.insert(format!("{:?}", r.correlation_id), result_code(&r));
    }
    for _ in 0..2 {
        let r = b.next().await;
        answers.insert(format!("{:?}", r.correlation_id), result_code(&r));
    }
    let answer = |c: u128| answers[&format!("{:?}", string_id(c))].clone();
    for c in [1u128, 2, 3, 4, 11] {
        assert_eq!(answer(c).0, 0, "batch {c}: {:?}", answer(c));
    }
    let (code, message) = answer(5);
    assert_eq!(code, Code::ResourceExhausted as i32, "{message}");
    assert!(
        message.starts_with("the batches open on this BatchAppend call hold their budget"),
        "{message}"
    );
    let (code, message) = answer(12);
    assert_eq!(code, Code::ResourceExhausted as i32, "{message}");
    assert!(
        message.starts_with("appends in flight on this server hold their budget"),
        "{message}"
    );
    // 5 written batches of 4 events (and the two empty sync batches write nothing).
    assert_eq!(all_events(&node.channel).await, before + 20);

    // Everything was answered: the budget is free again, on the same calls and for Append.
    a.send(part(5, true, 4, true)).await;
    assert_eq!(result_code(&a.next().await).0, 0);
    b.send(part(12, true, 4, true)).await;
    assert_eq!(result_code(&b.next().await).0, 0);
    append_mib(&node.channel, "budget-append", 4).await.unwrap();
    assert_eq!(all_events(&node.channel).await, before + 32);
    let _ = node.shutdown.send(());
}
