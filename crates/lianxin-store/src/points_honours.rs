//! The points scheme around the ledger (migration 0007): the year's honours, the
//! scheme's settings, the awards the platform gives by itself, and the figures the
//! organisation's page draws.
//!
//! - **Honours** rank people by the points they *earned* in a Shanghai calendar year
//!   per category (`lianxin_domain::points::rank`), not by balance: spending points on
//!   the catalogue never costs anyone their place. An award whose transfer was
//!   reversed (an odd number of corrections down its chain) does not count. An
//!   official confirms a shortlist from the ranking; what is confirmed (rank, points,
//!   a certificate number) is kept as it was that day, so a printed certificate is
//!   never silently rewritten.
//! - **Automatic awards**: a rider's sentinel report (channel `rider_sentinel`) that
//!   the owner unit accepted in the demand loop earns `sentinel_report_confirmed`, and
//!   a need completed by a registered member earns `volunteer_hour` once per hour
//!   (rounded, at least one). [`Store::points_award_pending`] finds such events that
//!   have no award yet and gives them all in one import. Award ids are derived from
//!   the event, so running it again — after a crash, or from two processes at once —
//!   never awards twice; the server runs it after each step and on a timer. The look
//!   for events without an award goes through the awards' (person, at) index: there
//!   is no index on the event reference, which would slow every import.

use crate::audit::{self, Actor};
use crate::demands::ts;
use crate::points::AwardRequest;
use crate::{now_text, Result, Store, StoreError};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use lianxin_domain::calendar::SHANGHAI;
use lianxin_domain::points::{rank, rule_in_force, Earned, Quality, Rule};
use lianxin_domain::ValidationError;
use serde::Serialize;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The rule code a confirmed sentinel report earns.
pub const SENTINEL_RULE: &str = "sentinel_report_confirmed";
/// The rule code each hour of a completed need earns.
pub const VOLUNTEER_RULE: &str = "volunteer_hour";
/// How many of the ranking an official is shown to choose from, per category.
pub const SHORTLIST: usize = 10;

fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationError::new(field, code, message))
}

/// One place in a year's ranking, with the person's name and whether the place has
/// been confirmed as an honour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RankedPerson {
    pub rank: usize,
    pub person_id: i64,
    pub name: String,
    pub category: String,
    pub points: i64,
    pub reached_at: DateTime<Utc>,
    pub confirmed: bool,
}

/// A confirmed honour: what its certificate prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Honour {
    pub year: i64,
    pub category: String,
    pub person_id: i64,
    pub name: String,
    pub rank: i64,
    pub points: i64,
    pub title: String,
    pub certificate_no: String,
    pub confirmed_by: String,
    pub confirmed_at: String,
}

/// What [`Store::points_award_pending`] gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PendingSummary {
    pub sentinel_reports: usize,
    pub volunteer_hours: usize,
    pub points: i64,
    /// The demand events looked at so far: pass it as `from_event` next time to look
    /// only at newer ones.
    pub next_event: i64,
}

/// Awards per day (Shanghai) and rule, for the organisation's chart and export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwardDay {
    pub day: String,
    pub rule_code: String,
    pub awards: i64,
    pub points: i64,
}

/// A recorded award, newest first on the organisation's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwardRow {
    pub award_id: String,
    pub event_ref: String,
    pub person_id: i64,
    pub name: String,
    pub org_id: i64,
    pub rule_code: String,
    pub rule_version: i64,
    pub category: String,
    pub quality: String,
    pub at: String,
    pub requested: i64,
    pub points: i64,
}

/// The first instant of a Shanghai calendar year, as stored text.
fn year_start(year: i32) -> Result<String> {
    let day = NaiveDate::from_ymd_opt(year, 1, 1)
        .ok_or_else(|| invalid("year", "invalid_year", "the year is out of range"))?;
    let local = SHANGHAI
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
        .single()
        .expect("Shanghai has no daylight saving");
    Ok(ts(local.with_timezone(&Utc)))
}

