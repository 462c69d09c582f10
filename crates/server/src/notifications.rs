//! A worker's notification stream (`WorkerApp.WatchNotifications`): a filtered `$all`
//! subscription to the order streams and the worker's credit stream, turned into
//! [`pb::WorkerNotification`]s for the events that concern the worker.
//!
//! An order event concerns the worker when it names them (an offer, a lapse, a slot taken, a
//! review of their work, a complaint against them, a no-show) or when it happens to an order
//! the stream has seen them offered or holding (a cancellation, a dispute, a replan, a slot
//! taken by someone else while their offer was pending). Every event of `worker-<uuid>` (the
//! worker's credit) concerns them.
//!
//! This module holds what one stream decides about one event; the streams themselves are
//! served by the process's one shared reader, [`crate::notify_hub`], which decodes each event
//! once and asks only the watchers it concerns (see `concerned_workers`).

use std::collections::HashSet;

use daojia_domain::credit::CreditEvent;
use daojia_domain::order::{OrderEvent, SlotIndex};
use daojia_domain::{OrderId, WorkerId};
use daojia_projections::decode::DomainRecord;
use daojia_store::RecordedEvent;

use crate::order_view::timestamp;
use crate::pb;

/// What a stream knows about its worker when it starts: the orders they hold a slot on or have
/// a pending offer on (taken from the read models as of the stream's starting position), so
/// that a reconnected stream still reports what happens to those orders.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// Orders the worker holds a slot on or has been offered.
    pub involved: HashSet<OrderId>,
    /// Slots with an offer to the worker still pending.
    pub pending: HashSet<(OrderId, SlotIndex)>,
}

/// The workers an order event names (offered, taken, lapsed, declined, withdrawn, reviewed,
/// complained about, absent). Every other worker it concerns has the order among its
/// [`Known::involved`] orders (pending offers are involved orders too).
pub(crate) fn concerned_workers(e: &OrderEvent) -> &[WorkerId] {
    match e {
        OrderEvent::OrderOffered { worker, .. }
        | OrderEvent::OfferExpired { worker, .. }
        | OrderEvent::OfferDeclined { worker, .. }
        | OrderEvent::OrderAccepted { worker, .. }
        | OrderEvent::WorkerWithdrew { worker, .. }
        | OrderEvent::WorkerNoShowRecorded { worker, .. } => std::slice::from_ref(worker),
        OrderEvent::OrderReviewed { workers, .. } => workers,
        OrderEvent::ComplaintFiled { against, .. }
        | OrderEvent::ComplaintResolved { against, .. } => std::slice::from_ref(against),
        _ => &[],
    }
}

