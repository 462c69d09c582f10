//! The set of segment files and reading records out of them by position.

use std::sync::{Arc, Mutex, RwLock};

use bytes::{Bytes, BytesMut};

use crate::error::{Error, Result};
use crate::format::{self, FRAME_OVERHEAD, FrameProblem, Record, SEGMENT_HEADER_LEN};
use crate::storage::StorageFile;

/// One segment file: positions `[base + 32, base + len)` live in it.
#[derive(Clone, Debug)]
pub struct Segment {
    pub base: u64,
    pub name: String,
    pub file: Arc<dyn StorageFile>,
}

/// File name of the segment starting at `base`.
pub fn segment_name(base: u64) -> String {
    format!("segment-{base:020}.log")
}

/// The base of a segment file name, if `name` is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("segment-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// All segments, oldest first. Readers clone what they need and release the lock at once.
#[derive(Debug, Default)]
pub struct Segments {
    list: RwLock<Vec<Segment>>,
}

/// Size of the chunks a sequential scan reads.
const SCAN_CHUNK: usize = 1 << 20;
/// Bytes read speculatively when fetching one record.
const RECORD_PROBE: usize = 1024;

impl Segments {
    pub fn new(list: Vec<Segment>) -> Self {
        Segments {
            list: RwLock::new(list),
        }
    }

    pub fn push(&self, seg: Segment) {
        self.list
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(seg);
    }

    /// The segment holding `pos` (the last one whose base is at or below it).
    pub fn find(&self, pos: u64) -> Option<(Segment, Option<Segment>)> {
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        let i = list.partition_point(|s| s.base <= pos).checked_sub(1)?;
        Some((list.get(i)?.clone(), list.get(i + 1).cloned()))
    }

    /// The segment before the one starting at `base`.
    pub fn before(&self, base: u64) -> Option<Segment> {
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        let i = list.partition_point(|s| s.base < base).checked_sub(1)?;
        list.get(i).cloned()
    }

    /// The newest segment.
    pub fn last(&self) -> Option<Segment> {
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        list.last().cloned()
    }

    /// The bases of every segment, oldest first.
    pub fn bases(&self) -> Vec<u64> {
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        list.iter().map(|s| s.base).collect()
    }

    /// Forgets the newest segment if it starts above `end` (it holds nothing below the
    /// committed end, so no reader looks at it). Returns it.
    pub fn pop_above(&self, end: u64) -> Option<Segment> {
        let mut list = self.list.write().unwrap_or_else(|e| e.into_inner());
        if list.last().is_some_and(|s| s.base > end) {
            list.pop()
        } else {
            None
        }
    }

    pub fn first_base(&self) -> u64 {
        let list = self.list.read().unwrap_or_else(|e| e.into_inner());
        list.first().map_or(0, |s| s.base)
    }
}

fn corrupt(seg: &Segment, offset: u64, p: FrameProblem) -> Error {
    let reason = match p {
        FrameProblem::Truncated => "record cut short",
        FrameProblem::Invalid(r) => r,
    };
    Error::corrupt(&seg.name, offset, reason)
}

fn read_io(seg: &Segment, offset: u64, e: std::io::Error) -> Error {
    Error::io(format!("reading {} at offset {offset}", seg.name), e)
}

/// Reads the whole record at `pos` of `seg`, which must lie below the committed end.
pub fn read_record(seg: &Segment, pos: u64) -> Result<Record> {
    let offset = pos - seg.base;
    let mut head = [0u8; 4];
    seg.file
        .read_at(&mut head, offset)
        .map_err(|e| read_io(seg, offset, e))?;
    let len = format::peek_len(&head).map_err(|p| corrupt(seg, offset, p))?;
    let mut buf = BytesMut::zeroed(len + FRAME_OVERHEAD);
    seg.file
        .read_at(&mut buf, offset)
        .map_err(|e| read_io(seg, offset, e))?;
    format::decode(&buf.freeze(), pos).map_err(|p| corrupt(seg, offset, p))
}

/// Reads the record at `pos` if a valid-looking one starts exactly there, reading at most
/// `max_frame` bytes. The caller must still check the record against the index: event data can
/// contain bytes that look like a frame.
pub fn try_record_at(seg: &Segment, pos: u64, end: u64, max_frame: usize) -> Option<Record> {
    let offset = pos.checked_sub(seg.base)?;
    let avail = usize::try_from(end.checked_sub(pos)?).ok()?.min(max_frame);
    let mut probe = BytesMut::zeroed(RECORD_PROBE.min(avail));
    seg.file.read_at(&mut probe, offset).ok()?;
    let len = format::peek_len(&probe).ok()?;
    let total = len + FRAME_OVERHEAD;
    if total > avail {
        return None;
    }
    let buf = if total <= probe.len() {
        probe.freeze()
    } else {
        let mut full = BytesMut::zeroed(total);
        seg.file.read_at(&mut full, offset).ok()?;
        full.freeze()
    };
    format::decode(&buf, pos).ok()
}

