//! What a client developer meets first (issue 12, point 8), through real gRPC clients against
//! the server on 127.0.0.1:0 with a manual clock: the catalogue service and its vocabularies,
//! quoting an order before posting it, times in messages, field paths and the order in which
//! checks run.

use daojia_domain::Timestamp;
use daojia_server::pb::admin_client::AdminClient;
use daojia_server::pb::catalog_client::CatalogClient;
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::pb::meta_client::MetaClient;
use daojia_server::pb::worker_app_client::WorkerAppClient;
use daojia_server::pb::{self, ServerInfoRequest};
use daojia_server::{Clock, ServeError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::harness::as_;
use crate::store::{TempDir, tempdir};

const CUSTOMER: &str = "customer-token-0123456789";
const WORKER: &str = "worker-token-0123456789ab";
const OPS: &str = "ops-token-0123456789abcdef";
const ANALYTICS: &str = "analytics-token-012345678";
const ADMIN: &str = "admin-token-0123456789abcd";

/// 2027-01-15T08:00:00Z, the manual clock's reading.
const NOW: Timestamp = Timestamp(1_800_000_000_000);
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// The worker onboarded through Admin, and the registry certifying them.
const WORKER_ID: u128 = 0xA1;
const REGISTRY: u128 = 0x4E6;

struct Server {
    channel: Channel,
    clock: Clock,
    _dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Server {
    /// A server without dispatcher and reactor: nothing appends but the calls of the test.
    async fn start() -> Server {
        let dir = tempdir();
        let datadir = dir.path().join("data");
        let tokens = format!(
            "customer-app:{CUSTOMER},worker-app:{WORKER},ops:{OPS},analytics:{ANALYTICS},\
             admin:{ADMIN}"
        );
        let clock = Clock::manual(NOW);
        let started = crate::harness::Serve {
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
        Server {
            channel: started.channel,
            clock,
            _dir: dir,
            shutdown: Some(started.shutdown),
            task: Some(started.task),
        }
    }

    fn catalog(&self) -> CatalogClient<Channel> {
        CatalogClient::new(self.channel.clone())
    }

    fn customer(&self) -> CustomerAppClient<Channel> {
        CustomerAppClient::new(self.channel.clone())
    }

    fn worker(&self) -> WorkerAppClient<Channel> {
        WorkerAppClient::new(self.channel.clone())
    }

    fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
    }

    /// Registers [`WORKER_ID`] with a contract in force and a home-visit certificate.
    async fn onboard(&self) {
        let mut admin = self.admin();
        admin
            .register_worker(as_(
                OPS,
                pb::RegisterWorkerRequest {
                    command_id: id(0x10),
                    worker_id: id(WORKER_ID),
                    company_id: id(0xCC),
                    identity_number: "110105198001010016".into(),
                    skills: vec!["elder_carer".into()],
                    home: here(),
                    registry_id: id(REGISTRY),
                    reason: "onboarded".into(),
                },
            ))
            .await
            .unwrap();
        admin
            .sign_contract(as_(
                OPS,
                pb::SignContractRequest {
                    command_id: id(0x11),
                    worker_id: id(WORKER_ID),
                    contract_number: "HT-2027-001".into(),
                    injury_cover: true,
                    valid_from: at(NOW.0 - DAY_MS),
                    valid_until: at(NOW.0 + 365 * DAY_MS),
                    reason: "signed".into(),
                },
            ))
            .await
            .unwrap();
        admin
            .issue_certificate(as_(OPS, certificate(0x12, 0xCE1, NOW.0 + 365 * DAY_MS)))
            .await
            .unwrap();
    }

    /// Posts a grab-pool order of C01 for the customer, lets [`WORKER_ID`] grab, check in and
    /// complete it: the order is served, ready for its review.
    async fn serve_an_order(&self, order: u128) {
        let mut request = post(order + 1, order);
        request.service_code = "C01".into();
        request.workers = 1;
        request.dispatch = Some(pb::post_order_request::Dispatch::GrabPool(
            pb::GrabPoolDispatch {
                deadline: at(NOW.0 + 23 * HOUR_MS),
            },
        ));
        self.customer()
            .post_order(as_(CUSTOMER, request))
            .await
            .unwrap();
        let mut worker = self.worker();
        worker
            .grab_order(as_(
                WORKER,
                pb::GrabOrderRequest {
                    command_id: id(order + 2),
                    order_id: id(order),
                    worker_id: id(WORKER_ID),
                },
            ))
            .await
            .unwrap();
        self.clock.set(Timestamp(NOW.0 + 24 * HOUR_MS));
        worker
            .check_in(as_(
                WORKER,
                pb::CheckInRequest {
                    command_id: id(order + 3),
                    order_id: id(order),
                    worker_id: id(WORKER_ID),
                    slot: 0,
                    location: here(),
                },
            ))
            .await
            .unwrap();
        self.clock.set(Timestamp(NOW.0 + 25 * HOUR_MS));
        let done = worker
            .complete_service(as_(
                WORKER,
                pb::CompleteServiceRequest {
                    command_id: id(order + 4),
                    order_id: id(order),
                    worker_id: id(WORKER_ID),
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
        assert_eq!(
            done.order.unwrap().phase,
            pb::OrderPhase::Served as i32,
            "the order is served"
        );
    }

    async fn head(&self) -> u64 {
        MetaClient::new(self.channel.clone())
            .server_info(as_(OPS, ServerInfoRequest {}))
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
}

fn id(n: u128) -> String {
    daojia_domain::OrderId::from_u128(n).to_string()
}

fn at(ms: i64) -> Option<pb::Timestamp> {
    Some(pb::Timestamp {
        seconds: ms.div_euclid(1_000),
        nanos: 0,
    })
}

/// A valid PostOrder: 2 visits of E10 (emergency elder call-out) by 2 workers, a day from now,
/// in Fuzhou.
fn post(command: u128, order: u128) -> pb::PostOrderRequest {
    pb::PostOrderRequest {
        command_id: id(command),
        order_id: id(order),
        customer_id: id(0xC0),
        service_code: "E10".into(),
        quantity: 2,
        workers: 2,
        window_start: at(NOW.0 + 24 * HOUR_MS),
        window_end: at(NOW.0 + 26 * HOUR_MS),
        location: Some(pb::LatLon {
            lat: 27.95,
            lon: 116.36,
        }),
        dispatch: None,
    }
}

fn here() -> Option<pb::LatLon> {
    Some(pb::LatLon {
        lat: 27.95,
        lon: 116.36,
    })
}

/// A home-visit certificate for [`WORKER_ID`], valid until `valid_until` (unix ms).
fn certificate(command: u128, certificate: u128, valid_until: i64) -> pb::IssueCertificateRequest {
    pb::IssueCertificateRequest {
        command_id: id(command),
        worker_id: id(WORKER_ID),
        certificate_id: id(certificate),
        kind: pb::CertificateKind::HomeVisit as i32,
        skill: String::new(),
        identity_verified: true,
        health_check_at: at(NOW.0 - 30 * DAY_MS),
        training_completed: true,
        exam_passed: true,
        valid_until: at(valid_until),
        reason: "training and exam passed".into(),
    }
}

fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"))
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"))
        .reason
}

#[tokio::test]
async fn every_role_lists_the_catalogue_with_prices_skills_and_vocabularies() {
    let server = Server::start().await;
    let mut catalog = server.catalog();
    let mut replies = Vec::new();
    for token in [CUSTOMER, WORKER, OPS, ANALYTICS, ADMIN] {
        replies.push(
            catalog
                .list_services(as_(token, pb::ListServicesRequest::default()))
                .await
                .unwrap_or_else(|s| panic!("{token}: {s:?}"))
                .into_inner(),
        );
    }
    let all = replies.pop().unwrap();
    assert!(replies.iter().all(|r| *r == all));
    assert_eq!(all.services.len(), 48);

    let e10 = all.services.iter().find(|s| s.code == "E10").unwrap();
    assert_eq!(e10.category, "eldercare");
    assert_eq!(e10.unit, "visit");
    assert_eq!(e10.unit_price_fen, 8_000);
    assert_eq!(e10.max_quantity, 10);
    assert_eq!(e10.required_certificates, ["elder_carer", "first_aid"]);
    assert_eq!(e10.typical_minutes, 60);
    assert!(!e10.name_zh.is_empty() && !e10.name_en.is_empty());
    let c01 = all.services.iter().find(|s| s.code == "C01").unwrap();
    assert_eq!(
        (c01.name_zh.as_str(), c01.name_en.as_str()),
        ("日常保洁", "routine cleaning")
    );
    assert!(c01.required_certificates.is_empty());
    let c12 = all.services.iter().find(|s| s.code == "C12").unwrap();
    assert_eq!(c12.required_certificates, ["disinfection"]);

    // The skill vocabulary is the catalogue's, not the category names.
    for skill in ["disinfection", "elder_carer", "first_aid", "work_at_height"] {
        assert!(
            all.skills.iter().any(|s| s == skill),
            "{skill}: {:?}",
            all.skills
        );
    }
    for invented in ["cleaning", "eldercare"] {
        assert!(
            !all.skills.iter().any(|s| s == invented),
            "{:?}",
            all.skills
        );
    }
    let keys: Vec<&str> = all.categories.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "cleaning",
            "housekeeping",
            "maternity",
            "childcare",
            "eldercare",
            "repair"
        ]
    );
    assert!(all.categories.iter().all(|c| !c.name_zh.is_empty()));
    assert_eq!(all.units, ["hour", "visit", "day", "month", "sqm"]);
    assert_eq!(all.review_tags.len(), 7);
    assert!(
        !all.review_tags
            .contains(&(pb::ReviewTag::Unspecified as i32))
    );

    let elder = catalog
        .list_services(as_(
            WORKER,
            pb::ListServicesRequest {
                category: "eldercare".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!elder.services.is_empty());
    assert!(elder.services.iter().all(|s| s.category == "eldercare"));
    assert_eq!(elder.categories.len(), 6);

    let unknown = catalog
        .list_services(as_(
            CUSTOMER,
            pb::ListServicesRequest {
                category: "elder".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&unknown), ["category"]);
    assert!(
        unknown.message().contains("eldercare"),
        "{}",
        unknown.message()
    );

    let anonymous = catalog
        .list_services(pb::ListServicesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    server.stop().await;
}

#[tokio::test]
async fn a_quote_is_exactly_what_post_order_then_fixes_and_appends_nothing() {
    let server = Server::start().await;
    let mut customer = server.customer();
    let head = server.head().await;

    let quote = customer
        .quote_order(as_(CUSTOMER, post(1, 100)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(server.head().await, head, "a quote appends nothing");
    let price = quote.quote.clone().unwrap();
    assert_eq!(price.unit, "visit");
    assert_eq!(
        (
            price.unit_price_fen,
            price.quantity,
            price.workers,
            price.total_fen
        ),
        (8_000, 2, 2, 32_000)
    );
    assert_eq!(quote.category, "eldercare");
    assert_eq!(quote.required_certificates, ["elder_carer", "first_aid"]);
    assert_eq!(quote.quoted_at, at(NOW.0));
    // The default terms: free with 24 h notice, 20 % with 2 h, 50 % later.
    let tiers: Vec<(u32, u32, i64, Option<pb::Timestamp>)> = quote
        .cancellation
        .iter()
        .map(|t| {
            (
                t.min_notice_minutes,
                t.fee_basis_points,
                t.fee_fen,
                t.cancel_by,
            )
        })
        .collect();
    assert_eq!(
        tiers,
        [
            (1_440, 0, 0, at(NOW.0)),
            (120, 2_000, 6_400, at(NOW.0 + 22 * HOUR_MS)),
            (0, 5_000, 16_000, at(NOW.0 + 24 * HOUR_MS)),
        ]
    );
    assert_eq!(quote.customer_no_show_fee_fen, 16_000);
    assert_eq!(quote.max_workers, 20);
    assert!(quote.review_window_minutes > 0 && quote.offer_ttl_minutes > 0);

    // The very same request posts, at the quoted price.
    let posted = customer
        .post_order(as_(CUSTOMER, post(1, 100)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(posted.order.unwrap().quote, Some(price));

    // Bad input: the same field violations as PostOrder, and nothing appended.
    let mut bad = post(2, 101);
    bad.service_code = "Z99".into();
    bad.quantity = 0;
    bad.command_id = String::new();
    let head = server.head().await;
    let quoted = customer
        .quote_order(as_(CUSTOMER, bad.clone()))
        .await
        .unwrap_err();
    let refused = customer.post_order(as_(CUSTOMER, bad)).await.unwrap_err();
    assert_eq!(quoted.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&quoted), violated_fields(&refused));
    assert_eq!(
        violated_fields(&quoted),
        ["command_id", "service_code", "quantity"]
    );

    // The same rules: a window that has started is refused.
    let mut late = post(3, 102);
    late.window_start = at(NOW.0 - HOUR_MS);
    let quoted = customer.quote_order(as_(CUSTOMER, late)).await.unwrap_err();
    assert_eq!(quoted.code(), Code::FailedPrecondition);
    assert_eq!(reason(&quoted), "WINDOW_IN_PAST");
    assert_eq!(server.head().await, head);

    // Only the customer app (and admin) quote.
    let denied = customer
        .quote_order(as_(WORKER, post(4, 103)))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    server.stop().await;
}

#[tokio::test]
async fn times_in_messages_are_rfc3339_in_utc_and_china_time_never_epoch_millis() {
    let server = Server::start().await;
    let mut late = post(1, 100);
    late.window_start = at(NOW.0 - HOUR_MS);
    let refused = server
        .customer()
        .post_order(as_(CUSTOMER, late))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "WINDOW_IN_PAST");
    let message = refused.message();
    assert!(
        message.contains("2027-01-15T07:00:00Z (2027-01-15T15:00:00+08:00 Asia/Shanghai)"),
        "{message}"
    );
    assert!(message.contains("now 2027-01-15T08:00:00Z"), "{message}");
    assert!(!message.contains("1800000000000"), "{message}");
    assert!(!message.contains("ms"), "{message}");

    let backwards = server
        .admin()
        .set_clock(as_(
            ADMIN,
            pb::SetClockRequest {
                now: at(NOW.0 - DAY_MS),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&backwards), "CLOCK_BACKWARDS");
    assert!(
        backwards.message().contains("2027-01-15T08:00:00Z")
            && backwards.message().contains("2027-01-14T08:00:00Z"),
        "{}",
        backwards.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn field_violations_name_the_coordinate_and_the_validity_field() {
    let server = Server::start().await;
    let head = server.head().await;
    let mut off_the_map = post(1, 100);
    off_the_map.location = Some(pb::LatLon {
        lat: 91.0,
        lon: 200.0,
    });
    let refused = server
        .customer()
        .post_order(as_(CUSTOMER, off_the_map))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refused), ["location.lat", "location.lon"]);

    let nan = server
        .worker()
        .update_location(as_(
            WORKER,
            pb::UpdateLocationRequest {
                worker_id: id(WORKER_ID),
                location: Some(pb::LatLon {
                    lat: f64::NAN,
                    lon: 116.36,
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&nan), ["location.lat"]);

    let home = server
        .admin()
        .register_worker(as_(
            OPS,
            pb::RegisterWorkerRequest {
                command_id: id(0x10),
                worker_id: id(WORKER_ID),
                company_id: id(0xCC),
                identity_number: "110105198001010016".into(),
                skills: vec![],
                home: Some(pb::LatLon {
                    lat: 27.95,
                    lon: -181.0,
                }),
                registry_id: id(REGISTRY),
                reason: "onboarded".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&home), ["home.lon"]);
    assert_eq!(server.head().await, head);

    // A validity end in the past is decided against the clock, and reported on its field.
    server.onboard().await;
    let head = server.head().await;
    let expired = server
        .admin()
        .issue_certificate(as_(OPS, certificate(0x20, 0xCE2, NOW.0 - DAY_MS)))
        .await
        .unwrap_err();
    assert_eq!(expired.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&expired), ["valid_until"]);
    assert!(
        expired.message().contains("2027-01-14T08:00:00Z"),
        "{}",
        expired.message()
    );
    assert_eq!(server.head().await, head);
    server.stop().await;
}

#[tokio::test]
async fn bad_input_is_reported_before_the_state_a_long_text_on_a_reviewed_order() {
    let server = Server::start().await;
    server.onboard().await;
    server.serve_an_order(0x500).await;
    let review = |command: u128, text: String| pb::ReviewOrderRequest {
        command_id: id(command),
        order_id: id(0x500),
        customer_id: id(0xC0),
        stars: 5,
        tags: vec![pb::ReviewTag::Punctual as i32],
        text,
    };
    let mut customer = server.customer();
    customer
        .review_order(as_(CUSTOMER, review(0x600, "spotless".into())))
        .await
        .unwrap();
    let head = server.head().await;

    let megabyte = customer
        .review_order(as_(CUSTOMER, review(0x601, "长".repeat(350_000))))
        .await
        .unwrap_err();
    assert_eq!(megabyte.code(), Code::InvalidArgument, "{megabyte:?}");
    assert_eq!(violated_fields(&megabyte), ["text"]);

    let many_tags = customer
        .review_order(as_(
            CUSTOMER,
            pb::ReviewOrderRequest {
                tags: (1..=7).collect(),
                ..review(0x602, String::new())
            },
        ))
        .await;
    // Seven distinct known tags are within the bound: the state decides (already reviewed).
    let again = many_tags.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(reason(&again), "ALREADY_REVIEWED");

    // A cancellation with an over-long reason on a served order: the reason, not the phase.
    let cancel = customer
        .cancel_order(as_(
            CUSTOMER,
            pb::CancelOrderRequest {
                command_id: id(0x603),
                order_id: id(0x500),
                customer_id: id(0xC0),
                reason: "x".repeat(1_001),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&cancel), ["reason"]);
    assert_eq!(server.head().await, head);
    server.stop().await;
}
