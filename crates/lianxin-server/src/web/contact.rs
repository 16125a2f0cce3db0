//! The contact-point pages (党建联系点).
//!
//! - `/points`: an official's own points, the handovers waiting for them and their
//!   recent visits; below, every point in scope with its priority and who holds it.
//! - `/points/{id}`: a point's priority explained, its link history, its visits and
//!   the follow-up of the demands collected there.
//! - `/visits/new`: recording a visit on the phone, with photos and the demands it
//!   collected; `/visits/{id}` shows it.
//! - `/governance`: the district view ("17 officials, 117 visits, 100+ demands"),
//!   its warnings and CSV exports; admins set the rules there.
//! - `/rematches`: the organisation department's re-match queue: record a change of
//!   post, pick a successor, follow the handover.
//!
//! Every page calls the same store functions and checks as `crate::api::contact`.

use super::demands::intake::read_upload;
use super::demands::{
    category_options, field, from_api, from_store, local_time, opt, problem_value, see_other,
    status_label, tr, Problem,
};
use super::{page_error, Frame};
use crate::api::contact::{
    point_json, record_visit, today, visit_photo_of, year_of, CollectedDemand,
};
use crate::auth::{self, Caller};
use crate::chart::bar_chart;
use crate::error::ApiError;
use crate::export;
use crate::extract::QueryParams;
use crate::i18n::Lang;
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use lianxin_domain::contact::{PointIndicators, RematchStatus, VisitKind};
use lianxin_domain::demand::Status;
use lianxin_domain::relation::parse_day;
use lianxin_domain::role::Permission;
use lianxin_store::contact::{DistrictView, NewVisit, VisitQuery};
use minijinja::{context, Value};
use serde::Deserialize;

pub(super) const TEMPLATES: &[(&str, &str)] = &[
    ("points.html", include_str!("../../templates/points.html")),
    ("point.html", include_str!("../../templates/point.html")),
    (
        "visit_form.html",
        include_str!("../../templates/visit_form.html"),
    ),
    ("visit.html", include_str!("../../templates/visit.html")),
    (
        "governance.html",
        include_str!("../../templates/governance.html"),
    ),
    (
        "rematches.html",
        include_str!("../../templates/rematches.html"),
    ),
    ("rematch.html", include_str!("../../templates/rematch.html")),
];

pub fn routes() -> Router<AppState> {
    let upload = DefaultBodyLimit::max(crate::api::demands::SUBMIT_BODY_LIMIT);
    Router::new()
        .route("/points", get(points))
        .route("/points/{id}", get(point))
        .route("/points/new", post(create_point))
        .route("/points/{id}/indicators", post(set_indicators))
        .route("/points/{id}/link", post(link_official))
        .route(
            "/visits/new",
            get(visit_form).post(visit_post).layer(upload),
        )
        .route("/visits/{id}", get(visit))
        .route("/visits/{id}/follow-up", post(follow_up))
        .route("/visits/{id}/photos/{photo}", get(visit_photo))
        .route("/governance", get(governance))
        .route("/governance/officials.csv", get(officials_csv))
        .route("/governance/points.csv", get(points_csv))
        .route("/governance/rules", post(set_rules))
        .route("/rematches", get(rematches))
        .route("/rematches/post-change", post(post_change))
        .route("/rematches/{id}", get(rematch))
        .route("/rematches/{id}/confirm", post(confirm))
        .route("/rematches/{id}/acknowledge", post(acknowledge))
}

/// The caller of a page that needs `permission`, with the page frame.
async fn caller_with(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
    permission: Permission,
) -> Result<(Caller, Frame), Response> {
    super::permitted_caller(state, headers, here, permission).await
}

/// A posted small form, after the caller, permission and CSRF checks.
async fn posted(
    state: &AppState,
    req: Request,
    here: &str,
    permission: Permission,
) -> Result<(Caller, Frame, Vec<(String, String)>), Response> {
    super::posted_form(state, req, here, permission, 256 * 1024).await
}

fn unwrap_page(state: &AppState, frame: &Frame, r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(|e| page_error(state, frame, e.status))
}

fn pct(share: Option<f64>) -> String {
    share.map_or_else(|| "—".into(), |s| format!("{:.0}%", s * 100.0))
}

fn hours(h: Option<f64>) -> String {
    h.map_or_else(|| "—".into(), |h| format!("{h:.1}"))
}

fn kind_label(lang: Lang, k: VisitKind) -> String {
    tr(lang, &format!("ct_visit_{}", k.as_str()))
}

fn rematch_label(lang: Lang, s: RematchStatus) -> String {
    tr(lang, &format!("ct_rematch_{}", s.as_str()))
}

