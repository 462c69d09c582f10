//! Reference-model tests: random operation sequences run against the engine and against a naive
//! in-memory model (a `Vec` of records for `$all`, per stream the indexes of its revisions, a
//! set of tombstoned streams, the latest metadata per stream), compared result by result, error
//! by error and read by read.
//!
//! The model predicts every position too: a record's frame is a fixed 82 bytes plus its stream
//! name, type, metadata and data, and a batch that does not fit in the active segment starts a
//! new one (whose first record sits after a 32-byte header). So appends, deletions, `$all` pages
//! and their `next` positions are all checked exactly, and segment rolls happen (1 MiB
//! segments, some events of tens of KiB).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use daojia_eventlog::storage::{MemoryStorage, Storage};

use crate::support::{Rec, Rng};
use daojia_eventlog::{
    AllOptions, AllSlice, AllStart, Appended, Config, ContentType, CurrentRevision, Deleted,
    Direction, Error, EventId, EventLog, ExpectedRevision, Filter, FilterTarget, ManualClock,
    Position, ProposedEvent, RecordedEvent, Revision, StreamMetadata, StreamStart, SubscribeFrom,
    SubscriptionItem,
};
use serde_json::{Map, Value};

/// Bytes of a record frame besides its variable fields: 12 bytes of framing (length and CRC
/// before, length after) and the 70-byte fixed payload header.
const FRAME_FIXED: u64 = 82;
/// Bytes of a segment header; a segment's first record starts right after it.
const SEGMENT_HEADER: u64 = 32;
/// Position of the first record of the log.
const FIRST: u64 = SEGMENT_HEADER;
/// `$tb` that marks a soft-deleted stream.
const DELETED_TB: u64 = i64::MAX as u64;
/// Revision carried by tombstone records.
const TOMBSTONE_REVISION: u64 = i64::MAX as u64;
/// Name of the index snapshot file written on close.
const SNAPSHOT_FILE: &str = "index.snap";
/// The clock starts here (100 ns ticks since the Unix epoch, early 2024).
const START_TICKS: i64 = 17_040_672_000_000_000;

const SEGMENT_SIZE: u64 = 1 << 20;
const MAX_BATCH_BYTES: usize = 256 << 10;
const MAX_EVENT_BYTES: usize = 64 << 10;

fn config() -> Config {
    Config {
        segment_size: SEGMENT_SIZE,
        max_batch_bytes: MAX_BATCH_BYTES,
        max_event_bytes: MAX_EVENT_BYTES,
        ..Config::default()
    }
}

/// Ordinary streams the operations pick from (one starts with `$` without being a metadata
/// stream, for the system-event filters).
const STREAMS: &[&str] = &[
    "order-1", "order-2", "order-3", "order-4", "worker-1", "worker-2", "worker-3", "review-1",
    "review-2", "$stats-1",
];
const EVENT_TYPES: &[&str] = &[
    "OrderPosted",
    "OrderTaken",
    "WorkerVetted",
    "ReviewLeft",
    "$snapshot",
];

// ---------------------------------------------------------------------------------------------
// Deterministic PRNG.

// ---------------------------------------------------------------------------------------------
// Comparable views of results.

fn recs(events: &[RecordedEvent]) -> Vec<Rec> {
    events.iter().map(Rec::of).collect()
}

/// A `$all` page as both sides see it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Page {
    events: Vec<Rec>,
    next: u64,
    end_of_log: bool,
}

impl Page {
    fn of(s: &AllSlice) -> Page {
        Page {
            events: recs(&s.events),
            next: s.next.0,
            end_of_log: s.end_of_log,
        }
    }
}

/// The errors the model predicts, with every field that can be compared.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fail {
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedRevision,
        actual: CurrentRevision,
    },
    StreamDeleted(String),
    StreamNotFound(String),
    EventTooLarge {
        index: usize,
        size: usize,
        limit: usize,
    },
    BatchTooLarge {
        events: usize,
        bytes: usize,
        max_events: usize,
        max_bytes: usize,
    },
    /// Anything the model never predicts (shown in full when it turns up).
    Unexpected(String),
}

