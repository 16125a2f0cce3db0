//! `bench points`: durable awards through the HTTP API with 1 client and with 32
//! concurrent clients, and a batch import of 1,000,000 awards, each beside a
//! physical limit measured in the same run and beside the published TigerBeetle 0.17
//! anchor for the same kind of 2-core machine.
//!
//! The world (not measured): the bench town of `world::seed`, one issuing
//! organisation (its first unit), 10,000 real people (`import_people`), and one rule,
//! `volunteer_hour`, 10 points, no cap, so every award gives points and writes a
//! transfer. Awards go to people drawn at random (seeded), like TigerBeetle's own
//! benchmark over 10,000 accounts.
//!
//! - **HTTP, one at a time.** The real server (`lianxin_server::router` on a socket,
//!   a fresh SQLite file in WAL mode with `synchronous=FULL`, the group-commit writer)
//!   and an admin account whose API token has the scope `rewards:write`. Each client
//!   is a task holding one keep-alive HTTP/1.1 connection (hyper's bare client, as in
//!   `intake.rs`) and posting its next award to `POST /api/v1/rewards/awards` as soon
//!   as the last is answered; an award counts when it is answered 201. 1 client, then
//!   32, several short runs each; the medians are reported.
//! - **The limit for one at a time**: a bare table shaped like `points_awards`, in
//!   its own file with the same pragmas, filled by one writer with one row per
//!   durable commit (what one client can get at best: one fsync per award) and with
//!   32 rows per commit (what perfect group commit of 32 clients can get). These runs
//!   alternate with the HTTP runs, so a slow patch of a noisy machine lands on both.
//! - **Import.** `N` awards (1,000,000; 100,000 with `--quick`) through
//!   `Store::points_import_awards` in batches of 8,189 (TigerBeetle's batch), into a
//!   second database; the same number of rows through bare multi-row `INSERT`s into
//!   the bare table, 8,189 per commit (the engine's limit); and `N` awards through
//!   `POST /api/v1/rewards/awards/batch`, 8,189 per request, into the served database.
//!   Each import is cut into segments that alternate; the value is the median of the
//!   segments' rates.
//! - **Nothing acknowledged lost.** At the end the server is stopped, the stores
//!   closed, and the served file opened afresh: every acknowledged award (201, or
//!   counted as `awarded` by a 200 batch answer) must be in `points_awards` with its
//!   transfer.

use super::intake::{connect, contains, percentile_ms, Server};
use super::{median, open, world, Row};
use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use lianxin_domain::draft::{PersonDraft, RawPerson};
use lianxin_domain::pii::PiiKey;
use lianxin_domain::points::{award_content_hash, award_id, Multipliers, Quality, RuleDraft};
use lianxin_domain::role::Role;
use lianxin_store::audit::Actor;
use lianxin_store::points::AwardRequest;
use lianxin_store::testing::TempDir;
use lianxin_store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const AWARD_PATH: &str = "/api/v1/rewards/awards";
const BATCH_PATH: &str = "/api/v1/rewards/awards/batch";
/// Concurrent clients in the second HTTP measurement.
pub const CLIENTS: usize = 32;
/// Awards per import batch: TigerBeetle's batch size in the anchor.
pub const BATCH: usize = 8_189;
/// People awards go to (TigerBeetle's benchmark uses 10,000 accounts).
const PEOPLE: usize = 10_000;
const RULE: &str = "volunteer_hour";
const POINTS: i64 = 10;

/// The published anchor, measured on this kind of 2-core machine.
const ANCHOR: &str = "TigerBeetle 0.17 anchor (published, same machine class)";
const ANCHOR_ONE: f64 = 375.0;
const ANCHOR_MANY: f64 = 1_396.0;
const ANCHOR_BATCH: f64 = 117_669.0;

/// How long and how often each thing is measured.
pub struct Scale {
    pub name: &'static str,
    /// Runs of each HTTP load and of each raw-insert rate (medians reported).
    pub runs: usize,
    pub warmup: Duration,
    pub measure: Duration,
    pub raw_measure: Duration,
    /// Awards imported through the store, and through HTTP.
    pub import: usize,
    pub http_import: usize,
    /// Segments each import is cut into (the median of their rates is reported).
    pub segments: usize,
    /// People awards go to.
    pub people: usize,
}

