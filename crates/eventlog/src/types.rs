//! Value types of the log's API: positions, revisions, expectations, events going in and out.

use std::fmt;

use bytes::Bytes;

/// A global position in the log: the logical byte offset of an event's record.
///
/// Positions are strictly increasing in commit order but not contiguous. `Position(0)` is the
/// start of the log (no event has it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position(pub u64);

impl Position {
    /// The start of the log, before every event.
    pub const START: Position = Position(0);
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A 0-based, gapless revision of an event within its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision(pub u64);

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What the writer expects of a stream before an append, delete or tombstone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpectedRevision {
    /// No check.
    Any,
    /// The stream has no events (it never existed, or it was soft-deleted).
    NoStream,
    /// The stream has at least one event and is not deleted.
    StreamExists,
    /// The stream's last event has exactly this revision.
    Exact(Revision),
}

impl fmt::Display for ExpectedRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedRevision::Any => f.write_str("any"),
            ExpectedRevision::NoStream => f.write_str("no stream"),
            ExpectedRevision::StreamExists => f.write_str("stream exists"),
            ExpectedRevision::Exact(r) => write!(f, "revision {r}"),
        }
    }
}

/// The state of a stream as seen by an expectation check: its last revision, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CurrentRevision {
    /// The stream has no events at all.
    NoStream,
    /// The revision of the stream's last event.
    Current(Revision),
}

impl fmt::Display for CurrentRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CurrentRevision::NoStream => f.write_str("no stream"),
            CurrentRevision::Current(r) => write!(f, "revision {r}"),
        }
    }
}

/// A client-chosen 128-bit event id (a UUID, stored as its 16 big-endian bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId(pub [u8; 16]);

impl EventId {
    /// The id as one big-endian 128-bit number.
    pub fn as_u128(self) -> u128 {
        u128::from_be_bytes(self.0)
    }

    /// An id from one big-endian 128-bit number.
    pub fn from_u128(value: u128) -> Self {
        EventId(value.to_be_bytes())
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        for (i, byte) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// How an event's data is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ContentType {
    /// `application/json`.
    #[default]
    Json,
    /// `application/octet-stream`.
    Binary,
}

/// An event to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposedEvent {
    /// Client-chosen id, used for idempotent retries.
    pub id: EventId,
    /// Event type, e.g. `OrderPosted`.
    pub event_type: String,
    /// Encoding of `data`.
    pub content_type: ContentType,
    /// Event payload.
    pub data: Bytes,
    /// Event metadata (correlation id, actor, schema version, ...), JSON by convention.
    pub metadata: Bytes,
}

impl ProposedEvent {
    /// A JSON event with empty metadata.
    pub fn json(id: EventId, event_type: impl Into<String>, data: impl Into<Bytes>) -> Self {
        ProposedEvent {
            id,
            event_type: event_type.into(),
            content_type: ContentType::Json,
            data: data.into(),
            metadata: Bytes::new(),
        }
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: impl Into<Bytes>) -> Self {
        self.metadata = metadata.into();
        self
    }
}

/// An event as stored in the log.
///
/// String and byte fields borrow from one shared buffer (the record as read), so decoding an
/// event allocates nothing per field.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub(crate) record: Bytes,
    pub(crate) stream: (u32, u32),
    pub(crate) event_type: (u32, u32),
    pub(crate) metadata: (u32, u32),
    pub(crate) data: (u32, u32),
    /// Client-chosen id.
    pub id: EventId,
    /// Revision within the stream.
    pub revision: Revision,
    /// Global position.
    pub position: Position,
    /// Creation time in 100 ns ticks since the Unix epoch, set by the log when it was appended.
    pub created_ticks: i64,
    /// Encoding of the data.
    pub content_type: ContentType,
}

