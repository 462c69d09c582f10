//! The nearest-first greedy baseline: what a simple dispatcher does, kept to measure the batch
//! solver against (tests and the matching benchmark).

use crate::candidates::{Exclude, FIRST_REACH_KM, Query, Rank, search};
use crate::config::{HaversineTravel, MatchConfig};
use crate::matcher::{Assignment, BatchResult, Solver};
use crate::model::{Order, Worker};
use crate::pool::WorkerPool;

/// Nearest-first greedy in order arrival order (ascending [`crate::OrderId`]) with the same hard
/// filters: each slot goes to the nearest eligible worker not yet taken (ties: lowest worker
/// id), each worker at most once. Costs are [`crate::pair_cost`]. Reports
/// [`Solver::Greedy`] and no candidate edges.
pub fn greedy_nearest(orders: &[Order], workers: &[Worker], config: &MatchConfig) -> BatchResult {
    let mut pool = WorkerPool::new();
    for w in workers {
        pool.upsert(w.clone());
    }
    let mut by_arrival: Vec<&Order> = orders.iter().collect();
    by_arrival.sort_by_key(|o| o.id);

    let mut taken = vec![false; pool.slot_bound()];
    let mut assignments = Vec::new();
    for order in by_arrival {
        let found = search(
            &pool,
            config,
            &HaversineTravel,
            order,
            &Query {
                limit: usize::from(order.workers_needed),
                rank: Rank::Distance,
                keep_preferred: false,
                exclude: Exclude::Slots(&taken),
                first_reach_km: FIRST_REACH_KM,
            },
        );
        for hit in found.candidates {
            if let Some(t) = taken.get_mut(hit.slot as usize) {
                *t = true;
            }
            assignments.push(Assignment {
                order: order.id,
                worker: hit.worker,
                cost: hit.cost,
            });
        }
    }
    let slots = orders.iter().map(|o| usize::from(o.workers_needed)).sum();
    BatchResult::new(assignments, slots, Solver::Greedy, 0)
}
