//! `lianxin bench`: measurements of the real thing on this machine, each printed
//! beside the baseline it is judged against. `docs/benchmarks.md` says what each row
//! means and keeps the last measured table.
//!
//! `bench demands` measures (a) demand intake through the HTTP API with 64 concurrent
//! clients on SQLite with durable commits, against the raw durable insert rate of the
//! same settings, and (b) the three-rates dashboard over a year of demands, against a
//! full scan. `bench governance` measures the district dashboard (officials × points ×
//! visits × demands) over a province-sized world against the same view counted from
//! the visits table, and the page that shows it (`GET /governance`) from the real
//! server against the store call it wraps (see `governance.rs`). Everything runs in
//! this process on fresh databases in a temporary folder, removed at the end.
//! Progress goes to stderr, results to stdout.

mod dashboard;
mod gate;
mod gate_http;
mod governance;
mod intake;
mod map;
mod points;
mod world;

use anyhow::Result;
use clap::Subcommand;
use lianxin_store::testing::TempDir;
use lianxin_store::Store;
use serde::Serialize;
use std::time::Duration;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Demand intake over HTTP vs the raw durable insert rate; the three-rates
    /// dashboard vs a full scan.
    Demands {
        /// A shorter run (under a minute): fewer, shorter repetitions, 100,000 demands.
        #[arg(long)]
        quick: bool,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The district dashboard (officials × points × visits × demands) over a
    /// province-sized world vs the same view counted from the visits table, and its
    /// page over HTTP.
    Governance {
        /// A smaller world (about 1/20: 12 districts, 500,000 visits), under a minute.
        #[arg(long)]
        quick: bool,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The rider-friendly map: nearest stations over 1,000,000 against a brute-force
    /// scan, over HTTP, coverage of 1,000,000 points by 10,000 stations against
    /// scipy's cKDTree, and siting of 10 stations.
    Map {
        /// Fewer repetitions and a shorter HTTP run (under a minute).
        #[arg(long)]
        quick: bool,
        /// Also run scipy's cKDTree on the same data (needs python3 with scipy).
        #[arg(long)]
        peer: bool,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Durable awards over HTTP with 1 and 32 clients vs the raw durable insert rate,
    /// and a batch import of 1,000,000 awards vs bare multi-row inserts, each beside
    /// the TigerBeetle 0.17 anchor.
    Points {
        /// A shorter run (under a minute): shorter HTTP runs, 100,000 imported.
        #[arg(long)]
        quick: bool,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The whole gate check in-process against bare Ed25519 verification of the same
    /// two signatures (the physical limit), on every core.
    Gate {
        /// A shorter run: fewer passes and runs.
        #[arg(long)]
        quick: bool,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Demands { quick, json } => {
            let plan = if quick { Plan::QUICK } else { Plan::FULL };
            let dir = TempDir::new("lianxin-bench")?;
            let facts = facts(&dir, plan.name).await?;
            eprintln!("bench: {facts}");
            let rows = demands(&dir, &plan).await?;
            if json {
                let report = Report {
                    bench: "demands",
                    results: &rows,
                };
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{facts}");
                print!("{}", table(&rows));
            }
            Ok(())
        }
        BenchCommand::Gate { quick, json } => {
            let scale = if quick {
                gate::Scale::QUICK
            } else {
                gate::Scale::FULL
            };
            let dir = TempDir::new("lianxin-bench")?;
            let machine = facts(&dir, scale.name).await?;
            eprintln!("bench: {machine}");
            let (facts, mut rows) = gate::run(&scale)?;
            eprintln!("bench: {facts}");
            let full = rows.first().map_or(0.0, |r| r.value);
            let http = gate_http::run(&dir, &scale.http).await?;
            rows.extend(gate_rows(&http, full));
            if json {
                let report = Report {
                    bench: "gate",
                    results: &rows,
                };
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{machine}");
                println!(
                    "{facts}; HTTP: {} gates, {} runs of {:?} (+{:?} warm-up), {} tickets",
                    gate_http::GATES,
                    scale.http.runs,
                    scale.http.measure,
                    scale.http.warmup,
                    http.tickets
                );
                print!("{}", table(&rows));
            }
            Ok(())
        }
        BenchCommand::Map { quick, peer, json } => {
            let scale = if quick {
                map::Scale::QUICK
            } else {
                map::Scale::FULL
            };
            let dir = TempDir::new("lianxin-bench")?;
            let machine = facts(&dir, scale.name).await?;
            eprintln!("bench: {machine}");
            let (facts, rows) = map::run(&dir, &scale, peer).await?;
            if json {
                let report = Report {
                    bench: "map",
                    results: &rows,
                };
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{machine}");
                println!("{facts}");
                print!("{}", table(&rows));
            }
            Ok(())
        }
        BenchCommand::Points { quick, json } => {
            let scale = if quick {
                points::Scale::QUICK
            } else {
                points::Scale::FULL
            };
            let dir = TempDir::new("lianxin-bench")?;
            let machine = facts(&dir, scale.name).await?;
            eprintln!("bench: {machine}");
            let (facts, rows) = points::run(&dir, &scale).await?;
            eprintln!("bench: {facts}");
            if json {
                let report = Report {
                    bench: "points",
                    results: &rows,
                };
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{machine}");
                println!("{facts}");
                print!("{}", table(&rows));
            }
            Ok(())
        }
        BenchCommand::Governance { quick, json } => {
            let scale = if quick {
                governance::Scale::QUICK
            } else {
                governance::Scale::FULL
            };
            let dir = TempDir::new("lianxin-bench")?;
            let facts = facts(&dir, scale.name).await?;
            eprintln!("bench: {facts}");
            let (world, rows) = governance::run(&dir, &scale).await?;
            eprintln!("bench: {world}");
            if json {
                let report = Report {
                    bench: "governance",
                    results: &rows,
                };
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{facts}");
                println!("{world}");
                print!("{}", table(&rows));
            }
            Ok(())
        }
    }
}

/// How long and how often each thing is measured.
struct Plan {
    name: &'static str,
    clients: usize,
    runs: usize,
    warmup: Duration,
    measure: Duration,
    limit_measure: Duration,
    single_measure: Duration,
    demands: usize,
    query_runs: usize,
    scan_runs: usize,
}

impl Plan {
    const FULL: Plan = Plan {
        name: "full",
        clients: 64,
        runs: 3,
        warmup: Duration::from_secs(1),
        measure: Duration::from_secs(10),
        limit_measure: Duration::from_secs(4),
        single_measure: Duration::from_secs(2),
        demands: 1_000_000,
        query_runs: 7,
        scan_runs: 3,
    };
    const QUICK: Plan = Plan {
        name: "quick",
        clients: 64,
        runs: 2,
        warmup: Duration::from_secs(1),
        measure: Duration::from_secs(3),
        limit_measure: Duration::from_millis(1500),
        single_measure: Duration::from_secs(1),
        demands: 100_000,
        query_runs: 5,
        scan_runs: 1,
    };
}

/// The JSON output: a struct rather than a map, so the keys keep this order.
#[derive(Serialize)]
struct Report<'a> {
    bench: &'static str,
    results: &'a [Row],
}

/// One measured row; the JSON output is a list of these, the table shows the same.
#[derive(Debug, Clone, Serialize)]
struct Row {
    name: String,
    value: f64,
    unit: &'static str,
    baseline_name: Option<String>,
    baseline_value: Option<f64>,
    /// `value / baseline_value`.
    ratio: Option<f64>,
    target: String,
    met: bool,
}

impl Row {
    fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            name: name.into(),
            value: round(value),
            unit,
            baseline_name: None,
            baseline_value: None,
            ratio: None,
            target: "(reported)".into(),
            met: true,
        }
    }

    fn against(mut self, name: impl Into<String>, value: f64) -> Row {
        self.baseline_name = Some(name.into());
        self.baseline_value = Some(round(value));
        self.ratio = (value > 0.0).then(|| round_ratio(self.value / value));
        self
    }

    fn target(mut self, target: impl Into<String>, met: bool) -> Row {
        self.target = target.into();
        self.met = met;
        self
    }
}

