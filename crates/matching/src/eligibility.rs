//! Hard filters (DESIGN.md, "Eligibility"): whether a worker may be offered an order at all.
//! Every assignment, offer and grab goes through [`eligibility`]; nothing is ever traded off
//! against cost here.

use crate::config::MatchConfig;
use crate::geo::haversine_km;
use crate::model::{Interval, Order, Worker, WorkerId, WorkerStatus};

/// Why a worker may not take an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ineligible {
    /// The order itself cannot be served: empty time window, invalid location or service index.
    InvalidOrder,
    /// The worker is not in the matching pool (suspended, black-listed, retraining, offline).
    NotActive(WorkerStatus),
    /// No signed platform contract with injury cover.
    NoContract,
    /// Not skilled in the order's service type.
    MissingSkill,
    /// Lacks a certificate the service requires.
    MissingCertificates,
    /// Declined this order or let an offer of it expire.
    Declined,
    /// Already booked for a time overlapping the order's window.
    Booked(Interval),
    /// The worker's location is unknown or invalid.
    NoLocation,
    /// Farther than the radius limit of the order's category.
    TooFar,
    /// The order lies outside the area the worker serves.
    OutsideServiceArea,
    /// The matcher does not know the worker.
    UnknownWorker(WorkerId),
}

/// Whether an order can be served by anyone: a non-empty window, a valid location and a
/// service index below 64.
pub fn order_is_valid(order: &Order) -> bool {
    order.window.start < order.window.end && order.location.is_valid() && order.service < 64
}

/// Applies every hard filter; on success returns the great-circle distance in km from the
/// worker to the order.
pub fn eligibility(
    order: &Order,
    worker: &Worker,
    config: &MatchConfig,
) -> Result<f64, Ineligible> {
    if !order_is_valid(order) {
        return Err(Ineligible::InvalidOrder);
    }
    if worker.status != WorkerStatus::Active {
        return Err(Ineligible::NotActive(worker.status));
    }
    if !worker.contracted {
        return Err(Ineligible::NoContract);
    }
    if !worker.skills.contains(order.service) {
        return Err(Ineligible::MissingSkill);
    }
    if !worker
        .certificates
        .contains_all(order.required_certificates)
    {
        return Err(Ineligible::MissingCertificates);
    }
    if order.declined.contains(&worker.id) {
        return Err(Ineligible::Declined);
    }
    if let Some(booking) = overlapping_booking(&worker.bookings, order.window) {
        return Err(Ineligible::Booked(booking));
    }
    if !worker.location.is_valid() {
        return Err(Ineligible::NoLocation);
    }
    // Comparisons with a distance that is not a number are false: such pairs are rejected.
    let km = haversine_km(worker.location, order.location);
    let near_enough = km <= config.radius(order.category);
    if !near_enough {
        return Err(Ineligible::TooFar);
    }
    if let Some((centre, radius_km)) = worker.service_area {
        let inside = haversine_km(centre, order.location) <= radius_km;
        if !inside {
            return Err(Ineligible::OutsideServiceArea);
        }
    }
    Ok(km)
}

/// The first booking that shares a minute with `window`, if any.
pub fn overlapping_booking(bookings: &[Interval], window: Interval) -> Option<Interval> {
    bookings.iter().copied().find(|b| b.overlaps(&window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_intervals_do_not_overlap() {
        let a = Interval { start: 0, end: 60 };
        let b = Interval { start: 60, end: 90 };
        assert!(!a.overlaps(&b));
        assert!(!b.overlaps(&a));
        assert_eq!(overlapping_booking(&[a], b), None);
    }

    #[test]
    fn nested_and_crossing_intervals_overlap() {
        let day = Interval { start: 0, end: 600 };
        let hour = Interval {
            start: 120,
            end: 180,
        };
        let crossing = Interval {
            start: 590,
            end: 700,
        };
        assert!(day.overlaps(&hour) && hour.overlaps(&day));
        assert!(day.overlaps(&crossing) && crossing.overlaps(&day));
        assert_eq!(
            overlapping_booking(
                &[hour, crossing],
                Interval {
                    start: 650,
                    end: 660
                }
            ),
            Some(crossing)
        );
    }
}
