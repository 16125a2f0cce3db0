//! Running the server: logging, start-up, graceful shutdown.

use crate::config::Config;
use anyhow::{Context, Result};
use lianxin_server::{router, AppState, Settings};
use lianxin_store::Store;
use std::net::SocketAddr;
use std::time::Instant;

pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{},sqlx=warn", config.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub async fn run(config: Config, demo: bool) -> Result<()> {
    let started = Instant::now();
    eprintln!(
        "lianxin {} starting with:\n{}",
        env!("CARGO_PKG_VERSION"),
        indent(&config.describe())
    );
    let store = Store::open(&config.database_url)
        .await
        .context("opening the database")?;
    let key = crate::secret_key(&config, true)?;
    if demo {
        crate::demo::ensure_loaded(&store, &key).await?;
    }
    let settings = Settings {
        secure_cookies: config.secure_cookies(),
        trust_proxy: config.trust_proxy,
        session_hours: config.session_hours,
        demo,
        map_tile_url: config.map_tile_url.clone(),
        map_tile_attribution: config.map_tile_attribution.clone(),
        ..Settings::default()
    };
    let state = AppState::new(store.clone(), key, settings)
        .await
        .context("reading the demand loop's rules")?;
    let demo_keys = if demo {
        let key = crate::demo::demands::ensure_loaded(&state).await?;
        crate::demo::contact::ensure_visits(&state).await?;
        let gate = crate::demo::gate::ensure_loaded(&state)
            .await
            .context("loading the demo's rider gate pass")?;
        crate::demo::map::ensure_loaded(&state)
            .await
            .context("loading the demo's rider-friendly map")?;
        crate::demo::points::ensure_loaded(&state)
            .await
            .context("loading the demo's points for riders and couriers")?;
        Some((key, gate))
    } else {
        None
    };
    let scheduler = lianxin_server::scheduler::spawn(state.desk.clone());
    let map_watch = watch_map(state.clone());
    let points_sweeper = lianxin_server::api::points::spawn_sweeper(state.clone());
    let app = router(state);
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "Lianxin is ready at http://{addr}/  (started in {} ms)",
        started.elapsed().as_millis()
    );
    if demo {
        println!(
            "Demo logins (password for all: {}):",
            crate::demo::DEMO_PASSWORD
        );
        for l in crate::demo::DEMO_LOGINS {
            println!(
                "  {:<12} {:<17} {}",
                l.username,
                l.role.as_str(),
                l.scope_label
            );
        }
    }
    if let Some((key, gate)) = demo_keys {
        println!("Open311 GeoReport v2: http://{addr}/open311/v2/discovery.json  api_key={key}");
        println!(
            "Gate pass: platform meituan token={}\n  gate box: lianxin gate --server http://{addr} --token {} --compound {} --data gate-box",
            gate.platform_token, gate.box_token, gate.compound_id
        );
    }
    tracing::info!(%addr, engine = store.engine().as_str(), "listening");
    // Expired sessions are swept hourly.
    let sweeper_store = store.clone();
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            if let Err(e) = sweeper_store.purge_expired_sessions().await {
                tracing::warn!(error = %e, "session sweep failed");
            }
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    sweeper.abort();
    map_watch.abort();
    points_sweeper.abort();
    scheduler.abort();
    // In-flight requests have finished; every acknowledged write is committed.
    store.close().await;
    eprintln!("lianxin stopped cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

/// Reloads the map index when another process (an import, another server) changed
/// the map: it bumps the `map_version` meta value, checked every 30 seconds.
fn watch_map(state: lianxin_server::AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let key = crate::import_map::MAP_VERSION;
        let mut seen = state.store.meta_get(key).await.ok().flatten();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tick.tick().await;
            let now = match state.store.meta_get(key).await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the map version failed");
                    continue;
                }
            };
            if now != seen {
                match state.map.reload(&state.store).await {
                    Ok(()) => {
                        tracing::info!("the map changed; its index was reloaded");
                        seen = now;
                    }
                    Err(e) => tracing::warn!(error = %e, "reloading the map failed"),
                }
            }
        }
    })
}