fn status_text(lang: Lang, s: &str) -> String {
    Status::parse(s).map_or_else(|_| s.to_string(), |s| status_label(lang, s).to_string())
}

// ----- points -----

async fn points(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<PointsQuery>, ApiError>,
) -> Response {
    let (c, frame) =
        match caller_with(&state, &headers, "/points", Permission::ReadGovernance).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let acknowledged = q.ok().and_then(|QueryParams(q)| q.acknowledged).is_some();
    let ok = acknowledged.then(|| tr(frame.lang, "ct_acknowledged"));
    points_page(&state, &frame, &c, None, &[], ok).await
}

#[derive(Deserialize, Default)]
struct PointsQuery {
    acknowledged: Option<String>,
}

async fn points_page(
    state: &AppState,
    frame: &Frame,
    c: &Caller,
    problem: Option<Problem>,
    form: &[(String, String)],
    ok: Option<String>,
) -> Response {
    let lang = frame.lang;
    let r: Result<Response, ApiError> = async {
        let rules = state.store.governance_rules().await?;
        let all = state.store.points(&c.account.scope).await?;
        let today = today();
        let (mine, handovers, my_visits) = match c.account.person_id {
            Some(me) => {
                let links = state.store.links_of_person(me).await?;
                let mine: Vec<Value> = links
                    .iter()
                    .filter(|l| l.validity().contains(today))
                    .filter_map(|l| all.iter().find(|p| p.id == l.point_id))
                    .map(|p| Value::from_serialize(point_json(p, rules.weights)))
                    .collect();
                let handovers = state.store.handovers_for(me).await?;
                let visits = state
                    .store
                    .visits(
                        &Default::default(),
                        &VisitQuery {
                            person_id: Some(me),
                            limit: 10,
                            ..VisitQuery::default()
                        },
                    )
                    .await?;
                let visits: Vec<Value> = visits
                    .iter()
                    .map(|v| context! { id => v.id, date => v.visited_on.to_string(), kind => kind_label(lang, v.kind), point => v.point_name.clone(), place => v.place_name.clone() })
                    .collect();
                (mine, handovers, visits)
            }
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let view = state.store.district_view(&c.account.scope, today_year(), today).await?;
        let rows: Vec<Value> = view
            .points
            .iter()
            .map(|l| context! {
                id => l.point.id,
                name => l.point.name.clone(),
                kind => tr(lang, &format!("ct_kind_{}", l.point.kind.as_str())),
                place => l.point.place_name.clone(),
                priority => format!("{:.1}", l.priority),
                high => l.priority >= lianxin_domain::contact::HIGH_PRIORITY,
                officials => l.officials.iter().map(|o| o.1.clone()).collect::<Vec<_>>().join("、"),
                unlinked => l.officials.is_empty(),
                visits => l.figures.visits,
                expected => l.visits_expected,
                demands => l.figures.demands,
            })
            .collect();
        let kinds: Vec<Value> = lianxin_domain::contact::PointKind::ALL
            .iter()
            .map(|k| context! { code => k.as_str(), name => tr(lang, &format!("ct_kind_{}", k.as_str())) })
            .collect();
        let kept: std::collections::BTreeMap<&str, &str> =
            form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let status = problem.as_ref().map_or(StatusCode::OK, |p| p.status);
        let mut resp = frame.render(
            state,
            "points.html",
            context! {
                mine,
                handovers => Value::from_serialize(&handovers),
                my_visits,
                rows,
                kinds,
                kept,
                can_record => c.role().allows(Permission::RecordVisits),
                manage => c.role().allows(Permission::ManageGovernance),
                problem => problem.as_ref().map(problem_value),
                ok,
            },
        );
        *resp.status_mut() = status;
        Ok(resp)
    }
    .await;
    unwrap_page(state, frame, r)
}

/// The organisation department adds a point from the form on `/points`.
async fn create_point(State(state): State<AppState>, req: Request) -> Response {
    let (c, frame, form) = match posted(&state, req, "/points", Permission::ManageGovernance).await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let num = |k: &str| -> Result<u8, ApiError> {
        field(&form, k)
            .trim()
            .parse::<u8>()
            .map_err(|_| ApiError::invalid(k, "0 to 100"))
    };
    let result: Result<i64, ApiError> = async {
        let p = state
            .store
            .create_point(
                &c.actor(),
                &c.account.scope,
                &lianxin_store::contact::NewPoint {
                    kind: lianxin_domain::contact::PointKind::parse(field(&form, "kind"))?,
                    name: opt(&form, "name").map(String::from),
                    place_code: field(&form, "place").trim().to_string(),
                    org_code: opt(&form, "org").map(|s| s.trim().to_string()),
                    sector: opt(&form, "sector").map(String::from),
                    indicators: PointIndicators::new(
                        num("task_load")?,
                        num("weakness")?,
                        num("complexity")?,
                    )?,
                },
            )
            .await?;
        Ok(p.id)
    }
    .await;
    match result {
        Ok(id) => see_other(&format!("/points/{id}")),
        Err(e) => match from_api(frame.lang, e) {
            Ok(p) => points_page(&state, &frame, &c, Some(p), &form, None).await,
            Err(e) => page_error(&state, &frame, e.status),
        },
    }
}

/// The organisation department links an official to a point from its page.
async fn link_official(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (c, frame, form) = match posted(&state, req, "/points", Permission::ManageGovernance).await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<i64>() else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    let result: Result<(), ApiError> = async {
        let person: i64 = field(&form, "person_id")
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid("person_id", "choose an official"))?;
        let from = parse_day("valid_from", field(&form, "valid_from"))?;
        let validity = lianxin_domain::relation::Validity::new(from, None)?;
        state
            .store
            .link_official(&c.actor(), &c.account.scope, id, person, validity)
            .await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => see_other(&format!("/points/{id}")),
        Err(e) => match from_api(frame.lang, e) {
            Ok(p) => point_page(&state, &frame, &c, id, Some(p)).await,
            Err(e) => page_error(&state, &frame, e.status),
        },
    }
}