/// The worker whose credit stream (`worker-<uuid>`) `stream` is, if it is one.
pub(crate) fn credit_stream_worker(stream: &str) -> Option<WorkerId> {
    stream
        .strip_prefix(WorkerId::CATEGORY)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// What one stream remembers about its worker.
#[derive(Debug)]
pub(crate) struct Watcher {
    pub(crate) worker: WorkerId,
    pub(crate) known: Known,
}

impl Watcher {
    /// The notification `event` (decoded as `record`) makes for this worker, if any; updates
    /// what the stream knows of the worker's orders.
    pub(crate) fn notification(
        &mut self,
        event: &RecordedEvent,
        record: &DomainRecord,
    ) -> Option<pb::WorkerNotification> {
        let me = self.worker;
        let mut n = pb::WorkerNotification {
            position: event.position.0,
            event_type: event.event_type().to_owned(),
            ..Default::default()
        };
        match record {
            DomainRecord::Order(order, e) => {
                let order = *order;
                n.order_id = order.to_string();
                // Kept for the stream's life (disputes may follow a review): a connection sees
                // a worker's orders of days, not of years.
                let involved = self.known.involved.contains(&order);
                n.summary = match e.clone() {
                    OrderEvent::OrderOffered {
                        slot,
                        worker,
                        expires_at,
                        ..
                    } if worker == me => {
                        self.known.involved.insert(order);
                        self.known.pending.insert((order, slot));
                        n.slot = slot.0;
                        n.offer_expires_at = Some(timestamp(expires_at));
                        format!("new offer for slot {}: accept before it lapses", slot.0)
                    }
                    OrderEvent::OfferExpired { slot, worker, .. } if worker == me => {
                        self.known.pending.remove(&(order, slot));
                        n.slot = slot.0;
                        format!("your offer for slot {} lapsed", slot.0)
                    }
                    OrderEvent::OfferDeclined { slot, worker, .. } if worker == me => {
                        self.known.pending.remove(&(order, slot));
                        n.slot = slot.0;
                        format!("you declined slot {}", slot.0)
                    }
                    OrderEvent::OrderAccepted { slot, worker, .. } if worker == me => {
                        self.known.involved.insert(order);
                        self.known.pending.remove(&(order, slot));
                        n.slot = slot.0;
                        format!("slot {} is yours", slot.0)
                    }
                    OrderEvent::OrderAccepted { slot, .. }
                        if self.known.pending.remove(&(order, slot)) =>
                    {
                        n.slot = slot.0;
                        format!("slot {} was taken by another worker", slot.0)
                    }
                    OrderEvent::WorkerWithdrew { slot, worker, .. } if worker == me => {
                        n.slot = slot.0;
                        format!("you withdrew from slot {}", slot.0)
                    }
                    OrderEvent::OrderCancelled { .. } if involved => {
                        "the order was cancelled".to_owned()
                    }
                    OrderEvent::OrderReviewed { stars, workers, .. } if workers.contains(&me) => {
                        format!("the customer reviewed your service: {} stars", stars.get())
                    }
                    OrderEvent::ComplaintFiled { against, .. } if against == me => {
                        "a complaint was filed about your service".to_owned()
                    }
                    OrderEvent::ComplaintResolved { against, .. } if against == me => {
                        "the complaint about your service was decided".to_owned()
                    }
                    OrderEvent::WorkerNoShowRecorded { slot, worker, .. } if worker == me => {
                        n.slot = slot.0;
                        "you were recorded as not showing up".to_owned()
                    }
                    OrderEvent::CustomerNoShowRecorded { .. } if involved => {
                        "the customer was recorded as not there".to_owned()
                    }
                    OrderEvent::DisputeRaised { .. } if involved => {
                        "a dispute was raised about the order".to_owned()
                    }
                    OrderEvent::DisputeResolved { .. } if involved => {
                        "the dispute about the order was resolved".to_owned()
                    }
                    OrderEvent::OrderReplanned { .. } if involved => {
                        "the order's number of workers changed".to_owned()
                    }
                    _ => return None,
                };
            }
            DomainRecord::Credit(e) => {
                if credit_stream_worker(event.stream()) != Some(me) {
                    return None;
                }
                n.summary = match e {
                    CreditEvent::CreditAdjusted {
                        rule,
                        delta,
                        score_after,
                        ..
                    } => {
                        n.credit_points = *delta;
                        format!(
                            "credit {delta:+} under rule {}: score now {score_after}",
                            rule.as_str()
                        )
                    }
                    CreditEvent::WarningIssued { .. } => "you received a warning".to_owned(),
                    CreditEvent::RetrainingRequired { .. } => {
                        "retraining is required: no offers until it is completed".to_owned()
                    }
                    CreditEvent::TrainingCompleted { .. } => {
                        "retraining recorded: you receive offers again".to_owned()
                    }
                    CreditEvent::SubjectSuspended { .. } => "you are suspended".to_owned(),
                    CreditEvent::SubjectReinstated { .. } => "you are reinstated".to_owned(),
                    CreditEvent::BlackListed { .. } => "you are black-listed".to_owned(),
                    CreditEvent::RedListed { .. } => "you are on the red list".to_owned(),
                    _ => format!("credit record updated ({})", event.event_type()),
                };
            }
            _ => return None,
        }
        Some(n)
    }
}
