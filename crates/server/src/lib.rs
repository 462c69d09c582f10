//! daojia's gRPC server: the daojia.v1 services, gRPC health and reflection on one port, bearer
//! token authentication, the one mapping from errors to gRPC statuses, and [`run`], which the
//! `daojia` binary and the integration tests call with a bound listener and a shutdown future.
//!
//! Only this crate sees prost and tonic types (STYLE.md rule 9).

pub mod admin;
pub mod admin_cli;
pub mod admin_requests;
pub mod admission;
pub mod auth;
pub mod catalog;
pub mod clock;
pub mod codec;
pub mod config;
pub mod customer_app;
mod dispatch_index;
pub mod dispatcher;
pub mod door;
pub mod end_user;
pub mod esdb;
pub mod export;
pub mod incoming;
pub mod interceptor;
pub mod limits;
pub mod locations;
pub mod log_cli;
pub mod meta;
pub mod min_position;
pub mod notifications;
pub mod notify_hub;
pub mod order_commands;
pub mod order_quote;
pub mod order_requests;
pub mod order_view;
pub mod progress;
pub mod queries;
pub mod query_view;
pub mod reactor;
pub mod read_models;
mod server;
pub mod settle;
pub mod signal;
pub mod simulate;
pub mod status;
pub mod store_backend;
pub mod store_slot;
pub mod worker_app;

pub use clock::Clock;

/// Makes ring rustls's process-wide crypto provider. The `kurrentdb` client (behind `--store`)
/// brings rustls's aws-lc-rs backend next to tonic's ring one, and with both compiled in rustls
/// will not pick one by itself. Idempotent; `run` and the binary call it.
pub fn install_crypto_provider() {
    // Err means a provider is installed already: keep it.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
pub use config::{Cli, Command, ServeArgs, ServerConfig};
pub use server::{ServeError, run, run_with};
pub use status::ApiError;

/// Generated daojia.v1 protobuf types, clients and servers.
#[allow(missing_docs, unused_qualifications, clippy::all)]
pub mod pb {
    tonic::include_proto!("daojia.v1");

    pub use prost_types::Timestamp;

    /// The encoded file descriptor set of daojia.v1 (served by reflection).
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("daojia_descriptor");
}
