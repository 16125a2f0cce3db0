//! Planning: how much of the demand lies within reach of a station, where the
//! uncovered demand clusters, and where the next K stations should go.
//!
//! "Within reach" is a radius in great-circle metres; the caller turns the 15-minute
//! circle into one (travel time × speed ÷ detour factor). Demand is a list of weighted
//! points (delivery points weighted by orders, households by people).
//!
//! - [`coverage`] indexes the *stations* ([`PointIndex`]) and asks, for every demand
//!   point, whether any station lies within the radius; the search stops at the first
//!   one found. The points are split over the machine's cores with scoped threads, and
//!   sums are taken afterwards in input order so the result does not depend on the
//!   number of threads.
//! - [`uncovered_clusters`] buckets uncovered points into a grid of radius/2 cells on a
//!   local plane and joins neighbouring non-empty cells (8-neighbourhood): two
//!   uncovered points under radius/2 apart always share a cluster, and each step inside
//!   a cluster is under 1.42 × radius. The plane's east–west scale error (≈ 1 % per
//!   0.6° of latitude from the mean at 42° N) only moves cell edges, never a count.
//! - [`site_greedy`] is greedy maximal covering with the existing stations fixed:
//!   demand they cover counts as covered from the start, and each pick is the
//!   candidate that covers the most still-uncovered weight. Covered weight is monotone
//!   and submodular in the set of picks, so greedy is within (1 − 1/e) ≈ 63 % of the
//!   optimum (Nemhauser, Wolsey & Fisher 1978), and in practice much closer. It is
//!   *lazy* (Minoux 1978): a candidate's gain can only shrink, so stale gains sit in a
//!   max-heap and only the top is re-evaluated; usually a pick costs a handful of disc
//!   sums instead of one per candidate. A disc sum runs over the k-d tree of the demand
//!   with the uncovered weight kept per subtree, so subtrees wholly inside the disc are
//!   counted without visiting their points: its cost follows the disc's edge, not its
//!   area, which keeps a 3 km radius over a million points cheap.
//! - [`site_exact`] tries every k-subset; it exists to check greedy on small cases.

use crate::coord::LatLon;
use crate::index::{to_xyz, DiscSums, PointIndex};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// Why a planning request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("radius {0} m is not allowed: it must be a positive number of metres")]
    BadRadius(f64),
    #[error("demand point {index} has weight {weight}: weights must be finite and not negative")]
    BadWeight { index: usize, weight: f64 },
    #[error("too many subsets for the exact solver: {candidates} candidates choose {k}")]
    TooLarge { candidates: usize, k: usize },
}

impl PlanError {
    /// A stable machine code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            PlanError::BadRadius(_) => "bad_radius",
            PlanError::BadWeight { .. } => "bad_weight",
            PlanError::TooLarge { .. } => "too_large",
        }
    }
}

/// A coverage report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    pub radius_m: f64,
    pub total_points: usize,
    pub covered_points: usize,
    /// Covered points ÷ all points (0 when there are none).
    pub point_share: f64,
    pub total_weight: f64,
    pub covered_weight: f64,
    /// Covered weight ÷ total weight (0 when the total is 0).
    pub share: f64,
    /// Per demand point, in input order: whether a station is within the radius.
    #[serde(skip)]
    pub covered: Vec<bool>,
}

/// A group of uncovered demand points close to each other.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// The weighted centre (the plain centre if all weights are 0).
    pub centroid: LatLon,
    pub points: usize,
    pub weight: f64,
    /// Indices into the demand slice, ascending.
    pub members: Vec<u32>,
}

/// One station chosen by [`site_greedy`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pick {
    /// Index into the candidate slice.
    pub candidate: usize,
    pub at: LatLon,
    /// Weight newly covered by this pick.
    pub gained_weight: f64,
    /// Demand points newly covered by this pick.
    pub gained_points: usize,
    /// Covered weight ÷ total weight after this pick.
    pub cumulative_share: f64,
}

