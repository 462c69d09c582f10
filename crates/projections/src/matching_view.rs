//! The matching view: what a dispatcher needs to match workers to orders. Per worker: standing
//! (active, in retraining, suspended, black-listed), declared skills, certificates, platform
//! contracts, home location and the windows they are booked for (accepted, not yet finished).
//! Per order still open: service, required certificates, window, location, the slots without a
//! worker, the offers out and the workers who declined or let an offer lapse.
//!
//! [`MatchingView::eligible_candidates`] applies the hard filters of the order decision (standing,
//! valid home-visit certificate, contract in force, required skill certificates) plus "no
//! overlapping booking"; scoring and distance are the matcher's. There is no service-area event
//! yet, so the home location is the only place known for a worker (the matcher's radius applies
//! around it); live locations are telemetry and never reach a read model.
//! [`MatchingWorker::credentials`] gives the `WorkerCredentials` an offer decision takes.

use std::collections::{BTreeMap, BTreeSet};

use daojia_domain::catalog::{Category, SkillKind};
use daojia_domain::certificates::{CertificateEvent, CertificateKind, CertificateStatus};
use daojia_domain::credit::{self, CreditEvent, CreditState, Standing, Subject};
use daojia_domain::order::{self, GeoPoint, Order, ServiceWindow, SlotIndex, WorkerCredentials};
use daojia_domain::worker::{ContractNumber, WorkerEvent};
use daojia_domain::{
    CertificateId, CompanyId, OrderEvent, OrderId, OrderPhase, OrderState, Timestamp, WorkerId,
};
use daojia_store::RecordedEvent;
use serde::{Deserialize, Serialize};

use crate::decode::DomainRecord;
use crate::runtime::ReadModel;
use crate::workers::CertificateInfo;

/// Where a worker stands for matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PoolStatus {
    /// In the matching pool (good standing or warned).
    Active,
    /// Out of the pool until training is completed.
    InRetraining,
    /// Suspended.
    Suspended,
    /// Black-listed.
    BlackListed,
}

impl From<Standing> for PoolStatus {
    fn from(standing: Standing) -> Self {
        match standing {
            Standing::Good | Standing::Warned => PoolStatus::Active,
            Standing::InRetraining => PoolStatus::InRetraining,
            Standing::Suspended => PoolStatus::Suspended,
            Standing::BlackListed => PoolStatus::BlackListed,
        }
    }
}

/// A signed platform contract (规范合同, with injury cover).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractTerm {
    /// Number.
    pub number: ContractNumber,
    /// Start of validity.
    pub valid_from: Timestamp,
    /// End of validity (exclusive).
    pub valid_until: Timestamp,
}

impl ContractTerm {
    /// In force at `now`.
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.valid_from <= now && now < self.valid_until
    }
}

/// A window a worker is booked for: a slot accepted and not yet completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookedWindow {
    /// Order.
    pub order: OrderId,
    /// Slot.
    pub slot: SlotIndex,
    /// When.
    pub window: ServiceWindow,
}

/// A worker as the dispatcher sees them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchingWorker {
    /// Worker.
    pub worker: WorkerId,
    /// Employing company (from registration).
    pub company: Option<CompanyId>,
    /// Skills declared at registration (certificates prove them, see
    /// [`skill_certificates`](Self::skill_certificates)).
    pub declared_skills: Vec<SkillKind>,
    /// Home location (`None` until registered).
    pub home: Option<GeoPoint>,
    /// Platform contracts in signing order.
    pub contracts: Vec<ContractTerm>,
    /// Certificates by id.
    pub certificates: BTreeMap<CertificateId, CertificateInfo>,
    /// Booked windows by (start, order, slot).
    #[serde(with = "crate::state_repr::pairs")]
    pub booked: BTreeMap<(Timestamp, OrderId, SlotIndex), BookedWindow>,
    #[serde(with = "crate::state_repr::credit_state")]
    credit: CreditState,
}