impl Scale {
    pub const FULL: Scale = Scale {
        name: "full",
        runs: 5,
        warmup: Duration::from_secs(1),
        measure: Duration::from_secs(4),
        raw_measure: Duration::from_millis(1500),
        import: 1_000_000,
        http_import: 1_000_000,
        segments: 5,
        people: PEOPLE,
    };
    pub const QUICK: Scale = Scale {
        name: "quick",
        runs: 3,
        warmup: Duration::from_millis(500),
        measure: Duration::from_secs(2),
        raw_measure: Duration::from_millis(600),
        import: 100_000,
        http_import: 100_000,
        segments: 3,
        people: PEOPLE,
    };
}

/// The time every award is given for: an hour ago, to the second.
fn award_time() -> (DateTime<Utc>, String) {
    let at = DateTime::from_timestamp(Utc::now().timestamp() - 3600, 0).unwrap_or_default();
    (at, at.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The people, the issuing organisation and the rule, in a fresh database.
struct Ledger {
    people: Arc<Vec<i64>>,
    org: i64,
}

async fn prepare(store: &Store, db: &std::path::Path, count: usize) -> Result<Ledger> {
    let actor = Actor::system("bench");
    let places = world::seed(store).await?;
    let org = places.units.first().context("a unit")?.id;
    let key = PiiKey::from_master(&[7; 32]);
    let drafts = (0..count)
        .map(|i| {
            let place = &places.communities[i % places.communities.len()];
            PersonDraft::parse(
                &RawPerson {
                    name: format!("骑手{i}"),
                    place_code: place.code.clone(),
                    ..Default::default()
                },
                &key,
            )
            .map_err(|e| anyhow::anyhow!("person draft: {}", e.message))
        })
        .collect::<Result<Vec<_>>>()?;
    store
        .import_people(&actor, &drafts, |_| {})
        .await
        .map_err(|e| anyhow::anyhow!("importing the people: {e}"))?;
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db.display())).await?;
    let people: Vec<i64> = sqlx::query_scalar("SELECT id FROM people ORDER BY id")
        .fetch_all(&mut conn)
        .await?;
    conn.close().await?;
    ensure!(people.len() == count, "{} people stored", people.len());
    store
        .points_put_rule(
            &actor,
            RuleDraft {
                code: RULE.into(),
                category: "all".into(),
                points: POINTS,
                multipliers: Multipliers::default(),
                cap: None,
                valid_from: DateTime::from_timestamp(1_577_836_800, 0).unwrap_or_default(),
            },
        )
        .await?;
    Ok(Ledger {
        people: Arc::new(people),
        org,
    })
}

/// What every request carries.
struct Target {
    host: HeaderValue,
    auth: HeaderValue,
    addr: SocketAddr,
}

/// Why one request did not count.
struct Failure {
    why: String,
    /// The connection is unusable and must be replaced.
    broken: bool,
}