fn today_year() -> i32 {
    use chrono::Datelike;
    today().year()
}

async fn point(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (c, frame) =
        match caller_with(&state, &headers, "/points", Permission::ReadGovernance).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let Ok(id) = id.parse::<i64>() else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    point_page(&state, &frame, &c, id, None).await
}

async fn point_page(
    state: &AppState,
    frame: &Frame,
    c: &Caller,
    id: i64,
    problem: Option<Problem>,
) -> Response {
    let lang = frame.lang;
    let r: Result<Response, ApiError> = async {
        let p = state.store.point(id, &c.account.scope).await?;
        let rules = state.store.governance_rules().await?;
        let explained = point_json(&p, rules.weights);
        let parts: Vec<Value> = explained["priority"]["parts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|part| {
                        let name = part["indicator"].as_str().unwrap_or_default();
                        context! {
                            code => name,
                            name => tr(lang, &format!("ct_ind_{name}")),
                            value => part["value"].as_i64(),
                            share => format!("{:.0}%", part["weight_share"].as_f64().unwrap_or(0.0) * 100.0),
                            adds => format!("{:.1}", part["adds"].as_f64().unwrap_or(0.0)),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let today = today();
        let history = state.store.point_links(id).await?;
        let linked = history.iter().any(|l| l.validity().contains(today));
        let links: Vec<Value> = history
            .iter()
            .map(|l| context! {
                name => l.person_name.clone(),
                from => l.valid_from.to_string(),
                to => l.valid_to.map(|d| d.to_string()),
                current => l.validity().contains(today),
                via_rematch => l.rematch_id,
            })
            .collect();
        let visits = state
            .store
            .visits(&c.account.scope, &VisitQuery { point_id: Some(id), limit: 50, ..VisitQuery::default() })
            .await?;
        let ids: Vec<i64> = visits.iter().map(|v| v.id).collect();
        let demands: Vec<Value> = state
            .store
            .visit_demands(&ids)
            .await?
            .iter()
            .map(|d| context! {
                id => d.id, title => d.title.clone(), status => status_text(lang, &d.status),
                received => local_time(d.received_at), answered => d.answered_at.map(local_time),
                visit_id => d.visit_id,
            })
            .collect();
        let visits: Vec<Value> = visits
            .iter()
            .map(|v| context! {
                id => v.id, date => v.visited_on.to_string(), kind => kind_label(lang, v.kind),
                person => v.person_name.clone(), notes => v.notes.chars().take(60).collect::<String>(),
            })
            .collect();
        let holders: Vec<Value> = if c.role().allows(Permission::ManageGovernance) {
            state
                .store
                .post_holders(&p.place_path, today)
                .await?
                .iter()
                .map(|k| context! { id => k.person_id, name => k.name.clone(), post => k.post.clone(), load => format!("{:.1}", k.load) })
                .collect()
        } else {
            Vec::new()
        };
        let rematches = state.store.rematches(&c.account.scope, &[RematchStatus::Open, RematchStatus::Confirmed]).await?;
        let open = rematches.iter().find(|r| r.point_id == id).map(|r| context! { id => r.id, status => rematch_label(lang, r.status) });
        Ok(frame.render(
            state,
            "point.html",
            context! {
                point => Value::from_serialize(&p),
                kind => tr(lang, &format!("ct_kind_{}", p.kind.as_str())),
                score => explained["priority"]["score"].as_f64(),
                high => explained["priority"]["high"].as_bool(),
                parts, links, visits, demands, open, holders,
                today => today.to_string(),
                linked,
                manage => c.role().allows(Permission::ManageGovernance),
                can_record => c.role().allows(Permission::RecordVisits),
                problem => problem.as_ref().map(problem_value),
            },
        ))
    }
    .await;
    unwrap_page(state, frame, r)
}

async fn set_indicators(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (c, frame, form) = match posted(&state, req, "/points", Permission::ManageGovernance).await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<i64>() else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    let num = |k: &str| -> Result<u8, ApiError> {
        field(&form, k)
            .trim()
            .parse::<u8>()
            .map_err(|_| ApiError::invalid(k, "0 to 100"))
    };
    let result: Result<(), ApiError> = async {
        let ind = PointIndicators::new(num("task_load")?, num("weakness")?, num("complexity")?)?;
        state
            .store
            .set_point_indicators(&c.actor(), &c.account.scope, id, ind)
            .await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => see_other(&format!("/points/{id}")),
        Err(e) => match from_api(frame.lang, e) {
            Ok(p) => point_page(&state, &frame, &c, id, Some(p)).await,
            Err(e) => page_error(&state, &frame, e.status),
        },
    }
}

// ----- visits -----

#[derive(Deserialize, Default)]
struct VisitFormQuery {
    point: Option<String>,
}

async fn visit_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<VisitFormQuery>, ApiError>,
) -> Response {
    let (c, frame) = match caller_with(&state, &headers, "/points", Permission::RecordVisits).await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let point = q
        .ok()
        .and_then(|QueryParams(q)| q.point)
        .unwrap_or_default();
    let kept = [
        ("point_id".to_string(), point),
        ("date".to_string(), today().to_string()),
    ];
    render_visit_form(&state, &frame, &c, None, &kept).await
}

async fn render_visit_form(
    state: &AppState,
    frame: &Frame,
    c: &Caller,
    problem: Option<Problem>,
    kept: &[(String, String)],
) -> Response {
    let lang = frame.lang;
    let r: Result<Response, ApiError> = async {
        let all = state.store.points(&c.account.scope).await?;
        let mine: Vec<i64> = match c.account.person_id {
            Some(me) => state
                .store
                .links_of_person(me)
                .await?
                .iter()
                .filter(|l| l.validity().contains(today()))
                .map(|l| l.point_id)
                .collect(),
            None => Vec::new(),
        };
        // My points first, then the rest of the scope.
        let mut options: Vec<Value> = all
            .iter()
            .filter(|p| mine.contains(&p.id))
            .chain(all.iter().filter(|p| !mine.contains(&p.id)))
            .map(|p| context! { id => p.id, name => p.name.clone(), mine => mine.contains(&p.id) })
            .collect();
        options.truncate(500);
        let kinds: Vec<Value> = VisitKind::ALL
            .iter()
            .map(|k| context! { code => k.as_str(), name => kind_label(lang, *k) })
            .collect();
        let kept: std::collections::BTreeMap<&str, &str> =
            kept.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let status = problem.as_ref().map_or(StatusCode::OK, |p| p.status);
        let mut resp = frame.render(
            state,
            "visit_form.html",
            context! {
                options, kinds, kept,
                categories => category_options(state, lang),
                today => today().to_string(),
                slots => [1, 2, 3],
                problem => problem.as_ref().map(problem_value),
            },
        );
        *resp.status_mut() = status;
        Ok(resp)
    }
    .await;
    unwrap_page(state, frame, r)
}

async fn visit_post(State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let (c, frame) = match caller_with(&state, &headers, "/points", Permission::RecordVisits).await
    {
        Ok(x) => x,
        Err(r) => return r,
    };
    let upload = match read_upload(req).await {
        Ok(u) => u,
        Err((status, _)) => return page_error(&state, &frame, status),
    };
    let form: Vec<(String, String)> = upload.fields.clone().into_iter().collect();
    if frame.csrf.is_empty() || !auth::same(field(&form, "csrf"), &frame.csrf) {
        return page_error(&state, &frame, StatusCode::FORBIDDEN);
    }
    let result: Result<i64, ApiError> = async {
        let person_id = c.account.person_id.ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "no_person",
                "this account is not linked to a person",
            )
        })?;
        let point_id = match opt(&form, "point_id") {
            Some(p) => Some(
                p.trim()
                    .parse::<i64>()
                    .map_err(|_| ApiError::invalid("point_id", "choose a point"))?,
            ),
            None => None,
        };
        let mut photos = Vec::new();
        for bytes in upload.photos {
            photos.push(visit_photo_of("photos", bytes)?);
        }
        let v = NewVisit {
            point_id,
            person_id,
            kind: VisitKind::parse(field(&form, "kind"))?,
            visited_on: parse_day("date", field(&form, "date"))?,
            place_code: opt(&form, "place").map(|s| s.trim().to_string()),
            participants: field(&form, "participants")
                .lines()
                .map(String::from)
                .collect(),
            notes: field(&form, "notes").to_string(),
            follow_up: opt(&form, "follow_up").map(String::from),
            photos,
        };
        let demands: Vec<CollectedDemand> = (1..=3)
            .filter_map(|i| {
                opt(&form, &format!("demand_text_{i}")).map(|text| CollectedDemand {
                    category: field(&form, &format!("demand_category_{i}")).to_string(),
                    title: None,
                    description: text.to_string(),
                    place: None,
                    kind: None,
                })
            })
            .collect();
        let (visit, _) = record_visit(&state, &c, v, false, demands).await?;
        Ok(visit.id)
    }
    .await;
    match result {
        Ok(id) => see_other(&format!("/visits/{id}?saved=1")),
        Err(e) => match from_api(frame.lang, e) {
            Ok(p) => render_visit_form(&state, &frame, &c, Some(p), &form).await,
            Err(e) => page_error(&state, &frame, e.status),
        },
    }
}

