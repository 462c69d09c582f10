//! Damaged files on open: corruption anywhere but a torn tail stops the open with the file and
//! offset; a torn or padded tail of the last segment is cut back to the last whole batch, but
//! never below the end that the clean-close index snapshot proved durable; a damaged or
//! mismatching index snapshot is ignored for indexing.

use std::sync::Arc;

use daojia_eventlog::storage::{MemoryStorage, Storage};

use crate::support::{Rec, Rng, crc32c, segment_bases};
use daojia_eventlog::{
    AllOptions, AllStart, Config, CurrentRevision, Direction, Error, EventId, EventLog,
    ExpectedRevision, FORMAT_VERSION, Position, ProposedEvent, RecordedEvent, StreamStart,
    SubscribeFrom, SubscriptionItem,
};

const SNAPSHOT: &str = "index.snap";

fn config() -> Config {
    Config {
        segment_size: 64 << 10,
        max_batch_bytes: 16 << 10,
        max_event_bytes: 4 << 10,
        ..Config::default()
    }
}

fn segment_name(base: u64) -> String {
    format!("segment-{base:020}.log")
}

// ---------------------------------------------------------------------------------------------
// Building a log and observing one.

fn payload(id: u128, small: bool) -> Vec<u8> {
    let pad_len = if small {
        20
    } else {
        (id * 7919 % 1500) as usize
    };
    let pad: String = (0..pad_len)
        .map(|i| char::from(b'a' + ((id as usize + i) % 26) as u8))
        .collect();
    format!("{{\"id\":{id},\"pad\":\"{pad}\"}}").into_bytes()
}

fn event(id: u128, small: bool) -> ProposedEvent {
    ProposedEvent::json(EventId::from_u128(id), "Happened", payload(id, small))
}

fn rec(e: &RecordedEvent) -> Rec {
    Rec::timeless(e)
}

const STREAMS: [&str; 5] = ["cart-0", "cart-1", "cart-2", "cart-3", "cart-4"];

/// One stream as a reader sees it: its name, a forward read and its revision.
type StreamView = (
    String,
    Result<Vec<Rec>, String>,
    Result<CurrentRevision, String>,
);

/// Everything a reader can see: `$all`, and every stream read and revision.
#[derive(Debug, PartialEq, Eq)]
struct View {
    all: Vec<Rec>,
    streams: Vec<StreamView>,
}

fn kind(e: &Error) -> String {
    match e {
        Error::StreamNotFound { .. } => "not found".into(),
        Error::StreamDeleted { .. } => "deleted".into(),
        other => format!("{other}"),
    }
}

fn view(log: &EventLog) -> View {
    let mut all = Vec::new();
    let mut from = AllStart::Edge;
    loop {
        let page = log.read_all(Direction::Forwards, from, 1000, None).unwrap();
        all.extend(page.events.iter().map(rec));
        if page.end_of_log {
            break;
        }
        from = AllStart::Position(page.next);
    }
    let names = STREAMS
        .iter()
        .map(|s| s.to_string())
        .chain(STREAMS.iter().map(|s| format!("$${s}")))
        .chain(["late".to_string()]);
    let streams = names
        .map(|s| {
            let read = log
                .read_stream(&s, Direction::Forwards, StreamStart::Edge, usize::MAX)
                .map(|v| v.iter().map(rec).collect())
                .map_err(|e| kind(&e));
            let revision = log.stream_revision(&s).map_err(|e| kind(&e));
            (s, read, revision)
        })
        .collect();
    View { all, streams }
}

/// Compares two views, reporting the first difference only.
#[track_caller]
fn assert_view(got: &View, want: &View, what: &str) {
    if got == want {
        return;
    }
    let n = got.all.len().max(want.all.len());
    if let Some(i) = (0..n).find(|&i| got.all.get(i) != want.all.get(i)) {
        panic!(
            "{what}: $all differs at record {i} ({} records, want {}): got {:?}, want {:?}",
            got.all.len(),
            want.all.len(),
            got.all.get(i),
            want.all.get(i)
        );
    }
    for (g, w) in got.streams.iter().zip(&want.streams) {
        assert_eq!(g, w, "{what}: stream {}", w.0);
    }
}

