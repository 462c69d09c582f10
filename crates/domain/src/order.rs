//! The order aggregate (stream `order-<uuid>`): post → offer/grab → accept → check-in →
//! complete → review, with decline/expiry and re-offer, cancellation with policy fees, no-shows
//! on either side, re-planning of big orders whose worker slots fill independently, disputes
//! and complaints. [`decide`] holds every rule; [`evolve`] applies facts without judging them.

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Category, Quote, ServiceCode, SkillKind};
use crate::credit::Standing;
use crate::error::{DomainError, Ineligibility};
use crate::ids::{ComplaintId, CustomerId, DisputeId, OrderId, WorkerId};
use crate::money::Fen;
use crate::order_terms::OrderTerms;
use crate::time::{Minutes, Timestamp};

/// Longest review, complaint, dispute or cancellation text, in characters.
pub const MAX_TEXT_CHARS: usize = 1_000;
/// Most tags on one review.
pub const MAX_REVIEW_TAGS: usize = 10;

/// A WGS-84 position in degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Latitude, −90..=90.
    pub lat: f64,
    /// Longitude, −180..=180.
    pub lon: f64,
}

impl GeoPoint {
    /// Validates the range (and refuses NaN and infinities).
    pub fn new(lat: f64, lon: f64) -> Result<Self, DomainError> {
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(DomainError::InvalidLocation { lat, lon });
        }
        Ok(Self { lat, lon })
    }

    /// Great-circle distance in metres (haversine, mean earth radius).
    pub fn distance_m(self, other: GeoPoint) -> f64 {
        const EARTH_RADIUS_M: f64 = 6_371_008.8;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

/// When the service is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceWindow {
    /// Start of the service.
    pub start: Timestamp,
    /// End of the service.
    pub end: Timestamp,
}

/// How workers are found for an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum DispatchMode {
    /// Platform offers, one worker at a time, cascading on decline or expiry (一键接单).
    Platform,
    /// Grab pool (抢单) until `deadline`, then platform offers.
    GrabPool {
        /// When the pool falls back to platform offers.
        deadline: Timestamp,
    },
    /// A favourite worker is offered first (复购), then platform offers.
    Preferred {
        /// The favourite.
        worker: WorkerId,
    },
    /// Emergency one-tap call for elders (一键呼叫): parallel offers.
    Emergency,
}

/// Who acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The order's customer.
    Customer(CustomerId),
    /// A worker.
    Worker(WorkerId),
    /// Platform operations staff.
    Ops,
}

/// Where an order is in its lifecycle (slots have their own finer state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderPhase {
    /// Posted; slots being offered, grabbed and accepted; nobody has checked in.
    Open,
    /// At least one worker checked in.
    InService,
    /// Every slot completed; awaiting review.
    Served,
    /// Reviewed.
    Reviewed,
    /// Cancelled by the customer or ops.
    Cancelled,
    /// Ended because the customer was not there.
    CustomerNoShow,
}

/// A worker slot of an order (0-based; big orders have several).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SlotIndex(pub u32);

/// What the command service knows about a worker when it offers, accepts or grabs: loaded from
/// the worker's credit stream and certificate registry, so that `decide` stays pure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerCredentials {
    /// The worker.
    pub worker: WorkerId,
    /// Credit standing.
    pub standing: Standing,
    /// Holds a valid home-visit certificate.
    pub home_visit_certificate_valid: bool,
    /// Valid skill certificates held.
    pub skills: Vec<SkillKind>,
    /// Has a signed platform contract with injury cover (规范合同).
    pub contract_signed: bool,
}

/// The completion checklist a worker fills in at the end of a visit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checklist {
    /// Tools were disinfected before use.
    pub tools_disinfected: bool,
    /// The work area was tidied.
    pub area_tidied: bool,
    /// The customer confirmed the work on the worker's phone.
    pub customer_confirmed: bool,
}

/// Review tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewTag {
    /// Arrived late.
    Late,
    /// Tools were not disinfected.
    ToolsNotDisinfected,
    /// Careless work.
    Careless,
    /// Rude behaviour.
    Rude,
    /// Excellent service.
    Excellent,
    /// On time.
    Punctual,
    /// Professional.
    Professional,
}

/// A star rating, 1..=5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Stars(u8);

impl Stars {
    /// Validates 1..=5.
    pub fn new(stars: u8) -> Result<Self, DomainError> {
        if (1..=5).contains(&stars) {
            Ok(Self(stars))
        } else {
            Err(DomainError::InvalidRating { stars })
        }
    }

    /// The number of stars.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Stars {
    type Error = DomainError;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Stars> for u8 {
    fn from(stars: Stars) -> Self {
        stars.0
    }
}

/// Complaint categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintCategory {
    /// Poor quality of work.
    Quality,
    /// Rude or abusive behaviour.
    Conduct,
    /// Property damage.
    Damage,
    /// Safety or hygiene.
    Safety,
    /// Overcharging or side payments.
    Pricing,
}

/// How serious an upheld complaint is (credit rules key on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Minor.
    Minor,
    /// Major.
    Major,
    /// Severe (abuse, theft, injury).
    Severe,
}

/// The outcome of a complaint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplaintOutcome {
    /// The complaint is substantiated.
    Upheld {
        /// Severity.
        severity: Severity,
        /// Refund to the customer.
        refund: Fen,
    },
    /// Not substantiated.
    Dismissed,
}

/// Who a dispute found at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Nobody.
    Nobody,
    /// The order's customer.
    Customer(CustomerId),
    /// A worker on the order.
    Worker(WorkerId),
}

/// The outcome of a mediated dispute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeOutcome {
    /// Refund to the customer.
    pub refund: Fen,
    /// Compensation to the customer or worker beyond the refund (paid by the at-fault party
    /// or the injury cover).
    pub compensation: Fen,
    /// Who was at fault (credit rules key on it).
    pub fault: Fault,
    /// Mediator's note.
    pub note: String,
}

/// Ways of reporting a no-show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoShow {
    /// The worker of `slot` did not come.
    Worker {
        /// The slot.
        slot: SlotIndex,
    },
    /// The customer was not there; reported by a worker of the order.
    Customer {
        /// The reporting worker.
        reported_by: WorkerId,
    },
}

/// Posting a new order.
#[derive(Clone, Debug, PartialEq)]
pub struct PostOrder {
    /// Fresh id chosen by the caller.
    pub order_id: OrderId,
    /// The customer.
    pub customer: CustomerId,
    /// The customer's credit standing (black-listed customers cannot post).
    pub customer_standing: Standing,
    /// The service type.
    pub service: ServiceCode,
    /// Units of the service (hours, visits, days, months or m²).
    pub quantity: u32,
    /// Workers needed (big orders need several).
    pub workers: u32,
    /// When.
    pub window: ServiceWindow,
    /// Where.
    pub location: GeoPoint,
    /// How workers are found.
    pub dispatch: DispatchMode,
    /// Terms from configuration.
    pub terms: OrderTerms,
}

