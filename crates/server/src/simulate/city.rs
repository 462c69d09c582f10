//! A Fuzhou-like city from `data/fuzhou.json` (a copy of the shared reference facts): the 11
//! counties with their seats and shares, companies, workers with skills, customers, and the
//! day's order plan. Everything is drawn from the seed, so a seed names one city and one day.

use daojia_domain::catalog::{Catalog, Category, PricingUnit, ServiceType};

use super::rng::{Rng, uuid};
use super::{SimulateError, Sizes};

/// The reference facts, embedded so that the binary runs anywhere.
const FUZHOU_JSON: &str = include_str!("../../data/fuzhou.json");

/// Id kinds for [`uuid`].
pub mod kind {
    /// Companies.
    pub const COMPANY: u64 = 1;
    /// Workers.
    pub const WORKER: u64 = 2;
    /// Customers.
    pub const CUSTOMER: u64 = 3;
    /// Orders.
    pub const ORDER: u64 = 4;
    /// Certificate registries (one per company).
    pub const REGISTRY: u64 = 5;
    /// Certificates (index = worker × 64 + certificate).
    pub const CERTIFICATE: u64 = 6;
    /// Command ids (index = subject × 64 + step).
    pub const COMMAND: u64 = 7;
    /// Complaints.
    pub const COMPLAINT: u64 = 8;
}

/// A county (区/县) and its seat.
#[derive(Clone, Debug)]
pub struct County {
    /// Chinese name.
    pub zh: String,
    /// Seat latitude.
    pub lat: f64,
    /// Seat longitude.
    pub lon: f64,
    /// Share of people living there.
    pub share: f64,
}

/// A worker to onboard.
#[derive(Clone, Debug)]
pub struct Worker {
    /// Worker id.
    pub id: String,
    /// Company id.
    pub company: String,
    /// The certificate registry keeping the worker's certificates: one per company, since
    /// every certificate issued reloads its registry's stream (one city-wide registry makes
    /// onboarding quadratic and its appends conflict).
    pub registry: String,
    /// Resident identity number (valid check digit, unique).
    pub identity: String,
    /// Skill certificates held (sorted).
    pub skills: Vec<String>,
    /// Home.
    pub home: (f64, f64),
}

/// A household.
#[derive(Clone, Debug)]
pub struct Customer {
    /// Customer id.
    pub id: String,
    /// Home (orders are served there).
    pub home: (f64, f64),
}

/// How an order asks to be dispatched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Platform offers (一键接单).
    Platform,
    /// Grab pool (抢单), falling back to offers at the deadline.
    GrabPool,
    /// Emergency elder call (一键呼叫).
    Emergency,
}

/// One order of the day's plan (rebooking a favourite is decided when it is posted).
#[derive(Clone, Debug)]
pub struct PlannedOrder {
    /// Order id.
    pub id: String,
    /// Index into [`City::customers`].
    pub customer: usize,
    /// Index into [`City::services`].
    pub service: usize,
    /// Units ordered.
    pub quantity: u32,
    /// Minute of the day it is posted.
    pub post_minute: u32,
    /// Minutes from posting to the window start.
    pub lead_minutes: u32,
    /// Dispatch mode.
    pub mode: Mode,
}

/// The city.
#[derive(Debug)]
pub struct City {
    /// Counties.
    pub counties: Vec<County>,
    /// Company ids.
    pub companies: Vec<String>,
    /// Workers.
    pub workers: Vec<Worker>,
    /// Customers.
    pub customers: Vec<Customer>,
    /// Service types offered by visit (the ones a day can hold), in catalogue order.
    pub services: Vec<&'static ServiceType>,
    /// The day's orders, by posting minute.
    pub orders: Vec<PlannedOrder>,
}

/// How customers spread their orders over the day, by hour from 06:00.
const HOURLY: [f64; 14] = [
    2.0, 5.0, 9.0, 10.0, 8.0, 5.0, 4.0, 6.0, 8.0, 8.0, 6.0, 4.0, 3.0, 2.0,
];

/// Category mix of demand and of workers' main trade.
const CATEGORIES: [(Category, f64); 6] = [
    (Category::Cleaning, 0.38),
    (Category::Housekeeping, 0.20),
    (Category::Eldercare, 0.18),
    (Category::Childcare, 0.10),
    (Category::Maternity, 0.04),
    (Category::Repair, 0.10),
];

fn counties() -> Result<Vec<County>, SimulateError> {
    let bad = |what: &str| SimulateError::Data(format!("data/fuzhou.json: {what}"));
    let json: serde_json::Value =
        serde_json::from_str(FUZHOU_JSON).map_err(|e| bad(&e.to_string()))?;
    let list = json["counties"]
        .as_array()
        .ok_or_else(|| bad("no counties"))?;
    list.iter()
        .map(|c| {
            Ok(County {
                zh: c["zh"]
                    .as_str()
                    .ok_or_else(|| bad("county without zh"))?
                    .into(),
                lat: c["lat"].as_f64().ok_or_else(|| bad("county without lat"))?,
                lon: c["lon"].as_f64().ok_or_else(|| bad("county without lon"))?,
                share: c["share"]
                    .as_f64()
                    .ok_or_else(|| bad("county without share"))?,
            })
        })
        .collect()
}

/// A point within about `spread` degrees of a county seat drawn by share.
fn place(rng: &mut Rng, counties: &[County], spread: f64) -> (usize, (f64, f64)) {
    let shares: Vec<f64> = counties.iter().map(|c| c.share).collect();
    let i = rng.weighted(&shares);
    let c = &counties[i];
    let lat = c.lat + (rng.unit() + rng.unit() - 1.0) * spread;
    let lon = c.lon + (rng.unit() + rng.unit() - 1.0) * spread;
    (i, ((lat * 1e6).round() / 1e6, (lon * 1e6).round() / 1e6))
}

