//! The minimal dispatcher: it makes offers so that the order lifecycle works end to end
//! (the live-dispatch work replaces it with the matching engine).
//!
//! It follows `$all` and keeps, in memory, the open and in-service orders (folded with the
//! domain's `order::evolve`) and the registered workers' home and declared skills. Whenever an
//! order changes, whenever a manual clock moves, and on every tick (offers lapse and grab pools
//! close with time), it goes over the orders that need work:
//! - a pending offer past its expiry is recorded as lapsed (`ExpireOffer`);
//! - until the order's window starts, an open slot without enough pending offers (one; several
//!   for emergency calls) is offered to the nearest registered worker within
//!   [`DispatchConfig::radius_m`] of their live location (or home) who declared every skill the
//!   order requires, was not passed over on this order, and holds no booking or pending offer
//!   overlapping the order's window. Grab-pool orders are left to the pool until its deadline;
//! - a preferred order's favourite goes first; a favourite who is unregistered, booked at that
//!   time or refused is passed over (`SkipPreferred`) so that others may be offered it;
//! - an order whose window has ended with nobody on it leaves the board.
//!
//! Offers go through the ordinary order command path (`order_commands::execute`) with the
//! worker's credentials loaded from the store, so the domain has the last word: a worker in
//! retraining, suspended, black-listed, without a valid certificate or contract is refused and
//! the next candidate is tried. Refused workers are remembered and left out until their credit,
//! profile or certificates change, or for [`INELIGIBLE_FOR`], so a crowd of ineligible
//! neighbours cannot keep an order from eligible workers further away. Command ids are derived
//! from the order, slot and worker, so an offer made just before a crash is found, not repeated,
//! after a restart.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use daojia_domain::catalog::SkillKind;
use daojia_domain::order::{
    self, DispatchMode, GeoPoint, Order, OrderPhase, OrderState, ServiceWindow, SlotIndex,
};
use daojia_domain::worker::{PROFILE_CATEGORY, WorkerEvent};
use daojia_domain::{DomainError, Minutes, OrderCommand, OrderId, RegistryId, Timestamp, WorkerId};
use daojia_projections::decode::{self, DomainRecord};
use daojia_store::{
    AllOptions, EventStore, EventSubscription, RecordedEvent, Revision, SubscribeFrom,
    SubscriptionItem,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{Actor, Caller, Role};
use crate::clock::Clock;
use crate::locations::LiveLocations;
use crate::order_commands::{self, Executed};
use crate::order_requests::{CommandId, OrderRequest};
use crate::progress::DispatchProgress;
use crate::status::ApiError;

/// The actor recorded in the metadata of the dispatcher's events.
pub const DISPATCHER_ACTOR: &str = "daojia-dispatcher";

/// How the dispatcher behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DispatchConfig {
    /// How often every open order is looked at again.
    pub tick: Duration,
    /// Farthest a worker's home may be from the order, in metres.
    pub radius_m: f64,
    /// Most candidates tried for one slot in one pass.
    pub max_tries: usize,
}

impl Default for DispatchConfig {
    /// A tick of one second, 30 km, 16 tries.
    fn default() -> Self {
        DispatchConfig {
            tick: Duration::from_secs(1),
            radius_m: 30_000.0,
            max_tries: 16,
        }
    }
}

/// The running dispatcher; [`Dispatcher::stop`] ends it.
#[derive(Debug)]
pub struct Dispatcher {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    progress: watch::Receiver<DispatchProgress>,
}

