//! `bench governance`: the district dashboard (officials × points × visits × demands)
//! over a province-sized world, against the same view computed by counting the
//! visits table.
//!
//! The world is written straight into a fresh SQLite file with multi-row INSERTs on
//! a loading connection of its own (`synchronous=OFF`, foreign-key checks off,
//! secondary indexes dropped during the load and rebuilt from their own DDL after).
//! That bypasses the store's writer, so **the synthetic world has no audit trail**,
//! its demands add nothing to the rate cells (`counted_bits = 0`, which is what they
//! then say they added) and each demand has only its `submit` event. None of that
//! is read by the view. What the view does read is kept as the store keeps it: the
//! visit tallies are summed in Rust from the very visits inserted, and demands
//! collected on a point visit carry the visit and its point.
//!
//! Only the loading is done that way: the timed calls are `Store::district_view` and
//! `Store::district_view_by_scan` on a `Store` opened as the server opens one, and
//! the page itself, `GET /governance?year=…`, from the real server (`AppState::new`,
//! `lianxin_server::router`, axum on 127.0.0.1) on the same database, requested by an
//! administrator scoped to the district who logged in through the login form.

use super::{median, Row};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use lianxin_domain::calendar::local_day;
use lianxin_domain::pii::PiiKey;
use lianxin_domain::role::{DataScope, Role};
use lianxin_server::{router, AppState, Settings};
use lianxin_store::accounts::NewAccount;
use lianxin_store::audit::Actor;
use lianxin_store::contact::DistrictView;
use lianxin_store::testing::TempDir;
use lianxin_store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;
use tokio::task::JoinHandle;

/// The province's leagues and cities (GB/T 2260 codes of Inner Mongolia).
const CITIES: [(&str, &str); 12] = [
    ("150100", "呼和浩特市"),
    ("150200", "包头市"),
    ("150300", "乌海市"),
    ("150400", "赤峰市"),
    ("150500", "通辽市"),
    ("150600", "鄂尔多斯市"),
    ("150700", "呼伦贝尔市"),
    ("150800", "巴彦淖尔市"),
    ("150900", "乌兰察布市"),
    ("152200", "兴安盟"),
    ("152500", "锡林郭勒盟"),
    ("152900", "阿拉善盟"),
];

/// Every district has the same shape; only its households, members and visits vary.
const TOWNS: usize = 5;
const COMMUNITIES_PER_TOWN: usize = 8;
const GRIDS_PER_COMMUNITY: usize = 2;
const HOUSEHOLDS_PER_BUILDING: usize = 24;
/// The district's leading officials, each linked to [`POINTS_PER_OFFICIAL`] points
/// (the rules' default limit), which leaves some community points unlinked.
const POSTS: [&str; 17] = [
    "区委书记",
    "区长",
    "区委副书记",
    "常务副区长",
    "组织部部长",
    "宣传部部长",
    "统战部部长",
    "政法委书记",
    "纪委书记",
    "副区长",
    "副区长",
    "副区长",
    "人大常委会主任",
    "政协主席",
    "人武部部长",
    "区委办主任",
    "政府办主任",
];
const POINTS_PER_OFFICIAL: usize = 2;

/// One visit in ten is an official's visit to a contact point (座谈, 调研); the rest
/// are party members' household visits.
const POINT_VISIT_SHARE: f64 = 0.1;
/// Of point visits, the share made by the official linked to the point; the rest by
/// another official of the district (who then shows without a link).
const LINKED_SHARE: f64 = 0.95;
/// A demand is collected on one point visit in five and one household visit in 30:
/// about one demand per 20 visits overall.
const POINT_DEMAND_ODDS: f64 = 1.0 / 5.0;
const HOUSEHOLD_DEMAND_ODDS: f64 = 1.0 / 30.0;
/// The share of demands answered so far, and of those, closed.
const ANSWERED_SHARE: f64 = 0.7;
const CLOSED_SHARE: f64 = 0.6;
const REJECTED_SHARE: f64 = 0.03;

/// The one category every synthetic demand is filed under.
const CATEGORY: &str = "community_affairs";
/// Links, posts and grid memberships all started before the visits do.
const SINCE: &str = "2021-06-01";

/// Rows per INSERT statement, and rows per loading transaction.
const ROWS_PER_STATEMENT: usize = 500;
const ROWS_PER_COMMIT: usize = 250_000;
/// Tables whose secondary indexes are dropped for the load and rebuilt after it.
const BULK_TABLES: [&str; 6] = [
    "places",
    "people",
    "grid_households",
    "visits",
    "demands",
    "demand_events",
];

/// How big the world is and how often each view is timed.
pub struct Scale {
    pub name: &'static str,
    /// How many of [`CITIES`].
    pub cities: usize,
    pub districts_per_city: usize,
    pub party_members: usize,
    pub households: usize,
    pub visits: usize,
    pub view_runs: usize,
    pub scan_runs: usize,
    pub province_runs: usize,
    pub province_scan_runs: usize,
}

impl Scale {
    pub const FULL: Scale = Scale {
        name: "full",
        cities: 12,
        districts_per_city: 8,
        party_members: 100_000,
        households: 1_000_000,
        visits: 10_000_000,
        view_runs: 9,
        scan_runs: 3,
        province_runs: 5,
        province_scan_runs: 1,
    };
    /// About 1/20 of the full world, with one district per city.
    pub const QUICK: Scale = Scale {
        name: "quick",
        cities: 12,
        districts_per_city: 1,
        party_members: 5_000,
        households: 50_000,
        visits: 500_000,
        view_runs: 7,
        scan_runs: 3,
        province_runs: 5,
        province_scan_runs: 3,
    };
}

