//! The reactor: the server's own follow-on commands, derived from the log (DESIGN.md
//! sections 2 and 3).
//!
//! It reads `$all` in order and, for every event that calls for it:
//! - applies the credit rules the event triggers (`credit::assess` on order events: a late
//!   check-in, tools not disinfected, a poor review, a no-show, an upheld complaint ...),
//!   appending `CreditAdjusted` and any sanction (warning, mandatory retraining, suspension,
//!   black list) to the subject's credit stream, under the current published rule set. For a
//!   review it first reads the order's visit record: a tag restating a recorded fact names
//!   that fact, which the credit decision counts once (`FACT_ALREADY_COUNTED`, logged at
//!   debug), and a tag the record contradicts deducts nothing and opens a follow-up talk
//!   (`REVIEW_CONTRADICTS_RECORD`) with a note of what the tag claims and the record shows;
//! - opens the ops follow-up task (三必访四必谈) the event calls for (`followups::follow_up_for`:
//!   every new worker, dispute, complaint and rule violation).
//!
//! Each reaction is an ordinary admin command (`admin::execute`) by the actor
//! [`REACTOR_ACTOR`], whose command id is derived from the triggering event's id
//! ([`CommandId::derived`]). Reacting twice to the same event therefore appends nothing the
//! second time; this is what makes the reactor safe to restart anywhere.
//!
//! Progress is checkpointed in the stream [`CHECKPOINT_STREAM`] (an event carrying the `$all`
//! position of the last event reacted to) every [`CHECKPOINT_EVERY`] events read, its own
//! checkpoints included, so a quiet log gets no checkpoint traffic; the stream's metadata keeps
//! only the last checkpoint visible (`$maxCount` 1). After a restart the reactor resumes after
//! its last checkpoint; the events since then (fewer than [`CHECKPOINT_EVERY`]) are reacted to
//! again, harmlessly.
//!
//! A reaction that fails for a reason that may pass (the store unavailable, repeated
//! concurrent changes) is retried with a growing pause, and the reactor does not move past the
//! event until it succeeds. A reaction the domain refuses (the rule is already applied, the
//! task already open, a rule no longer in the rule set) is final and logged; so is a failure
//! that would repeat forever (a deleted stream, an unreadable rules event), logged as an error
//! naming the event, so that one bad event cannot block every later reaction.
//!
//! After a restart the events since the last checkpoint are assessed again under the rule set
//! current at that time; a rule published in between may thus apply to their evidence.

use std::time::Duration;

use daojia_domain::credit::{self, CreditCommand, VisitRecord};
use daojia_domain::followups::{
    self, FollowUpCommand, FollowUpPolicy, FollowUpReason, TriggerEvent,
};
use daojia_domain::ids::CREDIT_RULES_STREAM;
use daojia_domain::order::OrderEvent;
use daojia_domain::{DomainError, RuleSet, Timestamp};
use daojia_projections::decode::{self, DomainRecord, Skip};
use daojia_store::{
    AllOptions, CurrentRevision, Direction, EventStore, EventSubscription, ExpectedRevision,
    Position, ProposedEvent, RecordedEvent, StoreError, StreamStart, SubscribeFrom,
    SubscriptionItem,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, AdminCommand, AdminRequest};
use crate::auth::{Actor, Caller, Role};
use crate::clock::Clock;
use crate::order_commands::{fold_order, load_stream};
use crate::order_requests::CommandId;
use crate::status::ApiError;

/// The actor recorded in the metadata of the reactor's events.
pub const REACTOR_ACTOR: &str = "daojia-reactor";

/// The stream holding the reactor's checkpoints.
pub const CHECKPOINT_STREAM: &str = "reactorcheckpoint-credit-followups";

/// The event type of a checkpoint.
pub const CHECKPOINT_EVENT: &str = "ReactorCheckpointed";

/// Events read between two checkpoints.
pub const CHECKPOINT_EVERY: u64 = 256;

/// The first and the longest pause between retries of a failed reaction.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// The running reactor; [`Reactor::stop`] ends it.
#[derive(Debug)]
pub struct Reactor {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    reacted: watch::Receiver<Option<Position>>,
}

