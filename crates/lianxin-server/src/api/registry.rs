//! Registry endpoints: places, organisations, people, relations, statistics.

use super::{parse_i64, parse_limit};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiCaller, Id, JsonBody, QueryParams};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lianxin_domain::draft::{
    OrgDraft, PersonDraft, PlaceDraft, RawOrg, RawPerson, RawPlace, RawRelation, RelationDraft,
};
use lianxin_domain::org::OrgKind;
use lianxin_domain::person::PhoneNumber;
use lianxin_domain::relation::parse_day;
use lianxin_domain::role::Permission;
use serde::Deserialize;
use serde_json::{json, Value};

fn created(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

pub async fn stats(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRegistry)?;
    Ok(Json(
        json!({ "stats": state.store.registry_stats(&c.account.scope).await? }),
    ))
}

#[derive(Deserialize)]
pub struct PlaceQuery {
    parent_id: Option<String>,
    q: Option<String>,
    limit: Option<String>,
}

pub async fn list_places(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<PlaceQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRegistry)?;
    let scope = &c.account.scope;
    // Validated even when unused (a tree level is never paged), so a bad value is an error.
    let limit = parse_limit(q.limit.as_deref(), 50, 500)?;
    if let Some(text) = q.q.as_deref().filter(|s| !s.trim().is_empty()) {
        return Ok(Json(
            json!({ "places": state.store.search_places(text, scope, limit).await? }),
        ));
    }
    let parent = parse_i64("parent_id", q.parent_id.as_deref())?;
    if let Some(p) = parent {
        state.store.place(p, scope).await?;
    }
    let children = state.store.place_children(parent, scope).await?;
    let places: Vec<Value> = children
        .into_iter()
        .map(|(p, n)| {
            let mut v = serde_json::to_value(p).unwrap_or_default();
            v["children"] = json!(n);
            v
        })
        .collect();
    Ok(Json(json!({ "places": places })))
}

pub async fn create_place(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(raw): JsonBody<RawPlace>,
) -> ApiResult<Response> {
    c.require(Permission::WriteRegistry)?;
    let draft = PlaceDraft::parse(&raw)?;
    let place = state
        .store
        .create_place(&c.actor(), &c.account.scope, &draft)
        .await?;
    Ok(created(json!({ "place": place })))
}

pub async fn get_place(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRegistry)?;
    let place = state.store.place(id, &c.account.scope).await?;
    let ancestors = state.store.place_ancestors(&place).await?;
    Ok(Json(json!({ "place": place, "ancestors": ancestors })))
}

#[derive(Deserialize)]
pub struct Rename {
    name: String,
}

pub async fn rename_place(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(body): JsonBody<Rename>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::WriteRegistry)?;
    let place = state
        .store
        .rename_place(&c.actor(), &c.account.scope, id, &body.name)
        .await?;
    Ok(Json(json!({ "place": place })))
}

#[derive(Deserialize)]
pub struct OnQuery {
    on: Option<String>,
}

/// Today in Asia/Shanghai (UTC+8, no daylight saving since 1991).
pub fn today() -> chrono::NaiveDate {
    lianxin_domain::calendar::local_day(chrono::Utc::now())
}

pub async fn responsible(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    QueryParams(q): QueryParams<OnQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRegistry)?;
    let place = state.store.place(id, &c.account.scope).await?;
    let on = match q.on.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(d) => parse_day("on", d).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.message).with_field("on")
        })?,
        None => today(),
    };
    let who = state.store.responsible_for(place.id, on).await?;
    Ok(Json(
        json!({ "place_id": place.id, "on": on, "responsible": who }),
    ))
}

#[derive(Deserialize)]
pub struct OrgQuery {
    q: Option<String>,
    kind: Option<String>,
    limit: Option<String>,
}

