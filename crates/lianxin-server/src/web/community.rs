//! The community pages of 双进双服务 (M15): household-visit coverage as a heat table
//! (`/coverage`, with its CSV), the needs list members claim (`/needs`), 双进
//! registrations (`/registrations`) and service records with the quarterly report to
//! employers (`/service-records`, with its CSV).
//!
//! Reads need `ReadGovernance`, forms `ManageCommunity`; the store filters by the
//! account's place scope exactly as the JSON API does (`crate::api` community routes).
//! A refused form shows the page again with the reason, in the visitor's language, and
//! the status the API would give.

use super::{field, page_error, today, Frame};
use crate::auth::Caller;
use crate::i18n::{self, Lang};
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{Datelike, NaiveDate};
use lianxin_domain::community::{
    check_period, parse_skills, parse_text, NeedStatus, Quarter, RegistrationKind,
};
use lianxin_domain::place::PlaceLevel;
use lianxin_domain::rates::percent;
use lianxin_domain::relation::parse_day;
use lianxin_domain::role::{DataScope, Permission};
use lianxin_domain::ValidationError;
use lianxin_store::grids::{AreaRef, HouseholdRow, NewNeed, NewRegistration};
use lianxin_store::StoreError;
use minijinja::{context, Value};
use serde::Deserialize;
use std::collections::BTreeMap;

/// This area's templates, registered with the others.
pub(super) const TEMPLATES: &[(&str, &str)] = &[
    (
        "community_nav.html",
        include_str!("../../templates/community_nav.html"),
    ),
    (
        "community_coverage.html",
        include_str!("../../templates/community_coverage.html"),
    ),
    (
        "community_needs.html",
        include_str!("../../templates/community_needs.html"),
    ),
    (
        "community_registrations.html",
        include_str!("../../templates/community_registrations.html"),
    ),
    (
        "community_service.html",
        include_str!("../../templates/community_service.html"),
    ),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/coverage", get(coverage_page))
        .route("/coverage.csv", get(coverage_csv))
        .route("/needs", get(needs_page).post(post_need))
        .route("/needs/{id}/claim", post(claim_need))
        .route("/needs/{id}/release", post(release_need))
        .route("/needs/{id}/complete", post(complete_need))
        .route("/registrations", get(registrations_page).post(register))
        .route("/registrations/{id}/end", post(end_registration))
        .route("/grid-households", post(assign_household))
        .route("/service-records", get(service_page))
        .route("/service-records.csv", get(service_csv))
}

// ----- shared -----

fn tr(lang: Lang, key: &str) -> String {
    i18n::table(lang)
        .get(key)
        .map(|s| s.to_string())
        .unwrap_or_else(|| key.to_string())
}

/// A refusal to show above the page.
struct Problem {
    status: StatusCode,
    message: String,
}

fn problem_value(p: &Option<Problem>) -> Option<Value> {
    p.as_ref()
        .map(|p| context! { message => p.message.clone() })
}

fn from_validation(lang: Lang, v: &ValidationError) -> Problem {
    let status = if v.code == "wrong_state" {
        StatusCode::CONFLICT
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let label = tr(lang, &format!("cm_field_{}", v.field));
    let label = if label.starts_with("cm_field_") {
        v.field.clone()
    } else {
        label
    };
    let key = format!("cm_err_{}", v.code);
    let text = tr(lang, &key);
    let message = if text != key {
        text.replace("{}", &label)
    } else {
        format!("{}{label}: {}", tr(lang, "cm_err_prefix"), v.message)
    };
    Problem { status, message }
}

/// A store error as a problem for the page; `None` for a failure of the server itself
/// (logged here, shown as the error page).
fn from_store(lang: Lang, e: StoreError) -> Option<Problem> {
    match e {
        StoreError::Invalid(v) => Some(from_validation(lang, &v)),
        StoreError::NotFound { .. } => Some(Problem {
            status: StatusCode::NOT_FOUND,
            message: tr(lang, "error_404"),
        }),
        StoreError::Conflict { message, .. } => Some(Problem {
            status: StatusCode::CONFLICT,
            message,
        }),
        other => {
            tracing::error!(error = %other, "community page");
            None
        }
    }
}

fn server_failure(state: &AppState, frame: &Frame) -> Response {
    page_error(state, frame, StatusCode::INTERNAL_SERVER_ERROR)
}

/// The signed-in caller allowed `permission`, and the page frame.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
    permission: Permission,
) -> Result<(Caller, Frame), Response> {
    super::permitted_caller(state, headers, here, permission).await
}

/// A posted form from a caller who may keep the community, with a valid CSRF token.
async fn posted(
    state: &AppState,
    req: Request,
    here: &str,
) -> Result<(Caller, Frame, Vec<(String, String)>), Response> {
    super::posted_form(state, req, here, Permission::ManageCommunity, 64 * 1024).await
}

fn opt(form: &[(String, String)], name: &str) -> Option<String> {
    Some(field(form, name).trim().to_string()).filter(|v| !v.is_empty())
}

