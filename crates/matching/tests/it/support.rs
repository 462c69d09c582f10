//! Shared test support: a seeded SplitMix64 generator and instance builders.

#![allow(dead_code)]

use daojia_matching::*;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, seeded, good enough for test instances.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// An index drawn with the given weights.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

pub const CENTRE: GeoPoint = GeoPoint {
    lat: 27.948,
    lon: 116.358,
};

/// A point about `km` east and `north_km` north of the centre.
pub fn offset(km_east: f64, km_north: f64) -> GeoPoint {
    let lat = CENTRE.lat + km_north / 111.195;
    let lon = CENTRE.lon + km_east / (111.195 * CENTRE.lat.to_radians().cos());
    GeoPoint { lat, lon }
}

/// A point `km` due north of the centre (great-circle distance exactly `km` to the centre, up
/// to rounding), so that scripted costs are exact integers.
pub fn north(km: f64) -> GeoPoint {
    GeoPoint {
        lat: CENTRE.lat + km / (EARTH_RADIUS_KM * std::f64::consts::PI / 180.0),
        lon: CENTRE.lon,
    }
}

/// An active, contracted worker with one skill (service 0) and no certificates.
pub fn worker(id: u32, at: GeoPoint) -> Worker {
    Worker {
        id: WorkerId(id),
        location: at,
        skills: BitSet64::single(0),
        certificates: BitSet64::EMPTY,
        contracted: true,
        status: WorkerStatus::Active,
        bookings: Vec::new(),
        credit: 1000,
        recent_load: 0,
        service_area: None,
    }
}

/// A one-slot cleaning order for service 0 from 10:00 to 12:00.
pub fn order(id: u32, at: GeoPoint) -> Order {
    Order {
        id: OrderId(id),
        location: at,
        service: 0,
        category: Category::Cleaning,
        required_certificates: BitSet64::EMPTY,
        window: Interval {
            start: 600,
            end: 720,
        },
        workers_needed: 1,
        preferred: None,
        priority: Priority::Normal,
        declined: Vec::new(),
    }
}

/// Fuzhou's counties: seat and share of population (shared/data/fuzhou.json).
const COUNTIES: [(f64, f64, f64); 11] = [
    (27.977, 116.312, 0.30),
    (28.248, 116.603, 0.10),
    (27.569, 116.637, 0.09),
    (27.282, 116.907, 0.06),
    (27.218, 116.525, 0.08),
    (27.764, 116.061, 0.08),
    (27.428, 115.831, 0.07),
    (27.555, 116.236, 0.06),
    (27.918, 116.755, 0.07),
    (27.706, 117.060, 0.04),
    (26.838, 116.326, 0.05),
];

/// Services per category (catalogue order) and their certificate bits.
const SERVICES: [(Category, u64); 48] = {
    use Category::*;
    [
        (Cleaning, 0),
        (Cleaning, 0),
        (Cleaning, 0),
        (Cleaning, 1 << 0),
        (Cleaning, 0),
        (Cleaning, 0),
        (Cleaning, 0),
        (Cleaning, 0),
        (Cleaning, 0),
        (Cleaning, 0),
        (Cleaning, 0),
        (Cleaning, 1 << 1),
        (Cleaning, 1 << 1),
        (Cleaning, 1 << 2),
        (Housekeeping, 0),
        (Housekeeping, 1 << 3),
        (Housekeeping, 1 << 3),
        (Housekeeping, 1 << 3 | 1 << 4),
        (Housekeeping, 1 << 5),
        (Housekeeping, 0),
        (Housekeeping, 0),
        (Housekeeping, 0),
        (Housekeeping, 0),
        (Maternity, 1 << 6),
        (Maternity, 1 << 7),
        (Maternity, 1 << 8),
        (Childcare, 1 << 9),
        (Childcare, 1 << 10),
        (Childcare, 1 << 9),
        (Childcare, 0),
        (Childcare, 0),
        (Childcare, 1 << 11),
        (Eldercare, 1 << 12),
        (Eldercare, 1 << 12),
        (Eldercare, 1 << 12 | 1 << 13),
        (Eldercare, 1 << 12),
        (Eldercare, 0),
        (Eldercare, 1 << 12),
        (Eldercare, 1 << 14),
        (Eldercare, 1 << 15),
        (Eldercare, 1 << 12),
        (Eldercare, 1 << 12 | 1 << 16),
        (Repair, 1 << 17),
        (Repair, 1 << 17),
        (Repair, 0),
        (Repair, 1 << 18),
        (Repair, 1 << 19),
        (Repair, 0),
    ]
};

