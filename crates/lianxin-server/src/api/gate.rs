//! The rider gate pass (新通码) over HTTP. Four kinds of caller:
//! - **administrators** (`ManageAccounts`) register platforms, riders, device keys and
//!   gates, and rotate the issuer key; a platform's or a gate's token is shown once,
//!   when it is created;
//! - **platforms** (token scope `gate:platform`) declare orders, idempotently with
//!   `PUT /gate/orders/{platform order id}`, and may register their own riders;
//! - **riders** (a rider account) fetch the ticket for their current order;
//! - **gate devices** (token scope `gate:scan`) scan, and fetch the signed trust and
//!   revocation lists an offline gate box needs.
//!
//! A scan is checked in memory with `lianxin_pass::Gate::check`, then logged in one
//! transaction whose UNIQUE replay key makes the decision final across servers
//! (`lianxin_store::gate`). A refused pass is a normal answer for a gate — 200 with
//! `outcome: "deny"` and the reason code — not a client error; only a malformed
//! request is a 4xx. See docs/decisions/0013-gate-pass.md.

use crate::auth::{hash_password, Caller, Credential};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiCaller, Id, JsonBody};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine as _;
use ed25519_dalek::{Signer, Verifier};
use lianxin_domain::pii::{random_token, PiiKey};
use lianxin_domain::role::{Permission, Role};
use lianxin_pass::{Deny, Direction, Gate, GateLedger, KeyId, TrustList};
use lianxin_store::gate::{parse_device_key, GateDevice, NewOrder, NewRider, RiderStatus, Scan};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/gate/platforms", get(platforms).post(create_platform))
        .route("/gate/riders", get(riders).post(register_rider))
        .route("/gate/riders/{id}", get(rider))
        .route("/gate/riders/{id}/status", post(set_status))
        .route("/gate/riders/{id}/devices", post(add_device))
        .route("/gate/devices/{id}/revoke", post(revoke_device))
        .route("/gate/gates", get(gates).post(create_gate))
        .route("/gate/gates/{id}/events", get(events))
        .route("/gate/issuer-keys/rotate", post(rotate))
        .route("/gate/trust", get(trust))
        .route("/gate/revocations", get(revocations))
        .route("/gate/orders/{id}", put(declare_order))
        .route("/gate/my-ticket", get(my_ticket))
        .route("/gate/my-device", post(bind_my_device))
        .route("/gate/scan", post(scan))
        .route("/gate/events", post(upload_events))
        .route("/gate/log", get(log))
}

/// How long the old issuer key stays trusted after a rotation, unless told.
const DEFAULT_OVERLAP_SECONDS: u64 = 3 * 3600;

fn created(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

fn has_scope(c: &Caller, scope: &str) -> bool {
    matches!(&c.credential, Credential::Token { scopes, .. } if scopes.iter().any(|s| s == scope))
}

fn require_scope(c: &Caller, scope: &str) -> ApiResult<()> {
    if has_scope(c, scope) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "this needs an API token with the scope {scope}"
        )))
    }
}

/// The server's clock in Unix seconds (tests may move it).
fn now(state: &AppState) -> u64 {
    u64::try_from(state.desk.now().timestamp()).unwrap_or(0)
}

// ----- Platforms -----

#[derive(Deserialize)]
struct NewPlatform {
    code: String,
    name: String,
}

async fn platforms(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageAccounts)?;
    Ok(Json(json!({ "platforms": state.store.platforms().await? })))
}

async fn create_platform(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<NewPlatform>,
) -> ApiResult<Response> {
    c.require(Permission::ManageAccounts)?;
    let token = random_token("lxt_", 32);
    let platform = state
        .store
        .create_platform(
            &c.actor(),
            &body.code,
            &body.name,
            &PiiKey::token_hash(&token),
        )
        .await?;
    Ok(created(json!({ "platform": platform, "token": token })))
}

// ----- Riders and devices -----

#[derive(Deserialize)]
struct RegisterRider {
    /// The platform's code; a platform's own token may leave it out.
    #[serde(default)]
    platform: Option<String>,
    name: String,
    id_card: String,
    region: String,
    /// An existing rider account, or a new one to create with this username …
    #[serde(default)]
    account_id: Option<i64>,
    #[serde(default)]
    username: Option<String>,
    /// … and password.
    #[serde(default)]
    password: Option<String>,
}

