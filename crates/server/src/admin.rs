//! `daojia.v1.Admin`: the ops console's commands (suspend, reinstate, black-list, adjust
//! credit, record completed training, close follow-ups). Roles `ops` and `admin`.
//!
//! Each command is validated here (every bad field is listed, a missing `reason` included),
//! then decided by the domain (`credit::decide` on the subject's credit stream under the
//! current rule set, `followups::decide` on the task's stream) and appended with the expected
//! revision, reloading and deciding again on a concurrent change like order commands do. The
//! event ids derive from the command id (`order_commands::event_id`), so a retried command
//! finds its earlier events, answers their result and appends nothing. The events' metadata
//! records the acting ops user, their role and the reason.

use crate::order_requests::CommandId;
use daojia_domain::credit::{self, CreditCommand, CreditEvent, CreditState, RuleSetEvent};
use daojia_domain::events::{self, DomainEvent};
use daojia_domain::followups::{self, FollowUpCommand, FollowUpEvent, FollowUpState};
use daojia_domain::ids::CREDIT_RULES_STREAM;
use daojia_domain::order::MAX_TEXT_CHARS;
use daojia_domain::{DomainError, EventId, FollowUpId, RuleSet, Subject, WorkerId};
use daojia_store::{
    EventStore, ExpectedRevision, Position, ProposedEvent, RecordedEvent, Revision, StoreError,
};
use tonic::{Request, Response, Status};

use crate::auth::{Caller, Role};
use crate::clock::Clock;
use crate::interceptor::caller;
use crate::order_commands::{MAX_ATTEMPTS, decode, event_id, load_stream};
use crate::pb;
use crate::queries::parse_subject;
use crate::status::{ApiError, FieldViolation};
use crate::store_slot::StoreSlot;

/// The `daojia.v1.Admin` service.
#[derive(Clone, Debug)]
pub struct AdminService {
    store: StoreSlot,
    clock: Clock,
}

impl AdminService {
    /// A service over `store`, deciding with `clock`.
    pub fn new(store: StoreSlot, clock: Clock) -> Self {
        AdminService { store, clock }
    }

    async fn command<R>(
        &self,
        request: Request<R>,
        action: &'static str,
    ) -> Result<Response<pb::AdminReply>, Status>
    where
        AdminRequest: TryFrom<R, Error = ApiError>,
    {
        let caller = caller(&request)?.clone();
        caller.require(Role::Ops, action)?;
        let command = AdminRequest::try_from(request.into_inner())?;
        let store = self.store.get()?;
        let done = execute(store, &self.clock, &caller, command).await?;
        Ok(Response::new(pb::AdminReply {
            commit_position: done.position.0,
            stream_revision: done.revision.0,
            event_types: done.event_types,
            replayed: done.replayed,
        }))
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn suspend_worker(
        &self,
        request: Request<pb::SuspendWorkerRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, "suspend workers").await
    }

    async fn reinstate_worker(
        &self,
        request: Request<pb::ReinstateWorkerRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, "reinstate workers").await
    }

    async fn black_list(
        &self,
        request: Request<pb::BlackListRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, "black-list").await
    }

    async fn adjust_credit(
        &self,
        request: Request<pb::AdjustCreditRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, "adjust credit").await
    }

    async fn record_training_completed(
        &self,
        request: Request<pb::RecordTrainingCompletedRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, "record training").await
    }

    async fn close_follow_up(
        &self,
        request: Request<pb::CloseFollowUpRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, "close follow-ups").await
    }
}

/// What an admin command acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminCommand {
    /// A command on a subject's credit stream.
    Credit(Subject, CreditCommand),
    /// A command on a follow-up task's stream.
    FollowUp(FollowUpId, FollowUpCommand),
}

/// A validated admin command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRequest {
    /// The idempotency key; the first event's id.
    pub command_id: CommandId,
    /// Why, for the events' metadata.
    pub reason: String,
    /// The domain command.
    pub command: AdminCommand,
}

