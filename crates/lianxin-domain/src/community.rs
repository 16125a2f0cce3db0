//! A community's own work under 双进双服务 (M15): households in grids, members and
//! organisations registered with the community (双进), the needs list members claim,
//! and the quarters service records are reported in. The pure rules, ahead of their
//! storage (`lianxin_store::grids`) and pages.
//!
//! - A **registration** ties a party member (or an organisation) to the community where
//!   they live, with their skills, over a half-open range of days; a member registers
//!   with one community at a time ([`check_single_registration`]).
//! - A **need** moves open → claimed → done; a claim can be released back to open
//!   ([`NeedStatus::after`]). Only a member registered with the need's community on the
//!   day may claim it ([`check_registered`]).
//! - Service is reported to employers by **quarter** (`2026Q3`, [`Quarter`]).
//! - Coverage (the share of households visited) is `crate::contact::coverage`; the
//!   one-grid-per-household rule is `crate::contact::check_single_grid`.

use crate::relation::Validity;
use crate::ValidationError;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who registers with a community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationKind {
    /// A party member (党员进社区), assigned to one of the community's grids.
    Member,
    /// A party organisation (党组织进社区).
    Org,
}

impl RegistrationKind {
    pub const ALL: [RegistrationKind; 2] = [RegistrationKind::Member, RegistrationKind::Org];

    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationKind::Member => "member",
            RegistrationKind::Org => "org",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            RegistrationKind::Member => "党员",
            RegistrationKind::Org => "党组织",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            RegistrationKind::Member => "Party member",
            RegistrationKind::Org => "Party organisation",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        RegistrationKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| {
                ValidationError::new("kind", "invalid_kind", "kind must be member or org")
            })
    }
}

/// A member or an organisation registers with one community at a time: a new
/// registration may not share a day with an existing one. `existing` are
/// (community, validity) of the registrant's registrations.
pub fn check_single_registration(
    existing: &[(i64, Validity)],
    validity: Validity,
) -> Result<(), ValidationError> {
    match existing.iter().find(|(_, v)| v.overlaps(&validity)) {
        Some((community, _)) => Err(ValidationError::new(
            "valid_from",
            "overlapping_registration",
            format!(
                "a member registers with one community at a time: the registration with \
                 community {community} covers some of those days; end it first"
            ),
        )),
        None => Ok(()),
    }
}

/// Only a member registered with `community` on `day` may claim its needs.
/// `registrations` are (community, validity) of the member's registrations.
pub fn check_registered(
    registrations: &[(i64, Validity)],
    community: i64,
    day: NaiveDate,
) -> Result<(), ValidationError> {
    if registrations
        .iter()
        .any(|(c, v)| *c == community && v.contains(day))
    {
        Ok(())
    } else {
        Err(ValidationError::new(
            "person_id",
            "not_registered",
            "only a party member registered with this community may claim its needs",
        ))
    }
}

/// Skills: short tags such as 法律咨询 or 水电维修, at most [`MAX_SKILLS`], each 1 to
/// 20 characters. Written separated by commas (also ，、;；) or spaces; repeats are
/// dropped, the order kept.
pub fn parse_skills(raw: &str) -> Result<Vec<String>, ValidationError> {
    let bad = |msg: &str| ValidationError::new("skills", "invalid_skills", msg);
    let mut out: Vec<String> = Vec::new();
    for s in raw
        .split(|c: char| matches!(c, ',' | '，' | '、' | ';' | '；') || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        if s.chars().count() > 20 || s.chars().any(|c| c.is_control() || c == '%' || c == '_') {
            return Err(bad("each skill is 1 to 20 characters, without % or _"));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    if out.len() > MAX_SKILLS {
        return Err(bad("list at most 12 skills"));
    }
    Ok(out)
}

pub const MAX_SKILLS: usize = 12;

/// Skills as stored: joined by commas, so `',' || skills || ','` contains `,skill,`.
pub fn skills_text(skills: &[String]) -> String {
    skills.join(",")
}

/// The skills stored by [`skills_text`].
pub fn skills_from_text(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Where a need stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeedStatus {
    /// 待认领
    Open,
    /// 已认领
    Claimed,
    /// 已完成
    Done,
}

/// What can happen to a need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NeedAction {
    Claim,
    Release,
    Complete,
}

impl NeedAction {
    pub fn as_str(self) -> &'static str {
        match self {
            NeedAction::Claim => "claim",
            NeedAction::Release => "release",
            NeedAction::Complete => "complete",
        }
    }

    fn done(self) -> &'static str {
        match self {
            NeedAction::Claim => "claimed",
            NeedAction::Release => "released",
            NeedAction::Complete => "completed",
        }
    }
}

