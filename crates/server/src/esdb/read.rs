//! `Streams.Read`: reads of a stream or of `$all`, and catch-up subscriptions to either.
//!
//! A read runs as a task that pages through the store and hands pages of responses to the
//! response stream, so encoding and sending overlap with reading. A subscription sends its
//! confirmation first, then history, one `caught_up`, then live events; filtered `$all`
//! subscriptions also send checkpoints. Both end when the client goes away or the server
//! starts draining.
//!
//! Hostile reads: a filtered `$all` read gets its pages from the store in time slices and
//! checks between them that its client is still there, so an abandoned read stops scanning
//! within a slice. A subscription asks its store to cut it rather than buffer without end:
//! when its live buffer goes past the byte budget (the client stopped reading), it ends with
//! RESOURCE_EXHAUSTED naming the position to resubscribe from, even while it waits to send.
//! [`ReadStats`] counts what the reads do, for operators and tests.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use daojia_store::{
    AllOptions, AllStart, Direction, EventStore, EventSubscription, Filter, FilterTarget, Position,
    RecordedEvent, Revision, StoreError, StreamStart, SubscribeFrom, SubscriptionItem,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tonic::Status;

use super::convert::{UuidFormat, checkpoint_position, read_event, stream_identifier, stream_name};
use super::errors::{from_store, invalid};
use super::proto::event_store::client::streams::read_req::options::{
    self, AllOptions as WireAll, FilterOptions, ReadDirection, StreamOptions,
};
use super::proto::event_store::client::streams::{ReadReq, ReadResp, read_resp};
use crate::store_backend::Store;
use crate::store_slot::{SlotStore, StoreSlot};

/// Counters of one server's EventStoreDB-protocol reads and subscriptions. Cloning shares
/// them; the server's config carries them, so that whoever started the server can watch.
#[derive(Clone, Debug, Default)]
pub struct ReadStats(Arc<ReadCounters>);

#[derive(Debug, Default)]
struct ReadCounters {
    tasks_running: AtomicU64,
    bytes_scanned: AtomicU64,
    subscribers_cut: AtomicU64,
    /// The store, for its subscriber buffer counters (set once, when the services are made).
    slot: OnceLock<StoreSlot>,
}

impl ReadStats {
    /// Read and subscription tasks running now (each ends within a scan slice of its client
    /// going away).
    pub fn tasks_running(&self) -> u64 {
        self.0.tasks_running.load(Ordering::Relaxed)
    }

    /// Bytes of the log scanned by `$all` reads (positions moved over, matching or not).
    pub fn bytes_scanned(&self) -> u64 {
        self.0.bytes_scanned.load(Ordering::Relaxed)
    }

    /// Subscribers cut because they fell behind their byte budget.
    pub fn subscribers_cut(&self) -> u64 {
        self.0.subscribers_cut.load(Ordering::Relaxed)
    }

    /// Bytes held in live subscriber buffers now, and the most ever held at once (embedded
    /// store only; `None` before it opens or with a KurrentDB store).
    pub fn subscriber_bytes(&self) -> Option<(u64, u64)> {
        match self.0.slot.get()?.get().ok()? {
            Store::Embedded(store) => {
                let stats = store.log().stats();
                Some((stats.subscriber_bytes, stats.subscriber_bytes_peak))
            }
            Store::Kurrent(_) => None,
        }
    }

    pub(crate) fn watch(&self, slot: StoreSlot) {
        let _ = self.0.slot.set(slot);
    }

    fn running(&self) -> Running {
        self.0.tasks_running.fetch_add(1, Ordering::Relaxed);
        Running(self.clone())
    }
}

/// Counts a running task until dropped.
struct Running(ReadStats);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.0.tasks_running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Events per page read from the store (and per hand-over to the response stream).
const PAGE: usize = 512;

/// Filter window of clients that ask for `count` instead of a number (EventStoreDB's read batch).
const DEFAULT_FILTER_WINDOW: u32 = 32;

enum Target {
    Stream {
        name: String,
        from: options::stream_options::RevisionOption,
    },
    All {
        from: options::all_options::AllOption,
    },
}

struct Plan {
    target: Target,
    direction: Direction,
    filter: Option<Filter>,
    checkpoint_interval: u32,
    format: UuidFormat,
}

type Page = Result<Vec<ReadResp>, Status>;

