//! The demand loop's JSON API: intake, the queue, steps, ratings, public tracking,
//! the three rates, and the loop's rules (categories, routing, time limits, holiday
//! calendars). Handlers only translate HTTP to [`crate::desk::DemandDesk`] calls and
//! check who may see what.

use super::{parse_i64, parse_limit};
use crate::auth::{Caller, Credential};
use crate::desk::{Action, Intake, StepBy, Submitter};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiCaller, Id, JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use chrono::NaiveDate;
use futures::Stream;
use lianxin_domain::calendar::{local_day, HolidayCalendar, TimeLimit};
use lianxin_domain::demand::{Rating, Status, Urgency};
use lianxin_domain::rates::RateCounts;
use lianxin_domain::role::Permission;
use lianxin_store::demands::{Category, Demand, DemandQuery, RateGroup, RateRow};
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;

// ----- who may see a demand -----

/// The units a caller acts for: `None` means every unit (an administrator).
pub async fn caller_units(state: &AppState, c: &Caller) -> ApiResult<Option<Vec<i64>>> {
    Ok(state.store.units_in_scope(&c.account.scope).await?)
}

/// Whether the caller may see demand `d`: staff within their scope (by place or by a
/// unit involved), or the reporter themselves.
pub fn may_see(c: &Caller, units: &Option<Vec<i64>>, d: &Demand) -> bool {
    if d.reporter_account_id == Some(c.account.id) {
        return true;
    }
    if !c.role().allows(Permission::ReadDemands) {
        return false;
    }
    if c.account.scope.allows_place(&d.place_path)
        && (c.account.scope.place_path.is_some() || units.is_none())
    {
        return true;
    }
    let involved = [
        Some(d.owner_id),
        d.handler_id,
        d.transfer_to,
        d.supervisor_id,
    ];
    match units {
        None => true,
        Some(u) => involved.iter().flatten().any(|x| u.contains(x)),
    }
}

/// A token must carry one of `scopes` (a session needs none: what it may do is
/// decided by its role and scope, or by being the reporter).
fn require_token_scope(c: &Caller, scopes: &[&str], what: &str) -> ApiResult<()> {
    if let Credential::Token { scopes: has, .. } = &c.credential {
        if !has.iter().any(|s| scopes.contains(&s.as_str())) {
            return Err(ApiError::forbidden(format!(
                "the token's scopes do not allow {what}"
            )));
        }
    }
    Ok(())
}

/// A token reads demands only with a demands scope.
pub fn require_demand_token(c: &Caller) -> ApiResult<()> {
    require_token_scope(c, &["demands:read", "demands:write"], "reading demands")
}

/// The demand, if the caller may see it; otherwise "not found" (no probing).
pub async fn visible_demand(state: &AppState, c: &Caller, id: i64) -> ApiResult<Demand> {
    require_demand_token(c)?;
    let d = state.store.demand(id).await?;
    let units = caller_units(state, c).await?;
    if may_see(c, &units, &d) {
        Ok(d)
    } else {
        Err(ApiError::not_found("demand"))
    }
}

fn submitter(c: &Caller) -> Submitter {
    Submitter {
        actor: c.actor().0,
        name: c.account.display_name.clone(),
        account_id: Some(c.account.id),
    }
}

/// Submitting needs no permission from a session (every account may raise a demand);
/// a token needs `demands:write` or `open311`.
fn require_submit(c: &Caller) -> ApiResult<()> {
    require_token_scope(c, &["demands:write", "open311"], "submitting demands")
}

// ----- intake -----

/// The largest submission: six photos at the size limit, base64-encoded, plus text.
pub const SUBMIT_BODY_LIMIT: usize =
    lianxin_domain::intake::MAX_PHOTOS * lianxin_domain::intake::MAX_PHOTO_BYTES * 4 / 3
        + 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDemandBody {
    kind: String,
    category: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    title: Option<String>,
    description: String,
    /// A place code.
    #[serde(default)]
    place: Option<String>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lon: Option<f64>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    reporter_name: Option<String>,
    #[serde(default)]
    reporter_phone: Option<String>,
    /// Base64-encoded JPEG, PNG or WebP images.
    #[serde(default)]
    photos: Vec<String>,
    #[serde(default)]
    attributes: Option<Value>,
}

