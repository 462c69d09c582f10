//! One city shard's workers in the matching engine's terms: a [`daojia_matching::Matcher`] kept
//! up to date from the dispatcher's board, with the domain ids mapped to the matcher's dense
//! `u32` ids and skill certificates mapped to bits.
//!
//! Mapping (the matcher's model is narrower than the domain's):
//! - every order is service `0` and every worker is skilled in it: the domain has no per-service
//!   skill beyond certificates, which map to [`BitSet64`] bits (`required_certificates` of the
//!   order against the skills the worker declared), the first 64 distinct kinds getting a bit
//!   each; an order needing a kind past 64 gets no candidates from the matcher (logged);
//! - a worker's standing, contract and certificates come from the matching projection
//!   (`MatchingView`, [`MatchIndex::refresh`]): in retraining, suspended or black-listed workers
//!   keep that status, one without a contract in force is not contracted, one without a valid
//!   home-visit certificate is `Offline` (out of the pool), and her valid skill certificates are
//!   her certificate bits. The domain still has the last word when an offer is decided;
//!   workers it refuses are left out through the order's `declined` list;
//! - a worker's bookings are her accepted slots **and** her pending offers, so nobody is offered
//!   anything overlapping what she holds or may accept; [`MatchIndex::sync`] refreshes them (and
//!   live locations) before each pass, and [`MatchIndex::book`] reserves the window of each
//!   offer made during the pass, refusing an overlap;
//! - times are whole minutes since the Unix epoch (window starts rounded down, ends up).

use std::collections::HashMap;

use daojia_domain::catalog::{Category as DomainCategory, SkillKind};
use daojia_domain::order::{DispatchMode, GeoPoint, Order, ServiceWindow};
use daojia_domain::{Timestamp, WorkerId};
use daojia_matching::{
    BitSet64, Category, GeoPoint as MatchPoint, Interval, MatchConfig, Matcher, Priority, Worker,
    WorkerId as DenseWorker, WorkerStatus, policy,
};
use daojia_projections::matching_view::{MatchingView, PoolStatus};

/// The matcher of one shard and the id maps around it.
pub(crate) struct MatchIndex {
    matcher: Matcher,
    dense: HashMap<WorkerId, DenseWorker>,
    /// Domain id and home by dense id.
    workers: Vec<(WorkerId, GeoPoint, BitSet64)>,
    skill_bits: HashMap<SkillKind, u8>,
}

impl std::fmt::Debug for MatchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatchIndex")
            .field("workers", &self.workers.len())
            .field("skills", &self.skill_bits.len())
            .finish()
    }
}

const MINUTE_MS: i64 = 60_000;

/// A window in matcher minutes.
pub(crate) fn interval(window: ServiceWindow) -> Interval {
    Interval {
        start: window.start.0.div_euclid(MINUTE_MS),
        end: (window.end.0 + MINUTE_MS - 1).div_euclid(MINUTE_MS),
    }
}

fn point(p: GeoPoint) -> MatchPoint {
    MatchPoint {
        lat: p.lat,
        lon: p.lon,
    }
}

fn category(c: DomainCategory) -> Category {
    match c {
        DomainCategory::Cleaning => Category::Cleaning,
        DomainCategory::Housekeeping => Category::Housekeeping,
        DomainCategory::Maternity => Category::Maternity,
        DomainCategory::Childcare => Category::Childcare,
        DomainCategory::Eldercare => Category::Eldercare,
        DomainCategory::Repair => Category::Repair,
    }
}

impl MatchIndex {
    /// An empty index whose matcher searches `radius_km` around every order.
    pub(crate) fn new(radius_km: f64) -> Self {
        let config = MatchConfig {
            radius_km: [radius_km; 6],
            ..MatchConfig::default()
        };
        MatchIndex {
            matcher: Matcher::new(config),
            dense: HashMap::new(),
            workers: Vec::new(),
            skill_bits: HashMap::new(),
        }
    }

    /// The bits of `skills`; `None` when a kind finds no bit left.
    fn bits(&mut self, skills: &[SkillKind]) -> Option<BitSet64> {
        let mut set = BitSet64::EMPTY;
        for skill in skills {
            let next = self.skill_bits.len();
            let bit = match self.skill_bits.get(skill) {
                Some(bit) => *bit,
                None => {
                    let bit = u8::try_from(next).ok().filter(|b| *b < 64)?;
                    self.skill_bits.insert(skill.clone(), bit);
                    bit
                }
            };
            set = set.with(bit);
        }
        Some(set)
    }

