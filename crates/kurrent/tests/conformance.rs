//! The same assertions against the embedded store and against `KurrentStore` talking to a
//! daojia server (in-process, port 0, `--insecure`) that plays the KurrentDB server.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use daojia_kurrent::KurrentStore;
use daojia_server::{Cli, Command, ServeError};
use daojia_store::{
    AllOptions, AllStart, ContentType, CurrentRevision, Direction, EmbeddedStore, EventId,
    EventStore, EventSubscription, ExpectedRevision, Filter, FilterTarget, ProposedEvent,
    RecordedEvent, Revision, StoreError, StreamStart, SubscribeFrom, SubscriptionItem,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// A temporary directory, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "daojia-kurrent-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daojia server on port 0 acting as the KurrentDB server.
struct StoreServer {
    port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    _dir: TempDir,
}

impl StoreServer {
    /// `--insecure`: no credentials needed.
    async fn start() -> StoreServer {
        StoreServer::start_with(None).await
    }

    /// With `tokens` (`ROLE:TOKEN:ACTOR,...`): clients log in with Basic `ACTOR:TOKEN`.
    async fn start_with(tokens: Option<&str>) -> StoreServer {
        StoreServer::start_at(tokens, TempDir::new(), "127.0.0.1:0").await
    }

    /// On `dir` (which may hold events) and `listen`.
    async fn start_at(tokens: Option<&str>, dir: TempDir, listen: &str) -> StoreServer {
        let data = dir.0.to_str().unwrap().to_string();
        let mut argv = vec![
            "daojia",
            "serve",
            "--data-dir",
            &data,
            "--listen",
            listen,
            "--shutdown-grace",
            "5",
        ];
        if tokens.is_none() {
            argv.push("--insecure");
        }
        let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not serve")
        };
        let mut config = args.resolve(tokens).unwrap();
        config.dispatch = None;
        config.reactor = false;
        let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, rx) = oneshot::channel();
        let task = tokio::spawn(daojia_server::run(listener, config, async {
            let _ = rx.await;
        }));
        // Serving once the store is open: the health Watch stream says so, no polling.
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut updates = HealthClient::new(channel)
            .watch(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        while let Some(update) = updates.next().await {
            if update.unwrap().status == ServingStatus::Serving as i32 {
                break;
            }
        }
        StoreServer {
            port: addr.port(),
            shutdown: Some(shutdown),
            task: Some(task),
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("kurrentdb://127.0.0.1:{}?tls=false", self.port)
    }

    fn url_as(&self, scheme: &str, user: &str, password: &str) -> String {
        format!(
            "{scheme}://{user}:{password}@127.0.0.1:{}?tls=false",
            self.port
        )
    }

    /// Stops the server and hands back its data directory.
    async fn stop_keeping_data(mut self) -> TempDir {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        std::mem::replace(&mut self._dir, TempDir::new())
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// The embedded store in a temporary directory.
async fn embedded() -> (EmbeddedStore, TempDir) {
    let dir = TempDir::new();
    (EmbeddedStore::open(&dir.0).unwrap(), dir)
}

/// `KurrentStore` over a fresh daojia server.
async fn kurrent() -> (KurrentStore, StoreServer) {
    let server = StoreServer::start().await;
    let store = KurrentStore::connect(&server.url()).await.unwrap();
    (store, server)
}

/// Declares each scenario twice: against the embedded store and over the protocol.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let (store, _dir) = super::embedded().await;
                    super::$scenario(&store).await;
                }
            )*
        }
        mod kurrent {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let (store, server) = super::kurrent().await;
                    super::$scenario(&store).await;
                    drop(store);
                    server.stop().await;
                }
            )*
        }
    };
}

conformance!(
    appends_with_every_expectation,
    wrong_expected_versions_carry_their_details,
    retries_with_the_same_ids_write_nothing,
    streams_read_both_ways,
    all_reads_both_ways_and_in_pages,
    filters_pick_by_stream_name_or_event_type,
    subscriptions_catch_up_then_go_live,
    filtered_subscriptions_send_checkpoints,
    soft_delete_reopens_and_tombstone_is_final,
    metadata_is_read_back_and_limits_reads,
    head_is_past_every_committed_event,
);