pub async fn submit(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(b): JsonBody<NewDemandBody>,
) -> ApiResult<Response> {
    require_submit(&c)?;
    let mut photos = Vec::with_capacity(b.photos.len());
    for (i, p) in b.photos.iter().enumerate() {
        photos.push(
            base64::engine::general_purpose::STANDARD
                .decode(p.trim())
                .map_err(|_| {
                    ApiError::invalid("photos", format!("photo {} is not valid base64", i + 1))
                })?,
        );
    }
    if b.attributes.as_ref().is_some_and(|a| !a.is_object()) {
        return Err(ApiError::invalid(
            "attributes",
            "attributes must be an object",
        ));
    }
    let intake = Intake {
        kind: b.kind,
        category: b.category,
        // A rider's own report is a sentinel report unless the client says otherwise.
        channel: b.channel.unwrap_or_else(|| {
            if c.role() == lianxin_domain::role::Role::Rider {
                "rider_sentinel".into()
            } else {
                "web".into()
            }
        }),
        title: b.title,
        description: b.description,
        place_code: b.place,
        lat: b.lat,
        lon: b.lon,
        address: b.address,
        attributes: b.attributes,
        reporter_name: b.reporter_name,
        reporter_phone: b.reporter_phone,
        photos,
        ..Intake::default()
    };
    let submitted = state.desk.submit(intake, &submitter(&c)).await?;
    Ok((StatusCode::CREATED, Json(submitted)).into_response())
}

// ----- the queue and one demand -----

#[derive(Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
    category: Option<String>,
    overdue: Option<String>,
    mine: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

fn flag(raw: Option<&str>) -> bool {
    matches!(raw.map(str::trim), Some("1" | "true" | "yes"))
}

/// The demands a caller sees, as the store query that finds them: a worker's queue
/// is their scope, ordered by deadline; a resident's is what they reported.
pub async fn queue_query(state: &AppState, c: &Caller, mine: bool) -> ApiResult<DemandQuery> {
    let mut q = DemandQuery {
        limit: 100,
        by_deadline: true,
        ..DemandQuery::default()
    };
    if mine || !c.role().allows(Permission::ReadDemands) {
        q.reporter_account_id = Some(c.account.id);
        q.by_deadline = false;
        return Ok(q);
    }
    let units = caller_units(state, c).await?;
    if units.is_some() {
        q.place_path = c.account.scope.place_path.clone();
        q.units = units;
    }
    Ok(q)
}

pub async fn list(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(p): QueryParams<QueueQuery>,
) -> ApiResult<Json<Value>> {
    require_demand_token(&c)?;
    let mut q = queue_query(&state, &c, flag(p.mine.as_deref())).await?;
    if let Some(s) = p.status.as_deref().filter(|s| !s.trim().is_empty()) {
        for one in s.split(',') {
            q.statuses
                .push(Status::parse(one).map_err(|e| ApiError::invalid("status", e.message))?);
        }
    }
    if let Some(cat) = p.category.as_deref().filter(|s| !s.trim().is_empty()) {
        q.categories = cat.split(',').map(|s| s.trim().to_string()).collect();
    }
    q.overdue_only = flag(p.overdue.as_deref());
    q.limit = parse_limit(p.limit.as_deref(), 100, 1000)?;
    q.offset = parse_i64("offset", p.offset.as_deref())?
        .unwrap_or(0)
        .max(0);
    let demands = state.store.search_demands(&q).await?;
    Ok(Json(json!({ "demands": demands, "now": state.desk.now() })))
}

pub async fn get(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    let d = visible_demand(&state, &c, id).await?;
    let events = state.store.demand_events(id).await?;
    let photos = state.store.demand_photo_ids(id).await?;
    Ok(Json(
        json!({ "demand": d, "events": events, "photo_ids": photos }),
    ))
}

pub async fn photo(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path((id, photo)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (id, photo) = (path_id(&id)?, path_id(&photo)?);
    visible_demand(&state, &c, id).await?;
    photo_response(&state, id, photo).await
}

/// A stored photo, served so that a browser can only ever show it as an image.
pub async fn photo_response(state: &AppState, id: i64, photo: i64) -> ApiResult<Response> {
    let (content_type, bytes) = state.store.demand_photo(id, photo).await?;
    Ok(image_response(content_type, bytes))
}

/// Image bytes a browser may only ever show as an image (no sniffing, no scripts),
/// cached privately: demand and visit photos alike.
pub(crate) fn image_response(content_type: String, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
            (header::CACHE_CONTROL, "private, max-age=86400".into()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".into(),
            ),
        ],
        bytes,
    )
        .into_response()
}

