//! Demands (诉求) and their loop: intake, steps, history, photos, the scheduler's
//! timers, the pre-summed three rates, routing rules and time limits.
//!
//! The rules of the loop are in `lianxin_domain::demand`; this module only stores
//! what the caller decided. A step is a read-decide-write in one transaction: the
//! caller's closure sees the demand as stored and returns the demand after the step,
//! and the update only lands if nobody changed the demand in between (`version`), so
//! two officials acting at once cannot both win on PostgreSQL either.
//!
//! Each demand carries one timer (`timer_at`, `timer_kind`): the next instant the
//! scheduler must look at it (a warning, the deadline, an escalation, a rating
//! reminder). Timers are rows, not tasks in memory, so a restart loses none.
//!
//! The three rates are kept as counters per accountable unit × place × receipt day
//! (`rate_cells`), changed in the same transaction as the demand; each demand remembers
//! the contribution it added (`counted_unit`, `counted_bits`) so a later change takes
//! back exactly that. The dashboard sums cells instead of scanning demands.
//!
//! Demand steps are recorded in `demand_events` (append-only) rather than in the
//! general audit trail: that table *is* the history the demand page shows, and one
//! row per step keeps intake cheap enough for a province (decision 0010).

use crate::audit::{self, Actor};
use crate::{now_text, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use lianxin_domain::calendar::TimeLimit;
use lianxin_domain::demand::{Rating, Status, Urgency};
use lianxin_domain::intake::{Channel, DemandKind};
use lianxin_domain::rates::RateCounts;
use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// A category of demand; also an Open311 service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Category {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub description: String,
    pub default_urgency: Urgency,
    /// Open311 service attributes (a JSON array of attribute definitions).
    pub attributes: Value,
    pub keywords: String,
    pub sort: i64,
    pub active: bool,
}

/// A routing rule with the names that make it readable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutingRuleRow {
    pub id: i64,
    /// `None`: every category without a rule of its own.
    pub category: Option<String>,
    pub place_id: i64,
    pub place_code: String,
    pub place_name: String,
    pub place_path: String,
    pub unit_id: i64,
    pub unit_code: String,
    pub unit_name: String,
}

/// A configured time limit; `category` `None` is the default for the urgency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeLimitRow {
    pub category: Option<String>,
    pub urgency: Urgency,
    pub time_limit: String,
}

/// A demand as stored, with the names of what it refers to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Demand {
    pub id: i64,
    pub region: String,
    pub kind: DemandKind,
    pub category: String,
    pub category_name: String,
    pub urgency: Urgency,
    pub channel: Channel,
    pub title: String,
    pub description: String,
    pub place_id: i64,
    pub place_code: String,
    pub place_name: String,
    pub place_path: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub address: Option<String>,
    /// Answers to the category's attributes (Open311), a JSON object.
    pub attributes: Option<Value>,
    pub reporter_account_id: Option<i64>,
    pub reporter_name: Option<String>,
    /// The reporter's phone, masked (138****5678); the full number is encrypted.
    pub reporter_phone_masked: Option<String>,
    pub status: Status,
    pub owner_id: i64,
    pub owner_name: String,
    pub handler_id: Option<i64>,
    pub handler_name: Option<String>,
    pub transfer_to: Option<i64>,
    pub transfer_to_name: Option<String>,
    /// The unit above that supervises an overdue demand (督办).
    pub supervisor_id: Option<i64>,
    pub supervisor_name: Option<String>,
    pub escalation_level: i64,
    /// When the current step is due.
    pub deadline: DateTime<Utc>,
    pub response_deadline: DateTime<Utc>,
    pub handling_deadline: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub rating: Option<Rating>,
    pub reopened: i64,
    pub overdue: bool,
    /// The warning (or, once answered, the rating reminder) for the current deadline
    /// has been sent.
    pub warned: bool,
    /// When the current deadline was set (the start of the current step).
    pub step_at: DateTime<Utc>,
    pub answer: Option<String>,
    pub merged_into: Option<i64>,
    pub visit_id: Option<i64>,
    pub timer_at: Option<DateTime<Utc>>,
    pub timer_kind: Option<String>,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub photo_count: i64,
    /// The unit whose rate cell holds this demand's contribution.
    #[serde(skip)]
    pub counted_unit: i64,
    /// The contribution (see `RateCounts::to_bits`).
    #[serde(skip)]
    pub counted_bits: u16,
}

/// One step in a demand's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DemandEvent {
    pub id: i64,
    pub demand_id: i64,
    pub at: DateTime<Utc>,
    /// `account:ID`, `token:ID`, `reporter`, or `system:scheduler`.
    pub actor: String,
    pub actor_name: String,
    pub action: String,
    pub from_status: Option<Status>,
    pub to_status: Status,
    pub unit_id: Option<i64>,
    pub unit_name: Option<String>,
    pub note: Option<String>,
}

/// A warning or reminder the scheduler raised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub id: i64,
    pub demand_id: i64,
    pub demand_title: String,
    pub unit_id: Option<i64>,
    pub account_id: Option<i64>,
    pub kind: String,
    pub at: DateTime<Utc>,
}

/// A photo to store with a new demand (already checked by the caller).
#[derive(Debug, Clone)]
pub struct NewPhoto {
    pub content_type: String,
    pub sha256: String,
    pub bytes: Vec<u8>,
}

/// A new demand, validated, routed and timed by the caller.
#[derive(Debug, Clone)]
pub struct NewDemand {
    pub region: String,
    pub kind: DemandKind,
    pub category: String,
    pub urgency: Urgency,
    pub channel: Channel,
    pub title: String,
    pub description: String,
    pub place_id: i64,
    pub place_path: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub address: Option<String>,
    pub attributes: Option<Value>,
    pub reporter_account_id: Option<i64>,
    pub reporter_name: Option<String>,
    /// (ciphertext, keyed hash, mask)
    pub reporter_phone: Option<(String, String, String)>,
    pub token_hash: String,
    /// `received`, or `assigned` when intake dispatches at once (a property repair).
    pub status: Status,
    pub owner_id: i64,
    /// The handling unit when intake dispatches at once.
    pub handler_id: Option<i64>,
    pub deadline: DateTime<Utc>,
    pub response_deadline: DateTime<Utc>,
    pub handling_deadline: DateTime<Utc>,
    pub timer_at: Option<DateTime<Utc>>,
    pub timer_kind: Option<String>,
    pub counted_bits: u16,
    pub received_at: DateTime<Utc>,
    pub visit_id: Option<i64>,
    pub photos: Vec<NewPhoto>,
    pub event: NewEvent,
}

/// The history entry a step writes.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub actor: String,
    pub actor_name: String,
    pub action: String,
    pub unit_id: Option<i64>,
    pub note: Option<String>,
}

/// A notice a step raises.
#[derive(Debug, Clone)]
pub struct NewNotice {
    pub unit_id: Option<i64>,
    pub account_id: Option<i64>,
    pub kind: String,
}

/// What a step decided: the demand after it, and what to record.
#[derive(Debug, Clone)]
pub struct Step {
    /// When the step happened (the desk's clock): its history entry and `updated_at`.
    pub at: DateTime<Utc>,
    pub next: Demand,
    /// `None` when only timers or counters moved (nothing the history shows).
    pub event: Option<NewEvent>,
    pub notices: Vec<NewNotice>,
}