fn fail(e: Error) -> Fail {
    match e {
        Error::WrongExpectedVersion {
            stream,
            expected,
            actual,
        } => Fail::WrongExpectedVersion {
            stream,
            expected,
            actual,
        },
        Error::StreamDeleted { stream } => Fail::StreamDeleted(stream),
        Error::StreamNotFound { stream } => Fail::StreamNotFound(stream),
        Error::EventTooLarge { index, size, limit } => Fail::EventTooLarge { index, size, limit },
        Error::BatchTooLarge {
            events,
            bytes,
            max_events,
            max_bytes,
        } => Fail::BatchTooLarge {
            events,
            bytes,
            max_events,
            max_bytes,
        },
        other => Fail::Unexpected(format!("{other:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// The model.

/// A record about to be written by the model.
struct Planned {
    stream: String,
    revision: u64,
    /// `None` for records the log writes itself.
    id: Option<EventId>,
    event_type: String,
    content_type: ContentType,
    metadata: Vec<u8>,
    data: Vec<u8>,
    tombstone: bool,
}

impl Planned {
    fn frame_len(&self) -> u64 {
        FRAME_FIXED
            + (self.stream.len() + self.event_type.len() + self.metadata.len() + self.data.len())
                as u64
    }

    fn metadata_event(stream: &str, revision: u64, data: Vec<u8>) -> Planned {
        Planned {
            stream: stream.to_string(),
            revision,
            id: None,
            event_type: "$metadata".into(),
            content_type: ContentType::Json,
            metadata: Vec::new(),
            data,
            tombstone: false,
        }
    }
}

/// What an expectation check decides.
enum Check {
    Write { next: u64, reopen: bool },
    Idempotent(Appended),
}

/// Ids of records the log writes itself: a fixed tag and the position.
fn system_id(position: u64) -> EventId {
    let mut id = [0u8; 16];
    id[0..8].copy_from_slice(b"daojia\0\0");
    id[8..16].copy_from_slice(&position.to_be_bytes());
    EventId(id)
}

fn meta_stream(stream: &str) -> String {
    format!("$${stream}")
}

/// Metadata JSON with `$tb` set, other keys kept (what a soft delete or a reopen writes).
fn with_truncate_before(raw: Option<&Map<String, Value>>, tb: u64) -> Vec<u8> {
    let mut m = raw.cloned().unwrap_or_default();
    m.insert("$tb".into(), Value::from(tb));
    serde_json::to_vec(&Value::Object(m)).unwrap()
}

#[derive(Default)]
struct Model {
    /// Every record in log order.
    all: Vec<Rec>,
    /// For each stream, the index in `all` of each revision.
    streams: HashMap<String, Vec<usize>>,
    tombstoned: HashSet<String>,
    /// The newest metadata of each described stream (the JSON object of its last `$metadata`).
    metadata: HashMap<String, Map<String, Value>>,
    /// The idempotency cache of `Any`/`StreamExists` appends: id -> (stream, revision,
    /// position). Lost when the log is reopened.
    recent: HashMap<EventId, (String, u64, u64)>,
    /// Position of the next record (the committed end between operations).
    end: u64,
    /// Offset in the active segment where the next record goes.
    seg_end: u64,
    /// Clock value stamped on records.
    now: i64,
}

impl Model {
    fn new() -> Self {
        Model {
            end: FIRST,
            seg_end: SEGMENT_HEADER,
            now: START_TICKS,
            ..Model::default()
        }
    }

    fn len(&self, stream: &str) -> u64 {
        self.streams.get(stream).map_or(0, |r| r.len() as u64)
    }

    fn meta_u64(&self, stream: &str, key: &str) -> Option<u64> {
        self.metadata.get(stream)?.get(key)?.as_u64()
    }

    /// Soft-deleted: an ordinary stream whose metadata says `$tb` = "everything". Whether it
    /// ever had events does not matter (a delete may come before the first append).
    fn soft_deleted(&self, stream: &str) -> bool {
        !stream.starts_with("$$") && self.meta_u64(stream, "$tb") == Some(DELETED_TB)
    }

    fn current(&self, stream: &str) -> CurrentRevision {
        match self.len(stream).checked_sub(1) {
            Some(r) => CurrentRevision::Current(Revision(r)),
            None => CurrentRevision::NoStream,
        }
    }

    fn validate(&self, stream: &str, events: &[ProposedEvent]) -> Result<(), Fail> {
        let mut bytes = 0u64;
        for (index, e) in events.iter().enumerate() {
            let size = e.data.len() + e.metadata.len();
            if size > MAX_EVENT_BYTES {
                return Err(Fail::EventTooLarge {
                    index,
                    size,
                    limit: MAX_EVENT_BYTES,
                });
            }
            bytes += FRAME_FIXED
                + (stream.len() + e.event_type.len() + e.metadata.len() + e.data.len()) as u64;
        }
        // Room kept for the metadata record a reopening append may add: a frame for the
        // metadata stream's name, `$metadata` and 1088 bytes of JSON.
        let reserve = FRAME_FIXED + (stream.len() + 2 + 9 + 64 + 1024) as u64;
        if events.len() > Config::default().max_batch_events
            || bytes + reserve > MAX_BATCH_BYTES as u64
        {
            return Err(Fail::BatchTooLarge {
                events: events.len(),
                bytes: bytes as usize,
                max_events: Config::default().max_batch_events,
                max_bytes: MAX_BATCH_BYTES,
            });
        }
        Ok(())
    }

    /// The expectation rules (EventStoreDB's). A tombstoned stream refuses everything. `Any`
    /// writes, unless the batch is a retry found in the recent-id cache. `NoStream` writes to
    /// a stream without events or soft-deleted, else it must be a retry of the batch stored
    /// from revision 0. `StreamExists` needs events and no soft delete. `Exact(e)` writes when
    /// `e` is the last revision (soft-deleted or not), else it must be a retry of the batch
    /// stored from `e + 1`. A write to a soft-deleted stream reopens it.
    fn check(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        ids: &[EventId],
        tombstone: bool,
    ) -> Result<Check, Fail> {
        if self.tombstoned.contains(stream) {
            return Err(Fail::StreamDeleted(stream.into()));
        }
        let len = self.len(stream);
        let soft_deleted = self.soft_deleted(stream);
        let wev = || Fail::WrongExpectedVersion {
            stream: stream.into(),
            expected,
            actual: self.current(stream),
        };
        let write = Check::Write {
            next: len,
            reopen: soft_deleted && !ids.is_empty() && !tombstone,
        };
        match expected {
            ExpectedRevision::Any => self.recent_check(stream, ids, write, wev),
            ExpectedRevision::NoStream if len == 0 || soft_deleted => Ok(write),
            ExpectedRevision::NoStream => self.exact_check(stream, 0, ids, wev),
            ExpectedRevision::StreamExists if soft_deleted => {
                Err(Fail::StreamDeleted(stream.into()))
            }
            ExpectedRevision::StreamExists if len == 0 => Err(wev()),
            ExpectedRevision::StreamExists => self.recent_check(stream, ids, write, wev),
            ExpectedRevision::Exact(Revision(e)) if e.checked_add(1) == Some(len) => Ok(write),
            ExpectedRevision::Exact(Revision(e)) if e < len => {
                self.exact_check(stream, e + 1, ids, wev)
            }
            ExpectedRevision::Exact(_) => Err(wev()),
        }
    }

    /// A retry under `Exact`/`NoStream`: the batch's ids must equal the stored ids from `from`
    /// on, every one of them.
    fn exact_check(
        &self,
        stream: &str,
        from: u64,
        ids: &[EventId],
        wev: impl Fn() -> Fail,
    ) -> Result<Check, Fail> {
        let revs = self.streams.get(stream).ok_or_else(&wev)?;
        if ids.is_empty() {
            return Err(wev());
        }
        let mut last = 0;
        for (i, id) in ids.iter().enumerate() {
            let rec = revs
                .get(from as usize + i)
                .map(|&at| &self.all[at])
                .ok_or_else(&wev)?;
            if rec.id != *id {
                return Err(wev());
            }
            last = rec.position;
        }
        Ok(Check::Idempotent(Appended {
            first_revision: Revision(from),
            count: ids.len() as u32,
            position: Position(last),
        }))
    }

    /// A retry under `Any`/`StreamExists`: if the first id was recently appended to this
    /// stream, every id must follow it in order, else it is a conflict.
    fn recent_check(
        &self,
        stream: &str,
        ids: &[EventId],
        write: Check,
        wev: impl Fn() -> Fail,
    ) -> Result<Check, Fail> {
        let Some(first) = ids.first() else {
            return Ok(write);
        };
        let Some((s, first_rev, _)) = self.recent.get(first) else {
            return Ok(write);
        };
        if s != stream {
            return Ok(write);
        }
        let mut last = 0;
        for (i, id) in ids.iter().enumerate() {
            match self.recent.get(id) {
                Some((s, rev, pos)) if s == stream && *rev == first_rev + i as u64 => last = *pos,
                _ => return Err(wev()),
            }
        }
        Ok(Check::Idempotent(Appended {
            first_revision: Revision(*first_rev),
            count: ids.len() as u32,
            position: Position(last),
        }))
    }

    /// Writes one atomic batch, starting a new segment first if it does not fit.
    fn write(&mut self, batch: Vec<Planned>) -> Vec<u64> {
        let total: u64 = batch.iter().map(Planned::frame_len).sum();
        if self.seg_end + total > SEGMENT_SIZE {
            self.end += SEGMENT_HEADER;
            self.seg_end = SEGMENT_HEADER;
        }
        let mut positions = Vec::with_capacity(batch.len());
        for p in batch {
            let position = self.end;
            let len = p.frame_len();
            let rec = Rec {
                position,
                stream: p.stream.clone(),
                revision: p.revision,
                id: p.id.unwrap_or_else(|| system_id(position)),
                event_type: p.event_type.clone(),
                content_type: p.content_type,
                created: Some(self.now),
                metadata: p.metadata,
                data: p.data,
            };
            if p.tombstone {
                self.tombstoned.insert(p.stream.clone());
            } else {
                self.streams
                    .entry(p.stream.clone())
                    .or_default()
                    .push(self.all.len());
                if let Some(target) = p.stream.strip_prefix("$$")
                    && p.event_type == "$metadata"
                {
                    let Value::Object(raw) = serde_json::from_slice(&rec.data).unwrap() else {
                        panic!("metadata events are JSON objects");
                    };
                    self.metadata.insert(target.to_string(), raw);
                }
            }
            self.all.push(rec);
            self.end += len;
            self.seg_end += len;
            positions.push(position);
        }
        positions
    }

    fn append(
        &mut self,
        stream: &str,
        expected: ExpectedRevision,
        events: &[ProposedEvent],
    ) -> Result<Appended, Fail> {
        self.validate(stream, events)?;
        let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
        let (next, reopen) = match self.check(stream, expected, &ids, false)? {
            Check::Idempotent(a) => return Ok(a),
            Check::Write { next, reopen } => (next, reopen),
        };
        if events.is_empty() {
            return Ok(Appended {
                first_revision: Revision(next),
                count: 0,
                position: Position(self.end),
            });
        }
        let mut batch = Vec::with_capacity(events.len() + 1);
        if reopen {
            // Revisions continue; only the new ones are visible.
            let meta = meta_stream(stream);
            let data = with_truncate_before(self.metadata.get(stream), next);
            batch.push(Planned::metadata_event(&meta, self.len(&meta), data));
        }
        for (i, e) in events.iter().enumerate() {
            batch.push(Planned {
                stream: stream.to_string(),
                revision: next + i as u64,
                id: Some(e.id),
                event_type: e.event_type.clone(),
                content_type: e.content_type,
                metadata: e.metadata.to_vec(),
                data: e.data.to_vec(),
                tombstone: false,
            });
        }
        let positions = self.write(batch);
        let skip = usize::from(reopen);
        for (i, e) in events.iter().enumerate() {
            self.recent.insert(
                e.id,
                (stream.to_string(), next + i as u64, positions[i + skip]),
            );
        }
        Ok(Appended {
            first_revision: Revision(next),
            count: events.len() as u32,
            position: Position(*positions.last().unwrap()),
        })
    }

    fn delete(&mut self, stream: &str, expected: ExpectedRevision) -> Result<Deleted, Fail> {
        if let Check::Idempotent(_) = self.check(stream, expected, &[], false)? {
            panic!("a check without ids is never idempotent");
        }
        if self.len(stream) == 0 {
            return Err(Fail::WrongExpectedVersion {
                stream: stream.into(),
                expected,
                actual: CurrentRevision::NoStream,
            });
        }
        let meta = meta_stream(stream);
        let data = with_truncate_before(self.metadata.get(stream), DELETED_TB);
        let revision = self.len(&meta);
        let positions = self.write(vec![Planned::metadata_event(&meta, revision, data)]);
        Ok(Deleted {
            position: Position(positions[0]),
        })
    }

    fn tombstone(&mut self, stream: &str, expected: ExpectedRevision) -> Result<Deleted, Fail> {
        self.check(stream, expected, &[], true)?;
        let positions = self.write(vec![Planned {
            stream: stream.to_string(),
            revision: TOMBSTONE_REVISION,
            id: None,
            event_type: "$streamDeleted".into(),
            content_type: ContentType::Binary,
            metadata: Vec::new(),
            data: Vec::new(),
            tombstone: true,
        }]);
        Ok(Deleted {
            position: Position(positions[0]),
        })
    }

    fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        start: StreamStart,
        max_count: usize,
    ) -> Result<Vec<Rec>, Fail> {
        let target = stream.strip_prefix("$$").unwrap_or(stream);
        if self.tombstoned.contains(target) {
            return Err(Fail::StreamDeleted(stream.into()));
        }
        let revs = match self.streams.get(stream) {
            Some(r) if !r.is_empty() => r,
            _ => return Err(Fail::StreamNotFound(stream.into())),
        };
        if self.soft_deleted(stream) {
            return Err(Fail::StreamNotFound(stream.into()));
        }
        let n = revs.len() as u64;
        let mut lo = self.meta_u64(stream, "$tb").unwrap_or(0);
        if let Some(max) = self.meta_u64(stream, "$maxCount") {
            lo = lo.max(n.saturating_sub(max));
        }
        let visible: Vec<u64> = (lo.min(n)..n).collect();
        let picked: Vec<u64> = match (direction, start) {
            (Direction::Forwards, StreamStart::Edge) => {
                visible.into_iter().take(max_count).collect()
            }
            (Direction::Forwards, StreamStart::Revision(Revision(from))) => visible
                .into_iter()
                .filter(|r| *r >= from)
                .take(max_count)
                .collect(),
            (Direction::Backwards, StreamStart::Edge) => {
                visible.into_iter().rev().take(max_count).collect()
            }
            (Direction::Backwards, StreamStart::Revision(Revision(from))) => visible
                .into_iter()
                .rev()
                .filter(|r| *r <= from)
                .take(max_count)
                .collect(),
        };
        Ok(picked
            .into_iter()
            .map(|r| self.all[revs[r as usize]].clone())
            .collect())
    }

    /// Index of the first record at or after `pos`.
    fn first_at_or_after(&self, pos: u64) -> usize {
        self.all.partition_point(|r| r.position < pos)
    }

    fn read_all(
        &self,
        direction: Direction,
        start: AllStart,
        max_count: usize,
        filter: Option<&ModelFilter>,
    ) -> Page {
        let head = self.end;
        let matches = |r: &Rec| filter.is_none_or(|f| f.accepts(r));
        match direction {
            Direction::Forwards => {
                let mut i = match start {
                    AllStart::Edge => 0,
                    AllStart::Position(p) => self.first_at_or_after(p.0),
                };
                let mut events = Vec::new();
                while i < self.all.len() && events.len() < max_count {
                    if matches(&self.all[i]) {
                        events.push(self.all[i].clone());
                    }
                    i += 1;
                }
                // The page continues at the first record it did not look at.
                let next = self.all.get(i).map_or(head, |r| r.position);
                Page {
                    events,
                    next,
                    end_of_log: next >= head,
                }
            }
            Direction::Backwards => {
                // Backwards from a position: the records before the first boundary at or after
                // it.
                let mut i = match start {
                    AllStart::Edge => self.all.len(),
                    AllStart::Position(p) => self.first_at_or_after(p.0),
                };
                let mut next = self.all.get(i).map_or(head, |r| r.position);
                let mut events = Vec::new();
                while i > 0 && events.len() < max_count {
                    i -= 1;
                    next = self.all[i].position;
                    if matches(&self.all[i]) {
                        events.push(self.all[i].clone());
                    }
                }
                if i == 0 && events.len() < max_count {
                    next = FIRST;
                }
                Page {
                    events,
                    next,
                    end_of_log: next <= FIRST,
                }
            }
        }
    }

    fn stream_revision(&self, stream: &str) -> Result<CurrentRevision, Fail> {
        if self.tombstoned.contains(stream) {
            return Err(Fail::StreamDeleted(stream.into()));
        }
        Ok(self.current(stream))
    }

    fn stream_metadata(&self, stream: &str) -> Option<StreamMetadata> {
        let raw = self.metadata.get(stream)?;
        let get = |k: &str| raw.get(k).and_then(Value::as_u64);
        Some(StreamMetadata {
            truncate_before: get("$tb"),
            max_count: get("$maxCount"),
            max_age_secs: get("$maxAge"),
            raw: raw.clone(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Filters: each engine filter next to a hand-written predicate with the same meaning.

struct ModelFilter {
    filter: Filter,
    target: FilterTarget,
    what: &'static str,
    accepts_field: fn(&str) -> bool,
}

impl ModelFilter {
    fn accepts(&self, r: &Rec) -> bool {
        (self.accepts_field)(match self.target {
            FilterTarget::StreamName => &r.stream,
            FilterTarget::EventType => &r.event_type,
        })
    }
}

fn filters() -> Vec<ModelFilter> {
    use FilterTarget::{EventType, StreamName};
    let prefix = |target, prefixes: &[&str], what, accepts_field| ModelFilter {
        filter: Filter::prefixes(target, prefixes.iter().copied()).unwrap(),
        target,
        what,
        accepts_field,
    };
    let regex = |target, pattern: &'static str, accepts_field| ModelFilter {
        filter: Filter::regex(target, pattern).unwrap(),
        target,
        what: pattern,
        accepts_field,
    };
    vec![
        prefix(StreamName, &["order-"], "stream prefix order-", |s| {
            s.starts_with("order-")
        }),
        prefix(
            StreamName,
            &["worker-", "$$order-"],
            "stream prefixes worker-, $$order-",
            |s| s.starts_with("worker-") || s.starts_with("$$order-"),
        ),
        prefix(StreamName, &["review-", ""], "stream prefix empty", |_| {
            true
        }),
        prefix(EventType, &["$"], "type prefix $", |t| t.starts_with('$')),
        regex(StreamName, r"^(?!\$)", |s| !s.starts_with('$')),
        regex(EventType, r"^(?!\$)", |t| !t.starts_with('$')),
        regex(StreamName, r"^\$\$", |s| s.starts_with("$$")),
        regex(StreamName, r"-[13]$", |s| {
            s.ends_with("-1") || s.ends_with("-3")
        }),
        regex(StreamName, r"^(?!\$).*-2$", |s| {
            !s.starts_with('$') && s.ends_with("-2")
        }),
        regex(EventType, r"Taken$|^Review", |t| {
            t.ends_with("Taken") || t.starts_with("Review")
        }),
    ]
}

// ---------------------------------------------------------------------------------------------
// The harness: one engine, one model, one seed.

/// Which operations a run mixes in (appends, retries and reads always).
#[derive(Clone, Copy, Debug)]
struct Profile {
    deletes: bool,
    metadata: bool,
    reopen: bool,
    bursts: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Append,
    Retry,
    Delete,
    Tombstone,
    Metadata,
    Reopen,
    Burst,
    ReadStream,
    ReadAll,
    Inspect,
    Tick,
}

fn weights(p: Profile) -> Vec<(Kind, u64)> {
    let mut w = vec![
        (Kind::Append, 30),
        (Kind::Retry, 10),
        (Kind::ReadStream, 14),
        (Kind::ReadAll, 14),
        (Kind::Inspect, 3),
        (Kind::Tick, 2),
    ];
    if p.reopen {
        w.push((Kind::Reopen, 2));
    }
    if p.bursts {
        w.push((Kind::Burst, 4));
    }
    if p.metadata {
        w.push((Kind::Metadata, 6));
    }
    if p.deletes {
        w.push((Kind::Delete, 5));
        w.push((Kind::Tombstone, 1));
    }
    w
}

/// A successful append that wrote something, kept for retries.
struct Written {
    stream: String,
    expected: ExpectedRevision,
    events: Vec<ProposedEvent>,
    result: Appended,
}

/// A write of a burst: submitted without waiting, answered later.
enum BurstOp {
    Append(String, ExpectedRevision, Vec<ProposedEvent>),
    Delete(String, ExpectedRevision, bool),
}

#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Appended(Result<Appended, Fail>),
    Deleted(Result<Deleted, Fail>),
}

struct Harness {
    seed: u64,
    profile: Profile,
    weights: Vec<(Kind, u64)>,
    rng: Rng,
    storage: MemoryStorage,
    clock: Arc<ManualClock>,
    log: Option<EventLog>,
    model: Model,
    history: Vec<Written>,
    next_id: u128,
    /// Index snapshots of earlier closes, to reopen with a stale one (as after a crash).
    old_snapshots: Vec<Vec<u8>>,
    filters: Vec<ModelFilter>,
    step: usize,
    /// What the current step does, for failure messages.
    doing: String,
}

impl Harness {
    fn new(seed: u64, profile: Profile) -> Self {
        let storage = MemoryStorage::new();
        let clock = Arc::new(ManualClock::new(START_TICKS));
        let log = Self::open(&storage, &clock);
        Harness {
            seed,
            profile,
            weights: weights(profile),
            rng: Rng(seed),
            storage,
            clock,
            log: Some(log),
            model: Model::new(),
            history: Vec::new(),
            next_id: u128::from(seed) << 64,
            old_snapshots: Vec::new(),
            filters: filters(),
            step: 0,
            doing: String::new(),
        }
    }

    fn open(storage: &MemoryStorage, clock: &Arc<ManualClock>) -> EventLog {
        EventLog::builder_with_storage(Arc::new(storage.clone()))
            .config(config())
            .clock(clock.clone())
            .open()
            .unwrap()
    }

    fn log(&self) -> &EventLog {
        self.log.as_ref().unwrap()
    }

    fn ctx(&self) -> String {
        format!(
            "seed {} ({:?}) step {}: {}",
            self.seed, self.profile, self.step, self.doing
        )
    }

    fn run(&mut self, steps: usize) {
        for step in 0..steps {
            self.step = step;
            let total: u64 = self.weights.iter().map(|(_, w)| w).sum();
            let mut roll = self.rng.below(total);
            let mut kind = Kind::Append;
            for &(k, w) in &self.weights {
                if roll < w {
                    kind = k;
                    break;
                }
                roll -= w;
            }
            self.one(kind);
            assert_eq!(
                self.log().head(),
                Position(self.model.end),
                "head after {}",
                self.ctx()
            );
        }
        self.step = steps;
        self.doing = "final comparison".into();
        self.compare_everything();
        self.doing = "final reopen".into();
        self.reopen();
        self.compare_everything();
    }

    fn one(&mut self, kind: Kind) {
        match kind {
            Kind::Append => self.append(),
            Kind::Retry => self.retry(),
            Kind::Delete => self.delete(false),
            Kind::Tombstone => self.delete(true),
            Kind::Metadata => self.metadata(),
            Kind::Reopen => self.reopen(),
            Kind::Burst => self.burst(),
            Kind::ReadStream => self.read_stream(),
            Kind::ReadAll => self.read_all(),
            Kind::Inspect => {
                let stream = self.any_stream();
                self.inspect(&stream);
            }
            Kind::Tick => {
                let secs = self.rng.range(1, 120);
                self.doing = format!("advance the clock {secs} s");
                self.clock.advance_secs(secs);
                self.model.now += secs as i64 * 10_000_000;
            }
        }
    }

    // --- generators --------------------------------------------------------------------------

    fn stream(&mut self) -> String {
        self.rng.pick(STREAMS).to_string()
    }

    /// Any name a read may ask for: ordinary, metadata or never written.
    fn any_stream(&mut self) -> String {
        match self.rng.below(10) {
            0..=6 => self.stream(),
            7 | 8 => meta_stream(self.rng.pick::<&str>(STREAMS)),
            _ => "ghost-1".into(),
        }
    }

    fn fresh_id(&mut self) -> EventId {
        self.next_id += 1;
        EventId::from_u128(self.next_id)
    }

    fn event(&mut self) -> ProposedEvent {
        let id = if self.rng.percent(3) && !self.model.all.is_empty() {
            // An id already used, possibly in another stream.
            let at = self.rng.below(self.model.all.len() as u64) as usize;
            self.model.all[at].id
        } else {
            self.fresh_id()
        };
        let size = match self.rng.below(100) {
            0..=64 => self.rng.below(64),
            65..=84 => self.rng.range(64, 2000),
            85..=98 => self.rng.range(16 << 10, 60 << 10),
            // Around the event size limit: half of these are refused.
            _ => self
                .rng
                .range(MAX_EVENT_BYTES as u64 - 64, MAX_EVENT_BYTES as u64 + 64),
        } as usize;
        let event_type = *self.rng.pick(EVENT_TYPES);
        let mut e = ProposedEvent::json(id, event_type, self.rng.bytes(size));
        if self.rng.percent(30) {
            let actor = self.rng.below(1000);
            e = e.with_metadata(format!("{{\"actor\":{actor}}}").into_bytes());
        }
        if self.rng.percent(20) {
            e.content_type = ContentType::Binary;
        }
        e
    }

    /// A fresh event fit for `stream` (a valid `$metadata` event for a metadata stream).
    fn event_for(&mut self, stream: &str) -> ProposedEvent {
        match stream.strip_prefix("$$") {
            Some(target) => {
                let id = self.fresh_id();
                let json = self.metadata_json(target);
                ProposedEvent::json(id, "$metadata", json.into_bytes())
            }
            None => self.event(),
        }
    }

    fn events(&mut self, n: usize) -> Vec<ProposedEvent> {
        (0..n).map(|_| self.event()).collect()
    }

    /// Every kind of expectation, right or wrong for the stream's current state.
    fn expectation(&mut self, stream: &str) -> ExpectedRevision {
        let len = self.model.len(stream);
        match self.rng.below(9) {
            0 | 1 => ExpectedRevision::Any,
            2 => ExpectedRevision::NoStream,
            3 => ExpectedRevision::StreamExists,
            // Right (when the stream has events).
            4..=6 if len > 0 => ExpectedRevision::Exact(Revision(len - 1)),
            4..=6 => ExpectedRevision::NoStream,
            // Too low (or right, for a stream of one event).
            7 => ExpectedRevision::Exact(Revision(self.rng.below(len.max(1)))),
            // Too high.
            _ => ExpectedRevision::Exact(Revision(len + self.rng.below(3))),
        }
    }

    // --- writes ------------------------------------------------------------------------------

    /// Appends on both sides and compares the answers.
    fn do_append(
        &mut self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<Appended, Fail> {
        let end_before = self.model.end;
        let want = self.model.append(stream, expected, &events);
        let got = self
            .log()
            .append(stream, expected, events.clone())
            .map_err(fail);
        assert_eq!(got, want, "{}", self.ctx());
        self.remember(stream, expected, &events, &want, end_before);
        want
    }

    fn append(&mut self) {
        let stream = self.stream();
        let expected = self.expectation(&stream);
        let events = if self.rng.percent(1) {
            // Over the batch byte limit.
            (0..5)
                .map(|_| {
                    let id = self.fresh_id();
                    ProposedEvent::json(id, "Bulk", vec![7u8; 55 << 10])
                })
                .collect()
        } else {
            let n = self.rng.below(6) as usize;
            self.events(n)
        };
        self.doing = format!(
            "append {} events to {stream} expecting {expected:?}, ids {:?}",
            events.len(),
            ids(&events)
        );
        let _ = self.do_append(&stream, expected, events);
    }

    /// Retries an earlier append with the same expectation: the same ids (must return the
    /// original result and write nothing, unless the idempotency window is gone), a prefix of
    /// them, a prefix followed by a new id (a conflict), or a new id followed by the rest.
    fn retry(&mut self) {
        if self.history.is_empty() {
            return self.append();
        }
        let at = self.rng.below(self.history.len() as u64) as usize;
        let (stream, expected, original, result) = {
            let w = &self.history[at];
            (w.stream.clone(), w.expected, w.events.clone(), w.result)
        };
        let n = original.len();
        let variant = self.rng.below(4);
        let mut new_event = self.event_for(&stream);
        new_event.id = self.fresh_id();
        let events = match variant {
            0 => original.clone(),
            1 => original[..self.rng.range(1, n as u64 + 1) as usize].to_vec(),
            2 => {
                let mut e = original[..self.rng.range(1, n as u64 + 1) as usize].to_vec();
                e.push(new_event);
                e
            }
            _ => {
                let mut e = vec![new_event];
                e.extend_from_slice(&original[1..]);
                e
            }
        };
        let original_ids: Vec<EventId> = original.iter().map(|e| e.id).collect();
        let original_retryable = matches!(
            self.model.check(&stream, expected, &original_ids, false),
            Ok(Check::Idempotent(_))
        );
        self.doing = format!(
            "retry (variant {variant}) of {n} events on {stream} expecting {expected:?}, ids {:?}",
            ids(&events)
        );
        let valid = self.model.validate(&stream, &events).is_ok();
        let ids_now: Vec<EventId> = events.iter().map(|e| e.id).collect();
        let idempotent = matches!(
            self.model.check(&stream, expected, &ids_now, false),
            Ok(Check::Idempotent(_))
        );
        // With the same ids written more than once, a retry answers for one of those writes:
        // the newest under Any/StreamExists (the cache keeps the last), the one at the
        // expected revision under Exact/NoStream.
        let rewritten = self
            .history
            .iter()
            .enumerate()
            .any(|(j, w)| j != at && w.events.iter().any(|e| ids_now.contains(&e.id)));
        let head = self.log().head();
        let got = self.do_append(&stream, expected, events);
        if idempotent {
            assert_eq!(
                self.log().head(),
                head,
                "a retry writes nothing: {}",
                self.ctx()
            );
            if variant == 0 && !rewritten {
                assert_eq!(
                    got,
                    Ok(result),
                    "a retry answers as the original: {}",
                    self.ctx()
                );
            }
        }
        if variant == 2 && original_retryable && valid {
            assert!(
                matches!(got, Err(Fail::WrongExpectedVersion { .. })),
                "a partial match is a conflict, not {got:?}: {}",
                self.ctx()
            );
        }
    }

    fn delete(&mut self, tombstone: bool) {
        let stream = self.stream();
        let expected = self.expectation(&stream);
        self.doing = format!(
            "{} {stream} expecting {expected:?}",
            if tombstone { "tombstone" } else { "delete" }
        );
        let (want, got) = if tombstone {
            (
                self.model.tombstone(&stream, expected),
                self.log().tombstone(&stream, expected).map_err(fail),
            )
        } else {
            (
                self.model.delete(&stream, expected),
                self.log().delete(&stream, expected).map_err(fail),
            )
        };
        assert_eq!(got, want, "{}", self.ctx());
    }

    fn metadata_json(&mut self, stream: &str) -> String {
        let len = self.model.len(stream);
        match self.rng.below(8) {
            0 | 1 => format!(r#"{{"$maxCount":{}}}"#, self.rng.range(1, 5)),
            2 | 3 => format!(r#"{{"$tb":{}}}"#, self.rng.below(len + 3)),
            4 => format!(
                r#"{{"owner":"ops","$tb":{},"$maxCount":{}}}"#,
                self.rng.below(len + 2),
                self.rng.range(1, 4)
            ),
            5 => r#"{"owner":"support","$maxCount":null}"#.into(),
            6 => "{}".into(),
            // What a soft delete writes, written by hand.
            _ => format!(r#"{{"$tb":{DELETED_TB}}}"#),
        }
    }

    fn metadata(&mut self) {
        let target = self.stream();
        let stream = meta_stream(&target);
        let count = if self.rng.percent(85) { 1 } else { 2 };
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            let id = self.fresh_id();
            let json = self.metadata_json(&target);
            events.push(ProposedEvent::json(id, "$metadata", json.into_bytes()));
        }
        let expected = if self.rng.percent(70) {
            ExpectedRevision::Any
        } else {
            self.expectation(&stream)
        };
        self.doing = format!(
            "write metadata {:?} to {stream} expecting {expected:?}",
            events
                .iter()
                .map(|e| String::from_utf8_lossy(&e.data).into_owned())
                .collect::<Vec<_>>()
        );
        let _ = self.do_append(&stream, expected, events);
    }

    /// Several writes submitted without waiting, so that the writer takes some of them in one
    /// commit group (later ones then see earlier ones that are not yet durable). Empty batches
    /// are left out: their position is the committed end when the group started.
    fn burst(&mut self) {
        let n = self.rng.range(2, 7) as usize;
        let mut ops = Vec::with_capacity(n);
        let mut want = Vec::with_capacity(n);
        for _ in 0..n {
            let stream = self.stream();
            let expected = self.expectation(&stream);
            let r = self.rng.below(10);
            if self.profile.deletes && r == 0 {
                let tombstone = self.rng.percent(15);
                want.push(Answer::Deleted(if tombstone {
                    self.model.tombstone(&stream, expected)
                } else {
                    self.model.delete(&stream, expected)
                }));
                ops.push(BurstOp::Delete(stream, expected, tombstone));
                continue;
            }
            let (stream, expected, events) = if r <= 2 && !self.history.is_empty() {
                // A retry, possibly of a write earlier in this burst.
                let at = self.rng.below(self.history.len() as u64) as usize;
                let w = &self.history[at];
                (w.stream.clone(), w.expected, w.events.clone())
            } else {
                let k = self.rng.range(1, 5) as usize;
                (stream, expected, self.events(k))
            };
            let end_before = self.model.end;
            let answer = self.model.append(&stream, expected, &events);
            self.remember(&stream, expected, &events, &answer, end_before);
            want.push(Answer::Appended(answer));
            ops.push(BurstOp::Append(stream, expected, events));
        }
        self.doing = format!(
            "burst of {n} writes: {:?}",
            ops.iter()
                .map(|op| match op {
                    BurstOp::Append(s, e, evs) => format!("append {s} {e:?} {:?}", ids(evs)),
                    BurstOp::Delete(s, e, t) => format!("delete {s} {e:?} tombstone={t}"),
                })
                .collect::<Vec<_>>()
        );
        let (tx, rx) = mpsc::channel();
        for (i, op) in ops.into_iter().enumerate() {
            let tx = tx.clone();
            match op {
                BurstOp::Append(stream, expected, events) => self.log().append_with(
                    stream,
                    expected,
                    events,
                    Box::new(move |r| {
                        let _ = tx.send((i, Answer::Appended(r.map_err(fail))));
                    }),
                ),
                BurstOp::Delete(stream, expected, tombstone) => self.log().delete_with(
                    stream,
                    expected,
                    tombstone,
                    Box::new(move |r| {
                        let _ = tx.send((i, Answer::Deleted(r.map_err(fail))));
                    }),
                ),
            }
        }
        drop(tx);
        let mut got: Vec<(usize, Answer)> = rx.iter().collect();
        got.sort_by_key(|(i, _)| *i);
        let got: Vec<Answer> = got.into_iter().map(|(_, a)| a).collect();
        assert_eq!(got, want, "{}", self.ctx());
    }

    /// Keeps an append that wrote something, for later retries.
    fn remember(
        &mut self,
        stream: &str,
        expected: ExpectedRevision,
        events: &[ProposedEvent],
        answer: &Result<Appended, Fail>,
        end_before: u64,
    ) {
        if let Ok(result) = answer
            && self.model.end > end_before
        {
            self.history.push(Written {
                stream: stream.to_string(),
                expected,
                events: events.to_vec(),
                result: *result,
            });
        }
    }

    /// Closes (or drops) the log and opens it again, sometimes with the index snapshot removed
    /// or replaced by an older one (as a crash after more writes would leave it).
    fn reopen(&mut self) {
        let log = self.log.take().unwrap();
        let close = self.rng.percent(50);
        if close {
            log.close().unwrap();
        } else {
            drop(log);
        }
        let fresh = self.storage.file_bytes(SNAPSHOT_FILE);
        let snapshot = match self.rng.below(4) {
            0 if !self.old_snapshots.is_empty() => {
                let at = self.rng.below(self.old_snapshots.len() as u64) as usize;
                self.storage
                    .set_file_bytes(SNAPSHOT_FILE, self.old_snapshots[at].clone());
                "an older snapshot"
            }
            1 => {
                let _ = Storage::remove(&self.storage, SNAPSHOT_FILE);
                "no snapshot"
            }
            _ => "the fresh snapshot",
        };
        self.old_snapshots.extend(fresh);
        self.doing = format!(
            "{} and reopen with {snapshot}",
            if close { "close" } else { "drop" }
        );
        self.log = Some(Self::open(&self.storage, &self.clock));
        // Like EventStoreDB, the idempotency cache of Any/StreamExists does not survive.
        self.model.recent.clear();
        assert_eq!(
            self.log().head(),
            Position(self.model.end),
            "{}",
            self.ctx()
        );
        if self.rng.percent(30) {
            self.compare_everything();
        }
    }

    // --- reads -------------------------------------------------------------------------------

    fn read_stream(&mut self) {
        let stream = self.any_stream();
        let len = self.model.len(&stream);
        let direction = if self.rng.percent(50) {
            Direction::Forwards
        } else {
            Direction::Backwards
        };
        let start = if self.rng.percent(30) {
            StreamStart::Edge
        } else {
            StreamStart::Revision(Revision(self.rng.below(len + 3)))
        };
        let max_count = match self.rng.below(10) {
            0 => 0,
            1 => 10_000,
            _ => self.rng.range(1, 8) as usize,
        };
        self.doing = format!("read {stream} {direction:?} from {start:?}, {max_count} events");
        self.compare_stream_read(&stream, direction, start, max_count);
    }

    fn compare_stream_read(
        &self,
        stream: &str,
        direction: Direction,
        start: StreamStart,
        max_count: usize,
    ) {
        let want = self.model.read_stream(stream, direction, start, max_count);
        let got = self
            .log()
            .read_stream(stream, direction, start, max_count)
            .map(|v| recs(&v))
            .map_err(fail);
        assert_eq!(
            got,
            want,
            "{} (read {stream} {direction:?} from {start:?}, {max_count} events)",
            self.ctx()
        );
    }

    fn all_start(&mut self) -> AllStart {
        let head = self.model.end;
        let some_position = |h: &mut Self| {
            if h.model.all.is_empty() {
                head
            } else {
                let at = h.rng.below(h.model.all.len() as u64) as usize;
                h.model.all[at].position
            }
        };
        match self.rng.below(20) {
            0..=4 => AllStart::Edge,
            5..=11 => AllStart::Position(Position(some_position(self))),
            // Not on a record boundary: inside a record (or inside a segment header).
            12 | 13 => AllStart::Position(Position(some_position(self) + 1)),
            14 => AllStart::Position(Position(some_position(self) - 1)),
            15 => AllStart::Position(Position(*self.rng.pick(&[0, 1, 31, 32, 33]))),
            16 | 17 => AllStart::Position(Position(head)),
            18 => AllStart::Position(Position(head + self.rng.range(1, 1000))),
            _ => AllStart::Position(Position(u64::MAX)),
        }
    }

    fn read_all(&mut self) {
        let direction = if self.rng.percent(50) {
            Direction::Forwards
        } else {
            Direction::Backwards
        };
        let start = self.all_start();
        let max_count = match self.rng.below(20) {
            0 => 0,
            1..=3 => 100_000,
            _ => self.rng.range(1, 20) as usize,
        };
        let filter = if self.rng.percent(40) {
            Some(self.rng.below(self.filters.len() as u64) as usize)
        } else {
            None
        };
        self.doing = format!(
            "read $all {direction:?} from {start:?}, {max_count} events, filter {:?}",
            filter.map(|f| self.filters[f].what)
        );
        self.compare_all_read(direction, start, max_count, filter);
    }

    fn compare_all_read(
        &self,
        direction: Direction,
        start: AllStart,
        max_count: usize,
        filter: Option<usize>,
    ) -> Page {
        let f = filter.map(|i| &self.filters[i]);
        let want = self.model.read_all(direction, start, max_count, f);
        let got = self
            .log()
            .read_all(direction, start, max_count, f.map(|f| &f.filter))
            .map(|s| Page::of(&s))
            .map_err(fail);
        assert_eq!(
            got.as_ref(),
            Ok(&want),
            "{} (read $all {direction:?} from {start:?}, {max_count} events, filter {:?})",
            self.ctx(),
            f.map(|f| f.what)
        );
        want
    }

    fn inspect(&mut self, stream: &str) {
        self.doing = format!("inspect {stream}");
        assert_eq!(
            self.log().stream_revision(stream).map_err(fail),
            self.model.stream_revision(stream),
            "{}",
            self.ctx()
        );
        assert_eq!(
            self.log().stream_metadata(stream),
            self.model.stream_metadata(stream),
            "{}",
            self.ctx()
        );
    }

    /// Every stream read in full both ways, `$all` paged through both ways (with and without
    /// each filter), revisions and metadata.
    fn compare_everything(&mut self) {
        let mut names: Vec<String> = STREAMS.iter().map(|s| s.to_string()).collect();
        names.extend(STREAMS.iter().map(|s| meta_stream(s)));
        names.push("ghost-1".into());
        for s in &names {
            for direction in [Direction::Forwards, Direction::Backwards] {
                self.compare_stream_read(s, direction, StreamStart::Edge, usize::MAX);
            }
            self.inspect(s);
        }
        let filters: Vec<Option<usize>> = std::iter::once(None)
            .chain((0..self.filters.len()).map(Some))
            .collect();
        for filter in filters {
            for direction in [Direction::Forwards, Direction::Backwards] {
                let page_size = self.rng.range(1, 64) as usize;
                let mut seen = Vec::new();
                let mut start = AllStart::Edge;
                loop {
                    let page = self.compare_all_read(direction, start, page_size, filter);
                    seen.extend(page.events.iter().map(|r| r.position));
                    if page.end_of_log {
                        break;
                    }
                    start = AllStart::Position(Position(page.next));
                }
                // Paging visits every matching record once, in order.
                let f = filter.map(|i| &self.filters[i]);
                let mut expected: Vec<u64> = self
                    .model
                    .all
                    .iter()
                    .filter(|r| f.is_none_or(|f| f.accepts(r)))
                    .map(|r| r.position)
                    .collect();
                if direction == Direction::Backwards {
                    expected.reverse();
                }
                assert_eq!(seen, expected, "paging $all {direction:?}: {}", self.ctx());
            }
        }
    }
}

fn ids(events: &[ProposedEvent]) -> Vec<u128> {
    events
        .iter()
        .map(|e| e.id.as_u128() & 0xffff_ffff)
        .collect()
}

fn run(profile: Profile, seeds: std::ops::Range<u64>, steps: usize) {
    for seed in seeds {
        Harness::new(seed, profile).run(steps);
    }
}

#[test]
fn appends_and_retries_match_the_model() {
    let profile = Profile {
        deletes: false,
        metadata: false,
        reopen: true,
        bursts: true,
    };
    run(profile, 1000..1030, 300);
}

#[test]
fn metadata_limits_match_the_model() {
    let profile = Profile {
        deletes: false,
        metadata: true,
        reopen: true,
        bursts: true,
    };
    run(profile, 2000..2030, 300);
}

#[test]
fn deletes_and_tombstones_match_the_model() {
    let profile = Profile {
        deletes: true,
        metadata: false,
        reopen: true,
        bursts: true,
    };
    run(profile, 3000..3030, 300);
}

#[test]
fn everything_matches_the_model() {
    let profile = Profile {
        deletes: true,
        metadata: true,
        reopen: true,
        bursts: true,
    };
    run(profile, 4000..4040, 400);
}

// ---------------------------------------------------------------------------------------------
// What the model found, as plain regression tests.

fn small_log(storage: &MemoryStorage) -> EventLog {
    EventLog::builder_with_storage(Arc::new(storage.clone()))
        .config(config())
        .open()
        .unwrap()
}

fn plain(id: u128, bytes: usize) -> ProposedEvent {
    ProposedEvent::json(EventId::from_u128(id), "OrderPosted", vec![b'x'; bytes])
}

/// Found by the model (seed 3000): a stream marked deleted before it had any event was not
/// reopened by the append that then created it (only streams with events were treated as
/// soft-deleted), so its events stayed hidden; the next append reopened it past them, hiding
/// them for good. Soft-deleting a never-written stream is now refused (as in EventStoreDB), so
/// the marker comes from its metadata stream here.
#[test]
fn events_appended_after_deleting_a_never_written_stream_are_visible() {
    for delete_expecting in [ExpectedRevision::Any, ExpectedRevision::NoStream] {
        let log = small_log(&MemoryStorage::new());
        assert_eq!(
            log.delete("order-1", delete_expecting).map_err(fail),
            Err(Fail::WrongExpectedVersion {
                stream: "order-1".into(),
                expected: delete_expecting,
                actual: CurrentRevision::NoStream,
            })
        );
        let marker = ProposedEvent::json(
            EventId::from_u128(99),
            "$metadata",
            format!("{{\"$tb\":{}}}", i64::MAX),
        );
        log.append("$$order-1", ExpectedRevision::Any, vec![marker])
            .unwrap();
        assert_eq!(
            log.read_stream("order-1", Direction::Forwards, StreamStart::Edge, 10)
                .map_err(fail),
            Err(Fail::StreamNotFound("order-1".into()))
        );
        let a = log
            .append("order-1", ExpectedRevision::NoStream, vec![plain(1, 10)])
            .unwrap();
        assert_eq!((a.first_revision, a.count), (Revision(0), 1));
        let read = |log: &EventLog| {
            log.read_stream("order-1", Direction::Forwards, StreamStart::Edge, 10)
                .map(|v| v.iter().map(|e| e.revision.0).collect::<Vec<_>>())
                .map_err(fail)
        };
        assert_eq!(
            read(&log),
            Ok(vec![0]),
            "after deleting {delete_expecting:?}"
        );
        log.append(
            "order-1",
            ExpectedRevision::Exact(Revision(0)),
            vec![plain(2, 10)],
        )
        .unwrap();
        assert_eq!(
            read(&log),
            Ok(vec![0, 1]),
            "after deleting {delete_expecting:?}"
        );
    }
}

/// Found by the model (seed 4000): reading `$all` forwards from a position inside the last
/// record of a segment walked to the segment's end and started the scan there, at the next
/// segment's header, which failed as `Corrupt`. `subscribe_all(After(p))` reads from `p + 1`,
/// so resuming after the last event of any segment hit it.
#[test]
fn reading_all_from_inside_the_last_record_of_a_segment() {
    let storage = MemoryStorage::new();
    let log = small_log(&storage);
    let segment_bases = || crate::support::segment_bases(&storage);
    let mut id = 0;
    while segment_bases().len() < 2 {
        id += 1;
        log.append("order-1", ExpectedRevision::Any, vec![plain(id, 40 << 10)])
            .unwrap();
    }
    // And a few events in the second segment.
    for _ in 0..3 {
        id += 1;
        log.append("order-1", ExpectedRevision::Any, vec![plain(id, 100)])
            .unwrap();
    }
    let second_base = segment_bases()[1];
    let all = log
        .read_all(Direction::Forwards, AllStart::Edge, usize::MAX, None)
        .unwrap()
        .events;
    let last_of_first = all
        .iter()
        .filter(|e| e.position.0 < second_base)
        .last()
        .unwrap()
        .position;
    let first_of_second = all
        .iter()
        .find(|e| e.position.0 >= second_base)
        .unwrap()
        .position;

    let page = log
        .read_all(
            Direction::Forwards,
            AllStart::Position(Position(last_of_first.0 + 1)),
            1,
            None,
        )
        .map(|p| p.events.iter().map(|e| e.position).collect::<Vec<_>>())
        .map_err(fail);
    assert_eq!(page, Ok(vec![first_of_second]));

    let mut sub = log.subscribe_all(SubscribeFrom::After(last_of_first), AllOptions::default());
    match sub.next_timeout(Duration::from_secs(10)) {
        Ok(Some(SubscriptionItem::Event(e))) => assert_eq!(e.position, first_of_second),
        other => panic!("expected the first event of the second segment, got {other:?}"),
    }
}

/// As in EventStoreDB: once a stream is tombstoned its metadata stream reads as deleted too,
/// even after metadata is written to it again.
#[test]
fn a_tombstoned_streams_metadata_reads_as_deleted() {
    let log = small_log(&MemoryStorage::new());
    log.append("order-1", ExpectedRevision::Any, vec![plain(1, 10)])
        .unwrap();
    let meta = |id| ProposedEvent::json(EventId::from_u128(id), "$metadata", r#"{"k":1}"#);
    log.append("$$order-1", ExpectedRevision::Any, vec![meta(2)])
        .unwrap();
    log.tombstone("order-1", ExpectedRevision::Any).unwrap();
    let read_meta = |log: &EventLog| {
        log.read_stream("$$order-1", Direction::Backwards, StreamStart::Edge, 1)
            .map(|v| v.len())
            .map_err(fail)
    };
    assert_eq!(
        read_meta(&log),
        Err(Fail::StreamDeleted("$$order-1".into()))
    );
    log.append("$$order-1", ExpectedRevision::Any, vec![meta(3)])
        .unwrap();
    assert_eq!(
        read_meta(&log),
        Err(Fail::StreamDeleted("$$order-1".into()))
    );
}
