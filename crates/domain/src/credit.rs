//! Credit (诚信积分, 红黑榜) for workers, companies and customers. Rules are versioned data: a
//! [`RuleSet`] is published as a `CreditRuleSetPublished` event and every change of a score is
//! a `CreditAdjusted` event naming the rule and the evidence event. [`assess`] maps order events
//! to rules; [`decide`] applies them with the sanction ladder (warning → mandatory retraining →
//! suspension → black list), appeals and credit repair.
//!
//! Credit is evidence, counted once. A fact the visit records (the check-in time, the
//! completion checklist) is a [`VisitFact`] of its order: the visit's own rule deducts it, and a
//! review tag restating it (`late`, `tools_not_disinfected`) names the same fact, so
//! [`decide`] refuses to count it again ([`DomainError::FactAlreadyCounted`]). A tag the record
//! contradicts deducts nothing; [`contested_tags`] finds it for ops. The ladder counts
//! violations per visit (one order is one violation, at its worst step) within the rule set's
//! [`Ladder::window`], and owed training stays owed until it is recorded, whatever happens to
//! the standing in between.
//!
//! Unlike the order aggregate, [`decide`] takes the rule set as a separate argument: it is data
//! from its own stream (`creditrules-global`), not state of the subject's stream.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, Ineligibility};
use crate::ids::{AppealId, CompanyId, CustomerId, EventId, OrderId, WorkerId};
use crate::order::{ComplaintOutcome, Fault, Order, OrderEvent, Party, ReviewTag, Severity};
use crate::time::{Minutes, Timestamp};

/// Whose credit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A worker.
    Worker(WorkerId),
    /// A company.
    Company(CompanyId),
    /// A customer.
    Customer(CustomerId),
}

impl Subject {
    /// The kind of subject.
    pub fn kind(self) -> SubjectKind {
        match self {
            Self::Worker(_) => SubjectKind::Worker,
            Self::Company(_) => SubjectKind::Company,
            Self::Customer(_) => SubjectKind::Customer,
        }
    }

    /// The stream holding this subject's credit events.
    pub fn stream_name(self) -> String {
        match self {
            Self::Worker(id) => id.stream_name(),
            Self::Company(id) => id.stream_name(),
            Self::Customer(id) => id.stream_name(),
        }
    }
}

/// Kinds of subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// Workers.
    Worker,
    /// Companies.
    Company,
    /// Customers.
    Customer,
}

/// Standing on the ladder, from best to worst.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// In good standing.
    #[default]
    Good,
    /// Warned.
    Warned,
    /// Must complete retraining before taking orders again (workers).
    InRetraining,
    /// Suspended by a rule or by ops.
    Suspended,
    /// Black-listed (barred).
    BlackListed,
}

impl Standing {
    /// Whether a worker in this standing is in the matching pool.
    pub fn may_take_orders(self) -> Result<(), Ineligibility> {
        match self {
            Self::Good | Self::Warned => Ok(()),
            Self::InRetraining => Err(Ineligibility::InRetraining),
            Self::Suspended => Err(Ineligibility::Suspended),
            Self::BlackListed => Err(Ineligibility::BlackListed),
        }
    }
}

/// A rule's identifier, e.g. `worker.late_check_in`: lower-case ASCII, digits, `_` and `.`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RuleId(String);

impl RuleId {
    /// The rule recorded when an upheld appeal reverses an adjustment.
    pub const APPEAL_REVERSAL: &'static str = "appeal.reversal";
    /// The rule recorded for a manual adjustment by ops.
    pub const OPS_MANUAL: &'static str = "ops.manual";

    /// Validates and wraps.
    pub fn new(value: &str) -> Result<Self, DomainError> {
        let ok = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'.');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(DomainError::InvalidRuleId {
                value: value.chars().take(64).collect(),
            })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn builtin(value: &'static str) -> Self {
        Self(value.to_owned())
    }
}

impl TryFrom<String> for RuleId {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<RuleId> for String {
    fn from(id: RuleId) -> Self {
        id.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ladder step a rule asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sanction {
    /// A warning.
    Warning,
    /// Mandatory retraining (workers; other subjects are suspended instead).
    Retraining,
    /// Suspension.
    Suspension,
    /// Black list.
    BlackList,
}

/// What makes a rule apply. `Manual` rules are applied by ops with their own evidence (for
/// example a company's unlicensed operation or abuse of a worker reported by a customer's
/// worker); the others are found by [`assess`] in order events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "on")]
pub enum Trigger {
    /// A review with at least `min_stars` (workers on the order).
    GoodReview {
        /// Threshold.
        min_stars: u8,
    },
    /// A review with at most `max_stars` (workers on the order).
    PoorReview {
        /// Threshold.
        max_stars: u8,
    },
    /// A review carrying `tag` (workers on the order).
    ReviewTagged {
        /// The tag.
        tag: ReviewTag,
    },
    /// A check-in at least `min_late` late.
    LateCheckIn {
        /// Threshold.
        min_late: Minutes,
    },
    /// A completion checklist without disinfected tools.
    ToolsNotDisinfected,
    /// A worker no-show.
    WorkerNoShow,
    /// A worker withdrawing with less than `max_notice` notice.
    WorkerLateWithdrawal {
        /// Threshold.
        max_notice: Minutes,
    },
    /// A customer cancelling with a fee.
    CustomerLateCancellation,
    /// A customer no-show.
    CustomerNoShow,
    /// An upheld complaint of at least `min_severity` against a worker.
    ComplaintUpheld {
        /// Threshold.
        min_severity: Severity,
    },
    /// A dispute resolved with the subject at fault (worker or customer).
    DisputeFault,
    /// Applied by ops with evidence.
    Manual,
}

/// One rule of a rule set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditRule {
    /// Id.
    pub id: RuleId,
    /// Whom it applies to.
    pub subject: SubjectKind,
    /// When.
    pub trigger: Trigger,
    /// Points added (negative for violations).
    pub points: i32,
    /// Ladder step, if any.
    pub sanction: Option<Sanction>,
}

/// How sanctions escalate. Violations are counted per occasion (an order, or the evidence
/// event of a violation outside orders): the sanctions one visit earns count as one violation
/// at the worst step asked. With `warnings_before_retraining` earlier violations of at least
/// warning level within `window`, a new warning-level one becomes retraining; with
/// `retrainings_before_suspension` earlier ones of at least retraining level within `window`,
/// a new retraining-level one becomes suspension; a suspension after
/// `suspensions_before_black_list` suspensions (since the last credit repair) becomes the
/// black list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ladder {
    /// Earlier warning-level violations tolerated before the next one becomes retraining.
    pub warnings_before_retraining: u32,
    /// Earlier retraining-level violations tolerated before the next one becomes suspension.
    pub retrainings_before_suspension: u32,
    /// Suspensions tolerated before the next one becomes the black list.
    pub suspensions_before_black_list: u32,
    /// How far back earlier violations count for escalation; absent (rule sets published
    /// before it existed) means every violation since the last credit repair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Minutes>,
}

/// A versioned credit rule set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSet {
    /// Version, strictly increasing across publications.
    pub version: u32,
    /// Starting score.
    pub base_score: i32,
    /// Below this score a subject is black-listed.
    pub black_list_below: i32,
    /// At or above this score, with no violation for `red_list_clean_period`, a subject is red-listed.
    pub red_list_at_least: i32,
    /// Clean period for the red list.
    pub red_list_clean_period: Minutes,
    /// Clean period after the last violation before credit can be repaired.
    pub repair_clean_period: Minutes,
    /// The score a repair restores (if the score is lower).
    pub repair_score: i32,
    /// Escalation.
    pub ladder: Ladder,
    /// Rules.
    pub rules: Vec<CreditRule>,
}