impl Reactor {
    /// Starts reacting to `store`'s log, deciding with `clock`.
    pub fn spawn<S>(store: S, clock: Clock) -> Self
    where
        S: EventStore + Clone + Send + Sync + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let (reacted_tx, reacted) = watch::channel(None);
        let task = tokio::spawn(run(store, clock, stopped, reacted_tx));
        Reactor {
            stop,
            task,
            reacted,
        }
    }

    /// The position of the last event reacted to (every earlier one has been too).
    pub fn position(&self) -> Option<Position> {
        *self.reacted.borrow()
    }

    /// A receiver of [`Reactor::position`] as it moves.
    pub fn progress(&self) -> watch::Receiver<Option<Position>> {
        self.reacted.clone()
    }

    /// Stops the reactor after the reaction in progress and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the reactor task failed");
        }
    }
}

fn reactor_caller() -> Caller {
    Caller::new(
        Role::Admin,
        Actor::new(REACTOR_ACTOR).unwrap_or_else(|_| unreachable!("a valid actor name")),
    )
}

async fn run<S>(
    store: S,
    clock: Clock,
    mut stopped: watch::Receiver<bool>,
    reacted: watch::Sender<Option<Position>>,
) where
    S: EventStore + Clone + Send + Sync + 'static,
{
    let caller = reactor_caller();
    let mut rules = Rules::default();
    let mut pause = RETRY_FIRST;
    // The last event reacted to.
    let mut done = loop {
        match load_checkpoint(&store).await {
            Ok(p) => break p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the reactor checkpoint, retrying");
                if wait_or_stop(&mut stopped, &mut pause).await {
                    return;
                }
            }
        }
    };
    let _ = reacted.send(done);
    // Without a checkpoint yet, the first one is preceded by the stream's metadata.
    let mut limited = done.is_some();
    tracing::info!(after = ?done.map(|p| p.0), "reactor starting");
    'subscribe: loop {
        let from = done.map_or(SubscribeFrom::Start, SubscribeFrom::After);
        let mut subscription = match store.subscribe_all(from, AllOptions::default()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "reactor cannot subscribe, retrying");
                if wait_or_stop(&mut stopped, &mut pause).await {
                    return;
                }
                continue;
            }
        };
        let mut since_checkpoint = 0u64;
        loop {
            let item = tokio::select! {
                biased;
                _ = stopped.changed() => break 'subscribe,
                item = subscription.next() => item,
            };
            let event = match item {
                Some(Ok(SubscriptionItem::Event(event))) => event,
                Some(Ok(SubscriptionItem::CaughtUp | SubscriptionItem::Checkpoint(_))) => continue,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "reactor subscription failed, resubscribing");
                    if wait_or_stop(&mut stopped, &mut pause).await {
                        break 'subscribe;
                    }
                    continue 'subscribe;
                }
                None => {
                    tracing::info!("the store closed; reactor stopping");
                    break 'subscribe;
                }
            };
            loop {
                match react(&store, &clock, &caller, &mut rules, &event).await {
                    Ok(()) => break,
                    Err(e) if !may_pass(&e) => {
                        tracing::error!(
                            error = %e, position = event.position.0, event_type = event.event_type(),
                            "reaction failed for good; moving on (ops should look at this event)"
                        );
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e, position = event.position.0, event_type = event.event_type(),
                            "reaction failed, retrying"
                        );
                        if wait_or_stop(&mut stopped, &mut pause).await {
                            break 'subscribe;
                        }
                    }
                }
            }
            pause = RETRY_FIRST;
            done = Some(event.position);
            let _ = reacted.send(done);
            since_checkpoint += 1;
            if since_checkpoint >= CHECKPOINT_EVERY {
                if !limited {
                    limit_checkpoints(&store).await;
                    limited = true;
                }
                save_checkpoint(&store, event.position).await;
                since_checkpoint = 0;
            }
        }
    }
    tracing::info!(at = ?done.map(|p| p.0), "reactor stopped");
}