fn open(mem: &MemoryStorage) -> Result<EventLog, Error> {
    EventLog::builder_with_storage(Arc::new(mem.clone()))
        .config(config())
        .open()
}

/// A deep copy of a directory.
fn copy(mem: &MemoryStorage) -> MemoryStorage {
    let out = MemoryStorage::new();
    for name in mem.list().unwrap() {
        out.set_file_bytes(&name, mem.file_bytes(&name).unwrap());
    }
    out
}

/// A closed log and what was acknowledged while writing it.
struct Built {
    mem: MemoryStorage,
    /// The directory just before the last operation (closed there too).
    before_last: MemoryStorage,
    /// Every record, in order.
    records: Vec<Rec>,
    /// Per operation: positions of its first and last record.
    ops: Vec<(u64, u64)>,
    /// Segment bases, in order.
    bases: Vec<u64>,
}

impl Built {
    fn last_segment(&self) -> (String, u64) {
        let base = *self.bases.last().unwrap();
        (segment_name(base), base)
    }

    /// Records of segment `base`, as (position, frame length).
    fn frames(&self, base: u64) -> Vec<(u64, u64)> {
        let seg_end = self.segment_end(base);
        let positions: Vec<u64> = self
            .records
            .iter()
            .map(|r| r.position)
            .filter(|&p| p > base && p < seg_end)
            .collect();
        positions
            .iter()
            .enumerate()
            .map(|(i, &p)| (p, positions.get(i + 1).copied().unwrap_or(seg_end) - p))
            .collect()
    }

    fn segment_end(&self, base: u64) -> u64 {
        let bytes = self.mem.file_bytes(&segment_name(base)).unwrap();
        base + bytes.len() as u64
    }

    fn view(&self) -> View {
        let log = open(&self.mem).unwrap();
        let v = view(&log);
        log.close().unwrap();
        v
    }
}

/// Writes `ops` operations (appends of 1 to 4 events, a soft delete, a tombstone), the last
/// being a batch of four small events after a close and reopen, and closes the log.
fn build(ops: usize, streams: &[&str; 5]) -> Built {
    let mem = MemoryStorage::new();
    let log = open(&mem).unwrap();
    let mut acks = Vec::new();
    let mut id = 1u128;
    for i in 0..ops - 1 {
        let position = if i == ops / 3 {
            log.delete(streams[1], ExpectedRevision::Any)
                .unwrap()
                .position
        } else if i == ops / 2 {
            log.tombstone(streams[2], ExpectedRevision::Any)
                .unwrap()
                .position
        } else {
            let mut s = (i * 7 + 3) % streams.len();
            if s == 2 && i > ops / 2 {
                s = 3;
            }
            let n = 1 + (i % 4) as u128;
            let events: Vec<ProposedEvent> = (0..n).map(|j| event(id + j, false)).collect();
            id += n;
            log.append(streams[s], ExpectedRevision::Any, events)
                .unwrap()
                .position
        };
        acks.push(position.0);
    }
    log.close().unwrap();
    let before_last = copy(&mem);
    let log = open(&mem).unwrap();
    let events: Vec<ProposedEvent> = (0..4).map(|j| event(id + j, true)).collect();
    let a = log
        .append(streams[0], ExpectedRevision::Any, events)
        .unwrap();
    acks.push(a.position.0);
    let records = view(&log).all;
    log.close().unwrap();
    finish(mem, before_last, records, acks)
}

fn finish(
    mem: MemoryStorage,
    before_last: MemoryStorage,
    records: Vec<Rec>,
    acks: Vec<u64>,
) -> Built {
    let mut ops = Vec::new();
    let mut next = 0;
    for last in acks {
        let end = records.iter().position(|r| r.position == last).unwrap();
        ops.push((records[next].position, last));
        next = end + 1;
    }
    assert_eq!(next, records.len());
    let bases = segment_bases(&mem);
    Built {
        mem,
        before_last,
        records,
        ops,
        bases,
    }
}

