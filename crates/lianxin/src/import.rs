//! `lianxin import {places,orgs,people,demands,households} FILE`: CSV or XLSX in, all rows or none.
//!
//! The file is read and every row validated first (with the same draft parsers the
//! API uses), then written in one transaction with a progress bar. The first bad row
//! stops the import with its row number as a spreadsheet shows it (the header is
//! row 1) and the reason; nothing is written. Personal numbers in people files are
//! protected on arrival and never echoed in errors.

use anyhow::{anyhow, bail, Context, Result};
use calamine::{Data, Reader};
use indicatif::{ProgressBar, ProgressStyle};
use lianxin_domain::draft::*;
use lianxin_domain::pii::PiiKey;
use lianxin_store::audit::Actor;
use lianxin_store::Store;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    Places,
    Orgs,
    People,
    /// Demands from another system (a hotline's records): validated and routed like
    /// any other, channel `import` unless the file names one.
    Demands,
    /// Households put in grids: household_code, grid_code, valid_from (双进, M15).
    Households,
    /// Warm stations (CSV, XLSX or GeoJSON): code, name, lat, lon, hours, amenities …
    Stations,
    /// Friendly malls (CSV, XLSX or GeoJSON): code, name, lat, lon …
    Malls,
    /// Malls' directory boards (CSV or XLSX): mall, floor, zone, shop, category.
    Merchants,
    /// Delivery hot spots (CSV, XLSX or GeoJSON): code, name, lat, lon, weight …
    Hotspots,
    /// Friendly compounds with their rider gates (CSV, XLSX or GeoJSON; a row per gate).
    Compounds,
    /// Malls' entrances and temporary parking zones (CSV, XLSX or GeoJSON).
    MallPoints,
    /// District outlines (GeoJSON Polygon/MultiPolygon features with a `code`).
    Outlines,
    /// A road network from an OpenStreetMap extract (.osm.pbf).
    Osm,
    /// Points awards (CSV or XLSX): event_ref, person_id, org_id, rule, at, quality.
    /// Idempotent: a row already recorded with the same content is skipped.
    Awards,
}

impl Kind {
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Places => "places",
            Kind::Orgs => "organisations",
            Kind::People => "people",
            Kind::Demands => "demands",
            Kind::Households => "household assignments",
            Kind::Stations => "stations",
            Kind::Malls => "malls",
            Kind::Merchants => "directory lines",
            Kind::Hotspots => "hot spots",
            Kind::Osm => "road networks",
            Kind::Compounds => "compounds",
            Kind::MallPoints => "entrances and parking zones",
            Kind::Outlines => "outlines",
            Kind::Awards => "awards",
        }
    }

    fn columns(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Kind::Stations
            | Kind::Malls
            | Kind::Merchants
            | Kind::Hotspots
            | Kind::Compounds
            | Kind::MallPoints
            | Kind::Outlines
            | Kind::Osm => (&[], &[]),
            Kind::Places => (&["code", "name", "level"], &["parent_code", "lat", "lon"]),
            Kind::Orgs => (&["code", "name", "kind"], &["parent_code", "serves"]),
            Kind::People => (
                &["name", "place_code"],
                &["phone", "id_card", "party_member", "party_joined"],
            ),
            Kind::Households => (&["household_code", "grid_code", "valid_from"], &[]),
            Kind::Awards => (
                &["event_ref", "person_id", "org_id", "rule", "at"],
                &["quality"],
            ),
            Kind::Demands => (
                &["kind", "category", "description"],
                &[
                    "place_code",
                    "lat",
                    "lon",
                    "address",
                    "title",
                    "channel",
                    "reporter_name",
                    "reporter_phone",
                ],
            ),
        }
    }
}

/// A table read from a file: header names and rows of cell text.
#[derive(Debug)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

pub fn read_table(path: &Path) -> Result<Table> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "csv" => read_csv(path),
        "xlsx" | "xlsm" | "xls" | "ods" => read_sheet(path),
        _ => bail!("{}: use a .csv or .xlsx file", path.display()),
    }
}

