//! The rider-friendly map over HTTP: stations written by an administrator and read
//! by anyone (nearest with amenities and open now, within a travel time, datums in
//! and out), a mall's "where is shop X", the planner's coverage report and siting,
//! and bad input for each. Each runs on every engine available.

mod common;

use chrono::Timelike;
use common::*;
use lianxin_domain::map::{
    HotspotDraft, MallDraft, MerchantDraft, RawHotspot, RawMall, RawMerchant,
};
use lianxin_map::synth::offset;
use lianxin_map::{from_wgs84, Datum, LatLon};
use lianxin_store::audit::Actor;
use lianxin_store::map::NewMall;
use serde_json::{json, Value};

macro_rules! on_every_engine {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                for engine in engines() {
                    let app = spawn_app(engine).await;
                    cases::$name(&app).await;
                }
            }
        )*
    };
}

on_every_engine!(
    riders_find_the_nearest_open_station_with_what_they_need,
    datums_are_converted_at_the_edges,
    a_mall_answers_where_is_shop_x,
    planners_see_coverage_and_where_the_next_station_goes,
    bad_map_input_is_a_clear_4xx,
);

/// 开元社区's centre in the test world (WGS-84).
const CENTRE: (f64, f64) = (40.61, 109.97);

fn centre() -> LatLon {
    LatLon::new(CENTRE.0, CENTRE.1).unwrap()
}

fn api(app: &App, path: &str) -> String {
    format!("{}/api/v1{path}", app.base)
}

async fn get(app: &App, path: &str) -> reqwest::Response {
    client().get(api(app, path)).send().await.unwrap()
}

