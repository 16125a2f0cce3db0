//! The demo's rider-friendly map, generated around the real district centres and
//! labelled synthetic (every name ends in （示例）; the outlines are rough hexagons,
//! not the real boundaries):
//! - the 27 warm stations of 赤峰 松山区 玉龙街道 (M7), some open around the clock with
//!   charging, the rest on day hours with a holiday closure or two;
//! - 包头 青山区's 15-minute circle: red energy stations (红色蓄能站) and clustered
//!   delivery hot spots, so the coverage report and siting have real gaps to find;
//! - 通辽 科尔沁区's friendly malls (M8) with entrances, temporary parking zones and
//!   directory boards by floor and zone, and friendly compounds with rider gates.

use anyhow::{Context, Result};
use lianxin_domain::map::{
    HotspotDraft, MallDraft, MerchantDraft, RawHotspot, RawMall, RawMerchant, RawStation,
    StationDraft,
};
use lianxin_map::synth::{clustered, offset, Rng};
use lianxin_map::LatLon;
use lianxin_server::AppState;
use lianxin_store::audit::Actor;
use lianxin_store::map::{MallPoints, MapPoint, NewCompound, NewMall, NewStation};
use lianxin_store::Store;

const LOADED_MARKER: &str = "demo_map_loaded";

/// (place code, centre lat, lon, outline radius in metres)
const YULONG: (&str, f64, f64, f64) = ("150404.YL", 42.285, 118.925, 2_200.0);
const QINGSHAN: (&str, f64, f64, f64) = ("150204", 40.65, 109.90, 6_000.0);
const HORQIN: (&str, f64, f64, f64) = ("150502", 43.62, 122.26, 5_000.0);

const AMENITY_SETS: [&str; 5] = [
    "water,charging,microwave,seats,first_aid",
    "water,charging,seats",
    "water,microwave,seats,toilet,wifi",
    "water,charging,first_aid,heating,repair",
    "water,seats,toilet",
];
const HOURS: [&str; 4] = [
    "24/7",
    "Mo-Su 08:00-22:00",
    "Mo-Fr 09:00-21:00; Sa,Su 10:00-20:00",
    "Mo-Su 07:00-11:00,16:00-23:00",
];

/// Loads the map once.
pub async fn ensure_loaded(state: &AppState) -> Result<()> {
    let store = &state.store;
    if store.meta_get(LOADED_MARKER).await?.is_some() {
        return Ok(());
    }
    load(store).await?;
    store
        .meta_set(LOADED_MARKER, &lianxin_store::now_text())
        .await?;
    state.map.reload(store).await?;
    Ok(())
}

fn centre(d: (&str, f64, f64, f64)) -> LatLon {
    LatLon::new(d.1, d.2).expect("a district centre")
}

async fn place_id(store: &Store, code: &str) -> Result<i64> {
    Ok(store
        .place_by_code(code)
        .await?
        .with_context(|| format!("the demo place {code} is missing"))?
        .id)
}

fn station(
    code: String,
    name: String,
    kind: &str,
    at: LatLon,
    n: usize,
    place: &str,
) -> Result<StationDraft> {
    let exceptions = if n % 5 == 2 {
        "2026-10-01 off; 2027-01-28 off"
    } else {
        ""
    };
    // Every fourth is open around the clock with charging: a rider at night finds one.
    let (amenities, hours) = if n.is_multiple_of(4) {
        (AMENITY_SETS[0], HOURS[0])
    } else {
        (AMENITY_SETS[n % AMENITY_SETS.len()], HOURS[1 + n % 3])
    };
    StationDraft::parse(&RawStation {
        code,
        name,
        kind: kind.into(),
        place: Some(place.into()),
        lat: at.lat(),
        lon: at.lon(),
        address: String::new(),
        amenities: amenities.into(),
        hours: hours.into(),
        exceptions: exceptions.into(),
        ..Default::default()
    })
    .map_err(|e| anyhow::anyhow!("demo station: {}", e.message))
}

/// A rough hexagon around a centre: clearly not a real boundary.
fn outline(d: (&str, f64, f64, f64)) -> String {
    let c = centre(d);
    let ring: Vec<Vec<f64>> = (0..=6)
        .map(|i| {
            let a = (i % 6) as f64 * std::f64::consts::PI / 3.0 + 0.3;
            let p = offset(c, d.3 * a.sin(), d.3 * a.cos());
            vec![p.lon(), p.lat()]
        })
        .collect();
    serde_json::json!({ "type": "Polygon", "coordinates": [ring] }).to_string()
}

