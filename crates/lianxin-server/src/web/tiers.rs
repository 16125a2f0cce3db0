//! The tiers pages (抓两头带中间): `/tiers` shows the party organisations in scope in
//! three columns — 先进, 中间, 后进 — each with its score and the evidence it rests
//! on (every indicator, its value and note, and the thresholds); `/tiers/org/{id}` is
//! one organisation: its indicators (editable by the organisation department), its
//! improvement plans with tracked actions, and its designations; `/tiers.csv` exports
//! the board.
//!
//! Forms post back here, go through the same store calls as the API, and answer with
//! a redirect (303) on success or the page again with the refusal explained.

use super::{fail, field, page_error, Frame};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{Id, QueryParams};
use crate::i18n::{self, Lang};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{Datelike, NaiveDate};
use lianxin_domain::calendar::local_day;
use lianxin_domain::relation::parse_day;
use lianxin_domain::role::Permission;
use lianxin_domain::tiers::{
    indicator_set, parse_indicator_csv, parse_year_text, RawIndicator, Standing, MAX_INDICATORS,
};
use lianxin_domain::ValidationError;
use lianxin_store::tiers::{OrgTier, TierBoard};
use lianxin_store::StoreError;
use minijinja::{context, Value};
use serde::Deserialize;

/// This area's templates, registered with the others.
pub(super) const TEMPLATES: &[(&str, &str)] = &[
    ("tiers.html", include_str!("../../templates/tiers.html")),
    (
        "tiers_org.html",
        include_str!("../../templates/tiers_org.html"),
    ),
    (
        "tiers_evidence.html",
        include_str!("../../templates/tiers_evidence.html"),
    ),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tiers", get(board_page))
        .route("/tiers.csv", get(board_csv))
        .route("/tiers/import", post(import))
        .route("/tiers/org/{id}", get(org_page))
        .route("/tiers/org/{id}/indicators", post(set_indicators))
        .route("/tiers/org/{id}/plans", post(create_plan))
        .route("/tiers/org/{id}/designations", post(award))
        .route("/tiers/plans/{id}/actions", post(add_action))
        .route("/tiers/actions/{id}/done", post(complete_action))
}

/// Today in Asia/Shanghai, by the server's clock (which tests may move).
fn today(state: &AppState) -> NaiveDate {
    local_day(state.desk.now())
}

/// The `year` query parameter: this year when absent.
fn year_param(state: &AppState, raw: Option<&str>) -> Result<i64, ApiError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(i64::from(today(state).year())),
        Some(y) => parse_year_text("year", y).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.message).with_field("year")
        }),
    }
}

fn tr(lang: Lang, key: &str) -> String {
    i18n::table(lang)
        .get(key)
        .map(|s| s.to_string())
        .unwrap_or_else(|| key.to_string())
}

/// The largest form these pages accept (an indicator file pasted in).
const FORM_LIMIT: usize = 2 * 1024 * 1024;

/// A page caller who may read tiers.
async fn tiers_caller(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
) -> Result<(Caller, Frame), Response> {
    super::permitted_caller(state, headers, here, Permission::ReadGovernance).await
}

/// A form post: signed in, allowed to manage governance, with the session's CSRF
/// token; returns the caller, the frame and the form.
async fn manage_form(
    state: &AppState,
    req: Request,
) -> Result<(Caller, Frame, Vec<(String, String)>), Response> {
    let here = req.uri().path().to_string();
    super::posted_form(state, req, &here, Permission::ManageGovernance, FORM_LIMIT).await
}

/// A refusal shown on the page: the status, a sentence in the visitor's language and
/// the rule's own words.
struct Problem {
    status: StatusCode,
    message: String,
    detail: String,
}

impl Problem {
    fn value(&self) -> Value {
        context! { message => self.message.clone(), detail => self.detail.clone() }
    }
}

