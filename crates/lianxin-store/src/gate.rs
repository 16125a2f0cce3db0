//! The rider gate pass (新通码) at rest: platforms, riders and their device keys,
//! declared orders, issued tickets, the issuer keys, gates and the scan log.
//!
//! The pass itself — ticket format, QR, the gate's checks — is `lianxin_pass`; this
//! module keeps what those checks look up and what they leave behind:
//! - **Issuer keys** are Ed25519 keys whose private half is sealed with the master
//!   key ([`PiiKey::encrypt`]); rotating makes a new current key and keeps the old one
//!   trusted for an overlap (`accepted_until`).
//! - **The replay guard** is the UNIQUE `replay_key` (ticket digest, step) of
//!   `gate_events`: the scan that spends a code inserts it, so a second scan of the
//!   same code fails on any process or server sharing the database.
//! - **Presence** (inside or not, per ticket pseudonym) changes only by a conditional
//!   update in the same transaction as the scan, so two gates cannot both let the same
//!   rider in.
//!
//! Administrative changes are on the audit trail; scans are not (they are their own
//! append-only log, `gate_events`, and carry no personal data).

use crate::audit::{self, Actor};
use crate::registry::scope_patterns;
use crate::{now_text, Result, Store, StoreError};
use ed25519_dalek::SigningKey;
use lianxin_domain::person::{parse_person_name, IdCardNumber};
use lianxin_domain::pii::PiiKey;
use lianxin_domain::role::DataScope;
use lianxin_domain::ValidationError;
use lianxin_pass::{Claims, Deny, Direction, Issuer, KeyId, TrustList, TrustedKey};
use rand::RngCore;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

/// The longest a ticket is valid: the order window is clipped to this.
pub const MAX_TICKET_SECONDS: u64 = 2 * 3600;
/// A stored ticket is handed out again while it has at least this long to run.
const REUSE_MARGIN_SECONDS: u64 = 5 * 60;

fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationError::new(field, code, message))
}

/// The account a platform or a gate device acts through. It has no usable password
/// (`!` is no PHC string), only the token created with it.
const NO_PASSWORD: &str = "!";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Platform {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub account_id: i64,
    pub created_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RiderStatus {
    Active,
    Suspended,
    Revoked,
}

impl RiderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RiderStatus::Active => "active",
            RiderStatus::Suspended => "suspended",
            RiderStatus::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Result<RiderStatus, ValidationError> {
        match s.trim() {
            "active" => Ok(RiderStatus::Active),
            "suspended" => Ok(RiderStatus::Suspended),
            "revoked" => Ok(RiderStatus::Revoked),
            _ => Err(ValidationError::new(
                "status",
                "invalid_status",
                "status must be active, suspended or revoked",
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rider {
    pub id: i64,
    pub platform: String,
    /// Only the first character of the name: 王**.
    pub name_masked: String,
    pub account_id: Option<i64>,
    pub status: RiderStatus,
    pub verified_by: String,
    pub region: String,
    pub created_at: String,
}

/// A rider to register. The ID-card number is kept only as a keyed hash.
#[derive(Debug, Clone)]
pub struct NewRider {
    pub platform_code: String,
    pub name: String,
    pub id_card: String,
    pub account_id: Option<i64>,
    /// A new rider account to create with the rider, in the same transaction:
    /// (username, argon2 password hash). Exclusive with `account_id`.
    pub new_account: Option<(String, String)>,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    pub id: i64,
    pub rider_id: i64,
    /// The Ed25519 public key, 64 hex characters.
    pub public_key: String,
    pub active: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateDevice {
    pub id: i64,
    pub compound_id: i64,
    pub compound_code: String,
    pub name: String,
    pub account_id: i64,
    pub region: String,
    pub created_at: String,
}

/// An order as a platform declares it (times are RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub platform_order_id: String,
    pub rider_id: i64,
    pub compound_code: String,
    pub building_code: Option<String>,
    pub window_from: String,
    pub window_until: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    pub id: i64,
    pub platform_order_id: String,
    pub rider_id: i64,
    pub compound_id: i64,
    pub compound_code: String,
    pub building_code: Option<String>,
    pub window_from: String,
    pub window_until: String,
    pub status: String,
    pub created_at: String,
}

/// A ticket as handed to the rider's phone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssuedTicket {
    pub pseudonym: String,
    #[serde(skip)]
    pub bytes: Vec<u8>,
    pub order_id: i64,
    pub compound_id: i64,
    pub compound_code: String,
    pub not_before: u64,
    pub not_after: u64,
    pub kid: String,
}

/// An issuer key as the gates see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PublicIssuerKey {
    pub kid: String,
    pub public_key: String,
    pub accepted_until: Option<u64>,
}

/// What offline gates must refuse although the signatures are good.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Revocations {
    /// Pseudonyms (hex) of unexpired tickets whose rider is not active.
    pub pseudonyms: Vec<String>,
    /// Revoked device keys (hex) that unexpired tickets are bound to.
    pub device_keys: Vec<String>,
}

/// What the online gate looks up about one ticket before it decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TicketFacts {
    pub rider_revoked: bool,
    pub device_revoked: bool,
    pub inside: bool,
}

/// One scan to log, with the decision taken in memory.
#[derive(Debug, Clone)]
pub struct Scan {
    pub gate_id: i64,
    pub compound_id: i64,
    pub region: String,
    pub direction: Direction,
    /// The ticket pseudonym, when the issuer signature was good.
    pub pseudonym: Option<[u8; 16]>,
    /// (ticket digest, step), when the check got as far as spending the code.
    pub spent: Option<([u8; 32], u64)>,
    pub outcome: std::result::Result<(), Deny>,
    /// The server's time from the request to the decision (online scans).
    pub took_ms: Option<u32>,
}

/// A logged scan, as the compound's view lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateEvent {
    pub id: i64,
    pub gate_id: i64,
    pub pseudonym: Option<String>,
    pub direction: String,
    pub outcome: String,
    pub at: String,
}

fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    let first = chars.next().unwrap_or('*');
    format!("{first}{}", "*".repeat(chars.count().max(1)))
}

fn parse_time(field: &str, raw: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| {
            invalid(
                field,
                "invalid_time",
                format!("{field} must be an RFC 3339 time"),
            )
        })
}

