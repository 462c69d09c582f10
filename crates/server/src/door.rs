//! Verification at the door (上门核验, `CustomerApp.VerifyCertificate`) and credit appeals by
//! the subjects themselves (`CustomerApp.AppealCredit`, `WorkerApp.AppealCredit`).
//!
//! Verification reads the registry that issued the worker's certificates straight from the
//! store (not from a read model): what the household sees at the door is the registry's
//! answer as of now, revocations included. Appeals are credit commands on the appellant's own
//! credit stream, decided by the domain and appended like ops commands (`admin::execute`), with
//! the appeal's text as the recorded reason.

use daojia_domain::certificates::{CertificateKind, CertificateStatus, Lookup, Verification};
use daojia_domain::credit::CreditCommand;
use daojia_domain::{AppealId, CertificateId, EventId, Subject, Timestamp, WorkerId};
use daojia_store::EventStore;

use crate::admin::{self, AdminCommand, AdminRequest};
use crate::auth::Caller;
use crate::clock::Clock;
use crate::order_commands::worker_profile_and_registry;
use crate::order_requests::CommandId;
use crate::order_view::timestamp;
use crate::pb;
use crate::status::{ApiError, FieldViolation};

/// Parses a required id field, or records why not.
fn id<T: std::str::FromStr>(field: &str, value: &str, bad: &mut Vec<FieldViolation>) -> Option<T> {
    if value.is_empty() {
        bad.push(FieldViolation::new(field, "is required"));
        return None;
    }
    match value.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            bad.push(FieldViolation::new(
                field,
                "must be a UUID other than the nil UUID",
            ));
            None
        }
    }
}

/// Verifies `request` against the registry as of `now`.
pub async fn verify<S: EventStore>(
    store: &S,
    request: pb::VerifyCertificateRequest,
    now: Timestamp,
) -> Result<pb::CertificateVerification, ApiError> {
    let mut bad = Vec::new();
    let worker: Option<WorkerId> = id("worker_id", &request.worker_id, &mut bad);
    let certificate: Option<CertificateId> = if request.certificate_id.is_empty() {
        None
    } else {
        id("certificate_id", &request.certificate_id, &mut bad)
    };
    let Some(worker) = worker.filter(|_| bad.is_empty()) else {
        return Err(ApiError::InvalidArgument(bad));
    };
    let (_, registry) = worker_profile_and_registry(store, worker).await?;
    let lookup = certificate.map_or(Lookup::Worker(worker), Lookup::Certificate);
    let found = registry.verify(lookup, now)?;
    if found.worker != worker {
        // A certificate shown by someone else is as good as unknown.
        return Err(daojia_domain::DomainError::UnknownCertificate {
            certificate: found.certificate,
        }
        .into());
    }
    Ok(verification(&found))
}

fn verification(v: &Verification) -> pb::CertificateVerification {
    pb::CertificateVerification {
        certificate_id: v.certificate.to_string(),
        worker_id: v.worker.to_string(),
        kind: certificate_kind(&v.kind),
        status: certificate_status(v.status) as i32,
        company_id: v.company.to_string(),
        valid_until: Some(timestamp(v.valid_until)),
    }
}

/// How a certificate kind is named in replies: `home_visit` or the skill's name.
pub fn certificate_kind(kind: &CertificateKind) -> String {
    match kind {
        CertificateKind::HomeVisit => "home_visit".to_owned(),
        CertificateKind::Skill(skill) => skill.as_str().to_owned(),
    }
}

/// The protobuf form of a certificate status.
pub fn certificate_status(status: CertificateStatus) -> pb::CertificateStatus {
    match status {
        CertificateStatus::Valid => pb::CertificateStatus::Valid,
        CertificateStatus::Suspended => pb::CertificateStatus::Suspended,
        CertificateStatus::Expired => pb::CertificateStatus::Expired,
        CertificateStatus::Revoked => pb::CertificateStatus::Revoked,
    }
}

/// An appeal as either app sends it: the appellant's id is in `field` (`customer_id` or
/// `worker_id`) and `subject` makes the credit subject from it.
#[derive(Debug)]
pub struct AppealInput<'a, T> {
    /// The idempotency key as given.
    pub command_id: &'a str,
    /// The field holding the appellant's id, for violations.
    pub field: &'static str,
    /// The appellant's id as given.
    pub appellant: &'a str,
    /// Makes the credit subject from the parsed id.
    pub subject: fn(T) -> Subject,
    /// The new appeal's id as given.
    pub appeal_id: &'a str,
    /// The evidence event as given.
    pub evidence_event_id: &'a str,
    /// The grounds.
    pub text: String,
}

/// Files an appeal for `caller`: every bad field is listed, then the domain decides on the
/// appellant's credit stream.
pub async fn appeal<S: EventStore, T: std::str::FromStr>(
    store: &S,
    clock: &Clock,
    caller: &Caller,
    input: AppealInput<'_, T>,
) -> Result<pb::AppealReply, ApiError> {
    let mut bad = Vec::new();
    let command_id: Option<EventId> = id("command_id", input.command_id, &mut bad);
    let subject = id(input.field, input.appellant, &mut bad).map(input.subject);
    let appeal_id: Option<AppealId> = id("appeal_id", input.appeal_id, &mut bad);
    let evidence: Option<EventId> = id("evidence_event_id", input.evidence_event_id, &mut bad);
    let (Some(command_id), Some(subject), Some(appeal_id), Some(evidence)) =
        (command_id, subject, appeal_id, evidence)
    else {
        return Err(ApiError::InvalidArgument(bad));
    };
    let request = AdminRequest {
        command_id: CommandId::from_event_id(command_id),
        reason: input.text.clone(),
        command: AdminCommand::Credit(
            subject,
            CreditCommand::FileAppeal {
                appeal_id,
                evidence,
                text: input.text,
            },
        ),
    };
    let done = admin::execute(store, clock, caller, request).await?;
    Ok(pb::AppealReply {
        commit_position: done.position.0,
        stream_revision: done.revision.0,
        replayed: done.replayed,
    })
}