/// Commands on an order.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderCommand {
    /// Post the order (quote fixed now).
    Post(Box<PostOrder>),
    /// Offer a slot to one worker (dispatcher).
    Offer {
        /// The slot.
        slot: SlotIndex,
        /// The worker.
        worker: WorkerCredentials,
    },
    /// The offered worker accepts.
    Accept {
        /// The slot.
        slot: SlotIndex,
        /// The worker.
        worker: WorkerCredentials,
    },
    /// The offered worker declines.
    Decline {
        /// The slot.
        slot: SlotIndex,
        /// The worker.
        worker: WorkerId,
    },
    /// The dispatcher records that an unanswered offer lapsed.
    ExpireOffer {
        /// The slot.
        slot: SlotIndex,
        /// The worker.
        worker: WorkerId,
    },
    /// A worker grabs the first open slot from the grab pool.
    Grab {
        /// The worker.
        worker: WorkerCredentials,
    },
    /// A worker checks in at the door.
    CheckIn {
        /// The slot.
        slot: SlotIndex,
        /// The worker.
        worker: WorkerId,
        /// Where the worker is.
        location: GeoPoint,
    },
    /// A worker completes their part of the service.
    Complete {
        /// The slot.
        slot: SlotIndex,
        /// The worker.
        worker: WorkerId,
        /// The checklist.
        checklist: Checklist,
    },
    /// The customer reviews the served order.
    Review {
        /// Who reviews.
        customer: CustomerId,
        /// Rating.
        stars: Stars,
        /// Tags.
        tags: Vec<ReviewTag>,
        /// Free text.
        text: String,
    },
    /// Cancel: the customer or ops cancels the order; a worker withdraws from their slot.
    Cancel {
        /// Who cancels.
        by: Party,
        /// Why.
        reason: String,
    },
    /// Report a no-show.
    ReportNoShow(NoShow),
    /// The customer changes how many workers a not-yet-started order needs.
    Replan {
        /// Who asks.
        customer: CustomerId,
        /// New number of workers.
        workers: u32,
    },
    /// The dispatcher passes over the favourite worker of a preferred order who cannot be
    /// offered it (busy, ineligible, out of reach), so that others may be; a no-op for other
    /// orders and once the favourite has been offered or passed over.
    SkipPreferred {
        /// Why, for the record.
        reason: String,
    },
    /// The dispatcher alerts ops that nobody has accepted an emergency call (一键呼叫) in time.
    /// Recorded once per order (a no-op once escalated); refused for other dispatch modes and
    /// once every slot is taken. When to escalate is the dispatcher's policy
    /// (`DispatchConfig::escalate_after` in the server).
    Escalate,
    /// Raise a dispute (纠纷).
    RaiseDispute {
        /// Fresh id.
        dispute_id: DisputeId,
        /// Who raises it.
        by: Party,
        /// Why.
        reason: String,
    },
    /// Ops resolves a dispute.
    ResolveDispute {
        /// The dispute.
        dispute_id: DisputeId,
        /// The outcome.
        outcome: DisputeOutcome,
    },
    /// The customer complains about a worker (投诉).
    FileComplaint {
        /// Fresh id.
        complaint_id: ComplaintId,
        /// Who complains.
        customer: CustomerId,
        /// About whom.
        against: WorkerId,
        /// Category.
        category: ComplaintCategory,
        /// Details.
        text: String,
    },
    /// Ops decides a complaint.
    ResolveComplaint {
        /// The complaint.
        complaint_id: ComplaintId,
        /// The outcome.
        outcome: ComplaintOutcome,
    },
}

/// How a slot was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TakenVia {
    /// By accepting an offer.
    Offer,
    /// By grabbing it from the pool.
    Grab,
}

