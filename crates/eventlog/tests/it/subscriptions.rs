//! Catch-up subscriptions: the history/live boundary, slow subscribers, filters, stream ends.

use std::sync::Arc;
use std::time::Duration;

use daojia_eventlog::storage::MemoryStorage;
use daojia_eventlog::{
    AllOptions, Config, Error, EventId, EventLog, ExpectedRevision, Filter, FilterTarget, Position,
    ProposedEvent, Revision, SubscribeFrom, Subscription, SubscriptionItem,
};

const WAIT: Duration = Duration::from_secs(30);

fn log_with(buffer: usize) -> EventLog {
    EventLog::builder_with_storage(Arc::new(MemoryStorage::new()))
        .config(Config {
            segment_size: 1 << 20,
            max_batch_bytes: 256 << 10,
            max_event_bytes: 64 << 10,
            subscriber_buffer: buffer,
            ..Config::default()
        })
        .open()
        .unwrap()
}

fn event(i: u64) -> ProposedEvent {
    ProposedEvent::json(
        EventId::from_u128(u128::from(i) + 1),
        if i.is_multiple_of(3) {
            "OrderPosted"
        } else {
            "OrderAccepted"
        },
        format!("{{\"i\":{i}}}").into_bytes(),
    )
}

fn stream_of(i: u64) -> String {
    format!("order-{}", i % 13)
}

/// Takes items until `n` events were seen; returns the events' sequence numbers and how many
/// caught-up markers came.
fn take_events(sub: &mut Subscription, n: usize) -> (Vec<u64>, Vec<Position>, usize) {
    let mut ids = Vec::new();
    let mut positions = Vec::new();
    let mut caught_up = 0;
    while ids.len() < n {
        match sub
            .next_timeout(WAIT)
            .unwrap()
            .expect("subscription stalled")
        {
            SubscriptionItem::Event(e) => {
                ids.push(e.id.as_u128() as u64 - 1);
                positions.push(e.position);
            }
            SubscriptionItem::CaughtUp => caught_up += 1,
            SubscriptionItem::Checkpoint(_) => {}
        }
    }
    (ids, positions, caught_up)
}

#[test]
fn appends_racing_a_catch_up_are_seen_exactly_once_in_order() {
    for buffer in [1, 8, 4096] {
        let log = Arc::new(log_with(buffer));
        for i in 0..500 {
            log.append(&stream_of(i), ExpectedRevision::Any, vec![event(i)])
                .unwrap();
        }
        let mut sub = log.subscribe_all(SubscribeFrom::Start, AllOptions::default());
        let writer = {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 500..3000 {
                    log.append(&stream_of(i), ExpectedRevision::Any, vec![event(i)])
                        .unwrap();
                }
            })
        };
        let (ids, positions, caught_up) = take_events(&mut sub, 3000);
        writer.join().unwrap();
        assert_eq!(ids, (0..3000).collect::<Vec<_>>(), "buffer {buffer}");
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(caught_up, 1, "buffer {buffer}");
        // Nothing more arrives.
        assert_eq!(sub.next_timeout(Duration::from_millis(1)).unwrap(), None);
    }
}

#[test]
fn a_subscriber_that_never_reads_does_not_block_writers_and_recovers_from_disk() {
    let log = log_with(4);
    let mut sub = log.subscribe_all(SubscribeFrom::Start, AllOptions::default());
    // Go live on an empty log.
    assert_eq!(
        sub.next_timeout(WAIT).unwrap(),
        Some(SubscriptionItem::CaughtUp)
    );
    assert!(sub.is_live());
    // Far more than the buffer while the subscriber sleeps: every append still completes.
    for i in 0..2000 {
        log.append(&stream_of(i), ExpectedRevision::Any, vec![event(i)])
            .unwrap();
    }
    let (ids, _, again) = take_events(&mut sub, 2000);
    assert_eq!(ids, (0..2000).collect::<Vec<_>>());
    assert_eq!(again, 0, "caught-up is sent once");
}

#[test]
fn subscribing_after_a_position_or_from_the_end_skips_history() {
    let log = log_with(64);
    let mut last = Position(0);
    for i in 0..10 {
        last = log
            .append(&stream_of(i), ExpectedRevision::Any, vec![event(i)])
            .unwrap()
            .position;
    }
    let fifth = log
        .read_all(
            daojia_eventlog::Direction::Forwards,
            daojia_eventlog::AllStart::Edge,
            5,
            None,
        )
        .unwrap()
        .events[4]
        .position;
    let mut after = log.subscribe_all(SubscribeFrom::After(fifth), AllOptions::default());
    let mut from_end = log.subscribe_all(SubscribeFrom::End, AllOptions::default());
    assert_eq!(
        from_end.next_timeout(WAIT).unwrap(),
        Some(SubscriptionItem::CaughtUp)
    );
    log.append("order-x", ExpectedRevision::Any, vec![event(10)])
        .unwrap();
    let (ids, _, _) = take_events(&mut after, 6);
    assert_eq!(ids, vec![5, 6, 7, 8, 9, 10]);
    let (ids, positions, _) = take_events(&mut from_end, 1);
    assert_eq!(ids, vec![10]);
    assert!(positions[0] > last);
}

