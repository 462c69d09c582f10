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
//!
//! Live buffers are bounded in events and in bytes, per subscriber
//! ([`Config::subscriber_buffer_bytes`](crate::Config::subscriber_buffer_bytes)) and across all
//! subscribers of the log ([`Config::subscribers_buffer_bytes`](crate::Config::subscribers_buffer_bytes)).
//! A subscription that would rather end than fall back to the disk (a network subscriber that
//! does not read) asks for [`Subscription::fail_when_behind`]. History pages are bounded in
//! bytes too, and a filtered catch-up reads in time slices and yields between them, so that
//! its caller can notice that its client has gone.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::format;
use crate::log::{EventLog, FILTERED_SCAN_SLICE, ScanLimits, Shared, read_all, read_stream};
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

impl LiveItem {
    /// Bytes this item holds, as counted against the buffer budgets.
    fn size(&self) -> u64 {
        match self {
            LiveItem::Event(e) => event_size(e),
            LiveItem::Checkpoint(_) => 16,
        }
    }
}

/// Bytes an event holds in memory, as counted against the buffer budgets: its payloads and
/// names, plus its fixed fields.
fn event_size(e: &RecordedEvent) -> u64 {
    let variable =
        e.data_slice().len() + e.metadata_slice().len() + e.stream().len() + e.event_type().len();
    u64::try_from(variable)
        .unwrap_or(u64::MAX)
        .saturating_add(64)
}

struct SubState {
    items: VecDeque<LiveItem>,
    overflowed: bool,
    closed: bool,
    waker: Option<Waker>,
    /// Events considered since the last checkpoint (filtered `$all` only).
    considered: u32,
    /// Bytes held in `items` (also counted in [`Live::buffered`]).
    bytes: u64,
    /// Set with `overflowed` when a byte or event budget was hit (rather than a read error):
    /// the budget, in bytes, that was exceeded.
    budget_hit: Option<u64>,
}

impl SubState {
    /// Empties the buffer and gives its bytes back to the global count.
    fn clear(&mut self, buffered: &AtomicU64) {
        self.items.clear();
        buffered.fetch_sub(self.bytes, Ordering::Relaxed);
        self.bytes = 0;
    }

    fn pop(&mut self, buffered: &AtomicU64) -> Option<LiveItem> {
        let item = self.items.pop_front()?;
        let size = item.size();
        self.bytes -= size;
        buffered.fetch_sub(size, Ordering::Relaxed);
        Some(item)
    }
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
    /// Bytes held in all live buffers. Only the writer (in `publish`, under the registry
    /// lock) adds to it, so checking it against the budget and then adding is not a race;
    /// subscribers take away what they pop.
    buffered: AtomicU64,
    /// The most `buffered` has ever been.
    peak: AtomicU64,
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

    /// Bytes held in all live buffers now.
    pub fn buffered_bytes(&self) -> u64 {
        self.buffered.load(Ordering::Relaxed)
    }

