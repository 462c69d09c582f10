//! The spatial indexes that `geo-index-bench` compares for the matcher's candidate search:
//! rstar R*-trees (earth-centred 3-D points, as the matcher uses, and a planar projection) and
//! h3o cells (a hash map from cell to workers, queried by grid disks or growing rings). Every
//! index answers radius and k-nearest queries exactly: it yields a superset and filters it by
//! `haversine_km`.

use daojia_matching::{GeoPoint, haversine_km};
use h3o::{CellIndex, LatLng, Resolution};
use hashbrown::HashMap;
use rstar::primitives::GeomWithData;
use rstar::{ParentNode, RTree, RTreeNode, RTreeObject};

/// Mean earth radius (IUGG), km, as the matcher's haversine uses.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A set of workers' points by dense id with exact radius queries.
pub trait RadiusIndex {
    /// A short name for reports.
    fn name(&self) -> String;
    /// Adds `id` at `p` (`id` absent).
    fn insert(&mut self, id: u32, p: GeoPoint);
    /// Removes `id`; false when absent.
    fn remove(&mut self, id: u32) -> bool;
    /// Moves `id` to `p`.
    fn move_to(&mut self, id: u32, p: GeoPoint) {
        if self.remove(id) {
            self.insert(id, p);
        }
    }
    /// Appends every id within `radius_km` of `p` (great circle) to `out`; returns how many
    /// entries it examined.
    fn within(&self, p: GeoPoint, radius_km: f64, out: &mut Vec<u32>) -> usize;
    /// The `k` nearest ids within `radius_km` of `p`, nearest first, into `out`; returns how
    /// many entries it examined.
    fn nearest(&self, p: GeoPoint, k: usize, radius_km: f64, out: &mut Nearest) -> usize;
    /// An estimate of the index's own heap bytes (not counting the points every index keeps
    /// for the exact filter, which the matcher has anyway).
    fn heap_bytes(&self) -> usize;
}

/// The k best `(distance km, id)` seen so far, nearest first.
#[derive(Clone, Debug, Default)]
pub struct Nearest {
    k: usize,
    /// Nearest first.
    pub items: Vec<(f64, u32)>,
}

impl Nearest {
    /// Starts a search for `k` items.
    pub fn reset(&mut self, k: usize) {
        self.k = k;
        self.items.clear();
    }

    /// Offers an item.
    pub fn offer(&mut self, km: f64, id: u32) {
        if self.items.len() == self.k && self.items.last().is_some_and(|&(d, i)| (d, i) <= (km, id))
        {
            return;
        }
        let at = self.items.partition_point(|&(d, i)| (d, i) < (km, id));
        self.items.insert(at, (km, id));
        self.items.truncate(self.k);
    }

    /// The distance that a farther item cannot beat (infinite until there are k items).
    pub fn bound(&self) -> f64 {
        match self.items.last() {
            Some(&(d, _)) if self.items.len() == self.k => d,
            _ => f64::INFINITY,
        }
    }
}

/// Points by id (`None`: absent), kept by every index for the exact filter.
#[derive(Clone, Debug, Default)]
struct Points(Vec<Option<GeoPoint>>);

impl Points {
    fn set(&mut self, id: u32, p: Option<GeoPoint>) -> Option<GeoPoint> {
        let i = id as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, None);
        }
        std::mem::replace(&mut self.0[i], p)
    }

    fn get(&self, id: u32) -> Option<GeoPoint> {
        self.0.get(id as usize).copied().flatten()
    }
}

/// h3o cells at one resolution: cell → ids.
#[derive(Debug)]
pub struct H3Cells {
    resolution: Resolution,
    cells: HashMap<CellIndex, Vec<u32>>,
    cell_of: Vec<Option<CellIndex>>,
    points: Points,
}

impl H3Cells {
    /// Indexes `points` (id = position) at `resolution`.
    pub fn build(resolution: Resolution, points: &[GeoPoint]) -> Self {
        let mut index = H3Cells {
            resolution,
            cells: HashMap::new(),
            cell_of: Vec::with_capacity(points.len()),
            points: Points(Vec::with_capacity(points.len())),
        };
        for (i, &p) in points.iter().enumerate() {
            index.insert(i as u32, p);
        }
        index
    }

    fn cell(&self, p: GeoPoint) -> Option<CellIndex> {
        LatLng::new(p.lat, p.lon)
            .ok()
            .map(|ll| ll.to_cell(self.resolution))
    }

    /// The grid distance whose disk around the query's cell holds every cell that can contain
    /// a point within `radius_km`: such a cell's centre is within `radius_km + 2 × edge` of
    /// the query cell's centre, and cells beyond grid distance k are at least `1.5 × edge ×
    /// (k + 1)` away. Edges vary over the globe, so the average edge is widened by 25% for
    /// the first bound and narrowed by 20% for the second.
    pub fn disk_k(&self, radius_km: f64) -> u32 {
        let e = self.resolution.edge_length_km();
        ((radius_km + 2.0 * 1.25 * e) / (1.5 * 0.8 * e)).ceil() as u32
    }
}

