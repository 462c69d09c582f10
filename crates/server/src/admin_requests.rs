//! The `daojia.v1.Admin` requests as validated commands: [`AdminRequest`], built by one
//! `TryFrom<pb::…Request>` per RPC. Every bad field is listed (a missing `reason` included),
//! so ops see all their mistakes at once; rules that need the stored state (a complaint still
//! open, a newer rule-set version) are left to the domain's `decide`.

use daojia_domain::catalog::SkillKind;
use daojia_domain::certificates::{CertificateKind, IdentityNumber, IssueConditions};
use daojia_domain::credit::CreditCommand;
use daojia_domain::followups::FollowUpCommand;
use daojia_domain::order::{
    ComplaintOutcome, DisputeOutcome, Fault, GeoPoint, MAX_TEXT_CHARS, Party, Severity,
};
use daojia_domain::worker::{ContractNumber, RegisterWorker, WorkerCommand};
use daojia_domain::{
    AppealId, CertificateId, CompanyId, ComplaintId, CustomerId, DisputeId, EventId, Fen,
    FollowUpId, OrderCommand, OrderId, RegistryId, RuleSet, Subject, Timestamp, WorkerId,
};

use crate::limits::MAX_CREDIT_ADJUSTMENT;
use crate::order_requests::CommandId;
use crate::pb;
use crate::queries::parse_subject;
use crate::status::{ApiError, FieldViolation};

/// What an admin command acts on.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminCommand {
    /// A command on a subject's credit stream.
    Credit(Subject, CreditCommand),
    /// A command on a follow-up task's stream.
    FollowUp(FollowUpId, FollowUpCommand),
    /// An ops command on an order's stream (complaint and dispute outcomes, cancellation).
    Order(OrderId, OrderCommand),
    /// Publishing a credit rule set on `creditrules-global`.
    PublishRules(Box<RuleSet>),
    /// A command on a worker's profile stream (registration, contracts).
    Worker(WorkerId, WorkerCommand),
    /// A command on the certificates of a worker, in the registry named at their registration.
    Certificate(WorkerId, CertificateAction),
}

/// A certificate command before the worker's registration fills in what it names (identity
/// number, employing company, registry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateAction {
    /// Issue a certificate to the worker.
    Issue {
        /// The new certificate's id.
        certificate_id: CertificateId,
        /// What it certifies.
        kind: CertificateKind,
        /// The facts checked before issuing.
        conditions: IssueConditions,
        /// End of validity.
        valid_until: Timestamp,
    },
    /// Revoke one of the worker's certificates.
    Revoke {
        /// The certificate.
        certificate_id: CertificateId,
        /// Why, recorded in the event.
        reason: String,
    },
}

/// A validated admin command.
#[derive(Clone, Debug, PartialEq)]
pub struct AdminRequest {
    /// The idempotency key; the first event's id.
    pub command_id: CommandId,
    /// Why, for the events' metadata.
    pub reason: String,
    /// The domain command.
    pub command: AdminCommand,
}

/// The seconds a google.protobuf.Timestamp allows: 0001-01-01T00:00:00Z to
/// 9999-12-31T23:59:59Z.
const PROTO_TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// Bad fields found so far; every check that records one returns `None`.
#[derive(Debug, Default)]
pub(crate) struct Fields(Vec<FieldViolation>);

impl Fields {
    fn violation<T>(&mut self, field: &str, description: impl Into<String>) -> Option<T> {
        self.0.push(FieldViolation::new(field, description));
        None
    }

    fn id<T: std::str::FromStr>(&mut self, field: &str, value: &str) -> Option<T> {
        if value.is_empty() {
            return self.violation(field, "is required");
        }
        match value.parse() {
            Ok(id) => Some(id),
            Err(_) => self.violation(field, "must be a UUID other than the nil UUID"),
        }
    }

    /// Required text of at most [`MAX_TEXT_CHARS`] characters.
    pub(crate) fn text(&mut self, field: &str, value: &str) -> Option<String> {
        if value.trim().is_empty() {
            return self.violation(field, "is required");
        }
        if value.chars().count() > MAX_TEXT_CHARS {
            return self.violation(
                field,
                format!("must be at most {MAX_TEXT_CHARS} characters"),
            );
        }
        Some(value.to_owned())
    }