/// Read buffers kept for reuse: a replay reads gigabytes in 1 MiB chunks, and fresh chunks
/// would each be faulted in and zeroed by the kernel. A buffer is reused once every event
/// sliced from it has been dropped.
static CHUNK_POOL: Mutex<Vec<BytesMut>> = Mutex::new(Vec::new());
/// Buffers kept in the pool (each 1 MiB).
const CHUNK_POOL_SIZE: usize = 8;

/// Reads shorter than this get a buffer of their own exact size, not a pooled 1 MiB one: the
/// records of a short read (the writer publishing one commit to the live subscribers, a reader
/// at the head of the log) may be held for a while in a subscriber's buffer, and each would pin
/// a whole chunk while the byte budgets count only the record.
const SHORT_READ: usize = SCAN_CHUNK / 8;

/// A buffer for `size` bytes, and whether it should go back to the pool after use.
fn take_chunk(size: usize) -> (BytesMut, bool) {
    if size < SHORT_READ {
        return (BytesMut::zeroed(size), false);
    }
    if size <= SCAN_CHUNK {
        let mut pool = CHUNK_POOL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = pool.iter_mut().position(|b| b.try_reclaim(SCAN_CHUNK)) {
            let mut b = pool.swap_remove(i);
            b.resize(size, 0);
            return (b, true);
        }
    }
    let mut b = BytesMut::with_capacity(size.max(SCAN_CHUNK));
    b.resize(size, 0);
    (b, size <= SCAN_CHUNK)
}

fn return_chunk(handle: BytesMut) {
    let mut pool = CHUNK_POOL.lock().unwrap_or_else(|e| e.into_inner());
    if pool.len() < CHUNK_POOL_SIZE {
        pool.push(handle);
    }
}

/// Empties the buffer pool (after recovery, so that an idle log holds no read buffers).
pub fn release_chunks() {
    CHUNK_POOL.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// A forward scan over records, reading the segment in large chunks.
#[derive(Debug)]
pub struct ForwardScan {
    seg: Segment,
    /// Position of the first byte of `chunk`.
    chunk_pos: u64,
    chunk: Bytes,
    /// Next record position.
    pos: u64,
    /// Scan stops at this position (exclusive) within the segment.
    end: u64,
}

impl ForwardScan {
    /// Scans `seg` from `pos` (a record boundary) to `end`.
    pub fn new(seg: Segment, pos: u64, end: u64) -> Self {
        ForwardScan {
            seg,
            chunk_pos: pos,
            chunk: Bytes::new(),
            pos,
            end,
        }
    }

    /// The position of the next record.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn fill(&mut self, need: usize) -> Result<()> {
        let remaining = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX);
        let size = need.max(SCAN_CHUNK).min(remaining);
        let offset = self.pos - self.seg.base;
        let (mut buf, pooled) = take_chunk(size);
        self.seg
            .file
            .read_at(&mut buf, offset)
            .map_err(|e| read_io(&self.seg, offset, e))?;
        self.chunk = buf.split().freeze();
        if pooled {
            return_chunk(buf);
        }
        self.chunk_pos = self.pos;
        Ok(())
    }

    /// The next record, or `None` at the end. A record that does not decode is an error naming
    /// the file and offset.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let mut at = usize::try_from(self.pos - self.chunk_pos).unwrap_or(usize::MAX);
        if at + 4 > self.chunk.len() {
            self.fill(4)?;
            at = 0;
        }
        let len = format::peek_len(self.chunk.get(at..).unwrap_or_default())
            .map_err(|p| corrupt(&self.seg, self.pos - self.seg.base, p))?;
        let total = len + FRAME_OVERHEAD;
        if self.pos + total as u64 > self.end {
            return Err(corrupt(
                &self.seg,
                self.pos - self.seg.base,
                FrameProblem::Truncated,
            ));
        }
        if at + total > self.chunk.len() {
            self.fill(total)?;
            at = 0;
        }
        let frame = self.chunk.slice(at..at + total);
        let rec = format::decode(&frame, self.pos)
            .map_err(|p| corrupt(&self.seg, self.pos - self.seg.base, p))?;
        self.pos += total as u64;
        Ok(Some(rec))
    }
}

/// First record position of a segment.
pub fn first_record(seg: &Segment) -> u64 {
    seg.base + SEGMENT_HEADER_LEN
}

/// Reads the record that ends exactly at `end` (a record boundary) in `seg`.
pub fn read_record_before(seg: &Segment, end: u64) -> Result<Record> {
    let offset = end - seg.base;
    let mut tail = [0u8; 4];
    seg.file
        .read_at(&mut tail, offset - 4)
        .map_err(|e| read_io(seg, offset - 4, e))?;
    let len = u64::from(u32::from_le_bytes(tail));
    let start = end
        .checked_sub(len + FRAME_OVERHEAD as u64)
        .filter(|s| *s >= first_record(seg))
        .ok_or_else(|| {
            Error::corrupt(
                &seg.name,
                offset - 4,
                "trailing length points outside the segment",
            )
        })?;
    read_record(seg, start)
}
