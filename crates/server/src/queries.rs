//! `daojia.v1.Queries`: orders, worker profiles, credit, red and black lists, ops desks and
//! KPIs, answered from the read models with read-your-writes (`min_position`, bounded wait)
//! and the read models' position in every reply.
//!
//! Who sees what (PERMISSION_DENIED otherwise; `admin` sees everything):
//!
//! | query | roles |
//! |---|---|
//! | ListCustomerOrders | customer-app, ops |
//! | ListWorkerOrders, GetWorkerProfile | worker-app, ops |
//! | GetCredit | ops; customer-app for customers; worker-app for workers |
//! | ListRedBlack, ListOpenFollowUps, ListOpenComplaints, ListOpenDisputes | ops |
//! | GetKpis | analytics, ops |
//!
//! With end-user binding (`crate::end_user`), an app-role query may name only its end user's
//! `customer_id`, `worker_id` or credit `subject.id`.

use std::str::FromStr;
use std::time::Duration;

use daojia_domain::credit::{Subject, SubjectKind};
use daojia_domain::{CompanyId, CustomerId, Timestamp, WorkerId};
use daojia_projections::ReadModels;
use tonic::{Request, Response, Status};

use crate::auth::{Caller, Role};
use crate::clock::Clock;
use crate::end_user;
use crate::interceptor::caller;
use crate::min_position;
use crate::pb;
use crate::query_view as view;
use crate::read_models::ReadModelsSlot;
use crate::status::ApiError;
use crate::store_slot::StoreSlot;

/// Page size when the request gives none.
pub const DEFAULT_PAGE_SIZE: usize = 50;

/// The largest page; larger requests are lowered to it.
pub const MAX_PAGE_SIZE: usize = 500;

/// The `daojia.v1.Queries` service.
#[derive(Clone, Debug)]
pub struct QueriesService {
    store: StoreSlot,
    reads: ReadModelsSlot,
    clock: Clock,
    wait: Duration,
}

impl QueriesService {
    /// A service over the read models in `reads` of the events in `store`, waiting at most
    /// `wait` for a `min_position`.
    pub fn new(store: StoreSlot, reads: ReadModelsSlot, clock: Clock, wait: Duration) -> Self {
        QueriesService {
            store,
            reads,
            clock,
            wait,
        }
    }

    /// Waits until the read models have applied every event at or below `min_position`, then
    /// answers `query` and the position the answer reflects. A `min_position` past the
    /// committed end is FAILED_PRECONDITION at once (see [`crate::min_position`]).
    async fn read<R>(
        &self,
        min_position: u64,
        query: impl FnOnce(&ReadModels) -> R,
    ) -> Result<(R, u64), ApiError> {
        let projector = self.reads.get()?;
        if min_position > 0 {
            min_position::check(self.store.get()?, min_position).await?;
            let last = projector.lag().await?.head;
            let target = min_position::read_model_target(min_position, last);
            projector.wait_for(target, self.wait).await?;
        }
        // The position is published after its event is applied, so reading it under the model's
        // lock gives a position whose every event the answer includes.
        Ok(projector.read(|models| (query(models), projector.position().0)))
    }
}

/// PERMISSION_DENIED unless the caller is `admin` or has one of `roles`.
fn allow(caller: &Caller, roles: &[Role], action: &'static str) -> Result<(), ApiError> {
    if caller.role == Role::Admin || roles.contains(&caller.role) {
        Ok(())
    } else {
        Err(ApiError::PermissionDenied {
            role: caller.role,
            action,
        })
    }
}

/// Which part of a list a request asks for: `page_token` is the offset of the first entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Page {
    offset: usize,
    size: usize,
}

