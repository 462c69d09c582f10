//! The one place where errors become gRPC statuses (DESIGN.md section 5, STYLE.md rule 11).
//!
//! Handlers return [`ApiError`] (every error they meet converts into it with `?`) and tonic
//! gets a [`Status`] from `From<ApiError>`. Details follow google.rpc `error_details.proto`
//! through `tonic-types`: `BadRequest` field violations for bad input, `ErrorInfo` with a
//! reason code for rule and concurrency failures, `ResourceInfo` for unknown ids and
//! `RequestInfo` carrying the incident id of an internal error. Internal errors are logged
//! with that id and never echoed to the caller.
//!
//! The domain's `DomainError` maps by its `kind()`: rule violations to FAILED_PRECONDITION with
//! the rule's `reason()` code in `ErrorInfo`, bad input to INVALID_ARGUMENT with a field
//! violation (and the reason code), unknown things to NOT_FOUND, broken data to INTERNAL.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use daojia_domain::{DomainError, ErrorKind};
use daojia_projections::ProjectionError;
use daojia_store::{Position, StoreError};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::Role;
use crate::end_user::{self, AssertionRefusal, Denial};
use crate::interceptor::AuthRefusal;

/// The `ErrorInfo.domain` of every daojia error.
pub const ERROR_DOMAIN: &str = "daojia";

/// One bad input field: its path in the request (`order.address.lat`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request message, dot-separated, as in the proto.
    pub field: String,
    /// What is wrong with it, lowercase, no trailing period.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        FieldViolation {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Everything a daojia.v1 handler can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed; every bad field is listed.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// No valid credentials.
    #[error("unauthenticated")]
    Unauthenticated(AuthRefusal),
    /// The caller's role may not do this.
    #[error("role {role} may not {action}")]
    PermissionDenied {
        /// The caller's role.
        role: Role,
        /// What it tried, for the message (`adjust credit`).
        action: &'static str,
    },
    /// A call bound to an end user (`--end-user-keys`) names another customer or worker, or
    /// touches an order that is not theirs.
    #[error("not the end user's: {0:?}")]
    EndUserDenied(Denial),
    /// The event store is still opening (recovery after a restart).
    #[error("the event store is still opening")]
    StoreOpening,
    /// The event store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The domain refused a command (or found stored data it cannot read).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A query's `min_position` is past the store's committed end: no reply ever handed it out,
    /// so waiting would not help (see [`crate::min_position`]).
    #[error("min_position {min_position} is beyond the committed end {head}")]
    PositionBeyondHead {
        /// What the caller asked for.
        min_position: Position,
        /// The store's committed end.
        head: Position,
    },
    /// A request named something that does not exist (message `kind:id not found`, with a
    /// `google.rpc.ResourceInfo` naming the same kind and id).
    #[error("{resource}:{id} not found")]
    NotFound {
        /// What kind of thing (`worker`).
        resource: &'static str,
        /// Its id (for things inside another, such as a complaint on an order, the outer
        /// thing's `kind:id` follows after a space: `c-1 on order:o-1`).
        id: String,
        /// The ErrorInfo reason code (`WORKER_NOT_FOUND`).
        reason: &'static str,
    },
    /// The read models did not reach a query's `min_position` within the wait bound, or they
    /// stopped advancing.
    #[error(transparent)]
    ReadModel(#[from] ProjectionError),
    /// The server is not in a state that allows the request (outside the domain's rules, e.g.
    /// moving a clock that is not simulated).
    #[error("{message}")]
    Precondition {
        /// The ErrorInfo reason code (`CLOCK_NOT_SIMULATED`).
        reason: &'static str,
        /// What is wrong, for people.
        message: String,
    },
    /// A bounded wait ran out.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A notification stream's client did not keep up: its queue would pass its budget.
    #[error("notification stream fell behind; reconnect with after_position={resume_after}")]
    FellBehind {
        /// The last position the client was sent (or the stream's start).
        resume_after: Position,
        /// The stream's budget of queued bytes.
        budget_bytes: usize,
    },
    /// All notification streams together hold their byte budget; this one, which had
    /// notifications waiting, was ended.
    #[error("notification buffers are full; reconnect with after_position={resume_after}")]
    NotificationsFull {
        /// The last position the client was sent (or the stream's start).
        resume_after: Position,
        /// The budget of all streams together.
        total_budget_bytes: usize,
    },
}

