//! The single writer thread: group commit of every queued request under one fdatasync.
//!
//! The writer takes every request queued so far, checks each against the index (which it
//! updates as it goes, so later requests of the same group see earlier ones), encodes all
//! records into one buffer, writes it, syncs once, and only then moves the committed end and
//! answers. Readers never see positions at or above the committed end, so the index may run
//! ahead of durability safely. A failed write or sync poisons the log: nothing more is
//! acknowledged until it has recovered.
//!
//! # When a write fails
//!
//! The first failure is kept as the log's [`LogHealth`] (watchers are told at once) and every
//! append fails with [`Error::Poisoned`] from then on; none of them was acknowledged. What
//! happens next depends on the error:
//!
//! - **Out of space** (ENOSPC or EDQUOT, from a write, a truncation or an fsync):
//!   [`LogHealth::Recovering`]. The writer waits for the groups in flight to be answered
//!   (failed), then retries, after 100 ms and doubling up to 5 s, to cut the log back to its
//!   committed end: segments started past it are removed, the last one is truncated to it (the
//!   partly written, never acknowledged bytes go), a 64 KiB probe is written past it and
//!   taken back (so that a disk still full keeps the log recovering rather than flapping), the
//!   segment is synced, and the index, the recent event ids and the fingerprint forget what
//!   was written past it. When that works the log is
//!   [`LogHealth::Healthy`] again and takes appends. Every acknowledged event is below the
//!   committed end, so none is lost; no failed append left anything behind, so a client
//!   retrying one with the same event ids writes it once. Cutting back is safe even after a
//!   failed fsync here: what the fsync may have lost lies past the committed end, which an
//!   earlier fsync made durable, and is cut anyway.
//! - **Anything else**, above all an fsync failing with EIO: [`LogHealth::Failed`], for good.
//!   After a failed fsync the kernel may have dropped the dirty pages and marked them clean
//!   ("fsyncgate"), so what the page cache shows can no longer be trusted; only a reopen
//!   (recovery reads what is really on disk) makes the log consistent again. The process
//!   embedding the log should exit so that its supervisor restarts it.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hashbrown::{DefaultHashBuilder, HashMap};

use crate::error::{Error, Result};
use crate::format::{
    self, RecordKind, RecordOut, SEGMENT_HEADER_LEN, TOMBSTONE_EVENT_TYPE, TOMBSTONE_REVISION,
};
#[cfg(doc)]
use crate::log::LogHealth;
use crate::log::{Fault, IndexState, Op, Outcome, Reply, Request, Shared};
use crate::metadata::{self, DELETED_TRUNCATE_BEFORE, METADATA_EVENT_TYPE, StreamMetadata};
use crate::segments::{self, Segment, parse_segment_name, segment_name};
use crate::types::{
    Appended, ContentType, CurrentRevision, Deleted, EventId, ExpectedRevision, Position,
    ProposedEvent, Revision,
};

/// Event ids remembered for idempotent retries under `Any`/`StreamExists`, as EventStoreDB
/// keeps them: best effort, bounded, lost on restart.
struct RecentIds {
    map: HashMap<EventId, (u64, u64, u64)>,
    order: VecDeque<EventId>,
    cap: usize,
    hasher: DefaultHashBuilder,
}

impl RecentIds {
    fn new(cap: usize) -> Self {
        RecentIds {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap,
            hasher: DefaultHashBuilder::default(),
        }
    }

    fn stream_key(&self, stream: &str) -> u64 {
        self.hasher.hash_one(stream)
    }

