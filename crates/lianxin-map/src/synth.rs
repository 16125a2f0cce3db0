//! Synthetic points for benchmarks, tests and the demo, deterministic from a seed so
//! the benchmark, its scipy peer and the demo all see the same data.
//!
//! Real demand is not a uniform scatter: it piles up around malls, residential
//! compounds and office towers. [`clustered`] places, around each district centre,
//! [`HOT_SPOTS_PER_CENTRE`] hot spots (a few kilometres from the centre, each a few
//! hundred metres wide, of unequal popularity) and draws 85 % of the points from them
//! and 15 % from a wide background. A uniform scatter would let a handful of stations
//! cover everything and make coverage and siting meaningless.
//!
//! Everything here is synthetic and must be labelled so wherever it is shown.

use crate::coord::LatLon;

/// Real district centres the demo data is generated around: (name, lat, lon), WGS-84.
pub const DISTRICTS: [(&str, f64, f64); 3] = [
    ("包头市青山区", 40.6437, 109.9010),
    ("赤峰市松山区玉龙街道", 42.285, 118.925),
    ("通辽市科尔沁区", 43.6172, 122.2633),
];

/// Hot spots (malls, compounds) generated around each centre.
pub const HOT_SPOTS_PER_CENTRE: usize = 40;

/// The centres of [`DISTRICTS`].
pub fn district_centres() -> Vec<LatLon> {
    DISTRICTS
        .iter()
        .map(|&(_, lat, lon)| LatLon::clamped(lat, lon))
        .collect()
}

/// SplitMix64: tiny, fast, and its output for a seed never changes, unlike a library
/// generator that may change between versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); `n` must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// A point offset from `c` by (north, east) metres.
pub fn offset(c: LatLon, north_m: f64, east_m: f64) -> LatLon {
    const M_PER_DEG: f64 = 111_195.08;
    let lat = c.lat() + north_m / M_PER_DEG;
    let lon = c.lon() + east_m / (M_PER_DEG * c.lat().to_radians().cos().max(1e-6));
    LatLon::clamped(lat, lon)
}

struct HotSpot {
    at: LatLon,
    spread_m: f64,
}

/// `n` points clustered around `centres` (empty if there are none), the same for the
/// same arguments on every machine.
pub fn clustered(n: usize, centres: &[LatLon], seed: u64) -> Vec<LatLon> {
    if centres.is_empty() {
        return Vec::new();
    }
    let mut rng = Rng::new(seed);
    let mut spots = Vec::new();
    let mut cumulative = Vec::new();
    let mut total = 0.0;
    for &c in centres {
        for _ in 0..HOT_SPOTS_PER_CENTRE {
            let at = offset(c, 2_500.0 * rng.normal(), 2_500.0 * rng.normal());
            let spread_m = 60.0 + 340.0 * rng.unit();
            // A few big malls, many small compounds.
            total += 1.0 + 20.0 * rng.unit().powi(4);
            cumulative.push(total);
            spots.push(HotSpot { at, spread_m });
        }
    }
    (0..n)
        .map(|_| {
            if rng.unit() < 0.15 {
                let c = centres[rng.below(centres.len())];
                offset(c, 5_000.0 * rng.normal(), 5_000.0 * rng.normal())
            } else {
                let x = rng.unit() * total;
                let i = cumulative.partition_point(|&w| w <= x).min(spots.len() - 1);
                let s = &spots[i];
                offset(s.at, s.spread_m * rng.normal(), s.spread_m * rng.normal())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coord::haversine_m;

    #[test]
    fn deterministic_and_near_the_centres() {
        let c = district_centres();
        let a = clustered(2_000, &c, 42);
        assert_eq!(a, clustered(2_000, &c, 42));
        assert_ne!(a, clustered(2_000, &c, 43));
        let near = a
            .iter()
            .filter(|p| c.iter().any(|&q| haversine_m(**p, q) < 20_000.0))
            .count();
        assert!(near > 1_950, "{near}");
        assert!(clustered(10, &[], 1).is_empty());
    }

    #[test]
    fn clustered_is_not_uniform() {
        // Half the points fall in a small fraction of 500 m cells.
        let c = district_centres();
        let pts = clustered(20_000, &c[..1], 1);
        let mut cells = std::collections::HashMap::<(i64, i64), usize>::new();
        for p in &pts {
            let key = ((p.lat() * 222.0) as i64, (p.lon() * 170.0) as i64);
            *cells.entry(key).or_default() += 1;
        }
        let mut counts: Vec<usize> = cells.into_values().collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let mut acc = 0;
        let busiest = counts
            .iter()
            .take_while(|&&n| {
                acc += n;
                acc < pts.len() / 2
            })
            .count();
        assert!(busiest * 10 < counts.len(), "{busiest} of {}", counts.len());
    }
}