fn describe(violations: &[FieldViolation]) -> String {
    let parts: Vec<String> = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect();
    parts.join("; ")
}

impl ApiError {
    /// A NOT_FOUND for the `kind` thing with id `id` (ErrorInfo reason `reason`).
    pub fn not_found(kind: &'static str, id: impl std::fmt::Display, reason: &'static str) -> Self {
        ApiError::NotFound {
            resource: kind,
            id: id.to_string(),
            reason,
        }
    }

    /// NOT_FOUND for an unregistered worker (`WORKER_NOT_REGISTERED`).
    pub fn worker_not_registered(worker: daojia_domain::WorkerId) -> Self {
        ApiError::not_found("worker", worker, "WORKER_NOT_REGISTERED")
    }

    /// A domain refusal of a command on `order`, with an unposted order named (`order:<id>`).
    pub fn on_order(order: daojia_domain::OrderId, e: DomainError) -> Self {
        match e {
            DomainError::OrderNotPosted => ApiError::not_found("order", order, "ORDER_NOT_FOUND"),
            e => ApiError::Domain(e),
        }
    }

    /// An INVALID_ARGUMENT for one field.
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        ApiError::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl From<Denial> for ApiError {
    fn from(denial: Denial) -> Self {
        ApiError::EndUserDenied(denial)
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::InvalidArgument(violations) => {
                let violations = bounded(violations);
                let message = e_message(&violations);
                let details = ErrorDetails::with_bad_request(
                    violations
                        .into_iter()
                        .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            ApiError::Unauthenticated(AuthRefusal::EndUser(refusal)) => assertion_status(refusal),
            ApiError::EndUserDenied(denial) => end_user_denied(denial),
            ApiError::Unauthenticated(refusal) => Status::unauthenticated(match refusal {
                AuthRefusal::Missing => "missing credentials: send `authorization: Bearer <token>`",
                AuthRefusal::Malformed => {
                    "malformed credentials: the authorization header must be `Bearer <token>` \
                     (or `Basic` ACTOR:TOKEN from EventStoreDB clients)"
                }
                AuthRefusal::UnknownToken | AuthRefusal::EndUser(_) => {
                    "invalid credentials: unknown token, or a Basic user name that is not the \
                     token's actor"
                }
            }),
            ApiError::PermissionDenied { role, action } => with_reason(
                Code::PermissionDenied,
                format!("role {role} may not {action}"),
                "ROLE_NOT_ALLOWED",
                [("role", role.to_string())],
            ),
            ApiError::StoreOpening => with_reason(
                Code::Unavailable,
                "the event store is still opening; retry shortly".into(),
                "STORE_OPENING",
                [],
            ),
            ApiError::Store(e) => store_status(e),
            ApiError::Domain(e) => domain_status(&e),
            ApiError::PositionBeyondHead { min_position, head } => with_reason(
                Code::FailedPrecondition,
                format!(
                    "min_position {min_position} is beyond the committed end {head}: pass a \
                     command reply's commit_position or ServerInfo.head_position"
                ),
                "POSITION_BEYOND_HEAD",
                [
                    ("min_position", min_position.0.to_string()),
                    ("head", head.0.to_string()),
                ],
            ),
            ApiError::NotFound {
                resource,
                id,
                reason,
            } => {
                let message = format!("{resource}:{id} not found");
                let mut details =
                    ErrorDetails::with_resource_info(resource, id, "", message.clone());
                details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
                Status::with_error_details(Code::NotFound, message, details)
            }
            ApiError::ReadModel(e) => projection_status(e),
            ApiError::Precondition { reason, message } => {
                with_reason(Code::FailedPrecondition, message, reason, [])
            }
            ApiError::DeadlineExceeded(message) => Status::deadline_exceeded(message),
            ApiError::FellBehind {
                resume_after,
                budget_bytes,
            } => with_reason(
                Code::ResourceExhausted,
                format!(
                    "notification stream fell behind; reconnect with after_position={resume_after} \
                     (more than {budget_bytes} bytes were waiting for the client)"
                ),
                "STREAM_FELL_BEHIND",
                [
                    ("after_position", resume_after.0.to_string()),
                    ("budget_bytes", budget_bytes.to_string()),
                ],
            ),
            ApiError::NotificationsFull {
                resume_after,
                total_budget_bytes,
            } => with_reason(
                Code::ResourceExhausted,
                format!(
                    "the server's notification buffers are full ({total_budget_bytes} bytes \
                     across all streams) and this stream had notifications waiting; reconnect \
                     with after_position={resume_after}"
                ),
                "NOTIFICATIONS_FULL",
                [
                    ("after_position", resume_after.0.to_string()),
                    ("total_budget_bytes", total_budget_bytes.to_string()),
                ],
            ),
        }
    }
}

/// UNAUTHENTICATED for an app-role call whose end-user assertion is missing or not valid.
fn assertion_status(refusal: AssertionRefusal) -> Status {
    let header = end_user::HEADER;
    let message = match refusal {
        AssertionRefusal::Missing => format!(
            "missing end-user assertion: this server binds app-role calls to an end user; send \
             `{header}: <JWT>` signed by the app backend with `sub` = the customer or worker id"
        ),
        AssertionRefusal::Malformed => format!(
            "invalid end-user assertion in `{header}`: not a JWT with a string `sub` and a \
             numeric `exp`"
        ),
        AssertionRefusal::UnknownKey => format!(
            "invalid end-user assertion in `{header}`: its header's `kid` names no configured \
             key (`kid` is required when several keys are configured)"
        ),
        AssertionRefusal::WrongAlgorithm => format!(
            "invalid end-user assertion in `{header}`: its `alg` is not the algorithm of the \
             key its `kid` names"
        ),
        AssertionRefusal::BadSignature => {
            format!("invalid end-user assertion in `{header}`: the signature does not verify")
        }
        AssertionRefusal::Expired => {
            format!("expired end-user assertion in `{header}`: its `exp` has passed; get a new one")
        }
        AssertionRefusal::TooLongLived { max_age_secs } => format!(
            "end-user assertion in `{header}` lives too long: its `exp` is more than \
             {max_age_secs} s ahead (this server's --end-user-max-age)"
        ),
        AssertionRefusal::NotYetValid => {
            format!("end-user assertion in `{header}` is not valid yet: its `nbf` is ahead")
        }
        AssertionRefusal::WrongAudience => format!(
            "invalid end-user assertion in `{header}`: its `aud` is not this server's \
             --end-user-audience (or it has an `aud` and none is configured)"
        ),
        AssertionRefusal::BadSubject { role } => format!(
            "invalid end-user assertion in `{header}`: for role {role} its `sub` must be a {} \
             id (a UUID)",
            match role {
                Role::WorkerApp => "worker",
                _ => "customer",
            }
        ),
    };
    with_reason(
        Code::Unauthenticated,
        message,
        refusal.reason(),
        [("header", header.to_string())],
    )
}

/// PERMISSION_DENIED for a bound call that reaches beyond its end user.
fn end_user_denied(denial: Denial) -> Status {
    let reason = denial.reason();
    match denial {
        Denial::OtherUser {
            field,
            given,
            end_user,
        } => with_reason(
            Code::PermissionDenied,
            format!(
                "{field} {given} is not the end user of this call: the `{}` assertion is for \
                 {end_user}",
                end_user::HEADER
            ),
            reason,
            [
                ("field", field.to_string()),
                ("end_user", end_user.to_string()),
            ],
        ),
        Denial::NotTheirOrder { order, end_user } => with_reason(
            Code::PermissionDenied,
            format!(
                "order {order} is not {end_user}'s: a customer may touch only their own orders, \
                 a worker only orders they were offered or hold a slot on"
            ),
            reason,
            [("order_id", order), ("end_user", end_user.to_string())],
        ),
    }
}

/// A read model that is behind is UNAVAILABLE with the same reason as an uncommitted position
/// (`POSITION_NOT_REACHED`): the client retries either way.
fn projection_status(e: ProjectionError) -> Status {
    match e {
        ProjectionError::Timeout {
            wanted,
            applied,
            waited,
            ..
        } => with_reason(
            Code::Unavailable,
            format!(
                "position {wanted} not reached by the read models within {} ms (applied up to \
                 {applied}); retry shortly",
                waited.as_millis()
            ),
            "POSITION_NOT_REACHED",
            [
                ("min_position", wanted.0.to_string()),
                ("applied", applied.0.to_string()),
            ],
        ),
        ProjectionError::Stopped { projection, reason } => {
            tracing::error!(%projection, %reason, "read model stopped");
            with_reason(
                Code::Unavailable,
                "the read models stopped advancing; retry later".into(),
                "READ_MODEL_STOPPED",
                [],
            )
        }
        ProjectionError::Store { source, .. } => store_status(source),
        other => internal(&other),
    }
}

fn domain_status(e: &DomainError) -> Status {
    let reason = e.reason();
    match e.kind() {
        ErrorKind::InvalidArgument => {
            let mut details =
                ErrorDetails::with_bad_request(vec![tonic_types::FieldViolation::new(
                    domain_field(e),
                    e.to_string(),
                )]);
            details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
            Status::with_error_details(
                Code::InvalidArgument,
                format!("invalid {}: {e}", domain_field(e)),
                details,
            )
        }
        ErrorKind::FailedPrecondition => {
            with_reason(Code::FailedPrecondition, e.to_string(), reason, [])
        }
        ErrorKind::NotFound => {
            let (kind, id) = domain_resource(e);
            let message = if kind.is_empty() || id.is_empty() {
                e.to_string()
            } else {
                format!("{kind}:{id} not found")
            };
            let mut details = ErrorDetails::with_resource_info(kind, id, "", message.clone());
            details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
            Status::with_error_details(Code::NotFound, message, details)
        }
        ErrorKind::Internal => internal(e),
    }
}

/// The kind and id of what a domain NOT_FOUND names, for its ResourceInfo. The server turns
/// the variants that carry no id (an unposted order, an unopened follow-up, an unregistered
/// worker) into [`ApiError::NotFound`] where it knows the id; these are the fallback.
fn domain_resource(e: &DomainError) -> (&'static str, String) {
    match e {
        DomainError::UnknownService { code } => ("service", code.to_string()),
        DomainError::UnknownSlot { order, slot } => ("slot", format!("{slot} on order:{order}")),
        DomainError::UnknownDispute { dispute } => ("dispute", dispute.to_string()),
        DomainError::UnknownComplaint { complaint } => ("complaint", complaint.to_string()),
        DomainError::UnknownRule { rule, version } => {
            ("rule", format!("{} in rule set {version}", rule.as_str()))
        }
        DomainError::UnknownAppeal { appeal } => ("appeal", appeal.to_string()),
        DomainError::UnknownCertificate { certificate } => ("certificate", certificate.to_string()),
        DomainError::NoCertificateForWorker { worker } => {
            ("certificate", format!("home-visit of worker:{worker}"))
        }
        DomainError::OrderNotPosted => ("order", String::new()),
        DomainError::FollowUpNotOpened => ("followup", String::new()),
        DomainError::WorkerNotRegistered => ("worker", String::new()),
        _ => ("", e.to_string()),
    }
}

/// The request field a domain validation error is about, for its field violation. Handlers
/// validate named fields at the boundary (`TryFrom`); this covers what only `decide` can judge
/// (it needs the order's terms or `now`).
fn domain_field(e: &DomainError) -> &'static str {
    let lat_range = -90.0..=90.0;
    match e {
        DomainError::InvalidId { kind, .. } => match *kind {
            "order" => "order_id",
            "customer" => "customer_id",
            "worker" => "worker_id",
            "complaint" => "complaint_id",
            _ => "id",
        },
        DomainError::InvalidServiceCode { .. } => "service_code",
        DomainError::NegativeMoney { field, .. }
        | DomainError::EmptyText { field }
        | DomainError::TextTooLong { field, .. } => field,
        DomainError::QuantityOutOfRange { .. } => "quantity",
        DomainError::WorkersOutOfRange { .. } => "workers",
        DomainError::InvalidLocation { lat, .. } if !lat_range.contains(lat) => "location.lat",
        DomainError::InvalidLocation { .. } => "location.lon",
        DomainError::InvalidWindow { .. } => "window_end",
        DomainError::InvalidRating { .. } => "stars",
        DomainError::TooManyTags { .. } => "tags",
        DomainError::InvalidGrabDeadline { .. } => "grab_pool.deadline",
        DomainError::InvalidValidity { .. } => "valid_until",
        DomainError::ZeroAdjustment => "points",
        DomainError::InvalidContractNumber { .. } => "contract_number",
        DomainError::InvalidRuleSet { .. } => "rules_json",
        _ => "request",
    }
}

/// Most field violations sent back; the rest are summed up in one more.
pub const MAX_VIOLATIONS: usize = 20;
/// Longest field name or description sent back, in characters.
const MAX_VIOLATION_TEXT: usize = 200;

/// At most [`MAX_VIOLATIONS`] violations with bounded text, so that a request with thousands of
/// bad repeated values still gets an INVALID_ARGUMENT whose headers fit in HTTP/2 limits.
fn bounded(mut violations: Vec<FieldViolation>) -> Vec<FieldViolation> {
    let clip = |text: String| -> String {
        if text.chars().count() <= MAX_VIOLATION_TEXT {
            text
        } else {
            let mut clipped: String = text.chars().take(MAX_VIOLATION_TEXT).collect();
            clipped.push('…');
            clipped
        }
    };
    let more = violations.len().saturating_sub(MAX_VIOLATIONS);
    violations.truncate(MAX_VIOLATIONS);
    let mut out: Vec<FieldViolation> = violations
        .into_iter()
        .map(|v| FieldViolation::new(clip(v.field), clip(v.description)))
        .collect();
    if more > 0 {
        out.push(FieldViolation::new(
            "request",
            format!("and {more} more invalid values"),
        ));
    }
    out
}

fn e_message(violations: &[FieldViolation]) -> String {
    match violations {
        [one] => format!("invalid {}: {}", one.field, one.description),
        _ => format!("invalid request: {}", describe(violations)),
    }
}

fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::WrongExpectedVersion {
            stream,
            expected,
            actual,
        } => with_reason(
            Code::Aborted,
            format!(
                "concurrent change to {stream}: expected {expected}, found {actual}; nothing was \
                 written, reload and retry"
            ),
            "WRONG_EXPECTED_VERSION",
            [
                ("stream", stream),
                ("expected", expected.to_string()),
                ("actual", actual.to_string()),
            ],
        ),
        StoreError::StreamDeleted { stream } => with_reason(
            Code::FailedPrecondition,
            format!("{stream} is deleted"),
            "STREAM_DELETED",
            [("stream", stream)],
        ),
        StoreError::StreamNotFound { stream } => Status::with_error_details(
            Code::NotFound,
            format!("{stream} not found"),
            ErrorDetails::with_resource_info("stream", stream, "", "no such stream"),
        ),
        StoreError::InvalidArgument(message) => Status::invalid_argument(message),
        StoreError::FellBehind { budget_bytes } => with_reason(
            Code::ResourceExhausted,
            format!(
                "subscriber fell behind by more than {budget_bytes} bytes; resubscribe after \
                 the last event received"
            ),
            "SUBSCRIBER_FELL_BEHIND",
            [("budget_bytes", budget_bytes.to_string())],
        ),
        StoreError::Unavailable(cause) => {
            tracing::warn!(%cause, "event store unavailable");
            with_reason(
                Code::Unavailable,
                "the event store is unavailable; retry later".into(),
                "STORE_UNAVAILABLE",
                [],
            )
        }
        other => internal(&other),
    }
}

