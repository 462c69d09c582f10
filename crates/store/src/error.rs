//! Errors of the store, independent of the backend.

use daojia_eventlog::{CurrentRevision, ExpectedRevision};

/// What can go wrong with a store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream did not match the expectation; nothing was written.
    #[error("wrong expected version on stream {stream:?}: expected {expected}, actual {actual}")]
    WrongExpectedVersion {
        /// Stream name.
        stream: String,
        /// What the caller expected.
        expected: ExpectedRevision,
        /// What the stream holds.
        actual: CurrentRevision,
    },
    /// The stream is deleted.
    #[error("stream {stream:?} is deleted")]
    StreamDeleted {
        /// Stream name.
        stream: String,
    },
    /// The stream has no visible events.
    #[error("stream {stream:?} not found")]
    StreamNotFound {
        /// Stream name.
        stream: String,
    },
    /// The request is malformed or over a limit; nothing was written.
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// A live subscriber that asked to be cut when it does not keep up went past its buffer
    /// budget; it can resubscribe after the last event it took.
    #[error("subscriber fell behind by more than {budget_bytes} bytes of buffered events")]
    FellBehind {
        /// The budget it went past.
        budget_bytes: u64,
    },
    /// The store cannot take requests now (closed, poisoned by an I/O failure, unreachable).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data is damaged.
    #[error("store data corrupt: {0}")]
    Corrupt(String),
    /// Anything else.
    #[error("store failure: {0}")]
    Internal(String),
}

impl From<daojia_eventlog::Error> for StoreError {
    fn from(e: daojia_eventlog::Error) -> Self {
        use daojia_eventlog::Error as E;
        match e {
            E::WrongExpectedVersion {
                stream,
                expected,
                actual,
            } => StoreError::WrongExpectedVersion {
                stream,
                expected,
                actual,
            },
            E::StreamDeleted { stream } => StoreError::StreamDeleted { stream },
            E::StreamNotFound { stream } => StoreError::StreamNotFound { stream },
            E::FellBehind { budget_bytes } => StoreError::FellBehind { budget_bytes },
            e @ (E::InvalidStreamName { .. }
            | E::InvalidEvent { .. }
            | E::EventTooLarge { .. }
            | E::BatchTooLarge { .. }
            | E::InvalidArgument(_)) => StoreError::InvalidArgument(e.to_string()),
            e @ (E::Poisoned { .. } | E::Closed | E::Locked(_)) => {
                StoreError::Unavailable(e.to_string())
            }
            e @ (E::Corrupt { .. } | E::DurableDamaged { .. } | E::UnsupportedVersion { .. }) => {
                StoreError::Corrupt(e.to_string())
            }
            e => StoreError::Internal(e.to_string()),
        }
    }
}
