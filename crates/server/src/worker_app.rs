//! `daojia.v1.WorkerApp`: the worker app backend accepts and declines offers, grabs orders,
//! withdraws from them, checks in and completes service for its workers. Role `worker-app`
//! (or `admin`).
//!
//! With end-user binding (`crate::end_user`), a call may name only its worker's `worker_id`
//! and touch only orders that worker was offered or holds a slot on (grabbing excepted).
//!
//! Accepting and grabbing first load the worker's credentials (profile, credit standing, valid
//! certificates; `order_commands::worker_credentials`), which the domain checks. They are
//! loaded once per request: a sanction recorded between loading and appending is not seen by
//! that one decision.

use daojia_domain::worker;
use daojia_domain::{Subject, WorkerId};
use daojia_store::Position;
use tonic::{Request, Response, Status};

use crate::auth::Role;
use crate::clock::Clock;
use crate::customer_app::reply;
use crate::door;
use crate::end_user;
use crate::interceptor::caller;
use crate::locations::LiveLocations;
use crate::notifications;
use crate::notify_hub::{NotificationStream, NotifyHubSlot};
use crate::order_commands;
use crate::order_requests::{self, OrderRequest, TakeInput};
use crate::order_view::timestamp;
use crate::pb;
use crate::read_models::ReadModelsSlot;
use crate::status::{ApiError, FieldViolation};
use crate::store_slot::StoreSlot;
use daojia_projections::ReadModels;
use daojia_store::{AllStart, Direction, EventStore};

/// The `daojia.v1.WorkerApp` service.
#[derive(Clone, Debug)]
pub struct WorkerAppService {
    store: StoreSlot,
    clock: Clock,
    locations: LiveLocations,
    reads: ReadModelsSlot,
    notify: NotifyHubSlot,
}

