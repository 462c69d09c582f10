//! [`NotifyHub`]: every worker notification stream of the process served by one shared
//! pipeline.
//!
//! One task (the hub) follows `$all` filtered to the order streams and the workers' credit
//! streams, decodes each event once and hands it to the watchers it concerns, found through
//! two indexes: by worker (the workers the event names, or whose credit stream it is) and by
//! order (the watchers whose worker is involved in the order, for cancellations, disputes,
//! replans and slots taken by someone else). An event costs O(watchers concerned), not
//! O(watchers).
//!
//! A stream that starts behind the hub (`after_position` in the past) is caught up in the
//! background: waiting catch-ups are gathered into one batch that reads the history once,
//! in pages through the store's reads (the blocking pool), decodes each event once and fans it
//! out with the same indexes; at most [`NotifyConfig::catch_ups`] batches run at once. When a
//! batch reaches the end of the log it hands its watchers to the hub, which takes them if it
//! has not seen an event the batch has not (positions of matching events are compared), and
//! sends the batch on reading otherwise: no gap, no duplicate. Nothing of this runs on the
//! request path: `WatchNotifications` only registers the stream.
//!
//! Every stream has a budget in bytes of notifications queued and not yet taken by its client
//! ([`NotifyConfig::stream_budget_bytes`]). A stream that would pass it is ended with
//! RESOURCE_EXHAUSTED ("notification stream fell behind; reconnect with after_position=P"),
//! P being the position of the last notification queued before it (its client has them all,
//! in order, before the status): resuming from P loses nothing. All streams together have a
//! budget too ([`NotifyConfig::total_budget_bytes`]): past it, a stream that has notifications
//! waiting is ended the same way when it would queue one more (a stream with none waiting may
//! always take one, so the overshoot is at most one notification per stream).
//!
//! The hub's maps are owned by its task (and by a batch's task while it catches up), not
//! shared behind a lock: registrations, departures and hand-overs are messages to the task.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use daojia_domain::{OrderId, WorkerId};
use daojia_projections::decode::{self, DomainRecord};
use daojia_store::{
    AllOptions, AllStart, Direction, EventStore, EventSubscription, Filter, FilterTarget, Position,
    RecordedEvent, SubscribeFrom, SubscriptionItem,
};
use prost::Message;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_stream::Stream;
use tonic::Status;

use crate::notifications::{Known, Watcher, concerned_workers, credit_stream_worker};
use crate::pb;
use crate::status::ApiError;
use crate::store_backend::Store;

/// Settings of the notification pipeline (`daojia serve` flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyConfig {
    /// Most bytes of notifications one stream may have queued for its client; past it the
    /// stream is ended with a status saying where to resume.
    pub stream_budget_bytes: usize,
    /// Most bytes of notifications all streams together may have queued for their clients;
    /// past it a stream with notifications waiting is ended when it would queue another.
    pub total_budget_bytes: usize,
    /// Most catch-up batches reading history at once.
    pub catch_ups: usize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            stream_budget_bytes: 256 << 10,
            total_budget_bytes: 256 << 20,
            catch_ups: 4,
        }
    }
}

/// Bytes of notifications queued across every stream, and their budget.
#[derive(Debug)]
struct AllQueued {
    bytes: AtomicUsize,
    limit: usize,
}

impl AllQueued {
    fn new(limit: usize) -> Arc<Self> {
        Arc::new(AllQueued {
            bytes: AtomicUsize::new(0),
            limit,
        })
    }
}

/// Events read per page by a catch-up batch (it yields between pages).
const PAGE: usize = 512;

/// Bytes counted per queued notification on top of its encoded size (the queue's node, the
/// `Result` around it).
const OVERHEAD: usize = 96;

/// The stream handed to tonic: the notifications queued for one watcher.
pub struct NotificationStream {
    rx: mpsc::UnboundedReceiver<Result<pb::WorkerNotification, Status>>,
    queued: Arc<AtomicUsize>,
    all: Arc<AllQueued>,
    drained: Arc<Notify>,
    id: u64,
    hub: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for NotificationStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationStream")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Stream for NotificationStream {
    type Item = Result<pb::WorkerNotification, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(Ok(n))) = &polled {
            let size = cost(n);
            self.queued.fetch_sub(size, Ordering::Relaxed);
            self.all.bytes.fetch_sub(size, Ordering::Relaxed);
            self.drained.notify_one();
        }
        polled
    }
}

