//! Live dispatch: a single writer per city shard, LMAX style, that turns the matching engine's
//! answers into offers appended through the ordinary order command path.
//!
//! It follows `$all` and keeps, per shard ([`ShardId`]; one city shard today, [`shard_of`]
//! is where more would be told apart), a board of the open and in-service orders (folded with
//! the domain's `order::evolve`, plus each order's category and posting time from
//! `OrderPosted`) and the registered workers in a `daojia_matching::Matcher`
//! (`dispatch_index`). The matcher learns each worker's standing, contract and certificates
//! from the matching projection (`MatchingView`, folded from the same events: a worker's are
//! refreshed when her streams change, everyone's on each full pass as validity dates pass),
//! and her bookings are her accepted slots **and pending offers**,
//! refreshed before each pass, so nobody is offered anything overlapping what they hold or may
//! accept (`Matcher::book` refuses an overlap within a pass; the domain does not check it).
//!
//! Whenever an order changes, whenever a manual clock moves and on every tick (the tick only
//! matters for the system clock; with a manual clock no wall-clock timer decides anything), a
//! pass does, for each shard at the clock reading `now`:
//! - **expiry**: a pending offer past its expiry is recorded as lapsed (`ExpireOffer`);
//! - **escalation**: an emergency call with a slot nobody accepted
//!   [`DispatchConfig::escalate_after`] after posting is escalated to ops (`Escalate`, once per
//!   order; the reactor opens an `Emergency` follow-up for the resulting event); so is, at
//!   once, a call nobody at all can be offered;
//! - **batches** (first offers), by this rule: an order is *instant* when its window starts
//!   within [`DispatchConfig::instant_horizon`] of its posting, *scheduled* otherwise. An
//!   order's first offers come from a batch: instant orders form one batch, scheduled ones one
//!   per time slot (the hour their window starts in). A batch collects the orders never offered
//!   yet (and not yet through a batch since the dispatcher started) and is due once its
//!   earliest order has waited [`DispatchConfig::batch_window`] (instant) or
//!   [`DispatchConfig::slot_batch_window`] (scheduled; zero by default: matched as soon as
//!   seen) since posting; it is then matched at once with `Matcher::match_batch` (exact
//!   assignment, at most one slot per worker per batch) and each assignment becomes an offer.
//!   Until then such orders are offered nothing. Emergency calls skip batching (offered at
//!   once), grab-pool orders join a batch after their pool deadline, and a preferred order
//!   goes to its favourite first, at once;
//! - **cascade**: any open slot (past its batch) still short of pending offers (one; several for emergency
//!   calls, `terms.emergency_parallel_offers`) is offered to the next candidate of
//!   `policy::next_offer` (`policy::emergency_offers` for emergency calls), leaving out the
//!   workers passed over (declined, lapsed, withdrew), already on the order or refused as
//!   ineligible; a preferred order's favourite goes first, and one who is unregistered, booked
//!   at that time or refused is passed over (`SkipPreferred`) so that others may be offered it.
//!   Offers stop once the order's window starts; an order whose window has ended with nobody on
//!   it leaves the board.
//!
//! Offers go through `order_commands::execute` with the worker's credentials loaded from the
//! store, so the domain has the last word: a worker in retraining, suspended, black-listed,
//! without a valid certificate or contract is refused and the next candidate is tried. Refused
//! workers are remembered and left out until their credit, profile or certificates change, or
//! for [`INELIGIBLE_FOR`], so a crowd of ineligible neighbours cannot keep an order from
//! eligible workers further away.
//!
//! **Restarts.** Every decision is an event and every input of a decision (posting time,
//! offers, lapses, escalation) is in the log, so replaying `$all` rebuilds the same boards;
//! offers pending at a crash keep their recorded expiry and lapse or proceed like any other.
//! Command ids derive from the order, slot and worker (`CommandId::derived`), so an offer made
//! just before a crash is found, not repeated, after the restart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use daojia_domain::catalog::{Category, SkillKind};
use daojia_domain::certificates::CertificateEvent;
use daojia_domain::credit::{CreditEvent, Subject};
use daojia_domain::order::{
    self, DispatchMode, GeoPoint, Order, OrderPhase, OrderState, SlotIndex,
};
use daojia_domain::worker::{PROFILE_CATEGORY, WorkerEvent};
use daojia_domain::{
    DomainError, Minutes, OrderCommand, OrderEvent, OrderId, RegistryId, Timestamp, WorkerId,
};
use daojia_matching::Interval;
use daojia_projections::ReadModel;
use daojia_projections::decode::{self, DomainRecord};
use daojia_projections::matching_view::MatchingView;
use daojia_store::{
    AllOptions, EventStore, EventSubscription, RecordedEvent, Revision, SubscribeFrom,
    SubscriptionItem,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{Actor, Caller, Role};
use crate::clock::Clock;
use crate::dispatch_index::{self, MatchIndex};
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
    /// How often every open order is looked at again (with the system clock; a manual clock
    /// triggers a pass whenever it moves).
    pub tick: Duration,
    /// Farthest a worker may be from the order, in metres (every category today).
    pub radius_m: f64,
    /// Most candidates tried for one slot in one pass.
    pub max_tries: usize,
    /// How long new instant orders are collected before they are matched as one batch (the
    /// window opens with the first order of the batch).
    pub batch_window: Duration,
    /// How long new scheduled orders of one time slot are collected before they are matched
    /// as one batch; zero matches each slot's new orders as soon as they are seen.
    pub slot_batch_window: Duration,
    /// An order whose window starts within this of its posting is instant; later ones are
    /// scheduled and matched per time slot (the hour their window starts in).
    pub instant_horizon: Duration,
    /// An emergency call nobody has accepted this long after posting is escalated to ops.
    pub escalate_after: Duration,
}

