//! The EventStoreDB/KurrentDB gRPC protocol, served next to daojia.v1 on the same port, so
//! that analytics jobs replay the log with the official clients they already use.
//!
//! Served: `Streams` (Append, BatchAppend, Read with catch-up subscriptions, filters and
//! checkpoints, Delete, Tombstone), `ServerFeatures.GetSupportedMethods`, `Gossip.Read` (this
//! node alone, as leader) and the management side of `PersistentSubscriptions` without any
//! subscription (List: empty; GetInfo, ReplayParked: not found; RestartSubsystem: nothing to
//! do). Every other method of the protocol answers UNIMPLEMENTED. ServerFeatures and Gossip
//! need no credentials (clients call them while connecting). `tests/kurrentdb-client` drives
//! all of it with the official Rust client. The behaviour follows what the official
//! clients decode; `../shared/notes/esdb-protocol.md` in the repository's workspace and
//! `proto/esdb/` record the details.

/// Generated EventStoreDB-protocol types, clients and servers, one module per protobuf package.
#[allow(missing_docs, unused_qualifications, clippy::all)]
pub mod proto {
    /// Package `event_store`.
    pub mod event_store {
        /// Package `event_store.client`: the shared types.
        pub mod client {
            tonic::include_proto!("event_store.client");

            /// Package `event_store.client.streams`.
            pub mod streams {
                tonic::include_proto!("event_store.client.streams");
            }
            /// Package `event_store.client.server_features`.
            pub mod server_features {
                tonic::include_proto!("event_store.client.server_features");
            }
            /// Package `event_store.client.gossip`.
            pub mod gossip {
                tonic::include_proto!("event_store.client.gossip");
            }
            /// Package `event_store.client.persistent_subscriptions`.
            pub mod persistent_subscriptions {
                tonic::include_proto!("event_store.client.persistent_subscriptions");
            }
        }
    }
    /// Package `google.rpc`: the status carried by BatchAppend errors.
    pub mod google {
        /// Package `google.rpc`.
        pub mod rpc {
            tonic::include_proto!("google.rpc");
        }
    }
}

pub mod budget;
mod cluster;
pub mod convert;
pub mod errors;
mod read;
mod streams;

use std::net::SocketAddr;

use tokio::sync::watch;
use tonic::Status;

pub use cluster::{GossipService, PersistentSubscriptionsService, ServerFeaturesService};
pub use read::ReadStats;
pub use streams::StreamsService;

use crate::auth::Role;
use crate::store_slot::StoreSlot;

/// The EventStoreDB server version daojia reports: the protocol level whose behaviour it
/// follows (clients parse it as a semantic version, and an empty one fails their connect).
pub const PROTOCOL_VERSION: &str = "24.10.0";

/// What a call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads and subscriptions: the analytics, ops and admin roles.
    Read,
    /// Appends, deletes and tombstones: the admin role.
    Write,
}

/// PERMISSION_DENIED (with EventStoreDB's `access-denied` trailer) unless the caller's role
/// allows `access`. In `--insecure` mode every caller is an admin, as EventStoreDB's insecure
/// mode turns access control off.
pub fn authorize<T>(request: &tonic::Request<T>, access: Access) -> Result<(), Status> {
    let caller = crate::interceptor::caller(request).map_err(Status::from)?;
    let allowed = match access {
        Access::Read => matches!(caller.role, Role::Analytics | Role::Ops | Role::Admin),
        Access::Write => caller.role == Role::Admin,
    };
    if allowed {
        Ok(())
    } else {
        Err(errors::access_denied(match access {
            Access::Read => "read the event log",
            Access::Write => "write to the event log",
        }))
    }
}

/// The EventStoreDB-protocol services of one server.
#[derive(Debug)]
pub struct Services {
    /// `event_store.client.streams.Streams`.
    pub streams: StreamsService,
    /// `event_store.client.server_features.ServerFeatures`.
    pub features: ServerFeaturesService,
    /// `event_store.client.gossip.Gossip`.
    pub gossip: GossipService,
    /// `event_store.client.persistent_subscriptions.PersistentSubscriptions`.
    pub persistent: PersistentSubscriptionsService,
}

impl Services {
    /// The services over the store in `slot`, for a server listening on `local`.
    pub fn new(
        slot: StoreSlot,
        local: SocketAddr,
        draining: watch::Receiver<bool>,
        reads: ReadStats,
        appends: budget::AppendBudgets,
    ) -> Self {
        reads.watch(slot.clone());
        Services {
            streams: StreamsService::new(slot, draining, reads, appends),
            features: ServerFeaturesService,
            gossip: GossipService::new(local),
            persistent: PersistentSubscriptionsService,
        }
    }
}