fn check_year(year: i32) -> Result<()> {
    if !(2000..=2100).contains(&year) {
        return Err(invalid(
            "year",
            "invalid_year",
            "the year must be 2000 to 2100",
        ));
    }
    Ok(())
}

/// Points earned in a year per person and category, leaving out awards whose
/// transfer is reversed.
async fn earned_in(conn: &mut AnyConnection, year: i32) -> Result<Vec<Earned>> {
    let (from, until) = (year_start(year)?, year_start(year + 1)?);
    let reversals: HashMap<i64, i64> =
        sqlx::query("SELECT id, reverses_id FROM points_transfers WHERE reverses_id IS NOT NULL")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("reverses_id")?, r.try_get("id")?)))
            .collect::<Result<_>>()?;
    let rows = sqlx::query(
        "SELECT a.person_id, a.category, a.points, a.at, t.id AS transfer_id \
         FROM points_awards a JOIN points_transfers t ON t.award_id = a.award_id \
         WHERE a.at >= $1 AND a.at < $2 AND a.points > 0",
    )
    .bind(&from)
    .bind(&until)
    .fetch_all(&mut *conn)
    .await?;
    let mut sums: BTreeMap<(i64, String), (i64, DateTime<Utc>)> = BTreeMap::new();
    for r in rows {
        let mut depth = 0;
        let mut current: i64 = r.try_get("transfer_id")?;
        while let Some(next) = reversals.get(&current) {
            depth += 1;
            current = *next;
        }
        if depth % 2 == 1 {
            continue;
        }
        let at: String = r.try_get("at")?;
        let at = crate::demands::parse_ts(&at)?;
        let entry = sums
            .entry((r.try_get("person_id")?, r.try_get("category")?))
            .or_insert((0, at));
        entry.0 += r.try_get::<i64, _>("points")?;
        entry.1 = entry.1.max(at);
    }
    Ok(sums
        .into_iter()
        .map(|((person_id, category), (points, reached_at))| Earned {
            person_id,
            category,
            points,
            reached_at,
        })
        .collect())
}

async fn names_of(conn: &mut AnyConnection, ids: &[i64]) -> Result<HashMap<i64, String>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, name FROM people WHERE id IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.insert(r.try_get("id")?, r.try_get("name")?);
        }
    }
    Ok(out)
}

fn honour_from(r: &sqlx::any::AnyRow) -> Result<Honour> {
    Ok(Honour {
        year: r.try_get("year")?,
        category: r.try_get("category")?,
        person_id: r.try_get("person_id")?,
        name: r.try_get("name")?,
        rank: r.try_get("rank")?,
        points: r.try_get("points")?,
        title: r.try_get("title")?,
        certificate_no: r.try_get("certificate_no")?,
        confirmed_by: r.try_get("confirmed_by")?,
        confirmed_at: r.try_get("confirmed_at")?,
    })
}

const HONOUR_SELECT: &str = "SELECT h.year, h.category, h.person_id, p.name, h.rank, h.points, \
     h.title, h.certificate_no, h.confirmed_by, h.confirmed_at \
     FROM points_honours h JOIN people p ON p.id = h.person_id";

