//! The write side of orders (DESIGN.md section 3): load the aggregate by folding its stream,
//! `decide(state, command, now)` with the server's clock, append the events with the expected
//! revision, and on a concurrent change reload and decide again, a bounded number of times.
//!
//! Idempotency: the ids of a command's events are derived from its command id (the first
//! event's id *is* the command id, the next ones follow deterministically). Before deciding,
//! the loaded stream is searched for the first of those ids; if a previous attempt of the same
//! command was committed, its result (position, revision, the order as of its last event) is
//! returned and nothing is appended. A retry that races the original append sends the same ids
//! with the same expected revision, which the store answers with the original result; if it
//! reports a conflict instead, the reload finds the ids.
//!
//! Every event carries JSON metadata: `schema_version` (read back by decoders and upcasters),
//! `command_id`, `correlation_id`, `causation_id` (both the command id: a client command starts
//! its own chain), `actor` and `role` of the caller, and with end-user binding its `end_user`
//! (`customer <id>` or `worker <id>`).

use daojia_domain::certificates::{self, CertificateEvent, CertificateRegistry};
use daojia_domain::credit::{self, CreditEvent, CreditState, Subject};
use daojia_domain::events::{self, EncodedEvent};
use daojia_domain::order::{self, OrderState, WorkerCredentials};
use daojia_domain::worker::{self, WorkerEvent, WorkerState};
use daojia_domain::{CustomerId, DomainError, OrderEvent, Standing, Timestamp, WorkerId};
use daojia_store::{
    Direction, EventId, EventStore, ExpectedRevision, Position, ProposedEvent, RecordedEvent,
    Revision, StoreError, StreamStart,
};

use crate::auth::Caller;
use crate::clock::Clock;
use crate::end_user;
use crate::order_requests::{CommandId, OrderRequest};
use crate::status::ApiError;

/// How many times a command is decided and appended before a conflict is reported (ABORTED).
pub const MAX_ATTEMPTS: u32 = 5;

/// Events read per page when loading a stream.
const READ_PAGE: usize = 512;

/// Added to the command id once per event index: an odd 128-bit constant (2^128 / golden
/// ratio), so consecutive commands' id sequences do not run into each other.
const EVENT_ID_STEP: u128 = 0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835;

/// What a command did (or, for a retry, what its first execution did).
#[derive(Debug)]
pub struct Executed {
    /// Position of the command's last event.
    pub position: Position,
    /// The stream's revision after the command's last event.
    pub revision: Revision,
    /// Types of the command's events, in order.
    pub event_types: Vec<String>,
    /// The order as of the command's last event.
    pub state: OrderState,
    /// The command had been executed before with the same command id.
    pub replayed: bool,
}

/// The id of the `index`-th event of command `command`.
pub fn event_id(command: CommandId, index: usize) -> EventId {
    let index = u128::try_from(index).unwrap_or(u128::MAX);
    EventId::from_u128(
        command
            .as_u128()
            .wrapping_add(index.wrapping_mul(EVENT_ID_STEP)),
    )
}

/// Every visible event of `stream`, oldest first; none if the stream does not exist.
pub async fn load_stream<S: EventStore>(
    store: &S,
    stream: &str,
) -> Result<Vec<RecordedEvent>, ApiError> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    loop {
        let start = match events.last() {
            Some(last) => StreamStart::Revision(Revision(last.revision.0 + 1)),
            None => StreamStart::Edge,
        };
        let page = match store
            .read_stream(stream, Direction::Forwards, start, READ_PAGE)
            .await
        {
            Ok(page) => page,
            Err(StoreError::StreamNotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let full = page.len() == READ_PAGE;
        events.extend(page);
        if !full {
            return Ok(events);
        }
    }
}

/// Decodes a stored event of a domain stream, upcasting by the metadata's `schema_version`
/// (taken as current when absent).
pub fn decode<E: events::DomainEvent>(recorded: &RecordedEvent) -> Result<E, ApiError> {
    let malformed = |reason: String| DomainError::MalformedEvent {
        event_type: recorded.event_type().to_owned(),
        reason,
    };
    let data = serde_json::from_slice(recorded.data_slice())
        .map_err(|e| malformed(format!("data is not JSON: {e}")))?;
    let schema_version = serde_json::from_slice::<serde_json::Value>(recorded.metadata_slice())
        .ok()
        .and_then(|m| m.get("schema_version").and_then(serde_json::Value::as_u64))
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or_else(|| events::current_schema_version(recorded.event_type()));
    Ok(events::decode(&EncodedEvent {
        event_type: recorded.event_type().to_owned(),
        schema_version,
        data,
    })?)
}

/// Folds order events into the state.
pub fn fold_order<'a>(
    recorded: impl IntoIterator<Item = &'a RecordedEvent>,
) -> Result<OrderState, ApiError> {
    let mut state = OrderState::default();
    for event in recorded {
        state = order::evolve(state, &decode::<OrderEvent>(event)?);
    }
    Ok(state)
}

