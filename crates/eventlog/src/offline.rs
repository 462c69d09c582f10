//! Offline operator tools on a closed log: [`verify`] reports every damaged record, and
//! [`truncate_at`] cuts the log at a position, moving the cut bytes aside (never deleting them).
//!
//! Both hold the directory lock, so they refuse a log that a running process has open.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::{self, HeaderProblem, SEGMENT_HEADER_LEN};
use crate::index::{SNAPSHOT_FILE, snapshot_covered_end};
use crate::recovery::find_record_after;
use crate::segments::{ForwardScan, Segment, parse_segment_name};
use crate::storage::{FileStorage, Storage};

/// One damaged stretch of a segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Damage {
    /// Segment file.
    pub file: String,
    /// Offset of the first damaged byte in the file.
    pub offset: u64,
    /// Bytes up to the next valid record (or the end of the file).
    pub len: u64,
    /// Log position of the first damaged byte.
    pub position: u64,
    /// What is wrong.
    pub what: String,
    /// Whether it lies below the proven-durable end (an open refuses it) rather than in a tail
    /// that an open would cut as torn.
    pub durable: bool,
}

/// What [`verify`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Segment files checked.
    pub segments: usize,
    /// Valid records.
    pub records: u64,
    /// End of the log (one past the last byte of the last segment).
    pub end: u64,
    /// Proven-durable end (the intact index snapshot's covered end), if there is one.
    pub durable_end: Option<u64>,
    /// Every damaged stretch, in log order.
    pub damage: Vec<Damage>,
}

impl VerifyReport {
    /// Damaged bytes in all.
    pub fn damaged_bytes(&self) -> u64 {
        self.damage.iter().map(|d| d.len).sum()
    }
}

/// What [`truncate_at`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Truncated {
    /// The file now holding the cut bytes: byte `k` of it was at log position `position + k`.
    pub moved_to: PathBuf,
    /// Bytes moved aside.
    pub bytes: u64,
    /// Later segment files that were moved aside whole (their bytes are in `moved_to`).
    pub segments_removed: Vec<String>,
}

fn io(op: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(op, e)
}

/// Segments sorted by base, with their lengths.
fn segments(storage: &dyn Storage) -> Result<Vec<(Segment, u64)>> {
    let mut bases: Vec<(u64, String)> = storage
        .list()
        .map_err(io("listing the data directory".into()))?
        .into_iter()
        .filter_map(|n| parse_segment_name(&n).map(|b| (b, n)))
        .collect();
    bases.sort();
    let mut out = Vec::with_capacity(bases.len());
    for (base, name) in bases {
        let file = storage
            .open(&name, false)
            .map_err(io(format!("opening {name}")))?;
        let len = file
            .len()
            .map_err(io(format!("reading the length of {name}")))?;
        out.push((Segment { base, name, file }, len));
    }
    Ok(out)
}

fn header_problem(seg: &Segment, len: u64) -> Option<String> {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    if len < SEGMENT_HEADER_LEN || seg.file.read_at(&mut h, 0).is_err() {
        return Some("segment header missing".into());
    }
    match format::parse_segment_header(&h) {
        Ok(b) if b == seg.base => None,
        Ok(b) => Some(format!(
            "header names base {b}, file name says {}",
            seg.base
        )),
        Err(HeaderProblem::Version(v)) => Some(format!("unsupported format version {v}")),
        Err(HeaderProblem::Corrupt(why)) => Some(why.to_string()),
    }
}

/// Checks every record of the log in `dir` (which must not be open elsewhere) and reports
/// every damaged stretch: after damage, the scan resumes at the next valid record.
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    let dir = dir.as_ref();
    let _lock = crate::log::lock_dir(dir)?;
    let storage = FileStorage::new(dir).map_err(io(format!("opening {}", dir.display())))?;
    verify_storage(&storage)
}