impl Dispatcher {
    /// Starts dispatching the orders of `store`'s log, deciding with `clock` and searching
    /// around the workers' live `locations` when they are fresh.
    pub fn spawn<S>(
        store: S,
        clock: Clock,
        config: DispatchConfig,
        locations: LiveLocations,
    ) -> Self
    where
        S: EventStore + Clone + Send + Sync + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        let (progress_tx, progress) = watch::channel(DispatchProgress::default());
        let task = tokio::spawn(run(
            Context {
                store,
                clock,
                config,
                locations,
                caller: dispatcher_caller(),
            },
            stopped,
            progress_tx,
        ));
        Dispatcher {
            stop,
            task,
            progress,
        }
    }

    /// Where the dispatcher is: the last event it has fully handled (offers made for it
    /// included) and the clock reading of its last complete pass.
    pub fn progress(&self) -> watch::Receiver<DispatchProgress> {
        self.progress.clone()
    }

    /// Stops the dispatcher after the command in progress and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the dispatcher task failed");
        }
    }
}

/// A registered worker, as far as choosing candidates goes.
#[derive(Clone, Debug)]
struct Candidate {
    home: GeoPoint,
    skills: Vec<SkillKind>,
}

/// What the dispatcher knows.
#[derive(Debug, Default)]
struct Board {
    workers: HashMap<WorkerId, Candidate>,
    /// Orders that are open or in service, with the revision of the last event folded in.
    orders: HashMap<OrderId, (Order, Revision)>,
    /// Orders changed since the last pass.
    dirty: HashSet<OrderId>,
    /// Workers the domain refused as ineligible (or without credentials), not tried again
    /// until something about them changes (their credit, profile or certificates) or
    /// [`INELIGIBLE_FOR`] passes (validity dates come and go with time).
    ineligible: HashSet<WorkerId>,
    /// When `ineligible` was last cleared wholesale.
    ineligible_since: Option<Timestamp>,
}

/// How long a worker refused as ineligible is left out before being tried again anyway.
pub const INELIGIBLE_FOR: Minutes = Minutes(5);

impl Board {
    /// Folds `event` in.
    fn apply(&mut self, event: &RecordedEvent) {
        let stream = event.stream();
        let category = stream.split_once('-').map(|(c, _)| c);
        match category {
            // A worker's credit or profile changed: they may have become eligible.
            Some(WorkerId::CATEGORY) | Some(PROFILE_CATEGORY) => {
                if let Some(id) = stream
                    .split_once('-')
                    .and_then(|(_, id)| id.parse::<WorkerId>().ok())
                {
                    self.ineligible.remove(&id);
                }
            }
            // Certificates were issued, renewed or restored: anyone may have become eligible.
            Some(RegistryId::CATEGORY) => self.ineligible.clear(),
            _ => {}
        }
        if category == Some(PROFILE_CATEGORY) {
            if let Ok(WorkerEvent::WorkerRegistered {
                worker,
                skills,
                home,
                ..
            }) = order_commands::decode::<WorkerEvent>(event)
            {
                self.workers.insert(worker, Candidate { home, skills });
            }
            return;
        }
        let Ok(DomainRecord::Order(id, order_event)) = decode::decode(event) else {
            return;
        };
        if self
            .orders
            .get(&id)
            .is_some_and(|(_, revision)| *revision >= event.revision)
        {
            // Already folded in from the dispatcher's own command result.
            return;
        }
        let state = match self.orders.remove(&id) {
            Some((order, _)) => OrderState { order: Some(order) },
            None => OrderState::default(),
        };
        let state = order::evolve(state, &order_event);
        self.keep(id, state, event.revision);
    }

    /// Keeps `state` at `revision` if the order still needs the dispatcher (or blocks workers).
    /// An older revision (a replayed command's result) changes nothing.
    fn keep(&mut self, id: OrderId, state: OrderState, revision: Revision) {
        if self.orders.get(&id).is_some_and(|(_, r)| *r >= revision) {
            return;
        }
        if let Some(order) = state.order
            && matches!(order.phase, OrderPhase::Open | OrderPhase::InService)
        {
            self.orders.insert(id, (order, revision));
            self.dirty.insert(id);
        } else {
            self.orders.remove(&id);
        }
    }

    /// Whether `worker` holds, or has a pending offer on, an order overlapping `window`.
    fn busy(&self, worker: WorkerId, window: ServiceWindow) -> bool {
        self.orders.values().any(|(order, _)| {
            order.window.start < window.end
                && window.start < order.window.end
                && order.slots.iter().any(|(_, s)| {
                    s.assignment.is_some_and(|a| a.worker == worker)
                        || s.offers.iter().any(|o| o.worker == worker)
                })
        })
    }

