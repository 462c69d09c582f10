//! Issue 12, the ops part, through real gRPC clients: ops commands check the subject they
//! touch (NOT_FOUND naming `kind:id` in the message and in `ResourceInfo`, nothing appended),
//! profiles and credit answer for every registered worker as soon as the registration's
//! position is reached and NOT_FOUND for unknown ids, and `min_position` accepts the head and
//! refuses a position past it with FAILED_PRECONDITION. The bounds on figures are rows of the
//! bad-input table (`bad_input.rs`).

use daojia_server::pb::admin_client::AdminClient;
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::pb::meta_client::MetaClient;
use daojia_server::pb::{self, ServerInfoRequest};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::queries::{CUSTOMER_TOKEN, OPS_TOKEN, QueryServer, as_, id, post_request};

const WORKER: u128 = 0xA1;
const COMPANY: u128 = 0xCC;
const REGISTRY: u128 = 0x4E6;
const CUSTOMER: u128 = 0xC1;
const ORDER: u128 = 0x0A;
/// Nobody: no registration, no order, no event names it.
const STRANGER: u128 = 0x5757;

/// What an admin command answers.
type Reply = Result<tonic::Response<pb::AdminReply>, Status>;

fn admin(server: &QueryServer) -> AdminClient<Channel> {
    AdminClient::new(server.channel.clone())
}

async fn head(server: &QueryServer) -> u64 {
    MetaClient::new(server.channel.clone())
        .server_info(as_(OPS_TOKEN, ServerInfoRequest {}))
        .await
        .unwrap()
        .into_inner()
        .head_position
}

fn register(command: u128, worker: u128) -> pb::RegisterWorkerRequest {
    pb::RegisterWorkerRequest {
        command_id: id(command),
        worker_id: id(worker),
        company_id: id(COMPANY),
        identity_number: "110105198001010016".into(),
        skills: vec![],
        home: Some(pb::LatLon {
            lat: 27.95,
            lon: 116.36,
        }),
        registry_id: id(REGISTRY),
        reason: "onboarded".into(),
    }
}

/// Registers WORKER (of COMPANY); returns the registration's commit position.
async fn register_worker(server: &QueryServer) -> u64 {
    admin(server)
        .register_worker(as_(OPS_TOKEN, register(0x10, WORKER)))
        .await
        .unwrap()
        .into_inner()
        .commit_position
}

/// Posts ORDER for CUSTOMER; returns the commit position.
async fn post(server: &QueryServer) -> u64 {
    CustomerAppClient::new(server.channel.clone())
        .post_order(as_(CUSTOMER_TOKEN, post_request(CUSTOMER, ORDER)))
        .await
        .unwrap()
        .into_inner()
        .commit_position
}

fn subject(kind: pb::CreditSubjectKind, n: u128) -> Option<pb::CreditSubject> {
    Some(pb::CreditSubject {
        kind: kind as i32,
        id: id(n),
    })
}

