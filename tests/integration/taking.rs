//! Taking orders through `daojia.v1.WorkerApp` (`AcceptOffer`, `GrabOrder`) against the real
//! server on 127.0.0.1:0 with a manual clock. Workers in every state (uncontracted,
//! uncertified, in retraining) and orders already offered to them are appended through the
//! domain before the server starts, with the dispatcher and the reactor off, so that each
//! refusal is the domain's answer to exactly that state; the server then loads each worker's
//! credentials from those streams before deciding. `lifecycle.rs` covers offers made by the
//! dispatcher, and `admin_more.rs` onboarding through the Admin API.

use daojia_domain::credit::{CreditEvent, SanctionCause};
use daojia_domain::order::{
    self, DispatchMode, GeoPoint, OrderEvent, PostOrder, ServiceWindow, SlotIndex,
};
use daojia_domain::{
    CompanyId, CustomerId, OrderCommand, OrderId, OrderTerms, RegistryId, Standing, Subject,
    Timestamp, WorkerId,
};
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::pb::meta_client::MetaClient;
use daojia_server::pb::worker_app_client::WorkerAppClient;
use daojia_server::pb::{self, ServerInfoRequest};
use daojia_server::{Clock, ServeError};
use daojia_store::EmbeddedStore;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::harness::as_;
use crate::seed::{NewWorker, Seeder};
use crate::store::{TempDir, tempdir};

const CUSTOMER_TOKEN: &str = "customer-token-0123456789";
const WORKER_TOKEN: &str = "worker-token-0123456789ab";
const OPS_TOKEN: &str = "ops-token-0123456789abcdef";

/// The manual clock's starting reading.
const NOW: Timestamp = Timestamp(1_800_000_000_000);
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

const CUSTOMER: CustomerId = CustomerId::from_u128(0xC0);
const COMPANY: CompanyId = CompanyId::from_u128(0xCC);
const REGISTRY: RegistryId = RegistryId::from_u128(0x4E6);

/// Registered, contracted, certified.
const GOOD: WorkerId = WorkerId::from_u128(0xA1);
/// Registered and certified, no contract.
const UNCONTRACTED: WorkerId = WorkerId::from_u128(0xA2);
/// Registered and contracted, no certificate.
const UNCERTIFIED: WorkerId = WorkerId::from_u128(0xA3);
/// Registered, contracted, certified, but sent to retraining.
const RETRAINING: WorkerId = WorkerId::from_u128(0xA4);
/// Registered, contracted, certified: the grab rival.
const RIVAL: WorkerId = WorkerId::from_u128(0xA5);
/// Never registered.
const STRANGER: WorkerId = WorkerId::from_u128(0xA9);

fn location() -> GeoPoint {
    GeoPoint::new(27.95, 116.36).unwrap()
}

fn window() -> ServiceWindow {
    ServiceWindow {
        start: Timestamp(NOW.0 + DAY_MS),
        end: Timestamp(NOW.0 + DAY_MS + 3 * HOUR_MS),
    }
}

/// Registers a worker in the taking scenario's company and registry, at its one location.
async fn register(
    seeder: &mut Seeder,
    id: WorkerId,
    identity: &str,
    contract: bool,
    certified: bool,
) {
    seeder
        .worker(NewWorker {
            id,
            identity,
            home: location(),
            contract,
            certified,
        })
        .await;
}

/// Posting orders already offered, as the dispatcher would.
trait OfferedOrders {
    async fn offered_order(&mut self, order_id: OrderId, worker: WorkerId);
}

impl OfferedOrders for Seeder {
    /// Posts a platform order through the domain and offers its slot to `worker`, as the
    /// dispatcher would.
    async fn offered_order(&mut self, order_id: OrderId, worker: WorkerId) {
        let posted_at = Timestamp(NOW.0 - HOUR_MS);
        let post = PostOrder {
            order_id,
            customer: CUSTOMER,
            customer_standing: Standing::Good,
            service: "C01".parse().unwrap(),
            quantity: 3,
            workers: 1,
            window: window(),
            location: location(),
            dispatch: DispatchMode::Platform,
            terms: OrderTerms::default(),
        };
        let mut events = order::decide(
            &Default::default(),
            OrderCommand::Post(Box::new(post)),
            posted_at,
        )
        .unwrap();
        events.push(OrderEvent::OrderOffered {
            slot: SlotIndex(0),
            worker,
            offered_at: Timestamp(NOW.0 - 60_000),
            expires_at: Timestamp(NOW.0 + 10 * 60_000),
        });
        self.append(&order_id.stream_name(), &events).await;
    }
}