impl RuleSet {
    /// Checks thresholds and that rule ids are unique.
    pub fn validate(&self) -> Result<(), DomainError> {
        let invalid = |reason: String| Err(DomainError::InvalidRuleSet { reason });
        if self.version == 0 {
            return invalid("version must be positive".into());
        }
        if !(self.black_list_below < self.base_score && self.base_score < self.red_list_at_least) {
            return invalid(
                "thresholds must satisfy black_list_below < base_score < red_list_at_least".into(),
            );
        }
        if self.repair_score < self.black_list_below {
            return invalid("repair score must not be below the black-list threshold".into());
        }
        if self.rules.is_empty() {
            return invalid("a rule set needs rules".into());
        }
        if self.ladder.window == Some(Minutes(0)) {
            return invalid("ladder.window must be positive when given".into());
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if self.rules.iter().skip(i + 1).any(|r| r.id == rule.id) {
                return invalid(format!("duplicate rule {}", rule.id));
            }
            if rule.id.as_str() == RuleId::APPEAL_REVERSAL || rule.id.as_str() == RuleId::OPS_MANUAL
            {
                return invalid(format!("rule id {} is reserved", rule.id));
            }
        }
        Ok(())
    }

    /// The rule with this id.
    pub fn rule(&self, id: &RuleId) -> Result<&CreditRule, DomainError> {
        self.rules
            .iter()
            .find(|r| &r.id == id)
            .ok_or_else(|| DomainError::UnknownRule {
                rule: id.clone(),
                version: self.version,
            })
    }

    /// The starting table proposed in `notes/platform-policies.md` (our proposal, not a public
    /// standard): base 100, black list below 60, red list from 110 after 90 clean days, repair
    /// after 90 clean days to 80. The ladder counts violations (one per visit) within 90 days:
    /// the third warning-level one is retraining, the third retraining-level one is
    /// suspension; after one suspension the next is the black list.
    pub fn proposal() -> Self {
        let rule = |id: &'static str, subject, trigger, points, sanction| CreditRule {
            id: RuleId::builtin(id),
            subject,
            trigger,
            points,
            sanction,
        };
        use Sanction::*;
        use SubjectKind::*;
        Self {
            version: 1,
            base_score: 100,
            black_list_below: 60,
            red_list_at_least: 110,
            red_list_clean_period: Minutes::days(90),
            repair_clean_period: Minutes::days(90),
            repair_score: 80,
            ladder: Ladder {
                warnings_before_retraining: 2,
                retrainings_before_suspension: 2,
                suspensions_before_black_list: 1,
                window: Some(Minutes::days(90)),
            },
            rules: vec![
                rule(
                    "worker.five_star_review",
                    Worker,
                    Trigger::GoodReview { min_stars: 5 },
                    1,
                    None,
                ),
                rule(
                    "worker.poor_review",
                    Worker,
                    Trigger::PoorReview { max_stars: 2 },
                    -2,
                    None,
                ),
                rule(
                    "worker.late_check_in",
                    Worker,
                    Trigger::LateCheckIn {
                        min_late: Minutes(15),
                    },
                    -2,
                    Some(Warning),
                ),
                rule(
                    "worker.review_late",
                    Worker,
                    Trigger::ReviewTagged {
                        tag: ReviewTag::Late,
                    },
                    -2,
                    Some(Warning),
                ),
                rule(
                    "worker.tools_not_disinfected",
                    Worker,
                    Trigger::ToolsNotDisinfected,
                    -5,
                    Some(Retraining),
                ),
                rule(
                    "worker.review_tools_not_disinfected",
                    Worker,
                    Trigger::ReviewTagged {
                        tag: ReviewTag::ToolsNotDisinfected,
                    },
                    -5,
                    Some(Retraining),
                ),
                rule(
                    "worker.no_show",
                    Worker,
                    Trigger::WorkerNoShow,
                    -10,
                    Some(Warning),
                ),
                rule(
                    "worker.late_withdrawal",
                    Worker,
                    Trigger::WorkerLateWithdrawal {
                        max_notice: Minutes::hours(2),
                    },
                    -3,
                    None,
                ),
                rule(
                    "worker.complaint_upheld",
                    Worker,
                    Trigger::ComplaintUpheld {
                        min_severity: Severity::Minor,
                    },
                    -5,
                    Some(Warning),
                ),
                rule(
                    "worker.complaint_severe",
                    Worker,
                    Trigger::ComplaintUpheld {
                        min_severity: Severity::Severe,
                    },
                    -20,
                    Some(Suspension),
                ),
                rule(
                    "worker.dispute_fault",
                    Worker,
                    Trigger::DisputeFault,
                    -5,
                    Some(Warning),
                ),
                rule(
                    "worker.criminal_finding",
                    Worker,
                    Trigger::Manual,
                    -40,
                    Some(BlackList),
                ),
                rule(
                    "customer.late_cancellation",
                    Customer,
                    Trigger::CustomerLateCancellation,
                    -2,
                    None,
                ),
                rule(
                    "customer.no_show",
                    Customer,
                    Trigger::CustomerNoShow,
                    -10,
                    Some(Warning),
                ),
                rule(
                    "customer.dispute_fault",
                    Customer,
                    Trigger::DisputeFault,
                    -5,
                    Some(Warning),
                ),
                rule(
                    "customer.abuse_reported",
                    Customer,
                    Trigger::Manual,
                    -20,
                    Some(Suspension),
                ),
                rule(
                    "company.unlicensed_operation",
                    Company,
                    Trigger::Manual,
                    -30,
                    Some(Suspension),
                ),
                rule(
                    "company.false_advertising",
                    Company,
                    Trigger::Manual,
                    -10,
                    Some(Warning),
                ),
            ],
        }
    }
}