/// Events of the order stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum OrderEvent {
    /// The order was posted with its quote.
    OrderPosted {
        /// Order.
        order_id: OrderId,
        /// Customer.
        customer: CustomerId,
        /// Service type.
        service: ServiceCode,
        /// Its category.
        category: Category,
        /// Skill certificates required (copied from the catalogue at posting time).
        required_certificates: Vec<SkillKind>,
        /// The price quote.
        quote: Quote,
        /// When.
        window: ServiceWindow,
        /// Where.
        location: GeoPoint,
        /// Dispatch mode.
        dispatch: DispatchMode,
        /// Terms the order is judged by.
        terms: OrderTerms,
        /// When it was posted.
        posted_at: Timestamp,
    },
    /// A slot was offered to a worker.
    OrderOffered {
        /// Slot.
        slot: SlotIndex,
        /// Worker.
        worker: WorkerId,
        /// When.
        offered_at: Timestamp,
        /// The offer lapses at this instant.
        expires_at: Timestamp,
    },
    /// A worker took a slot (by accepting an offer or grabbing it).
    OrderAccepted {
        /// Slot.
        slot: SlotIndex,
        /// Worker.
        worker: WorkerId,
        /// How.
        via: TakenVia,
        /// When.
        at: Timestamp,
    },
    /// A worker declined an offer; the slot can be re-offered to someone else.
    OfferDeclined {
        /// Slot.
        slot: SlotIndex,
        /// Worker.
        worker: WorkerId,
        /// When.
        at: Timestamp,
    },
    /// An offer lapsed unanswered; the slot can be re-offered.
    OfferExpired {
        /// Slot.
        slot: SlotIndex,
        /// Worker.
        worker: WorkerId,
        /// When.
        at: Timestamp,
    },
    /// A worker checked in at the door.
    WorkerCheckedIn {
        /// Slot.
        slot: SlotIndex,
        /// Worker.
        worker: WorkerId,
        /// When.
        at: Timestamp,
        /// Where.
        location: GeoPoint,
        /// Lateness against the window start (zero when on time).
        late_by: Minutes,
    },
    /// A worker completed their part.
    ServiceCompleted {
        /// Slot.
        slot: SlotIndex,
        /// Worker.
        worker: WorkerId,
        /// When.
        at: Timestamp,
        /// The checklist as filled in.
        checklist: Checklist,
    },
    /// Every slot completed: the order is served and can be reviewed.
    OrderServed {
        /// When.
        at: Timestamp,
    },
    /// The customer reviewed the order (schema version 2: `tags` and `text`; version 1 had
    /// only `comment`, see `events::upcast`).
    OrderReviewed {
        /// Customer.
        customer: CustomerId,
        /// Rating.
        stars: Stars,
        /// Tags.
        tags: Vec<ReviewTag>,
        /// Free text.
        text: String,
        /// Workers of the order (the review applies to each).
        workers: Vec<WorkerId>,
        /// When.
        at: Timestamp,
    },
    /// The order was cancelled by its customer or by ops.
    OrderCancelled {
        /// Who.
        by: Party,
        /// Why.
        reason: String,
        /// Notice given before the window start.
        notice: Minutes,
        /// Fee charged to the customer.
        fee: Fen,
        /// When.
        at: Timestamp,
    },
    /// A worker withdrew from an accepted slot before starting; the slot reopens.
    WorkerWithdrew {
        /// Slot.
        slot: SlotIndex,
        /// Worker.
        worker: WorkerId,
        /// Why.
        reason: String,
        /// Notice given before the window start.
        notice: Minutes,
        /// When.
        at: Timestamp,
    },
    /// The worker of a slot did not come; the slot reopens.
    WorkerNoShowRecorded {
        /// Slot.
        slot: SlotIndex,
        /// Worker.
        worker: WorkerId,
        /// When.
        at: Timestamp,
    },
    /// The customer was not there; the order ends with a fee.
    CustomerNoShowRecorded {
        /// Customer.
        customer: CustomerId,
        /// Reporting worker.
        reported_by: WorkerId,
        /// Fee charged.
        fee: Fen,
        /// When.
        at: Timestamp,
    },
    /// The number of workers changed before the start, with the new quote.
    OrderReplanned {
        /// New number of workers.
        workers: u32,
        /// New quote (same unit price and quantity).
        quote: Quote,
        /// Slots removed (were open).
        removed: Vec<SlotIndex>,
        /// Slots added.
        added: Vec<SlotIndex>,
        /// When.
        at: Timestamp,
    },
    /// The favourite worker of a preferred order was passed over; other workers may be offered
    /// it.
    PreferredWorkerSkipped {
        /// The favourite.
        worker: WorkerId,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// Nobody accepted an emergency call in time: ops must step in (a follow-up is opened).
    EmergencyEscalated {
        /// When.
        at: Timestamp,
    },
    /// A dispute was raised.
    DisputeRaised {
        /// Dispute.
        dispute_id: DisputeId,
        /// Who raised it.
        by: Party,
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// Ops resolved a dispute.
    DisputeResolved {
        /// Dispute.
        dispute_id: DisputeId,
        /// Outcome.
        outcome: DisputeOutcome,
        /// When.
        at: Timestamp,
    },
    /// A customer complained about a worker.
    ComplaintFiled {
        /// Complaint.
        complaint_id: ComplaintId,
        /// Customer.
        customer: CustomerId,
        /// Worker complained about.
        against: WorkerId,
        /// Category.
        category: ComplaintCategory,
        /// Details.
        text: String,
        /// When.
        at: Timestamp,
    },
    /// Ops decided a complaint.
    ComplaintResolved {
        /// Complaint.
        complaint_id: ComplaintId,
        /// Worker complained about.
        against: WorkerId,
        /// Outcome.
        outcome: ComplaintOutcome,
        /// When.
        at: Timestamp,
    },
}

/// An outstanding offer on a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingOffer {
    /// Worker.
    pub worker: WorkerId,
    /// Lapses at.
    pub expires_at: Timestamp,
}

/// A worker holding a slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assignment {
    /// Worker.
    pub worker: WorkerId,
    /// When taken.
    pub accepted_at: Timestamp,
    /// Check-in time and lateness.
    pub checked_in: Option<(Timestamp, Minutes)>,
    /// Completion time and checklist.
    pub completed: Option<(Timestamp, Checklist)>,
}

/// One worker slot.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Slot {
    /// Outstanding offers (more than one only for emergency calls).
    pub offers: Vec<PendingOffer>,
    /// The worker holding the slot.
    pub assignment: Option<Assignment>,
}

/// A dispute on the order.
#[derive(Clone, Debug, PartialEq)]
pub struct Dispute {
    /// Id.
    pub id: DisputeId,
    /// Resolved yet.
    pub resolved: bool,
}

/// A complaint on the order.
#[derive(Clone, Debug, PartialEq)]
pub struct Complaint {
    /// Id.
    pub id: ComplaintId,
    /// Worker complained about.
    pub against: WorkerId,
    /// Resolved yet.
    pub resolved: bool,
}

/// A posted order.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    /// Id.
    pub id: OrderId,
    /// Customer.
    pub customer: CustomerId,
    /// Service.
    pub service: ServiceCode,
    /// Required certificates.
    pub required_certificates: Vec<SkillKind>,
    /// Current quote.
    pub quote: Quote,
    /// When.
    pub window: ServiceWindow,
    /// Where.
    pub location: GeoPoint,
    /// Dispatch.
    pub dispatch: DispatchMode,
    /// Terms.
    pub terms: OrderTerms,
    /// Slots by index.
    pub slots: Vec<(SlotIndex, Slot)>,
    /// Workers that declined, lapsed, withdrew or did not show (not offered this order again).
    pub passed_over: Vec<WorkerId>,
    /// Any offer or grab has happened (preferred-first bookkeeping).
    pub preferred_offered: bool,
    /// An emergency call was escalated to ops (`EmergencyEscalated`).
    pub escalated: bool,
    /// Lifecycle phase.
    pub phase: OrderPhase,
    /// When served.
    pub served_at: Option<Timestamp>,
    /// Fee charged on cancellation or customer no-show.
    pub fee_charged: Fen,
    /// Refunds granted so far.
    pub refunded: Fen,
    /// Disputes.
    pub disputes: Vec<Dispute>,
    /// Complaints.
    pub complaints: Vec<Complaint>,
}

/// The order aggregate state: nothing until `OrderPosted`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct OrderState {
    /// The order, once posted.
    pub order: Option<Order>,
}

