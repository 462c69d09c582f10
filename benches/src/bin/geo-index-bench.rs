//! Candidate-search indexes on the matching workload: h3o cells at resolutions 6-8 against
//! rstar R*-trees (earth-centred 3-D, as the matcher uses, and planar), on the Fuzhou instance.
//!
//! `cargo run --release -p daojia-benches --bin geo-index-bench -- --workers M --queries Q --seed S [--radius-km R] [--k K] [--updates U]`
//! For each index: build time from all worker locations, radius queries around the orders'
//! locations (every worker within R km, default 15, filtered by haversine), k-nearest queries
//! (the K nearest within R, default 24, as a matcher's candidate search asks), then U inserts
//! of new workers, U live-location moves (about 300 m) and U removals, and an estimate of the
//! index's heap. Each index's answers are checked against the first index and, for the first
//! 100 queries, against a linear scan. The last line of output is one JSON object.

use std::time::Instant;

use daojia_benches::fuzhou::generate;
use daojia_benches::geo_index::{H3Cells, Nearest, RTreeEcef, RTreePlanar, RadiusIndex};
use daojia_benches::splitmix::SplitMix64;
use daojia_benches::{num, parse_args, percentile};
use daojia_matching::{GeoPoint, haversine_km};
use h3o::Resolution;
use serde_json::json;

/// The city centre of `shared/data/fuzhou.json`, the planar projection's origin.
const CENTRE: GeoPoint = GeoPoint {
    lat: 27.948,
    lon: 116.358,
};

/// Queries checked against a linear scan.
const SCANNED_QUERIES: usize = 100;

fn main() {
    if let Err(e) = run() {
        eprintln!("geo-index-bench: {e}");
        std::process::exit(2);
    }
}

/// A query's answer as (count, sum of ids, sum of squares), for comparing indexes cheaply.
fn fingerprint(ids: impl Iterator<Item = u32>) -> (usize, u64, u64) {
    ids.fold((0, 0, 0), |(n, s, q), i| {
        let i = u64::from(i);
        (n + 1, s + i, q.wrapping_add(i * i))
    })
}

