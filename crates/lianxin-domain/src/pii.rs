//! Protection of personal information at rest.
//!
//! One 32-byte master key (kept out of the database: a file or an environment
//! variable) derives two sub-keys:
//! - a hashing key for keyed hashes (HMAC-SHA-256), so a phone or ID-card number can
//!   be looked up or de-duplicated without being stored; an ID-card number is kept
//!   *only* this way;
//! - an encryption key (XChaCha20-Poly1305) for the few values that must be readable
//!   again, such as a phone number a worker has to call back.
//!
//! Without the master key a stolen database file yields neither numbers nor a way to
//! test guesses against the hashes.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The key material for personal information. `Debug` never prints the key.
#[derive(Clone)]
pub struct PiiKey {
    hash_key: [u8; 32],
    enc_key: [u8; 32],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PiiError {
    #[error("the master key must be 64 hexadecimal characters (32 bytes)")]
    BadKey,
    #[error("the ciphertext is damaged or was made with another key")]
    Undecryptable,
}

impl PiiKey {
    pub fn from_master(master: &[u8; 32]) -> Self {
        PiiKey {
            hash_key: derive(master, b"lianxin/pii/hash/v1"),
            enc_key: derive(master, b"lianxin/pii/encrypt/v1"),
        }
    }

    pub fn from_hex(hex_key: &str) -> Result<Self, PiiError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| PiiError::BadKey)?;
        let master: [u8; 32] = bytes.try_into().map_err(|_| PiiError::BadKey)?;
        Ok(Self::from_master(&master))
    }

    /// A fresh random master key, hex-encoded, for first start-up.
    pub fn generate_hex() -> String {
        let mut master = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut master);
        hex::encode(master)
    }

    /// Keyed hash of `value` for one `purpose` ("phone", "id_card" …), hex-encoded.
    /// Different purposes give unrelated hashes for the same value.
    pub fn keyed_hash(&self, purpose: &str, value: &str) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.hash_key).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Encrypts `plaintext`; the result is base64 of nonce ‖ ciphertext ‖ tag.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let cipher = XChaCha20Poly1305::new((&self.enc_key).into());
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        B64.encode(out)
    }

    pub fn decrypt(&self, sealed: &str) -> Result<String, PiiError> {
        let raw = B64.decode(sealed).map_err(|_| PiiError::Undecryptable)?;
        if raw.len() < 24 + 16 {
            return Err(PiiError::Undecryptable);
        }
        let (nonce, ct) = raw.split_at(24);
        let cipher = XChaCha20Poly1305::new((&self.enc_key).into());
        let pt = cipher
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| PiiError::Undecryptable)?;
        String::from_utf8(pt).map_err(|_| PiiError::Undecryptable)
    }

    /// Hash of a secret token (session, API token) for storage. Tokens are random and
    /// long, so an unkeyed SHA-256 suffices and survives a change of master key.
    pub fn token_hash(token: &str) -> String {
        use sha2::Digest;
        hex::encode(Sha256::digest(token.as_bytes()))
    }
}

impl std::fmt::Debug for PiiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PiiKey(<secret>)")
    }
}

fn derive(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(master).expect("any key length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// A random URL-safe token with `bytes` bytes of entropy and a readable prefix.
pub fn random_token(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let key = PiiKey::from_hex(&PiiKey::generate_hex()).unwrap();
        let sealed = key.encrypt("13812345678");
        assert!(!sealed.contains("13812345678"));
        assert_eq!(key.decrypt(&sealed).unwrap(), "13812345678");
        let other = PiiKey::from_hex(&PiiKey::generate_hex()).unwrap();
        assert_eq!(other.decrypt(&sealed), Err(PiiError::Undecryptable));
        assert_eq!(key.decrypt("not base64!"), Err(PiiError::Undecryptable));
    }

    #[test]
    fn hashes_are_keyed_and_purpose_bound() {
        let key = PiiKey::from_master(&[7; 32]);
        let other = PiiKey::from_master(&[8; 32]);
        let h = key.keyed_hash("phone", "13812345678");
        assert_eq!(h, key.keyed_hash("phone", "13812345678"));
        assert_ne!(h, key.keyed_hash("id_card", "13812345678"));
        assert_ne!(h, other.keyed_hash("phone", "13812345678"));
        assert_eq!(h.len(), 64);
        assert!(PiiKey::from_hex("abcd").is_err());
    }
}
