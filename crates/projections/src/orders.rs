//! The orders read model: every order as the order aggregate sees it, plus its review, indexed
//! by customer, by worker (current slot holders) and by lifecycle phase.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use daojia_domain::order::{self, Order, ReviewTag, Stars};
use daojia_domain::{CustomerId, OrderEvent, OrderId, OrderPhase, OrderState, Timestamp, WorkerId};
use daojia_store::{Position, RecordedEvent, Revision};
use serde::{Deserialize, Serialize};

use crate::decode::DomainRecord;
use crate::runtime::ReadModel;

/// A review as given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Rating.
    pub stars: Stars,
    /// Tags.
    pub tags: Vec<ReviewTag>,
    /// Free text.
    pub text: String,
    /// When.
    pub at: Timestamp,
}

/// One order in the read model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// The order's state (the same fold the command side uses).
    #[serde(with = "crate::state_repr::order")]
    pub order: Order,
    /// When it was posted.
    pub posted_at: Timestamp,
    /// Its review, once reviewed.
    pub review: Option<Review>,
    /// Position of the last event that changed it.
    #[serde(with = "crate::state_repr::position")]
    pub updated_at: Position,
    /// The order stream's revision after that event.
    #[serde(with = "crate::state_repr::revision")]
    pub revision: Revision,
}

/// Orders by id, customer, worker and phase.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrdersView {
    orders: BTreeMap<OrderId, OrderRecord>,
    by_customer: BTreeMap<CustomerId, BTreeSet<OrderId>>,
    by_worker: BTreeMap<WorkerId, BTreeSet<OrderId>>,
    #[serde(with = "crate::state_repr::pairs")]
    by_phase: HashMap<OrderPhase, BTreeSet<OrderId>>,
}

impl OrdersView {
    /// One order.
    pub fn get(&self, id: OrderId) -> Option<&OrderRecord> {
        self.orders.get(&id)
    }

    /// Number of orders.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// No orders yet.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    fn resolve<'a>(
        &'a self,
        ids: Option<&'a BTreeSet<OrderId>>,
    ) -> impl Iterator<Item = &'a OrderRecord> + 'a {
        ids.into_iter()
            .flatten()
            .filter_map(|id| self.orders.get(id))
    }

    /// A customer's orders, by order id.
    pub fn by_customer(&self, customer: CustomerId) -> impl Iterator<Item = &OrderRecord> {
        self.resolve(self.by_customer.get(&customer))
    }

    /// Orders in which `worker` currently holds a slot, by order id.
    pub fn by_worker(&self, worker: WorkerId) -> impl Iterator<Item = &OrderRecord> {
        self.resolve(self.by_worker.get(&worker))
    }

    /// Orders in `phase`, by order id.
    pub fn by_phase(&self, phase: OrderPhase) -> impl Iterator<Item = &OrderRecord> {
        self.resolve(self.by_phase.get(&phase))
    }

    fn apply_order(&mut self, id: OrderId, event: &OrderEvent, at: &RecordedEvent) {
        let (position, revision) = (at.position, at.revision);
        let before = self
            .orders
            .get(&id)
            .map(|r| (r.order.phase, r.order.workers()));
        if let OrderEvent::OrderPosted {
            customer,
            posted_at,
            ..
        } = event
        {
            if before.is_some() {
                return; // a second OrderPosted cannot be decided; ignore it as the fold would
            }
            let state = order::evolve(OrderState::default(), event);
            let Some(order) = state.order else { return };
            self.by_customer.entry(*customer).or_default().insert(id);
            self.by_phase.entry(order.phase).or_default().insert(id);
            self.orders.insert(
                id,
                OrderRecord {
                    order,
                    posted_at: *posted_at,
                    review: None,
                    updated_at: position,
                    revision,
                },
            );
            return;
        }
        let Some(record) = self.orders.get_mut(&id) else {
            return; // events of an order never posted: nothing to attach them to
        };
        let state = order::evolve(
            OrderState {
                order: Some(record.order.clone()),
            },
            event,
        );
        if let Some(order) = state.order {
            record.order = order;
        }
        record.updated_at = position;
        record.revision = revision;
        if let OrderEvent::OrderReviewed {
            stars,
            tags,
            text,
            at,
            ..
        } = event
        {
            record.review = Some(Review {
                stars: *stars,
                tags: tags.clone(),
                text: text.clone(),
                at: *at,
            });
        }
        let (phase, workers) = (record.order.phase, record.order.workers());
        if let Some((old_phase, old_workers)) = before {
            if old_phase != phase {
                if let Some(set) = self.by_phase.get_mut(&old_phase) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.by_phase.remove(&old_phase);
                    }
                }
                self.by_phase.entry(phase).or_default().insert(id);
            }
            for w in old_workers.iter().filter(|w| !workers.contains(w)) {
                if let Some(set) = self.by_worker.get_mut(w) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.by_worker.remove(w);
                    }
                }
            }
            for w in workers.iter().filter(|w| !old_workers.contains(w)) {
                self.by_worker.entry(*w).or_default().insert(id);
            }
        }
    }
}

impl ReadModel for OrdersView {
    const NAME: &'static str = "orders";

    fn apply_record(&mut self, record: &DomainRecord, event: &RecordedEvent) {
        if let DomainRecord::Order(id, e) = record {
            self.apply_order(*id, e, event);
        }
    }
}
