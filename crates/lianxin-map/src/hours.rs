//! Weekly opening hours with dated exceptions: is a station open now, and when does
//! that change.
//!
//! **Time zone.** Hours are wall-clock times in Asia/Shanghai, which is UTC+8 all year:
//! China has had no daylight saving time since 1991, so a fixed offset is exact for
//! every date this software will see and needs no time-zone database. Instants come in
//! and go out as UTC.
//!
//! **Text format.** A subset of OpenStreetMap's `opening_hours`, which station data
//! already uses:
//!
//! ```text
//! Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00
//! Mo-Fr 08:00-12:00,14:00-20:00; Su off
//! 24/7
//! 00:00-24:00            (no days: every day)
//! Fr-Mo 10:00-22:00      (ranges may wrap past Sunday)
//! ```
//!
//! Day names are `Mo Tu We Th Fr Sa Su` (any case) or `周一`…`周日` / `星期一`…`星期日`;
//! full-width punctuation (`；，：－～`) is accepted. Times are `HH:MM`, and `24:00` may
//! end an interval. An interval must end after it starts: a night shift across midnight
//! is written as two pieces (`Fr 22:00-24:00; Sa 00:00-02:00`), and adjoining pieces
//! count as one open stretch. Unlike OSM, rules *add up* instead of later rules
//! replacing earlier ones, so overlapping intervals on a day are an error that names the
//! day and both intervals (overlap is almost always a typing mistake in station data).
//! `off` closes its days whatever else the text says, so `24/7; Su off` and
//! `08:00-20:00; Su off` read as meant. Public holidays (`PH`) are not a day name
//! here: give them as dated exceptions.
//!
//! **Exceptions.** A date may replace its weekday's hours: closed all day, or special
//! intervals ([`DayRule`], parsed from `off` or `09:00-12:00,…`).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Timelike, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Asia/Shanghai's offset from UTC, seconds (no daylight saving time).
pub const SHANGHAI_OFFSET_SECS: i64 = 8 * 3600;
const DAY_MINUTES: u16 = 24 * 60;
const DAY_NAMES: [&str; 7] = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"];

/// Why opening hours were refused. Each message quotes the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("opening hours are empty")]
    Empty,
    #[error("unknown day name {name:?} in {piece:?}: use Mo, Tu, We, Th, Fr, Sa, Su")]
    UnknownDay { name: String, piece: String },
    #[error("bad time {time:?} in {piece:?}: use HH:MM between 00:00 and 24:00")]
    BadTime { time: String, piece: String },
    #[error(
        "interval {piece:?} does not end after it starts; write a night across midnight \
         as two pieces, e.g. 22:00-24:00 and 00:00-02:00 on the next day"
    )]
    EndBeforeStart { piece: String },
    #[error("intervals {first} and {second} overlap on {day}")]
    Overlap {
        day: String,
        first: String,
        second: String,
    },
    #[error("cannot read {piece:?}: {reason}")]
    Syntax { piece: String, reason: &'static str },
    #[error("the exception for {0} is given twice")]
    DuplicateDate(NaiveDate),
}

impl HoursError {
    /// A stable machine code for API and import errors.
    pub fn code(&self) -> &'static str {
        match self {
            HoursError::Empty => "hours_empty",
            HoursError::UnknownDay { .. } => "hours_unknown_day",
            HoursError::BadTime { .. } => "hours_bad_time",
            HoursError::EndBeforeStart { .. } => "hours_end_before_start",
            HoursError::Overlap { .. } => "hours_overlap",
            HoursError::Syntax { .. } => "hours_syntax",
            HoursError::DuplicateDate(_) => "hours_duplicate_date",
        }
    }
}

/// An open stretch within one local day, `start` inclusive to `end` exclusive, in
/// minutes after midnight; `end` may be 1440 (24:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Interval {
    start: u16,
    end: u16,
}

impl Interval {
    /// Minutes after local midnight; needs `start < end <= 1440`.
    pub fn new(start: u16, end: u16) -> Option<Interval> {
        (start < end && end <= DAY_MINUTES).then_some(Interval { start, end })
    }

