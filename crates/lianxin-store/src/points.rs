//! The points ledger at rest: rules, balances, immutable transfers, awards, the
//! catalogue and redemptions (migration 0006).
//!
//! The rules themselves (accounts, assets, caps, multipliers, award ids) are
//! `lianxin_domain::points`; this module keeps the ledger's promises with the database:
//! - **Never awarded twice**: an award's id is derived from (event, person, rule) and is
//!   the primary key of `points_awards`, claimed in the transaction that writes the
//!   transfer. A retry with the same content gets the stored outcome back; with other
//!   content a `Conflict` (409) on `award_id`.
//! - **Never spent twice, never oversold**: a redemption decrements the stock balance
//!   and the person's balance by conditional updates (`… WHERE balance >= n`), never by
//!   read-check-write, and claims the UNIQUE (person, year, quarter) row — all in one
//!   transaction, so a refusal leaves nothing behind.
//! - **Every balance explained**: a balance changes only beside the transfer that
//!   explains it; [`Store::points_replay_balance`] recomputes it from the transfers.
//! - **Never lost**: writes go through the group-commit writer; an acknowledged award
//!   is committed.
//!
//! Balances are locked in the order of their account codes within a transaction (see
//! `Account::code`), so concurrent transactions on PostgreSQL never deadlock on them.
//! Redemption refusals are `Invalid` errors with stable codes: `out_of_stock`,
//! `insufficient_points`, `already_redeemed_this_quarter`, `outside_window`.

use crate::audit::{self, Actor};
use crate::{now_text, Engine, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use lianxin_domain::points::{
    award_content_hash, award_id, cap_fit, quarter_of, validate_event_ref, validate_rule_code,
    Account, Asset, Cap, Multipliers, Period, Quality, Rule, RuleDraft, Window,
};
use lianxin_domain::ValidationError;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, HashMap, HashSet};

fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationError::new(field, code, message))
}

use crate::demands::ts;

fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Config(format!("a stored time does not parse: {s}: {e}")))
}

/// An award to give: `event_ref` is the caller's id of what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwardRequest {
    pub event_ref: String,
    pub person_id: i64,
    /// The organisation whose pool issues the points.
    pub org_id: i64,
    pub rule_code: String,
    pub quality: Quality,
    pub at: DateTime<Utc>,
}

/// What an award came to. A replay returns the stored outcome with `replayed` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AwardOutcome {
    pub award_id: String,
    pub person_id: i64,
    pub org_id: i64,
    pub rule_code: String,
    pub rule_version: i64,
    pub quality: Quality,
    /// The points the completion was worth before the cap.
    pub requested: i64,
    /// The points given (less than `requested` when the cap cut it, possibly 0).
    pub points: i64,
    /// The transfer that gave them (none when 0 were given).
    pub transfer_id: Option<i64>,
    pub replayed: bool,
}

/// An immutable ledger transfer: `amount` of `asset` from `debit` to `credit`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transfer {
    pub id: i64,
    pub debit: Account,
    pub credit: Account,
    pub asset: Asset,
    pub amount: i64,
    /// `award`, `redemption`, `restock`, `correction`.
    pub reason: String,
    pub refs: serde_json::Value,
    pub award_id: Option<String>,
    pub redemption_id: Option<i64>,
    pub reverses_id: Option<i64>,
    pub created_at: String,
}

impl Transfer {
    /// The signed change this transfer made to `account`'s balance.
    pub fn delta_for(&self, account: Account) -> i64 {
        if self.credit == account {
            self.amount
        } else if self.debit == account {
            -self.amount
        } else {
            0
        }
    }
}

/// A catalogue item to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    pub org_id: i64,
    pub name: String,
    pub cost: i64,
    pub window: Window,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub cost: i64,
    pub window: Window,
    /// Units on hand: the balance of `stock:{id}` in `item:{id}`.
    pub stock: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redemption {
    pub id: i64,
    pub person_id: i64,
    pub item_id: i64,
    pub year: i64,
    pub quarter: i64,
    pub cost: i64,
    pub points_transfer_id: i64,
    pub unit_transfer_id: i64,
}

/// Sums over the whole ledger for one asset. In a sound ledger `debits == credits`
/// and `balances == 0`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetTotals {
    pub asset: Asset,
    pub debits: i64,
    pub credits: i64,
    pub balances: i64,
}

/// What a batch import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// New awards recorded (including those the cap cut to 0).
    pub awarded: usize,
    /// Requests already recorded with the same content (or repeated in the batch).
    pub replayed: usize,
    /// Points given in all.
    pub points: i64,
}

const RACED: &str = "the award was recorded by a concurrent request";

const AWARD_COLUMNS: &str = "a.award_id, a.content_hash, a.person_id, a.org_id, a.rule_code, \
     a.rule_version, a.quality, a.requested, a.points, t.id AS transfer_id";

fn outcome_from(row: &AnyRow) -> Result<(AwardOutcome, String)> {
    let quality: String = row.try_get("quality")?;
    Ok((
        AwardOutcome {
            award_id: row.try_get("award_id")?,
            person_id: row.try_get("person_id")?,
            org_id: row.try_get("org_id")?,
            rule_code: row.try_get("rule_code")?,
            rule_version: row.try_get("rule_version")?,
            quality: Quality::parse(&quality)?,
            requested: row.try_get("requested")?,
            points: row.try_get("points")?,
            transfer_id: row.try_get("transfer_id")?,
            replayed: true,
        },
        row.try_get("content_hash")?,
    ))
}

fn rule_from(row: &AnyRow) -> Result<Rule> {
    let cap_period: Option<String> = row.try_get("cap_period")?;
    let cap_points: Option<i64> = row.try_get("cap_points")?;
    let cap = match (cap_period, cap_points) {
        (Some(p), Some(points)) => Some(Cap {
            period: Period::parse(&p)?,
            points,
        }),
        _ => None,
    };
    let pct = |c: &str| -> Result<u32> {
        let v: i64 = row.try_get(c)?;
        u32::try_from(v).map_err(|_| StoreError::Config(format!("bad stored {c}")))
    };
    let valid_from: String = row.try_get("valid_from")?;
    Ok(Rule {
        code: row.try_get("code")?,
        version: row.try_get("version")?,
        category: row.try_get("category")?,
        points: row.try_get("points")?,
        multipliers: Multipliers {
            basic: pct("pct_basic")?,
            good: pct("pct_good")?,
            excellent: pct("pct_excellent")?,
        },
        cap,
        valid_from: parse_ts(&valid_from)?,
    })
}

fn transfer_from(row: &AnyRow) -> Result<Transfer> {
    let debit: String = row.try_get("debit")?;
    let credit: String = row.try_get("credit")?;
    let asset: String = row.try_get("asset")?;
    let refs: String = row.try_get("refs")?;
    Ok(Transfer {
        id: row.try_get("id")?,
        debit: Account::parse(&debit)?,
        credit: Account::parse(&credit)?,
        asset: Asset::parse(&asset)?,
        amount: row.try_get("amount")?,
        reason: row.try_get("reason")?,
        refs: serde_json::from_str(&refs).unwrap_or(serde_json::Value::Null),
        award_id: row.try_get("award_id")?,
        redemption_id: row.try_get("redemption_id")?,
        reverses_id: row.try_get("reverses_id")?,
        created_at: row.try_get("created_at")?,
    })
}