    /// Candidates for `order`, best first: by distance from their live location when `live`
    /// knows a fresh one, from their home otherwise.
    fn candidates(
        &self,
        order: &Order,
        radius_m: f64,
        live: impl Fn(WorkerId) -> Option<GeoPoint>,
    ) -> Vec<WorkerId> {
        let mut near: Vec<(f64, WorkerId)> = self
            .workers
            .iter()
            .filter(|(_, c)| {
                order
                    .required_certificates
                    .iter()
                    .all(|s| c.skills.contains(s))
            })
            .map(|(w, c)| {
                let at = live(*w).unwrap_or(c.home);
                (at.distance_m(order.location), *w)
            })
            .filter(|(d, _)| *d <= radius_m)
            .collect();
        near.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut ranked: Vec<WorkerId> = Vec::with_capacity(near.len() + 1);
        if let DispatchMode::Preferred { worker } = order.dispatch
            && !order.preferred_offered
        {
            ranked.push(worker);
        }
        ranked.extend(near.into_iter().map(|(_, w)| w));
        ranked.retain(|w| !order.passed_over.contains(w) && !self.busy(*w, order.window));
        ranked.dedup();
        ranked
    }
}

fn dispatcher_caller() -> Caller {
    Caller {
        role: Role::Admin,
        actor: Actor::new(DISPATCHER_ACTOR).unwrap_or_else(|_| unreachable!("a valid actor name")),
    }
}

/// What every pass needs.
struct Context<S> {
    store: S,
    clock: Clock,
    config: DispatchConfig,
    locations: LiveLocations,
    caller: Caller,
}

/// Resolves when a manual clock moves; never for the system clock.
async fn clock_moved(changes: &mut Option<watch::Receiver<Timestamp>>) {
    match changes {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

async fn run<S>(
    cx: Context<S>,
    mut stopped: watch::Receiver<bool>,
    progress: watch::Sender<DispatchProgress>,
) where
    S: EventStore + Clone + Send + Sync + 'static,
{
    let mut board = Board::default();
    let mut last: Option<daojia_store::Position> = None;
    let mut tick = tokio::time::interval(cx.config.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut clock_changes = cx.clock.changes();
    'subscribe: loop {
        let from = last.map_or(SubscribeFrom::Start, SubscribeFrom::After);
        let mut subscription = match cx.store.subscribe_all(from, AllOptions::default()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "dispatcher cannot subscribe, retrying");
                tokio::select! {
                    _ = stopped.changed() => break 'subscribe,
                    _ = tick.tick() => continue 'subscribe,
                }
            }
        };
        let mut caught_up = false;
        loop {
            tokio::select! {
                biased;
                _ = stopped.changed() => break 'subscribe,
                item = subscription.next() => match item {
                    Some(Ok(SubscriptionItem::Event(event))) => {
                        board.apply(&event);
                        if caught_up {
                            pass(&cx, &mut board, false).await;
                        }
                        // Published only once the event is fully handled, offers included.
                        last = Some(event.position);
                        progress.send_modify(|p| p.position = last);
                    }
                    Some(Ok(SubscriptionItem::CaughtUp)) => {
                        caught_up = true;
                        tracing::info!(open_orders = board.orders.len(), workers = board.workers.len(), "dispatcher caught up");
                        full_pass(&cx, &mut board, &progress).await;
                    }
                    Some(Ok(SubscriptionItem::Checkpoint(_))) => {}
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "dispatcher subscription failed, resubscribing");
                        continue 'subscribe;
                    }
                    None => break 'subscribe,
                },
                () = clock_moved(&mut clock_changes), if caught_up => {
                    full_pass(&cx, &mut board, &progress).await;
                }
                _ = tick.tick(), if caught_up => {
                    full_pass(&cx, &mut board, &progress).await;
                }
            }
        }
    }
    tracing::info!("dispatcher stopped");
}

