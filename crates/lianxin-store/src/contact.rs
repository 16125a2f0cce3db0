//! Officials' contact points (党建联系点): the points, officials' effective-dated links
//! to them, the re-match opened when an official's post ends, visits with their
//! photos and follow-ups, and the district view's figures.
//!
//! The rules (priority, successor ranking, visit dates, link limits) are in
//! `lianxin_domain::contact`; this module stores their inputs and outcomes. Three
//! things happen inside other writes' transactions, so they can never be half done:
//! - ending a `holds_post` relation ([`crate::registry`]) ends the official's open
//!   links and opens one re-match per point ([`post_ended`]);
//! - recording a visit bumps `visit_tallies`, which the district view reads instead
//!   of counting visits;
//! - a demand collected on a visit takes the visit's point when it is inserted, and
//!   its first answer time is kept (`demands.answered_at`) for "time to answer".

use crate::audit::{self, Actor};
use crate::demands::{opt_ts, NewPhoto};
use crate::registry::{day, org_by_code_in, place_in_scope, scope_patterns};
use crate::{now_text, Result, Store, StoreError};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use lianxin_domain::contact::{
    check_link, check_successor_holds_post, check_visit_date, priority, rank_successors, Candidate,
    PointIndicators, PointKind, PriorityWeights, RematchStatus, VisitKind, HIGH_PRIORITY,
};
use lianxin_domain::relation::Validity;
use lianxin_domain::role::DataScope;
use lianxin_domain::ValidationError;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The organisation department's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GovernanceRules {
    pub weights: PriorityWeights,
    /// The norm: at least this many visits per point per year.
    pub min_visits_per_year: i64,
    /// An official holds at most this many points at a time.
    pub max_points_per_official: i64,
    pub tier_advanced: f64,
    pub tier_lagging: f64,
}

