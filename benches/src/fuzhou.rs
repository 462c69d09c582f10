//! A deterministic Fuzhou-like (抚州, Jiangxi) matching instance: workers and a batch of orders
//! spread over the eleven counties, with the 48-type catalogue, realistic certificate coverage,
//! existing bookings and a credit spread. Everything follows from `(orders, workers, seed)`.
//!
//! The facts are copied from the steering repo's `shared/data/fuzhou.json` (county seats and the
//! simulated split of activity by county) and `shared/data/catalog-reference.tsv` (service
//! types, categories, certificates, typical hours), because CI clones only this repository.
//! Everything else here (demand and supply mix, certificate coverage, status and booking rates,
//! spreads) is an assumption for simulation, marked as such.

use daojia_matching::{
    BitSet64, Category, GeoPoint, Interval, Minute, Order, OrderId, Priority, Worker, WorkerId,
    WorkerStatus,
};

use crate::splitmix::SplitMix64;

/// A county (区/县) seat and its share of workers and orders.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct County {
    /// Id as in `fuzhou.json`.
    pub id: &'static str,
    /// Seat latitude (approximate, about 0.05 degrees).
    pub lat: f64,
    /// Seat longitude.
    pub lon: f64,
    /// Share of activity (an assumption of `fuzhou.json`, summing to 1).
    pub share: f64,
}

/// From `shared/data/fuzhou.json`, `counties` (id, lat, lon, share).
pub const COUNTIES: [County; 11] = [
    County {
        id: "linchuan",
        lat: 27.977,
        lon: 116.312,
        share: 0.30,
    },
    County {
        id: "dongxiang",
        lat: 28.248,
        lon: 116.603,
        share: 0.10,
    },
    County {
        id: "nancheng",
        lat: 27.569,
        lon: 116.637,
        share: 0.09,
    },
    County {
        id: "lichuan",
        lat: 27.282,
        lon: 116.907,
        share: 0.06,
    },
    County {
        id: "nanfeng",
        lat: 27.218,
        lon: 116.525,
        share: 0.08,
    },
    County {
        id: "chongren",
        lat: 27.764,
        lon: 116.061,
        share: 0.08,
    },
    County {
        id: "lean",
        lat: 27.428,
        lon: 115.831,
        share: 0.07,
    },
    County {
        id: "yihuang",
        lat: 27.555,
        lon: 116.236,
        share: 0.06,
    },
    County {
        id: "jinxi",
        lat: 27.918,
        lon: 116.755,
        share: 0.07,
    },
    County {
        id: "zixi",
        lat: 27.706,
        lon: 117.060,
        share: 0.04,
    },
    County {
        id: "guangchang",
        lat: 26.838,
        lon: 116.326,
        share: 0.05,
    },
];

/// Certificate kinds named in the catalogue (bit = declaration order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Certificate {
    /// work_at_height
    WorkAtHeight,
    /// disinfection
    Disinfection,
    /// organiser
    Organiser,
    /// housekeeper
    Housekeeper,
    /// household_manager
    HouseholdManager,
    /// cook
    Cook,
    /// maternity_nurse
    MaternityNurse,
    /// lactation
    Lactation,
    /// postpartum_care
    PostpartumCare,
    /// nursery_nurse
    NurseryNurse,
    /// paediatric_massage
    PaediatricMassage,
    /// early_education
    EarlyEducation,
    /// elder_carer
    ElderCarer,
    /// nursing
    Nursing,
    /// food_handler
    FoodHandler,
    /// rehabilitation
    Rehabilitation,
    /// first_aid
    FirstAid,
    /// electrician
    Electrician,
    /// appliance_repair
    ApplianceRepair,
    /// construction
    Construction,
}