impl MatchingWorker {
    fn new(worker: WorkerId) -> Self {
        MatchingWorker {
            worker,
            company: None,
            declared_skills: Vec::new(),
            home: None,
            contracts: Vec::new(),
            certificates: BTreeMap::new(),
            booked: BTreeMap::new(),
            credit: CreditState::new(Subject::Worker(worker)),
        }
    }

    /// Credit standing.
    pub fn standing(&self) -> Standing {
        self.credit.standing
    }

    /// Standing as a matching status.
    pub fn status(&self) -> PoolStatus {
        self.standing().into()
    }

    /// Registered (has a profile with a home location).
    pub fn registered(&self) -> bool {
        self.home.is_some()
    }

    /// Certificate kinds valid at `now`.
    pub fn valid_certificates(&self, now: Timestamp) -> Vec<&CertificateKind> {
        self.certificates
            .values()
            .filter(|c| c.status(now) == CertificateStatus::Valid)
            .map(|c| &c.kind)
            .collect()
    }

    /// Holds a home-visit certificate valid at `now`.
    pub fn home_visit_valid(&self, now: Timestamp) -> bool {
        self.valid_certificates(now)
            .iter()
            .any(|k| **k == CertificateKind::HomeVisit)
    }

    /// Skill certificates valid at `now`, without repeats, in order.
    pub fn skill_certificates(&self, now: Timestamp) -> Vec<SkillKind> {
        let skills: BTreeSet<&SkillKind> = self
            .valid_certificates(now)
            .into_iter()
            .filter_map(|k| match k {
                CertificateKind::Skill(skill) => Some(skill),
                CertificateKind::HomeVisit => None,
            })
            .collect();
        skills.into_iter().cloned().collect()
    }

    /// Has a contract in force at `now`.
    pub fn contracted(&self, now: Timestamp) -> bool {
        self.contracts.iter().any(|c| c.in_force(now))
    }

    /// Booked for a window overlapping `window`.
    pub fn booked_during(&self, window: ServiceWindow) -> bool {
        self.booked
            .values()
            .take_while(|b| b.window.start < window.end)
            .any(|b| b.window.end > window.start)
    }

    /// What an offer or acceptance decision needs to know about the worker at `now`.
    pub fn credentials(&self, now: Timestamp) -> WorkerCredentials {
        WorkerCredentials {
            worker: self.worker,
            standing: self.standing(),
            home_visit_certificate_valid: self.home_visit_valid(now),
            skills: self.skill_certificates(now),
            contract_signed: self.contracted(now),
        }
    }

    /// Passes the hard filters for work needing `required` during `window`, decided at `now`.
    pub fn eligible(&self, required: &[SkillKind], window: ServiceWindow, now: Timestamp) -> bool {
        let skills = self.skill_certificates(now);
        self.registered()
            && self.status() == PoolStatus::Active
            && self.home_visit_valid(now)
            && self.contracted(now)
            && required.iter().all(|r| skills.contains(r))
            && !self.booked_during(window)
    }
}

/// An order still open for workers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenOrder {
    /// The order as the order aggregate folds it.
    #[serde(with = "crate::state_repr::order")]
    pub order: Order,
    /// Service category.
    pub category: Category,
    /// When posted.
    pub posted_at: Timestamp,
}

impl OpenOrder {
    /// Slots nobody holds yet, by index.
    pub fn open_slots(&self) -> Vec<SlotIndex> {
        self.order
            .slots
            .iter()
            .filter(|(_, s)| s.assignment.is_none())
            .map(|(i, _)| *i)
            .collect()
    }

    /// Workers with an outstanding offer.
    pub fn offered_to(&self) -> Vec<WorkerId> {
        self.order
            .slots
            .iter()
            .flat_map(|(_, s)| s.offers.iter().map(|o| o.worker))
            .collect()
    }

    /// Workers who declined, let an offer lapse, withdrew or did not show (not offered again).
    pub fn declined(&self) -> &[WorkerId] {
        &self.order.passed_over
    }