/// Pauses before a retry; `true` if the reactor was asked to stop meanwhile.
async fn wait_or_stop(stopped: &mut watch::Receiver<bool>, pause: &mut Duration) -> bool {
    let wait = *pause;
    *pause = (*pause * 2).min(RETRY_MAX);
    tokio::select! {
        _ = stopped.changed() => true,
        () = tokio::time::sleep(wait) => *stopped.borrow(),
    }
}

/// The position of the last event the last checkpoint covers (none without a checkpoint).
async fn load_checkpoint<S: EventStore>(store: &S) -> Result<Option<Position>, StoreError> {
    let last = match store
        .read_stream(
            CHECKPOINT_STREAM,
            Direction::Backwards,
            StreamStart::Edge,
            1,
        )
        .await
    {
        Ok(events) => events,
        Err(StoreError::StreamNotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(event) = last.first() else {
        return Ok(None);
    };
    let value: serde_json::Value = serde_json::from_slice(event.data_slice())
        .map_err(|e| StoreError::Internal(format!("reactor checkpoint is not JSON: {e}")))?;
    value
        .get("reacted_through")
        .and_then(serde_json::Value::as_u64)
        .map(|p| Some(Position(p)))
        .ok_or_else(|| StoreError::Internal("reactor checkpoint has no position".into()))
}

/// Keeps only the last checkpoint visible (`$maxCount` 1 in the stream's metadata), written
/// once, before the first checkpoint.
async fn limit_checkpoints<S: EventStore>(store: &S) {
    let id = CommandId::derived(0, b"reactor-checkpoint-metadata");
    let event = ProposedEvent::json(
        daojia_store::EventId::from_u128(id.as_u128()),
        "$metadata",
        serde_json::json!({ "$maxCount": 1 })
            .to_string()
            .into_bytes(),
    );
    let stream = format!("$${CHECKPOINT_STREAM}");
    match store
        .append(&stream, ExpectedRevision::NoStream, vec![event])
        .await
    {
        Ok(_) | Err(StoreError::WrongExpectedVersion { .. }) => {}
        Err(e) => tracing::warn!(error = %e, "cannot limit the reactor's checkpoint stream"),
    }
}

/// Records that every event up to and including `done` has been reacted to (a failure is
/// logged: the next checkpoint will do, and reacting again is harmless).
async fn save_checkpoint<S: EventStore>(store: &S, done: Position) {
    let data = serde_json::json!({ "reacted_through": done.0 }).to_string();
    let id = CommandId::derived(u128::from(done.0), b"reactor-checkpoint");
    let event = ProposedEvent::json(
        daojia_store::EventId::from_u128(id.as_u128()),
        CHECKPOINT_EVENT,
        data.into_bytes(),
    );
    if let Err(e) = store
        .append(CHECKPOINT_STREAM, ExpectedRevision::Any, vec![event])
        .await
    {
        tracing::warn!(error = %e, "cannot write the reactor checkpoint");
    }
}

/// The commands `event` calls for, each with its command id and reason.
fn reactions(
    event: &RecordedEvent,
    record: &DomainRecord,
    rules: Option<&RuleSet>,
    visits: &[VisitRecord],
    now: Timestamp,
) -> Vec<AdminRequest> {
    let evidence = decode::event_id(event);
    let seed = evidence.uuid().as_u128();
    let mut out = Vec::new();
    let mut contested = Vec::new();
    if let (DomainRecord::Order(order, order_event), Some(rules)) = (record, rules) {
        contested = credit::contested_tags(rules, order_event, visits);
        for found in credit::assess(rules, *order, evidence, order_event, visits) {
            out.push(AdminRequest {
                command_id: CommandId::derived(
                    seed,
                    format!("credit:{}", found.rule.as_str()).as_bytes(),
                ),
                reason: format!(
                    "rule {} triggered by {} (event {evidence})",
                    found.rule.as_str(),
                    event.event_type()
                ),
                command: AdminCommand::Credit(found.subject, CreditCommand::from(&found)),
            });
        }
    }
    let trigger = match record {
        DomainRecord::Order(order, _) if !contested.is_empty() => {
            Some(TriggerEvent::ContestedReview(*order, &contested))
        }
        DomainRecord::Order(order, e) => Some(TriggerEvent::Order(*order, e)),
        DomainRecord::Credit(e) => Some(TriggerEvent::Credit(e)),
        DomainRecord::Certificate(e) => Some(TriggerEvent::Certificate(e)),
        _ => None,
    };
    let task =
        trigger.and_then(|t| followups::follow_up_for(evidence, t, FollowUpPolicy::default(), now));
    if let Some(task) = task {
        out.push(AdminRequest {
            command_id: CommandId::derived(seed, b"follow-up"),
            reason: format!("follow-up for {} (event {evidence})", event.event_type()),
            command: AdminCommand::FollowUp(task.id, FollowUpCommand::Open(task.clone())),
        });
        if task.reason == FollowUpReason::ReviewContradictsRecord {
            out.push(AdminRequest {
                command_id: CommandId::derived(seed, b"follow-up-note"),
                reason: format!("review tags contradicting the record (event {evidence})"),
                command: AdminCommand::FollowUp(
                    task.id,
                    FollowUpCommand::Note {
                        text: followups::contested_note(&contested),
                    },
                ),
            });
        }
    }
    out
}

/// The current credit rule set, read again only when its stream has moved.
#[derive(Default)]
struct Rules(Option<(CurrentRevision, RuleSet)>);

impl Rules {
    async fn current<S: EventStore>(&mut self, store: &S) -> Result<&RuleSet, ApiError> {
        let revision = store.stream_revision(CREDIT_RULES_STREAM).await?;
        let stale = self.0.as_ref().is_none_or(|(known, _)| *known != revision);
        if stale {
            self.0 = Some((revision, admin::current_rules(store).await?));
        }
        Ok(&self
            .0
            .as_ref()
            .unwrap_or_else(|| unreachable!("just set"))
            .1)
    }
}

/// Carries out every reaction `event` calls for; `Err` only for failures worth retrying.
async fn react<S: EventStore>(
    store: &S,
    clock: &Clock,
    caller: &Caller,
    rules: &mut Rules,
    event: &RecordedEvent,
) -> Result<(), ApiError> {
    let record = match decode::decode(event) {
        Ok(record) => record,
        Err(Skip::NotDomain) => return Ok(()),
        Err(Skip::Malformed(reason)) => {
            tracing::error!(
                position = event.position.0, stream = event.stream(), %reason,
                "cannot read a stored event; no reaction"
            );
            return Ok(());
        }
    };
    // A review is judged against what the visit recorded (check-in, checklist).
    let visits = match &record {
        DomainRecord::Order(order, OrderEvent::OrderReviewed { .. }) => {
            let recorded = load_stream(store, &order.stream_name()).await?;
            fold_order(&recorded)?
                .order
                .as_ref()
                .map(VisitRecord::of_order)
                .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let current = match &record {
        DomainRecord::Order(..) => Some(rules.current(store).await?),
        _ => None,
    };
    // Due times count from when the server reacts, on the same clock as every command.
    let requests = reactions(event, &record, current, &visits, clock.now());
    for request in requests {
        match admin::execute(store, clock, caller, request).await {
            Ok(done) if !done.replayed => tracing::info!(
                position = done.position.0, events = ?done.event_types, cause = event.position.0,
                "reacted"
            ),
            Ok(_) => {}
            Err(ApiError::Domain(refusal)) => log_refusal(event, &refusal),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether a failed reaction may succeed if tried again: the store was unavailable, still
/// opening, or kept changing under the command. Anything else (a deleted stream, data that
/// cannot be read, invalid input) would fail forever and block every later reaction.
fn may_pass(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::StoreOpening
            | ApiError::Store(StoreError::Unavailable(_) | StoreError::WrongExpectedVersion { .. })
    )
}

fn log_refusal(event: &RecordedEvent, refusal: &DomainError) {
    match refusal {
        DomainError::RuleAlreadyApplied { .. }
        | DomainError::FactAlreadyCounted { .. }
        | DomainError::FollowUpAlreadyOpened { .. } => {
            tracing::debug!(position = event.position.0, %refusal, "already reacted");
        }
        _ => tracing::warn!(
            position = event.position.0, event_type = event.event_type(), %refusal,
            "reaction refused by the domain"
        ),
    }
}