impl Page {
    fn parse(page_size: u32, page_token: &str) -> Result<Page, ApiError> {
        let size = match usize::try_from(page_size).unwrap_or(MAX_PAGE_SIZE) {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let offset = if page_token.is_empty() {
            0
        } else {
            page_token.parse::<usize>().map_err(|_| {
                ApiError::invalid_field(
                    "page_token",
                    "not a token from a previous reply's next_page_token",
                )
            })?
        };
        Ok(Page { offset, size })
    }

    /// This page of `items`, converted, and the next page's token (empty on the last page).
    fn take<T, U>(
        self,
        items: impl IntoIterator<Item = T>,
        convert: impl FnMut(T) -> U,
    ) -> (Vec<U>, String) {
        let mut rest = items.into_iter().skip(self.offset);
        let page: Vec<U> = rest.by_ref().take(self.size).map(convert).collect();
        let next = if rest.next().is_some() {
            (self.offset + self.size).to_string()
        } else {
            String::new()
        };
        (page, next)
    }
}

/// Whether the read models know `subject`: a worker from their registration on, a company once
/// a worker was registered with it, a customer once they posted an order; a subject with a
/// credit account (events naming them on their credit stream) is known too. Queries answer
/// NOT_FOUND for anyone else, and ops commands on companies and customers check the same.
pub(crate) fn known_subject(models: &ReadModels, subject: Subject) -> bool {
    if models.credit.account(subject).is_some() && subject.kind() != SubjectKind::Worker {
        return true;
    }
    match subject {
        Subject::Worker(w) => registered(models, w),
        Subject::Company(c) => models
            .matching
            .workers()
            .any(|w| w.registered() && w.company == Some(c)),
        Subject::Customer(c) => models.orders.by_customer(c).next().is_some(),
    }
}

/// Whether `worker`'s registration has been applied.
fn registered(models: &ReadModels, worker: WorkerId) -> bool {
    models
        .matching
        .worker(worker)
        .is_some_and(|w| w.registered())
}

/// The NOT_FOUND of a credit subject the read models do not know.
pub(crate) fn unknown_subject(subject: Subject) -> ApiError {
    let (kind, id, reason) = match subject {
        Subject::Worker(id) => ("worker", id.to_string(), "WORKER_NOT_FOUND"),
        Subject::Company(id) => ("company", id.to_string(), "COMPANY_NOT_FOUND"),
        Subject::Customer(id) => ("customer", id.to_string(), "CUSTOMER_NOT_FOUND"),
    };
    ApiError::not_found(kind, id, reason)
}

fn parse_id<T: FromStr>(field: &'static str, value: &str) -> Result<T, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::invalid_field(field, format!("not a UUID: {value:?}")))
}

pub(crate) fn parse_subject(subject: Option<&pb::CreditSubject>) -> Result<Subject, ApiError> {
    let Some(s) = subject else {
        return Err(ApiError::invalid_field("subject", "required"));
    };
    match pb::CreditSubjectKind::try_from(s.kind) {
        Ok(pb::CreditSubjectKind::Worker) => Ok(Subject::Worker(parse_id("subject.id", &s.id)?)),
        Ok(pb::CreditSubjectKind::Company) => Ok(Subject::Company(parse_id::<CompanyId>(
            "subject.id",
            &s.id,
        )?)),
        Ok(pb::CreditSubjectKind::Customer) => Ok(Subject::Customer(parse_id::<CustomerId>(
            "subject.id",
            &s.id,
        )?)),
        _ => Err(ApiError::invalid_field(
            "subject.kind",
            "must be worker, company or customer",
        )),
    }
}

fn parse_kind(kind: i32) -> Result<Option<SubjectKind>, ApiError> {
    match pb::CreditSubjectKind::try_from(kind) {
        Ok(pb::CreditSubjectKind::Unspecified) => Ok(None),
        Ok(pb::CreditSubjectKind::Worker) => Ok(Some(SubjectKind::Worker)),
        Ok(pb::CreditSubjectKind::Company) => Ok(Some(SubjectKind::Company)),
        Ok(pb::CreditSubjectKind::Customer) => Ok(Some(SubjectKind::Customer)),
        Err(_) => Err(ApiError::invalid_field("kind", "unknown subject kind")),
    }
}

fn instant(
    field: &'static str,
    t: Option<&prost_types::Timestamp>,
) -> Result<Option<Timestamp>, ApiError> {
    let Some(t) = t else { return Ok(None) };
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(ApiError::invalid_field(
            field,
            "nanos must be within [0, 1e9)",
        ));
    }
    t.seconds
        .checked_mul(1_000)
        .and_then(|ms| ms.checked_add(i64::from(t.nanos / 1_000_000)))
        .map(|ms| Some(Timestamp(ms)))
        .ok_or_else(|| ApiError::invalid_field(field, "out of range"))
}

