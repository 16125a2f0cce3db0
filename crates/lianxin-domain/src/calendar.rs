//! The working-day calendar of mainland China and the time limits of demands.
//!
//! The demand closed loop promises answers within a time limit: an emergency in 2 hours,
//! a utility fault in 24 hours, an ordinary demand in 7 working days, a complex one in 15.
//! Hours are wall-clock; working days follow the State Council's holiday schedule, which
//! moves days around every year (a long holiday is bought with make-up working days on
//! weekends). That schedule is data, not code: [`HolidayCalendar`] reads it from TOML, one
//! table per year with an `off` list (days off, whatever weekday) and a `work` list
//! (make-up working days, always a Saturday or Sunday). The official schedule ships in
//! `data/cn-public-holidays.toml`, embedded at build time so the binary needs no files;
//! administrators add later years with [`HolidayCalendar::merge`] as each November's
//! notice comes out.
//!
//! All days are Asia/Shanghai days. China has had no daylight saving time since 1991, so
//! the zone is the fixed offset UTC+8 ([`SHANGHAI`]) and needs no time-zone database.
//!
//! # Policy (the rules a deadline is computed by)
//!
//! - A day is a working day if it is listed under `work`; otherwise not if it is listed
//!   under `off`; otherwise if it is Monday to Friday.
//! - A year the calendar does not cover (see [`HolidayCalendar::covers`]) is plain
//!   Monday to Friday. That ignores its holidays, so deadlines come out *earlier* than the
//!   real ones: strict rather than lax. Callers should warn when the receipt day or the
//!   deadline falls in an uncovered year, so that someone loads the new schedule.
//! - `Hours(h)`: the deadline is the receipt instant plus `h` hours, whatever the day —
//!   an emergency on New Year's night is still answered within 2 hours.
//! - `WorkingDays(n)`: the receipt day does not count, however early the demand came in
//!   (as with statutory periods, the first day is not counted). Counting starts the next
//!   Shanghai day; the limit ends with the n-th working day, so the deadline is 00:00
//!   (+08:00) of the day after it. A demand received on a holiday starts counting on the
//!   next day as well.
//! - A limit of zero, or longer than about a year, cannot be constructed: see
//!   [`TimeLimit`]. So [`HolidayCalendar::deadline`] cannot fail.
//! - A demand is overdue from the deadline instant on ([`is_overdue`]); a warning is due
//!   once a given fraction of the wall-clock span from receipt to deadline has passed
//!   ([`warning_at`]). Wall-clock, so a warning at 80% of a limit that spans a holiday may
//!   fall on the holiday: the people on duty see it when they come back, with a fifth of
//!   the time still left.

use crate::ValidationError;
use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc, Weekday,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;

/// Asia/Shanghai: a fixed UTC+8, as China has had no daylight saving time since 1991.
pub const SHANGHAI: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// The official schedule, compiled in so that the server needs no data files at run time.
const OFFICIAL_TOML: &str = include_str!("../data/cn-public-holidays.toml");

/// The Shanghai calendar day an instant falls on.
pub fn local_day(instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&SHANGHAI).date_naive()
}

/// The instant a Shanghai calendar day begins (00:00 +08:00).
pub fn day_start(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN)
        .and_local_timezone(SHANGHAI)
        .single()
        .expect("a fixed offset has no gaps")
        .with_timezone(&Utc)
}

/// How a listed day departs from the Monday-to-Friday rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    Off,
    Work,
}

/// Which days are working days in mainland China. See the module documentation.
#[derive(Debug, Clone)]
pub struct HolidayCalendar {
    years: BTreeSet<i32>,
    days: BTreeMap<NaiveDate, Listed>,
}

impl HolidayCalendar {
    /// The official schedule shipped with Lianxin (`data/cn-public-holidays.toml`).
    pub fn official() -> Self {
        // The embedded file is checked by the tests, so failing here is a build defect.
        HolidayCalendar::from_toml(OFFICIAL_TOML).expect("embedded holiday schedule is valid")
    }