/// A fact a visit records about its worker, which a review tag may restate. Within a
/// subject's credit, the fact of an order is counted at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitFact {
    /// The check-in was late (by at least a `LateCheckIn` rule's threshold).
    LateCheckIn,
    /// The completion checklist says the tools were not disinfected.
    ToolsNotDisinfected,
}

impl VisitFact {
    /// The visit fact `tag` restates, if any.
    pub fn restated_by(tag: ReviewTag) -> Option<Self> {
        match tag {
            ReviewTag::Late => Some(Self::LateCheckIn),
            ReviewTag::ToolsNotDisinfected => Some(Self::ToolsNotDisinfected),
            _ => None,
        }
    }
}

/// What an order's stream recorded about one worker's visit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VisitRecord {
    /// The worker.
    pub worker: WorkerId,
    /// Lateness at check-in, once checked in.
    pub late_by: Option<Minutes>,
    /// The checklist's `tools_disinfected`, once completed.
    pub tools_disinfected: Option<bool>,
}

impl VisitRecord {
    /// The visits of `order`'s current assignments.
    pub fn of_order(order: &Order) -> Vec<Self> {
        order
            .slots
            .iter()
            .filter_map(|(_, slot)| slot.assignment.as_ref())
            .map(|a| Self {
                worker: a.worker,
                late_by: a.checked_in.map(|(_, late)| late),
                tools_disinfected: a.completed.map(|(_, c)| c.tools_disinfected),
            })
            .collect()
    }

    /// Whether the record shows `fact` as `rules` counts it; `None` when it says nothing yet.
    /// Lateness counts from the lowest `LateCheckIn` threshold (any lateness without one).
    pub fn shows(&self, rules: &RuleSet, fact: VisitFact) -> Option<bool> {
        match fact {
            VisitFact::LateCheckIn => {
                let threshold = rules
                    .rules
                    .iter()
                    .filter(|r| r.subject == SubjectKind::Worker)
                    .filter_map(|r| match r.trigger {
                        Trigger::LateCheckIn { min_late } => Some(min_late),
                        _ => None,
                    })
                    .min()
                    .unwrap_or(Minutes(1));
                self.late_by.map(|late| late >= threshold)
            }
            VisitFact::ToolsNotDisinfected => self.tools_disinfected.map(|done| !done),
        }
    }
}

/// A rule found to apply to a subject because of an evidence event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    /// Whose credit.
    pub subject: Subject,
    /// Which rule.
    pub rule: RuleId,
    /// The evidence event.
    pub evidence: EventId,
    /// The order whose event the evidence is.
    pub order: Option<OrderId>,
    /// The visit fact the rule counts, if it counts one.
    pub fact: Option<VisitFact>,
}

/// A review tag that the visit record contradicts (a `late` tag on an on-time check-in):
/// it deducts nothing and is kept for ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContestedTag {
    /// The tag.
    pub tag: ReviewTag,
    /// What the record says about the worker's visit.
    pub record: VisitRecord,
}

