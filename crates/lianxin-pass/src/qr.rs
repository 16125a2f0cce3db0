//! The QR text a rider's phone shows: `LX1:` followed by Base45 of the CBOR array
//! `[ticket: bstr, step: uint, proof: bstr(64)]`, where the proof is the device key's
//! Ed25519 signature over [`proof_message`]. `LX1:` and Base45 are all QR
//! alphanumeric characters, so the code stays small (about 380 characters).

use crate::cbor::Reader;
use crate::{base45, Deny};
use ciborium::value::Value;
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

/// The version prefix: a gate refuses other versions as malformed.
pub const PASS_PREFIX: &str = "LX1:";

/// A decoded QR: the ticket's bytes, the step and the device's proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub ticket: Vec<u8>,
    pub step: u64,
    pub proof: [u8; 64],
}

/// What the device signs: a domain label, the ticket's digest, the step and the
/// compound, fixed-width.
pub fn proof_message(ticket_digest: &[u8; 32], step: u64, compound: u64) -> [u8; 56] {
    let mut m = [0u8; 56];
    m[..8].copy_from_slice(b"LX1proof");
    m[8..40].copy_from_slice(ticket_digest);
    m[40..48].copy_from_slice(&step.to_be_bytes());
    m[48..56].copy_from_slice(&compound.to_be_bytes());
    m
}

impl Pass {
    /// What the phone does every step: signs the proof with its device key. (The
    /// rider's web page does the same with WebCrypto; this is for tests, the
    /// benchmark and native clients.)
    pub fn prove(ticket: &[u8], compound: u64, step: u64, device: &SigningKey) -> Pass {
        let digest: [u8; 32] = Sha256::digest(ticket).into();
        let proof = device.sign(&proof_message(&digest, step, compound));
        Pass {
            ticket: ticket.to_vec(),
            step,
            proof: proof.to_bytes(),
        }
    }

    pub fn encode(&self) -> String {
        let mut out = Vec::with_capacity(self.ticket.len() + 80);
        ciborium::ser::into_writer(
            &Value::Array(vec![
                Value::Bytes(self.ticket.clone()),
                Value::Integer(self.step.into()),
                Value::Bytes(self.proof.to_vec()),
            ]),
            &mut out,
        )
        .expect("writing CBOR to a Vec cannot fail");
        format!("{PASS_PREFIX}{}", base45::encode(&out))
    }

    pub fn decode(text: &str) -> Result<Pass, Deny> {
        let body = text.strip_prefix(PASS_PREFIX).ok_or(Deny::Malformed)?;
        // A pass is a few hundred characters; refuse anything far larger unread.
        if body.len() > 4096 {
            return Err(Deny::Malformed);
        }
        let bytes = base45::decode(body).map_err(|_| Deny::Malformed)?;
        let mut r = Reader::new(&bytes);
        if r.array()? != 3 {
            return Err(Deny::Malformed);
        }
        let ticket = r.bytes()?.to_vec();
        let step = r.uint()?;
        let proof = r.fixed::<64>()?;
        r.end()?;
        Ok(Pass {
            ticket,
            step,
            proof,
        })
    }
}