impl Order {
    fn slot(&self, index: SlotIndex) -> Result<&Slot, DomainError> {
        self.slots
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, s)| s)
            .ok_or(DomainError::UnknownSlot {
                order: self.id,
                slot: index.0,
            })
    }

    fn slot_mut(&mut self, index: SlotIndex) -> Option<&mut Slot> {
        self.slots
            .iter_mut()
            .find(|(i, _)| *i == index)
            .map(|(_, s)| s)
    }

    fn assignments(&self) -> impl Iterator<Item = (SlotIndex, &Assignment)> {
        self.slots
            .iter()
            .filter_map(|(i, s)| s.assignment.as_ref().map(|a| (*i, a)))
    }

    /// Workers currently holding a slot.
    pub fn workers(&self) -> Vec<WorkerId> {
        self.assignments().map(|(_, a)| a.worker).collect()
    }

    fn holds_or_offered(&self, worker: WorkerId) -> bool {
        self.slots.iter().any(|(_, s)| {
            s.assignment.is_some_and(|a| a.worker == worker)
                || s.offers.iter().any(|o| o.worker == worker)
        })
    }

    fn open_slots(&self) -> usize {
        self.slots
            .iter()
            .filter(|(_, s)| s.assignment.is_none())
            .count()
    }

    /// What the customer paid: the fee charged for a cancelled order or a customer no-show,
    /// the quote otherwise.
    pub fn paid(&self) -> Fen {
        match self.phase {
            OrderPhase::Cancelled | OrderPhase::CustomerNoShow => self.fee_charged,
            _ => self.quote.total,
        }
    }

    fn require_phase(&self, allowed: &[OrderPhase]) -> Result<(), DomainError> {
        if allowed.contains(&self.phase) {
            Ok(())
        } else {
            Err(DomainError::WrongOrderPhase {
                order: self.id,
                phase: self.phase,
            })
        }
    }

    fn check_eligible(&self, creds: &WorkerCredentials) -> Result<(), DomainError> {
        let ineligible = |reason| {
            Err(DomainError::WorkerNotEligible {
                worker: creds.worker,
                reason,
            })
        };
        if let Err(reason) = creds.standing.may_take_orders() {
            return ineligible(reason);
        }
        if !creds.home_visit_certificate_valid {
            return ineligible(Ineligibility::NoValidHomeVisitCertificate);
        }
        if !creds.contract_signed {
            return ineligible(Ineligibility::NoContract);
        }
        if let Some(missing) = self
            .required_certificates
            .iter()
            .find(|c| !creds.skills.contains(c))
        {
            return ineligible(Ineligibility::MissingCertificate(missing.clone()));
        }
        Ok(())
    }
}

fn check_text(field: &'static str, text: &str, required: bool) -> Result<(), DomainError> {
    if required && text.trim().is_empty() {
        return Err(DomainError::EmptyText { field });
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(DomainError::TextTooLong {
            field,
            max: MAX_TEXT_CHARS,
        });
    }
    Ok(())
}

/// What a command says on its own, checked before the order is looked at: text lengths (and
/// required texts), the number of distinct review tags. Bad input is INVALID_ARGUMENT whatever
/// the order's state, so that a client fixing its request is not sent chasing a state error
/// first (a 1 MB review text on a reviewed order is `text` too long, not ALREADY_REVIEWED).
fn check_input(command: &OrderCommand) -> Result<(), DomainError> {
    match command {
        OrderCommand::Review { tags, text, .. } => {
            let mut distinct: Vec<&ReviewTag> = Vec::with_capacity(tags.len().min(64));
            for tag in tags {
                if !distinct.contains(&tag) {
                    distinct.push(tag);
                    if distinct.len() > MAX_REVIEW_TAGS {
                        return Err(DomainError::TooManyTags {
                            max: MAX_REVIEW_TAGS,
                        });
                    }
                }
            }
            check_text("text", text, false)
        }
        OrderCommand::Cancel { reason, .. }
        | OrderCommand::SkipPreferred { reason }
        | OrderCommand::RaiseDispute { reason, .. } => check_text("reason", reason, true),
        OrderCommand::FileComplaint { text, .. } => check_text("text", text, true),
        OrderCommand::ResolveDispute { outcome, .. } => check_text("note", &outcome.note, true),
        _ => Ok(()),
    }
}

/// Decides what happens when `command` meets the order in `state` at `now`: the events to
/// append, or the precise reason nothing may happen.
///
/// Checks run in one order, so that the first error a caller sees is the one to fix first:
/// 1. what the command says on its own (text lengths, tag counts: INVALID_ARGUMENT), before
///    the order is looked at;
/// 2. whether the order exists (NOT_FOUND) or, for a post, is new;
/// 3. for a post, the values only the terms or the clock can judge (workers, window, grab
///    deadline, quantity), then the customer's standing;
/// 4. the order's phase, then who is asking (the order's customer, a worker on it), then
///    time windows and the rest of the state.
pub fn decide(
    state: &OrderState,
    command: OrderCommand,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    check_input(&command)?;
    let Some(order) = &state.order else {
        return match command {
            OrderCommand::Post(post) => post_order(*post, now),
            _ => Err(DomainError::OrderNotPosted),
        };
    };
    match command {
        OrderCommand::Post(_) => Err(DomainError::OrderAlreadyPosted { order: order.id }),
        OrderCommand::Offer { slot, worker } => offer(order, slot, &worker, now),
        OrderCommand::Accept { slot, worker } => accept(order, slot, &worker, now),
        OrderCommand::Decline { slot, worker } => {
            pending_offer(order, slot, worker)?;
            Ok(vec![OrderEvent::OfferDeclined {
                slot,
                worker,
                at: now,
            }])
        }
        OrderCommand::ExpireOffer { slot, worker } => {
            let offer = pending_offer(order, slot, worker)?;
            if now < offer.expires_at {
                return Err(DomainError::OfferNotYetExpired {
                    worker,
                    expires_at: offer.expires_at,
                });
            }
            Ok(vec![OrderEvent::OfferExpired {
                slot,
                worker,
                at: now,
            }])
        }
        OrderCommand::Grab { worker } => grab(order, &worker, now),
        OrderCommand::CheckIn {
            slot,
            worker,
            location,
        } => check_in(order, slot, worker, location, now),
        OrderCommand::Complete {
            slot,
            worker,
            checklist,
        } => complete(order, slot, worker, checklist, now),
        OrderCommand::Review {
            customer,
            stars,
            tags,
            text,
        } => review(order, customer, stars, tags, text, now),
        OrderCommand::Cancel { by, reason } => cancel(order, by, reason, now),
        OrderCommand::ReportNoShow(no_show) => report_no_show(order, no_show, now),
        OrderCommand::Replan { customer, workers } => replan(order, customer, workers, now),
        OrderCommand::SkipPreferred { reason } => skip_preferred(order, reason, now),
        OrderCommand::Escalate => escalate(order, now),
        OrderCommand::RaiseDispute {
            dispute_id,
            by,
            reason,
        } => raise_dispute(order, dispute_id, by, reason, now),
        OrderCommand::ResolveDispute {
            dispute_id,
            outcome,
        } => resolve_dispute(order, dispute_id, outcome, now),
        OrderCommand::FileComplaint {
            complaint_id,
            customer,
            against,
            category,
            text,
        } => file_complaint(order, complaint_id, customer, against, category, text, now),
        OrderCommand::ResolveComplaint {
            complaint_id,
            outcome,
        } => resolve_complaint(order, complaint_id, outcome, now),
    }
}

