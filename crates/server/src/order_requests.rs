//! The API boundary of the order commands: `TryFrom<pb::…Request>` turns each daojia.v1
//! request into domain values, validating every field and listing every bad one as a field
//! violation (INVALID_ARGUMENT) before anything is loaded or decided (STYLE.md rule 9).
//!
//! What only the aggregate can judge (a window already started, text length against the
//! order's rules, quantity limits of the service's pricing unit) is left to `decide`, whose
//! errors map to the same statuses in `status.rs`.

use std::str::FromStr;

use daojia_domain::order::{
    Checklist, ComplaintCategory, DispatchMode, GeoPoint, NoShow, Party, PostOrder, ReviewTag,
    ServiceWindow, SlotIndex, Stars, WorkerCredentials,
};
use daojia_domain::{
    Catalog, CustomerId, DisputeId, DomainError, EventId, OrderCommand, OrderId, OrderTerms,
    ServiceCode, Standing, Timestamp, WorkerId,
};

use crate::limits::MAX_REVIEW_TAGS;
use crate::pb;
use crate::status::{ApiError, FieldViolation};

/// The idempotency key of a command: a client-chosen, non-nil UUID. The ids of the events the
/// command appends are derived from it, so a retry finds them (see `order_commands`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommandId(u128);

impl CommandId {
    /// The key as a 128-bit number.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// The key that is `id` (admin commands parse it as an event id).
    pub fn from_event_id(id: EventId) -> Self {
        CommandId(id.uuid().as_u128())
    }

    /// A key derived deterministically from `seed` and `salt`, for commands the server issues
    /// itself in reaction to an event (the event's id is the seed): reacting twice to the same
    /// event yields the same key, so the second reaction finds the first one's events.
    ///
    /// FNV-1a over the seed's bytes and the salt, 128-bit variant; never the nil UUID.
    pub fn derived(seed: u128, salt: &[u8]) -> Self {
        const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
        const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
        let hash = seed
            .to_le_bytes()
            .iter()
            .chain(salt)
            .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME));
        CommandId(hash.max(1))
    }

    /// A fixed key, for tests.
    #[cfg(test)]
    pub fn from_u128_for_tests(value: u128) -> Self {
        CommandId(value)
    }
}

impl std::fmt::Display for CommandId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        EventId::from_u128(self.0).fmt(f)
    }
}

/// A validated command on one order.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderRequest {
    /// The idempotency key.
    pub command_id: CommandId,
    /// The order the command is for.
    pub order_id: OrderId,
    /// The domain command.
    pub command: OrderCommand,
}

/// A validated `PostOrder`; the customer's standing and the order terms are added by the
/// handler (from the customer's credit stream and the configuration) to make the command.
#[derive(Clone, Debug, PartialEq)]
pub struct PostOrderInput {
    /// The idempotency key.
    pub command_id: CommandId,
    /// The new order.
    pub order_id: OrderId,
    /// The posting customer.
    pub customer: CustomerId,
    /// The service type (known to the catalogue).
    pub service: ServiceCode,
    /// Units.
    pub quantity: u32,
    /// Workers.
    pub workers: u32,
    /// When.
    pub window: ServiceWindow,
    /// Where.
    pub location: GeoPoint,
    /// How workers are found.
    pub dispatch: DispatchMode,
}

impl PostOrderInput {
    /// The domain command, with what the request cannot say.
    pub fn into_request(self, customer_standing: Standing, terms: OrderTerms) -> OrderRequest {
        OrderRequest {
            command_id: self.command_id,
            order_id: self.order_id,
            command: OrderCommand::Post(Box::new(PostOrder {
                order_id: self.order_id,
                customer: self.customer,
                customer_standing,
                service: self.service,
                quantity: self.quantity,
                workers: self.workers,
                window: self.window,
                location: self.location,
                dispatch: self.dispatch,
                terms,
            })),
        }
    }
}

/// Bad fields found so far. Every check that records a violation returns `None`, so a request
/// whose checks all returned `Some` has none.
#[derive(Debug, Default)]
struct Fields(Vec<FieldViolation>);

/// The seconds google.protobuf.Timestamp allows: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
const PROTO_TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

impl Fields {
    fn violation<T>(&mut self, field: &str, description: impl Into<String>) -> Option<T> {
        self.0.push(FieldViolation::new(field, description));
        None
    }

