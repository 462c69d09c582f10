//! The nearest-first greedy baseline, and what the batch solver gains over it.

use daojia_matching::*;

use crate::support::{matcher_with, north, order, worker};

#[test]
fn greedy_takes_the_nearest_in_arrival_order() {
    // Order 1 (first) sits between the workers; order 2 is next to worker 20 only.
    let workers = vec![worker(10, north(0.0)), worker(20, north(3.0))];
    let orders = vec![order(1, north(2.0)), order(2, north(4.0))];
    let config = crate::support::test_config();
    let greedy = greedy_nearest(&orders, &workers, &config);
    // Order 1 grabs worker 20 (1 km away), order 2 must take worker 10 (4 km away).
    let pairs: Vec<(u32, u32)> = greedy
        .assignments
        .iter()
        .map(|a| (a.order.0, a.worker.0))
        .collect();
    assert_eq!(pairs, vec![(1, 20), (2, 10)]);
    assert_eq!(greedy.total_cost, 2 * 15_000 + 1_000 + 4_000);
    assert_eq!(greedy.solver, Solver::Greedy);

    // The batch solver sees both orders and pays 2 km + 1 km instead of 1 km + 4 km.
    let batch = matcher_with(config, &orders, &workers).match_batch();
    let pairs: Vec<(u32, u32)> = batch
        .assignments
        .iter()
        .map(|a| (a.order.0, a.worker.0))
        .collect();
    assert_eq!(pairs, vec![(1, 10), (2, 20)]);
    assert_eq!(batch.total_cost, 2 * 15_000 + 2_000 + 1_000);
    assert_eq!(batch.solver, Solver::Exact);
}

#[test]
fn greedy_keeps_hard_filters_and_gives_each_worker_once() {
    let mut suspended = worker(1, north(0.1));
    suspended.status = WorkerStatus::Suspended;
    let workers = vec![suspended, worker(2, north(0.2))];
    let mut big = order(1, north(0.0));
    big.workers_needed = 2;
    let result = greedy_nearest(&[big], &workers, &crate::support::test_config());
    let pairs: Vec<(u32, u32)> = result
        .assignments
        .iter()
        .map(|a| (a.order.0, a.worker.0))
        .collect();
    assert_eq!(pairs, vec![(1, 2)]);
    assert_eq!(result.slots, 2);
}