impl NeedStatus {
    pub const ALL: [NeedStatus; 3] = [NeedStatus::Open, NeedStatus::Claimed, NeedStatus::Done];

    pub fn as_str(self) -> &'static str {
        match self {
            NeedStatus::Open => "open",
            NeedStatus::Claimed => "claimed",
            NeedStatus::Done => "done",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            NeedStatus::Open => "待认领",
            NeedStatus::Claimed => "已认领",
            NeedStatus::Done => "已完成",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            NeedStatus::Open => "Open",
            NeedStatus::Claimed => "Claimed",
            NeedStatus::Done => "Done",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        NeedStatus::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| {
                ValidationError::new(
                    "status",
                    "invalid_status",
                    "status must be open, claimed or done",
                )
            })
    }

    /// The status after `action`: claim an open need, release or complete a claimed
    /// one. A done need is final.
    pub fn after(self, action: NeedAction) -> Result<NeedStatus, ValidationError> {
        match (self, action) {
            (NeedStatus::Open, NeedAction::Claim) => Ok(NeedStatus::Claimed),
            (NeedStatus::Claimed, NeedAction::Release) => Ok(NeedStatus::Open),
            (NeedStatus::Claimed, NeedAction::Complete) => Ok(NeedStatus::Done),
            (s, a) => Err(ValidationError::new(
                "action",
                "wrong_state",
                format!("a need that is {} cannot be {}", s.as_str(), a.done()),
            )),
        }
    }
}

/// The hours a member gave to a need: more than 0, at most 100, in steps of a
/// quarter hour or finer.
pub fn parse_hours(hours: f64) -> Result<f64, ValidationError> {
    if !hours.is_finite() || hours <= 0.0 || hours > 100.0 {
        return Err(ValidationError::new(
            "hours",
            "invalid_hours",
            "hours must be more than 0 and at most 100",
        ));
    }
    Ok((hours * 100.0).round() / 100.0)
}

/// A short text such as a need's title (`max` characters, required) or its detail.
pub fn parse_text(
    field: &str,
    raw: &str,
    max: usize,
    required: bool,
) -> Result<String, ValidationError> {
    let text = raw.trim();
    if required && text.is_empty() {
        return Err(ValidationError::new(
            field,
            "required",
            format!("{field} must not be empty"),
        ));
    }
    if text.chars().count() > max {
        return Err(ValidationError::new(
            field,
            "too_long",
            format!("{field} is at most {max} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(ValidationError::new(
            field,
            "invalid_text",
            format!("{field} holds control characters"),
        ));
    }
    Ok(text.to_string())
}

/// A calendar quarter, written `2026Q3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    year: i32,
    q: u8,
}

impl Quarter {
    pub fn new(year: i32, q: u8) -> Result<Quarter, ValidationError> {
        if !(1..=4).contains(&q) || !(1900..=9998).contains(&year) {
            return Err(Quarter::error());
        }
        Ok(Quarter { year, q })
    }

    fn error() -> ValidationError {
        ValidationError::new(
            "quarter",
            "invalid_quarter",
            "quarter must be written like 2026Q3",
        )
    }

    /// Parses `2026Q3` (also `2026q3`, `2026-Q3`).
    pub fn parse(raw: &str) -> Result<Quarter, ValidationError> {
        let s = raw.trim();
        let (y, q) = s.split_once(['Q', 'q']).ok_or_else(Quarter::error)?;
        let y = y.strip_suffix('-').unwrap_or(y);
        if y.len() != 4 || q.len() != 1 {
            return Err(Quarter::error());
        }
        let year: i32 = y.parse().map_err(|_| Quarter::error())?;
        let q: u8 = q.parse().map_err(|_| Quarter::error())?;
        Quarter::new(year, q)
    }

    /// The quarter a day falls in.
    pub fn containing(day: NaiveDate) -> Quarter {
        Quarter {
            year: day.year(),
            q: ((day.month() - 1) / 3 + 1) as u8,
        }
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn number(self) -> u8 {
        self.q
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, u32::from(self.q - 1) * 3 + 1, 1)
            .expect("quarters start on valid days")
    }