fn time_text(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn parse_region(raw: &str) -> Result<String> {
    let r = raw.trim();
    if r.len() == 6 && r.bytes().all(|b| b.is_ascii_digit()) {
        Ok(r.to_string())
    } else {
        Err(invalid(
            "region",
            "invalid_region",
            "region must be a 6-digit administrative code",
        ))
    }
}

/// An Ed25519 public key given as 64 hex characters.
pub fn parse_device_key(raw: &str) -> Result<[u8; 32], ValidationError> {
    let bad = || {
        ValidationError::new(
            "public_key",
            "invalid_public_key",
            "public_key must be an Ed25519 public key as 64 hexadecimal characters",
        )
    };
    let bytes: [u8; 32] = hex::decode(raw.trim())
        .map_err(|_| bad())?
        .try_into()
        .map_err(|_| bad())?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
    Ok(bytes)
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const RIDER_SELECT: &str = "SELECT r.id, p.code AS platform, r.name_masked, r.account_id, r.status, \
     r.verified_by, r.region, r.created_at FROM gate_riders r JOIN gate_platforms p ON p.id = r.platform_id";

fn rider_from_row(r: &AnyRow) -> Result<Rider> {
    let status: String = r.try_get("status")?;
    Ok(Rider {
        id: r.try_get("id")?,
        platform: r.try_get("platform")?,
        name_masked: r.try_get("name_masked")?,
        account_id: r.try_get("account_id")?,
        status: RiderStatus::parse(&status)?,
        verified_by: r.try_get("verified_by")?,
        region: r.try_get("region")?,
        created_at: r.try_get("created_at")?,
    })
}

const ORDER_SELECT: &str = "SELECT o.id, o.platform_order_id, o.rider_id, o.compound_id, c.code AS compound_code, \
     b.code AS building_code, o.window_from, o.window_until, o.status, o.created_at FROM gate_orders o \
     JOIN places c ON c.id = o.compound_id LEFT JOIN places b ON b.id = o.building_id";

fn order_from_row(r: &AnyRow) -> Result<Order> {
    Ok(Order {
        id: r.try_get("id")?,
        platform_order_id: r.try_get("platform_order_id")?,
        rider_id: r.try_get("rider_id")?,
        compound_id: r.try_get("compound_id")?,
        compound_code: r.try_get("compound_code")?,
        building_code: r.try_get("building_code")?,
        window_from: r.try_get("window_from")?,
        window_until: r.try_get("window_until")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
    })
}

const GATE_SELECT: &str =
    "SELECT g.id, g.compound_id, c.code AS compound_code, g.name, g.account_id, g.region, \
     g.created_at FROM gate_gates g JOIN places c ON c.id = g.compound_id";

fn gate_from_row(r: &AnyRow) -> Result<GateDevice> {
    Ok(GateDevice {
        id: r.try_get("id")?,
        compound_id: r.try_get("compound_id")?,
        compound_code: r.try_get("compound_code")?,
        name: r.try_get("name")?,
        account_id: r.try_get("account_id")?,
        region: r.try_get("region")?,
        created_at: r.try_get("created_at")?,
    })
}

fn device_from_row(r: &AnyRow) -> Result<Device> {
    let status: String = r.try_get("status")?;
    Ok(Device {
        id: r.try_get("id")?,
        rider_id: r.try_get("rider_id")?,
        public_key: r.try_get("public_key")?,
        active: status == "active",
        created_at: r.try_get("created_at")?,
    })
}

/// The account a new gate acts through.
enum GateAccount {
    /// A new account with one API token (scope `gate:scan`) whose hash this is.
    NewToken(String),
    /// An existing `gate_device` account.
    Existing(i64),
}

/// Inserts an account with no password and one API token, in `tx`.
async fn insert_token_account(
    tx: &mut sqlx::AnyConnection,
    username: &str,
    role: &str,
    token_hash: &str,
    scope: &str,
) -> Result<i64> {
    let now = now_text();
    let account_id: i64 = sqlx::query_scalar(
        "INSERT INTO accounts (username, display_name, password_hash, role, disabled, created_at) \
         VALUES ($1, $1, $2, $3, 0, $4) RETURNING id",
    )
    .bind(username)
    .bind(NO_PASSWORD)
    .bind(role)
    .bind(&now)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO api_tokens (account_id, name, token_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(account_id)
    .bind(username)
    .bind(token_hash)
    .bind(scope)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    Ok(account_id)
}

fn trimmed(field: &str, raw: &str, max: usize) -> Result<String> {
    let v = raw.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(invalid(
            field,
            "invalid_length",
            format!("{field} must be 1 to {max} characters"),
        ));
    }
    Ok(v.to_string())
}

impl Store {
    // ----- Platforms -----

    /// Registers a platform with its own account and an API token (scope
    /// `gate:platform`) whose hash is `token_hash`.
    pub async fn create_platform(
        &self,
        actor: &Actor,
        code: &str,
        name: &str,
        token_hash: &str,
    ) -> Result<Platform> {
        let code = code.trim().to_ascii_lowercase();
        if code.is_empty()
            || code.len() > 32
            || !code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "code",
                "invalid_code",
                "code must be 1 to 32 letters, digits, - or _",
            ));
        }
        let name = trimmed("name", name, 80)?;
        let (actor, token_hash) = (actor.clone(), token_hash.to_string());
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM gate_platforms WHERE code = $1")
                .bind(&code)
                .fetch_optional(&self.reader)
                .await?;
        if exists.is_some() {
            return Err(StoreError::conflict("code", "a platform has that code"));
        }
        let id: i64 = self
            .write(move |tx| {
                Box::pin(async move {
                    let account = insert_token_account(
                        tx,
                        &format!("platform.{code}"),
                        "unit_staff",
                        &token_hash,
                        "gate:platform",
                    )
                    .await?;
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO gate_platforms (code, name, account_id, created_at) \
                         VALUES ($1, $2, $3, $4) RETURNING id",
                    )
                    .bind(&code)
                    .bind(&name)
                    .bind(account)
                    .bind(now_text())
                    .fetch_one(&mut *tx)
                    .await?;
                    audit::append(
                        tx,
                        &actor,
                        "create",
                        "gate_platform",
                        &id.to_string(),
                        None::<&()>,
                        Some(&serde_json::json!({ "code": code, "name": name, "account_id": account })),
                    )
                    .await?;
                    Ok(id)
                })
            })
            .await?;
        self.platform(id).await
    }

    pub async fn platform(&self, id: i64) -> Result<Platform> {
        self.platform_where("id = $1", id)
            .await?
            .ok_or(StoreError::not_found("platform"))
    }

    /// The platform an account acts for, if it is a platform's account.
    pub async fn platform_of_account(&self, account_id: i64) -> Result<Option<Platform>> {
        self.platform_where("account_id = $1", account_id).await
    }

    async fn platform_where(&self, cond: &str, v: i64) -> Result<Option<Platform>> {
        let row = sqlx::query(&format!(
            "SELECT id, code, name, account_id, created_at FROM gate_platforms WHERE {cond}"
        ))
        .bind(v)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| {
            Ok(Platform {
                id: r.try_get("id")?,
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                account_id: r.try_get("account_id")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    pub async fn platforms(&self) -> Result<Vec<Platform>> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM gate_platforms ORDER BY id")
            .fetch_all(&self.reader)
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.platform(id).await?);
        }
        Ok(out)
    }

    // ----- Riders and devices -----

    /// Registers a verified rider; `verified_by` says who checked the ID card
    /// (`admin:<account>` or `platform:<code>`).
    pub async fn register_rider(
        &self,
        actor: &Actor,
        pii: &PiiKey,
        r: &NewRider,
        verified_by: &str,
    ) -> Result<Rider> {
        let name = parse_person_name(&r.name)?;
        let id_card = IdCardNumber::parse(&r.id_card)?;
        let region = parse_region(&r.region)?;
        let platform_id: i64 = sqlx::query_scalar("SELECT id FROM gate_platforms WHERE code = $1")
            .bind(r.platform_code.trim())
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| {
                invalid(
                    "platform",
                    "unknown_platform",
                    format!("no platform has the code {}", r.platform_code.trim()),
                )
            })?;
        if let Some(account_id) = r.account_id {
            let role: Option<String> =
                sqlx::query_scalar("SELECT role FROM accounts WHERE id = $1")
                    .bind(account_id)
                    .fetch_optional(&self.reader)
                    .await?;
            if role.as_deref() != Some("rider") {
                return Err(invalid(
                    "account_id",
                    "not_a_rider_account",
                    "account_id must name an account with the rider role",
                ));
            }
        }
        let new_account = match &r.new_account {
            Some(_) if r.account_id.is_some() => {
                return Err(invalid(
                    "username",
                    "account_twice",
                    "give account_id or a new account, not both",
                ))
            }
            Some((username, hash)) => {
                let username = crate::accounts::parse_username(username)?;
                if self.account_by_username(&username).await?.is_some() {
                    return Err(StoreError::conflict("username", "that username is taken"));
                }
                Some((username, hash.clone()))
            }
            None => None,
        };
        let id_hash = pii.keyed_hash("id_card", id_card.expose());
        let masked = mask_name(&name);
        let (actor, verified_by, mut account_id) =
            (actor.clone(), verified_by.to_string(), r.account_id);
        let id: i64 = self
            .write(move |tx| {
                Box::pin(async move {
                    let now = now_text();
                    if let Some((username, hash)) = &new_account {
                        let id: i64 = sqlx::query_scalar(
                            "INSERT INTO accounts (username, display_name, password_hash, role, disabled, created_at) \
                             VALUES ($1, $2, $3, 'rider', 0, $4) RETURNING id",
                        )
                        .bind(username)
                        .bind(&masked)
                        .bind(hash)
                        .bind(&now)
                        .fetch_one(&mut *tx)
                        .await?;
                        audit::append(
                            tx,
                            &actor,
                            "create",
                            "account",
                            &id.to_string(),
                            None::<&()>,
                            Some(&serde_json::json!({ "username": username, "role": "rider" })),
                        )
                        .await?;
                        account_id = Some(id);
                    }
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO gate_riders (platform_id, name_masked, id_card_hash, account_id, status, \
                         verified_by, region, created_at, updated_at) VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $7) \
                         RETURNING id",
                    )
                    .bind(platform_id)
                    .bind(&masked)
                    .bind(&id_hash)
                    .bind(account_id)
                    .bind(&verified_by)
                    .bind(&region)
                    .bind(&now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Conflict { .. } => StoreError::conflict(
                            "id_card",
                            "a rider with that ID card, or for that account, is already registered",
                        ),
                        other => other,
                    })?;
                    audit::append(
                        tx,
                        &actor,
                        "create",
                        "gate_rider",
                        &id.to_string(),
                        None::<&()>,
                        Some(&serde_json::json!({
                            "platform_id": platform_id, "name": masked, "account_id": account_id,
                            "verified_by": verified_by, "region": region,
                        })),
                    )
                    .await?;
                    Ok(id)
                })
            })
            .await?;
        self.rider(id).await
    }

    pub async fn rider(&self, id: i64) -> Result<Rider> {
        let row = sqlx::query(&format!("{RIDER_SELECT} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::not_found("rider"))?;
        rider_from_row(&row)
    }

    pub async fn rider_of_account(&self, account_id: i64) -> Result<Option<Rider>> {
        let row = sqlx::query(&format!("{RIDER_SELECT} WHERE r.account_id = $1"))
            .bind(account_id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(rider_from_row).transpose()
    }

    /// Riders, newest first; of one platform when given.
    pub async fn riders(&self, platform_id: Option<i64>) -> Result<Vec<Rider>> {
        let rows = sqlx::query(&format!(
            "{RIDER_SELECT} WHERE ($1 IS NULL OR r.platform_id = $1) ORDER BY r.id DESC LIMIT 500"
        ))
        .bind(platform_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rider_from_row).collect()
    }

    pub async fn set_rider_status(
        &self,
        actor: &Actor,
        id: i64,
        status: RiderStatus,
    ) -> Result<Rider> {
        let before = self.rider(id).await?;
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                sqlx::query("UPDATE gate_riders SET status = $1, updated_at = $2 WHERE id = $3")
                    .bind(status.as_str())
                    .bind(now_text())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                audit::append(
                    tx,
                    &actor,
                    "set_status",
                    "gate_rider",
                    &id.to_string(),
                    Some(&serde_json::json!({ "status": before.status })),
                    Some(&serde_json::json!({ "status": status })),
                )
                .await?;
                Ok(())
            })
        })
        .await?;
        self.rider(id).await
    }

    /// Registers a rider's phone key. A rider has one active device: adding one
    /// revokes the others.
    pub async fn add_device(&self, actor: &Actor, rider_id: i64, key: &[u8; 32]) -> Result<Device> {
        self.rider(rider_id).await?;
        let (actor, key) = (actor.clone(), hex::encode(key));
        let id: i64 = self
            .write(move |tx| {
                Box::pin(async move {
                    let now = now_text();
                    sqlx::query(
                        "UPDATE gate_devices SET status = 'revoked', revoked_at = $1 \
                         WHERE rider_id = $2 AND status = 'active'",
                    )
                    .bind(&now)
                    .bind(rider_id)
                    .execute(&mut *tx)
                    .await?;
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO gate_devices (rider_id, public_key, status, created_at) \
                         VALUES ($1, $2, 'active', $3) RETURNING id",
                    )
                    .bind(rider_id)
                    .bind(&key)
                    .bind(&now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Conflict { .. } => StoreError::conflict(
                            "public_key",
                            "that device key is already registered",
                        ),
                        other => other,
                    })?;
                    audit::append(
                        tx,
                        &actor,
                        "create",
                        "gate_device",
                        &id.to_string(),
                        None::<&()>,
                        Some(&serde_json::json!({ "rider_id": rider_id, "public_key": key })),
                    )
                    .await?;
                    Ok(id)
                })
            })
            .await?;
        self.device(id).await
    }

    pub async fn device(&self, id: i64) -> Result<Device> {
        let row = sqlx::query(
            "SELECT id, rider_id, public_key, status, created_at FROM gate_devices WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::not_found("device"))?;
        device_from_row(&row)
    }

    pub async fn devices_of(&self, rider_id: i64) -> Result<Vec<Device>> {
        let rows = sqlx::query(
            "SELECT id, rider_id, public_key, status, created_at FROM gate_devices \
             WHERE rider_id = $1 ORDER BY id",
        )
        .bind(rider_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    /// Revokes a device key. The rider's account is signed out everywhere too: a lost
    /// phone still holding a session could otherwise simply bind a new key, so binding
    /// again needs the password.
    pub async fn revoke_device(&self, actor: &Actor, id: i64) -> Result<Device> {
        let device = self.device(id).await?;
        let account = self.rider(device.rider_id).await?.account_id;
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE gate_devices SET status = 'revoked', revoked_at = $1 \
                     WHERE id = $2 AND status = 'active'",
                )
                .bind(now_text())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if let Some(account) = account {
                    sqlx::query("DELETE FROM sessions WHERE account_id = $1")
                        .bind(account)
                        .execute(&mut *tx)
                        .await?;
                }
                audit::append(
                    tx,
                    &actor,
                    "revoke",
                    "gate_device",
                    &id.to_string(),
                    None::<&()>,
                    None::<&()>,
                )
                .await?;
                Ok(())
            })
        })
        .await?;
        self.device(id).await
    }

    // ----- Gates -----

    /// Registers a gate device at a compound, with its own account and an API token
    /// (scope `gate:scan`) whose hash is `token_hash`.
    pub async fn create_gate(
        &self,
        actor: &Actor,
        compound_code: &str,
        name: &str,
        token_hash: &str,
    ) -> Result<GateDevice> {
        self.insert_gate(
            actor,
            compound_code,
            name,
            GateAccount::NewToken(token_hash.to_string()),
        )
        .await
    }

    /// Registers a gate that acts through an existing `gate_device` account: a gate
    /// page on a tablet, signed in with a password, rather than a box with a token.
    pub async fn create_gate_for_account(
        &self,
        actor: &Actor,
        compound_code: &str,
        name: &str,
        account_id: i64,
    ) -> Result<GateDevice> {
        let role: Option<String> = sqlx::query_scalar("SELECT role FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(&self.reader)
            .await?;
        match role.as_deref() {
            None => return Err(StoreError::not_found("account")),
            Some("gate_device") => {}
            Some(_) => {
                return Err(invalid(
                    "account",
                    "not_a_gate_account",
                    "a gate acts through an account with the role gate_device",
                ))
            }
        }
        self.insert_gate(
            actor,
            compound_code,
            name,
            GateAccount::Existing(account_id),
        )
        .await
    }

    async fn insert_gate(
        &self,
        actor: &Actor,
        compound_code: &str,
        name: &str,
        account: GateAccount,
    ) -> Result<GateDevice> {
        let name = trimmed("name", name, 80)?;
        let compound = self
            .place_by_code(compound_code.trim())
            .await?
            .ok_or_else(|| {
                invalid(
                    "compound",
                    "unknown_place",
                    format!("no place has the code {}", compound_code.trim()),
                )
            })?;
        let actor = actor.clone();
        let id: i64 = self
            .write(move |tx| {
                Box::pin(async move {
                    let account = match account {
                        GateAccount::NewToken(token_hash) => {
                            let suffix = rand::random::<u32>();
                            insert_token_account(
                                tx,
                                &format!("gate.{}.{suffix:08x}", compound.id),
                                "gate_device",
                                &token_hash,
                                "gate:scan",
                            )
                            .await?
                        }
                        GateAccount::Existing(id) => id,
                    };
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO gate_gates (compound_id, name, account_id, region, created_at) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    )
                    .bind(compound.id)
                    .bind(&name)
                    .bind(account)
                    .bind(&compound.region)
                    .bind(now_text())
                    .fetch_one(&mut *tx)
                    .await?;
                    audit::append(
                        tx,
                        &actor,
                        "create",
                        "gate",
                        &id.to_string(),
                        None::<&()>,
                        Some(&serde_json::json!({
                            "compound": compound.code, "name": name, "account_id": account,
                        })),
                    )
                    .await?;
                    Ok(id)
                })
            })
            .await?;
        self.gate(id).await
    }

    pub async fn gate(&self, id: i64) -> Result<GateDevice> {
        let row = sqlx::query(&format!("{GATE_SELECT} WHERE g.id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::not_found("gate"))?;
        gate_from_row(&row)
    }

    pub async fn gate_of_account(&self, account_id: i64) -> Result<Option<GateDevice>> {
        let row = sqlx::query(&format!("{GATE_SELECT} WHERE g.account_id = $1"))
            .bind(account_id)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(gate_from_row).transpose()
    }

    pub async fn gates(&self) -> Result<Vec<GateDevice>> {
        let rows = sqlx::query(&format!("{GATE_SELECT} ORDER BY g.id"))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(gate_from_row).collect()
    }

    // ----- Orders -----

    /// Declares an order for `platform_id`, idempotently on its platform order id:
    /// the same declaration again returns the same order (`false`: not new); a
    /// different one under the same id is a conflict.
    pub async fn declare_order(
        &self,
        actor: &Actor,
        platform_id: i64,
        o: &NewOrder,
    ) -> Result<(Order, bool)> {
        let order_id = trimmed("order_id", &o.platform_order_id, 64)?;
        let from = parse_time("window_from", &o.window_from)?;
        let until = parse_time("window_until", &o.window_until)?;
        if until <= from {
            return Err(invalid(
                "window_until",
                "invalid_window",
                "window_until must be after window_from",
            ));
        }
        if until - from > chrono::Duration::hours(24) {
            return Err(invalid(
                "window_until",
                "invalid_window",
                "an order window is at most 24 hours",
            ));
        }
        let rider = match self.rider(o.rider_id).await {
            Err(StoreError::NotFound { .. }) => {
                return Err(invalid("rider_id", "unknown_rider", "no rider has that id"))
            }
            r => r?,
        };
        let platform = self.platform(platform_id).await?;
        if rider.platform != platform.code {
            return Err(invalid(
                "rider_id",
                "not_your_rider",
                "the rider is registered with another platform",
            ));
        }
        let place = |field: &'static str, code: &str| {
            let code = code.trim().to_string();
            async move {
                self.place_by_code(&code).await?.ok_or_else(|| {
                    invalid(
                        field,
                        "unknown_place",
                        format!("no place has the code {code}"),
                    )
                })
            }
        };
        let compound = place("compound", &o.compound_code).await?;
        let building = match &o.building_code {
            Some(b) => {
                let b = place("building", b).await?;
                if !b.path.starts_with(&compound.path) || b.id == compound.id {
                    return Err(invalid(
                        "building",
                        "not_in_compound",
                        "the building is not in the compound",
                    ));
                }
                Some(b)
            }
            None => None,
        };
        let (from, until) = (time_text(from), time_text(until));
        if let Some(existing) = self.order_by_platform_id(platform_id, &order_id).await? {
            let same = existing.rider_id == rider.id
                && existing.compound_id == compound.id
                && existing.building_code == building.as_ref().map(|b| b.code.clone())
                && existing.window_from == from
                && existing.window_until == until;
            return if same {
                Ok((existing, false))
            } else {
                Err(StoreError::conflict(
                    "order_id",
                    "this order id was declared with different details",
                ))
            };
        }
        let actor = actor.clone();
        let (oid, rider_id) = (order_id.clone(), rider.id);
        let inserted = self
            .write(move |tx| {
                Box::pin(async move {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO gate_orders (platform_id, platform_order_id, rider_id, compound_id, building_id, \
                         window_from, window_until, status, region, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9) RETURNING id",
                    )
                    .bind(platform_id)
                    .bind(&oid)
                    .bind(rider_id)
                    .bind(compound.id)
                    .bind(building.as_ref().map(|b| b.id))
                    .bind(&from)
                    .bind(&until)
                    .bind(&compound.region)
                    .bind(now_text())
                    .fetch_one(&mut *tx)
                    .await?;
                    audit::append(
                        tx,
                        &actor,
                        "declare",
                        "gate_order",
                        &id.to_string(),
                        None::<&()>,
                        Some(&serde_json::json!({
                            "platform_id": platform_id, "order_id": oid, "rider_id": rider_id,
                            "compound": compound.code, "window_from": from, "window_until": until,
                        })),
                    )
                    .await?;
                    Ok(id)
                })
            })
            .await;
        match inserted {
            Ok(id) => Ok((self.order(id).await?, true)),
            // A concurrent declaration of the same order won: answer as a repeat would.
            Err(StoreError::Conflict { .. }) => {
                let again = NewOrder {
                    platform_order_id: order_id,
                    ..o.clone()
                };
                Box::pin(self.declare_order(&Actor::system("retry"), platform_id, &again)).await
            }
            Err(e) => Err(e),
        }
    }

    pub async fn order(&self, id: i64) -> Result<Order> {
        let row = sqlx::query(&format!("{ORDER_SELECT} WHERE o.id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::not_found("order"))?;
        order_from_row(&row)
    }

    pub async fn order_by_platform_id(
        &self,
        platform_id: i64,
        order_id: &str,
    ) -> Result<Option<Order>> {
        let row = sqlx::query(&format!(
            "{ORDER_SELECT} WHERE o.platform_id = $1 AND o.platform_order_id = $2"
        ))
        .bind(platform_id)
        .bind(order_id.trim())
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    // ----- Issuer keys -----

    /// The current issuer key, made on first use.
    pub async fn issuer(&self, pii: &PiiKey) -> Result<Issuer> {
        let row = sqlx::query(
            "SELECT kid, private_key_enc FROM gate_issuer_keys WHERE accepted_until IS NULL \
             ORDER BY created_at DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?;
        match row {
            Some(r) => {
                let kid: String = r.try_get("kid")?;
                let sealed: String = r.try_get("private_key_enc")?;
                issuer_of(pii, &kid, &sealed)
            }
            None => {
                self.rotate_issuer_key(&Actor::system("gate"), pii, 0, 0)
                    .await?;
                Box::pin(self.issuer(pii)).await
            }
        }
    }

    /// Makes a new current issuer key; the previous current key stays trusted until
    /// `now + overlap` (Unix seconds). Returns the new key id.
    pub async fn rotate_issuer_key(
        &self,
        actor: &Actor,
        pii: &PiiKey,
        now: u64,
        overlap: u64,
    ) -> Result<String> {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let mut kid = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut kid);
        let kid = hex::encode(kid);
        let public = hex::encode(key.verifying_key().to_bytes());
        let sealed = pii.encrypt(&hex::encode(key.to_bytes()));
        let (actor, k) = (actor.clone(), kid.clone());
        self.write(move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE gate_issuer_keys SET accepted_until = $1 WHERE accepted_until IS NULL",
                )
                .bind(i64_of(now.saturating_add(overlap)))
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO gate_issuer_keys (kid, public_key, private_key_enc, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&k)
                .bind(&public)
                .bind(&sealed)
                .bind(now_text())
                .execute(&mut *tx)
                .await?;
                audit::append(
                    tx,
                    &actor,
                    "rotate",
                    "gate_issuer_key",
                    &k,
                    None::<&()>,
                    Some(&serde_json::json!({ "public_key": public, "overlap_seconds": overlap })),
                )
                .await?;
                Ok(())
            })
        })
        .await?;
        Ok(kid)
    }

    /// The signing keys of every issuer key trusted at `now` (the current one first):
    /// the lists for gate boxes are signed by each, so a box that knows only the old
    /// key accepts the list that introduces the new one during the overlap.
    pub async fn trusted_issuers(&self, pii: &PiiKey, now: u64) -> Result<Vec<Issuer>> {
        let rows = sqlx::query(
            "SELECT kid, private_key_enc FROM gate_issuer_keys \
             WHERE accepted_until IS NULL OR accepted_until > $1 \
             ORDER BY accepted_until IS NOT NULL, created_at DESC",
        )
        .bind(i64_of(now))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let kid: String = r.try_get("kid")?;
                let sealed: String = r.try_get("private_key_enc")?;
                issuer_of(pii, &kid, &sealed)
            })
            .collect()
    }

    /// The issuer keys gates trust at `now`: the current one and those still in
    /// their overlap.
    pub async fn trusted_issuer_keys(&self, now: u64) -> Result<Vec<PublicIssuerKey>> {
        let rows = sqlx::query(
            "SELECT kid, public_key, accepted_until FROM gate_issuer_keys \
             WHERE accepted_until IS NULL OR accepted_until > $1 ORDER BY created_at DESC",
        )
        .bind(i64_of(now))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let until: Option<i64> = r.try_get("accepted_until")?;
                Ok(PublicIssuerKey {
                    kid: r.try_get("kid")?,
                    public_key: r.try_get("public_key")?,
                    accepted_until: until.map(u64_of),
                })
            })
            .collect()
    }

    /// The same keys as a [`TrustList`] for `lianxin_pass::Gate`.
    pub async fn trust_list(&self, now: u64) -> Result<TrustList> {
        let keys = self.trusted_issuer_keys(now).await?;
        let mut list = TrustList::default();
        for k in keys {
            let kid = hex::decode(&k.kid).ok().and_then(|b| KeyId::from_slice(&b));
            let key = hex::decode(&k.public_key)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok());
            if let (Some(kid), Some(key)) = (kid, key) {
                list.keys.push(TrustedKey {
                    kid,
                    key,
                    accepted_until: k.accepted_until,
                });
            }
        }
        Ok(list)
    }

    // ----- Tickets -----

    /// The ticket for the rider's current order on the rider's active device: the
    /// stored one while it has time to run, else a fresh one signed by the current
    /// issuer key. `now` is Unix seconds.
    pub async fn current_ticket(
        &self,
        pii: &PiiKey,
        rider_id: i64,
        now: u64,
    ) -> Result<IssuedTicket> {
        let rider = self.rider(rider_id).await?;
        if rider.status != RiderStatus::Active {
            return Err(StoreError::conflict(
                "rider",
                "the rider is not active; no pass is issued",
            ));
        }
        let device = self
            .devices_of(rider_id)
            .await?
            .into_iter()
            .rfind(|d| d.active)
            .ok_or_else(|| StoreError::conflict("device", "the rider has no registered device"))?;
        let now_t = chrono::DateTime::from_timestamp(i64_of(now), 0).unwrap_or_default();
        // The open order whose window has not ended, soonest first.
        let row = sqlx::query(&format!(
            "{ORDER_SELECT} WHERE o.rider_id = $1 AND o.status = 'open' AND o.window_until > $2 \
             ORDER BY o.window_from LIMIT 1"
        ))
        .bind(rider_id)
        .bind(time_text(now_t))
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::not_found("current order"))?;
        let order = order_from_row(&row)?;
        let issuer = self.issuer(pii).await?;
        let kid = hex::encode(issuer.kid.as_bytes());
        let existing = sqlx::query(
            "SELECT pseudonym, bytes, not_before, not_after FROM gate_tickets \
             WHERE order_id = $1 AND device_id = $2 AND kid = $3 AND not_after > $4 \
             ORDER BY not_after DESC LIMIT 1",
        )
        .bind(order.id)
        .bind(device.id)
        .bind(&kid)
        .bind(i64_of(now + REUSE_MARGIN_SECONDS))
        .fetch_optional(&self.reader)
        .await?;
        if let Some(r) = existing {
            let bytes: String = r.try_get("bytes")?;
            let nb: i64 = r.try_get("not_before")?;
            let na: i64 = r.try_get("not_after")?;
            return Ok(IssuedTicket {
                pseudonym: r.try_get("pseudonym")?,
                bytes: hex::decode(bytes).map_err(|e| StoreError::Config(e.to_string()))?,
                order_id: order.id,
                compound_id: order.compound_id,
                compound_code: order.compound_code,
                not_before: u64_of(nb),
                not_after: u64_of(na),
                kid,
            });
        }
        let from = u64_of(parse_time("window_from", &order.window_from)?.timestamp());
        let until = u64_of(parse_time("window_until", &order.window_until)?.timestamp());
        // A ticket lives at most MAX_TICKET_SECONDS from its issue, whatever the order
        // window: the revocation list relies on it (see `revocations`).
        if from > now + MAX_TICKET_SECONDS {
            return Err(StoreError::conflict(
                "order",
                "the current order's window starts more than two hours from now; its pass is issued closer to it",
            ));
        }
        let not_before = from;
        let not_after = until.min(now + MAX_TICKET_SECONDS);
        let mut pseudonym = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut pseudonym);
        let platform = self.platform_code_of_order(order.id).await?;
        let key_bytes = parse_device_key(&device.public_key)?;
        let claims = Claims {
            pseudonym,
            order_hash: order_hash(pii, &platform, &order.platform_order_id),
            compound: u64_of(order.compound_id),
            not_before,
            not_after,
            device_key: key_bytes,
        };
        let bytes = issuer.issue(&claims);
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let region: String = sqlx::query_scalar("SELECT region FROM gate_orders WHERE id = $1")
            .bind(order.id)
            .fetch_one(&self.reader)
            .await?;
        let t = IssuedTicket {
            pseudonym: hex::encode(pseudonym),
            bytes,
            order_id: order.id,
            compound_id: order.compound_id,
            compound_code: order.compound_code.clone(),
            not_before,
            not_after,
            kid: kid.clone(),
        };
        let row = t.clone();
        let device_id = device.id;
        self.write(move |tx| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO gate_tickets (pseudonym, digest, order_id, rider_id, device_id, compound_id, \
                     not_before, not_after, kid, bytes, region, issued_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(&row.pseudonym)
                .bind(&digest)
                .bind(row.order_id)
                .bind(rider_id)
                .bind(device_id)
                .bind(row.compound_id)
                .bind(i64_of(row.not_before))
                .bind(i64_of(row.not_after))
                .bind(&row.kid)
                .bind(hex::encode(&row.bytes))
                .bind(&region)
                .bind(now_text())
                .execute(&mut *tx)
                .await?;
                Ok(())
            })
        })
        .await?;
        Ok(t)
    }

    async fn platform_code_of_order(&self, order_id: i64) -> Result<String> {
        Ok(sqlx::query_scalar(
            "SELECT p.code FROM gate_orders o JOIN gate_platforms p ON p.id = o.platform_id WHERE o.id = $1",
        )
        .bind(order_id)
        .fetch_one(&self.reader)
        .await?)
    }

    /// What offline gates must refuse at `now`: the pseudonyms of unexpired tickets
    /// whose rider is suspended or revoked, and the revoked device keys.
    pub async fn revocations(&self, now: u64) -> Result<Revocations> {
        // A ticket lives at most MAX_TICKET_SECONDS and none is issued to a rider or a
        // device that is not active, so only a rider or device whose status changed
        // since then can hold a live ticket: the list stays as short as the tickets
        // are, however many riders and retired phones pile up over the years.
        let since = crate::demands::ts(
            chrono::DateTime::from_timestamp(i64_of(now.saturating_sub(MAX_TICKET_SECONDS)), 0)
                .unwrap_or_default(),
        );
        let pseudonyms: Vec<String> = sqlx::query_scalar(
            "SELECT t.pseudonym FROM gate_riders r JOIN gate_tickets t ON t.rider_id = r.id \
             WHERE r.status IN ('suspended', 'revoked') AND r.updated_at >= $1 AND t.not_after > $2 \
             ORDER BY t.pseudonym",
        )
        .bind(&since)
        .bind(i64_of(now))
        .fetch_all(&self.reader)
        .await?;
        let device_keys: Vec<String> = sqlx::query_scalar(
            "SELECT d.public_key FROM gate_devices d WHERE d.status = 'revoked' AND d.revoked_at >= $1 \
             AND EXISTS (SELECT 1 FROM gate_tickets t WHERE t.device_id = d.id AND t.not_after > $2) \
             ORDER BY d.public_key",
        )
        .bind(&since)
        .bind(i64_of(now))
        .fetch_all(&self.reader)
        .await?;
        Ok(Revocations {
            pseudonyms,
            device_keys,
        })
    }

    // ----- Scans -----

    /// What the online gate needs to know about a ticket: whether its rider or
    /// device is revoked (an unknown ticket or device counts as revoked) and whether
    /// its holder is inside.
    pub async fn ticket_facts(
        &self,
        pseudonym: &[u8; 16],
        device_key: &[u8; 32],
    ) -> Result<TicketFacts> {
        let p = hex::encode(pseudonym);
        let row = sqlx::query(
            "SELECT r.status AS rider_status, d.status AS device_status, d.public_key, \
             (SELECT inside FROM gate_presence WHERE pseudonym = t.pseudonym) AS inside \
             FROM gate_tickets t JOIN gate_riders r ON r.id = t.rider_id \
             JOIN gate_devices d ON d.id = t.device_id WHERE t.pseudonym = $1",
        )
        .bind(&p)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else {
            return Ok(TicketFacts {
                rider_revoked: true,
                device_revoked: true,
                inside: false,
            });
        };
        let rider: String = row.try_get("rider_status")?;
        let device: String = row.try_get("device_status")?;
        let inside: Option<i64> = row.try_get("inside")?;
        // The ticket names the key it was issued for; a ticket whose key differs
        // from its device row's cannot pass either.
        let device_key_hex: String = row.try_get("public_key")?;
        Ok(TicketFacts {
            rider_revoked: rider != "active",
            device_revoked: device != "active" || device_key_hex != hex::encode(device_key),
            inside: inside.unwrap_or(0) != 0,
        })
    }

    /// Logs a scan durably and makes the decision final, in one transaction:
    /// - a scan that spent its code inserts the replay key; if another scan already
    ///   did (on any server), this one is `Replayed`;
    /// - an admitted scan flips presence only if the rider is on the expected side,
    ///   else it becomes `AlreadyInside` / `NotInside`.
    ///
    /// Returns the final outcome, which is also what the log holds.
    pub async fn record_scan(&self, scan: Scan) -> Result<std::result::Result<(), Deny>> {
        self.record_scan_at(scan, now_text()).await
    }

    /// [`Store::record_scan`] for a scan that happened at `at` (RFC 3339): what an
    /// offline gate box uploads later.
    pub async fn record_scan_at(
        &self,
        scan: Scan,
        at: String,
    ) -> Result<std::result::Result<(), Deny>> {
        // Every statement here either cannot fail on the data (the replay insert and
        // the presence change are conditional, never refused) or fails because the
        // database did: so the job needs no savepoint of its own.
        self.write_unguarded(move |tx| {
            Box::pin(async move {
                let pseudonym = scan.pseudonym.map(hex::encode);
                let code = |o: &std::result::Result<(), Deny>| match o {
                    Ok(()) => "pass",
                    Err(d) => d.code(),
                };
                let insert = |replay_key: Option<String>, outcome: &'static str| {
                    let (pseudonym, at, region) =
                        (pseudonym.clone(), at.clone(), scan.region.clone());
                    let step = scan.spent.map(|(_, s)| i64_of(s));
                    sqlx::query_scalar::<_, i64>(
                            "INSERT INTO gate_events (gate_id, compound_id, pseudonym, step, replay_key, direction, \
                             outcome, took_ms, region, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                             ON CONFLICT (replay_key) DO NOTHING RETURNING id",
                        )
                        .bind(scan.gate_id)
                        .bind(scan.compound_id)
                        .bind(pseudonym)
                        .bind(step)
                        .bind(replay_key)
                        .bind(scan.direction.as_str())
                        .bind(outcome)
                        .bind(scan.took_ms.map(i64::from))
                        .bind(region)
                        .bind(at)
                };
                let Some((digest, step)) = scan.spent else {
                    insert(None, code(&scan.outcome))
                        .fetch_one(&mut *tx)
                        .await?;
                    return Ok(scan.outcome);
                };
                let key = format!("{}:{step}", hex::encode(digest));
                let Some(event) = insert(Some(key), code(&scan.outcome))
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    insert(None, Deny::Replayed.code())
                        .fetch_one(&mut *tx)
                        .await?;
                    return Ok(Err(Deny::Replayed));
                };
                if scan.outcome.is_err() {
                    return Ok(scan.outcome);
                }
                let p = pseudonym.unwrap_or_default();
                let moved: Option<String> = match scan.direction {
                    Direction::Entry => {
                        sqlx::query_scalar(
                            "INSERT INTO gate_presence (pseudonym, inside, region, updated_at) VALUES ($1, 1, $2, $3) \
                             ON CONFLICT (pseudonym) DO UPDATE SET inside = 1, updated_at = excluded.updated_at \
                             WHERE gate_presence.inside = 0 RETURNING pseudonym",
                        )
                        .bind(&p)
                        .bind(&scan.region)
                        .bind(&at)
                        .fetch_optional(&mut *tx)
                        .await?
                    }
                    Direction::Exit => {
                        sqlx::query_scalar(
                            "UPDATE gate_presence SET inside = 0, updated_at = $1 \
                             WHERE pseudonym = $2 AND inside = 1 RETURNING pseudonym",
                        )
                        .bind(&at)
                        .bind(&p)
                        .fetch_optional(&mut *tx)
                        .await?
                    }
                };
                if moved.is_some() {
                    return Ok(Ok(()));
                }
                let deny = match scan.direction {
                    Direction::Entry => Deny::AlreadyInside,
                    Direction::Exit => Deny::NotInside,
                };
                sqlx::query("UPDATE gate_events SET outcome = $1 WHERE id = $2")
                    .bind(deny.code())
                    .bind(event)
                    .execute(&mut *tx)
                    .await?;
                Ok(Err(deny))
            })
        })
        .await
    }

    /// The gate that logged the scan with this replay key (`digest hex:step`), if any:
    /// how an uploaded offline event is recognised as already applied.
    pub async fn replay_key_gate(&self, replay_key: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT gate_id FROM gate_events WHERE replay_key = $1")
                .bind(replay_key)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    /// The latest scans at a compound, newest first.
    pub async fn gate_events(&self, compound_id: i64, limit: i64) -> Result<Vec<GateEvent>> {
        let rows = sqlx::query(
            "SELECT id, gate_id, pseudonym, direction, outcome, at FROM gate_events \
             WHERE compound_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(compound_id)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GateEvent {
                    id: r.try_get("id")?,
                    gate_id: r.try_get("gate_id")?,
                    pseudonym: r.try_get("pseudonym")?,
                    direction: r.try_get("direction")?,
                    outcome: r.try_get("outcome")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }
}

impl Store {
    // ----- The entries-and-exits view -----

    /// The compounds with at least one gate that `scope` may see: inside its place
    /// subtree, or served by an organisation inside its org subtree (the compound's
    /// property company sees its own gates).
    pub async fn gate_compounds(&self, scope: &DataScope) -> Result<Vec<GateCompound>> {
        let (org_pat, place_pat) = scope_patterns(scope);
        let rows = sqlx::query(&format!(
            "SELECT c.id, c.code, c.name, COUNT(g.id) AS gates FROM gate_gates g \
             JOIN places c ON c.id = g.compound_id WHERE {COMPOUND_IN_SCOPE} \
             GROUP BY c.id, c.code, c.name ORDER BY c.code"
        ))
        .bind(org_pat)
        .bind(place_pat)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GateCompound {
                    id: r.try_get("id")?,
                    code: r.try_get("code")?,
                    name: r.try_get("name")?,
                    gates: r.try_get("gates")?,
                })
            })
            .collect()
    }

    /// The scans at a compound in scope since `since` (RFC 3339), newest first, at
    /// most `limit`. Each names the gate and, for a pass whose ticket is known, the
    /// order's platform and building: never the rider.
    pub async fn gate_log(
        &self,
        scope: &DataScope,
        compound_id: i64,
        since: &str,
        limit: i64,
    ) -> Result<Vec<GateLogRow>> {
        let (org_pat, place_pat) = scope_patterns(scope);
        let rows = sqlx::query(&format!(
            "SELECT e.id, e.at, e.gate_id, g.name AS gate_name, e.direction, e.outcome, e.pseudonym, \
             e.took_ms, p.name AS platform, b.name AS building FROM gate_events e \
             JOIN gate_gates g ON g.id = e.gate_id JOIN places c ON c.id = e.compound_id \
             LEFT JOIN gate_tickets t ON t.pseudonym = e.pseudonym \
             LEFT JOIN gate_orders o ON o.id = t.order_id \
             LEFT JOIN gate_platforms p ON p.id = o.platform_id \
             LEFT JOIN places b ON b.id = o.building_id \
             WHERE e.compound_id = $3 AND e.at >= $4 AND {COMPOUND_IN_SCOPE} \
             ORDER BY e.at DESC, e.id DESC LIMIT $5"
        ))
        .bind(org_pat)
        .bind(place_pat)
        .bind(compound_id)
        .bind(since)
        .bind(limit.clamp(1, 100_000))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(GateLogRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    gate_id: r.try_get("gate_id")?,
                    gate_name: r.try_get("gate_name")?,
                    direction: r.try_get("direction")?,
                    outcome: r.try_get("outcome")?,
                    pseudonym: r.try_get("pseudonym")?,
                    took_ms: r.try_get("took_ms")?,
                    platform: r.try_get("platform")?,
                    building: r.try_get("building")?,
                })
            })
            .collect()
    }
}

