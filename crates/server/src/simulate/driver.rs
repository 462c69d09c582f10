//! The day's loop: the simulated customers and workers (actors), waves of commands per
//! simulated minute, and `Admin.WaitSettled` between waves.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use daojia_domain::Timestamp;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio_stream::StreamExt;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use super::city::{City, Mode, kind};
use super::report::{Counts, Report};
use super::rng::{Rng, uuid};
use super::{SimulateArgs, SimulateError, TOKEN_ENV};
use crate::config::{Security, ServerConfig};
use crate::dispatcher::DispatchConfig;
use crate::pb;

/// 2027-01-15 06:00 China time, where an in-process simulation starts.
pub const DAY_START: Timestamp = Timestamp(1_799_964_000_000);
const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// The simulation stops stepping this many minutes after the start at the latest.
const MAX_MINUTES: u32 = 36 * 60;
/// Requests in flight at once.
const IN_FLIGHT: usize = 64;

/// Connection and credentials for the public API.
#[derive(Clone)]
struct Api {
    channel: Channel,
    token: Option<MetadataValue<Ascii>>,
}

impl Api {
    fn req<T>(&self, message: T) -> Request<T> {
        let mut r = Request::new(message);
        if let Some(t) = &self.token {
            r.metadata_mut().insert("authorization", t.clone());
        }
        r
    }
    fn admin(&self) -> pb::admin_client::AdminClient<Channel> {
        pb::admin_client::AdminClient::new(self.channel.clone())
    }
    fn customer(&self) -> pb::customer_app_client::CustomerAppClient<Channel> {
        pb::customer_app_client::CustomerAppClient::new(self.channel.clone())
    }
    fn worker(&self) -> pb::worker_app_client::WorkerAppClient<Channel> {
        pb::worker_app_client::WorkerAppClient::new(self.channel.clone())
    }
    fn queries(&self) -> pb::queries_client::QueriesClient<Channel> {
        pb::queries_client::QueriesClient::new(self.channel.clone())
    }
}

fn ts(at: Timestamp) -> Option<pb::Timestamp> {
    Some(pb::Timestamp {
        seconds: at.0.div_euclid(1_000),
        nanos: (at.0.rem_euclid(1_000) * 1_000_000) as i32,
    })
}

fn latlon(p: (f64, f64)) -> Option<pb::LatLon> {
    Some(pb::LatLon { lat: p.0, lon: p.1 })
}

fn rpc(call: &'static str) -> impl FnOnce(Status) -> SimulateError {
    move |status| SimulateError::Rpc {
        call,
        status: Box::new(status),
    }
}

/// Offers delivered on the watched workers' notification streams: (worker, order id).
///
/// A std mutex: held only to insert or look up, never across an `.await`.
#[derive(Clone, Default)]
struct Inbox {
    offers: Arc<std::sync::Mutex<HashSet<(usize, String)>>>,
    arrived: Arc<tokio::sync::Notify>,
}

impl Inbox {
    fn has(&self, worker: usize, order: &str) -> bool {
        self.offers
            .lock()
            .map(|o| o.contains(&(worker, order.to_owned())))
            .unwrap_or(false)
    }

    /// Waits (at most `limit`) until the offer of `order` reached `worker`'s stream.
    async fn wait(&self, worker: usize, order: &str, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let arrived = self.arrived.notified();
            if self.has(worker, order) {
                return true;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.has(worker, order);
            }
        }
    }
}

/// One command of a wave.
#[derive(Clone, Debug)]
enum Job {
    Register(pb::RegisterWorkerRequest),
    Contract(pb::SignContractRequest),
    Certificate(pb::IssueCertificateRequest),
    Post(pb::PostOrderRequest),
    Accept(pb::AcceptOfferRequest),
    Decline(pb::DeclineOfferRequest),
    Grab(pb::GrabOrderRequest),
    Cancel(pb::CancelOrderRequest),
    CheckIn(pb::CheckInRequest),
    Complete(pb::CompleteServiceRequest),
    Review(pb::ReviewOrderRequest),
    Complain(pb::FileComplaintRequest),
}

/// What a command came to.
#[derive(Clone, Debug)]
struct Outcome {
    /// `None` when accepted; the refusal's reason otherwise.
    refused: Option<String>,
    /// Events the command appended (0 for a replayed command).
    events: u64,
    /// The order after the command, when the reply carries it.
    order: Option<pb::Order>,
}

/// Codes that mean "the server said no" rather than "the simulation cannot go on".
fn is_refusal(code: Code) -> bool {
    matches!(
        code,
        Code::FailedPrecondition
            | Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::Aborted
            | Code::PermissionDenied
    )
}

