//! Fault injection at every sync point: a power loss, or a failed fdatasync, at each sync of a
//! scripted workload; every crash image is reopened and checked against what was acknowledged.
//!
//! The workload is deterministic, so the bytes it writes are the same in every run: a run
//! without faults gives the reference list of records, and whatever a crashed run leaves must
//! be a prefix of that list that holds every acknowledged operation and ends at a batch
//! boundary (unacknowledged batches may survive, but only whole).
//!
//! Several requests can share one commit group: a gate around the storage holds the log inside
//! an fdatasync while the test queues the next requests, so the writer takes them all into one
//! group, the same way in every run. (The writer may hand a group to its sync thread, which can
//! merge the syncs of consecutive groups, so a grouped run may do a few syncs fewer than the
//! reference; no check depends on the exact number.)

use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use daojia_eventlog::storage::{CrashImage, FaultyStorage, MemoryStorage, Storage, StorageFile};
use daojia_eventlog::{
    AllStart, Appended, Config, CurrentRevision, Deleted, Direction, Error, EventId, EventLog,
    ExpectedRevision, ProposedEvent, RecordedEvent, StreamMetadata, StreamStart,
};

use crate::support::{Rec, Rng};

fn config() -> Config {
    Config {
        segment_size: 64 << 10,
        max_batch_bytes: 16 << 10,
        max_event_bytes: 4 << 10,
        ..Config::default()
    }
}

/// Torn-write images tried at each crash point.
const TORN_PER_POINT: u64 = 4;

/// The images reopened after the crash at sync `k`: durable bytes only, everything written,
/// and torn writes with seeds that differ from one crash point to the next.
fn images(k: u64) -> Vec<CrashImage> {
    let mut v = vec![CrashImage::DurableOnly, CrashImage::AllWritten];
    v.extend((1..=TORN_PER_POINT).map(|s| CrashImage::Torn(k * TORN_PER_POINT + s)));
    v
}

// ---------------------------------------------------------------------------------------------
// The workload.

/// The data of event `id`: JSON of a size that varies with the id, so records differ in length.
fn payload(id: u128) -> Vec<u8> {
    let pad_len = (id * 7919 % 1700) as usize;
    let pad: String = (0..pad_len)
        .map(|i| char::from(b'a' + ((id as usize + i) % 26) as u8))
        .collect();
    format!("{{\"id\":{id},\"pad\":\"{pad}\"}}").into_bytes()
}

