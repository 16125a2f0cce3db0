//! Lianxin's HTTP side.
//!
//! One axum router serves the JSON API under `/api/v1` ([`api`]), the server-rendered
//! web pages ([`web`]), embedded static assets, health checks and metrics. Handlers
//! are thin: parse and validate input into domain types, check the caller's role and
//! data scope, call the store, render. Business rules live in `lianxin-domain`; SQL
//! lives in `lianxin-store`.

pub mod api;
pub mod auth;
mod chart;
pub mod desk;
pub mod error;
pub mod export;
pub mod extract;
pub mod i18n;
pub mod idempotency;
pub mod map_index;
pub mod map_plan;
pub mod metrics;
pub mod open311;
pub mod scheduler;
pub mod web;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use error::ApiError;
use lianxin_domain::pii::PiiKey;
use lianxin_store::Store;
use std::sync::Arc;

/// Settings the HTTP layer needs (the binary maps its configuration onto this).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Mark cookies `Secure` (the site is served over TLS).
    pub secure_cookies: bool,
    /// Trust `X-Forwarded-For` / `X-Forwarded-Proto` from a reverse proxy.
    pub trust_proxy: bool,
    pub session_hours: i64,
    pub max_body_bytes: usize,
    /// Show the demo-password hint on the login page.
    pub demo: bool,
    /// The map page's tile layer, if the deployment has a tile server.
    pub map_tile_url: Option<String>,
    pub map_tile_attribution: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            secure_cookies: false,
            trust_proxy: false,
            session_hours: 12,
            max_body_bytes: 1024 * 1024,
            demo: false,
            map_tile_url: None,
            map_tile_attribution: None,
        }
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub pii: PiiKey,
    pub settings: Arc<Settings>,
    pub limiter: Arc<auth::LoginLimiter>,
    pub metrics: Arc<metrics::Metrics>,
    pub pages: Arc<web::Pages>,
    /// The demand loop (shared with the scheduler).
    pub desk: Arc<desk::DemandDesk>,
    /// The online gate scan's trust list and gate devices (`api::gate`).
    pub gate: Arc<api::gate::GateCache>,
    /// The rider-friendly map, in memory (`map_index`).
    pub map: Arc<map_index::MapCache>,
    /// The points scheme's known ids and the automatic awards' wake-up (`api::points`).
    pub rewards: Arc<api::points::RewardsCache>,
}

impl AppState {
    /// Builds the state and reads the loop's rules (routing, time limits, calendars).
    pub async fn new(
        store: Store,
        pii: PiiKey,
        settings: Settings,
    ) -> Result<AppState, lianxin_store::StoreError> {
        let desk = Arc::new(desk::DemandDesk::new(store.clone(), pii.clone()));
        desk.reload().await?;
        let map = Arc::new(map_index::MapCache::default());
        map.reload(&store).await?;
        Ok(AppState {
            map,
            rewards: Arc::default(),
            desk,
            store,
            pii,
            settings: Arc::new(settings),
            limiter: Arc::default(),
            metrics: Arc::default(),
            pages: Arc::new(web::Pages::new()),
            gate: Arc::default(),
        })
    }
}

/// The whole application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/api/v1", api::routes())
        .nest("/open311/v2", open311::routes())
        .merge(web::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/assets/{file}", get(web::asset))
        .route("/assets/vendor/{file}", get(web::vendor_asset))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .with_state(state)
}

async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::error!(error = %e, "database not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

async fn metrics_text(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

fn is_api(req: &Request) -> bool {
    req.uri().path().starts_with("/api/")
}

async fn fallback(state: axum::extract::State<AppState>, req: Request) -> Response {
    if is_api(&req) {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_route", "no such endpoint").into_response()
    } else {
        web::error_page(&state, req.headers(), StatusCode::NOT_FOUND)
    }
}

/// A known path with the wrong method: JSON for API clients and browsers alike,
/// since browsers only ever send GET and POST to pages that accept them.
async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
    .into_response()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    ApiError::internal().into_response()
}