/// Three significant decimals are more than any of these measurements can carry.
fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn round_ratio(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The line that says what the numbers were measured on.
async fn facts(dir: &TempDir, run: &str) -> Result<String> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await?;
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    Ok(format!(
        "machine: {cores} cores, {} {}, SQLite {version} (WAL, synchronous=FULL), data in {}; {} run, {}",
        std::env::consts::OS,
        std::env::consts::ARCH,
        dir.0.display(),
        run,
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
    ))
}

async fn open(dir: &TempDir, file: &str) -> Result<Store> {
    Ok(Store::open(&format!("sqlite://{}", dir.0.join(file).display())).await?)
}

async fn demands(dir: &TempDir, plan: &Plan) -> Result<Vec<Row>> {
    let mut rows = intake_rows(dir, plan).await?;
    rows.extend(dashboard_rows(dir, plan).await?);
    Ok(rows)
}

/// Part (a). The HTTP runs and the raw-insert runs alternate, so a slow patch of a
/// noisy machine lands on both sides rather than on one.
async fn intake_rows(dir: &TempDir, plan: &Plan) -> Result<Vec<Row>> {
    let served = open(dir, "bench.db").await?;
    let served_world = world::seed(&served).await?;
    let server = intake::Server::start(&served).await?;
    let raw = open(dir, "limit.db").await?;
    let raw_world = world::seed(&raw).await?;

    let mut clients = intake::clients(&server, &served_world, plan.clients).await?;
    if let Some(first) = clients.first_mut() {
        first.probe().await?;
    }
    let (mut http, mut limit, mut single) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=plan.runs {
        eprintln!(
            "bench: (a) run {run}/{}: {} clients over HTTP for {:?}",
            plan.runs, plan.clients, plan.measure
        );
        let (back, r) = intake::load(clients, plan.warmup, plan.measure).await;
        clients = back;
        eprintln!(
            "bench:   {:.0} demands/s, p50 {:.1} ms, p99 {:.1} ms, {} failed",
            r.rate, r.p50_ms, r.p99_ms, r.failures
        );
        if let Some(why) = &r.first_failure {
            eprintln!("bench:   first failure: {why}");
        }
        http.push(r);
        eprintln!("bench: (a) run {run}/{}: raw durable inserts", plan.runs);
        let l = intake::insert_rate(&raw, &raw_world, 128, plan.limit_measure).await?;
        let s = intake::insert_rate(&raw, &raw_world, 1, plan.single_measure).await?;
        eprintln!("bench:   {l:.0} rows/s at 128 per commit, {s:.0} rows/s at 1 per commit");
        limit.push(l);
        single.push(s);
    }
    drop(clients);
    server.stop();
    served.close().await;
    raw.close().await;

    let rate = median(&http.iter().map(|r| r.rate).collect::<Vec<_>>());
    let p50 = median(&http.iter().map(|r| r.p50_ms).collect::<Vec<_>>());
    let p99 = median(&http.iter().map(|r| r.p99_ms).collect::<Vec<_>>());
    let failures: u64 = http.iter().map(|r| r.failures).sum();
    let created: u64 = http.iter().map(|r| r.created).sum();
    let limit = median(&limit);
    let single = median(&single);
    let limit_name = "raw insert, 128 per commit";
    let met = failures == 0 && rate >= 5000.0 && rate >= 0.5 * limit;
    Ok(vec![
        Row::new(
            format!("intake over HTTP, {} clients", plan.clients),
            rate,
            "demands/s",
        )
        .against(limit_name, limit)
        .target(">= 5000/s and >= 50% of limit, 0 failed", met),
        Row::new("intake p50 latency", p50, "ms"),
        Row::new("intake p99 latency", p99, "ms"),
        Row::new("intake requests failed", failures as f64, "requests")
            .against("requests created", created as f64)
            .target("0", failures == 0),
        Row::new(limit_name, limit, "demands/s"),
        Row::new("raw insert, 1 per commit", single, "demands/s").against(limit_name, limit),
    ])
}

