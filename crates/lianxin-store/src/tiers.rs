//! Organisation tiers (抓两头带中间): indicators with their evidence, the tier board,
//! improvement plans with tracked actions, and model designations.
//!
//! A tier is never stored. The board reads each party organisation's indicators for a
//! year and the thresholds in `governance_rules`, and asks
//! [`lianxin_domain::contact::tier`] — so the evidence shown beside a tier is exactly
//! what decided it, and new thresholds re-tier every year at once.
//!
//! Reads and writes take a [`DataScope`]; an organisation outside it (and its plans,
//! actions and designations) is reported as not found. Every write appends to the
//! audit trail in its own transaction. Days ("today", for overdue actions) come from
//! the caller, so the rules are the domain's and tests need no clock.

use crate::audit::{self, Actor};
use crate::error::ImportError;
use crate::registry::{scope_patterns, Org, ORG_IN_SCOPE};
use crate::{now_text, Result, Store, StoreError};
use chrono::NaiveDate;
use lianxin_domain::contact::{tier, TierFinding, TierThresholds};
use lianxin_domain::org::OrgKind;
use lianxin_domain::role::DataScope;
use lianxin_domain::tiers::{
    action_status, check_done_on, is_party_org, parse_text, parse_year, ActionStatus, Indicator,
    IndicatorRow, Standing, MAX_INDICATORS, MAX_NOTE, MAX_TITLE, PARTY_KINDS,
};
use lianxin_domain::ValidationError;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, HashMap};

/// An indicator as recorded: the value, its evidence, who recorded it and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedIndicator {
    pub name: String,
    pub value: f64,
    pub note: String,
    pub recorded_by: String,
    pub recorded_at: String,
}

/// One organisation on the board for a year.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrgTier {
    pub org: Org,
    pub year: i64,
    /// lagging, middle, advanced, or not_assessed (no indicators for the year).
    pub standing: Standing,
    /// The tier with its evidence (score, indicator values, thresholds); `None` when
    /// not assessed.
    pub finding: Option<TierFinding>,
    pub indicators: Vec<RecordedIndicator>,
    /// Improvement plans for the year, and their actions overdue today.
    pub plans: i64,
    pub overdue_actions: i64,
    /// Designation titles held for the year.
    pub designations: Vec<String>,
}