async fn register_rider(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<RegisterRider>,
) -> ApiResult<Response> {
    // An administrator verifies for any platform; a platform only for itself.
    let (platform_code, verified_by) = if has_scope(&c, "gate:platform") {
        let p = state
            .store
            .platform_of_account(c.account.id)
            .await?
            .ok_or_else(|| ApiError::forbidden("this token's account is not a platform's"))?;
        if body.platform.as_deref().is_some_and(|b| b.trim() != p.code) {
            return Err(ApiError::invalid(
                "platform",
                "a platform registers only its own riders",
            ));
        }
        (p.code.clone(), format!("platform:{}", p.code))
    } else {
        c.require(Permission::ManageAccounts)?;
        let p = body
            .platform
            .clone()
            .ok_or_else(|| ApiError::invalid("platform", "platform is required"))?;
        (p, format!("admin:{}", c.account.id))
    };
    let new_account = match &body.username {
        Some(username) => {
            let password = body
                .password
                .as_deref()
                .ok_or_else(|| ApiError::invalid("password", "a new account needs a password"))?;
            crate::auth::check_new_password(password)?;
            Some((username.clone(), hash_password(password)?))
        }
        None => None,
    };
    let rider = state
        .store
        .register_rider(
            &c.actor(),
            &state.pii,
            &NewRider {
                platform_code,
                name: body.name,
                id_card: body.id_card,
                account_id: body.account_id,
                new_account,
                region: body.region,
            },
            &verified_by,
        )
        .await?;
    Ok(created(json!({ "rider": rider })))
}

async fn riders(State(state): State<AppState>, ApiCaller(c): ApiCaller) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageAccounts)?;
    Ok(Json(json!({ "riders": state.store.riders(None).await? })))
}

async fn rider(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageAccounts)?;
    let rider = state.store.rider(id).await?;
    let devices = state.store.devices_of(id).await?;
    Ok(Json(json!({ "rider": rider, "devices": devices })))
}

#[derive(Deserialize)]
struct SetStatus {
    status: String,
}

async fn set_status(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(body): JsonBody<SetStatus>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageAccounts)?;
    let status = RiderStatus::parse(&body.status)?;
    let rider = state.store.set_rider_status(&c.actor(), id, status).await?;
    state.gate.forget_revocations();
    Ok(Json(json!({ "rider": rider })))
}

#[derive(Deserialize)]
struct NewDevice {
    public_key: String,
}

async fn add_device(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
    JsonBody(body): JsonBody<NewDevice>,
) -> ApiResult<Response> {
    c.require(Permission::ManageAccounts)?;
    let key = parse_device_key(&body.public_key)?;
    let device = state.store.add_device(&c.actor(), id, &key).await?;
    // Adding a device retires the rider's others.
    state.gate.forget_revocations();
    Ok(created(json!({ "device": device })))
}

async fn revoke_device(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageAccounts)?;
    let device = state.store.revoke_device(&c.actor(), id).await?;
    state.gate.forget_revocations();
    Ok(Json(json!({ "device": device })))
}

// ----- Gates and issuer keys -----

#[derive(Deserialize)]
struct NewGate {
    compound: String,
    name: String,
    /// An existing `gate_device` account (username) for a gate page on a tablet;
    /// without it the gate gets a new account and a token, shown once.
    #[serde(default)]
    account: Option<String>,
}

async fn gates(State(state): State<AppState>, ApiCaller(c): ApiCaller) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageAccounts)?;
    Ok(Json(json!({ "gates": state.store.gates().await? })))
}

async fn create_gate(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<NewGate>,
) -> ApiResult<Response> {
    c.require(Permission::ManageAccounts)?;
    if let Some(username) = body.account.as_deref() {
        let account = state
            .store
            .account_by_username(username.trim())
            .await?
            .ok_or_else(|| ApiError::invalid("account", "no account has that username"))?
            .0;
        let gate = state
            .store
            .create_gate_for_account(&c.actor(), &body.compound, &body.name, account.id)
            .await?;
        return Ok(created(json!({ "gate": gate })));
    }
    let token = random_token("lxt_", 32);
    let gate = state
        .store
        .create_gate(
            &c.actor(),
            &body.compound,
            &body.name,
            &PiiKey::token_hash(&token),
        )
        .await?;
    Ok(created(json!({ "gate": gate, "token": token })))
}

