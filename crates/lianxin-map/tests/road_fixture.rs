//! The road network read from `tests/data/river-grid.osm.pbf` (written by
//! `scripts/make-osm-fixture.py`): a 6 × 6 street grid cut by a river between columns
//! 2 and 3, crossed by a bridge (row 0), steps (1), a private service road (2), a
//! cycleway closed to walkers (3), a motorway (4) and a footway (5).

use lianxin_map::road::{summary, Mode, RoadError, RoadNetwork};
use lianxin_map::{haversine_m, LatLon};

const FIXTURE: &[u8] = include_bytes!("data/river-grid.osm.pbf");
// Keep in step with scripts/make-osm-fixture.py.
const LAT0: f64 = 40.66;
const LON0: f64 = 109.84;
const DLAT: f64 = 0.001;
const DLON: f64 = 0.0012;

fn at(r: u32, c: u32) -> LatLon {
    LatLon::new(LAT0 - f64::from(r) * DLAT, LON0 + f64::from(c) * DLON).unwrap()
}

/// Metres along a path of grid points.
fn path_m(path: &[(u32, u32)]) -> f64 {
    path.windows(2)
        .map(|w| haversine_m(at(w[0].0, w[0].1), at(w[1].0, w[1].1)))
        .sum()
}

fn net() -> RoadNetwork {
    RoadNetwork::from_pbf(FIXTURE).expect("fixture reads")
}

fn metres(net: &RoadNetwork, mode: Mode, a: LatLon, b: LatLon) -> Option<f64> {
    let reach = net.travel_minutes_from(a, mode, 60.0).unwrap();
    reach.minutes_to(b).map(|m| m * mode.metres_per_minute())
}

fn assert_m(got: Option<f64>, want: f64) {
    let got = got.expect("reachable");
    // Lengths are stored as f32 and positions at 1e-7°.
    assert!((got - want).abs() < 0.05, "got {got} m, want {want} m");
}

#[test]
fn reads_the_fixture() {
    let net = net();
    // 36 grid nodes + the one-way spur's end; the shop, building and missing node
    // are not road nodes.
    assert_eq!(net.node_count(), 37);
    let s = summary(&net);
    assert!(s.contains("37 nodes"), "{s}");
    assert!(s.contains("40.65500"), "{s}");
    // Grid: 6 rows × 4 segments + 6 columns × 5 = 54 two-way segments; crossings:
    // bridge (both), steps and footway (walk), cycleway (e-bike); spur: walk both
    // ways, e-bike one.
    assert_eq!(net.arc_count(), 2 * (54 + 4 + 1));
    assert_eq!(net.arc_count_for(Mode::Walk), 2 * (54 + 3 + 1));
    assert_eq!(net.arc_count_for(Mode::Ebike), 2 * (54 + 2) + 1);
}

#[test]
fn walking_takes_the_footway_and_steps() {
    let net = net();
    // Row 5: the footway straight across.
    assert_m(
        metres(&net, Mode::Walk, at(5, 2), at(5, 3)),
        path_m(&[(5, 2), (5, 3)]),
    );
    // Row 2 (private) and row 4 (motorway) are closed: up to the steps on row 1.
    assert_m(
        metres(&net, Mode::Walk, at(2, 2), at(2, 3)),
        path_m(&[(2, 2), (1, 2), (1, 3), (2, 3)]),
    );
    assert_m(
        metres(&net, Mode::Walk, at(4, 2), at(4, 3)),
        path_m(&[(4, 2), (5, 2), (5, 3), (4, 3)]),
    );
    // Row 3: the cycleway is foot=no, so walkers go round.
    let want = path_m(&[(3, 2), (2, 2), (1, 2), (1, 3), (2, 3), (3, 3)]).min(path_m(&[
        (3, 2),
        (4, 2),
        (5, 2),
        (5, 3),
        (4, 3),
        (3, 3),
    ]));
    assert_m(metres(&net, Mode::Walk, at(3, 2), at(3, 3)), want);
}

#[test]
fn ebikes_take_the_cycleway_and_bridge() {
    let net = net();
    // No footway, no motorway: row 5 to row 3's cycleway and back.
    assert_m(
        metres(&net, Mode::Ebike, at(5, 2), at(5, 3)),
        path_m(&[(5, 2), (4, 2), (3, 2), (3, 3), (4, 3), (5, 3)]),
    );
    // Not the steps: the bridge on row 0.
    assert_m(
        metres(&net, Mode::Ebike, at(1, 2), at(1, 3)),
        path_m(&[(1, 2), (0, 2), (0, 3), (1, 3)]),
    );
    // Straight line across the river is ~100 m; the road route is ~5 times that.
    let straight = haversine_m(at(5, 2), at(5, 3));
    let road = metres(&net, Mode::Ebike, at(5, 2), at(5, 3)).unwrap();
    assert!(road > 5.0 * straight, "{road} vs {straight}");
}

#[test]
fn one_way_spur_binds_ebikes_only() {
    let net = net();
    let spur = at(0, 6);
    assert!(metres(&net, Mode::Ebike, at(0, 5), spur).is_none());
    assert_m(
        metres(&net, Mode::Ebike, spur, at(0, 5)),
        path_m(&[(0, 6), (0, 5)]),
    );
    assert_m(
        metres(&net, Mode::Walk, at(0, 5), spur),
        path_m(&[(0, 5), (0, 6)]),
    );
}