fn event(n: u128, event_type: &str) -> ProposedEvent {
    ProposedEvent::json(
        EventId::from_u128(n),
        event_type,
        format!("{{\"n\":{n}, \"kind\":\"{event_type}\"}}"),
    )
    .with_metadata(format!("{{\"correlation\":\"c-{n}\"}}"))
}

/// The expectation and actual revision of a wrong-expected-version error.
fn wrong_expected<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
) -> (ExpectedRevision, CurrentRevision) {
    match result {
        Err(StoreError::WrongExpectedVersion {
            expected, actual, ..
        }) => (expected, actual),
        other => panic!("expected a wrong expected version, got {other:?}"),
    }
}

fn now_ticks() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(d.as_nanos() / 100).unwrap()
}

async fn appends_with_every_expectation<S: EventStore>(store: &S) {
    let s = "order-append";
    let a = store
        .append(
            s,
            ExpectedRevision::NoStream,
            vec![event(1, "OrderPosted"), event(2, "OrderTaken")],
        )
        .await
        .unwrap();
    assert_eq!((a.first_revision, a.count), (Revision(0), 2));
    assert_eq!(a.current_revision(), CurrentRevision::Current(Revision(1)));
    let b = store
        .append(
            s,
            ExpectedRevision::Exact(Revision(1)),
            vec![event(3, "OrderStarted")],
        )
        .await
        .unwrap();
    assert_eq!((b.first_revision, b.count), (Revision(2), 1));
    assert!(b.position > a.position);
    let c = store
        .append(s, ExpectedRevision::Any, vec![event(4, "OrderFinished")])
        .await
        .unwrap();
    assert_eq!(c.first_revision, Revision(3));
    let d = store
        .append(
            s,
            ExpectedRevision::StreamExists,
            vec![event(5, "OrderRated")],
        )
        .await
        .unwrap();
    assert_eq!(d.first_revision, Revision(4));
    assert!(d.position > c.position && c.position > b.position);
    assert_eq!(
        store.stream_revision(s).await.unwrap(),
        CurrentRevision::Current(Revision(4))
    );
    assert_eq!(
        store.stream_revision("order-none").await.unwrap(),
        CurrentRevision::NoStream
    );
    // What was written reads back intact.
    let events = store
        .read_stream(s, Direction::Forwards, StreamStart::Edge, 10)
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(RecordedEvent::event_type).collect();
    assert_eq!(
        types,
        [
            "OrderPosted",
            "OrderTaken",
            "OrderStarted",
            "OrderFinished",
            "OrderRated"
        ]
    );
    let first = &events[0];
    assert_eq!(first.id, EventId::from_u128(1));
    assert_eq!(first.stream(), s);
    assert_eq!(first.content_type, ContentType::Json);
    assert_eq!(first.data_slice(), b"{\"n\":1, \"kind\":\"OrderPosted\"}");
    assert_eq!(first.metadata_slice(), b"{\"correlation\":\"c-1\"}");
    assert!(first.position < events[1].position);
    assert_eq!(events[1].position, a.position);
    let age = now_ticks() - first.created_ticks;
    assert!((0..600_000_000).contains(&age), "created {age} ticks ago");
    assert_eq!(events[4].position, d.position);
}