    /// Reads a schedule: one table per year (`[2025]`), each with an `off` and a `work`
    /// list of dates written as `"YYYY-MM-DD"`.
    ///
    /// Rejects year keys that are not four digits, dates that do not parse or lie outside
    /// their year's table, a day in both lists, a `work` day on Monday to Friday, and any
    /// key other than `off` and `work` (a misspelt list would silently drop holidays).
    pub fn from_toml(text: &str) -> Result<Self, ValidationError> {
        // Errors here quote dates and the parser's message: a holiday schedule is public
        // data, and whoever uploads it needs to know which line to fix.
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map(|span| text[..span.start].matches('\n').count() + 1);
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            ValidationError::new(
                "holidays",
                "invalid_toml",
                format!(
                    "holiday schedule is not valid TOML{at}: {}",
                    e.message().trim()
                ),
            )
        })?;
        let mut calendar = HolidayCalendar {
            years: BTreeSet::new(),
            days: BTreeMap::new(),
        };
        for (key, value) in &table {
            let year = parse_year_key(key)?;
            let lists = value.as_table().ok_or_else(|| {
                ValidationError::new(
                    "holidays",
                    "invalid_year",
                    format!("[{key}] must be a table with an off and a work list"),
                )
            })?;
            if let Some(unknown) = lists.keys().find(|k| *k != "off" && *k != "work") {
                return Err(ValidationError::new(
                    format!("{year}.{unknown}"),
                    "unknown_key",
                    format!("[{year}] may only have the lists off and work"),
                ));
            }
            let off = read_list(year, "off", lists)?;
            let work = read_list(year, "work", lists)?;
            calendar.replace_year(year, year_entries(year, &off, &work)?);
        }
        Ok(calendar)
    }

    /// This calendar with `year` set to the given days off and make-up working days,
    /// replacing whatever it had for that year. Validated like [`HolidayCalendar::from_toml`].
    pub fn with_year(
        mut self,
        year: i32,
        off: &[NaiveDate],
        work: &[NaiveDate],
    ) -> Result<Self, ValidationError> {
        if !(1000..=9999).contains(&year) {
            return Err(ValidationError::new(
                "holidays",
                "invalid_year",
                "year must have four digits",
            ));
        }
        let entries = year_entries(year, off, work)?;
        self.replace_year(year, entries);
        Ok(self)
    }

    fn replace_year(&mut self, year: i32, entries: BTreeMap<NaiveDate, Listed>) {
        self.days.retain(|day, _| day.year() != year);
        self.years.insert(year);
        self.days.extend(entries);
    }

    /// Adds the years of `other`. A year `other` covers replaces this calendar's year
    /// wholesale, because a schedule is published and corrected as a whole.
    pub fn merge(&mut self, other: HolidayCalendar) {
        for &year in &other.years {
            self.days.retain(|day, _| day.year() != year);
        }
        self.years.extend(other.years);
        self.days.extend(other.days);
    }

    /// Whether the official schedule of `year` is loaded. An uncovered year is treated as
    /// plain Monday to Friday; callers should warn that its holidays are missing.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// Whether `day` is a working day: make-up days are, listed days off are not, and
    /// otherwise Monday to Friday are.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        match self.days.get(&day) {
            Some(Listed::Work) => true,
            Some(Listed::Off) => false,
            None => !is_weekend(day),
        }
    }

    /// The number of working days in `(from, to]`; negative (the count in `(to, from]`)
    /// when `to` is before `from`.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        if to < from {
            return -self.working_days_between(to, from);
        }
        // Count Monday to Friday arithmetically, then correct for the listed days in range,
        // so the cost does not grow with the length of the range.
        let weekdays = weekdays_through(to) - weekdays_through(from);
        let listed: i64 = self
            .days
            .range((Bound::Excluded(from), Bound::Included(to)))
            .map(|(day, listed)| match listed {
                // Make-up days are validated to fall on weekends, so none is counted yet.
                Listed::Work => 1,
                Listed::Off if is_weekend(*day) => 0,
                Listed::Off => -1,
            })
            .sum();
        weekdays + listed
    }

    /// When a demand received at `received` with time limit `limit` is due. See the module
    /// documentation for the rules.
    pub fn deadline(&self, received: DateTime<Utc>, limit: TimeLimit) -> DateTime<Utc> {
        // Limits are capped, so the arithmetic only saturates within a year of the end of
        // chrono's range (year 262 143), which no real timestamp reaches.
        match limit.unit {
            LimitUnit::Hours => received
                .checked_add_signed(Duration::hours(i64::from(limit.amount)))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            LimitUnit::WorkingDays => {
                let mut day = local_day(received);
                let mut left = limit.amount;
                while left > 0 {
                    let Some(next) = day.succ_opt() else {
                        return DateTime::<Utc>::MAX_UTC;
                    };
                    day = next;
                    if self.is_working_day(day) {
                        left -= 1;
                    }
                }
                day.succ_opt()
                    .and_then(|after| {
                        SHANGHAI
                            .from_local_datetime(&after.and_time(NaiveTime::MIN))
                            .single()
                    })
                    .map_or(DateTime::<Utc>::MAX_UTC, |t| t.with_timezone(&Utc))
            }
        }
    }
}

