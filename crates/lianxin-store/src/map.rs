//! The rider-friendly map at rest (migration `0005_map.sql`): stations, friendly
//! compounds with their rider gates, malls with entrances, parking zones and
//! directories, delivery hot spots, district outlines and the imported road network.
//!
//! The map is read whole ([`Store::map_world`]) into the server's in-memory index,
//! which answers every query; this module only keeps it. Writes are upserts on the
//! records' codes, each batch in one transaction — an import applies whole or not at
//! all — with one audit entry per batch. Codes of organisations and places are
//! resolved by the caller (so an import can name the row of an unknown code).

use crate::audit::{self, Actor};
use crate::{now_text, Result, Store, StoreError};
use lianxin_domain::map::{HotspotDraft, MallDraft, MerchantDraft, StationDraft};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A station to write, with its organisation and place resolved.
#[derive(Debug, Clone)]
pub struct NewStation {
    pub draft: StationDraft,
    pub org_id: Option<i64>,
    pub place_id: Option<i64>,
}

/// A station as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StationRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub org: Option<String>,
    pub place_code: Option<String>,
    pub lat: f64,
    pub lon: f64,
    pub address: String,
    pub amenities: String,
    pub hours: String,
    pub exceptions: String,
}

/// A point of a mall or a compound (an entrance, a parking zone, a rider gate).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapPoint {
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub capacity: Option<i64>,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompoundRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub note: String,
    pub gates: Vec<MapPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MallRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub address: String,
    pub entrances: Vec<MapPoint>,
    pub parking: Vec<MapPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MerchantRow {
    pub mall_id: i64,
    pub floor: String,
    pub floor_order: i64,
    pub zone: String,
    pub shop: String,
    pub category: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HotspotRow {
    pub code: String,
    pub name: String,
    pub place_code: Option<String>,
    pub lat: f64,
    pub lon: f64,
    pub weight: f64,
}

/// A district outline: the place and its GeoJSON geometry text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutlineRow {
    pub code: String,
    pub name: String,
    pub path: String,
    /// The place's own position (its centre on the map), if it has one.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub geometry: String,
}

/// Everything on the map, read at once.
#[derive(Debug, Clone, Default)]
pub struct MapWorld {
    pub stations: Vec<StationRow>,
    pub compounds: Vec<CompoundRow>,
    pub malls: Vec<MallRow>,
    pub merchants: Vec<MerchantRow>,
    pub hotspots: Vec<HotspotRow>,
    pub outlines: Vec<OutlineRow>,
}

/// A compound to write: its code, name, place, position, note and rider gates.
#[derive(Debug, Clone)]
pub struct NewCompound {
    pub code: String,
    pub name: String,
    pub place_id: Option<i64>,
    pub lat: f64,
    pub lon: f64,
    pub note: String,
    pub gates: Vec<MapPoint>,
}

/// A mall to write. Its entrances and parking zones, when given, replace the old
/// ones; `None` keeps them (a file of malls alone does not erase them).
#[derive(Debug, Clone)]
pub struct NewMall {
    pub draft: MallDraft,
    pub place_id: Option<i64>,
    pub points: Option<MallPoints>,
}

#[derive(Debug, Clone, Default)]
pub struct MallPoints {
    pub entrances: Vec<MapPoint>,
    pub parking: Vec<MapPoint>,
}

/// One audit entry for a batch written to the map: what, how many, and its details.
async fn audit_batch(
    tx: &mut sqlx::AnyConnection,
    actor: &Actor,
    action: &str,
    entity: &str,
    count: impl ToString,
    detail: serde_json::Value,
) -> Result<()> {
    let detail = (!detail.is_null()).then_some(detail);
    audit::append(
        tx,
        actor,
        action,
        entity,
        &count.to_string(),
        None::<&()>,
        detail.as_ref(),
    )
    .await?;
    Ok(())
}

