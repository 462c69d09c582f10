//! The small services clients call around the streams: server features, gossip (this node
//! alone, as leader) and the persistent-subscription list (empty).

use std::net::SocketAddr;

use tonic::{Request, Response, Status};

use super::proto::event_store::client::Empty;
use super::proto::event_store::client::gossip::{
    ClusterInfo, EndPoint, MemberInfo, gossip_server, member_info::VNodeState,
};
use super::proto::event_store::client::persistent_subscriptions::{
    ListReq, ListResp, persistent_subscriptions_server,
};
use super::proto::event_store::client::server_features::{
    SupportedMethod, SupportedMethods, server_features_server,
};
use super::{Access, PROTOCOL_VERSION, authorize};

/// `ServerFeatures`: the methods served, so clients enable batch append and the
/// persistent-subscription list over gRPC.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerFeaturesService;

const STREAMS: &str = "event_store.client.streams.streams";

fn method(service: &str, name: &str, features: &[&str]) -> SupportedMethod {
    SupportedMethod {
        method_name: name.to_string(),
        service_name: service.to_string(),
        features: features.iter().map(|f| f.to_string()).collect(),
    }
}

/// Every method daojia serves, lower-case as EventStoreDB lists them.
pub fn supported_methods() -> SupportedMethods {
    SupportedMethods {
        methods: vec![
            method(STREAMS, "read", &["position", "events"]),
            method(STREAMS, "append", &[]),
            method(STREAMS, "batchappend", &["deadline_duration"]),
            method(STREAMS, "delete", &[]),
            method(STREAMS, "tombstone", &[]),
            method(
                "event_store.client.server_features.serverfeatures",
                "getsupportedmethods",
                &[],
            ),
            method("event_store.client.gossip.gossip", "read", &[]),
            method(
                "event_store.client.persistent_subscriptions.persistentsubscriptions",
                "list",
                &[],
            ),
        ],
        event_store_server_version: PROTOCOL_VERSION.to_string(),
    }
}

#[tonic::async_trait]
impl server_features_server::ServerFeatures for ServerFeaturesService {
    async fn get_supported_methods(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<SupportedMethods>, Status> {
        Ok(Response::new(supported_methods()))
    }
}

/// `Gossip`: one member, this node, alive and leader.
#[derive(Clone, Copy, Debug)]
pub struct GossipService {
    local: SocketAddr,
}

impl GossipService {
    /// Gossip for a node listening on `local`.
    pub fn new(local: SocketAddr) -> Self {
        GossipService { local }
    }
}

#[tonic::async_trait]
impl gossip_server::Gossip for GossipService {
    async fn read(&self, _request: Request<Empty>) -> Result<Response<ClusterInfo>, Status> {
        // The node id only needs to be stable while the process runs; derive it from the
        // address so that it is.
        let mut id = [0u8; 16];
        let port = self.local.port().to_be_bytes();
        id[..2].copy_from_slice(&port);
        if let SocketAddr::V4(v4) = self.local {
            id[2..6].copy_from_slice(&v4.ip().octets());
        }
        id[6] = 0x40; // version 4 layout bits, so clients parsing it see a well-formed UUID
        id[8] = 0x80;
        let ticks = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| (d.as_nanos() / 100) as i64)
            .unwrap_or_default();
        let member = MemberInfo {
            instance_id: Some(super::convert::wire_uuid(
                daojia_store::EventId(id),
                super::convert::UuidFormat::String,
            )),
            time_stamp: ticks,
            state: VNodeState::Leader as i32,
            is_alive: true,
            http_end_point: Some(EndPoint {
                address: self.local.ip().to_string(),
                port: u32::from(self.local.port()),
            }),
        };
        Ok(Response::new(ClusterInfo {
            members: vec![member],
        }))
    }
}

/// `PersistentSubscriptions`: only `List`, which finds none (daojia has no persistent
/// subscriptions); the other methods answer UNIMPLEMENTED.
#[derive(Clone, Copy, Debug, Default)]
pub struct PersistentSubscriptionsService;

#[tonic::async_trait]
impl persistent_subscriptions_server::PersistentSubscriptions for PersistentSubscriptionsService {
    async fn list(&self, request: Request<ListReq>) -> Result<Response<ListResp>, Status> {
        authorize(&request, Access::Read)?;
        Ok(Response::new(ListResp {
            subscriptions: Vec::new(),
        }))
    }
}
