//! Decoding stored events: schema versions from metadata, upcasting, skipping what is not ours.

use daojia_domain::OrderPhase;
use daojia_projections::orders::OrdersView;
use daojia_projections::{DomainRecord, Projector, Skip};
use daojia_store::{AllStart, Direction, EventStore};

use crate::support::{T0, WAIT, World, customer, order_id, worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_review_is_upcast_and_lands_in_the_read_model() {
    let mut world = World::new("upcast");
    let projector = Projector::spawn(world.store.clone(), OrdersView::default);
    let id = order_id(1);
    world
        .full_order(
            id,
            customer(1),
            worker(1),
            T0,
            crate::support::Visit::good(),
        )
        .await;
    // An old writer's review of a second served order: v1 has `comment` and no tags.
    let other = order_id(2);
    world.post(other, customer(1), T0).await;
    world.assign(other, worker(1), T0).await;
    let (start, stream) = (T0.0 + 86_400_000, other.stream_name());
    let events = [
        format!(
            r#"{{"slot":0,"worker":"{}","at":{},"location":{{"lat":27.95,"lon":116.36}},"late_by":0}}"#,
            worker(1),
            start
        ),
        format!(
            r#"{{"slot":0,"worker":"{}","at":{},"checklist":{{"tools_disinfected":true,"area_tidied":true,"customer_confirmed":true}}}}"#,
            worker(1),
            start + 1
        ),
        format!(r#"{{"at":{}}}"#, start + 2),
    ];
    for (ty, data) in ["WorkerCheckedIn", "ServiceCompleted", "OrderServed"]
        .iter()
        .zip(&events)
    {
        world.append_raw(&stream, ty, data, "").await;
    }
    let v1 = format!(
        r#"{{"customer":"{}","stars":3,"comment":"fine","workers":["{}"],"at":{}}}"#,
        customer(1),
        worker(1),
        start + 3
    );
    let last = world
        .append_raw(&stream, "OrderReviewed", &v1, r#"{"schema_version":1}"#)
        .await;
    projector.wait_for(last, WAIT).await.unwrap();
    projector.read(|v| {
        let r = v.get(other).unwrap();
        assert_eq!(r.order.phase, OrderPhase::Reviewed);
        let review = r.review.as_ref().unwrap();
        assert_eq!(review.stars.get(), 3);
        assert_eq!(review.text, "fine");
        assert!(review.tags.is_empty());
    });

    let page = world
        .store
        .read_all(Direction::Forwards, AllStart::Edge, 1_000, None)
        .await
        .unwrap();
    let decoded: Vec<_> = page
        .events
        .iter()
        .map(daojia_projections::decode::decode)
        .collect();
    assert!(
        decoded
            .iter()
            .all(|d| matches!(d, Ok(DomainRecord::Order(..))))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_unknown_and_malformed_events_are_skipped_with_a_reason() {
    let mut world = World::new("skip");
    world.append_raw("$settings", "Changed", "{}", "").await;
    world.append_raw("shopping-1", "Bought", "{}", "").await;
    world
        .append_raw(
            &order_id(1).stream_name(),
            "OrderPosted",
            "{\"nope\":1}",
            "",
        )
        .await;
    world
        .append_raw(
            &order_id(1).stream_name(),
            "OrderReviewed",
            "{}",
            r#"{"schema_version":9}"#,
        )
        .await;
    let page = world
        .store
        .read_all(Direction::Forwards, AllStart::Edge, 10, None)
        .await
        .unwrap();
    let skips: Vec<_> = page
        .events
        .iter()
        .map(|e| daojia_projections::decode::decode(e).unwrap_err())
        .collect();
    assert_eq!(skips[0], Skip::NotDomain);
    assert_eq!(skips[1], Skip::NotDomain);
    assert!(
        matches!(&skips[2], Skip::Malformed(m) if m.contains("OrderPosted")),
        "{:?}",
        skips[2]
    );
    assert!(
        matches!(&skips[3], Skip::Malformed(m) if m.contains('9')),
        "{:?}",
        skips[3]
    );
}
