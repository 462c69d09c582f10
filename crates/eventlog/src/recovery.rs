//! Opening a log: segment checks, index snapshot, verification scan and torn-tail repair.
//!
//! Every record of every segment is checked (length, CRC32C, own position) on open, so
//! corruption anywhere stops the open with the file and offset. The index snapshot, when it is
//! valid, saves rebuilding the stream index for the part of the log it covers; records after
//! it are indexed as they are scanned. Only the last segment may end in a torn write: its tail
//! is cut back to the last complete batch, unless the damaged bytes were proven durable, by
//! the index snapshot written at a clean close or by valid records of a later commit group,
//! which makes the damage corruption: the open then fails and nothing is cut.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, RwLock};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::{self, FRAME_OVERHEAD, HeaderProblem, Record, RecordKind, SEGMENT_HEADER_LEN};
use crate::index::StreamIndex;
use crate::log::{Clock, Config, EventLog, IndexState, Queue, Shared};
use crate::metadata;
use crate::segments::{ForwardScan, Segment, Segments, parse_segment_name, segment_name};
use crate::storage::Storage;
use crate::subscription::Live;
use crate::writer::Writer;

fn io(op: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(op, e)
}

/// Applies only what the snapshot does not hold (tombstones, metadata) for records it covers.
fn apply_side(state: &mut IndexState, rec: &Record) {
    let e = &rec.event;
    let (stream, event_type) = (e.stream(), e.event_type());
    state.record(
        rec.kind,
        stream,
        event_type,
        e.data_slice(),
        e.position.0,
        u64::MAX,
        false,
    );
}

/// What opening the log found and did, for the caller to log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Every byte below this log position was proven durable (the clean-close index
    /// snapshot's covered end; 0 without a usable one) and was read back intact.
    pub durable_end: u64,
    /// The end of the log after the open.
    pub end: u64,
    /// Whether the index snapshot was used to skip indexing.
    pub snapshot_used: bool,
    /// The torn tail cut from the last segment, if there was one.
    pub torn_tail: Option<TornTail>,
}

/// A torn tail cut at open: bytes past the proven-durable point that never formed a whole,
/// acknowledged batch.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TornTail {
    /// Segment file.
    pub file: String,
    /// Offset in the file where the kept part ends (the cut).
    pub offset: u64,
    /// Bytes removed.
    pub bytes: u64,
    /// Offset of the first invalid or incomplete record.
    pub damage_offset: u64,
    /// What was wrong there.
    pub reason: String,
}

struct Scan {
    state: IndexState,
    /// Every byte below this position was proven durable: it may not be cut.
    durable: u64,
    /// Bytes below `durable` proven so by this (for the error message).
    proof: String,
    /// A torn tail cut by this scan.
    torn: Option<TornTail>,
    /// Records below this are in the snapshot's index already.
    covered: u64,
    /// Whether `covered` was seen as a record boundary (or is 0).
    covered_seen: bool,
    /// Event records seen below `covered`.
    covered_events: u64,
    /// Events indexed from the log itself.
    indexed: u64,
    /// Fingerprint of the records below `covered`.
    covered_fp: u64,
    /// Fingerprint of every record.
    total_fp: u64,
}

impl Scan {
    fn new(state: IndexState, covered: u64, durable: u64) -> Self {
        Scan {
            state,
            durable,
            proof: format!(
                "the index snapshot ({}) written at a clean close covers the log up to position {durable}",
                crate::index::SNAPSHOT_FILE
            ),
            torn: None,
            covered,
            covered_seen: covered == 0,
            covered_events: 0,
            indexed: 0,
            covered_fp: 0,
            total_fp: 0,
        }
    }