async fn events(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Id(id): Id,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageAccounts)?;
    let gate = state.store.gate(id).await?;
    let events = state.store.gate_events(gate.compound_id, 200).await?;
    Ok(Json(json!({ "gate": gate, "events": events })))
}

#[derive(Deserialize)]
struct Rotate {
    #[serde(default)]
    overlap_seconds: Option<u64>,
}

async fn rotate(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<Rotate>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ManageAccounts)?;
    let overlap = body.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECONDS);
    if overlap > 7 * 24 * 3600 {
        return Err(ApiError::invalid(
            "overlap_seconds",
            "overlap_seconds must be at most a week (604800)",
        ));
    }
    let now = now(&state);
    // Make sure there is a key to retire, so the overlap applies to it.
    state.store.issuer(&state.pii).await?;
    let kid = state
        .store
        .rotate_issuer_key(&c.actor(), &state.pii, now, overlap)
        .await?;
    state.gate.forget_trust();
    Ok(Json(json!({
        "kid": kid,
        "keys": state.store.trusted_issuer_keys(now).await?,
    })))
}

/// A list for offline gate boxes: `payload` is JSON text, `signature` the current
/// issuer key's Ed25519 signature over its UTF-8 bytes (hex), `kid` that key's id;
/// `signatures` holds one `{kid, signature}` per issuer key trusted now (the current
/// one and those in their overlap), so a box that knows only the old key can accept
/// the list that brings the new one.
async fn signed(state: &AppState, payload: Value) -> ApiResult<Json<Value>> {
    let issuer = state.store.issuer(&state.pii).await?;
    let text = payload.to_string();
    let signature = issuer.key.sign(text.as_bytes());
    let all = state.store.trusted_issuers(&state.pii, now(state)).await?;
    let signatures: Vec<Value> = all
        .iter()
        .map(|k| {
            json!({
                "kid": hex::encode(k.kid.as_bytes()),
                "signature": hex::encode(k.key.sign(text.as_bytes()).to_bytes()),
            })
        })
        .collect();
    Ok(Json(json!({
        "payload": text,
        "kid": hex::encode(issuer.kid.as_bytes()),
        "signature": hex::encode(signature.to_bytes()),
        "signatures": signatures,
    })))
}

/// A gate scanning: a gate box's token (scope `gate:scan`), or the gate page on a
/// tablet signed in as a `gate_device` account (a session, so CSRF-checked).
fn require_gate(c: &Caller) -> ApiResult<()> {
    match &c.credential {
        Credential::Session { .. } if c.role() == Role::GateDevice => Ok(()),
        _ => require_scope(c, "gate:scan"),
    }
}

fn require_gate_or_admin(c: &Caller) -> ApiResult<()> {
    if has_scope(c, "gate:scan") {
        Ok(())
    } else {
        c.require(Permission::ManageAccounts)
    }
}

async fn trust(State(state): State<AppState>, ApiCaller(c): ApiCaller) -> ApiResult<Json<Value>> {
    require_gate_or_admin(&c)?;
    let now = now(&state);
    state.store.issuer(&state.pii).await?;
    let keys = state.store.trusted_issuer_keys(now).await?;
    signed(&state, json!({ "issued_at": now, "keys": keys })).await
}

async fn revocations(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    require_gate_or_admin(&c)?;
    let now = now(&state);
    let list = state.store.revocations(now).await?;
    signed(
        &state,
        json!({ "issued_at": now, "pseudonyms": list.pseudonyms, "device_keys": list.device_keys }),
    )
    .await
}

// ----- Orders and tickets -----

#[derive(Deserialize)]
struct DeclareOrder {
    rider_id: i64,
    compound: String,
    #[serde(default)]
    building: Option<String>,
    window_from: String,
    window_until: String,
}

