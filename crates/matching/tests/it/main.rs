//! Integration tests of daojia-matching: one binary, one module per concern.

mod baseline;
mod incremental;
mod policies;
mod properties;
mod support;
mod units;
