//! The order transitions added to the API after the first ones, through real tonic clients
//! against the server on 127.0.0.1:0 with a manual clock and neither dispatcher nor reactor
//! (so a refused command can be checked to append nothing at all): a worker withdrawing from
//! the slot they hold (WorkerApp.WithdrawFromOrder), the customer replanning the number of
//! workers (CustomerApp.ReplanOrder) and ops cancelling an order (Admin.CancelOrder and
//! `daojia admin cancel-order`). Each is read back through GetOrder, retried, called with the
//! wrong role, with bad input and in the wrong state. One test runs the reactor to see a late
//! withdrawal cost the worker credit.
//!
//! The worker is onboarded through Admin (registration, contract, certificate) and takes
//! orders from the grab pool, so nothing is seeded behind the server's back.

use daojia_domain::{OrderId, Timestamp};
use daojia_server::admin_cli::CliError;
use daojia_server::pb::admin_client::AdminClient;
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::pb::meta_client::MetaClient;
use daojia_server::pb::queries_client::QueriesClient;
use daojia_server::pb::worker_app_client::WorkerAppClient;
use daojia_server::pb::{self, ServerInfoRequest};
use daojia_server::{Clock, ServeError};
use daojia_store::{Direction, EmbeddedStore, EventStore, StreamStart};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::harness::as_;
use crate::store::{TempDir, tempdir};

const CUSTOMER_TOKEN: &str = "customer-token-0123456789";
const WORKER_TOKEN: &str = "worker-token-0123456789ab";
const OPS_TOKEN: &str = "ops-token-0123456789abcdef";

/// The manual clock's starting reading (2027-01-15T08:00:00Z).
const NOW: Timestamp = Timestamp(1_800_000_000_000);
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// The service window of every order: tomorrow, 3 hours.
const WINDOW_START: i64 = NOW.0 + DAY_MS;
const WINDOW_END: i64 = WINDOW_START + 3 * HOUR_MS;

const CUSTOMER: u128 = 0xC0;
const OTHER_CUSTOMER: u128 = 0xC1;
const COMPANY: u128 = 0xCC;
const REGISTRY: u128 = 0x4E6;
/// The worker onboarded through Admin.
const WORKER: u128 = 0xA1;
/// A worker who holds no slot anywhere.
const STRANGER: u128 = 0xA9;

fn uuid(n: u128) -> String {
    OrderId::from_u128(n).to_string()
}

fn at(ms: i64) -> Option<pb::Timestamp> {
    Some(pb::Timestamp {
        seconds: ms.div_euclid(1_000),
        nanos: 0,
    })
}

fn here() -> Option<pb::LatLon> {
    Some(pb::LatLon {
        lat: 27.95,
        lon: 116.36,
    })
}

fn refused(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.reason, reason, "{status:?}");
}

fn violated_fields(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"))
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// Whether the server's reactor runs (it appends credit adjustments after order events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reactor {
    On,
    Off,
}

struct OrdersServer {
    channel: Channel,
    addr: std::net::SocketAddr,
    clock: Clock,
    dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl OrdersServer {
    /// Starts the server without reactor on a fresh data directory and onboards [`WORKER`].
    async fn start() -> OrdersServer {
        OrdersServer::start_with(Reactor::Off).await
    }

    /// Starts the server on a fresh data directory and onboards [`WORKER`].
    async fn start_with(reactor: Reactor) -> OrdersServer {
        let dir = tempdir();
        let datadir = dir.path().join("data");
        let tokens = format!(
            "customer-app:{CUSTOMER_TOKEN},worker-app:{WORKER_TOKEN},ops:{OPS_TOKEN}:ops-li"
        );
        // Refused commands must append nothing at all, and the tests take every slot
        // themselves; only the credit test lets the reactor apply the credit rules.
        let clock = Clock::manual(NOW);
        let crate::harness::Started {
            channel,
            addr,
            shutdown,
            task,
        } = crate::harness::Serve {
            datadir: &datadir,
            tokens: &tokens,
            clock: clock.clone(),
            dispatch: false,
            reactor: reactor == Reactor::On,
            args: &["--query-wait-ms", "2000"],
            service: "",
        }
        .start()
        .await;
        let server = OrdersServer {
            channel,
            addr,
            clock,
            dir,
            shutdown: Some(shutdown),
            task: Some(task),
        };
        server.onboard().await;
        server
    }

    fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
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

    /// Stops the server and opens its event log directly.
    async fn stop_and_open_store(mut self) -> (TempDir, EmbeddedStore) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap().await.unwrap().unwrap();
        let dir = std::mem::replace(&mut self.dir, tempdir());
        let store = EmbeddedStore::open(dir.path().join("data")).unwrap();
        (dir, store)
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap().await.unwrap().unwrap();
    }

