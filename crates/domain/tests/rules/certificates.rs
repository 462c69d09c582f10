//! Certificates: issue rules, one home-visit certificate per identity number, lifecycle and
//! verification at the door.

use daojia_domain::certificates::{
    self, CertificateCommand, CertificateEvent, CertificateKind, CertificateRegistry,
    CertificateStatus, IdentityNumber, IssueConditions, Lookup, Verification,
};
use daojia_domain::{CertificateId, CompanyId, DomainError, Minutes, Timestamp, WorkerId};

use crate::framework::Case;
use crate::order_lifecycle::T0;

const C1: CertificateId = CertificateId::from_u128(0x5C1);
const C2: CertificateId = CertificateId::from_u128(0x5C2);
const W: WorkerId = WorkerId::from_u128(0xA1);
const CO: CompanyId = CompanyId::from_u128(0xCC);

fn id() -> IdentityNumber {
    IdentityNumber::new("11010519491231002X").unwrap()
}

fn ok() -> IssueConditions {
    IssueConditions {
        identity_verified: true,
        health_check_at: T0.minus(Minutes::days(30)),
        training_completed: true,
        exam_passed: true,
    }
}

fn until() -> Timestamp {
    T0.plus(Minutes::days(365))
}

fn case() -> Case<CertificateRegistry, CertificateCommand, CertificateEvent> {
    Case::new(
        CertificateRegistry::default(),
        Box::new(certificates::decide),
        certificates::evolve,
    )
}

fn issue(
    cert: CertificateId,
    kind: CertificateKind,
    conditions: IssueConditions,
) -> CertificateCommand {
    CertificateCommand::Issue {
        certificate_id: cert,
        worker: W,
        identity: id(),
        company: CO,
        kind,
        conditions,
        valid_until: until(),
    }
}

fn issued(cert: CertificateId, kind: CertificateKind) -> CertificateEvent {
    CertificateEvent::CertificateIssued {
        certificate_id: cert,
        worker: W,
        identity: id(),
        company: CO,
        kind,
        issued_at: T0,
        valid_until: until(),
    }
}

fn elder() -> CertificateKind {
    CertificateKind::Skill("elder_carer".parse().unwrap())
}

fn registry(events: &[CertificateEvent]) -> CertificateRegistry {
    events
        .iter()
        .fold(CertificateRegistry::default(), certificates::evolve)
}

#[test]
fn home_visit_certificate_is_issued_when_every_condition_holds() {
    case()
        .when(issue(C1, CertificateKind::HomeVisit, ok()), T0)
        .then(vec![issued(C1, CertificateKind::HomeVisit)]);
}

#[test]
fn issue_conditions_are_each_enforced() {
    let kind = CertificateKind::HomeVisit;
    case()
        .when(
            issue(
                C1,
                kind.clone(),
                IssueConditions {
                    identity_verified: false,
                    ..ok()
                },
            ),
            T0,
        )
        .then_error(DomainError::IdentityNotVerified);
    let old = T0.minus(Minutes::days(366));
    case()
        .when(
            issue(
                C1,
                kind.clone(),
                IssueConditions {
                    health_check_at: old,
                    ..ok()
                },
            ),
            T0,
        )
        .then_error(DomainError::HealthCheckTooOld {
            checked_at: old,
            max_age: Minutes::days(365),
        });
    case()
        .when(
            issue(
                C1,
                kind.clone(),
                IssueConditions {
                    health_check_at: T0.plus(Minutes(1)),
                    ..ok()
                },
            ),
            T0,
        )
        .then_reason("HEALTH_CHECK_TOO_OLD");
    case()
        .when(
            issue(
                C1,
                kind.clone(),
                IssueConditions {
                    training_completed: false,
                    ..ok()
                },
            ),
            T0,
        )
        .then_error(DomainError::TrainingNotCompleted);
    case()
        .when(
            issue(
                C1,
                kind.clone(),
                IssueConditions {
                    exam_passed: false,
                    ..ok()
                },
            ),
            T0,
        )
        .then_error(DomainError::ExamNotPassed);
    let expired = CertificateCommand::Issue {
        certificate_id: C1,
        worker: W,
        identity: id(),
        company: CO,
        kind,
        conditions: ok(),
        valid_until: T0,
    };
    case()
        .when(expired, T0)
        .then_error(DomainError::InvalidValidity { valid_until: T0 });
}

#[test]
fn one_home_visit_certificate_per_identity_number_even_after_revocation() {
    let h = vec![
        issued(C1, CertificateKind::HomeVisit),
        CertificateEvent::CertificateRevoked {
            certificate_id: C1,
            reason: "fraud".into(),
            at: T0,
        },
    ];
    case()
        .given(&h)
        .when(issue(C2, CertificateKind::HomeVisit, ok()), T0)
        .then_error(DomainError::HomeVisitCertificateExists { certificate: C1 });
    // The same certificate number cannot be reused either.
    case()
        .given(&h)
        .when(issue(C1, elder(), ok()), T0)
        .then_error(DomainError::CertificateExists { certificate: C1 });
}

#[test]
fn skill_certificates_need_a_valid_home_visit_certificate() {
    case()
        .when(issue(C2, elder(), ok()), T0)
        .then_error(DomainError::NoValidHomeVisitCertificate { worker: W });
    case()
        .given(&[issued(C1, CertificateKind::HomeVisit)])
        .when(issue(C2, elder(), ok()), T0)
        .then(vec![issued(C2, elder())]);
    case()
        .given(&[issued(C1, CertificateKind::HomeVisit), issued(C2, elder())])
        .when(issue(CertificateId::from_u128(0x5C3), elder(), ok()), T0)
        .then_error(DomainError::CertificateExists { certificate: C2 });
}

