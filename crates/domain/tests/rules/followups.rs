//! Follow-up tasks (三必访四必谈) derived from events and kept open until ops closes them.

use daojia_domain::certificates::{CertificateEvent, CertificateKind, IdentityNumber};
use daojia_domain::credit::{CreditEvent, SanctionCause};
use daojia_domain::followups::{
    self, FollowUpCommand, FollowUpEvent, FollowUpKind, FollowUpPolicy, FollowUpReason,
    FollowUpState, FollowUpTask, TriggerEvent,
};
use daojia_domain::order::{ComplaintCategory, OrderEvent, Party};
use daojia_domain::{
    CertificateId, CompanyId, DomainError, EventId, FollowUpId, Minutes, RuleId, Subject,
};

use crate::framework::Case;
use crate::order_lifecycle::{COMPLAINT, CUSTOMER, DISPUTE, ORDER, T0, W1};

const TRIGGER: EventId = EventId::from_u128(0x7777);

fn task_for(event: TriggerEvent<'_>) -> Option<FollowUpTask> {
    followups::follow_up_for(TRIGGER, event, FollowUpPolicy::default(), T0)
}

fn case() -> Case<FollowUpState, FollowUpCommand, FollowUpEvent> {
    Case::new(
        FollowUpState::default(),
        Box::new(followups::decide),
        followups::evolve,
    )
}

#[test]
fn every_new_worker_gets_a_visit() {
    let issued = CertificateEvent::CertificateIssued {
        certificate_id: CertificateId::from_u128(1),
        worker: W1,
        identity: IdentityNumber::new("11010519491231002X").unwrap(),
        company: CompanyId::from_u128(2),
        kind: CertificateKind::HomeVisit,
        issued_at: T0,
        valid_until: T0.plus(Minutes::days(365)),
    };
    assert_eq!(
        task_for(TriggerEvent::Certificate(&issued)),
        Some(FollowUpTask {
            id: FollowUpId::new(TRIGGER.uuid()),
            kind: FollowUpKind::Visit,
            reason: FollowUpReason::NewWorker,
            about: Some(Subject::Worker(W1)),
            order: None,
            trigger: TRIGGER,
            due_at: T0.plus(Minutes::days(7)),
        })
    );
}

#[test]
fn every_dispute_gets_a_visit_and_every_complaint_a_talk() {
    let dispute = OrderEvent::DisputeRaised {
        dispute_id: DISPUTE,
        by: Party::Customer(CUSTOMER),
        reason: "x".into(),
        at: T0,
    };
    let t = task_for(TriggerEvent::Order(ORDER, &dispute)).unwrap();
    assert_eq!(
        (t.kind, t.reason, t.order),
        (FollowUpKind::Visit, FollowUpReason::Dispute, Some(ORDER))
    );
    let complaint = OrderEvent::ComplaintFiled {
        complaint_id: COMPLAINT,
        customer: CUSTOMER,
        against: W1,
        category: ComplaintCategory::Conduct,
        text: "x".into(),
        at: T0,
    };
    let t = task_for(TriggerEvent::Order(ORDER, &complaint)).unwrap();
    assert_eq!(
        (t.kind, t.reason, t.about),
        (
            FollowUpKind::Talk,
            FollowUpReason::Complaint,
            Some(Subject::Worker(W1))
        )
    );
    assert_eq!(t.due_at, T0.plus(Minutes::days(2)));
    assert_eq!(
        task_for(TriggerEvent::Order(
            ORDER,
            &OrderEvent::OrderServed { at: T0 }
        )),
        None
    );
}

#[test]
fn an_escalated_emergency_call_gets_a_talk_due_at_once() {
    let escalated = OrderEvent::EmergencyEscalated { at: T0 };
    let t = task_for(TriggerEvent::Order(ORDER, &escalated)).unwrap();
    assert_eq!(
        (t.kind, t.reason, t.order, t.due_at),
        (
            FollowUpKind::Talk,
            FollowUpReason::Emergency,
            Some(ORDER),
            T0
        )
    );
}

