//! The projector runtime: positions, lag, read-your-writes waits, rebuilds.

use std::time::Duration;

use daojia_domain::OrderPhase;
use daojia_projections::orders::OrdersView;
use daojia_projections::{ProjectionError, Projector};
use daojia_store::Position;

use crate::support::{T0, Visit, WAIT, World, customer, order_id, worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_returns_once_the_event_is_applied_and_lag_is_then_zero() {
    let mut world = World::new("wait");
    let projector = Projector::spawn(world.store.clone(), OrdersView::default);
    let posted = world.post(order_id(1), customer(1), T0).await;
    let applied = projector.wait_for(posted, WAIT).await.unwrap();
    assert!(applied >= posted);
    assert_eq!(projector.position(), posted);
    let found = projector.read(|v| v.get(order_id(1)).map(|r| r.order.phase));
    assert_eq!(found, Some(OrderPhase::Open));
    let lag = projector.lag().await.unwrap();
    assert_eq!(lag.behind, 0);
    assert_eq!(lag.head, posted);

    // A read-your-writes query after a second write sees it.
    let assigned = world.assign(order_id(1), worker(1), T0).await;
    let workers = projector
        .read_at(assigned, WAIT, |v| {
            v.by_worker(worker(1))
                .map(|r| r.order.id)
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
    assert_eq!(workers, vec![order_id(1)]);
    assert_eq!(projector.lag().await.unwrap().behind, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_a_position_never_written_times_out_with_a_clear_error() {
    let mut world = World::new("timeout");
    let projector = Projector::spawn(world.store.clone(), OrdersView::default);
    let posted = world.post(order_id(1), customer(1), T0).await;
    projector.wait_for(posted, WAIT).await.unwrap();
    // Nothing more is written, so the wait must give up (after its bound, not a sleep).
    let wanted = Position(posted.0 + 1_000_000);
    let err = projector
        .wait_for(wanted, Duration::from_millis(50))
        .await
        .unwrap_err();
    match &err {
        ProjectionError::Timeout {
            projection,
            wanted: w,
            applied,
            waited,
        } => {
            assert_eq!(projection, "orders");
            assert_eq!(*w, wanted);
            assert_eq!(*applied, posted);
            assert_eq!(*waited, Duration::from_millis(50));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(err.to_string().contains("did not reach position"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_started_late_replays_history_from_position_zero() {
    let mut world = World::new("late-start");
    for n in 0..5 {
        world.post(order_id(n), customer(n % 2), T0).await;
    }
    let last = world.assign(order_id(0), worker(1), T0).await;
    let projector = Projector::spawn(world.store.clone(), OrdersView::default);
    projector.wait_for(last, WAIT).await.unwrap();
    let (total, first_customer) = projector.read(|v| (v.len(), v.by_customer(customer(0)).count()));
    assert_eq!(total, 5);
    assert_eq!(first_customer, 3);
    assert!(projector.progress().events >= 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_from_zero_equals_the_incremental_model() {
    let mut world = World::new("rebuild");
    let projector = Projector::spawn(world.store.clone(), OrdersView::default);
    world.post(order_id(1), customer(1), T0).await;
    world
        .full_order(order_id(2), customer(1), worker(2), T0, Visit::good())
        .await;
    // System and unknown events advance the position but not the model.
    world
        .append_raw("$settings", "SettingsChanged", "{}", "{}")
        .await;
    let last = world
        .append_raw("order-not-a-uuid", "Whatever", "{}", "{}")
        .await;
    projector.wait_for(last, WAIT).await.unwrap();
    let incremental = projector.read(Clone::clone);
    let at = projector.rebuild().await.unwrap();
    assert_eq!(at, last);
    assert_eq!(projector.read(Clone::clone), incremental);
    assert_eq!(projector.progress().rebuilds, 1);
    assert_eq!(projector.lag().await.unwrap().behind, 0);

    // The rebuilt model keeps following live events.
    let more = world.post(order_id(3), customer(2), T0).await;
    projector.wait_for(more, WAIT).await.unwrap();
    assert_eq!(projector.read(|v| v.len()), 3);
}

/// Rebuilding any read model from position 0 gives the model that followed the log live.
async fn rebuild_matches<P>(world: &World, make: fn() -> P, last: Position) -> P
where
    P: daojia_projections::Projection + Clone + PartialEq + std::fmt::Debug,
{
    let projector = Projector::spawn(world.store.clone(), make);
    projector.wait_for(last, WAIT).await.unwrap();
    let live = projector.read(Clone::clone);
    assert_eq!(projector.rebuild().await.unwrap(), last);
    assert_eq!(projector.read(Clone::clone), live, "{}", projector.name());
    live
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_model_rebuilds_to_the_same_state() {
    use daojia_domain::credit::{CreditCommand, RuleId, Subject};
    use daojia_domain::order::{ComplaintCategory, Party};
    use daojia_domain::{ComplaintId, Minutes, OrderCommand};
    use daojia_projections::{
        ReadModels, credit::CreditView, kpis::KpisView, matching_view::MatchingView, ops::OpsView,
        workers::WorkersView,
    };

    let mut world = World::new("rebuild-all");
    world.publish_rules(T0).await;
    for n in 0..4 {
        let visit = Visit {
            late: u32::try_from(n * 20).unwrap(),
            stars: 5 - u8::try_from(n).unwrap(),
            tags: Vec::new(),
        };
        world
            .full_order(order_id(n), customer(n % 2), worker(n % 3), T0, visit)
            .await;
    }
    world.post(order_id(9), customer(1), T0).await;
    world.assign(order_id(9), worker(1), T0).await;
    world
        .order(
            order_id(9),
            OrderCommand::Cancel {
                by: Party::Customer(customer(1)),
                reason: "moved".into(),
            },
            T0.plus(Minutes(5)),
        )
        .await;
    world
        .order(
            order_id(3),
            OrderCommand::FileComplaint {
                complaint_id: ComplaintId::from_u128(1),
                customer: customer(1),
                against: worker(0),
                category: ComplaintCategory::Conduct,
                text: "rude".into(),
            },
            T0.plus(Minutes::days(2)),
        )
        .await;
    let evidence = world.next_event_id();
    let last = world
        .credit(
            Subject::Worker(worker(0)),
            CreditCommand::ApplyRule {
                rule: RuleId::new("worker.late_check_in").unwrap(),
                evidence,
                order: None,
                fact: None,
            },
            T0.plus(Minutes::days(2)),
        )
        .await;

    let orders = rebuild_matches(&world, OrdersView::default, last).await;
    let workers = rebuild_matches(&world, WorkersView::default, last).await;
    let credit = rebuild_matches(&world, CreditView::default, last).await;
    let ops = rebuild_matches(&world, OpsView::default, last).await;
    let kpis = rebuild_matches(&world, KpisView::default, last).await;
    let matching = rebuild_matches(&world, MatchingView::default, last).await;
    // One projector feeding every model ends in the same states as one projector each.
    let all = rebuild_matches(&world, ReadModels::default, last).await;
    assert_eq!(all.orders, orders);
    assert_eq!(all.workers, workers);
    assert_eq!(all.credit, credit);
    assert_eq!(all.ops, ops);
    assert_eq!(all.kpis, kpis);
    assert_eq!(all.matching, matching);
    assert_eq!(all.kpis.total.served, 4);
    assert_eq!(all.ops.open_complaints().len(), 1);
}
