//! The one error type of the domain. Every refused command names its precise reason; the server
//! maps [`DomainError::kind`] to a gRPC status and [`DomainError::reason`] to the reason code of
//! a `FAILED_PRECONDITION` (or the field of an `INVALID_ARGUMENT`).

use serde::{Deserialize, Serialize};

use crate::catalog::{ServiceCode, SkillKind};
use crate::certificates::CertificateStatus;
use crate::credit::{RuleId, Standing, SubjectKind};
use crate::ids::{
    AppealId, CertificateId, ComplaintId, CustomerId, DisputeId, EventId, FollowUpId, OrderId,
    WorkerId,
};
use crate::money::Fen;
use crate::order::OrderPhase;
use crate::time::{Minutes, Timestamp};
use crate::worker::ContractNumber;

/// Why a worker may not be offered or take an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ineligibility {
    /// Must complete retraining first.
    InRetraining,
    /// Suspended.
    Suspended,
    /// Black-listed.
    BlackListed,
    /// No valid home-visit certificate.
    NoValidHomeVisitCertificate,
    /// No signed platform contract.
    NoContract,
    /// Lacks a skill certificate the service requires.
    MissingCertificate(SkillKind),
}

/// How an error is reported to a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input itself is malformed (gRPC `INVALID_ARGUMENT`).
    InvalidArgument,
    /// The input is well-formed but a rule forbids it now (gRPC `FAILED_PRECONDITION`).
    FailedPrecondition,
    /// Something named does not exist (gRPC `NOT_FOUND`).
    NotFound,
    /// Stored data or built-in data is broken (gRPC `INTERNAL`; logged, not echoed).
    Internal,
}

