//! A community's grids and households, 双进 registrations, its needs list and the
//! service records that come of it, and household-visit coverage (M15, issue [3/6]).
//!
//! - **Households in grids** are effective-dated assignments beside the place tree
//!   (grids are redrawn; the tree keeps where a household was built). A household sits
//!   in one grid at a time (`lianxin_domain::contact::check_single_grid`).
//! - **Registrations** (双进): a party member, with a grid, an employer and skills, or
//!   an organisation registers with one community at a time
//!   (`lianxin_domain::community::check_single_registration`).
//! - **Needs** move open → claimed → done (`NeedStatus::after`); only a member
//!   registered with the need's community claims one. A step is a read-decide-write in
//!   one transaction whose update only lands if the status is still the one read.
//! - **Coverage** of a period `[from, to]`: the households are the assignments valid on
//!   the period's last day, the visited ones those with a household visit (table
//!   `visits`, kind `household`, written by `contact.rs`) in the period. It is counted
//!   by the database per grid and summed per community; the contract tests hold it to
//!   `lianxin_domain::contact::coverage` and a hand-computed fixture.
//!
//! Scope: everything hangs off a community or grid place, so an account sees what lies
//! in its place subtree; anything else is reported as not found (or, when named by
//! code in a write, as an unknown code).

use crate::audit::{self, Actor};
use crate::error::ImportError;
use crate::registry::scope_patterns;
use crate::{now_text, Result, Store, StoreError};
use chrono::NaiveDate;
use lianxin_domain::community::{
    check_registered, check_single_registration, skills_from_text, skills_text, NeedAction,
    NeedStatus, Quarter, RegistrationKind,
};
use lianxin_domain::contact::{check_single_grid, Coverage};
use lianxin_domain::place::PlaceLevel;
use lianxin_domain::relation::{parse_day, Validity};
use lianxin_domain::role::DataScope;
use lianxin_domain::ValidationError;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;

/// A household's assignment to a grid over `[valid_from, valid_to)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridAssignment {
    pub id: i64,
    pub household_id: i64,
    pub household_code: String,
    pub household_name: String,
    pub grid_id: i64,
    pub grid_code: String,
    pub grid_name: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

/// One row of a household import (or one assignment asked for).
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdRow {
    pub household_code: String,
    pub grid_code: String,
    pub valid_from: NaiveDate,
}

/// A registration asked for: a member (`person_id`, `grid_code`, optional employer) or
/// an organisation (`org_code`), with the community and skills.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRegistration {
    pub kind: RegistrationKind,
    pub person_id: Option<i64>,
    pub org_code: Option<String>,
    pub community_code: String,
    pub grid_code: Option<String>,
    pub employer_code: Option<String>,
    pub skills: Vec<String>,
    pub valid_from: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Registration {
    pub id: i64,
    pub kind: RegistrationKind,
    pub person_id: Option<i64>,
    pub person_name: Option<String>,
    pub org_id: Option<i64>,
    pub org_code: Option<String>,
    pub org_name: Option<String>,
    pub community_id: i64,
    pub community_code: String,
    pub community_name: String,
    pub grid_id: Option<i64>,
    pub grid_code: Option<String>,
    pub grid_name: Option<String>,
    pub employer_id: Option<i64>,
    pub employer_name: Option<String>,
    pub skills: Vec<String>,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

/// A need to post on a community's list.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNeed {
    pub community_code: String,
    pub grid_code: Option<String>,
    pub title: String,
    pub detail: String,
    pub skills: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Need {
    pub id: i64,
    pub community_id: i64,
    pub community_code: String,
    pub community_name: String,
    pub grid_id: Option<i64>,
    pub grid_name: Option<String>,
    pub title: String,
    pub detail: String,
    pub skills: Vec<String>,
    pub status: NeedStatus,
    pub posted_by: String,
    pub posted_at: String,
    pub claimed_by: Option<i64>,
    pub claimed_by_name: Option<String>,
    pub claimed_at: Option<String>,
    pub done_at: Option<String>,
    pub done_on: Option<NaiveDate>,
    pub hours: Option<f64>,
    pub outcome: Option<String>,
}

/// A member's service: their registrations and the needs they claimed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceRecord {
    pub person_id: i64,
    pub person_name: String,
    pub registrations: Vec<Registration>,
    pub needs: Vec<Need>,
    /// Needs done, and the hours they took.
    pub done: u64,
    pub hours: f64,
}

/// One member in an employer's quarterly report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberService {
    pub person_id: i64,
    pub person_name: String,
    pub community_name: String,
    pub grid_name: Option<String>,
    pub skills: Vec<String>,
    pub done: u64,
    pub hours: f64,
    /// The titles of the needs done, in the order they were done.
    pub needs: Vec<String>,
}

/// What an employer's members registered with communities did in a quarter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmployerReport {
    pub org_id: i64,
    pub org_name: String,
    pub quarter: Quarter,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub members: Vec<MemberService>,
    pub done: u64,
    pub hours: f64,
}

/// Coverage of one grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GridCoverage {
    pub grid_id: i64,
    pub grid_code: String,
    pub grid_name: String,
    pub community_id: i64,
    pub community_code: String,
    pub community_name: String,
    pub coverage: Coverage,
    pub share: Option<f64>,
}

