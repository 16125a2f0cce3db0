//! A static spatial index for "the nearest station" and "everything within r": built
//! once over up to millions of WGS-84 points, then queried many times from many threads.
//!
//! **Why chords in 3-D, not a projected plane.** Each point is stored as its position
//! on the sphere of radius [`EARTH_RADIUS_M`] (x, y, z in metres). The straight-line
//! (chord) distance between two such positions is `c = 2R·sin(d / 2R)` for the
//! great-circle distance `d`, a strictly increasing function, so ordering by chord *is*
//! ordering by great-circle distance, and a radius `r` is exactly the chord
//! `2R·sin(r / 2R)`. A local equirectangular plane (x = R·cos φ0·λ, y = R·φ) is
//! cheaper by one coordinate but scales east–west distances by cos φ / cos φ0: about
//! 0.8 % wrong 0.5° of latitude away from φ0 at 42° N (a city), and 12 % across Inner
//! Mongolia (8°), enough to return the wrong "nearest" station. The chord costs one
//! more multiply-add per distance and has no error bound to document beyond rounding
//! (~1e-9 m); distances returned are converted back to great-circle metres, equal to
//! [`haversine_m`](crate::coord::haversine_m) to well under a millimetre.
//!
//! **Why a k-d tree.** Demand and stations are clustered (malls, compounds), which
//! defeats a fixed grid: its cells are either too big in the centre or mostly empty at
//! the edges. A k-d tree built by median selection adapts to density, is balanced by
//! construction (depth ⌈log2(n / 12)⌉, 17 for a million points), and lives in two flat
//! arrays: nodes in pre-order (left child is the next node) and points in leaf order,
//! so a leaf's points are one contiguous scan. Splits are on the widest dimension of
//! each node's box; search descends the near side first and prunes a far side with the
//! incremental box distance (Arya & Mount), which in 3-D on a 2-D surface prunes as
//! well as a 2-D tree.
//!
//! Ids are the positions in the slice the index was built from, as `u32`.

use crate::coord::{LatLon, EARTH_RADIUS_M};

/// Points per leaf at most (a leaf holds 6 to 12). For k = 5 over a million clustered
/// points on the 2-core machine, 4 was a third slower, and 8, 12 and 16 equal within
/// the noise (≈ 0.95 µs median).
const LEAF_SIZE: usize = 12;
const LEAF: u8 = 3;

#[derive(Debug, Clone, Copy)]
struct Item {
    p: [f64; 3],
    id: u32,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    split: f64,
    lo: u32,
    hi: u32,
    right: u32,
    dim: u8,
}

/// The index. Immutable after [`PointIndex::build`]; share it freely between threads.
#[derive(Debug, Clone)]
pub struct PointIndex {
    nodes: Vec<Node>,
    items: Vec<Item>,
    points: Vec<LatLon>,
}

/// A point's position on the sphere, metres from the centre.
pub(crate) fn to_xyz(p: LatLon) -> [f64; 3] {
    let (sp, cp) = p.lat().to_radians().sin_cos();
    let (sl, cl) = p.lon().to_radians().sin_cos();
    [
        EARTH_RADIUS_M * cp * cl,
        EARTH_RADIUS_M * cp * sl,
        EARTH_RADIUS_M * sp,
    ]
}

#[inline]
fn dist2(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    dx * dx + dy * dy + dz * dz
}

/// Squared chord (metres²) → great-circle metres.
fn chord2_to_m(c2: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * (c2.sqrt() / (2.0 * EARTH_RADIUS_M)).min(1.0).asin()
}

/// Great-circle metres → squared chord. A negative or NaN radius covers nothing; one
/// of half the circumference or more covers everything.
fn m_to_chord2(r: f64) -> f64 {
    if r.is_nan() || r < 0.0 {
        return -1.0;
    }
    if r >= std::f64::consts::PI * EARTH_RADIUS_M {
        return f64::INFINITY;
    }
    let c = 2.0 * EARTH_RADIUS_M * (r / (2.0 * EARTH_RADIUS_M)).sin();
    c * c
}

