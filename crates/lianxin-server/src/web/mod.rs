//! The server-rendered web pages.
//!
//! Chinese first, English by a switch (a cookie); every page works on a phone and
//! without JavaScript. Templates and the stylesheet are compiled into the binary, so
//! the app needs nothing from the internet. Pages use the same scope-filtered store
//! calls as the API: a record outside the account's scope is a 404 page here too.

mod community;
mod contact;
mod demands;
mod gate;
mod map;
mod rewards;
mod tiers;

use crate::api::registry_today as today;
use crate::auth::{self, Caller, LANG_COOKIE, PRELOGIN_COOKIE, SESSION_COOKIE};
use crate::chart::bar_chart;
use crate::error::ApiError;
use crate::extract::{form_pairs, Id, QueryParams};
use crate::i18n::{self, Lang};
use crate::AppState;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use lianxin_domain::person::PhoneNumber;
use lianxin_domain::pii::random_token;
use lianxin_domain::place::PlaceLevel;
use lianxin_domain::relation::RelationKind;
use lianxin_domain::role::Permission;
use minijinja::{context, Environment, Value};
use serde::Deserialize;
use std::net::SocketAddr;

/// The compiled templates.
pub struct Pages {
    env: Environment<'static>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("home.html", include_str!("../../templates/home.html")),
    ("places.html", include_str!("../../templates/places.html")),
    ("place.html", include_str!("../../templates/place.html")),
    ("orgs.html", include_str!("../../templates/orgs.html")),
    ("org.html", include_str!("../../templates/org.html")),
    ("people.html", include_str!("../../templates/people.html")),
    ("person.html", include_str!("../../templates/person.html")),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "demand_steps.html",
        include_str!("../../templates/demand_steps.html"),
    ),
    (
        "demand_badges.html",
        include_str!("../../templates/demand_badges.html"),
    ),
    ("clock.html", include_str!("../../templates/clock.html")),
    (
        "clock_script.html",
        include_str!("../../templates/clock_script.html"),
    ),
    ("submit.html", include_str!("../../templates/submit.html")),
    ("repair.html", include_str!("../../templates/repair.html")),
    ("track.html", include_str!("../../templates/track.html")),
    (
        "my_demands.html",
        include_str!("../../templates/my_demands.html"),
    ),
    ("queue.html", include_str!("../../templates/queue.html")),
    ("demand.html", include_str!("../../templates/demand.html")),
    ("phone.html", include_str!("../../templates/phone.html")),
    (
        "rating_form.html",
        include_str!("../../templates/rating_form.html"),
    ),
    ("rates.html", include_str!("../../templates/rates.html")),
    (
        "loop_admin.html",
        include_str!("../../templates/loop_admin.html"),
    ),
];

impl Pages {
    pub fn new() -> Pages {
        let mut env = Environment::new();
        let areas = [
            contact::TEMPLATES,
            community::TEMPLATES,
            tiers::TEMPLATES,
            gate::TEMPLATES,
            map::TEMPLATES,
            rewards::TEMPLATES,
        ];
        for (name, src) in TEMPLATES.iter().chain(areas.into_iter().flatten()) {
            env.add_template(name, src)
                .expect("templates are checked by the tests");
        }
        Pages { env }
    }
}

impl Default for Pages {
    fn default() -> Self {
        Pages::new()
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/lang", get(switch_lang))
        .route("/places", get(places))
        .route("/places/{id}", get(place))
        .route("/orgs", get(orgs))
        .route("/orgs/{id}", get(org))
        .route("/people", get(people))
        .route("/people/lookup", post(people_lookup))
        .route("/people/{id}", get(person))
        .merge(demands::routes())
        .merge(contact::routes())
        .merge(community::routes())
        .merge(tiers::routes())
        .merge(gate::routes())
        .merge(map::routes())
        .merge(rewards::routes())
}

/// The embedded static files: (path under /assets/, content type, bytes). The
/// vendored scripts are copied from npm by scripts/vendor-js.sh (see
/// assets/vendor/README.md); nothing is fetched at run time.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/app.css"),
    ),
    (
        "pass.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/pass.js"),
    ),
    (
        "gate.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/gate.js"),
    ),
    (
        "vendor/qrcode.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/vendor/qrcode.js"),
    ),
    (
        "vendor/jsQR.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/vendor/jsQR.js"),
    ),
    (
        "map.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/map.js"),
    ),
    (
        "mall.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/mall.js"),
    ),
    (
        "vendor/leaflet.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/vendor/leaflet.js"),
    ),
    (
        "vendor/leaflet.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/vendor/leaflet.css"),
    ),
];

