-- The rider-friendly map (M7, M8): warm stations, friendly compounds and their rider
-- gates, malls with entrances, parking zones and merchant directories, delivery hot
-- spots, district outlines and an imported road network (SQLite).
-- Coordinates are WGS-84 degrees. See crates/lianxin-store/src/map.rs.

-- 暖新驿站 / 红色蓄能站. `amenities` is a comma list of codes; `hours` the weekly
-- opening hours and `exceptions` the dated ones, both as canonical text.
CREATE TABLE map_stations (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('warm_station', 'energy_station')),
    org_id INTEGER REFERENCES orgs(id),
    place_id INTEGER REFERENCES places(id),
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    address TEXT NOT NULL,
    amenities TEXT NOT NULL,
    hours TEXT NOT NULL,
    exceptions TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- A rider-friendly compound and its rider gates.
CREATE TABLE map_compounds (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    place_id INTEGER REFERENCES places(id),
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    note TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE map_compound_gates (
    id INTEGER PRIMARY KEY,
    compound_id INTEGER NOT NULL REFERENCES map_compounds(id),
    name TEXT NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL
);
CREATE INDEX map_compound_gates_compound ON map_compound_gates(compound_id);

-- A friendly mall, its entrances and temporary parking zones, its directory board.
CREATE TABLE map_malls (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    place_id INTEGER REFERENCES places(id),
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    address TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE map_mall_points (
    id INTEGER PRIMARY KEY,
    mall_id INTEGER NOT NULL REFERENCES map_malls(id),
    kind TEXT NOT NULL CHECK (kind IN ('entrance', 'parking')),
    name TEXT NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    capacity INTEGER,
    note TEXT NOT NULL
);
CREATE INDEX map_mall_points_mall ON map_mall_points(mall_id);
CREATE TABLE map_merchants (
    id INTEGER PRIMARY KEY,
    mall_id INTEGER NOT NULL REFERENCES map_malls(id),
    floor TEXT NOT NULL,
    floor_order INTEGER NOT NULL,
    zone TEXT NOT NULL,
    shop TEXT NOT NULL,
    category TEXT NOT NULL,
    UNIQUE (mall_id, floor, shop)
);

-- Where deliveries start or end, weighted by orders a day.
CREATE TABLE map_hotspots (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    place_id INTEGER REFERENCES places(id),
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    weight REAL NOT NULL
);

-- A district's outline as GeoJSON geometry text (Polygon or MultiPolygon).
CREATE TABLE map_outlines (
    place_id INTEGER PRIMARY KEY REFERENCES places(id),
    geometry TEXT NOT NULL
);

-- The road network imported from an OpenStreetMap extract (`lianxin import osm`),
-- serialised by lianxin_map::road; the newest row is the one in use.
CREATE TABLE map_road_networks (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    summary TEXT NOT NULL,
    bytes BLOB NOT NULL,
    imported_at TEXT NOT NULL
);