    fn subject(&mut self, subject: Option<&pb::CreditSubject>) -> Option<Subject> {
        match parse_subject(subject) {
            Ok(s) => Some(s),
            Err(ApiError::InvalidArgument(v)) => {
                self.0.extend(v);
                None
            }
            Err(e) => self.violation("subject", e.to_string()),
        }
    }

    fn fen(&mut self, field: &str, value: i64) -> Option<Fen> {
        if value < 0 {
            return self.violation(field, "must not be negative");
        }
        Some(Fen(value))
    }

    fn timestamp(&mut self, field: &str, value: Option<&pb::Timestamp>) -> Option<Timestamp> {
        let Some(ts) = value else {
            return self.violation(field, "is required");
        };
        if !(0..1_000_000_000).contains(&ts.nanos) {
            return self.violation(field, "nanos must be within [0, 999999999]");
        }
        if !PROTO_TIMESTAMP_SECONDS.contains(&ts.seconds) {
            return self.violation(field, "must be within years 0001 to 9999");
        }
        // In range by the checks above: |seconds| < 2.6e11, so the millis fit an i64.
        Some(Timestamp(
            ts.seconds * 1_000 + i64::from(ts.nanos / 1_000_000),
        ))
    }

    /// A WGS-84 position: each coordinate out of range is its own violation (`location.lat`,
    /// `location.lon`), NaN included.
    fn location(&mut self, field: &str, value: Option<&pb::LatLon>) -> Option<GeoPoint> {
        let Some(p) = value else {
            return self.violation(field, "is required");
        };
        let lat_ok = (-90.0..=90.0).contains(&p.lat);
        let lon_ok = (-180.0..=180.0).contains(&p.lon);
        if !lat_ok {
            self.violation::<()>(
                &format!("{field}.lat"),
                format!("{} is not a WGS-84 latitude within [-90, 90]", p.lat),
            );
        }
        if !lon_ok {
            self.violation::<()>(
                &format!("{field}.lon"),
                format!("{} is not a WGS-84 longitude within [-180, 180]", p.lon),
            );
        }
        if !(lat_ok && lon_ok) {
            return None;
        }
        match GeoPoint::new(p.lat, p.lon) {
            Ok(point) => Some(point),
            Err(e) => self.violation(field, e.to_string()),
        }
    }

    fn must_hold(&mut self, field: &str, value: bool, description: &str) -> Option<()> {
        if value {
            Some(())
        } else {
            self.violation(field, description)
        }
    }

    /// The violations found, as an error (for requests that are not [`AdminRequest`]s).
    pub(crate) fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(self.0))
        }
    }

    /// The request, if no field was bad.
    fn finish(
        self,
        command_id: Option<EventId>,
        reason: Option<String>,
        command: Option<AdminCommand>,
    ) -> Result<AdminRequest, ApiError> {
        match (command_id, reason, command) {
            (Some(command_id), Some(reason), Some(command)) if self.0.is_empty() => {
                Ok(AdminRequest {
                    command_id: CommandId::from_event_id(command_id),
                    reason,
                    command,
                })
            }
            _ => Err(ApiError::InvalidArgument(self.0)),
        }
    }
}

