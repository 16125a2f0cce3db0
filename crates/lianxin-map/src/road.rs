//! Travel time along a road network imported from OpenStreetMap: the "15-minute
//! circle" when `lianxin import osm FILE.osm.pbf` has been run. Without a network the
//! platform falls back to [`reach::radius_m`](crate::reach::radius_m) (straight line ÷
//! detour factor); with one, the same speeds are used along the real streets, so a
//! river without a bridge, a motorway or a foot-only path count as they should.
//!
//! The crate does no I/O: [`RoadNetwork::from_pbf`] reads from any reader the caller
//! opens, and the server keeps the imported network as one blob
//! ([`RoadNetwork::to_bytes`] / [`RoadNetwork::from_bytes`]).
//!
//! # Which ways are roads, for whom
//!
//! Only ways with a `highway` tag in the table are kept; every other `highway` value
//! (`motorway`, `motorway_link`, `construction`, `proposed`, `raceway`,
//! `bus_guideway`, `busway`, `platform`, `elevator`, `bridleway`, `abandoned`, …) and
//! every way without one is ignored, whatever its other tags say.
//!
//! | `highway` | walk | e-bike |
//! |---|---|---|
//! | `trunk`, `trunk_link`, `primary`(`_link`), `secondary`(`_link`), `tertiary`(`_link`), `unclassified`, `residential`, `living_street`, `service`, `road`, `track` | yes | yes |
//! | `path`, `cycleway` | yes | yes |
//! | `pedestrian`, `footway`, `corridor` | yes | only with `bicycle=yes/designated/permissive/destination` |
//! | `steps` | yes | never |
//!
//! `trunk` is kept: in Chinese cities e-bikes ride the non-motorised lanes of trunk
//! roads and pedestrians their pavements, while urban expressways are tagged
//! `motorway`. Then the tags refine a kept way:
//!
//! - `access=no` or `access=private` closes it to both modes, unless `foot` / `bicycle`
//!   reopens it for one;
//! - walking: `foot=yes/designated/permissive/destination/official` opens,
//!   `foot=no/private/use_sidepath` closes;
//! - e-bike: `electric_bicycle=*` if present, else `bicycle=*`:
//!   `yes/designated/permissive/destination/official` opens,
//!   `no/private/dismount/use_sidepath` closes (so `bicycle=designated` + `foot=no` is a
//!   cycleway walkers cannot use);
//! - one-way streets bind e-bikes (`oneway=yes/true/1`, `oneway=-1/reverse`,
//!   `junction=roundabout`), unless `oneway:bicycle=no` or `cycleway*=opposite*`;
//!   walkers ignore `oneway`.
//!
//! # Speeds
//!
//! The same as the straight-line fallback, from [`Mode::metres_per_minute`]: walking
//! 4.8 km/h (80 m/min) and e-bike 15 km/h (250 m/min) in mixed traffic, stops and
//! crossings included. Along the network there is no detour factor: the route *is*
//! the detour. Every edge is ridden at the mode's speed; there are no per-road speeds.
//!
//! # Snapping
//!
//! A point (a station, a rider, a delivery address) joins the network at the nearest
//! graph node that the mode can use (a k-d [`PointIndex`] per mode over the nodes of
//! that mode's edges). The snap leg is straight-line distance at the mode's speed. A
//! point more than [`MAX_SNAP_M`] (500 m) from every such node is "off the road
//! network" ([`RoadError::OffNetwork`] for an origin, `None` for a target). Nodes, not
//! the nearest point on an edge: OSM ways in a city have a node every few tens of
//! metres, and degree-2 chains are not compressed, so the error is small; a point by a
//! river may snap to the bank with no bridge, which is the honest answer for a rider
//! standing there.
//!
//! # Why a budgeted Dijkstra, not contraction hierarchies
//!
//! The question is one-to-many and bounded: everything within 15 minutes of a station.
//! Dijkstra with a binary heap that stops at the budget visits only the nodes inside
//! the isochrone: 15 minutes by e-bike is 3.75 km of route, some 10⁵ nodes of a
//! dense city, a few milliseconds (see `examples/road_timing.rs`). Contraction
//! hierarchies or hub labels win for long point-to-point queries on continental
//! graphs, but need a preprocessing pass and an index several times the graph for a
//! question we do not ask; PHAST-style one-to-all would still touch the whole graph.
//! Graphs here are a district or a city (≤ a few million nodes).

use crate::coord::{haversine_m, LatLon};
use crate::index::PointIndex;
pub use crate::reach::Mode;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::io::Read;

/// A point farther than this from every node its mode can use is off the network.
pub const MAX_SNAP_M: f64 = 500.0;

/// The serialised format's version; [`RoadNetwork::from_bytes`] refuses others.
pub const FORMAT_VERSION: u32 = 1;

const MAGIC: &[u8; 8] = b"LXROADNW";
/// magic, version, node count, arc count, checksum.
const HEADER_LEN: usize = 8 + 4 + 4 + 4 + 8;

const WALK: u8 = 1;
const EBIKE: u8 = 2;

/// OSM PBF framing limits (from the format's specification).
const MAX_BLOB_HEADER: usize = 64 * 1024;
const MAX_BLOB_DATA: usize = 32 * 1024 * 1024;

/// Why a network could not be built, read or queried. Messages say what is wrong and,
/// for PBF input, in which block.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoadError {
    #[error("could not read the OSM file: {0}")]
    Io(String),
    #[error("malformed OSM PBF in block {block} (at byte {offset}): {message}")]
    Pbf {
        block: usize,
        offset: usize,
        message: String,
    },
    #[error("the OSM PBF is empty: it has no blocks at all")]
    EmptyPbf,
    #[error(
        "the OSM extract has no usable roads: {ways} ways read, {kept} with a walking or \
         e-bike highway tag, {nodes} nodes with coordinates, 0 road segments whose both \
         nodes are in the extract"
    )]
    NoUsableWays {
        ways: usize,
        kept: usize,
        nodes: usize,
    },
    #[error("invalid road graph: {0}")]
    InvalidGraph(String),
    #[error("damaged road network blob: {0}")]
    Damaged(String),
    #[error(
        "point {point} is off the road network: no {mode} road within {max_m} m (nearest \
         usable node {nearest})"
    )]
    OffNetwork {
        point: LatLon,
        mode: &'static str,
        max_m: f64,
        nearest: String,
    },
}

