use std::sync::Arc;

use daojia_eventlog::storage::MemoryStorage;
use daojia_eventlog::*;

fn ev(i: u128) -> ProposedEvent {
    ProposedEvent::json(
        EventId::from_u128(i),
        "Thing",
        format!("{{\"i\":{i}}}").into_bytes(),
    )
}

#[test]
fn append_read_reopen() {
    let st = MemoryStorage::new();
    let log = EventLog::builder_with_storage(Arc::new(st.clone()))
        .segment_size(80 << 20)
        .max_event_bytes(1 << 20)
        .config(Config {
            segment_size: 70 << 20,
            max_batch_bytes: 1 << 20,
            max_event_bytes: 1 << 19,
            ..Config::default()
        })
        .open()
        .unwrap();
    let a = log
        .append("s-1", ExpectedRevision::NoStream, vec![ev(1), ev(2)])
        .unwrap();
    assert_eq!(a.first_revision, Revision(0));
    assert_eq!(a.count, 2);
    let again = log
        .append("s-1", ExpectedRevision::NoStream, vec![ev(1), ev(2)])
        .unwrap();
    assert_eq!(again, a);
    let b = log
        .append("s-2", ExpectedRevision::Any, vec![ev(3)])
        .unwrap();
    assert!(b.position > a.position);
    let evs = log
        .read_stream("s-1", Direction::Forwards, StreamStart::Edge, 10)
        .unwrap();
    assert_eq!(evs.len(), 2);
    let all = log
        .read_all(Direction::Forwards, AllStart::Edge, 100, None)
        .unwrap();
    assert_eq!(all.events.len(), 3);
    let back = log
        .read_all(Direction::Backwards, AllStart::Edge, 100, None)
        .unwrap();
    assert_eq!(back.events.len(), 3);
    assert_eq!(back.events[0].position, b.position);
    log.delete("s-1", ExpectedRevision::Exact(Revision(1)))
        .unwrap();
    assert!(matches!(
        log.read_stream("s-1", Direction::Forwards, StreamStart::Edge, 10),
        Err(Error::StreamNotFound { .. })
    ));
    let c = log
        .append("s-1", ExpectedRevision::NoStream, vec![ev(4)])
        .unwrap();
    assert_eq!(c.first_revision, Revision(2));
    let evs = log
        .read_stream("s-1", Direction::Forwards, StreamStart::Edge, 10)
        .unwrap();
    assert_eq!(evs.len(), 1);
    log.tombstone("s-2", ExpectedRevision::Any).unwrap();
    assert!(matches!(
        log.append("s-2", ExpectedRevision::Any, vec![ev(5)]),
        Err(Error::StreamDeleted { .. })
    ));
    let mut sub = log.subscribe_all(SubscribeFrom::Start, AllOptions::default());
    let mut n = 0;
    loop {
        match sub
            .next_timeout(std::time::Duration::from_secs(5))
            .unwrap()
            .unwrap()
        {
            SubscriptionItem::Event(_) => n += 1,
            SubscriptionItem::CaughtUp => break,
            SubscriptionItem::Checkpoint(_) => {}
        }
    }
    let head = log.head();
    log.append("s-3", ExpectedRevision::Any, vec![ev(9)])
        .unwrap();
    match sub
        .next_timeout(std::time::Duration::from_secs(5))
        .unwrap()
        .unwrap()
    {
        SubscriptionItem::Event(e) => assert!(e.position >= head),
        other => panic!("{other:?}"),
    }
    drop(sub);
    log.close().unwrap();
    let log = EventLog::builder_with_storage(Arc::new(st.clone()))
        .config(Config {
            segment_size: 70 << 20,
            max_batch_bytes: 1 << 20,
            max_event_bytes: 1 << 19,
            ..Config::default()
        })
        .open()
        .unwrap();
    let all2 = log
        .read_all(Direction::Forwards, AllStart::Edge, 100, None)
        .unwrap();
    assert_eq!(all2.events.len(), n + 1);
    let evs = log
        .read_stream("s-1", Direction::Forwards, StreamStart::Edge, 10)
        .unwrap();
    assert_eq!(evs.len(), 1);
    assert!(matches!(
        log.read_stream("s-2", Direction::Forwards, StreamStart::Edge, 10),
        Err(Error::StreamDeleted { .. })
    ));
}

#[test]
fn a_panicking_callback_does_not_stop_the_log() {
    let log = EventLog::builder_with_storage(Arc::new(MemoryStorage::new()))
        .open()
        .unwrap();
    log.append_with(
        "s-1".into(),
        ExpectedRevision::NoStream,
        vec![ev(1)],
        Box::new(|_| panic!("a caller's callback fails")),
    );
    // The panic was contained: the log goes on acknowledging.
    let a = log
        .append("s-1", ExpectedRevision::Exact(Revision(0)), vec![ev(2)])
        .unwrap();
    assert_eq!(a.first_revision, Revision(1));
}

#[test]
fn a_subscription_started_after_close_ends_at_once() {
    let log = Arc::new(
        EventLog::builder_with_storage(Arc::new(MemoryStorage::new()))
            .open()
            .unwrap(),
    );
    log.append("s-1", ExpectedRevision::Any, vec![ev(1)])
        .unwrap();
    let mut sub = log.subscribe_all(SubscribeFrom::Start, AllOptions::default());
    let log = Arc::try_unwrap(log).unwrap();
    log.close().unwrap();
    let mut items = Vec::new();
    let end = loop {
        match sub.next_timeout(std::time::Duration::from_secs(30)) {
            Ok(Some(item)) => items.push(item),
            Ok(None) => panic!("the subscription hung after close"),
            Err(e) => break e,
        }
    };
    assert!(matches!(end, Error::Closed), "{end:?}");
    assert!(items.len() <= 2, "{items:?}");
}

#[test]
fn a_huge_max_age_hides_nothing() {
    let log = EventLog::builder_with_storage(Arc::new(MemoryStorage::new()))
        .open()
        .unwrap();
    log.append("s-1", ExpectedRevision::Any, vec![ev(1), ev(2)])
        .unwrap();
    let meta = ProposedEvent::json(
        EventId::from_u128(99),
        METADATA_EVENT_TYPE,
        format!("{{\"$maxAge\":{}}}", u64::MAX).into_bytes(),
    );
    log.append("$$s-1", ExpectedRevision::Any, vec![meta])
        .unwrap();
    let events = log
        .read_stream("s-1", Direction::Forwards, StreamStart::Edge, 10)
        .unwrap();
    assert_eq!(events.len(), 2);
}