async fn wrong_expected_versions_carry_their_details<S: EventStore>(store: &S) {
    let s = "order-wev";
    store
        .append(
            s,
            ExpectedRevision::NoStream,
            vec![event(1, "A"), event(2, "B")],
        )
        .await
        .unwrap();
    let cases = [
        (
            ExpectedRevision::NoStream,
            CurrentRevision::Current(Revision(1)),
        ),
        (
            ExpectedRevision::Exact(Revision(7)),
            CurrentRevision::Current(Revision(1)),
        ),
        (
            ExpectedRevision::Exact(Revision(0)),
            CurrentRevision::Current(Revision(1)),
        ),
    ];
    for (n, (expected, actual)) in (10u128..).zip(cases) {
        let got = wrong_expected(store.append(s, expected, vec![event(n, "C")]).await);
        assert_eq!(got, (expected, actual));
    }
    let got = wrong_expected(
        store
            .append(
                "order-missing",
                ExpectedRevision::StreamExists,
                vec![event(20, "C")],
            )
            .await,
    );
    assert_eq!(
        got,
        (ExpectedRevision::StreamExists, CurrentRevision::NoStream)
    );
    let got = wrong_expected(
        store
            .append(
                "order-missing",
                ExpectedRevision::Exact(Revision(0)),
                vec![event(21, "C")],
            )
            .await,
    );
    assert_eq!(
        got,
        (
            ExpectedRevision::Exact(Revision(0)),
            CurrentRevision::NoStream
        )
    );
    // Deletes check their expectation too, and say what the stream holds.
    let got = wrong_expected(store.delete(s, ExpectedRevision::Exact(Revision(5))).await);
    assert_eq!(
        got,
        (
            ExpectedRevision::Exact(Revision(5)),
            CurrentRevision::Current(Revision(1))
        )
    );
    let got = wrong_expected(
        store
            .tombstone(s, ExpectedRevision::Exact(Revision(0)))
            .await,
    );
    assert_eq!(
        got,
        (
            ExpectedRevision::Exact(Revision(0)),
            CurrentRevision::Current(Revision(1))
        )
    );
    // Nothing was written by the refused requests.
    assert_eq!(
        store.stream_revision(s).await.unwrap(),
        CurrentRevision::Current(Revision(1))
    );
}

async fn retries_with_the_same_ids_write_nothing<S: EventStore>(store: &S) {
    let s = "order-retry";
    let batch = || vec![event(1, "OrderPosted"), event(2, "OrderTaken")];
    let first = store
        .append(s, ExpectedRevision::NoStream, batch())
        .await
        .unwrap();
    let again = store
        .append(s, ExpectedRevision::NoStream, batch())
        .await
        .unwrap();
    assert_eq!(again, first);
    let next = store
        .append(
            s,
            ExpectedRevision::Exact(Revision(1)),
            vec![event(3, "OrderStarted")],
        )
        .await
        .unwrap();
    let next_again = store
        .append(
            s,
            ExpectedRevision::Exact(Revision(1)),
            vec![event(3, "OrderStarted")],
        )
        .await
        .unwrap();
    assert_eq!(next_again, next);
    let events = store
        .read_stream(s, Direction::Forwards, StreamStart::Edge, 100)
        .await
        .unwrap();
    assert_eq!(events.len(), 3);
    let all = store
        .read_all(Direction::Forwards, AllStart::Edge, 100, None)
        .await
        .unwrap();
    assert_eq!(all.events.iter().filter(|e| e.stream() == s).count(), 3);
}

