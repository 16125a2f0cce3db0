//! The points scheme over HTTP (以积分享兑换, M10, M11, M17), under `/api/v1/rewards`
//! (`/points` is taken by the officials' contact points).
//!
//! - **Awards** (`AwardPoints`, token scope `rewards:write`): one at a time or in
//!   batches of up to [`MAX_BATCH`], all or nothing. An award's id is derived from
//!   (event, person, rule), so a platform that retries after a timeout gets the same
//!   answer back (200, `replayed: true`) instead of a second award, and the same id
//!   with other content is a 409. No `Idempotency-Key` is needed for that, though the
//!   header works here as on every POST.
//! - **A rider** (role `rider`, through their own account's person) reads their
//!   balance, history and the catalogue, and redeems once a quarter. The refusals keep
//!   the store's codes: `already_redeemed_this_quarter` and `out_of_stock` are 409
//!   (the state of things, which a retry will not change), `insufficient_points` and
//!   `outside_window` are 422.
//! - **The organisation** (`ReadRewards` to look, `ManageRewards` to change) keeps
//!   the rules, the catalogue and its stock, corrections, the issuing organisation of
//!   the platform's own awards, and confirms the year's honours.
//!
//! The platform's own awards (confirmed sentinel reports, volunteer hours) are given
//! by [`spawn_sweeper`], which runs `Store::points_award_pending` every
//! [`SWEEP_EVERY`] and whenever [`RewardsCache::kick`] is called after a demand step
//! or a completed need.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiCaller, Id, JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Datelike, Utc};
use lianxin_domain::points::{quarter_of, Cap, Multipliers, Quality, RuleDraft, Window};
use lianxin_domain::role::{Permission, Role};
use lianxin_store::audit::Actor;
use lianxin_store::points::AwardOutcome;
use lianxin_store::points::{AwardRequest, NewItem};
use lianxin_store::Store;
use lianxin_store::StoreError;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// The most awards one batch request may carry.
pub const MAX_BATCH: usize = 10_000;
/// How often the platform's own awards are looked for without a kick.
pub const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// Events per sweep (the rest wait for the next).
const SWEEP_LIMIT: i64 = 2_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/rewards/rules", get(rules).post(put_rule))
        .route("/rewards/settings", get(settings).put(put_settings))
        .route("/rewards/awards", get(awards).post(award))
        .route(
            "/rewards/awards/batch",
            post(award_batch).layer(DefaultBodyLimit::max(8 * 1024 * 1024)),
        )
        .route("/rewards/pending", post(award_pending))
        .route("/rewards/items", get(items).post(add_item))
        .route("/rewards/items/{id}/restock", post(restock))
        .route("/rewards/me", get(me))
        .route("/rewards/me/redeem", post(redeem))
        .route("/rewards/people/{id}", get(person))
        .route("/rewards/transfers/{id}/correct", post(correct))
        .route("/rewards/ledger", get(ledger))
        .route("/rewards/honours", get(honours))
        .route("/rewards/honours/confirm", post(confirm_honours))
}

/// People and organisations known to exist, so a hot award path does not read them
/// again (neither is ever deleted), the sweeper's wake-up, and the queue that gathers
/// concurrent single awards into batches.
#[derive(Default)]
pub struct RewardsCache {
    known_people: Mutex<HashSet<i64>>,
    known_orgs: Mutex<HashSet<i64>>,
    wake: tokio::sync::Notify,
    /// Set when a rule or the issuer changes: the sweeper then looks at every demand
    /// event again, not only the new ones (a report may now earn what it did not).
    rescan: std::sync::atomic::AtomicBool,
    batcher: OnceLock<mpsc::UnboundedSender<AwardJob>>,
}

/// One award waiting in the queue, with who asked and where its answer goes.
type AwardJob = (
    Actor,
    AwardRequest,
    oneshot::Sender<Result<AwardOutcome, StoreError>>,
);

/// The most awards gathered into one batch.
const MAX_GATHER: usize = 512;
/// Batches in flight at once: while they are with the writer, new requests queue up
/// and form the next batch.
const IN_FLIGHT: usize = 2;