pub(crate) fn path_id(raw: &str) -> ApiResult<i64> {
    raw.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            "ids in the path must be positive integers",
        )
    })
}

// ----- steps -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    action: String,
    #[serde(default)]
    urgency: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    deadline: Option<String>,
    #[serde(default)]
    unit_id: Option<i64>,
    #[serde(default)]
    into: Option<i64>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

/// Parses an optional RFC 3339 instant from a form or JSON field.
pub fn parse_instant(
    field: &str,
    raw: Option<&str>,
) -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .or_else(|_| {
                // A datetime-local form field: Shanghai wall time without a zone.
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").map(|t| {
                    Some(
                        t.and_local_timezone(lianxin_domain::calendar::SHANGHAI)
                            .single()
                            .expect("fixed offset")
                            .with_timezone(&chrono::Utc),
                    )
                })
            })
            .map_err(|_| ApiError::invalid(field, format!("{field} must be an RFC 3339 time"))),
    }
}

/// Builds a step from its name and fields (shared by the API and the web forms).
#[allow(clippy::too_many_arguments)]
pub fn parse_action(
    name: &str,
    urgency: Option<&str>,
    category: Option<&str>,
    deadline: Option<&str>,
    unit_id: Option<i64>,
    into: Option<i64>,
    text: Option<&str>,
    reason: Option<&str>,
    note: Option<&str>,
) -> ApiResult<Action> {
    let deadline = parse_instant("deadline", deadline)?;
    let note = note.map(str::to_string);
    let need = |v: Option<i64>, field: &str| {
        v.ok_or_else(|| ApiError::invalid(field, format!("{field} is required for {name}")))
    };
    let reason = || reason.unwrap_or_default().to_string();
    Ok(match name.trim() {
        "assess" => Action::Assess {
            urgency: urgency
                .filter(|u| !u.trim().is_empty())
                .map(Urgency::parse)
                .transpose()?,
            category: category
                .filter(|c| !c.trim().is_empty())
                .map(str::to_string),
            deadline,
            note,
        },
        "assign" => Action::Assign {
            unit: need(unit_id, "unit_id")?,
            deadline,
            note,
        },
        "start" => Action::Start { note },
        "answer" => Action::Answer {
            text: text.unwrap_or_default().to_string(),
        },
        "return" => Action::Return {
            reason: reason(),
            deadline,
        },
        "transfer" => Action::Transfer {
            unit: need(unit_id, "unit_id")?,
            reason: reason(),
        },
        "accept_transfer" => Action::AcceptTransfer { deadline, note },
        "decline_transfer" => Action::DeclineTransfer { reason: reason() },
        "merge" => Action::Merge {
            into: need(into, "into")?,
            note,
        },
        "reject" => Action::Reject { reason: reason() },
        "close_unrated" => Action::CloseUnrated,
        other => {
            return Err(ApiError::invalid(
                "action",
                format!(
                    "unknown action {other:?}; known: {}",
                    Action::NAMES.join(", ")
                ),
            ))
        }
    })
}

/// A merge may only point at a demand the caller can see: it reveals the target's
/// number in the merged demand's history.
pub async fn check_merge_target(state: &AppState, c: &Caller, action: &Action) -> ApiResult<()> {
    if let Action::Merge { into, .. } = action {
        visible_demand(state, c, *into)
            .await
            .map_err(|_| ApiError::invalid("into", format!("unknown demand {into}")))?;
    }
    Ok(())
}

/// Who takes a step: the caller, acting for the units in their scope.
pub async fn step_by(state: &AppState, c: &Caller) -> ApiResult<StepBy> {
    c.require(Permission::HandleDemands)?;
    Ok(StepBy {
        actor: c.actor().0,
        name: c.account.display_name.clone(),
        units: caller_units(state, c).await?,
    })
}

