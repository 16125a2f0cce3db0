//! Organisation tiers (抓两头带中间): what an indicator is, how improvement-plan
//! actions stand, and how an indicator file is read.
//!
//! The tier itself — the mean of an organisation's indicators against the thresholds
//! the organisation department sets — is [`crate::contact::tier`]. This module holds
//! the rules around it:
//!
//! - only **party organisations** (党委、党总支、党支部、行业党委) are tiered;
//! - an **indicator** is a name (组织生活, 党员教育 …), a value on 0–100 and the
//!   **evidence** it rests on, which is required: a score nobody can check is not
//!   evidence;
//! - a year's indicators are a **set**: one value per name, at most
//!   [`MAX_INDICATORS`];
//! - an improvement-plan **action** is open, done, or overdue (due before today and
//!   not done);
//! - an **indicator file** is CSV with the columns `org_code, year, name, value, note`
//!   (or their Chinese headers), read whole or refused at its first bad row.

use crate::contact::Tier;
use crate::org::OrgKind;
use crate::ValidationError;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The most indicators one organisation may have in one year.
pub const MAX_INDICATORS: usize = 20;
/// The longest indicator name, in characters.
pub const MAX_NAME: usize = 30;
/// The longest evidence note, in characters.
pub const MAX_NOTE: usize = 500;
/// The longest plan, action or designation title, in characters.
pub const MAX_TITLE: usize = 100;

/// Whether organisations of this kind are tiered: the party organisations.
pub fn is_party_org(kind: OrgKind) -> bool {
    matches!(
        kind,
        OrgKind::PartyCommittee
            | OrgKind::GeneralBranch
            | OrgKind::Branch
            | OrgKind::IndustryPartyCommittee
    )
}

/// The party-organisation kinds, as stored.
pub const PARTY_KINDS: [&str; 4] = [
    "party_committee",
    "general_branch",
    "branch",
    "industry_party_committee",
];

/// A year of assessment: 2000 to 2100.
pub fn parse_year(field: &str, year: i64) -> Result<i64, ValidationError> {
    if (2000..=2100).contains(&year) {
        Ok(year)
    } else {
        Err(ValidationError::new(
            field,
            "invalid_year",
            "year must be between 2000 and 2100",
        ))
    }
}

/// A year written as text (a query string, a form, a CSV cell).
pub fn parse_year_text(field: &str, raw: &str) -> Result<i64, ValidationError> {
    raw.trim()
        .parse::<i64>()
        .map_err(|_| ValidationError::new(field, "invalid_year", "year must be a number"))
        .and_then(|y| parse_year(field, y))
}

/// Short text: trimmed, 1 to `max` characters, no control characters.
pub fn parse_text(field: &str, raw: &str, max: usize) -> Result<String, ValidationError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(ValidationError::new(
            field,
            "required",
            format!("{field} is required"),
        ));
    }
    if s.chars().count() > max {
        return Err(ValidationError::new(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        ));
    }
    // Line breaks are allowed in notes; other control characters never are.
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
        return Err(ValidationError::new(
            field,
            "invalid_text",
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(s.to_string())
}

/// An indicator as a client sends it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RawIndicator {
    pub name: String,
    pub value: f64,
    #[serde(default)]
    pub note: String,
}

/// A validated indicator: its name, its value on 0–100, and the evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Indicator {
    pub name: String,
    pub value: f64,
    pub note: String,
}

impl Indicator {
    /// Field names in errors are `name`, `value` and `note`; a caller that knows
    /// where the indicator sits renames them (see [`indicator_set`]).
    pub fn parse(name: &str, value: f64, note: &str) -> Result<Indicator, ValidationError> {
        let name = parse_text("name", name, MAX_NAME)?;
        if name.contains('\n') || name.contains('\r') {
            return Err(ValidationError::new(
                "name",
                "invalid_text",
                "name must be one line",
            ));
        }
        if !value.is_finite() || !(0.0..=100.0).contains(&value) {
            return Err(ValidationError::new(
                "value",
                "out_of_range",
                "value must be between 0 and 100",
            ));
        }
        let note = parse_text("note", note, MAX_NOTE).map_err(|e| {
            if e.code == "required" {
                ValidationError::new(
                    "note",
                    "no_evidence",
                    "note is required: say what the value rests on (records, checks, counts)",
                )
            } else {
                e
            }
        })?;
        Ok(Indicator { name, value, note })
    }
}

