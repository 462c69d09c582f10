//! `daojia.v1.Meta`: the server's version and head position, where the read models and the
//! reactor are, and the caller's role and actor. Ops tooling calls `ServerInfo` to check that
//! a token works and which role it carries, and to watch lag.

use daojia_store::EventStore;
use tonic::{Request, Response, Status};

use crate::auth::Role;
use crate::interceptor::caller;
use crate::pb;
use crate::progress::Progress;
use crate::read_models::ReadModelsSlot;
use crate::store_slot::StoreSlot;

/// The `daojia.v1.Meta` service.
#[derive(Clone, Debug)]
pub struct MetaService {
    store: StoreSlot,
    reads: ReadModelsSlot,
    progress: Progress,
}

impl MetaService {
    /// A service answering from `store`, `reads` and the background tasks' `progress` once
    /// they are there.
    pub fn new(store: StoreSlot, reads: ReadModelsSlot, progress: Progress) -> Self {
        MetaService {
            store,
            reads,
            progress,
        }
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
        let read_models = match self.reads.get() {
            Ok(projector) => {
                let progress = projector.progress();
                let behind = projector.lag().await.map_or(0, |lag| lag.behind);
                Some(pb::ReadModelsStatus {
                    applied_position: progress.applied.0,
                    behind,
                    caught_up: progress.caught_up,
                    checkpoint_position: progress.checkpoint.map(|p| p.0),
                    restored_from: progress.restored_from.map(|p| p.0),
                    rebuilds: progress.rebuilds,
                })
            }
            Err(_) => None,
        };
        let reactor_position = self.progress.reactor_position().map(|p| p.0);
        Ok(Response::new(pb::ServerInfoResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            role: pb::Role::from(caller.role).into(),
            actor: caller.actor.to_string(),
            head_position: head.0,
            read_models,
            reactor_position,
        }))
    }
}
