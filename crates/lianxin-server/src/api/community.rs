//! Community endpoints (双进双服务, M15): households in grids, registrations of
//! members and organisations, the needs list and its claims, service records and the
//! quarterly report to employers, and household-visit coverage.
//!
//! Reads need `ReadGovernance`, writes `ManageCommunity`; everything is filtered by the
//! caller's place scope (`lianxin_store::grids`). A refusal by one of the community's
//! rules is a 422 `invalid_field` whose `reason` names the rule —
//! `household_in_two_grids`, `overlapping_registration`, `not_registered` … — so
//! clients can tell them apart; see docs/api.md.

use super::{parse_i64, parse_limit};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiCaller, Id, JsonBody, QueryParams};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use lianxin_domain::community::{parse_skills, parse_text, NeedStatus, Quarter, RegistrationKind};
use lianxin_domain::relation::parse_day;
use lianxin_domain::role::Permission;
use lianxin_domain::ValidationError;
use lianxin_store::grids::{HouseholdRow, NewNeed, NewRegistration};
use lianxin_store::StoreError;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/grid-households", post(assign_household))
        .route("/grid-households/{id}/end", post(end_assignment))
        .route("/grids/{id}/households", get(grid_households))
        .route("/registrations", get(list_registrations).post(register))
        .route("/registrations/{id}/end", post(end_registration))
        .route("/needs", get(list_needs).post(post_need))
        .route("/needs/{id}", get(get_need))
        .route("/needs/{id}/claim", post(claim_need))
        .route("/needs/{id}/release", post(release_need))
        .route("/needs/{id}/complete", post(complete_need))
        .route("/people/{id}/service-record", get(service_record))
        .route("/orgs/{id}/service-report", get(service_report))
        .route("/coverage", get(coverage))
}

/// A store error as the API answers it: a broken community rule is a 422 whose
/// `reason` names the rule (`household_in_two_grids` …), like every other rule.
pub(crate) fn api_error(e: StoreError) -> ApiError {
    e.into()
}

fn created(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

fn today() -> NaiveDate {
    super::registry_today()
}

/// An optional day in a body (422) — today when absent.
fn body_day(field: &str, raw: Option<&str>) -> ApiResult<NaiveDate> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Ok(parse_day(field, s)?),
        None => Ok(today()),
    }
}

/// An optional day in a query string (400).
fn query_day(field: &str, raw: Option<&str>) -> ApiResult<Option<NaiveDate>> {
    raw.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            parse_day(field, s).map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.message).with_field(field)
            })
        })
        .transpose()
}

fn query_error(field: &str, e: ValidationError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.message).with_field(field)
}

/// Skills as a list (`["法律咨询"]`) or as text (`"法律咨询，水电维修"`).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum SkillsIn {
    List(Vec<String>),
    Text(String),
}

fn skills(s: Option<&SkillsIn>) -> ApiResult<Vec<String>> {
    let text = match s {
        None => String::new(),
        Some(SkillsIn::Text(t)) => t.clone(),
        Some(SkillsIn::List(l)) => l.join(","),
    };
    Ok(parse_skills(&text)?)
}

// ----- households in grids -----

#[derive(Deserialize)]
pub struct Assign {
    household_code: String,
    grid_code: String,
    valid_from: Option<String>,
}

pub async fn assign_household(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(b): JsonBody<Assign>,
) -> ApiResult<Response> {
    c.require(Permission::ManageCommunity)?;
    let row = HouseholdRow {
        household_code: b.household_code,
        grid_code: b.grid_code,
        valid_from: body_day("valid_from", b.valid_from.as_deref())?,
    };
    let a = state
        .store
        .assign_household(&c.actor(), &c.account.scope, &row)
        .await
        .map_err(api_error)?;
    Ok(created(json!({ "assignment": a })))
}

#[derive(Deserialize)]
pub struct End {
    on: String,
}

