//! The `EventStore` trait that the rest of daojia uses (append, read, subscribe, positions),
//! and [`EmbeddedStore`], its implementation over the embedded [`daojia_eventlog`] engine.
//!
//! The trait speaks in EventStoreDB terms (streams, revisions, `$all` positions, expected
//! revisions, catch-up subscriptions) so that a KurrentDB cluster can sit behind it as well.

mod embedded;
mod error;

use std::future::Future;

/// The embedded engine itself, for its offline tools (`daojia log verify`, `daojia log
/// truncate`) and its recovery report.
pub use daojia_eventlog as eventlog;
pub use daojia_eventlog::{
    AllOptions, AllSlice, AllStart, Appended, ContentType, CurrentRevision, Deleted, Direction,
    EventId, ExpectedRevision, Filter, FilterSpec, FilterTarget, LogHealth, Position,
    ProposedEvent, RecordedEvent, Revision, StreamMetadata, StreamStart, SubscribeFrom,
    SubscriptionItem,
};
pub use embedded::{EmbeddedStore, EmbeddedSubscription};
pub use error::StoreError;

/// Result alias of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An event store with EventStoreDB semantics.
///
/// Every method is cancel-safe in the sense that dropping a returned future never corrupts the
/// store; an append whose future is dropped may or may not have been committed (retry it with
/// the same event ids and the same expectation to find out: with an exact or no-stream
/// expectation retries are idempotent; with `Any` or `StreamExists` they are idempotent only
/// while the ids are among the recently written ones the store remembers, as in EventStoreDB).
pub trait EventStore: Send + Sync + 'static {
    /// The subscription type of this backend.
    type Subscription: EventSubscription;

    /// Appends `events` atomically if `stream` matches `expected`; resolves once durable.
    fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> impl Future<Output = Result<Appended>> + Send;

    /// Soft-deletes a stream (a later append reopens it).
    fn delete(
        &self,
        stream: &str,
        expected: ExpectedRevision,
    ) -> impl Future<Output = Result<Deleted>> + Send;

    /// Deletes a stream permanently.
    fn tombstone(
        &self,
        stream: &str,
        expected: ExpectedRevision,
    ) -> impl Future<Output = Result<Deleted>> + Send;

    /// Reads up to `max_count` events of a stream.
    fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        start: StreamStart,
        max_count: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>>> + Send;

    /// Reads a page of `$all`.
    fn read_all(
        &self,
        direction: Direction,
        start: AllStart,
        max_count: usize,
        filter: Option<Filter>,
    ) -> impl Future<Output = Result<AllSlice>> + Send;

    /// A stream's current revision.
    fn stream_revision(&self, stream: &str)
    -> impl Future<Output = Result<CurrentRevision>> + Send;

    /// A stream's metadata, if any was set.
    fn stream_metadata(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<StreamMetadata>>> + Send;

    /// The committed end of `$all`: every committed event's position is below it.
    fn head(&self) -> impl Future<Output = Result<Position>> + Send;

    /// A catch-up subscription to `$all`.
    fn subscribe_all(
        &self,
        from: SubscribeFrom<Position>,
        options: AllOptions,
    ) -> impl Future<Output = Result<Self::Subscription>> + Send;

    /// A catch-up subscription to one stream.
    fn subscribe_stream(
        &self,
        stream: &str,
        from: SubscribeFrom<Revision>,
    ) -> impl Future<Output = Result<Self::Subscription>> + Send;
}

/// A catch-up subscription: events, then [`SubscriptionItem::CaughtUp`] once, then live events.
pub trait EventSubscription: Send + 'static {
    /// The next item; `None` once the store has closed.
    fn next(&mut self) -> impl Future<Output = Option<Result<SubscriptionItem>>> + Send;

    /// Once live, end with [`StoreError::FellBehind`] when the subscription's live buffer
    /// goes past its budget, instead of falling back to reading history (backends without
    /// live buffers of their own ignore it).
    fn fail_when_behind(&mut self) {}

    /// Resolves once the subscription has fallen behind (after [`Self::fail_when_behind`]):
    /// for a caller that waits on its client and wants to notice meanwhile. Never resolves
    /// by default.
    fn fell_behind(&mut self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}
