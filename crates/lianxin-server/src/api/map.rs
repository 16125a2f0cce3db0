//! The rider-friendly map over HTTP (M7, M8).
//!
//! - **Anyone** (riders on the street, no account needed) reads the map: the layers
//!   the page draws, the nearest open stations with given amenities, what lies within
//!   a travel time, and the malls' directories with "where is shop X".
//! - **Planners** (`ReadGovernance`) get the coverage report of a district and the
//!   siting of its next stations.
//! - **Administrators** (`ManageMap`) write stations; bulk data comes in through
//!   `lianxin import` (all or nothing, with row numbers).
//!
//! Every answer comes from the in-memory index (`map_index`); every coordinate goes
//! in and out in the datum the caller names (`datum=wgs84|gcj02|bd09`, WGS-84 by
//! default) and is kept in WGS-84.

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiCaller, Id, JsonBody, QueryParams};
use crate::map_index::{metres, MapIndex, Station};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use lianxin_domain::map::{Amenity, RawStation, StationDraft};
use lianxin_domain::role::Permission;
use lianxin_map::reach::{radius_m, Mode};
use lianxin_map::{from_wgs84, Datum, LatLon};
use lianxin_store::map::NewStation;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/map/layers", get(layers))
        .route("/map/stations", get(stations).post(upsert_station))
        .route("/map/nearest", get(nearest))
        .route("/map/within", get(within))
        .route("/map/malls", get(malls))
        .route("/map/malls/{id}", get(mall))
        .route("/map/malls/{id}/search", get(search_mall))
        .route("/map/coverage", get(coverage))
        .route("/map/siting", get(siting))
}

/// The most stations `/map/nearest` returns.
pub const MAX_K: usize = 50;
/// The longest travel time asked about, in minutes.
const MAX_MINUTES: f64 = 60.0;

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message).with_field(field)
}

fn datum_of(raw: Option<&str>) -> ApiResult<Datum> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Datum::Wgs84),
        Some(d) => d
            .parse()
            .map_err(|e: lianxin_map::CoordError| bad("datum", e.to_string())),
    }
}

fn number(field: &str, raw: Option<&str>) -> ApiResult<Option<f64>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| bad(field, format!("{field} must be a number"))),
    }
}

/// The query's point, in WGS-84: `lat`, `lon` in the query's `datum`.
fn origin(lat: Option<&str>, lon: Option<&str>, datum: Datum) -> ApiResult<LatLon> {
    let lat = number("lat", lat)?.ok_or_else(|| bad("lat", "lat is required"))?;
    let lon = number("lon", lon)?.ok_or_else(|| bad("lon", "lon is required"))?;
    let p = LatLon::new(lat, lon).map_err(|e| bad(e.field(), e.to_string()))?;
    lianxin_map::to_wgs84(datum, p).map_err(|e| bad(e.field(), e.to_string()))
}

/// A point for the answer, in the caller's datum, rounded to about 1 cm.
fn out(datum: Datum, lat: f64, lon: f64) -> (f64, f64) {
    let p = LatLon::new(lat, lon)
        .map(|p| from_wgs84(datum, p))
        .map(|p| (p.lat(), p.lon()))
        .unwrap_or((lat, lon));
    ((p.0 * 1e7).round() / 1e7, (p.1 * 1e7).round() / 1e7)
}

fn mode_of(raw: Option<&str>) -> ApiResult<Mode> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Mode::Walk),
        Some(m) => m
            .parse()
            .map_err(|e: lianxin_map::reach::UnknownMode| bad("mode", e.to_string())),
    }
}

fn minutes_of(raw: Option<&str>) -> ApiResult<f64> {
    let m = number("minutes", raw)?.unwrap_or(lianxin_map::reach::DEFAULT_MINUTES);
    if m <= 0.0 || m > MAX_MINUTES {
        return Err(bad(
            "minutes",
            format!("minutes must be more than 0 and at most {MAX_MINUTES}"),
        ));
    }
    Ok(m)
}

