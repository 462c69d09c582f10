//! The `EventLog` handle: configuration, appends (through the writer thread) and reads.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;

use hashbrown::HashMap;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::format::{self, RecordKind, SEGMENT_HEADER_LEN};
use crate::index::StreamIndex;
use crate::metadata::{self, StreamMetadata};
use crate::segments::{self, ForwardScan, Segments};
use crate::storage::{FileStorage, Storage};
use crate::subscription::Live;
use crate::types::{
    AllStart, Appended, CurrentRevision, Deleted, Direction, ExpectedRevision, Position,
    ProposedEvent, RecordedEvent, Revision, StreamStart,
};

/// Source of creation times and of "now" for `$maxAge`.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// 100 ns ticks since the Unix epoch.
    fn now_ticks(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ticks(&self) -> i64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(d.as_nanos() / 100).unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to (for tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock at `ticks`.
    pub fn new(ticks: i64) -> Self {
        ManualClock(AtomicU64::new(ticks as u64))
    }
    /// Moves the clock forward.
    pub fn advance_secs(&self, secs: u64) {
        self.0.fetch_add(secs * 10_000_000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ticks(&self) -> i64 {
        self.0.load(Ordering::SeqCst) as i64
    }
}

/// Tuning and limits. Every field has a sane default.
#[derive(Clone, Debug)]
pub struct Config {
    /// Bytes per segment file before the next one is started.
    pub segment_size: u64,
    /// Largest event (data plus metadata) in bytes.
    pub max_event_bytes: usize,
    /// Most events in one append.
    pub max_batch_events: usize,
    /// Most encoded bytes in one append.
    pub max_batch_bytes: usize,
    /// Longest stream name in bytes.
    pub max_stream_name_bytes: usize,
    /// Longest event type in bytes.
    pub max_event_type_bytes: usize,
    /// Event ids remembered for idempotent retries with `Any`/`StreamExists` expectations.
    pub recent_ids: usize,
    /// Events buffered per live subscriber before it falls back to reading the disk.
    pub subscriber_buffer: usize,
    /// Bytes of events buffered per live subscriber before it falls back to reading the disk
    /// (or, with [`crate::Subscription::fail_when_behind`], ends with [`Error::FellBehind`]).
    pub subscriber_buffer_bytes: u64,
    /// Bytes of events buffered across all live subscribers; a subscriber whose next event
    /// would take the total past it overflows as if its own buffer were full.
    pub subscribers_buffer_bytes: u64,
    /// After an open that had to index more than this many events, the index snapshot is
    /// rewritten right away so that the next open is fast.
    pub snapshot_after_events: u64,
    /// Most requests the writer takes into one commit group.
    pub max_group_requests: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            segment_size: 256 << 20,
            max_event_bytes: 16 << 20,
            max_batch_events: 10_000,
            max_batch_bytes: 64 << 20,
            max_stream_name_bytes: 1024,
            max_event_type_bytes: 1024,
            recent_ids: 100_000,
            subscriber_buffer: 4096,
            subscriber_buffer_bytes: 8 << 20,
            subscribers_buffer_bytes: 512 << 20,
            snapshot_after_events: 1_000_000,
            max_group_requests: 4096,
        }
    }
}

/// Opens an [`EventLog`].
#[derive(Debug)]
pub struct Builder {
    storage: StorageChoice,
    config: Config,
    clock: Arc<dyn Clock>,
}

#[derive(Debug)]
enum StorageChoice {
    Dir(std::path::PathBuf),
    Custom(Arc<dyn Storage>),
}

impl Builder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    /// Bytes per segment.
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.config.segment_size = bytes;
        self
    }
    /// Largest event in bytes.
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.config.max_event_bytes = bytes;
        self
    }
    /// Events buffered per live subscriber.
    pub fn subscriber_buffer(mut self, events: usize) -> Self {
        self.config.subscriber_buffer = events;
        self
    }
    /// Bytes buffered per live subscriber, and across all of them.
    pub fn subscriber_buffer_bytes(mut self, per_subscriber: u64, total: u64) -> Self {
        self.config.subscriber_buffer_bytes = per_subscriber;
        self.config.subscribers_buffer_bytes = total;
        self
    }
    /// The clock used for creation times and `$maxAge`.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Opens the log, recovering from a crash if needed.
    pub fn open(self) -> Result<EventLog> {
        let c = &self.config;
        // A batch that reopens a soft-deleted stream carries one more record: the stream's
        // metadata, rewritten with a new `$tb` (re-encoding may grow it a little).
        let reopen_record = format::frame_len(
            c.max_stream_name_bytes + 2,
            metadata::METADATA_EVENT_TYPE.len(),
            0,
            c.max_event_bytes + c.max_event_bytes / 4 + 1024,
        ) as u64;
        if c.segment_size < SEGMENT_HEADER_LEN + c.max_batch_bytes as u64 + reopen_record {
            return Err(Error::InvalidArgument(format!(
                "segment size {} cannot hold a batch of {} bytes",
                c.segment_size, c.max_batch_bytes
            )));
        }
        if c.max_batch_events == 0 {
            return Err(Error::InvalidArgument(
                "the batch event limit must be at least 1".into(),
            ));
        }
        if c.max_event_bytes > c.max_batch_bytes {
            return Err(Error::InvalidArgument(
                "the event size limit must not exceed the batch size limit".into(),
            ));
        }
        if max_frame(c) > format::MAX_PAYLOAD_LEN {
            return Err(Error::InvalidArgument(format!(
                "an event size limit of {} bytes makes records larger than the format's {} bytes",
                c.max_event_bytes,
                format::MAX_PAYLOAD_LEN
            )));
        }
        let (storage, lock) = match self.storage {
            StorageChoice::Custom(s) => (s, None),
            StorageChoice::Dir(dir) => {
                let fs = FileStorage::new(&dir)
                    .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
                let lock = lock_dir(&dir)?;
                (Arc::new(fs) as Arc<dyn Storage>, Some(lock))
            }
        };
        crate::recovery::open(storage, self.config, self.clock, lock)
    }
}

