//! The matching view: eligible candidates by standing, certificates, contract and bookings, and
//! open orders with their declined workers.

use daojia_domain::certificates::{CertificateEvent, CertificateKind, IdentityNumber};
use daojia_domain::credit::{CreditCommand, RuleId, Subject};
use daojia_domain::order::{DispatchMode, PostOrder, ServiceWindow, SlotIndex};
use daojia_domain::worker::{self, ContractNumber, RegisterWorker, WorkerCommand, WorkerState};
use daojia_domain::{
    CertificateId, CompanyId, Minutes, OrderCommand, OrderId, OrderTerms, RegistryId, Standing,
    WorkerId,
};
use daojia_projections::Projector;
use daojia_projections::matching_view::{MatchingView, PoolStatus};
use daojia_store::Position;

use crate::support::{HOME, T0, WAIT, World, customer, order_id, worker};

const COMPANY: CompanyId = CompanyId::from_u128(0xC0);
const REGISTRY: RegistryId = RegistryId::from_u128(0xAB);

/// What a test worker has.
struct Profile {
    contract: bool,
    elder_carer: bool,
}

async fn register(world: &mut World, w: WorkerId, n: u128, profile: Profile) -> Position {
    let register = RegisterWorker {
        worker: w,
        company: COMPANY,
        identity: IdentityNumber::new("11010519491231002X").unwrap(),
        skills: vec!["elder_carer".parse().unwrap()],
        home: HOME,
        registry: REGISTRY,
    };
    let mut events = worker::decide(
        &WorkerState::default(),
        WorkerCommand::Register(Box::new(register)),
        T0,
    )
    .unwrap();
    if profile.contract {
        let state = events.iter().fold(WorkerState::default(), worker::evolve);
        events.extend(
            worker::decide(
                &state,
                WorkerCommand::SignContract {
                    contract: ContractNumber::new(&format!("FZ-{n}")).unwrap(),
                    injury_cover: true,
                    valid_from: T0,
                    valid_until: T0.plus(Minutes::days(365)),
                },
                T0,
            )
            .unwrap(),
        );
    }
    world.append(&worker::profile_stream(w), &events).await;
    let mut kinds = vec![CertificateKind::HomeVisit];
    if profile.elder_carer {
        kinds.push(CertificateKind::Skill("elder_carer".parse().unwrap()));
    }
    let certificates: Vec<CertificateEvent> = kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| CertificateEvent::CertificateIssued {
            certificate_id: CertificateId::from_u128(n * 16 + i as u128),
            worker: w,
            identity: IdentityNumber::new("11010519491231002X").unwrap(),
            company: COMPANY,
            kind,
            issued_at: T0,
            valid_until: T0.plus(Minutes::days(365)),
        })
        .collect();
    world.append(&REGISTRY.stream_name(), &certificates).await
}

/// An eldercare order (needs `elder_carer`) for the same window as `World::post` at `T0`.
async fn post_eldercare(world: &mut World, id: OrderId) -> Position {
    let start = T0.plus(Minutes::days(1));
    let post = PostOrder {
        order_id: id,
        customer: customer(7),
        customer_standing: Standing::Good,
        service: "E01".parse().unwrap(),
        quantity: 2,
        workers: 1,
        window: ServiceWindow {
            start,
            end: start.plus(Minutes(120)),
        },
        location: HOME,
        dispatch: DispatchMode::Platform,
        terms: OrderTerms::default(),
    };
    world
        .order(id, OrderCommand::Post(Box::new(post)), T0)
        .await
}

