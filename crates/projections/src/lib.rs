//! The read side of daojia: a projector runtime that folds `$all` into in-memory read models,
//! and the read models the query service answers from.
//!
//! Code map:
//! - [`runtime`]: the [`Projection`] trait and [`Projector`], which subscribes to `$all`,
//!   applies every event in order, tracks the applied position, reports lag, rebuilds from
//!   position 0 on demand and lets queries wait (bounded) for a position (read-your-writes).
//! - [`decode`]: stored event → [`DomainRecord`] (routing by stream category, upcasting).
//! - Read models, one per file ([`ReadModel`]s: decoded once by the runtime): [`orders`],
//!   [`workers`], [`credit`], [`ops`], [`kpis`], [`matching_view`] (the dispatcher's view of
//!   workers and open orders); [`all`] feeds them all from one projector; [`counties`] lists
//!   the counties the KPIs are attributed to (Fuzhou built in, or a JSON file).
//! - [`checkpoint`]: persisted checkpoints — a snapshot of the model with the `$all` position
//!   (and the id of the event there) it was taken at, written atomically with a format version
//!   and a crc32c ([`Projector::spawn_with`], [`CheckpointConfig`]).
//!
//! A projector started with [`Projector::spawn`] keeps its position in memory only and replays
//! `$all` from position 0 when it starts. One started with [`Projector::spawn_with`] also writes
//! checkpoints (every so many events, every so often, after each rebuild and on request) and on
//! start resumes after the checkpoint's position if the checkpoint is intact and was taken from
//! this log with the same model configuration; otherwise it warns and replays from position 0.
//!
//! Invariants: no lock is held across an `.await`; a read model never sees an event twice or
//! out of order; queries never see a half-rebuilt model (a rebuild builds a fresh model aside and
//! swaps it in once it has caught up with the live one).

pub mod all;
pub mod checkpoint;
pub mod counties;
pub mod credit;
pub mod decode;
mod error;
pub mod kpis;
pub mod matching_view;
pub mod ops;
pub mod orders;
pub mod runtime;
mod state_repr;
pub mod workers;

pub use all::ReadModels;
pub use checkpoint::CheckpointConfig;
pub use decode::{DomainRecord, Skip};
pub use error::ProjectionError;
pub use runtime::{Lag, Progress, Projection, Projector, ReadModel};
