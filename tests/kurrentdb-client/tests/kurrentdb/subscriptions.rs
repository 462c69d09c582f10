//! Catch-up subscriptions to a stream and to `$all`: confirmation, history, one caught-up,
//! live events; checkpoints of filtered `$all` subscriptions and resuming from them.

use std::time::Duration;

use kurrentdb::{
    AppendToStreamOptions, Client, Position, StreamPosition, SubscribeToAllOptions,
    SubscribeToStreamOptions, Subscription, SubscriptionEvent, SubscriptionFilter,
};

use crate::harness::{Server, event, n_of};

/// What a subscription delivered, reduced to what the tests compare.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    Confirmed,
    /// Stream, `n` of the data, position.
    Event(String, u64, Position),
    CaughtUp,
    Checkpoint(Position),
}

/// The next item, failing the test if none comes within seconds (a hung subscription).
async fn next(subscription: &mut Subscription) -> Item {
    let item = tokio::time::timeout(
        Duration::from_secs(10),
        subscription.next_subscription_event(),
    )
    .await
    .expect("the subscription delivered nothing for 10 s")
    .expect("the subscription failed");
    match item {
        SubscriptionEvent::Confirmed(id) => {
            assert!(!id.is_empty(), "a subscription id");
            Item::Confirmed
        }
        SubscriptionEvent::EventAppeared(resolved) => {
            let e = resolved.event.expect("an event");
            Item::Event(e.stream_id().to_string(), n_of(&e), e.position)
        }
        SubscriptionEvent::CaughtUp(_) => Item::CaughtUp,
        SubscriptionEvent::Checkpoint(p) => Item::Checkpoint(p),
        other => panic!("unexpected subscription message {other:?}"),
    }
}

/// The `n`s of the next `count` events; fails on anything else in between.
async fn events(subscription: &mut Subscription, count: usize) -> Vec<u64> {
    let mut out = Vec::new();
    while out.len() < count {
        match next(subscription).await {
            Item::Event(_, n, _) => out.push(n),
            other => panic!("expected an event, got {other:?}"),
        }
    }
    out
}

/// From the stream's first event (the client's default is its end).
fn from_stream_start() -> SubscribeToStreamOptions {
    SubscribeToStreamOptions::default().start_from(StreamPosition::Start)
}

/// Appends events `ns` to `stream` in one write.
async fn append_many(client: &Client, stream: &str, ns: std::ops::Range<u64>) {
    let events: Vec<_> = ns.map(|n| event("Happened", n)).collect();
    client
        .append_to_stream(stream, &AppendToStreamOptions::default(), events)
        .await
        .unwrap();
}