impl Store {
    /// A year's ranking by points earned, per category (categories in name order,
    /// ranks 1, 2, 3 … within each), with names and what is already confirmed.
    pub async fn points_ranking(&self, year: i32) -> Result<Vec<RankedPerson>> {
        check_year(year)?;
        let mut conn = self.reader.acquire().await?;
        let ranked = rank(earned_in(&mut conn, year).await?);
        let ids: Vec<i64> = ranked
            .iter()
            .map(|r| r.person_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let names = names_of(&mut conn, &ids).await?;
        let confirmed: HashSet<(String, i64)> =
            sqlx::query("SELECT category, person_id FROM points_honours WHERE year = $1")
                .bind(i64::from(year))
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("category")?, r.try_get("person_id")?)))
                .collect::<Result<_>>()?;
        Ok(ranked
            .into_iter()
            .map(|r| RankedPerson {
                rank: r.rank,
                name: names.get(&r.person_id).cloned().unwrap_or_default(),
                confirmed: confirmed.contains(&(r.category.clone(), r.person_id)),
                person_id: r.person_id,
                category: r.category,
                points: r.points,
                reached_at: r.reached_at,
            })
            .collect())
    }

    /// Confirms honours for a year and category: each person must be on the
    /// shortlist (the first [`SHORTLIST`] of the ranking, computed again inside the
    /// transaction). A category's honours are confirmed once (`Conflict` after).
    pub async fn points_confirm_honours(
        &self,
        actor: &Actor,
        year: i32,
        category: &str,
        title: &str,
        person_ids: Vec<i64>,
    ) -> Result<Vec<Honour>> {
        check_year(year)?;
        let title = title.trim().to_string();
        if title.is_empty() || title.chars().count() > 40 {
            return Err(invalid(
                "title",
                "invalid_title",
                "the honour's title is 1 to 40 characters, e.g. 先锋骑手",
            ));
        }
        if person_ids.is_empty() {
            return Err(invalid(
                "person_ids",
                "empty_shortlist",
                "choose at least one person from the shortlist",
            ));
        }
        if person_ids.iter().collect::<HashSet<_>>().len() != person_ids.len() {
            return Err(invalid(
                "person_ids",
                "duplicate_person",
                "a person is named twice",
            ));
        }
        let category = category.trim().to_string();
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let done: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM points_honours WHERE year = $1 AND category = $2",
                )
                .bind(i64::from(year))
                .bind(&category)
                .fetch_one(&mut *tx)
                .await?;
                if done > 0 {
                    return Err(StoreError::conflict(
                        "category",
                        "this year's honours in this category are already confirmed",
                    ));
                }
                let shortlist: Vec<_> = rank(earned_in(tx, year).await?)
                    .into_iter()
                    .filter(|r| r.category == category)
                    .take(SHORTLIST)
                    .collect();
                let now = now_text();
                let who = actor.0.clone();
                let mut chosen = Vec::new();
                for id in &person_ids {
                    let Some(r) = shortlist.iter().find(|r| r.person_id == *id) else {
                        return Err(invalid(
                            "person_ids",
                            "not_on_shortlist",
                            format!("person {id} is not on the shortlist of {category} for {year}"),
                        ));
                    };
                    chosen.push(r.clone());
                }
                chosen.sort_by_key(|r| r.rank);
                for r in &chosen {
                    sqlx::query(
                        "INSERT INTO points_honours (year, category, person_id, rank, points, title, \
                         certificate_no, confirmed_by, confirmed_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(i64::from(year))
                    .bind(&category)
                    .bind(r.person_id)
                    .bind(r.rank as i64)
                    .bind(r.points)
                    .bind(&title)
                    .bind(certificate_no(year, &category, r.rank))
                    .bind(&who)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                }
                let rows = sqlx::query(&format!(
                    "{HONOUR_SELECT} WHERE h.year = $1 AND h.category = $2 ORDER BY h.rank"
                ))
                .bind(i64::from(year))
                .bind(&category)
                .fetch_all(&mut *tx)
                .await?;
                let out = rows.iter().map(honour_from).collect::<Result<Vec<_>>>()?;
                audit::append(
                    tx,
                    &actor,
                    "confirm",
                    "points_honours",
                    &format!("{year}:{category}"),
                    None::<&()>,
                    Some(&out),
                )
                .await?;
                Ok(out)
            })
        })
        .await
    }

    /// A year's confirmed honours, by category then rank.
    pub async fn points_honours(&self, year: i32) -> Result<Vec<Honour>> {
        check_year(year)?;
        let rows = sqlx::query(&format!(
            "{HONOUR_SELECT} WHERE h.year = $1 ORDER BY h.category, h.rank"
        ))
        .bind(i64::from(year))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(honour_from).collect()
    }

    /// One honour by its certificate number.
    pub async fn points_honour(&self, certificate_no: &str) -> Result<Honour> {
        let row = sqlx::query(&format!("{HONOUR_SELECT} WHERE h.certificate_no = $1"))
            .bind(certificate_no)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::not_found("honour"))?;
        honour_from(&row)
    }

    /// The organisation whose pool issues the platform's own awards (none: they wait).
    pub async fn points_issuer(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT issuer_org_id FROM points_settings WHERE id = 1")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    pub async fn points_set_issuer(&self, actor: &Actor, org_id: Option<i64>) -> Result<()> {
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                if let Some(id) = org_id {
                    let known: Option<i64> =
                        sqlx::query_scalar("SELECT id FROM orgs WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if known.is_none() {
                        return Err(invalid("org_id", "unknown_org", "no such organisation"));
                    }
                }
                let before: Option<i64> =
                    sqlx::query_scalar("SELECT issuer_org_id FROM points_settings WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?;
                sqlx::query(
                    "UPDATE points_settings SET issuer_org_id = $1, updated_at = $2 WHERE id = 1",
                )
                .bind(org_id)
                .bind(now_text())
                .execute(&mut *tx)
                .await?;
                audit::append(
                    tx,
                    &actor,
                    "update",
                    "points_settings",
                    "1",
                    Some(&before),
                    Some(&org_id),
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Gives the awards the platform owes by itself (see the module notes), at most
    /// `limit` events per call, in one all-or-nothing import. Nothing happens until an
    /// issuing organisation is set; an event kind waits while its rule is not in force.
    ///
    /// Sentinel reports are found through the demand events after `from_event` (0: all
    /// of them), so a caller that passes back `next_event` reads only what is new
    /// instead of every demand each time.
    pub async fn points_award_pending(
        &self,
        actor: &Actor,
        limit: i64,
        from_event: i64,
    ) -> Result<PendingSummary> {
        let Some(org) = self.points_issuer().await? else {
            return Ok(PendingSummary {
                next_event: from_event,
                ..PendingSummary::default()
            });
        };
        let rules = self.points_rules().await?;
        let (sentinel, volunteer) = (
            versions_of(&rules, SENTINEL_RULE),
            versions_of(&rules, VOLUNTEER_RULE),
        );
        let mut requests = Vec::new();
        let mut summary = PendingSummary {
            next_event: from_event,
            ..PendingSummary::default()
        };
        let last_event: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM demand_events")
            .fetch_one(&self.reader)
            .await?;
        if !sentinel.is_empty() && last_event > from_event {
            // The first event that accepted each report (研判 or a later step), among
            // the events after `from_event` (a range of the events' key).
            let rows = sqlx::query(
                "SELECT e.id AS event_id, d.id, acc.person_id, e.at FROM demand_events e \
                 JOIN demands d ON d.id = e.demand_id \
                 JOIN accounts acc ON acc.id = d.reporter_account_id \
                 WHERE e.id > $1 AND e.id <= $2 \
                   AND e.to_status IN ('assessed', 'assigned', 'in_progress') \
                   AND d.channel = 'rider_sentinel' AND acc.person_id IS NOT NULL \
                   AND NOT EXISTS (SELECT 1 FROM demand_events p WHERE p.demand_id = d.id \
                     AND p.id < e.id AND p.to_status IN ('assessed', 'assigned', 'in_progress')) \
                   AND NOT EXISTS (SELECT 1 FROM points_awards a \
                     WHERE a.person_id = acc.person_id \
                       AND a.event_ref = 'demand:' || CAST(d.id AS TEXT) AND a.rule_code = $3) \
                 ORDER BY e.id LIMIT $4",
            )
            .bind(from_event)
            .bind(last_event)
            .bind(SENTINEL_RULE)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
            // All looked at, unless the limit cut the list short.
            summary.next_event = last_event;
            if rows.len() as i64 == limit {
                if let Some(r) = rows.last() {
                    summary.next_event = r.try_get("event_id")?;
                }
            }
            for r in rows {
                let id: i64 = r.try_get("id")?;
                let at: String = r.try_get("at")?;
                let at = crate::demands::parse_ts(&at)?;
                if rule_in_force(&sentinel, at).is_none() {
                    continue;
                }
                summary.sentinel_reports += 1;
                requests.push(AwardRequest {
                    event_ref: format!("demand:{id}"),
                    person_id: r.try_get("person_id")?,
                    org_id: org,
                    rule_code: SENTINEL_RULE.into(),
                    quality: Quality::Basic,
                    at,
                });
            }
        }
        if !volunteer.is_empty() {
            let rows = sqlx::query(
                "SELECT n.id, n.claimed_by, n.done_at, n.hours FROM needs n \
                 WHERE n.status = 'done' AND n.claimed_by IS NOT NULL AND n.done_at IS NOT NULL \
                   AND NOT EXISTS (SELECT 1 FROM points_awards a \
                     WHERE a.person_id = n.claimed_by \
                       AND a.event_ref = 'need:' || CAST(n.id AS TEXT) || ':h1' AND a.rule_code = $1) \
                 ORDER BY n.id LIMIT $2",
            )
            .bind(VOLUNTEER_RULE)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?;
            for r in rows {
                let id: i64 = r.try_get("id")?;
                let at: String = r.try_get("done_at")?;
                let at = crate::demands::parse_ts(&at)?;
                if rule_in_force(&volunteer, at).is_none() {
                    continue;
                }
                let hours: Option<f64> = r.try_get("hours")?;
                for h in 1..=volunteer_hours(hours.unwrap_or(0.0)) {
                    summary.volunteer_hours += 1;
                    requests.push(AwardRequest {
                        event_ref: format!("need:{id}:h{h}"),
                        person_id: r.try_get("claimed_by")?,
                        org_id: org,
                        rule_code: VOLUNTEER_RULE.into(),
                        quality: Quality::Basic,
                        at,
                    });
                }
            }
        }
        if requests.is_empty() {
            return Ok(summary);
        }
        summary.points = self.points_import_awards(actor, requests).await?.points;
        Ok(summary)
    }

    /// Awards per Shanghai day and rule over `[from, until)` (days as `YYYY-MM-DD`).
    pub async fn points_award_days(
        &self,
        from: NaiveDate,
        until: NaiveDate,
    ) -> Result<Vec<AwardDay>> {
        let start = |d: NaiveDate| {
            ts(SHANGHAI
                .from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
                .single()
                .expect("Shanghai has no daylight saving")
                .with_timezone(&Utc))
        };
        let rows = sqlx::query(
            "SELECT rule_code, at, points FROM points_awards WHERE at >= $1 AND at < $2",
        )
        .bind(start(from))
        .bind(start(until))
        .fetch_all(&self.reader)
        .await?;
        let mut days: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        for r in rows {
            let at: String = r.try_get("at")?;
            let day = crate::demands::parse_ts(&at)?
                .with_timezone(&SHANGHAI)
                .date_naive()
                .to_string();
            let e = days.entry((day, r.try_get("rule_code")?)).or_default();
            e.0 += 1;
            e.1 += r.try_get::<i64, _>("points")?;
        }
        Ok(days
            .into_iter()
            .map(|((day, rule_code), (awards, points))| AwardDay {
                day,
                rule_code,
                awards,
                points,
            })
            .collect())
    }

    /// The latest awards, newest first (`person_id` narrows to one person).
    pub async fn points_awards(&self, person_id: Option<i64>, limit: i64) -> Result<Vec<AwardRow>> {
        let rows = sqlx::query(
            "SELECT a.award_id, a.event_ref, a.person_id, COALESCE(p.name, '') AS name, a.org_id, \
             a.rule_code, a.rule_version, a.category, a.quality, a.at, a.requested, a.points \
             FROM points_awards a LEFT JOIN people p ON p.id = a.person_id \
             WHERE ($1 < 0 OR a.person_id = $1) ORDER BY a.at DESC, a.award_id LIMIT $2",
        )
        .bind(person_id.unwrap_or(-1))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AwardRow {
                    award_id: r.try_get("award_id")?,
                    event_ref: r.try_get("event_ref")?,
                    person_id: r.try_get("person_id")?,
                    name: r.try_get("name")?,
                    org_id: r.try_get("org_id")?,
                    rule_code: r.try_get("rule_code")?,
                    rule_version: r.try_get("rule_version")?,
                    category: r.try_get("category")?,
                    quality: r.try_get("quality")?,
                    at: r.try_get("at")?,
                    requested: r.try_get("requested")?,
                    points: r.try_get("points")?,
                })
            })
            .collect()
    }

    /// Which of these people and organisations exist.
    pub async fn points_existing(
        &self,
        people: &[i64],
        orgs: &[i64],
    ) -> Result<(Vec<i64>, Vec<i64>)> {
        let mut out = (Vec::new(), Vec::new());
        for (table, ids, found) in [("people", people, &mut out.0), ("orgs", orgs, &mut out.1)] {
            for chunk in ids.chunks(500) {
                let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
                let sql = format!("SELECT id FROM {table} WHERE id IN ({})", marks.join(", "));
                let mut q = sqlx::query_scalar::<_, i64>(&sql);
                for id in chunk {
                    q = q.bind(*id);
                }
                found.extend(q.fetch_all(&self.reader).await?);
            }
        }
        Ok(out)
    }

    /// Every organisation's catalogue (for a rider, who may redeem from any).
    pub async fn points_all_items(&self) -> Result<Vec<crate::points::Item>> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT DISTINCT org_id FROM points_items ORDER BY org_id")
                .fetch_all(&self.reader)
                .await?;
        let mut out = Vec::new();
        for org in ids {
            out.extend(self.points_items(org).await?);
        }
        Ok(out)
    }

    /// A person's redemptions, newest first.
    pub async fn points_redemptions_of(&self, person_id: i64) -> Result<Vec<RedemptionRow>> {
        let rows = sqlx::query(
            "SELECT r.id, r.item_id, i.name AS item_name, r.year, r.quarter, r.cost, r.at \
             FROM points_redemptions r JOIN points_items i ON i.id = r.item_id \
             WHERE r.person_id = $1 ORDER BY r.id DESC",
        )
        .bind(person_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RedemptionRow {
                    id: r.try_get("id")?,
                    item_id: r.try_get("item_id")?,
                    item_name: r.try_get("item_name")?,
                    year: r.try_get("year")?,
                    quarter: r.try_get("quarter")?,
                    cost: r.try_get("cost")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }
}

/// A redemption as a person's page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedemptionRow {
    pub id: i64,
    pub item_id: i64,
    pub item_name: String,
    pub year: i64,
    pub quarter: i64,
    pub cost: i64,
    pub at: String,
}