/// Hours as people write them: 2, 2.5, 1.25.
fn hours_text(h: f64) -> String {
    h.to_string()
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
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

fn with_status(mut resp: Response, problem: &Option<Problem>) -> Response {
    if let Some(p) = problem {
        *resp.status_mut() = p.status;
    }
    resp
}

/// Communities and grids in scope, as options.
struct Areas {
    all: Vec<AreaRef>,
}

impl Areas {
    async fn load(state: &AppState, scope: &DataScope) -> Result<Areas, StoreError> {
        Ok(Areas {
            all: state.store.community_places(scope).await?,
        })
    }

    fn communities(&self) -> impl Iterator<Item = &AreaRef> {
        self.all.iter().filter(|a| a.level == PlaceLevel::Village)
    }

    fn by_code(&self, code: &str) -> Option<&AreaRef> {
        self.all.iter().find(|a| a.code == code.trim())
    }

    fn name_of(&self, id: i64) -> String {
        self.all
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.name.clone())
            .unwrap_or_default()
    }

    /// The community asked for, else the first with grids, else the first.
    fn chosen(&self, code: Option<&str>) -> Option<&AreaRef> {
        code.and_then(|c| self.by_code(c))
            .filter(|a| a.level == PlaceLevel::Village)
            .or_else(|| {
                self.communities()
                    .find(|c| self.all.iter().any(|g| g.parent_id == Some(c.id)))
            })
            .or_else(|| self.communities().next())
    }

    fn community_options(&self) -> Vec<Value> {
        self.communities()
            .map(|c| context! { code => c.code.clone(), name => c.name.clone() })
            .collect()
    }

    /// Grids labelled with their community.
    fn grid_options(&self, community: Option<i64>) -> Vec<Value> {
        self.all
            .iter()
            .filter(|g| g.level == PlaceLevel::Grid)
            .filter(|g| community.is_none() || g.parent_id == community)
            .map(|g| {
                let label = match g.parent_id {
                    Some(p) if community.is_none() => format!("{} · {}", self.name_of(p), g.name),
                    _ => g.name.clone(),
                };
                context! { code => g.code.clone(), name => label }
            })
            .collect()
    }
}