    /// Adds or replaces a registered worker (registration is the only source of her home);
    /// her declared skills stand for her certificates until [`MatchIndex::refresh`].
    pub(crate) fn register(&mut self, worker: WorkerId, home: GeoPoint, skills: &[SkillKind]) {
        // Skills past the 64th kind are dropped: orders needing them get no candidates anyway.
        let certificates = self.bits(skills).unwrap_or_else(|| {
            tracing::warn!(%worker, "more than 64 skill kinds: some skills left out of matching");
            BitSet64::EMPTY
        });
        let id = match self.dense.get(&worker) {
            Some(id) => *id,
            None => {
                let id = DenseWorker(u32::try_from(self.workers.len()).unwrap_or(u32::MAX));
                self.dense.insert(worker, id);
                self.workers.push((worker, home, certificates));
                id
            }
        };
        if let Some(slot) = usize::try_from(id.0)
            .ok()
            .and_then(|i| self.workers.get_mut(i))
        {
            *slot = (worker, home, certificates);
        }
        let bookings = self
            .matcher
            .worker(id)
            .map(|w| w.bookings.clone())
            .unwrap_or_default();
        self.matcher.upsert_worker(Worker {
            id,
            location: point(home),
            skills: BitSet64::single(0),
            certificates,
            contracted: true,
            status: WorkerStatus::Active,
            bookings,
            credit: 500,
            recent_load: 0,
            service_area: None,
        });
    }