fn read_csv(path: &Path) -> Result<Table> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // Excel saves CSV with a UTF-8 byte-order mark; drop it.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|_| anyhow!("row 1: the header is not valid UTF-8 CSV"))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|_| anyhow!("row {}: not valid UTF-8 CSV", i + 2))?;
        rows.push(rec.iter().map(|c| c.to_string()).collect());
    }
    Ok(Table { header, rows })
}

fn read_sheet(path: &Path) -> Result<Table> {
    let mut wb = calamine::open_workbook_auto(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let name = wb
        .sheet_names()
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("the workbook has no sheet"))?;
    let range = wb
        .worksheet_range(&name)
        .with_context(|| format!("reading sheet {name}"))?;
    let mut it = range.rows();
    let header = it
        .next()
        .ok_or_else(|| anyhow!("row 1: the sheet is empty"))?
        .iter()
        .map(|c| cell_text(c).trim().to_ascii_lowercase())
        .collect();
    let rows = it.map(|r| r.iter().map(cell_text).collect()).collect();
    Ok(Table { header, rows })
}

fn cell_text(c: &Data) -> String {
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        // Integral floats (codes typed as numbers) lose their ".0".
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => d
            .as_datetime()
            .map(|t| t.date().to_string())
            .unwrap_or_default(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// Checks the header and returns a lookup from column name to index.
fn columns(kind: Kind, t: &Table) -> Result<HashMap<String, usize>> {
    let (required, optional) = kind.columns();
    let map: HashMap<String, usize> = t
        .header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.clone(), i))
        .collect();
    for r in required {
        if !map.contains_key(*r) {
            bail!(
                "row 1: the header lacks the column {r:?} (required: {})",
                required.join(", ")
            );
        }
    }
    if let Some(unknown) = t.header.iter().find(|h| {
        !h.is_empty() && !required.contains(&h.as_str()) && !optional.contains(&h.as_str())
    }) {
        bail!(
            "row 1: unknown column {unknown:?} (known: {}, {})",
            required.join(", "),
            optional.join(", ")
        );
    }
    Ok(map)
}

