//! Property tests on seeded random instances: the batch equals a brute-force optimum, and no
//! result ever breaks a hard filter, double-books a worker or gives one order the same worker
//! twice.

use std::time::Duration;

use daojia_matching::*;

use crate::support::{Rng, assert_valid, brute_force, fuzhou, matcher_with, small};

/// Nothing is pruned: the candidate graph is every eligible pair.
fn unpruned() -> MatchConfig {
    MatchConfig {
        candidates_per_slot: 64,
        time_budget: Duration::from_secs(3600),
        ..crate::support::test_config()
    }
}

#[test]
fn batch_equals_brute_force_optimum() {
    let config = unpruned();
    let mut rng = Rng::new(0x5EED);
    let mut contested = 0;
    for case in 0..400 {
        let (orders, workers) = small(&mut rng, 6, 7);
        let result = matcher_with(config.clone(), &orders, &workers).match_batch();
        assert_valid(&result, &orders, &workers, &config);
        let (filled, cost) = brute_force(&orders, &workers, &config);
        assert_eq!(result.solver, Solver::Exact, "case {case}");
        assert_eq!(result.filled(), filled, "case {case}: slots filled");
        assert_eq!(result.total_cost, cost, "case {case}: total cost");
        if filled < result.slots && filled > 0 {
            contested += 1;
        }
    }
    // The generator must exercise the interesting case: more demand than eligible supply.
    assert!(contested > 50, "only {contested} contested instances");
}

#[test]
fn pruned_batch_is_valid_and_never_beats_the_optimum() {
    let mut rng = Rng::new(0xB0A7);
    for case in 0..300 {
        let config = MatchConfig {
            candidates_per_slot: 1 + rng.below(2) as usize,
            ..unpruned()
        };
        let (orders, workers) = small(&mut rng, 6, 7);
        let result = matcher_with(config.clone(), &orders, &workers).match_batch();
        assert_valid(&result, &orders, &workers, &config);
        let (filled, cost) = brute_force(&orders, &workers, &config);
        assert!(result.filled() <= filled, "case {case}");
        if result.filled() == filled {
            assert!(result.total_cost >= cost, "case {case}");
        }
    }
}

#[test]
fn fuzhou_batches_keep_every_hard_filter() {
    for seed in 0..4 {
        let (orders, workers) = fuzhou(300, 300 + 300 * seed as usize, seed);
        let config = crate::support::test_config();
        let result = matcher_with(config.clone(), &orders, &workers).match_batch();
        assert_valid(&result, &orders, &workers, &config);
        assert!(result.filled() > 0);
        assert!(result.candidate_edges >= result.filled());
        let greedy = greedy_nearest(&orders, &workers, &config);
        assert_valid(&greedy, &orders, &workers, &config);
        // Both fill what they can; the batch never fills fewer slots on the same pairs.
        assert!(result.filled() >= greedy.filled() || result.solver == Solver::GreedyFallback);
    }
}

#[test]
fn booking_is_respected_by_the_next_batch() {
    let config = unpruned();
    let mut rng = Rng::new(0xB00C);
    for case in 0..200 {
        let (orders, workers) = small(&mut rng, 6, 7);
        let mut m = matcher_with(config.clone(), &orders, &workers);
        let first = m.match_batch();
        for a in &first.assignments {
            let order = orders.iter().find(|o| o.id == a.order).expect("order");
            m.book(a.worker, order.window)
                .expect("an assigned worker is free for the order's window");
            m.remove_order(a.order);
        }
        // The same demand again, at the same times: booked workers are taken.
        let again: Vec<Order> = orders
            .iter()
            .map(|o| Order {
                id: OrderId(o.id.0 + 1000),
                ..o.clone()
            })
            .collect();
        for o in &again {
            m.add_order(o.clone());
        }
        let pending: Vec<Order> = m.pending_orders().cloned().collect();
        let now: Vec<Worker> = workers
            .iter()
            .map(|w| m.worker(w.id).expect("worker").clone())
            .collect();
        let second = m.match_batch();
        assert_valid(&second, &pending, &now, &config);
        for a in &second.assignments {
            let order = pending.iter().find(|o| o.id == a.order).expect("order");
            for b in &first.assignments {
                let earlier = orders.iter().find(|o| o.id == b.order).expect("order");
                assert!(
                    a.worker != b.worker || !earlier.window.overlaps(&order.window),
                    "case {case}: {} booked for {} and offered {}",
                    a.worker,
                    b.order,
                    a.order
                );
            }
        }
        assert_eq!(
            (second.filled(), second.total_cost),
            brute_force(&pending, &now, &config),
            "case {case}"
        );
    }
}