/// The tier board of a scope for a year: lagging first, not assessed last.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierBoard {
    pub year: i64,
    pub thresholds: TierThresholds,
    pub orgs: Vec<OrgTier>,
    pub counts: TierCounts,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TierCounts {
    pub advanced: i64,
    pub middle: i64,
    pub lagging: i64,
    pub not_assessed: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanAction {
    pub id: i64,
    pub plan_id: i64,
    pub title: String,
    pub due_on: NaiveDate,
    pub done_on: Option<NaiveDate>,
    /// What was done, as recorded when the action was marked done.
    pub note: String,
    pub status: ActionStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub id: i64,
    pub org_id: i64,
    pub org_name: String,
    pub year: i64,
    pub title: String,
    pub created_by: String,
    pub created_at: String,
    pub actions: Vec<PlanAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Designation {
    pub id: i64,
    pub org_id: i64,
    pub org_code: String,
    pub org_name: String,
    pub title: String,
    pub year: i64,
    pub awarded_by: String,
    pub created_at: String,
}

/// One organisation's page: its standing for the year, every plan and designation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrgTierDetail {
    pub tier: OrgTier,
    pub plans: Vec<Plan>,
    pub designations: Vec<Designation>,
}

const ORG_COLS: &str = "o.id, o.code, o.name, o.kind, o.parent_id, o.path, o.region";

fn org_from_row(r: &AnyRow) -> Result<Org> {
    let kind: String = r.try_get("kind")?;
    Ok(Org {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        kind: OrgKind::parse(&kind)?,
        parent_id: r.try_get("parent_id")?,
        path: r.try_get("path")?,
        region: r.try_get("region")?,
    })
}

fn indicator_from_row(r: &AnyRow) -> Result<RecordedIndicator> {
    Ok(RecordedIndicator {
        name: r.try_get("name")?,
        value: r.try_get("value")?,
        note: r.try_get("note")?,
        recorded_by: r.try_get("recorded_by")?,
        recorded_at: r.try_get("recorded_at")?,
    })
}

fn stored_day(field: &str, v: &str) -> Result<NaiveDate> {
    lianxin_domain::relation::parse_day(field, v).map_err(StoreError::from)
}

fn action_from_row(r: &AnyRow, today: NaiveDate) -> Result<PlanAction> {
    let due_on = stored_day("due_on", &r.try_get::<String, _>("due_on")?)?;
    let done_on = r
        .try_get::<Option<String>, _>("done_on")?
        .map(|d| stored_day("done_on", &d))
        .transpose()?;
    Ok(PlanAction {
        id: r.try_get("id")?,
        plan_id: r.try_get("plan_id")?,
        title: r.try_get("title")?,
        due_on,
        done_on,
        note: r.try_get("note")?,
        status: action_status(due_on, done_on, today),
    })
}

fn designation_from_row(r: &AnyRow) -> Result<Designation> {
    Ok(Designation {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        org_code: r.try_get("org_code")?,
        org_name: r.try_get("org_name")?,
        title: r.try_get("title")?,
        year: r.try_get("year")?,
        awarded_by: r.try_get("awarded_by")?,
        created_at: r.try_get("created_at")?,
    })
}

const ACTION_COLS: &str = "a.id, a.plan_id, a.title, a.due_on, a.done_on, a.note";
const DESIGNATION_SELECT: &str =
    "SELECT d.id, d.org_id, o.code AS org_code, o.name AS org_name, d.title, d.year, \
     d.awarded_by, d.created_at FROM designations d JOIN orgs o ON o.id = d.org_id";

/// The SQL list of party kinds, for `o.kind IN (…)`: constants, never user input.
fn party_kinds_sql() -> String {
    PARTY_KINDS
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn not_party_org() -> StoreError {
    StoreError::Invalid(ValidationError::new(
        "org_id",
        "not_party_org",
        "only party organisations (党委、党总支、党支部、行业党委) are tiered",
    ))
}

/// A year's finding from its indicators: `None` without indicators.
fn finding_of(
    indicators: &[RecordedIndicator],
    thresholds: TierThresholds,
) -> Result<Option<TierFinding>> {
    if indicators.is_empty() {
        return Ok(None);
    }
    let pairs: Vec<(String, f64)> = indicators
        .iter()
        .map(|i| (i.name.clone(), i.value))
        .collect();
    Ok(Some(tier(&pairs, thresholds)?))
}

/// Replaces an organisation's indicators for a year inside `conn`; returns the set
/// before, for the audit trail.
async fn replace_indicators(
    conn: &mut AnyConnection,
    actor: &Actor,
    org: &Org,
    year: i64,
    set: &[Indicator],
) -> Result<Vec<RecordedIndicator>> {
    let before = sqlx::query(
        "SELECT name, value, note, recorded_by, recorded_at FROM org_indicators \
         WHERE org_id = $1 AND year = $2 ORDER BY seq",
    )
    .bind(org.id)
    .bind(year)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(indicator_from_row)
    .collect::<Result<Vec<_>>>()?;
    sqlx::query("DELETE FROM org_indicators WHERE org_id = $1 AND year = $2")
        .bind(org.id)
        .bind(year)
        .execute(&mut *conn)
        .await?;
    let now = now_text();
    for (seq, ind) in set.iter().enumerate() {
        sqlx::query(
            "INSERT INTO org_indicators (org_id, year, name, seq, value, note, region, recorded_by, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(org.id)
        .bind(year)
        .bind(&ind.name)
        .bind(seq as i64)
        .bind(ind.value)
        .bind(&ind.note)
        .bind(&org.region)
        .bind(&actor.0)
        .bind(&now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(before)
}

async fn audit_indicators(
    conn: &mut AnyConnection,
    actor: &Actor,
    org: &Org,
    year: i64,
    before: &[RecordedIndicator],
    after: &[Indicator],
) -> Result<()> {
    let image = |indicators: serde_json::Value| serde_json::json!({ "org": org.code, "year": year, "indicators": indicators });
    let before = before
        .iter()
        .map(|i| serde_json::json!({ "name": i.name, "value": i.value, "note": i.note }))
        .collect::<Vec<_>>();
    audit::append(
        conn,
        actor,
        "set",
        "org_indicators",
        &format!("{}/{year}", org.id),
        Some(&image(serde_json::Value::Array(before))),
        Some(&image(serde_json::to_value(after).unwrap_or_default())),
    )
    .await?;
    Ok(())
}

/// The organisation with `id` (or `code`) inside `scope`, else not found.
async fn scoped_org(
    conn: &mut AnyConnection,
    scope: &DataScope,
    key: OrgKey<'_>,
) -> Result<Option<Org>> {
    let (org_like, place_like) = scope_patterns(scope);
    let cond = match key {
        OrgKey::Id(_) => "o.id = $3",
        OrgKey::Code(_) => "o.code = $3",
    };
    let sql = format!("SELECT {ORG_COLS} FROM orgs o WHERE {ORG_IN_SCOPE} AND {cond}");
    let query = sqlx::query(&sql).bind(org_like).bind(place_like);
    let query = match key {
        OrgKey::Id(id) => query.bind(id),
        OrgKey::Code(code) => query.bind(code.to_string()),
    };
    let row = query.fetch_optional(&mut *conn).await?;
    row.as_ref().map(org_from_row).transpose()
}

#[derive(Clone, Copy)]
enum OrgKey<'a> {
    Id(i64),
    Code(&'a str),
}

/// A party organisation in scope, by id, for a write.
async fn party_org(conn: &mut AnyConnection, scope: &DataScope, id: i64) -> Result<Org> {
    let org = scoped_org(conn, scope, OrgKey::Id(id))
        .await?
        .ok_or(StoreError::not_found("organisation"))?;
    if !is_party_org(org.kind) {
        return Err(not_party_org());
    }
    Ok(org)
}

/// A plan in scope, without its actions.
async fn scoped_plan(conn: &mut AnyConnection, scope: &DataScope, id: i64) -> Result<Plan> {
    let (org_like, place_like) = scope_patterns(scope);
    let row = sqlx::query(&format!(
        "SELECT p.id, p.org_id, o.name AS org_name, p.year, p.title, p.created_by, p.created_at \
         FROM improvement_plans p JOIN orgs o ON o.id = p.org_id WHERE {ORG_IN_SCOPE} AND p.id = $3"
    ))
    .bind(org_like)
    .bind(place_like)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::not_found("improvement plan"))?;
    Ok(Plan {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        org_name: row.try_get("org_name")?,
        year: row.try_get("year")?,
        title: row.try_get("title")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        actions: Vec::new(),
    })
}

async fn plan_actions(
    conn: &mut AnyConnection,
    plan_id: i64,
    today: NaiveDate,
) -> Result<Vec<PlanAction>> {
    sqlx::query(&format!(
        "SELECT {ACTION_COLS} FROM plan_actions a WHERE a.plan_id = $1 ORDER BY a.due_on, a.id"
    ))
    .bind(plan_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| action_from_row(r, today))
    .collect()
}

impl Store {
    /// The tier thresholds the organisation department set (`governance_rules`).
    pub async fn tier_thresholds(&self) -> Result<TierThresholds> {
        let row =
            sqlx::query("SELECT tier_advanced, tier_lagging FROM governance_rules WHERE id = 1")
                .fetch_optional(&self.reader)
                .await?;
        match row {
            Some(r) => Ok(TierThresholds::new(
                r.try_get("tier_advanced")?,
                r.try_get("tier_lagging")?,
            )?),
            // The migration inserts the row; without it, the documented defaults.
            None => Ok(TierThresholds::new(80.0, 60.0)?),
        }
    }

    /// Replaces a party organisation's indicators for `year` with `set` (validated by
    /// [`lianxin_domain::tiers::indicator_set`]) and returns its standing.
    pub async fn set_indicators(
        &self,
        actor: &Actor,
        scope: &DataScope,
        org_id: i64,
        year: i64,
        set: &[Indicator],
        today: NaiveDate,
    ) -> Result<OrgTier> {
        let year = parse_year("year", year)?;
        if set.is_empty() || set.len() > MAX_INDICATORS {
            return Err(ValidationError::new(
                "indicators",
                "no_evidence",
                format!("give 1 to {MAX_INDICATORS} indicators"),
            )
            .into());
        }
        let (actor, scope, set) = (actor.clone(), scope.clone(), set.to_vec());
        let org = self
            .write(move |tx| {
                Box::pin(async move {
                    let org = party_org(tx, &scope, org_id).await?;
                    let before = replace_indicators(tx, &actor, &org, year, &set).await?;
                    audit_indicators(tx, &actor, &org, year, &before, &set).await?;
                    Ok(org)
                })
            })
            .await?;
        self.org_tier_of(&org, year, today).await
    }

    /// Imports indicator rows (from [`lianxin_domain::tiers::parse_indicator_csv`]):
    /// each (organisation, year) in the file gets exactly the file's indicators, in one
    /// transaction. The first bad row (an unknown or out-of-scope organisation, one
    /// that is not a party organisation, too many indicators) refuses the whole file.
    pub async fn import_indicators(
        &self,
        actor: &Actor,
        scope: &DataScope,
        rows: &[IndicatorRow],
        mut progress: impl FnMut(usize),
    ) -> Result<usize, ImportError> {
        let mut tx = self
            .writer
            .begin()
            .await
            .map_err(|e| StoreError::from(e).at_row(0))?;
        // (org id, year) → the organisation, its set before, its new set.
        type Group = (Org, Vec<RecordedIndicator>, Vec<Indicator>);
        let mut groups: BTreeMap<(i64, i64), Group> = BTreeMap::new();
        let mut orgs: HashMap<String, Org> = HashMap::new();
        let now = now_text();
        for (i, r) in rows.iter().enumerate() {
            let at = |e: StoreError| e.at_row(r.row);
            let org = match orgs.get(&r.org_code) {
                Some(o) => o.clone(),
                None => {
                    let conn: &mut AnyConnection = &mut tx;
                    let org = scoped_org(conn, scope, OrgKey::Code(&r.org_code))
                        .await
                        .map_err(at)?
                        .ok_or_else(|| {
                            at(StoreError::Invalid(ValidationError::new(
                                "org_code",
                                "unknown_org",
                                format!("no organisation has the code {}", r.org_code),
                            )))
                        })?;
                    if !is_party_org(org.kind) {
                        return Err(at(StoreError::Invalid(ValidationError::new(
                            "org_code",
                            "not_party_org",
                            "only party organisations (党委、党总支、党支部、行业党委) are tiered",
                        ))));
                    }
                    orgs.insert(r.org_code.clone(), org.clone());
                    org
                }
            };
            let year = parse_year("year", r.year).map_err(|e| at(e.into()))?;
            let key = (org.id, year);
            let set = match groups.entry(key) {
                std::collections::btree_map::Entry::Occupied(g) => &mut g.into_mut().2,
                std::collections::btree_map::Entry::Vacant(slot) => {
                    let conn: &mut AnyConnection = &mut tx;
                    // The file's set replaces the year's: clear it once, on first sight.
                    let before = replace_indicators(conn, actor, &org, year, &[])
                        .await
                        .map_err(at)?;
                    &mut slot.insert((org.clone(), before, Vec::new())).2
                }
            };
            if set.len() >= MAX_INDICATORS {
                return Err(at(StoreError::Invalid(ValidationError::new(
                    "name",
                    "too_many",
                    format!("at most {MAX_INDICATORS} indicators per organisation and year"),
                ))));
            }
            let seq = set.len() as i64;
            set.push(r.indicator.clone());
            let conn: &mut AnyConnection = &mut tx;
            sqlx::query(
                "INSERT INTO org_indicators (org_id, year, name, seq, value, note, region, recorded_by, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(org.id)
            .bind(year)
            .bind(&r.indicator.name)
            .bind(seq)
            .bind(r.indicator.value)
            .bind(&r.indicator.note)
            .bind(&org.region)
            .bind(&actor.0)
            .bind(&now)
            .execute(conn)
            .await
            .map_err(|e| at(e.into()))?;
            progress(i + 1);
        }
        for ((_, year), (org, before, after)) in &groups {
            let conn: &mut AnyConnection = &mut tx;
            audit_indicators(conn, actor, org, *year, before, after)
                .await
                .map_err(|e| e.at_row(0))?;
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::from(e).at_row(0))?;
        Ok(rows.len())
    }

    async fn org_tier_of(&self, org: &Org, year: i64, today: NaiveDate) -> Result<OrgTier> {
        let thresholds = self.tier_thresholds().await?;
        let indicators = sqlx::query(
            "SELECT name, value, note, recorded_by, recorded_at FROM org_indicators \
             WHERE org_id = $1 AND year = $2 ORDER BY seq",
        )
        .bind(org.id)
        .bind(year)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(indicator_from_row)
        .collect::<Result<Vec<_>>>()?;
        let finding = finding_of(&indicators, thresholds)?;
        let actions = sqlx::query(
            "SELECT a.due_on, a.done_on FROM plan_actions a JOIN improvement_plans p ON p.id = a.plan_id \
             WHERE p.org_id = $1 AND p.year = $2",
        )
        .bind(org.id)
        .bind(year)
        .fetch_all(&self.reader)
        .await?;
        let mut overdue = 0;
        for a in &actions {
            let due = stored_day("due_on", &a.try_get::<String, _>("due_on")?)?;
            let done: Option<String> = a.try_get("done_on")?;
            if done.is_none() && action_status(due, None, today) == ActionStatus::Overdue {
                overdue += 1;
            }
        }
        let plans: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM improvement_plans WHERE org_id = $1 AND year = $2",
        )
        .bind(org.id)
        .bind(year)
        .fetch_one(&self.reader)
        .await?;
        let mut designations: Vec<String> =
            sqlx::query_scalar("SELECT title FROM designations WHERE org_id = $1 AND year = $2")
                .bind(org.id)
                .bind(year)
                .fetch_all(&self.reader)
                .await?;
        // Sorted here: the engines' collations order Chinese text differently.
        designations.sort();
        Ok(OrgTier {
            org: org.clone(),
            year,
            standing: Standing::from(finding.as_ref().map(|f| f.tier)),
            finding,
            indicators,
            plans,
            overdue_actions: overdue,
            designations,
        })
    }

    /// The party organisations in scope with their standing for `year`, each with the
    /// evidence: lagging first (lowest score first), then middle and advanced, then
    /// the organisations without indicators ("not assessed").
    pub async fn tier_board(
        &self,
        scope: &DataScope,
        year: i64,
        today: NaiveDate,
    ) -> Result<TierBoard> {
        let year = parse_year("year", year)?;
        let thresholds = self.tier_thresholds().await?;
        let (org_like, place_like) = scope_patterns(scope);
        let kinds = party_kinds_sql();
        let orgs = sqlx::query(&format!(
            "SELECT {ORG_COLS} FROM orgs o WHERE {ORG_IN_SCOPE} AND o.kind IN ({kinds}) ORDER BY o.path"
        ))
        .bind(&org_like)
        .bind(&place_like)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(org_from_row)
        .collect::<Result<Vec<_>>>()?;
        let mut indicators: HashMap<i64, Vec<RecordedIndicator>> = HashMap::new();
        for r in sqlx::query(&format!(
            "SELECT i.org_id, i.name, i.value, i.note, i.recorded_by, i.recorded_at \
             FROM org_indicators i JOIN orgs o ON o.id = i.org_id \
             WHERE {ORG_IN_SCOPE} AND i.year = $3 ORDER BY i.org_id, i.seq"
        ))
        .bind(&org_like)
        .bind(&place_like)
        .bind(year)
        .fetch_all(&self.reader)
        .await?
        {
            indicators
                .entry(r.try_get("org_id")?)
                .or_default()
                .push(indicator_from_row(&r)?);
        }
        let mut plans: HashMap<i64, i64> = HashMap::new();
        for r in sqlx::query(&format!(
            "SELECT p.org_id, COUNT(*) AS n FROM improvement_plans p JOIN orgs o ON o.id = p.org_id \
             WHERE {ORG_IN_SCOPE} AND p.year = $3 GROUP BY p.org_id"
        ))
        .bind(&org_like)
        .bind(&place_like)
        .bind(year)
        .fetch_all(&self.reader)
        .await?
        {
            plans.insert(r.try_get("org_id")?, r.try_get("n")?);
        }
        let mut overdue: HashMap<i64, i64> = HashMap::new();
        for r in sqlx::query(&format!(
            "SELECT p.org_id, a.due_on FROM plan_actions a JOIN improvement_plans p ON p.id = a.plan_id \
             JOIN orgs o ON o.id = p.org_id WHERE {ORG_IN_SCOPE} AND p.year = $3 AND a.done_on IS NULL"
        ))
        .bind(&org_like)
        .bind(&place_like)
        .bind(year)
        .fetch_all(&self.reader)
        .await?
        {
            let due = stored_day("due_on", &r.try_get::<String, _>("due_on")?)?;
            if action_status(due, None, today) == ActionStatus::Overdue {
                *overdue.entry(r.try_get("org_id")?).or_default() += 1;
            }
        }
        let mut titles: HashMap<i64, Vec<String>> = HashMap::new();
        for r in sqlx::query(&format!(
            "SELECT d.org_id, d.title FROM designations d JOIN orgs o ON o.id = d.org_id \
             WHERE {ORG_IN_SCOPE} AND d.year = $3"
        ))
        .bind(&org_like)
        .bind(&place_like)
        .bind(year)
        .fetch_all(&self.reader)
        .await?
        {
            titles
                .entry(r.try_get("org_id")?)
                .or_default()
                .push(r.try_get("title")?);
        }
        for t in titles.values_mut() {
            t.sort();
        }
        let mut counts = TierCounts::default();
        let mut out = Vec::with_capacity(orgs.len());
        for org in orgs {
            let inds = indicators.remove(&org.id).unwrap_or_default();
            let finding = finding_of(&inds, thresholds)?;
            let standing = Standing::from(finding.as_ref().map(|f| f.tier));
            *match standing {
                Standing::Advanced => &mut counts.advanced,
                Standing::Middle => &mut counts.middle,
                Standing::Lagging => &mut counts.lagging,
                Standing::NotAssessed => &mut counts.not_assessed,
            } += 1;
            out.push(OrgTier {
                year,
                standing,
                finding,
                indicators: inds,
                plans: plans.get(&org.id).copied().unwrap_or(0),
                overdue_actions: overdue.get(&org.id).copied().unwrap_or(0),
                designations: titles.remove(&org.id).unwrap_or_default(),
                org,
            });
        }
        out.sort_by(|a, b| {
            let score = |t: &OrgTier| t.finding.as_ref().map(|f| f.score).unwrap_or(0.0);
            a.standing
                .rank()
                .cmp(&b.standing.rank())
                .then(score(a).total_cmp(&score(b)))
                .then(a.org.path.cmp(&b.org.path))
        });
        Ok(TierBoard {
            year,
            thresholds,
            orgs: out,
            counts,
        })
    }

    /// One party organisation in scope: its standing for `year` with the evidence,
    /// and all its improvement plans (with actions) and designations, newest first.
    pub async fn org_tier(
        &self,
        scope: &DataScope,
        org_id: i64,
        year: i64,
        today: NaiveDate,
    ) -> Result<OrgTierDetail> {
        let year = parse_year("year", year)?;
        let mut conn = self.reader.acquire().await?;
        let org = party_org(&mut conn, scope, org_id).await?;
        let tier = self.org_tier_of(&org, year, today).await?;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM improvement_plans WHERE org_id = $1 ORDER BY year DESC, id DESC",
        )
        .bind(org.id)
        .fetch_all(&mut *conn)
        .await?;
        let mut plans = Vec::with_capacity(ids.len());
        for id in ids {
            let mut plan = scoped_plan(&mut conn, scope, id).await?;
            plan.actions = plan_actions(&mut conn, id, today).await?;
            plans.push(plan);
        }
        let designations = sqlx::query(&format!(
            "{DESIGNATION_SELECT} WHERE d.org_id = $1 ORDER BY d.year DESC, d.title"
        ))
        .bind(org.id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(designation_from_row)
        .collect::<Result<Vec<_>>>()?;
        Ok(OrgTierDetail {
            tier,
            plans,
            designations,
        })
    }

    /// Opens an improvement plan for a party organisation in scope.
    pub async fn create_plan(
        &self,
        actor: &Actor,
        scope: &DataScope,
        org_id: i64,
        year: i64,
        title: &str,
    ) -> Result<Plan> {
        let year = parse_year("year", year)?;
        let title = parse_text("title", title, MAX_TITLE)?;
        let (actor, scope) = (actor.clone(), scope.clone());
        self.write(move |tx| {
            Box::pin(async move {
                let org = party_org(tx, &scope, org_id).await?;
                let now = now_text();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO improvement_plans (org_id, year, title, region, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(org.id)
                .bind(year)
                .bind(&title)
                .bind(&org.region)
                .bind(&actor.0)
                .bind(&now)
                .fetch_one(&mut *tx)
                .await?;
                let plan = Plan {
                    id,
                    org_id: org.id,
                    org_name: org.name.clone(),
                    year,
                    title,
                    created_by: actor.0.clone(),
                    created_at: now,
                    actions: Vec::new(),
                };
                audit::append(
                    tx,
                    &actor,
                    "create",
                    "improvement_plan",
                    &id.to_string(),
                    None::<&()>,
                    Some(&plan),
                )
                .await?;
                Ok(plan)
            })
        })
        .await
    }

    /// A plan in scope with its actions as they stand on `today`.
    pub async fn plan(&self, scope: &DataScope, id: i64, today: NaiveDate) -> Result<Plan> {
        let mut conn = self.reader.acquire().await?;
        let mut plan = scoped_plan(&mut conn, scope, id).await?;
        plan.actions = plan_actions(&mut conn, id, today).await?;
        Ok(plan)
    }

    /// Adds a tracked action, due on `due_on`, to a plan in scope.
    pub async fn add_plan_action(
        &self,
        actor: &Actor,
        scope: &DataScope,
        plan_id: i64,
        title: &str,
        due_on: NaiveDate,
        today: NaiveDate,
    ) -> Result<PlanAction> {
        let title = parse_text("title", title, MAX_TITLE)?;
        let (actor, scope) = (actor.clone(), scope.clone());
        self.write(move |tx| {
            Box::pin(async move {
                let plan = scoped_plan(tx, &scope, plan_id).await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO plan_actions (plan_id, title, due_on, note, created_by, created_at) \
                     VALUES ($1, $2, $3, '', $4, $5) RETURNING id",
                )
                .bind(plan.id)
                .bind(&title)
                .bind(due_on.to_string())
                .bind(&actor.0)
                .bind(now_text())
                .fetch_one(&mut *tx)
                .await?;
                let action = PlanAction {
                    id,
                    plan_id: plan.id,
                    title,
                    due_on,
                    done_on: None,
                    note: String::new(),
                    status: action_status(due_on, None, today),
                };
                audit::append(
                    tx,
                    &actor,
                    "create",
                    "plan_action",
                    &id.to_string(),
                    None::<&()>,
                    Some(&action),
                )
                .await?;
                Ok(action)
            })
        })
        .await
    }

    /// Marks an action done on `done_on` (not after today) with a note on what was
    /// done. An action already done is a conflict.
    pub async fn complete_action(
        &self,
        actor: &Actor,
        scope: &DataScope,
        action_id: i64,
        done_on: NaiveDate,
        note: &str,
        today: NaiveDate,
    ) -> Result<PlanAction> {
        let done_on = check_done_on(done_on, today)?;
        let note = parse_text("note", note, MAX_NOTE)?;
        let (actor, scope) = (actor.clone(), scope.clone());
        self.write(move |tx| {
            Box::pin(async move {
                let row = sqlx::query(&format!(
                    "SELECT {ACTION_COLS} FROM plan_actions a WHERE a.id = $1"
                ))
                .bind(action_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::not_found("action"))?;
                let before = action_from_row(&row, today)?;
                // An action on a plan outside the scope does not exist for the caller.
                scoped_plan(tx, &scope, before.plan_id)
                    .await
                    .map_err(|_| StoreError::not_found("action"))?;
                if before.done_on.is_some() {
                    return Err(StoreError::conflict(
                        "done_on",
                        "this action is already done",
                    ));
                }
                let changed = sqlx::query(
                    "UPDATE plan_actions SET done_on = $1, note = $2, done_by = $3 \
                     WHERE id = $4 AND done_on IS NULL",
                )
                .bind(done_on.to_string())
                .bind(&note)
                .bind(&actor.0)
                .bind(action_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed != 1 {
                    return Err(StoreError::conflict(
                        "done_on",
                        "this action is already done",
                    ));
                }
                let after = PlanAction {
                    done_on: Some(done_on),
                    note,
                    status: ActionStatus::Done,
                    ..before.clone()
                };
                audit::append(
                    tx,
                    &actor,
                    "complete",
                    "plan_action",
                    &action_id.to_string(),
                    Some(&before),
                    Some(&after),
                )
                .await?;
                Ok(after)
            })
        })
        .await
    }

    /// Awards a designation (模范支部, 五星级党支部 …) for a year. The same title
    /// twice for the same organisation and year is a conflict.
    pub async fn award_designation(
        &self,
        actor: &Actor,
        scope: &DataScope,
        org_id: i64,
        title: &str,
        year: i64,
    ) -> Result<Designation> {
        let year = parse_year("year", year)?;
        let title = parse_text("title", title, MAX_TITLE)?;
        let (actor, scope) = (actor.clone(), scope.clone());
        self.write(move |tx| {
            Box::pin(async move {
                let org = party_org(tx, &scope, org_id).await?;
                let conflict = || {
                    StoreError::conflict(
                        "title",
                        format!("{} already holds {title} for {year}", org.name),
                    )
                };
                let exists: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM designations WHERE org_id = $1 AND title = $2 AND year = $3",
                )
                .bind(org.id)
                .bind(&title)
                .bind(year)
                .fetch_optional(&mut *tx)
                .await?;
                if exists.is_some() {
                    return Err(conflict());
                }
                let now = now_text();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO designations (org_id, title, year, awarded_by, region, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(org.id)
                .bind(&title)
                .bind(year)
                .bind(&actor.0)
                .bind(&org.region)
                .bind(&now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict { .. } => conflict(),
                    other => other,
                })?;
                let d = Designation {
                    id,
                    org_id: org.id,
                    org_code: org.code.clone(),
                    org_name: org.name.clone(),
                    title,
                    year,
                    awarded_by: actor.0.clone(),
                    created_at: now,
                };
                audit::append(
                    tx,
                    &actor,
                    "create",
                    "designation",
                    &id.to_string(),
                    None::<&()>,
                    Some(&d),
                )
                .await?;
                Ok(d)
            })
        })
        .await
    }

    /// Designations of organisations in scope, for one year or all, newest first.
    pub async fn designations(
        &self,
        scope: &DataScope,
        year: Option<i64>,
    ) -> Result<Vec<Designation>> {
        let (org_like, place_like) = scope_patterns(scope);
        let rows = sqlx::query(&format!(
            "{DESIGNATION_SELECT} WHERE {ORG_IN_SCOPE} AND ($3 = 0 OR d.year = $3) \
             ORDER BY d.year DESC, d.title, o.path"
        ))
        .bind(org_like)
        .bind(place_like)
        .bind(year.unwrap_or(0))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(designation_from_row).collect()
    }
}
