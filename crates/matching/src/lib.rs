//! daojia's matching engine: which workers may take an order (hard filters), what each pair
//! costs (travel, credit, fairness, preference, priority), the best batch assignment of order
//! slots to workers, and the dispatch policies built on them (offer cascade, grab pool,
//! preferred worker first, emergency call).
//!
//! Pure and synchronous: no I/O, no async, no clock (times are arguments; the only clock read
//! enforces [`MatchConfig::time_budget`]). The dispatcher keeps one [`Matcher`] per city shard,
//! updates it incrementally from the matching projection and turns its answers into events.
//!
//! Code map: `model` (input types), `config` (weights, radii, budget, [`TravelTime`]), `geo`
//! (haversine, the per-service R-tree index), `eligibility` (hard filters), `cost` (the cost
//! formula), `pool` (workers and their index, updated incrementally), `candidates` (pruned
//! candidate search), `solver` (exact assignment), `matcher` ([`Matcher`], batches),
//! `baseline` ([`greedy_nearest`]), [`policy`] (offer cascade, grab pool, preferred worker,
//! emergency).
//!
//! ```
//! use daojia_matching::*;
//! let mut m = Matcher::new(MatchConfig::default());
//! let here = GeoPoint { lat: 27.948, lon: 116.358 };
//! m.upsert_worker(Worker {
//!     id: WorkerId(1), location: here, skills: BitSet64::single(0),
//!     certificates: BitSet64::EMPTY, contracted: true, status: WorkerStatus::Active,
//!     bookings: vec![], credit: 900, recent_load: 0, service_area: None,
//! });
//! m.add_order(Order {
//!     id: OrderId(7), location: here, service: 0, category: Category::Cleaning,
//!     required_certificates: BitSet64::EMPTY, window: Interval { start: 600, end: 780 },
//!     workers_needed: 1, preferred: None, priority: Priority::Normal, declined: vec![],
//! });
//! let batch = m.match_batch();
//! assert_eq!(batch.assignments[0].worker, WorkerId(1));
//! assert_eq!(batch.solver, Solver::Exact);
//! ```

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

mod baseline;
mod candidates;
mod config;
pub mod cost;
mod eligibility;
mod geo;
mod matcher;
mod model;
pub mod policy;
mod pool;
mod solver;

pub use baseline::greedy_nearest;
pub use config::{HaversineTravel, MatchConfig, REFERENCE_SPEED_KMH, TravelTime, Weights};
pub use cost::{MAX_PAIR_COST, pair_cost, pair_cost_with};
pub use eligibility::{Ineligible, eligibility, order_is_valid, overlapping_booking};
pub use geo::{EARTH_RADIUS_KM, haversine_km};
pub use matcher::{Assignment, BatchResult, Matcher, Solver};
pub use model::{
    BitSet64, Category, GeoPoint, Interval, Minute, Order, OrderId, Priority, Worker, WorkerId,
    WorkerStatus,
};