impl Default for DispatchConfig {
    /// A tick of one second, 30 km, 16 tries, 2 s batches, scheduled slots matched at once,
    /// instant within 2 h, emergency calls escalated after a minute.
    fn default() -> Self {
        DispatchConfig {
            tick: Duration::from_secs(1),
            radius_m: 30_000.0,
            max_tries: 16,
            batch_window: Duration::from_secs(2),
            slot_batch_window: Duration::ZERO,
            instant_horizon: Duration::from_secs(2 * 3_600),
            escalate_after: Duration::from_secs(60),
        }
    }
}

/// A city shard: the unit a single dispatcher writer owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u16);

/// The shard serving `location`. There is one city shard today; splitting a city (or serving
/// several) is a matter of telling locations apart here.
pub fn shard_of(location: GeoPoint) -> ShardId {
    let _ = location;
    ShardId(0)
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

/// What `OrderPosted` says that the folded order does not keep.
#[derive(Clone, Copy, Debug)]
struct Posted {
    category: Category,
    at: Timestamp,
}

/// Which batch an order's first offers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum BatchKey {
    /// Instant orders, collected for the batch window.
    Instant,
    /// Scheduled orders whose window starts in this hour (hours since the Unix epoch).
    Slot(i64),
}

/// What one shard's writer knows.
#[derive(Debug)]
struct Board {
    /// Registered workers in the matching engine.
    index: MatchIndex,
    /// Orders that are open or in service, with the revision of the last event folded in.
    orders: HashMap<OrderId, (Order, Revision)>,
    /// Category and posting time of the orders on the board.
    posted: HashMap<OrderId, Posted>,
    /// Orders changed since the last pass.
    dirty: HashSet<OrderId>,
    /// Orders that have been through a batch since the dispatcher started: a batch matches an
    /// order once, what it leaves open goes to the cascade (after a restart, orders never
    /// offered go through one batch again, which offers nobody twice).
    batched: HashSet<OrderId>,
    /// Workers the domain refused as ineligible (or without credentials), not tried again
    /// until something about them changes (their credit, profile or certificates) or
    /// [`INELIGIBLE_FOR`] passes (validity dates come and go with time).
    ineligible: HashSet<WorkerId>,
    /// When `ineligible` was last cleared wholesale.
    ineligible_since: Option<Timestamp>,
}

/// How long a worker refused as ineligible is left out before being tried again anyway.
pub const INELIGIBLE_FOR: Minutes = Minutes(5);

const HOUR_MS: i64 = 3_600_000;