    /// Refreshes what the matcher knows of `workers`' eligibility (standing, contract,
    /// certificates) from `view` at `now`, and their credit and recent load from `soft`.
    pub(crate) fn refresh<'a>(
        &mut self,
        view: &MatchingView,
        soft: &dyn Fn(WorkerId) -> (u16, u16),
        now: Timestamp,
        workers: impl IntoIterator<Item = &'a WorkerId>,
    ) {
        for worker in workers {
            let (Some(id), Some(facts)) = (self.dense.get(worker).copied(), view.worker(*worker))
            else {
                continue;
            };
            let status = match facts.status() {
                PoolStatus::Active if !facts.home_visit_valid(now) => WorkerStatus::Offline,
                PoolStatus::Active => WorkerStatus::Active,
                PoolStatus::InRetraining => WorkerStatus::InRetraining,
                PoolStatus::Suspended => WorkerStatus::Suspended,
                PoolStatus::BlackListed => WorkerStatus::BlackListed,
            };
            let contracted = facts.contracted(now);
            let certificates = self
                .bits(&facts.skill_certificates(now))
                .unwrap_or(BitSet64::EMPTY);
            let (credit, recent_load) = soft(*worker);
            let Some(current) = self.matcher.worker(id) else {
                continue;
            };
            let wanted = (status, contracted, certificates, credit, recent_load);
            let now_known = (
                current.status,
                current.contracted,
                current.certificates,
                current.credit,
                current.recent_load,
            );
            if now_known != wanted {
                let mut w = current.clone();
                w.status = status;
                w.contracted = contracted;
                w.certificates = certificates;
                w.credit = credit;
                w.recent_load = recent_load;
                self.matcher.upsert_worker(w);
            }
        }
    }

    /// Every registered worker, by dense id.
    pub(crate) fn workers(&self) -> impl Iterator<Item = &WorkerId> {
        self.workers.iter().map(|(w, _, _)| w)
    }

    /// Whether `worker` is registered.
    pub(crate) fn knows(&self, worker: WorkerId) -> bool {
        self.dense.contains_key(&worker)
    }

    /// Number of registered workers.
    pub(crate) fn len(&self) -> usize {
        self.workers.len()
    }

    fn domain(&self, id: DenseWorker) -> Option<WorkerId> {
        usize::try_from(id.0)
            .ok()
            .and_then(|i| self.workers.get(i))
            .map(|(w, _, _)| *w)
    }

    /// Refreshes every worker's bookings (`held`: accepted slots and pending offers) and
    /// location (`live` when it knows a fresh one, home otherwise).
    pub(crate) fn sync(
        &mut self,
        held: &HashMap<WorkerId, Vec<Interval>>,
        live: impl Fn(WorkerId) -> Option<GeoPoint>,
    ) {
        for (index, (worker, home, _)) in self.workers.iter().enumerate() {
            let id = DenseWorker(u32::try_from(index).unwrap_or(u32::MAX));
            let Some(current) = self.matcher.worker(id) else {
                continue;
            };
            let mut bookings = held.get(worker).cloned().unwrap_or_default();
            bookings.sort_by_key(|b| (b.start, b.end));
            let at = point(live(*worker).unwrap_or(*home));
            if current.bookings != bookings {
                let mut w = current.clone();
                w.bookings = bookings;
                w.location = at;
                self.matcher.upsert_worker(w);
            } else if current.location != at {
                self.matcher.move_worker(id, at);
            }
        }
    }

    /// The matcher's view of `order` (dense id `dense`), leaving out `exclude` (passed over,
    /// refused as ineligible, already on the order). `None` if a required certificate has no
    /// bit.
    pub(crate) fn order(
        &mut self,
        dense: u32,
        order: &Order,
        kind: DomainCategory,
        workers_needed: usize,
        exclude: &[WorkerId],
    ) -> Option<daojia_matching::Order> {
        let required_certificates = self.bits(&order.required_certificates)?;
        let declined = exclude
            .iter()
            .filter_map(|w| self.dense.get(w).copied())
            .collect();
        let (preferred, priority) = match order.dispatch {
            DispatchMode::Preferred { worker } if !order.preferred_offered => {
                (self.dense.get(&worker).copied(), Priority::Normal)
            }
            DispatchMode::Emergency => (None, Priority::Emergency),
            _ => (None, Priority::Normal),
        };
        Some(daojia_matching::Order {
            id: daojia_matching::OrderId(dense),
            location: point(order.location),
            service: 0,
            category: category(kind),
            required_certificates,
            window: interval(order.window),
            workers_needed: u8::try_from(workers_needed).unwrap_or(u8::MAX),
            preferred,
            priority,
            declined,
        })
    }

    /// One batch: `orders` are matched together ([`Matcher::match_batch`]) and taken out of the
    /// matcher again; the assignments, by dense order id, in the solver's order.
    pub(crate) fn batch(&mut self, orders: Vec<daojia_matching::Order>) -> Vec<(u32, WorkerId)> {
        let ids: Vec<_> = orders.iter().map(|o| o.id).collect();
        for o in orders {
            self.matcher.add_order(o);
        }
        let result = self.matcher.match_batch();
        for id in ids {
            self.matcher.remove_order(id);
        }
        tracing::debug!(
            slots = result.slots,
            filled = result.filled(),
            solver = ?result.solver,
            "batch matched"
        );
        result
            .assignments
            .iter()
            .filter_map(|a| self.domain(a.worker).map(|w| (a.order.0, w)))
            .collect()
    }

    /// The next worker to offer `order` to ([`policy::next_offer`]; `order.declined` lists
    /// everyone left out).
    pub(crate) fn next_offer(&self, order: &daojia_matching::Order) -> Option<WorkerId> {
        policy::next_offer(&self.matcher, order, &order.declined)
            .and_then(|c| self.domain(c.worker))
    }

    /// Up to `k` workers for an emergency call at once: the nearest elder carers
    /// ([`policy::emergency_offers`]); for a call of another category (the domain allows any),
    /// the cascade's next candidates.
    pub(crate) fn emergency(&self, order: &daojia_matching::Order, k: usize) -> Vec<WorkerId> {
        let found = policy::emergency_offers(&self.matcher, order, k);
        if !found.is_empty() || order.category == Category::Eldercare {
            return found.iter().filter_map(|c| self.domain(c.worker)).collect();
        }
        let mut order = order.clone();
        let mut picked = Vec::new();
        while picked.len() < k {
            let Some(c) = policy::next_offer(&self.matcher, &order, &order.declined) else {
                break;
            };
            order.declined.push(c.worker);
            picked.extend(self.domain(c.worker));
        }
        picked
    }

    /// Reserves `window` for `worker` (an offer just made); `false` if she is unknown or
    /// already holds an overlapping booking or offer.
    pub(crate) fn book(&mut self, worker: WorkerId, window: ServiceWindow) -> bool {
        match self.dense.get(&worker) {
            Some(id) => self.matcher.book(*id, interval(window)).is_ok(),
            None => false,
        }
    }

    /// Whether `worker` holds a booking or offer overlapping `window`.
    pub(crate) fn busy(&self, worker: WorkerId, window: ServiceWindow) -> bool {
        let wanted = interval(window);
        self.dense
            .get(&worker)
            .and_then(|id| self.matcher.worker(*id))
            .is_some_and(|w| w.bookings.iter().any(|b| b.overlaps(&wanted)))
    }
}

#[cfg(test)]
mod tests {
    use daojia_domain::order::{self, OrderState};
    use daojia_domain::{Catalog, CustomerId, OrderEvent, OrderId, OrderTerms, Timestamp};

    use super::*;

    const T: i64 = 1_800_000_000_000;

