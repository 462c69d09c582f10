//! `daojia.v1.Admin`: the ops console's commands (suspend, reinstate, black-list, adjust
//! credit, record completed training, close follow-ups, resolve complaints and disputes,
//! cancel orders, publish credit rules, issue and revoke certificates, register workers and record their
//! contracts, decide appeals, repair credit, rebuild the read models). Roles `ops` and
//! `admin`; publishing credit rules is `admin` only.
//!
//! Each command is validated in [`crate::admin_requests`] (every bad field is listed, a
//! missing `reason` included), then decided by the domain on the stream it belongs to
//! (`credit::decide` on the subject's credit stream under the current rule set,
//! `followups::decide` on the task's stream, `order::decide` on the order's stream,
//! `credit::publish_rule_set` on `creditrules-global`, `worker::decide` on the worker's
//! profile, `certificates::decide` on the registry named at the worker's registration) and
//! appended with the expected revision, reloading and deciding again on a concurrent change
//! like order commands do. The
//! event ids derive from the command id (`order_commands::event_id`), so a retried command
//! finds its earlier events, answers their result and appends nothing. The events' metadata
//! records the acting ops user, their role and the reason.

use daojia_domain::certificates::{
    self, CertificateCommand, CertificateEvent, CertificateRegistry,
};
use daojia_domain::credit::{self, CreditEvent, CreditState, RuleSetEvent, RuleSetState};
use daojia_domain::events::{self, DomainEvent};
use daojia_domain::followups::{self, FollowUpEvent, FollowUpState};
use daojia_domain::ids::CREDIT_RULES_STREAM;
use daojia_domain::worker::{self, Worker, WorkerEvent, WorkerState};
use daojia_domain::{DomainError, RuleSet, Subject, WorkerId};
use daojia_domain::{OrderCommand, order};
use daojia_store::{
    EventStore, ExpectedRevision, Position, ProposedEvent, RecordedEvent, Revision, StoreError,
};
use std::time::Duration;

use tonic::{Request, Response, Status};

use crate::admin_requests::Fields;
pub use crate::admin_requests::{AdminCommand, AdminRequest, CertificateAction};
use crate::auth::{Caller, Role};
use crate::clock::Clock;
use crate::interceptor::caller;
use crate::limits::Limits;
use crate::order_commands::{MAX_ATTEMPTS, decode, event_id, fold_order, load_stream};
use crate::order_requests::CommandId;
use crate::pb;
use crate::progress::Progress;
use crate::queries::{known_subject, unknown_subject};
use crate::read_models::ReadModelsSlot;
use crate::settle;
use crate::status::ApiError;
use crate::store_slot::StoreSlot;

/// The `daojia.v1.Admin` service.
#[derive(Clone, Debug)]
pub struct AdminService {
    store: StoreSlot,
    reads: ReadModelsSlot,
    clock: Clock,
    progress: Progress,
    limits: Limits,
}

impl AdminService {
    /// A service over `store`, deciding with `clock` and bounding figures by `limits`; `reads`
    /// is the projector that RebuildProjection rebuilds (and that knows companies and
    /// customers), `progress` where WaitSettled watches the background tasks.
    pub fn new(
        store: StoreSlot,
        reads: ReadModelsSlot,
        clock: Clock,
        progress: Progress,
        limits: Limits,
    ) -> Self {
        AdminService {
            store,
            reads,
            clock,
            progress,
            limits,
        }
    }

    /// Checks that the caller has `role` (or is `admin`), validates, executes.
    async fn command<R>(
        &self,
        request: Request<R>,
        role: Role,
        action: &'static str,
    ) -> Result<Response<pb::AdminReply>, Status>
    where
        AdminRequest: TryFrom<R, Error = ApiError>,
    {
        let caller = caller(&request)?.clone();
        caller.require(role, action)?;
        let command = AdminRequest::try_from(request.into_inner())?;
        let store = self.store.get()?;
        // Ops commands name their subject by hand, so it is checked first; the reactor's
        // reactions and the customer's appeals (which also run through `execute`) name
        // subjects taken from stored events.
        match &command.command {
            AdminCommand::Credit(subject, _) => {
                check_subject(store, &self.reads, *subject).await?;
            }
            AdminCommand::Order(order, OrderCommand::ResolveDispute { outcome, .. }) => {
                let state = fold_order(&load_stream(store, &order.stream_name()).await?)?;
                let Some(posted) = state.order else {
                    return Err(ApiError::not_found("order", order, "ORDER_NOT_FOUND").into());
                };
                self.limits.check_settlement(
                    outcome.refund,
                    outcome.compensation,
                    posted.paid(),
                )?;
            }
            _ => {}
        }
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
        self.command(request, Role::Ops, "suspend workers").await
    }