/// Asserts that `status` is NOT_FOUND naming `kind:id` in its message and its ResourceInfo.
fn assert_names(status: &Status, kind: &str, id: &str) {
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let named = format!("{kind}:{id}");
    assert!(
        status.message().contains(&named),
        "{named} not in {:?}",
        status.message()
    );
    let info = status
        .get_details_resource_info()
        .unwrap_or_else(|| panic!("no ResourceInfo in {status:?}"));
    assert_eq!(info.resource_type, kind, "{status:?}");
    assert!(info.resource_name.starts_with(id), "{info:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_commands_on_unknown_subjects_are_not_found_and_append_nothing() {
    use pb::CreditSubjectKind::{Company, Customer, Worker};
    let server = QueryServer::start().await;
    register_worker(&server).await;
    post(&server).await;
    // The reactor's reactions to the registration and the order are in before counting.
    admin(&server)
        .wait_settled(as_(
            OPS_TOKEN,
            pb::WaitSettledRequest { timeout_ms: 60_000 },
        ))
        .await
        .unwrap();
    let before = head(&server).await;
    let stranger = id(STRANGER);
    let mut a = admin(&server);
    let cid = |n: u128| id(0xF000 + n);

    let refusals: Vec<(&str, &str, Reply)> = vec![
        (
            "suspend",
            "worker",
            a.suspend_worker(as_(
                OPS_TOKEN,
                pb::SuspendWorkerRequest {
                    command_id: cid(1),
                    worker_id: stranger.clone(),
                    reason: "r".into(),
                },
            ))
            .await,
        ),
        (
            "reinstate",
            "worker",
            a.reinstate_worker(as_(
                OPS_TOKEN,
                pb::ReinstateWorkerRequest {
                    command_id: cid(2),
                    worker_id: stranger.clone(),
                    reason: "r".into(),
                },
            ))
            .await,
        ),
        (
            "black-list worker",
            "worker",
            a.black_list(as_(
                OPS_TOKEN,
                pb::BlackListRequest {
                    command_id: cid(3),
                    subject: subject(Worker, STRANGER),
                    reason: "r".into(),
                },
            ))
            .await,
        ),
        (
            "black-list customer",
            "customer",
            a.black_list(as_(
                OPS_TOKEN,
                pb::BlackListRequest {
                    command_id: cid(4),
                    subject: subject(Customer, STRANGER),
                    reason: "r".into(),
                },
            ))
            .await,
        ),
        (
            "adjust company",
            "company",
            a.adjust_credit(as_(
                OPS_TOKEN,
                pb::AdjustCreditRequest {
                    command_id: cid(5),
                    subject: subject(Company, STRANGER),
                    points: -5,
                    reason: "r".into(),
                },
            ))
            .await,
        ),
        (
            "training",
            "worker",
            a.record_training_completed(as_(
                OPS_TOKEN,
                pb::RecordTrainingCompletedRequest {
                    command_id: cid(6),
                    worker_id: stranger.clone(),
                    course: "hygiene".into(),
                    reason: "r".into(),
                },
            ))
            .await,
        ),
        (
            "repair",
            "customer",
            a.repair_credit(as_(
                OPS_TOKEN,
                pb::RepairCreditRequest {
                    command_id: cid(7),
                    subject: subject(Customer, STRANGER),
                    reason: "r".into(),
                },
            ))
            .await,
        ),
        (
            "appeal",
            "worker",
            a.decide_appeal(as_(
                OPS_TOKEN,
                pb::DecideAppealRequest {
                    command_id: cid(8),
                    subject: subject(Worker, STRANGER),
                    appeal_id: id(0xAA),
                    upheld: true,
                    note: "n".into(),
                    reason: "r".into(),
                },
            ))
            .await,
        ),
        (
            "cancel",
            "order",
            a.cancel_order(as_(
                OPS_TOKEN,
                pb::AdminCancelOrderRequest {
                    command_id: cid(9),
                    order_id: stranger.clone(),
                    reason: "r".into(),
                },
            ))
            .await,
        ),
        (
            "resolve dispute on an unknown order",
            "order",
            a.resolve_dispute(as_(
                OPS_TOKEN,
                pb::ResolveDisputeRequest {
                    command_id: cid(10),
                    order_id: stranger.clone(),
                    dispute_id: id(0xD1),
                    fault: pb::DisputeFault::Nobody as i32,
                    note: "n".into(),
                    reason: "r".into(),
                    ..Default::default()
                },
            ))
            .await,
        ),
        (
            "resolve complaint on an unknown order",
            "order",
            a.resolve_complaint(as_(
                OPS_TOKEN,
                pb::ResolveComplaintRequest {
                    command_id: cid(11),
                    order_id: stranger.clone(),
                    complaint_id: id(0xF1),
                    decision: pb::ComplaintDecision::Dismissed as i32,
                    reason: "r".into(),
                    ..Default::default()
                },
            ))
            .await,
        ),
        (
            "close follow-up",
            "followup",
            a.close_follow_up(as_(
                OPS_TOKEN,
                pb::CloseFollowUpRequest {
                    command_id: cid(12),
                    follow_up_id: stranger.clone(),
                    note: "n".into(),
                    reason: "r".into(),
                },
            ))
            .await,
        ),
        (
            "sign contract",
            "worker",
            a.sign_contract(as_(
                OPS_TOKEN,
                pb::SignContractRequest {
                    command_id: cid(13),
                    worker_id: stranger.clone(),
                    contract_number: "HT-1".into(),
                    injury_cover: true,
                    valid_from: Some(pb::Timestamp {
                        seconds: 1_700_000_000,
                        nanos: 0,
                    }),
                    valid_until: Some(pb::Timestamp {
                        seconds: 1_900_000_000,
                        nanos: 0,
                    }),
                    reason: "r".into(),
                },
            ))
            .await,
        ),
    ];
    for (what, kind, result) in refusals {
        let status = result.expect_err(what);
        assert_names(&status, kind, &stranger);
    }

    // Something unknown inside a known order is named too.
    let status = a
        .resolve_complaint(as_(
            OPS_TOKEN,
            pb::ResolveComplaintRequest {
                command_id: cid(14),
                order_id: id(ORDER),
                complaint_id: id(0xF1),
                decision: pb::ComplaintDecision::Dismissed as i32,
                reason: "r".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_names(&status, "complaint", &id(0xF1));
    let status = a
        .revoke_certificate(as_(
            OPS_TOKEN,
            pb::RevokeCertificateRequest {
                command_id: cid(15),
                worker_id: id(WORKER),
                certificate_id: id(0xCE),
                reason: "r".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_names(&status, "certificate", &id(0xCE));

    assert_eq!(head(&server).await, before, "a refused command appended");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_commands_on_known_subjects_still_apply() {
    use pb::CreditSubjectKind::{Company, Customer};
    let server = QueryServer::start().await;
    register_worker(&server).await;
    post(&server).await;
    let mut a = admin(&server);
    let suspended = a
        .suspend_worker(as_(
            OPS_TOKEN,
            pb::SuspendWorkerRequest {
                command_id: id(0xF101),
                worker_id: id(WORKER),
                reason: "r".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(suspended.event_types, ["SubjectSuspended"]);
    // The company of a registered worker, the customer of a posted order.
    let adjusted = a
        .adjust_credit(as_(
            OPS_TOKEN,
            pb::AdjustCreditRequest {
                command_id: id(0xF102),
                subject: subject(Company, COMPANY),
                points: -100,
                reason: "r".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(adjusted.event_types[0], "CreditAdjusted");
    let listed = a
        .black_list(as_(
            OPS_TOKEN,
            pb::BlackListRequest {
                command_id: id(0xF103),
                subject: subject(Customer, CUSTOMER),
                reason: "r".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.event_types, ["BlackListed"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newly_registered_worker_has_a_profile_credit_and_schedule_at_the_registration() {
    let server = QueryServer::start().await;
    let registered = register_worker(&server).await;
    let mut queries = server.queries();
    let profile = queries
        .get_worker_profile(as_(
            OPS_TOKEN,
            pb::GetWorkerProfileRequest {
                worker_id: id(WORKER),
                min_position: registered,
                ..Default::default()
            },
        ))
        .await
        .expect("the profile of a registered worker")
        .into_inner();
    assert_eq!(profile.company_id, id(COMPANY));
    assert!(profile.schedule.is_empty());
    assert!(profile.position >= registered);
    let credit = queries
        .get_credit(as_(
            OPS_TOKEN,
            pb::GetCreditRequest {
                subject: subject(pb::CreditSubjectKind::Worker, WORKER),
                min_position: registered,
                ..Default::default()
            },
        ))
        .await
        .expect("the credit of a registered worker")
        .into_inner();
    assert_eq!(credit.standing, pb::CreditStanding::Good as i32);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_and_credit_of_unknown_ids_are_not_found() {
    use pb::CreditSubjectKind::{Company, Customer, Worker};
    let server = QueryServer::start().await;
    let position = register_worker(&server).await;
    let mut queries = server.queries();
    let status = queries
        .get_worker_profile(as_(
            OPS_TOKEN,
            pb::GetWorkerProfileRequest {
                worker_id: id(STRANGER),
                min_position: position,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_names(&status, "worker", &id(STRANGER));
    for (kind, name) in [
        (Worker, "worker"),
        (Company, "company"),
        (Customer, "customer"),
    ] {
        let status = queries
            .get_credit(as_(
                OPS_TOKEN,
                pb::GetCreditRequest {
                    subject: subject(kind, STRANGER),
                    min_position: position,
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_names(&status, name, &id(STRANGER));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_position_is_a_valid_min_position_and_answers_at_once() {
    let server = QueryServer::start().await;
    post(&server).await;
    register_worker(&server).await;
    let head = head(&server).await;
    let orders = server
        .queries()
        .list_customer_orders(as_(
            CUSTOMER_TOKEN,
            pb::ListCustomerOrdersRequest {
                customer_id: id(CUSTOMER),
                min_position: head,
                ..Default::default()
            },
        ))
        .await
        .expect("head_position is reached")
        .into_inner();
    assert_eq!(orders.orders.len(), 1);
    let order = CustomerAppClient::new(server.channel.clone())
        .get_order(as_(
            CUSTOMER_TOKEN,
            pb::GetOrderRequest {
                order_id: id(ORDER),
                min_position: head,
            },
        ))
        .await
        .expect("head_position is reached")
        .into_inner();
    assert_eq!(order.order_id, id(ORDER));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_min_position_beyond_the_head_is_failed_precondition_with_the_head() {
    let server = QueryServer::start().await;
    post(&server).await;
    let head = head(&server).await;
    let err = server
        .queries()
        .list_customer_orders(as_(
            CUSTOMER_TOKEN,
            pb::ListCustomerOrdersRequest {
                customer_id: id(CUSTOMER),
                min_position: head + 1,
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let info = err.get_details_error_info().unwrap();
    assert_eq!(info.reason, "POSITION_BEYOND_HEAD");
    assert_eq!(info.metadata["head"], head.to_string());
    assert!(
        err.message().contains(&head.to_string()),
        "{}",
        err.message()
    );
    let err = CustomerAppClient::new(server.channel.clone())
        .get_order(as_(
            CUSTOMER_TOKEN,
            pb::GetOrderRequest {
                order_id: id(ORDER),
                min_position: head + 1_000_000,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    server.stop().await;
}