impl RoadError {
    /// A stable machine code for API and CLI errors.
    pub fn code(&self) -> &'static str {
        match self {
            RoadError::Io(_) => "io_error",
            RoadError::Pbf { .. } => "malformed_pbf",
            RoadError::EmptyPbf => "empty_pbf",
            RoadError::NoUsableWays { .. } => "no_usable_roads",
            RoadError::InvalidGraph(_) => "invalid_road_graph",
            RoadError::Damaged(_) => "damaged_road_network",
            RoadError::OffNetwork { .. } => "off_road_network",
        }
    }
}

/// Who may use a way, and in which direction for e-bikes (walkers go both ways).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WayAccess {
    pub walk: bool,
    /// Along the way's node order.
    pub ebike_forward: bool,
    /// Against it.
    pub ebike_backward: bool,
}

impl WayAccess {
    /// Both modes, both directions.
    pub const ALL: WayAccess = WayAccess {
        walk: true,
        ebike_forward: true,
        ebike_backward: true,
    };
    pub const WALK_ONLY: WayAccess = WayAccess {
        walk: true,
        ebike_forward: false,
        ebike_backward: false,
    };
    pub const EBIKE_ONLY: WayAccess = WayAccess {
        walk: false,
        ebike_forward: true,
        ebike_backward: true,
    };

    pub fn is_usable(self) -> bool {
        self.walk || self.ebike_forward || self.ebike_backward
    }

    fn forward_flags(self) -> u8 {
        (if self.walk { WALK } else { 0 }) | (if self.ebike_forward { EBIKE } else { 0 })
    }

    fn backward_flags(self) -> u8 {
        (if self.walk { WALK } else { 0 }) | (if self.ebike_backward { EBIKE } else { 0 })
    }
}

/// The access table of the module docs, applied to one way's tags. `None` for a way
/// that is not a road for either mode.
pub fn classify_way<'t>(tags: impl IntoIterator<Item = (&'t str, &'t str)>) -> Option<WayAccess> {
    let mut t = Tags::default();
    for (k, v) in tags {
        t.set(k, v);
    }
    let highway = t.highway?;
    let (mut walk, mut ebike) = match highway {
        "trunk" | "trunk_link" | "primary" | "primary_link" | "secondary" | "secondary_link"
        | "tertiary" | "tertiary_link" | "unclassified" | "residential" | "living_street"
        | "service" | "road" | "track" | "path" | "cycleway" => (true, true),
        "pedestrian" | "footway" | "corridor" | "steps" => (true, false),
        _ => return None,
    };
    if matches!(t.access, Some("no" | "private")) {
        walk = false;
        ebike = false;
    }
    match t.foot {
        Some("yes" | "designated" | "permissive" | "destination" | "official") => walk = true,
        Some("no" | "private" | "use_sidepath") => walk = false,
        _ => {}
    }
    match t.electric_bicycle.or(t.bicycle) {
        Some("yes" | "designated" | "permissive" | "destination" | "official") => ebike = true,
        Some("no" | "private" | "dismount" | "use_sidepath") => ebike = false,
        _ => {}
    }
    if highway == "steps" {
        ebike = false;
    }
    let (mut fwd, mut bwd) = (ebike, ebike);
    if ebike {
        let roundabout = matches!(t.junction, Some("roundabout" | "circular"));
        match t.oneway {
            Some("yes" | "true" | "1") => bwd = false,
            Some("-1" | "reverse") => fwd = false,
            Some("no") => {}
            _ if roundabout => bwd = false,
            _ => {}
        }
        match t.oneway_bicycle {
            Some("no") => (fwd, bwd) = (true, true),
            Some("yes" | "true" | "1") => (fwd, bwd) = (true, false),
            Some("-1") => (fwd, bwd) = (false, true),
            _ => {}
        }
        if t.cycleway_opposite {
            (fwd, bwd) = (true, true);
        }
    }
    let access = WayAccess {
        walk,
        ebike_forward: fwd,
        ebike_backward: bwd,
    };
    access.is_usable().then_some(access)
}

#[derive(Default)]
struct Tags<'t> {
    highway: Option<&'t str>,
    access: Option<&'t str>,
    foot: Option<&'t str>,
    bicycle: Option<&'t str>,
    electric_bicycle: Option<&'t str>,
    oneway: Option<&'t str>,
    oneway_bicycle: Option<&'t str>,
    junction: Option<&'t str>,
    cycleway_opposite: bool,
}

impl<'t> Tags<'t> {
    fn set(&mut self, k: &'t str, v: &'t str) {
        match k {
            "highway" => self.highway = Some(v),
            "access" => self.access = Some(v),
            "foot" => self.foot = Some(v),
            "bicycle" => self.bicycle = Some(v),
            "electric_bicycle" => self.electric_bicycle = Some(v),
            "oneway" => self.oneway = Some(v),
            "oneway:bicycle" => self.oneway_bicycle = Some(v),
            "junction" => self.junction = Some(v),
            "cycleway" | "cycleway:left" | "cycleway:right" | "cycleway:both"
                if v.starts_with("opposite") =>
            {
                self.cycleway_opposite = true
            }
            _ => {}
        }
    }
}

/// An edge for [`RoadNetwork::from_edges`]: nodes by position, length by haversine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    pub from: u32,
    pub to: u32,
    pub access: WayAccess,
}

/// Where a point joins the network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snap {
    /// The graph node.
    pub node: u32,
    /// Its position.
    pub at: LatLon,
    /// Straight-line metres from the point to it.
    pub distance_m: f64,
}

/// A road graph: nodes with WGS-84 positions, directed arcs in compressed sparse rows
/// (each road segment gives one arc per direction someone may travel it), each arc
/// with its length and the modes allowed on it. Immutable; share between threads.
#[derive(Debug, Clone)]
pub struct RoadNetwork {
    /// Positions in 1e-7 degrees (OSM's precision), as stored.
    lat_e7: Vec<i32>,
    lon_e7: Vec<i32>,
    points: Vec<LatLon>,
    /// Arcs of node `v` are `first[v]..first[v + 1]`.
    first: Vec<u32>,
    head: Vec<u32>,
    len_m: Vec<f32>,
    flags: Vec<u8>,
    walk: ModeIndex,
    ebike: ModeIndex,
}

#[derive(Debug, Clone)]
struct ModeIndex {
    /// Graph node of each index id.
    nodes: Vec<u32>,
    index: PointIndex,
}

