//! The one error type of the event log, with a variant per way an operation can fail.

use std::io;
use std::path::PathBuf;

use crate::types::{CurrentRevision, ExpectedRevision};

/// Everything that can go wrong in the event log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream's state does not match the append's expectation. Nothing was written.
    #[error("wrong expected version on stream {stream:?}: expected {expected}, actual {actual}")]
    WrongExpectedVersion {
        /// Stream name.
        stream: String,
        /// What the caller expected.
        expected: ExpectedRevision,
        /// What the stream holds.
        actual: CurrentRevision,
    },

    /// The stream was tombstoned (or, for `StreamExists` expectations, soft-deleted).
    #[error("stream {stream:?} is deleted")]
    StreamDeleted {
        /// Stream name.
        stream: String,
    },

    /// The stream was never written, or is soft-deleted.
    #[error("stream {stream:?} not found")]
    StreamNotFound {
        /// Stream name.
        stream: String,
    },

    /// The stream name breaks the naming rules.
    #[error("invalid stream name {stream:?}: {reason}")]
    InvalidStreamName {
        /// The rejected name (possibly cut short).
        stream: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// An event breaks a rule (empty type, bad metadata JSON, ...).
    #[error("invalid event {index} of the batch: {reason}")]
    InvalidEvent {
        /// Index of the event in the batch.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// An event is larger than the configured limit.
    #[error("event {index} of the batch is {size} bytes, over the limit of {limit} bytes")]
    EventTooLarge {
        /// Index of the event in the batch.
        index: usize,
        /// Encoded size.
        size: usize,
        /// Configured limit.
        limit: usize,
    },

    /// A batch has too many events or bytes.
    #[error(
        "batch of {events} events and {bytes} bytes is over the limit of {max_events} events or {max_bytes} bytes"
    )]
    BatchTooLarge {
        /// Events in the batch.
        events: usize,
        /// Encoded bytes of the batch.
        bytes: usize,
        /// Configured event limit.
        max_events: usize,
        /// Configured byte limit.
        max_bytes: usize,
    },

    /// A read or filter argument is not usable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// An earlier write or sync failed; nothing is acknowledged until the log has recovered by
    /// itself (a full disk, once space is freed: see [`crate::LogHealth`]) or, after any other
    /// failure, until it is reopened. The append that gets this error was not written.
    #[error(
        "the log is poisoned by an earlier I/O failure ({cause}); after a full disk it recovers by itself once space is freed, otherwise reopen it"
    )]
    Poisoned {
        /// The failure that poisoned it.
        cause: String,
    },

    /// A live subscriber that asked to be cut ([`crate::Subscription::fail_when_behind`])
    /// did not take its events while the log moved on: its buffer went past `budget_bytes`
    /// (its own, or its share of the global budget). Resubscribe from the last event taken.
    #[error("subscriber fell behind by more than {budget_bytes} bytes of buffered events")]
    FellBehind {
        /// The budget it went past.
        budget_bytes: u64,
    },

    /// The log is closed.
    #[error("the log is closed")]
    Closed,

    /// Stored bytes fail their checksum or framing, outside of a recoverable torn tail.
    #[error("corrupt log: {file}, offset {offset}: {reason}")]
    Corrupt {
        /// File name inside the data directory.
        file: String,
        /// Byte offset inside that file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// Bytes that the log had proven durable (an index snapshot written at a clean close
    /// covers them) do not read back intact. Open refuses to cut them as a torn tail: an
    /// operator decides (`daojia log verify`, a backup, or `daojia log truncate`).
    #[error(
        "durable log data damaged: {file}, offset {offset}: {found}; expected {expected}, because {proof}; nothing was cut (inspect with `daojia log verify`, restore from a backup or cut knowingly with `daojia log truncate`)"
    )]
    DurableDamaged {
        /// File name inside the data directory.
        file: String,
        /// Byte offset inside that file of the first damaged or missing byte.
        offset: u64,
        /// What was found there.
        found: String,
        /// What should have been there.
        expected: String,
        /// The log position below which every byte was proven durable.
        durable_end: u64,
        /// What proves it.
        proof: String,
    },

    /// The directory was written by an unknown format version.
    #[error("{file}: unsupported format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// File name.
        file: String,
        /// Version found.
        found: u32,
        /// Version this build supports.
        supported: u32,
    },

    /// Another process holds the data directory.
    #[error("data directory {} is locked by another process", .0.display())]
    Locked(PathBuf),

    /// An I/O error.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(op: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            op: op.into(),
            source,
        }
    }

    pub(crate) fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            file: file.to_string(),
            offset,
            reason: reason.into(),
        }
    }
}

/// Result alias of the event log.
pub type Result<T, E = Error> = std::result::Result<T, E>;
