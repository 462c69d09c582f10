//! The ops read model: open complaints, disputes and follow-ups.

use daojia_domain::followups::{self, FollowUpEvent, FollowUpPolicy, TriggerEvent};
use daojia_domain::order::{ComplaintCategory, ComplaintOutcome, OrderEvent, Party};
use daojia_domain::{ComplaintId, DisputeId, FollowUpId, Minutes, OrderCommand};
use daojia_projections::Projector;
use daojia_projections::ops::OpsView;

use crate::support::{T0, Visit, WAIT, World, customer, order_id, worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complaints_disputes_and_follow_ups_stay_open_until_closed() {
    let mut world = World::new("ops");
    let projector = Projector::spawn(world.store.clone(), OpsView::default);
    let (c, w) = (customer(1), worker(1));
    world.full_order(order_id(1), c, w, T0, Visit::good()).await;
    world.full_order(order_id(2), c, w, T0, Visit::good()).await;
    let at = T0.plus(Minutes::days(2));
    let complain = |id| OrderCommand::FileComplaint {
        complaint_id: ComplaintId::from_u128(id),
        customer: c,
        against: w,
        category: ComplaintCategory::Quality,
        text: "streaks on the windows".into(),
    };
    world.order(order_id(1), complain(1), at).await;
    world
        .order(order_id(2), complain(2), at.plus(Minutes(1)))
        .await;
    world
        .order(
            order_id(1),
            OrderCommand::ResolveComplaint {
                complaint_id: ComplaintId::from_u128(1),
                outcome: ComplaintOutcome::Dismissed,
            },
            at.plus(Minutes(2)),
        )
        .await;
    world
        .order(
            order_id(2),
            OrderCommand::RaiseDispute {
                dispute_id: DisputeId::from_u128(9),
                by: Party::Customer(c),
                reason: "refund wanted".into(),
            },
            at.plus(Minutes(3)),
        )
        .await;
    // Two follow-ups derived from the dispute and a complaint; the second is closed.
    let mut last = daojia_store::Position::START;
    for (n, close) in [(1u128, false), (2, true)] {
        let trigger = daojia_domain::EventId::from_u128(0xF000 + n);
        let event = OrderEvent::DisputeRaised {
            dispute_id: DisputeId::from_u128(9),
            by: Party::Customer(c),
            reason: "refund wanted".into(),
            at,
        };
        let task = followups::follow_up_for(
            trigger,
            TriggerEvent::Order(order_id(2), &event),
            FollowUpPolicy::default(),
            at.plus(Minutes(u32::try_from(n).unwrap())),
        )
        .unwrap();
        let stream = FollowUpId::new(trigger.uuid()).stream_name();
        let mut events = vec![
            FollowUpEvent::FollowUpOpened { task, at },
            FollowUpEvent::FollowUpNoted {
                text: "called the customer".into(),
                at,
            },
        ];
        if close {
            events.push(FollowUpEvent::FollowUpClosed {
                outcome: "settled".into(),
                at,
            });
        }
        last = world.append(&stream, &events).await;
    }
    projector.wait_for(last, WAIT).await.unwrap();

    projector.read(|v| {
        let complaints: Vec<_> = v.open_complaints().iter().map(|c| c.id).collect();
        assert_eq!(complaints, vec![ComplaintId::from_u128(2)]);
        assert_eq!(v.complaints_resolved, 1);
        let disputes: Vec<_> = v.open_disputes().iter().map(|d| (d.id, d.order)).collect();
        assert_eq!(disputes, vec![(DisputeId::from_u128(9), order_id(2))]);
        let open = v.open_follow_ups();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].notes.len(), 1);
        assert_eq!(open[0].task.order, Some(order_id(2)));
        assert_eq!(v.follow_ups_closed, 1);
        assert!(v.overdue_follow_ups(at).is_empty());
        assert_eq!(v.overdue_follow_ups(at.plus(Minutes::days(30))).len(), 1);
    });
}