async fn streams_read_both_ways<S: EventStore>(store: &S) {
    let s = "worker-read";
    let batch: Vec<_> = (1..=5).map(|n| event(n, "WorkerSeen")).collect();
    store
        .append(s, ExpectedRevision::NoStream, batch)
        .await
        .unwrap();
    let revisions =
        |events: Vec<RecordedEvent>| -> Vec<u64> { events.iter().map(|e| e.revision.0).collect() };
    let read = |direction, start, n| store.read_stream(s, direction, start, n);
    assert_eq!(
        revisions(
            read(Direction::Forwards, StreamStart::Edge, 10)
                .await
                .unwrap()
        ),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(
        revisions(
            read(Direction::Forwards, StreamStart::Revision(Revision(2)), 2)
                .await
                .unwrap()
        ),
        [2, 3]
    );
    assert_eq!(
        revisions(
            read(Direction::Backwards, StreamStart::Edge, 2)
                .await
                .unwrap()
        ),
        [4, 3]
    );
    assert_eq!(
        revisions(
            read(Direction::Backwards, StreamStart::Revision(Revision(2)), 10)
                .await
                .unwrap()
        ),
        [2, 1, 0]
    );
    assert!(
        read(Direction::Forwards, StreamStart::Revision(Revision(9)), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let missing = store
        .read_stream("worker-missing", Direction::Forwards, StreamStart::Edge, 10)
        .await;
    assert!(
        matches!(missing, Err(StoreError::StreamNotFound { ref stream }) if stream == "worker-missing"),
        "{missing:?}"
    );
}

async fn all_reads_both_ways_and_in_pages<S: EventStore>(store: &S) {
    for (i, s) in ["order-a", "order-b", "order-c"].into_iter().enumerate() {
        let base = (i as u128) * 10;
        let batch = (1..=3).map(|n| event(base + n, "OrderPosted")).collect();
        store
            .append(s, ExpectedRevision::NoStream, batch)
            .await
            .unwrap();
    }
    let forwards = store
        .read_all(Direction::Forwards, AllStart::Edge, 100, None)
        .await
        .unwrap();
    let ours: Vec<&RecordedEvent> = forwards
        .events
        .iter()
        .filter(|e| !e.stream().starts_with('$'))
        .collect();
    assert_eq!(ours.len(), 9);
    assert!(forwards.end_of_log);
    assert!(
        forwards
            .events
            .windows(2)
            .all(|w| w[0].position < w[1].position)
    );
    let backwards = store
        .read_all(Direction::Backwards, AllStart::Edge, 100, None)
        .await
        .unwrap();
    let mut reversed = backwards.events.clone();
    reversed.reverse();
    assert_eq!(reversed, forwards.events);
    // Pages of two, forwards then backwards, cover the same events once each.
    let mut paged = Vec::new();
    let mut start = AllStart::Edge;
    loop {
        let page = store
            .read_all(Direction::Forwards, start, 2, None)
            .await
            .unwrap();
        assert!(page.events.len() <= 2);
        paged.extend(page.events);
        if page.end_of_log {
            break;
        }
        start = AllStart::Position(page.next);
    }
    assert_eq!(paged, forwards.events);
    let mut paged = Vec::new();
    let mut start = AllStart::Edge;
    loop {
        let page = store
            .read_all(Direction::Backwards, start, 2, None)
            .await
            .unwrap();
        paged.extend(page.events);
        if page.end_of_log {
            break;
        }
        start = AllStart::Position(page.next);
    }
    assert_eq!(paged, backwards.events);
    // Forwards from an event's own position includes it.
    let fourth = &forwards.events[3];
    let from = store
        .read_all(
            Direction::Forwards,
            AllStart::Position(fourth.position),
            1,
            None,
        )
        .await
        .unwrap();
    assert_eq!(from.events.first(), Some(fourth));
}

async fn filters_pick_by_stream_name_or_event_type<S: EventStore>(store: &S) {
    let writes = [
        ("order-f1", "OrderPosted"),
        ("worker-f1", "WorkerJoined"),
        ("order-f2", "OrderTaken"),
        ("customer-f1", "CustomerJoined"),
    ];
    for (n, (s, t)) in (1u128..).zip(writes) {
        store
            .append(s, ExpectedRevision::Any, vec![event(n, t)])
            .await
            .unwrap();
    }
    let streams = |filter: Filter| async move {
        let slice = store
            .read_all(Direction::Forwards, AllStart::Edge, 100, Some(filter))
            .await
            .unwrap();
        slice
            .events
            .iter()
            .map(|e| e.stream().to_string())
            .collect::<Vec<_>>()
    };
    let f = Filter::prefixes(FilterTarget::StreamName, ["order-"]).unwrap();
    assert_eq!(streams(f).await, ["order-f1", "order-f2"]);
    let f = Filter::prefixes(FilterTarget::StreamName, ["worker-", "customer-"]).unwrap();
    assert_eq!(streams(f).await, ["worker-f1", "customer-f1"]);
    let f = Filter::regex(FilterTarget::StreamName, "^(worker|customer)-f1$").unwrap();
    assert_eq!(streams(f).await, ["worker-f1", "customer-f1"]);
    let f = Filter::prefixes(FilterTarget::EventType, ["Order"]).unwrap();
    assert_eq!(streams(f).await, ["order-f1", "order-f2"]);
    let f = Filter::regex(FilterTarget::EventType, "Joined$").unwrap();
    assert_eq!(streams(f).await, ["worker-f1", "customer-f1"]);
    // Backwards too.
    let f = Filter::prefixes(FilterTarget::EventType, ["Order"]).unwrap();
    let back = store
        .read_all(Direction::Backwards, AllStart::Edge, 100, Some(f))
        .await
        .unwrap();
    let names: Vec<&str> = back.events.iter().map(RecordedEvent::stream).collect();
    assert_eq!(names, ["order-f2", "order-f1"]);
}

/// Takes items until `n` events have arrived; returns the events' ids and whether caught-up
/// came (and after how many events).
async fn take_events<Sub: EventSubscription>(
    sub: &mut Sub,
    n: usize,
) -> (Vec<EventId>, Option<usize>) {
    let mut ids = Vec::new();
    let mut caught_up = None;
    while ids.len() < n {
        match sub.next().await.unwrap().unwrap() {
            SubscriptionItem::Event(e) => ids.push(e.id),
            SubscriptionItem::CaughtUp => {
                assert!(caught_up.is_none(), "caught-up came twice");
                caught_up = Some(ids.len());
            }
            SubscriptionItem::Checkpoint(_) => {}
        }
    }
    (ids, caught_up)
}

/// Takes items until caught-up.
async fn until_caught_up<Sub: EventSubscription>(sub: &mut Sub) -> Vec<EventId> {
    let mut ids = Vec::new();
    loop {
        match sub.next().await.unwrap().unwrap() {
            SubscriptionItem::Event(e) => ids.push(e.id),
            SubscriptionItem::CaughtUp => return ids,
            SubscriptionItem::Checkpoint(_) => {}
        }
    }
}

fn ids(range: std::ops::RangeInclusive<u128>) -> Vec<EventId> {
    range.map(EventId::from_u128).collect()
}

async fn subscriptions_catch_up_then_go_live<S: EventStore>(store: &S) {
    let s = "order-sub";
    let history: Vec<_> = (1..=3).map(|n| event(n, "OrderPosted")).collect();
    let appended = store
        .append(s, ExpectedRevision::NoStream, history)
        .await
        .unwrap();

    let mut from_start = store
        .subscribe_stream(s, SubscribeFrom::Start)
        .await
        .unwrap();
    let mut after_first = store
        .subscribe_stream(s, SubscribeFrom::After(Revision(0)))
        .await
        .unwrap();
    let mut at_end = store.subscribe_stream(s, SubscribeFrom::End).await.unwrap();
    let mut all_start = store
        .subscribe_all(SubscribeFrom::Start, AllOptions::default())
        .await
        .unwrap();
    let first_position = store
        .read_stream(s, Direction::Forwards, StreamStart::Edge, 1)
        .await
        .unwrap()[0]
        .position;
    let mut all_after = store
        .subscribe_all(SubscribeFrom::After(first_position), AllOptions::default())
        .await
        .unwrap();
    let mut all_end = store
        .subscribe_all(SubscribeFrom::End, AllOptions::default())
        .await
        .unwrap();

    assert_eq!(until_caught_up(&mut from_start).await, ids(1..=3));
    assert_eq!(until_caught_up(&mut after_first).await, ids(2..=3));
    assert_eq!(until_caught_up(&mut at_end).await, Vec::<EventId>::new());
    assert_eq!(until_caught_up(&mut all_start).await, ids(1..=3));
    assert_eq!(until_caught_up(&mut all_after).await, ids(2..=3));
    assert_eq!(until_caught_up(&mut all_end).await, Vec::<EventId>::new());

    // Live: every subscription sees the new events, and no second caught-up.
    let live: Vec<_> = (4..=5).map(|n| event(n, "OrderTaken")).collect();
    let more = store
        .append(s, ExpectedRevision::Exact(Revision(2)), live)
        .await
        .unwrap();
    assert!(more.position > appended.position);
    for sub in [
        &mut from_start,
        &mut after_first,
        &mut at_end,
        &mut all_start,
        &mut all_after,
        &mut all_end,
    ] {
        let (got, caught_up) = take_events(sub, 2).await;
        assert_eq!(got, ids(4..=5));
        assert_eq!(caught_up, None);
    }
}

async fn filtered_subscriptions_send_checkpoints<S: EventStore>(store: &S) {
    // Mostly events the filter skips: checkpoints tell the subscriber how far it got.
    let mut skipped = Vec::new();
    for n in 1..=6u128 {
        let a = store
            .append(
                &format!("worker-{n}"),
                ExpectedRevision::NoStream,
                vec![event(n, "WorkerJoined")],
            )
            .await
            .unwrap();
        skipped.push(a.position);
    }
    let order = store
        .append(
            "order-chk",
            ExpectedRevision::NoStream,
            vec![event(7, "OrderPosted")],
        )
        .await
        .unwrap();
    let options = AllOptions {
        filter: Some(Filter::prefixes(FilterTarget::StreamName, ["order-"]).unwrap()),
        checkpoint_interval: 1,
    };
    let mut sub = store
        .subscribe_all(SubscribeFrom::Start, options)
        .await
        .unwrap();
    let mut events = Vec::new();
    let mut checkpoints = Vec::new();
    loop {
        match sub.next().await.unwrap().unwrap() {
            SubscriptionItem::Event(e) => events.push(e),
            SubscriptionItem::Checkpoint(p) => checkpoints.push(p),
            SubscriptionItem::CaughtUp => break,
        }
    }
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, EventId::from_u128(7));
    assert_eq!(events[0].position, order.position);
    assert!(!checkpoints.is_empty(), "no checkpoint in the history");
    assert!(checkpoints.windows(2).all(|w| w[0] <= w[1]));
    // Each says that at least the first skipped event was considered.
    assert!(
        checkpoints.iter().all(|p| *p > skipped[0]),
        "{checkpoints:?} against {skipped:?}"
    );
    // Without an interval no checkpoint comes, filter or not.
    let options = AllOptions {
        filter: Some(Filter::prefixes(FilterTarget::StreamName, ["order-"]).unwrap()),
        checkpoint_interval: 0,
    };
    let mut quiet = store
        .subscribe_all(SubscribeFrom::Start, options)
        .await
        .unwrap();
    loop {
        match quiet.next().await.unwrap().unwrap() {
            SubscriptionItem::Event(e) => assert_eq!(e.id, EventId::from_u128(7)),
            SubscriptionItem::Checkpoint(p) => panic!("checkpoint {p} without an interval"),
            SubscriptionItem::CaughtUp => break,
        }
    }
}

async fn soft_delete_reopens_and_tombstone_is_final<S: EventStore>(store: &S) {
    let s = "order-del";
    store
        .append(
            s,
            ExpectedRevision::NoStream,
            vec![event(1, "A"), event(2, "B")],
        )
        .await
        .unwrap();
    store
        .delete(s, ExpectedRevision::Exact(Revision(1)))
        .await
        .unwrap();
    let read = store
        .read_stream(s, Direction::Forwards, StreamStart::Edge, 10)
        .await;
    assert!(
        matches!(read, Err(StoreError::StreamNotFound { .. })),
        "{read:?}"
    );
    let meta = store.stream_metadata(s).await.unwrap().unwrap();
    assert!(
        meta.is_deleted_marker() || meta.truncate_before == Some(2),
        "{meta:?}"
    );
    // Reopened by an append; revisions go on.
    let again = store
        .append(s, ExpectedRevision::NoStream, vec![event(3, "C")])
        .await
        .unwrap();
    assert_eq!(again.first_revision, Revision(2));
    let events = store
        .read_stream(s, Direction::Forwards, StreamStart::Edge, 10)
        .await
        .unwrap();
    assert_eq!(events.iter().map(|e| e.revision.0).collect::<Vec<_>>(), [2]);

    let t = "order-tomb";
    store
        .append(t, ExpectedRevision::NoStream, vec![event(10, "A")])
        .await
        .unwrap();
    store.tombstone(t, ExpectedRevision::Any).await.unwrap();
    let read = store
        .read_stream(t, Direction::Forwards, StreamStart::Edge, 10)
        .await;
    assert!(
        matches!(read, Err(StoreError::StreamDeleted { ref stream }) if stream == t),
        "{read:?}"
    );
    let append = store
        .append(t, ExpectedRevision::Any, vec![event(11, "B")])
        .await;
    assert!(
        matches!(append, Err(StoreError::StreamDeleted { .. })),
        "{append:?}"
    );
    // A subscription to it delivers none of its events: it fails, at once or on its first
    // item, or has nothing to catch up on.
    match store.subscribe_stream(t, SubscribeFrom::Start).await {
        Err(e) => assert!(matches!(e, StoreError::StreamDeleted { .. }), "{e:?}"),
        Ok(mut sub) => match sub.next().await {
            Some(Ok(SubscriptionItem::CaughtUp)) | Some(Err(StoreError::StreamDeleted { .. })) => {}
            other => panic!("subscription to a tombstoned stream gave {other:?}"),
        },
    }
}

async fn metadata_is_read_back_and_limits_reads<S: EventStore>(store: &S) {
    let s = "order-meta";
    assert_eq!(store.stream_metadata(s).await.unwrap(), None);
    let batch = (1..=4).map(|n| event(n, "OrderNoted")).collect();
    store
        .append(s, ExpectedRevision::NoStream, batch)
        .await
        .unwrap();
    let metadata = ProposedEvent::json(
        EventId::from_u128(100),
        "$metadata",
        &br#"{"$maxCount":2,"owner":"ops"}"#[..],
    );
    store
        .append(&format!("$${s}"), ExpectedRevision::Any, vec![metadata])
        .await
        .unwrap();
    let meta = store.stream_metadata(s).await.unwrap().unwrap();
    assert_eq!(meta.max_count, Some(2));
    assert_eq!(meta.raw["owner"], "ops");
    let events = store
        .read_stream(s, Direction::Forwards, StreamStart::Edge, 10)
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.revision.0).collect::<Vec<_>>(),
        [2, 3]
    );
}