/// Parses every row into drafts; the first failure names its row and field.
pub fn parse_rows(kind: Kind, t: &Table, key: &PiiKey) -> Result<Parsed> {
    let cols = columns(kind, t)?;
    let get = |row: &[String], name: &str| -> String {
        cols.get(name)
            .and_then(|i| row.get(*i))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let opt = |s: String| (!s.is_empty()).then_some(s);
    let num = |row: usize, field: &str, s: String| -> Result<Option<f64>> {
        opt(s)
            .map(|v| {
                v.parse::<f64>()
                    .map_err(|_| anyhow!("row {row}: {field} must be a number"))
            })
            .transpose()
    };
    let mut rows = Vec::new();
    let mut drafts = match kind {
        Kind::Places => Drafts::Places(Vec::new()),
        Kind::Orgs => Drafts::Orgs(Vec::new()),
        Kind::People => Drafts::People(Vec::new()),
        Kind::Households => Drafts::Households(Vec::new()),
        Kind::Demands => bail!("demands are read by import_demands"),
        Kind::Awards => bail!("awards are read by import_awards"),
        Kind::Stations
        | Kind::Malls
        | Kind::Merchants
        | Kind::Hotspots
        | Kind::Compounds
        | Kind::MallPoints
        | Kind::Outlines
        | Kind::Osm => bail!("the map's files are read by import_map"),
    };
    for (i, row) in t.rows.iter().enumerate() {
        let n = i + 2;
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        rows.push(n);
        let bad =
            |e: lianxin_domain::ValidationError| anyhow!("row {n}: {}: {}", e.field, e.message);
        match &mut drafts {
            Drafts::Places(v) => v.push(
                PlaceDraft::parse(&RawPlace {
                    code: get(row, "code"),
                    name: get(row, "name"),
                    level: get(row, "level"),
                    parent_code: opt(get(row, "parent_code")),
                    lat: num(n, "lat", get(row, "lat"))?,
                    lon: num(n, "lon", get(row, "lon"))?,
                })
                .map_err(bad)?,
            ),
            Drafts::Orgs(v) => v.push(
                OrgDraft::parse(&RawOrg {
                    code: get(row, "code"),
                    name: get(row, "name"),
                    kind: get(row, "kind"),
                    parent_code: opt(get(row, "parent_code")),
                    serves: get(row, "serves")
                        .split([';', '；', ' '])
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                })
                .map_err(bad)?,
            ),
            Drafts::People(v) => {
                let party = match get(row, "party_member").to_ascii_lowercase().as_str() {
                    "" => None,
                    "1" | "true" | "yes" | "是" => Some(true),
                    "0" | "false" | "no" | "否" => Some(false),
                    _ => bail!("row {n}: party_member must be yes/no (是/否)"),
                };
                v.push(
                    PersonDraft::parse(
                        &RawPerson {
                            name: get(row, "name"),
                            phone: opt(get(row, "phone")),
                            id_card: opt(get(row, "id_card")),
                            party_member: party,
                            party_joined: opt(get(row, "party_joined")),
                            place_code: get(row, "place_code"),
                        },
                        key,
                    )
                    .map_err(bad)?,
                )
            }
            Drafts::Households(v) => {
                let code = |field: &str| -> Result<String> {
                    let c = get(row, field);
                    if c.is_empty() {
                        bail!("row {n}: {field}: required");
                    }
                    Ok(c)
                };
                v.push(lianxin_store::grids::HouseholdRow {
                    household_code: code("household_code")?,
                    grid_code: code("grid_code")?,
                    valid_from: lianxin_domain::relation::parse_day(
                        "valid_from",
                        &get(row, "valid_from"),
                    )
                    .map_err(bad)?,
                })
            }
        }
    }
    Ok(Parsed { drafts, rows })
}

/// The drafts of a file and, for each, its row in the file (blank rows are skipped,
/// so positions and row numbers differ).
pub struct Parsed {
    pub drafts: Drafts,
    pub rows: Vec<usize>,
}

pub enum Drafts {
    Places(Vec<PlaceDraft>),
    Orgs(Vec<OrgDraft>),
    People(Vec<PersonDraft>),
    Households(Vec<lianxin_store::grids::HouseholdRow>),
}

impl Drafts {
    fn len(&self) -> usize {
        match self {
            Drafts::Places(v) => v.len(),
            Drafts::Orgs(v) => v.len(),
            Drafts::People(v) => v.len(),
            Drafts::Households(v) => v.len(),
        }
    }
}

/// `key` protects personal data and is needed only for people files.
pub async fn run(
    store: &Store,
    key: impl FnOnce() -> Result<PiiKey>,
    kind: Kind,
    path: &Path,
) -> Result<usize> {
    let map_kind = match kind {
        Kind::Stations => Some(crate::import_map::MapKind::Stations),
        Kind::Malls => Some(crate::import_map::MapKind::Malls),
        Kind::Merchants => Some(crate::import_map::MapKind::Merchants),
        Kind::Hotspots => Some(crate::import_map::MapKind::Hotspots),
        Kind::Compounds => Some(crate::import_map::MapKind::Compounds),
        Kind::MallPoints => Some(crate::import_map::MapKind::MallPoints),
        Kind::Outlines => {
            return crate::import_map::run_outlines(store, path)
                .await
                .map_err(|e| anyhow!("{e}; nothing was imported"));
        }
        Kind::Osm => {
            let summary = crate::import_map::run_osm(store, path).await?;
            println!("{summary}");
            return Ok(1);
        }
        _ => None,
    };
    if let Some(k) = map_kind {
        return crate::import_map::run(store, k, path)
            .await
            .map_err(|e| anyhow!("{e}; nothing was imported"));
    }
    let table = read_table(path)?;
    if let Kind::Demands = kind {
        return import_demands(store, key()?, &table).await;
    }
    if let Kind::Awards = kind {
        return import_awards(store, &table).await;
    }
    let key = match kind {
        Kind::People | Kind::Demands => key()?,
        // Places and organisations hold no personal data.
        _ => PiiKey::from_master(&[0; 32]),
    };
    let Parsed { drafts, rows } = parse_rows(kind, &table, &key)?;
    let bar = ProgressBar::new(drafts.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("importing {}", kind.noun()));
    let actor = Actor::system("import");
    let tick = |n: usize| bar.set_position(n as u64);
    let result = match &drafts {
        Drafts::Places(v) => store.import_places(&actor, v, tick).await,
        Drafts::Orgs(v) => store.import_orgs(&actor, v, tick).await,
        Drafts::People(v) => store.import_people(&actor, v, tick).await,
        Drafts::Households(v) => store.import_grid_households(&actor, v, tick).await,
    };
    bar.finish_and_clear();
    // The store numbers rows by position (header = 1); map back to the file's rows.
    result.map_err(|e| {
        let row = e
            .row
            .checked_sub(2)
            .and_then(|i| rows.get(i))
            .copied()
            .unwrap_or(e.row);
        anyhow!("row {row}: {}; nothing was imported", e.error)
    })
}

/// Points awards: every row parsed and checked (the person and organisation exist, a
/// rule is in force at the event's time) before one all-or-nothing import; the
/// first problem names its row. Rows already recorded with the same content are
/// counted as replayed, so a file can be imported again safely.
async fn import_awards(store: &Store, table: &Table) -> Result<usize> {
    use lianxin_domain::points::{rule_in_force, validate_event_ref, Quality};
    let cols = columns(Kind::Awards, table)?;
    let get = |row: &[String], name: &str| -> String {
        cols.get(name)
            .and_then(|i| row.get(*i))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let rules = store.points_rules().await?;
    let mut requests = Vec::new();
    let mut rows = Vec::new();
    let now = chrono::Utc::now();
    for (i, row) in table.rows.iter().enumerate() {
        let n = i + 2;
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let bad =
            |e: lianxin_domain::ValidationError| anyhow!("row {n}: {}: {}", e.field, e.message);
        let id = |field: &str| -> Result<i64> {
            get(row, field)
                .parse()
                .map_err(|_| anyhow!("row {n}: {field} must be a whole number"))
        };
        let event_ref = get(row, "event_ref");
        validate_event_ref(&event_ref).map_err(bad)?;
        let quality = match get(row, "quality").as_str() {
            "" => Quality::Basic,
            q => Quality::parse(q).map_err(bad)?,
        };
        // Required: a default of "now" would make importing the same file twice a
        // conflict instead of a replay.
        let at = match get(row, "at").as_str() {
            "" => bail!("row {n}: at: required (when it happened, e.g. 2026-03-01T09:00:00+08:00)"),
            t => chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    anyhow!("row {n}: at must be an RFC 3339 time, e.g. 2026-03-01T09:00:00+08:00")
                })?
                .with_timezone(&chrono::Utc),
        };
        if at > now {
            bail!("row {n}: at: an award cannot be for an event in the future");
        }
        let rule = get(row, "rule");
        let versions: Vec<_> = rules.iter().filter(|r| r.code == rule).cloned().collect();
        if rule_in_force(&versions, at).is_none() {
            bail!("row {n}: rule: no rule {rule:?} is in force at {at}");
        }
        rows.push(n);
        requests.push(lianxin_store::points::AwardRequest {
            event_ref,
            person_id: id("person_id")?,
            org_id: id("org_id")?,
            rule_code: rule,
            quality,
            at,
        });
    }
    let people: Vec<i64> = requests.iter().map(|r| r.person_id).collect();
    let orgs: Vec<i64> = requests.iter().map(|r| r.org_id).collect();
    let (known_people, known_orgs) = store
        .points_existing(&dedup(&people), &dedup(&orgs))
        .await?;
    let (known_people, known_orgs): (
        std::collections::HashSet<i64>,
        std::collections::HashSet<i64>,
    ) = (
        known_people.into_iter().collect(),
        known_orgs.into_iter().collect(),
    );
    for (r, n) in requests.iter().zip(&rows) {
        if !known_people.contains(&r.person_id) {
            bail!(
                "row {n}: person_id: no person {}; nothing was imported",
                r.person_id
            );
        }
        if !known_orgs.contains(&r.org_id) {
            bail!(
                "row {n}: org_id: no organisation {}; nothing was imported",
                r.org_id
            );
        }
    }
    let total = requests.len();
    let summary = store
        .points_import_awards(&Actor::system("import"), requests)
        .await
        .map_err(|e| anyhow!("{e}; nothing was imported"))?;
    println!(
        "{} new awards ({} points), {} already recorded",
        summary.awarded, summary.points, summary.replayed
    );
    Ok(total)
}