/// Which demands to list. Empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct DemandQuery {
    pub ids: Vec<i64>,
    pub categories: Vec<String>,
    pub statuses: Vec<Status>,
    pub received_from: Option<DateTime<Utc>>,
    pub received_before: Option<DateTime<Utc>>,
    /// Visible to a staff caller: the place is under this path prefix …
    pub place_path: Option<String>,
    /// … or one of these units owns, handles, is offered or supervises it. `None`
    /// with no `place_path`: no restriction.
    pub units: Option<Vec<i64>>,
    pub reporter_account_id: Option<i64>,
    /// Only demands that came by these channels.
    pub channels: Vec<Channel>,
    /// Leave out demands of these kinds.
    pub exclude_kinds: Vec<DemandKind>,
    pub overdue_only: bool,
    /// Newest first when false; by deadline (the worker's queue) when true.
    pub by_deadline: bool,
    pub limit: i64,
    pub offset: i64,
}

/// How the dashboard groups the rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateGroup {
    Total,
    Unit,
    Place,
    Day,
}

/// Rate counts summed for one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateRow {
    /// The unit or place id, or the day, as text; empty for the total.
    pub key: String,
    pub name: String,
    pub counts: RateCounts,
}

/// The outcome of claiming an Idempotency-Key.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// First use: go ahead, then record the response.
    New,
    /// Seen with the same request: here is the response.
    Replay { status: u16, body: String },
    /// Seen with a different request.
    Mismatch,
    /// The first request is still running.
    InFlight,
}

const DEMAND_COLUMNS: &str = "d.id, d.region, d.kind, d.category, c.name_zh AS category_name, d.urgency, \
     d.channel, d.title, d.description, d.place_id, p.code AS place_code, p.name AS place_name, \
     d.place_path, d.lat, d.lon, d.address, d.attributes, d.reporter_account_id, d.reporter_name, \
     d.reporter_phone_masked, d.status, d.owner_id, ow.name AS owner_name, d.handler_id, \
     h.name AS handler_name, d.transfer_to, tt.name AS transfer_to_name, d.supervisor_id, \
     sv.name AS supervisor_name, d.escalation_level, d.deadline, d.response_deadline, \
     d.handling_deadline, d.first_response_at, d.rating, d.reopened, d.overdue, d.warned, d.step_at, d.answer, \
     d.merged_into, d.visit_id, d.timer_at, d.timer_kind, d.received_at, d.updated_at, \
     d.closed_at, d.version, d.counted_unit, d.counted_bits, \
     (SELECT COUNT(*) FROM demand_photos ph WHERE ph.demand_id = d.id) AS photo_count";

const DEMAND_FROM: &str = "FROM demands d \
     JOIN demand_categories c ON c.code = d.category \
     JOIN places p ON p.id = d.place_id \
     JOIN orgs ow ON ow.id = d.owner_id \
     LEFT JOIN orgs h ON h.id = d.handler_id \
     LEFT JOIN orgs tt ON tt.id = d.transfer_to \
     LEFT JOIN orgs sv ON sv.id = d.supervisor_id";

/// The stored form of an instant: RFC 3339, UTC, milliseconds (sorts as text).
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Config(format!("bad stored time {s:?}: {e}")))
}

pub(crate) fn opt_ts(row: &AnyRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    row.try_get::<Option<String>, _>(col)?
        .as_deref()
        .map(parse_ts)
        .transpose()
}

fn stored<T>(parsed: std::result::Result<T, lianxin_domain::ValidationError>) -> Result<T> {
    parsed.map_err(|e| StoreError::Config(format!("bad stored value: {}", e.message)))
}

fn demand_from_row(row: &AnyRow) -> Result<Demand> {
    let json = |col: &str| -> Result<Option<Value>> {
        Ok(row
            .try_get::<Option<String>, _>(col)?
            .and_then(|s| serde_json::from_str(&s).ok()))
    };
    Ok(Demand {
        id: row.try_get("id")?,
        region: row.try_get("region")?,
        kind: stored(DemandKind::parse(&row.try_get::<String, _>("kind")?))?,
        category: row.try_get("category")?,
        category_name: row.try_get("category_name")?,
        urgency: stored(Urgency::parse(&row.try_get::<String, _>("urgency")?))?,
        channel: stored(Channel::parse(&row.try_get::<String, _>("channel")?))?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        place_id: row.try_get("place_id")?,
        place_code: row.try_get("place_code")?,
        place_name: row.try_get("place_name")?,
        place_path: row.try_get("place_path")?,
        lat: row.try_get("lat")?,
        lon: row.try_get("lon")?,
        address: row.try_get("address")?,
        attributes: json("attributes")?,
        reporter_account_id: row.try_get("reporter_account_id")?,
        reporter_name: row.try_get("reporter_name")?,
        reporter_phone_masked: row.try_get("reporter_phone_masked")?,
        status: stored(Status::parse(&row.try_get::<String, _>("status")?))?,
        owner_id: row.try_get("owner_id")?,
        owner_name: row.try_get("owner_name")?,
        handler_id: row.try_get("handler_id")?,
        handler_name: row.try_get("handler_name")?,
        transfer_to: row.try_get("transfer_to")?,
        transfer_to_name: row.try_get("transfer_to_name")?,
        supervisor_id: row.try_get("supervisor_id")?,
        supervisor_name: row.try_get("supervisor_name")?,
        escalation_level: row.try_get("escalation_level")?,
        deadline: parse_ts(&row.try_get::<String, _>("deadline")?)?,
        response_deadline: parse_ts(&row.try_get::<String, _>("response_deadline")?)?,
        handling_deadline: parse_ts(&row.try_get::<String, _>("handling_deadline")?)?,
        first_response_at: opt_ts(row, "first_response_at")?,
        rating: row
            .try_get::<Option<String>, _>("rating")?
            .map(|r| stored(Rating::parse(&r)))
            .transpose()?,
        reopened: row.try_get("reopened")?,
        overdue: row.try_get::<i64, _>("overdue")? != 0,
        warned: row.try_get::<i64, _>("warned")? != 0,
        step_at: parse_ts(&row.try_get::<String, _>("step_at")?)?,
        answer: row.try_get("answer")?,
        merged_into: row.try_get("merged_into")?,
        visit_id: row.try_get("visit_id")?,
        timer_at: opt_ts(row, "timer_at")?,
        timer_kind: row.try_get("timer_kind")?,
        received_at: parse_ts(&row.try_get::<String, _>("received_at")?)?,
        updated_at: parse_ts(&row.try_get::<String, _>("updated_at")?)?,
        closed_at: opt_ts(row, "closed_at")?,
        version: row.try_get("version")?,
        photo_count: row.try_get("photo_count")?,
        counted_unit: row.try_get("counted_unit")?,
        counted_bits: u16::try_from(row.try_get::<i64, _>("counted_bits")?)
            .map_err(|_| StoreError::Config("bad stored rate bits".into()))?,
    })
}

fn category_from_row(row: &AnyRow) -> Result<Category> {
    Ok(Category {
        code: row.try_get("code")?,
        name_zh: row.try_get("name_zh")?,
        name_en: row.try_get("name_en")?,
        description: row.try_get("description")?,
        default_urgency: stored(Urgency::parse(
            &row.try_get::<String, _>("default_urgency")?,
        ))?,
        attributes: serde_json::from_str(&row.try_get::<String, _>("attributes")?)
            .unwrap_or(Value::Array(vec![])),
        keywords: row.try_get("keywords")?,
        sort: row.try_get("sort")?,
        active: row.try_get::<i64, _>("active")? != 0,
    })
}