/// The five workers and four offered orders (0x100 to GOOD, 0x101 to UNCONTRACTED, 0x102 to
/// UNCERTIFIED, 0x103 to RETRAINING).
async fn seed(dir: &TempDir) {
    let store = EmbeddedStore::open(dir.path().join("data")).unwrap();
    let mut seeder = Seeder::new(store, COMPANY, REGISTRY, Timestamp(NOW.0 - 30 * DAY_MS));
    let s = &mut seeder;
    register(s, GOOD, "110105198001010016", true, true).await;
    register(s, UNCONTRACTED, "110105198001010024", false, true).await;
    register(s, UNCERTIFIED, "110105198001010032", true, false).await;
    register(s, RETRAINING, "110105198001010040", true, true).await;
    register(s, RIVAL, "110105198001010059", true, true).await;
    let subject = Subject::Worker(RETRAINING);
    let sanction = CreditEvent::RetrainingRequired {
        subject,
        cause: SanctionCause::Ops {
            reason: "tools not disinfected".into(),
        },
        at: Timestamp(NOW.0 - DAY_MS),
    };
    seeder.append(&subject.stream_name(), &[sanction]).await;
    seeder.offered_order(OrderId::from_u128(0x100), GOOD).await;
    seeder
        .offered_order(OrderId::from_u128(0x101), UNCONTRACTED)
        .await;
    seeder
        .offered_order(OrderId::from_u128(0x102), UNCERTIFIED)
        .await;
    seeder
        .offered_order(OrderId::from_u128(0x103), RETRAINING)
        .await;
}