#[test]
fn verification_at_the_door_shows_status_and_issuing_company() {
    let reg = registry(&[issued(C1, CertificateKind::HomeVisit)]);
    let expected = Verification {
        certificate: C1,
        worker: W,
        kind: CertificateKind::HomeVisit,
        status: CertificateStatus::Valid,
        company: CO,
        valid_until: until(),
    };
    assert_eq!(reg.verify(Lookup::Worker(W), T0), Ok(expected.clone()));
    assert_eq!(reg.verify(Lookup::Certificate(C1), T0), Ok(expected));
    assert_eq!(
        reg.verify(Lookup::Certificate(C1), until())
            .map(|v| v.status),
        Ok(CertificateStatus::Expired)
    );
    assert_eq!(
        reg.verify(Lookup::Certificate(C2), T0),
        Err(DomainError::UnknownCertificate { certificate: C2 })
    );
    assert_eq!(
        reg.verify(Lookup::Worker(WorkerId::from_u128(9)), T0),
        Err(DomainError::NoCertificateForWorker {
            worker: WorkerId::from_u128(9)
        })
    );
    let suspended = registry(&[
        issued(C1, CertificateKind::HomeVisit),
        CertificateEvent::CertificateSuspended {
            certificate_id: C1,
            reason: "complaint".into(),
            at: T0,
        },
    ]);
    assert_eq!(
        suspended.verify(Lookup::Worker(W), T0).map(|v| v.status),
        Ok(CertificateStatus::Suspended)
    );
    assert_eq!(suspended.credentials(W, T0), (false, vec![]));
}

#[test]
fn suspend_reinstate_revoke_renew() {
    let h = vec![issued(C1, CertificateKind::HomeVisit)];
    let suspended = CertificateEvent::CertificateSuspended {
        certificate_id: C1,
        reason: "complaint".into(),
        at: T0,
    };
    case()
        .given(&h)
        .when(
            CertificateCommand::Suspend {
                certificate_id: C1,
                reason: "complaint".into(),
            },
            T0,
        )
        .then(vec![suspended.clone()]);
    case()
        .given(&h)
        .when(CertificateCommand::Reinstate { certificate_id: C1 }, T0)
        .then_error(DomainError::CertificateNotSuspended {
            certificate: C1,
            status: CertificateStatus::Valid,
        });
    let hs = [h.clone(), vec![suspended]].concat();
    case()
        .given(&hs)
        .when(CertificateCommand::Reinstate { certificate_id: C1 }, T0)
        .then(vec![CertificateEvent::CertificateReinstated {
            certificate_id: C1,
            at: T0,
        }]);
    case()
        .given(&hs)
        .when(
            CertificateCommand::Suspend {
                certificate_id: C1,
                reason: "again".into(),
            },
            T0,
        )
        .then_error(DomainError::CertificateNotUsable {
            certificate: C1,
            status: CertificateStatus::Suspended,
        });
    let revoked = [
        h.clone(),
        vec![CertificateEvent::CertificateRevoked {
            certificate_id: C1,
            reason: "fraud".into(),
            at: T0,
        }],
    ]
    .concat();
    case()
        .given(&revoked)
        .when(
            CertificateCommand::Revoke {
                certificate_id: C1,
                reason: "fraud".into(),
            },
            T0,
        )
        .then_error(DomainError::CertificateNotUsable {
            certificate: C1,
            status: CertificateStatus::Revoked,
        });
    case()
        .given(&revoked)
        .when(CertificateCommand::Reinstate { certificate_id: C1 }, T0)
        .then_reason("CERTIFICATE_NOT_SUSPENDED");
    let later = until().plus(Minutes::days(1));
    let renewed_until = later.plus(Minutes::days(365));
    case()
        .given(&h)
        .when(
            CertificateCommand::Renew {
                certificate_id: C1,
                health_check_at: later.minus(Minutes::days(2)),
                valid_until: renewed_until,
            },
            later,
        )
        .then(vec![CertificateEvent::CertificateRenewed {
            certificate_id: C1,
            valid_until: renewed_until,
            at: later,
        }]);
    case()
        .given(&revoked)
        .when(
            CertificateCommand::Renew {
                certificate_id: C1,
                health_check_at: T0,
                valid_until: renewed_until,
            },
            T0,
        )
        .then_reason("CERTIFICATE_NOT_USABLE");
    case()
        .when(
            CertificateCommand::Revoke {
                certificate_id: C2,
                reason: "x".into(),
            },
            T0,
        )
        .then_error(DomainError::UnknownCertificate { certificate: C2 });
}

#[test]
fn a_worker_id_is_bound_to_one_identity() {
    let h = vec![issued(C1, CertificateKind::HomeVisit)];
    let other_identity = IdentityNumber::new("440524188001010014").unwrap();
    let cmd = CertificateCommand::Issue {
        certificate_id: C2,
        worker: W,
        identity: other_identity,
        company: CO,
        kind: CertificateKind::HomeVisit,
        conditions: ok(),
        valid_until: until(),
    };
    case()
        .given(&h)
        .when(cmd, T0)
        .then_error(DomainError::IdentityMismatch {
            worker: W,
            certificate: C1,
        });
}