fn versions_of(rules: &[Rule], code: &str) -> Vec<Rule> {
    rules.iter().filter(|r| r.code == code).cloned().collect()
}

/// A certificate's number: year, category and rank, e.g. `2026-rider-001`.
pub fn certificate_no(year: i32, category: &str, rank: usize) -> String {
    format!("{year}-{category}-{rank:03}")
}

/// The hours a completed need earns: rounded to the nearest hour, at least one for
/// any service given, at most 24.
pub fn volunteer_hours(hours: f64) -> u32 {
    if !hours.is_finite() || hours <= 0.0 {
        return 0;
    }
    (hours.round() as u32).clamp(1, 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volunteer_hours_round_with_a_floor_of_one() {
        assert_eq!(volunteer_hours(0.0), 0);
        assert_eq!(volunteer_hours(-1.0), 0);
        assert_eq!(volunteer_hours(f64::NAN), 0);
        assert_eq!(volunteer_hours(0.3), 1);
        assert_eq!(volunteer_hours(1.4), 1);
        assert_eq!(volunteer_hours(2.5), 3);
        assert_eq!(volunteer_hours(100.0), 24);
    }

    #[test]
    fn years_start_at_shanghai_midnight() {
        assert_eq!(year_start(2026).unwrap(), "2025-12-31T16:00:00.000Z");
        assert!(check_year(1999).is_err());
        assert_eq!(certificate_no(2026, "rider", 3), "2026-rider-003");
    }
}
