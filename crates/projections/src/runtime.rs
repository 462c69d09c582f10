//! The projector runtime: one task per projection subscribes to `$all`, applies every event in
//! commit order, and publishes the position it has applied up to.
//!
//! Position: the position of the last applied event. Every event of `$all` advances it,
//! including events the read model ignores (system streams, unknown types), so that "applied up
//! to `p`" means "has seen every event at or below `p`".
//!
//! Checkpoints ([`Projector::spawn_with`]): the model is snapshotted with its position to a file
//! (see [`crate::checkpoint`] for the format) every so many events or so often, after
//! each rebuild and on request; a projector started over the same log loads it and resumes its
//! subscription after that position. Writing happens off the hot path: the model is cloned
//! under its read lock, and serialising and writing run on the blocking pool, one at a time.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use daojia_store::{
    AllOptions, AllStart, Direction, EventId, EventStore, EventSubscription, Position,
    RecordedEvent, SubscribeFrom, SubscriptionItem,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::checkpoint::{self, CheckpointConfig, Mark, Unusable};
use crate::{DomainRecord, ProjectionError};

/// How many events a rebuild reads per page.
const REBUILD_PAGE: usize = 1_024;

/// Consecutive failed subscriptions (without an event applied in between) before the projector
/// gives up and stops.
pub const MAX_RETRIES: u32 = 5;

/// The wait before the first retry; each further retry doubles it.
const RETRY_FIRST_DELAY: Duration = Duration::from_millis(100);

/// A read model fed from `$all`.
pub trait Projection: Send + Sync + 'static {
    /// A stable name (used in errors, metrics and the admin "rebuild" command).
    fn name(&self) -> &str;

    /// Applies one event. Called once per event of `$all`, in commit order. Events that are
    /// not for this model (system streams, unknown or malformed types) are ignored: a stored
    /// event is a fact, and a read model never refuses one.
    fn apply(&mut self, event: &RecordedEvent);
}

/// A read model over domain events: a [`Projection`] that sees each event already decoded
/// (see [`decode`](crate::decode::decode)); events that do not decode are not shown to it.
pub trait ReadModel: Send + Sync + 'static {
    /// The projection's name.
    const NAME: &'static str;

    /// Applies one decoded event (`event` is the stored event it came from).
    fn apply_record(&mut self, record: &DomainRecord, event: &RecordedEvent);
}

impl<M: ReadModel> Projection for M {
    fn name(&self) -> &str {
        M::NAME
    }

    fn apply(&mut self, event: &RecordedEvent) {
        if let Ok(record) = crate::decode::decode(event) {
            self.apply_record(&record, event);
        }
    }
}

/// Where a projector is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Position of the last applied event (`Position::START` before the first).
    pub applied: Position,
    /// Events applied since the model was (re)built or, after a restart from a checkpoint,
    /// since the checkpoint's position.
    pub events: u64,
    /// The subscription has delivered all history at least once (it is live).
    pub caught_up: bool,
    /// Completed rebuilds.
    pub rebuilds: u64,
    /// The last subscription failure, if any (the projector retries, see [`MAX_RETRIES`]).
    pub last_error: Option<String>,
    /// Set once the projector has stopped, with the reason.
    pub stopped: Option<String>,
    /// Position of the last checkpoint written or loaded (`None`: none yet, or checkpoints off).
    pub checkpoint: Option<Position>,
    /// The checkpoint position this projector resumed from at start (`None`: it replayed `$all`
    /// from position 0).
    pub restored_from: Option<Position>,
}

/// How far a projection is behind the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lag {
    /// Position of the newest committed event (`Position::START` for an empty store).
    pub head: Position,
    /// Position of the last applied event.
    pub applied: Position,
    /// `head − applied` in position units (log bytes for the embedded store); 0 when caught up.
    pub behind: u64,
    /// Position of the last persisted checkpoint, if any.
    pub checkpoint: Option<Position>,
}