    fn insert(&mut self, id: EventId, stream: u64, revision: u64, position: u64) {
        if self.cap == 0 {
            return;
        }
        if self.map.insert(id, (stream, revision, position)).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    /// Forgets the ids written at or above `end` (never made durable).
    fn roll_back(&mut self, end: u64) {
        self.map.retain(|_, (_, _, pos)| *pos < end);
        let map = &self.map;
        self.order.retain(|id| map.contains_key(id));
    }
}

/// First pause before the writer tries to recover from a full disk.
const RECOVER_FIRST_DELAY: Duration = Duration::from_millis(100);
/// Longest pause between two attempts.
const RECOVER_MAX_DELAY: Duration = Duration::from_secs(5);

/// Bytes that must fit on the disk again before the log takes appends after a full disk.
const SPACE_PROBE_BYTES: usize = 64 << 10;

/// A group written to its segment(s), waiting for its sync.
pub(crate) struct Written {
    /// Committed end once this group is durable.
    end: u64,
    answers: Vec<(Reply, Result<Outcome>)>,
    /// Position of the group's first record (live subscribers read the group back from there).
    start: u64,
    /// Segments written, to sync.
    dirty: Vec<Segment>,
    /// Why the group cannot be acknowledged, if it cannot.
    failure: Option<Fault>,
}

/// The sync thread: one fdatasync for every group written since the last, then the committed
/// end moves and the groups go to the answer thread, so that the next sync starts while callers
/// are being answered.
fn sync_loop(
    shared: &Shared,
    rx: &std::sync::mpsc::Receiver<Written>,
    answers: &std::sync::mpsc::Sender<(Vec<Written>, Option<Fault>)>,
) {
    while let Ok(first) = rx.recv() {
        let mut groups = vec![first];
        while let Ok(more) = rx.try_recv() {
            groups.push(more);
        }
        let failure = make_durable(shared, &groups);
        if answers.send((groups, failure)).is_err() {
            return;
        }
    }
}

/// The answer thread: feeds live subscribers and answers callers, in commit order. Only when
/// it is done with a group does the group stop counting as in flight, so that the writer's
/// own (inline) finishing never overtakes it.
fn answer_loop(shared: &Shared, rx: &std::sync::mpsc::Receiver<(Vec<Written>, Option<Fault>)>) {
    while let Ok((groups, failure)) = rx.recv() {
        let n = groups.len();
        answer(shared, groups, failure);
        shared.in_flight.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Makes written groups durable with one fdatasync per segment and moves the committed end;
/// or poisons the log and says why.
fn make_durable(shared: &Shared, groups: &[Written]) -> Option<Fault> {
    let mut failure = shared
        .fault()
        .or_else(|| groups.iter().find_map(|g| g.failure.clone()));
    if failure.is_none() {
        shared.stats.syncs.fetch_add(1, Ordering::Relaxed);
        let mut synced: Vec<u64> = Vec::new();
        for seg in groups.iter().flat_map(|g| &g.dirty) {
            if synced.contains(&seg.base) {
                continue;
            }
            if let Err(e) = seg.file.sync() {
                failure = Some(Fault::io(format!("fdatasync of {} failed", seg.name), &e));
                break;
            }
            synced.push(seg.base);
        }
    }
    match &failure {
        Some(cause) => shared.poison(cause.clone()),
        None => {
            if let Some(end) = groups.last().map(|g| g.end) {
                shared.head.store(end, Ordering::Release);
            }
        }
    }
    failure
}

/// Feeds live subscribers and answers the callers of durable groups (or fails them all).
fn answer(shared: &Shared, groups: Vec<Written>, failure: Option<Fault>) {
    if let Some(Fault { cause, .. }) = failure {
        for g in groups {
            for (reply, result) in g.answers {
                deliver(
                    reply,
                    result.and(Err(Error::Poisoned {
                        cause: cause.clone(),
                    })),
                );
            }
        }
        return;
    }
    if let (Some(first), Some(last)) = (groups.first(), groups.last()) {
        shared.live.publish(shared, first.start, last.end);
    }
    for g in groups {
        for (reply, result) in g.answers {
            deliver(reply, result);
        }
    }
}

/// Hands a caller its answer. A callback that panics must not take the log's threads down
/// with it (every later caller would wait forever), so the panic is contained here.
fn deliver(reply: Reply, result: Result<Outcome>) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || reply(result)));
}

/// Makes groups durable and answers them, on the calling thread.
fn finish(shared: &Shared, groups: Vec<Written>) {
    let failure = make_durable(shared, &groups);
    answer(shared, groups, failure);
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    active: Segment,
    /// Offset in `active` where the next record goes.
    seg_end: u64,
    /// Position of the next record.
    end: u64,
    /// Bytes encoded but not yet written, starting at position `chunk_pos`.
    buf: Vec<u8>,
    chunk_pos: u64,
    /// Segments written in this group, to sync.
    dirty: Vec<Segment>,
    recent: RecentIds,
    /// Fingerprint terms of the records written past the committed end, to take back out if
    /// they never become durable.
    unsynced: VecDeque<(u64, u64)>,
    /// Why the last roll to a new segment failed.
    roll_fault: Option<Fault>,
    now: i64,
}

