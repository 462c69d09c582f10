//! `daojia.v1.WorkerApp`: the worker app backend accepts and declines offers, grabs orders,
//! checks in and completes service for its workers. Role `worker-app` (or `admin`).
//!
//! Accepting and grabbing first load the worker's credentials (profile, credit standing, valid
//! certificates; `order_commands::worker_credentials`), which the domain checks. They are
//! loaded once per request: a sanction recorded between loading and appending is not seen by
//! that one decision.

use tonic::{Request, Response, Status};

use crate::auth::Role;
use crate::clock::Clock;
use crate::customer_app::reply;
use crate::interceptor::caller;
use crate::order_commands;
use crate::order_requests::{OrderRequest, TakeInput};
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

    async fn take<R>(
        &self,
        request: Request<R>,
        action: &'static str,
    ) -> Result<Response<pb::CommandReply>, Status>
    where
        TakeInput: TryFrom<R, Error = ApiError>,
    {
        let caller = caller(&request)?.clone();
        caller.require(Role::WorkerApp, action)?;
        let input = TakeInput::try_from(request.into_inner())?;
        let store = self.store.get()?;
        let credentials =
            order_commands::worker_credentials(store, input.worker, self.clock.now()).await?;
        let command = input.into_request(credentials);
        let done = order_commands::execute(store, &self.clock, &caller, command).await?;
        Ok(Response::new(reply(done)))
    }
}

#[tonic::async_trait]
impl pb::worker_app_server::WorkerApp for WorkerAppService {
    async fn accept_offer(
        &self,
        request: Request<pb::AcceptOfferRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.take(request, "accept offers").await
    }

    async fn grab_order(
        &self,
        request: Request<pb::GrabOrderRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.take(request, "grab orders").await
    }

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