/// The rules of `rules` that the event `event` of `order` (stored with id `evidence`)
/// triggers. `visits` is what the order recorded about its visits: a review tag restating a
/// recorded fact is assessed as that fact (which [`decide`] counts once), and a tag the
/// record contradicts is not assessed at all (see [`contested_tags`]).
pub fn assess(
    rules: &RuleSet,
    order: OrderId,
    evidence: EventId,
    event: &OrderEvent,
    visits: &[VisitRecord],
) -> Vec<Assessment> {
    let mut found = Vec::new();
    let mut push = |subject: Subject, rule: &CreditRule, fact: Option<VisitFact>| {
        found.push(Assessment {
            subject,
            rule: rule.id.clone(),
            evidence,
            order: Some(order),
            fact,
        });
    };
    let for_kind = |kind: SubjectKind| rules.rules.iter().filter(move |r| r.subject == kind);
    match event {
        OrderEvent::OrderReviewed {
            stars,
            tags,
            workers,
            ..
        } => {
            for worker in workers {
                let record = visits.iter().find(|v| v.worker == *worker);
                for rule in for_kind(SubjectKind::Worker) {
                    let fact = match rule.trigger {
                        Trigger::GoodReview { min_stars } if stars.get() >= min_stars => None,
                        Trigger::PoorReview { max_stars } if stars.get() <= max_stars => None,
                        Trigger::ReviewTagged { tag } if tags.contains(&tag) => {
                            match VisitFact::restated_by(tag) {
                                None => None,
                                Some(fact) => match record.and_then(|r| r.shows(rules, fact)) {
                                    // Contradicted by the record: kept for ops, not counted.
                                    Some(false) => continue,
                                    // Restated (or the tag is the only evidence): the fact.
                                    Some(true) | None => Some(fact),
                                },
                            }
                        }
                        _ => continue,
                    };
                    push(Subject::Worker(*worker), rule, fact);
                }
            }
        }
        OrderEvent::WorkerCheckedIn {
            worker, late_by, ..
        } => {
            // One lateness is one fact: only the most specific (highest threshold) rule.
            let best = for_kind(SubjectKind::Worker)
                .filter_map(|r| match r.trigger {
                    Trigger::LateCheckIn { min_late } if *late_by >= min_late => {
                        Some((min_late, r))
                    }
                    _ => None,
                })
                .max_by_key(|(m, _)| *m);
            if let Some((_, rule)) = best {
                push(Subject::Worker(*worker), rule, Some(VisitFact::LateCheckIn));
            }
        }
        OrderEvent::ServiceCompleted {
            worker, checklist, ..
        } if !checklist.tools_disinfected => {
            for rule in for_kind(SubjectKind::Worker)
                .filter(|r| matches!(r.trigger, Trigger::ToolsNotDisinfected))
            {
                push(
                    Subject::Worker(*worker),
                    rule,
                    Some(VisitFact::ToolsNotDisinfected),
                );
            }
        }
        OrderEvent::WorkerNoShowRecorded { worker, .. } => {
            for rule in
                for_kind(SubjectKind::Worker).filter(|r| matches!(r.trigger, Trigger::WorkerNoShow))
            {
                push(Subject::Worker(*worker), rule, None);
            }
        }
        OrderEvent::WorkerWithdrew { worker, notice, .. } => {
            for rule in for_kind(SubjectKind::Worker).filter(|r| {
                matches!(r.trigger, Trigger::WorkerLateWithdrawal { max_notice } if *notice < max_notice)
            }) {
                push(Subject::Worker(*worker), rule, None);
            }
        }
        OrderEvent::OrderCancelled {
            by: Party::Customer(customer),
            fee,
            ..
        } if fee.0 > 0 => {
            for rule in for_kind(SubjectKind::Customer)
                .filter(|r| matches!(r.trigger, Trigger::CustomerLateCancellation))
            {
                push(Subject::Customer(*customer), rule, None);
            }
        }
        OrderEvent::CustomerNoShowRecorded { customer, .. } => {
            for rule in for_kind(SubjectKind::Customer)
                .filter(|r| matches!(r.trigger, Trigger::CustomerNoShow))
            {
                push(Subject::Customer(*customer), rule, None);
            }
        }
        OrderEvent::ComplaintResolved {
            against,
            outcome: ComplaintOutcome::Upheld { severity, .. },
            ..
        } => {
            // Only the most specific (highest threshold) complaint rule applies.
            let best = for_kind(SubjectKind::Worker)
                .filter_map(|r| match r.trigger {
                    Trigger::ComplaintUpheld { min_severity } if min_severity <= *severity => {
                        Some((min_severity, r))
                    }
                    _ => None,
                })
                .max_by_key(|(s, _)| *s);
            if let Some((_, rule)) = best {
                push(Subject::Worker(*against), rule, None);
            }
        }
        OrderEvent::DisputeResolved { outcome, .. } => {
            let subject = match outcome.fault {
                Fault::Worker(w) => Some(Subject::Worker(w)),
                Fault::Customer(c) => Some(Subject::Customer(c)),
                Fault::Nobody => None,
            };
            if let Some(subject) = subject {
                for rule in for_kind(subject.kind())
                    .filter(|r| matches!(r.trigger, Trigger::DisputeFault))
                {
                    push(subject, rule, None);
                }
            }
        }
        _ => {}
    }
    found
}

/// The tags of the review `event` that the visit record contradicts, per worker reviewed
/// (each tag once per worker). They deduct nothing; ops follows them up.
pub fn contested_tags(
    rules: &RuleSet,
    event: &OrderEvent,
    visits: &[VisitRecord],
) -> Vec<ContestedTag> {
    let OrderEvent::OrderReviewed { tags, workers, .. } = event else {
        return Vec::new();
    };
    let mut found: Vec<ContestedTag> = Vec::new();
    for worker in workers {
        let Some(record) = visits.iter().find(|v| v.worker == *worker) else {
            continue;
        };
        for tag in tags {
            let contradicted = VisitFact::restated_by(*tag)
                .and_then(|fact| record.shows(rules, fact))
                == Some(false);
            if contradicted
                && !found
                    .iter()
                    .any(|c| c.tag == *tag && c.record.worker == *worker)
            {
                found.push(ContestedTag {
                    tag: *tag,
                    record: *record,
                });
            }
        }
    }
    found
}

/// Why a sanction was imposed or lifted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SanctionCause {
    /// A rule, with its evidence.
    Rule {
        /// Rule.
        rule: RuleId,
        /// Evidence event.
        evidence: EventId,
    },
    /// An ops decision, with the reason given.
    Ops {
        /// Reason.
        reason: String,
    },
    /// An upheld appeal.
    Appeal {
        /// Appeal.
        appeal: AppealId,
    },
}

/// Events of a subject's credit stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum CreditEvent {
    /// The score changed.
    CreditAdjusted {
        /// Whose.
        subject: Subject,
        /// By which rule.
        rule: RuleId,
        /// Of which rule set version.
        rule_set_version: u32,
        /// Evidence event.
        evidence: EventId,
        /// Points.
        delta: i32,
        /// Score afterwards.
        score_after: i32,
        /// When.
        at: Timestamp,
        /// The order whose event the evidence is (absent for ops adjustments and in events
        /// recorded before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order: Option<OrderId>,
        /// The visit fact counted, if the rule counts one (then `order` is present).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fact: Option<VisitFact>,
    },
    /// A warning was issued.
    WarningIssued {
        /// Whose.
        subject: Subject,
        /// Why.
        cause: SanctionCause,
        /// When.
        at: Timestamp,
    },
    /// The worker must retrain and left the matching pool.
    RetrainingRequired {
        /// Whose.
        subject: Subject,
        /// Why.
        cause: SanctionCause,
        /// When.
        at: Timestamp,
    },
    /// The training owed was completed; a worker in retraining is back in the pool (a
    /// suspended one stays suspended, with nothing owed once reinstated).
    TrainingCompleted {
        /// Whose.
        subject: Subject,
        /// Course.
        course: String,
        /// When.
        at: Timestamp,
    },
    /// Suspended.
    SubjectSuspended {
        /// Whose.
        subject: Subject,
        /// Why.
        cause: SanctionCause,
        /// When.
        at: Timestamp,
    },
    /// Back in good standing after a suspension, retraining or warning was lifted.
    SubjectReinstated {
        /// Whose.
        subject: Subject,
        /// Why.
        cause: SanctionCause,
        /// When.
        at: Timestamp,
    },
    /// Black-listed.
    BlackListed {
        /// Whose.
        subject: Subject,
        /// Why.
        cause: SanctionCause,
        /// When.
        at: Timestamp,
    },
    /// Entered the red list.
    RedListed {
        /// Whose.
        subject: Subject,
        /// When.
        at: Timestamp,
    },
    /// Left the red list.
    RedListRemoved {
        /// Whose.
        subject: Subject,
        /// When.
        at: Timestamp,
    },
    /// An appeal against an adjustment was filed.
    AppealFiled {
        /// Whose.
        subject: Subject,
        /// Appeal.
        appeal_id: AppealId,
        /// The evidence of the adjustment appealed.
        evidence: EventId,
        /// Grounds.
        text: String,
        /// When.
        at: Timestamp,
    },
    /// An appeal was decided.
    AppealDecided {
        /// Whose.
        subject: Subject,
        /// Appeal.
        appeal_id: AppealId,
        /// Upheld (the adjustment is reversed) or rejected.
        upheld: bool,
        /// Note.
        note: String,
        /// When.
        at: Timestamp,
    },
    /// Credit was repaired (信用修复): back to good standing, score restored.
    CreditRepaired {
        /// Whose.
        subject: Subject,
        /// Score afterwards.
        score_after: i32,
        /// When.
        at: Timestamp,
    },
}