/// The result of siting: where coverage started and what each pick added.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Siting {
    pub total_weight: f64,
    /// Weight covered by the existing stations alone.
    pub initial_weight: f64,
    pub initial_share: f64,
    /// In the order picked; fewer than k when no candidate adds anything.
    pub picks: Vec<Pick>,
}

/// The optimum from [`site_exact`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExactSiting {
    /// Candidate indices, ascending.
    pub picks: Vec<usize>,
    /// Total covered weight, existing stations included.
    pub covered_weight: f64,
}

fn check(demand: &[(LatLon, f64)], radius_m: f64) -> Result<(), PlanError> {
    if !radius_m.is_finite() || radius_m <= 0.0 {
        return Err(PlanError::BadRadius(radius_m));
    }
    match demand.iter().position(|&(_, w)| !w.is_finite() || w < 0.0) {
        Some(index) => Err(PlanError::BadWeight {
            index,
            weight: demand[index].1,
        }),
        None => Ok(()),
    }
}

fn share(part: f64, total: f64) -> f64 {
    if total > 0.0 {
        part / total
    } else {
        0.0
    }
}

/// How many threads to split work over.
fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16)
}

/// Per demand point: is any station within `radius_m`? Parallel over the points.
fn covered_flags(demand: &[(LatLon, f64)], stations: &PointIndex, radius_m: f64) -> Vec<bool> {
    let mut covered = vec![false; demand.len()];
    if stations.is_empty() {
        return covered;
    }
    let fill = |d: &[(LatLon, f64)], out: &mut [bool]| {
        for (flag, &(p, _)) in out.iter_mut().zip(d) {
            *flag = stations.any_within(p, radius_m);
        }
    };
    let n = threads();
    if n == 1 || demand.len() < 20_000 {
        fill(demand, &mut covered);
        return covered;
    }
    let chunk = demand.len().div_ceil(n);
    std::thread::scope(|s| {
        for (d, out) in demand.chunks(chunk).zip(covered.chunks_mut(chunk)) {
            s.spawn(move || fill(d, out));
        }
    });
    covered
}

/// The share of `demand` within `radius_m` of a station.
pub fn coverage(
    demand: &[(LatLon, f64)],
    stations: &[LatLon],
    radius_m: f64,
) -> Result<Coverage, PlanError> {
    check(demand, radius_m)?;
    let index = PointIndex::build(stations);
    Ok(coverage_with(demand, &index, radius_m))
}

/// [`coverage`] against stations already indexed (the server keeps one index).
pub fn coverage_with(demand: &[(LatLon, f64)], stations: &PointIndex, radius_m: f64) -> Coverage {
    let covered = covered_flags(demand, stations, radius_m);
    let (mut total_weight, mut covered_weight, mut covered_points) = (0.0, 0.0, 0);
    for (&(_, w), &c) in demand.iter().zip(&covered) {
        total_weight += w;
        if c {
            covered_weight += w;
            covered_points += 1;
        }
    }
    Coverage {
        radius_m,
        total_points: demand.len(),
        covered_points,
        point_share: share(covered_points as f64, demand.len() as f64),
        total_weight,
        covered_weight,
        share: share(covered_weight, total_weight),
        covered,
    }
}

