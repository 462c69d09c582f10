//! Integration tests of the projector runtime and the read models: real domain events decided by
//! the domain crate, appended to an `EmbeddedStore` in a temporary directory.

mod checkpoint;
mod credit;
mod decode;
mod kpis;
mod matching;
mod ops;
mod orders;
mod runtime;
mod stopped;
mod support;
mod workers;