enum Check {
    Write { next_revision: u64, reopen: bool },
    Idempotent(Appended),
}

impl Writer {
    pub fn new(shared: Arc<Shared>, active: Segment, seg_end: u64) -> Self {
        let end = active.base + seg_end;
        let cap = shared.config.recent_ids;
        Writer {
            shared,
            active,
            seg_end,
            end,
            buf: Vec::with_capacity(1 << 20),
            chunk_pos: end,
            dirty: Vec::new(),
            recent: RecentIds::new(cap),
            unsynced: VecDeque::new(),
            roll_fault: None,
            now: 0,
        }
    }

    /// Runs the writer until the log closes. Durability is pipelined: this thread validates,
    /// encodes and writes group k+1 while a second thread syncs group k, then moves the
    /// committed end and answers.
    pub fn run(mut self) {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Written>(2);
        let (answer_tx, answer_rx) = std::sync::mpsc::channel();
        let shared = self.shared.clone();
        let answerer = std::thread::Builder::new()
            .name("eventlog-answer".into())
            .spawn(move || answer_loop(&shared, &answer_rx));
        let shared = self.shared.clone();
        let syncer = std::thread::Builder::new()
            .name("eventlog-sync".into())
            .spawn(move || sync_loop(&shared, &rx, &answer_tx));
        let (syncer, answerer) = match (syncer, answerer) {
            (Ok(s), Ok(a)) => (s, a),
            (s, a) => {
                self.poison(Fault::fatal("cannot start the sync and answer threads"));
                drop(tx);
                if let Ok(s) = s {
                    let _ = s.join();
                }
                if let Ok(a) = a {
                    let _ = a.join();
                }
                self.drain_poisoned();
                return;
            }
        };
        loop {
            let batch = {
                let mut q = self.shared.queue();
                while q.requests.is_empty() && !q.closing && !self.shared.recovering() {
                    q.writer_waiting = true;
                    q = self
                        .shared
                        .queue_cv
                        .wait(q)
                        .unwrap_or_else(|e| e.into_inner());
                    q.writer_waiting = false;
                }
                if q.requests.is_empty() && !q.closing {
                    // The sync thread hit a full disk while this thread was idle.
                    drop(q);
                    if self.recover() {
                        continue;
                    }
                    break;
                }
                if q.requests.is_empty() {
                    break;
                }
                let take = q.requests.len().min(self.shared.config.max_group_requests);
                let rest = q.requests.split_off(take);
                std::mem::replace(&mut q.requests, rest)
            };
            let written = self.group(batch);
            // When nothing else is in flight or waiting, syncing here saves a thread hop (a lone
            // appender's latency); otherwise the sync thread takes the group while this thread
            // goes on with the next one.
            if self.shared.in_flight.load(Ordering::Acquire) == 0
                && self.shared.queue().requests.is_empty()
            {
                finish(&self.shared, vec![written]);
            } else {
                self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
                if let Err(std::sync::mpsc::SendError(written)) = tx.send(written) {
                    // The sync or answer thread is gone: nothing can be acknowledged any more.
                    self.poison(Fault::fatal("the log's sync thread stopped"));
                    finish(&self.shared, vec![written]);
                    break;
                }
            }
            if self.shared.fault().is_some_and(|f| f.transient) && !self.recover() {
                break;
            }
        }
        drop(tx);
        let _ = syncer.join();
        let _ = answerer.join();
        self.drain_poisoned();
    }

    fn poison(&self, fault: Fault) {
        self.shared.poison(fault);
    }

    /// Recovers from a transient fault (a full disk): fails what is queued, waits with
    /// back-off, and cuts the log back to its committed end until that works (see the module
    /// docs). Returns false if the log is closing meanwhile. A fatal fault on the way ends the
    /// attempts (the log stays poisoned).
    fn recover(&mut self) -> bool {
        let mut delay = RECOVER_FIRST_DELAY;
        loop {
            if !self.pause_failing_requests(delay) {
                return false;
            }
            // Groups still in flight will be failed (the log is poisoned); the committed end
            // only stops moving once they are all answered.
            if self.shared.in_flight.load(Ordering::Acquire) != 0 {
                delay = RECOVER_FIRST_DELAY;
                continue;
            }
            match self.cut_back() {
                Ok(()) => {
                    self.shared.unpoison();
                    return true;
                }
                Err(fault) if fault.transient => {
                    delay = (delay * 2).min(RECOVER_MAX_DELAY);
                }
                Err(fault) => {
                    self.poison(fault);
                    return true;
                }
            }
        }
    }