/// The HTTP rows of `bench gate`, against the in-process full-check rate `full`.
fn gate_rows(http: &gate_http::HttpResult, full: f64) -> Vec<Row> {
    let rate = median(&http.runs.iter().map(|r| r.rate).collect::<Vec<_>>());
    let p50 = median(&http.runs.iter().map(|r| r.p50_ms).collect::<Vec<_>>());
    let p99 = median(&http.runs.iter().map(|r| r.p99_ms).collect::<Vec<_>>());
    let failures: u64 = http.runs.iter().map(|r| r.failures).sum();
    let accepted: u64 = http.runs.iter().map(|r| r.accepted).sum();
    let name = format!("gate scans over HTTP, {} gates", gate_http::GATES);
    let mut rows = vec![
        Row::new(name.clone(), rate, "scans/s")
            .against("full gate check, in-process", full)
            .target(
                ">= 40% of in-process, 0 failed",
                failures == 0 && rate >= 0.4 * full,
            ),
        Row::new(name, rate, "scans/s")
            .against("absolute target", 5000.0)
            .target(">= 5000/s", rate >= 5000.0),
        Row::new("gate scan p50 latency", p50, "ms"),
        Row::new(
            format!("gate scan p99 latency, {} gates flat out", gate_http::GATES),
            p99,
            "ms",
        )
        .target("< 10 ms", p99 < 10.0),
        Row::new("gate scans failed", failures as f64, "scans")
            .against("scans accepted", accepted as f64)
            .target("0", failures == 0),
    ];
    if let Some(p) = &http.paced {
        rows.push(
            Row::new(
                format!(
                    "gate scan p99 latency, paced at {:.0} scans/s (half load)",
                    p.rate
                ),
                p.p99_ms,
                "ms",
            )
            .target("< 10 ms, 0 failed", p.p99_ms < 10.0 && p.failures == 0),
        );
    }
    rows.push(
        Row::new("accepted scans durably logged", http.logged as f64, "scans")
            .against("scans accepted, all runs", http.accepted_total as f64)
            .target("all", http.logged == http.accepted_total),
    );
    rows
}

