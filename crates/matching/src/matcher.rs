//! The matcher: incremental state (workers with their spatial index, pending orders) and batch
//! assignment of pending orders' slots to workers.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use crate::candidates::{Exclude, FIRST_REACH_KM, Found, Query, Rank, search};
use crate::config::{HaversineTravel, MatchConfig, TravelTime};
use crate::cost::pair_cost_with;
use crate::eligibility::Ineligible;
use crate::model::{GeoPoint, Interval, Minute, Order, OrderId, Worker, WorkerId};
use crate::pool::WorkerPool;
use crate::solver::{Filled, Graph, solve_exact, solve_greedy};

/// One filled order slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Assignment {
    /// The order.
    pub order: OrderId,
    /// The worker who gets the slot.
    pub worker: WorkerId,
    /// The pair's cost ([`crate::pair_cost`]).
    pub cost: i64,
}

/// Which solver produced a batch result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Solver {
    /// The exact solver on the pruned candidate graph.
    Exact,
    /// The greedy assignment on the same candidate graph: the exact solver ran out of its time
    /// budget.
    GreedyFallback,
    /// Nearest-first greedy over every worker: the [`crate::greedy_nearest`] baseline.
    Greedy,
}

/// The outcome of one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchResult {
    /// Filled slots, sorted by (order, worker).
    pub assignments: Vec<Assignment>,
    /// Sum of the assignments' costs.
    pub total_cost: i64,
    /// Total slots requested by the batch's orders.
    pub slots: usize,
    /// Which solver produced it.
    pub solver: Solver,
    /// Edges (order, worker) of the pruned candidate graph.
    pub candidate_edges: usize,
}

impl BatchResult {
    /// Builds a result from unsorted assignments.
    pub(crate) fn new(
        mut assignments: Vec<Assignment>,
        slots: usize,
        solver: Solver,
        candidate_edges: usize,
    ) -> Self {
        assignments.sort_unstable_by_key(|a| (a.order, a.worker));
        let total_cost = assignments.iter().map(|a| a.cost).sum();
        BatchResult {
            assignments,
            total_cost,
            slots,
            solver,
            candidate_edges,
        }
    }

    /// Slots filled.
    pub fn filled(&self) -> usize {
        self.assignments.len()
    }
}

/// How many times a batch may widen the candidate lists of orders left short.
const WIDENINGS: usize = 2;

/// The solver's graph of a batch and the worker (pool slot) of each column.
struct CandidateGraph {
    graph: Graph,
    slot_of_column: Vec<u32>,
}

impl CandidateGraph {
    /// Columns are the pool slots that appear as candidates, numbered on first use.
    fn build(orders: &[&Order], found: &[Found], slot_bound: usize) -> Self {
        const UNSEEN: u32 = u32::MAX;
        let mut column_of_slot = vec![UNSEEN; slot_bound];
        let mut slot_of_column: Vec<u32> = Vec::new();
        let mut graph = Graph::new();
        for (order, list) in orders.iter().zip(found) {
            let edges = list.candidates.iter().filter_map(|hit| {
                let column = column_of_slot.get_mut(hit.slot as usize)?;
                if *column == UNSEEN {
                    *column = slot_of_column.len() as u32;
                    slot_of_column.push(hit.slot);
                }
                Some((*column, hit.cost))
            });
            graph.push_order(u32::from(order.workers_needed), edges);
        }
        CandidateGraph {
            graph,
            slot_of_column,
        }
    }
}

/// Workers, their spatial index and pending orders; answers batch assignments and the dispatch
/// policies' queries. All updates are incremental (O(log n) per skill of the worker).
pub struct Matcher {
    config: MatchConfig,
    travel: Box<dyn TravelTime + Send + Sync>,
    pool: WorkerPool,
    orders: BTreeMap<OrderId, Order>,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matcher")
            .field("config", &self.config)
            .field("pool", &self.pool)
            .field("orders", &self.orders.len())
            .finish_non_exhaustive()
    }
}

impl Matcher {
    /// An empty matcher with the default (great-circle) travel time.
    pub fn new(config: MatchConfig) -> Self {
        Matcher::with_travel_time(config, HaversineTravel)
    }