impl WorkerAppService {
    /// A service over `store`, deciding with `clock`; reported locations go to `locations`;
    /// notification streams learn the worker's current orders from `reads` and are served by
    /// the process's notification hub `notify` (they end when the server drains).
    pub fn new(
        store: StoreSlot,
        clock: Clock,
        locations: LiveLocations,
        reads: ReadModelsSlot,
        notify: NotifyHubSlot,
    ) -> Self {
        WorkerAppService {
            store,
            clock,
            locations,
            reads,
            notify,
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

/// How long a new notification stream waits for the read models to reach its start.
const KNOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The orders `worker` holds a slot on or has a pending offer on, per the read models.
fn known_orders(models: &ReadModels, worker: WorkerId) -> notifications::Known {
    let mut known = notifications::Known::default();
    for record in models.orders.by_worker(worker) {
        known.involved.insert(record.order.id);
    }
    // The worker's pending offers, through the matching view's index of offers by worker
    // (an open costs the worker's offers, not every open order); an offer counts while its
    // order still awaits workers.
    for open in models.matching.offered_to_worker(worker) {
        if open.open_slots().is_empty() {
            continue;
        }
        for (slot, s) in &open.order.slots {
            if s.offers.iter().any(|o| o.worker == worker) {
                known.involved.insert(open.order.id);
                known.pending.insert((open.order.id, *slot));
            }
        }
    }
    known
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

    async fn report_customer_no_show(
        &self,
        request: Request<pb::ReportCustomerNoShowRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.command(request, "report no-shows").await
    }

    async fn withdraw_from_order(
        &self,
        request: Request<pb::WithdrawFromOrderRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.command(request, "withdraw from orders").await
    }

    async fn raise_worker_dispute(
        &self,
        request: Request<pb::RaiseWorkerDisputeRequest>,
    ) -> Result<Response<pb::CommandReply>, Status> {
        self.command(request, "raise disputes").await
    }

    async fn appeal_credit(
        &self,
        request: Request<pb::WorkerAppealRequest>,
    ) -> Result<Response<pb::AppealReply>, Status> {
        let caller = caller(&request)?.clone();
        caller.require(Role::WorkerApp, "appeal credit")?;
        let r = request.into_inner();
        // A malformed id is left to the appeal's validation (INVALID_ARGUMENT).
        if let Ok(worker) = r.worker_id.parse::<WorkerId>() {
            end_user::check_worker(caller.end_user, "worker_id", worker).map_err(ApiError::from)?;
        }
        let input = door::AppealInput {
            command_id: &r.command_id,
            field: "worker_id",
            appellant: &r.worker_id,
            subject: Subject::Worker,
            appeal_id: &r.appeal_id,
            evidence_event_id: &r.evidence_event_id,
            text: r.text.clone(),
        };
        let store = self.store.get()?;
        let reply = door::appeal(store, &self.clock, &caller, input).await?;
        Ok(Response::new(reply))
    }

    async fn update_location(
        &self,
        request: Request<pb::UpdateLocationRequest>,
    ) -> Result<Response<pb::UpdateLocationReply>, Status> {
        let caller = caller(&request)?.clone();
        caller.require(Role::WorkerApp, "report locations")?;
        let r = request.into_inner();
        let mut bad = Vec::new();
        let worker: Option<WorkerId> = match r.worker_id.parse() {
            Ok(w) => Some(w),
            Err(_) if r.worker_id.is_empty() => {
                bad.push(FieldViolation::new("worker_id", "is required"));
                None
            }
            Err(_) => {
                bad.push(FieldViolation::new(
                    "worker_id",
                    "must be a UUID other than the nil UUID",
                ));
                None
            }
        };
        let location = order_requests::location(&mut bad, "location", r.location.as_ref());
        let (Some(worker), Some(location)) = (worker, location) else {
            return Err(ApiError::InvalidArgument(bad).into());
        };
        end_user::check_worker(caller.end_user, "worker_id", worker).map_err(ApiError::from)?;
        // Only registered workers' locations are kept (one short stream read).
        let store = self.store.get()?;
        if order_commands::load_stream(store, &worker::profile_stream(worker))
            .await?
            .is_empty()
        {
            return Err(ApiError::worker_not_registered(worker).into());
        }
        let until = self.locations.report(worker, location, self.clock.now());
        Ok(Response::new(pb::UpdateLocationReply {
            valid_until: Some(timestamp(until)),
        }))
    }

    type WatchNotificationsStream = NotificationStream;

    async fn watch_notifications(
        &self,
        request: Request<pb::WatchNotificationsRequest>,
    ) -> Result<Response<NotificationStream>, Status> {
        let caller = caller(&request)?.clone();
        caller.require(Role::WorkerApp, "watch notifications")?;
        let r = request.into_inner();
        let worker: WorkerId = match r.worker_id.parse() {
            Ok(w) => w,
            Err(_) => {
                let description = if r.worker_id.is_empty() {
                    "is required"
                } else {
                    "must be a UUID other than the nil UUID"
                };
                return Err(ApiError::InvalidArgument(vec![FieldViolation::new(
                    "worker_id",
                    description,
                )])
                .into());
            }
        };
        end_user::check_worker(caller.end_user, "worker_id", worker).map_err(ApiError::from)?;
        let store = self.store.get()?;
        if order_commands::load_stream(store, &worker::profile_stream(worker))
            .await?
            .is_empty()
        {
            return Err(ApiError::worker_not_registered(worker).into());
        }
        let after = r.after_position.map(Position);
        // The worker's orders as of where the stream starts (a resumed stream's position, or
        // the last committed event), so that what happens to them later is reported.
        let start = match after {
            Some(p) => Some(p),
            None => store
                .read_all(Direction::Backwards, AllStart::Edge, 1, None)
                .await
                .map_err(ApiError::from)?
                .events
                .first()
                .map(|e| e.position),
        };
        let reads = self.reads.get()?;
        let find = |m: &ReadModels| known_orders(m, worker);
        let known = match start {
            Some(p) => reads
                .read_at(p, KNOWN_WAIT, find)
                .await
                .map_err(ApiError::from)?,
            None => reads.read(find),
        };
        // History is caught up in the background by the hub, not here.
        let stream = self.notify.get()?.watch(worker, start, known)?;
        Ok(Response::new(stream))
    }
}