    /// Whether `worker` holds a slot, has an offer, or was passed over.
    pub fn involves(&self, worker: WorkerId) -> bool {
        self.order.passed_over.contains(&worker)
            || self.order.workers().contains(&worker)
            || self.offered_to().contains(&worker)
    }
}

/// Workers and open orders for the dispatcher.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredMatchingView")]
pub struct MatchingView {
    workers: BTreeMap<WorkerId, MatchingWorker>,
    certificate_holder: BTreeMap<CertificateId, WorkerId>,
    /// Open orders (phase `Open`); an order leaves when it starts, is served or ends.
    open: BTreeMap<OrderId, OpenOrder>,
    /// Window and slot holders of orders with booked workers (until they end).
    #[serde(with = "crate::state_repr::pairs")]
    bookings: BTreeMap<OrderId, (ServiceWindow, BTreeMap<SlotIndex, WorkerId>)>,
    /// The open orders with an outstanding offer, by the worker offered: derived from `open`,
    /// so that a worker's pending offers are found without scanning every open order (each
    /// notification stream's start asks). Not stored in checkpoints; rebuilt when one is read.
    #[serde(skip_serializing)]
    offered: BTreeMap<WorkerId, BTreeSet<OrderId>>,
}

/// A [`MatchingView`] as checkpoints hold it (without the derived offer index).
#[derive(Deserialize)]
struct StoredMatchingView {
    workers: BTreeMap<WorkerId, MatchingWorker>,
    certificate_holder: BTreeMap<CertificateId, WorkerId>,
    open: BTreeMap<OrderId, OpenOrder>,
    #[serde(with = "crate::state_repr::pairs")]
    bookings: BTreeMap<OrderId, (ServiceWindow, BTreeMap<SlotIndex, WorkerId>)>,
}

impl From<StoredMatchingView> for MatchingView {
    fn from(stored: StoredMatchingView) -> Self {
        let mut offered: BTreeMap<WorkerId, BTreeSet<OrderId>> = BTreeMap::new();
        for (id, open) in &stored.open {
            for worker in open.offered_to() {
                offered.entry(worker).or_default().insert(*id);
            }
        }
        MatchingView {
            workers: stored.workers,
            certificate_holder: stored.certificate_holder,
            open: stored.open,
            bookings: stored.bookings,
            offered,
        }
    }
}

impl MatchingView {
    /// A worker, if any event named them.
    pub fn worker(&self, worker: WorkerId) -> Option<&MatchingWorker> {
        self.workers.get(&worker)
    }

    /// Every worker, by id.
    pub fn workers(&self) -> impl Iterator<Item = &MatchingWorker> {
        self.workers.values()
    }

    /// An open order.
    pub fn open_order(&self, order: OrderId) -> Option<&OpenOrder> {
        self.open.get(&order)
    }

    /// Every open order, by id (unsorted and unfiltered: cheap to scan).
    pub fn open_orders(&self) -> impl Iterator<Item = &OpenOrder> {
        self.open.values()
    }

    /// The open orders with an outstanding offer to `worker`.
    pub fn offered_to_worker(&self, worker: WorkerId) -> impl Iterator<Item = &OpenOrder> {
        self.offered
            .get(&worker)
            .into_iter()
            .flatten()
            .filter_map(|id| self.open.get(id))
    }

    /// Open orders with at least one slot nobody holds, by window start then id.
    pub fn awaiting_workers(&self) -> Vec<&OpenOrder> {
        let mut v: Vec<&OpenOrder> = self
            .open
            .values()
            .filter(|o| !o.open_slots().is_empty())
            .collect();
        v.sort_by_key(|o| (o.order.window.start, o.order.id));
        v
    }

