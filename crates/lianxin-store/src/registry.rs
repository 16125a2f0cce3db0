//! The registry: places, organisations, people and their effective-dated relations.
//!
//! Reads take a [`DataScope`] and return only what lies inside it; a record outside
//! the scope is reported as not found, so a caller cannot even learn that it exists.
//! Writes take validated drafts from `lianxin_domain::draft`, check the structural
//! rules that need the database (the parent exists and fits), and append to the
//! audit trail in the same transaction.

use crate::audit::{self, Actor};
use crate::error::ImportError;
use crate::{now_text, Result, Store, StoreError};
use chrono::NaiveDate;
use lianxin_domain::draft::{OrgDraft, PersonDraft, PlaceDraft, RelationDraft, RelationEnd};
use lianxin_domain::org::OrgKind;
use lianxin_domain::place::{child_path, PlaceCode, PlaceLevel};
use lianxin_domain::relation::{RelationKind, Validity};
use lianxin_domain::role::DataScope;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Place {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub level: PlaceLevel,
    pub parent_id: Option<i64>,
    pub path: String,
    pub region: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Org {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub kind: OrgKind,
    pub parent_id: Option<i64>,
    pub path: String,
    pub region: String,
}

/// A person as anyone may see them: personal numbers only masked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Person {
    pub id: i64,
    pub name: String,
    pub phone_masked: Option<String>,
    pub has_id_card: bool,
    pub party_member: bool,
    pub party_joined: Option<NaiveDate>,
    pub place_id: i64,
    pub place_name: String,
    pub place_code: String,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Relation {
    pub id: i64,
    pub person_id: i64,
    pub person_name: String,
    pub kind: RelationKind,
    pub org_id: Option<i64>,
    pub org_name: Option<String>,
    pub place_id: Option<i64>,
    pub place_name: Option<String>,
    pub post: Option<String>,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

/// Counts for the home dashboard, within a scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RegistryStats {
    pub places_by_level: Vec<(String, i64)>,
    pub orgs: i64,
    pub people: i64,
    pub party_members: i64,
    /// People per league/city: (code, name, count).
    pub people_by_city: Vec<(String, String, i64)>,
}

/// SQL `LIKE` patterns for a scope: (organisation path, place path). A pattern of
/// `!` matches nothing, since every path starts with `/`.
pub(crate) fn scope_patterns(scope: &DataScope) -> (String, String) {
    match (&scope.org_path, &scope.place_path) {
        (None, None) => ("/%".into(), "/%".into()),
        (o, p) => (
            o.as_ref()
                .map(|o| format!("{o}%"))
                .unwrap_or_else(|| "!".into()),
            p.as_ref()
                .map(|p| format!("{p}%"))
                .unwrap_or_else(|| "!".into()),
        ),
    }
}

const PLACE_COLUMNS: &str =
    "p.id, p.code, p.name, p.level, p.parent_id, p.path, p.region, p.lat, p.lon";
const ORG_COLUMNS: &str = "o.id, o.code, o.name, o.kind, o.parent_id, o.path, o.region";
const PERSON_COLUMNS: &str =
    "pe.id, pe.name, pe.phone_masked, pe.id_card_hash, pe.party_member, pe.party_joined, \
     pe.place_id, pe.region, pl.name AS place_name, pl.code AS place_code";
/// Organisations in scope: inside the org subtree or serving a place in the place subtree.
pub(crate) const ORG_IN_SCOPE: &str =
    "(o.path LIKE $1 OR EXISTS (SELECT 1 FROM org_places op JOIN places sp ON sp.id = op.place_id \
     WHERE op.org_id = o.id AND sp.path LIKE $2))";
/// People in scope: living in the place subtree, or currently related to an org in the
/// org subtree (a relation that has ended no longer grants sight of the person). The
/// day is a literal the server formats, never user input.
fn person_in_scope() -> String {
    let today = lianxin_domain::calendar::local_day(chrono::Utc::now());
    format!(
        "(pl.path LIKE $2 OR EXISTS (SELECT 1 FROM relations sr JOIN orgs so ON so.id = sr.org_id \
         WHERE sr.person_id = pe.id AND so.path LIKE $1 AND sr.valid_from <= '{today}' \
         AND (sr.valid_to IS NULL OR sr.valid_to > '{today}')))"
    )
}

fn place_from_row(r: &AnyRow) -> Result<Place> {
    let level: String = r.try_get("level")?;
    Ok(Place {
        id: r.try_get("id")?,
        code: r.try_get("code")?,
        name: r.try_get("name")?,
        level: PlaceLevel::parse(&level)?,
        parent_id: r.try_get("parent_id")?,
        path: r.try_get("path")?,
        region: r.try_get("region")?,
        lat: r.try_get("lat")?,
        lon: r.try_get("lon")?,
    })
}

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

pub(crate) fn day(field: &str, v: Option<String>) -> Result<Option<NaiveDate>> {
    v.map(|s| lianxin_domain::relation::parse_day(field, &s).map_err(StoreError::from))
        .transpose()
}

fn person_from_row(r: &AnyRow) -> Result<Person> {
    let id_card: Option<String> = r.try_get("id_card_hash")?;
    let party: i64 = r.try_get("party_member")?;
    Ok(Person {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        phone_masked: r.try_get("phone_masked")?,
        has_id_card: id_card.is_some(),
        party_member: party != 0,
        party_joined: day("party_joined", r.try_get("party_joined")?)?,
        place_id: r.try_get("place_id")?,
        place_name: r.try_get("place_name")?,
        place_code: r.try_get("place_code")?,
        region: r.try_get("region")?,
    })
}

fn relation_from_row(r: &AnyRow) -> Result<Relation> {
    let kind: String = r.try_get("kind")?;
    Ok(Relation {
        id: r.try_get("id")?,
        person_id: r.try_get("person_id")?,
        person_name: r.try_get("person_name")?,
        kind: RelationKind::parse(&kind)?,
        org_id: r.try_get("org_id")?,
        org_name: r.try_get("org_name")?,
        place_id: r.try_get("place_id")?,
        place_name: r.try_get("place_name")?,
        post: r.try_get("post")?,
        valid_from: day("valid_from", r.try_get("valid_from")?)?
            .ok_or_else(|| StoreError::Config("relation without valid_from".into()))?,
        valid_to: day("valid_to", r.try_get("valid_to")?)?,
    })
}

const RELATION_SELECT: &str =
    "SELECT r.id, r.person_id, pe.name AS person_name, r.kind, r.org_id, o.name AS org_name, \
     r.place_id, p.name AS place_name, r.post, r.valid_from, r.valid_to \
     FROM relations r JOIN people pe ON pe.id = r.person_id \
     LEFT JOIN orgs o ON o.id = r.org_id LEFT JOIN places p ON p.id = r.place_id";

async fn place_by_code_in(conn: &mut AnyConnection, code: &str) -> Result<Option<Place>> {
    let row = sqlx::query(&format!(
        "SELECT {PLACE_COLUMNS} FROM places p WHERE p.code = $1"
    ))
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(place_from_row).transpose()
}

pub(crate) async fn org_by_code_in(conn: &mut AnyConnection, code: &str) -> Result<Option<Org>> {
    let row = sqlx::query(&format!(
        "SELECT {ORG_COLUMNS} FROM orgs o WHERE o.code = $1"
    ))
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(org_from_row).transpose()
}

/// The place with `code`, if it exists inside `scope`. A place outside the scope is
/// reported exactly like a missing one, so a write cannot probe which codes exist.
pub(crate) async fn place_in_scope(
    conn: &mut AnyConnection,
    code: &str,
    scope: &DataScope,
    field: &str,
) -> Result<Place> {
    match place_by_code_in(conn, code).await? {
        Some(p) if scope.allows_place(&p.path) => Ok(p),
        _ => Err(StoreError::Invalid(lianxin_domain::ValidationError::new(
            field,
            "unknown_place",
            format!("no place has the code {code}"),
        ))),
    }
}

async fn insert_place(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: &DataScope,
    d: &PlaceDraft,
) -> Result<Place> {
    let parent = match &d.parent_code {
        Some(pc) => Some(place_in_scope(conn, pc.as_str(), scope, "parent_code").await?),
        None if scope.place_path.is_some() => {
            return Err(StoreError::Invalid(lianxin_domain::ValidationError::new(
                "parent_code",
                "out_of_scope",
                "a scoped account can only add places below its own",
            )))
        }
        None => None,
    };
    let parent_code = parent
        .as_ref()
        .map(|p| PlaceCode::parse(&p.code))
        .transpose()?;
    d.code.check_fits(
        d.level,
        parent
            .as_ref()
            .zip(parent_code.as_ref())
            .map(|(p, c)| (c, p.level)),
    )?;
    let path = child_path(parent.as_ref().map(|p| p.path.as_str()), &d.code);
    if place_by_code_in(conn, d.code.as_str()).await?.is_some() {
        return Err(StoreError::conflict(
            "code",
            format!("a place with the code {} already exists", d.code),
        ));
    }
    let now = now_text();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO places (code, name, level, parent_id, path, region, lat, lon, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, CAST($7 AS DOUBLE PRECISION), CAST($8 AS DOUBLE PRECISION), $9, $9) \
         RETURNING id",
    )
    .bind(d.code.as_str())
    .bind(&d.name)
    .bind(d.level.as_str())
    .bind(parent.as_ref().map(|p| p.id))
    .bind(&path)
    .bind(d.code.region_code())
    .bind(crate::float_text(d.point.map(|p| p.lat)))
    .bind(crate::float_text(d.point.map(|p| p.lon)))
    .bind(&now)
    .fetch_one(&mut *conn)
    .await?;
    let place = Place {
        id,
        code: d.code.to_string(),
        name: d.name.clone(),
        level: d.level,
        parent_id: parent.map(|p| p.id),
        path,
        region: d.code.region_code(),
        lat: d.point.map(|p| p.lat),
        lon: d.point.map(|p| p.lon),
    };
    audit::append(
        conn,
        actor,
        "create",
        "place",
        &id.to_string(),
        None::<&()>,
        Some(&place),
    )
    .await?;
    Ok(place)
}