/// Gives one award through the queue: concurrent requests are gathered into one
/// `Store::points_award_batch` (each request still gets its own outcome or refusal,
/// exactly as alone), so a hundred riders' awards cost a few multi-row statements
/// instead of a dozen each. A lone request goes through `Store::points_award`.
async fn award_gathered(
    state: &AppState,
    actor: Actor,
    request: AwardRequest,
) -> Result<AwardOutcome, ApiError> {
    let queue = state
        .rewards
        .batcher
        .get_or_init(|| spawn_batcher(state.store.clone()));
    let (answer, answered) = oneshot::channel();
    if queue.send((actor, request, answer)).is_err() {
        return Err(ApiError::internal());
    }
    match answered.await {
        Ok(result) => result.map_err(ApiError::from),
        Err(_) => Err(ApiError::internal()),
    }
}

fn spawn_batcher(store: Store) -> mpsc::UnboundedSender<AwardJob> {
    let (queue, mut jobs) = mpsc::unbounded_channel::<AwardJob>();
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    tokio::spawn(async move {
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let Some(first) = jobs.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_GATHER {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let store = store.clone();
            tokio::spawn(async move {
                give_batch(&store, batch).await;
                drop(slot);
            });
        }
    });
    queue
}

/// Gives a gathered batch, one store call per actor. Should the batch fail as a whole
/// (the database, or a concurrent writer in another process claiming one of its ids
/// first), each request is given again on its own, so none fails for another's sake.
async fn give_batch(store: &Store, batch: Vec<AwardJob>) {
    let mut by_actor: Vec<(Actor, Vec<(AwardRequest, oneshot::Sender<_>)>)> = Vec::new();
    for (actor, request, answer) in batch {
        match by_actor.iter_mut().find(|(a, _)| *a == actor) {
            Some((_, v)) => v.push((request, answer)),
            None => by_actor.push((actor, vec![(request, answer)])),
        }
    }
    for (actor, jobs) in by_actor {
        if jobs.len() == 1 {
            for (request, answer) in jobs {
                let _ = answer.send(store.points_award(&actor, request).await);
            }
            continue;
        }
        let requests: Vec<AwardRequest> = jobs.iter().map(|(r, _)| r.clone()).collect();
        match store.points_award_batch(&actor, requests).await {
            Ok(results) => {
                for ((_, answer), result) in jobs.into_iter().zip(results) {
                    let _ = answer.send(result);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, awards = jobs.len(), "points: a gathered batch failed; giving each alone");
                for (request, answer) in jobs {
                    let _ = answer.send(store.points_award(&actor, request).await);
                }
            }
        }
    }
}

impl RewardsCache {
    /// Asks the sweeper to look for awards the platform owes now.
    pub fn kick(&self) {
        self.wake.notify_one();
    }

    /// Asks the sweeper to look at every event again, now.
    pub fn rescan(&self) {
        self.rescan
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.kick();
    }
}