    fn required<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        match value {
            Some(v) => Some(v),
            None => self.violation(field, "is required"),
        }
    }

    fn id<T: FromStr<Err = DomainError>>(&mut self, field: &str, value: &str) -> Option<T> {
        if value.is_empty() {
            return self.violation(field, "is required");
        }
        match value.parse() {
            Ok(id) => Some(id),
            Err(_) => self.violation(field, "must be a UUID other than the nil UUID"),
        }
    }

    fn command_id(&mut self, value: &str) -> Option<CommandId> {
        self.id::<EventId>("command_id", value)
            .map(|id| CommandId(id.uuid().as_u128()))
    }

    fn domain<T>(&mut self, field: &str, value: Result<T, DomainError>) -> Option<T> {
        match value {
            Ok(v) => Some(v),
            Err(e) => self.violation(field, e.to_string()),
        }
    }

    fn timestamp(
        &mut self,
        field: &str,
        value: Option<&prost_types::Timestamp>,
    ) -> Option<Timestamp> {
        let ts = self.required(field, value)?;
        if !(0..1_000_000_000).contains(&ts.nanos) {
            return self.violation(field, "nanos must be within [0, 999999999]");
        }
        if !PROTO_TIMESTAMP_SECONDS.contains(&ts.seconds) {
            return self.violation(field, "must be within years 0001 to 9999");
        }
        // In range by the checks above: |seconds| < 2.6e11, so the millis fit an i64.
        Some(Timestamp(
            ts.seconds * 1_000 + i64::from(ts.nanos / 1_000_000),
        ))
    }

    /// A WGS-84 position: each coordinate out of range is its own violation (`location.lat`,
    /// `location.lon`), NaN included.
    fn location(&mut self, field: &str, value: Option<&pb::LatLon>) -> Option<GeoPoint> {
        let Some(p) = value else {
            return self.violation(field, "is required");
        };
        let lat_ok = (-90.0..=90.0).contains(&p.lat);
        let lon_ok = (-180.0..=180.0).contains(&p.lon);
        if !lat_ok {
            self.violation::<()>(
                &format!("{field}.lat"),
                format!("{} is not a WGS-84 latitude within [-90, 90]", p.lat),
            );
        }
        if !lon_ok {
            self.violation::<()>(
                &format!("{field}.lon"),
                format!("{} is not a WGS-84 longitude within [-180, 180]", p.lon),
            );
        }
        if !(lat_ok && lon_ok) {
            return None;
        }
        match GeoPoint::new(p.lat, p.lon) {
            Ok(point) => Some(point),
            Err(e) => self.violation(field, e.to_string()),
        }
    }

    fn into_error(self) -> ApiError {
        ApiError::InvalidArgument(self.0)
    }

    /// The request, if every field was good (`command` is `None` when one of its own fields
    /// was bad).
    fn order_request(
        self,
        command_id: Option<CommandId>,
        order_id: Option<OrderId>,
        command: Option<OrderCommand>,
    ) -> Result<OrderRequest, ApiError> {
        match (command_id, order_id, command) {
            (Some(command_id), Some(order_id), Some(command)) if self.0.is_empty() => {
                Ok(OrderRequest {
                    command_id,
                    order_id,
                    command,
                })
            }
            _ => Err(self.into_error()),
        }
    }
}

impl TryFrom<pb::PostOrderRequest> for PostOrderInput {
    type Error = ApiError;