/// Commands on a subject's credit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreditCommand {
    /// Apply a rule of the current rule set with its evidence (from [`assess`] or ops).
    ApplyRule {
        /// Rule.
        rule: RuleId,
        /// Evidence event.
        evidence: EventId,
        /// The order whose event the evidence is, if any.
        order: Option<OrderId>,
        /// The visit fact the rule counts, if any: counted once per order.
        fact: Option<VisitFact>,
    },
    /// Ops adjusts the score by hand; `evidence` is the id of the ops action's event.
    AdjustManually {
        /// Points.
        points: i32,
        /// Reason.
        reason: String,
        /// Evidence event.
        evidence: EventId,
    },
    /// Record the training owed as completed (in any standing, while training is owed).
    CompleteTraining {
        /// Course.
        course: String,
    },
    /// Ops suspends.
    Suspend {
        /// Reason.
        reason: String,
    },
    /// Ops reinstates a suspended subject.
    Reinstate {
        /// Reason.
        reason: String,
    },
    /// Ops black-lists.
    BlackList {
        /// Reason.
        reason: String,
    },
    /// The subject appeals an adjustment.
    FileAppeal {
        /// Fresh id.
        appeal_id: AppealId,
        /// Evidence of the adjustment appealed.
        evidence: EventId,
        /// Grounds.
        text: String,
    },
    /// Ops decides an appeal.
    DecideAppeal {
        /// Appeal.
        appeal_id: AppealId,
        /// Upheld or not.
        upheld: bool,
        /// Note.
        note: String,
    },
    /// Repair credit after the clean period (and retraining, for workers).
    RepairCredit,
}

/// An adjustment remembered for idempotency and appeals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjustment {
    /// Rule.
    pub rule: RuleId,
    /// Evidence.
    pub evidence: EventId,
    /// Points.
    pub delta: i32,
    /// The order of the evidence, if any.
    pub order: Option<OrderId>,
    /// The visit fact counted, if any.
    pub fact: Option<VisitFact>,
}

impl From<&Assessment> for CreditCommand {
    fn from(a: &Assessment) -> Self {
        CreditCommand::ApplyRule {
            rule: a.rule.clone(),
            evidence: a.evidence,
            order: a.order,
            fact: a.fact,
        }
    }
}

/// A sanction a rule imposed, remembered for escalation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The order of the evidence, if any: all sanctions of one order are one violation.
    pub order: Option<OrderId>,
    /// The evidence (the occasion when there is no order).
    pub evidence: EventId,
    /// The step imposed.
    pub step: Sanction,
    /// When.
    pub at: Timestamp,
}

impl Violation {
    fn same_occasion(&self, order: Option<OrderId>, evidence: EventId) -> bool {
        match (self.order, order) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.evidence == evidence,
            _ => false,
        }
    }
}

/// An appeal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appeal {
    /// Id.
    pub id: AppealId,
    /// Evidence appealed.
    pub evidence: EventId,
    /// Decided yet.
    pub decided: bool,
}

/// A subject's credit state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditState {
    /// Whose.
    pub subject: Subject,
    /// Score; `None` until the first adjustment (then it starts from the rule set's base).
    pub score: Option<i32>,
    /// Standing.
    pub standing: Standing,
    /// On the red list.
    pub red_listed: bool,
    /// Warnings so far (since the last repair).
    pub warnings: u32,
    /// Retrainings so far.
    pub retrainings: u32,
    /// Suspensions so far.
    pub suspensions: u32,
    /// Last negative adjustment.
    pub last_violation_at: Option<Timestamp>,
    /// Completed training since the last violation.
    pub trained_since_violation: bool,
    /// Evidence of the adjustment that caused the current sanction.
    pub sanction_evidence: Option<EventId>,
    /// Adjustments.
    pub adjustments: Vec<Adjustment>,
    /// Appeals.
    pub appeals: Vec<Appeal>,
    /// Retraining is owed (required and not yet recorded), whatever the standing.
    pub training_owed: bool,
    /// Evidence of the rule that made the training owed, if a rule did.
    pub training_evidence: Option<EventId>,
    /// Sanctions imposed by rules since the last repair, for escalation.
    pub violations: Vec<Violation>,
}

impl CreditState {
    /// A subject with no history.
    pub fn new(subject: Subject) -> Self {
        Self {
            subject,
            score: None,
            standing: Standing::Good,
            red_listed: false,
            warnings: 0,
            retrainings: 0,
            suspensions: 0,
            last_violation_at: None,
            trained_since_violation: false,
            sanction_evidence: None,
            adjustments: Vec::new(),
            appeals: Vec::new(),
            training_owed: false,
            training_evidence: None,
            violations: Vec::new(),
        }
    }

    /// The current score under `rules`.
    pub fn score(&self, rules: &RuleSet) -> i32 {
        self.score.unwrap_or(rules.base_score)
    }
}

