//! The planner's questions of the map for one district: how much of its delivery
//! demand and how many of its households lie within the travel time of a station
//! (the 15-minute circle), which uncovered clusters remain, and where the next K
//! stations would cover most (greedy maximal covering with the existing stations
//! kept; `lianxin_map::cover` proves its bound and checks it against an exact solver).
//!
//! Demand is the district's delivery hot spots, weighted by orders a day, and its
//! registered households, one each, placed at their nearest placed ancestor.
//! Travel time is along the imported road network when there is one (coverage),
//! else straight-line distance times the detour factor; siting always uses the
//! straight-line radius (its candidates are not on a network).

use crate::api::map::Reachable;
use crate::error::ApiResult;
use crate::map_index::MapIndex;
use crate::AppState;
use lianxin_map::cover::{site_greedy, uncovered_clusters};
use lianxin_map::reach::{radius_m, Mode};
use lianxin_map::{LatLon, PointIndex};
use lianxin_store::registry::Place;
use serde_json::{json, Value};

/// The most candidate sites siting considers.
const MAX_CANDIDATES: usize = 4000;

/// A district's demand: (point, weight, is a household).
struct Demand {
    points: Vec<(LatLon, f64)>,
    household: Vec<bool>,
}

async fn demand(state: &AppState, map: &MapIndex, place: &Place) -> ApiResult<Demand> {
    let mut points = Vec::new();
    let mut household = Vec::new();
    let inside = |code: &Option<String>| {
        code.as_deref()
            .is_some_and(|c| c == place.code || c.starts_with(&format!("{}.", place.code)))
    };
    for h in map.hotspots.iter().filter(|h| inside(&h.place_code)) {
        if let Ok(p) = LatLon::new(h.lat, h.lon) {
            points.push((p, h.weight));
            household.push(false);
        }
    }
    for (lat, lon) in state.store.household_points(&place.path).await? {
        if let Ok(p) = LatLon::new(lat, lon) {
            points.push((p, 1.0));
            household.push(true);
        }
    }
    Ok(Demand { points, household })
}

/// Which demand points a station reaches within the time.
fn covered(map: &MapIndex, demand: &Demand, mode: Mode, minutes: f64) -> (Vec<bool>, &'static str) {
    let mut covered = vec![false; demand.points.len()];
    let at: Vec<LatLon> = demand.points.iter().map(|(p, _)| *p).collect();
    let index = PointIndex::build(&at);
    let method = if map.road.is_some() {
        "road"
    } else {
        "straight_line"
    };
    for s in &map.stations {
        let reach = Reachable::new(map, s.at, mode, minutes);
        for (i, d) in index.within(s.at, reach.radius_m) {
            if !covered[i as usize] && reach.minutes_to(at[i as usize], d).is_some() {
                covered[i as usize] = true;
            }
        }
    }
    (covered, method)
}

fn share(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (part / whole * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

pub async fn coverage_report(
    state: &AppState,
    place: &Place,
    mode: Mode,
    minutes: f64,
) -> ApiResult<Value> {
    let map = state.map.get();
    let demand = demand(state, &map, place).await?;
    let (covered, method) = covered(&map, &demand, mode, minutes);
    let tally = |households: bool| {
        let (mut n, mut w, mut cn, mut cw) = (0usize, 0.0, 0usize, 0.0);
        for (i, (_, weight)) in demand.points.iter().enumerate() {
            if demand.household[i] == households {
                n += 1;
                w += weight;
                if covered[i] {
                    cn += 1;
                    cw += weight;
                }
            }
        }
        json!({ "count": n, "covered": cn, "weight": w, "covered_weight": cw, "share": share(cw, w) })
    };
    let r = radius_m(mode, minutes);
    let clusters = uncovered_clusters(&demand.points, &covered, r).unwrap_or_default();
    Ok(json!({
        "place": { "code": place.code, "name": place.name },
        "minutes": minutes,
        "mode": mode.as_str(),
        "radius_m": r.round(),
        "method": method,
        // The district's own stations (those outside it count towards coverage too).
        "stations": map.stations.iter().filter(|s| s.row.place_code.as_deref().is_some_and(|c| c == place.code || c.starts_with(&format!("{}.", place.code)))).count(),
        "delivery_points": tally(false),
        "households": tally(true),
        "uncovered_clusters": clusters.iter().take(20).map(|c| json!({
            "lat": c.centroid.lat(), "lon": c.centroid.lon(), "points": c.points, "weight": c.weight,
        })).collect::<Vec<_>>(),
    }))
}

pub async fn siting_report(
    state: &AppState,
    place: &Place,
    mode: Mode,
    minutes: f64,
    k: usize,
) -> ApiResult<Value> {
    let map = state.map.get();
    let demand = demand(state, &map, place).await?;
    let r = radius_m(mode, minutes);
    let existing: Vec<LatLon> = map.stations.iter().map(|s| s.at).collect();
    // Candidates: the hot spots themselves and a grid over the demand's extent at
    // half the radius, so that no gap wider than that is missed.
    let mut candidates: Vec<LatLon> = demand.points.iter().map(|(p, _)| *p).collect();
    candidates.sort_by(|a, b| {
        (a.lat(), a.lon())
            .partial_cmp(&(b.lat(), b.lon()))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    candidates.dedup();
    if let Some(grid) = grid_over(
        &candidates,
        r / 2.0,
        MAX_CANDIDATES.saturating_sub(candidates.len()),
    ) {
        candidates.extend(grid);
    }
    candidates.truncate(MAX_CANDIDATES);
    let siting = site_greedy(&demand.points, &existing, &candidates, k, r)
        .map_err(|e| crate::error::ApiError::invalid("k", e.to_string()))?;
    Ok(json!({
        "place": { "code": place.code, "name": place.name },
        "minutes": minutes,
        "mode": mode.as_str(),
        "radius_m": r.round(),
        "method": "straight_line",
        "candidates": candidates.len(),
        "total_weight": siting.total_weight,
        "initial_share": share(siting.initial_weight, siting.total_weight),
        "picks": siting.picks.iter().enumerate().map(|(n, p)| json!({
            "rank": n + 1, "lat": p.at.lat(), "lon": p.at.lon(),
            "gained_weight": p.gained_weight, "gained_points": p.gained_points,
            "cumulative_share": (p.cumulative_share * 1000.0).round() / 1000.0,
        })).collect::<Vec<_>>(),
    }))
}

/// Points every `step_m` metres over the box around `points`, at most `max`.
fn grid_over(points: &[LatLon], step_m: f64, max: usize) -> Option<Vec<LatLon>> {
    let (mut s, mut n, mut w, mut e) = (90.0f64, -90.0f64, 180.0f64, -180.0f64);
    for p in points {
        s = s.min(p.lat());
        n = n.max(p.lat());
        w = w.min(p.lon());
        e = e.max(p.lon());
    }
    if points.is_empty() || step_m <= 0.0 || max == 0 {
        return None;
    }
    let dlat = step_m / 111_195.0;
    let dlon = dlat / ((s + n) / 2.0).to_radians().cos().max(0.1);
    let rows = ((n - s) / dlat).ceil() as usize + 1;
    let cols = ((e - w) / dlon).ceil() as usize + 1;
    let mut out = Vec::new();
    'rows: for i in 0..rows {
        for j in 0..cols {
            if out.len() >= max {
                break 'rows;
            }
            if let Ok(p) = LatLon::new(s + i as f64 * dlat, w + j as f64 * dlon) {
                out.push(p);
            }
        }
    }
    Some(out)
}