/// `PUT /gate/orders/{platform order id}`: 201 when new, 200 when the same
/// declaration is repeated, 409 when the id was declared with other details.
async fn declare_order(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    Path(order_id): Path<String>,
    JsonBody(body): JsonBody<DeclareOrder>,
) -> ApiResult<Response> {
    require_scope(&c, "gate:platform")?;
    let platform = state
        .store
        .platform_of_account(c.account.id)
        .await?
        .ok_or_else(|| ApiError::forbidden("this token's account is not a platform's"))?;
    let (order, new) = state
        .store
        .declare_order(
            &c.actor(),
            platform.id,
            &NewOrder {
                platform_order_id: order_id,
                rider_id: body.rider_id,
                compound_code: body.compound,
                building_code: body.building,
                window_from: body.window_from,
                window_until: body.window_until,
            },
        )
        .await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "order": order }))).into_response())
}

/// The signed-in rider's own account, as a rider.
async fn rider_of(state: &AppState, c: &Caller) -> ApiResult<lianxin_store::gate::Rider> {
    if c.role() != Role::Rider {
        return Err(ApiError::forbidden("only a rider has a gate pass"));
    }
    state
        .store
        .rider_of_account(c.account.id)
        .await?
        .ok_or_else(|| ApiError::not_found("rider"))
}

/// `POST /gate/my-device`: the rider's phone binds its own key (made on the phone,
/// the private half never leaving it). Binding a phone revokes the rider's other
/// devices, so a pass works on one phone at a time and cannot be lent out.
async fn bind_my_device(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<NewDevice>,
) -> ApiResult<Response> {
    let rider = rider_of(&state, &c).await?;
    let key = parse_device_key(&body.public_key)?;
    let device = state.store.add_device(&c.actor(), rider.id, &key).await?;
    state.gate.forget_revocations();
    Ok(created(json!({ "device": device })))
}

/// The rider's current ticket: base64 of its bytes, the compound it opens, and the
/// step length the phone must sign with.
async fn my_ticket(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
) -> ApiResult<Json<Value>> {
    let rider = rider_of(&state, &c).await?;
    let ticket = state
        .store
        .current_ticket(&state.pii, rider.id, now(&state))
        .await?;
    let compound_name = state
        .store
        .place_by_code(&ticket.compound_code)
        .await?
        .map(|p| p.name);
    Ok(Json(json!({
        "ticket": base64::engine::general_purpose::STANDARD.encode(&ticket.bytes),
        "compound_id": ticket.compound_id,
        "compound": ticket.compound_code,
        "compound_name": compound_name,
        "not_before": ticket.not_before,
        "not_after": ticket.not_after,
        "step_seconds": lianxin_pass::STEP_SECONDS,
        "server_time": now(&state),
    })))
}

// ----- Scans -----

#[derive(Deserialize)]
struct ScanBody {
    qr: String,
    direction: String,
}

/// What the online scan keeps in memory between requests: the parsed trust list and
/// the gate devices by account.
///
/// - The trust list is re-read when this process rotates the issuer key (the rotate
///   handler calls [`GateCache::forget_trust`]), when a pass names a key id it does
///   not hold (a key made by another server or by the first ticket), at most every
///   [`TRUST_TTL`] (a rotation by another process), and when the clock reaches a
///   retired key's `accepted_until` or goes back before the read: so it never trusts
///   a key the database would not list at `now` for longer than [`TRUST_TTL`] after
///   another process rotated, and never in this process.
/// - Gate devices are never changed once created, so they are kept by account id
///   (the caller's token and account are still checked on every request).
#[derive(Default)]
pub struct GateCache {
    trust: std::sync::RwLock<Option<CachedTrust>>,
    gates: std::sync::RwLock<std::collections::HashMap<i64, Arc<GateDevice>>>,
    revoked: std::sync::RwLock<Option<Arc<CachedRevocations>>>,
    refreshing: tokio::sync::Mutex<()>,
    /// Counts changes made here: a list read while one happened is not kept.
    changes: std::sync::atomic::AtomicU64,
}

/// The revoked riders (by the pseudonyms of their unexpired tickets) and devices
/// (those unexpired tickets are bound to): the same list an offline gate box holds,
/// read at most every [`REVOCATION_TTL`] and at once after a change in this process.
pub struct CachedRevocations {
    riders: std::collections::HashSet<[u8; 16]>,
    devices: std::collections::HashSet<[u8; 32]>,
    read_at: Instant,
    /// The Unix time the list was read for (a clock moved back re-reads it).
    read_for: u64,
}