fn check_reason(field: &'static str, text: &str) -> Result<(), DomainError> {
    if text.trim().is_empty() {
        return Err(DomainError::EmptyText { field });
    }
    if text.chars().count() > crate::order::MAX_TEXT_CHARS {
        return Err(DomainError::TextTooLong {
            field,
            max: crate::order::MAX_TEXT_CHARS,
        });
    }
    Ok(())
}

/// Decides a credit command against the subject's state under the current rule set.
pub fn decide(
    state: &CreditState,
    rules: &RuleSet,
    command: CreditCommand,
    now: Timestamp,
) -> Result<Vec<CreditEvent>, DomainError> {
    let subject = state.subject;
    match command {
        CreditCommand::ApplyRule {
            rule,
            evidence,
            order,
            fact,
        } => {
            let rule = rules.rule(&rule)?;
            if rule.subject != subject.kind() {
                return Err(DomainError::RuleNotForSubject {
                    rule: rule.id.clone(),
                    subject: subject.kind(),
                });
            }
            if state
                .adjustments
                .iter()
                .any(|a| a.rule == rule.id && a.evidence == evidence)
            {
                return Err(DomainError::RuleAlreadyApplied {
                    rule: rule.id.clone(),
                    evidence,
                });
            }
            if let (Some(o), Some(f)) = (order, fact)
                && let Some(counted) = state
                    .adjustments
                    .iter()
                    .find(|a| a.order == Some(o) && a.fact == Some(f))
            {
                return Err(DomainError::FactAlreadyCounted {
                    rule: rule.id.clone(),
                    counted_by: counted.rule.clone(),
                    evidence: counted.evidence,
                });
            }
            Ok(adjust(
                state,
                rules,
                Deduction {
                    rule: rule.id.clone(),
                    evidence,
                    order,
                    fact: if order.is_some() { fact } else { None },
                    delta: rule.points,
                    sanction: rule.sanction,
                },
                now,
            ))
        }
        CreditCommand::AdjustManually {
            points,
            reason,
            evidence,
        } => {
            check_reason("reason", &reason)?;
            if points == 0 {
                return Err(DomainError::ZeroAdjustment);
            }
            if state.adjustments.iter().any(|a| a.evidence == evidence) {
                return Err(DomainError::RuleAlreadyApplied {
                    rule: RuleId::builtin(RuleId::OPS_MANUAL),
                    evidence,
                });
            }
            Ok(adjust(
                state,
                rules,
                Deduction {
                    rule: RuleId::builtin(RuleId::OPS_MANUAL),
                    evidence,
                    order: None,
                    fact: None,
                    delta: points,
                    sanction: None,
                },
                now,
            ))
        }
        CreditCommand::CompleteTraining { course } => {
            check_reason("course", &course)?;
            if !state.training_owed {
                return Err(DomainError::NotInRetraining {
                    standing: state.standing,
                });
            }
            Ok(vec![CreditEvent::TrainingCompleted {
                subject,
                course,
                at: now,
            }])
        }
        CreditCommand::Suspend { reason } => {
            check_reason("reason", &reason)?;
            if state.standing >= Standing::Suspended {
                return Err(DomainError::AlreadySanctioned {
                    standing: state.standing,
                });
            }
            Ok(vec![CreditEvent::SubjectSuspended {
                subject,
                cause: SanctionCause::Ops { reason },
                at: now,
            }])
        }
        CreditCommand::Reinstate { reason } => {
            check_reason("reason", &reason)?;
            if state.standing != Standing::Suspended {
                return Err(DomainError::NotSuspended {
                    standing: state.standing,
                });
            }
            Ok(vec![CreditEvent::SubjectReinstated {
                subject,
                cause: SanctionCause::Ops { reason },
                at: now,
            }])
        }
        CreditCommand::BlackList { reason } => {
            check_reason("reason", &reason)?;
            if state.standing == Standing::BlackListed {
                return Err(DomainError::AlreadySanctioned {
                    standing: state.standing,
                });
            }
            let mut events = vec![CreditEvent::BlackListed {
                subject,
                cause: SanctionCause::Ops { reason },
                at: now,
            }];
            if state.red_listed {
                events.push(CreditEvent::RedListRemoved { subject, at: now });
            }
            Ok(events)
        }
        CreditCommand::FileAppeal {
            appeal_id,
            evidence,
            text,
        } => {
            check_reason("text", &text)?;
            if !state
                .adjustments
                .iter()
                .any(|a| a.evidence == evidence && a.delta < 0)
            {
                return Err(DomainError::NothingToAppeal { evidence });
            }
            if let Some(a) = state
                .appeals
                .iter()
                .find(|a| a.evidence == evidence || a.id == appeal_id)
            {
                return Err(DomainError::AppealAlreadyFiled { appeal: a.id });
            }
            Ok(vec![CreditEvent::AppealFiled {
                subject,
                appeal_id,
                evidence,
                text,
                at: now,
            }])
        }
        CreditCommand::DecideAppeal {
            appeal_id,
            upheld,
            note,
        } => {
            check_reason("note", &note)?;
            let Some(appeal) = state.appeals.iter().find(|a| a.id == appeal_id) else {
                return Err(DomainError::UnknownAppeal { appeal: appeal_id });
            };
            if appeal.decided {
                return Err(DomainError::AppealAlreadyDecided { appeal: appeal_id });
            }
            let mut events = vec![CreditEvent::AppealDecided {
                subject,
                appeal_id,
                upheld,
                note,
                at: now,
            }];
            if upheld {
                let delta: i32 = state
                    .adjustments
                    .iter()
                    .filter(|a| a.evidence == appeal.evidence)
                    .map(|a| a.delta)
                    .sum();
                let score_after = state.score(rules).saturating_sub(delta);
                events.push(CreditEvent::CreditAdjusted {
                    subject,
                    rule: RuleId::builtin(RuleId::APPEAL_REVERSAL),
                    rule_set_version: rules.version,
                    evidence: appeal.evidence,
                    delta: delta.saturating_neg(),
                    score_after,
                    at: now,
                    order: None,
                    fact: None,
                });
                if state.sanction_evidence == Some(appeal.evidence)
                    && state.standing > Standing::Good
                {
                    events.push(CreditEvent::SubjectReinstated {
                        subject,
                        cause: SanctionCause::Appeal { appeal: appeal_id },
                        at: now,
                    });
                }
            }
            Ok(events)
        }
        CreditCommand::RepairCredit => {
            let score = state.score(rules);
            if state.standing == Standing::Good && score >= rules.repair_score {
                return Err(DomainError::NothingToRepair);
            }
            if state.standing == Standing::InRetraining
                || state.training_owed
                || (subject.kind() == SubjectKind::Worker
                    && state.last_violation_at.is_some()
                    && !state.trained_since_violation)
            {
                return Err(DomainError::TrainingRequiredForRepair);
            }
            if let Some(last) = state.last_violation_at {
                let eligible_at = last.plus(rules.repair_clean_period);
                if now < eligible_at {
                    return Err(DomainError::RepairNotYetDue { eligible_at });
                }
            }
            Ok(vec![CreditEvent::CreditRepaired {
                subject,
                score_after: score.max(rules.repair_score),
                at: now,
            }])
        }
    }
}