impl Certificate {
    /// Every kind, in bit order.
    pub const ALL: [Certificate; 20] = [
        Certificate::WorkAtHeight,
        Certificate::Disinfection,
        Certificate::Organiser,
        Certificate::Housekeeper,
        Certificate::HouseholdManager,
        Certificate::Cook,
        Certificate::MaternityNurse,
        Certificate::Lactation,
        Certificate::PostpartumCare,
        Certificate::NurseryNurse,
        Certificate::PaediatricMassage,
        Certificate::EarlyEducation,
        Certificate::ElderCarer,
        Certificate::Nursing,
        Certificate::FoodHandler,
        Certificate::Rehabilitation,
        Certificate::FirstAid,
        Certificate::Electrician,
        Certificate::ApplianceRepair,
        Certificate::Construction,
    ];

    /// Its bit in [`Worker::certificates`] and [`Order::required_certificates`].
    pub fn bit(self) -> u8 {
        self as u8
    }

    /// Assumption: the share of workers skilled in a service needing this certificate who hold
    /// it (elder carers are usually certified, maternity nurses and rehabilitation are scarcer).
    fn coverage(self) -> f64 {
        match self {
            Certificate::WorkAtHeight => 0.50,
            Certificate::Disinfection => 0.60,
            Certificate::Organiser => 0.50,
            Certificate::Housekeeper => 0.80,
            Certificate::HouseholdManager => 0.30,
            Certificate::Cook => 0.60,
            Certificate::MaternityNurse => 0.55,
            Certificate::Lactation => 0.50,
            Certificate::PostpartumCare => 0.50,
            Certificate::NurseryNurse => 0.75,
            Certificate::PaediatricMassage => 0.50,
            Certificate::EarlyEducation => 0.45,
            Certificate::ElderCarer => 0.90,
            Certificate::Nursing => 0.35,
            Certificate::FoodHandler => 0.80,
            Certificate::Rehabilitation => 0.30,
            Certificate::FirstAid => 0.60,
            Certificate::Electrician => 0.85,
            Certificate::ApplianceRepair => 0.70,
            Certificate::Construction => 0.40,
        }
    }
}

/// A service type of the catalogue (its index in [`SERVICES`] is [`Order::service`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServiceType {
    /// Catalogue code.
    pub code: &'static str,
    /// Category (radius limit).
    pub category: Category,
    /// Certificates required besides the health certificate.
    pub certificates: &'static [Certificate],
    /// Typical hours of one visit; 0 = live-in or long term.
    pub typical_hours: u8,
    /// Assumption, not in the TSV: relative share of instant-batch demand (per mille; E09 is a
    /// sensor subscription and E10 comes only from the emergency path, so both are 0).
    pub demand: u32,
}

use Category::{Childcare, Cleaning, Eldercare, Housekeeping, Maternity, Repair};
use Certificate as C;

