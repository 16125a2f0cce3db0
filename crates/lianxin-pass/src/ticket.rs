//! The ticket: what the server vouches for, as a COSE_Sign1 message (RFC 9052) signed
//! with Ed25519 by the issuer key.
//!
//! `COSE_Sign1 = [protected: bstr, unprotected: {}, payload: bstr, signature: bstr]`,
//! untagged. The protected header is `{1: -8 (EdDSA), 4: kid}`; the payload is a CBOR
//! map with small integer keys:
//!
//! | key | claim | type |
//! |----:|-------|------|
//! | 1 | per-ticket rider pseudonym | bstr, 16 bytes |
//! | 2 | keyed hash of the order id | bstr, 16 bytes |
//! | 3 | compound id | uint |
//! | 4 | valid from (Unix seconds) | uint |
//! | 5 | valid until, exclusive (Unix seconds) | uint |
//! | 6 | the rider's device public key (Ed25519) | bstr, 32 bytes |
//!
//! About 170 bytes in all: no name, phone or ID number is ever in it.

use crate::{Deny, KeyId};
use ciborium::value::{Integer, Value};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// What a ticket says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub pseudonym: [u8; 16],
    pub order_hash: [u8; 16],
    pub compound: u64,
    pub not_before: u64,
    pub not_after: u64,
    pub device_key: [u8; 32],
}

/// A ticket whose issuer signature has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub claims: Claims,
    pub kid: KeyId,
    /// SHA-256 of the ticket's bytes: what the device signs and the replay guard keys on.
    pub digest: [u8; 32],
}

/// The keyed hash of a platform's order id: the same order always gives the same
/// hash, which reveals nothing without the key.
pub fn order_hash(key: &[u8], platform: &str, order_id: &str) -> [u8; 16] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(platform.as_bytes());
    mac.update(&[0]);
    mac.update(order_id.as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// The server's signing key for tickets, with its key id.
pub struct Issuer {
    pub kid: KeyId,
    pub key: SigningKey,
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    ciborium::ser::into_writer(v, &mut out).expect("writing CBOR to a Vec cannot fail");
    out
}

fn int(n: i64) -> Value {
    Value::Integer(Integer::from(n))
}

fn protected_header(kid: &KeyId) -> Vec<u8> {
    cbor(&Value::Map(vec![
        (int(1), int(-8)),
        (int(4), Value::Bytes(kid.as_bytes().to_vec())),
    ]))
}

/// The bytes both sides sign: COSE's `Sig_structure` for a Sign1 message.
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    cbor(&Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected.to_vec()),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.to_vec()),
    ]))
}

impl Issuer {
    /// Signs a ticket.
    pub fn issue(&self, c: &Claims) -> Vec<u8> {
        let payload = cbor(&Value::Map(vec![
            (int(1), Value::Bytes(c.pseudonym.to_vec())),
            (int(2), Value::Bytes(c.order_hash.to_vec())),
            (int(3), Value::Integer(c.compound.into())),
            (int(4), Value::Integer(c.not_before.into())),
            (int(5), Value::Integer(c.not_after.into())),
            (int(6), Value::Bytes(c.device_key.to_vec())),
        ]));
        let protected = protected_header(&self.kid);
        let signature = self.key.sign(&sig_structure(&protected, &payload));
        cbor(&Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(Vec::new()),
            Value::Bytes(payload),
            Value::Bytes(signature.to_bytes().to_vec()),
        ]))
    }
}

/// An issuer key the gates trust, and until when.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub kid: KeyId,
    pub key: VerifyingKey,
    /// After a rotation the old key is accepted until this instant (Unix seconds,
    /// exclusive); `None` while it is current.
    pub accepted_until: Option<u64>,
}

/// The issuer keys a gate accepts. Keys rotate with an overlap: during it, tickets
/// signed by the old key and by the new one both pass.
#[derive(Debug, Clone, Default)]
pub struct TrustList {
    pub keys: Vec<TrustedKey>,
}

/// The four parts of a COSE_Sign1 message, not yet checked.
struct Parts {
    protected: Vec<u8>,
    payload: Vec<u8>,
    signature: [u8; 64],
    kid: KeyId,
}

fn bytes_of(v: Value) -> Result<Vec<u8>, Deny> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(Deny::Malformed),
    }
}