fn dedup(ids: &[i64]) -> Vec<i64> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// Demands: every row validated and routed by the demand desk (the same rules as the
/// API), then all stored in one transaction.
async fn import_demands(store: &Store, key: PiiKey, table: &Table) -> Result<usize> {
    let (required, optional) = Kind::Demands.columns();
    for col in required {
        if !table.header.iter().any(|h| h == col) {
            bail!("row 1: the header has no column {col:?} (required: {required:?}, optional: {optional:?})");
        }
    }
    if let Some(unknown) = table.header.iter().find(|h| {
        !h.is_empty() && !required.contains(&h.as_str()) && !optional.contains(&h.as_str())
    }) {
        bail!("row 1: unknown column {unknown:?} (required: {required:?}, optional: {optional:?})");
    }
    let col = |row: &[String], name: &str| -> Option<String> {
        table
            .header
            .iter()
            .position(|h| h == name)
            .and_then(|i| row.get(i))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let desk = lianxin_server::desk::DemandDesk::new(store.clone(), key);
    desk.reload().await?;
    let by = lianxin_server::desk::Submitter {
        actor: "system:import".into(),
        name: "导入".into(),
        account_id: None,
    };
    let mut demands = Vec::with_capacity(table.rows.len());
    let mut file_rows = Vec::with_capacity(table.rows.len());
    for (i, row) in table.rows.iter().enumerate() {
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        file_rows.push(i + 2);
        let number = |field: &str| -> Result<Option<f64>> {
            col(row, field)
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|_| anyhow!("row {}: {field}: not a number", i + 2))
                })
                .transpose()
        };
        let intake = lianxin_server::desk::Intake {
            kind: col(row, "kind").unwrap_or_default(),
            category: col(row, "category").unwrap_or_default(),
            channel: col(row, "channel").unwrap_or_else(|| "import".into()),
            title: col(row, "title"),
            description: col(row, "description").unwrap_or_default(),
            place_code: col(row, "place_code"),
            lat: number("lat")?,
            lon: number("lon")?,
            address: col(row, "address"),
            reporter_name: col(row, "reporter_name"),
            reporter_phone: col(row, "reporter_phone"),
            ..Default::default()
        };
        let (d, _) = desk.prepare(intake, &by).await.map_err(|e| match e {
            // Never echo the value: a phone number may be in it.
            lianxin_store::StoreError::Invalid(v) => {
                anyhow!("row {}: {}: {}", i + 2, v.field, v.message)
            }
            other => anyhow!("row {}: {other}", i + 2),
        })?;
        demands.push(d);
    }
    store.import_demands(&demands).await.map_err(|e| {
        // The store numbers rows by position (header = 1); map back to the file's rows.
        let row = e
            .row
            .checked_sub(2)
            .and_then(|i| file_rows.get(i))
            .copied()
            .unwrap_or(e.row);
        anyhow!("row {row}: {}; nothing was imported", e.error)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(header: &[&str], rows: &[&[&str]]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|s| s.to_string()).collect())
                .collect(),
        }
    }

    #[test]
    fn first_bad_row_is_named() {
        let key = PiiKey::from_master(&[1; 32]);
        let t = table(
            &["code", "name", "level", "parent_code"],
            &[
                &["150000", "内蒙古", "region", ""],
                &["150200", "包头", "city", "150000"],
                &["x", "bad", "city", "150000"],
            ],
        );
        let err = parse_rows(Kind::Places, &t, &key)
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("row 4: code:"), "{err}");
    }

    #[test]
    fn headers_are_checked() {
        let key = PiiKey::from_master(&[1; 32]);
        let t = table(&["code", "name"], &[]);
        assert!(parse_rows(Kind::Places, &t, &key)
            .err()
            .unwrap()
            .to_string()
            .contains("level"));
        let t = table(&["code", "name", "level", "colour"], &[]);
        assert!(parse_rows(Kind::Places, &t, &key)
            .err()
            .unwrap()
            .to_string()
            .contains("colour"));
    }

    #[test]
    fn people_errors_never_echo_numbers() {
        let key = PiiKey::from_master(&[1; 32]);
        let t = table(
            &["name", "phone", "place_code"],
            &[&["张三", "1381234567", "150207"]],
        );
        let err = parse_rows(Kind::People, &t, &key)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("row 2: phone") && !err.contains("1381234567"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn demands_are_routed_and_imported_whole_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("lianxin-import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&format!("sqlite://{}/t.db", dir.display()))
            .await
            .unwrap();
        let actor = Actor::system("test");
        let all = lianxin_domain::role::DataScope::everything();
        for (code, level, parent) in [
            ("150000", "region", None),
            ("150200", "city", Some("150000")),
        ] {
            let d = PlaceDraft::parse(&RawPlace {
                code: code.into(),
                name: code.into(),
                level: level.into(),
                parent_code: parent.map(Into::into),
                ..Default::default()
            })
            .unwrap();
            store.create_place(&actor, &all, &d).await.unwrap();
        }
        let org = OrgDraft::parse(&RawOrg {
            code: "U".into(),
            name: "单位".into(),
            kind: "other_unit".into(),
            parent_code: None,
            serves: vec![],
        })
        .unwrap();
        let org = store.create_org(&actor, &all, &org).await.unwrap();
        store
            .upsert_category(
                &actor,
                &lianxin_store::demands::Category {
                    code: "other".into(),
                    name_zh: "其他".into(),
                    name_en: "Other".into(),
                    description: String::new(),
                    default_urgency: lianxin_domain::demand::Urgency::Ordinary,
                    attributes: serde_json::json!([]),
                    keywords: String::new(),
                    sort: 0,
                    active: true,
                },
            )
            .await
            .unwrap();
        let root = store.place_by_code("150000").await.unwrap().unwrap();
        store
            .create_routing_rule(&actor, None, root.id, org.id)
            .await
            .unwrap();
        let key = || Ok(PiiKey::from_master(&[3; 32]));
        let good = dir.join("good.csv");
        std::fs::write(
            &good,
            "kind,category,description,place_code,reporter_phone\n\
             help,other,路灯坏了,150200,13812345678\n\
             ,,,,\n\
             suggestion,other,建议加装座椅,150000,\n",
        )
        .unwrap();
        assert_eq!(run(&store, key, Kind::Demands, &good).await.unwrap(), 2);
        // A bad row stops everything, named by its row in the file; the phone number
        // in the file is never echoed.
        let bad = dir.join("bad.csv");
        std::fs::write(
            &bad,
            "kind,category,description,place_code,reporter_phone\n\
             help,other,一,150200,13812345678\n\
             help,nope,二,150200,13812345678\n",
        )
        .unwrap();
        let err = run(&store, key, Kind::Demands, &bad)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("row 3: category"), "{err}");
        assert!(!err.contains("13812345678"));
        let all_demands = store
            .search_demands(&lianxin_store::demands::DemandQuery {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all_demands.len(), 2, "nothing of the bad file was stored");
        assert!(all_demands
            .iter()
            .all(|d| d.channel == lianxin_domain::intake::Channel::Import));
        std::fs::remove_dir_all(&dir).ok();
    }
}