impl ModeIndex {
    fn build(net_points: &[LatLon], nodes: Vec<u32>) -> ModeIndex {
        let pts: Vec<LatLon> = nodes.iter().map(|&v| net_points[v as usize]).collect();
        ModeIndex {
            index: PointIndex::build(&pts),
            nodes,
        }
    }
}

fn mode_bit(mode: Mode) -> u8 {
    match mode {
        Mode::Walk => WALK,
        Mode::Ebike => EBIKE,
    }
}

fn e7(x: f64) -> i32 {
    (x * 1e7).round() as i32
}

impl RoadNetwork {
    // ---------------------------------------------------------------- building

    /// Build from nodes and edges directly (tests, synthetic networks). Node `i` keeps
    /// id `i` (positions are rounded to 1e-7°, OSM's precision); edge lengths are the
    /// haversine distance between their ends. Nodes on no usable edge are kept but
    /// never snapped to.
    pub fn from_edges(nodes: &[LatLon], edges: &[Edge]) -> Result<RoadNetwork, RoadError> {
        if nodes.len() >= u32::MAX as usize {
            return Err(RoadError::InvalidGraph(format!(
                "{} nodes is more than this format holds",
                nodes.len()
            )));
        }
        let mut segs = Vec::with_capacity(edges.len());
        for (i, e) in edges.iter().enumerate() {
            if e.from as usize >= nodes.len() || e.to as usize >= nodes.len() {
                return Err(RoadError::InvalidGraph(format!(
                    "edge {i} joins nodes {} and {} but there are only {} nodes",
                    e.from,
                    e.to,
                    nodes.len()
                )));
            }
            if e.access.is_usable() && e.from != e.to {
                segs.push((e.from, e.to, e.access));
            }
        }
        if segs.is_empty() {
            return Err(RoadError::InvalidGraph(
                "no edge usable by walking or e-bike".into(),
            ));
        }
        let lat_e7 = nodes.iter().map(|p| e7(p.lat())).collect();
        let lon_e7 = nodes.iter().map(|p| e7(p.lon())).collect();
        Ok(RoadNetwork::assemble(lat_e7, lon_e7, &segs))
    }

    /// Build the CSR arrays from segments (a, b, access); positions already valid.
    fn assemble(lat_e7: Vec<i32>, lon_e7: Vec<i32>, segs: &[(u32, u32, WayAccess)]) -> Self {
        let points = points_from_e7(&lat_e7, &lon_e7);
        let n = points.len();
        let mut degree = vec![0u32; n + 1];
        for &(a, b, acc) in segs {
            if acc.forward_flags() != 0 {
                degree[a as usize] += 1;
            }
            if acc.backward_flags() != 0 {
                degree[b as usize] += 1;
            }
        }
        let mut first = Vec::with_capacity(n + 1);
        let mut total = 0u32;
        for d in &degree[..n] {
            first.push(total);
            total += d;
        }
        first.push(total);
        let m = total as usize;
        let mut head = vec![0u32; m];
        let mut len_m = vec![0f32; m];
        let mut flags = vec![0u8; m];
        let mut next: Vec<u32> = first[..n].to_vec();
        let mut put = |from: u32, to: u32, f: u8| {
            if f == 0 {
                return;
            }
            let slot = next[from as usize] as usize;
            next[from as usize] += 1;
            head[slot] = to;
            len_m[slot] = haversine_m(points[from as usize], points[to as usize]) as f32;
            flags[slot] = f;
        };
        for &(a, b, acc) in segs {
            put(a, b, acc.forward_flags());
            put(b, a, acc.backward_flags());
        }
        RoadNetwork::with_indexes(lat_e7, lon_e7, points, first, head, len_m, flags)
    }

    fn with_indexes(
        lat_e7: Vec<i32>,
        lon_e7: Vec<i32>,
        points: Vec<LatLon>,
        first: Vec<u32>,
        head: Vec<u32>,
        len_m: Vec<f32>,
        flags: Vec<u8>,
    ) -> Self {
        let n = points.len();
        let mut used = vec![0u8; n];
        for v in 0..n {
            for a in first[v] as usize..first[v + 1] as usize {
                used[v] |= flags[a];
                used[head[a] as usize] |= flags[a];
            }
        }
        let of = |bit: u8| -> Vec<u32> {
            (0..n as u32)
                .filter(|&v| used[v as usize] & bit != 0)
                .collect()
        };
        let walk = ModeIndex::build(&points, of(WALK));
        let ebike = ModeIndex::build(&points, of(EBIKE));
        RoadNetwork {
            lat_e7,
            lon_e7,
            points,
            first,
            head,
            len_m,
            flags,
            walk,
            ebike,
        }
    }

    /// Read an OSM PBF extract (`.osm.pbf`) from `reader` and keep its roads (see the
    /// module docs for the table). The whole file is read into memory first so that
    /// its framing can be checked before decoding.
    pub fn from_pbf(mut reader: impl Read) -> Result<RoadNetwork, RoadError> {
        let mut data = Vec::new();
        reader
            .read_to_end(&mut data)
            .map_err(|e| RoadError::Io(e.to_string()))?;
        RoadNetwork::from_pbf_bytes(&data)
    }