#[derive(Deserialize, Default)]
struct SavedQuery {
    saved: Option<String>,
}

async fn visit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<QueryParams<SavedQuery>, ApiError>,
) -> Response {
    let (c, frame) =
        match caller_with(&state, &headers, "/points", Permission::ReadGovernance).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let Ok(id) = id.parse::<i64>() else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    let saved = q.ok().and_then(|QueryParams(q)| q.saved).is_some();
    let lang = frame.lang;
    let r: Result<Response, ApiError> =
        async {
            let v = state.store.visit(id, &c.account.scope).await?;
            let demands: Vec<Value> = state
            .store
            .visit_demands(&[id])
            .await?
            .iter()
            .map(|d| context! {
                id => d.id, title => d.title.clone(), status => status_text(lang, &d.status),
                deadline => local_time(d.deadline), answered => d.answered_at.map(local_time),
            })
            .collect();
            let owes = v.follow_up.is_some()
                && v.follow_up_done_at.is_none()
                && (c.account.person_id == v.follow_up_person_id
                    || c.role().allows(Permission::ManageGovernance));
            Ok(frame.render(
                &state,
                "visit.html",
                context! {
                    visit => Value::from_serialize(&v),
                    kind => kind_label(lang, v.kind),
                    demands, saved, owes,
                    done_at => v.follow_up_done_at.map(local_time),
                },
            ))
        }
        .await;
    unwrap_page(&state, &frame, r)
}