async fn head_is_past_every_committed_event<S: EventStore>(store: &S) {
    let empty = store
        .read_all(Direction::Backwards, AllStart::Edge, 1, None)
        .await
        .unwrap();
    assert!(empty.events.is_empty());
    let start = store.head().await.unwrap();
    let a = store
        .append(
            "order-head",
            ExpectedRevision::NoStream,
            vec![event(1, "A")],
        )
        .await
        .unwrap();
    let after_a = store.head().await.unwrap();
    assert!(after_a > a.position && a.position >= start);
    let b = store
        .append(
            "order-head",
            ExpectedRevision::Exact(Revision(0)),
            vec![event(2, "B")],
        )
        .await
        .unwrap();
    let after_b = store.head().await.unwrap();
    assert!(after_b > b.position && b.position >= after_a);
    // Nothing is at or past the head.
    let past = store
        .read_all(Direction::Forwards, AllStart::Position(after_b), 10, None)
        .await
        .unwrap();
    assert!(past.events.is_empty(), "{:?}", past.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scheme_connects_with_or_without_credentials() {
    let server = StoreServer::start().await;
    for scheme in ["kurrentdb", "kurrent", "kdb", "esdb"] {
        let plain = format!("{scheme}://127.0.0.1:{}?tls=false", server.port);
        for url in [plain, server.url_as(scheme, "someone", "anything")] {
            let store = KurrentStore::connect(&url).await.unwrap();
            assert_eq!(store.head().await.unwrap().0, 0, "{url}");
            assert!(!store.url().contains("anything"), "{}", store.url());
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_decide_what_the_store_may_do() {
    const ADMIN: &str = "admin-token-0123456789abcdef";
    const ANALYTICS: &str = "analytics-token-0123456789abcdef";
    let tokens = format!("admin:{ADMIN}:writer,analytics:{ANALYTICS}:reader");
    let server = StoreServer::start_with(Some(&tokens)).await;
    let writer = KurrentStore::connect(&server.url_as("kurrentdb", "writer", ADMIN))
        .await
        .unwrap();
    let appended = writer
        .append(
            "order-auth",
            ExpectedRevision::NoStream,
            vec![event(1, "A")],
        )
        .await
        .unwrap();
    let reader = KurrentStore::connect(&server.url_as("kdb", "reader", ANALYTICS))
        .await
        .unwrap();
    let events = reader
        .read_stream("order-auth", Direction::Forwards, StreamStart::Edge, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(reader.head().await.unwrap().0, appended.position.0 + 1);
    // Read-only credentials cannot write, and wrong ones cannot even read.
    let refused = reader
        .append("order-auth", ExpectedRevision::Any, vec![event(2, "B")])
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Unavailable(m)) if m.contains("Access denied")),
        "{refused:?}"
    );
    let stranger = KurrentStore::connect(&server.url_as("esdb", "writer", "not-the-token"))
        .await
        .unwrap();
    let refused = stranger.head().await;
    assert!(
        matches!(&refused, Err(StoreError::Unavailable(m)) if m.contains("Access denied")),
        "{refused:?}"
    );
    assert_eq!(
        writer.stream_revision("order-auth").await.unwrap(),
        CurrentRevision::Current(Revision(0))
    );
    drop((writer, reader, stranger));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_there_is_unavailable() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let url = format!("kurrentdb://127.0.0.1:{port}?tls=false");
    let err = KurrentStore::connect(&url).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains(&format!("127.0.0.1:{port}"))),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_ends_with_unavailable_when_its_server_stops() {
    let server = StoreServer::start().await;
    let store = KurrentStore::connect(&server.url()).await.unwrap();
    store
        .append(
            "order-stop",
            ExpectedRevision::NoStream,
            vec![event(1, "A")],
        )
        .await
        .unwrap();
    let mut sub = store
        .subscribe_stream("order-stop", SubscribeFrom::Start)
        .await
        .unwrap();
    assert_eq!(until_caught_up(&mut sub).await, ids(1..=1));
    server.stop().await;
    let end = sub.next().await;
    assert!(
        matches!(end, Some(Err(StoreError::Unavailable(_)))),
        "{end:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_carries_on_when_its_server_comes_back() {
    let server = StoreServer::start().await;
    let port = server.port;
    let store = KurrentStore::connect(&server.url()).await.unwrap();
    store
        .append(
            "order-back",
            ExpectedRevision::NoStream,
            vec![event(1, "A")],
        )
        .await
        .unwrap();
    let dir = server.stop_keeping_data().await;
    let down = store.head().await;
    assert!(matches!(down, Err(StoreError::Unavailable(_))), "{down:?}");
    // The same port and data, as a restarted KurrentDB node would be.
    let server = StoreServer::start_at(None, dir, &format!("127.0.0.1:{port}")).await;
    // The client notices the new connection on its own; an operation that was already on its
    // way to the old one may still fail once.
    let mut outcomes = Vec::new();
    for n in 2..=4u128 {
        let r = store
            .append("order-back", ExpectedRevision::Any, vec![event(n, "B")])
            .await;
        let ok = r.is_ok();
        outcomes.push(r);
        if ok {
            break;
        }
    }
    assert!(
        matches!(outcomes.last(), Some(Ok(_))),
        "no append succeeded after the restart: {outcomes:?}"
    );
    let events = store
        .read_stream("order-back", Direction::Forwards, StreamStart::Edge, 10)
        .await
        .unwrap();
    assert_eq!(events.first().map(|e| e.id), Some(EventId::from_u128(1)));
    drop(store);
    server.stop().await;
}