    fn record(&mut self, rec: &Record) {
        let pos = rec.event.position.0;
        if pos == self.covered {
            self.covered_seen = true;
        }
        let fp = format::fingerprint(rec.crc, pos);
        self.total_fp = self.total_fp.wrapping_add(fp);
        if pos < self.covered {
            self.covered_fp = self.covered_fp.wrapping_add(fp);
            if rec.kind == RecordKind::Event {
                self.covered_events += 1;
            }
            apply_side(&mut self.state, rec);
        } else {
            self.state.apply(rec, u64::MAX);
            if rec.kind == RecordKind::Event {
                self.indexed += 1;
            }
        }
    }
}

pub(crate) fn open(
    storage: Arc<dyn Storage>,
    config: Config,
    clock: Arc<dyn Clock>,
    lock: Option<std::fs::File>,
) -> Result<EventLog> {
    let names = storage
        .list()
        .map_err(io("listing the data directory".into()))?;
    let mut bases: Vec<(u64, String)> = names
        .iter()
        .filter_map(|n| parse_segment_name(n).map(|b| (b, n.clone())))
        .collect();
    bases.sort();
    if bases.is_empty() {
        let name = segment_name(0);
        let f = storage
            .open(&name, true)
            .map_err(io(format!("creating {name}")))?;
        f.write_at(&format::segment_header(0), 0)
            .and_then(|()| f.sync())
            .and_then(|()| storage.sync_dir())
            .map_err(io(format!("initialising {name}")))?;
        bases.push((0, name));
    }

    // Headers and the chain of bases.
    let mut segs = Vec::with_capacity(bases.len());
    let mut lens = Vec::with_capacity(bases.len());
    let last_i = bases.len() - 1;
    for (i, (base, name)) in bases.into_iter().enumerate() {
        let file = storage
            .open(&name, false)
            .map_err(io(format!("opening {name}")))?;
        let len = file
            .len()
            .map_err(io(format!("reading the length of {name}")))?;
        let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
        let header_ok = len >= SEGMENT_HEADER_LEN && file.read_at(&mut h, 0).is_ok();
        match header_ok.then(|| format::parse_segment_header(&h)) {
            Some(Ok(b)) if b == base => {}
            Some(Ok(b)) => {
                return Err(Error::corrupt(
                    &name,
                    16,
                    format!("header names base {b}, file name says {base}"),
                ));
            }
            Some(Err(HeaderProblem::Version(v))) => {
                return Err(Error::UnsupportedVersion {
                    file: name,
                    found: v,
                    supported: format::FORMAT_VERSION,
                });
            }
            Some(Err(HeaderProblem::Corrupt(_))) | None
                if i == last_i && len <= SEGMENT_HEADER_LEN =>
            {
                // The last segment, no longer than a header and without a valid one: it was
                // being created when the process died, so no record can be in it.
                file.set_len(0)
                    .and_then(|()| file.write_at(&format::segment_header(base), 0))
                    .and_then(|()| file.sync())
                    .map_err(io(format!("reinitialising {name}")))?;
            }
            Some(Err(HeaderProblem::Corrupt(why))) => {
                return Err(Error::corrupt(&name, 0, why));
            }
            None => return Err(Error::corrupt(&name, 0, "segment header missing")),
        }
        if let (Some(prev), Some(prev_len)) = (segs.last(), lens.last()) {
            let prev: &Segment = prev;
            if prev.base.checked_add(*prev_len) != Some(base) {
                return Err(Error::corrupt(
                    &name,
                    0,
                    format!(
                        "segment starts at {base} but {} ends at {} (a segment is missing or truncated)",
                        prev.name,
                        prev.base.saturating_add(*prev_len)
                    ),
                ));
            }
        }
        lens.push(len.max(SEGMENT_HEADER_LEN));
        segs.push(Segment { base, name, file });
    }

    let snapshot = StreamIndex::load_snapshot(&*storage);
    // An intact snapshot was written after everything below its covered end was synced, so
    // those bytes are durable whether or not the snapshot still describes this log.
    let durable = snapshot.as_ref().map_or(0, |s| s.covered_end);
    let mut snapshot_end = u64::MAX;
    let mut torn = None;
    let (end, scan) = match snapshot {
        Some(snap) => {
            let mut state = IndexState {
                streams: snap.index,
                ..IndexState::default()
            };
            state.tombstones.extend(snap.tombstones);
            let expected_events = state.streams.events();
            let scan = Scan::new(state, snap.covered_end, durable);
            let (end, mut scan) = scan_all(&segs, &lens, scan)?;
            torn = scan.torn.take();
            if (scan.covered_seen || scan.covered == end)
                && scan.covered_events == expected_events
                && scan.covered_fp == snap.fingerprint
            {
                snapshot_end = scan.covered;
                (end, scan)
            } else {
                // The snapshot does not describe this log: rebuild the index from the log
                // alone. The first scan may have cut a torn tail, so the last length is re-read.
                if let (Some(seg), Some(len)) = (segs.last(), lens.last_mut()) {
                    *len = seg
                        .file
                        .len()
                        .map_err(io(format!("reading the length of {}", seg.name)))?
                        .max(SEGMENT_HEADER_LEN);
                }
                scan_all(&segs, &lens, Scan::new(IndexState::default(), 0, durable))?
            }
        }
        None => scan_all(&segs, &lens, Scan::new(IndexState::default(), 0, durable))?,
    };
    if end < durable {
        let (file, offset) = segs.last().map_or(("segments".to_string(), 0), |s| {
            (s.name.clone(), end - s.base)
        });
        return Err(Error::DurableDamaged {
            file,
            offset,
            found: format!("the log ends at position {end}"),
            expected: format!("records up to position {durable}"),
            durable_end: durable,
            proof: scan.proof,
        });
    }
    let recovery = RecoveryReport {
        durable_end: durable,
        end,
        snapshot_used: snapshot_end != u64::MAX,
        torn_tail: torn.or(scan.torn),
    };

    crate::segments::release_chunks();
    let active = segs
        .last()
        .cloned()
        .ok_or_else(|| Error::corrupt("segments", 0, "no segment"))?;
    let seg_end = end - active.base;
    let indexed = scan.indexed;
    let total_fp = scan.total_fp;
    let shared = Arc::new(Shared {
        storage,
        config,
        clock,
        segments: Segments::new(segs),
        index: RwLock::new(scan.state),
        head: AtomicU64::new(end),
        queue: Mutex::new(Queue::default()),
        queue_cv: Condvar::new(),
        poisoned: Mutex::new(None),
        is_poisoned: Default::default(),
        health_watchers: Default::default(),
        in_flight: Default::default(),
        stats: Default::default(),
        snapshot_end: AtomicU64::new(snapshot_end),
        fingerprint: AtomicU64::new(total_fp),
        live: Live::default(),
        recovery,
        _lock: lock,
    });
    if indexed > shared.config.snapshot_after_events {
        // The snapshot proves everything below `end` durable: make it so first (the records
        // read back may still be only in the page cache after a process crash).
        active
            .file
            .sync()
            .map_err(io(format!("syncing {}", active.name)))?;
        shared.write_snapshot(end)?;
    }
    let writer = Writer::new(shared.clone(), active, seg_end);
    let handle = std::thread::Builder::new()
        .name("eventlog-writer".into())
        .spawn(move || writer.run())
        .map_err(io("starting the writer thread".into()))?;
    Ok(EventLog {
        shared,
        writer: Mutex::new(Some(handle)),
    })
}