pub async fn end_assignment(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(b): JsonBody<End>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageCommunity)?;
    let on = parse_day("on", &b.on)?;
    let a = state
        .store
        .end_assignment(&c.actor(), &c.account.scope, id, on)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "assignment": a })))
}

#[derive(Deserialize)]
pub struct OnQuery {
    on: Option<String>,
}

pub async fn grid_households(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    QueryParams(q): QueryParams<OnQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let on = query_day("on", q.on.as_deref())?.unwrap_or_else(today);
    let households = state
        .store
        .grid_households(&c.account.scope, id, on)
        .await
        .map_err(api_error)?;
    Ok(Json(
        json!({ "grid_id": id, "on": on, "count": households.len(), "households": households }),
    ))
}

// ----- registrations -----

#[derive(Deserialize)]
pub struct RegistrationQuery {
    community_id: Option<String>,
    on: Option<String>,
    kind: Option<String>,
    skill: Option<String>,
}

pub async fn list_registrations(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<RegistrationQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let community = parse_i64("community_id", q.community_id.as_deref())?.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "name the community: community_id",
        )
        .with_field("community_id")
    })?;
    let on = query_day("on", q.on.as_deref())?.unwrap_or_else(today);
    let kind = q
        .kind
        .as_deref()
        .filter(|k| !k.trim().is_empty())
        .map(|k| RegistrationKind::parse(k).map_err(|e| query_error("kind", e)))
        .transpose()?;
    let skill = match q.skill.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => {
            let parsed = parse_skills(s).map_err(|e| query_error("skill", e))?;
            if parsed.len() != 1 {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    "filter by one skill at a time",
                )
                .with_field("skill"));
            }
            parsed.into_iter().next()
        }
        None => None,
    };
    let regs = state
        .store
        .registrations(&c.account.scope, community, on, kind, skill.as_deref())
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "on": on, "registrations": regs })))
}

#[derive(Deserialize)]
pub struct Register {
    kind: String,
    person_id: Option<i64>,
    org_code: Option<String>,
    community_code: String,
    grid_code: Option<String>,
    employer_code: Option<String>,
    skills: Option<SkillsIn>,
    valid_from: Option<String>,
}

pub async fn register(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(b): JsonBody<Register>,
) -> ApiResult<Response> {
    c.require(Permission::ManageCommunity)?;
    let d = NewRegistration {
        kind: RegistrationKind::parse(&b.kind)?,
        person_id: b.person_id,
        org_code: b.org_code,
        community_code: b.community_code,
        grid_code: b.grid_code,
        employer_code: b.employer_code,
        skills: skills(b.skills.as_ref())?,
        valid_from: body_day("valid_from", b.valid_from.as_deref())?,
    };
    let r = state
        .store
        .register(&c.actor(), &c.account.scope, &d)
        .await
        .map_err(api_error)?;
    Ok(created(json!({ "registration": r })))
}

pub async fn end_registration(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(b): JsonBody<End>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageCommunity)?;
    let on = parse_day("on", &b.on)?;
    let r = state
        .store
        .end_registration(&c.actor(), &c.account.scope, id, on)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "registration": r })))
}

// ----- needs -----

#[derive(Deserialize)]
pub struct NeedQuery {
    community_id: Option<String>,
    status: Option<String>,
    limit: Option<String>,
}

pub async fn list_needs(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<NeedQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let community = parse_i64("community_id", q.community_id.as_deref())?;
    if let Some(id) = community {
        state.store.place(id, &c.account.scope).await?;
    }
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|s| NeedStatus::parse(s).map_err(|e| query_error("status", e)))
        .transpose()?;
    let limit = parse_limit(q.limit.as_deref(), 100, 500)?;
    let needs = state
        .store
        .needs(&c.account.scope, community, status, limit)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "needs": needs })))
}

#[derive(Deserialize)]
pub struct PostNeed {
    community_code: String,
    grid_code: Option<String>,
    title: String,
    detail: Option<String>,
    skills: Option<SkillsIn>,
}

