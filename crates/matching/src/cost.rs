//! The cost of giving an order to a worker (DESIGN.md, "Score"), in integer cost units; lower
//! is better. For an eligible pair (see [`crate::eligibility`]):
//!
//! ```text
//! cost(o, w) = clamp(offset
//!                    + round(per_km * travel_km(w, o))
//!                    + credit * (1000 - min(w.credit, 1000))
//!                    + load * w.recent_load
//!                    - preferred_bonus        if w is o.preferred
//!                    - priority_bonus[o.priority],
//!                    0, MAX_PAIR_COST)
//!
//! travel_km(w, o) = TravelTime::minutes(w.location, o.location) * REFERENCE_SPEED_KMH / 60
//! offset          = max(preferred_bonus, 0) + max(priority_bonus[..], 0)
//! ```
//!
//! `travel_km` is travel time expressed as km at the reference speed of 25 km/h: with the default
//! [`HaversineTravel`] it is the great-circle distance, with a road or traffic model it charges
//! time. The credit term prefers reliable workers (a worker at 800 points costs like 0.4 km
//! more), the load term spreads work (each recent order costs like 0.3 km), the preferred bonus
//! makes a rebooked favourite win unless she is 5 km farther, and the priority bonus makes urgent
//! orders win contested workers. The offset (15,000 with the default weights) is the same for
//! every pair, so it never changes which assignment is best; it only keeps every cost at or
//! above zero, which the solver relies on. Totals therefore include `offset` per assignment.

use crate::config::{HaversineTravel, MatchConfig, REFERENCE_SPEED_KMH, TravelTime, Weights};
use crate::eligibility::eligibility;
use crate::model::{Order, Worker};

/// The largest cost of one pair; larger sums are clamped to it.
pub const MAX_PAIR_COST: i64 = 1 << 40;

/// Hard filters, then cost with the default travel time. `None`: the pair is forbidden.
pub fn pair_cost(order: &Order, worker: &Worker, config: &MatchConfig) -> Option<i64> {
    pair_cost_with(order, worker, config, &HaversineTravel)
}

/// [`pair_cost`] with a given travel-time function.
pub fn pair_cost_with(
    order: &Order,
    worker: &Worker,
    config: &MatchConfig,
    travel: &dyn TravelTime,
) -> Option<i64> {
    let km = eligibility(order, worker, config).ok()?;
    Some(cost_of(order, worker, km, &config.weights, travel))
}

/// The cost of a pair `km` apart (great circle, worker to order), without the hard filters
/// (callers check them first; they yield `km`).
pub(crate) fn cost_of(
    order: &Order,
    worker: &Worker,
    km: f64,
    weights: &Weights,
    travel: &dyn TravelTime,
) -> i64 {
    let minutes = travel.minutes_at_km(worker.location, order.location, km);
    let preferred = if order.preferred == Some(worker.id) {
        weights.preferred_bonus
    } else {
        0
    };
    clamp(
        weights
            .offset()
            .saturating_add(travel_cost(weights.per_km, minutes))
            .saturating_add(standing_cost(weights, worker.credit, worker.recent_load))
            .saturating_sub(preferred)
            .saturating_sub(weights.priority(order.priority)),
    )
}

/// The credit and load terms: what a worker costs wherever she is.
pub(crate) fn standing_cost(weights: &Weights, credit: u16, recent_load: u16) -> i64 {
    let credit_term = weights
        .credit
        .saturating_mul(1000 - i64::from(credit.min(1000)));
    let load_term = weights.load.saturating_mul(i64::from(recent_load));
    credit_term.saturating_add(load_term)
}

/// The least [`standing_cost`] of any worker.
pub(crate) fn min_standing_cost(weights: &Weights) -> i64 {
    let credit_floor = weights.credit.saturating_mul(1000).min(0);
    let load_floor = weights.load.saturating_mul(i64::from(u16::MAX)).min(0);
    credit_floor.saturating_add(load_floor)
}

/// `round(per_km * minutes * REFERENCE_SPEED_KMH / 60)`; a travel time that is not a finite,
/// non-negative number costs [`MAX_PAIR_COST`].
fn travel_cost(per_km: i64, minutes: f64) -> i64 {
    if !(minutes >= 0.0 && minutes.is_finite()) {
        return MAX_PAIR_COST;
    }
    let km = minutes * REFERENCE_SPEED_KMH / 60.0;
    // `as` saturates; the product is finite here.
    (per_km as f64 * km).round() as i64
}

fn clamp(cost: i64) -> i64 {
    cost.clamp(0, MAX_PAIR_COST)
}

/// Lower bounds of pair costs for one order, from distance: they let searches skip workers and
/// stop early. They hold for every worker except the order's preferred one (her bonus is not
/// in them; searches look her up separately).
#[derive(Clone, Copy)]
pub(crate) struct CostBound<'a> {
    weights: &'a Weights,
    travel: &'a dyn TravelTime,
    /// `offset - priority_bonus`; `None` when distance bounds nothing (negative per-km weight).
    base: Option<i64>,
}

impl<'a> CostBound<'a> {
    pub(crate) fn new(order: &Order, weights: &'a Weights, travel: &'a dyn TravelTime) -> Self {
        let base = (weights.per_km >= 0).then(|| {
            weights
                .offset()
                .saturating_sub(weights.priority(order.priority))
        });
        CostBound {
            weights,
            travel,
            base,
        }
    }

    /// A lower bound of the cost of a worker with the given standing cost, at least `km` away.
    pub(crate) fn at(&self, km: f64, standing: i64) -> i64 {
        let Some(base) = self.base else {
            return 0;
        };
        let minutes = self.travel.min_minutes(km);
        let travel_term = if minutes >= 0.0 && minutes.is_finite() {
            ((self.weights.per_km as f64 * minutes * REFERENCE_SPEED_KMH / 60.0).floor() as i64)
                .saturating_sub(1)
                .max(0)
        } else {
            0
        };
        clamp(base.saturating_add(travel_term).saturating_add(standing))
    }

    /// About how far the bound for any worker stays at or below `cost` (a search-radius hint,
    /// exact for the default travel time); `None` when distance bounds nothing.
    pub(crate) fn reach_for(&self, cost: i64) -> Option<f64> {
        let base = self.base?.saturating_add(min_standing_cost(self.weights));
        if self.weights.per_km == 0 {
            return None;
        }
        Some((cost.saturating_sub(base) as f64 / self.weights.per_km as f64).max(0.0) * 1.2)
    }

    /// A lower bound of the cost of any worker at least `km` away.
    pub(crate) fn beyond(&self, km: f64) -> i64 {
        self.at(km, min_standing_cost(self.weights))
    }
}