fn after(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp(t.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
}

impl Board {
    fn new(config: &DispatchConfig) -> Self {
        Board {
            index: MatchIndex::new(config.radius_m / 1_000.0),
            orders: HashMap::new(),
            posted: HashMap::new(),
            dirty: HashSet::new(),
            batched: HashSet::new(),
            ineligible: HashSet::new(),
            ineligible_since: None,
        }
    }

    /// Folds a worker's registration in.
    fn register(&mut self, worker: WorkerId, home: GeoPoint, skills: &[SkillKind]) {
        self.index.register(worker, home, skills);
    }

    /// Folds an order event in.
    fn apply_order(&mut self, id: OrderId, order_event: &OrderEvent, revision: Revision) {
        if let OrderEvent::OrderPosted {
            category,
            posted_at,
            ..
        } = order_event
        {
            self.posted.insert(
                id,
                Posted {
                    category: *category,
                    at: *posted_at,
                },
            );
        }
        if self.orders.get(&id).is_some_and(|(_, r)| *r >= revision) {
            // Already folded in from the dispatcher's own command result.
            return;
        }
        let state = match self.orders.remove(&id) {
            Some((order, _)) => OrderState { order: Some(order) },
            None => OrderState::default(),
        };
        let state = order::evolve(state, order_event);
        self.keep(id, state, revision);
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
            self.posted.remove(&id);
            self.batched.remove(&id);
        }
    }

    /// The windows every worker holds or is offered, for the matcher's bookings.
    fn held(&self) -> HashMap<WorkerId, Vec<Interval>> {
        let mut held: HashMap<WorkerId, Vec<Interval>> = HashMap::new();
        for (order, _) in self.orders.values() {
            let window = dispatch_index::interval(order.window);
            for (_, slot) in &order.slots {
                let holders = slot
                    .assignment
                    .iter()
                    .map(|a| a.worker)
                    .chain(slot.offers.iter().map(|o| o.worker));
                for worker in holders {
                    held.entry(worker).or_default().push(window);
                }
            }
        }
        held
    }

    /// When `order`'s first offers are due, and from which batch.
    fn due(&self, order: &Order, config: &DispatchConfig) -> Option<(Timestamp, BatchKey)> {
        let posted = self.posted.get(&order.id)?;
        if order.window.start <= after(posted.at, config.instant_horizon) {
            Some((after(posted.at, config.batch_window), BatchKey::Instant))
        } else {
            Some((
                after(posted.at, config.slot_batch_window),
                BatchKey::Slot(order.window.start.0.div_euclid(HOUR_MS)),
            ))
        }
    }

    /// Workers left out of `order`: passed over, already on it, refused as ineligible.
    fn excluded(&self, order: &Order) -> Vec<WorkerId> {
        let mut out: Vec<WorkerId> = order.passed_over.clone();
        for (_, slot) in &order.slots {
            out.extend(slot.assignment.iter().map(|a| a.worker));
            out.extend(slot.offers.iter().map(|o| o.worker));
        }
        out.extend(self.ineligible.iter().copied());
        out.sort();
        out.dedup();
        out
    }
}

/// Never offered, assigned or passed over: its first offers come from a batch.
fn untouched(order: &Order) -> bool {
    order.passed_over.is_empty()
        && !order.preferred_offered
        && order
            .slots
            .iter()
            .all(|(_, s)| s.assignment.is_none() && s.offers.is_empty())
}

/// How far back slots taken count as a worker's recent load (fairness).
pub const RECENT_LOAD_WINDOW: Minutes = Minutes(7 * 24 * 60);

/// Workers' credit scores (from `CreditAdjusted` and `CreditRepaired`) and when they took
/// their recent slots, for the matcher's credit and fairness terms.
#[derive(Debug, Default)]
struct SoftFacts {
    scores: HashMap<WorkerId, i32>,
    taken: HashMap<WorkerId, std::collections::VecDeque<Timestamp>>,
}

impl SoftFacts {
    fn accepted(&mut self, worker: WorkerId, at: Timestamp) {
        self.taken.entry(worker).or_default().push_back(at);
    }