fn big() -> Built {
    let b = build(110, &STREAMS);
    assert!(b.bases.len() >= 4, "{} segments", b.bases.len());
    b
}

fn small() -> Built {
    let b = build(40, &STREAMS);
    assert!(b.bases.len() >= 2, "{} segments", b.bases.len());
    b
}

fn flip(mem: &MemoryStorage, file: &str, offset: u64) {
    let mut bytes = mem.file_bytes(file).unwrap();
    bytes[offset as usize] ^= 0x5A;
    mem.set_file_bytes(file, bytes);
}

#[track_caller]
fn assert_corrupt(result: Result<EventLog, Error>, file: &str, offset: u64, what: &str) {
    match result {
        Err(Error::Corrupt {
            file: f, offset: o, ..
        }) => {
            assert_eq!(
                (f.as_str(), o),
                (file, offset),
                "{what}: corruption reported at the wrong place"
            );
        }
        Err(e) => panic!("{what}: expected Corrupt at {file}:{offset}, got {e}"),
        Ok(_) => panic!("{what}: expected Corrupt at {file}:{offset}, but the log opened"),
    }
}

// ---------------------------------------------------------------------------------------------
// Flipped bytes.

#[test]
fn crc_implementation_matches_the_stored_header_checksums() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    let b = small();
    for base in &b.bases {
        let h = b.mem.file_bytes(&segment_name(*base)).unwrap();
        assert_eq!(crc32c(&h[..28]).to_le_bytes(), h[28..32]);
    }
}

#[test]
fn flipped_byte_in_the_last_segment_before_later_commits_is_corrupt_at_its_record() {
    let b = big();
    let (name, base) = b.last_segment();
    let last_op_start = b.ops.last().unwrap().0;
    let frames = b.frames(base);
    let mut tried = 0;
    for &(pos, len) in frames.iter().filter(|(p, _)| *p < last_op_start) {
        // Length, checksum, position, batch fields, the middle, the trailing length.
        for at in [0, 3, 5, 9, 28, len / 2, len - 5, len - 1] {
            let mem = copy(&b.mem);
            flip(&mem, &name, pos - base + at);
            assert_corrupt(
                open(&mem),
                &name,
                pos - base,
                &format!("flip at byte {at} of the record at {pos}"),
            );
            tried += 1;
        }
    }
    assert!(tried >= 40, "only {tried} flips tried");
}

#[test]
fn flipped_byte_in_a_sealed_segment_is_corrupt_at_its_record() {
    let b = big();
    let (_, last_base) = b.last_segment();
    for &base in b.bases.iter().filter(|&&x| x != last_base) {
        let name = segment_name(base);
        let frames = b.frames(base);
        // The first, a middle and the last record of the segment: nothing follows the last
        // one in its segment, but a sealed segment has no torn tail.
        for &(pos, len) in [frames[0], frames[frames.len() / 2], *frames.last().unwrap()].iter() {
            for at in [0, 4, len / 2, len - 1] {
                let mem = copy(&b.mem);
                flip(&mem, &name, pos - base + at);
                assert_corrupt(
                    open(&mem),
                    &name,
                    pos - base,
                    &format!("flip at byte {at} of the record at {pos} in {name}"),
                );
            }
        }
    }
}

#[track_caller]
fn assert_durable_damaged(
    result: Result<EventLog, Error>,
    file: &str,
    offset: u64,
    durable: u64,
    what: &str,
) {
    match result {
        Err(Error::DurableDamaged {
            file: f,
            offset: o,
            durable_end,
            ..
        }) => assert_eq!(
            (f.as_str(), o, durable_end),
            (file, offset, durable),
            "{what}: damage reported at the wrong place"
        ),
        Err(e) => panic!("{what}: expected DurableDamaged at {file}:{offset}, got {e}"),
        Ok(_) => panic!("{what}: expected DurableDamaged at {file}:{offset}, but the log opened"),
    }
}

