//! The whole order lifecycle through the real server with its dispatcher and reactor running:
//! offers pushed on the workers' notification streams, accept, check-in, completion, review,
//! the credit rules the review triggers, mandatory retraining keeping the worker out of offers
//! until ops records the training, follow-ups for complaints and violations, offer expiry, and
//! a restart that answers every query the same. Workers are seeded through the domain before
//! the server starts; everything else goes through gRPC with a manual clock.

use clap::Parser;
use daojia_domain::order::GeoPoint;
use daojia_domain::{CompanyId, RegistryId, Timestamp, WorkerId};
use daojia_server::pb;
use daojia_server::pb::admin_client::AdminClient;
use daojia_server::pb::customer_app_client::CustomerAppClient;
use daojia_server::pb::meta_client::MetaClient;
use daojia_server::pb::queries_client::QueriesClient;
use daojia_server::pb::worker_app_client::WorkerAppClient;
use daojia_server::{Cli, Clock, Command, ServeError};
use daojia_store::{EmbeddedStore, EventStore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Streaming;
use tonic::transport::Channel;

use crate::seed::{NewWorker, Seeder};
use crate::store::{TempDir, tempdir};

pub(crate) const CUSTOMER_TOKEN: &str = "customer-token-0123456789";
pub(crate) const WORKER_TOKEN: &str = "worker-token-0123456789ab";
pub(crate) const OPS_TOKEN: &str = "ops-token-0123456789abcdef";
pub(crate) const ADMIN_TOKEN: &str = "admin-token-0123456789abcd";

pub(crate) const NOW: Timestamp = Timestamp(1_800_000_000_000);
pub(crate) const MINUTE_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 60 * MINUTE_MS;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;

/// Next to the customer.
pub(crate) const NEAR: WorkerId = WorkerId::from_u128(0xB1);
/// A few kilometres away.
pub(crate) const FAR: WorkerId = WorkerId::from_u128(0xB2);

/// The customer's home, in 临川区 (Fuzhou, Jiangxi).
pub(crate) fn home() -> GeoPoint {
    GeoPoint::new(27.95, 116.36).unwrap()
}

pub(crate) fn id(n: u128) -> String {
    WorkerId::from_u128(n).to_string()
}

pub(crate) fn at(ms: i64) -> Option<pb::Timestamp> {
    Some(pb::Timestamp {
        seconds: ms / 1_000,
        nanos: 0,
    })
}

pub(crate) use crate::harness::as_;

pub(crate) async fn seed(dir: &TempDir) {
    let store = EmbeddedStore::open(dir.path().join("data")).unwrap();
    let mut seeder = Seeder::new(
        store,
        CompanyId::from_u128(0xCC),
        RegistryId::from_u128(0x4E6),
        Timestamp(NOW.0 - 30 * DAY_MS),
    );
    for (worker, identity, home) in [
        (NEAR, "110105198001010016", home()),
        (
            FAR,
            "110105198001010024",
            GeoPoint::new(27.97, 116.39).unwrap(),
        ),
    ] {
        seeder
            .worker(NewWorker {
                id: worker,
                identity,
                home,
                contract: true,
                certified: true,
            })
            .await;
    }
}

pub(crate) struct Platform {
    pub(crate) channel: Channel,
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) clock: Clock,
    pub(crate) dir: Option<TempDir>,
    pub(crate) shutdown: oneshot::Sender<()>,
    pub(crate) task: JoinHandle<Result<(), ServeError>>,
}

impl Platform {
    pub(crate) async fn start() -> Platform {
        let dir = tempdir();
        seed(&dir).await;
        Platform::start_in(dir, Clock::manual(NOW)).await
    }

    pub(crate) async fn start_in(dir: TempDir, clock: Clock) -> Platform {
        let datadir = dir.path().join("data");
        let tokens = format!(
            "customer-app:{CUSTOMER_TOKEN},worker-app:{WORKER_TOKEN},ops:{OPS_TOKEN}:ops-desk,\
             admin:{ADMIN_TOKEN}:sim"
        );
        let started = crate::harness::Serve {
            datadir: &datadir,
            tokens: &tokens,
            clock: clock.clone(),
            dispatch: true,
            reactor: true,
            args: &[],
            service: "",
        }
        .start()
        .await;
        Platform {
            channel: started.channel,
            addr: started.addr,
            clock,
            dir: Some(dir),
            shutdown: started.shutdown,
            task: started.task,
        }
    }