/// How long a revocation made through another server may take to reach this one's
/// online scans. One made through this server applies to the next scan.
pub const REVOCATION_TTL: Duration = Duration::from_secs(2);

struct CachedTrust {
    list: Arc<TrustList>,
    read_at: Instant,
    /// The Unix time the list was read for, and until when it holds as read (the
    /// earliest `accepted_until` in it).
    read_for: u64,
    holds_until: u64,
}

/// How long a trust list read from the database is used at most.
pub const TRUST_TTL: Duration = Duration::from_secs(10);

impl GateCache {
    /// Drops the cached trust list (after a rotation).
    pub fn forget_trust(&self) {
        *self.trust.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The trust list at `now`; `kid` is the key id the pass at hand names, if any.
    async fn trust(
        &self,
        state: &AppState,
        now: u64,
        kid: Option<KeyId>,
    ) -> ApiResult<Arc<TrustList>> {
        if let Some(c) = self
            .trust
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let fresh = c.read_at.elapsed() < TRUST_TTL && now >= c.read_for && now < c.holds_until;
            let knows = kid.is_none_or(|kid| c.list.keys.iter().any(|k| k.kid == kid));
            if fresh && knows {
                return Ok(c.list.clone());
            }
        }
        let list = Arc::new(state.store.trust_list(now).await?);
        let holds_until = list
            .keys
            .iter()
            .filter_map(|k| k.accepted_until)
            .min()
            .unwrap_or(u64::MAX);
        *self.trust.write().unwrap_or_else(|e| e.into_inner()) = Some(CachedTrust {
            list: list.clone(),
            read_at: Instant::now(),
            read_for: now,
            holds_until,
        });
        Ok(list)
    }

    /// Drops the cached revocations (after a rider's or a device's status changed).
    pub fn forget_revocations(&self) {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *self.revoked.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn revocations(&self, state: &AppState, now: u64) -> ApiResult<Arc<CachedRevocations>> {
        let cached = self
            .revoked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let fresh =
            |c: &CachedRevocations| c.read_at.elapsed() < REVOCATION_TTL && now >= c.read_for;
        if let Some(c) = cached.as_ref().filter(|c| fresh(c)) {
            return Ok(c.clone());
        }
        // One request re-reads the list; while it does, the others go on with the
        // list as it was (at most a read's time older than the TTL). With no list at
        // all (at start, or just after a change here) they wait for the new one.
        let _refreshing = match (&cached, self.refreshing.try_lock()) {
            (_, Ok(guard)) => guard,
            (Some(c), Err(_)) => return Ok(c.clone()),
            (None, Err(_)) => self.refreshing.lock().await,
        };
        if let Some(c) = self
            .revoked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|c| fresh(c))
        {
            return Ok(c.clone());
        }
        let changes = self.changes.load(std::sync::atomic::Ordering::SeqCst);
        let list = state.store.revocations(now).await?;
        let fresh = Arc::new(CachedRevocations {
            riders: list
                .pseudonyms
                .iter()
                .filter_map(|p| hex_array(p))
                .collect(),
            devices: list
                .device_keys
                .iter()
                .filter_map(|d| hex_array(d))
                .collect(),
            read_at: Instant::now(),
            read_for: now,
        });
        // A change made here while the list was read may be missing from it: use it
        // for this scan (it was read after the change began) but do not keep it.
        let mut slot = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        if self.changes.load(std::sync::atomic::Ordering::SeqCst) == changes {
            *slot = Some(fresh.clone());
        }
        Ok(fresh)
    }

    /// The gate device an account acts for.
    async fn gate(&self, state: &AppState, account_id: i64) -> ApiResult<Arc<GateDevice>> {
        if let Some(g) = self
            .gates
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&account_id)
        {
            return Ok(g.clone());
        }
        let gate = Arc::new(
            state
                .store
                .gate_of_account(account_id)
                .await?
                .ok_or_else(|| ApiError::forbidden("this token's account is not a gate's"))?,
        );
        self.gates
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account_id, gate.clone());
        Ok(gate)
    }
}

/// What the online check consults: the cached revocations, and a replay record
/// that is only noted here (the store's UNIQUE insert decides it). Whether the rider
/// is inside is left to the store too: its conditional update in the scan's own
/// transaction is what decides a double entry or an exit without an entry, so the
/// check here lets both directions through to it.
struct Looked {
    revoked: Arc<CachedRevocations>,
    direction: Direction,
    spent: Option<([u8; 32], u64)>,
}

