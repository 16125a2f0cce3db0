//! Coordinates: the validated [`LatLon`], the three datums a point may arrive in, and
//! great-circle distance.
//!
//! Lianxin stores WGS-84. Chinese map SDKs speak two other datums, and a point must
//! say which one it is in ([`Datum`]); nothing is guessed:
//!
//! - **GCJ-02** (Amap, Tencent): WGS-84 moved by the published obfuscation (Krasovsky
//!   ellipsoid, the `transform_lat`/`transform_lon` polynomials). It is defined only
//!   inside the usual bounding box of China, so a point *tagged* GCJ-02 outside it is an
//!   error ([`CoordError::OutsideChina`]), while WGS-84 → GCJ-02 outside it is the
//!   identity, as every implementation does.
//! - **BD-09** (Baidu): GCJ-02 moved again by Baidu's `x_pi` formulas.
//!
//! The forward directions (WGS → GCJ → BD) are closed formulas. The backward ones are
//! not, and the one-step inverses most libraries ship are off by up to a few metres, so
//! here both are **iterative**: start at the point and subtract the forward error until
//! it is below 1e-10 degrees (≈ 0.01 mm), at most 30 rounds. Then
//! `from_wgs84(d, to_wgs84(d, p)) == p` to ~1e-9 degrees; in practice 3–5 rounds.
//!
//! Distances are great-circle on the mean-radius sphere ([`EARTH_RADIUS_M`]); over the
//! few kilometres a rider rides the sphere differs from the ellipsoid by under 0.5 %.

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

/// Mean earth radius (IUGG R1), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Why a coordinate was refused. Each message names the value and the rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoordError {
    #[error("latitude {0} is out of range: it must be between -90 and 90 degrees")]
    LatitudeOutOfRange(f64),
    #[error("longitude {0} is out of range: it must be between -180 and 180 degrees")]
    LongitudeOutOfRange(f64),
    #[error("coordinate is not a finite number (latitude {lat}, longitude {lon})")]
    NotFinite { lat: f64, lon: f64 },
    #[error(
        "point (latitude {lat}, longitude {lon}) is tagged {datum} but lies outside China, \
         where {datum} is not defined"
    )]
    OutsideChina { datum: Datum, lat: f64, lon: f64 },
    #[error("unknown coordinate datum {0:?}: expected wgs84, gcj02 or bd09")]
    UnknownDatum(String),
}

impl CoordError {
    /// A stable machine code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            CoordError::LatitudeOutOfRange(_) => "latitude_out_of_range",
            CoordError::LongitudeOutOfRange(_) => "longitude_out_of_range",
            CoordError::NotFinite { .. } => "coordinate_not_finite",
            CoordError::OutsideChina { .. } => "outside_china",
            CoordError::UnknownDatum(_) => "unknown_datum",
        }
    }

    /// The input field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            CoordError::LatitudeOutOfRange(_) => "lat",
            CoordError::LongitudeOutOfRange(_) => "lon",
            CoordError::NotFinite { .. } | CoordError::OutsideChina { .. } => "lat,lon",
            CoordError::UnknownDatum(_) => "datum",
        }
    }
}

/// The datum a coordinate is expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datum {
    /// GPS, OpenStreetMap; what Lianxin stores.
    Wgs84,
    /// "Mars coordinates": Amap (高德), Tencent.
    Gcj02,
    /// Baidu (百度).
    Bd09,
}

impl Datum {
    pub fn as_str(self) -> &'static str {
        match self {
            Datum::Wgs84 => "wgs84",
            Datum::Gcj02 => "gcj02",
            Datum::Bd09 => "bd09",
        }
    }
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Datum::Wgs84 => "WGS-84",
            Datum::Gcj02 => "GCJ-02",
            Datum::Bd09 => "BD-09",
        })
    }
}

impl FromStr for Datum {
    type Err = CoordError;