    /// [`from_pbf`](Self::from_pbf) on bytes already in memory.
    pub fn from_pbf_bytes(data: &[u8]) -> Result<RoadNetwork, RoadError> {
        let frames = frame_blocks(data)?;
        let mut acc = PbfAccumulator::default();
        let mut blobs = osmpbf::BlobReader::new(data);
        for (i, frame) in frames.iter().enumerate() {
            let err = |message: String| RoadError::Pbf {
                block: i,
                offset: frame.offset,
                message,
            };
            let blob = match blobs.next() {
                Some(Ok(b)) => b,
                Some(Err(e)) => return Err(err(e.to_string())),
                None => return Err(err("the block could not be read".into())),
            };
            // osmpbf does unchecked arithmetic on delta-coded ids and coordinates; a
            // crafted block could overflow it. Turn any such panic into this block's
            // error rather than taking the caller down.
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<(), String> {
                    match blob.decode().map_err(|e| e.to_string())? {
                        osmpbf::BlobDecode::OsmHeader(h) => check_header(&h),
                        osmpbf::BlobDecode::OsmData(block) => acc.read_block(&block),
                        osmpbf::BlobDecode::Unknown(_) => Ok(()),
                    }
                }));
            match result {
                Ok(Ok(())) => {}
                Ok(Err(m)) => return Err(err(m)),
                Err(_) => {
                    return Err(err(
                        "the block's contents are inconsistent (decoding failed)".into(),
                    ))
                }
            }
        }
        acc.finish()
    }

    // ---------------------------------------------------------------- queries

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.points.len()
    }

    /// Number of directed arcs (a two-way street segment counts twice).
    pub fn arc_count(&self) -> usize {
        self.head.len()
    }

    /// Directed arcs open to `mode`.
    pub fn arc_count_for(&self, mode: Mode) -> usize {
        let bit = mode_bit(mode);
        self.flags.iter().filter(|&&f| f & bit != 0).count()
    }

    /// A node's position.
    pub fn node(&self, id: u32) -> Option<LatLon> {
        self.points.get(id as usize).copied()
    }

    /// The south-west and north-east corners of the nodes, if any.
    pub fn bounding_box(&self) -> Option<(LatLon, LatLon)> {
        let lat_min = *self.lat_e7.iter().min()?;
        let lat_max = *self.lat_e7.iter().max()?;
        let lon_min = *self.lon_e7.iter().min()?;
        let lon_max = *self.lon_e7.iter().max()?;
        let p = |a: i32, b: i32| LatLon::clamped(f64::from(a) * 1e-7, f64::from(b) * 1e-7);
        Some((p(lat_min, lon_min), p(lat_max, lon_max)))
    }

    /// Where `p` joins the network for `mode`: the nearest node that has an edge open
    /// to `mode`, if within [`MAX_SNAP_M`].
    pub fn snap(&self, p: LatLon, mode: Mode) -> Option<Snap> {
        let mi = self.mode_index(mode);
        let (id, d) = mi.index.nearest_within(p, MAX_SNAP_M)?;
        let node = mi.nodes[id as usize];
        Some(Snap {
            node,
            at: self.points[node as usize],
            distance_m: d,
        })
    }

    fn mode_index(&self, mode: Mode) -> &ModeIndex {
        match mode {
            Mode::Walk => &self.walk,
            Mode::Ebike => &self.ebike,
        }
    }

    /// Minutes by `mode` from `origin` to every node reachable within `max_minutes`,
    /// the origin's snap leg included. Fails only when the origin is off the network.
    pub fn travel_minutes_from(
        &self,
        origin: LatLon,
        mode: Mode,
        max_minutes: f64,
    ) -> Result<Reach<'_>, RoadError> {
        let snap = self.snap(origin, mode).ok_or_else(|| {
            let mi = self.mode_index(mode);
            let nearest = match mi.index.nearest(origin, 1, |_| true).first() {
                Some(&(_, d)) => format!("{d:.0} m away"),
                None => "none: the network has no such roads".into(),
            };
            RoadError::OffNetwork {
                point: origin,
                mode: mode.as_str(),
                max_m: MAX_SNAP_M,
                nearest,
            }
        })?;
        let max_minutes = if max_minutes.is_finite() {
            max_minutes.max(0.0)
        } else {
            0.0
        };
        let speed = mode.metres_per_minute();
        let budget_m = max_minutes * speed;
        let (dist_m, reached) = self.dijkstra(&[(snap.node, snap.distance_m)], mode, budget_m);
        Ok(Reach {
            net: self,
            mode,
            max_minutes,
            budget_m,
            origin: snap,
            dist_m,
            reached,
        })
    }

    /// The `candidates` reachable from `origin` by `mode` within `minutes`, as
    /// (position in `candidates`, minutes), in candidate order. Candidates off the
    /// network are left out.
    pub fn within(
        &self,
        origin: LatLon,
        mode: Mode,
        minutes: f64,
        candidates: &[LatLon],
    ) -> Result<Vec<(usize, f64)>, RoadError> {
        let reach = self.travel_minutes_from(origin, mode, minutes)?;
        Ok(candidates
            .iter()
            .enumerate()
            .filter_map(|(i, &p)| reach.minutes_to(p).map(|m| (i, m)))
            .collect())
    }

    /// Multi-source Dijkstra over the arcs open to `mode`, settling nodes up to
    /// `budget_m` metres. Returns the metres to every node (infinity when beyond the
    /// budget) and the settled nodes in order of distance.
    pub(crate) fn dijkstra(
        &self,
        sources: &[(u32, f64)],
        mode: Mode,
        budget_m: f64,
    ) -> (Vec<f64>, Vec<u32>) {
        thread_local! {
            static HEAP: RefCell<BinaryHeap<Reverse<(u64, u32)>>> =
                const { RefCell::new(BinaryHeap::new()) };
        }
        let bit = mode_bit(mode);
        let mut dist = vec![f64::INFINITY; self.points.len()];
        let mut reached = Vec::new();
        HEAP.with(|heap| {
            let mut heap = heap.borrow_mut();
            heap.clear();
            for &(s, d) in sources {
                if d <= budget_m && d < dist[s as usize] {
                    dist[s as usize] = d;
                    // Non-negative finite f64s order like their bit patterns.
                    heap.push(Reverse((d.to_bits(), s)));
                }
            }
            while let Some(Reverse((bits, v))) = heap.pop() {
                let d = f64::from_bits(bits);
                if d > dist[v as usize] {
                    continue;
                }
                reached.push(v);
                let (lo, hi) = (self.first[v as usize], self.first[v as usize + 1]);
                for a in lo as usize..hi as usize {
                    if self.flags[a] & bit == 0 {
                        continue;
                    }
                    let w = self.head[a] as usize;
                    let nd = d + f64::from(self.len_m[a]);
                    if nd < dist[w] && nd <= budget_m {
                        dist[w] = nd;
                        heap.push(Reverse((nd.to_bits(), w as u32)));
                    }
                }
            }
            heap.clear();
        });
        (dist, reached)
    }

    // ---------------------------------------------------------------- bytes

    /// The network as one little-endian blob: `LXROADNW`, format version (u32), node
    /// count n (u32), arc count m (u32), FNV-1a 64 checksum of the rest (u64); then
    /// latitudes and longitudes in 1e-7° (n × i32 each), arc offsets ((n + 1) × u32),
    /// arc heads (m × u32), lengths in metres (m × f32), mode flags (m × u8).
    /// About 12 bytes per node and 9 per arc.
    pub fn to_bytes(&self) -> Vec<u8> {
        let n = self.points.len();
        let m = self.head.len();
        let mut out = Vec::with_capacity(HEADER_LEN + 12 * n + 4 + 9 * m);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(n as u32).to_le_bytes());
        out.extend_from_slice(&(m as u32).to_le_bytes());
        out.extend_from_slice(&[0u8; 8]);
        for x in &self.lat_e7 {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for x in &self.lon_e7 {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for x in &self.first {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for x in &self.head {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for x in &self.len_m {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&self.flags);
        let sum = fnv1a64(&out[HEADER_LEN..]);
        out[HEADER_LEN - 8..HEADER_LEN].copy_from_slice(&sum.to_le_bytes());
        out
    }

    /// Read a blob written by [`to_bytes`](Self::to_bytes). Damaged input (truncated,
    /// flipped bytes, another version) is an error, never a panic or a wrong network.
    pub fn from_bytes(bytes: &[u8]) -> Result<RoadNetwork, RoadError> {
        let bad = |m: String| Err(RoadError::Damaged(m));
        if bytes.len() < HEADER_LEN {
            return bad(format!(
                "{} bytes is shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            ));
        }
        if &bytes[..8] != MAGIC {
            return bad("it does not start with LXROADNW: not a road network".into());
        }
        let u32_at =
            |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let version = u32_at(8);
        if version != FORMAT_VERSION {
            return bad(format!(
                "format version {version}, but this build reads version {FORMAT_VERSION}; \
                 import the OSM file again"
            ));
        }
        let n = u32_at(12) as u64;
        let m = u32_at(16) as u64;
        let want = HEADER_LEN as u64 + 8 * n + 4 * (n + 1) + 9 * m;
        if bytes.len() as u64 != want {
            return bad(format!(
                "the header says {n} nodes and {m} arcs, which take {want} bytes, but the \
                 blob has {} (truncated or padded)",
                bytes.len()
            ));
        }
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&bytes[HEADER_LEN - 8..HEADER_LEN]);
        if u64::from_le_bytes(sum) != fnv1a64(&bytes[HEADER_LEN..]) {
            return bad("checksum mismatch: the contents were altered".into());
        }
        let (n, m) = (n as usize, m as usize);
        let mut pos = HEADER_LEN;
        let mut take = |len: usize| {
            let s = &bytes[pos..pos + len];
            pos += len;
            s
        };
        let words = |s: &[u8]| -> Vec<[u8; 4]> {
            s.chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect()
        };
        let lat_e7: Vec<i32> = words(take(4 * n))
            .into_iter()
            .map(i32::from_le_bytes)
            .collect();
        let lon_e7: Vec<i32> = words(take(4 * n))
            .into_iter()
            .map(i32::from_le_bytes)
            .collect();
        let first: Vec<u32> = words(take(4 * (n + 1)))
            .into_iter()
            .map(u32::from_le_bytes)
            .collect();
        let head: Vec<u32> = words(take(4 * m))
            .into_iter()
            .map(u32::from_le_bytes)
            .collect();
        let len_m: Vec<f32> = words(take(4 * m))
            .into_iter()
            .map(f32::from_le_bytes)
            .collect();
        let flags: Vec<u8> = take(m).to_vec();

        for (i, (&la, &lo)) in lat_e7.iter().zip(&lon_e7).enumerate() {
            if !(-900_000_000..=900_000_000).contains(&la)
                || !(-1_800_000_000..=1_800_000_000).contains(&lo)
            {
                return bad(format!(
                    "node {i} has an impossible position ({la}, {lo}) e-7°"
                ));
            }
        }
        if first[0] != 0 || first[n] as usize != m || first.windows(2).any(|w| w[0] > w[1]) {
            return bad("the arc offsets are not increasing from 0 to the arc count".into());
        }
        if let Some(a) = head.iter().position(|&h| h as usize >= n) {
            return bad(format!(
                "arc {a} leads to node {}, beyond the {n} nodes",
                head[a]
            ));
        }
        if let Some(a) = len_m.iter().position(|l| !l.is_finite() || *l < 0.0) {
            return bad(format!("arc {a} has length {}", len_m[a]));
        }
        if let Some(a) = flags
            .iter()
            .position(|&f| f == 0 || f & !(WALK | EBIKE) != 0)
        {
            return bad(format!("arc {a} has mode flags {:#x}", flags[a]));
        }
        let points = points_from_e7(&lat_e7, &lon_e7);
        Ok(RoadNetwork::with_indexes(
            lat_e7, lon_e7, points, first, head, len_m, flags,
        ))
    }
}

fn points_from_e7(lat_e7: &[i32], lon_e7: &[i32]) -> Vec<LatLon> {
    lat_e7
        .iter()
        .zip(lon_e7)
        .map(|(&a, &b)| LatLon::clamped(f64::from(a) * 1e-7, f64::from(b) * 1e-7))
        .collect()
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The travel times from one origin, up to a budget.
#[derive(Debug, Clone)]
pub struct Reach<'a> {
    net: &'a RoadNetwork,
    mode: Mode,
    max_minutes: f64,
    budget_m: f64,
    origin: Snap,
    dist_m: Vec<f64>,
    reached: Vec<u32>,
}

impl Reach<'_> {
    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn max_minutes(&self) -> f64 {
        self.max_minutes
    }

    /// Where the origin joined the network.
    pub fn origin(&self) -> Snap {
        self.origin
    }

    /// Minutes to a graph node, if within the budget.
    pub fn node_minutes(&self, node: u32) -> Option<f64> {
        let d = *self.dist_m.get(node as usize)?;
        d.is_finite().then(|| d / self.mode.metres_per_minute())
    }

    /// Minutes to an arbitrary point: the route to the node it snaps to plus its own
    /// snap leg. `None` if it is off the network, unreachable, or beyond the budget.
    pub fn minutes_to(&self, p: LatLon) -> Option<f64> {
        let snap = self.net.snap(p, self.mode)?;
        let d = self.dist_m[snap.node as usize] + snap.distance_m;
        (d <= self.budget_m * (1.0 + 1e-12)).then(|| d / self.mode.metres_per_minute())
    }

    /// The nodes reached, nearest first, with minutes and positions (for drawing the
    /// isochrone).
    pub fn reached(&self) -> impl Iterator<Item = (u32, f64, LatLon)> + '_ {
        let speed = self.mode.metres_per_minute();
        self.reached.iter().map(move |&v| {
            (
                v,
                self.dist_m[v as usize] / speed,
                self.net.points[v as usize],
            )
        })
    }

    /// How many nodes were reached.
    pub fn reached_count(&self) -> usize {
        self.reached.len()
    }
}

/// One line for the CLI: nodes, arcs, arcs per mode, bounding box.
pub fn summary(net: &RoadNetwork) -> String {
    let mut s = format!(
        "road network: {} nodes, {} directed edges ({} walkable, {} e-bike)",
        net.node_count(),
        net.arc_count(),
        net.arc_count_for(Mode::Walk),
        net.arc_count_for(Mode::Ebike)
    );
    if let Some((sw, ne)) = net.bounding_box() {
        let _ = write!(
            s,
            ", bounding box {:.5},{:.5} – {:.5},{:.5} (lat,lon WGS-84)",
            sw.lat(),
            sw.lon(),
            ne.lat(),
            ne.lon()
        );
    }
    s
}

// -------------------------------------------------------------------- PBF reading

struct Frame {
    offset: usize,
}

/// Walk the PBF framing (4-byte big-endian header length, BlobHeader, Blob) and check
/// that every block is complete, so a truncated file is reported as such rather than
/// silently read short.
fn frame_blocks(data: &[u8]) -> Result<Vec<Frame>, RoadError> {
    if data.is_empty() {
        return Err(RoadError::EmptyPbf);
    }
    let mut frames = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let block = frames.len();
        let err = |message: String| RoadError::Pbf {
            block,
            offset: pos,
            message,
        };
        let rest = data.len() - pos;
        if rest < 4 {
            return Err(err(format!(
                "the file ends {rest} byte(s) into a block's length prefix: it is truncated"
            )));
        }
        let hs =
            u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        if hs == 0 || hs > MAX_BLOB_HEADER {
            return Err(err(format!(
                "block header length {hs} is not between 1 and {MAX_BLOB_HEADER} bytes: \
                 this is not an OSM PBF file, or it is damaged"
            )));
        }
        if hs > rest - 4 {
            return Err(err(format!(
                "the block header claims {hs} bytes but only {} remain: the file is truncated",
                rest - 4
            )));
        }
        let (kind, datasize) =
            parse_blob_header(&data[pos + 4..pos + 4 + hs]).map_err(|m| err(m.to_owned()))?;
        if datasize > MAX_BLOB_DATA {
            return Err(err(format!(
                "block data size {datasize} exceeds the format's {MAX_BLOB_DATA}-byte limit"
            )));
        }
        let avail = rest - 4 - hs;
        if datasize > avail {
            return Err(err(format!(
                "the {kind} block claims {datasize} bytes of data but only {avail} remain: \
                 the file is truncated"
            )));
        }
        if block == 0 && kind != "OSMHeader" {
            return Err(err(format!(
                "the first block is of type {kind:?}, not OSMHeader: this is not an OSM PBF file"
            )));
        }
        frames.push(Frame { offset: pos });
        pos += 4 + hs + datasize;
    }
    Ok(frames)
}