    /// Waits `delay`, failing every request queued meanwhile with the poison's cause. Returns
    /// false if the log is closing.
    fn pause_failing_requests(&self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        let mut q = self.shared.queue();
        loop {
            if !q.requests.is_empty() {
                let batch = std::mem::take(&mut q.requests);
                drop(q);
                let cause = self.shared.poison_cause().unwrap_or_default();
                for r in batch {
                    deliver(
                        r.reply,
                        Err(Error::Poisoned {
                            cause: cause.clone(),
                        }),
                    );
                }
                q = self.shared.queue();
                continue;
            }
            if q.closing {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            q.writer_waiting = true;
            q = match self.shared.queue_cv.wait_timeout(q, deadline - now) {
                Ok((q, _)) => q,
                Err(e) => e.into_inner().0,
            };
            q.writer_waiting = false;
        }
    }

    /// Cuts the log back to its committed end, on disk and in memory: segment files started
    /// past it (or never finished) are removed, the last segment is truncated to it and
    /// synced, and what was indexed past it is forgotten.
    fn cut_back(&mut self) -> Result<(), Fault> {
        let head = self.shared.head();
        let storage = &self.shared.storage;
        let mut removed = false;
        while let Some(seg) = self.shared.segments.pop_above(head) {
            remove_file(&**storage, &seg.name)?;
            removed = true;
        }
        // A roll that failed half-way leaves a file the segment list does not know.
        let known = self.shared.segments.bases();
        let names = storage
            .list()
            .map_err(|e| Fault::io("listing the data directory", &e))?;
        for name in names {
            if let Some(base) = parse_segment_name(&name)
                && !known.contains(&base)
            {
                remove_file(&**storage, &name)?;
                removed = true;
            }
        }
        if removed {
            storage
                .sync_dir()
                .map_err(|e| Fault::io("syncing the data directory", &e))?;
        }
        let active = self
            .shared
            .segments
            .last()
            .ok_or_else(|| Fault::fatal("no segment is left"))?;
        let seg_end = head.saturating_sub(active.base).max(SEGMENT_HEADER_LEN);
        let truncate = || {
            active
                .file
                .set_len(seg_end)
                .map_err(|e| Fault::io(format!("truncating {} to {seg_end}", active.name), &e))
        };
        truncate()?;
        // Cutting back frees the failed writes' space, so it works on a disk that is still
        // full: only resume once a write of some size fits again (and take the probe back).
        let probed = active
            .file
            .write_at(&vec![0u8; SPACE_PROBE_BYTES], seg_end)
            .map_err(|e| Fault::io(format!("probing for free space in {}", active.name), &e));
        truncate()?;
        probed?;
        active
            .file
            .sync()
            .map_err(|e| Fault::io(format!("fdatasync of {} failed", active.name), &e))?;
        let len = active
            .file
            .len()
            .map_err(|e| Fault::io(format!("reading the length of {}", active.name), &e))?;
        if len != seg_end {
            return Err(Fault::fatal(format!(
                "{} is {len} bytes after truncating it to {seg_end}",
                active.name
            )));
        }
        let end = active.base + seg_end;
        self.shared
            .index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .roll_back(end);
        self.recent.roll_back(end);
        for (pos, term) in self.unsynced.drain(..) {
            if pos >= end {
                self.shared.fingerprint.fetch_sub(term, Ordering::Relaxed);
            }
        }
        self.active = active;
        self.seg_end = seg_end;
        self.end = end;
        self.chunk_pos = end;
        self.buf.clear();
        self.dirty.clear();
        self.roll_fault = None;
        Ok(())
    }

    /// Stops taking requests and fails every queued one: the writer is exiting (closing, or
    /// its pipeline broke), and nobody else would ever answer them.
    fn drain_poisoned(&self) {
        let batch = {
            let mut q = self.shared.queue();
            q.closing = true;
            std::mem::take(&mut q.requests)
        };
        let cause = self.shared.poison_cause();
        for r in batch {
            let err = match &cause {
                Some(cause) => Error::Poisoned {
                    cause: cause.clone(),
                },
                None => Error::Closed,
            };
            deliver(r.reply, Err(err));
        }
    }

    /// Validates, encodes and writes one group; the sync thread finishes it.
    fn group(&mut self, batch: Vec<Request>) -> Written {
        let mut answers: Vec<(Reply, Result<Outcome>)> = Vec::with_capacity(batch.len());
        if let Some(fault) = self.shared.fault() {
            let cause = fault.cause.clone();
            for r in batch {
                answers.push((
                    r.reply,
                    Err(Error::Poisoned {
                        cause: cause.clone(),
                    }),
                ));
            }
            return Written {
                start: self.end,
                end: self.end,
                answers,
                dirty: Vec::new(),
                failure: Some(fault),
            };
        }
        self.now = self.shared.clock.now_ticks();
        let head = self.shared.head();
        while self.unsynced.front().is_some_and(|(pos, _)| *pos < head) {
            self.unsynced.pop_front();
        }
        self.chunk_pos = self.end;
        self.buf.clear();
        let group_start = self.end;
        let mut failure: Option<Fault> = None;
        {
            let shared = self.shared.clone();
            let mut idx = shared.index.write().unwrap_or_else(|e| e.into_inner());
            for Request { op, reply } in batch {
                let result = if let Some(fault) = &failure {
                    Err(Error::Poisoned {
                        cause: fault.cause.clone(),
                    })
                } else {
                    self.execute(&mut idx, op)
                };
                if let Err(Error::Poisoned { cause }) = &result {
                    failure = Some(
                        self.roll_fault
                            .take()
                            .unwrap_or_else(|| Fault::fatal(cause.clone())),
                    );
                }
                answers.push((reply, result));
            }
        }
        if failure.is_none()
            && let Err(e) = self.flush_chunk()
        {
            failure = Some(e);
        }
        if let Some(fault) = &failure {
            self.poison(fault.clone());
        }
        self.shared.stats.groups.fetch_add(1, Ordering::Relaxed);
        Written {
            start: group_start,
            end: self.end,
            answers,
            dirty: std::mem::take(&mut self.dirty),
            failure,
        }
    }

    fn flush_chunk(&mut self) -> Result<(), Fault> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let offset = self.chunk_pos - self.active.base;
        self.active.file.write_at(&self.buf, offset).map_err(|e| {
            Fault::io(
                format!("write to {} at offset {offset} failed", self.active.name),
                &e,
            )
        })?;
        if !self.dirty.iter().any(|s| s.base == self.active.base) {
            self.dirty.push(self.active.clone());
        }
        self.buf.clear();
        self.chunk_pos = self.end;
        Ok(())
    }