impl PointIndex {
    /// Build over `points`; the id of `points[i]` is `i`.
    ///
    /// # Panics
    /// If there are more than `u32::MAX` points.
    pub fn build(points: &[LatLon]) -> PointIndex {
        assert!(
            points.len() <= u32::MAX as usize,
            "too many points for u32 ids"
        );
        let mut items: Vec<Item> = points
            .iter()
            .enumerate()
            .map(|(i, &p)| Item {
                p: to_xyz(p),
                id: i as u32,
            })
            .collect();
        let mut nodes = Vec::with_capacity(2 * items.len() / LEAF_SIZE + 1);
        if !items.is_empty() {
            build_node(&mut nodes, &mut items, 0);
        }
        PointIndex {
            nodes,
            items,
            points: points.to_vec(),
        }
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The point with this id.
    pub fn point(&self, id: u32) -> Option<LatLon> {
        self.points.get(id as usize).copied()
    }

    /// The `k` nearest points that pass `filter`, nearest first, with great-circle
    /// metres. `filter` is asked only about points close enough to enter the result,
    /// so it can look up per-point data (amenities, opening hours) cheaply. Ties in
    /// distance are broken arbitrarily. A filter that rejects nearly every point makes
    /// the search visit nearly every leaf; for a rare amenity, build an index over the
    /// stations that have it.
    pub fn nearest(
        &self,
        at: LatLon,
        k: usize,
        filter: impl FnMut(u32) -> bool,
    ) -> Vec<(u32, f64)> {
        self.knn(at, k, f64::INFINITY, filter)
    }

    /// The same answer as [`nearest`](Self::nearest) by scanning every point: the
    /// linear scan the tree replaces, for benchmarks (same representation and distance,
    /// so the ratio is the tree's alone) and tests.
    pub fn nearest_brute_force(
        &self,
        at: LatLon,
        k: usize,
        mut filter: impl FnMut(u32) -> bool,
    ) -> Vec<(u32, f64)> {
        if k == 0 {
            return Vec::new();
        }
        let mut s = Knn {
            q: to_xyz(at),
            k,
            best: Vec::with_capacity(k.min(64) + 1),
            worst: f64::INFINITY,
            filter: &mut filter,
        };
        for it in &self.items {
            let d2 = dist2(&it.p, &s.q);
            if d2 < s.worst && (s.filter)(it.id) {
                s.insert(d2, it.id);
            }
        }
        s.best
            .into_iter()
            .map(|(d2, id)| (id, chord2_to_m(d2)))
            .collect()
    }

    /// Like [`nearest`](Self::nearest), but only points within `radius_m`.
    pub fn nearest_in_radius(
        &self,
        at: LatLon,
        k: usize,
        radius_m: f64,
        filter: impl FnMut(u32) -> bool,
    ) -> Vec<(u32, f64)> {
        self.knn(at, k, m_to_chord2(radius_m), filter)
    }

    /// The nearest point within `radius_m`, if any.
    pub fn nearest_within(&self, at: LatLon, radius_m: f64) -> Option<(u32, f64)> {
        self.knn(at, 1, m_to_chord2(radius_m), |_| true).pop()
    }

    /// Every point within `radius_m` (inclusive), nearest first.
    pub fn within(&self, at: LatLon, radius_m: f64) -> Vec<(u32, f64)> {
        let q = to_xyz(at);
        let mut out = Vec::new();
        self.visit_within(&q, m_to_chord2(radius_m), &mut |id, d2| {
            out.push((id, d2));
            true
        });
        out.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        out.into_iter()
            .map(|(id, d2)| (id, chord2_to_m(d2)))
            .collect()
    }

    /// Call `f` with the id of every point within `radius_m`, in no particular order
    /// (the fastest way to sum over a disc).
    pub fn for_each_within(&self, at: LatLon, radius_m: f64, mut f: impl FnMut(u32)) {
        let q = to_xyz(at);
        self.visit_within(&q, m_to_chord2(radius_m), &mut |id, _| {
            f(id);
            true
        });
    }

    /// Whether any point lies within `radius_m`; stops at the first one found.
    pub fn any_within(&self, at: LatLon, radius_m: f64) -> bool {
        let q = to_xyz(at);
        let mut found = false;
        self.visit_within(&q, m_to_chord2(radius_m), &mut |_, _| {
            found = true;
            false
        });
        found
    }

    fn knn(
        &self,
        at: LatLon,
        k: usize,
        bound2: f64,
        filter: impl FnMut(u32) -> bool,
    ) -> Vec<(u32, f64)> {
        if k == 0 || self.nodes.is_empty() || bound2 < 0.0 {
            return Vec::new();
        }
        let mut s = Knn {
            q: to_xyz(at),
            k,
            best: Vec::with_capacity(k.min(64) + 1),
            // Strict pruning below, so let a point exactly on the radius in.
            worst: bound2 * (1.0 + 4.0 * f64::EPSILON),
            filter,
        };
        s.search(self, 0, [0.0; 3], 0.0);
        s.best
            .into_iter()
            .map(|(d2, id)| (id, chord2_to_m(d2)))
            .collect()
    }

    /// Depth-first over points with squared chord ≤ `r2`; `f` returns false to stop.
    fn visit_within(&self, q: &[f64; 3], r2: f64, f: &mut dyn FnMut(u32, f64) -> bool) {
        if self.nodes.is_empty() || r2 < 0.0 {
            return;
        }
        let r2 = r2 * (1.0 + 4.0 * f64::EPSILON);
        self.visit(0, q, r2, [0.0; 3], 0.0, f);
    }

    fn visit(
        &self,
        node: usize,
        q: &[f64; 3],
        r2: f64,
        mut off: [f64; 3],
        rd: f64,
        f: &mut dyn FnMut(u32, f64) -> bool,
    ) -> bool {
        let n = self.nodes[node];
        if n.dim == LEAF {
            for it in &self.items[n.lo as usize..n.hi as usize] {
                let d2 = dist2(&it.p, q);
                if d2 <= r2 && !f(it.id, d2) {
                    return false;
                }
            }
            return true;
        }
        let d = n.dim as usize;
        let diff = q[d] - n.split;
        let (near, far) = if diff < 0.0 {
            (node + 1, n.right as usize)
        } else {
            (n.right as usize, node + 1)
        };
        if !self.visit(near, q, r2, off, rd, f) {
            return false;
        }
        let far_rd = rd - off[d] * off[d] + diff * diff;
        if far_rd <= r2 {
            off[d] = diff;
            return self.visit(far, q, r2, off, far_rd, f);
        }
        true
    }
}

/// Build the subtree over `items` (which start at `base` in the full array) and
/// return its node's index.
fn build_node(nodes: &mut Vec<Node>, items: &mut [Item], base: usize) -> usize {
    let me = nodes.len();
    let (lo, hi) = (base as u32, (base + items.len()) as u32);
    if items.len() <= LEAF_SIZE {
        nodes.push(Node {
            split: 0.0,
            lo,
            hi,
            right: 0,
            dim: LEAF,
        });
        return me;
    }
    let mut min = [f64::INFINITY; 3];
    let mut max = [f64::NEG_INFINITY; 3];
    for it in items.iter() {
        for d in 0..3 {
            min[d] = min[d].min(it.p[d]);
            max[d] = max[d].max(it.p[d]);
        }
    }
    let dim = (0..3)
        .max_by(|&a, &b| (max[a] - min[a]).total_cmp(&(max[b] - min[b])))
        .unwrap_or(0);
    let mid = items.len() / 2;
    items.select_nth_unstable_by(mid, |a, b| a.p[dim].total_cmp(&b.p[dim]));
    let split = items[mid].p[dim];
    nodes.push(Node {
        split,
        lo,
        hi,
        right: 0,
        dim: dim as u8,
    });
    let (left, right) = items.split_at_mut(mid);
    build_node(nodes, left, base);
    let r = build_node(nodes, right, base + mid);
    nodes[me].right = r as u32;
    me
}

/// Uncovered demand weight per subtree, for the siting loop: the weight of the
/// uncovered points within a disc, and covering them. A subtree whose box lies wholly
/// inside the disc counts by its sum, one whose box lies outside is skipped, so a disc
/// of 100,000 points costs its boundary, not its area.
pub(crate) struct DiscSums<'a> {
    index: &'a PointIndex,
    /// Per node: box corners, uncovered weight, uncovered points.
    lo: Vec<[f64; 3]>,
    hi: Vec<[f64; 3]>,
    sum: Vec<f64>,
    open: Vec<u32>,
    /// Per item position: weight, and whether still uncovered.
    weight: Vec<f64>,
    uncovered: Vec<bool>,
}

