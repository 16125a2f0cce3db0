//! TEMPORARY profiling experiments (removed before hand-off).

use super::{intake, open, world};
use anyhow::Result;
use lianxin_domain::pii::PiiKey;
use lianxin_server::desk::{Intake, Submitter};
use lianxin_server::{AppState, Settings};
use lianxin_store::testing::TempDir;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn run(dir: &TempDir) -> Result<()> {
    let which = std::env::var("LIANXIN_BENCH_EXPERIMENT").unwrap_or_default();
    if which.contains("http") {
        let served = open(dir, "e_http.db").await?;
        let w = world::seed(&served).await?;
        let server = intake::Server::start(&served).await?;
        for n in [8, 16, 32, 64, 128] {
            let clients = intake::clients(&server, &w, n).await?;
            let (_c, r) =
                intake::load(clients, Duration::from_secs(1), Duration::from_secs(3)).await;
            eprintln!(
                "E http clients={n}: {:.0}/s p50 {:.1} p99 {:.1} fail {}",
                r.rate, r.p50_ms, r.p99_ms, r.failures
            );
        }
        server.stop();
    }
    if which.contains("get") {
        let served = open(dir, "e_get.db").await?;
        let w = world::seed(&served).await?;
        let server = intake::Server::start(&served).await?;
        for path in ["/healthz", "/api/v1/me"] {
            let clients = intake::clients(&server, &w, 64).await?;
            let (_c, r) = intake::load_get(
                clients,
                path,
                Duration::from_secs(1),
                Duration::from_secs(3),
            )
            .await;
            eprintln!(
                "E GET {path} 64 clients: {:.0}/s p50 {:.1} p99 {:.1} fail {}",
                r.rate, r.p50_ms, r.p99_ms, r.failures
            );
        }
        server.stop();
    }
    if which.contains("ping") {
        use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
        use std::str::FromStr;
        let store = open(dir, "e_ping.db").await?;
        let _w = world::seed(&store).await?;
        let url = format!("sqlite://{}", dir.0.join("e_ping.db").display());
        for test in [true, false] {
            let pool = AnyPoolOptions::new()
                .max_connections(4)
                .test_before_acquire(test)
                .connect_with(AnyConnectOptions::from_str(&url)?)
                .await?;
            let mut n = 0u64;
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(2) {
                let _: Option<i64> = sqlx::query_scalar("SELECT id FROM places WHERE code = $1")
                    .bind("150207.BYXL.C01")
                    .fetch_optional(&pool)
                    .await?;
                n += 1;
            }
            eprintln!(
                "E pool query test_before_acquire={test}: {:.1} us each",
                2e6 / n as f64
            );
            let mut conn = pool.acquire().await?;
            let mut n = 0u64;
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(2) {
                let _: Option<i64> = sqlx::query_scalar("SELECT id FROM places WHERE code = $1")
                    .bind("150207.BYXL.C01")
                    .fetch_optional(&mut *conn)
                    .await?;
                n += 1;
            }
            eprintln!("E held-connection query: {:.1} us each", 2e6 / n as f64);
        }
    }
    if which.contains("desk") {
        let store = open(dir, "e_desk.db").await?;
        let w = world::seed(&store).await?;
        let state = AppState::new(
            store.clone(),
            PiiKey::from_master(&[7; 32]),
            Settings::default(),
        )
        .await?;
        let count = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(3);
        let mut tasks = Vec::new();
        for i in 0..64 {
            let desk = state.desk.clone();
            let count = count.clone();
            let code = w.communities[i % w.communities.len()].code.clone();
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    let r = desk
                        .submit(
                            Intake {
                                kind: "help".into(),
                                category: world::CATEGORY.into(),
                                channel: "web".into(),
                                description: world::DESCRIPTION.into(),
                                place_code: Some(code.clone()),
                                ..Intake::default()
                            },
                            &Submitter {
                                actor: "token:1".into(),
                                name: "x".into(),
                                account_id: None,
                            },
                        )
                        .await;
                    if r.is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        eprintln!(
            "E desk.submit 64 tasks: {:.0}/s",
            count.load(Ordering::Relaxed) as f64 / 3.0
        );
    }
    if which.contains("insert") {
        let store = open(dir, "e_ins.db").await?;
        let w = world::seed(&store).await?;
        let count = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(3);
        let mut tasks = Vec::new();
        let unit = w.units[0].id;
        for i in 0..64 {
            let store = store.clone();
            let count = count.clone();
            let place = w.communities[i % w.communities.len()].clone();
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    if store
                        .insert_demand(world::fresh_demand(&place, unit))
                        .await
                        .is_ok()
                    {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        eprintln!(
            "E store.insert_demand 64 tasks (group commit): {:.0}/s",
            count.load(Ordering::Relaxed) as f64 / 3.0
        );
        let mut reads = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            store.place_by_code("150207.BYXL.C01").await?;
            reads += 1;
        }
        eprintln!("E place_by_code sequential: {:.0}/s", reads as f64 / 2.0);
    }
    if which.contains("dash") {
        use sqlx::Connection;
        let n: usize = std::env::var("E_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000);
        let store = open(dir, "e_dash.db").await?;
        let w = world::seed(&store).await?;
        let now = super::dashboard::fill(&store, &w, n).await?;
        let (from, to) = super::dashboard::period(now);
        let url = format!("sqlite://{}", dir.0.join("e_dash.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await?;
        sqlx::query("PRAGMA case_sensitive_like = ON")
            .execute(&mut c)
            .await?;
        let cells: i64 = sqlx::query_scalar("select count(*) from rate_cells")
            .fetch_one(&mut c)
            .await?;
        eprintln!("E cells: {cells}");
        let sums = "CAST(COALESCE(SUM(r.received), 0) AS BIGINT), CAST(COALESCE(SUM(r.rejected), 0) AS BIGINT), CAST(COALESCE(SUM(r.merged), 0) AS BIGINT), CAST(COALESCE(SUM(r.response_due), 0) AS BIGINT), CAST(COALESCE(SUM(r.responded_in_time), 0) AS BIGINT), CAST(COALESCE(SUM(r.resolution_due), 0) AS BIGINT), CAST(COALESCE(SUM(r.resolved), 0) AS BIGINT), CAST(COALESCE(SUM(r.rated), 0) AS BIGINT), CAST(COALESCE(SUM(r.satisfied), 0) AS BIGINT), CAST(COALESCE(SUM(r.strictly_satisfied), 0) AS BIGINT)";
        let variants = [
            ("store query", format!("SELECT CAST(r.unit_id AS TEXT), o.name, {sums} FROM rate_cells r JOIN orgs o ON o.id = r.unit_id WHERE r.day >= $1 AND r.day <= $2 AND r.place_path LIKE $3 GROUP BY r.unit_id, o.name ORDER BY 1")),
            ("no LIKE", format!("SELECT CAST(r.unit_id AS TEXT), o.name, {sums} FROM rate_cells r JOIN orgs o ON o.id = r.unit_id WHERE r.day >= $1 AND r.day <= $2 AND $3 = $3 GROUP BY r.unit_id, o.name ORDER BY 1")),
            ("no join", format!("SELECT r.unit_id, {sums} FROM rate_cells r WHERE r.day >= $1 AND r.day <= $2 AND r.place_path LIKE $3 GROUP BY r.unit_id")),
            ("not indexed", format!("SELECT CAST(r.unit_id AS TEXT), o.name, {sums} FROM rate_cells r NOT INDEXED JOIN orgs o ON o.id = r.unit_id WHERE r.day >= $1 AND r.day <= $2 AND r.place_path LIKE $3 GROUP BY r.unit_id, o.name ORDER BY 1")),
            ("total", format!("SELECT {sums} FROM rate_cells r WHERE r.day >= $1 AND r.day <= $2 AND r.place_path LIKE $3")),
        ];
        for (name, sql) in &variants {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .bind(from.to_string())
                    .bind(to.to_string())
                    .bind("/%")
                    .fetch_all(&mut c)
                    .await?;
            let mut times = Vec::new();
            for _ in 0..5 {
                let s = Instant::now();
                let _ = sqlx::query(sql)
                    .bind(from.to_string())
                    .bind(to.to_string())
                    .bind("/%")
                    .fetch_all(&mut c)
                    .await?;
                times.push(s.elapsed().as_secs_f64() * 1000.0);
            }
            eprintln!(
                "E {name}: median {:.1} ms  plan: {:?}",
                super::median(&times),
                plan.iter().map(|p| p.3.clone()).collect::<Vec<_>>()
            );
        }
        let mut times = Vec::new();
        for _ in 0..5 {
            let s = Instant::now();
            store
                .rate_counts(
                    from,
                    to,
                    None,
                    None,
                    lianxin_store::demands::RateGroup::Total,
                )
                .await?;
            times.push(s.elapsed().as_secs_f64() * 1000.0);
        }
        eprintln!("E store total: median {:.1} ms", super::median(&times));
    }
    Ok(())
}
