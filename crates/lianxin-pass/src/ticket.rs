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

use crate::cbor::Reader;
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

/// The bytes both sides sign: COSE's `Sig_structure` for a Sign1 message,
/// `["Signature1", protected, h'', payload]`. Written by hand (the encoding is fixed
/// and the gate builds it for every scan); a test checks it against the CBOR library.
fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + protected.len() + payload.len() + 6);
    out.push(0x84); // array of 4
    out.push(0x6A); // text of 10
    out.extend_from_slice(b"Signature1");
    bstr_header(&mut out, protected.len());
    out.extend_from_slice(protected);
    out.push(0x40); // empty external_aad
    bstr_header(&mut out, payload.len());
    out.extend_from_slice(payload);
    out
}

/// A CBOR byte-string header for `len` bytes.
fn bstr_header(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=23 => out.push(0x40 | len as u8),
        24..=0xFF => out.extend_from_slice(&[0x58, len as u8]),
        0x100..=0xFFFF => {
            out.push(0x59);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x5A);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
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

/// The four parts of a COSE_Sign1 message, not yet checked, borrowed from it.
struct Parts<'a> {
    protected: &'a [u8],
    payload: &'a [u8],
    signature: [u8; 64],
    kid: KeyId,
}

fn split(bytes: &[u8]) -> Result<Parts<'_>, Deny> {
    let mut r = Reader::new(bytes);
    if r.array()? != 4 {
        return Err(Deny::Malformed);
    }
    let protected = r.bytes()?;
    if r.map()? != 0 {
        return Err(Deny::Malformed);
    }
    let payload = r.bytes()?;
    let signature = r.fixed::<64>()?;
    r.end()?;
    // The protected header: exactly {1: -8, 4: kid}, in that order (as issued).
    let mut h = Reader::new(protected);
    if h.map()? != 2 || h.int()? != 1 || h.int()? != -8 || h.int()? != 4 {
        return Err(Deny::Malformed);
    }
    let kid = KeyId::from_slice(h.bytes()?).ok_or(Deny::Malformed)?;
    h.end()?;
    Ok(Parts {
        protected,
        payload,
        signature,
        kid,
    })
}

/// The claims, in the key order they are issued in (1 to 6); anything else is not a
/// ticket this platform issued.
fn claims_of(payload: &[u8]) -> Result<Claims, Deny> {
    let mut r = Reader::new(payload);
    if r.map()? != 6 {
        return Err(Deny::Malformed);
    }
    let expect = |r: &mut Reader<'_>, k: i64| -> Result<(), Deny> {
        if r.int()? == k {
            Ok(())
        } else {
            Err(Deny::Malformed)
        }
    };
    expect(&mut r, 1)?;
    let pseudonym = r.fixed::<16>()?;
    expect(&mut r, 2)?;
    let order_hash = r.fixed::<16>()?;
    expect(&mut r, 3)?;
    let compound = r.uint()?;
    expect(&mut r, 4)?;
    let not_before = r.uint()?;
    expect(&mut r, 5)?;
    let not_after = r.uint()?;
    expect(&mut r, 6)?;
    let device_key = r.fixed::<32>()?;
    r.end()?;
    if not_after <= not_before {
        return Err(Deny::Malformed);
    }
    Ok(Claims {
        pseudonym,
        order_hash,
        compound,
        not_before,
        not_after,
        device_key,
    })
}

/// The key id a ticket names, **without** checking anything else (see
/// [`unverified_claims`]).
pub fn unverified_kid(bytes: &[u8]) -> Option<KeyId> {
    split(bytes).ok().map(|p| p.kid)
}

/// The claims of a ticket **without** checking its signature: only for looking up,
/// before [`crate::Gate::check`], what the check will ask its ledger about (the
/// online gate reads the rider's and device's status this way, so the check itself
/// runs once). Nothing read here may be trusted unless that check gets past step 1.
pub fn unverified_claims(bytes: &[u8]) -> Result<Claims, Deny> {
    claims_of(split(bytes)?.payload)
}

/// The exact bytes the issuer signed and the signature, for measuring the bare
/// signature check against the whole gate check (`lianxin bench gate`).
pub fn signed_message(bytes: &[u8]) -> Result<(Vec<u8>, [u8; 64]), Deny> {
    let parts = split(bytes)?;
    Ok((
        sig_structure(parts.protected, parts.payload),
        parts.signature,
    ))
}

impl TrustList {
    /// Step 1 of a gate: the ticket's issuer signature, by a key the gate trusts at
    /// `now`. Every trusted key with the ticket's key id is tried.
    pub fn verify(&self, bytes: &[u8], now: u64) -> Result<Ticket, Deny> {
        let parts = split(bytes)?;
        let message = sig_structure(parts.protected, parts.payload);
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
                    claims: claims_of(parts.payload)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_sig_structure_is_cbor() {
        for (p, q) in [(0usize, 0usize), (5, 23), (24, 255), (256, 70_000)] {
            let (protected, payload) = (vec![1u8; p], vec![2u8; q]);
            let by_library = cbor(&Value::Array(vec![
                Value::Text("Signature1".into()),
                Value::Bytes(protected.clone()),
                Value::Bytes(Vec::new()),
                Value::Bytes(payload.clone()),
            ]));
            assert_eq!(sig_structure(&protected, &payload), by_library, "{p} {q}");
        }
    }
}
