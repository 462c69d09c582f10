//! The worker profile and schedule read model.

use daojia_domain::certificates::{CertificateEvent, CertificateKind, IdentityNumber};
use daojia_domain::credit::{CreditCommand, RuleId, Standing, Subject};
use daojia_domain::order::Party;
use daojia_domain::{CertificateId, CompanyId, Minutes, OrderCommand, RegistryId};
use daojia_projections::Projector;
use daojia_projections::workers::{BookingStatus, WorkersView};

use crate::support::{T0, Visit, WAIT, World, customer, order_id, worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_has_company_certificates_standing_and_schedule() {
    let mut world = World::new("workers");
    let projector = Projector::spawn(world.store.clone(), WorkersView::default);
    let w = worker(1);
    let company = CompanyId::from_u128(0xC0);
    let registry = RegistryId::from_u128(0xAB);
    world
        .append(
            &registry.stream_name(),
            &[CertificateEvent::CertificateIssued {
                certificate_id: CertificateId::from_u128(0xCE),
                worker: w,
                identity: IdentityNumber::new("11010519491231002X").unwrap(),
                company,
                kind: CertificateKind::HomeVisit,
                issued_at: T0,
                valid_until: T0.plus(Minutes::days(365)),
            }],
        )
        .await;
    // Served and reviewed; then booked on a second order; a third is cancelled.
    world
        .full_order(order_id(1), customer(1), w, T0, Visit::good())
        .await;
    let later = T0.plus(Minutes::days(3));
    world.post(order_id(2), customer(1), later).await;
    world.assign(order_id(2), w, later).await;
    world.post(order_id(3), customer(2), later).await;
    world.assign(order_id(3), w, later).await;
    world
        .order(
            order_id(3),
            OrderCommand::Cancel {
                by: Party::Customer(customer(2)),
                reason: "plans changed".into(),
            },
            later.plus(Minutes(10)),
        )
        .await;
    world.publish_rules(T0).await;
    let rule = RuleId::new("worker.tools_not_disinfected").unwrap();
    let evidence = world.next_event_id();
    let last = world
        .credit(
            Subject::Worker(w),
            CreditCommand::ApplyRule {
                rule,
                evidence,
                order: None,
                fact: None,
            },
            later,
        )
        .await;
    projector.wait_for(last, WAIT).await.unwrap();

    projector.read(|v| {
        let p = v.get(w).unwrap();
        assert_eq!(p.company, Some(company));
        assert!(p.home_visit_valid(T0.plus(Minutes::days(1))));
        assert!(!p.home_visit_valid(T0.plus(Minutes::days(366))));
        assert_eq!(p.completed_visits, 1);
        assert_eq!(p.standing(), Standing::InRetraining);
        let schedule: Vec<_> = p.schedule.values().map(|b| (b.order, b.status)).collect();
        assert_eq!(
            schedule,
            vec![
                (order_id(1), BookingStatus::Completed),
                (order_id(2), BookingStatus::Accepted),
            ]
        );
        let day_of_order_2 = later.plus(Minutes::days(1));
        let upcoming: Vec<_> = p
            .schedule_between(day_of_order_2, day_of_order_2.plus(Minutes::days(1)))
            .map(|b| b.order)
            .collect();
        assert_eq!(upcoming, vec![order_id(2)]);
        assert_eq!(v.of_company(company).count(), 1);
        // In retraining: out of the matching pool although the certificate is valid.
        assert!(!p.in_matching_pool(T0.plus(Minutes::days(1))));
        assert!(p.skills(T0).is_empty());
        let booked = p
            .schedule
            .values()
            .find(|b| b.order == order_id(2))
            .unwrap();
        assert!(p.is_booked_during(booked.window));
        let done = p
            .schedule
            .values()
            .find(|b| b.order == order_id(1))
            .unwrap();
        assert!(!p.is_booked_during(done.window));
    });
}
