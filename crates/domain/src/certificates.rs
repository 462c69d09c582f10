//! Certificates: the electronic home-visit certificate (居家上门服务证) and skill certificates,
//! kept by a certificate registry (stream `certificates-<uuid>`): issue rules (identity check,
//! health check no older than a year, training and exam; one home-visit certificate per identity
//! number, for life), validity, suspension, revocation, renewal, and verification at the door.

use serde::{Deserialize, Serialize};

use crate::catalog::SkillKind;
use crate::error::DomainError;
use crate::ids::{CertificateId, CompanyId, WorkerId};
use crate::time::{Minutes, Timestamp};

/// How old a health check may be when a certificate is issued or renewed.
pub const HEALTH_CHECK_MAX_AGE: Minutes = Minutes::days(365);

/// A resident identity number (18 characters, GB 11643 check digit).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdentityNumber(String);

impl IdentityNumber {
    /// Validates the format and the check digit.
    pub fn new(value: &str) -> Result<Self, DomainError> {
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        const CHECK: &[u8; 11] = b"10X98765432";
        let invalid = || DomainError::InvalidIdentityNumber;
        let bytes = value.as_bytes();
        let (body, last) = match bytes {
            [body @ .., last] if body.len() == 17 => (body, *last),
            _ => return Err(invalid()),
        };
        let mut sum = 0u32;
        for (b, w) in body.iter().zip(WEIGHTS) {
            let digit = char::from(*b).to_digit(10).ok_or_else(invalid)?;
            sum += digit * w;
        }
        let expected = CHECK
            .get(usize::try_from(sum % 11).map_err(|_| invalid())?)
            .copied()
            .ok_or_else(invalid)?;
        if last.to_ascii_uppercase() != expected {
            return Err(invalid());
        }
        Ok(Self(value.to_ascii_uppercase()))
    }

    /// The number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdentityNumber {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<IdentityNumber> for String {
    fn from(id: IdentityNumber) -> Self {
        id.0
    }
}

/// What a certificate certifies.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateKind {
    /// The home-visit certificate every worker needs.
    HomeVisit,
    /// A skill certificate.
    Skill(SkillKind),
}

/// A certificate's status at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateStatus {
    /// Valid.
    Valid,
    /// Suspended by the registry.
    Suspended,
    /// Past its validity.
    Expired,
    /// Revoked for good.
    Revoked,
}

/// The facts checked before issuing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IssueConditions {
    /// Identity checked in person against the ID card (人证合一).
    pub identity_verified: bool,
    /// When the health check was done.
    pub health_check_at: Timestamp,
    /// Pre-job training completed.
    pub training_completed: bool,
    /// Exam passed.
    pub exam_passed: bool,
}

/// Commands on the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateCommand {
    /// Issue a certificate.
    Issue {
        /// Fresh id (also the certificate number shown on the card).
        certificate_id: CertificateId,
        /// Holder.
        worker: WorkerId,
        /// Holder's identity number.
        identity: IdentityNumber,
        /// Employing company.
        company: CompanyId,
        /// Kind.
        kind: CertificateKind,
        /// Checked facts.
        conditions: IssueConditions,
        /// End of validity.
        valid_until: Timestamp,
    },
    /// Extend validity after a new health check.
    Renew {
        /// Certificate.
        certificate_id: CertificateId,
        /// New health check.
        health_check_at: Timestamp,
        /// New end of validity.
        valid_until: Timestamp,
    },
    /// Suspend.
    Suspend {
        /// Certificate.
        certificate_id: CertificateId,
        /// Reason.
        reason: String,
    },
    /// Lift a suspension.
    Reinstate {
        /// Certificate.
        certificate_id: CertificateId,
    },
    /// Revoke for good.
    Revoke {
        /// Certificate.
        certificate_id: CertificateId,
        /// Reason.
        reason: String,
    },
}