async fn execute(api: &Api, job: Job) -> Result<Outcome, SimulateError> {
    let mut tries = 0;
    loop {
        let result = match job.clone() {
            Job::Register(r) => api
                .admin()
                .register_worker(api.req(r))
                .await
                .map(admin_reply),
            Job::Contract(r) => api.admin().sign_contract(api.req(r)).await.map(admin_reply),
            Job::Certificate(r) => api
                .admin()
                .issue_certificate(api.req(r))
                .await
                .map(admin_reply),
            Job::Post(r) => api
                .customer()
                .post_order(api.req(r))
                .await
                .map(command_reply),
            Job::Accept(r) => api
                .worker()
                .accept_offer(api.req(r))
                .await
                .map(command_reply),
            Job::Decline(r) => api
                .worker()
                .decline_offer(api.req(r))
                .await
                .map(command_reply),
            Job::Grab(r) => api.worker().grab_order(api.req(r)).await.map(command_reply),
            Job::Cancel(r) => api
                .customer()
                .cancel_order(api.req(r))
                .await
                .map(command_reply),
            Job::CheckIn(r) => api.worker().check_in(api.req(r)).await.map(command_reply),
            Job::Complete(r) => api
                .worker()
                .complete_service(api.req(r))
                .await
                .map(command_reply),
            Job::Review(r) => api
                .customer()
                .review_order(api.req(r))
                .await
                .map(command_reply),
            Job::Complain(r) => api
                .customer()
                .file_complaint(api.req(r))
                .await
                .map(command_reply),
        };
        match result {
            Ok(o) => return Ok(o),
            // A conflict that outlasted the server's own retries: the same command id again is
            // safe (idempotent).
            Err(s) if s.code() == Code::Aborted && tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(5 * tries)).await;
            }
            Err(s) if is_refusal(s.code()) => {
                let reason = s
                    .get_details_error_info()
                    .map(|i| i.reason)
                    .unwrap_or_else(|| format!("{:?}", s.code()));
                return Ok(Outcome {
                    refused: Some(reason),
                    events: 0,
                    order: None,
                });
            }
            Err(s) => return Err(rpc("command")(s)),
        }
    }
}

fn admin_reply(r: tonic::Response<pb::AdminReply>) -> Outcome {
    let r = r.into_inner();
    Outcome {
        refused: None,
        events: if r.replayed {
            0
        } else {
            r.event_types.len() as u64
        },
        order: None,
    }
}

fn command_reply(r: tonic::Response<pb::CommandReply>) -> Outcome {
    let r = r.into_inner();
    Outcome {
        refused: None,
        events: if r.replayed {
            0
        } else {
            r.event_types.len() as u64
        },
        order: r.order,
    }
}

/// Runs groups of jobs: groups concurrently, the jobs of one group in order. Results come back
/// sorted by group key, whatever order they finished in.
async fn run_groups(
    api: &Api,
    groups: BTreeMap<usize, Vec<Job>>,
) -> Result<Vec<(usize, Vec<Outcome>)>, SimulateError> {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut set = JoinSet::new();
    for (key, jobs) in groups {
        let api = api.clone();
        let permits = permits.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let mut out = Vec::with_capacity(jobs.len());
            for job in jobs {
                out.push(execute(&api, job).await?);
            }
            Ok::<_, SimulateError>((key, out))
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = set.join_next().await {
        results.push(joined.map_err(|e| SimulateError::Server(e.to_string()))??);
    }
    results.sort_by_key(|r| r.0);
    Ok(results)
}

/// Runs jobs one after the other.
async fn run_sequential(
    api: &Api,
    jobs: Vec<(usize, Job)>,
) -> Result<Vec<(usize, Outcome)>, SimulateError> {
    let mut out = Vec::with_capacity(jobs.len());
    for (key, job) in jobs {
        out.push((key, execute(api, job).await?));
    }
    Ok(out)
}

/// Where a simulated order is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Planned,
    Refused,
    Open,
    Filled,
    CheckedIn,
    Served,
    Reviewed,
    Cancelled,
}

/// The simulation's own view of an order.
#[derive(Debug)]
struct SimOrder {
    phase: Phase,
    service: usize,
    customer: usize,
    mode: Mode,
    /// Minutes of the simulated day.
    window: (u32, u32),
    posted: u32,
    worker: Option<usize>,
    /// Workers who already answered an offer of this order.
    answered: BTreeSet<usize>,
    /// Minutes late at check-in.
    late_by: u32,
    tools_disinfected: bool,
}

/// A scheduled act of an actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Act {
    Post,
    Grab(u32),
    Cancel,
    CheckIn,
    Complete,
    Review,
}

/// The day in progress.
struct Day<'a> {
    seed: u64,
    city: &'a City,
    api: Api,
    start: Timestamp,
    orders: Vec<SimOrder>,
    agenda: BTreeMap<u32, Vec<(usize, Act)>>,
    worker_index: HashMap<String, usize>,
    /// Each customer's favourite: the worker and service of their last ≥ 4★ review.
    favourite: HashMap<usize, (usize, usize)>,
    counts: Counts,
    accept_seconds: Vec<u64>,
    last_position: u64,
    /// Events appended by the simulation's own commands.
    own_events: u64,
    /// Workers `0..watched` answer offers once their notification stream delivered them.
    watched: usize,
    inbox: Inbox,
    streams: JoinSet<()>,
}