    fn try_from(r: pb::PostOrderRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let customer = f.id("customer_id", &r.customer_id);
        let service = if r.service_code.is_empty() {
            f.violation("service_code", "is required")
        } else {
            f.domain("service_code", r.service_code.parse::<ServiceCode>())
                .and_then(|code| {
                    let known = Catalog::builtin().and_then(|c| c.get(&code).map(|_| ()));
                    match known {
                        Ok(()) => Some(code),
                        Err(e) => f.violation("service_code", e.to_string()),
                    }
                })
        };
        let quantity = match r.quantity {
            0 => f.violation("quantity", "must be at least 1"),
            q => Some(q),
        };
        let workers = match r.workers {
            0 => f.violation("workers", "must be at least 1"),
            w => Some(w),
        };
        let start = f.timestamp("window_start", r.window_start.as_ref());
        let end = f.timestamp("window_end", r.window_end.as_ref());
        let window = match (start, end) {
            (Some(start), Some(end)) if end <= start => {
                f.violation("window_end", "must be after window_start")
            }
            (Some(start), Some(end)) => Some(ServiceWindow { start, end }),
            _ => None,
        };
        let location = f.location("location", r.location.as_ref());
        let dispatch = match r.dispatch {
            None | Some(pb::post_order_request::Dispatch::Platform(_)) => {
                Some(DispatchMode::Platform)
            }
            Some(pb::post_order_request::Dispatch::Emergency(_)) => Some(DispatchMode::Emergency),
            Some(pb::post_order_request::Dispatch::GrabPool(g)) => f
                .timestamp("grab_pool.deadline", g.deadline.as_ref())
                .map(|deadline| DispatchMode::GrabPool { deadline }),
            Some(pb::post_order_request::Dispatch::Preferred(p)) => f
                .id("preferred.worker_id", &p.worker_id)
                .map(|worker| DispatchMode::Preferred { worker }),
        };
        let (
            Some(command_id),
            Some(order_id),
            Some(customer),
            Some(service),
            Some(quantity),
            Some(workers),
            Some(window),
            Some(location),
            Some(dispatch),
        ) = (
            command_id, order_id, customer, service, quantity, workers, window, location, dispatch,
        )
        else {
            return Err(f.into_error());
        };
        Ok(PostOrderInput {
            command_id,
            order_id,
            customer,
            service,
            quantity,
            workers,
            window,
            location,
            dispatch,
        })
    }
}

impl TryFrom<pb::CancelOrderRequest> for OrderRequest {
    type Error = ApiError;

    fn try_from(r: pb::CancelOrderRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let command = f
            .id("customer_id", &r.customer_id)
            .map(|customer| OrderCommand::Cancel {
                by: Party::Customer(customer),
                reason: r.reason,
            });
        f.order_request(command_id, order_id, command)
    }
}

impl TryFrom<pb::ReplanOrderRequest> for OrderRequest {
    type Error = ApiError;

    /// `workers` is checked against the order terms' maximum by `decide` (the terms are the
    /// order's own, fixed when it was posted).
    fn try_from(r: pb::ReplanOrderRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let customer = f.id("customer_id", &r.customer_id);
        let workers = match r.workers {
            0 => f.violation("workers", "must be at least 1"),
            w => Some(w),
        };
        let command = customer
            .zip(workers)
            .map(|(customer, workers)| OrderCommand::Replan { customer, workers });
        f.order_request(command_id, order_id, command)
    }
}

fn review_tag(tag: i32) -> Option<ReviewTag> {
    match pb::ReviewTag::try_from(tag).ok()? {
        pb::ReviewTag::Unspecified => None,
        pb::ReviewTag::Late => Some(ReviewTag::Late),
        pb::ReviewTag::ToolsNotDisinfected => Some(ReviewTag::ToolsNotDisinfected),
        pb::ReviewTag::Careless => Some(ReviewTag::Careless),
        pb::ReviewTag::Rude => Some(ReviewTag::Rude),
        pb::ReviewTag::Excellent => Some(ReviewTag::Excellent),
        pb::ReviewTag::Punctual => Some(ReviewTag::Punctual),
        pb::ReviewTag::Professional => Some(ReviewTag::Professional),
    }
}

impl TryFrom<pb::ReviewOrderRequest> for OrderRequest {
    type Error = ApiError;

    fn try_from(r: pb::ReviewOrderRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let customer = f.id("customer_id", &r.customer_id);
        let stars = match u8::try_from(r.stars) {
            Ok(s) => f.domain("stars", Stars::new(s)),
            Err(_) => f.violation("stars", format!("rating {} out of range 1..=5", r.stars)),
        };
        // At most MAX_REVIEW_TAGS known tags, each once: a repeated tag is refused rather
        // than collapsed, so what the customer sent is what is recorded.
        let mut tags = Some(Vec::with_capacity(r.tags.len().min(MAX_REVIEW_TAGS)));
        if r.tags.len() > MAX_REVIEW_TAGS {
            tags = f.violation(
                "tags",
                format!("at most {MAX_REVIEW_TAGS} tags, got {}", r.tags.len()),
            );
        } else {
            for (i, &tag) in r.tags.iter().enumerate() {
                match review_tag(tag) {
                    Some(_) if r.tags[..i].contains(&tag) => {
                        tags = f.violation(
                            &format!("tags[{i}]"),
                            format!("review tag {tag} is repeated; send each tag once"),
                        )
                    }
                    Some(t) => tags.iter_mut().for_each(|v| v.push(t)),
                    None => {
                        tags =
                            f.violation(&format!("tags[{i}]"), format!("unknown review tag {tag}"))
                    }
                }
            }
        }
        let text = Some(r.text);
        let (Some(command_id), Some(order_id), Some(customer), Some(stars), Some(tags), Some(text)) =
            (command_id, order_id, customer, stars, tags, text)
        else {
            return Err(f.into_error());
        };
        Ok(OrderRequest {
            command_id,
            order_id,
            command: OrderCommand::Review {
                customer,
                stars,
                tags,
                text,
            },
        })
    }
}