impl<'a> DiscSums<'a> {
    /// `weight(id)` and `uncovered(id)` for every point of `index`.
    pub(crate) fn new(
        index: &'a PointIndex,
        weight: impl Fn(u32) -> f64,
        uncovered: impl Fn(u32) -> bool,
    ) -> Self {
        let n = index.nodes.len();
        let mut s = DiscSums {
            index,
            lo: vec![[0.0; 3]; n],
            hi: vec![[0.0; 3]; n],
            sum: vec![0.0; n],
            open: vec![0; n],
            weight: index.items.iter().map(|it| weight(it.id)).collect(),
            uncovered: index.items.iter().map(|it| uncovered(it.id)).collect(),
        };
        if n > 0 {
            s.build(0);
        }
        s
    }

    fn build(&mut self, node: usize) {
        let n = self.index.nodes[node];
        if n.dim == LEAF {
            let (mut lo, mut hi) = ([f64::INFINITY; 3], [f64::NEG_INFINITY; 3]);
            for it in &self.index.items[n.lo as usize..n.hi as usize] {
                for d in 0..3 {
                    lo[d] = lo[d].min(it.p[d]);
                    hi[d] = hi[d].max(it.p[d]);
                }
            }
            self.lo[node] = lo;
            self.hi[node] = hi;
        } else {
            let (l, r) = (node + 1, n.right as usize);
            self.build(l);
            self.build(r);
            for d in 0..3 {
                self.lo[node][d] = self.lo[l][d].min(self.lo[r][d]);
                self.hi[node][d] = self.hi[l][d].max(self.hi[r][d]);
            }
        }
        self.resum(node);
    }