enum Command {
    Rebuild(oneshot::Sender<Result<Position, ProjectionError>>),
    Checkpoint(oneshot::Sender<Result<Option<Position>, ProjectionError>>),
}

/// How a projector snapshots its model: the configuration plus the serde functions of the
/// model type, captured by [`Projector::spawn_with`] (so [`Projector::spawn`] needs no serde).
struct Checkpoints<P> {
    config: CheckpointConfig,
    /// crc32c of the empty model as JSON: a snapshot taken with another configuration of the
    /// model (which `make` bakes into the empty model) is not resumed.
    model_config: u32,
    clone: fn(&P) -> P,
    encode: fn(&P, &mut dyn std::io::Write) -> std::io::Result<()>,
    decode: fn(&[u8]) -> Result<P, String>,
}

fn encode_json<P: Serialize>(model: &P, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer(out, model).map_err(std::io::Error::from)
}

fn decode_json<P: DeserializeOwned>(bytes: &[u8]) -> Result<P, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

struct Inner<P> {
    name: String,
    /// The read model. A std lock: it is held only to apply one event or to answer one query,
    /// never across an `.await`, so readers and the single writer task never wait long.
    model: RwLock<P>,
    /// Progress, published after each applied event; waiters watch it.
    progress: watch::Sender<Progress>,
    /// Checkpoint settings; `None` when checkpoints are off.
    checkpoints: Option<Checkpoints<P>>,
}

/// A running projection: the handle queries go through. Dropping it stops the task.
pub struct Projector<P, S> {
    inner: Arc<Inner<P>>,
    store: Arc<S>,
    commands: mpsc::UnboundedSender<Command>,
    /// The projector task; aborted when the handle is dropped or stopped.
    task: JoinHandle<()>,
}

impl<P, S> Drop for Projector<P, S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<P, S> std::fmt::Debug for Projector<P, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("name", &self.inner.name)
            .field("progress", &*self.inner.progress.borrow())
            .finish_non_exhaustive()
    }
}

impl<P: Projection, S: EventStore> Projector<P, S> {
    /// Starts a projection over `store` from position 0 on the current tokio runtime.
    /// `make` builds an empty model (at start and for each rebuild).
    pub fn spawn<F>(store: Arc<S>, make: F) -> Self
    where
        F: Fn() -> P + Send + Sync + 'static,
    {
        Self::start(store, make, None)
    }