impl GovernanceRules {
    pub fn check(&self) -> Result<(), ValidationError> {
        PriorityWeights::new(
            self.weights.task_load,
            self.weights.weakness,
            self.weights.complexity,
        )?;
        if !(0..=365).contains(&self.min_visits_per_year) {
            return Err(ValidationError::new(
                "min_visits_per_year",
                "out_of_range",
                "visits per year is 0 to 365",
            ));
        }
        if !(1..=50).contains(&self.max_points_per_official) {
            return Err(ValidationError::new(
                "max_points_per_official",
                "out_of_range",
                "points per official is 1 to 50",
            ));
        }
        lianxin_domain::contact::TierThresholds::new(self.tier_advanced, self.tier_lagging)?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactPoint {
    pub id: i64,
    pub kind: PointKind,
    pub name: String,
    pub place_id: i64,
    pub place_name: String,
    pub place_path: String,
    pub org_id: Option<i64>,
    pub sector: Option<String>,
    pub indicators: PointIndicators,
    pub region: String,
}

/// A point to create: `place_code` is where it sits (the village or community itself
/// for those kinds).
#[derive(Debug, Clone)]
pub struct NewPoint {
    pub kind: PointKind,
    pub name: Option<String>,
    pub place_code: String,
    pub org_code: Option<String>,
    pub sector: Option<String>,
    pub indicators: PointIndicators,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointLink {
    pub id: i64,
    pub point_id: i64,
    pub person_id: i64,
    pub person_name: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub rematch_id: Option<i64>,
}

impl PointLink {
    pub fn validity(&self) -> Validity {
        Validity {
            from: self.valid_from,
            to: self.valid_to,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HandoverItem {
    /// `demand` or `follow_up` (a visit whose promised follow-up is still owed).
    pub kind: String,
    pub item_id: i64,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rematch {
    pub id: i64,
    pub point_id: i64,
    pub point_name: String,
    pub predecessor_id: i64,
    pub predecessor_name: String,
    pub post: String,
    pub ended_on: NaiveDate,
    pub status: RematchStatus,
    pub successor_id: Option<i64>,
    pub successor_name: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub items: Vec<HandoverItem>,
    /// The point's indicators, for its priority.
    pub indicators: PointIndicators,
}

/// A visit to record. `place_code` is the household for a household visit; without
/// it the visit happened at the point's place.
#[derive(Debug, Clone)]
pub struct NewVisit {
    pub point_id: Option<i64>,
    pub person_id: i64,
    pub kind: VisitKind,
    pub visited_on: NaiveDate,
    pub place_code: Option<String>,
    pub participants: Vec<String>,
    pub notes: String,
    pub follow_up: Option<String>,
    pub photos: Vec<NewPhoto>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Visit {
    pub id: i64,
    pub point_id: Option<i64>,
    pub point_name: Option<String>,
    pub person_id: i64,
    pub person_name: String,
    pub kind: VisitKind,
    pub visited_on: NaiveDate,
    pub place_id: i64,
    pub place_name: String,
    pub participants: Vec<String>,
    pub notes: String,
    pub follow_up: Option<String>,
    pub follow_up_person_id: Option<i64>,
    pub follow_up_done_at: Option<DateTime<Utc>>,
    pub photo_ids: Vec<i64>,
    pub created_at: DateTime<Utc>,
}

/// Which visits to list.
#[derive(Debug, Clone, Default)]
pub struct VisitQuery {
    pub point_id: Option<i64>,
    pub person_id: Option<i64>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub limit: i64,
}

/// A demand collected on a visit, as the visit shows its follow-up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisitDemand {
    pub id: i64,
    pub title: String,
    pub status: String,
    pub deadline: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub visit_id: i64,
}

/// One line of the district view: a point or an official, with its figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub visits: i64,
    pub demands: i64,
    pub answered: i64,
    /// Median hours from receipt to first answer, over answered demands.
    pub median_hours_to_answer: Option<f64>,
}

impl Figures {
    pub fn answered_share(&self) -> Option<f64> {
        (self.demands > 0).then(|| self.answered as f64 / self.demands as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointLine {
    pub point: ContactPoint,
    pub priority: f64,
    /// Officials linked today.
    pub officials: Vec<(i64, String)>,
    pub figures: Figures,
    /// The visits the norm expects by today (or by the year's end for a past year).
    pub visits_expected: i64,
    pub rematch_open: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfficialLine {
    pub person_id: i64,
    pub name: String,
    pub post: Option<String>,
    pub points: Vec<i64>,
    pub figures: Figures,
}

/// Something the organisation department should act on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// `unlinked_high_priority`, `unlinked`, `handover_pending` (a successor is
    /// confirmed but has not acknowledged), `rematch_open` (a post ended and no
    /// successor is confirmed yet), `visits_behind`.
    pub code: String,
    pub point_id: i64,
    pub point_name: String,
    /// The point's priority score.
    pub priority: f64,
    /// Visits this year and what the norm expects by now (for `visits_behind`).
    pub visits: i64,
    pub visits_expected: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DistrictView {
    pub year: i32,
    pub officials: Vec<OfficialLine>,
    pub points: Vec<PointLine>,
    pub totals: Figures,
    pub warnings: Vec<Warning>,
    pub open_rematches: i64,
}

const POINT_SELECT: &str =
    "SELECT c.id, c.kind, c.name, c.place_id, p.name AS place_name, c.place_path, \
     c.org_id, c.sector, c.task_load, c.weakness, c.complexity, c.region \
     FROM contact_points c JOIN places p ON p.id = c.place_id";

fn point_from_row(r: &AnyRow) -> Result<ContactPoint> {
    let kind: String = r.try_get("kind")?;
    let ind = |c: &str| -> Result<u8> {
        let v: i64 = r.try_get(c)?;
        u8::try_from(v).map_err(|_| StoreError::Config(format!("bad stored {c}")))
    };
    Ok(ContactPoint {
        id: r.try_get("id")?,
        kind: PointKind::parse(&kind)?,
        name: r.try_get("name")?,
        place_id: r.try_get("place_id")?,
        place_name: r.try_get("place_name")?,
        place_path: r.try_get("place_path")?,
        org_id: r.try_get("org_id")?,
        sector: r.try_get("sector")?,
        indicators: PointIndicators::new(ind("task_load")?, ind("weakness")?, ind("complexity")?)?,
        region: r.try_get("region")?,
    })
}

const LINK_SELECT: &str = "SELECT l.id, l.point_id, l.person_id, pe.name AS person_name, \
     l.valid_from, l.valid_to, l.rematch_id FROM point_links l JOIN people pe ON pe.id = l.person_id";

fn link_from_row(r: &AnyRow) -> Result<PointLink> {
    Ok(PointLink {
        id: r.try_get("id")?,
        point_id: r.try_get("point_id")?,
        person_id: r.try_get("person_id")?,
        person_name: r.try_get("person_name")?,
        valid_from: day("valid_from", r.try_get("valid_from")?)?
            .ok_or_else(|| StoreError::Config("link without valid_from".into()))?,
        valid_to: day("valid_to", r.try_get("valid_to")?)?,
        rematch_id: r.try_get("rematch_id")?,
    })
}

const VISIT_SELECT: &str = "SELECT v.id, v.point_id, c.name AS point_name, v.person_id, \
     pe.name AS person_name, v.kind, v.visited_on, v.place_id, pl.name AS place_name, \
     v.participants, v.notes, v.follow_up, v.follow_up_person_id, v.follow_up_done_at, v.created_at, \
     v.place_path \
     FROM visits v JOIN people pe ON pe.id = v.person_id JOIN places pl ON pl.id = v.place_id \
     LEFT JOIN contact_points c ON c.id = v.point_id";

fn visit_from_row(r: &AnyRow) -> Result<Visit> {
    let kind: String = r.try_get("kind")?;
    let participants: String = r.try_get("participants")?;
    Ok(Visit {
        id: r.try_get("id")?,
        point_id: r.try_get("point_id")?,
        point_name: r.try_get("point_name")?,
        person_id: r.try_get("person_id")?,
        person_name: r.try_get("person_name")?,
        kind: VisitKind::parse(&kind)?,
        visited_on: day("visited_on", r.try_get("visited_on")?)?
            .ok_or_else(|| StoreError::Config("visit without a date".into()))?,
        place_id: r.try_get("place_id")?,
        place_name: r.try_get("place_name")?,
        participants: participants
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        notes: r.try_get("notes")?,
        follow_up: r.try_get("follow_up")?,
        follow_up_person_id: r.try_get("follow_up_person_id")?,
        follow_up_done_at: opt_ts(r, "follow_up_done_at")?,
        photo_ids: Vec::new(),
        created_at: opt_ts(r, "created_at")?
            .ok_or_else(|| StoreError::Config("visit without created_at".into()))?,
    })
}

fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationError::new(field, code, message))
}

/// The path of the county (district) a place lies in, or the place's own path above
/// that level: candidates for a point come from there.
fn county_prefix(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let n = parts.len().min(3);
    format!("/{}/", parts[..n].join("/"))
}

/// Whether a link is valid on `on`, as SQL over `l.` with the day bound at `$n`.
fn link_valid_on(n: usize) -> String {
    format!("l.valid_from <= ${n} AND (l.valid_to IS NULL OR l.valid_to > ${n})")
}

/// Ends `person_id`'s open links on `on` and opens a re-match for each point, inside
/// the transaction that ends their post. Returns the re-matches opened.
pub(crate) async fn post_ended(
    tx: &mut AnyConnection,
    actor: &Actor,
    person_id: i64,
    post: &str,
    on: NaiveDate,
) -> Result<Vec<i64>> {
    let on_text = on.to_string();
    let links = sqlx::query(
        "SELECT id, point_id, region FROM point_links \
         WHERE person_id = $1 AND valid_from < $2 AND (valid_to IS NULL OR valid_to > $2)",
    )
    .bind(person_id)
    .bind(&on_text)
    .fetch_all(&mut *tx)
    .await?;
    let mut opened = Vec::new();
    for l in &links {
        let link_id: i64 = l.try_get("id")?;
        let point_id: i64 = l.try_get("point_id")?;
        let region: String = l.try_get("region")?;
        sqlx::query("UPDATE point_links SET valid_to = $1 WHERE id = $2")
            .bind(&on_text)
            .bind(link_id)
            .execute(&mut *tx)
            .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO rematches (point_id, predecessor_id, post, ended_on, status, opened_at, region) \
             VALUES ($1, $2, $3, $4, 'open', $5, $6) RETURNING id",
        )
        .bind(point_id)
        .bind(person_id)
        .bind(post)
        .bind(&on_text)
        .bind(now_text())
        .bind(&region)
        .fetch_one(&mut *tx)
        .await?;
        audit::append(
            tx,
            actor,
            "open",
            "rematch",
            &id.to_string(),
            None::<&()>,
            Some(&serde_json::json!({
                "point_id": point_id, "predecessor_id": person_id, "ended_link": link_id,
                "ended_on": on, "post": post,
            })),
        )
        .await?;
        opened.push(id);
    }
    Ok(opened)
}

impl Store {
    // ----- rules -----

    pub async fn governance_rules(&self) -> Result<GovernanceRules> {
        let r = sqlx::query(
            "SELECT weight_task_load, weight_weakness, weight_complexity, min_visits_per_year, \
             max_points_per_official, tier_advanced, tier_lagging FROM governance_rules WHERE id = 1",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(GovernanceRules {
            weights: PriorityWeights {
                task_load: r.try_get("weight_task_load")?,
                weakness: r.try_get("weight_weakness")?,
                complexity: r.try_get("weight_complexity")?,
            },
            min_visits_per_year: r.try_get("min_visits_per_year")?,
            max_points_per_official: r.try_get("max_points_per_official")?,
            tier_advanced: r.try_get("tier_advanced")?,
            tier_lagging: r.try_get("tier_lagging")?,
        })
    }

    pub async fn set_governance_rules(
        &self,
        actor: &Actor,
        rules: &GovernanceRules,
    ) -> Result<GovernanceRules> {
        rules.check()?;
        let before = self.governance_rules().await?;
        let (actor, rules) = (actor.clone(), *rules);
        self.write(move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE governance_rules SET weight_task_load = $1, weight_weakness = $2, \
                     weight_complexity = $3, min_visits_per_year = $4, max_points_per_official = $5, \
                     tier_advanced = $6, tier_lagging = $7, updated_at = $8 WHERE id = 1",
                )
                .bind(rules.weights.task_load)
                .bind(rules.weights.weakness)
                .bind(rules.weights.complexity)
                .bind(rules.min_visits_per_year)
                .bind(rules.max_points_per_official)
                .bind(rules.tier_advanced)
                .bind(rules.tier_lagging)
                .bind(now_text())
                .execute(&mut *tx)
                .await?;
                audit::append(
                    tx,
                    &actor,
                    "update",
                    "governance_rules",
                    "1",
                    Some(&before),
                    Some(&rules),
                )
                .await?;
                Ok(rules)
            })
        })
        .await
    }

    // ----- points -----

    pub async fn create_point(
        &self,
        actor: &Actor,
        scope: &DataScope,
        p: &NewPoint,
    ) -> Result<ContactPoint> {
        let mut conn = self.reader.acquire().await?;
        let place = place_in_scope(&mut conn, &p.place_code, scope, "place_code").await?;
        let (org_id, org_name, key) = match p.kind {
            PointKind::Village | PointKind::Community => {
                if place.level != lianxin_domain::place::PlaceLevel::Village {
                    return Err(invalid(
                        "place_code",
                        "not_a_village",
                        "a village or community point is a place of level village",
                    ));
                }
                (None, None, format!("place:{}", place.id))
            }
            PointKind::Organisation => {
                let code = p.org_code.as_deref().unwrap_or_default();
                let org = org_by_code_in(&mut conn, code).await?.ok_or_else(|| {
                    invalid(
                        "org_code",
                        "unknown_org",
                        format!("no organisation has the code {code}"),
                    )
                })?;
                (Some(org.id), Some(org.name), format!("org:{}", org.id))
            }
            PointKind::Sector => {
                let sector = p.sector.as_deref().map(str::trim).unwrap_or_default();
                if sector.is_empty() || sector.chars().count() > 60 {
                    return Err(invalid(
                        "sector",
                        "invalid_sector",
                        "name the sector (up to 60 characters), e.g. 外卖骑手",
                    ));
                }
                (None, None, format!("sector:{}:{sector}", place.id))
            }
        };
        drop(conn);
        let name = p
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .or(org_name)
            .or_else(|| {
                p.sector
                    .as_deref()
                    .map(|s| format!("{}{}", place.name, s.trim()))
            })
            .unwrap_or_else(|| place.name.clone());
        if name.chars().count() > 100 {
            return Err(invalid(
                "name",
                "too_long",
                "a name has at most 100 characters",
            ));
        }
        let (actor, p) = (actor.clone(), p.clone());
        let id = self
            .write(move |tx| {
                Box::pin(async move {
                    let now = now_text();
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO contact_points (kind, name, place_id, place_path, org_id, sector, \
                         point_key, task_load, weakness, complexity, region, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING id",
                    )
                    .bind(p.kind.as_str())
                    .bind(&name)
                    .bind(place.id)
                    .bind(&place.path)
                    .bind(org_id)
                    .bind(p.sector.as_deref().map(str::trim))
                    .bind(&key)
                    .bind(i64::from(p.indicators.task_load))
                    .bind(i64::from(p.indicators.weakness))
                    .bind(i64::from(p.indicators.complexity))
                    .bind(&place.region)
                    .bind(&now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Conflict { .. } => StoreError::conflict(
                            "place_code",
                            "this place, organisation or sector is already a contact point",
                        ),
                        other => other,
                    })?;
                    audit::append(
                        tx,
                        &actor,
                        "create",
                        "contact_point",
                        &id.to_string(),
                        None::<&()>,
                        Some(&serde_json::json!({
                            "kind": p.kind, "name": name, "place_id": place.id, "org_id": org_id,
                            "sector": p.sector, "indicators": p.indicators,
                        })),
                    )
                    .await?;
                    Ok(id)
                })
            })
            .await?;
        self.point(id, &DataScope::everything()).await
    }

    pub async fn point(&self, id: i64, scope: &DataScope) -> Result<ContactPoint> {
        let row = sqlx::query(&format!("{POINT_SELECT} WHERE c.id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::not_found("contact point"))?;
        let p = point_from_row(&row)?;
        if !scope.allows_place(&p.place_path) {
            return Err(StoreError::not_found("contact point"));
        }
        Ok(p)
    }

    /// Every point in scope, by place path then name.
    pub async fn points(&self, scope: &DataScope) -> Result<Vec<ContactPoint>> {
        let (_, places) = scope_patterns(scope);
        let rows = sqlx::query(&format!(
            "{POINT_SELECT} WHERE c.place_path LIKE $1 ORDER BY c.place_path, c.name"
        ))
        .bind(places)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(point_from_row).collect()
    }

    pub async fn set_point_indicators(
        &self,
        actor: &Actor,
        scope: &DataScope,
        id: i64,
        ind: PointIndicators,
    ) -> Result<ContactPoint> {
        let before = self.point(id, scope).await?;
        let actor = actor.clone();
        let after = ContactPoint {
            indicators: ind,
            ..before.clone()
        };
        self.write(move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE contact_points SET task_load = $1, weakness = $2, complexity = $3, \
                     updated_at = $4 WHERE id = $5",
                )
                .bind(i64::from(ind.task_load))
                .bind(i64::from(ind.weakness))
                .bind(i64::from(ind.complexity))
                .bind(now_text())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                audit::append(
                    tx,
                    &actor,
                    "update",
                    "contact_point",
                    &id.to_string(),
                    Some(&before),
                    Some(&after),
                )
                .await?;
                Ok(after)
            })
        })
        .await
    }

    // ----- links -----

    /// Links an official to a point from `validity.from`. The official must hold a
    /// post that day, and the link rules hold (no overlap with a link to the same
    /// point, at most the rules' number of points at a time).
    pub async fn link_official(
        &self,
        actor: &Actor,
        scope: &DataScope,
        point_id: i64,
        person_id: i64,
        validity: Validity,
    ) -> Result<PointLink> {
        let point = self.point(point_id, scope).await?;
        let rules = self.governance_rules().await?;
        let posts = self.post_validities(person_id).await?;
        check_successor_holds_post(&posts, validity.from).map_err(|e| e.in_field("person_id"))?;
        let existing: Vec<(i64, Validity)> = self
            .links_of_person(person_id)
            .await?
            .iter()
            .map(|l| (l.point_id, l.validity()))
            .collect();
        check_link(
            &existing,
            point_id,
            validity,
            usize::try_from(rules.max_points_per_official).unwrap_or(1),
        )?;
        let actor = actor.clone();
        let id = self
            .write(move |tx| {
                Box::pin(async move {
                    let id = insert_link(tx, &point, person_id, validity, None).await?;
                    audit::append(
                        tx,
                        &actor,
                        "create",
                        "point_link",
                        &id.to_string(),
                        None::<&()>,
                        Some(&serde_json::json!({
                            "point_id": point.id, "person_id": person_id,
                            "valid_from": validity.from, "valid_to": validity.to,
                        })),
                    )
                    .await?;
                    Ok(id)
                })
            })
            .await?;
        self.link(id).await
    }

    pub async fn link(&self, id: i64) -> Result<PointLink> {
        let row = sqlx::query(&format!("{LINK_SELECT} WHERE l.id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::not_found("link"))?;
        link_from_row(&row)
    }

    /// Ends a link on `on` (a change of duties that is not a change of post).
    pub async fn end_link(
        &self,
        actor: &Actor,
        scope: &DataScope,
        id: i64,
        on: NaiveDate,
    ) -> Result<PointLink> {
        let before = self.link(id).await?;
        self.point(before.point_id, scope)
            .await
            .map_err(|_| StoreError::not_found("link"))?;
        let validity = before.validity().end_on(on)?;
        let after = PointLink {
            valid_to: validity.to,
            ..before.clone()
        };
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let ended = crate::end_open_row(tx, crate::Dated::PointLinks, id, on).await?;
                if !ended {
                    return Err(StoreError::conflict(
                        "valid_to",
                        "this link has already ended",
                    ));
                }
                audit::append(
                    tx,
                    &actor,
                    "end",
                    "point_link",
                    &id.to_string(),
                    Some(&before),
                    Some(&after),
                )
                .await?;
                Ok(after)
            })
        })
        .await
    }

    /// A point's links, oldest first: its whole history.
    pub async fn point_links(&self, point_id: i64) -> Result<Vec<PointLink>> {
        let rows = sqlx::query(&format!(
            "{LINK_SELECT} WHERE l.point_id = $1 ORDER BY l.valid_from, l.id"
        ))
        .bind(point_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(link_from_row).collect()
    }

    pub async fn links_of_person(&self, person_id: i64) -> Result<Vec<PointLink>> {
        let rows = sqlx::query(&format!(
            "{LINK_SELECT} WHERE l.person_id = $1 ORDER BY l.valid_from, l.id"
        ))
        .bind(person_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(link_from_row).collect()
    }

    /// The validity of each post `person_id` has held.
    async fn post_validities(&self, person_id: i64) -> Result<Vec<Validity>> {
        let rows = sqlx::query(
            "SELECT valid_from, valid_to FROM relations WHERE person_id = $1 AND kind = 'holds_post'",
        )
        .bind(person_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Validity {
                    from: day("valid_from", r.try_get("valid_from")?)?
                        .ok_or_else(|| StoreError::Config("post without start".into()))?,
                    to: day("valid_to", r.try_get("valid_to")?)?,
                })
            })
            .collect()
    }

    // ----- re-matches -----

    pub async fn rematches(
        &self,
        scope: &DataScope,
        statuses: &[RematchStatus],
    ) -> Result<Vec<Rematch>> {
        let (_, places) = scope_patterns(scope);
        let rows = sqlx::query(&format!(
            "{REMATCH_SELECT} WHERE c.place_path LIKE $1 ORDER BY r.id DESC LIMIT 500"
        ))
        .bind(places)
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let r = rematch_from_row(row)?;
            if statuses.is_empty() || statuses.contains(&r.status) {
                out.push(r);
            }
        }
        // The queue: waiting for a successor first, then waiting for the successor;
        // within each, the points that matter most first.
        let weights = self.governance_rules().await?.weights;
        let stage = |s: RematchStatus| match s {
            RematchStatus::Open => 0,
            RematchStatus::Confirmed => 1,
            RematchStatus::Acknowledged => 2,
        };
        out.sort_by(|a, b| {
            stage(a.status).cmp(&stage(b.status)).then(
                priority(b.indicators, weights)
                    .score
                    .total_cmp(&priority(a.indicators, weights).score),
            )
        });
        Ok(out)
    }

    /// Re-matches handed to `person_id` that await their acknowledgement.
    pub async fn handovers_for(&self, person_id: i64) -> Result<Vec<Rematch>> {
        let rows = sqlx::query(&format!(
            "{REMATCH_SELECT} WHERE r.successor_id = $1 AND r.status = 'confirmed' ORDER BY r.id"
        ))
        .bind(person_id)
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let mut r = rematch_from_row(row)?;
            r.items = self.handover_items(r.id).await?;
            out.push(r);
        }
        Ok(out)
    }

    pub async fn rematch(&self, id: i64, scope: &DataScope) -> Result<Rematch> {
        let row = sqlx::query(&format!("{REMATCH_SELECT} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::not_found("re-match"))?;
        let path: String = row.try_get("place_path")?;
        if !scope.allows_place(&path) {
            return Err(StoreError::not_found("re-match"));
        }
        let mut r = rematch_from_row(&row)?;
        r.items = self.handover_items(id).await?;
        Ok(r)
    }

    async fn handover_items(&self, rematch_id: i64) -> Result<Vec<HandoverItem>> {
        let rows = sqlx::query(
            "SELECT kind, item_id, summary FROM handover_items WHERE rematch_id = $1 ORDER BY kind, item_id",
        )
        .bind(rematch_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HandoverItem {
                    kind: r.try_get("kind")?,
                    item_id: r.try_get("item_id")?,
                    summary: r.try_get("summary")?,
                })
            })
            .collect()
    }

    /// Who could take over the point of re-match `id`, best first: officials holding a
    /// post on `on` in an organisation serving the point's district, by the domain's
    /// ranking (same post, then lightest load).
    pub async fn successor_candidates(
        &self,
        id: i64,
        scope: &DataScope,
        on: NaiveDate,
    ) -> Result<Vec<Candidate>> {
        let r = self.rematch(id, scope).await?;
        let point = self.point(r.point_id, &DataScope::everything()).await?;
        let rules = self.governance_rules().await?;
        let max = usize::try_from(rules.max_points_per_official).unwrap_or(1);
        // Only those who may take the point under the link rules: not already linked
        // to it, and with room for one more.
        let mut eligible = Vec::new();
        for c in self.post_holders(&point.place_path, on).await? {
            let links: Vec<(i64, Validity)> = self
                .links_of_person(c.person_id)
                .await?
                .iter()
                .map(|l| (l.point_id, l.validity()))
                .collect();
            if check_link(&links, point.id, Validity { from: on, to: None }, max).is_ok() {
                eligible.push(c);
            }
        }
        Ok(rank_successors(&r.post, eligible))
    }

    /// Officials who hold a post on `on` in an organisation serving the district of
    /// `place_path`, each with their load (the priorities of the points they hold
    /// that day), by id.
    pub async fn post_holders(&self, place_path: &str, on: NaiveDate) -> Result<Vec<Candidate>> {
        let rules = self.governance_rules().await?;
        let on_text = on.to_string();
        let rows = sqlx::query(
            "SELECT DISTINCT pe.id, pe.name, rel.post FROM relations rel \
             JOIN people pe ON pe.id = rel.person_id \
             WHERE rel.kind = 'holds_post' AND rel.valid_from <= $1 \
             AND (rel.valid_to IS NULL OR rel.valid_to > $1) \
             AND EXISTS (SELECT 1 FROM org_places op JOIN places sp ON sp.id = op.place_id \
                 WHERE op.org_id = rel.org_id AND sp.path LIKE $2) \
             ORDER BY pe.id",
        )
        .bind(&on_text)
        .bind(format!("{}%", county_prefix(place_path)))
        .fetch_all(&self.reader)
        .await?;
        let mut by_person: BTreeMap<i64, (String, String)> = BTreeMap::new();
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let post: Option<String> = row.try_get("post")?;
            by_person
                .entry(id)
                .or_insert((row.try_get("name")?, post.unwrap_or_default()));
        }
        // Load: the priorities of the points each candidate holds on the day.
        let loads = sqlx::query(&format!(
            "SELECT l.person_id, c.task_load, c.weakness, c.complexity FROM point_links l \
             JOIN contact_points c ON c.id = l.point_id WHERE {}",
            link_valid_on(1)
        ))
        .bind(&on_text)
        .fetch_all(&self.reader)
        .await?;
        let mut load: HashMap<i64, f64> = HashMap::new();
        for row in &loads {
            let pid: i64 = row.try_get("person_id")?;
            if by_person.contains_key(&pid) {
                let ind = indicators_of(row)?;
                *load.entry(pid).or_default() += priority(ind, rules.weights).score;
            }
        }
        Ok(by_person
            .into_iter()
            .map(|(person_id, (name, post))| Candidate {
                person_id,
                name,
                post,
                load: load.get(&person_id).copied().unwrap_or(0.0),
            })
            .collect())
    }

    /// An admin confirms `successor_id` for re-match `id` on `on`: the successor must
    /// hold a post that day and may take the point under the link rules. What is
    /// handed over — open demands collected at the point, follow-ups the predecessor
    /// still owes there — is listed for the successor to acknowledge.
    pub async fn confirm_rematch(
        &self,
        actor: &Actor,
        scope: &DataScope,
        id: i64,
        successor_id: i64,
        on: NaiveDate,
    ) -> Result<Rematch> {
        let r = self.rematch(id, scope).await?;
        if r.status != RematchStatus::Open {
            return Err(StoreError::conflict(
                "status",
                "this re-match already has a confirmed successor",
            ));
        }
        // The successor exists (an unknown id is bad input, not a missing route).
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM people WHERE id = $1")
            .bind(successor_id)
            .fetch_optional(&self.reader)
            .await?;
        if exists.is_none() {
            return Err(invalid("successor_id", "unknown_person", "no such person"));
        }
        let posts = self.post_validities(successor_id).await?;
        check_successor_holds_post(&posts, on)?;
        let rules = self.governance_rules().await?;
        let existing: Vec<(i64, Validity)> = self
            .links_of_person(successor_id)
            .await?
            .iter()
            .map(|l| (l.point_id, l.validity()))
            .collect();
        check_link(
            &existing,
            r.point_id,
            Validity { from: on, to: None },
            usize::try_from(rules.max_points_per_official).unwrap_or(1),
        )
        .map_err(|e| e.in_field("successor_id"))?;
        let actor_c = actor.clone();
        let (point_id, predecessor) = (r.point_id, r.predecessor_id);
        self.write(move |tx| {
            Box::pin(async move {
                let changed = sqlx::query(
                    "UPDATE rematches SET status = 'confirmed', successor_id = $1, confirmed_at = $2, \
                     confirmed_by = $3 WHERE id = $4 AND status = 'open'",
                )
                .bind(successor_id)
                .bind(now_text())
                .bind(actor_c.0.clone())
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed != 1 {
                    return Err(StoreError::conflict(
                        "status",
                        "this re-match already has a confirmed successor",
                    ));
                }
                let demands = sqlx::query(
                    "SELECT id, title FROM demands WHERE point_id = $1 \
                     AND status NOT IN ('closed', 'rejected', 'merged') ORDER BY id",
                )
                .bind(point_id)
                .fetch_all(&mut *tx)
                .await?;
                let follow_ups = sqlx::query(
                    "SELECT id, follow_up, visited_on FROM visits WHERE point_id = $1 \
                     AND follow_up_person_id = $2 AND follow_up_done_at IS NULL ORDER BY id",
                )
                .bind(point_id)
                .bind(predecessor)
                .fetch_all(&mut *tx)
                .await?;
                let mut items: Vec<(String, i64, String)> = Vec::new();
                for d in &demands {
                    items.push(("demand".into(), d.try_get("id")?, d.try_get("title")?));
                }
                for v in &follow_ups {
                    let text: Option<String> = v.try_get("follow_up")?;
                    let on: String = v.try_get("visited_on")?;
                    items.push((
                        "follow_up".into(),
                        v.try_get("id")?,
                        format!("{on} · {}", text.unwrap_or_default()),
                    ));
                }
                for (kind, item, summary) in &items {
                    sqlx::query(
                        "INSERT INTO handover_items (rematch_id, kind, item_id, summary) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(id)
                    .bind(kind)
                    .bind(*item)
                    .bind(summary)
                    .execute(&mut *tx)
                    .await?;
                }
                audit::append(
                    tx,
                    &actor_c,
                    "confirm",
                    "rematch",
                    &id.to_string(),
                    None::<&()>,
                    Some(&serde_json::json!({
                        "successor_id": successor_id, "on": on, "handover_items": items.len(),
                    })),
                )
                .await?;
                Ok(())
            })
        })
        .await?;
        self.rematch(id, &DataScope::everything()).await
    }

    /// The successor acknowledges the handover on `on`: they are linked to the point
    /// from that day and owe its follow-ups from now on.
    pub async fn acknowledge_rematch(
        &self,
        actor: &Actor,
        person_id: i64,
        id: i64,
        on: NaiveDate,
    ) -> Result<Rematch> {
        let r = self.rematch(id, &DataScope::everything()).await?;
        if r.successor_id != Some(person_id) {
            return Err(StoreError::not_found("re-match"));
        }
        if r.status != RematchStatus::Confirmed {
            return Err(StoreError::conflict(
                "status",
                "this handover is not waiting for an acknowledgement",
            ));
        }
        let point = self.point(r.point_id, &DataScope::everything()).await?;
        let actor = actor.clone();
        let follow_ups: Vec<i64> = r
            .items
            .iter()
            .filter(|i| i.kind == "follow_up")
            .map(|i| i.item_id)
            .collect();
        self.write(move |tx| {
            Box::pin(async move {
                let changed = sqlx::query(
                    "UPDATE rematches SET status = 'acknowledged', acknowledged_at = $1 \
                     WHERE id = $2 AND status = 'confirmed'",
                )
                .bind(now_text())
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed != 1 {
                    return Err(StoreError::conflict(
                        "status",
                        "this handover is not waiting for an acknowledgement",
                    ));
                }
                let link = insert_link(
                    tx,
                    &point,
                    person_id,
                    Validity { from: on, to: None },
                    Some(id),
                )
                .await?;
                for v in &follow_ups {
                    sqlx::query("UPDATE visits SET follow_up_person_id = $1 WHERE id = $2")
                        .bind(person_id)
                        .bind(*v)
                        .execute(&mut *tx)
                        .await?;
                }
                audit::append(
                    tx,
                    &actor,
                    "acknowledge",
                    "rematch",
                    &id.to_string(),
                    None::<&()>,
                    Some(&serde_json::json!({
                        "link_id": link, "on": on, "follow_ups_moved": follow_ups.len(),
                    })),
                )
                .await?;
                Ok(())
            })
        })
        .await?;
        self.rematch(id, &DataScope::everything()).await
    }

    // ----- visits -----

    /// Records a visit dated `visited_on` (never after `today`), with its photos, and
    /// counts it in the tallies.
    pub async fn record_visit(
        &self,
        actor: &Actor,
        scope: &DataScope,
        v: &NewVisit,
        today: NaiveDate,
    ) -> Result<Visit> {
        check_visit_date(v.visited_on, today)?;
        let point = match v.point_id {
            Some(id) => Some(
                self.point(id, scope)
                    .await
                    .map_err(|_| invalid("point_id", "unknown_point", "no such contact point"))?,
            ),
            None => None,
        };
        let place = match (&v.place_code, &point) {
            (Some(code), _) => {
                let mut conn = self.reader.acquire().await?;
                place_in_scope(&mut conn, code, scope, "place_code").await?
            }
            (None, Some(p)) => self.place(p.place_id, &DataScope::everything()).await?,
            (None, None) => {
                return Err(invalid(
                    "place_code",
                    "required",
                    "say where the visit was: a contact point or a place",
                ))
            }
        };
        let person: Option<String> = sqlx::query_scalar("SELECT name FROM people WHERE id = $1")
            .bind(v.person_id)
            .fetch_optional(&self.reader)
            .await?;
        if person.is_none() {
            return Err(invalid("person_id", "unknown_person", "no such person"));
        }
        // Notes may be left for later; when given they follow the usual text rules.
        let notes = if v.notes.trim().is_empty() {
            String::new()
        } else {
            lianxin_domain::intake::text("notes", &v.notes, 4000)?
        };
        let follow_up = match v.follow_up.as_deref().map(str::trim) {
            Some(f) if !f.is_empty() => Some(lianxin_domain::intake::text("follow_up", f, 500)?),
            _ => None,
        };
        let participants: Vec<String> = v
            .participants
            .iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        if participants.len() > 100 || participants.iter().any(|p| p.chars().count() > 60) {
            return Err(invalid(
                "participants",
                "too_long",
                "at most 100 participants, each up to 60 characters",
            ));
        }
        let (actor, v) = (actor.clone(), v.clone());
        let id = self
            .write(move |tx| {
                Box::pin(async move {
                    let now = now_text();
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO visits (point_id, person_id, kind, visited_on, place_id, place_path, \
                         participants, notes, follow_up, follow_up_person_id, region, created_by, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
                    )
                    .bind(v.point_id)
                    .bind(v.person_id)
                    .bind(v.kind.as_str())
                    .bind(v.visited_on.to_string())
                    .bind(place.id)
                    .bind(&place.path)
                    .bind(participants.join("\n"))
                    .bind(&notes)
                    .bind(&follow_up)
                    .bind(follow_up.as_ref().map(|_| v.person_id))
                    .bind(&place.region)
                    .bind(actor.0.clone())
                    .bind(&now)
                    .fetch_one(&mut *tx)
                    .await?;
                    for photo in &v.photos {
                        sqlx::query(
                            "INSERT INTO visit_photos (visit_id, content_type, size, sha256, bytes, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6)",
                        )
                        .bind(id)
                        .bind(&photo.content_type)
                        .bind(i64::try_from(photo.bytes.len()).unwrap_or(i64::MAX))
                        .bind(&photo.sha256)
                        .bind(photo.bytes.clone())
                        .bind(&now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    if let Some(point_id) = v.point_id {
                        bump_tally(tx, point_id, v.person_id, v.visited_on.year(), &place.region)
                            .await?;
                    }
                    audit::append(
                        tx,
                        &actor,
                        "create",
                        "visit",
                        &id.to_string(),
                        None::<&()>,
                        Some(&serde_json::json!({
                            "point_id": v.point_id, "person_id": v.person_id, "kind": v.kind,
                            "visited_on": v.visited_on, "place_id": place.id,
                            "photos": v.photos.len(),
                        })),
                    )
                    .await?;
                    Ok(id)
                })
            })
            .await?;
        self.visit(id, &DataScope::everything()).await
    }

    pub async fn visit(&self, id: i64, scope: &DataScope) -> Result<Visit> {
        let row = sqlx::query(&format!("{VISIT_SELECT} WHERE v.id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::not_found("visit"))?;
        let path: String = row.try_get("place_path")?;
        if !scope.allows_place(&path) {
            return Err(StoreError::not_found("visit"));
        }
        let mut v = visit_from_row(&row)?;
        v.photo_ids =
            sqlx::query_scalar("SELECT id FROM visit_photos WHERE visit_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&self.reader)
                .await?;
        Ok(v)
    }

    /// Visits in scope, newest first.
    pub async fn visits(&self, scope: &DataScope, q: &VisitQuery) -> Result<Vec<Visit>> {
        let (_, places) = scope_patterns(scope);
        let mut sql = format!("{VISIT_SELECT} WHERE v.place_path LIKE $1");
        let mut n = 1;
        let mut binds: Vec<String> = Vec::new();
        let mut ids: Vec<i64> = Vec::new();
        if let Some(p) = q.point_id {
            n += 1;
            sql.push_str(&format!(" AND v.point_id = ${n}"));
            ids.push(p);
        }
        if let Some(p) = q.person_id {
            n += 1;
            sql.push_str(&format!(" AND v.person_id = ${n}"));
            ids.push(p);
        }
        if let Some(f) = q.from {
            binds.push(f.to_string());
            sql.push_str(&format!(" AND v.visited_on >= ${}", n + binds.len()));
        }
        if let Some(t) = q.to {
            binds.push(t.to_string());
            sql.push_str(&format!(" AND v.visited_on <= ${}", n + binds.len()));
        }
        sql.push_str(&format!(
            " ORDER BY v.visited_on DESC, v.id DESC LIMIT {}",
            q.limit.clamp(1, 1000)
        ));
        let mut query = sqlx::query(&sql).bind(places);
        for i in ids {
            query = query.bind(i);
        }
        for b in binds {
            query = query.bind(b);
        }
        let rows = query.fetch_all(&self.reader).await?;
        rows.iter().map(visit_from_row).collect()
    }

    pub async fn visit_photo(&self, visit_id: i64, photo_id: i64) -> Result<(String, Vec<u8>)> {
        let row = sqlx::query(
            "SELECT content_type, bytes FROM visit_photos WHERE visit_id = $1 AND id = $2",
        )
        .bind(visit_id)
        .bind(photo_id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::not_found("photo"))?;
        Ok((row.try_get("content_type")?, row.try_get("bytes")?))
    }

    /// Demands collected on these visits, with where each stands.
    pub async fn visit_demands(&self, visit_ids: &[i64]) -> Result<Vec<VisitDemand>> {
        if visit_ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = visit_ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT id, title, status, deadline, received_at, answered_at, visit_id FROM demands \
             WHERE visit_id IN ({list}) ORDER BY id"
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(VisitDemand {
                    id: r.try_get("id")?,
                    title: r.try_get("title")?,
                    status: r.try_get("status")?,
                    deadline: opt_ts(r, "deadline")?
                        .ok_or_else(|| StoreError::Config("demand without deadline".into()))?,
                    received_at: opt_ts(r, "received_at")?
                        .ok_or_else(|| StoreError::Config("demand without receipt".into()))?,
                    answered_at: opt_ts(r, "answered_at")?,
                    visit_id: r.try_get("visit_id")?,
                })
            })
            .collect()
    }

    /// Marks a visit's follow-up done; only whoever owes it (or an admin, `None`).
    pub async fn complete_follow_up(
        &self,
        actor: &Actor,
        scope: &DataScope,
        visit_id: i64,
        by_person: Option<i64>,
    ) -> Result<Visit> {
        let v = self.visit(visit_id, scope).await?;
        if v.follow_up.is_none() || v.follow_up_done_at.is_some() {
            return Err(StoreError::conflict(
                "follow_up",
                "this visit owes no follow-up",
            ));
        }
        if by_person.is_some_and(|p| v.follow_up_person_id != Some(p)) {
            return Err(StoreError::conflict(
                "follow_up",
                "the follow-up is owed by someone else",
            ));
        }
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                sqlx::query("UPDATE visits SET follow_up_done_at = $1 WHERE id = $2")
                    .bind(now_text())
                    .bind(visit_id)
                    .execute(&mut *tx)
                    .await?;
                audit::append(
                    tx,
                    &actor,
                    "follow_up_done",
                    "visit",
                    &visit_id.to_string(),
                    None::<&()>,
                    None::<&()>,
                )
                .await?;
                Ok(())
            })
        })
        .await?;
        self.visit(visit_id, &DataScope::everything()).await
    }

    // ----- the district view -----

    /// Officials × points × visits × demands for `year`, within `scope`, as of
    /// `today`. Visits come from the tallies, demands from their point index.
    pub async fn district_view(
        &self,
        scope: &DataScope,
        year: i32,
        today: NaiveDate,
    ) -> Result<DistrictView> {
        let (_, places) = scope_patterns(scope);
        let tallies = sqlx::query(
            "SELECT t.point_id, t.person_id, t.visits FROM visit_tallies t \
             JOIN contact_points c ON c.id = t.point_id WHERE c.place_path LIKE $1 AND t.year = $2",
        )
        .bind(&places)
        .bind(i64::from(year))
        .fetch_all(&self.reader)
        .await?;
        let mut visits = Vec::with_capacity(tallies.len());
        for r in &tallies {
            visits.push((
                r.try_get::<i64, _>("point_id")?,
                r.try_get::<i64, _>("person_id")?,
                r.try_get::<i64, _>("visits")?,
            ));
        }
        self.assemble_view(scope, year, today, visits).await
    }

    /// The same view computed the slow way, counting the visits table: the baseline
    /// the benchmark compares with, and a check on the tallies in tests.
    pub async fn district_view_by_scan(
        &self,
        scope: &DataScope,
        year: i32,
        today: NaiveDate,
    ) -> Result<DistrictView> {
        let (_, places) = scope_patterns(scope);
        let rows = sqlx::query(
            "SELECT point_id, person_id, COUNT(*) AS n FROM visits \
             WHERE place_path LIKE $1 AND point_id IS NOT NULL \
             AND visited_on >= $2 AND visited_on <= $3 GROUP BY point_id, person_id",
        )
        .bind(&places)
        .bind(format!("{year}-01-01"))
        .bind(format!("{year}-12-31"))
        .fetch_all(&self.reader)
        .await?;
        let mut visits = Vec::with_capacity(rows.len());
        for r in &rows {
            visits.push((
                r.try_get::<i64, _>("point_id")?,
                r.try_get::<i64, _>("person_id")?,
                r.try_get::<i64, _>("n")?,
            ));
        }
        self.assemble_view(scope, year, today, visits).await
    }

    async fn assemble_view(
        &self,
        scope: &DataScope,
        year: i32,
        today: NaiveDate,
        visits: Vec<(i64, i64, i64)>,
    ) -> Result<DistrictView> {
        let (_, places) = scope_patterns(scope);
        let rules = self.governance_rules().await?;
        let points = self.points(scope).await?;
        let point_ids: BTreeSet<i64> = points.iter().map(|p| p.id).collect();
        // Links valid today (for "linked now") and during the year (for "17 officials").
        let links = sqlx::query(
            "SELECT l.point_id, l.person_id, pe.name, l.valid_from, l.valid_to FROM point_links l \
             JOIN contact_points c ON c.id = l.point_id JOIN people pe ON pe.id = l.person_id \
             WHERE c.place_path LIKE $1 AND l.valid_from <= $2 AND (l.valid_to IS NULL OR l.valid_to > $3)",
        )
        .bind(&places)
        .bind(format!("{year}-12-31"))
        .bind(format!("{year}-01-01"))
        .fetch_all(&self.reader)
        .await?;
        let mut linked_now: BTreeMap<i64, Vec<(i64, String)>> = BTreeMap::new();
        let mut officials: BTreeMap<i64, OfficialLine> = BTreeMap::new();
        for r in &links {
            let point_id: i64 = r.try_get("point_id")?;
            let person_id: i64 = r.try_get("person_id")?;
            let name: String = r.try_get("name")?;
            let v = Validity {
                from: day("valid_from", r.try_get("valid_from")?)?
                    .ok_or_else(|| StoreError::Config("link without start".into()))?,
                to: day("valid_to", r.try_get("valid_to")?)?,
            };
            if v.contains(today) {
                linked_now
                    .entry(point_id)
                    .or_default()
                    .push((person_id, name.clone()));
            }
            let line = officials.entry(person_id).or_insert_with(|| OfficialLine {
                person_id,
                name,
                post: None,
                points: Vec::new(),
                figures: Figures::default(),
            });
            if !line.points.contains(&point_id) {
                line.points.push(point_id);
            }
        }
        // Demands collected at the points, received in the year, with the visiting
        // official; medians need the individual times, so they are read row by row.
        // `CROSS JOIN` makes SQLite start from the scope's points (a few dozen for a
        // district) rather than from every demand of the year; PostgreSQL plans it
        // like any inner join.
        let demand_rows = sqlx::query(
            "SELECT d.point_id, v.person_id, d.received_at, d.answered_at FROM contact_points c \
             CROSS JOIN demands d JOIN visits v ON v.id = d.visit_id \
             WHERE d.point_id = c.id AND c.place_path LIKE $1 \
             AND d.received_at >= $2 AND d.received_at < $3 \
             AND d.status NOT IN ('rejected', 'merged')",
        )
        .bind(&places)
        .bind(format!("{year}-01-01"))
        .bind(format!("{}-01-01", year + 1))
        .fetch_all(&self.reader)
        .await?;
        let mut point_hours: HashMap<i64, Vec<f64>> = HashMap::new();
        let mut person_hours: HashMap<i64, Vec<f64>> = HashMap::new();
        let mut point_fig: HashMap<i64, Figures> = HashMap::new();
        let mut person_fig: HashMap<i64, Figures> = HashMap::new();
        let mut all_hours = Vec::new();
        let mut totals = Figures::default();
        for r in &demand_rows {
            let point_id: i64 = r.try_get("point_id")?;
            let person_id: i64 = r.try_get("person_id")?;
            let received = opt_ts(r, "received_at")?;
            let answered = opt_ts(r, "answered_at")?;
            let hours = match (received, answered) {
                (Some(a), Some(b)) => Some((b - a).num_seconds() as f64 / 3600.0),
                _ => None,
            };
            for (fig, hs, key) in [
                (&mut point_fig, &mut point_hours, point_id),
                (&mut person_fig, &mut person_hours, person_id),
            ] {
                let f = fig.entry(key).or_default();
                f.demands += 1;
                if let Some(h) = hours {
                    f.answered += 1;
                    hs.entry(key).or_default().push(h);
                }
            }
            totals.demands += 1;
            if let Some(h) = hours {
                totals.answered += 1;
                all_hours.push(h);
            }
        }
        for (point_id, person_id, n) in &visits {
            if !point_ids.contains(point_id) {
                continue;
            }
            point_fig.entry(*point_id).or_default().visits += n;
            person_fig.entry(*person_id).or_default().visits += n;
            totals.visits += n;
            // Someone who visited without a link that year still shows as an official.
            if !officials.contains_key(person_id) {
                officials.insert(
                    *person_id,
                    OfficialLine {
                        person_id: *person_id,
                        name: String::new(),
                        post: None,
                        points: Vec::new(),
                        figures: Figures::default(),
                    },
                );
            }
        }
        totals.median_hours_to_answer = median(&mut all_hours);
        // Names and posts of the officials.
        if !officials.is_empty() {
            let ids = officials
                .keys()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let rows = sqlx::query(&format!(
                "SELECT pe.id, pe.name, (SELECT r.post FROM relations r WHERE r.person_id = pe.id \
                 AND r.kind = 'holds_post' ORDER BY r.valid_to IS NULL DESC, r.valid_from DESC LIMIT 1) AS post \
                 FROM people pe WHERE pe.id IN ({ids})"
            ))
            .fetch_all(&self.reader)
            .await?;
            for r in &rows {
                let id: i64 = r.try_get("id")?;
                if let Some(line) = officials.get_mut(&id) {
                    line.name = r.try_get("name")?;
                    line.post = r.try_get("post")?;
                }
            }
        }
        let mut official_lines: Vec<OfficialLine> = officials
            .into_values()
            .map(|mut o| {
                let mut f = person_fig.remove(&o.person_id).unwrap_or_default();
                f.median_hours_to_answer =
                    person_hours.get_mut(&o.person_id).and_then(|h| median(h));
                o.figures = f;
                o
            })
            .collect();
        official_lines.sort_by(|a, b| {
            b.figures
                .visits
                .cmp(&a.figures.visits)
                .then(a.name.cmp(&b.name))
        });

        let open: Vec<(i64, String)> = {
            let rows = sqlx::query(
                "SELECT r.point_id, r.status FROM rematches r JOIN contact_points c ON c.id = r.point_id \
                 WHERE c.place_path LIKE $1 AND r.status <> 'acknowledged'",
            )
            .bind(&places)
            .fetch_all(&self.reader)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("point_id")?, r.try_get("status")?)))
                .collect::<Result<_>>()?
        };
        // The norm: N a year; in the current year, the share of it due by today.
        let expected = |n: i64| -> i64 {
            if year < today.year() {
                n
            } else if year > today.year() {
                0
            } else {
                let elapsed = f64::from(today.ordinal()) / 365.0;
                ((n as f64) * elapsed.min(1.0)).floor() as i64
            }
        };
        let mut warnings = Vec::new();
        let mut point_lines = Vec::with_capacity(points.len());
        for p in points {
            let score = priority(p.indicators, rules.weights).score;
            let mut f = point_fig.remove(&p.id).unwrap_or_default();
            f.median_hours_to_answer = point_hours.get_mut(&p.id).and_then(|h| median(h));
            let linked = linked_now.remove(&p.id).unwrap_or_default();
            let rematch = open.iter().find(|(id, _)| *id == p.id);
            let visits_expected = expected(rules.min_visits_per_year);
            let warn = |code: &str| Warning {
                code: code.into(),
                point_id: p.id,
                point_name: p.name.clone(),
                priority: score,
                visits: f.visits,
                visits_expected,
            };
            if linked.is_empty() {
                warnings.push(warn(if score >= HIGH_PRIORITY {
                    "unlinked_high_priority"
                } else {
                    "unlinked"
                }));
            }
            match rematch.map(|(_, status)| status.as_str()) {
                Some("confirmed") => warnings.push(warn("handover_pending")),
                // Others may still hold the point: the change of post still needs a
                // successor decided.
                Some(_) => warnings.push(warn("rematch_open")),
                None => {}
            }
            if f.visits < visits_expected {
                warnings.push(warn("visits_behind"));
            }
            point_lines.push(PointLine {
                priority: score,
                officials: linked,
                figures: f,
                visits_expected,
                rematch_open: rematch.is_some(),
                point: p,
            });
        }
        // High-priority unlinked points first, then the rest by severity.
        let rank = |c: &str| match c {
            "unlinked_high_priority" => 0,
            "rematch_open" => 1,
            "handover_pending" => 2,
            "unlinked" => 3,
            _ => 4,
        };
        warnings.sort_by(|a, b| {
            rank(&a.code)
                .cmp(&rank(&b.code))
                .then(a.point_id.cmp(&b.point_id))
        });
        Ok(DistrictView {
            year,
            officials: official_lines,
            points: point_lines,
            totals,
            warnings,
            open_rematches: open.len() as i64,
        })
    }
}