    /// Recompute a node's sums from its children (or its points), so they never drift.
    fn resum(&mut self, node: usize) {
        let n = self.index.nodes[node];
        if n.dim == LEAF {
            let range = n.lo as usize..n.hi as usize;
            let (mut sum, mut open) = (0.0, 0);
            for (w, &u) in self.weight[range.clone()]
                .iter()
                .zip(&self.uncovered[range])
            {
                if u {
                    sum += w;
                    open += 1;
                }
            }
            self.sum[node] = sum;
            self.open[node] = open;
        } else {
            let (l, r) = (node + 1, n.right as usize);
            self.sum[node] = self.sum[l] + self.sum[r];
            self.open[node] = self.open[l] + self.open[r];
        }
    }

    /// (nearest, farthest) squared distance from `q` to the node's box.
    fn box_dist2(&self, node: usize, q: &[f64; 3]) -> (f64, f64) {
        let (lo, hi) = (&self.lo[node], &self.hi[node]);
        let (mut near, mut far) = (0.0, 0.0);
        for d in 0..3 {
            let (a, b) = (q[d] - lo[d], hi[d] - q[d]);
            let out = if a < 0.0 {
                -a
            } else if b < 0.0 {
                -b
            } else {
                0.0
            };
            near += out * out;
            let m = a.abs().max(b.abs());
            far += m * m;
        }
        (near, far)
    }

    /// Uncovered weight within `radius_m` of `at`.
    pub(crate) fn sum_within(&self, at: LatLon, radius_m: f64) -> f64 {
        let r2 = m_to_chord2(radius_m) * (1.0 + 4.0 * f64::EPSILON);
        if self.index.nodes.is_empty() || r2 < 0.0 {
            return 0.0;
        }
        self.sum_node(0, &to_xyz(at), r2)
    }

    fn sum_node(&self, node: usize, q: &[f64; 3], r2: f64) -> f64 {
        if self.open[node] == 0 {
            return 0.0;
        }
        let (near, far) = self.box_dist2(node, q);
        if near > r2 {
            return 0.0;
        }
        if far <= r2 {
            return self.sum[node];
        }
        let n = self.index.nodes[node];
        if n.dim == LEAF {
            let mut s = 0.0;
            for pos in n.lo as usize..n.hi as usize {
                if self.uncovered[pos] && dist2(&self.index.items[pos].p, q) <= r2 {
                    s += self.weight[pos];
                }
            }
            return s;
        }
        self.sum_node(node + 1, q, r2) + self.sum_node(n.right as usize, q, r2)
    }