impl RadiusIndex for H3Cells {
    fn name(&self) -> String {
        format!("h3o_r{}", u8::from(self.resolution))
    }

    fn insert(&mut self, id: u32, p: GeoPoint) {
        let cell = self.cell(p);
        if let Some(c) = cell {
            self.cells.entry(c).or_default().push(id);
        }
        let i = id as usize;
        if self.cell_of.len() <= i {
            self.cell_of.resize(i + 1, None);
        }
        self.cell_of[i] = cell;
        self.points.set(id, Some(p));
    }

    fn remove(&mut self, id: u32) -> bool {
        if self.points.set(id, None).is_none() {
            return false;
        }
        let Some(cell) = self.cell_of.get_mut(id as usize).and_then(Option::take) else {
            return true;
        };
        if let Some(ids) = self.cells.get_mut(&cell) {
            if let Some(pos) = ids.iter().position(|&x| x == id) {
                ids.swap_remove(pos);
            }
            if ids.is_empty() {
                self.cells.remove(&cell);
            }
        }
        true
    }

    fn move_to(&mut self, id: u32, p: GeoPoint) {
        // A live-location update usually stays in its cell: then only the point changes.
        let new_cell = self.cell(p);
        if self.points.get(id).is_some() && self.cell_of.get(id as usize) == Some(&new_cell) {
            self.points.set(id, Some(p));
        } else if self.remove(id) {
            self.insert(id, p);
        }
    }

    fn within(&self, p: GeoPoint, radius_km: f64, out: &mut Vec<u32>) -> usize {
        let Some(origin) = self.cell(p) else {
            return 0;
        };
        let mut scanned = 0;
        for c in origin.grid_disk::<Vec<_>>(self.disk_k(radius_km)) {
            for &id in self.cells.get(&c).into_iter().flatten() {
                scanned += 1;
                if self
                    .points
                    .get(id)
                    .is_some_and(|q| haversine_km(p, q) <= radius_km)
                {
                    out.push(id);
                }
            }
        }
        scanned
    }

    fn nearest(&self, p: GeoPoint, k: usize, radius_km: f64, out: &mut Nearest) -> usize {
        out.reset(k);
        let Some(origin) = self.cell(p) else {
            return 0;
        };
        let e = self.resolution.edge_length_km();
        let mut scanned = 0;
        for ring in 0..=self.disk_k(radius_km) {
            // Every point of a cell at grid distance `ring` is at least this far from `p`
            // (the bounds of `disk_k`).
            let lower = 1.5 * 0.8 * e * f64::from(ring) - 2.0 * 1.25 * e;
            if lower > radius_km || lower > out.bound() {
                break;
            }
            for c in origin.grid_ring::<Vec<_>>(ring) {
                for &id in self.cells.get(&c).into_iter().flatten() {
                    scanned += 1;
                    if let Some(q) = self.points.get(id) {
                        let d = haversine_km(p, q);
                        if d <= radius_km {
                            out.offer(d, id);
                        }
                    }
                }
            }
        }
        scanned
    }

    fn heap_bytes(&self) -> usize {
        self.cells.capacity() * (size_of::<(CellIndex, Vec<u32>)>() + 1)
            + self
                .cells
                .values()
                .map(|v| v.capacity() * size_of::<u32>())
                .sum::<usize>()
            + self.cell_of.capacity() * size_of::<Option<CellIndex>>()
    }
}

/// Earth-centred Cartesian km.
fn to_xyz(p: GeoPoint) -> [f64; 3] {
    let (lat, lon) = (p.lat.to_radians(), p.lon.to_radians());
    [
        EARTH_RADIUS_KM * lat.cos() * lon.cos(),
        EARTH_RADIUS_KM * lat.cos() * lon.sin(),
        EARTH_RADIUS_KM * lat.sin(),
    ]
}

/// An R*-tree of earth-centred 3-D points: chord length is monotone in great-circle distance,
/// so a radius is an exact chord limit (widened by 1e-6 against rounding).
#[derive(Debug, Default)]
pub struct RTreeEcef {
    tree: RTree<GeomWithData<[f64; 3], u32>>,
    points: Points,
}

impl RTreeEcef {
    /// Bulk-loads `points` (id = position).
    pub fn build(points: &[GeoPoint]) -> Self {
        let items = points
            .iter()
            .enumerate()
            .map(|(i, &p)| GeomWithData::new(to_xyz(p), i as u32))
            .collect();
        RTreeEcef {
            tree: RTree::bulk_load(items),
            points: Points(points.iter().copied().map(Some).collect()),
        }
    }
}