#[test]
fn stream_subscription_delivers_revisions_in_order_and_ends_at_a_tombstone() {
    let log = Arc::new(log_with(2));
    for i in 0..5 {
        log.append("order-a", ExpectedRevision::Any, vec![event(i)])
            .unwrap();
        log.append("order-b", ExpectedRevision::Any, vec![event(100 + i)])
            .unwrap();
    }
    let mut sub = log
        .subscribe_stream("order-a", SubscribeFrom::After(Revision(1)))
        .unwrap();
    let mut revisions = Vec::new();
    let mut caught_up = 0;
    while revisions.len() < 3 {
        match sub.next_timeout(WAIT).unwrap().unwrap() {
            SubscriptionItem::Event(e) => {
                assert_eq!(e.stream(), "order-a");
                revisions.push(e.revision.0);
            }
            SubscriptionItem::CaughtUp => caught_up += 1,
            SubscriptionItem::Checkpoint(p) => panic!("unexpected checkpoint {p}"),
        }
    }
    assert_eq!(revisions, vec![2, 3, 4]);
    // Live, with a tiny buffer and interleaved writes to another stream.
    for i in 5..40 {
        log.append("order-a", ExpectedRevision::Any, vec![event(i)])
            .unwrap();
        log.append("order-b", ExpectedRevision::Any, vec![event(100 + i)])
            .unwrap();
    }
    while revisions.len() < 38 {
        match sub.next_timeout(WAIT).unwrap().unwrap() {
            SubscriptionItem::Event(e) => revisions.push(e.revision.0),
            SubscriptionItem::CaughtUp => caught_up += 1,
            SubscriptionItem::Checkpoint(_) => {}
        }
    }
    assert_eq!(revisions, (2..40).collect::<Vec<_>>());
    assert!(caught_up <= 1);
    log.tombstone("order-a", ExpectedRevision::Any).unwrap();
    let end = loop {
        match sub.next_timeout(WAIT) {
            Ok(Some(SubscriptionItem::CaughtUp)) => continue,
            other => break other,
        }
    };
    assert!(
        matches!(end, Err(Error::StreamDeleted { ref stream }) if stream == "order-a"),
        "{end:?}"
    );
}

#[test]
fn filtered_all_subscription_sends_matches_and_checkpoints() {
    let log = log_with(1024);
    for i in 0..300 {
        log.append(&stream_of(i), ExpectedRevision::Any, vec![event(i)])
            .unwrap();
    }
    let filter = Filter::prefixes(FilterTarget::EventType, ["OrderPosted"]).unwrap();
    let mut sub = log.subscribe_all(
        SubscribeFrom::Start,
        AllOptions {
            filter: Some(filter),
            checkpoint_interval: 10,
        },
    );
    let mut posted = Vec::new();
    let mut checkpoints = Vec::new();
    let mut caught_up = false;
    while !caught_up {
        match sub.next_timeout(WAIT).unwrap().unwrap() {
            SubscriptionItem::Event(e) => {
                assert_eq!(e.event_type(), "OrderPosted");
                posted.push(e.id.as_u128() as u64 - 1);
            }
            SubscriptionItem::Checkpoint(p) => checkpoints.push(p),
            SubscriptionItem::CaughtUp => caught_up = true,
        }
    }
    assert_eq!(
        posted,
        (0..300u64)
            .filter(|i| i.is_multiple_of(3))
            .collect::<Vec<_>>()
    );
    // One checkpoint every 10 events considered, in history too: 300 events, 30 checkpoints.
    assert_eq!(checkpoints.len(), 30);
    assert!(checkpoints.windows(2).all(|w| w[0] < w[1]));
    // Live: 30 non-matching events produce checkpoints, then a match arrives.
    for i in 0..30 {
        let e = ProposedEvent::json(EventId::from_u128(10_000 + i), "OrderAccepted", &b"{}"[..]);
        log.append("order-live", ExpectedRevision::Any, vec![e])
            .unwrap();
    }
    log.append("order-live", ExpectedRevision::Any, vec![event(300)])
        .unwrap();
    let mut live_checkpoints = 0;
    loop {
        match sub.next_timeout(WAIT).unwrap().unwrap() {
            SubscriptionItem::Checkpoint(_) => live_checkpoints += 1,
            SubscriptionItem::Event(e) => {
                assert_eq!(e.id.as_u128(), 301);
                break;
            }
            SubscriptionItem::CaughtUp => panic!("second caught-up"),
        }
    }
    assert_eq!(live_checkpoints, 3);
}

#[test]
fn closing_the_log_ends_its_subscriptions() {
    let log = log_with(16);
    let mut sub = log.subscribe_all(SubscribeFrom::Start, AllOptions::default());
    assert_eq!(
        sub.next_timeout(WAIT).unwrap(),
        Some(SubscriptionItem::CaughtUp)
    );
    log.close().unwrap();
    assert!(matches!(sub.next_timeout(WAIT), Err(Error::Closed)));
}
