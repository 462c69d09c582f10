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

/// Writes a checkpoint to `path` atomically and durably (blocking): the body is streamed by
/// `body` into a temporary file (so a model of hundreds of megabytes is never held twice in
/// memory as bytes), the header with the body's length and checksum is written over the
/// placeholder at the start, then fsync, rename, and fsync of the directory.
pub fn write(
    path: &Path,
    mark: Mark,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent directory"))?;
    fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut file = File::create(&tmp)?;
        file.write_all(&[0; HEADER_LEN])?;
        let summing = Summing {
            inner: &file,
            len: 0,
            crc: 0,
        };
        let mut out = io::BufWriter::with_capacity(1 << 20, summing);
        body(&mut out)?;
        let Summing {
            len, crc: body_crc, ..
        } = out.into_inner().map_err(|e| e.into_error())?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&MAGIC);
        header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&mark.position.0.to_le_bytes());
        header.extend_from_slice(&mark.event_id.0);
        header.extend_from_slice(&mark.config.to_le_bytes());
        header.extend_from_slice(&len.to_le_bytes());
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "body too long"))?;
        let crc = crc32c::crc32c_combine(crc32c::crc32c(&header), body_crc, len);
        header.extend_from_slice(&crc.to_le_bytes());
        std::os::unix::fs::FileExt::write_all_at(&file, &header, 0)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// A writer that counts and checksums the bytes passing through.
struct Summing<W> {
    inner: W,
    len: u64,
    crc: u32,
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("daojia-ckpt-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_streamed_checkpoint_reads_back_and_a_flipped_body_byte_is_caught() {
        let dir = scratch("stream");
        let path = dir.join("p.checkpoint");
        let mark = Mark {
            position: Position(4096),
            event_id: EventId([7; 16]),
            config: 0xdead_beef,
        };
        // More than the write buffer, in small writes, as serde_json writes.
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        write(&path, mark, |out| {
            body.chunks(7).try_for_each(|c| out.write_all(c))
        })
        .unwrap();
        let mut bytes = read(&path).unwrap();
        let (read_mark, read_body) = decode(&bytes, 0xdead_beef).unwrap();
        assert_eq!(read_mark, mark);
        assert_eq!(read_body, &body[..]);
        assert!(!dir.join("p.checkpoint.tmp").exists());

        bytes[HEADER_LEN + 1_234_567] ^= 0x10;
        assert!(matches!(
            decode(&bytes, 0xdead_beef),
            Err(Unusable::Checksum { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failing_body_leaves_the_previous_checkpoint_in_place() {
        let dir = scratch("fail");
        let path = dir.join("p.checkpoint");
        let mark = Mark {
            position: Position(1),
            event_id: EventId([1; 16]),
            config: 1,
        };
        write(&path, mark, |out| out.write_all(b"{}")).unwrap();
        let failed = write(&path, mark, |_| Err(io::Error::other("model refused")));
        assert_eq!(failed.unwrap_err().to_string(), "model refused");
        let bytes = read(&path).unwrap();
        assert_eq!(decode(&bytes, 1).unwrap().1, b"{}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