pub async fn post_need(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(b): JsonBody<PostNeed>,
) -> ApiResult<Response> {
    c.require(Permission::ManageCommunity)?;
    let d = NewNeed {
        community_code: b.community_code,
        grid_code: b.grid_code,
        title: parse_text("title", &b.title, 100, true)?,
        detail: parse_text("detail", b.detail.as_deref().unwrap_or(""), 2000, false)?,
        skills: skills(b.skills.as_ref())?,
    };
    let n = state
        .store
        .post_need(&c.actor(), &c.account.scope, &d)
        .await
        .map_err(api_error)?;
    Ok(created(json!({ "need": n })))
}

pub async fn get_need(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let n = state
        .store
        .need(&c.account.scope, id)
        .await
        .map_err(api_error)?;
    // A completed need may earn volunteer hours (`api::points`).
    state.rewards.kick();
    Ok(Json(json!({ "need": n })))
}

#[derive(Deserialize)]
pub struct Claim {
    person_id: Option<i64>,
}

/// A registered member claims a need: the one named, or the caller's own person.
pub async fn claim_need(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(b): JsonBody<Claim>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageCommunity)?;
    let person = b.person_id.or(c.account.person_id).ok_or_else(|| {
        ApiError::invalid(
            "person_id",
            "name the member who claims the need: person_id",
        )
    })?;
    let n = state
        .store
        .claim_need(&c.actor(), &c.account.scope, id, person, today())
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "need": n })))
}

pub async fn release_need(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageCommunity)?;
    let n = state
        .store
        .release_need(&c.actor(), &c.account.scope, id)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "need": n })))
}

#[derive(Deserialize)]
pub struct Complete {
    hours: f64,
    outcome: String,
    done_on: Option<String>,
}

pub async fn complete_need(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(b): JsonBody<Complete>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageCommunity)?;
    let done_on = body_day("done_on", b.done_on.as_deref())?;
    let n = state
        .store
        .complete_need(
            &c.actor(),
            &c.account.scope,
            id,
            b.hours,
            &b.outcome,
            done_on,
            today(),
        )
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "need": n })))
}

// ----- service records -----

pub async fn service_record(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let r = state
        .store
        .service_record(&c.account.scope, id)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "service_record": r })))
}

#[derive(Deserialize)]
pub struct QuarterQuery {
    quarter: Option<String>,
}

/// The quarter asked for (400 if malformed), or the current one.
pub(crate) fn quarter_param(raw: Option<&str>) -> ApiResult<Quarter> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Quarter::parse(s).map_err(|e| query_error("quarter", e)),
        None => Ok(Quarter::containing(today())),
    }
}

pub async fn service_report(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    QueryParams(q): QueryParams<QuarterQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let quarter = quarter_param(q.quarter.as_deref())?;
    let r = state
        .store
        .employer_report(&c.account.scope, id, quarter)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "report": r })))
}

// ----- coverage -----

#[derive(Deserialize)]
pub struct CoverageQuery {
    from: Option<String>,
    to: Option<String>,
    place_id: Option<String>,
}

/// `[from, to]`: by default the current quarter up to today.
pub(crate) fn period(from: Option<&str>, to: Option<&str>) -> ApiResult<(NaiveDate, NaiveDate)> {
    let to = query_day("to", to)?.unwrap_or_else(today);
    let from = query_day("from", from)?.unwrap_or_else(|| Quarter::containing(to).first_day());
    lianxin_domain::community::check_period(from, to).map_err(|e| query_error("to", e))?;
    Ok((from, to))
}

pub async fn coverage(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<CoverageQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let (from, to) = period(q.from.as_deref(), q.to.as_deref())?;
    let under = parse_i64("place_id", q.place_id.as_deref())?;
    let r = state
        .store
        .coverage(&c.account.scope, under, from, to)
        .await
        .map_err(api_error)?;
    Ok(Json(json!({ "coverage": r })))
}