fn post_order(post: PostOrder, now: Timestamp) -> Result<Vec<OrderEvent>, DomainError> {
    post.terms.validate()?;
    if post.workers == 0 || post.workers > post.terms.max_workers {
        return Err(DomainError::WorkersOutOfRange {
            workers: post.workers,
            max: post.terms.max_workers,
        });
    }
    if post.window.end <= post.window.start {
        return Err(DomainError::InvalidWindow {
            start: post.window.start,
            end: post.window.end,
        });
    }
    if post.window.start <= now {
        return Err(DomainError::WindowInPast {
            start: post.window.start,
            now,
        });
    }
    GeoPoint::new(post.location.lat, post.location.lon)?;
    match post.dispatch {
        DispatchMode::GrabPool { deadline } if deadline <= now || deadline > post.window.start => {
            return Err(DomainError::InvalidGrabDeadline { deadline });
        }
        _ => {}
    }
    let service = Catalog::builtin()?.get(&post.service)?;
    let quote = service.quote(post.quantity, post.workers)?;
    match post.customer_standing {
        Standing::BlackListed | Standing::Suspended => {
            return Err(DomainError::CustomerMayNotPost {
                customer: post.customer,
                standing: post.customer_standing,
            });
        }
        Standing::Good | Standing::Warned | Standing::InRetraining => {}
    }
    Ok(vec![OrderEvent::OrderPosted {
        order_id: post.order_id,
        customer: post.customer,
        service: post.service,
        category: service.category,
        required_certificates: service.certificates.clone(),
        quote,
        window: post.window,
        location: post.location,
        dispatch: post.dispatch,
        terms: post.terms,
        posted_at: now,
    }])
}

fn pending_offer(
    order: &Order,
    slot: SlotIndex,
    worker: WorkerId,
) -> Result<PendingOffer, DomainError> {
    order.require_phase(&[OrderPhase::Open, OrderPhase::InService])?;
    order
        .slot(slot)?
        .offers
        .iter()
        .find(|o| o.worker == worker)
        .copied()
        .ok_or(DomainError::NoOfferForWorker {
            worker,
            slot: slot.0,
        })
}

fn skip_preferred(
    order: &Order,
    reason: String,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    order.require_phase(&[OrderPhase::Open, OrderPhase::InService])?;
    match order.dispatch {
        DispatchMode::Preferred { worker } if !order.preferred_offered => {
            Ok(vec![OrderEvent::PreferredWorkerSkipped {
                worker,
                reason,
                at: now,
            }])
        }
        _ => Ok(Vec::new()),
    }
}

fn escalate(order: &Order, now: Timestamp) -> Result<Vec<OrderEvent>, DomainError> {
    if order.dispatch != DispatchMode::Emergency {
        return Err(DomainError::NotAnEmergency { order: order.id });
    }
    order.require_phase(&[OrderPhase::Open])?;
    if order.escalated {
        return Ok(Vec::new());
    }
    if order.slots.iter().all(|(_, s)| s.assignment.is_some()) {
        return Err(DomainError::OrderAlreadyTaken { order: order.id });
    }
    Ok(vec![OrderEvent::EmergencyEscalated { at: now }])
}

fn offer(
    order: &Order,
    slot: SlotIndex,
    creds: &WorkerCredentials,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    order.require_phase(&[OrderPhase::Open, OrderPhase::InService])?;
    let target = order.slot(slot)?;
    if let Some(a) = target.assignment {
        return Err(DomainError::SlotAlreadyTaken {
            slot: slot.0,
            worker: a.worker,
        });
    }
    let worker = creds.worker;
    if order.holds_or_offered(worker) {
        return Err(DomainError::WorkerAlreadyOnOrder { worker });
    }
    if order.passed_over.contains(&worker) {
        return Err(DomainError::WorkerPassedOver { worker });
    }
    match order.dispatch {
        DispatchMode::GrabPool { deadline } if now < deadline => {
            return Err(DomainError::GrabPoolStillOpen { until: deadline });
        }
        DispatchMode::Preferred { worker: preferred }
            if !order.preferred_offered && worker != preferred =>
        {
            return Err(DomainError::PreferredWorkerFirst { preferred });
        }
        _ => {}
    }
    let parallel = match order.dispatch {
        DispatchMode::Emergency => order.terms.emergency_parallel_offers,
        _ => 1,
    };
    if target.offers.len() >= usize::try_from(parallel).unwrap_or(usize::MAX) {
        return Err(DomainError::OfferAlreadyPending { slot: slot.0 });
    }
    order.check_eligible(creds)?;
    Ok(vec![OrderEvent::OrderOffered {
        slot,
        worker,
        offered_at: now,
        expires_at: now.plus(order.terms.offer_ttl),
    }])
}

fn accept(
    order: &Order,
    slot: SlotIndex,
    creds: &WorkerCredentials,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    let offer = pending_offer(order, slot, creds.worker)?;
    if now >= offer.expires_at {
        return Err(DomainError::OfferExpired {
            worker: creds.worker,
            expired_at: offer.expires_at,
        });
    }
    order.check_eligible(creds)?;
    Ok(vec![OrderEvent::OrderAccepted {
        slot,
        worker: creds.worker,
        via: TakenVia::Offer,
        at: now,
    }])
}

fn grab(
    order: &Order,
    creds: &WorkerCredentials,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    order.require_phase(&[OrderPhase::Open])?;
    let DispatchMode::GrabPool { deadline } = order.dispatch else {
        return Err(DomainError::NotAGrabOrder { order: order.id });
    };
    if now >= deadline {
        return Err(DomainError::GrabPoolClosed {
            closed_at: deadline,
        });
    }
    if order.holds_or_offered(creds.worker) {
        return Err(DomainError::WorkerAlreadyOnOrder {
            worker: creds.worker,
        });
    }
    let Some(slot) = order
        .slots
        .iter()
        .find(|(_, s)| s.assignment.is_none() && s.offers.is_empty())
        .map(|(i, _)| *i)
    else {
        return Err(DomainError::OrderAlreadyTaken { order: order.id });
    };
    order.check_eligible(creds)?;
    Ok(vec![OrderEvent::OrderAccepted {
        slot,
        worker: creds.worker,
        via: TakenVia::Grab,
        at: now,
    }])
}

