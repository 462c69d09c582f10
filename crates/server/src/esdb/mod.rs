//! The EventStoreDB/KurrentDB gRPC protocol, served next to daojia.v1 on the same port, so
//! that analytics jobs replay the log with the official clients they already use.
//!
//! Served: `Streams` (Append, BatchAppend, Read with catch-up subscriptions, filters and
//! checkpoints, Delete, Tombstone), `ServerFeatures.GetSupportedMethods`, `Gossip.Read` (this
//! node alone, as leader) and `PersistentSubscriptions.List` (always empty). Every other
//! method of the protocol answers UNIMPLEMENTED. The behaviour follows what the official
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
