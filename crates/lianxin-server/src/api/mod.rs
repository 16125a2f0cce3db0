//! The JSON API under `/api/v1`.
//!
//! The OpenAPI document (`openapi.json`, checked in beside this file, plus one part per
//! area in `openapi/`) describes every route here and in the area modules; a test
//! compares the two so neither drifts. Reads are filtered by the
//! caller's data scope; writes also need the role's permission (and, for tokens,
//! the matching scope) and land on the audit trail.

mod community;
pub(crate) mod contact;
pub mod demands;
pub mod gate;
pub(crate) mod map;
pub mod points;
mod registry;
mod tiers;
pub use registry::today as registry_today;

use crate::auth::{self, TOKEN_SCOPES};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiCaller, Id, JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use lianxin_domain::pii::{random_token, PiiKey};
use lianxin_domain::role::Permission;
use lianxin_store::audit::Verification;
use serde::Deserialize;
use serde_json::{json, Value};

/// The checked-in OpenAPI document: the base file with each area's paths and schemas
/// merged in.
static OPENAPI: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mut doc: Value = serde_json::from_str(include_str!("openapi.json"))
        .expect("openapi.json is checked by the tests");
    for part in [
        include_str!("openapi/contact.json"),
        include_str!("openapi/community.json"),
        include_str!("openapi/tiers.json"),
        include_str!("openapi/gate.json"),
        include_str!("openapi/map.json"),
        include_str!("openapi/points.json"),
    ] {
        let part: Value =
            serde_json::from_str(part).expect("openapi parts are checked by the tests");
        if let (Some(from), Some(into)) = (part["paths"].as_object(), doc["paths"].as_object_mut())
        {
            into.extend(from.clone());
        }
        if let (Some(from), Some(into)) = (
            part["components"]["schemas"].as_object(),
            doc["components"]["schemas"].as_object_mut(),
        ) {
            into.extend(from.clone());
        }
    }
    doc.to_string()
});

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/me", get(me))
        .route("/stats", get(registry::stats))
        .route(
            "/places",
            get(registry::list_places).post(registry::create_place),
        )
        .route(
            "/places/{id}",
            get(registry::get_place).patch(registry::rename_place),
        )
        .route("/places/{id}/responsible", get(registry::responsible))
        .route("/orgs", get(registry::list_orgs).post(registry::create_org))
        .route("/orgs/{id}", get(registry::get_org))
        .route(
            "/people",
            get(registry::list_people).post(registry::create_person),
        )
        .route("/people/lookup", post(registry::lookup_person))
        .route("/people/{id}", get(registry::get_person))
        .route(
            "/people/{id}/relations",
            get(registry::person_relations).post(registry::create_relation),
        )
        .route("/relations/{id}/end", post(registry::end_relation))
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}/revoke", post(revoke_token))
        .route("/audit", get(audit_entries))
        .route("/audit/verify", get(audit_verify))
        .route(
            "/demands",
            get(demands::list)
                .post(demands::submit)
                .layer(DefaultBodyLimit::max(demands::SUBMIT_BODY_LIMIT)),
        )
        .route("/demands/{id}", get(demands::get))
        .route("/demands/{id}/actions", post(demands::act))
        .route("/demands/{id}/rating", post(demands::rate))
        .route(
            "/demands/{id}/reporter-phone",
            post(demands::reporter_phone),
        )
        .route("/demands/{id}/photos/{photo}", get(demands::photo))
        .route("/track/{token}", get(demands::track))
        .route("/track/{token}/rating", post(demands::track_rate))
        .route("/track/{token}/stream", get(demands::track_stream))
        .route("/rates", get(demands::rates))
        .route("/notices", get(demands::notices))
        .route(
            "/categories",
            get(demands::categories).put(demands::put_category),
        )
        .route(
            "/routing-rules",
            get(demands::routing_rules).post(demands::create_routing_rule),
        )
        .route("/routing-rules/{id}", delete(demands::delete_routing_rule))
        .route(
            "/time-limits",
            get(demands::time_limits).put(demands::put_time_limit),
        )
        .route("/calendar", get(demands::calendar_years))
        .route("/calendar/{year}", put(demands::put_calendar_year))
        .merge(contact::routes())
        .merge(community::routes())
        .merge(tiers::routes())
        .merge(gate::routes())
        .merge(map::routes())
        .merge(points::routes())
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI.as_str(),
    )
        .into_response()
}

