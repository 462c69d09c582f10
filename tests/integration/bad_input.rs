//! One table of bad input to the order APIs (`CustomerApp`, `WorkerApp`, `Admin.ResolveDispute`,
//! `Queries` paging): each row names the request, the status code, the exact field violations
//! and the ErrorInfo reason it must get, and that nothing was appended. The server runs with the
//! dispatcher and the reactor off on a data directory seeded through the domain with an
//! accepted order and a served one, so that every refusal is the answer to exactly that input.

use daojia_domain::order::{
    self, Checklist, DispatchMode, GeoPoint, OrderEvent, OrderState, PostOrder, ServiceWindow,
    SlotIndex, WorkerCredentials,
};
use daojia_domain::{
    CompanyId, CustomerId, OrderCommand, OrderId, OrderTerms, RegistryId, Standing, Timestamp,
    WorkerId,
};
use daojia_server::pb::admin_client::AdminClient;
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::pb::meta_client::MetaClient;
use daojia_server::pb::queries_client::QueriesClient;
use daojia_server::pb::worker_app_client::WorkerAppClient;
use daojia_server::pb::{self, ServerInfoRequest};
use daojia_server::{Clock, ServeError};
use daojia_store::{AllStart, Direction, EmbeddedStore, EventStore};
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

/// The manual clock's reading.
const NOW: Timestamp = Timestamp(1_800_000_000_000);
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

const CUSTOMER: CustomerId = CustomerId::from_u128(0xC0);
const COMPANY: CompanyId = CompanyId::from_u128(0xCC);
const REGISTRY: RegistryId = RegistryId::from_u128(0x4E6);
/// Holds the slot of both seeded orders.
const WORKER: WorkerId = WorkerId::from_u128(0xA1);
/// Registered too, but holds no slot.
const OTHER: WorkerId = WorkerId::from_u128(0xA2);
/// Accepted by WORKER, window tomorrow.
const OPEN: u128 = 0x100;
/// Served by WORKER two days ago.
const SERVED: u128 = 0x101;

const NIL: &str = "00000000-0000-0000-0000-000000000000";