fn asset_response(path: &str) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such asset").into_response(),
    }
}

pub async fn asset(Path(file): Path<String>) -> Response {
    asset_response(&file)
}

pub async fn vendor_asset(Path(file): Path<String>) -> Response {
    asset_response(&format!("vendor/{file}"))
}

/// Whether cookies get the `Secure` flag: the site is configured as HTTPS, or a
/// trusted reverse proxy says this request came over TLS.
fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.settings.secure_cookies
        || (state.settings.trust_proxy
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                == Some("https"))
}

/// Adds a cookie with the platform's policy (see [`auth::set_cookie`]).
fn add_cookie(
    state: &AppState,
    headers: &HeaderMap,
    resp: &mut Response,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) {
    if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(
        name,
        value,
        max_age,
        secure(state, headers),
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn lang_of(headers: &HeaderMap) -> Lang {
    Lang::from_cookie(auth::cookie(headers, LANG_COOKIE).as_deref())
}

/// Context shared by every page: language, texts, the signed-in user, CSRF token.
struct Frame {
    lang: Lang,
    here: String,
    user: Option<Value>,
    csrf: String,
}

impl Frame {
    fn new(state: &AppState, headers: &HeaderMap, here: &str, caller: Option<&Caller>) -> Frame {
        let lang = lang_of(headers);
        let user = caller.map(|c| {
            let role = c.account.role;
            context! {
                display_name => c.account.display_name.clone(),
                username => c.account.username.clone(),
                role_label => if lang == Lang::Zh { role.label_zh() } else { role.label_en() },
                registry => role.allows(Permission::ReadRegistry),
                demands => role.allows(Permission::ReadDemands),
                manage_loop => role.allows(Permission::ManageLoop),
                governance => role.allows(Permission::ReadGovernance),
                record_visits => role.allows(Permission::RecordVisits),
                manage_community => role.allows(Permission::ManageCommunity),
                manage_governance => role.allows(Permission::ManageGovernance),
                gate_log => role.allows(Permission::ReadGateLog),
                rewards_desk => role.allows(Permission::ReadRewards),
                rider => role == lianxin_domain::role::Role::Rider,
                gate_device => role == lianxin_domain::role::Role::GateDevice,
                // A gate device is a machine: it raises no demands.
                submit => role != lianxin_domain::role::Role::GateDevice,
            }
        });
        Frame {
            lang,
            here: here.to_string(),
            user,
            csrf: caller
                .and_then(|c| c.csrf_token(&state.pii))
                .unwrap_or_default(),
        }
    }

    fn render(&self, state: &AppState, template: &str, page: Value) -> Response {
        let base = context! {
            lang => self.lang.code(),
            html_lang => self.lang.html_lang(),
            t => i18n::table(self.lang),
            here => self.here.clone(),
            user => self.user.clone(),
            csrf => self.csrf.clone(),
        };
        let ctx = context! { ..page, ..base };
        match state
            .pages
            .env
            .get_template(template)
            .and_then(|t| t.render(ctx))
        {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(error = %e, template, "template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
            }
        }
    }
}

/// An error as a page, in the visitor's language.
pub fn error_page(state: &AppState, headers: &HeaderMap, status: StatusCode) -> Response {
    let frame = Frame::new(state, headers, "/", None);
    page_error(state, &frame, status)
}

fn page_error(state: &AppState, frame: &Frame, status: StatusCode) -> Response {
    let t = i18n::table(frame.lang);
    let message = match status {
        StatusCode::FORBIDDEN => t["error_403"],
        StatusCode::NOT_FOUND => t["error_404"],
        _ => t["error"],
    };
    let mut resp = frame.render(
        state,
        "error.html",
        context! { status => status.as_u16(), message },
    );
    *resp.status_mut() = status;
    resp
}

/// Converts an API error on a page into the matching error page.
fn fail(state: &AppState, frame: &Frame, e: ApiError) -> Response {
    page_error(state, frame, e.status)
}

/// The signed-in caller of a page, or a redirect to the login page.
async fn page_caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, Response> {
    // Pages use sessions only; bearer tokens are for the API.
    let mut h = headers.clone();
    h.remove(header::AUTHORIZATION);
    match auth::resolve(state, &h).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(Redirect::to("/login").into_response()),
        Err(e) => Err(e.into_response()),
    }
}

/// The signed-in caller of a page who is allowed `permission`, with the page's frame:
/// the login page for a visitor, the 403 page for a role without it.
async fn permitted_caller(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
    permission: Permission,
) -> Result<(Caller, Frame), Response> {
    let caller = page_caller(state, headers).await?;
    let frame = Frame::new(state, headers, here, Some(&caller));
    if !caller.role().allows(permission) {
        return Err(page_error(state, &frame, StatusCode::FORBIDDEN));
    }
    Ok((caller, frame))
}

/// An urlencoded form of at most `limit` bytes, posted by a caller allowed
/// `permission`, once the session's CSRF token is checked.
async fn posted_form(
    state: &AppState,
    req: Request,
    here: &str,
    permission: Permission,
    limit: usize,
) -> Result<(Caller, Frame, Vec<(String, String)>), Response> {
    let headers = req.headers().clone();
    let (caller, frame) = permitted_caller(state, &headers, here, permission).await?;
    let Some(form) = read_form(req, limit).await else {
        return Err(page_error(state, &frame, StatusCode::BAD_REQUEST));
    };
    if frame.csrf.is_empty() || !auth::same(field(&form, "csrf"), &frame.csrf) {
        return Err(page_error(state, &frame, StatusCode::FORBIDDEN));
    }
    Ok((caller, frame, form))
}

/// A registry page's caller: signed in and allowed to read the registry.
async fn registry_caller(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
) -> Result<(Caller, Frame), Response> {
    let caller = page_caller(state, headers).await?;
    let frame = Frame::new(state, headers, here, Some(&caller));
    if !caller.account.role.allows(Permission::ReadRegistry) {
        return Err(page_error(state, &frame, StatusCode::FORBIDDEN));
    }
    Ok((caller, frame))
}

fn level_label(lang: Lang, level: PlaceLevel) -> &'static str {
    if lang == Lang::Zh {
        level.label_zh()
    } else {
        level.label_en()
    }
}