impl Drop for NotificationStream {
    fn drop(&mut self) {
        // The client went away: the hub forgets the watcher (a batch notices on its own, the
        // receiver being closed first).
        self.rx.close();
        // What the client never took leaves the total (nothing is queued after `close`).
        while let Ok(item) = self.rx.try_recv() {
            if let Ok(n) = item {
                self.all.bytes.fetch_sub(cost(&n), Ordering::Relaxed);
            }
        }
        let _ = self.hub.send(Command::Leave(self.id));
    }
}

fn cost(n: &pb::WorkerNotification) -> usize {
    n.encoded_len() + OVERHEAD
}

/// Where one watcher's notifications go.
#[derive(Debug)]
struct Sink {
    tx: mpsc::UnboundedSender<Result<pb::WorkerNotification, Status>>,
    queued: Arc<AtomicUsize>,
    /// Every stream's queued bytes together.
    all: Arc<AllQueued>,
    /// Told each time the client takes a notification.
    drained: Arc<Notify>,
    budget: usize,
}

impl Sink {
    /// Whether a parked watcher may rejoin: its client has read half its queue, and either
    /// the total is back under half its budget or this queue is empty (a stream with nothing
    /// waiting always gets one notification through).
    fn room(&self) -> bool {
        let queued = self.queued.load(Ordering::Relaxed);
        queued <= self.budget / 2
            && (queued == 0 || self.all.bytes.load(Ordering::Relaxed) <= self.all.limit / 2)
    }
}

/// What became of a notification handed to a [`Sink`].
enum Pushed {
    Queued,
    /// The client went away.
    Gone,
    /// Over budget: the stream was ended with the resume status.
    Behind,
    /// Over budget while catching up: the notification is held, the stream waits.
    Held,
}

/// One notification stream as the hub sees it.
#[derive(Debug)]
struct Watch {
    watcher: Watcher,
    /// Events at or before this position were already accounted for (the stream's start, or
    /// what a catch-up read); `None`: none.
    skip_through: Option<Position>,
    /// The last notification queued, or the stream's start: where a cut stream resumes.
    resume_after: Position,
    /// A notification that did not fit while catching up, queued first when the stream
    /// rejoins.
    held: Option<pb::WorkerNotification>,
    sink: Sink,
}

impl Watch {
    /// Queues `n`; past the budget, ends the stream (live) or holds `n` (`hold`: catching
    /// up, where the reader is not slow, history is just faster than any reader).
    fn push(&mut self, n: pb::WorkerNotification, hold: bool) -> Pushed {
        let size = cost(&n);
        let position = Position(n.position);
        let queued = self.sink.queued.load(Ordering::Relaxed);
        let all = &self.sink.all;
        let over_own = queued + size > self.sink.budget;
        let over_all = all.bytes.load(Ordering::Relaxed) + size > all.limit;
        if queued > 0 && (over_own || over_all) {
            if hold {
                self.held = Some(n);
                return Pushed::Held;
            }
            let status = if over_own {
                ApiError::FellBehind {
                    resume_after: self.resume_after,
                    budget_bytes: self.sink.budget,
                }
            } else {
                ApiError::NotificationsFull {
                    resume_after: self.resume_after,
                    total_budget_bytes: all.limit,
                }
            };
            let _ = self.sink.tx.send(Err(status.into()));
            return Pushed::Behind;
        }
        self.sink.queued.fetch_add(size, Ordering::Relaxed);
        all.bytes.fetch_add(size, Ordering::Relaxed);
        if self.sink.tx.send(Ok(n)).is_err() {
            self.sink.queued.fetch_sub(size, Ordering::Relaxed);
            all.bytes.fetch_sub(size, Ordering::Relaxed);
            return Pushed::Gone;
        }
        self.resume_after = position;
        Pushed::Queued
    }
}

/// Watchers indexed by worker and by order: the live set of the hub, or a catch-up batch.
#[derive(Debug, Default)]
struct Fanout {
    /// A catch-up batch's way back to the hub: a watcher whose queue is full is parked until
    /// its client has read half of it, then rejoins from where it stopped. `None` (live): a
    /// watcher whose queue is full is ended.
    park: Option<mpsc::UnboundedSender<Command>>,
    watchers: HashMap<u64, Watch>,
    by_worker: HashMap<WorkerId, Vec<u64>>,
    by_order: HashMap<OrderId, Vec<u64>>,
}