    /// `wgs84`, `gcj02` or `bd09`, in any case; `-` and `_` are ignored (`WGS-84`).
    fn from_str(s: &str) -> Result<Datum, CoordError> {
        let norm: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        match norm.as_str() {
            "wgs84" => Ok(Datum::Wgs84),
            "gcj02" => Ok(Datum::Gcj02),
            "bd09" => Ok(Datum::Bd09),
            _ => Err(CoordError::UnknownDatum(s.to_owned())),
        }
    }
}

/// A point in degrees: latitude in [-90, 90], longitude in [-180, 180], both finite.
/// An invalid one cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawLatLon")]
pub struct LatLon {
    lat: f64,
    lon: f64,
}

#[derive(Deserialize)]
struct RawLatLon {
    lat: f64,
    lon: f64,
}

impl TryFrom<RawLatLon> for LatLon {
    type Error = CoordError;
    fn try_from(r: RawLatLon) -> Result<LatLon, CoordError> {
        LatLon::new(r.lat, r.lon)
    }
}

impl LatLon {
    pub fn new(lat: f64, lon: f64) -> Result<LatLon, CoordError> {
        if !lat.is_finite() || !lon.is_finite() {
            return Err(CoordError::NotFinite { lat, lon });
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(CoordError::LatitudeOutOfRange(lat));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(CoordError::LongitudeOutOfRange(lon));
        }
        Ok(LatLon { lat, lon })
    }

    /// For results of this crate's own arithmetic on valid points, which stay in range
    /// (the datum shifts are under 0.02°, and only apply well inside the range).
    pub(crate) fn clamped(lat: f64, lon: f64) -> LatLon {
        LatLon {
            lat: lat.clamp(-90.0, 90.0),
            lon: lon.clamp(-180.0, 180.0),
        }
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn lon(self) -> f64 {
        self.lon
    }

    /// Whether the point lies outside the bounding box where GCJ-02 is applied
    /// (longitude 72.004–137.8347, latitude 0.8293–55.8271).
    pub fn outside_china(self) -> bool {
        !(72.004..=137.8347).contains(&self.lon) || !(0.8293..=55.8271).contains(&self.lat)
    }
}

impl fmt::Display for LatLon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:.7}, {:.7})", self.lat, self.lon)
    }
}