/// Damage inside the last commit group of the last segment, when the group was the last
/// before a crash (`index.snap` is older than it), cannot be told from a torn write (nothing
/// durable follows it), so it is cut like one: that whole batch goes, the rest stays.
#[test]
fn flipped_byte_in_the_last_commit_group_is_cut_like_a_torn_write() {
    let b = big();
    let (name, base) = b.last_segment();
    let (first, _) = *b.ops.last().unwrap();
    let expected = {
        let log = open(&copy(&b.before_last)).unwrap();
        let v = view(&log);
        log.close().unwrap();
        v
    };
    for &(pos, len) in b.frames(base).iter().filter(|(p, _)| *p >= first) {
        for at in [0, len / 2, len - 1] {
            let what = format!("flip at byte {at} of the record at {pos}");
            let mem = copy(&b.mem);
            mem.set_file_bytes(SNAPSHOT, b.before_last.file_bytes(SNAPSHOT).unwrap());
            flip(&mem, &name, pos - base + at);
            let log = open(&mem).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_view(&view(&log), &expected, &what);
            let torn = log
                .recovery()
                .torn_tail
                .clone()
                .expect("the cut is reported");
            assert_eq!(
                (torn.file.as_str(), torn.offset),
                (name.as_str(), first - base)
            );
            assert_eq!(log.recovery().durable_end, first);
            log.close().unwrap();
        }
    }
}

/// The same damage after a clean close: `index.snap`, written at the close, proves the group
/// durable, so it is an acknowledged event gone bad, not a torn write. The open fails naming
/// the file and the damaged record, and cuts nothing.
#[test]
fn flipped_byte_in_the_last_record_after_a_clean_close_fails_the_open() {
    let b = big();
    let (name, base) = b.last_segment();
    let (first, _) = *b.ops.last().unwrap();
    let durable = b.segment_end(base);
    for &(pos, len) in b.frames(base).iter().filter(|(p, _)| *p >= first) {
        for at in [0, 4, 9, len / 2, len - 1] {
            let what = format!("flip at byte {at} of the record at {pos}");
            let mem = copy(&b.mem);
            flip(&mem, &name, pos - base + at);
            let damaged = mem.file_bytes(&name).unwrap();
            assert_durable_damaged(open(&mem), &name, pos - base, durable, &what);
            assert_eq!(
                mem.file_bytes(&name).unwrap(),
                damaged,
                "{what}: bytes were cut"
            );
            // Reported again on the next try: nothing was repaired behind the operator's back.
            assert_durable_damaged(open(&mem), &name, pos - base, durable, &what);
        }
    }
}

/// A torn tail past the proven-durable end is still cut, and the cut is reported: half a record
/// written after the clean close that `index.snap` describes goes.
#[test]
fn torn_tail_past_the_clean_close_snapshot_is_cut_and_reported() {
    let b = big();
    let (name, base) = b.last_segment();
    let end = b.segment_end(base);
    let mem = copy(&b.mem);
    let mut bytes = mem.file_bytes(&name).unwrap();
    // Half of a record written after the close that `index.snap` describes.
    let half = forged_frame(end, STREAMS[0], "Happened", b"{}");
    bytes.extend_from_slice(&half[..half.len() / 2]);
    mem.set_file_bytes(&name, bytes);
    let log = open(&mem).unwrap();
    assert_view(&view(&log), &b.view(), "reopen");
    let report = log.recovery().clone();
    assert_eq!(report.durable_end, end);
    let torn = report.torn_tail.expect("the cut is reported");
    assert_eq!(
        (torn.file.as_str(), torn.offset, torn.bytes),
        (name.as_str(), end - base, (half.len() / 2) as u64)
    );
    log.close().unwrap();
    assert_eq!(mem.file_bytes(&name).unwrap().len() as u64, end - base);
}

// ---------------------------------------------------------------------------------------------
// Truncation and missing files.