fn item_from(row: &AnyRow) -> Result<Item> {
    let first: i64 = row.try_get("window_first")?;
    let last: i64 = row.try_get("window_last")?;
    Ok(Item {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        cost: row.try_get("cost")?,
        window: Window::new(first as u16, last as u16)?,
        stock: row.try_get("stock")?,
    })
}

const TRANSFER_COLUMNS: &str = "id, debit, credit, asset, amount, reason, refs, award_id, \
     redemption_id, reverses_id, created_at";

const ITEM_SELECT: &str = "SELECT i.id, i.org_id, i.name, i.cost, i.window_first, i.window_last, \
     COALESCE(b.balance, 0) AS stock FROM points_items i \
     LEFT JOIN points_balances b ON b.account = 'stock:' || CAST(i.id AS TEXT) \
     AND b.asset = 'item:' || CAST(i.id AS TEXT)";

/// Adds `amount` to a balance (creating it).
async fn credit(tx: &mut AnyConnection, account: Account, asset: Asset, amount: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO points_balances (account, asset, balance) VALUES ($1, $2, $3) \
         ON CONFLICT (account, asset) DO UPDATE SET balance = points_balances.balance + excluded.balance",
    )
    .bind(account.code())
    .bind(asset.code())
    .bind(amount)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Takes `amount` from a balance; `false` (and nothing changed) if that would take it
/// below zero. Pools may go below zero.
async fn debit(
    tx: &mut AnyConnection,
    account: Account,
    asset: Asset,
    amount: i64,
) -> Result<bool> {
    if account.may_go_negative() {
        credit(tx, account, asset, -amount).await?;
        return Ok(true);
    }
    let changed = sqlx::query(
        "UPDATE points_balances SET balance = balance - $1 \
         WHERE account = $2 AND asset = $3 AND balance >= $1",
    )
    .bind(amount)
    .bind(account.code())
    .bind(asset.code())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// The ids of a new transfer's optional links.
#[derive(Default)]
struct Links<'a> {
    award_id: Option<&'a str>,
    redemption_id: Option<i64>,
    reverses_id: Option<i64>,
}

#[allow(clippy::too_many_arguments)]
async fn insert_transfer(
    tx: &mut AnyConnection,
    debit: Account,
    credit: Account,
    asset: Asset,
    amount: i64,
    reason: &str,
    refs: &serde_json::Value,
    links: Links<'_>,
    actor: &Actor,
    now: &str,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO points_transfers (debit, credit, asset, amount, reason, refs, award_id, \
         redemption_id, reverses_id, actor, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(debit.code())
    .bind(credit.code())
    .bind(asset.code())
    .bind(amount)
    .bind(reason)
    .bind(refs.to_string())
    .bind(links.award_id)
    .bind(links.redemption_id)
    .bind(links.reverses_id)
    .bind(&actor.0)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?)
}