    async fn reinstate_worker(
        &self,
        request: Request<pb::ReinstateWorkerRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "reinstate workers").await
    }

    async fn black_list(
        &self,
        request: Request<pb::BlackListRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "black-list").await
    }

    async fn adjust_credit(
        &self,
        request: Request<pb::AdjustCreditRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "adjust credit").await
    }

    async fn record_training_completed(
        &self,
        request: Request<pb::RecordTrainingCompletedRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "record training").await
    }

    async fn close_follow_up(
        &self,
        request: Request<pb::CloseFollowUpRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "close follow-ups").await
    }

    async fn resolve_complaint(
        &self,
        request: Request<pb::ResolveComplaintRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "resolve complaints").await
    }

    async fn resolve_dispute(
        &self,
        request: Request<pb::ResolveDisputeRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "resolve disputes").await
    }

    async fn cancel_order(
        &self,
        request: Request<pb::AdminCancelOrderRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "cancel orders").await
    }

    async fn publish_credit_rules(
        &self,
        request: Request<pb::PublishCreditRulesRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Admin, "publish credit rules")
            .await
    }

    async fn issue_certificate(
        &self,
        request: Request<pb::IssueCertificateRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "issue certificates").await
    }

    async fn revoke_certificate(
        &self,
        request: Request<pb::RevokeCertificateRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "revoke certificates")
            .await
    }

    async fn register_worker(
        &self,
        request: Request<pb::RegisterWorkerRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "register workers").await
    }

    async fn sign_contract(
        &self,
        request: Request<pb::SignContractRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "record contracts").await
    }

    async fn decide_appeal(
        &self,
        request: Request<pb::DecideAppealRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "decide appeals").await
    }

    async fn repair_credit(
        &self,
        request: Request<pb::RepairCreditRequest>,
    ) -> Result<Response<pb::AdminReply>, Status> {
        self.command(request, Role::Ops, "repair credit").await
    }

    async fn set_clock(
        &self,
        request: Request<pb::SetClockRequest>,
    ) -> Result<Response<pb::ClockReply>, Status> {
        let caller = caller(&request)?.clone();
        caller.require(Role::Admin, "move the clock")?;
        let reply = settle::set_clock(&self.clock, request.get_ref().now.as_ref())?;
        tracing::info!(actor = %caller.actor, now = ?reply.now, "audit: clock moved");
        Ok(Response::new(reply))
    }

    async fn wait_settled(
        &self,
        request: Request<pb::WaitSettledRequest>,
    ) -> Result<Response<pb::SettledReply>, Status> {
        caller(&request)?.require(Role::Ops, "wait for the server to settle")?;
        let store = self.store.get()?;
        let timeout_ms = request.get_ref().timeout_ms;
        let reply = settle::wait_settled(store, &self.clock, &self.progress, timeout_ms).await?;
        Ok(Response::new(reply))
    }

    async fn rebuild_projection(
        &self,
        request: Request<pb::RebuildProjectionRequest>,
    ) -> Result<Response<pb::RebuildProjectionReply>, Status> {
        let caller = caller(&request)?.clone();
        caller.require(Role::Ops, "rebuild read models")?;
        let mut f = Fields::default();
        let reason = f.text("reason", &request.get_ref().reason);
        f.into_result()?;
        let projector = self.reads.get()?;
        tracing::info!(
            actor = %caller.actor,
            role = %caller.role,
            reason = reason.as_deref().unwrap_or_default(),
            projection = projector.name(),
            "audit: rebuilding the read models"
        );
        let position = projector.rebuild().await.map_err(ApiError::from)?;
        tracing::info!(
            projection = projector.name(),
            position = position.0,
            "read models rebuilt"
        );
        Ok(Response::new(pb::RebuildProjectionReply {
            projection: projector.name().to_owned(),
            position: position.0,
        }))
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

/// The rule-set state of `recorded` (events of `creditrules-global`): the latest published
/// rule set, or the built-in proposal (version 1) while none has been published, so that a
/// first publication must be version 2 or later like every later one must be newer.
fn rule_set_state(recorded: &[RecordedEvent]) -> Result<RuleSetState, ApiError> {
    let mut state = RuleSetState {
        current: Some(RuleSet::proposal()),
    };
    for event in recorded {
        state = credit::evolve_rule_set(state, &decode::<RuleSetEvent>(event)?);
    }
    Ok(state)
}

/// The current credit rule set: the latest published one, or the built-in proposal.
pub async fn current_rules<S: EventStore>(store: &S) -> Result<RuleSet, ApiError> {
    let state = rule_set_state(&load_stream(store, CREDIT_RULES_STREAM).await?)?;
    Ok(state.current.unwrap_or_else(RuleSet::proposal))
}

/// The registered `worker`, from their profile stream; NOT_FOUND when unregistered.
async fn registered_worker<S: EventStore>(store: &S, worker: WorkerId) -> Result<Worker, ApiError> {
    let mut state = WorkerState::default();
    for event in load_stream(store, &worker::profile_stream(worker)).await? {
        state = worker::evolve(state, &decode::<WorkerEvent>(&event)?);
    }
    state
        .worker
        .ok_or_else(|| ApiError::worker_not_registered(worker))
}

/// The longest a command on a company or customer waits for the read models to apply every
/// event committed before it (see [`check_subject`]).
const SUBJECT_WAIT: Duration = Duration::from_secs(5);

/// NOT_FOUND (`kind:id`) unless `subject` exists, checked before anything is appended.
///
/// Where "exists" is decided, and why:
///
/// - a worker exists from their registration (`WorkerRegistered` on `workerprofile-<uuid>`),
///   read from the event store itself: strongly consistent, one short stream read;
/// - a company or a customer has no registration of its own: a company exists once a worker
///   was registered with it, a customer once they posted an order, and either once its credit
///   stream has events. The credit stream is read from the store (it is loaded to decide
///   anyway); the rest from the read models after they have applied every event committed
///   before this command (the store's committed end now), bounded by [`SUBJECT_WAIT`]. So a
///   registration or an order whose reply the caller has seen is always found, and ops never
///   get NOT_FOUND for something that exists.
async fn check_subject<S: EventStore>(
    store: &S,
    reads: &ReadModelsSlot,
    subject: Subject,
) -> Result<(), ApiError> {
    match subject {
        Subject::Worker(worker) => registered_worker(store, worker).await.map(|_| ()),
        Subject::Company(_) | Subject::Customer(_) => {
            if !load_stream(store, &subject.stream_name()).await?.is_empty() {
                return Ok(());
            }
            let projector = reads.get()?;
            let last = projector.lag().await?.head;
            projector.wait_for(last, SUBJECT_WAIT).await?;
            if projector.read(|models| known_subject(models, subject)) {
                Ok(())
            } else {
                Err(unknown_subject(subject))
            }
        }
    }
}

/// A domain refusal of `command` with the thing it names as missing given by `kind:id`.
fn name_missing(command: &AdminCommand, e: ApiError) -> ApiError {
    match (command, e) {
        (AdminCommand::Order(order, _), ApiError::Domain(e)) => ApiError::on_order(*order, e),
        (AdminCommand::FollowUp(id, _), ApiError::Domain(DomainError::FollowUpNotOpened)) => {
            ApiError::not_found("followup", id, "FOLLOW_UP_NOT_FOUND")
        }
        (AdminCommand::Worker(id, _), ApiError::Domain(DomainError::WorkerNotRegistered)) => {
            ApiError::worker_not_registered(*id)
        }
        (_, e) => e,
    }
}

/// Executes `request` for `caller`: the new result, or the first result of a retried command.
pub async fn execute<S: EventStore>(
    store: &S,
    clock: &Clock,
    caller: &Caller,
    request: AdminRequest,
) -> Result<AdminExecuted, ApiError> {
    let command = request.command.clone();
    execute_command(store, clock, caller, request)
        .await
        .map_err(|e| name_missing(&command, e))
}

async fn execute_command<S: EventStore>(
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
        AdminCommand::Order(id, command) => {
            append_decided(store, caller, &request, &id.stream_name(), |recorded| {
                let state = fold_order(recorded)?;
                Ok(order::decide(&state, command.clone(), clock.now())?)
            })
            .await
        }
        AdminCommand::PublishRules(rules) => {
            append_decided(store, caller, &request, CREDIT_RULES_STREAM, |recorded| {
                let state = rule_set_state(recorded)?;
                Ok(credit::publish_rule_set(
                    &state,
                    (*rules).clone(),
                    clock.now(),
                )?)
            })
            .await
        }
        AdminCommand::Worker(id, command) => {
            let stream = worker::profile_stream(id);
            append_decided(store, caller, &request, &stream, |recorded| {
                let mut state = WorkerState::default();
                for event in recorded {
                    state = worker::evolve(state, &decode::<WorkerEvent>(event)?);
                }
                Ok(worker::decide(&state, command.clone(), clock.now())?)
            })
            .await
        }
        AdminCommand::Certificate(worker_id, action) => {
            let holder = registered_worker(store, worker_id).await?;
            let stream = holder.registry.stream_name();
            append_decided(store, caller, &request, &stream, |recorded| {
                let mut registry = CertificateRegistry::default();
                for event in recorded {
                    registry = certificates::evolve(registry, &decode::<CertificateEvent>(event)?);
                }
                let command = certificate_command(&holder, &registry, action.clone())?;
                Ok(certificates::decide(&registry, command, clock.now())?)
            })
            .await
        }
    }
}