struct TakingServer {
    channel: Channel,
    clock: Clock,
    _dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TakingServer {
    /// Seeds a fresh data directory and starts the server on it.
    async fn start() -> TakingServer {
        let dir = tempdir();
        seed(&dir).await;
        let datadir = dir.path().join("data");
        let tokens = format!(
            "customer-app:{CUSTOMER_TOKEN}:shop-backend,worker-app:{WORKER_TOKEN},ops:{OPS_TOKEN}"
        );
        // Offers are made by hand, and refused commands must append nothing at all.
        let clock = Clock::manual(NOW);
        let crate::harness::Started {
            channel,
            addr: _,
            shutdown: tx,
            task,
        } = crate::harness::Serve {
            datadir: &datadir,
            tokens: &tokens,
            clock: clock.clone(),
            dispatch: false,
            reactor: false,
            args: &[],
            service: "",
        }
        .start()
        .await;
        TakingServer {
            channel,
            clock,
            _dir: dir,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    fn customer(&self) -> CustomerAppClient<Channel> {
        CustomerAppClient::new(self.channel.clone())
    }

    fn worker(&self) -> WorkerAppClient<Channel> {
        WorkerAppClient::new(self.channel.clone())
    }

    async fn head(&self) -> u64 {
        MetaClient::new(self.channel.clone())
            .server_info(as_(OPS_TOKEN, ServerInfoRequest {}))
            .await
            .unwrap()
            .into_inner()
            .head_position
    }

    async fn accept(
        &self,
        command: u128,
        order: u128,
        worker: WorkerId,
    ) -> Result<pb::CommandReply, Status> {
        self.worker()
            .accept_offer(as_(
                WORKER_TOKEN,
                pb::AcceptOfferRequest {
                    command_id: uuid(command),
                    order_id: uuid(order),
                    worker_id: worker.to_string(),
                    slot: 0,
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn grab(
        &self,
        command: u128,
        order: u128,
        worker: WorkerId,
    ) -> Result<pb::CommandReply, Status> {
        self.worker()
            .grab_order(as_(
                WORKER_TOKEN,
                pb::GrabOrderRequest {
                    command_id: uuid(command),
                    order_id: uuid(order),
                    worker_id: worker.to_string(),
                },
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

fn uuid(n: u128) -> String {
    OrderId::from_u128(n).to_string()
}

fn at(ms: i64) -> Option<pb::Timestamp> {
    Some(pb::Timestamp {
        seconds: ms / 1_000,
        nanos: 0,
    })
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"))
        .reason
}

fn held_by(reply: &pb::CommandReply) -> String {
    reply.order.as_ref().unwrap().slots[0].worker_id.clone()
}

#[tokio::test]
async fn an_offered_worker_accepts_then_checks_in_completes_and_is_reviewed() {
    let server = TakingServer::start().await;
    let accepted = server.accept(1, 0x100, GOOD).await.unwrap();
    assert_eq!(accepted.event_types, ["OrderAccepted"]);
    assert_eq!(held_by(&accepted), GOOD.to_string());

    // At the window start, at the door.
    server.clock.set(window().start);
    let door = Some(pb::LatLon {
        lat: 27.95,
        lon: 116.36,
    });
    let checked_in = server
        .worker()
        .check_in(as_(
            WORKER_TOKEN,
            pb::CheckInRequest {
                command_id: uuid(2),
                order_id: uuid(0x100),
                worker_id: GOOD.to_string(),
                slot: 0,
                location: door,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked_in.event_types, ["WorkerCheckedIn"]);
    assert_eq!(
        checked_in.order.unwrap().phase,
        pb::OrderPhase::InService as i32
    );

    server.clock.set(window().end);
    let completed = server
        .worker()
        .complete_service(as_(
            WORKER_TOKEN,
            pb::CompleteServiceRequest {
                command_id: uuid(3),
                order_id: uuid(0x100),
                worker_id: GOOD.to_string(),
                slot: 0,
                checklist: Some(pb::Checklist {
                    tools_disinfected: true,
                    area_tidied: true,
                    customer_confirmed: true,
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(completed.event_types, ["ServiceCompleted", "OrderServed"]);

    server.clock.set(Timestamp(window().end.0 + HOUR_MS));
    let reviewed = server
        .customer()
        .review_order(as_(
            CUSTOMER_TOKEN,
            pb::ReviewOrderRequest {
                command_id: uuid(4),
                order_id: uuid(0x100),
                customer_id: CUSTOMER.to_string(),
                stars: 5,
                tags: vec![pb::ReviewTag::Excellent as i32],
                text: "spotless".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reviewed.event_types, ["OrderReviewed"]);
    assert_eq!(
        reviewed.order.unwrap().phase,
        pb::OrderPhase::Reviewed as i32
    );
    server.stop().await;
}

#[tokio::test]
async fn ineligible_workers_are_refused_with_the_domain_reason_and_nothing_is_appended() {
    let server = TakingServer::start().await;
    let head = server.head().await;
    for (command, order, worker, code) in [
        (1, 0x101, UNCONTRACTED, "WORKER_NO_CONTRACT"),
        (2, 0x102, UNCERTIFIED, "WORKER_NO_HOME_VISIT_CERTIFICATE"),
        (3, 0x103, RETRAINING, "WORKER_IN_RETRAINING"),
    ] {
        let status = server.accept(command, order, worker).await.unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert_eq!(reason(&status), code);
    }
    // A worker nobody registered is not found.
    let status = server.accept(4, 0x100, STRANGER).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    // Accepting someone else's offer is refused by the order.
    let status = server.accept(5, 0x100, RIVAL).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "NO_OFFER_FOR_WORKER");
    assert_eq!(server.head().await, head);
    server.stop().await;
}

#[tokio::test]
async fn a_retried_accept_returns_the_first_result() {
    let server = TakingServer::start().await;
    let first = server.accept(1, 0x100, GOOD).await.unwrap();
    let head = server.head().await;
    let again = server.accept(1, 0x100, GOOD).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.commit_position, first.commit_position);
    assert_eq!(server.head().await, head);
    server.stop().await;
}

/// Posts a grab-pool order (0x200) through the customer API.
async fn post_grab_order(server: &TakingServer) {
    post_grab_order_as(server, 0x20, 0x200).await;
}

/// Posts grab-pool order `order` with command id `command` through the customer API.
async fn post_grab_order_as(server: &TakingServer, command: u128, order: u128) {
    server
        .customer()
        .post_order(as_(
            CUSTOMER_TOKEN,
            pb::PostOrderRequest {
                command_id: uuid(command),
                order_id: uuid(order),
                customer_id: CUSTOMER.to_string(),
                service_code: "C01".into(),
                quantity: 3,
                workers: 1,
                window_start: at(window().start.0),
                window_end: at(window().end.0),
                location: Some(pb::LatLon {
                    lat: 27.95,
                    lon: 116.36,
                }),
                dispatch: Some(pb::post_order_request::Dispatch::GrabPool(
                    pb::GrabPoolDispatch {
                        deadline: at(NOW.0 + 12 * HOUR_MS),
                    },
                )),
            },
        ))
        .await
        .unwrap();
}

/// Grabs `order` as `worker` once `barrier` releases both contenders together.
async fn grab_when_released(
    channel: Channel,
    barrier: std::sync::Arc<tokio::sync::Barrier>,
    command: u128,
    order: u128,
    worker: WorkerId,
) -> Result<pb::CommandReply, Status> {
    let request = as_(
        WORKER_TOKEN,
        pb::GrabOrderRequest {
            command_id: uuid(command),
            order_id: uuid(order),
            worker_id: worker.to_string(),
        },
    );
    let mut client = WorkerAppClient::new(channel);
    barrier.wait().await;
    client
        .grab_order(request)
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_workers_grabbing_at_once_exactly_one_wins() {
    let server = TakingServer::start().await;
    for round in 0..8u128 {
        let order = 0x300 + round;
        post_grab_order_as(&server, 0x30 + round, order).await;
        // Both grabs run on their own tasks of a two-thread runtime and are sent only when the
        // barrier lets both go, so they really race for the one slot.
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let a = tokio::spawn(grab_when_released(
            server.channel.clone(),
            barrier.clone(),
            0x1000 + 2 * round,
            order,
            GOOD,
        ));
        let b = tokio::spawn(grab_when_released(
            server.channel.clone(),
            barrier,
            0x1001 + 2 * round,
            order,
            RIVAL,
        ));
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let (winner, loser) = match (a, b) {
            (Ok(won), Err(lost)) => ((GOOD, won), lost),
            (Err(lost), Ok(won)) => ((RIVAL, won), lost),
            other => panic!("round {round}: expected exactly one winner, got {other:?}"),
        };
        assert_eq!(winner.1.event_types, ["OrderAccepted"], "round {round}");
        assert_eq!(held_by(&winner.1), winner.0.to_string(), "round {round}");
        assert_eq!(
            loser.code(),
            Code::FailedPrecondition,
            "round {round}: {loser:?}"
        );
        assert_eq!(reason(&loser), "ORDER_ALREADY_TAKEN", "round {round}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_first_valid_grab_wins_after_an_ineligible_one_is_refused() {
    let server = TakingServer::start().await;
    post_grab_order(&server).await;
    let head = server.head().await;
    let status = server.grab(1, 0x200, RETRAINING).await.unwrap_err();
    assert_eq!(reason(&status), "WORKER_IN_RETRAINING");
    assert_eq!(server.head().await, head);

    let won = server.grab(2, 0x200, GOOD).await.unwrap();
    assert_eq!(held_by(&won), GOOD.to_string());
    let status = server.grab(3, 0x200, RIVAL).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "ORDER_ALREADY_TAKEN");

    // Grabbing a platform order is refused.
    let status = server.grab(4, 0x101, RIVAL).await.unwrap_err();
    assert_eq!(reason(&status), "NOT_A_GRAB_ORDER");
    server.stop().await;
}

#[tokio::test]
async fn taking_needs_the_worker_app_role_and_well_formed_ids() {
    let server = TakingServer::start().await;
    let head = server.head().await;
    let accept = pb::AcceptOfferRequest {
        command_id: uuid(1),
        order_id: uuid(0x100),
        worker_id: GOOD.to_string(),
        slot: 0,
    };
    let status = server
        .worker()
        .accept_offer(as_(CUSTOMER_TOKEN, accept))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let grab = pb::GrabOrderRequest {
        command_id: uuid(2),
        order_id: "not-a-uuid".into(),
        worker_id: String::new(),
    };
    let status = server
        .worker()
        .grab_order(as_(WORKER_TOKEN, grab))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let fields: Vec<String> = status
        .get_details_bad_request()
        .unwrap()
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["order_id", "worker_id"]);
    assert_eq!(server.head().await, head);
    server.stop().await;
}