pub async fn act(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(b): JsonBody<ActionBody>,
) -> ApiResult<Json<Value>> {
    let by = step_by(&state, &c).await?;
    visible_demand(&state, &c, id).await?;
    let action = parse_action(
        &b.action,
        b.urgency.as_deref(),
        b.category.as_deref(),
        b.deadline.as_deref(),
        b.unit_id,
        b.into,
        b.text.as_deref(),
        b.reason.as_deref(),
        b.note.as_deref(),
    )?;
    check_merge_target(&state, &c, &action).await?;
    let d = state.desk.act(id, by, action).await?;
    // An accepted sentinel report earns its rider points (`api::points`).
    state.rewards.kick();
    Ok(Json(json!({ "demand": d })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingBody {
    rating: String,
    #[serde(default)]
    comment: Option<String>,
}

/// The reporter (the account that submitted it) rates the answer.
pub async fn rate(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(b): JsonBody<RatingBody>,
) -> ApiResult<Json<Value>> {
    let rating = Rating::parse(&b.rating)?;
    require_submit(&c)?;
    let d = visible_demand(&state, &c, id).await?;
    if d.reporter_account_id != Some(c.account.id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_yours",
            "only the reporter may rate the answer",
        ));
    }
    let d = state.desk.rate(id, c.actor().0, rating, b.comment).await?;
    Ok(Json(json!({ "demand": d })))
}

/// The reporter's full phone number, for the unit that must call back. Only staff
/// who may take steps on the demand see it, each look is written to the audit trail,
/// and the number is never in a list, a log or a URL.
pub async fn reveal_reporter_phone(
    state: &AppState,
    c: &Caller,
    id: i64,
) -> ApiResult<Option<String>> {
    c.require(Permission::HandleDemands)?;
    visible_demand(state, c, id).await?;
    let Some(sealed) = state.store.demand_reporter_phone_enc(id).await? else {
        return Ok(None);
    };
    let phone = state.pii.decrypt(&sealed).map_err(|_| {
        tracing::error!(demand = id, "a reporter's phone number cannot be decrypted");
        ApiError::internal()
    })?;
    state
        .store
        .audit_access(&c.actor(), "reveal_phone", "demand", &id.to_string())
        .await?;
    Ok(Some(phone))
}

pub async fn reporter_phone(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    let phone = reveal_reporter_phone(&state, &c, id).await?;
    Ok(Json(json!({ "reporter_phone": phone })))
}

// ----- public tracking by token -----

/// What the public tracking page may show: no personal data, no internal notes
/// beyond the steps' names and the answer.
pub fn public_view(d: &Demand) -> Value {
    json!({
        "id": d.id,
        "status": d.status,
        "status_label": d.status.label_zh(),
        "category_name": d.category_name,
        "title": d.title,
        "place_name": d.place_name,
        "owner_name": d.owner_name,
        "handler_name": d.handler_name,
        "deadline": d.deadline,
        "step_at": d.step_at,
        "overdue": d.overdue,
        "answer": d.answer,
        "rating": d.rating,
        "reopened": d.reopened,
        "received_at": d.received_at,
        "updated_at": d.updated_at,
        "version": d.version,
        "can_rate": d.status == Status::Answered,
    })
}

async fn tracked(state: &AppState, token: &str) -> ApiResult<Demand> {
    state
        .desk
        .by_token(token)
        .await?
        .ok_or_else(|| ApiError::not_found("demand"))
}

pub async fn track(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = tracked(&state, &token).await?;
    let events: Vec<Value> = state
        .store
        .demand_events(d.id)
        .await?
        .into_iter()
        .map(|e| {
            json!({ "at": e.at, "action": e.action, "to_status": e.to_status,
                    "unit_name": e.unit_name, "note": public_note(&e.action, e.note.as_deref()) })
        })
        .collect();
    Ok(Json(json!({ "demand": public_view(&d), "events": events })))
}

/// Notes the reporter sees: the answer, reasons for returning it to them, their own
/// rating. Internal notes between units stay internal.
pub fn public_note<'a>(action: &str, note: Option<&'a str>) -> Option<&'a str> {
    match action {
        "submit" | "answer" | "rate" | "rate_reopen" | "reject" | "merge" | "escalate"
        | "close_unrated" => note,
        _ => None,
    }
}

/// The token holder is the reporter: rating by token needs no account.
pub async fn track_rate(
    State(state): State<AppState>,
    Path(token): Path<String>,
    JsonBody(b): JsonBody<RatingBody>,
) -> ApiResult<Json<Value>> {
    let rating = Rating::parse(&b.rating)?;
    let d = tracked(&state, &token).await?;
    let d = state
        .desk
        .rate(d.id, "reporter".into(), rating, b.comment)
        .await?;
    Ok(Json(json!({ "demand": public_view(&d) })))
}