fn ids(workers: Vec<&daojia_projections::matching_view::MatchingWorker>) -> Vec<WorkerId> {
    workers.into_iter().map(|w| w.worker).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_pass_standing_certificate_contract_and_booking_filters() {
    let mut world = World::new("matching");
    let projector = Projector::spawn(world.store.clone(), MatchingView::default);
    world.publish_rules(T0).await;
    let full = || Profile {
        contract: true,
        elder_carer: true,
    };
    let (carer, no_skill, retraining, no_contract, busy, second) = (
        worker(1),
        worker(2),
        worker(3),
        worker(4),
        worker(5),
        worker(6),
    );
    register(&mut world, carer, 1, full()).await;
    register(
        &mut world,
        no_skill,
        2,
        Profile {
            contract: true,
            elder_carer: false,
        },
    )
    .await;
    register(&mut world, retraining, 3, full()).await;
    register(
        &mut world,
        no_contract,
        4,
        Profile {
            contract: false,
            elder_carer: true,
        },
    )
    .await;
    register(&mut world, busy, 5, full()).await;
    register(&mut world, second, 6, full()).await;
    let evidence = world.next_event_id();
    world
        .credit(
            Subject::Worker(retraining),
            CreditCommand::ApplyRule {
                rule: RuleId::new("worker.tools_not_disinfected").unwrap(),
                evidence,
                order: None,
                fact: None,
            },
            T0,
        )
        .await;
    // `busy` holds a cleaning order in the same window as the eldercare order.
    let cleaning = order_id(1);
    world.post(cleaning, customer(1), T0).await;
    world.assign(cleaning, busy, T0).await;
    let eldercare = order_id(2);
    let posted = post_eldercare(&mut world, eldercare).await;
    // The offer decision takes the credentials the view assembles.
    let credentials = |w| {
        let at = T0.plus(Minutes(2));
        projector.read(move |v: &MatchingView| v.worker(w).unwrap().credentials(at))
    };
    projector.wait_for(posted, WAIT).await.unwrap();
    let slot = SlotIndex(0);
    world
        .order(
            eldercare,
            OrderCommand::Offer {
                slot,
                worker: credentials(carer),
            },
            T0.plus(Minutes(2)),
        )
        .await;
    let last = world
        .order(
            eldercare,
            OrderCommand::Decline {
                slot,
                worker: carer,
            },
            T0.plus(Minutes(3)),
        )
        .await;
    projector.wait_for(last, WAIT).await.unwrap();

    let now = T0.plus(Minutes(10));
    projector.read(|v| {
        let order = v.open_order(eldercare).unwrap();
        let window = order.order.window;
        assert_eq!(order.declined(), &[carer]);
        assert_eq!(order.open_slots(), vec![slot]);
        let required = order.order.required_certificates.clone();
        assert_eq!(required, vec!["elder_carer".parse().unwrap()]);
        assert_eq!(
            ids(v.eligible_candidates(&required, window, now)),
            vec![carer, second]
        );
        // Without a certificate requirement the skill-less worker qualifies too.
        assert_eq!(
            ids(v.eligible_candidates(&[], window, now)),
            vec![carer, no_skill, second]
        );
        // The worker who declined is not offered this order again.
        assert_eq!(ids(v.candidates_for(eldercare, now)), vec![second]);
        let awaiting: Vec<OrderId> = v.awaiting_workers().iter().map(|o| o.order.id).collect();
        assert_eq!(awaiting, vec![eldercare]);

        assert_eq!(
            v.worker(retraining).unwrap().status(),
            PoolStatus::InRetraining
        );
        assert_eq!(v.worker(carer).unwrap().status(), PoolStatus::Active);
        assert!(!v.worker(no_contract).unwrap().contracted(now));
        let b = v.worker(busy).unwrap();
        assert!(b.booked_during(window));
        assert_eq!(b.booked.len(), 1);
        let c = v.worker(carer).unwrap().credentials(now);
        assert!(c.home_visit_certificate_valid && c.contract_signed);
        assert_eq!(c.skills, vec!["elder_carer".parse().unwrap()]);
        assert_eq!(v.worker(carer).unwrap().home, Some(HOME));
        // A year later the certificates and contracts have lapsed.
        let later = T0.plus(Minutes::days(400));
        assert!(v.eligible_candidates(&[], window, later).is_empty());
    });

    // `second` is offered the order: the view finds the offer by worker (what a notification
    // stream's start asks), the declined `carer` has none, and a snapshot rebuilds the index.
    let offered = world
        .order(
            eldercare,
            OrderCommand::Offer {
                slot,
                worker: credentials(second),
            },
            T0.plus(Minutes(4)),
        )
        .await;
    projector.wait_for(offered, WAIT).await.unwrap();
    projector.read(|v| {
        let to = |w| -> Vec<OrderId> { v.offered_to_worker(w).map(|o| o.order.id).collect() };
        assert_eq!(to(second), vec![eldercare]);
        assert!(to(carer).is_empty());
        let json = serde_json::to_vec(v).unwrap();
        let restored = serde_json::from_slice::<MatchingView>(&json).unwrap();
        assert_eq!(&restored, v);
        let restored_to: Vec<OrderId> = restored
            .offered_to_worker(second)
            .map(|o| o.order.id)
            .collect();
        assert_eq!(restored_to, vec![eldercare]);
    });

    // `second` accepts: the order no longer awaits anyone and `second` is booked.
    let accepted = world
        .order(
            eldercare,
            OrderCommand::Accept {
                slot,
                worker: credentials(second),
            },
            T0.plus(Minutes(5)),
        )
        .await;
    projector.wait_for(accepted, WAIT).await.unwrap();
    projector.read(|v| {
        assert!(v.awaiting_workers().is_empty());
        assert_eq!(v.offered_to_worker(second).count(), 0);
        let window = v.open_order(eldercare).unwrap().order.window;
        assert!(v.worker(second).unwrap().booked_during(window));
        assert!(v.candidates_for(eldercare, now).is_empty());
    });

    // Cancelling frees both bookings and the order leaves the view.
    let cancelled = world
        .order(
            eldercare,
            OrderCommand::Cancel {
                by: daojia_domain::order::Party::Customer(customer(7)),
                reason: "family visiting".into(),
            },
            T0.plus(Minutes(6)),
        )
        .await;
    projector.wait_for(cancelled, WAIT).await.unwrap();
    projector.read(|v| {
        assert!(v.open_order(eldercare).is_none());
        assert!(v.worker(second).unwrap().booked.is_empty());
        assert_eq!(v.worker(busy).unwrap().booked.len(), 1);
    });

    // The view survives a snapshot (what a checkpoint stores) unchanged.
    let model = projector.read(Clone::clone);
    let json = serde_json::to_vec(&model).unwrap();
    assert_eq!(
        serde_json::from_slice::<MatchingView>(&json).unwrap(),
        model
    );
}