/// A year's indicators for one organisation: at least one, at most
/// [`MAX_INDICATORS`], one per name. Errors name the field as
/// `indicators[i].name` and so on.
pub fn indicator_set(raw: &[RawIndicator]) -> Result<Vec<Indicator>, ValidationError> {
    if raw.is_empty() {
        return Err(ValidationError::new(
            "indicators",
            "no_evidence",
            "give at least one indicator",
        ));
    }
    if raw.len() > MAX_INDICATORS {
        return Err(ValidationError::new(
            "indicators",
            "too_many",
            format!("at most {MAX_INDICATORS} indicators per organisation and year"),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        let ind = Indicator::parse(&r.name, r.value, &r.note).map_err(|e| {
            let f = format!("indicators[{i}].{}", e.field);
            e.in_field(f)
        })?;
        if !seen.insert(ind.name.clone()) {
            return Err(ValidationError::new(
                format!("indicators[{i}].name"),
                "duplicate_indicator",
                "each indicator name may appear once per organisation and year",
            ));
        }
        out.push(ind);
    }
    Ok(out)
}

/// The (name, value) pairs [`crate::contact::tier`] takes.
pub fn evidence_pairs(indicators: &[Indicator]) -> Vec<(String, f64)> {
    indicators
        .iter()
        .map(|i| (i.name.clone(), i.value))
        .collect()
}

/// Where an organisation stands in a year: a tier, or not assessed (no indicators).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Lagging,
    Middle,
    Advanced,
    NotAssessed,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Lagging => "lagging",
            Standing::Middle => "middle",
            Standing::Advanced => "advanced",
            Standing::NotAssessed => "not_assessed",
        }
    }

    /// The order of the board: lagging first (抓后进), organisations without
    /// indicators last.
    pub fn rank(self) -> u8 {
        match self {
            Standing::Lagging => 0,
            Standing::Middle => 1,
            Standing::Advanced => 2,
            Standing::NotAssessed => 3,
        }
    }
}

impl From<Option<Tier>> for Standing {
    fn from(t: Option<Tier>) -> Self {
        match t {
            Some(Tier::Lagging) => Standing::Lagging,
            Some(Tier::Middle) => Standing::Middle,
            Some(Tier::Advanced) => Standing::Advanced,
            None => Standing::NotAssessed,
        }
    }
}

/// How an improvement-plan action stands on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    Open,
    Done,
    /// Due before `today` and not done.
    Overdue,
}

impl ActionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Open => "open",
            ActionStatus::Done => "done",
            ActionStatus::Overdue => "overdue",
        }
    }
}

/// An action is done once it has a completion day; otherwise it is overdue from the
/// day after its due day.
pub fn action_status(
    due_on: NaiveDate,
    done_on: Option<NaiveDate>,
    today: NaiveDate,
) -> ActionStatus {
    match done_on {
        Some(_) => ActionStatus::Done,
        None if due_on < today => ActionStatus::Overdue,
        None => ActionStatus::Open,
    }
}

/// The day an action is marked done: not after today.
pub fn check_done_on(done_on: NaiveDate, today: NaiveDate) -> Result<NaiveDate, ValidationError> {
    if done_on > today {
        return Err(ValidationError::new(
            "done_on",
            "in_future",
            "an action cannot be done on a day still to come",
        ));
    }
    Ok(done_on)
}

/// One row of an indicator file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndicatorRow {
    /// Where the row sits in the file (the header is row 1).
    pub row: usize,
    pub org_code: String,
    pub year: i64,
    pub indicator: Indicator,
}

/// The first problem of a file: its row (1-based, the header is row 1, as a
/// spreadsheet shows it) and what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub row: usize,
    pub error: ValidationError,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}: {}", self.row, self.error)
    }
}

/// The columns of an indicator file, each with the Chinese header also accepted.
pub const IMPORT_COLUMNS: [(&str, &str); 5] = [
    ("org_code", "组织代码"),
    ("year", "年度"),
    ("name", "指标"),
    ("value", "分值"),
    ("note", "依据"),
];