async fn insert_org(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: &DataScope,
    d: &OrgDraft,
) -> Result<Org> {
    let parent = match &d.parent_code {
        Some(pc) => Some(org_by_code_in(conn, pc).await?.ok_or_else(|| {
            StoreError::Invalid(lianxin_domain::ValidationError::new(
                "parent_code",
                "unknown_parent",
                format!("no organisation has the code {pc}"),
            ))
        })?),
        None => None,
    };
    if let Some(p) = &parent {
        if !d.kind.may_sit_under(p.kind) {
            return Err(StoreError::Invalid(lianxin_domain::ValidationError::new(
                "parent_code",
                "invalid_parent",
                format!(
                    "a {} cannot sit under a {}",
                    d.kind.as_str(),
                    p.kind.as_str()
                ),
            )));
        }
    }
    if org_by_code_in(conn, &d.code).await?.is_some() {
        return Err(StoreError::conflict(
            "code",
            format!("an organisation with the code {} already exists", d.code),
        ));
    }
    let mut served = Vec::new();
    for code in &d.serves {
        let place = place_in_scope(conn, code.as_str(), scope, "serves").await?;
        served.push(place);
    }
    // A scoped account may only create organisations it will be able to see.
    let path = format!(
        "{}{}/",
        parent.as_ref().map(|p| p.path.as_str()).unwrap_or("/"),
        d.code
    );
    if scope.place_path.is_some()
        && served.is_empty()
        && !scope
            .org_path
            .as_ref()
            .is_some_and(|o| path.starts_with(o.as_str()))
    {
        return Err(StoreError::Invalid(lianxin_domain::ValidationError::new(
            "serves",
            "out_of_scope",
            "name at least one place inside your data scope that the organisation serves",
        )));
    }
    let region = served
        .first()
        .map(|p| p.region.clone())
        .or_else(|| parent.as_ref().map(|p| p.region.clone()))
        .unwrap_or_else(|| "150000".into());
    let now = now_text();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO orgs (code, name, kind, parent_id, path, region, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(&d.code)
    .bind(&d.name)
    .bind(d.kind.as_str())
    .bind(parent.as_ref().map(|p| p.id))
    .bind(&path)
    .bind(&region)
    .bind(&now)
    .fetch_one(&mut *conn)
    .await?;
    for p in &served {
        sqlx::query(
            "INSERT INTO org_places (org_id, place_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(p.id)
        .execute(&mut *conn)
        .await?;
    }
    let org = Org {
        id,
        code: d.code.clone(),
        name: d.name.clone(),
        kind: d.kind,
        parent_id: parent.map(|p| p.id),
        path,
        region,
    };
    let serves: Vec<&str> = d.serves.iter().map(|c| c.as_str()).collect();
    audit::append(
        conn,
        actor,
        "create",
        "org",
        &id.to_string(),
        None::<&()>,
        Some(&serde_json::json!({ "org": &org, "serves": serves })),
    )
    .await?;
    Ok(org)
}

async fn insert_person(
    conn: &mut AnyConnection,
    actor: &Actor,
    scope: &DataScope,
    d: &PersonDraft,
) -> Result<i64> {
    let place = place_in_scope(conn, d.place_code.as_str(), scope, "place_code").await?;
    if let Some(h) = &d.id_card_hash {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM people WHERE id_card_hash = $1")
                .bind(h)
                .fetch_optional(&mut *conn)
                .await?;
        if exists.is_some() {
            return Err(StoreError::conflict(
                "id_card",
                "a person with this ID-card number is already registered",
            ));
        }
    }
    let now = now_text();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO people (name, phone_enc, phone_hash, phone_masked, id_card_hash, party_member, party_joined, \
         place_id, region, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
    )
    .bind(&d.name)
    .bind(d.phone.as_ref().map(|p| p.sealed.clone()))
    .bind(d.phone.as_ref().map(|p| p.hash.clone()))
    .bind(d.phone.as_ref().map(|p| p.masked.clone()))
    .bind(d.id_card_hash.clone())
    .bind(i64::from(d.party_member))
    .bind(d.party_joined.map(|d| d.to_string()))
    .bind(place.id)
    .bind(&place.region)
    .bind(&now)
    .fetch_one(&mut *conn)
    .await?;
    // The audit image holds only masked or hashed personal data.
    audit::append(
        conn,
        actor,
        "create",
        "person",
        &id.to_string(),
        None::<&()>,
        Some(&serde_json::json!({
            "name": d.name, "phone": d.phone.as_ref().map(|p| &p.masked),
            "has_id_card": d.id_card_hash.is_some(), "party_member": d.party_member,
            "party_joined": d.party_joined, "place_code": d.place_code.as_str(),
        })),
    )
    .await?;
    Ok(id)
}

/// Runs `$insert` for every draft inside one transaction: all rows or none. Row
/// numbers in errors count the header as row 1, as a spreadsheet shows them.
macro_rules! import_rows {
    ($store:expr, $drafts:expr, $progress:expr, |$conn:ident, $d:ident| $insert:expr) => {{
        let mut tx = $store
            .writer
            .begin()
            .await
            .map_err(|e| StoreError::from(e).at_row(0))?;
        for (i, $d) in $drafts.iter().enumerate() {
            let $conn: &mut AnyConnection = &mut tx;
            $insert.await.map_err(|e| e.at_row(i + 2))?;
            $progress(i + 1);
        }
        tx.commit()
            .await
            .map_err(|e| StoreError::from(e).at_row(0))?;
        Ok($drafts.len())
    }};
}

impl Store {
    // ----- places -----

    pub async fn create_place(
        &self,
        actor: &Actor,
        scope: &DataScope,
        d: &PlaceDraft,
    ) -> Result<Place> {
        let (actor, scope, d) = (actor.clone(), scope.clone(), d.clone());
        self.write(move |tx| Box::pin(async move { insert_place(tx, &actor, &scope, &d).await }))
            .await
    }

    pub async fn import_places(
        &self,
        actor: &Actor,
        drafts: &[PlaceDraft],
        mut progress: impl FnMut(usize),
    ) -> Result<usize, ImportError> {
        let scope = DataScope::everything();
        import_rows!(self, drafts, progress, |c, d| insert_place(
            c, actor, &scope, d
        ))
    }

    pub async fn place(&self, id: i64, scope: &DataScope) -> Result<Place> {
        let (_, place_like) = scope_patterns(scope);
        let row = sqlx::query(&format!(
            "SELECT {PLACE_COLUMNS} FROM places p WHERE p.id = $1 AND p.path LIKE $2"
        ))
        .bind(id)
        .bind(place_like)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::not_found("place"))?;
        place_from_row(&row)
    }

    pub async fn place_by_code(&self, code: &str) -> Result<Option<Place>> {
        let mut conn = self.reader.acquire().await?;
        place_by_code_in(&mut conn, code).await
    }

    /// The children of a place (with how many children each has), or the roots of
    /// the scope when `parent` is `None`.
    /// The registered place with coordinates nearest to a point, within about 50 km:
    /// where a demand reported by location only is counted and routed. Prefers the
    /// most specific level (a community over its street) among places equally near.
    pub async fn nearest_place(&self, lat: f64, lon: f64) -> Result<Option<Place>> {
        const BOX_DEGREES: f64 = 0.5;
        let rows = sqlx::query(&format!(
            "SELECT {PLACE_COLUMNS} FROM places p WHERE p.lat BETWEEN $1 AND $2 AND p.lon BETWEEN $3 AND $4"
        ))
        .bind(lat - BOX_DEGREES)
        .bind(lat + BOX_DEGREES)
        .bind(lon - BOX_DEGREES)
        .bind(lon + BOX_DEGREES)
        .fetch_all(&self.reader)
        .await?;
        let mut best: Option<(f64, usize, Place)> = None;
        for row in &rows {
            let p = place_from_row(row)?;
            let (Some(plat), Some(plon)) = (p.lat, p.lon) else {
                continue;
            };
            // An equirectangular distance is exact enough to rank places this close.
            let dx = (plon - lon).to_radians() * lat.to_radians().cos();
            let dy = (plat - lat).to_radians();
            let dist = (dx * dx + dy * dy).sqrt();
            let depth = p.path.matches('/').count();
            let better = match &best {
                None => true,
                Some((bd, bdepth, _)) => {
                    dist < *bd - 1e-9 || ((dist - bd).abs() <= 1e-9 && depth > *bdepth)
                }
            };
            if better {
                best = Some((dist, depth, p));
            }
        }
        Ok(best.map(|b| b.2))
    }

    /// An organisation's name, or `None` if there is no such organisation.
    pub async fn org_name(&self, id: i64) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT name FROM orgs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?)
    }

    pub async fn place_children(
        &self,
        parent: Option<i64>,
        scope: &DataScope,
    ) -> Result<Vec<(Place, i64)>> {
        let (_, place_like) = scope_patterns(scope);
        let filter = match (parent, &scope.place_path) {
            (Some(_), _) => "p.parent_id = $1",
            (None, None) => "p.parent_id IS NULL AND $1 = $1",
            // The root of a scoped account is the place its scope names.
            (None, Some(_)) => "p.path = $3 AND $1 = $1",
        };
        let rows = sqlx::query(&format!(
            "SELECT {PLACE_COLUMNS}, (SELECT COUNT(*) FROM places c WHERE c.parent_id = p.id) AS children \
             FROM places p WHERE {filter} AND p.path LIKE $2 ORDER BY p.code"
        ))
        .bind(parent.unwrap_or(0))
        .bind(place_like)
        .bind(scope.place_path.clone().unwrap_or_default())
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| Ok((place_from_row(r)?, r.try_get::<i64, _>("children")?)))
            .collect()
    }

    /// The chain of places from the top of the tree down to `place` (inclusive).
    pub async fn place_ancestors(&self, place: &Place) -> Result<Vec<Place>> {
        let codes: Vec<&str> = place.path.split('/').filter(|s| !s.is_empty()).collect();
        let mut out = Vec::with_capacity(codes.len());
        let mut conn = self.reader.acquire().await?;
        for code in codes {
            if let Some(p) = place_by_code_in(&mut conn, code).await? {
                out.push(p);
            }
        }
        Ok(out)
    }

    pub async fn search_places(
        &self,
        q: &str,
        scope: &DataScope,
        limit: i64,
    ) -> Result<Vec<Place>> {
        let (_, place_like) = scope_patterns(scope);
        let rows = sqlx::query(&format!(
            "SELECT {PLACE_COLUMNS} FROM places p WHERE p.path LIKE $1 AND (p.name LIKE $2 OR p.code LIKE $3) \
             ORDER BY p.path LIMIT $4"
        ))
        .bind(place_like)
        .bind(format!("%{}%", like_escape(q)))
        .bind(format!("{}%", like_escape(q)))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(place_from_row).collect()
    }

    pub async fn rename_place(
        &self,
        actor: &Actor,
        scope: &DataScope,
        id: i64,
        name: &str,
    ) -> Result<Place> {
        let before = self.place(id, scope).await?;
        let name = lianxin_domain::place::parse_name(name)?;
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                sqlx::query("UPDATE places SET name = $1, updated_at = $2 WHERE id = $3")
                    .bind(&name)
                    .bind(now_text())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let after = Place {
                    name,
                    ..before.clone()
                };
                let id = id.to_string();
                audit::append(
                    tx,
                    &actor,
                    "update",
                    "place",
                    &id,
                    Some(&before),
                    Some(&after),
                )
                .await?;
                Ok(after)
            })
        })
        .await
    }

    // ----- organisations -----

    pub async fn create_org(&self, actor: &Actor, scope: &DataScope, d: &OrgDraft) -> Result<Org> {
        let (actor, scope, d) = (actor.clone(), scope.clone(), d.clone());
        self.write(move |tx| Box::pin(async move { insert_org(tx, &actor, &scope, &d).await }))
            .await
    }

    pub async fn import_orgs(
        &self,
        actor: &Actor,
        drafts: &[OrgDraft],
        mut progress: impl FnMut(usize),
    ) -> Result<usize, ImportError> {
        let scope = DataScope::everything();
        import_rows!(self, drafts, progress, |c, d| insert_org(
            c, actor, &scope, d
        ))
    }

    pub async fn org(&self, id: i64, scope: &DataScope) -> Result<Org> {
        let (org_like, place_like) = scope_patterns(scope);
        let row = sqlx::query(&format!(
            "SELECT {ORG_COLUMNS} FROM orgs o WHERE {ORG_IN_SCOPE} AND o.id = $3"
        ))
        .bind(org_like)
        .bind(place_like)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::not_found("organisation"))?;
        org_from_row(&row)
    }

    pub async fn org_by_code(&self, code: &str) -> Result<Option<Org>> {
        let mut conn = self.reader.acquire().await?;
        org_by_code_in(&mut conn, code).await
    }

    /// Organisations in scope whose name or code matches `q`, optionally of one kind.
    pub async fn search_orgs(
        &self,
        q: &str,
        kind: Option<OrgKind>,
        scope: &DataScope,
        limit: i64,
    ) -> Result<Vec<Org>> {
        let (org_like, place_like) = scope_patterns(scope);
        let rows = sqlx::query(&format!(
            "SELECT {ORG_COLUMNS} FROM orgs o WHERE {ORG_IN_SCOPE} AND (o.name LIKE $3 OR o.code LIKE $4) \
             AND ($5 = '' OR o.kind = $5) ORDER BY o.path LIMIT $6"
        ))
        .bind(org_like)
        .bind(place_like)
        .bind(format!("%{}%", like_escape(q)))
        .bind(format!("{}%", like_escape(q)))
        .bind(kind.map(|k| k.as_str()).unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(org_from_row).collect()
    }

    /// The places an organisation serves.
    pub async fn org_places(&self, org_id: i64) -> Result<Vec<Place>> {
        let rows = sqlx::query(&format!(
            "SELECT {PLACE_COLUMNS} FROM places p JOIN org_places op ON op.place_id = p.id WHERE op.org_id = $1 ORDER BY p.code"
        ))
        .bind(org_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(place_from_row).collect()
    }

    pub async fn org_children(&self, org_id: i64, scope: &DataScope) -> Result<Vec<Org>> {
        let (org_like, place_like) = scope_patterns(scope);
        let rows = sqlx::query(&format!(
            "SELECT {ORG_COLUMNS} FROM orgs o WHERE {ORG_IN_SCOPE} AND o.parent_id = $3 ORDER BY o.code"
        ))
        .bind(org_like)
        .bind(place_like)
        .bind(org_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(org_from_row).collect()
    }

    // ----- people -----

    pub async fn create_person(
        &self,
        actor: &Actor,
        scope: &DataScope,
        d: &PersonDraft,
    ) -> Result<Person> {
        let (actor, scope, d) = (actor.clone(), scope.clone(), d.clone());
        let id = self
            .write(move |tx| Box::pin(async move { insert_person(tx, &actor, &scope, &d).await }))
            .await?;
        self.person(id, &DataScope::everything()).await
    }

    pub async fn import_people(
        &self,
        actor: &Actor,
        drafts: &[PersonDraft],
        mut progress: impl FnMut(usize),
    ) -> Result<usize, ImportError> {
        let scope = DataScope::everything();
        import_rows!(self, drafts, progress, |c, d| insert_person(
            c, actor, &scope, d
        ))
    }

    pub async fn person(&self, id: i64, scope: &DataScope) -> Result<Person> {
        let (org_like, place_like) = scope_patterns(scope);
        let person_in_scope = person_in_scope();
        let row = sqlx::query(&format!(
            "SELECT {PERSON_COLUMNS} FROM people pe JOIN places pl ON pl.id = pe.place_id \
             WHERE {person_in_scope} AND pe.id = $3"
        ))
        .bind(org_like)
        .bind(place_like)
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::not_found("person"))?;
        person_from_row(&row)
    }

    /// People in scope by name (substring) or, when `phone_hash` is given, by phone.
    pub async fn search_people(
        &self,
        q: &str,
        phone_hash: Option<&str>,
        scope: &DataScope,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Person>> {
        let (org_like, place_like) = scope_patterns(scope);
        let person_in_scope = person_in_scope();
        let rows = sqlx::query(&format!(
            "SELECT {PERSON_COLUMNS} FROM people pe JOIN places pl ON pl.id = pe.place_id \
             WHERE {person_in_scope} AND (pe.name LIKE $3 OR pe.phone_hash = $4) ORDER BY pe.id LIMIT $5 OFFSET $6"
        ))
        .bind(org_like)
        .bind(place_like)
        .bind(if phone_hash.is_some() { String::new() /* names are never empty: only the phone decides */ } else { format!("%{}%", like_escape(q)) })
        .bind(phone_hash.unwrap_or(""))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(person_from_row).collect()
    }

    // ----- relations -----

    pub async fn create_relation(
        &self,
        actor: &Actor,
        scope: &DataScope,
        person_id: i64,
        d: &RelationDraft,
    ) -> Result<Relation> {
        let person = self.person(person_id, scope).await?;
        let (org_id, place_id) = match &d.target {
            RelationEnd::Org(code) => {
                // Only organisations the caller can see, reported like missing ones.
                let unknown = || {
                    StoreError::Invalid(lianxin_domain::ValidationError::new(
                        "org_code",
                        "unknown_org",
                        format!("no organisation has the code {code}"),
                    ))
                };
                let org = self.org_by_code(code).await?.ok_or_else(unknown)?;
                self.org(org.id, scope).await.map_err(|_| unknown())?;
                (Some(org.id), None)
            }
            RelationEnd::Place(code) => {
                let mut conn = self.reader.acquire().await?;
                let place = place_in_scope(&mut conn, code.as_str(), scope, "place_code").await?;
                (None, Some(place.id))
            }
        };
        let (actor, d) = (actor.clone(), d.clone());
        let id = self
            .write(move |tx| {
                Box::pin(async move {
        let id: i64 = sqlx::query_scalar(
                        "INSERT INTO relations (person_id, kind, org_id, place_id, post, valid_from, valid_to, region, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                    )
                    .bind(person.id)
                    .bind(d.kind.as_str())
                    .bind(org_id)
                    .bind(place_id)
                    .bind(d.post.clone())
                    .bind(d.validity.from.to_string())
                    .bind(d.validity.to.map(|t| t.to_string()))
                    .bind(&person.region)
                    .bind(now_text())
                    .fetch_one(&mut *tx)
                    .await?;
        audit::append(
            tx,
            &actor,
            "create",
            "relation",
            &id.to_string(),
            None::<&()>,
            Some(&serde_json::json!({
                "person_id": person.id, "kind": d.kind, "org_id": org_id, "place_id": place_id,
                "post": d.post, "valid_from": d.validity.from, "valid_to": d.validity.to,
            })),
        )
        .await?;
                    Ok(id)
                })
            })
            .await?;
        self.relation(id).await
    }

    pub async fn relation(&self, id: i64) -> Result<Relation> {
        let row = sqlx::query(&format!("{RELATION_SELECT} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::not_found("relation"))?;
        relation_from_row(&row)
    }

    /// Ends an open relation on `on` (the first day it no longer holds).
    pub async fn end_relation(
        &self,
        actor: &Actor,
        scope: &DataScope,
        id: i64,
        on: NaiveDate,
    ) -> Result<Relation> {
        let before = self.relation(id).await?;
        // Scope check through the person the relation belongs to.
        self.person(before.person_id, scope)
            .await
            .map_err(|_| StoreError::not_found("relation"))?;
        let validity = Validity {
            from: before.valid_from,
            to: before.valid_to,
        }
        .end_on(on)?;
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let ended = crate::end_open_row(tx, crate::Dated::Relations, id, on).await?;
                if !ended {
                    return Err(StoreError::conflict(
                        "valid_to",
                        "this relation has already ended",
                    ));
                }
                let after = Relation {
                    valid_to: validity.to,
                    ..before.clone()
                };
                audit::append(
                    tx,
                    &actor,
                    "end",
                    "relation",
                    &id.to_string(),
                    Some(&before),
                    Some(&after),
                )
                .await?;
                // An official whose post ends leaves their contact points to be
                // re-matched, in this same transaction.
                if before.kind == RelationKind::HoldsPost {
                    crate::contact::post_ended(
                        tx,
                        &actor,
                        before.person_id,
                        before.post.as_deref().unwrap_or_default(),
                        on,
                    )
                    .await?;
                }
                Ok(after)
            })
        })
        .await
    }

    pub async fn relations_of_person(&self, person_id: i64) -> Result<Vec<Relation>> {
        let rows = sqlx::query(&format!(
            "{RELATION_SELECT} WHERE r.person_id = $1 ORDER BY r.valid_from, r.id"
        ))
        .bind(person_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(relation_from_row).collect()
    }

    /// Who was assigned to `place_id` on `on`: the relations valid that day.
    pub async fn responsible_for(&self, place_id: i64, on: NaiveDate) -> Result<Vec<Relation>> {
        let rows = sqlx::query(&format!(
            "{RELATION_SELECT} WHERE r.place_id = $1 AND r.kind = 'assigned_to' AND r.valid_from <= $2 \
             AND (r.valid_to IS NULL OR r.valid_to > $2) ORDER BY r.valid_from, r.id"
        ))
        .bind(place_id)
        .bind(on.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(relation_from_row).collect()
    }

    /// Everyone related to an organisation on `on` (members and post holders).
    pub async fn org_relations_on(&self, org_id: i64, on: NaiveDate) -> Result<Vec<Relation>> {
        let rows = sqlx::query(&format!(
            "{RELATION_SELECT} WHERE r.org_id = $1 AND r.valid_from <= $2 \
             AND (r.valid_to IS NULL OR r.valid_to > $2) ORDER BY r.kind, r.id"
        ))
        .bind(org_id)
        .bind(on.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(relation_from_row).collect()
    }

    // ----- statistics -----

    pub async fn registry_stats(&self, scope: &DataScope) -> Result<RegistryStats> {
        let (org_like, place_like) = scope_patterns(scope);
        let person_in_scope = person_in_scope();
        let mut stats = RegistryStats::default();
        let rows = sqlx::query(
            "SELECT level, COUNT(*) AS n FROM places p WHERE p.path LIKE $1 GROUP BY level",
        )
        .bind(&place_like)
        .fetch_all(&self.reader)
        .await?;
        let mut by_level: Vec<(String, i64)> = rows
            .iter()
            .map(|r| Ok((r.try_get::<String, _>("level")?, r.try_get::<i64, _>("n")?)))
            .collect::<Result<_>>()?;
        by_level.sort_by_key(|(l, _)| PlaceLevel::parse(l).map(|l| l.depth()).unwrap_or(99));
        stats.places_by_level = by_level;
        stats.orgs =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM orgs o WHERE {ORG_IN_SCOPE}"))
                .bind(&org_like)
                .bind(&place_like)
                .fetch_one(&self.reader)
                .await?;
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n, COUNT(CASE WHEN pe.party_member = 1 THEN 1 END) AS members FROM people pe \
             JOIN places pl ON pl.id = pe.place_id WHERE {person_in_scope}"
        ))
        .bind(&org_like)
        .bind(&place_like)
        .fetch_one(&self.reader)
        .await?;
        stats.people = row.try_get("n")?;
        stats.party_members = row.try_get("members")?;
        let rows = sqlx::query(&format!(
            "SELECT pe.region AS code, c.name AS name, COUNT(*) AS n FROM people pe JOIN places pl ON pl.id = pe.place_id \
             LEFT JOIN places c ON c.code = pe.region WHERE {person_in_scope} GROUP BY pe.region, c.name ORDER BY pe.region"
        ))
        .bind(&org_like)
        .bind(&place_like)
        .fetch_all(&self.reader)
        .await?;
        stats.people_by_city = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("code")?,
                    r.try_get::<Option<String>, _>("name")?.unwrap_or_default(),
                    r.try_get::<i64, _>("n")?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(stats)
    }
}

/// Makes user text safe inside a LIKE pattern.
/// The two engines disagree on LIKE's escape character (PostgreSQL uses `\` by
/// default, SQLite none without an ESCAPE clause), so instead of escaping, the
/// wildcards are removed (a search for "50%" looks for "50"), and so are control
/// characters, which PostgreSQL refuses in text (NUL) and no name holds.
fn like_escape(q: &str) -> String {
    q.trim()
        .chars()
        .filter(|c| !matches!(c, '%' | '_') && !c.is_control())
        .take(100)
        .collect()
}