/// Explains an API error by its field and code; `None` for a server failure.
fn explain(lang: Lang, e: &ApiError) -> Option<Problem> {
    if e.status.is_server_error() {
        return None;
    }
    let field = e.field.as_deref().unwrap_or("");
    let column = field.rsplit('.').next().unwrap_or(field);
    let key = match (e.code, column) {
        ("conflict", "title") => "tr_err_designation_taken",
        ("conflict", _) => "tr_err_action_done",
        ("not_found", _) => "error_404",
        ("forbidden" | "csrf_failed", _) => "error_403",
        (_, "value") => "tr_err_value",
        (_, "note") => "tr_err_note",
        (_, "name") => "tr_err_name",
        (_, "indicators") => "tr_err_indicators",
        (_, "year") => "tr_err_year",
        (_, "title") => "tr_err_title",
        (_, "due_on") => "tr_err_due_on",
        (_, "done_on") => "tr_err_done_on",
        (_, "org_code") => "tr_err_org_code",
        (_, "org_id") => "tr_err_not_party",
        _ => "tr_err_other",
    };
    let mut message = tr(lang, key);
    // Import refusals carry the row; show it first.
    if let Some(row) = e
        .message
        .strip_prefix("row ")
        .and_then(|r| r.split(':').next())
    {
        message = format!("{}{}", tr(lang, "tr_row").replace("{}", row), message);
    }
    Some(Problem {
        status: e.status,
        message,
        detail: e.message.clone(),
    })
}

fn standing_key(s: Standing) -> &'static str {
    match s {
        Standing::Advanced => "tr_advanced",
        Standing::Middle => "tr_middle",
        Standing::Lagging => "tr_lagging",
        Standing::NotAssessed => "tr_not_assessed",
    }
}

/// A score as shown: one decimal.
fn score_text(score: f64) -> String {
    format!("{score:.1}")
}

fn value_text(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// One organisation's card on the board, with its evidence.
fn tier_value(lang: Lang, t: &OrgTier) -> Value {
    let indicators: Vec<Value> = t
        .indicators
        .iter()
        .map(|i| context! { name => i.name.clone(), value => value_text(i.value), note => i.note.clone() })
        .collect();
    context! {
        id => t.org.id,
        code => t.org.code.clone(),
        name => t.org.name.clone(),
        kind => if lang == Lang::Zh { t.org.kind.label_zh() } else { t.org.kind.label_en() },
        standing => t.standing.as_str(),
        standing_label => tr(lang, standing_key(t.standing)),
        score => t.finding.as_ref().map(|f| score_text(f.score)),
        count => t.indicators.len(),
        indicators,
        plans => t.plans,
        overdue => t.overdue_actions,
        designations => t.designations.clone(),
    }
}

fn thresholds_value(b: &TierBoard) -> Value {
    context! {
        advanced => value_text(b.thresholds.advanced),
        lagging => value_text(b.thresholds.lagging),
    }
}

#[derive(Deserialize, Default)]
pub struct YearQuery {
    year: Option<String>,
    ok: Option<String>,
}

/// The year asked for, or this year; a bad year is shown as a refusal over this
/// year's board.
fn asked_year(state: &AppState, lang: Lang, raw: Option<&str>) -> (i64, Option<Problem>) {
    match year_param(state, raw) {
        Ok(y) => (y, None),
        Err(e) => (year_param(state, None).unwrap_or(2026), explain(lang, &e)),
    }
}

/// Confirmations the pages may show after a change.
const CONFIRMATIONS: [&str; 6] = [
    "indicators",
    "imported",
    "plan",
    "action",
    "done",
    "designation",
];

fn confirmation(lang: Lang, ok: Option<&str>) -> Option<String> {
    ok.filter(|o| CONFIRMATIONS.contains(o))
        .map(|o| tr(lang, &format!("tr_ok_{o}")))
}

async fn board_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<YearQuery>, ApiError>,
) -> Response {
    let (caller, frame) = match tiers_caller(&state, &headers, "/tiers").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let q = q.map(|QueryParams(q)| q).unwrap_or_default();
    let (year, problem) = asked_year(&state, frame.lang, q.year.as_deref());
    render_board(&state, &frame, &caller, year, problem, q.ok.as_deref(), "").await
}

