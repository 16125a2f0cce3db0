//! "Within 15 minutes": the radius a travel time reaches when no road network has been
//! imported.
//!
//! Straight-line distance underestimates the way a rider really goes, so a travel time
//! becomes a radius as `minutes × speed ÷ detour factor`. The detour factor (route
//! length ÷ straight-line length) of city street grids is typically 1.2–1.4; we take
//! [`DETOUR_FACTOR`] = 1.3 for both modes. Speeds are those of an unhurried trip:
//! walking 4.8 km/h, and an e-bike at 15 km/h, well under the 25 km/h that the national
//! standard GB 17761-2018 caps e-bikes at, since stops and crossings take their share.
//!
//! | mode | 15 minutes reach |
//! |---|---|
//! | walking | 1,200 m of route ≈ 923 m straight |
//! | e-bike | 3,750 m of route ≈ 2,885 m straight |

use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Route length ÷ straight-line length assumed without a road network.
pub const DETOUR_FACTOR: f64 = 1.3;

/// The default travel time of the service circle.
pub const DEFAULT_MINUTES: f64 = 15.0;

/// How the rider or resident moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Walk,
    Ebike,
}

impl Mode {
    /// Average speed along the route, metres per minute.
    pub fn metres_per_minute(self) -> f64 {
        match self {
            Mode::Walk => 4_800.0 / 60.0,
            Mode::Ebike => 15_000.0 / 60.0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Walk => "walk",
            Mode::Ebike => "ebike",
        }
    }
}

/// An unknown travel mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown travel mode {0:?}: expected walk or ebike")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Mode, UnknownMode> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '_'], "")
            .as_str()
        {
            "walk" | "walking" | "foot" => Ok(Mode::Walk),
            "ebike" | "bike" | "bicycle" => Ok(Mode::Ebike),
            _ => Err(UnknownMode(s.to_owned())),
        }
    }
}

/// The straight-line radius, metres, reached in `minutes` by `mode` (0 for a negative
/// or non-finite time).
pub fn radius_m(mode: Mode, minutes: f64) -> f64 {
    if !minutes.is_finite() || minutes <= 0.0 {
        return 0.0;
    }
    minutes * mode.metres_per_minute() / DETOUR_FACTOR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifteen_minutes() {
        assert!((radius_m(Mode::Walk, DEFAULT_MINUTES) - 923.08).abs() < 0.01);
        assert!((radius_m(Mode::Ebike, DEFAULT_MINUTES) - 2884.62).abs() < 0.01);
        assert_eq!(radius_m(Mode::Walk, -1.0), 0.0);
        assert_eq!("E-Bike".parse::<Mode>(), Ok(Mode::Ebike));
        assert_eq!("walk".parse::<Mode>(), Ok(Mode::Walk));
        assert!("car"
            .parse::<Mode>()
            .unwrap_err()
            .to_string()
            .contains("car"));
    }
}