/// Whether a demand with this deadline is overdue at `now`. The deadline is the first
/// instant past the limit, so reaching it is already overdue.
pub fn is_overdue(now: DateTime<Utc>, deadline: DateTime<Utc>) -> bool {
    now >= deadline
}

/// The instant at which `fraction` (0 to 1) of the wall-clock span from `received` to
/// `deadline` has passed, e.g. `0.8` for a warning with a fifth of the time left.
pub fn warning_at(
    received: DateTime<Utc>,
    deadline: DateTime<Utc>,
    fraction: f64,
) -> Result<DateTime<Utc>, ValidationError> {
    // `contains` is false for NaN too.
    if !(0.0..=1.0).contains(&fraction) {
        return Err(ValidationError::new(
            "warning_fraction",
            "invalid_fraction",
            "warning fraction must be between 0 and 1",
        ));
    }
    let span_ms = deadline.signed_duration_since(received).num_milliseconds();
    // A fraction of at most 1 keeps the result between received and deadline.
    let offset_ms = (span_ms as f64 * fraction).round() as i64;
    Ok(received + Duration::milliseconds(offset_ms))
}

/// The unit a [`TimeLimit`] counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitUnit {
    /// Wall-clock hours, holidays included.
    Hours,
    /// Working days of the [`HolidayCalendar`].
    WorkingDays,
}

/// A validated time limit: 1 to 8 760 hours, or 1 to 250 working days (about a year
/// either way: a longer limit is a backlog, not a promise). Written as `2h` or `7wd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeLimit {
    unit: LimitUnit,
    amount: u32,
}

impl TimeLimit {
    pub const MAX_HOURS: u32 = 8760;
    pub const MAX_WORKING_DAYS: u32 = 250;

    pub fn hours(hours: u32) -> Result<Self, ValidationError> {
        TimeLimit::new(LimitUnit::Hours, hours)
    }

    pub fn working_days(days: u32) -> Result<Self, ValidationError> {
        TimeLimit::new(LimitUnit::WorkingDays, days)
    }

    fn new(unit: LimitUnit, amount: u32) -> Result<Self, ValidationError> {
        let (max, message) = match unit {
            LimitUnit::Hours => (
                TimeLimit::MAX_HOURS,
                "a time limit in hours must be 1 to 8760 hours",
            ),
            LimitUnit::WorkingDays => (
                TimeLimit::MAX_WORKING_DAYS,
                "a time limit in working days must be 1 to 250 working days",
            ),
        };
        if amount == 0 || amount > max {
            return Err(ValidationError::new("time_limit", "out_of_range", message));
        }
        Ok(TimeLimit { unit, amount })
    }

    /// Parses `<n>h` (hours) or `<n>wd` (working days), e.g. `2h`, `24h`, `7wd`, `15wd`.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let text = raw.trim();
        let syntax = || {
            ValidationError::new(
                "time_limit",
                "invalid_time_limit",
                "time limit must be a number of hours or working days, like 2h or 7wd",
            )
        };
        let (digits, unit) = if let Some(digits) = text.strip_suffix("wd") {
            (digits, LimitUnit::WorkingDays)
        } else if let Some(digits) = text.strip_suffix('h') {
            (digits, LimitUnit::Hours)
        } else {
            return Err(syntax());
        };
        // `u32::from_str` would also take a sign; only plain digits are a time limit.
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        // Too many digits for a u32 is out of range, like any other too-large number.
        let amount = digits.parse().unwrap_or(u32::MAX);
        TimeLimit::new(unit, amount)
    }

    pub fn unit(self) -> LimitUnit {
        self.unit
    }

    pub fn amount(self) -> u32 {
        self.amount
    }
}

impl fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = match self.unit {
            LimitUnit::Hours => "h",
            LimitUnit::WorkingDays => "wd",
        };
        write!(f, "{}{suffix}", self.amount)
    }
}

impl TryFrom<String> for TimeLimit {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        TimeLimit::parse(&value)
    }
}

