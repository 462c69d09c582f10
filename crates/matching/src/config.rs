//! Matching configuration: cost weights, radius limits per category, pruning and the solver's
//! time budget, and the pluggable travel-time function.

use std::time::Duration;

use crate::geo::haversine_km;
use crate::model::{Category, GeoPoint, Priority};

/// Weights of the cost terms, in integer cost units (see [`crate::cost`] for the formula).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Weights {
    /// Travel: cost units per km of travel (default 1000).
    pub per_km: i64,
    /// Per point of credit below 1000 (default 2): `(1000 - credit) * credit`.
    pub credit: i64,
    /// Per recent order (default 300): `recent_load * load`.
    pub load: i64,
    /// Subtracted when the worker is the order's preferred worker (default 5000).
    pub preferred_bonus: i64,
    /// Subtracted per [`Priority`] (`Normal`, `High`, `Emergency`), default `[0, 2000, 10000]`:
    /// among orders competing for the same workers, urgent ones are served first.
    pub priority_bonus: [i64; 3],
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            per_km: 1000,
            credit: 2,
            load: 300,
            preferred_bonus: 5000,
            priority_bonus: [0, 2000, 10000],
        }
    }
}

impl Weights {
    /// The constant added to every pair's cost so that no cost is negative: the largest bonus
    /// that can be subtracted from one pair (preferred plus the largest priority bonus).
    pub fn offset(&self) -> i64 {
        let priority = self.priority_bonus.iter().copied().max().unwrap_or(0);
        self.preferred_bonus.max(0).saturating_add(priority.max(0))
    }

    /// The bonus subtracted for an order's priority.
    pub fn priority(&self, priority: Priority) -> i64 {
        let index = match priority {
            Priority::Normal => 0,
            Priority::High => 1,
            Priority::Emergency => 2,
        };
        self.priority_bonus.get(index).copied().unwrap_or(0)
    }
}

/// Everything the matcher needs to know besides workers and orders.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchConfig {
    /// Cost weights.
    pub weights: Weights,
    /// Maximum travel distance (great circle, km) per [`Category::index`].
    pub radius_km: [f64; 6],
    /// Pruning: each order keeps its `candidates_per_slot * workers_needed` cheapest eligible
    /// workers (and its preferred worker when eligible). Zero counts as one.
    pub candidates_per_slot: usize,
    /// Time budget of the solver in one `match_batch` (candidate search is bounded by pruning
    /// and not counted); past it the greedy result is returned and reported.
    pub time_budget: Duration,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            weights: Weights::default(),
            // Cleaning, housekeeping, maternity, childcare, eldercare, repair.
            radius_km: [15.0, 15.0, 30.0, 20.0, 10.0, 20.0],
            // Measured on Fuzhou-like batches (1,000 orders x 1,000..5,000 workers): 12 keeps
            // the cost within 0.02% of the unpruned optimum (equal at five workers per order)
            // with widening for tight batches; more only costs search time.
            candidates_per_slot: 12,
            time_budget: Duration::from_millis(50),
        }
    }
}

impl MatchConfig {
    /// The radius limit of a category in km, at most half the earth's circumference (a larger
    /// or infinite configured value means "anywhere"; NaN means nowhere).
    pub fn radius(&self, category: Category) -> f64 {
        let r = self.radius_km.get(category.index()).copied().unwrap_or(0.0);
        if r.is_nan() {
            0.0
        } else {
            r.clamp(0.0, std::f64::consts::PI * crate::geo::EARTH_RADIUS_KM)
        }
    }

    /// Candidates kept per order needing `workers_needed` workers.
    pub fn candidates_for(&self, workers_needed: u8) -> usize {
        self.candidates_per_slot
            .max(1)
            .saturating_mul(usize::from(workers_needed))
    }
}

/// The speed [`HaversineTravel`] assumes, and the speed at which the cost's travel term turns
/// minutes into km (so the default travel term is exactly the great-circle distance).
pub const REFERENCE_SPEED_KMH: f64 = 25.0;

/// How long a worker takes to get from one point to another. Pluggable so that a road-network
/// or traffic-aware estimate can replace the straight-line default.
pub trait TravelTime {
    /// Travel minutes from `from` to `to` (finite and not negative for valid points).
    fn minutes(&self, from: GeoPoint, to: GeoPoint) -> f64;

    /// [`TravelTime::minutes`] when the caller already knows `km`, the great-circle distance
    /// [`haversine_km`]`(from, to)`: an implementation that derives minutes from that distance
    /// overrides it to skip recomputing it, and must return exactly what `minutes` returns.
    fn minutes_at_km(&self, from: GeoPoint, to: GeoPoint, km: f64) -> f64 {
        let _ = km;
        self.minutes(from, to)
    }

    /// A lower bound of [`TravelTime::minutes`] between any two points `km` apart (great circle).
    /// Candidate searches stop once it proves that farther workers cannot be cheaper; it must
    /// never exceed the real minutes. The default, zero, is always safe but makes searches scan
    /// the whole radius.
    fn min_minutes(&self, km: f64) -> f64 {
        let _ = km;
        0.0
    }
}

/// The default travel time: great-circle distance at [`REFERENCE_SPEED_KMH`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HaversineTravel;

impl TravelTime for HaversineTravel {
    fn minutes(&self, from: GeoPoint, to: GeoPoint) -> f64 {
        haversine_km(from, to) * 60.0 / REFERENCE_SPEED_KMH
    }

    fn minutes_at_km(&self, _from: GeoPoint, _to: GeoPoint, km: f64) -> f64 {
        km * 60.0 / REFERENCE_SPEED_KMH
    }

    fn min_minutes(&self, km: f64) -> f64 {
        km * 60.0 / REFERENCE_SPEED_KMH
    }
}