/// A customer's credit standing, from their credit stream (good when it has no events).
pub async fn customer_standing<S: EventStore>(
    store: &S,
    customer: CustomerId,
) -> Result<Standing, ApiError> {
    let subject = Subject::Customer(customer);
    let mut state = CreditState::new(subject);
    for event in load_stream(store, &subject.stream_name()).await? {
        state = credit::evolve(state, &decode::<CreditEvent>(&event)?);
    }
    Ok(state.standing)
}

/// What an order decision needs to know about `worker` at `now` (DESIGN.md section 2,
/// eligibility), from three streams: the profile `workerprofile-<uuid>` (registration and
/// contracts), the credit stream `worker-<uuid>` (standing), and the certificate registry
/// named at registration, `certificates-<uuid>`. An unregistered worker is NOT_FOUND.
pub async fn worker_credentials<S: EventStore>(
    store: &S,
    worker: WorkerId,
    now: Timestamp,
) -> Result<WorkerCredentials, ApiError> {
    let (profile, registry) = worker_profile_and_registry(store, worker).await?;
    let subject = Subject::Worker(worker);
    let mut credit = CreditState::new(subject);
    for event in load_stream(store, &subject.stream_name()).await? {
        credit = credit::evolve(credit, &decode::<CreditEvent>(&event)?);
    }
    Ok(worker::credentials(&profile, &credit, &registry, now)?)
}

/// `worker`'s profile and the certificate registry named at their registration; an
/// unregistered worker is NOT_FOUND (`WORKER_NOT_REGISTERED`).
pub async fn worker_profile_and_registry<S: EventStore>(
    store: &S,
    worker: WorkerId,
) -> Result<(WorkerState, CertificateRegistry), ApiError> {
    let mut profile = WorkerState::default();
    for event in load_stream(store, &worker::profile_stream(worker)).await? {
        profile = worker::evolve(profile, &decode::<WorkerEvent>(&event)?);
    }
    let Some(registry_id) = profile.worker.as_ref().map(|w| w.registry) else {
        return Err(ApiError::worker_not_registered(worker));
    };
    let mut registry = CertificateRegistry::default();
    for event in load_stream(store, &registry_id.stream_name()).await? {
        registry = certificates::evolve(registry, &decode::<CertificateEvent>(&event)?);
    }
    Ok((profile, registry))
}

fn metadata(caller: &Caller, command: CommandId, schema_version: u32) -> Vec<u8> {
    let command = command.to_string();
    let mut metadata = serde_json::json!({
        "schema_version": schema_version,
        "command_id": command,
        "correlation_id": command,
        "causation_id": command,
        "actor": caller.actor.as_str(),
        "role": caller.role.as_str(),
    });
    // With end-user binding, whom the call was verified to act for (`customer <id>`).
    if let (Some(user), Some(fields)) = (caller.end_user, metadata.as_object_mut()) {
        fields.insert("end_user".into(), user.to_string().into());
    }
    metadata.to_string().into_bytes()
}

fn propose(
    caller: &Caller,
    command: CommandId,
    events: &[OrderEvent],
) -> Result<Vec<ProposedEvent>, ApiError> {
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
            Ok(
                ProposedEvent::json(event_id(command, i), encoded.event_type, data)
                    .with_metadata(metadata(caller, command, encoded.schema_version)),
            )
        })
        .collect()
}

/// The earlier result of `command`, if its first event is in `recorded`.
fn replay(recorded: &[RecordedEvent], command: CommandId) -> Result<Option<Executed>, ApiError> {
    let first = event_id(command, 0);
    let Some(start) = recorded.iter().position(|e| e.id == first) else {
        return Ok(None);
    };
    let mine = recorded
        .iter()
        .skip(start)
        .enumerate()
        .take_while(|(i, e)| e.id == event_id(command, *i))
        .count();
    let end = start + mine;
    let Some(last) = recorded.get(end - 1) else {
        return Ok(None);
    };
    Ok(Some(Executed {
        position: last.position,
        revision: last.revision,
        event_types: recorded
            .get(start..end)
            .unwrap_or_default()
            .iter()
            .map(|e| e.event_type().to_owned())
            .collect(),
        state: fold_order(recorded.get(..end).unwrap_or_default())?,
        replayed: true,
    }))
}