fn with_reason<const N: usize>(
    code: Code,
    message: String,
    reason: &str,
    metadata: [(&str, String); N],
) -> Status {
    let metadata: HashMap<String, String> = metadata
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// Logs `cause` under a fresh incident id and answers INTERNAL naming only that id.
fn internal(cause: &dyn std::error::Error) -> Status {
    let incident = incident_id();
    tracing::error!(incident = %incident, %cause, "internal error");
    Status::with_error_details(
        Code::Internal,
        format!("internal error (incident {incident})"),
        ErrorDetails::with_request_info(incident, ""),
    )
}

/// A 16-hex-digit id, unique within the process and unpredictable across processes.
fn incident_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let keys = KEYS.get_or_init(std::hash::RandomState::new);
    format!("{:016x}", keys.hash_one(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use daojia_store::{CurrentRevision, ExpectedRevision, Revision};

    fn status(e: impl Into<ApiError>) -> Status {
        Status::from(e.into())
    }

    #[test]
    fn bad_input_lists_every_field_violation() {
        let s = status(ApiError::InvalidArgument(vec![
            FieldViolation::new("address.lat", "must be within [-90, 90]"),
            FieldViolation::new("service_code", "unknown service type \"xyz\""),
        ]));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(
            s.message().contains("address.lat: must be within"),
            "{}",
            s.message()
        );
        let bad = s.get_details_bad_request().expect("BadRequest details");
        let fields: Vec<_> = bad
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["address.lat", "service_code"]);
        let one = status(ApiError::invalid_field("stars", "must be 1 to 5"));
        assert_eq!(one.message(), "invalid stars: must be 1 to 5");
    }

    #[test]
    fn store_errors_map_to_codes_with_reasons() {
        let conflict = status(StoreError::WrongExpectedVersion {
            stream: "order-1".into(),
            expected: ExpectedRevision::Exact(Revision(3)),
            actual: CurrentRevision::Current(Revision(4)),
        });
        assert_eq!(conflict.code(), Code::Aborted);
        let info = conflict.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "WRONG_EXPECTED_VERSION");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(info.metadata["stream"], "order-1");

        let deleted = status(StoreError::StreamDeleted {
            stream: "order-2".into(),
        });
        assert_eq!(deleted.code(), Code::FailedPrecondition);
        assert_eq!(
            deleted.get_details_error_info().unwrap().reason,
            "STREAM_DELETED"
        );

        let missing = status(StoreError::StreamNotFound {
            stream: "order-3".into(),
        });
        assert_eq!(missing.code(), Code::NotFound);
        assert_eq!(
            missing.get_details_resource_info().unwrap().resource_name,
            "order-3"
        );

        let invalid = status(StoreError::InvalidArgument("event too large".into()));
        assert_eq!(invalid.code(), Code::InvalidArgument);

        let unavailable = status(StoreError::Unavailable("poisoned by EIO".into()));
        assert_eq!(unavailable.code(), Code::Unavailable);
        assert!(!unavailable.message().contains("EIO"), "cause echoed");
    }

    #[test]
    fn internal_errors_are_not_echoed_but_carry_an_incident_id() {
        for e in [
            StoreError::Corrupt("segment 00000003.log offset 4096: bad crc".into()),
            StoreError::Internal("read task failed: panic".into()),
        ] {
            let s = status(e);
            assert_eq!(s.code(), Code::Internal);
            assert!(!s.message().contains("crc") && !s.message().contains("panic"));
            let id = s
                .get_details_request_info()
                .expect("RequestInfo")
                .request_id;
            assert_eq!(id.len(), 16);
            assert!(s.message().contains(&id));
        }
        assert_ne!(incident_id(), incident_id());
    }

    #[test]
    fn domain_errors_map_by_kind_with_their_reason_codes() {
        use daojia_domain::OrderId;
        use daojia_domain::order::OrderPhase;

        let refused = status(DomainError::ReviewBeforeService {
            order: OrderId::from_u128(1),
            phase: OrderPhase::Open,
        });
        assert_eq!(refused.code(), Code::FailedPrecondition);
        let info = refused.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "REVIEW_BEFORE_SERVICE");
        assert_eq!(info.domain, ERROR_DOMAIN);

        let bad = status(DomainError::TextTooLong {
            field: "text",
            max: 1_000,
        });
        assert_eq!(bad.code(), Code::InvalidArgument);
        let fields = bad.get_details_bad_request().expect("BadRequest");
        assert_eq!(fields.field_violations[0].field, "text");
        assert_eq!(
            bad.get_details_error_info().unwrap().reason,
            "TEXT_TOO_LONG"
        );

        let missing = status(DomainError::OrderNotPosted);
        assert_eq!(missing.code(), Code::NotFound);
        assert_eq!(
            missing.get_details_error_info().unwrap().reason,
            "ORDER_NOT_FOUND"
        );

        let broken = status(DomainError::MalformedEvent {
            event_type: "OrderPosted".into(),
            reason: "secret detail".into(),
        });
        assert_eq!(broken.code(), Code::Internal);
        assert!(!broken.message().contains("secret"));
    }

    #[test]
    fn read_models_behind_or_stopped_are_unavailable_with_reasons() {
        let s = status(ProjectionError::Timeout {
            projection: "all".into(),
            wanted: Position(900),
            applied: Position(120),
            waited: std::time::Duration::from_millis(250),
        });
        assert_eq!(s.code(), Code::Unavailable);
        let info = s.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "POSITION_NOT_REACHED");
        assert_eq!(info.metadata["min_position"], "900");
        assert_eq!(info.metadata["applied"], "120");
        assert!(s.message().contains("250 ms"), "{}", s.message());

        let s = status(ProjectionError::Stopped {
            projection: "all".into(),
            reason: "secret cause".into(),
        });
        assert_eq!(s.code(), Code::Unavailable);
        assert!(!s.message().contains("secret"));
        assert_eq!(
            s.get_details_error_info().unwrap().reason,
            "READ_MODEL_STOPPED"
        );

        let s = status(ApiError::NotFound {
            resource: "worker",
            id: "w-1".into(),
            reason: "WORKER_NOT_FOUND",
        });
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.get_details_resource_info().unwrap().resource_name, "w-1");
    }

    #[test]
    fn auth_and_permission_errors() {
        let s = status(ApiError::Unauthenticated(AuthRefusal::Missing));
        assert_eq!(s.code(), Code::Unauthenticated);
        let s = status(ApiError::PermissionDenied {
            role: Role::Analytics,
            action: "adjust credit",
        });
        assert_eq!(s.code(), Code::PermissionDenied);
        assert_eq!(s.message(), "role analytics may not adjust credit");
        let s = status(ApiError::StoreOpening);
        assert_eq!(s.code(), Code::Unavailable);
    }
}