const REMATCH_SELECT: &str = "SELECT r.id, r.point_id, c.name AS point_name, c.place_path, \
     r.predecessor_id, pp.name AS predecessor_name, r.post, r.ended_on, r.status, r.successor_id, \
     sp.name AS successor_name, r.opened_at, r.confirmed_at, r.acknowledged_at, \
     c.task_load, c.weakness, c.complexity \
     FROM rematches r JOIN contact_points c ON c.id = r.point_id \
     JOIN people pp ON pp.id = r.predecessor_id LEFT JOIN people sp ON sp.id = r.successor_id";

fn rematch_from_row(r: &AnyRow) -> Result<Rematch> {
    let status: String = r.try_get("status")?;
    Ok(Rematch {
        id: r.try_get("id")?,
        point_id: r.try_get("point_id")?,
        point_name: r.try_get("point_name")?,
        predecessor_id: r.try_get("predecessor_id")?,
        predecessor_name: r.try_get("predecessor_name")?,
        post: r.try_get("post")?,
        ended_on: day("ended_on", r.try_get("ended_on")?)?
            .ok_or_else(|| StoreError::Config("re-match without a day".into()))?,
        status: RematchStatus::parse(&status)?,
        successor_id: r.try_get("successor_id")?,
        successor_name: r.try_get("successor_name")?,
        opened_at: opt_ts(r, "opened_at")?
            .ok_or_else(|| StoreError::Config("re-match without opened_at".into()))?,
        confirmed_at: opt_ts(r, "confirmed_at")?,
        acknowledged_at: opt_ts(r, "acknowledged_at")?,
        items: Vec::new(),
        indicators: indicators_of(r)?,
    })
}

