//! The map in memory: every query of the rider-friendly map is answered from here,
//! never from the database. [`MapIndex::build`] turns the stored map
//! (`Store::map_world`) into a k-d tree of stations with their parsed opening hours
//! and amenity masks, the malls' directories with their name indexes for "where is
//! shop X", and the layers the map page draws. [`MapCache`] holds the current index
//! and swaps in a new one after every write, so readers never wait for a writer.

use lianxin_domain::map::{parse_exceptions, Amenity};
use lianxin_map::{haversine_m, LatLon, NameIndex, OpeningHours, PointIndex, RoadNetwork};
use lianxin_store::map::{CompoundRow, HotspotRow, MallRow, MapWorld, MerchantRow, StationRow};
use lianxin_store::Store;
use serde_json::{json, Value};
use std::sync::{Arc, RwLock};

/// A station ready to be queried.
pub struct Station {
    pub row: StationRow,
    pub at: LatLon,
    pub hours: OpeningHours,
    pub amenities: Vec<Amenity>,
    pub mask: u16,
}

/// A mall with its directory in display order and a name index over it.
pub struct Mall {
    pub row: MallRow,
    pub merchants: Vec<MerchantRow>,
    pub names: NameIndex,
}

pub struct MapIndex {
    pub stations: Vec<Station>,
    pub tree: PointIndex,
    pub compounds: Vec<CompoundRow>,
    pub malls: Vec<Mall>,
    pub hotspots: Vec<HotspotRow>,
    /// District outlines as a GeoJSON FeatureCollection.
    pub outlines: Value,
    /// The outlined places with a position: (code, name, lat, lon), for the page's
    /// district menu.
    pub districts: Vec<(String, String, f64, f64)>,
    /// The imported road network, when there is one: travel times along it.
    pub road: Option<RoadNetwork>,
}

impl MapIndex {
    /// Builds the index. A stored record that no longer parses (it was checked when
    /// written) is left out with a warning rather than taking the map down.
    pub fn build(mut world: MapWorld) -> MapIndex {
        let rows = std::mem::take(&mut world.stations);
        let mut stations = Vec::with_capacity(rows.len());
        for row in rows {
            let parsed = (|| {
                let at = LatLon::new(row.lat, row.lon).ok()?;
                let hours = OpeningHours::parse(&row.hours)
                    .ok()?
                    .with_exceptions(parse_exceptions(&row.exceptions).ok()?)
                    .ok()?;
                let amenities = Amenity::parse_list("amenities", &row.amenities).ok()?;
                Some((at, hours, amenities))
            })();
            match parsed {
                Some((at, hours, amenities)) => stations.push(Station {
                    mask: Amenity::mask(&amenities),
                    row,
                    at,
                    hours,
                    amenities,
                }),
                None => {
                    tracing::warn!(code = %row.code, "a stored station does not parse; left off the map")
                }
            }
        }
        Self::from_stations(stations, world)
    }

    /// The index over already parsed stations (the benchmark builds a million).
    pub fn from_stations(stations: Vec<Station>, world: MapWorld) -> MapIndex {
        let tree = PointIndex::build(&stations.iter().map(|s| s.at).collect::<Vec<_>>());
        let malls = world
            .malls
            .into_iter()
            .map(|row| {
                let merchants: Vec<MerchantRow> = world
                    .merchants
                    .iter()
                    .filter(|m| m.mall_id == row.id)
                    .cloned()
                    .collect();
                let names = NameIndex::new(merchants.iter().map(|m| m.shop.as_str()));
                Mall {
                    row,
                    merchants,
                    names,
                }
            })
            .collect();
        let outlines = json!({
            "type": "FeatureCollection",
            "features": world.outlines.iter().filter_map(|o| {
                let geometry: Value = serde_json::from_str(&o.geometry).ok()?;
                Some(json!({
                    "type": "Feature",
                    "properties": { "code": o.code, "name": o.name },
                    "geometry": geometry,
                }))
            }).collect::<Vec<_>>(),
        });
        let districts = world
            .outlines
            .iter()
            .filter_map(|o| Some((o.code.clone(), o.name.clone(), o.lat?, o.lon?)))
            .collect();
        MapIndex {
            districts,
            stations,
            tree,
            compounds: world.compounds,
            malls,
            hotspots: world.hotspots,
            outlines,
            road: None,
        }
    }

    /// The nearest `k` stations to `from` having every amenity in `mask`, open at
    /// `now` if `open_now`: (index, metres), nearest first.
    pub fn nearest(
        &self,
        from: LatLon,
        k: usize,
        mask: u16,
        open_now: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Vec<(usize, f64)> {
        self.tree
            .nearest(from, k, |i| {
                let s = &self.stations[i as usize];
                s.mask & mask == mask && open_now.is_none_or(|t| s.hours.is_open(t))
            })
            .into_iter()
            .map(|(i, d)| (i as usize, d))
            .collect()
    }

    /// Stations within `radius_m` of `from`: (index, metres), nearest first.
    pub fn stations_within(&self, from: LatLon, radius_m: f64) -> Vec<(usize, f64)> {
        self.tree
            .within(from, radius_m)
            .into_iter()
            .map(|(i, d)| (i as usize, d))
            .collect()
    }

    pub fn mall(&self, id: i64) -> Option<&Mall> {
        self.malls.iter().find(|m| m.row.id == id)
    }
}

/// Metres from `from` to a stored point.
pub fn metres(from: LatLon, lat: f64, lon: f64) -> f64 {
    LatLon::new(lat, lon).map_or(f64::INFINITY, |p| haversine_m(from, p))
}

/// The current index, replaced whole after a write.
pub struct MapCache {
    current: RwLock<Arc<MapIndex>>,
    /// One reload at a time, each reading after the one before: two writes at once
    /// cannot leave the older map in place.
    reloading: tokio::sync::Mutex<()>,
}

impl Default for MapCache {
    fn default() -> Self {
        MapCache {
            current: RwLock::new(Arc::new(MapIndex::build(MapWorld::default()))),
            reloading: tokio::sync::Mutex::new(()),
        }
    }
}

impl MapCache {
    pub fn get(&self) -> Arc<MapIndex> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set(&self, index: MapIndex) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(index);
    }

    /// Reads the stored map again (after a write, and at start).
    pub async fn reload(&self, store: &Store) -> Result<(), lianxin_store::StoreError> {
        let _one_at_a_time = self.reloading.lock().await;
        let world = store.map_world().await?;
        let road = store.road_network().await?;
        let index = tokio::task::spawn_blocking(move || {
            let mut index = MapIndex::build(world);
            index.road = road.and_then(|(summary, bytes)| match RoadNetwork::from_bytes(&bytes) {
                Ok(net) => Some(net),
                Err(e) => {
                    tracing::warn!(error = %e, %summary, "the stored road network does not load; straight-line distances are used");
                    None
                }
            });
            index
        })
            .await
            .map_err(|e| lianxin_store::StoreError::Config(format!("building the map index: {e}")))?;
        self.set(index);
        Ok(())
    }
}
