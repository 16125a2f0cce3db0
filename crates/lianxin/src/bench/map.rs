//! `bench map`: the rider-friendly map's hot paths on synthetic clustered data
//! (`lianxin_map::synth`: hot spots around the three demo district centres, not a
//! uniform scatter that every station covers), each beside its baseline:
//! - the nearest 5 stations to a point over 1,000,000 stations, one query at a time
//!   (median), against a brute-force scan of the same points;
//! - `GET /api/v1/map/nearest` over HTTP on the real server holding that index, with
//!   32 concurrent keep-alive clients (the load generator shares the cores);
//! - the coverage of 1,000,000 demand points by 10,000 stations (nearest within the
//!   radius), against the anchor measured for scipy's `cKDTree` and, with `--peer`
//!   where python3 has scipy, scipy on the same data in the same run;
//! - greedy siting of 10 stations over 1,000,000 demand points (300 existing, 3,000
//!   candidates).

use super::intake::{connect, percentile_ms};
use super::{median, Row};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use lianxin_domain::map::Amenity;
use lianxin_map::synth::{self, Rng};
use lianxin_map::{cover, LatLon, OpeningHours, PointIndex};
use lianxin_server::map_index::{MapIndex, Station};
use lianxin_server::{router, AppState, Settings};
use lianxin_store::map::{MapWorld, StationRow};
use lianxin_store::testing::TempDir;
use lianxin_store::Store;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub struct Scale {
    pub name: &'static str,
    pub stations: usize,
    pub demand: usize,
    pub runs: usize,
    pub http_measure: Duration,
}

impl Scale {
    pub const FULL: Scale = Scale {
        name: "full",
        stations: 1_000_000,
        demand: 1_000_000,
        runs: 5,
        http_measure: Duration::from_secs(5),
    };
    pub const QUICK: Scale = Scale {
        name: "quick",
        stations: 1_000_000,
        demand: 1_000_000,
        runs: 3,
        http_measure: Duration::from_secs(2),
    };
}

/// The radius of the coverage and siting runs: what the scipy anchor used.
const RADIUS_M: f64 = 1_000.0;
const HTTP_CLIENTS: usize = 32;
/// scipy's cKDTree on this kind of machine, same sizes (issue 6's anchor).
const SCIPY_COVERAGE_1_CORE_S: f64 = 0.563;
const SCIPY_COVERAGE_2_CORES_S: f64 = 0.292;
const SCIPY_KNN_SINGLE_US: f64 = 16.4;

fn stations(points: &[LatLon]) -> Vec<Station> {
    let amenity_sets = [
        vec![Amenity::Water, Amenity::Charging, Amenity::Seats],
        vec![Amenity::Water, Amenity::Microwave],
        vec![Amenity::Water, Amenity::Charging, Amenity::FirstAid],
    ];
    let day = OpeningHours::parse("Mo-Su 08:00-22:00").expect("valid hours");
    let always = OpeningHours::parse("24/7").expect("valid hours");
    points
        .iter()
        .enumerate()
        .map(|(i, &at)| {
            let amenities = amenity_sets[i % 3].clone();
            let hours = if i.is_multiple_of(4) {
                always.clone()
            } else {
                day.clone()
            };
            Station {
                row: StationRow {
                    id: i as i64 + 1,
                    code: format!("S{i}"),
                    name: format!("合成驿站{i}（示例）"),
                    kind: "warm_station".into(),
                    org: None,
                    place_code: None,
                    lat: at.lat(),
                    lon: at.lon(),
                    address: String::new(),
                    amenities: amenities
                        .iter()
                        .map(|a| a.code())
                        .collect::<Vec<_>>()
                        .join(","),
                    hours: hours.to_string(),
                    exceptions: String::new(),
                },
                mask: Amenity::mask(&amenities),
                at,
                hours,
                amenities,
            }
        })
        .collect()
}