/// Starts serving a read request; errors in the request are returned before anything is sent.
pub fn start(
    store: SlotStore,
    request: ReadReq,
    draining: watch::Receiver<bool>,
    stats: ReadStats,
) -> Result<super::streams::BoxStream<ReadResp>, Status> {
    let options = request
        .options
        .ok_or_else(|| invalid("options is missing"))?;
    let format = match options.uuid_option.and_then(|u| u.content) {
        Some(options::uuid_option::Content::Structured(_)) => UuidFormat::Structured,
        _ => UuidFormat::String,
    };
    let direction = match ReadDirection::try_from(options.read_direction) {
        Ok(ReadDirection::Forwards) => Direction::Forwards,
        Ok(ReadDirection::Backwards) => Direction::Backwards,
        Err(_) => {
            return Err(invalid(format!(
                "read_direction {} is neither forwards (0) nor backwards (1)",
                options.read_direction
            )));
        }
    };
    let target = match options.stream_option {
        Some(options::StreamOption::Stream(StreamOptions {
            stream_identifier,
            revision_option,
        })) => Target::Stream {
            name: stream_name(stream_identifier.as_ref())?,
            from: revision_option
                .ok_or_else(|| invalid("options.stream.revision_option is missing"))?,
        },
        Some(options::StreamOption::All(WireAll { all_option })) => Target::All {
            from: all_option.ok_or_else(|| invalid("options.all.all_option is missing"))?,
        },
        None => return Err(invalid("options.stream_option is missing")),
    };
    let (filter, checkpoint_interval) = match options.filter_option {
        Some(options::FilterOption::Filter(f)) => {
            if matches!(target, Target::Stream { .. }) {
                return Err(invalid("filters apply to reads of $all only"));
            }
            let (filter, interval) = parse_filter(f)?;
            (Some(filter), interval)
        }
        Some(options::FilterOption::NoFilter(_)) | None => (None, 0),
    };
    let plan = Plan {
        target,
        direction,
        filter,
        checkpoint_interval,
        format,
    };
    let (tx, rx) = mpsc::channel::<Page>(4);
    let cut = Cut::default();
    match options.count_option {
        Some(options::CountOption::Count(count)) => {
            let running = stats.running();
            tokio::spawn(async move {
                read(store, plan, count, tx, draining, &stats).await;
                drop(running);
            });
        }
        Some(options::CountOption::Subscription(_)) => {
            if direction == Direction::Backwards {
                return Err(invalid("subscriptions read forwards only"));
            }
            let running = stats.running();
            let task_cut = cut.clone();
            tokio::spawn(async move {
                subscribe(store, plan, tx, draining, task_cut, &stats).await;
                drop(running);
            });
        }
        None => return Err(invalid("options.count_option is missing")),
    }
    Ok(Box::pin(Pages {
        rx,
        current: Vec::new().into_iter(),
        cut,
    }))
}

fn parse_filter(f: FilterOptions) -> Result<(Filter, u32), Status> {
    use options::filter_options::{Filter as Which, Window};
    let (target, expression) = match f.filter {
        Some(Which::StreamIdentifier(e)) => (FilterTarget::StreamName, e),
        Some(Which::EventType(e)) => (FilterTarget::EventType, e),
        None => return Err(invalid("options.filter.filter is missing")),
    };
    let filter = if !expression.regex.is_empty() {
        Filter::regex(target, &expression.regex)
    } else if !expression.prefix.is_empty() {
        Filter::prefixes(target, expression.prefix)
    } else {
        return Err(invalid("a filter needs a regex or at least one prefix"));
    }
    .map_err(|e| from_store(StoreError::from(e)))?;
    let window = match f.window {
        Some(Window::Max(max)) if max > 0 => max,
        _ => DEFAULT_FILTER_WINDOW,
    };
    let interval = window.saturating_mul(f.checkpoint_interval_multiplier.max(1));
    Ok((filter, interval))
}

fn event_resp(event: &RecordedEvent, format: UuidFormat) -> ReadResp {
    ReadResp {
        content: Some(read_resp::Content::Event(read_event(event, format))),
    }
}

/// Sends a page; false when the client has gone.
async fn send(tx: &mpsc::Sender<Page>, page: Page) -> bool {
    tx.send(page).await.is_ok()
}

