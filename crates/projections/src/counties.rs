//! Where the KPI model's counties come from: Fuzhou's eleven county seats built in, or a county
//! list read from a JSON file of the same shape as the reference data (`shared/data/fuzhou.json`:
//! an object whose `counties` array holds `{"zh": name, "lat": degrees, "lon": degrees}`; other
//! fields are ignored), so that another city is configuration, not code.
//!
//! Orders are attributed to the nearest seat (see [`kpis`](crate::kpis)). The seats are
//! approximate (about 0.05°), which is enough to tell the counties' towns apart.

use daojia_domain::order::GeoPoint;
use serde::Deserialize;

use crate::ProjectionError;
use crate::kpis::County;

/// Fuzhou (抚州) county seats: name, latitude, longitude (from the reference data).
const FUZHOU: [(&str, f64, f64); 11] = [
    ("临川区", 27.977, 116.312),
    ("东乡区", 28.248, 116.603),
    ("南城县", 27.569, 116.637),
    ("黎川县", 27.282, 116.907),
    ("南丰县", 27.218, 116.525),
    ("崇仁县", 27.764, 116.061),
    ("乐安县", 27.428, 115.831),
    ("宜黄县", 27.555, 116.236),
    ("金溪县", 27.918, 116.755),
    ("资溪县", 27.706, 117.060),
    ("广昌县", 26.838, 116.326),
];

/// Fuzhou's eleven counties, by their Chinese names.
pub fn fuzhou() -> Vec<County> {
    FUZHOU
        .iter()
        .map(|&(name, lat, lon)| County {
            name: name.to_owned(),
            seat: GeoPoint { lat, lon },
        })
        .collect()
}

#[derive(Deserialize)]
struct File {
    counties: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    zh: String,
    lat: f64,
    lon: f64,
}

/// Counties from a JSON document shaped like the reference data (see the module docs).
/// Refuses an empty list, an empty or repeated name and an out-of-range seat.
pub fn from_json(json: &[u8]) -> Result<Vec<County>, ProjectionError> {
    let bad = |reason: String| ProjectionError::Counties { reason };
    let file: File = serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
    if file.counties.is_empty() {
        return Err(bad("the county list is empty".into()));
    }
    let mut counties: Vec<County> = Vec::with_capacity(file.counties.len());
    for Entry { zh, lat, lon } in file.counties {
        if zh.trim().is_empty() {
            return Err(bad("a county has an empty name".into()));
        }
        if counties.iter().any(|c| c.name == zh) {
            return Err(bad(format!("county {zh} is listed twice")));
        }
        let seat = GeoPoint::new(lat, lon).map_err(|e| bad(format!("county {zh}: {e}")))?;
        counties.push(County { name: zh, seat });
    }
    Ok(counties)
}
