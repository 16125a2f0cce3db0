//! `lianxin import {stations,malls,merchants,hotspots} FILE` (CSV, XLSX or GeoJSON) and
//! `lianxin import osm FILE.osm.pbf`: the rider-friendly map's data, all or nothing.
//!
//! Rows (or GeoJSON Point features, whose `properties` carry the same columns and
//! whose coordinates give `lat`/`lon`) are parsed with the same drafts the API uses
//! (`lianxin_domain::map`); the first bad one stops the import with its row number
//! (the header is row 1) or feature number and line, and nothing is written. Then
//! the whole file is written in one transaction, and the map version is bumped so
//! running servers reload their map index within half a minute.

use crate::import::{read_table, Table};
use anyhow::{anyhow, bail, Context, Result};
use lianxin_domain::map::{
    HotspotDraft, MallDraft, MerchantDraft, RawHotspot, RawMall, RawMerchant, RawStation,
    StationDraft,
};
use lianxin_map::road::{summary, RoadNetwork};
use lianxin_store::audit::Actor;
use lianxin_store::map::{MapPoint, NewCompound, NewMall, NewStation};
use lianxin_store::Store;
use std::collections::HashMap;
use std::path::Path;

/// The meta key a server watches to reload its map index.
pub const MAP_VERSION: &str = "map_version";

/// What a map import holds.
#[derive(Debug, Clone, Copy)]
pub enum MapKind {
    Stations,
    Malls,
    Merchants,
    Hotspots,
    /// Friendly compounds, one row per rider gate (the compound's columns repeat).
    Compounds,
    /// Malls' entrances and temporary parking zones.
    MallPoints,
}

impl MapKind {
    fn columns(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            MapKind::Stations => (
                &["code", "name", "lat", "lon", "hours"],
                &[
                    "kind",
                    "org",
                    "place",
                    "datum",
                    "address",
                    "amenities",
                    "exceptions",
                ],
            ),
            MapKind::Malls => (
                &["code", "name", "lat", "lon"],
                &["place", "datum", "address"],
            ),
            MapKind::Merchants => (&["mall", "floor", "shop"], &["zone", "category"]),
            MapKind::Compounds => (
                &["code", "name", "lat", "lon"],
                &[
                    "place",
                    "datum",
                    "note",
                    "gate_name",
                    "gate_lat",
                    "gate_lon",
                ],
            ),
            MapKind::MallPoints => (
                &["mall", "kind", "name", "lat", "lon"],
                &["datum", "capacity", "note"],
            ),
            MapKind::Hotspots => (
                &["code", "name", "lat", "lon"],
                &["place", "datum", "weight"],
            ),
        }
    }
}

/// One input record: where it is in the file, and its fields by column.
struct Record {
    at: String,
    fields: HashMap<String, String>,
}

impl Record {
    fn get(&self, name: &str) -> String {
        self.fields
            .get(name)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }
    fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name)).filter(|s| !s.is_empty())
    }
    fn num(&self, name: &str) -> Result<f64> {
        let v = self.get(name);
        v.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| anyhow!("{}: {name} must be a number, not {v:?}", self.at))
    }
}

fn records_of_table(kind: MapKind, t: &Table) -> Result<Vec<Record>> {
    let (required, optional) = kind.columns();
    for r in required {
        if !t.header.iter().any(|h| h == r) {
            bail!(
                "row 1: the header lacks the column {r:?} (required: {})",
                required.join(", ")
            );
        }
    }
    if let Some(unknown) = t.header.iter().find(|h| {
        !h.is_empty() && !required.contains(&h.as_str()) && !optional.contains(&h.as_str())
    }) {
        bail!(
            "row 1: unknown column {unknown:?} (known: {}, {})",
            required.join(", "),
            optional.join(", ")
        );
    }
    Ok(t.rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.iter().any(|c| !c.trim().is_empty()))
        .map(|(i, r)| Record {
            at: format!("row {}", i + 2),
            fields: t.header.iter().cloned().zip(r.iter().cloned()).collect(),
        })
        .collect())
}