/// [`verify`] over any storage.
pub fn verify_storage(storage: &dyn Storage) -> Result<VerifyReport> {
    let durable_end = snapshot_covered_end(storage);
    let durable = durable_end.unwrap_or(0);
    let segs = segments(storage)?;
    let mut report = VerifyReport {
        segments: segs.len(),
        durable_end,
        ..VerifyReport::default()
    };
    let mut expected_base = segs.first().map_or(0, |(s, _)| s.base);
    for (seg, len) in &segs {
        let damage = |offset: u64, len: u64, what: String| Damage {
            file: seg.name.clone(),
            offset,
            len,
            position: seg.base + offset,
            what,
            durable: seg.base + offset < durable,
        };
        if seg.base != expected_base {
            report.damage.push(damage(
                0,
                0,
                format!(
                    "segment starts at {} but the previous one ends at {expected_base} (a segment is missing or truncated)",
                    seg.base
                ),
            ));
        }
        expected_base = seg.base + len;
        if let Some(why) = header_problem(seg, *len) {
            report.damage.push(damage(0, *len, why));
            continue;
        }
        let seg_end = seg.base + len;
        let mut fs = ForwardScan::new(seg.clone(), seg.base + SEGMENT_HEADER_LEN, seg_end);
        loop {
            match fs.next_record() {
                Ok(Some(_)) => report.records += 1,
                Ok(None) => break,
                Err(Error::Corrupt { reason, .. }) => {
                    let at = fs.position();
                    let next = find_record_after(seg, at, seg_end, |_| true)?;
                    let until = next.unwrap_or(seg_end);
                    report
                        .damage
                        .push(damage(at - seg.base, until - at, reason));
                    match next {
                        Some(p) => fs = ForwardScan::new(seg.clone(), p, seg_end),
                        None => break,
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    report.end = expected_base;
    if durable > report.end {
        let (file, offset) = segs
            .last()
            .map_or(("segments".to_string(), 0), |(s, l)| (s.name.clone(), *l));
        report.damage.push(Damage {
            file,
            offset,
            len: durable - report.end,
            position: report.end,
            what: format!(
                "the log ends at position {}, but {SNAPSHOT_FILE} proves it durable up to {durable}",
                report.end
            ),
            durable: true,
        });
    }
    Ok(report)
}

/// Cuts the log in `dir` (which must not be open elsewhere) at `position`: every byte from
/// there to the end of the log is first copied into `truncated-<position>-<unix seconds>.bin`
/// in `dir` and synced, then the segment is cut and later segments are removed. `position`
/// must end a whole batch whose records, from the start of its segment, are all valid. An
/// index snapshot covering the cut is removed (it is rebuilt at the next open).
pub fn truncate_at(dir: impl AsRef<Path>, position: u64) -> Result<Truncated> {
    let dir = dir.as_ref();
    let _lock = crate::log::lock_dir(dir)?;
    let storage = FileStorage::new(dir).map_err(io(format!("opening {}", dir.display())))?;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut done = truncate_storage(&storage, position, secs)?;
    done.moved_to = dir.join(done.moved_to);
    Ok(done)
}

/// [`truncate_at`] over any storage, naming the file after `unix_secs`; `moved_to` is then the
/// bare file name.
pub fn truncate_storage(storage: &dyn Storage, position: u64, unix_secs: u64) -> Result<Truncated> {
    let segs = segments(storage)?;
    let end = segs.last().map_or(0, |(s, l)| s.base + l);
    let bad = |why: String| Err(Error::InvalidArgument(why));
    let Some(i) = segs
        .iter()
        .position(|(s, l)| s.base + SEGMENT_HEADER_LEN <= position && position <= s.base + l)
    else {
        return bad(format!(
            "position {position} is not inside a segment's records (the log ends at {end})"
        ));
    };
    if position >= end {
        return bad(format!("nothing to cut: the log ends at position {end}"));
    }
    let Some((seg, seg_len)) = segs.get(i) else {
        return bad(format!("position {position} is not inside the log"));
    };
    check_cut_point(seg, position)?;

    let name = format!("truncated-{position:020}-{unix_secs}.bin");
    let out = storage
        .open(&name, true)
        .map_err(io(format!("creating {name}")))?;
    if out.len().map_err(io(format!("reading {name}")))? != 0 {
        return bad(format!("{name} exists already; try again in a second"));
    }
    let mut written = 0u64;
    let mut copy = |seg: &Segment, from: u64, to: u64| -> Result<()> {
        let mut at = from;
        while at < to {
            let n = usize::try_from((to - at).min(1 << 20)).unwrap_or(1 << 20);
            let mut buf = vec![0u8; n];
            seg.file
                .read_at(&mut buf, at)
                .map_err(io(format!("reading {}", seg.name)))?;
            out.write_at(&buf, written)
                .map_err(io(format!("writing {name}")))?;
            written += n as u64;
            at += n as u64;
        }
        Ok(())
    };
    copy(seg, position - seg.base, *seg_len)?;
    for (later, len) in segs.iter().skip(i + 1) {
        copy(later, 0, *len)?;
    }
    out.sync()
        .and_then(|()| storage.sync_dir())
        .map_err(io(format!("syncing {name}")))?;

    seg.file
        .set_len(position - seg.base)
        .and_then(|()| seg.file.sync())
        .map_err(io(format!("cutting {}", seg.name)))?;
    let mut removed = Vec::new();
    for (later, _) in segs.iter().skip(i + 1).rev() {
        storage
            .remove(&later.name)
            .map_err(io(format!("removing {}", later.name)))?;
        removed.push(later.name.clone());
    }
    removed.reverse();
    if snapshot_covered_end(storage).is_some_and(|c| c > position) {
        storage
            .remove(SNAPSHOT_FILE)
            .map_err(io(format!("removing {SNAPSHOT_FILE}")))?;
    }
    storage
        .sync_dir()
        .map_err(io("syncing the data directory".into()))?;
    Ok(Truncated {
        moved_to: PathBuf::from(name),
        bytes: written,
        segments_removed: removed,
    })
}

/// Checks that `position` ends a whole batch of valid records in `seg`.
fn check_cut_point(seg: &Segment, position: u64) -> Result<()> {
    let first = seg.base + SEGMENT_HEADER_LEN;
    let mut fs = ForwardScan::new(seg.clone(), first, position);
    let mut batch_start = first;
    let mut complete = true;
    loop {
        let at = fs.position();
        match fs.next_record() {
            Ok(Some(rec)) => {
                if rec.batch_index == 0 {
                    batch_start = at;
                }
                complete = rec.batch_index.saturating_add(1) >= rec.batch_count;
            }
            Ok(None) => break,
            Err(Error::Corrupt { reason, .. }) => {
                let hint = if complete { at } else { batch_start };
                return Err(Error::InvalidArgument(format!(
                    "position {position} is not the end of a valid record: at position {at} \
                     ({}, offset {}): {reason}; cut at {hint} (the end of the last whole batch before it) or earlier",
                    seg.name,
                    at - seg.base
                )));
            }
            Err(e) => return Err(e),
        }
    }
    if !complete {
        return Err(Error::InvalidArgument(format!(
            "position {position} splits a batch; cut where it starts, at {batch_start}"
        )));
    }
    Ok(())
}
