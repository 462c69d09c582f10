//! Live dispatch through the real server with a manual clock: instant orders matched in
//! batches once the batch window has passed, scheduled orders per time slot at once, the offer
//! cascade on expiry, the grab pool falling back to offers, the favourite first, emergency calls
//! offered in parallel and escalated to ops after a minute, a restart in the middle of
//! dispatching, and no worker ever holding overlapping accepted orders. Time moves only through
//! `Admin.SetClock`; `Admin.WaitSettled` says when the dispatcher has caught up (no sleeps).

use clap::Parser;
use daojia_domain::order::GeoPoint;
use daojia_domain::{CompanyId, OrderId, RegistryId, Timestamp, WorkerId};
use daojia_server::pb;
use daojia_server::pb::admin_client::AdminClient;
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::pb::queries_client::QueriesClient;
use daojia_server::pb::worker_app_client::WorkerAppClient;
use daojia_server::{Clock, Command, ServeError};
use daojia_store::{EmbeddedStore, EventStore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::harness::as_;
use crate::seed::{NewWorker, Seeder};
use crate::store::{TempDir, tempdir};

const CUSTOMER_TOKEN: &str = "customer-token-0123456789";
const WORKER_TOKEN: &str = "worker-token-0123456789ab";
const OPS_TOKEN: &str = "ops-token-0123456789abcdef";
const ADMIN_TOKEN: &str = "admin-token-0123456789abcd";

const NOW: Timestamp = Timestamp(1_800_000_000_000);
const SECOND_MS: i64 = 1_000;
const MINUTE_MS: i64 = 60 * SECOND_MS;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The customer's home, in 临川区 (Fuzhou, Jiangxi).
fn home() -> GeoPoint {
    GeoPoint::new(27.95, 116.36).unwrap()
}

/// Worker `n` (1-based) lives `n` km north of the customer's home.
fn worker(n: u128) -> WorkerId {
    WorkerId::from_u128(0xB0 + n)
}

fn worker_home(n: u128) -> GeoPoint {
    GeoPoint::new(27.95 + 0.009 * n as f64, 116.36).unwrap()
}

fn id(n: u128) -> String {
    WorkerId::from_u128(n).to_string()
}

fn at(ms: i64) -> Option<pb::Timestamp> {
    Some(pb::Timestamp {
        seconds: ms / 1_000,
        nanos: 0,
    })
}

/// Registers `workers` contracted, certified workers, worker `n` living `n` km away.
async fn seed(dir: &TempDir, workers: u128) {
    let store = EmbeddedStore::open(dir.path().join("data")).unwrap();
    let mut seeder = Seeder::new(
        store,
        CompanyId::from_u128(0xCC),
        RegistryId::from_u128(0x4E6),
        Timestamp(NOW.0 - 30 * DAY_MS),
    );
    for n in 1..=workers {
        // Valid identity numbers (GB 11643 check digit), one per worker.
        let identity = identity(n);
        seeder
            .worker(NewWorker {
                id: worker(n),
                identity: &identity,
                home: worker_home(n),
                contract: true,
                certified: true,
            })
            .await;
    }
}

/// An 18-character identity number with a valid check digit.
fn identity(n: u128) -> String {
    let body = format!("11010519800101{:03}", n % 1000);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = body
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    format!("{body}{}", CHECK[(sum % 11) as usize])
}

struct Platform {
    channel: Channel,
    clock: Clock,
    dir: Option<TempDir>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl Platform {
    async fn start(workers: u128) -> Platform {
        let dir = tempdir();
        seed(&dir, workers).await;
        Platform::start_in(dir, Clock::manual(NOW)).await
    }

    async fn start_in(dir: TempDir, clock: Clock) -> Platform {
        Platform::start_with(dir, clock, &[]).await
    }

    /// Starts the server on `dir` with `extra` `daojia serve` options.
    async fn start_with(dir: TempDir, clock: Clock, extra: &[&str]) -> Platform {
        let datadir = dir.path().join("data");
        let mut argv = vec![
            "daojia",
            "serve",
            "--data-dir",
            datadir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--batch-window-ms",
            "2000",
        ];
        argv.extend_from_slice(extra);
        let Command::Serve(args) = daojia_server::Cli::try_parse_from(argv).unwrap().command else {
            panic!("not serve")
        };
        let tokens = format!(
            "customer-app:{CUSTOMER_TOKEN},worker-app:{WORKER_TOKEN},ops:{OPS_TOKEN}:ops-desk,\
             admin:{ADMIN_TOKEN}:sim"
        );
        let mut config = args.resolve(Some(&tokens)).unwrap();
        config.clock = clock.clone();
        let started = crate::harness::start(config, "").await;
        Platform {
            channel: started.channel,
            clock,
            dir: Some(dir),
            shutdown: started.shutdown,
            task: started.task,
        }
    }

    async fn stop(mut self) -> TempDir {
        let _ = self.shutdown.send(());
        self.task.await.unwrap().unwrap();
        self.dir.take().unwrap()
    }

    fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
    }

    /// Moves the clock `by_ms` forward through `Admin.SetClock` and waits until settled.
    async fn advance(&self, by_ms: i64) -> u64 {
        let to = self.clock.now().0 + by_ms;
        self.admin()
            .set_clock(as_(ADMIN_TOKEN, pb::SetClockRequest { now: at(to) }))
            .await
            .unwrap();
        self.settle().await
    }

    /// Waits until the dispatcher and reactor have caught up; the last position.
    async fn settle(&self) -> u64 {
        self.admin()
            .wait_settled(as_(
                OPS_TOKEN,
                pb::WaitSettledRequest { timeout_ms: 30_000 },
            ))
            .await
            .unwrap()
            .into_inner()
            .last_position
    }

    /// Posts order `order` of `service` for `[start, start + hours)` at the customer's home.
    async fn post(
        &self,
        order: u128,
        service: &str,
        start: i64,
        hours: i64,
        dispatch: Option<pb::post_order_request::Dispatch>,
    ) {
        self.post_at(order, service, start, hours, dispatch, home())
            .await
    }

    /// [`Platform::post`] at `location`.
    async fn post_at(
        &self,
        order: u128,
        service: &str,
        start: i64,
        hours: i64,
        dispatch: Option<pb::post_order_request::Dispatch>,
        location: GeoPoint,
    ) {
        let quantity = if service == "E05" { 1 } else { hours as u32 };
        self.customer()
            .post_order(as_(
                CUSTOMER_TOKEN,
                pb::PostOrderRequest {
                    command_id: id(0x1_0000 + order),
                    order_id: id(order),
                    customer_id: id(0xC0),
                    service_code: service.into(),
                    quantity,
                    workers: 1,
                    window_start: at(start),
                    window_end: at(start + hours * HOUR_MS),
                    location: Some(pb::LatLon {
                        lat: location.lat,
                        lon: location.lon,
                    }),
                    dispatch,
                },
            ))
            .await
            .unwrap();
    }

    fn customer(&self) -> CustomerAppClient<Channel> {
        CustomerAppClient::new(self.channel.clone())
    }

    async fn order(&self, order: u128, min_position: u64) -> pb::Order {
        self.customer()
            .get_order(as_(
                CUSTOMER_TOKEN,
                pb::GetOrderRequest {
                    order_id: id(order),
                    min_position,
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// Workers with a pending offer on order `order`'s first slot, as of `min_position`.
    async fn offered(&self, order: u128, min_position: u64) -> Vec<String> {
        let mut v = self.order(order, min_position).await.slots[0]
            .offered_to
            .clone();
        v.sort();
        v
    }

    async fn accept(&self, command: u128, order: &str, who: &str) -> Result<(), tonic::Status> {
        WorkerAppClient::new(self.channel.clone())
            .accept_offer(as_(
                WORKER_TOKEN,
                pb::AcceptOfferRequest {
                    command_id: id(command),
                    order_id: order.into(),
                    worker_id: who.into(),
                    slot: 0,
                },
            ))
            .await
            .map(|_| ())
    }

    async fn follow_ups(&self, min_position: u64) -> Vec<pb::FollowUp> {
        QueriesClient::new(self.channel.clone())
            .list_open_follow_ups(as_(
                OPS_TOKEN,
                pb::ListOpenRequest {
                    min_position,
                    page_size: 500,
                    page_token: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .follow_ups
    }

    /// Emergency follow-ups of `order`, once the reactor has opened `want` of them (it appends
    /// after the event, at a position nobody knows in advance: ask again until settled).
    async fn emergency_follow_ups(&self, order: u128, min_position: u64) -> Vec<pb::FollowUp> {
        let _ = self.settle().await;
        self.follow_ups(min_position)
            .await
            .into_iter()
            .filter(|f| f.reason == pb::FollowUpReason::Emergency as i32 && f.order_id == id(order))
            .collect()
    }
}

/// Every `OrderOffered` event of `order` in the log, as (worker id text) in log order.
async fn offers_in_log(dir: &TempDir, order: u128) -> Vec<String> {
    let store = EmbeddedStore::open(dir.path().join("data")).unwrap();
    let stream = OrderId::from_u128(order).stream_name();
    let events = store
        .read_stream(
            &stream,
            daojia_store::Direction::Forwards,
            daojia_store::StreamStart::Edge,
            1_000,
        )
        .await
        .unwrap();
    events
        .iter()
        .filter(|e| e.event_type() == "OrderOffered")
        .map(|e| {
            let v: serde_json::Value = serde_json::from_slice(e.data_slice()).unwrap();
            let text = v.to_string();
            (1..=16)
                .map(worker)
                .map(|w| w.to_string())
                .find(|w| text.contains(w.as_str()))
                .expect("an offer names a seeded worker")
        })
        .collect()
}

fn platform_offer() -> Option<pb::post_order_request::Dispatch> {
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_orders_wait_for_the_batch_window_and_are_matched_together() {
    let platform = Platform::start(2).await;
    let soon = NOW.0 + HOUR_MS;
    platform.post(0xA1, "C01", soon, 3, platform_offer()).await;
    platform.post(0xA2, "C01", soon, 3, platform_offer()).await;
    // Within the batch window nothing is offered, however long the dispatcher runs.
    let settled = platform.settle().await;
    assert!(platform.offered(0xA1, settled).await.is_empty());
    assert!(platform.offered(0xA2, settled).await.is_empty());
    let settled = platform.advance(SECOND_MS).await;
    assert!(platform.offered(0xA1, settled).await.is_empty());
    // Past it, one batch: both orders at once, each to a different worker (the same window).
    let settled = platform.advance(SECOND_MS).await;
    let a = platform.offered(0xA1, settled).await;
    let b = platform.offered(0xA2, settled).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_ne!(a, b);
    let mut both = [a[0].clone(), b[0].clone()];
    both.sort();
    let mut expected = [worker(1).to_string(), worker(2).to_string()];
    expected.sort();
    assert_eq!(both, expected);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_orders_are_matched_in_their_slot_at_once_and_lapses_cascade() {
    let platform = Platform::start(3).await;
    let tomorrow = NOW.0 + DAY_MS;
    platform
        .post(0xA1, "C01", tomorrow, 3, platform_offer())
        .await;
    // Scheduled: no batch window to wait for; the nearest worker first.
    let settled = platform.settle().await;
    assert_eq!(
        platform.offered(0xA1, settled).await,
        [worker(1).to_string()]
    );
    // Nobody answers: past the 5-minute expiry the offer lapses and the next one is offered,
    // then the next.
    let settled = platform.advance(5 * MINUTE_MS).await;
    assert_eq!(
        platform.offered(0xA1, settled).await,
        [worker(2).to_string()]
    );
    let settled = platform.advance(5 * MINUTE_MS).await;
    assert_eq!(
        platform.offered(0xA1, settled).await,
        [worker(3).to_string()]
    );
    // Everyone passed over: nobody left, nobody offered twice.
    let settled = platform.advance(5 * MINUTE_MS).await;
    assert!(platform.offered(0xA1, settled).await.is_empty());
    let dir = platform.stop().await;
    assert_eq!(
        offers_in_log(&dir, 0xA1).await,
        [1, 2, 3].map(|n| worker(n).to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_slot_collects_its_scheduled_orders_for_the_slot_batch_window() {
    let dir = tempdir();
    seed(&dir, 2).await;
    let platform = Platform::start_with(
        dir,
        Clock::manual(NOW),
        &["--slot-batch-window-ms", "60000"],
    )
    .await;
    // Two orders for the same hour tomorrow, posted 30 s apart, and one for another hour.
    let tomorrow = NOW.0 + DAY_MS;
    platform
        .post(0xA1, "C01", tomorrow, 3, platform_offer())
        .await;
    let settled = platform.advance(30 * SECOND_MS).await;
    assert!(platform.offered(0xA1, settled).await.is_empty());
    platform
        .post(0xA2, "C01", tomorrow + 30 * MINUTE_MS, 3, platform_offer())
        .await;
    platform
        .post(0xA3, "C01", tomorrow + 6 * HOUR_MS, 3, platform_offer())
        .await;
    let settled = platform.advance(29 * SECOND_MS).await;
    for order in [0xA1, 0xA2, 0xA3] {
        assert!(platform.offered(order, settled).await.is_empty());
    }
    // A minute after the slot's first order, its batch takes both (distinct workers: the
    // windows overlap); the other slot's batch is not due yet.
    let settled = platform.advance(SECOND_MS).await;
    let a = platform.offered(0xA1, settled).await;
    let b = platform.offered(0xA2, settled).await;
    assert_eq!((a.len(), b.len()), (1, 1), "{a:?} {b:?}");
    assert_ne!(a, b);
    assert!(platform.offered(0xA3, settled).await.is_empty());
    let settled = platform.advance(30 * SECOND_MS).await;
    assert_eq!(
        platform.offered(0xA3, settled).await,
        [worker(1).to_string()]
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grab_pool_order_waits_for_grabs_then_falls_back_to_offers() {
    let platform = Platform::start(2).await;
    let tomorrow = NOW.0 + DAY_MS;
    let deadline = NOW.0 + 10 * MINUTE_MS;
    let pool = Some(pb::post_order_request::Dispatch::GrabPool(
        pb::GrabPoolDispatch {
            deadline: at(deadline),
        },
    ));
    platform.post(0xA1, "C01", tomorrow, 3, pool).await;
    let settled = platform.advance(9 * MINUTE_MS).await;
    assert!(platform.offered(0xA1, settled).await.is_empty());
    let settled = platform.advance(MINUTE_MS).await;
    assert_eq!(
        platform.offered(0xA1, settled).await,
        [worker(1).to_string()]
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_favourite_goes_first_and_an_unregistered_one_is_passed_over() {
    let platform = Platform::start(3).await;
    let tomorrow = NOW.0 + DAY_MS;
    let preferred = |w: String| {
        Some(pb::post_order_request::Dispatch::Preferred(
            pb::PreferredDispatch { worker_id: w },
        ))
    };
    platform
        .post(0xA1, "C01", tomorrow, 3, preferred(worker(3).to_string()))
        .await;
    let settled = platform.settle().await;
    assert_eq!(
        platform.offered(0xA1, settled).await,
        [worker(3).to_string()]
    );
    // Another day: a favourite nobody registered is passed over for the nearest worker.
    platform
        .post(0xA2, "C01", tomorrow + DAY_MS, 3, preferred(id(0xEE)))
        .await;
    let settled = platform.settle().await;
    assert_eq!(
        platform.offered(0xA2, settled).await,
        [worker(1).to_string()]
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_call_is_offered_in_parallel_and_escalated_to_ops_after_a_minute() {
    let platform = Platform::start(4).await;
    let emergency = || {
        Some(pb::post_order_request::Dispatch::Emergency(
            pb::EmergencyDispatch {},
        ))
    };
    // A hospital escort (陪诊, eldercare) within the hour: offered at once, no batch window,
    // to the three nearest carers in parallel.
    platform
        .post(0xA1, "E05", NOW.0 + 30 * MINUTE_MS, 4, emergency())
        .await;
    let settled = platform.settle().await;
    assert_eq!(
        platform.offered(0xA1, settled).await,
        [1, 2, 3].map(|n| worker(n).to_string())
    );
    assert!(
        platform
            .emergency_follow_ups(0xA1, settled)
            .await
            .is_empty()
    );
    // Nobody accepts within a minute: ops get a follow-up due at once, and offers go on.
    let settled = platform.advance(MINUTE_MS).await;
    let escalated = platform.emergency_follow_ups(0xA1, settled).await;
    assert_eq!(escalated.len(), 1, "{escalated:#?}");
    assert_eq!(escalated[0].kind, pb::FollowUpKind::Talk as i32);
    assert_eq!(escalated[0].due_at, at(NOW.0 + MINUTE_MS));
    // Once only, however long it stays unanswered; a carer may still accept.
    let settled = platform.advance(MINUTE_MS).await;
    assert_eq!(platform.emergency_follow_ups(0xA1, settled).await.len(), 1);
    platform
        .accept(0x900, &id(0xA1), &worker(2).to_string())
        .await
        .unwrap();
    let settled = platform.settle().await;
    assert_eq!(
        platform.order(0xA1, settled).await.slots[0].worker_id,
        worker(2).to_string()
    );

    // An emergency call accepted within the minute is never escalated.
    platform
        .post(
            0xA2,
            "E05",
            platform.clock.now().0 + 5 * HOUR_MS,
            1,
            emergency(),
        )
        .await;
    let settled = platform.settle().await;
    let offered = platform.offered(0xA2, settled).await;
    assert_eq!(offered.len(), 3, "{offered:?}");
    platform
        .accept(0x901, &id(0xA2), &offered[0])
        .await
        .unwrap();
    let settled = platform.advance(2 * MINUTE_MS).await;
    assert!(
        platform
            .emergency_follow_ups(0xA2, settled)
            .await
            .is_empty()
    );

    // A call nobody can be offered (no carer within reach) goes to ops at once.
    let remote = GeoPoint::new(28.95, 116.36).unwrap();
    platform
        .post_at(
            0xA3,
            "E05",
            platform.clock.now().0 + 30 * MINUTE_MS,
            1,
            emergency(),
            remote,
        )
        .await;
    let settled = platform.settle().await;
    assert!(platform.offered(0xA3, settled).await.is_empty());
    assert_eq!(platform.emergency_follow_ups(0xA3, settled).await.len(), 1);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_pending_offers_lapse_or_proceed_and_nothing_is_offered_twice() {
    let platform = Platform::start(3).await;
    let tomorrow = NOW.0 + DAY_MS;
    // Two orders on different days, both offered to the nearest worker.
    platform
        .post(0xA1, "C01", tomorrow, 3, platform_offer())
        .await;
    platform
        .post(0xA2, "C01", tomorrow + DAY_MS, 3, platform_offer())
        .await;
    let settled = platform.settle().await;
    assert_eq!(
        platform.offered(0xA1, settled).await,
        [worker(1).to_string()]
    );
    assert_eq!(
        platform.offered(0xA2, settled).await,
        [worker(1).to_string()]
    );
    // And an instant order still inside its batch window.
    platform
        .post(0xA3, "C01", NOW.0 + HOUR_MS, 1, platform_offer())
        .await;
    let settled = platform.settle().await;
    assert!(platform.offered(0xA3, settled).await.is_empty());
    // The server stops with both offers pending and the batch not yet due, and restarts a
    // minute later.
    let clock = platform.clock.clone();
    let dir = platform.stop().await;
    clock.set(Timestamp(NOW.0 + MINUTE_MS));
    let platform = Platform::start_in(dir, clock).await;
    let settled = platform.settle().await;
    // The batch, due by now, was matched once (the instant order is today: the nearest worker
    // is free for it).
    assert_eq!(
        platform.offered(0xA3, settled).await,
        [worker(1).to_string()]
    );
    // Nothing new was offered on the other two: the pending offers stand.
    assert_eq!(
        platform.offered(0xA1, settled).await,
        [worker(1).to_string()]
    );
    assert_eq!(
        platform.offered(0xA2, settled).await,
        [worker(1).to_string()]
    );
    // One proceeds: accepted after the restart.
    platform
        .accept(0x900, &id(0xA1), &worker(1).to_string())
        .await
        .unwrap();
    // The other lapses at its recorded expiry and cascades.
    let settled = platform.advance(4 * MINUTE_MS).await;
    assert_eq!(
        platform.order(0xA1, settled).await.slots[0].worker_id,
        worker(1).to_string()
    );
    assert_eq!(
        platform.offered(0xA2, settled).await,
        [worker(2).to_string()]
    );
    // A second restart changes nothing either.
    let clock = platform.clock.clone();
    let dir = platform.stop().await;
    let platform = Platform::start_in(dir, clock).await;
    let settled = platform.settle().await;
    assert_eq!(
        platform.offered(0xA2, settled).await,
        [worker(2).to_string()]
    );
    let dir = platform.stop().await;
    assert_eq!(offers_in_log(&dir, 0xA1).await, [worker(1).to_string()]);
    assert_eq!(offers_in_log(&dir, 0xA3).await[0], worker(1).to_string());
    assert_eq!(
        offers_in_log(&dir, 0xA2).await,
        [worker(1).to_string(), worker(2).to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_worker_ever_holds_overlapping_accepted_orders() {
    const WORKERS: u128 = 3;
    const ORDERS: u128 = 12;
    let platform = Platform::start(WORKERS).await;
    // Twelve 3-hour orders tomorrow, starting an hour apart: many overlap.
    let tomorrow = NOW.0 + DAY_MS;
    for n in 0..ORDERS {
        platform
            .post(
                0xA00 + n,
                "C01",
                tomorrow + n as i64 * HOUR_MS,
                3,
                platform_offer(),
            )
            .await;
    }
    // Every worker accepts everything offered to them, round after round; offers nobody
    // could accept in time lapse and cascade.
    let mut command = 0x9000;
    for _ in 0..8 {
        let settled = platform.settle().await;
        for n in 0..ORDERS {
            for who in platform.offered(0xA00 + n, settled).await {
                command += 1;
                platform
                    .accept(command, &id(0xA00 + n), &who)
                    .await
                    .unwrap();
            }
        }
        platform.advance(5 * MINUTE_MS).await;
    }
    let settled = platform.settle().await;
    let mut accepted = 0;
    for w in 1..=WORKERS {
        let orders = QueriesClient::new(platform.channel.clone())
            .list_worker_orders(as_(
                OPS_TOKEN,
                pb::ListWorkerOrdersRequest {
                    worker_id: worker(w).to_string(),
                    min_position: settled,
                    page_size: 500,
                    page_token: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .orders;
        let mut windows: Vec<(i64, i64)> = orders
            .iter()
            .filter_map(|e| e.order.as_ref())
            .filter(|o| o.slots.iter().any(|s| s.worker_id == worker(w).to_string()))
            .map(|o| {
                (
                    o.window_start.unwrap().seconds,
                    o.window_end.unwrap().seconds,
                )
            })
            .collect();
        windows.sort();
        for pair in windows.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "worker {w} overlaps: {windows:?}");
        }
        accepted += windows.len();
    }
    // Three workers fit twelve hour-apart 3-hour orders four each at most.
    assert!(accepted >= 9, "only {accepted} accepted");
    platform.stop().await;
}
