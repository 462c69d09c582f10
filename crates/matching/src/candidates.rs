//! Candidate search: the eligible workers for one order, cheapest (or nearest) first.
//!
//! Range queries over the order's service tree in rings of doubling reach (starting from a
//! hint: the reach the previous, nearby search needed), never past the category radius. Each
//! ring's entries that hold the required certificates are sorted by a lower bound of their cost
//! (distance from the chord, plus their credit and load terms, minus nothing) and taken best
//! first: the hard filters run on the worker record, eligible workers are costed and kept in a
//! bounded heap of the best `limit`, and once the heap is full the rest of the ring is dismissed
//! as soon as the bound passes the worst kept cost. The search stops when no worker beyond the
//! current reach could be kept. The order's preferred worker, when asked for, is looked up
//! directly and kept whenever eligible, on top of the `limit`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::config::{MatchConfig, TravelTime};
use crate::cost::{CostBound, cost_of, standing_cost};
use crate::eligibility::{eligibility, order_is_valid};
use crate::geo::{Hot, chord2_limit, km_lower_bound, to_xyz};
use crate::model::{Order, WorkerId};
use crate::pool::WorkerPool;

/// An eligible worker for an order, with the pair's cost and distance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Hit {
    pub(crate) slot: u32,
    pub(crate) worker: WorkerId,
    pub(crate) cost: i64,
    pub(crate) km: f64,
}

/// What "best" means for a search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rank {
    /// Lowest cost first, then lowest worker id.
    Cost,
    /// Nearest first, then lowest worker id.
    Distance,
}

/// A search for one order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Query<'q> {
    /// How many workers to keep (the preferred worker comes on top).
    pub(crate) limit: usize,
    pub(crate) rank: Rank,
    /// Keep the order's preferred worker whenever eligible.
    pub(crate) keep_preferred: bool,
    /// Workers to leave out.
    pub(crate) exclude: Exclude<'q>,
    /// Where the first range query reaches, km (a hint: the final reach of a similar search).
    pub(crate) first_reach_km: f64,
}

/// Workers a search leaves out.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Exclude<'q> {
    /// Nobody.
    None,
    /// These workers (a short list: already offered).
    Ids(&'q [WorkerId]),
    /// The workers whose pool slot is marked (already taken in this pass).
    Slots(&'q [bool]),
}

impl Exclude<'_> {
    fn excludes(&self, slot: u32, id: WorkerId) -> bool {
        match self {
            Exclude::None => false,
            Exclude::Ids(ids) => ids.contains(&id),
            Exclude::Slots(marked) => marked.get(slot as usize).copied().unwrap_or(false),
        }
    }
}

/// A search's result.
#[derive(Clone, Debug, Default)]
pub(crate) struct Found {
    /// Best first.
    pub(crate) candidates: Vec<Hit>,
    /// Whether eligible workers were left out because of the limit.
    pub(crate) truncated: bool,
    /// How far a similar search (same service, nearby) should first reach, km.
    pub(crate) reach_km: f64,
}