/// Bad fields found so far; every check that records one returns `None`.
#[derive(Debug, Default)]
struct Fields(Vec<FieldViolation>);

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

    fn text(&mut self, field: &str, value: &str) -> Option<String> {
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

/// What an admin command did (or, for a retry, what its first execution did).
#[derive(Debug)]
pub struct AdminExecuted {
    /// Position of the command's last event.
    pub position: Position,
    /// The stream's revision after the command's last event.
    pub revision: Revision,
    /// Types of the command's events, in order.
    pub event_types: Vec<String>,
    /// The command had been executed before with the same command id.
    pub replayed: bool,
}

/// The current credit rule set: the latest published one, or the built-in proposal.
pub async fn current_rules<S: EventStore>(store: &S) -> Result<RuleSet, ApiError> {
    let mut state = credit::RuleSetState::default();
    for event in load_stream(store, CREDIT_RULES_STREAM).await? {
        state = credit::evolve_rule_set(state, &decode::<RuleSetEvent>(&event)?);
    }
    Ok(state.current.unwrap_or_else(RuleSet::proposal))
}

/// Executes `request` for `caller`: the new result, or the first result of a retried command.
pub async fn execute<S: EventStore>(
    store: &S,
    clock: &Clock,
    caller: &Caller,
    request: AdminRequest,
) -> Result<AdminExecuted, ApiError> {
    match request.command.clone() {
        AdminCommand::Credit(subject, command) => {
            let rules = current_rules(store).await?;
            append_decided(
                store,
                caller,
                &request,
                &subject.stream_name(),
                |recorded| {
                    let mut state = CreditState::new(subject);
                    for event in recorded {
                        state = credit::evolve(state, &decode::<CreditEvent>(event)?);
                    }
                    Ok(credit::decide(
                        &state,
                        &rules,
                        command.clone(),
                        clock.now(),
                    )?)
                },
            )
            .await
        }
        AdminCommand::FollowUp(id, command) => {
            append_decided(store, caller, &request, &id.stream_name(), |recorded| {
                let mut state = FollowUpState::default();
                for event in recorded {
                    state = followups::evolve(state, &decode::<FollowUpEvent>(event)?);
                }
                Ok(followups::decide(&state, command.clone(), clock.now())?)
            })
            .await
        }
    }
}

/// Loads `stream`, answers an earlier execution of the command if there is one, otherwise
/// decides and appends with the expected revision, retrying on a concurrent change.
async fn append_decided<S: EventStore, E: DomainEvent>(
    store: &S,
    caller: &Caller,
    request: &AdminRequest,
    stream: &str,
    decide: impl Fn(&[RecordedEvent]) -> Result<Vec<E>, ApiError>,
) -> Result<AdminExecuted, ApiError> {
    let mut attempt = 1;
    loop {
        let recorded = load_stream(store, stream).await?;
        if let Some(earlier) = replay(&recorded, request.command_id) {
            return Ok(earlier);
        }
        let expected = match recorded.last() {
            Some(last) => ExpectedRevision::Exact(last.revision),
            None => ExpectedRevision::NoStream,
        };
        let events = decide(&recorded)?;
        let proposed = propose(caller, request, &events)?;
        let event_types = proposed.iter().map(|e| e.event_type.to_string()).collect();
        match store.append(stream, expected, proposed).await {
            Ok(appended) => {
                return Ok(AdminExecuted {
                    position: appended.position,
                    revision: appended.last_revision().unwrap_or(appended.first_revision),
                    event_types,
                    replayed: false,
                });
            }
            Err(StoreError::WrongExpectedVersion { .. }) if attempt < MAX_ATTEMPTS => {
                tracing::debug!(%stream, attempt, "concurrent change, reloading");
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The earlier result of the command with id `command`, if its first event is in `recorded`.
fn replay(recorded: &[RecordedEvent], command: CommandId) -> Option<AdminExecuted> {
    let start = recorded.iter().position(|e| e.id == event_id(command, 0))?;
    let mine: Vec<&RecordedEvent> = recorded
        .iter()
        .skip(start)
        .enumerate()
        .take_while(|(i, e)| e.id == event_id(command, *i))
        .map(|(_, e)| e)
        .collect();
    let last = mine.last()?;
    Some(AdminExecuted {
        position: last.position,
        revision: last.revision,
        event_types: mine.iter().map(|e| e.event_type().to_owned()).collect(),
        replayed: true,
    })
}

fn propose<E: DomainEvent>(
    caller: &Caller,
    request: &AdminRequest,
    events: &[E],
) -> Result<Vec<ProposedEvent>, ApiError> {
    let command = request.command_id.to_string();
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let encoded = events::encode(event)?;
            let data =
                serde_json::to_vec(&encoded.data).map_err(|e| DomainError::MalformedEvent {
                    event_type: encoded.event_type.clone(),
                    reason: e.to_string(),
                })?;
            let metadata = serde_json::json!({
                "schema_version": encoded.schema_version,
                "command_id": command,
                "correlation_id": command,
                "causation_id": command,
                "actor": caller.actor.as_str(),
                "role": caller.role.as_str(),
                "reason": request.reason,
            });
            Ok(
                ProposedEvent::json(event_id(request.command_id, i), encoded.event_type, data)
                    .with_metadata(metadata.to_string().into_bytes()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_reason_and_a_bad_worker_id_are_both_listed() {
        let err = AdminRequest::try_from(pb::SuspendWorkerRequest {
            command_id: EventId::from_u128(1).to_string(),
            worker_id: "nope".into(),
            reason: "  ".into(),
        })
        .unwrap_err();
        let ApiError::InvalidArgument(v) = err else {
            panic!("{err:?}")
        };
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["worker_id", "reason"]);
    }
}
