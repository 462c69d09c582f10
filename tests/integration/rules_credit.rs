//! Credit as evidence, counted once (issue 12), through the real server with its dispatcher
//! and reactor: one late visit with undisinfected tools, reviewed 1 star with the tags `late`
//! and `tools_not_disinfected`, is one violation (retraining, not suspension); suspension and
//! reinstatement keep the training owed; training is recorded while suspended; a tag the
//! record contradicts deducts nothing and opens a follow-up for ops.

use daojia_domain::{Timestamp, WorkerId};
use daojia_server::pb;
use tonic::Streaming;

use crate::lifecycle::{
    CUSTOMER_TOKEN, DAY_MS, FAR, HOUR_MS, MINUTE_MS, NEAR, OPS_TOKEN, Platform, WORKER_TOKEN, as_,
    home, id, next_of,
};

/// Waits until the reactor and the dispatcher have handled every committed event.
async fn settle(platform: &Platform) -> u64 {
    platform
        .admin()
        .wait_settled(as_(
            OPS_TOKEN,
            pb::WaitSettledRequest { timeout_ms: 30_000 },
        ))
        .await
        .unwrap()
        .into_inner()
        .last_position
}

/// A visit by NEAR and its review.
struct Visit<'a> {
    /// Command ids `cmd..cmd+4`.
    cmd: u128,
    order: u128,
    /// Check-in, minutes after the window start.
    late_min: i64,
    disinfected: bool,
    stars: u32,
    tags: &'a [pb::ReviewTag],
}

