//! `EmbeddedStore`: the `EventStore` trait over the embedded event log.
//!
//! Appends and deletions go to the log's writer thread and resolve through a oneshot channel,
//! so no async worker ever blocks on a sync. Reads run on tokio's blocking pool: they are
//! `pread`s that mostly hit the page cache but can touch the disk. Subscriptions read their
//! history pages (at most 256 events, the subscriber's byte budget, and for filtered
//! subscriptions a time slice each) inside `next`, on the calling task.

use std::future::poll_fn;
use std::sync::Arc;

use daojia_eventlog::{EventLog, LogHealth};
use tokio::sync::{oneshot, watch};

use crate::{
    AllOptions, AllSlice, AllStart, Appended, CurrentRevision, Deleted, Direction, EventStore,
    EventSubscription, ExpectedRevision, Filter, Position, ProposedEvent, RecordedEvent, Result,
    Revision, StoreError, StreamMetadata, StreamStart, SubscribeFrom, SubscriptionItem,
};

/// The embedded backend. Cloning shares the same log.
#[derive(Clone, Debug)]
pub struct EmbeddedStore {
    log: Arc<EventLog>,
    /// The log's health, fed by the log's own threads (a `watch` sender needs no runtime).
    health: watch::Receiver<LogHealth>,
}

impl EmbeddedStore {
    /// Wraps an open log.
    pub fn new(log: EventLog) -> Self {
        let (tx, health) = watch::channel(log.health());
        log.on_health_change(move |h| {
            tx.send_replace(h.clone());
        });
        EmbeddedStore {
            log: Arc::new(log),
            health,
        }
    }

    /// The log's health, as it changes: [`LogHealth::Recovering`] while a full disk keeps it
    /// from taking appends (it recovers by itself once space is freed), [`LogHealth::Failed`]
    /// after a failure only a restart cures (a failed fsync). The sender closes with the log.
    pub fn health(&self) -> watch::Receiver<LogHealth> {
        self.health.clone()
    }

    /// Opens (or creates) a log in `dir` with default settings.
    pub fn open(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        Ok(Self::new(EventLog::builder(dir).open()?))
    }

    /// Opens (or creates) a log in `dir` whose live subscribers buffer at most
    /// `per_subscriber` bytes each and `total` bytes in all.
    pub fn open_with_budgets(
        dir: impl AsRef<std::path::Path>,
        per_subscriber: u64,
        total: u64,
    ) -> Result<Self> {
        Ok(Self::new(
            EventLog::builder(dir)
                .subscriber_buffer_bytes(per_subscriber, total)
                .open()?,
        ))
    }

    /// The underlying log.
    pub fn log(&self) -> &Arc<EventLog> {
        &self.log
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&EventLog) -> daojia_eventlog::Result<T> + Send + 'static,
    {
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || f(&log))
            .await
            .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
            .map_err(StoreError::from)
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the event log closed before answering".into())
}

impl EventStore for EmbeddedStore {
    type Subscription = EmbeddedSubscription;

    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<Appended> {
        let (tx, rx) = oneshot::channel();
        self.log.append_with(
            stream.to_string(),
            expected,
            events,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        Ok(rx.await.map_err(|_| closed())??)
    }

    async fn delete(&self, stream: &str, expected: ExpectedRevision) -> Result<Deleted> {
        let (tx, rx) = oneshot::channel();
        self.log.delete_with(
            stream.to_string(),
            expected,
            false,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        Ok(rx.await.map_err(|_| closed())??)
    }

    async fn tombstone(&self, stream: &str, expected: ExpectedRevision) -> Result<Deleted> {
        let (tx, rx) = oneshot::channel();
        self.log.delete_with(
            stream.to_string(),
            expected,
            true,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        Ok(rx.await.map_err(|_| closed())??)
    }

    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        start: StreamStart,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>> {
        let stream = stream.to_string();
        self.blocking(move |log| log.read_stream(&stream, direction, start, max_count))
            .await
    }

    async fn read_all(
        &self,
        direction: Direction,
        start: AllStart,
        max_count: usize,
        filter: Option<Filter>,
    ) -> Result<AllSlice> {
        // Filtered reads return after a time slice, so that their callers can stop between
        // slices when the client has gone (a filter can cost up to a millisecond per event).
        self.blocking(move |log| match &filter {
            Some(f) => log.read_all_within(
                direction,
                start,
                max_count,
                Some(f),
                daojia_eventlog::FILTERED_SCAN_SLICE,
            ),
            None => log.read_all(direction, start, max_count, None),
        })
        .await
    }

    async fn stream_revision(&self, stream: &str) -> Result<CurrentRevision> {
        Ok(self.log.stream_revision(stream)?)
    }

    async fn stream_metadata(&self, stream: &str) -> Result<Option<StreamMetadata>> {
        Ok(self.log.stream_metadata(stream))
    }

    async fn head(&self) -> Result<Position> {
        Ok(self.log.head())
    }

    async fn subscribe_all(
        &self,
        from: SubscribeFrom<Position>,
        options: AllOptions,
    ) -> Result<EmbeddedSubscription> {
        Ok(EmbeddedSubscription {
            inner: self.log.subscribe_all(from, options),
        })
    }

    async fn subscribe_stream(
        &self,
        stream: &str,
        from: SubscribeFrom<Revision>,
    ) -> Result<EmbeddedSubscription> {
        Ok(EmbeddedSubscription {
            inner: self.log.subscribe_stream(stream, from)?,
        })
    }
}

/// A subscription of the embedded store.
#[derive(Debug)]
pub struct EmbeddedSubscription {
    inner: daojia_eventlog::Subscription,
}

impl EventSubscription for EmbeddedSubscription {
    async fn next(&mut self) -> Option<Result<SubscriptionItem>> {
        match poll_fn(|cx| self.inner.poll_next(cx)).await {
            Ok(item) => Some(Ok(item)),
            Err(daojia_eventlog::Error::Closed) => None,
            Err(e) => Some(Err(e.into())),
        }
    }

    fn fail_when_behind(&mut self) {
        self.inner.fail_when_behind();
    }

    async fn fell_behind(&mut self) {
        poll_fn(|cx| self.inner.poll_fell_behind(cx)).await;
    }
}