impl Fanout {
    fn insert(&mut self, id: u64, watch: Watch) {
        self.by_worker
            .entry(watch.watcher.worker)
            .or_default()
            .push(id);
        for order in &watch.watcher.known.involved {
            self.by_order.entry(*order).or_default().push(id);
        }
        self.watchers.insert(id, watch);
    }

    fn remove(&mut self, id: u64) -> Option<Watch> {
        let watch = self.watchers.remove(&id)?;
        if let Some(ids) = self.by_worker.get_mut(&watch.watcher.worker) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_worker.remove(&watch.watcher.worker);
            }
        }
        for order in &watch.watcher.known.involved {
            if let Some(ids) = self.by_order.get_mut(order) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.by_order.remove(order);
                }
            }
        }
        Some(watch)
    }

    /// Moves `other`'s watchers in (dropping those whose client has gone), each skipping
    /// events at or before `through`.
    fn absorb(&mut self, other: Fanout, through: Option<Position>) {
        for (id, mut watch) in other.watchers {
            if watch.sink.tx.is_closed() {
                continue;
            }
            watch.skip_through = watch.skip_through.max(through);
            self.insert(id, watch);
        }
    }

    /// Hands `event` to the watchers it concerns.
    fn deliver(&mut self, event: &RecordedEvent) {
        let Ok(record) = decode::decode(event) else {
            return;
        };
        let mut ids: Vec<u64> = Vec::new();
        let order = match &record {
            DomainRecord::Order(order, e) => {
                for worker in concerned_workers(e) {
                    if let Some(w) = self.by_worker.get(worker) {
                        ids.extend_from_slice(w);
                    }
                }
                if let Some(w) = self.by_order.get(order) {
                    ids.extend_from_slice(w);
                }
                Some(*order)
            }
            DomainRecord::Credit(_) => {
                let Some(worker) = credit_stream_worker(event.stream()) else {
                    return;
                };
                if let Some(w) = self.by_worker.get(&worker) {
                    ids.extend_from_slice(w);
                }
                None
            }
            _ => return,
        };
        if ids.is_empty() {
            return;
        }
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let Some(watch) = self.watchers.get_mut(&id) else {
                continue;
            };
            if watch.skip_through.is_some_and(|s| event.position <= s) {
                continue;
            }
            let notification = watch.watcher.notification(event, &record);
            let newly_involved = order.filter(|o| watch.watcher.known.involved.contains(o));
            let pushed = notification.map(|n| watch.push(n, self.park.is_some()));
            if let Some(order) = newly_involved {
                let ids = self.by_order.entry(order).or_default();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            match pushed {
                Some(Pushed::Gone | Pushed::Behind) => {
                    self.remove(id);
                }
                Some(Pushed::Held) => {
                    if let (Some(mut watch), Some(hub)) = (self.remove(id), self.park.clone()) {
                        watch.skip_through = Some(event.position);
                        tokio::spawn(park(id, event.position, watch, hub));
                    }
                }
                Some(Pushed::Queued) | None => {}
            }
        }
    }
}

/// Waits until the client of a held watcher has read half its budget (or gone, or the hub
/// stopped), then has it
/// rejoin after `at` (the event whose notification it holds).
async fn park(id: u64, at: Position, watch: Watch, hub: mpsc::UnboundedSender<Command>) {
    loop {
        if watch.sink.tx.is_closed() {
            return;
        }
        if watch.sink.room() {
            let _ = hub.send(Command::Join {
                id,
                after: Some(at),
                watch,
            });
            return;
        }
        // The hub stopping (shutdown) ends the stream too.
        tokio::select! {
            () = watch.sink.drained.notified() => {}
            () = watch.sink.tx.closed() => return,
            () = hub.closed() => return,
        }
    }
}

/// Messages to the hub's task.
enum Command {
    /// A new stream, starting after the given position (`None`: from the first event).
    Join {
        id: u64,
        after: Option<Position>,
        watch: Watch,
    },
    /// A stream's client went away.
    Leave(u64),
    /// A catch-up batch has read through `through` and reached the end of the log.
    HandOver {
        batch: Fanout,
        through: Option<Position>,
        taken: oneshot::Sender<Result<(), Fanout>>,
    },
}

