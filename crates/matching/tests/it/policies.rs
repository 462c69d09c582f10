//! Snapshot tests of the dispatch policies on small scripted cases.
//!
//! Workers stand due north of the order, so each distance is exact and each cost is
//! `15,000 (offset) + 1,000 per km + 2 per credit point below 1,000 + 300 per recent order`,
//! minus 5,000 for the preferred worker and the priority bonus.

use daojia_matching::policy::{
    Candidate, check_grab, emergency_offers, grab_pool, next_offer, preferred_first,
};
use daojia_matching::*;

use crate::support::{north, order, worker};

const CERT: u8 = 0;

fn cleaner(id: u32, km: f64) -> Worker {
    let mut w = worker(id, north(km));
    w.certificates = BitSet64::single(CERT);
    w
}

/// Four eligible cleaners (1, 2, 3, 4) and four who are not (5 too far, 6 suspended, 7 booked,
/// 8 uncertified); the order prefers worker 4.
fn cleaning_scene() -> (Matcher, Order) {
    let mut m = Matcher::new(crate::support::test_config());
    let mut w2 = cleaner(2, 2.0);
    w2.credit = 900;
    let mut w3 = cleaner(3, 0.5);
    w3.recent_load = 4;
    let mut w6 = cleaner(6, 0.2);
    w6.status = WorkerStatus::Suspended;
    let mut w7 = cleaner(7, 2.5);
    w7.bookings = vec![Interval {
        start: 600,
        end: 700,
    }];
    let mut w8 = cleaner(8, 4.0);
    w8.certificates = BitSet64::EMPTY;
    for w in [
        cleaner(1, 1.0),
        w2,
        w3,
        cleaner(4, 3.0),
        cleaner(5, 20.0),
        w6,
        w7,
        w8,
    ] {
        m.upsert_worker(w);
    }
    let mut o = order(1, north(0.0));
    o.required_certificates = BitSet64::single(CERT);
    o.preferred = Some(WorkerId(4));
    (m, o)
}

fn snapshot(candidates: &[Candidate]) -> Vec<(u32, i64, String)> {
    candidates
        .iter()
        .map(|c| (c.worker.0, c.cost, format!("{:.3}", c.distance_km)))
        .collect()
}

fn one(c: Option<Candidate>) -> Option<(u32, i64)> {
    c.map(|c| (c.worker.0, c.cost))
}

#[test]
fn preferred_worker_is_offered_first() {
    let (m, o) = cleaning_scene();
    assert_eq!(one(preferred_first(&m, &o)), Some((4, 18_000 - 5_000)));
    assert_eq!(one(next_offer(&m, &o, &[])), Some((4, 13_000)));
}

#[test]
fn ineligible_preferred_worker_is_skipped() {
    let (mut m, mut o) = cleaning_scene();
    m.book(
        WorkerId(4),
        Interval {
            start: 700,
            end: 800,
        },
    )
    .unwrap();
    assert_eq!(preferred_first(&m, &o), None);
    assert_eq!(one(next_offer(&m, &o, &[])), Some((1, 16_000)));
    o.preferred = Some(WorkerId(99));
    assert_eq!(preferred_first(&m, &o), None);
}

#[test]
fn offer_cascade_walks_down_the_ranking() {
    let (m, o) = cleaning_scene();
    let mut offered = Vec::new();
    let mut cascade = Vec::new();
    while let Some(next) = next_offer(&m, &o, &offered) {
        cascade.push((next.worker.0, next.cost));
        offered.push(next.worker);
    }
    assert_eq!(
        cascade,
        vec![(4, 13_000), (1, 16_000), (3, 16_700), (2, 17_200)]
    );
}

#[test]
fn offer_cascade_never_returns_a_worker_who_declined() {
    let (m, mut o) = cleaning_scene();
    o.declined = vec![WorkerId(4), WorkerId(1)];
    assert_eq!(one(next_offer(&m, &o, &[])), Some((3, 16_700)));
    assert_eq!(one(next_offer(&m, &o, &[WorkerId(3)])), Some((2, 17_200)));
}

#[test]
fn grab_pool_is_every_eligible_worker_ranked() {
    let (m, o) = cleaning_scene();
    assert_eq!(
        snapshot(&grab_pool(&m, &o)),
        vec![
            (4, 13_000, "3.000".to_string()),
            (1, 16_000, "1.000".to_string()),
            (3, 16_700, "0.500".to_string()),
            (2, 17_200, "2.000".to_string()),
        ]
    );
}

#[test]
fn grabs_are_checked_against_every_hard_filter() {
    let (m, o) = cleaning_scene();
    assert_eq!(check_grab(&m, &o, WorkerId(1)).map(|c| c.cost), Ok(16_000));
    assert_eq!(check_grab(&m, &o, WorkerId(5)), Err(Ineligible::TooFar));
    assert_eq!(
        check_grab(&m, &o, WorkerId(6)),
        Err(Ineligible::NotActive(WorkerStatus::Suspended))
    );
    assert_eq!(
        check_grab(&m, &o, WorkerId(7)),
        Err(Ineligible::Booked(Interval {
            start: 600,
            end: 700
        }))
    );
    assert_eq!(
        check_grab(&m, &o, WorkerId(8)),
        Err(Ineligible::MissingCertificates)
    );
    assert_eq!(
        check_grab(&m, &o, WorkerId(99)),
        Err(Ineligible::UnknownWorker(WorkerId(99)))
    );
}

/// Elder carers (service 40) at 0.8, 0.3, 5, 9 and 11 km, one more at 0.1 km off shift, and a
/// cleaner next door who cannot help.
fn emergency_scene() -> (Matcher, Order) {
    let mut m = Matcher::new(crate::support::test_config());
    let carer = |id: u32, km: f64| {
        let mut w = cleaner(id, km);
        w.skills = BitSet64::single(40);
        w
    };
    let mut off_shift = carer(16, 0.1);
    off_shift.status = WorkerStatus::Offline;
    for w in [
        carer(11, 0.8),
        carer(12, 0.3),
        carer(13, 5.0),
        carer(14, 9.0),
        carer(15, 11.0),
        off_shift,
        cleaner(17, 0.05),
    ] {
        m.upsert_worker(w);
    }
    let mut call = order(9, north(0.0));
    call.service = 40;
    call.category = Category::Eldercare;
    call.priority = Priority::Emergency;
    call.required_certificates = BitSet64::single(CERT);
    (m, call)
}

#[test]
fn emergency_offers_the_nearest_carers_in_parallel() {
    let (m, call) = emergency_scene();
    assert_eq!(
        snapshot(&emergency_offers(&m, &call, 3)),
        vec![
            (12, 5_300, "0.300".to_string()),
            (11, 5_800, "0.800".to_string()),
            (13, 10_000, "5.000".to_string()),
        ]
    );
    // Asking for more never reaches past the eldercare radius (10 km).
    let all: Vec<u32> = emergency_offers(&m, &call, 10)
        .iter()
        .map(|c| c.worker.0)
        .collect();
    assert_eq!(all, vec![12, 11, 13, 14]);
}

#[test]
fn emergency_with_nobody_eligible_is_empty() {
    let (m, mut call) = emergency_scene();
    call.location = north(60.0);
    assert!(emergency_offers(&m, &call, 3).is_empty());
    call.location = north(0.0);
    call.declined = vec![WorkerId(12)];
    let got: Vec<u32> = emergency_offers(&m, &call, 2)
        .iter()
        .map(|c| c.worker.0)
        .collect();
    assert_eq!(got, vec![11, 13]);
}