/// The `type` (field 1) and `datasize` (field 3) of a BlobHeader protobuf.
fn parse_blob_header(mut b: &[u8]) -> Result<(String, usize), &'static str> {
    const BAD: &str = "the block header is not a valid protobuf message";
    let mut kind = None;
    let mut size = None;
    while !b.is_empty() {
        let key = read_varint(&mut b).ok_or(BAD)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = read_varint(&mut b).ok_or(BAD)?;
                if field == 3 {
                    size = Some(v);
                }
            }
            1 | 5 => {
                let l = if wire == 1 { 8 } else { 4 };
                if b.len() < l {
                    return Err(BAD);
                }
                b = &b[l..];
            }
            2 => {
                let l = read_varint(&mut b).ok_or(BAD)?;
                if l > b.len() as u64 {
                    return Err(BAD);
                }
                let (s, rest) = b.split_at(l as usize);
                if field == 1 {
                    kind = Some(
                        std::str::from_utf8(s)
                            .map_err(|_| "the block type is not UTF-8 text")?
                            .to_owned(),
                    );
                }
                b = rest;
            }
            _ => return Err(BAD),
        }
    }
    let kind = kind.ok_or("the block header has no type")?;
    let size = size.ok_or("the block header has no data size")?;
    // int32 on the wire: a negative size arrives as a 10-byte varint.
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s <= i32::MAX as usize)
        .ok_or("the block header has a negative data size")?;
    Ok((kind, size))
}