/// Server-sent events: one `demand` event with the public view whenever the demand
/// changes (and once at the start), so the reporter's page updates without a reload.
pub async fn track_stream(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let d = tracked(&state, &token).await?;
    Ok(demand_stream(state, d))
}

/// The event stream of one demand's changes.
pub fn demand_stream(
    state: AppState,
    d: Demand,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let id = d.id;
    let mut changes = state.desk.subscribe();
    let first = Event::default()
        .event("demand")
        .data(public_view(&d).to_string());
    let stream = async_stream_of(first, move |tx| async move {
        loop {
            match changes.recv().await {
                Ok(change) if change.id == id => {
                    let Ok(d) = state.store.demand(id).await else {
                        return;
                    };
                    let ev = Event::default()
                        .event("demand")
                        .data(public_view(&d).to_string());
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                // Missed some changes: fetch the current state anyway.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let Ok(d) = state.store.demand(id).await else {
                        return;
                    };
                    let ev = Event::default()
                        .event("demand")
                        .data(public_view(&d).to_string());
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A stream that yields `first`, then whatever `produce` sends, until it returns or
/// the client goes away.
fn async_stream_of<F, Fut>(
    first: Event,
    produce: F,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(produce(tx));
    let rest = futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    );
    futures::StreamExt::chain(futures::stream::once(async move { Ok(first) }), rest)
}

// ----- the three rates -----

#[derive(Deserialize)]
pub struct RatesQuery {
    from: Option<String>,
    to: Option<String>,
    group: Option<String>,
    place: Option<String>,
}

/// The period, grouping and place subtree of a rates request, checked against the
/// caller's scope.
pub struct RatesRequest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group: RateGroup,
    pub place_path: Option<String>,
    pub units: Option<Vec<i64>>,
}

pub async fn rates_request(
    state: &AppState,
    c: &Caller,
    from: Option<&str>,
    to: Option<&str>,
    group: Option<&str>,
    place: Option<&str>,
) -> ApiResult<RatesRequest> {
    c.require(Permission::ReadDemands)?;
    let today = local_day(state.desk.now());
    let day = |field: &str, raw: Option<&str>, default: NaiveDate| -> ApiResult<NaiveDate> {
        match raw.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    format!("{field} must be a date like 2026-01-31"),
                )
                .with_field(field)
            }),
        }
    };
    let to = day("to", to, today)?;
    let from = day("from", from, to - chrono::Duration::days(29))?;
    if from > to {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "from must not be after to",
        )
        .with_field("from"));
    }
    let group = match group.map(str::trim).unwrap_or("unit") {
        "" | "unit" => RateGroup::Unit,
        "place" => RateGroup::Place,
        "day" => RateGroup::Day,
        "total" => RateGroup::Total,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "group must be unit, place, day or total",
            )
            .with_field("group"))
        }
    };
    let scope_path = c.account.scope.place_path.clone();
    let place_path = match place.map(str::trim).filter(|s| !s.is_empty()) {
        None => scope_path,
        Some(code) => {
            let p = state
                .store
                .place_by_code(code)
                .await?
                .filter(|p| c.account.scope.allows_place(&p.path))
                .ok_or_else(|| ApiError::invalid("place", format!("unknown place {code:?}")))?;
            Some(p.path)
        }
    };
    // A unit-scoped account (no place scope) sees the rates of its own units.
    let units = if c.account.scope.place_path.is_none() {
        caller_units(state, c).await?
    } else {
        None
    };
    Ok(RatesRequest {
        from,
        to,
        group,
        place_path,
        units,
    })
}

/// The rows a rates request asks for, and their total.
pub async fn rate_rows(
    state: &AppState,
    r: &RatesRequest,
) -> ApiResult<(Vec<RateRow>, RateCounts)> {
    let rows = state
        .store
        .rate_counts(
            r.from,
            r.to,
            r.place_path.as_deref(),
            r.units.as_deref(),
            r.group,
        )
        .await?;
    let mut total = RateCounts::default();
    for row in &rows {
        total.merge(&row.counts);
    }
    Ok((rows, total))
}