#[test]
fn truncated_sealed_segment_is_corrupt() {
    let b = big();
    for &base in &b.bases[..b.bases.len() - 1] {
        let name = segment_name(base);
        let next = segment_name(b.bases[b.bases.iter().position(|&x| x == base).unwrap() + 1]);
        let frames = b.frames(base);
        let len = b.segment_end(base) - base;
        let (mid_pos, mid_len) = frames[frames.len() / 2];
        let cuts = [
            32,
            33,
            mid_pos - base,
            mid_pos - base + mid_len / 2,
            frames.last().unwrap().0 - base,
            len - 1,
        ];
        for cut in cuts {
            let mem = copy(&b.mem);
            let mut bytes = mem.file_bytes(&name).unwrap();
            bytes.truncate(cut as usize);
            mem.set_file_bytes(&name, bytes);
            match open(&mem) {
                Err(Error::Corrupt { file, .. }) => assert!(
                    file == name || file == next,
                    "{name} cut at {cut}: corruption reported in {file}"
                ),
                Err(e) => panic!("{name} cut at {cut}: {e}"),
                Ok(_) => panic!("{name} cut at {cut}: the log opened"),
            }
        }
    }
}

#[test]
fn missing_or_emptied_sealed_segment_is_corrupt() {
    let b = big();
    let second = segment_name(b.bases[1]);
    let third = segment_name(b.bases[2]);
    let mem = copy(&b.mem);
    mem.remove(&second).unwrap();
    assert_corrupt(open(&mem), &third, 0, "second segment missing");

    let mem = copy(&b.mem);
    mem.set_file_bytes(&second, Vec::new());
    assert_corrupt(open(&mem), &second, 0, "second segment empty");
}

#[test]
fn cutting_the_last_batch_at_every_byte_rolls_back_only_that_batch() {
    let b = small();
    let (name, base) = b.last_segment();
    let (first, last) = *b.ops.last().unwrap();
    let end = b.segment_end(base);
    assert!(
        first > base && last > first,
        "the last batch is in the last segment"
    );
    let expected = {
        let log = open(&copy(&b.before_last)).unwrap();
        let v = view(&log);
        log.close().unwrap();
        v
    };
    assert_eq!(expected.all[..], b.records[..b.records.len() - 4]);
    for cut in (first - base)..(end - base) {
        let mem = copy(&b.mem);
        // As after a crash: the snapshot is the one of the last close, before the batch.
        mem.set_file_bytes(SNAPSHOT, b.before_last.file_bytes(SNAPSHOT).unwrap());
        let mut bytes = mem.file_bytes(&name).unwrap();
        bytes.truncate(cut as usize);
        mem.set_file_bytes(&name, bytes);
        let what = format!("{name} cut at {cut}");
        let log = open(&mem).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_view(&view(&log), &expected, &what);
        let a = log
            .append("late", ExpectedRevision::NoStream, vec![event(9_000, true)])
            .unwrap();
        assert_eq!(
            a.position.0, first,
            "{what}: the next append goes where the batch was"
        );
        drop(log);
        // The cut was made for good: the file ends where the rolled-back batch started (plus
        // the new append), and another reopen sees the same.
        let log = open(&mem).unwrap();
        let v = view(&log);
        assert_eq!(v.all[..expected.all.len()], expected.all[..], "{what}");
        assert_eq!(v.all.len(), expected.all.len() + 1, "{what}");
        log.close().unwrap();
    }
}

#[test]
fn torn_tail_is_truncated_so_a_second_reopen_sees_the_same() {
    let b = small();
    let (name, base) = b.last_segment();
    let (first, _) = *b.ops.last().unwrap();
    let mem = copy(&b.mem);
    mem.set_file_bytes(SNAPSHOT, b.before_last.file_bytes(SNAPSHOT).unwrap());
    let mut bytes = mem.file_bytes(&name).unwrap();
    let cut = (first - base) as usize + 100;
    bytes.truncate(cut);
    mem.set_file_bytes(&name, bytes);
    let log = open(&mem).unwrap();
    let once = view(&log);
    drop(log);
    assert_eq!(
        mem.file_bytes(&name).unwrap().len() as u64,
        first - base,
        "the torn tail is cut off the file"
    );
    let log = open(&mem).unwrap();
    assert_view(&view(&log), &once, "reopen");
    drop(log);
    let log = open(&mem).unwrap();
    assert_view(&view(&log), &once, "reopen");
}