/// Posts `body` to `path`; the status and body of the answer.
async fn post(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    path: &str,
    body: Bytes,
) -> Result<(StatusCode, Bytes), Failure> {
    let broken = |e: hyper::Error| Failure {
        why: format!("connection: {e}"),
        broken: true,
    };
    sender.ready().await.map_err(broken)?;
    let mut req = Request::post(path);
    if let Some(h) = req.headers_mut() {
        h.insert(HOST, target.host.clone());
        h.insert(AUTHORIZATION, target.auth.clone());
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    let req = req.body(Full::new(body)).map_err(|e| Failure {
        why: format!("request: {e}"),
        broken: false,
    })?;
    let res = sender.send_request(req).await.map_err(broken)?;
    let status = res.status();
    let body = res.into_body().collect().await.map_err(broken)?.to_bytes();
    Ok((status, body))
}

fn failure(status: StatusCode, body: &[u8]) -> Failure {
    Failure {
        why: format!(
            "{status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ),
        broken: false,
    }
}

/// One award as the API takes it.
fn award_json(event_ref: &str, person: i64, org: i64, at: &str) -> String {
    format!(
        r#"{{"event_ref":"{event_ref}","person_id":{person},"org_id":{org},"rule":"{RULE}","quality":"basic","at":"{at}"}}"#
    )
}

/// One client: a keep-alive connection that posts one new award at a time.
struct Client {
    sender: SendRequest<Full<Bytes>>,
    target: Arc<Target>,
    /// Event references are `{prefix}{next}`, unique over the whole run.
    prefix: String,
    next: u64,
    rng: StdRng,
    ledger: Arc<Ledger>,
    at: Arc<str>,
    /// Every award answered 201, in or out of the measured windows.
    acknowledged: u64,
}

impl Client {
    async fn award(&mut self) -> Result<(), Failure> {
        let person = self.ledger.people[self.rng.gen_range(0..self.ledger.people.len())];
        let event = format!("{}{}", self.prefix, self.next);
        self.next += 1;
        let body = award_json(&event, person, self.ledger.org, &self.at);
        let (status, body) = post(
            &mut self.sender,
            &self.target,
            AWARD_PATH,
            Bytes::from(body),
        )
        .await?;
        if status != StatusCode::CREATED || !contains(&body, b"\"award\"") {
            return Err(failure(status, &body));
        }
        self.acknowledged += 1;
        Ok(())
    }
}

async fn clients(
    target: &Arc<Target>,
    ledger: &Arc<Ledger>,
    at: &Arc<str>,
    tag: &str,
    n: usize,
) -> Result<Vec<Client>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(Client {
            sender: connect(target.addr).await?,
            target: target.clone(),
            prefix: format!("bench:{tag}:{i}:"),
            next: 0,
            rng: StdRng::seed_from_u64((n * 1000 + i) as u64),
            ledger: ledger.clone(),
            at: at.clone(),
            acknowledged: 0,
        });
    }
    Ok(out)
}

/// One measured run of every client.
#[derive(Debug, Default)]
struct LoadRun {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    failures: u64,
    first_failure: Option<String>,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    failures: u64,
    first_failure: Option<String>,
}

/// Runs every client flat out for `warmup` (not counted), then for `measure`.
async fn load(clients: Vec<Client>, warmup: Duration, measure: Duration) -> (Vec<Client>, LoadRun) {
    let from = Instant::now() + warmup;
    let until = from + measure;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(drive(c, from, until)))
        .collect();
    let mut clients = Vec::with_capacity(tasks.len());
    let mut all = Tally::default();
    for t in tasks {
        match t.await {
            Ok((c, tally)) => {
                clients.push(c);
                all.latencies_us.extend(tally.latencies_us);
                all.failures += tally.failures;
                if all.first_failure.is_none() {
                    all.first_failure = tally.first_failure;
                }
            }
            Err(e) => {
                all.failures += 1;
                all.first_failure.get_or_insert(format!("client task: {e}"));
            }
        }
    }
    all.latencies_us.sort_unstable();
    let run = LoadRun {
        rate: all.latencies_us.len() as f64 / measure.as_secs_f64(),
        p50_ms: percentile_ms(&all.latencies_us, 0.50),
        p99_ms: percentile_ms(&all.latencies_us, 0.99),
        failures: all.failures,
        first_failure: all.first_failure,
    };
    (clients, run)
}

/// One client's loop. A client whose connection breaks reconnects; one that cannot
/// is given back with a dead sender and fails its next request.
async fn drive(mut c: Client, from: Instant, until: Instant) -> (Client, Tally) {
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(8 * 1024),
        ..Tally::default()
    };
    loop {
        let start = Instant::now();
        if start >= until {
            break;
        }
        let outcome = c.award().await;
        let end = Instant::now();
        if end > until {
            break;
        }
        let counted = end >= from;
        match outcome {
            Ok(()) if counted => {
                let us = end.duration_since(start).as_micros();
                tally
                    .latencies_us
                    .push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            Ok(()) => {}
            Err(f) => {
                if counted {
                    tally.failures += 1;
                    tally.first_failure.get_or_insert(f.why);
                }
                if f.broken {
                    match connect(c.target.addr).await {
                        Ok(s) => c.sender = s,
                        Err(e) => {
                            tally.failures += 1;
                            tally
                                .first_failure
                                .get_or_insert(format!("reconnecting: {e}"));
                            break;
                        }
                    }
                }
            }
        }
    }
    (c, tally)
}

