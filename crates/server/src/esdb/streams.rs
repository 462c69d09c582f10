//! `event_store.client.streams.Streams`: Append, BatchAppend, Delete and Tombstone here; Read
//! and subscriptions in [`super::read`].

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use daojia_store::{
    Appended, CurrentRevision, EventId, EventStore, ExpectedRevision, ProposedEvent, Revision,
    StoreError,
};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::budget::{AppendBudgets, ByteBudget, EVENT_OVERHEAD, Reservation};
use super::convert::{current, event_id, proposed_event, stream_identifier, stream_name};
use super::errors::{
    MAX_APPEND_BYTES, append_too_large, batch_error, batch_status, from_store, invalid,
};
use super::proto::event_store::client::streams::{
    AppendReq, AppendResp, BatchAppendReq, BatchAppendResp, DeleteReq, DeleteResp, ReadReq,
    ReadResp, TombstoneReq, TombstoneResp, append_req, append_resp, batch_append_req,
    batch_append_resp, delete_req, delete_resp, streams_server, tombstone_req, tombstone_resp,
};
use super::proto::event_store::client::{Empty, Uuid};
use super::{Access, authorize};
use crate::store_slot::StoreSlot;

/// The longest a batch append waits for durability before answering `Timeout`, whatever
/// deadline the client sends (the Rust client sends an absolute time in the relative field).
pub const MAX_WRITE_WAIT: Duration = Duration::from_secs(10);

/// Most batches one BatchAppend call may have open (parts sent, final part not yet).
pub const MAX_OPEN_BATCHES: usize = 1024;

/// The expectation of an append, delete or tombstone: the three requests carry the same
/// `expected_stream_revision` oneof as three generated types.
macro_rules! expected_revision {
    ($value:expr, $oneof:path) => {{
        use $oneof as E;
        match $value {
            Some(E::Revision(r)) => Ok(ExpectedRevision::Exact(Revision(r))),
            Some(E::NoStream(_)) => Ok(ExpectedRevision::NoStream),
            Some(E::Any(_)) => Ok(ExpectedRevision::Any),
            Some(E::StreamExists(_)) => Ok(ExpectedRevision::StreamExists),
            None => Err(invalid("options.expected_stream_revision is missing")),
        }
    }};
}

/// The Streams service.
#[derive(Clone, Debug)]
pub struct StreamsService {
    slot: StoreSlot,
    /// Turns true when the server starts draining; open reads and subscriptions end then.
    pub(super) draining: watch::Receiver<bool>,
    /// Counters of the reads served.
    reads: super::ReadStats,
    /// Bytes of appends received and not yet answered, across all calls.
    appending: ByteBudget,
    /// The most one BatchAppend call may hold.
    per_call: usize,
}

impl StreamsService {
    /// A service over the store in `slot`.
    pub fn new(
        slot: StoreSlot,
        draining: watch::Receiver<bool>,
        reads: super::ReadStats,
        appends: AppendBudgets,
    ) -> Self {
        let appends = appends.at_least_one_append();
        StreamsService {
            slot,
            draining,
            reads,
            appending: ByteBudget::new(appends.total, "appends in flight on this server"),
            per_call: appends.per_call,
        }
    }

    /// Bytes of appends received and not yet answered now.
    pub fn appending_bytes(&self) -> usize {
        self.appending.used()
    }

    pub(super) fn store(&self) -> Result<crate::store_slot::SlotStore, Status> {
        self.slot
            .get()
            .cloned()
            .map_err(|_| Status::unavailable("Server Is Not Ready"))
    }
}