pub(crate) fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join("LOCK");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::io(format!("locking {}", path.display()), e))
        }
    }
}

/// Index state shared between the writer (which updates it before a group is durable) and
/// readers (which only look at positions below the committed end).
#[derive(Debug, Default)]
pub(crate) struct IndexState {
    pub streams: StreamIndex,
    /// Tombstoned streams and the position of their tombstone.
    pub tombstones: HashMap<String, u64>,
    /// Metadata history per described stream: (position of the metadata event, metadata).
    pub metadata: HashMap<String, Vec<(u64, Arc<StreamMetadata>)>>,
}

impl IndexState {
    /// The metadata of `stream` in effect at `head` (only events below it count).
    pub fn metadata_at(&self, stream: &str, head: u64) -> Option<Arc<StreamMetadata>> {
        self.metadata
            .get(stream)?
            .iter()
            .rev()
            .find(|(p, _)| *p < head)
            .map(|(_, m)| m.clone())
    }

    /// Whether `stream` is tombstoned as of `head`.
    pub fn tombstoned_at(&self, stream: &str, head: u64) -> bool {
        self.tombstones.get(stream).is_some_and(|p| *p < head)
    }

    /// Records a metadata event.
    pub fn set_metadata(&mut self, stream: &str, position: u64, m: StreamMetadata, head: u64) {
        let history = self.metadata.entry(stream.to_string()).or_default();
        // Only the newest committed entry and anything newer can still be needed.
        if let Some(keep_from) = history.iter().rposition(|(p, _)| *p < head) {
            history.drain(..keep_from);
        }
        history.push((position, Arc::new(m)));
    }

    /// Forgets everything at or above `end`: records the writer indexed but never made
    /// durable (the log is recovering from a failed write).
    pub fn roll_back(&mut self, end: u64) {
        self.streams.roll_back(end);
        self.tombstones.retain(|_, p| *p < end);
        self.metadata.retain(|_, history| {
            history.retain(|(p, _)| *p < end);
            !history.is_empty()
        });
    }

    /// Applies one record, as recovery and the writer do.
    pub fn apply(&mut self, rec: &format::Record, head: u64) {
        let e = &rec.event;
        self.record(
            rec.kind,
            e.stream(),
            e.event_type(),
            e.data_slice(),
            e.position.0,
            head,
            true,
        );
    }

    /// The index's view of one record: positions (if `index_position`), tombstones and stream
    /// metadata. The one place that decides what a record means to the index, used by the
    /// writer as it writes and by recovery as it scans.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        kind: RecordKind,
        stream: &str,
        event_type: &str,
        data: &[u8],
        position: u64,
        head: u64,
        index_position: bool,
    ) {
        match kind {
            RecordKind::Tombstone => {
                self.tombstones.insert(stream.to_string(), position);
            }
            RecordKind::Event => {
                if index_position {
                    self.streams.push(stream, position);
                }
                if let Some(target) = metadata::target_of(stream)
                    && event_type == metadata::METADATA_EVENT_TYPE
                    && let Ok(m) = StreamMetadata::parse(data)
                {
                    self.set_metadata(target, position, m, head);
                }
            }
        }
    }
}