    /// Mark every uncovered point within `radius_m` covered; call `f` with each id.
    pub(crate) fn cover_within(&mut self, at: LatLon, radius_m: f64, f: &mut dyn FnMut(u32)) {
        let r2 = m_to_chord2(radius_m) * (1.0 + 4.0 * f64::EPSILON);
        if self.index.nodes.is_empty() || r2 < 0.0 {
            return;
        }
        self.cover_node(0, &to_xyz(at), r2, false, f);
    }

    fn cover_node(
        &mut self,
        node: usize,
        q: &[f64; 3],
        r2: f64,
        inside: bool,
        f: &mut dyn FnMut(u32),
    ) {
        if self.open[node] == 0 {
            return;
        }
        let inside = inside || {
            let (near, far) = self.box_dist2(node, q);
            if near > r2 {
                return;
            }
            far <= r2
        };
        let n = self.index.nodes[node];
        if n.dim == LEAF {
            for pos in n.lo as usize..n.hi as usize {
                if self.uncovered[pos] && (inside || dist2(&self.index.items[pos].p, q) <= r2) {
                    self.uncovered[pos] = false;
                    f(self.index.items[pos].id);
                }
            }
        } else {
            self.cover_node(node + 1, q, r2, inside, f);
            self.cover_node(n.right as usize, q, r2, inside, f);
        }
        self.resum(node);
    }
}

struct Knn<F> {
    q: [f64; 3],
    k: usize,
    /// (squared chord, id), nearest first, at most k.
    best: Vec<(f64, u32)>,
    /// The squared chord a point must beat to enter.
    worst: f64,
    filter: F,
}

impl<F: FnMut(u32) -> bool> Knn<F> {
    fn search(&mut self, index: &PointIndex, node: usize, mut off: [f64; 3], rd: f64) {
        let n = index.nodes[node];
        if n.dim == LEAF {
            for it in &index.items[n.lo as usize..n.hi as usize] {
                let d2 = dist2(&it.p, &self.q);
                if d2 < self.worst && (self.filter)(it.id) {
                    self.insert(d2, it.id);
                }
            }
            return;
        }
        let d = n.dim as usize;
        let diff = self.q[d] - n.split;
        let (near, far) = if diff < 0.0 {
            (node + 1, n.right as usize)
        } else {
            (n.right as usize, node + 1)
        };
        self.search(index, near, off, rd);
        let far_rd = rd - off[d] * off[d] + diff * diff;
        if far_rd < self.worst {
            off[d] = diff;
            self.search(index, far, off, far_rd);
        }
    }