async fn load(store: &Store) -> Result<()> {
    let actor = Actor::system("demo");
    let mut rng = Rng::new(20261128);

    // 玉龙街道: 27 warm stations among its office blocks.
    let yl = centre(YULONG);
    let yl_id = place_id(store, YULONG.0).await?;
    let mut stations = Vec::new();
    for n in 0..27 {
        let at = offset(yl, 1_300.0 * rng.normal(), 1_300.0 * rng.normal());
        stations.push(NewStation {
            draft: station(
                format!("YL-{:02}", n + 1),
                format!("玉龙街道第{}暖新驿站（示例）", n + 1),
                "warm_station",
                at,
                n,
                YULONG.0,
            )?,
            org_id: None,
            place_id: Some(yl_id),
        });
    }
    // 青山区: red energy stations, deliberately fewer than the demand needs.
    let qs = centre(QINGSHAN);
    let qs_id = place_id(store, QINGSHAN.0).await?;
    for n in 0..12 {
        let at = offset(qs, 2_200.0 * rng.normal(), 2_200.0 * rng.normal());
        stations.push(NewStation {
            draft: station(
                format!("QS-{:02}", n + 1),
                format!("青山区红色蓄能站{}号（示例）", n + 1),
                "energy_station",
                at,
                n,
                QINGSHAN.0,
            )?,
            org_id: None,
            place_id: Some(qs_id),
        });
    }
    // 科尔沁区: a warm station at each mall's food floor, a few in the streets.
    let hq = centre(HORQIN);
    let hq_id = place_id(store, HORQIN.0).await?;
    for n in 0..6 {
        let at = offset(hq, 1_800.0 * rng.normal(), 1_800.0 * rng.normal());
        stations.push(NewStation {
            draft: station(
                format!("KEQ-{:02}", n + 1),
                format!("科尔沁区暖新驿站{}号（示例）", n + 1),
                "warm_station",
                at,
                n,
                HORQIN.0,
            )?,
            org_id: None,
            place_id: Some(hq_id),
        });
    }
    store.upsert_stations(&actor, stations).await?;

    // Delivery hot spots: clustered around malls and compounds, weighted by orders.
    let mut hotspots = Vec::new();
    for (d, id, n, prefix, label) in [
        (QINGSHAN, qs_id, 160, "QS-H", "青山区配送热点"),
        (YULONG, yl_id, 60, "YL-H", "玉龙街道配送热点"),
        (HORQIN, hq_id, 60, "KEQ-H", "科尔沁区配送热点"),
    ] {
        for (i, p) in clustered(n, &[centre(d)], 7 + id as u64)
            .into_iter()
            .enumerate()
        {
            let draft = HotspotDraft::parse(&RawHotspot {
                code: format!("{prefix}{:03}", i + 1),
                name: format!("{label}{}（示例）", i + 1),
                place: Some(d.0.into()),
                lat: p.lat(),
                lon: p.lon(),
                weight: Some((5.0 + 60.0 * rng.unit().powi(2)).round()),
                ..Default::default()
            })
            .map_err(|e| anyhow::anyhow!("demo hot spot: {}", e.message))?;
            hotspots.push((draft, Some(id)));
        }
    }
    store.upsert_hotspots(&actor, hotspots).await?;

    // 科尔沁区's friendly malls with their directory boards.
    let malls = [
        (
            "KEQ-M1",
            "科尔沁万达广场（示例）",
            0.0,
            0.0,
            "科尔沁区霍林河大街（示例地址）",
        ),
        (
            "KEQ-M2",
            "通辽百货大楼（示例）",
            900.0,
            -1_200.0,
            "科尔沁区建国路（示例地址）",
        ),
        (
            "KEQ-M3",
            "明仁大街友好商场（示例）",
            -1_400.0,
            700.0,
            "科尔沁区明仁大街（示例地址）",
        ),
    ];
    let mut new_malls = Vec::new();
    for (code, name, north, east, address) in malls {
        let at = offset(hq, north, east);
        let draft = MallDraft::parse(&RawMall {
            code: code.into(),
            name: name.into(),
            place: Some(HORQIN.0.into()),
            lat: at.lat(),
            lon: at.lon(),
            address: address.into(),
            ..Default::default()
        })
        .map_err(|e| anyhow::anyhow!("demo mall: {}", e.message))?;
        let pt = |name: &str, n: f64, e: f64, capacity: Option<i64>, note: &str| {
            let p = offset(at, n, e);
            MapPoint {
                name: name.into(),
                lat: p.lat(),
                lon: p.lon(),
                capacity,
                note: note.into(),
            }
        };
        new_malls.push(NewMall {
            draft,
            place_id: Some(hq_id),
            points: Some(MallPoints {
                entrances: vec![
                    pt(
                        "北门（主入口）",
                        60.0,
                        0.0,
                        None,
                        "骑手取餐请走北门右侧通道",
                    ),
                    pt("东门", 0.0, 70.0, None, "靠近餐饮区电梯"),
                ],
                parking: vec![
                    pt(
                        "北门东侧临时停靠区",
                        75.0,
                        25.0,
                        Some(30),
                        "限停 20 分钟，有地面标线",
                    ),
                    pt("东门临时停靠区", 10.0, 85.0, Some(15), ""),
                ],
            }),
        });
    }
    store.upsert_malls(&actor, new_malls).await?;
    let shops: [(&str, &str, &str, &str); 24] = [
        ("B1", "A区", "星巴克", "咖啡"),
        ("B1", "A区", "瑞幸咖啡", "咖啡"),
        ("B1", "B区", "肯德基", "快餐"),
        ("B1", "B区", "麦当劳", "快餐"),
        ("B1", "C区", "永和大王", "快餐"),
        ("B1", "C区", "华莱士", "快餐"),
        ("1F", "A区", "屈臣氏", "个护"),
        ("1F", "A区", "周大福", "珠宝"),
        ("1F", "B区", "华为", "数码"),
        ("1F", "B区", "小米之家", "数码"),
        ("2F", "A区", "优衣库", "服装"),
        ("2F", "B区", "李宁", "服装"),
        ("3F", "A区", "海底捞火锅", "餐饮"),
        ("3F", "A区", "西贝莜面村", "餐饮"),
        ("3F", "B区", "小肥羊", "餐饮"),
        ("3F", "B区", "蒙古大营烤全羊", "餐饮"),
        ("3F", "C区", "喜茶", "饮品"),
        ("3F", "C区", "蜜雪冰城", "饮品"),
        ("3F", "C区", "奈雪的茶", "饮品"),
        ("4F", "A区", "必胜客", "餐饮"),
        ("4F", "A区", "外婆家", "餐饮"),
        ("4F", "B区", "呷哺呷哺", "餐饮"),
        ("4F", "B区", "老乡鸡", "快餐"),
        ("5F", "A区", "万达影城", "影院"),
    ];
    let mut merchants = Vec::new();
    for (m, (code, ..)) in malls.iter().enumerate() {
        for (i, (floor, zone, shop, category)) in shops.iter().enumerate() {
            // Each mall has most, not all, of the shops.
            if (i + m) % 7 == 6 && *shop != "星巴克" {
                continue;
            }
            merchants.push(
                MerchantDraft::parse(&RawMerchant {
                    mall: code.to_string(),
                    floor: floor.to_string(),
                    zone: zone.to_string(),
                    shop: shop.to_string(),
                    category: category.to_string(),
                })
                .map_err(|e| anyhow::anyhow!("demo merchant: {}", e.message))?,
            );
        }
    }
    store.replace_merchants(&actor, merchants).await?;

    // Friendly compounds with their rider gates.
    let mut compounds = Vec::new();
    for (i, (north, east, name)) in [
        (1_500.0, 300.0, "科尔沁区友好小区 锦绣园（示例）"),
        (-800.0, -1_600.0, "科尔沁区友好小区 和平里（示例）"),
        (400.0, 2_100.0, "科尔沁区友好小区 明仁苑（示例）"),
    ]
    .into_iter()
    .enumerate()
    {
        let at = offset(hq, north, east);
        let g = offset(at, -120.0, 40.0);
        compounds.push(NewCompound {
            code: format!("KEQ-C{}", i + 1),
            name: name.into(),
            place_id: Some(hq_id),
            lat: at.lat(),
            lon: at.lon(),
            note: "骑手友好小区：设骑手专用通道，扫新通码进出".into(),
            gates: vec![MapPoint {
                name: "南门骑手通道".into(),
                lat: g.lat(),
                lon: g.lon(),
                capacity: None,
                note: String::new(),
            }],
        });
    }
    store.upsert_compounds(&actor, compounds).await?;

    for d in [YULONG, QINGSHAN, HORQIN] {
        store
            .set_outline(&actor, place_id(store, d.0).await?, &outline(d))
            .await?;
    }
    Ok(())
}