    /// Starts a new segment after the active one, syncing the active one first so that only
    /// the last segment can ever have a torn tail.
    fn roll(&mut self) -> Result<(), Fault> {
        self.flush_chunk()?;
        self.active
            .file
            .sync()
            .map_err(|e| Fault::io(format!("fdatasync of {} failed", self.active.name), &e))?;
        let base = self.end;
        let name = segment_name(base);
        let storage = &self.shared.storage;
        let file = storage
            .open(&name, true)
            .map_err(|e| Fault::io(format!("creating {name} failed"), &e))?;
        file.set_len(0)
            .and_then(|()| file.write_at(&format::segment_header(base), 0))
            .and_then(|()| file.sync())
            .and_then(|()| storage.sync_dir())
            .map_err(|e| Fault::io(format!("initialising {name} failed"), &e))?;
        let seg = Segment { base, name, file };
        self.shared.segments.push(seg.clone());
        self.active = seg;
        self.seg_end = SEGMENT_HEADER_LEN;
        self.end = base + SEGMENT_HEADER_LEN;
        self.chunk_pos = self.end;
        Ok(())
    }

    fn execute(&mut self, idx: &mut IndexState, op: Op) -> Result<Outcome> {
        match op {
            Op::Append {
                stream,
                expected,
                events,
            } => self
                .append(idx, &stream, expected, &events)
                .map(Outcome::Appended),
            Op::Delete { stream, expected } => {
                // Without event ids there is no idempotent outcome: only write or refuse.
                self.check(idx, &stream, expected, &[], false)?;
                // As in EventStoreDB: a stream that never had an event cannot be soft-deleted,
                // whatever the expectation (clients read this as "not found").
                if idx.streams.stream_len(&stream) == 0 {
                    return Err(Error::WrongExpectedVersion {
                        stream,
                        expected,
                        actual: CurrentRevision::NoStream,
                    });
                }
                let meta_stream = format!("{}{stream}", metadata::METASTREAM_PREFIX);
                let current = latest_metadata(idx, &stream).map(|m| (*m).clone());
                let data = current
                    .unwrap_or_default()
                    .with_truncate_before(DELETED_TRUNCATE_BEFORE);
                let meta_len = idx.streams.stream_len(&meta_stream);
                let recs = [Planned {
                    kind: RecordKind::Event,
                    stream: &meta_stream,
                    revision: meta_len,
                    id: None,
                    event_type: METADATA_EVENT_TYPE,
                    content_type: ContentType::Json,
                    metadata: &[],
                    data: &data,
                }];
                let positions = self.write_batch(idx, &recs)?;
                Ok(Outcome::Deleted(Deleted {
                    position: Position(positions.last().copied().unwrap_or(0)),
                }))
            }
            Op::Tombstone { stream, expected } => {
                self.check(idx, &stream, expected, &[], true)?;
                let recs = [Planned {
                    kind: RecordKind::Tombstone,
                    stream: &stream,
                    revision: TOMBSTONE_REVISION,
                    id: None,
                    event_type: TOMBSTONE_EVENT_TYPE,
                    content_type: ContentType::Binary,
                    metadata: &[],
                    data: &[],
                }];
                let positions = self.write_batch(idx, &recs)?;
                Ok(Outcome::Deleted(Deleted {
                    position: Position(positions.last().copied().unwrap_or(0)),
                }))
            }
        }
    }