// ---------------------------------------------------------------------------------------------
// Garbage after the tail.

/// `n` pseudo-random bytes.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    Rng(seed).bytes(n)
}

#[test]
fn zeros_or_garbage_after_the_tail_are_dropped() {
    let b = small();
    let (name, base) = b.last_segment();
    let end = b.segment_end(base);
    let expected = b.view();
    let last_frame = {
        let bytes = b.mem.file_bytes(&name).unwrap();
        let (pos, len) = *b.frames(base).last().unwrap();
        bytes[(pos - base) as usize..(pos - base + len) as usize].to_vec()
    };
    let mut plausible_len = 200u32.to_le_bytes().to_vec();
    plausible_len.extend(vec![0; 300]);
    let tails: Vec<(String, Vec<u8>)> = vec![
        ("1 zero".into(), vec![0]),
        ("7 zeros".into(), vec![0; 7]),
        ("a zeroed sector".into(), vec![0; 512]),
        ("5000 zeros".into(), vec![0; 5000]),
        ("1 random byte".into(), noise(1, 1)),
        ("13 random bytes".into(), noise(2, 13)),
        ("300 random bytes".into(), noise(3, 300)),
        ("4096 random bytes".into(), noise(4, 4096)),
        ("a plausible length, then zeros".into(), plausible_len),
        ("a copy of the last record".into(), last_frame),
        ("0xff bytes".into(), vec![0xff; 100]),
    ];
    for (what, tail) in tails {
        for with_snapshot in [true, false] {
            let what = format!("{what} (snapshot kept: {with_snapshot})");
            let mem = copy(&b.mem);
            if !with_snapshot {
                mem.remove(SNAPSHOT).unwrap();
            }
            let mut bytes = mem.file_bytes(&name).unwrap();
            bytes.extend_from_slice(&tail);
            mem.set_file_bytes(&name, bytes);
            let log = open(&mem).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_view(&view(&log), &expected, &what);
            drop(log);
            assert_eq!(
                mem.file_bytes(&name).unwrap().len() as u64,
                end - base,
                "{what}: the file is cut back to the end of the last batch"
            );
            let log = open(&mem).unwrap();
            assert_view(&view(&log), &expected, &format!("{what}: second reopen"));
            let a = log
                .append("late", ExpectedRevision::NoStream, vec![event(9_000, true)])
                .unwrap();
            assert_eq!(
                a.position.0, end,
                "{what}: the next append goes at the old end"
            );
            log.close().unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The index snapshot.

#[test]
fn damaged_index_snapshot_is_ignored_and_the_index_rebuilt() {
    let b = big();
    let expected = b.view();
    assert_eq!(expected.all, b.records);
    let snap = b.mem.file_bytes(SNAPSHOT).unwrap();
    let mut damaged: Vec<(String, Vec<u8>)> = Vec::new();
    for at in [
        0,
        9,
        17,
        30,
        50,
        snap.len() / 2,
        snap.len() - 9,
        snap.len() - 1,
    ] {
        let mut s = snap.clone();
        s[at] ^= 0x10;
        damaged.push((format!("byte {at} flipped"), s));
    }
    for keep in [0, 10, 51, 52, snap.len() / 2, snap.len() - 1] {
        damaged.push((format!("cut to {keep} bytes"), snap[..keep].to_vec()));
    }
    let mut longer = snap.clone();
    longer.extend_from_slice(&[0; 8]);
    damaged.push(("8 zeros appended".into(), longer));
    damaged.push(("zeros".into(), vec![0; snap.len()]));
    damaged.push(("garbage".into(), noise(9, snap.len())));
    for (what, bytes) in damaged {
        let mem = copy(&b.mem);
        mem.set_file_bytes(SNAPSHOT, bytes);
        let log = open(&mem).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_view(&view(&log), &expected, &what);
        let a = log
            .append(STREAMS[0], ExpectedRevision::Any, vec![event(9_000, true)])
            .unwrap();
        let revision = match &expected.streams[0].2 {
            Ok(CurrentRevision::Current(r)) => r.0 + 1,
            other => panic!("{other:?}"),
        };
        assert_eq!(a.first_revision.0, revision, "{what}");
        log.close().unwrap();
    }
}

/// A snapshot that describes more of the log than there is (the segments are older than the
/// snapshot, as after restoring segment files from a backup, or the tail was lost) proves that
/// durable bytes are missing: the open fails at the log's end. Removing the snapshot is the
/// operator's deliberate way to open the shorter log.
#[test]
fn snapshot_of_a_longer_log_fails_the_open_until_removed() {
    let b = big();
    // The snapshot written after the last operation, with the segments from before it.
    let mem = copy(&b.before_last);
    mem.set_file_bytes(SNAPSHOT, b.mem.file_bytes(SNAPSHOT).unwrap());
    let expected = {
        let log = open(&copy(&b.before_last)).unwrap();
        let v = view(&log);
        log.close().unwrap();
        v
    };
    let (name, base) = b.last_segment();
    let short_end = base + b.before_last.file_bytes(&name).unwrap().len() as u64;
    assert_durable_damaged(
        open(&mem),
        &name,
        short_end - base,
        b.segment_end(base),
        "older segments",
    );
    mem.remove(SNAPSHOT).unwrap();
    let log = open(&mem).unwrap();
    assert_view(&view(&log), &expected, "reopen");
    // The stream the last batch went to continues from what the segments hold.
    let a = log
        .append(STREAMS[0], ExpectedRevision::Any, vec![event(9_000, true)])
        .unwrap();
    let revision = match &expected.streams[0].2 {
        Ok(CurrentRevision::Current(r)) => r.0 + 1,
        other => panic!("{other:?}"),
    };
    assert_eq!(a.first_revision.0, revision);
}

/// A snapshot of an earlier state of the same log is valid for the part it covers; the rest is
/// indexed from the segments.
#[test]
fn snapshot_of_an_earlier_state_is_used_and_the_rest_indexed() {
    let b = big();
    let mem = copy(&b.mem);
    mem.set_file_bytes(SNAPSHOT, b.before_last.file_bytes(SNAPSHOT).unwrap());
    let log = open(&mem).unwrap();
    assert_view(&view(&log), &b.view(), "reopen");
}

/// A snapshot taken from another log, of exactly the same shape (same record sizes, so every
/// position and count lines up) but other streams, must not be taken for this log's index.
#[test]
fn snapshot_of_another_log_with_the_same_shape_is_ignored() {
    let b = build(40, &STREAMS);
    let other = build(40, &["bike-0", "bike-1", "bike-2", "bike-3", "bike-4"]);
    assert_eq!(
        b.records.iter().map(|r| r.position).collect::<Vec<_>>(),
        other.records.iter().map(|r| r.position).collect::<Vec<_>>(),
        "both logs have the same layout"
    );
    let expected = b.view();
    let mem = copy(&b.mem);
    mem.set_file_bytes(SNAPSHOT, other.mem.file_bytes(SNAPSHOT).unwrap());
    let log = open(&mem).unwrap();
    assert_view(&view(&log), &expected, "reopen");
}

// ---------------------------------------------------------------------------------------------
// Segment headers.

#[test]
fn damaged_segment_header_is_corrupt() {
    let b = small();
    let (last, _) = b.last_segment();
    for name in [segment_name(b.bases[0]), last] {
        for at in 0..32 {
            let mem = copy(&b.mem);
            flip(&mem, &name, at);
            assert_corrupt(open(&mem), &name, 0, &format!("header byte {at} of {name}"));
        }
    }
}

fn rewrite_header(mem: &MemoryStorage, name: &str, f: impl FnOnce(&mut [u8])) {
    let mut bytes = mem.file_bytes(name).unwrap();
    f(&mut bytes[..32]);
    let c = crc32c(&bytes[..28]);
    bytes[28..32].copy_from_slice(&c.to_le_bytes());
    mem.set_file_bytes(name, bytes);
}

#[test]
fn segment_header_naming_another_base_is_corrupt() {
    let b = small();
    let (last, _) = b.last_segment();
    for name in [segment_name(b.bases[0]), last] {
        let mem = copy(&b.mem);
        rewrite_header(&mem, &name, |h| h[16] ^= 0x40);
        assert_corrupt(open(&mem), &name, 16, &format!("base of {name}"));
    }
}

#[test]
fn unsupported_format_version_is_reported() {
    let b = small();
    let (last, _) = b.last_segment();
    for name in [segment_name(b.bases[0]), last] {
        for version in [FORMAT_VERSION + 1, 0, u32::MAX] {
            let mem = copy(&b.mem);
            rewrite_header(&mem, &name, |h| {
                h[8..12].copy_from_slice(&version.to_le_bytes());
            });
            match open(&mem) {
                Err(Error::UnsupportedVersion {
                    file,
                    found,
                    supported,
                }) => {
                    assert_eq!(file, name);
                    assert_eq!(found, version);
                    assert_eq!(supported, FORMAT_VERSION);
                }
                Err(e) => panic!("version {version} in {name}: {e}"),
                Ok(_) => panic!("version {version} in {name}: the log opened"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bytes that look like records inside event data.

/// A well-formed frame (FORMAT.md) claiming to be at `position`.
fn forged_frame(position: u64, stream: &str, event_type: &str, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&position.to_le_bytes());
    p.extend_from_slice(&0u64.to_le_bytes());
    p.extend_from_slice(&[1, 0]);
    p.extend_from_slice(&(stream.len() as u16).to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&0u64.to_le_bytes());
    p.extend_from_slice(&0i64.to_le_bytes());
    p.extend_from_slice(&[7u8; 16]);
    p.extend_from_slice(&(event_type.len() as u16).to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&(data.len() as u32).to_le_bytes());
    p.extend_from_slice(stream.as_bytes());
    p.extend_from_slice(event_type.as_bytes());
    p.extend_from_slice(data);
    let len = (p.len() as u32).to_le_bytes();
    let mut covered = len.to_vec();
    covered.extend_from_slice(&p);
    let mut frame = len.to_vec();
    frame.extend_from_slice(&crc32c(&covered).to_le_bytes());
    frame.extend_from_slice(&p);
    frame.extend_from_slice(&len);
    frame
}

#[test]
fn a_record_forged_inside_event_data_is_never_served() {
    let mem = MemoryStorage::new();
    let log = open(&mem).unwrap();
    log.append("order-a", ExpectedRevision::Any, vec![event(1, true)])
        .unwrap();
    // The carrier's data starts after the frame header (8), the payload header (70), the
    // stream name and the type; a forged frame placed there claims exactly that position.
    let carrier_at = log.head().0;
    let (stream, kind) = ("order-x", "Carrier");
    let data_at = carrier_at + 8 + 70 + stream.len() as u64 + kind.len() as u64;
    let forged = forged_frame(data_at, "order-forged", "Forged", b"{}");
    let carrier = ProposedEvent::json(EventId::from_u128(2), kind, forged);
    let a = log
        .append(stream, ExpectedRevision::Any, vec![carrier])
        .unwrap();
    assert_eq!(a.position.0, carrier_at);
    let next = log
        .append("order-b", ExpectedRevision::Any, vec![event(3, true)])
        .unwrap();

    let page = log
        .read_all(
            Direction::Forwards,
            AllStart::Position(Position(data_at)),
            10,
            None,
        )
        .unwrap();
    assert!(page.events.iter().all(|e| e.stream() != "order-forged"));
    assert_eq!(page.events.first().map(|e| e.position), Some(next.position));

    let mut sub = log.subscribe_all(
        SubscribeFrom::After(Position(data_at)),
        AllOptions::default(),
    );
    match sub
        .next_timeout(std::time::Duration::from_secs(30))
        .unwrap()
    {
        Some(SubscriptionItem::Event(e)) => assert_eq!(e.position, next.position),
        other => panic!("expected the event after the carrier, got {other:?}"),
    }
    assert!(matches!(
        log.read_stream("order-forged", Direction::Forwards, StreamStart::Edge, 1),
        Err(Error::StreamNotFound { .. })
    ));
}