    pub fn start_minute(self) -> u16 {
        self.start
    }

    pub fn end_minute(self) -> u16 {
        self.end
    }

    fn contains(self, minute: u16) -> bool {
        self.start <= minute && minute < self.end
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

impl FromStr for Interval {
    type Err = HoursError;

    /// `HH:MM-HH:MM`.
    fn from_str(s: &str) -> Result<Interval, HoursError> {
        let s = normalize(s);
        let piece = s.trim();
        let (a, b) = piece.split_once('-').ok_or_else(|| HoursError::Syntax {
            piece: piece.to_owned(),
            reason: "expected an interval like 08:00-20:00",
        })?;
        let start = parse_time(a.trim(), piece)?;
        let end = parse_time(b.trim(), piece)?;
        if start == DAY_MINUTES {
            return Err(HoursError::BadTime {
                time: a.trim().to_owned(),
                piece: piece.to_owned(),
            });
        }
        Interval::new(start, end).ok_or_else(|| HoursError::EndBeforeStart {
            piece: piece.to_owned(),
        })
    }
}

fn parse_time(t: &str, piece: &str) -> Result<u16, HoursError> {
    let bad = || HoursError::BadTime {
        time: t.to_owned(),
        piece: piece.to_owned(),
    };
    let (h, m) = t.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str, max_len: usize| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 2) || m.len() != 2 || !digits(m, 2) {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// The hours of one day: closed, or open in sorted, non-overlapping intervals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DayRule {
    Closed,
    Open(Vec<Interval>),
}

impl DayRule {
    /// The intervals open (none when closed).
    pub fn intervals(&self) -> &[Interval] {
        match self {
            DayRule::Closed => &[],
            DayRule::Open(v) => v,
        }
    }
}

impl FromStr for DayRule {
    type Err = HoursError;

    /// `off` / `closed` / `休息`, or intervals `09:00-12:00,14:00-18:00`.
    fn from_str(s: &str) -> Result<DayRule, HoursError> {
        let s = normalize(s);
        let s = s.trim();
        if s.is_empty() {
            return Err(HoursError::Empty);
        }
        if is_off(s) {
            return Ok(DayRule::Closed);
        }
        let mut v = parse_intervals(s)?;
        check_overlap(&mut v, "that day")?;
        Ok(DayRule::Open(v))
    }
}

impl fmt::Display for DayRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DayRule::Closed => f.write_str("off"),
            DayRule::Open(v) => write_intervals(f, v),
        }
    }
}

fn write_intervals(f: &mut fmt::Formatter<'_>, v: &[Interval]) -> fmt::Result {
    for (i, iv) in v.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{iv}")?;
    }
    Ok(())
}

fn is_off(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "off" | "closed" | "休息" | "关闭"
    )
}

fn parse_intervals(s: &str) -> Result<Vec<Interval>, HoursError> {
    s.split(',').map(|p| p.trim().parse()).collect()
}

/// Sort, then refuse any overlap (touching is fine).
fn check_overlap(v: &mut [Interval], day: &str) -> Result<(), HoursError> {
    v.sort();
    for w in v.windows(2) {
        if w[1].start < w[0].end {
            return Err(HoursError::Overlap {
                day: day.to_owned(),
                first: w[0].to_string(),
                second: w[1].to_string(),
            });
        }
    }
    Ok(())
}

/// Full-width punctuation to ASCII, so text typed with a Chinese input method parses.
fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '；' => ';',
            '，' | '、' => ',',
            '：' => ':',
            '－' | '–' | '—' | '~' | '～' | '至' => '-',
            '\u{3000}' => ' ',
            c => c,
        })
        .collect()
}