/// The benchmark: builds the world in `dir`, times the views and returns the line
/// that describes the world with the rows.
pub async fn run(dir: &TempDir, scale: &Scale) -> Result<(String, Vec<Row>)> {
    let db = dir.0.join("governance.db");
    let url = format!("sqlite://{}", db.display());
    // Opening through the store runs the migrations; the load then has the file alone.
    Store::open(&url).await?.close().await;
    let now = Utc::now();
    let today = local_day(now);
    let started = Instant::now();
    let world = generate(&db, scale, now).await?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("bench: world generated in {seconds:.1} s");
    let facts = world.facts(seconds);

    let store = Store::open(&url).await?;
    let year = today.year();
    let biggest = world.biggest(year).context("the world has no district")?;
    let district = DataScope {
        place_path: Some(biggest.path.clone()),
        org_path: None,
    };
    eprintln!(
        "bench: starting the server; logging in as an administrator of {} {}",
        biggest.code, biggest.name
    );
    let mut page = Page::start(&store, &biggest.code).await?;
    let path = format!("/governance?year={year}");
    page.probe(&path).await?;
    eprintln!(
        "bench: timing the district view of {} {} and GET {path}, alternately ({} runs)",
        biggest.code, biggest.name, scale.view_runs
    );
    let timed = time_view_and_page(
        &store,
        &mut page,
        &path,
        &district,
        year,
        today,
        scale.view_runs,
    )
    .await;
    page.stop();
    let (view_ms, view, page_ms, page_bytes) = timed?;
    eprintln!("bench:   timing its full scan ({} runs)", scale.scan_runs);
    let (scan_ms, scan) = time_view(&store, &district, year, today, scale.scan_runs, true).await?;
    agree("district", &view, &scan)?;
    let all = DataScope::everything();
    eprintln!(
        "bench: timing the province view ({} runs)",
        scale.province_runs
    );
    let (province_ms, province) =
        time_view(&store, &all, year, today, scale.province_runs, false).await?;
    eprintln!(
        "bench:   timing its full scan ({} runs)",
        scale.province_scan_runs
    );
    let (province_scan_ms, province_scan) =
        time_view(&store, &all, year, today, scale.province_scan_runs, true).await?;
    agree("province", &province, &province_scan)?;
    store.close().await;

    let (view_ms, scan_ms, page_ms) = (median(&view_ms), median(&scan_ms), median(&page_ms));
    let (province_ms, province_scan_ms) = (median(&province_ms), median(&province_scan_ms));
    let t = &view.totals;
    let rows = vec![
        Row::new(
            format!(
                "district view {year}, {} ({} officials, {} points)",
                biggest.code,
                view.officials.len(),
                view.points.len()
            ),
            view_ms,
            "ms",
        )
        .against("full scan", scan_ms)
        .target("< 200 ms", view_ms < 200.0),
        Row::new(
            format!(
                "district page GET {path} ({} KB of HTML)",
                page_bytes.div_ceil(1024)
            ),
            page_ms,
            "ms",
        )
        .against("district view (store)", view_ms)
        .target("< 200 ms", page_ms < 200.0),
        Row::new(
            format!(
                "province view {year} ({} districts, {} points)",
                world.districts.len(),
                province.points.len()
            ),
            province_ms,
            "ms",
        )
        .against("full scan", province_scan_ms),
        Row::new(
            "district visits counted: view vs scan",
            t.visits as f64,
            "visits",
        )
        .against("full scan", scan.totals.visits as f64)
        .target("equal", t.visits == scan.totals.visits),
        Row::new("district demands at points", t.demands as f64, "demands"),
        Row::new("district demands answered", t.answered as f64, "demands"),
        Row::new(
            "province visits counted: view vs scan",
            province.totals.visits as f64,
            "visits",
        )
        .against("full scan", province_scan.totals.visits as f64)
        .target(
            "equal",
            province.totals.visits == province_scan.totals.visits,
        ),
    ];
    Ok((facts, rows))
}

/// Times `runs` computations of the view (by the tallies, or by the scan when
/// `scan`), in milliseconds, and returns the last view.
async fn time_view(
    store: &Store,
    scope: &DataScope,
    year: i32,
    today: NaiveDate,
    runs: usize,
    scan: bool,
) -> Result<(Vec<f64>, DistrictView)> {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let view = if scan {
            store.district_view_by_scan(scope, year, today).await
        } else {
            store.district_view(scope, year, today).await
        }
        .context(if scan {
            "the full scan"
        } else {
            "the district view"
        })?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        last = Some(view);
    }
    let each: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
    eprintln!("bench:   {} ms", each.join(", "));
    Ok((times, last.context("no run")?))
}

/// Times `runs` district views and as many requests of the page that shows it, one
/// after the other, so that a slow patch of a busy machine lands on both; returns
/// both lists of times (ms), the last view and the size of the last page. Every page
/// must be a 200 with the headline; the last one must show the last view's totals.
async fn time_view_and_page(
    store: &Store,
    page: &mut Page,
    path: &str,
    scope: &DataScope,
    year: i32,
    today: NaiveDate,
    runs: usize,
) -> Result<(Vec<f64>, DistrictView, Vec<f64>, usize)> {
    let (mut view_ms, mut page_ms) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let mut last = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let view = store
            .district_view(scope, year, today)
            .await
            .context("the district view")?;
        view_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        let body = page.get_page(path).await?;
        page_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        last = Some((view, body));
    }
    let show = |times: &[f64]| {
        let each: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
        each.join(", ")
    };
    eprintln!("bench:   view {} ms", show(&view_ms));
    eprintln!("bench:   page {} ms", show(&page_ms));
    let (view, body) = last.context("no run")?;
    let shown = headline_numbers(&body);
    let expected = vec![
        view.officials.len() as u64,
        u64::try_from(view.totals.visits)?,
        u64::try_from(view.totals.demands)?,
    ];
    if shown != expected {
        bail!(
            "the page's headline shows {shown:?} (officials, visits, demands), the store's view \
             {expected:?}"
        );
    }
    Ok((view_ms, view, page_ms, body.len()))
}

