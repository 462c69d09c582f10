//! Read-model values as the `daojia.v1.Queries` API shows them: every conversion from
//! `daojia_projections` types to `pb` types, in one place.

use daojia_domain::catalog::Category;
use daojia_domain::credit::{CreditEvent, SanctionCause, Standing, Subject, SubjectKind};
use daojia_domain::followups::{FollowUpKind, FollowUpReason};
use daojia_domain::order::{ComplaintCategory, Party, ReviewTag};
use daojia_domain::{CertificateId, Timestamp};
use daojia_projections::credit::{CreditView, HistoryEntry};
use daojia_projections::kpis::{Counters, Day};
use daojia_projections::ops::{OpenComplaint, OpenDispute, OpenFollowUp};
use daojia_projections::orders::OrderRecord;
use daojia_projections::workers::{Booking, BookingStatus, CertificateInfo};

use crate::order_view::{order_view, timestamp};
use crate::pb;

/// An order of the orders read model.
pub fn order_entry(record: &OrderRecord) -> pb::OrderEntry {
    pb::OrderEntry {
        order: Some(order_view(&record.order, record.revision.0)),
        posted_at: Some(timestamp(record.posted_at)),
        review: record.review.as_ref().map(|r| pb::OrderReview {
            stars: u32::from(r.stars.get()),
            tags: r.tags.iter().map(|t| review_tag(*t) as i32).collect(),
            text: r.text.clone(),
            at: Some(timestamp(r.at)),
        }),
    }
}

fn review_tag(tag: ReviewTag) -> pb::ReviewTag {
    match tag {
        ReviewTag::Late => pb::ReviewTag::Late,
        ReviewTag::ToolsNotDisinfected => pb::ReviewTag::ToolsNotDisinfected,
        ReviewTag::Careless => pb::ReviewTag::Careless,
        ReviewTag::Rude => pb::ReviewTag::Rude,
        ReviewTag::Excellent => pb::ReviewTag::Excellent,
        ReviewTag::Punctual => pb::ReviewTag::Punctual,
        ReviewTag::Professional => pb::ReviewTag::Professional,
    }
}

/// A credit standing.
pub fn standing(standing: Standing) -> pb::CreditStanding {
    match standing {
        Standing::Good => pb::CreditStanding::Good,
        Standing::Warned => pb::CreditStanding::Warned,
        Standing::InRetraining => pb::CreditStanding::InRetraining,
        Standing::Suspended => pb::CreditStanding::Suspended,
        Standing::BlackListed => pb::CreditStanding::BlackListed,
    }
}

/// A subject kind.
pub fn subject_kind(kind: SubjectKind) -> pb::CreditSubjectKind {
    match kind {
        SubjectKind::Worker => pb::CreditSubjectKind::Worker,
        SubjectKind::Company => pb::CreditSubjectKind::Company,
        SubjectKind::Customer => pb::CreditSubjectKind::Customer,
    }
}

/// A credit subject.
pub fn subject(subject: Subject) -> pb::CreditSubject {
    let id = match subject {
        Subject::Worker(id) => id.to_string(),
        Subject::Company(id) => id.to_string(),
        Subject::Customer(id) => id.to_string(),
    };
    pb::CreditSubject {
        kind: subject_kind(subject.kind()) as i32,
        id,
    }
}

/// A subject on the red or black list.
pub fn listed_subject(credit: &CreditView, s: Subject) -> pb::ListedSubject {
    pb::ListedSubject {
        subject: Some(subject(s)),
        score: credit.score(s),
        standing: standing(credit.standing(s)) as i32,
    }
}

