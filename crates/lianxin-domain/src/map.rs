//! The rider-friendly map's records as they come in (M7, M8): warm stations with
//! their amenities and opening hours, malls with their merchant directories, rider
//! gates of friendly compounds, and delivery hot spots. Each raw row — from the API,
//! a CSV or XLSX sheet, or a GeoJSON feature — is parsed here into a validated draft,
//! so an import and the API refuse the same things with the same words.
//!
//! Coordinates arrive tagged with their datum (WGS-84 by default, GCJ-02 from Amap or
//! Tencent, BD-09 from Baidu) and are kept in WGS-84 (`lianxin_map::coord`).

use crate::error::ValidationError;
use chrono::NaiveDate;
use lianxin_map::{to_wgs84, Datum, DayRule, LatLon, OpeningHours};
use serde::{Deserialize, Serialize};

/// What a station offers riders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Amenity {
    Water,
    Microwave,
    Charging,
    FirstAid,
    Seats,
    Toilet,
    Wifi,
    Heating,
    Repair,
}

impl Amenity {
    pub const ALL: [Amenity; 9] = [
        Amenity::Water,
        Amenity::Microwave,
        Amenity::Charging,
        Amenity::FirstAid,
        Amenity::Seats,
        Amenity::Toilet,
        Amenity::Wifi,
        Amenity::Heating,
        Amenity::Repair,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Amenity::Water => "water",
            Amenity::Microwave => "microwave",
            Amenity::Charging => "charging",
            Amenity::FirstAid => "first_aid",
            Amenity::Seats => "seats",
            Amenity::Toilet => "toilet",
            Amenity::Wifi => "wifi",
            Amenity::Heating => "heating",
            Amenity::Repair => "repair",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Amenity::Water => "饮水",
            Amenity::Microwave => "微波炉",
            Amenity::Charging => "充电",
            Amenity::FirstAid => "急救药箱",
            Amenity::Seats => "休息座椅",
            Amenity::Toilet => "卫生间",
            Amenity::Wifi => "无线网络",
            Amenity::Heating => "取暖",
            Amenity::Repair => "维修工具",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Amenity::Water => "Drinking water",
            Amenity::Microwave => "Microwave",
            Amenity::Charging => "Charging",
            Amenity::FirstAid => "First-aid kit",
            Amenity::Seats => "Seats",
            Amenity::Toilet => "Toilet",
            Amenity::Wifi => "Wi-Fi",
            Amenity::Heating => "Heating",
            Amenity::Repair => "Repair tools",
        }
    }

    /// Its bit in a station's amenity mask.
    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// A code or a Chinese label (as an import sheet may have it).
    pub fn parse(raw: &str) -> Option<Amenity> {
        let t = raw.trim();
        Amenity::ALL
            .into_iter()
            .find(|a| a.code() == t.to_ascii_lowercase() || a.label_zh() == t)
    }

    /// A list separated by commas, semicolons, 、 or spaces; duplicates dropped,
    /// sorted. An unknown entry is an error naming it.
    pub fn parse_list(field: &str, raw: &str) -> Result<Vec<Amenity>, ValidationError> {
        let mut out = Vec::new();
        for part in raw
            .split([',', ';', '，', '；', '、', ' ', '|'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let a = Amenity::parse(part).ok_or_else(|| {
                ValidationError::new(
                    field,
                    "unknown_amenity",
                    format!(
                        "unknown amenity {part:?}: use {}",
                        Amenity::ALL.map(|a| a.code()).join(", ")
                    ),
                )
            })?;
            out.push(a);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The amenities as a bit mask.
    pub fn mask(list: &[Amenity]) -> u16 {
        list.iter().fold(0, |m, a| m | a.bit())
    }
}

/// 暖新驿站 or 红色蓄能站: the same service under the names two cities gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StationKind {
    WarmStation,
    EnergyStation,
}

impl StationKind {
    pub fn code(self) -> &'static str {
        match self {
            StationKind::WarmStation => "warm_station",
            StationKind::EnergyStation => "energy_station",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            StationKind::WarmStation => "暖新驿站",
            StationKind::EnergyStation => "红色蓄能站",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            StationKind::WarmStation => "Warm station",
            StationKind::EnergyStation => "Red energy station",
        }
    }

    pub fn parse(raw: &str) -> Result<StationKind, ValidationError> {
        match raw.trim() {
            "" | "warm_station" | "暖新驿站" | "暖“新”驿站" => {
                Ok(StationKind::WarmStation)
            }
            "energy_station" | "红色蓄能站" => Ok(StationKind::EnergyStation),
            other => Err(ValidationError::new(
                "kind",
                "invalid_kind",
                format!("unknown station kind {other:?}: use warm_station or energy_station"),
            )),
        }
    }
}