/// Moves `amount` of `asset` between two accounts, locking their balances in account
/// order; `false` if the debit side lacks the amount.
async fn move_balances(
    tx: &mut AnyConnection,
    from: Account,
    to: Account,
    asset: Asset,
    amount: i64,
) -> Result<bool> {
    if from.code() < to.code() {
        if !debit(tx, from, asset, amount).await? {
            return Ok(false);
        }
        credit(tx, to, asset, amount).await?;
    } else {
        credit(tx, to, asset, amount).await?;
        if !debit(tx, from, asset, amount).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn validate_request(r: &AwardRequest) -> Result<()> {
    validate_event_ref(&r.event_ref)?;
    validate_rule_code(&r.rule_code)?;
    if r.person_id < 1 {
        return Err(invalid(
            "person_id",
            "invalid_id",
            "person_id must be positive",
        ));
    }
    if r.org_id < 1 {
        return Err(invalid("org_id", "invalid_id", "org_id must be positive"));
    }
    Ok(())
}

/// The award row of `id` with its transfer, if recorded.
async fn stored_award(tx: &mut AnyConnection, id: &str) -> Result<Option<(AwardOutcome, String)>> {
    let row = sqlx::query(&format!(
        "SELECT {AWARD_COLUMNS} FROM points_awards a \
         LEFT JOIN points_transfers t ON t.award_id = a.award_id WHERE a.award_id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    row.as_ref().map(outcome_from).transpose()
}

fn replay_of(stored: (AwardOutcome, String), content_hash: &str) -> Result<AwardOutcome> {
    let (outcome, hash) = stored;
    if hash == content_hash {
        Ok(outcome)
    } else {
        Err(content_conflict())
    }
}

fn content_conflict() -> StoreError {
    StoreError::conflict(
        "award_id",
        "this event was already awarded to this person under this rule with other content",
    )
}

/// A write's refusal (with nothing of it written) kept apart from a failure of the
/// database. Awards and imports run without a savepoint of their own
/// ([`Store::write_unguarded`]): they settle everything that could refuse them before
/// their first write and hand a refusal back as `Ok(Err(_))`, so the batch they share
/// commits without them; only a failure of the database (`Err`) sinks the batch.
type Decided<T> = Result<Result<T>>;

/// A decided write as its job returns it: on SQLite a refusal must not fail the shared
/// batch (and wrote nothing); on PostgreSQL it rolls its own transaction back (which
/// may have locked a cap counter with an upsert).
fn settle<T>(engine: Engine, decided: Decided<T>) -> Decided<T> {
    match (engine, decided) {
        (Engine::Postgres, Ok(Err(e))) => Err(e),
        (_, d) => d,
    }
}

/// The rule in force for an award, with (for its cap period, if any) what the person
/// already earned under it: one statement. `$4`–`$7` are the day, week, month and
/// quarter keys of the award's time.
const RULE_IN_FORCE: &str = "SELECT r.*, COALESCE((SELECT e.earned FROM points_earned e \
     WHERE e.person_id = $3 AND e.rule_code = r.code AND e.period_key = CASE r.cap_period \
     WHEN 'day' THEN $4 WHEN 'week' THEN $5 WHEN 'month' THEN $6 ELSE $7 END), 0) AS earned_before \
     FROM points_rules r WHERE r.code = $1 AND r.valid_from <= $2 ORDER BY r.version DESC LIMIT 1";

/// The `refs` of an award's transfer: what `serde_json::json!` of these fields prints
/// (keys in order), written directly.
fn award_refs(event_ref: &str, rule: &str, version: i64, quality: Quality, at: &str) -> String {
    let mut s = String::with_capacity(event_ref.len() + rule.len() + at.len() + 64);
    s.push_str("{\"at\":");
    json_str(&mut s, at);
    s.push_str(",\"event\":");
    json_str(&mut s, event_ref);
    s.push_str(",\"quality\":");
    json_str(&mut s, quality.as_str());
    s.push_str(",\"rule\":");
    json_str(&mut s, rule);
    s.push_str(",\"version\":");
    s.push_str(&version.to_string());
    s.push('}');
    s
}

/// Appends `v` as a JSON string, escaped as serde_json escapes it.
fn json_str(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Both sides of an award's transfer in one statement, in account order (`person:` sorts
/// before `pool:`), so concurrent transactions on PostgreSQL lock them in that order.
const AWARD_BALANCES: &str = "INSERT INTO points_balances (account, asset, balance) \
     VALUES ($1, 'points', $2), ($3, 'points', $4) ON CONFLICT (account, asset) \
     DO UPDATE SET balance = points_balances.balance + excluded.balance";

async fn award_in(
    tx: &mut AnyConnection,
    engine: Engine,
    actor: &Actor,
    r: &AwardRequest,
) -> Decided<AwardOutcome> {
    let id = award_id(&r.event_ref, r.person_id, &r.rule_code);
    let hash = award_content_hash(r.org_id, r.quality, r.at);
    let at = ts(r.at);
    let keys = [Period::Day, Period::Week, Period::Month, Period::Quarter].map(|p| p.key(r.at));
    let row = sqlx::query(RULE_IN_FORCE)
        .bind(&r.rule_code)
        .bind(&at)
        .bind(r.person_id)
        .bind(&keys[0])
        .bind(&keys[1])
        .bind(&keys[2])
        .bind(&keys[3])
        .fetch_optional(&mut *tx)
        .await?;
    let Some(row) = row else {
        // A recorded award with other content is a conflict before it is anything else.
        if let Some(stored) = stored_award(tx, &id).await? {
            return Ok(replay_of(stored, &hash));
        }
        return Ok(Err(invalid(
            "rule_code",
            "unknown_rule",
            format!("no rule {} is in force at {at}", r.rule_code),
        )));
    };
    let rule = rule_from(&row)?;
    let requested = rule.points_for(r.quality);
    let (period_key, points) = match rule.cap {
        None => (None, requested),
        Some(cap) => {
            let key = match cap.period {
                Period::Day => &keys[0],
                Period::Week => &keys[1],
                Period::Month => &keys[2],
                Period::Quarter => &keys[3],
            };
            let mut earned: i64 = row.try_get("earned_before")?;
            if engine == Engine::Postgres {
                // Locking the period's counter serialises awards of one person under
                // one capped rule, so the cap holds under concurrency. (On SQLite the
                // one writer does that, and the counter came with the rule.)
                earned = sqlx::query_scalar(
                    "INSERT INTO points_earned (person_id, rule_code, period_key, earned) \
                     VALUES ($1, $2, $3, 0) ON CONFLICT (person_id, rule_code, period_key) \
                     DO UPDATE SET earned = points_earned.earned RETURNING earned",
                )
                .bind(r.person_id)
                .bind(&r.rule_code)
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
            }
            (Some(key), cap_fit(requested, earned, Some(cap.points)))
        }
    };
    let now = now_text();
    // The claim is the first write: when the id is recorded already, nothing is written.
    let claimed = sqlx::query(
        "INSERT INTO points_awards (award_id, content_hash, event_ref, person_id, org_id, \
         rule_code, rule_version, category, quality, at, period_key, requested, points, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (award_id) DO NOTHING",
    )
    .bind(&id)
    .bind(&hash)
    .bind(&r.event_ref)
    .bind(r.person_id)
    .bind(r.org_id)
    .bind(&r.rule_code)
    .bind(rule.version)
    .bind(&rule.category)
    .bind(r.quality.as_str())
    .bind(&at)
    .bind(period_key)
    .bind(requested)
    .bind(points)
    .bind(&now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(match stored_award(tx, &id).await? {
            Some(stored) => replay_of(stored, &hash),
            None => Err(StoreError::conflict("award_id", RACED)),
        });
    }
    let mut transfer_id = None;
    if points > 0 {
        if let Some(key) = period_key {
            sqlx::query(
                "INSERT INTO points_earned (person_id, rule_code, period_key, earned) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (person_id, rule_code, period_key) \
                 DO UPDATE SET earned = points_earned.earned + excluded.earned",
            )
            .bind(r.person_id)
            .bind(&r.rule_code)
            .bind(key)
            .bind(points)
            .execute(&mut *tx)
            .await?;
        }
        let (from, to) = (Account::Pool(r.org_id), Account::Person(r.person_id));
        let refs = award_refs(&r.event_ref, &r.rule_code, rule.version, r.quality, &at);
        let tid: i64 = sqlx::query_scalar(
            "INSERT INTO points_transfers (debit, credit, asset, amount, reason, refs, award_id, \
             actor, created_at) VALUES ($1, $2, 'points', $3, 'award', $4, $5, $6, $7) RETURNING id",
        )
        .bind(from.code())
        .bind(to.code())
        .bind(points)
        .bind(refs)
        .bind(&id)
        .bind(&actor.0)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(AWARD_BALANCES)
            .bind(to.code())
            .bind(points)
            .bind(from.code())
            .bind(-points)
            .execute(&mut *tx)
            .await?;
        transfer_id = Some(tid);
    }
    let outcome = AwardOutcome {
        award_id: id,
        person_id: r.person_id,
        org_id: r.org_id,
        rule_code: r.rule_code.clone(),
        rule_version: rule.version,
        quality: r.quality,
        requested,
        points,
        transfer_id,
        replayed: false,
    };
    audit::append(
        tx,
        actor,
        "award",
        "points_awards",
        &outcome.award_id,
        None::<&()>,
        Some(&outcome),
    )
    .await?;
    Ok(Ok(outcome))
}

impl Store {
    /// Adds a version of a rule (version = the highest so far + 1).
    pub async fn points_put_rule(&self, actor: &Actor, draft: RuleDraft) -> Result<Rule> {
        draft.validate()?;
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let version: i64 = sqlx::query_scalar(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM points_rules WHERE code = $1",
                )
                .bind(&draft.code)
                .fetch_one(&mut *tx)
                .await?;
                let m = draft.multipliers;
                sqlx::query(
                    "INSERT INTO points_rules (code, version, category, points, pct_basic, pct_good, \
                     pct_excellent, cap_period, cap_points, valid_from, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&draft.code)
                .bind(version)
                .bind(&draft.category)
                .bind(draft.points)
                .bind(i64::from(m.basic))
                .bind(i64::from(m.good))
                .bind(i64::from(m.excellent))
                .bind(draft.cap.map(|c| c.period.as_str()))
                .bind(draft.cap.map(|c| c.points))
                .bind(ts(draft.valid_from))
                .bind(now_text())
                .execute(&mut *tx)
                .await?;
                let rule = Rule {
                    code: draft.code,
                    version,
                    category: draft.category,
                    points: draft.points,
                    multipliers: draft.multipliers,
                    cap: draft.cap,
                    valid_from: draft.valid_from,
                };
                audit::append(tx, &actor, "create", "points_rules", &format!("{}:{version}", rule.code), None::<&()>, Some(&rule)).await?;
                Ok(rule)
            })
        })
        .await
    }

    /// Every version of every rule, by code then version.
    pub async fn points_rules(&self) -> Result<Vec<Rule>> {
        let rows = sqlx::query("SELECT * FROM points_rules ORDER BY code, version")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(rule_from).collect()
    }

    /// Gives the points of one completion (see the module notes on idempotency).
    pub async fn points_award(&self, actor: &Actor, request: AwardRequest) -> Result<AwardOutcome> {
        validate_request(&request)?;
        let engine = self.engine;
        for _ in 0..2 {
            let (actor, r) = (actor.clone(), request.clone());
            let result = self
                .write_unguarded(move |tx| {
                    Box::pin(async move { settle(engine, award_in(tx, engine, &actor, &r).await) })
                })
                .await
                .and_then(|decided| decided);
            match result {
                // A concurrent twin claimed the id first: its outcome is now visible.
                Err(StoreError::Conflict { message, .. }) if message == RACED => continue,
                other => return other,
            }
        }
        Err(StoreError::conflict("award_id", RACED))
    }

    /// Adds a catalogue item (with no stock; see [`Store::points_restock`]).
    pub async fn points_add_item(&self, actor: &Actor, item: NewItem) -> Result<Item> {
        let name = item.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(invalid(
                "name",
                "invalid_name",
                "an item name is 1 to 100 characters",
            ));
        }
        if item.cost < 1 {
            return Err(invalid(
                "cost",
                "invalid_cost",
                "an item costs at least 1 point",
            ));
        }
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO points_items (org_id, name, cost, window_first, window_last, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(item.org_id)
                .bind(&name)
                .bind(item.cost)
                .bind(i64::from(item.window.first))
                .bind(i64::from(item.window.last))
                .bind(now_text())
                .fetch_one(&mut *tx)
                .await?;
                let out = Item { id, org_id: item.org_id, name, cost: item.cost, window: item.window, stock: 0 };
                audit::append(tx, &actor, "create", "points_items", &id.to_string(), None::<&()>, Some(&out)).await?;
                Ok(out)
            })
        })
        .await
    }

    /// Puts `units` more of an item in stock: a transfer of `item:{id}` from the
    /// organisation's pool to the item's stock account.
    pub async fn points_restock(
        &self,
        actor: &Actor,
        item_id: i64,
        units: i64,
    ) -> Result<Transfer> {
        if units < 1 {
            return Err(invalid("units", "invalid_units", "restock at least 1 unit"));
        }
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let org: i64 = sqlx::query_scalar("SELECT org_id FROM points_items WHERE id = $1")
                    .bind(item_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| StoreError::not_found("item"))?;
                let (from, to, asset) = (
                    Account::Pool(org),
                    Account::Stock(item_id),
                    Asset::Item(item_id),
                );
                let now = now_text();
                let refs = serde_json::json!({ "item": item_id });
                let id = insert_transfer(
                    tx,
                    from,
                    to,
                    asset,
                    units,
                    "restock",
                    &refs,
                    Links::default(),
                    &actor,
                    &now,
                )
                .await?;
                move_balances(tx, from, to, asset, units).await?;
                let t = transfer_by_id(tx, id).await?;
                audit::append(
                    tx,
                    &actor,
                    "restock",
                    "points_items",
                    &item_id.to_string(),
                    None::<&()>,
                    Some(&t),
                )
                .await?;
                Ok(t)
            })
        })
        .await
    }

    pub async fn points_item(&self, id: i64) -> Result<Item> {
        let row = sqlx::query(&format!("{ITEM_SELECT} WHERE i.id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::not_found("item"))?;
        item_from(&row)
    }

    /// An organisation's catalogue.
    pub async fn points_items(&self, org_id: i64) -> Result<Vec<Item>> {
        let rows = sqlx::query(&format!("{ITEM_SELECT} WHERE i.org_id = $1 ORDER BY i.id"))
            .bind(org_id)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(item_from).collect()
    }

    /// Redeems one unit of an item for its cost, at `at`, in one transaction (see the
    /// module notes for the refusals).
    pub async fn points_redeem(
        &self,
        actor: &Actor,
        person_id: i64,
        item_id: i64,
        at: DateTime<Utc>,
    ) -> Result<Redemption> {
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let item = sqlx::query(&format!("{ITEM_SELECT} WHERE i.id = $1"))
                    .bind(item_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| StoreError::not_found("item"))?;
                let item = item_from(&item)?;
                if !item.window.contains(at) {
                    return Err(invalid("item_id", "outside_window", "this item cannot be redeemed on this day of the quarter"));
                }
                let (year, quarter) = quarter_of(at);
                let now = now_text();
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO points_redemptions (person_id, item_id, year, quarter, cost, at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (person_id, year, quarter) DO NOTHING RETURNING id",
                )
                .bind(person_id)
                .bind(item_id)
                .bind(i64::from(year))
                .bind(i64::from(quarter))
                .bind(item.cost)
                .bind(ts(at))
                .bind(&now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(id) = id else {
                    return Err(invalid("person_id", "already_redeemed_this_quarter", "this person has already redeemed this quarter"));
                };
                let person = Account::Person(person_id);
                let stock = Account::Stock(item_id);
                let unit = Asset::Item(item_id);
                // Account order: person, sink, stock.
                if !debit(tx, person, Asset::Points, item.cost).await? {
                    return Err(invalid("person_id", "insufficient_points", "not enough points for this item"));
                }
                credit(tx, person, unit, 1).await?;
                credit(tx, Account::Sink, Asset::Points, item.cost).await?;
                if !debit(tx, stock, unit, 1).await? {
                    return Err(invalid("item_id", "out_of_stock", "this item is out of stock"));
                }
                let refs = serde_json::json!({ "item": item_id, "year": year, "quarter": quarter });
                let links = || Links { redemption_id: Some(id), ..Links::default() };
                let points_transfer_id = insert_transfer(tx, person, Account::Sink, Asset::Points, item.cost, "redemption", &refs, links(), &actor, &now).await?;
                let unit_transfer_id = insert_transfer(tx, stock, person, unit, 1, "redemption", &refs, links(), &actor, &now).await?;
                let out = Redemption { id, person_id, item_id, year: year.into(), quarter: quarter.into(), cost: item.cost, points_transfer_id, unit_transfer_id };
                audit::append(tx, &actor, "redeem", "points_redemptions", &id.to_string(), None::<&()>, Some(&out)).await?;
                Ok(out)
            })
        })
        .await
    }

    /// Reverses a transfer with a new one (never an edit). A transfer is reversed at
    /// most once; reversing an award also gives back its room under the cap. Refused
    /// with `insufficient_points` when the credited account no longer holds the amount.
    pub async fn points_correct(
        &self,
        actor: &Actor,
        transfer_id: i64,
        reason: &str,
    ) -> Result<Transfer> {
        let reason = reason.trim().to_string();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(invalid(
                "reason",
                "invalid_reason",
                "a correction gives a reason of 1 to 500 characters",
            ));
        }
        let actor = actor.clone();
        self.write(move |tx| {
            Box::pin(async move {
                let original = sqlx::query(&format!("SELECT {TRANSFER_COLUMNS} FROM points_transfers WHERE id = $1"))
                    .bind(transfer_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .as_ref()
                    .map(transfer_from)
                    .transpose()?
                    .ok_or_else(|| StoreError::not_found("transfer"))?;
                let reversed: Option<i64> = sqlx::query_scalar("SELECT id FROM points_transfers WHERE reverses_id = $1")
                    .bind(transfer_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if reversed.is_some() {
                    return Err(StoreError::conflict("transfer_id", "this transfer has already been corrected"));
                }
                // An award's room under its cap follows the chain of corrections:
                // reversing the award (or a reversal of a reversal of it) gives the room
                // back; reversing a reversal takes it again.
                let (root, depth) = award_root(tx, &original).await?;
                if let Some(award) = root {
                    let row = sqlx::query("SELECT person_id, rule_code, period_key FROM points_awards WHERE award_id = $1")
                        .bind(&award)
                        .fetch_one(&mut *tx)
                        .await?;
                    let key: Option<String> = row.try_get("period_key")?;
                    if let Some(key) = key {
                        let person: i64 = row.try_get("person_id")?;
                        let rule: String = row.try_get("rule_code")?;
                        let change = if depth % 2 == 0 { -original.amount } else { original.amount };
                        sqlx::query(
                            "UPDATE points_earned SET earned = earned + $1 \
                             WHERE person_id = $2 AND rule_code = $3 AND period_key = $4",
                        )
                        .bind(change)
                        .bind(person)
                        .bind(&rule)
                        .bind(&key)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                let (from, to) = (original.credit, original.debit);
                if !move_balances(tx, from, to, original.asset, original.amount).await? {
                    return Err(invalid("transfer_id", "insufficient_points", "the account no longer holds what the transfer gave it"));
                }
                let now = now_text();
                let refs = serde_json::json!({ "reverses": transfer_id, "reason": reason });
                let links = Links { reverses_id: Some(transfer_id), ..Links::default() };
                let id = insert_transfer(tx, from, to, original.asset, original.amount, "correction", &refs, links, &actor, &now).await?;
                let t = transfer_by_id(tx, id).await?;
                audit::append(tx, &actor, "correct", "points_transfers", &transfer_id.to_string(), Some(&original), Some(&t)).await?;
                Ok(t)
            })
        })
        .await
    }

    /// The balance of one account in one asset (0 if it never moved).
    pub async fn points_balance(&self, account: Account, asset: Asset) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT balance FROM points_balances WHERE account = $1 AND asset = $2",
        )
        .bind(account.code())
        .bind(asset.code())
        .fetch_optional(&self.reader)
        .await?
        .unwrap_or(0))
    }

    /// Every stored balance, by account and asset.
    pub async fn points_balances(&self) -> Result<BTreeMap<(Account, Asset), i64>> {
        let rows = sqlx::query("SELECT account, asset, balance FROM points_balances")
            .fetch_all(&self.reader)
            .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            let account: String = r.try_get("account")?;
            let asset: String = r.try_get("asset")?;
            out.insert(
                (Account::parse(&account)?, Asset::parse(&asset)?),
                r.try_get("balance")?,
            );
        }
        Ok(out)
    }

    /// The balance of one account recomputed from its transfers.
    pub async fn points_replay_balance(&self, account: Account, asset: Asset) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(CASE WHEN credit = $1 THEN amount ELSE -amount END), 0) AS BIGINT) \
             FROM points_transfers WHERE (credit = $1 OR debit = $1) AND asset = $2",
        )
        .bind(account.code())
        .bind(asset.code())
        .fetch_one(&self.reader)
        .await?)
    }

    /// Every balance recomputed from the transfers (accounts that never moved are absent).
    pub async fn points_replay_all(&self) -> Result<BTreeMap<(Account, Asset), i64>> {
        let rows = sqlx::query(
            "SELECT account, asset, CAST(SUM(delta) AS BIGINT) AS balance FROM ( \
             SELECT credit AS account, asset, amount AS delta FROM points_transfers \
             UNION ALL SELECT debit AS account, asset, -amount AS delta FROM points_transfers) m \
             GROUP BY account, asset",
        )
        .fetch_all(&self.reader)
        .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            let account: String = r.try_get("account")?;
            let asset: String = r.try_get("asset")?;
            out.insert(
                (Account::parse(&account)?, Asset::parse(&asset)?),
                r.try_get("balance")?,
            );
        }
        Ok(out)
    }

    /// Per asset: the sum of all debits, of all credits, and of all balances.
    pub async fn points_totals(&self) -> Result<Vec<AssetTotals>> {
        let moved = sqlx::query("SELECT asset, CAST(SUM(amount) AS BIGINT) AS total FROM points_transfers GROUP BY asset ORDER BY asset")
            .fetch_all(&self.reader)
            .await?;
        let held =
            sqlx::query("SELECT asset, CAST(SUM(balance) AS BIGINT) AS total FROM points_balances GROUP BY asset")
                .fetch_all(&self.reader)
                .await?;
        let mut balances = HashMap::new();
        for r in held {
            let asset: String = r.try_get("asset")?;
            balances.insert(asset, r.try_get::<i64, _>("total")?);
        }
        let mut out = Vec::new();
        for r in moved {
            let asset: String = r.try_get("asset")?;
            let total: i64 = r.try_get("total")?;
            out.push(AssetTotals {
                asset: Asset::parse(&asset)?,
                // Each transfer debits one account and credits another by its amount.
                debits: total,
                credits: total,
                balances: balances.remove(&asset).unwrap_or(0),
            });
        }
        for (asset, total) in balances {
            out.push(AssetTotals {
                asset: Asset::parse(&asset)?,
                debits: 0,
                credits: 0,
                balances: total,
            });
        }
        Ok(out)
    }

    /// A person's transfers (points and items), oldest first, each with its reason and
    /// references.
    pub async fn points_history(&self, person_id: i64) -> Result<Vec<Transfer>> {
        let account = Account::Person(person_id).code();
        let rows = sqlx::query(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM points_transfers WHERE credit = $1 OR debit = $1 ORDER BY id"
        ))
        .bind(account)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(transfer_from).collect()
    }

    /// Every transfer, oldest first (for checks and exports).
    pub async fn points_transfers(&self, after: i64, limit: i64) -> Result<Vec<Transfer>> {
        let rows = sqlx::query(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM points_transfers WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(transfer_from).collect()
    }

    /// The redemptions as (person, year, quarter) counts above one — empty in a sound
    /// ledger (the UNIQUE constraint makes it so; this is the check).
    pub async fn points_redemption_counts(&self) -> Result<Vec<(i64, i64, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT person_id, year, quarter, COUNT(*) AS n FROM points_redemptions \
             GROUP BY person_id, year, quarter ORDER BY person_id, year, quarter",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("person_id")?,
                    r.try_get("year")?,
                    r.try_get("quarter")?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }

    /// How many transfers carry an award id that another transfer also carries (0 in a
    /// sound ledger), and how many awards there are.
    pub async fn points_award_counts(&self) -> Result<(i64, i64)> {
        let dup: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT award_id FROM points_transfers WHERE award_id IS NOT NULL \
             GROUP BY award_id HAVING COUNT(*) > 1) d",
        )
        .fetch_one(&self.reader)
        .await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM points_awards")
            .fetch_one(&self.reader)
            .await?;
        Ok((dup, n))
    }

    /// Imports many awards in one transaction, all or none: the same rules, caps and
    /// idempotency as [`Store::points_award`], with multi-row statements. A request
    /// whose id is recorded with other content fails the whole import.
    pub async fn points_import_awards(
        &self,
        actor: &Actor,
        requests: Vec<AwardRequest>,
    ) -> Result<ImportSummary> {
        for r in &requests {
            validate_request(r)?;
        }
        let actor = actor.clone();
        let engine = self.engine;
        self.write_unguarded(move |tx| {
            Box::pin(async move {
                settle(
                    engine,
                    import_in(tx, engine, &actor, requests, BatchMode::AllOrNothing).await,
                )
            })
        })
        .await
        .and_then(|decided| decided)
        .map(|(summary, _)| summary)
    }

    /// Gives many awards in one transaction, each on its own: every request gets the
    /// outcome or refusal [`Store::points_award`] would give it (a replay of a stored
    /// award, a repeat inside the batch as a replay of the first, 409 for other
    /// content, `unknown_rule`), with the cap applied in request order. The server
    /// gathers concurrent single awards into these batches, so each costs a share of
    /// a few multi-row statements instead of a dozen of its own. A failure of the
    /// database fails the whole batch (nothing of it is written).
    pub async fn points_award_batch(
        &self,
        actor: &Actor,
        requests: Vec<AwardRequest>,
    ) -> Result<Vec<Result<AwardOutcome>>> {
        let mut out: Vec<Option<Result<AwardOutcome>>> = Vec::with_capacity(requests.len());
        let mut valid = Vec::with_capacity(requests.len());
        let mut at = Vec::with_capacity(requests.len());
        for (i, r) in requests.into_iter().enumerate() {
            match validate_request(&r) {
                Ok(()) => {
                    valid.push(r);
                    at.push(i);
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        if !valid.is_empty() {
            let actor = actor.clone();
            let engine = self.engine;
            let (_, decided) = self
                .write_unguarded(move |tx| {
                    Box::pin(async move {
                        settle(
                            engine,
                            import_in(tx, engine, &actor, valid, BatchMode::EachOnItsOwn).await,
                        )
                    })
                })
                .await
                .and_then(|decided| decided)?;
            for (i, result) in at.into_iter().zip(decided) {
                out[i] = Some(result);
            }
        }
        Ok(out
            .into_iter()
            .map(|o| o.expect("every request has its outcome"))
            .collect())
    }
}

/// The award a transfer goes back to through its chain of corrections, and how many
/// corrections lie between (0: the transfer is the award's own).
async fn award_root(tx: &mut AnyConnection, t: &Transfer) -> Result<(Option<String>, u32)> {
    let mut depth = 0;
    let mut current = t.clone();
    loop {
        if let Some(award) = &current.award_id {
            return Ok((Some(award.clone()), depth));
        }
        let Some(prev) = current.reverses_id else {
            return Ok((None, depth));
        };
        current = transfer_by_id(tx, prev).await?;
        depth += 1;
    }
}

async fn transfer_by_id(tx: &mut AnyConnection, id: i64) -> Result<Transfer> {
    let row = sqlx::query(&format!(
        "SELECT {TRANSFER_COLUMNS} FROM points_transfers WHERE id = $1"
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    transfer_from(&row)
}

/// One request of an import, decided in memory.
struct Planned {
    /// Its place in the import.
    at_index: usize,
    version: i64,
    category: String,
    period_key: Option<String>,
    requested: i64,
    points: i64,
}

/// Parameters per multi-row statement of an import: SQLite binds at most 32,766 (and
/// PostgreSQL 65,535).
const IMPORT_PARAMS: usize = 32_000;

/// The SQL of a multi-row statement cut into chunks of `rows` rows: a full chunk's SQL
/// is built once (and sqlx prepares it once per connection); only the last chunk's
/// differs.
struct Chunked {
    engine: Engine,
    head: &'static str,
    /// A row's columns: a parameter (`None`) or a literal.
    cols: &'static [Option<&'static str>],
    tail: &'static str,
    /// Whether each row is parenthesised (`VALUES (…), (…)`) or a bare list (`IN (…)`).
    rows_in_parens: bool,
    rows: usize,
    full: Option<String>,
}

const PARAM: Option<&str> = None;

impl Chunked {
    fn values(
        engine: Engine,
        head: &'static str,
        cols: &'static [Option<&'static str>],
        tail: &'static str,
    ) -> Chunked {
        let width = cols.iter().filter(|c| c.is_none()).count().max(1);
        Chunked {
            engine,
            head,
            cols,
            tail,
            rows_in_parens: true,
            rows: IMPORT_PARAMS / width,
            full: None,
        }
    }

    fn list(engine: Engine, head: &'static str, tail: &'static str) -> Chunked {
        Chunked {
            rows_in_parens: false,
            ..Chunked::values(engine, head, &[PARAM], tail)
        }
    }

    /// `?` placeholders on SQLite (sqlx looks `$n` names up in a way that grows with the
    /// square of their count; `?` is positional), `$n` on PostgreSQL.
    fn build(&self, n: usize) -> String {
        let mut s = String::with_capacity(self.head.len() + n * self.cols.len() * 8 + 200);
        s.push_str(self.head);
        let mut k = 0;
        for r in 0..n {
            if r > 0 {
                s.push(',');
            }
            if self.rows_in_parens {
                s.push('(');
            }
            for (c, col) in self.cols.iter().enumerate() {
                if c > 0 {
                    s.push(',');
                }
                match (col, self.engine) {
                    (Some(literal), _) => s.push_str(literal),
                    (None, Engine::Sqlite) => s.push('?'),
                    (None, Engine::Postgres) => {
                        k += 1;
                        s.push('$');
                        s.push_str(&k.to_string());
                    }
                }
            }
            if self.rows_in_parens {
                s.push(')');
            }
        }
        s.push_str(self.tail);
        s
    }

    fn sql(&mut self, n: usize) -> std::borrow::Cow<'_, str> {
        if n == self.rows {
            if self.full.is_none() {
                self.full = Some(self.build(n));
            }
            std::borrow::Cow::Borrowed(self.full.as_deref().unwrap_or_default())
        } else {
            std::borrow::Cow::Owned(self.build(n))
        }
    }
}

/// How a batch of awards treats a request it cannot apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchMode {
    /// An import: the first refusal refuses the whole batch.
    AllOrNothing,
    /// Concurrent single awards gathered into one transaction: each request gets its
    /// own outcome or refusal, exactly as [`Store::points_award`] would give it.
    EachOnItsOwn,
}