/// RESOURCE_EXHAUSTED for a request refused by admission control because `limit` requests of
/// its service class (`lane`) are already in flight: the message says so, a
/// `google.rpc.RetryInfo` detail and the `retry-after-ms` metadata say when to try again.
pub fn overloaded(lane: &str, limit: usize, retry_after: std::time::Duration) -> Status {
    let message = format!(
        "server overloaded: {limit} {lane} already in flight (the --max-inflight limit of the \
         class); retry after {} ms",
        retry_after.as_millis()
    );
    exhausted_retry_after(message, retry_after)
}

/// RESOURCE_EXHAUSTED with `message`, a `google.rpc.RetryInfo` detail and the
/// `retry-after-ms` metadata saying when to try again.
pub fn exhausted_retry_after(message: String, retry_after: std::time::Duration) -> Status {
    let mut status = Status::with_error_details(
        Code::ResourceExhausted,
        message,
        ErrorDetails::with_retry_info(Some(retry_after)),
    );
    if let Ok(value) = retry_after.as_millis().to_string().parse() {
        status.metadata_mut().insert(RETRY_AFTER_MS, value);
    }
    status
}

/// The metadata key of the delay advised by [`overloaded`], in milliseconds.
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// INVALID_ARGUMENT for a message that does not decode (truncated or garbage protobuf,
/// invalid UTF-8 in a string): it names the message and, when prost knows it, the field (as
/// a `BadRequest` field violation).
pub fn undecodable(message: &str, error: &prost::DecodeError) -> Status {
    let text = error.to_string();
    let (field, reason) = decode_error_field(&text);
    let status_message = match &field {
        Some(field) => format!("cannot decode the {message} message: field {field}: {reason}"),
        None => format!("cannot decode the {message} message: {reason}"),
    };
    let details = ErrorDetails::with_bad_request(vec![tonic_types::FieldViolation::new(
        field.unwrap_or_default(),
        reason,
    )]);
    Status::with_error_details(Code::InvalidArgument, status_message, details)
}

