//! The KPI read model: good-review rate, satisfaction, repurchase within 90 days, complaint
//! rate, lateness rate, fill rate and time to accept, in total and by county, company, service
//! category and day.
//!
//! Attribution: an order counts on the (China-time) day it was posted, in its service category,
//! in the county nearest to its location (counties are configuration: a list of seats, see
//! [`counties`](crate::counties)), and for the companies of its workers (a worker's company is
//! that of their home-visit certificate).
//! Posting and filling have no company yet, so company rows have no fill rate.
//!
//! Ratios are integers in basis points (1/100 %), averages in hundredths; no floats are stored.
//! Repurchase counts a served order when the same customer posts again within 90 days of its
//! service; orders served less than 90 days ago may still become repurchased.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use daojia_domain::catalog::Category;
use daojia_domain::certificates::{CertificateEvent, CertificateKind};
use daojia_domain::order::{GeoPoint, SlotIndex};
use daojia_domain::{CompanyId, CustomerId, Minutes, OrderEvent, OrderId, Timestamp, WorkerId};
use daojia_store::RecordedEvent;
use serde::{Deserialize, Serialize};

use crate::decode::DomainRecord;
use crate::runtime::ReadModel;

/// How long after a service a new order by the same customer counts as a repurchase.
pub const REPURCHASE_WINDOW: Minutes = Minutes::days(90);

/// China Standard Time is UTC+8 (no daylight saving).
const CHINA_OFFSET_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// A calendar day in China time, as days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Day(pub i64);

impl Day {
    /// The China-time day of an instant.
    pub fn of(at: Timestamp) -> Self {
        Day((at.0 + CHINA_OFFSET_MS).div_euclid(DAY_MS))
    }
}

/// A county (区/县) by the location of its seat; orders go to the nearest seat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct County {
    /// Name, e.g. `临川区`.
    pub name: String,
    /// Seat location.
    pub seat: GeoPoint,
}

/// Raw counts; the KPIs are ratios of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Orders posted.
    pub posted: u64,
    /// Orders whose slots were all taken at some point.
    pub filled: u64,
    /// Slots taken for the first time.
    pub first_accepts: u64,
    /// Minutes from posting to each first take of a slot, summed.
    pub accept_minutes: u64,
    /// Check-ins.
    pub check_ins: u64,
    /// Check-ins after the window start.
    pub late_check_ins: u64,
    /// Orders served.
    pub served: u64,
    /// Reviews.
    pub reviews: u64,
    /// Reviews with at least 4 stars.
    pub good_reviews: u64,
    /// Stars given, summed.
    pub stars: u64,
    /// Complaints filed.
    pub complaints: u64,
    /// Served orders followed by another order of the same customer within 90 days.
    pub repurchased: u64,
}

fn basis_points(n: u64, d: u64) -> Option<u64> {
    (d > 0).then(|| n.saturating_mul(10_000) / d)
}

impl Counters {
    /// 好评率: reviews with ≥ 4 stars per review, in basis points.
    pub fn good_review_rate(&self) -> Option<u64> {
        basis_points(self.good_reviews, self.reviews)
    }

    /// Satisfaction: the mean star rating in hundredths (`460` = 4.60★).
    pub fn satisfaction(&self) -> Option<u64> {
        (self.reviews > 0).then(|| self.stars.saturating_mul(100) / self.reviews)
    }

    /// 复购率: served orders followed by a new order within 90 days, in basis points.
    pub fn repurchase_rate(&self) -> Option<u64> {
        basis_points(self.repurchased, self.served)
    }

    /// Complaints per served order, in basis points.
    pub fn complaint_rate(&self) -> Option<u64> {
        basis_points(self.complaints, self.served)
    }

    /// Late check-ins per check-in, in basis points.
    pub fn lateness_rate(&self) -> Option<u64> {
        basis_points(self.late_check_ins, self.check_ins)
    }

    /// Filled orders per posted order, in basis points.
    pub fn fill_rate(&self) -> Option<u64> {
        basis_points(self.filled, self.posted)
    }

