//! The stream index: for every stream, the position of each revision; and its snapshot file.
//!
//! Memory is the constraint (the target is under 32 bytes per event), so names live in one
//! arena, the positions loaded from a snapshot live in one flat array with each stream's
//! positions contiguous, and only positions appended since the last load sit in per-stream
//! vectors. Revisions are gapless, so revision `r` of a stream is entry `r` of its positions.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::error::{Error, Result};
use crate::format::{u16_at, u32_at, u64_at};
use crate::storage::Storage;

/// Name of the index snapshot file.
pub const SNAPSHOT_FILE: &str = "index.snap";
const SNAPSHOT_TMP: &str = "index.snap.tmp";
const SNAPSHOT_MAGIC: [u8; 8] = *b"DJINDEX\0";
const SNAPSHOT_VERSION: u32 = 1;

#[derive(Debug)]
struct StreamEntry {
    /// Offset of the name in the arena (upper 48 bits) and its length (lower 16 bits).
    name: u64,
    frozen_off: u64,
    frozen_len: u32,
    tail: Vec<u64>,
}

/// Every stream's positions.
#[derive(Debug, Default)]
pub struct StreamIndex {
    table: HashTable<StreamEntry>,
    hasher: DefaultHashBuilder,
    names: Vec<u8>,
    frozen: Vec<u64>,
    events: u64,
}

/// A handle to one stream's positions, valid while the index is borrowed.
#[derive(Clone, Copy, Debug)]
pub struct StreamPositions<'a> {
    frozen: &'a [u64],
    tail: &'a [u64],
}

impl<'a> StreamPositions<'a> {
    /// Number of events (every revision, visible or not).
    pub fn len(&self) -> u64 {
        (self.frozen.len() + self.tail.len()) as u64
    }

    /// Position of revision `r`.
    pub fn get(&self, r: u64) -> Option<u64> {
        let r = usize::try_from(r).ok()?;
        match r.checked_sub(self.frozen.len()) {
            None => self.frozen.get(r).copied(),
            Some(t) => self.tail.get(t).copied(),
        }
    }

    /// Number of revisions whose position is below `head` (the committed prefix).
    pub fn len_below(&self, head: u64) -> u64 {
        let below = |s: &[u64]| s.partition_point(|&p| p < head);
        match self.tail.first() {
            Some(&first) if first < head => (self.frozen.len() + below(self.tail)) as u64,
            _ => below(self.frozen) as u64,
        }
    }
}

impl StreamIndex {
    /// An empty index.
    #[cfg(test)]
    pub fn new() -> Self {
        Self::default()
    }

    fn hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    fn name_of(names: &[u8], packed: u64) -> &[u8] {
        let off = (packed >> 16) as usize;
        let len = (packed & 0xffff) as usize;
        names.get(off..off + len).unwrap_or_default()
    }

