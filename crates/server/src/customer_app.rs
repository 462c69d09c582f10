//! `daojia.v1.CustomerApp`: the customer app backend quotes, posts, replans, cancels, reviews
//! and complains about orders and reads them back. Role `customer-app` (or `admin`).
//!
//! With end-user binding (`crate::end_user`), a call may name only its household's
//! `customer_id` and touch only its orders; `VerifyCertificate` names no household and is
//! not bound.

use daojia_domain::catalog::Catalog;
use daojia_domain::{CustomerId, OrderTerms, Subject};
use tonic::{Request, Response, Status};

use crate::auth::Role;
use crate::clock::Clock;
use crate::door;
use crate::end_user;
use crate::interceptor::caller;
use crate::limits::Limits;
use crate::min_position;
use crate::order_commands::{self, Executed};
use crate::order_quote;
use crate::order_requests::{self, OrderRequest, PostOrderInput};
use crate::order_view::order_view;
use crate::pb;
use crate::status::ApiError;
use crate::store_slot::StoreSlot;

/// The `daojia.v1.CustomerApp` service.
#[derive(Clone, Debug)]
pub struct CustomerAppService {
    store: StoreSlot,
    clock: Clock,
    terms: OrderTerms,
    limits: Limits,
}

impl CustomerAppService {
    /// A service over `store`, deciding with `clock` and posting orders under `terms` with
    /// windows within `limits`.
    pub fn new(store: StoreSlot, clock: Clock, terms: OrderTerms, limits: Limits) -> Self {
        CustomerAppService {
            store,
            clock,
            terms,
            limits,
        }
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
        caller.require(Role::CustomerApp, action)?;
        let command = OrderRequest::try_from(request.into_inner())?;
        let store = self.store.get()?;
        let done = order_commands::execute(store, &self.clock, &caller, command).await?;
        Ok(Response::new(reply(done)))
    }
}

/// The reply of a command.
pub fn reply(done: Executed) -> pb::CommandReply {
    pb::CommandReply {
        commit_position: done.position.0,
        stream_revision: done.revision.0,
        event_types: done.event_types,
        order: done
            .state
            .order
            .as_ref()
            .map(|o| order_view(o, done.revision.0)),
        replayed: done.replayed,
    }
}

#[tonic::async_trait]
impl pb::customer_app_server::CustomerApp for CustomerAppService {
    async fn post_order(
        &self,
        request: Request<pb::PostOrderRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        let caller = caller(&request)?.clone();
        caller.require(Role::CustomerApp, "post orders")?;
        let input = PostOrderInput::try_from(request.into_inner())?;
        // The window's bounds depend on now and on the service's category; an unknown service
        // is left to the domain (NOT_FOUND UNKNOWN_SERVICE).
        if let Ok(service) = Catalog::builtin().and_then(|c| c.get(&input.service)) {
            self.limits
                .check_window(input.window, service.category, self.clock.now())?;
        }
        let store = self.store.get()?;
        let standing = order_commands::customer_standing(store, input.customer).await?;
        let command = input.into_request(standing, self.terms.clone());
        let done = order_commands::execute(store, &self.clock, &caller, command).await?;
        Ok(Response::new(reply(done)))
    }

    async fn quote_order(
        &self,
        request: Request<pb::PostOrderRequest>,
    ) -> Result<Response<pb::OrderQuote>, Status> {
        let caller = caller(&request)?.clone();
        caller.require(Role::CustomerApp, "quote orders")?;
        let input = PostOrderInput::try_from(request.into_inner())?;
        // Bound to an end user, a household quotes only for itself (its standing is read).
        end_user::check_customer(caller.end_user, "customer_id", input.customer)
            .map_err(ApiError::from)?;
        let store = self.store.get()?;
        let standing = order_commands::customer_standing(store, input.customer).await?;
        let command = input.into_request(standing, self.terms.clone());
        Ok(Response::new(order_quote::quote(
            command,
            self.clock.now(),
        )?))
    }

    async fn cancel_order(
        &self,
        request: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.command(request, "cancel orders").await
    }

    async fn review_order(
        &self,
        request: Request<pb::ReviewOrderRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.command(request, "review orders").await
    }

    async fn file_complaint(
        &self,
        request: Request<pb::FileComplaintRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.command(request, "file complaints").await
    }

    async fn raise_dispute(
        &self,
        request: Request<pb::RaiseDisputeRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.command(request, "raise disputes").await
    }

    async fn report_worker_no_show(
        &self,
        request: Request<pb::ReportWorkerNoShowRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.command(request, "report no-shows").await
    }

    async fn replan_order(
        &self,
        request: Request<pb::ReplanOrderRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.command(request, "replan orders").await
    }

    async fn verify_certificate(
        &self,
        request: Request<pb::VerifyCertificateRequest>,
    ) -> Result<Response<pb::CertificateVerification>, Status> {
        caller(&request)?.require(Role::CustomerApp, "verify certificates")?;
        let store = self.store.get()?;
        let found = door::verify(store, request.into_inner(), self.clock.now()).await?;
        Ok(Response::new(found))
    }

    async fn appeal_credit(
        &self,
        request: Request<pb::CustomerAppealRequest>,
    ) -> Result<Response<pb::AppealReply>, Status> {
        let caller = caller(&request)?.clone();
        caller.require(Role::CustomerApp, "appeal credit")?;
        let r = request.into_inner();
        // A malformed id is left to the appeal's validation (INVALID_ARGUMENT).
        if let Ok(customer) = r.customer_id.parse::<CustomerId>() {
            end_user::check_customer(caller.end_user, "customer_id", customer)
                .map_err(ApiError::from)?;
        }
        let input = door::AppealInput {
            command_id: &r.command_id,
            field: "customer_id",
            appellant: &r.customer_id,
            subject: Subject::Customer,
            appeal_id: &r.appeal_id,
            evidence_event_id: &r.evidence_event_id,
            text: r.text.clone(),
        };
        let store = self.store.get()?;
        let reply = door::appeal(store, &self.clock, &caller, input).await?;
        Ok(Response::new(reply))
    }

    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let caller = caller(&request)?.clone();
        caller.require(Role::CustomerApp, "read orders")?;
        let query = request.into_inner();
        let order_id = order_requests::get_order_id(&query)?;
        let store = self.store.get()?;
        min_position::check(store, query.min_position).await?;
        let recorded = order_commands::load_stream(store, &order_id.stream_name()).await?;
        let state = order_commands::fold_order(&recorded)?;
        match (state.order, recorded.last()) {
            (Some(order), Some(last)) => {
                end_user::check_order(caller.end_user, &order).map_err(ApiError::from)?;
                Ok(Response::new(order_view(&order, last.revision.0)))
            }
            _ => Err(ApiError::not_found("order", order_id, "ORDER_NOT_FOUND").into()),
        }
    }
}
