//! Timing of the road network on a synthetic grid city (labelled synthetic): 708 × 708
//! streets 20 m apart (≈ 501,000 nodes, 2 million directed edges), every seventh
//! segment foot-only. Run in release:
//! `cargo run -p lianxin-map --release --example road_timing`.

use lianxin_map::road::{summary, Edge, Mode, RoadNetwork, WayAccess};
use lianxin_map::LatLon;
use std::time::Instant;

const SIDE: u32 = 708;
const SPACING_M: f64 = 20.0;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (lat0, lon0) = (40.60_f64, 109.80_f64);
    let dlat = SPACING_M / 111_195.0;
    let dlon = dlat / lat0.to_radians().cos();
    let mut nodes = Vec::with_capacity((SIDE * SIDE) as usize);
    for r in 0..SIDE {
        for c in 0..SIDE {
            nodes
                .push(LatLon::new(lat0 + f64::from(r) * dlat, lon0 + f64::from(c) * dlon).unwrap());
        }
    }
    let mut edges = Vec::with_capacity(2 * nodes.len());
    for r in 0..SIDE {
        for c in 0..SIDE {
            let v = r * SIDE + c;
            let access = if v % 7 == 0 {
                WayAccess::WALK_ONLY
            } else {
                WayAccess::ALL
            };
            if c + 1 < SIDE {
                edges.push(Edge {
                    from: v,
                    to: v + 1,
                    access,
                });
            }
            if r + 1 < SIDE {
                edges.push(Edge {
                    from: v,
                    to: v + SIDE,
                    access: WayAccess::ALL,
                });
            }
        }
    }
    let t = Instant::now();
    let net = RoadNetwork::from_edges(&nodes, &edges).unwrap();
    println!(
        "build (CSR + 2 snap indexes):   {:.3} s",
        t.elapsed().as_secs_f64()
    );
    println!("{}", summary(&net));

    let t = Instant::now();
    let bytes = net.to_bytes();
    println!(
        "to_bytes:                       {:.3} s, {:.1} MB",
        t.elapsed().as_secs_f64(),
        bytes.len() as f64 / 1e6
    );
    let t = Instant::now();
    let back = RoadNetwork::from_bytes(&bytes).unwrap();
    println!(
        "from_bytes (checked, indexed):  {:.3} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(back.node_count(), net.node_count());

    // Origins scattered over the middle of the city, off the nodes.
    let origins: Vec<LatLon> = (0..41)
        .map(|i| {
            let f = f64::from(i) / 41.0;
            LatLon::new(
                lat0 + (200.0 + 300.0 * f + 0.37) * dlat,
                lon0 + (200.0 + 300.0 * (1.0 - f) + 0.61) * dlon,
            )
            .unwrap()
        })
        .collect();
    let candidates: Vec<LatLon> = (0..1_000)
        .map(|i| {
            let f = f64::from(i) / 1_000.0;
            LatLon::new(
                lat0 + (250.0 + 200.0 * f) * dlat,
                lon0 + (250.0 + 200.0 * (f * 7.0).fract()) * dlon,
            )
            .unwrap()
        })
        .collect();

    let mut snaps = Vec::new();
    for &o in &origins {
        let t = Instant::now();
        let s = net.snap(o, Mode::Ebike);
        snaps.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(s.is_some());
    }
    println!("snap, median:                   {:.2} µs", median(snaps));

    for (mode, label) in [(Mode::Ebike, "e-bike"), (Mode::Walk, "walk")] {
        let mut times = Vec::new();
        let mut reached = 0;
        for &o in &origins {
            let t = Instant::now();
            let reach = net.travel_minutes_from(o, mode, 15.0).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            reached = reach.reached_count();
        }
        let max = times.iter().copied().fold(0.0, f64::max);
        println!(
            "15 min {label:6} isochrone: median {:.2} ms, max {:.2} ms ({reached} nodes reached)",
            median(times),
            max
        );
    }

    let mut times = Vec::new();
    let mut found = 0;
    for &o in &origins {
        let t = Instant::now();
        found = net.within(o, Mode::Ebike, 15.0, &candidates).unwrap().len();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "within(15 min e-bike, 1,000 candidates): median {:.2} ms ({found} inside)",
        median(times)
    );
}