    /// The positions of a stream, if it has any.
    pub fn get(&self, name: &str) -> Option<StreamPositions<'_>> {
        let h = self.hash(name);
        let names = &self.names;
        let e = self
            .table
            .find(h, |e| Self::name_of(names, e.name) == name.as_bytes())?;
        let start = usize::try_from(e.frozen_off).unwrap_or(usize::MAX);
        let frozen = self
            .frozen
            .get(start..start.saturating_add(e.frozen_len as usize))
            .unwrap_or_default();
        Some(StreamPositions {
            frozen,
            tail: &e.tail,
        })
    }

    /// Number of events (revisions) of a stream, including uncommitted ones.
    pub fn stream_len(&self, name: &str) -> u64 {
        self.get(name).map_or(0, |p| p.len())
    }

    /// Records the next revision of `name` at `position`.
    pub fn push(&mut self, name: &str, position: u64) {
        let h = self.hash(name);
        let names = &self.names;
        let hasher = &self.hasher;
        let found = self
            .table
            .find_mut(h, |e| Self::name_of(names, e.name) == name.as_bytes());
        match found {
            Some(e) => e.tail.push(position),
            None => {
                let off = self.names.len() as u64;
                self.names.extend_from_slice(name.as_bytes());
                let names = &self.names;
                self.table.insert_unique(
                    h,
                    StreamEntry {
                        name: (off << 16) | name.len() as u64,
                        frozen_off: 0,
                        frozen_len: 0,
                        tail: vec![position],
                    },
                    |e| {
                        hasher.hash_one(
                            std::str::from_utf8(Self::name_of(names, e.name)).unwrap_or_default(),
                        )
                    },
                );
            }
        }
        self.events += 1;
    }

    /// Forgets every position at or above `end` (written but never made durable), and the
    /// streams left without any.
    pub fn roll_back(&mut self, end: u64) {
        let mut removed = 0u64;
        for e in self.table.iter_mut() {
            let keep = e.tail.partition_point(|&p| p < end);
            removed += (e.tail.len() - keep) as u64;
            e.tail.truncate(keep);
        }
        self.table
            .retain(|e| e.frozen_len > 0 || !e.tail.is_empty());
        self.events -= removed;
    }

    /// Number of indexed events.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Writes the committed part of the index (positions below `covered_end`) as a snapshot,
    /// atomically replacing the previous one.
    pub fn write_snapshot(
        &self,
        storage: &dyn Storage,
        covered_end: u64,
        fingerprint: u64,
        tombstones: &[(String, u64)],
    ) -> Result<()> {
        let mut out = Vec::with_capacity(
            64 + self.names.len() + self.table.len() * 16 + self.events as usize * 8,
        );
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&covered_end.to_le_bytes());
        out.extend_from_slice(&fingerprint.to_le_bytes());
        let count_at = out.len();
        out.extend_from_slice(&[0; 24]);
        let mut names = Vec::with_capacity(self.names.len());
        let mut streams = 0u64;
        let mut positions = Vec::with_capacity(self.events as usize * 8);
        let mut position_count = 0u64;
        let mut dirs = Vec::with_capacity(self.table.len() * 12);
        for e in &self.table {
            let p = StreamPositions {
                frozen: self
                    .frozen
                    .get(e.frozen_off as usize..e.frozen_off as usize + e.frozen_len as usize)
                    .unwrap_or_default(),
                tail: &e.tail,
            };
            let n = p.len_below(covered_end);
            if n == 0 {
                continue;
            }
            let name = Self::name_of(&self.names, e.name);
            dirs.extend_from_slice(&(name.len() as u16).to_le_bytes());
            dirs.extend_from_slice(&(n as u32).to_le_bytes());
            names.extend_from_slice(name);
            for r in 0..n {
                positions.extend_from_slice(&p.get(r).unwrap_or(0).to_le_bytes());
            }
            streams += 1;
            position_count += n;
        }
        let counts = [streams, position_count, names.len() as u64];
        for (i, v) in counts.iter().enumerate() {
            if let Some(s) = out.get_mut(count_at + i * 8..count_at + i * 8 + 8) {
                s.copy_from_slice(&v.to_le_bytes());
            }
        }
        out.extend_from_slice(&names);
        out.extend_from_slice(&dirs);
        out.extend_from_slice(&positions);
        let live: Vec<_> = tombstones
            .iter()
            .filter(|(_, p)| *p < covered_end)
            .collect();
        out.extend_from_slice(&(live.len() as u64).to_le_bytes());
        for (name, pos) in live {
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&pos.to_le_bytes());
        }
        let c = crc32c::crc32c(&out);
        out.extend_from_slice(&c.to_le_bytes());

        let io = |op: &str, e| Error::io(format!("writing index snapshot: {op}"), e);
        let _ = storage.remove(SNAPSHOT_TMP);
        let f = storage
            .open(SNAPSHOT_TMP, true)
            .map_err(|e| io("create", e))?;
        f.set_len(0).map_err(|e| io("truncate", e))?;
        f.write_at(&out, 0).map_err(|e| io("write", e))?;
        f.sync().map_err(|e| io("sync", e))?;
        storage
            .rename(SNAPSHOT_TMP, SNAPSHOT_FILE)
            .map_err(|e| io("rename", e))?;
        storage.sync_dir().map_err(|e| io("sync directory", e))?;
        Ok(())
    }

    /// Loads a snapshot. Returns `None` if there is none or it is unusable (the caller then
    /// rebuilds from the log; a snapshot is only an accelerator).
    pub fn load_snapshot(storage: &dyn Storage) -> Option<LoadedSnapshot> {
        let body = &checked_snapshot(storage)?;
        let covered_end = u64_at(body, 16);
        let fingerprint = u64_at(body, 24);
        let streams = usize::try_from(u64_at(body, 32)).ok()?;
        let position_count = usize::try_from(u64_at(body, 40)).ok()?;
        let names_len = usize::try_from(u64_at(body, 48)).ok()?;
        let mut at: usize = 56;
        let names = body.get(at..at.checked_add(names_len)?)?.to_vec();
        at += names_len;
        let dirs = body.get(at..at.checked_add(streams.checked_mul(6)?)?)?;
        at += streams * 6;
        let pos_bytes = body.get(at..at.checked_add(position_count.checked_mul(8)?)?)?;
        at += position_count * 8;
        let frozen: Vec<u64> = pos_bytes.chunks_exact(8).map(|c| u64_at(c, 0)).collect();

        let mut index = StreamIndex {
            table: HashTable::with_capacity(streams),
            hasher: DefaultHashBuilder::default(),
            names,
            frozen,
            events: position_count as u64,
        };
        let mut name_off = 0u64;
        let mut frozen_off = 0u64;
        for d in dirs.chunks_exact(6) {
            let name_len = u64::from(u16_at(d, 0));
            let n = u32_at(d, 2);
            let packed = (name_off << 16) | name_len;
            let name = Self::name_of(&index.names, packed);
            let h = index.hasher.hash_one(std::str::from_utf8(name).ok()?);
            let names = &index.names;
            let hasher = &index.hasher;
            index.table.insert_unique(
                h,
                StreamEntry {
                    name: packed,
                    frozen_off,
                    frozen_len: n,
                    tail: Vec::new(),
                },
                |e| {
                    hasher.hash_one(
                        std::str::from_utf8(Self::name_of(names, e.name)).unwrap_or_default(),
                    )
                },
            );
            name_off += name_len;
            frozen_off += u64::from(n);
        }
        if frozen_off as usize != position_count || name_off as usize != names_len {
            return None;
        }
        let tomb_count = usize::try_from(u64_at(body, at)).ok()?;
        at += 8;
        let mut tombstones = Vec::with_capacity(tomb_count.min(1 << 20));
        for _ in 0..tomb_count {
            let l = u16_at(body, at) as usize;
            let name = std::str::from_utf8(body.get(at + 2..at + 2 + l)?).ok()?;
            let pos = u64_at(body, at + 2 + l);
            at += 2 + l + 8;
            tombstones.push((name.to_string(), pos));
        }
        if at != body.len() {
            return None;
        }
        Some(LoadedSnapshot {
            index,
            covered_end,
            fingerprint,
            tombstones,
        })
    }
}