async fn read(
    store: SlotStore,
    plan: Plan,
    count: u64,
    tx: mpsc::Sender<Page>,
    draining: watch::Receiver<bool>,
    stats: &ReadStats,
) {
    let mut remaining = count;
    match plan.target {
        Target::Stream { ref name, ref from } => {
            use options::stream_options::RevisionOption as R;
            let mut next = match (from, plan.direction) {
                (R::Start(_), Direction::Forwards) | (R::End(_), Direction::Backwards) => {
                    StreamStart::Edge
                }
                (R::Start(_), Direction::Backwards) => StreamStart::Revision(Revision(0)),
                (R::Revision(r), _) => StreamStart::Revision(Revision(*r)),
                // Forwards from the end: nothing to read, but a missing stream is still
                // reported as missing.
                (R::End(_), Direction::Forwards) => {
                    remaining = 0;
                    StreamStart::Edge
                }
            };
            let mut first = true;
            loop {
                if *draining.borrow() || tx.is_closed() {
                    break;
                }
                let want = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .clamp(1, PAGE);
                match store.read_stream(name, plan.direction, next, want).await {
                    Ok(events) => {
                        let n = events.len();
                        let last = events.last().map(|e| e.revision);
                        let take = usize::try_from(remaining).unwrap_or(usize::MAX).min(n);
                        let page = events[..take]
                            .iter()
                            .map(|e| event_resp(e, plan.format))
                            .collect();
                        remaining -= take as u64;
                        if take > 0 && !send(&tx, Ok(page)).await {
                            return;
                        }
                        let Some(last) = last else { break };
                        if remaining == 0 || n < want {
                            break;
                        }
                        next = match plan.direction {
                            Direction::Forwards => StreamStart::Revision(Revision(last.0 + 1)),
                            Direction::Backwards if last.0 > 0 => {
                                StreamStart::Revision(Revision(last.0 - 1))
                            }
                            Direction::Backwards => break,
                        };
                    }
                    Err(StoreError::StreamNotFound { stream }) if first => {
                        let not_found = ReadResp {
                            content: Some(read_resp::Content::StreamNotFound(
                                read_resp::StreamNotFound {
                                    stream_identifier: Some(stream_identifier(&stream)),
                                },
                            )),
                        };
                        let _ = send(&tx, Ok(vec![not_found])).await;
                        return;
                    }
                    // Deleted while being read: the read ends where it got to.
                    Err(StoreError::StreamNotFound { .. }) => return,
                    Err(e) => {
                        let _ = send(&tx, Err(from_store(e))).await;
                        return;
                    }
                }
                first = false;
            }
        }
        Target::All { ref from } => {
            use options::all_options::AllOption as A;
            let mut next = match (from, plan.direction) {
                (A::Start(_), Direction::Forwards) | (A::End(_), Direction::Backwards) => {
                    AllStart::Edge
                }
                (A::Position(p), _) => AllStart::Position(Position(p.commit_position)),
                (A::Start(_), Direction::Backwards) | (A::End(_), Direction::Forwards) => return,
            };
            while remaining > 0 {
                // Between store pages (each at most a time slice of scanning when filtered):
                // a client that has gone stops the scan here.
                if *draining.borrow() || tx.is_closed() {
                    break;
                }
                let want = usize::try_from(remaining).unwrap_or(usize::MAX).min(PAGE);
                let slice = match store
                    .read_all(plan.direction, next, want, plan.filter.clone())
                    .await
                {
                    Ok(slice) => slice,
                    Err(e) => {
                        let _ = send(&tx, Err(from_store(e))).await;
                        return;
                    }
                };
                let from = match next {
                    AllStart::Position(p) => Some(p.0),
                    AllStart::Edge => (plan.direction == Direction::Forwards).then_some(0),
                };
                if let Some(from) = from {
                    stats
                        .0
                        .bytes_scanned
                        .fetch_add(from.abs_diff(slice.next.0), Ordering::Relaxed);
                }
                let take = want.min(slice.events.len());
                let page: Vec<ReadResp> = slice.events[..take]
                    .iter()
                    .map(|e| event_resp(e, plan.format))
                    .collect();
                remaining -= take as u64;
                if !page.is_empty() && !send(&tx, Ok(page)).await {
                    return;
                }
                if slice.end_of_log {
                    break;
                }
                next = AllStart::Position(slice.next);
            }
        }
    }
}