impl From<TimeLimit> for String {
    fn from(limit: TimeLimit) -> String {
        limit.to_string()
    }
}

fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Monday-to-Friday days from a fixed origin through `day`: the difference for two days
/// is the number of such days in between, `(from, to]`.
fn weekdays_through(day: NaiveDate) -> i64 {
    // Day 1 of the common era, 0001-01-01, was a Monday: index mod 7 is 1..=5 on Mon–Fri.
    let index = i64::from(day.num_days_from_ce());
    index.div_euclid(7) * 5 + index.rem_euclid(7).min(5)
}

fn parse_year_key(key: &str) -> Result<i32, ValidationError> {
    let err = || {
        ValidationError::new(
            "holidays",
            "invalid_year",
            format!("[{key}] is not a year: tables are named by four-digit years, like [2026]"),
        )
    };
    if key.len() != 4 || !key.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    key.parse().map_err(|_| err())
}

fn read_list(
    year: i32,
    name: &str,
    lists: &toml::Table,
) -> Result<Vec<NaiveDate>, ValidationError> {
    let field = format!("{year}.{name}");
    let items = lists
        .get(name)
        .ok_or_else(|| {
            ValidationError::new(
                &field,
                "missing_list",
                format!("[{year}] needs a {name} list (it may be empty)"),
            )
        })?
        .as_array()
        .ok_or_else(|| {
            ValidationError::new(&field, "invalid_list", format!("{field} must be a list"))
        })?;
    items
        .iter()
        .map(|item| {
            item.as_str().and_then(parse_canonical_day).ok_or_else(|| {
                ValidationError::new(
                    &field,
                    "invalid_date",
                    format!(
                        "{field}: every date must be a quoted YYYY-MM-DD, like \"{year}-10-01\""
                    ),
                )
            })
        })
        .collect()
}

/// A date written exactly as `YYYY-MM-DD`; chrono alone would also take `2025-1-1`.
fn parse_canonical_day(raw: &str) -> Option<NaiveDate> {
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok()?;
    (day.format("%Y-%m-%d").to_string() == raw).then_some(day)
}