fn parse_day(name: &str, piece: &str) -> Result<usize, HoursError> {
    let n = name.trim();
    let lower = n.to_ascii_lowercase();
    if let Some(i) = DAY_NAMES
        .iter()
        .position(|d| d.eq_ignore_ascii_case(&lower))
    {
        return Ok(i);
    }
    let cn = n.trim_start_matches("星期").trim_start_matches('周');
    let i = match cn {
        "一" => 0,
        "二" => 1,
        "三" => 2,
        "四" => 3,
        "五" => 4,
        "六" => 5,
        "日" | "天" => 6,
        _ => {
            return Err(HoursError::UnknownDay {
                name: n.to_owned(),
                piece: piece.to_owned(),
            })
        }
    };
    Ok(i)
}

/// `Mo-Fr,Su` → the weekday indices (Monday = 0), ranges wrapping past Sunday.
fn parse_days(s: &str, piece: &str) -> Result<Vec<usize>, HoursError> {
    let mut days = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse_day(a, piece)?, parse_day(b, piece)?);
                let mut d = a;
                loop {
                    days.push(d);
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days.push(parse_day(item, piece)?),
        }
    }
    Ok(days)
}

/// Weekly hours plus dated exceptions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpeningHours {
    /// Monday first; empty means closed.
    week: [Vec<Interval>; 7],
    exceptions: BTreeMap<NaiveDate, DayRule>,
}

impl OpeningHours {
    /// Parse the weekly text (see the module documentation).
    pub fn parse(text: &str) -> Result<OpeningHours, HoursError> {
        let text = normalize(text);
        let text = text.trim();
        if text.is_empty() {
            return Err(HoursError::Empty);
        }
        let mut week: [Vec<Interval>; 7] = Default::default();
        let mut off = [false; 7];
        for piece in text.split(';') {
            let piece = piece.trim();
            if piece.is_empty() {
                continue;
            }
            let (days, times) = if piece == "24/7" {
                ((0..7).collect(), "00:00-24:00")
            } else if piece.starts_with(|c: char| c.is_ascii_digit()) || is_off(piece) {
                ((0..7).collect(), piece)
            } else {
                let (d, t) =
                    piece
                        .split_once(char::is_whitespace)
                        .ok_or_else(|| HoursError::Syntax {
                            piece: piece.to_owned(),
                            reason: "expected days then times, like Mo-Fr 08:00-20:00",
                        })?;
                (parse_days(d, piece)?, t.trim())
            };
            let rule: DayRule = if times == "24/7" {
                DayRule::Open(vec![Interval {
                    start: 0,
                    end: DAY_MINUTES,
                }])
            } else if is_off(times) {
                DayRule::Closed
            } else {
                DayRule::Open(parse_intervals(times)?)
            };
            for d in days {
                match &rule {
                    DayRule::Closed => off[d] = true,
                    DayRule::Open(v) => {
                        week[d].extend(v);
                        check_overlap(&mut week[d], DAY_NAMES[d])?;
                    }
                }
            }
        }
        for (day, off) in week.iter_mut().zip(off) {
            if off {
                day.clear();
            }
        }
        Ok(OpeningHours {
            week,
            exceptions: BTreeMap::new(),
        })
    }

    /// Add dated exceptions; a date given twice is an error.
    pub fn with_exceptions(
        mut self,
        exceptions: impl IntoIterator<Item = (NaiveDate, DayRule)>,
    ) -> Result<OpeningHours, HoursError> {
        for (date, mut rule) in exceptions {
            if let DayRule::Open(v) = &mut rule {
                check_overlap(v, &date.to_string())?;
                if v.is_empty() {
                    rule = DayRule::Closed;
                }
            }
            if self.exceptions.insert(date, rule).is_some() {
                return Err(HoursError::DuplicateDate(date));
            }
        }
        Ok(self)
    }

    /// The exceptions, by date.
    pub fn exceptions(&self) -> &BTreeMap<NaiveDate, DayRule> {
        &self.exceptions
    }

    /// The open intervals on a local date, exceptions applied.
    pub fn intervals_on(&self, date: NaiveDate) -> &[Interval] {
        match self.exceptions.get(&date) {
            Some(rule) => rule.intervals(),
            None => &self.week[date.weekday().num_days_from_monday() as usize],
        }
    }