fn assignment_of(
    order: &Order,
    slot: SlotIndex,
    worker: WorkerId,
) -> Result<Assignment, DomainError> {
    match order.slot(slot)?.assignment {
        Some(a) if a.worker == worker => Ok(a),
        _ => Err(DomainError::SlotNotHeldByWorker {
            worker,
            slot: slot.0,
        }),
    }
}

fn check_in(
    order: &Order,
    slot: SlotIndex,
    worker: WorkerId,
    location: GeoPoint,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    order.require_phase(&[OrderPhase::Open, OrderPhase::InService])?;
    let assignment = assignment_of(order, slot, worker)?;
    if assignment.checked_in.is_some() {
        return Err(DomainError::AlreadyCheckedIn { worker });
    }
    let open = order.open_slots();
    if open > 0 {
        return Err(DomainError::SlotsNotFilled {
            open: u32::try_from(open).unwrap_or(u32::MAX),
        });
    }
    let earliest = order.window.start.minus(order.terms.early_check_in);
    if now < earliest {
        return Err(DomainError::CheckInTooEarly { earliest });
    }
    let location = GeoPoint::new(location.lat, location.lon)?;
    let distance = location.distance_m(order.location);
    if distance > f64::from(order.terms.check_in_radius_m) {
        return Err(DomainError::CheckInTooFar {
            // Rounded up to whole metres for the message; the comparison above is exact.
            distance_m: distance.ceil().min(f64::from(u32::MAX)) as u32,
            max_m: order.terms.check_in_radius_m,
        });
    }
    let late_by = now.minutes_since(order.window.start);
    Ok(vec![OrderEvent::WorkerCheckedIn {
        slot,
        worker,
        at: now,
        location,
        late_by,
    }])
}

fn complete(
    order: &Order,
    slot: SlotIndex,
    worker: WorkerId,
    checklist: Checklist,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    order.require_phase(&[OrderPhase::InService])?;
    let assignment = assignment_of(order, slot, worker)?;
    if assignment.checked_in.is_none() {
        return Err(DomainError::NotCheckedIn { worker });
    }
    if assignment.completed.is_some() {
        return Err(DomainError::AlreadyCompleted { worker });
    }
    let mut events = vec![OrderEvent::ServiceCompleted {
        slot,
        worker,
        at: now,
        checklist,
    }];
    let others_done = order
        .assignments()
        .filter(|(i, _)| *i != slot)
        .all(|(_, a)| a.completed.is_some());
    if others_done && order.open_slots() == 0 {
        events.push(OrderEvent::OrderServed { at: now });
    }
    Ok(events)
}

/// The tags without repeats, in first-seen order.
fn distinct_tags(tags: &mut Vec<ReviewTag>) -> Vec<ReviewTag> {
    let mut unique = Vec::with_capacity(tags.len());
    for tag in tags.drain(..) {
        if !unique.contains(&tag) {
            unique.push(tag);
        }
    }
    unique
}

fn review(
    order: &Order,
    customer: CustomerId,
    stars: Stars,
    mut tags: Vec<ReviewTag>,
    text: String,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    match order.phase {
        OrderPhase::Served => {}
        OrderPhase::Reviewed => return Err(DomainError::AlreadyReviewed { order: order.id }),
        phase => {
            return Err(DomainError::ReviewBeforeService {
                order: order.id,
                phase,
            });
        }
    }
    if customer != order.customer {
        return Err(DomainError::NotOrderCustomer { customer });
    }
    let served_at = order.served_at.unwrap_or(now);
    let closes_at = served_at.plus(order.terms.review_window);
    if now > closes_at {
        return Err(DomainError::ReviewWindowClosed {
            closed_at: closes_at,
        });
    }
    // The tag count and the text were checked before the order was looked at (check_input).
    let unique = distinct_tags(&mut tags);
    Ok(vec![OrderEvent::OrderReviewed {
        customer,
        stars,
        tags: unique,
        text,
        workers: order.workers(),
        at: now,
    }])
}

fn cancel(
    order: &Order,
    by: Party,
    reason: String,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    order.require_phase(&[OrderPhase::Open])?;
    let notice = order.window.start.minutes_since(now);
    match by {
        Party::Customer(customer) => {
            if customer != order.customer {
                return Err(DomainError::NotOrderCustomer { customer });
            }
            // A fee applies only once a worker has committed time to the order.
            let fee = if order.assignments().next().is_some() {
                order.terms.cancellation.fee(order.quote.total, notice)?
            } else {
                Fen::ZERO
            };
            Ok(vec![OrderEvent::OrderCancelled {
                by,
                reason,
                notice,
                fee,
                at: now,
            }])
        }
        Party::Ops => Ok(vec![OrderEvent::OrderCancelled {
            by,
            reason,
            notice,
            fee: Fen::ZERO,
            at: now,
        }]),
        Party::Worker(worker) => {
            let Some((slot, _)) = order.assignments().find(|(_, a)| a.worker == worker) else {
                return Err(DomainError::WorkerNotOnOrder { worker });
            };
            Ok(vec![OrderEvent::WorkerWithdrew {
                slot,
                worker,
                reason,
                notice,
                at: now,
            }])
        }
    }
}

fn report_no_show(
    order: &Order,
    no_show: NoShow,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    order.require_phase(&[OrderPhase::Open, OrderPhase::InService])?;
    let from = order.window.start.plus(order.terms.no_show_grace);
    match no_show {
        NoShow::Worker { slot } => {
            let Some(assignment) = order.slot(slot)?.assignment else {
                return Err(DomainError::SlotNotTaken { slot: slot.0 });
            };
            if assignment.checked_in.is_some() {
                return Err(DomainError::AlreadyCheckedIn {
                    worker: assignment.worker,
                });
            }
            if now < from {
                return Err(DomainError::NoShowTooEarly { from });
            }
            Ok(vec![OrderEvent::WorkerNoShowRecorded {
                slot,
                worker: assignment.worker,
                at: now,
            }])
        }
        NoShow::Customer { reported_by } => {
            if !order.assignments().any(|(_, a)| a.worker == reported_by) {
                return Err(DomainError::WorkerNotOnOrder {
                    worker: reported_by,
                });
            }
            if order.assignments().any(|(_, a)| a.completed.is_some()) {
                return Err(DomainError::WrongOrderPhase {
                    order: order.id,
                    phase: order.phase,
                });
            }
            if now < from {
                return Err(DomainError::NoShowTooEarly { from });
            }
            let fee = order.quote.total.share(order.terms.customer_no_show_fee)?;
            Ok(vec![OrderEvent::CustomerNoShowRecorded {
                customer: order.customer,
                reported_by,
                fee,
                at: now,
            }])
        }
    }
}