async fn follow_up(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (c, frame, _) = match posted(&state, req, "/points", Permission::RecordVisits).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<i64>() else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    let by = if c.role().allows(Permission::ManageGovernance) {
        None
    } else {
        c.account.person_id
    };
    match state
        .store
        .complete_follow_up(&c.actor(), &c.account.scope, id, by)
        .await
    {
        Ok(_) => see_other(&format!("/visits/{id}")),
        Err(e) => page_error(&state, &frame, ApiError::from(e).status),
    }
}

async fn visit_photo(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, photo)): Path<(String, String)>,
) -> Response {
    let (c, frame) =
        match caller_with(&state, &headers, "/points", Permission::ReadGovernance).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let (Ok(id), Ok(photo)) = (id.parse::<i64>(), photo.parse::<i64>()) else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    if state.store.visit(id, &c.account.scope).await.is_err() {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    }
    match state.store.visit_photo(id, photo).await {
        Ok((content_type, bytes)) => crate::api::demands::image_response(content_type, bytes),
        Err(_) => page_error(&state, &frame, StatusCode::NOT_FOUND),
    }
}

// ----- the district view -----

#[derive(Deserialize, Default)]
struct YearQuery {
    year: Option<String>,
}

async fn view_for(
    state: &AppState,
    headers: &HeaderMap,
    q: Result<QueryParams<YearQuery>, ApiError>,
) -> Result<(Caller, Frame, DistrictView), Response> {
    let (c, frame) = caller_with(state, headers, "/governance", Permission::ReadGovernance).await?;
    let raw = q.ok().and_then(|QueryParams(q)| q.year);
    let year = year_of(raw.as_deref()).unwrap_or_else(|_| today_year());
    match state
        .store
        .district_view(&c.account.scope, year, today())
        .await
    {
        Ok(v) => Ok((c, frame, v)),
        Err(e) => Err(page_error(state, &frame, ApiError::from(e).status)),
    }
}