/// A handle to the process's notification pipeline, given to `WorkerApp`.
#[derive(Clone, Debug)]
pub struct NotifyHub {
    commands: mpsc::UnboundedSender<Command>,
    ids: Arc<AtomicU64>,
    config: NotifyConfig,
    all: Arc<AllQueued>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Join { id, after, .. } => write!(f, "Join({id}, {after:?})"),
            Command::Leave(id) => write!(f, "Leave({id})"),
            Command::HandOver { through, .. } => write!(f, "HandOver({through:?})"),
        }
    }
}

impl NotifyHub {
    /// Bytes of notifications queued for all streams' clients now.
    pub fn queued_bytes(&self) -> usize {
        self.all.bytes.load(Ordering::Relaxed)
    }

    /// Streams `worker`'s notifications of the events after `after` (all of them when
    /// `None`), knowing `known` of the worker's orders as of there.
    pub fn watch(
        &self,
        worker: WorkerId,
        after: Option<Position>,
        known: Known,
    ) -> Result<NotificationStream, ApiError> {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let all = self.all.clone();
        let drained = Arc::new(Notify::new());
        let watch = Watch {
            watcher: Watcher { worker, known },
            skip_through: after,
            resume_after: after.unwrap_or(Position::START),
            held: None,
            sink: Sink {
                tx,
                queued: queued.clone(),
                all: all.clone(),
                drained: drained.clone(),
                budget: self.config.stream_budget_bytes,
            },
        };
        self.commands
            .send(Command::Join { id, after, watch })
            .map_err(|_| {
                ApiError::Store(daojia_store::StoreError::Unavailable(
                    "the notification hub has stopped".into(),
                ))
            })?;
        Ok(NotificationStream {
            rx,
            queued,
            all,
            drained,
            id,
            hub: self.commands.clone(),
        })
    }
}

/// The hub's task, stopped at shutdown (after it the store can close).
#[derive(Debug)]
pub struct HubTask {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl HubTask {
    /// Stops the hub and its catch-ups; every open stream ends.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(e) = (&mut self.task).await {
            tracing::warn!(error = %e, "the notification hub's task failed");
        }
    }
}

/// The filter of the hub and of its catch-ups: order streams and credit streams of workers.
fn filter() -> Result<Filter, ApiError> {
    Filter::prefixes(
        FilterTarget::StreamName,
        [
            format!("{}-", OrderId::CATEGORY),
            format!("{}-", WorkerId::CATEGORY),
        ],
    )
    .map_err(|e| ApiError::Store(e.into()))
}

/// Starts the hub over `store`; streams end when `end` turns true (the server drains).
pub fn spawn(
    store: Store,
    config: NotifyConfig,
    end: watch::Receiver<bool>,
) -> (NotifyHub, HubTask) {
    let (commands, inbox) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel();
    let hub = NotifyHub {
        commands: commands.clone(),
        ids: Arc::new(AtomicU64::new(0)),
        config,
        all: AllQueued::new(config.total_budget_bytes),
    };
    let task = tokio::spawn(run(store, config, inbox, commands, stopped, end));
    (
        hub,
        HubTask {
            stop: Some(stop),
            task,
        },
    )
}

/// The position of the last event the hub's filter matches, if any (paging backwards: a
/// filtered read stops after a bounded scan).
async fn last_matching(store: &Store, filter: &Filter) -> Result<Option<Position>, ApiError> {
    let mut start = AllStart::Edge;
    loop {
        let page = store
            .read_all(Direction::Backwards, start, 1, Some(filter.clone()))
            .await?;
        if let Some(e) = page.events.first() {
            return Ok(Some(e.position));
        }
        if page.end_of_log {
            return Ok(None);
        }
        start = AllStart::Position(page.next);
    }
}