    /// Registers [`WORKER`], records a contract in force and issues a home-visit certificate.
    async fn onboard(&self) {
        let mut admin = self.admin();
        admin
            .register_worker(as_(
                OPS_TOKEN,
                pb::RegisterWorkerRequest {
                    command_id: uuid(0x10),
                    worker_id: uuid(WORKER),
                    company_id: uuid(COMPANY),
                    identity_number: "110105198001010016".into(),
                    skills: vec!["disinfection".into()],
                    home: here(),
                    registry_id: uuid(REGISTRY),
                    reason: "onboarded by company 0xCC".into(),
                },
            ))
            .await
            .unwrap();
        admin
            .sign_contract(as_(
                OPS_TOKEN,
                pb::SignContractRequest {
                    command_id: uuid(0x11),
                    worker_id: uuid(WORKER),
                    contract_number: "HT-2027-001".into(),
                    injury_cover: true,
                    valid_from: at(NOW.0 - DAY_MS),
                    valid_until: at(NOW.0 + 365 * DAY_MS),
                    reason: "paper contract received".into(),
                },
            ))
            .await
            .unwrap();
        admin
            .issue_certificate(as_(
                OPS_TOKEN,
                pb::IssueCertificateRequest {
                    command_id: uuid(0x12),
                    worker_id: uuid(WORKER),
                    certificate_id: uuid(0xCE1),
                    kind: pb::CertificateKind::HomeVisit as i32,
                    skill: String::new(),
                    identity_verified: true,
                    health_check_at: at(NOW.0 - 30 * DAY_MS),
                    training_completed: true,
                    exam_passed: true,
                    valid_until: at(NOW.0 + 365 * DAY_MS),
                    reason: "training and exam passed".into(),
                },
            ))
            .await
            .unwrap();
    }