/// What checking a sealed segment that the snapshot covers yields.
#[derive(Default)]
struct Verified {
    events: u64,
    fingerprint: u64,
    /// Records the snapshot does not describe (metadata events and tombstones), in order.
    side: Vec<Record>,
}

fn verify_segment(seg: &Segment, len: u64) -> Result<Verified> {
    let mut v = Verified::default();
    let mut fs = ForwardScan::new(seg.clone(), seg.base + SEGMENT_HEADER_LEN, seg.base + len);
    while let Some(rec) = fs.next_record()? {
        v.fingerprint = v
            .fingerprint
            .wrapping_add(format::fingerprint(rec.crc, rec.event.position.0));
        match rec.kind {
            RecordKind::Tombstone => v.side.push(rec),
            RecordKind::Event => {
                v.events += 1;
                if metadata::target_of(rec.event.stream()).is_some() {
                    v.side.push(rec);
                }
            }
        }
    }
    Ok(v)
}

/// Scans every segment; returns the end of the valid log and the index state.
///
/// Sealed segments wholly covered by the snapshot only need checking, which two threads share;
/// the rest is indexed in order.
fn scan_all(segs: &[Segment], lens: &[u64], mut scan: Scan) -> Result<(u64, Scan)> {
    let last = segs.len().saturating_sub(1);
    let covered = scan.covered;
    let verify_only = segs
        .iter()
        .zip(lens)
        .take(last)
        .take_while(|(seg, len)| seg.base + **len <= covered)
        .count();
    let (to_verify, rest) = segs.split_at(verify_only);
    let (lens_verify, lens_rest) = lens.split_at(verify_only);
    let results: Vec<Result<Verified>> = std::thread::scope(|s| {
        let helper = s.spawn(|| {
            to_verify
                .iter()
                .zip(lens_verify)
                .skip(1)
                .step_by(2)
                .map(|(seg, len)| verify_segment(seg, *len))
                .collect::<Vec<_>>()
        });
        let mine: Vec<_> = to_verify
            .iter()
            .zip(lens_verify)
            .step_by(2)
            .map(|(seg, len)| verify_segment(seg, *len))
            .collect();
        let theirs = helper.join().unwrap_or_else(|_| {
            vec![Err(Error::corrupt(
                "segments",
                0,
                "verification thread failed",
            ))]
        });
        let mut merged = Vec::with_capacity(mine.len() + theirs.len());
        let mut a = mine.into_iter();
        let mut b = theirs.into_iter();
        loop {
            match (a.next(), b.next()) {
                (None, None) => break,
                (x, y) => merged.extend(x.into_iter().chain(y)),
            }
        }
        merged
    });
    for v in results {
        let v = v?;
        scan.covered_events += v.events;
        scan.covered_fp = scan.covered_fp.wrapping_add(v.fingerprint);
        scan.total_fp = scan.total_fp.wrapping_add(v.fingerprint);
        for rec in &v.side {
            // Event counts were taken above; only the side effects are applied here.
            apply_side(&mut scan.state, rec);
        }
    }
    let mut end = to_verify
        .last()
        .zip(lens_verify.last())
        .map_or(0, |(seg, len)| seg.base + len);
    let first_rest = verify_only;
    for (j, (seg, len)) in rest.iter().zip(lens_rest).enumerate() {
        let seg_end = seg.base + len;
        if first_rest + j < last {
            let mut fs = ForwardScan::new(seg.clone(), seg.base + SEGMENT_HEADER_LEN, seg_end);
            while let Some(rec) = fs.next_record()? {
                scan.record(&rec);
            }
            end = seg_end;
        } else {
            end = scan_last(seg, seg_end, &mut scan)?;
        }
    }
    Ok((end, scan))
}