/// Part (b).
async fn dashboard_rows(dir: &TempDir, plan: &Plan) -> Result<Vec<Row>> {
    let store = open(dir, "dashboard.db").await?;
    let w = world::seed(&store).await?;
    eprintln!("bench: (b) storing {} demands", plan.demands);
    let fill_start = std::time::Instant::now();
    let now = dashboard::fill(&store, &w, plan.demands).await?;
    eprintln!(
        "bench:   stored in {:.1} s; timing the dashboard query",
        fill_start.elapsed().as_secs_f64()
    );
    let (cells, cells_received) = dashboard::time_cells(&store, now, plan.query_runs).await?;
    eprintln!("bench:   timing the full scan");
    let (scan, scan_received) = dashboard::time_scan(&store, now, plan.scan_runs).await?;
    store.close().await;
    let cell_count = dashboard::cells_in_period(&dir.0.join("dashboard.db"), now).await?;

    let cells = median(&cells);
    let scan = median(&scan);
    Ok(vec![
        Row::new(
            format!("3 rates by unit, {} demands", plan.demands),
            cells,
            "ms",
        )
        .against("full scan", scan)
        .target("< 50 ms", cells < 50.0),
        Row::new("rate cells summed", cell_count as f64, "cells"),
        Row::new(
            if cells_received == scan_received {
                "received: cells vs scan"
            } else {
                "WARNING received: cells and scan disagree"
            },
            cells_received as f64,
            "demands",
        )
        .against("full scan", scan_received as f64)
        .target("equal", cells_received == scan_received),
    ])
}

