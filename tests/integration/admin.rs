//! The ops admin service (`daojia.v1.Admin`) through a real tonic client against the server on
//! 127.0.0.1:0: a suspension seen through `Queries.GetCredit` with the commit position, a
//! retried command appending nothing, roles, and a missing reason as a field violation.

use daojia_server::admin_cli::CliError;
use daojia_server::pb::admin_client::AdminClient;
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::pb::{self};

use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::queries::{CUSTOMER_TOKEN, OPS_TOKEN, QueryServer, as_, id, post_request};

fn admin(server: &QueryServer) -> AdminClient<Channel> {
    AdminClient::new(server.channel.clone())
}

fn suspend(command: u128, worker: u128, reason: &str) -> pb::SuspendWorkerRequest {
    pb::SuspendWorkerRequest {
        command_id: id(command),
        worker_id: id(worker),
        reason: reason.into(),
    }
}

/// Registers `worker` (ops commands act on registered workers only); returns the commit
/// position.
async fn register(server: &QueryServer, worker: u128) -> u64 {
    admin(server)
        .register_worker(as_(
            OPS_TOKEN,
            pb::RegisterWorkerRequest {
                command_id: id(0x7000 + worker),
                worker_id: id(worker),
                company_id: id(0xCC),
                identity_number: "110105198001010016".into(),
                skills: vec![],
                home: Some(pb::LatLon {
                    lat: 27.95,
                    lon: 116.36,
                }),
                registry_id: id(0x4E6),
                reason: "onboarded".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .commit_position
}

async fn credit(server: &QueryServer, worker: u128, min_position: u64) -> pb::CreditReply {
    server
        .queries()
        .get_credit(as_(
            OPS_TOKEN,
            pb::GetCreditRequest {
                subject: Some(pb::CreditSubject {
                    kind: pb::CreditSubjectKind::Worker as i32,
                    id: id(worker),
                }),
                min_position,
                page_size: 0,
                page_token: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_shows_in_the_credit_standing_and_a_retry_appends_nothing() {
    let server = QueryServer::start().await;
    register(&server, 0x51).await;
    let first = admin(&server)
        .suspend_worker(as_(OPS_TOKEN, suspend(0xA1, 0x51, "fraud reported")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.event_types, ["SubjectSuspended"]);
    assert!(!first.replayed);

    let reply = credit(&server, 0x51, first.commit_position).await;
    assert_eq!(reply.standing, pb::CreditStanding::Suspended as i32);
    assert_eq!(reply.history.len(), 1);

    // The same command id again: the first result, nothing appended.
    let retry = admin(&server)
        .suspend_worker(as_(OPS_TOKEN, suspend(0xA1, 0x51, "fraud reported")))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed);
    assert_eq!(retry.commit_position, first.commit_position);
    assert_eq!(retry.event_types, first.event_types);

    // A new command id is a new command: suspending a suspended worker is refused.
    let status = admin(&server)
        .suspend_worker(as_(OPS_TOKEN, suspend(0xA2, 0x51, "again")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    // Reinstated: good standing again, two history entries in all.
    let back = admin(&server)
        .reinstate_worker(as_(
            OPS_TOKEN,
            pb::ReinstateWorkerRequest {
                command_id: id(0xA3),
                worker_id: id(0x51),
                reason: "cleared by investigation".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let reply = credit(&server, 0x51, back.commit_position).await;
    assert_eq!(reply.standing, pb::CreditStanding::Good as i32);
    assert_eq!(reply.history.len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_adjustment_changes_the_score_once() {
    let server = QueryServer::start().await;
    register(&server, 0x52).await;
    let request = pb::AdjustCreditRequest {
        command_id: id(0xB1),
        subject: Some(pb::CreditSubject {
            kind: pb::CreditSubjectKind::Worker as i32,
            id: id(0x52),
        }),
        points: -5,
        reason: "rude to a customer on the phone".into(),
    };
    let done = admin(&server)
        .adjust_credit(as_(OPS_TOKEN, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.event_types, ["CreditAdjusted"]);
    let retry = admin(&server)
        .adjust_credit(as_(OPS_TOKEN, request))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed);
    let reply = credit(&server, 0x52, done.commit_position).await;
    assert_eq!(reply.history.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_without_the_ops_role_are_permission_denied() {
    let server = QueryServer::start().await;
    let registered = register(&server, 0x53).await;
    let status = admin(&server)
        .suspend_worker(as_(CUSTOMER_TOKEN, suspend(0xC1, 0x53, "no")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let reply = credit(&server, 0x53, registered).await;
    assert!(reply.history.is_empty(), "nothing appended");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_reason_is_an_invalid_argument_naming_the_field() {
    let server = QueryServer::start().await;
    let status = admin(&server)
        .suspend_worker(as_(OPS_TOKEN, suspend(0xD1, 0x54, " ")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let fields: Vec<_> = status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("no BadRequest in {status:?}"))
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["reason"]);
    server.stop().await;
}

/// Runs `daojia admin` with `args` (after `admin`) against `server` as ops.
async fn cli(server: &QueryServer, args: &[&str]) -> Result<String, CliError> {
    crate::harness::admin_cli(server.addr, OPS_TOKEN, args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_suspends_prints_a_table_and_answers_json() {
    let server = QueryServer::start().await;
    register(&server, 0x55).await;
    let worker = id(0x55);
    let table = cli(
        &server,
        &[
            "suspend-worker",
            "--worker",
            &worker,
            "--reason",
            "fraud reported",
            "--command-id",
            &id(0xE1),
        ],
    )
    .await
    .unwrap();
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap(),
        "commit position  revision  events            replayed"
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[1..], ["0", "SubjectSuspended", "false"]);
    let position = row[0];

    let json = cli(
        &server,
        &[
            "credit",
            "--worker",
            &worker,
            "--json",
            "--min-position",
            position,
        ],
    )
    .await
    .unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["standing"], "suspended");
    assert_eq!(value["history"][0]["event_type"], "SubjectSuspended");
    assert_eq!(value["subject"]["id"], worker.as_str());

    // Refused: the code, the message and the reason code are in the error.
    let err = cli(
        &server,
        &["suspend-worker", "--worker", &worker, "--reason", "again"],
    )
    .await
    .unwrap_err();
    let CliError::Refused { code, reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*code, Code::FailedPrecondition);
    assert!(reason.is_some(), "{err}");
    assert!(
        err.to_string().starts_with("refused: FailedPrecondition: "),
        "{err}"
    );
    server.stop().await;
}

fn error_reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"))
        .reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_black_listed_by_ops_cannot_post() {
    let server = QueryServer::start().await;
    // Ops black-list customers daojia knows: one who posted before.
    CustomerAppClient::new(server.channel.clone())
        .post_order(as_(CUSTOMER_TOKEN, post_request(0xC7, 0x76)))
        .await
        .unwrap();
    admin(&server)
        .black_list(as_(
            OPS_TOKEN,
            pb::BlackListRequest {
                command_id: id(0xF1),
                subject: Some(pb::CreditSubject {
                    kind: pb::CreditSubjectKind::Customer as i32,
                    id: id(0xC7),
                }),
                reason: "abuse reported by three workers".into(),
            },
        ))
        .await
        .unwrap();
    let status = CustomerAppClient::new(server.channel.clone())
        .post_order(as_(CUSTOMER_TOKEN, post_request(0xC7, 0x77)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(error_reason(&status), "CUSTOMER_BLACK_LISTED");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_training_and_follow_up_commands_carry_their_reason_codes() {
    let server = QueryServer::start().await;
    let registered = register(&server, 0x56).await;
    let status = admin(&server)
        .record_training_completed(as_(
            OPS_TOKEN,
            pb::RecordTrainingCompletedRequest {
                command_id: id(0xF2),
                worker_id: id(0x56),
                course: "hygiene-101".into(),
                reason: "certificate seen".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(error_reason(&status), "NOT_IN_RETRAINING");

    let status = admin(&server)
        .close_follow_up(as_(
            OPS_TOKEN,
            pb::CloseFollowUpRequest {
                command_id: id(0xF3),
                follow_up_id: id(0x57),
                note: "visited".into(),
                reason: "done".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(error_reason(&status), "FOLLOW_UP_NOT_FOUND");
    let reply = credit(&server, 0x56, registered).await;
    assert!(reply.history.is_empty(), "nothing appended");
    server.stop().await;
}
