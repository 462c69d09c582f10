//! [`Store`]: the event store the server runs on, the embedded one or a KurrentDB server
//! (`daojia serve --store URL`), as one type that implements [`EventStore`].
//!
//! An enum rather than generics all through the server: the choice is made once at startup
//! and the services, projector, reactor and dispatcher keep their concrete types.

use daojia_kurrent::{KurrentStore, KurrentSubscription};
use daojia_store::{
    AllOptions, AllSlice, AllStart, Appended, CurrentRevision, Deleted, Direction, EmbeddedStore,
    EmbeddedSubscription, EventStore, EventSubscription, ExpectedRevision, Filter, Position,
    ProposedEvent, RecordedEvent, Result, Revision, StreamMetadata, StreamStart, SubscribeFrom,
    SubscriptionItem,
};

/// The server's event store. Cloning shares it.
#[derive(Clone, Debug)]
pub enum Store {
    /// The embedded log in the data directory.
    Embedded(EmbeddedStore),
    /// A KurrentDB (or EventStoreDB, or another daojia) server.
    Kurrent(KurrentStore),
}

/// A subscription of either backend.
#[derive(Debug)]
pub enum StoreSubscription {
    /// Of the embedded log.
    Embedded(EmbeddedSubscription),
    /// Of a KurrentDB server.
    Kurrent(KurrentSubscription),
}

impl From<EmbeddedStore> for Store {
    fn from(store: EmbeddedStore) -> Self {
        Store::Embedded(store)
    }
}

impl From<KurrentStore> for Store {
    fn from(store: KurrentStore) -> Self {
        Store::Kurrent(store)
    }
}

/// Calls the same method on whichever backend `$store` holds.
macro_rules! each {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Embedded($s) => $call,
            Store::Kurrent($s) => $call,
        }
    };
}

impl EventStore for Store {
    type Subscription = StoreSubscription;

    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<Appended> {
        each!(self, s => s.append(stream, expected, events).await)
    }

    async fn delete(&self, stream: &str, expected: ExpectedRevision) -> Result<Deleted> {
        each!(self, s => s.delete(stream, expected).await)
    }

    async fn tombstone(&self, stream: &str, expected: ExpectedRevision) -> Result<Deleted> {
        each!(self, s => s.tombstone(stream, expected).await)
    }

    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        start: StreamStart,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>> {
        each!(self, s => s.read_stream(stream, direction, start, max_count).await)
    }

    async fn read_all(
        &self,
        direction: Direction,
        start: AllStart,
        max_count: usize,
        filter: Option<Filter>,
    ) -> Result<AllSlice> {
        each!(self, s => s.read_all(direction, start, max_count, filter).await)
    }

    async fn stream_revision(&self, stream: &str) -> Result<CurrentRevision> {
        each!(self, s => s.stream_revision(stream).await)
    }

    async fn stream_metadata(&self, stream: &str) -> Result<Option<StreamMetadata>> {
        each!(self, s => s.stream_metadata(stream).await)
    }

    async fn head(&self) -> Result<Position> {
        each!(self, s => s.head().await)
    }

    async fn subscribe_all(
        &self,
        from: SubscribeFrom<Position>,
        options: AllOptions,
    ) -> Result<StoreSubscription> {
        match self {
            Store::Embedded(s) => s
                .subscribe_all(from, options)
                .await
                .map(StoreSubscription::Embedded),
            Store::Kurrent(s) => s
                .subscribe_all(from, options)
                .await
                .map(StoreSubscription::Kurrent),
        }
    }

    async fn subscribe_stream(
        &self,
        stream: &str,
        from: SubscribeFrom<Revision>,
    ) -> Result<StoreSubscription> {
        match self {
            Store::Embedded(s) => s
                .subscribe_stream(stream, from)
                .await
                .map(StoreSubscription::Embedded),
            Store::Kurrent(s) => s
                .subscribe_stream(stream, from)
                .await
                .map(StoreSubscription::Kurrent),
        }
    }
}

impl EventSubscription for StoreSubscription {
    async fn next(&mut self) -> Option<Result<SubscriptionItem>> {
        match self {
            StoreSubscription::Embedded(s) => s.next().await,
            StoreSubscription::Kurrent(s) => s.next().await,
        }
    }

    fn fail_when_behind(&mut self) {
        match self {
            StoreSubscription::Embedded(s) => s.fail_when_behind(),
            StoreSubscription::Kurrent(s) => s.fail_when_behind(),
        }
    }

    async fn fell_behind(&mut self) {
        match self {
            StoreSubscription::Embedded(s) => s.fell_behind().await,
            StoreSubscription::Kurrent(s) => s.fell_behind().await,
        }
    }
}