/// Great-circle distance in metres (haversine, R = [`EARTH_RADIUS_M`]).
pub fn haversine_m(a: LatLon, b: LatLon) -> f64 {
    let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
    let dp = p2 - p1;
    let dl = (b.lon - a.lon).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// A point given in `datum`, converted to WGS-84. Fails only for GCJ-02 or BD-09
/// points outside China.
pub fn to_wgs84(datum: Datum, p: LatLon) -> Result<LatLon, CoordError> {
    match datum {
        Datum::Wgs84 => Ok(p),
        Datum::Gcj02 => {
            check_china(datum, p)?;
            Ok(gcj02_to_wgs84(p))
        }
        Datum::Bd09 => {
            let gcj = bd09_to_gcj02(p);
            check_china(datum, gcj)?;
            Ok(gcj02_to_wgs84(gcj))
        }
    }
}

/// A WGS-84 point expressed in `datum`. Outside China GCJ-02 is the identity, so BD-09
/// there is Baidu's shift of the WGS-84 point.
pub fn from_wgs84(datum: Datum, p: LatLon) -> LatLon {
    match datum {
        Datum::Wgs84 => p,
        Datum::Gcj02 => wgs84_to_gcj02(p),
        Datum::Bd09 => gcj02_to_bd09(wgs84_to_gcj02(p)),
    }
}

fn check_china(datum: Datum, p: LatLon) -> Result<(), CoordError> {
    if p.outside_china() {
        Err(CoordError::OutsideChina {
            datum,
            lat: p.lat,
            lon: p.lon,
        })
    } else {
        Ok(())
    }
}

// Krasovsky 1940, as the published GCJ-02 algorithm uses it; the eccentricity is
// written with the published digits so it can be recognised.
const KRASOVSKY_A: f64 = 6_378_245.0;
#[allow(clippy::excessive_precision)]
const KRASOVSKY_EE: f64 = 0.006_693_421_622_965_943_23;
const X_PI: f64 = PI * 3000.0 / 180.0;
/// Stop iterating an inverse once a correction is below this many degrees.
const INVERSE_TOLERANCE_DEG: f64 = 1e-10;
const INVERSE_MAX_ROUNDS: usize = 30;

fn transform_lat(x: f64, y: f64) -> f64 {
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn transform_lon(x: f64, y: f64) -> f64 {
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// The GCJ-02 shift (Δlat, Δlon) in degrees at a WGS-84 point inside China.
fn gcj_delta(lat: f64, lon: f64) -> (f64, f64) {
    let d_lat = transform_lat(lon - 105.0, lat - 35.0);
    let d_lon = transform_lon(lon - 105.0, lat - 35.0);
    let rad_lat = lat / 180.0 * PI;
    let magic = 1.0 - KRASOVSKY_EE * rad_lat.sin().powi(2);
    let sqrt_magic = magic.sqrt();
    let d_lat =
        (d_lat * 180.0) / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * PI);
    let d_lon = (d_lon * 180.0) / (KRASOVSKY_A / sqrt_magic * rad_lat.cos() * PI);
    (d_lat, d_lon)
}

/// WGS-84 → GCJ-02 (the identity outside China).
pub fn wgs84_to_gcj02(p: LatLon) -> LatLon {
    if p.outside_china() {
        return p;
    }
    let (d_lat, d_lon) = gcj_delta(p.lat, p.lon);
    LatLon::clamped(p.lat + d_lat, p.lon + d_lon)
}

/// GCJ-02 → WGS-84 by iteration: the inverse of [`wgs84_to_gcj02`] to ~1e-10°.
/// Outside China it is the identity, like the forward direction.
pub fn gcj02_to_wgs84(p: LatLon) -> LatLon {
    if p.outside_china() {
        return p;
    }
    invert(p, wgs84_to_gcj02)
}

/// GCJ-02 → BD-09 (Baidu's published formula).
pub fn gcj02_to_bd09(p: LatLon) -> LatLon {
    let (x, y) = (p.lon, p.lat);
    let z = (x * x + y * y).sqrt() + 0.000_02 * (y * X_PI).sin();
    let theta = y.atan2(x) + 0.000_003 * (x * X_PI).cos();
    LatLon::clamped(z * theta.sin() + 0.006, z * theta.cos() + 0.0065)
}

/// BD-09 → GCJ-02 by iteration on [`gcj02_to_bd09`], starting from Baidu's approximate
/// inverse; exact to ~1e-10°.
pub fn bd09_to_gcj02(p: LatLon) -> LatLon {
    invert_from(bd09_to_gcj02_approx(p), p, gcj02_to_bd09)
}

/// The one-step inverse most libraries ship (off by up to ~1e-6°).
fn bd09_to_gcj02_approx(p: LatLon) -> LatLon {
    let (x, y) = (p.lon - 0.0065, p.lat - 0.006);
    let z = (x * x + y * y).sqrt() - 0.000_02 * (y * X_PI).sin();
    let theta = y.atan2(x) - 0.000_003 * (x * X_PI).cos();
    LatLon::clamped(z * theta.sin(), z * theta.cos())
}

/// Find w with forward(w) ≈ target, starting at `target` itself.
fn invert(target: LatLon, forward: impl Fn(LatLon) -> LatLon) -> LatLon {
    invert_from(target, target, forward)
}

fn invert_from(start: LatLon, target: LatLon, forward: impl Fn(LatLon) -> LatLon) -> LatLon {
    let (mut lat, mut lon) = (start.lat, start.lon);
    for _ in 0..INVERSE_MAX_ROUNDS {
        let f = forward(LatLon::clamped(lat, lon));
        let (e_lat, e_lon) = (f.lat - target.lat, f.lon - target.lon);
        lat -= e_lat;
        lon -= e_lon;
        if e_lat.abs() < INVERSE_TOLERANCE_DEG && e_lon.abs() < INVERSE_TOLERANCE_DEG {
            break;
        }
    }
    LatLon::clamped(lat, lon)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ll(lat: f64, lon: f64) -> LatLon {
        LatLon::new(lat, lon).unwrap()
    }

    fn assert_close(got: LatLon, lat: f64, lon: f64, tol: f64) {
        assert!(
            (got.lat - lat).abs() < tol && (got.lon - lon).abs() < tol,
            "got {got}, expected ({lat}, {lon}) within {tol}"
        );
    }

    #[test]
    fn validation_names_the_problem() {
        assert_eq!(
            LatLon::new(91.0, 0.0),
            Err(CoordError::LatitudeOutOfRange(91.0))
        );
        assert_eq!(
            LatLon::new(0.0, -180.5),
            Err(CoordError::LongitudeOutOfRange(-180.5))
        );
        assert!(matches!(
            LatLon::new(f64::NAN, 1.0),
            Err(CoordError::NotFinite { .. })
        ));
        assert!(LatLon::new(90.0, 180.0).is_ok());
        let msg = LatLon::new(95.5, 1.0).unwrap_err().to_string();
        assert!(msg.contains("95.5") && msg.contains("latitude"), "{msg}");
        let bad: Result<LatLon, _> = serde_json::from_str(r#"{"lat": 100, "lon": 1}"#);
        assert!(bad.is_err());
        let good: LatLon = serde_json::from_str(r#"{"lat": 40.1, "lon": 110.2}"#).unwrap();
        assert_eq!(good, ll(40.1, 110.2));
    }

    #[test]
    fn datum_parses_in_any_case() {
        assert_eq!("WGS84".parse::<Datum>(), Ok(Datum::Wgs84));
        assert_eq!("gcj02".parse::<Datum>(), Ok(Datum::Gcj02));
        assert_eq!("Bd09".parse::<Datum>(), Ok(Datum::Bd09));
        assert_eq!("wgs-84".parse::<Datum>(), Ok(Datum::Wgs84));
        let err = "mars".parse::<Datum>().unwrap_err();
        assert_eq!(err.code(), "unknown_datum");
        assert!(err.to_string().contains("mars"));
    }

    /// Known pairs published in the test suites of eviltransform (Shanghai, Shenzhen,
    /// Beijing) and coordtransform (Tiananmen, 116.404/39.915). eviltransform uses
    /// a = 6378137 where the published algorithm has 6378245, which moves the result by
    /// under 1e-7°.
    #[test]
    fn wgs_to_gcj_known_pairs() {
        let pairs = [
            (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
            (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
            (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
            (39.915, 116.404, 39.91640428150164, 116.41024449916938),
        ];
        for (wlat, wlon, glat, glon) in pairs {
            assert_close(from_wgs84(Datum::Gcj02, ll(wlat, wlon)), glat, glon, 1e-6);
            assert_close(
                to_wgs84(Datum::Gcj02, ll(glat, glon)).unwrap(),
                wlat,
                wlon,
                1e-6,
            );
        }
    }

    /// coordtransform: gcj02tobd09(116.404, 39.915) = (116.41036949371029,
    /// 39.92133699351021); bd09togcj02(116.404, 39.915) = (116.39762729119315,
    /// 39.90865673957631) with its one-step inverse, which we refine.
    #[test]
    fn bd_known_pairs() {
        let gcj = ll(39.915, 116.404);
        assert_close(
            gcj02_to_bd09(gcj),
            39.92133699351021,
            116.41036949371029,
            1e-9,
        );
        assert_close(
            bd09_to_gcj02(gcj),
            39.90865673957631,
            116.39762729119315,
            1e-5,
        );
        let back = gcj02_to_bd09(bd09_to_gcj02(gcj));
        assert_close(back, 39.915, 116.404, 1e-9);
    }

    /// A BD-09 pair published in a CRS library's tests, given to 5 decimals there:
    /// BD-09 (45, 123) → GCJ-02 (44.99365430, 122.99363304) → WGS-84 (44.99171540,
    /// 122.98762210).
    #[test]
    fn bd_to_wgs_known_pair() {
        let bd = ll(45.0, 123.0);
        assert_close(bd09_to_gcj02(bd), 44.99365430, 122.99363304, 5e-6);
        assert_close(
            to_wgs84(Datum::Bd09, bd).unwrap(),
            44.99171540,
            122.98762210,
            5e-6,
        );
    }

    #[test]
    fn gcj_outside_china_is_refused_and_wgs_is_unchanged() {
        let tokyo = ll(35.6812, 139.7671);
        let err = to_wgs84(Datum::Gcj02, tokyo).unwrap_err();
        assert_eq!(err.code(), "outside_china");
        assert!(err.to_string().contains("GCJ-02"), "{err}");
        assert!(to_wgs84(Datum::Bd09, tokyo).is_err());
        assert_eq!(from_wgs84(Datum::Gcj02, tokyo), tokyo);
        assert_eq!(to_wgs84(Datum::Wgs84, tokyo), Ok(tokyo));
    }

    #[test]
    fn haversine_known_distance() {
        // A quarter of the equator, and pole to pole.
        let q = haversine_m(ll(0.0, 10.0), ll(0.0, 100.0));
        assert!((q - EARTH_RADIUS_M * PI / 2.0).abs() < 1e-6, "{q}");
        let pp = haversine_m(ll(90.0, 0.0), ll(-90.0, 0.0));
        assert!((pp - EARTH_RADIUS_M * PI).abs() < 1e-6, "{pp}");
        assert_eq!(haversine_m(ll(1.0, 2.0), ll(1.0, 2.0)), 0.0);
        // One degree of latitude on this sphere.
        let one = haversine_m(ll(0.0, 0.0), ll(1.0, 0.0));
        assert!((one - EARTH_RADIUS_M * PI / 180.0).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn gcj_round_trip(lat in 0.9f64..55.8, lon in 72.1f64..137.8) {
            let p = ll(lat, lon);
            let w = to_wgs84(Datum::Gcj02, p).unwrap();
            let back = from_wgs84(Datum::Gcj02, w);
            prop_assert!((back.lat - lat).abs() < 1e-9 && (back.lon - lon).abs() < 1e-9);
            let fwd = from_wgs84(Datum::Gcj02, p);
            let again = to_wgs84(Datum::Gcj02, fwd).unwrap();
            prop_assert!(haversine_m(again, p) < 1e-3);
        }

        #[test]
        fn bd_round_trip(lat in 1.0f64..55.0, lon in 73.0f64..137.0) {
            let p = ll(lat, lon);
            let w = to_wgs84(Datum::Bd09, p).unwrap();
            let back = from_wgs84(Datum::Bd09, w);
            prop_assert!((back.lat - lat).abs() < 1e-8 && (back.lon - lon).abs() < 1e-8);
        }

        #[test]
        fn haversine_is_a_metric(a in -80f64..80.0, b in -179f64..179.0,
                                 c in -80f64..80.0, d in -179f64..179.0) {
            let (p, q) = (ll(a, b), ll(c, d));
            prop_assert!((haversine_m(p, q) - haversine_m(q, p)).abs() < 1e-6);
            prop_assert!(haversine_m(p, q) <= PI * EARTH_RADIUS_M + 1e-6);
        }
    }
}