async fn subscribe(
    store: SlotStore,
    plan: Plan,
    tx: mpsc::Sender<Page>,
    mut draining: watch::Receiver<bool>,
    cut: Cut,
    stats: &ReadStats,
) {
    let subscription = match plan.target {
        Target::Stream { ref name, ref from } => {
            use options::stream_options::RevisionOption as R;
            let from = match from {
                R::Start(_) => SubscribeFrom::Start,
                R::End(_) => SubscribeFrom::End,
                R::Revision(r) => SubscribeFrom::After(Revision(*r)),
            };
            store.subscribe_stream(name, from).await
        }
        Target::All { ref from } => {
            use options::all_options::AllOption as A;
            let from = match from {
                A::Start(_) => SubscribeFrom::Start,
                A::End(_) => SubscribeFrom::End,
                A::Position(p) => SubscribeFrom::After(Position(p.commit_position)),
            };
            let options = AllOptions {
                filter: plan.filter.clone(),
                checkpoint_interval: plan.checkpoint_interval,
            };
            store.subscribe_all(from, options).await
        }
    };
    let mut subscription = match subscription {
        Ok(s) => s,
        Err(e) => {
            let _ = send(&tx, Err(from_store(e))).await;
            return;
        }
    };
    subscription.fail_when_behind();
    // What the client has been handed last, to resume from if it is cut.
    let mut resume = Resume::Start;
    let confirmation = ReadResp {
        content: Some(read_resp::Content::Confirmation(
            read_resp::SubscriptionConfirmation {
                subscription_id: subscription_id(),
            },
        )),
    };
    if !send(&tx, Ok(vec![confirmation])).await {
        return;
    }
    loop {
        let item = tokio::select! {
            item = subscription.next() => item,
            () = drained(&mut draining) => {
                let _ = send(&tx, Err(Status::unavailable("Server is shutting down"))).await;
                return;
            }
            () = tx.closed() => return,
        };
        let mut handed = None;
        let resp = match item {
            Some(Ok(SubscriptionItem::Event(event))) => {
                handed = Some(match plan.target {
                    Target::All { .. } => Resume::Position(event.position.0),
                    Target::Stream { .. } => Resume::Revision(event.revision.0),
                });
                event_resp(&event, plan.format)
            }
            Some(Ok(SubscriptionItem::CaughtUp)) => ReadResp {
                content: Some(read_resp::Content::CaughtUp(read_resp::CaughtUp::default())),
            },
            Some(Ok(SubscriptionItem::Checkpoint(p))) => {
                let p = checkpoint_position(p);
                handed = Some(Resume::Position(p));
                ReadResp {
                    content: Some(read_resp::Content::Checkpoint(read_resp::Checkpoint {
                        commit_position: p,
                        prepare_position: p,
                        timestamp: None,
                    })),
                }
            }
            Some(Err(StoreError::FellBehind { budget_bytes })) => {
                cut.set(stats, budget_bytes, resume);
                return;
            }
            Some(Err(e)) => {
                let _ = send(&tx, Err(from_store(e))).await;
                return;
            }
            None => {
                let _ = send(&tx, Err(Status::unavailable("Server is shutting down"))).await;
                return;
            }
        };
        // A client that does not read leaves this send waiting while the log moves on; the
        // subscription's budget ends the wait.
        tokio::select! {
            sent = send(&tx, Ok(vec![resp])) => if !sent { return },
            () = subscription.fell_behind() => {
                if let Some(Err(StoreError::FellBehind { budget_bytes })) = subscription.next().await {
                    cut.set(stats, budget_bytes, resume);
                }
                return;
            }
        }
        if let Some(h) = handed {
            resume = h;
        }
    }
}

/// Where a cut subscriber resumes: after the last event or checkpoint it was handed.
#[derive(Clone, Copy, Debug)]
enum Resume {
    /// Nothing handed yet: where it subscribed from.
    Start,
    /// `$all`: after this commit position.
    Position(u64),
    /// A stream: after this revision.
    Revision(u64),
}

/// The status a cut subscription ends with, handed to the response stream beside the page
/// channel (which may be full: the client stopped reading). A std mutex: it is only held to
/// put or take the status, never across an await.
#[derive(Clone, Debug, Default)]
struct Cut(Arc<Mutex<Option<Status>>>);

impl Cut {
    fn set(&self, stats: &ReadStats, budget_bytes: u64, resume: Resume) {
        stats.0.subscribers_cut.fetch_add(1, Ordering::Relaxed);
        let (from, value) = match resume {
            Resume::Start => ("where it subscribed from".to_string(), String::new()),
            // Subscribing "from" a position or revision delivers what follows it.
            Resume::Position(p) => (format!("position {p}"), p.to_string()),
            Resume::Revision(r) => (format!("revision {r}"), r.to_string()),
        };
        let mut status = Status::resource_exhausted(format!(
            "subscriber fell behind by more than {budget_bytes} bytes; resubscribe from {from}"
        ));
        if let Ok(v) = value.parse() {
            status.metadata_mut().insert("resume-from", v);
        }
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
    }

    fn take(&self) -> Option<Status> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Resolves once the server starts draining (or has gone).
async fn drained(draining: &mut watch::Receiver<bool>) {
    let _ = draining.wait_for(|d| *d).await.map(|_| ());
}

/// A subscription id: unique within this process, which is all clients use it for (logs).
fn subscription_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "daojia-subscription-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The response stream: pages from the reading task, one response at a time.
struct Pages {
    rx: mpsc::Receiver<Page>,
    current: std::vec::IntoIter<ReadResp>,
    /// Set when the task ended the subscription: its status follows the pages it sent.
    cut: Cut,
}

impl Stream for Pages {
    type Item = Result<ReadResp, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(resp) = self.current.next() {
                return Poll::Ready(Some(Ok(resp)));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(page))) => self.current = page.into_iter(),
                Poll::Ready(Some(Err(status))) => return Poll::Ready(Some(Err(status))),
                Poll::Ready(None) => return Poll::Ready(self.cut.take().map(Err)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
