//! The order API (`daojia.v1.CustomerApp`, `daojia.v1.WorkerApp`) through a real tonic client
//! against the server on 127.0.0.1:0 with a manual clock: posting and reading back, idempotent
//! retries, refused transitions with their reason codes, field violations, roles.

use daojia_domain::Timestamp;
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::pb::meta_client::MetaClient;
use daojia_server::pb::worker_app_client::WorkerAppClient;
use daojia_server::pb::{self, ServerInfoRequest};
use daojia_server::{Clock, ServeError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use daojia_store::{Direction, EmbeddedStore, EventId, EventStore, StreamStart};

use crate::harness::as_;
use crate::store::{TempDir, tempdir};

const CUSTOMER_TOKEN: &str = "customer-token-0123456789";
const WORKER_TOKEN: &str = "worker-token-0123456789ab";
const OPS_TOKEN: &str = "ops-token-0123456789abcdef";

/// 2027-01-15T08:00:00Z, the manual clock's reading.
const NOW: Timestamp = Timestamp(1_800_000_000_000);
const DAY_MS: i64 = 86_400_000;

struct OrderServer {
    channel: Channel,
    dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl OrderServer {
    async fn start() -> OrderServer {
        OrderServer::start_in(tempdir()).await
    }

    /// Starts the server on `dir/data` (which may hold events already).
    async fn start_in(dir: TempDir) -> OrderServer {
        let datadir = dir.path().join("data");
        let tokens = format!(
            "customer-app:{CUSTOMER_TOKEN}:shop-backend,worker-app:{WORKER_TOKEN},ops:{OPS_TOKEN}"
        );
        // Refused commands must append nothing at all: nothing else appends meanwhile.
        let crate::harness::Started {
            channel,
            addr: _,
            shutdown: tx,
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
        OrderServer {
            channel,
            dir,
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

    /// The store's committed end, to check that a refused command appended nothing.
    async fn head(&self) -> u64 {
        MetaClient::new(self.channel.clone())
            .server_info(as_(OPS_TOKEN, ServerInfoRequest {}))
            .await
            .unwrap()
            .into_inner()
            .head_position
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().unwrap().await.unwrap().unwrap();
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
}

fn id(n: u128) -> String {
    daojia_domain::OrderId::from_u128(n).to_string()
}

fn at(ms: i64) -> Option<pb::Timestamp> {
    Some(pb::Timestamp {
        seconds: ms / 1_000,
        nanos: 0,
    })
}

/// A valid PostOrder: 3 hours of C01 tomorrow in Fuzhou (抚州).
fn post(command: u128, order: u128) -> pb::PostOrderRequest {
    pb::PostOrderRequest {
        command_id: id(command),
        order_id: id(order),
        customer_id: id(0xC0),
        service_code: "C01".into(),
        quantity: 3,
        workers: 1,
        window_start: at(NOW.0 + DAY_MS),
        window_end: at(NOW.0 + DAY_MS + 3 * 3_600_000),
        location: Some(pb::LatLon {
            lat: 27.95,
            lon: 116.36,
        }),
        dispatch: None,
    }
}

fn review(command: u128, order: u128) -> pb::ReviewOrderRequest {
    pb::ReviewOrderRequest {
        command_id: id(command),
        order_id: id(order),
        customer_id: id(0xC0),
        stars: 5,
        tags: vec![pb::ReviewTag::Excellent as i32],
        text: "spotless".into(),
    }
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"))
        .reason
}

fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"))
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

#[tokio::test]
async fn a_posted_order_reads_back_with_its_quote_at_the_commit_position() {
    let server = OrderServer::start().await;
    let mut customer = server.customer();

    let reply = customer
        .post_order(as_(CUSTOMER_TOKEN, post(1, 100)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.event_types, ["OrderPosted"]);
    assert_eq!(reply.stream_revision, 0);
    assert!(!reply.replayed);
    let posted = reply.order.expect("order in the reply");
    assert_eq!(posted.phase, pb::OrderPhase::Open as i32);
    let quote = posted.quote.as_ref().unwrap();
    assert_eq!((quote.quantity, quote.workers), (3, 1));
    assert_eq!(quote.total_fen, quote.unit_price_fen * 3);
    assert!(server.head().await > reply.commit_position);

    let got = customer
        .get_order(as_(
            CUSTOMER_TOKEN,
            pb::GetOrderRequest {
                order_id: id(100),
                min_position: reply.commit_position,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, posted);
    assert_eq!(got.customer_id, id(0xC0));
    assert_eq!(got.window_start, at(NOW.0 + DAY_MS));
    assert_eq!(got.slots.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_retried_post_returns_the_first_result_and_appends_nothing() {
    let server = OrderServer::start().await;
    let mut customer = server.customer();
    let first = customer
        .post_order(as_(CUSTOMER_TOKEN, post(7, 200)))
        .await
        .unwrap()
        .into_inner();
    let head = server.head().await;

    let again = customer
        .post_order(as_(CUSTOMER_TOKEN, post(7, 200)))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(again.commit_position, first.commit_position);
    assert_eq!(again.stream_revision, first.stream_revision);
    assert_eq!(again.event_types, first.event_types);
    assert_eq!(again.order, first.order);
    assert_eq!(server.head().await, head, "the retry appended something");

    // Concurrent retries of one command: all get the first result, the stream has one event.
    let mut retries = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let mut c = server.customer();
        retries.spawn(async move { c.post_order(as_(CUSTOMER_TOKEN, post(8, 201))).await });
    }
    let mut positions = Vec::new();
    while let Some(r) = retries.join_next().await {
        let reply = r.unwrap().unwrap().into_inner();
        assert_eq!(reply.stream_revision, 0);
        positions.push(reply.commit_position);
    }
    positions.dedup();
    assert_eq!(positions.len(), 1, "different results: {positions:?}");

    // A new command id for the same order is a second post: refused.
    let status = customer
        .post_order(as_(CUSTOMER_TOKEN, post(9, 200)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "ORDER_ALREADY_POSTED");
    server.stop().await;
}

#[tokio::test]
async fn a_review_before_service_is_refused_with_its_reason_and_appends_nothing() {
    let server = OrderServer::start().await;
    let mut customer = server.customer();
    customer
        .post_order(as_(CUSTOMER_TOKEN, post(1, 300)))
        .await
        .unwrap();
    let head = server.head().await;

    let status = customer
        .review_order(as_(CUSTOMER_TOKEN, review(2, 300)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "REVIEW_BEFORE_SERVICE");
    assert_eq!(status.get_details_error_info().unwrap().domain, "daojia");
    assert_eq!(server.head().await, head);

    // Checking in a worker who holds no slot is refused the same way.
    let status = server
        .worker()
        .check_in(as_(
            WORKER_TOKEN,
            pb::CheckInRequest {
                command_id: id(3),
                order_id: id(300),
                worker_id: id(0xA1),
                slot: 0,
                location: Some(pb::LatLon {
                    lat: 27.95,
                    lon: 116.36,
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "SLOT_NOT_HELD_BY_WORKER");
    assert_eq!(server.head().await, head);
    server.stop().await;
}

#[tokio::test]
async fn a_cancelled_order_reads_back_cancelled() {
    let server = OrderServer::start().await;
    let mut customer = server.customer();
    customer
        .post_order(as_(CUSTOMER_TOKEN, post(1, 400)))
        .await
        .unwrap();
    let head = server.head().await;
    let status = customer
        .cancel_order(as_(
            CUSTOMER_TOKEN,
            pb::CancelOrderRequest {
                command_id: id(3),
                order_id: id(400),
                customer_id: id(0xC0),
                reason: "太".repeat(1_001),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["reason"]);
    assert_eq!(reason(&status), "TEXT_TOO_LONG");
    assert_eq!(server.head().await, head);

    let reply = customer
        .cancel_order(as_(
            CUSTOMER_TOKEN,
            pb::CancelOrderRequest {
                command_id: id(2),
                order_id: id(400),
                customer_id: id(0xC0),
                reason: "plans changed".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.event_types, ["OrderCancelled"]);
    assert_eq!(reply.stream_revision, 1);
    let order = reply.order.unwrap();
    assert_eq!(order.phase, pb::OrderPhase::Cancelled as i32);
    assert!(order.fee_charged_fen >= 0);
    server.stop().await;
}

#[tokio::test]
async fn unknown_orders_are_not_found() {
    let server = OrderServer::start().await;
    let empty = server.head().await;
    let mut customer = server.customer();
    let status = customer
        .get_order(as_(
            CUSTOMER_TOKEN,
            pb::GetOrderRequest {
                order_id: id(999),
                min_position: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "ORDER_NOT_FOUND");

    let status = customer
        .review_order(as_(CUSTOMER_TOKEN, review(1, 999)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(server.head().await, empty);
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_invalid_argument_with_field_violations_and_appends_nothing() {
    let server = OrderServer::start().await;
    let empty = server.head().await;
    let mut customer = server.customer();
    type Edit = fn(&mut pb::PostOrderRequest);
    let cases: &[(&str, Edit, &[&str])] = &[
        (
            "malformed command id",
            |r| r.command_id = "42".into(),
            &["command_id"],
        ),
        ("nil order id", |r| r.order_id = id(0), &["order_id"]),
        (
            "missing customer",
            |r| r.customer_id.clear(),
            &["customer_id"],
        ),
        (
            "unknown service",
            |r| r.service_code = "Z99".into(),
            &["service_code"],
        ),
        (
            "latitude out of range",
            |r| r.location.as_mut().unwrap().lat = 90.5,
            &["location.lat"],
        ),
        (
            "longitude NaN",
            |r| r.location.as_mut().unwrap().lon = f64::NAN,
            &["location.lon"],
        ),
        ("missing location", |r| r.location = None, &["location"]),
        (
            "missing window start",
            |r| r.window_start = None,
            &["window_start"],
        ),
        (
            "window ends before it starts",
            |r| r.window_end = at(NOW.0),
            &["window_end"],
        ),
        ("zero quantity", |r| r.quantity = 0, &["quantity"]),
        ("zero workers", |r| r.workers = 0, &["workers"]),
        (
            "too many workers (decided by the terms)",
            |r| r.workers = 1_000,
            &["workers"],
        ),
        (
            "several at once",
            |r| {
                r.order_id = "x".into();
                r.quantity = 0;
                r.location = None;
            },
            &["order_id", "quantity", "location"],
        ),
    ];
    for (what, edit, fields) in cases {
        let mut request = post(1, 500);
        edit(&mut request);
        let status = customer
            .post_order(as_(CUSTOMER_TOKEN, request))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert_eq!(violated_fields(&status), *fields, "{what}");
    }

    let mut bad_review = review(2, 500);
    bad_review.stars = 0;
    bad_review.tags.push(42);
    let status = customer
        .review_order(as_(CUSTOMER_TOKEN, bad_review))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["stars", "tags[1]"]);

    let status = server
        .worker()
        .complete_service(as_(
            WORKER_TOKEN,
            pb::CompleteServiceRequest {
                command_id: id(3),
                order_id: id(500),
                worker_id: "not-a-uuid".into(),
                slot: 0,
                checklist: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["worker_id", "checklist"]);

    assert_eq!(server.head().await, empty, "a refused command appended");
    server.stop().await;
}

#[tokio::test]
async fn each_app_role_may_call_only_its_own_service() {
    let server = OrderServer::start().await;
    let empty = server.head().await;
    let status = server
        .customer()
        .post_order(as_(WORKER_TOKEN, post(1, 600)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason(&status), "ROLE_NOT_ALLOWED");

    let status = server
        .customer()
        .get_order(as_(
            OPS_TOKEN,
            pb::GetOrderRequest {
                order_id: id(600),
                min_position: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let status = server
        .worker()
        .decline_offer(as_(
            CUSTOMER_TOKEN,
            pb::DeclineOfferRequest {
                command_id: id(2),
                order_id: id(600),
                worker_id: id(0xA1),
                slot: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    let status = server
        .customer()
        .post_order(Request::new(post(3, 600)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(server.head().await, empty);
    server.stop().await;
}

#[tokio::test]
async fn events_carry_the_command_id_as_event_id_and_the_actor_in_metadata() {
    let server = OrderServer::start().await;
    server
        .customer()
        .post_order(as_(CUSTOMER_TOKEN, post(0xABC, 700)))
        .await
        .unwrap();
    let (_dir, store) = server.stop_and_open_store().await;

    let events = store
        .read_stream(
            &format!("order-{}", id(700)),
            Direction::Forwards,
            StreamStart::Edge,
            10,
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let posted = &events[0];
    assert_eq!(posted.event_type(), "OrderPosted");
    assert_eq!(posted.id, EventId::from_u128(0xABC));
    let metadata: serde_json::Value = serde_json::from_slice(posted.metadata_slice()).unwrap();
    assert_eq!(metadata["actor"], "shop-backend");
    assert_eq!(metadata["role"], "customer-app");
    assert_eq!(metadata["schema_version"], 1);
    assert_eq!(metadata["command_id"], id(0xABC));
    assert_eq!(metadata["correlation_id"], id(0xABC));
    assert_eq!(metadata["causation_id"], id(0xABC));
    let data: serde_json::Value = serde_json::from_slice(posted.data_slice()).unwrap();
    assert_eq!(data["order_id"], id(700));
    assert_eq!(data["posted_at"], NOW.0);
}

#[tokio::test]
async fn a_black_listed_customer_cannot_post() {
    use daojia_domain::credit::{CreditEvent, SanctionCause, Subject};
    use daojia_domain::{CustomerId, events};
    use daojia_store::{ExpectedRevision, ProposedEvent};

    // The customer's credit stream says black-listed (ops decision), written before start.
    let dir = tempdir();
    {
        let store = EmbeddedStore::open(dir.path().join("data")).unwrap();
        let subject = Subject::Customer(CustomerId::from_u128(0xC0));
        let encoded = events::encode(&CreditEvent::BlackListed {
            subject,
            cause: SanctionCause::Ops {
                reason: "abuse reported by three workers".into(),
            },
            at: Timestamp(NOW.0 - DAY_MS),
        })
        .unwrap();
        let event = ProposedEvent::json(
            EventId::from_u128(0xB1),
            encoded.event_type,
            serde_json::to_vec(&encoded.data).unwrap(),
        );
        store
            .append(
                &subject.stream_name(),
                ExpectedRevision::NoStream,
                vec![event],
            )
            .await
            .unwrap();
    }
    let server = OrderServer::start_in(dir).await;
    let head = server.head().await;

    let status = server
        .customer()
        .post_order(as_(CUSTOMER_TOKEN, post(1, 800)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "CUSTOMER_BLACK_LISTED");
    assert_eq!(server.head().await, head);

    // Another customer posts as usual.
    let mut other = post(2, 801);
    other.customer_id = id(0xC1);
    server
        .customer()
        .post_order(as_(CUSTOMER_TOKEN, other))
        .await
        .unwrap();
    server.stop().await;
}