/// A compound with rider gates, as the entries-and-exits view offers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateCompound {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub gates: i64,
}

/// One line of a compound's entries and exits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateLogRow {
    pub id: i64,
    pub at: String,
    pub gate_id: i64,
    pub gate_name: String,
    pub direction: String,
    /// `pass`, or the refusal's reason code.
    pub outcome: String,
    /// The ticket's pseudonym (hex), when the issuer signature held.
    pub pseudonym: Option<String>,
    pub took_ms: Option<i64>,
    pub platform: Option<String>,
    pub building: Option<String>,
}

/// A compound `c` in scope: in the place subtree ($2), or served by an organisation
/// in the org subtree ($1).
const COMPOUND_IN_SCOPE: &str = "(c.path LIKE $2 OR EXISTS (SELECT 1 FROM org_places op \
     JOIN orgs so ON so.id = op.org_id WHERE op.place_id = c.id AND so.path LIKE $1))";

/// The keyed hash of a platform's order id that a ticket carries: the first 16
/// bytes of the master key's keyed hash for the purpose `gate_order`.
pub fn order_hash(pii: &PiiKey, platform: &str, order_id: &str) -> [u8; 16] {
    let full = pii.keyed_hash("gate_order", &format!("{platform}\0{order_id}"));
    let mut out = [0u8; 16];
    if let Ok(b) = hex::decode(&full[..32]) {
        out.copy_from_slice(&b);
    }
    out
}

fn issuer_of(pii: &PiiKey, kid: &str, sealed: &str) -> Result<Issuer> {
    let broken = |why: &str| StoreError::Config(format!("issuer key {kid}: {why}"));
    let secret = pii
        .decrypt(sealed)
        .map_err(|_| broken("cannot be unsealed with this master key"))?;
    let secret: [u8; 32] = hex::decode(secret)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| broken("damaged"))?;
    let kid = hex::decode(kid)
        .ok()
        .and_then(|b| KeyId::from_slice(&b))
        .ok_or_else(|| broken("bad key id"))?;
    Ok(Issuer {
        kid,
        key: SigningKey::from_bytes(&secret),
    })
}