impl RecordedEvent {
    /// Builds an event from its parts (for store backends other than the embedded log).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stream: &str,
        revision: Revision,
        position: Position,
        id: EventId,
        event_type: &str,
        content_type: ContentType,
        created_ticks: i64,
        metadata: &[u8],
        data: &[u8],
    ) -> Self {
        let mut buf =
            Vec::with_capacity(stream.len() + event_type.len() + metadata.len() + data.len());
        let mut span = |b: &[u8]| {
            let start = buf.len() as u32;
            buf.extend_from_slice(b);
            (start, buf.len() as u32)
        };
        let stream_span = span(stream.as_bytes());
        let type_span = span(event_type.as_bytes());
        let meta_span = span(metadata);
        let data_span = span(data);
        RecordedEvent {
            record: Bytes::from(buf),
            stream: stream_span,
            event_type: type_span,
            metadata: meta_span,
            data: data_span,
            id,
            revision,
            position,
            created_ticks,
            content_type,
        }
    }

    fn slice(&self, (start, end): (u32, u32)) -> &[u8] {
        self.record
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    fn bytes(&self, (start, end): (u32, u32)) -> Bytes {
        self.record.slice(start as usize..end as usize)
    }

    /// The stream this event belongs to.
    pub fn stream(&self) -> &str {
        // Validated as UTF-8 when the record was decoded.
        std::str::from_utf8(self.slice(self.stream)).unwrap_or_default()
    }

    /// The event type.
    pub fn event_type(&self) -> &str {
        std::str::from_utf8(self.slice(self.event_type)).unwrap_or_default()
    }

    /// The stream name's UTF-8 bytes, sharing the record's buffer (no copy).
    pub fn stream_bytes(&self) -> Bytes {
        self.bytes(self.stream)
    }

    /// The event data.
    pub fn data(&self) -> Bytes {
        self.bytes(self.data)
    }

    /// The event metadata.
    pub fn metadata(&self) -> Bytes {
        self.bytes(self.metadata)
    }

    /// Position right after this event's record: the next record's position, or the end.
    pub(crate) fn next_position(&self) -> u64 {
        self.position.0 + self.record.len() as u64 + crate::format::FRAME_OVERHEAD as u64
    }

    /// The event data as a slice.
    pub fn data_slice(&self) -> &[u8] {
        self.slice(self.data)
    }

    /// The event metadata as a slice.
    pub fn metadata_slice(&self) -> &[u8] {
        self.slice(self.metadata)
    }
}

impl fmt::Debug for RecordedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedEvent")
            .field("stream", &self.stream())
            .field("revision", &self.revision)
            .field("position", &self.position)
            .field("id", &format_args!("{}", self.id))
            .field("event_type", &self.event_type())
            .field("data_len", &self.data_slice().len())
            .finish()
    }
}

/// The result of a successful append (or of an idempotent retry of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Appended {
    /// Revision of the first event of the batch (for an empty batch: the revision the next
    /// event would get).
    pub first_revision: Revision,
    /// Number of events in the batch.
    pub count: u32,
    /// Position of the batch's last event: once a reader has seen this position, it has seen
    /// the whole batch. For an empty batch, the log's committed end at the time.
    pub position: Position,
}

impl Appended {
    /// The stream's current revision after the append.
    pub fn current_revision(&self) -> CurrentRevision {
        match (self.first_revision.0 + u64::from(self.count)).checked_sub(1) {
            Some(r) => CurrentRevision::Current(Revision(r)),
            None => CurrentRevision::NoStream,
        }
    }

    /// The revision of the batch's last event, if the batch was not empty.
    pub fn last_revision(&self) -> Option<Revision> {
        (self.count > 0).then(|| Revision(self.first_revision.0 + u64::from(self.count) - 1))
    }
}

/// The result of a soft delete or a tombstone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Deleted {
    /// Position of the record that marks the deletion.
    pub position: Position,
}

/// Read direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Oldest first.
    Forwards,
    /// Newest first.
    Backwards,
}

/// Where a stream read starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamStart {
    /// The first event (forwards) or the last (backwards).
    Edge,
    /// This revision, inclusive.
    Revision(Revision),
}

/// Where a `$all` read starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllStart {
    /// The log's start (forwards) or its committed end (backwards).
    Edge,
    /// Forwards: events at this position or after. Backwards: events before this position.
    Position(Position),
}