/// Why a request of an [`BatchMode::EachOnItsOwn`] batch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Conflict,
    UnknownRule,
}

fn unknown_rule(r: &AwardRequest) -> StoreError {
    invalid(
        "rule_code",
        "unknown_rule",
        format!("no rule {} is in force at {}", r.rule_code, ts(r.at)),
    )
}

/// An import's summary and, for [`BatchMode::EachOnItsOwn`], each request's outcome in
/// request order.
type BatchResult = (ImportSummary, Vec<Result<AwardOutcome>>);

async fn import_in(
    tx: &mut AnyConnection,
    engine: Engine,
    actor: &Actor,
    requests: Vec<AwardRequest>,
    mode: BatchMode,
) -> Decided<BatchResult> {
    let strict = mode == BatchMode::AllOrNothing;
    // Per request (EachOnItsOwn): refused, or a repeat of an earlier request in the
    // batch, or a replay of what is stored.
    let mut refused: Vec<Option<Refusal>> = vec![None; requests.len()];
    let mut repeat_of: Vec<Option<usize>> = vec![None; requests.len()];
    let mut stored_outcome: Vec<Option<AwardOutcome>> = vec![None; requests.len()];
    // Everything that could refuse the import is settled before its first write.
    // Rules: all versions, in memory.
    let rows = sqlx::query("SELECT * FROM points_rules ORDER BY code, version")
        .fetch_all(&mut *tx)
        .await?;
    let mut rules: HashMap<String, Vec<Rule>> = HashMap::new();
    for r in &rows {
        let rule = rule_from(r)?;
        rules.entry(rule.code.clone()).or_default().push(rule);
    }
    let ids: Vec<String> = requests
        .iter()
        .map(|r| award_id(&r.event_ref, r.person_id, &r.rule_code))
        .collect();
    let hashes: Vec<String> = requests
        .iter()
        .map(|r| award_content_hash(r.org_id, r.quality, r.at))
        .collect();
    // By id (then place in the import): a repeat follows its first request, and the
    // lookups and the inserts below go through the award index in order.
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_unstable_by(|&a, &b| ids[a].cmp(&ids[b]).then(a.cmp(&b)));
    // The first request of each id, for the lookup of what is stored.
    let mut firsts: Vec<usize> = Vec::with_capacity(order.len());
    for &i in &order {
        if firsts.last().is_none_or(|&f| ids[f] != ids[i]) {
            firsts.push(i);
        }
    }
    // Ids already recorded.
    let mut known: HashMap<String, (AwardOutcome, String)> = HashMap::new();
    let mut lookup = Chunked::list(
        engine,
        "SELECT a.award_id, a.content_hash, a.person_id, a.org_id, a.rule_code, a.rule_version, \
         a.quality, a.requested, a.points, t.id AS transfer_id FROM points_awards a \
         LEFT JOIN points_transfers t ON t.award_id = a.award_id WHERE a.award_id IN (",
        ")",
    );
    for chunk in firsts.chunks(lookup.rows) {
        let sql = lookup.sql(chunk.len());
        let mut q = sqlx::query(&sql);
        for &i in chunk {
            q = q.bind(ids[i].as_str());
        }
        for row in q.fetch_all(&mut *tx).await? {
            let stored = outcome_from(&row)?;
            known.insert(stored.0.award_id.clone(), stored);
        }
    }
    drop(firsts);
    // Each id's requests in the order they came, as one by one would see them: against
    // what is stored, else the first that has a rule in force becomes the award and
    // the rest of its id repeat it (same content) or conflict with it.
    enum Seen {
        Nothing,
        Stored(usize),
        New(usize),
    }
    let mut replayed = 0;
    let mut in_force: Vec<Option<&Rule>> = vec![None; requests.len()];
    // The new awards in id order (the order of the index they go into).
    let mut fresh_sorted: Vec<usize> = Vec::new();
    let mut stored_hash: HashMap<usize, &str> = HashMap::new();
    let mut group_start = 0;
    while group_start < order.len() {
        let id = &ids[order[group_start]];
        let mut group_end = group_start;
        while group_end < order.len() && ids[order[group_end]] == *id {
            group_end += 1;
        }
        let mut seen = match known.get(id) {
            Some(_) => Seen::Stored(order[group_start]),
            None => Seen::Nothing,
        };
        if let Some((_, h)) = known.get(id) {
            stored_hash.insert(order[group_start], h.as_str());
        }
        for &i in &order[group_start..group_end] {
            let r = &requests[i];
            match seen {
                Seen::Stored(first) => {
                    if stored_hash[&first] != hashes[i] {
                        if strict {
                            return Ok(Err(content_conflict()));
                        }
                        refused[i] = Some(Refusal::Conflict);
                    } else {
                        replayed += 1;
                        stored_outcome[i] = known.get(id).map(|(o, _)| o.clone());
                    }
                }
                Seen::New(first) => {
                    if hashes[first] != hashes[i] {
                        if strict {
                            return Ok(Err(content_conflict()));
                        }
                        refused[i] = Some(Refusal::Conflict);
                    } else {
                        replayed += 1;
                        repeat_of[i] = Some(first);
                    }
                }
                Seen::Nothing => {
                    let versions = rules.get(&r.rule_code).map(Vec::as_slice).unwrap_or(&[]);
                    match lianxin_domain::points::rule_in_force(versions, r.at) {
                        None => {
                            if strict {
                                return Ok(Err(unknown_rule(r)));
                            }
                            refused[i] = Some(Refusal::UnknownRule);
                        }
                        Some(rule) => {
                            in_force[i] = Some(rule);
                            fresh_sorted.push(i);
                            seen = Seen::New(i);
                        }
                    }
                }
            }
        }
        group_start = group_end;
    }
    drop(order);
    drop(stored_hash);
    // Counters of the capped rules, for the persons and periods involved, locked.
    let mut persons: Vec<i64> = Vec::new();
    let mut periods: Vec<String> = Vec::new();
    for (r, rule) in requests.iter().zip(&in_force) {
        if let Some(cap) = rule.and_then(|rule| rule.cap) {
            persons.push(r.person_id);
            periods.push(cap.period.key(r.at));
        }
    }
    persons.sort_unstable();
    persons.dedup();
    periods.sort_unstable();
    periods.dedup();
    let mut earned: HashMap<(i64, String, String), i64> = HashMap::new();
    let lock = if engine == Engine::Postgres {
        " ORDER BY person_id, rule_code, period_key FOR UPDATE"
    } else {
        ""
    };
    // The periods narrow the rows read when they are few (they usually are: an import
    // covers a few days); else all the persons' counters are read.
    let periods = if periods.len() <= 64 {
        periods
    } else {
        Vec::new()
    };
    let mut counters = Chunked::list(
        engine,
        "SELECT person_id, rule_code, period_key, earned FROM points_earned WHERE person_id IN (",
        "",
    );
    counters.rows -= periods.len();
    for chunk in persons.chunks(counters.rows) {
        let mut sql = counters.sql(chunk.len()).into_owned();
        sql.push(')');
        if !periods.is_empty() {
            sql.push_str(" AND period_key IN (");
            for k in 0..periods.len() {
                if k > 0 {
                    sql.push(',');
                }
                match engine {
                    Engine::Sqlite => sql.push('?'),
                    Engine::Postgres => sql.push_str(&format!("${}", chunk.len() + k + 1)),
                }
            }
            sql.push(')');
        }
        sql.push_str(lock);
        let mut q = sqlx::query(&sql);
        for p in chunk {
            q = q.bind(*p);
        }
        for k in &periods {
            q = q.bind(k.as_str());
        }
        for row in q.fetch_all(&mut *tx).await? {
            earned.insert(
                (
                    row.try_get("person_id")?,
                    row.try_get("rule_code")?,
                    row.try_get("period_key")?,
                ),
                row.try_get("earned")?,
            );
        }
    }
    // The plan, in the order of the import (the cap goes to the earlier requests).
    let mut plan: Vec<Option<Planned>> = Vec::with_capacity(requests.len());
    let mut touched: HashSet<(i64, String, String)> = HashSet::new();
    let mut awarded = 0;
    for (i, r) in requests.iter().enumerate() {
        let Some(rule) = in_force[i] else {
            plan.push(None);
            continue;
        };
        let requested = rule.points_for(r.quality);
        let (period_key, points) = match rule.cap {
            None => (None, requested),
            Some(cap) => {
                let period = cap.period.key(r.at);
                let key = (r.person_id, r.rule_code.clone(), period.clone());
                let used = earned.entry(key.clone()).or_insert(0);
                let fit = cap_fit(requested, *used, Some(cap.points));
                *used += fit;
                touched.insert(key);
                (Some(period), fit)
            }
        };
        awarded += 1;
        plan.push(Some(Planned {
            at_index: i,
            version: rule.version,
            category: rule.category.clone(),
            period_key,
            requested,
            points,
        }));
    }
    drop(in_force);
    let now = now_text();
    let at: Vec<String> = requests
        .iter()
        .zip(&plan)
        .map(|(r, p)| if p.is_some() { ts(r.at) } else { String::new() })
        .collect();
    // Awards, in id order.
    let mut insert = Chunked::values(
        engine,
        "INSERT INTO points_awards (award_id, content_hash, event_ref, person_id, org_id, rule_code, \
         rule_version, category, quality, at, period_key, requested, points, created_at) VALUES ",
        &[PARAM; 14],
        "",
    );
    let new_sorted: Vec<&Planned> = fresh_sorted
        .iter()
        .filter_map(|&i| plan[i].as_ref())
        .collect();
    drop(fresh_sorted);
    for chunk in new_sorted.chunks(insert.rows) {
        let sql = insert.sql(chunk.len());
        let mut q = sqlx::query(&sql);
        for p in chunk {
            let i = p.at_index;
            let r = &requests[i];
            q = q
                .bind(ids[i].as_str())
                .bind(hashes[i].as_str())
                .bind(r.event_ref.as_str())
                .bind(r.person_id)
                .bind(r.org_id)
                .bind(r.rule_code.as_str())
                .bind(p.version)
                .bind(p.category.as_str())
                .bind(r.quality.as_str())
                .bind(at[i].as_str())
                .bind(p.period_key.as_deref())
                .bind(p.requested)
                .bind(p.points)
                .bind(now.as_str());
        }
        q.execute(&mut *tx).await?;
    }
    drop(new_sorted);
    // Transfers, in the order of the import.
    let given: Vec<&Planned> = plan.iter().flatten().filter(|p| p.points > 0).collect();
    let who = &actor.0;
    let mut transfer_ids: HashMap<String, i64> = HashMap::new();
    let mut insert = Chunked::values(
        engine,
        "INSERT INTO points_transfers (debit, credit, asset, amount, reason, refs, award_id, actor, created_at) VALUES ",
        &[
            PARAM,
            PARAM,
            Some("'points'"),
            PARAM,
            Some("'award'"),
            PARAM,
            PARAM,
            PARAM,
            PARAM,
        ],
        if strict { "" } else { " RETURNING id, award_id" },
    );
    for chunk in given.chunks(insert.rows) {
        let sql = insert.sql(chunk.len());
        let mut q = sqlx::query(&sql);
        for p in chunk {
            let i = p.at_index;
            let r = &requests[i];
            q = q
                .bind(Account::Pool(r.org_id).code())
                .bind(Account::Person(r.person_id).code())
                .bind(p.points)
                .bind(award_refs(
                    &r.event_ref,
                    &r.rule_code,
                    p.version,
                    r.quality,
                    &at[i],
                ))
                .bind(ids[i].as_str())
                .bind(who.as_str())
                .bind(now.as_str());
        }
        if strict {
            q.execute(&mut *tx).await?;
        } else {
            for row in q.fetch_all(&mut *tx).await? {
                transfer_ids.insert(row.try_get("award_id")?, row.try_get("id")?);
            }
        }
    }
    // Counters.
    let counters: Vec<(&(i64, String, String), i64)> =
        touched.iter().map(|k| (k, earned[k])).collect();
    let mut upsert = Chunked::values(
        engine,
        "INSERT INTO points_earned (person_id, rule_code, period_key, earned) VALUES ",
        &[PARAM; 4],
        " ON CONFLICT (person_id, rule_code, period_key) DO UPDATE SET earned = excluded.earned",
    );
    for chunk in counters.chunks(upsert.rows) {
        let sql = upsert.sql(chunk.len());
        let mut q = sqlx::query(&sql);
        for ((person, rule, key), n) in chunk {
            q = q
                .bind(*person)
                .bind(rule.as_str())
                .bind(key.as_str())
                .bind(*n);
        }
        q.execute(&mut *tx).await?;
    }
    // Balances, summed per account, in account order.
    let mut sums: HashMap<Account, i64> = HashMap::new();
    let mut total = 0;
    for p in &given {
        let r = &requests[p.at_index];
        *sums.entry(Account::Person(r.person_id)).or_default() += p.points;
        *sums.entry(Account::Pool(r.org_id)).or_default() -= p.points;
        total += p.points;
    }
    let mut deltas: Vec<(String, i64)> = sums.into_iter().map(|(a, d)| (a.code(), d)).collect();
    deltas.sort_unstable();
    let mut upsert = Chunked::values(
        engine,
        "INSERT INTO points_balances (account, asset, balance) VALUES ",
        &[PARAM, Some("'points'"), PARAM],
        " ON CONFLICT (account, asset) DO UPDATE SET balance = points_balances.balance + excluded.balance",
    );
    for chunk in deltas.chunks(upsert.rows) {
        let sql = upsert.sql(chunk.len());
        let mut q = sqlx::query(&sql);
        for (account, d) in chunk {
            q = q.bind(account.as_str()).bind(*d);
        }
        q.execute(&mut *tx).await?;
    }
    let summary = ImportSummary {
        awarded,
        replayed,
        points: total,
    };
    audit::append(
        tx,
        actor,
        "import",
        "points_awards",
        &awarded.to_string(),
        None::<&()>,
        Some(&summary),
    )
    .await?;
    if strict {
        return Ok(Ok((summary, Vec::new())));
    }
    // Each request's outcome, in request order: new, a replay of what was stored, a
    // repeat of an earlier request of this batch (which comes first by index, as the
    // repeats were found in (id, index) order), or its refusal.
    let refusal = |i: usize| match refused[i] {
        Some(Refusal::Conflict) => Some(content_conflict()),
        Some(Refusal::UnknownRule) => Some(unknown_rule(&requests[i])),
        None => None,
    };
    let mut out: Vec<Result<AwardOutcome>> = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let result = if let Some(e) = refusal(i) {
            Err(e)
        } else if let Some(first) = repeat_of[i] {
            match &out[first] {
                Ok(o) => Ok(AwardOutcome {
                    replayed: true,
                    ..o.clone()
                }),
                Err(_) => Err(refusal(first).unwrap_or_else(content_conflict)),
            }
        } else if let Some(stored) = stored_outcome[i].take() {
            Ok(stored)
        } else if let Some(p) = plan[i].as_ref() {
            Ok(AwardOutcome {
                award_id: ids[i].clone(),
                person_id: r.person_id,
                org_id: r.org_id,
                rule_code: r.rule_code.clone(),
                rule_version: p.version,
                quality: r.quality,
                requested: p.requested,
                points: p.points,
                transfer_id: transfer_ids.get(&ids[i]).copied(),
                replayed: false,
            })
        } else {
            Err(unknown_rule(r))
        };
        out.push(result);
    }
    Ok(Ok((summary, out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn award_refs_print_what_serde_json_prints() {
        for event in [
            "demand:123:confirmed",
            "quote\"back\\slash/é中文",
            "tab\tnl\ncr\rbs\u{8}ff\u{c}ctl\u{1}del\u{7f}",
        ] {
            let at = "2026-05-12T08:00:00.000Z";
            let expected = serde_json::json!({
                "event": event, "rule": "volunteer_hour", "version": 3,
                "quality": Quality::Good.as_str(), "at": at,
            });
            let written = award_refs(event, "volunteer_hour", 3, Quality::Good, at);
            assert_eq!(written, expected.to_string());
        }
    }

    #[test]
    fn chunked_sql_numbers_parameters_per_engine() {
        let cols: &'static [Option<&'static str>] = &[PARAM, Some("'points'"), PARAM];
        let mut c = Chunked::values(Engine::Postgres, "V ", cols, " T");
        assert_eq!(c.sql(2), "V ($1,'points',$2),($3,'points',$4) T");
        let mut c = Chunked::values(Engine::Sqlite, "V ", cols, "");
        assert_eq!(c.sql(2), "V (?,'points',?),(?,'points',?)");
        let mut c = Chunked::list(Engine::Sqlite, "IN (", ")");
        assert_eq!(c.sql(3), "IN (?,?,?)");
        assert_eq!(c.rows, IMPORT_PARAMS);
    }
}