pub async fn run(dir: &TempDir, scale: &Scale, peer: bool) -> Result<(String, Vec<Row>)> {
    let centres = synth::district_centres();
    eprintln!(
        "bench: map: generating {} stations and {} demand points",
        scale.stations, scale.demand
    );
    let station_points = synth::clustered(scale.stations, &centres, 1);
    let queries = synth::clustered(20_000, &centres, 2);
    let demand_points = synth::clustered(scale.demand, &centres, 3);
    let coverage_stations = synth::clustered(10_000, &centres, 4);
    let mut rows = Vec::new();

    // 1. kNN, one query at a time, against the brute-force scan.
    let built = Instant::now();
    let index = PointIndex::build(&station_points);
    let build_s = built.elapsed().as_secs_f64();
    let mut single = Vec::new();
    for _ in 0..scale.runs {
        let mut times = Vec::with_capacity(queries.len());
        for &q in &queries {
            let t = Instant::now();
            std::hint::black_box(index.nearest(q, 5, |_| true));
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        single.push(median(&times));
    }
    let knn_us = median(&single);
    let mut brute = Vec::new();
    for &q in &queries[..20] {
        let t = Instant::now();
        std::hint::black_box(index.nearest_brute_force(q, 5, |_| true));
        brute.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let brute_us = median(&brute);
    rows.push(
        Row::new(
            "nearest 5 of 1,000,000 stations, one query (median)",
            knn_us,
            "µs",
        )
        .against("brute-force scan of the same points", brute_us)
        .target("<= 2 µs", knn_us <= 2.0),
    );
    rows.push(
        Row::new(
            "nearest 5, one query, vs scipy cKDTree anchor",
            knn_us,
            "µs",
        )
        .against("scipy cKDTree single query (anchor)", SCIPY_KNN_SINGLE_US)
        .target("faster", knn_us < SCIPY_KNN_SINGLE_US),
    );

    // 2. Coverage of 1,000,000 demand points by 10,000 stations.
    let demand: Vec<(LatLon, f64)> = demand_points.iter().map(|&p| (p, 1.0)).collect();
    let mut cov = Vec::new();
    let mut share = 0.0;
    for _ in 0..scale.runs {
        let t = Instant::now();
        let c = cover::coverage(&demand, &coverage_stations, RADIUS_M)?;
        cov.push(t.elapsed().as_secs_f64());
        share = c.share;
    }
    let cov_s = median(&cov);
    let peer_result = if peer {
        scipy_peer(
            dir,
            &demand_points,
            &coverage_stations,
            &station_points,
            &queries,
        )?
    } else {
        None
    };
    match &peer_result {
        Some(p) => {
            rows.push(
                Row::new("coverage 1,000,000 × 10,000 stations, r = 1 km", cov_s, "s")
                    .against("scipy cKDTree, same data, 2 workers", p.coverage_2_s)
                    .target(
                        "<= 0.3 s and faster than scipy",
                        cov_s <= 0.3 && cov_s < p.coverage_2_s,
                    ),
            );
            rows.push(
                Row::new("nearest 5, one query, vs scipy same data", knn_us, "µs")
                    .against("scipy cKDTree single query, same data", p.knn_single_us)
                    .target("faster", knn_us < p.knn_single_us),
            );
        }
        None => rows.push(
            Row::new("coverage 1,000,000 × 10,000 stations, r = 1 km", cov_s, "s")
                .against(
                    "scipy cKDTree on 2 cores (anchor)",
                    SCIPY_COVERAGE_2_CORES_S,
                )
                // The anchor (0.292 s) is under 0.3 s, so beating it meets both.
                .target(
                    "<= 0.3 s and faster than scipy",
                    cov_s < SCIPY_COVERAGE_2_CORES_S,
                ),
        ),
    }

    // 3. Siting of 10 stations.
    let existing = synth::clustered(300, &centres, 5);
    let mut rng = Rng::new(6);
    let candidates: Vec<LatLon> = synth::clustered(3_000, &centres, 7)
        .into_iter()
        .map(|p| synth::offset(p, 50.0 * rng.normal(), 50.0 * rng.normal()))
        .collect();
    let mut siting = Vec::new();
    let mut gained = 0.0;
    for _ in 0..scale.runs.min(3) {
        let t = Instant::now();
        let s = cover::site_greedy(&demand, &existing, &candidates, 10, RADIUS_M)?;
        siting.push(t.elapsed().as_secs_f64());
        gained = s.picks.last().map_or(0.0, |p| p.cumulative_share) - s.initial_share;
    }
    let siting_s = median(&siting);
    rows.push(
        Row::new(
            "siting 10 stations (1,000,000 demand, 3,000 candidates)",
            siting_s,
            "s",
        )
        .target("< 5 s", siting_s < 5.0),
    );

    // 4. HTTP: the real server holding the 1,000,000-station index.
    let http = http_nearest(dir, station_points, &queries, scale.http_measure).await?;
    rows.push(
        Row::new(
            format!("GET /api/v1/map/nearest, {HTTP_CLIENTS} clients"),
            http.rate,
            "queries/s",
        )
        .against("in-process single queries, one core", 1e6 / knn_us)
        .target(
            ">= 20,000/s, 0 failed",
            http.rate >= 20_000.0 && http.failures == 0,
        ),
    );
    rows.push(Row::new(
        "GET /api/v1/map/nearest p99 latency",
        http.p99_ms,
        "ms",
    ));
    rows.push(
        Row::new(
            "GET /api/v1/map/nearest failed",
            http.failures as f64,
            "requests",
        )
        .against("requests answered", http.done as f64)
        .target("0", http.failures == 0),
    );
    let facts = format!(
        "map: {} clustered stations (tree built in {build_s:.2} s), {} demand points, 10,000 coverage stations, r = {RADIUS_M} m (covered share {share:.3}), siting gained {gained:.3}; {} runs, medians; scipy anchor: coverage {SCIPY_COVERAGE_1_CORE_S} s on 1 core, {SCIPY_COVERAGE_2_CORES_S} s on 2{}",
        scale.stations,
        scale.demand,
        scale.runs,
        match &peer_result {
            Some(p) => format!("; scipy {} on this data: coverage {:.3} s (1 worker), {:.3} s (2 workers), single kNN {:.1} µs, batched {:.2} µs", p.version, p.coverage_1_s, p.coverage_2_s, p.knn_single_us, p.knn_batch_us),
            None if peer => "; --peer: python3 with scipy not found, the anchor is used".into(),
            None => String::new(),
        }
    );
    Ok((facts, rows))
}

struct Http {
    rate: f64,
    p99_ms: f64,
    done: u64,
    failures: u64,
}

async fn http_nearest(
    dir: &TempDir,
    station_points: Vec<LatLon>,
    queries: &[LatLon],
    measure: Duration,
) -> Result<Http> {
    let store = Store::open(&format!("sqlite://{}", dir.0.join("map.db").display())).await?;
    let state = AppState::new(
        store,
        lianxin_domain::pii::PiiKey::from_master(&[5; 32]),
        Settings::default(),
    )
    .await?;
    eprintln!(
        "bench: map HTTP: loading {} stations into the server's index",
        station_points.len()
    );
    let index = tokio::task::spawn_blocking(move || {
        MapIndex::from_stations(stations(&station_points), MapWorld::default())
    })
    .await?;
    state.map.set(index);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        let _ = axum::serve(listener, app).await;
    });
    let paths: Vec<String> = queries
        .iter()
        .map(|q| {
            format!(
                "/api/v1/map/nearest?lat={:.6}&lon={:.6}&k=5&amenities=charging",
                q.lat(),
                q.lon()
            )
        })
        .collect();
    // A warm-up, then the measured window.
    let warmup = Duration::from_millis(500);
    let from = Instant::now() + warmup;
    let until = from + measure;
    let mut tasks = Vec::new();
    for c in 0..HTTP_CLIENTS {
        let paths = paths.clone();
        let host = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await?;
            let (mut lat, mut done, mut failures) = (Vec::new(), 0u64, 0u64);
            let mut i = c * 7919;
            while Instant::now() < until {
                let path = &paths[i % paths.len()];
                i += 1;
                let req = Request::get(path.as_str())
                    .header(hyper::header::HOST, host.as_str())
                    .body(Full::new(Bytes::new()))?;
                let t = Instant::now();
                sender.ready().await?;
                let ok = match sender.send_request(req).await {
                    Ok(resp) => {
                        let status = resp.status();
                        let body = resp.into_body().collect().await?.to_bytes();
                        status == 200 && body.starts_with(b"{\"stations\":[{")
                    }
                    Err(_) => {
                        sender = connect(addr).await?;
                        false
                    }
                };
                if t >= from {
                    if ok {
                        done += 1;
                        lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    } else {
                        failures += 1;
                    }
                }
            }
            anyhow::Ok((lat, done, failures))
        }));
    }
    let (mut all, mut done, mut failures) = (Vec::new(), 0, 0);
    for t in tasks {
        let (l, d, f) = t.await.context("a bench client panicked")??;
        all.extend(l);
        done += d;
        failures += f;
    }
    server.abort();
    all.sort_unstable();
    Ok(Http {
        rate: done as f64 / measure.as_secs_f64(),
        p99_ms: percentile_ms(&all, 0.99),
        done,
        failures,
    })
}

