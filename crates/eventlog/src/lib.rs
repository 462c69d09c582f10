//! daojia's embedded event store engine: a segmented, append-only, crash-safe event log with
//! EventStoreDB semantics (streams, expected revisions, idempotent retries, `$all`, catch-up
//! subscriptions, soft delete, tombstones and stream metadata).
//!
//! The byte layout and recovery rules are in `FORMAT.md` next to this crate's sources.
//!
//! ```no_run
//! use daojia_eventlog::{EventLog, EventId, ExpectedRevision, ProposedEvent};
//! let log = EventLog::builder("./data").open()?;
//! let e = ProposedEvent::json(EventId::from_u128(1), "OrderPosted", &b"{}"[..]);
//! let appended = log.append("order-1", ExpectedRevision::NoStream, vec![e])?;
//! assert_eq!(appended.first_revision.0, 0);
//! # Ok::<(), daojia_eventlog::Error>(())
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

mod error;
mod filter;
mod format;
mod index;
mod log;
mod metadata;
mod offline;
mod recovery;
mod segments;
pub mod storage;
mod subscription;
mod types;
mod validate;
mod writer;

pub use error::{Error, Result};
pub use filter::{
    Filter, FilterSpec, FilterTarget, MAX_BACKTRACK_STEPS, MAX_REGEX_PROGRAM_BYTES, RegexEngine,
};
pub use format::FORMAT_VERSION;
pub use log::{
    AllSlice, Builder, Clock, Config, EventLog, FILTERED_SCAN_SLICE, LogHealth, ManualClock, Stats,
    SystemClock,
};
pub use metadata::{METADATA_EVENT_TYPE, StreamMetadata};
pub use offline::{
    Damage, Truncated, VerifyReport, truncate_at, truncate_storage, verify, verify_storage,
};
pub use recovery::{RecoveryReport, TornTail};
pub use subscription::{AllOptions, SubscribeFrom, Subscription, SubscriptionItem};
pub use types::{
    AllStart, Appended, ContentType, CurrentRevision, Deleted, Direction, EventId,
    ExpectedRevision, Position, ProposedEvent, RecordedEvent, Revision, StreamStart,
};