/// NEAR takes the order, checks in, completes; the customer reviews. The review's position.
async fn visit(
    platform: &Platform,
    near: &mut Streaming<pb::WorkerNotification>,
    v: Visit<'_>,
) -> u64 {
    let Visit {
        cmd,
        order,
        late_min,
        disinfected,
        stars,
        tags,
    } = v;
    let start = platform.clock.now().0 + DAY_MS;
    platform.post(cmd, order).await;
    let offer = next_of(near, "OrderOffered").await;
    assert_eq!(offer.order_id, id(order));
    let mut worker = platform.worker();
    worker
        .accept_offer(as_(
            WORKER_TOKEN,
            pb::AcceptOfferRequest {
                command_id: id(cmd + 1),
                order_id: id(order),
                worker_id: NEAR.to_string(),
                slot: 0,
            },
        ))
        .await
        .unwrap();
    platform.clock.set(Timestamp(start + late_min * MINUTE_MS));
    worker
        .check_in(as_(
            WORKER_TOKEN,
            pb::CheckInRequest {
                command_id: id(cmd + 2),
                order_id: id(order),
                worker_id: NEAR.to_string(),
                slot: 0,
                location: Some(pb::LatLon {
                    lat: home().lat,
                    lon: home().lon,
                }),
            },
        ))
        .await
        .unwrap();
    platform.clock.set(Timestamp(start + 3 * HOUR_MS));
    worker
        .complete_service(as_(
            WORKER_TOKEN,
            pb::CompleteServiceRequest {
                command_id: id(cmd + 3),
                order_id: id(order),
                worker_id: NEAR.to_string(),
                slot: 0,
                checklist: Some(pb::Checklist {
                    tools_disinfected: disinfected,
                    area_tidied: true,
                    customer_confirmed: true,
                }),
            },
        ))
        .await
        .unwrap();
    platform
        .customer()
        .review_order(as_(
            CUSTOMER_TOKEN,
            pb::ReviewOrderRequest {
                command_id: id(cmd + 4),
                order_id: id(order),
                customer_id: id(0xC0),
                stars,
                tags: tags.iter().map(|t| *t as i32).collect(),
                text: "reviewed".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .commit_position
}

fn adjustments(credit: &pb::CreditReply) -> Vec<(String, i32)> {
    let mut found: Vec<(String, i32)> = credit
        .history
        .iter()
        .filter(|h| h.event_type == "CreditAdjusted")
        .map(|h| (h.rule.clone(), h.delta))
        .collect();
    found.sort();
    found
}

fn count(credit: &pb::CreditReply, event_type: &str) -> usize {
    credit
        .history
        .iter()
        .filter(|h| h.event_type == event_type)
        .count()
}

async fn ops_call(platform: &Platform, cmd: u128, what: &str, worker: WorkerId) -> u64 {
    let mut admin = platform.admin();
    let reply = match what {
        "suspend" => admin
            .suspend_worker(as_(
                OPS_TOKEN,
                pb::SuspendWorkerRequest {
                    command_id: id(cmd),
                    worker_id: worker.to_string(),
                    reason: "investigation of the visit".into(),
                },
            ))
            .await
            .unwrap(),
        "reinstate" => admin
            .reinstate_worker(as_(
                OPS_TOKEN,
                pb::ReinstateWorkerRequest {
                    command_id: id(cmd),
                    worker_id: worker.to_string(),
                    reason: "investigation closed".into(),
                },
            ))
            .await
            .unwrap(),
        _ => admin
            .record_training_completed(as_(
                OPS_TOKEN,
                pb::RecordTrainingCompletedRequest {
                    command_id: id(cmd),
                    worker_id: worker.to_string(),
                    course: "消毒规范".into(),
                    reason: "course passed".into(),
                },
            ))
            .await
            .unwrap(),
    };
    reply.into_inner().commit_position
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_late_undisinfected_visit_reviewed_with_both_tags_is_retraining_not_suspension() {
    let platform = Platform::start().await;
    let mut near = platform.watch(NEAR).await;
    let mut far = platform.watch(FAR).await;

    // Checked in 40 minutes late, tools not disinfected, reviewed 1 star `late` +
    // `tools_not_disinfected`.
    let reviewed = visit(
        &platform,
        &mut near,
        Visit {
            cmd: 1,
            order: 0xA1,
            late_min: 40,
            disinfected: false,
            stars: 1,
            tags: &[pb::ReviewTag::Late, pb::ReviewTag::ToolsNotDisinfected],
        },
    )
    .await;
    let settled = settle(&platform).await;
    assert!(settled >= reviewed);
    let credit = platform.credit(NEAR, settled).await;
    assert_eq!(
        credit.standing,
        pb::CreditStanding::InRetraining as i32,
        "{credit:#?}"
    );
    // Each fact once: lateness and tools from the visit, the rating from the review.
    assert_eq!(
        adjustments(&credit),
        [
            ("worker.late_check_in".to_owned(), -2),
            ("worker.poor_review".to_owned(), -2),
            ("worker.tools_not_disinfected".to_owned(), -5),
        ]
    );
    assert_eq!(credit.score, Some(100 - 2 - 5 - 2));
    assert_eq!(count(&credit, "WarningIssued"), 1, "{credit:#?}");
    assert_eq!(count(&credit, "RetrainingRequired"), 1, "{credit:#?}");
    assert_eq!(count(&credit, "SubjectSuspended"), 0, "{credit:#?}");

    // Ops suspends, then reinstates: the training is still owed, the worker stays out of
    // the pool and the next order goes to FAR.
    ops_call(&platform, 10, "suspend", NEAR).await;
    let reinstated = ops_call(&platform, 11, "reinstate", NEAR).await;
    let credit = platform.credit(NEAR, reinstated).await;
    assert_eq!(
        credit.standing,
        pb::CreditStanding::InRetraining as i32,
        "{credit:#?}"
    );
    platform.post(12, 0xA2).await;
    let offer = next_of(&mut far, "OrderOffered").await;
    assert_eq!(offer.order_id, id(0xA2));
    let order = platform.order(0xA2, offer.position).await;
    assert_eq!(order.slots[0].offered_to, [FAR.to_string()]);

    // Suspended again, the training owed is recorded all the same.
    ops_call(&platform, 13, "suspend", NEAR).await;
    let trained = ops_call(&platform, 14, "training", NEAR).await;
    let credit = platform.credit(NEAR, trained).await;
    assert_eq!(credit.standing, pb::CreditStanding::Suspended as i32);
    assert_eq!(count(&credit, "TrainingCompleted"), 1);
    // Reinstated with nothing owed: good standing, and offered the next order again.
    let reinstated = ops_call(&platform, 15, "reinstate", NEAR).await;
    let credit = platform.credit(NEAR, reinstated).await;
    assert_eq!(credit.standing, pb::CreditStanding::Good as i32);
    platform.post(16, 0xA3).await;
    let offer = next_of(&mut near, "OrderOffered").await;
    assert_eq!(offer.order_id, id(0xA3), "{offer:?}");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_tag_on_an_on_time_visit_deducts_nothing_and_is_kept_for_ops() {
    let platform = Platform::start().await;
    let mut near = platform.watch(NEAR).await;
    let reviewed = visit(
        &platform,
        &mut near,
        Visit {
            cmd: 1,
            order: 0xB1,
            late_min: 0,
            disinfected: true,
            stars: 3,
            tags: &[pb::ReviewTag::Late],
        },
    )
    .await;
    let settled = settle(&platform).await;
    assert!(settled >= reviewed);
    let credit = platform.credit(NEAR, settled).await;
    assert_eq!(credit.standing, pb::CreditStanding::Good as i32);
    assert!(adjustments(&credit).is_empty(), "{credit:#?}");
    assert_eq!(count(&credit, "WarningIssued"), 0);
    let (open, _) = platform.follow_ups_at(settled).await;
    let kept: Vec<_> = open
        .iter()
        .filter(|f| f.reason == pb::FollowUpReason::ReviewContradictsRecord as i32)
        .collect();
    assert_eq!(kept.len(), 1, "{open:#?}");
    let task = kept[0];
    assert_eq!(task.order_id, id(0xB1));
    assert_eq!(task.about.as_ref().unwrap().id, NEAR.to_string());
    assert_eq!(task.kind, pb::FollowUpKind::Talk as i32);
    let note = &task
        .notes
        .first()
        .expect("a note of the contradiction")
        .text;
    assert!(note.contains("`late`"), "{note}");
    assert!(
        note.contains("checked in 0 min after the window start"),
        "{note}"
    );
    platform.stop().await;
}