const CATEGORY_MIX: [f64; 6] = [0.30, 0.25, 0.08, 0.10, 0.17, 0.10];

fn services_of(category: Category) -> Vec<u8> {
    (0..48u8)
        .filter(|&s| SERVICES[s as usize].0 == category)
        .collect()
}

fn county_point(rng: &mut Rng, sigma_deg: f64) -> GeoPoint {
    let shares: Vec<f64> = COUNTIES.iter().map(|c| c.2).collect();
    let (lat, lon, _) = COUNTIES[rng.weighted(&shares)];
    GeoPoint {
        lat: lat + rng.normal() * sigma_deg,
        lon: lon + rng.normal() * sigma_deg,
    }
}

/// A Fuzhou-like instance: workers and orders around the county seats, the catalogue's service
/// mix and certificates, partial certificate coverage, some inactive or uncontracted workers,
/// existing bookings, credit and load spread, service areas, preferences and declines.
pub fn fuzhou(orders: usize, workers: usize, seed: u64) -> (Vec<Order>, Vec<Worker>) {
    let mut rng = Rng::new(seed);
    let mut ws = Vec::with_capacity(workers);
    for id in 0..workers as u32 {
        let category = Category::ALL[rng.weighted(&CATEGORY_MIX)];
        let own = services_of(category);
        let mut skills = BitSet64::EMPTY;
        let mut certificates = BitSet64::EMPTY;
        let n = 2 + rng.below(4);
        for _ in 0..n {
            let s = own[rng.below(own.len() as u64) as usize];
            skills = skills.with(s);
        }
        if rng.chance(0.3) {
            skills = skills.with(rng.below(48) as u8);
        }
        for s in 0..48u8 {
            if skills.contains(s) && rng.chance(0.85) {
                certificates = BitSet64(certificates.0 | SERVICES[s as usize].1);
            }
        }
        let status = match rng.below(20) {
            0 => WorkerStatus::Offline,
            1 => WorkerStatus::Suspended,
            _ => WorkerStatus::Active,
        };
        let location = county_point(&mut rng, 0.06);
        let mut bookings = Vec::new();
        if rng.chance(0.3) {
            let start = 480 + rng.below(600) as i64;
            bookings.push(Interval {
                start,
                end: start + 60 + rng.below(180) as i64,
            });
        }
        ws.push(Worker {
            id: WorkerId(id),
            location,
            skills,
            certificates,
            contracted: rng.chance(0.95),
            status,
            bookings,
            credit: 600 + rng.below(401) as u16,
            recent_load: rng.below(8) as u16,
            service_area: rng.chance(0.2).then(|| (location, 8.0 + rng.unit() * 20.0)),
        });
    }
    let mut os = Vec::with_capacity(orders);
    for id in 0..orders as u32 {
        let category = Category::ALL[rng.weighted(&CATEGORY_MIX)];
        let own = services_of(category);
        let service = own[rng.below(own.len() as u64) as usize];
        let start = 480 + rng.below(720) as i64;
        let workers_needed = match rng.below(100) {
            0..=89 => 1,
            90..=96 => 2,
            _ => 3,
        };
        let preferred =
            (workers > 0 && rng.chance(0.1)).then(|| WorkerId(rng.below(workers as u64) as u32));
        let declined = if workers > 0 && rng.chance(0.05) {
            vec![WorkerId(rng.below(workers as u64) as u32)]
        } else {
            Vec::new()
        };
        let priority = match rng.below(100) {
            0 => Priority::Emergency,
            1..=4 => Priority::High,
            _ => Priority::Normal,
        };
        os.push(Order {
            id: OrderId(id),
            location: county_point(&mut rng, 0.05),
            service,
            category,
            required_certificates: BitSet64(SERVICES[service as usize].1),
            window: Interval {
                start,
                end: start + 60 + rng.below(180) as i64,
            },
            workers_needed,
            preferred,
            priority,
            declined,
        });
    }
    (os, ws)
}