/// Clusters of the demand points whose `covered` flag is false (as returned in
/// [`Coverage::covered`]), heaviest first; ties by size, then by first member.
pub fn uncovered_clusters(
    demand: &[(LatLon, f64)],
    covered: &[bool],
    radius_m: f64,
) -> Result<Vec<Cluster>, PlanError> {
    check(demand, radius_m)?;
    let open: Vec<u32> = (0..demand.len())
        .filter(|&i| !covered.get(i).copied().unwrap_or(false))
        .map(|i| i as u32)
        .collect();
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let mean_lat = open
        .iter()
        .map(|&i| demand[i as usize].0.lat())
        .sum::<f64>()
        / open.len() as f64;
    let m_per_deg = crate::coord::EARTH_RADIUS_M.to_radians();
    let (sy, sx) = (m_per_deg, m_per_deg * mean_lat.to_radians().cos().max(1e-6));
    let cell_m = radius_m / 2.0;
    let mut cells: HashMap<(i64, i64), u32> = HashMap::new();
    let mut cell_keys: Vec<(i64, i64)> = Vec::new();
    let mut cell_of: Vec<u32> = Vec::with_capacity(open.len());
    for &i in &open {
        let p = demand[i as usize].0;
        let key = (
            (p.lon() * sx / cell_m).floor() as i64,
            (p.lat() * sy / cell_m).floor() as i64,
        );
        let next = cell_keys.len() as u32;
        let c = *cells.entry(key).or_insert_with(|| {
            cell_keys.push(key);
            next
        });
        cell_of.push(c);
    }
    let mut parent: Vec<u32> = (0..cell_keys.len() as u32).collect();
    for (c, &(x, y)) in cell_keys.iter().enumerate() {
        for (dx, dy) in [(1, 0), (1, 1), (0, 1), (-1, 1)] {
            if let Some(&o) = cells.get(&(x + dx, y + dy)) {
                union(&mut parent, c as u32, o);
            }
        }
    }
    // Number components in order of their first member, so output is deterministic.
    let mut comp_of_root: HashMap<u32, usize> = HashMap::new();
    let mut acc: Vec<ClusterSums> = Vec::new();
    for (k, &i) in open.iter().enumerate() {
        let root = find(&mut parent, cell_of[k]);
        let next = acc.len();
        let c = *comp_of_root.entry(root).or_insert(next);
        if c == acc.len() {
            acc.push(ClusterSums::default());
        }
        let (p, w) = demand[i as usize];
        let v = to_xyz(p);
        let a = &mut acc[c];
        a.members.push(i);
        a.weight += w;
        for ((ws, s), x) in a.weighted.iter_mut().zip(&mut a.plain).zip(v) {
            *ws += w * x;
            *s += x;
        }
    }
    let mut out: Vec<Cluster> = acc
        .into_iter()
        .map(|a| Cluster {
            centroid: from_xyz(if a.weight > 0.0 { a.weighted } else { a.plain }),
            points: a.members.len(),
            weight: a.weight,
            members: a.members,
        })
        .collect();
    out.sort_by(|a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then(b.points.cmp(&a.points))
            .then(a.members[0].cmp(&b.members[0]))
    });
    Ok(out)
}

/// Running sums for one cluster: the centroid is the (weighted) mean of the members'
/// positions on the sphere, projected back to its surface.
#[derive(Default)]
struct ClusterSums {
    members: Vec<u32>,
    weight: f64,
    weighted: [f64; 3],
    plain: [f64; 3],
}

fn from_xyz(v: [f64; 3]) -> LatLon {
    let lat = v[2].atan2((v[0] * v[0] + v[1] * v[1]).sqrt()).to_degrees();
    let lon = v[1].atan2(v[0]).to_degrees();
    LatLon::clamped(lat, lon)
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let up = parent[parent[x as usize] as usize];
        parent[x as usize] = up;
        x = up;
    }
    x
}

fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb) as usize] = ra.min(rb);
    }
}

/// A heap entry: a candidate's gain as of `round`.
#[derive(Debug, PartialEq)]
struct Entry {
    gain: f64,
    candidate: usize,
    round: usize,
}

impl Eq for Entry {}