/// A candidate ordered by the search's rank.
#[derive(Clone, Copy, Debug)]
struct Ranked {
    rank: Rank,
    c: Hit,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        let primary = match self.rank {
            Rank::Cost => self.c.cost.cmp(&other.c.cost),
            Rank::Distance => self.c.km.total_cmp(&other.c.km),
        };
        primary.then(self.c.worker.cmp(&other.c.worker))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

/// Where the first range query of a search reaches without a better hint, km.
pub(crate) const FIRST_REACH_KM: f64 = 2.0;

/// The least first reach, km (a hint of zero would take many rounds to grow).
const MIN_REACH_KM: f64 = 0.5;

/// The best eligible workers for `order` according to `query`.
pub(crate) fn search(
    pool: &WorkerPool,
    config: &MatchConfig,
    travel: &dyn TravelTime,
    order: &Order,
    query: &Query<'_>,
) -> Found {
    let mut found = Found::default();
    let radius = config.radius(order.category);
    // A radius that is not a number (or negative) admits nobody.
    let usable_radius = radius >= 0.0;
    if !order_is_valid(order) || !usable_radius {
        return found;
    }
    let mut walk = Walk {
        pool,
        config,
        travel,
        order,
        query,
        preferred: order.preferred.filter(|_| query.keep_preferred),
        bound: CostBound::new(order, &config.weights, travel),
        heap: BinaryHeap::new(),
        truncated: false,
    };
    let at = to_xyz(order.location);
    // Rings of doubling reach; each entry is considered once, in the ring holding its chord,
    // and each ring best-first by its lower bound so that the heap fills with good workers
    // early and the rest of the ring is dismissed without reading worker records.
    let mut inner = f64::NEG_INFINITY;
    let mut reach = query.first_reach_km.max(MIN_REACH_KM).min(radius);
    let mut ring: Vec<(i64, f64, Hot)> = Vec::new();
    loop {
        let outer = chord2_limit(reach);
        // Ask the tree for a little more than the ring so that its own arithmetic never drops
        // an entry; the ring test uses one formula for every entry.
        ring.clear();
        for (hot, c2) in pool.index().within(order.service, at, outer * (1.0 + 1e-9)) {
            if inner < c2
                && c2 <= outer
                && hot.certificates.contains_all(order.required_certificates)
            {
                let km = km_lower_bound(c2);
                let standing = standing_cost(&config.weights, hot.credit, hot.load);
                ring.push((walk.bound.at(km, standing), km, hot));
            }
        }
        match query.rank {
            Rank::Cost => ring.sort_unstable_by_key(|&(bound, _, hot)| (bound, hot.slot)),
            Rank::Distance => {
                ring.sort_unstable_by(|a, b| a.1.total_cmp(&b.1).then(a.2.slot.cmp(&b.2.slot)))
            }
        }
        for &(bound, km, hot) in &ring {
            if walk.hopeless(bound, km) {
                // Sorted: everyone after is hopeless too.
                walk.truncated = true;
                break;
            }
            walk.consider(hot);
        }
        if reach >= radius {
            break;
        }
        let beyond = km_lower_bound(outer);
        if walk.hopeless(walk.bound.beyond(beyond), beyond) {
            // Workers beyond this reach were never looked at: a widening round may want them.
            walk.truncated = true;
            break;
        }
        inner = outer;
        reach = (reach * 2.0).min(radius);
    }
    found.truncated = walk.truncated;
    found.reach_km = match walk.worst() {
        // The distance at which the bound passes the worst kept candidate: what a similar
        // search needs to reach.
        Some(worst) => match query.rank {
            Rank::Cost => walk.bound.reach_for(worst.cost).unwrap_or(radius),
            Rank::Distance => worst.km,
        },
        None => reach,
    }
    .min(radius);

    let mut ranked = walk.heap.into_sorted_vec();
    if let Some(id) = walk.preferred {
        let favourite = pool.slot_of(id).and_then(|slot| {
            if query.exclude.excludes(slot, id) {
                return None;
            }
            let worker = pool.by_slot(slot)?;
            let km = eligibility(order, worker, config).ok()?;
            let cost = cost_of(order, worker, km, &config.weights, travel);
            Some(Ranked {
                rank: query.rank,
                c: Hit {
                    slot,
                    worker: id,
                    cost,
                    km,
                },
            })
        });
        if let Some(favourite) = favourite {
            let at = ranked.partition_point(|r| r < &favourite);
            ranked.insert(at, favourite);
        }
    }
    found.candidates = ranked.into_iter().map(|r| r.c).collect();
    found
}

/// The state of one search.
struct Walk<'a> {
    pool: &'a WorkerPool,
    config: &'a MatchConfig,
    travel: &'a dyn TravelTime,
    order: &'a Order,
    query: &'a Query<'a>,
    preferred: Option<WorkerId>,
    bound: CostBound<'a>,
    /// The best `limit` so far, worst on top.
    heap: BinaryHeap<Ranked>,
    truncated: bool,
}

impl Walk<'_> {
    /// The worst kept candidate, once `limit` are kept.
    fn worst(&self) -> Option<&Hit> {
        if self.heap.len() >= self.query.limit {
            self.heap.peek().map(|r| &r.c)
        } else {
            None
        }
    }

    /// Whether a worker whose cost is at least `bound` and distance at least `km` can no
    /// longer be kept.
    fn hopeless(&self, bound: i64, km: f64) -> bool {
        if self.query.limit == 0 {
            return true;
        }
        let Some(worst) = self.worst() else {
            return false;
        };
        match self.query.rank {
            Rank::Cost => bound > worst.cost,
            Rank::Distance => km > worst.km,
        }
    }

    /// Filters, costs and maybe keeps the worker of an index entry.
    fn consider(&mut self, hot: Hot) {
        let Some(worker) = self.pool.by_slot(hot.slot) else {
            return;
        };
        if Some(worker.id) == self.preferred || self.query.exclude.excludes(hot.slot, worker.id) {
            return;
        }
        let Ok(km) = eligibility(self.order, worker, self.config) else {
            return;
        };
        let cost = cost_of(self.order, worker, km, &self.config.weights, self.travel);
        self.heap.push(Ranked {
            rank: self.query.rank,
            c: Hit {
                slot: hot.slot,
                worker: worker.id,
                cost,
                km,
            },
        });
        if self.heap.len() > self.query.limit {
            self.heap.pop();
            self.truncated = true;
        }
    }
}