    /// Mean minutes from posting to a slot's first take.
    pub fn mean_minutes_to_accept(&self) -> Option<u64> {
        (self.first_accepts > 0).then(|| self.accept_minutes / self.first_accepts)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct OrderFacts {
    customer: CustomerId,
    day: Day,
    category: Category,
    county: Option<usize>,
    posted_at: Timestamp,
    slots: u32,
    taken: BTreeSet<SlotIndex>,
    holders: BTreeMap<SlotIndex, WorkerId>,
    filled: bool,
    served_at: Option<Timestamp>,
    repurchased: bool,
}

/// KPIs in total and by county, company, category and day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KpisView {
    counties: Vec<County>,
    /// Everything.
    pub total: Counters,
    #[serde(with = "crate::state_repr::pairs")]
    by_day: BTreeMap<Day, Counters>,
    #[serde(with = "crate::state_repr::pairs")]
    by_category: HashMap<Category, Counters>,
    by_county: BTreeMap<String, Counters>,
    by_company: BTreeMap<CompanyId, Counters>,
    orders: HashMap<OrderId, OrderFacts>,
    company_of: HashMap<WorkerId, CompanyId>,
    last_served: HashMap<CustomerId, OrderId>,
}

/// The county name used for orders when no county is configured.
pub const UNKNOWN_COUNTY: &str = "unknown";

impl KpisView {
    /// A KPI model attributing orders to the nearest of `counties`.
    pub fn new(counties: Vec<County>) -> Self {
        KpisView {
            counties,
            ..Self::default()
        }
    }

    /// One day's counters.
    pub fn day(&self, day: Day) -> Counters {
        self.by_day.get(&day).copied().unwrap_or_default()
    }

    /// Counters by day, oldest first.
    pub fn by_day(&self) -> impl Iterator<Item = (Day, &Counters)> {
        self.by_day.iter().map(|(d, c)| (*d, c))
    }

    /// Counters by category (unordered).
    pub fn by_category(&self) -> impl Iterator<Item = (Category, &Counters)> {
        self.by_category.iter().map(|(c, n)| (*c, n))
    }

    /// Counters by county name, in name order.
    pub fn by_county(&self) -> impl Iterator<Item = (&str, &Counters)> {
        self.by_county.iter().map(|(c, n)| (c.as_str(), n))
    }

    /// Counters by company, in id order.
    pub fn by_company(&self) -> impl Iterator<Item = (CompanyId, &Counters)> {
        self.by_company.iter().map(|(c, n)| (*c, n))
    }

    /// One category's counters.
    pub fn category(&self, category: Category) -> Counters {
        self.by_category.get(&category).copied().unwrap_or_default()
    }

    /// One county's counters ([`UNKNOWN_COUNTY`] collects orders when no county is configured).
    pub fn county(&self, name: &str) -> Counters {
        self.by_county.get(name).copied().unwrap_or_default()
    }

    /// One company's counters.
    pub fn company(&self, company: CompanyId) -> Counters {
        self.by_company.get(&company).copied().unwrap_or_default()
    }