fn scope_label(lang: Lang, c: &Caller) -> String {
    let t = i18n::table(lang);
    match (&c.account.scope_place_name, &c.account.scope_org_name) {
        (Some(p), Some(o)) => format!("{p} · {o}"),
        (Some(p), None) => p.clone(),
        (None, Some(o)) => o.clone(),
        (None, None) => t["scope_all"].to_string(),
    }
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let caller = match page_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let frame = Frame::new(&state, &headers, "/", Some(&caller));
    let t = i18n::table(frame.lang);
    let scope = scope_label(frame.lang, &caller);
    if !caller.account.role.allows(Permission::ReadRegistry) {
        return frame.render(&state, "home.html", context! { scope_label => scope });
    }
    let stats = match state.store.registry_stats(&caller.account.scope).await {
        Ok(s) => s,
        Err(e) => return fail(&state, &frame, e.into()),
    };
    let count = |level: PlaceLevel| {
        stats
            .places_by_level
            .iter()
            .find(|(l, _)| l == level.as_str())
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    let places: i64 = stats.places_by_level.iter().map(|(_, n)| n).sum();
    let cards = vec![
        context! { label => t["stat_places"], value => places },
        context! { label => t["stat_orgs"], value => stats.orgs },
        context! { label => t["stat_people"], value => stats.people },
        context! { label => t["stat_party_members"], value => stats.party_members },
        context! { label => t["stat_grids"], value => count(PlaceLevel::Grid) },
        context! { label => t["stat_households"], value => count(PlaceLevel::Household) },
    ];
    let bars: Vec<(String, i64)> = stats
        .people_by_city
        .iter()
        .map(|(code, name, n)| {
            (
                if name.is_empty() {
                    code.clone()
                } else {
                    name.clone()
                },
                *n,
            )
        })
        .collect();
    let chart = Value::from_safe_string(bar_chart(t["chart_people_by_city"], &bars));
    frame.render(
        &state,
        "home.html",
        context! { stats => cards, chart, scope_label => scope },
    )
}

async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    render_login(&state, &headers, None, "", StatusCode::OK)
}