    /// Posts order `order` for [`CUSTOMER`] (command id `order + 1`) needing `workers`
    /// workers, in the grab pool until an hour before the window.
    async fn post(&self, order: u128, workers: u32) -> pb::CommandReply {
        self.customer()
            .post_order(as_(
                CUSTOMER_TOKEN,
                pb::PostOrderRequest {
                    command_id: uuid(order + 1),
                    order_id: uuid(order),
                    customer_id: uuid(CUSTOMER),
                    service_code: "C01".into(),
                    quantity: 3,
                    workers,
                    window_start: at(WINDOW_START),
                    window_end: at(WINDOW_END),
                    location: here(),
                    dispatch: Some(pb::post_order_request::Dispatch::GrabPool(
                        pb::GrabPoolDispatch {
                            deadline: at(WINDOW_START - HOUR_MS),
                        },
                    )),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// Posts order `order` for one worker and lets [`WORKER`] grab it (command `order + 2`).
    async fn post_and_grab(&self, order: u128) -> pb::CommandReply {
        self.post(order, 1).await;
        self.worker()
            .grab_order(as_(
                WORKER_TOKEN,
                pb::GrabOrderRequest {
                    command_id: uuid(order + 2),
                    order_id: uuid(order),
                    worker_id: uuid(WORKER),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// [`WORKER`] checks in to slot 0 of `order` at the window start (command `order + 3`).
    async fn check_in(&self, order: u128) -> pb::CommandReply {
        self.clock.set(Timestamp(WINDOW_START));
        self.worker()
            .check_in(as_(
                WORKER_TOKEN,
                pb::CheckInRequest {
                    command_id: uuid(order + 3),
                    order_id: uuid(order),
                    worker_id: uuid(WORKER),
                    slot: 0,
                    location: here(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// [`WORKER`] completes slot 0 of `order`, serving it (command `order + 4`).
    async fn complete(&self, order: u128) -> pb::CommandReply {
        self.clock.set(Timestamp(WINDOW_END - HOUR_MS));
        self.worker()
            .complete_service(as_(
                WORKER_TOKEN,
                pb::CompleteServiceRequest {
                    command_id: uuid(order + 4),
                    order_id: uuid(order),
                    worker_id: uuid(WORKER),
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
            .into_inner()
    }

    async fn order(&self, order: u128, min_position: u64) -> pb::Order {
        self.customer()
            .get_order(as_(
                CUSTOMER_TOKEN,
                pb::GetOrderRequest {
                    order_id: uuid(order),
                    min_position,
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }
}

fn withdraw(
    command: u128,
    order: u128,
    worker: u128,
    reason: &str,
) -> pb::WithdrawFromOrderRequest {
    pb::WithdrawFromOrderRequest {
        command_id: uuid(command),
        order_id: uuid(order),
        worker_id: uuid(worker),
        reason: reason.into(),
    }
}

fn replan(command: u128, order: u128, customer: u128, workers: u32) -> pb::ReplanOrderRequest {
    pb::ReplanOrderRequest {
        command_id: uuid(command),
        order_id: uuid(order),
        customer_id: uuid(customer),
        workers,
    }
}

fn ops_cancel(command: u128, order: u128, reason: &str) -> pb::AdminCancelOrderRequest {
    pb::AdminCancelOrderRequest {
        command_id: uuid(command),
        order_id: uuid(order),
        reason: reason.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_withdraws_from_a_held_slot_once_and_not_after_checking_in() {
    let server = OrdersServer::start().await;
    let order = 0x100;
    server.post_and_grab(order).await;

    let done = server
        .worker()
        .withdraw_from_order(as_(
            WORKER_TOKEN,
            withdraw(0x1A0, order, WORKER, "my child is ill"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.event_types, ["WorkerWithdrew"]);
    assert!(!done.replayed);
    // Posted, grabbed (accepted), withdrew.
    assert_eq!(done.stream_revision, 2);
    let read = server.order(order, done.commit_position).await;
    assert_eq!(read.phase, pb::OrderPhase::Open as i32);
    assert_eq!(read.stream_revision, 2);
    assert_eq!(read.slots.len(), 1);
    assert_eq!(read.slots[0].worker_id, "", "the slot reopens");
    let head = server.head().await;

    // The retry answers the first result and appends nothing.
    let again = server
        .worker()
        .withdraw_from_order(as_(
            WORKER_TOKEN,
            withdraw(0x1A0, order, WORKER, "my child is ill"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(again.commit_position, done.commit_position);
    assert_eq!(again.event_types, ["WorkerWithdrew"]);
    assert_eq!(server.head().await, head);

    // The customer app may not withdraw a worker.
    let err = server
        .worker()
        .withdraw_from_order(as_(CUSTOMER_TOKEN, withdraw(0x1A1, order, WORKER, "no")))
        .await
        .unwrap_err();
    refused(&err, Code::PermissionDenied, "ROLE_NOT_ALLOWED");

    // Bad ids are all listed; a blank reason is refused by the domain on its field.
    let mut bad = withdraw(0x1A2, order, WORKER, "ill");
    bad.order_id = "order-1".into();
    bad.worker_id = String::new();
    bad.command_id = uuid(0);
    let err = server
        .worker()
        .withdraw_from_order(as_(WORKER_TOKEN, bad))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["command_id", "order_id", "worker_id"]
    );
    let err = server
        .worker()
        .withdraw_from_order(as_(WORKER_TOKEN, withdraw(0x1A3, order, WORKER, "  ")))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["reason"]);

    // Withdrawn, the worker holds no slot any more; nor does a stranger.
    for worker in [WORKER, STRANGER] {
        let err = server
            .worker()
            .withdraw_from_order(as_(WORKER_TOKEN, withdraw(0x1A4, order, worker, "again")))
            .await
            .unwrap_err();
        refused(&err, Code::FailedPrecondition, "WORKER_NOT_ON_ORDER");
    }
    assert_eq!(server.head().await, head);

    // Once checked in, the worker can no longer withdraw.
    let started = 0x200;
    server.post_and_grab(started).await;
    server.check_in(started).await;
    let head = server.head().await;
    let err = server
        .worker()
        .withdraw_from_order(as_(
            WORKER_TOKEN,
            withdraw(0x2A0, started, WORKER, "changed my mind"),
        ))
        .await
        .unwrap_err();
    refused(&err, Code::FailedPrecondition, "WRONG_ORDER_PHASE");
    assert_eq!(server.head().await, head);
    let read = server.order(started, 0).await;
    assert_eq!(read.slots[0].worker_id, uuid(WORKER));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_replans_an_open_order_once_and_not_a_cancelled_one() {
    let server = OrdersServer::start().await;
    let order = 0x300;
    let posted = server.post(order, 1).await;
    let one_worker = posted.order.unwrap().quote.unwrap();

    let done = server
        .customer()
        .replan_order(as_(CUSTOMER_TOKEN, replan(0x3A0, order, CUSTOMER, 3)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.event_types, ["OrderReplanned"]);
    assert!(!done.replayed);
    let read = server.order(order, done.commit_position).await;
    assert_eq!(read.phase, pb::OrderPhase::Open as i32);
    assert_eq!(read.slots.len(), 3);
    let quote = read.quote.unwrap();
    assert_eq!(quote.workers, 3);
    assert_eq!(quote.total_fen, 3 * one_worker.total_fen);
    let head = server.head().await;

    // The retry answers the first result and appends nothing.
    let again = server
        .customer()
        .replan_order(as_(CUSTOMER_TOKEN, replan(0x3A0, order, CUSTOMER, 3)))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(again.commit_position, done.commit_position);
    assert_eq!(server.head().await, head);

    // The worker app may not replan.
    let err = server
        .customer()
        .replan_order(as_(WORKER_TOKEN, replan(0x3A1, order, CUSTOMER, 2)))
        .await
        .unwrap_err();
    refused(&err, Code::PermissionDenied, "ROLE_NOT_ALLOWED");

    // Bad input: malformed ids and no workers, all listed; more workers than the order
    // terms allow (20 by default), judged by the domain on the same field.
    let mut bad = replan(0x3A2, order, CUSTOMER, 0);
    bad.customer_id = "household-7".into();
    bad.order_id = String::new();
    let err = server
        .customer()
        .replan_order(as_(CUSTOMER_TOKEN, bad))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["order_id", "customer_id", "workers"]
    );
    let err = server
        .customer()
        .replan_order(as_(CUSTOMER_TOKEN, replan(0x3A3, order, CUSTOMER, 21)))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["workers"]);

    // Rule violations carry the domain's reason codes.
    let err = server
        .customer()
        .replan_order(as_(CUSTOMER_TOKEN, replan(0x3A4, order, CUSTOMER, 3)))
        .await
        .unwrap_err();
    refused(&err, Code::FailedPrecondition, "REPLAN_UNCHANGED");
    let err = server
        .customer()
        .replan_order(as_(CUSTOMER_TOKEN, replan(0x3A5, order, OTHER_CUSTOMER, 2)))
        .await
        .unwrap_err();
    refused(&err, Code::FailedPrecondition, "NOT_ORDER_CUSTOMER");
    assert_eq!(server.head().await, head);

    // Cancelled, the order can no longer be replanned.
    server
        .customer()
        .cancel_order(as_(
            CUSTOMER_TOKEN,
            pb::CancelOrderRequest {
                command_id: uuid(0x3B0),
                order_id: uuid(order),
                customer_id: uuid(CUSTOMER),
                reason: "plans changed".into(),
            },
        ))
        .await
        .unwrap();
    let head = server.head().await;
    let err = server
        .customer()
        .replan_order(as_(CUSTOMER_TOKEN, replan(0x3A6, order, CUSTOMER, 2)))
        .await
        .unwrap_err();
    refused(&err, Code::FailedPrecondition, "WRONG_ORDER_PHASE");
    assert_eq!(server.head().await, head);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_cancel_an_open_order_once_with_the_reason_in_metadata_and_not_a_served_one() {
    let server = OrdersServer::start().await;
    let order = 0x400;
    server.post_and_grab(order).await;

    let done = server
        .admin()
        .cancel_order(as_(
            OPS_TOKEN,
            ops_cancel(0x4A0, order, "household moved away"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.event_types, ["OrderCancelled"]);
    assert!(!done.replayed);
    assert_eq!(done.stream_revision, 2);
    let read = server.order(order, done.commit_position).await;
    assert_eq!(read.phase, pb::OrderPhase::Cancelled as i32);
    // Ops cancel on the platform's behalf: no fee, even with a worker on the order.
    assert_eq!(read.fee_charged_fen, 0);
    let head = server.head().await;

    let again = server
        .admin()
        .cancel_order(as_(
            OPS_TOKEN,
            ops_cancel(0x4A0, order, "household moved away"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(again.commit_position, done.commit_position);
    assert_eq!(server.head().await, head);

    // Only ops and admin.
    for token in [CUSTOMER_TOKEN, WORKER_TOKEN] {
        let err = server
            .admin()
            .cancel_order(as_(token, ops_cancel(0x4A1, order, "no")))
            .await
            .unwrap_err();
        refused(&err, Code::PermissionDenied, "ROLE_NOT_ALLOWED");
    }

    // Every bad field is listed, the missing reason included.
    let mut bad = ops_cancel(0x4A2, order, " ");
    bad.command_id = "retry-1".into();
    bad.order_id = uuid(0);
    let err = server
        .admin()
        .cancel_order(as_(OPS_TOKEN, bad))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["command_id", "order_id", "reason"]);

    // An order never posted is not found.
    let err = server
        .admin()
        .cancel_order(as_(OPS_TOKEN, ops_cancel(0x4A3, 0x4FF, "typo")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    // Served, the order can no longer be cancelled.
    let served = 0x500;
    server.post_and_grab(served).await;
    server.check_in(served).await;
    let completed = server.complete(served).await;
    assert_eq!(completed.event_types, ["ServiceCompleted", "OrderServed"]);
    let head = server.head().await;
    let err = server
        .admin()
        .cancel_order(as_(OPS_TOKEN, ops_cancel(0x5A0, served, "too late")))
        .await
        .unwrap_err();
    refused(&err, Code::FailedPrecondition, "WRONG_ORDER_PHASE");
    assert_eq!(server.head().await, head);

    // The cancellation records the ops user, their role and the reason.
    let (_dir, store) = server.stop_and_open_store().await;
    let events = store
        .read_stream(
            &OrderId::from_u128(order).stream_name(),
            Direction::Forwards,
            StreamStart::Edge,
            10,
        )
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type()).collect();
    assert_eq!(types, ["OrderPosted", "OrderAccepted", "OrderCancelled"]);
    let metadata: serde_json::Value = serde_json::from_slice(events[2].metadata_slice()).unwrap();
    assert_eq!(metadata["actor"], "ops-li");
    assert_eq!(metadata["role"], "ops");
    assert_eq!(metadata["reason"], "household moved away");
    assert_eq!(metadata["command_id"], uuid(0x4A0));
    let data: serde_json::Value = serde_json::from_slice(events[2].data_slice()).unwrap();
    assert_eq!(data["by"], "ops");
    assert_eq!(data["reason"], "household moved away");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_withdrawal_at_short_notice_costs_the_worker_credit() {
    let server = OrdersServer::start_with(Reactor::On).await;
    // A day ahead: no deduction.
    let early = 0x700;
    server.post_and_grab(early).await;
    server
        .worker()
        .withdraw_from_order(as_(
            WORKER_TOKEN,
            withdraw(0x7A0, early, WORKER, "double booked"),
        ))
        .await
        .unwrap();
    // An hour ahead, under the built-in rule's two hours: rule `worker.late_withdrawal`.
    let late = 0x800;
    server.post_and_grab(late).await;
    server.clock.set(Timestamp(WINDOW_START - HOUR_MS));
    server
        .worker()
        .withdraw_from_order(as_(
            WORKER_TOKEN,
            withdraw(0x8A0, late, WORKER, "overslept"),
        ))
        .await
        .unwrap();
    let settled = server
        .admin()
        .wait_settled(as_(
            OPS_TOKEN,
            pb::WaitSettledRequest { timeout_ms: 10_000 },
        ))
        .await
        .unwrap()
        .into_inner();
    let credit = QueriesClient::new(server.channel.clone())
        .get_credit(as_(
            OPS_TOKEN,
            pb::GetCreditRequest {
                subject: Some(pb::CreditSubject {
                    kind: pb::CreditSubjectKind::Worker as i32,
                    id: uuid(WORKER),
                }),
                min_position: settled.last_position,
                page_size: 0,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let deductions: Vec<(&str, i32, &str)> = credit
        .history
        .iter()
        .filter(|e| e.event_type == "CreditAdjusted")
        .map(|e| (e.rule.as_str(), e.delta, e.evidence_event_id.as_str()))
        .collect();
    // The evidence is the WorkerWithdrew event, whose id is the command id.
    assert_eq!(
        deductions,
        [("worker.late_withdrawal", -3, uuid(0x8A0).as_str())]
    );
    server.stop().await;
}

/// Runs `daojia admin` with `args` (after `admin`) against `server` with `token`.
async fn cli(server: &OrdersServer, token: &str, args: &[&str]) -> Result<String, CliError> {
    crate::harness::admin_cli(server.addr, token, args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_cancels_an_order_as_a_table_and_as_json() {
    let server = OrdersServer::start().await;
    let order = 0x600;
    server.post(order, 1).await;
    let order_id = uuid(order);
    let command_id = uuid(0x6A0);
    let args = [
        "cancel-order",
        "--order",
        &order_id,
        "--reason",
        "duplicate order",
        "--command-id",
        &command_id,
    ];
    let table = cli(&server, OPS_TOKEN, &args).await.unwrap();
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap(),
        "commit position  revision  events          replayed"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[1..], ["1", "OrderCancelled", "false"]);

    // The retry, as JSON.
    let json = cli(&server, OPS_TOKEN, &[args.as_slice(), &["--json"]].concat())
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["replayed"], true);
    assert_eq!(value["event_types"][0], "OrderCancelled");
    let read = server.order(order, 0).await;
    assert_eq!(read.phase, pb::OrderPhase::Cancelled as i32);

    // A blank reason is refused with its field violation.
    let err = cli(
        &server,
        OPS_TOKEN,
        &["cancel-order", "--order", &order_id, "--reason", ""],
    )
    .await
    .unwrap_err();
    let CliError::Refused {
        code, violations, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*code, Code::InvalidArgument);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].starts_with("reason: "), "{violations:?}");
    server.stop().await;
}