    fn append(
        &mut self,
        idx: &mut IndexState,
        stream: &str,
        expected: ExpectedRevision,
        events: &[ProposedEvent],
    ) -> Result<Appended> {
        let (next, reopen) = match self.check(idx, stream, expected, events, false)? {
            Check::Idempotent(a) => return Ok(a),
            Check::Write {
                next_revision,
                reopen,
            } => (next_revision, reopen),
        };
        if events.is_empty() {
            return Ok(Appended {
                first_revision: Revision(next),
                count: 0,
                position: Position(self.shared.head()),
            });
        }
        let meta_stream;
        let reopen_data;
        let mut recs = Vec::with_capacity(events.len() + 1);
        if reopen {
            // A soft-deleted stream comes back: revisions continue, and the ones before stay
            // hidden, so `$tb` moves from "everything" to the first new revision.
            meta_stream = format!("{}{stream}", metadata::METASTREAM_PREFIX);
            reopen_data = latest_metadata(idx, stream)
                .map(|m| (*m).clone())
                .unwrap_or_default()
                .with_truncate_before(next);
            recs.push(Planned {
                kind: RecordKind::Event,
                stream: &meta_stream,
                revision: idx.streams.stream_len(&meta_stream),
                id: None,
                event_type: METADATA_EVENT_TYPE,
                content_type: ContentType::Json,
                metadata: &[],
                data: &reopen_data,
            });
        }
        for (i, e) in events.iter().enumerate() {
            recs.push(Planned {
                kind: RecordKind::Event,
                stream,
                revision: next + i as u64,
                id: Some(e.id),
                event_type: &e.event_type,
                content_type: e.content_type,
                metadata: &e.metadata,
                data: &e.data,
            });
        }
        let positions = self.write_batch(idx, &recs)?;
        let key = self.recent.stream_key(stream);
        let offset = usize::from(reopen);
        for (i, e) in events.iter().enumerate() {
            let pos = positions.get(i + offset).copied().unwrap_or(0);
            self.recent.insert(e.id, key, next + i as u64, pos);
        }
        Ok(Appended {
            first_revision: Revision(next),
            count: events.len() as u32,
            position: Position(positions.last().copied().unwrap_or(0)),
        })
    }