impl TryFrom<pb::SuspendWorkerRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::SuspendWorkerRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let worker = f.id::<WorkerId>("worker_id", &r.worker_id);
        let reason = f.text("reason", &r.reason);
        let command = worker.zip(reason.clone()).map(|(w, reason)| {
            AdminCommand::Credit(Subject::Worker(w), CreditCommand::Suspend { reason })
        });
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::ReinstateWorkerRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::ReinstateWorkerRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let worker = f.id::<WorkerId>("worker_id", &r.worker_id);
        let reason = f.text("reason", &r.reason);
        let command = worker.zip(reason.clone()).map(|(w, reason)| {
            AdminCommand::Credit(Subject::Worker(w), CreditCommand::Reinstate { reason })
        });
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::BlackListRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::BlackListRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let subject = f.subject(r.subject.as_ref());
        let reason = f.text("reason", &r.reason);
        let command = subject
            .zip(reason.clone())
            .map(|(s, reason)| AdminCommand::Credit(s, CreditCommand::BlackList { reason }));
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::AdjustCreditRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::AdjustCreditRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id: Option<EventId> = f.id("command_id", &r.command_id);
        let subject = f.subject(r.subject.as_ref());
        let points = match r.points {
            0 => f.violation("points", "must not be zero"),
            p if p.unsigned_abs() > MAX_CREDIT_ADJUSTMENT.unsigned_abs() => f.violation(
                "points",
                format!(
                    "must be within [-{MAX_CREDIT_ADJUSTMENT}, {MAX_CREDIT_ADJUSTMENT}], got {p}"
                ),
            ),
            p => Some(p),
        };
        let reason = f.text("reason", &r.reason);
        // The evidence of a manual adjustment is the ops action's own event: the command's
        // first event, whose id is the command id.
        let command = match (command_id, subject, points, reason.clone()) {
            (Some(evidence), Some(s), Some(points), Some(reason)) => Some(AdminCommand::Credit(
                s,
                CreditCommand::AdjustManually {
                    points,
                    reason,
                    evidence,
                },
            )),
            _ => None,
        };
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::RecordTrainingCompletedRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::RecordTrainingCompletedRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let worker = f.id::<WorkerId>("worker_id", &r.worker_id);
        let course = f.text("course", &r.course);
        let reason = f.text("reason", &r.reason);
        let command = worker.zip(course).map(|(w, course)| {
            AdminCommand::Credit(
                Subject::Worker(w),
                CreditCommand::CompleteTraining { course },
            )
        });
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::CloseFollowUpRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::CloseFollowUpRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let follow_up = f.id::<FollowUpId>("follow_up_id", &r.follow_up_id);
        let note = f.text("note", &r.note);
        let reason = f.text("reason", &r.reason);
        let command = follow_up
            .zip(note)
            .map(|(id, outcome)| AdminCommand::FollowUp(id, FollowUpCommand::Close { outcome }));
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::ResolveComplaintRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::ResolveComplaintRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let order = f.id::<OrderId>("order_id", &r.order_id);
        let complaint_id = f.id::<ComplaintId>("complaint_id", &r.complaint_id);
        let severity = match pb::ComplaintSeverity::try_from(r.severity) {
            Ok(pb::ComplaintSeverity::Unspecified) => None,
            Ok(pb::ComplaintSeverity::Minor) => Some(Severity::Minor),
            Ok(pb::ComplaintSeverity::Major) => Some(Severity::Major),
            Ok(pb::ComplaintSeverity::Severe) => Some(Severity::Severe),
            Err(_) => f.violation("severity", "unknown severity"),
        };
        let outcome = match pb::ComplaintDecision::try_from(r.decision) {
            Ok(pb::ComplaintDecision::Upheld) => {
                let refund = f.fen("refund_fen", r.refund_fen);
                let severity = match severity {
                    Some(s) => Some(s),
                    None if r.severity == 0 => {
                        f.violation("severity", "is required when the complaint is upheld")
                    }
                    None => None,
                };
                severity
                    .zip(refund)
                    .map(|(severity, refund)| ComplaintOutcome::Upheld { severity, refund })
            }
            Ok(pb::ComplaintDecision::Dismissed) => {
                if severity.is_some() {
                    f.violation::<()>("severity", "must be unset when the complaint is dismissed");
                }
                if r.refund_fen != 0 {
                    f.violation::<()>("refund_fen", "must be 0 when the complaint is dismissed");
                }
                Some(ComplaintOutcome::Dismissed)
            }
            Ok(pb::ComplaintDecision::Unspecified) | Err(_) => {
                f.violation("decision", "must be upheld or dismissed")
            }
        };
        let reason = f.text("reason", &r.reason);
        let command = match (order, complaint_id, outcome) {
            (Some(order), Some(complaint_id), Some(outcome)) => Some(AdminCommand::Order(
                order,
                OrderCommand::ResolveComplaint {
                    complaint_id,
                    outcome,
                },
            )),
            _ => None,
        };
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::ResolveDisputeRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::ResolveDisputeRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let order = f.id::<OrderId>("order_id", &r.order_id);
        let dispute_id = f.id::<DisputeId>("dispute_id", &r.dispute_id);
        let fault = match pb::DisputeFault::try_from(r.fault) {
            Ok(pb::DisputeFault::Nobody) if r.at_fault_id.is_empty() => Some(Fault::Nobody),
            Ok(pb::DisputeFault::Nobody) => {
                f.violation("at_fault_id", "must be empty when nobody is at fault")
            }
            Ok(pb::DisputeFault::Customer) => f
                .id::<CustomerId>("at_fault_id", &r.at_fault_id)
                .map(Fault::Customer),
            Ok(pb::DisputeFault::Worker) => f
                .id::<WorkerId>("at_fault_id", &r.at_fault_id)
                .map(Fault::Worker),
            Ok(pb::DisputeFault::Unspecified) | Err(_) => {
                f.violation("fault", "must be nobody, customer or worker")
            }
        };
        let refund = f.fen("refund_fen", r.refund_fen);
        let compensation = f.fen("compensation_fen", r.compensation_fen);
        let note = f.text("note", &r.note);
        let reason = f.text("reason", &r.reason);
        let command = match (order, dispute_id, fault, refund, compensation, note) {
            (
                Some(order),
                Some(dispute_id),
                Some(fault),
                Some(refund),
                Some(compensation),
                Some(note),
            ) => Some(AdminCommand::Order(
                order,
                OrderCommand::ResolveDispute {
                    dispute_id,
                    outcome: DisputeOutcome {
                        refund,
                        compensation,
                        fault,
                        note,
                    },
                },
            )),
            _ => None,
        };
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::AdminCancelOrderRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::AdminCancelOrderRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let order = f.id::<OrderId>("order_id", &r.order_id);
        let reason = f.text("reason", &r.reason);
        let command = order.zip(reason.clone()).map(|(order, reason)| {
            AdminCommand::Order(
                order,
                OrderCommand::Cancel {
                    by: Party::Ops,
                    reason,
                },
            )
        });
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::PublishCreditRulesRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::PublishCreditRulesRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let rules = if r.rules_json.trim().is_empty() {
            f.violation("rules_json", "is required")
        } else {
            match serde_json::from_str::<RuleSet>(&r.rules_json) {
                Ok(rules) => match rules.validate() {
                    Ok(()) => Some(rules),
                    Err(e) => f.violation("rules_json", e.to_string()),
                },
                Err(e) => f.violation("rules_json", format!("is not a rule set: {e}")),
            }
        };
        let reason = f.text("reason", &r.reason);
        let command = rules.map(|r| AdminCommand::PublishRules(Box::new(r)));
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::IssueCertificateRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::IssueCertificateRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let worker = f.id::<WorkerId>("worker_id", &r.worker_id);
        let certificate_id = f.id::<CertificateId>("certificate_id", &r.certificate_id);
        let kind = match pb::CertificateKind::try_from(r.kind) {
            Ok(pb::CertificateKind::HomeVisit) if r.skill.is_empty() => {
                Some(CertificateKind::HomeVisit)
            }
            Ok(pb::CertificateKind::HomeVisit) => {
                f.violation("skill", "must be empty for a home-visit certificate")
            }
            Ok(pb::CertificateKind::Skill) if r.skill.is_empty() => {
                f.violation("skill", "is required for a skill certificate")
            }
            Ok(pb::CertificateKind::Skill) => match r.skill.parse::<SkillKind>() {
                Ok(skill) => Some(CertificateKind::Skill(skill)),
                Err(e) => f.violation("skill", e.to_string()),
            },
            Ok(pb::CertificateKind::Unspecified) | Err(_) => {
                f.violation("kind", "must be home_visit or skill")
            }
        };
        // The domain refuses these too, but they are facts of the request: list them with the
        // other bad fields rather than one at a time.
        let verified = f.must_hold(
            "identity_verified",
            r.identity_verified,
            "must be true: the identity is checked in person before issuing",
        );
        let trained = f.must_hold(
            "training_completed",
            r.training_completed,
            "must be true: pre-job training comes before the certificate",
        );
        let passed = f.must_hold(
            "exam_passed",
            r.exam_passed,
            "must be true: the exam comes before the certificate",
        );
        let health_check_at = f.timestamp("health_check_at", r.health_check_at.as_ref());
        let valid_until = f.timestamp("valid_until", r.valid_until.as_ref());
        let reason = f.text("reason", &r.reason);
        let command = match (
            worker,
            certificate_id,
            kind,
            health_check_at,
            valid_until,
            verified.and(trained).and(passed),
        ) {
            (
                Some(worker),
                Some(certificate_id),
                Some(kind),
                Some(health),
                Some(until),
                Some(()),
            ) => Some(AdminCommand::Certificate(
                worker,
                CertificateAction::Issue {
                    certificate_id,
                    kind,
                    conditions: IssueConditions {
                        identity_verified: true,
                        health_check_at: health,
                        training_completed: true,
                        exam_passed: true,
                    },
                    valid_until: until,
                },
            )),
            _ => None,
        };
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::RevokeCertificateRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::RevokeCertificateRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let worker = f.id::<WorkerId>("worker_id", &r.worker_id);
        let certificate_id = f.id::<CertificateId>("certificate_id", &r.certificate_id);
        let reason = f.text("reason", &r.reason);
        let command = match (worker, certificate_id, reason.clone()) {
            (Some(worker), Some(certificate_id), Some(reason)) => Some(AdminCommand::Certificate(
                worker,
                CertificateAction::Revoke {
                    certificate_id,
                    reason,
                },
            )),
            _ => None,
        };
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::RegisterWorkerRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::RegisterWorkerRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let worker = f.id::<WorkerId>("worker_id", &r.worker_id);
        let company = f.id::<CompanyId>("company_id", &r.company_id);
        let identity = match IdentityNumber::new(&r.identity_number) {
            Ok(identity) => Some(identity),
            Err(_) if r.identity_number.is_empty() => f.violation("identity_number", "is required"),
            Err(_) => f.violation(
                "identity_number",
                "must be 18 characters, 17 digits and a valid check digit",
            ),
        };
        let mut skills = Vec::with_capacity(r.skills.len());
        for (i, skill) in r.skills.iter().enumerate() {
            match skill.parse::<SkillKind>() {
                Ok(s) if skills.contains(&s) => {
                    f.violation::<()>(&format!("skills[{i}]"), format!("repeats {skill:?}"));
                }
                Ok(s) => skills.push(s),
                Err(e) => {
                    f.violation::<()>(&format!("skills[{i}]"), e.to_string());
                }
            }
        }
        let home = f.location("home", r.home.as_ref());
        let registry = f.id::<RegistryId>("registry_id", &r.registry_id);
        let reason = f.text("reason", &r.reason);
        let command = match (worker, company, identity, home, registry) {
            (Some(worker), Some(company), Some(identity), Some(home), Some(registry)) => {
                Some(AdminCommand::Worker(
                    worker,
                    WorkerCommand::Register(Box::new(RegisterWorker {
                        worker,
                        company,
                        identity,
                        skills,
                        home,
                        registry,
                    })),
                ))
            }
            _ => None,
        };
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::SignContractRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::SignContractRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let worker = f.id::<WorkerId>("worker_id", &r.worker_id);
        let contract = match ContractNumber::new(&r.contract_number) {
            Ok(number) => Some(number),
            Err(_) if r.contract_number.is_empty() => f.violation("contract_number", "is required"),
            Err(_) => f.violation(
                "contract_number",
                "must be 1 to 64 ASCII letters, digits and '-'",
            ),
        };
        let valid_from = f.timestamp("valid_from", r.valid_from.as_ref());
        let valid_until = f.timestamp("valid_until", r.valid_until.as_ref());
        if let (Some(from), Some(until)) = (valid_from, valid_until)
            && until <= from
        {
            f.violation::<()>("valid_until", "must be after valid_from");
        }
        let reason = f.text("reason", &r.reason);
        // `injury_cover: false` is a rule violation the domain reports with its reason code
        // (CONTRACT_WITHOUT_INJURY_COVER), not malformed input.
        let command = match (worker, contract, valid_from, valid_until) {
            (Some(worker), Some(contract), Some(valid_from), Some(valid_until)) => {
                Some(AdminCommand::Worker(
                    worker,
                    WorkerCommand::SignContract {
                        contract,
                        injury_cover: r.injury_cover,
                        valid_from,
                        valid_until,
                    },
                ))
            }
            _ => None,
        };
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::DecideAppealRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::DecideAppealRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let subject = f.subject(r.subject.as_ref());
        let appeal_id = f.id::<AppealId>("appeal_id", &r.appeal_id);
        let note = f.text("note", &r.note);
        let reason = f.text("reason", &r.reason);
        let command = match (subject, appeal_id, note) {
            (Some(subject), Some(appeal_id), Some(note)) => Some(AdminCommand::Credit(
                subject,
                CreditCommand::DecideAppeal {
                    appeal_id,
                    upheld: r.upheld,
                    note,
                },
            )),
            _ => None,
        };
        f.finish(command_id, reason, command)
    }
}

