//! `daojia.v1.Meta`: the server's version and head position, and the caller's role and actor.
//! Ops tooling calls `ServerInfo` to check that a token works and which role it carries.

use daojia_store::EventStore;
use tonic::{Request, Response, Status};

use crate::auth::Role;
use crate::interceptor::caller;
use crate::pb;
use crate::store_slot::StoreSlot;

/// The `daojia.v1.Meta` service.
#[derive(Clone, Debug)]
pub struct MetaService {
    store: StoreSlot,
}

impl MetaService {
    /// A service answering from `store` once it is open.
    pub fn new(store: StoreSlot) -> Self {
        MetaService { store }
    }
}

impl From<Role> for pb::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::CustomerApp => pb::Role::CustomerApp,
            Role::WorkerApp => pb::Role::WorkerApp,
            Role::Ops => pb::Role::Ops,
            Role::Analytics => pb::Role::Analytics,
            Role::Admin => pb::Role::Admin,
        }
    }
}

#[tonic::async_trait]
impl pb::meta_server::Meta for MetaService {
    async fn server_info(
        &self,
        request: Request<pb::ServerInfoRequest>,
    ) -> Result<Response<pb::ServerInfoResponse>, Status> {
        let caller = caller(&request)?;
        let head = self
            .store
            .get()?
            .head()
            .await
            .map_err(crate::ApiError::from)?;
        Ok(Response::new(pb::ServerInfoResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            role: pb::Role::from(caller.role).into(),
            actor: caller.actor.to_string(),
            head_position: head.0,
        }))
    }
}