    fn start<F>(store: Arc<S>, make: F, checkpoints: Option<Checkpoints<P>>) -> Self
    where
        F: Fn() -> P + Send + Sync + 'static,
    {
        let model = make();
        let inner = Arc::new(Inner {
            name: model.name().to_owned(),
            model: RwLock::new(model),
            progress: watch::Sender::new(Progress::default()),
            checkpoints,
        });
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(store.clone(), inner.clone(), make, rx));
        Projector {
            inner,
            store,
            commands,
            task,
        }
    }

    /// Stops the projector task and waits until it has ended, so that it no longer holds the
    /// store (the server closes the store after this).
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The position of the last applied event (the checkpoint).
    pub fn position(&self) -> Position {
        self.inner.progress.borrow().applied
    }

    /// A snapshot of the projector's progress.
    pub fn progress(&self) -> Progress {
        self.inner.progress.borrow().clone()
    }

    /// Answers a query from the model as it is now.
    pub fn read<R>(&self, query: impl FnOnce(&P) -> R) -> R {
        query(
            &self
                .inner
                .model
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Waits until every event at or below `min` has been applied, at most `timeout`.
    /// Returns the applied position (at least `min`).
    pub async fn wait_for(
        &self,
        min: Position,
        timeout: Duration,
    ) -> Result<Position, ProjectionError> {
        let mut rx = self.inner.progress.subscribe();
        let reached = rx.wait_for(|p| p.applied >= min || p.stopped.is_some());
        let progress = match tokio::time::timeout(timeout, reached).await {
            Ok(Ok(progress)) => progress.clone(),
            // The sender lives in `inner`, which we hold: it cannot be dropped.
            Ok(Err(_)) => self.progress(),
            Err(_) => {
                return Err(ProjectionError::Timeout {
                    projection: self.inner.name.clone(),
                    wanted: min,
                    applied: self.position(),
                    waited: timeout,
                });
            }
        };
        if progress.applied >= min {
            return Ok(progress.applied);
        }
        Err(self.stopped_error(progress.stopped))
    }

    /// [`wait_for`](Self::wait_for) `min`, then answers `query` (read-your-writes).
    pub async fn read_at<R>(
        &self,
        min: Position,
        timeout: Duration,
        query: impl FnOnce(&P) -> R,
    ) -> Result<R, ProjectionError> {
        self.wait_for(min, timeout).await?;
        Ok(self.read(query))
    }

    /// How far the model is behind the newest committed event.
    pub async fn lag(&self) -> Result<Lag, ProjectionError> {
        let applied = self.position();
        let last = self
            .store
            .read_all(Direction::Backwards, AllStart::Edge, 1, None)
            .await
            .map_err(|source| ProjectionError::Store {
                projection: self.inner.name.clone(),
                source,
            })?;
        let head = last.events.first().map_or(Position::START, |e| e.position);
        Ok(Lag {
            head,
            applied,
            behind: head.0.saturating_sub(applied.0),
            checkpoint: self.inner.progress.borrow().checkpoint,
        })
    }

    /// Writes a checkpoint of the model as it is now and waits until it is durable. Returns its
    /// position, or `None` when checkpoints are off or no event has been applied yet.
    pub async fn checkpoint(&self) -> Result<Option<Position>, ProjectionError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || self.stopped_error(self.progress().stopped);
        self.commands
            .send(Command::Checkpoint(tx))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Waits until a checkpoint at or after `min` has been written, at most `timeout`.
    pub async fn wait_for_checkpoint(
        &self,
        min: Position,
        timeout: Duration,
    ) -> Result<Position, ProjectionError> {
        let mut rx = self.inner.progress.subscribe();
        let reached = rx.wait_for(|p| p.checkpoint.is_some_and(|c| c >= min));
        match tokio::time::timeout(timeout, reached).await {
            Ok(Ok(p)) => Ok(p.checkpoint.unwrap_or(min)),
            _ => Err(ProjectionError::Timeout {
                projection: self.inner.name.clone(),
                wanted: min,
                applied: self.progress().checkpoint.unwrap_or(Position::START),
                waited: timeout,
            }),
        }
    }

    /// Rebuilds the model from position 0: a fresh model replays `$all` up to the live model's
    /// position and then replaces it, so queries keep answering from the old model meanwhile.
    /// Returns the position the rebuilt model was swapped in at.
    pub async fn rebuild(&self) -> Result<Position, ProjectionError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || self.stopped_error(self.progress().stopped);
        self.commands
            .send(Command::Rebuild(tx))
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    fn stopped_error(&self, reason: Option<String>) -> ProjectionError {
        ProjectionError::Stopped {
            projection: self.inner.name.clone(),
            reason: reason.unwrap_or_else(|| "the projector task ended".into()),
        }
    }
}

impl<P, S> Projector<P, S>
where
    P: Projection + Clone + Serialize + DeserializeOwned,
    S: EventStore,
{
    /// Like [`spawn`](Self::spawn), with checkpoints persisted as `config` says: the projector
    /// first loads the checkpoint in `config.dir` if it is usable for this log and resumes after
    /// its position; otherwise (missing, damaged, another format or configuration, another
    /// log) it logs a warning saying why and replays from position 0.
    pub fn spawn_with<F>(store: Arc<S>, make: F, config: CheckpointConfig) -> Self
    where
        F: Fn() -> P + Send + Sync + 'static,
    {
        let model_config = checkpoint::model_config(&make());
        Self::start(
            store,
            make,
            Some(Checkpoints {
                config,
                model_config,
                clone: P::clone,
                encode: encode_json::<P>,
                decode: decode_json::<P>,
            }),
        )
    }
}

impl<P: Projection> Inner<P> {
    fn apply(&self, event: &RecordedEvent) {
        self.model
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(event);
        self.progress.send_modify(|p| {
            p.applied = event.position;
            p.events += 1;
        });
    }

    fn stop(&self, reason: String) {
        self.progress.send_modify(|p| p.stopped = Some(reason));
    }
}

/// Why a subscription ended.
enum Exit {
    /// The handle was dropped: nobody can query this model any more.
    Dropped,
    /// The store closed for good.
    Closed,
    /// The subscription failed; it may be retried.
    Failed(String),
}

/// Backoff before retry `attempt` (1-based) of a failed subscription.
fn backoff(attempt: u32) -> Duration {
    RETRY_FIRST_DELAY.saturating_mul(1 << attempt.saturating_sub(1).min(6))
}

/// The projector task's checkpoint bookkeeping (only that task touches it).
#[derive(Default)]
struct Cursor {
    /// The last applied event: its position and id (what a checkpoint names).
    last: Option<(Position, EventId)>,
    /// Events applied since the last checkpoint was started.
    since: u64,
    /// The checkpoint write in flight, if any (one at a time).
    writing: Option<JoinHandle<Result<Position, String>>>,
}

impl Cursor {
    fn busy(&self) -> bool {
        self.writing.as_ref().is_some_and(|h| !h.is_finished())
    }
}

/// Starts writing a checkpoint of the model as it is now on the blocking pool: the model is
/// cloned under the read lock, serialised and written outside it. `None` when checkpoints are
/// off or nothing has been applied.
fn start_checkpoint<P: Projection>(
    inner: &Arc<Inner<P>>,
    cursor: &mut Cursor,
) -> Option<JoinHandle<Result<Position, String>>> {
    let cp = inner.checkpoints.as_ref()?;
    let (position, event_id) = cursor.last?;
    let model = (cp.clone)(&inner.model.read().unwrap_or_else(PoisonError::into_inner));
    cursor.since = 0;
    let inner = inner.clone();
    Some(tokio::task::spawn_blocking(move || {
        let written = write_checkpoint(&inner, &model, position, event_id);
        match &written {
            Ok(_) => inner
                .progress
                .send_modify(|p| p.checkpoint = Some(position)),
            Err(e) => tracing::warn!(
                projection = %inner.name,
                %position,
                error = %e,
                "cannot write checkpoint"
            ),
        }
        written
    }))
}

fn write_checkpoint<P: Projection>(
    inner: &Inner<P>,
    model: &P,
    position: Position,
    event_id: EventId,
) -> Result<Position, String> {
    let Some(cp) = inner.checkpoints.as_ref() else {
        return Err("checkpoints are off".into());
    };
    let mark = Mark {
        position,
        event_id,
        config: cp.model_config,
    };
    let path = cp.config.path(&inner.name);
    checkpoint::write(&path, mark, |out| (cp.encode)(model, out))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(position)
}

/// Writes a checkpoint now (after any write in flight) and waits for it.
async fn checkpoint_now<P: Projection>(
    inner: &Arc<Inner<P>>,
    cursor: &mut Cursor,
) -> Result<Option<Position>, ProjectionError> {
    if let Some(previous) = cursor.writing.take() {
        let _ = previous.await;
    }
    let Some(task) = start_checkpoint(inner, cursor) else {
        return Ok(None);
    };
    let failed = |reason: String| ProjectionError::Checkpoint {
        projection: inner.name.clone(),
        reason,
    };
    match task.await {
        Ok(Ok(position)) => Ok(Some(position)),
        Ok(Err(e)) => Err(failed(e)),
        Err(e) => Err(failed(format!("checkpoint task failed: {e}"))),
    }
}

/// Loads the checkpoint if it is usable for this log.
async fn restore<P, S>(store: &S, inner: &Inner<P>) -> Result<Option<(Mark, P)>, Unusable>
where
    P: Projection,
    S: EventStore,
{
    let Some(cp) = inner.checkpoints.as_ref() else {
        return Ok(None);
    };
    let path = cp.config.path(&inner.name);
    let (config, decode) = (cp.model_config, cp.decode);
    let (mark, model) = tokio::task::spawn_blocking(move || {
        let bytes = checkpoint::read(&path)?;
        let (mark, body) = checkpoint::decode(&bytes, config)?;
        let model = decode(body).map_err(Unusable::Body)?;
        Ok::<_, Unusable>((mark, model))
    })
    .await
    .map_err(|e| Unusable::Unverified(format!("the load task failed: {e}")))??;
    // The log must hold the very event the checkpoint names, at its position.
    let page = store
        .read_all(
            Direction::Forwards,
            AllStart::Position(mark.position),
            1,
            None,
        )
        .await
        .map_err(|e| Unusable::Unverified(format!("cannot read $all at {}: {e}", mark.position)))?;
    match page.events.first() {
        Some(e) if e.position == mark.position && e.id == mark.event_id => Ok(Some((mark, model))),
        Some(e) if e.position == mark.position => Err(Unusable::OtherLog(format!(
            "the event at position {} is {}, the checkpoint names {}",
            mark.position, e.id, mark.event_id
        ))),
        Some(e) => Err(Unusable::OtherLog(format!(
            "no event at position {} (the next is at {})",
            mark.position, e.position
        ))),
        None => Err(Unusable::OtherLog(format!(
            "the log ends before position {}",
            mark.position
        ))),
    }
}

/// Waits for the next tick of `interval`, or forever when there is none.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn run<P, S, F>(
    store: Arc<S>,
    inner: Arc<Inner<P>>,
    make: F,
    mut commands: mpsc::UnboundedReceiver<Command>,
) where
    P: Projection,
    S: EventStore,
    F: Fn() -> P + Send + Sync + 'static,
{
    let mut cursor = Cursor::default();
    match restore(&*store, &inner).await {
        Ok(None) => {}
        Ok(Some((mark, model))) => {
            *inner.model.write().unwrap_or_else(PoisonError::into_inner) = model;
            inner.progress.send_modify(|p| {
                p.applied = mark.position;
                p.checkpoint = Some(mark.position);
                p.restored_from = Some(mark.position);
            });
            cursor.last = Some((mark.position, mark.event_id));
            tracing::info!(projection = %inner.name, position = %mark.position, "resuming from checkpoint");
        }
        Err(reason @ Unusable::Missing(_)) => tracing::info!(
            projection = %inner.name,
            %reason,
            "no checkpoint yet, replaying $all from position 0"
        ),
        Err(reason) => tracing::warn!(
            projection = %inner.name,
            %reason,
            "checkpoint not used, replaying $all from position 0"
        ),
    }
    let mut interval = inner
        .checkpoints
        .as_ref()
        .and_then(|cp| cp.config.every_interval)
        .filter(|every| !every.is_zero())
        .map(|every| {
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
    let mut failures = 0u32;
    loop {
        let applied = inner.progress.borrow().applied;
        let from = if applied == Position::START {
            SubscribeFrom::Start
        } else {
            SubscribeFrom::After(applied)
        };
        let error = match store.subscribe_all(from, AllOptions::default()).await {
            Err(e) => format!("cannot subscribe to $all: {e}"),
            Ok(mut subscription) => {
                let exit = follow(
                    &mut subscription,
                    &*store,
                    &inner,
                    &make,
                    &mut commands,
                    &mut cursor,
                    &mut interval,
                )
                .await;
                match exit {
                    Exit::Dropped => return,
                    Exit::Closed => return inner.stop("the store closed".into()),
                    Exit::Failed(e) => e,
                }
            }
        };
        if inner.progress.borrow().applied > applied {
            failures = 0; // it made progress: count retries afresh
        }
        failures += 1;
        if failures > MAX_RETRIES {
            return inner.stop(format!("{error} (gave up after {MAX_RETRIES} retries)"));
        }
        inner
            .progress
            .send_modify(|p| p.last_error = Some(error.clone()));
        tokio::time::sleep(backoff(failures)).await;
    }
}

/// Applies a subscription's events and serves commands until it ends.
async fn follow<P, S, F>(
    subscription: &mut S::Subscription,
    store: &S,
    inner: &Arc<Inner<P>>,
    make: &F,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    cursor: &mut Cursor,
    interval: &mut Option<tokio::time::Interval>,
) -> Exit
where
    P: Projection,
    S: EventStore,
    F: Fn() -> P,
{
    let every_events = inner
        .checkpoints
        .as_ref()
        .map_or(0, |cp| cp.config.every_events);
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Rebuild(reply)) => {
                    let rebuilt = rebuild(store, inner, make).await;
                    if rebuilt.is_ok()
                        && let Err(e) = checkpoint_now(inner, cursor).await
                    {
                        tracing::warn!(projection = %inner.name, error = %e, "no checkpoint after rebuild");
                    }
                    let _ = reply.send(rebuilt);
                }
                Some(Command::Checkpoint(reply)) => {
                    let _ = reply.send(checkpoint_now(inner, cursor).await);
                }
                None => return Exit::Dropped,
            },
            () = tick(interval) => {
                if cursor.since > 0 && !cursor.busy() {
                    cursor.writing = start_checkpoint(inner, cursor);
                }
            },
            item = subscription.next() => match item {
                Some(Ok(SubscriptionItem::Event(event))) => {
                    inner.apply(&event);
                    cursor.last = Some((event.position, event.id));
                    cursor.since += 1;
                    if every_events > 0 && cursor.since >= every_events && !cursor.busy() {
                        cursor.writing = start_checkpoint(inner, cursor);
                    }
                }
                Some(Ok(SubscriptionItem::CaughtUp)) => {
                    inner.progress.send_modify(|p| p.caught_up = true);
                }
                Some(Ok(SubscriptionItem::Checkpoint(_))) => {}
                Some(Err(e)) => return Exit::Failed(format!("subscription to $all failed: {e}")),
                None => return Exit::Closed,
            },
        }
    }
}

/// Builds a fresh model from position 0 up to the live model's position, then swaps it in.
async fn rebuild<P, S, F>(
    store: &S,
    inner: &Inner<P>,
    make: &F,
) -> Result<Position, ProjectionError>
where
    P: Projection,
    S: EventStore,
    F: Fn() -> P,
{
    // The live model does not advance while this runs (this task is its only writer).
    let target = inner.progress.borrow().applied;
    let mut fresh = make();
    let mut events = 0u64;
    let mut start = AllStart::Edge;
    let mut done = target == Position::START;
    'pages: while !done {
        let page = store
            .read_all(Direction::Forwards, start, REBUILD_PAGE, None)
            .await
            .map_err(|source| ProjectionError::Store {
                projection: inner.name.clone(),
                source,
            })?;
        for event in &page.events {
            if event.position > target {
                break 'pages;
            }
            fresh.apply(event);
            events += 1;
            if event.position == target {
                break 'pages;
            }
        }
        done = page.end_of_log || page.events.is_empty();
        start = AllStart::Position(page.next);
    }
    *inner.model.write().unwrap_or_else(PoisonError::into_inner) = fresh;
    inner.progress.send_modify(|p| {
        p.events = events;
        p.rebuilds += 1;
    });
    Ok(target)
}