/// Events of a certificate registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum CertificateEvent {
    /// Issued.
    CertificateIssued {
        /// Certificate.
        certificate_id: CertificateId,
        /// Holder.
        worker: WorkerId,
        /// Identity number.
        identity: IdentityNumber,
        /// Issuing (employing) company.
        company: CompanyId,
        /// Kind.
        kind: CertificateKind,
        /// When.
        issued_at: Timestamp,
        /// End of validity.
        valid_until: Timestamp,
    },
    /// Validity extended.
    CertificateRenewed {
        /// Certificate.
        certificate_id: CertificateId,
        /// New end of validity.
        valid_until: Timestamp,
        /// When.
        at: Timestamp,
    },
    /// Suspended.
    CertificateSuspended {
        /// Certificate.
        certificate_id: CertificateId,
        /// Reason.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// Suspension lifted.
    CertificateReinstated {
        /// Certificate.
        certificate_id: CertificateId,
        /// When.
        at: Timestamp,
    },
    /// Revoked.
    CertificateRevoked {
        /// Certificate.
        certificate_id: CertificateId,
        /// Reason.
        reason: String,
        /// When.
        at: Timestamp,
    },
}

impl CertificateEvent {
    /// The event type name stored in the event log.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::CertificateIssued { .. } => "CertificateIssued",
            Self::CertificateRenewed { .. } => "CertificateRenewed",
            Self::CertificateSuspended { .. } => "CertificateSuspended",
            Self::CertificateReinstated { .. } => "CertificateReinstated",
            Self::CertificateRevoked { .. } => "CertificateRevoked",
        }
    }
}

/// One certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// Id / number.
    pub id: CertificateId,
    /// Holder.
    pub worker: WorkerId,
    /// Identity number.
    pub identity: IdentityNumber,
    /// Issuing company.
    pub company: CompanyId,
    /// Kind.
    pub kind: CertificateKind,
    /// End of validity.
    pub valid_until: Timestamp,
    /// Suspended.
    pub suspended: bool,
    /// Revoked.
    pub revoked: bool,
}

impl Certificate {
    /// Status at `now`: revoked, then suspended, then expired, else valid.
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

/// The registry's state: every certificate it issued.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateRegistry {
    /// Certificates in issue order.
    pub certificates: Vec<Certificate>,
}

/// How a household looks a worker up at the door.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// By worker id (the worker's home-visit certificate).
    Worker(WorkerId),
    /// By certificate number.
    Certificate(CertificateId),
}

/// What a household sees at the door.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Certificate.
    pub certificate: CertificateId,
    /// Holder.
    pub worker: WorkerId,
    /// Kind.
    pub kind: CertificateKind,
    /// Status now.
    pub status: CertificateStatus,
    /// Issuing company.
    pub company: CompanyId,
    /// End of validity.
    pub valid_until: Timestamp,
}

impl CertificateRegistry {
    fn get(&self, id: CertificateId) -> Result<&Certificate, DomainError> {
        self.certificates
            .iter()
            .find(|c| c.id == id)
            .ok_or(DomainError::UnknownCertificate { certificate: id })
    }

    /// Verification at the door.
    pub fn verify(&self, lookup: Lookup, now: Timestamp) -> Result<Verification, DomainError> {
        let cert = match lookup {
            Lookup::Certificate(id) => self.get(id)?,
            Lookup::Worker(worker) => self
                .certificates
                .iter()
                .find(|c| c.worker == worker && c.kind == CertificateKind::HomeVisit)
                .ok_or(DomainError::NoCertificateForWorker { worker })?,
        };
        Ok(Verification {
            certificate: cert.id,
            worker: cert.worker,
            kind: cert.kind.clone(),
            status: cert.status(now),
            company: cert.company,
            valid_until: cert.valid_until,
        })
    }

