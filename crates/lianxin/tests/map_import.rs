//! The map's imports, driven through the binary as an operator drives them:
//!
//! - stations from CSV, upserted on their code, all rows or none, the bad row named;
//! - stations from GeoJSON: malformed text names its line and column, a non-Point
//!   geometry names its feature, GCJ-02 outside China is refused;
//! - malls, then their directory boards; a line naming an unknown mall is refused;
//! - `lianxin import osm`: the fixture goes in, random or truncated bytes do not.
//!
//! What was written is read back through `lianxin_store::Store`.

use lianxin_store::Store;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_lianxin");
const KEY: &str = "1111111111111111111111111111111111111111111111111111111111111111";

struct Dir(PathBuf);
impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "lianxin-map-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn db(&self) -> String {
        format!("sqlite://{}", self.0.join("lx.db").display())
    }
    fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }
    async fn store(&self) -> Store {
        Store::open(&self.db()).await.unwrap()
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lianxin(dir: &Dir, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("LIANXIN_DATABASE_URL", dir.db())
        .env("LIANXIN_SECRET_KEY", KEY)
        .current_dir(&dir.0)
        .output()
        .unwrap()
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The import fails; its stderr.
fn fails(out: std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected a failure\n{}\n{err}",
        String::from_utf8_lossy(&out.stdout)
    );
    err
}

fn import(dir: &Dir, kind: &str, file: &Path) -> std::process::Output {
    lianxin(dir, &["import", kind, file.to_str().unwrap()])
}

/// The places the map rows name: 赤峰 → 红山区 → 玉龙街道.
fn setup(dir: &Dir) {
    ok(lianxin(dir, &["migrate"]));
    let csv = dir.write(
        "places.csv",
        "code,name,level,parent_code\n150000,内蒙古自治区,region,\n150400,赤峰市,city,150000\n\
         150402,红山区,county,150400\n150402.YL,玉龙街道,town,150402\n",
    );
    let out = ok(import(dir, "places", &csv));
    assert!(out.contains("imported 4 places"), "{out}");
}

const STATIONS: &str = "code,name,kind,place,lat,lon,amenities,hours,exceptions\n\
YL-01,玉龙街道暖新驿站,warm_station,150402.YL,42.2851,118.9262,\"water,charging\",Mo-Su 08:00-22:00,2026-10-01 off\n\
YL-02,钢铁街驿站,warm_station,150402.YL,42.2790,118.9350,饮水、微波炉,24/7,\n\
YL-03,新华路红色蓄能站,energy_station,,42.2900,118.9200,charging,\"Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00\",\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stations_csv_imports_and_upserts_on_code() {
    let dir = Dir::new("stations");
    setup(&dir);
    let csv = dir.write("stations.csv", STATIONS);
    let out = ok(import(&dir, "stations", &csv));
    assert!(out.contains("imported 3 stations"), "{out}");
    {
        let world = dir.store().await.map_world().await.unwrap();
        let codes: Vec<_> = world.stations.iter().map(|s| s.code.as_str()).collect();
        assert_eq!(codes, ["YL-01", "YL-02", "YL-03"]);
        let s = &world.stations[0];
        assert_eq!(s.name, "玉龙街道暖新驿站");
        assert_eq!(s.place_code.as_deref(), Some("150402.YL"));
        assert_eq!(s.amenities, "water,charging");
        assert_eq!(s.exceptions, "2026-10-01 off");
        assert!((s.lat - 42.2851).abs() < 1e-9 && (s.lon - 118.9262).abs() < 1e-9);
        // Chinese amenity labels are read as their codes.
        assert_eq!(world.stations[1].amenities, "water,microwave");
        assert_eq!(world.stations[2].kind, "energy_station");
    }
    // A second import with a changed name updates the station, not a new one.
    let csv = dir.write(
        "stations2.csv",
        STATIONS.replace("玉龙街道暖新驿站", "玉龙街道暖新驿站（新址）"),
    );
    let out = ok(import(&dir, "stations", &csv));
    assert!(out.contains("imported 3 stations"), "{out}");
    let world = dir.store().await.map_world().await.unwrap();
    assert_eq!(world.stations.len(), 3);
    assert_eq!(world.stations[0].code, "YL-01");
    assert_eq!(world.stations[0].name, "玉龙街道暖新驿站（新址）");
    // The import told running servers to reload.
    let version = dir.store().await.meta_get("map_version").await.unwrap();
    assert!(version.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_station_row_is_named_and_nothing_is_written() {
    let dir = Dir::new("bad-stations");
    setup(&dir);
    let header = "code,name,lat,lon,hours,amenities\n";
    let good = "YL-01,玉龙街道暖新驿站,42.2851,118.9262,24/7,water\n";
    // (row 3, what is wrong, what stderr must say about it)
    let cases = [
        ("YL-02,驿站,95,118.93,24/7,water\n", "lat"),
        ("YL-02,驿站,42.28,118.93,Mo 10:00-09:00,water\n", "hours"),
        (
            "YL-02,驿站,42.28,118.93,\"Mo 08:00-12:00,11:00-13:00\",water\n",
            "hours",
        ),
        ("YL-02,驿站,42.28,118.93,24/7,sauna\n", "amenities"),
        ("YL-02,驿站,north,118.93,24/7,water\n", "lat"),
    ];
    for (row, field) in cases {
        let csv = dir.write("bad.csv", format!("{header}{good}{row}"));
        let err = fails(import(&dir, "stations", &csv));
        assert!(
            err.contains(&format!("row 3: {field}")) && err.contains("nothing was imported"),
            "{row}: {err}"
        );
        if field == "amenities" {
            assert!(err.contains("sauna"), "{err}");
        }
    }
    // A bad row 2 with good rows after it: still row 2, still nothing.
    let csv = dir.write(
        "bad.csv",
        format!("{header}YL-09,驿站,42.28,181,24/7,\n{good}"),
    );
    let err = fails(import(&dir, "stations", &csv));
    assert!(err.contains("row 2: lon"), "{err}");
    // An unknown column is refused at the header.
    let csv = dir.write("bad.csv", format!("code,name,lat,lon,hours,sauna\n{good}"));
    let err = fails(import(&dir, "stations", &csv));
    assert!(err.contains("row 1") && err.contains("sauna"), "{err}");
    let store = dir.store().await;
    let world = store.map_world().await.unwrap();
    assert!(world.stations.is_empty(), "{:?}", world.stations);
    assert_eq!(store.meta_get("map_version").await.unwrap(), None);
}

fn feature(geometry: &str, props: &str) -> String {
    format!(
        "    {{\n      \"type\": \"Feature\",\n      \"geometry\": {geometry},\n      \"properties\": {props}\n    }}"
    )
}

fn collection(features: &[String]) -> String {
    format!(
        "{{\n  \"type\": \"FeatureCollection\",\n  \"features\": [\n{}\n  ]\n}}\n",
        features.join(",\n")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geojson_stations_import_and_bad_geojson_is_located() {
    let dir = Dir::new("geojson");
    setup(&dir);
    let a = feature(
        r#"{"type": "Point", "coordinates": [118.9262, 42.2851]}"#,
        r#"{"code": "YL-01", "name": "玉龙街道暖新驿站", "hours": "24/7", "amenities": "water,charging", "place": "150402.YL"}"#,
    );
    // Given in GCJ-02 (as Amap shows it): kept in WGS-84, a few hundred metres off.
    let b = feature(
        r#"{"type": "Point", "coordinates": [118.9350, 42.2790]}"#,
        r#"{"code": "YL-02", "name": "钢铁街驿站", "hours": "Mo-Fr 08:00-20:00", "datum": "gcj02"}"#,
    );
    let path = dir.write("stations.geojson", collection(&[a.clone(), b.clone()]));
    let out = ok(import(&dir, "stations", &path));
    assert!(out.contains("imported 2 stations"), "{out}");
    let world = dir.store().await.map_world().await.unwrap();
    assert_eq!(world.stations.len(), 2);
    let s1 = &world.stations[0];
    assert!((s1.lat - 42.2851).abs() < 1e-9 && (s1.lon - 118.9262).abs() < 1e-9);
    let s2 = &world.stations[1];
    let moved = lianxin_map::haversine_m(
        lianxin_map::LatLon::new(s2.lat, s2.lon).unwrap(),
        lianxin_map::LatLon::new(42.2790, 118.9350).unwrap(),
    );
    assert!(
        moved > 300.0 && moved < 800.0,
        "GCJ-02 not converted: {moved} m"
    );

    let dir = Dir::new("geojson-bad");
    setup(&dir);
    // Malformed: a missing comma on line 6 (the second property line of feature 1).
    let text = collection(std::slice::from_ref(&a)).replacen("\"geometry\"", "\"geometry\" ", 1);
    let broken = text.replacen("},\n      \"properties\"", "}\n      \"properties\"", 1);
    assert_ne!(broken, text);
    let line = broken
        .lines()
        .position(|l| l.contains("\"properties\""))
        .unwrap()
        + 1;
    let path = dir.write("broken.geojson", &broken);
    let err = fails(import(&dir, "stations", &path));
    assert!(
        err.contains(&format!("line {line}, column")),
        "expected line {line}: {err}"
    );
    // A LineString where a Point belongs: the feature is named.
    let line_string = feature(
        r#"{"type": "LineString", "coordinates": [[118.92, 42.28], [118.93, 42.29]]}"#,
        r#"{"code": "YL-03", "name": "线", "hours": "24/7"}"#,
    );
    let path = dir.write("line.geojson", collection(&[a.clone(), line_string]));
    let err = fails(import(&dir, "stations", &path));
    assert!(err.contains("feature 2") && err.contains("Point"), "{err}");
    // GCJ-02 in Paris cannot be converted and is refused.
    let paris = feature(
        r#"{"type": "Point", "coordinates": [2.35, 48.85]}"#,
        r#"{"code": "FR-01", "name": "巴黎", "hours": "24/7", "datum": "gcj02"}"#,
    );
    let path = dir.write("paris.geojson", collection(&[a.clone(), paris]));
    let err = fails(import(&dir, "stations", &path));
    assert!(err.contains("feature 2"), "{err}");
    assert!(
        err.to_lowercase().contains("china") || err.contains("gcj"),
        "{err}"
    );
    // Not a FeatureCollection.
    let path = dir.write(
        "point.geojson",
        r#"{"type": "Point", "coordinates": [1, 2]}"#,
    );
    let err = fails(import(&dir, "stations", &path));
    assert!(err.contains("FeatureCollection"), "{err}");
    assert!(dir
        .store()
        .await
        .map_world()
        .await
        .unwrap()
        .stations
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchants_fill_a_malls_directory_and_an_unknown_mall_is_named() {
    let dir = Dir::new("malls");
    setup(&dir);
    let malls = dir.write(
        "malls.csv",
        "code,name,lat,lon,address\nTL-WD,通辽万达广场,43.6170,122.2650,科尔沁区建国路\n\
         TL-XH,新華购物中心,43.6200,122.2600,\n",
    );
    let out = ok(import(&dir, "malls", &malls));
    assert!(out.contains("imported 2 malls"), "{out}");
    let merchants = dir.write(
        "merchants.csv",
        "mall,floor,zone,shop,category\nTL-WD,1F,A区,星巴克,餐饮\nTL-WD,B1,,永辉超市,超市\n\
         TL-WD,三层,C区,海底捞,餐饮\nTL-XH,1F,,肯德基,餐饮\n",
    );
    let out = ok(import(&dir, "merchants", &merchants));
    assert!(out.contains("imported 4 directory lines"), "{out}");
    let world = dir.store().await.map_world().await.unwrap();
    let wd = world.malls.iter().find(|m| m.code == "TL-WD").unwrap();
    let board: Vec<_> = world
        .merchants
        .iter()
        .filter(|m| m.mall_id == wd.id)
        .map(|m| (m.floor.as_str(), m.floor_order, m.shop.as_str()))
        .collect();
    // In the building's order: B1 below 1F below 三层.
    assert_eq!(
        board,
        [
            ("B1", -1, "永辉超市"),
            ("1F", 1, "星巴克"),
            ("三层", 3, "海底捞")
        ]
    );
    // Re-importing a mall's board replaces it; the other mall's board stays.
    let merchants = dir.write(
        "merchants.csv",
        "mall,floor,zone,shop,category\nTL-WD,2F,B区,优衣库,服装\n",
    );
    ok(import(&dir, "merchants", &merchants));
    let world = dir.store().await.map_world().await.unwrap();
    let shops: Vec<_> = world.merchants.iter().map(|m| m.shop.as_str()).collect();
    assert_eq!(shops.len(), 2, "{shops:?}");
    assert!(
        shops.contains(&"优衣库") && shops.contains(&"肯德基"),
        "{shops:?}"
    );

    // Row 3 names a mall nobody imported: named, nothing changes.
    let merchants = dir.write(
        "merchants.csv",
        "mall,floor,zone,shop,category\nTL-WD,1F,,喜茶,饮品\nTL-NOPE,1F,,麦当劳,餐饮\n",
    );
    let err = fails(import(&dir, "merchants", &merchants));
    assert!(
        err.contains("row 3") && err.contains("TL-NOPE") && err.contains("nothing was imported"),
        "{err}"
    );
    // A floor nobody can place is caught with its row.
    let merchants = dir.write(
        "merchants.csv",
        "mall,floor,zone,shop,category\nTL-WD,1F,,喜茶,饮品\nTL-WD,roof,,麦当劳,餐饮\n",
    );
    let err = fails(import(&dir, "merchants", &merchants));
    assert!(err.contains("row 3: floor"), "{err}");
    let world = dir.store().await.map_world().await.unwrap();
    let shops: Vec<_> = world.merchants.iter().map(|m| m.shop.as_str()).collect();
    assert!(!shops.contains(&"喜茶"), "{shops:?}");
    assert_eq!(shops.len(), 2, "{shops:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotspots_import_with_weights() {
    let dir = Dir::new("hotspots");
    setup(&dir);
    let csv = dir.write(
        "hotspots.csv",
        "code,name,place,lat,lon,weight\nH1,万达广场,150402.YL,42.27,118.95,120\nH2,钢铁街小区,,42.28,118.94,\n",
    );
    let out = ok(import(&dir, "hotspots", &csv));
    assert!(out.contains("imported 2 hot spots"), "{out}");
    let world = dir.store().await.map_world().await.unwrap();
    let w: Vec<_> = world.hotspots.iter().map(|h| h.weight).collect();
    assert_eq!(w, [120.0, 1.0]);
    let csv = dir.write(
        "hotspots.csv",
        "code,name,place,lat,lon,weight\nH3,x,,42.27,118.95,0\n",
    );
    let err = fails(import(&dir, "hotspots", &csv));
    assert!(err.contains("row 2: weight"), "{err}");
    // An unknown place is named too.
    let csv = dir.write(
        "hotspots.csv",
        "code,name,place,lat,lon,weight\nH3,x,,42.27,118.95,3\nH4,y,999999,42.27,118.95,3\n",
    );
    let err = fails(import(&dir, "hotspots", &csv));
    assert!(
        err.contains("row 3: place") && err.contains("999999"),
        "{err}"
    );
    assert_eq!(
        dir.store().await.map_world().await.unwrap().hotspots.len(),
        2
    );
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../lianxin-map/tests/data/river-grid.osm.pbf"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osm_extracts_import_and_damaged_ones_do_not() {
    let dir = Dir::new("osm");
    ok(lianxin(&dir, &["migrate"]));
    // Random bytes: a clear message, nothing stored.
    let noise: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
    let path = dir.write("noise.osm.pbf", &noise);
    let err = fails(import(&dir, "osm", &path));
    assert!(
        err.contains("noise.osm.pbf") && err.contains("nothing was imported"),
        "{err}"
    );
    // A truncated copy of the fixture.
    let fixture = std::fs::read(FIXTURE).unwrap();
    let path = dir.write("cut.osm.pbf", &fixture[..fixture.len() * 2 / 3]);
    let err = fails(import(&dir, "osm", &path));
    assert!(
        err.contains("cut.osm.pbf") && err.contains("nothing was imported"),
        "{err}"
    );
    // An empty file.
    let path = dir.write("empty.osm.pbf", b"");
    fails(import(&dir, "osm", &path));
    assert!(dir.store().await.road_network().await.unwrap().is_none());
    assert_eq!(
        dir.store().await.meta_get("map_version").await.unwrap(),
        None
    );

    let out = ok(lianxin(&dir, &["import", "osm", FIXTURE]));
    assert!(out.contains("imported 1 road networks"), "{out}");
    let (summary, bytes) = dir
        .store()
        .await
        .road_network()
        .await
        .unwrap()
        .expect("a road network");
    assert!(!bytes.is_empty());
    assert!(
        out.contains(summary.lines().next().unwrap()),
        "{out}\n{summary}"
    );
    // The stored bytes load back as a network.
    lianxin_map::road::RoadNetwork::from_bytes(&bytes).unwrap();
    // A later bad import leaves the good network in place.
    let path = dir.write("noise.osm.pbf", &noise);
    fails(import(&dir, "osm", &path));
    assert!(dir.store().await.road_network().await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compounds_gates_mall_points_and_outlines_import_and_keep_what_they_should() {
    let dir = Dir::new("extras");
    setup(&dir);
    // A compound repeats its columns, one row per rider gate.
    let compounds = dir.write(
        "compounds.csv",
        "code,name,place,lat,lon,note,gate_name,gate_lat,gate_lon\n\
         C1,锦绣园,150402.YL,42.2851,118.9262,骑手友好小区,南门骑手通道,42.2840,118.9262\n\
         C1,锦绣园,150402.YL,42.2851,118.9262,骑手友好小区,北门骑手通道,42.2862,118.9262\n\
         C2,和平里,,42.2800,118.9300,,,,\n",
    );
    let out = ok(import(&dir, "compounds", &compounds));
    assert!(out.contains("imported 2 compounds"), "{out}");
    let world = dir.store().await.map_world().await.unwrap();
    let c1 = world.compounds.iter().find(|c| c.code == "C1").unwrap();
    let gates: Vec<&str> = c1.gates.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(gates, ["南门骑手通道", "北门骑手通道"]);
    assert!(world
        .compounds
        .iter()
        .find(|c| c.code == "C2")
        .unwrap()
        .gates
        .is_empty());

    // Entrances and parking zones; a file of malls alone keeps them.
    let malls = dir.write(
        "malls.csv",
        "code,name,lat,lon\nM1,万达广场,43.6170,122.2650\n",
    );
    ok(import(&dir, "malls", &malls));
    let points = dir.write(
        "points.csv",
        "mall,kind,name,lat,lon,capacity,note\nM1,entrance,北门,43.6175,122.2650,,主入口\n\
         M1,parking,北门临时停靠区,43.6176,122.2652,30,限停20分钟\n",
    );
    let out = ok(import(&dir, "mall-points", &points));
    assert!(
        out.contains("imported 2 entrances and parking zones"),
        "{out}"
    );
    ok(import(&dir, "malls", &malls));
    let world = dir.store().await.map_world().await.unwrap();
    let m1 = &world.malls[0];
    assert_eq!((m1.entrances.len(), m1.parking.len()), (1, 1));
    assert_eq!(m1.parking[0].capacity, Some(30));
    let bad = dir.write(
        "bad-points.csv",
        "mall,kind,name,lat,lon\nM1,entrance,东门,43.6170,122.2660\nM9,parking,南区,43.6,122.2\n",
    );
    let err = fails(import(&dir, "mall-points", &bad));
    assert!(err.contains("row 3") && err.contains("M9"), "{err}");
    let bad = dir.write(
        "bad-kind.csv",
        "mall,kind,name,lat,lon\nM1,roof,天台,43.6170,122.2660\n",
    );
    let err = fails(import(&dir, "mall-points", &bad));
    assert!(err.contains("row 2") && err.contains("kind"), "{err}");
    assert_eq!(
        dir.store().await.map_world().await.unwrap().malls[0]
            .entrances
            .len(),
        1
    );

    // Outlines: a polygon per place, converted from GCJ-02; bad ones named.
    let outline = |code: &str, geometry: &str, datum: &str| {
        format!(
            "{{\"type\":\"FeatureCollection\",\"features\":[{{\"type\":\"Feature\",\"properties\":{{\"code\":\"{code}\",\"datum\":\"{datum}\"}},\"geometry\":{geometry}}}]}}"
        )
    };
    let square = "{\"type\":\"Polygon\",\"coordinates\":[[[118.90,42.27],[118.95,42.27],[118.95,42.30],[118.90,42.30],[118.90,42.27]]]}";
    let file = dir.write("yl.geojson", outline("150402.YL", square, "gcj02"));
    let out = ok(import(&dir, "outlines", &file));
    assert!(out.contains("imported 1 outlines"), "{out}");
    let world = dir.store().await.map_world().await.unwrap();
    let g: serde_json::Value = serde_json::from_str(&world.outlines[0].geometry).unwrap();
    let first = &g["coordinates"][0][0];
    // Kept in WGS-84: GCJ-02 is shifted a few hundred metres from it here.
    assert!(
        (first[0].as_f64().unwrap() - 118.90).abs() > 1e-3,
        "{first}"
    );
    let line = "{\"type\":\"LineString\",\"coordinates\":[[118.9,42.27],[118.95,42.27]]}";
    let err = fails(import(
        &dir,
        "outlines",
        &dir.write("line.geojson", outline("150402.YL", line, "")),
    ));
    assert!(
        err.contains("feature 1") && err.contains("Polygon"),
        "{err}"
    );
    let far = square.replace("42.30", "95.0");
    let err = fails(import(
        &dir,
        "outlines",
        &dir.write("far.geojson", outline("150402.YL", &far, "")),
    ));
    assert!(
        err.contains("feature 1") && err.contains("latitude"),
        "{err}"
    );
    let err = fails(import(
        &dir,
        "outlines",
        &dir.write("nowhere.geojson", outline("NOWHERE", square, "")),
    ));
    assert!(err.contains("NOWHERE"), "{err}");
}