async fn append(client: &Client, stream: &str, ns: std::ops::Range<u64>) -> Vec<Position> {
    let mut positions = Vec::new();
    for n in ns {
        let written = client
            .append_to_stream(
                stream,
                &AppendToStreamOptions::default(),
                event("Happened", n),
            )
            .await
            .unwrap();
        positions.push(written.position);
    }
    positions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_subscriptions_deliver_history_then_caught_up_once_then_live_events() {
    let server = Server::insecure().await;
    let client = server.client();
    let stream = "order-sub";
    append(&client, stream, 0..3).await;
    append(&client, "order-other", 100..101).await;

    let mut from_start = client
        .subscribe_to_stream(stream, &from_stream_start())
        .await;
    let mut after_1 = client
        .subscribe_to_stream(
            stream,
            &SubscribeToStreamOptions::default().start_from(StreamPosition::Position(1)),
        )
        .await;
    let mut from_end = client
        .subscribe_to_stream(
            stream,
            &SubscribeToStreamOptions::default().start_from(StreamPosition::End),
        )
        .await;
    assert_eq!(next(&mut from_start).await, Item::Confirmed);
    assert_eq!(events(&mut from_start, 3).await, [0, 1, 2]);
    assert_eq!(next(&mut from_start).await, Item::CaughtUp);
    assert_eq!(next(&mut after_1).await, Item::Confirmed);
    assert_eq!(events(&mut after_1, 1).await, [2]);
    assert_eq!(next(&mut after_1).await, Item::CaughtUp);
    assert_eq!(next(&mut from_end).await, Item::Confirmed);
    assert_eq!(next(&mut from_end).await, Item::CaughtUp);

    // Live: only this stream's new events, in order, with no second caught-up.
    append(&client, "order-other", 101..102).await;
    append(&client, stream, 3..5).await;
    for subscription in [&mut from_start, &mut after_1, &mut from_end] {
        assert_eq!(events(subscription, 2).await, [3, 4]);
    }

    // A subscription to a stream that does not exist yet waits for its first event.
    let mut later = client
        .subscribe_to_stream("order-later", &from_stream_start())
        .await;
    assert_eq!(next(&mut later).await, Item::Confirmed);
    assert_eq!(next(&mut later).await, Item::CaughtUp);
    append(&client, "order-later", 7..8).await;
    assert_eq!(events(&mut later, 1).await, [7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_subscriptions_start_from_start_position_and_end() {
    let server = Server::insecure().await;
    let client = server.client();
    let positions = append(&client, "order-a", 0..2).await;
    append(&client, "worker-b", 2..4).await;

    let mut from_start = client
        .subscribe_to_all(&SubscribeToAllOptions::default())
        .await;
    // From a position: the events after it.
    let mut after_first = client
        .subscribe_to_all(
            &SubscribeToAllOptions::default().position(StreamPosition::Position(positions[0])),
        )
        .await;
    let mut from_end = client
        .subscribe_to_all(&SubscribeToAllOptions::default().position(StreamPosition::End))
        .await;

    assert_eq!(next(&mut from_start).await, Item::Confirmed);
    let Item::Event(stream, 0, position) = next(&mut from_start).await else {
        panic!("the first event first")
    };
    assert_eq!((stream.as_str(), position), ("order-a", positions[0]));
    assert_eq!(events(&mut from_start, 3).await, [1, 2, 3]);
    assert_eq!(next(&mut from_start).await, Item::CaughtUp);

    assert_eq!(next(&mut after_first).await, Item::Confirmed);
    assert_eq!(events(&mut after_first, 3).await, [1, 2, 3]);
    assert_eq!(next(&mut after_first).await, Item::CaughtUp);

    assert_eq!(next(&mut from_end).await, Item::Confirmed);
    assert_eq!(next(&mut from_end).await, Item::CaughtUp);

    append(&client, "customer-c", 4..6).await;
    for subscription in [&mut from_start, &mut after_first, &mut from_end] {
        assert_eq!(events(subscription, 2).await, [4, 5]);
    }
}

/// Matching events (order-*) between runs of others (worker-*), so that checkpoints fall both
/// right after matches and in the middle of non-matching stretches.
async fn mixed_rounds(client: &Client, n: &mut u64, wanted: &mut Vec<u64>) {
    for round in 0..6 {
        let matching = round % 3 + 1;
        append_many(client, "order-x", *n..*n + matching).await;
        wanted.extend(*n..*n + matching);
        *n += matching;
        append_many(client, "worker-y", *n..*n + 3).await;
        *n += 3;
    }
}

/// A consumer's record: each event with the number of checkpoints received before it.
#[derive(Default)]
struct Consumer {
    delivered: Vec<(u64, usize)>,
    checkpoints: Vec<Position>,
    last_event: Option<Position>,
}

impl Consumer {
    /// Takes one item; false on caught-up.
    fn take(&mut self, item: Item) -> bool {
        match item {
            Item::Event(stream, n, position) => {
                assert_eq!(stream, "order-x");
                if let Some(checkpoint) = self.checkpoints.last() {
                    assert!(
                        position.commit > checkpoint.commit,
                        "an event before its checkpoint"
                    );
                }
                self.last_event = Some(position);
                self.delivered.push((n, self.checkpoints.len()));
            }
            Item::Checkpoint(p) => {
                if let Some(last) = self.last_event {
                    assert!(p.commit >= last.commit, "a checkpoint behind an event");
                }
                if let Some(previous) = self.checkpoints.last() {
                    assert!(p.commit >= previous.commit, "checkpoints went backwards");
                }
                self.checkpoints.push(p);
            }
            Item::CaughtUp => return false,
            Item::Confirmed => panic!("confirmed twice"),
        }
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_all_subscriptions_checkpoint_and_resume_without_gaps_or_repeats() {
    let server = Server::insecure().await;
    let client = server.client();
    let (mut n, mut wanted) = (0, Vec::new());
    mixed_rounds(&client, &mut n, &mut wanted).await;
    let filter = SubscriptionFilter::on_stream_name()
        .add_prefix("order-")
        .max(2);

    // History, then the same pattern live.
    let mut first = client
        .subscribe_to_all(&SubscribeToAllOptions::default().filter(filter.clone()))
        .await;
    assert_eq!(next(&mut first).await, Item::Confirmed);
    let mut consumer = Consumer::default();
    while consumer.take(next(&mut first).await) {}
    let history: Vec<u64> = consumer.delivered.iter().map(|(n, _)| *n).collect();
    assert_eq!(history, wanted, "history of the filtered subscription");
    assert!(!consumer.checkpoints.is_empty(), "no checkpoint in history");
    let in_history = consumer.checkpoints.len();
    mixed_rounds(&client, &mut n, &mut wanted).await;
    while consumer.delivered.len() < wanted.len() {
        let item = next(&mut first).await;
        assert!(consumer.take(item), "caught up twice");
    }
    let ns: Vec<u64> = consumer.delivered.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        ns, wanted,
        "history and live events of the filtered subscription"
    );
    // Live, a checkpoint follows every 2 considered events (30 live events here).
    assert!(
        consumer.checkpoints.len() - in_history >= 5,
        "live checkpoints every 2 considered events: {:?}",
        consumer.checkpoints
    );
    let Consumer {
        delivered,
        checkpoints,
        ..
    } = consumer;

    // Resuming from each checkpoint delivers exactly what came after it.
    for (i, checkpoint) in checkpoints.iter().enumerate() {
        let handled: Vec<u64> = delivered
            .iter()
            .filter(|(_, seen)| *seen <= i)
            .map(|(n, _)| *n)
            .collect();
        let mut resumed = client
            .subscribe_to_all(
                &SubscribeToAllOptions::default()
                    .filter(filter.clone())
                    .position(StreamPosition::Position(*checkpoint)),
            )
            .await;
        assert_eq!(next(&mut resumed).await, Item::Confirmed);
        let mut rest = Vec::new();
        loop {
            match next(&mut resumed).await {
                Item::Event(_, n, _) => rest.push(n),
                Item::Checkpoint(_) => {}
                Item::CaughtUp => break,
                Item::Confirmed => panic!("confirmed twice"),
            }
        }
        let mut all = handled.clone();
        all.extend(&rest);
        assert_eq!(all, wanted, "resumed from checkpoint {i} at {checkpoint:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_all_subscriptions_by_event_type_and_regex() {
    let server = Server::insecure().await;
    let client = server.client();
    for (stream, event_type, n) in [
        ("order-1", "Posted", 0),
        ("worker-1", "ShiftStarted", 1),
        ("order-2", "Cancelled", 2),
        ("order-3", "Posted", 3),
    ] {
        client
            .append_to_stream(
                stream,
                &AppendToStreamOptions::default(),
                event(event_type, n),
            )
            .await
            .unwrap();
    }
    for (filter, expected) in [
        (
            SubscriptionFilter::on_event_type().add_prefix("Posted"),
            vec![0, 3],
        ),
        (
            SubscriptionFilter::on_stream_name().regex("^order-[23]$"),
            vec![2, 3],
        ),
        (
            SubscriptionFilter::on_event_type().regex("^(Shift|Cancel)"),
            vec![1, 2],
        ),
    ] {
        let mut sub = client
            .subscribe_to_all(&SubscribeToAllOptions::default().filter(filter))
            .await;
        assert_eq!(next(&mut sub).await, Item::Confirmed);
        let mut got = Vec::new();
        loop {
            match next(&mut sub).await {
                Item::Event(_, n, _) => got.push(n),
                Item::Checkpoint(_) => {}
                Item::CaughtUp => break,
                Item::Confirmed => panic!("confirmed twice"),
            }
        }
        assert_eq!(got, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_subscriptions_end_and_a_stopping_server_ends_the_others() {
    let server = Server::insecure().await;
    let client = server.client();
    append(&client, "order-d", 0..1).await;
    let mut dropped = client
        .subscribe_to_all(&SubscribeToAllOptions::default())
        .await;
    assert_eq!(next(&mut dropped).await, Item::Confirmed);
    drop(dropped);

    // The connection stays usable for new subscriptions and appends.
    let mut kept = client
        .subscribe_to_stream("order-d", &from_stream_start())
        .await;
    assert_eq!(next(&mut kept).await, Item::Confirmed);
    assert_eq!(events(&mut kept, 1).await, [0]);
    assert_eq!(next(&mut kept).await, Item::CaughtUp);
    append(&client, "order-d", 1..2).await;
    assert_eq!(events(&mut kept, 1).await, [1]);

    // Stopping the server ends the open subscription with an error instead of leaving the
    // client waiting, and the server stops cleanly.
    let stopping = tokio::spawn(server.stop());
    let ended = tokio::time::timeout(Duration::from_secs(10), kept.next_subscription_event())
        .await
        .expect("the subscription was not ended by the server stopping");
    assert!(ended.is_err(), "{ended:?}");
    stopping.await.unwrap().unwrap();
}