/// A boxed response stream.
pub(super) type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl streams_server::Streams for StreamsService {
    type ReadStream = BoxStream<ReadResp>;
    type BatchAppendStream = BoxStream<BatchAppendResp>;

    async fn read(&self, request: Request<ReadReq>) -> Result<Response<Self::ReadStream>, Status> {
        authorize(&request, Access::Read)?;
        let store = self.store()?;
        let stream = super::read::start(
            store,
            request.into_inner(),
            self.draining.clone(),
            self.reads.clone(),
        )?;
        Ok(Response::new(stream))
    }

    async fn append(
        &self,
        request: Request<Streaming<AppendReq>>,
    ) -> Result<Response<AppendResp>, Status> {
        authorize(&request, Access::Write)?;
        let store = self.store()?;
        let mut incoming = request.into_inner();
        let Some(append_req::Content::Options(options)) =
            incoming.message().await?.and_then(|first| first.content)
        else {
            return Err(invalid("an append must start with its options"));
        };
        let stream = stream_name(options.stream_identifier.as_ref())?;
        let expected = expected_revision!(
            options.expected_stream_revision,
            append_req::options::ExpectedStreamRevision
        )?;
        let mut events = Vec::new();
        let mut size = 0usize;
        // Held until the append is answered (dropped with it).
        let mut reserved = self.appending.reservation();
        while let Some(message) = incoming.message().await? {
            match message.content {
                Some(append_req::Content::ProposedMessage(m)) => {
                    let bytes = proposed_size(&m.metadata, &m.custom_metadata, &m.data);
                    size += bytes;
                    if size > MAX_APPEND_BYTES {
                        return Err(append_too_large());
                    }
                    reserved.grow(bytes + EVENT_OVERHEAD)?;
                    events.push(proposed_event(
                        m.id.as_ref(),
                        &m.metadata,
                        m.custom_metadata,
                        m.data,
                    )?);
                }
                Some(append_req::Content::Options(_)) => {
                    return Err(invalid("an append sends its options once, first"));
                }
                None => return Err(invalid("an append message has no content")),
            }
        }
        let result = match store.append(&stream, expected, events).await {
            Ok(appended) => append_resp::Result::Success(append_success(appended)),
            Err(StoreError::WrongExpectedVersion {
                expected, actual, ..
            }) => append_resp::Result::WrongExpectedVersion(wrong_expected(expected, actual)),
            Err(e) => return Err(from_store(e)),
        };
        Ok(Response::new(AppendResp {
            result: Some(result),
        }))
    }

    async fn delete(&self, request: Request<DeleteReq>) -> Result<Response<DeleteResp>, Status> {
        authorize(&request, Access::Write)?;
        let store = self.store()?;
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| invalid("options is missing"))?;
        let stream = stream_name(options.stream_identifier.as_ref())?;
        let expected = expected_revision!(
            options.expected_stream_revision,
            delete_req::options::ExpectedStreamRevision
        )?;
        let deleted = store.delete(&stream, expected).await.map_err(from_store)?;
        let p = deleted.position.0;
        Ok(Response::new(DeleteResp {
            position_option: Some(delete_resp::PositionOption::Position(
                delete_resp::Position {
                    commit_position: p,
                    prepare_position: p,
                },
            )),
        }))
    }

    async fn tombstone(
        &self,
        request: Request<TombstoneReq>,
    ) -> Result<Response<TombstoneResp>, Status> {
        authorize(&request, Access::Write)?;
        let store = self.store()?;
        let options = request
            .into_inner()
            .options
            .ok_or_else(|| invalid("options is missing"))?;
        let stream = stream_name(options.stream_identifier.as_ref())?;
        let expected = expected_revision!(
            options.expected_stream_revision,
            tombstone_req::options::ExpectedStreamRevision
        )?;
        let deleted = store
            .tombstone(&stream, expected)
            .await
            .map_err(from_store)?;
        let p = deleted.position.0;
        Ok(Response::new(TombstoneResp {
            position_option: Some(tombstone_resp::PositionOption::Position(
                tombstone_resp::Position {
                    commit_position: p,
                    prepare_position: p,
                },
            )),
        }))
    }

    async fn batch_append(
        &self,
        request: Request<Streaming<BatchAppendReq>>,
    ) -> Result<Response<Self::BatchAppendStream>, Status> {
        // As EventStoreDB does, write access is answered per batch: a caller who may not write
        // gets every batch answered AccessDenied on an open call (so a client sees the denial
        // as its append's result, whenever it sends it); bad credentials end the call.
        let denied = match authorize(&request, Access::Write) {
            Ok(()) => None,
            Err(status) if status.code() == tonic::Code::PermissionDenied => Some(status),
            Err(status) => return Err(status),
        };
        let store = self.store()?;
        let (tx, rx) = mpsc::channel(256);
        let budgets = CallBudgets {
            call: ByteBudget::new(self.per_call, "the batches open on this BatchAppend call"),
            server: self.appending.clone(),
            denied,
        };
        tokio::spawn(batch_appends(store, request.into_inner(), tx, budgets));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn proposed_size(metadata: &HashMap<String, String>, custom: &Bytes, data: &Bytes) -> usize {
    metadata
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>()
        + custom.len()
        + data.len()
}

fn append_success(appended: Appended) -> append_resp::Success {
    use append_resp::success::{CurrentRevisionOption, PositionOption};
    let p = appended.position.0;
    append_resp::Success {
        current_revision_option: Some(match current(appended.current_revision()) {
            Some(r) => CurrentRevisionOption::CurrentRevision(r),
            None => CurrentRevisionOption::NoStream(Empty {}),
        }),
        position_option: Some(PositionOption::Position(append_resp::Position {
            commit_position: p,
            prepare_position: p,
        })),
    }
}

/// Both encodings of a failed expectation: the current fields and the pre-20.6.1 ones.
fn wrong_expected(
    expected: ExpectedRevision,
    actual: CurrentRevision,
) -> append_resp::WrongExpectedVersion {
    use append_resp::wrong_expected_version::{
        CurrentRevisionOption, CurrentRevisionOption2060, ExpectedRevisionOption,
        ExpectedRevisionOption2060,
    };
    let (current_new, current_old) = match actual {
        CurrentRevision::Current(r) => (
            CurrentRevisionOption::CurrentRevision(r.0),
            CurrentRevisionOption2060::CurrentRevision2060(r.0),
        ),
        CurrentRevision::NoStream => (
            CurrentRevisionOption::CurrentNoStream(Empty {}),
            CurrentRevisionOption2060::NoStream2060(Empty {}),
        ),
    };
    let (expected_new, expected_old) = match expected {
        ExpectedRevision::Exact(r) => (
            ExpectedRevisionOption::ExpectedRevision(r.0),
            Some(ExpectedRevisionOption2060::ExpectedRevision2060(r.0)),
        ),
        ExpectedRevision::Any => (
            ExpectedRevisionOption::ExpectedAny(Empty {}),
            Some(ExpectedRevisionOption2060::Any2060(Empty {})),
        ),
        ExpectedRevision::StreamExists => (
            ExpectedRevisionOption::ExpectedStreamExists(Empty {}),
            Some(ExpectedRevisionOption2060::StreamExists2060(Empty {})),
        ),
        // The old encoding had no "no stream" expectation.
        ExpectedRevision::NoStream => (ExpectedRevisionOption::ExpectedNoStream(Empty {}), None),
    };
    append_resp::WrongExpectedVersion {
        current_revision_option_20_6_0: Some(current_old),
        expected_revision_option_20_6_0: expected_old,
        current_revision_option: Some(current_new),
        expected_revision_option: Some(expected_new),
    }
}

/// A batch being received: parts with the same correlation id until the final one.
struct OpenBatch {
    /// The correlation id as the client encoded it, echoed in the response.
    correlation: Uuid,
    options: batch_append_req::Options,
    stream: String,
    expected: ExpectedRevision,
    events: Vec<ProposedEvent>,
    size: usize,
    /// The first problem found; the batch is answered with it once its final part arrives.
    failed: Option<Status>,
    /// The batch's bytes held against its call's budget and the server's, until answered.
    reserved: [Reservation; 2],
}

/// What a BatchAppend call's batches are held to: the byte budgets they reserve against, and
/// the caller's right to write.
struct CallBudgets {
    call: ByteBudget,
    server: ByteBudget,
    /// Why every batch of this call is refused (the caller may not write), if it is.
    denied: Option<Status>,
}

impl OpenBatch {
    /// Fails the batch with `status`, dropping what it holds.
    fn fail(&mut self, status: Status) {
        self.failed = Some(status);
        self.events = Vec::new();
        for r in &mut self.reserved {
            r.clear();
        }
    }
}

/// Serves one BatchAppend call: batches are appended in the order their final parts arrive
/// (so two batches to one stream apply in order) and answered as each becomes durable.
async fn batch_appends(
    store: crate::store_slot::SlotStore,
    mut incoming: Streaming<BatchAppendReq>,
    tx: mpsc::Sender<Result<BatchAppendResp, Status>>,
    budgets: CallBudgets,
) {
    let mut open: HashMap<EventId, OpenBatch> = HashMap::new();
    let mut in_flight = FuturesUnordered::new();
    let mut receiving = true;
    loop {
        tokio::select! {
            biased;
            Some(resp) = in_flight.next(), if !in_flight.is_empty() => {
                if tx.send(Ok(resp)).await.is_err() {
                    return;
                }
            }
            message = incoming.message(), if receiving => match message {
                Ok(Some(part)) => match take_part(&mut open, part, &budgets) {
                    Ok(Some(batch)) => {
                        in_flight.push(finish_batch(store.clone(), batch));
                    }
                    Ok(None) => {}
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                },
                Ok(None) => receiving = false,
                Err(status) => {
                    tracing::debug!(%status, "BatchAppend request stream failed");
                    return;
                }
            },
            else => return,
        }
    }
}

/// Adds one part to its batch; returns the batch when the part was its final one. A part
/// without a correlation id, or too many open batches, ends the whole call; a batch past the
/// call's or the server's byte budget is answered RESOURCE_EXHAUSTED (with retry advice) and
/// the call goes on.
fn take_part(
    open: &mut HashMap<EventId, OpenBatch>,
    part: BatchAppendReq,
    budgets: &CallBudgets,
) -> Result<Option<OpenBatch>, Status> {
    let correlation = event_id(part.correlation_id.as_ref(), "correlation_id")?;
    if !open.contains_key(&correlation) {
        if open.len() >= MAX_OPEN_BATCHES {
            return Err(Status::resource_exhausted(format!(
                "more than {MAX_OPEN_BATCHES} batches are open on this call"
            )));
        }
        let options = part.options.clone().unwrap_or_default();
        let (stream, expected, failed) = match batch_target(part.options.as_ref()) {
            Ok((stream, expected)) => (stream, expected, budgets.denied.clone()),
            Err(status) => (String::new(), ExpectedRevision::Any, Some(status)),
        };
        open.insert(
            correlation,
            OpenBatch {
                correlation: part.correlation_id.clone().unwrap_or_default(),
                options,
                stream,
                expected,
                events: Vec::new(),
                size: 0,
                failed,
                reserved: [budgets.call.reservation(), budgets.server.reservation()],
            },
        );
    }
    let Some(batch) = open.get_mut(&correlation) else {
        return Ok(None);
    };
    if batch.failed.is_none() {
        for m in part.proposed_messages {
            let bytes = proposed_size(&m.metadata, &m.custom_metadata, &m.data);
            batch.size += bytes;
            if batch.size > MAX_APPEND_BYTES {
                batch.fail(append_too_large());
                break;
            }
            let [call, server] = &mut batch.reserved;
            if let Err(status) = call
                .grow(bytes + EVENT_OVERHEAD)
                .and_then(|()| server.grow(bytes + EVENT_OVERHEAD))
            {
                batch.fail(status);
                break;
            }
            match proposed_event(m.id.as_ref(), &m.metadata, m.custom_metadata, m.data) {
                Ok(event) => batch.events.push(event),
                Err(status) => {
                    batch.fail(status);
                    break;
                }
            }
        }
    }
    if part.is_final {
        Ok(open.remove(&correlation))
    } else {
        Ok(None)
    }
}

fn batch_target(
    options: Option<&batch_append_req::Options>,
) -> Result<(String, ExpectedRevision), Status> {
    let options = options.ok_or_else(|| invalid("the first part of a batch needs its options"))?;
    let stream = stream_name(options.stream_identifier.as_ref())?;
    use batch_append_req::options::ExpectedStreamPosition as E;
    let expected = match options.expected_stream_position {
        Some(E::StreamPosition(r)) => ExpectedRevision::Exact(Revision(r)),
        Some(E::NoStream(())) => ExpectedRevision::NoStream,
        Some(E::Any(())) => ExpectedRevision::Any,
        Some(E::StreamExists(())) => ExpectedRevision::StreamExists,
        None => return Err(invalid("options.expected_stream_position is missing")),
    };
    Ok((stream, expected))
}

/// How long this batch may wait for durability: the client's deadline, capped.
fn write_wait(options: &batch_append_req::Options) -> Option<Duration> {
    use batch_append_req::options::DeadlineOption;
    match &options.deadline_option {
        Some(DeadlineOption::Deadline(d)) => {
            if d.seconds < 0 || (d.seconds == 0 && d.nanos <= 0) {
                return None;
            }
            let d = Duration::new(d.seconds as u64, d.nanos.max(0) as u32);
            Some(d.min(MAX_WRITE_WAIT))
        }
        Some(DeadlineOption::Deadline21100(at)) => {
            // An absolute deadline (servers of 21.10): compare with the wall clock.
            let at = Duration::new(at.seconds.max(0) as u64, at.nanos.max(0) as u32);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            at.checked_sub(now)
                .filter(|d| !d.is_zero())
                .map(|d| d.min(MAX_WRITE_WAIT))
        }
        None => Some(MAX_WRITE_WAIT),
    }
}

async fn finish_batch(store: crate::store_slot::SlotStore, batch: OpenBatch) -> BatchAppendResp {
    use batch_append_resp::ExpectedStreamPosition as Echo;
    use batch_append_resp::Result as R;
    let echo = match batch.expected {
        ExpectedRevision::Exact(r) => Echo::StreamPosition(r.0),
        ExpectedRevision::NoStream => Echo::NoStream(()),
        ExpectedRevision::Any => Echo::Any(()),
        ExpectedRevision::StreamExists => Echo::StreamExists(()),
    };
    let result = match batch.failed {
        Some(status) => R::Error(batch_status(&status)),
        None => match write_wait(&batch.options) {
            None => R::Error(batch_status(&Status::deadline_exceeded(
                "the batch's deadline has passed",
            ))),
            Some(wait) => {
                let append = store.append(&batch.stream, batch.expected, batch.events);
                match tokio::time::timeout(wait, append).await {
                    Ok(Ok(appended)) => R::Success(batch_success(appended)),
                    Ok(Err(e)) => R::Error(batch_error(e)),
                    Err(_) => R::Error(batch_status(&Status::deadline_exceeded(format!(
                        "not durable within {wait:?}; the batch may still be written (retry it with the same event ids)"
                    )))),
                }
            }
        },
    };
    BatchAppendResp {
        correlation_id: Some(batch.correlation),
        result: Some(result),
        stream_identifier: Some(stream_identifier(&batch.stream)),
        expected_stream_position: Some(echo),
    }
}

fn batch_success(appended: Appended) -> batch_append_resp::Success {
    use batch_append_resp::success::{CurrentRevisionOption, PositionOption};
    let p = appended.position.0;
    batch_append_resp::Success {
        current_revision_option: Some(match current(appended.current_revision()) {
            Some(r) => CurrentRevisionOption::CurrentRevision(r),
            None => CurrentRevisionOption::NoStream(()),
        }),
        position_option: Some(PositionOption::Position(
            super::proto::event_store::client::AllStreamPosition {
                commit_position: p,
                prepare_position: p,
            },
        )),
    }
}