/// From `shared/data/catalog-reference.tsv` (code, category, certificates, typical_hours), in
/// file order, plus the assumed `demand` mix: cleaning 35%, housekeeping 25%, eldercare 17%,
/// childcare 12%, repair 7%, maternity 4%.
#[rustfmt::skip]
pub const SERVICES: [ServiceType; 48] = [
    ServiceType { code: "C01", category: Cleaning, certificates: &[], typical_hours: 3, demand: 100 },
    ServiceType { code: "C02", category: Cleaning, certificates: &[], typical_hours: 6, demand: 50 },
    ServiceType { code: "C03", category: Cleaning, certificates: &[], typical_hours: 8, demand: 20 },
    ServiceType { code: "C04", category: Cleaning, certificates: &[C::WorkAtHeight], typical_hours: 3, demand: 25 },
    ServiceType { code: "C05", category: Cleaning, certificates: &[], typical_hours: 2, demand: 30 },
    ServiceType { code: "C06", category: Cleaning, certificates: &[], typical_hours: 1, demand: 30 },
    ServiceType { code: "C07", category: Cleaning, certificates: &[], typical_hours: 1, demand: 15 },
    ServiceType { code: "C08", category: Cleaning, certificates: &[], typical_hours: 1, demand: 10 },
    ServiceType { code: "C09", category: Cleaning, certificates: &[], typical_hours: 2, demand: 15 },
    ServiceType { code: "C10", category: Cleaning, certificates: &[], typical_hours: 4, demand: 5 },
    ServiceType { code: "C11", category: Cleaning, certificates: &[], typical_hours: 2, demand: 15 },
    ServiceType { code: "C12", category: Cleaning, certificates: &[C::Disinfection], typical_hours: 2, demand: 15 },
    ServiceType { code: "C13", category: Cleaning, certificates: &[C::Disinfection], typical_hours: 4, demand: 5 },
    ServiceType { code: "C14", category: Cleaning, certificates: &[C::Organiser], typical_hours: 4, demand: 15 },
    ServiceType { code: "H01", category: Housekeeping, certificates: &[], typical_hours: 2, demand: 110 },
    ServiceType { code: "H02", category: Housekeeping, certificates: &[C::Housekeeper], typical_hours: 0, demand: 25 },
    ServiceType { code: "H03", category: Housekeeping, certificates: &[C::Housekeeper], typical_hours: 0, demand: 15 },
    ServiceType { code: "H04", category: Housekeeping, certificates: &[C::Housekeeper, C::HouseholdManager], typical_hours: 0, demand: 3 },
    ServiceType { code: "H05", category: Housekeeping, certificates: &[C::Cook], typical_hours: 6, demand: 35 },
    ServiceType { code: "H06", category: Housekeeping, certificates: &[], typical_hours: 2, demand: 25 },
    ServiceType { code: "H07", category: Housekeeping, certificates: &[], typical_hours: 1, demand: 17 },
    ServiceType { code: "H08", category: Housekeeping, certificates: &[], typical_hours: 1, demand: 12 },
    ServiceType { code: "H09", category: Housekeeping, certificates: &[], typical_hours: 1, demand: 8 },
    ServiceType { code: "M01", category: Maternity, certificates: &[C::MaternityNurse], typical_hours: 0, demand: 10 },
    ServiceType { code: "M02", category: Maternity, certificates: &[C::Lactation], typical_hours: 2, demand: 15 },
    ServiceType { code: "M03", category: Maternity, certificates: &[C::PostpartumCare], typical_hours: 2, demand: 15 },
    ServiceType { code: "K01", category: Childcare, certificates: &[C::NurseryNurse], typical_hours: 0, demand: 15 },
    ServiceType { code: "K02", category: Childcare, certificates: &[C::PaediatricMassage], typical_hours: 1, demand: 15 },
    ServiceType { code: "K03", category: Childcare, certificates: &[C::NurseryNurse], typical_hours: 8, demand: 15 },
    ServiceType { code: "K04", category: Childcare, certificates: &[], typical_hours: 1, demand: 40 },
    ServiceType { code: "K05", category: Childcare, certificates: &[], typical_hours: 2, demand: 20 },
    ServiceType { code: "K06", category: Childcare, certificates: &[C::EarlyEducation], typical_hours: 2, demand: 15 },
    ServiceType { code: "E01", category: Eldercare, certificates: &[C::ElderCarer], typical_hours: 4, demand: 55 },
    ServiceType { code: "E02", category: Eldercare, certificates: &[C::ElderCarer], typical_hours: 0, demand: 8 },
    ServiceType { code: "E03", category: Eldercare, certificates: &[C::ElderCarer, C::Nursing], typical_hours: 8, demand: 15 },
    ServiceType { code: "E04", category: Eldercare, certificates: &[C::ElderCarer], typical_hours: 12, demand: 20 },
    ServiceType { code: "E05", category: Eldercare, certificates: &[], typical_hours: 4, demand: 25 },
    ServiceType { code: "E06", category: Eldercare, certificates: &[C::ElderCarer], typical_hours: 1, demand: 15 },
    ServiceType { code: "E07", category: Eldercare, certificates: &[C::FoodHandler], typical_hours: 1, demand: 25 },
    ServiceType { code: "E08", category: Eldercare, certificates: &[C::Rehabilitation], typical_hours: 2, demand: 7 },
    ServiceType { code: "E09", category: Eldercare, certificates: &[C::ElderCarer], typical_hours: 0, demand: 0 },
    ServiceType { code: "E10", category: Eldercare, certificates: &[C::ElderCarer, C::FirstAid], typical_hours: 1, demand: 0 },
    ServiceType { code: "R01", category: Repair, certificates: &[C::Electrician], typical_hours: 1, demand: 25 },
    ServiceType { code: "R02", category: Repair, certificates: &[C::Electrician], typical_hours: 1, demand: 10 },
    ServiceType { code: "R03", category: Repair, certificates: &[], typical_hours: 1, demand: 15 },
    ServiceType { code: "R04", category: Repair, certificates: &[C::ApplianceRepair], typical_hours: 1, demand: 12 },
    ServiceType { code: "R05", category: Repair, certificates: &[C::Construction], typical_hours: 6, demand: 2 },
    ServiceType { code: "R06", category: Repair, certificates: &[], typical_hours: 4, demand: 6 },
];