impl GateLedger for Looked {
    fn first_use(&mut self, ticket: &[u8; 32], step: u64) -> bool {
        self.spent = Some((*ticket, step));
        true
    }
    fn rider_revoked(&self, pseudonym: &[u8; 16]) -> bool {
        self.revoked.riders.contains(pseudonym)
    }
    fn device_revoked(&self, device_key: &[u8; 32]) -> bool {
        self.revoked.devices.contains(device_key)
    }
    fn inside(&self, _: &[u8; 16]) -> bool {
        self.direction == Direction::Exit
    }
}

/// Whether a refusal came after the issuer signature held (so the ticket's claims
/// are authentic and its pseudonym may be logged).
fn past_issuer_check(deny: Deny) -> bool {
    !matches!(
        deny,
        Deny::Malformed | Deny::UnknownIssuer | Deny::BadIssuerSignature | Deny::RetiredIssuer
    )
}

async fn scan(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<ScanBody>,
) -> ApiResult<Json<Value>> {
    let started = Instant::now();
    require_gate(&c)?;
    let direction = Direction::parse(&body.direction)
        .ok_or_else(|| ApiError::invalid("direction", "direction must be entry or exit"))?;
    if body.qr.len() > 8192 {
        return Err(ApiError::invalid("qr", "qr is far longer than a pass"));
    }
    let gate = state.gate.gate(&state, c.account.id).await?;
    let now = now(&state);
    // The ticket's claims, unchecked, name the key id to trust and the rider and
    // device whose status the check will ask about. They are read before the check
    // so that it runs once; the check consults them only once the issuer signature
    // over those very bytes holds.
    let claimed = lianxin_pass::Pass::decode(&body.qr).ok().and_then(|pass| {
        let kid = lianxin_pass::ticket::unverified_kid(&pass.ticket)?;
        Some((kid, lianxin_pass::unverified_claims(&pass.ticket).ok()?))
    });
    let trust = state
        .gate
        .trust(&state, now, claimed.as_ref().map(|c| c.0))
        .await?;
    let mut ledger = Looked {
        revoked: state.gate.revocations(&state, now).await?,
        direction,
        spent: None,
    };
    let checked = Gate {
        compound: u64::try_from(gate.compound_id).unwrap_or(0),
        trust: &trust,
    }
    .check(&body.qr, now, direction, &mut ledger);
    let pseudonym = match &checked {
        Ok(admit) => Some(admit.ticket.claims.pseudonym),
        Err(deny) if past_issuer_check(*deny) => claimed.as_ref().map(|c| c.1.pseudonym),
        Err(_) => None,
    };
    // Logged (durably: the store's writer answers after the commit) before the answer.
    let outcome = state
        .store
        .record_scan(Scan {
            gate_id: gate.id,
            compound_id: gate.compound_id,
            region: gate.region.clone(),
            direction,
            pseudonym,
            spent: ledger.spent,
            outcome: checked.as_ref().map(|_| ()).map_err(|d| *d),
            took_ms: Some(u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX)),
        })
        .await?;
    Ok(Json(match (outcome, checked) {
        (Ok(()), Ok(admit)) => json!({
            "outcome": "pass",
            "direction": direction.as_str(),
            "compound": gate.compound_code,
            "pass": {
                "pseudonym": hex::encode(admit.ticket.claims.pseudonym),
                "order": hex::encode(admit.ticket.claims.order_hash),
                "valid_until": admit.ticket.claims.not_after,
            },
        }),
        (Err(deny), _) | (Ok(()), Err(deny)) => deny_body(deny, direction),
    }))
}

fn deny_body(deny: Deny, direction: Direction) -> Value {
    json!({
        "outcome": "deny",
        "direction": direction.as_str(),
        "reason": deny.code(),
        "message": deny.to_string(),
    })
}

// ----- The entries-and-exits view -----

#[derive(Deserialize, Default)]
pub(crate) struct LogQuery {
    compound: Option<String>,
    days: Option<String>,
}

/// The periods the view offers, in days.
pub(crate) const LIST_PERIODS: [i64; 4] = [1, 7, 30, 90];
/// The most scans one view reads; the view says when a period holds more.
const LOG_LIMIT: i64 = 20_000;

