//! [`KurrentStore`]: the store operations over one `kurrentdb` client.

use std::fmt;
use std::sync::Arc;

use daojia_store::{
    AllOptions, AllSlice, AllStart, Appended, CurrentRevision, Deleted, Direction, EventStore,
    ExpectedRevision, Filter, Position, ProposedEvent, RecordedEvent, Result, Revision, StoreError,
    StreamMetadata, StreamStart, SubscribeFrom,
};
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, DeleteStreamOptions, ReadAllOptions,
    ReadStreamOptions, StreamPosition, SubscribeToAllOptions, SubscribeToStreamOptions,
    TombstoneStreamOptions,
};

use crate::convert;
use crate::errors::{Op, map};
use crate::subscription::KurrentSubscription;

/// The KurrentDB backend. Cloning shares the client (one HTTP/2 connection to the selected
/// node).
#[derive(Clone)]
pub struct KurrentStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// The connection string without its password, for messages.
    display: String,
    /// Continuations this store handed out (`AllSlice::next`, one past the page's last event),
    /// newest last: a page that starts at one of them is read from that last event's real
    /// position, which a KurrentDB server accepts, and the event itself is skipped.
    continuations: std::sync::Mutex<std::collections::VecDeque<u64>>,
}

/// How many continuations [`Inner::continuations`] remembers (one per concurrent reader is
/// enough; older ones still work on servers that accept any position).
const CONTINUATIONS: usize = 1024;

impl Inner {
    fn continuations(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<u64>> {
        self.continuations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn remember_continuation(&self, next: u64) {
        let mut known = self.continuations();
        if known.len() >= CONTINUATIONS {
            known.pop_front();
        }
        known.push_back(next);
    }

    /// The real event position behind a continuation this store handed out, if `start` is one.
    fn continuation_of(&self, start: Position) -> Option<Position> {
        let known = self.continuations();
        (start.0 > 0 && known.contains(&start.0)).then(|| Position(start.0 - 1))
    }
}

impl fmt::Debug for KurrentStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KurrentStore")
            .field("url", &self.inner.display)
            .finish_non_exhaustive()
    }
}

impl KurrentStore {
    /// Connects to the server named by `conn_str` (see the crate docs for its forms) and checks
    /// that it answers. A malformed string is `InvalidArgument`; a server that cannot be
    /// reached (after the client's few discovery attempts) is `Unavailable`.
    ///
    /// Must be called within a tokio runtime: the client's connection task runs on it.
    pub async fn connect(conn_str: &str) -> Result<KurrentStore> {
        let display = redacted(conn_str);
        let settings: ClientSettings = conn_str.parse().map_err(|e| {
            StoreError::InvalidArgument(format!("invalid KurrentDB URL {display}: {e}"))
        })?;
        let client = Client::new(settings).map_err(|e| {
            StoreError::InvalidArgument(format!("cannot set up a client for {display}: {e}"))
        })?;
        client.server_info().await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot reach the KurrentDB server at {display}: {e}"
            ))
        })?;
        Ok(KurrentStore {
            inner: Arc::new(Inner {
                client,
                display,
                continuations: Default::default(),
            }),
        })
    }

    /// The connection string, password hidden.
    pub fn url(&self) -> &str {
        &self.inner.display
    }

    /// Appends without the empty-batch bookkeeping.
    async fn append_events(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<kurrentdb::WriteResult> {
        let events = events
            .into_iter()
            .map(convert::event_data)
            .collect::<Result<Vec<_>>>()?;
        let options =
            AppendToStreamOptions::default().stream_state(convert::stream_state(expected));
        self.inner
            .client
            .append_to_stream(stream, &options, events)
            .await
            .map_err(|e| map(Op::expecting(stream, expected), e))
    }

    /// The last event of a stream, read backwards.
    async fn last_event(&self, stream: &str) -> Result<Option<RecordedEvent>> {
        let mut events = self
            .read_stream(stream, Direction::Backwards, StreamStart::Edge, 1)
            .await?;
        Ok(events.pop())
    }
}

/// `conn_str` with the password of its `user:password@` part replaced by `***`, for messages
/// and logs.
pub fn redacted(conn_str: &str) -> String {
    let Some((scheme, rest)) = conn_str.split_once("://") else {
        return conn_str.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{hosts}{tail}")
        }
        None => conn_str.to_string(),
    }
}

