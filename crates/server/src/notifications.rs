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
//! Each stream runs as its own task feeding a bounded channel; a client that stops reading
//! holds only its own subscription back (the store never waits for subscribers), and the task
//! ends when the client goes away, the store closes or the server starts draining (graceful
//! shutdown would otherwise wait for every open stream).

use std::collections::HashSet;

use daojia_domain::credit::CreditEvent;
use daojia_domain::order::{OrderEvent, SlotIndex};
use daojia_domain::{OrderId, WorkerId};
use daojia_projections::decode::{self, DomainRecord};
use daojia_store::{
    AllOptions, EventStore, EventSubscription, Filter, FilterTarget, Position, RecordedEvent,
    SubscribeFrom, SubscriptionItem,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::order_view::timestamp;
use crate::pb;
use crate::status::ApiError;

/// Notifications buffered per stream before the task waits for the client.
const BUFFER: usize = 64;

/// The stream handed to tonic.
pub type NotificationStream = ReceiverStream<Result<pb::WorkerNotification, Status>>;

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

/// Starts streaming `worker`'s notifications after `after` (from now on when `None`), until the
/// client goes away, the store closes or `end` turns true.
pub async fn watch<S>(
    store: &S,
    worker: WorkerId,
    after: Option<Position>,
    known: Known,
    mut end: watch::Receiver<bool>,
) -> Result<NotificationStream, ApiError>
where
    S: EventStore,
{
    let filter = Filter::prefixes(
        FilterTarget::StreamName,
        [
            format!("{}-", OrderId::CATEGORY),
            format!("{}-{}", WorkerId::CATEGORY, worker.uuid().hyphenated()),
        ],
    )
    .map_err(|e| ApiError::Store(e.into()))?;
    let from = after.map_or(SubscribeFrom::End, SubscribeFrom::After);
    let mut subscription = store
        .subscribe_all(
            from,
            AllOptions {
                filter: Some(filter),
                checkpoint_interval: 0,
            },
        )
        .await?;
    let (tx, rx) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let mut watcher = Watcher { worker, known };
        loop {
            let item = tokio::select! {
                () = tx.closed() => break,
                _ = end.wait_for(|end| *end) => break,
                item = subscription.next() => item,
            };
            let notification = match item {
                Some(Ok(SubscriptionItem::Event(event))) => match watcher.notification(&event) {
                    Some(n) => Ok(n),
                    None => continue,
                },
                Some(Ok(_)) => continue,
                Some(Err(e)) => Err(Status::from(ApiError::Store(e))),
                None => break,
            };
            let failed = notification.is_err();
            // A client that stops reading must not hold the server's shutdown up.
            let sent = tokio::select! {
                sent = tx.send(notification) => sent.is_ok(),
                _ = end.wait_for(|end| *end) => false,
            };
            if !sent || failed {
                break;
            }
        }
        tracing::debug!(%worker, "notification stream ended");
    });
    Ok(ReceiverStream::new(rx))
}

/// What one stream remembers about its worker.
struct Watcher {
    worker: WorkerId,
    known: Known,
}

impl Watcher {
    fn notification(&mut self, event: &RecordedEvent) -> Option<pb::WorkerNotification> {
        let me = self.worker;
        let mut n = pb::WorkerNotification {
            position: event.position.0,
            event_type: event.event_type().to_owned(),
            ..Default::default()
        };
        match decode::decode(event).ok()? {
            DomainRecord::Order(order, e) => {
                n.order_id = order.to_string();
                // Kept for the stream's life (disputes may follow a review): a connection sees
                // a worker's orders of days, not of years.
                let involved = self.known.involved.contains(&order);
                n.summary = match e {
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
                n.summary = match &e {
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