/// The rows as an aligned table with a header.
fn table(rows: &[Row]) -> String {
    let header = [
        "name",
        "value",
        "unit",
        "baseline_name",
        "baseline_value",
        "ratio",
        "target",
        "met",
    ]
    .map(String::from);
    let opt = |v: Option<f64>| v.map(number).unwrap_or_else(|| "-".into());
    let cells: Vec<[String; 8]> = std::iter::once(header)
        .chain(rows.iter().map(|r| {
            [
                r.name.clone(),
                number(r.value),
                r.unit.to_string(),
                r.baseline_name.clone().unwrap_or_else(|| "-".into()),
                opt(r.baseline_value),
                opt(r.ratio),
                r.target.clone(),
                if r.met { "yes" } else { "NO" }.into(),
            ]
        }))
        .collect();
    let mut widths = [0usize; 8];
    for line in &cells {
        for (w, c) in widths.iter_mut().zip(line) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for line in &cells {
        let text: Vec<String> = line
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = " ".repeat(w - c.chars().count());
                // Numbers read best right-aligned.
                if matches!(i, 1 | 4 | 5) {
                    format!("{pad}{c}")
                } else {
                    format!("{c}{pad}")
                }
            })
            .collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A number as the table shows it: whole above 100, else up to three decimals.
fn number(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn rows_carry_their_ratio_and_verdict() {
        let r = Row::new("x", 6000.0, "demands/s")
            .against("limit", 10_000.0)
            .target(">= 50%", true);
        assert_eq!(r.ratio, Some(0.6));
        let json = serde_json::to_string(&Report {
            bench: "demands",
            results: &[r],
        })
        .unwrap();
        assert!(json.starts_with(r#"{"bench":"demands","results":[{"name":"x","#));
        // The keys come in the documented order.
        let at = |k: &str| json.find(&format!("\"{k}\":")).unwrap();
        let keys = [
            "name",
            "value",
            "unit",
            "baseline_name",
            "baseline_value",
            "ratio",
            "target",
            "met",
        ];
        assert!(keys.windows(2).all(|w| at(w[0]) < at(w[1])), "{json}");
        assert_eq!(Row::new("y", 1.0, "ms").against("zero", 0.0).ratio, None);
    }

    #[test]
    fn the_table_aligns_columns() {
        let rows = [
            Row::new("a", 1234.0, "demands/s"),
            Row::new("longer name", 0.5, "ms").against("scan", 2000.0),
        ];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = |l: &str| l.find("demands/s").or_else(|| l.find("ms "));
        assert_eq!(col(lines[1]), col(lines[2]));
        assert_eq!(number(1234.4), "1234");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(2.0), "2");
    }

    /// The whole benchmark at toy size: every row comes out, no request fails, and
    /// the cells agree with the scan. Times are not checked.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tiny_run_produces_every_row() {
        let plan = Plan {
            name: "test",
            clients: 4,
            runs: 1,
            warmup: Duration::from_millis(100),
            measure: Duration::from_millis(300),
            limit_measure: Duration::from_millis(200),
            single_measure: Duration::from_millis(100),
            demands: 2_000,
            query_runs: 1,
            scan_runs: 1,
        };
        let dir = TempDir::new("lianxin-bench-test").unwrap();
        let rows = demands(&dir, &plan).await.unwrap();
        let row = |prefix: &str| {
            rows.iter()
                .find(|r| r.name.starts_with(prefix))
                .unwrap_or_else(|| panic!("no row {prefix}"))
        };
        assert_eq!(row("intake requests failed").value, 0.0);
        assert!(row("intake requests failed").baseline_value.unwrap() > 0.0);
        assert!(row("raw insert, 128").value > 0.0);
        assert!(row("3 rates by unit").baseline_value.is_some());
        let check = row("received: cells");
        assert!(check.met);
        assert_eq!(check.value, 2_000.0);
        assert_eq!(rows.len(), 9);
    }
}
