//! Effective-dated relations between people and organisations or places.
//!
//! A person is a member of an organisation, holds a post in one, or is assigned to a
//! place (a community, a grid). Each relation is valid over a half-open range of
//! calendar days `[from, to)`: it starts on `from` and has ended by `to`. An open
//! relation has no `to`. Ending a relation sets `to`; nothing is deleted, so the
//! question "who was responsible for this community on 2025-06-01" always has an
//! answer.

use crate::ValidationError;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    /// Member of an organisation (党员 of a branch, staff of a unit).
    MemberOf,
    /// Holds a named post in an organisation (书记, 主任 …).
    HoldsPost,
    /// Responsible for a place (包联 a community, works a grid).
    AssignedTo,
}

impl RelationKind {
    pub const ALL: [RelationKind; 3] = [
        RelationKind::MemberOf,
        RelationKind::HoldsPost,
        RelationKind::AssignedTo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RelationKind::MemberOf => "member_of",
            RelationKind::HoldsPost => "holds_post",
            RelationKind::AssignedTo => "assigned_to",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        RelationKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| {
                ValidationError::new(
                    "kind",
                    "invalid_kind",
                    "kind must be one of member_of, holds_post, assigned_to",
                )
            })
    }

    /// Which end a relation of this kind points at.
    pub fn target(self) -> RelationTarget {
        match self {
            RelationKind::MemberOf | RelationKind::HoldsPost => RelationTarget::Org,
            RelationKind::AssignedTo => RelationTarget::Place,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationTarget {
    Org,
    Place,
}

/// A half-open validity range `[from, to)` of calendar days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validity {
    pub from: NaiveDate,
    pub to: Option<NaiveDate>,
}

impl Validity {
    pub fn new(from: NaiveDate, to: Option<NaiveDate>) -> Result<Self, ValidationError> {
        if let Some(to) = to {
            if to <= from {
                return Err(ValidationError::new(
                    "valid_to",
                    "invalid_range",
                    "valid_to must be after valid_from",
                ));
            }
        }
        Ok(Validity { from, to })
    }

    pub fn contains(&self, day: NaiveDate) -> bool {
        self.from <= day && self.to.is_none_or(|to| day < to)
    }

    /// Whether two ranges share at least one day.
    pub fn overlaps(&self, other: &Validity) -> bool {
        let ends_after = |v: &Validity, day: NaiveDate| v.to.is_none_or(|to| day < to);
        ends_after(self, other.from) && ends_after(other, self.from)
    }

    /// Ends an open range on `day`; refuses to end before it began or to end twice.
    pub fn end_on(&self, day: NaiveDate) -> Result<Validity, ValidationError> {
        if self.to.is_some() {
            return Err(ValidationError::new(
                "valid_to",
                "already_ended",
                "this relation has already ended",
            ));
        }
        Validity::new(self.from, Some(day))
    }
}

/// Parses a calendar day written as `YYYY-MM-DD`.
pub fn parse_day(field: &str, raw: &str) -> Result<NaiveDate, ValidationError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
        ValidationError::new(field, "invalid_date", "date must be written as YYYY-MM-DD")
    })
}

/// A post title: 1 to 50 characters.
pub fn parse_post(raw: &str) -> Result<String, ValidationError> {
    let post = raw.trim();
    if post.is_empty() || post.chars().count() > 50 || post.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "post",
            "invalid_post",
            "post must be 1 to 50 characters",
        ));
    }
    Ok(post.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        parse_day("d", s).unwrap()
    }

    #[test]
    fn half_open_range() {
        let v = Validity::new(d("2025-01-01"), Some(d("2025-06-01"))).unwrap();
        assert!(v.contains(d("2025-01-01")));
        assert!(v.contains(d("2025-05-31")));
        assert!(!v.contains(d("2025-06-01")));
        assert!(!v.contains(d("2024-12-31")));
        assert!(Validity::new(d("2025-01-01"), Some(d("2025-01-01"))).is_err());
        let open = Validity::new(d("2025-01-01"), None).unwrap();
        assert!(open.contains(d("2099-01-01")));
        let ended = open.end_on(d("2025-03-01")).unwrap();
        assert!(ended.end_on(d("2025-04-01")).is_err());
        assert!(open.end_on(d("2024-03-01")).is_err());
    }

    proptest! {
        /// Ending a relation on day E splits time exactly: it holds before E, not on or after.
        #[test]
        fn ending_splits_time(start in 0i64..20000, len in 1i64..5000, probe in 0i64..30000) {
            let base = d("1990-01-01");
            let from = base + chrono::Days::new(start as u64);
            let end = from + chrono::Days::new(len as u64);
            let day = base + chrono::Days::new(probe as u64);
            let v = Validity::new(from, None).unwrap().end_on(end).unwrap();
            prop_assert_eq!(v.contains(day), day >= from && day < end);
        }
    }
}
