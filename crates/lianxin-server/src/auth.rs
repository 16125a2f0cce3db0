//! Who is calling: passwords, sessions, API tokens, CSRF and the login rate limit.
//!
//! A browser logs in with a password and gets a session cookie (HttpOnly,
//! SameSite=Lax, Secure when served over TLS) holding a random token; the database
//! keeps only the token's hash. Forms carry a CSRF token derived from the session
//! (an HMAC under the server key), so it needs no storage and dies with the session.
//! Integrations and devices send `Authorization: Bearer lxt_…`; a token carries
//! scopes that narrow what its account may do, and needs no CSRF token because a
//! browser never attaches it on its own.

use crate::error::ApiError;
use crate::AppState;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use axum::http::{header, HeaderMap};
use lianxin_domain::pii::{random_token, PiiKey};
use lianxin_domain::role::{Permission, Role};
use lianxin_store::accounts::Account;
use lianxin_store::audit::Actor;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const SESSION_COOKIE: &str = "lx_session";
pub const PRELOGIN_COOKIE: &str = "lx_pre";
pub const LANG_COOKIE: &str = "lx_lang";

/// Hashes a password with argon2id and a fresh salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| ApiError::internal())
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A password policy small enough to remember and long enough to matter.
pub fn check_new_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < 10 {
        return Err(ApiError::invalid(
            "password",
            "password must be at least 10 characters",
        ));
    }
    Ok(())
}

/// How a request proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Session { token_hash: String },
    Token { id: i64, scopes: Vec<String> },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: Account,
    pub credential: Credential,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        match &self.credential {
            Credential::Session { .. } => Actor::account(self.account.id),
            Credential::Token { id, .. } => Actor::token(*id),
        }
    }

    pub fn role(&self) -> Role {
        self.account.role
    }

    /// The role must allow it, and a token must carry a scope that covers it.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if !self.account.role.allows(permission) {
            return Err(ApiError::forbidden("your role does not allow this"));
        }
        if let Credential::Token { scopes, .. } = &self.credential {
            let needed: &[&str] = match permission {
                Permission::ReadRegistry => &["registry:read", "registry:write"],
                Permission::WriteRegistry => &["registry:write"],
                Permission::ManageAccounts => &["admin"],
                Permission::ReadAudit => &["audit:read", "admin"],
                Permission::ReadDemands => &["demands:read", "demands:write"],
                Permission::HandleDemands => &["demands:write"],
                Permission::ManageLoop => &["admin"],
                Permission::ReadGovernance => &["governance:read", "governance:write"],
                Permission::RecordVisits | Permission::ManageCommunity => &["governance:write"],
                Permission::ManageGovernance => &["admin"],
                Permission::ReadGateLog => &["gate:read"],
                Permission::ManageMap => &["map:write", "admin"],
                Permission::ReadRewards => &["rewards:read", "rewards:write", "admin"],
                Permission::AwardPoints => &["rewards:write", "admin"],
                Permission::ManageRewards => &["admin"],
            };
            if !scopes.iter().any(|s| needed.contains(&s.as_str())) {
                return Err(ApiError::forbidden("the token's scopes do not allow this"));
            }
        }
        Ok(())
    }

    /// The CSRF token forms must echo, when the caller uses a session.
    pub fn csrf_token(&self, key: &PiiKey) -> Option<String> {
        match &self.credential {
            Credential::Session { token_hash } => Some(csrf_for(key, "session", token_hash)),
            Credential::Token { .. } => None,
        }
    }
}

/// The API token scopes there are.
pub const TOKEN_SCOPES: &[&str] = &[
    "registry:read",
    "registry:write",
    "audit:read",
    "demands:read",
    "demands:write",
    "governance:read",
    "governance:write",
    "open311",
    "gate:platform",
    "gate:scan",
    "gate:read",
    "map:write",
    "rewards:read",
    "rewards:write",
    "admin",
];

pub fn csrf_for(key: &PiiKey, kind: &str, value: &str) -> String {
    key.keyed_hash(&format!("csrf/{kind}"), value)[..32].to_string()
}

/// Constant-time comparison, so a CSRF check leaks nothing through timing.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value with the platform's cookie policy.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// Resolves the caller from a bearer token or the session cookie; `None` if neither
/// is present or valid.
pub async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>, ApiError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthenticated)?;
        let hash = PiiKey::token_hash(token.trim());
        return match state.store.api_token_account(&hash).await? {
            Some((t, account)) => Ok(Some(Caller {
                account,
                credential: Credential::Token {
                    id: t.id,
                    scopes: t.scopes,
                },
            })),
            None => Err(ApiError::unauthenticated()),
        };
    }
    if let Some(token) = cookie(headers, SESSION_COOKIE) {
        let hash = PiiKey::token_hash(&token);
        if let Some(account) = state.store.session_account(&hash).await? {
            return Ok(Some(Caller {
                account,
                credential: Credential::Session { token_hash: hash },
            }));
        }
    }
    Ok(None)
}

/// Starts a session: returns the cookie token to send to the browser.
pub async fn start_session(state: &AppState, account_id: i64) -> Result<String, ApiError> {
    let token = random_token("", 32);
    let expires = chrono::Utc::now() + chrono::Duration::hours(state.settings.session_hours);
    state
        .store
        .create_session(
            account_id,
            &PiiKey::token_hash(&token),
            &expires.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        )
        .await?;
    Ok(token)
}

/// Counts failed logins per client address and per username in a sliding window.
/// In memory: a restart forgets, which errs on the side of letting people in.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_PER_USER: usize = 10;
const MAX_PER_ADDR: usize = 30;

impl LoginLimiter {
    fn keys(addr: Option<IpAddr>, username: &str) -> [(String, usize); 2] {
        [
            (
                format!("u:{}", username.trim().to_ascii_lowercase()),
                MAX_PER_USER,
            ),
            (
                format!("a:{}", addr.map(|a| a.to_string()).unwrap_or_default()),
                MAX_PER_ADDR,
            ),
        ]
    }

    pub fn allowed(&self, addr: Option<IpAddr>, username: &str) -> bool {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::keys(addr, username).iter().all(|(k, max)| {
            let list = map.entry(k.clone()).or_default();
            list.retain(|t| now.duration_since(*t) < WINDOW);
            list.len() < *max
        })
    }

    pub fn failed(&self, addr: Option<IpAddr>, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.clear();
        }
        for (k, _) in Self::keys(addr, username) {
            map.entry(k).or_default().push(Instant::now());
        }
    }

    pub fn succeeded(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("u:{}", username.trim().to_ascii_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn limiter_blocks_after_repeated_failures() {
        let l = LoginLimiter::default();
        let addr = Some("127.0.0.1".parse().unwrap());
        for _ in 0..MAX_PER_USER {
            assert!(l.allowed(addr, "admin"));
            l.failed(addr, "admin");
        }
        assert!(!l.allowed(addr, "admin"));
        assert!(l.allowed(addr, "someone.else"));
        l.succeeded("admin");
        assert!(l.allowed(addr, "admin"));
    }

    #[test]
    fn cookies_parse() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; lx_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "zzz"), None);
        assert!(set_cookie("x", "y", None, true).contains("; Secure"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