    /// Workers passing the hard filters for work needing `required` during `window` at `now`,
    /// by id.
    pub fn eligible_candidates(
        &self,
        required: &[SkillKind],
        window: ServiceWindow,
        now: Timestamp,
    ) -> Vec<&MatchingWorker> {
        self.workers
            .values()
            .filter(|w| w.eligible(required, window, now))
            .collect()
    }

    /// Candidates for an open order at `now`: eligible for its certificates and window, and not
    /// already holding, offered or passed over on it. Empty for an order that is not open.
    pub fn candidates_for(&self, order: OrderId, now: Timestamp) -> Vec<&MatchingWorker> {
        let Some(open) = self.open.get(&order) else {
            return Vec::new();
        };
        let o = &open.order;
        self.eligible_candidates(&o.required_certificates, o.window, now)
            .into_iter()
            .filter(|w| !open.involves(w.worker))
            .collect()
    }

    fn profile(&mut self, worker: WorkerId) -> &mut MatchingWorker {
        self.workers
            .entry(worker)
            .or_insert_with(|| MatchingWorker::new(worker))
    }

    fn certificate(&mut self, id: CertificateId) -> Option<&mut CertificateInfo> {
        let worker = *self.certificate_holder.get(&id)?;
        self.workers.get_mut(&worker)?.certificates.get_mut(&id)
    }

    fn apply_worker(&mut self, worker: WorkerId, event: &WorkerEvent) {
        match event {
            WorkerEvent::WorkerRegistered {
                company,
                skills,
                home,
                ..
            } => {
                let w = self.profile(worker);
                w.company = Some(*company);
                w.declared_skills = skills.clone();
                w.home = Some(*home);
            }
            WorkerEvent::ContractSigned {
                contract,
                valid_from,
                valid_until,
                ..
            } => self.profile(worker).contracts.push(ContractTerm {
                number: contract.clone(),
                valid_from: *valid_from,
                valid_until: *valid_until,
            }),
        }
    }

    fn apply_certificate(&mut self, event: &CertificateEvent) {
        match event {
            CertificateEvent::CertificateIssued {
                certificate_id,
                worker,
                company,
                kind,
                valid_until,
                ..
            } => {
                self.certificate_holder.insert(*certificate_id, *worker);
                self.profile(*worker).certificates.insert(
                    *certificate_id,
                    CertificateInfo {
                        kind: kind.clone(),
                        company: *company,
                        valid_until: *valid_until,
                        suspended: false,
                        revoked: false,
                    },
                );
            }
            CertificateEvent::CertificateRenewed {
                certificate_id,
                valid_until,
                ..
            } => {
                if let Some(c) = self.certificate(*certificate_id) {
                    c.valid_until = *valid_until;
                }
            }
            CertificateEvent::CertificateSuspended { certificate_id, .. } => {
                if let Some(c) = self.certificate(*certificate_id) {
                    c.suspended = true;
                }
            }
            CertificateEvent::CertificateReinstated { certificate_id, .. } => {
                if let Some(c) = self.certificate(*certificate_id) {
                    c.suspended = false;
                }
            }
            CertificateEvent::CertificateRevoked { certificate_id, .. } => {
                if let Some(c) = self.certificate(*certificate_id) {
                    c.revoked = true;
                }
            }
        }
    }

    fn apply_credit(&mut self, event: &CreditEvent) {
        if let Subject::Worker(worker) = crate::credit::subject_of(event) {
            let w = self.profile(worker);
            let state = std::mem::replace(&mut w.credit, CreditState::new(Subject::Worker(worker)));
            w.credit = credit::evolve(state, event);
        }
    }

    fn book(&mut self, order: OrderId, slot: SlotIndex, worker: WorkerId, window: ServiceWindow) {
        let (_, holders) = self
            .bookings
            .entry(order)
            .or_insert_with(|| (window, BTreeMap::new()));
        if let Some(previous) = holders.insert(slot, worker) {
            self.unbook_worker(order, slot, previous, window);
        }
        self.profile(worker).booked.insert(
            (window.start, order, slot),
            BookedWindow {
                order,
                slot,
                window,
            },
        );
    }