/// The sanity check: the view from the tallies must be the view from the scan.
fn agree(what: &str, view: &DistrictView, scan: &DistrictView) -> Result<()> {
    let (a, b) = (&view.totals, &scan.totals);
    if (a.visits, a.demands, a.answered) != (b.visits, b.demands, b.answered) {
        bail!(
            "the {what} view and its full scan disagree: visits {} vs {}, demands {} vs {}, \
             answered {} vs {}",
            a.visits,
            b.visits,
            a.demands,
            b.demands,
            a.answered,
            b.answered
        );
    }
    if view != scan {
        bail!("the {what} view and its full scan agree on totals but not line by line");
    }
    Ok(())
}

// ----- the page -----

/// The administrator the page is requested as.
const USERNAME: &str = "bench.admin";
const PASSWORD: &str = "bench-password-1";

/// The real server on 127.0.0.1 and one keep-alive connection to it, logged in.
struct Page {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    /// `lx_session=…` once logged in.
    cookie: Option<HeaderValue>,
    task: JoinHandle<()>,
}

impl Page {
    /// Creates an administrator scoped to the place `code`, serves the application
    /// on a free port and logs in through the login form, as a browser does.
    async fn start(store: &Store, code: &str) -> Result<Page> {
        let hash = lianxin_server::auth::hash_password(PASSWORD)
            .map_err(|e| anyhow::anyhow!("hashing the password: {}", e.message))?;
        store
            .create_account(
                &Actor::system("bench"),
                &NewAccount {
                    username: USERNAME.into(),
                    display_name: "压测管理员".into(),
                    password_hash: hash,
                    role: Role::Admin,
                    scope_place_code: Some(code.into()),
                    scope_org_code: None,
                    person_id: None,
                },
            )
            .await?;
        let state = AppState::new(
            store.clone(),
            PiiKey::from_master(&[7; 32]),
            Settings::default(),
        )
        .await
        .context("starting the server (AppState::new)")?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("bench: the server stopped: {e}");
            }
        });
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // A broken connection shows as a failed request.
            let _ = conn.await;
        });
        let mut page = Page {
            sender,
            host: HeaderValue::from_str(&addr.to_string())?,
            cookie: None,
            task,
        };
        page.login().await?;
        Ok(page)
    }

    /// GET /login for the form's CSRF token and the pre-login cookie it is bound to,
    /// then POST /login: a 303 that sets the session cookie.
    async fn login(&mut self) -> Result<()> {
        let (status, headers, body) = self.send(Method::GET, "/login", None, None).await?;
        if status != StatusCode::OK {
            bail!("GET /login answered {status}");
        }
        let html = String::from_utf8_lossy(&body);
        let csrf = html
            .split_once("name=\"csrf\" value=\"")
            .and_then(|(_, rest)| rest.split('"').next())
            .context("the login form has no csrf field")?;
        let pre = set_cookie(&headers, lianxin_server::auth::PRELOGIN_COOKIE)
            .context("GET /login set no pre-login cookie")?;
        let form = format!(
            "csrf={}&username={}&password={}",
            form_encode(csrf),
            form_encode(USERNAME),
            form_encode(PASSWORD)
        );
        let (status, headers, body) = self
            .send(Method::POST, "/login", Some(&pre), Some(form))
            .await?;
        let session = set_cookie(&headers, lianxin_server::auth::SESSION_COOKIE)
            .filter(|c| !c.ends_with('='));
        match session {
            Some(c) if status == StatusCode::SEE_OTHER => {
                self.cookie = Some(HeaderValue::from_str(&c)?);
                Ok(())
            }
            _ => bail!(
                "POST /login answered {status} without a session: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ),
        }
    }

    /// One request on the connection; the whole body is read.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        form: Option<String>,
    ) -> Result<(StatusCode, HeaderMap, Bytes)> {
        self.sender.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        } else if let Some(c) = &self.cookie {
            req = req.header(COOKIE, c.clone());
        }
        if form.is_some() {
            req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let req = req.body(Full::new(Bytes::from(form.unwrap_or_default())))?;
        let res = self
            .sender
            .send_request(req)
            .await
            .with_context(|| format!("requesting {path}"))?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((parts.status, parts.headers, body))
    }

    /// The page, which must be a 200 with the headline.
    async fn get_page(&mut self, path: &str) -> Result<Bytes> {
        let (status, _, body) = self.send(Method::GET, path, None, None).await?;
        if status != StatusCode::OK || !contains(&body, b"id=\"headline\"") {
            bail!(
                "GET {path} answered {status} without the headline: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
        Ok(body)
    }

    /// One request outside the measurement: the benchmark stops before timing a page
    /// that does not work, and the template is rendered once.
    async fn probe(&mut self, path: &str) -> Result<()> {
        self.get_page(path).await.map(|_| ())
    }

    fn stop(self) {
        self.task.abort();
    }
}

/// `name=value` of the cookie `name` among the response's `Set-Cookie` headers.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|kv| kv.split_once('=').is_some_and(|(k, _)| k.trim() == name))
        .map(|kv| kv.trim().to_string())
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The numbers in the page's headline paragraph, in order.
fn headline_numbers(html: &[u8]) -> Vec<u64> {
    let html = String::from_utf8_lossy(html);
    let Some((_, rest)) = html.split_once("id=\"headline\"") else {
        return Vec::new();
    };
    let text = rest
        .split_once('>')
        .map_or("", |(_, t)| t.split("</").next().unwrap_or(""));
    text.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

// ----- the world -----

struct Point {
    id: i64,
    place_id: i64,
    path: String,
    region: String,
    official: Option<i64>,
}

struct District {
    code: String,
    name: String,
    path: String,
    region: String,
    org_id: i64,
    weight: usize,
    officials: Vec<i64>,
    /// Party members other than the officials: they make the household visits.
    members: Vec<i64>,
    households: Vec<(i64, String)>,
    points: Vec<Point>,
    /// Point visits per year, as the view counts them.
    point_visits: HashMap<i32, i64>,
}

#[derive(Default)]
struct Counts {
    places: usize,
    points: usize,
    officials: usize,
    members: usize,
    households: usize,
    visits: usize,
    point_visits: usize,
    demands: usize,
    point_demands: usize,
    tallies: usize,
}

struct World {
    districts: Vec<District>,
    counts: Counts,
    db_bytes: u64,
}

impl World {
    /// The district with the most point visits in `year`.
    fn biggest(&self, year: i32) -> Option<&District> {
        self.districts
            .iter()
            .max_by_key(|d| d.point_visits.get(&year).copied().unwrap_or(0))
    }

    fn facts(&self, seconds: f64) -> String {
        let c = &self.counts;
        format!(
            "world: {} leagues/cities, {} districts, {} places, {} contact points, {} officials, \
             {} party members, {} households, {} visits ({} at points, {} tallies), {} demands \
             ({} at points); {:.0} MB, generated in {seconds:.0} s",
            self.districts
                .iter()
                .map(|d| &d.region)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            self.districts.len(),
            c.places,
            c.points,
            c.officials,
            c.members,
            c.households,
            c.visits,
            c.point_visits,
            c.tallies,
            c.demands,
            c.point_demands,
            self.db_bytes as f64 / 1e6,
        )
    }
}

/// One value of a row being loaded.
enum V {
    I(i64),
    T(String),
    S(&'static str),
    N,
}

/// Rows for one table, sent [`ROWS_PER_STATEMENT`] to a statement.
struct Batch {
    table: &'static str,
    columns: &'static [&'static str],
    values: Vec<V>,
    full_sql: String,
}

impl Batch {
    fn new(table: &'static str, columns: &'static [&'static str]) -> Batch {
        Batch {
            table,
            columns,
            values: Vec::with_capacity(ROWS_PER_STATEMENT * columns.len()),
            full_sql: insert_sql(table, columns, ROWS_PER_STATEMENT),
        }
    }

    fn rows(&self) -> usize {
        self.values.len() / self.columns.len()
    }

    /// Adds a row; the loader sends the batch when it is full.
    fn push(&mut self, row: impl IntoIterator<Item = V>) {
        let before = self.values.len();
        self.values.extend(row);
        debug_assert_eq!(self.values.len() - before, self.columns.len());
    }

    fn full(&self) -> bool {
        self.rows() >= ROWS_PER_STATEMENT
    }
}

/// The statement for `rows` rows. Its parameters are anonymous (`?`): for each
/// numbered one (`$7`) sqlx asks SQLite its name, and SQLite finds the name by walking
/// the list of names, which makes binding 10,000 numbered parameters take quadratic
/// time (90% of the load in a profile).
fn insert_sql(table: &str, columns: &[&str], rows: usize) -> String {
    let tuple = format!("({})", vec!["?"; columns.len()].join(", "));
    format!(
        "INSERT INTO {table} ({}) VALUES {}",
        columns.join(", "),
        vec![tuple; rows].join(", ")
    )
}

/// The loading connection, committing every [`ROWS_PER_COMMIT`] rows.
struct Loader {
    conn: SqliteConnection,
    uncommitted: usize,
}

impl Loader {
    async fn open(db: &Path) -> Result<Loader> {
        let mut conn = SqliteConnectOptions::new()
            .filename(db)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Off)
            .foreign_keys(false)
            .pragma("cache_size", "-262144")
            .pragma("temp_store", "MEMORY")
            .disable_statement_logging()
            .connect()
            .await?;
        sqlx::query("BEGIN").execute(&mut conn).await?;
        Ok(Loader {
            conn,
            uncommitted: 0,
        })
    }

    /// Sends the batch if it is full.
    async fn maybe(&mut self, batch: &mut Batch) -> Result<()> {
        if batch.full() {
            self.send(batch).await?;
        }
        Ok(())
    }

    /// Sends whatever the batch holds.
    async fn send(&mut self, batch: &mut Batch) -> Result<()> {
        let rows = batch.rows();
        if rows == 0 {
            return Ok(());
        }
        let partial;
        let sql = if rows == ROWS_PER_STATEMENT {
            &batch.full_sql
        } else {
            partial = insert_sql(batch.table, batch.columns, rows);
            &partial
        };
        let mut q = sqlx::query(sql);
        for v in batch.values.drain(..) {
            q = match v {
                V::I(i) => q.bind(i),
                V::T(s) => q.bind(s),
                V::S(s) => q.bind(s),
                V::N => q.bind(None::<i64>),
            };
        }
        q.execute(&mut self.conn)
            .await
            .with_context(|| format!("loading {}", batch.table))?;
        self.uncommitted += rows;
        if self.uncommitted >= ROWS_PER_COMMIT {
            self.commit().await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<()> {
        sqlx::query("COMMIT").execute(&mut self.conn).await?;
        sqlx::query("BEGIN").execute(&mut self.conn).await?;
        self.uncommitted = 0;
        Ok(())
    }

    async fn execute(&mut self, sql: &str) -> Result<()> {
        sqlx::query(sql)
            .execute(&mut self.conn)
            .await
            .with_context(|| sql.to_string())?;
        Ok(())
    }
}

const PLACE_COLUMNS: &[&str] = &[
    "id",
    "code",
    "name",
    "level",
    "parent_id",
    "path",
    "region",
    "created_at",
    "updated_at",
];
const PEOPLE_COLUMNS: &[&str] = &[
    "id",
    "name",
    "party_member",
    "party_joined",
    "place_id",
    "region",
    "created_at",
    "updated_at",
];
const VISIT_COLUMNS: &[&str] = &[
    "id",
    "point_id",
    "person_id",
    "kind",
    "visited_on",
    "place_id",
    "place_path",
    "participants",
    "notes",
    "follow_up",
    "follow_up_person_id",
    "follow_up_done_at",
    "region",
    "created_by",
    "created_at",
];
const DEMAND_COLUMNS: &[&str] = &[
    "id",
    "region",
    "kind",
    "category",
    "urgency",
    "channel",
    "title",
    "description",
    "place_id",
    "place_path",
    "token_hash",
    "status",
    "owner_id",
    "deadline",
    "response_deadline",
    "handling_deadline",
    "first_response_at",
    "step_at",
    "answer",
    "visit_id",
    "counted_unit",
    "counted_bits",
    "received_at",
    "updated_at",
    "closed_at",
    "point_id",
    "answered_at",
];
const EVENT_COLUMNS: &[&str] = &[
    "demand_id",
    "region",
    "at",
    "actor",
    "actor_name",
    "action",
    "to_status",
    "unit_id",
    "note",
];

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "包",
];
const GIVEN: [&str; 20] = [
    "建国",
    "秀英",
    "志强",
    "海燕",
    "建华",
    "丽娟",
    "国庆",
    "春梅",
    "巴特尔",
    "其木格",
    "乌云",
    "斯琴",
    "文博",
    "晓东",
    "桂兰",
    "永刚",
    "敖登",
    "朝鲁",
    "红梅",
    "立新",
];
const CONCERNS: [(&str, &str); 5] = [
    (
        "小区路灯不亮",
        "小区东门到3号楼之间的路灯坏了半个多月，晚上老人出行不便。",
    ),
    (
        "楼道堆放杂物",
        "楼道里长期堆放杂物，存在消防隐患，希望社区协调清理。",
    ),
    (
        "冬季供暖不热",
        "家里暖气温度不到十六度，多次联系供热公司没有解决。",
    ),
    (
        "老旧小区加装电梯",
        "单元里老人多，希望了解加装电梯的政策和办理流程。",
    ),
    (
        "外卖骑手停车难",
        "小区不让电动车进入，骑手在门口停车被罚，希望划定临时停车点。",
    ),
];

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn person_name(rng: &mut StdRng) -> String {
    format!(
        "{}{}",
        SURNAMES[rng.gen_range(0..SURNAMES.len())],
        GIVEN[rng.gen_range(0..GIVEN.len())]
    )
}

/// `n` split over parts in proportion to `weights`, the remainder to the first parts.
fn share(n: usize, weights: &[usize]) -> Vec<usize> {
    let total: usize = weights.iter().sum();
    let mut out: Vec<usize> = weights.iter().map(|w| n * w / total.max(1)).collect();
    let mut rest = n - out.iter().sum::<usize>();
    for o in out.iter_mut() {
        if rest == 0 {
            break;
        }
        *o += 1;
        rest -= 1;
    }
    out
}

/// Writes the world into the migrated, empty database `db`.
async fn generate(db: &Path, scale: &Scale, now: DateTime<Utc>) -> Result<World> {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(20_261_128);
    let mut loader = Loader::open(db).await?;
    let indexes = drop_indexes(&mut loader).await?;
    let stamp = ts(now);
    let mut counts = Counts::default();

    loader
        .execute(&format!(
            "INSERT INTO demand_categories (code, name_zh, name_en, description, keywords, sort) \
             VALUES ('{CATEGORY}', '社区事务', 'Community affairs', 'Collected on visits', '走访', 1)"
        ))
        .await?;

    // Places, organisations, officials and members, district by district.
    let districts_total = scale.cities.min(CITIES.len()) * scale.districts_per_city;
    let weights: Vec<usize> = (0..districts_total).map(|d| 2 + d % 3).collect();
    let households = share(scale.households, &weights);
    let members = share(scale.party_members, &weights);
    let mut places = Batch::new("places", PLACE_COLUMNS);
    let mut people = Batch::new("people", PEOPLE_COLUMNS);
    let mut grid_households = Batch::new(
        "grid_households",
        &[
            "household_id",
            "grid_id",
            "valid_from",
            "region",
            "created_at",
        ],
    );
    let (mut place_id, mut person_id, mut point_id) = (0i64, 0i64, 0i64);
    let mut place = |batch: &mut Batch,
                     code: &str,
                     name: String,
                     level: &'static str,
                     parent: Option<i64>,
                     path: &str,
                     region: &str| {
        place_id += 1;
        batch.push([
            V::I(place_id),
            V::T(code.into()),
            V::T(name),
            V::S(level),
            parent.map_or(V::N, V::I),
            V::T(path.into()),
            V::T(region.into()),
            V::T(stamp.clone()),
            V::T(stamp.clone()),
        ]);
        place_id
    };
    let province_path = "/150000/".to_string();
    let province = place(
        &mut places,
        "150000",
        "内蒙古自治区".into(),
        "region",
        None,
        &province_path,
        "150000",
    );
    let mut districts = Vec::with_capacity(districts_total);
    for (c, (city_code, city_name)) in CITIES.iter().take(scale.cities).enumerate() {
        let city_path = format!("{province_path}{city_code}/");
        let city = place(
            &mut places,
            city_code,
            (*city_name).into(),
            "city",
            Some(province),
            &city_path,
            city_code,
        );
        eprintln!(
            "bench: generating {city_name} ({} districts), {:.0} s",
            scale.districts_per_city,
            started.elapsed().as_secs_f64()
        );
        for k in 0..scale.districts_per_city {
            let index = c * scale.districts_per_city + k;
            let code = format!("{}{:02}", &city_code[..4], k + 2);
            let name = format!("{}第{}区", city_name.trim_end_matches(['市', '盟']), k + 1);
            let path = format!("{city_path}{code}/");
            let region = city_code.to_string();
            let county = place(
                &mut places,
                &code,
                name.clone(),
                "county",
                Some(city),
                &path,
                &region,
            );
            let org_id = i64::try_from(index + 1)?;
            loader
                .execute(&format!(
                    "INSERT INTO orgs (id, code, name, kind, path, region, created_at, updated_at) \
                     VALUES ({org_id}, '{code}-QW', '中共{name}委员会', 'party_committee', \
                     '/{code}-QW/', '{region}', '{stamp}', '{stamp}'); \
                     INSERT INTO org_places (org_id, place_id) VALUES ({org_id}, {county})"
                ))
                .await?;
            // Towns, communities (each one a contact point), grids, buildings, households.
            let mut d_households = Vec::with_capacity(households[index]);
            let grids = TOWNS * COMMUNITIES_PER_TOWN * GRIDS_PER_COMMUNITY;
            let per_grid = share(households[index], &vec![1; grids]);
            let mut points = Vec::with_capacity(TOWNS * COMMUNITIES_PER_TOWN);
            let mut point_rows = Vec::new();
            let mut grid = 0;
            for t in 1..=TOWNS {
                let t_code = format!("{code}.S{t}");
                let t_path = format!("{path}{t_code}/");
                let town = place(
                    &mut places,
                    &t_code,
                    format!("第{t}街道"),
                    "town",
                    Some(county),
                    &t_path,
                    &region,
                );
                for j in 1..=COMMUNITIES_PER_TOWN {
                    let c_code = format!("{t_code}.C{j}");
                    let c_path = format!("{t_path}{c_code}/");
                    let c_name = format!("第{t}街道第{j}社区");
                    let community = place(
                        &mut places,
                        &c_code,
                        c_name.clone(),
                        "village",
                        Some(town),
                        &c_path,
                        &region,
                    );
                    point_id += 1;
                    point_rows.push(format!(
                        "({point_id}, 'community', '{c_name}', {community}, '{c_path}', \
                         'place:{community}', {}, {}, {}, '{region}', '{stamp}', '{stamp}')",
                        rng.gen_range(10..=95),
                        rng.gen_range(10..=95),
                        rng.gen_range(10..=95),
                    ));
                    points.push(Point {
                        id: point_id,
                        place_id: community,
                        path: c_path.clone(),
                        region: region.clone(),
                        official: None,
                    });
                    for g in 1..=GRIDS_PER_COMMUNITY {
                        let g_code = format!("{c_code}.G{g}");
                        let g_path = format!("{c_path}{g_code}/");
                        let grid_id = place(
                            &mut places,
                            &g_code,
                            format!("第{g}网格"),
                            "grid",
                            Some(community),
                            &g_path,
                            &region,
                        );
                        let in_grid = per_grid[grid];
                        grid += 1;
                        for b in 1..=in_grid.div_ceil(HOUSEHOLDS_PER_BUILDING) {
                            let b_code = format!("{g_code}.B{b}");
                            let b_path = format!("{g_path}{b_code}/");
                            let building = place(
                                &mut places,
                                &b_code,
                                format!("{b}号楼"),
                                "building",
                                Some(grid_id),
                                &b_path,
                                &region,
                            );
                            let first = (b - 1) * HOUSEHOLDS_PER_BUILDING;
                            for h in 1..=(in_grid - first).min(HOUSEHOLDS_PER_BUILDING) {
                                let h_code = format!("{b_code}.H{h}");
                                let h_path = format!("{b_path}{h_code}/");
                                let household = place(
                                    &mut places,
                                    &h_code,
                                    format!("{}0{}室", 1 + (h - 1) / 4, 1 + (h - 1) % 4),
                                    "household",
                                    Some(building),
                                    &h_path,
                                    &region,
                                );
                                grid_households.push([
                                    V::I(household),
                                    V::I(grid_id),
                                    V::S(SINCE),
                                    V::T(region.clone()),
                                    V::T(stamp.clone()),
                                ]);
                                loader.maybe(&mut grid_households).await?;
                                d_households.push((household, h_path));
                            }
                            loader.maybe(&mut places).await?;
                        }
                        loader.maybe(&mut places).await?;
                    }
                }
            }
            loader.send(&mut places).await?;
            loader
                .execute(&format!(
                    "INSERT INTO contact_points (id, kind, name, place_id, place_path, point_key, \
                     task_load, weakness, complexity, region, created_at, updated_at) VALUES {}",
                    point_rows.join(", ")
                ))
                .await?;
            if d_households.is_empty() {
                bail!("district {code} has no households: the scale is too small");
            }
            // Party members; the first of them are the district's officials.
            let mut officials = Vec::with_capacity(POSTS.len());
            let mut d_members = Vec::with_capacity(members[index]);
            let mut relations = Vec::new();
            for m in 0..members[index].max(POSTS.len() + 1) {
                person_id += 1;
                let home = d_households[rng.gen_range(0..d_households.len())].0;
                people.push([
                    V::I(person_id),
                    V::T(person_name(&mut rng)),
                    V::I(1),
                    V::T(format!("{}-07-01", rng.gen_range(1980..2020))),
                    V::I(home),
                    V::T(region.clone()),
                    V::T(stamp.clone()),
                    V::T(stamp.clone()),
                ]);
                loader.maybe(&mut people).await?;
                match POSTS.get(m) {
                    Some(post) => {
                        relations.push(format!(
                            "({person_id}, 'holds_post', {org_id}, '{post}', '{SINCE}', '{region}', '{stamp}')"
                        ));
                        officials.push(person_id);
                    }
                    None => d_members.push(person_id),
                }
            }
            loader.send(&mut people).await?;
            loader
                .execute(&format!(
                    "INSERT INTO relations (person_id, kind, org_id, post, valid_from, region, created_at) \
                     VALUES {}",
                    relations.join(", ")
                ))
                .await?;
            // Each official takes two points, in a shuffled order of points.
            let mut order: Vec<usize> = (0..points.len()).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.gen_range(0..=i));
            }
            let mut links = Vec::new();
            for (slot, &p) in order.iter().enumerate() {
                if let Some(&official) = officials.get(slot / POINTS_PER_OFFICIAL) {
                    points[p].official = Some(official);
                    links.push(format!(
                        "({}, {official}, '{SINCE}', '{region}', '{stamp}')",
                        points[p].id
                    ));
                }
            }
            loader
                .execute(&format!(
                    "INSERT INTO point_links (point_id, person_id, valid_from, region, created_at) \
                     VALUES {}",
                    links.join(", ")
                ))
                .await?;
            counts.points += points.len();
            counts.officials += officials.len();
            counts.members += officials.len() + d_members.len();
            counts.households += d_households.len();
            districts.push(District {
                code,
                name,
                path,
                region,
                org_id,
                weight: weights[index],
                officials,
                members: d_members,
                households: d_households,
                points,
                point_visits: HashMap::new(),
            });
        }
    }
    loader.send(&mut places).await?;
    loader.send(&mut grid_households).await?;
    counts.places = usize::try_from(place_id)?;

    visits(
        &mut loader,
        &mut districts,
        scale.visits,
        now,
        &mut rng,
        &mut counts,
    )
    .await?;

    loader.commit().await?;
    eprintln!(
        "bench: rebuilding {} indexes, {:.0} s",
        indexes.len(),
        started.elapsed().as_secs_f64()
    );
    for sql in &indexes {
        loader.execute(sql).await?;
    }
    loader.execute("COMMIT").await?;
    loader.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
    loader.conn.close().await?;
    let db_bytes = std::fs::metadata(db).map_or(0, |m| m.len());
    Ok(World {
        districts,
        counts,
        db_bytes,
    })
}

/// Drops the secondary indexes of the [`BULK_TABLES`] and returns the statements that
/// create them again, as the migrations wrote them.
async fn drop_indexes(loader: &mut Loader) -> Result<Vec<String>> {
    let tables = BULK_TABLES.map(|t| format!("'{t}'")).join(", ");
    let rows: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
         AND tbl_name IN ({tables}) ORDER BY name"
    ))
    .fetch_all(&mut loader.conn)
    .await?;
    for (name, _) in &rows {
        loader.execute(&format!("DROP INDEX {name}")).await?;
    }
    Ok(rows.into_iter().map(|(_, sql)| sql).collect())
}