fn event(id: u128) -> ProposedEvent {
    let e = ProposedEvent::json(
        EventId::from_u128(id),
        format!("Happened{}", id % 3),
        payload(id),
    );
    if id.is_multiple_of(4) {
        e.with_metadata(format!("{{\"corr\":{id}}}").into_bytes())
    } else {
        e
    }
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        stream: &'static str,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    },
    Delete(&'static str),
    Tombstone(&'static str),
}

const STREAMS: [&str; 5] = ["order-0", "order-1", "order-2", "order-3", "order-4"];
const OPS: usize = 120;
/// Operation indexes of the deletions: `order-2` is soft-deleted and then reopened by later
/// appends, `order-3` is tombstoned, `order-4` is soft-deleted and stays so.
const DELETE_REOPENED: usize = 30;
const TOMBSTONE: usize = 55;
const DELETE_FINAL: usize = 95;

/// The script: steps of operations. A step of one operation is its own commit group; in a
/// longer step the first operation is committed alone and all the others together in the next
/// commit group.
fn script(max_step: usize) -> Vec<Vec<Op>> {
    let mut rng = Rng(0x5EED_F417 + max_step as u64);
    let mut len = [0u64; 5];
    let mut next_id = 1u128;
    let mut steps = Vec::new();
    let mut n = 0;
    while n < OPS {
        let size = 1 + rng.index(max_step);
        let mut step = Vec::new();
        for _ in 0..size.min(OPS - n) {
            let op = match n {
                DELETE_REOPENED => Op::Delete("order-2"),
                TOMBSTONE => Op::Tombstone("order-3"),
                DELETE_FINAL => Op::Delete("order-4"),
                _ => {
                    let s = loop {
                        let s = rng.index(STREAMS.len());
                        let tombstoned = s == 3 && n > TOMBSTONE;
                        let stays_deleted = s == 4 && n > DELETE_FINAL;
                        if !tombstoned && !stays_deleted {
                            break s;
                        }
                    };
                    let count = 1 + rng.index(5);
                    let events: Vec<ProposedEvent> =
                        (0..count).map(|i| event(next_id + i as u128)).collect();
                    next_id += count as u128;
                    let expected = match len[s] {
                        0 => ExpectedRevision::NoStream,
                        l if rng.index(3) == 0 => {
                            ExpectedRevision::Exact(daojia_eventlog::Revision(l - 1))
                        }
                        _ => ExpectedRevision::Any,
                    };
                    len[s] += count as u64;
                    Op::Append {
                        stream: STREAMS[s],
                        expected,
                        events,
                    }
                }
            };
            step.push(op);
            n += 1;
        }
        steps.push(step);
    }
    steps
}

/// What an operation was acknowledged with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ack {
    Appended(Appended),
    Deleted(Deleted),
}

impl Ack {
    /// Position of the operation's last record.
    fn position(&self) -> u64 {
        match self {
            Ack::Appended(a) => a.position.0,
            Ack::Deleted(d) => d.position.0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A gate that can hold a thread of the log inside a write or an fdatasync.

/// Where the gate holds the next thread that gets there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    Write,
    Sync,
}

#[derive(Debug, Default)]
struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    armed: Option<Hold>,
    holding: bool,
    lead_answered: bool,
    /// The thread held (or last held).
    holder: Option<std::thread::ThreadId>,
    /// Completed file writes.
    writes: u64,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the log's threads before every file write or sync: if the gate is armed for
    /// this kind of operation, the first one to come waits there until released.
    fn pass(&self, kind: Hold) {
        let mut s = self.lock();
        if s.armed != Some(kind) {
            return;
        }
        s.armed = None;
        s.holding = true;
        s.holder = Some(std::thread::current().id());
        self.cv.notify_all();
        while s.holding {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn wrote(&self) {
        self.lock().writes += 1;
        self.cv.notify_all();
    }

    fn arm(&self, kind: Hold) {
        let mut s = self.lock();
        s.armed = Some(kind);
        s.lead_answered = false;
    }

    fn lead_answered(&self) {
        self.lock().lead_answered = true;
        self.cv.notify_all();
    }

    /// Waits until a thread is held (true) or the lead request was answered without reaching
    /// the gate (false: the log failed before writing anything).
    fn wait_held(&self) -> bool {
        let mut s = self.lock();
        while !s.holding && !s.lead_answered {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if !s.holding {
            s.armed = None;
        }
        s.holding
    }

    /// Waits until a thread is held and either it is `writer` (which then cannot write more)
    /// or at least `writes` writes have completed. Returns whether another thread is held.
    fn wait_held_after(&self, writer: Option<std::thread::ThreadId>, writes: u64) -> bool {
        let mut s = self.lock();
        while !(s.holding && (s.holder == writer || s.writes >= writes)) {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.holder != writer
    }

    fn holder(&self) -> Option<std::thread::ThreadId> {
        self.lock().holder
    }

    fn writes(&self) -> u64 {
        self.lock().writes
    }

    fn release(&self) {
        self.lock().holding = false;
        self.cv.notify_all();
    }
}

#[derive(Debug)]
struct GatedStorage {
    inner: FaultyStorage,
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn StorageFile>,
    gate: Arc<Gate>,
}

impl StorageFile for GatedFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.gate.pass(Hold::Write);
        let r = self.inner.write_at(buf, offset);
        self.gate.wrote();
        r
    }
    fn sync(&self) -> io::Result<()> {
        self.gate.pass(Hold::Sync);
        self.inner.sync()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

impl Storage for GatedStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn open(&self, name: &str, create: bool) -> io::Result<Arc<dyn StorageFile>> {
        let inner = self.inner.open(name, create)?;
        Ok(Arc::new(GatedFile {
            inner,
            gate: self.gate.clone(),
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.inner.sync_dir()
    }
}

// ---------------------------------------------------------------------------------------------
// Running the workload.

type Answer = (usize, Result<Ack, Error>);

fn submit(log: &EventLog, i: usize, op: &Op, tx: &mpsc::Sender<Answer>, lead: Option<&Arc<Gate>>) {
    let tx = tx.clone();
    let lead = lead.cloned();
    let answer = move |r: Result<Ack, Error>| {
        if let Some(g) = &lead {
            g.lead_answered();
        }
        let _ = tx.send((i, r));
    };
    match op {
        Op::Append {
            stream,
            expected,
            events,
        } => log.append_with(
            stream.to_string(),
            *expected,
            events.clone(),
            Box::new(move |r| answer(r.map(Ack::Appended))),
        ),
        Op::Delete(stream) | Op::Tombstone(stream) => log.delete_with(
            stream.to_string(),
            ExpectedRevision::Any,
            matches!(op, Op::Tombstone(_)),
            Box::new(move |r| answer(r.map(Ack::Deleted))),
        ),
    }
}

/// A run of the workload: the log (if it opened) and every operation's answer.
struct Run {
    log: Option<EventLog>,
    open_error: Option<Error>,
    answers: Vec<Result<Ack, Error>>,
}

fn run(faulty: &FaultyStorage, steps: &[Vec<Op>]) -> Run {
    let gate = Arc::new(Gate::default());
    let storage = GatedStorage {
        inner: faulty.clone(),
        gate: gate.clone(),
    };
    let log = match EventLog::builder_with_storage(Arc::new(storage))
        .config(config())
        .open()
    {
        Ok(log) => log,
        Err(e) => {
            return Run {
                log: None,
                open_error: Some(e),
                answers: Vec::new(),
            };
        }
    };
    let (tx, rx) = mpsc::channel();
    let mut answers: Vec<Option<Result<Ack, Error>>> = Vec::new();
    let mut i = 0;
    for step in steps {
        let first = i;
        match step.split_first() {
            Some((lead, rest)) if !rest.is_empty() => {
                gate.arm(Hold::Sync);
                submit(&log, i, lead, &tx, Some(&gate));
                i += 1;
                let held = gate.wait_held();
                for op in rest {
                    submit(&log, i, op, &tx, None);
                    i += 1;
                }
                if held {
                    gate.release();
                }
            }
            _ => {
                for op in step {
                    submit(&log, i, op, &tx, None);
                    i += 1;
                }
            }
        }
        answers.resize_with(i, || None);
        for _ in first..i {
            let (at, r) = rx.recv().unwrap();
            assert!(answers[at].is_none(), "operation {at} answered twice");
            answers[at] = Some(r);
        }
    }
    Run {
        log: Some(log),
        open_error: None,
        answers: answers.into_iter().map(Option::unwrap).collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Checking a log against the reference.

fn rec(e: &RecordedEvent) -> Rec {
    Rec::timeless(e)
}

/// Every record of `$all`, forwards in pages.
fn read_everything(log: &EventLog) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut from = AllStart::Edge;
    loop {
        let page = log.read_all(Direction::Forwards, from, 1000, None).unwrap();
        out.extend(page.events.iter().map(rec));
        if page.end_of_log {
            break;
        }
        from = AllStart::Position(page.next);
    }
    out
}

/// Every record of `$all`, read forwards and checked against a backwards read.
fn read_both_ways(log: &EventLog) -> Vec<Rec> {
    let out = read_everything(log);
    let back = log
        .read_all(Direction::Backwards, AllStart::Edge, usize::MAX, None)
        .unwrap();
    let mut back: Vec<Rec> = back.events.iter().map(rec).collect();
    back.reverse();
    assert_eq!(back, out, "backwards $all read disagrees with forwards");
    out
}

/// The reference: records of the fault-free run, and where each operation's records end.
struct Reference {
    records: Vec<Rec>,
    /// `ends[i]`: number of records once operation `i` is in.
    ends: Vec<usize>,
    acks: Vec<Ack>,
    syncs: u64,
}

fn reference(steps: &[Vec<Op>]) -> Reference {
    let faulty = FaultyStorage::new();
    let run = run(&faulty, steps);
    let log = run.log.unwrap();
    let acks: Vec<Ack> = run.answers.into_iter().map(Result::unwrap).collect();
    let records = read_everything(&log);
    log.close().unwrap();
    let ends = acks
        .iter()
        .map(|a| {
            records
                .iter()
                .position(|r| r.position == a.position())
                .unwrap()
                + 1
        })
        .collect::<Vec<_>>();
    assert!(ends.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(ends.last(), Some(&records.len()));
    Reference {
        records,
        ends,
        acks,
        syncs: faulty.syncs(),
    }
}

/// Checks the answers of a faulty run: the acknowledged operations are a prefix and each was
/// acknowledged exactly as in the fault-free run.
fn check_answers(answers: &[Result<Ack, Error>], reference: &Reference, what: &str) {
    let acked = answers.iter().take_while(|a| a.is_ok()).count();
    for (i, a) in answers.iter().enumerate() {
        match a {
            Ok(ack) => {
                assert!(
                    i < acked,
                    "{what}: operation {i} acknowledged after a failure"
                );
                assert_eq!(*ack, reference.acks[i], "{what}: operation {i}");
            }
            // Which error a failed request gets is checked by the failed-sync tests below.
            Err(Error::Poisoned { .. } | Error::Closed) => {}
            Err(e) => panic!("{what}: operation {i} failed with an unexpected error: {e}"),
        }
    }
}

/// Checks what a reopened log holds: a prefix of the reference ending at an operation
/// boundary, holding every acknowledged operation.
fn check_recovered(records: &[Rec], reference: &Reference, acked: usize, what: &str) {
    let must = acked.checked_sub(1).map_or(0, |i| reference.ends[i]);
    assert!(
        records.len() >= must,
        "{what}: {} records survive but {acked} acknowledged operations need {must}",
        records.len()
    );
    assert!(
        records.is_empty() || reference.ends.contains(&records.len()),
        "{what}: {} records survive, which cuts an unacknowledged batch \
         (operation ends: {:?})",
        records.len(),
        reference.ends
    );
    for (i, (got, want)) in records.iter().zip(&reference.records).enumerate() {
        assert_eq!(got, want, "{what}: record {i}");
    }
    assert!(
        records.len() <= reference.records.len(),
        "{what}: extra records"
    );
}

/// Checks stream reads (through the rebuilt index) against the records of `$all`.
fn check_streams(log: &EventLog, records: &[Rec], what: &str) {
    let mut names: Vec<&str> = records
        .iter()
        .map(|r| r.stream.as_str())
        .filter(|s| !s.starts_with("$$"))
        .collect();
    names.sort_unstable();
    names.dedup();
    for s in names {
        let tombstoned = records
            .iter()
            .any(|r| r.stream == s && r.event_type == "$streamDeleted");
        if tombstoned {
            assert!(
                matches!(
                    log.read_stream(s, Direction::Forwards, StreamStart::Edge, usize::MAX),
                    Err(Error::StreamDeleted { .. })
                ),
                "{what}: {s} should be tombstoned"
            );
            assert!(matches!(
                log.stream_revision(s),
                Err(Error::StreamDeleted { .. })
            ));
            continue;
        }
        let events: Vec<&Rec> = records.iter().filter(|r| r.stream == s).collect();
        for (r, e) in events.iter().enumerate() {
            assert_eq!(e.revision, r as u64, "{what}: {s} revisions have a gap");
        }
        let meta_stream = format!("$${s}");
        let tb = records
            .iter()
            .rfind(|r| r.stream == meta_stream)
            .and_then(|r| StreamMetadata::parse(&r.data).unwrap().truncate_before)
            .unwrap_or(0);
        let visible: Vec<Rec> = events
            .iter()
            .filter(|e| e.revision >= tb)
            .map(|e| (*e).clone())
            .collect();
        let read = log.read_stream(s, Direction::Forwards, StreamStart::Edge, usize::MAX);
        if visible.is_empty() {
            assert!(
                matches!(read, Err(Error::StreamNotFound { .. })),
                "{what}: {s} should not be found, got {read:?}"
            );
        } else {
            let read: Vec<Rec> = read.unwrap().iter().map(rec).collect();
            assert_eq!(read, visible, "{what}: read of {s}");
        }
        let last = events.last().map(|e| e.revision);
        assert_eq!(
            log.stream_revision(s).unwrap(),
            CurrentRevision::Current(daojia_eventlog::Revision(last.unwrap())),
            "{what}: revision of {s}"
        );
    }
}

/// Every file of a directory with its bytes.
fn contents(mem: &MemoryStorage) -> Vec<(String, Vec<u8>)> {
    mem.list()
        .unwrap()
        .into_iter()
        .map(|n| {
            let bytes = mem.file_bytes(&n).unwrap();
            (n, bytes)
        })
        .collect()
}

fn open_memory(mem: &MemoryStorage) -> EventLog {
    EventLog::builder_with_storage(Arc::new(mem.clone()))
        .config(config())
        .open()
        .unwrap()
}

/// Reopens a crash image, checks it, appends, and checks again after another close/reopen.
fn check_image(mem: MemoryStorage, reference: &Reference, acked: usize, what: &str) {
    let log = EventLog::builder_with_storage(Arc::new(mem.clone()))
        .config(config())
        .open()
        .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
    let records = read_both_ways(&log);
    check_recovered(&records, reference, acked, what);
    check_streams(&log, &records, what);

    // The recovered log takes new appends where it ends.
    let head = log.head().0;
    let fresh = log
        .append(
            "after-crash",
            ExpectedRevision::NoStream,
            vec![event(1_000_001), event(1_000_002)],
        )
        .unwrap_or_else(|e| panic!("{what}: append after reopen failed: {e}"));
    assert_eq!(fresh.first_revision.0, 0, "{what}");
    assert_eq!(fresh.count, 2, "{what}");
    let order0 = records.iter().filter(|r| r.stream == "order-0").count() as u64;
    let more = log
        .append("order-0", ExpectedRevision::Any, vec![event(1_000_003)])
        .unwrap();
    assert_eq!(more.first_revision.0, order0, "{what}");
    let after = read_everything(&log);
    assert_eq!(after[..records.len()], records[..], "{what}");
    let new = &after[records.len()..];
    assert_eq!(new.len(), 3, "{what}");
    assert!(
        new[0].position == head || new[0].position == head + 32,
        "{what}: first new record at {} but the head was {head}",
        new[0].position
    );
    assert_eq!(new[1].position, fresh.position.0, "{what}");
    assert_eq!(new[2].position, more.position.0, "{what}");
    log.close().unwrap();

    let log = open_memory(&mem);
    assert_eq!(read_both_ways(&log), after, "{what}: after a second reopen");
    check_streams(&log, &after, what);
    log.close().unwrap();
}

fn crash_at_every_sync(max_step: usize) {
    let steps = script(max_step);
    let reference = reference(&steps);
    let mut failures = Failures::default();
    assert!(
        reference.records.last().unwrap().position > 4 * (64 << 10),
        "the workload should fill several segments, ends at {}",
        reference.records.last().unwrap().position
    );
    let mut crashes = 0;
    for k in 0..reference.syncs {
        let faulty = FaultyStorage::new().crash_at_sync(k);
        let run = run(&faulty, &steps);
        let what = format!("crash at sync {k}");
        let crashed_running = faulty.crashed();
        let acked = run.answers.iter().take_while(|a| a.is_ok()).count();
        // Closing writes the index snapshot, which needs syncs too; a poisoned log closes
        // without one.
        let closed = run.log.map(EventLog::close);
        let crashed = faulty.crashed();
        crashes += usize::from(crashed);
        failures.check(&what, || {
            if let Some(e) = &run.open_error {
                assert!(
                    matches!(e, Error::Io { .. }),
                    "{what}: open failed with {e}"
                );
            }
            check_answers(&run.answers, &reference, &what);
            // With one request at a time every run syncs alike; with several, the writer may
            // hand groups to its sync thread, which can merge syncs, so a run may do fewer
            // than the reference and never reach the crash point.
            assert!(crashed || max_step > 1, "{what}: the crash did not happen");
            assert_eq!(
                acked < reference.acks.len(),
                crashed_running,
                "{what}: {acked} acknowledged"
            );
            if let Some(closed) = &closed {
                assert_eq!(
                    closed.is_err(),
                    crashed && !crashed_running,
                    "{what}: close gave {closed:?}"
                );
            }
        });
        let mut seen: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
        for image in images(k) {
            // Several images are often the same bytes (nothing was pending, or a torn write
            // kept nothing): check each distinct one once.
            let mem = faulty.after_crash(image);
            let files = contents(&mem);
            if seen.contains(&files) {
                continue;
            }
            seen.push(files);
            let what = format!("{what}, image {image:?}");
            failures.check(&what, || check_image(mem, &reference, acked, &what));
        }
    }
    assert!(
        crashes * 4 >= reference.syncs as usize * 3,
        "only {crashes} of {} runs reached their crash point",
        reference.syncs
    );
    failures.assert_none();
}

/// Failed checks, collected so that one broken crash point does not hide the others.
#[derive(Default)]
struct Failures {
    tried: usize,
    failed: Vec<String>,
}

impl Failures {
    fn check(&mut self, what: &str, f: impl FnOnce()) {
        self.tried += 1;
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let msg = if msg.starts_with(what) {
                msg
            } else {
                format!("{what}: {msg}")
            };
            self.failed.push(msg);
        }
    }

    fn assert_none(&self) {
        assert!(
            self.failed.is_empty(),
            "{} of {} reopened images failed:\n{}",
            self.failed.len(),
            self.tried,
            self.failed.join("\n")
        );
    }
}

#[test]
fn crash_at_every_sync_of_sequential_appends_loses_no_acknowledged_event() {
    crash_at_every_sync(1);
}

#[test]
fn crash_at_every_sync_of_group_commits_loses_no_acknowledged_event() {
    crash_at_every_sync(8);
}

/// The grouped script must really put a segment roll in the middle of a commit group, with
/// requests after the rolling one, or the group tests above cover less than they claim.
#[test]
fn grouped_script_rolls_segments_inside_commit_groups() {
    let steps = script(8);
    let reference = reference(&steps);
    let bases = segment_bases(&reference);
    assert!(bases.len() >= 5, "only {} segments", bases.len());
    let mut i = 0;
    let mut found = false;
    for step in &steps {
        // The commit group is every operation of the step but the first.
        let group = (i + 1)..(i + step.len());
        i += step.len();
        if group.len() < 3 {
            continue;
        }
        let seg = |op: usize| bases.partition_point(|&b| b <= reference.acks[op].position()) - 1;
        // An operation in the middle of the group starts a new segment.
        if group
            .clone()
            .skip(1)
            .take(group.len() - 2)
            .any(|op| seg(op) != seg(op - 1))
        {
            found = true;
        }
    }
    assert!(found, "no commit group with a roll in its middle");
}

/// Segment bases, from the reference records: a record right after a segment header.
fn segment_bases(reference: &Reference) -> Vec<u64> {
    let mut bases = vec![0];
    for w in reference.records.windows(2) {
        // Records are contiguous inside a segment; a gap is a segment header (the new base is
        // the previous segment's end).
        let gap = w[1].position - w[0].position;
        let frame = 12
            + 70
            + w[0].stream.len()
            + w[0].event_type.len()
            + w[0].metadata.len()
            + w[0].data.len();
        if gap != frame as u64 {
            assert_eq!(gap, frame as u64 + 32);
            bases.push(w[1].position - 32);
        }
    }
    bases
}

// ---------------------------------------------------------------------------------------------
// A failed fdatasync without a crash.

fn failed_sync_at_every_sync(max_step: usize) {
    let steps = script(max_step);
    let reference = reference(&steps);
    let mut failures = Failures::default();
    let mut reached = 0;
    for k in 0..reference.syncs {
        let faulty = FaultyStorage::new().fail_sync_at(k);
        let run = run(&faulty, &steps);
        let what = format!("failed sync {k}");
        let acked = run.answers.iter().take_while(|a| a.is_ok()).count();
        let poisoned = acked < reference.acks.len();
        failures.check(&what, || {
            if let Some(e) = &run.open_error {
                assert!(
                    matches!(e, Error::Io { .. }),
                    "{what}: open failed with {e}"
                );
                return;
            }
            let log = run.log.as_ref().unwrap();
            for (i, a) in run.answers.iter().enumerate() {
                match a {
                    Ok(ack) => {
                        assert!(
                            i < acked,
                            "{what}: operation {i} acknowledged after a failure"
                        );
                        assert_eq!(*ack, reference.acks[i], "{what}: operation {i}");
                    }
                    Err(Error::Poisoned { .. }) => {}
                    Err(e) => panic!("{what}: operation {i} failed with {e:?}, not Poisoned"),
                }
            }
            // Nothing unacknowledged is visible, and the log stays poisoned.
            let visible = read_everything(log);
            let must = acked.checked_sub(1).map_or(0, |i| reference.ends[i]);
            assert_eq!(visible[..], reference.records[..must], "{what}");
            if poisoned {
                let head = log.head();
                let late = log.append("late", ExpectedRevision::Any, vec![event(2_000_000)]);
                assert!(
                    matches!(late, Err(Error::Poisoned { .. })),
                    "{what}: append after the failure gave {late:?}"
                );
                let late = log.tombstone("order-0", ExpectedRevision::Any);
                assert!(matches!(late, Err(Error::Poisoned { .. })), "{what}");
                assert_eq!(log.head(), head, "{what}");
            }
        });
        if let Some(log) = run.log {
            // A poisoned log closes without writing a snapshot; a healthy one writes it, and
            // the failed sync may be one of the snapshot's.
            let closed = log.close();
            let failed = faulty.syncs() > k;
            reached += usize::from(failed);
            failures.check(&what, || {
                assert!(
                    failed || max_step > 1,
                    "{what}: the failing sync never came"
                );
                assert_eq!(
                    closed.is_err(),
                    failed && !poisoned,
                    "{what}: close gave {closed:?}"
                );
            });
        } else {
            reached += 1;
        }
        assert!(!faulty.crashed());
        for image in [CrashImage::AllWritten, CrashImage::DurableOnly] {
            let what = format!("{what}, image {image:?}");
            failures.check(&what, || {
                check_image(faulty.after_crash(image), &reference, acked, &what);
            });
        }
    }
    assert!(
        reached * 4 >= reference.syncs as usize * 3,
        "only {reached} of {} runs reached their failing sync",
        reference.syncs
    );
    failures.assert_none();
}

#[test]
fn failed_fdatasync_poisons_the_log_sequential_appends() {
    failed_sync_at_every_sync(1);
}

#[test]
fn failed_fdatasync_in_a_commit_group_poisons_every_request() {
    failed_sync_at_every_sync(8);
}

// ---------------------------------------------------------------------------------------------
// Crash images constructed by hand.

/// A power loss while a new segment's header is being written can leave the file with exactly
/// the header's 32 bytes, zeroed (a torn write of its only sector). No record can be in it, so
/// recovery must start it afresh rather than report corruption.
#[test]
fn crash_while_creating_a_segment_leaves_a_zeroed_header_that_reopens() {
    let steps = script(1);
    let reference = reference(&steps);
    // The first sync of the workload is the first segment's header at open; find a roll too:
    // the run with a crash at the sync after a roll's old-segment sync (the new header's).
    for k in 0..reference.syncs {
        let faulty = FaultyStorage::new().crash_at_sync(k);
        let run = run(&faulty, &steps);
        drop(run.log);
        let all = faulty.after_crash(CrashImage::AllWritten);
        let durable = faulty.after_crash(CrashImage::DurableOnly);
        let names = all.list().unwrap();
        let last = names
            .iter()
            .filter(|n| n.starts_with("segment-"))
            .max()
            .unwrap()
            .clone();
        // The header of the last segment was written but never became durable.
        let header_pending = durable.file_bytes(&last).unwrap().is_empty()
            && all.file_bytes(&last).unwrap().len() == 32;
        if !header_pending {
            continue;
        }
        let acked = run.answers.iter().take_while(|a| a.is_ok()).count();
        all.set_file_bytes(&last, vec![0; 32]);
        let what = format!("crash at sync {k}, {last} zeroed");
        check_image(all, &reference, acked, &what);
    }
}

/// While the sync thread makes commit group A durable, the writer already writes group B
/// behind it. A power loss before that fdatasync completes may keep any subset of the unsynced
/// pages (the kernel writes dirty pages back in no particular order): here B reached the disk
/// and one page in the middle of A did not (it reads back as zeros). Neither group was
/// acknowledged, so the log must open with everything before A, rather than take B for proof
/// that the damage in A is corruption of durable data.
#[test]
fn crash_with_two_groups_in_flight_and_a_lost_page_of_the_first_reopens() {
    let faulty = FaultyStorage::new();
    let gate = Arc::new(Gate::default());
    let log = EventLog::builder_with_storage(Arc::new(GatedStorage {
        inner: faulty.clone(),
        gate: gate.clone(),
    }))
    .config(config())
    .open()
    .unwrap();
    for id in 1..=5 {
        log.append("before", ExpectedRevision::Any, vec![event(id)])
            .unwrap();
    }
    let acknowledged = read_everything(&log);
    let a_start = log.head().0;

    // Group A: four events of about 3 KiB, held in its write so that B queues behind it.
    let big = |id: u128| {
        ProposedEvent::json(
            EventId::from_u128(id),
            "Big",
            format!("{{\"pad\":\"{}\"}}", "x".repeat(3000)).into_bytes(),
        )
    };
    let (tx, rx) = mpsc::channel();
    let writes = gate.writes();
    gate.arm(Hold::Write);
    let answer = |tx: &mpsc::Sender<Result<Appended, Error>>| {
        let tx = tx.clone();
        Box::new(move |r| {
            let _ = tx.send(r);
        })
    };
    log.append_with(
        "group-a".into(),
        ExpectedRevision::Any,
        (10..14).map(big).collect(),
        answer(&tx),
    );
    assert!(gate.wait_held(), "the writer never wrote group A");
    log.append_with(
        "group-b".into(),
        ExpectedRevision::Any,
        vec![event(20)],
        answer(&tx),
    );
    // Released, the writer hands A to the sync thread (B is waiting) and writes B; the sync
    // thread is held in A's fdatasync, where the power goes. (A writer that syncs each group
    // itself before writing the next is held there instead, and B is never written.)
    let writer = gate.holder();
    gate.arm(Hold::Sync);
    gate.release();
    let pipelined = gate.wait_held_after(writer, writes + 2);
    let _ = faulty.clone().crash_at_sync(faulty.syncs());
    gate.release();
    for _ in 0..2 {
        let r = rx.recv().unwrap();
        assert!(matches!(r, Err(Error::Poisoned { .. })), "{r:?}");
    }
    drop(log);
    assert!(faulty.crashed());

    // Everything written survived: both groups are there, whole.
    let all = faulty.after_crash(CrashImage::AllWritten);
    let log = open_memory(&all);
    let everything = read_everything(&log);
    drop(log);
    let a: Vec<&Rec> = everything
        .iter()
        .filter(|r| r.stream == "group-a")
        .collect();
    let b: Vec<&Rec> = everything
        .iter()
        .filter(|r| r.stream == "group-b")
        .collect();
    assert_eq!(a.len(), 4, "group A was written");
    assert_eq!(b.len(), usize::from(pipelined), "group B was written");
    assert_eq!(a[0].position, a_start);
    let a_end = b.first().map_or(a[3].position + 1, |b| b.position);

    // Now lose one 4 KiB page inside A, before B.
    let image = faulty.after_crash(CrashImage::AllWritten);
    let name = image
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("segment-"))
        .max()
        .unwrap();
    let base: u64 = name[8..28].parse().unwrap();
    let page = (a_start - base).div_ceil(4096) * 4096;
    assert!(page + 4096 <= a_end - base, "a whole page inside A");
    let mut bytes = image.file_bytes(&name).unwrap();
    bytes[page as usize..page as usize + 4096].fill(0);
    image.set_file_bytes(&name, bytes);
    let log = EventLog::builder_with_storage(Arc::new(image.clone()))
        .config(config())
        .open()
        .unwrap_or_else(|e| panic!("a lost page of an unacknowledged group: {e}"));
    assert_eq!(read_everything(&log), acknowledged);
}
