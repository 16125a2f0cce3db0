//! Timing of the map's hot paths on synthetic clustered data (labelled synthetic).
//! Run in release: `cargo run -p lianxin-map --release --example timing`.
//! `lianxin bench map` is the full benchmark; this is the crate's own check.

use lianxin_map::synth::{self, Rng};
use lianxin_map::{cover, haversine_m, LatLon, PointIndex};
use std::time::Instant;

const RADIUS_M: f64 = 1_000.0;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let centres = synth::district_centres();

    let t = Instant::now();
    let stations = synth::clustered(1_000_000, &centres, 1);
    println!(
        "generate 1,000,000 clustered points: {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let index = PointIndex::build(&stations);
    println!(
        "build k-d tree over 1,000,000:        {:.3} s",
        t.elapsed().as_secs_f64()
    );

    let queries = synth::clustered(20_000, &centres, 2);
    let mut times = Vec::with_capacity(queries.len());
    let mut check = 0.0;
    for &q in &queries {
        let t = Instant::now();
        let r = index.nearest(q, 5, |_| true);
        times.push(t.elapsed().as_secs_f64());
        check += r[0].1;
    }
    let med = median(times.clone());
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "kNN k=5, single query, 1,000,000 points: median {:.2} µs, mean {:.2} µs ({:.0} queries/s) [checksum {:.0}]",
        med * 1e6,
        mean * 1e6,
        1.0 / mean,
        check
    );
    // A filter that rejects 3 points of 4 (e.g. "has a charger").
    let t = Instant::now();
    for &q in &queries {
        std::hint::black_box(index.nearest(q, 5, |id| id % 4 == 0));
    }
    println!(
        "kNN k=5 with a 1-in-4 filter:            mean {:.2} µs",
        t.elapsed().as_secs_f64() / queries.len() as f64 * 1e6
    );
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    std::thread::scope(|s| {
        for part in queries.chunks(queries.len().div_ceil(threads)) {
            let index = &index;
            s.spawn(move || {
                for &q in part {
                    std::hint::black_box(index.nearest(q, 5, |_| true));
                }
            });
        }
    });
    let batch = t.elapsed().as_secs_f64() / queries.len() as f64;
    println!(
        "kNN k=5, batch on {threads} threads:           {:.2} µs per query ({:.0} queries/s)",
        batch * 1e6,
        1.0 / batch
    );
    let n_brute = 50;
    let t = Instant::now();
    for &q in &queries[..n_brute] {
        std::hint::black_box(index.nearest_brute_force(q, 5, |_| true));
    }
    let brute = t.elapsed().as_secs_f64() / n_brute as f64;
    println!(
        "brute-force scan (chords), 1 query:     {:.2} ms  → the tree is {:.0}× faster (mean vs mean)",
        brute * 1e3,
        brute / mean
    );
    let t = Instant::now();
    for &q in &queries[..n_brute] {
        let mut best = (f64::INFINITY, 0);
        for (i, &s) in stations.iter().enumerate() {
            let d = haversine_m(q, s);
            if d < best.0 {
                best = (d, i);
            }
        }
        std::hint::black_box(best);
    }
    println!(
        "brute-force scan (haversine), 1 query:  {:.2} ms",
        t.elapsed().as_secs_f64() / n_brute as f64 * 1e3
    );

    let demand: Vec<(LatLon, f64)> = synth::clustered(1_000_000, &centres, 3)
        .into_iter()
        .map(|p| (p, 1.0))
        .collect();
    let sites = synth::clustered(10_000, &centres, 4);
    let mut runs = Vec::new();
    let mut share = 0.0;
    for _ in 0..5 {
        let t = Instant::now();
        let c = cover::coverage(&demand, &sites, RADIUS_M).expect("valid input");
        runs.push(t.elapsed().as_secs_f64());
        share = c.share;
    }
    println!(
        "coverage 1,000,000 demand vs 10,000 stations, r = {RADIUS_M} m: median {:.3} s (share {:.3}, {} threads)",
        median(runs),
        share,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let c = cover::coverage(&demand, &sites[..300], RADIUS_M).expect("valid input");
    let t = Instant::now();
    let clusters = cover::uncovered_clusters(&demand, &c.covered, RADIUS_M).expect("valid input");
    println!(
        "uncovered clusters vs 300 stations: {} clusters of {} points in {:.3} s",
        clusters.len(),
        c.total_points - c.covered_points,
        t.elapsed().as_secs_f64()
    );

    let existing = synth::clustered(300, &centres, 5);
    let mut rng = Rng::new(6);
    let candidates: Vec<LatLon> = synth::clustered(3_000, &centres, 7)
        .into_iter()
        .map(|p| synth::offset(p, 50.0 * rng.normal(), 50.0 * rng.normal()))
        .collect();
    for r in [RADIUS_M, 3_000.0] {
        let t = Instant::now();
        let s = cover::site_greedy(&demand, &existing, &candidates, 10, r).expect("valid input");
        println!(
            "siting k=10 over 1,000,000 demand, 300 existing, 3,000 candidates, r = {r} m: {:.3} s (share {:.3} → {:.3})",
            t.elapsed().as_secs_f64(),
            s.initial_share,
            s.picks.last().map_or(s.initial_share, |p| p.cumulative_share)
        );
    }
}