fn home() -> GeoPoint {
    GeoPoint::new(27.95, 116.36).unwrap()
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

/// Decides `commands` in turn, each at its time, and returns every event.
fn history(commands: Vec<(OrderCommand, Timestamp)>) -> Vec<OrderEvent> {
    let mut state = OrderState::default();
    let mut all = Vec::new();
    for (command, now) in commands {
        let events = order::decide(&state, command, now).unwrap();
        for e in &events {
            state = order::evolve(state, e);
        }
        all.extend(events);
    }
    all
}

/// An order of WORKER's, with window starting at `start`: posted, offered, accepted and,
/// when `served`, checked in, completed and served.
fn seeded_order(id: u128, start: Timestamp, served: bool) -> Vec<OrderEvent> {
    let posted_at = Timestamp(start.0 - DAY_MS);
    let end = Timestamp(start.0 + 3 * HOUR_MS);
    let creds = WorkerCredentials {
        worker: WORKER,
        standing: Standing::Good,
        home_visit_certificate_valid: true,
        skills: vec![],
        contract_signed: true,
    };
    let post = PostOrder {
        order_id: OrderId::from_u128(id),
        customer: CUSTOMER,
        customer_standing: Standing::Good,
        service: "C01".parse().unwrap(),
        quantity: 3,
        workers: 1,
        window: ServiceWindow { start, end },
        location: home(),
        dispatch: DispatchMode::Platform,
        terms: OrderTerms::default(),
    };
    let mut commands = vec![
        (OrderCommand::Post(Box::new(post)), posted_at),
        (
            OrderCommand::Offer {
                slot: SlotIndex(0),
                worker: creds.clone(),
            },
            posted_at,
        ),
        (
            OrderCommand::Accept {
                slot: SlotIndex(0),
                worker: creds,
            },
            Timestamp(posted_at.0 + 60_000),
        ),
    ];
    if served {
        commands.push((
            OrderCommand::CheckIn {
                slot: SlotIndex(0),
                worker: WORKER,
                location: home(),
            },
            start,
        ));
        commands.push((
            OrderCommand::Complete {
                slot: SlotIndex(0),
                worker: WORKER,
                checklist: Checklist {
                    tools_disinfected: true,
                    area_tidied: true,
                    customer_confirmed: true,
                },
            },
            end,
        ));
    }
    history(commands)
}

/// Seeds the two workers and the two orders; returns the position of the last seeded event.
async fn seed(dir: &TempDir) -> u64 {
    let store = EmbeddedStore::open(dir.path().join("data")).unwrap();
    let mut seeder = Seeder::new(store, COMPANY, REGISTRY, Timestamp(NOW.0 - 30 * DAY_MS));
    for (id, identity) in [
        (WORKER, "110105198001010016"),
        (OTHER, "110105198001010024"),
    ] {
        seeder
            .worker(NewWorker {
                id,
                identity,
                home: home(),
                contract: true,
                certified: true,
            })
            .await;
    }
    let open = seeded_order(OPEN, Timestamp(NOW.0 + DAY_MS), false);
    seeder
        .append(&OrderId::from_u128(OPEN).stream_name(), &open)
        .await;
    let served = seeded_order(SERVED, Timestamp(NOW.0 - 2 * DAY_MS), true);
    assert!(
        matches!(served.last(), Some(OrderEvent::OrderServed { .. })),
        "{served:?}"
    );
    seeder
        .append(&OrderId::from_u128(SERVED).stream_name(), &served)
        .await;
    let last = seeder
        .store
        .read_all(Direction::Backwards, AllStart::Edge, 1, None)
        .await
        .unwrap();
    last.events[0].position.0
}

struct BadInputServer {
    channel: Channel,
    /// The position of the last seeded event.
    seeded: u64,
    _dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl BadInputServer {
    async fn start() -> BadInputServer {
        let dir = tempdir();
        let seeded = seed(&dir).await;
        let datadir = dir.path().join("data");
        let tokens = format!(
            "customer-app:{CUSTOMER_TOKEN}:shop-backend,worker-app:{WORKER_TOKEN},ops:{OPS_TOKEN}"
        );
        // Nothing but the requests under test may append.
        let crate::harness::Started {
            channel,
            addr: _,
            shutdown,
            task,
        } = crate::harness::Serve {
            datadir: &datadir,
            tokens: &tokens,
            clock: Clock::manual(NOW),
            dispatch: false,
            reactor: false,
            args: &[],
            service: "",
        }
        .start()
        .await;
        BadInputServer {
            channel,
            seeded,
            _dir: dir,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    async fn head(&self) -> u64 {
        MetaClient::new(self.channel.clone())
            .server_info(as_(OPS_TOKEN, ServerInfoRequest {}))
            .await
            .unwrap()
            .into_inner()
            .head_position
    }

    async fn call(&self, call: Call) -> Result<(), Status> {
        let customer = || CustomerAppClient::new(self.channel.clone());
        let worker = || WorkerAppClient::new(self.channel.clone());
        let queries = || QueriesClient::new(self.channel.clone());
        match call {
            Call::Post(r) => customer()
                .post_order(as_(CUSTOMER_TOKEN, r))
                .await
                .map(drop),
            Call::Cancel(r) => customer()
                .cancel_order(as_(CUSTOMER_TOKEN, r))
                .await
                .map(drop),
            Call::Review(r) => customer()
                .review_order(as_(CUSTOMER_TOKEN, r))
                .await
                .map(drop),
            Call::Complaint(r) => customer()
                .file_complaint(as_(CUSTOMER_TOKEN, r))
                .await
                .map(drop),
            Call::Dispute(r) => customer()
                .raise_dispute(as_(CUSTOMER_TOKEN, r))
                .await
                .map(drop),
            Call::CheckIn(r) => worker().check_in(as_(WORKER_TOKEN, r)).await.map(drop),
            Call::Complete(r) => worker()
                .complete_service(as_(WORKER_TOKEN, r))
                .await
                .map(drop),
            Call::Resolve(r) => AdminClient::new(self.channel.clone())
                .resolve_dispute(as_(OPS_TOKEN, r))
                .await
                .map(drop),
            Call::Adjust(r) => AdminClient::new(self.channel.clone())
                .adjust_credit(as_(OPS_TOKEN, r))
                .await
                .map(drop),
            Call::CustomerOrders(r) => queries()
                .list_customer_orders(as_(CUSTOMER_TOKEN, r))
                .await
                .map(drop),
            Call::OpenComplaints(r) => queries()
                .list_open_complaints(as_(OPS_TOKEN, r))
                .await
                .map(drop),
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

/// One request of the table.
#[derive(Debug)]
enum Call {
    Post(pb::PostOrderRequest),
    Cancel(pb::CancelOrderRequest),
    Review(pb::ReviewOrderRequest),
    Complaint(pb::FileComplaintRequest),
    Dispute(pb::RaiseDisputeRequest),
    CheckIn(pb::CheckInRequest),
    Complete(pb::CompleteServiceRequest),
    Resolve(pb::ResolveDisputeRequest),
    Adjust(pb::AdjustCreditRequest),
    CustomerOrders(pb::ListCustomerOrdersRequest),
    OpenComplaints(pb::ListOpenRequest),
}

fn post() -> pb::PostOrderRequest {
    pb::PostOrderRequest {
        command_id: uuid(0x1),
        order_id: uuid(0x200),
        customer_id: CUSTOMER.to_string(),
        service_code: "C01".into(),
        quantity: 3,
        workers: 1,
        window_start: at(NOW.0 + DAY_MS),
        window_end: at(NOW.0 + DAY_MS + 3 * HOUR_MS),
        location: Some(pb::LatLon {
            lat: 27.95,
            lon: 116.36,
        }),
        dispatch: None,
    }
}

fn check_in(lat: f64, lon: f64) -> pb::CheckInRequest {
    pb::CheckInRequest {
        command_id: uuid(0x2),
        order_id: uuid(OPEN),
        worker_id: WORKER.to_string(),
        slot: 0,
        location: Some(pb::LatLon { lat, lon }),
    }
}

fn review(order: u128, stars: u32, text: &str) -> pb::ReviewOrderRequest {
    pb::ReviewOrderRequest {
        command_id: uuid(0x3),
        order_id: uuid(order),
        customer_id: CUSTOMER.to_string(),
        stars,
        tags: vec![pb::ReviewTag::Punctual as i32],
        text: text.into(),
    }
}

fn cancel(reason: &str) -> pb::CancelOrderRequest {
    pb::CancelOrderRequest {
        command_id: uuid(0x4),
        order_id: uuid(OPEN),
        customer_id: CUSTOMER.to_string(),
        reason: reason.into(),
    }
}

fn complaint(text: &str) -> pb::FileComplaintRequest {
    pb::FileComplaintRequest {
        command_id: uuid(0x5),
        order_id: uuid(SERVED),
        complaint_id: uuid(0xF1),
        customer_id: CUSTOMER.to_string(),
        worker_id: WORKER.to_string(),
        category: pb::ComplaintCategory::Quality as i32,
        text: text.into(),
    }
}

fn dispute(reason: &str) -> pb::RaiseDisputeRequest {
    pb::RaiseDisputeRequest {
        command_id: uuid(0x6),
        order_id: uuid(SERVED),
        dispute_id: uuid(0xD1),
        customer_id: CUSTOMER.to_string(),
        reason: reason.into(),
    }
}

fn resolve(refund_fen: i64, compensation_fen: i64) -> pb::ResolveDisputeRequest {
    pb::ResolveDisputeRequest {
        command_id: uuid(0x7),
        order_id: uuid(SERVED),
        dispute_id: uuid(0xD1),
        fault: pb::DisputeFault::Nobody as i32,
        at_fault_id: String::new(),
        refund_fen,
        compensation_fen,
        note: "mediated".into(),
        reason: "by phone".into(),
    }
}

/// What the customer paid for SERVED (C01, 3 units, 1 worker), read from the catalogue.
const PAID_FEN: i64 = 3 * 3_500;

fn adjust(points: i32) -> pb::AdjustCreditRequest {
    pb::AdjustCreditRequest {
        command_id: uuid(0x8),
        subject: Some(pb::CreditSubject {
            kind: pb::CreditSubjectKind::Worker as i32,
            id: WORKER.to_string(),
        }),
        points,
        reason: "by hand".into(),
    }
}

fn open_complaints(page_token: &str, page_size: u32) -> pb::ListOpenRequest {
    pb::ListOpenRequest {
        min_position: 0,
        page_size,
        page_token: page_token.into(),
    }
}

/// A row: what is wrong, the request, and the status it must get.
struct Row {
    what: &'static str,
    call: Call,
    code: Code,
    /// The BadRequest field violations, in order (empty: no BadRequest detail).
    fields: Vec<String>,
    /// The ErrorInfo reason (None: no ErrorInfo detail).
    reason: Option<&'static str>,
}

fn row(
    what: &'static str,
    call: Call,
    code: Code,
    fields: &[&str],
    reason: Option<&'static str>,
) -> Row {
    Row {
        what,
        call,
        code,
        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        reason,
    }
}

fn table() -> Vec<Row> {
    use Code::{FailedPrecondition, InvalidArgument};
    let long = "字".repeat(1_001);
    vec![
        // Ids.
        row(
            "malformed order id",
            Call::Post(pb::PostOrderRequest {
                order_id: "order-1".into(),
                ..post()
            }),
            InvalidArgument,
            &["order_id"],
            None,
        ),
        row(
            "nil customer id",
            Call::Post(pb::PostOrderRequest {
                customer_id: NIL.into(),
                ..post()
            }),
            InvalidArgument,
            &["customer_id"],
            None,
        ),
        row(
            "nil command id and malformed order id together",
            Call::Cancel(pb::CancelOrderRequest {
                command_id: NIL.into(),
                order_id: "{not-a-uuid}".into(),
                ..cancel("plans changed")
            }),
            InvalidArgument,
            &["command_id", "order_id"],
            None,
        ),
        row(
            "malformed worker id on check-in",
            Call::CheckIn(pb::CheckInRequest {
                worker_id: "A1".into(),
                ..check_in(27.95, 116.36)
            }),
            InvalidArgument,
            &["worker_id"],
            None,
        ),
        // Coordinates.
        row(
            "post at latitude 91",
            Call::Post(pb::PostOrderRequest {
                location: Some(pb::LatLon {
                    lat: 91.0,
                    lon: 116.36,
                }),
                ..post()
            }),
            InvalidArgument,
            &["location.lat"],
            None,
        ),
        row(
            "post at longitude 181",
            Call::Post(pb::PostOrderRequest {
                location: Some(pb::LatLon {
                    lat: 27.95,
                    lon: 181.0,
                }),
                ..post()
            }),
            InvalidArgument,
            &["location.lon"],
            None,
        ),
        row(
            "check-in at latitude 91",
            Call::CheckIn(check_in(91.0, 116.36)),
            InvalidArgument,
            &["location.lat"],
            None,
        ),
        row(
            "check-in at longitude 181",
            Call::CheckIn(check_in(27.95, 181.0)),
            InvalidArgument,
            &["location.lon"],
            None,
        ),
        // Missing required messages.
        row(
            "post without a location",
            Call::Post(pb::PostOrderRequest {
                location: None,
                ..post()
            }),
            InvalidArgument,
            &["location"],
            None,
        ),
        row(
            "post without a window",
            Call::Post(pb::PostOrderRequest {
                window_start: None,
                window_end: None,
                ..post()
            }),
            InvalidArgument,
            &["window_start", "window_end"],
            None,
        ),
        row(
            "check-in without a location",
            Call::CheckIn(pb::CheckInRequest {
                location: None,
                ..check_in(0.0, 0.0)
            }),
            InvalidArgument,
            &["location"],
            None,
        ),
        row(
            "completion without a checklist",
            Call::Complete(pb::CompleteServiceRequest {
                command_id: uuid(0x8),
                order_id: uuid(OPEN),
                worker_id: WORKER.to_string(),
                slot: 0,
                checklist: None,
            }),
            InvalidArgument,
            &["checklist"],
            None,
        ),
        // Catalogue.
        row(
            "unknown service code",
            Call::Post(pb::PostOrderRequest {
                service_code: "Z99".into(),
                ..post()
            }),
            InvalidArgument,
            &["service_code"],
            None,
        ),
        // Ratings.
        row(
            "zero stars",
            Call::Review(review(SERVED, 0, "fine")),
            InvalidArgument,
            &["stars"],
            None,
        ),
        row(
            "six stars",
            Call::Review(review(SERVED, 6, "fine")),
            InvalidArgument,
            &["stars"],
            None,
        ),
        // Money.
        row(
            "negative refund",
            Call::Resolve(resolve(-1, 0)),
            InvalidArgument,
            &["refund_fen"],
            None,
        ),
        row(
            "negative compensation",
            Call::Resolve(resolve(0, -500)),
            InvalidArgument,
            &["compensation_fen"],
            None,
        ),
        // Text: judged by the domain, so the violation carries the domain's reason too.
        row(
            "empty cancellation reason",
            Call::Cancel(cancel("")),
            InvalidArgument,
            &["reason"],
            Some("EMPTY_TEXT"),
        ),
        row(
            "1001-character cancellation reason",
            Call::Cancel(cancel(&long)),
            InvalidArgument,
            &["reason"],
            Some("TEXT_TOO_LONG"),
        ),
        row(
            "1001-character review text",
            Call::Review(review(SERVED, 4, &long)),
            InvalidArgument,
            &["text"],
            Some("TEXT_TOO_LONG"),
        ),
        row(
            "empty complaint text",
            Call::Complaint(complaint(" ")),
            InvalidArgument,
            &["text"],
            Some("EMPTY_TEXT"),
        ),
        row(
            "1001-character complaint text",
            Call::Complaint(complaint(&long)),
            InvalidArgument,
            &["text"],
            Some("TEXT_TOO_LONG"),
        ),
        row(
            "empty dispute reason",
            Call::Dispute(dispute("")),
            InvalidArgument,
            &["reason"],
            Some("EMPTY_TEXT"),
        ),
        row(
            "1001-character dispute reason",
            Call::Dispute(dispute(&long)),
            InvalidArgument,
            &["reason"],
            Some("TEXT_TOO_LONG"),
        ),
        // A huge repeated field is decoded and judged like any other request: its bound is
        // checked before the order's state.
        row(
            "10,000 review tags before the service",
            Call::Review(pb::ReviewOrderRequest {
                tags: vec![pb::ReviewTag::Punctual as i32; 10_000],
                ..review(OPEN, 5, "great")
            }),
            InvalidArgument,
            &["tags"],
            None,
        ),
        // Bounds (issue 12).
        row(
            "11 review tags",
            Call::Review(pb::ReviewOrderRequest {
                tags: vec![pb::ReviewTag::Punctual as i32; 11],
                ..review(SERVED, 5, "great")
            }),
            InvalidArgument,
            &["tags"],
            None,
        ),
        row(
            "a repeated review tag",
            Call::Review(pb::ReviewOrderRequest {
                tags: vec![
                    pb::ReviewTag::Punctual as i32,
                    pb::ReviewTag::Excellent as i32,
                    pb::ReviewTag::Punctual as i32,
                ],
                ..review(SERVED, 5, "great")
            }),
            InvalidArgument,
            &["tags[2]"],
            None,
        ),
        row(
            "a window starting 91 days ahead",
            Call::Post(pb::PostOrderRequest {
                window_start: at(NOW.0 + 91 * DAY_MS),
                window_end: at(NOW.0 + 91 * DAY_MS + 3 * HOUR_MS),
                ..post()
            }),
            InvalidArgument,
            &["window_start"],
            None,
        ),
        row(
            "a window starting in year 2100 and lasting 400 days",
            Call::Post(pb::PostOrderRequest {
                window_start: at(4_102_444_800_000),
                window_end: at(4_102_444_800_000 + 400 * DAY_MS),
                ..post()
            }),
            InvalidArgument,
            &["window_start", "window_end"],
            None,
        ),
        row(
            "a cleaning window of 25 hours",
            Call::Post(pb::PostOrderRequest {
                window_end: at(NOW.0 + DAY_MS + 25 * HOUR_MS),
                ..post()
            }),
            InvalidArgument,
            &["window_end"],
            None,
        ),
        row(
            "dispute compensation 2^63-1 with a refund of 1",
            Call::Resolve(resolve(1, i64::MAX)),
            InvalidArgument,
            &["compensation_fen"],
            None,
        ),
        row(
            "dispute refund and compensation past what was paid plus the ceiling",
            Call::Resolve(resolve(0, 500_001 + PAID_FEN)),
            InvalidArgument,
            &["compensation_fen"],
            None,
        ),
        row(
            "credit adjustment of 101 points",
            Call::Adjust(adjust(101)),
            InvalidArgument,
            &["points"],
            None,
        ),
        row(
            "credit adjustment of -2^31 points",
            Call::Adjust(adjust(i32::MIN)),
            InvalidArgument,
            &["points"],
            None,
        ),
        // Paging.
        row(
            "page token that no reply gave",
            Call::OpenComplaints(open_complaints("next please", 10)),
            InvalidArgument,
            &["page_token"],
            None,
        ),
        row(
            "negative page token",
            Call::CustomerOrders(pb::ListCustomerOrdersRequest {
                customer_id: CUSTOMER.to_string(),
                min_position: 0,
                page_size: 10,
                page_token: "-1".into(),
            }),
            InvalidArgument,
            &["page_token"],
            None,
        ),
        // Wrong state.
        row(
            "review before the service",
            Call::Review(review(OPEN, 5, "great")),
            FailedPrecondition,
            &[],
            Some("REVIEW_BEFORE_SERVICE"),
        ),
        row(
            "check-in by a worker who does not hold the slot",
            Call::CheckIn(pb::CheckInRequest {
                worker_id: OTHER.to_string(),
                ..check_in(27.95, 116.36)
            }),
            FailedPrecondition,
            &[],
            Some("SLOT_NOT_HELD_BY_WORKER"),
        ),
    ]
}

fn fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

fn reason(status: &Status) -> Option<String> {
    status.get_details_error_info().map(|i| i.reason)
}

#[tokio::test]
async fn every_bad_input_gets_its_precise_status_and_appends_nothing() {
    let server = BadInputServer::start().await;
    let head = server.head().await;
    assert!(head > 0, "the seeded events are in the log");
    for row in table() {
        let what = row.what;
        let status = match server.call(row.call).await {
            Ok(()) => panic!("{what}: accepted"),
            Err(status) => status,
        };
        assert_eq!(status.code(), row.code, "{what}: {status:?}");
        assert_eq!(fields(&status), row.fields, "{what}: {status:?}");
        assert_eq!(reason(&status).as_deref(), row.reason, "{what}: {status:?}");
        assert_eq!(server.head().await, head, "{what}: something was appended");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_page_size_is_lowered_not_refused() {
    let server = BadInputServer::start().await;
    let reply = QueriesClient::new(server.channel.clone())
        .list_customer_orders(as_(
            CUSTOMER_TOKEN,
            pb::ListCustomerOrdersRequest {
                customer_id: CUSTOMER.to_string(),
                min_position: server.seeded,
                page_size: u32::MAX,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.orders.len(), 2, "{reply:?}");
    assert_eq!(reply.next_page_token, "");
    server.stop().await;
}

#[tokio::test]
async fn ten_thousand_unknown_review_tags_are_one_bounded_invalid_argument() {
    let server = BadInputServer::start().await;
    let head = server.head().await;
    let request = pb::ReviewOrderRequest {
        tags: vec![99; 10_000],
        ..review(SERVED, 5, "great")
    };
    let status = server.call(Call::Review(request)).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{:?}",
        status.message()
    );
    // The count is past the bound of 10: one violation, before any tag is looked at.
    assert_eq!(fields(&status), ["tags"]);
    assert!(
        status.message().contains("at most 10"),
        "{}",
        status.message()
    );
    assert!(status.message().len() < 4_096);
    assert_eq!(server.head().await, head);
    server.stop().await;
}
