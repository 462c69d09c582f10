//! The small services clients call around the streams: server features, gossip (this node
//! alone, as leader) and the persistent-subscription list (empty).

use std::net::SocketAddr;

use tonic::{Request, Response, Status};

use super::convert::stream_name;
use super::errors::persistent_subscription_not_found;
use super::proto::event_store::client::Empty;
use super::proto::event_store::client::gossip::{
    ClusterInfo, EndPoint, MemberInfo, gossip_server, member_info::VNodeState,
};
use super::proto::event_store::client::persistent_subscriptions::{
    GetInfoReq, GetInfoResp, ListReq, ListResp, ReplayParkedReq, ReplayParkedResp, get_info_req,
    persistent_subscriptions_server, replay_parked_req,
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

const PERSISTENT: &str = "event_store.client.persistent_subscriptions.persistentsubscriptions";

/// Every method daojia serves, lower-case as EventStoreDB lists them.
///
/// The four persistent-subscription management methods are listed together: the Rust client
/// uses gRPC for any of them only when all four are advertised, and otherwise falls back to
/// EventStoreDB's HTTP API, which daojia does not serve (its `list` then failed with an
/// internal client error instead of returning the empty list).
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
            method(PERSISTENT, "list", &[]),
            method(PERSISTENT, "getinfo", &[]),
            method(PERSISTENT, "replayparked", &[]),
            method(PERSISTENT, "restartsubsystem", &[]),
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
    async fn read(&self, request: Request<Empty>) -> Result<Response<ClusterInfo>, Status> {
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
            http_end_point: Some(advertised_endpoint(self.local, request.local_addr())),
        };
        Ok(Response::new(ClusterInfo {
            members: vec![member],
        }))
    }
}

/// The endpoint gossip tells clients to connect to. Clients connect to exactly that address, so
/// a listener on an unspecified address (`0.0.0.0`, `::`) must not advertise it: the address the
/// caller reached this node on (its connection's local address) is used then.
fn advertised_endpoint(listening: SocketAddr, reached: Option<SocketAddr>) -> EndPoint {
    let addr = match reached {
        Some(reached) if listening.ip().is_unspecified() => reached,
        _ => listening,
    };
    EndPoint {
        address: addr.ip().to_string(),
        port: u32::from(addr.port()),
    }
}

/// `PersistentSubscriptions` without any persistent subscription: `List` finds none, `GetInfo`
/// and `ReplayParked` find no such group, `RestartSubsystem` has nothing to restart; creating,
/// updating, deleting and reading groups answer UNIMPLEMENTED.
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

    async fn get_info(
        &self,
        request: Request<GetInfoReq>,
    ) -> Result<Response<GetInfoResp>, Status> {
        authorize(&request, Access::Read)?;
        use get_info_req::options::StreamOption;
        let options = request.into_inner().options.unwrap_or_default();
        let stream = match &options.stream_option {
            Some(StreamOption::StreamIdentifier(id)) => stream_name(Some(id))?,
            Some(StreamOption::All(_)) | None => "$all".to_string(),
        };
        Err(persistent_subscription_not_found(
            &stream,
            &options.group_name,
        ))
    }

    async fn replay_parked(
        &self,
        request: Request<ReplayParkedReq>,
    ) -> Result<Response<ReplayParkedResp>, Status> {
        authorize(&request, Access::Write)?;
        use replay_parked_req::options::StreamOption;
        let options = request.into_inner().options.unwrap_or_default();
        let stream = match &options.stream_option {
            Some(StreamOption::StreamIdentifier(id)) => stream_name(Some(id))?,
            Some(StreamOption::All(_)) | None => "$all".to_string(),
        };
        Err(persistent_subscription_not_found(
            &stream,
            &options.group_name,
        ))
    }

    async fn restart_subsystem(&self, request: Request<Empty>) -> Result<Response<Empty>, Status> {
        authorize(&request, Access::Write)?;
        Ok(Response::new(Empty {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advertised(service: &str) -> Vec<String> {
        supported_methods()
            .methods
            .into_iter()
            .filter(|m| m.service_name == service)
            .map(|m| m.method_name)
            .collect()
    }

    #[test]
    fn batch_append_and_all_four_persistent_subscription_management_methods_are_advertised() {
        assert!(advertised(STREAMS).contains(&"batchappend".to_string()));
        // All four or the Rust client manages persistent subscriptions over HTTP instead.
        let mut persistent = advertised(PERSISTENT);
        persistent.sort();
        assert_eq!(
            persistent,
            ["getinfo", "list", "replayparked", "restartsubsystem"]
        );
        // Not `create` (with its "all" feature): creating groups is not served.
        assert!(
            supported_methods()
                .methods
                .iter()
                .all(|m| m.method_name != "create")
        );
    }

    #[test]
    fn gossip_advertises_a_reachable_address_when_listening_on_all_interfaces() {
        let endpoint = |listening: &str, reached: Option<&str>| {
            let e = advertised_endpoint(
                listening.parse().unwrap(),
                reached.map(|r| r.parse().unwrap()),
            );
            format!("{}:{}", e.address, e.port)
        };
        assert_eq!(
            endpoint("0.0.0.0:2113", Some("10.1.2.3:2113")),
            "10.1.2.3:2113"
        );
        assert_eq!(
            endpoint("[::]:2113", Some("[fd00::5]:2113")),
            "fd00::5:2113"
        );
        assert_eq!(
            endpoint("127.0.0.1:2113", Some("127.0.0.1:2113")),
            "127.0.0.1:2113"
        );
        assert_eq!(
            endpoint("192.168.0.7:2113", Some("10.0.0.1:9999")),
            "192.168.0.7:2113"
        );
        assert_eq!(endpoint("0.0.0.0:2113", None), "0.0.0.0:2113");
    }

    #[test]
    fn the_version_is_a_non_empty_semantic_version() {
        let version = supported_methods().event_store_server_version;
        let parts: Vec<u64> = version.split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parts.len(), 3, "{version}");
        assert!(parts[0] >= 21, "{version}");
    }
}