/// The line a byte offset is on (1-based).
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// GeoJSON: a FeatureCollection of Point features.
fn records_of_geojson(kind: MapKind, text: &str) -> Result<Vec<Record>> {
    let doc: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        anyhow!(
            "line {}, column {}: not valid GeoJSON: {e}",
            e.line(),
            e.column()
        )
    })?;
    if doc["type"] != "FeatureCollection" {
        bail!("line 1: the GeoJSON must be a FeatureCollection");
    }
    let features = doc["features"]
        .as_array()
        .ok_or_else(|| anyhow!("line 1: the FeatureCollection has no features array"))?;
    let (required, optional) = kind.columns();
    // Where each feature starts, for the error messages (best effort: the n-th
    // `"Feature"` in the text).
    let starts: Vec<usize> = text.match_indices("\"Feature\"").map(|(i, _)| i).collect();
    let mut out = Vec::with_capacity(features.len());
    for (i, f) in features.iter().enumerate() {
        let at = match starts.get(i) {
            Some(&o) => format!("feature {} (line {})", i + 1, line_of(text, o)),
            None => format!("feature {}", i + 1),
        };
        let mut fields = HashMap::new();
        if let Some(props) = f["properties"].as_object() {
            for (k, v) in props {
                let k = k.to_ascii_lowercase();
                if !required.contains(&k.as_str()) && !optional.contains(&k.as_str()) {
                    bail!("{at}: unknown property {k:?}");
                }
                let v = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                };
                fields.insert(k, v);
            }
        }
        let geometry = &f["geometry"];
        match (&kind, geometry["type"].as_str()) {
            (MapKind::Merchants, _) => {}
            (_, Some("Point")) => {
                let c = geometry["coordinates"]
                    .as_array()
                    .filter(|c| c.len() >= 2)
                    .ok_or_else(|| anyhow!("{at}: a Point needs [lon, lat] coordinates"))?;
                let lon = c[0]
                    .as_f64()
                    .ok_or_else(|| anyhow!("{at}: the longitude is not a number"))?;
                let lat = c[1]
                    .as_f64()
                    .ok_or_else(|| anyhow!("{at}: the latitude is not a number"))?;
                fields.insert("lat".into(), lat.to_string());
                fields.insert("lon".into(), lon.to_string());
            }
            (_, Some(other)) => bail!("{at}: the geometry must be a Point, not a {other}"),
            (_, None) => bail!("{at}: the feature has no Point geometry"),
        }
        out.push(Record { at, fields });
    }
    Ok(out)
}

fn records(kind: MapKind, path: &Path) -> Result<Vec<Record>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "geojson" || ext == "json" {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        records_of_geojson(kind, &text)
    } else {
        records_of_table(kind, &read_table(path)?)
    }
}

/// Resolves place and organisation codes once each.
struct Codes<'a> {
    store: &'a Store,
    places: HashMap<String, i64>,
    orgs: HashMap<String, i64>,
}

impl Codes<'_> {
    async fn place(&mut self, at: &str, code: Option<&str>) -> Result<Option<i64>> {
        let Some(code) = code else { return Ok(None) };
        if let Some(id) = self.places.get(code) {
            return Ok(Some(*id));
        }
        let id = self
            .store
            .place_by_code(code)
            .await?
            .ok_or_else(|| anyhow!("{at}: place: no place has the code {code}"))?
            .id;
        self.places.insert(code.to_string(), id);
        Ok(Some(id))
    }
    async fn org(&mut self, at: &str, code: Option<&str>) -> Result<Option<i64>> {
        let Some(code) = code else { return Ok(None) };
        if let Some(id) = self.orgs.get(code) {
            return Ok(Some(*id));
        }
        let id = self
            .store
            .org_by_code(code)
            .await?
            .ok_or_else(|| anyhow!("{at}: org: no organisation has the code {code}"))?
            .id;
        self.orgs.insert(code.to_string(), id);
        Ok(Some(id))
    }
}

/// A record's point from two columns and its `datum`, in WGS-84.
fn point_of(r: &Record, lat: &str, lon: &str) -> Result<lianxin_map::LatLon> {
    lianxin_domain::map::parse_point(r.num(lat)?, r.num(lon)?, &r.get("datum"))
        .map_err(|e| refused(&r.at, e))
}

fn refused(at: &str, e: lianxin_domain::ValidationError) -> anyhow::Error {
    anyhow!("{at}: {}: {}", e.field, e.message)
}