    fn nearest_county(&self, at: GeoPoint) -> Option<usize> {
        self.counties
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.seat.distance_m(at)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    /// Adds to the total and to the order's day, category and county, and to `companies`.
    fn bump(&mut self, order: OrderId, companies: &[CompanyId], f: impl Fn(&mut Counters)) {
        let Some(facts) = self.orders.get(&order) else {
            return;
        };
        let county = facts
            .county
            .and_then(|i| self.counties.get(i))
            .map_or(UNKNOWN_COUNTY, |c| c.name.as_str())
            .to_owned();
        let (day, category) = (facts.day, facts.category);
        f(&mut self.total);
        f(self.by_day.entry(day).or_default());
        f(self.by_category.entry(category).or_default());
        f(self.by_county.entry(county).or_default());
        let distinct: BTreeSet<CompanyId> = companies.iter().copied().collect();
        for company in distinct {
            f(self.by_company.entry(company).or_default());
        }
    }

    fn companies_of_order(&self, order: OrderId) -> Vec<CompanyId> {
        self.orders.get(&order).map_or_else(Vec::new, |f| {
            f.holders
                .values()
                .filter_map(|w| self.company_of.get(w).copied())
                .collect()
        })
    }

    fn company_of_worker(&self, worker: WorkerId) -> Vec<CompanyId> {
        self.company_of.get(&worker).copied().into_iter().collect()
    }

    fn apply_order(&mut self, id: OrderId, event: &OrderEvent) {
        match event {
            OrderEvent::OrderPosted {
                customer,
                category,
                quote,
                location,
                posted_at,
                ..
            } => {
                if self.orders.contains_key(&id) {
                    return;
                }
                self.note_repurchase(*customer, *posted_at);
                let county = self.nearest_county(*location);
                self.orders.insert(
                    id,
                    OrderFacts {
                        customer: *customer,
                        day: Day::of(*posted_at),
                        category: *category,
                        county,
                        posted_at: *posted_at,
                        slots: quote.workers,
                        taken: BTreeSet::new(),
                        holders: BTreeMap::new(),
                        filled: false,
                        served_at: None,
                        repurchased: false,
                    },
                );
                self.bump(id, &[], |c| c.posted += 1);
            }
            OrderEvent::OrderAccepted {
                slot, worker, at, ..
            } => {
                let companies = self.company_of_worker(*worker);
                let Some(facts) = self.orders.get_mut(&id) else {
                    return;
                };
                facts.holders.insert(*slot, *worker);
                let first = facts.taken.insert(*slot);
                let minutes = u64::from(at.minutes_since(facts.posted_at).0);
                let newly_filled =
                    !facts.filled && facts.holders.len() as u64 >= u64::from(facts.slots);
                facts.filled |= newly_filled;
                if first {
                    self.bump(id, &companies, |c| {
                        c.first_accepts += 1;
                        c.accept_minutes += minutes;
                    });
                }
                if newly_filled {
                    self.bump(id, &[], |c| c.filled += 1);
                }
            }
            OrderEvent::WorkerWithdrew { slot, .. }
            | OrderEvent::WorkerNoShowRecorded { slot, .. } => {
                if let Some(f) = self.orders.get_mut(&id) {
                    f.holders.remove(slot);
                }
            }
            OrderEvent::OrderReplanned { workers, .. } => {
                if let Some(f) = self.orders.get_mut(&id) {
                    f.slots = *workers;
                }
            }
            OrderEvent::WorkerCheckedIn {
                worker, late_by, ..
            } => {
                let late = u64::from(late_by.0 > 0);
                let companies = self.company_of_worker(*worker);
                self.bump(id, &companies, |c| {
                    c.check_ins += 1;
                    c.late_check_ins += late;
                });
            }
            OrderEvent::OrderServed { at } => {
                let Some(f) = self.orders.get_mut(&id) else {
                    return;
                };
                f.served_at = Some(*at);
                let customer = f.customer;
                self.last_served.insert(customer, id);
                let companies = self.companies_of_order(id);
                self.bump(id, &companies, |c| c.served += 1);
            }
            OrderEvent::OrderReviewed { stars, .. } => {
                let stars = u64::from(stars.get());
                let companies = self.companies_of_order(id);
                self.bump(id, &companies, |c| {
                    c.reviews += 1;
                    c.good_reviews += u64::from(stars >= 4);
                    c.stars += stars;
                });
            }
            OrderEvent::ComplaintFiled { against, .. } => {
                let companies = self.company_of_worker(*against);
                self.bump(id, &companies, |c| c.complaints += 1);
            }
            _ => {}
        }
    }

    /// A new order by `customer` at `at` makes their last served order a repurchase if it was
    /// served within the window.
    fn note_repurchase(&mut self, customer: CustomerId, at: Timestamp) {
        let Some(previous) = self.last_served.get(&customer).copied() else {
            return;
        };
        let Some(facts) = self.orders.get_mut(&previous) else {
            return;
        };
        let within = facts
            .served_at
            .is_some_and(|s| s <= at && at <= s.plus(REPURCHASE_WINDOW));
        if within && !facts.repurchased {
            facts.repurchased = true;
            let companies = self.companies_of_order(previous);
            self.bump(previous, &companies, |c| c.repurchased += 1);
        }
    }
}

impl ReadModel for KpisView {
    const NAME: &'static str = "kpis";

    fn apply_record(&mut self, record: &DomainRecord, _event: &RecordedEvent) {
        match record {
            DomainRecord::Order(id, e) => self.apply_order(*id, e),
            DomainRecord::Certificate(CertificateEvent::CertificateIssued {
                worker,
                company,
                kind: CertificateKind::HomeVisit,
                ..
            }) => {
                self.company_of.insert(*worker, *company);
            }
            _ => {}
        }
    }
}