impl RadiusIndex for RTreeEcef {
    fn name(&self) -> String {
        "rstar_ecef".into()
    }

    fn insert(&mut self, id: u32, p: GeoPoint) {
        self.tree.insert(GeomWithData::new(to_xyz(p), id));
        self.points.set(id, Some(p));
    }

    fn remove(&mut self, id: u32) -> bool {
        match self.points.set(id, None) {
            Some(p) => self
                .tree
                .remove(&GeomWithData::new(to_xyz(p), id))
                .is_some(),
            None => false,
        }
    }

    fn within(&self, p: GeoPoint, radius_km: f64, out: &mut Vec<u32>) -> usize {
        let mut scanned = 0;
        for item in self
            .tree
            .locate_within_distance(to_xyz(p), chord2_limit(radius_km))
        {
            scanned += 1;
            let id = item.data;
            if self
                .points
                .get(id)
                .is_some_and(|q| haversine_km(p, q) <= radius_km)
            {
                out.push(id);
            }
        }
        scanned
    }

    fn nearest(&self, p: GeoPoint, k: usize, radius_km: f64, out: &mut Nearest) -> usize {
        out.reset(k);
        let limit = chord2_limit(radius_km);
        let mut scanned = 0;
        for (item, d2) in self.tree.nearest_neighbor_iter_with_distance_2(to_xyz(p)) {
            if d2 > limit || d2 > chord2_limit(out.bound()) {
                break;
            }
            scanned += 1;
            if let Some(q) = self.points.get(item.data) {
                let d = haversine_km(p, q);
                if d <= radius_km {
                    out.offer(d, item.data);
                }
            }
        }
        scanned
    }

    fn heap_bytes(&self) -> usize {
        tree_bytes(self.tree.root())
    }
}

/// An R*-tree of points projected to a plane (equirectangular km around an origin). Within
/// ±2.5° of latitude from the origin, projected distances are within 2.5% of great-circle ones,
/// so queries are widened by 3% and filtered by haversine.
#[derive(Debug)]
pub struct RTreePlanar {
    origin: GeoPoint,
    tree: RTree<GeomWithData<[f64; 2], u32>>,
    points: Points,
}

/// Kilometres per degree on the haversine sphere.
const KM_PER_DEGREE: f64 = EARTH_RADIUS_KM * std::f64::consts::PI / 180.0;

impl RTreePlanar {
    /// Bulk-loads `points` (id = position), projected around `origin`.
    pub fn build(origin: GeoPoint, points: &[GeoPoint]) -> Self {
        let mut index = RTreePlanar {
            origin,
            tree: RTree::new(),
            points: Points(points.iter().copied().map(Some).collect()),
        };
        let items = points
            .iter()
            .enumerate()
            .map(|(i, &p)| GeomWithData::new(index.project(p), i as u32))
            .collect();
        index.tree = RTree::bulk_load(items);
        index
    }

    fn project(&self, p: GeoPoint) -> [f64; 2] {
        [
            (p.lon - self.origin.lon) * KM_PER_DEGREE * self.origin.lat.to_radians().cos(),
            (p.lat - self.origin.lat) * KM_PER_DEGREE,
        ]
    }
}

impl RadiusIndex for RTreePlanar {
    fn name(&self) -> String {
        "rstar_planar".into()
    }

    fn insert(&mut self, id: u32, p: GeoPoint) {
        self.tree.insert(GeomWithData::new(self.project(p), id));
        self.points.set(id, Some(p));
    }

    fn remove(&mut self, id: u32) -> bool {
        match self.points.set(id, None) {
            Some(p) => self
                .tree
                .remove(&GeomWithData::new(self.project(p), id))
                .is_some(),
            None => false,
        }
    }

    fn within(&self, p: GeoPoint, radius_km: f64, out: &mut Vec<u32>) -> usize {
        let r = radius_km * 1.03;
        let mut scanned = 0;
        for item in self.tree.locate_within_distance(self.project(p), r * r) {
            scanned += 1;
            let id = item.data;
            if self
                .points
                .get(id)
                .is_some_and(|q| haversine_km(p, q) <= radius_km)
            {
                out.push(id);
            }
        }
        scanned
    }

    fn nearest(&self, p: GeoPoint, k: usize, radius_km: f64, out: &mut Nearest) -> usize {
        out.reset(k);
        let mut scanned = 0;
        for (item, d2) in self
            .tree
            .nearest_neighbor_iter_with_distance_2(self.project(p))
        {
            // Great-circle distance is at least the projected one / 1.03.
            let projected = d2.sqrt();
            if projected > radius_km * 1.03 || projected > out.bound() * 1.03 {
                break;
            }
            scanned += 1;
            if let Some(q) = self.points.get(item.data) {
                let d = haversine_km(p, q);
                if d <= radius_km {
                    out.offer(d, item.data);
                }
            }
        }
        scanned
    }