async fn render_board(
    state: &AppState,
    frame: &Frame,
    caller: &Caller,
    year: i64,
    problem: Option<Problem>,
    ok: Option<&str>,
    csv_text: &str,
) -> Response {
    let lang = frame.lang;
    let board = match state
        .store
        .tier_board(&caller.account.scope, year, today(state))
        .await
    {
        Ok(b) => b,
        Err(e) => return fail(state, frame, e.into()),
    };
    let column = |s: Standing| -> Vec<Value> {
        board
            .orgs
            .iter()
            .filter(|t| t.standing == s)
            .map(|t| tier_value(lang, t))
            .collect()
    };
    // 先进 / 中间 / 后进, as the organisation department reads them; the advanced
    // column shows the best first.
    let mut advanced = column(Standing::Advanced);
    advanced.reverse();
    let columns = vec![
        context! { key => "advanced", label => tr(lang, "tr_advanced"), orgs => advanced, count => board.counts.advanced },
        context! { key => "middle", label => tr(lang, "tr_middle"), orgs => column(Standing::Middle), count => board.counts.middle },
        context! { key => "lagging", label => tr(lang, "tr_lagging"), orgs => column(Standing::Lagging), count => board.counts.lagging },
    ];
    let status = problem.as_ref().map(|p| p.status).unwrap_or(StatusCode::OK);
    let this_year = year_param(state, None).unwrap_or(year);
    let years: Vec<i64> = (this_year - 4..=this_year + 1).rev().collect();
    let mut resp = frame.render(
        state,
        "tiers.html",
        context! {
            year,
            years,
            thresholds => thresholds_value(&board),
            columns,
            unassessed => column(Standing::NotAssessed),
            counts => board.counts.clone(),
            total => board.orgs.len(),
            manage => caller.role().allows(Permission::ManageGovernance),
            problem => problem.as_ref().map(Problem::value),
            ok => confirmation(lang, ok),
            csv_text,
        },
    );
    *resp.status_mut() = status;
    resp
}

async fn org_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Id, ApiError>,
    q: Result<QueryParams<YearQuery>, ApiError>,
) -> Response {
    let (caller, frame) = match tiers_caller(&state, &headers, "/tiers").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(Id(id)) = id else {
        return page_error(&state, &frame, StatusCode::BAD_REQUEST);
    };
    let q = q.map(|QueryParams(q)| q).unwrap_or_default();
    let (year, problem) = asked_year(&state, frame.lang, q.year.as_deref());
    render_org(
        &state,
        &frame,
        &caller,
        id,
        year,
        problem,
        q.ok.as_deref(),
        &[],
    )
    .await
}

