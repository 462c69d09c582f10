//! Catch-up subscriptions: history from disk, a caught-up signal, then live events.
//!
//! A subscription reads history page by page from the committed log. When a page comes back
//! empty it registers for live delivery, reads what was committed in between, signals
//! caught-up once, and then takes events from its bounded live buffer. Nothing falls between
//! the two: the committed end moves before newly durable events are handed out, and hand-out
//! checks for subscribers under the registry lock, so a subscriber registering concurrently is
//! either handed the events or finds them on disk. Events are deduplicated by position, so the boundary has no gap and no
//! duplicate. The writer never waits for a subscriber: when a buffer is full the subscriber is
//! dropped from live delivery and goes back to reading from disk where it left off.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::format;
use crate::log::{EventLog, Shared, read_all, read_stream};
use crate::types::{AllStart, Direction, Position, RecordedEvent, Revision, StreamStart};

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscribeFrom<T> {
    /// From the first event.
    Start,
    /// After this position or revision (exclusive).
    After(T),
    /// Only events committed after the subscription starts.
    End,
}

/// What a subscription yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionItem {
    /// An event.
    Event(RecordedEvent),
    /// History has been delivered; what follows is live. Sent once.
    CaughtUp,
    /// A filtered `$all` subscription has considered every event below this position.
    Checkpoint(Position),
}

/// Options of a `$all` subscription.
#[derive(Clone, Debug, Default)]
pub struct AllOptions {
    /// Only matching events are delivered.
    pub filter: Option<Filter>,
    /// With a filter: send a checkpoint after this many considered events (0: never).
    pub checkpoint_interval: u32,
}

#[derive(Clone)]
enum Target {
    All(AllOptions),
    Stream(String),
}

enum LiveItem {
    Event(RecordedEvent),
    Checkpoint(Position),
}

struct SubState {
    items: VecDeque<LiveItem>,
    overflowed: bool,
    closed: bool,
    waker: Option<Waker>,
    /// Events considered since the last checkpoint (filtered `$all` only).
    considered: u32,
}

struct SubShared {
    id: u64,
    target: Target,
    capacity: usize,
    state: Mutex<SubState>,
    cv: Condvar,
}

impl SubShared {
    fn lock(&self) -> MutexGuard<'_, SubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct LiveInner {
    next_id: u64,
    subscribers: Vec<Arc<SubShared>>,
    /// The log closed: subscriptions registering from now on are closed at once.
    closed: bool,
}