    /// The matcher's credit (0..=1000; a domain score of 100, the base, is 500) and recent
    /// load of `worker` as of `now`.
    fn get(&self, worker: WorkerId, now: Timestamp) -> (u16, u16) {
        let score = self.scores.get(&worker).copied().unwrap_or(100);
        let credit = u16::try_from(score.clamp(0, 200) * 5).unwrap_or(500);
        let since = Timestamp(
            now.0
                .saturating_sub(i64::from(RECENT_LOAD_WINDOW.0) * 60_000),
        );
        let load = self
            .taken
            .get(&worker)
            .map_or(0, |t| t.iter().filter(|at| **at >= since).count());
        (credit, u16::try_from(load).unwrap_or(u16::MAX))
    }
}

/// The shards' boards, and which shard holds each order.
#[derive(Debug)]
struct Shards {
    boards: BTreeMap<ShardId, Board>,
    order_shard: HashMap<OrderId, ShardId>,
    config: DispatchConfig,
    /// The matching projection: every worker's standing, contracts and certificates.
    view: MatchingView,
    /// Workers whose facts changed since the matchers were last refreshed.
    stale: HashSet<WorkerId>,
    /// What the matcher's cost weighs besides distance: credit scores and recent work.
    soft: SoftFacts,
}

impl Shards {
    fn new(config: DispatchConfig) -> Self {
        Shards {
            boards: BTreeMap::new(),
            order_shard: HashMap::new(),
            config,
            view: MatchingView::default(),
            stale: HashSet::new(),
            soft: SoftFacts::default(),
        }
    }

    /// Brings the matchers' worker facts up to date at `now`: the stale workers' (every
    /// worker's if `all`: validity dates come and go with time).
    fn refresh(&mut self, now: Timestamp, all: bool) {
        let stale = std::mem::take(&mut self.stale);
        for board in self.boards.values_mut() {
            if all {
                let workers: Vec<WorkerId> = board.index.workers().copied().collect();
                board
                    .index
                    .refresh(&self.view, &|w| self.soft.get(w, now), now, &workers);
            } else {
                board
                    .index
                    .refresh(&self.view, &|w| self.soft.get(w, now), now, &stale);
            }
        }
    }

    fn board(&mut self, shard: ShardId) -> &mut Board {
        let config = self.config;
        self.boards
            .entry(shard)
            .or_insert_with(|| Board::new(&config))
    }

    /// Folds `event` in.
    fn apply(&mut self, event: &RecordedEvent) {
        let record = decode::decode(event);
        if let Ok(record) = &record {
            self.view.apply_record(record, event);
        }
        let stream = event.stream();
        let category = stream.split_once('-').map(|(c, _)| c);
        match category {
            // A worker's credit or profile changed: they may have become eligible.
            Some(WorkerId::CATEGORY) | Some(PROFILE_CATEGORY) => {
                if let Some(id) = stream
                    .split_once('-')
                    .and_then(|(_, id)| id.parse::<WorkerId>().ok())
                {
                    self.stale.insert(id);
                    for board in self.boards.values_mut() {
                        board.ineligible.remove(&id);
                    }
                }
            }
            // Certificates were issued, renewed or restored: anyone may have become eligible.
            Some(RegistryId::CATEGORY) => {
                if let Ok(DomainRecord::Certificate(e)) = &record
                    && let Some(holder) = certificate_holder(&self.view, e)
                {
                    self.stale.insert(holder);
                } else {
                    self.stale.extend(self.view.workers().map(|w| w.worker));
                }
                for board in self.boards.values_mut() {
                    board.ineligible.clear();
                }
            }
            _ => {}
        }
        match &record {
            Ok(DomainRecord::Credit(
                CreditEvent::CreditAdjusted {
                    subject: Subject::Worker(w),
                    score_after,
                    ..
                }
                | CreditEvent::CreditRepaired {
                    subject: Subject::Worker(w),
                    score_after,
                    ..
                },
            )) => {
                self.soft.scores.insert(*w, *score_after);
                self.stale.insert(*w);
            }
            Ok(DomainRecord::Order(_, OrderEvent::OrderAccepted { worker, at, .. })) => {
                self.soft.accepted(*worker, *at);
                self.stale.insert(*worker);
            }
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
                self.board(shard_of(home)).register(worker, home, &skills);
            }
            return;
        }
        let Ok(DomainRecord::Order(id, order_event)) = record else {
            return;
        };
        let shard = match (&order_event, self.order_shard.get(&id)) {
            (_, Some(shard)) => *shard,
            (OrderEvent::OrderPosted { location, .. }, None) => {
                let shard = shard_of(*location);
                self.order_shard.insert(id, shard);
                shard
            }
            _ => return,
        };
        let board = self.board(shard);
        board.apply_order(id, &order_event, event.revision);
        if !board.orders.contains_key(&id) {
            self.order_shard.remove(&id);
        }
    }

    /// Forgets which shard held the orders no board keeps any more.
    fn forget_closed(&mut self) {
        let boards = &self.boards;
        self.order_shard
            .retain(|id, shard| boards.get(shard).is_some_and(|b| b.orders.contains_key(id)));
    }

    fn orders(&self) -> usize {
        self.boards.values().map(|b| b.orders.len()).sum()
    }

    fn workers(&self) -> usize {
        self.boards.values().map(|b| b.index.len()).sum()
    }
}