    /// The skill kinds `worker` holds valid certificates for at `now`, and whether their
    /// home-visit certificate is valid (inputs to order eligibility).
    pub fn credentials(&self, worker: WorkerId, now: Timestamp) -> (bool, Vec<SkillKind>) {
        let valid =
            |c: &&Certificate| c.worker == worker && c.status(now) == CertificateStatus::Valid;
        let home_visit = self
            .certificates
            .iter()
            .filter(valid)
            .any(|c| c.kind == CertificateKind::HomeVisit);
        let skills = self
            .certificates
            .iter()
            .filter(valid)
            .filter_map(|c| match &c.kind {
                CertificateKind::Skill(s) => Some(s.clone()),
                CertificateKind::HomeVisit => None,
            })
            .collect();
        (home_visit, skills)
    }
}

fn check_health(health_check_at: Timestamp, now: Timestamp) -> Result<(), DomainError> {
    if health_check_at > now || health_check_at < now.minus(HEALTH_CHECK_MAX_AGE) {
        return Err(DomainError::HealthCheckTooOld {
            checked_at: health_check_at,
            max_age: HEALTH_CHECK_MAX_AGE,
        });
    }
    Ok(())
}

fn check_reason(reason: &str) -> Result<(), DomainError> {
    if reason.trim().is_empty() {
        return Err(DomainError::EmptyText { field: "reason" });
    }
    if reason.chars().count() > crate::order::MAX_TEXT_CHARS {
        return Err(DomainError::TextTooLong {
            field: "reason",
            max: crate::order::MAX_TEXT_CHARS,
        });
    }
    Ok(())
}

/// Decides a registry command.
pub fn decide(
    state: &CertificateRegistry,
    command: CertificateCommand,
    now: Timestamp,
) -> Result<Vec<CertificateEvent>, DomainError> {
    match command {
        CertificateCommand::Issue {
            certificate_id,
            worker,
            identity,
            company,
            kind,
            conditions,
            valid_until,
        } => {
            if state.certificates.iter().any(|c| c.id == certificate_id) {
                return Err(DomainError::CertificateExists {
                    certificate: certificate_id,
                });
            }
            if !conditions.identity_verified {
                return Err(DomainError::IdentityNotVerified);
            }
            check_health(conditions.health_check_at, now)?;
            if !conditions.training_completed {
                return Err(DomainError::TrainingNotCompleted);
            }
            if !conditions.exam_passed {
                return Err(DomainError::ExamNotPassed);
            }
            if valid_until <= now {
                return Err(DomainError::InvalidValidity { valid_until });
            }
            // The identity number ties the holder: a worker id may only carry one identity.
            if let Some(other) = state
                .certificates
                .iter()
                .find(|c| c.worker == worker && c.identity != identity)
            {
                return Err(DomainError::IdentityMismatch {
                    worker,
                    certificate: other.id,
                });
            }
            match &kind {
                CertificateKind::HomeVisit => {
                    // One home-visit certificate per identity number, for life (renew, never reissue).
                    if let Some(existing) = state
                        .certificates
                        .iter()
                        .find(|c| c.identity == identity && c.kind == CertificateKind::HomeVisit)
                    {
                        return Err(DomainError::HomeVisitCertificateExists {
                            certificate: existing.id,
                        });
                    }
                }
                CertificateKind::Skill(_) => {
                    let (home_visit, _) = state.credentials(worker, now);
                    if !home_visit {
                        return Err(DomainError::NoValidHomeVisitCertificate { worker });
                    }
                    if let Some(existing) = state.certificates.iter().find(|c| {
                        c.worker == worker
                            && c.kind == kind
                            && c.status(now) == CertificateStatus::Valid
                    }) {
                        return Err(DomainError::CertificateExists {
                            certificate: existing.id,
                        });
                    }
                }
            }
            Ok(vec![CertificateEvent::CertificateIssued {
                certificate_id,
                worker,
                identity,
                company,
                kind,
                issued_at: now,
                valid_until,
            }])
        }
        CertificateCommand::Renew {
            certificate_id,
            health_check_at,
            valid_until,
        } => {
            let cert = state.get(certificate_id)?;
            match cert.status(now) {
                CertificateStatus::Valid | CertificateStatus::Expired => {}
                status => {
                    return Err(DomainError::CertificateNotUsable {
                        certificate: certificate_id,
                        status,
                    });
                }
            }
            check_health(health_check_at, now)?;
            if valid_until <= now || valid_until <= cert.valid_until {
                return Err(DomainError::InvalidValidity { valid_until });
            }
            Ok(vec![CertificateEvent::CertificateRenewed {
                certificate_id,
                valid_until,
                at: now,
            }])
        }
        CertificateCommand::Suspend {
            certificate_id,
            reason,
        } => {
            check_reason(&reason)?;
            let cert = state.get(certificate_id)?;
            match cert.status(now) {
                CertificateStatus::Valid | CertificateStatus::Expired => {}
                status => {
                    return Err(DomainError::CertificateNotUsable {
                        certificate: certificate_id,
                        status,
                    });
                }
            }
            Ok(vec![CertificateEvent::CertificateSuspended {
                certificate_id,
                reason,
                at: now,
            }])
        }
        CertificateCommand::Reinstate { certificate_id } => {
            let cert = state.get(certificate_id)?;
            let status = cert.status(now);
            if status != CertificateStatus::Suspended {
                return Err(DomainError::CertificateNotSuspended {
                    certificate: certificate_id,
                    status,
                });
            }
            Ok(vec![CertificateEvent::CertificateReinstated {
                certificate_id,
                at: now,
            }])
        }
        CertificateCommand::Revoke {
            certificate_id,
            reason,
        } => {
            check_reason(&reason)?;
            let cert = state.get(certificate_id)?;
            if cert.revoked {
                return Err(DomainError::CertificateNotUsable {
                    certificate: certificate_id,
                    status: CertificateStatus::Revoked,
                });
            }
            Ok(vec![CertificateEvent::CertificateRevoked {
                certificate_id,
                reason,
                at: now,
            }])
        }
    }
}

