//! Live worker locations (`WorkerApp.UpdateLocation`): where each worker's phone last said they
//! were, kept in memory for a while and never appended as events (a location is not a fact the
//! platform needs to remember, and phones report often). The dispatcher searches candidates
//! around a fresh location instead of the worker's home.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use daojia_domain::order::GeoPoint;
use daojia_domain::{Minutes, Timestamp, WorkerId};

/// How long a reported location is used by default.
pub const DEFAULT_TTL: Minutes = Minutes(10);

/// Reports between two sweeps of expired entries (bounds the map by the workers reporting).
const SWEEP_EVERY: u64 = 1_024;

#[derive(Debug, Default)]
struct Inner {
    latest: HashMap<WorkerId, (GeoPoint, Timestamp)>,
    reports: u64,
}

/// The live locations, shared by the worker app and the dispatcher.
#[derive(Clone, Debug)]
pub struct LiveLocations {
    inner: Arc<Mutex<Inner>>,
    ttl: Minutes,
}

impl Default for LiveLocations {
    fn default() -> Self {
        LiveLocations::new(DEFAULT_TTL)
    }
}

impl LiveLocations {
    /// Empty, keeping each report for `ttl`.
    pub fn new(ttl: Minutes) -> Self {
        LiveLocations {
            inner: Arc::default(),
            ttl,
        }
    }

    /// Records that `worker` is at `at` as of `now`; returns until when it is used.
    pub fn report(&self, worker: WorkerId, at: GeoPoint, now: Timestamp) -> Timestamp {
        let until = now.plus(self.ttl);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.latest.insert(worker, (at, until));
        inner.reports += 1;
        if inner.reports.is_multiple_of(SWEEP_EVERY) {
            inner.latest.retain(|_, (_, until)| *until > now);
        }
        until
    }

    /// Where `worker` is as of `now`, if they reported within the TTL.
    pub fn get(&self, worker: WorkerId, now: Timestamp) -> Option<GeoPoint> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .latest
            .get(&worker)
            .filter(|(_, until)| *until > now)
            .map(|(at, _)| *at)
    }

    /// How many reports are held (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .latest
            .len()
    }

    /// Whether no report is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_is_used_until_its_ttl_then_forgotten() {
        let live = LiveLocations::new(Minutes(10));
        let worker = WorkerId::from_u128(7);
        let here = GeoPoint::new(26.08, 119.3).unwrap();
        let until = live.report(worker, here, Timestamp(0));
        assert_eq!(until, Timestamp(600_000));
        assert_eq!(live.get(worker, Timestamp(599_999)), Some(here));
        assert_eq!(live.get(worker, Timestamp(600_000)), None);
        assert_eq!(live.get(WorkerId::from_u128(8), Timestamp(0)), None);
    }

    #[test]
    fn expired_reports_are_swept() {
        let live = LiveLocations::new(Minutes(1));
        let here = GeoPoint::new(26.08, 119.3).unwrap();
        for i in 1..SWEEP_EVERY {
            live.report(WorkerId::from_u128(u128::from(i)), here, Timestamp(0));
        }
        assert_eq!(live.len(), 1_023);
        // The 1024th report, two minutes later, sweeps the expired ones.
        live.report(WorkerId::from_u128(5_000), here, Timestamp(120_000));
        assert_eq!(live.len(), 1);
    }
}