async fn governance(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<YearQuery>, ApiError>,
) -> Response {
    let (c, frame, view) = match view_for(&state, &headers, q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    governance_page(&state, &frame, &c, view, None).await
}

async fn governance_page(
    state: &AppState,
    frame: &Frame,
    c: &Caller,
    view: DistrictView,
    problem: Option<Problem>,
) -> Response {
    let lang = frame.lang;
    let chart = bar_chart(
        &tr(lang, "ct_chart_visits"),
        &view
            .officials
            .iter()
            .map(|o| (o.name.clone(), o.figures.visits))
            .collect::<Vec<_>>(),
    );
    let officials: Vec<Value> = view
        .officials
        .iter()
        .map(|o| context! {
            name => o.name.clone(), post => o.post.clone(), points => o.points.len(),
            visits => o.figures.visits, demands => o.figures.demands,
            answered => pct(o.figures.answered_share()), hours => hours(o.figures.median_hours_to_answer),
        })
        .collect();
    let points: Vec<Value> = view
        .points
        .iter()
        .map(|l| context! {
            id => l.point.id, name => l.point.name.clone(), priority => format!("{:.1}", l.priority),
            high => l.priority >= lianxin_domain::contact::HIGH_PRIORITY,
            officials => l.officials.iter().map(|o| o.1.clone()).collect::<Vec<_>>().join("、"),
            visits => l.figures.visits, expected => l.visits_expected, demands => l.figures.demands,
            answered => pct(l.figures.answered_share()), hours => hours(l.figures.median_hours_to_answer),
            rematch => l.rematch_open,
        })
        .collect();
    let warnings: Vec<Value> = view
        .warnings
        .iter()
        .map(|w| {
            context! {
                code => w.code.clone(), text => tr(lang, &format!("ct_warn_{}", w.code)),
                point_id => w.point_id, point => w.point_name.clone(),
            detail => if w.code == "visits_behind" {
                tr(lang, "ct_detail_visits").replacen("{}", &w.visits.to_string(), 1).replacen("{}", &w.visits_expected.to_string(), 1)
            } else {
                format!("{} {:.1}", tr(lang, "ct_priority"), w.priority)
            },
            }
        })
        .collect();
    let rules = state.store.governance_rules().await.ok();
    let headline = tr(lang, "ct_headline")
        .replacen("{}", &view.officials.len().to_string(), 1)
        .replacen("{}", &view.totals.visits.to_string(), 1)
        .replacen("{}", &view.totals.demands.to_string(), 1);
    let status = problem.as_ref().map_or(StatusCode::OK, |p| p.status);
    let mut resp = frame.render(
        state,
        "governance.html",
        context! {
            year => view.year,
            headline, chart, officials, points, warnings,
            totals => context! {
                officials => view.officials.len(), visits => view.totals.visits,
                demands => view.totals.demands, answered => pct(view.totals.answered_share()),
                hours => hours(view.totals.median_hours_to_answer),
            },
            open_rematches => view.open_rematches,
            rules => rules.map(Value::from_serialize),
            manage => c.role().allows(Permission::ManageGovernance),
            problem => problem.as_ref().map(problem_value),
        },
    );
    *resp.status_mut() = status;
    resp
}

async fn officials_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<YearQuery>, ApiError>,
) -> Response {
    let (_, frame, view) = match view_for(&state, &headers, q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let lang = frame.lang;
    let header: Vec<String> = [
        "ct_col_official",
        "ct_col_post",
        "ct_col_points",
        "ct_col_visits",
        "ct_col_demands",
        "ct_col_answered",
        "ct_col_hours",
    ]
    .iter()
    .map(|k| tr(lang, k))
    .collect();
    let rows: Vec<Vec<String>> = view
        .officials
        .iter()
        .map(|o| {
            vec![
                o.name.clone(),
                o.post.clone().unwrap_or_default(),
                o.points.len().to_string(),
                o.figures.visits.to_string(),
                o.figures.demands.to_string(),
                pct(o.figures.answered_share()),
                hours(o.figures.median_hours_to_answer),
            ]
        })
        .collect();
    export::download(
        export::csv(&header, &rows),
        "text/csv; charset=utf-8",
        &format!("officials-{}.csv", view.year),
    )
}

async fn points_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<QueryParams<YearQuery>, ApiError>,
) -> Response {
    let (_, frame, view) = match view_for(&state, &headers, q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let lang = frame.lang;
    let header: Vec<String> = [
        "ct_col_point",
        "ct_col_priority",
        "ct_col_linked",
        "ct_col_visits",
        "ct_col_expected",
        "ct_col_demands",
        "ct_col_answered",
        "ct_col_hours",
    ]
    .iter()
    .map(|k| tr(lang, k))
    .collect();
    let rows: Vec<Vec<String>> = view
        .points
        .iter()
        .map(|l| {
            vec![
                l.point.name.clone(),
                format!("{:.1}", l.priority),
                l.officials
                    .iter()
                    .map(|o| o.1.clone())
                    .collect::<Vec<_>>()
                    .join("、"),
                l.figures.visits.to_string(),
                l.visits_expected.to_string(),
                l.figures.demands.to_string(),
                pct(l.figures.answered_share()),
                hours(l.figures.median_hours_to_answer),
            ]
        })
        .collect();
    export::download(
        export::csv(&header, &rows),
        "text/csv; charset=utf-8",
        &format!("points-{}.csv", view.year),
    )
}

async fn set_rules(State(state): State<AppState>, req: Request) -> Response {
    let (c, frame, form) =
        match posted(&state, req, "/governance", Permission::ManageGovernance).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let num = |k: &str| -> Result<f64, ApiError> {
        field(&form, k)
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| ApiError::invalid(k, "a number"))
    };
    let int = |k: &str| -> Result<i64, ApiError> {
        field(&form, k)
            .trim()
            .parse::<i64>()
            .map_err(|_| ApiError::invalid(k, "a whole number"))
    };
    let result: Result<(), ApiError> = async {
        let body = crate::api::contact::RulesBody {
            weight_task_load: num("weight_task_load")?,
            weight_weakness: num("weight_weakness")?,
            weight_complexity: num("weight_complexity")?,
            min_visits_per_year: int("min_visits_per_year")?,
            max_points_per_official: int("max_points_per_official")?,
            tier_advanced: num("tier_advanced")?,
            tier_lagging: num("tier_lagging")?,
        };
        state
            .store
            .set_governance_rules(&c.actor(), &body.rules())
            .await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => see_other("/governance#rules"),
        Err(e) => {
            let problem = match from_api(frame.lang, e) {
                Ok(p) => p,
                Err(e) => return page_error(&state, &frame, e.status),
            };
            match state
                .store
                .district_view(&c.account.scope, today_year(), today())
                .await
            {
                Ok(view) => governance_page(&state, &frame, &c, view, Some(problem)).await,
                Err(e) => page_error(&state, &frame, ApiError::from(e).status),
            }
        }
    }
}

