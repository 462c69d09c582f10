//! The read side of daojia: a projector runtime that folds `$all` into in-memory read models,
//! and the read models the query service answers from.
//!
//! Code map:
//! - [`runtime`]: the [`Projection`] trait and [`Projector`], which subscribes to `$all`,
//!   applies every event in order, tracks the applied position, reports lag, rebuilds from
//!   position 0 on demand and lets queries wait (bounded) for a position (read-your-writes).
//! - [`decode`]: stored event → [`DomainRecord`] (routing by stream category, upcasting).
//! - Read models, one per file ([`ReadModel`]s: decoded once by the runtime): [`orders`],
//!   [`workers`], [`credit`], [`ops`], [`kpis`]; [`all`] feeds them all from one projector.
//!
//! Checkpoints are kept in memory and every projector replays from position 0 when it starts.
//! The read models are in memory too, so persisting only a checkpoint would resume an empty
//! model halfway through history; a persisted checkpoint is only useful together with a
//! snapshot of the model at that position, which this crate does not write yet.
//!
//! Invariants: no lock is held across an `.await`; a read model never sees an event twice or
//! out of order; queries never see a half-rebuilt model (a rebuild builds a fresh model aside and
//! swaps it in once it has caught up with the live one).

pub mod all;
pub mod credit;
pub mod decode;
mod error;
pub mod kpis;
pub mod ops;
pub mod orders;
pub mod runtime;
pub mod workers;

pub use all::ReadModels;
pub use decode::{DomainRecord, Skip};
pub use error::ProjectionError;
pub use runtime::{Lag, Progress, Projection, Projector, ReadModel};