/// The registry of live subscribers.
#[derive(Default)]
pub(crate) struct Live {
    inner: Mutex<LiveInner>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl Live {
    fn lock(&self) -> MutexGuard<'_, LiveInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called after the committed end has moved past `[start, end)`: hands those records to
    /// every live subscriber. The records are read back from the log (the page cache), so the
    /// writer keeps no copies. Checking for subscribers under the registry lock, after the
    /// committed end moved, means a subscriber registering concurrently either is seen here or
    /// sees the new end in its own catch-up reads.
    pub fn publish(&self, shared: &Shared, start: u64, end: u64) {
        let inner = self.lock();
        if inner.subscribers.is_empty() || start >= end {
            return;
        }
        let mut records = Vec::new();
        let mut pos = start;
        while pos < end {
            match read_all(
                shared,
                Direction::Forwards,
                AllStart::Position(Position(pos)),
                usize::MAX,
                None,
            ) {
                Ok(slice) => {
                    let next = slice.next.0;
                    records.extend(slice.events.into_iter().take_while(|e| e.position.0 < end));
                    if next <= pos {
                        break;
                    }
                    pos = next;
                }
                Err(_) => {
                    // Unreadable just after a successful sync: the subscribers fall back to
                    // reading the disk themselves, which reports the error to them.
                    for sub in &inner.subscribers {
                        let mut st = sub.lock();
                        st.overflowed = true;
                        st.items.clear();
                        if let Some(w) = st.waker.take() {
                            w.wake();
                        }
                        sub.cv.notify_all();
                    }
                    return;
                }
            }
        }
        for sub in &inner.subscribers {
            let mut st = sub.lock();
            if st.overflowed || st.closed {
                continue;
            }
            let before = st.items.len();
            for event in &records {
                let item = match &sub.target {
                    Target::Stream(name) => {
                        (event.stream() == name).then(|| LiveItem::Event(event.clone()))
                    }
                    Target::All(opts) => match &opts.filter {
                        None => Some(LiveItem::Event(event.clone())),
                        Some(f) => {
                            if f.matches(event) {
                                st.considered = 0;
                                Some(LiveItem::Event(event.clone()))
                            } else {
                                st.considered += 1;
                                if opts.checkpoint_interval > 0
                                    && st.considered >= opts.checkpoint_interval
                                {
                                    st.considered = 0;
                                    Some(LiveItem::Checkpoint(Position(event.next_position())))
                                } else {
                                    None
                                }
                            }
                        }
                    },
                };
                if let Some(item) = item {
                    if st.items.len() >= sub.capacity {
                        st.overflowed = true;
                        st.items.clear();
                        break;
                    }
                    st.items.push_back(item);
                }
            }
            if st.items.len() != before || st.overflowed {
                if let Some(w) = st.waker.take() {
                    w.wake();
                }
                sub.cv.notify_all();
            }
        }
    }

    fn register(&self, target_of: impl FnOnce(u64) -> Arc<SubShared>) -> Arc<SubShared> {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        let sub = target_of(id);
        if inner.closed {
            sub.lock().closed = true;
        } else {
            inner.subscribers.push(sub.clone());
        }
        sub
    }

    fn unregister(&self, id: u64) {
        let mut inner = self.lock();
        inner.subscribers.retain(|s| s.id != id);
    }

    /// Ends every subscription (the log is closing).
    pub fn close_all(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        for sub in inner.subscribers.drain(..) {
            let mut st = sub.lock();
            st.closed = true;
            if let Some(w) = st.waker.take() {
                w.wake();
            }
            sub.cv.notify_all();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    CatchUp,
    Live,
    Done,
}

/// A catch-up subscription. Use [`Subscription::next_timeout`] from a thread or
/// [`Subscription::poll_next`] from async code; history pages are read from disk (mostly the
/// page cache) inside those calls.
pub struct Subscription {
    shared: Arc<Shared>,
    target: Target,
    live: Option<Arc<SubShared>>,
    phase: Phase,
    /// `$all`: next position to deliver. Stream: next revision to deliver.
    cursor: u64,
    caught_up_sent: bool,
    pending: VecDeque<SubscriptionItem>,
    /// Filtered `$all` catch-up: events considered since the last checkpoint.
    considered: u32,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("phase", &self.phase)
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

const PAGE: usize = 256;

impl EventLog {
    /// Subscribes to `$all`.
    pub fn subscribe_all(
        &self,
        from: SubscribeFrom<Position>,
        options: AllOptions,
    ) -> Subscription {
        let cursor = match from {
            SubscribeFrom::Start => 0,
            SubscribeFrom::After(p) => crate::log::after(&self.shared, p.0),
            SubscribeFrom::End => self.shared.head(),
        };
        Subscription::new(self.shared.clone(), Target::All(options), cursor)
    }

    /// Subscribes to one stream.
    pub fn subscribe_stream(
        &self,
        stream: &str,
        from: SubscribeFrom<Revision>,
    ) -> Result<Subscription> {
        crate::validate::stream_name(&self.shared.config, stream)?;
        let cursor = match from {
            SubscribeFrom::Start => 0,
            SubscribeFrom::After(r) => r.0.saturating_add(1),
            SubscribeFrom::End => {
                let head = self.shared.head();
                let idx = self.shared.index();
                idx.streams.get(stream).map_or(0, |p| p.len_below(head))
            }
        };
        Ok(Subscription::new(
            self.shared.clone(),
            Target::Stream(stream.to_string()),
            cursor,
        ))
    }
}

impl Subscription {
    fn new(shared: Arc<Shared>, target: Target, cursor: u64) -> Self {
        Subscription {
            shared,
            target,
            live: None,
            phase: Phase::CatchUp,
            cursor,
            caught_up_sent: false,
            pending: VecDeque::new(),
            considered: 0,
        }
    }

    /// Whether the subscription is receiving live events.
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    /// Reads one page of history into `pending`; returns whether it found anything.
    fn catch_up_page(&mut self) -> Result<bool> {
        match &self.target {
            Target::All(opts) => {
                // A checkpointing subscription reads every event and filters here, so that it
                // checkpoints after every `checkpoint_interval` events considered, in history
                // as in live delivery.
                let checkpoint_filter = opts
                    .filter
                    .as_ref()
                    .filter(|_| opts.checkpoint_interval > 0);
                let slice = read_all(
                    &self.shared,
                    Direction::Forwards,
                    AllStart::Position(Position(self.cursor)),
                    PAGE,
                    if checkpoint_filter.is_some() {
                        None
                    } else {
                        opts.filter.as_ref()
                    },
                )?;
                let progressed = slice.next.0 > self.cursor;
                let mut found = false;
                for e in slice.events {
                    let Some(filter) = checkpoint_filter else {
                        found = true;
                        self.pending.push_back(SubscriptionItem::Event(e));
                        continue;
                    };
                    let next = Position(e.next_position());
                    if filter.matches(&e) {
                        found = true;
                        self.pending.push_back(SubscriptionItem::Event(e));
                    }
                    self.considered += 1;
                    if self.considered >= opts.checkpoint_interval {
                        self.considered = 0;
                        self.pending.push_back(SubscriptionItem::Checkpoint(next));
                    }
                }
                self.cursor = self.cursor.max(slice.next.0);
                Ok(found || (progressed && !slice.end_of_log))
            }
            Target::Stream(name) => {
                let name = name.clone();
                match read_stream(
                    &self.shared,
                    &name,
                    Direction::Forwards,
                    StreamStart::Revision(Revision(self.cursor)),
                    PAGE,
                ) {
                    Ok(events) => {
                        let found = !events.is_empty();
                        for e in events {
                            self.cursor = e.revision.0 + 1;
                            self.pending.push_back(SubscriptionItem::Event(e));
                        }
                        Ok(found)
                    }
                    Err(Error::StreamNotFound { .. }) => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }

    fn register(&mut self) {
        if self.live.is_some() {
            return;
        }
        let target = self.target.clone();
        let capacity = self.shared.config.subscriber_buffer.max(1);
        let sub = self.shared.live.register(|id| {
            Arc::new(SubShared {
                id,
                target,
                capacity,
                state: Mutex::new(SubState {
                    items: VecDeque::new(),
                    overflowed: false,
                    closed: false,
                    waker: None,
                    considered: 0,
                }),
                cv: Condvar::new(),
            })
        });
        self.live = Some(sub);
    }

    fn unregister(&mut self) {
        if let Some(sub) = self.live.take() {
            self.shared.live.unregister(sub.id);
        }
    }

    /// Advances as far as possible without waiting. `Ok(None)` means: wait for live events.
    fn step(&mut self, waker: Option<&Waker>) -> Result<Option<SubscriptionItem>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Ok(Some(item));
            }
            match self.phase {
                Phase::Done => return Err(Error::Closed),
                Phase::CatchUp => {
                    if self.catch_up_page()? {
                        continue;
                    }
                    if self.live.is_none() {
                        // Register, then read once more: whatever was committed between the
                        // empty page and the registration is on disk, the rest will be live.
                        self.register();
                        continue;
                    }
                    self.phase = Phase::Live;
                    if !self.caught_up_sent {
                        self.caught_up_sent = true;
                        return Ok(Some(SubscriptionItem::CaughtUp));
                    }
                }
                Phase::Live => {
                    let Some(sub) = self.live.clone() else {
                        self.phase = Phase::CatchUp;
                        continue;
                    };
                    let mut st = sub.lock();
                    if st.closed {
                        drop(st);
                        self.phase = Phase::Done;
                        return Err(Error::Closed);
                    }
                    if st.overflowed {
                        drop(st);
                        self.unregister();
                        self.phase = Phase::CatchUp;
                        continue;
                    }
                    match st.items.pop_front() {
                        Some(LiveItem::Event(e)) => {
                            drop(st);
                            if let Some(item) = self.accept_live(e)? {
                                return Ok(Some(item));
                            }
                        }
                        Some(LiveItem::Checkpoint(p)) => {
                            drop(st);
                            if p.0 > self.cursor {
                                self.cursor = p.0;
                                return Ok(Some(SubscriptionItem::Checkpoint(p)));
                            }
                        }
                        None => {
                            if let Some(w) = waker {
                                st.waker = Some(w.clone());
                            }
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    fn accept_live(&mut self, e: RecordedEvent) -> Result<Option<SubscriptionItem>> {
        match &self.target {
            Target::All(_) => {
                if e.position.0 < self.cursor {
                    return Ok(None);
                }
                self.cursor = e.next_position();
                Ok(Some(SubscriptionItem::Event(e)))
            }
            Target::Stream(name) => {
                if e.revision.0 == format::TOMBSTONE_REVISION
                    && e.event_type() == format::TOMBSTONE_EVENT_TYPE
                {
                    self.phase = Phase::Done;
                    return Err(Error::StreamDeleted {
                        stream: name.clone(),
                    });
                }
                if e.revision.0 < self.cursor {
                    return Ok(None);
                }
                if e.revision.0 > self.cursor {
                    // Revisions skipped live (e.g. hidden by metadata): read them properly.
                    self.unregister();
                    self.phase = Phase::CatchUp;
                    return Ok(None);
                }
                self.cursor = e.revision.0 + 1;
                Ok(Some(SubscriptionItem::Event(e)))
            }
        }
    }

    /// The next item, waiting up to `timeout` for live events. `Ok(None)` on timeout.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<SubscriptionItem>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(item) = self.step(None)? {
                return Ok(Some(item));
            }
            let Some(sub) = self.live.clone() else {
                continue;
            };
            let st = sub.lock();
            if !st.items.is_empty() || st.overflowed || st.closed {
                continue;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let _ = sub
                .cv
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Polls for the next item from async code.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<SubscriptionItem>> {
        match self.step(Some(cx.waker())) {
            Ok(Some(item)) => Poll::Ready(Ok(item)),
            Ok(None) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(sub) = self.live.take() {
            self.shared.live.unregister(sub.id);
        }
    }
}