// ----- re-matches -----

async fn rematches(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (c, frame) =
        match caller_with(&state, &headers, "/rematches", Permission::ManageGovernance).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    rematches_page(&state, &frame, &c, None).await
}

async fn rematches_page(
    state: &AppState,
    frame: &Frame,
    c: &Caller,
    problem: Option<Problem>,
) -> Response {
    let lang = frame.lang;
    let r: Result<Response, ApiError> = async {
        let weights = state.store.governance_rules().await?.weights;
        let list: Vec<Value> = state
            .store
            .rematches(&c.account.scope, &[])
            .await?
            .iter()
            .map(|r| context! {
                id => r.id, point => r.point_name.clone(), predecessor => r.predecessor_name.clone(),
                post => r.post.clone(), ended_on => r.ended_on.to_string(),
                status => rematch_label(lang, r.status), status_code => r.status.as_str(),
                successor => r.successor_name.clone(),
                priority => format!("{:.1}", lianxin_domain::contact::priority(r.indicators, weights).score),
                high => lianxin_domain::contact::priority(r.indicators, weights).score >= lianxin_domain::contact::HIGH_PRIORITY,
            })
            .collect();
        // Officials who hold a post and a point now: whose change of post can be recorded.
        let view = state.store.district_view(&c.account.scope, today_year(), today()).await?;
        let officials: Vec<Value> = view
            .officials
            .iter()
            .filter(|o| view.points.iter().any(|p| p.officials.iter().any(|(id, _)| *id == o.person_id)))
            .map(|o| context! { id => o.person_id, name => o.name.clone(), post => o.post.clone() })
            .collect();
        let status = problem.as_ref().map_or(StatusCode::OK, |p| p.status);
        let mut resp = frame.render(
            state,
            "rematches.html",
            context! { list, officials, today => today().to_string(), problem => problem.as_ref().map(problem_value) },
        );
        *resp.status_mut() = status;
        Ok(resp)
    }
    .await;
    unwrap_page(state, frame, r)
}