async fn run(
    store: Store,
    config: NotifyConfig,
    mut inbox: mpsc::UnboundedReceiver<Command>,
    commands: mpsc::UnboundedSender<Command>,
    mut stopped: oneshot::Receiver<()>,
    mut end: watch::Receiver<bool>,
) {
    let started = async {
        let filter = filter()?;
        let head = last_matching(&store, &filter).await?;
        let from = head.map_or(SubscribeFrom::Start, SubscribeFrom::After);
        let subscription = store
            .subscribe_all(
                from,
                AllOptions {
                    filter: Some(filter.clone()),
                    checkpoint_interval: 0,
                },
            )
            .await?;
        Ok::<_, ApiError>((filter, head, subscription))
    };
    let (filter, mut head, mut subscription) = match started.await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the notification hub cannot start; notification streams are refused");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(config.catch_ups.max(1)));
    let mut live = Fanout::default();
    let mut waiting = Fanout::default();
    let mut waiting_from: Option<Option<Position>> = None;
    let mut batches = tokio::task::JoinSet::new();
    let (batch_end, batches_end) = watch::channel(false);
    loop {
        tokio::select! {
            biased;
            _ = &mut stopped => break,
            _ = end.wait_for(|end| *end) => break,
            command = inbox.recv() => match command {
                Some(Command::Join { id, after, mut watch }) => {
                    if let Some(n) = watch.held.take() {
                        // A parked watcher rejoining: its held notification goes first.
                        if !matches!(watch.push(n, false), Pushed::Queued) {
                            continue;
                        }
                    }
                    if after >= head {
                        live.insert(id, watch);
                    } else {
                        waiting_from = Some(waiting_from.map_or(after, |f| f.min(after)));
                        waiting.insert(id, watch);
                    }
                }
                Some(Command::Leave(id)) => {
                    if live.remove(id).is_none() {
                        waiting.remove(id);
                    }
                }
                Some(Command::HandOver { batch, through, taken }) => {
                    if through >= head {
                        live.absorb(batch, through);
                        let _ = taken.send(Ok(()));
                    } else {
                        let _ = taken.send(Err(batch));
                    }
                }
                None => break,
            },
            permit = slots.clone().acquire_owned(), if !waiting.watchers.is_empty() => {
                let Ok(permit) = permit else { break };
                let mut batch = std::mem::take(&mut waiting);
                batch.park = Some(commands.clone());
                let from = waiting_from.take().flatten();
                tracing::debug!(watchers = batch.watchers.len(), ?from, "notification catch-up starts");
                batches.spawn(catch_up(
                    store.clone(),
                    filter.clone(),
                    batch,
                    from,
                    commands.clone(),
                    batches_end.clone(),
                    permit,
                ));
            }
            Some(_) = batches.join_next(), if !batches.is_empty() => {}
            item = subscription.next() => match item {
                Some(Ok(SubscriptionItem::Event(event))) => {
                    live.deliver(&event);
                    head = head.max(Some(event.position));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::error!(error = %e, "the notification hub's subscription failed; open streams end");
                    let status = Status::from(ApiError::Store(e));
                    for watch in live.watchers.values() {
                        let _ = watch.sink.tx.send(Err(status.clone()));
                    }
                    break;
                }
                None => break,
            },
        }
    }
    let _ = batch_end.send(true);
    drop(subscription);
    batches.shutdown().await;
    drop(store);
    tracing::debug!("notification hub stopped");
}

/// Catches `batch` up from `from` to the end of the log, then hands it to the hub.
async fn catch_up(
    store: Store,
    filter: Filter,
    mut batch: Fanout,
    from: Option<Position>,
    hub: mpsc::UnboundedSender<Command>,
    mut end: watch::Receiver<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let mut through = from;
    let mut start = from.map_or(AllStart::Edge, AllStart::Position);
    loop {
        if *end.borrow() {
            return;
        }
        let page = tokio::select! {
            _ = end.wait_for(|end| *end) => return,
            page = store.read_all(Direction::Forwards, start, PAGE, Some(filter.clone())) => page,
        };
        let page = match page {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "a notification catch-up failed; its streams end");
                let status = Status::from(ApiError::Store(e));
                for watch in batch.watchers.values() {
                    let _ = watch.sink.tx.send(Err(status.clone()));
                }
                return;
            }
        };
        for event in &page.events {
            if through.is_some_and(|t| event.position <= t) {
                continue;
            }
            batch.deliver(event);
            through = Some(event.position);
        }
        batch.watchers.retain(|_, w| !w.sink.tx.is_closed());
        if batch.watchers.is_empty() {
            return;
        }
        start = AllStart::Position(page.next);
        if page.end_of_log {
            let (taken, answer) = oneshot::channel();
            if hub
                .send(Command::HandOver {
                    batch,
                    through,
                    taken,
                })
                .is_err()
            {
                return;
            }
            match answer.await {
                Ok(Ok(())) | Err(_) => return,
                // The hub has seen events past the batch's: read them too.
                Ok(Err(back)) => batch = back,
            }
        }
        tokio::task::yield_now().await;
    }
}