/// Scans the last segment, cutting a torn tail back to the last complete batch.
fn scan_last(seg: &Segment, seg_end: u64, scan: &mut Scan) -> Result<u64> {
    let first = seg.base + SEGMENT_HEADER_LEN;
    let mut fs = ForwardScan::new(seg.clone(), first, seg_end);
    let mut pending: Vec<Record> = Vec::new();
    let mut boundary = first;
    let damage = loop {
        match fs.next_record() {
            Ok(Some(rec)) => {
                let complete = rec.batch_index.saturating_add(1) >= rec.batch_count;
                let consistent = u32::try_from(pending.len()).ok() == Some(rec.batch_index);
                if !consistent {
                    break Some((
                        fs.position() - rec.frame_len(),
                        "batch records out of order".to_string(),
                    ));
                }
                pending.push(rec);
                if complete {
                    for r in pending.drain(..) {
                        scan.record(&r);
                    }
                    boundary = fs.position();
                }
            }
            Ok(None) => break None,
            Err(Error::Corrupt { reason, .. }) => break Some((fs.position(), reason)),
            Err(e) => return Err(e),
        }
    };
    let (damage_at, why) = match damage {
        None if pending.is_empty() => return Ok(seg_end),
        None => (fs.position(), "the last batch is incomplete".to_string()),
        Some(d) => d,
    };
    if let Some(later) = later_group_record(seg, damage_at, seg_end)? {
        return Err(Error::corrupt(
            &seg.name,
            damage_at - seg.base,
            format!(
                "{why}, and a record at offset {} was written after this one was durable",
                later - seg.base
            ),
        ));
    }
    if boundary < scan.durable {
        return Err(Error::DurableDamaged {
            file: seg.name.clone(),
            offset: damage_at - seg.base,
            found: why,
            expected: format!(
                "valid, whole batches up to position {} (offset {})",
                scan.durable,
                scan.durable.saturating_sub(seg.base)
            ),
            durable_end: scan.durable,
            proof: scan.proof.clone(),
        });
    }
    // A torn tail: cut it off for good.
    seg.file
        .set_len(boundary - seg.base)
        .and_then(|()| seg.file.sync())
        .map_err(io(format!("cutting the torn tail of {}", seg.name)))?;
    scan.torn = Some(TornTail {
        file: seg.name.clone(),
        offset: boundary - seg.base,
        bytes: seg_end - boundary,
        damage_offset: damage_at - seg.base,
        reason: why,
    });
    Ok(boundary)
}