async fn insert_mall_point(
    tx: &mut sqlx::AnyConnection,
    mall_id: i64,
    kind: &str,
    p: &MapPoint,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO map_mall_points (mall_id, kind, name, lat, lon, capacity, note) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(mall_id)
    .bind(kind)
    .bind(&p.name)
    .bind(p.lat)
    .bind(p.lon)
    .bind(p.capacity)
    .bind(&p.note)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The id of the mall with `code` among `malls` (code, id), or the refusal.
fn mall_id(malls: &[(String, i64)], code: &str, at: &str) -> Result<i64> {
    malls
        .iter()
        .find(|(c, _)| c == code)
        .map(|(_, id)| *id)
        .ok_or_else(|| {
            StoreError::Invalid(lianxin_domain::ValidationError::new(
                "mall",
                "unknown_mall",
                format!("{at}no mall has the code {code}"),
            ))
        })
}

fn point_of(r: &AnyRow) -> Result<MapPoint> {
    Ok(MapPoint {
        name: r.try_get("name")?,
        lat: r.try_get("lat")?,
        lon: r.try_get("lon")?,
        capacity: r.try_get("capacity")?,
        note: r.try_get("note")?,
    })
}

impl Store {
    /// Writes stations (new codes inserted, known codes updated), all or none.
    pub async fn upsert_stations(&self, actor: &Actor, stations: Vec<NewStation>) -> Result<usize> {
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let now = now_text();
                for s in &stations {
                    let d = &s.draft;
                    let amenities: Vec<&str> = d.amenities.iter().map(|a| a.code()).collect();
                    sqlx::query(
                        "INSERT INTO map_stations (code, name, kind, org_id, place_id, lat, lon, address, \
                         amenities, hours, exceptions, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
                         ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
                         org_id = excluded.org_id, place_id = excluded.place_id, lat = excluded.lat, \
                         lon = excluded.lon, address = excluded.address, amenities = excluded.amenities, \
                         hours = excluded.hours, exceptions = excluded.exceptions, updated_at = excluded.updated_at",
                    )
                    .bind(&d.code)
                    .bind(&d.name)
                    .bind(d.kind.code())
                    .bind(s.org_id)
                    .bind(s.place_id)
                    .bind(d.at.lat())
                    .bind(d.at.lon())
                    .bind(&d.address)
                    .bind(amenities.join(","))
                    .bind(d.hours.to_string())
                    .bind(d.exceptions_text())
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                }
                let codes: Vec<&str> = stations.iter().map(|s| s.draft.code.as_str()).collect();
                audit_batch(tx, &actor, "upsert", "map_stations", &codes.len().to_string(), serde_json::json!({ "codes": codes })).await?;
                Ok(stations.len())
            })
        })
        .await
    }

    /// Writes compounds with their rider gates (a compound's gates are replaced).
    pub async fn upsert_compounds(
        &self,
        actor: &Actor,
        compounds: Vec<NewCompound>,
    ) -> Result<usize> {
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let now = now_text();
                for c in &compounds {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO map_compounds (code, name, place_id, lat, lon, note, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO UPDATE SET \
                         name = excluded.name, place_id = excluded.place_id, lat = excluded.lat, \
                         lon = excluded.lon, note = excluded.note RETURNING id",
                    )
                    .bind(&c.code)
                    .bind(&c.name)
                    .bind(c.place_id)
                    .bind(c.lat)
                    .bind(c.lon)
                    .bind(&c.note)
                    .bind(&now)
                    .fetch_one(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM map_compound_gates WHERE compound_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    for g in &c.gates {
                        sqlx::query(
                            "INSERT INTO map_compound_gates (compound_id, name, lat, lon) VALUES ($1, $2, $3, $4)",
                        )
                        .bind(id)
                        .bind(&g.name)
                        .bind(g.lat)
                        .bind(g.lon)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                let codes: Vec<&str> = compounds.iter().map(|c| c.code.as_str()).collect();
                audit_batch(tx, &actor, "upsert", "map_compounds", &codes.len().to_string(), serde_json::json!({ "codes": codes })).await?;
                Ok(compounds.len())
            })
        })
        .await
    }

    /// Writes malls with their entrances and parking zones (replaced).
    pub async fn upsert_malls(&self, actor: &Actor, malls: Vec<NewMall>) -> Result<usize> {
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let now = now_text();
                for m in &malls {
                    let d = &m.draft;
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO map_malls (code, name, place_id, lat, lon, address, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO UPDATE SET \
                         name = excluded.name, place_id = excluded.place_id, lat = excluded.lat, \
                         lon = excluded.lon, address = excluded.address RETURNING id",
                    )
                    .bind(&d.code)
                    .bind(&d.name)
                    .bind(m.place_id)
                    .bind(d.at.lat())
                    .bind(d.at.lon())
                    .bind(&d.address)
                    .bind(&now)
                    .fetch_one(&mut *tx)
                    .await?;
                    let Some(given) = &m.points else { continue };
                    sqlx::query("DELETE FROM map_mall_points WHERE mall_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    for (kind, points) in [("entrance", &given.entrances), ("parking", &given.parking)] {
                        for p in points {
                            insert_mall_point(tx, id, kind, p).await?;
                        }
                    }
                }
                let codes: Vec<&str> = malls.iter().map(|m| m.draft.code.as_str()).collect();
                audit_batch(tx, &actor, "upsert", "map_malls", &codes.len().to_string(), serde_json::json!({ "codes": codes })).await?;
                Ok(malls.len())
            })
        })
        .await
    }

    /// Replaces the directories of the malls the merchants name (every mall named
    /// gets exactly the lines given for it), all or none. An unknown mall code is an
    /// error naming the line (0-based index into `merchants`).
    pub async fn replace_merchants(
        &self,
        actor: &Actor,
        merchants: Vec<MerchantDraft>,
    ) -> Result<usize> {
        let malls = self.map_mall_ids().await?;
        let mut rows = Vec::with_capacity(merchants.len());
        for (i, m) in merchants.iter().enumerate() {
            let id = mall_id(&malls, &m.mall, &format!("line {}: ", i + 1))?;
            rows.push((id, m.clone()));
        }
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let mut ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
                ids.sort_unstable();
                ids.dedup();
                for id in &ids {
                    sqlx::query("DELETE FROM map_merchants WHERE mall_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                for (id, m) in &rows {
                    sqlx::query(
                        "INSERT INTO map_merchants (mall_id, floor, floor_order, zone, shop, category) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(id)
                    .bind(&m.floor)
                    .bind(m.floor_order)
                    .bind(&m.zone)
                    .bind(&m.shop)
                    .bind(&m.category)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Conflict { .. } => StoreError::conflict(
                            "shop",
                            format!("{} is listed twice on {} of the same mall", m.shop, m.floor),
                        ),
                        other => other,
                    })?;
                }
                audit_batch(tx, &actor, "replace", "map_merchants", &rows.len().to_string(), serde_json::json!({ "malls": ids })).await?;
                Ok(rows.len())
            })
        })
        .await
    }

    async fn map_mall_ids(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT code, id FROM map_malls")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("code")?, r.try_get("id")?)))
            .collect()
    }

    /// Writes hot spots (upsert on code), all or none.
    pub async fn upsert_hotspots(
        &self,
        actor: &Actor,
        hotspots: Vec<(HotspotDraft, Option<i64>)>,
    ) -> Result<usize> {
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                for (h, place_id) in &hotspots {
                    sqlx::query(
                        "INSERT INTO map_hotspots (code, name, place_id, lat, lon, weight) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (code) DO UPDATE SET \
                         name = excluded.name, place_id = excluded.place_id, lat = excluded.lat, \
                         lon = excluded.lon, weight = excluded.weight",
                    )
                    .bind(&h.code)
                    .bind(&h.name)
                    .bind(place_id)
                    .bind(h.at.lat())
                    .bind(h.at.lon())
                    .bind(h.weight)
                    .execute(&mut *tx)
                    .await?;
                }
                audit_batch(
                    tx,
                    &actor,
                    "upsert",
                    "map_hotspots",
                    &hotspots.len().to_string(),
                    serde_json::Value::Null,
                )
                .await?;
                Ok(hotspots.len())
            })
        })
        .await
    }

    /// Sets a place's outline (GeoJSON geometry text, checked by the caller).
    pub async fn set_outline(&self, actor: &Actor, place_id: i64, geometry: &str) -> Result<()> {
        self.set_outlines(actor, vec![(place_id, geometry.to_string())])
            .await
            .map(|_| ())
    }

    /// Sets places' outlines, all or none.
    pub async fn set_outlines(&self, actor: &Actor, outlines: Vec<(i64, String)>) -> Result<usize> {
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                for (place_id, geometry) in &outlines {
                    sqlx::query(
                        "INSERT INTO map_outlines (place_id, geometry) VALUES ($1, $2) \
                         ON CONFLICT (place_id) DO UPDATE SET geometry = excluded.geometry",
                    )
                    .bind(place_id)
                    .bind(geometry)
                    .execute(&mut *tx)
                    .await?;
                }
                let places: Vec<i64> = outlines.iter().map(|(p, _)| *p).collect();
                audit_batch(
                    tx,
                    &actor,
                    "set",
                    "map_outlines",
                    &places.len().to_string(),
                    serde_json::json!({ "places": places }),
                )
                .await?;
                Ok(outlines.len())
            })
        })
        .await
    }

    /// Replaces the entrances and parking zones of every mall named, all or none.
    /// Each item is (mall code, `entrance` or `parking`, the point).
    pub async fn replace_mall_points(
        &self,
        actor: &Actor,
        points: Vec<(String, String, MapPoint)>,
    ) -> Result<usize> {
        let malls = self.map_mall_ids().await?;
        let mut rows = Vec::with_capacity(points.len());
        for (code, kind, p) in points {
            let id = mall_id(&malls, &code, "")?;
            if kind != "entrance" && kind != "parking" {
                return Err(StoreError::Invalid(lianxin_domain::ValidationError::new(
                    "kind",
                    "invalid_kind",
                    "kind must be entrance or parking",
                )));
            }
            rows.push((id, kind, p));
        }
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let mut ids: Vec<i64> = rows.iter().map(|(id, _, _)| *id).collect();
                ids.sort_unstable();
                ids.dedup();
                for id in &ids {
                    sqlx::query("DELETE FROM map_mall_points WHERE mall_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                for (id, kind, p) in &rows {
                    insert_mall_point(tx, *id, kind, p).await?;
                }
                audit_batch(
                    tx,
                    &actor,
                    "replace",
                    "map_mall_points",
                    &rows.len().to_string(),
                    serde_json::json!({ "malls": ids }),
                )
                .await?;
                Ok(rows.len())
            })
        })
        .await
    }

    /// Everything on the map (the server's index is built from it).
    pub async fn map_world(&self) -> Result<MapWorld> {
        let stations = sqlx::query(
            "SELECT s.id, s.code, s.name, s.kind, o.name AS org, p.code AS place_code, s.lat, s.lon, \
             s.address, s.amenities, s.hours, s.exceptions FROM map_stations s \
             LEFT JOIN orgs o ON o.id = s.org_id LEFT JOIN places p ON p.id = s.place_id ORDER BY s.code",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| {
            Ok(StationRow {
                id: r.try_get("id")?,
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                kind: r.try_get("kind")?,
                org: r.try_get("org")?,
                place_code: r.try_get("place_code")?,
                lat: r.try_get("lat")?,
                lon: r.try_get("lon")?,
                address: r.try_get("address")?,
                amenities: r.try_get("amenities")?,
                hours: r.try_get("hours")?,
                exceptions: r.try_get("exceptions")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let gates = sqlx::query(
            "SELECT compound_id, name, lat, lon, NULL AS capacity, '' AS note FROM map_compound_gates ORDER BY id",
        )
        .fetch_all(&self.reader)
        .await?;
        let mut compounds =
            sqlx::query("SELECT id, code, name, lat, lon, note FROM map_compounds ORDER BY code")
                .fetch_all(&self.reader)
                .await?
                .iter()
                .map(|r| {
                    Ok(CompoundRow {
                        id: r.try_get("id")?,
                        code: r.try_get("code")?,
                        name: r.try_get("name")?,
                        lat: r.try_get("lat")?,
                        lon: r.try_get("lon")?,
                        note: r.try_get("note")?,
                        gates: Vec::new(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
        for g in &gates {
            let id: i64 = g.try_get("compound_id")?;
            if let Some(c) = compounds.iter_mut().find(|c| c.id == id) {
                c.gates.push(point_of(g)?);
            }
        }
        let points = sqlx::query(
            "SELECT mall_id, kind, name, lat, lon, capacity, note FROM map_mall_points ORDER BY id",
        )
        .fetch_all(&self.reader)
        .await?;
        let mut malls =
            sqlx::query("SELECT id, code, name, lat, lon, address FROM map_malls ORDER BY code")
                .fetch_all(&self.reader)
                .await?
                .iter()
                .map(|r| {
                    Ok(MallRow {
                        id: r.try_get("id")?,
                        code: r.try_get("code")?,
                        name: r.try_get("name")?,
                        lat: r.try_get("lat")?,
                        lon: r.try_get("lon")?,
                        address: r.try_get("address")?,
                        entrances: Vec::new(),
                        parking: Vec::new(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
        for p in &points {
            let id: i64 = p.try_get("mall_id")?;
            let kind: String = p.try_get("kind")?;
            if let Some(m) = malls.iter_mut().find(|m| m.id == id) {
                if kind == "entrance" {
                    m.entrances.push(point_of(p)?);
                } else {
                    m.parking.push(point_of(p)?);
                }
            }
        }
        let merchants = sqlx::query(
            "SELECT mall_id, floor, floor_order, zone, shop, category FROM map_merchants \
             ORDER BY mall_id, floor_order, zone, shop",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| {
            Ok(MerchantRow {
                mall_id: r.try_get("mall_id")?,
                floor: r.try_get("floor")?,
                floor_order: r.try_get("floor_order")?,
                zone: r.try_get("zone")?,
                shop: r.try_get("shop")?,
                category: r.try_get("category")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let hotspots = sqlx::query(
            "SELECT h.code, h.name, p.code AS place_code, h.lat, h.lon, h.weight FROM map_hotspots h \
             LEFT JOIN places p ON p.id = h.place_id ORDER BY h.code",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| {
            Ok(HotspotRow {
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                place_code: r.try_get("place_code")?,
                lat: r.try_get("lat")?,
                lon: r.try_get("lon")?,
                weight: r.try_get("weight")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let outlines = sqlx::query(
            "SELECT p.code, p.name, p.path, p.lat, p.lon, o.geometry FROM map_outlines o \
             JOIN places p ON p.id = o.place_id ORDER BY p.code",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|r| {
            Ok(OutlineRow {
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                path: r.try_get("path")?,
                lat: r.try_get("lat")?,
                lon: r.try_get("lon")?,
                geometry: r.try_get("geometry")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(MapWorld {
            stations,
            compounds,
            malls,
            merchants,
            hotspots,
            outlines,
        })
    }

    /// Keeps an imported road network (the newest is the one in use).
    pub async fn save_road_network(
        &self,
        actor: &Actor,
        source: &str,
        summary: &str,
        bytes: Vec<u8>,
    ) -> Result<i64> {
        let (actor, source, summary) = (actor.clone(), source.to_string(), summary.to_string());
        self.write(move |tx| {
            Box::pin(async move {
                // Only the newest is used: older ones are dropped, not kept as history.
                sqlx::query("DELETE FROM map_road_networks")
                    .execute(&mut *tx)
                    .await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO map_road_networks (source, summary, bytes, imported_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(&source)
                .bind(&summary)
                .bind(bytes)
                .bind(now_text())
                .fetch_one(&mut *tx)
                .await?;
                audit_batch(
                    tx,
                    &actor,
                    "import",
                    "map_road_network",
                    &id.to_string(),
                    serde_json::json!({ "source": source, "summary": summary }),
                )
                .await?;
                Ok(id)
            })
        })
        .await
    }

    /// The road network in use: (summary, bytes), if one was imported.
    pub async fn road_network(&self) -> Result<Option<(String, Vec<u8>)>> {
        let row =
            sqlx::query("SELECT summary, bytes FROM map_road_networks ORDER BY id DESC LIMIT 1")
                .fetch_optional(&self.reader)
                .await?;
        row.map(|r| Ok((r.try_get("summary")?, r.try_get("bytes")?)))
            .transpose()
    }
}

impl Store {
    /// The households registered under `path` (a place subtree), each at the
    /// position of its nearest placed ancestor (household, building, grid or
    /// community): the coverage report counts them. Households with no placed
    /// ancestor that close are left out.
    pub async fn household_points(&self, path: &str) -> Result<Vec<(f64, f64)>> {
        let rows = sqlx::query(
            "SELECT COALESCE(h.lat, b.lat, g.lat, c.lat) AS lat, COALESCE(h.lon, b.lon, g.lon, c.lon) AS lon \
             FROM places h LEFT JOIN places b ON b.id = h.parent_id LEFT JOIN places g ON g.id = b.parent_id \
             LEFT JOIN places c ON c.id = g.parent_id WHERE h.level = 'household' AND h.path LIKE $1",
        )
        .bind(format!("{path}%"))
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let (lat, lon): (Option<f64>, Option<f64>) = (r.try_get("lat")?, r.try_get("lon")?);
            if let (Some(lat), Some(lon)) = (lat, lon) {
                out.push((lat, lon));
            }
        }
        Ok(out)
    }
}