pub(crate) type Reply = Box<dyn FnOnce(Result<Outcome>) + Send + 'static>;

/// What the writer is asked to do.
pub(crate) enum Op {
    Append {
        stream: String,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    },
    Delete {
        stream: String,
        expected: ExpectedRevision,
    },
    Tombstone {
        stream: String,
        expected: ExpectedRevision,
    },
}

pub(crate) struct Request {
    pub op: Op,
    pub reply: Reply,
}

/// A writer's answer.
#[derive(Debug)]
pub(crate) enum Outcome {
    Appended(Appended),
    Deleted(Deleted),
}

#[derive(Default)]
pub(crate) struct Queue {
    pub requests: Vec<Request>,
    pub closing: bool,
    /// The writer is asleep on `queue_cv` (so only then is a wake-up, a syscall, needed).
    pub writer_waiting: bool,
}

/// State shared by the handle, the writer thread and subscriptions.
pub(crate) struct Shared {
    pub storage: Arc<dyn Storage>,
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub segments: Segments,
    pub index: RwLock<IndexState>,
    /// Committed end: every record below it is durable and visible.
    pub head: AtomicU64,
    pub queue: Mutex<Queue>,
    pub queue_cv: Condvar,
    pub poisoned: Mutex<Option<Fault>>,
    /// Set with `poisoned`, for a lock-free check on the append path.
    pub is_poisoned: std::sync::atomic::AtomicBool,
    /// Told of every change of [`LogHealth`]; the lock also orders the changes, so that every
    /// watcher sees them in the order they happened.
    pub health_watchers: Mutex<Vec<HealthWatcher>>,
    /// Wrapping sum of `format::fingerprint` over every record written: the index snapshot
    /// records it, so that a snapshot is only used with the exact log it describes.
    pub fingerprint: AtomicU64,
    /// Committed end covered by the index snapshot on disk (to skip rewriting an unchanged one).
    pub snapshot_end: AtomicU64,
    /// Counters for [`EventLog::stats`].
    pub stats: StatCounters,
    /// Groups handed to the sync thread and not finished yet.
    pub in_flight: std::sync::atomic::AtomicUsize,
    pub live: Live,
    /// What the open found and did.
    pub recovery: crate::recovery::RecoveryReport,
    /// Held for the directory lock's lifetime (file storage only).
    pub _lock: Option<std::fs::File>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("head", &self.head)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    pub fn index(&self) -> RwLockReadGuard<'_, IndexState> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the index snapshot for everything below `head`, which must be everything written
    /// (the log is closing, or has just been opened).
    pub fn write_snapshot(&self, head: u64) -> Result<()> {
        let idx = self.index();
        let tombstones: Vec<(String, u64)> = idx
            .tombstones
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let fingerprint = self.fingerprint.load(Ordering::Acquire);
        idx.streams
            .write_snapshot(&*self.storage, head, fingerprint, &tombstones)?;
        self.snapshot_end.store(head, Ordering::Release);
        Ok(())
    }

    /// Poisons the log, keeping the first cause unless a fatal fault follows a transient one
    /// (a failed fsync while recovering from a full disk ends the recovery).
    pub fn poison(&self, fault: Fault) {
        let watchers = self
            .health_watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let health = {
            let mut p = self.poisoned.lock().unwrap_or_else(|e| e.into_inner());
            let replace = match &*p {
                None => true,
                Some(old) => old.transient && !fault.transient,
            };
            self.is_poisoned.store(true, Ordering::Release);
            if !replace {
                return;
            }
            *p = Some(fault);
            health_of(p.as_ref())
        };
        for w in watchers.iter() {
            w(&health);
        }
        drop(watchers);
        // Wakes an idle writer so that it starts recovering (taking the queue's lock first,
        // so that the wake-up cannot fall between its check and its wait).
        drop(self.queue());
        self.queue_cv.notify_all();
    }

    /// Whether the writer should be recovering from a transient fault.
    pub fn recovering(&self) -> bool {
        self.is_poisoned.load(Ordering::Acquire) && self.fault().is_some_and(|f| f.transient)
    }

    /// Lifts a transient fault once the writer has recovered from it.
    pub fn unpoison(&self) {
        let watchers = self
            .health_watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *self.poisoned.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.is_poisoned.store(false, Ordering::Release);
        for w in watchers.iter() {
            w(&LogHealth::Healthy);
        }
    }

