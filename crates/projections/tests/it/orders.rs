//! The orders read model.

use daojia_domain::OrderPhase;
use daojia_domain::order::ReviewTag;
use daojia_projections::Projector;
use daojia_projections::orders::OrdersView;

use crate::support::{T0, Visit, WAIT, World, customer, order_id, worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_indexed_by_customer_worker_and_phase() {
    let mut world = World::new("orders");
    let projector = Projector::spawn(world.store.clone(), OrdersView::default);
    world.post(order_id(1), customer(1), T0).await;
    world.post(order_id(2), customer(2), T0).await;
    world.assign(order_id(2), worker(7), T0).await;
    let last = world
        .full_order(
            order_id(3),
            customer(1),
            worker(7),
            T0,
            Visit {
                late: 0,
                stars: 4,
                tags: vec![ReviewTag::Excellent],
            },
        )
        .await;
    projector.wait_for(last, WAIT).await.unwrap();
    projector.read(|v| {
        let ids = |it: Box<dyn Iterator<Item = &daojia_projections::orders::OrderRecord> + '_>| {
            it.map(|r| r.order.id).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(Box::new(v.by_customer(customer(1)))),
            vec![order_id(1), order_id(3)]
        );
        assert_eq!(
            ids(Box::new(v.by_worker(worker(7)))),
            vec![order_id(2), order_id(3)]
        );
        assert_eq!(
            ids(Box::new(v.by_phase(OrderPhase::Open))),
            vec![order_id(1), order_id(2)]
        );
        assert_eq!(
            ids(Box::new(v.by_phase(OrderPhase::Reviewed))),
            vec![order_id(3)]
        );
        let review = v.get(order_id(3)).unwrap().review.clone().unwrap();
        assert_eq!(review.stars.get(), 4);
        assert_eq!(review.tags, vec![ReviewTag::Excellent]);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_who_withdraws_leaves_the_worker_index_and_schedule() {
    use daojia_domain::order::Party;
    use daojia_domain::{Minutes, OrderCommand};
    use daojia_projections::workers::WorkersView;

    let mut world = World::new("withdraw");
    let orders = Projector::spawn(world.store.clone(), OrdersView::default);
    let workers = Projector::spawn(world.store.clone(), WorkersView::default);
    world.post(order_id(1), customer(1), T0).await;
    world.assign(order_id(1), worker(1), T0).await;
    let last = world
        .order(
            order_id(1),
            OrderCommand::Cancel {
                by: Party::Worker(worker(1)),
                reason: "ill".into(),
            },
            T0.plus(Minutes(30)),
        )
        .await;
    orders.wait_for(last, WAIT).await.unwrap();
    workers.wait_for(last, WAIT).await.unwrap();
    orders.read(|v| {
        assert_eq!(v.by_worker(worker(1)).count(), 0);
        let r = v.get(order_id(1)).unwrap();
        assert_eq!(r.order.phase, OrderPhase::Open);
        assert_eq!(r.order.passed_over, vec![worker(1)]);
    });
    workers.read(|v| assert!(v.get(worker(1)).unwrap().schedule.is_empty()));
}