    /// Whether open at an instant.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = to_local(at);
        let minute = (local.hour() * 60 + local.minute()) as u16;
        self.intervals_on(local.date())
            .iter()
            .any(|iv| iv.contains(minute))
    }

    /// The first instant after `at` when [`is_open`](Self::is_open) flips, or `None`
    /// if it never does (always open, or never open).
    pub fn next_change(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let now = self.is_open(at);
        let local = to_local(at);
        let today = local.date();
        // After the last exception the week repeats, so 8 more days decide it.
        let last = self
            .exceptions
            .keys()
            .next_back()
            .copied()
            .map_or(today, |d| d.max(today));
        let mut date = today;
        while date <= last + TimeDelta::days(8) {
            let ivs = self.intervals_on(date);
            let mut marks: Vec<u16> = std::iter::once(0)
                .chain(ivs.iter().flat_map(|iv| [iv.start, iv.end]))
                .filter(|&m| m < DAY_MINUTES)
                .collect();
            marks.sort_unstable();
            for m in marks {
                let instant = date.and_hms_opt(0, 0, 0)? + TimeDelta::minutes(i64::from(m));
                if instant > local && ivs.iter().any(|iv| iv.contains(m)) != now {
                    return Some(from_local(instant));
                }
            }
            date = date.succ_opt()?;
        }
        None
    }
}

impl FromStr for OpeningHours {
    type Err = HoursError;
    fn from_str(s: &str) -> Result<OpeningHours, HoursError> {
        OpeningHours::parse(s)
    }
}

impl fmt::Display for OpeningHours {
    /// The weekly part in canonical form: runs of days with equal hours, closed days
    /// left out (`24/7` when open all week). Parsing it gives the same week back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all_day = [Interval {
            start: 0,
            end: DAY_MINUTES,
        }];
        if self.week.iter().all(|d| d[..] == all_day) {
            return f.write_str("24/7");
        }
        if self.week.iter().all(|d| d.is_empty()) {
            return f.write_str("off");
        }
        let mut first = true;
        let mut d = 0;
        while d < 7 {
            let mut e = d;
            while e + 1 < 7 && self.week[e + 1] == self.week[d] {
                e += 1;
            }
            if !self.week[d].is_empty() {
                if !first {
                    f.write_str("; ")?;
                }
                first = false;
                match e - d {
                    0 => f.write_str(DAY_NAMES[d])?,
                    1 => write!(f, "{},{}", DAY_NAMES[d], DAY_NAMES[e])?,
                    _ => write!(f, "{}-{}", DAY_NAMES[d], DAY_NAMES[e])?,
                }
                f.write_str(" ")?;
                write_intervals(f, &self.week[d])?;
            }
            d = e + 1;
        }
        Ok(())
    }
}

fn to_local(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc() + TimeDelta::seconds(SHANGHAI_OFFSET_SECS)
}