/// Records that an official's post ended: the store ends the post relation, which
/// ends their links and opens the re-matches.
async fn post_change(State(state): State<AppState>, req: Request) -> Response {
    let (c, frame, form) =
        match posted(&state, req, "/rematches", Permission::ManageGovernance).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let result: Result<(), ApiError> = async {
        let person: i64 = field(&form, "person_id")
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid("person_id", "choose an official"))?;
        let on = parse_day("on", field(&form, "on"))?;
        let posts = state.store.relations_of_person(person).await?;
        let post = posts
            .iter()
            .find(|r| {
                r.kind == lianxin_domain::relation::RelationKind::HoldsPost && r.valid_to.is_none()
            })
            .ok_or_else(|| ApiError::invalid("person_id", "this official holds no open post"))?;
        state
            .store
            .end_relation(&c.actor(), &c.account.scope, post.id, on)
            .await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => see_other("/rematches"),
        Err(e) => match from_api(frame.lang, e) {
            Ok(p) => rematches_page(&state, &frame, &c, Some(p)).await,
            Err(e) => page_error(&state, &frame, e.status),
        },
    }
}

async fn rematch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (c, frame) =
        match caller_with(&state, &headers, "/rematches", Permission::ManageGovernance).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let Ok(id) = id.parse::<i64>() else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    rematch_page(&state, &frame, &c, id, None).await
}

async fn rematch_page(
    state: &AppState,
    frame: &Frame,
    c: &Caller,
    id: i64,
    problem: Option<Problem>,
) -> Response {
    let lang = frame.lang;
    let r: Result<Response, ApiError> = async {
        let r = state.store.rematch(id, &c.account.scope).await?;
        let candidates: Vec<Value> = if r.status == RematchStatus::Open {
            state
                .store
                .successor_candidates(id, &c.account.scope, today())
                .await?
                .iter()
                .map(|k| context! {
                    id => k.person_id, name => k.name.clone(), post => k.post.clone(),
                    load => format!("{:.1}", k.load), same_post => k.post == r.post,
                })
                .collect()
        } else {
            Vec::new()
        };
        let items: Vec<Value> = r
            .items
            .iter()
            .map(|i| context! { kind => tr(lang, &format!("ct_item_{}", i.kind)), id => i.item_id, summary => i.summary.clone(), is_demand => i.kind == "demand" })
            .collect();
        let status = problem.as_ref().map_or(StatusCode::OK, |p| p.status);
        let mut resp = frame.render(
            state,
            "rematch.html",
            context! {
                r => Value::from_serialize(&r),
                acknowledged_at => r.acknowledged_at.map(local_time),
                status => rematch_label(lang, r.status),
                candidates, items,
                problem => problem.as_ref().map(problem_value),
            },
        );
        *resp.status_mut() = status;
        Ok(resp)
    }
    .await;
    unwrap_page(state, frame, r)
}

async fn confirm(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (c, frame, form) =
        match posted(&state, req, "/rematches", Permission::ManageGovernance).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let Ok(id) = id.parse::<i64>() else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    let result: Result<(), ApiError> = async {
        let successor: i64 = field(&form, "successor_id")
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid("successor_id", "choose a successor"))?;
        state
            .store
            .confirm_rematch(&c.actor(), &c.account.scope, id, successor, today())
            .await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => see_other(&format!("/rematches/{id}")),
        Err(e) => match from_api(frame.lang, e) {
            Ok(p) => rematch_page(&state, &frame, &c, id, Some(p)).await,
            Err(e) => page_error(&state, &frame, e.status),
        },
    }
}

/// The successor takes over; back to their points, where the point now shows.
async fn acknowledge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (c, frame, _) = match posted(&state, req, "/points", Permission::ReadGovernance).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (Ok(id), Some(me)) = (id.parse::<i64>(), c.account.person_id) else {
        return page_error(&state, &frame, StatusCode::NOT_FOUND);
    };
    match state
        .store
        .acknowledge_rematch(&c.actor(), me, id, today())
        .await
    {
        Ok(_) => see_other("/points?acknowledged=1"),
        Err(e) => match from_store(frame.lang, e) {
            Ok(_) => page_error(&state, &frame, StatusCode::CONFLICT),
            Err(e) => page_error(&state, &frame, e.status),
        },
    }
}