impl Day<'_> {
    fn at(&self, minute: u32) -> Timestamp {
        Timestamp(self.start.0 + i64::from(minute) * MINUTE_MS)
    }

    fn command_id(&self, purpose: u64, a: usize, b: usize) -> String {
        uuid(
            self.seed,
            kind::COMMAND + (purpose << 8),
            ((a as u64) << 24) | b as u64,
        )
    }

    fn schedule(&mut self, minute: u32, order: usize, act: Act) {
        self.agenda.entry(minute).or_default().push((order, act));
    }

    fn note(&mut self, outcome: &Outcome) {
        self.own_events += outcome.events;
        if let Some(reason) = &outcome.refused {
            *self.counts.refused.entry(reason.clone()).or_default() += 1;
        }
    }

    async fn settle(&mut self) -> Result<(), SimulateError> {
        let reply = self
            .api
            .admin()
            .wait_settled(self.api.req(pb::WaitSettledRequest {
                timeout_ms: 600_000,
            }))
            .await
            .map_err(rpc("Admin.WaitSettled"))?
            .into_inner();
        self.last_position = reply.last_position;
        Ok(())
    }

    async fn set_clock(&mut self, at: Timestamp) -> Result<(), SimulateError> {
        self.api
            .admin()
            .set_clock(self.api.req(pb::SetClockRequest { now: ts(at) }))
            .await
            .map_err(rpc("Admin.SetClock"))?;
        Ok(())
    }

    /// Registers every worker, signs their contract and issues their home-visit and skill
    /// certificates.
    async fn onboard(&mut self) -> Result<(), SimulateError> {
        let since = Timestamp(self.start.0 - 30 * DAY_MS);
        let until = Timestamp(self.start.0 + 365 * DAY_MS);
        let mut groups = BTreeMap::new();
        for (i, w) in self.city.workers.iter().enumerate() {
            let mut jobs = vec![
                Job::Register(pb::RegisterWorkerRequest {
                    command_id: self.command_id(1, i, 0),
                    worker_id: w.id.clone(),
                    company_id: w.company.clone(),
                    identity_number: w.identity.clone(),
                    skills: w.skills.clone(),
                    home: latlon(w.home),
                    registry_id: w.registry.clone(),
                    reason: "simulation: onboarded by their company".into(),
                }),
                Job::Contract(pb::SignContractRequest {
                    command_id: self.command_id(1, i, 1),
                    worker_id: w.id.clone(),
                    contract_number: format!("HT-SIM-{}-{i:05}", self.seed),
                    injury_cover: true,
                    valid_from: ts(since),
                    valid_until: ts(until),
                    reason: "simulation: platform contract".into(),
                }),
            ];
            let kinds = std::iter::once(None).chain(w.skills.iter().map(Some));
            for (c, skill) in kinds.enumerate() {
                jobs.push(Job::Certificate(pb::IssueCertificateRequest {
                    command_id: self.command_id(1, i, 2 + c),
                    worker_id: w.id.clone(),
                    certificate_id: uuid(self.seed, kind::CERTIFICATE, (i as u64) << 6 | c as u64),
                    kind: if skill.is_some() {
                        pb::CertificateKind::Skill
                    } else {
                        pb::CertificateKind::HomeVisit
                    } as i32,
                    skill: skill.cloned().unwrap_or_default(),
                    identity_verified: true,
                    health_check_at: ts(since),
                    training_completed: true,
                    exam_passed: true,
                    valid_until: ts(until),
                    reason: "simulation: training and exam passed".into(),
                }));
            }
            groups.insert(i, jobs);
        }
        for (_, outcomes) in run_groups(&self.api, groups).await? {
            for o in &outcomes {
                self.note(o);
                if let Some(reason) = &o.refused {
                    return Err(SimulateError::Server(format!(
                        "onboarding a worker was refused: {reason}"
                    )));
                }
            }
        }
        self.settle().await
    }

    /// Opens the notification streams of the watched workers, from the current position on.
    async fn watch(&mut self) -> Result<(), SimulateError> {
        for w in 0..self.watched {
            let request = pb::WatchNotificationsRequest {
                worker_id: self.city.workers[w].id.clone(),
                after_position: Some(self.last_position),
            };
            let mut stream = self
                .api
                .worker()
                .watch_notifications(self.api.req(request))
                .await
                .map_err(rpc("WorkerApp.WatchNotifications"))?
                .into_inner();
            let inbox = self.inbox.clone();
            self.streams.spawn(async move {
                while let Some(Ok(n)) = stream.next().await {
                    if n.event_type == "OrderOffered" {
                        if let Ok(mut offers) = inbox.offers.lock() {
                            offers.insert((w, n.order_id));
                        }
                        inbox.arrived.notify_waiters();
                    }
                }
            });
        }
        Ok(())
    }

    /// Workers answer the offers pending on open orders: most accept, some decline, a few let
    /// the offer lapse.
    async fn answer_offers(&mut self, minute: u32) -> Result<(), SimulateError> {
        let open: Vec<usize> = (0..self.orders.len())
            .filter(|&i| self.orders[i].phase == Phase::Open && self.orders[i].window.0 >= minute)
            .collect();
        let mut reads = JoinSet::new();
        let permits = Arc::new(Semaphore::new(IN_FLIGHT));
        for &i in &open {
            let api = self.api.clone();
            let permits = permits.clone();
            let request = pb::GetOrderRequest {
                order_id: self.city.orders[i].id.clone(),
                min_position: self.last_position,
            };
            reads.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let order = api.customer().get_order(api.req(request)).await;
                (i, order)
            });
        }
        let mut pending: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        while let Some(joined) = reads.join_next().await {
            let (i, order) = joined.map_err(|e| SimulateError::Server(e.to_string()))?;
            let order = order.map_err(rpc("CustomerApp.GetOrder"))?.into_inner();
            let mut offered: Vec<usize> = order
                .slots
                .iter()
                .filter(|s| s.worker_id.is_empty())
                .flat_map(|s| s.offered_to.iter())
                .filter_map(|w| self.worker_index.get(w).copied())
                .collect();
            offered.sort_unstable();
            pending.insert(i, offered);
        }
        let mut accepts: BTreeMap<usize, Vec<Job>> = BTreeMap::new();
        let mut declines = Vec::new();
        for (i, workers) in pending {
            for w in workers {
                if !self.orders[i].answered.insert(w) {
                    continue;
                }
                self.counts.offers_seen += 1;
                if w < self.watched {
                    let order_id = &self.city.orders[i].id;
                    if self.inbox.wait(w, order_id, Duration::from_secs(10)).await {
                        self.counts.offers_streamed += 1;
                    } else {
                        self.counts.offers_not_streamed += 1;
                    }
                }
                let mut rng = Rng::derive(self.seed, 10 + i as u64, w as u64);
                let x = rng.unit();
                let worker_id = self.city.workers[w].id.clone();
                let order_id = self.city.orders[i].id.clone();
                if x < 0.84 {
                    accepts
                        .entry(i)
                        .or_default()
                        .push(Job::Accept(pb::AcceptOfferRequest {
                            command_id: self.command_id(2, i, w),
                            order_id,
                            worker_id,
                            slot: 0,
                        }));
                } else if x < 0.94 {
                    self.counts.declines += 1;
                    declines.push((
                        i,
                        Job::Decline(pb::DeclineOfferRequest {
                            command_id: self.command_id(3, i, w),
                            order_id,
                            worker_id,
                            slot: 0,
                        }),
                    ));
                } else {
                    self.counts.ignored_offers += 1;
                }
            }
        }
        if !accepts.is_empty() {
            for (i, outcomes) in run_groups(&self.api, accepts).await? {
                for o in outcomes {
                    self.note(&o);
                    if o.refused.is_none() {
                        self.filled(i, o.order.as_ref(), minute);
                    }
                }
            }
            self.settle().await?;
        }
        if !declines.is_empty() {
            for (_, o) in run_sequential(&self.api, declines).await? {
                self.note(&o);
            }
            self.settle().await?;
        }
        Ok(())
    }

    /// The order got its worker at `minute`: plan the visit (lateness and tools decided now).
    fn filled(&mut self, i: usize, order: Option<&pb::Order>, minute: u32) {
        let Some(worker) = order
            .and_then(|o| o.slots.first())
            .and_then(|s| self.worker_index.get(&s.worker_id).copied())
        else {
            return;
        };
        let o = &mut self.orders[i];
        if o.phase != Phase::Open {
            return;
        }
        o.phase = Phase::Filled;
        o.worker = Some(worker);
        self.accept_seconds
            .push(u64::from(minute.saturating_sub(o.posted)) * 60);
        let mut rng = Rng::derive(self.seed, 20, i as u64);
        let late = if rng.chance(0.05) {
            rng.range(16, 45) as u32
        } else if rng.chance(0.06) {
            rng.range(1, 10) as u32
        } else {
            0
        };
        o.tools_disinfected = !rng.chance(0.04);
        let planned = if late > 0 {
            o.window.0 + late
        } else {
            o.window.0.saturating_sub(rng.range(0, 15) as u32)
        };
        let check_in = planned.max(minute + 1);
        o.late_by = check_in.saturating_sub(o.window.0);
        self.schedule(check_in, i, Act::CheckIn);
    }

    fn post_order(&self, i: usize) -> (Job, Mode, Option<usize>, usize) {
        let plan = &self.city.orders[i];
        let mut rng = Rng::derive(self.seed, 30, i as u64);
        let mut service = plan.service;
        let mut preferred = None;
        if plan.mode != Mode::Emergency
            && let Some(&(w, s)) = self.favourite.get(&plan.customer)
            && rng.chance(0.6)
        {
            preferred = Some(w);
            service = s;
        }
        let dispatch = match (plan.mode, preferred) {
            (Mode::Emergency, _) => {
                pb::post_order_request::Dispatch::Emergency(pb::EmergencyDispatch {})
            }
            (_, Some(w)) => pb::post_order_request::Dispatch::Preferred(pb::PreferredDispatch {
                worker_id: self.city.workers[w].id.clone(),
            }),
            (Mode::GrabPool, None) => {
                let deadline =
                    (plan.post_minute + 15).min(plan.post_minute + plan.lead_minutes - 1);
                pb::post_order_request::Dispatch::GrabPool(pb::GrabPoolDispatch {
                    deadline: ts(self.at(deadline)),
                })
            }
            (Mode::Platform, None) => {
                pb::post_order_request::Dispatch::Platform(pb::PlatformDispatch {})
            }
        };
        let mode = match dispatch {
            pb::post_order_request::Dispatch::GrabPool(_) => Mode::GrabPool,
            pb::post_order_request::Dispatch::Emergency(_) => Mode::Emergency,
            _ => Mode::Platform,
        };
        let start = plan.post_minute + plan.lead_minutes;
        let quantity = if service == plan.service {
            plan.quantity
        } else {
            self.city
                .orders
                .iter()
                .find(|o| o.service == service)
                .map_or(1, |o| o.quantity)
        };
        let customer = &self.city.customers[plan.customer];
        let job = Job::Post(pb::PostOrderRequest {
            command_id: self.command_id(4, i, 0),
            order_id: plan.id.clone(),
            customer_id: customer.id.clone(),
            service_code: self.city.services[service].code.as_str().to_owned(),
            quantity,
            workers: 1,
            window_start: ts(self.at(start)),
            window_end: ts(self.at(start + self.duration(service, quantity))),
            location: latlon(customer.home),
            dispatch: Some(dispatch),
        });
        (job, mode, preferred, service)
    }

    fn duration(&self, service: usize, quantity: u32) -> u32 {
        let s = self.city.services[service];
        match s.unit {
            daojia_domain::catalog::PricingUnit::Hour => quantity * 60,
            _ => s.typical_duration.0,
        }
    }

    /// Candidates for a grab: workers with the skills, nearest first, not busy then.
    fn grab_candidate(&self, i: usize, attempt: u32, taken: &BTreeSet<usize>) -> Option<usize> {
        let o = &self.orders[i];
        let need = &self.city.services[o.service].certificates;
        let at = self.city.customers[o.customer].home;
        let busy: BTreeSet<usize> = self
            .orders
            .iter()
            .filter(|x| matches!(x.phase, Phase::Filled | Phase::CheckedIn))
            .filter(|x| x.window.0 < o.window.1 + 60 && o.window.0 < x.window.1 + 60)
            .filter_map(|x| x.worker)
            .collect();
        let mut near: Vec<(u64, usize)> = self
            .city
            .workers
            .iter()
            .enumerate()
            .filter(|(w, worker)| {
                !busy.contains(w)
                    && !taken.contains(w)
                    && need
                        .iter()
                        .all(|c| worker.skills.iter().any(|s| s == c.as_str()))
            })
            .map(|(w, worker)| {
                let d = (worker.home.0 - at.0).powi(2) + (worker.home.1 - at.1).powi(2);
                ((d * 1e12) as u64, w)
            })
            .collect();
        near.sort_unstable();
        near.get(attempt as usize).map(|n| n.1)
    }

    /// One simulated minute.
    async fn step(&mut self, minute: u32) -> Result<(), SimulateError> {
        self.set_clock(self.at(minute)).await?;
        self.settle().await?;
        self.answer_offers(minute).await?;
        let mut acts = self.agenda.remove(&minute).unwrap_or_default();
        acts.sort();

        // Grabs (distinct workers within the minute).
        let mut grabs = BTreeMap::new();
        let mut taken = BTreeSet::new();
        for &(i, act) in &acts {
            if let Act::Grab(attempt) = act {
                if self.orders[i].phase != Phase::Open {
                    continue;
                }
                if let Some(w) = self.grab_candidate(i, attempt, &taken) {
                    taken.insert(w);
                    self.counts.grabs += 1;
                    grabs.insert(
                        i,
                        vec![Job::Grab(pb::GrabOrderRequest {
                            command_id: self.command_id(5, i, w),
                            order_id: self.city.orders[i].id.clone(),
                            worker_id: self.city.workers[w].id.clone(),
                        })],
                    );
                }
            }
        }
        if !grabs.is_empty() {
            for (i, outcomes) in run_groups(&self.api, grabs).await? {
                for o in outcomes {
                    self.note(&o);
                    if o.refused.is_none() {
                        self.counts.grabbed += 1;
                        self.filled(i, o.order.as_ref(), minute);
                    }
                }
            }
            self.settle().await?;
        }

        // Cancellations, one at a time.
        let mut cancels = Vec::new();
        for &(i, act) in &acts {
            if act == Act::Cancel && matches!(self.orders[i].phase, Phase::Open | Phase::Filled) {
                let plan = &self.city.orders[i];
                cancels.push((
                    i,
                    Job::Cancel(pb::CancelOrderRequest {
                        command_id: self.command_id(6, i, 0),
                        order_id: plan.id.clone(),
                        customer_id: self.city.customers[plan.customer].id.clone(),
                        reason: "plans changed".into(),
                    }),
                ));
            }
        }
        if !cancels.is_empty() {
            for (i, o) in run_sequential(&self.api, cancels).await? {
                self.note(&o);
                if o.refused.is_none() {
                    self.counts.cancelled += 1;
                    self.orders[i].phase = Phase::Cancelled;
                }
            }
            self.settle().await?;
        }

        // New orders, one at a time.
        let mut posts = Vec::new();
        for &(i, act) in &acts {
            if act == Act::Post {
                let (job, mode, preferred, service) = self.post_order(i);
                self.orders[i].mode = mode;
                self.orders[i].service = service;
                if let Job::Post(p) = &job {
                    let start = p.window_start.as_ref().map_or(0, |t| t.seconds * 1_000);
                    let end = p.window_end.as_ref().map_or(0, |t| t.seconds * 1_000);
                    self.orders[i].window = (
                        ((start - self.start.0) / MINUTE_MS) as u32,
                        ((end - self.start.0) / MINUTE_MS) as u32,
                    );
                }
                if preferred.is_some() {
                    self.counts.rebookings += 1;
                }
                posts.push((i, job));
            }
        }
        if !posts.is_empty() {
            for (i, o) in run_sequential(&self.api, posts).await? {
                self.note(&o);
                self.orders[i].posted = minute;
                if o.refused.is_some() {
                    self.orders[i].phase = Phase::Refused;
                    continue;
                }
                self.orders[i].phase = Phase::Open;
                self.counts.posted += 1;
                match self.orders[i].mode {
                    Mode::GrabPool => {
                        self.counts.grab_pool += 1;
                        for (attempt, after) in [2, 5, 9].into_iter().enumerate() {
                            self.schedule(minute + after, i, Act::Grab(attempt as u32));
                        }
                    }
                    Mode::Emergency => self.counts.emergencies += 1,
                    Mode::Platform => {}
                }
                let mut rng = Rng::derive(self.seed, 40, i as u64);
                let window = self.orders[i].window;
                if rng.chance(0.04) && window.0 > minute + 1 {
                    let at = rng.range(u64::from(minute + 1), u64::from(window.0 - 1)) as u32;
                    self.schedule(at, i, Act::Cancel);
                }
            }
            self.settle().await?;
        }

        // Visits and reviews: concurrent across orders, in order within one.
        let mut visits: BTreeMap<usize, Vec<Job>> = BTreeMap::new();
        for &(i, act) in &acts {
            let o = &self.orders[i];
            let (Some(w), plan) = (o.worker, &self.city.orders[i]) else {
                continue;
            };
            let worker_id = self.city.workers[w].id.clone();
            let customer = &self.city.customers[o.customer];
            let job = match (act, o.phase) {
                (Act::CheckIn, Phase::Filled) => Job::CheckIn(pb::CheckInRequest {
                    command_id: self.command_id(7, i, w),
                    order_id: plan.id.clone(),
                    worker_id,
                    slot: 0,
                    location: latlon(customer.home),
                }),
                (Act::Complete, Phase::CheckedIn) => Job::Complete(pb::CompleteServiceRequest {
                    command_id: self.command_id(8, i, w),
                    order_id: plan.id.clone(),
                    worker_id,
                    slot: 0,
                    checklist: Some(pb::Checklist {
                        tools_disinfected: o.tools_disinfected,
                        area_tidied: true,
                        customer_confirmed: true,
                    }),
                }),
                (Act::Review, Phase::Served) => {
                    let (review, complaint) = self.review(i, w);
                    let list = visits.entry(i).or_default();
                    list.push(review);
                    list.extend(complaint);
                    continue;
                }
                _ => continue,
            };
            visits.entry(i).or_default().push(job);
        }
        if !visits.is_empty() {
            for (i, outcomes) in run_groups(&self.api, visits).await? {
                for o in &outcomes {
                    self.note(o);
                }
                let ok = outcomes.first().is_some_and(|o| o.refused.is_none());
                if !ok {
                    continue;
                }
                let order = &mut self.orders[i];
                match order.phase {
                    Phase::Filled => {
                        order.phase = Phase::CheckedIn;
                        // The visit lasts its window (at least half an hour), late or not.
                        let length = order.window.1.saturating_sub(order.window.0).max(30);
                        self.schedule(minute + length, i, Act::Complete);
                    }
                    Phase::CheckedIn => {
                        order.phase = Phase::Served;
                        self.counts.served += 1;
                        let mut rng = Rng::derive(self.seed, 50, i as u64);
                        let unhappy = order.late_by > 0 || !order.tools_disinfected;
                        if rng.chance(if unhappy { 0.95 } else { 0.85 }) {
                            let at = minute + rng.range(10, 240) as u32;
                            self.schedule(at, i, Act::Review);
                        }
                    }
                    Phase::Served => {
                        order.phase = Phase::Reviewed;
                        self.counts.reviews += 1;
                        if outcomes.len() > 1 && outcomes[1].refused.is_none() {
                            self.counts.complaints += 1;
                        }
                    }
                    _ => {}
                }
            }
            self.settle().await?;
        }
        Ok(())
    }

    /// The customer's review of order `i` served by worker `w`, and perhaps a complaint.
    fn review(&mut self, i: usize, w: usize) -> (Job, Option<Job>) {
        let o = &self.orders[i];
        let mut rng = Rng::derive(self.seed, 60, i as u64);
        let mut stars: i32 = match rng.weighted(&[0.70, 0.22, 0.06, 0.02]) {
            0 => 5,
            1 => 4,
            2 => 3,
            _ => 2,
        };
        let mut tags = Vec::new();
        if o.late_by > 15 || (o.late_by > 0 && rng.chance(0.5)) {
            tags.push(pb::ReviewTag::Late as i32);
            stars -= rng.range(1, 2) as i32;
        }
        if !o.tools_disinfected {
            tags.push(pb::ReviewTag::ToolsNotDisinfected as i32);
            stars -= 1;
        }
        let stars = stars.clamp(1, 5) as u32;
        if stars == 5 && tags.is_empty() && rng.chance(0.3) {
            tags.push(pb::ReviewTag::Excellent as i32);
        }
        if stars >= 4 {
            self.favourite.insert(o.customer, (w, o.service));
        }
        let plan = &self.city.orders[i];
        let customer_id = self.city.customers[o.customer].id.clone();
        let review = Job::Review(pb::ReviewOrderRequest {
            command_id: self.command_id(9, i, 0),
            order_id: plan.id.clone(),
            customer_id: customer_id.clone(),
            stars,
            tags,
            text: if stars >= 4 {
                "好评".into()
            } else {
                "有待改进".into()
            },
        });
        let complain = if stars <= 2 {
            rng.chance(0.5)
        } else {
            rng.chance(0.01)
        };
        let complaint = complain.then(|| {
            Job::Complain(pb::FileComplaintRequest {
                command_id: self.command_id(10, i, 0),
                order_id: plan.id.clone(),
                complaint_id: uuid(self.seed, kind::COMPLAINT, i as u64),
                customer_id,
                worker_id: self.city.workers[w].id.clone(),
                category: pb::ComplaintCategory::Quality as i32,
                text: "服务质量不满意".into(),
            })
        });
        (review, complaint)
    }

    /// Whether anything can still happen.
    fn busy(&self, minute: u32) -> bool {
        self.agenda.keys().next_back().is_some_and(|&m| m > minute)
            || self
                .orders
                .iter()
                .any(|o| o.phase == Phase::Open && o.window.0 > minute)
    }

    /// Credit adjustments and workers in retraining, from `Queries.GetCredit`.
    async fn credit(&mut self) -> Result<(), SimulateError> {
        let mut subjects: Vec<(i32, String)> = Vec::new();
        let worker = pb::CreditSubjectKind::Worker as i32;
        subjects.extend(self.city.workers.iter().map(|w| (worker, w.id.clone())));
        let customer = pb::CreditSubjectKind::Customer as i32;
        subjects.extend(self.city.customers.iter().map(|c| (customer, c.id.clone())));
        let company = pb::CreditSubjectKind::Company as i32;
        subjects.extend(self.city.companies.iter().map(|c| (company, c.clone())));
        let mut set = JoinSet::new();
        let permits = Arc::new(Semaphore::new(IN_FLIGHT));
        for (k, id) in subjects {
            let api = self.api.clone();
            let permits = permits.clone();
            let min_position = self.last_position;
            set.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let mut adjustments = 0u64;
                let mut retraining = false;
                let mut page_token = String::new();
                loop {
                    let request = pb::GetCreditRequest {
                        subject: Some(pb::CreditSubject {
                            kind: k,
                            id: id.clone(),
                        }),
                        min_position,
                        page_size: 1_000,
                        page_token,
                    };
                    let reply = match api.queries().get_credit(api.req(request)).await {
                        Ok(r) => r.into_inner(),
                        Err(s) if s.code() == Code::NotFound => break,
                        Err(s) => return Err(rpc("Queries.GetCredit")(s)),
                    };
                    retraining |=
                        k == worker && reply.standing == pb::CreditStanding::InRetraining as i32;
                    adjustments += reply
                        .history
                        .iter()
                        .filter(|h| h.event_type == "CreditAdjusted")
                        .count() as u64;
                    if reply.next_page_token.is_empty() {
                        break;
                    }
                    page_token = reply.next_page_token;
                }
                Ok((adjustments, retraining))
            });
        }
        while let Some(joined) = set.join_next().await {
            let (n, r) = joined.map_err(|e| SimulateError::Server(e.to_string()))??;
            self.counts.credit_adjustments += n;
            self.counts.workers_in_retraining += u64::from(r);
        }
        Ok(())
    }
}