fn read_varint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn check_header(h: &osmpbf::HeaderBlock) -> Result<(), String> {
    for f in h.required_features() {
        if !matches!(f.as_str(), "OsmSchema-V0.6" | "DenseNodes") {
            return Err(format!(
                "the file requires the feature {f:?}, which this reader does not support \
                 (history files and other variants are not road extracts)"
            ));
        }
    }
    Ok(())
}

#[derive(Default)]
struct PbfAccumulator {
    /// (OSM id, lat e7, lon e7) of every node.
    nodes: Vec<(i64, i32, i32)>,
    /// Node refs of the kept ways, back to back.
    refs: Vec<i64>,
    /// (start in `refs`, count, access) per kept way.
    ways: Vec<(usize, usize, WayAccess)>,
    ways_seen: usize,
}

impl PbfAccumulator {
    fn add_node(&mut self, id: i64, nano_lat: i64, nano_lon: i64) -> Result<(), String> {
        let (lat, lon) = (nano_lat / 100, nano_lon / 100);
        if !(-900_000_000..=900_000_000).contains(&lat)
            || !(-1_800_000_000..=1_800_000_000).contains(&lon)
        {
            return Err(format!(
                "node {id} has an impossible position (latitude {}, longitude {})",
                lat as f64 * 1e-7,
                lon as f64 * 1e-7
            ));
        }
        self.nodes.push((id, lat as i32, lon as i32));
        Ok(())
    }

