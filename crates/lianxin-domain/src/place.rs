//! The place hierarchy and its codes.
//!
//! Places form one tree from the autonomous region down to a household:
//! region (自治区) → league/city (盟/市) → banner/county/district (旗/县/区) →
//! sumu/town/street (苏木/乡/镇/街道) → gacha/village/community (嘎查/村/社区) → grid
//! (网格) → building (楼栋) → household (户).
//!
//! The top three levels use the national administrative division codes (GB/T 2260,
//! e.g. `150207` 九原区). Below them the platform mints its own codes by appending
//! a dot and a short segment to the parent's code (`150207.BYXL` → `150207.BYXL.KY`),
//! so a code alone says where a place sits and a subtree is a code prefix.
//!
//! Every place also stores a materialised path of codes (`/150000/150200/150207/`),
//! which is how data scopes are checked: a place is inside a scope when its path
//! starts with the scope's path.

use crate::ValidationError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The level of a place in the tree; each level's parent is the level just above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaceLevel {
    Region,
    City,
    County,
    Town,
    Village,
    Grid,
    Building,
    Household,
}

impl PlaceLevel {
    pub const ALL: [PlaceLevel; 8] = [
        PlaceLevel::Region,
        PlaceLevel::City,
        PlaceLevel::County,
        PlaceLevel::Town,
        PlaceLevel::Village,
        PlaceLevel::Grid,
        PlaceLevel::Building,
        PlaceLevel::Household,
    ];

    pub fn depth(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PlaceLevel::Region => "region",
            PlaceLevel::City => "city",
            PlaceLevel::County => "county",
            PlaceLevel::Town => "town",
            PlaceLevel::Village => "village",
            PlaceLevel::Grid => "grid",
            PlaceLevel::Building => "building",
            PlaceLevel::Household => "household",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            PlaceLevel::Region => "自治区",
            PlaceLevel::City => "盟市",
            PlaceLevel::County => "旗县区",
            PlaceLevel::Town => "苏木乡镇街道",
            PlaceLevel::Village => "嘎查村社区",
            PlaceLevel::Grid => "网格",
            PlaceLevel::Building => "楼栋",
            PlaceLevel::Household => "户",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            PlaceLevel::Region => "Region",
            PlaceLevel::City => "League / city",
            PlaceLevel::County => "Banner / county / district",
            PlaceLevel::Town => "Sumu / town / street",
            PlaceLevel::Village => "Gacha / village / community",
            PlaceLevel::Grid => "Grid",
            PlaceLevel::Building => "Building",
            PlaceLevel::Household => "Household",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        PlaceLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == s.trim())
            .ok_or_else(|| {
                ValidationError::new(
                    "level",
                    "invalid_level",
                    "level must be one of region, city, county, town, village, grid, building, household",
                )
            })
    }

    /// The level a child of this level must have, if any.
    pub fn child(self) -> Option<PlaceLevel> {
        PlaceLevel::ALL.get(self.depth() + 1).copied()
    }

    /// Levels whose codes are national division codes rather than the platform's own.
    pub fn uses_national_code(self) -> bool {
        self <= PlaceLevel::County
    }
}

impl fmt::Display for PlaceLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated place code. See the module documentation for the format.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlaceCode(String);

const MAX_CODE_LEN: usize = 64;
const MAX_SEGMENT_LEN: usize = 12;

impl PlaceCode {
    /// Parses the syntax of a code, without knowing its level.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let code = raw.trim();
        let err = |msg: &str| ValidationError::new("code", "invalid_code", msg);
        if code.is_empty() {
            return Err(err("code is required"));
        }
        if code.len() > MAX_CODE_LEN {
            return Err(err("code is longer than 64 characters"));
        }
        let mut segments = code.split('.');
        let national = segments.next().unwrap_or_default();
        if national.len() != 6 || !national.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(
                "code must start with a 6-digit national division code (e.g. 150207)",
            ));
        }
        for seg in segments {
            if seg.is_empty()
                || seg.len() > MAX_SEGMENT_LEN
                || !seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(err(
                    "each segment after a dot must be 1 to 12 letters, digits or dashes",
                ));
            }
        }
        Ok(PlaceCode(code.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The level that the code's own shape implies for the national part; `None` for
    /// codes the platform minted below the county level.
    pub fn national_level(&self) -> Option<PlaceLevel> {
        if self.0.contains('.') {
            return None;
        }
        let b = self.0.as_bytes();
        if &b[2..6] == b"0000" {
            Some(PlaceLevel::Region)
        } else if &b[4..6] == b"00" {
            Some(PlaceLevel::City)
        } else {
            Some(PlaceLevel::County)
        }
    }

    /// The league/city code this place belongs to: the shard key of regional tables.
    /// Region-level places belong to themselves.
    pub fn region_code(&self) -> String {
        let b = &self.0[..6];
        if &b[2..6] == "0000" {
            b.to_string()
        } else {
            format!("{}00", &b[..4])
        }
    }

    /// Checks that this code fits a place of `level` under a parent with `parent`'s code.
    pub fn check_fits(
        &self,
        level: PlaceLevel,
        parent: Option<(&PlaceCode, PlaceLevel)>,
    ) -> Result<(), ValidationError> {
        let err = |msg: String| ValidationError::new("code", "code_mismatch", msg);
        match (level, parent) {
            (PlaceLevel::Region, None) => {}
            (PlaceLevel::Region, Some(_)) => {
                return Err(ValidationError::new(
                    "parent",
                    "invalid_parent",
                    "a region has no parent",
                ))
            }
            (_, None) => {
                return Err(ValidationError::new(
                    "parent",
                    "parent_required",
                    "every place below the region needs a parent",
                ))
            }
            (_, Some((_, parent_level))) if parent_level.child() != Some(level) => {
                return Err(ValidationError::new(
                    "level",
                    "invalid_level",
                    format!(
                        "a {} cannot sit directly under a {}",
                        level.as_str(),
                        parent_level.as_str()
                    ),
                ))
            }
            _ => {}
        }
        if level.uses_national_code() {
            if self.national_level() != Some(level) {
                return Err(err(format!(
                    "a {} needs a 6-digit national division code of that level",
                    level.as_str()
                )));
            }
            if let Some((p, _)) = parent {
                let prefix = match level {
                    PlaceLevel::City => &p.0[..2],
                    _ => &p.0[..4],
                };
                if !self.0.starts_with(prefix) {
                    return Err(err(format!(
                        "division code does not belong to parent {}",
                        p.0
                    )));
                }
            }
        } else if let Some((p, _)) = parent {
            let rest = self
                .0
                .strip_prefix(p.as_str())
                .and_then(|r| r.strip_prefix('.'));
            if rest.is_none_or(|r| r.is_empty() || r.contains('.')) {
                return Err(err(format!(
                    "code must be the parent's code {} followed by one dot-segment",
                    p.0
                )));
            }
        }
        Ok(())
    }
}

impl TryFrom<String> for PlaceCode {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PlaceCode::parse(&value)
    }
}