    /// The first day after the quarter.
    pub fn end(self) -> NaiveDate {
        self.next().first_day()
    }

    pub fn last_day(self) -> NaiveDate {
        self.end().pred_opt().expect("a quarter has days")
    }

    pub fn next(self) -> Quarter {
        if self.q == 4 {
            Quarter {
                year: self.year + 1,
                q: 1,
            }
        } else {
            Quarter {
                year: self.year,
                q: self.q + 1,
            }
        }
    }

    pub fn previous(self) -> Quarter {
        if self.q == 1 {
            Quarter {
                year: self.year - 1,
                q: 4,
            }
        } else {
            Quarter {
                year: self.year,
                q: self.q - 1,
            }
        }
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}Q{}", self.year, self.q)
    }
}

impl Serialize for Quarter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The longest period a coverage report spans: two years.
pub const MAX_PERIOD_DAYS: i64 = 731;

/// A reporting period `[from, to]`, both days included.
pub fn check_period(from: NaiveDate, to: NaiveDate) -> Result<(), ValidationError> {
    if to < from {
        return Err(ValidationError::new(
            "to",
            "invalid_period",
            "the period must end on or after its first day",
        ));
    }
    if (to - from).num_days() >= MAX_PERIOD_DAYS {
        return Err(ValidationError::new(
            "to",
            "invalid_period",
            "a period is at most two years",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn quarters_parse_and_bound_their_days() {
        let q = Quarter::parse("2026Q3").unwrap();
        assert_eq!(q.first_day(), d("2026-07-01"));
        assert_eq!(q.last_day(), d("2026-09-30"));
        assert_eq!(q.end(), d("2026-10-01"));
        assert_eq!(q.to_string(), "2026Q3");
        assert_eq!(
            Quarter::parse("2026-q4").unwrap().last_day(),
            d("2026-12-31")
        );
        assert_eq!(Quarter::parse("2024Q1").unwrap().end(), d("2024-04-01"));
        assert_eq!(Quarter::containing(d("2026-03-31")).to_string(), "2026Q1");
        assert_eq!(
            Quarter::parse("2026Q4").unwrap().next().to_string(),
            "2027Q1"
        );
        assert_eq!(
            Quarter::parse("2026Q1").unwrap().previous().to_string(),
            "2025Q4"
        );
        for bad in [
            "2026Q5",
            "2026Q0",
            "26Q1",
            "2026",
            "Q3",
            "2026Q12",
            "二〇二六Q1",
            "",
        ] {
            assert_eq!(
                Quarter::parse(bad).unwrap_err().code,
                "invalid_quarter",
                "{bad}"
            );
        }
    }

    #[test]
    fn one_community_at_a_time() {
        let ky = (
            7,
            Validity::new(d("2025-01-01"), Some(d("2026-01-01"))).unwrap(),
        );
        let e = check_single_registration(&[ky], Validity::new(d("2025-12-31"), None).unwrap())
            .unwrap_err();
        assert_eq!(
            (e.code, e.field.as_str()),
            ("overlapping_registration", "valid_from")
        );
        assert!(e.message.contains("one community at a time"));
        // From the day the old one ended: fine.
        assert!(
            check_single_registration(&[ky], Validity::new(d("2026-01-01"), None).unwrap()).is_ok()
        );
        // Registering twice with the same community over the same days is refused too.
        assert!(check_single_registration(
            &[ky],
            Validity::new(d("2025-03-01"), Some(d("2025-04-01"))).unwrap()
        )
        .is_err());
    }

    #[test]
    fn only_registered_members_claim() {
        let regs = [(
            7,
            Validity::new(d("2025-01-01"), Some(d("2026-01-01"))).unwrap(),
        )];
        assert!(check_registered(&regs, 7, d("2025-06-01")).is_ok());
        assert_eq!(
            check_registered(&regs, 8, d("2025-06-01"))
                .unwrap_err()
                .code,
            "not_registered"
        );
        assert!(check_registered(&regs, 7, d("2026-01-01")).is_err());
        assert!(check_registered(&[], 7, d("2025-06-01")).is_err());
    }

    #[test]
    fn needs_move_open_claimed_done() {
        use NeedAction::*;
        use NeedStatus::*;
        assert_eq!(Open.after(Claim).unwrap(), Claimed);
        assert_eq!(Claimed.after(Release).unwrap(), Open);
        assert_eq!(Claimed.after(Complete).unwrap(), Done);
        for (s, a) in [
            (Open, Release),
            (Open, Complete),
            (Claimed, Claim),
            (Done, Claim),
            (Done, Release),
            (Done, Complete),
        ] {
            assert_eq!(s.after(a).unwrap_err().code, "wrong_state", "{s:?} {a:?}");
        }
        assert_eq!(
            Open.after(Complete).unwrap_err().message,
            "a need that is open cannot be completed"
        );
        for s in NeedStatus::ALL {
            assert_eq!(NeedStatus::parse(s.as_str()).unwrap(), s);
        }
        assert!(NeedStatus::parse("closed").is_err());
    }

    #[test]
    fn skills_hours_and_text() {
        assert_eq!(
            parse_skills("法律咨询，水电维修、 法律咨询 ;心理疏导").unwrap(),
            ["法律咨询", "水电维修", "心理疏导"]
        );
        assert!(parse_skills("").unwrap().is_empty());
        assert!(parse_skills("50%").is_err());
        assert!(parse_skills(&"长".repeat(21)).is_err());
        let many: Vec<String> = (0..13).map(|i| format!("s{i}")).collect();
        assert!(parse_skills(&many.join(",")).is_err());
        let s = parse_skills("a,b").unwrap();
        assert_eq!(skills_from_text(&skills_text(&s)), s);
        assert_eq!(parse_hours(2.5).unwrap(), 2.5);
        for bad in [0.0, -1.0, 100.5, f64::NAN, f64::INFINITY] {
            assert_eq!(parse_hours(bad).unwrap_err().code, "invalid_hours");
        }
        assert_eq!(parse_text("title", "  x ", 10, true).unwrap(), "x");
        assert_eq!(
            parse_text("title", " ", 10, true).unwrap_err().code,
            "required"
        );
        assert_eq!(
            parse_text("title", "abc", 2, true).unwrap_err().code,
            "too_long"
        );
        assert!(parse_text("detail", "", 10, false).is_ok());
        assert!(check_period(d("2026-01-01"), d("2026-01-01")).is_ok());
        assert!(check_period(d("2026-01-02"), d("2026-01-01")).is_err());
        assert!(check_period(d("2020-01-01"), d("2026-01-01")).is_err());
        assert_eq!(
            RegistrationKind::parse("org").unwrap(),
            RegistrationKind::Org
        );
        assert!(RegistrationKind::parse("club").is_err());
    }

    proptest! {
        /// Every day lies in exactly one quarter, whose bounds hold it, and the quarter
        /// written out parses back to itself.
        #[test]
        fn every_day_has_its_quarter(n in 0i64..60_000) {
            let day = d("1950-01-01") + chrono::Duration::days(n);
            let q = Quarter::containing(day);
            prop_assert!(q.first_day() <= day && day <= q.last_day());
            prop_assert!(day < q.end());
            prop_assert_eq!(Quarter::parse(&q.to_string()).unwrap(), q);
            prop_assert_eq!(q.next().first_day(), q.end());
            prop_assert_eq!(q.next().previous(), q);
        }

        /// A new registration is accepted exactly when it shares no day with any
        /// existing one, whatever the communities.
        #[test]
        fn a_registration_is_refused_exactly_when_days_are_shared(
            existing in proptest::collection::vec((0i64..3, 0i64..60, 1i64..30, any::<bool>()), 0..4),
            from in 0i64..60, len in 1i64..30, open: bool,
        ) {
            let day = |n: i64| d("2026-01-01") + chrono::Duration::days(n);
            let existing: Vec<(i64, Validity)> = existing
                .into_iter()
                .map(|(c, f, l, o)| (c, Validity::new(day(f), (!o).then(|| day(f + l))).unwrap()))
                .collect();
            let new = Validity::new(day(from), (!open).then(|| day(from + len))).unwrap();
            let shared = (0..120).any(|n| new.contains(day(n)) && existing.iter().any(|(_, v)| v.contains(day(n))));
            prop_assert_eq!(check_single_registration(&existing, new).is_err(), shared);
        }

        /// Skills never fail on odd input other than by a validation error, and what
        /// they accept round-trips through storage.
        #[test]
        fn skills_round_trip(raw in "\\PC{0,80}") {
            if let Ok(s) = parse_skills(&raw) {
                prop_assert!(s.len() <= MAX_SKILLS);
                prop_assert_eq!(skills_from_text(&skills_text(&s)), s);
            }
        }
    }
}