fn find(state: &mut CertificateRegistry, id: CertificateId) -> Option<&mut Certificate> {
    state.certificates.iter_mut().find(|c| c.id == id)
}

/// Applies a stored registry event. Never validates.
pub fn evolve(mut state: CertificateRegistry, event: &CertificateEvent) -> CertificateRegistry {
    match event {
        CertificateEvent::CertificateIssued {
            certificate_id,
            worker,
            identity,
            company,
            kind,
            valid_until,
            ..
        } => {
            state.certificates.push(Certificate {
                id: *certificate_id,
                worker: *worker,
                identity: identity.clone(),
                company: *company,
                kind: kind.clone(),
                valid_until: *valid_until,
                suspended: false,
                revoked: false,
            });
        }
        CertificateEvent::CertificateRenewed {
            certificate_id,
            valid_until,
            ..
        } => {
            if let Some(c) = find(&mut state, *certificate_id) {
                c.valid_until = *valid_until;
            }
        }
        CertificateEvent::CertificateSuspended { certificate_id, .. } => {
            if let Some(c) = find(&mut state, *certificate_id) {
                c.suspended = true;
            }
        }
        CertificateEvent::CertificateReinstated { certificate_id, .. } => {
            if let Some(c) = find(&mut state, *certificate_id) {
                c.suspended = false;
            }
        }
        CertificateEvent::CertificateRevoked { certificate_id, .. } => {
            if let Some(c) = find(&mut state, *certificate_id) {
                c.revoked = true;
            }
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_numbers_check_their_check_digit() {
        assert!(IdentityNumber::new("11010519491231002X").is_ok());
        assert!(IdentityNumber::new("11010519491231002x").is_ok());
        assert_eq!(
            IdentityNumber::new("110105194912310021"),
            Err(DomainError::InvalidIdentityNumber)
        );
        assert_eq!(
            IdentityNumber::new("1101051949123100"),
            Err(DomainError::InvalidIdentityNumber)
        );
        assert_eq!(
            IdentityNumber::new("A1010519491231002X"),
            Err(DomainError::InvalidIdentityNumber)
        );
    }
}
