//! The worker read model: profile (employing company, certificates, credit standing, completed
//! visits), schedule (accepted slots by window start) and the matching-pool facts derived from
//! them (eligible now, booked during a window).
//!
//! Skills are the worker's skill certificates. A registration opens the profile (with the
//! employing company named there until a home-visit certificate names one), so a registered
//! worker has a profile from the registration's position on; declared skills, home location and
//! contracts are in the [`matching_view`](crate::matching_view), which the dispatcher uses;
//! availability has no events yet.

use std::collections::BTreeMap;

use daojia_domain::catalog::SkillKind;
use daojia_domain::certificates::{CertificateEvent, CertificateKind, CertificateStatus};
use daojia_domain::credit::{self, CreditEvent, CreditState, Standing, Subject};
use daojia_domain::order::{ServiceWindow, SlotIndex};
use daojia_domain::{CertificateId, CompanyId, OrderEvent, OrderId, Timestamp, WorkerId};
use daojia_store::RecordedEvent;
use serde::{Deserialize, Serialize};

use crate::decode::DomainRecord;
use crate::runtime::ReadModel;

/// A certificate as the worker's profile shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    /// Kind.
    pub kind: CertificateKind,
    /// Issuing (employing) company.
    pub company: CompanyId,
    /// End of validity.
    pub valid_until: Timestamp,
    /// Suspended by the registry.
    pub suspended: bool,
    /// Revoked for good.
    pub revoked: bool,
}

impl CertificateInfo {
    /// Status at `now` (revoked, then suspended, then expired, else valid).
    pub fn status(&self, now: Timestamp) -> CertificateStatus {
        if self.revoked {
            CertificateStatus::Revoked
        } else if self.suspended {
            CertificateStatus::Suspended
        } else if now >= self.valid_until {
            CertificateStatus::Expired
        } else {
            CertificateStatus::Valid
        }
    }
}

/// Where a booked slot is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BookingStatus {
    /// Accepted, not started.
    Accepted,
    /// Checked in at the door.
    CheckedIn,
    /// The worker completed their part.
    Completed,
}

/// One slot a worker holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    /// Order.
    pub order: OrderId,
    /// Slot.
    pub slot: SlotIndex,
    /// When.
    pub window: ServiceWindow,
    /// Status.
    pub status: BookingStatus,
}

/// A worker's profile and schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerProfile {
    /// Worker.
    pub worker: WorkerId,
    /// Employing company (of the latest home-visit certificate; before one, of the registration).
    pub company: Option<CompanyId>,
    /// Certificates by id.
    pub certificates: BTreeMap<CertificateId, CertificateInfo>,
    /// Slots completed so far.
    pub completed_visits: u32,
    /// Bookings by (window start, order, slot); cancelled and withdrawn slots are removed.
    #[serde(with = "crate::state_repr::pairs")]
    pub schedule: BTreeMap<(Timestamp, OrderId, SlotIndex), Booking>,
    #[serde(with = "crate::state_repr::credit_state")]
    credit: CreditState,
}

impl WorkerProfile {
    /// The profile of a worker no event has filled in yet.
    pub fn new(worker: WorkerId) -> Self {
        WorkerProfile {
            worker,
            company: None,
            certificates: BTreeMap::new(),
            completed_visits: 0,
            schedule: BTreeMap::new(),
            credit: CreditState::new(Subject::Worker(worker)),
        }
    }

    /// Credit standing (in the matching pool only when good or warned).
    pub fn standing(&self) -> Standing {
        self.credit.standing
    }

    /// Holds a valid home-visit certificate at `now`.
    pub fn home_visit_valid(&self, now: Timestamp) -> bool {
        self.certificates.values().any(|c| {
            c.kind == CertificateKind::HomeVisit && c.status(now) == CertificateStatus::Valid
        })
    }

    /// Valid skill certificates at `now`.
    pub fn skills(&self, now: Timestamp) -> Vec<&SkillKind> {
        self.certificates
            .values()
            .filter(|c| c.status(now) == CertificateStatus::Valid)
            .filter_map(|c| match &c.kind {
                CertificateKind::Skill(skill) => Some(skill),
                CertificateKind::HomeVisit => None,
            })
            .collect()
    }

    /// In the matching pool at `now`: standing allows taking orders and the home-visit
    /// certificate is valid (the contract has no events yet, so it is not checked here).
    pub fn in_matching_pool(&self, now: Timestamp) -> bool {
        self.standing().may_take_orders().is_ok() && self.home_visit_valid(now)
    }

    /// Whether a booking not yet completed overlaps `window` (no double booking).
    pub fn is_booked_during(&self, window: ServiceWindow) -> bool {
        self.schedule_between(window.start, window.end)
            .any(|b| b.status != BookingStatus::Completed)
    }

    /// Bookings whose window overlaps `[from, to)`, by start.
    pub fn schedule_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Iterator<Item = &Booking> {
        self.schedule
            .values()
            .filter(move |b| b.window.start < to && b.window.end > from)
    }
}

