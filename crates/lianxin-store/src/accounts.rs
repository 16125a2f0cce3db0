//! Accounts, login sessions and API tokens.
//!
//! Secrets are never stored: a password is stored as its argon2id hash (computed by
//! the caller), and sessions and API tokens as the SHA-256 of the random token the
//! client holds. A stolen database therefore logs nobody in.

use crate::audit::{self, Actor};
use crate::{now_text, Result, Store, StoreError};
use lianxin_domain::role::{DataScope, Role};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub scope_place_id: Option<i64>,
    pub scope_place_name: Option<String>,
    pub scope_org_id: Option<i64>,
    pub scope_org_name: Option<String>,
    pub person_id: Option<i64>,
    pub disabled: bool,
    #[serde(skip)]
    pub scope: DataScope,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub scope_place_code: Option<String>,
    pub scope_org_code: Option<String>,
    pub person_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiToken {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

const ACCOUNT_SELECT: &str = "SELECT a.id, a.username, a.display_name, a.role, a.scope_place_id, a.scope_org_id, \
     a.person_id, a.disabled, a.password_hash, p.path AS place_path, p.name AS place_name, o.path AS org_path, \
     o.name AS org_name FROM accounts a LEFT JOIN places p ON p.id = a.scope_place_id LEFT JOIN orgs o ON o.id = a.scope_org_id";

fn account_from_row(r: &AnyRow) -> Result<Account> {
    let role: String = r.try_get("role")?;
    let disabled: i64 = r.try_get("disabled")?;
    Ok(Account {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        display_name: r.try_get("display_name")?,
        role: Role::parse(&role)?,
        scope_place_id: r.try_get("scope_place_id")?,
        scope_place_name: r.try_get("place_name")?,
        scope_org_id: r.try_get("scope_org_id")?,
        scope_org_name: r.try_get("org_name")?,
        person_id: r.try_get("person_id")?,
        disabled: disabled != 0,
        scope: DataScope {
            place_path: r.try_get("place_path")?,
            org_path: r.try_get("org_path")?,
        },
    })
}

/// A username: 3 to 40 lower-case letters, digits, dots, dashes or underscores.
pub(crate) fn parse_username(raw: &str) -> Result<String> {
    let u = raw.trim().to_ascii_lowercase();
    if u.len() < 3
        || u.len() > 40
        || !u
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(StoreError::Invalid(lianxin_domain::ValidationError::new(
            "username",
            "invalid_username",
            "username must be 3 to 40 letters, digits, dots, dashes or underscores",
        )));
    }
    Ok(u)
}