fn fixed<const N: usize>(v: Value) -> Result<[u8; N], Deny> {
    bytes_of(v)?.try_into().map_err(|_| Deny::Malformed)
}

fn uint(v: &Value) -> Result<u64, Deny> {
    match v {
        Value::Integer(i) => u64::try_from(*i).map_err(|_| Deny::Malformed),
        _ => Err(Deny::Malformed),
    }
}

fn small_int(v: &Value) -> Option<i128> {
    match v {
        Value::Integer(i) => Some(i128::from(*i)),
        _ => None,
    }
}

fn split(bytes: &[u8]) -> Result<Parts, Deny> {
    let v: Value = ciborium::de::from_reader(bytes).map_err(|_| Deny::Malformed)?;
    let Value::Array(items) = v else {
        return Err(Deny::Malformed);
    };
    let [protected, unprotected, payload, signature]: [Value; 4] =
        items.try_into().map_err(|_| Deny::Malformed)?;
    if !matches!(unprotected, Value::Map(ref m) if m.is_empty()) {
        return Err(Deny::Malformed);
    }
    let protected = bytes_of(protected)?;
    let header: Value = ciborium::de::from_reader(&protected[..]).map_err(|_| Deny::Malformed)?;
    let Value::Map(entries) = header else {
        return Err(Deny::Malformed);
    };
    let mut alg = None;
    let mut kid = None;
    for (k, v) in entries {
        match small_int(&k) {
            Some(1) if alg.is_none() => alg = small_int(&v),
            Some(4) if kid.is_none() => kid = Some(bytes_of(v)?),
            _ => return Err(Deny::Malformed),
        }
    }
    if alg != Some(-8) {
        return Err(Deny::Malformed);
    }
    let kid = KeyId::from_slice(&kid.ok_or(Deny::Malformed)?).ok_or(Deny::Malformed)?;
    Ok(Parts {
        protected,
        payload: bytes_of(payload)?,
        signature: fixed::<64>(signature)?,
        kid,
    })
}

fn claims_of(payload: &[u8]) -> Result<Claims, Deny> {
    let v: Value = ciborium::de::from_reader(payload).map_err(|_| Deny::Malformed)?;
    let Value::Map(entries) = v else {
        return Err(Deny::Malformed);
    };
    let mut slots: [Option<Value>; 6] = Default::default();
    for (k, v) in entries {
        let i = small_int(&k)
            .filter(|i| (1..=6).contains(i))
            .ok_or(Deny::Malformed)? as usize;
        if slots[i - 1].replace(v).is_some() {
            return Err(Deny::Malformed);
        }
    }
    let mut take = |i: usize| slots[i - 1].take().ok_or(Deny::Malformed);
    let claims = Claims {
        pseudonym: fixed::<16>(take(1)?)?,
        order_hash: fixed::<16>(take(2)?)?,
        compound: uint(&take(3)?)?,
        not_before: uint(&take(4)?)?,
        not_after: uint(&take(5)?)?,
        device_key: fixed::<32>(take(6)?)?,
    };
    if claims.not_after <= claims.not_before {
        return Err(Deny::Malformed);
    }
    Ok(claims)
}

impl TrustList {
    /// Step 1 of a gate: the ticket's issuer signature, by a key the gate trusts at
    /// `now`. Every trusted key with the ticket's key id is tried.
    pub fn verify(&self, bytes: &[u8], now: u64) -> Result<Ticket, Deny> {
        let parts = split(bytes)?;
        let message = sig_structure(&parts.protected, &parts.payload);
        let signature = Signature::from_bytes(&parts.signature);
        let mut candidates = self.keys.iter().filter(|k| k.kid == parts.kid).peekable();
        if candidates.peek().is_none() {
            return Err(Deny::UnknownIssuer);
        }
        let mut expired = false;
        for k in candidates {
            if k.key.verify(&message, &signature).is_ok() {
                if k.accepted_until.is_some_and(|until| now >= until) {
                    expired = true;
                    continue;
                }
                return Ok(Ticket {
                    claims: claims_of(&parts.payload)?,
                    kid: parts.kid,
                    digest: Sha256::digest(bytes).into(),
                });
            }
        }
        Err(if expired {
            Deny::RetiredIssuer
        } else {
            Deny::BadIssuerSignature
        })
    }
}