/// Worker profiles and schedules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkersView {
    workers: BTreeMap<WorkerId, WorkerProfile>,
    certificate_holder: BTreeMap<CertificateId, WorkerId>,
    windows: BTreeMap<OrderId, ServiceWindow>,
    holders: BTreeMap<OrderId, BTreeMap<SlotIndex, WorkerId>>,
}

impl WorkersView {
    /// A worker's profile, if any event named them.
    pub fn get(&self, worker: WorkerId) -> Option<&WorkerProfile> {
        self.workers.get(&worker)
    }

    /// Workers of a company (by their home-visit certificate), by id.
    pub fn of_company(&self, company: CompanyId) -> impl Iterator<Item = &WorkerProfile> {
        self.workers
            .values()
            .filter(move |w| w.company == Some(company))
    }

    fn profile(&mut self, worker: WorkerId) -> &mut WorkerProfile {
        self.workers
            .entry(worker)
            .or_insert_with(|| WorkerProfile::new(worker))
    }

    fn certificate(&mut self, id: CertificateId) -> Option<&mut CertificateInfo> {
        let worker = *self.certificate_holder.get(&id)?;
        self.workers.get_mut(&worker)?.certificates.get_mut(&id)
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
                let profile = self.profile(*worker);
                if *kind == CertificateKind::HomeVisit {
                    profile.company = Some(*company);
                }
                profile.certificates.insert(
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
            let profile = self.profile(worker);
            let state = std::mem::replace(
                &mut profile.credit,
                CreditState::new(Subject::Worker(worker)),
            );
            profile.credit = credit::evolve(state, event);
        }
    }

    fn unbook(&mut self, order: OrderId, slot: SlotIndex, keep_completed: bool) {
        let Some(worker) = self.holders.get_mut(&order).and_then(|h| h.remove(&slot)) else {
            return;
        };
        let Some(window) = self.windows.get(&order).copied() else {
            return;
        };
        if let Some(profile) = self.workers.get_mut(&worker) {
            let key = (window.start, order, slot);
            let completed = profile
                .schedule
                .get(&key)
                .is_some_and(|b| b.status == BookingStatus::Completed);
            if !(keep_completed && completed) {
                profile.schedule.remove(&key);
            }
        }
    }

    fn set_status(
        &mut self,
        order: OrderId,
        slot: SlotIndex,
        worker: WorkerId,
        status: BookingStatus,
    ) {
        let Some(window) = self.windows.get(&order).copied() else {
            return;
        };
        let profile = self.profile(worker);
        if let Some(b) = profile.schedule.get_mut(&(window.start, order, slot)) {
            b.status = status;
        }
        if status == BookingStatus::Completed {
            profile.completed_visits = profile.completed_visits.saturating_add(1);
        }
    }

    fn apply_order(&mut self, order: OrderId, event: &OrderEvent) {
        match event {
            OrderEvent::OrderPosted { window, .. } => {
                self.windows.insert(order, *window);
            }
            OrderEvent::OrderAccepted { slot, worker, .. } => {
                let Some(window) = self.windows.get(&order).copied() else {
                    return;
                };
                self.holders
                    .entry(order)
                    .or_default()
                    .insert(*slot, *worker);
                self.profile(*worker).schedule.insert(
                    (window.start, order, *slot),
                    Booking {
                        order,
                        slot: *slot,
                        window,
                        status: BookingStatus::Accepted,
                    },
                );
            }
            OrderEvent::WorkerCheckedIn { slot, worker, .. } => {
                self.set_status(order, *slot, *worker, BookingStatus::CheckedIn);
            }
            OrderEvent::ServiceCompleted { slot, worker, .. } => {
                self.set_status(order, *slot, *worker, BookingStatus::Completed);
            }
            OrderEvent::WorkerWithdrew { slot, .. }
            | OrderEvent::WorkerNoShowRecorded { slot, .. } => {
                self.unbook(order, *slot, false);
            }
            OrderEvent::OrderCancelled { .. } | OrderEvent::CustomerNoShowRecorded { .. } => {
                let slots: Vec<SlotIndex> = self
                    .holders
                    .get(&order)
                    .map(|h| h.keys().copied().collect())
                    .unwrap_or_default();
                for slot in slots {
                    self.unbook(order, slot, true);
                }
            }
            _ => {}
        }
    }
}

impl ReadModel for WorkersView {
    const NAME: &'static str = "workers";

    fn apply_record(&mut self, record: &DomainRecord, _event: &RecordedEvent) {
        match record {
            DomainRecord::Order(id, e) => self.apply_order(*id, e),
            DomainRecord::Certificate(e) => self.apply_certificate(e),
            DomainRecord::Credit(e) => self.apply_credit(e),
            DomainRecord::Worker(
                worker,
                daojia_domain::worker::WorkerEvent::WorkerRegistered { company, .. },
            ) => {
                let profile = self.profile(*worker);
                profile.company.get_or_insert(*company);
            }
            _ => {}
        }
    }
}