#[test]
fn zero_budget_falls_back_to_greedy_and_says_so() {
    let (orders, workers) = fuzhou(200, 150, 9);
    let config = MatchConfig {
        time_budget: Duration::ZERO,
        ..crate::support::test_config()
    };
    let result = matcher_with(config.clone(), &orders, &workers).match_batch();
    assert_eq!(result.solver, Solver::GreedyFallback);
    assert_valid(&result, &orders, &workers, &config);
    assert!(result.filled() > 0);
}

#[test]
fn batch_is_deterministic() {
    let (orders, workers) = fuzhou(300, 600, 3);
    let config = crate::support::test_config();
    let a = matcher_with(config.clone(), &orders, &workers).match_batch();
    let mut reversed_workers = workers.clone();
    reversed_workers.reverse();
    let mut reversed_orders = orders.clone();
    reversed_orders.reverse();
    let b = matcher_with(config, &reversed_orders, &reversed_workers).match_batch();
    assert_eq!(a.filled(), b.filled());
    assert_eq!(a.total_cost, b.total_cost);
}

#[test]
fn pruned_searches_agree_with_brute_force_rankings() {
    use daojia_matching::policy::{emergency_offers, grab_pool, next_offer};
    let config = crate::support::test_config();
    for seed in 0..3 {
        let (orders, workers) = fuzhou(60, 1500, 100 + seed);
        let m = matcher_with(config.clone(), &[], &workers);
        for o in &orders {
            // Every eligible worker, cheapest first (ties: lowest id).
            let mut by_cost: Vec<(i64, WorkerId)> = workers
                .iter()
                .filter_map(|w| pair_cost(o, w, &config).map(|c| (c, w.id)))
                .collect();
            by_cost.sort();
            let pool: Vec<(i64, WorkerId)> = grab_pool(&m, o)
                .iter()
                .map(|c| (c.cost, c.worker))
                .collect();
            assert_eq!(pool, by_cost, "grab pool of {}", o.id);

            // The cascade: preferred first when eligible, then by cost.
            let mut expected: Vec<WorkerId> = by_cost.iter().map(|&(_, id)| id).collect();
            if let Some(p) = o.preferred.filter(|p| expected.contains(p)) {
                expected.retain(|&id| id != p);
                expected.insert(0, p);
            }
            let mut offered = Vec::new();
            for want in expected.iter().take(6) {
                let got = next_offer(&m, o, &offered).map(|c| c.worker);
                assert_eq!(got, Some(*want), "offer {} of {}", offered.len(), o.id);
                offered.push(*want);
            }
            if expected.len() <= 6 {
                assert_eq!(next_offer(&m, o, &offered), None);
            }

            // Emergency: the nearest eligible, ties by id.
            let mut by_km: Vec<(f64, WorkerId)> = workers
                .iter()
                .filter_map(|w| eligibility(o, w, &config).ok().map(|km| (km, w.id)))
                .collect();
            by_km.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let nearest: Vec<WorkerId> = by_km.iter().take(5).map(|&(_, id)| id).collect();
            let got: Vec<WorkerId> = emergency_offers(&m, o, 5)
                .iter()
                .map(|c| c.worker)
                .collect();
            // Emergency offers are for elder calls only.
            let expected_nearest: Vec<WorkerId> = if o.category == Category::Eldercare {
                nearest
                    .into_iter()
                    .filter(|id| !o.declined.contains(id))
                    .collect()
            } else {
                Vec::new()
            };
            assert_eq!(got, expected_nearest, "emergency for {}", o.id);
        }
    }
}