/// A small random instance for brute-force comparison: at most `max_slots` slots in total and
/// at most `max_workers` workers, within a few km, with every hard filter exercised.
pub fn small(rng: &mut Rng, max_slots: usize, max_workers: usize) -> (Vec<Order>, Vec<Worker>) {
    let n_workers = 1 + rng.below(max_workers as u64) as usize;
    let mut workers = Vec::new();
    for i in 0..n_workers {
        let id = WorkerId(3 * i as u32 + 1);
        let mut skills = BitSet64::EMPTY;
        for s in 0..2u8 {
            if rng.chance(0.75) {
                skills = skills.with(s);
            }
        }
        let certificates = BitSet64(rng.below(4));
        let status = match rng.below(10) {
            0 => WorkerStatus::Suspended,
            1 => WorkerStatus::Offline,
            _ => WorkerStatus::Active,
        };
        let mut bookings = Vec::new();
        if rng.chance(0.3) {
            let start = rng.below(300) as i64;
            bookings.push(Interval {
                start,
                end: start + 30 + rng.below(90) as i64,
            });
        }
        let location = offset(rng.normal() * 5.0, rng.normal() * 5.0);
        workers.push(Worker {
            id,
            location,
            skills,
            certificates,
            contracted: rng.chance(0.9),
            status,
            bookings,
            credit: rng.below(1200) as u16,
            recent_load: rng.below(6) as u16,
            service_area: rng.chance(0.2).then(|| {
                (
                    offset(rng.normal() * 5.0, rng.normal() * 5.0),
                    3.0 + rng.unit() * 8.0,
                )
            }),
        });
    }
    let mut orders = Vec::new();
    let mut slots = 0;
    let target = 1 + rng.below(max_slots as u64) as usize;
    let mut id = 0u32;
    while slots < target {
        let needed = (1 + rng.below(3) as usize).min(target - slots);
        slots += needed;
        id += 1 + rng.below(3) as u32;
        let start = rng.below(300) as i64;
        let pick = |rng: &mut Rng| workers[rng.below(workers.len() as u64) as usize].id;
        orders.push(Order {
            id: OrderId(id),
            location: offset(rng.normal() * 5.0, rng.normal() * 5.0),
            service: rng.below(2) as u8,
            category: Category::ALL[rng.below(6) as usize],
            required_certificates: BitSet64(rng.below(4) & rng.below(4)),
            window: Interval {
                start,
                end: start + 30 + rng.below(90) as i64,
            },
            workers_needed: needed as u8,
            preferred: rng.chance(0.25).then(|| pick(rng)),
            priority: [Priority::Normal, Priority::High, Priority::Emergency]
                [rng.below(3) as usize],
            declined: if rng.chance(0.2) {
                vec![pick(rng)]
            } else {
                Vec::new()
            },
        });
    }
    (orders, workers)
}

