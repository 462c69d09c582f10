//! daojia's EventStoreDB-protocol endpoint driven by the official Rust `kurrentdb` client, as
//! an analytics job would: every test starts its own server in-process on port 0.

mod appends;
mod cluster;
mod harness;
mod reads;
mod streams;
mod subscriptions;