/// Everything the domain refuses.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    // --- malformed input ---
    /// An id is not a non-nil UUID.
    #[error("invalid {kind} id {value:?}")]
    InvalidId { kind: &'static str, value: String },
    /// A service code is malformed.
    #[error("invalid service code {value:?}")]
    InvalidServiceCode { value: String },
    /// A skill name is malformed.
    #[error("invalid skill {value:?}")]
    InvalidSkill { value: String },
    /// A credit rule id is malformed.
    #[error("invalid rule id {value:?}")]
    InvalidRuleId { value: String },
    /// An identity number fails format or check digit.
    #[error("invalid identity number")]
    InvalidIdentityNumber,
    /// An amount is negative.
    #[error("{field} must not be negative (got {fen} fen)")]
    NegativeMoney { field: &'static str, fen: i64 },
    /// Money arithmetic overflowed.
    #[error("amount out of range")]
    MoneyOverflow,
    /// Quantity outside 1..=max for the unit.
    #[error("quantity {quantity} out of range 1..={max}")]
    QuantityOutOfRange { quantity: u32, max: u32 },
    /// Workers outside 1..=max.
    #[error("workers {workers} out of range 1..={max}")]
    WorkersOutOfRange { workers: u32, max: u32 },
    /// Coordinates out of range.
    #[error("location ({lat}, {lon}) out of range")]
    InvalidLocation { lat: f64, lon: f64 },
    /// Window end not after start.
    #[error("service window end {end:#} is not after start {start:#}")]
    InvalidWindow { start: Timestamp, end: Timestamp },
    /// Rating outside 1..=5.
    #[error("rating {stars} out of range 1..=5")]
    InvalidRating { stars: u8 },
    /// Too many review tags.
    #[error("at most {max} tags")]
    TooManyTags { max: usize },
    /// Required text is empty.
    #[error("{field} must not be empty")]
    EmptyText { field: &'static str },
    /// Text too long.
    #[error("{field} is longer than {max} characters")]
    TextTooLong { field: &'static str, max: usize },
    /// Configured order terms are inconsistent.
    #[error("invalid order terms: {reason}")]
    InvalidTerms { reason: String },
    /// A rule set is inconsistent.
    #[error("invalid rule set: {reason}")]
    InvalidRuleSet { reason: String },
    /// A manual adjustment of zero points.
    #[error("adjustment must not be zero")]
    ZeroAdjustment,
    /// A grab deadline outside (now, window start].
    #[error("grab deadline {deadline:#} must be after now and not after the window start")]
    InvalidGrabDeadline { deadline: Timestamp },
    /// A validity end not in the future (or not extending the current one).
    #[error("validity end {valid_until} is not in the future")]
    InvalidValidity { valid_until: Timestamp },
    /// A malformed contract number.
    #[error("invalid contract number {value:?}")]
    InvalidContractNumber { value: String },

    // --- not found ---
    /// Unknown service code.
    #[error("unknown service {code}")]
    UnknownService { code: ServiceCode },
    /// The order stream is empty.
    #[error("order not posted")]
    OrderNotPosted,
    /// No such slot.
    #[error("order {order} has no slot {slot}")]
    UnknownSlot { order: OrderId, slot: u32 },
    /// No such dispute on the order.
    #[error("unknown dispute {dispute}")]
    UnknownDispute { dispute: DisputeId },
    /// No such complaint on the order.
    #[error("unknown complaint {complaint}")]
    UnknownComplaint { complaint: ComplaintId },
    /// No such rule in the current rule set.
    #[error("rule {rule} is not in rule set version {version}")]
    UnknownRule { rule: RuleId, version: u32 },
    /// No such appeal.
    #[error("unknown appeal {appeal}")]
    UnknownAppeal { appeal: AppealId },
    /// No such certificate.
    #[error("unknown certificate {certificate}")]
    UnknownCertificate { certificate: CertificateId },
    /// The worker has no home-visit certificate.
    #[error("worker {worker} has no home-visit certificate")]
    NoCertificateForWorker { worker: WorkerId },
    /// The follow-up stream is empty.
    #[error("follow-up not opened")]
    FollowUpNotOpened,

    // --- rule violations (FAILED_PRECONDITION) ---
    /// Posting twice.
    #[error("order {order} is already posted")]
    OrderAlreadyPosted { order: OrderId },
    /// A black-listed or suspended customer posting.
    #[error("customer {customer} may not post while {standing:?}")]
    CustomerMayNotPost {
        customer: CustomerId,
        standing: Standing,
    },
    /// Posting for a window that already started.
    #[error("service window start {start:#} is not after now {now:#}")]
    WindowInPast { start: Timestamp, now: Timestamp },
    /// The command does not fit the order's phase.
    #[error("order {order} is {phase:?}")]
    WrongOrderPhase { order: OrderId, phase: OrderPhase },
    /// The worker is not eligible.
    #[error("worker {worker} is not eligible: {reason:?}")]
    WorkerNotEligible {
        worker: WorkerId,
        reason: Ineligibility,
    },
    /// The slot already has a worker.
    #[error("slot {slot} is already taken by {worker}")]
    SlotAlreadyTaken { slot: u32, worker: WorkerId },
    /// The slot already has the maximum number of pending offers.
    #[error("slot {slot} already has a pending offer")]
    OfferAlreadyPending { slot: u32 },
    /// The worker already holds or is offered a slot of this order.
    #[error("worker {worker} is already on this order")]
    WorkerAlreadyOnOrder { worker: WorkerId },
    /// The worker declined, let an offer lapse, withdrew or did not show on this order.
    #[error("worker {worker} was passed over on this order")]
    WorkerPassedOver { worker: WorkerId },
    /// Offers wait for the grab pool deadline.
    #[error("grab pool is open until {until:#}")]
    GrabPoolStillOpen { until: Timestamp },
    /// The preferred worker must be offered first.
    #[error("preferred worker {preferred} must be offered first")]
    PreferredWorkerFirst { preferred: WorkerId },
    /// No pending offer for this worker on this slot.
    #[error("no pending offer for worker {worker} on slot {slot}")]
    NoOfferForWorker { worker: WorkerId, slot: u32 },
    /// Accepting a lapsed offer.
    #[error("offer to {worker} expired at {expired_at}")]
    OfferExpired {
        worker: WorkerId,
        expired_at: Timestamp,
    },
    /// Expiring an offer early.
    #[error("offer to {worker} expires at {expires_at}")]
    OfferNotYetExpired {
        worker: WorkerId,
        expires_at: Timestamp,
    },
    /// Grabbing an order not in the grab pool.
    #[error("order {order} is not in the grab pool")]
    NotAGrabOrder { order: OrderId },
    /// Escalating an order that is not an emergency call.
    #[error("order {order} is not an emergency call")]
    NotAnEmergency { order: OrderId },
    /// Grabbing after the pool closed.
    #[error("grab pool closed at {closed_at:#}")]
    GrabPoolClosed { closed_at: Timestamp },
    /// Every slot is taken.
    #[error("order {order} is already taken")]
    OrderAlreadyTaken { order: OrderId },
    /// The slot is not held by this worker.
    #[error("slot {slot} is not held by worker {worker}")]
    SlotNotHeldByWorker { worker: WorkerId, slot: u32 },
    /// The slot has no worker.
    #[error("slot {slot} has no worker")]
    SlotNotTaken { slot: u32 },
    /// The worker holds no slot of the order.
    #[error("worker {worker} is not on this order")]
    WorkerNotOnOrder { worker: WorkerId },
    /// Check-in while slots are still open (the order starts when all are filled).
    #[error("{open} slots are not filled yet")]
    SlotsNotFilled { open: u32 },
    /// Check-in before the allowed time.
    #[error("check-in opens at {earliest:#}")]
    CheckInTooEarly { earliest: Timestamp },
    /// Check-in too far from the order location.
    #[error("check-in {distance_m} m from the address (at most {max_m} m)")]
    CheckInTooFar { distance_m: u32, max_m: u32 },
    /// Checking in twice.
    #[error("worker {worker} already checked in")]
    AlreadyCheckedIn { worker: WorkerId },
    /// Completing before check-in.
    #[error("worker {worker} has not checked in")]
    NotCheckedIn { worker: WorkerId },
    /// Completing twice.
    #[error("worker {worker} already completed")]
    AlreadyCompleted { worker: WorkerId },
    /// Reviewing before the service is over.
    #[error("order {order} cannot be reviewed while {phase:?}")]
    ReviewBeforeService { order: OrderId, phase: OrderPhase },
    /// Reviewing twice.
    #[error("order {order} is already reviewed")]
    AlreadyReviewed { order: OrderId },
    /// Someone other than the order's customer.
    #[error("customer {customer} is not this order's customer")]
    NotOrderCustomer { customer: CustomerId },
    /// Reviewing after the window.
    #[error("review window closed at {closed_at:#}")]
    ReviewWindowClosed { closed_at: Timestamp },
    /// Reporting a no-show before the grace period is over.
    #[error("no-show can be reported from {from:#}")]
    NoShowTooEarly { from: Timestamp },
    /// Re-planning to the current number of workers.
    #[error("order already needs {workers} workers")]
    ReplanUnchanged { workers: u32 },
    /// Re-planning below the slots taken or offered.
    #[error("cannot re-plan to {workers} workers: {committed} slots are taken or offered")]
    ReplanBelowCommitted { workers: u32, committed: u32 },
    /// Disputing an order with neither service nor fee.
    #[error("order {order} has nothing to dispute while {phase:?}")]
    NothingToDispute { order: OrderId, phase: OrderPhase },
    /// A dispute is already open (or the id is taken).
    #[error("dispute {dispute} is already open")]
    DisputeAlreadyOpen { dispute: DisputeId },
    /// Resolving twice.
    #[error("dispute {dispute} is already resolved")]
    DisputeAlreadyResolved { dispute: DisputeId },
    /// Refunds beyond what was paid.
    #[error("refund {refund} plus {already_refunded} already refunded exceeds {paid} paid")]
    RefundExceedsPaid {
        refund: Fen,
        already_refunded: Fen,
        paid: Fen,
    },
    /// Complaining about a worker who never served this order.
    #[error("worker {worker} did not serve this order")]
    ComplaintWithoutService { worker: WorkerId },
    /// A complaint about this worker is open (or the id is taken).
    #[error("complaint {complaint} is already open")]
    ComplaintAlreadyOpen { complaint: ComplaintId },
    /// Resolving twice.
    #[error("complaint {complaint} is already resolved")]
    ComplaintAlreadyResolved { complaint: ComplaintId },
    /// A rule for another kind of subject.
    #[error("rule {rule} does not apply to {subject:?}")]
    RuleNotForSubject { rule: RuleId, subject: SubjectKind },
    /// The same rule and evidence again.
    #[error("rule {rule} was already applied for evidence {evidence}")]
    RuleAlreadyApplied { rule: RuleId, evidence: EventId },
    /// A visit fact of an order already counted (by the visit's own rule or an earlier tag):
    /// a review tag restating it deducts nothing more.
    #[error("rule {rule} counts a fact already counted by rule {counted_by} (evidence {evidence})")]
    FactAlreadyCounted {
        rule: RuleId,
        counted_by: RuleId,
        evidence: EventId,
    },
    /// Recording training for a subject that owes none.
    #[error("no training is owed (standing {standing:?})")]
    NotInRetraining { standing: Standing },
    /// Suspending or black-listing a subject already at or past that step.
    #[error("already {standing:?}")]
    AlreadySanctioned { standing: Standing },
    /// Reinstating a subject that is not suspended.
    #[error("not suspended (standing {standing:?})")]
    NotSuspended { standing: Standing },
    /// Appealing something that is not a negative adjustment.
    #[error("no negative adjustment with evidence {evidence}")]
    NothingToAppeal { evidence: EventId },
    /// Appealing twice (or the id is taken).
    #[error("appeal {appeal} already filed")]
    AppealAlreadyFiled { appeal: AppealId },
    /// Deciding twice.
    #[error("appeal {appeal} already decided")]
    AppealAlreadyDecided { appeal: AppealId },
    /// Repairing good credit.
    #[error("nothing to repair")]
    NothingToRepair,
    /// Repair needs training completed since the last violation.
    #[error("training must be completed before credit repair")]
    TrainingRequiredForRepair,
    /// Repair before the clean period is over.
    #[error("credit can be repaired from {eligible_at}")]
    RepairNotYetDue { eligible_at: Timestamp },
    /// Publishing an older or equal rule set version.
    #[error("rule set version {proposed} is not newer than {current}")]
    RuleSetVersionNotNewer { current: u32, proposed: u32 },
    /// Issuing without the identity check.
    #[error("identity not verified")]
    IdentityNotVerified,
    /// Health check missing, in the future or too old.
    #[error("health check at {checked_at} is older than {max_age} or in the future")]
    HealthCheckTooOld {
        checked_at: Timestamp,
        max_age: Minutes,
    },
    /// Training not completed.
    #[error("training not completed")]
    TrainingNotCompleted,
    /// Exam not passed.
    #[error("exam not passed")]
    ExamNotPassed,
    /// The identity number already has its home-visit certificate.
    #[error("identity already holds home-visit certificate {certificate}")]
    HomeVisitCertificateExists { certificate: CertificateId },
    /// The worker id is bound to another identity number.
    #[error("worker {worker} holds certificate {certificate} under another identity")]
    IdentityMismatch {
        worker: WorkerId,
        certificate: CertificateId,
    },
    /// A skill certificate needs a valid home-visit certificate.
    #[error("worker {worker} has no valid home-visit certificate")]
    NoValidHomeVisitCertificate { worker: WorkerId },
    /// Certificate id taken, or the same valid skill certificate exists.
    #[error("certificate {certificate} already exists")]
    CertificateExists { certificate: CertificateId },
    /// The certificate's status forbids the command.
    #[error("certificate {certificate} is {status:?}")]
    CertificateNotUsable {
        certificate: CertificateId,
        status: CertificateStatus,
    },
    /// Reinstating a certificate that is not suspended.
    #[error("certificate {certificate} is {status:?}, not suspended")]
    CertificateNotSuspended {
        certificate: CertificateId,
        status: CertificateStatus,
    },
    /// Opening a follow-up twice.
    #[error("follow-up {follow_up} already opened")]
    FollowUpAlreadyOpened { follow_up: FollowUpId },
    /// Acting on a closed follow-up.
    #[error("follow-up {follow_up} is closed")]
    FollowUpClosed { follow_up: FollowUpId },

    /// Registering a worker twice.
    #[error("worker {worker} is already registered")]
    WorkerAlreadyRegistered { worker: WorkerId },
    /// A command on a worker who was never registered.
    #[error("worker not registered")]
    WorkerNotRegistered,
    /// A platform contract must include work-injury cover.
    #[error("contract {} has no injury cover", contract.as_str())]
    ContractWithoutInjuryCover { contract: ContractNumber },
    /// Recording the same contract twice.
    #[error("contract {} already signed", contract.as_str())]
    ContractAlreadySigned { contract: ContractNumber },

    // --- broken data ---
    /// The built-in catalogue is malformed.
    #[error("catalog line {line}: {reason}")]
    CatalogInvalid { line: usize, reason: String },
    /// A stored event does not decode.
    #[error("malformed {event_type} event: {reason}")]
    MalformedEvent { event_type: String, reason: String },
    /// A stored event has an unknown schema version.
    #[error("{event_type} schema version {version} is not supported (current {current})")]
    UnsupportedSchemaVersion {
        event_type: String,
        version: u32,
        current: u32,
    },
}

impl DomainError {
    /// How to report this error.
    pub fn kind(&self) -> ErrorKind {
        use DomainError::*;
        match self {
            InvalidId { .. }
            | InvalidServiceCode { .. }
            | InvalidSkill { .. }
            | InvalidRuleId { .. }
            | InvalidIdentityNumber
            | NegativeMoney { .. }
            | MoneyOverflow
            | QuantityOutOfRange { .. }
            | WorkersOutOfRange { .. }
            | InvalidLocation { .. }
            | InvalidWindow { .. }
            | InvalidRating { .. }
            | TooManyTags { .. }
            | EmptyText { .. }
            | TextTooLong { .. }
            | InvalidTerms { .. }
            | InvalidRuleSet { .. }
            | ZeroAdjustment
            | InvalidGrabDeadline { .. }
            | InvalidValidity { .. }
            | InvalidContractNumber { .. } => ErrorKind::InvalidArgument,
            UnknownService { .. }
            | OrderNotPosted
            | UnknownSlot { .. }
            | UnknownDispute { .. }
            | UnknownComplaint { .. }
            | UnknownRule { .. }
            | UnknownAppeal { .. }
            | UnknownCertificate { .. }
            | NoCertificateForWorker { .. }
            | FollowUpNotOpened
            | WorkerNotRegistered => ErrorKind::NotFound,
            CatalogInvalid { .. } | MalformedEvent { .. } | UnsupportedSchemaVersion { .. } => {
                ErrorKind::Internal
            }
            _ => ErrorKind::FailedPrecondition,
        }
    }

    /// A stable SCREAMING_SNAKE reason code (the gRPC `ErrorInfo.reason`).
    pub fn reason(&self) -> &'static str {
        use DomainError::*;
        match self {
            InvalidId { .. } => "INVALID_ID",
            InvalidServiceCode { .. } => "INVALID_SERVICE_CODE",
            InvalidSkill { .. } => "INVALID_SKILL",
            InvalidRuleId { .. } => "INVALID_RULE_ID",
            InvalidIdentityNumber => "INVALID_IDENTITY_NUMBER",
            NegativeMoney { .. } => "NEGATIVE_MONEY",
            MoneyOverflow => "MONEY_OUT_OF_RANGE",
            QuantityOutOfRange { .. } => "QUANTITY_OUT_OF_RANGE",
            WorkersOutOfRange { .. } => "WORKERS_OUT_OF_RANGE",
            InvalidLocation { .. } => "INVALID_LOCATION",
            InvalidWindow { .. } => "INVALID_WINDOW",
            InvalidRating { .. } => "INVALID_RATING",
            TooManyTags { .. } => "TOO_MANY_TAGS",
            EmptyText { .. } => "EMPTY_TEXT",
            TextTooLong { .. } => "TEXT_TOO_LONG",
            InvalidTerms { .. } => "INVALID_TERMS",
            InvalidRuleSet { .. } => "INVALID_RULE_SET",
            ZeroAdjustment => "ZERO_ADJUSTMENT",
            InvalidGrabDeadline { .. } => "INVALID_GRAB_DEADLINE",
            InvalidValidity { .. } => "INVALID_VALIDITY",
            InvalidContractNumber { .. } => "INVALID_CONTRACT_NUMBER",
            UnknownService { .. } => "UNKNOWN_SERVICE",
            OrderNotPosted => "ORDER_NOT_FOUND",
            UnknownSlot { .. } => "UNKNOWN_SLOT",
            UnknownDispute { .. } => "UNKNOWN_DISPUTE",
            UnknownComplaint { .. } => "UNKNOWN_COMPLAINT",
            UnknownRule { .. } => "UNKNOWN_RULE",
            UnknownAppeal { .. } => "UNKNOWN_APPEAL",
            UnknownCertificate { .. } => "UNKNOWN_CERTIFICATE",
            NoCertificateForWorker { .. } => "NO_CERTIFICATE_FOR_WORKER",
            FollowUpNotOpened => "FOLLOW_UP_NOT_FOUND",
            OrderAlreadyPosted { .. } => "ORDER_ALREADY_POSTED",
            CustomerMayNotPost {
                standing: Standing::BlackListed,
                ..
            } => "CUSTOMER_BLACK_LISTED",
            CustomerMayNotPost { .. } => "CUSTOMER_SUSPENDED",
            WindowInPast { .. } => "WINDOW_IN_PAST",
            WrongOrderPhase { .. } => "WRONG_ORDER_PHASE",
            WorkerNotEligible { reason, .. } => match reason {
                Ineligibility::InRetraining => "WORKER_IN_RETRAINING",
                Ineligibility::Suspended => "WORKER_SUSPENDED",
                Ineligibility::BlackListed => "WORKER_BLACK_LISTED",
                Ineligibility::NoValidHomeVisitCertificate => "WORKER_NO_HOME_VISIT_CERTIFICATE",
                Ineligibility::NoContract => "WORKER_NO_CONTRACT",
                Ineligibility::MissingCertificate(_) => "WORKER_MISSING_CERTIFICATE",
            },
            SlotAlreadyTaken { .. } => "SLOT_ALREADY_TAKEN",
            OfferAlreadyPending { .. } => "OFFER_ALREADY_PENDING",
            WorkerAlreadyOnOrder { .. } => "WORKER_ALREADY_ON_ORDER",
            WorkerPassedOver { .. } => "WORKER_PASSED_OVER",
            GrabPoolStillOpen { .. } => "GRAB_POOL_STILL_OPEN",
            PreferredWorkerFirst { .. } => "PREFERRED_WORKER_FIRST",
            NoOfferForWorker { .. } => "NO_OFFER_FOR_WORKER",
            OfferExpired { .. } => "OFFER_EXPIRED",
            OfferNotYetExpired { .. } => "OFFER_NOT_YET_EXPIRED",
            NotAGrabOrder { .. } => "NOT_A_GRAB_ORDER",
            NotAnEmergency { .. } => "NOT_AN_EMERGENCY",
            GrabPoolClosed { .. } => "GRAB_POOL_CLOSED",
            OrderAlreadyTaken { .. } => "ORDER_ALREADY_TAKEN",
            SlotNotHeldByWorker { .. } => "SLOT_NOT_HELD_BY_WORKER",
            SlotNotTaken { .. } => "SLOT_NOT_TAKEN",
            WorkerNotOnOrder { .. } => "WORKER_NOT_ON_ORDER",
            SlotsNotFilled { .. } => "SLOTS_NOT_FILLED",
            CheckInTooEarly { .. } => "CHECK_IN_TOO_EARLY",
            CheckInTooFar { .. } => "CHECK_IN_TOO_FAR",
            AlreadyCheckedIn { .. } => "ALREADY_CHECKED_IN",
            NotCheckedIn { .. } => "NOT_CHECKED_IN",
            AlreadyCompleted { .. } => "ALREADY_COMPLETED",
            ReviewBeforeService { .. } => "REVIEW_BEFORE_SERVICE",
            AlreadyReviewed { .. } => "ALREADY_REVIEWED",
            NotOrderCustomer { .. } => "NOT_ORDER_CUSTOMER",
            ReviewWindowClosed { .. } => "REVIEW_WINDOW_CLOSED",
            NoShowTooEarly { .. } => "NO_SHOW_TOO_EARLY",
            ReplanUnchanged { .. } => "REPLAN_UNCHANGED",
            ReplanBelowCommitted { .. } => "REPLAN_BELOW_COMMITTED",
            NothingToDispute { .. } => "NOTHING_TO_DISPUTE",
            DisputeAlreadyOpen { .. } => "DISPUTE_ALREADY_OPEN",
            DisputeAlreadyResolved { .. } => "DISPUTE_ALREADY_RESOLVED",
            RefundExceedsPaid { .. } => "REFUND_EXCEEDS_PAID",
            ComplaintWithoutService { .. } => "COMPLAINT_WITHOUT_SERVICE",
            ComplaintAlreadyOpen { .. } => "COMPLAINT_ALREADY_OPEN",
            ComplaintAlreadyResolved { .. } => "COMPLAINT_ALREADY_RESOLVED",
            RuleNotForSubject { .. } => "RULE_NOT_FOR_SUBJECT",
            RuleAlreadyApplied { .. } => "RULE_ALREADY_APPLIED",
            FactAlreadyCounted { .. } => "FACT_ALREADY_COUNTED",
            NotInRetraining { .. } => "NOT_IN_RETRAINING",
            AlreadySanctioned { .. } => "ALREADY_SANCTIONED",
            NotSuspended { .. } => "NOT_SUSPENDED",
            NothingToAppeal { .. } => "NOTHING_TO_APPEAL",
            AppealAlreadyFiled { .. } => "APPEAL_ALREADY_FILED",
            AppealAlreadyDecided { .. } => "APPEAL_ALREADY_DECIDED",
            NothingToRepair => "NOTHING_TO_REPAIR",
            TrainingRequiredForRepair => "TRAINING_REQUIRED_FOR_REPAIR",
            RepairNotYetDue { .. } => "REPAIR_NOT_YET_DUE",
            RuleSetVersionNotNewer { .. } => "RULE_SET_VERSION_NOT_NEWER",
            IdentityNotVerified => "IDENTITY_NOT_VERIFIED",
            HealthCheckTooOld { .. } => "HEALTH_CHECK_TOO_OLD",
            TrainingNotCompleted => "TRAINING_NOT_COMPLETED",
            ExamNotPassed => "EXAM_NOT_PASSED",
            HomeVisitCertificateExists { .. } => "HOME_VISIT_CERTIFICATE_EXISTS",
            IdentityMismatch { .. } => "IDENTITY_MISMATCH",
            NoValidHomeVisitCertificate { .. } => "NO_VALID_HOME_VISIT_CERTIFICATE",
            CertificateExists { .. } => "CERTIFICATE_EXISTS",
            CertificateNotUsable { .. } => "CERTIFICATE_NOT_USABLE",
            CertificateNotSuspended { .. } => "CERTIFICATE_NOT_SUSPENDED",
            FollowUpAlreadyOpened { .. } => "FOLLOW_UP_ALREADY_OPENED",
            FollowUpClosed { .. } => "FOLLOW_UP_CLOSED",
            WorkerAlreadyRegistered { .. } => "WORKER_ALREADY_REGISTERED",
            WorkerNotRegistered => "WORKER_NOT_REGISTERED",
            ContractWithoutInjuryCover { .. } => "CONTRACT_WITHOUT_INJURY_COVER",
            ContractAlreadySigned { .. } => "CONTRACT_ALREADY_SIGNED",
            CatalogInvalid { .. } => "CATALOG_INVALID",
            MalformedEvent { .. } => "MALFORMED_EVENT",
            UnsupportedSchemaVersion { .. } => "UNSUPPORTED_SCHEMA_VERSION",
        }
    }
}