/// The bare table of the limit runs: the columns, key and index of `points_awards`.
const RAW_TABLE: &str = "(award_id TEXT PRIMARY KEY, content_hash TEXT NOT NULL, \
     event_ref TEXT NOT NULL, person_id INTEGER NOT NULL, org_id INTEGER NOT NULL, \
     rule_code TEXT NOT NULL, rule_version INTEGER NOT NULL, category TEXT NOT NULL, \
     quality TEXT NOT NULL, at TEXT NOT NULL, period_key TEXT, requested INTEGER NOT NULL, \
     points INTEGER NOT NULL, created_at TEXT NOT NULL)";
const RAW_WIDTH: usize = 14;
/// Rows per multi-row statement (14 × 500 parameters, under SQLite's limit).
const RAW_CHUNK: usize = 500;

/// A bare SQLite file with the store's pragmas and one writer.
struct Raw {
    conn: SqliteConnection,
    next: u64,
    rng: StdRng,
    people: i64,
    at: DateTime<Utc>,
    at_text: String,
}

impl Raw {
    async fn open(
        path: &std::path::Path,
        at: DateTime<Utc>,
        at_text: &str,
        people: usize,
    ) -> Result<Raw> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .pragma("wal_autocheckpoint", "0")
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "MEMORY");
        let mut conn = SqliteConnection::connect_with(&opts).await?;
        for table in ["raw_awards", "raw_imported"] {
            sqlx::query(&format!("CREATE TABLE {table} {RAW_TABLE}"))
                .execute(&mut conn)
                .await?;
            sqlx::query(&format!(
                "CREATE INDEX {table}_person ON {table}(person_id, at)"
            ))
            .execute(&mut conn)
            .await?;
        }
        Ok(Raw {
            conn,
            next: 0,
            rng: StdRng::seed_from_u64(11),
            people: people as i64,
            at,
            at_text: at_text.to_string(),
        })
    }

    /// Inserts `rows` rows into `table` in one durable transaction, `RAW_CHUNK` per
    /// statement. Each row is built as the store builds an award row (its id and
    /// content hash are computed).
    async fn commit(&mut self, table: &str, rows: usize) -> Result<()> {
        let mut tx = self.conn.begin().await?;
        let mut left = rows;
        while left > 0 {
            let n = left.min(RAW_CHUNK);
            left -= n;
            let marks = vec![format!("({})", vec!["?"; RAW_WIDTH].join(",")); n].join(",");
            let sql = format!("INSERT INTO {table} VALUES {marks}");
            let mut q = sqlx::query(&sql);
            let created = created_now();
            for _ in 0..n {
                let event = format!("raw:{}", self.next);
                self.next += 1;
                let person = self.rng.gen_range(1..=self.people);
                q = q
                    .bind(award_id(&event, person, RULE))
                    .bind(award_content_hash(1, Quality::Basic, self.at))
                    .bind(event)
                    .bind(person)
                    .bind(1_i64)
                    .bind(RULE)
                    .bind(1_i64)
                    .bind("all")
                    .bind("basic")
                    .bind(self.at_text.clone())
                    .bind(None::<String>)
                    .bind(POINTS)
                    .bind(POINTS)
                    .bind(created.clone());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Rows per second at `per_commit` rows per durable commit, for `duration`.
    async fn rate(&mut self, per_commit: usize, duration: Duration) -> Result<f64> {
        let mut rows = 0usize;
        let start = Instant::now();
        while start.elapsed() < duration {
            self.commit("raw_awards", per_commit).await?;
            rows += per_commit;
        }
        Ok(rows as f64 / start.elapsed().as_secs_f64())
    }

    /// Rows per second of `batches` (sizes) into the import table, one commit each.
    async fn import(&mut self, batches: &[usize]) -> Result<f64> {
        let start = Instant::now();
        for &n in batches {
            self.commit("raw_imported", n).await?;
        }
        let rate = batches.iter().sum::<usize>() as f64 / start.elapsed().as_secs_f64();
        self.checkpoint().await?;
        Ok(rate)
    }

    /// Keeps the WAL short between runs, as the store's background checkpoint does.
    async fn checkpoint(&mut self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }
}

/// A creation time in the store's format.
fn created_now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The import's batch sizes (`BATCH`, the last one shorter), cut into `segments`.
fn segments(total: usize, segments: usize) -> Vec<Vec<usize>> {
    let sizes: Vec<usize> = (0..total.div_ceil(BATCH))
        .map(|k| BATCH.min(total - k * BATCH))
        .collect();
    let segments = segments.clamp(1, sizes.len().max(1));
    (0..segments)
        .map(|s| sizes[s * sizes.len() / segments..(s + 1) * sizes.len() / segments].to_vec())
        .filter(|seg| !seg.is_empty())
        .collect()
}

/// The store import: `batches` of awards `i:{k}` through `points_import_awards`.
async fn store_import(
    store: &Store,
    ledger: &Ledger,
    at: DateTime<Utc>,
    batches: &[usize],
    next: &mut u64,
    rng: &mut StdRng,
) -> Result<(f64, u64)> {
    let actor = Actor::system("bench");
    let mut awarded = 0u64;
    let start = Instant::now();
    for &n in batches {
        let requests: Vec<AwardRequest> = (0..n)
            .map(|_| {
                let k = *next;
                *next += 1;
                AwardRequest {
                    event_ref: format!("i:{k}"),
                    person_id: ledger.people[rng.gen_range(0..ledger.people.len())],
                    org_id: ledger.org,
                    rule_code: RULE.into(),
                    quality: Quality::Basic,
                    at,
                }
            })
            .collect();
        let summary = store
            .points_import_awards(&actor, requests)
            .await
            .map_err(|e| anyhow::anyhow!("importing awards: {e}"))?;
        ensure!(
            summary.awarded == n,
            "an import of {n} new awards recorded {}",
            summary.awarded
        );
        awarded += n as u64;
    }
    Ok((awarded as f64 / start.elapsed().as_secs_f64(), awarded))
}

/// The HTTP import: `batches` of awards `b:{k}` through `POST …/awards/batch` on one
/// connection. The bodies are built before the clock starts. Returns the rate and the
/// awards acknowledged (`awarded` in the answers).
async fn http_import(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    ledger: &Ledger,
    at: &str,
    batches: &[usize],
    next: &mut u64,
    rng: &mut StdRng,
) -> Result<(f64, u64)> {
    let bodies: Vec<Bytes> = batches
        .iter()
        .map(|&n| {
            let mut s = String::with_capacity(n * 120 + 16);
            s.push_str(r#"{"awards":["#);
            for i in 0..n {
                if i > 0 {
                    s.push(',');
                }
                let person = ledger.people[rng.gen_range(0..ledger.people.len())];
                s.push_str(&award_json(&format!("b:{next}"), person, ledger.org, at));
                *next += 1;
            }
            s.push_str("]}");
            Bytes::from(s)
        })
        .collect();
    let mut acknowledged = 0u64;
    let start = Instant::now();
    for (body, &n) in bodies.into_iter().zip(batches) {
        let (status, answer) = match post(sender, target, BATCH_PATH, body).await {
            Ok(a) => a,
            Err(f) => bail!("POST {BATCH_PATH}: {}", f.why),
        };
        if status != StatusCode::OK {
            let f = failure(status, &answer);
            bail!("POST {BATCH_PATH} of {n} awards: {}", f.why);
        }
        let v: serde_json::Value = serde_json::from_slice(&answer)
            .with_context(|| format!("the answer of POST {BATCH_PATH} is not JSON"))?;
        let awarded = v["imported"]["awarded"].as_u64().with_context(|| {
            format!(
                "the answer of POST {BATCH_PATH} has no imported.awarded: {}",
                String::from_utf8_lossy(&answer[..answer.len().min(300)])
            )
        })?;
        ensure!(
            awarded == n as u64,
            "a batch of {n} new awards over HTTP recorded {awarded}"
        );
        acknowledged += awarded;
    }
    Ok((
        acknowledged as f64 / start.elapsed().as_secs_f64(),
        acknowledged,
    ))
}

/// Awards and award transfers in a database file, read afresh.
async fn recorded(path: &std::path::Path) -> Result<(u64, u64)> {
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
    let awards: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM points_awards")
        .fetch_one(&mut conn)
        .await?;
    let transfers: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM points_transfers WHERE reason = 'award'")
            .fetch_one(&mut conn)
            .await?;
    conn.close().await?;
    Ok((
        u64::try_from(awards).unwrap_or(0),
        u64::try_from(transfers).unwrap_or(0),
    ))
}

fn report(what: &str, r: &LoadRun) {
    eprintln!(
        "bench:   {what}: {:.0} awards/s, p50 {:.2} ms, p99 {:.2} ms, {} failed",
        r.rate, r.p50_ms, r.p99_ms, r.failures
    );
    if let Some(why) = &r.first_failure {
        eprintln!("bench:   first failure: {why}");
    }
}

/// Runs the whole benchmark in `dir`; a line describing the run, and the rows.
pub async fn run(dir: &TempDir, scale: &Scale) -> Result<(String, Vec<Row>)> {
    let (at, at_text) = award_time();
    let at_str: Arc<str> = Arc::from(at_text.as_str());
    let served_path = dir.0.join("points.db");
    let import_path = dir.0.join("import.db");

    eprintln!(
        "bench: points: preparing the served database ({} people, rule {RULE})",
        scale.people
    );
    let served = open(dir, "points.db").await?;
    let ledger = Arc::new(prepare(&served, &served_path, scale.people).await?);
    // An admin whose token may record awards.
    let server = Server::start_as(&served, Role::Admin, None, &["rewards:write"]).await?;
    let target = Arc::new(Target {
        host: HeaderValue::from_str(&server.addr.to_string())?,
        auth: HeaderValue::from_str(&format!("Bearer {}", server.token))?,
        addr: server.addr,
    });
    let mut raw = Raw::open(&dir.0.join("limit.db"), at, &at_text, scale.people).await?;

    let mut one = clients(&target, &ledger, &at_str, "c1", 1).await?;
    let mut many = clients(&target, &ledger, &at_str, "c32", CLIENTS).await?;
    if let Some(first) = one.first_mut() {
        first
            .award()
            .await
            .map_err(|f| anyhow::anyhow!("POST {AWARD_PATH} did not create an award: {}", f.why))?;
    }

    let (mut http_one, mut http_many) = (Vec::new(), Vec::new());
    let (mut raw_one, mut raw_many) = (Vec::new(), Vec::new());
    for run in 1..=scale.runs {
        eprintln!(
            "bench: points run {run}/{}: 1 client, then {CLIENTS}, over HTTP for {:?} each (+{:?} warm-up); raw inserts between",
            scale.runs, scale.measure, scale.warmup
        );
        let (back, r) = load(one, scale.warmup, scale.measure).await;
        one = back;
        report("1 client", &r);
        http_one.push(r);
        let s = raw.rate(1, scale.raw_measure).await?;
        eprintln!("bench:   raw insert, 1 row per commit: {s:.0} rows/s");
        raw_one.push(s);
        let (back, r) = load(many, scale.warmup, scale.measure).await;
        many = back;
        report(&format!("{CLIENTS} clients"), &r);
        http_many.push(r);
        let s = raw.rate(CLIENTS, scale.raw_measure).await?;
        eprintln!("bench:   raw insert, {CLIENTS} rows per commit: {s:.0} rows/s");
        raw_many.push(s);
        raw.checkpoint().await?;
    }
    let single_acknowledged: u64 = one.iter().chain(&many).map(|c| c.acknowledged).sum();
    drop(one);
    drop(many);

    eprintln!("bench: points: preparing the import database");
    let importer = open(dir, "import.db").await?;
    let import_ledger = prepare(&importer, &import_path, scale.people).await?;
    let store_segments = segments(scale.import, scale.segments);
    let http_segments = segments(scale.http_import, scale.segments);
    let mut sender = connect(target.addr).await?;
    let (mut store_rates, mut raw_rates, mut http_rates) = (Vec::new(), Vec::new(), Vec::new());
    let (mut store_time, mut http_time) = (0.0, 0.0);
    let (mut store_imported, mut http_acknowledged) = (0u64, 0u64);
    let (mut store_next, mut http_next) = (0u64, 0u64);
    let (mut store_rng, mut http_rng) = (StdRng::seed_from_u64(21), StdRng::seed_from_u64(22));
    let rounds = store_segments.len().max(http_segments.len());
    for s in 0..rounds {
        if let Some(batches) = store_segments.get(s) {
            let n: usize = batches.iter().sum();
            eprintln!(
                "bench: import segment {}/{rounds}: {n} awards through the store, then raw, then HTTP",
                s + 1
            );
            let (rate, done) = store_import(
                &importer,
                &import_ledger,
                at,
                batches,
                &mut store_next,
                &mut store_rng,
            )
            .await?;
            store_time += done as f64 / rate;
            store_imported += done;
            store_rates.push(rate);
            let raw_rate = raw.import(batches).await?;
            eprintln!("bench:   store {rate:.0} awards/s; raw {raw_rate:.0} rows/s");
            raw_rates.push(raw_rate);
        }
        if let Some(batches) = http_segments.get(s) {
            let (rate, done) = http_import(
                &mut sender,
                &target,
                &ledger,
                &at_text,
                batches,
                &mut http_next,
                &mut http_rng,
            )
            .await?;
            eprintln!("bench:   HTTP {rate:.0} awards/s ({done} awards)");
            http_time += done as f64 / rate;
            http_acknowledged += done;
            http_rates.push(rate);
        }
    }
    drop(sender);
    server.task.abort();
    let _ = server.task.await;
    served.close().await;
    importer.close().await;
    raw.conn.close().await?;

    // Every acknowledged award, read from the files afresh.
    let acknowledged = single_acknowledged + http_acknowledged;
    let (found, transfers) = recorded(&served_path).await?;
    let (imported_found, _) = recorded(&import_path).await?;
    eprintln!(
        "bench: points: {acknowledged} awards acknowledged over HTTP, {found} recorded with {transfers} transfers; {store_imported} imported through the store, {imported_found} recorded"
    );

    let rate_of = |runs: &[LoadRun]| median(&runs.iter().map(|r| r.rate).collect::<Vec<_>>());
    let one_rate = rate_of(&http_one);
    let many_rate = rate_of(&http_many);
    let failures: u64 = http_one.iter().chain(&http_many).map(|r| r.failures).sum();
    let raw_one = median(&raw_one);
    let raw_many = median(&raw_many);
    let store_rate = median(&store_rates);
    let raw_rate = median(&raw_rates);
    let http_rate = median(&http_rates);
    let one_name = "awards over HTTP, 1 client";
    let many_name = format!("awards over HTTP, {CLIENTS} clients");
    let raw_one_name = "raw durable insert, 1 row per commit";
    let raw_many_name = format!("raw durable insert, {CLIENTS} rows per commit");
    let raw_batch_name = format!("raw multi-row insert, {BATCH} per commit");
    let store_name = format!(
        "import of {} awards, store, batches of {BATCH}",
        scale.import
    );
    let http_name = format!(
        "import of {} awards over HTTP, batches of {BATCH}",
        scale.http_import
    );
    let one_met = one_rate >= 1000.0 && failures == 0;
    let many_met = many_rate >= 5000.0 && failures == 0;
    let rows = vec![
        Row::new(one_name, one_rate, "awards/s")
            .against(raw_one_name, raw_one)
            .target(">= 1000/s, 0 failed", one_met),
        Row::new(one_name, one_rate, "awards/s")
            .against(ANCHOR, ANCHOR_ONE)
            .target(">= 1000/s", one_rate >= 1000.0),
        Row::new(
            "award p50 latency, 1 client",
            median(&http_one.iter().map(|r| r.p50_ms).collect::<Vec<_>>()),
            "ms",
        ),
        Row::new(many_name.clone(), many_rate, "awards/s")
            .against(raw_many_name.clone(), raw_many)
            .target(">= 5000/s, 0 failed", many_met),
        Row::new(many_name, many_rate, "awards/s")
            .against(ANCHOR, ANCHOR_MANY)
            .target(">= 5000/s", many_rate >= 5000.0),
        Row::new(
            format!("award p50 latency, {CLIENTS} clients"),
            median(&http_many.iter().map(|r| r.p50_ms).collect::<Vec<_>>()),
            "ms",
        ),
        Row::new(
            format!("award p99 latency, {CLIENTS} clients"),
            median(&http_many.iter().map(|r| r.p99_ms).collect::<Vec<_>>()),
            "ms",
        ),
        Row::new("award requests failed", failures as f64, "requests")
            .against(
                "awards acknowledged, one at a time",
                single_acknowledged as f64,
            )
            .target("0", failures == 0),
        Row::new(store_name.clone(), store_rate, "awards/s")
            .against(raw_batch_name.clone(), raw_rate)
            .target(">= 100000/s", store_rate >= 100_000.0),
        Row::new(store_name, store_rate, "awards/s")
            .against(ANCHOR, ANCHOR_BATCH)
            .target(">= 100000/s", store_rate >= 100_000.0),
        Row::new(http_name.clone(), http_rate, "awards/s")
            .against("import through the store", store_rate)
            .target(">= 100000/s", http_rate >= 100_000.0),
        Row::new(http_name, http_rate, "awards/s")
            .against(ANCHOR, ANCHOR_BATCH)
            .target(">= 100000/s", http_rate >= 100_000.0),
        Row::new(raw_one_name, raw_one, "rows/s"),
        Row::new(raw_many_name, raw_many, "rows/s"),
        Row::new(raw_batch_name, raw_rate, "rows/s"),
        Row::new(
            "acknowledged awards durably recorded",
            found as f64,
            "awards",
        )
        .against("awards acknowledged over HTTP", acknowledged as f64)
        .target(
            "all, each with its transfer",
            found == acknowledged && transfers == acknowledged,
        ),
        Row::new(
            "imported awards recorded (store)",
            imported_found as f64,
            "awards",
        )
        .against("awards imported", store_imported as f64)
        .target("all", imported_found == store_imported),
    ];
    let facts = format!(
        "points: {} people, rule {RULE} ({POINTS} points, no cap); HTTP: 1 and {CLIENTS} clients, {} runs of {:?} (+{:?} warm-up); import: {} awards through the store in {:.1} s ({:.0}/s overall), {} over HTTP in {:.1} s ({:.0}/s overall), medians of {} segments",
        scale.people,
        scale.runs,
        scale.measure,
        scale.warmup,
        store_imported,
        store_time,
        store_imported as f64 / store_time.max(1e-9),
        http_acknowledged,
        http_time,
        http_acknowledged as f64 / http_time.max(1e-9),
        rounds,
    );
    Ok((facts, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_cut_into_batches_and_segments() {
        let s = segments(100_000, 3);
        assert_eq!(s.iter().flatten().sum::<usize>(), 100_000);
        assert_eq!(s.len(), 3);
        assert!(s.iter().flatten().all(|&n| n <= BATCH));
        assert_eq!(s.iter().map(Vec::len).sum::<usize>(), 13);
        let one = segments(10, 5);
        assert_eq!(one, vec![vec![10]]);
        assert!(segments(0, 3).is_empty());
    }

    /// The whole benchmark at toy size: every row comes out, no request fails, and
    /// every acknowledged award is recorded. Times are not checked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tiny_run_produces_every_row() {
        let scale = Scale {
            name: "test",
            runs: 1,
            warmup: Duration::from_millis(50),
            measure: Duration::from_millis(200),
            raw_measure: Duration::from_millis(50),
            import: BATCH + 100,
            http_import: 300,
            segments: 2,
            people: 50,
        };
        let dir = TempDir::new("lianxin-bench-test").unwrap();
        let (_, rows) = run(&dir, &scale).await.unwrap();
        let row = |prefix: &str| {
            rows.iter()
                .find(|r| r.name.starts_with(prefix))
                .unwrap_or_else(|| panic!("no row {prefix}"))
        };
        assert_eq!(row("award requests failed").value, 0.0);
        assert!(row("award requests failed").baseline_value.unwrap() > 0.0);
        assert!(row("acknowledged awards durably recorded").met);
        assert!(row("imported awards recorded").met);
        assert_eq!(row("imported awards recorded").value, (BATCH + 100) as f64);
        assert_eq!(rows.len(), 17);
    }

    #[test]
    fn an_award_is_json() {
        let v: serde_json::Value =
            serde_json::from_str(&award_json("b:1", 7, 3, "2026-11-28T10:00:00Z")).unwrap();
        assert_eq!(v["person_id"], 7);
        assert_eq!(v["rule"], RULE);
    }
}
