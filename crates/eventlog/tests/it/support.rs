//! Helpers shared by the test modules: a comparable view of stored records, scratch
//! directories, a deterministic generator, CRC32C and segment listing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use daojia_eventlog::storage::Storage;
use daojia_eventlog::{ContentType, EventId, RecordedEvent};

/// A stored record as tests compare it.
#[derive(Clone, PartialEq, Eq)]
pub struct Rec {
    pub position: u64,
    pub stream: String,
    pub revision: u64,
    pub id: EventId,
    pub event_type: String,
    pub content_type: ContentType,
    /// `None` where creation times differ between the runs compared.
    pub created: Option<i64>,
    pub metadata: Vec<u8>,
    pub data: Vec<u8>,
}

impl Rec {
    /// Every field, creation time included.
    pub fn of(e: &RecordedEvent) -> Rec {
        Rec {
            created: Some(e.created_ticks),
            ..Rec::timeless(e)
        }
    }

    /// Every field but the creation time.
    pub fn timeless(e: &RecordedEvent) -> Rec {
        Rec {
            position: e.position.0,
            stream: e.stream().to_string(),
            revision: e.revision.0,
            id: e.id,
            event_type: e.event_type().to_string(),
            content_type: e.content_type,
            created: None,
            metadata: e.metadata_slice().to_vec(),
            data: e.data_slice().to_vec(),
        }
    }
}

/// FNV-1a, to show payloads briefly in failure messages.
fn short_hash(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

impl std::fmt::Debug for Rec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "#{} {}@{} {} {:?} id {} created {:?} meta {}B/{:08x} data {}B/{:08x}",
            self.position,
            self.stream,
            self.revision,
            self.event_type,
            self.content_type,
            self.id,
            self.created,
            self.metadata.len(),
            short_hash(&self.metadata),
            self.data.len(),
            short_hash(&self.data)
        )
    }
}

/// A fresh directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "daojia-eventlog-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// SplitMix64: tiny, fast and good enough to drive test choices deterministically.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform index into something of length `n` (0 when `n` is 0).
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }

    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// CRC32C (Castagnoli), bit by bit: independent of the engine's implementation.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The bases of the segment files in `storage`, in order.
pub fn segment_bases(storage: &dyn Storage) -> Vec<u64> {
    let mut bases: Vec<u64> = storage
        .list()
        .unwrap()
        .iter()
        .filter_map(|n| {
            n.strip_prefix("segment-")?
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}