fn created(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

/// The store's refusals with the status that fits them (see the module notes).
fn refusal(e: StoreError) -> ApiError {
    match &e {
        StoreError::Invalid(v)
            if matches!(v.code, "already_redeemed_this_quarter" | "out_of_stock") =>
        {
            let mut err = ApiError::new(StatusCode::CONFLICT, "conflict", v.message.clone())
                .with_field(v.field.clone());
            err.reason = Some(v.code);
            err
        }
        _ => e.into(),
    }
}

fn now(state: &AppState) -> DateTime<Utc> {
    state.desk.now()
}

// ----- Rules and settings -----

async fn rules(State(state): State<AppState>, ApiCaller(c): ApiCaller) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRewards)?;
    Ok(Json(json!({ "rules": state.store.points_rules().await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRule {
    code: String,
    category: String,
    points: i64,
    #[serde(default)]
    multipliers: Option<Multipliers>,
    #[serde(default)]
    cap: Option<Cap>,
    #[serde(default)]
    valid_from: Option<DateTime<Utc>>,
}

async fn put_rule(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<NewRule>,
) -> ApiResult<Response> {
    c.require(Permission::ManageRewards)?;
    let draft = RuleDraft {
        code: body.code.trim().to_string(),
        category: body.category.trim().to_string(),
        points: body.points,
        multipliers: body.multipliers.unwrap_or_default(),
        cap: body.cap,
        valid_from: body.valid_from.unwrap_or_else(|| now(&state)),
    };
    let rule = state.store.points_put_rule(&c.actor(), draft).await?;
    state.rewards.rescan();
    Ok(created(json!({ "rule": rule })))
}

async fn settings(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRewards)?;
    Ok(Json(
        json!({ "issuer_org_id": state.store.points_issuer().await? }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    issuer_org_id: Option<i64>,
}

async fn put_settings(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<Settings>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageRewards)?;
    state
        .store
        .points_set_issuer(&c.actor(), body.issuer_org_id)
        .await?;
    state.rewards.rescan();
    Ok(Json(json!({ "issuer_org_id": body.issuer_org_id })))
}

// ----- Awards -----

/// One award as a caller sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAward {
    event_ref: String,
    person_id: i64,
    org_id: i64,
    rule: String,
    #[serde(default)]
    quality: Option<Quality>,
    /// When it happened. Required: it is part of what a retry must repeat, so a
    /// default of "now" would turn every retry into a conflict.
    at: DateTime<Utc>,
}

impl NewAward {
    fn request(self, now: DateTime<Utc>) -> ApiResult<AwardRequest> {
        let at = self.at;
        if at > now + chrono::Duration::minutes(5) {
            return Err(
                ApiError::invalid("at", "an award cannot be for an event in the future")
                    .with_reason("event_in_future"),
            );
        }
        Ok(AwardRequest {
            event_ref: self.event_ref,
            person_id: self.person_id,
            org_id: self.org_id,
            rule_code: self.rule.trim().to_string(),
            quality: self.quality.unwrap_or(Quality::Basic),
            at,
        })
    }
}

/// Checks that the people and organisations named exist (each looked up once per
/// process).
async fn check_known(state: &AppState, people: &[i64], orgs: &[i64]) -> ApiResult<()> {
    let cache = &state.rewards;
    let missing_people: Vec<i64> = {
        let known = cache.known_people.lock().expect("not poisoned");
        people
            .iter()
            .copied()
            .filter(|p| !known.contains(p))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect()
    };
    let missing_orgs: Vec<i64> = {
        let known = cache.known_orgs.lock().expect("not poisoned");
        orgs.iter()
            .copied()
            .filter(|o| !known.contains(o))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect()
    };
    if missing_people.is_empty() && missing_orgs.is_empty() {
        return Ok(());
    }
    let (found_people, found_orgs) = state
        .store
        .points_existing(&missing_people, &missing_orgs)
        .await?;
    if let Some(p) = missing_people.iter().find(|p| !found_people.contains(p)) {
        return Err(
            ApiError::invalid("person_id", format!("no person {p}")).with_reason("unknown_person")
        );
    }
    if let Some(o) = missing_orgs.iter().find(|o| !found_orgs.contains(o)) {
        return Err(
            ApiError::invalid("org_id", format!("no organisation {o}")).with_reason("unknown_org")
        );
    }
    cache
        .known_people
        .lock()
        .expect("not poisoned")
        .extend(found_people);
    cache
        .known_orgs
        .lock()
        .expect("not poisoned")
        .extend(found_orgs);
    Ok(())
}

async fn award(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<NewAward>,
) -> ApiResult<Response> {
    c.require(Permission::AwardPoints)?;
    check_known(&state, &[body.person_id], &[body.org_id]).await?;
    let request = body.request(now(&state))?;
    let outcome = award_gathered(&state, c.actor(), request).await?;
    let status = if outcome.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(json!({ "award": outcome }))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    awards: Vec<Value>,
}

/// A batch, all or nothing; a problem names its row (1-based) in the batch.
async fn award_batch(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<Batch>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::AwardPoints)?;
    if body.awards.is_empty() || body.awards.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "awards",
            format!("a batch holds 1 to {MAX_BATCH} awards"),
        ));
    }
    let now = now(&state);
    let mut requests = Vec::with_capacity(body.awards.len());
    for (i, raw) in body.awards.into_iter().enumerate() {
        let row = i + 1;
        let at_row = |e: ApiError| {
            let field = e.field.clone().unwrap_or_default();
            let mut out = ApiError::new(e.status, e.code, format!("row {row}: {}", e.message))
                .with_field(
                    format!("awards[{i}].{field}")
                        .trim_end_matches('.')
                        .to_string(),
                );
            out.reason = e.reason;
            out
        };
        let award: NewAward = serde_json::from_value(raw).map_err(|e| {
            at_row(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                e.to_string(),
            ))
        })?;
        requests.push(award.request(now).map_err(at_row)?);
    }
    let people: Vec<i64> = requests.iter().map(|r| r.person_id).collect();
    let orgs: Vec<i64> = requests.iter().map(|r| r.org_id).collect();
    check_known(&state, &people, &orgs).await?;
    // Validate each row here so a problem is reported with its row number; the store
    // then checks everything again inside its transaction.
    for (i, r) in requests.iter().enumerate() {
        lianxin_domain::points::validate_event_ref(&r.event_ref).map_err(|v| {
            let mut e = ApiError::from(v);
            e.message = format!("row {}: {}", i + 1, e.message);
            e.prefix_field(&format!("awards[{i}]."));
            e
        })?;
    }
    let summary = state
        .store
        .points_import_awards(&c.actor(), requests)
        .await?;
    Ok(Json(json!({ "imported": summary })))
}