    fn read_block(&mut self, block: &osmpbf::PrimitiveBlock) -> Result<(), String> {
        for group in block.groups() {
            for n in group.nodes() {
                self.add_node(n.id(), n.nano_lat(), n.nano_lon())?;
            }
            for n in group.dense_nodes() {
                self.add_node(n.id(), n.nano_lat(), n.nano_lon())?;
            }
            for w in group.ways() {
                self.ways_seen += 1;
                if let Some(access) = classify_way(w.tags()) {
                    let start = self.refs.len();
                    self.refs.extend(w.refs());
                    self.ways.push((start, self.refs.len() - start, access));
                }
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<RoadNetwork, RoadError> {
        if !self.nodes.is_sorted_by_key(|n| n.0) {
            self.nodes.sort_by_key(|n| n.0);
        }
        self.nodes.dedup_by_key(|n| n.0);
        let mut graph_id = vec![u32::MAX; self.nodes.len()];
        let mut lat_e7 = Vec::new();
        let mut lon_e7 = Vec::new();
        let mut segs = Vec::new();
        let nodes = &self.nodes;
        let mut lookup = |osm: i64| -> Option<u32> {
            let i = nodes.binary_search_by_key(&osm, |n| n.0).ok()?;
            if graph_id[i] == u32::MAX {
                graph_id[i] = lat_e7.len() as u32;
                lat_e7.push(nodes[i].1);
                lon_e7.push(nodes[i].2);
            }
            Some(graph_id[i])
        };
        for &(start, count, access) in &self.ways {
            let refs = &self.refs[start..start + count];
            for pair in refs.windows(2) {
                if pair[0] == pair[1] {
                    continue;
                }
                // A way clipped by the extract keeps the segments it still has.
                if let (Some(a), Some(b)) = (lookup(pair[0]), lookup(pair[1])) {
                    segs.push((a, b, access));
                }
            }
        }
        if segs.is_empty() {
            return Err(RoadError::NoUsableWays {
                ways: self.ways_seen,
                kept: self.ways.len(),
                nodes: self.nodes.len(),
            });
        }
        if lat_e7.len() >= u32::MAX as usize {
            return Err(RoadError::InvalidGraph(
                "more road nodes than this format holds".into(),
            ));
        }
        Ok(RoadNetwork::assemble(lat_e7, lon_e7, &segs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ll(lat: f64, lon: f64) -> LatLon {
        LatLon::new(lat, lon).unwrap()
    }

    #[test]
    fn classification_table() {
        let c = |tags: &[(&str, &str)]| classify_way(tags.iter().copied());
        assert_eq!(c(&[("highway", "residential")]), Some(WayAccess::ALL));
        assert_eq!(c(&[("highway", "trunk")]), Some(WayAccess::ALL));
        assert_eq!(c(&[("highway", "motorway")]), None);
        assert_eq!(c(&[("highway", "motorway_link"), ("foot", "yes")]), None);
        assert_eq!(c(&[("highway", "construction")]), None);
        assert_eq!(c(&[("highway", "proposed")]), None);
        assert_eq!(c(&[("building", "yes")]), None);
        assert_eq!(c(&[("highway", "footway")]), Some(WayAccess::WALK_ONLY));
        assert_eq!(
            c(&[("highway", "footway"), ("bicycle", "yes")]),
            Some(WayAccess::ALL)
        );
        assert_eq!(
            c(&[("highway", "steps"), ("bicycle", "yes")]),
            Some(WayAccess::WALK_ONLY)
        );
        assert_eq!(
            c(&[
                ("highway", "cycleway"),
                ("bicycle", "designated"),
                ("foot", "no")
            ]),
            Some(WayAccess::EBIKE_ONLY)
        );
        assert_eq!(c(&[("highway", "service"), ("access", "private")]), None);
        assert_eq!(
            c(&[("highway", "service"), ("access", "no"), ("foot", "yes")]),
            Some(WayAccess::WALK_ONLY)
        );
        assert_eq!(
            c(&[("highway", "path"), ("bicycle", "no")]),
            Some(WayAccess::WALK_ONLY)
        );
        assert_eq!(
            c(&[
                ("highway", "primary"),
                ("bicycle", "yes"),
                ("electric_bicycle", "no")
            ]),
            Some(WayAccess::WALK_ONLY)
        );
        let one = |f, b| WayAccess {
            walk: true,
            ebike_forward: f,
            ebike_backward: b,
        };
        assert_eq!(
            c(&[("highway", "residential"), ("oneway", "yes")]),
            Some(one(true, false))
        );
        assert_eq!(
            c(&[("highway", "residential"), ("oneway", "-1")]),
            Some(one(false, true))
        );
        assert_eq!(
            c(&[("highway", "primary"), ("junction", "roundabout")]),
            Some(one(true, false))
        );
        assert_eq!(
            c(&[
                ("highway", "residential"),
                ("oneway", "yes"),
                ("oneway:bicycle", "no")
            ]),
            Some(WayAccess::ALL)
        );
        assert_eq!(
            c(&[
                ("highway", "residential"),
                ("oneway", "yes"),
                ("cycleway:left", "opposite_lane")
            ]),
            Some(WayAccess::ALL)
        );
    }

    /// Random small graphs: Dijkstra against Floyd–Warshall, per mode, with a budget.
    fn floyd(n: usize, arcs: &[(usize, usize, f64)]) -> Vec<Vec<f64>> {
        let mut d = vec![vec![f64::INFINITY; n]; n];
        for (i, row) in d.iter_mut().enumerate() {
            row[i] = 0.0;
        }
        for &(a, b, l) in arcs {
            if l < d[a][b] {
                d[a][b] = l;
            }
        }
        for k in 0..n {
            for i in 0..n {
                for j in 0..n {
                    let via = d[i][k] + d[k][j];
                    if via < d[i][j] {
                        d[i][j] = via;
                    }
                }
            }
        }
        d
    }

    fn access_of(code: u8) -> WayAccess {
        WayAccess {
            walk: code & 1 != 0,
            ebike_forward: code & 2 != 0,
            ebike_backward: code & 4 != 0,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn dijkstra_matches_floyd_warshall(
            pts in prop::collection::vec((0u32..40, 0u32..40), 2..14),
            raw_edges in prop::collection::vec((0usize..14, 0usize..14, 1u8..8), 1..40),
            budget in 0.0f64..5_000.0,
        ) {
            // Distinct grid points ~ 30 m apart so positions are distinct.
            let mut seen = std::collections::HashSet::new();
            let nodes: Vec<LatLon> = pts
                .into_iter()
                .filter(|p| seen.insert(*p))
                .map(|(a, b)| ll(40.0 + f64::from(a) * 3e-4, 110.0 + f64::from(b) * 4e-4))
                .collect();
            let n = nodes.len();
            let edges: Vec<Edge> = raw_edges
                .into_iter()
                .map(|(a, b, code)| Edge { from: (a % n) as u32, to: (b % n) as u32, access: access_of(code) })
                .collect();
            let Ok(net) = RoadNetwork::from_edges(&nodes, &edges) else {
                prop_assert!(edges.iter().all(|e| e.from == e.to || !e.access.is_usable()));
                return Ok(());
            };
            for mode in [Mode::Walk, Mode::Ebike] {
                let mut arcs = Vec::new();
                for e in &edges {
                    if e.from == e.to { continue; }
                    let (a, b) = (e.from as usize, e.to as usize);
                    let l = f64::from(haversine_m(net.points[a], net.points[b]) as f32);
                    let (f, r) = match mode {
                        Mode::Walk => (e.access.walk, e.access.walk),
                        Mode::Ebike => (e.access.ebike_forward, e.access.ebike_backward),
                    };
                    if f { arcs.push((a, b, l)); }
                    if r { arcs.push((b, a, l)); }
                }
                let fw = floyd(n, &arcs);
                for (s, row) in fw.iter().enumerate() {
                    let (dist, reached) = net.dijkstra(&[(s as u32, 0.0)], mode, budget);
                    for (t, &w) in row.iter().enumerate() {
                        let want = if w <= budget { w } else { f64::INFINITY };
                        let got = dist[t];
                        prop_assert!(
                            (got.is_infinite() && want.is_infinite()) || (got - want).abs() < 1e-6,
                            "{mode:?} {s}->{t}: dijkstra {got}, floyd {want}"
                        );
                    }
                    prop_assert_eq!(reached.len(), dist.iter().filter(|d| d.is_finite()).count());
                    prop_assert!(reached.windows(2).all(|w| dist[w[0] as usize] <= dist[w[1] as usize]));
                }
            }
        }

        #[test]
        fn damaged_bytes_never_panic(cut in 0usize..4_000, flip_at in 0usize..4_000, bit in 0u8..8) {
            let bytes = small_grid().to_bytes();
            let cut = cut % bytes.len();
            prop_assert!(RoadNetwork::from_bytes(&bytes[..cut]).is_err());
            let mut flipped = bytes.clone();
            let i = flip_at % flipped.len();
            flipped[i] ^= 1 << bit;
            prop_assert!(RoadNetwork::from_bytes(&flipped).is_err());
        }

        #[test]
        fn garbage_pbf_never_panics(data in prop::collection::vec(any::<u8>(), 0..600)) {
            prop_assert!(RoadNetwork::from_pbf_bytes(&data).is_err());
        }
    }

    fn small_grid() -> RoadNetwork {
        let mut nodes = Vec::new();
        for r in 0..8 {
            for c in 0..8 {
                nodes.push(ll(
                    40.0 + f64::from(r) * 1e-3,
                    110.0 + f64::from(c) * 1.2e-3,
                ));
            }
        }
        let mut edges = Vec::new();
        for r in 0..8u32 {
            for c in 0..8u32 {
                let v = r * 8 + c;
                if c + 1 < 8 {
                    edges.push(Edge {
                        from: v,
                        to: v + 1,
                        access: access_of(((v % 7) + 1) as u8),
                    });
                }
                if r + 1 < 8 {
                    edges.push(Edge {
                        from: v,
                        to: v + 8,
                        access: WayAccess::ALL,
                    });
                }
            }
        }
        RoadNetwork::from_edges(&nodes, &edges).unwrap()
    }

    #[test]
    fn bytes_round_trip() {
        let net = small_grid();
        let bytes = net.to_bytes();
        let back = RoadNetwork::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(summary(&back), summary(&net));
        let o = ll(40.0031, 110.0049);
        for mode in [Mode::Walk, Mode::Ebike] {
            let a = net.travel_minutes_from(o, mode, 10.0).unwrap();
            let b = back.travel_minutes_from(o, mode, 10.0).unwrap();
            assert_eq!(a.reached_count(), b.reached_count());
            for (x, y) in a.reached().zip(b.reached()) {
                assert_eq!(x, y);
            }
        }
        let mut other = bytes.clone();
        other[8] = 2;
        let e = RoadNetwork::from_bytes(&other).unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
        assert_eq!(e.code(), "damaged_road_network");
        assert!(RoadNetwork::from_bytes(b"hello").is_err());
        assert!(RoadNetwork::from_bytes(&[]).is_err());
    }

    #[test]
    fn from_edges_rejects_bad_input() {
        let nodes = [ll(40.0, 110.0), ll(40.001, 110.0)];
        let e = RoadNetwork::from_edges(
            &nodes,
            &[Edge {
                from: 0,
                to: 5,
                access: WayAccess::ALL,
            }],
        )
        .unwrap_err();
        assert!(e.to_string().contains("only 2 nodes"), "{e}");
        assert!(RoadNetwork::from_edges(&nodes, &[]).is_err());
        assert!(RoadNetwork::from_edges(
            &nodes,
            &[Edge {
                from: 0,
                to: 1,
                access: WayAccess::default()
            }]
        )
        .is_err());
    }

    #[test]
    fn snapping_and_budget() {
        let net = small_grid();
        // 1 km south of the grid: off the network.
        let far = ll(39.99, 110.004);
        let e = net.travel_minutes_from(far, Mode::Walk, 15.0).unwrap_err();
        assert_eq!(e.code(), "off_road_network");
        assert!(e.to_string().contains("m away"), "{e}");
        // A point 50 m off node 0 joins there with a 50 m leg.
        let p = ll(40.0 - 50.0 / 111_195.0, 110.0);
        let s = net.snap(p, Mode::Walk).unwrap();
        assert_eq!(s.node, 0);
        assert!((s.distance_m - 50.0).abs() < 0.1);
        let r = net.travel_minutes_from(p, Mode::Walk, 15.0).unwrap();
        assert!((r.node_minutes(0).unwrap() - 50.0 / 80.0).abs() < 1e-3);
        assert!((r.minutes_to(p).unwrap() - 100.0 / 80.0).abs() < 1e-3);
        // Zero budget: only the leg, which is over it.
        let r = net.travel_minutes_from(p, Mode::Walk, 0.0).unwrap();
        assert_eq!(r.reached_count(), 0);
        assert_eq!(r.minutes_to(p), None);
        // NaN budget behaves as zero.
        assert_eq!(
            net.travel_minutes_from(p, Mode::Walk, f64::NAN)
                .unwrap()
                .reached_count(),
            0
        );
        assert!(summary(&net).contains("64 nodes"));
    }
}