    fn unbook_worker(
        &mut self,
        order: OrderId,
        slot: SlotIndex,
        worker: WorkerId,
        window: ServiceWindow,
    ) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.booked.remove(&(window.start, order, slot));
        }
    }

    /// Frees one slot's booking.
    fn unbook(&mut self, order: OrderId, slot: SlotIndex) {
        let Some((window, holders)) = self.bookings.get_mut(&order) else {
            return;
        };
        let window = *window;
        let Some(worker) = holders.remove(&slot) else {
            return;
        };
        if holders.is_empty() {
            self.bookings.remove(&order);
        }
        self.unbook_worker(order, slot, worker, window);
    }

    /// Frees every booking of an order that ended.
    fn unbook_all(&mut self, order: OrderId) {
        let Some((window, holders)) = self.bookings.remove(&order) else {
            return;
        };
        for (slot, worker) in holders {
            self.unbook_worker(order, slot, worker, window);
        }
    }

    fn apply_order(&mut self, id: OrderId, event: &OrderEvent) {
        let offered_before = self.open.get(&id).map(OpenOrder::offered_to);
        self.apply_open_order(id, event);
        let offered_after = self.open.get(&id).map(OpenOrder::offered_to);
        if offered_before != offered_after {
            for worker in offered_before.unwrap_or_default() {
                if let Some(orders) = self.offered.get_mut(&worker) {
                    orders.remove(&id);
                    if orders.is_empty() {
                        self.offered.remove(&worker);
                    }
                }
            }
            for worker in offered_after.unwrap_or_default() {
                self.offered.entry(worker).or_default().insert(id);
            }
        }
    }

    fn apply_open_order(&mut self, id: OrderId, event: &OrderEvent) {
        // The open order, folded as the command side folds it.
        if let OrderEvent::OrderPosted {
            category,
            posted_at,
            ..
        } = event
        {
            if !self.open.contains_key(&id)
                && let Some(order) = order::evolve(OrderState::default(), event).order
            {
                let open = OpenOrder {
                    order,
                    category: *category,
                    posted_at: *posted_at,
                };
                self.open.insert(id, open);
            }
        } else if let Some(open) = self.open.get_mut(&id) {
            let state = OrderState {
                order: Some(open.order.clone()),
            };
            if let Some(order) = order::evolve(state, event).order {
                open.order = order;
            }
            if open.order.phase != OrderPhase::Open {
                self.open.remove(&id);
            }
        }
        // Booked windows.
        match event {
            OrderEvent::OrderAccepted { slot, worker, .. } => {
                let window = self
                    .open
                    .get(&id)
                    .map(|o| o.order.window)
                    .or_else(|| self.bookings.get(&id).map(|(w, _)| *w));
                if let Some(window) = window {
                    self.book(id, *slot, *worker, window);
                }
            }
            OrderEvent::ServiceCompleted { slot, .. }
            | OrderEvent::WorkerWithdrew { slot, .. }
            | OrderEvent::WorkerNoShowRecorded { slot, .. } => self.unbook(id, *slot),
            OrderEvent::OrderReplanned { removed, .. } => {
                for slot in removed {
                    self.unbook(id, *slot);
                }
            }
            OrderEvent::OrderCancelled { .. }
            | OrderEvent::CustomerNoShowRecorded { .. }
            | OrderEvent::OrderServed { .. } => self.unbook_all(id),
            _ => {}
        }
    }
}

impl ReadModel for MatchingView {
    const NAME: &'static str = "matching";

    fn apply_record(&mut self, record: &DomainRecord, _event: &RecordedEvent) {
        match record {
            DomainRecord::Worker(id, e) => self.apply_worker(*id, e),
            DomainRecord::Certificate(e) => self.apply_certificate(e),
            DomainRecord::Credit(e) => self.apply_credit(e),
            DomainRecord::Order(id, e) => self.apply_order(*id, e),
            _ => {}
        }
    }
}
