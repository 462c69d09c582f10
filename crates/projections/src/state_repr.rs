//! Serde representations for what the read models hold but that does not derive serde itself:
//! aggregate states of the domain crate (`Order`, `CreditState`, `RuleSetState`, which are folds,
//! not a serialization boundary there), the store's `Position`/`Revision`, and maps whose keys
//! are not JSON strings. Only checkpoint snapshots use them (`#[serde(with = "…")]`).
//!
//! The mirrors list every field by name, so a field added to a domain state fails to compile
//! here instead of being dropped from snapshots silently.

use daojia_domain::catalog::{Quote, SkillKind};
use daojia_domain::credit::{
    Adjustment, Appeal, CreditState, RuleSetState, Sanction, Violation, VisitFact,
};
use daojia_domain::order::{
    Assignment, Checklist, Complaint, DispatchMode, Dispute, GeoPoint, Order, PendingOffer,
    ServiceWindow, Slot, SlotIndex,
};
use daojia_domain::{
    AppealId, ComplaintId, CustomerId, DisputeId, EventId, Fen, Minutes, OrderId, OrderPhase,
    OrderTerms, RuleId, ServiceCode, Standing, Subject, Timestamp, WorkerId,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A map as a sequence of `(key, value)` pairs (JSON objects only take string keys).
pub(crate) mod pairs {
    use super::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<'a, M, K, V, S>(map: &'a M, serializer: S) -> Result<S::Ok, S::Error>
    where
        &'a M: IntoIterator<Item = (&'a K, &'a V)>,
        K: Serialize + 'a,
        V: Serialize + 'a,
        S: Serializer,
    {
        serializer.collect_seq(map)
    }

    pub(crate) fn deserialize<'de, M, K, V, D>(deserializer: D) -> Result<M, D::Error>
    where
        M: FromIterator<(K, V)>,
        K: Deserialize<'de>,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

/// `daojia_store::Position` as its number.
pub(crate) mod position {
    use super::{Deserialize, Deserializer, Serializer};
    use daojia_store::Position;

    pub(crate) fn serialize<S: Serializer>(p: &Position, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(p.0)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Position, D::Error> {
        u64::deserialize(d).map(Position)
    }
}

/// `daojia_store::Revision` as its number.
pub(crate) mod revision {
    use super::{Deserialize, Deserializer, Serializer};
    use daojia_store::Revision;

    pub(crate) fn serialize<S: Serializer>(r: &Revision, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(r.0)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Revision, D::Error> {
        u64::deserialize(d).map(Revision)
    }
}

#[derive(Serialize, Deserialize)]
struct CreditStateRepr {
    subject: Subject,
    score: Option<i32>,
    standing: Standing,
    red_listed: bool,
    warnings: u32,
    retrainings: u32,
    suspensions: u32,
    last_violation_at: Option<Timestamp>,
    trained_since_violation: bool,
    sanction_evidence: Option<EventId>,
    /// (rule, evidence, delta), then (order, fact) in snapshots that have them
    adjustments: Vec<AdjustmentRepr>,
    /// (id, evidence, decided)
    appeals: Vec<(AppealId, EventId, bool)>,
    /// Absent in snapshots older than owed training: then owed exactly when in retraining.
    #[serde(default)]
    training_owed: Option<bool>,
    #[serde(default)]
    training_evidence: Option<EventId>,
    /// (order, evidence, step, at)
    #[serde(default)]
    violations: Vec<(Option<OrderId>, EventId, Sanction, Timestamp)>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum AdjustmentRepr {
    WithFact(RuleId, EventId, i32, Option<OrderId>, Option<VisitFact>),
    Plain(RuleId, EventId, i32),
}

/// `CreditState` through [`CreditStateRepr`].
pub(crate) mod credit_state {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(c: &CreditState, s: S) -> Result<S::Ok, S::Error> {
        let CreditState {
            subject,
            score,
            standing,
            red_listed,
            warnings,
            retrainings,
            suspensions,
            last_violation_at,
            trained_since_violation,
            sanction_evidence,
            adjustments,
            appeals,
            training_owed,
            training_evidence,
            violations,
        } = c.clone();
        CreditStateRepr {
            subject,
            score,
            standing,
            red_listed,
            warnings,
            retrainings,
            suspensions,
            last_violation_at,
            trained_since_violation,
            sanction_evidence,
            adjustments: adjustments
                .into_iter()
                .map(|a| AdjustmentRepr::WithFact(a.rule, a.evidence, a.delta, a.order, a.fact))
                .collect(),
            appeals: appeals
                .into_iter()
                .map(|a| (a.id, a.evidence, a.decided))
                .collect(),
            training_owed: Some(training_owed),
            training_evidence,
            violations: violations
                .into_iter()
                .map(|v| (v.order, v.evidence, v.step, v.at))
                .collect(),
        }
        .serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CreditState, D::Error> {
        let r = CreditStateRepr::deserialize(d)?;
        Ok(CreditState {
            subject: r.subject,
            score: r.score,
            standing: r.standing,
            red_listed: r.red_listed,
            warnings: r.warnings,
            retrainings: r.retrainings,
            suspensions: r.suspensions,
            last_violation_at: r.last_violation_at,
            trained_since_violation: r.trained_since_violation,
            sanction_evidence: r.sanction_evidence,
            adjustments: r
                .adjustments
                .into_iter()
                .map(|a| match a {
                    AdjustmentRepr::WithFact(rule, evidence, delta, order, fact) => Adjustment {
                        rule,
                        evidence,
                        delta,
                        order,
                        fact,
                    },
                    AdjustmentRepr::Plain(rule, evidence, delta) => Adjustment {
                        rule,
                        evidence,
                        delta,
                        order: None,
                        fact: None,
                    },
                })
                .collect(),
            appeals: r
                .appeals
                .into_iter()
                .map(|(id, evidence, decided)| Appeal {
                    id,
                    evidence,
                    decided,
                })
                .collect(),
            training_owed: r
                .training_owed
                .unwrap_or(r.standing == Standing::InRetraining),
            training_evidence: r.training_evidence,
            violations: r
                .violations
                .into_iter()
                .map(|(order, evidence, step, at)| Violation {
                    order,
                    evidence,
                    step,
                    at,
                })
                .collect(),
        })
    }
}

/// `RuleSetState` as its current rule set.
pub(crate) mod rule_set_state {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(r: &RuleSetState, s: S) -> Result<S::Ok, S::Error> {
        r.current.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RuleSetState, D::Error> {
        Ok(RuleSetState {
            current: Deserialize::deserialize(d)?,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct AssignmentRepr {
    worker: WorkerId,
    accepted_at: Timestamp,
    checked_in: Option<(Timestamp, Minutes)>,
    completed: Option<(Timestamp, Checklist)>,
}

#[derive(Serialize, Deserialize)]
struct SlotRepr {
    /// (worker, expires at)
    offers: Vec<(WorkerId, Timestamp)>,
    assignment: Option<AssignmentRepr>,
}

#[derive(Serialize, Deserialize)]
struct OrderRepr {
    id: OrderId,
    customer: CustomerId,
    service: ServiceCode,
    required_certificates: Vec<SkillKind>,
    quote: Quote,
    window: ServiceWindow,
    location: GeoPoint,
    dispatch: DispatchMode,
    terms: OrderTerms,
    slots: Vec<(SlotIndex, SlotRepr)>,
    passed_over: Vec<WorkerId>,
    preferred_offered: bool,
    /// Absent in snapshots written before escalation existed.
    #[serde(default)]
    escalated: bool,
    phase: OrderPhase,
    served_at: Option<Timestamp>,
    fee_charged: Fen,
    refunded: Fen,
    /// (id, resolved)
    disputes: Vec<(DisputeId, bool)>,
    /// (id, against, resolved)
    complaints: Vec<(ComplaintId, WorkerId, bool)>,
}

/// `Order` through [`OrderRepr`].
pub(crate) mod order {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(o: &Order, s: S) -> Result<S::Ok, S::Error> {
        let Order {
            id,
            customer,
            service,
            required_certificates,
            quote,
            window,
            location,
            dispatch,
            terms,
            slots,
            passed_over,
            preferred_offered,
            escalated,
            phase,
            served_at,
            fee_charged,
            refunded,
            disputes,
            complaints,
        } = o.clone();
        OrderRepr {
            id,
            customer,
            service,
            required_certificates,
            quote,
            window,
            location,
            dispatch,
            terms,
            slots: slots
                .into_iter()
                .map(|(i, slot)| {
                    let offers = slot
                        .offers
                        .iter()
                        .map(|o| (o.worker, o.expires_at))
                        .collect();
                    let assignment = slot.assignment.map(|a| AssignmentRepr {
                        worker: a.worker,
                        accepted_at: a.accepted_at,
                        checked_in: a.checked_in,
                        completed: a.completed,
                    });
                    (i, SlotRepr { offers, assignment })
                })
                .collect(),
            passed_over,
            preferred_offered,
            escalated,
            phase,
            served_at,
            fee_charged,
            refunded,
            disputes: disputes.into_iter().map(|d| (d.id, d.resolved)).collect(),
            complaints: complaints
                .into_iter()
                .map(|c| (c.id, c.against, c.resolved))
                .collect(),
        }
        .serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Order, D::Error> {
        let r = OrderRepr::deserialize(d)?;
        Ok(Order {
            id: r.id,
            customer: r.customer,
            service: r.service,
            required_certificates: r.required_certificates,
            quote: r.quote,
            window: r.window,
            location: r.location,
            dispatch: r.dispatch,
            terms: r.terms,
            slots: r
                .slots
                .into_iter()
                .map(|(i, slot)| {
                    let offers = slot
                        .offers
                        .into_iter()
                        .map(|(worker, expires_at)| PendingOffer { worker, expires_at })
                        .collect();
                    let assignment = slot.assignment.map(|a| Assignment {
                        worker: a.worker,
                        accepted_at: a.accepted_at,
                        checked_in: a.checked_in,
                        completed: a.completed,
                    });
                    (i, Slot { offers, assignment })
                })
                .collect(),
            passed_over: r.passed_over,
            preferred_offered: r.preferred_offered,
            escalated: r.escalated,
            phase: r.phase,
            served_at: r.served_at,
            fee_charged: r.fee_charged,
            refunded: r.refunded,
            disputes: r
                .disputes
                .into_iter()
                .map(|(id, resolved)| Dispute { id, resolved })
                .collect(),
            complaints: r
                .complaints
                .into_iter()
                .map(|(id, against, resolved)| Complaint {
                    id,
                    against,
                    resolved,
                })
                .collect(),
        })
    }
}