impl EventStore for KurrentStore {
    type Subscription = KurrentSubscription;

    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<Appended> {
        let count = u32::try_from(events.len())
            .map_err(|_| StoreError::InvalidArgument("too many events in one append".into()))?;
        let written = self.append_events(stream, expected, events).await?;
        if count == 0 {
            // The answer of an empty append cannot tell "no stream" from "revision 0".
            let first_revision = match self.stream_revision(stream).await? {
                CurrentRevision::NoStream => Revision(0),
                CurrentRevision::Current(r) => Revision(r.0 + 1),
            };
            return Ok(Appended {
                first_revision,
                count,
                position: self.head().await?,
            });
        }
        let first = (written.next_expected_version + 1)
            .checked_sub(u64::from(count))
            .ok_or_else(|| {
                StoreError::Internal(format!(
                    "server answered revision {} for {count} events",
                    written.next_expected_version
                ))
            })?;
        Ok(Appended {
            first_revision: Revision(first),
            count,
            position: Position(written.position.commit),
        })
    }

    async fn delete(&self, stream: &str, expected: ExpectedRevision) -> Result<Deleted> {
        let options = DeleteStreamOptions::default().stream_state(convert::stream_state(expected));
        let position = self
            .inner
            .client
            .delete_stream(stream, &options)
            .await
            .map_err(|e| map(Op::expecting(stream, expected), e))?;
        Ok(Deleted {
            position: position.map_or(Position::START, |p| Position(p.commit)),
        })
    }

    async fn tombstone(&self, stream: &str, expected: ExpectedRevision) -> Result<Deleted> {
        let options =
            TombstoneStreamOptions::default().stream_state(convert::stream_state(expected));
        let position = self
            .inner
            .client
            .tombstone_stream(stream, &options)
            .await
            .map_err(|e| map(Op::expecting(stream, expected), e))?;
        Ok(Deleted {
            position: position.map_or(Position::START, |p| Position(p.commit)),
        })
    }

    async fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        start: StreamStart,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>> {
        if max_count == 0 {
            return Ok(Vec::new());
        }
        let position = match (start, direction) {
            (StreamStart::Edge, Direction::Forwards) => StreamPosition::Start,
            (StreamStart::Edge, Direction::Backwards) => StreamPosition::End,
            (StreamStart::Revision(r), _) => StreamPosition::Position(r.0),
        };
        let options = ReadStreamOptions::default()
            .position(position)
            .max_count(max_count);
        let options = match direction {
            Direction::Forwards => options.forwards(),
            Direction::Backwards => options.backwards(),
        };
        let op = Op::on(stream);
        let mut read = self
            .inner
            .client
            .read_stream(stream, &options)
            .await
            .map_err(|e| map(op, e))?;
        let mut events = Vec::new();
        while let Some(event) = read.next().await.map_err(|e| map(op, e))? {
            events.push(convert::recorded(event.get_original_event()));
        }
        Ok(events)
    }

    async fn read_all(
        &self,
        direction: Direction,
        start: AllStart,
        max_count: usize,
        filter: Option<Filter>,
    ) -> Result<AllSlice> {
        let start_position = match start {
            AllStart::Edge => Position::START,
            AllStart::Position(p) => p,
        };
        if max_count == 0 {
            return Ok(AllSlice {
                events: Vec::new(),
                next: start_position,
                end_of_log: false,
            });
        }
        // A continuation is one past an event, which a KurrentDB server may refuse as a read
        // position: read from that event instead, one more, and skip it.
        let resume_after = match (direction, start) {
            (Direction::Forwards, AllStart::Position(p)) => self.inner.continuation_of(p),
            _ => None,
        };
        let server_start = resume_after.map_or(start, AllStart::Position);
        let want = max_count + usize::from(resume_after.is_some());
        let mut options = ReadAllOptions::default()
            .position(convert::all_start(direction, server_start))
            .max_count(want);
        options = match direction {
            Direction::Forwards => options.forwards(),
            Direction::Backwards => options.backwards(),
        };
        if let Some(f) = &filter {
            options = options.filter(convert::filter(f));
        }
        let op = Op::on("$all");
        let mut read = self
            .inner
            .client
            .read_all(&options)
            .await
            .map_err(|e| map(op, e))?;
        let mut events = Vec::new();
        let mut received = 0usize;
        while let Some(event) = read.next().await.map_err(|e| map(op, e))? {
            received += 1;
            let event = convert::recorded(event.get_original_event());
            if resume_after.is_some_and(|after| event.position <= after) {
                continue;
            }
            events.push(event);
        }
        let next = match (direction, events.last()) {
            (Direction::Forwards, Some(last)) => {
                let next = last.position.0 + 1;
                self.inner.remember_continuation(next);
                Position(next)
            }
            (Direction::Backwards, Some(last)) => last.position,
            (_, None) => start_position,
        };
        Ok(AllSlice {
            end_of_log: received < want,
            events,
            next,
        })
    }