/// The CSV of a table: UTF-8 with a byte-order mark (Excel reads the Chinese), CRLF.
fn to_csv(rows: &[Vec<String>]) -> Vec<u8> {
    let cell = |s: &String| {
        // A leading = + - @ would be read as a formula by spreadsheet programs.
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s.clone()
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    };
    let mut out = String::from("\u{feff}");
    for r in rows {
        out.push_str(&r.iter().map(cell).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

fn csv_response(name: &str, body: Vec<u8>) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

// ----- coverage -----

#[derive(Deserialize, Default, Clone)]
pub struct CoverageParams {
    from: Option<String>,
    to: Option<String>,
    place: Option<String>,
    preset: Option<String>,
}

/// The heat of a share: red (none visited) through amber to green (all visited).
fn heat(share: Option<f64>) -> String {
    match share {
        None => "background:#eceff1".into(),
        Some(s) => format!("background:hsl({:.0},70%,82%)", 120.0 * s.clamp(0.0, 1.0)),
    }
}

/// The period and place asked for; a bad value becomes a problem and the default.
struct CoverageAsk {
    from: NaiveDate,
    to: NaiveDate,
    place: Option<(i64, String)>,
    problem: Option<Problem>,
}

async fn coverage_ask(state: &AppState, c: &Caller, lang: Lang, p: &CoverageParams) -> CoverageAsk {
    let today = today();
    let quarter = Quarter::containing(today);
    let mut problem = None;
    let mut bad = |v: ValidationError| {
        if problem.is_none() {
            problem = Some(from_validation(lang, &v));
        }
    };
    let (mut from, mut to) = (quarter.first_day(), today);
    match p.preset.as_deref().unwrap_or("") {
        "quarter" => {}
        "last_quarter" => {
            from = quarter.previous().first_day();
            to = quarter.previous().last_day();
        }
        "year" => from = NaiveDate::from_ymd_opt(to.year(), 1, 1).unwrap_or(from),
        _ => {
            let day = |field: &str, raw: &Option<String>| {
                raw.as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| parse_day(field, s))
                    .transpose()
            };
            match (day("from", &p.from), day("to", &p.to)) {
                (Ok(f), Ok(t)) => {
                    let t = t.unwrap_or(today);
                    let f = f.unwrap_or_else(|| Quarter::containing(t).first_day());
                    match check_period(f, t) {
                        Ok(()) => (from, to) = (f, t),
                        Err(e) => bad(e),
                    }
                }
                (Err(e), _) | (_, Err(e)) => bad(e),
            }
        }
    }
    let mut place = None;
    if let Some(code) = p.place.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        match state.store.place_by_code(code).await {
            Ok(Some(pl)) if c.account.scope.allows_place(&pl.path) => {
                place = Some((pl.id, pl.code))
            }
            Ok(_) => bad(ValidationError::new(
                "place",
                "unknown_place",
                "no such place in your scope",
            )),
            Err(e) => tracing::error!(error = %e, "coverage place"),
        }
    }
    CoverageAsk {
        from,
        to,
        place,
        problem,
    }
}

fn coverage_query(a: &CoverageAsk) -> String {
    let mut q = format!("from={}&to={}", a.from, a.to);
    if let Some((_, code)) = &a.place {
        q.push_str(&format!("&place={}", urlencode(code)));
    }
    q
}

pub async fn coverage_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<crate::extract::QueryParams<CoverageParams>, crate::error::ApiError>,
) -> Response {
    let (c, frame) = match caller(&state, &headers, "/coverage", Permission::ReadGovernance).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let lang = frame.lang;
    let p = params.map(|q| q.0).unwrap_or_default();
    let ask = coverage_ask(&state, &c, lang, &p).await;
    let scope = &c.account.scope;
    let report = match state
        .store
        .coverage(scope, ask.place.as_ref().map(|x| x.0), ask.from, ask.to)
        .await
    {
        Ok(r) => r,
        Err(e) => return super::fail(&state, &frame, crate::error::ApiError::from(e)),
    };
    let areas = match Areas::load(&state, scope).await {
        Ok(a) => a,
        Err(e) => return super::fail(&state, &frame, e.into()),
    };
    let communities: Vec<Value> = report
        .communities
        .iter()
        .map(|cm| {
            let grids: Vec<Value> = report
                .grids
                .iter()
                .filter(|g| g.community_id == cm.community_id)
                .map(|g| {
                    context! {
                        id => g.grid_id, code => g.grid_code.clone(), name => g.grid_name.clone(),
                        households => g.coverage.households, visited => g.coverage.visited,
                        share => percent(g.share), style => heat(g.share),
                    }
                })
                .collect();
            context! {
                code => cm.community_code.clone(), name => cm.community_name.clone(),
                households => cm.coverage.households, visited => cm.coverage.visited,
                share => percent(cm.share), style => heat(cm.share), grids,
            }
        })
        .collect();
    let quarter = Quarter::containing(today());
    let presets: Vec<Value> = [
        ("quarter", "cm_preset_quarter"),
        ("last_quarter", "cm_preset_last_quarter"),
        ("year", "cm_preset_year"),
    ]
    .iter()
    .map(|(code, key)| {
        let mut href = format!("/coverage?preset={code}");
        if let Some((_, pc)) = &ask.place {
            href.push_str(&format!("&place={}", urlencode(pc)));
        }
        context! { code => *code, label => tr(lang, key), href }
    })
    .collect();
    let legend: Vec<Value> = [0.0, 0.25, 0.5, 0.75, 1.0]
        .iter()
        .map(|s| context! { label => percent(Some(*s)), style => heat(Some(*s)) })
        .collect();
    let resp = frame.render(
        &state,
        "community_coverage.html",
        context! {
            section => "coverage",
            from => ask.from.to_string(), to => ask.to.to_string(),
            quarter => quarter.to_string(),
            place => ask.place.as_ref().map(|x| x.1.clone()).unwrap_or_default(),
            places => areas.community_options(),
            presets, legend, communities,
            total => context! {
                households => report.total.households, visited => report.total.visited,
                share => percent(report.share),
            },
            csv_href => format!("/coverage.csv?{}", coverage_query(&ask)),
            problem => problem_value(&ask.problem),
        },
    );
    with_status(resp, &ask.problem)
}

pub async fn coverage_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<crate::extract::QueryParams<CoverageParams>, crate::error::ApiError>,
) -> Response {
    let (c, frame) = match caller(&state, &headers, "/coverage", Permission::ReadGovernance).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let lang = frame.lang;
    let p = params.map(|q| q.0).unwrap_or_default();
    let ask = coverage_ask(&state, &c, lang, &p).await;
    if let Some(pr) = &ask.problem {
        return page_error(&state, &frame, pr.status);
    }
    let report = match state
        .store
        .coverage(
            &c.account.scope,
            ask.place.as_ref().map(|x| x.0),
            ask.from,
            ask.to,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return super::fail(&state, &frame, e.into()),
    };
    let t = |k: &str| tr(lang, k);
    let period = format!("{} ~ {}", report.from, report.to);
    let mut rows = vec![vec![
        t("cm_community"),
        t("cm_grid_code"),
        t("cm_grid"),
        t("cm_households"),
        t("cm_visited"),
        t("cm_share"),
        t("cm_period"),
    ]];
    for cm in &report.communities {
        for g in report
            .grids
            .iter()
            .filter(|g| g.community_id == cm.community_id)
        {
            rows.push(vec![
                cm.community_name.clone(),
                g.grid_code.clone(),
                g.grid_name.clone(),
                g.coverage.households.to_string(),
                g.coverage.visited.to_string(),
                percent(g.share),
                period.clone(),
            ]);
        }
        rows.push(vec![
            cm.community_name.clone(),
            String::new(),
            t("cm_community_total"),
            cm.coverage.households.to_string(),
            cm.coverage.visited.to_string(),
            percent(cm.share),
            period.clone(),
        ]);
    }
    rows.push(vec![
        t("cm_total"),
        String::new(),
        String::new(),
        report.total.households.to_string(),
        report.total.visited.to_string(),
        percent(report.share),
        period,
    ]);
    csv_response(
        &format!("coverage-{}-{}.csv", report.from, report.to),
        to_csv(&rows),
    )
}