    /// Checks an expectation against the writer's view (which includes this group).
    fn check(
        &mut self,
        idx: &IndexState,
        stream: &str,
        expected: ExpectedRevision,
        ids: &[ProposedEvent],
        tombstone: bool,
    ) -> Result<Check> {
        let deleted = || Error::StreamDeleted {
            stream: stream.to_string(),
        };
        if idx.tombstones.contains_key(stream) {
            return Err(deleted());
        }
        let len = idx.streams.stream_len(stream);
        // A deleted marker before any event counts too: the first append must move `$tb`.
        let soft_deleted = metadata::target_of(stream).is_none()
            && latest_metadata(idx, stream).is_some_and(|m| m.is_deleted_marker());
        let current = match len.checked_sub(1) {
            Some(r) => CurrentRevision::Current(Revision(r)),
            None => CurrentRevision::NoStream,
        };
        let wev = || Error::WrongExpectedVersion {
            stream: stream.to_string(),
            expected,
            actual: current,
        };
        let write = Check::Write {
            next_revision: len,
            reopen: soft_deleted && !ids.is_empty() && !tombstone,
        };
        match expected {
            ExpectedRevision::Any => self.recent_check(stream, ids, write, wev),
            ExpectedRevision::NoStream => {
                if len == 0 || soft_deleted {
                    Ok(write)
                } else {
                    self.exact_check(idx, stream, 0, len, ids, wev)
                }
            }
            ExpectedRevision::StreamExists => {
                if soft_deleted {
                    Err(deleted())
                } else if len == 0 {
                    Err(wev())
                } else {
                    self.recent_check(stream, ids, write, wev)
                }
            }
            ExpectedRevision::Exact(Revision(e)) => {
                if e.checked_add(1) == Some(len) {
                    Ok(write)
                } else if e < len {
                    self.exact_check(idx, stream, e + 1, len, ids, wev)
                } else {
                    Err(wev())
                }
            }
        }
    }

    /// Idempotency for exact expectations: the batch's ids must equal the stored ids from
    /// revision `from` on, all of them; a prefix match is a conflict.
    fn exact_check(
        &self,
        idx: &IndexState,
        stream: &str,
        from: u64,
        len: u64,
        ids: &[ProposedEvent],
        wev: impl Fn() -> Error,
    ) -> Result<Check> {
        if ids.is_empty() {
            return Err(wev());
        }
        let Some(positions) = idx.streams.get(stream) else {
            return Err(wev());
        };
        let mut last = 0;
        for (i, e) in ids.iter().enumerate() {
            let id = &e.id;
            let rev = from + i as u64;
            if rev >= len {
                return Err(wev());
            }
            let pos = positions.get(rev).ok_or_else(&wev)?;
            if self.id_at(pos)? != *id {
                return Err(wev());
            }
            last = pos;
        }
        Ok(Check::Idempotent(Appended {
            first_revision: Revision(from),
            count: ids.len() as u32,
            position: Position(last),
        }))
    }

    fn recent_check(
        &self,
        stream: &str,
        ids: &[ProposedEvent],
        write: Check,
        wev: impl Fn() -> Error,
    ) -> Result<Check> {
        let key = self.recent.stream_key(stream);
        let Some(first) = ids.first() else {
            return Ok(write);
        };
        let Some(&(s, first_rev, _)) = self.recent.map.get(&first.id) else {
            return Ok(write);
        };
        if s != key {
            return Ok(write);
        }
        let mut last = 0;
        for (i, e) in ids.iter().enumerate() {
            match self.recent.map.get(&e.id) {
                Some(&(s, rev, pos)) if s == key && rev == first_rev + i as u64 => last = pos,
                _ => return Err(wev()),
            }
        }
        Ok(Check::Idempotent(Appended {
            first_revision: Revision(first_rev),
            count: ids.len() as u32,
            position: Position(last),
        }))
    }