impl Ord for Entry {
    /// Largest gain first; on ties the lower candidate index.
    fn cmp(&self, o: &Self) -> Ordering {
        self.gain
            .total_cmp(&o.gain)
            .then(o.candidate.cmp(&self.candidate))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Greedy maximal covering: pick up to `k` of `candidates`, each covering the most
/// demand weight not yet within `radius_m` of an existing station or an earlier pick.
/// Ties go to the lower candidate index; stops early when nothing more can be gained.
pub fn site_greedy(
    demand: &[(LatLon, f64)],
    existing: &[LatLon],
    candidates: &[LatLon],
    k: usize,
    radius_m: f64,
) -> Result<Siting, PlanError> {
    check(demand, radius_m)?;
    let base = coverage_with(demand, &PointIndex::build(existing), radius_m);
    let mut covered = base.covered;
    let points: Vec<LatLon> = demand.iter().map(|&(p, _)| p).collect();
    let index = PointIndex::build(&points);
    let mut sums = DiscSums::new(
        &index,
        |id| demand[id as usize].1,
        |id| !covered[id as usize],
    );

    // First gains for every candidate, in parallel.
    let mut first = vec![0.0; candidates.len()];
    let n = threads();
    let chunk = candidates.len().div_ceil(n).max(1);
    std::thread::scope(|s| {
        for (ci, out) in first.chunks_mut(chunk).enumerate() {
            let sums = &sums;
            s.spawn(move || {
                for (j, g) in out.iter_mut().enumerate() {
                    *g = sums.sum_within(candidates[ci * chunk + j], radius_m);
                }
            });
        }
    });
    let mut heap: BinaryHeap<Entry> = first
        .into_iter()
        .enumerate()
        .map(|(candidate, gain)| Entry {
            gain,
            candidate,
            round: 0,
        })
        .collect();

    let mut covered_weight = base.covered_weight;
    let mut picks = Vec::new();
    let mut round = 0;
    while picks.len() < k {
        let Some(top) = heap.pop() else { break };
        if top.round != round {
            heap.push(Entry {
                gain: sums.sum_within(candidates[top.candidate], radius_m),
                candidate: top.candidate,
                round,
            });
            continue;
        }
        if top.gain <= 0.0 {
            break;
        }
        let at = candidates[top.candidate];
        let (mut gained_weight, mut gained_points) = (0.0, 0);
        sums.cover_within(at, radius_m, &mut |id| {
            covered[id as usize] = true;
            gained_weight += demand[id as usize].1;
            gained_points += 1;
        });
        covered_weight += gained_weight;
        picks.push(Pick {
            candidate: top.candidate,
            at,
            gained_weight,
            gained_points,
            cumulative_share: share(covered_weight, base.total_weight),
        });
        round += 1;
    }
    Ok(Siting {
        total_weight: base.total_weight,
        initial_weight: base.covered_weight,
        initial_share: base.share,
        picks,
    })
}

/// The best `k` candidates by brute force over all subsets of size min(k, candidates),
/// with the existing stations fixed. For tests and small what-ifs: refuses more than
/// 2,000,000 subsets. Ties go to the lexicographically first subset.
pub fn site_exact(
    demand: &[(LatLon, f64)],
    existing: &[LatLon],
    candidates: &[LatLon],
    k: usize,
    radius_m: f64,
) -> Result<ExactSiting, PlanError> {
    check(demand, radius_m)?;
    let k = k.min(candidates.len());
    if binomial(candidates.len(), k) > 2_000_000 {
        return Err(PlanError::TooLarge {
            candidates: candidates.len(),
            k,
        });
    }
    let base = coverage_with(demand, &PointIndex::build(existing), radius_m);
    let points: Vec<LatLon> = demand.iter().map(|&(p, _)| p).collect();
    let index = PointIndex::build(&points);
    let reach: Vec<Vec<u32>> = candidates
        .iter()
        .map(|&c| {
            let mut v: Vec<u32> = index
                .within(c, radius_m)
                .into_iter()
                .map(|(id, _)| id)
                .filter(|&id| !base.covered[id as usize])
                .collect();
            v.sort_unstable();
            v
        })
        .collect();
    let mut stamp = vec![0u64; demand.len()];
    let mut generation = 0u64;
    let mut best: Option<(f64, Vec<usize>)> = None;
    let mut subset: Vec<usize> = (0..k).collect();
    loop {
        generation += 1;
        let mut w = 0.0;
        for &c in &subset {
            for &id in &reach[c] {
                if stamp[id as usize] != generation {
                    stamp[id as usize] = generation;
                    w += demand[id as usize].1;
                }
            }
        }
        if best.as_ref().is_none_or(|(b, _)| w > *b) {
            best = Some((w, subset.clone()));
        }
        if !next_subset(&mut subset, candidates.len()) {
            break;
        }
    }
    let (gained, picks) = best.unwrap_or((0.0, Vec::new()));
    Ok(ExactSiting {
        picks,
        covered_weight: base.covered_weight + gained,
    })
}

fn binomial(n: usize, k: usize) -> u128 {
    let k = k.min(n - k.min(n));
    (0..k).fold(1u128, |acc, i| acc * (n - i) as u128 / (i as u128 + 1))
}

/// Advance to the next k-subset of 0..n in lexicographic order.
fn next_subset(s: &mut [usize], n: usize) -> bool {
    let k = s.len();
    for i in (0..k).rev() {
        if s[i] < n - k + i {
            s[i] += 1;
            for j in i + 1..k {
                s[j] = s[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coord::haversine_m;
    use crate::synth::{self, offset, Rng};
    use proptest::prelude::*;

    fn centre() -> LatLon {
        LatLon::new(42.2683, 118.9569).unwrap()
    }

    fn brute_cover(demand: &[(LatLon, f64)], stations: &[LatLon], r: f64) -> Vec<bool> {
        demand
            .iter()
            .map(|&(p, _)| stations.iter().any(|&s| haversine_m(p, s) <= r))
            .collect()
    }

    /// A random small instance around Chifeng: demand, existing, candidates.
    fn instance(
        seed: u64,
        n: usize,
        e: usize,
        c: usize,
    ) -> (Vec<(LatLon, f64)>, Vec<LatLon>, Vec<LatLon>) {
        let mut rng = Rng::new(seed);
        let mut pt = |spread: f64| offset(centre(), spread * rng.normal(), spread * rng.normal());
        let demand: Vec<_> = (0..n)
            .map(|i| (pt(2_000.0), 1.0 + (i % 4) as f64))
            .collect();
        let existing: Vec<_> = (0..e).map(|_| pt(2_000.0)).collect();
        let candidates: Vec<_> = (0..c).map(|_| pt(2_000.0)).collect();
        (demand, existing, candidates)
    }

    #[test]
    fn coverage_matches_brute_force() {
        let c = synth::district_centres();
        let demand: Vec<_> = synth::clustered(30_000, &c, 3)
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, (i % 3) as f64))
            .collect();
        let stations = synth::clustered(60, &c, 4);
        let got = coverage(&demand, &stations, 800.0).unwrap();
        let want = brute_cover(&demand, &stations, 800.0);
        assert_eq!(got.covered, want);
        let w: f64 = demand
            .iter()
            .zip(&want)
            .filter(|x| *x.1)
            .map(|x| x.0 .1)
            .sum();
        assert_eq!(got.covered_weight, w);
        assert_eq!(got.covered_points, want.iter().filter(|&&b| b).count());
        assert!(got.share > 0.05 && got.share < 0.95, "{}", got.share);
    }

    #[test]
    fn bad_input_is_refused() {
        let d = vec![(centre(), 1.0), (centre(), -2.0)];
        assert_eq!(
            coverage(&d, &[], 100.0),
            Err(PlanError::BadWeight {
                index: 1,
                weight: -2.0
            })
        );
        assert_eq!(coverage(&d[..1], &[], 0.0), Err(PlanError::BadRadius(0.0)));
        assert!(coverage(&d[..1], &[], f64::NAN).is_err());
        let empty = coverage(&[], &[centre()], 100.0).unwrap();
        assert_eq!((empty.share, empty.total_points), (0.0, 0));
        let none = coverage(&d[..1], &[], 100.0).unwrap();
        assert_eq!(none.covered, vec![false]);
    }

    #[test]
    fn clusters_group_nearby_uncovered_points() {
        let c = centre();
        let mut demand = Vec::new();
        // Three blobs of 30 points: 5 km north (weight 1), 5 km south (weight 3),
        // and at the centre, covered by a station.
        for (north, w) in [(5_000.0, 1.0), (-5_000.0, 3.0), (0.0, 1.0)] {
            let mut rng = Rng::new(north as u64);
            for _ in 0..30 {
                demand.push((
                    offset(c, north + 100.0 * rng.normal(), 100.0 * rng.normal()),
                    w,
                ));
            }
        }
        let cov = coverage(&demand, &[c], 1_000.0).unwrap();
        assert_eq!(cov.covered_points, 30);
        let clusters = uncovered_clusters(&demand, &cov.covered, 1_000.0).unwrap();
        assert_eq!(clusters.len(), 2);
        assert_eq!((clusters[0].points, clusters[0].weight), (30, 90.0));
        assert!(haversine_m(clusters[0].centroid, offset(c, -5_000.0, 0.0)) < 100.0);
        assert_eq!(clusters[1].members, (0..30).collect::<Vec<u32>>());
        assert!(uncovered_clusters(&demand, &[true; 90], 1_000.0)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn clusters_never_split_close_points() {
        let c = synth::district_centres();
        let demand: Vec<_> = synth::clustered(3_000, &c[..1], 9)
            .into_iter()
            .map(|p| (p, 1.0))
            .collect();
        let r = 600.0;
        let clusters = uncovered_clusters(&demand, &[], r).unwrap();
        assert_eq!(clusters.iter().map(|c| c.points).sum::<usize>(), 3_000);
        let mut label = vec![0; demand.len()];
        for (l, cl) in clusters.iter().enumerate() {
            for &m in &cl.members {
                label[m as usize] = l;
            }
        }
        for i in (0..demand.len()).step_by(7) {
            for j in 0..demand.len() {
                if haversine_m(demand[i].0, demand[j].0) < r / 2.0 * 0.99 {
                    assert_eq!(label[i], label[j]);
                }
            }
        }
    }

    /// Greedy is optimal here: three disjoint groups of different weight.
    #[test]
    fn greedy_matches_the_optimum_where_greedy_is_optimal() {
        let c = centre();
        let mut demand = Vec::new();
        let mut candidates = Vec::new();
        for (g, w) in [
            (0.0, 5.0),
            (10_000.0, 3.0),
            (20_000.0, 8.0),
            (30_000.0, 1.0),
        ] {
            candidates.push(offset(c, 0.0, g));
            for j in 0..4 {
                demand.push((offset(c, 50.0 * j as f64, g), w));
            }
        }
        let greedy = site_greedy(&demand, &[], &candidates, 2, 500.0).unwrap();
        let order: Vec<usize> = greedy.picks.iter().map(|p| p.candidate).collect();
        assert_eq!(order, vec![2, 0]);
        assert_eq!(greedy.picks[0].gained_weight, 32.0);
        assert_eq!(greedy.picks[1].cumulative_share, 52.0 / 68.0);
        let exact = site_exact(&demand, &[], &candidates, 2, 500.0).unwrap();
        assert_eq!(exact.picks, vec![0, 2]);
        assert_eq!(exact.covered_weight, 52.0);
    }

    /// The classic case where greedy is not optimal: a big middle set overlapping two
    /// disjoint ones that together cover more.
    #[test]
    fn greedy_can_be_beaten_but_stays_within_the_bound() {
        let c = centre();
        // Left and right groups 1,200 m apart; the middle candidate reaches 4 of each,
        // the side candidates reach 5 each.
        let mut demand = Vec::new();
        for side in [-1.0, 1.0] {
            for j in 0..5 {
                demand.push((offset(c, 0.0, side * (300.0 + 150.0 * j as f64)), 1.0));
            }
        }
        let candidates = vec![c, offset(c, 0.0, -600.0), offset(c, 0.0, 600.0)];
        let r = 760.0;
        let greedy = site_greedy(&demand, &[], &candidates, 2, r).unwrap();
        let exact = site_exact(&demand, &[], &candidates, 2, r).unwrap();
        let got = greedy.initial_weight + greedy.picks.iter().map(|p| p.gained_weight).sum::<f64>();
        assert_eq!(greedy.picks[0].candidate, 0, "{greedy:?}");
        assert_eq!(exact.covered_weight, 10.0);
        assert!(got < exact.covered_weight);
        assert!(got >= (1.0 - 1.0 / std::f64::consts::E) * exact.covered_weight);
    }

    #[test]
    fn existing_stations_count_as_covered() {
        let c = centre();
        let demand = vec![(c, 10.0), (offset(c, 0.0, 5_000.0), 1.0)];
        let candidates = vec![c, offset(c, 0.0, 5_000.0)];
        let s = site_greedy(&demand, &[c], &candidates, 2, 300.0).unwrap();
        assert_eq!(s.initial_weight, 10.0);
        assert_eq!(s.picks.len(), 1, "the second pick would gain nothing");
        assert_eq!(s.picks[0].candidate, 1);
        assert_eq!(s.picks[0].cumulative_share, 1.0);
    }

    #[test]
    fn exact_refuses_huge_instances() {
        let c = vec![centre(); 200];
        assert!(matches!(
            site_exact(&[(centre(), 1.0)], &[], &c, 6, 100.0),
            Err(PlanError::TooLarge { .. })
        ));
    }

    #[test]
    fn subsets_enumerate_in_order() {
        let mut s = vec![0, 1];
        let mut all = vec![s.clone()];
        while next_subset(&mut s, 4) {
            all.push(s.clone());
        }
        assert_eq!(all.len(), 6);
        assert_eq!(all[5], vec![2, 3]);
        assert_eq!(binomial(10, 3), 120);
        assert_eq!(binomial(3, 5), 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]
        #[test]
        fn greedy_is_within_the_bound_of_the_optimum(
            seed in any::<u64>(), n in 5usize..60, e in 0usize..3, c in 1usize..9, k in 1usize..4,
            r in 300.0f64..1_500.0,
        ) {
            let (demand, existing, candidates) = instance(seed, n, e, c);
            let greedy = site_greedy(&demand, &existing, &candidates, k, r).unwrap();
            let exact = site_exact(&demand, &existing, &candidates, k, r).unwrap();
            let got = greedy.initial_weight + greedy.picks.iter().map(|p| p.gained_weight).sum::<f64>();
            prop_assert!(got <= exact.covered_weight + 1e-9);
            let bound = greedy.initial_weight
                + (1.0 - 1.0 / std::f64::consts::E) * (exact.covered_weight - greedy.initial_weight);
            prop_assert!(got >= bound - 1e-9, "greedy {} exact {}", got, exact.covered_weight);
            // Each pick's gain is the best available at its turn, so they never grow.
            for w in greedy.picks.windows(2) {
                prop_assert!(w[0].gained_weight >= w[1].gained_weight);
            }
            // And the report adds up to a direct coverage of existing + picks.
            let mut all = existing.clone();
            all.extend(greedy.picks.iter().map(|p| candidates[p.candidate]));
            let direct = coverage(&demand, &all, r).unwrap();
            prop_assert!((direct.covered_weight - got).abs() < 1e-9);
        }

        #[test]
        fn coverage_equals_brute_force(seed in any::<u64>(), n in 0usize..80, e in 0usize..6,
                                        r in 100.0f64..3_000.0) {
            let (demand, stations, _) = instance(seed, n, e, 0);
            let got = coverage(&demand, &stations, r).unwrap();
            prop_assert_eq!(got.covered, brute_cover(&demand, &stations, r));
        }
    }
}