/// Progress on stderr: a bar redrawn with `\r` on a terminal, a line per tenth otherwise.
struct ProgressBar {
    terminal: bool,
    last_tenth: u64,
}

impl ProgressBar {
    fn show(&mut self, minute: u32, total: u32, counts: &Counts) {
        let done = u64::from(minute.min(total)) * 100 / u64::from(total.max(1));
        let clock = (6 * 60 + minute) % (24 * 60);
        let text = format!(
            "{:02}:{:02} CST  posted {}  served {}  reviews {}",
            clock / 60,
            clock % 60,
            counts.posted,
            counts.served,
            counts.reviews
        );
        if self.terminal {
            let filled = (done / 4) as usize;
            eprint!(
                "\r[{}{}] {done:3}%  {text}  ",
                "#".repeat(filled),
                ".".repeat(25 - filled.min(25))
            );
        } else if done / 10 > self.last_tenth {
            self.last_tenth = done / 10;
            eprintln!("simulate: {done}%  {text}");
        }
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

/// An in-process server and how to stop it.
struct Local {
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), crate::ServeError>>,
    data_dir: PathBuf,
    remove: bool,
}

async fn start_local(args: &SimulateArgs) -> Result<(String, Local), SimulateError> {
    let (data_dir, remove) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "daojia-simulate-{}-{}",
                std::process::id(),
                args.seed
            )),
            true,
        ),
    };
    if data_dir.exists()
        && std::fs::read_dir(&data_dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(SimulateError::Args(format!(
            "--data-dir {} is not empty: a simulation starts from an empty log",
            data_dir.display()
        )));
    }
    let config = ServerConfig {
        data_dir: data_dir.clone(),
        store: crate::config::StoreConfig::Embedded,
        listen: "127.0.0.1:0"
            .parse()
            .map_err(|_| SimulateError::Server("address".into()))?,
        security: Security::Insecure,
        shutdown_grace: Duration::from_secs(5),
        clock: crate::Clock::manual(DAY_START),
        query_wait: Duration::from_secs(30),
        limits: crate::limits::Limits::default(),
        dispatch: Some(DispatchConfig::default()),
        reactor: true,
        health_listen: None,
        transport: crate::config::TransportConfig::default(),
        subscribers: crate::config::SubscriberBudgets::default(),
        esdb_reads: crate::esdb::ReadStats::default(),
        appends: crate::esdb::budget::AppendBudgets::default(),
        notifications: crate::notify_hub::NotifyConfig::default(),
        end_users: None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| SimulateError::Server(format!("cannot listen: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| SimulateError::Server(e.to_string()))?;
    let (shutdown, rx) = oneshot::channel();
    let task = tokio::spawn(crate::run(listener, config, async {
        let _ = rx.await;
    }));
    Ok((
        format!("http://{addr}"),
        Local {
            shutdown,
            task,
            data_dir,
            remove,
        },
    ))
}

async fn connect(addr: &str, token: Option<String>) -> Result<Api, SimulateError> {
    let url = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let fail = |message: String| SimulateError::Connect {
        addr: addr.to_owned(),
        message,
    };
    let channel = Endpoint::from_shared(url.clone())
        .map_err(|e| fail(e.to_string()))?
        .connect()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut updates = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let token = token
        .map(|t| {
            format!("Bearer {t}")
                .parse::<MetadataValue<Ascii>>()
                .map_err(|_| SimulateError::Args("--token is not a valid header value".into()))
        })
        .transpose()?;
    let mut request = Request::new(tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    });
    if let Some(t) = &token {
        request.metadata_mut().insert("authorization", t.clone());
    }
    let mut stream = updates
        .watch(request)
        .await
        .map_err(|e| fail(e.to_string()))?
        .into_inner();
    while let Some(update) = stream.next().await {
        let update = update.map_err(|e| fail(e.to_string()))?;
        if update.status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32 {
            break;
        }
    }
    Ok(Api { channel, token })
}

/// Counts the events in the log of a stopped in-process server.
async fn count_events(data_dir: &std::path::Path) -> Result<u64, SimulateError> {
    use daojia_store::{AllStart, Direction, EventStore};
    let store = daojia_store::EmbeddedStore::open(data_dir)
        .map_err(|e| SimulateError::Store(e.to_string()))?;
    let mut start = AllStart::Edge;
    let mut n = 0u64;
    loop {
        let slice = store
            .read_all(Direction::Forwards, start, 4_096, None)
            .await
            .map_err(|e| SimulateError::Store(e.to_string()))?;
        n += slice
            .events
            .iter()
            .filter(|e| !e.stream().starts_with('$'))
            .count() as u64;
        if slice.end_of_log {
            break;
        }
        start = AllStart::Position(slice.next);
    }
    Ok(n)
}

/// Runs a simulation and returns its report.
pub async fn run(args: SimulateArgs) -> Result<Report, SimulateError> {
    let sizes = args.sizes()?;
    let wall = Instant::now();
    let city = City::generate(args.seed, &sizes)?;
    let (addr, local) = match &args.server {
        Some(addr) => (addr.clone(), None),
        None => {
            let (addr, local) = start_local(&args).await?;
            (addr, Some(local))
        }
    };
    let token = args.token.clone().or_else(|| {
        args.server
            .as_ref()
            .and_then(|_| std::env::var(TOKEN_ENV).ok())
    });
    let api = connect(&addr, token).await?;
    let result = simulate_day(&args, &city, api, &addr).await;
    let mut report = match (result, local) {
        (Ok(report), Some(local)) => {
            let _ = local.shutdown.send(());
            local
                .task
                .await
                .map_err(|e| SimulateError::Server(e.to_string()))?
                .map_err(|e| SimulateError::Server(e.to_string()))?;
            let mut report = report;
            report.events_appended = count_events(&local.data_dir).await?;
            if local.remove {
                let _ = std::fs::remove_dir_all(&local.data_dir);
            }
            report
        }
        (Ok(report), None) => report,
        (Err(e), Some(local)) => {
            let _ = local.shutdown.send(());
            let _ = local.task.await;
            if local.remove {
                let _ = std::fs::remove_dir_all(&local.data_dir);
            }
            return Err(e);
        }
        (Err(e), None) => return Err(e),
    };
    report.wall_s = wall.elapsed().as_secs_f64();
    Ok(report)
}

async fn simulate_day(
    args: &SimulateArgs,
    city: &City,
    api: Api,
    addr: &str,
) -> Result<Report, SimulateError> {
    // Where the server's clock stands decides the start (it never goes back).
    let settled = api
        .admin()
        .wait_settled(api.req(pb::WaitSettledRequest { timeout_ms: 60_000 }))
        .await
        .map_err(rpc("Admin.WaitSettled"))?
        .into_inner();
    let now = settled.now.map_or(0, |t| t.seconds * 1_000);
    let start = if args.server.is_some() {
        Timestamp((now / MINUTE_MS + 1) * MINUTE_MS)
    } else {
        DAY_START
    };
    match api
        .admin()
        .set_clock(api.req(pb::SetClockRequest { now: ts(start) }))
        .await
    {
        Ok(_) => {}
        Err(s)
            if s.code() == Code::FailedPrecondition
                && s.get_details_error_info()
                    .is_some_and(|i| i.reason == "CLOCK_NOT_SIMULATED") =>
        {
            return Err(SimulateError::ClockNotSimulated(addr.to_owned()));
        }
        Err(s) => return Err(rpc("Admin.SetClock")(s)),
    }
    let mut day = Day {
        seed: args.seed,
        city,
        api,
        start,
        orders: city
            .orders
            .iter()
            .map(|p| SimOrder {
                phase: Phase::Planned,
                service: p.service,
                customer: p.customer,
                mode: p.mode,
                window: (0, 0),
                posted: p.post_minute,
                worker: None,
                answered: BTreeSet::new(),
                late_by: 0,
                tools_disinfected: true,
            })
            .collect(),
        agenda: BTreeMap::new(),
        worker_index: city
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| (w.id.clone(), i))
            .collect(),
        favourite: HashMap::new(),
        counts: Counts::default(),
        accept_seconds: Vec::new(),
        last_position: settled.last_position,
        own_events: 0,
        watched: args.watch.min(city.workers.len()),
        inbox: Inbox::default(),
        streams: JoinSet::new(),
    };
    for (i, o) in city.orders.iter().enumerate() {
        day.schedule(o.post_minute, i, Act::Post);
    }
    let mut bar = ProgressBar {
        terminal: std::io::stderr().is_terminal(),
        last_tenth: 0,
    };
    day.onboard().await?;
    day.watch().await?;
    let planned_end = day.agenda.keys().next_back().copied().unwrap_or(0) + 8 * 60;
    let step_wall = (args.speed > 0.0).then(|| Duration::from_secs_f64(60.0 / args.speed));
    let mut minute = 1;
    loop {
        let began = Instant::now();
        day.step(minute).await?;
        bar.show(minute, planned_end, &day.counts);
        if !day.busy(minute) || minute >= MAX_MINUTES {
            break;
        }
        if let Some(step) = step_wall
            && let Some(rest) = step.checked_sub(began.elapsed())
        {
            tokio::time::sleep(rest).await;
        }
        minute += 1;
    }
    bar.show(planned_end, planned_end, &day.counts);
    bar.finish();
    day.credit().await?;
    day.streams.abort_all();
    let kpis = day
        .api
        .queries()
        .get_kpis(day.api.req(pb::GetKpisRequest {
            breakdown: pb::KpiBreakdown::Total as i32,
            min_position: day.last_position,
            page_size: 0,
            page_token: String::new(),
        }))
        .await
        .map_err(rpc("Queries.GetKpis"))?
        .into_inner();
    let total = kpis
        .rows
        .into_iter()
        .next()
        .and_then(|r| r.counts)
        .unwrap_or_default();
    day.accept_seconds.sort_unstable();
    let median = day
        .accept_seconds
        .get(day.accept_seconds.len() / 2)
        .copied();
    Ok(Report {
        kpis: total,
        counts: day.counts,
        median_accept_s: median,
        simulated_minutes: minute,
        events_appended: day.own_events,
        wall_s: 0.0,
        last_position: day.last_position,
    })
}
