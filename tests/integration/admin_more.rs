//! The ops admin RPCs beyond sanctions through a real tonic client against the server on
//! 127.0.0.1:0 with a manual clock: onboarding a worker through Admin (registration, contract,
//! certificate) until they can grab, serve and be complained about, then the complaint's and
//! a dispute's resolution read back through Queries; publishing credit rules; revoking
//! certificates; appeals and repair refused in the wrong state; rebuilding the read models;
//! retries, roles and bad input appending nothing; and `daojia admin` for the new subcommands.

use daojia_domain::events;
use daojia_domain::order::{
    self, Checklist, DispatchMode, GeoPoint, OrderEvent, OrderState, Party, PostOrder,
    ServiceWindow, SlotIndex, WorkerCredentials,
};
use daojia_domain::{
    CustomerId, DisputeId, OrderCommand, OrderId, OrderTerms, RuleSet, Standing, Timestamp,
    WorkerId,
};
use daojia_server::admin_cli::CliError;
use daojia_server::pb::admin_client::AdminClient;
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::pb::meta_client::MetaClient;
use daojia_server::pb::queries_client::QueriesClient;
use daojia_server::pb::worker_app_client::WorkerAppClient;
use daojia_server::pb::{self, ServerInfoRequest};
use daojia_server::{Clock, ServeError};
use daojia_store::{
    Direction, EmbeddedStore, EventId, EventStore, ExpectedRevision, ProposedEvent, StreamStart,
};
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
const ADMIN_TOKEN: &str = "admin-token-0123456789abcd";

/// The manual clock's starting reading (2027-01-15T08:00:00Z).
const NOW: Timestamp = Timestamp(1_800_000_000_000);
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

const CUSTOMER: u128 = 0xC0;
const COMPANY: u128 = 0xCC;
const REGISTRY: u128 = 0x4E6;
/// The worker onboarded through Admin.
const WORKER: u128 = 0xA1;
/// The worker of the seeded, disputed order (never registered: the order was seeded).
const SEEDED_WORKER: u128 = 0xA7;
/// The seeded served order with an open dispute.
const DISPUTED_ORDER: u128 = 0x300;
const DISPUTE: u128 = 0xD15;

fn uuid(n: u128) -> String {
    OrderId::from_u128(n).to_string()
}

fn at(ms: i64) -> Option<pb::Timestamp> {
    Some(pb::Timestamp {
        seconds: ms.div_euclid(1_000),
        nanos: 0,
    })
}

fn window() -> ServiceWindow {
    ServiceWindow {
        start: Timestamp(NOW.0 + DAY_MS),
        end: Timestamp(NOW.0 + DAY_MS + 3 * HOUR_MS),
    }
}

fn location() -> GeoPoint {
    GeoPoint::new(27.95, 116.36).unwrap()
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"))
        .reason
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

/// Appends order 0x300 as served by [`SEEDED_WORKER`] with dispute [`DISPUTE`] raised by its
/// customer: there is no dispatcher or RaiseDispute RPC to get there through the API.
async fn seed_disputed_order(dir: &TempDir) -> u64 {
    let store = EmbeddedStore::open(dir.path().join("data")).unwrap();
    let order_id = OrderId::from_u128(DISPUTED_ORDER);
    let worker = WorkerId::from_u128(SEEDED_WORKER);
    let customer = CustomerId::from_u128(CUSTOMER);
    let credentials = WorkerCredentials {
        worker,
        standing: Standing::Good,
        home_visit_certificate_valid: true,
        skills: Vec::new(),
        contract_signed: true,
    };
    let post = PostOrder {
        order_id,
        customer,
        customer_standing: Standing::Good,
        service: "C01".parse().unwrap(),
        quantity: 3,
        workers: 1,
        window: ServiceWindow {
            start: Timestamp(NOW.0 - 5 * HOUR_MS),
            end: Timestamp(NOW.0 - 2 * HOUR_MS),
        },
        location: location(),
        dispatch: DispatchMode::Platform,
        terms: OrderTerms::default(),
    };
    let slot = SlotIndex(0);
    let steps = [
        (OrderCommand::Post(Box::new(post)), NOW.0 - 2 * DAY_MS),
        (
            OrderCommand::Offer {
                slot,
                worker: credentials.clone(),
            },
            NOW.0 - 2 * DAY_MS + 60_000,
        ),
        (
            OrderCommand::Accept {
                slot,
                worker: credentials,
            },
            NOW.0 - 2 * DAY_MS + 120_000,
        ),
        (
            OrderCommand::CheckIn {
                slot,
                worker,
                location: location(),
            },
            NOW.0 - 5 * HOUR_MS,
        ),
        (
            OrderCommand::Complete {
                slot,
                worker,
                checklist: Checklist {
                    tools_disinfected: true,
                    area_tidied: true,
                    customer_confirmed: true,
                },
            },
            NOW.0 - 2 * HOUR_MS,
        ),
        (
            OrderCommand::RaiseDispute {
                dispute_id: DisputeId::from_u128(DISPUTE),
                by: Party::Customer(customer),
                reason: "a vase was broken".into(),
            },
            NOW.0 - HOUR_MS,
        ),
    ];
    let mut state = OrderState::default();
    let mut all: Vec<OrderEvent> = Vec::new();
    for (command, when) in steps {
        let decided = order::decide(&state, command, Timestamp(when)).unwrap();
        state = decided.iter().fold(state, order::evolve);
        all.extend(decided);
    }
    let proposed = all
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let encoded = events::encode(event).unwrap();
            ProposedEvent::json(
                EventId::from_u128(0x5EED_0000 + i as u128),
                event.event_type(),
                serde_json::to_vec(&encoded.data).unwrap(),
            )
        })
        .collect();
    store
        .append(
            &order_id.stream_name(),
            ExpectedRevision::NoStream,
            proposed,
        )
        .await
        .unwrap()
        .position
        .0
}