/// An 18-character identity number with a valid GB 11643 check digit, unique per `n`.
fn identity_number(seed: u64, n: u64) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    // 361002 is Linchuan's area code; then a birth date and a sequence number.
    let year = 1965 + (seed.wrapping_add(n) % 35);
    let body = format!("361002{year:04}0101{:03}", n % 1000);
    let body = format!("{}{:05}", &body[..12], n);
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{body}{}", char::from(CHECK[(sum % 11) as usize]))
}

impl City {
    /// Builds the city and the day's plan for `sizes` from `seed`.
    pub fn generate(seed: u64, sizes: &Sizes) -> Result<City, SimulateError> {
        let counties = counties()?;
        let catalog = Catalog::builtin().map_err(|e| SimulateError::Data(e.to_string()))?;
        let services: Vec<&'static ServiceType> = catalog
            .services()
            .iter()
            .filter(|s| s.typical_duration.0 > 0 && s.unit != PricingUnit::Month)
            .collect();
        let mut rng = Rng::derive(seed, 100, 0);
        let companies: Vec<String> = (0..sizes.workers.div_ceil(35).max(1))
            .map(|i| uuid(seed, kind::COMPANY, i as u64))
            .collect();
        let cat_weights: Vec<f64> = CATEGORIES.iter().map(|c| c.1).collect();
        let mut workers = Vec::with_capacity(sizes.workers);
        for i in 0..sizes.workers {
            let (_, home) = place(&mut rng, &counties, 0.08);
            let trade = CATEGORIES[rng.weighted(&cat_weights)].0;
            let mut skills: Vec<String> = Vec::new();
            for s in services.iter().filter(|s| s.category == trade) {
                // Most workers hold most of their trade's certificates.
                if rng.chance(0.7) {
                    skills.extend(s.certificates.iter().map(|c| c.as_str().to_owned()));
                }
            }
            if rng.chance(0.3) {
                // A second trade's basic certificates (many do both cleaning and housekeeping).
                let other = CATEGORIES[rng.weighted(&cat_weights)].0;
                if let Some(s) = services.iter().find(|s| s.category == other) {
                    skills.extend(s.certificates.iter().map(|c| c.as_str().to_owned()));
                }
            }
            skills.sort();
            skills.dedup();
            let company = rng.range(0, companies.len() as u64 - 1);
            workers.push(Worker {
                id: uuid(seed, kind::WORKER, i as u64),
                company: companies[company as usize].clone(),
                registry: uuid(seed, kind::REGISTRY, company),
                identity: identity_number(seed, i as u64),
                skills,
                home,
            });
        }
        let customers: Vec<Customer> = (0..sizes.customers)
            .map(|i| Customer {
                id: uuid(seed, kind::CUSTOMER, i as u64),
                home: place(&mut rng, &counties, 0.05).1,
            })
            .collect();
        let mut orders = Vec::with_capacity(sizes.orders);
        for i in 0..sizes.orders {
            let hour = rng.weighted(&HOURLY) as u32;
            let post_minute = (hour * 60 + rng.range(0, 59) as u32).max(1);
            let emergency = rng.chance(0.02);
            let service = if emergency {
                services.iter().position(|s| s.code.as_str() == "E10")
            } else {
                None
            };
            let service = match service {
                Some(s) => s,
                None => {
                    let cat = CATEGORIES[rng.weighted(&cat_weights)].0;
                    let of_cat: Vec<usize> = (0..services.len())
                        .filter(|&s| {
                            services[s].category == cat && services[s].code.as_str() != "E10"
                        })
                        .collect();
                    of_cat[rng.range(0, of_cat.len() as u64 - 1) as usize]
                }
            };
            let quantity = match services[service].unit {
                PricingUnit::Hour => rng.range(2, 4) as u32,
                PricingUnit::Sqm => rng.range(60, 140) as u32,
                _ => 1,
            };
            let mode = if emergency {
                Mode::Emergency
            } else if rng.chance(0.15) {
                Mode::GrabPool
            } else {
                Mode::Platform
            };
            // Instant (within the next hour or so) or scheduled for later in the day.
            let lead_minutes = if emergency {
                20
            } else if rng.chance(0.6) {
                rng.range(30, 90) as u32
            } else {
                rng.range(120, 480) as u32
            };
            orders.push(PlannedOrder {
                id: uuid(seed, kind::ORDER, i as u64),
                customer: rng.range(0, sizes.customers as u64 - 1) as usize,
                service,
                quantity,
                post_minute,
                lead_minutes,
                mode,
            });
        }
        orders.sort_by_key(|o| o.post_minute);
        Ok(City {
            counties,
            companies,
            workers,
            customers,
            services,
            orders,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_names_one_city_and_identity_numbers_check_out() {
        let sizes = Sizes {
            workers: 50,
            customers: 40,
            orders: 80,
        };
        let a = City::generate(3, &sizes).unwrap();
        let b = City::generate(3, &sizes).unwrap();
        assert_eq!(a.counties.len(), 11);
        assert_eq!(a.workers.len(), 50);
        assert_eq!(
            a.orders.iter().map(|o| &o.id).collect::<Vec<_>>(),
            b.orders.iter().map(|o| &o.id).collect::<Vec<_>>()
        );
        for w in &a.workers {
            daojia_domain::certificates::IdentityNumber::new(&w.identity).unwrap();
        }
        let ids: std::collections::BTreeSet<_> = a.workers.iter().map(|w| &w.identity).collect();
        assert_eq!(ids.len(), 50);
    }
}