async fn award_pending(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageRewards)?;
    let summary = state
        .store
        .points_award_pending(&c.actor(), SWEEP_LIMIT, 0)
        .await?;
    Ok(Json(json!({ "given": summary })))
}

#[derive(Deserialize)]
struct AwardsQuery {
    person_id: Option<String>,
    limit: Option<String>,
}

async fn awards(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<AwardsQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRewards)?;
    let person = super::parse_i64("person_id", q.person_id.as_deref())?;
    let limit = super::parse_limit(q.limit.as_deref(), 100, 1000)?;
    Ok(Json(
        json!({ "awards": state.store.points_awards(person, limit).await? }),
    ))
}

// ----- Catalogue -----

#[derive(Deserialize)]
struct ItemsQuery {
    org_id: Option<String>,
}

async fn items(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<ItemsQuery>,
) -> ApiResult<Json<Value>> {
    if c.role() != Role::Rider {
        c.require(Permission::ReadRewards)?;
    }
    let items = match super::parse_i64("org_id", q.org_id.as_deref())? {
        Some(org) => state.store.points_items(org).await?,
        None => state.store.points_all_items().await?,
    };
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewItemBody {
    org_id: i64,
    name: String,
    cost: i64,
    #[serde(default)]
    window_first: Option<u16>,
    #[serde(default)]
    window_last: Option<u16>,
    #[serde(default)]
    stock: Option<i64>,
}

async fn add_item(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<NewItemBody>,
) -> ApiResult<Response> {
    c.require(Permission::ManageRewards)?;
    check_known(&state, &[], &[body.org_id]).await?;
    let window = Window::new(
        body.window_first.unwrap_or(1),
        body.window_last.unwrap_or(92),
    )?;
    if let Some(n) = body.stock {
        if n < 0 {
            return Err(ApiError::invalid("stock", "stock cannot be negative"));
        }
    }
    let item = state
        .store
        .points_add_item(
            &c.actor(),
            NewItem {
                org_id: body.org_id,
                name: body.name,
                cost: body.cost,
                window,
            },
        )
        .await?;
    let item = match body.stock.filter(|n| *n > 0) {
        Some(n) => {
            state.store.points_restock(&c.actor(), item.id, n).await?;
            state.store.points_item(item.id).await?
        }
        None => item,
    };
    Ok(created(json!({ "item": item })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Restock {
    units: i64,
}

async fn restock(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(body): JsonBody<Restock>,
) -> ApiResult<Response> {
    c.require(Permission::ManageRewards)?;
    let transfer = state
        .store
        .points_restock(&c.actor(), id, body.units)
        .await?;
    let item = state.store.points_item(id).await?;
    Ok(created(json!({ "transfer": transfer, "item": item })))
}

// ----- A rider's own -----

/// The signed-in rider's person (their ledger account is `person:{id}`).
fn rider_person(c: &Caller) -> ApiResult<i64> {
    if c.role() != Role::Rider {
        return Err(ApiError::forbidden(
            "only a rider has points of their own here",
        ));
    }
    c.account
        .person_id
        .ok_or_else(|| ApiError::not_found("person"))
}

/// A person's balance, history, redemptions and this quarter's state.
async fn statement(state: &AppState, person_id: i64) -> ApiResult<Value> {
    let store = &state.store;
    let balance = store
        .points_balance(
            lianxin_domain::points::Account::Person(person_id),
            lianxin_domain::points::Asset::Points,
        )
        .await?;
    let history = store.points_history(person_id).await?;
    let redemptions = store.points_redemptions_of(person_id).await?;
    let (year, quarter) = quarter_of(now(state));
    let this_quarter = redemptions
        .iter()
        .find(|r| r.year == i64::from(year) && r.quarter == i64::from(quarter));
    Ok(json!({
        "person_id": person_id,
        "balance": balance,
        "quarter": { "year": year, "quarter": quarter, "redeemed": this_quarter },
        "history": history,
        "redemptions": redemptions,
    }))
}

async fn me(State(state): State<AppState>, ApiCaller(c): ApiCaller) -> ApiResult<Json<Value>> {
    let person = rider_person(&c)?;
    let mut out = statement(&state, person).await?;
    out["items"] = json!(state.store.points_all_items().await?);
    Ok(Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Redeem {
    item_id: i64,
}

async fn redeem(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<Redeem>,
) -> ApiResult<Response> {
    let person = rider_person(&c)?;
    let redemption = state
        .store
        .points_redeem(&c.actor(), person, body.item_id, now(&state))
        .await
        .map_err(refusal)?;
    Ok(created(json!({ "redemption": redemption })))
}

async fn person(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRewards)?;
    check_known(&state, &[id], &[])
        .await
        .map_err(|_| ApiError::not_found("person"))?;
    Ok(Json(statement(&state, id).await?))
}

// ----- Corrections and the ledger -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Correction {
    reason: String,
}

async fn correct(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(body): JsonBody<Correction>,
) -> ApiResult<Response> {
    c.require(Permission::ManageRewards)?;
    let transfer = state
        .store
        .points_correct(&c.actor(), id, &body.reason)
        .await?;
    Ok(created(json!({ "transfer": transfer })))
}

#[derive(Deserialize)]
struct LedgerQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// The ledger's totals per asset (debits = credits, balances sum to 0) and a page of
/// transfers.
async fn ledger(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<LedgerQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRewards)?;
    let after = super::parse_i64("after", q.after.as_deref())?.unwrap_or(0);
    let limit = super::parse_limit(q.limit.as_deref(), 100, 1000)?;
    Ok(Json(json!({
        "totals": state.store.points_totals().await?,
        "transfers": state.store.points_transfers(after, limit).await?,
    })))
}

// ----- Honours -----

#[derive(Deserialize)]
struct YearQuery {
    year: Option<String>,
}

async fn honours(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    QueryParams(q): QueryParams<YearQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadRewards)?;
    let year = match super::parse_i64("year", q.year.as_deref())? {
        Some(y) => i32::try_from(y).map_err(|_| ApiError::invalid("year", "year out of range"))?,
        None => now(&state)
            .with_timezone(&lianxin_domain::calendar::SHANGHAI)
            .year(),
    };
    Ok(Json(json!({
        "year": year,
        "shortlist_size": lianxin_store::points_honours::SHORTLIST,
        "ranking": state.store.points_ranking(year).await?,
        "honours": state.store.points_honours(year).await?,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Confirm {
    year: i32,
    category: String,
    title: String,
    person_ids: Vec<i64>,
}

async fn confirm_honours(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<Confirm>,
) -> ApiResult<Response> {
    c.require(Permission::ManageRewards)?;
    let honours = state
        .store
        .points_confirm_honours(
            &c.actor(),
            body.year,
            &body.category,
            &body.title,
            body.person_ids,
        )
        .await?;
    Ok(created(json!({ "honours": honours })))
}

/// Gives the platform's own awards every [`SWEEP_EVERY`] and when kicked. The first
/// look after start (and after a rule or the issuer changes) reads every demand event;
/// the others only the events since. Runs until aborted.
pub fn spawn_sweeper(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let actor = Actor("system:points".into());
        let mut from_event = 0;
        loop {
            if state
                .rewards
                .rescan
                .swap(false, std::sync::atomic::Ordering::Relaxed)
            {
                from_event = 0;
            }
            match state
                .store
                .points_award_pending(&actor, SWEEP_LIMIT, from_event)
                .await
            {
                Ok(s) => {
                    from_event = s.next_event;
                    if s.sentinel_reports + s.volunteer_hours > 0 {
                        tracing::info!(
                            sentinel_reports = s.sentinel_reports,
                            volunteer_hours = s.volunteer_hours,
                            points = s.points,
                            "points: automatic awards given"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "points: automatic awards failed; will retry"),
            }
            let _ = tokio::time::timeout(SWEEP_EVERY, state.rewards.wake.notified()).await;
        }
    })
}