/// The worker certificate event `e` is about.
fn certificate_holder(view: &MatchingView, e: &CertificateEvent) -> Option<WorkerId> {
    let id = match e {
        CertificateEvent::CertificateIssued { worker, .. } => return Some(*worker),
        CertificateEvent::CertificateRenewed { certificate_id, .. }
        | CertificateEvent::CertificateSuspended { certificate_id, .. }
        | CertificateEvent::CertificateReinstated { certificate_id, .. }
        | CertificateEvent::CertificateRevoked { certificate_id, .. } => *certificate_id,
    };
    view.workers()
        .find(|w| w.certificates.contains_key(&id))
        .map(|w| w.worker)
}

fn dispatcher_caller() -> Caller {
    Caller::new(
        Role::Admin,
        Actor::new(DISPATCHER_ACTOR).unwrap_or_else(|_| unreachable!("a valid actor name")),
    )
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
    let mut shards = Shards::new(cx.config);
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
                        shards.apply(&event);
                        if caught_up {
                            shards.refresh(cx.clock.now(), false);
                            for board in shards.boards.values_mut() {
                                pass(&cx, board, false).await;
                            }
                        }
                        // Published only once the event is fully handled, offers included.
                        last = Some(event.position);
                        progress.send_modify(|p| p.position = last);
                    }
                    Some(Ok(SubscriptionItem::CaughtUp)) => {
                        caught_up = true;
                        tracing::info!(open_orders = shards.orders(), workers = shards.workers(), "dispatcher caught up");
                        full_pass(&cx, &mut shards, &progress).await;
                    }
                    Some(Ok(SubscriptionItem::Checkpoint(_))) => {}
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "dispatcher subscription failed, resubscribing");
                        continue 'subscribe;
                    }
                    None => break 'subscribe,
                },
                () = clock_moved(&mut clock_changes), if caught_up => {
                    full_pass(&cx, &mut shards, &progress).await;
                }
                _ = tick.tick(), if caught_up => {
                    full_pass(&cx, &mut shards, &progress).await;
                }
            }
        }
    }
    tracing::info!("dispatcher stopped");
}

/// A pass over every open order of every shard, recording the clock reading it started at.
async fn full_pass<S: EventStore>(
    cx: &Context<S>,
    shards: &mut Shards,
    progress: &watch::Sender<DispatchProgress>,
) {
    let started = cx.clock.now();
    shards.refresh(started, true);
    for board in shards.boards.values_mut() {
        match board.ineligible_since {
            Some(since) if started < since.plus(INELIGIBLE_FOR) => {}
            _ => {
                board.ineligible.clear();
                board.ineligible_since = Some(started);
            }
        }
        pass(cx, board, true).await;
    }
    shards.forget_closed();
    progress.send_modify(|p| p.settled_at = Some(started));
}