#[test]
fn every_rule_violation_gets_a_talk_but_ops_sanctions_do_not() {
    let cause = SanctionCause::Rule {
        rule: RuleId::new("worker.late_check_in").unwrap(),
        evidence: EventId::from_u128(1),
    };
    let warning = CreditEvent::WarningIssued {
        subject: Subject::Worker(W1),
        cause,
        at: T0,
    };
    let t = task_for(TriggerEvent::Credit(&warning)).unwrap();
    assert_eq!(
        (t.kind, t.reason),
        (FollowUpKind::Talk, FollowUpReason::Violation)
    );
    let ops = CreditEvent::SubjectSuspended {
        subject: Subject::Worker(W1),
        cause: SanctionCause::Ops { reason: "x".into() },
        at: T0,
    };
    assert_eq!(task_for(TriggerEvent::Credit(&ops)), None);
}

fn task() -> FollowUpTask {
    let dispute = OrderEvent::DisputeRaised {
        dispute_id: DISPUTE,
        by: Party::Customer(CUSTOMER),
        reason: "x".into(),
        at: T0,
    };
    task_for(TriggerEvent::Order(ORDER, &dispute)).unwrap()
}

#[test]
fn task_stays_open_until_ops_closes_it() {
    let opened = FollowUpEvent::FollowUpOpened {
        task: task(),
        at: T0,
    };
    case()
        .when(FollowUpCommand::Open(task()), T0)
        .then(vec![opened.clone()]);
    case()
        .given(std::slice::from_ref(&opened))
        .when(
            FollowUpCommand::Note {
                text: "visited the family".into(),
            },
            T0,
        )
        .then(vec![FollowUpEvent::FollowUpNoted {
            text: "visited the family".into(),
            at: T0,
        }]);
    let state = [opened.clone()]
        .iter()
        .fold(FollowUpState::default(), followups::evolve);
    assert!(!state.is_overdue(T0.plus(Minutes::days(7))));
    assert!(state.is_overdue(T0.plus(Minutes::days(7)).plus(Minutes(1))));
    let closed = FollowUpEvent::FollowUpClosed {
        outcome: "settled".into(),
        at: T0,
    };
    case()
        .given(std::slice::from_ref(&opened))
        .when(
            FollowUpCommand::Close {
                outcome: "settled".into(),
            },
            T0,
        )
        .then(vec![closed.clone()]);
    let state = [opened.clone(), closed.clone()]
        .iter()
        .fold(FollowUpState::default(), followups::evolve);
    assert!(!state.is_overdue(T0.plus(Minutes::days(30))));
}

#[test]
fn follow_up_refusals() {
    let opened = FollowUpEvent::FollowUpOpened {
        task: task(),
        at: T0,
    };
    let id = task().id;
    case()
        .given(std::slice::from_ref(&opened))
        .when(FollowUpCommand::Open(task()), T0)
        .then_error(DomainError::FollowUpAlreadyOpened { follow_up: id });
    case()
        .when(
            FollowUpCommand::Close {
                outcome: "x".into(),
            },
            T0,
        )
        .then_error(DomainError::FollowUpNotOpened);
    case()
        .given(std::slice::from_ref(&opened))
        .when(FollowUpCommand::Close { outcome: "".into() }, T0)
        .then_error(DomainError::EmptyText { field: "outcome" });
    let closed = FollowUpEvent::FollowUpClosed {
        outcome: "settled".into(),
        at: T0,
    };
    case()
        .given(&[opened.clone(), closed.clone()])
        .when(
            FollowUpCommand::Close {
                outcome: "again".into(),
            },
            T0,
        )
        .then_error(DomainError::FollowUpClosed { follow_up: id });
    case()
        .given(&[opened, closed])
        .when(
            FollowUpCommand::Note {
                text: "late note".into(),
            },
            T0,
        )
        .then_error(DomainError::FollowUpClosed { follow_up: id });
}
