//! Ops follow-up tasks (三必访四必谈): a visit for every new worker and every dispute, a talk
//! after every complaint and every violation. [`follow_up_for`] derives the task from the
//! triggering event; the task (stream `followup-<uuid>`) stays open until ops closes it.
//!
//! A review tag the visit record contradicts (`late` on an on-time check-in) deducts no
//! credit; it opens a talk instead ([`FollowUpReason::ReviewContradictsRecord`]), whose first
//! note ([`contested_note`]) says what the tag claims and what the record shows.
//!
//! A worker is "new" when their home-visit certificate is issued: that is when they enter the
//! programme. A task's id is its trigger event's id, so deriving it twice opens it once.

use serde::{Deserialize, Serialize};

use crate::certificates::{CertificateEvent, CertificateKind};
use crate::credit::{ContestedTag, CreditEvent, SanctionCause, Subject, VisitFact};
use crate::error::DomainError;
use crate::ids::{EventId, FollowUpId, OrderId};
use crate::order::{MAX_TEXT_CHARS, OrderEvent, ReviewTag};
use crate::time::{Minutes, Timestamp};

/// Visit (访) or talk (谈).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpKind {
    /// A visit.
    Visit,
    /// A talk.
    Talk,
}

/// Why the task exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpReason {
    /// A new worker.
    NewWorker,
    /// A dispute.
    Dispute,
    /// A complaint.
    Complaint,
    /// A violation (a sanction imposed by a credit rule).
    Violation,
    /// An emergency call nobody accepted in time: call the household now.
    Emergency,
    /// A review tag the visit record contradicts (no credit deducted): check with the
    /// customer and the worker, and open a dispute if the record is wrong.
    ReviewContradictsRecord,
}

/// How soon tasks are due (configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpPolicy {
    /// Visits are due within this.
    pub visit_within: Minutes,
    /// Talks are due within this.
    pub talk_within: Minutes,
}

impl Default for FollowUpPolicy {
    /// Visits within 7 days, talks within 2 days (our proposal).
    fn default() -> Self {
        Self {
            visit_within: Minutes::days(7),
            talk_within: Minutes::days(2),
        }
    }
}

/// A follow-up task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUpTask {
    /// Id (= the trigger event's id).
    pub id: FollowUpId,
    /// Visit or talk.
    pub kind: FollowUpKind,
    /// Why.
    pub reason: FollowUpReason,
    /// Whom to visit or talk to, when known from the event.
    pub about: Option<Subject>,
    /// The order concerned, if any.
    pub order: Option<OrderId>,
    /// The triggering event.
    pub trigger: EventId,
    /// Due by.
    pub due_at: Timestamp,
}