/// What `/gate/log` (page, CSV and API) reads: the compounds in the caller's scope,
/// the one asked for (the first by default), the period and its scans.
pub(crate) struct LogView {
    pub compounds: Vec<lianxin_store::gate::GateCompound>,
    pub compound: Option<lianxin_store::gate::GateCompound>,
    pub days: i64,
    pub rows: Vec<lianxin_store::gate::GateLogRow>,
    pub truncated: bool,
}

pub(crate) async fn read_log(
    state: &AppState,
    caller: &Caller,
    q: &LogQuery,
) -> ApiResult<LogView> {
    let days = match q.days.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => 7,
        Some(d) => d
            .parse::<i64>()
            .ok()
            .filter(|d| LIST_PERIODS.contains(d))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_query",
                    "days must be 1, 7, 30 or 90",
                )
                .with_field("days")
            })?,
    };
    let compounds = state.store.gate_compounds(&caller.account.scope).await?;
    let compound = match q
        .compound
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => compounds.first().cloned(),
        Some(raw) => Some(
            compounds
                .iter()
                .find(|c| c.code == raw || c.id.to_string() == raw)
                .cloned()
                // Unknown and out of scope look the same.
                .ok_or_else(|| ApiError::not_found("compound"))?,
        ),
    };
    let since = lianxin_store::demands::ts(state.desk.now() - chrono::Duration::days(days));
    let rows = match &compound {
        Some(c) => {
            state
                .store
                .gate_log(&caller.account.scope, c.id, &since, LOG_LIMIT)
                .await?
        }
        None => Vec::new(),
    };
    Ok(LogView {
        truncated: rows.len() as i64 >= LOG_LIMIT,
        compounds,
        compound,
        days,
        rows,
    })
}

/// The scan log's facts as the statistics read them.
pub(crate) fn scan_facts(
    rows: &[lianxin_store::gate::GateLogRow],
) -> Vec<lianxin_domain::gate::ScanFact> {
    rows.iter()
        .filter_map(|r| {
            Some(lianxin_domain::gate::ScanFact {
                at: chrono::DateTime::parse_from_rfc3339(&r.at)
                    .ok()?
                    .with_timezone(&chrono::Utc),
                gate_id: r.gate_id,
                pseudonym: r.pseudonym.clone(),
                entry: r.direction == "entry",
                outcome: r.outcome.clone(),
                took_ms: r.took_ms,
            })
        })
        .collect()
}

/// `GET /gate/log`: a compound's scans and statistics, for a compound in the
/// caller's scope (token scope `gate:read`, or a session allowed the gate log).
async fn log(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    crate::extract::QueryParams(q): crate::extract::QueryParams<LogQuery>,
) -> ApiResult<Json<Value>> {
    c.require(Permission::ReadGateLog)?;
    let view = read_log(&state, &c, &q).await?;
    let s = lianxin_domain::gate::stats(&scan_facts(&view.rows));
    Ok(Json(json!({
        "compound": view.compound,
        "days": view.days,
        "truncated": view.truncated,
        "stats": {
            "entries": s.entries,
            "exits": s.exits,
            "entries_by_hour": s.entries_by_hour,
            "refusals": s.refusals.iter().map(|(code, n)| json!({ "reason": code, "count": n })).collect::<Vec<_>>(),
            "median_ms_at_gate": s.median_ms_at_gate,
            "first_try_share": s.first_try_share,
        },
        "scans": view.rows,
    })))
}

// ----- Offline events -----

/// The most events one upload may carry.
const MAX_UPLOAD: usize = 1000;

#[derive(Deserialize)]
struct UploadBody {
    /// The box's own Ed25519 public key (hex) that signed each event.
    box_key: String,
    events: Vec<OfflineEvent>,
}

#[derive(Deserialize)]
struct OfflineEvent {
    /// `ticket digest hex:step`: the replay key, and the idempotency key.
    id: String,
    compound: u64,
    pseudonym: String,
    direction: String,
    /// When the box admitted the rider (Unix seconds).
    at: u64,
    /// The box key's Ed25519 signature (hex) over [`offline_event_message`].
    signature: String,
}