/// A point given with its datum, kept in WGS-84. `datum` may be empty (WGS-84).
pub fn parse_point(lat: f64, lon: f64, datum: &str) -> Result<LatLon, ValidationError> {
    let datum: Datum = if datum.trim().is_empty() {
        Datum::Wgs84
    } else {
        datum.parse().map_err(|e: lianxin_map::CoordError| {
            ValidationError::new("datum", e.code(), e.to_string())
        })?
    };
    let point = LatLon::new(lat, lon)
        .map_err(|e| ValidationError::new(e.field(), e.code(), e.to_string()))?;
    to_wgs84(datum, point).map_err(|e| ValidationError::new(e.field(), e.code(), e.to_string()))
}

fn text(field: &str, raw: &str, max: usize, required: bool) -> Result<String, ValidationError> {
    let v = raw.trim();
    if (required && v.is_empty()) || v.chars().count() > max {
        return Err(ValidationError::new(
            field,
            "invalid_length",
            if required {
                format!("{field} must be 1 to {max} characters")
            } else {
                format!("{field} must be at most {max} characters")
            },
        ));
    }
    Ok(v.to_string())
}

fn code(field: &str, raw: &str) -> Result<String, ValidationError> {
    let v = text(field, raw, 64, true)?;
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(ValidationError::new(
            field,
            "invalid_code",
            format!("{field} uses letters, digits, '.', '-' and '_' only"),
        ));
    }
    Ok(v)
}

/// A station as it comes in.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RawStation {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub kind: String,
    /// The organisation that runs it (its code), if registered.
    #[serde(default)]
    pub org: Option<String>,
    /// The place it serves (a street or community code), if registered.
    #[serde(default)]
    pub place: Option<String>,
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub datum: String,
    #[serde(default)]
    pub address: String,
    /// e.g. `water,charging,microwave` or `饮水、充电`.
    #[serde(default)]
    pub amenities: String,
    /// Weekly hours, e.g. `Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00` or `24/7`.
    pub hours: String,
    /// Dated exceptions, e.g. `2026-10-01 off; 2026-10-02 09:00-12:00`.
    #[serde(default)]
    pub exceptions: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StationDraft {
    pub code: String,
    pub name: String,
    pub kind: StationKind,
    pub org: Option<String>,
    pub place: Option<String>,
    pub at: LatLon,
    pub address: String,
    pub amenities: Vec<Amenity>,
    pub hours: OpeningHours,
}

impl StationDraft {
    pub fn parse(raw: &RawStation) -> Result<StationDraft, ValidationError> {
        let hours_error = |field: &str, e: lianxin_map::HoursError| {
            ValidationError::new(field, e.code(), e.to_string())
        };
        let weekly = OpeningHours::parse(&raw.hours).map_err(|e| hours_error("hours", e))?;
        let hours = weekly
            .with_exceptions(parse_exceptions(&raw.exceptions)?)
            .map_err(|e| hours_error("exceptions", e))?;
        Ok(StationDraft {
            code: code("code", &raw.code)?,
            name: text("name", &raw.name, 80, true)?,
            kind: StationKind::parse(&raw.kind)?,
            org: raw
                .org
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
            place: raw
                .place
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
            at: parse_point(raw.lat, raw.lon, &raw.datum)?,
            address: text("address", &raw.address, 200, false)?,
            amenities: Amenity::parse_list("amenities", &raw.amenities)?,
            hours,
        })
    }

    /// The exceptions in the text form `parse_exceptions` reads.
    pub fn exceptions_text(&self) -> String {
        exceptions_text(&self.hours)
    }
}

