//! `daojia.v1.WorkerApp`: the worker app backend declines offers, checks in and completes
//! service for its workers. Role `worker-app` (or `admin`).
//!
//! Accepting offers and grabbing orders join this service once the server can load a worker's
//! credentials (standing, valid certificates, signed contract), which the domain checks.

use tonic::{Request, Response, Status};

use crate::auth::Role;
use crate::clock::Clock;
use crate::customer_app::reply;
use crate::interceptor::caller;
use crate::order_commands;
use crate::order_requests::OrderRequest;
use crate::pb;
use crate::status::ApiError;
use crate::store_slot::StoreSlot;

/// The `daojia.v1.WorkerApp` service.
#[derive(Clone, Debug)]
pub struct WorkerAppService {
    store: StoreSlot,
    clock: Clock,
}

impl WorkerAppService {
    /// A service over `store`, deciding with `clock`.
    pub fn new(store: StoreSlot, clock: Clock) -> Self {
        WorkerAppService { store, clock }
    }

    async fn command<R>(
        &self,
        request: Request<R>,
        action: &'static str,
    ) -> Result<Response<pb::CommandReply>, Status>
    where
        OrderRequest: TryFrom<R, Error = ApiError>,
    {
        let caller = caller(&request)?.clone();
        caller.require(Role::WorkerApp, action)?;
        let command = OrderRequest::try_from(request.into_inner())?;
        let store = self.store.get()?;
        let done = order_commands::execute(store, &self.clock, &caller, command).await?;
        Ok(Response::new(reply(done)))
    }
}

#[tonic::async_trait]
impl pb::worker_app_server::WorkerApp for WorkerAppService {
    async fn decline_offer(
        &self,
        request: Request<pb::DeclineOfferRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.command(request, "decline offers").await
    }

    async fn check_in(
        &self,
        request: Request<pb::CheckInRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.command(request, "check in").await
    }

    async fn complete_service(
        &self,
        request: Request<pb::CompleteServiceRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.command(request, "complete service").await
    }
}
