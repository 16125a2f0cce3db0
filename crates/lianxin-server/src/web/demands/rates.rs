//! The officials' dashboard of the three rates (响应率、解决率、满意率) and its exports.
//!
//! The numbers are the store's pre-summed rate cells (`Store::rate_counts`) for the
//! period, place subtree and units the caller may see (`rates_request`); a rate is taken
//! only from summed counters, never averaged (docs/rates.md). Tables and exports carry
//! the numerators and denominators beside each rate so anyone can check the sums. The
//! CSV starts with a byte-order mark so Excel opens the Chinese headers correctly.

use super::{explain, failed, lang, problem_value, tr, Problem};
use crate::api::demands::{rates_request, RatesRequest};
use crate::auth::Caller;
use crate::chart::rate_bar_chart;
use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::i18n::Lang;
use crate::web::{page_caller, page_error, Frame};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate};
use lianxin_domain::calendar::local_day;
use lianxin_domain::place::PlaceLevel;
use lianxin_domain::rates::{percent, RateCounts};
use lianxin_domain::role::Permission;
use lianxin_store::demands::{RateGroup, RateRow};
use minijinja::{context, Value};
use serde::Deserialize;

#[derive(Deserialize, Default, Clone)]
pub struct RatesParams {
    from: Option<String>,
    to: Option<String>,
    group: Option<String>,
    place: Option<String>,
    preset: Option<String>,
}

/// The quick periods, as (code, label key).
const PRESETS: [(&str, &str); 4] = [
    ("month", "preset_month"),
    ("30d", "preset_30d"),
    ("quarter", "preset_quarter"),
    ("year", "preset_year"),
];

/// The first and last day of a quick period ending today.
fn preset_period(preset: &str, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let from = match preset {
        "month" => today.with_day(1)?,
        "30d" => today - chrono::Duration::days(29),
        "quarter" => NaiveDate::from_ymd_opt(today.year(), (today.month() - 1) / 3 * 3 + 1, 1)?,
        "year" => NaiveDate::from_ymd_opt(today.year(), 1, 1)?,
        _ => return None,
    };
    Some((from, today))
}

fn group_code(g: RateGroup) -> &'static str {
    match g {
        RateGroup::Unit => "unit",
        RateGroup::Place => "place",
        RateGroup::Day => "day",
        RateGroup::Total => "total",
    }
}

/// The rates asked for, with the period a preset stands for.
struct Asked {
    req: RatesRequest,
    place: String,
    problem: Option<Problem>,
}

async fn asked(
    state: &AppState,
    c: &Caller,
    lang: Lang,
    p: &RatesParams,
) -> Result<Asked, ApiError> {
    let today = local_day(state.desk.now());
    let (from, to) = match p.preset.as_deref().and_then(|x| preset_period(x, today)) {
        Some((f, t)) => (Some(f.to_string()), Some(t.to_string())),
        None => (p.from.clone(), p.to.clone()),
    };
    let place = p.place.clone().unwrap_or_default();
    match rates_request(
        state,
        c,
        from.as_deref(),
        to.as_deref(),
        p.group.as_deref(),
        Some(place.as_str()),
    )
    .await
    {
        Ok(req) => Ok(Asked {
            req,
            place,
            problem: None,
        }),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
            // Show the refusal above the default view rather than an error page.
            let problem = explain(
                lang,
                e.status,
                e.code,
                e.field.as_deref().unwrap_or(""),
                &e.message,
            );
            let req = rates_request(state, c, None, None, None, None).await?;
            Ok(Asked {
                req,
                place: String::new(),
                problem: Some(problem),
            })
        }
        Err(e) => Err(e),
    }
}

/// One table row: the counters and the rates they give.
fn row_value(name: &str, c: &RateCounts) -> Value {
    let r = c.rates();
    context! {
        name,
        received => c.received,
        rejected => c.rejected,
        merged => c.merged,
        response_due => c.response_due,
        responded_in_time => c.responded_in_time,
        response => percent(r.response),
        resolution_due => c.resolution_due,
        resolved => c.resolved,
        resolution => percent(r.resolution),
        rated => c.rated,
        satisfied => c.satisfied,
        strictly_satisfied => c.strictly_satisfied,
        satisfaction => percent(r.satisfaction),
        strict_satisfaction => percent(r.strict_satisfaction),
    }
}