/// Imports a map file of `kind`; returns how many records were written.
pub async fn run(store: &Store, kind: MapKind, path: &Path) -> Result<usize> {
    let records = records(kind, path)?;
    if records.is_empty() {
        bail!("{}: no records", path.display());
    }
    let actor = Actor::system("import");
    let mut codes = Codes {
        store,
        places: HashMap::new(),
        orgs: HashMap::new(),
    };
    let n = match kind {
        MapKind::Stations => {
            let mut out = Vec::with_capacity(records.len());
            for r in &records {
                let raw = RawStation {
                    code: r.get("code"),
                    name: r.get("name"),
                    kind: r.get("kind"),
                    org: r.opt("org"),
                    place: r.opt("place"),
                    lat: r.num("lat")?,
                    lon: r.num("lon")?,
                    datum: r.get("datum"),
                    address: r.get("address"),
                    amenities: r.get("amenities"),
                    hours: r.get("hours"),
                    exceptions: r.get("exceptions"),
                };
                let draft = StationDraft::parse(&raw).map_err(|e| refused(&r.at, e))?;
                let org_id = codes.org(&r.at, draft.org.as_deref()).await?;
                let place_id = codes.place(&r.at, draft.place.as_deref()).await?;
                out.push(NewStation {
                    draft,
                    org_id,
                    place_id,
                });
            }
            store.upsert_stations(&actor, out).await?
        }
        MapKind::Malls => {
            let mut out = Vec::with_capacity(records.len());
            for r in &records {
                let raw = RawMall {
                    code: r.get("code"),
                    name: r.get("name"),
                    place: r.opt("place"),
                    lat: r.num("lat")?,
                    lon: r.num("lon")?,
                    datum: r.get("datum"),
                    address: r.get("address"),
                };
                let draft = MallDraft::parse(&raw).map_err(|e| refused(&r.at, e))?;
                let place_id = codes.place(&r.at, draft.place.as_deref()).await?;
                out.push(NewMall {
                    draft,
                    place_id,
                    // A file of malls keeps their entrances and parking zones.
                    points: None,
                });
            }
            store.upsert_malls(&actor, out).await?
        }
        MapKind::Merchants => {
            let malls: std::collections::HashSet<String> = store
                .map_world()
                .await?
                .malls
                .into_iter()
                .map(|m| m.code)
                .collect();
            let mut seen = std::collections::HashSet::new();
            let mut out = Vec::with_capacity(records.len());
            for r in &records {
                let raw = RawMerchant {
                    mall: r.get("mall"),
                    floor: r.get("floor"),
                    zone: r.get("zone"),
                    shop: r.get("shop"),
                    category: r.get("category"),
                };
                let draft = MerchantDraft::parse(&raw).map_err(|e| refused(&r.at, e))?;
                if !malls.contains(&draft.mall) {
                    bail!("{}: mall: no mall has the code {}", r.at, draft.mall);
                }
                if !seen.insert((draft.mall.clone(), draft.floor.clone(), draft.shop.clone())) {
                    bail!(
                        "{}: shop: {} is listed twice on {} of mall {}",
                        r.at,
                        draft.shop,
                        draft.floor,
                        draft.mall
                    );
                }
                out.push(draft);
            }
            store.replace_merchants(&actor, out).await?
        }
        MapKind::Hotspots => {
            let mut out = Vec::with_capacity(records.len());
            for r in &records {
                let weight = match r.opt("weight") {
                    Some(_) => Some(r.num("weight")?),
                    None => None,
                };
                let raw = RawHotspot {
                    code: r.get("code"),
                    name: r.get("name"),
                    place: r.opt("place"),
                    lat: r.num("lat")?,
                    lon: r.num("lon")?,
                    datum: r.get("datum"),
                    weight,
                };
                let draft = HotspotDraft::parse(&raw).map_err(|e| refused(&r.at, e))?;
                let place_id = codes.place(&r.at, draft.place.as_deref()).await?;
                out.push((draft, place_id));
            }
            store.upsert_hotspots(&actor, out).await?
        }
        MapKind::Compounds => {
            let mut out: Vec<NewCompound> = Vec::new();
            for r in &records {
                let at = point_of(r, "lat", "lon")?;
                let code = r.get("code");
                let name = r.get("name");
                if code.is_empty() || name.is_empty() {
                    bail!("{}: code and name are required", r.at);
                }
                let gate = match r.opt("gate_name") {
                    Some(gate_name) => {
                        let g = point_of(r, "gate_lat", "gate_lon")?;
                        Some(MapPoint {
                            name: gate_name,
                            lat: g.lat(),
                            lon: g.lon(),
                            capacity: None,
                            note: String::new(),
                        })
                    }
                    None => None,
                };
                match out.iter_mut().find(|c| c.code == code) {
                    Some(c) => c.gates.extend(gate),
                    None => {
                        let place_id = codes.place(&r.at, r.opt("place").as_deref()).await?;
                        out.push(NewCompound {
                            code,
                            name,
                            place_id,
                            lat: at.lat(),
                            lon: at.lon(),
                            note: r.get("note"),
                            gates: gate.into_iter().collect(),
                        });
                    }
                }
            }
            store.upsert_compounds(&actor, out).await?
        }
        MapKind::MallPoints => {
            let malls: std::collections::HashSet<String> = store
                .map_world()
                .await?
                .malls
                .into_iter()
                .map(|m| m.code)
                .collect();
            let mut out = Vec::with_capacity(records.len());
            for r in &records {
                let mall = r.get("mall");
                if !malls.contains(&mall) {
                    bail!("{}: mall: no mall has the code {mall}", r.at);
                }
                let kind = match r.get("kind").as_str() {
                    "entrance" | "入口" => "entrance",
                    "parking" | "临时停靠区" | "停靠区" => "parking",
                    other => bail!("{}: kind: {other:?} is neither entrance nor parking", r.at),
                };
                let at = point_of(r, "lat", "lon")?;
                let capacity = match r.opt("capacity") {
                    Some(c) => {
                        Some(c.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(|| {
                            anyhow!("{}: capacity must be a whole number of places", r.at)
                        })?)
                    }
                    None => None,
                };
                out.push((
                    mall,
                    kind.to_string(),
                    MapPoint {
                        name: r.get("name"),
                        lat: at.lat(),
                        lon: at.lon(),
                        capacity,
                        note: r.get("note"),
                    },
                ));
            }
            store.replace_mall_points(&actor, out).await?
        }
    };
    store
        .meta_set(MAP_VERSION, &lianxin_store::now_text())
        .await?;
    Ok(n)
}