fn from_local(t: NaiveDateTime) -> DateTime<Utc> {
    (t - TimeDelta::seconds(SHANGHAI_OFFSET_SECS)).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    /// A Shanghai wall-clock time as UTC.
    fn sh(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap() - TimeDelta::hours(8)
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    // 2026-11-30 is a Monday.
    #[test]
    fn weekdays_and_weekends() {
        let h = OpeningHours::parse("Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00").unwrap();
        assert!(!h.is_open(sh(2026, 11, 30, 7, 59)));
        assert!(h.is_open(sh(2026, 11, 30, 8, 0)));
        assert!(h.is_open(sh(2026, 11, 30, 19, 59)));
        assert!(!h.is_open(sh(2026, 11, 30, 20, 0)));
        assert!(!h.is_open(sh(2026, 12, 5, 8, 30)));
        assert!(h.is_open(sh(2026, 12, 5, 9, 0)));
        assert_eq!(h.to_string(), "Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00");
    }

    #[test]
    fn next_change_walks_the_week() {
        let h = OpeningHours::parse("Mo-Fr 08:00-12:00,14:00-20:00").unwrap();
        let mon = |hh, mm| sh(2026, 11, 30, hh, mm);
        assert_eq!(h.next_change(mon(7, 0)), Some(mon(8, 0)));
        assert_eq!(h.next_change(mon(8, 0)), Some(mon(12, 0)));
        assert_eq!(h.next_change(mon(12, 30)), Some(mon(14, 0)));
        // Friday evening → Monday morning.
        assert_eq!(
            h.next_change(sh(2026, 12, 4, 20, 0)),
            Some(sh(2026, 12, 7, 8, 0))
        );
        // Seconds past a boundary count as after it.
        let just_after = mon(8, 0) + TimeDelta::seconds(1);
        assert!(h.is_open(just_after));
        assert_eq!(h.next_change(just_after), Some(mon(12, 0)));
    }

    #[test]
    fn open_across_midnight_is_one_stretch() {
        let h = OpeningHours::parse("Fr 18:00-24:00; Sa 00:00-02:00").unwrap();
        assert!(h.is_open(sh(2026, 12, 4, 23, 59)));
        assert!(h.is_open(sh(2026, 12, 5, 0, 0)));
        assert_eq!(
            h.next_change(sh(2026, 12, 4, 19, 0)),
            Some(sh(2026, 12, 5, 2, 0))
        );
    }

    #[test]
    fn always_and_never() {
        let h = OpeningHours::parse("24/7").unwrap();
        assert!(h.is_open(sh(2026, 1, 1, 3, 0)));
        assert_eq!(h.next_change(sh(2026, 1, 1, 3, 0)), None);
        assert_eq!(h.to_string(), "24/7");
        assert_eq!(OpeningHours::parse("00:00-24:00").unwrap(), h);
        let closed = OpeningHours::parse("off").unwrap();
        assert!(!closed.is_open(sh(2026, 1, 1, 3, 0)));
        assert_eq!(closed.next_change(sh(2026, 1, 1, 3, 0)), None);
    }

    #[test]
    fn exceptions_replace_the_day() {
        let h = OpeningHours::parse("24/7")
            .unwrap()
            .with_exceptions([
                (date(2026, 10, 1), DayRule::Closed),
                (date(2026, 10, 2), "10:00-16:00".parse().unwrap()),
            ])
            .unwrap();
        assert!(!h.is_open(sh(2026, 10, 1, 12, 0)));
        assert!(h.is_open(sh(2026, 10, 2, 12, 0)));
        assert!(!h.is_open(sh(2026, 10, 2, 9, 0)));
        assert_eq!(
            h.next_change(sh(2026, 9, 30, 12, 0)),
            Some(sh(2026, 10, 1, 0, 0))
        );
        assert_eq!(
            h.next_change(sh(2026, 10, 1, 5, 0)),
            Some(sh(2026, 10, 2, 10, 0))
        );
        assert_eq!(
            h.next_change(sh(2026, 10, 2, 11, 0)),
            Some(sh(2026, 10, 2, 16, 0))
        );
        assert_eq!(
            h.next_change(sh(2026, 10, 2, 17, 0)),
            Some(sh(2026, 10, 3, 0, 0))
        );
        assert_eq!(h.next_change(sh(2026, 10, 3, 1, 0)), None);
        // A closure far ahead is still found.
        let far = OpeningHours::parse("24/7")
            .unwrap()
            .with_exceptions([(date(2027, 6, 1), DayRule::Closed)])
            .unwrap();
        assert_eq!(
            far.next_change(sh(2026, 10, 2, 17, 0)),
            Some(sh(2027, 6, 1, 0, 0))
        );
        let dup = OpeningHours::default().with_exceptions([
            (date(2026, 10, 1), DayRule::Closed),
            (date(2026, 10, 1), DayRule::Closed),
        ]);
        assert_eq!(dup, Err(HoursError::DuplicateDate(date(2026, 10, 1))));
    }

    #[test]
    fn chinese_input() {
        let h = OpeningHours::parse("周一至周五 08:00－20:00；周六、周日 09：00-18：00").unwrap();
        assert_eq!(h.to_string(), "Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00");
        assert_eq!("休息".parse::<DayRule>(), Ok(DayRule::Closed));
    }

    #[test]
    fn wrapping_day_range() {
        let h = OpeningHours::parse("Fr-Mo 10:00-22:00").unwrap();
        assert_eq!(h.to_string(), "Mo 10:00-22:00; Fr-Su 10:00-22:00");
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |s: &str| OpeningHours::parse(s).unwrap_err();
        let e = err("Mo-Fr 20:00-08:00");
        assert_eq!(e.code(), "hours_end_before_start");
        assert!(e.to_string().contains("20:00-08:00"), "{e}");
        assert_eq!(err("Mo 08:00-08:00").code(), "hours_end_before_start");
        let e = err("Mo-Fr 08:00-12:00,11:00-14:00");
        assert_eq!(
            e,
            HoursError::Overlap {
                day: "Mo".into(),
                first: "08:00-12:00".into(),
                second: "11:00-14:00".into()
            }
        );
        assert!(e.to_string().contains("overlap on Mo"), "{e}");
        assert_eq!(
            err("Mo-Fr 08:00-12:00; We 10:00-11:00").code(),
            "hours_overlap"
        );
        let e = err("Mo-Xy 08:00-12:00");
        assert_eq!(e.code(), "hours_unknown_day");
        assert!(e.to_string().contains("\"Xy\""), "{e}");
        assert_eq!(err("Mo 25:00-26:00").code(), "hours_bad_time");
        assert_eq!(err("Mo 8:0-9:00").code(), "hours_bad_time");
        assert_eq!(err("Mo 24:00-24:00").code(), "hours_bad_time");
        assert_eq!(err("Mo 08:00").code(), "hours_syntax");
        assert_eq!(err("Mo-Fr").code(), "hours_syntax");
        assert_eq!(err("   ").code(), "hours_empty");
        let sunday_off = OpeningHours::parse("08:00-20:00; Su off").unwrap();
        assert_eq!(sunday_off.to_string(), "Mo-Sa 08:00-20:00");
        assert_eq!(
            OpeningHours::parse("Su off; 24/7").unwrap().to_string(),
            "Mo-Sa 00:00-24:00"
        );
        assert_eq!(err("Mo-Fr 08:00-20:00; PH off").code(), "hours_unknown_day");
        // Touching is not overlapping, and 24:00 may end an interval.
        assert!(OpeningHours::parse("Mo 08:00-12:00,12:00-24:00").is_ok());
        assert!(OpeningHours::parse("Mo-Sa 08:00-20:00; Su off").is_ok());
        assert!("10:00-12:00,11:00-13:00".parse::<DayRule>().is_err());
    }

    fn week_strategy() -> impl Strategy<Value = [Vec<Interval>; 7]> {
        let day = prop::collection::vec(0u16..=1440, 0..6).prop_map(|mut cuts| {
            cuts.sort_unstable();
            cuts.dedup();
            cuts.chunks_exact(2)
                .filter_map(|c| Interval::new(c[0], c[1]))
                .collect::<Vec<_>>()
        });
        prop::array::uniform7(day)
    }

    proptest! {
        #[test]
        fn display_round_trips(week in week_strategy()) {
            let h = OpeningHours { week, exceptions: BTreeMap::new() };
            let text = h.to_string();
            prop_assert_eq!(OpeningHours::parse(&text).unwrap(), h, "{}", text);
        }

        /// next_change agrees with a minute-by-minute scan.
        #[test]
        fn next_change_matches_a_scan(week in week_strategy(), start in 0i64..(7 * 1440)) {
            let h = OpeningHours { week, exceptions: BTreeMap::new() };
            let at = sh(2026, 11, 30, 0, 0) + TimeDelta::minutes(start) + TimeDelta::seconds(30);
            let now = h.is_open(at);
            let mut scan = None;
            for m in 1..=(8 * 1440) {
                let t = sh(2026, 11, 30, 0, 0) + TimeDelta::minutes(start + m);
                if h.is_open(t) != now {
                    scan = Some(t);
                    break;
                }
            }
            prop_assert_eq!(h.next_change(at), scan);
        }
    }
}