/// The `covered_end` of the snapshot on disk, if it is intact (checksum, magic, version):
/// the log position below which every byte was durable when the snapshot was written.
pub fn snapshot_covered_end(storage: &dyn Storage) -> Option<u64> {
    checked_snapshot(storage).map(|body| u64_at(&body, 16))
}

/// The snapshot file's body (without its checksum), if it is intact: long enough, checksum,
/// magic and version.
fn checked_snapshot(storage: &dyn Storage) -> Option<Vec<u8>> {
    let f = storage.open(SNAPSHOT_FILE, false).ok()?;
    let len = usize::try_from(f.len().ok()?).ok()?;
    if len < 60 {
        return None;
    }
    let mut buf = vec![0u8; len];
    f.read_at(&mut buf, 0).ok()?;
    let crc = u32_at(buf.get(len - 4..)?, 0);
    buf.truncate(len - 4);
    if crc32c::crc32c(&buf) != crc
        || buf.get(0..8)? != SNAPSHOT_MAGIC
        || u32_at(&buf, 8) != SNAPSHOT_VERSION
    {
        return None;
    }
    Some(buf)
}

/// What a snapshot holds.
#[derive(Debug)]
pub struct LoadedSnapshot {
    /// The index as of `covered_end`.
    pub index: StreamIndex,
    /// Log position up to which the snapshot is complete.
    pub covered_end: u64,
    /// Fingerprint of the records below `covered_end`.
    pub fingerprint: u64,
    /// Tombstoned streams and their tombstone positions.
    pub tombstones: Vec<(String, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    #[test]
    fn push_get_and_snapshot_round_trip() {
        let mut idx = StreamIndex::new();
        for i in 0..1000u64 {
            idx.push(&format!("s-{}", i % 37), 100 + i * 10);
        }
        let st = MemoryStorage::new();
        idx.write_snapshot(&st, 100 + 900 * 10, 7, &[("gone".into(), 50)])
            .unwrap();
        let loaded = StreamIndex::load_snapshot(&st).unwrap();
        assert_eq!(loaded.covered_end, 9100);
        assert_eq!(loaded.tombstones, vec![("gone".to_string(), 50)]);
        let mut l = loaded.index;
        assert_eq!(l.events(), 900);
        for s in 0..37u64 {
            let name = format!("s-{s}");
            let a = idx.get(&name).unwrap();
            let b = l.get(&name).unwrap();
            assert_eq!(b.len(), a.len_below(9100));
            for r in 0..b.len() {
                assert_eq!(a.get(r), b.get(r));
            }
        }
        l.push("s-0", 99_999);
        let p = l.get("s-0").unwrap();
        assert_eq!(p.get(p.len() - 1), Some(99_999));
        assert_eq!(p.len_below(99_999), p.len() - 1);
    }

    #[test]
    fn damaged_snapshot_is_ignored() {
        let mut idx = StreamIndex::new();
        idx.push("a", 40);
        let st = MemoryStorage::new();
        idx.write_snapshot(&st, 1000, 7, &[]).unwrap();
        let mut bytes = st.file_bytes(SNAPSHOT_FILE).unwrap();
        bytes[20] ^= 1;
        st.set_file_bytes(SNAPSHOT_FILE, bytes);
        assert!(StreamIndex::load_snapshot(&st).is_none());
    }
}