/// Looks at the changed orders (every open order if `all`): expiry and escalation, then the
/// batches that are due, then the cascade.
async fn pass<S: EventStore>(cx: &Context<S>, board: &mut Board, all: bool) {
    let now = cx.clock.now();
    let mut ids: Vec<OrderId> = if all {
        board.orders.keys().copied().collect()
    } else {
        board.dirty.iter().copied().collect()
    };
    board.dirty.clear();
    ids.sort();
    for id in &ids {
        if let Err(e) = expire_and_escalate(cx, board, *id, now).await {
            tracing::warn!(order = %id, error = %e, "dispatching failed; retrying on the next tick");
        }
    }
    // Bookings and locations as of now, lapsed offers released.
    let held = board.held();
    board.index.sync(&held, |w| cx.locations.get(w, now));
    let mut batched = Vec::new();
    if let Err(e) = batches(cx, board, now, &mut batched).await {
        tracing::warn!(error = %e, "batch dispatch failed; retrying on the next tick");
    }
    // What a batch left open (a refused assignment, nobody found) cascades in the same pass.
    ids.extend(batched);
    ids.sort();
    ids.dedup();
    for id in ids {
        if let Err(e) = cascade(cx, board, id, now).await {
            tracing::warn!(order = %id, error = %e, "dispatching failed; retrying on the next tick");
        }
    }
}

