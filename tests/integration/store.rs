//! The `EventStore` trait over the embedded log: appends, reads and a subscription boundary.

use daojia_store::{
    AllOptions, AllStart, CurrentRevision, Direction, EmbeddedStore, EventId, EventStore,
    EventSubscription, ExpectedRevision, Filter, FilterTarget, ProposedEvent, Revision, StoreError,
    StreamStart, SubscribeFrom, SubscriptionItem,
};

fn event(i: u128) -> ProposedEvent {
    ProposedEvent::json(
        EventId::from_u128(i),
        "OrderPosted",
        format!("{{\"n\":{i}}}").into_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_appends_reads_and_maps_errors() {
    let dir = tempdir();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let a = store
        .append(
            "order-1",
            ExpectedRevision::NoStream,
            vec![event(1), event(2)],
        )
        .await
        .unwrap();
    assert_eq!(a.first_revision.0, 0);
    assert_eq!(a.count, 2);
    let err = store
        .append("order-1", ExpectedRevision::NoStream, vec![event(3)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::WrongExpectedVersion { .. }),
        "{err}"
    );
    let events = store
        .read_stream("order-1", Direction::Forwards, StreamStart::Edge, 10)
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.revision.0).collect::<Vec<_>>(),
        [0, 1]
    );
    let all = store
        .read_all(Direction::Forwards, AllStart::Edge, 10, None)
        .await
        .unwrap();
    assert_eq!(all.events.len(), 2);
    assert!(store.head().await.unwrap() > a.position);
    let missing = store
        .read_stream("order-2", Direction::Forwards, StreamStart::Edge, 10)
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::StreamNotFound { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_sees_each_event_once_across_catch_up() {
    let dir = tempdir();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for i in 0..300u128 {
        store
            .append(
                &format!("s-{}", i % 7),
                ExpectedRevision::Any,
                vec![event(i)],
            )
            .await
            .unwrap();
    }
    let mut sub = store
        .subscribe_all(SubscribeFrom::Start, AllOptions::default())
        .await
        .unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 300..900u128 {
                store
                    .append(
                        &format!("s-{}", i % 7),
                        ExpectedRevision::Any,
                        vec![event(i)],
                    )
                    .await
                    .unwrap();
            }
        })
    };
    let mut seen = Vec::new();
    let mut caught_up = 0;
    while seen.len() < 900 {
        match sub.next().await.unwrap().unwrap() {
            SubscriptionItem::Event(e) => seen.push(e),
            SubscriptionItem::CaughtUp => caught_up += 1,
            SubscriptionItem::Checkpoint(_) => {}
        }
    }
    writer.await.unwrap();
    assert_eq!(caught_up, 1);
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
    let mut ids: Vec<u128> = seen.iter().map(|e| e.id.as_u128()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..900u128).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_deletes_tombstones_and_reports_revisions() {
    let dir = tempdir();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    store
        .append(
            "order-1",
            ExpectedRevision::NoStream,
            vec![event(1), event(2)],
        )
        .await
        .unwrap();
    assert_eq!(
        store.stream_revision("order-1").await.unwrap(),
        CurrentRevision::Current(Revision(1))
    );
    store
        .delete("order-1", ExpectedRevision::Exact(Revision(1)))
        .await
        .unwrap();
    assert!(matches!(
        store
            .read_stream("order-1", Direction::Forwards, StreamStart::Edge, 10)
            .await,
        Err(StoreError::StreamNotFound { .. })
    ));
    let meta = store.stream_metadata("order-1").await.unwrap().unwrap();
    assert!(meta.truncate_before.is_some());
    let reopened = store
        .append("order-1", ExpectedRevision::NoStream, vec![event(3)])
        .await
        .unwrap();
    assert_eq!(reopened.first_revision, Revision(2));
    store
        .tombstone("order-1", ExpectedRevision::Any)
        .await
        .unwrap();
    let err = store
        .append("order-1", ExpectedRevision::Any, vec![event(4)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StreamDeleted { .. }), "{err}");
    let bad = store
        .append("", ExpectedRevision::Any, vec![event(5)])
        .await
        .unwrap_err();
    assert!(matches!(bad, StoreError::InvalidArgument(_)), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_filtered_subscriptions_through_the_trait() {
    let dir = tempdir();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    for i in 0..20u128 {
        let stream = if i % 2 == 0 {
            "order-even"
        } else {
            "worker-odd"
        };
        store
            .append(stream, ExpectedRevision::Any, vec![event(i)])
            .await
            .unwrap();
    }
    let mut by_stream = store
        .subscribe_stream("order-even", SubscribeFrom::After(Revision(6)))
        .await
        .unwrap();
    let mut revisions = Vec::new();
    while revisions.len() < 3 {
        if let SubscriptionItem::Event(e) = by_stream.next().await.unwrap().unwrap() {
            revisions.push(e.revision.0);
        }
    }
    assert_eq!(revisions, vec![7, 8, 9]);

    let filter = Filter::prefixes(FilterTarget::StreamName, ["worker-"]).unwrap();
    let mut filtered = store
        .subscribe_all(
            SubscribeFrom::Start,
            AllOptions {
                filter: Some(filter),
                checkpoint_interval: 0,
            },
        )
        .await
        .unwrap();
    let mut seen = 0;
    loop {
        match filtered.next().await.unwrap().unwrap() {
            SubscriptionItem::Event(e) => {
                assert_eq!(e.stream(), "worker-odd");
                seen += 1;
            }
            SubscriptionItem::CaughtUp => break,
            SubscriptionItem::Checkpoint(_) => {}
        }
    }
    assert_eq!(seen, 10);
    let page = store
        .read_all(
            Direction::Backwards,
            AllStart::Edge,
            3,
            Some(Filter::regex(FilterTarget::StreamName, "^(?!worker-)").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(page.events.len(), 3);
    assert!(page.events.iter().all(|e| e.stream() == "order-even"));
    assert!(
        page.events
            .windows(2)
            .all(|w| w[0].position > w[1].position)
    );
}

/// A temporary directory removed on drop.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn tempdir() -> TempDir {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "daojia-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_may_append_while_it_reads_its_subscription() {
    // A reactor: reads $all live and appends a derived event for each trigger, from inside the
    // same loop. The store must neither block the writer on the subscriber nor the subscriber
    // on its own append.
    let dir = tempdir();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let mut sub = store
        .subscribe_all(SubscribeFrom::Start, AllOptions::default())
        .await
        .unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..50u128 {
                store
                    .append("trigger-1", ExpectedRevision::Any, vec![event(i)])
                    .await
                    .unwrap();
            }
        })
    };
    let mut derived = 0;
    while derived < 50 {
        match sub.next().await.unwrap().unwrap() {
            SubscriptionItem::Event(e) if e.stream() == "trigger-1" => {
                let id = e.id.as_u128() + 1_000_000;
                store
                    .append("derived-1", ExpectedRevision::Any, vec![event(id)])
                    .await
                    .unwrap();
                derived += 1;
            }
            _ => {}
        }
    }
    writer.await.unwrap();
    let page = store
        .read_stream("derived-1", Direction::Forwards, StreamStart::Edge, 100)
        .await
        .unwrap();
    assert_eq!(page.len(), 50);
}