struct Peer {
    version: String,
    coverage_1_s: f64,
    coverage_2_s: f64,
    knn_single_us: f64,
    knn_batch_us: f64,
}

/// scipy's cKDTree on the same points (as unit-sphere 3-D positions, the same
/// representation the tree here uses), if python3 has scipy.
fn scipy_peer(
    dir: &TempDir,
    demand: &[LatLon],
    stations: &[LatLon],
    big: &[LatLon],
    queries: &[LatLon],
) -> Result<Option<Peer>> {
    let has = std::process::Command::new("python3")
        .args(["-c", "import scipy, numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has {
        eprintln!("bench: map: python3 with scipy not found; skipping the peer run");
        return Ok(None);
    }
    let write = |name: &str, pts: &[LatLon]| -> Result<std::path::PathBuf> {
        let path = dir.0.join(name);
        let mut bytes = Vec::with_capacity(pts.len() * 16);
        for p in pts {
            bytes.extend_from_slice(&p.lat().to_le_bytes());
            bytes.extend_from_slice(&p.lon().to_le_bytes());
        }
        std::fs::write(&path, bytes)?;
        Ok(path)
    };
    let (d, s, b, q) = (
        write("demand.f64", demand)?,
        write("stations.f64", stations)?,
        write("big.f64", big)?,
        write("queries.f64", queries)?,
    );
    eprintln!("bench: map: running scipy's cKDTree on the same data");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(PEER_SCRIPT)
        .args([&d, &s, &b, &q])
        .arg(RADIUS_M.to_string())
        .output()
        .context("running python3")?;
    if !out.status.success() {
        bail!(
            "the scipy peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim()).context("the peer's output")?;
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Ok(Some(Peer {
        version: v["scipy"].as_str().unwrap_or("?").to_string(),
        coverage_1_s: f("coverage_1_s"),
        coverage_2_s: f("coverage_2_s"),
        knn_single_us: f("knn_single_us"),
        knn_batch_us: f("knn_batch_us"),
    }))
}

/// The peer: the same points as unit vectors, chord radius for the metres, medians
/// of three runs; prints one JSON line.
const PEER_SCRIPT: &str = r#"
import sys, time, json, numpy as np, scipy
from scipy.spatial import cKDTree
R = 6371008.8
def load(p):
    a = np.fromfile(p, dtype='<f8').reshape(-1, 2)
    lat, lon = np.radians(a[:, 0]), np.radians(a[:, 1])
    return np.column_stack((np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)))
demand, stations, big, queries = (load(p) for p in sys.argv[1:5])
radius = float(sys.argv[5])
chord = 2 * np.sin(radius / (2 * R))
def med(f, n=3):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]
def cover(workers):
    tree = cKDTree(stations)
    d, _ = tree.query(demand, k=1, distance_upper_bound=chord, workers=workers)
    return np.isfinite(d).sum()
c1 = med(lambda: cover(1)); c2 = med(lambda: cover(2))
tree = cKDTree(big)
qs = queries[:2000]
t = time.perf_counter()
for q in qs: tree.query(q, k=5)
single = (time.perf_counter() - t) / len(qs) * 1e6
t = time.perf_counter(); tree.query(queries, k=5, workers=2); batch = (time.perf_counter() - t) / len(queries) * 1e6
print(json.dumps({"scipy": scipy.__version__, "coverage_1_s": c1, "coverage_2_s": c2, "knn_single_us": single, "knn_batch_us": batch}))
"#;
