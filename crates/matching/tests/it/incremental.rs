//! Incremental updates: a matcher kept up to date by upserts, moves, removals, bookings and
//! order changes answers exactly like one built from scratch with the final state.

use std::collections::BTreeMap;

use daojia_matching::*;

use crate::support::{Rng, assert_valid, fuzhou, matcher_with, offset};

#[test]
fn random_updates_answer_like_a_rebuild() {
    let config = crate::support::test_config();
    let (orders, workers) = fuzhou(120, 400, 11);
    let mut rng = Rng::new(77);
    let mut m = Matcher::new(config.clone());
    // The reference model: plain maps of the current state.
    let mut model_workers: BTreeMap<WorkerId, Worker> = BTreeMap::new();
    let mut model_orders: BTreeMap<OrderId, Order> = BTreeMap::new();
    for step in 0..3000 {
        match rng.below(8) {
            0 | 1 => {
                let w = workers[rng.below(workers.len() as u64) as usize].clone();
                m.upsert_worker(w.clone());
                model_workers.insert(w.id, w);
            }
            2 => {
                let id = workers[rng.below(workers.len() as u64) as usize].id;
                m.remove_worker(id);
                model_workers.remove(&id);
            }
            3 => {
                let id = workers[rng.below(workers.len() as u64) as usize].id;
                let to = offset(rng.normal() * 10.0, rng.normal() * 10.0);
                m.move_worker(id, to);
                if let Some(w) = model_workers.get_mut(&id) {
                    w.location = to;
                }
            }
            4 => {
                // A status or skill change arrives as an upsert of the changed worker.
                let id = workers[rng.below(workers.len() as u64) as usize].id;
                if let Some(w) = model_workers.get_mut(&id) {
                    w.status = if rng.chance(0.5) {
                        WorkerStatus::Active
                    } else {
                        WorkerStatus::InRetraining
                    };
                    w.skills = BitSet64(w.skills.0 ^ (1 << rng.below(48)));
                    w.recent_load = rng.below(5) as u16;
                    m.upsert_worker(w.clone());
                }
            }
            5 => {
                let o = orders[rng.below(orders.len() as u64) as usize].clone();
                m.add_order(o.clone());
                model_orders.insert(o.id, o);
            }
            6 => {
                let id = orders[rng.below(orders.len() as u64) as usize].id;
                m.remove_order(id);
                model_orders.remove(&id);
            }
            _ => {
                let id = workers[rng.below(workers.len() as u64) as usize].id;
                let start = 480 + rng.below(600) as i64;
                let window = Interval {
                    start,
                    end: start + 120,
                };
                let accepted = m.book(id, window).is_ok();
                match model_workers.get_mut(&id) {
                    Some(w) => {
                        let overlaps = w.bookings.iter().any(|b| b.overlaps(&window));
                        assert_eq!(accepted, !overlaps, "book() refuses exactly the overlaps");
                        if accepted {
                            w.bookings.push(window);
                        }
                    }
                    None => assert!(!accepted, "book() refuses unknown workers"),
                }
            }
        }
        if step % 500 == 499 {
            let ws: Vec<Worker> = model_workers.values().cloned().collect();
            let os: Vec<Order> = model_orders.values().cloned().collect();
            assert_eq!(m.worker_count(), ws.len());
            for w in &ws {
                assert_eq!(m.worker(w.id), Some(w));
            }
            let got = m.match_batch();
            let rebuilt = matcher_with(config.clone(), &os, &ws).match_batch();
            assert_valid(&got, &os, &ws, &config);
            assert_eq!(got, rebuilt, "step {step}");
        }
    }
}

#[test]
fn a_moved_worker_is_found_where_she_is() {
    let config = crate::support::test_config();
    let mut m = Matcher::new(config);
    let mut w = crate::support::worker(1, offset(0.0, 0.0));
    w.skills = BitSet64::single(0);
    m.upsert_worker(w);
    let far = crate::support::order(1, offset(40.0, 0.0));
    m.add_order(far.clone());
    assert_eq!(
        m.match_batch().filled(),
        0,
        "40 km is beyond the cleaning radius"
    );
    m.move_worker(WorkerId(1), offset(39.0, 0.0));
    let batch = m.match_batch();
    assert_eq!(batch.filled(), 1);
    assert_eq!(batch.assignments[0].worker, WorkerId(1));
    m.remove_worker(WorkerId(1));
    assert_eq!(m.match_batch().filled(), 0);
    assert_eq!(m.worker(WorkerId(1)), None);
}

#[test]
fn forgetting_old_bookings_keeps_current_ones() {
    let mut m = Matcher::new(crate::support::test_config());
    m.upsert_worker(crate::support::worker(1, offset(0.0, 0.0)));
    m.book(WorkerId(1), Interval { start: 0, end: 60 }).unwrap();
    m.book(
        WorkerId(1),
        Interval {
            start: 600,
            end: 660,
        },
    )
    .unwrap();
    m.forget_bookings_before(60);
    assert_eq!(
        m.worker(WorkerId(1)).map(|w| w.bookings.clone()),
        Some(vec![Interval {
            start: 600,
            end: 660
        }])
    );
}

#[test]
fn book_refuses_an_overlapping_booking_and_an_unknown_worker() {
    let mut m = Matcher::new(crate::support::test_config());
    let w = crate::support::worker(
        1,
        GeoPoint {
            lat: 27.95,
            lon: 116.36,
        },
    );
    m.upsert_worker(w);
    m.book(
        WorkerId(1),
        Interval {
            start: 600,
            end: 720,
        },
    )
    .unwrap();
    // Two batches computed before either offer was accepted may both pick her: the second
    // acceptance for an overlapping time is refused and nothing is recorded.
    assert_eq!(
        m.book(
            WorkerId(1),
            Interval {
                start: 700,
                end: 800
            }
        ),
        Err(Ineligible::Booked(Interval {
            start: 600,
            end: 720
        }))
    );
    m.book(
        WorkerId(1),
        Interval {
            start: 720,
            end: 800,
        },
    )
    .unwrap();
    assert_eq!(m.worker(WorkerId(1)).unwrap().bookings.len(), 2);
    assert_eq!(
        m.book(WorkerId(9), Interval { start: 0, end: 1 }),
        Err(Ineligible::UnknownWorker(WorkerId(9)))
    );
}