#[tonic::async_trait]
impl pb::queries_server::Queries for QueriesService {
    async fn list_customer_orders(
        &self,
        request: Request<pb::ListCustomerOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersReply>, Status> {
        let end_user = caller(&request)?.end_user;
        allow(
            caller(&request)?,
            &[Role::CustomerApp, Role::Ops],
            "list a customer's orders",
        )?;
        let q = request.into_inner();
        let customer: CustomerId = parse_id("customer_id", &q.customer_id)?;
        end_user::check_customer(end_user, "customer_id", customer).map_err(ApiError::from)?;
        let page = Page::parse(q.page_size, &q.page_token)?;
        let ((orders, next_page_token), position) = self
            .read(q.min_position, |m| {
                page.take(m.orders.by_customer(customer), view::order_entry)
            })
            .await?;
        Ok(Response::new(pb::ListOrdersReply {
            orders,
            next_page_token,
            position,
        }))
    }

    async fn list_worker_orders(
        &self,
        request: Request<pb::ListWorkerOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersReply>, Status> {
        let end_user = caller(&request)?.end_user;
        allow(
            caller(&request)?,
            &[Role::WorkerApp, Role::Ops],
            "list a worker's orders",
        )?;
        let q = request.into_inner();
        let worker: WorkerId = parse_id("worker_id", &q.worker_id)?;
        end_user::check_worker(end_user, "worker_id", worker).map_err(ApiError::from)?;
        let page = Page::parse(q.page_size, &q.page_token)?;
        let ((orders, next_page_token), position) = self
            .read(q.min_position, |m| {
                page.take(m.orders.by_worker(worker), view::order_entry)
            })
            .await?;
        Ok(Response::new(pb::ListOrdersReply {
            orders,
            next_page_token,
            position,
        }))
    }

    async fn get_worker_profile(
        &self,
        request: Request<pb::GetWorkerProfileRequest>,
    ) -> Result<Response<pb::WorkerProfileReply>, Status> {
        let end_user = caller(&request)?.end_user;
        allow(
            caller(&request)?,
            &[Role::WorkerApp, Role::Ops],
            "read worker profiles",
        )?;
        let q = request.into_inner();
        let worker: WorkerId = parse_id("worker_id", &q.worker_id)?;
        end_user::check_worker(end_user, "worker_id", worker).map_err(ApiError::from)?;
        let from =
            instant("schedule_from", q.schedule_from.as_ref())?.unwrap_or(Timestamp(i64::MIN));
        let to = instant("schedule_to", q.schedule_to.as_ref())?.unwrap_or(Timestamp(i64::MAX));
        let now = self.clock.now();
        let (reply, position) = self
            .read(q.min_position, |m| {
                if !registered(m, worker) {
                    return None;
                }
                let fresh;
                let p = match m.workers.get(worker) {
                    Some(p) => p,
                    // Read models restored from a checkpoint written before registrations
                    // opened profiles.
                    None => {
                        fresh = daojia_projections::workers::WorkerProfile::new(worker);
                        &fresh
                    }
                };
                Some(pb::WorkerProfileReply {
                    worker_id: worker.to_string(),
                    company_id: p.company.map(|c| c.to_string()).unwrap_or_default(),
                    standing: view::standing(p.standing()) as i32,
                    in_matching_pool: p.in_matching_pool(now),
                    completed_visits: p.completed_visits,
                    certificates: p
                        .certificates
                        .iter()
                        .map(|(id, c)| view::certificate(*id, c, now))
                        .collect(),
                    schedule: p.schedule_between(from, to).map(view::booking).collect(),
                    position: 0,
                })
            })
            .await?;
        let mut reply = reply.ok_or_else(|| unknown_subject(Subject::Worker(worker)))?;
        reply.position = position;
        Ok(Response::new(reply))
    }

    async fn get_credit(
        &self,
        request: Request<pb::GetCreditRequest>,
    ) -> Result<Response<pb::CreditReply>, Status> {
        let caller = caller(&request)?.clone();
        let q = request.into_inner();
        let subject = parse_subject(q.subject.as_ref())?;
        match subject.kind() {
            SubjectKind::Worker => allow(
                &caller,
                &[Role::WorkerApp, Role::Ops],
                "read a worker's credit",
            )?,
            SubjectKind::Customer => allow(
                &caller,
                &[Role::CustomerApp, Role::Ops],
                "read a customer's credit",
            )?,
            SubjectKind::Company => allow(&caller, &[Role::Ops], "read a company's credit")?,
        }
        match subject {
            Subject::Worker(w) => end_user::check_worker(caller.end_user, "subject.id", w),
            Subject::Customer(c) => end_user::check_customer(caller.end_user, "subject.id", c),
            Subject::Company(_) => Ok(()),
        }
        .map_err(ApiError::from)?;
        let page = Page::parse(q.page_size, &q.page_token)?;
        let (reply, position) = self
            .read(q.min_position, |m| {
                if !known_subject(m, subject) {
                    return None;
                }
                let credit = &m.credit;
                let (history, next_page_token) =
                    page.take(credit.history(subject), view::history_entry);
                Some(pb::CreditReply {
                    subject: Some(view::subject(subject)),
                    score: credit.score(subject),
                    standing: view::standing(credit.standing(subject)) as i32,
                    red_listed: credit.account(subject).is_some_and(|a| a.state.red_listed),
                    history,
                    next_page_token,
                    position: 0,
                })
            })
            .await?;
        let reply = reply.ok_or_else(|| unknown_subject(subject))?;
        Ok(Response::new(pb::CreditReply { position, ..reply }))
    }

    async fn list_red_black(
        &self,
        request: Request<pb::ListRedBlackRequest>,
    ) -> Result<Response<pb::ListRedBlackReply>, Status> {
        allow(
            caller(&request)?,
            &[Role::Ops],
            "list the red and black lists",
        )?;
        let q = request.into_inner();
        let red = match pb::RedBlackList::try_from(q.list) {
            Ok(pb::RedBlackList::Red) => true,
            Ok(pb::RedBlackList::Black) => false,
            _ => return Err(ApiError::invalid_field("list", "must be red or black").into()),
        };
        let kind = parse_kind(q.kind)?;
        let page = Page::parse(q.page_size, &q.page_token)?;
        let ((subjects, next_page_token), position) = self
            .read(q.min_position, |m| {
                let list = if red {
                    m.credit.red_list(kind)
                } else {
                    m.credit.black_list(kind)
                };
                page.take(list, |s| view::listed_subject(&m.credit, s))
            })
            .await?;
        Ok(Response::new(pb::ListRedBlackReply {
            subjects,
            next_page_token,
            position,
        }))
    }

    async fn list_open_follow_ups(
        &self,
        request: Request<pb::ListOpenRequest>,
    ) -> Result<Response<pb::ListOpenFollowUpsReply>, Status> {
        allow(caller(&request)?, &[Role::Ops], "list follow-ups")?;
        let q = request.into_inner();
        let page = Page::parse(q.page_size, &q.page_token)?;
        let ((follow_ups, next_page_token), position) = self
            .read(q.min_position, |m| {
                page.take(m.ops.open_follow_ups(), view::follow_up)
            })
            .await?;
        Ok(Response::new(pb::ListOpenFollowUpsReply {
            follow_ups,
            next_page_token,
            position,
        }))
    }

    async fn list_open_complaints(
        &self,
        request: Request<pb::ListOpenRequest>,
    ) -> Result<Response<pb::ListOpenComplaintsReply>, Status> {
        allow(caller(&request)?, &[Role::Ops], "list complaints")?;
        let q = request.into_inner();
        let page = Page::parse(q.page_size, &q.page_token)?;
        let ((complaints, next_page_token), position) = self
            .read(q.min_position, |m| {
                page.take(m.ops.open_complaints(), view::complaint)
            })
            .await?;
        Ok(Response::new(pb::ListOpenComplaintsReply {
            complaints,
            next_page_token,
            position,
        }))
    }

    async fn list_open_disputes(
        &self,
        request: Request<pb::ListOpenRequest>,
    ) -> Result<Response<pb::ListOpenDisputesReply>, Status> {
        allow(caller(&request)?, &[Role::Ops], "list disputes")?;
        let q = request.into_inner();
        let page = Page::parse(q.page_size, &q.page_token)?;
        let ((disputes, next_page_token), position) = self
            .read(q.min_position, |m| {
                page.take(m.ops.open_disputes(), view::dispute)
            })
            .await?;
        Ok(Response::new(pb::ListOpenDisputesReply {
            disputes,
            next_page_token,
            position,
        }))
    }

    async fn get_kpis(
        &self,
        request: Request<pb::GetKpisRequest>,
    ) -> Result<Response<pb::GetKpisReply>, Status> {
        allow(
            caller(&request)?,
            &[Role::Analytics, Role::Ops],
            "read KPIs",
        )?;
        let q = request.into_inner();
        let breakdown = pb::KpiBreakdown::try_from(q.breakdown)
            .map_err(|_| ApiError::invalid_field("breakdown", "unknown breakdown"))?;
        let page = Page::parse(q.page_size, &q.page_token)?;
        let ((rows, next_page_token), position) = self
            .read(q.min_position, |m| {
                let k = &m.kpis;
                let rows: Vec<(String, _)> = match breakdown {
                    pb::KpiBreakdown::Unspecified | pb::KpiBreakdown::Total => {
                        vec![("total".to_owned(), k.total)]
                    }
                    pb::KpiBreakdown::Day => {
                        k.by_day().map(|(d, c)| (view::day_key(d), *c)).collect()
                    }
                    pb::KpiBreakdown::Category => {
                        let mut rows: Vec<_> = k
                            .by_category()
                            .map(|(cat, c)| (view::category_key(cat), *c))
                            .collect();
                        rows.sort_by(|a, b| a.0.cmp(&b.0));
                        rows
                    }
                    pb::KpiBreakdown::County => {
                        k.by_county().map(|(n, c)| (n.to_owned(), *c)).collect()
                    }
                    pb::KpiBreakdown::Company => {
                        k.by_company().map(|(id, c)| (id.to_string(), *c)).collect()
                    }
                };
                page.take(rows, |(key, c)| view::kpi_row(key, &c))
            })
            .await?;
        Ok(Response::new(pb::GetKpisReply {
            rows,
            next_page_token,
            position,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_default_cap_and_chain_through_tokens() {
        assert_eq!(
            Page::parse(0, "").unwrap(),
            Page {
                offset: 0,
                size: DEFAULT_PAGE_SIZE
            }
        );
        assert_eq!(Page::parse(100_000, "").unwrap().size, MAX_PAGE_SIZE);
        assert!(Page::parse(10, "x").is_err());
        let page = Page::parse(2, "").unwrap();
        let (first, next) = page.take(0..5, |i| i);
        assert_eq!((first, next.as_str()), (vec![0, 1], "2"));
        let (last, next) = Page::parse(3, "2").unwrap().take(0..5, |i| i);
        assert_eq!((last, next.as_str()), (vec![2, 3, 4], ""));
    }
}