fn complaint_category(category: i32) -> Option<ComplaintCategory> {
    match pb::ComplaintCategory::try_from(category).ok()? {
        pb::ComplaintCategory::Unspecified => None,
        pb::ComplaintCategory::Quality => Some(ComplaintCategory::Quality),
        pb::ComplaintCategory::Conduct => Some(ComplaintCategory::Conduct),
        pb::ComplaintCategory::Damage => Some(ComplaintCategory::Damage),
        pb::ComplaintCategory::Safety => Some(ComplaintCategory::Safety),
        pb::ComplaintCategory::Pricing => Some(ComplaintCategory::Pricing),
    }
}

impl TryFrom<pb::RaiseDisputeRequest> for OrderRequest {
    type Error = ApiError;

    fn try_from(r: pb::RaiseDisputeRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let dispute_id = f.id("dispute_id", &r.dispute_id);
        let by = f.id("customer_id", &r.customer_id).map(Party::Customer);
        let command = raise_dispute(dispute_id, by, r.reason);
        f.order_request(command_id, order_id, command)
    }
}

impl TryFrom<pb::RaiseWorkerDisputeRequest> for OrderRequest {
    type Error = ApiError;

    fn try_from(r: pb::RaiseWorkerDisputeRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let dispute_id = f.id("dispute_id", &r.dispute_id);
        let by = f.id("worker_id", &r.worker_id).map(Party::Worker);
        let command = raise_dispute(dispute_id, by, r.reason);
        f.order_request(command_id, order_id, command)
    }
}

fn raise_dispute(
    dispute_id: Option<DisputeId>,
    by: Option<Party>,
    reason: String,
) -> Option<OrderCommand> {
    dispute_id
        .zip(by)
        .map(|(dispute_id, by)| OrderCommand::RaiseDispute {
            dispute_id,
            by,
            reason,
        })
}

impl TryFrom<pb::WithdrawFromOrderRequest> for OrderRequest {
    type Error = ApiError;

    /// The reason's length is checked by `decide`, like a customer's cancellation reason.
    fn try_from(r: pb::WithdrawFromOrderRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let command = f
            .id("worker_id", &r.worker_id)
            .map(|worker| OrderCommand::Cancel {
                by: Party::Worker(worker),
                reason: r.reason,
            });
        f.order_request(command_id, order_id, command)
    }
}

impl TryFrom<pb::ReportWorkerNoShowRequest> for OrderRequest {
    type Error = ApiError;

    fn try_from(r: pb::ReportWorkerNoShowRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let slot = SlotIndex(r.slot);
        let command = Some(OrderCommand::ReportNoShow(NoShow::Worker { slot }));
        f.order_request(command_id, order_id, command)
    }
}

impl TryFrom<pb::ReportCustomerNoShowRequest> for OrderRequest {
    type Error = ApiError;

    fn try_from(r: pb::ReportCustomerNoShowRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let command = f
            .id("worker_id", &r.worker_id)
            .map(|reported_by| OrderCommand::ReportNoShow(NoShow::Customer { reported_by }));
        f.order_request(command_id, order_id, command)
    }
}

impl TryFrom<pb::FileComplaintRequest> for OrderRequest {
    type Error = ApiError;