    /// The id of the record at `pos`, which may still sit in this group's buffer.
    fn id_at(&self, pos: u64) -> Result<EventId> {
        if pos >= self.chunk_pos {
            // Still in this group's buffer, encoded by this thread: the id is at a fixed offset.
            let at = usize::try_from(pos - self.chunk_pos).unwrap_or(usize::MAX);
            let id = at
                .checked_add(format::ID_OFFSET)
                .and_then(|from| self.buf.get(from..from + 16))
                .ok_or_else(|| {
                    Error::corrupt("write buffer", pos, "pending record out of range")
                })?;
            let mut out = [0u8; 16];
            out.copy_from_slice(id);
            return Ok(EventId(out));
        }
        let (seg, _) = self
            .shared
            .segments
            .find(pos)
            .ok_or_else(|| Error::corrupt("index", pos, "position outside every segment"))?;
        Ok(segments::read_record(&seg, pos)?.event.id)
    }

    /// Encodes one atomic batch (rolling to a new segment first if it does not fit) and
    /// updates the index. Returns the records' positions.
    fn write_batch(&mut self, idx: &mut IndexState, recs: &[Planned<'_>]) -> Result<Vec<u64>> {
        let total: u64 = recs
            .iter()
            .map(|r| {
                format::frame_len(
                    r.stream.len(),
                    r.event_type.len(),
                    r.metadata.len(),
                    r.data.len(),
                ) as u64
            })
            .sum();
        let cap = self.shared.config.segment_size;
        if SEGMENT_HEADER_LEN + total > cap {
            return Err(Error::BatchTooLarge {
                events: recs.len(),
                bytes: total as usize,
                max_events: self.shared.config.max_batch_events,
                max_bytes: self.shared.config.max_batch_bytes,
            });
        }
        if self.seg_end + total > cap
            && let Err(fault) = self.roll()
        {
            let cause = fault.cause.clone();
            self.roll_fault = Some(fault);
            return Err(Error::Poisoned { cause });
        }
        // Every byte below the committed end is durable, and so is everything before the active
        // segment (a roll syncs the old one first). Recording this in each record lets
        // recovery tell a torn write from corruption: bytes below a later record's mark were
        // durable before that record was written, so damage there is not a torn write.
        let head = self.shared.head();
        let synced_below = head.max(self.active.base);
        let count = recs.len() as u32;
        let mut positions = Vec::with_capacity(recs.len());
        for (i, r) in recs.iter().enumerate() {
            let position = self.end;
            let start = self.buf.len();
            format::encode(
                &mut self.buf,
                &RecordOut {
                    kind: r.kind,
                    position,
                    synced_below,
                    batch_index: i as u32,
                    batch_count: count,
                    revision: r.revision,
                    created_ticks: self.now,
                    id: r.id.unwrap_or_else(|| system_id(position)),
                    content_type: r.content_type,
                    stream: r.stream,
                    event_type: r.event_type,
                    metadata: r.metadata,
                    data: r.data,
                },
            );
            let len = (self.buf.len() - start) as u64;
            let crc = format::frame_crc(self.buf.get(start..).unwrap_or_default());
            let term = format::fingerprint(crc, position);
            self.shared.fingerprint.fetch_add(term, Ordering::Relaxed);
            self.unsynced.push_back((position, term));
            self.end += len;
            self.seg_end += len;
            self.shared.stats.records.fetch_add(1, Ordering::Relaxed);
            idx.record(r.kind, r.stream, r.event_type, r.data, position, head, true);
            positions.push(position);
        }
        Ok(positions)
    }
}

/// Removes a file, which may already be gone.
fn remove_file(storage: &dyn crate::storage::Storage, name: &str) -> Result<(), Fault> {
    match storage.remove(name) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Fault::io(format!("removing {name}"), &e)),
    }
}

/// A record about to be encoded.
struct Planned<'a> {
    kind: RecordKind,
    stream: &'a str,
    revision: u64,
    /// `None` for records the log writes itself (deletions, metadata on reopen).
    id: Option<EventId>,
    event_type: &'a str,
    content_type: ContentType,
    metadata: &'a [u8],
    data: &'a [u8],
}

/// Ids of records the log writes itself: a fixed tag and the position, so they are unique.
fn system_id(position: u64) -> EventId {
    let mut id = [0u8; 16];
    id[0..8].copy_from_slice(b"daojia\0\0");
    id[8..16].copy_from_slice(&position.to_be_bytes());
    EventId(id)
}

/// The newest metadata of `stream` in the writer's view (committed or not).
fn latest_metadata(idx: &IndexState, stream: &str) -> Option<Arc<StreamMetadata>> {
    idx.metadata.get(stream)?.last().map(|(_, m)| m.clone())
}