async fn insert_event(
    conn: &mut AnyConnection,
    demand_id: i64,
    region: &str,
    at: &str,
    from: Option<Status>,
    to: Status,
    e: &NewEvent,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO demand_events (demand_id, region, at, actor, actor_name, action, from_status, \
         to_status, unit_id, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(demand_id)
    .bind(region)
    .bind(at)
    .bind(&e.actor)
    .bind(&e.actor_name)
    .bind(&e.action)
    .bind(from.map(Status::as_str))
    .bind(to.as_str())
    .bind(e.unit_id)
    .bind(&e.note)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn fetch_demand(conn: &mut AnyConnection, id: i64) -> Result<Demand> {
    let row = sqlx::query(&format!(
        "SELECT {DEMAND_COLUMNS} {DEMAND_FROM} WHERE d.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::not_found("demand"))?;
    demand_from_row(&row)
}

/// A list of ids as SQL text (they are integers, never user text).
fn id_list(ids: &[i64]) -> String {
    if ids.is_empty() {
        "NULL".into()
    } else {
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    }
}

impl Store {
    // ----- categories, routing rules, time limits, calendars -----

    pub async fn categories(&self, active_only: bool) -> Result<Vec<Category>> {
        let rows = sqlx::query(&format!(
            "SELECT code, name_zh, name_en, description, default_urgency, attributes, keywords, sort, active \
             FROM demand_categories {} ORDER BY sort, code",
            if active_only { "WHERE active = 1" } else { "" }
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(category_from_row).collect()
    }

    pub async fn category(&self, code: &str) -> Result<Option<Category>> {
        sqlx::query(
            "SELECT code, name_zh, name_en, description, default_urgency, attributes, keywords, sort, active \
             FROM demand_categories WHERE code = $1",
        )
        .bind(code)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(category_from_row)
        .transpose()
    }

    /// Creates or replaces a category (audited).
    pub async fn upsert_category(&self, actor: &Actor, c: &Category) -> Result<()> {
        let (actor, c) = (actor.clone(), c.clone());
        self.write(move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO demand_categories (code, name_zh, name_en, description, default_urgency, \
                     attributes, keywords, sort, active) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (code) DO UPDATE SET name_zh = excluded.name_zh, name_en = excluded.name_en, \
                     description = excluded.description, default_urgency = excluded.default_urgency, \
                     attributes = excluded.attributes, keywords = excluded.keywords, sort = excluded.sort, \
                     active = excluded.active",
                )
                .bind(&c.code)
                .bind(&c.name_zh)
                .bind(&c.name_en)
                .bind(&c.description)
                .bind(c.default_urgency.as_str())
                .bind(c.attributes.to_string())
                .bind(&c.keywords)
                .bind(c.sort)
                .bind(i64::from(c.active))
                .execute(&mut *tx)
                .await?;
                audit::append(tx, &actor, "upsert", "demand_category", &c.code, None::<&()>, Some(&c))
                    .await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn routing_rules(&self) -> Result<Vec<RoutingRuleRow>> {
        let rows = sqlx::query(
            "SELECT r.id, r.category, r.place_id, p.code AS place_code, p.name AS place_name, \
             p.path AS place_path, r.unit_id, o.code AS unit_code, o.name AS unit_name \
             FROM routing_rules r JOIN places p ON p.id = r.place_id JOIN orgs o ON o.id = r.unit_id \
             ORDER BY p.path, r.category",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let category: String = row.try_get("category")?;
                Ok(RoutingRuleRow {
                    id: row.try_get("id")?,
                    category: (!category.is_empty()).then_some(category),
                    place_id: row.try_get("place_id")?,
                    place_code: row.try_get("place_code")?,
                    place_name: row.try_get("place_name")?,
                    place_path: row.try_get("place_path")?,
                    unit_id: row.try_get("unit_id")?,
                    unit_code: row.try_get("unit_code")?,
                    unit_name: row.try_get("unit_name")?,
                })
            })
            .collect()
    }

    /// Adds a routing rule (audited). The caller has checked that the category, place
    /// and unit exist; a second rule for the same category and place is a conflict.
    pub async fn create_routing_rule(
        &self,
        actor: &Actor,
        category: Option<&str>,
        place_id: i64,
        unit_id: i64,
    ) -> Result<i64> {
        let actor = actor.clone();
        let category = category.unwrap_or_default().to_string();
        self.write(move |tx| {
            Box::pin(async move {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO routing_rules (category, place_id, unit_id, created_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(&category)
                .bind(place_id)
                .bind(unit_id)
                .bind(now_text())
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict { .. } => StoreError::conflict(
                        "category",
                        "a rule for this category and place already exists; delete it first",
                    ),
                    other => other,
                })?;
                let after = serde_json::json!({"category": category, "place_id": place_id, "unit_id": unit_id});
                audit::append(tx, &actor, "create", "routing_rule", &id.to_string(), None::<&()>, Some(&after))
                    .await?;
                Ok(id)
            })
        })
        .await
    }

    pub async fn delete_routing_rule(&self, actor: &Actor, id: i64) -> Result<()> {
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let row = sqlx::query(
                    "DELETE FROM routing_rules WHERE id = $1 RETURNING category, place_id, unit_id",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::not_found("routing rule"))?;
                let before = serde_json::json!({
                    "category": row.try_get::<String, _>("category")?,
                    "place_id": row.try_get::<i64, _>("place_id")?,
                    "unit_id": row.try_get::<i64, _>("unit_id")?,
                });
                audit::append(
                    tx,
                    &actor,
                    "delete",
                    "routing_rule",
                    &id.to_string(),
                    Some(&before),
                    None::<&()>,
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn time_limits(&self) -> Result<Vec<TimeLimitRow>> {
        let rows = sqlx::query(
            "SELECT category, urgency, time_limit FROM time_limits ORDER BY category, urgency",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let category: String = row.try_get("category")?;
                Ok(TimeLimitRow {
                    category: (!category.is_empty()).then_some(category),
                    urgency: stored(Urgency::parse(&row.try_get::<String, _>("urgency")?))?,
                    time_limit: row.try_get("time_limit")?,
                })
            })
            .collect()
    }

    /// Sets (or with `None`, removes) a time limit (audited).
    pub async fn set_time_limit(
        &self,
        actor: &Actor,
        category: Option<&str>,
        urgency: Urgency,
        limit: Option<TimeLimit>,
    ) -> Result<()> {
        let actor = actor.clone();
        let category = category.unwrap_or_default().to_string();
        self.write(move |tx| {
            Box::pin(async move {
                match limit {
                    Some(l) => {
                        sqlx::query(
                            "INSERT INTO time_limits (category, urgency, time_limit) VALUES ($1, $2, $3) \
                             ON CONFLICT (category, urgency) DO UPDATE SET time_limit = excluded.time_limit",
                        )
                        .bind(&category)
                        .bind(urgency.as_str())
                        .bind(l.to_string())
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM time_limits WHERE category = $1 AND urgency = $2")
                            .bind(&category)
                            .bind(urgency.as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                let key = format!("{category}/{}", urgency.as_str());
                let after = limit.map(|l| l.to_string());
                audit::append(tx, &actor, "set", "time_limit", &key, None::<&()>, Some(&after)).await?;
                Ok(())
            })
        })
        .await
    }

    /// Holiday calendars admins added, by year (TOML text as in `data/`).
    pub async fn calendar_years(&self) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query("SELECT year, toml FROM calendar_years ORDER BY year")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("year")?, r.try_get("toml")?)))
            .collect()
    }

    pub async fn set_calendar_year(&self, actor: &Actor, year: i64, toml: &str) -> Result<()> {
        let (actor, toml) = (actor.clone(), toml.to_string());
        self.write(move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO calendar_years (year, toml, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (year) DO UPDATE SET toml = excluded.toml, updated_at = excluded.updated_at",
                )
                .bind(year)
                .bind(&toml)
                .bind(now_text())
                .execute(&mut *tx)
                .await?;
                audit::append(tx, &actor, "set", "calendar_year", &year.to_string(), None::<&()>, Some(&toml))
                    .await?;
                Ok(())
            })
        })
        .await
    }

    // ----- demands -----

    /// Stores a new demand with its photos, its first history entry and its rate
    /// contribution, in one transaction. Returns its id.
    pub async fn insert_demand(&self, d: NewDemand) -> Result<i64> {
        let ids = self
            .write(move |tx| {
                Box::pin(async move { insert_demands(tx, std::slice::from_ref(&d)).await })
            })
            .await?;
        ids.first()
            .copied()
            .ok_or_else(|| StoreError::Config("a new demand's id was not returned".into()))
    }

    /// Stores several new demands in one write (the desk's intake batches): all of
    /// them or, on an error, none. Returns their ids in order.
    pub async fn insert_demands(&self, demands: Vec<NewDemand>) -> Result<Vec<i64>> {
        self.write(move |tx| Box::pin(async move { insert_demands(tx, &demands).await }))
            .await
    }

    /// Stores many demands in one transaction (imports and the benchmark's fill):
    /// all or nothing, the first failure named by its row (index + 2).
    pub async fn import_demands(
        &self,
        demands: &[NewDemand],
    ) -> Result<usize, crate::error::ImportError> {
        let mut tx = self
            .writer
            .begin()
            .await
            .map_err(|e| StoreError::from(e).at_row(0))?;
        if insert_demands(&mut tx, demands).await.is_ok() {
            tx.commit()
                .await
                .map_err(|e| StoreError::from(e).at_row(0))?;
            return Ok(demands.len());
        }
        // Something failed: nothing is kept; find the first row that fails on its own.
        tx.rollback()
            .await
            .map_err(|e| StoreError::from(e).at_row(0))?;
        let mut tx = self
            .writer
            .begin()
            .await
            .map_err(|e| StoreError::from(e).at_row(0))?;
        for (i, d) in demands.iter().enumerate() {
            insert_demands(&mut tx, std::slice::from_ref(d))
                .await
                .map_err(|e| e.at_row(i + 2))?;
        }
        // Every row went in alone, so the batch failed on a conflict between rows.
        Err(StoreError::conflict("token_hash", "two rows of the import conflict").at_row(0))
    }

    pub async fn demand(&self, id: i64) -> Result<Demand> {
        let mut conn = self.reader.acquire().await?;
        fetch_demand(&mut conn, id).await
    }

    /// The demand a public tracking token (its hash) stands for.
    pub async fn demand_by_token(&self, token_hash: &str) -> Result<Option<Demand>> {
        sqlx::query(&format!(
            "SELECT {DEMAND_COLUMNS} {DEMAND_FROM} WHERE d.token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(demand_from_row)
        .transpose()
    }

    /// The reporter's phone number, encrypted, for the officials who must call back.
    pub async fn demand_reporter_phone_enc(&self, id: i64) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT reporter_phone_enc FROM demands WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.reader)
                .await?
                .flatten(),
        )
    }

    pub async fn demand_events(&self, id: i64) -> Result<Vec<DemandEvent>> {
        let rows = sqlx::query(
            "SELECT e.id, e.demand_id, e.at, e.actor, e.actor_name, e.action, e.from_status, e.to_status, \
             e.unit_id, o.name AS unit_name, e.note FROM demand_events e LEFT JOIN orgs o ON o.id = e.unit_id \
             WHERE e.demand_id = $1 ORDER BY e.id",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DemandEvent {
                    id: row.try_get("id")?,
                    demand_id: row.try_get("demand_id")?,
                    at: parse_ts(&row.try_get::<String, _>("at")?)?,
                    actor: row.try_get("actor")?,
                    actor_name: row.try_get("actor_name")?,
                    action: row.try_get("action")?,
                    from_status: row
                        .try_get::<Option<String>, _>("from_status")?
                        .map(|s| stored(Status::parse(&s)))
                        .transpose()?,
                    to_status: stored(Status::parse(&row.try_get::<String, _>("to_status")?))?,
                    unit_id: row.try_get("unit_id")?,
                    unit_name: row.try_get("unit_name")?,
                    note: row.try_get("note")?,
                })
            })
            .collect()
    }

    /// The ids of a demand's photos, in upload order.
    pub async fn demand_photo_ids(&self, demand_id: i64) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM demand_photos WHERE demand_id = $1 ORDER BY id")
                .bind(demand_id)
                .fetch_all(&self.reader)
                .await?,
        )
    }

    /// A photo's type and bytes.
    pub async fn demand_photo(&self, demand_id: i64, photo_id: i64) -> Result<(String, Vec<u8>)> {
        let row = sqlx::query(
            "SELECT content_type, bytes FROM demand_photos WHERE demand_id = $1 AND id = $2",
        )
        .bind(demand_id)
        .bind(photo_id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::not_found("photo"))?;
        Ok((row.try_get("content_type")?, row.try_get("bytes")?))
    }

    /// Takes one step: reads the demand, lets `decide` work out the demand after the
    /// step, and writes it with its history entry, notices and rate change — unless
    /// the demand changed meanwhile, which is a conflict.
    pub async fn demand_step<F>(&self, id: i64, decide: F) -> Result<Demand>
    where
        F: FnOnce(&Demand) -> Result<Step> + Send + 'static,
    {
        self.write(move |tx| {
            Box::pin(async move {
                let before = fetch_demand(tx, id).await?;
                let step = decide(&before)?;
                apply_step(tx, &before, &step).await?;
                fetch_demand(tx, id).await
            })
        })
        .await
    }

    pub async fn search_demands(&self, q: &DemandQuery) -> Result<Vec<Demand>> {
        let mut sql = format!("SELECT {DEMAND_COLUMNS} {DEMAND_FROM} WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let bind = |v: String, binds: &mut Vec<String>| {
            binds.push(v);
            format!("${}", binds.len())
        };
        if !q.ids.is_empty() {
            sql.push_str(&format!(" AND d.id IN ({})", id_list(&q.ids)));
        }
        if !q.categories.is_empty() {
            let ps: Vec<String> = q
                .categories
                .iter()
                .map(|c| bind(c.clone(), &mut binds))
                .collect();
            sql.push_str(&format!(" AND d.category IN ({})", ps.join(",")));
        }
        if !q.statuses.is_empty() {
            let ps: Vec<String> = q
                .statuses
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            sql.push_str(&format!(" AND d.status IN ({})", ps.join(",")));
        }
        if let Some(t) = q.received_from {
            let p = bind(ts(t), &mut binds);
            sql.push_str(&format!(" AND d.received_at >= {p}"));
        }
        if let Some(t) = q.received_before {
            let p = bind(ts(t), &mut binds);
            sql.push_str(&format!(" AND d.received_at < {p}"));
        }
        match (&q.place_path, &q.units) {
            (None, None) => {}
            (place, units) => {
                let mut any = Vec::new();
                if let Some(path) = place {
                    let p = bind(format!("{path}%"), &mut binds);
                    any.push(format!("d.place_path LIKE {p}"));
                }
                if let Some(units) = units {
                    if !units.is_empty() {
                        let l = id_list(units);
                        any.push(format!(
                            "d.owner_id IN ({l}) OR d.handler_id IN ({l}) OR d.transfer_to IN ({l}) \
                             OR d.supervisor_id IN ({l})"
                        ));
                    }
                }
                if any.is_empty() {
                    any.push("1 = 0".into());
                }
                sql.push_str(&format!(" AND ({})", any.join(" OR ")));
            }
        }
        if let Some(a) = q.reporter_account_id {
            sql.push_str(&format!(" AND d.reporter_account_id = {a}"));
        }
        if !q.channels.is_empty() {
            let l: Vec<String> = q
                .channels
                .iter()
                .map(|c| format!("'{}'", c.as_str()))
                .collect();
            sql.push_str(&format!(" AND d.channel IN ({})", l.join(",")));
        }
        if !q.exclude_kinds.is_empty() {
            let l: Vec<String> = q
                .exclude_kinds
                .iter()
                .map(|k| format!("'{}'", k.as_str()))
                .collect();
            sql.push_str(&format!(" AND d.kind NOT IN ({})", l.join(",")));
        }
        if q.overdue_only {
            sql.push_str(" AND d.overdue = 1");
        }
        sql.push_str(if q.by_deadline {
            " ORDER BY CASE WHEN d.status IN ('closed','rejected','merged') THEN 1 ELSE 0 END, d.deadline, d.id"
        } else {
            " ORDER BY d.id DESC"
        });
        sql.push_str(&format!(
            " LIMIT {} OFFSET {}",
            q.limit.clamp(1, 10_000),
            q.offset.max(0)
        ));
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter().map(demand_from_row).collect()
    }

    /// Demands whose timer is due at `now`, earliest first.
    pub async fn due_demands(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM demands WHERE timer_at IS NOT NULL AND timer_at <= $1 ORDER BY timer_at LIMIT $2",
        )
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?)
    }

    /// The earliest pending timer, if any (the scheduler sleeps until then).
    pub async fn next_timer(&self) -> Result<Option<DateTime<Utc>>> {
        let next: Option<String> = sqlx::query_scalar(
            "SELECT timer_at FROM demands WHERE timer_at IS NOT NULL ORDER BY timer_at LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        next.as_deref().map(parse_ts).transpose()
    }

    /// The notices for these units (`None`: every unit's) or this account, newest first.
    pub async fn notices(
        &self,
        units: Option<&[i64]>,
        account_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Notice>> {
        let rows = sqlx::query(&format!(
            "SELECT n.id, n.demand_id, d.title AS demand_title, n.unit_id, n.account_id, n.kind, n.at \
             FROM demand_notices n JOIN demands d ON d.id = n.demand_id \
             WHERE {} OR n.account_id = $1 ORDER BY n.id DESC LIMIT $2",
            match units {
                Some(u) => format!("n.unit_id IN ({})", id_list(u)),
                None => "n.unit_id IS NOT NULL".into(),
            }
        ))
        .bind(account_id.unwrap_or(-1))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Notice {
                    id: row.try_get("id")?,
                    demand_id: row.try_get("demand_id")?,
                    demand_title: row.try_get("demand_title")?,
                    unit_id: row.try_get("unit_id")?,
                    account_id: row.try_get("account_id")?,
                    kind: row.try_get("kind")?,
                    at: parse_ts(&row.try_get::<String, _>("at")?)?,
                })
            })
            .collect()
    }

    /// The ids of the organisations inside a data scope (`None`: every one).
    pub async fn units_in_scope(
        &self,
        scope: &lianxin_domain::role::DataScope,
    ) -> Result<Option<Vec<i64>>> {
        if scope.place_path.is_none() && scope.org_path.is_none() {
            return Ok(None);
        }
        let (org_like, place_like) = crate::registry::scope_patterns(scope);
        Ok(Some(
            sqlx::query_scalar(&format!(
                "SELECT o.id FROM orgs o WHERE {}",
                crate::registry::ORG_IN_SCOPE
            ))
            .bind(org_like)
            .bind(place_like)
            .fetch_all(&self.reader)
            .await?,
        ))
    }

    // ----- the three rates -----

    /// Sums the rate cells of demands received on Shanghai days `from..=to`, within a
    /// place subtree and (optionally) for some units, grouped as asked.
    pub async fn rate_counts(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        place_path: Option<&str>,
        units: Option<&[i64]>,
        group: RateGroup,
    ) -> Result<Vec<RateRow>> {
        let (key, name, join, group_by) = match group {
            RateGroup::Total => ("''", "''", "", ""),
            RateGroup::Unit => (
                "CAST(r.unit_id AS TEXT)",
                "o.name",
                "JOIN orgs o ON o.id = r.unit_id",
                "GROUP BY r.unit_id, o.name",
            ),
            RateGroup::Place => (
                "CAST(r.place_id AS TEXT)",
                "p.name",
                "JOIN places p ON p.id = r.place_id",
                "GROUP BY r.place_id, p.name",
            ),
            RateGroup::Day => ("r.day", "r.day", "", "GROUP BY r.day"),
        };
        let sums = RATE_FIELDS
            .iter()
            .map(|f| format!("CAST(COALESCE(SUM(r.{f}), 0) AS BIGINT) AS {f}"))
            .collect::<Vec<_>>()
            .join(", ");
        let unit_filter = match units {
            Some(u) => format!(" AND r.unit_id IN ({})", id_list(u)),
            None => String::new(),
        };
        // Without a place the days alone select the cells (a range of the key); a
        // place subtree adds its prefix, which the place index serves.
        let place_filter = if place_path.is_some() {
            " AND r.place_path LIKE $3"
        } else {
            ""
        };
        // A period reads whole months from the month cells and only its edge days from
        // the day cells; a chart by day reads days.
        let segments = if group == RateGroup::Day {
            vec![("d", from.to_string(), to.to_string())]
        } else {
            cell_periods(from, to)
        };
        let mut merged: std::collections::BTreeMap<String, RateRow> = Default::default();
        for (grain, first, last) in segments {
            let sql = format!(
                "SELECT {key} AS k, {name} AS n, {sums} FROM rate_cells r {join} \
                 WHERE r.grain = '{grain}' AND r.day >= $1 AND r.day <= $2{place_filter}{unit_filter} \
                 {group_by}"
            );
            let mut query = sqlx::query(&sql).bind(first).bind(last);
            if let Some(path) = place_path {
                query = query.bind(format!("{path}%"));
            }
            for row in query.fetch_all(&self.reader).await? {
                let row = rate_row(&row)?;
                // SUM over no cells gives one all-zero row for the total; skip those.
                if group == RateGroup::Total && row.counts == RateCounts::default() {
                    continue;
                }
                match merged.get_mut(&row.key) {
                    Some(have) => have.counts.merge(&row.counts),
                    None => {
                        merged.insert(row.key.clone(), row);
                    }
                }
            }
        }
        let mut rows: Vec<RateRow> = merged.into_values().collect();
        if group != RateGroup::Day {
            // Ids sort as numbers, not as text.
            rows.sort_by_key(|r| r.key.parse::<i64>().unwrap_or(i64::MIN));
        }
        if group == RateGroup::Total && rows.is_empty() {
            rows.push(RateRow {
                key: String::new(),
                name: String::new(),
                counts: RateCounts::default(),
            });
        }
        Ok(rows)
    }

    /// The same totals as [`Store::rate_counts`] with [`RateGroup::Total`], computed the
    /// slow way: by reading every demand and judging it now. The benchmark's baseline,
    /// and the check that the cells are right.
    pub async fn rate_counts_by_scan(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        place_path: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<RateCounts> {
        use futures::TryStreamExt;
        use lianxin_domain::rates::DemandOutcome;
        let start = lianxin_domain::calendar::day_start(from);
        let end = lianxin_domain::calendar::day_start(to + chrono::Duration::days(1));
        let mut rows = sqlx::query(
            "SELECT received_at, response_deadline, handling_deadline, first_response_at, status, rating \
             FROM demands WHERE received_at >= $1 AND received_at < $2 AND place_path LIKE $3",
        )
        .bind(ts(start))
        .bind(ts(end))
        .bind(format!("{}%", place_path.unwrap_or("/")))
        .fetch(&self.reader);
        let mut total = RateCounts::default();
        while let Some(row) = rows.try_next().await? {
            let outcome = DemandOutcome {
                received_at: parse_ts(&row.try_get::<String, _>("received_at")?)?,
                response_deadline: parse_ts(&row.try_get::<String, _>("response_deadline")?)?,
                handling_deadline: parse_ts(&row.try_get::<String, _>("handling_deadline")?)?,
                first_response_at: opt_ts(&row, "first_response_at")?,
                status: stored(Status::parse(&row.try_get::<String, _>("status")?))?,
                rating: row
                    .try_get::<Option<String>, _>("rating")?
                    .map(|r| stored(Rating::parse(&r)))
                    .transpose()?,
            };
            total.add(&outcome, now);
        }
        Ok(total)
    }

    // ----- idempotency keys -----

    /// Claims `key` for a request whose hash is `request_hash`. A claim left in flight
    /// for longer than `stale_after_secs` (its request died with the process) is taken
    /// over.
    pub async fn claim_idempotency_key(
        &self,
        key: &str,
        request_hash: &str,
        stale_after_secs: i64,
    ) -> Result<Claim> {
        let (key, request_hash) = (key.to_string(), request_hash.to_string());
        self.write(move |tx| {
            Box::pin(async move {
                let row = sqlx::query(
                    "SELECT request_hash, status, body, created_at FROM idempotency_keys WHERE key = $1",
                )
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await?;
                let now = now_text();
                match row {
                    None => {
                        sqlx::query(
                            "INSERT INTO idempotency_keys (key, request_hash, created_at) VALUES ($1, $2, $3)",
                        )
                        .bind(&key)
                        .bind(&request_hash)
                        .bind(&now)
                        .execute(&mut *tx)
                        .await?;
                        Ok(Claim::New)
                    }
                    Some(row) => {
                        let stored_hash: String = row.try_get("request_hash")?;
                        if stored_hash != request_hash {
                            return Ok(Claim::Mismatch);
                        }
                        let status: Option<i64> = row.try_get("status")?;
                        if let Some(status) = status {
                            return Ok(Claim::Replay {
                                status: u16::try_from(status).unwrap_or(200),
                                body: row.try_get::<Option<String>, _>("body")?.unwrap_or_default(),
                            });
                        }
                        let created = parse_ts(&row.try_get::<String, _>("created_at")?)?;
                        if (Utc::now() - created).num_seconds() > stale_after_secs {
                            sqlx::query("UPDATE idempotency_keys SET created_at = $1 WHERE key = $2")
                                .bind(&now)
                                .bind(&key)
                                .execute(&mut *tx)
                                .await?;
                            return Ok(Claim::New);
                        }
                        Ok(Claim::InFlight)
                    }
                }
            })
        })
        .await
    }

    /// Records the response to a claimed key.
    pub async fn record_idempotent_response(
        &self,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<()> {
        let (key, body) = (key.to_string(), body.to_string());
        self.write(move |tx| {
            Box::pin(async move {
                sqlx::query("UPDATE idempotency_keys SET status = $1, body = $2 WHERE key = $3")
                    .bind(i64::from(status))
                    .bind(&body)
                    .bind(&key)
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Forgets a claim whose request failed before doing anything (so a retry runs).
    pub async fn release_idempotency_key(&self, key: &str) -> Result<()> {
        let key = key.to_string();
        self.write(move |tx| {
            Box::pin(async move {
                sqlx::query("DELETE FROM idempotency_keys WHERE key = $1 AND status IS NULL")
                    .bind(&key)
                    .execute(&mut *tx)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Deletes keys older than `before` (they are kept for a day).
    pub async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64> {
        let before = ts(before);
        self.write(move |tx| {
            Box::pin(async move {
                Ok(
                    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                        .bind(&before)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected(),
                )
            })
        })
        .await
    }
}

/// The cells that cover the days `from..=to`: the whole months inside it at the month
/// grain, the days before and after them at the day grain. (grain, first, last).
fn cell_periods(
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Vec<(&'static str, String, String)> {
    use chrono::Datelike;
    let month_start = |d: chrono::NaiveDate| d.with_day(1).expect("day 1 exists");
    let next_month = |d: chrono::NaiveDate| {
        let start = month_start(d);
        if start.month() == 12 {
            start
                .with_year(start.year() + 1)
                .and_then(|d| d.with_month(1))
        } else {
            start.with_month(start.month() + 1)
        }
    };
    let first_full = if from.day() == 1 {
        Some(from)
    } else {
        next_month(from)
    };
    // The last day of a whole month inside the period.
    let last_full = next_month(to)
        .and_then(|n| n.pred_opt())
        .filter(|end| *end == to)
        .or_else(|| month_start(to).pred_opt());
    match (first_full, last_full) {
        (Some(a), Some(b)) if a <= b => {
            let mut out = Vec::new();
            if from < a {
                out.push((
                    "d",
                    from.to_string(),
                    (a - chrono::Duration::days(1)).to_string(),
                ));
            }
            out.push((
                "m",
                a.format("%Y-%m").to_string(),
                b.format("%Y-%m").to_string(),
            ));
            if b < to {
                out.push((
                    "d",
                    (b + chrono::Duration::days(1)).to_string(),
                    to.to_string(),
                ));
            }
            out
        }
        _ => vec![("d", from.to_string(), to.to_string())],
    }
}

/// The rate columns, in the order of `RateCounts::fields`.
const RATE_FIELDS: [&str; 10] = [
    "received",
    "rejected",
    "merged",
    "response_due",
    "responded_in_time",
    "resolution_due",
    "resolved",
    "rated",
    "satisfied",
    "strictly_satisfied",
];

fn rate_row(row: &AnyRow) -> Result<RateRow> {
    let mut values = [0u64; 10];
    for (v, f) in values.iter_mut().zip(RATE_FIELDS) {
        *v = u64::try_from(row.try_get::<i64, _>(f)?)
            .map_err(|_| StoreError::Config(format!("negative rate counter {f}")))?;
    }
    Ok(RateRow {
        key: row.try_get("k")?,
        name: row.try_get("n")?,
        counts: RateCounts::from_fields(values),
    })
}

/// The columns of a new demand, in the order `insert_demands` binds them.
const NEW_DEMAND_COLUMNS: &str = "region, kind, category, urgency, channel, title, description, \
     place_id, place_path, lat, lon, address, attributes, reporter_account_id, reporter_name, \
     reporter_phone_enc, reporter_phone_hash, reporter_phone_masked, token_hash, status, owner_id, \
     handler_id, deadline, response_deadline, handling_deadline, timer_at, timer_kind, \
     counted_unit, counted_bits, received_at, updated_at, step_at, visit_id, point_id";
/// The values bound per row; `point_id` is not bound but read from the visit.
const NEW_DEMAND_WIDTH: usize = 33;

/// The most rows one multi-row statement carries (well under both engines' limits on
/// parameters: 33 × 256 = 8,448).
const ROWS_PER_STATEMENT: usize = 16;

/// `($n, $n+1, …)` for one row of `width` values starting at parameter `first`;
/// the coordinates (the 10th and 11th values of a demand) are cast from text (see
/// `float_text`).
fn row_placeholders(first: usize, width: usize, cast_coordinates: bool) -> String {
    let cells: Vec<String> = (0..width)
        .map(|k| {
            let n = first + k;
            if cast_coordinates && (k == 9 || k == 10) {
                format!("CAST(${n} AS DOUBLE PRECISION)")
            } else {
                format!("${n}")
            }
        })
        .collect();
    format!("({})", cells.join(", "))
}

fn unknown_reference(e: sqlx::Error) -> StoreError {
    match StoreError::from(e) {
        StoreError::Database(e)
            if e.as_database_error()
                .is_some_and(|d| d.is_foreign_key_violation()) =>
        {
            StoreError::Invalid(lianxin_domain::ValidationError::new(
                "category",
                "unknown_reference",
                "the category, place, unit or visit does not exist",
            ))
        }
        other => other,
    }
}

/// Stores new demands with their photos, first history entries and rate
/// contributions, with a few multi-row statements per batch rather than several
/// statements per demand: intake is the platform's hottest write. Returns the ids in
/// the order of `demands`.
async fn insert_demands(tx: &mut AnyConnection, demands: &[NewDemand]) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(demands.len());
    for chunk in demands.chunks(ROWS_PER_STATEMENT) {
        // A demand collected on a visit takes the visit's contact point.
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| {
                let first = r * NEW_DEMAND_WIDTH + 1;
                let cells = row_placeholders(first, NEW_DEMAND_WIDTH, true);
                let visit = first + NEW_DEMAND_WIDTH - 1;
                format!(
                    "{}, (SELECT v.point_id FROM visits v WHERE v.id = ${visit}))",
                    cells.trim_end_matches(')')
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO demands ({NEW_DEMAND_COLUMNS}) VALUES {} RETURNING id, token_hash",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for d in chunk {
            let (phone_enc, phone_hash, phone_masked) = match &d.reporter_phone {
                Some((e, h, m)) => (Some(e.clone()), Some(h.clone()), Some(m.clone())),
                None => (None, None, None),
            };
            let received = ts(d.received_at);
            q = q
                .bind(d.region.clone())
                .bind(d.kind.as_str())
                .bind(d.category.clone())
                .bind(d.urgency.as_str())
                .bind(d.channel.as_str())
                .bind(d.title.clone())
                .bind(d.description.clone())
                .bind(d.place_id)
                .bind(d.place_path.clone())
                .bind(crate::float_text(d.lat))
                .bind(crate::float_text(d.lon))
                .bind(d.address.clone())
                .bind(d.attributes.as_ref().map(Value::to_string))
                .bind(d.reporter_account_id)
                .bind(d.reporter_name.clone())
                .bind(phone_enc)
                .bind(phone_hash)
                .bind(phone_masked)
                .bind(d.token_hash.clone())
                .bind(d.status.as_str())
                .bind(d.owner_id)
                .bind(d.handler_id)
                .bind(ts(d.deadline))
                .bind(ts(d.response_deadline))
                .bind(ts(d.handling_deadline))
                .bind(d.timer_at.map(ts))
                .bind(d.timer_kind.clone())
                .bind(d.owner_id)
                .bind(i64::from(d.counted_bits))
                .bind(received.clone())
                .bind(received.clone())
                .bind(received)
                .bind(d.visit_id);
        }
        let returned = q.fetch_all(&mut *tx).await.map_err(unknown_reference)?;
        // RETURNING promises no order: match the rows back by their unique token.
        let mut by_token = std::collections::HashMap::with_capacity(returned.len());
        for row in &returned {
            by_token.insert(
                row.try_get::<String, _>("token_hash")?,
                row.try_get::<i64, _>("id")?,
            );
        }
        for d in chunk {
            ids.push(
                by_token.get(&d.token_hash).copied().ok_or_else(|| {
                    StoreError::Config("a new demand's id was not returned".into())
                })?,
            );
        }
    }
    for (d, id) in demands.iter().zip(&ids) {
        for p in &d.photos {
            sqlx::query(
                "INSERT INTO demand_photos (demand_id, region, content_type, size, sha256, bytes, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(*id)
            .bind(&d.region)
            .bind(&p.content_type)
            .bind(p.bytes.len() as i64)
            .bind(&p.sha256)
            .bind(p.bytes.clone())
            .bind(ts(d.received_at))
            .execute(&mut *tx)
            .await?;
        }
    }
    const EVENT_WIDTH: usize = 10;
    let pairs: Vec<(&NewDemand, i64)> = demands.iter().zip(ids.iter().copied()).collect();
    for chunk in pairs.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| row_placeholders(r * EVENT_WIDTH + 1, EVENT_WIDTH, false))
            .collect();
        let sql = format!(
            "INSERT INTO demand_events (demand_id, region, at, actor, actor_name, action, from_status, \
             to_status, unit_id, note) VALUES {}",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (d, id) in chunk {
            q = q
                .bind(*id)
                .bind(d.region.clone())
                .bind(ts(d.received_at))
                .bind(d.event.actor.clone())
                .bind(d.event.actor_name.clone())
                .bind(d.event.action.clone())
                .bind(None::<String>)
                .bind(d.status.as_str())
                .bind(d.event.unit_id)
                .bind(d.event.note.clone());
        }
        q.execute(&mut *tx).await?;
    }
    // The rate contributions, added up per cell first: many new demands share one.
    let mut cells = CellDeltas::default();
    for d in demands {
        cells.add(
            d.owner_id,
            d.place_id,
            &d.place_path,
            &d.region,
            d.received_at,
            d.counted_bits,
            1,
        );
    }
    cells.write(tx).await?;
    Ok(ids)
}

/// A rate cell: grain ("d" or "m"), period, unit, place.
type CellKey = (&'static str, String, i64, i64);
/// What changes in a cell: its place path and region, and the ten counter deltas.
type CellChange = (String, String, [i64; 10]);
type CellDelta = (CellKey, CellChange);

/// Rate-cell changes summed per cell, at both grains, ready to write.
#[derive(Default)]
struct CellDeltas(std::collections::BTreeMap<CellKey, CellChange>);

impl CellDeltas {
    /// Adds `sign` × a demand's contribution (`bits`) to its day and month cells.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        unit_id: i64,
        place_id: i64,
        place_path: &str,
        region: &str,
        received_at: DateTime<Utc>,
        bits: u16,
        sign: i64,
    ) {
        let day = lianxin_domain::calendar::local_day(received_at);
        let v = RateCounts::from_bits(bits)
            .fields()
            .map(|f| f as i64 * sign);
        for (grain, period) in [
            ("d", day.to_string()),
            ("m", day.format("%Y-%m").to_string()),
        ] {
            let entry = self
                .0
                .entry((grain, period, unit_id, place_id))
                .or_insert_with(|| (place_path.to_string(), region.to_string(), [0; 10]));
            for (sum, x) in entry.2.iter_mut().zip(v) {
                *sum += x;
            }
        }
    }

    async fn write(self, tx: &mut AnyConnection) -> Result<()> {
        let cells: Vec<CellDelta> = self
            .0
            .into_iter()
            .filter(|(_, (_, _, v))| v.iter().any(|x| *x != 0))
            .collect();
        for chunk in cells.chunks(ROWS_PER_STATEMENT) {
            add_to_cells(tx, chunk).await?;
        }
        Ok(())
    }
}

/// Adds deltas to rate cells (distinct keys) in one statement.
async fn add_to_cells(tx: &mut AnyConnection, cells: &[CellDelta]) -> Result<()> {
    const WIDTH: usize = 16;
    let rows: Vec<String> = (0..cells.len())
        .map(|r| row_placeholders(r * WIDTH + 1, WIDTH, false))
        .collect();
    let sql = format!(
        "INSERT INTO rate_cells (grain, day, unit_id, place_id, place_path, region, received, rejected, merged, \
         response_due, responded_in_time, resolution_due, resolved, rated, satisfied, strictly_satisfied) \
         VALUES {} ON CONFLICT (grain, day, unit_id, place_id) DO UPDATE SET \
         received = rate_cells.received + excluded.received, \
         rejected = rate_cells.rejected + excluded.rejected, \
         merged = rate_cells.merged + excluded.merged, \
         response_due = rate_cells.response_due + excluded.response_due, \
         responded_in_time = rate_cells.responded_in_time + excluded.responded_in_time, \
         resolution_due = rate_cells.resolution_due + excluded.resolution_due, \
         resolved = rate_cells.resolved + excluded.resolved, \
         rated = rate_cells.rated + excluded.rated, \
         satisfied = rate_cells.satisfied + excluded.satisfied, \
         strictly_satisfied = rate_cells.strictly_satisfied + excluded.strictly_satisfied",
        rows.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for ((grain, day, unit, place), (path, region, v)) in cells {
        q = q
            .bind(*grain)
            .bind(day.clone())
            .bind(*unit)
            .bind(*place)
            .bind(path.clone())
            .bind(region.clone());
        for x in v {
            q = q.bind(*x);
        }
    }
    q.execute(&mut *tx).await?;
    Ok(())
}

async fn apply_step(tx: &mut AnyConnection, before: &Demand, step: &Step) -> Result<()> {
    let n = &step.next;
    let now = ts(step.at);
    let updated = sqlx::query(
        "UPDATE demands SET urgency = $1, category = $2, status = $3, owner_id = $4, handler_id = $5, \
         transfer_to = $6, supervisor_id = $7, escalation_level = $8, deadline = $9, \
         response_deadline = $10, handling_deadline = $11, first_response_at = $12, rating = $13, \
         reopened = $14, overdue = $15, answer = $16, merged_into = $17, timer_at = $18, timer_kind = $19, \
         counted_unit = $20, counted_bits = $21, closed_at = $22, updated_at = $23, warned = $24, \
         step_at = $25, version = version + 1, \
         answered_at = COALESCE(answered_at, CASE WHEN $28 THEN $29 END) WHERE id = $26 AND version = $27",
    )
    .bind(n.urgency.as_str())
    .bind(&n.category)
    .bind(n.status.as_str())
    .bind(n.owner_id)
    .bind(n.handler_id)
    .bind(n.transfer_to)
    .bind(n.supervisor_id)
    .bind(n.escalation_level)
    .bind(ts(n.deadline))
    .bind(ts(n.response_deadline))
    .bind(ts(n.handling_deadline))
    .bind(n.first_response_at.map(ts))
    .bind(n.rating.map(Rating::as_str))
    .bind(n.reopened)
    .bind(i64::from(n.overdue))
    .bind(&n.answer)
    .bind(n.merged_into)
    .bind(n.timer_at.map(ts))
    .bind(&n.timer_kind)
    .bind(n.counted_unit)
    .bind(i64::from(n.counted_bits))
    .bind(n.closed_at.map(ts))
    .bind(&now)
    .bind(i64::from(n.warned))
    .bind(ts(n.step_at))
    .bind(before.id)
    // The version the decision was made on: a decision based on an older read, or
    // racing another transaction on PostgreSQL, updates nothing.
    .bind(n.version)
    // The first answer's time, kept for "time to answer".
    .bind(n.status == Status::Answered && before.status != Status::Answered)
    .bind(&now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated != 1 {
        return Err(StoreError::conflict(
            "version",
            "the demand changed meanwhile; reload it and try again",
        ));
    }
    if let Some(e) = &step.event {
        insert_event(
            tx,
            before.id,
            &before.region,
            &now,
            Some(before.status),
            n.status,
            e,
        )
        .await?;
    }
    for notice in &step.notices {
        sqlx::query(
            "INSERT INTO demand_notices (demand_id, region, unit_id, account_id, kind, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(before.id)
        .bind(&before.region)
        .bind(notice.unit_id)
        .bind(notice.account_id)
        .bind(&notice.kind)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    if (before.counted_unit, before.counted_bits) != (n.counted_unit, n.counted_bits) {
        let mut cells = CellDeltas::default();
        for (unit, bits, sign) in [
            (before.counted_unit, before.counted_bits, -1),
            (n.counted_unit, n.counted_bits, 1),
        ] {
            cells.add(
                unit,
                before.place_id,
                &before.place_path,
                &before.region,
                before.received_at,
                bits,
                sign,
            );
        }
        cells.write(tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::cell_periods;
    use chrono::NaiveDate;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn days_of(periods: &[(&str, String, String)]) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        for (grain, first, last) in periods {
            let (a, b) = if *grain == "m" {
                let a = d(&format!("{first}-01"));
                let next = d(&format!("{last}-01")) + chrono::Months::new(1);
                (a, next.pred_opt().unwrap())
            } else {
                (d(first), d(last))
            };
            let mut x = a;
            while x <= b {
                out.push(x);
                x = x.succ_opt().unwrap();
            }
        }
        out
    }

    #[test]
    fn periods_cover_every_day_once() {
        let cases = [
            ("2026-11-05", "2026-11-28"),
            ("2026-01-01", "2026-12-31"),
            ("2025-12-15", "2026-02-10"),
            ("2026-02-01", "2026-02-28"),
            ("2026-02-01", "2026-02-27"),
            ("2025-11-30", "2026-01-01"),
            ("2026-03-31", "2026-03-31"),
        ];
        for (from, to) in cases {
            let p = cell_periods(d(from), d(to));
            let got = days_of(&p);
            let mut want = Vec::new();
            let mut x = d(from);
            while x <= d(to) {
                want.push(x);
                x = x.succ_opt().unwrap();
            }
            assert_eq!(got, want, "{from}..{to}: {p:?}");
        }
        assert_eq!(
            cell_periods(d("2025-12-15"), d("2026-02-10")),
            [
                ("d", "2025-12-15".into(), "2025-12-31".into()),
                ("m", "2026-01".into(), "2026-01".into()),
                ("d", "2026-02-01".into(), "2026-02-10".into()),
            ]
        );
    }
}