    /// An empty matcher with a given travel-time function.
    pub fn with_travel_time(
        config: MatchConfig,
        travel: impl TravelTime + Send + Sync + 'static,
    ) -> Self {
        Matcher {
            config,
            travel: Box::new(travel),
            pool: WorkerPool::new(),
            orders: BTreeMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MatchConfig {
        &self.config
    }

    /// Adds a worker or replaces the one with the same id (including her location, skills,
    /// status and bookings): O(log n) per skill.
    pub fn upsert_worker(&mut self, w: Worker) {
        self.pool.upsert(w);
    }

    /// Forgets a worker (unknown ids are ignored).
    pub fn remove_worker(&mut self, id: WorkerId) {
        self.pool.remove(id);
    }

    /// Moves a worker (live location); unknown ids are ignored.
    pub fn move_worker(&mut self, id: WorkerId, to: GeoPoint) {
        self.pool.move_to(id, to);
    }

    /// Adds a pending order or replaces the one with the same id (e.g. with a longer
    /// `declined` list): O(log n).
    pub fn add_order(&mut self, o: Order) {
        self.orders.insert(o.id, o);
    }

    /// Removes a pending order (unknown ids are ignored).
    pub fn remove_order(&mut self, id: OrderId) {
        self.orders.remove(&id);
    }

    /// A worker by id.
    pub fn worker(&self, id: WorkerId) -> Option<&Worker> {
        self.pool.get(id)
    }

    /// A pending order by id.
    pub fn order(&self, id: OrderId) -> Option<&Order> {
        self.orders.get(&id)
    }

    /// Number of known workers.
    pub fn worker_count(&self) -> usize {
        self.pool.len()
    }

    /// Pending orders, by ascending id.
    pub fn pending_orders(&self) -> impl Iterator<Item = &Order> {
        self.orders.values()
    }

    /// Records an accepted booking so later batches and policies never overlap it. A worker the
    /// matcher does not know is ignored: her bookings arrive with her `upsert_worker`.
    ///
    /// Refused (and nothing recorded) if the worker is unknown or already booked for an
    /// overlapping time: two batches computed before either offer was accepted may both have
    /// picked her, and only the first acceptance can stand.
    pub fn book(&mut self, worker: WorkerId, window: Interval) -> Result<(), Ineligible> {
        self.pool.book(worker, window)
    }

    /// Drops bookings that ended at or before `before` (they can no longer overlap anything the
    /// caller will post), keeping eligibility checks short. O(workers + bookings).
    pub fn forget_bookings_before(&mut self, before: Minute) {
        self.pool.forget_bookings_before(before);
    }

    /// Hard filters, then cost, with this matcher's travel time. `None` = forbidden.
    pub fn pair_cost(&self, order: &Order, worker: &Worker) -> Option<i64> {
        pair_cost_with(order, worker, &self.config, self.travel.as_ref())
    }

    /// Assigns pending orders' slots to workers: first as many slots as possible, then least
    /// total cost, each worker at most one slot per batch, slots of one order to distinct
    /// workers, exact on the pruned candidate graph (each order keeps its
    /// `candidates_per_slot * workers_needed` cheapest eligible workers plus its preferred
    /// worker; orders in the contested part of a tight batch get up to two rounds of wider
    /// lists). The time budget runs from the first solve: if the exact solver has not finished
    /// by then, the greedy result on the same graph is returned and reported as
    /// [`Solver::GreedyFallback`]; a widening round that runs out of time is dropped and the
    /// previous exact result kept.
    ///
    /// Does not mutate state: the caller turns assignments into offers and later calls
    /// [`Matcher::book`] and [`Matcher::remove_order`].
    pub fn match_batch(&self) -> BatchResult {
        let orders: Vec<&Order> = self.orders.values().collect();
        let slots: usize = orders.iter().map(|o| usize::from(o.workers_needed)).sum();

        let mut found = self.search_all(&orders);
        let mut graph = CandidateGraph::build(&orders, &found, self.pool.slot_bound());
        // The budget covers solving (and widening); the clock only enforces it, no decision
        // depends on it otherwise.
        let deadline = Instant::now().checked_add(self.config.time_budget);
        let mut solution = match solve_exact(&graph.graph, deadline) {
            Ok(solution) => solution,
            Err(_) => {
                let filled = solve_greedy(&graph.graph);
                return self.result(&orders, &graph, filled, slots, Solver::GreedyFallback);
            }
        };

        // Widening: orders in the contested part (reachable from a slot left unfilled) whose
        // lists pruning cut get more candidates and the batch is solved again, so pruning rarely
        // costs a filled slot when supply is tight. Only their new edges could fill more.
        let mut widen = self.config.candidates_per_slot.max(1);
        for _ in 0..WIDENINGS {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            widen = widen.saturating_mul(4);
            let mut widened = 0usize;
            let mut late = false;
            for &i in &solution.contested {
                let (Some(order), Some(list)) = (orders.get(i as usize), found.get_mut(i as usize))
                else {
                    continue;
                };
                if list.truncated {
                    let limit = widen.saturating_mul(usize::from(order.workers_needed));
                    *list = self.search_one(order, limit, list.reach_km);
                    widened += 1;
                    late =
                        widened.is_multiple_of(64) && deadline.is_some_and(|d| Instant::now() >= d);
                    if late {
                        break;
                    }
                }
            }
            if widened == 0 || late {
                break;
            }
            let wider = CandidateGraph::build(&orders, &found, self.pool.slot_bound());
            match solve_exact(&wider.graph, deadline) {
                Ok(better) => {
                    solution = better;
                    graph = wider;
                }
                // Out of time: the previous result is exact on its own graph; keep it.
                Err(_) => break,
            }
        }
        self.result(&orders, &graph, solution.filled, slots, Solver::Exact)
    }

    /// Turns solver output into a batch result.
    fn result(
        &self,
        orders: &[&Order],
        graph: &CandidateGraph,
        filled: Vec<Filled>,
        slots: usize,
        solver: Solver,
    ) -> BatchResult {
        let assignments = filled
            .into_iter()
            .filter_map(|(order, column, cost)| {
                let order = orders.get(order as usize)?.id;
                let slot = *graph.slot_of_column.get(column as usize)?;
                let worker = self.pool.by_slot(slot)?.id;
                Some(Assignment {
                    order,
                    worker,
                    cost,
                })
            })
            .collect();
        BatchResult::new(assignments, slots, solver, graph.graph.edges())
    }

    /// The candidates of every order (same index as `orders`).
    fn search_all(&self, orders: &[&Order]) -> Vec<Found> {
        // Search in an order that keeps consecutive searches in the same tree and area (warm
        // caches, and each search's reach is a good first guess for the next); the candidates
        // of an order do not depend on this order.
        let mut by_locality: Vec<usize> = (0..orders.len()).collect();
        by_locality.sort_by_cached_key(|&i| orders.get(i).map(|o| (o.service, morton(o.location))));
        let mut found = vec![Found::default(); orders.len()];
        let mut reach_hint = [FIRST_REACH_KM; 64];
        for i in by_locality {
            let (Some(order), Some(list)) = (orders.get(i), found.get_mut(i)) else {
                continue;
            };
            let hint = reach_hint.get_mut(usize::from(order.service));
            let first_reach = hint.as_deref().copied().unwrap_or(FIRST_REACH_KM);
            *list = self.search_one(
                order,
                self.config.candidates_for(order.workers_needed),
                first_reach,
            );
            if let Some(hint) = hint {
                *hint = list.reach_km;
            }
        }
        found
    }

    /// The `limit` cheapest eligible workers of one order, plus her preferred worker.
    fn search_one(&self, order: &Order, limit: usize, first_reach_km: f64) -> Found {
        search(
            &self.pool,
            &self.config,
            self.travel.as_ref(),
            order,
            &Query {
                limit,
                rank: Rank::Cost,
                keep_preferred: true,
                exclude: Exclude::None,
                first_reach_km,
            },
        )
    }

    pub(crate) fn pool(&self) -> &WorkerPool {
        &self.pool
    }

    pub(crate) fn travel(&self) -> &dyn TravelTime {
        self.travel.as_ref()
    }
}

/// A Z-order (Morton) key of a point: nearby points get nearby keys.
fn morton(p: GeoPoint) -> u64 {
    let quantise = |x: f64, lo: f64, span: f64| -> u64 {
        let unit = ((x - lo) / span).clamp(0.0, 1.0);
        (unit * f64::from(u32::MAX)) as u64
    };
    spread(quantise(p.lat, -90.0, 180.0)) << 1 | spread(quantise(p.lon, -180.0, 360.0))
}

/// Spreads the low 32 bits of `x` to the even bit positions.
fn spread(x: u64) -> u64 {
    let mut x = x & 0xFFFF_FFFF;
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}