    pub(crate) async fn stop(mut self) -> TempDir {
        let _ = self.shutdown.send(());
        self.task.await.unwrap().unwrap();
        self.dir.take().unwrap()
    }

    pub(crate) fn customer(&self) -> CustomerAppClient<Channel> {
        CustomerAppClient::new(self.channel.clone())
    }

    pub(crate) fn worker(&self) -> WorkerAppClient<Channel> {
        WorkerAppClient::new(self.channel.clone())
    }

    pub(crate) fn queries(&self) -> QueriesClient<Channel> {
        QueriesClient::new(self.channel.clone())
    }

    pub(crate) fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
    }

    /// `worker`'s notifications from now on.
    pub(crate) async fn watch(&self, worker: WorkerId) -> Streaming<pb::WorkerNotification> {
        self.worker()
            .watch_notifications(as_(
                WORKER_TOKEN,
                pb::WatchNotificationsRequest {
                    worker_id: worker.to_string(),
                    after_position: None,
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// Posts a one-worker C01 order for this time tomorrow at the customer's home.
    pub(crate) async fn post(&self, command: u128, order: u128) -> u64 {
        self.post_for(command, order, 1).await
    }

    /// Posts a C01 order for `workers` workers for this time tomorrow at the customer's home.
    pub(crate) async fn post_for(&self, command: u128, order: u128, workers: u32) -> u64 {
        self.post_with(command, order, workers, None).await
    }

    /// Posts a C01 order for `workers` workers, dispatched as `dispatch` says.
    pub(crate) async fn post_with(
        &self,
        command: u128,
        order: u128,
        workers: u32,
        dispatch: Option<pb::post_order_request::Dispatch>,
    ) -> u64 {
        let tomorrow = self.clock.now().0 + DAY_MS;
        self.customer()
            .post_order(as_(
                CUSTOMER_TOKEN,
                pb::PostOrderRequest {
                    command_id: id(command),
                    order_id: id(order),
                    customer_id: id(0xC0),
                    service_code: "C01".into(),
                    quantity: 3,
                    workers,
                    window_start: at(tomorrow),
                    window_end: at(tomorrow + 3 * HOUR_MS),
                    location: Some(pb::LatLon {
                        lat: home().lat,
                        lon: home().lon,
                    }),
                    dispatch,
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .commit_position
    }

    pub(crate) async fn order(&self, order: u128, min_position: u64) -> pb::Order {
        self.customer()
            .get_order(as_(
                CUSTOMER_TOKEN,
                pb::GetOrderRequest {
                    order_id: id(order),
                    min_position,
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    pub(crate) async fn credit(&self, worker: WorkerId, min_position: u64) -> pb::CreditReply {
        self.queries()
            .get_credit(as_(
                OPS_TOKEN,
                pb::GetCreditRequest {
                    subject: Some(pb::CreditSubject {
                        kind: pb::CreditSubjectKind::Worker as i32,
                        id: worker.to_string(),
                    }),
                    min_position,
                    page_size: 100,
                    page_token: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    /// The open follow-ups as of at least `min_position`, and the position they reflect.
    pub(crate) async fn follow_ups_at(&self, min_position: u64) -> (Vec<pb::FollowUp>, u64) {
        let reply = self
            .queries()
            .list_open_follow_ups(as_(
                OPS_TOKEN,
                pb::ListOpenRequest {
                    min_position,
                    page_size: 500,
                    page_token: String::new(),
                },
            ))
            .await
            .unwrap()
            .into_inner();
        (reply.follow_ups, reply.position)
    }

    pub(crate) async fn follow_ups(&self) -> Vec<pb::FollowUp> {
        self.follow_ups_at(0).await.0
    }

    /// The open follow-ups once `done` holds for them. The reactor appends follow-ups after
    /// the events that call for them, at positions nobody knows in advance: ask again (no
    /// timer) until they are there, within a generous bound.
    pub(crate) async fn follow_ups_until(
        &self,
        done: impl Fn(&[pb::FollowUp]) -> bool,
    ) -> Vec<pb::FollowUp> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let open = self.follow_ups().await;
            if done(&open) {
                return open;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "follow-ups never appeared: {open:#?}"
            );
            tokio::task::yield_now().await;
        }
    }
}

/// The next notification of `event_type`, skipping others.
pub(crate) async fn next_of(
    stream: &mut Streaming<pb::WorkerNotification>,
    event_type: &str,
) -> pb::WorkerNotification {
    loop {
        let n = stream
            .message()
            .await
            .unwrap()
            .expect("the notification stream ended");
        if n.event_type == event_type {
            return n;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undisinfected_tools_send_the_worker_to_retraining_and_out_of_offers() {
    let platform = Platform::start().await;
    let mut near = platform.watch(NEAR).await;
    let mut far = platform.watch(FAR).await;

    // Posted → offered to the nearest worker, pushed on their stream.
    platform.post(1, 0xA1).await;
    let offer = next_of(&mut near, "OrderOffered").await;
    assert_eq!(offer.order_id, id(0xA1));
    assert_eq!(offer.slot, 0);
    assert!(offer.offer_expires_at.is_some());

    // Accept, check in on time, complete with tools not disinfected.
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
    assert_eq!(next_of(&mut near, "OrderAccepted").await.order_id, id(0xA1));
    platform.clock.set(Timestamp(NOW.0 + DAY_MS));
    worker
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
        .unwrap();
    platform.clock.set(Timestamp(NOW.0 + DAY_MS + 3 * HOUR_MS));
    let completed = worker
        .complete_service(as_(
            WORKER_TOKEN,
            pb::CompleteServiceRequest {
                command_id: id(4),
                order_id: id(0xA1),
                worker_id: NEAR.to_string(),
                slot: 0,
                checklist: Some(pb::Checklist {
                    tools_disinfected: false,
                    area_tidied: true,
                    customer_confirmed: true,
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let retraining = next_of(&mut near, "RetrainingRequired").await;
    assert!(retraining.position > completed.commit_position);

    // The customer's review restates the undisinfected tools (counted once, from the
    // checklist) and claims lateness the check-in contradicts (deducted nothing, see
    // rules_credit.rs); the poor rating is the review's own fact.
    let reviewed = platform
        .customer()
        .review_order(as_(
            CUSTOMER_TOKEN,
            pb::ReviewOrderRequest {
                command_id: id(5),
                order_id: id(0xA1),
                customer_id: id(0xC0),
                stars: 2,
                tags: vec![
                    pb::ReviewTag::Late as i32,
                    pb::ReviewTag::ToolsNotDisinfected as i32,
                ],
                text: "late, and the mop was dirty".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let rating = next_of(&mut near, "CreditAdjusted").await;
    assert!(rating.position > reviewed.commit_position);
    assert_eq!(rating.credit_points, -2);

    // CreditAdjusted events name each rule, with its own evidence event.
    let credit = platform.credit(NEAR, rating.position).await;
    assert_eq!(
        credit.standing,
        pb::CreditStanding::InRetraining as i32,
        "{credit:#?}"
    );
    let mut rules: Vec<&str> = credit
        .history
        .iter()
        .filter(|h| h.event_type == "CreditAdjusted")
        .map(|h| h.rule.as_str())
        .collect();
    rules.sort_unstable();
    assert_eq!(
        rules,
        ["worker.poor_review", "worker.tools_not_disinfected"]
    );
    let evidence: Vec<&str> = credit
        .history
        .iter()
        .filter(|h| h.event_type == "CreditAdjusted")
        .map(|h| h.evidence_event_id.as_str())
        .collect();
    assert_eq!(evidence.len(), 2);
    assert_ne!(evidence[0], evidence[1]);
    assert_eq!(credit.score, Some(100 - 5 - 2));

    // Ops must talk to the worker about the violation (and visit both new workers).
    let open = platform
        .follow_ups_until(|open| {
            open.iter()
                .any(|f| f.reason == pb::FollowUpReason::Violation as i32)
        })
        .await;
    let violations: Vec<_> = open
        .iter()
        .filter(|f| f.reason == pb::FollowUpReason::Violation as i32)
        .collect();
    assert!(
        violations
            .iter()
            .all(|f| f.about.as_ref().unwrap().id == NEAR.to_string())
    );
    assert_eq!(
        open.iter()
            .filter(|f| f.reason == pb::FollowUpReason::NewWorker as i32)
            .count(),
        2
    );

    // While in retraining, the next order goes to the farther worker, not to NEAR.
    platform.post(6, 0xA2).await;
    let offer = next_of(&mut far, "OrderOffered").await;
    assert_eq!(offer.order_id, id(0xA2));
    let order = platform.order(0xA2, offer.position).await;
    assert_eq!(order.slots[0].offered_to, [FAR.to_string()]);

    // Ops records the training; NEAR is offered the next order again.
    platform
        .admin()
        .record_training_completed(as_(
            OPS_TOKEN,
            pb::RecordTrainingCompletedRequest {
                command_id: id(7),
                worker_id: NEAR.to_string(),
                course: "消毒规范".into(),
                reason: "course passed".into(),
            },
        ))
        .await
        .unwrap();
    next_of(&mut near, "TrainingCompleted").await;
    platform.post(8, 0xA3).await;
    let offer = next_of(&mut near, "OrderOffered").await;
    assert_eq!(offer.order_id, id(0xA3), "{offer:?}");

    // `daojia admin status` shows the reactor past the review's reactions and the read models.
    let Command::Admin(args) = Cli::try_parse_from([
        "daojia",
        "admin",
        "--server",
        &format!("http://{}", platform.addr),
        "--json",
        "status",
    ])
    .unwrap()
    .command
    else {
        panic!("not admin")
    };
    let mut out = Vec::new();
    daojia_server::admin_cli::run(args, Some(OPS_TOKEN.into()), &mut out)
        .await
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(status["role"], "ROLE_OPS");
    assert!(status["reactor_position"].as_u64().unwrap() >= retraining.position);
    assert!(status["read_models"]["applied_position"].as_u64().unwrap() >= retraining.position);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_offer_cascades_to_the_next_worker() {
    let platform = Platform::start().await;
    let mut near = platform.watch(NEAR).await;
    let mut far = platform.watch(FAR).await;
    platform.post(1, 0xA1).await;
    let offer = next_of(&mut near, "OrderOffered").await;
    let expires = offer.offer_expires_at.unwrap();
    // Nobody answers: once the clock passes the expiry, the dispatcher records the lapse and
    // offers the slot to the next worker.
    platform
        .clock
        .set(Timestamp(expires.seconds * 1_000 + MINUTE_MS));
    let lapsed = next_of(&mut near, "OfferExpired").await;
    assert_eq!(lapsed.order_id, id(0xA1));
    let next = next_of(&mut far, "OrderOffered").await;
    assert_eq!(next.order_id, id(0xA1));
    assert!(next.position > lapsed.position);
    let order = platform.order(0xA1, next.position).await;
    assert_eq!(order.slots[0].offered_to, [FAR.to_string()]);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_notification_stream_repeats_nothing_and_misses_nothing() {
    let platform = Platform::start().await;
    let mut near = platform.watch(NEAR).await;
    platform.post(1, 0xA1).await;
    let offer = next_of(&mut near, "OrderOffered").await;
    drop(near);
    platform
        .worker()
        .decline_offer(as_(
            WORKER_TOKEN,
            pb::DeclineOfferRequest {
                command_id: id(2),
                order_id: id(0xA1),
                worker_id: NEAR.to_string(),
                slot: 0,
            },
        ))
        .await
        .unwrap();
    // Reconnecting after the offer's position delivers the decline, not the offer again.
    let mut resumed = platform
        .worker()
        .watch_notifications(as_(
            WORKER_TOKEN,
            pb::WatchNotificationsRequest {
                worker_id: NEAR.to_string(),
                after_position: Some(offer.position),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let first = resumed.message().await.unwrap().unwrap();
    assert_eq!(first.event_type, "OfferDeclined");
    assert_eq!(first.order_id, id(0xA1));
    // A bad worker id is refused before streaming.
    let status = platform
        .worker()
        .watch_notifications(as_(
            WORKER_TOKEN,
            pb::WatchNotificationsRequest {
                worker_id: "not-a-uuid".into(),
                after_position: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    // Only the worker app (or admin) may watch.
    let status = platform
        .worker()
        .watch_notifications(as_(
            CUSTOMER_TOKEN,
            pb::WatchNotificationsRequest {
                worker_id: NEAR.to_string(),
                after_position: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_reactor_repeats_nothing_and_queries_answer_the_same() {
    let platform = Platform::start().await;
    let mut near = platform.watch(NEAR).await;
    platform.post(1, 0xA1).await;
    let offer = next_of(&mut near, "OrderOffered").await;
    platform.follow_ups_until(|open| open.len() == 2).await;
    let (open, seen) = platform.follow_ups_at(offer.position).await;
    assert_eq!(open.len(), 2);
    let credit = platform.credit(NEAR, seen).await;
    let clock = platform.clock.clone();
    let dir = platform.stop().await;

    let platform = Platform::start_in(dir, clock).await;
    assert_eq!(platform.follow_ups_at(seen).await.0, open);
    assert_eq!(platform.credit(NEAR, seen).await.history, credit.history);
    let order = platform.order(0xA1, offer.position).await;
    assert_eq!(order.slots[0].offered_to, [NEAR.to_string()]);
    // A new event the reactor must answer: once its follow-up is there, the reactor has gone
    // past every event before it, and none of them was reacted to twice.
    let mut near = platform.watch(NEAR).await;
    platform
        .worker()
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
    next_of(&mut near, "OrderAccepted").await;
    platform.clock.set(Timestamp(NOW.0 + DAY_MS + 3 * HOUR_MS));
    platform
        .worker()
        .raise_worker_dispute(as_(
            WORKER_TOKEN,
            pb::RaiseWorkerDisputeRequest {
                command_id: id(3),
                order_id: id(0xA1),
                dispute_id: id(0xD1),
                worker_id: NEAR.to_string(),
                reason: "the customer locked the door".into(),
            },
        ))
        .await
        .unwrap_err();
    platform
        .worker()
        .report_customer_no_show(as_(
            WORKER_TOKEN,
            pb::ReportCustomerNoShowRequest {
                command_id: id(4),
                order_id: id(0xA1),
                worker_id: NEAR.to_string(),
            },
        ))
        .await
        .unwrap();
    platform
        .worker()
        .raise_worker_dispute(as_(
            WORKER_TOKEN,
            pb::RaiseWorkerDisputeRequest {
                command_id: id(5),
                order_id: id(0xA1),
                dispute_id: id(0xD1),
                worker_id: NEAR.to_string(),
                reason: "the customer locked the door".into(),
            },
        ))
        .await
        .unwrap();
    // The dispute's visit and the no-show's talk come in either order: the reactor answers the
    // warning only after it appended it, possibly after the dispute was raised.
    let open = platform.follow_ups_until(|open| open.len() >= 4).await;
    let mut reasons: Vec<i32> = open.iter().map(|f| f.reason).collect();
    reasons.sort_unstable();
    let expected = [
        pb::FollowUpReason::NewWorker,
        pb::FollowUpReason::NewWorker,
        pb::FollowUpReason::Dispute,
        // The customer's no-show broke a rule: a warning, and a talk.
        pb::FollowUpReason::Violation,
    ];
    assert_eq!(reasons, expected.map(|r| r as i32), "{open:#?}");
    assert_eq!(platform.credit(NEAR, 0).await.history, credit.history);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_order_is_offered_to_distinct_workers_and_a_complaint_opens_a_talk() {
    let platform = Platform::start().await;
    let mut near = platform.watch(NEAR).await;
    let mut far = platform.watch(FAR).await;
    platform.post_for(1, 0xA1, 2).await;
    let to_near = next_of(&mut near, "OrderOffered").await;
    let to_far = next_of(&mut far, "OrderOffered").await;
    assert_eq!(to_near.order_id, id(0xA1));
    assert_eq!(to_far.order_id, id(0xA1));
    assert_ne!(to_near.slot, to_far.slot);
    for (command, worker, slot) in [(2, NEAR, to_near.slot), (3, FAR, to_far.slot)] {
        platform
            .worker()
            .accept_offer(as_(
                WORKER_TOKEN,
                pb::AcceptOfferRequest {
                    command_id: id(command),
                    order_id: id(0xA1),
                    worker_id: worker.to_string(),
                    slot,
                },
            ))
            .await
            .unwrap();
    }
    let order = platform
        .order(0xA1, next_of(&mut far, "OrderAccepted").await.position)
        .await;
    let mut held: Vec<&str> = order.slots.iter().map(|s| s.worker_id.as_str()).collect();
    held.sort_unstable();
    assert_eq!(held, [NEAR.to_string(), FAR.to_string()]);

    // Both serve; the customer complains about one of them: ops must talk to that worker.
    platform.clock.set(Timestamp(NOW.0 + DAY_MS));
    for (command, worker, slot) in [(4, NEAR, to_near.slot), (6, FAR, to_far.slot)] {
        let mut app = platform.worker();
        app.check_in(as_(
            WORKER_TOKEN,
            pb::CheckInRequest {
                command_id: id(command),
                order_id: id(0xA1),
                worker_id: worker.to_string(),
                slot,
                location: Some(pb::LatLon {
                    lat: home().lat,
                    lon: home().lon,
                }),
            },
        ))
        .await
        .unwrap();
        app.complete_service(as_(
            WORKER_TOKEN,
            pb::CompleteServiceRequest {
                command_id: id(command + 1),
                order_id: id(0xA1),
                worker_id: worker.to_string(),
                slot,
                checklist: Some(pb::Checklist {
                    tools_disinfected: true,
                    area_tidied: true,
                    customer_confirmed: true,
                }),
            },
        ))
        .await
        .unwrap();
    }
    platform
        .customer()
        .file_complaint(as_(
            CUSTOMER_TOKEN,
            pb::FileComplaintRequest {
                command_id: id(8),
                order_id: id(0xA1),
                complaint_id: id(0xC1),
                customer_id: id(0xC0),
                worker_id: FAR.to_string(),
                category: pb::ComplaintCategory::Conduct as i32,
                text: "rude to grandmother".into(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(next_of(&mut far, "ComplaintFiled").await.order_id, id(0xA1));
    let open = platform
        .follow_ups_until(|open| {
            open.iter()
                .any(|f| f.reason == pb::FollowUpReason::Complaint as i32)
        })
        .await;
    let talk = open
        .iter()
        .find(|f| f.reason == pb::FollowUpReason::Complaint as i32)
        .unwrap();
    assert_eq!(talk.kind, pb::FollowUpKind::Talk as i32);
    assert_eq!(talk.about.as_ref().unwrap().id, FAR.to_string());
    assert_eq!(talk.order_id, id(0xA1));
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_household_verifies_the_certificate_at_the_door_and_a_worker_appeals_a_deduction() {
    let platform = Platform::start().await;
    let mut near = platform.watch(NEAR).await;
    let mut customer = platform.customer();
    let verify = |worker: String, certificate: String| {
        as_(
            CUSTOMER_TOKEN,
            pb::VerifyCertificateRequest {
                worker_id: worker,
                certificate_id: certificate,
            },
        )
    };
    // The seeded home-visit certificate has the worker's own id as its number.
    let found = customer
        .verify_certificate(verify(NEAR.to_string(), String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.worker_id, NEAR.to_string());
    assert_eq!(found.kind, "home_visit");
    assert_eq!(found.status, pb::CertificateStatus::Valid as i32);
    // FAR's certificate shown by NEAR is refused; so are an unknown worker and a bad id.
    let status = customer
        .verify_certificate(verify(NEAR.to_string(), FAR.to_string()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    let status = customer
        .verify_certificate(verify(id(0xEE), String::new()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    let status = customer
        .verify_certificate(verify("nope".into(), String::new()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");

    // A worker no-show costs NEAR credit; NEAR appeals and ops upholds the appeal.
    platform.post(1, 0xA1).await;
    next_of(&mut near, "OrderOffered").await;
    platform
        .worker()
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
    platform.clock.set(Timestamp(NOW.0 + DAY_MS + HOUR_MS));
    customer
        .report_worker_no_show(as_(
            CUSTOMER_TOKEN,
            pb::ReportWorkerNoShowRequest {
                command_id: id(3),
                order_id: id(0xA1),
                slot: 0,
            },
        ))
        .await
        .unwrap();
    let deducted = next_of(&mut near, "CreditAdjusted").await;
    assert_eq!(deducted.credit_points, -10);
    let warned = next_of(&mut near, "WarningIssued").await;
    let credit = platform.credit(NEAR, warned.position).await;
    let evidence = credit.history[0].evidence_event_id.clone();
    let appeal = |command: u128, text: &str| {
        as_(
            WORKER_TOKEN,
            pb::WorkerAppealRequest {
                command_id: id(command),
                worker_id: NEAR.to_string(),
                appeal_id: id(0xAA),
                evidence_event_id: evidence.clone(),
                text: text.into(),
            },
        )
    };
    let status = platform
        .worker()
        .appeal_credit(appeal(4, ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let filed = platform
        .worker()
        .appeal_credit(appeal(5, "the customer gave the wrong address"))
        .await
        .unwrap()
        .into_inner();
    assert!(!filed.replayed);
    let again = platform
        .worker()
        .appeal_credit(appeal(5, "the customer gave the wrong address"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.replayed);
    assert_eq!(again.commit_position, filed.commit_position);
    let decided = platform
        .admin()
        .decide_appeal(as_(
            OPS_TOKEN,
            pb::DecideAppealRequest {
                command_id: id(6),
                subject: Some(pb::CreditSubject {
                    kind: pb::CreditSubjectKind::Worker as i32,
                    id: NEAR.to_string(),
                }),
                appeal_id: id(0xAA),
                upheld: true,
                note: "address mix-up confirmed by call".into(),
                reason: "appeal review".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let credit = platform.credit(NEAR, decided.commit_position).await;
    assert_eq!(credit.score, Some(100), "{credit:#?}");
    assert_eq!(
        credit.standing,
        pb::CreditStanding::Good as i32,
        "{credit:#?}"
    );
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_clock_moves_forward_only_and_wait_settled_sees_the_offer_made() {
    let platform = Platform::start().await;
    let mut admin = platform.admin();
    let set = |token: &str, ms: i64| as_(token, pb::SetClockRequest { now: at(ms) });
    let status = admin.set_clock(set(OPS_TOKEN, NOW.0)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    let status = admin
        .set_clock(set(ADMIN_TOKEN, NOW.0 - MINUTE_MS))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let moved = admin
        .set_clock(set(ADMIN_TOKEN, NOW.0 + MINUTE_MS))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.now, at(NOW.0 + MINUTE_MS));
    assert_eq!(platform.clock.now(), Timestamp(NOW.0 + MINUTE_MS));

    // FAR reports a location at the customer's door and NEAR one 5 km away: FAR is offered
    // first, though NEAR lives at that door. Once settled, the offer is in the log without waiting on any stream.
    let mut worker = platform.worker();
    let mut reported = None;
    for (who, lat) in [(FAR, home().lat), (NEAR, home().lat + 0.05)] {
        reported = Some(
            worker
                .update_location(as_(
                    WORKER_TOKEN,
                    pb::UpdateLocationRequest {
                        worker_id: who.to_string(),
                        location: Some(pb::LatLon {
                            lat,
                            lon: home().lon,
                        }),
                    },
                ))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    let reported = reported.unwrap();
    assert!(reported.valid_until.unwrap().seconds > (NOW.0 + MINUTE_MS) / 1_000);
    platform.post(1, 0xA1).await;
    let settled = admin
        .wait_settled(as_(
            OPS_TOKEN,
            pb::WaitSettledRequest { timeout_ms: 30_000 },
        ))
        .await
        .unwrap()
        .into_inner();
    let order = platform.order(0xA1, settled.last_position).await;
    assert_eq!(order.slots[0].offered_to, [FAR.to_string()]);

    // Bad reports are refused: out of range, unregistered, wrong role.
    let report = |token: &str, worker: String, lat: f64| {
        as_(
            token,
            pb::UpdateLocationRequest {
                worker_id: worker,
                location: Some(pb::LatLon { lat, lon: 116.36 }),
            },
        )
    };
    let status = worker
        .update_location(report(WORKER_TOKEN, FAR.to_string(), 91.0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let status = worker
        .update_location(report(WORKER_TOKEN, id(0xEE), 26.0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    let status = worker
        .update_location(report(CUSTOMER_TOKEN, FAR.to_string(), 26.0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_favourite_goes_first_and_an_unavailable_one_is_passed_over() {
    let platform = Platform::start().await;
    let mut near = platform.watch(NEAR).await;
    let mut far = platform.watch(FAR).await;
    let preferred = |worker: String| {
        Some(pb::post_order_request::Dispatch::Preferred(
            pb::PreferredDispatch { worker_id: worker },
        ))
    };
    // FAR is the favourite: offered first although NEAR lives at the door.
    platform
        .post_with(1, 0xA1, 1, preferred(FAR.to_string()))
        .await;
    assert_eq!(next_of(&mut far, "OrderOffered").await.order_id, id(0xA1));
    // A favourite nobody registered is passed over and the nearest worker is offered instead
    // (FAR is busy with the first order's pending offer at that time).
    platform.post_with(2, 0xA2, 1, preferred(id(0xEE))).await;
    let offer = next_of(&mut near, "OrderOffered").await;
    assert_eq!(offer.order_id, id(0xA2));
    let order = platform.order(0xA2, offer.position).await;
    assert_eq!(order.slots[0].offered_to, [NEAR.to_string()]);
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reactor_checkpoints_keeps_one_checkpoint_and_resumes_without_repeating() {
    // 150 certified workers: 450 events, each certificate calling for a new-worker visit.
    let dir = tempdir();
    {
        let store = EmbeddedStore::open(dir.path().join("data")).unwrap();
        let mut seeder = Seeder::new(
            store,
            CompanyId::from_u128(0xCC),
            RegistryId::from_u128(0x4E6),
            Timestamp(NOW.0 - 30 * DAY_MS),
        );
        for n in 0..150u128 {
            // Valid identity numbers: 17 digits and the ISO 7064 check character.
            let body = format!("11010519800101{:03}", n);
            let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
            let sum: u32 = body
                .chars()
                .zip(weights)
                .map(|(c, w)| c.to_digit(10).unwrap() * w)
                .sum();
            let check =
                ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
            seeder
                .worker(NewWorker {
                    id: WorkerId::from_u128(0x1000 + n),
                    identity: &format!("{body}{check}"),
                    home: home(),
                    contract: true,
                    certified: true,
                })
                .await;
        }
    }
    let settle = |platform: &Platform| {
        let mut admin = platform.admin();
        async move {
            admin
                .wait_settled(as_(
                    OPS_TOKEN,
                    pb::WaitSettledRequest { timeout_ms: 60_000 },
                ))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let clock = Clock::manual(NOW);
    let platform = Platform::start_in(dir, clock.clone()).await;
    let settled = settle(&platform).await;
    let (open, _) = platform.follow_ups_at(settled.last_position).await;
    assert_eq!(open.len(), 150);
    let dir = platform.stop().await;

    // One checkpoint is visible, and it covers a good part of the log.
    {
        let store = EmbeddedStore::open(dir.path().join("data")).unwrap();
        let checkpoints = store
            .read_stream(
                daojia_server::reactor::CHECKPOINT_STREAM,
                daojia_store::Direction::Forwards,
                daojia_store::StreamStart::Edge,
                100,
            )
            .await
            .unwrap();
        assert_eq!(checkpoints.len(), 1);
        let value: serde_json::Value = serde_json::from_slice(checkpoints[0].data_slice()).unwrap();
        assert!(value["reacted_through"].as_u64().unwrap() > 0);
    }

    // After a restart the reactor resumes after it and opens no follow-up twice.
    let platform = Platform::start_in(dir, clock).await;
    let settled = settle(&platform).await;
    let (open, _) = platform.follow_ups_at(settled.last_position).await;
    assert_eq!(open.len(), 150);
    let status = MetaClient::new(platform.channel.clone())
        .server_info(as_(OPS_TOKEN, pb::ServerInfoRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.reactor_position, Some(settled.last_position));
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_opened_after_accepting_still_reports_the_orders_cancellation() {
    let platform = Platform::start().await;
    let mut near = platform.watch(NEAR).await;
    platform.post(1, 0xA1).await;
    next_of(&mut near, "OrderOffered").await;
    platform
        .worker()
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
    let accepted = next_of(&mut near, "OrderAccepted").await;
    drop(near);
    // A new stream from now on, and a resumed one: both learn that NEAR holds the order.
    let mut fresh = platform.watch(NEAR).await;
    let mut resumed = platform
        .worker()
        .watch_notifications(as_(
            WORKER_TOKEN,
            pb::WatchNotificationsRequest {
                worker_id: NEAR.to_string(),
                after_position: Some(accepted.position),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    platform
        .customer()
        .cancel_order(as_(
            CUSTOMER_TOKEN,
            pb::CancelOrderRequest {
                command_id: id(3),
                order_id: id(0xA1),
                customer_id: id(0xC0),
                reason: "plans changed".into(),
            },
        ))
        .await
        .unwrap();
    for stream in [&mut fresh, &mut resumed] {
        let n = next_of(stream, "OrderCancelled").await;
        assert_eq!(n.order_id, id(0xA1));
    }
    // An unregistered worker has no stream.
    let status = platform
        .worker()
        .watch_notifications(as_(
            WORKER_TOKEN,
            pb::WatchNotificationsRequest {
                worker_id: id(0xEE),
                after_position: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    platform.stop().await;
}