#[test]
fn snap_legs_and_budget() {
    let net = net();
    // 30 m south of (5, 0): joins there, 30 m leg each way.
    let p = LatLon::new(LAT0 - 5.0 * DLAT - 30.0 / 111_195.0, LON0).unwrap();
    let q = LatLon::new(LAT0 - 5.0 * DLAT - 30.0 / 111_195.0, LON0 + DLON).unwrap();
    let want = 60.0 + path_m(&[(5, 0), (5, 1)]);
    assert!((metres(&net, Mode::Walk, p, q).unwrap() - want).abs() < 0.1);
    // Within: a 5-minute walk (400 m) reaches (5,1), (4,0) but not (0,0) or across.
    let cands = [at(5, 1), at(4, 0), at(0, 0), at(5, 3), at(5, 5)];
    let got = net.within(at(5, 0), Mode::Walk, 5.0, &cands).unwrap();
    let ids: Vec<usize> = got.iter().map(|x| x.0).collect();
    assert_eq!(ids, vec![0, 1, 3]);
    for (i, m) in got {
        assert!(m <= 5.0);
        assert!(m * 80.0 >= haversine_m(at(5, 0), cands[i]) - 1e-6);
    }
    // Off the network: 2 km away.
    let far = LatLon::new(LAT0 + 0.02, LON0).unwrap();
    let e = net.travel_minutes_from(far, Mode::Ebike, 15.0).unwrap_err();
    assert!(matches!(e, RoadError::OffNetwork { .. }), "{e}");
    let reach = net
        .travel_minutes_from(at(0, 0), Mode::Ebike, 15.0)
        .unwrap();
    assert_eq!(reach.minutes_to(far), None);
    // 15 minutes by e-bike (3.75 km) reaches the whole grid, but not the far end of
    // the one-way spur, which only leads into it.
    assert_eq!(reach.reached_count(), 36);
}

#[test]
fn serialised_network_answers_the_same() {
    let net = net();
    let bytes = net.to_bytes();
    let back = RoadNetwork::from_bytes(&bytes).unwrap();
    assert_eq!(summary(&back), summary(&net));
    for mode in [Mode::Walk, Mode::Ebike] {
        for (a, b) in [((5, 2), (5, 3)), ((1, 2), (1, 3)), ((0, 0), (5, 5))] {
            assert_eq!(
                metres(&net, mode, at(a.0, a.1), at(b.0, b.1)),
                metres(&back, mode, at(a.0, a.1), at(b.0, b.1))
            );
        }
    }
}

#[test]
fn malformed_pbf_is_a_clear_error() {
    // Random bytes.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..2_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let e = RoadNetwork::from_pbf(&noise[..]).unwrap_err();
    assert_eq!(e.code(), "malformed_pbf");
    assert!(e.to_string().contains("block 0"), "{e}");

    // Empty.
    assert_eq!(
        RoadNetwork::from_pbf(&[][..]).unwrap_err(),
        RoadError::EmptyPbf
    );

    // Truncated anywhere: an error naming truncation or the damaged block, never a
    // panic. (A cut exactly between blocks cannot be told from a shorter file, which
    // PBF does not mark; here that leaves the header alone: no roads.)
    for cut in 1..FIXTURE.len() {
        let e = RoadNetwork::from_pbf(&FIXTURE[..cut]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("truncated") || msg.contains("block") || e.code() == "no_usable_roads",
            "cut at {cut}: {msg}"
        );
    }
    let e = RoadNetwork::from_pbf(&FIXTURE[..FIXTURE.len() - 10]).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");

    // A flipped byte inside the compressed data: the zlib or protobuf layer notices.
    let mut damaged = FIXTURE.to_vec();
    let n = damaged.len();
    for b in &mut damaged[n - 40..n - 30] {
        *b ^= 0x5a;
    }
    let e = RoadNetwork::from_pbf(&damaged[..]).unwrap_err();
    assert_eq!(e.code(), "malformed_pbf", "{e}");
    assert!(e.to_string().contains("zlib"), "{e}");
}

#[test]
fn header_only_pbf_has_no_usable_roads() {
    // The fixture's first block is the OSMHeader; alone it is a valid but empty file.
    let header_len = 4 + u32::from_be_bytes(FIXTURE[..4].try_into().unwrap()) as usize;
    // BlobHeader field 3 (datasize) is the last varint of the header.
    let mut size = 0usize;
    let mut i = 4;
    while i < header_len {
        if FIXTURE[i] == 0x18 {
            size = 0;
            let mut shift = 0;
            i += 1;
            while FIXTURE[i] & 0x80 != 0 {
                size |= usize::from(FIXTURE[i] & 0x7f) << shift;
                shift += 7;
                i += 1;
            }
            size |= usize::from(FIXTURE[i]) << shift;
        }
        i += 1;
    }
    let e = RoadNetwork::from_pbf(&FIXTURE[..header_len + size]).unwrap_err();
    assert_eq!(e.code(), "no_usable_roads", "{e}");
    assert!(e.to_string().contains("0 ways read"), "{e}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// Damaging the fixture anywhere gives an error or a network, never a panic.
    #[test]
    fn damaged_fixture_never_panics(at in 0usize..10_000, xor in 1u8..=255, cut in 0usize..10_000) {
        let mut data = FIXTURE.to_vec();
        let i = at % data.len();
        data[i] ^= xor;
        let _ = RoadNetwork::from_pbf(&data[..]);
        let _ = RoadNetwork::from_pbf(&data[..cut % data.len()]);
    }
}