/// One change of score to decide, with what it counts.
struct Deduction {
    rule: RuleId,
    evidence: EventId,
    order: Option<OrderId>,
    fact: Option<VisitFact>,
    delta: i32,
    sanction: Option<Sanction>,
}

fn adjust(state: &CreditState, rules: &RuleSet, d: Deduction, now: Timestamp) -> Vec<CreditEvent> {
    let subject = state.subject;
    let Deduction {
        rule,
        evidence,
        order,
        fact,
        delta,
        sanction,
    } = d;
    let score_after = state.score(rules).saturating_add(delta);
    let mut events = vec![CreditEvent::CreditAdjusted {
        subject,
        rule: rule.clone(),
        rule_set_version: rules.version,
        evidence,
        delta,
        score_after,
        at: now,
        order,
        fact,
    }];
    let cause = SanctionCause::Rule { rule, evidence };
    let mut black_listed = state.standing == Standing::BlackListed;
    if !black_listed {
        let step = sanction.and_then(|asked| escalate(state, rules, asked, order, evidence, now));
        if let Some(step) = step {
            let event = match step {
                Sanction::Warning => Some(CreditEvent::WarningIssued {
                    subject,
                    cause: cause.clone(),
                    at: now,
                }),
                // Also while in retraining or suspended: the violation counts and the
                // training is owed until recorded.
                Sanction::Retraining => Some(CreditEvent::RetrainingRequired {
                    subject,
                    cause: cause.clone(),
                    at: now,
                }),
                Sanction::Suspension if state.standing == Standing::Suspended => None,
                Sanction::Suspension => Some(CreditEvent::SubjectSuspended {
                    subject,
                    cause: cause.clone(),
                    at: now,
                }),
                Sanction::BlackList => {
                    black_listed = true;
                    Some(CreditEvent::BlackListed {
                        subject,
                        cause: cause.clone(),
                        at: now,
                    })
                }
            };
            events.extend(event);
        }
        if !black_listed && score_after < rules.black_list_below {
            black_listed = true;
            events.push(CreditEvent::BlackListed {
                subject,
                cause,
                at: now,
            });
        }
    }
    let violation = delta < 0;
    let stays_clean = !violation
        && state
            .last_violation_at
            .is_none_or(|last| last.plus(rules.red_list_clean_period) <= now)
        && state.standing == Standing::Good;
    if state.red_listed && (violation || black_listed || score_after < rules.red_list_at_least) {
        events.push(CreditEvent::RedListRemoved { subject, at: now });
    } else if !state.red_listed && stays_clean && score_after >= rules.red_list_at_least {
        events.push(CreditEvent::RedListed { subject, at: now });
    }
    events
}