/// An event that may call for a follow-up.
#[derive(Clone, Copy, Debug)]
pub enum TriggerEvent<'a> {
    /// An event of an order stream.
    Order(OrderId, &'a OrderEvent),
    /// An event of a credit stream.
    Credit(&'a CreditEvent),
    /// An event of a certificate registry.
    Certificate(&'a CertificateEvent),
    /// A review of `order` with tags the visit record contradicts (from
    /// [`crate::credit::contested_tags`]; nothing is opened when empty).
    ContestedReview(OrderId, &'a [ContestedTag]),
}

/// The follow-up task `event` (stored with id `trigger`, at `at`) calls for, if any.
pub fn follow_up_for(
    trigger: EventId,
    event: TriggerEvent<'_>,
    policy: FollowUpPolicy,
    at: Timestamp,
) -> Option<FollowUpTask> {
    let (kind, reason, about, order) = match event {
        TriggerEvent::Certificate(CertificateEvent::CertificateIssued {
            worker,
            kind: CertificateKind::HomeVisit,
            ..
        }) => (
            FollowUpKind::Visit,
            FollowUpReason::NewWorker,
            Some(Subject::Worker(*worker)),
            None,
        ),
        TriggerEvent::ContestedReview(order, tags) => (
            FollowUpKind::Talk,
            FollowUpReason::ReviewContradictsRecord,
            Some(Subject::Worker(tags.first()?.record.worker)),
            Some(order),
        ),
        TriggerEvent::Order(order, OrderEvent::DisputeRaised { .. }) => (
            FollowUpKind::Visit,
            FollowUpReason::Dispute,
            None,
            Some(order),
        ),
        TriggerEvent::Order(order, OrderEvent::EmergencyEscalated { .. }) => (
            FollowUpKind::Talk,
            FollowUpReason::Emergency,
            None,
            Some(order),
        ),
        TriggerEvent::Order(order, OrderEvent::ComplaintFiled { against, .. }) => (
            FollowUpKind::Talk,
            FollowUpReason::Complaint,
            Some(Subject::Worker(*against)),
            Some(order),
        ),
        TriggerEvent::Credit(
            CreditEvent::WarningIssued {
                subject,
                cause: SanctionCause::Rule { .. },
                ..
            }
            | CreditEvent::RetrainingRequired {
                subject,
                cause: SanctionCause::Rule { .. },
                ..
            }
            | CreditEvent::SubjectSuspended {
                subject,
                cause: SanctionCause::Rule { .. },
                ..
            }
            | CreditEvent::BlackListed {
                subject,
                cause: SanctionCause::Rule { .. },
                ..
            },
        ) => (
            FollowUpKind::Talk,
            FollowUpReason::Violation,
            Some(*subject),
            None,
        ),
        _ => return None,
    };
    let within = match (kind, reason) {
        // Someone is waiting for help: due at once.
        (_, FollowUpReason::Emergency) => Minutes(0),
        (FollowUpKind::Visit, _) => policy.visit_within,
        (FollowUpKind::Talk, _) => policy.talk_within,
    };
    Some(FollowUpTask {
        id: FollowUpId::new(trigger.uuid()),
        kind,
        reason,
        about,
        order,
        trigger,
        due_at: at.plus(within),
    })
}

/// The note recorded on a [`FollowUpReason::ReviewContradictsRecord`] task: each contested
/// tag with what the record shows.
pub fn contested_note(tags: &[ContestedTag]) -> String {
    let lines: Vec<String> = tags
        .iter()
        .map(|c| {
            let tag = match c.tag {
                ReviewTag::Late => "late",
                ReviewTag::ToolsNotDisinfected => "tools_not_disinfected",
                ReviewTag::Careless => "careless",
                ReviewTag::Rude => "rude",
                ReviewTag::Excellent => "excellent",
                ReviewTag::Punctual => "punctual",
                ReviewTag::Professional => "professional",
            };
            let record = match VisitFact::restated_by(c.tag) {
                Some(VisitFact::LateCheckIn) => match c.record.late_by {
                    Some(late) => format!("checked in {} min after the window start", late.0),
                    None => "no check-in recorded".to_owned(),
                },
                Some(VisitFact::ToolsNotDisinfected) => match c.record.tools_disinfected {
                    Some(true) => "completion checklist: tools disinfected".to_owned(),
                    Some(false) => "completion checklist: tools not disinfected".to_owned(),
                    None => "no completion recorded".to_owned(),
                },
                None => "nothing recorded".to_owned(),
            };
            format!(
                "review tag `{tag}` contradicts the record of worker {}: {record}; no credit deducted",
                c.record.worker
            )
        })
        .collect();
    lines.join("\n")
}

/// Commands on a follow-up task (the acting ops user is recorded in event metadata).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowUpCommand {
    /// Open the task.
    Open(FollowUpTask),
    /// Record a note (a visit or call made).
    Note {
        /// Text.
        text: String,
    },
    /// Close the task with its outcome.
    Close {
        /// Outcome.
        outcome: String,
    },
}

/// Events of a follow-up stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum FollowUpEvent {
    /// Opened.
    FollowUpOpened {
        /// The task.
        task: FollowUpTask,
        /// When.
        at: Timestamp,
    },
    /// A note was recorded.
    FollowUpNoted {
        /// Text.
        text: String,
        /// When.
        at: Timestamp,
    },
    /// Closed.
    FollowUpClosed {
        /// Outcome.
        outcome: String,
        /// When.
        at: Timestamp,
    },
}

impl FollowUpEvent {
    /// The event type name stored in the event log.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::FollowUpOpened { .. } => "FollowUpOpened",
            Self::FollowUpNoted { .. } => "FollowUpNoted",
            Self::FollowUpClosed { .. } => "FollowUpClosed",
        }
    }
}

/// A follow-up task's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FollowUpState {
    /// The task, once opened.
    pub task: Option<FollowUpTask>,
    /// Notes recorded.
    pub notes: u32,
    /// Closed.
    pub closed: bool,
}

impl FollowUpState {
    /// Open and past its due time.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        !self.closed && self.task.as_ref().is_some_and(|t| now > t.due_at)
    }
}

fn check_text(field: &'static str, text: &str) -> Result<(), DomainError> {
    if text.trim().is_empty() {
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

/// Decides a follow-up command.
pub fn decide(
    state: &FollowUpState,
    command: FollowUpCommand,
    now: Timestamp,
) -> Result<Vec<FollowUpEvent>, DomainError> {
    match (&state.task, command) {
        (Some(task), FollowUpCommand::Open(_)) => {
            Err(DomainError::FollowUpAlreadyOpened { follow_up: task.id })
        }
        (None, FollowUpCommand::Open(task)) => {
            Ok(vec![FollowUpEvent::FollowUpOpened { task, at: now }])
        }
        (None, _) => Err(DomainError::FollowUpNotOpened),
        (Some(task), _) if state.closed => Err(DomainError::FollowUpClosed { follow_up: task.id }),
        (Some(_), FollowUpCommand::Note { text }) => {
            check_text("text", &text)?;
            Ok(vec![FollowUpEvent::FollowUpNoted { text, at: now }])
        }
        (Some(_), FollowUpCommand::Close { outcome }) => {
            check_text("outcome", &outcome)?;
            Ok(vec![FollowUpEvent::FollowUpClosed { outcome, at: now }])
        }
    }
}

/// Applies a stored follow-up event. Never validates.
pub fn evolve(mut state: FollowUpState, event: &FollowUpEvent) -> FollowUpState {
    match event {
        FollowUpEvent::FollowUpOpened { task, .. } => state.task = Some(task.clone()),
        FollowUpEvent::FollowUpNoted { .. } => state.notes = state.notes.saturating_add(1),
        FollowUpEvent::FollowUpClosed { .. } => state.closed = true,
    }
    state
}