    fn heap_bytes(&self) -> usize {
        tree_bytes(self.tree.root())
    }
}

/// Bytes of an R*-tree's node arrays (by length; capacity slack is not visible).
fn tree_bytes<T: RTreeObject>(node: &ParentNode<T>) -> usize {
    size_of_val(node.children())
        + node
            .children()
            .iter()
            .map(|c| match c {
                RTreeNode::Parent(p) => tree_bytes(p),
                RTreeNode::Leaf(_) => 0,
            })
            .sum::<usize>()
}

/// The squared chord of a great-circle distance, widened by 1e-6 against rounding: an upper
/// limit for 3-D tree searches within `km` (any `km`, infinite included).
fn chord2_limit(km: f64) -> f64 {
    let half = (km / (2.0 * EARTH_RADIUS_KM)).clamp(0.0, std::f64::consts::FRAC_PI_2);
    let chord = 2.0 * EARTH_RADIUS_KM * half.sin() * (1.0 + 1e-6);
    chord * chord
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzhou::generate;
    use crate::splitmix::SplitMix64;

    fn brute(points: &[Option<GeoPoint>], p: GeoPoint, r: f64) -> Vec<u32> {
        (0..points.len() as u32)
            .filter(|&i| points[i as usize].is_some_and(|q| haversine_km(p, q) <= r))
            .collect()
    }

    #[test]
    fn nearest_keeps_the_k_best_in_order() {
        let mut n = Nearest::default();
        n.reset(3);
        assert_eq!(n.bound(), f64::INFINITY);
        for (d, i) in [(5.0, 1), (1.0, 2), (3.0, 3), (4.0, 4), (0.5, 5), (3.0, 0)] {
            n.offer(d, i);
        }
        assert_eq!(n.items, vec![(0.5, 5), (1.0, 2), (3.0, 0)]);
        assert_eq!(n.bound(), 3.0);
        for index in [
            H3Cells::build(Resolution::Seven, &[]).heap_bytes(),
            RTreeEcef::build(&[]).heap_bytes(),
        ] {
            assert!(index < 1024);
        }
    }

    #[test]
    fn every_index_answers_radius_queries_exactly_through_updates() {
        let inst = generate(150, 3_000, 17);
        let mut points: Vec<Option<GeoPoint>> =
            inst.workers.iter().map(|w| Some(w.location)).collect();
        let all: Vec<GeoPoint> = inst.workers.iter().map(|w| w.location).collect();
        let centre = GeoPoint {
            lat: 27.948,
            lon: 116.358,
        };
        let mut indexes: Vec<Box<dyn RadiusIndex>> = vec![
            Box::new(RTreeEcef::build(&all)),
            Box::new(RTreePlanar::build(centre, &all)),
            Box::new(H3Cells::build(Resolution::Six, &all)),
            Box::new(H3Cells::build(Resolution::Seven, &all)),
            Box::new(H3Cells::build(Resolution::Eight, &all)),
        ];
        let mut rng = SplitMix64::new(3);
        for round in 0..3 {
            for o in &inst.orders {
                for r in [5.0, 15.0, 30.0] {
                    let want = brute(&points, o.location, r);
                    let mut by_distance: Vec<(f64, u32)> = want
                        .iter()
                        .map(|&i| (haversine_km(o.location, points[i as usize].unwrap()), i))
                        .collect();
                    by_distance.sort_by(|a, b| a.partial_cmp(b).unwrap());
                    by_distance.truncate(10);
                    for index in &indexes {
                        let mut got = Vec::new();
                        index.within(o.location, r, &mut got);
                        got.sort_unstable();
                        assert_eq!(got, want, "{} round {round} radius {r}", index.name());
                        let mut nearest = Nearest::default();
                        index.nearest(o.location, 10, r, &mut nearest);
                        assert_eq!(
                            nearest.items,
                            by_distance,
                            "{} nearest, round {round}",
                            index.name()
                        );
                    }
                }
            }
            // Move, remove and re-insert some workers in every index alike.
            for _ in 0..500 {
                let id = rng.index(points.len()) as u32;
                let to = GeoPoint {
                    lat: 27.2 + rng.next_f64(),
                    lon: 115.9 + rng.next_f64(),
                };
                let action = rng.index(3);
                for index in &mut indexes {
                    match (action, points[id as usize]) {
                        (0, Some(_)) => index.move_to(id, to),
                        (1, Some(_)) => assert!(index.remove(id)),
                        (_, None) => index.insert(id, to),
                        _ => {}
                    }
                }
                points[id as usize] = match (action, points[id as usize]) {
                    (0, Some(_)) | (_, None) => Some(to),
                    (1, Some(_)) => None,
                    (_, p) => p,
                };
            }
        }
    }
}