/// The ladder step actually imposed for a rule asking for `asked` on the occasion `order`
/// (or `evidence` outside orders), given the history; `None` when this occasion was already
/// sanctioned at that step or worse (one visit is one violation).
fn escalate(
    state: &CreditState,
    rules: &RuleSet,
    asked: Sanction,
    order: Option<OrderId>,
    evidence: EventId,
    now: Timestamp,
) -> Option<Sanction> {
    let ladder = rules.ladder;
    let this_occasion = state
        .violations
        .iter()
        .filter(|v| v.same_occasion(order, evidence))
        .map(|v| v.step)
        .max();
    if this_occasion.is_some_and(|done| done >= asked) {
        return None;
    }
    // Earlier occasions within the window, each at its worst step.
    let mut earlier: Vec<&Violation> = Vec::new();
    for v in state.violations.iter().filter(|v| {
        !v.same_occasion(order, evidence) && ladder.window.is_none_or(|w| now < v.at.plus(w))
    }) {
        match earlier
            .iter_mut()
            .find(|e| e.same_occasion(v.order, v.evidence))
        {
            Some(e) if e.step < v.step => *e = v,
            Some(_) => {}
            None => earlier.push(v),
        }
    }
    let at_least = |step: Sanction| {
        let n = earlier.iter().filter(|v| v.step >= step).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    let mut step = asked;
    if step == Sanction::Warning && at_least(Sanction::Warning) >= ladder.warnings_before_retraining
    {
        step = Sanction::Retraining;
    }
    if step == Sanction::Retraining
        && (state.subject.kind() != SubjectKind::Worker
            || at_least(Sanction::Retraining) >= ladder.retrainings_before_suspension)
    {
        step = Sanction::Suspension;
    }
    if step == Sanction::Suspension && state.suspensions >= ladder.suspensions_before_black_list {
        step = Sanction::BlackList;
    }
    // Escalation may have reached what this occasion already got.
    if this_occasion.is_some_and(|done| done >= step) {
        return None;
    }
    Some(step)
}

/// Applies a stored credit event. Never validates.
pub fn evolve(mut state: CreditState, event: &CreditEvent) -> CreditState {
    match event {
        CreditEvent::CreditAdjusted {
            rule,
            evidence,
            delta,
            score_after,
            at,
            order,
            fact,
            ..
        } => {
            state.score = Some(*score_after);
            if *delta < 0 && rule.as_str() != RuleId::APPEAL_REVERSAL {
                state.last_violation_at = Some(*at);
                state.trained_since_violation = false;
            }
            state.adjustments.push(Adjustment {
                rule: rule.clone(),
                evidence: *evidence,
                delta: *delta,
                order: *order,
                fact: *fact,
            });
        }
        CreditEvent::WarningIssued { cause, at, .. } => {
            state.warnings = state.warnings.saturating_add(1);
            state.standing = state.standing.max(Standing::Warned);
            note_violation(&mut state, cause, Sanction::Warning, *at);
            note_cause(&mut state, cause);
        }
        CreditEvent::RetrainingRequired { cause, at, .. } => {
            state.retrainings = state.retrainings.saturating_add(1);
            state.standing = state.standing.max(Standing::InRetraining);
            state.training_owed = true;
            state.training_evidence = match cause {
                SanctionCause::Rule { evidence, .. } => Some(*evidence),
                _ => None,
            };
            note_violation(&mut state, cause, Sanction::Retraining, *at);
            note_cause(&mut state, cause);
        }
        CreditEvent::TrainingCompleted { .. } => {
            state.trained_since_violation = true;
            state.training_owed = false;
            state.training_evidence = None;
            if state.standing == Standing::InRetraining {
                state.standing = Standing::Good;
            }
        }
        CreditEvent::SubjectSuspended { cause, at, .. } => {
            state.suspensions = state.suspensions.saturating_add(1);
            state.standing = state.standing.max(Standing::Suspended);
            note_violation(&mut state, cause, Sanction::Suspension, *at);
            note_cause(&mut state, cause);
        }
        CreditEvent::SubjectReinstated { cause, .. } => {
            // An upheld appeal against the evidence that made training owed lifts it too;
            // anything else leaves owed training owed (and the worker out of the pool).
            if let SanctionCause::Appeal { appeal } = cause
                && let Some(a) = state.appeals.iter().find(|a| a.id == *appeal)
                && state.training_evidence == Some(a.evidence)
            {
                state.training_owed = false;
                state.training_evidence = None;
            }
            state.standing = if state.training_owed {
                Standing::InRetraining
            } else {
                Standing::Good
            };
            state.sanction_evidence = None;
        }
        CreditEvent::BlackListed { cause, at, .. } => {
            state.standing = Standing::BlackListed;
            state.red_listed = false;
            note_violation(&mut state, cause, Sanction::BlackList, *at);
            note_cause(&mut state, cause);
        }
        CreditEvent::RedListed { .. } => state.red_listed = true,
        CreditEvent::RedListRemoved { .. } => state.red_listed = false,
        CreditEvent::AppealFiled {
            appeal_id,
            evidence,
            ..
        } => {
            state.appeals.push(Appeal {
                id: *appeal_id,
                evidence: *evidence,
                decided: false,
            });
        }
        CreditEvent::AppealDecided { appeal_id, .. } => {
            if let Some(a) = state.appeals.iter_mut().find(|a| a.id == *appeal_id) {
                a.decided = true;
            }
        }
        CreditEvent::CreditRepaired { score_after, .. } => {
            state.score = Some(*score_after);
            state.standing = Standing::Good;
            state.warnings = 0;
            state.retrainings = 0;
            state.suspensions = 0;
            state.sanction_evidence = None;
            state.violations.clear();
        }
    }
    state
}

/// Remembers a sanction imposed by a rule, on the occasion of the adjustment it follows.
fn note_violation(state: &mut CreditState, cause: &SanctionCause, step: Sanction, at: Timestamp) {
    if let SanctionCause::Rule { rule, evidence } = cause {
        let order = state
            .adjustments
            .iter()
            .rev()
            .find(|a| a.rule == *rule && a.evidence == *evidence)
            .and_then(|a| a.order);
        state.violations.push(Violation {
            order,
            evidence: *evidence,
            step,
            at,
        });
    }
}

fn note_cause(state: &mut CreditState, cause: &SanctionCause) {
    if let SanctionCause::Rule { evidence, .. } = cause {
        state.sanction_evidence = Some(*evidence);
    } else {
        state.sanction_evidence = None;
    }
}

impl CreditEvent {
    /// The event type name stored in the event log.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::CreditAdjusted { .. } => "CreditAdjusted",
            Self::WarningIssued { .. } => "WarningIssued",
            Self::RetrainingRequired { .. } => "RetrainingRequired",
            Self::TrainingCompleted { .. } => "TrainingCompleted",
            Self::SubjectSuspended { .. } => "SubjectSuspended",
            Self::SubjectReinstated { .. } => "SubjectReinstated",
            Self::BlackListed { .. } => "BlackListed",
            Self::RedListed { .. } => "RedListed",
            Self::RedListRemoved { .. } => "RedListRemoved",
            Self::AppealFiled { .. } => "AppealFiled",
            Self::AppealDecided { .. } => "AppealDecided",
            Self::CreditRepaired { .. } => "CreditRepaired",
        }
    }
}

/// Events of the rule-set stream (`creditrules-global`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum RuleSetEvent {
    /// A new rule set version was published and applies from now on.
    CreditRuleSetPublished {
        /// The rule set.
        rule_set: RuleSet,
        /// When.
        at: Timestamp,
    },
}

impl RuleSetEvent {
    /// The event type name stored in the event log.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::CreditRuleSetPublished { .. } => "CreditRuleSetPublished",
        }
    }
}

/// The current rule set (state of `creditrules-global`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSetState {
    /// The latest published rule set.
    pub current: Option<RuleSet>,
}

/// Decides the publication of a rule set: valid, and a newer version than the current one.
pub fn publish_rule_set(
    state: &RuleSetState,
    rule_set: RuleSet,
    now: Timestamp,
) -> Result<Vec<RuleSetEvent>, DomainError> {
    rule_set.validate()?;
    if let Some(current) = &state.current
        && rule_set.version <= current.version
    {
        return Err(DomainError::RuleSetVersionNotNewer {
            current: current.version,
            proposed: rule_set.version,
        });
    }
    Ok(vec![RuleSetEvent::CreditRuleSetPublished {
        rule_set,
        at: now,
    }])
}

/// Applies a stored rule-set event.
pub fn evolve_rule_set(mut state: RuleSetState, event: &RuleSetEvent) -> RuleSetState {
    match event {
        RuleSetEvent::CreditRuleSetPublished { rule_set, .. } => {
            state.current = Some(rule_set.clone())
        }
    }
    state
}