/// One organisation's page; `form` refills the indicator rows after a refusal.
#[allow(clippy::too_many_arguments)]
async fn render_org(
    state: &AppState,
    frame: &Frame,
    caller: &Caller,
    id: i64,
    year: i64,
    problem: Option<Problem>,
    ok: Option<&str>,
    form: &[(String, String)],
) -> Response {
    let lang = frame.lang;
    let today = today(state);
    let detail = match state
        .store
        .org_tier(&caller.account.scope, id, year, today)
        .await
    {
        Ok(d) => d,
        // Not a party organisation: nothing to tier here.
        Err(StoreError::Invalid(_)) => return page_error(state, frame, StatusCode::NOT_FOUND),
        Err(e) => return fail(state, frame, e.into()),
    };
    let t = &detail.tier;
    // The indicator rows of the form: what was just sent (after a refusal), else the
    // recorded ones, and blank rows to add more.
    let mut rows: Vec<Value> = Vec::new();
    if form.is_empty() {
        for i in &t.indicators {
            rows.push(context! { name => i.name.clone(), value => value_text(i.value), note => i.note.clone() });
        }
    } else {
        for i in 0..MAX_INDICATORS {
            let (n, v, o) = (
                field(form, &format!("name_{i}")),
                field(form, &format!("value_{i}")),
                field(form, &format!("note_{i}")),
            );
            if !(n.trim().is_empty() && v.trim().is_empty() && o.trim().is_empty()) {
                rows.push(context! { name => n, value => v, note => o });
            }
        }
    }
    let blanks = if rows.is_empty() { 5 } else { 2 };
    for _ in 0..blanks {
        if rows.len() < MAX_INDICATORS {
            rows.push(context! { name => "", value => "", note => "" });
        }
    }
    let plans: Vec<Value> = detail
        .plans
        .iter()
        .map(|p| {
            let actions: Vec<Value> = p
                .actions
                .iter()
                .map(|a| {
                    context! {
                        id => a.id,
                        title => a.title.clone(),
                        due_on => a.due_on.to_string(),
                        done_on => a.done_on.map(|d| d.to_string()),
                        note => a.note.clone(),
                        status => a.status.as_str(),
                        status_label => tr(lang, &format!("tr_action_{}", a.status.as_str())),
                    }
                })
                .collect();
            let done = p.actions.iter().filter(|a| a.done_on.is_some()).count();
            context! {
                id => p.id, year => p.year, title => p.title.clone(),
                actions, done, total => p.actions.len(),
            }
        })
        .collect();
    let designations: Vec<Value> = detail
        .designations
        .iter()
        .map(|d| context! { title => d.title.clone(), year => d.year })
        .collect();
    let thresholds = match state.store.tier_thresholds().await {
        Ok(th) => {
            context! { advanced => value_text(th.advanced), lagging => value_text(th.lagging) }
        }
        Err(e) => return fail(state, frame, e.into()),
    };
    let status = problem.as_ref().map(|p| p.status).unwrap_or(StatusCode::OK);
    let this_year = year_param(state, None).unwrap_or(year);
    let years: Vec<i64> = (this_year - 4..=this_year + 1).rev().collect();
    let mut resp = frame.render(
        state,
        "tiers_org.html",
        context! {
            year,
            years,
            today => today.to_string(),
            org => tier_value(lang, t),
            thresholds,
            rows,
            plans,
            designations,
            manage => caller.role().allows(Permission::ManageGovernance),
            problem => problem.as_ref().map(Problem::value),
            ok => confirmation(lang, ok),
        },
    );
    *resp.status_mut() = status;
    resp
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The year a form names; a bad one is a refusal naming `year`.
fn form_year(form: &[(String, String)]) -> Result<i64, ApiError> {
    Ok(parse_year_text("year", field(form, "year"))?)
}

/// The indicator rows of the form (`name_i`, `value_i`, `note_i`), blank rows left
/// out; errors name the row as the API does (`indicators[i].value`).
fn form_indicators(form: &[(String, String)]) -> Result<Vec<RawIndicator>, ValidationError> {
    let mut out = Vec::new();
    for i in 0..MAX_INDICATORS {
        let name = field(form, &format!("name_{i}"));
        let value = field(form, &format!("value_{i}"));
        let note = field(form, &format!("note_{i}"));
        if name.trim().is_empty() && value.trim().is_empty() && note.trim().is_empty() {
            continue;
        }
        let value = value.trim().parse::<f64>().map_err(|_| {
            ValidationError::new(
                format!("indicators[{}].value", out.len()),
                "out_of_range",
                "value must be a number between 0 and 100",
            )
        })?;
        out.push(RawIndicator {
            name: name.to_string(),
            value,
            note: note.to_string(),
        });
    }
    Ok(out)
}

async fn set_indicators(
    State(state): State<AppState>,
    id: Result<Id, ApiError>,
    req: Request,
) -> Response {
    let (caller, frame, form) = match manage_form(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(Id(id)) = id else {
        return page_error(&state, &frame, StatusCode::BAD_REQUEST);
    };
    let year = form_year(&form);
    let result: Result<(), ApiError> = async {
        let year = year.clone()?;
        let set = indicator_set(&form_indicators(&form)?)?;
        state
            .store
            .set_indicators(
                &caller.actor(),
                &caller.account.scope,
                id,
                year,
                &set,
                today(&state),
            )
            .await?;
        Ok(())
    }
    .await;
    let year = year.unwrap_or_else(|_| year_param(&state, None).unwrap_or(2026));
    match result {
        Ok(()) => see_other(&format!("/tiers/org/{id}?year={year}&ok=indicators")),
        Err(e) => match explain(frame.lang, &e) {
            Some(p) => render_org(&state, &frame, &caller, id, year, Some(p), None, &form).await,
            None => fail(&state, &frame, e),
        },
    }
}

async fn import(State(state): State<AppState>, req: Request) -> Response {
    let (caller, frame, form) = match manage_form(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let text = field(&form, "csv");
    let result: Result<Vec<i64>, ApiError> = async {
        let rows = parse_indicator_csv(text).map_err(|e| ApiError {
            message: format!("row {}: {}", e.row, e.error.message),
            ..ApiError::from(e.error)
        })?;
        let mut years: Vec<i64> = rows.iter().map(|r| r.year).collect();
        years.dedup();
        state
            .store
            .import_indicators(&caller.actor(), &caller.account.scope, &rows, |_| {})
            .await
            .map_err(|e| {
                let row = e.row;
                let api = ApiError::from(e.error);
                ApiError {
                    message: format!("row {row}: {}", api.message),
                    ..api
                }
            })?;
        Ok(years)
    }
    .await;
    let this_year = year_param(&state, None).unwrap_or(2026);
    match result {
        Ok(years) => {
            let year = years.first().copied().unwrap_or(this_year);
            see_other(&format!("/tiers?year={year}&ok=imported"))
        }
        Err(e) => match explain(frame.lang, &e) {
            Some(p) => render_board(&state, &frame, &caller, this_year, Some(p), None, text).await,
            None => fail(&state, &frame, e),
        },
    }
}

async fn create_plan(
    State(state): State<AppState>,
    id: Result<Id, ApiError>,
    req: Request,
) -> Response {
    let (caller, frame, form) = match manage_form(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(Id(id)) = id else {
        return page_error(&state, &frame, StatusCode::BAD_REQUEST);
    };
    let year = form_year(&form);
    let result: Result<(), ApiError> = async {
        state
            .store
            .create_plan(
                &caller.actor(),
                &caller.account.scope,
                id,
                year.clone()?,
                field(&form, "title"),
            )
            .await?;
        Ok(())
    }
    .await;
    let year = year.unwrap_or_else(|_| year_param(&state, None).unwrap_or(2026));
    match result {
        Ok(()) => see_other(&format!("/tiers/org/{id}?year={year}&ok=plan#plans")),
        Err(e) => match explain(frame.lang, &e) {
            Some(p) => render_org(&state, &frame, &caller, id, year, Some(p), None, &[]).await,
            None => fail(&state, &frame, e),
        },
    }
}

async fn award(State(state): State<AppState>, id: Result<Id, ApiError>, req: Request) -> Response {
    let (caller, frame, form) = match manage_form(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(Id(id)) = id else {
        return page_error(&state, &frame, StatusCode::BAD_REQUEST);
    };
    let year = form_year(&form);
    let result: Result<(), ApiError> = async {
        state
            .store
            .award_designation(
                &caller.actor(),
                &caller.account.scope,
                id,
                field(&form, "title"),
                year.clone()?,
            )
            .await?;
        Ok(())
    }
    .await;
    let shown = parse_year_text("year", field(&form, "page_year"))
        .or(year)
        .unwrap_or_else(|_| year_param(&state, None).unwrap_or(2026));
    match result {
        Ok(()) => see_other(&format!(
            "/tiers/org/{id}?year={shown}&ok=designation#designations"
        )),
        Err(e) => match explain(frame.lang, &e) {
            Some(p) => render_org(&state, &frame, &caller, id, shown, Some(p), None, &[]).await,
            None => fail(&state, &frame, e),
        },
    }
}

/// After a change to a plan's actions: back to the plan's organisation.
async fn back_to_plan(
    state: &AppState,
    frame: &Frame,
    caller: &Caller,
    plan_id: i64,
    result: Result<&'static str, ApiError>,
) -> Response {
    let plan = match state
        .store
        .plan(&caller.account.scope, plan_id, today(state))
        .await
    {
        Ok(p) => p,
        Err(e) => return fail(state, frame, e.into()),
    };
    match result {
        Ok(ok) => see_other(&format!(
            "/tiers/org/{}?year={}&ok={ok}#plan-{}",
            plan.org_id, plan.year, plan.id
        )),
        Err(e) => match explain(frame.lang, &e) {
            Some(p) => {
                render_org(
                    state,
                    frame,
                    caller,
                    plan.org_id,
                    plan.year,
                    Some(p),
                    None,
                    &[],
                )
                .await
            }
            None => fail(state, frame, e),
        },
    }
}

async fn add_action(
    State(state): State<AppState>,
    id: Result<Id, ApiError>,
    req: Request,
) -> Response {
    let (caller, frame, form) = match manage_form(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(Id(plan_id)) = id else {
        return page_error(&state, &frame, StatusCode::BAD_REQUEST);
    };
    let result: Result<&'static str, ApiError> = async {
        let due_on = parse_day("due_on", field(&form, "due_on"))?;
        state
            .store
            .add_plan_action(
                &caller.actor(),
                &caller.account.scope,
                plan_id,
                field(&form, "title"),
                due_on,
                today(&state),
            )
            .await?;
        Ok("action")
    }
    .await;
    back_to_plan(&state, &frame, &caller, plan_id, result).await
}

async fn complete_action(
    State(state): State<AppState>,
    id: Result<Id, ApiError>,
    req: Request,
) -> Response {
    let (caller, frame, form) = match manage_form(&state, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(Id(action_id)) = id else {
        return page_error(&state, &frame, StatusCode::BAD_REQUEST);
    };
    let today = today(&state);
    let result: Result<i64, ApiError> = async {
        let done_on = match field(&form, "done_on").trim() {
            "" => today,
            d => parse_day("done_on", d)?,
        };
        let a = state
            .store
            .complete_action(
                &caller.actor(),
                &caller.account.scope,
                action_id,
                done_on,
                field(&form, "note"),
                today,
            )
            .await?;
        Ok(a.plan_id)
    }
    .await;
    // The plan is the one the form names, or the action's (which the store found).
    let plan_id = match &result {
        Ok(p) => *p,
        Err(_) => match field(&form, "plan_id").trim().parse::<i64>() {
            Ok(p) => p,
            Err(_) => return page_error(&state, &frame, StatusCode::BAD_REQUEST),
        },
    };
    back_to_plan(&state, &frame, &caller, plan_id, result.map(|_| "done")).await
}

fn csv_field(s: &str) -> String {
    // A leading = + - @ would be read as a formula by spreadsheet programs.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The board as CSV: one line per indicator (an organisation without indicators has
/// one line with empty indicator cells), so the evidence travels with every tier.
/// UTF-8 with a byte-order mark for Excel, CRLF line ends.
fn board_csv_text(lang: Lang, board: &TierBoard) -> String {
    let mut out = String::from("\u{feff}");
    let header: Vec<String> = [
        "tr_col_org_code",
        "tr_col_org",
        "tr_col_year",
        "tr_col_tier",
        "tr_col_score",
        "tr_col_indicator",
        "tr_col_value",
        "tr_col_note",
        "tr_col_thresholds",
        "tr_col_designations",
    ]
    .iter()
    .map(|k| csv_field(&tr(lang, k)))
    .collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    let thresholds = format!(
        "≥{} / <{}",
        value_text(board.thresholds.advanced),
        value_text(board.thresholds.lagging)
    );
    for t in &board.orgs {
        let score = t
            .finding
            .as_ref()
            .map(|f| score_text(f.score))
            .unwrap_or_default();
        let line = |name: &str, value: String, note: &str| {
            [
                csv_field(&t.org.code),
                csv_field(&t.org.name),
                t.year.to_string(),
                csv_field(&tr(lang, standing_key(t.standing))),
                score.clone(),
                csv_field(name),
                value,
                csv_field(note),
                csv_field(&thresholds),
                csv_field(&t.designations.join("、")),
            ]
            .join(",")
                + "\r\n"
        };
        if t.indicators.is_empty() {
            out.push_str(&line("", String::new(), ""));
        }
        for i in &t.indicators {
            out.push_str(&line(&i.name, value_text(i.value), &i.note));
        }
    }
    out
}

async fn board_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<YearQuery>, ApiError>,
) -> Response {
    let (caller, frame) = match tiers_caller(&state, &headers, "/tiers").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let q = q.map(|QueryParams(q)| q).unwrap_or_default();
    let (year, problem) = asked_year(&state, frame.lang, q.year.as_deref());
    if let Some(p) = problem {
        // An export of another year than the one asked for would mislead.
        return page_error(&state, &frame, p.status);
    }
    let board = match state
        .store
        .tier_board(&caller.account.scope, year, today(&state))
        .await
    {
        Ok(b) => b,
        Err(e) => return fail(&state, &frame, e.into()),
    };
    let mut resp = board_csv_text(frame.lang, &board).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"tiers-{year}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_rows_skip_blanks_and_name_the_bad_value() {
        let form: Vec<(String, String)> = [
            ("name_0", "组织生活"),
            ("value_0", "90"),
            ("note_0", "记录齐全"),
            ("name_1", ""),
            ("value_1", ""),
            ("note_1", ""),
            ("name_2", "党员教育"),
            ("value_2", "abc"),
            ("note_2", "n"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let e = form_indicators(&form).unwrap_err();
        assert_eq!(e.field, "indicators[1].value");
        let good: Vec<_> = form[..6].to_vec();
        assert_eq!(form_indicators(&good).unwrap().len(), 1);
    }

    #[test]
    fn import_refusals_lead_with_the_row() {
        let e = ApiError::invalid("value", "row 4: value must be between 0 and 100");
        let p = explain(Lang::Zh, &e).unwrap();
        assert!(p.message.starts_with("第4行"), "{}", p.message);
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("x\"y,"), "\"x\"\"y,\"");
    }
}