/// E10 一键呼叫应急上门 (one-tap emergency call-out), the service of emergency orders.
pub const EMERGENCY_SERVICE: u8 = 41;

/// Assumption: services of big orders (大单) needing 2-4 workers: deep and post-renovation
/// cleaning, floor waxing, house moving.
const BIG_ORDER_SERVICES: [u8; 4] = [1, 2, 9, 47];

/// The batch's "now": order windows and bookings are relative to it.
pub const NOW: Minute = 0;

/// Assumption: workers by primary category (per mille), in [`Category::ALL`] order.
const SUPPLY_PERMILLE: [u32; 6] = [280, 270, 70, 120, 180, 80];

/// Assumption: the category a worker's second line of work most often is in.
const SECONDARY: [Category; 6] = [
    Housekeeping, // cleaning
    Cleaning,     // housekeeping
    Childcare,    // maternity
    Maternity,    // childcare
    Housekeeping, // eldercare
    Cleaning,     // repair
];

/// Assumption: standing of workers (per mille): Active, Offline, InRetraining, Suspended,
/// BlackListed.
const STATUS_PERMILLE: [(WorkerStatus, u32); 5] = [
    (WorkerStatus::Active, 930),
    (WorkerStatus::Offline, 30),
    (WorkerStatus::InRetraining, 20),
    (WorkerStatus::Suspended, 15),
    (WorkerStatus::BlackListed, 5),
];

/// Assumption: spread of homes and order addresses around a county seat (gaussian sigma, km).
const SPREAD_KM: f64 = 6.0;
/// Assumption: share of workers with a signed platform contract.
const CONTRACTED: f64 = 0.90;
/// Assumption: share of workers with accepted bookings around the batch.
const WITH_BOOKINGS: f64 = 0.35;
/// Assumption: share of workers who limit their service area.
const WITH_SERVICE_AREA: f64 = 0.15;
/// Assumption: emergency one-tap calls among orders.
const EMERGENCY: f64 = 0.01;
/// Assumption: big orders among orders.
const BIG: f64 = 0.03;
/// Assumption: orders raised to high priority by ops or policy.
const HIGH: f64 = 0.02;
/// Assumption: repurchases naming a preferred worker (复购).
const PREFERRED: f64 = 0.10;
/// Assumption: orders being re-offered after a worker declined.
const DECLINED: f64 = 0.03;

/// Kilometres per degree of latitude.
const KM_PER_DEGREE: f64 = 111.32;

/// Workers and one batch of pending orders; ids are dense (`orders[i].id == OrderId(i)`,
/// `workers[i].id == WorkerId(i)`).
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Pending orders, in arrival order.
    pub orders: Vec<Order>,
    /// Workers.
    pub workers: Vec<Worker>,
}