/// Executes `request` for `caller`: the new result, or the first result of a retried command.
///
/// A caller bound to an end user (`--end-user-keys`) is refused (PERMISSION_DENIED) a command
/// naming another customer or worker, or on an order that is not theirs
/// ([`end_user::check_command`]).
pub async fn execute<S: EventStore>(
    store: &S,
    clock: &Clock,
    caller: &Caller,
    request: OrderRequest,
) -> Result<Executed, ApiError> {
    let stream = request.order_id.stream_name();
    // A call bound to an end user names only that user (checked before anything is read)...
    end_user::check_command(caller.end_user, &request.command, None)?;
    let mut attempt = 1;
    loop {
        let recorded = load_stream(store, &stream).await?;
        let state = fold_order(&recorded)?;
        // ... and touches only their orders, judged on the state the command is decided on
        // (before a retry is answered, so a retry does not show another user's order).
        end_user::check_command(caller.end_user, &request.command, state.order.as_ref())?;
        if let Some(earlier) = replay(&recorded, request.command_id)? {
            return Ok(earlier);
        }
        let (expected, current) = match recorded.last() {
            Some(last) => (ExpectedRevision::Exact(last.revision), Some(last)),
            None => (ExpectedRevision::NoStream, None),
        };
        let events = order::decide(&state, request.command.clone(), clock.now())
            .map_err(|e| ApiError::on_order(request.order_id, e))?;
        if events.is_empty() {
            // Nothing to append: answer the current state.
            let position = match current {
                Some(last) => last.position,
                None => store.head().await?,
            };
            return Ok(Executed {
                position,
                revision: current.map_or(Revision(0), |e| e.revision),
                event_types: Vec::new(),
                state,
                replayed: false,
            });
        }
        let proposed = propose(caller, request.command_id, &events)?;
        match store.append(&stream, expected, proposed).await {
            Ok(appended) => {
                return Ok(Executed {
                    position: appended.position,
                    revision: appended.last_revision().unwrap_or(appended.first_revision),
                    event_types: events.iter().map(|e| e.event_type().to_owned()).collect(),
                    state: events.iter().fold(state, order::evolve),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    use daojia_domain::order::{DispatchMode, GeoPoint, PostOrder, ServiceWindow, SlotIndex};
    use daojia_domain::{Minutes, OrderCommand, OrderId, OrderTerms, Timestamp, WorkerId};
    use daojia_store::{
        AllOptions, AllSlice, AllStart, Appended, CurrentRevision, Deleted, EmbeddedStore, Filter,
        StreamMetadata, SubscribeFrom,
    };

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    /// An embedded store where another writer appends to the same stream just before each of
    /// the first `races` appends: every one of them meets a concurrent change.
    struct Racing {
        inner: EmbeddedStore,
        races: AtomicU32,
    }

    impl EventStore for Racing {
        type Subscription = <EmbeddedStore as EventStore>::Subscription;

        async fn append(
            &self,
            stream: &str,
            expected: ExpectedRevision,
            events: Vec<ProposedEvent>,
        ) -> daojia_store::Result<Appended> {
            let left = self.races.load(Ordering::SeqCst);
            if left > 0 {
                self.races.store(left - 1, Ordering::SeqCst);
                let rival = OrderEvent::OrderOffered {
                    slot: SlotIndex(0),
                    worker: WorkerId::from_u128(u128::from(left)),
                    offered_at: NOW,
                    expires_at: NOW.plus(Minutes(5)),
                };
                let encoded = events::encode(&rival).unwrap();
                let data = serde_json::to_vec(&encoded.data).unwrap();
                let id = EventId::from_u128(0xFFFF_0000 + u128::from(left));
                self.inner
                    .append(
                        stream,
                        ExpectedRevision::Any,
                        vec![ProposedEvent::json(id, encoded.event_type, data)],
                    )
                    .await?;
            }
            self.inner.append(stream, expected, events).await
        }

        async fn delete(&self, s: &str, e: ExpectedRevision) -> daojia_store::Result<Deleted> {
            self.inner.delete(s, e).await
        }

        async fn tombstone(&self, s: &str, e: ExpectedRevision) -> daojia_store::Result<Deleted> {
            self.inner.tombstone(s, e).await
        }

        async fn read_stream(
            &self,
            s: &str,
            d: Direction,
            start: StreamStart,
            n: usize,
        ) -> daojia_store::Result<Vec<RecordedEvent>> {
            self.inner.read_stream(s, d, start, n).await
        }

        async fn read_all(
            &self,
            d: Direction,
            start: AllStart,
            n: usize,
            f: Option<Filter>,
        ) -> daojia_store::Result<AllSlice> {
            self.inner.read_all(d, start, n, f).await
        }

        async fn stream_revision(&self, s: &str) -> daojia_store::Result<CurrentRevision> {
            self.inner.stream_revision(s).await
        }

        async fn stream_metadata(&self, s: &str) -> daojia_store::Result<Option<StreamMetadata>> {
            self.inner.stream_metadata(s).await
        }

        async fn head(&self) -> daojia_store::Result<Position> {
            self.inner.head().await
        }

        async fn subscribe_all(
            &self,
            from: SubscribeFrom<Position>,
            o: AllOptions,
        ) -> daojia_store::Result<Self::Subscription> {
            self.inner.subscribe_all(from, o).await
        }

        async fn subscribe_stream(
            &self,
            s: &str,
            from: SubscribeFrom<Revision>,
        ) -> daojia_store::Result<Self::Subscription> {
            self.inner.subscribe_stream(s, from).await
        }
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("daojia-server-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn request(command: u128, order: OrderId, cmd: OrderCommand) -> OrderRequest {
        OrderRequest {
            command_id: CommandId::from_u128_for_tests(command),
            order_id: order,
            command: cmd,
        }
    }

    fn post(order: OrderId) -> OrderCommand {
        OrderCommand::Post(Box::new(PostOrder {
            order_id: order,
            customer: CustomerId::from_u128(3),
            customer_standing: Standing::Good,
            service: "C01".parse().unwrap(),
            quantity: 3,
            workers: 1,
            window: ServiceWindow {
                start: NOW.plus(Minutes::days(1)),
                end: NOW.plus(Minutes::days(1)).plus(Minutes(180)),
            },
            location: GeoPoint::new(27.95, 116.36).unwrap(),
            dispatch: DispatchMode::Platform,
            terms: OrderTerms::default(),
        }))
    }

    fn cancel() -> OrderCommand {
        OrderCommand::Cancel {
            by: order::Party::Customer(CustomerId::from_u128(3)),
            reason: "plans changed".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_conflict_reloads_and_decides_again_until_the_attempts_run_out() {
        let dir = temp_dir("conflict");
        let store = Racing {
            inner: EmbeddedStore::open(&dir).unwrap(),
            races: AtomicU32::new(0),
        };
        let (clock, caller) = (Clock::manual(NOW), Caller::insecure());
        let order = OrderId::from_u128(10);
        execute(&store, &clock, &caller, request(1, order, post(order)))
            .await
            .unwrap();

        // Two rivals: the third attempt lands after them, at revision 3.
        store.races.store(2, Ordering::SeqCst);
        let done = execute(&store, &clock, &caller, request(2, order, cancel()))
            .await
            .unwrap();
        assert_eq!(done.revision, Revision(3));
        assert_eq!(done.event_types, ["OrderCancelled"]);

        // A rival before every attempt: ABORTED-mapped conflict after MAX_ATTEMPTS.
        let other = OrderId::from_u128(11);
        execute(&store, &clock, &caller, request(3, other, post(other)))
            .await
            .unwrap();
        store.races.store(MAX_ATTEMPTS, Ordering::SeqCst);
        let err = execute(&store, &clock, &caller, request(4, other, cancel()))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ApiError::Store(StoreError::WrongExpectedVersion { .. })
            ),
            "{err:?}"
        );
        let recorded = load_stream(&store, &other.stream_name()).await.unwrap();
        assert_eq!(recorded.len(), 1 + MAX_ATTEMPTS as usize, "only the rivals");
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_first_event_id_is_the_command_id_and_the_rest_are_distinct() {
        let command = CommandId::from_u128_for_tests(42);
        assert_eq!(event_id(command, 0), EventId::from_u128(42));
        let ids: std::collections::HashSet<_> = (0..100).map(|i| event_id(command, i)).collect();
        assert_eq!(ids.len(), 100);
    }
}