/// Dated exceptions: `YYYY-MM-DD off` or `YYYY-MM-DD 09:00-12:00,14:00-16:00`,
/// separated by `;` or new lines.
pub fn parse_exceptions(raw: &str) -> Result<Vec<(NaiveDate, DayRule)>, ValidationError> {
    let bad = |piece: &str, why: String| {
        ValidationError::new(
            "exceptions",
            "invalid_exception",
            format!("exception {piece:?}: {why}"),
        )
    };
    raw.split([';', '\n', '；'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|piece| {
            let (day, rule) = piece
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad(piece, "write a date, a space, then off or hours".into()))?;
            let day = NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d")
                .map_err(|_| bad(piece, "the date must be YYYY-MM-DD".into()))?;
            let rule: DayRule = rule
                .trim()
                .parse()
                .map_err(|e: lianxin_map::HoursError| bad(piece, e.to_string()))?;
            Ok((day, rule))
        })
        .collect()
}

/// The inverse of [`parse_exceptions`].
pub fn exceptions_text(hours: &OpeningHours) -> String {
    hours
        .exceptions()
        .iter()
        .map(|(d, r)| format!("{d} {r}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A mall (友好商场) as it comes in.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RawMall {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub place: Option<String>,
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub datum: String,
    #[serde(default)]
    pub address: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MallDraft {
    pub code: String,
    pub name: String,
    pub place: Option<String>,
    pub at: LatLon,
    pub address: String,
}

impl MallDraft {
    pub fn parse(raw: &RawMall) -> Result<MallDraft, ValidationError> {
        Ok(MallDraft {
            code: code("code", &raw.code)?,
            name: text("name", &raw.name, 80, true)?,
            place: raw
                .place
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
            at: parse_point(raw.lat, raw.lon, &raw.datum)?,
            address: text("address", &raw.address, 200, false)?,
        })
    }
}

/// One line of a mall's directory board.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RawMerchant {
    pub mall: String,
    pub floor: String,
    #[serde(default)]
    pub zone: String,
    pub shop: String,
    #[serde(default)]
    pub category: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MerchantDraft {
    pub mall: String,
    pub floor: String,
    /// Where the floor sits in the building: B2 = -2, B1 = -1, 1F = 1 …
    pub floor_order: i64,
    pub zone: String,
    pub shop: String,
    pub category: String,
}

impl MerchantDraft {
    pub fn parse(raw: &RawMerchant) -> Result<MerchantDraft, ValidationError> {
        let floor = text("floor", &raw.floor, 16, true)?;
        Ok(MerchantDraft {
            mall: code("mall", &raw.mall)?,
            floor_order: floor_order(&floor).ok_or_else(|| {
                ValidationError::new(
                    "floor",
                    "invalid_floor",
                    format!("floor {floor:?}: write B2, B1, 1F, 2F … (or 负一层, 一层 …)"),
                )
            })?,
            floor,
            zone: text("zone", &raw.zone, 16, false)?,
            shop: text("shop", &raw.shop, 80, true)?,
            category: text("category", &raw.category, 40, false)?,
        })
    }
}

/// Where a floor name sits: `B2` −2, `B1` −1, `1F`/`F1`/`L1`/`1`/`一层`/`1楼` 1,
/// `负一层` −1 … `None` for anything else.
pub fn floor_order(floor: &str) -> Option<i64> {
    let f = floor.trim().to_ascii_uppercase();
    let chinese = |s: &str| -> Option<i64> {
        let digits = [
            "零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "十",
        ];
        digits.iter().position(|d| *d == s).map(|n| n as i64)
    };
    if let Some(rest) = f.strip_prefix('B') {
        return rest.parse::<i64>().ok().filter(|n| *n > 0).map(|n| -n);
    }
    if let Some(rest) = f.strip_prefix("负") {
        let n = rest.trim_end_matches(['层', '楼']);
        return chinese(n)
            .or_else(|| n.parse().ok())
            .filter(|n| *n > 0)
            .map(|n| -n);
    }
    let n = f
        .trim_start_matches(['F', 'L'])
        .trim_end_matches(['F', '层', '楼']);
    n.parse::<i64>()
        .ok()
        .or_else(|| chinese(n))
        .filter(|n| *n > 0 && *n < 200)
}

/// A delivery hot spot: where orders start or end (a mall, a compound, an office
/// block), weighted by orders a day. The coverage report counts these.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RawHotspot {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub place: Option<String>,
    pub lat: f64,
    pub lon: f64,
    #[serde(default)]
    pub datum: String,
    #[serde(default)]
    pub weight: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HotspotDraft {
    pub code: String,
    pub name: String,
    pub place: Option<String>,
    pub at: LatLon,
    pub weight: f64,
}

impl HotspotDraft {
    pub fn parse(raw: &RawHotspot) -> Result<HotspotDraft, ValidationError> {
        let weight = raw.weight.unwrap_or(1.0);
        if !(weight.is_finite() && weight > 0.0 && weight <= 1e6) {
            return Err(ValidationError::new(
                "weight",
                "invalid_weight",
                "weight must be a positive number of orders a day (at most 1,000,000)",
            ));
        }
        Ok(HotspotDraft {
            code: code("code", &raw.code)?,
            name: text("name", &raw.name, 80, true)?,
            place: raw
                .place
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from),
            at: parse_point(raw.lat, raw.lon, &raw.datum)?,
            weight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn station() -> RawStation {
        RawStation {
            code: "YL-01".into(),
            name: "玉龙街道暖新驿站".into(),
            lat: 42.285,
            lon: 118.925,
            amenities: "饮水、充电, microwave".into(),
            hours: "Mo-Su 08:00-22:00".into(),
            exceptions: "2026-10-01 off; 2026-10-02 09:00-12:00".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_station_parses_with_its_amenities_and_exceptions() {
        let d = StationDraft::parse(&station()).unwrap();
        assert_eq!(
            d.amenities,
            vec![Amenity::Water, Amenity::Microwave, Amenity::Charging]
        );
        assert_eq!(d.kind, StationKind::WarmStation);
        assert_eq!(
            d.exceptions_text(),
            "2026-10-01 off; 2026-10-02 09:00-12:00"
        );
        assert_eq!(parse_exceptions(&d.exceptions_text()).unwrap().len(), 2);
    }

    #[test]
    fn bad_stations_are_refused_by_field() {
        let field = |f: &dyn Fn(&mut RawStation)| {
            let mut r = station();
            f(&mut r);
            StationDraft::parse(&r).unwrap_err().field
        };
        assert_eq!(field(&|r| r.lat = 95.0), "lat");
        assert!(field(&|r| r.lon = f64::NAN).contains("lon"));
        assert_eq!(field(&|r| r.hours = "Mo 10:00-09:00".into()), "hours");
        assert_eq!(
            field(&|r| r.hours = "Mo 08:00-12:00,11:00-13:00".into()),
            "hours"
        );
        assert_eq!(field(&|r| r.amenities = "sauna".into()), "amenities");
        assert_eq!(
            field(&|r| r.exceptions = "tomorrow off".into()),
            "exceptions"
        );
        assert_eq!(field(&|r| r.code = "a b".into()), "code");
        // GCJ-02 outside China cannot be converted.
        let e = field(&|r| {
            r.datum = "gcj02".into();
            r.lat = 48.85;
            r.lon = 2.35;
        });
        assert!(e.contains("lat") || e == "datum", "{e}");
    }

    #[test]
    fn a_gcj02_point_is_kept_in_wgs84() {
        let mut r = station();
        r.datum = "gcj02".into();
        let d = StationDraft::parse(&r).unwrap();
        // The offset in Inner Mongolia is several hundred metres.
        let moved = lianxin_map::haversine_m(d.at, LatLon::new(42.285, 118.925).unwrap());
        assert!(moved > 300.0 && moved < 800.0, "{moved}");
    }

    #[test]
    fn floors_sort_as_in_the_building() {
        let order: Vec<_> = ["B2", "负一层", "1F", "L2", "三层", "10楼", "F3"]
            .iter()
            .map(|f| floor_order(f))
            .collect();
        assert_eq!(
            order,
            vec![
                Some(-2),
                Some(-1),
                Some(1),
                Some(2),
                Some(3),
                Some(10),
                Some(3)
            ]
        );
        assert_eq!(floor_order("roof"), None);
        assert_eq!(floor_order("B0"), None);
    }
}