/// Looks for a valid record after `from` whose commit group starts after `from`. Such a record
/// can only exist if the damage at `from` happened after a later group was synced.
fn later_group_record(seg: &Segment, from: u64, seg_end: u64) -> Result<Option<u64>> {
    find_record_after(seg, from, seg_end, |rec| rec.synced_below > from)
}

/// The position of the first valid record after `from` (below `seg_end`) that `wanted`
/// accepts: a byte-by-byte search for a frame whose stored position is where it lies.
pub(crate) fn find_record_after(
    seg: &Segment,
    from: u64,
    seg_end: u64,
    wanted: impl Fn(&Record) -> bool,
) -> Result<Option<u64>> {
    const WINDOW: usize = 16 << 20;
    let mut start = from + 1;
    while start + (FRAME_OVERHEAD + format::PAYLOAD_HEADER_LEN) as u64 <= seg_end {
        let size = usize::try_from((seg_end - start).min(WINDOW as u64)).unwrap_or(WINDOW);
        let mut buf = vec![0u8; size];
        seg.file
            .read_at(&mut buf, start - seg.base)
            .map_err(io(format!("reading {}", seg.name)))?;
        let buf = Bytes::from(buf);
        let limit = size.saturating_sub(16);
        for o in 0..limit {
            let pos = start + o as u64;
            if format::u64_at(&buf, o + 8) != pos {
                continue;
            }
            let Ok(len) = format::peek_len(buf.get(o..).unwrap_or_default()) else {
                continue;
            };
            let total = len + FRAME_OVERHEAD;
            if pos + total as u64 > seg_end {
                continue;
            }
            let frame = if o + total <= buf.len() {
                buf.slice(o..o + total)
            } else {
                let mut full = vec![0u8; total];
                seg.file
                    .read_at(&mut full, pos - seg.base)
                    .map_err(io(format!("reading {}", seg.name)))?;
                Bytes::from(full)
            };
            if let Ok(rec) = format::decode(&frame, pos)
                && wanted(&rec)
            {
                return Ok(Some(pos));
            }
        }
        if size < WINDOW {
            break;
        }
        start += limit as u64;
    }
    Ok(None)
}
