//! The contact-point API: points and their priority, officials' links, re-matches and
//! handovers, visits with the demands they collected, and the district view.
//!
//! Reads need `ReadGovernance`; recording a visit needs `RecordVisits`; points,
//! links, re-matches and rules need `ManageGovernance` (the organisation department),
//! except acknowledging a handover, which only its successor can do. The pages in
//! `crate::web::contact` call the same functions, so both enforce one set of rules.

use super::demands::path_id;
use crate::auth::Caller;
use crate::desk::{Intake, Submitted, Submitter};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiCaller, Id, JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{Datelike, NaiveDate};
use lianxin_domain::contact::{
    priority, PointIndicators, PointKind, PriorityWeights, RematchStatus, VisitKind,
};
use lianxin_domain::intake::{PhotoFormat, MAX_PHOTOS};
use lianxin_domain::relation::{parse_day, Validity};
use lianxin_domain::role::Permission;
use lianxin_store::contact::{
    ContactPoint, GovernanceRules, NewPoint, NewVisit, Visit, VisitQuery,
};
use lianxin_store::demands::NewPhoto;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub fn routes() -> Router<AppState> {
    let upload = DefaultBodyLimit::max(super::demands::SUBMIT_BODY_LIMIT);
    Router::new()
        .route("/governance/rules", get(rules).put(put_rules))
        .route("/governance/district", get(district))
        .route("/points", get(list_points).post(create_point))
        .route("/points/{id}", get(get_point).patch(update_point))
        .route("/points/{id}/links", post(link_official))
        .route("/links/{id}/end", post(end_link))
        .route("/rematches", get(list_rematches))
        .route("/rematches/{id}", get(get_rematch))
        .route("/rematches/{id}/confirm", post(confirm_rematch))
        .route("/rematches/{id}/acknowledge", post(acknowledge_rematch))
        .route("/handovers", get(my_handovers))
        .route("/visits", get(list_visits).post(create_visit).layer(upload))
        .route("/visits/{id}", get(get_visit))
        .route("/visits/{id}/follow-up", post(follow_up_done))
        .route("/visits/{id}/photos/{photo}", get(visit_photo))
}

pub fn today() -> NaiveDate {
    super::registry_today()
}

fn require_person(c: &Caller) -> ApiResult<i64> {
    c.account.person_id.ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "no_person",
            "this account is not linked to a person in the registry",
        )
    })
}

// ----- rules -----