fn replan(
    order: &Order,
    customer: CustomerId,
    workers: u32,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    order.require_phase(&[OrderPhase::Open])?;
    if customer != order.customer {
        return Err(DomainError::NotOrderCustomer { customer });
    }
    let max = order.terms.max_workers;
    if workers == 0 || workers > max {
        return Err(DomainError::WorkersOutOfRange { workers, max });
    }
    let current = u32::try_from(order.slots.len()).unwrap_or(u32::MAX);
    if workers == current {
        return Err(DomainError::ReplanUnchanged { workers });
    }
    let mut removed = Vec::new();
    let mut added = Vec::new();
    if workers < current {
        let need = current - workers;
        removed = order
            .slots
            .iter()
            .rev()
            .filter(|(_, s)| s.assignment.is_none() && s.offers.is_empty())
            .map(|(i, _)| *i)
            .take(usize::try_from(need).unwrap_or(usize::MAX))
            .collect();
        if removed.len() < usize::try_from(need).unwrap_or(usize::MAX) {
            let busy = current - u32::try_from(removed.len()).unwrap_or(0);
            return Err(DomainError::ReplanBelowCommitted {
                workers,
                committed: busy,
            });
        }
    } else {
        let next = order.slots.iter().map(|(i, _)| i.0 + 1).max().unwrap_or(0);
        added = (next..next + (workers - current)).map(SlotIndex).collect();
    }
    let total = order
        .quote
        .unit_price
        .checked_mul(order.quote.quantity)?
        .checked_mul(workers)?;
    let quote = Quote {
        workers,
        total,
        ..order.quote.clone()
    };
    Ok(vec![OrderEvent::OrderReplanned {
        workers,
        quote,
        removed,
        added,
        at: now,
    }])
}

fn party_on_order(order: &Order, by: Party) -> Result<(), DomainError> {
    match by {
        Party::Customer(c) if c != order.customer => {
            Err(DomainError::NotOrderCustomer { customer: c })
        }
        Party::Worker(w) if !order.assignments().any(|(_, a)| a.worker == w) => {
            Err(DomainError::WorkerNotOnOrder { worker: w })
        }
        _ => Ok(()),
    }
}

fn raise_dispute(
    order: &Order,
    dispute_id: DisputeId,
    by: Party,
    reason: String,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    party_on_order(order, by)?;
    let charged = matches!(
        order.phase,
        OrderPhase::Cancelled | OrderPhase::CustomerNoShow
    ) && order.fee_charged > Fen::ZERO;
    let served = matches!(
        order.phase,
        OrderPhase::InService | OrderPhase::Served | OrderPhase::Reviewed
    );
    if !charged && !served {
        return Err(DomainError::NothingToDispute {
            order: order.id,
            phase: order.phase,
        });
    }
    if let Some(open) = order
        .disputes
        .iter()
        .find(|d| !d.resolved || d.id == dispute_id)
    {
        return Err(DomainError::DisputeAlreadyOpen { dispute: open.id });
    }
    Ok(vec![OrderEvent::DisputeRaised {
        dispute_id,
        by,
        reason,
        at: now,
    }])
}

fn check_refund(order: &Order, refund: Fen) -> Result<(), DomainError> {
    refund.non_negative("refund")?;
    let after = order.refunded.checked_add(refund)?;
    let paid = order.paid();
    if after > paid {
        return Err(DomainError::RefundExceedsPaid {
            refund,
            already_refunded: order.refunded,
            paid,
        });
    }
    Ok(())
}

fn resolve_dispute(
    order: &Order,
    dispute_id: DisputeId,
    outcome: DisputeOutcome,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    let Some(dispute) = order.disputes.iter().find(|d| d.id == dispute_id) else {
        return Err(DomainError::UnknownDispute {
            dispute: dispute_id,
        });
    };
    if dispute.resolved {
        return Err(DomainError::DisputeAlreadyResolved {
            dispute: dispute_id,
        });
    }
    outcome.compensation.non_negative("compensation")?;
    check_refund(order, outcome.refund)?;
    match outcome.fault {
        Fault::Worker(w) => party_on_order(order, Party::Worker(w))?,
        Fault::Customer(c) => party_on_order(order, Party::Customer(c))?,
        Fault::Nobody => {}
    }
    Ok(vec![OrderEvent::DisputeResolved {
        dispute_id,
        outcome,
        at: now,
    }])
}

fn file_complaint(
    order: &Order,
    complaint_id: ComplaintId,
    customer: CustomerId,
    against: WorkerId,
    category: ComplaintCategory,
    text: String,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    if customer != order.customer {
        return Err(DomainError::NotOrderCustomer { customer });
    }
    if !order
        .assignments()
        .any(|(_, a)| a.worker == against && a.checked_in.is_some())
    {
        return Err(DomainError::ComplaintWithoutService { worker: against });
    }
    if let Some(open) = order
        .complaints
        .iter()
        .find(|c| c.id == complaint_id || (c.against == against && !c.resolved))
    {
        return Err(DomainError::ComplaintAlreadyOpen { complaint: open.id });
    }
    Ok(vec![OrderEvent::ComplaintFiled {
        complaint_id,
        customer,
        against,
        category,
        text,
        at: now,
    }])
}

fn resolve_complaint(
    order: &Order,
    complaint_id: ComplaintId,
    outcome: ComplaintOutcome,
    now: Timestamp,
) -> Result<Vec<OrderEvent>, DomainError> {
    let Some(complaint) = order.complaints.iter().find(|c| c.id == complaint_id) else {
        return Err(DomainError::UnknownComplaint {
            complaint: complaint_id,
        });
    };
    if complaint.resolved {
        return Err(DomainError::ComplaintAlreadyResolved {
            complaint: complaint_id,
        });
    }
    if let ComplaintOutcome::Upheld { refund, .. } = outcome {
        check_refund(order, refund)?;
    }
    Ok(vec![OrderEvent::ComplaintResolved {
        complaint_id,
        against: complaint.against,
        outcome,
        at: now,
    }])
}

/// Applies a stored event. Never validates: an event is a fact. Events before `OrderPosted`
/// (impossible in a well-formed stream) leave the state unchanged.
pub fn evolve(mut state: OrderState, event: &OrderEvent) -> OrderState {
    if let OrderEvent::OrderPosted {
        order_id,
        customer,
        service,
        required_certificates,
        quote,
        window,
        location,
        dispatch,
        terms,
        ..
    } = event
    {
        state.order = Some(Order {
            id: *order_id,
            customer: *customer,
            service: service.clone(),
            required_certificates: required_certificates.clone(),
            quote: quote.clone(),
            window: *window,
            location: *location,
            dispatch: *dispatch,
            terms: terms.clone(),
            slots: (0..quote.workers)
                .map(|i| (SlotIndex(i), Slot::default()))
                .collect(),
            passed_over: Vec::new(),
            preferred_offered: false,
            escalated: false,
            phase: OrderPhase::Open,
            served_at: None,
            fee_charged: Fen::ZERO,
            refunded: Fen::ZERO,
            disputes: Vec::new(),
            complaints: Vec::new(),
        });
        return state;
    }
    let Some(order) = state.order.as_mut() else {
        return state;
    };
    apply(order, event);
    state
}