impl Instance {
    /// Order slots requested (sum of `workers_needed`).
    pub fn slots(&self) -> usize {
        self.orders
            .iter()
            .map(|o| usize::from(o.workers_needed))
            .sum()
    }
}

/// Certificates a service type requires, as a set.
pub fn required_certificates(service: &ServiceType) -> BitSet64 {
    service
        .certificates
        .iter()
        .fold(BitSet64::EMPTY, |s, c| s.with(c.bit()))
}

/// How long one booking of a service takes: the typical hours, and for live-in or long-term
/// types (typical hours 0) 26 days for a maternity nurse and 30 days otherwise.
pub fn duration_minutes(service: &ServiceType) -> Minute {
    match (service.typical_hours, service.category) {
        (0, Maternity) => 26 * 24 * 60,
        (0, _) => 30 * 24 * 60,
        (h, _) => Minute::from(h) * 60,
    }
}

/// Generates `orders` orders and `workers` workers. The workers depend only on
/// `(workers, seed)`, so instances with the same seed share their workforce.
pub fn generate(orders: usize, workers: usize, seed: u64) -> Instance {
    let mut seeds = SplitMix64::new(seed);
    let mut worker_rng = SplitMix64::new(seeds.next_u64());
    let mut order_rng = SplitMix64::new(seeds.next_u64());
    let catalogue = Catalogue::new();
    let workers: Vec<Worker> = (0..workers)
        .map(|i| catalogue.worker(WorkerId(i as u32), &mut worker_rng))
        .collect();
    let mut by_skill: Vec<Vec<u32>> = vec![Vec::new(); SERVICES.len()];
    for w in &workers {
        for (s, list) in by_skill.iter_mut().enumerate() {
            if w.skills.contains(s as u8) {
                list.push(w.id.0);
            }
        }
    }
    let orders = (0..orders)
        .map(|i| catalogue.order(OrderId(i as u32), &workers, &by_skill, &mut order_rng))
        .collect();
    Instance { orders, workers }
}

/// Lookup tables derived once from the constants.
struct Catalogue {
    county_weights: Vec<u32>,
    status_weights: Vec<u32>,
    demand: Vec<u32>,
    /// Per category: service indices and the weights a worker's skills are drawn with.
    skills_by_category: Vec<(Vec<u8>, Vec<u32>)>,
}

impl Catalogue {
    fn new() -> Self {
        let county_weights = COUNTIES
            .iter()
            .map(|c| (c.share * 1000.0).round() as u32)
            .collect();
        let demand = SERVICES.iter().map(|s| s.demand).collect();
        let skills_by_category = Category::ALL
            .iter()
            .map(|&cat| {
                let ids: Vec<u8> = (0..SERVICES.len() as u8)
                    .filter(|&i| SERVICES[usize::from(i)].category == cat)
                    .collect();
                // Workers learn common services first, but rarer ones (and the emergency
                // call-out) are still learnt.
                let weights = ids
                    .iter()
                    .map(|&i| SERVICES[usize::from(i)].demand + 10)
                    .collect();
                (ids, weights)
            })
            .collect();
        Catalogue {
            county_weights,
            status_weights: STATUS_PERMILLE.iter().map(|&(_, w)| w).collect(),
            demand,
            skills_by_category,
        }
    }

    fn place(&self, rng: &mut SplitMix64) -> GeoPoint {
        let county = COUNTIES[rng.weighted(&self.county_weights)];
        scatter(
            GeoPoint {
                lat: county.lat,
                lon: county.lon,
            },
            SPREAD_KM,
            rng,
        )
    }

    fn skill_in(&self, category: Category, rng: &mut SplitMix64) -> u8 {
        let (ids, weights) = &self.skills_by_category[category.index()];
        ids[rng.weighted(weights)]
    }

