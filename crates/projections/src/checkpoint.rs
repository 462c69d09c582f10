//! Persisted checkpoints: a snapshot of a read model together with the `$all` position it has
//! applied up to, so that a projector restarts from there instead of replaying from 0.
//!
//! One file per projection, `<dir>/<projection name>.checkpoint`, replaced atomically: the new
//! content goes to `<name>.checkpoint.tmp`, which is fsynced, renamed over the old file, and then
//! the directory is fsynced. A crash leaves either the old or the new checkpoint.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! offset  size  field
//!      0     8  magic "DJPCKPT\0"
//!      8     4  format version (u32), currently 1
//!     12     8  position: the $all position of the last applied event (u64)
//!     20    16  event id of the event at that position (UUID, big-endian bytes)
//!     36     4  model configuration: crc32c of the empty model (`make()`) as JSON (u32)
//!     40     8  body length n (u64)
//!     48     4  crc32c of bytes 0..48 and of the body (u32)
//!     52     n  body: the read model as JSON (serde)
//! ```
//!
//! On start a checkpoint is used only if it is complete, its version is known, its checksum
//! holds, it was taken with the same model configuration (for example the same county list of
//! the KPIs), its body decodes, and the log holds the event it names at its position (so a
//! snapshot of another log, or of a log that was wiped and rewritten, is not resumed). Anything
//! else is logged as a warning with the reason and the projector replays from position 0.
//!
//! Version history: 1 — the first format.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use daojia_store::{EventId, Position};

/// The file's first bytes.
pub const MAGIC: [u8; 8] = *b"DJPCKPT\0";

/// The format version written by this code.
pub const FORMAT_VERSION: u32 = 1;

/// Bytes before the body.
pub const HEADER_LEN: usize = 52;

/// Where and how often a projector persists checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// Directory holding the checkpoint files (created if missing).
    pub dir: PathBuf,
    /// Write a checkpoint after this many applied events (0: never by count).
    pub every_events: u64,
    /// Write a checkpoint this often when events were applied since the last one (`None`:
    /// never by time).
    pub every_interval: Option<Duration>,
}

impl CheckpointConfig {
    /// Checkpoints in `dir` every 10 000 events or every minute, whichever comes first.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CheckpointConfig {
            dir: dir.into(),
            every_events: 10_000,
            every_interval: Some(Duration::from_secs(60)),
        }
    }

    /// The checkpoint file of projection `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.checkpoint"))
    }
}

/// A checkpoint's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Position of the last applied event.
    pub position: Position,
    /// Id of the event at `position`.
    pub event_id: EventId,
    /// crc32c of the empty model as JSON.
    pub config: u32,
}

/// Why a checkpoint file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    /// There is no file.
    #[error("no checkpoint at {0}")]
    Missing(PathBuf),
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// Shorter than its header says.
    #[error("truncated: {len} bytes, expected {expected}")]
    Truncated {
        /// Actual length.
        len: u64,
        /// Length the header announces (or the header's length).
        expected: u64,
    },
    /// Not a checkpoint file.
    #[error("bad magic bytes")]
    BadMagic,
    /// Written by another format version.
    #[error("format version {found}, this build reads version {FORMAT_VERSION}")]
    Version {
        /// Version in the file.
        found: u32,
    },
    /// The checksum does not match the content.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// Stored.
        stored: u32,
        /// Computed.
        computed: u32,
    },
    /// Taken with another model configuration.
    #[error("taken with another model configuration ({found:#010x}, now {expected:#010x})")]
    Config {
        /// In the file.
        found: u32,
        /// Now.
        expected: u32,
    },
    /// The body does not decode as the model.
    #[error("the model does not decode: {0}")]
    Body(String),
    /// The checkpoint could not be checked against the log.
    #[error("cannot check it against the log: {0}")]
    Unverified(String),
    /// The log does not hold the event the checkpoint names.
    #[error("not taken from this log: {0}")]
    OtherLog(String),
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The model configuration a checkpoint records: crc32c of the empty model (as `make()` builds
/// it, configuration included) serialised as JSON. The empty model must serialise the same way
/// every time (no configuration held in a `HashMap`), or no checkpoint would ever be resumed.
pub fn model_config<P: serde::Serialize>(empty: &P) -> u32 {
    crc32c::crc32c(&serde_json::to_vec(empty).unwrap_or_default())
}

/// Encodes a checkpoint file.
pub fn encode(mark: Mark, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&mark.position.0.to_le_bytes());
    out.extend_from_slice(&mark.event_id.0);
    out.extend_from_slice(&mark.config.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&out), body);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Checks a checkpoint file's framing and returns its header and body.
pub fn decode(bytes: &[u8], config: u32) -> Result<(Mark, &[u8]), Unusable> {
    let len = bytes.len() as u64;
    if bytes.len() < HEADER_LEN {
        return Err(Unusable::Truncated {
            len,
            expected: HEADER_LEN as u64,
        });
    }
    if bytes[..8] != MAGIC {
        return Err(Unusable::BadMagic);
    }
    let version = u32_at(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(Unusable::Version { found: version });
    }
    let body_len = u64_at(bytes, 40);
    let expected = (HEADER_LEN as u64).saturating_add(body_len);
    if len != expected {
        return Err(Unusable::Truncated { len, expected });
    }
    let body = &bytes[HEADER_LEN..];
    let stored = u32_at(bytes, 48);
    let computed = crc32c::crc32c_append(crc32c::crc32c(&bytes[..48]), body);
    if stored != computed {
        return Err(Unusable::Checksum { stored, computed });
    }
    let mut event_id = [0; 16];
    event_id.copy_from_slice(&bytes[20..36]);
    let mark = Mark {
        position: Position(u64_at(bytes, 12)),
        event_id: EventId(event_id),
        config: u32_at(bytes, 36),
    };
    if mark.config != config {
        return Err(Unusable::Config {
            found: mark.config,
            expected: config,
        });
    }
    Ok((mark, body))
}

/// Reads the checkpoint file at `path` (blocking).
pub fn read(path: &Path) -> Result<Vec<u8>, Unusable> {
    fs::read(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            Unusable::Missing(path.to_owned())
        } else {
            Unusable::Io {
                path: path.to_owned(),
                source,
            }
        }
    })
}

/// Replaces the file at `path` with `bytes` atomically and durably (blocking): temporary file,
/// fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent directory"))?;
    fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}