/// The places a dashboard can narrow to: the caller's scope down to communities,
/// indented by level.
async fn place_options(state: &AppState, c: &Caller) -> Vec<Value> {
    let places = match state.store.search_places("", &c.account.scope, 2000).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "listing places for the dashboard");
            return Vec::new();
        }
    };
    let top = places.iter().map(|p| p.level.depth()).min().unwrap_or(0);
    places
        .into_iter()
        .filter(|p| p.level.depth() <= PlaceLevel::Village.depth())
        .map(|p| {
            let indent = "\u{3000}".repeat(p.level.depth().saturating_sub(top));
            context! { code => p.code, label => format!("{indent}{}", p.name) }
        })
        .collect()
}

fn export_query(a: &Asked) -> String {
    let mut q = format!(
        "from={}&to={}&group={}",
        a.req.from,
        a.req.to,
        group_code(a.req.group)
    );
    if !a.place.trim().is_empty() {
        q.push_str("&place=");
        q.push_str(&urlencode(a.place.trim()));
    }
    q
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The dashboard's caller: signed in, with a role that reads demands.
async fn rates_caller(state: &AppState, headers: &HeaderMap) -> Result<(Caller, Frame), Response> {
    let caller = page_caller(state, headers).await?;
    let frame = Frame::new(state, headers, "/dashboard/rates", Some(&caller));
    if !caller.role().allows(Permission::ReadDemands) {
        return Err(page_error(state, &frame, StatusCode::FORBIDDEN));
    }
    Ok((caller, frame))
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<QueryParams<RatesParams>, ApiError>,
) -> Response {
    let (caller, frame) = match rates_caller(&state, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let lang = frame.lang;
    let p = params.map(|QueryParams(p)| p).unwrap_or_default();
    let a = match asked(&state, &caller, lang, &p).await {
        Ok(a) => a,
        Err(e) => return failed(&state, &frame, e),
    };
    let (rows, total) = match crate::api::demands::rate_rows(&state, &a.req).await {
        Ok(x) => x,
        Err(e) => return failed(&state, &frame, e),
    };
    let rates = total.rates();
    let chart = |key: &str, pick: fn(&RateCounts) -> Option<f64>| {
        let items: Vec<(String, Option<f64>)> = rows
            .iter()
            .map(|r| (r.name.clone(), pick(&r.counts)))
            .collect();
        Value::from_safe_string(rate_bar_chart(&tr(lang, key), &items))
    };
    let charts = if rows.is_empty() {
        Vec::new()
    } else {
        vec![
            context! { title => tr(lang, "rate_response"), svg => chart("rate_response", |c| c.rates().response) },
            context! { title => tr(lang, "rate_resolution"), svg => chart("rate_resolution", |c| c.rates().resolution) },
            context! { title => tr(lang, "rate_satisfaction"), svg => chart("rate_satisfaction", |c| c.rates().satisfaction) },
        ]
    };
    let today = local_day(state.desk.now());
    let presets: Vec<Value> = PRESETS
        .iter()
        .filter_map(|(code, key)| {
            let (f, t) = preset_period(code, today)?;
            let mut href = format!(
                "/dashboard/rates?from={f}&to={t}&group={}",
                group_code(a.req.group)
            );
            if !a.place.trim().is_empty() {
                href.push_str(&format!("&place={}", urlencode(a.place.trim())));
            }
            let active = a.req.from == f && a.req.to == t;
            Some(context! { code => *code, label => tr(lang, key), href, active })
        })
        .collect();
    let table: Vec<Value> = rows.iter().map(|r| row_value(&r.name, &r.counts)).collect();
    let export = export_query(&a);
    let status = a
        .problem
        .as_ref()
        .map(|p| p.status)
        .unwrap_or(StatusCode::OK);
    let mut resp = frame.render(
        &state,
        "rates.html",
        context! {
            from => a.req.from.to_string(),
            to => a.req.to.to_string(),
            group => group_code(a.req.group),
            place => a.place.trim(),
            places => place_options(&state, &caller).await,
            presets,
            summary => context! {
                response => percent(rates.response),
                resolution => percent(rates.resolution),
                satisfaction => percent(rates.satisfaction),
                strict => percent(rates.strict_satisfaction),
                received => total.received,
            },
            total => row_value(&tr(lang, "rates_total"), &total),
            table,
            charts,
            csv_href => format!("/dashboard/rates.csv?{export}"),
            xlsx_href => format!("/dashboard/rates.xlsx?{export}"),
            problem => a.problem.as_ref().map(problem_value),
        },
    );
    *resp.status_mut() = status;
    resp
}

/// The export's columns: header key and the cell of a row.
enum Cell {
    Text(String),
    Count(u64),
    Rate(Option<f64>),
}

const COLUMNS: [&str; 15] = [
    "col_received",
    "col_rejected",
    "col_merged",
    "col_response_due",
    "col_responded_in_time",
    "rate_response",
    "col_resolution_due",
    "col_resolved",
    "rate_resolution",
    "col_rated",
    "col_satisfied",
    "col_strictly_satisfied",
    "rate_satisfaction",
    "rate_strict_satisfaction",
    "col_period",
];

fn export_cells(name: &str, c: &RateCounts, period: &str) -> Vec<Cell> {
    let r = c.rates();
    vec![
        Cell::Text(name.to_string()),
        Cell::Count(c.received),
        Cell::Count(c.rejected),
        Cell::Count(c.merged),
        Cell::Count(c.response_due),
        Cell::Count(c.responded_in_time),
        Cell::Rate(r.response),
        Cell::Count(c.resolution_due),
        Cell::Count(c.resolved),
        Cell::Rate(r.resolution),
        Cell::Count(c.rated),
        Cell::Count(c.satisfied),
        Cell::Count(c.strictly_satisfied),
        Cell::Rate(r.satisfaction),
        Cell::Rate(r.strict_satisfaction),
        Cell::Text(period.to_string()),
    ]
}

/// The export's header and rows (the total last).
fn export_table(
    lang: Lang,
    a: &Asked,
    rows: &[RateRow],
    total: &RateCounts,
) -> (Vec<String>, Vec<Vec<Cell>>) {
    let first = match a.req.group {
        RateGroup::Unit => "group_unit",
        RateGroup::Place => "group_place",
        RateGroup::Day => "group_day",
        RateGroup::Total => "rates_total",
    };
    let mut header = vec![tr(lang, first)];
    header.extend(COLUMNS.iter().map(|k| tr(lang, k)));
    let period = format!("{} ~ {}", a.req.from, a.req.to);
    let mut out: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| export_cells(&r.name, &r.counts, &period))
        .collect();
    out.push(export_cells(&tr(lang, "rates_total"), total, &period));
    (header, out)
}

use crate::export::csv_field;

/// The table as CSV: UTF-8 with a byte-order mark, CRLF line ends.
fn to_csv(header: &[String], rows: &[Vec<Cell>]) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    let line = |cells: Vec<String>| cells.join(",") + "\r\n";
    out.push_str(&line(header.iter().map(|h| csv_field(h)).collect()));
    for row in rows {
        out.push_str(&line(
            row.iter()
                .map(|c| match c {
                    Cell::Text(s) => csv_field(s),
                    Cell::Count(n) => n.to_string(),
                    Cell::Rate(r) => percent(*r),
                })
                .collect(),
        ));
    }
    out.into_bytes()
}