/// One entry of a credit history.
pub fn history_entry(entry: &HistoryEntry) -> pb::CreditHistoryEntry {
    let mut out = pb::CreditHistoryEntry {
        position: entry.position.0,
        event_id: entry.event_id.to_string(),
        event_type: credit_event_type(&entry.event).to_owned(),
        ..Default::default()
    };
    let at = match &entry.event {
        CreditEvent::CreditAdjusted {
            rule,
            evidence,
            delta,
            score_after,
            at,
            ..
        } => {
            out.rule = rule.as_str().to_owned();
            out.evidence_event_id = evidence.to_string();
            out.delta = *delta;
            out.score_after = Some(*score_after);
            at
        }
        CreditEvent::WarningIssued { cause, at, .. }
        | CreditEvent::RetrainingRequired { cause, at, .. }
        | CreditEvent::SubjectSuspended { cause, at, .. }
        | CreditEvent::SubjectReinstated { cause, at, .. }
        | CreditEvent::BlackListed { cause, at, .. } => {
            if let SanctionCause::Rule { rule, evidence } = cause {
                out.rule = rule.as_str().to_owned();
                out.evidence_event_id = evidence.to_string();
            }
            at
        }
        CreditEvent::AppealFiled { evidence, at, .. } => {
            out.evidence_event_id = evidence.to_string();
            at
        }
        CreditEvent::CreditRepaired {
            score_after, at, ..
        } => {
            out.score_after = Some(*score_after);
            at
        }
        CreditEvent::TrainingCompleted { at, .. }
        | CreditEvent::RedListed { at, .. }
        | CreditEvent::RedListRemoved { at, .. }
        | CreditEvent::AppealDecided { at, .. } => at,
    };
    out.at = Some(timestamp(*at));
    out
}

fn credit_event_type(event: &CreditEvent) -> &'static str {
    match event {
        CreditEvent::CreditAdjusted { .. } => "CreditAdjusted",
        CreditEvent::WarningIssued { .. } => "WarningIssued",
        CreditEvent::RetrainingRequired { .. } => "RetrainingRequired",
        CreditEvent::TrainingCompleted { .. } => "TrainingCompleted",
        CreditEvent::SubjectSuspended { .. } => "SubjectSuspended",
        CreditEvent::SubjectReinstated { .. } => "SubjectReinstated",
        CreditEvent::BlackListed { .. } => "BlackListed",
        CreditEvent::RedListed { .. } => "RedListed",
        CreditEvent::RedListRemoved { .. } => "RedListRemoved",
        CreditEvent::AppealFiled { .. } => "AppealFiled",
        CreditEvent::AppealDecided { .. } => "AppealDecided",
        CreditEvent::CreditRepaired { .. } => "CreditRepaired",
    }
}

/// A worker's certificate, with its status at `now`.
pub fn certificate(
    id: CertificateId,
    c: &CertificateInfo,
    now: Timestamp,
) -> pb::WorkerCertificate {
    pb::WorkerCertificate {
        certificate_id: id.to_string(),
        kind: crate::door::certificate_kind(&c.kind),
        company_id: c.company.to_string(),
        valid_until: Some(timestamp(c.valid_until)),
        status: crate::door::certificate_status(c.status(now)) as i32,
    }
}

/// A booked slot.
pub fn booking(b: &Booking) -> pb::Booking {
    pb::Booking {
        order_id: b.order.to_string(),
        slot: b.slot.0,
        window_start: Some(timestamp(b.window.start)),
        window_end: Some(timestamp(b.window.end)),
        status: match b.status {
            BookingStatus::Accepted => pb::BookingStatus::Accepted,
            BookingStatus::CheckedIn => pb::BookingStatus::CheckedIn,
            BookingStatus::Completed => pb::BookingStatus::Completed,
        } as i32,
    }
}