struct AdminServer {
    /// The position of the last seeded event.
    seeded: u64,
    channel: Channel,
    addr: std::net::SocketAddr,
    clock: Clock,
    dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl AdminServer {
    /// Seeds the disputed order into a fresh data directory and starts the server on it.
    async fn start() -> AdminServer {
        let dir = tempdir();
        let seeded = seed_disputed_order(&dir).await;
        let datadir = dir.path().join("data");
        let tokens = format!(
            "customer-app:{CUSTOMER_TOKEN},worker-app:{WORKER_TOKEN},ops:{OPS_TOKEN}:ops-li,\
             admin:{ADMIN_TOKEN}:admin-wang"
        );
        // Refused commands must append nothing at all, and the tests make every offer and
        // reaction they need themselves.
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
            reactor: false,
            args: &["--query-wait-ms", "2000"],
            service: "",
        }
        .start()
        .await;
        AdminServer {
            channel,
            addr,
            clock,
            dir,
            seeded,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
    }

    fn queries(&self) -> QueriesClient<Channel> {
        QueriesClient::new(self.channel.clone())
    }

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

    /// Registers [`WORKER`], records a contract in force and issues a home-visit certificate,
    /// all through Admin; returns the certificate's reply.
    async fn onboard(&self) -> pb::AdminReply {
        let registered = self
            .admin()
            .register_worker(as_(OPS_TOKEN, register(0x10, WORKER)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(registered.event_types, ["WorkerRegistered"]);
        let signed = self
            .admin()
            .sign_contract(as_(OPS_TOKEN, contract(0x11, WORKER, true)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(signed.event_types, ["ContractSigned"]);
        let issued = self
            .admin()
            .issue_certificate(as_(OPS_TOKEN, certificate(0x12, WORKER, 0xCE1)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(issued.event_types, ["CertificateIssued"]);
        issued
    }

    async fn open_complaints(&self, min_position: u64) -> Vec<pb::OpenComplaint> {
        self.queries()
            .list_open_complaints(as_(
                OPS_TOKEN,
                pb::ListOpenRequest {
                    min_position,
                    page_size: 0,
                    page_token: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .complaints
    }

    async fn open_disputes(&self, min_position: u64) -> Vec<pb::OpenDispute> {
        self.queries()
            .list_open_disputes(as_(
                OPS_TOKEN,
                pb::ListOpenRequest {
                    min_position,
                    page_size: 0,
                    page_token: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .disputes
    }

    async fn order(&self, order: u128, min_position: u64) -> pb::Order {
        CustomerAppClient::new(self.channel.clone())
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

    async fn profile(&self, worker: u128, min_position: u64) -> pb::WorkerProfileReply {
        self.queries()
            .get_worker_profile(as_(
                OPS_TOKEN,
                pb::GetWorkerProfileRequest {
                    worker_id: uuid(worker),
                    min_position,
                    schedule_from: None,
                    schedule_to: None,
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// Posts grab-pool order `order`, lets [`WORKER`] grab it, check in at the window start
    /// and complete it, and the customer complain (complaint `complaint`).
    async fn served_and_complained(&self, order: u128, complaint: u128) -> u64 {
        let mut customer = CustomerAppClient::new(self.channel.clone());
        let mut worker = WorkerAppClient::new(self.channel.clone());
        customer
            .post_order(as_(
                CUSTOMER_TOKEN,
                pb::PostOrderRequest {
                    command_id: uuid(order + 1),
                    order_id: uuid(order),
                    customer_id: uuid(CUSTOMER),
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
        worker
            .grab_order(as_(
                WORKER_TOKEN,
                pb::GrabOrderRequest {
                    command_id: uuid(order + 2),
                    order_id: uuid(order),
                    worker_id: uuid(WORKER),
                },
            ))
            .await
            .unwrap();
        self.clock.set(window().start);
        worker
            .check_in(as_(
                WORKER_TOKEN,
                pb::CheckInRequest {
                    command_id: uuid(order + 3),
                    order_id: uuid(order),
                    worker_id: uuid(WORKER),
                    slot: 0,
                    location: Some(pb::LatLon {
                        lat: 27.95,
                        lon: 116.36,
                    }),
                },
            ))
            .await
            .unwrap();
        self.clock.set(Timestamp(window().end.0 - HOUR_MS));
        worker
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
            .unwrap();
        customer
            .file_complaint(as_(
                CUSTOMER_TOKEN,
                pb::FileComplaintRequest {
                    command_id: uuid(order + 5),
                    order_id: uuid(order),
                    complaint_id: uuid(complaint),
                    customer_id: uuid(CUSTOMER),
                    worker_id: uuid(WORKER),
                    category: pb::ComplaintCategory::Quality as i32,
                    text: "the windows were left streaky".into(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .commit_position
    }
}

fn register(command: u128, worker: u128) -> pb::RegisterWorkerRequest {
    pb::RegisterWorkerRequest {
        command_id: uuid(command),
        worker_id: uuid(worker),
        company_id: uuid(COMPANY),
        identity_number: "110105198001010016".into(),
        skills: vec!["disinfection".into()],
        home: Some(pb::LatLon {
            lat: 27.95,
            lon: 116.36,
        }),
        registry_id: uuid(REGISTRY),
        reason: "onboarded by company 0xCC".into(),
    }
}

fn contract(command: u128, worker: u128, injury_cover: bool) -> pb::SignContractRequest {
    pb::SignContractRequest {
        command_id: uuid(command),
        worker_id: uuid(worker),
        contract_number: format!("HT-2027-{command}"),
        injury_cover,
        valid_from: at(NOW.0 - DAY_MS),
        valid_until: at(NOW.0 + 365 * DAY_MS),
        reason: "paper contract received".into(),
    }
}

fn certificate(command: u128, worker: u128, id: u128) -> pb::IssueCertificateRequest {
    pb::IssueCertificateRequest {
        command_id: uuid(command),
        worker_id: uuid(worker),
        certificate_id: uuid(id),
        kind: pb::CertificateKind::HomeVisit as i32,
        skill: String::new(),
        identity_verified: true,
        health_check_at: at(NOW.0 - 30 * DAY_MS),
        training_completed: true,
        exam_passed: true,
        valid_until: at(NOW.0 + 365 * DAY_MS),
        reason: "training and exam passed".into(),
    }
}

fn resolve_complaint(command: u128, order: u128, complaint: u128) -> pb::ResolveComplaintRequest {
    pb::ResolveComplaintRequest {
        command_id: uuid(command),
        order_id: uuid(order),
        complaint_id: uuid(complaint),
        decision: pb::ComplaintDecision::Upheld as i32,
        severity: pb::ComplaintSeverity::Minor as i32,
        refund_fen: 1_000,
        reason: "photos confirm the streaks".into(),
    }
}

fn resolve_dispute(
    command: u128,
    fault: pb::DisputeFault,
    at_fault: u128,
) -> pb::ResolveDisputeRequest {
    pb::ResolveDisputeRequest {
        command_id: uuid(command),
        order_id: uuid(DISPUTED_ORDER),
        dispute_id: uuid(DISPUTE),
        fault: fault as i32,
        at_fault_id: uuid(at_fault),
        refund_fen: 2_000,
        compensation_fen: 5_000,
        note: "the worker admitted breaking the vase".into(),
        reason: "mediated by phone".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_onboarded_through_admin_serves_and_ops_resolve_the_complaint_once() {
    let server = AdminServer::start().await;
    let issued = server.onboard().await;
    let profile = server.profile(WORKER, issued.commit_position).await;
    assert!(profile.in_matching_pool, "{profile:?}");
    assert_eq!(profile.certificates.len(), 1);

    let filed = server.served_and_complained(0x200, 0xC01).await;
    let open = server.open_complaints(filed).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].complaint_id, uuid(0xC01));

    let resolved = server
        .admin()
        .resolve_complaint(as_(OPS_TOKEN, resolve_complaint(0x20, 0x200, 0xC01)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.event_types, ["ComplaintResolved"]);
    assert!(!resolved.replayed);
    assert!(
        server
            .open_complaints(resolved.commit_position)
            .await
            .is_empty()
    );
    let order = server.order(0x200, resolved.commit_position).await;
    assert_eq!(order.refunded_fen, 1_000, "{order:?}");

    // The same command again: the first result, nothing appended.
    let head = server.head().await;
    let retry = server
        .admin()
        .resolve_complaint(as_(OPS_TOKEN, resolve_complaint(0x20, 0x200, 0xC01)))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed);
    assert_eq!(retry.commit_position, resolved.commit_position);
    assert_eq!(retry.stream_revision, resolved.stream_revision);
    assert_eq!(server.head().await, head);

    // A new command on the resolved complaint is a rule violation.
    let status = server
        .admin()
        .resolve_complaint(as_(OPS_TOKEN, resolve_complaint(0x21, 0x200, 0xC01)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "COMPLAINT_ALREADY_RESOLVED");
    // An unknown complaint is not found.
    let status = server
        .admin()
        .resolve_complaint(as_(OPS_TOKEN, resolve_complaint(0x22, 0x200, 0xC09)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(reason(&status), "UNKNOWN_COMPLAINT");
    assert_eq!(server.head().await, head);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_is_resolved_once_with_its_fault_and_refund() {
    let server = AdminServer::start().await;
    let open = server.open_disputes(server.seeded).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].dispute_id, uuid(DISPUTE));

    // At fault: someone not on the order.
    let head = server.head().await;
    let status = server
        .admin()
        .resolve_dispute(as_(
            OPS_TOKEN,
            resolve_dispute(0x30, pb::DisputeFault::Worker, 0xBAD),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "WORKER_NOT_ON_ORDER");
    assert_eq!(server.head().await, head, "nothing appended");

    let done = server
        .admin()
        .resolve_dispute(as_(
            OPS_TOKEN,
            resolve_dispute(0x31, pb::DisputeFault::Worker, SEEDED_WORKER),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.event_types, ["DisputeResolved"]);
    assert!(server.open_disputes(done.commit_position).await.is_empty());
    let order = server.order(DISPUTED_ORDER, done.commit_position).await;
    assert_eq!(order.refunded_fen, 2_000, "{order:?}");

    let retry = server
        .admin()
        .resolve_dispute(as_(
            OPS_TOKEN,
            resolve_dispute(0x31, pb::DisputeFault::Worker, SEEDED_WORKER),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed);
    assert_eq!(retry.commit_position, done.commit_position);

    let status = server
        .admin()
        .resolve_dispute(as_(
            OPS_TOKEN,
            resolve_dispute(0x32, pb::DisputeFault::Nobody, 0),
        ))
        .await
        .unwrap_err();
    // `at_fault_id` must be empty for nobody: bad input before the state is looked at.
    assert_eq!(violated_fields(&status), ["at_fault_id"]);
    let mut nobody = resolve_dispute(0x33, pb::DisputeFault::Nobody, 0);
    nobody.at_fault_id.clear();
    let status = server
        .admin()
        .resolve_dispute(as_(OPS_TOKEN, nobody))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "DISPUTE_ALREADY_RESOLVED");
    server.stop().await;
}

fn publish(command: u128, rules_json: String) -> pb::PublishCreditRulesRequest {
    pb::PublishCreditRulesRequest {
        command_id: uuid(command),
        rules_json,
        reason: "2027 policy review".into(),
    }
}

fn rules(version: u32) -> String {
    let mut rules = RuleSet::proposal();
    rules.version = version;
    serde_json::to_string(&rules).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_rules_are_published_by_admin_only_with_increasing_versions() {
    let server = AdminServer::start().await;
    let head = server.head().await;
    let status = server
        .admin()
        .publish_credit_rules(as_(OPS_TOKEN, publish(0x40, rules(2))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let status = server
        .admin()
        .publish_credit_rules(as_(ADMIN_TOKEN, publish(0x41, "{\"version\": 2".into())))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["rules_json"]);

    let mut invalid = RuleSet::proposal();
    invalid.version = 2;
    invalid.black_list_below = 500;
    let status = server
        .admin()
        .publish_credit_rules(as_(
            ADMIN_TOKEN,
            publish(0x42, serde_json::to_string(&invalid).unwrap()),
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["rules_json"]);
    assert!(status.message().contains("thresholds"), "{status:?}");

    // The built-in rule set is version 1.
    let status = server
        .admin()
        .publish_credit_rules(as_(ADMIN_TOKEN, publish(0x43, rules(1))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "RULE_SET_VERSION_NOT_NEWER");
    assert_eq!(server.head().await, head, "nothing appended");

    let published = server
        .admin()
        .publish_credit_rules(as_(ADMIN_TOKEN, publish(0x44, rules(2))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(published.event_types, ["CreditRuleSetPublished"]);
    let retry = server
        .admin()
        .publish_credit_rules(as_(ADMIN_TOKEN, publish(0x44, rules(2))))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed);
    assert_eq!(retry.commit_position, published.commit_position);
    let status = server
        .admin()
        .publish_credit_rules(as_(ADMIN_TOKEN, publish(0x45, rules(2))))
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "RULE_SET_VERSION_NOT_NEWER");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_takes_the_worker_out_of_the_pool() {
    let server = AdminServer::start().await;
    server.onboard().await;
    let revoke = |command: u128, worker: u128, certificate: u128| pb::RevokeCertificateRequest {
        command_id: uuid(command),
        worker_id: uuid(worker),
        certificate_id: uuid(certificate),
        reason: "identity fraud".into(),
    };
    let status = server
        .admin()
        .revoke_certificate(as_(OPS_TOKEN, revoke(0x50, WORKER, 0xCE9)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(reason(&status), "UNKNOWN_CERTIFICATE");
    let status = server
        .admin()
        .revoke_certificate(as_(OPS_TOKEN, revoke(0x51, 0xA9, 0xCE1)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(reason(&status), "WORKER_NOT_REGISTERED");

    let revoked = server
        .admin()
        .revoke_certificate(as_(OPS_TOKEN, revoke(0x52, WORKER, 0xCE1)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revoked.event_types, ["CertificateRevoked"]);
    let profile = server.profile(WORKER, revoked.commit_position).await;
    assert!(!profile.in_matching_pool, "{profile:?}");
    assert_eq!(
        profile.certificates[0].status,
        pb::CertificateStatus::Revoked as i32
    );
    let status = server
        .admin()
        .revoke_certificate(as_(OPS_TOKEN, revoke(0x53, WORKER, 0xCE1)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "CERTIFICATE_NOT_USABLE");
    // A second home-visit certificate for the same identity is refused for life.
    let status = server
        .admin()
        .issue_certificate(as_(OPS_TOKEN, certificate(0x54, WORKER, 0xCE2)))
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "HOME_VISIT_CERTIFICATE_EXISTS");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_refusals_carry_their_reason_codes_and_append_nothing() {
    let server = AdminServer::start().await;
    let head = server.head().await;
    let status = server
        .admin()
        .sign_contract(as_(OPS_TOKEN, contract(0x60, WORKER, true)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(reason(&status), "WORKER_NOT_REGISTERED");
    let status = server
        .admin()
        .issue_certificate(as_(OPS_TOKEN, certificate(0x61, WORKER, 0xCE1)))
        .await
        .unwrap_err();
    assert_eq!(reason(&status), "WORKER_NOT_REGISTERED");
    assert_eq!(server.head().await, head);

    server
        .admin()
        .register_worker(as_(OPS_TOKEN, register(0x62, WORKER)))
        .await
        .unwrap();
    let status = server
        .admin()
        .register_worker(as_(OPS_TOKEN, register(0x63, WORKER)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "WORKER_ALREADY_REGISTERED");
    let status = server
        .admin()
        .sign_contract(as_(OPS_TOKEN, contract(0x64, WORKER, false)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "CONTRACT_WITHOUT_INJURY_COVER");

    // Appeals and repair on a subject with a clean record.
    let subject = Some(pb::CreditSubject {
        kind: pb::CreditSubjectKind::Worker as i32,
        id: uuid(WORKER),
    });
    let status = server
        .admin()
        .repair_credit(as_(
            OPS_TOKEN,
            pb::RepairCreditRequest {
                command_id: uuid(0x65),
                subject: subject.clone(),
                reason: "clean for 90 days".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(&status), "NOTHING_TO_REPAIR");
    let status = server
        .admin()
        .decide_appeal(as_(
            OPS_TOKEN,
            pb::DecideAppealRequest {
                command_id: uuid(0x66),
                subject,
                appeal_id: uuid(0xAAA),
                upheld: true,
                note: "evidence was wrong".into(),
                reason: "reviewed".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(reason(&status), "UNKNOWN_APPEAL");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_wrong_roles_are_refused_and_append_nothing() {
    let server = AdminServer::start().await;
    let head = server.head().await;
    let mut admin = server.admin();

    let status = admin
        .resolve_complaint(as_(
            OPS_TOKEN,
            pb::ResolveComplaintRequest {
                command_id: "not-a-uuid".into(),
                order_id: uuid(0x200),
                complaint_id: String::new(),
                decision: pb::ComplaintDecision::Upheld as i32,
                severity: 0,
                refund_fen: 0,
                reason: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["command_id", "complaint_id", "severity", "reason"]
    );
    let mut bad = resolve_dispute(0x70, pb::DisputeFault::Customer, CUSTOMER);
    bad.refund_fen = -1;
    bad.note = " ".into();
    let status = admin
        .resolve_dispute(as_(OPS_TOKEN, bad))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["refund_fen", "note"]);
    let mut bad = register(0x71, WORKER);
    bad.identity_number = "110105198001010017".into();
    bad.reason.clear();
    let status = admin
        .register_worker(as_(OPS_TOKEN, bad))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["identity_number", "reason"]);
    let mut bad = contract(0x72, WORKER, true);
    bad.contract_number = "HT 1".into();
    bad.valid_until = at(NOW.0 - 2 * DAY_MS);
    let status = admin.sign_contract(as_(OPS_TOKEN, bad)).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["contract_number", "valid_until"]);
    let mut bad = certificate(0x73, WORKER, 0);
    bad.kind = pb::CertificateKind::Skill as i32;
    bad.exam_passed = false;
    let status = admin
        .issue_certificate(as_(OPS_TOKEN, bad))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["certificate_id", "skill", "exam_passed"]
    );
    let status = admin
        .rebuild_projection(as_(
            OPS_TOKEN,
            pb::RebuildProjectionRequest {
                reason: String::new(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["reason"]);

    for status in [
        admin
            .resolve_complaint(as_(WORKER_TOKEN, resolve_complaint(0x74, 0x200, 0xC01)))
            .await
            .unwrap_err(),
        admin
            .register_worker(as_(CUSTOMER_TOKEN, register(0x75, WORKER)))
            .await
            .unwrap_err(),
        admin
            .rebuild_projection(as_(
                WORKER_TOKEN,
                pb::RebuildProjectionRequest {
                    reason: "why not".into(),
                },
            ))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(reason(&status), "ROLE_NOT_ALLOWED");
    }
    assert_eq!(server.head().await, head, "nothing appended");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_replays_the_log_and_answers_the_same() {
    let server = AdminServer::start().await;
    let issued = server.onboard().await;
    let before = server.profile(WORKER, issued.commit_position).await;
    let rebuilt = server
        .admin()
        .rebuild_projection(as_(
            OPS_TOKEN,
            pb::RebuildProjectionRequest {
                reason: "after the certificate projection fix".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(rebuilt.position >= issued.commit_position, "{rebuilt:?}");
    assert!(!rebuilt.projection.is_empty());
    let after = server.profile(WORKER, rebuilt.position).await;
    assert_eq!(after.certificates, before.certificates);
    assert_eq!(after.in_matching_pool, before.in_matching_pool);
    assert_eq!(server.open_disputes(rebuilt.position).await.len(), 1);
    server.stop().await;
}

/// Runs `daojia admin` with `args` (after `admin`) against `server` with `token`.
async fn cli(server: &AdminServer, token: &str, args: &[&str]) -> Result<String, CliError> {
    crate::harness::admin_cli(server.addr, token, args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_resolves_a_dispute_publishes_rules_and_rebuilds() {
    let server = AdminServer::start().await;
    let worker = uuid(SEEDED_WORKER);
    let args = [
        "resolve-dispute",
        "--order",
        &uuid(DISPUTED_ORDER),
        "--dispute",
        &uuid(DISPUTE),
        "--fault",
        "worker",
        "--at-fault",
        &worker,
        "--refund-fen",
        "2000",
        "--note",
        "vase replaced",
        "--reason",
        "mediated",
        "--command-id",
        &uuid(0x80),
    ];
    let table = cli(&server, OPS_TOKEN, &args).await.unwrap();
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap(),
        "commit position  revision  events           replayed"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    // Seeded: posted, offered, accepted, checked in, completed and served, dispute raised
    // (revisions 0 to 6).
    assert_eq!(row[1..], ["7", "DisputeResolved", "false"]);
    // The retry, as JSON.
    let json = cli(&server, OPS_TOKEN, &[args.as_slice(), &["--json"]].concat())
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["replayed"], true);
    assert_eq!(value["event_types"][0], "DisputeResolved");

    // Rules from a file; ops may not publish them.
    let dir = tempdir();
    let file = dir.path().join("rules.json");
    std::fs::write(&file, rules(3)).unwrap();
    let publish = [
        "publish-credit-rules",
        "--rules",
        file.to_str().unwrap(),
        "--reason",
        "2027",
    ];
    let err = cli(&server, OPS_TOKEN, &publish).await.unwrap_err();
    let CliError::Refused { code, reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*code, Code::PermissionDenied);
    assert_eq!(reason.as_deref(), Some("ROLE_NOT_ALLOWED"));
    let out = cli(
        &server,
        ADMIN_TOKEN,
        &[publish.as_slice(), &["--json"]].concat(),
    )
    .await
    .unwrap();
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["event_types"][0], "CreditRuleSetPublished");

    // Bad JSON in the file: the field violation is printed.
    std::fs::write(&file, "{").unwrap();
    let err = cli(&server, ADMIN_TOKEN, &publish).await.unwrap_err();
    assert!(err.to_string().contains("rules_json: "), "{err}");

    let out = cli(
        &server,
        OPS_TOKEN,
        &["rebuild-projection", "--reason", "drill"],
    )
    .await
    .unwrap();
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["projection", "position"]
    );
    assert!(lines.next().is_some(), "{out}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_events_carry_the_command_id_the_actor_and_the_reason() {
    let server = AdminServer::start().await;
    server.onboard().await;
    let (_dir, store) = server.stop_and_open_store().await;
    let profile = store
        .read_stream(
            &format!("workerprofile-{}", uuid(WORKER)),
            Direction::Forwards,
            StreamStart::Edge,
            10,
        )
        .await
        .unwrap();
    let types: Vec<&str> = profile.iter().map(|e| e.event_type()).collect();
    assert_eq!(types, ["WorkerRegistered", "ContractSigned"]);
    assert_eq!(profile[0].id, EventId::from_u128(0x10));
    let metadata: serde_json::Value = serde_json::from_slice(profile[0].metadata_slice()).unwrap();
    assert_eq!(metadata["actor"], "ops-li");
    assert_eq!(metadata["role"], "ops");
    assert_eq!(metadata["reason"], "onboarded by company 0xCC");
    assert_eq!(metadata["command_id"], uuid(0x10));

    let registry = store
        .read_stream(
            &format!("certificates-{}", uuid(REGISTRY)),
            Direction::Forwards,
            StreamStart::Edge,
            10,
        )
        .await
        .unwrap();
    assert_eq!(registry.len(), 1);
    let issued: serde_json::Value = serde_json::from_slice(registry[0].data_slice()).unwrap();
    assert_eq!(issued["worker"], uuid(WORKER));
    assert_eq!(issued["company"], uuid(COMPANY));
    assert_eq!(issued["identity"], "110105198001010016");
}