/// The registry command for `action` on `holder`'s certificates: an issue names the holder's
/// identity number and employing company; a revocation must name one of the holder's own
/// certificates (NOT_FOUND otherwise, like an unknown one).
fn certificate_command(
    holder: &Worker,
    registry: &CertificateRegistry,
    action: CertificateAction,
) -> Result<CertificateCommand, ApiError> {
    match action {
        CertificateAction::Issue {
            certificate_id,
            kind,
            conditions,
            valid_until,
        } => Ok(CertificateCommand::Issue {
            certificate_id,
            worker: holder.id,
            identity: holder.identity.clone(),
            company: holder.company,
            kind,
            conditions,
            valid_until,
        }),
        CertificateAction::Revoke {
            certificate_id,
            reason,
        } => {
            let held = registry
                .certificates
                .iter()
                .any(|c| c.id == certificate_id && c.worker == holder.id);
            if !held {
                return Err(ApiError::not_found(
                    "certificate",
                    format!("{certificate_id} of worker:{}", holder.id),
                    "UNKNOWN_CERTIFICATE",
                ));
            }
            Ok(CertificateCommand::Revoke {
                certificate_id,
                reason,
            })
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
    use daojia_domain::certificates::{Certificate, CertificateKind, IdentityNumber};
    use daojia_domain::order::GeoPoint;
    use daojia_domain::{CertificateId, CompanyId, RegistryId, Timestamp};

    fn worker(id: u128) -> Worker {
        Worker {
            id: WorkerId::from_u128(id),
            company: CompanyId::from_u128(0xCC),
            identity: IdentityNumber::new("110105198001010016").unwrap(),
            skills: Vec::new(),
            home: GeoPoint::new(27.95, 116.36).unwrap(),
            registry: RegistryId::from_u128(0x4E6),
            contracts: Vec::new(),
        }
    }

    #[test]
    fn the_built_in_rule_set_is_the_version_to_beat_until_one_is_published() {
        let state = rule_set_state(&[]).unwrap();
        assert_eq!(state.current.as_ref().map(|r| r.version), Some(1));
        let refused = credit::publish_rule_set(&state, RuleSet::proposal(), Timestamp(0));
        assert!(
            matches!(
                refused,
                Err(DomainError::RuleSetVersionNotNewer {
                    current: 1,
                    proposed: 1
                })
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn an_issue_names_the_holders_identity_and_company() {
        let holder = worker(0xA1);
        let command = certificate_command(
            &holder,
            &CertificateRegistry::default(),
            CertificateAction::Issue {
                certificate_id: CertificateId::from_u128(1),
                kind: CertificateKind::HomeVisit,
                conditions: certificates::IssueConditions {
                    identity_verified: true,
                    health_check_at: Timestamp(0),
                    training_completed: true,
                    exam_passed: true,
                },
                valid_until: Timestamp(1),
            },
        )
        .unwrap();
        let CertificateCommand::Issue {
            worker,
            identity,
            company,
            ..
        } = command
        else {
            panic!("{command:?}")
        };
        assert_eq!(worker, holder.id);
        assert_eq!(identity, holder.identity);
        assert_eq!(company, holder.company);
    }

    #[test]
    fn a_revocation_must_name_one_of_the_holders_certificates() {
        let other = worker(0xA2);
        let registry = CertificateRegistry {
            certificates: vec![Certificate {
                id: CertificateId::from_u128(7),
                worker: other.id,
                identity: other.identity.clone(),
                company: other.company,
                kind: CertificateKind::HomeVisit,
                valid_until: Timestamp(1),
                suspended: false,
                revoked: false,
            }],
        };
        let revoke = CertificateAction::Revoke {
            certificate_id: CertificateId::from_u128(7),
            reason: "fraud".into(),
        };
        let err = certificate_command(&worker(0xA1), &registry, revoke.clone()).unwrap_err();
        assert!(
            matches!(
                err,
                ApiError::NotFound {
                    reason: "UNKNOWN_CERTIFICATE",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(certificate_command(&other, &registry, revoke).is_ok());
    }
}
