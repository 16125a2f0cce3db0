//! The audit trail's hash chain.
//!
//! Every write appends one entry: who, when, what, and the before/after images as JSON
//! text. Each entry's hash covers its own fields and the previous entry's hash, so
//! changing, deleting or reordering any stored entry breaks every link after it, and
//! [`ChainVerifier`] names the first broken one. The hash is computed over the exact
//! stored text, never over a re-serialisation, so verification does not depend on how
//! a JSON library orders keys.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hashed content of one audit entry, exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    /// RFC 3339 UTC timestamp with milliseconds.
    pub at: String,
    /// Who: `account:12`, `token:3`, or `system:WHAT` (`system:demo`, `system:import`,
    /// `system:cli`).
    pub actor: String,
    /// What was done: `create`, `update`, `end`, `delete`, `login` …
    pub action: String,
    /// Which kind of record: `place`, `org`, `person`, `relation`, `account` …
    pub entity: String,
    pub entity_id: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// Computes the hash of an entry from its fields and its predecessor's hash.
#[allow(clippy::too_many_arguments)]
pub fn entry_hash(
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    entity: &str,
    entity_id: &str,
    before: Option<&str>,
    after: Option<&str>,
    prev_hash: &str,
) -> String {
    let mut h = Sha256::new();
    // Length-prefix every field so that no two different entries share an encoding.
    let mut field = |tag: u8, value: Option<&str>| {
        h.update([tag]);
        match value {
            None => h.update(u64::MAX.to_be_bytes()),
            Some(v) => {
                h.update((v.len() as u64).to_be_bytes());
                h.update(v.as_bytes());
            }
        }
    };
    field(b'q', Some(&seq.to_string()));
    field(b't', Some(at));
    field(b'w', Some(actor));
    field(b'a', Some(action));
    field(b'e', Some(entity));
    field(b'i', Some(entity_id));
    field(b'b', before);
    field(b'f', after);
    field(b'p', Some(prev_hash));
    hex::encode(h.finalize())
}

impl AuditEntry {
    pub fn computed_hash(&self) -> String {
        entry_hash(
            self.seq,
            &self.at,
            &self.actor,
            &self.action,
            &self.entity,
            &self.entity_id,
            self.before.as_deref(),
            self.after.as_deref(),
            &self.prev_hash,
        )
    }
}

/// Where and why the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub seq: i64,
    pub reason: &'static str,
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "entry {}: {}", self.seq, self.reason)
    }
}

/// Incremental verifier: feed entries in `seq` order.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_prev: String,
    expected_seq: Option<i64>,
    checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            expected_prev: GENESIS_HASH.to_string(),
            expected_seq: None,
            checked: 0,
        }
    }
}

impl ChainVerifier {
    pub fn check(&mut self, e: &AuditEntry) -> Result<(), BrokenLink> {
        let broken = |reason| Err(BrokenLink { seq: e.seq, reason });
        match self.expected_seq {
            Some(s) if e.seq != s => {
                return broken("a sequence number is missing before this entry")
            }
            None if e.seq != 1 => return broken("the chain does not start at entry 1"),
            _ => {}
        }
        if e.prev_hash != self.expected_prev {
            return broken("prev_hash does not match the hash of the entry before");
        }
        if e.computed_hash() != e.hash {
            return broken("the entry's content does not match its hash");
        }
        self.expected_prev = e.hash.clone();
        self.expected_seq = Some(e.seq + 1);
        self.checked += 1;
        Ok(())
    }

    pub fn checked(&self) -> u64 {
        self.checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Verifies a whole chain; returns how many entries were checked.
    fn verify_chain<'a>(
        entries: impl IntoIterator<Item = &'a AuditEntry>,
    ) -> Result<u64, BrokenLink> {
        let mut v = ChainVerifier::default();
        for e in entries {
            v.check(e)?;
        }
        Ok(v.checked())
    }

    fn chain(n: usize) -> Vec<AuditEntry> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n as i64)
            .map(|seq| {
                let mut e = AuditEntry {
                    seq,
                    at: format!("2026-01-01T00:00:{:02}.000Z", seq % 60),
                    actor: "account:1".into(),
                    action: "create".into(),
                    entity: "place".into(),
                    entity_id: seq.to_string(),
                    before: None,
                    after: Some(format!("{{\"name\":\"p{seq}\"}}")),
                    prev_hash: prev.clone(),
                    hash: String::new(),
                };
                e.hash = e.computed_hash();
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify_chain(&chain(5)), Ok(5));
        assert_eq!(verify_chain(&[]), Ok(0));
    }

    #[test]
    fn deletion_is_caught() {
        let mut c = chain(5);
        c.remove(2);
        assert_eq!(verify_chain(&c).unwrap_err().seq, 4);
    }

    proptest! {
        #[test]
        fn any_edit_is_caught_at_the_edited_entry(n in 1usize..20, pick in 0usize..20, field in 0usize..4) {
            let mut c = chain(n);
            let i = pick % n;
            match field {
                0 => c[i].actor = "account:666".into(),
                1 => c[i].after = Some("{\"name\":\"forged\"}".into()),
                2 => c[i].before = Some("{}".into()),
                _ => c[i].at = "1999-01-01T00:00:00.000Z".into(),
            }
            let err = verify_chain(&c).unwrap_err();
            prop_assert_eq!(err.seq, c[i].seq);
        }
    }
}