fn to_xlsx(
    lang: Lang,
    header: &[String],
    rows: &[Vec<Cell>],
    a: &Asked,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let pct = Format::new().set_num_format("0.00%");
    let ws = wb.add_worksheet();
    ws.set_name(tr(lang, "rates_sheet"))?;
    for (col, h) in header.iter().enumerate() {
        ws.write_string_with_format(0, col as u16, h, &bold)?;
    }
    for (i, row) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        for (col, cell) in row.iter().enumerate() {
            let col = col as u16;
            match cell {
                Cell::Text(s) => {
                    ws.write_string(r, col, s)?;
                }
                Cell::Count(n) => {
                    ws.write_number(r, col, *n as f64)?;
                }
                Cell::Rate(Some(x)) => {
                    ws.write_number_with_format(r, col, *x, &pct)?;
                }
                Cell::Rate(None) => {
                    ws.write_string(r, col, "—")?;
                }
            }
        }
    }
    ws.set_column_width(0, 28)?;
    ws.set_freeze_panes(1, 1)?;
    let notes = wb.add_worksheet();
    notes.set_name(tr(lang, "rates_notes_sheet"))?;
    let lines = [
        (
            tr(lang, "col_period"),
            format!("{} ~ {}", a.req.from, a.req.to),
        ),
        (
            tr(lang, "rates_group"),
            tr(lang, &format!("group_{}", group_code(a.req.group))),
        ),
        (tr(lang, "place"), a.place.clone()),
        (tr(lang, "rates_definitions"), "docs/rates.md".to_string()),
    ];
    for (i, (k, v)) in lines.iter().enumerate() {
        notes.write_string_with_format(i as u32, 0, k, &bold)?;
        notes.write_string(i as u32, 1, v)?;
    }
    notes.set_column_width(0, 20)?;
    wb.save_to_buffer()
}