    pub fn fault(&self) -> Option<Fault> {
        self.poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn poison_cause(&self) -> Option<String> {
        self.fault().map(|f| f.cause)
    }

    pub fn health(&self) -> LogHealth {
        health_of(
            self.poisoned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref(),
        )
    }
}

/// Why the log stopped acknowledging writes.
#[derive(Clone, Debug)]
pub(crate) struct Fault {
    pub cause: String,
    /// Out of space (ENOSPC, EDQUOT): the writer recovers by itself once space is freed.
    /// Anything else (a failed fsync above all) is fatal until the log is reopened.
    pub transient: bool,
}

impl Fault {
    /// A fault from an I/O error while doing `what`.
    pub fn io(what: impl std::fmt::Display, e: &std::io::Error) -> Fault {
        Fault {
            cause: format!("{what}: {e}"),
            transient: matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ),
        }
    }

    /// A fault that no retry can cure.
    pub fn fatal(cause: impl Into<String>) -> Fault {
        Fault {
            cause: cause.into(),
            transient: false,
        }
    }
}

fn health_of(fault: Option<&Fault>) -> LogHealth {
    match fault {
        None => LogHealth::Healthy,
        Some(f) if f.transient => LogHealth::Recovering {
            cause: f.cause.clone(),
        },
        Some(f) => LogHealth::Failed {
            cause: f.cause.clone(),
        },
    }
}

pub(crate) type HealthWatcher = Box<dyn Fn(&LogHealth) + Send + Sync + 'static>;

/// Whether the log accepts appends. See "When a write fails" in the writer module's docs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogHealth {
    /// Appends are accepted.
    Healthy,
    /// The disk is full (ENOSPC or EDQUOT): appends fail with [`Error::Poisoned`] while the
    /// writer retries, with back-off, to cut the log back to its last durable end; once that
    /// works it accepts appends again by itself.
    Recovering {
        /// The failure, with the file and operation.
        cause: String,
    },
    /// A failure no retry may cure (a failed fsync: the page cache's state is unknown after
    /// it): appends fail until the process reopens the log, which recovery makes consistent.
    Failed {
        /// The failure, with the file and operation.
        cause: String,
    },
}

/// An embedded, durable event log. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct EventLog {
    pub(crate) shared: Arc<Shared>,
    pub(crate) writer: Mutex<Option<JoinHandle<()>>>,
}

/// Counters of the writer's work since the log was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records written (events, plus the log's own metadata and tombstone records).
    pub records: u64,
    /// Commit groups written.
    pub groups: u64,
    /// Durability points: rounds of fdatasync (one per segment written in the round).
    pub syncs: u64,
    /// Records scanned by `$all` reads and subscription catch-ups (matching a filter or not).
    pub records_scanned: u64,
    /// Bytes of events held in the live buffers of all subscribers now.
    pub subscriber_bytes: u64,
    /// The most bytes of events ever held in the live buffers of all subscribers at once.
    pub subscriber_bytes_peak: u64,
}

#[derive(Debug, Default)]
pub(crate) struct StatCounters {
    pub records: AtomicU64,
    pub groups: AtomicU64,
    pub syncs: AtomicU64,
    pub scanned: AtomicU64,
}

/// One page of a `$all` read.
#[derive(Debug, Clone)]
pub struct AllSlice {
    /// Matching events, in the read's direction.
    pub events: Vec<RecordedEvent>,
    /// Where the next page starts: pass it back as `AllStart::Position`.
    pub next: Position,
    /// Whether the read reached the end (forwards: the committed end; backwards: the start).
    pub end_of_log: bool,
}

/// Most bytes one `$all` read scans before returning a page (so that a selective filter
/// still returns promptly, with `next` to continue from).
const MAX_SCAN_BYTES: u64 = 64 << 20;

/// Longest a filtered catch-up page (and [`EventLog::read_all_within`] as the embedded store
/// calls it) scans before it returns the page it has (possibly empty, with `end_of_log` false
/// and `next` to continue from). A filter can cost milliseconds per
/// event, so a read bounded only by bytes could run for minutes; in slices, the caller gets
/// control back often enough to notice that its client has gone.
pub const FILTERED_SCAN_SLICE: std::time::Duration = std::time::Duration::from_millis(10);

/// How far one internal `$all` read may go before it returns the page it has.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScanLimits {
    /// Most events returned.
    pub max_count: usize,
    /// Most bytes of records returned (their frames); at least one event is returned.
    pub max_event_bytes: u64,
    /// Longest the scan runs, checked after every record.
    pub slice: Option<std::time::Duration>,
}