async fn rules(State(state): State<AppState>, ApiCaller(c): ApiCaller) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    Ok(Json(
        json!({ "rules": state.store.governance_rules().await? }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    pub weight_task_load: f64,
    pub weight_weakness: f64,
    pub weight_complexity: f64,
    pub min_visits_per_year: i64,
    pub max_points_per_official: i64,
    pub tier_advanced: f64,
    pub tier_lagging: f64,
}

impl RulesBody {
    pub fn rules(&self) -> GovernanceRules {
        GovernanceRules {
            weights: PriorityWeights {
                task_load: self.weight_task_load,
                weakness: self.weight_weakness,
                complexity: self.weight_complexity,
            },
            min_visits_per_year: self.min_visits_per_year,
            max_points_per_official: self.max_points_per_official,
            tier_advanced: self.tier_advanced,
            tier_lagging: self.tier_lagging,
        }
    }
}

async fn put_rules(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(b): JsonBody<RulesBody>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageGovernance)?;
    let rules = state
        .store
        .set_governance_rules(&c.actor(), &b.rules())
        .await?;
    Ok(Json(json!({ "rules": rules })))
}

// ----- points -----

/// A point with its priority explained: the score and each indicator's share.
pub fn point_json(p: &ContactPoint, w: PriorityWeights) -> Value {
    let pr = priority(p.indicators, w);
    json!({
        "point": p,
        "priority": {
            "score": (pr.score * 10.0).round() / 10.0,
            "high": pr.score >= lianxin_domain::contact::HIGH_PRIORITY,
            "parts": pr.parts.iter().map(|(name, value, share, adds)| json!({
                "indicator": name, "value": value, "weight_share": share, "adds": adds,
            })).collect::<Vec<_>>(),
        },
    })
}

async fn list_points(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let w = state.store.governance_rules().await?.weights;
    let points = state.store.points(&c.account.scope).await?;
    Ok(Json(json!({
        "points": points.iter().map(|p| point_json(p, w)).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPointBody {
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    pub place: String,
    #[serde(default)]
    pub org: Option<String>,
    #[serde(default)]
    pub sector: Option<String>,
    pub task_load: u8,
    pub weakness: u8,
    pub complexity: u8,
}

async fn create_point(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(b): JsonBody<NewPointBody>,
) -> ApiResult<Response> {
    c.require(Permission::ManageGovernance)?;
    let p = state
        .store
        .create_point(
            &c.actor(),
            &c.account.scope,
            &NewPoint {
                kind: PointKind::parse(&b.kind)?,
                name: b.name,
                place_code: b.place,
                org_code: b.org,
                sector: b.sector,
                indicators: PointIndicators::new(b.task_load, b.weakness, b.complexity)?,
            },
        )
        .await?;
    let w = state.store.governance_rules().await?.weights;
    Ok((StatusCode::CREATED, Json(point_json(&p, w))).into_response())
}

async fn get_point(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let p = state.store.point(id, &c.account.scope).await?;
    let w = state.store.governance_rules().await?.weights;
    let links = state.store.point_links(id).await?;
    let visits = state
        .store
        .visits(
            &c.account.scope,
            &VisitQuery {
                point_id: Some(id),
                limit: 100,
                ..VisitQuery::default()
            },
        )
        .await?;
    let mut out = point_json(&p, w);
    out["links"] = json!(links);
    out["visits"] = json!(visits);
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorsBody {
    task_load: u8,
    weakness: u8,
    complexity: u8,
}

async fn update_point(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(b): JsonBody<IndicatorsBody>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageGovernance)?;
    let ind = PointIndicators::new(b.task_load, b.weakness, b.complexity)?;
    let p = state
        .store
        .set_point_indicators(&c.actor(), &c.account.scope, id, ind)
        .await?;
    let w = state.store.governance_rules().await?.weights;
    Ok(Json(point_json(&p, w)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    person_id: i64,
    valid_from: String,
    #[serde(default)]
    valid_to: Option<String>,
}

async fn link_official(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(b): JsonBody<LinkBody>,
) -> ApiResult<Response> {
    c.require(Permission::ManageGovernance)?;
    let validity = Validity::new(
        parse_day("valid_from", &b.valid_from)?,
        b.valid_to
            .as_deref()
            .map(|t| parse_day("valid_to", t))
            .transpose()?,
    )?;
    let link = state
        .store
        .link_official(&c.actor(), &c.account.scope, id, b.person_id, validity)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "link": link }))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndBody {
    on: String,
}

async fn end_link(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(b): JsonBody<EndBody>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageGovernance)?;
    let on = parse_day("on", &b.on)?;
    let link = state
        .store
        .end_link(&c.actor(), &c.account.scope, id, on)
        .await?;
    Ok(Json(json!({ "link": link })))
}

// ----- re-matches -----

#[derive(Deserialize)]
struct RematchQuery {
    status: Option<String>,
}

async fn list_rematches(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<RematchQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let statuses: Vec<RematchStatus> = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.split(',')
                .map(RematchStatus::parse)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let list = state.store.rematches(&c.account.scope, &statuses).await?;
    Ok(Json(json!({ "rematches": list })))
}

async fn get_rematch(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let r = state.store.rematch(id, &c.account.scope).await?;
    let candidates = if r.status == RematchStatus::Open {
        state
            .store
            .successor_candidates(id, &c.account.scope, today())
            .await?
    } else {
        Vec::new()
    };
    Ok(Json(json!({ "rematch": r, "candidates": candidates })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    successor_id: i64,
}

async fn confirm_rematch(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(b): JsonBody<ConfirmBody>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageGovernance)?;
    let r = state
        .store
        .confirm_rematch(&c.actor(), &c.account.scope, id, b.successor_id, today())
        .await?;
    Ok(Json(json!({ "rematch": r })))
}

async fn acknowledge_rematch(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let me = require_person(&c)?;
    let r = state
        .store
        .acknowledge_rematch(&c.actor(), me, id, today())
        .await?;
    Ok(Json(json!({ "rematch": r })))
}

async fn my_handovers(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let me = require_person(&c)?;
    Ok(Json(
        json!({ "handovers": state.store.handovers_for(me).await? }),
    ))
}

// ----- visits -----

/// A demand collected on a visit.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct CollectedDemand {
    pub category: String,
    #[serde(default)]
    pub title: Option<String>,
    pub description: String,
    /// Where it is; the visit's place when absent.
    #[serde(default)]
    pub place: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVisitBody {
    #[serde(default)]
    pub point_id: Option<i64>,
    /// Who visited; the caller's own person when absent.
    #[serde(default)]
    pub person_id: Option<i64>,
    pub kind: String,
    pub date: String,
    /// The household visited, or another place; the point's place when absent.
    #[serde(default)]
    pub place: Option<String>,
    #[serde(default)]
    pub participants: Vec<String>,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub follow_up: Option<String>,
    /// Base64-encoded JPEG, PNG or WebP images.
    #[serde(default)]
    pub photos: Vec<String>,
    #[serde(default)]
    pub demands: Vec<CollectedDemand>,
}

/// A checked photo, ready to store.
pub fn visit_photo_of(field: &str, bytes: Vec<u8>) -> ApiResult<NewPhoto> {
    let format = PhotoFormat::check(&bytes).map_err(|e| e.in_field(field))?;
    Ok(NewPhoto {
        content_type: format.content_type().to_string(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes,
    })
}

/// Records a visit and the demands collected on it. Every demand is validated before
/// anything is written, so a bad demand leaves no visit behind; the demands then enter
/// the loop linked to the visit (and so to its point).
pub async fn record_visit(
    state: &AppState,
    c: &Caller,
    v: NewVisit,
    person_given: bool,
    demands: Vec<CollectedDemand>,
) -> ApiResult<(Visit, Vec<Submitted>)> {
    c.require(Permission::RecordVisits)?;
    // Recording for someone else is the organisation department's or a community
    // worker's job; officials record their own.
    if person_given
        && Some(v.person_id) != c.account.person_id
        && !c.account.role.allows(Permission::ManageCommunity)
    {
        return Err(ApiError::forbidden("you may record only your own visits"));
    }
    if demands.len() > 20 {
        return Err(ApiError::invalid("demands", "at most 20 demands per visit"));
    }
    if v.photos.len() > MAX_PHOTOS {
        return Err(ApiError::invalid(
            "photos",
            format!("at most {MAX_PHOTOS} photos"),
        ));
    }
    let by = Submitter {
        actor: c.actor().0,
        name: c.account.display_name.clone(),
        account_id: Some(c.account.id),
    };
    // Where the demands are when they name no place: the visit's place.
    let default_place = match (&v.place_code, v.point_id) {
        (Some(code), _) => Some(code.clone()),
        (None, Some(point)) => {
            let p = state
                .store
                .point(point, &c.account.scope)
                .await
                .map_err(|_| ApiError::invalid("point_id", "no such contact point"))?;
            Some(
                state
                    .store
                    .place(p.place_id, &Default::default())
                    .await?
                    .code,
            )
        }
        (None, None) => None,
    };
    lianxin_domain::contact::check_visit_date(v.visited_on, today())?;
    let mut prepared = Vec::with_capacity(demands.len());
    for (i, d) in demands.into_iter().enumerate() {
        let intake = Intake {
            kind: d.kind.unwrap_or_else(|| "help".into()),
            category: d.category,
            channel: "visit".into(),
            title: d.title,
            description: d.description,
            place_code: d.place.or_else(|| default_place.clone()),
            ..Intake::default()
        };
        let p = state.desk.prepare(intake, &by).await.map_err(|e| {
            let mut e = ApiError::from(e);
            e.prefix_field(&format!("demands[{i}]."));
            e
        })?;
        prepared.push(p);
    }
    let visit = state
        .store
        .record_visit(&c.actor(), &c.account.scope, &v, today())
        .await?;
    let mut submitted = Vec::with_capacity(prepared.len());
    for (mut d, s) in prepared {
        d.visit_id = Some(visit.id);
        submitted.push(state.desk.submit_prepared(d, s).await?);
    }
    Ok((visit, submitted))
}

async fn create_visit(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(b): JsonBody<NewVisitBody>,
) -> ApiResult<Response> {
    c.require(Permission::RecordVisits)?;
    let person_id = match b.person_id {
        Some(p) => p,
        None => require_person(&c)?,
    };
    let mut photos = Vec::with_capacity(b.photos.len());
    for (i, p) in b.photos.iter().enumerate() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(p.trim())
            .map_err(|_| {
                ApiError::invalid("photos", format!("photo {} is not valid base64", i + 1))
            })?;
        photos.push(visit_photo_of("photos", bytes)?);
    }
    let v = NewVisit {
        point_id: b.point_id,
        person_id,
        kind: VisitKind::parse(&b.kind)?,
        visited_on: parse_day("date", &b.date)?,
        place_code: b.place.filter(|p| !p.trim().is_empty()),
        participants: b.participants,
        notes: b.notes,
        follow_up: b.follow_up,
        photos,
    };
    let (visit, demands) = record_visit(&state, &c, v, b.person_id.is_some(), b.demands).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "visit": visit, "demands": demands })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct VisitListQuery {
    point_id: Option<String>,
    person_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

async fn list_visits(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<VisitListQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let day = |f: &str, v: Option<&str>| {
        v.filter(|s| !s.is_empty())
            .map(|s| parse_day(f, s))
            .transpose()
    };
    let query = VisitQuery {
        point_id: super::parse_i64("point_id", q.point_id.as_deref())?,
        person_id: super::parse_i64("person_id", q.person_id.as_deref())?,
        from: day("from", q.from.as_deref())?,
        to: day("to", q.to.as_deref())?,
        limit: super::parse_limit(q.limit.as_deref(), 100, 1000)?,
    };
    let visits = state.store.visits(&c.account.scope, &query).await?;
    Ok(Json(json!({ "visits": visits })))
}

async fn get_visit(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let v = state.store.visit(id, &c.account.scope).await?;
    let demands = state.store.visit_demands(&[id]).await?;
    Ok(Json(json!({ "visit": v, "demands": demands })))
}

async fn follow_up_done(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::RecordVisits)?;
    let by = if c.account.role.allows(Permission::ManageGovernance) {
        None
    } else {
        Some(require_person(&c)?)
    };
    let v = state
        .store
        .complete_follow_up(&c.actor(), &c.account.scope, id, by)
        .await?;
    Ok(Json(json!({ "visit": v })))
}

async fn visit_photo(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, photo)): Path<(String, String)>,
) -> ApiResult<Response> {
    c.require(Permission::ReadGovernance)?;
    let (id, photo) = (path_id(&id)?, path_id(&photo)?);
    state.store.visit(id, &c.account.scope).await?;
    let (content_type, bytes) = state.store.visit_photo(id, photo).await?;
    Ok(super::demands::image_response(content_type, bytes))
}

// ----- the district view -----

#[derive(Deserialize)]
struct DistrictQuery {
    year: Option<String>,
}

/// The year asked for, this year when absent.
pub fn year_of(raw: Option<&str>) -> ApiResult<i32> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(today().year()),
        Some(s) => s
            .parse::<i32>()
            .ok()
            .filter(|y| (2000..=2100).contains(y))
            .ok_or_else(|| ApiError::invalid("year", "a year from 2000 to 2100")),
    }
}

async fn district(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<DistrictQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGovernance)?;
    let year = year_of(q.year.as_deref())?;
    let view = state
        .store
        .district_view(&c.account.scope, year, today())
        .await?;
    Ok(Json(json!({ "view": view })))
}