    /// The most bytes ever held in all live buffers at once.
    pub fn peak_bytes(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
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
                ScanLimits::read(usize::MAX, None),
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
                        st.clear(&self.buffered);
                        if let Some(w) = st.waker.take() {
                            w.wake();
                        }
                        sub.cv.notify_all();
                    }
                    return;
                }
            }
        }
        let per_sub = shared.config.subscriber_buffer_bytes;
        let total = shared.config.subscribers_buffer_bytes;
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
                            let Ok(matched) = f.matches(event) else {
                                // The filter gave up on this event: the subscriber goes back
                                // to the disk, whose read reports the error to it.
                                st.overflowed = true;
                                st.clear(&self.buffered);
                                break;
                            };
                            if matched {
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
                    let size = item.size();
                    let after = st.bytes.saturating_add(size);
                    let mut budget =
                        (st.items.len() >= sub.capacity || after > per_sub).then_some(per_sub);
                    // Over the global budget: whoever holds more than a fair share goes, the
                    // biggest first, so that a subscriber that keeps up is not cut for the
                    // ones that do not.
                    let fair = total / inner.subscribers.len().max(1) as u64;
                    while budget.is_none() && self.buffered_bytes().saturating_add(size) > total {
                        if after > fair
                            || !self.evict_biggest(&inner.subscribers, sub.id, fair, total)
                        {
                            budget = Some(total);
                        }
                    }
                    if let Some(budget) = budget {
                        st.overflowed = true;
                        st.budget_hit = Some(budget);
                        st.clear(&self.buffered);
                        break;
                    }
                    st.bytes += size;
                    let now = self.buffered.fetch_add(size, Ordering::Relaxed) + size;
                    self.peak.fetch_max(now, Ordering::Relaxed);
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

    /// Cuts the subscriber other than `except` that holds the most bytes, if it holds more
    /// than `fair`. Called by the writer with the registry lock and `except`'s state lock
    /// held; subscribers never hold their own state lock while taking another's (or the
    /// registry's), so this cannot deadlock.
    fn evict_biggest(
        &self,
        subscribers: &[Arc<SubShared>],
        except: u64,
        fair: u64,
        total: u64,
    ) -> bool {
        let biggest = subscribers
            .iter()
            .filter(|s| s.id != except)
            .map(|s| (s.lock().bytes, s))
            .max_by_key(|(bytes, _)| *bytes);
        let Some((bytes, victim)) = biggest else {
            return false;
        };
        if bytes <= fair {
            return false;
        }
        let mut st = victim.lock();
        st.overflowed = true;
        st.budget_hit = Some(total);
        st.clear(&self.buffered);
        if let Some(w) = st.waker.take() {
            w.wake();
        }
        victim.cv.notify_all();
        true
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
        inner.subscribers.retain(|s| {
            if s.id == id {
                s.lock().clear(&self.buffered);
            }
            s.id != id
        });
    }

    /// Ends every subscription (the log is closing).
    pub fn close_all(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        for sub in inner.subscribers.drain(..) {
            let mut st = sub.lock();
            st.closed = true;
            st.clear(&self.buffered);
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
    /// End with [`Error::FellBehind`] rather than fall back to the disk.
    fail_when_behind: bool,
}

/// What one page of history gave.
enum CatchUp {
    /// Items to deliver.
    Found,
    /// Events scanned, none to deliver, more to read.
    Scanned,
    /// Nothing more on disk.
    Exhausted,
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
            fail_when_behind: false,
        }
    }

    /// Once live, end with [`Error::FellBehind`] when the live buffer goes past its byte or
    /// event budget, instead of falling back to reading the disk. For subscribers whose
    /// consumer may stop reading (a network client): the fall-back keeps memory bounded but
    /// would keep the subscription, and what its consumer holds, alive without end.
    pub fn fail_when_behind(&mut self) {
        self.fail_when_behind = true;
    }

    /// Ready once the subscription has fallen behind its live budget (with
    /// [`Subscription::fail_when_behind`]); the next [`Subscription::poll_next`] then gives
    /// [`Error::FellBehind`]. For a consumer that waits on something else (its client) and
    /// wants to notice meanwhile. Shares the waker slot with `poll_next`, so poll one or the
    /// other at a time.
    pub fn poll_fell_behind(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(sub) = &self.live else {
            return Poll::Pending;
        };
        let mut st = sub.lock();
        if self.fail_when_behind && st.overflowed && st.budget_hit.is_some() {
            return Poll::Ready(());
        }
        st.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Whether the subscription is receiving live events.
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    /// Reads one page of history into `pending`, bounded in events, bytes and (filtered)
    /// time.
    fn catch_up_page(&mut self) -> Result<CatchUp> {
        let max_event_bytes = self.shared.config.subscriber_buffer_bytes.max(1);
        match &self.target {
            Target::All(opts) => {
                // A checkpointing subscription reads every event and filters here, so that it
                // checkpoints after every `checkpoint_interval` events considered, in history
                // as in live delivery.
                let checkpoint_filter = opts
                    .filter
                    .as_ref()
                    .filter(|_| opts.checkpoint_interval > 0);
                let started = std::time::Instant::now();
                let slice = read_all(
                    &self.shared,
                    Direction::Forwards,
                    AllStart::Position(Position(self.cursor)),
                    ScanLimits {
                        max_count: PAGE,
                        max_event_bytes,
                        slice: opts.filter.as_ref().map(|_| FILTERED_SCAN_SLICE),
                    },
                    if checkpoint_filter.is_some() {
                        None
                    } else {
                        opts.filter.as_ref()
                    },
                )?;
                let mut next_cursor = slice.next.0;
                let mut end_of_log = slice.end_of_log;
                let mut found = false;
                for e in slice.events {
                    let Some(filter) = checkpoint_filter else {
                        found = true;
                        self.pending.push_back(SubscriptionItem::Event(e));
                        continue;
                    };
                    let next = Position(e.next_position());
                    if filter.matches(&e)? {
                        found = true;
                        self.pending.push_back(SubscriptionItem::Event(e));
                    }
                    self.considered += 1;
                    if self.considered >= opts.checkpoint_interval {
                        self.considered = 0;
                        self.pending.push_back(SubscriptionItem::Checkpoint(next));
                    }
                    if started.elapsed() >= FILTERED_SCAN_SLICE {
                        // Out of time: the rest of the page is read again next time.
                        next_cursor = next.0;
                        end_of_log = false;
                        break;
                    }
                }
                let progressed = next_cursor > self.cursor;
                self.cursor = self.cursor.max(next_cursor);
                Ok(if found {
                    CatchUp::Found
                } else if progressed && !end_of_log {
                    CatchUp::Scanned
                } else {
                    CatchUp::Exhausted
                })
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
                        let mut bytes = 0u64;
                        for e in events {
                            // Bounded in bytes too: the rest is read again next time.
                            if bytes >= max_event_bytes {
                                break;
                            }
                            bytes = bytes.saturating_add(event_size(&e));
                            self.cursor = e.revision.0 + 1;
                            self.pending.push_back(SubscriptionItem::Event(e));
                        }
                        Ok(if found {
                            CatchUp::Found
                        } else {
                            CatchUp::Exhausted
                        })
                    }
                    Err(Error::StreamNotFound { .. }) => Ok(CatchUp::Exhausted),
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
                    bytes: 0,
                    budget_hit: None,
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
                    match self.catch_up_page()? {
                        CatchUp::Found => continue,
                        CatchUp::Scanned => {
                            // A page with nothing to deliver: give the caller its turn (to
                            // notice that its client has gone) before the next one.
                            if let Some(w) = waker {
                                w.wake_by_ref();
                                return Ok(None);
                            }
                            continue;
                        }
                        CatchUp::Exhausted => {}
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
                        let budget_hit = st.budget_hit;
                        drop(st);
                        self.unregister();
                        if let (true, Some(budget_bytes)) = (self.fail_when_behind, budget_hit) {
                            self.phase = Phase::Done;
                            return Err(Error::FellBehind { budget_bytes });
                        }
                        self.phase = Phase::CatchUp;
                        continue;
                    }
                    let buffered = &self.shared.live.buffered;
                    match st.pop(buffered) {
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
