//! The audit trail: append inside the caller's transaction, read, verify.
//!
//! The chain head (last sequence number and hash) lives in a one-row table. Taking
//! the next number is an `UPDATE … RETURNING` on that row, which locks it until the
//! transaction ends, so concurrent writers on PostgreSQL append one after another
//! and the chain never forks. On SQLite writes are already serialised.

use crate::{now_text, Result, Store};
use lianxin_domain::audit::{entry_hash, AuditEntry, BrokenLink, ChainVerifier};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// Who did something, as written to the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    pub fn account(id: i64) -> Actor {
        Actor(format!("account:{id}"))
    }
    pub fn token(id: i64) -> Actor {
        Actor(format!("token:{id}"))
    }
    pub fn system(what: &str) -> Actor {
        Actor(format!("system:{what}"))
    }
}

/// Appends one entry. `before` and `after` are serialised to JSON text here and the
/// hash covers that exact text.
pub async fn append(
    conn: &mut AnyConnection,
    actor: &Actor,
    action: &str,
    entity: &str,
    entity_id: &str,
    before: Option<&impl Serialize>,
    after: Option<&impl Serialize>,
) -> Result<i64> {
    let before = before.map(to_json).transpose()?;
    let after = after.map(to_json).transpose()?;
    let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut *conn)
        .await?;
    let seq: i64 = head.try_get("seq")?;
    let prev: String = head.try_get("hash")?;
    let at = now_text();
    let hash = entry_hash(
        seq,
        &at,
        &actor.0,
        action,
        entity,
        entity_id,
        before.as_deref(),
        after.as_deref(),
        &prev,
    );
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, entity, entity_id, before_json, after_json, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq)
    .bind(&at)
    .bind(&actor.0)
    .bind(action)
    .bind(entity)
    .bind(entity_id)
    .bind(before)
    .bind(after)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
    Ok(seq)
}

fn to_json(v: &impl Serialize) -> Result<String> {
    serde_json::to_string(v).map_err(|e| crate::StoreError::Config(format!("audit image: {e}")))
}

fn entry_from_row(r: &sqlx::any::AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        entity: r.try_get("entity")?,
        entity_id: r.try_get("entity_id")?,
        before: r.try_get("before_json")?,
        after: r.try_get("after_json")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

const ENTRY_COLUMNS: &str =
    "seq, at, actor, action, entity, entity_id, before_json, after_json, prev_hash, hash";

/// The outcome of verifying the whole trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Intact { entries: u64 },
    Broken(BrokenLink),
}

impl Store {
    /// Entries with `seq` greater than `after`, oldest first.
    /// Records that someone read personal data (PIPL: who saw what, and when) on the
    /// audit trail. `what` names the record, never the data itself.
    pub async fn audit_access(
        &self,
        actor: &Actor,
        action: &str,
        entity: &str,
        id: &str,
    ) -> Result<()> {
        let (actor, action, entity, id) = (
            actor.clone(),
            action.to_string(),
            entity.to_string(),
            id.to_string(),
        );
        self.write(move |tx| {
            Box::pin(async move {
                append(tx, &actor, &action, &entity, &id, None::<&()>, None::<&()>).await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn audit_entries(&self, after: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Walks the whole trail in pages and checks every link, including that the
    /// chain head agrees with the last entry (so truncating the tail shows too).
    pub async fn audit_verify(&self) -> Result<Verification> {
        let mut verifier = ChainVerifier::default();
        let mut after = 0;
        let mut last: Option<AuditEntry> = None;
        loop {
            let page = self.audit_entries(after, 5000).await?;
            if page.is_empty() {
                break;
            }
            for e in &page {
                if let Err(b) = verifier.check(e) {
                    return Ok(Verification::Broken(b));
                }
            }
            after = page.last().map(|e| e.seq).unwrap_or(after);
            last = page.into_iter().last();
        }
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.reader)
            .await?;
        let head_seq: i64 = head.try_get("seq")?;
        let head_hash: String = head.try_get("hash")?;
        let (last_seq, last_hash) = last
            .map(|e| (e.seq, e.hash))
            .unwrap_or((0, lianxin_domain::audit::GENESIS_HASH.to_string()));
        if head_seq != last_seq || head_hash != last_hash {
            return Ok(Verification::Broken(BrokenLink {
                seq: last_seq + 1,
                reason: "entries after this point are missing: the chain head records more",
            }));
        }
        Ok(Verification::Intact {
            entries: verifier.checked(),
        })
    }

    pub async fn audit_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&self.reader)
            .await?)
    }
}