// ----- needs -----

#[derive(Deserialize, Default, Clone)]
pub struct NeedsParams {
    community: Option<String>,
    status: Option<String>,
    done: Option<String>,
}

fn need_status_label(lang: Lang, s: NeedStatus) -> &'static str {
    match lang {
        Lang::Zh => s.label_zh(),
        Lang::En => s.label_en(),
    }
}

async fn render_needs(
    state: &AppState,
    c: &Caller,
    frame: &Frame,
    p: &NeedsParams,
    problem: Option<Problem>,
) -> Response {
    let lang = frame.lang;
    let scope = &c.account.scope;
    let areas = match Areas::load(state, scope).await {
        Ok(a) => a,
        Err(e) => return super::fail(state, frame, e.into()),
    };
    let community = p
        .community
        .as_deref()
        .and_then(|code| areas.by_code(code))
        .filter(|a| a.level == PlaceLevel::Village);
    let status = p.status.as_deref().and_then(|s| NeedStatus::parse(s).ok());
    let needs = match state
        .store
        .needs(scope, community.map(|a| a.id), status, 200)
        .await
    {
        Ok(n) => n,
        Err(e) => return super::fail(state, frame, e.into()),
    };
    // Who may claim: the members registered with each community on the list today,
    // read once per community; each need stars those whose skills it asks for.
    let mut registered: BTreeMap<i64, Vec<_>> = BTreeMap::new();
    for n in needs.iter().filter(|n| n.status == NeedStatus::Open) {
        if registered.contains_key(&n.community_id) {
            continue;
        }
        let regs = state
            .store
            .registrations(
                scope,
                n.community_id,
                today(),
                Some(RegistrationKind::Member),
                None,
            )
            .await
            .unwrap_or_default();
        registered.insert(n.community_id, regs);
    }
    let members_for = |n: &lianxin_store::grids::Need| -> Vec<Value> {
        registered
            .get(&n.community_id)
            .map(|regs| {
                regs.iter()
                    .filter_map(|r| {
                        let matches = n.skills.iter().any(|s| r.skills.contains(s));
                        r.person_id.map(|id| {
                            context! {
                                id, name => r.person_name.clone().unwrap_or_default(),
                                skills => r.skills.join("、"), matches,
                            }
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let rows: Vec<Value> = needs
        .iter()
        .map(|n| {
            context! {
                id => n.id, title => n.title.clone(), detail => n.detail.clone(),
                community => n.community_name.clone(), grid => n.grid_name.clone(),
                skills => n.skills.join("、"), status => n.status.as_str(),
                status_label => need_status_label(lang, n.status),
                claimed_by => n.claimed_by_name.clone(), claimed_by_id => n.claimed_by,
                done_on => n.done_on.map(|d| d.to_string()), hours => n.hours.map(hours_text),
                outcome => n.outcome.clone(), posted_at => n.posted_at.get(..10).unwrap_or("").to_string(),
                members => if n.status == NeedStatus::Open { members_for(n) } else { Vec::new() },
            }
        })
        .collect();
    let statuses: Vec<Value> = NeedStatus::ALL
        .iter()
        .map(|s| context! { code => s.as_str(), name => need_status_label(lang, *s) })
        .collect();
    let notice = p
        .done
        .as_deref()
        .filter(|d| ["posted", "claimed", "released", "completed"].contains(d))
        .map(|d| tr(lang, &format!("cm_done_{d}")));
    let resp = frame.render(
        state,
        "community_needs.html",
        context! {
            section => "needs",
            needs => rows, statuses,
            f => context! {
                community => community.map(|a| a.code.clone()).unwrap_or_default(),
                status => status.map(|s| s.as_str()).unwrap_or(""),
            },
            communities => areas.community_options(),
            grids => areas.grid_options(None),
            manage => c.role().allows(Permission::ManageCommunity),
            today => today().to_string(),
            notice,
            problem => problem_value(&problem),
        },
    );
    with_status(resp, &problem)
}

pub async fn needs_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<crate::extract::QueryParams<NeedsParams>, crate::error::ApiError>,
) -> Response {
    let (c, frame) = match caller(&state, &headers, "/needs", Permission::ReadGovernance).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let p = params.map(|q| q.0).unwrap_or_default();
    render_needs(&state, &c, &frame, &p, None).await
}

/// After a need step: back to the list of the need's community, or the refusal.
async fn need_outcome(
    state: &AppState,
    c: &Caller,
    frame: &Frame,
    result: Result<lianxin_store::grids::Need, StoreError>,
    done: &str,
    community: Option<String>,
) -> Response {
    match result {
        Ok(n) => see_other(&format!(
            "/needs?community={}&done={done}",
            urlencode(&n.community_code)
        )),
        Err(e) => match from_store(frame.lang, e) {
            Some(p) => {
                let params = NeedsParams {
                    community,
                    ..Default::default()
                };
                render_needs(state, c, frame, &params, Some(p)).await
            }
            None => server_failure(state, frame),
        },
    }
}

pub async fn post_need(State(state): State<AppState>, req: Request) -> Response {
    let (c, frame, form) = match posted(&state, req, "/needs").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let parsed = (|| -> Result<NewNeed, ValidationError> {
        Ok(NewNeed {
            community_code: field(&form, "community_code").trim().to_string(),
            grid_code: opt(&form, "grid_code"),
            title: parse_text("title", field(&form, "title"), 100, true)?,
            detail: parse_text("detail", field(&form, "detail"), 2000, false)?,
            skills: parse_skills(field(&form, "skills"))?,
        })
    })();
    let result = match parsed {
        Ok(d) => {
            state
                .store
                .post_need(&c.actor(), &c.account.scope, &d)
                .await
        }
        Err(v) => Err(v.into()),
    };
    need_outcome(
        &state,
        &c,
        &frame,
        result,
        "posted",
        opt(&form, "community_code"),
    )
    .await
}

pub async fn claim_need(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    req: Request,
) -> Response {
    let (c, frame, form) = match posted(&state, req, "/needs").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match field(&form, "person_id").trim().parse::<i64>() {
        Ok(person) => {
            state
                .store
                .claim_need(&c.actor(), &c.account.scope, id, person, today())
                .await
        }
        Err(_) => Err(ValidationError::new(
            "person_id",
            "required",
            "choose the member who claims the need",
        )
        .into()),
    };
    need_outcome(&state, &c, &frame, result, "claimed", None).await
}

pub async fn release_need(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    req: Request,
) -> Response {
    let (c, frame, _) = match posted(&state, req, "/needs").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = state
        .store
        .release_need(&c.actor(), &c.account.scope, id)
        .await;
    need_outcome(&state, &c, &frame, result, "released", None).await
}

pub async fn complete_need(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    req: Request,
) -> Response {
    let (c, frame, form) = match posted(&state, req, "/needs").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let parsed = (|| -> Result<(f64, NaiveDate), ValidationError> {
        let hours = field(&form, "hours").trim().parse::<f64>().map_err(|_| {
            ValidationError::new("hours", "invalid_hours", "hours must be a number")
        })?;
        let done_on = match opt(&form, "done_on") {
            Some(d) => parse_day("done_on", &d)?,
            None => today(),
        };
        Ok((hours, done_on))
    })();
    let result = match parsed {
        Ok((hours, done_on)) => {
            state
                .store
                .complete_need(
                    &c.actor(),
                    &c.account.scope,
                    id,
                    hours,
                    field(&form, "outcome"),
                    done_on,
                    today(),
                )
                .await
        }
        Err(v) => Err(v.into()),
    };
    // A completed need may earn volunteer hours (`api::points`).
    state.rewards.kick();
    need_outcome(&state, &c, &frame, result, "completed", None).await
}

// ----- registrations -----

#[derive(Deserialize, Default, Clone)]
pub struct RegistrationParams {
    community: Option<String>,
    kind: Option<String>,
    skill: Option<String>,
    done: Option<String>,
}

fn kind_label(lang: Lang, k: RegistrationKind) -> &'static str {
    match lang {
        Lang::Zh => k.label_zh(),
        Lang::En => k.label_en(),
    }
}

async fn render_registrations(
    state: &AppState,
    c: &Caller,
    frame: &Frame,
    p: &RegistrationParams,
    problem: Option<Problem>,
) -> Response {
    let lang = frame.lang;
    let scope = &c.account.scope;
    let areas = match Areas::load(state, scope).await {
        Ok(a) => a,
        Err(e) => return super::fail(state, frame, e.into()),
    };
    let Some(community) = areas.chosen(p.community.as_deref()).cloned() else {
        let resp = frame.render(
            state,
            "community_registrations.html",
            context! { section => "registrations", problem => problem_value(&problem) },
        );
        return with_status(resp, &problem);
    };
    let kind = p
        .kind
        .as_deref()
        .and_then(|k| RegistrationKind::parse(k).ok());
    let skill = p
        .skill
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .and_then(|s| parse_skills(s).ok())
        .and_then(|s| s.into_iter().next());
    let regs = match state
        .store
        .registrations(scope, community.id, today(), kind, skill.as_deref())
        .await
    {
        Ok(r) => r,
        Err(e) => return super::fail(state, frame, e.into()),
    };
    let rows: Vec<Value> = regs
        .iter()
        .map(|r| {
            context! {
                id => r.id, kind => r.kind.as_str(), kind_label => kind_label(lang, r.kind),
                person_id => r.person_id,
                name => r.person_name.clone().or_else(|| r.org_name.clone()).unwrap_or_default(),
                grid => r.grid_name.clone(), employer => r.employer_name.clone(),
                employer_id => r.employer_id,
                skills => r.skills.clone(), valid_from => r.valid_from.to_string(),
            }
        })
        .collect();
    // Party members living in the community who are not registered yet.
    let manage = c.role().allows(Permission::ManageCommunity);
    let mut candidates = Vec::new();
    if manage {
        if let Ok(place) = state.store.place(community.id, scope).await {
            let within = DataScope {
                place_path: Some(place.path.clone()),
                org_path: None,
            };
            let people = state
                .store
                .search_people("", None, &within, 500, 0)
                .await
                .unwrap_or_default();
            candidates = people
                .into_iter()
                .filter(|pe| pe.party_member && !regs.iter().any(|r| r.person_id == Some(pe.id)))
                .map(|pe| context! { id => pe.id, name => pe.name, place => pe.place_name })
                .collect();
        }
    }
    let notice = p
        .done
        .as_deref()
        .filter(|d| ["registered", "ended", "assigned"].contains(d))
        .map(|d| tr(lang, &format!("cm_done_{d}")));
    let resp = frame.render(
        state,
        "community_registrations.html",
        context! {
            section => "registrations",
            community => context! { code => community.code.clone(), name => community.name.clone() },
            communities => areas.community_options(),
            grids => areas.grid_options(Some(community.id)),
            registrations => rows,
            f => context! {
                kind => kind.map(|k| k.as_str()).unwrap_or(""),
                skill => skill.unwrap_or_default(),
            },
            kinds => RegistrationKind::ALL.iter().map(|k| context! { code => k.as_str(), name => kind_label(lang, *k) }).collect::<Vec<_>>(),
            candidates, manage, today => today().to_string(), notice,
            problem => problem_value(&problem),
        },
    );
    with_status(resp, &problem)
}

pub async fn registrations_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<crate::extract::QueryParams<RegistrationParams>, crate::error::ApiError>,
) -> Response {
    let (c, frame) = match caller(
        &state,
        &headers,
        "/registrations",
        Permission::ReadGovernance,
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let p = params.map(|q| q.0).unwrap_or_default();
    render_registrations(&state, &c, &frame, &p, None).await
}

async fn registration_outcome(
    state: &AppState,
    c: &Caller,
    frame: &Frame,
    result: Result<String, StoreError>,
    done: &str,
    community: Option<String>,
) -> Response {
    match result {
        Ok(code) => see_other(&format!(
            "/registrations?community={}&done={done}",
            urlencode(&code)
        )),
        Err(e) => match from_store(frame.lang, e) {
            Some(p) => {
                let params = RegistrationParams {
                    community,
                    ..Default::default()
                };
                render_registrations(state, c, frame, &params, Some(p)).await
            }
            None => server_failure(state, frame),
        },
    }
}

pub async fn register(State(state): State<AppState>, req: Request) -> Response {
    let (c, frame, form) = match posted(&state, req, "/registrations").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let parsed = (|| -> Result<NewRegistration, ValidationError> {
        let kind = RegistrationKind::parse(field(&form, "kind"))?;
        let person_id = match (kind, opt(&form, "person_id")) {
            (RegistrationKind::Member, Some(p)) => Some(p.parse::<i64>().map_err(|_| {
                ValidationError::new("person_id", "required", "choose the party member")
            })?),
            (RegistrationKind::Member, None) => {
                return Err(ValidationError::new(
                    "person_id",
                    "required",
                    "choose the party member",
                ))
            }
            (RegistrationKind::Org, _) => None,
        };
        Ok(NewRegistration {
            kind,
            person_id,
            org_code: opt(&form, "org_code").filter(|_| kind == RegistrationKind::Org),
            community_code: field(&form, "community_code").trim().to_string(),
            grid_code: opt(&form, "grid_code"),
            employer_code: opt(&form, "employer_code").filter(|_| kind == RegistrationKind::Member),
            skills: parse_skills(field(&form, "skills"))?,
            valid_from: match opt(&form, "valid_from") {
                Some(d) => parse_day("valid_from", &d)?,
                None => today(),
            },
        })
    })();
    let result = match parsed {
        Ok(d) => state
            .store
            .register(&c.actor(), &c.account.scope, &d)
            .await
            .map(|r| r.community_code),
        Err(v) => Err(v.into()),
    };
    registration_outcome(
        &state,
        &c,
        &frame,
        result,
        "registered",
        opt(&form, "community_code"),
    )
    .await
}

pub async fn end_registration(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    req: Request,
) -> Response {
    let (c, frame, form) = match posted(&state, req, "/registrations").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match parse_day("on", field(&form, "on")) {
        Ok(on) => state
            .store
            .end_registration(&c.actor(), &c.account.scope, id, on)
            .await
            .map(|r| r.community_code),
        Err(v) => Err(v.into()),
    };
    registration_outcome(
        &state,
        &c,
        &frame,
        result,
        "ended",
        opt(&form, "community_code"),
    )
    .await
}

/// Puts a household in a grid from the registrations page (a household code typed or
/// scanned from the door plate).
pub async fn assign_household(State(state): State<AppState>, req: Request) -> Response {
    let (c, frame, form) = match posted(&state, req, "/registrations").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let community = opt(&form, "community_code");
    let result = match opt(&form, "valid_from")
        .map(|d| parse_day("valid_from", &d))
        .transpose()
    {
        Ok(from) => state
            .store
            .assign_household(
                &c.actor(),
                &c.account.scope,
                &HouseholdRow {
                    household_code: field(&form, "household_code").trim().to_string(),
                    grid_code: field(&form, "grid_code").trim().to_string(),
                    valid_from: from.unwrap_or_else(today),
                },
            )
            .await
            .map(|_| community.clone().unwrap_or_default()),
        Err(v) => Err(v.into()),
    };
    registration_outcome(&state, &c, &frame, result, "assigned", community).await
}

// ----- service records -----

#[derive(Deserialize, Default, Clone)]
pub struct ServiceParams {
    person: Option<String>,
    org: Option<String>,
    quarter: Option<String>,
}

pub async fn service_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<crate::extract::QueryParams<ServiceParams>, crate::error::ApiError>,
) -> Response {
    let (c, frame) = match caller(
        &state,
        &headers,
        "/service-records",
        Permission::ReadGovernance,
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let lang = frame.lang;
    let p = params.map(|q| q.0).unwrap_or_default();
    let scope = &c.account.scope;
    let mut problem = None;
    let current = Quarter::containing(today());
    let quarter = match p
        .quarter
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(q) => Quarter::parse(q).unwrap_or_else(|e| {
            problem = Some(from_validation(lang, &e));
            current
        }),
        None => current,
    };
    let regs = match state.store.member_registrations(scope, today(), 2000).await {
        Ok(r) => r,
        Err(e) => return super::fail(&state, &frame, e.into()),
    };
    let members: Vec<Value> = regs
        .iter()
        .filter_map(|r| {
            r.person_id.map(|id| {
                context! { id, name => r.person_name.clone().unwrap_or_default(), community => r.community_name.clone() }
            })
        })
        .collect();
    let mut employers: BTreeMap<i64, String> = BTreeMap::new();
    for r in &regs {
        if let (Some(id), Some(name)) = (r.employer_id, &r.employer_name) {
            employers.insert(id, name.clone());
        }
    }
    let employers: Vec<Value> = employers
        .into_iter()
        .map(|(id, name)| context! { id, name })
        .collect();
    let person = p
        .person
        .as_deref()
        .and_then(|s| s.trim().parse::<i64>().ok());
    let org = p.org.as_deref().and_then(|s| s.trim().parse::<i64>().ok());
    let mut record = None;
    if let Some(id) = person {
        match state.store.service_record(scope, id).await {
            Ok(r) => {
                let needs: Vec<Value> = r
                    .needs
                    .iter()
                    .map(|n| {
                        context! {
                            id => n.id, title => n.title.clone(), community => n.community_name.clone(),
                            status_label => need_status_label(lang, n.status), done_on => n.done_on.map(|d| d.to_string()),
                            hours => n.hours.map(hours_text), outcome => n.outcome.clone(),
                        }
                    })
                    .collect();
                let registrations: Vec<Value> = r
                    .registrations
                    .iter()
                    .map(|g| {
                        context! {
                            community => g.community_name.clone(), grid => g.grid_name.clone(),
                            employer => g.employer_name.clone(), skills => g.skills.join("、"),
                            valid_from => g.valid_from.to_string(), valid_to => g.valid_to.map(|d| d.to_string()),
                        }
                    })
                    .collect();
                record = Some(context! {
                    name => r.person_name, done => r.done, hours => hours_text(r.hours), needs, registrations,
                });
            }
            Err(e) => match from_store(lang, e) {
                Some(pr) => problem = Some(pr),
                None => return server_failure(&state, &frame),
            },
        }
    }
    let mut report = None;
    if let Some(id) = org {
        match state.store.employer_report(scope, id, quarter).await {
            Ok(r) => {
                let rows: Vec<Value> = r
                    .members
                    .iter()
                    .map(|m| {
                        context! {
                            person_id => m.person_id, name => m.person_name.clone(), community => m.community_name.clone(),
                            grid => m.grid_name.clone(), skills => m.skills.join("、"), done => m.done, hours => hours_text(m.hours),
                            needs => m.needs.join("；"),
                        }
                    })
                    .collect();
                report = Some(context! {
                    org_name => r.org_name, quarter => r.quarter.to_string(),
                    from => r.from.to_string(), to => r.to.to_string(),
                    members => rows, done => r.done, hours => hours_text(r.hours),
                    csv_href => format!("/service-records.csv?org={id}&quarter={}", r.quarter),
                });
            }
            Err(e) => match from_store(lang, e) {
                Some(pr) => problem = Some(pr),
                None => return server_failure(&state, &frame),
            },
        }
    }
    let quarters: Vec<String> = {
        let mut q = current;
        (0..6)
            .map(|_| {
                let s = q.to_string();
                q = q.previous();
                s
            })
            .collect()
    };
    let resp = frame.render(
        &state,
        "community_service.html",
        context! {
            section => "service",
            members, employers, quarters,
            f => context! { person => person, org => org, quarter => quarter.to_string() },
            record, report,
            problem => problem_value(&problem),
        },
    );
    with_status(resp, &problem)
}

pub async fn service_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<crate::extract::QueryParams<ServiceParams>, crate::error::ApiError>,
) -> Response {
    let (c, frame) = match caller(
        &state,
        &headers,
        "/service-records",
        Permission::ReadGovernance,
    )
    .await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let lang = frame.lang;
    let p = params.map(|q| q.0).unwrap_or_default();
    let Some(org) = p.org.as_deref().and_then(|s| s.trim().parse::<i64>().ok()) else {
        return page_error(&state, &frame, StatusCode::BAD_REQUEST);
    };
    let quarter = match p
        .quarter
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(q) => match Quarter::parse(q) {
            Ok(q) => q,
            Err(_) => return page_error(&state, &frame, StatusCode::BAD_REQUEST),
        },
        None => Quarter::containing(today()),
    };
    let r = match state
        .store
        .employer_report(&c.account.scope, org, quarter)
        .await
    {
        Ok(r) => r,
        Err(e) => return super::fail(&state, &frame, e.into()),
    };
    let t = |k: &str| tr(lang, k);
    let mut rows = vec![vec![
        t("cm_member"),
        t("cm_community"),
        t("cm_grid"),
        t("cm_skills"),
        t("cm_needs_done"),
        t("cm_hours"),
        t("cm_needs"),
        t("cm_employer"),
        t("cm_quarter"),
    ]];
    for m in &r.members {
        rows.push(vec![
            m.person_name.clone(),
            m.community_name.clone(),
            m.grid_name.clone().unwrap_or_default(),
            m.skills.join("、"),
            m.done.to_string(),
            hours_text(m.hours),
            m.needs.join("；"),
            r.org_name.clone(),
            r.quarter.to_string(),
        ]);
    }
    rows.push(vec![
        t("cm_total"),
        String::new(),
        String::new(),
        String::new(),
        r.done.to_string(),
        hours_text(r.hours),
        String::new(),
        r.org_name.clone(),
        r.quarter.to_string(),
    ]);
    csv_response(
        &format!("service-report-{org}-{}.csv", r.quarter),
        to_csv(&rows),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_runs_red_to_green() {
        assert_eq!(heat(Some(0.0)), "background:hsl(0,70%,82%)");
        assert_eq!(heat(Some(1.0)), "background:hsl(120,70%,82%)");
        assert_eq!(heat(Some(0.5)), "background:hsl(60,70%,82%)");
        assert_eq!(heat(None), "background:#eceff1");
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        let out = String::from_utf8(to_csv(&[vec![
            "a,b".into(),
            "=1+1".into(),
            "say \"hi\"".into(),
        ]]))
        .unwrap();
        assert_eq!(out, "\u{feff}\"a,b\",'=1+1,\"say \"\"hi\"\"\"\r\n");
    }

    /// Every `t.key` the community templates use exists, in both languages, and
    /// every refusal code of the store has its sentence.
    #[test]
    fn templates_use_only_known_texts() {
        let zh = i18n::table(Lang::Zh);
        for (name, src) in TEMPLATES {
            let mut rest = *src;
            while let Some(i) = rest.find("t.") {
                let before = rest[..i].chars().last();
                rest = &rest[i + 2..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let key: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !key.is_empty() {
                    assert!(zh.contains_key(key.as_str()), "{name} uses t.{key}");
                }
            }
        }
        for code in [
            "household_in_two_grids",
            "already_assigned",
            "grid_outside_community",
            "overlapping_registration",
            "not_a_party_member",
            "not_registered",
            "wrong_state",
            "invalid_hours",
            "in_future",
            "before_claim",
            "unknown_place",
            "unknown_org",
            "unknown_person",
            "not_a_community",
            "not_a_grid",
            "not_a_household",
            "invalid_quarter",
            "invalid_period",
            "invalid_date",
            "invalid_skills",
            "already_ended",
        ] {
            assert!(zh.contains_key(format!("cm_err_{code}").as_str()), "{code}");
        }
        for key in [
            "cm_preset_quarter",
            "cm_preset_last_quarter",
            "cm_preset_year",
            "cm_done_posted",
            "cm_done_claimed",
            "cm_done_released",
            "cm_done_completed",
            "cm_done_registered",
            "cm_done_ended",
            "cm_done_assigned",
            "cm_err_prefix",
        ] {
            assert!(zh.contains_key(key), "{key}");
        }
    }
}
