//! Integration tests of the event log engine: one binary, one module per concern.

mod model;
mod rules;
mod smoke;
mod subscriptions;