/// The best (most slots, then least cost) assignment by enumeration: (slots filled, cost).
pub fn brute_force(orders: &[Order], workers: &[Worker], config: &MatchConfig) -> (usize, i64) {
    let rows: Vec<usize> = orders
        .iter()
        .enumerate()
        .flat_map(|(i, o)| std::iter::repeat_n(i, usize::from(o.workers_needed)))
        .collect();
    let cost: Vec<Vec<Option<i64>>> = orders
        .iter()
        .map(|o| workers.iter().map(|w| pair_cost(o, w, config)).collect())
        .collect();
    let mut best = (0usize, 0i64);
    let mut used = vec![false; workers.len()];
    // Slots of one order are interchangeable: their workers are taken in increasing index
    // order and unfilled slots come last, so each assignment is enumerated once.
    #[allow(clippy::too_many_arguments)]
    fn go(
        r: usize,
        prev: Option<Option<usize>>,
        rows: &[usize],
        cost: &[Vec<Option<i64>>],
        used: &mut [bool],
        filled: usize,
        total: i64,
        best: &mut (usize, i64),
    ) {
        if r == rows.len() {
            if filled > best.0 || (filled == best.0 && total < best.1) {
                *best = (filled, total);
            }
            return;
        }
        let same_order = r > 0 && rows[r - 1] == rows[r];
        let prev = if same_order { prev } else { None };
        let next_prev = |choice: Option<usize>| Some(choice);
        // Leave this slot unfilled.
        go(
            r + 1,
            next_prev(None),
            rows,
            cost,
            used,
            filled,
            total,
            best,
        );
        if prev == Some(None) {
            return;
        }
        let from = match prev {
            Some(Some(w)) => w + 1,
            _ => 0,
        };
        for w in from..used.len() {
            if used[w] {
                continue;
            }
            if let Some(c) = cost[rows[r]][w] {
                used[w] = true;
                go(
                    r + 1,
                    next_prev(Some(w)),
                    rows,
                    cost,
                    used,
                    filled + 1,
                    total + c,
                    best,
                );
                used[w] = false;
            }
        }
    }
    go(0, None, &rows, &cost, &mut used, 0, 0, &mut best);
    best
}

/// A matcher holding these workers and orders.
pub fn matcher_with(config: MatchConfig, orders: &[Order], workers: &[Worker]) -> Matcher {
    let mut m = Matcher::new(config);
    for w in workers {
        m.upsert_worker(w.clone());
    }
    for o in orders {
        m.add_order(o.clone());
    }
    m
}

/// Every invariant a batch result must keep, checked against the matcher's own state.
pub fn assert_valid(
    result: &BatchResult,
    orders: &[Order],
    workers: &[Worker],
    config: &MatchConfig,
) {
    let mut seen = std::collections::HashSet::new();
    let mut per_order = std::collections::HashMap::new();
    let mut total = 0;
    for a in &result.assignments {
        let order = orders
            .iter()
            .find(|o| o.id == a.order)
            .expect("assigned order exists");
        let worker = workers
            .iter()
            .find(|w| w.id == a.worker)
            .expect("assigned worker exists");
        assert!(seen.insert(a.worker), "{} assigned twice", a.worker);
        *per_order.entry(a.order).or_insert(0usize) += 1;
        assert_eq!(
            eligibility(order, worker, config).err(),
            None,
            "{} may not take {}",
            a.worker,
            a.order
        );
        assert_eq!(pair_cost(order, worker, config), Some(a.cost));
        assert!(
            worker.bookings.iter().all(|b| !b.overlaps(&order.window)),
            "{} double-booked by {}",
            a.worker,
            a.order
        );
        total += a.cost;
    }
    for (id, n) in per_order {
        let order = orders.iter().find(|o| o.id == id).expect("order");
        assert!(n <= usize::from(order.workers_needed), "{id} over-filled");
    }
    assert_eq!(result.total_cost, total);
    assert_eq!(
        result.slots,
        orders
            .iter()
            .map(|o| usize::from(o.workers_needed))
            .sum::<usize>()
    );
    let mut sorted = result.assignments.clone();
    sorted.sort_by_key(|a| (a.order, a.worker));
    assert_eq!(
        sorted, result.assignments,
        "assignments sorted by (order, worker)"
    );
}

/// The default configuration with a solver time budget no test run can exhaust, so that no
/// result depends on how busy the machine is (a test of the fallback sets its own budget).
pub fn test_config() -> MatchConfig {
    MatchConfig {
        time_budget: std::time::Duration::from_secs(3600),
        ..MatchConfig::default()
    }
}