async fn get_json(app: &App, path: &str) -> Value {
    let r = get(app, path).await;
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

/// Posts a station as the administrator; returns the response.
async fn put_station(
    app: &App,
    admin: &(reqwest::Client, String),
    body: Value,
) -> reqwest::Response {
    admin
        .0
        .post(api(app, "/map/stations"))
        .header("x-csrf-token", &admin.1)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn station(code: &str, at: LatLon, amenities: &str, hours: &str) -> Value {
    json!({
        "code": code, "name": format!("{code} 驿站"), "lat": at.lat(), "lon": at.lon(),
        "amenities": amenities, "hours": hours, "place": "150207.BYXL.KY",
    })
}

/// Hours that are closed now: one hour, twelve hours from now (Shanghai).
fn closed_now(app: &App) -> String {
    let h = (app.desk.now().hour() + 8 + 12) % 24;
    format!("Mo-Su {h:02}:00-{:02}:00", h + 1)
}

mod cases {
    use super::*;

    pub async fn riders_find_the_nearest_open_station_with_what_they_need(app: &App) {
        let admin = login(app, "admin").await;
        let c = centre();
        // Nearest: charging but closed now; then water only; then charging and open.
        let closed = closed_now(app);
        for (code, north, amenities, hours) in [
            ("A", 100.0, "charging,water", closed.as_str()),
            ("B", 300.0, "water", "24/7"),
            ("C", 600.0, "充电、饮水", "24/7"),
            ("D", 5_000.0, "charging", "24/7"),
        ] {
            let r = put_station(
                app,
                &admin,
                station(code, offset(c, north, 0.0), amenities, hours),
            )
            .await;
            assert_eq!(r.status(), 200, "{code}: {}", r.text().await.unwrap());
        }
        let q = format!("/map/nearest?lat={}&lon={}", CENTRE.0, CENTRE.1);
        let all = get_json(app, &format!("{q}&k=3")).await;
        let codes = |v: &Value| -> Vec<String> {
            v["stations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["code"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(codes(&all), ["A", "B", "C"]);
        let d: Vec<f64> = all["stations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["distance_m"].as_f64().unwrap())
            .collect();
        assert!(
            (d[0] - 100.0).abs() < 2.0 && d[0] < d[1] && d[1] < d[2],
            "{d:?}"
        );
        assert_eq!(all["stations"][0]["open_now"], false);
        assert!(all["stations"][0]["next_change"].is_string());
        let charging = get_json(app, &format!("{q}&k=3&amenities=charging")).await;
        assert_eq!(codes(&charging), ["A", "C", "D"]);
        let open = get_json(app, &format!("{q}&k=2&amenities=charging&open_now=true")).await;
        assert_eq!(codes(&open), ["C", "D"]);
        assert_eq!(
            open["stations"][0]["amenities"],
            json!(["water", "charging"])
        );

        // Within 15 minutes on foot (straight line × 1.3 at 80 m/min: 923 m).
        let w = get_json(
            app,
            &format!(
                "/map/within?lat={}&lon={}&minutes=15&mode=walk",
                CENTRE.0, CENTRE.1
            ),
        )
        .await;
        assert_eq!(w["method"], "straight_line");
        assert_eq!(w["radius_m"], 923.0);
        assert_eq!(codes(&w), ["A", "B", "C"]);
        let t = w["stations"][2]["travel_minutes"].as_f64().unwrap();
        assert!((t - 600.0 * 1.3 / 80.0).abs() < 0.2, "{t}");
        let e = get_json(
            app,
            &format!(
                "/map/within?lat={}&lon={}&minutes=15&mode=ebike",
                CENTRE.0, CENTRE.1
            ),
        )
        .await;
        assert_eq!(
            codes(&e),
            ["A", "B", "C"],
            "5 km is beyond 15 minutes by e-bike"
        );

        // Writing again updates by code; the page shows the station to anyone.
        let r = put_station(
            app,
            &admin,
            station("B", offset(c, 300.0, 0.0), "water,charging", "24/7"),
        )
        .await;
        assert_eq!(r.status(), 200);
        let charging = get_json(app, &format!("{q}&k=3&amenities=charging&open_now=true")).await;
        assert_eq!(codes(&charging), ["B", "C", "D"]);
        let page = client()
            .get(format!("{}/map", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(page
            .text()
            .await
            .unwrap()
            .contains("/assets/vendor/leaflet.js"));
    }

    pub async fn datums_are_converted_at_the_edges(app: &App) {
        let admin = login(app, "admin").await;
        // A point as Amap (GCJ-02) shows it.
        let wgs = offset(centre(), 200.0, 200.0);
        let gcj = from_wgs84(Datum::Gcj02, wgs);
        let mut body = station("G", gcj, "water", "24/7");
        body["datum"] = json!("gcj02");
        assert_eq!(put_station(app, &admin, body).await.status(), 200);
        let stored = get_json(app, "/map/stations").await;
        let s = &stored["stations"][0];
        let moved = lianxin_map::haversine_m(
            wgs,
            LatLon::new(s["lat"].as_f64().unwrap(), s["lon"].as_f64().unwrap()).unwrap(),
        );
        assert!(moved < 0.05, "kept in WGS-84: {moved} m off");
        for (datum, expected) in [("gcj02", gcj), ("bd09", from_wgs84(Datum::Bd09, wgs))] {
            let v = get_json(app, &format!("/map/stations?datum={datum}")).await;
            let s = &v["stations"][0];
            assert!(
                (s["lat"].as_f64().unwrap() - expected.lat()).abs() < 1e-6,
                "{datum}"
            );
            assert!(
                (s["lon"].as_f64().unwrap() - expected.lon()).abs() < 1e-6,
                "{datum}"
            );
        }
        // A query point in BD-09 finds the station at the same distance.
        let q = from_wgs84(Datum::Bd09, centre());
        let v = get_json(
            app,
            &format!("/map/nearest?lat={}&lon={}&datum=bd09", q.lat(), q.lon()),
        )
        .await;
        let d = v["stations"][0]["distance_m"].as_f64().unwrap();
        assert!(
            (d - lianxin_map::haversine_m(centre(), wgs)).abs() < 1.5,
            "{d}"
        );
    }

    pub async fn a_mall_answers_where_is_shop_x(app: &App) {
        let admin = login(app, "admin").await;
        let store = &app.store.store;
        let at = offset(centre(), 500.0, 0.0);
        let draft = MallDraft::parse(&RawMall {
            code: "M1".into(),
            name: "测试广场".into(),
            lat: at.lat(),
            lon: at.lon(),
            ..Default::default()
        })
        .unwrap();
        store
            .upsert_malls(
                &Actor::system("t"),
                vec![NewMall {
                    draft,
                    place_id: None,
                    points: None,
                }],
            )
            .await
            .unwrap();
        let lines = [
            ("3F", "B区", "星巴克"),
            ("B1", "A区", "麦当劳"),
            ("1F", "A区", "屈臣氏"),
        ];
        let merchants = lines
            .iter()
            .map(|(f, z, s)| {
                MerchantDraft::parse(&RawMerchant {
                    mall: "M1".into(),
                    floor: f.to_string(),
                    zone: z.to_string(),
                    shop: s.to_string(),
                    category: String::new(),
                })
                .unwrap()
            })
            .collect();
        store
            .replace_merchants(&Actor::system("t"), merchants)
            .await
            .unwrap();
        // A write through the API reloads the server's map.
        assert_eq!(
            put_station(app, &admin, station("S", centre(), "water", "24/7"))
                .await
                .status(),
            200
        );
        let malls = get_json(app, "/map/malls").await;
        let id = malls["malls"][0]["id"].as_i64().unwrap();
        let v = get_json(app, &format!("/map/malls/{id}/search?q=xbk")).await;
        assert_eq!(v["hits"][0]["shop"], "星巴克");
        assert_eq!(
            (
                v["hits"][0]["floor"].as_str(),
                v["hits"][0]["zone"].as_str()
            ),
            (Some("3F"), Some("B区"))
        );
        assert_eq!(v["hits"][0]["match"], "pinyin_initials");
        // The floors come in building order: B1, 1F, 3F.
        let m = get_json(app, &format!("/map/malls/{id}")).await;
        let floors: Vec<&str> = m["mall"]["floors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["floor"].as_str().unwrap())
            .collect();
        assert_eq!(floors, ["B1", "1F", "3F"]);
        // The page answers without JavaScript.
        let html = client()
            .get(format!("{}/malls/{id}?q=mdl", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("麦当劳") && html.contains("B1"));
        let r = get(app, "/map/malls/9999").await;
        expect_error(r, 404, "not_found").await;
    }

    pub async fn planners_see_coverage_and_where_the_next_station_goes(app: &App) {
        let admin = login(app, "admin").await;
        let c = centre();
        let store = &app.store.store;
        let ky = store
            .place_by_code("150207.BYXL.KY")
            .await
            .unwrap()
            .unwrap();
        // One hot spot 300 m from the station (covered), one 5 km away (not).
        let hotspots = [("H1", 300.0, 10.0), ("H2", 5_000.0, 30.0)]
            .iter()
            .map(|(code, north, weight)| {
                let p = offset(c, *north, 0.0);
                (
                    HotspotDraft::parse(&RawHotspot {
                        code: code.to_string(),
                        name: code.to_string(),
                        place: Some(ky.code.clone()),
                        lat: p.lat(),
                        lon: p.lon(),
                        weight: Some(*weight),
                        ..Default::default()
                    })
                    .unwrap(),
                    Some(ky.id),
                )
            })
            .collect();
        store
            .upsert_hotspots(&Actor::system("t"), hotspots)
            .await
            .unwrap();
        assert_eq!(
            put_station(app, &admin, station("S1", c, "water", "24/7"))
                .await
                .status(),
            200
        );
        let (official, _) = login(app, "official").await;
        let v: Value = official
            .get(api(app, "/map/coverage?place=150207&minutes=15&mode=walk"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["delivery_points"]["count"], 2, "{v}");
        assert_eq!(v["delivery_points"]["covered"], 1);
        assert_eq!(v["delivery_points"]["share"], 0.25);
        assert_eq!(v["uncovered_clusters"].as_array().unwrap().len(), 1);
        let s: Value = official
            .get(api(
                app,
                "/map/siting?place=150207&minutes=15&mode=walk&k=2",
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(s["initial_share"], 0.25, "{s}");
        let picks = s["picks"].as_array().unwrap();
        assert_eq!(picks.len(), 1, "one pick covers everything: {s}");
        assert_eq!(picks[0]["cumulative_share"], 1.0);
        let at = LatLon::new(
            picks[0]["lat"].as_f64().unwrap(),
            picks[0]["lon"].as_f64().unwrap(),
        )
        .unwrap();
        assert!(lianxin_map::haversine_m(at, offset(c, 5_000.0, 0.0)) <= 923.0);
        // Planning needs a planner, and a place in scope.
        let r = get(app, "/map/coverage?place=150207").await;
        assert_eq!(r.status(), 401);
        let (resident, _) = login(app, "resident").await;
        let r = resident
            .get(api(app, "/map/coverage?place=150207"))
            .send()
            .await
            .unwrap();
        expect_error(r, 403, "forbidden").await;
        let (worker, _) = login(app, "ky.worker").await;
        let r = worker
            .get(api(app, "/map/coverage?place=150207.BYXL.HX"))
            .send()
            .await
            .unwrap();
        expect_error(r, 404, "not_found").await;
    }

    pub async fn bad_map_input_is_a_clear_4xx(app: &App) {
        for (path, field) in [
            ("/map/nearest?lat=95&lon=110", "lat"),
            ("/map/nearest?lat=40&lon=abc", "lon"),
            ("/map/nearest?lon=110", "lat"),
            ("/map/nearest?lat=48.85&lon=2.35&datum=gcj02", "lat,lon"),
            ("/map/nearest?lat=40&lon=110&datum=osgb", "datum"),
            ("/map/nearest?lat=40&lon=110&k=0", "k"),
            ("/map/nearest?lat=40&lon=110&amenities=sauna", "amenities"),
            ("/map/nearest?lat=40&lon=110&open_now=maybe", "open_now"),
            ("/map/within?lat=40&lon=110&minutes=600", "minutes"),
            ("/map/within?lat=40&lon=110&mode=plane", "mode"),
        ] {
            let r = get(app, path).await;
            assert_eq!(r.status(), 400, "{path}");
            let v: Value = r.json().await.unwrap();
            let got = v["error"]["field"].as_str().unwrap_or_default();
            assert!(field.split(',').any(|f| got.contains(f)), "{path}: {v}");
        }
        let admin = login(app, "admin").await;
        for (hours, exceptions, field) in [
            ("Mo 10:00-09:00", "", "hours"),
            ("Mo-Fr 08:00-12:00,11:00-14:00", "", "hours"),
            ("Mo-Su 08:00-20:00", "2026-13-01 off", "exceptions"),
            ("Xx 08:00-20:00", "", "hours"),
        ] {
            let mut body = station("X", centre(), "water", hours);
            body["exceptions"] = json!(exceptions);
            let r = put_station(app, &admin, body).await;
            assert_eq!(r.status(), 422, "{hours}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["field"], field, "{v}");
        }
        let mut body = station("X", centre(), "water", "24/7");
        body["place"] = json!("NOWHERE");
        let r = put_station(app, &admin, body).await;
        assert_eq!(r.status(), 422);
        let r = client()
            .post(api(app, "/map/stations"))
            .json(&station("X", centre(), "water", "24/7"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let (resident, csrf) = login(app, "resident").await;
        let r = resident
            .post(api(app, "/map/stations"))
            .header("x-csrf-token", csrf)
            .json(&station("X", centre(), "water", "24/7"))
            .send()
            .await
            .unwrap();
        expect_error(r, 403, "forbidden").await;
        // Nothing of the refused writes is on the map.
        assert_eq!(get_json(app, "/map/stations").await["stations"], json!([]));
    }
}