    fn at(lat: f64) -> GeoPoint {
        GeoPoint::new(lat, 116.36).unwrap()
    }

    fn window(from_h: i64, to_h: i64) -> ServiceWindow {
        ServiceWindow {
            start: Timestamp(T + from_h * 3_600_000),
            end: Timestamp(T + to_h * 3_600_000),
        }
    }

    fn order(n: u128, window: ServiceWindow, required: Vec<SkillKind>) -> Order {
        let catalog = Catalog::builtin().unwrap();
        let service = catalog.get(&"C01".parse().unwrap()).unwrap();
        let posted = OrderEvent::OrderPosted {
            order_id: OrderId::from_u128(n),
            customer: CustomerId::from_u128(1),
            service: service.code.clone(),
            category: service.category,
            required_certificates: required,
            quote: service.quote(3, 1).unwrap(),
            window,
            location: at(27.95),
            dispatch: DispatchMode::Platform,
            terms: OrderTerms::default(),
            posted_at: Timestamp(T),
        };
        order::evolve(OrderState::default(), &posted).order.unwrap()
    }

    fn w(n: u128) -> WorkerId {
        WorkerId::from_u128(n)
    }

    #[test]
    fn windows_round_outwards_to_whole_minutes() {
        let i = interval(ServiceWindow {
            start: Timestamp(90_000),
            end: Timestamp(150_001),
        });
        assert_eq!((i.start, i.end), (1, 3));
    }

    #[test]
    fn held_windows_block_overlapping_offers_and_book_refuses_overlaps() {
        let mut index = MatchIndex::new(30.0);
        index.register(w(1), at(27.95), &[]);
        index.register(w(2), at(27.96), &[]);
        let held = HashMap::from([(w(1), vec![interval(window(24, 27))])]);
        index.sync(&held, |_| None);
        assert!(index.busy(w(1), window(26, 29)));
        assert!(!index.busy(w(1), window(27, 30)), "back to back is fine");
        // The nearest worker is booked: the next one is offered.
        let o = order(1, window(25, 28), vec![]);
        let input = index
            .order(0, &o, DomainCategory::Cleaning, 1, &[])
            .unwrap();
        assert_eq!(index.next_offer(&input), Some(w(2)));
        assert!(!index.book(w(1), window(26, 29)));
        assert!(index.book(w(2), window(26, 29)));
        assert!(!index.book(w(2), window(28, 30)));
        assert!(!index.book(w(9), window(0, 1)), "unknown worker");
    }

    #[test]
    fn a_batch_gives_each_order_a_different_worker_and_leaves_out_the_declined() {
        let mut index = MatchIndex::new(30.0);
        index.register(w(1), at(27.95), &[]);
        index.register(w(2), at(27.96), &[]);
        index.register(w(3), at(27.97), &[]);
        let a = order(1, window(1, 3), vec![]);
        let b = order(2, window(1, 3), vec![]);
        let inputs = vec![
            index
                .order(0, &a, DomainCategory::Cleaning, 1, &[w(1)])
                .unwrap(),
            index
                .order(1, &b, DomainCategory::Cleaning, 1, &[])
                .unwrap(),
        ];
        let assigned = index.batch(inputs);
        assert_eq!(assigned.len(), 2);
        assert!(!assigned.contains(&(0, w(1))));
        assert_ne!(assigned[0].1, assigned[1].1);
        // The batch's orders leave the matcher again.
        assert!(index.batch(Vec::new()).is_empty());
    }

    #[test]
    fn required_certificates_are_bits_and_only_holders_qualify() {
        let nurse: SkillKind = "nursing".parse().unwrap();
        let mut index = MatchIndex::new(30.0);
        index.register(w(1), at(27.95), &[]);
        index.register(w(2), at(27.99), std::slice::from_ref(&nurse));
        let o = order(1, window(1, 3), vec![nurse]);
        let input = index
            .order(0, &o, DomainCategory::Cleaning, 1, &[])
            .unwrap();
        assert_eq!(index.next_offer(&input), Some(w(2)));
        // Past 64 kinds an order needing an unmapped kind gets no matcher input.
        let many: Vec<SkillKind> = (0..64)
            .map(|i: u8| {
                format!(
                    "kind_{}{}",
                    char::from(b'a' + i / 26),
                    char::from(b'a' + i % 26)
                )
                .parse()
                .unwrap()
            })
            .collect();
        let o = order(2, window(1, 3), many);
        assert!(
            index
                .order(0, &o, DomainCategory::Cleaning, 1, &[])
                .is_none()
        );
    }
}