fn render_login(
    state: &AppState,
    headers: &HeaderMap,
    error: Option<&str>,
    username: &str,
    status: StatusCode,
) -> Response {
    // The login form's CSRF token is bound to a random pre-login cookie.
    let pre = auth::cookie(headers, PRELOGIN_COOKIE)
        .filter(|v| v.len() >= 16 && v.len() <= 64)
        .unwrap_or_else(|| random_token("", 18));
    let mut frame = Frame::new(state, headers, "/login", None);
    frame.csrf = auth::csrf_for(&state.pii, "login", &pre);
    let mut resp = frame.render(
        state,
        "login.html",
        context! { error, username, demo => state.settings.demo },
    );
    *resp.status_mut() = status;
    add_cookie(state, headers, &mut resp, PRELOGIN_COOKIE, &pre, Some(3600));
    resp
}

fn client_addr(state: &AppState, req: &Request) -> Option<std::net::IpAddr> {
    if state.settings.trust_proxy {
        if let Some(ip) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
        {
            return Some(ip);
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Reads a urlencoded form body; `None` if it is unreadable or too large.
async fn read_form(req: Request, limit: usize) -> Option<Vec<(String, String)>> {
    let body = axum::body::to_bytes(req.into_body(), limit).await.ok()?;
    Some(form_pairs(&body))
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

async fn login(State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let addr = client_addr(&state, &req);
    let Some(form) = read_form(req, 16 * 1024).await else {
        return error_page(&state, &headers, StatusCode::BAD_REQUEST);
    };
    let t = i18n::table(lang_of(&headers));
    let username = field(&form, "username").trim().to_string();
    let pre = auth::cookie(&headers, PRELOGIN_COOKIE).unwrap_or_default();
    if pre.is_empty()
        || !auth::same(
            field(&form, "csrf"),
            &auth::csrf_for(&state.pii, "login", &pre),
        )
    {
        return render_login(
            &state,
            &headers,
            Some(t["error_403"]),
            &username,
            StatusCode::FORBIDDEN,
        );
    }
    if !state.limiter.allowed(addr, &username) {
        return render_login(
            &state,
            &headers,
            Some(t["login_limited"]),
            &username,
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let account = match state.store.account_by_username(&username).await {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let password = field(&form, "password");
    // Verify against a fixed hash when the account is unknown, so timing does not
    // reveal which usernames exist.
    let ok = match &account {
        Some((a, hash)) => auth::verify_password(password, hash) && !a.disabled,
        None => {
            auth::verify_password(password, DUMMY_HASH);
            false
        }
    };
    let Some((account, _)) = account.filter(|_| ok) else {
        state.limiter.failed(addr, &username);
        return render_login(
            &state,
            &headers,
            Some(t["login_failed"]),
            &username,
            StatusCode::UNAUTHORIZED,
        );
    };
    state.limiter.succeeded(&username);
    let token = match auth::start_session(&state, account.id).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let mut resp = Redirect::to("/").into_response();
    let max_age = state.settings.session_hours * 3600;
    add_cookie(
        &state,
        &headers,
        &mut resp,
        SESSION_COOKIE,
        &token,
        Some(max_age),
    );
    add_cookie(&state, &headers, &mut resp, PRELOGIN_COOKIE, "", Some(0));
    resp
}

/// An argon2id hash of a random string, verified against when a username is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4x6v2Gq6pTqZ0YxqvJ0m0y6d3kq1b9bqkYdQ3k2mYkE";

async fn logout(State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let caller = match page_caller(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(form) = read_form(req, 16 * 1024).await else {
        return error_page(&state, &headers, StatusCode::BAD_REQUEST);
    };
    let expected = caller.csrf_token(&state.pii).unwrap_or_default();
    if expected.is_empty() || !auth::same(field(&form, "csrf"), &expected) {
        let frame = Frame::new(&state, &headers, "/", Some(&caller));
        return page_error(&state, &frame, StatusCode::FORBIDDEN);
    }
    if let auth::Credential::Session { token_hash } = &caller.credential {
        if let Err(e) = state.store.delete_session(token_hash).await {
            return ApiError::from(e).into_response();
        }
    }
    let mut resp = Redirect::to("/login").into_response();
    add_cookie(&state, &headers, &mut resp, SESSION_COOKIE, "", Some(0));
    resp
}

#[derive(Deserialize)]
struct LangQuery {
    to: Option<String>,
    back: Option<String>,
}

async fn switch_lang(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<LangQuery>,
) -> Response {
    let lang = if q.to.as_deref() == Some("en") {
        "en"
    } else {
        "zh"
    };
    // Only local paths, so the switch cannot be used as an open redirect.
    let back = q
        .back
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let mut resp = Redirect::to(&back).into_response();
    add_cookie(
        &state,
        &headers,
        &mut resp,
        LANG_COOKIE,
        lang,
        Some(365 * 86400),
    );
    resp
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

async fn places(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<SearchQuery>,
) -> Response {
    let (caller, frame) = match registry_caller(&state, &headers, "/places").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let scope = &caller.account.scope;
    let text = q.q.unwrap_or_default();
    let rows: Result<Vec<Value>, ApiError> = if text.trim().is_empty() {
        state.store.place_children(None, scope).await.map_err(Into::into).map(|v| {
            v.into_iter()
                .map(|(p, n)| context! { id => p.id, name => p.name, code => p.code, level_label => level_label(frame.lang, p.level), children => n })
                .collect()
        })
    } else {
        state.store.search_places(&text, scope, 100).await.map_err(Into::into).map(|v| {
            v.into_iter()
                .map(|p| context! { id => p.id, name => p.name, code => p.code, level_label => level_label(frame.lang, p.level), children => () })
                .collect()
        })
    };
    match rows {
        Ok(places) => frame.render(&state, "places.html", context! { places, q => text }),
        Err(e) => fail(&state, &frame, e),
    }
}

async fn place(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Id, ApiError>,
) -> Response {
    let (caller, frame) = match registry_caller(&state, &headers, "/places").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result: Result<Response, ApiError> = async {
        let Id(id) = id?;
        let scope = &caller.account.scope;
        let place = state.store.place(id, scope).await?;
        // Breadcrumbs show only the part of the chain inside the scope.
        let ancestors: Vec<_> = state
            .store
            .place_ancestors(&place)
            .await?
            .into_iter()
            .filter(|a| scope.allows_place(&a.path))
            .collect();
        let children: Vec<Value> = state
            .store
            .place_children(Some(place.id), scope)
            .await?
            .into_iter()
            .map(|(p, n)| context! { id => p.id, name => p.name, code => p.code, level_label => level_label(frame.lang, p.level), children => n })
            .collect();
        let responsible = state.store.responsible_for(place.id, today()).await?;
        Ok(frame.render(
            &state,
            "place.html",
            context! { level_label => level_label(frame.lang, place.level), place, ancestors, children, responsible, today => today().to_string() },
        ))
    }
    .await;
    result.unwrap_or_else(|e| fail(&state, &frame, e))
}

fn kind_label(lang: Lang, k: lianxin_domain::org::OrgKind) -> &'static str {
    if lang == Lang::Zh {
        k.label_zh()
    } else {
        k.label_en()
    }
}

fn relation_label(lang: Lang, k: RelationKind) -> &'static str {
    let t = i18n::table(lang);
    match k {
        RelationKind::MemberOf => t["rel_member_of"],
        RelationKind::HoldsPost => t["rel_holds_post"],
        RelationKind::AssignedTo => t["rel_assigned_to"],
    }
}

async fn orgs(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<SearchQuery>,
) -> Response {
    let (caller, frame) = match registry_caller(&state, &headers, "/orgs").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let text = q.q.unwrap_or_default();
    match state
        .store
        .search_orgs(&text, None, &caller.account.scope, 100)
        .await
    {
        Ok(list) => {
            let orgs: Vec<Value> = list
                .into_iter()
                .map(|o| context! { id => o.id, name => o.name, code => o.code, kind_label => kind_label(frame.lang, o.kind) })
                .collect();
            frame.render(&state, "orgs.html", context! { orgs, q => text })
        }
        Err(e) => fail(&state, &frame, e.into()),
    }
}

async fn org(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Id, ApiError>,
) -> Response {
    let (caller, frame) = match registry_caller(&state, &headers, "/orgs").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result: Result<Response, ApiError> = async {
        let Id(id) = id?;
        let org = state.store.org(id, &caller.account.scope).await?;
        let serves = state.store.org_places(org.id).await?;
        let children = state.store.org_children(org.id, &caller.account.scope).await?;
        let relations: Vec<Value> = state
            .store
            .org_relations_on(org.id, today())
            .await?
            .into_iter()
            .map(|r| context! { person_id => r.person_id, person_name => r.person_name, post => r.post, kind_label => relation_label(frame.lang, r.kind) })
            .collect();
        Ok(frame.render(
            &state,
            "org.html",
            context! { kind_label => kind_label(frame.lang, org.kind), org, serves, children, relations },
        ))
    }
    .await;
    result.unwrap_or_else(|e| fail(&state, &frame, e))
}

async fn people(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<SearchQuery>,
) -> Response {
    let (caller, frame) = match registry_caller(&state, &headers, "/people").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let text = q.q.unwrap_or_default();
    // A phone number typed into the name search is not searched: it would sit in
    // the URL, in browser history and proxy logs. The page points to the POST form.
    let phone_in_query = PhoneNumber::parse(&text).is_ok();
    let query = if phone_in_query { "" } else { text.as_str() };
    match state.store.search_people(query, None, &caller.account.scope, 100, 0).await {
        Ok(people) => frame.render(
            &state,
            "people.html",
            context! { people, q => if phone_in_query { String::new() } else { text.clone() }, phone_in_query },
        ),
        Err(e) => fail(&state, &frame, e.into()),
    }
}

async fn people_lookup(State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let (caller, frame) = match registry_caller(&state, &headers, "/people").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(form) = read_form(req, 16 * 1024).await else {
        return page_error(&state, &frame, StatusCode::BAD_REQUEST);
    };
    if !auth::same(field(&form, "csrf"), &frame.csrf) {
        return page_error(&state, &frame, StatusCode::FORBIDDEN);
    }
    let people = match PhoneNumber::parse(field(&form, "phone")) {
        Ok(phone) => {
            let hash = state.pii.keyed_hash("phone", phone.expose());
            match state
                .store
                .search_people("", Some(&hash), &caller.account.scope, 50, 0)
                .await
            {
                Ok(p) => p,
                Err(e) => return fail(&state, &frame, e.into()),
            }
        }
        Err(_) => Vec::new(),
    };
    frame.render(
        &state,
        "people.html",
        context! { people, q => "", phone_in_query => false },
    )
}

async fn person(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Id, ApiError>,
) -> Response {
    let (caller, frame) = match registry_caller(&state, &headers, "/people").await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result: Result<Response, ApiError> = async {
        let Id(id) = id?;
        let person = state.store.person(id, &caller.account.scope).await?;
        let relations: Vec<Value> = state
            .store
            .relations_of_person(person.id)
            .await?
            .into_iter()
            .map(|r| context! { kind_label => relation_label(frame.lang, r.kind), post => r.post, org_name => r.org_name, place_name => r.place_name, valid_from => r.valid_from.to_string(), valid_to => r.valid_to.map(|d| d.to_string()) })
            .collect();
        Ok(frame.render(&state, "person.html", context! { person, relations }))
    }
    .await;
    result.unwrap_or_else(|e| fail(&state, &frame, e))
}
