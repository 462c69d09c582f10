//! daojia's integration tests, one binary. Each module covers one component through its
//! public API, with real storage and a real server on port 0.

mod admin;
mod admin_more;
mod bad_input;
mod dispatch;
mod end_user;
mod ergonomics;
mod esdb;
mod export;
mod harness;
mod hostile_appends;
mod hostile_corruption;
mod hostile_disk;
mod hostile_reads;
mod hostile_storm;
mod hostile_transport;
mod lifecycle;
mod orders;
mod orders_more;
mod queries;
mod restart;
mod rules_credit;
mod rules_ops;
mod seed;
mod server;
mod simulate;
mod store;
mod taking;