/// What a gate box signs for each event; `lianxin gate` builds the same bytes.
pub fn offline_event_message(
    id: &str,
    compound: u64,
    pseudonym: &str,
    direction: &str,
    at: u64,
) -> String {
    format!("lianxin-gate-event/1\n{id}\n{compound}\n{pseudonym}\n{direction}\n{at}")
}

fn hex_array<const N: usize>(raw: &str) -> Option<[u8; N]> {
    hex::decode(raw.trim())
        .ok()
        .and_then(|b| <[u8; N]>::try_from(b).ok())
}

/// `POST /gate/events`: a gate box's queued entries and exits, each already admitted
/// offline. Each is applied like an online scan that passed (the replay key is spent,
/// presence flips), so the server's log and presence stay consistent; the answer is
/// per event: `pass`, or the server's verdict (`replayed`, `already_inside`,
/// `not_inside`), or `duplicate` when this gate already uploaded it (uploads are
/// idempotent on the event id), or `rejected` with a reason (bad signature, another
/// compound, malformed) — a rejected event is not stored.
async fn upload_events(
    State(state): State<AppState>,
    ApiCaller(c): ApiCaller,
    JsonBody(body): JsonBody<UploadBody>,
) -> ApiResult<Json<Value>> {
    require_scope(&c, "gate:scan")?;
    if body.events.len() > MAX_UPLOAD {
        return Err(ApiError::invalid(
            "events",
            format!("at most {MAX_UPLOAD} events per upload"),
        ));
    }
    let box_key = hex_array::<32>(&body.box_key)
        .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).ok())
        .ok_or_else(|| {
            ApiError::invalid(
                "box_key",
                "box_key must be an Ed25519 public key (64 hex characters)",
            )
        })?;
    let gate = state
        .store
        .gate_of_account(c.account.id)
        .await?
        .ok_or_else(|| ApiError::forbidden("this token's account is not a gate's"))?;
    let mut results = Vec::with_capacity(body.events.len());
    for e in body.events {
        let verdict = upload_one(&state, &gate, &box_key, &e).await?;
        results.push(match verdict {
            Ok(outcome) => json!({ "id": e.id, "outcome": outcome }),
            Err(reason) => json!({ "id": e.id, "outcome": "rejected", "reason": reason }),
        });
    }
    Ok(Json(json!({ "results": results })))
}

async fn upload_one(
    state: &AppState,
    gate: &lianxin_store::gate::GateDevice,
    box_key: &ed25519_dalek::VerifyingKey,
    e: &OfflineEvent,
) -> ApiResult<Result<&'static str, &'static str>> {
    let Some(direction) = Direction::parse(&e.direction) else {
        return Ok(Err("malformed"));
    };
    let parsed =
        e.id.split_once(':')
            .and_then(|(d, s)| Some((hex_array::<32>(d)?, s.parse::<u64>().ok()?)));
    let (Some((digest, step)), Some(pseudonym)) = (parsed, hex_array::<16>(&e.pseudonym)) else {
        return Ok(Err("malformed"));
    };
    let Some(signature) = hex_array::<64>(&e.signature) else {
        return Ok(Err("malformed"));
    };
    let message = offline_event_message(&e.id, e.compound, &e.pseudonym, &e.direction, e.at);
    if box_key
        .verify(
            message.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .is_err()
    {
        return Ok(Err("bad_signature"));
    }
    if e.compound != u64::try_from(gate.compound_id).unwrap_or(0) {
        return Ok(Err("wrong_compound"));
    }
    let Some(at) = i64::try_from(e.at)
        .ok()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
    else {
        return Ok(Err("malformed"));
    };
    let key = format!("{}:{step}", hex::encode(digest));
    if state.store.replay_key_gate(&key).await? == Some(gate.id) {
        return Ok(Ok("duplicate"));
    }
    let outcome = state
        .store
        .record_scan_at(
            Scan {
                gate_id: gate.id,
                compound_id: gate.compound_id,
                region: gate.region.clone(),
                direction,
                pseudonym: Some(pseudonym),
                spent: Some((digest, step)),
                outcome: Ok(()),
                took_ms: None,
            },
            // The same text form as every other logged time, so the log sorts.
            lianxin_store::demands::ts(at),
        )
        .await?;
    Ok(Ok(match outcome {
        Ok(()) => "pass",
        Err(d) => d.code(),
    }))
}