#[allow(clippy::print_stdout)]
fn run() -> Result<(), String> {
    let args = parse_args(&["workers", "queries", "seed", "radius-km", "k", "updates"])?;
    let workers: usize = num(&args, "workers", 50_000)?;
    let queries: usize = num(&args, "queries", 1_000)?;
    let seed: u64 = num(&args, "seed", 1)?;
    let radius_km: f64 = num(&args, "radius-km", 15.0)?;
    let updates: usize = num(&args, "updates", 10_000)?;
    let k: usize = num(&args, "k", 24)?;
    if workers == 0 || queries == 0 {
        return Err("--workers and --queries must be positive".into());
    }
    if !(radius_km > 0.0 && radius_km <= 200.0) {
        return Err("--radius-km must be in (0, 200]".into());
    }
    if workers + updates > u32::MAX as usize {
        return Err("--workers plus --updates must fit u32 ids".into());
    }

    let inst = generate(queries, workers, seed);
    let points: Vec<GeoPoint> = inst.workers.iter().map(|w| w.location).collect();
    let query_points: Vec<GeoPoint> = inst.orders.iter().map(|o| o.location).collect();
    let newcomers: Vec<GeoPoint> = generate(0, updates, seed ^ 0x5eed)
        .workers
        .iter()
        .map(|w| w.location)
        .collect();
    let mut rng = SplitMix64::new(seed);
    let moves: Vec<(u32, GeoPoint)> = (0..updates)
        .map(|_| {
            let id = rng.index(workers);
            let p = points[id];
            let (dn, de) = (rng.gaussian() * 0.3, rng.gaussian() * 0.3);
            let to = GeoPoint {
                lat: p.lat + dn / 111.2,
                lon: p.lon + de / (111.2 * p.lat.to_radians().cos()),
            };
            (id as u32, to)
        })
        .collect();
    // Distinct ids to remove: a partial Fisher-Yates shuffle.
    let mut ids: Vec<u32> = (0..workers as u32).collect();
    let removals = updates.min(workers);
    for i in 0..removals {
        let j = i + rng.index(workers - i);
        ids.swap(i, j);
    }
    let removed = &ids[..removals];

    let mut scanned_answers = Vec::new();
    let mut scanned_nearest = Vec::new();
    for &q in query_points.iter().take(SCANNED_QUERIES) {
        let mut ids: Vec<(f64, u32)> = (0..workers as u32)
            .map(|i| (haversine_km(q, points[i as usize]), i))
            .filter(|&(d, _)| d <= radius_km)
            .collect();
        scanned_answers.push(fingerprint(ids.iter().map(|&(_, i)| i)));
        ids.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        scanned_nearest.push(fingerprint(ids.iter().take(k).map(|&(_, i)| i)));
    }

    type Build = fn(&[GeoPoint]) -> Box<dyn RadiusIndex>;
    let builders: [Build; 5] = [
        |p| Box::new(RTreeEcef::build(p)),
        |p| Box::new(RTreePlanar::build(CENTRE, p)),
        |p| Box::new(H3Cells::build(Resolution::Six, p)),
        |p| Box::new(H3Cells::build(Resolution::Seven, p)),
        |p| Box::new(H3Cells::build(Resolution::Eight, p)),
    ];
    type Answers = Vec<(usize, u64, u64)>;
    let mut reference: Option<(Answers, Answers)> = None;
    let mut reports = Vec::new();
    for build in builders {
        let t = Instant::now();
        let mut index = build(&points);
        let build_ms = t.elapsed().as_secs_f64() * 1e3;
        let heap_bytes = index.heap_bytes();
        let name = index.name();

        let mut out = Vec::new();
        let mut nanos = Vec::with_capacity(queries);
        let mut answers = Vec::with_capacity(queries);
        let (mut scanned, mut found) = (0usize, 0usize);
        for &q in &query_points {
            out.clear();
            let t = Instant::now();
            scanned += index.within(q, radius_km, &mut out);
            nanos.push(t.elapsed().as_nanos() as u64);
            found += out.len();
            answers.push(fingerprint(out.iter().copied()));
        }
        let mean_us = nanos.iter().sum::<u64>() as f64 / queries as f64 / 1e3;
        nanos.sort_unstable();

        let mut nearest = Nearest::default();
        let mut knn_nanos = Vec::with_capacity(queries);
        let mut knn_answers = Vec::with_capacity(queries);
        let mut knn_scanned = 0usize;
        for &q in &query_points {
            let t = Instant::now();
            knn_scanned += index.nearest(q, k, radius_km, &mut nearest);
            knn_nanos.push(t.elapsed().as_nanos() as u64);
            knn_answers.push(fingerprint(nearest.items.iter().map(|&(_, i)| i)));
        }
        knn_nanos.sort_unstable();

        let exact = answers.iter().zip(&scanned_answers).all(|(a, b)| a == b)
            && knn_answers
                .iter()
                .zip(&scanned_nearest)
                .all(|(a, b)| a == b)
            && reference
                .as_ref()
                .is_none_or(|(r, n)| *r == answers && *n == knn_answers);
        if !exact {
            eprintln!("{name}: answers differ from the linear scan or the first index");
        }
        if reference.is_none() {
            reference = Some((answers, knn_answers));
        }

        let t = Instant::now();
        for (i, &p) in newcomers.iter().enumerate() {
            index.insert((workers + i) as u32, p);
        }
        let insert_ns = t.elapsed().as_nanos() as f64 / updates.max(1) as f64;
        let t = Instant::now();
        for &(id, to) in &moves {
            index.move_to(id, to);
        }
        let move_ns = t.elapsed().as_nanos() as f64 / updates.max(1) as f64;
        let t = Instant::now();
        for &id in removed {
            index.remove(id);
        }
        let remove_ns = t.elapsed().as_nanos() as f64 / removals.max(1) as f64;

        let p50_us = percentile(&nanos, 50.0) as f64 / 1e3;
        let p99_us = percentile(&nanos, 99.0) as f64 / 1e3;
        let knn_p50_us = percentile(&knn_nanos, 50.0) as f64 / 1e3;
        let knn_p99_us = percentile(&knn_nanos, 99.0) as f64 / 1e3;
        eprintln!(
            "{name:>13}: build {build_ms:6.1} ms, radius p50 {p50_us:6.1} µs p99 {p99_us:6.1} µs ({:.0} scanned), {k}-nearest p50 {knn_p50_us:5.1} µs p99 {knn_p99_us:5.1} µs ({:.0} scanned), insert {insert_ns:.0} ns, move {move_ns:.0} ns, remove {remove_ns:.0} ns, {} KiB",
            scanned as f64 / queries as f64,
            knn_scanned as f64 / queries as f64,
            heap_bytes >> 10
        );
        let round1 = |x: f64| (x * 10.0).round() / 10.0;
        reports.push(json!({
            "index": name,
            "build_ms": round1(build_ms),
            "query_p50_us": round1(p50_us),
            "query_p99_us": round1(p99_us),
            "query_mean_us": round1(mean_us),
            "scanned_per_query": round1(scanned as f64 / queries as f64),
            "found_per_query": round1(found as f64 / queries as f64),
            "knn_p50_us": round1(knn_p50_us),
            "knn_p99_us": round1(knn_p99_us),
            "knn_scanned_per_query": round1(knn_scanned as f64 / queries as f64),
            "exact": exact,
            "insert_ns": insert_ns.round(),
            "move_ns": move_ns.round(),
            "remove_ns": remove_ns.round(),
            "heap_bytes": heap_bytes,
        }));
    }
    let all_exact = reports.iter().all(|r| r["exact"] == json!(true));
    let line = json!({
        "workers": workers,
        "queries": queries,
        "seed": seed,
        "radius_km": radius_km,
        "k": k,
        "updates": updates,
        "indexes": reports,
    });
    println!("{line}");
    if !all_exact {
        return Err("an index answered a radius query wrongly (see above)".into());
    }
    Ok(())
}
