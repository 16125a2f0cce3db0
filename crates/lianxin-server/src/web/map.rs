//! The rider-friendly map's pages, open to anyone (a rider needs no account to find
//! a station): `/map` draws the district outlines, stations, friendly compounds,
//! malls and hot spots with vendored Leaflet and no tile server (one can be
//! configured), and lists the nearest open stations with the chosen amenities and
//! the 15-minute circle (`assets/map.js`, over `/api/v1/map/*`); `/malls` lists the
//! friendly malls and `/malls/{id}` is one mall's directory by floor and zone with
//! "where is shop X" (answered by the server for `?q=`, live with `assets/mall.js`).

use super::{fail, Frame};
use crate::api::map::{floors, search_hits, SearchQuery};
use crate::error::ApiError;
use crate::extract::{Id, QueryParams};
use crate::i18n::Lang;
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use lianxin_domain::map::Amenity;
use minijinja::{context, Value};
use serde::Deserialize;

/// This area's templates, registered with the others.
pub(super) const TEMPLATES: &[(&str, &str)] = &[
    ("map.html", include_str!("../../templates/map.html")),
    ("malls.html", include_str!("../../templates/malls.html")),
    ("mall.html", include_str!("../../templates/mall.html")),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/map", get(map_page))
        .route("/malls", get(malls_page))
        .route("/malls/{id}", get(mall_page))
}

/// The districts the map offers to jump to: the outlined places with a position.
fn districts(state: &AppState) -> Vec<Value> {
    state
        .map
        .get()
        .districts
        .iter()
        .map(|(code, name, lat, lon)| context! { code, name, lat, lon })
        .collect()
}

/// A page's caller, if signed in (these pages are public).
async fn frame(state: &AppState, headers: &HeaderMap, here: &str) -> Frame {
    let caller = super::page_caller(state, headers).await.ok();
    Frame::new(state, headers, here, caller.as_ref())
}

#[derive(Deserialize, Default)]
struct MapQuery {
    district: Option<String>,
    minutes: Option<String>,
    mode: Option<String>,
}

async fn map_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<MapQuery>, ApiError>,
) -> Response {
    let frame = frame(&state, &headers, "/map").await;
    let q = q.map(|QueryParams(q)| q).unwrap_or_default();
    let lang = frame.lang;
    let amenities: Vec<Value> = Amenity::ALL
        .iter()
        .map(|a| context! { code => a.code(), label => if lang == Lang::Zh { a.label_zh() } else { a.label_en() } })
        .collect();
    let districts = districts(&state);
    let chosen = q.district.as_deref().and_then(|code| {
        districts
            .iter()
            .find(|d| {
                d.get_attr("code")
                    .ok()
                    .and_then(|c| c.as_str().map(|c| c == code))
                    .unwrap_or(false)
            })
            .cloned()
    });
    let district = chosen.or_else(|| districts.first().cloned());
    let centre = district
        .as_ref()
        .map(|d| context! { lat => d.get_attr("lat").ok(), lon => d.get_attr("lon").ok() })
        .unwrap_or_else(|| context! { lat => 40.65, lon => 109.90 });
    let minutes: i64 = q
        .minutes
        .as_deref()
        .and_then(|m| m.parse().ok())
        .filter(|m| (1..=60).contains(m))
        .unwrap_or(15);
    let mode = match q.mode.as_deref() {
        Some("ebike") => "ebike",
        _ => "walk",
    };
    frame.render(
        &state,
        "map.html",
        context! {
            amenities,
            centre,
            zoom => 14,
            district,
            districts,
            tile_url => state.settings.map_tile_url.clone().unwrap_or_default(),
            tile_attribution => state.settings.map_tile_attribution.clone().unwrap_or_default(),
            minutes,
            mode,
        },
    )
}

async fn malls_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<SearchQuery>, ApiError>,
) -> Response {
    let frame = frame(&state, &headers, "/malls").await;
    let q = q
        .map(|QueryParams(q)| q.q.unwrap_or_default())
        .unwrap_or_default();
    let map = state.map.get();
    let malls: Vec<Value> = map
        .malls
        .iter()
        .filter(|m| q.trim().is_empty() || m.row.name.contains(q.trim()))
        .map(|m| {
            let mut floors: Vec<&str> = m.merchants.iter().map(|r| r.floor.as_str()).collect();
            floors.dedup();
            context! {
                id => m.row.id, code => m.row.code.clone(), name => m.row.name.clone(),
                address => m.row.address.clone(), merchants => m.merchants.len(), floors => floors.len(),
            }
        })
        .collect();
    frame.render(&state, "malls.html", context! { malls, q })
}

async fn mall_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Id(id): Id,
    q: Result<QueryParams<SearchQuery>, ApiError>,
) -> Response {
    let frame = frame(&state, &headers, &format!("/malls/{id}")).await;
    let map = state.map.get();
    let Some(m) = map.mall(id) else {
        return fail(&state, &frame, ApiError::not_found("mall"));
    };
    let q = q
        .map(|QueryParams(q)| q.q.unwrap_or_default())
        .unwrap_or_default();
    let q: String = q.trim().chars().take(40).collect();
    let point = |p: &lianxin_store::map::MapPoint| {
        context! { name => p.name.clone(), note => p.note.clone(), capacity => p.capacity }
    };
    frame.render(
        &state,
        "mall.html",
        context! {
            mall => context! {
                id => m.row.id, code => m.row.code.clone(), name => m.row.name.clone(),
                address => m.row.address.clone(), lat => m.row.lat, lon => m.row.lon,
            },
            floors => Value::from_serialize(floors(m)),
            entrances => m.row.entrances.iter().map(point).collect::<Vec<_>>(),
            parking => m.row.parking.iter().map(point).collect::<Vec<_>>(),
            hits => Value::from_serialize(search_hits(m, &q)),
            q,
        },
    )
}