async fn me(State(state): State<AppState>, ApiCaller(c): ApiCaller) -> Json<Value> {
    Json(json!({
        "account": c.account,
        "csrf_token": c.csrf_token(&state.pii),
        "via": match c.credential { auth::Credential::Session { .. } => "session", auth::Credential::Token { .. } => "token" },
    }))
}

#[derive(Deserialize)]
struct NewToken {
    account_id: i64,
    name: String,
    scopes: Vec<String>,
    #[serde(default)]
    expires_at: Option<String>,
}

async fn create_token(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<NewToken>,
) -> ApiResult<Response> {
    c.require(Permission::ManageAccounts)?;
    let (token, t) = issue_token(
        &state.store,
        &c.actor(),
        &body.name,
        body.account_id,
        &body.scopes,
        body.expires_at.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "api_token": t })),
    )
        .into_response())
}

/// Validates and stores a new API token; returns the secret, shown this once and
/// never stored, and the record.
pub async fn issue_token(
    store: &lianxin_store::Store,
    actor: &lianxin_store::audit::Actor,
    name: &str,
    account_id: i64,
    scopes: &[String],
    expires_at: Option<&str>,
) -> ApiResult<(String, lianxin_store::accounts::ApiToken)> {
    if name.trim().is_empty() || name.chars().count() > 80 {
        return Err(ApiError::invalid("name", "name must be 1 to 80 characters"));
    }
    if scopes.is_empty() {
        return Err(ApiError::invalid("scopes", "give at least one scope"));
    }
    if let Some(bad) = scopes.iter().find(|s| !TOKEN_SCOPES.contains(&s.as_str())) {
        return Err(ApiError::invalid(
            "scopes",
            format!("unknown scope {bad:?}; known: {}", TOKEN_SCOPES.join(", ")),
        ));
    }
    if let Some(exp) = expires_at {
        chrono::DateTime::parse_from_rfc3339(exp)
            .map_err(|_| ApiError::invalid("expires_at", "expires_at must be an RFC 3339 time"))?;
    }
    let token = random_token("lxt_", 32);
    let hash = PiiKey::token_hash(&token);
    let t = store
        .create_api_token(actor, account_id, name, &hash, scopes, expires_at)
        .await?;
    Ok((token, t))
}

#[derive(Deserialize)]
struct TokenQuery {
    account_id: Option<String>,
}

async fn list_tokens(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<TokenQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageAccounts)?;
    let account_id = parse_i64("account_id", q.account_id.as_deref())?.unwrap_or(c.account.id);
    Ok(Json(
        json!({ "tokens": state.store.api_tokens_of(account_id).await? }),
    ))
}

async fn revoke_token(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageAccounts)?;
    let revoked = state.store.revoke_api_token(&c.actor(), id).await?;
    Ok(Json(json!({ "api_token": revoked })))
}

#[derive(Deserialize)]
struct AuditQuery {
    after: Option<String>,
    limit: Option<String>,
}

async fn audit_entries(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<AuditQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadAudit)?;
    let after = parse_i64("after", q.after.as_deref())?.unwrap_or(0);
    let limit = parse_limit(q.limit.as_deref(), 100, 1000)?;
    Ok(Json(
        json!({ "entries": state.store.audit_entries(after, limit).await? }),
    ))
}

async fn audit_verify(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadAudit)?;
    Ok(Json(match state.store.audit_verify().await? {
        Verification::Intact { entries } => json!({ "intact": true, "entries": entries }),
        Verification::Broken(b) => {
            json!({ "intact": false, "first_broken_seq": b.seq, "reason": b.reason })
        }
    }))
}

/// An optional integer query parameter.
pub fn parse_i64(field: &str, raw: Option<&str>) -> ApiResult<Option<i64>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("{field} must be an integer"),
            )
            .with_field(field)
        }),
    }
}

/// A page size: default `default`, at most `max`.
pub fn parse_limit(raw: Option<&str>, default: i64, max: i64) -> ApiResult<i64> {
    match parse_i64("limit", raw)? {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("limit must be 1 to {max}"),
        )
        .with_field("limit")),
    }
}