/// The listed days of one year, after checking the schedule's rules.
fn year_entries(
    year: i32,
    off: &[NaiveDate],
    work: &[NaiveDate],
) -> Result<BTreeMap<NaiveDate, Listed>, ValidationError> {
    let mut entries = BTreeMap::new();
    for (name, days, listed) in [("off", off, Listed::Off), ("work", work, Listed::Work)] {
        let field = format!("{year}.{name}");
        for &day in days {
            if day.year() != year {
                return Err(ValidationError::new(
                    &field,
                    "date_outside_year",
                    format!("{day} is listed under [{year}]"),
                ));
            }
            if listed == Listed::Work && !is_weekend(day) {
                return Err(ValidationError::new(
                    &field,
                    "work_not_weekend",
                    format!(
                        "{day} is a {}: make-up working days fall on weekends",
                        day.weekday()
                    ),
                ));
            }
            if entries
                .insert(day, listed)
                .is_some_and(|before| before != listed)
            {
                return Err(ValidationError::new(
                    &field,
                    "off_and_work",
                    format!("{day} is listed both as a day off and as a working day"),
                ));
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// An instant written in Shanghai local time, `YYYY-MM-DD HH:MM`.
    fn at(s: &str) -> DateTime<Utc> {
        let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        SHANGHAI
            .from_local_datetime(&local)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn wd(n: u32) -> TimeLimit {
        TimeLimit::working_days(n).unwrap()
    }

    fn hours(n: u32) -> TimeLimit {
        TimeLimit::hours(n).unwrap()
    }

    fn days(from: &str, to: &str) -> Vec<NaiveDate> {
        d(from)
            .iter_days()
            .take_while(|day| *day <= d(to))
            .collect()
    }

    fn rejects(text: &str) -> ValidationError {
        HolidayCalendar::from_toml(text).expect_err("schedule should be rejected")
    }

    #[test]
    fn national_day_2025() {
        let cal = HolidayCalendar::official();
        for day in days("2025-10-01", "2025-10-08") {
            assert!(!cal.is_working_day(day), "{day} is off");
        }
        // The two weekends bought for the long holiday.
        assert_eq!(d("2025-09-28").weekday(), Weekday::Sun);
        assert!(cal.is_working_day(d("2025-09-28")));
        assert_eq!(d("2025-10-11").weekday(), Weekday::Sat);
        assert!(cal.is_working_day(d("2025-10-11")));
        // Around them, the ordinary rule.
        assert!(cal.is_working_day(d("2025-09-30")));
        assert!(cal.is_working_day(d("2025-10-09")));
        assert!(!cal.is_working_day(d("2025-09-27")));
        assert!(!cal.is_working_day(d("2025-10-12")));
    }

    #[test]
    fn spring_festival_2026() {
        let cal = HolidayCalendar::official();
        for day in days("2026-02-15", "2026-02-23") {
            assert!(!cal.is_working_day(day), "{day} is off");
        }
        assert_eq!(d("2026-02-14").weekday(), Weekday::Sat);
        assert!(cal.is_working_day(d("2026-02-14")));
        assert_eq!(d("2026-02-28").weekday(), Weekday::Sat);
        assert!(cal.is_working_day(d("2026-02-28")));
        assert!(cal.is_working_day(d("2026-02-13")));
        assert!(cal.is_working_day(d("2026-02-24")));
        assert!(!cal.is_working_day(d("2026-03-01")));
    }

    #[test]
    fn official_covers_exactly_2025_and_2026() {
        let cal = HolidayCalendar::official();
        assert!(cal.covers(2025));
        assert!(cal.covers(2026));
        assert!(!cal.covers(2024));
        assert!(!cal.covers(2027));
    }

    #[test]
    fn seven_and_fifteen_working_days_across_national_day() {
        let cal = HolidayCalendar::official();
        let received = at("2025-09-25 10:00"); // a Thursday
                                               // 26 Fri, 28 Sun (make-up), 29, 30, then 9, 10 and 11 Sat (make-up) October.
        let deadline = cal.deadline(received, wd(7));
        assert_eq!(deadline, at("2025-10-12 00:00"));
        assert_eq!(deadline.to_rfc3339(), "2025-10-11T16:00:00+00:00");
        // Then 13–17 and 20–22 October.
        assert_eq!(cal.deadline(received, wd(15)), at("2025-10-23 00:00"));
    }

    #[test]
    fn received_on_the_eve_of_national_day() {
        let cal = HolidayCalendar::official();
        // 9, 10, 11 (Sat, make-up), 13, 14, 15, 16 October.
        assert_eq!(
            cal.deadline(at("2025-09-30 17:00"), wd(7)),
            at("2025-10-17 00:00")
        );
        // The whole holiday passes before the first working day.
        assert_eq!(
            cal.deadline(at("2025-09-30 23:59"), wd(1)),
            at("2025-10-10 00:00")
        );
        // 01:00 on 30 September in Shanghai is still 29 September in UTC: the receipt day
        // is the Shanghai one, so 30 September does not count.
        let early = at("2025-09-30 01:00");
        assert_eq!(early.date_naive(), d("2025-09-29"));
        assert_eq!(cal.deadline(early, wd(1)), at("2025-10-10 00:00"));
        assert_eq!(
            cal.deadline(at("2025-09-29 23:00"), wd(1)),
            at("2025-10-01 00:00")
        );
        // Received during the holiday: counting starts the next day all the same.
        assert_eq!(
            cal.deadline(at("2025-10-03 15:00"), wd(1)),
            at("2025-10-10 00:00")
        );
    }

    #[test]
    fn received_before_spring_festival_2026() {
        let cal = HolidayCalendar::official();
        let received = at("2026-02-13 09:00"); // the Friday before
                                               // 14 Feb (Sat, make-up) is the first working day.
        assert_eq!(cal.deadline(received, wd(1)), at("2026-02-15 00:00"));
        assert_eq!(cal.deadline(received, wd(2)), at("2026-02-25 00:00"));
        // 14, 24, 25, 26, 27, 28 (Sat, make-up) February and 2 March.
        assert_eq!(cal.deadline(received, wd(7)), at("2026-03-03 00:00"));
        // Then 3, 4, 5, 6, 9, 10, 11, 12 March.
        assert_eq!(cal.deadline(received, wd(15)), at("2026-03-13 00:00"));
    }

    #[test]
    fn hours_ignore_holidays() {
        let cal = HolidayCalendar::official();
        assert_eq!(
            cal.deadline(at("2025-10-01 10:00"), hours(2)),
            at("2025-10-01 12:00")
        );
        assert_eq!(
            cal.deadline(at("2026-02-16 08:30"), hours(24)),
            at("2026-02-17 08:30")
        );
    }

    #[test]
    fn uncovered_year_is_monday_to_friday() {
        let cal = HolidayCalendar::official();
        assert!(!cal.covers(2027));
        // 1 January 2027 will surely be a holiday, but no schedule says so yet.
        assert_eq!(d("2027-01-01").weekday(), Weekday::Fri);
        assert!(cal.is_working_day(d("2027-01-01")));
        assert!(!cal.is_working_day(d("2027-01-02")));
        assert!(!cal.is_working_day(d("2027-01-03")));
        assert!(cal.is_working_day(d("2027-01-04")));
        assert_eq!(
            cal.deadline(at("2026-12-31 10:00"), wd(1)),
            at("2027-01-02 00:00")
        );
    }

    #[test]
    fn merge_adds_a_year() {
        let mut cal = HolidayCalendar::official();
        let next =
            HolidayCalendar::from_toml("[2027]\noff = [\"2027-01-01\"]\nwork = [\"2027-01-03\"]\n")
                .unwrap();
        cal.merge(next);
        assert!(cal.covers(2027));
        assert!(!cal.is_working_day(d("2027-01-01")));
        assert!(cal.is_working_day(d("2027-01-03")));
        // The years already there are kept.
        assert!(cal.covers(2025));
        assert!(!cal.is_working_day(d("2025-10-01")));
        assert!(cal.is_working_day(d("2026-02-14")));
    }

    #[test]
    fn merge_replaces_a_year_wholesale() {
        let mut cal = HolidayCalendar::official();
        let correction =
            HolidayCalendar::from_toml("[2025]\noff = [\"2025-12-31\"]\nwork = []\n").unwrap();
        cal.merge(correction);
        assert!(!cal.is_working_day(d("2025-12-31")));
        // Nothing of the old 2025 schedule survives.
        assert!(cal.is_working_day(d("2025-10-01")));
        assert!(!cal.is_working_day(d("2025-09-28")));
        // Other years are untouched.
        assert!(!cal.is_working_day(d("2026-02-16")));
        assert!(cal.is_working_day(d("2026-02-28")));
    }

    #[test]
    fn with_year_validates_and_replaces() {
        let cal = HolidayCalendar::official()
            .with_year(2027, &[d("2027-01-01")], &[])
            .unwrap();
        assert!(cal.covers(2027));
        assert!(!cal.is_working_day(d("2027-01-01")));
        let cal = cal.with_year(2027, &[], &[]).unwrap();
        assert!(cal.is_working_day(d("2027-01-01")));
        let err = HolidayCalendar::official()
            .with_year(2027, &[], &[d("2027-01-06")])
            .unwrap_err();
        assert_eq!(err.code, "work_not_weekend");
        let err = HolidayCalendar::official()
            .with_year(2027, &[d("2028-01-01")], &[])
            .unwrap_err();
        assert_eq!(err.code, "date_outside_year");
        let err = HolidayCalendar::official()
            .with_year(27, &[], &[])
            .unwrap_err();
        assert_eq!(err.code, "invalid_year");
    }

    #[test]
    fn rejects_bad_schedules() {
        // 8 October 2025 is a Wednesday.
        let err = rejects("[2025]\noff = []\nwork = [\"2025-10-08\"]\n");
        assert_eq!(
            (err.field.as_str(), err.code),
            ("2025.work", "work_not_weekend")
        );

        let err = rejects("[2025]\noff = [\"2026-01-01\"]\nwork = []\n");
        assert_eq!(
            (err.field.as_str(), err.code),
            ("2025.off", "date_outside_year")
        );

        let err = rejects("[2025]\noff = [\"2025-09-28\"]\nwork = [\"2025-09-28\"]\n");
        assert_eq!(
            (err.field.as_str(), err.code),
            ("2025.work", "off_and_work")
        );

        for key in ["25", "20250", "year", "２０２５"] {
            let err = rejects(&format!("[\"{key}\"]\noff = []\nwork = []\n"));
            assert_eq!(err.code, "invalid_year", "{key}");
        }
        assert_eq!(rejects("2025 = 1\n").code, "invalid_year");

        for date in [
            "2025-1-1",
            "2025-02-30",
            "2025/10/01",
            "",
            "2025-10-01T00:00",
        ] {
            let err = rejects(&format!("[2025]\noff = [\"{date}\"]\nwork = []\n"));
            assert_eq!(
                (err.field.as_str(), err.code),
                ("2025.off", "invalid_date"),
                "{date}"
            );
        }
        // A bare TOML date or a number is not the documented form.
        assert_eq!(
            rejects("[2025]\noff = [2025-10-01]\nwork = []\n").code,
            "invalid_date"
        );
        assert_eq!(
            rejects("[2025]\noff = [20251001]\nwork = []\n").code,
            "invalid_date"
        );

        let err = rejects("[2025]\noff = []\n");
        assert_eq!(
            (err.field.as_str(), err.code),
            ("2025.work", "missing_list")
        );
        assert_eq!(
            rejects("[2025]\noff = \"2025-10-01\"\nwork = []\n").code,
            "invalid_list"
        );
        let err = rejects("[2025]\noff = []\nwork = []\nof = [\"2025-10-01\"]\n");
        assert_eq!((err.field.as_str(), err.code), ("2025.of", "unknown_key"));

        let err = rejects("[2025]\noff = [\n");
        assert_eq!((err.field.as_str(), err.code), ("holidays", "invalid_toml"));
    }

    #[test]
    fn an_empty_schedule_covers_nothing() {
        let cal = HolidayCalendar::from_toml("").unwrap();
        assert!(!cal.covers(2025));
        assert!(cal.is_working_day(d("2025-10-01")));
    }

    #[test]
    fn working_days_between_known_ranges() {
        let cal = HolidayCalendar::official();
        assert_eq!(
            cal.working_days_between(d("2025-09-30"), d("2025-10-08")),
            0
        );
        assert_eq!(
            cal.working_days_between(d("2025-09-25"), d("2025-10-11")),
            7
        );
        assert_eq!(
            cal.working_days_between(d("2025-10-11"), d("2025-09-25")),
            -7
        );
        assert_eq!(
            cal.working_days_between(d("2025-10-11"), d("2025-10-11")),
            0
        );
        // 365 days less 104 weekend days and 13 statutory holidays, in both years.
        assert_eq!(
            cal.working_days_between(d("2024-12-31"), d("2025-12-31")),
            248
        );
        assert_eq!(
            cal.working_days_between(d("2025-12-31"), d("2026-12-31")),
            248
        );
    }

    #[test]
    fn time_limits_parse() {
        assert_eq!(TimeLimit::parse("2h").unwrap(), hours(2));
        assert_eq!(TimeLimit::parse("24h").unwrap(), hours(24));
        assert_eq!(TimeLimit::parse(" 7wd ").unwrap(), wd(7));
        let complex = TimeLimit::parse("15wd").unwrap();
        assert_eq!(
            (complex.unit(), complex.amount()),
            (LimitUnit::WorkingDays, 15)
        );
        assert_eq!(complex.to_string(), "15wd");
        assert_eq!(TimeLimit::parse("8760h").unwrap().amount(), 8760);
        assert_eq!(TimeLimit::parse("250wd").unwrap().amount(), 250);

        for bad in [
            "", "h", "wd", "7", "7d", "7 wd", "-1h", "+7wd", "1.5h", "7WD", "七wd",
        ] {
            let err = TimeLimit::parse(bad).unwrap_err();
            assert_eq!(
                (err.field.as_str(), err.code),
                ("time_limit", "invalid_time_limit"),
                "{bad}"
            );
        }
        for bad in ["0h", "0wd", "8761h", "251wd", "99999999999h"] {
            let err = TimeLimit::parse(bad).unwrap_err();
            assert_eq!(
                (err.field.as_str(), err.code),
                ("time_limit", "out_of_range"),
                "{bad}"
            );
        }
        assert!(TimeLimit::working_days(0).is_err());
        assert!(TimeLimit::hours(0).is_err());
    }

    #[test]
    fn time_limits_serialise_as_text() {
        assert_eq!(serde_json::to_string(&wd(7)).unwrap(), "\"7wd\"");
        assert_eq!(
            serde_json::from_str::<TimeLimit>("\"2h\"").unwrap(),
            hours(2)
        );
        assert!(serde_json::from_str::<TimeLimit>("\"0wd\"").is_err());
    }

    #[test]
    fn warnings_and_overdue() {
        let received = at("2025-10-01 10:00");
        let deadline = HolidayCalendar::official().deadline(received, hours(2));
        assert_eq!(
            warning_at(received, deadline, 0.8).unwrap(),
            at("2025-10-01 11:36")
        );
        // 7 working days from 25 September: 398 hours, of which 80% is 318 h 24 min.
        let received = at("2025-09-25 10:00");
        let deadline = at("2025-10-12 00:00");
        assert_eq!(
            warning_at(received, deadline, 0.8).unwrap(),
            at("2025-10-08 16:24")
        );
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            let err = warning_at(received, deadline, bad).unwrap_err();
            assert_eq!(err.field, "warning_fraction");
        }
        assert!(!is_overdue(deadline - Duration::seconds(1), deadline));
        assert!(is_overdue(deadline, deadline));
    }

    /// The plain definition, day by day, to check the arithmetic one against.
    fn naive_between(cal: &HolidayCalendar, from: NaiveDate, to: NaiveDate) -> i64 {
        let count = |a: NaiveDate, b: NaiveDate| {
            a.iter_days()
                .skip(1)
                .take_while(|day| *day <= b)
                .filter(|day| cal.is_working_day(*day))
                .count() as i64
        };
        if to < from {
            -count(to, from)
        } else {
            count(from, to)
        }
    }

    /// Instants from 2025-01-01 00:00 to the end of 2026, Shanghai time.
    fn received_2025_2026() -> impl Strategy<Value = DateTime<Utc>> {
        let start = at("2025-01-01 00:00").timestamp();
        let end = at("2027-01-01 00:00").timestamp();
        (start..end).prop_map(|secs| DateTime::from_timestamp(secs, 0).unwrap())
    }

    proptest! {
        #[test]
        fn working_day_deadlines_end_a_working_day(received in received_2025_2026(), n in 1u32..30) {
            let cal = HolidayCalendar::official();
            let deadline = cal.deadline(received, wd(n));
            prop_assert!(deadline > received);
            prop_assert_eq!(deadline.with_timezone(&SHANGHAI).time(), NaiveTime::MIN);
            let last = local_day(deadline).pred_opt().unwrap();
            prop_assert!(cal.is_working_day(last));
            let receipt = local_day(received);
            prop_assert_eq!(naive_between(&cal, receipt, last), i64::from(n));
            prop_assert_eq!(cal.working_days_between(receipt, last), i64::from(n));
        }

        #[test]
        fn more_working_days_or_later_receipt_never_earlier(
            received in received_2025_2026(),
            later_by in 0i64..(40 * 86_400),
            n in 1u32..30,
            more in 1u32..10,
        ) {
            let cal = HolidayCalendar::official();
            prop_assert!(cal.deadline(received, wd(n)) < cal.deadline(received, wd(n + more)));
            let later = received + Duration::seconds(later_by);
            prop_assert!(cal.deadline(received, wd(n)) <= cal.deadline(later, wd(n)));
        }

        #[test]
        fn hour_deadlines_are_wall_clock(received in received_2025_2026(), h in 1u32..=TimeLimit::MAX_HOURS) {
            let cal = HolidayCalendar::official();
            let deadline = cal.deadline(received, hours(h));
            prop_assert_eq!(deadline - received, Duration::hours(i64::from(h)));
        }

        #[test]
        fn working_days_between_matches_counting(start in 0i64..(4 * 366), span in -400i64..400) {
            let cal = HolidayCalendar::official();
            let from = d("2024-06-01") + Duration::days(start);
            let to = from + Duration::days(span);
            prop_assert_eq!(cal.working_days_between(from, to), naive_between(&cal, from, to));
            prop_assert_eq!(cal.working_days_between(to, from), -cal.working_days_between(from, to));
        }

        #[test]
        fn time_limits_round_trip_as_text(working in any::<bool>(), amount in 1u32..=250) {
            let limit = if working { wd(amount) } else { hours(amount) };
            prop_assert_eq!(TimeLimit::parse(&limit.to_string()).unwrap(), limit);
        }

        #[test]
        fn warnings_fall_within_the_span(received in received_2025_2026(), n in 1u32..30, fraction in 0.0f64..=1.0) {
            let cal = HolidayCalendar::official();
            let deadline = cal.deadline(received, wd(n));
            let warning = warning_at(received, deadline, fraction).unwrap();
            prop_assert!(received <= warning && warning <= deadline);
            prop_assert_eq!(warning_at(received, deadline, 0.0).unwrap(), received);
            prop_assert_eq!(warning_at(received, deadline, 1.0).unwrap(), deadline);
        }
    }
}