/// The hub of a running server, set once the store is open (streams are refused before).
#[derive(Clone, Debug, Default)]
pub struct NotifyHubSlot(Arc<OnceLock<NotifyHub>>);

impl NotifyHubSlot {
    /// The hub, or UNAVAILABLE while the store is still opening.
    pub fn get(&self) -> Result<&NotifyHub, ApiError> {
        self.0.get().ok_or(ApiError::StoreOpening)
    }

    /// Fills the slot; a second call is ignored.
    pub(crate) fn set(&self, hub: NotifyHub) {
        let _ = self.0.set(hub);
    }
}

#[cfg(test)]
mod tests {
    use daojia_domain::credit::{CreditEvent, Subject};
    use daojia_domain::order::{OrderEvent, SlotIndex, TakenVia};
    use daojia_domain::{DomainEvent, Timestamp};
    use daojia_store::{ContentType, EventId, Revision};

    use super::*;

    const A: WorkerId = WorkerId::from_u128(0xA);
    const B: WorkerId = WorkerId::from_u128(0xB);
    const C: WorkerId = WorkerId::from_u128(0xC);
    const O: OrderId = OrderId::from_u128(0xF0);

    type Rx = mpsc::UnboundedReceiver<Result<pb::WorkerNotification, Status>>;

    fn recorded<E: DomainEvent>(stream: &str, position: u64, event: &E) -> RecordedEvent {
        let encoded = daojia_domain::events::encode(event).unwrap();
        RecordedEvent::new(
            stream,
            Revision(0),
            Position(position),
            EventId::from_u128(u128::from(position)),
            &encoded.event_type,
            ContentType::Json,
            0,
            b"",
            &serde_json::to_vec(&encoded.data).unwrap(),
        )
    }

    fn join(
        fanout: &mut Fanout,
        id: u64,
        worker: WorkerId,
        skip: Option<u64>,
        budget: usize,
    ) -> Rx {
        join_sharing(fanout, id, worker, skip, budget, AllQueued::new(usize::MAX))
    }

    fn join_sharing(
        fanout: &mut Fanout,
        id: u64,
        worker: WorkerId,
        skip: Option<u64>,
        budget: usize,
        all: Arc<AllQueued>,
    ) -> Rx {
        let (tx, rx) = mpsc::unbounded_channel();
        let watch = Watch {
            watcher: Watcher {
                worker,
                known: Known::default(),
            },
            skip_through: skip.map(Position),
            resume_after: Position(skip.unwrap_or(0)),
            held: None,
            sink: Sink {
                tx,
                queued: Arc::default(),
                all,
                drained: Arc::default(),
                budget,
            },
        };
        fanout.insert(id, watch);
        rx
    }