    fn try_from(r: pb::FileComplaintRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let complaint_id = f.id("complaint_id", &r.complaint_id);
        let customer = f.id("customer_id", &r.customer_id);
        let against = f.id("worker_id", &r.worker_id);
        let category = match complaint_category(r.category) {
            Some(c) => Some(c),
            None => f.violation(
                "category",
                "is required: one of the COMPLAINT_CATEGORY_ values",
            ),
        };
        let text = Some(r.text);
        let (
            Some(command_id),
            Some(order_id),
            Some(complaint_id),
            Some(customer),
            Some(against),
            Some(category),
            Some(text),
        ) = (
            command_id,
            order_id,
            complaint_id,
            customer,
            against,
            category,
            text,
        )
        else {
            return Err(f.into_error());
        };
        Ok(OrderRequest {
            command_id,
            order_id,
            command: OrderCommand::FileComplaint {
                complaint_id,
                customer,
                against,
                category,
                text,
            },
        })
    }
}

/// How a worker takes a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// Accepting the offer of this slot.
    Accept(SlotIndex),
    /// Grabbing the first open slot from the grab pool.
    Grab,
}

/// A validated `AcceptOffer` or `GrabOrder`; the worker's credentials are added by the handler
/// (loaded from the worker's profile, credit and certificate streams) to make the command.
#[derive(Clone, Debug, PartialEq)]
pub struct TakeInput {
    /// The idempotency key.
    pub command_id: CommandId,
    /// The order.
    pub order_id: OrderId,
    /// The worker.
    pub worker: WorkerId,
    /// Accept or grab.
    pub take: Take,
}

impl TakeInput {
    /// The domain command, with the worker's credentials.
    pub fn into_request(self, worker: WorkerCredentials) -> OrderRequest {
        let command = match self.take {
            Take::Accept(slot) => OrderCommand::Accept { slot, worker },
            Take::Grab => OrderCommand::Grab { worker },
        };
        OrderRequest {
            command_id: self.command_id,
            order_id: self.order_id,
            command,
        }
    }
}

impl TryFrom<pb::AcceptOfferRequest> for TakeInput {
    type Error = ApiError;

    fn try_from(r: pb::AcceptOfferRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let worker = f.id("worker_id", &r.worker_id);
        let (Some(command_id), Some(order_id), Some(worker)) = (command_id, order_id, worker)
        else {
            return Err(f.into_error());
        };
        Ok(TakeInput {
            command_id,
            order_id,
            worker,
            take: Take::Accept(SlotIndex(r.slot)),
        })
    }
}

impl TryFrom<pb::GrabOrderRequest> for TakeInput {
    type Error = ApiError;

    fn try_from(r: pb::GrabOrderRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let worker = f.id("worker_id", &r.worker_id);
        let (Some(command_id), Some(order_id), Some(worker)) = (command_id, order_id, worker)
        else {
            return Err(f.into_error());
        };
        Ok(TakeInput {
            command_id,
            order_id,
            worker,
            take: Take::Grab,
        })
    }
}

impl TryFrom<pb::DeclineOfferRequest> for OrderRequest {
    type Error = ApiError;

    fn try_from(r: pb::DeclineOfferRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let slot = SlotIndex(r.slot);
        let command = f
            .id("worker_id", &r.worker_id)
            .map(|worker| OrderCommand::Decline { slot, worker });
        f.order_request(command_id, order_id, command)
    }
}

impl TryFrom<pb::CheckInRequest> for OrderRequest {
    type Error = ApiError;

    fn try_from(r: pb::CheckInRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let worker = f.id("worker_id", &r.worker_id);
        let slot = SlotIndex(r.slot);
        let location = f.location("location", r.location.as_ref());
        let command = worker
            .zip(location)
            .map(|(worker, location)| OrderCommand::CheckIn {
                slot,
                worker,
                location,
            });
        f.order_request(command_id, order_id, command)
    }
}

impl TryFrom<pb::CompleteServiceRequest> for OrderRequest {
    type Error = ApiError;

    fn try_from(r: pb::CompleteServiceRequest) -> Result<Self, ApiError> {
        let mut f = Fields::default();
        let command_id = f.command_id(&r.command_id);
        let order_id = f.id("order_id", &r.order_id);
        let worker = f.id("worker_id", &r.worker_id);
        let slot = SlotIndex(r.slot);
        let checklist = f.required("checklist", r.checklist).map(|c| Checklist {
            tools_disinfected: c.tools_disinfected,
            area_tidied: c.area_tidied,
            customer_confirmed: c.customer_confirmed,
        });
        let command = worker
            .zip(checklist)
            .map(|(worker, checklist)| OrderCommand::Complete {
                slot,
                worker,
                checklist,
            });
        f.order_request(command_id, order_id, command)
    }
}