impl TryFrom<pb::RepairCreditRequest> for AdminRequest {
    type Error = ApiError;

    fn try_from(r: pb::RepairCreditRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.id("command_id", &r.command_id);
        let subject = f.subject(r.subject.as_ref());
        let reason = f.text("reason", &r.reason);
        let command = subject.map(|s| AdminCommand::Credit(s, CreditCommand::RepairCredit));
        f.finish(command_id, reason, command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> String {
        EventId::from_u128(n).to_string()
    }

    fn fields(err: ApiError) -> Vec<String> {
        let ApiError::InvalidArgument(v) = err else {
            panic!("{err:?}")
        };
        v.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_missing_reason_and_a_bad_worker_id_are_both_listed() {
        let err = AdminRequest::try_from(pb::SuspendWorkerRequest {
            command_id: id(1),
            worker_id: "nope".into(),
            reason: "  ".into(),
        })
        .unwrap_err();
        assert_eq!(fields(err), ["worker_id", "reason"]);
    }

    #[test]
    fn an_ops_cancellation_needs_an_order_and_a_reason() {
        let ok = AdminRequest::try_from(pb::AdminCancelOrderRequest {
            command_id: id(1),
            order_id: id(2),
            reason: "customer called the hotline".into(),
        })
        .unwrap();
        assert_eq!(
            ok.command,
            AdminCommand::Order(
                OrderId::from_u128(2),
                OrderCommand::Cancel {
                    by: Party::Ops,
                    reason: "customer called the hotline".into(),
                },
            )
        );
        let err = AdminRequest::try_from(pb::AdminCancelOrderRequest {
            command_id: "nope".into(),
            order_id: String::new(),
            reason: String::new(),
        })
        .unwrap_err();
        assert_eq!(fields(err), ["command_id", "order_id", "reason"]);
    }

    fn complaint(
        decision: pb::ComplaintDecision,
        severity: pb::ComplaintSeverity,
        refund: i64,
    ) -> pb::ResolveComplaintRequest {
        pb::ResolveComplaintRequest {
            command_id: id(1),
            order_id: id(2),
            complaint_id: id(3),
            decision: decision as i32,
            severity: severity as i32,
            refund_fen: refund,
            reason: "checked the photos".into(),
        }
    }

    #[test]
    fn an_upheld_complaint_needs_a_severity_and_a_dismissed_one_takes_neither_severity_nor_refund()
    {
        use pb::{ComplaintDecision as D, ComplaintSeverity as S};
        let upheld = AdminRequest::try_from(complaint(D::Upheld, S::Major, 500)).unwrap();
        assert_eq!(
            upheld.command,
            AdminCommand::Order(
                OrderId::from_u128(2),
                OrderCommand::ResolveComplaint {
                    complaint_id: ComplaintId::from_u128(3),
                    outcome: ComplaintOutcome::Upheld {
                        severity: Severity::Major,
                        refund: Fen(500),
                    },
                },
            )
        );
        let err = AdminRequest::try_from(complaint(D::Upheld, S::Unspecified, -1)).unwrap_err();
        assert_eq!(fields(err), ["refund_fen", "severity"]);
        let err = AdminRequest::try_from(complaint(D::Dismissed, S::Minor, 100)).unwrap_err();
        assert_eq!(fields(err), ["severity", "refund_fen"]);
        let err = AdminRequest::try_from(complaint(D::Unspecified, S::Unspecified, 0)).unwrap_err();
        assert_eq!(fields(err), ["decision"]);
    }

    #[test]
    fn a_dispute_fault_names_its_party_unless_nobody_is_at_fault() {
        let request = |fault: pb::DisputeFault, at_fault_id: String| pb::ResolveDisputeRequest {
            command_id: id(1),
            order_id: id(2),
            dispute_id: id(3),
            fault: fault as i32,
            at_fault_id,
            refund_fen: 0,
            compensation_fen: 0,
            note: "both agreed".into(),
            reason: "mediated".into(),
        };
        let ok = AdminRequest::try_from(request(pb::DisputeFault::Worker, id(9))).unwrap();
        let AdminCommand::Order(_, OrderCommand::ResolveDispute { outcome, .. }) = ok.command
        else {
            panic!("{ok:?}")
        };
        assert_eq!(outcome.fault, Fault::Worker(WorkerId::from_u128(9)));
        let err = AdminRequest::try_from(request(pb::DisputeFault::Nobody, id(9))).unwrap_err();
        assert_eq!(fields(err), ["at_fault_id"]);
        let err =
            AdminRequest::try_from(request(pb::DisputeFault::Customer, String::new())).unwrap_err();
        assert_eq!(fields(err), ["at_fault_id"]);
    }

    #[test]
    fn rule_json_must_parse_and_pass_the_domain_validation() {
        let request = |rules_json: String| pb::PublishCreditRulesRequest {
            command_id: id(1),
            rules_json,
            reason: "2027 policy".into(),
        };
        let mut rules = RuleSet::proposal();
        rules.version = 2;
        let ok = AdminRequest::try_from(request(serde_json::to_string(&rules).unwrap())).unwrap();
        assert_eq!(
            ok.command,
            AdminCommand::PublishRules(Box::new(rules.clone()))
        );

        let err = AdminRequest::try_from(request("{not json".into())).unwrap_err();
        assert_eq!(fields(err), ["rules_json"]);
        rules.rules.clear();
        let err =
            AdminRequest::try_from(request(serde_json::to_string(&rules).unwrap())).unwrap_err();
        let ApiError::InvalidArgument(v) = err else {
            panic!("{err:?}")
        };
        assert_eq!(v[0].field, "rules_json");
        assert!(v[0].description.contains("needs rules"), "{v:?}");
    }

    #[test]
    fn a_registration_lists_every_bad_field() {
        let err = AdminRequest::try_from(pb::RegisterWorkerRequest {
            command_id: id(1),
            worker_id: id(2),
            company_id: String::new(),
            identity_number: "110105198001010017".into(),
            skills: vec![
                "disinfection".into(),
                "Bad Skill".into(),
                "disinfection".into(),
            ],
            home: Some(pb::LatLon {
                lat: 95.0,
                lon: 0.0,
            }),
            registry_id: id(3),
            reason: String::new(),
        })
        .unwrap_err();
        assert_eq!(
            fields(err),
            [
                "company_id",
                "identity_number",
                "skills[1]",
                "skills[2]",
                "home.lat",
                "reason"
            ]
        );
    }

    #[test]
    fn a_certificate_needs_its_checks_and_a_skill_only_for_skill_certificates() {
        let ts = |seconds| Some(pb::Timestamp { seconds, nanos: 0 });
        let err = AdminRequest::try_from(pb::IssueCertificateRequest {
            command_id: id(1),
            worker_id: id(2),
            certificate_id: id(3),
            kind: pb::CertificateKind::HomeVisit as i32,
            skill: "disinfection".into(),
            identity_verified: false,
            health_check_at: ts(1_800_000_000),
            training_completed: true,
            exam_passed: true,
            valid_until: None,
            reason: "exam passed".into(),
        })
        .unwrap_err();
        assert_eq!(fields(err), ["skill", "identity_verified", "valid_until"]);
    }
}
