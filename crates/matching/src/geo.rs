//! Great-circle distance and the spatial index of workers used for candidate search.
//!
//! Geo index choice: `rstar` R*-trees, one per service type, holding the workers skilled in it
//! as points in earth-centred 3-D Cartesian km. The straight-line (chord) distance between two
//! such points is a monotone function of their great-circle distance, so a great-circle radius
//! is an exact chord radius: no projection error, no city centre to choose, fine at any
//! latitude. Insert, remove and move are O(log n) per skill; a range query costs O(log n) plus
//! what it returns, and searches grow their radius only as far as the cost bound requires (see
//! `candidates`). One tree per service type keeps searches for rare skills (maternity, elder
//! care) from wading through workers who cannot serve the order; each entry also carries the
//! worker's certificates, credit and load so that most workers are rejected or bounded without
//! reading their record. The alternative, h3o cells (a hash map from cell to workers queried by
//! growing grid disks), was measured against this index on the same workload
//! (`geo-index-bench --workers 50000 --queries 5000 --seed 1`, BENCHMARKS.md "Spatial index"):
//! the R-tree answered nearest-24 queries in 8-10 µs (p50) against 15-127 µs for H3
//! resolutions 8-6, while full 15 km radius queries were close (310 µs against 216-355 µs) and
//! both update in about a microsecond. Searches here stop as soon as the cost bound allows,
//! which is the nearest-first case, so the R-tree wins where the matcher spends its time.

use rstar::RTree;
use rstar::primitives::GeomWithData;

use crate::model::{BitSet64, GeoPoint};

/// Mean earth radius (IUGG), km.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle distance in km between two WGS-84 points (haversine formula on a sphere of
/// [`EARTH_RADIUS_KM`]). Not a number when a coordinate is not a number.
pub fn haversine_km(a: GeoPoint, b: GeoPoint) -> f64 {
    let lat_a = a.lat.to_radians();
    let lat_b = b.lat.to_radians();
    let half_dlat = (lat_b - lat_a) / 2.0;
    let half_dlon = (b.lon - a.lon).to_radians() / 2.0;
    let sin_dlat = half_dlat.sin();
    let sin_dlon = half_dlon.sin();
    let h = sin_dlat * sin_dlat + lat_a.cos() * lat_b.cos() * sin_dlon * sin_dlon;
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// A point on the sphere in earth-centred Cartesian km.
pub(crate) type Xyz = [f64; 3];

/// The earth-centred Cartesian position of a point.
pub(crate) fn to_xyz(p: GeoPoint) -> Xyz {
    let (lat, lon) = (p.lat.to_radians(), p.lon.to_radians());
    [
        EARTH_RADIUS_KM * lat.cos() * lon.cos(),
        EARTH_RADIUS_KM * lat.cos() * lon.sin(),
        EARTH_RADIUS_KM * lat.sin(),
    ]
}

/// Relative slack between chord and haversine arithmetic: limits derived from chords are
/// widened by it so that rounding never hides a worker; the exact rules use haversine.
const SLACK: f64 = 1e-9;

/// The squared chord length of a great-circle distance, widened by [`SLACK`]: an upper limit
/// for tree searches within `km`.
pub(crate) fn chord2_limit(km: f64) -> f64 {
    let half_angle = (km / (2.0 * EARTH_RADIUS_KM)).clamp(0.0, std::f64::consts::FRAC_PI_2);
    let chord = 2.0 * EARTH_RADIUS_KM * half_angle.sin();
    chord * chord * (1.0 + SLACK) + SLACK
}

/// A lower bound of the great-circle distance of two points whose squared chord is at least
/// `chord2`: an arc is never shorter than its chord.
pub(crate) fn km_lower_bound(chord2: f64) -> f64 {
    (chord2.max(0.0).sqrt() * (1.0 - SLACK) - SLACK).max(0.0)
}

/// Squared chord between two points.
pub(crate) fn chord2(a: &Xyz, b: &Xyz) -> f64 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    dx * dx + dy * dy + dz * dz
}

/// What the index keeps beside each point: the worker's slot in the pool and the fields that
/// let a search reject or bound her without reading the worker record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hot {
    /// The worker's slot in the pool.
    pub(crate) slot: u32,
    /// Credit score.
    pub(crate) credit: u16,
    /// Recent load.
    pub(crate) load: u16,
    /// Valid certificates.
    pub(crate) certificates: BitSet64,
}

type Entry = GeomWithData<Xyz, Hot>;

/// Workers by service type: one R*-tree per service (0..64).
pub(crate) struct WorkerIndex {
    by_service: Vec<RTree<Entry>>,
}

impl WorkerIndex {
    /// An empty index.
    pub(crate) fn new() -> Self {
        WorkerIndex {
            by_service: (0..64).map(|_| RTree::new()).collect(),
        }
    }

    /// Adds a worker at `at` under each of `skills`: O(|skills| log n).
    pub(crate) fn insert(&mut self, at: Xyz, skills: BitSet64, hot: Hot) {
        for service in services(skills) {
            if let Some(tree) = self.by_service.get_mut(service) {
                tree.insert(GeomWithData::new(at, hot));
            }
        }
    }

    /// Removes what [`WorkerIndex::insert`] added with the same arguments.
    pub(crate) fn remove(&mut self, at: Xyz, skills: BitSet64, hot: Hot) {
        let entry = GeomWithData::new(at, hot);
        for service in services(skills) {
            if let Some(tree) = self.by_service.get_mut(service) {
                tree.remove(&entry);
            }
        }
    }

    /// Workers skilled in `service` whose squared chord to `at` is at most `max_chord2`, in
    /// no particular order, with their squared chord.
    pub(crate) fn within(
        &self,
        service: u8,
        at: Xyz,
        max_chord2: f64,
    ) -> impl Iterator<Item = (Hot, f64)> + '_ {
        self.by_service
            .get(usize::from(service))
            .into_iter()
            .flat_map(move |tree| tree.locate_within_distance(at, max_chord2))
            .map(move |entry| (entry.data, chord2(entry.geom(), &at)))
    }

    /// Number of (worker, service) entries.
    pub(crate) fn entries(&self) -> usize {
        self.by_service.iter().map(RTree::size).sum()
    }
}

/// The service indices in a skill set.
fn services(skills: BitSet64) -> impl Iterator<Item = usize> {
    (0..64u8)
        .filter(move |&s| skills.contains(s))
        .map(usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chord_bounds_bracket_haversine() {
        let a = GeoPoint {
            lat: 27.948,
            lon: 116.358,
        };
        let b = GeoPoint {
            lat: 28.248,
            lon: 116.603,
        };
        let km = haversine_km(a, b);
        let (pa, pb) = (to_xyz(a), to_xyz(b));
        let c2 = chord2(&pa, &pb);
        assert!(km_lower_bound(c2) <= km);
        assert!(c2 <= chord2_limit(km));
        assert!((km_lower_bound(c2) - km).abs() < 1e-3);
    }
}