impl From<PlaceCode> for String {
    fn from(c: PlaceCode) -> String {
        c.0
    }
}

impl fmt::Display for PlaceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The materialised path of a place whose parent has `parent_path`.
pub fn child_path(parent_path: Option<&str>, code: &PlaceCode) -> String {
    format!("{}{}/", parent_path.unwrap_or("/"), code.as_str())
}

/// A place name: trimmed, 1 to 100 characters.
pub fn parse_name(raw: &str) -> Result<String, ValidationError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ValidationError::new("name", "required", "name is required"));
    }
    if name.chars().count() > 100 {
        return Err(ValidationError::new(
            "name",
            "too_long",
            "name is longer than 100 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "name",
            "invalid_characters",
            "name contains control characters",
        ));
    }
    Ok(name.to_string())
}

/// A WGS-84 point. Stored as WGS-84; other datums are converted at the edges.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    pub fn new(lat: f64, lon: f64) -> Result<Self, ValidationError> {
        if !(-90.0..=90.0).contains(&lat) || !lat.is_finite() {
            return Err(ValidationError::new(
                "lat",
                "out_of_range",
                "latitude must be between -90 and 90",
            ));
        }
        if !(-180.0..=180.0).contains(&lon) || !lon.is_finite() {
            return Err(ValidationError::new(
                "lon",
                "out_of_range",
                "longitude must be between -180 and 180",
            ));
        }
        Ok(GeoPoint { lat, lon })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> PlaceCode {
        PlaceCode::parse(s).unwrap()
    }

    #[test]
    fn national_levels_follow_the_code_shape() {
        assert_eq!(code("150000").national_level(), Some(PlaceLevel::Region));
        assert_eq!(code("150200").national_level(), Some(PlaceLevel::City));
        assert_eq!(code("150207").national_level(), Some(PlaceLevel::County));
        assert_eq!(code("150207.BYXL").national_level(), None);
        assert_eq!(code("150207.BYXL").region_code(), "150200");
        assert_eq!(code("150000").region_code(), "150000");
    }

    #[test]
    fn codes_must_fit_their_parent() {
        let region = code("150000");
        let city = code("150200");
        let county = code("150207");
        assert!(city
            .check_fits(PlaceLevel::City, Some((&region, PlaceLevel::Region)))
            .is_ok());
        assert!(county
            .check_fits(PlaceLevel::County, Some((&city, PlaceLevel::City)))
            .is_ok());
        // 150404 is in Chifeng, not Baotou.
        assert!(code("150404")
            .check_fits(PlaceLevel::County, Some((&city, PlaceLevel::City)))
            .is_err());
        let street = code("150207.BYXL");
        assert!(street
            .check_fits(PlaceLevel::Town, Some((&county, PlaceLevel::County)))
            .is_ok());
        // Skipping a level is refused.
        assert!(street
            .check_fits(PlaceLevel::Village, Some((&county, PlaceLevel::County)))
            .is_err());
        // A minted code must extend its parent's code by exactly one segment.
        assert!(code("150207.X.Y")
            .check_fits(PlaceLevel::Town, Some((&county, PlaceLevel::County)))
            .is_err());
        assert!(code("150000").check_fits(PlaceLevel::Region, None).is_ok());
        assert!(code("150200").check_fits(PlaceLevel::City, None).is_err());
    }

    #[test]
    fn bad_codes_are_refused() {
        for bad in [
            "",
            "15020",
            "1502077",
            "abcdef",
            "150207.",
            "150207..A",
            "150207.a b",
            "150207.ABCDEFGHIJKLM",
        ] {
            assert!(PlaceCode::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn paths_nest() {
        let p = child_path(None, &code("150000"));
        let c = child_path(Some(&p), &code("150200"));
        assert_eq!(c, "/150000/150200/");
        assert!(c.starts_with(&p));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = PlaceCode::parse(&s);
        }

        #[test]
        fn minted_codes_round_trip(seg in "[A-Za-z0-9-]{1,12}") {
            let parent = code("150207");
            let child = PlaceCode::parse(&format!("150207.{seg}")).unwrap();
            proptest::prop_assert!(child.check_fits(PlaceLevel::Town, Some((&parent, PlaceLevel::County))).is_ok());
            proptest::prop_assert_eq!(child.region_code(), "150200");
        }
    }
}