    fn insert(&mut self, d2: f64, id: u32) {
        let pos = self.best.partition_point(|&(b, _)| b <= d2);
        self.best.insert(pos, (d2, id));
        if self.best.len() > self.k {
            self.best.pop();
        }
        if self.best.len() == self.k {
            self.worst = self.best[self.k - 1].0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coord::haversine_m;
    use crate::synth;
    use proptest::prelude::*;

    fn ll(lat: f64, lon: f64) -> LatLon {
        LatLon::new(lat, lon).unwrap()
    }

    fn brute(points: &[LatLon], at: LatLon) -> Vec<(u32, f64)> {
        let mut v: Vec<(u32, f64)> = points
            .iter()
            .enumerate()
            .map(|(i, &p)| (i as u32, haversine_m(at, p)))
            .collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        v
    }

    fn check_against_brute(points: &[LatLon], queries: &[LatLon]) {
        let index = PointIndex::build(points);
        for &q in queries {
            let all = brute(points, q);
            for k in [1, 5, 17] {
                let got = index.nearest(q, k, |_| true);
                assert_eq!(got.len(), k.min(points.len()));
                for (g, b) in got.iter().zip(&all) {
                    assert!((g.1 - b.1).abs() < 1e-3, "k={k}: {g:?} vs {b:?}");
                    assert!((haversine_m(q, points[g.0 as usize]) - g.1).abs() < 1e-3);
                }
            }
            // Only even ids.
            let even: Vec<_> = all.iter().filter(|(id, _)| id % 2 == 0).take(3).collect();
            let got = index.nearest(q, 3, |id| id % 2 == 0);
            let scan = index.nearest_brute_force(q, 3, |id| id % 2 == 0);
            assert_eq!(got.len(), scan.len());
            for (g, b) in got.iter().zip(&scan) {
                assert!((g.1 - b.1).abs() < 1e-6);
            }
            assert_eq!(got.len(), even.len());
            for (g, b) in got.iter().zip(even) {
                assert!(g.0 % 2 == 0 && (g.1 - b.1).abs() < 1e-3);
            }
            for r in [50.0, 400.0, 3_000.0] {
                let want: Vec<u32> = all.iter().filter(|x| x.1 <= r).map(|x| x.0).collect();
                let mut got: Vec<u32> = index.within(q, r).into_iter().map(|x| x.0).collect();
                got.sort_unstable();
                let mut want_sorted = want.clone();
                want_sorted.sort_unstable();
                assert_eq!(got, want_sorted, "within {r}");
                assert_eq!(index.any_within(q, r), !want.is_empty());
                match index.nearest_within(q, r) {
                    Some((_, d)) => assert!((d - all[0].1).abs() < 1e-3 && d <= r + 1e-6),
                    None => assert!(want.is_empty()),
                }
            }
        }
    }

    #[test]
    fn empty_and_tiny() {
        let index = PointIndex::build(&[]);
        assert!(index.is_empty());
        assert!(index.nearest(ll(40.0, 110.0), 3, |_| true).is_empty());
        assert!(index.nearest_within(ll(40.0, 110.0), 1e9).is_none());
        let one = PointIndex::build(&[ll(40.0, 110.0)]);
        assert_eq!(one.nearest(ll(40.0, 110.0), 0, |_| true), vec![]);
        let got = one.nearest(ll(40.001, 110.0), 5, |_| true);
        assert_eq!(got.len(), 1);
        assert!((got[0].1 - 111.195).abs() < 0.01, "{got:?}");
        assert!(one.nearest_within(ll(40.001, 110.0), 100.0).is_none());
        assert!(one.any_within(ll(40.001, 110.0), 112.0));
        assert!(!one.any_within(ll(40.0, 110.0), -1.0));
    }

    #[test]
    fn clustered_matches_brute_force() {
        let centres = synth::district_centres();
        let points = synth::clustered(5_000, &centres, 7);
        let queries = synth::clustered(40, &centres, 8);
        check_against_brute(&points, &queries);
    }

    #[test]
    fn duplicates_are_all_found() {
        let p = ll(42.2683, 118.9569);
        let points = vec![p; 50];
        let index = PointIndex::build(&points);
        assert_eq!(index.within(p, 0.0).len(), 50);
        assert_eq!(index.nearest(p, 7, |_| true).len(), 7);
    }

    #[test]
    fn disc_sums_match_brute_force() {
        let centres = synth::district_centres();
        let points = synth::clustered(4_000, &centres[..1], 11);
        let index = PointIndex::build(&points);
        let weight = |id: u32| f64::from(id % 5);
        let mut open: Vec<bool> = (0..points.len()).map(|i| i % 7 != 0).collect();
        let mut sums = DiscSums::new(&index, weight, |id| open[id as usize]);
        let discs = synth::clustered(30, &centres[..1], 12);
        for (n, &c) in discs.iter().enumerate() {
            let r = 200.0 + 100.0 * (n % 20) as f64;
            let brute: f64 = (0..points.len())
                .filter(|&i| open[i] && haversine_m(points[i], c) <= r)
                .map(|i| weight(i as u32))
                .sum();
            assert_eq!(sums.sum_within(c, r), brute, "disc {n}");
            if n % 3 == 0 {
                let mut got = Vec::new();
                sums.cover_within(c, r, &mut |id| got.push(id));
                got.sort_unstable();
                let want: Vec<u32> = (0..points.len() as u32)
                    .filter(|&i| open[i as usize] && haversine_m(points[i as usize], c) <= r)
                    .collect();
                assert_eq!(got, want);
                for id in got {
                    open[id as usize] = false;
                }
                assert_eq!(sums.sum_within(c, r), 0.0);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn random_matches_brute_force(
            pts in prop::collection::vec((40.0f64..40.2, 109.8f64..110.1), 1..300),
            qs in prop::collection::vec((39.95f64..40.25, 109.7f64..110.2), 1..6),
        ) {
            let points: Vec<LatLon> = pts.into_iter().map(|(a, b)| ll(a, b)).collect();
            let queries: Vec<LatLon> = qs.into_iter().map(|(a, b)| ll(a, b)).collect();
            check_against_brute(&points, &queries);
        }
    }
}
