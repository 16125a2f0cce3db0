//! Validated inputs for new registry records.
//!
//! The API and the importers both turn raw text into these drafts with the same
//! `parse` functions, so a CSV row and a JSON body are held to the same rules and
//! report problems with the same field names. Personal data is protected here, at
//! the edge: a [`PersonDraft`] holds only the masked phone, its keyed hash and its
//! ciphertext, never the number itself.

use crate::org::OrgKind;
use crate::person::{parse_person_name, IdCardNumber, PhoneNumber};
use crate::pii::PiiKey;
use crate::place::{parse_name, GeoPoint, PlaceCode, PlaceLevel};
use crate::relation::{parse_day, parse_post, RelationKind, Validity};
use crate::ValidationError;
use chrono::NaiveDate;

/// Raw text fields of a place, as they arrive from a form, JSON or a spreadsheet.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RawPlace {
    pub code: String,
    pub name: String,
    pub level: String,
    #[serde(default)]
    pub parent_code: Option<String>,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlaceDraft {
    pub code: PlaceCode,
    pub name: String,
    pub level: PlaceLevel,
    pub parent_code: Option<PlaceCode>,
    pub point: Option<GeoPoint>,
}

impl PlaceDraft {
    pub fn parse(raw: &RawPlace) -> Result<Self, ValidationError> {
        let parent_code = match raw.parent_code.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(PlaceCode::parse(p).map_err(|e| e.in_field("parent_code"))?),
        };
        let point = match (raw.lat, raw.lon) {
            (Some(lat), Some(lon)) => Some(GeoPoint::new(lat, lon)?),
            (None, None) => None,
            _ => {
                return Err(ValidationError::new(
                    "lat",
                    "incomplete_point",
                    "give both lat and lon, or neither",
                ))
            }
        };
        Ok(PlaceDraft {
            code: PlaceCode::parse(&raw.code)?,
            name: parse_name(&raw.name)?,
            level: PlaceLevel::parse(&raw.level)?,
            parent_code,
            point,
        })
    }
}