impl ScanLimits {
    /// The limits of a public read: `max_count` events, perhaps a time slice.
    pub(crate) fn read(max_count: usize, slice: Option<std::time::Duration>) -> Self {
        ScanLimits {
            max_count,
            max_event_bytes: u64::MAX,
            slice,
        }
    }
}

impl EventLog {
    /// A builder for a log in directory `dir` (created if missing).
    pub fn builder(dir: impl AsRef<Path>) -> Builder {
        Builder {
            storage: StorageChoice::Dir(dir.as_ref().to_path_buf()),
            config: Config::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// A builder for a log on any storage backend.
    pub fn builder_with_storage(storage: Arc<dyn Storage>) -> Builder {
        Builder {
            storage: StorageChoice::Custom(storage),
            config: Config::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// How much the writer has done since the log was opened.
    pub fn stats(&self) -> Stats {
        let s = &self.shared.stats;
        Stats {
            records: s.records.load(Ordering::Relaxed),
            groups: s.groups.load(Ordering::Relaxed),
            syncs: s.syncs.load(Ordering::Relaxed),
            records_scanned: s.scanned.load(Ordering::Relaxed),
            subscriber_bytes: self.shared.live.buffered_bytes(),
            subscriber_bytes_peak: self.shared.live.peak_bytes(),
        }
    }

    /// Whether the log accepts appends now.
    pub fn health(&self) -> LogHealth {
        self.shared.health()
    }

    /// Calls `watcher` with the current health at once, then on every change, in order. It
    /// runs on one of the log's threads (so it must be quick and must not call into the log);
    /// it is dropped when the log is.
    pub fn on_health_change(&self, watcher: impl Fn(&LogHealth) + Send + Sync + 'static) {
        let mut watchers = self
            .shared
            .health_watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        watcher(&self.shared.health());
        watchers.push(Box::new(watcher));
    }

    /// The committed end of the log: every event has a position below it, and a subscriber
    /// that has seen everything below it is caught up.
    pub fn head(&self) -> Position {
        Position(self.shared.head())
    }

    fn submit(&self, op: Op, reply: Reply) {
        if self.shared.is_poisoned.load(Ordering::Acquire)
            && let Some(cause) = self.shared.poison_cause()
        {
            reply(Err(Error::Poisoned { cause }));
            return;
        }
        let mut q = self.shared.queue();
        if q.closing {
            drop(q);
            reply(Err(Error::Closed));
            return;
        }
        q.requests.push(Request { op, reply });
        let wake = q.writer_waiting;
        drop(q);
        if wake {
            self.shared.queue_cv.notify_one();
        }
    }

    /// Appends `events` to `stream` atomically if the stream matches `expected`, and returns
    /// once they are durable.
    pub fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<Appended> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.append_with(
            stream.to_string(),
            expected,
            events,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// Like [`EventLog::append`], but calls `done` (on one of the log's threads, so it must be
    /// quick; a panic in it is contained)
    /// instead of blocking.
    pub fn append_with(
        &self,
        stream: String,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
        done: Box<dyn FnOnce(Result<Appended>) + Send + 'static>,
    ) {
        if let Err(e) = crate::validate::append(&self.shared.config, &stream, &events) {
            done(Err(e));
            return;
        }
        self.submit(
            Op::Append {
                stream,
                expected,
                events,
            },
            Box::new(move |r| {
                done(r.map(|o| match o {
                    Outcome::Appended(a) => a,
                    Outcome::Deleted(d) => Appended {
                        first_revision: Revision(0),
                        count: 0,
                        position: d.position,
                    },
                }))
            }),
        );
    }

    /// Soft-deletes `stream`: reads find nothing, and a later append reopens it with revisions
    /// continuing where they were.
    pub fn delete(&self, stream: &str, expected: ExpectedRevision) -> Result<Deleted> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.delete_with(
            stream.to_string(),
            expected,
            false,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// Deletes `stream` for good: every later append or read fails with `StreamDeleted`.
    pub fn tombstone(&self, stream: &str, expected: ExpectedRevision) -> Result<Deleted> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.delete_with(
            stream.to_string(),
            expected,
            true,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// Soft-deletes (or, with `tombstone`, tombstones) `stream` and calls `done` on one of the
    /// log's threads once durable.
    pub fn delete_with(
        &self,
        stream: String,
        expected: ExpectedRevision,
        tombstone: bool,
        done: Box<dyn FnOnce(Result<Deleted>) + Send + 'static>,
    ) {
        if let Err(e) = crate::validate::deletable(&self.shared.config, &stream) {
            done(Err(e));
            return;
        }
        let op = if tombstone {
            Op::Tombstone { stream, expected }
        } else {
            Op::Delete { stream, expected }
        };
        self.submit(
            op,
            Box::new(move |r| {
                done(r.map(|o| match o {
                    Outcome::Deleted(d) => d,
                    Outcome::Appended(a) => Deleted {
                        position: a.position,
                    },
                }))
            }),
        );
    }

    /// The stream's current (committed) revision, ignoring metadata limits. A tombstoned
    /// stream is an error.
    pub fn stream_revision(&self, stream: &str) -> Result<CurrentRevision> {
        crate::validate::stream_name(&self.shared.config, stream)?;
        // The committed end is read under the index lock: metadata history is pruned against
        // the end the writer saw, which is never behind this one.
        let idx = self.shared.index();
        let head = self.shared.head();
        if idx.tombstoned_at(stream, head) {
            return Err(Error::StreamDeleted {
                stream: stream.to_string(),
            });
        }
        let n = idx.streams.get(stream).map_or(0, |p| p.len_below(head));
        Ok(match n.checked_sub(1) {
            Some(r) => CurrentRevision::Current(Revision(r)),
            None => CurrentRevision::NoStream,
        })
    }

    /// The stream's committed metadata, if any was set.
    pub fn stream_metadata(&self, stream: &str) -> Option<StreamMetadata> {
        let idx = self.shared.index();
        let head = self.shared.head();
        idx.metadata_at(stream, head).map(|m| (*m).clone())
    }

    /// Reads up to `max_count` events of `stream`, honouring `$tb`, `$maxCount` and `$maxAge`.
    /// A stream with no events, or soft-deleted, is `StreamNotFound`; a tombstoned one is
    /// `StreamDeleted`.
    pub fn read_stream(
        &self,
        stream: &str,
        direction: Direction,
        start: StreamStart,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>> {
        read_stream(&self.shared, stream, direction, start, max_count)
    }

    /// Reads a page of `$all`. Forwards from a position includes the event at it; backwards
    /// from a position returns events before it.
    pub fn read_all(
        &self,
        direction: Direction,
        start: AllStart,
        max_count: usize,
        filter: Option<&Filter>,
    ) -> Result<AllSlice> {
        read_all(
            &self.shared,
            direction,
            start,
            ScanLimits::read(max_count, None),
            filter,
        )
    }

    /// [`EventLog::read_all`] that also returns once it has scanned for `slice` (checked
    /// after every record; at least one record is scanned), possibly with no events, with
    /// `end_of_log` false and `next` to continue from. For callers that serve a client: a
    /// filter can cost up to a millisecond per event, and between slices the caller can
    /// check that its client is still there. [`FILTERED_SCAN_SLICE`] is a good slice.
    pub fn read_all_within(
        &self,
        direction: Direction,
        start: AllStart,
        max_count: usize,
        filter: Option<&Filter>,
        slice: std::time::Duration,
    ) -> Result<AllSlice> {
        read_all(
            &self.shared,
            direction,
            start,
            ScanLimits::read(max_count, Some(slice)),
            filter,
        )
    }

    /// What opening the log found and did: the proven-durable end, and the torn tail cut from
    /// the last segment, if any (for the caller to log).
    pub fn recovery(&self) -> &crate::recovery::RecoveryReport {
        &self.shared.recovery
    }

    /// Stops the writer after the requests already queued, and writes the index snapshot so
    /// that the next open is fast.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<()> {
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(handle) = handle else {
            return Ok(());
        };
        self.shared.queue().closing = true;
        self.shared.queue_cv.notify_all();
        let _ = handle.join();
        self.shared.live.close_all();
        if self.shared.poison_cause().is_some() {
            return Ok(());
        }
        let head = self.shared.head();
        if self.shared.snapshot_end.load(Ordering::Acquire) == head {
            return Ok(());
        }
        self.shared.write_snapshot(head)
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

pub(crate) fn read_stream(
    shared: &Shared,
    stream: &str,
    direction: Direction,
    start: StreamStart,
    max_count: usize,
) -> Result<Vec<RecordedEvent>> {
    crate::validate::stream_name(&shared.config, stream)?;
    let cutoff_of = |m: &StreamMetadata| {
        m.max_age_secs.map(|age| {
            let age = i64::try_from(age).unwrap_or(i64::MAX);
            shared
                .clock
                .now_ticks()
                .saturating_sub(age.saturating_mul(10_000_000))
        })
    };
    let (positions, cutoff) = {
        let idx = shared.index();
        let head = shared.head();
        // A tombstoned stream's metadata stream reads as deleted too, as in EventStoreDB
        // (its metadata may still be written, but nobody reads it back).
        let target = metadata::target_of(stream).unwrap_or(stream);
        if idx.tombstoned_at(target, head) {
            return Err(Error::StreamDeleted {
                stream: stream.to_string(),
            });
        }
        let not_found = || Error::StreamNotFound {
            stream: stream.to_string(),
        };
        let p = idx.streams.get(stream).ok_or_else(not_found)?;
        let n = p.len_below(head);
        let meta = idx.metadata_at(stream, head);
        if n == 0 || meta.as_ref().is_some_and(|m| m.is_deleted_marker()) {
            return Err(not_found());
        }
        let mut lo = meta.as_ref().and_then(|m| m.truncate_before).unwrap_or(0);
        if let Some(max) = meta.as_ref().and_then(|m| m.max_count) {
            lo = lo.max(n.saturating_sub(max));
        }
        let cutoff = meta.as_deref().and_then(cutoff_of);
        // With `$maxAge`, expired events are skipped after reading, so the candidates cannot
        // be cut at `max_count` up front.
        let cap = if cutoff.is_some() {
            usize::MAX
        } else {
            max_count
        };
        let mut positions: Vec<u64> = Vec::new();
        match direction {
            Direction::Forwards => {
                let from = match start {
                    StreamStart::Edge => lo,
                    StreamStart::Revision(r) => r.0.max(lo),
                };
                let mut r = from;
                while r < n && positions.len() < cap {
                    positions.push(p.get(r).unwrap_or(0));
                    r += 1;
                }
            }
            Direction::Backwards => {
                let from = match start {
                    StreamStart::Edge => n - 1,
                    StreamStart::Revision(r) => r.0.min(n - 1),
                };
                let mut r = from;
                while r >= lo && positions.len() < cap {
                    positions.push(p.get(r).unwrap_or(0));
                    match r.checked_sub(1) {
                        Some(x) => r = x,
                        None => break,
                    }
                }
            }
        }
        (positions, cutoff)
    };
    let mut out = Vec::with_capacity(positions.len().min(max_count));
    for pos in positions {
        if out.len() >= max_count {
            break;
        }
        let (seg, _) = shared
            .segments
            .find(pos)
            .ok_or_else(|| Error::corrupt("index", pos, "position outside every segment"))?;
        let rec = segments::read_record(&seg, pos)?;
        if rec.event.stream() != stream {
            return Err(Error::corrupt(
                &seg.name,
                pos - seg.base,
                "index points at a record of another stream",
            ));
        }
        if cutoff.is_some_and(|c| rec.event.created_ticks < c) {
            continue;
        }
        out.push(rec.event);
    }
    Ok(out)
}

/// The largest frame this configuration can write (an event at the size limit with the longest
/// names, or the metadata record a reopening append adds).
pub(crate) fn max_frame(config: &Config) -> usize {
    format::frame_len(
        u16::MAX as usize,
        u16::MAX as usize,
        config.max_event_bytes,
        config.max_event_bytes / 4 + 1024,
    )
}

/// Whether a record found by probing is one the log wrote there: the index must place it at
/// this position. (Event data can hold bytes that look like a valid frame.)
fn is_indexed(shared: &Shared, rec: &format::Record) -> bool {
    let pos = rec.event.position.0;
    let stream = rec.event.stream();
    let idx = shared.index();
    match rec.kind {
        RecordKind::Tombstone => idx.tombstones.get(stream) == Some(&pos),
        RecordKind::Event => {
            idx.streams
                .get(stream)
                .and_then(|p| p.get(rec.event.revision.0))
                == Some(pos)
        }
    }
}

/// The position right after the committed record at `pos`, if one starts there; otherwise
/// `pos + 1` (so that reads from it start at the next record either way).
pub(crate) fn after(shared: &Shared, pos: u64) -> u64 {
    let head = shared.head();
    if pos < head
        && let Some((seg, next)) = shared.segments.find(pos)
    {
        let seg_end = next.as_ref().map_or(head, |n| n.base).min(head);
        if let Some(rec) = segments::try_record_at(&seg, pos, seg_end, max_frame(&shared.config))
            && is_indexed(shared, &rec)
        {
            return rec.event.next_position();
        }
    }
    pos.saturating_add(1)
}

/// Finds the first record boundary at or after `pos` (forwards) in the committed log.
pub(crate) fn locate(shared: &Shared, pos: u64, head: u64) -> Result<u64> {
    let first = shared.segments.first_base() + SEGMENT_HEADER_LEN;
    if pos <= first {
        return Ok(first.min(head));
    }
    if pos >= head {
        return Ok(head);
    }
    let Some((seg, next)) = shared.segments.find(pos) else {
        return Ok(head);
    };
    let seg_end = next.as_ref().map_or(head, |n| n.base).min(head);
    // Past the last record of this segment: the next segment's first record (or the end).
    let after_segment = next
        .as_ref()
        .map_or(head, |n| n.base + SEGMENT_HEADER_LEN)
        .min(head);
    let pos = pos.max(seg.base + SEGMENT_HEADER_LEN);
    if pos >= seg_end {
        return Ok(after_segment);
    }
    if segments::try_record_at(&seg, pos, seg_end, max_frame(&shared.config))
        .is_some_and(|rec| is_indexed(shared, &rec))
    {
        return Ok(pos);
    }
    // Not a record boundary: walk the segment from its start.
    let mut scan = ForwardScan::new(seg.clone(), seg.base + SEGMENT_HEADER_LEN, seg_end);
    while scan.position() < pos {
        if scan.next_record()?.is_none() {
            break;
        }
    }
    if scan.position() >= seg_end {
        return Ok(after_segment);
    }
    Ok(scan.position())
}

pub(crate) fn read_all(
    shared: &Shared,
    direction: Direction,
    start: AllStart,
    limits: ScanLimits,
    filter: Option<&Filter>,
) -> Result<AllSlice> {
    let head = shared.head();
    let max_count = limits.max_count;
    let started = limits.slice.map(|s| (std::time::Instant::now(), s));
    let mut events = Vec::with_capacity(max_count.min(4096));
    let mut event_bytes = 0u64;
    // Whether the page is full: by count, by bytes or by time.
    let full = |events: &Vec<RecordedEvent>, event_bytes: u64, scanned: u64| {
        events.len() >= max_count
            || event_bytes >= limits.max_event_bytes
            || scanned >= MAX_SCAN_BYTES
            || started.is_some_and(|(t, s)| t.elapsed() >= s)
    };
    match direction {
        Direction::Forwards => {
            let from = match start {
                AllStart::Edge => 0,
                AllStart::Position(p) => p.0,
            };
            let mut pos = locate(shared, from, head)?;
            let mut scanned = 0u64;
            while pos < head && !full(&events, event_bytes, scanned) {
                let Some((seg, next)) = shared.segments.find(pos) else {
                    break;
                };
                let seg_end = next.as_ref().map_or(head, |n| n.base).min(head);
                if pos >= seg_end {
                    pos = next.map_or(head, |n| n.base + SEGMENT_HEADER_LEN);
                    continue;
                }
                let mut scan = ForwardScan::new(seg, pos, seg_end);
                while !full(&events, event_bytes, scanned) {
                    let Some(rec) = scan.next_record()? else {
                        break;
                    };
                    scanned += rec.frame_len();
                    shared.stats.scanned.fetch_add(1, Ordering::Relaxed);
                    if filter.map_or(Ok(true), |f| f.matches(&rec.event))? {
                        event_bytes += rec.frame_len();
                        events.push(rec.event);
                    }
                }
                pos = scan.position();
                if pos >= seg_end {
                    pos = match next {
                        Some(n) if n.base < head => n.base + SEGMENT_HEADER_LEN,
                        _ => head,
                    };
                }
            }
            Ok(AllSlice {
                events,
                next: Position(pos.min(head)),
                end_of_log: pos >= head,
            })
        }
        Direction::Backwards => {
            let mut end = match start {
                AllStart::Edge => head,
                AllStart::Position(p) => locate(shared, p.0, head)?,
            };
            let mut scanned = 0u64;
            let first = shared.segments.first_base() + SEGMENT_HEADER_LEN;
            while end > first && !full(&events, event_bytes, scanned) {
                let Some((seg, _)) = shared.segments.find(end - 1) else {
                    break;
                };
                if end <= seg.base + SEGMENT_HEADER_LEN {
                    // Start of this segment: continue at the end of the previous one.
                    match shared.segments.before(seg.base) {
                        Some(_) => {
                            end = seg.base;
                            continue;
                        }
                        None => break,
                    }
                }
                let rec = segments::read_record_before(&seg, end)?;
                scanned += rec.frame_len();
                shared.stats.scanned.fetch_add(1, Ordering::Relaxed);
                end = rec.event.position.0;
                if filter.map_or(Ok(true), |f| f.matches(&rec.event))? {
                    event_bytes += rec.frame_len();
                    events.push(rec.event);
                }
            }
            Ok(AllSlice {
                events,
                next: Position(end),
                end_of_log: end <= first,
            })
        }
    }
}
