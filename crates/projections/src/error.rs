//! Errors of the projector runtime.

use std::time::Duration;

use daojia_store::{Position, StoreError};

/// What can go wrong when querying or driving a projection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The read model did not reach the requested position in time (read-your-writes wait).
    #[error(
        "projection {projection} did not reach position {wanted} within {waited:?} (applied up to {applied})"
    )]
    Timeout {
        /// Projection name.
        projection: String,
        /// The position asked for.
        wanted: Position,
        /// The position applied when the wait gave up.
        applied: Position,
        /// How long the caller waited.
        waited: Duration,
    },
    /// The projector stopped (the store closed or failed); its read model no longer advances.
    #[error("projection {projection} stopped: {reason}")]
    Stopped {
        /// Projection name.
        projection: String,
        /// Why.
        reason: String,
    },
    /// A store call made on behalf of the projection failed.
    #[error("projection {projection}: {source}")]
    Store {
        /// Projection name.
        projection: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A checkpoint could not be written.
    #[error("projection {projection}: checkpoint not written: {reason}")]
    Checkpoint {
        /// Projection name.
        projection: String,
        /// Why.
        reason: String,
    },
    /// A county list could not be read.
    #[error("bad county list: {reason}")]
    Counties {
        /// Why.
        reason: String,
    },
}