/// `lianxin import osm FILE.osm.pbf`: the road network for travel times.
pub async fn run_osm(store: &Store, path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let net = tokio::task::spawn_blocking(move || RoadNetwork::from_pbf_bytes(&bytes))
        .await
        .context("reading the extract")?
        .map_err(|e| anyhow!("{}: {e}; nothing was imported", path.display()))?;
    let text = summary(&net);
    let source = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    store
        .save_road_network(&Actor::system("import"), &source, &text, net.to_bytes())
        .await?;
    store
        .meta_set(MAP_VERSION, &lianxin_store::now_text())
        .await?;
    Ok(text)
}

/// `lianxin import outlines FILE.geojson`: district outlines, a Polygon or
/// MultiPolygon feature per place, its `code` property naming the place (and an
/// optional `datum`); all or none.
pub async fn run_outlines(store: &Store, path: &Path) -> Result<usize> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "line {}, column {}: not valid GeoJSON: {e}",
            e.line(),
            e.column()
        )
    })?;
    let features = doc["features"]
        .as_array()
        .filter(|_| doc["type"] == "FeatureCollection")
        .ok_or_else(|| anyhow!("line 1: the GeoJSON must be a FeatureCollection with features"))?;
    let mut out = Vec::new();
    let mut codes = Codes {
        store,
        places: HashMap::new(),
        orgs: HashMap::new(),
    };
    for (i, f) in features.iter().enumerate() {
        let at = format!("feature {}", i + 1);
        let code = f["properties"]["code"]
            .as_str()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| anyhow!("{at}: the code property (the place's code) is required"))?;
        let datum = f["properties"]["datum"].as_str().unwrap_or("");
        let mut geometry = f["geometry"].clone();
        match geometry["type"].as_str() {
            Some("Polygon") | Some("MultiPolygon") => {}
            Some(other) => {
                bail!("{at}: the geometry must be a Polygon or MultiPolygon, not a {other}")
            }
            None => bail!("{at}: the feature has no geometry"),
        }
        let mut positions = 0usize;
        to_wgs84(&mut geometry["coordinates"], datum, &at, &mut positions)?;
        if positions < 4 {
            bail!("{at}: an outline needs a closed ring of at least 4 positions");
        }
        let place_id = codes
            .place(&at, Some(code))
            .await?
            .expect("a code was given");
        out.push((place_id, geometry.to_string()));
    }
    if out.is_empty() {
        bail!("{}: no features", path.display());
    }
    let n = store.set_outlines(&Actor::system("import"), out).await?;
    store
        .meta_set(MAP_VERSION, &lianxin_store::now_text())
        .await?;
    Ok(n)
}

/// Converts every [lon, lat] position under `v` to WGS-84, checking each.
fn to_wgs84(v: &mut serde_json::Value, datum: &str, at: &str, n: &mut usize) -> Result<()> {
    let items = v
        .as_array_mut()
        .ok_or_else(|| anyhow!("{at}: coordinates must be arrays of [lon, lat]"))?;
    if items.len() >= 2 && items.iter().all(serde_json::Value::is_number) {
        let (lon, lat) = (
            items[0].as_f64().unwrap_or(f64::NAN),
            items[1].as_f64().unwrap_or(f64::NAN),
        );
        let p = lianxin_domain::map::parse_point(lat, lon, datum)
            .map_err(|e| anyhow!("{at}: position {}: {}", *n + 1, e.message))?;
        *v = serde_json::json!([p.lon(), p.lat()]);
        *n += 1;
        return Ok(());
    }
    for item in items {
        to_wgs84(item, datum, at, n)?;
    }
    Ok(())
}