/// Splits prost's `failed to decode Protobuf message: Inner.b: Outer.a: what` into the field
/// path `a.b` (outermost first) and `what`.
fn decode_error_field(text: &str) -> (Option<String>, String) {
    let mut rest = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(text);
    let mut fields = Vec::new();
    while let Some((segment, tail)) = rest.split_once(": ") {
        let is_frame = segment.split_once('.').is_some_and(|(m, f)| {
            !m.is_empty()
                && !f.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        });
        if !is_frame {
            break;
        }
        if let Some((_, field)) = segment.rsplit_once('.') {
            fields.push(field.to_string());
        }
        rest = tail;
    }
    fields.reverse();
    let field = (!fields.is_empty()).then(|| fields.join("."));
    (field, rest.to_string())
}

/// RESOURCE_EXHAUSTED for a request message over the decoding limit (tonic says OUT_OF_RANGE):
/// `tonic_message` is tonic's `Error, decoded message length too large: found N bytes, the
/// limit is: L bytes`; `None` if it is not that.
pub fn message_too_large(tonic_message: &str) -> Option<Status> {
    let rest = tonic_message.strip_prefix("Error, decoded message length too large: ")?;
    Some(Status::resource_exhausted(format!(
        "request message too large: {rest} (--max-message-bytes)"
    )))
}