fn indicators_of(r: &AnyRow) -> Result<PointIndicators> {
    let get = |c: &str| -> Result<u8> {
        let v: i64 = r.try_get(c)?;
        u8::try_from(v).map_err(|_| StoreError::Config(format!("bad stored {c}")))
    };
    Ok(PointIndicators::new(
        get("task_load")?,
        get("weakness")?,
        get("complexity")?,
    )?)
}

async fn insert_link(
    tx: &mut AnyConnection,
    point: &ContactPoint,
    person_id: i64,
    validity: Validity,
    rematch_id: Option<i64>,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO point_links (point_id, person_id, valid_from, valid_to, rematch_id, region, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(point.id)
    .bind(person_id)
    .bind(validity.from.to_string())
    .bind(validity.to.map(|d| d.to_string()))
    .bind(rematch_id)
    .bind(&point.region)
    .bind(now_text())
    .fetch_one(&mut *tx)
    .await?)
}

/// Adds one visit to the tally of (point, official, year).
pub(crate) async fn bump_tally(
    tx: &mut AnyConnection,
    point_id: i64,
    person_id: i64,
    year: i32,
    region: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO visit_tallies (point_id, person_id, year, visits, region) VALUES ($1, $2, $3, 1, $4) \
         ON CONFLICT (point_id, person_id, year) DO UPDATE SET visits = visit_tallies.visits + 1",
    )
    .bind(point_id)
    .bind(person_id)
    .bind(i64::from(year))
    .bind(region)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The median, `None` for no values.
fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}