async fn export(
    state: AppState,
    headers: HeaderMap,
    params: Result<QueryParams<RatesParams>, ApiError>,
    xlsx: bool,
) -> Response {
    let (caller, frame) = match rates_caller(&state, &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let lang = lang(&headers);
    let p = params.map(|QueryParams(p)| p).unwrap_or_default();
    let a = match asked(&state, &caller, lang, &p).await {
        Ok(a) => a,
        Err(e) => return failed(&state, &frame, e),
    };
    if let Some(p) = &a.problem {
        // An export of something other than what was asked would mislead.
        return page_error(&state, &frame, p.status);
    }
    let (rows, total) = match crate::api::demands::rate_rows(&state, &a.req).await {
        Ok(x) => x,
        Err(e) => return failed(&state, &frame, e),
    };
    let (header, table) = export_table(lang, &a, &rows, &total);
    let name = format!(
        "rates-{}-{}-{}",
        group_code(a.req.group),
        a.req.from,
        a.req.to
    );
    let (body, content_type, ext) = if xlsx {
        match to_xlsx(lang, &header, &table, &a) {
            Ok(b) => (
                b,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "xlsx",
            ),
            Err(e) => {
                tracing::error!(error = %e, "writing the rates workbook");
                return page_error(&state, &frame, StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
    } else {
        (to_csv(&header, &table), "text/csv; charset=utf-8", "csv")
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.{ext}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    resp
}

pub async fn csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<QueryParams<RatesParams>, ApiError>,
) -> Response {
    export(state, headers, params, false).await
}

pub async fn xlsx(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<QueryParams<RatesParams>, ApiError>,
) -> Response {
    export(state, headers, params, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_end_today() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let f = |p| preset_period(p, d).unwrap().0.to_string();
        assert_eq!(f("month"), "2026-11-01");
        assert_eq!(f("30d"), "2026-10-30");
        assert_eq!(f("quarter"), "2026-10-01");
        assert_eq!(f("year"), "2026-01-01");
        assert!(preset_period("bogus", d).is_none());
    }

    #[test]
    fn csv_has_a_bom_quotes_and_no_formulas() {
        let header = vec!["名称".to_string(), "响应率".to_string()];
        let rows = vec![vec![
            Cell::Text("=SUM(A1), \"x\"".into()),
            Cell::Rate(Some(0.9801)),
        ]];
        let text = String::from_utf8(to_csv(&header, &rows)).unwrap();
        assert!(text.starts_with('\u{feff}'));
        assert!(text.contains("名称,响应率\r\n"));
        assert!(
            text.contains("\"'=SUM(A1), \"\"x\"\"\",98.01%\r\n"),
            "{text}"
        );
        let none =
            String::from_utf8(to_csv(&header, &[vec![Cell::Count(0), Cell::Rate(None)]])).unwrap();
        assert!(none.contains("0,—"));
    }
}