/// Coverage of one community: the sum of its grids (a household is in one grid).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommunityCoverage {
    pub community_id: i64,
    pub community_code: String,
    pub community_name: String,
    pub grids: u64,
    pub coverage: Coverage,
    pub share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoverageReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub grids: Vec<GridCoverage>,
    pub communities: Vec<CommunityCoverage>,
    pub total: Coverage,
    pub share: Option<f64>,
}

/// A community or grid to choose from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AreaRef {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub level: PlaceLevel,
    pub parent_id: Option<i64>,
}

/// The few columns of a place these rules need.
#[derive(Debug, Clone)]
struct PlaceRef {
    id: i64,
    code: String,
    level: PlaceLevel,
    parent_id: Option<i64>,
    path: String,
    region: String,
}

fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationError::new(field, code, message))
}

fn day(field: &str, v: Option<String>) -> Result<Option<NaiveDate>> {
    v.map(|s| parse_day(field, &s).map_err(StoreError::from))
        .transpose()
}

fn req_day(field: &str, v: String) -> Result<NaiveDate> {
    Ok(parse_day(field, &v)?)
}

/// The place with `code` inside `scope`, reported like a missing one otherwise.
async fn place_in(
    conn: &mut AnyConnection,
    code: &str,
    scope: &DataScope,
    field: &str,
) -> Result<PlaceRef> {
    let row =
        sqlx::query("SELECT id, code, level, parent_id, path, region FROM places WHERE code = $1")
            .bind(code.trim())
            .fetch_optional(&mut *conn)
            .await?;
    let unknown = || {
        invalid(
            field,
            "unknown_place",
            format!("no place has the code {}", code.trim()),
        )
    };
    let Some(r) = row else {
        return Err(unknown());
    };
    let level: String = r.try_get("level")?;
    let p = PlaceRef {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        level: PlaceLevel::parse(&level)?,
        parent_id: r.try_get("parent_id")?,
        path: r.try_get("path")?,
        region: r.try_get("region")?,
    };
    if !scope.allows_place(&p.path) {
        return Err(unknown());
    }
    Ok(p)
}

fn require_level(p: &PlaceRef, level: PlaceLevel, field: &str) -> Result<()> {
    if p.level != level {
        let (code, what) = match level {
            PlaceLevel::Household => ("not_a_household", "a household"),
            PlaceLevel::Grid => ("not_a_grid", "a grid"),
            _ => ("not_a_community", "a village or community"),
        };
        return Err(invalid(
            field,
            code,
            format!("{} is a {}, not {what}", p.code, p.level.as_str()),
        ));
    }
    Ok(())
}

/// The grid's community must hold `place`: a grid is redrawn within its community.
fn check_in_community(grid: &PlaceRef, place_path: &str) -> Result<()> {
    let community_path = grid
        .path
        .trim_end_matches('/')
        .rsplit_once('/')
        .map(|(c, _)| format!("{c}/"))
        .unwrap_or_default();
    if !place_path.starts_with(&community_path) || community_path.len() < 2 {
        return Err(invalid(
            "grid_code",
            "grid_outside_community",
            format!("the grid {} belongs to another community", grid.code),
        ));
    }
    Ok(())
}

async fn org_id_by_code(conn: &mut AnyConnection, code: &str, field: &str) -> Result<i64> {
    sqlx::query_scalar("SELECT id FROM orgs WHERE code = $1")
        .bind(code.trim())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            invalid(
                field,
                "unknown_org",
                format!("no organisation has the code {}", code.trim()),
            )
        })
}

async fn validities(conn: &mut AnyConnection, sql: &str, id: i64) -> Result<Vec<(i64, Validity)>> {
    let rows = sqlx::query(sql).bind(id).fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get::<i64, _>(0)?,
                Validity {
                    from: req_day("valid_from", r.try_get(1)?)?,
                    to: day("valid_to", r.try_get(2)?)?,
                },
            ))
        })
        .collect()
}

const ASSIGNMENT_SELECT: &str =
    "SELECT gh.id, gh.household_id, h.code AS household_code, h.name AS household_name, \
     gh.grid_id, g.code AS grid_code, g.name AS grid_name, gh.valid_from, gh.valid_to \
     FROM grid_households gh JOIN places h ON h.id = gh.household_id JOIN places g ON g.id = gh.grid_id";

fn assignment_from_row(r: &AnyRow) -> Result<GridAssignment> {
    Ok(GridAssignment {
        id: r.try_get("id")?,
        household_id: r.try_get("household_id")?,
        household_code: r.try_get("household_code")?,
        household_name: r.try_get("household_name")?,
        grid_id: r.try_get("grid_id")?,
        grid_code: r.try_get("grid_code")?,
        grid_name: r.try_get("grid_name")?,
        valid_from: req_day("valid_from", r.try_get("valid_from")?)?,
        valid_to: day("valid_to", r.try_get("valid_to")?)?,
    })
}