/// The visits, in date order over last year and this year up to today, with the
/// demands collected on them and the tallies of the point visits.
async fn visits(
    loader: &mut Loader,
    districts: &mut [District],
    n: usize,
    now: DateTime<Utc>,
    rng: &mut StdRng,
    counts: &mut Counts,
) -> Result<()> {
    let today = local_day(now);
    let first = NaiveDate::from_ymd_opt(today.year() - 1, 1, 1).context("a first day")?;
    let days = usize::try_from((today - first).num_days() + 1)?;
    // A district is picked in proportion to its weight.
    let pick: Vec<usize> = districts
        .iter()
        .enumerate()
        .flat_map(|(i, d)| std::iter::repeat_n(i, d.weight))
        .collect();
    let mut visit_rows = Batch::new("visits", VISIT_COLUMNS);
    let mut demand_rows = Batch::new("demands", DEMAND_COLUMNS);
    let mut event_rows = Batch::new("demand_events", EVENT_COLUMNS);
    let mut tallies: HashMap<(i64, i64, i32), (i64, String)> = HashMap::new();
    let (mut visit_id, mut demand_id) = (0i64, 0i64);
    let started = Instant::now();
    let mut next_report = n / 10;
    for day_index in 0..days {
        let day = first + Duration::days(i64::try_from(day_index)?);
        let year = day.year();
        let on = day.to_string();
        let count = n * (day_index + 1) / days - n * day_index / days;
        for _ in 0..count {
            visit_id += 1;
            let d = &mut districts[pick[rng.gen_range(0..pick.len())]];
            // During office hours, Shanghai time: 01:00–10:00 UTC the same day.
            let at = day.and_hms_opt(1, 0, 0).context("a time")?.and_utc()
                + Duration::seconds(rng.gen_range(0..9 * 3600));
            let at = at.min(now);
            let at_text = ts(at);
            let at_point = rng.gen_bool(POINT_VISIT_SHARE);
            let (point, person, kind, place_id, path) = if at_point {
                let p = &d.points[rng.gen_range(0..d.points.len())];
                let person = match p.official {
                    Some(o) if rng.gen_bool(LINKED_SHARE) => o,
                    _ => d.officials[rng.gen_range(0..d.officials.len())],
                };
                let kind = if rng.gen_bool(0.5) {
                    "forum"
                } else {
                    "inspection"
                };
                tallies
                    .entry((p.id, person, year))
                    .or_insert_with(|| (0, p.region.clone()))
                    .0 += 1;
                *d.point_visits.entry(year).or_default() += 1;
                counts.point_visits += 1;
                (Some(p.id), person, kind, p.place_id, p.path.clone())
            } else {
                let (h, h_path) = &d.households[rng.gen_range(0..d.households.len())];
                let person = d
                    .members
                    .get(rng.gen_range(0..d.members.len().max(1)))
                    .copied()
                    .unwrap_or(d.officials[0]);
                (None, person, "household", *h, h_path.clone())
            };
            // A follow-up is owed on a few visits; most of those are done a week later.
            let follow_up = rng.gen_bool(0.03);
            let done = (follow_up && rng.gen_bool(0.8))
                .then(|| at + Duration::days(7))
                .filter(|t| *t <= now);
            visit_rows.push([
                V::I(visit_id),
                point.map_or(V::N, V::I),
                V::I(person),
                V::S(kind),
                V::T(on.clone()),
                V::I(place_id),
                V::T(path.clone()),
                V::S(""),
                V::S("走访了解情况，宣传政策，听取意见建议。"),
                if follow_up {
                    V::S("跟进反映的问题")
                } else {
                    V::N
                },
                if follow_up { V::I(person) } else { V::N },
                done.map_or(V::N, |t| V::T(ts(t))),
                V::T(d.region.clone()),
                V::S("system:bench"),
                V::T(at_text.clone()),
            ]);
            loader.maybe(&mut visit_rows).await?;

            let odds = if at_point {
                POINT_DEMAND_ODDS
            } else {
                HOUSEHOLD_DEMAND_ODDS
            };
            if rng.gen_bool(odds) {
                demand_id += 1;
                counts.demands += 1;
                if at_point {
                    counts.point_demands += 1;
                }
                let (title, description) = CONCERNS[rng.gen_range(0..CONCERNS.len())];
                let deadline = ts(at + Duration::days(5));
                let answered = rng
                    .gen_bool(ANSWERED_SHARE)
                    .then(|| at + Duration::minutes(rng.gen_range(60..240 * 60)))
                    .filter(|t| *t <= now);
                let status = match answered {
                    _ if rng.gen_bool(REJECTED_SHARE) => "rejected",
                    Some(_) if rng.gen_bool(CLOSED_SHARE) => "closed",
                    Some(_) => "answered",
                    None if rng.gen_bool(0.5) => "in_progress",
                    None => "received",
                };
                let answered = answered.filter(|_| status != "rejected").map(ts);
                let closed = (status == "closed").then(|| answered.clone()).flatten();
                demand_rows.push([
                    V::I(demand_id),
                    V::T(d.region.clone()),
                    V::S("help"),
                    V::S(CATEGORY),
                    V::S("ordinary"),
                    V::S("visit"),
                    V::S(title),
                    V::S(description),
                    V::I(place_id),
                    V::T(path),
                    V::T(format!(
                        "{:032x}{:032x}",
                        rng.gen::<u128>(),
                        rng.gen::<u128>()
                    )),
                    V::S(status),
                    V::I(d.org_id),
                    V::T(deadline.clone()),
                    V::T(deadline.clone()),
                    V::T(deadline),
                    answered.clone().map_or(V::N, V::T),
                    V::T(at_text.clone()),
                    answered
                        .as_ref()
                        .map_or(V::N, |_| V::S("已协调相关部门处理，并向群众反馈。")),
                    V::I(visit_id),
                    V::I(d.org_id),
                    V::I(0),
                    V::T(at_text.clone()),
                    V::T(answered.clone().unwrap_or_else(|| at_text.clone())),
                    closed.map_or(V::N, V::T),
                    point.map_or(V::N, V::I),
                    answered.map_or(V::N, V::T),
                ]);
                event_rows.push([
                    V::I(demand_id),
                    V::T(d.region.clone()),
                    V::T(at_text),
                    V::S("system:bench"),
                    V::S("bench"),
                    V::S("submit"),
                    V::S("received"),
                    V::I(d.org_id),
                    V::S("走访收集"),
                ]);
                loader.maybe(&mut demand_rows).await?;
                loader.maybe(&mut event_rows).await?;
            }
        }
        let done = usize::try_from(visit_id)?;
        if done >= next_report && done < n {
            eprintln!(
                "bench:   {done} of {n} visits stored, {:.0} s",
                started.elapsed().as_secs_f64()
            );
            next_report += n / 10;
        }
    }
    loader.send(&mut visit_rows).await?;
    loader.send(&mut demand_rows).await?;
    loader.send(&mut event_rows).await?;
    counts.visits = usize::try_from(visit_id)?;
    counts.tallies = tallies.len();
    let mut tally_rows = Batch::new(
        "visit_tallies",
        &["point_id", "person_id", "year", "visits", "region"],
    );
    for ((point, person, year), (visits, region)) in tallies {
        tally_rows.push([
            V::I(point),
            V::I(person),
            V::I(i64::from(year)),
            V::I(visits),
            V::T(region),
        ]);
        loader.maybe(&mut tally_rows).await?;
    }
    loader.send(&mut tally_rows).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        assert_eq!(share(10, &[2, 3, 4]), vec![3, 3, 4]);
        assert_eq!(share(9, &[2, 3, 4]).iter().sum::<usize>(), 9);
        assert_eq!(share(7, &[1; 3]), vec![3, 2, 2]);
    }

    #[test]
    fn the_page_is_read_as_a_browser_reads_it() {
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("lx_pre=; Path=/; Max-Age=0"),
        );
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("lx_session=abc=d; Path=/; HttpOnly"),
        );
        assert_eq!(
            set_cookie(&h, "lx_session").as_deref(),
            Some("lx_session=abc=d")
        );
        assert_eq!(set_cookie(&h, "lx_pre").as_deref(), Some("lx_pre="));
        assert_eq!(set_cookie(&h, "lx_lang"), None);
        assert_eq!(form_encode("a b+c/é"), "a%20b%2Bc%2F%C3%A9");
        let html =
            "<p class=\"lead\" id=\"headline\">17 名领导干部，走访 6,843 次，收集诉求 1270 件</p>";
        assert_eq!(headline_numbers(html.as_bytes()), vec![17, 6, 843, 1270]);
        assert_eq!(headline_numbers(b"<p>no headline</p>"), Vec::<u64>::new());
    }

    #[test]
    fn statements_number_their_parameters() {
        assert_eq!(
            insert_sql("t", &["a", "b"], 2),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
        );
    }

    /// A toy world: the views agree, every reference the load wrote points at a row,
    /// and the world is as big as asked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tiny_world_is_consistent() {
        let scale = Scale {
            name: "test",
            cities: 2,
            districts_per_city: 2,
            party_members: 200,
            households: 3_000,
            visits: 20_000,
            view_runs: 1,
            scan_runs: 1,
            province_runs: 1,
            province_scan_runs: 1,
        };
        let dir = TempDir::new("lianxin-bench-governance").unwrap();
        let (facts, rows) = run(&dir, &scale).await.unwrap();
        assert!(facts.contains("3000 households"), "{facts}");
        assert!(facts.contains("20000 visits"), "{facts}");
        assert_eq!(rows.len(), 7);
        assert!(rows.iter().all(|r| r.met || r.name.starts_with("district")));
        assert!(rows[1]
            .name
            .starts_with("district page GET /governance?year="));
        assert!(rows[1].value > 0.0 && rows[1].baseline_value.is_some());
        assert!(rows[3].value > 0.0, "the district has point visits");

        let db = dir.0.join("governance.db");
        let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let broken: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert!(broken.is_empty(), "{broken:?}");
        let indexes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'visits_point'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(indexes, 1, "the indexes are rebuilt");
    }
}