    async fn stream_revision(&self, stream: &str) -> Result<CurrentRevision> {
        match self.last_event(stream).await {
            Ok(Some(last)) => Ok(CurrentRevision::Current(last.revision)),
            Ok(None) | Err(StoreError::StreamNotFound { .. }) => Ok(CurrentRevision::NoStream),
            Err(e) => Err(e),
        }
    }

    async fn stream_metadata(&self, stream: &str) -> Result<Option<StreamMetadata>> {
        let metastream = format!("$${stream}");
        match self.last_event(&metastream).await {
            Ok(Some(event)) => StreamMetadata::parse(event.data_slice())
                .map(Some)
                .map_err(|why| StoreError::Corrupt(format!("metadata of {stream:?}: {why}"))),
            Ok(None)
            | Err(StoreError::StreamNotFound { .. } | StoreError::StreamDeleted { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn head(&self) -> Result<Position> {
        let last = self
            .read_all(Direction::Backwards, AllStart::Edge, 1, None)
            .await?;
        Ok(last
            .events
            .first()
            .map_or(Position::START, |e| Position(e.position.0 + 1)))
    }

    async fn subscribe_all(
        &self,
        from: SubscribeFrom<Position>,
        options: AllOptions,
    ) -> Result<KurrentSubscription> {
        let position = match from {
            SubscribeFrom::Start => StreamPosition::Start,
            SubscribeFrom::After(p) => StreamPosition::Position(convert::all_position(p)),
            SubscribeFrom::End => StreamPosition::End,
        };
        let mut subscribe = SubscribeToAllOptions::default().position(position);
        let checkpoints = options.filter.is_some() && options.checkpoint_interval > 0;
        if let Some(f) = &options.filter {
            let mut filter = convert::filter(f);
            if options.checkpoint_interval > 0 {
                // With a multiplier of 1 (what the client sends), the window is the interval.
                filter = filter.max(options.checkpoint_interval);
            }
            subscribe = subscribe.filter(filter);
        }
        let inner = self.inner.client.subscribe_to_all(&subscribe).await;
        KurrentSubscription::start(inner, "$all".into(), checkpoints).await
    }

    async fn subscribe_stream(
        &self,
        stream: &str,
        from: SubscribeFrom<Revision>,
    ) -> Result<KurrentSubscription> {
        let position = match from {
            SubscribeFrom::Start => StreamPosition::Start,
            SubscribeFrom::After(r) => StreamPosition::Position(r.0),
            SubscribeFrom::End => StreamPosition::End,
        };
        let options = SubscribeToStreamOptions::default().start_from(position);
        let inner = self
            .inner
            .client
            .subscribe_to_stream(stream, &options)
            .await;
        KurrentSubscription::start(inner, stream.to_string(), false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redacted("esdb://admin:changeit@db1:2113,db2:2113?tls=true"),
            "esdb://admin:***@db1:2113,db2:2113?tls=true"
        );
        assert_eq!(
            redacted("kurrentdb://127.0.0.1:2113?tls=false"),
            "kurrentdb://127.0.0.1:2113?tls=false"
        );
        assert_eq!(redacted("not a url"), "not a url");
    }

    #[tokio::test]
    async fn malformed_urls_are_invalid_arguments() {
        for url in ["http://localhost:2113", "kurrentdb://", "nonsense"] {
            let err = KurrentStore::connect(url).await.unwrap_err();
            assert!(
                matches!(err, StoreError::InvalidArgument(_)),
                "{url}: {err}"
            );
        }
    }
}