/// Expires lapsed offers of order `id` and escalates an unanswered emergency call. An order
/// whose window has ended with nobody on it is dropped from the board.
async fn expire_and_escalate<S: EventStore>(
    cx: &Context<S>,
    board: &mut Board,
    id: OrderId,
    now: Timestamp,
) -> Result<(), ApiError> {
    let Some((order, _)) = board.orders.get(&id) else {
        return Ok(());
    };
    if now >= order.window.end && order.workers().is_empty() {
        board.orders.remove(&id);
        board.posted.remove(&id);
        board.batched.remove(&id);
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
        match run_command(cx, id, &salt, command).await {
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
    let unanswered = order.dispatch == DispatchMode::Emergency
        && order.phase == OrderPhase::Open
        && !order.escalated
        && order.slots.iter().any(|(_, s)| s.assignment.is_none());
    if unanswered
        && let Some(posted) = board.posted.get(&id)
        && now >= after(posted.at, cx.config.escalate_after)
    {
        escalate(cx, board, id, "unanswered").await?;
    }
    Ok(())
}

/// Escalates emergency call `id` to ops (`why` for the log); the domain records it once.
async fn escalate<S: EventStore>(
    cx: &Context<S>,
    board: &mut Board,
    id: OrderId,
    why: &str,
) -> Result<(), ApiError> {
    match run_command(cx, id, "escalate", OrderCommand::Escalate).await {
        Ok(done) => {
            if done.state.order.as_ref().is_some_and(|o| o.escalated) {
                tracing::warn!(order = %id, why, "emergency call escalated to ops");
            }
            board.keep(id, done.state, done.revision);
            Ok(())
        }
        Err(ApiError::Domain(refusal)) => {
            tracing::debug!(order = %id, %refusal, "emergency call not escalated");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Whether `order` may be offered now: not while its grab pool is open, nor once its window
/// has started.
fn offerable(order: &Order, now: Timestamp) -> bool {
    now < order.window.start
        && !matches!(order.dispatch, DispatchMode::GrabPool { deadline } if now < deadline)
}

/// Whether order `id`'s first offers must come from a batch it has not been through yet:
/// open orders other than emergency calls (offered at once) and preferred orders (their
/// favourite first), never offered, assigned or passed over.
fn awaiting_batch(board: &Board, id: OrderId, order: &Order) -> bool {
    order.phase == OrderPhase::Open
        && !matches!(
            order.dispatch,
            DispatchMode::Emergency | DispatchMode::Preferred { .. }
        )
        && untouched(order)
        && !board.batched.contains(&id)
}

/// Matches the due batches: orders never offered yet, grouped by [`BatchKey`], each group with
/// one `match_batch`; every assignment becomes an offer. The orders batched are added to
/// `batched`.
async fn batches<S: EventStore>(
    cx: &Context<S>,
    board: &mut Board,
    now: Timestamp,
    batched: &mut Vec<OrderId>,
) -> Result<(), ApiError> {
    // Each group with the earliest due time of its orders: a batch is due once its first order's
    // window has passed, and takes every order collected meanwhile.
    let mut groups: BTreeMap<BatchKey, (Timestamp, Vec<OrderId>)> = BTreeMap::new();
    for (id, (order, _)) in &board.orders {
        if !awaiting_batch(board, *id, order) || !offerable(order, now) {
            continue;
        }
        if let Some((due, key)) = board.due(order, &cx.config) {
            let group = groups.entry(key).or_insert((due, Vec::new()));
            group.0 = group.0.min(due);
            group.1.push(*id);
        }
    }
    for (key, (due, mut ids)) in groups {
        if now < due {
            continue;
        }
        ids.sort();
        let mut inputs = Vec::with_capacity(ids.len());
        for (dense, id) in ids.iter().enumerate() {
            let Some((order, _)) = board.orders.get(id) else {
                continue;
            };
            let Some(posted) = board.posted.get(id) else {
                continue;
            };
            let exclude = board.excluded(order);
            let category = posted.category;
            let order = order.clone();
            let dense = u32::try_from(dense).unwrap_or(u32::MAX);
            match board
                .index
                .order(dense, &order, category, order.slots.len(), &exclude)
            {
                Some(input) => inputs.push(input),
                None => tracing::warn!(order = %id, "required certificates past 64 kinds"),
            }
        }
        let assignments = board.index.batch(inputs);
        board.batched.extend(ids.iter().copied());
        batched.extend(ids.iter().copied());
        tracing::info!(batch = ?key, orders = ids.len(), assigned = assignments.len(), "batch");
        for (dense, worker) in assignments {
            let Some(id) = usize::try_from(dense)
                .ok()
                .and_then(|i| ids.get(i))
                .copied()
            else {
                continue;
            };
            let Some((order, _)) = board.orders.get(&id) else {
                continue;
            };
            let Some(slot) = order
                .slots
                .iter()
                .find(|(_, s)| s.assignment.is_none() && s.offers.is_empty())
                .map(|(i, _)| *i)
            else {
                continue;
            };
            // A refusal leaves the slot to the cascade.
            offer(cx, board, id, slot, worker, now).await?;
        }
    }
    Ok(())
}

/// What came of offering a slot to a worker.
enum Offered {
    Made,
    /// The worker was refused (and is left out of this order or, if ineligible, for a while).
    Refused(DomainError),
    /// The slot cannot be offered now.
    SlotClosed,
}

/// Offers `slot` of order `id` to `worker` through the domain, unless the worker holds or is
/// offered something overlapping (then it is as if refused).
async fn offer<S: EventStore>(
    cx: &Context<S>,
    board: &mut Board,
    id: OrderId,
    slot: SlotIndex,
    worker: WorkerId,
    now: Timestamp,
) -> Result<Offered, ApiError> {
    let Some((order, _)) = board.orders.get(&id) else {
        return Ok(Offered::SlotClosed);
    };
    let window = order.window;
    if board.index.busy(worker, window) {
        return Ok(Offered::Refused(DomainError::WorkerAlreadyOnOrder {
            worker,
        }));
    }
    let credentials = match order_commands::worker_credentials(&cx.store, worker, now).await {
        Ok(c) => c,
        Err(e @ (ApiError::Store(_) | ApiError::StoreOpening)) => return Err(e),
        Err(e) => {
            tracing::debug!(%worker, error = %e, "no credentials; leaving the worker out");
            board.ineligible.insert(worker);
            return Ok(Offered::Refused(DomainError::WorkerNotRegistered));
        }
    };
    let salt = format!("offer:{}:{worker}", slot.0);
    let command = OrderCommand::Offer {
        slot,
        worker: credentials,
    };
    match run_command(cx, id, &salt, command).await {
        Ok(done) => {
            tracing::info!(order = %id, slot = slot.0, %worker, "offered");
            if !board.index.book(worker, window) {
                // Only a replayed offer (made before a restart) can get here.
                tracing::debug!(order = %id, %worker, "offer window already reserved");
            }
            board.keep(id, done.state, done.revision);
            Ok(Offered::Made)
        }
        Err(ApiError::Domain(refusal)) if skips_worker(&refusal) => {
            tracing::debug!(order = %id, %worker, %refusal, "candidate refused");
            if matches!(refusal, DomainError::WorkerNotEligible { .. }) {
                board.ineligible.insert(worker);
            }
            Ok(Offered::Refused(refusal))
        }
        Err(ApiError::Domain(refusal)) => {
            tracing::debug!(order = %id, slot = slot.0, %refusal, "slot not offered");
            Ok(Offered::SlotClosed)
        }
        Err(e) => Err(e),
    }
}

/// Offers the open slots of order `id` that are due and short of pending offers, one
/// candidate after another.
async fn cascade<S: EventStore>(
    cx: &Context<S>,
    board: &mut Board,
    id: OrderId,
    now: Timestamp,
) -> Result<(), ApiError> {
    let Some((order, _)) = board.orders.get(&id) else {
        return Ok(());
    };
    if !offerable(order, now) || awaiting_batch(board, id, order) {
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
            if pending >= parallel || tries >= cx.config.max_tries {
                break;
            }
            let favourite = match order.dispatch {
                DispatchMode::Preferred { worker } if !order.preferred_offered => Some(worker),
                _ => None,
            };
            let Some(category) = board.posted.get(&id).map(|p| p.category) else {
                break;
            };
            let exclude = board.excluded(order);
            let order = order.clone();
            let Some(input) = board.index.order(0, &order, category, 1, &exclude) else {
                break;
            };
            let picks: Vec<WorkerId> = match (favourite, order.dispatch) {
                (Some(f), _) => vec![f],
                (None, DispatchMode::Emergency) => {
                    board.index.emergency(&input, parallel - pending)
                }
                (None, _) => board.index.next_offer(&input).into_iter().collect(),
            };
            if picks.is_empty() {
                // An emergency call nobody at all can be offered goes to ops at once.
                let stranded = order.dispatch == DispatchMode::Emergency
                    && !order.escalated
                    && order.slots.iter().all(|(_, s)| s.offers.is_empty());
                if stranded {
                    escalate(cx, board, id, "nobody to offer it to").await?;
                }
                break;
            }
            let mut closed = false;
            for worker in picks {
                tries += 1;
                match offer(cx, board, id, slot, worker, now).await? {
                    Offered::Made => {}
                    Offered::Refused(refusal) => {
                        if favourite == Some(worker) {
                            skip_favourite(cx, board, id, format!("favourite refused: {refusal}"))
                                .await?;
                        } else if matches!(refusal, DomainError::WorkerPassedOver { .. }) {
                            // The board's next fold of the order leaves them out.
                            closed = true;
                        }
                        // Otherwise (ineligible, unregistered, busy) the next candidate is
                        // tried: ineligible ones are remembered, busy ones are booked in the
                        // matcher, and `max_tries` bounds the rest.
                    }
                    Offered::SlotClosed => closed = true,
                }
            }
            if closed {
                break;
            }
        }
    }
    Ok(())
}

/// Why the favourite of a preferred order cannot be offered it, if they cannot.
fn favourite_unavailable(board: &Board, order: &Order, favourite: WorkerId) -> Option<String> {
    if !board.index.knows(favourite) {
        return Some("favourite is not a registered worker".into());
    }
    if board.ineligible.contains(&favourite) {
        return Some("favourite is not eligible".into());
    }
    if board.index.busy(favourite, order.window) {
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
    match run_command(cx, id, "skip-preferred", command).await {
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
    cx: &Context<S>,
    order: OrderId,
    salt: &str,
    command: OrderCommand,
) -> Result<Executed, ApiError> {
    let request = OrderRequest {
        command_id: CommandId::derived(order.uuid().as_u128(), salt.as_bytes()),
        order_id: order,
        command,
    };
    order_commands::execute(&cx.store, &cx.clock, &cx.caller, request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_scores_and_recent_slots_become_the_matchers_soft_facts() {
        let mut soft = SoftFacts::default();
        let w = WorkerId::from_u128(1);
        let day = 24 * 60 * 60_000;
        assert_eq!(soft.get(w, Timestamp(0)), (500, 0));
        soft.scores.insert(w, 91);
        for at in [0, 5 * day, 6 * day] {
            soft.accepted(w, Timestamp(at));
        }
        // Seven days after the first slot, all three count; a day later, the first is old.
        assert_eq!(soft.get(w, Timestamp(7 * day)), (455, 3));
        assert_eq!(soft.get(w, Timestamp(8 * day)), (455, 2));
        soft.scores.insert(w, -40);
        assert_eq!(soft.get(w, Timestamp(8 * day)).0, 0);
        soft.scores.insert(w, 500);
        assert_eq!(soft.get(w, Timestamp(8 * day)).0, 1000);
    }
}