/// An open follow-up task.
pub fn follow_up(f: &OpenFollowUp) -> pb::FollowUp {
    let task = &f.task;
    pb::FollowUp {
        follow_up_id: task.id.to_string(),
        kind: match task.kind {
            FollowUpKind::Visit => pb::FollowUpKind::Visit,
            FollowUpKind::Talk => pb::FollowUpKind::Talk,
        } as i32,
        reason: match task.reason {
            FollowUpReason::NewWorker => pb::FollowUpReason::NewWorker,
            FollowUpReason::Dispute => pb::FollowUpReason::Dispute,
            FollowUpReason::Complaint => pb::FollowUpReason::Complaint,
            FollowUpReason::Violation => pb::FollowUpReason::Violation,
            FollowUpReason::Emergency => pb::FollowUpReason::Emergency,
            FollowUpReason::ReviewContradictsRecord => pb::FollowUpReason::ReviewContradictsRecord,
        } as i32,
        about: task.about.map(subject),
        order_id: task.order.map(|o| o.to_string()).unwrap_or_default(),
        trigger_event_id: task.trigger.to_string(),
        due_at: Some(timestamp(task.due_at)),
        opened_at: Some(timestamp(f.opened_at)),
        notes: f
            .notes
            .iter()
            .map(|(at, text)| pb::FollowUpNote {
                at: Some(timestamp(*at)),
                text: text.clone(),
            })
            .collect(),
    }
}

/// An open complaint.
pub fn complaint(c: &OpenComplaint) -> pb::OpenComplaint {
    pb::OpenComplaint {
        complaint_id: c.id.to_string(),
        order_id: c.order.to_string(),
        customer_id: c.customer.to_string(),
        worker_id: c.against.to_string(),
        category: match c.category {
            ComplaintCategory::Quality => pb::ComplaintCategory::Quality,
            ComplaintCategory::Conduct => pb::ComplaintCategory::Conduct,
            ComplaintCategory::Damage => pb::ComplaintCategory::Damage,
            ComplaintCategory::Safety => pb::ComplaintCategory::Safety,
            ComplaintCategory::Pricing => pb::ComplaintCategory::Pricing,
        } as i32,
        text: c.text.clone(),
        filed_at: Some(timestamp(c.filed_at)),
    }
}

/// An open dispute.
pub fn dispute(d: &OpenDispute) -> pb::OpenDispute {
    pb::OpenDispute {
        dispute_id: d.id.to_string(),
        order_id: d.order.to_string(),
        raised_by: match d.by {
            Party::Customer(_) => pb::DisputeParty::Customer,
            Party::Worker(_) => pb::DisputeParty::Worker,
            Party::Ops => pb::DisputeParty::Ops,
        } as i32,
        reason: d.reason.clone(),
        raised_at: Some(timestamp(d.raised_at)),
    }
}

/// One row of KPIs.
pub fn kpi_row(key: String, c: &Counters) -> pb::KpiRow {
    pb::KpiRow {
        key,
        counts: Some(pb::KpiCounts {
            posted: c.posted,
            filled: c.filled,
            first_accepts: c.first_accepts,
            accept_minutes: c.accept_minutes,
            check_ins: c.check_ins,
            late_check_ins: c.late_check_ins,
            served: c.served,
            reviews: c.reviews,
            good_reviews: c.good_reviews,
            stars: c.stars,
            complaints: c.complaints,
            repurchased: c.repurchased,
        }),
        good_review_rate_bp: c.good_review_rate(),
        satisfaction_centi_stars: c.satisfaction(),
        repurchase_rate_bp: c.repurchase_rate(),
        complaint_rate_bp: c.complaint_rate(),
        lateness_rate_bp: c.lateness_rate(),
        fill_rate_bp: c.fill_rate(),
        mean_minutes_to_accept: c.mean_minutes_to_accept(),
    }
}

/// A category's key (`cleaning`, `eldercare`, ...).
pub fn category_key(category: Category) -> String {
    serde_json::to_value(category)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A China-time day as `YYYY-MM-DD` (proleptic Gregorian; H. Hinnant's `civil_from_days`).
pub fn day_key(day: Day) -> String {
    let z = day.0 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_print_as_calendar_dates() {
        assert_eq!(day_key(Day(0)), "1970-01-01");
        assert_eq!(day_key(Day(-1)), "1969-12-31");
        assert_eq!(day_key(Day(59)), "1970-03-01");
        // 2027-01-15T08:00:00Z is 16:00 China time the same day.
        assert_eq!(day_key(Day::of(Timestamp(1_800_000_000_000))), "2027-01-15");
    }
}