/// A pass over every open order, recording the clock reading it started at.
async fn full_pass<S: EventStore>(
    cx: &Context<S>,
    board: &mut Board,
    progress: &watch::Sender<DispatchProgress>,
) {
    let started = cx.clock.now();
    match board.ineligible_since {
        Some(since) if started < since.plus(INELIGIBLE_FOR) => {}
        _ => {
            board.ineligible.clear();
            board.ineligible_since = Some(started);
        }
    }
    pass(cx, board, true).await;
    progress.send_modify(|p| p.settled_at = Some(started));
}

/// Looks at the changed orders (every open order if `all`).
async fn pass<S: EventStore>(cx: &Context<S>, board: &mut Board, all: bool) {
    let mut ids: Vec<OrderId> = if all {
        board.orders.keys().copied().collect()
    } else {
        board.dirty.iter().copied().collect()
    };
    board.dirty.clear();
    ids.sort();
    for id in ids {
        if let Err(e) = dispatch_order(cx, board, id).await {
            tracing::warn!(order = %id, error = %e, "dispatching failed; retrying on the next tick");
        }
    }
}

/// Expires lapsed offers of order `id` and offers its open slots, unless its window has
/// started. An order whose window has ended with nobody on it is dropped from the board.
async fn dispatch_order<S: EventStore>(
    cx: &Context<S>,
    board: &mut Board,
    id: OrderId,
) -> Result<(), ApiError> {
    let Context {
        store,
        clock,
        config,
        locations,
        caller,
    } = cx;
    let now = clock.now();
    let Some((order, _)) = board.orders.get(&id) else {
        return Ok(());
    };
    if now >= order.window.end && order.workers().is_empty() {
        board.orders.remove(&id);
        return Ok(());
    }
    let lapsed: Vec<(SlotIndex, WorkerId)> = order
        .slots
        .iter()
        .flat_map(|(i, s)| {
            s.offers
                .iter()
                .filter(|o| now >= o.expires_at)
                .map(|o| (*i, o.worker))
        })
        .collect();
    for (slot, worker) in lapsed {
        let salt = format!("expire:{}:{worker}", slot.0);
        let command = OrderCommand::ExpireOffer { slot, worker };
        match run_command(store, clock, caller, id, &salt, command).await {
            Ok(done) => board.keep(id, done.state, done.revision),
            Err(ApiError::Domain(refusal)) => {
                tracing::debug!(order = %id, %refusal, "offer not expired");
            }
            Err(e) => return Err(e),
        }
    }
    let Some((order, _)) = board.orders.get(&id) else {
        return Ok(());
    };
    if now >= order.window.start
        || matches!(order.dispatch, DispatchMode::GrabPool { deadline } if now < deadline)
    {
        return Ok(());
    }
    if let DispatchMode::Preferred { worker: favourite } = order.dispatch
        && !order.preferred_offered
        && let Some(reason) = favourite_unavailable(board, order, favourite)
    {
        skip_favourite(cx, board, id, reason).await?;
    }
    let Some((order, _)) = board.orders.get(&id) else {
        return Ok(());
    };
    let parallel = match order.dispatch {
        DispatchMode::Emergency => {
            usize::try_from(order.terms.emergency_parallel_offers).unwrap_or(1)
        }
        _ => 1,
    };
    let open: Vec<SlotIndex> = order
        .slots
        .iter()
        .filter(|(_, s)| s.assignment.is_none() && s.offers.len() < parallel)
        .map(|(i, _)| *i)
        .collect();
    for slot in open {
        let mut tries = 0;
        loop {
            let Some((order, _)) = board.orders.get(&id) else {
                return Ok(());
            };
            let pending = order
                .slots
                .iter()
                .find(|(i, _)| *i == slot)
                .map_or(parallel, |(_, s)| s.offers.len());
            if pending >= parallel || tries >= config.max_tries {
                break;
            }
            let Some(worker) = board
                .candidates(order, config.radius_m, |w| locations.get(w, now))
                .into_iter()
                .find(|w| !board.ineligible.contains(w))
            else {
                break;
            };
            let favourite_first = matches!(order.dispatch, DispatchMode::Preferred { worker: f } if f == worker)
                && !order.preferred_offered;
            tries += 1;
            let credentials = match order_commands::worker_credentials(store, worker, now).await {
                Ok(c) => c,
                Err(e @ (ApiError::Store(_) | ApiError::StoreOpening)) => return Err(e),
                Err(e) => {
                    tracing::debug!(%worker, error = %e, "no credentials; leaving the worker out");
                    board.ineligible.insert(worker);
                    if favourite_first {
                        skip_favourite(cx, board, id, format!("favourite has no credentials: {e}"))
                            .await?;
                    }
                    continue;
                }
            };
            let salt = format!("offer:{}:{worker}", slot.0);
            let command = OrderCommand::Offer {
                slot,
                worker: credentials,
            };
            match run_command(store, clock, caller, id, &salt, command).await {
                Ok(done) => {
                    tracing::info!(order = %id, slot = slot.0, %worker, "offered");
                    board.keep(id, done.state, done.revision);
                }
                Err(ApiError::Domain(refusal)) if skips_worker(&refusal) => {
                    tracing::debug!(order = %id, %worker, %refusal, "candidate refused");
                    if matches!(refusal, DomainError::WorkerNotEligible { .. }) {
                        board.ineligible.insert(worker);
                    }
                    if favourite_first {
                        skip_favourite(cx, board, id, format!("favourite refused: {refusal}"))
                            .await?;
                    }
                    if !matches!(refusal, DomainError::WorkerNotEligible { .. }) {
                        // Passed over or already on the order: not a candidate for this one;
                        // the board's next fold of the order leaves them out.
                        break;
                    }
                }
                Err(ApiError::Domain(refusal)) => {
                    tracing::debug!(order = %id, slot = slot.0, %refusal, "slot not offered");
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Why the favourite of a preferred order cannot be offered it, if they cannot.
fn favourite_unavailable(board: &Board, order: &Order, favourite: WorkerId) -> Option<String> {
    if !board.workers.contains_key(&favourite) {
        return Some("favourite is not a registered worker".into());
    }
    if board.ineligible.contains(&favourite) {
        return Some("favourite is not eligible".into());
    }
    if board.busy(favourite, order.window) {
        return Some("favourite is booked at that time".into());
    }
    None
}

/// Records that the favourite of order `id` is passed over.
async fn skip_favourite<S: EventStore>(
    cx: &Context<S>,
    board: &mut Board,
    id: OrderId,
    reason: String,
) -> Result<(), ApiError> {
    let command = OrderCommand::SkipPreferred { reason };
    match run_command(
        &cx.store,
        &cx.clock,
        &cx.caller,
        id,
        "skip-preferred",
        command,
    )
    .await
    {
        Ok(done) => {
            board.keep(id, done.state, done.revision);
            Ok(())
        }
        Err(ApiError::Domain(refusal)) => {
            tracing::debug!(order = %id, %refusal, "favourite not skipped");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Refusals about the worker (try the next one), as opposed to the order or slot.
fn skips_worker(refusal: &DomainError) -> bool {
    matches!(
        refusal,
        DomainError::WorkerNotEligible { .. }
            | DomainError::WorkerPassedOver { .. }
            | DomainError::WorkerAlreadyOnOrder { .. }
    )
}

async fn run_command<S: EventStore>(
    store: &S,
    clock: &Clock,
    caller: &Caller,
    order: OrderId,
    salt: &str,
    command: OrderCommand,
) -> Result<Executed, ApiError> {
    let request = OrderRequest {
        command_id: CommandId::derived(order.uuid().as_u128(), salt.as_bytes()),
        order_id: order,
        command,
    };
    order_commands::execute(store, clock, caller, request).await
}