/// A station as the API shows it, at `now`, in `datum`.
pub(crate) fn station_json(s: &Station, now: DateTime<Utc>, datum: Datum) -> Value {
    let (lat, lon) = out(datum, s.row.lat, s.row.lon);
    json!({
        "id": s.row.id,
        "code": s.row.code,
        "name": s.row.name,
        "kind": s.row.kind,
        "org": s.row.org,
        "lat": lat,
        "lon": lon,
        "address": s.row.address,
        "amenities": s.amenities.iter().map(|a| a.code()).collect::<Vec<_>>(),
        "hours": s.row.hours,
        "exceptions": s.row.exceptions,
        "open_now": s.hours.is_open(now),
        "next_change": s.hours.next_change(now).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    })
}

fn now(state: &AppState) -> DateTime<Utc> {
    state.desk.now()
}

#[derive(Deserialize, Default)]
struct DatumQuery {
    datum: Option<String>,
}

async fn layers(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<DatumQuery>,
) -> ApiResult<Json<Value>> {
    let datum = datum_of(q.datum.as_deref())?;
    let map = state.map.get();
    let now = now(&state);
    let point = |lat: f64, lon: f64| out(datum, lat, lon);
    let mut outlines = map.outlines.clone();
    if datum != Datum::Wgs84 {
        convert_geometry(&mut outlines, datum);
    }
    Ok(Json(json!({
        "outlines": outlines,
        "stations": map.stations.iter().map(|s| station_json(s, now, datum)).collect::<Vec<_>>(),
        "compounds": map.compounds.iter().map(|c| {
            let (lat, lon) = point(c.lat, c.lon);
            json!({
                "id": c.id, "code": c.code, "name": c.name, "lat": lat, "lon": lon, "note": c.note,
                "gates": c.gates.iter().map(|g| { let (lat, lon) = point(g.lat, g.lon); json!({ "name": g.name, "lat": lat, "lon": lon }) }).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
        "malls": map.malls.iter().map(|m| { let (lat, lon) = point(m.row.lat, m.row.lon); json!({ "id": m.row.id, "code": m.row.code, "name": m.row.name, "lat": lat, "lon": lon }) }).collect::<Vec<_>>(),
        "hotspots": map.hotspots.iter().map(|h| { let (lat, lon) = point(h.lat, h.lon); json!({ "name": h.name, "lat": lat, "lon": lon, "weight": h.weight }) }).collect::<Vec<_>>(),
        "road_network": map.road.is_some(),
    })))
}

/// Converts every coordinate pair of a GeoJSON value from WGS-84 to `datum`.
fn convert_geometry(v: &mut Value, datum: Datum) {
    match v {
        Value::Array(items) => {
            if items.len() == 2 && items.iter().all(Value::is_number) {
                let lon = items[0].as_f64().unwrap_or(0.0);
                let lat = items[1].as_f64().unwrap_or(0.0);
                let (lat, lon) = out(datum, lat, lon);
                *v = json!([lon, lat]);
            } else {
                items.iter_mut().for_each(|i| convert_geometry(i, datum));
            }
        }
        Value::Object(map) => {
            if let Some(c) = map.get_mut("coordinates") {
                convert_geometry(c, datum);
            }
            for key in ["features", "geometry"] {
                if let Some(inner) = map.get_mut(key) {
                    convert_geometry(inner, datum);
                }
            }
        }
        _ => {}
    }
}

async fn stations(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<DatumQuery>,
) -> ApiResult<Json<Value>> {
    let datum = datum_of(q.datum.as_deref())?;
    let map = state.map.get();
    let now = now(&state);
    Ok(Json(json!({
        "stations": map.stations.iter().map(|s| station_json(s, now, datum)).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, Default)]
struct NearestQuery {
    lat: Option<String>,
    lon: Option<String>,
    datum: Option<String>,
    k: Option<String>,
    amenities: Option<String>,
    open_now: Option<String>,
}

fn flag(field: &str, raw: Option<&str>) -> ApiResult<bool> {
    match raw.map(str::trim) {
        None | Some("") | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(bad(field, format!("{field} must be true or false"))),
    }
}

async fn nearest(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<NearestQuery>,
) -> ApiResult<Json<Value>> {
    let datum = datum_of(q.datum.as_deref())?;
    let from = origin(q.lat.as_deref(), q.lon.as_deref(), datum)?;
    let k = match q.k.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => 5,
        Some(k) => k
            .parse::<usize>()
            .ok()
            .filter(|k| (1..=MAX_K).contains(k))
            .ok_or_else(|| bad("k", format!("k must be 1 to {MAX_K}")))?,
    };
    let wanted = Amenity::parse_list("amenities", q.amenities.as_deref().unwrap_or(""))
        .map_err(|e| bad("amenities", e.message))?;
    let open_now = flag("open_now", q.open_now.as_deref())?;
    let now = now(&state);
    let map = state.map.get();
    let found = map.nearest(from, k, Amenity::mask(&wanted), open_now.then_some(now));
    Ok(Json(json!({
        "stations": found.iter().map(|(i, d)| {
            let mut v = station_json(&map.stations[*i], now, datum);
            v["distance_m"] = json!(d.round());
            v
        }).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize, Default)]
struct WithinQuery {
    lat: Option<String>,
    lon: Option<String>,
    datum: Option<String>,
    minutes: Option<String>,
    mode: Option<String>,
}

async fn within(
    State(state): State<AppState>,
    QueryParams(q): QueryParams<WithinQuery>,
) -> ApiResult<Json<Value>> {
    let datum = datum_of(q.datum.as_deref())?;
    let from = origin(q.lat.as_deref(), q.lon.as_deref(), datum)?;
    let minutes = minutes_of(q.minutes.as_deref())?;
    let mode = mode_of(q.mode.as_deref())?;
    let map = state.map.get();
    let now = now(&state);
    let reach = Reachable::new(&map, from, mode, minutes);
    let point = |lat: f64, lon: f64| out(datum, lat, lon);
    let stations: Vec<Value> = map
        .stations_within(from, reach.radius_m)
        .into_iter()
        .filter_map(|(i, d)| {
            let s = &map.stations[i];
            let t = reach.minutes_to(s.at, d)?;
            let mut v = station_json(s, now, datum);
            v["distance_m"] = json!(d.round());
            v["travel_minutes"] = json!((t * 10.0).round() / 10.0);
            Some(v)
        })
        .collect();
    let inside = |lat: f64, lon: f64| {
        let d = metres(from, lat, lon);
        LatLon::new(lat, lon)
            .ok()
            .and_then(|p| reach.minutes_to(p, d))
            .map(|t| (d, t))
    };
    Ok(Json(json!({
        "minutes": minutes,
        "mode": mode.as_str(),
        "radius_m": reach.radius_m.round(),
        "method": if reach.road.is_some() { "road" } else { "straight_line" },
        "stations": stations,
        "compounds": map.compounds.iter().filter_map(|c| {
            let (d, t) = inside(c.lat, c.lon)?;
            let (lat, lon) = point(c.lat, c.lon);
            Some(json!({ "code": c.code, "name": c.name, "lat": lat, "lon": lon, "distance_m": d.round(), "travel_minutes": (t * 10.0).round() / 10.0 }))
        }).collect::<Vec<_>>(),
        "malls": map.malls.iter().filter_map(|m| {
            let (d, t) = inside(m.row.lat, m.row.lon)?;
            let (lat, lon) = point(m.row.lat, m.row.lon);
            Some(json!({ "id": m.row.id, "code": m.row.code, "name": m.row.name, "lat": lat, "lon": lon, "distance_m": d.round(), "travel_minutes": (t * 10.0).round() / 10.0 }))
        }).collect::<Vec<_>>(),
        "hotspots": map.hotspots.iter().filter_map(|h| {
            let (d, t) = inside(h.lat, h.lon)?;
            let (lat, lon) = point(h.lat, h.lon);
            Some(json!({ "code": h.code, "name": h.name, "lat": lat, "lon": lon, "weight": h.weight, "distance_m": d.round(), "travel_minutes": (t * 10.0).round() / 10.0 }))
        }).collect::<Vec<_>>(),
    })))
}

/// Travel times from one origin: along the imported road network when there is
/// one, else straight-line distance times the detour factor (`lianxin_map::reach`).
pub(crate) struct Reachable<'a> {
    /// The straight-line radius nothing beyond can be reached within (the query's
    /// bound in both methods: a road is never shorter than the straight line).
    pub radius_m: f64,
    minutes: f64,
    mode: Mode,
    road: Option<lianxin_map::road::Reach<'a>>,
}

impl<'a> Reachable<'a> {
    pub fn new(map: &'a MapIndex, from: LatLon, mode: Mode, minutes: f64) -> Reachable<'a> {
        let road = map
            .road
            .as_ref()
            .and_then(|net| net.travel_minutes_from(from, mode, minutes).ok());
        let radius_m = if road.is_some() {
            mode.metres_per_minute() * minutes
        } else {
            radius_m(mode, minutes)
        };
        Reachable {
            radius_m,
            minutes,
            mode,
            road,
        }
    }

    /// Minutes to `to` (at `straight_m` metres as the crow flies), if within reach.
    pub fn minutes_to(&self, to: LatLon, straight_m: f64) -> Option<f64> {
        let t = match &self.road {
            Some(r) => r.minutes_to(to)?,
            None => straight_m * lianxin_map::reach::DETOUR_FACTOR / self.mode.metres_per_minute(),
        };
        (t <= self.minutes).then_some(t)
    }
}

async fn malls(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let map = state.map.get();
    Ok(Json(json!({
        "malls": map.malls.iter().map(|m| json!({
            "id": m.row.id, "code": m.row.code, "name": m.row.name, "address": m.row.address,
            "lat": m.row.lat, "lon": m.row.lon, "merchants": m.merchants.len(),
        })).collect::<Vec<_>>(),
    })))
}

/// A floor's zones, each with its merchants.
type Zones = Vec<(String, Vec<Value>)>;

/// A mall's floors in building order, each with its zones and merchants.
pub(crate) fn floors(m: &crate::map_index::Mall) -> Vec<Value> {
    let mut floors: Vec<(String, Zones)> = Vec::new();
    for r in &m.merchants {
        if floors.last().is_none_or(|(f, _)| *f != r.floor) {
            floors.push((r.floor.clone(), Vec::new()));
        }
        let zones = &mut floors.last_mut().expect("pushed above").1;
        if zones.last().is_none_or(|(z, _)| *z != r.zone) {
            zones.push((r.zone.clone(), Vec::new()));
        }
        zones
            .last_mut()
            .expect("pushed above")
            .1
            .push(json!({ "shop": r.shop, "category": r.category }));
    }
    floors
        .into_iter()
        .map(|(floor, zones)| {
            json!({
                "floor": floor,
                "zones": zones.into_iter().map(|(zone, merchants)| json!({ "zone": zone, "merchants": merchants })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

async fn mall(State(state): State<AppState>, Id(id): Id) -> ApiResult<Json<Value>> {
    let map = state.map.get();
    let m = map.mall(id).ok_or_else(|| ApiError::not_found("mall"))?;
    Ok(Json(json!({
        "mall": {
            "id": m.row.id, "code": m.row.code, "name": m.row.name, "address": m.row.address,
            "lat": m.row.lat, "lon": m.row.lon,
            "entrances": m.row.entrances, "parking": m.row.parking,
            "floors": floors(m),
        },
    })))
}

#[derive(Deserialize, Default)]
pub(crate) struct SearchQuery {
    pub q: Option<String>,
}

/// The most hits a search returns.
const MAX_HITS: usize = 10;

/// "Where is shop X": the best matches in the mall, with floor and zone.
pub(crate) fn search_hits(m: &crate::map_index::Mall, q: &str) -> Vec<Value> {
    let q = q.trim();
    if q.is_empty() {
        return Vec::new();
    }
    m.names
        .search(q, MAX_HITS)
        .into_iter()
        .filter_map(|h| {
            let r = m.merchants.get(h.index)?;
            Some(json!({
                "shop": r.shop, "floor": r.floor, "zone": r.zone, "category": r.category,
                "match": h.kind, "score": h.score,
            }))
        })
        .collect()
}

async fn search_mall(
    State(state): State<AppState>,
    Id(id): Id,
    QueryParams(q): QueryParams<SearchQuery>,
) -> ApiResult<Json<Value>> {
    let map = state.map.get();
    let m = map.mall(id).ok_or_else(|| ApiError::not_found("mall"))?;
    let text = q.q.unwrap_or_default();
    if text.chars().count() > 40 {
        return Err(bad("q", "q must be at most 40 characters"));
    }
    Ok(Json(json!({ "hits": search_hits(m, &text) })))
}

async fn upsert_station(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(raw): JsonBody<RawStation>,
) -> ApiResult<Response> {
    c.require(Permission::ManageMap)?;
    let draft = StationDraft::parse(&raw)?;
    let org_id = match &draft.org {
        Some(code) => Some(
            state
                .store
                .org_by_code(code)
                .await?
                .ok_or_else(|| {
                    ApiError::invalid("org", format!("no organisation has the code {code}"))
                })?
                .id,
        ),
        None => None,
    };
    let place_id = match &draft.place {
        Some(code) => Some(
            state
                .store
                .place_by_code(code)
                .await?
                .ok_or_else(|| ApiError::invalid("place", format!("no place has the code {code}")))?
                .id,
        ),
        None => None,
    };
    let code = draft.code.clone();
    state
        .store
        .upsert_stations(
            &c.actor(),
            vec![NewStation {
                draft,
                org_id,
                place_id,
            }],
        )
        .await?;
    state.map.reload(&state.store).await?;
    // Other servers sharing the database reload when the version moves.
    state
        .store
        .meta_set("map_version", &lianxin_store::now_text())
        .await?;
    let map = state.map.get();
    let s = map
        .stations
        .iter()
        .find(|s| s.row.code == code)
        .ok_or_else(|| ApiError::not_found("station"))?;
    Ok((
        StatusCode::OK,
        Json(json!({ "station": station_json(s, now(&state), Datum::Wgs84) })),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
struct PlanQuery {
    place: Option<String>,
    minutes: Option<String>,
    mode: Option<String>,
    k: Option<String>,
}

/// The district a planning query is about, in the caller's scope.
async fn district(
    state: &AppState,
    c: &crate::auth::Caller,
    raw: Option<&str>,
) -> ApiResult<lianxin_store::registry::Place> {
    let code = raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("place", "place (a district or street code) is required"))?;
    let place = state
        .store
        .place_by_code(code)
        .await?
        .filter(|p| c.account.scope.allows_place(&p.path))
        .ok_or_else(|| ApiError::not_found("place"))?;
    Ok(place)
}

async fn coverage(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<PlanQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let place = district(&state, &c, q.place.as_deref()).await?;
    let minutes = minutes_of(q.minutes.as_deref())?;
    let mode = mode_of(q.mode.as_deref())?;
    let report = crate::map_plan::coverage_report(&state, &place, mode, minutes).await?;
    Ok(Json(report))
}

async fn siting(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<PlanQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let place = district(&state, &c, q.place.as_deref()).await?;
    let minutes = minutes_of(q.minutes.as_deref())?;
    let mode = mode_of(q.mode.as_deref())?;
    let k = match q.k.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => 3,
        Some(k) => k
            .parse::<usize>()
            .ok()
            .filter(|k| (1..=20).contains(k))
            .ok_or_else(|| bad("k", "k must be 1 to 20"))?,
    };
    let report = crate::map_plan::siting_report(&state, &place, mode, minutes, k).await?;
    Ok(Json(report))
}
