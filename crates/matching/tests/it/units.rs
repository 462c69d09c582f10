//! Unit checks of the building blocks: distance, bitsets, intervals, the cost formula.

use daojia_matching::*;

use crate::support::{north, order, worker};

#[test]
fn haversine_matches_known_city_distances() {
    let paris = GeoPoint {
        lat: 48.8566,
        lon: 2.3522,
    };
    let london = GeoPoint {
        lat: 51.5074,
        lon: -0.1278,
    };
    // 343.5 km great-circle (mean earth radius).
    assert!((haversine_km(paris, london) - 343.5).abs() < 1.0);
    let beijing = GeoPoint {
        lat: 39.9042,
        lon: 116.4074,
    };
    let shanghai = GeoPoint {
        lat: 31.2304,
        lon: 121.4737,
    };
    assert!((haversine_km(beijing, shanghai) - 1067.0).abs() < 3.0);
    assert_eq!(haversine_km(paris, paris), 0.0);
    assert!((haversine_km(paris, london) - haversine_km(london, paris)).abs() < 1e-9);
    // A quarter of the meridian.
    let pole = GeoPoint {
        lat: 90.0,
        lon: 0.0,
    };
    let equator = GeoPoint { lat: 0.0, lon: 0.0 };
    assert!(
        (haversine_km(pole, equator) - EARTH_RADIUS_KM * std::f64::consts::FRAC_PI_2).abs() < 1e-6
    );
}

#[test]
fn bitsets_hold_up_to_64_ids() {
    let s = BitSet64::single(3).with(63).with(0);
    assert!(s.contains(3) && s.contains(63) && s.contains(0));
    assert!(!s.contains(4));
    assert!(s.contains_all(BitSet64::single(63).with(3)));
    assert!(!s.contains_all(BitSet64::single(5)));
    assert!(s.contains_all(BitSet64::EMPTY));
    // Out of range ids are never members.
    assert_eq!(BitSet64::single(64), BitSet64::EMPTY);
    assert!(!s.contains(200));
}

#[test]
fn intervals_are_half_open() {
    let morning = Interval {
        start: 480,
        end: 720,
    };
    assert!(morning.overlaps(&Interval {
        start: 719,
        end: 800
    }));
    assert!(!morning.overlaps(&Interval {
        start: 720,
        end: 800
    }));
    assert!(!morning.overlaps(&Interval {
        start: 300,
        end: 480
    }));
    assert!(morning.overlaps(&Interval {
        start: 500,
        end: 510
    }));
    assert_eq!(
        overlapping_booking(
            &[
                Interval { start: 0, end: 10 },
                Interval {
                    start: 700,
                    end: 760
                }
            ],
            morning
        ),
        Some(Interval {
            start: 700,
            end: 760
        })
    );
}

#[test]
fn cost_formula_terms() {
    let config = crate::support::test_config();
    let o = order(1, north(0.0));
    let mut w = worker(7, north(2.5));
    assert_eq!(config.weights.offset(), 15_000);
    assert_eq!(pair_cost(&o, &w, &config), Some(15_000 + 2_500));
    w.credit = 850;
    w.recent_load = 3;
    assert_eq!(pair_cost(&o, &w, &config), Some(15_000 + 2_500 + 300 + 900));
    // Credit above 1,000 counts as 1,000.
    w.credit = 1_100;
    assert_eq!(pair_cost(&o, &w, &config), Some(15_000 + 2_500 + 900));
    let mut urgent = o.clone();
    urgent.priority = Priority::High;
    urgent.preferred = Some(WorkerId(7));
    assert_eq!(
        pair_cost(&urgent, &w, &config),
        Some(15_000 + 2_500 + 900 - 5_000 - 2_000)
    );
    // Never negative, whatever the bonuses.
    let near = worker(8, north(0.0));
    let mut emergency = o.clone();
    emergency.priority = Priority::Emergency;
    emergency.preferred = Some(WorkerId(8));
    assert_eq!(pair_cost(&emergency, &near, &config), Some(0));
}

#[test]
fn a_custom_travel_time_is_charged_as_km_at_the_reference_speed() {
    /// Twice as slow as the default everywhere.
    struct Congested;
    impl TravelTime for Congested {
        fn minutes(&self, from: GeoPoint, to: GeoPoint) -> f64 {
            2.0 * HaversineTravel.minutes(from, to)
        }
    }
    let config = crate::support::test_config();
    let o = order(1, north(0.0));
    let w = worker(1, north(3.0));
    assert_eq!(
        pair_cost_with(&o, &w, &config, &Congested),
        Some(15_000 + 6_000)
    );
    let mut m = Matcher::with_travel_time(config, Congested);
    m.upsert_worker(w);
    m.add_order(o.clone());
    let batch = m.match_batch();
    assert_eq!(batch.total_cost, 21_000);
    assert_eq!(
        m.pair_cost(&o, m.worker(WorkerId(1)).expect("worker")),
        Some(21_000)
    );
}

#[test]
fn invalid_input_is_never_eligible() {
    let config = crate::support::test_config();
    let mut o = order(1, north(0.0));
    let w = worker(1, north(1.0));
    o.window = Interval {
        start: 600,
        end: 600,
    };
    assert_eq!(eligibility(&o, &w, &config), Err(Ineligible::InvalidOrder));
    let mut o = order(
        1,
        GeoPoint {
            lat: f64::NAN,
            lon: 0.0,
        },
    );
    assert_eq!(eligibility(&o, &w, &config), Err(Ineligible::InvalidOrder));
    o.location = north(0.0);
    let mut lost = w.clone();
    lost.location = GeoPoint {
        lat: 91.0,
        lon: 0.0,
    };
    assert_eq!(eligibility(&o, &lost, &config), Err(Ineligible::NoLocation));
    // A matcher fed such a worker and order simply matches nothing.
    let mut m = Matcher::new(config);
    m.upsert_worker(lost);
    m.add_order(order(
        2,
        GeoPoint {
            lat: f64::INFINITY,
            lon: 0.0,
        },
    ));
    let batch = m.match_batch();
    assert_eq!((batch.filled(), batch.slots), (0, 1));
}