pub async fn list_orgs(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<OrgQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRegistry)?;
    let kind = match q.kind.as_deref().filter(|s| !s.is_empty()) {
        Some(k) => Some(OrgKind::parse(k).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.message).with_field("kind")
        })?),
        None => None,
    };
    let limit = parse_limit(q.limit.as_deref(), 50, 500)?;
    let orgs = state
        .store
        .search_orgs(q.q.as_deref().unwrap_or(""), kind, &c.account.scope, limit)
        .await?;
    Ok(Json(json!({ "orgs": orgs })))
}

pub async fn create_org(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(raw): JsonBody<RawOrg>,
) -> ApiResult<Response> {
    c.require(Permission::WriteRegistry)?;
    let draft = OrgDraft::parse(&raw)?;
    let org = state
        .store
        .create_org(&c.actor(), &c.account.scope, &draft)
        .await?;
    Ok(created(json!({ "org": org })))
}

pub async fn get_org(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRegistry)?;
    let org = state.store.org(id, &c.account.scope).await?;
    let serves = state.store.org_places(org.id).await?;
    let children = state.store.org_children(org.id, &c.account.scope).await?;
    let people = state.store.org_relations_on(org.id, today()).await?;
    Ok(Json(
        json!({ "org": org, "serves": serves, "children": children, "relations": people }),
    ))
}

#[derive(Deserialize)]
pub struct PeopleQuery {
    q: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

pub async fn list_people(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<PeopleQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRegistry)?;
    let text = q.q.as_deref().unwrap_or("");
    if PhoneNumber::parse(text).is_ok() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "phone numbers must not travel in URLs; POST them to /api/v1/people/lookup",
        )
        .with_field("q"));
    }
    let limit = parse_limit(q.limit.as_deref(), 50, 500)?;
    let offset = parse_i64("offset", q.offset.as_deref())?
        .unwrap_or(0)
        .max(0);
    let people = state
        .store
        .search_people(text, None, &c.account.scope, limit, offset)
        .await?;
    Ok(Json(json!({ "people": people })))
}

#[derive(Deserialize)]
pub struct Lookup {
    phone: String,
}

/// Finds people by phone number without the number ever being stored or logged:
/// the number is reduced to its keyed hash and compared with the stored hashes.
pub async fn lookup_person(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<Lookup>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRegistry)?;
    let phone = PhoneNumber::parse(&body.phone)?;
    let hash = state.pii.keyed_hash("phone", phone.expose());
    let people = state
        .store
        .search_people("", Some(&hash), &c.account.scope, 50, 0)
        .await?;
    Ok(Json(json!({ "people": people })))
}

pub async fn create_person(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(raw): JsonBody<RawPerson>,
) -> ApiResult<Response> {
    c.require(Permission::WriteRegistry)?;
    let draft = PersonDraft::parse(&raw, &state.pii)?;
    let person = state
        .store
        .create_person(&c.actor(), &c.account.scope, &draft)
        .await?;
    Ok(created(json!({ "person": person })))
}

pub async fn get_person(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRegistry)?;
    let person = state.store.person(id, &c.account.scope).await?;
    Ok(Json(json!({ "person": person })))
}

pub async fn person_relations(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRegistry)?;
    let person = state.store.person(id, &c.account.scope).await?;
    Ok(Json(
        json!({ "relations": state.store.relations_of_person(person.id).await? }),
    ))
}

pub async fn create_relation(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(raw): JsonBody<RawRelation>,
) -> ApiResult<Response> {
    c.require(Permission::WriteRegistry)?;
    let draft = RelationDraft::parse(&raw)?;
    let rel = state
        .store
        .create_relation(&c.actor(), &c.account.scope, id, &draft)
        .await?;
    Ok(created(json!({ "relation": rel })))
}

#[derive(Deserialize)]
pub struct EndRelation {
    on: String,
}

pub async fn end_relation(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(body): JsonBody<EndRelation>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::WriteRegistry)?;
    let on = parse_day("on", &body.on)?;
    let rel = state
        .store
        .end_relation(&c.actor(), &c.account.scope, id, on)
        .await?;
    Ok(Json(json!({ "relation": rel })))
}
