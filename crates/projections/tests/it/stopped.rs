//! A projector whose store fails stops, and says so instead of letting queries hang.

use std::sync::Arc;
use std::time::Duration;

use daojia_projections::orders::OrdersView;
use daojia_projections::{ProjectionError, Projector};
use daojia_store::{
    AllOptions, AllSlice, AllStart, Appended, CurrentRevision, Deleted, Direction, EventStore,
    EventSubscription, ExpectedRevision, Filter, Position, ProposedEvent, RecordedEvent, Result,
    Revision, StoreError, StreamMetadata, StreamStart, SubscribeFrom, SubscriptionItem,
};

/// A store that is down: every call fails as unavailable.
struct DownStore;

struct NoSubscription;

fn down<T>() -> Result<T> {
    Err(StoreError::Unavailable("disk on fire".into()))
}

impl EventSubscription for NoSubscription {
    async fn next(&mut self) -> Option<Result<SubscriptionItem>> {
        None
    }
}

impl EventStore for DownStore {
    type Subscription = NoSubscription;

    async fn append(
        &self,
        _: &str,
        _: ExpectedRevision,
        _: Vec<ProposedEvent>,
    ) -> Result<Appended> {
        down()
    }
    async fn delete(&self, _: &str, _: ExpectedRevision) -> Result<Deleted> {
        down()
    }
    async fn tombstone(&self, _: &str, _: ExpectedRevision) -> Result<Deleted> {
        down()
    }
    async fn read_stream(
        &self,
        _: &str,
        _: Direction,
        _: StreamStart,
        _: usize,
    ) -> Result<Vec<RecordedEvent>> {
        down()
    }
    async fn read_all(
        &self,
        _: Direction,
        _: AllStart,
        _: usize,
        _: Option<Filter>,
    ) -> Result<AllSlice> {
        down()
    }
    async fn stream_revision(&self, _: &str) -> Result<CurrentRevision> {
        down()
    }
    async fn stream_metadata(&self, _: &str) -> Result<Option<StreamMetadata>> {
        down()
    }
    async fn head(&self) -> Result<Position> {
        down()
    }
    async fn subscribe_all(
        &self,
        _: SubscribeFrom<Position>,
        _: AllOptions,
    ) -> Result<NoSubscription> {
        down()
    }
    async fn subscribe_stream(
        &self,
        _: &str,
        _: SubscribeFrom<Revision>,
    ) -> Result<NoSubscription> {
        down()
    }
}

// Paused time: the retry backoffs elapse instantly and in order, with no real waiting.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failed_subscription_is_retried_then_stops_the_projector_and_waits_fail_fast() {
    let projector = Projector::spawn(Arc::new(DownStore), OrdersView::default);
    // A long bound: the wait must end because the projector stopped, not because time ran out.
    let err = projector
        .wait_for(Position(1), Duration::from_secs(3_600))
        .await
        .unwrap_err();
    match &err {
        ProjectionError::Stopped { projection, reason } => {
            assert_eq!(projection, "orders");
            assert!(reason.contains("disk on fire"), "{reason}");
            assert!(reason.contains("gave up after 5 retries"), "{reason}");
        }
        other => panic!("expected stopped, got {other:?}"),
    }
    assert!(projector.progress().stopped.is_some());
    assert!(matches!(
        projector.rebuild().await,
        Err(ProjectionError::Stopped { .. })
    ));
    assert!(matches!(
        projector.lag().await,
        Err(ProjectionError::Store { .. })
    ));
}
