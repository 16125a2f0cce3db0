//! Organisation tiers (抓两头带中间): the tier board with its evidence, indicators
//! (set one organisation's, or import a CSV file), improvement plans and their
//! actions, and model designations.
//!
//! Reads need `ReadGovernance` and see the caller's data scope; writes need
//! `ManageGovernance` (the organisation department). Validation is the domain's
//! (`lianxin_domain::tiers`); the store checks scope and party kind.

use super::parse_i64;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiCaller, Id, JsonBody, QueryParams};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{Datelike, NaiveDate};
use lianxin_domain::calendar::local_day;
use lianxin_domain::relation::parse_day;
use lianxin_domain::role::Permission;
use lianxin_domain::tiers::{indicator_set, parse_indicator_csv, parse_year, RawIndicator};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tiers", get(board))
        .route("/tiers/import", post(import))
        .route("/tiers/designations", get(designations))
        .route("/tiers/orgs/{id}", get(org))
        .route("/tiers/orgs/{id}/indicators", put(set_indicators))
        .route("/tiers/orgs/{id}/plans", post(create_plan))
        .route("/tiers/orgs/{id}/designations", post(award))
        .route("/tiers/plans/{id}", get(plan))
        .route("/tiers/plans/{id}/actions", post(add_action))
        .route("/tiers/actions/{id}/done", post(complete_action))
}

/// Today in Asia/Shanghai, by the server's clock (which tests may move).
fn today(state: &AppState) -> NaiveDate {
    local_day(state.desk.now())
}

/// The `year` query parameter: this year when absent.
fn year_param(state: &AppState, raw: Option<&str>) -> ApiResult<i64> {
    match parse_i64("year", raw)? {
        None => Ok(i64::from(today(state).year())),
        Some(y) => parse_year("year", y).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.message).with_field("year")
        }),
    }
}

fn created(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

#[derive(Deserialize)]
pub struct YearQuery {
    year: Option<String>,
}

async fn board(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<YearQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let year = year_param(&state, q.year.as_deref())?;
    let board = state
        .store
        .tier_board(&c.account.scope, year, today(&state))
        .await?;
    Ok(Json(json!({ "board": board })))
}

async fn org(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    QueryParams(q): QueryParams<YearQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let year = year_param(&state, q.year.as_deref())?;
    let detail = state
        .store
        .org_tier(&c.account.scope, id, year, today(&state))
        .await?;
    Ok(Json(json!(detail)))
}

#[derive(Deserialize)]
pub struct SetIndicators {
    year: i64,
    indicators: Vec<RawIndicator>,
}

async fn set_indicators(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(body): JsonBody<SetIndicators>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageGovernance)?;
    let year = parse_year("year", body.year)?;
    let set = indicator_set(&body.indicators)?;
    let tier = state
        .store
        .set_indicators(&c.actor(), &c.account.scope, id, year, &set, today(&state))
        .await?;
    Ok(Json(json!({ "tier": tier })))
}

#[derive(Deserialize)]
pub struct Import {
    csv: String,
}

/// An import refusal: the row number leads the message; the field is the column.
fn row_error(row: usize, e: ApiError) -> ApiError {
    ApiError {
        message: format!("row {row}: {}", e.message),
        ..e
    }
}

async fn import(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<Import>,
) -> ApiResult<Response> {
    c.require(Permission::ManageGovernance)?;
    let rows =
        parse_indicator_csv(&body.csv).map_err(|e| row_error(e.row, ApiError::from(e.error)))?;
    let n = state
        .store
        .import_indicators(&c.actor(), &c.account.scope, &rows, |_| {})
        .await
        .map_err(|e| row_error(e.row, ApiError::from(e.error)))?;
    Ok(created(json!({ "imported": n })))
}

#[derive(Deserialize)]
pub struct NewPlan {
    year: i64,
    title: String,
}

async fn create_plan(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(body): JsonBody<NewPlan>,
) -> ApiResult<Response> {
    c.require(Permission::ManageGovernance)?;
    let plan = state
        .store
        .create_plan(&c.actor(), &c.account.scope, id, body.year, &body.title)
        .await?;
    Ok(created(json!({ "plan": plan })))
}

async fn plan(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let plan = state
        .store
        .plan(&c.account.scope, id, today(&state))
        .await?;
    Ok(Json(json!({ "plan": plan })))
}

#[derive(Deserialize)]
pub struct NewAction {
    title: String,
    due_on: String,
}

async fn add_action(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(body): JsonBody<NewAction>,
) -> ApiResult<Response> {
    c.require(Permission::ManageGovernance)?;
    let due_on = parse_day("due_on", &body.due_on)?;
    let action = state
        .store
        .add_plan_action(
            &c.actor(),
            &c.account.scope,
            id,
            &body.title,
            due_on,
            today(&state),
        )
        .await?;
    Ok(created(json!({ "action": action })))
}

#[derive(Deserialize)]
pub struct Done {
    note: String,
    #[serde(default)]
    done_on: Option<String>,
}

async fn complete_action(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(body): JsonBody<Done>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageGovernance)?;
    let today = today(&state);
    let done_on = match body.done_on.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(d) => parse_day("done_on", d)?,
        None => today,
    };
    let action = state
        .store
        .complete_action(&c.actor(), &c.account.scope, id, done_on, &body.note, today)
        .await?;
    Ok(Json(json!({ "action": action })))
}

#[derive(Deserialize)]
pub struct NewDesignation {
    title: String,
    year: i64,
}

async fn award(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(body): JsonBody<NewDesignation>,
) -> ApiResult<Response> {
    c.require(Permission::ManageGovernance)?;
    let d = state
        .store
        .award_designation(&c.actor(), &c.account.scope, id, &body.title, body.year)
        .await?;
    Ok(created(json!({ "designation": d })))
}

#[derive(Deserialize)]
pub struct DesignationQuery {
    year: Option<String>,
}

async fn designations(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<DesignationQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    // Without a year: every year.
    let year = match q.year.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(y) => Some(year_param(&state, Some(y))?),
        None => None,
    };
    let list = state.store.designations(&c.account.scope, year).await?;
    Ok(Json(json!({ "designations": list })))
}
