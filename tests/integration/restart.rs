//! A restart rebuilds every query from the log: a realistic state is built through the real
//! server (dispatcher and reactor running, manual clock), every query answer is captured, the
//! server stops, its read-model directory (`<data-dir>/projections`) is deleted so that the
//! read models must replay from position 0, and after the restart every answer read at the
//! captured position is the same. A second restart, with the checkpoint the first one left,
//! answers the same again and says it restored from it.

use daojia_domain::Timestamp;
use daojia_server::Clock;
use daojia_server::pb;
use daojia_server::pb::meta_client::MetaClient;

use crate::lifecycle::{
    CUSTOMER_TOKEN, DAY_MS, FAR, HOUR_MS, MINUTE_MS, NEAR, NOW, OPS_TOKEN, Platform, WORKER_TOKEN,
    as_, at, home, id, next_of, seed,
};
use crate::store::tempdir;

const CUSTOMER: u128 = 0xC0;

/// Queries the restart test compares, beyond the shared platform's helpers.
impl Platform {
    async fn info(&self) -> pb::ServerInfoResponse {
        MetaClient::new(self.channel.clone())
            .server_info(as_(OPS_TOKEN, pb::ServerInfoRequest {}))
            .await
            .unwrap()
            .into_inner()
    }

    /// The position of the last event once the reactor and the dispatcher are done with it.
    async fn settled(&self) -> u64 {
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

    /// Every query answer, read at `min_position`.
    async fn answers(&self, min_position: u64) -> Answers {
        let q = self.queries();
        let list_open = || {
            as_(
                OPS_TOKEN,
                pb::ListOpenRequest {
                    min_position,
                    page_size: 500,
                    page_token: String::new(),
                },
            )
        };
        let customer_orders = q
            .clone()
            .list_customer_orders(as_(
                OPS_TOKEN,
                pb::ListCustomerOrdersRequest {
                    customer_id: id(CUSTOMER),
                    min_position,
                    page_size: 500,
                    page_token: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let mut worker_orders = Vec::new();
        let mut profiles = Vec::new();
        for worker in [NEAR, FAR] {
            worker_orders.push(
                q.clone()
                    .list_worker_orders(as_(
                        OPS_TOKEN,
                        pb::ListWorkerOrdersRequest {
                            worker_id: worker.to_string(),
                            min_position,
                            page_size: 500,
                            page_token: String::new(),
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner(),
            );
            profiles.push(
                q.clone()
                    .get_worker_profile(as_(
                        OPS_TOKEN,
                        pb::GetWorkerProfileRequest {
                            worker_id: worker.to_string(),
                            min_position,
                            schedule_from: None,
                            schedule_to: None,
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner(),
            );
        }
        let mut credit = Vec::new();
        for (kind, who) in [
            (pb::CreditSubjectKind::Worker, NEAR.to_string()),
            (pb::CreditSubjectKind::Worker, FAR.to_string()),
            (pb::CreditSubjectKind::Customer, id(CUSTOMER)),
        ] {
            credit.push(
                q.clone()
                    .get_credit(as_(
                        OPS_TOKEN,
                        pb::GetCreditRequest {
                            subject: Some(pb::CreditSubject {
                                kind: kind as i32,
                                id: who,
                            }),
                            min_position,
                            page_size: 500,
                            page_token: String::new(),
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner(),
            );
        }
        let mut red_black = Vec::new();
        for list in [pb::RedBlackList::Red, pb::RedBlackList::Black] {
            red_black.push(
                q.clone()
                    .list_red_black(as_(
                        OPS_TOKEN,
                        pb::ListRedBlackRequest {
                            list: list as i32,
                            kind: pb::CreditSubjectKind::Unspecified as i32,
                            min_position,
                            page_size: 500,
                            page_token: String::new(),
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner(),
            );
        }
        let follow_ups = q
            .clone()
            .list_open_follow_ups(list_open())
            .await
            .unwrap()
            .into_inner();
        let complaints = q
            .clone()
            .list_open_complaints(list_open())
            .await
            .unwrap()
            .into_inner();
        let disputes = q
            .clone()
            .list_open_disputes(list_open())
            .await
            .unwrap()
            .into_inner();
        let mut kpis = Vec::new();
        for breakdown in [
            pb::KpiBreakdown::Unspecified,
            pb::KpiBreakdown::Total,
            pb::KpiBreakdown::Day,
            pb::KpiBreakdown::Category,
            pb::KpiBreakdown::County,
            pb::KpiBreakdown::Company,
        ] {
            kpis.push(
                q.clone()
                    .get_kpis(as_(
                        OPS_TOKEN,
                        pb::GetKpisRequest {
                            breakdown: breakdown as i32,
                            min_position,
                            page_size: 500,
                            page_token: String::new(),
                        },
                    ))
                    .await
                    .unwrap()
                    .into_inner(),
            );
        }
        Answers {
            customer_orders,
            worker_orders,
            profiles,
            credit,
            red_black,
            follow_ups,
            complaints,
            disputes,
            kpis,
        }
    }
}

/// Every query's answer.
#[derive(Debug, PartialEq)]
struct Answers {
    customer_orders: pb::ListOrdersReply,
    worker_orders: Vec<pb::ListOrdersReply>,
    profiles: Vec<pb::WorkerProfileReply>,
    credit: Vec<pb::CreditReply>,
    red_black: Vec<pb::ListRedBlackReply>,
    follow_ups: pb::ListOpenFollowUpsReply,
    complaints: pb::ListOpenComplaintsReply,
    disputes: pb::ListOpenDisputesReply,
    kpis: Vec<pb::GetKpisReply>,
}

/// Builds the state: an order offered by the dispatcher to NEAR, accepted, checked in 20
/// minutes late, completed, reviewed poorly, complained about and disputed; a second order
/// offered and still open; the customer black-listed by ops.
async fn build_state(platform: &Platform) {
    let mut near = platform.watch(NEAR).await;
    let tomorrow = NOW.0 + DAY_MS;
    let post = |command: u128, order: u128, start: i64| pb::PostOrderRequest {
        command_id: id(command),
        order_id: id(order),
        customer_id: id(CUSTOMER),
        service_code: "C01".into(),
        quantity: 3,
        workers: 1,
        window_start: at(start),
        window_end: at(start + 3 * HOUR_MS),
        location: Some(pb::LatLon {
            lat: home().lat,
            lon: home().lon,
        }),
        dispatch: None,
    };
    platform
        .customer()
        .post_order(as_(CUSTOMER_TOKEN, post(1, 0xA1, tomorrow)))
        .await
        .unwrap();
    let offer = next_of(&mut near, "OrderOffered").await;
    assert_eq!(offer.order_id, id(0xA1));
    let mut worker = platform.worker();
    worker
        .accept_offer(as_(
            WORKER_TOKEN,
            pb::AcceptOfferRequest {
                command_id: id(2),
                order_id: id(0xA1),
                worker_id: NEAR.to_string(),
                slot: 0,
            },
        ))
        .await
        .unwrap();
    platform.clock.set(Timestamp(tomorrow + 20 * MINUTE_MS));
    let checked_in = worker
        .check_in(as_(
            WORKER_TOKEN,
            pb::CheckInRequest {
                command_id: id(3),
                order_id: id(0xA1),
                worker_id: NEAR.to_string(),
                slot: 0,
                location: Some(pb::LatLon {
                    lat: home().lat,
                    lon: home().lon,
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked_in.event_types, ["WorkerCheckedIn"]);
    platform.clock.set(Timestamp(tomorrow + 3 * HOUR_MS));
    worker
        .complete_service(as_(
            WORKER_TOKEN,
            pb::CompleteServiceRequest {
                command_id: id(4),
                order_id: id(0xA1),
                worker_id: NEAR.to_string(),
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
    let mut customer = platform.customer();
    customer
        .review_order(as_(
            CUSTOMER_TOKEN,
            pb::ReviewOrderRequest {
                command_id: id(5),
                order_id: id(0xA1),
                customer_id: id(CUSTOMER),
                stars: 2,
                tags: vec![pb::ReviewTag::Late as i32],
                text: "twenty minutes late".into(),
            },
        ))
        .await
        .unwrap();
    customer
        .file_complaint(as_(
            CUSTOMER_TOKEN,
            pb::FileComplaintRequest {
                command_id: id(6),
                order_id: id(0xA1),
                complaint_id: id(0xF1),
                customer_id: id(CUSTOMER),
                worker_id: NEAR.to_string(),
                category: pb::ComplaintCategory::Quality as i32,
                text: "the windows are streaked".into(),
            },
        ))
        .await
        .unwrap();
    customer
        .raise_dispute(as_(
            CUSTOMER_TOKEN,
            pb::RaiseDisputeRequest {
                command_id: id(7),
                order_id: id(0xA1),
                dispute_id: id(0xD1),
                customer_id: id(CUSTOMER),
                reason: "charged for three hours, got two and a half".into(),
            },
        ))
        .await
        .unwrap();
    // A second order, offered by the dispatcher and left open.
    customer
        .post_order(as_(CUSTOMER_TOKEN, post(8, 0xA2, tomorrow + DAY_MS)))
        .await
        .unwrap();
    platform
        .admin()
        .black_list(as_(
            OPS_TOKEN,
            pb::BlackListRequest {
                command_id: id(9),
                subject: Some(pb::CreditSubject {
                    kind: pb::CreditSubjectKind::Customer as i32,
                    id: id(CUSTOMER),
                }),
                reason: "abusive to workers".into(),
            },
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_without_the_read_models_rebuilds_every_query_from_the_log() {
    let dir = tempdir();
    seed(&dir).await;
    let platform = Platform::start_in(dir, Clock::manual(NOW)).await;
    build_state(&platform).await;
    let position = platform.settled().await;
    let before = platform.answers(position).await;
    // The state is what the scenario built, so the comparisons below are not of empty lists.
    assert_eq!(before.customer_orders.orders.len(), 2, "{before:#?}");
    assert_eq!(before.worker_orders[0].orders.len(), 1, "{before:#?}");
    assert_eq!(before.complaints.complaints.len(), 1, "{before:#?}");
    assert_eq!(before.disputes.disputes.len(), 1, "{before:#?}");
    assert_eq!(before.red_black[1].subjects.len(), 1, "{before:#?}");
    assert!(!before.follow_ups.follow_ups.is_empty(), "{before:#?}");
    assert!(
        before.credit[0]
            .history
            .iter()
            .any(|h| h.rule == "worker.late_check_in"),
        "{before:#?}"
    );
    assert_eq!(
        before.kpis[1].rows[0]
            .counts
            .as_ref()
            .unwrap()
            .late_check_ins,
        1,
        "{before:#?}"
    );
    let head = platform.info().await.head_position;
    let clock = platform.clock.clone();
    let dir = platform.stop().await;

    // Without the read models' directory, they replay the whole log.
    let projections = crate::harness::local_dir(&dir.path().join("data")).join("projections");
    assert!(projections.is_dir(), "{projections:?}");
    std::fs::remove_dir_all(&projections).unwrap();
    let platform = Platform::start_in(dir, clock).await;
    let after = platform.answers(position).await;
    assert_eq!(after, before);
    let info = platform.info().await;
    let read_models = info.read_models.unwrap();
    assert_eq!(read_models.restored_from, None, "{read_models:?}");
    assert_eq!(info.head_position, head, "the restart appended something");
    let clock = platform.clock.clone();
    let dir = platform.stop().await;

    // With the checkpoint the last run left, they restore from it and answer the same.
    assert!(
        projections.is_dir(),
        "no checkpoint was written: {projections:?}"
    );
    let platform = Platform::start_in(dir, clock).await;
    let again = platform.answers(position).await;
    assert_eq!(again, before);
    let info = platform.info().await;
    let read_models = info.read_models.unwrap();
    assert!(read_models.restored_from.is_some(), "{read_models:?}");
    assert_eq!(info.head_position, head, "the restart appended something");
    platform.stop().await;
}