/// A WGS-84 position field outside the order requests (`WorkerApp.UpdateLocation`), checked as
/// they check theirs; what is wrong is added to `bad`.
pub fn location(
    bad: &mut Vec<FieldViolation>,
    field: &str,
    value: Option<&pb::LatLon>,
) -> Option<GeoPoint> {
    let mut f = Fields(std::mem::take(bad));
    let point = f.location(field, value);
    *bad = f.0;
    point
}

/// The order id of a `GetOrder`.
pub fn get_order_id(r: &pb::GetOrderRequest) -> Result<OrderId, ApiError> {
    let mut f = Fields::default();
    f.id("order_id", &r.order_id).ok_or_else(|| f.into_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(n: u128) -> String {
        OrderId::from_u128(n).to_string()
    }

    fn post() -> pb::PostOrderRequest {
        pb::PostOrderRequest {
            command_id: uuid(1),
            order_id: uuid(2),
            customer_id: uuid(3),
            service_code: "C01".into(),
            quantity: 3,
            workers: 1,
            window_start: Some(prost_types::Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
            window_end: Some(prost_types::Timestamp {
                seconds: 1_800_010_800,
                nanos: 0,
            }),
            location: Some(pb::LatLon {
                lat: 27.95,
                lon: 116.36,
            }),
            dispatch: None,
        }
    }

    fn fields(e: ApiError) -> Vec<String> {
        match e {
            ApiError::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("not INVALID_ARGUMENT: {other:?}"),
        }
    }

    #[test]
    fn a_good_post_converts() {
        let input = PostOrderInput::try_from(post()).unwrap();
        assert_eq!(input.order_id, OrderId::from_u128(2));
        assert_eq!(input.window.start, Timestamp(1_800_000_000_000));
        assert_eq!(input.dispatch, DispatchMode::Platform);
    }

    #[test]
    fn every_bad_field_is_listed() {
        let mut r = post();
        r.command_id = "nope".into();
        r.order_id = String::new();
        r.service_code = "ZZ9".into();
        r.location = Some(pb::LatLon {
            lat: 91.0,
            lon: 0.0,
        });
        r.window_end = r.window_start;
        r.quantity = 0;
        let got = fields(PostOrderInput::try_from(r).unwrap_err());
        assert_eq!(
            got,
            [
                "command_id",
                "order_id",
                "service_code",
                "quantity",
                "window_end",
                "location.lat"
            ]
        );
    }

    #[test]
    fn replan_needs_at_least_one_worker() {
        let r = pb::ReplanOrderRequest {
            command_id: uuid(1),
            order_id: "not-a-uuid".into(),
            customer_id: uuid(3),
            workers: 0,
        };
        assert_eq!(
            fields(OrderRequest::try_from(r).unwrap_err()),
            ["order_id", "workers"]
        );
    }

    #[test]
    fn withdrawal_is_a_cancel_by_the_worker() {
        let r = pb::WithdrawFromOrderRequest {
            command_id: uuid(1),
            order_id: uuid(2),
            worker_id: uuid(4),
            reason: "sick".into(),
        };
        let got = OrderRequest::try_from(r).unwrap();
        assert_eq!(
            got.command,
            OrderCommand::Cancel {
                by: Party::Worker(WorkerId::from_u128(4)),
                reason: "sick".into(),
            }
        );
        let bad = pb::WithdrawFromOrderRequest {
            command_id: String::new(),
            worker_id: OrderId::from_u128(0).to_string(),
            ..Default::default()
        };
        assert_eq!(
            fields(OrderRequest::try_from(bad).unwrap_err()),
            ["command_id", "order_id", "worker_id"]
        );
    }

    #[test]
    fn review_checks_stars_and_tags() {
        let r = pb::ReviewOrderRequest {
            command_id: uuid(1),
            order_id: uuid(2),
            customer_id: uuid(3),
            stars: 6,
            tags: vec![pb::ReviewTag::Late as i32, 99],
            text: String::new(),
        };
        assert_eq!(
            fields(OrderRequest::try_from(r).unwrap_err()),
            ["stars", "tags[1]"]
        );
    }
}