#[cfg(test)]
mod transport_tests {
    use super::*;

    #[test]
    fn decode_errors_name_the_field_path_outermost_first() {
        assert_eq!(
            decode_error_field(
                "failed to decode Protobuf message: Address.city: Order.address: invalid string \
                 value: data is not UTF-8 encoded"
            ),
            (
                Some("address.city".to_string()),
                "invalid string value: data is not UTF-8 encoded".to_string()
            )
        );
        assert_eq!(
            decode_error_field("failed to decode Protobuf message: buffer underflow"),
            (None, "buffer underflow".to_string())
        );
    }

    #[test]
    fn overload_carries_retry_advice() {
        let status = overloaded("queries", 3, std::time::Duration::from_millis(250));
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status
                .metadata()
                .get(RETRY_AFTER_MS)
                .unwrap()
                .to_str()
                .unwrap(),
            "250"
        );
        let retry = status.get_details_retry_info().unwrap();
        assert_eq!(
            retry.retry_delay,
            Some(std::time::Duration::from_millis(250))
        );
    }

    #[test]
    fn only_tonics_length_error_is_remapped() {
        let s = message_too_large(
            "Error, decoded message length too large: found 10 bytes, the limit is: 5 bytes",
        )
        .unwrap();
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(s.message().contains("the limit is: 5 bytes"));
        assert!(message_too_large("something else").is_none());
    }
}