    fn worker(&self, id: WorkerId, rng: &mut SplitMix64) -> Worker {
        let location = self.place(rng);
        let primary = Category::ALL[rng.weighted(&SUPPLY_PERMILLE)];
        let secondary = rng.chance(0.35).then(|| SECONDARY[primary.index()]);
        let wanted = 2 + rng.below(5) as u32; // 2..=6 service types
        let mut skills = BitSet64::EMPTY;
        for _ in 0..40 {
            if skills.0.count_ones() >= wanted {
                break;
            }
            let category = match secondary {
                Some(s) if rng.chance(0.3) => s,
                _ => primary,
            };
            skills = skills.with(self.skill_in(category, rng));
        }
        if primary == Eldercare && rng.chance(0.5) {
            skills = skills.with(EMERGENCY_SERVICE);
        }
        let mut needed = BitSet64::EMPTY;
        for (s, service) in SERVICES.iter().enumerate() {
            if skills.contains(s as u8) {
                needed.0 |= required_certificates(service).0;
            }
        }
        let mut certificates = BitSet64::EMPTY;
        for c in Certificate::ALL {
            if needed.contains(c.bit()) && rng.chance(c.coverage()) {
                certificates = certificates.with(c.bit());
            }
        }
        let contracted = rng.chance(CONTRACTED);
        let status = STATUS_PERMILLE[rng.weighted(&self.status_weights)].0;
        let bookings = if rng.chance(WITH_BOOKINGS) {
            bookings(skills, rng)
        } else {
            Vec::new()
        };
        let credit = (900.0 + 80.0 * rng.gaussian()).round().clamp(600.0, 1000.0) as u16;
        let recent_load = (rng.below(6) + rng.below(6)) as u16; // 0..=10, mostly 3-7
        let service_area = rng
            .chance(WITH_SERVICE_AREA)
            .then(|| (location, 5.0 + 15.0 * rng.next_f64()));
        Worker {
            id,
            location,
            skills,
            certificates,
            contracted,
            status,
            bookings,
            credit,
            recent_load,
            service_area,
        }
    }