/// The most rows an indicator file may have.
pub const MAX_IMPORT_ROWS: usize = 20_000;

/// Splits CSV text (RFC 4180: commas, double-quoted fields with `""` inside, CRLF or
/// LF line ends; a leading byte-order mark is skipped) into records. Blank lines are
/// kept as empty records so row numbers match what a spreadsheet shows.
pub fn split_csv(text: &str) -> Result<Vec<Vec<String>>, RowError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut row = 1;
    // Whether the current record has begun (an empty quoted cell is still a cell).
    let mut started = false;
    while let Some(c) = chars.next() {
        started = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                _ => cell.push(c),
            }
            continue;
        }
        match c {
            '"' if cell.is_empty() => quoted = true,
            ',' => record.push(std::mem::take(&mut cell)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                record.push(std::mem::take(&mut cell));
                records.push(std::mem::take(&mut record));
                row += 1;
                started = false;
            }
            _ => cell.push(c),
        }
    }
    if quoted {
        return Err(RowError {
            row,
            error: ValidationError::new("csv", "malformed_csv", "a quoted cell is never closed"),
        });
    }
    if started {
        record.push(cell);
        records.push(record);
    }
    Ok(records)
}

/// Reads an indicator file: a header naming the five columns (in any order), then one
/// indicator per row. Blank rows are skipped. The same (organisation, year, name)
/// twice is an error at the second row. Nothing is returned unless every row is good.
pub fn parse_indicator_csv(text: &str) -> Result<Vec<IndicatorRow>, RowError> {
    let records = split_csv(text)?;
    let blank = |r: &Vec<String>| r.iter().all(|c| c.trim().is_empty());
    let Some((header_at, header)) = records.iter().enumerate().find(|(_, r)| !blank(r)) else {
        return Err(RowError {
            row: 1,
            error: ValidationError::new("csv", "empty_file", "the file has no header and no rows"),
        });
    };
    let mut index = [0usize; 5];
    for (k, (en, zh)) in IMPORT_COLUMNS.iter().enumerate() {
        index[k] = header
            .iter()
            .position(|h| {
                let h = h.trim();
                h.eq_ignore_ascii_case(en) || h == *zh
            })
            .ok_or_else(|| RowError {
                row: header_at + 1,
                error: ValidationError::new(
                    *en,
                    "missing_column",
                    format!("the header must name the column {en} ({zh})"),
                ),
            })?;
    }
    let data = records.len().saturating_sub(header_at + 1);
    if data > MAX_IMPORT_ROWS {
        return Err(RowError {
            row: header_at + 2 + MAX_IMPORT_ROWS,
            error: ValidationError::new(
                "csv",
                "too_many_rows",
                format!("at most {MAX_IMPORT_ROWS} rows per file"),
            ),
        });
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, rec) in records.iter().enumerate().skip(header_at + 1) {
        if blank(rec) {
            continue;
        }
        let row = i + 1;
        let at = |error: ValidationError| RowError { row, error };
        let cell = |k: usize| rec.get(index[k]).map(String::as_str).unwrap_or("");
        let org_code = cell(0).trim().to_string();
        if org_code.is_empty() {
            return Err(at(ValidationError::new(
                "org_code",
                "required",
                "org_code is required",
            )));
        }
        let year = parse_year_text("year", cell(1)).map_err(at)?;
        let value = cell(3).trim().parse::<f64>().map_err(|_| {
            at(ValidationError::new(
                "value",
                "out_of_range",
                "value must be a number between 0 and 100",
            ))
        })?;
        let indicator = Indicator::parse(cell(2), value, cell(4)).map_err(at)?;
        if !seen.insert((org_code.clone(), year, indicator.name.clone())) {
            return Err(at(ValidationError::new(
                "name",
                "duplicate_indicator",
                "this organisation already has this indicator for this year, above",
            )));
        }
        out.push(IndicatorRow {
            row,
            org_code,
            year,
            indicator,
        });
    }
    if out.is_empty() {
        return Err(RowError {
            row: header_at + 2,
            error: ValidationError::new("csv", "empty_file", "the file has a header but no rows"),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{tier, TierThresholds};
    use proptest::prelude::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn raw(name: &str, value: f64, note: &str) -> RawIndicator {
        RawIndicator {
            name: name.into(),
            value,
            note: note.into(),
        }
    }

    #[test]
    fn only_party_organisations_are_tiered() {
        assert!(is_party_org(OrgKind::Branch));
        assert!(is_party_org(OrgKind::GeneralBranch));
        assert!(is_party_org(OrgKind::PartyCommittee));
        assert!(is_party_org(OrgKind::IndustryPartyCommittee));
        assert!(!is_party_org(OrgKind::PropertyCompany));
        assert!(!is_party_org(OrgKind::GovernmentDepartment));
        for k in OrgKind::ALL {
            assert_eq!(is_party_org(k), PARTY_KINDS.contains(&k.as_str()));
        }
    }

    #[test]
    fn indicators_need_a_value_in_range_and_evidence() {
        let ok = Indicator::parse(" 组织生活 ", 85.0, " 三会一课记录12次 ").unwrap();
        assert_eq!(
            (ok.name.as_str(), ok.note.as_str()),
            ("组织生活", "三会一课记录12次")
        );
        let e = Indicator::parse("组织生活", 120.0, "x").unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("value", "out_of_range"));
        assert_eq!(
            Indicator::parse("x", -1.0, "n").unwrap_err().code,
            "out_of_range"
        );
        assert_eq!(
            Indicator::parse("x", f64::NAN, "n").unwrap_err().code,
            "out_of_range"
        );
        let e = Indicator::parse("组织生活", 80.0, "  ").unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("note", "no_evidence"));
        let e = Indicator::parse("", 80.0, "n").unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("name", "required"));
        assert_eq!(
            Indicator::parse(&"长".repeat(31), 1.0, "n")
                .unwrap_err()
                .code,
            "too_long"
        );
        assert_eq!(
            Indicator::parse("a\u{0}b", 1.0, "n").unwrap_err().code,
            "invalid_text"
        );
        assert_eq!(
            Indicator::parse("a\nb", 1.0, "n").unwrap_err().code,
            "invalid_text"
        );
        // Bounds are inclusive.
        assert!(Indicator::parse("x", 0.0, "n").is_ok());
        assert!(Indicator::parse("x", 100.0, "n").is_ok());
    }

    #[test]
    fn a_set_names_the_offending_indicator() {
        let e = indicator_set(&[]).unwrap_err();
        assert_eq!(e.code, "no_evidence");
        let e = indicator_set(&[raw("a", 50.0, "n"), raw("b", 120.0, "n")]).unwrap_err();
        assert_eq!(e.field, "indicators[1].value");
        let e = indicator_set(&[raw("a", 50.0, "n"), raw(" a", 60.0, "n")]).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.code),
            ("indicators[1].name", "duplicate_indicator")
        );
        let many: Vec<_> = (0..=MAX_INDICATORS)
            .map(|i| raw(&format!("i{i}"), 1.0, "n"))
            .collect();
        assert_eq!(indicator_set(&many).unwrap_err().code, "too_many");
        let set = indicator_set(&[raw("a", 90.0, "n"), raw("b", 70.0, "n")]).unwrap();
        let f = tier(
            &evidence_pairs(&set),
            TierThresholds::new(80.0, 60.0).unwrap(),
        )
        .unwrap();
        assert_eq!(f.score, 80.0);
        assert_eq!(Standing::from(Some(f.tier)), Standing::Advanced);
    }

    #[test]
    fn standings_sort_lagging_first_and_unassessed_last() {
        let mut v = [
            Standing::NotAssessed,
            Standing::Advanced,
            Standing::Lagging,
            Standing::Middle,
        ];
        v.sort_by_key(|s| s.rank());
        assert_eq!(
            v,
            [
                Standing::Lagging,
                Standing::Middle,
                Standing::Advanced,
                Standing::NotAssessed
            ]
        );
        assert_eq!(Standing::from(None), Standing::NotAssessed);
    }

    #[test]
    fn actions_are_overdue_only_after_their_day() {
        let today = day("2026-06-10");
        assert_eq!(
            action_status(day("2026-06-09"), None, today),
            ActionStatus::Overdue
        );
        assert_eq!(
            action_status(day("2026-06-10"), None, today),
            ActionStatus::Open
        );
        assert_eq!(
            action_status(day("2026-06-11"), None, today),
            ActionStatus::Open
        );
        assert_eq!(
            action_status(day("2026-01-01"), Some(day("2026-06-01")), today),
            ActionStatus::Done
        );
        assert!(check_done_on(day("2026-06-10"), today).is_ok());
        assert_eq!(
            check_done_on(day("2026-06-11"), today).unwrap_err().code,
            "in_future"
        );
    }

    #[test]
    fn years_are_bounded() {
        assert_eq!(parse_year("year", 2026).unwrap(), 2026);
        assert!(parse_year("year", 1999).is_err());
        assert!(parse_year("year", 2101).is_err());
        assert_eq!(parse_year_text("year", " 2025 ").unwrap(), 2025);
        assert_eq!(
            parse_year_text("year", "二〇二五").unwrap_err().code,
            "invalid_year"
        );
    }

    #[test]
    fn csv_is_split_with_quotes_and_line_ends() {
        let recs = split_csv("\u{feff}a,b\r\n\"x, \"\"y\"\"\",\"two\nlines\"\n\nlast,").unwrap();
        assert_eq!(
            recs,
            vec![
                vec!["a".to_string(), "b".into()],
                vec!["x, \"y\"".into(), "two\nlines".into()],
                vec!["".into()],
                vec!["last".into(), "".into()],
            ]
        );
        assert_eq!(
            split_csv("a,\"open\n").unwrap_err().error.code,
            "malformed_csv"
        );
    }

    #[test]
    fn an_indicator_file_is_read_whole_or_refused_at_its_first_bad_row() {
        let good = "org_code,year,name,value,note\n\
                    B1,2026,组织生活,90,记录齐全\n\
                    \n\
                    B1,2026,党员教育,70,\"学习12次, 缺2次\"\n";
        let rows = parse_indicator_csv(good).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].indicator.note, "学习12次, 缺2次");
        // Chinese headers, another order.
        let zh = "指标,分值,依据,组织代码,年度\n组织生活,55,缺会3次,B2,2026\n";
        assert_eq!(parse_indicator_csv(zh).unwrap()[0].org_code, "B2");
        // Row numbers count the header as row 1 and blank rows too.
        let bad =
            "org_code,year,name,value,note\nB1,2026,a,90,n\n\nB1,2026,b,120,n\nB1,2026,c,x,n\n";
        let e = parse_indicator_csv(bad).unwrap_err();
        assert_eq!((e.row, e.error.field.as_str()), (4, "value"));
        let dup = "org_code,year,name,value,note\nB1,2026,a,90,n\nB1,2026,a,80,n\n";
        let e = parse_indicator_csv(dup).unwrap_err();
        assert_eq!((e.row, e.error.code), (3, "duplicate_indicator"));
        let e = parse_indicator_csv("org_code,year,name,value\nB1,2026,a,90\n").unwrap_err();
        assert_eq!((e.row, e.error.field.as_str()), (1, "note"));
        let e = parse_indicator_csv("org_code,year,name,value,note\nB1,1900,a,1,n\n").unwrap_err();
        assert_eq!((e.row, e.error.field.as_str()), (2, "year"));
        assert_eq!(
            parse_indicator_csv("").unwrap_err().error.code,
            "empty_file"
        );
        assert_eq!(
            parse_indicator_csv("org_code,year,name,value,note\n")
                .unwrap_err()
                .error
                .code,
            "empty_file"
        );
    }

    proptest! {
        #[test]
        fn reading_a_file_never_panics(text in "\\PC{0,200}") {
            let _ = parse_indicator_csv(&text);
        }

        #[test]
        fn cells_round_trip_through_quoting(cells in proptest::collection::vec("[^\r]{0,12}", 1..5)) {
            let line: Vec<String> = cells.iter().map(|c| format!("\"{}\"", c.replace('"', "\"\""))).collect();
            let recs = split_csv(&line.join(",")).unwrap();
            prop_assert_eq!(&recs[0], &cells);
        }

        #[test]
        fn a_valid_value_is_always_accepted(v in 0.0f64..=100.0) {
            prop_assert!(Indicator::parse("x", v, "n").is_ok());
        }
    }
}