async fn insert_assignment(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: &DataScope,
    row: &HouseholdRow,
    valid_to: Option<NaiveDate>,
) -> Result<GridAssignment> {
    let household = place_in(conn, &row.household_code, scope, "household_code").await?;
    require_level(&household, PlaceLevel::Household, "household_code")?;
    let grid = place_in(conn, &row.grid_code, scope, "grid_code").await?;
    require_level(&grid, PlaceLevel::Grid, "grid_code")?;
    check_in_community(&grid, &household.path)?;
    let validity = Validity::new(row.valid_from, valid_to)?;
    let existing = validities(
        conn,
        "SELECT grid_id, valid_from, valid_to FROM grid_households WHERE household_id = $1",
        household.id,
    )
    .await?;
    check_single_grid(&existing, grid.id, validity).map_err(|e| {
        let code = existing
            .iter()
            .find(|(g, v)| *g != grid.id && v.overlaps(&validity))
            .map(|(g, _)| *g);
        ValidationError {
            message: format!(
                "the household is already in another grid (id {}) over those days; end that assignment first",
                code.unwrap_or_default()
            ),
            ..e.in_field("grid_code")
        }
    })?;
    if existing
        .iter()
        .any(|(g, v)| *g == grid.id && v.overlaps(&validity))
    {
        return Err(invalid(
            "valid_from",
            "already_assigned",
            "the household is already in this grid over those days",
        ));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO grid_households (household_id, grid_id, valid_from, valid_to, region, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(household.id)
    .bind(grid.id)
    .bind(validity.from.to_string())
    .bind(validity.to.map(|d| d.to_string()))
    .bind(&household.region)
    .bind(now_text())
    .fetch_one(&mut *conn)
    .await?;
    let row = sqlx::query(&format!("{ASSIGNMENT_SELECT} WHERE gh.id = $1"))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    let a = assignment_from_row(&row)?;
    audit::append(
        conn,
        actor,
        "assign",
        "grid_household",
        &id.to_string(),
        None::<&()>,
        Some(&a),
    )
    .await?;
    Ok(a)
}

const REGISTRATION_SELECT: &str =
    "SELECT r.id, r.kind, r.person_id, pe.name AS person_name, r.org_id, o.code AS org_code, \
     o.name AS org_name, r.community_id, c.code AS community_code, c.name AS community_name, \
     r.grid_id, g.code AS grid_code, g.name AS grid_name, r.employer_org_id, e.name AS employer_name, \
     r.skills, r.valid_from, r.valid_to \
     FROM registrations r JOIN places c ON c.id = r.community_id \
     LEFT JOIN people pe ON pe.id = r.person_id LEFT JOIN orgs o ON o.id = r.org_id \
     LEFT JOIN places g ON g.id = r.grid_id LEFT JOIN orgs e ON e.id = r.employer_org_id";

fn registration_from_row(r: &AnyRow) -> Result<Registration> {
    let kind: String = r.try_get("kind")?;
    let skills: String = r.try_get("skills")?;
    Ok(Registration {
        id: r.try_get("id")?,
        kind: RegistrationKind::parse(&kind)?,
        person_id: r.try_get("person_id")?,
        person_name: r.try_get("person_name")?,
        org_id: r.try_get("org_id")?,
        org_code: r.try_get("org_code")?,
        org_name: r.try_get("org_name")?,
        community_id: r.try_get("community_id")?,
        community_code: r.try_get("community_code")?,
        community_name: r.try_get("community_name")?,
        grid_id: r.try_get("grid_id")?,
        grid_code: r.try_get("grid_code")?,
        grid_name: r.try_get("grid_name")?,
        employer_id: r.try_get("employer_org_id")?,
        employer_name: r.try_get("employer_name")?,
        skills: skills_from_text(&skills),
        valid_from: req_day("valid_from", r.try_get("valid_from")?)?,
        valid_to: day("valid_to", r.try_get("valid_to")?)?,
    })
}

const NEED_SELECT: &str =
    "SELECT n.id, n.community_id, c.code AS community_code, c.name AS community_name, c.path AS community_path, \
     n.grid_id, g.name AS grid_name, n.title, n.detail, n.skills, n.status, n.posted_by, n.posted_at, \
     n.claimed_by, pe.name AS claimed_by_name, n.claimed_at, n.done_at, n.done_on, n.hours, n.outcome \
     FROM needs n JOIN places c ON c.id = n.community_id LEFT JOIN places g ON g.id = n.grid_id \
     LEFT JOIN people pe ON pe.id = n.claimed_by";

fn need_from_row(r: &AnyRow) -> Result<Need> {
    let status: String = r.try_get("status")?;
    let skills: String = r.try_get("skills")?;
    Ok(Need {
        id: r.try_get("id")?,
        community_id: r.try_get("community_id")?,
        community_code: r.try_get("community_code")?,
        community_name: r.try_get("community_name")?,
        grid_id: r.try_get("grid_id")?,
        grid_name: r.try_get("grid_name")?,
        title: r.try_get("title")?,
        detail: r.try_get("detail")?,
        skills: skills_from_text(&skills),
        status: NeedStatus::parse(&status)?,
        posted_by: r.try_get("posted_by")?,
        posted_at: r.try_get("posted_at")?,
        claimed_by: r.try_get("claimed_by")?,
        claimed_by_name: r.try_get("claimed_by_name")?,
        claimed_at: r.try_get("claimed_at")?,
        done_at: r.try_get("done_at")?,
        done_on: day("done_on", r.try_get("done_on")?)?,
        hours: r.try_get("hours")?,
        outcome: r.try_get("outcome")?,
    })
}

/// The need `id` if its community lies in `scope`, with the community's path.
async fn need_in(conn: &mut AnyConnection, id: i64, scope: &DataScope) -> Result<Need> {
    let row = sqlx::query(&format!("{NEED_SELECT} WHERE n.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::not_found("need"))?;
    let path: String = row.try_get("community_path")?;
    if !scope.allows_place(&path) {
        return Err(StoreError::not_found("need"));
    }
    need_from_row(&row)
}

/// How a need step changes the row.
enum NeedStep {
    Claim {
        person_id: i64,
        on: NaiveDate,
    },
    Release,
    Complete {
        hours: f64,
        outcome: String,
        done_on: NaiveDate,
        today: NaiveDate,
    },
}

impl Store {
    // ----- households in grids -----

    /// Puts a household in a grid from `row.valid_from` on (open-ended).
    pub async fn assign_household(
        &self,
        actor: &Actor,
        scope: &DataScope,
        row: &HouseholdRow,
    ) -> Result<GridAssignment> {
        let (actor, scope, row) = (actor.clone(), scope.clone(), row.clone());
        self.write(move |tx| {
            Box::pin(async move { insert_assignment(tx, &actor, &scope, &row, None).await })
        })
        .await
    }

    /// Assigns households to grids from a file: all rows or none; the first bad row's
    /// number (the header is row 1) comes back with the reason.
    pub async fn import_grid_households(
        &self,
        actor: &Actor,
        rows: &[HouseholdRow],
        mut progress: impl FnMut(usize),
    ) -> Result<usize, ImportError> {
        let scope = DataScope::everything();
        let mut tx = self
            .writer
            .begin()
            .await
            .map_err(|e| StoreError::from(e).at_row(0))?;
        for (i, row) in rows.iter().enumerate() {
            let conn: &mut AnyConnection = &mut tx;
            insert_assignment(conn, actor, &scope, row, None)
                .await
                .map_err(|e| e.at_row(i + 2))?;
            progress(i + 1);
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::from(e).at_row(0))?;
        Ok(rows.len())
    }

    pub async fn assignment(&self, id: i64, scope: &DataScope) -> Result<GridAssignment> {
        let (_, place_like) = scope_patterns(scope);
        let row = sqlx::query(&format!(
            "{ASSIGNMENT_SELECT} WHERE gh.id = $1 AND g.path LIKE $2"
        ))
        .bind(id)
        .bind(place_like)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::not_found("assignment"))?;
        assignment_from_row(&row)
    }

    /// Ends an assignment on `on`, the first day the household is no longer in the grid.
    pub async fn end_assignment(
        &self,
        actor: &Actor,
        scope: &DataScope,
        id: i64,
        on: NaiveDate,
    ) -> Result<GridAssignment> {
        let before = self.assignment(id, scope).await?;
        let validity = Validity {
            from: before.valid_from,
            to: before.valid_to,
        }
        .end_on(on)?;
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let ended = crate::end_open_row(tx, crate::Dated::GridHouseholds, id, on).await?;
                if !ended {
                    return Err(invalid(
                        "on",
                        "already_ended",
                        "this assignment has already ended",
                    ));
                }
                let after = GridAssignment {
                    valid_to: validity.to,
                    ..before.clone()
                };
                audit::append(
                    tx,
                    &actor,
                    "end",
                    "grid_household",
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

    /// The households in a grid on `on`.
    pub async fn grid_households(
        &self,
        scope: &DataScope,
        grid_id: i64,
        on: NaiveDate,
    ) -> Result<Vec<GridAssignment>> {
        let grid = self.place(grid_id, scope).await?;
        if grid.level != PlaceLevel::Grid {
            return Err(StoreError::not_found("grid"));
        }
        let rows = sqlx::query(&format!(
            "{ASSIGNMENT_SELECT} WHERE gh.grid_id = $1 AND gh.valid_from <= $2 \
             AND (gh.valid_to IS NULL OR gh.valid_to > $2) ORDER BY h.code"
        ))
        .bind(grid_id)
        .bind(on.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(assignment_from_row).collect()
    }

    /// Every assignment a household has had, oldest first.
    pub async fn household_grids(
        &self,
        scope: &DataScope,
        household_id: i64,
    ) -> Result<Vec<GridAssignment>> {
        self.place(household_id, scope).await?;
        let rows = sqlx::query(&format!(
            "{ASSIGNMENT_SELECT} WHERE gh.household_id = $1 ORDER BY gh.valid_from, gh.id"
        ))
        .bind(household_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(assignment_from_row).collect()
    }

    /// The communities (village level) and grids in scope, in tree order: what the
    /// community pages offer to choose from.
    pub async fn community_places(&self, scope: &DataScope) -> Result<Vec<AreaRef>> {
        let (_, place_like) = scope_patterns(scope);
        let rows = sqlx::query(
            "SELECT id, code, name, level, parent_id FROM places \
             WHERE path LIKE $1 AND level IN ('village', 'grid') ORDER BY path LIMIT 5000",
        )
        .bind(place_like)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let level: String = r.try_get("level")?;
                Ok(AreaRef {
                    id: r.try_get("id")?,
                    code: r.try_get("code")?,
                    name: r.try_get("name")?,
                    level: PlaceLevel::parse(&level)?,
                    parent_id: r.try_get("parent_id")?,
                })
            })
            .collect()
    }

    // ----- 双进 registrations -----

    pub async fn register(
        &self,
        actor: &Actor,
        scope: &DataScope,
        d: &NewRegistration,
    ) -> Result<Registration> {
        // A member must be someone the caller can see, and a party member.
        if d.kind == RegistrationKind::Member {
            let person_id = d.person_id.ok_or_else(|| {
                invalid(
                    "person_id",
                    "required",
                    "a member registration names the person",
                )
            })?;
            let person = self
                .person(person_id, scope)
                .await
                .map_err(|_| invalid("person_id", "unknown_person", "no such person"))?;
            if !person.party_member {
                return Err(invalid(
                    "person_id",
                    "not_a_party_member",
                    "only party members register under 双进; organisations register as kind org",
                ));
            }
        }
        let (actor, scope, d) = (actor.clone(), scope.clone(), d.clone());
        let id = self
            .write(move |tx| {
                Box::pin(async move {
                    let community =
                        place_in(tx, &d.community_code, &scope, "community_code").await?;
                    require_level(&community, PlaceLevel::Village, "community_code")?;
                    let grid = match d.grid_code.as_deref().filter(|g| !g.trim().is_empty()) {
                        Some(code) => {
                            let g = place_in(tx, code, &scope, "grid_code").await?;
                            require_level(&g, PlaceLevel::Grid, "grid_code")?;
                            if g.parent_id != Some(community.id) {
                                return Err(invalid(
                                    "grid_code",
                                    "grid_outside_community",
                                    format!("the grid {} belongs to another community", g.code),
                                ));
                            }
                            Some(g.id)
                        }
                        None if d.kind == RegistrationKind::Member => {
                            return Err(invalid(
                                "grid_code",
                                "required",
                                "a member registers with one of the community's grids",
                            ))
                        }
                        None => None,
                    };
                    let (person_id, org_id, employer) = match d.kind {
                        RegistrationKind::Member => {
                            let employer =
                                match d.employer_code.as_deref().filter(|c| !c.trim().is_empty()) {
                                    Some(c) => Some(org_id_by_code(tx, c, "employer_code").await?),
                                    None => None,
                                };
                            (d.person_id, None, employer)
                        }
                        RegistrationKind::Org => {
                            let code = d
                                .org_code
                                .as_deref()
                                .filter(|c| !c.trim().is_empty())
                                .ok_or_else(|| {
                                    invalid(
                                        "org_code",
                                        "required",
                                        "an organisation registration names the organisation",
                                    )
                                })?;
                            (None, Some(org_id_by_code(tx, code, "org_code").await?), None)
                        }
                    };
                    let validity = Validity::new(d.valid_from, None)?;
                    let existing = match (person_id, org_id) {
                        (Some(p), _) => {
                            validities(
                                tx,
                                "SELECT community_id, valid_from, valid_to FROM registrations \
                                 WHERE person_id = $1",
                                p,
                            )
                            .await?
                        }
                        (_, Some(o)) => {
                            validities(
                                tx,
                                "SELECT community_id, valid_from, valid_to FROM registrations \
                                 WHERE org_id = $1",
                                o,
                            )
                            .await?
                        }
                        _ => Vec::new(),
                    };
                    check_single_registration(&existing, validity)?;
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO registrations (kind, person_id, org_id, community_id, grid_id, \
                         employer_org_id, skills, valid_from, valid_to, region, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10) RETURNING id",
                    )
                    .bind(d.kind.as_str())
                    .bind(person_id)
                    .bind(org_id)
                    .bind(community.id)
                    .bind(grid)
                    .bind(employer)
                    .bind(skills_text(&d.skills))
                    .bind(d.valid_from.to_string())
                    .bind(&community.region)
                    .bind(now_text())
                    .fetch_one(&mut *tx)
                    .await?;
                    let row = sqlx::query(&format!("{REGISTRATION_SELECT} WHERE r.id = $1"))
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                    let reg = registration_from_row(&row)?;
                    audit::append(
                        tx,
                        &actor,
                        "register",
                        "registration",
                        &id.to_string(),
                        None::<&()>,
                        Some(&reg),
                    )
                    .await?;
                    Ok(id)
                })
            })
            .await?;
        self.registration(id, &DataScope::everything()).await
    }

    pub async fn registration(&self, id: i64, scope: &DataScope) -> Result<Registration> {
        let (_, place_like) = scope_patterns(scope);
        let row = sqlx::query(&format!(
            "{REGISTRATION_SELECT} WHERE r.id = $1 AND c.path LIKE $2"
        ))
        .bind(id)
        .bind(place_like)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::not_found("registration"))?;
        registration_from_row(&row)
    }

    /// Ends a registration on `on` (the first day it no longer holds).
    pub async fn end_registration(
        &self,
        actor: &Actor,
        scope: &DataScope,
        id: i64,
        on: NaiveDate,
    ) -> Result<Registration> {
        let before = self.registration(id, scope).await?;
        let validity = Validity {
            from: before.valid_from,
            to: before.valid_to,
        }
        .end_on(on)?;
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let ended = crate::end_open_row(tx, crate::Dated::Registrations, id, on).await?;
                if !ended {
                    return Err(invalid(
                        "on",
                        "already_ended",
                        "this registration has already ended",
                    ));
                }
                let after = Registration {
                    valid_to: validity.to,
                    ..before.clone()
                };
                audit::append(
                    tx,
                    &actor,
                    "end",
                    "registration",
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

    /// The registrations with a community valid on `on`, optionally only those of one
    /// kind or listing a skill, members by name.
    pub async fn registrations(
        &self,
        scope: &DataScope,
        community_id: i64,
        on: NaiveDate,
        kind: Option<RegistrationKind>,
        skill: Option<&str>,
    ) -> Result<Vec<Registration>> {
        let community = self.place(community_id, scope).await?;
        if community.level != PlaceLevel::Village {
            return Err(StoreError::not_found("community"));
        }
        let skill = skill.map(str::trim).unwrap_or("");
        let rows = sqlx::query(&format!(
            "{REGISTRATION_SELECT} WHERE r.community_id = $1 AND r.valid_from <= $2 \
             AND (r.valid_to IS NULL OR r.valid_to > $2) AND ($3 = '' OR r.kind = $3) \
             AND ($4 = '' OR (',' || r.skills || ',') LIKE $5) \
             ORDER BY r.kind, g.code, pe.name, o.name, r.id"
        ))
        .bind(community_id)
        .bind(on.to_string())
        .bind(kind.map(|k| k.as_str()).unwrap_or(""))
        .bind(skill)
        .bind(format!("%,{skill},%"))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(registration_from_row).collect()
    }

    /// Every member registration in scope valid on `on`, by community and name: who
    /// can be asked for a service record, and which employers are named.
    pub async fn member_registrations(
        &self,
        scope: &DataScope,
        on: NaiveDate,
        limit: i64,
    ) -> Result<Vec<Registration>> {
        let (_, place_like) = scope_patterns(scope);
        let rows = sqlx::query(&format!(
            "{REGISTRATION_SELECT} WHERE r.kind = 'member' AND c.path LIKE $1 AND r.valid_from <= $2 \
             AND (r.valid_to IS NULL OR r.valid_to > $2) ORDER BY c.code, pe.name, r.id LIMIT $3"
        ))
        .bind(place_like)
        .bind(on.to_string())
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(registration_from_row).collect()
    }

    // ----- needs -----

    pub async fn post_need(&self, actor: &Actor, scope: &DataScope, d: &NewNeed) -> Result<Need> {
        let (actor, scope, d) = (actor.clone(), scope.clone(), d.clone());
        self.write(move |tx| {
            Box::pin(async move {
                let community = place_in(tx, &d.community_code, &scope, "community_code").await?;
                require_level(&community, PlaceLevel::Village, "community_code")?;
                let grid = match d.grid_code.as_deref().filter(|g| !g.trim().is_empty()) {
                    Some(code) => {
                        let g = place_in(tx, code, &scope, "grid_code").await?;
                        require_level(&g, PlaceLevel::Grid, "grid_code")?;
                        if g.parent_id != Some(community.id) {
                            return Err(invalid(
                                "grid_code",
                                "grid_outside_community",
                                format!("the grid {} belongs to another community", g.code),
                            ));
                        }
                        Some(g.id)
                    }
                    None => None,
                };
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO needs (community_id, grid_id, title, detail, skills, status, posted_by, \
                     posted_at, region) VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8) RETURNING id",
                )
                .bind(community.id)
                .bind(grid)
                .bind(&d.title)
                .bind(&d.detail)
                .bind(skills_text(&d.skills))
                .bind(&actor.0)
                .bind(now_text())
                .bind(&community.region)
                .fetch_one(&mut *tx)
                .await?;
                let need = need_in(tx, id, &DataScope::everything()).await?;
                audit::append(
                    tx,
                    &actor,
                    "post",
                    "need",
                    &id.to_string(),
                    None::<&()>,
                    Some(&need),
                )
                .await?;
                Ok(need)
            })
        })
        .await
    }

    pub async fn need(&self, scope: &DataScope, id: i64) -> Result<Need> {
        let mut conn = self.reader.acquire().await?;
        need_in(&mut conn, id, scope).await
    }

    /// Needs in scope, newest first, optionally of one community or status.
    pub async fn needs(
        &self,
        scope: &DataScope,
        community_id: Option<i64>,
        status: Option<NeedStatus>,
        limit: i64,
    ) -> Result<Vec<Need>> {
        let (_, place_like) = scope_patterns(scope);
        let rows = sqlx::query(&format!(
            "{NEED_SELECT} WHERE c.path LIKE $1 AND ($2 = 0 OR n.community_id = $2) \
             AND ($3 = '' OR n.status = $3) ORDER BY n.id DESC LIMIT $4"
        ))
        .bind(place_like)
        .bind(community_id.unwrap_or(0))
        .bind(status.map(|s| s.as_str()).unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(need_from_row).collect()
    }

    /// A member registered with the need's community on `on` claims it.
    pub async fn claim_need(
        &self,
        actor: &Actor,
        scope: &DataScope,
        id: i64,
        person_id: i64,
        on: NaiveDate,
    ) -> Result<Need> {
        self.need_step(actor, scope, id, NeedStep::Claim { person_id, on })
            .await
    }

    /// Gives a claimed need back to the list.
    pub async fn release_need(&self, actor: &Actor, scope: &DataScope, id: i64) -> Result<Need> {
        self.need_step(actor, scope, id, NeedStep::Release).await
    }

    /// Records a claimed need as done on `done_on` (not after `today`), with the
    /// hours it took and what came of it.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete_need(
        &self,
        actor: &Actor,
        scope: &DataScope,
        id: i64,
        hours: f64,
        outcome: &str,
        done_on: NaiveDate,
        today: NaiveDate,
    ) -> Result<Need> {
        let hours = lianxin_domain::community::parse_hours(hours)?;
        let outcome = lianxin_domain::community::parse_text("outcome", outcome, 500, true)?;
        self.need_step(
            actor,
            scope,
            id,
            NeedStep::Complete {
                hours,
                outcome,
                done_on,
                today,
            },
        )
        .await
    }

    async fn need_step(
        &self,
        actor: &Actor,
        scope: &DataScope,
        id: i64,
        step: NeedStep,
    ) -> Result<Need> {
        let (actor, scope) = (actor.clone(), scope.clone());
        self.write(move |tx| {
            Box::pin(async move {
                let before = need_in(tx, id, &scope).await?;
                let action = match &step {
                    NeedStep::Claim { .. } => NeedAction::Claim,
                    NeedStep::Release => NeedAction::Release,
                    NeedStep::Complete { .. } => NeedAction::Complete,
                };
                let status = before.status.after(action)?;
                let now = now_text();
                let query = match &step {
                    NeedStep::Claim { person_id, on } => {
                        let regs = validities(
                            tx,
                            "SELECT community_id, valid_from, valid_to FROM registrations \
                             WHERE person_id = $1 AND kind = 'member'",
                            *person_id,
                        )
                        .await?;
                        check_registered(&regs, before.community_id, *on)?;
                        sqlx::query(
                            "UPDATE needs SET status = $1, claimed_by = $2, claimed_at = $3 \
                             WHERE id = $4 AND status = $5",
                        )
                        .bind(status.as_str())
                        .bind(*person_id)
                        .bind(now.clone())
                    }
                    NeedStep::Release => sqlx::query(
                        "UPDATE needs SET status = $1, claimed_by = NULL, claimed_at = NULL \
                         WHERE id = $2 AND status = $3",
                    )
                    .bind(status.as_str()),
                    NeedStep::Complete {
                        hours,
                        outcome,
                        done_on,
                        today,
                    } => {
                        if done_on > today {
                            return Err(invalid(
                                "done_on",
                                "in_future",
                                "the service cannot be dated in the future",
                            ));
                        }
                        let claimed_day = before
                            .claimed_at
                            .as_deref()
                            .and_then(|t| t.get(..10))
                            .and_then(|t| t.parse::<NaiveDate>().ok());
                        // Claimed instants are UTC; a day's margin covers Shanghai's offset.
                        if claimed_day.is_some_and(|c| *done_on < c.pred_opt().unwrap_or(c)) {
                            return Err(invalid(
                                "done_on",
                                "before_claim",
                                "the service cannot be dated before the need was claimed",
                            ));
                        }
                        sqlx::query(
                            "UPDATE needs SET status = $1, done_at = $2, done_on = $3, \
                             hours = CAST($4 AS DOUBLE PRECISION), outcome = $5 WHERE id = $6 AND status = $7",
                        )
                        .bind(status.as_str())
                        .bind(now.clone())
                        .bind(done_on.to_string())
                        .bind(hours.to_string())
                        .bind(outcome.clone())
                    }
                };
                let changed = query
                    .bind(id)
                    .bind(before.status.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if changed != 1 {
                    return Err(invalid(
                        "action",
                        "wrong_state",
                        "the need changed meanwhile; reload it",
                    ));
                }
                let after = need_in(tx, id, &DataScope::everything()).await?;
                audit::append(
                    tx,
                    &actor,
                    action.as_str(),
                    "need",
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

    // ----- service records -----

    /// A member's registrations and claimed needs (within the caller's scope).
    pub async fn service_record(&self, scope: &DataScope, person_id: i64) -> Result<ServiceRecord> {
        let person = self.person(person_id, scope).await?;
        let (_, place_like) = scope_patterns(scope);
        let rows = sqlx::query(&format!(
            "{REGISTRATION_SELECT} WHERE r.person_id = $1 AND c.path LIKE $2 ORDER BY r.valid_from, r.id"
        ))
        .bind(person_id)
        .bind(&place_like)
        .fetch_all(&self.reader)
        .await?;
        let registrations = rows
            .iter()
            .map(registration_from_row)
            .collect::<Result<Vec<_>>>()?;
        let rows = sqlx::query(&format!(
            "{NEED_SELECT} WHERE n.claimed_by = $1 AND c.path LIKE $2 ORDER BY n.done_on, n.id"
        ))
        .bind(person_id)
        .bind(&place_like)
        .fetch_all(&self.reader)
        .await?;
        let needs = rows.iter().map(need_from_row).collect::<Result<Vec<_>>>()?;
        let done: Vec<&Need> = needs
            .iter()
            .filter(|n| n.status == NeedStatus::Done)
            .collect();
        Ok(ServiceRecord {
            person_id,
            person_name: person.name,
            done: done.len() as u64,
            hours: round2(done.iter().filter_map(|n| n.hours).sum()),
            registrations,
            needs,
        })
    }

    /// The quarter's report to an employer: its members registered (at some time in
    /// the quarter) with communities in scope, and the needs they did in the quarter.
    pub async fn employer_report(
        &self,
        scope: &DataScope,
        org_id: i64,
        quarter: Quarter,
    ) -> Result<EmployerReport> {
        let org_name = self
            .org_name(org_id)
            .await?
            .ok_or(StoreError::not_found("organisation"))?;
        let (_, place_like) = scope_patterns(scope);
        let (from, to) = (quarter.first_day(), quarter.last_day());
        let rows = sqlx::query(&format!(
            "{REGISTRATION_SELECT} WHERE r.kind = 'member' AND r.employer_org_id = $1 AND c.path LIKE $2 \
             AND r.valid_from <= $3 AND (r.valid_to IS NULL OR r.valid_to > $4) ORDER BY pe.name, r.id"
        ))
        .bind(org_id)
        .bind(&place_like)
        .bind(to.to_string())
        .bind(from.to_string())
        .fetch_all(&self.reader)
        .await?;
        let regs = rows
            .iter()
            .map(registration_from_row)
            .collect::<Result<Vec<_>>>()?;
        if regs.is_empty() {
            // An employer nobody in scope names is shown only if the caller sees it.
            self.org(org_id, scope).await?;
        }
        let mut members: Vec<MemberService> = Vec::new();
        for r in &regs {
            let Some(pid) = r.person_id else { continue };
            if members.iter().any(|m| m.person_id == pid) {
                continue;
            }
            let rows = sqlx::query(&format!(
                "{NEED_SELECT} WHERE n.claimed_by = $1 AND n.status = 'done' AND c.path LIKE $2 \
                 AND n.done_on >= $3 AND n.done_on <= $4 ORDER BY n.done_on, n.id"
            ))
            .bind(pid)
            .bind(&place_like)
            .bind(from.to_string())
            .bind(to.to_string())
            .fetch_all(&self.reader)
            .await?;
            let needs = rows.iter().map(need_from_row).collect::<Result<Vec<_>>>()?;
            members.push(MemberService {
                person_id: pid,
                person_name: r.person_name.clone().unwrap_or_default(),
                community_name: r.community_name.clone(),
                grid_name: r.grid_name.clone(),
                skills: r.skills.clone(),
                done: needs.len() as u64,
                hours: round2(needs.iter().filter_map(|n| n.hours).sum()),
                needs: needs.into_iter().map(|n| n.title).collect(),
            });
        }
        Ok(EmployerReport {
            org_id,
            org_name,
            quarter,
            from,
            to,
            done: members.iter().map(|m| m.done).sum(),
            hours: round2(members.iter().map(|m| m.hours).sum()),
            members,
        })
    }

    // ----- coverage -----

    /// Household-visit coverage over `[from, to]` for the grids in scope (narrowed to
    /// the subtree of `under` when given), per grid and per community.
    pub async fn coverage(
        &self,
        scope: &DataScope,
        under: Option<i64>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<CoverageReport> {
        lianxin_domain::community::check_period(from, to)?;
        let (_, place_like) = scope_patterns(scope);
        let under_like = match under {
            Some(id) => format!("{}%", self.place(id, scope).await?.path),
            None => place_like.clone(),
        };
        let rows = sqlx::query(
            "SELECT g.id, g.code, g.name, c.id AS community_id, c.code AS community_code, \
             c.name AS community_name, COUNT(gh.id) AS households, \
             COALESCE(SUM(CASE WHEN gh.id IS NOT NULL AND EXISTS (SELECT 1 FROM visits v \
               WHERE v.place_id = gh.household_id AND v.kind = 'household' \
               AND v.visited_on >= $3 AND v.visited_on <= $4) THEN 1 ELSE 0 END), 0) AS visited \
             FROM places g JOIN places c ON c.id = g.parent_id \
             LEFT JOIN grid_households gh ON gh.grid_id = g.id AND gh.valid_from <= $4 \
               AND (gh.valid_to IS NULL OR gh.valid_to > $4) \
             WHERE g.level = 'grid' AND g.path LIKE $1 AND g.path LIKE $2 \
             GROUP BY g.id, g.code, g.name, c.id, c.code, c.name ORDER BY g.path",
        )
        .bind(&place_like)
        .bind(&under_like)
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(&self.reader)
        .await?;
        let mut grids = Vec::with_capacity(rows.len());
        let mut communities: BTreeMap<i64, CommunityCoverage> = BTreeMap::new();
        let mut total = Coverage {
            households: 0,
            visited: 0,
        };
        for r in &rows {
            let households: i64 = r.try_get("households")?;
            let visited: i64 = r.try_get("visited")?;
            let coverage = Coverage {
                households: households.max(0) as u64,
                visited: visited.max(0) as u64,
            };
            let g = GridCoverage {
                grid_id: r.try_get("id")?,
                grid_code: r.try_get("code")?,
                grid_name: r.try_get("name")?,
                community_id: r.try_get("community_id")?,
                community_code: r.try_get("community_code")?,
                community_name: r.try_get("community_name")?,
                share: coverage.share(),
                coverage,
            };
            let c = communities
                .entry(g.community_id)
                .or_insert_with(|| CommunityCoverage {
                    community_id: g.community_id,
                    community_code: g.community_code.clone(),
                    community_name: g.community_name.clone(),
                    grids: 0,
                    coverage: Coverage {
                        households: 0,
                        visited: 0,
                    },
                    share: None,
                });
            c.grids += 1;
            c.coverage.households += coverage.households;
            c.coverage.visited += coverage.visited;
            c.share = c.coverage.share();
            total.households += coverage.households;
            total.visited += coverage.visited;
            grids.push(g);
        }
        let mut communities: Vec<CommunityCoverage> = communities.into_values().collect();
        communities.sort_by(|a, b| a.community_code.cmp(&b.community_code));
        Ok(CoverageReport {
            from,
            to,
            grids,
            communities,
            share: total.share(),
            total,
        })
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
