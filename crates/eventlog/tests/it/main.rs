//! Integration tests of the event log engine: one binary, one module per concern.

mod corruption;
mod disk_full;
mod faults;
mod fixtures;
mod kill9;
mod model;
mod offline;
mod rules;
mod smoke;
mod subscriptions;
mod support;