/// An organisation code: 1 to 40 letters, digits, dots, dashes or underscores.
pub fn parse_org_code(raw: &str) -> Result<String, ValidationError> {
    let code = raw.trim();
    if code.is_empty()
        || code.len() > 40
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(ValidationError::new(
            "code",
            "invalid_code",
            "code must be 1 to 40 letters, digits, dots, dashes or underscores",
        ));
    }
    Ok(code.to_string())
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RawOrg {
    pub code: String,
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub parent_code: Option<String>,
    /// Codes of the places the organisation serves.
    #[serde(default)]
    pub serves: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrgDraft {
    pub code: String,
    pub name: String,
    pub kind: OrgKind,
    pub parent_code: Option<String>,
    pub serves: Vec<PlaceCode>,
}

impl OrgDraft {
    pub fn parse(raw: &RawOrg) -> Result<Self, ValidationError> {
        let parent_code = match raw.parent_code.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(parse_org_code(p).map_err(|e| e.in_field("parent_code"))?),
        };
        let serves = raw
            .serves
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| PlaceCode::parse(s).map_err(|e| e.in_field("serves")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OrgDraft {
            code: parse_org_code(&raw.code)?,
            name: parse_name(&raw.name)?,
            kind: OrgKind::parse(&raw.kind)?,
            parent_code,
            serves,
        })
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RawPerson {
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub id_card: Option<String>,
    #[serde(default)]
    pub party_member: Option<bool>,
    #[serde(default)]
    pub party_joined: Option<String>,
    /// Code of the place where the person lives or is registered.
    pub place_code: String,
}

/// A person ready to store: personal numbers already reduced to protected forms.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonDraft {
    pub name: String,
    pub phone: Option<ProtectedPhone>,
    pub id_card_hash: Option<String>,
    pub party_member: bool,
    pub party_joined: Option<NaiveDate>,
    pub place_code: PlaceCode,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProtectedPhone {
    pub masked: String,
    pub hash: String,
    pub sealed: String,
}

impl ProtectedPhone {
    pub fn protect(phone: &PhoneNumber, key: &PiiKey) -> Self {
        ProtectedPhone {
            masked: phone.masked(),
            hash: key.keyed_hash("phone", phone.expose()),
            sealed: key.encrypt(phone.expose()),
        }
    }
}

impl PersonDraft {
    pub fn parse(raw: &RawPerson, key: &PiiKey) -> Result<Self, ValidationError> {
        let nonempty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let phone = nonempty(&raw.phone)
            .map(|p| PhoneNumber::parse(&p).map(|p| ProtectedPhone::protect(&p, key)))
            .transpose()?;
        let id_card_hash = nonempty(&raw.id_card)
            .map(|i| IdCardNumber::parse(&i).map(|i| key.keyed_hash("id_card", i.expose())))
            .transpose()?;
        let party_joined = nonempty(&raw.party_joined)
            .map(|d| parse_day("party_joined", &d))
            .transpose()?;
        let party_member = raw.party_member.unwrap_or(party_joined.is_some());
        if party_joined.is_some() && !party_member {
            return Err(ValidationError::new(
                "party_joined",
                "inconsistent",
                "party_joined is only for party members",
            ));
        }
        Ok(PersonDraft {
            name: parse_person_name(&raw.name)?,
            phone,
            id_card_hash,
            party_member,
            party_joined,
            place_code: PlaceCode::parse(&raw.place_code).map_err(|e| e.in_field("place_code"))?,
        })
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RawRelation {
    pub kind: String,
    #[serde(default)]
    pub org_code: Option<String>,
    #[serde(default)]
    pub place_code: Option<String>,
    #[serde(default)]
    pub post: Option<String>,
    pub valid_from: String,
    #[serde(default)]
    pub valid_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RelationEnd {
    Org(String),
    Place(PlaceCode),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RelationDraft {
    pub kind: RelationKind,
    pub target: RelationEnd,
    pub post: Option<String>,
    pub validity: Validity,
}

impl RelationDraft {
    pub fn parse(raw: &RawRelation) -> Result<Self, ValidationError> {
        use crate::relation::RelationTarget;
        let kind = RelationKind::parse(&raw.kind)?;
        let text = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let target = match kind.target() {
            RelationTarget::Org => RelationEnd::Org(
                text(&raw.org_code)
                    .map(|c| parse_org_code(&c).map_err(|e| e.in_field("org_code")))
                    .transpose()?
                    .ok_or_else(|| {
                        ValidationError::new(
                            "org_code",
                            "required",
                            "this kind of relation needs org_code",
                        )
                    })?,
            ),
            RelationTarget::Place => RelationEnd::Place(
                text(&raw.place_code)
                    .map(|c| PlaceCode::parse(&c).map_err(|e| e.in_field("place_code")))
                    .transpose()?
                    .ok_or_else(|| {
                        ValidationError::new(
                            "place_code",
                            "required",
                            "this kind of relation needs place_code",
                        )
                    })?,
            ),
        };
        let post = match (kind, text(&raw.post)) {
            (RelationKind::HoldsPost, Some(p)) => Some(parse_post(&p)?),
            (RelationKind::HoldsPost, None) => {
                return Err(ValidationError::new(
                    "post",
                    "required",
                    "holds_post needs a post",
                ))
            }
            (_, other) => other.map(|p| parse_post(&p)).transpose()?,
        };
        let from = parse_day("valid_from", &raw.valid_from)?;
        let to = text(&raw.valid_to)
            .map(|t| parse_day("valid_to", &t))
            .transpose()?;
        Ok(RelationDraft {
            kind,
            target,
            post,
            validity: Validity::new(from, to)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_draft_protects_numbers() {
        let key = PiiKey::from_master(&[1; 32]);
        let raw = RawPerson {
            name: " 王小明 ".into(),
            phone: Some("13812345678".into()),
            id_card: Some("11010519491231002X".into()),
            party_member: None,
            party_joined: Some("2001-07-01".into()),
            place_code: "150207".into(),
        };
        let d = PersonDraft::parse(&raw, &key).unwrap();
        assert_eq!(d.name, "王小明");
        assert!(d.party_member);
        let phone = d.phone.unwrap();
        assert_eq!(phone.masked, "138****5678");
        assert!(!phone.sealed.contains("13812345678"));
        assert!(!phone.hash.contains("13812345678"));
        assert_eq!(key.decrypt(&phone.sealed).unwrap(), "13812345678");
        assert_eq!(d.id_card_hash.unwrap().len(), 64);
    }

    #[test]
    fn person_draft_errors_name_the_field() {
        let key = PiiKey::from_master(&[1; 32]);
        let mut raw = RawPerson {
            name: "A".into(),
            phone: Some("12".into()),
            place_code: "150207".into(),
            ..Default::default()
        };
        assert_eq!(PersonDraft::parse(&raw, &key).unwrap_err().field, "phone");
        raw.phone = None;
        raw.place_code = "x".into();
        assert_eq!(
            PersonDraft::parse(&raw, &key).unwrap_err().field,
            "place_code"
        );
        raw.place_code = "150207".into();
        raw.party_member = Some(false);
        raw.party_joined = Some("2001-01-01".into());
        assert_eq!(
            PersonDraft::parse(&raw, &key).unwrap_err().field,
            "party_joined"
        );
    }

    #[test]
    fn relation_drafts() {
        let raw = RawRelation {
            kind: "holds_post".into(),
            org_code: Some("JY-ZZB".into()),
            post: None,
            valid_from: "2025-01-01".into(),
            ..Default::default()
        };
        assert_eq!(RelationDraft::parse(&raw).unwrap_err().field, "post");
        let raw = RawRelation {
            kind: "assigned_to".into(),
            place_code: Some("150207.BYXL".into()),
            valid_from: "2025-01-01".into(),
            valid_to: Some("2024-01-01".into()),
            ..Default::default()
        };
        assert_eq!(RelationDraft::parse(&raw).unwrap_err().field, "valid_to");
    }

    #[test]
    fn place_draft_needs_both_coordinates() {
        let raw = RawPlace {
            code: "150207".into(),
            name: "九原区".into(),
            level: "county".into(),
            parent_code: Some("150200".into()),
            lat: Some(40.6),
            lon: None,
        };
        assert_eq!(PlaceDraft::parse(&raw).unwrap_err().field, "lat");
    }
}