impl Store {
    pub async fn create_account(&self, actor: &Actor, a: &NewAccount) -> Result<Account> {
        let username = parse_username(&a.username)?;
        let place_id = match &a.scope_place_code {
            Some(code) => Some(
                self.place_by_code(code)
                    .await?
                    .ok_or_else(|| {
                        StoreError::Invalid(lianxin_domain::ValidationError::new(
                            "scope_place",
                            "unknown_place",
                            format!("no place has the code {code}"),
                        ))
                    })?
                    .id,
            ),
            None => None,
        };
        let org_id = match &a.scope_org_code {
            Some(code) => Some(
                self.org_by_code(code)
                    .await?
                    .ok_or_else(|| {
                        StoreError::Invalid(lianxin_domain::ValidationError::new(
                            "scope_org",
                            "unknown_org",
                            format!("no organisation has the code {code}"),
                        ))
                    })?
                    .id,
            ),
            None => None,
        };
        if self.account_by_username(&username).await?.is_some() {
            return Err(StoreError::conflict("username", "that username is taken"));
        }
        let (actor, a, username) = (actor.clone(), a.clone(), username.clone());
        let id: i64 = self.write(move |tx| {
                Box::pin(async move {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO accounts (username, display_name, password_hash, role, scope_place_id, scope_org_id, person_id, \
                     disabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8) RETURNING id",
                )
                .bind(&username)
                .bind(a.display_name.trim())
                .bind(&a.password_hash)
                .bind(a.role.as_str())
                .bind(place_id)
                .bind(org_id)
                .bind(a.person_id)
                .bind(now_text())
                .fetch_one(&mut *tx)
                .await?;
                audit::append(
                    tx,
                    &actor,
                    "create",
                    "account",
                    &id.to_string(),
                    None::<&()>,
                    Some(&serde_json::json!({
                        "username": username, "role": a.role, "scope_place": a.scope_place_code,
                        "scope_org": a.scope_org_code,
                    })),
                )
                .await?;
                Ok(id)
                })
            })
            .await?;
        self.account(id).await
    }

    pub async fn account(&self, id: i64) -> Result<Account> {
        let row = sqlx::query(&format!("{ACCOUNT_SELECT} WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::not_found("account"))?;
        account_from_row(&row)
    }

    /// The account and its password hash, for login.
    pub async fn account_by_username(&self, username: &str) -> Result<Option<(Account, String)>> {
        let row = sqlx::query(&format!("{ACCOUNT_SELECT} WHERE a.username = $1"))
            .bind(username.trim().to_ascii_lowercase())
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| Ok((account_from_row(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    /// Changes the password; every session of the account ends.
    pub async fn set_password(&self, actor: &Actor, id: i64, password_hash: &str) -> Result<()> {
        let change = AccountChange::Password(password_hash.to_string());
        self.change_account(actor, id, change).await
    }

    /// Disables or re-enables an account; disabling ends its sessions at once (its
    /// API tokens stop working too, since they act as the account).
    pub async fn set_disabled(&self, actor: &Actor, id: i64, disabled: bool) -> Result<()> {
        self.change_account(actor, id, AccountChange::Disabled(disabled))
            .await
    }

    async fn change_account(&self, actor: &Actor, id: i64, change: AccountChange) -> Result<()> {
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let (update, action, ends_sessions) = match &change {
                    AccountChange::Password(hash) => (
                        sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
                            .bind(hash.clone()),
                        "set_password",
                        true,
                    ),
                    AccountChange::Disabled(d) => (
                        sqlx::query("UPDATE accounts SET disabled = $1 WHERE id = $2")
                            .bind(i64::from(*d)),
                        if *d { "disable" } else { "enable" },
                        *d,
                    ),
                };
                let n = update.bind(id).execute(&mut *tx).await?.rows_affected();
                if n == 0 {
                    return Err(StoreError::not_found("account"));
                }
                if ends_sessions {
                    sqlx::query("DELETE FROM sessions WHERE account_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                let id = id.to_string();
                audit::append(tx, &actor, action, "account", &id, None::<&()>, None::<&()>).await?;
                Ok(())
            })
        })
        .await
    }

    // ----- sessions -----

    pub async fn create_session(
        &self,
        account_id: i64,
        token_hash: &str,
        expires_at: &str,
    ) -> Result<()> {
        let (token_hash, expires_at) = (token_hash.to_string(), expires_at.to_string());
        self.write(move |tx| {
                Box::pin(async move {
                sqlx::query("INSERT INTO sessions (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                    .bind(&token_hash)
                    .bind(account_id)
                    .bind(now_text())
                    .bind(&expires_at)
                    .execute(&mut *tx)
                    .await?;
                audit::append(
                    tx,
                    &Actor::account(account_id),
                    "login",
                    "account",
                    &account_id.to_string(),
                    None::<&()>,
                    None::<&()>,
                )
                .await?;
                Ok(())
                })
            })
            .await?;
        Ok(())
    }

    /// The account behind a live session, if the session exists and has not expired.
    pub async fn session_account(&self, token_hash: &str) -> Result<Option<Account>> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT account_id FROM sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now_text())
        .fetch_optional(&self.reader)
        .await?;
        match id {
            Some(id) => {
                let a = self.account(id).await?;
                Ok((!a.disabled).then_some(a))
            }
            None => Ok(None),
        }
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now_text())
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    // ----- API tokens -----

    pub async fn create_api_token(
        &self,
        actor: &Actor,
        account_id: i64,
        name: &str,
        token_hash: &str,
        scopes: &[String],
        expires_at: Option<&str>,
    ) -> Result<ApiToken> {
        self.account(account_id).await?;
        let (actor, name, token_hash, scopes, expires_at) = (
            actor.clone(),
            name.to_string(),
            token_hash.to_string(),
            scopes.to_vec(),
            expires_at.map(str::to_string),
        );
        let id: i64 = self.write(move |tx| {
                Box::pin(async move {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO api_tokens (account_id, name, token_hash, scopes, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(account_id)
                .bind(name.trim())
                .bind(&token_hash)
                .bind(scopes.join(" "))
                .bind(now_text())
                .bind(&expires_at)
                .fetch_one(&mut *tx)
                .await?;
                audit::append(
                    tx,
                    &actor,
                    "create",
                    "api_token",
                    &id.to_string(),
                    None::<&()>,
                    Some(&serde_json::json!({ "account_id": account_id, "name": name, "scopes": scopes })),
                )
                .await?;
                Ok(id)
                })
            })
            .await?;
        self.api_token(id).await
    }

    pub async fn api_token(&self, id: i64) -> Result<ApiToken> {
        let row = sqlx::query(
            "SELECT id, account_id, name, scopes, created_at, expires_at, revoked_at FROM api_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::not_found("api token"))?;
        token_from_row(&row)
    }

    pub async fn api_tokens_of(&self, account_id: i64) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT id, account_id, name, scopes, created_at, expires_at, revoked_at FROM api_tokens \
             WHERE account_id = $1 ORDER BY id",
        )
        .bind(account_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// The token and its account, if the token is live (not revoked, not expired).
    /// The live token with this hash and its account, if the account is enabled: one
    /// query, since every request an integration sends asks it.
    pub async fn api_token_account(&self, token_hash: &str) -> Result<Option<(ApiToken, Account)>> {
        // The account's usual columns, with the token's in front of them.
        let select = ACCOUNT_SELECT.replacen(
            "SELECT ",
            "SELECT t.id AS t_id, t.name AS t_name, t.scopes AS t_scopes, \
             t.created_at AS t_created_at, t.expires_at AS t_expires_at, ",
            1,
        );
        let row = sqlx::query(&format!(
            "{select} JOIN api_tokens t ON t.account_id = a.id WHERE t.token_hash = $1 \
             AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)"
        ))
        .bind(token_hash)
        .bind(now_text())
        .fetch_optional(&self.reader)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let a = account_from_row(&r)?;
        let scopes: String = r.try_get("t_scopes")?;
        let t = ApiToken {
            id: r.try_get("t_id")?,
            account_id: a.id,
            name: r.try_get("t_name")?,
            scopes: scopes.split_whitespace().map(str::to_string).collect(),
            created_at: r.try_get("t_created_at")?,
            expires_at: r.try_get("t_expires_at")?,
            revoked_at: None,
        };
        Ok((!a.disabled).then_some((t, a)))
    }

    pub async fn revoke_api_token(&self, actor: &Actor, id: i64) -> Result<ApiToken> {
        self.api_token(id).await?;
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let n = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(now_text())
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Err(StoreError::conflict("id", "the token is already revoked"));
                }
                audit::append(
                    tx,
                    &actor,
                    "revoke",
                    "api_token",
                    &id.to_string(),
                    None::<&()>,
                    None::<&()>,
                )
                .await?;
                Ok(())
            })
        })
        .await?;
        self.api_token(id).await
    }
}

/// The changes an operator makes to an existing account.
enum AccountChange {
    Password(String),
    Disabled(bool),
}

fn token_from_row(r: &AnyRow) -> Result<ApiToken> {
    let scopes: String = r.try_get("scopes")?;
    Ok(ApiToken {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        name: r.try_get("name")?,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}