    fn drain(rx: &mut Rx) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        while let Ok(n) = rx.try_recv() {
            let n = n.unwrap();
            out.push((n.position, n.summary));
        }
        out
    }

    fn offered(worker: WorkerId) -> OrderEvent {
        OrderEvent::OrderOffered {
            slot: SlotIndex(0),
            worker,
            offered_at: Timestamp(0),
            expires_at: Timestamp(60_000),
        }
    }

    #[test]
    fn an_event_reaches_the_streams_it_concerns_through_the_worker_and_order_indexes() {
        let mut live = Fanout::default();
        let mut a1 = join(&mut live, 1, A, None, 1 << 20);
        let mut a2 = join(&mut live, 2, A, None, 1 << 20);
        let mut b = join(&mut live, 3, B, None, 1 << 20);
        let mut late = join(&mut live, 4, A, Some(10), 1 << 20);
        let order = O.stream_name();
        live.deliver(&recorded(&order, 10, &offered(A)));
        let accepted = OrderEvent::OrderAccepted {
            slot: SlotIndex(0),
            worker: B,
            via: TakenVia::Grab,
            at: Timestamp(1),
        };
        live.deliver(&recorded(&order, 11, &accepted));
        let training = CreditEvent::TrainingCompleted {
            subject: Subject::Worker(B),
            course: "c".into(),
            at: Timestamp(2),
        };
        live.deliver(&recorded(&B.stream_name(), 12, &training));
        let expected_a = vec![
            (
                10,
                "new offer for slot 0: accept before it lapses".to_owned(),
            ),
            (11, "slot 0 was taken by another worker".to_owned()),
        ];
        assert_eq!(drain(&mut a1), expected_a);
        assert_eq!(drain(&mut a2), expected_a);
        assert_eq!(
            drain(&mut b),
            vec![
                (11, "slot 0 is yours".to_owned()),
                (
                    12,
                    "retraining recorded: you receive offers again".to_owned()
                ),
            ]
        );
        // The late stream had the offer already (it started after it) and so holds no
        // pending offer: the slot taken by B is none of its business.
        assert_eq!(drain(&mut late), vec![]);
        assert_eq!(live.by_order.get(&O).map(Vec::len), Some(3));
    }

    #[test]
    fn a_live_stream_past_its_budget_ends_with_where_to_resume() {
        let mut live = Fanout::default();
        let mut c = join(&mut live, 1, C, Some(5), 1);
        live.deliver(&recorded(
            &OrderId::from_u128(1).stream_name(),
            20,
            &offered(C),
        ));
        live.deliver(&recorded(
            &OrderId::from_u128(2).stream_name(),
            21,
            &offered(C),
        ));
        assert_eq!(c.try_recv().unwrap().unwrap().position, 20);
        let status = c.try_recv().unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status
                .message()
                .starts_with("notification stream fell behind; reconnect with after_position=20"),
            "{status:?}"
        );
        assert!(live.watchers.is_empty() && live.by_worker.is_empty());
        // The stream ended: nothing follows the status.
        live.deliver(&recorded(
            &OrderId::from_u128(3).stream_name(),
            22,
            &offered(C),
        ));
        assert!(c.try_recv().is_err());
    }

    #[test]
    fn past_the_total_budget_a_stream_with_notifications_waiting_ends_and_an_empty_one_does_not() {
        let mut live = Fanout::default();
        // Room in total for about one notification: each stream's own budget is ample.
        let all = AllQueued::new(400);
        let mut a = join_sharing(&mut live, 1, A, Some(5), 1 << 20, all.clone());
        let mut b = join_sharing(&mut live, 2, B, Some(5), 1 << 20, all.clone());
        let order = |n| OrderId::from_u128(n).stream_name();
        live.deliver(&recorded(&order(1), 20, &offered(A)));
        let after_one = all.bytes.load(Ordering::Relaxed);
        assert!(after_one > 0 && after_one <= 400, "{after_one}");
        // B has nothing waiting: it gets its notification although the total is passed.
        live.deliver(&recorded(&order(2), 21, &offered(B)));
        // A has one waiting: it is ended, told where to resume.
        live.deliver(&recorded(&order(3), 22, &offered(A)));
        assert_eq!(a.try_recv().unwrap().unwrap().position, 20);
        let status = a.try_recv().unwrap().unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status
                .message()
                .contains("reconnect with after_position=20"),
            "{status:?}"
        );
        assert!(!live.watchers.contains_key(&1) && live.watchers.contains_key(&2));
        assert_eq!(b.try_recv().unwrap().unwrap().position, 21);
    }

    #[test]
    fn a_dropped_stream_gives_back_what_its_client_never_took() {
        let all = AllQueued::new(usize::MAX);
        let (tx, rx) = mpsc::unbounded_channel();
        let (hub, _inbox) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let mut watch = Watch {
            watcher: Watcher {
                worker: A,
                known: Known::default(),
            },
            skip_through: None,
            resume_after: Position::START,
            held: None,
            sink: Sink {
                tx,
                queued: queued.clone(),
                all: all.clone(),
                drained: Arc::default(),
                budget: 1 << 20,
            },
        };
        let n = pb::WorkerNotification {
            position: 7,
            summary: "x".repeat(100),
            ..Default::default()
        };
        assert!(matches!(watch.push(n.clone(), false), Pushed::Queued));
        assert!(matches!(watch.push(n, false), Pushed::Queued));
        assert!(all.bytes.load(Ordering::Relaxed) > 200);
        let stream = NotificationStream {
            rx,
            queued,
            all: all.clone(),
            drained: Arc::default(),
            id: 1,
            hub,
        };
        drop(stream);
        assert_eq!(all.bytes.load(Ordering::Relaxed), 0);
        // Pushing after the client left undoes its own count.
        let n = pb::WorkerNotification::default();
        assert!(matches!(watch.push(n, false), Pushed::Gone));
        assert_eq!(all.bytes.load(Ordering::Relaxed), 0);
    }
}