fn apply(order: &mut Order, event: &OrderEvent) {
    match event {
        OrderEvent::OrderPosted { .. } => {}
        OrderEvent::EmergencyEscalated { .. } => order.escalated = true,
        OrderEvent::PreferredWorkerSkipped { worker, .. } => {
            order.preferred_offered = true;
            if !order.passed_over.contains(worker) {
                order.passed_over.push(*worker);
            }
        }
        OrderEvent::OrderOffered {
            slot,
            worker,
            expires_at,
            ..
        } => {
            if let DispatchMode::Preferred { worker: preferred } = order.dispatch {
                order.preferred_offered |= *worker == preferred;
            }
            if let Some(s) = order.slot_mut(*slot) {
                s.offers.push(PendingOffer {
                    worker: *worker,
                    expires_at: *expires_at,
                });
            }
        }
        OrderEvent::OrderAccepted {
            slot, worker, at, ..
        } => {
            if let Some(s) = order.slot_mut(*slot) {
                s.offers.clear();
                s.assignment = Some(Assignment {
                    worker: *worker,
                    accepted_at: *at,
                    checked_in: None,
                    completed: None,
                });
            }
        }
        OrderEvent::OfferDeclined { slot, worker, .. }
        | OrderEvent::OfferExpired { slot, worker, .. } => {
            if let Some(s) = order.slot_mut(*slot) {
                s.offers.retain(|o| o.worker != *worker);
            }
            pass_over(order, *worker);
        }
        OrderEvent::WorkerCheckedIn {
            slot, at, late_by, ..
        } => {
            if let Some(a) = order.slot_mut(*slot).and_then(|s| s.assignment.as_mut()) {
                a.checked_in = Some((*at, *late_by));
            }
            order.phase = OrderPhase::InService;
        }
        OrderEvent::ServiceCompleted {
            slot,
            at,
            checklist,
            ..
        } => {
            if let Some(a) = order.slot_mut(*slot).and_then(|s| s.assignment.as_mut()) {
                a.completed = Some((*at, *checklist));
            }
        }
        OrderEvent::OrderServed { at } => {
            order.phase = OrderPhase::Served;
            order.served_at = Some(*at);
        }
        OrderEvent::OrderReviewed { .. } => order.phase = OrderPhase::Reviewed,
        OrderEvent::OrderCancelled { fee, .. } => {
            order.phase = OrderPhase::Cancelled;
            order.fee_charged = *fee;
            for (_, s) in &mut order.slots {
                s.offers.clear();
            }
        }
        OrderEvent::WorkerWithdrew { slot, worker, .. }
        | OrderEvent::WorkerNoShowRecorded { slot, worker, .. } => {
            if let Some(s) = order.slot_mut(*slot) {
                s.assignment = None;
            }
            pass_over(order, *worker);
        }
        OrderEvent::CustomerNoShowRecorded { fee, .. } => {
            order.phase = OrderPhase::CustomerNoShow;
            order.fee_charged = *fee;
        }
        OrderEvent::OrderReplanned {
            quote,
            removed,
            added,
            ..
        } => {
            order.quote = quote.clone();
            order.slots.retain(|(i, _)| !removed.contains(i));
            order
                .slots
                .extend(added.iter().map(|i| (*i, Slot::default())));
        }
        OrderEvent::DisputeRaised { dispute_id, .. } => {
            order.disputes.push(Dispute {
                id: *dispute_id,
                resolved: false,
            });
        }
        OrderEvent::DisputeResolved {
            dispute_id,
            outcome,
            ..
        } => {
            if let Some(d) = order.disputes.iter_mut().find(|d| d.id == *dispute_id) {
                d.resolved = true;
            }
            order.refunded = Fen(order.refunded.0.saturating_add(outcome.refund.0));
        }
        OrderEvent::ComplaintFiled {
            complaint_id,
            against,
            ..
        } => {
            order.complaints.push(Complaint {
                id: *complaint_id,
                against: *against,
                resolved: false,
            });
        }
        OrderEvent::ComplaintResolved {
            complaint_id,
            outcome,
            ..
        } => {
            if let Some(c) = order.complaints.iter_mut().find(|c| c.id == *complaint_id) {
                c.resolved = true;
            }
            if let ComplaintOutcome::Upheld { refund, .. } = outcome {
                order.refunded = Fen(order.refunded.0.saturating_add(refund.0));
            }
        }
    }
}

fn pass_over(order: &mut Order, worker: WorkerId) {
    if !order.passed_over.contains(&worker) {
        order.passed_over.push(worker);
    }
}

/// Folds a stream of events into the state.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a OrderEvent>) -> OrderState {
    events.into_iter().fold(OrderState::default(), evolve)
}

impl OrderEvent {
    /// The event type name stored in the event log.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::OrderPosted { .. } => "OrderPosted",
            Self::OrderOffered { .. } => "OrderOffered",
            Self::OrderAccepted { .. } => "OrderAccepted",
            Self::OfferDeclined { .. } => "OfferDeclined",
            Self::OfferExpired { .. } => "OfferExpired",
            Self::WorkerCheckedIn { .. } => "WorkerCheckedIn",
            Self::ServiceCompleted { .. } => "ServiceCompleted",
            Self::OrderServed { .. } => "OrderServed",
            Self::OrderReviewed { .. } => "OrderReviewed",
            Self::OrderCancelled { .. } => "OrderCancelled",
            Self::WorkerWithdrew { .. } => "WorkerWithdrew",
            Self::WorkerNoShowRecorded { .. } => "WorkerNoShowRecorded",
            Self::CustomerNoShowRecorded { .. } => "CustomerNoShowRecorded",
            Self::OrderReplanned { .. } => "OrderReplanned",
            Self::PreferredWorkerSkipped { .. } => "PreferredWorkerSkipped",
            Self::EmergencyEscalated { .. } => "EmergencyEscalated",
            Self::DisputeRaised { .. } => "DisputeRaised",
            Self::DisputeResolved { .. } => "DisputeResolved",
            Self::ComplaintFiled { .. } => "ComplaintFiled",
            Self::ComplaintResolved { .. } => "ComplaintResolved",
        }
    }
}