pub async fn rates(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<RatesQuery>,
) -> ApiResult<Json<Value>> {
    let r = rates_request(
        &state,
        &c,
        q.from.as_deref(),
        q.to.as_deref(),
        q.group.as_deref(),
        q.place.as_deref(),
    )
    .await?;
    let (rows, total) = rate_rows(&state, &r).await?;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|row| {
            json!({ "key": row.key, "name": row.name, "counts": row.counts, "rates": row.counts.rates() })
        })
        .collect();
    Ok(Json(json!({
        "from": r.from, "to": r.to, "rows": rows,
        "total": { "counts": total, "rates": total.rates() },
        "definitions": "docs/rates.md",
    })))
}

pub async fn notices(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    require_demand_token(&c)?;
    // `None`: every unit's notices (an administrator).
    let units = if c.role().allows(Permission::ReadDemands) {
        caller_units(&state, &c).await?
    } else {
        Some(vec![])
    };
    let notices = state
        .store
        .notices(units.as_deref(), Some(c.account.id), 50)
        .await?;
    Ok(Json(json!({ "notices": notices })))
}

// ----- the loop's rules -----

pub async fn categories(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    if let Credential::Token { .. } = &c.credential {
        require_submit(&c).or_else(|_| require_demand_token(&c))?;
    }
    Ok(Json(json!({ "categories": state.desk.categories() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryBody {
    code: String,
    name_zh: String,
    name_en: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    default_urgency: Option<String>,
    #[serde(default)]
    attributes: Option<Value>,
    #[serde(default)]
    keywords: String,
    #[serde(default)]
    sort: i64,
    #[serde(default)]
    active: Option<bool>,
}

pub async fn put_category(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(b): JsonBody<CategoryBody>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageLoop)?;
    let code = b.code.trim();
    if code.is_empty()
        || code.len() > 40
        || !code
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
    {
        return Err(ApiError::invalid(
            "code",
            "code must be 1 to 40 of a-z, 0-9 and _",
        ));
    }
    let attributes = b.attributes.unwrap_or(Value::Array(vec![]));
    if !attributes.is_array() {
        return Err(ApiError::invalid(
            "attributes",
            "attributes must be an array",
        ));
    }
    let cat = Category {
        code: code.to_string(),
        name_zh: lianxin_domain::intake::text("name_zh", &b.name_zh, 40)?,
        name_en: lianxin_domain::intake::text("name_en", &b.name_en, 80)?,
        description: b.description.trim().to_string(),
        default_urgency: b
            .default_urgency
            .as_deref()
            .map(Urgency::parse)
            .transpose()?
            .unwrap_or(Urgency::Ordinary),
        attributes,
        keywords: b.keywords,
        sort: b.sort,
        active: b.active.unwrap_or(true),
    };
    state.store.upsert_category(&c.actor(), &cat).await?;
    state.desk.reload().await?;
    Ok(Json(json!({ "category": cat })))
}

pub async fn routing_rules(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadDemands)?;
    Ok(Json(json!({ "rules": state.store.routing_rules().await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    #[serde(default)]
    category: Option<String>,
    place: String,
    unit: String,
}

/// Adds a routing rule from a category (or none: every category), a place code and a
/// unit (organisation) code.
pub async fn add_routing_rule(
    state: &AppState,
    c: &Caller,
    category: Option<&str>,
    place: &str,
    unit: &str,
) -> ApiResult<i64> {
    c.require(Permission::ManageLoop)?;
    let category = category.map(str::trim).filter(|s| !s.is_empty());
    if let Some(cat) = category {
        state.desk.category(cat)?;
    }
    let place = state
        .store
        .place_by_code(place.trim())
        .await?
        .ok_or_else(|| ApiError::invalid("place", format!("unknown place {place:?}")))?;
    let unit = state
        .store
        .org_by_code(unit.trim())
        .await?
        .ok_or_else(|| ApiError::invalid("unit", format!("unknown unit {unit:?}")))?;
    let id = state
        .store
        .create_routing_rule(&c.actor(), category, place.id, unit.id)
        .await?;
    state.desk.reload().await?;
    Ok(id)
}

pub async fn create_routing_rule(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(b): JsonBody<RuleBody>,
) -> ApiResult<Response> {
    let id = add_routing_rule(&state, &c, b.category.as_deref(), &b.place, &b.unit).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

pub async fn delete_routing_rule(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageLoop)?;
    state.store.delete_routing_rule(&c.actor(), id).await?;
    state.desk.reload().await?;
    Ok(Json(json!({ "deleted": id })))
}

pub async fn time_limits(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadDemands)?;
    let cfg = state.desk.config();
    let defaults: Vec<Value> = Urgency::ALL
        .iter()
        .map(|u| json!({ "urgency": u, "time_limit": cfg.policy.limit("", *u).to_string() }))
        .collect();
    let by_category: Vec<Value> = cfg
        .policy
        .overrides()
        .iter()
        .map(|(c, u, l)| json!({ "category": c, "urgency": u, "time_limit": l.to_string() }))
        .collect();
    Ok(Json(json!({
        "defaults": defaults,
        "by_category": by_category,
        "configured": state.store.time_limits().await?,
        "rating_window": cfg.rating_window.to_string(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeLimitBody {
    #[serde(default)]
    category: Option<String>,
    urgency: String,
    /// "2h", "24h", "7wd"; null removes the setting.
    time_limit: Option<String>,
}

pub async fn set_time_limit(
    state: &AppState,
    c: &Caller,
    category: Option<&str>,
    urgency: &str,
    limit: Option<&str>,
) -> ApiResult<()> {
    c.require(Permission::ManageLoop)?;
    let urgency = Urgency::parse(urgency)?;
    let category = category.map(str::trim).filter(|s| !s.is_empty());
    if let Some(cat) = category {
        state.desk.category(cat)?;
    }
    let limit = limit
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(TimeLimit::parse)
        .transpose()?;
    state
        .store
        .set_time_limit(&c.actor(), category, urgency, limit)
        .await?;
    state.desk.reload().await?;
    Ok(())
}

pub async fn put_time_limit(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(b): JsonBody<TimeLimitBody>,
) -> ApiResult<Json<Value>> {
    set_time_limit(
        &state,
        &c,
        b.category.as_deref(),
        &b.urgency,
        b.time_limit.as_deref(),
    )
    .await?;
    Ok(Json(json!({ "ok": true })))
}

pub async fn calendar_years(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadDemands)?;
    let cfg = state.desk.config();
    let this_year = chrono::Datelike::year(&local_day(state.desk.now()));
    let (covered, added) = calendar_coverage(&state).await?;
    Ok(Json(json!({
        "covered_years": covered,
        "added_years": added,
        "next_year_missing": !cfg.calendar.covers(this_year + 1),
    })))
}

/// The years the working-day calendar covers (from 2020 to two years ahead), and the
/// years admins added.
pub async fn calendar_coverage(state: &AppState) -> ApiResult<(Vec<i32>, Vec<i64>)> {
    let cfg = state.desk.config();
    let this_year = chrono::Datelike::year(&local_day(state.desk.now()));
    let covered = (2020..=this_year + 2)
        .filter(|y| cfg.calendar.covers(*y))
        .collect();
    let added = state
        .store
        .calendar_years()
        .await?
        .into_iter()
        .map(|(y, _)| y)
        .collect();
    Ok((covered, added))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarBody {
    /// The year's holidays and make-up working days, in the format of
    /// `data/cn-public-holidays.toml`.
    toml: String,
}

/// Checks an uploaded holiday calendar: valid, listing `year` and no other year, so
/// an upload can never replace another year by accident.
pub fn check_calendar_upload(year: i32, toml: &str) -> ApiResult<()> {
    let cal = HolidayCalendar::from_toml(toml)?;
    if !cal.covers(year) {
        return Err(ApiError::invalid(
            "toml",
            format!("the calendar does not list the year {year}"),
        ));
    }
    if let Some(other) = (2000..=2100).find(|y| *y != year && cal.covers(*y)) {
        return Err(ApiError::invalid(
            "toml",
            format!("upload one year at a time: this calendar also lists {other}"),
        ));
    }
    Ok(())
}

/// Adds or replaces one year's official holidays.
pub async fn put_calendar_year(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(year): Path<String>,
    JsonBody(b): JsonBody<CalendarBody>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageLoop)?;
    let year: i32 = year
        .parse()
        .ok()
        .filter(|y| (2000..=2100).contains(y))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_path",
                "the year must be between 2000 and 2100",
            )
        })?;
    check_calendar_upload(year, &b.toml)?;
    state
        .store
        .set_calendar_year(&c.actor(), i64::from(year), &b.toml)
        .await?;
    state.desk.reload().await?;
    Ok(Json(json!({ "year": year })))
}