    fn order(
        &self,
        id: OrderId,
        workers: &[Worker],
        by_skill: &[Vec<u32>],
        rng: &mut SplitMix64,
    ) -> Order {
        let location = self.place(rng);
        let emergency = rng.chance(EMERGENCY);
        let big = !emergency && rng.chance(BIG);
        let service = if emergency {
            EMERGENCY_SERVICE
        } else if big {
            BIG_ORDER_SERVICES[rng.index(BIG_ORDER_SERVICES.len())]
        } else {
            rng.weighted(&self.demand) as u8
        };
        let st = &SERVICES[usize::from(service)];
        let start = if emergency {
            NOW + rng.range_i64(0, 10)
        } else {
            // From half an hour to eight hours ahead, on the quarter hour.
            NOW + 30 + 15 * rng.range_i64(0, 30)
        };
        let window = Interval {
            start,
            end: start + duration_minutes(st),
        };
        let workers_needed = if big { 2 + rng.below(3) as u8 } else { 1 };
        let priority = if emergency {
            Priority::Emergency
        } else if rng.chance(HIGH) {
            Priority::High
        } else {
            Priority::Normal
        };
        let candidates = &by_skill[usize::from(service)];
        let preferred = if !emergency && rng.chance(PREFERRED) {
            nearby(location, candidates, workers, rng)
        } else {
            None
        };
        let declined = if rng.chance(DECLINED) {
            nearby(location, candidates, workers, rng)
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        Order {
            id,
            location,
            service,
            category: st.category,
            required_certificates: required_certificates(st),
            window,
            workers_needed,
            preferred,
            priority,
            declined,
        }
    }
}

/// One or two accepted bookings between three hours ago and ten hours ahead, of services she is
/// skilled in, apart by at least half an hour.
fn bookings(skills: BitSet64, rng: &mut SplitMix64) -> Vec<Interval> {
    let hourly: Vec<&ServiceType> = SERVICES
        .iter()
        .enumerate()
        .filter(|&(s, st)| skills.contains(s as u8) && st.typical_hours > 0)
        .map(|(_, st)| st)
        .collect();
    let count = 1 + rng.below(2);
    let mut t = NOW + 30 * rng.range_i64(-6, 20);
    let mut out = Vec::new();
    for _ in 0..count {
        let minutes = if hourly.is_empty() {
            120
        } else {
            duration_minutes(hourly[rng.index(hourly.len())])
        };
        out.push(Interval {
            start: t,
            end: t + minutes,
        });
        t += minutes + 30 * rng.range_i64(1, 4);
    }
    out
}

/// The nearest of up to 16 random workers from `candidates` (a past worker of the household is
/// usually from the neighbourhood).
fn nearby(
    at: GeoPoint,
    candidates: &[u32],
    workers: &[Worker],
    rng: &mut SplitMix64,
) -> Option<WorkerId> {
    if candidates.is_empty() {
        return None;
    }
    let coslat = at.lat.to_radians().cos();
    (0..16)
        .map(|_| &workers[candidates[rng.index(candidates.len())] as usize])
        .min_by(|a, b| {
            let d = |w: &Worker| {
                let dy = w.location.lat - at.lat;
                let dx = (w.location.lon - at.lon) * coslat;
                dx * dx + dy * dy
            };
            d(a).total_cmp(&d(b))
        })
        .map(|w| w.id)
}

/// A point around `center`, gaussian with `sigma_km` in each direction.
fn scatter(center: GeoPoint, sigma_km: f64, rng: &mut SplitMix64) -> GeoPoint {
    let north = rng.gaussian() * sigma_km;
    let east = rng.gaussian() * sigma_km;
    GeoPoint {
        lat: center.lat + north / KM_PER_DEGREE,
        lon: center.lon + east / (KM_PER_DEGREE * center.lat.to_radians().cos()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nearest_county(p: GeoPoint) -> usize {
        let d = |c: &County| (c.lat - p.lat).powi(2) + ((c.lon - p.lon) * 0.88).powi(2);
        (0..COUNTIES.len())
            .min_by(|&a, &b| d(&COUNTIES[a]).total_cmp(&d(&COUNTIES[b])))
            .unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_instance_and_another_seed_does_not() {
        let a = generate(300, 1_000, 42);
        assert_eq!(a, generate(300, 1_000, 42));
        assert_ne!(a, generate(300, 1_000, 43));
        // The workforce depends only on (workers, seed).
        assert_eq!(a.workers, generate(10, 1_000, 42).workers);
    }

    #[test]
    fn ids_are_dense() {
        let inst = generate(500, 800, 1);
        assert_eq!(inst.orders.len(), 500);
        assert_eq!(inst.workers.len(), 800);
        for (i, o) in inst.orders.iter().enumerate() {
            assert_eq!(o.id, OrderId(i as u32));
        }
        for (i, w) in inst.workers.iter().enumerate() {
            assert_eq!(w.id, WorkerId(i as u32));
        }
    }

    #[test]
    fn the_catalogue_matches_the_reference_file() {
        let shares: f64 = COUNTIES.iter().map(|c| c.share).sum();
        assert!((shares - 1.0).abs() < 1e-9);
        assert_eq!(SERVICES[usize::from(EMERGENCY_SERVICE)].code, "E10");
        for (i, code) in [(1, "C02"), (2, "C03"), (9, "C10"), (47, "R06")] {
            assert_eq!(SERVICES[i].code, code);
        }
        assert_eq!(SERVICES.iter().map(|s| s.demand).sum::<u32>(), 1000);
        for cat in Category::ALL {
            assert!(SERVICES.iter().any(|s| s.category == cat));
        }
    }

    #[test]
    fn county_shares_and_order_mix_are_roughly_respected() {
        let inst = generate(20_000, 20_000, 7);
        let mut orders_by_county = [0usize; 11];
        for o in &inst.orders {
            orders_by_county[nearest_county(o.location)] += 1;
        }
        let mut workers_by_county = [0usize; 11];
        for w in &inst.workers {
            workers_by_county[nearest_county(w.location)] += 1;
        }
        for (i, c) in COUNTIES.iter().enumerate() {
            for (what, counts) in [
                ("orders", &orders_by_county),
                ("workers", &workers_by_county),
            ] {
                let share = counts[i] as f64 / 20_000.0;
                assert!(
                    (share - c.share).abs() < 0.02,
                    "{what} in {}: {share:.3} vs {}",
                    c.id,
                    c.share
                );
            }
        }
        let n = inst.orders.len() as f64;
        let share =
            |f: &dyn Fn(&Order) -> bool| inst.orders.iter().filter(|o| f(o)).count() as f64 / n;
        let emergency = share(&|o| o.priority == Priority::Emergency);
        let big = share(&|o| o.workers_needed > 1);
        let preferred = share(&|o| o.preferred.is_some());
        let cleaning = share(&|o| o.category == Cleaning);
        let maternity = share(&|o| o.category == Maternity);
        assert!((0.005..0.015).contains(&emergency), "emergency {emergency}");
        assert!((0.02..0.04).contains(&big), "big {big}");
        assert!((0.08..0.12).contains(&preferred), "preferred {preferred}");
        assert!(
            cleaning > 0.3 && maternity < 0.06,
            "cleaning {cleaning}, maternity {maternity}"
        );
        let contracted = inst.workers.iter().filter(|w| w.contracted).count() as f64 / n;
        let active = inst
            .workers
            .iter()
            .filter(|w| w.status == WorkerStatus::Active)
            .count() as f64
            / n;
        assert!(
            (0.88..0.92).contains(&contracted),
            "contracted {contracted}"
        );
        assert!((0.91..0.95).contains(&active), "active {active}");
    }

    #[test]
    fn orders_and_workers_are_well_formed() {
        let inst = generate(5_000, 5_000, 3);
        for o in &inst.orders {
            let st = &SERVICES[usize::from(o.service)];
            assert_eq!(o.category, st.category);
            assert_eq!(o.required_certificates, required_certificates(st));
            assert_eq!(o.window.end - o.window.start, duration_minutes(st));
            assert!(o.window.start >= NOW && o.window.start <= NOW + 8 * 60 + 30);
            assert!((1..=4).contains(&o.workers_needed));
            if o.priority == Priority::Emergency {
                assert_eq!(o.service, EMERGENCY_SERVICE);
                assert_eq!(o.preferred, None);
            }
            for w in o.preferred.iter().chain(&o.declined) {
                assert!(inst.workers[w.0 as usize].skills.contains(o.service));
            }
        }
        let mut elder_workers = 0;
        let mut elder_certified = 0;
        for w in &inst.workers {
            let skills = w.skills.0.count_ones();
            assert!((2..=7).contains(&skills), "{skills} skills");
            assert!((600..=1000).contains(&w.credit));
            assert!(w.recent_load <= 10);
            for pair in w.bookings.windows(2) {
                assert!(!pair[0].overlaps(&pair[1]) && pair[0].end < pair[1].start);
            }
            let needs_elder_carer = SERVICES.iter().enumerate().any(|(s, st)| {
                w.skills.contains(s as u8) && st.certificates.contains(&Certificate::ElderCarer)
            });
            if needs_elder_carer {
                elder_workers += 1;
                elder_certified +=
                    usize::from(w.certificates.contains(Certificate::ElderCarer.bit()));
            }
        }
        let coverage = elder_certified as f64 / elder_workers as f64;
        assert!(coverage > 0.8, "elder_carer coverage {coverage}");
    }
}
