//! The rider gate pass (新通码), with no I/O: tickets, the QR a rider's phone shows,
//! and the checks a gate runs on it. The server, the gate box and the tests all use
//! this crate; storage, clocks and networks are theirs.
//!
//! - The server **issues a ticket** when an order is assigned ([`ticket`]): a
//!   COSE_Sign1 message signed by the issuer key that binds a per-ticket pseudonym, a
//!   keyed hash of the order id, the compound, a validity window and the rider's device
//!   key.
//! - The phone **shows a QR** ([`qr`]) carrying the ticket and a proof: the device
//!   key's signature over the ticket's digest, the current 30-second step and the
//!   compound. It changes every step, and the device key never leaves the phone, so a
//!   screenshot is stale within a minute and a copied ticket is useless without it.
//! - A gate **verifies** ([`Gate::check`]) in a fixed order: issuer signature, device
//!   signature, time step (±1), replay, compound, validity window, revocation, and
//!   whether the rider is inside or outside. The first failure is the answer.

pub mod base45;
mod cbor;
pub mod qr;
pub mod ticket;

pub use qr::{Pass, PASS_PREFIX};
pub use ticket::{order_hash, unverified_claims, Claims, Issuer, Ticket, TrustList, TrustedKey};

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

/// Seconds per time step of the proof.
pub const STEP_SECONDS: u64 = 30;

/// The time step of an instant (Unix seconds).
pub fn step_of(unix: u64) -> u64 {
    unix / STEP_SECONDS
}

/// An issuer key's id (1 to 16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 16], pub u8);

impl KeyId {
    pub fn from_slice(b: &[u8]) -> Option<KeyId> {
        if b.is_empty() || b.len() > 16 {
            return None;
        }
        let mut a = [0u8; 16];
        a[..b.len()].copy_from_slice(b);
        Some(KeyId(a, b.len() as u8))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0[..usize::from(self.1)]
    }
}

/// Why a gate says no. The order of the variants is the order of the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Deny {
    #[error("not a Lianxin pass")]
    Malformed,
    #[error("signed by an issuer this gate does not know")]
    UnknownIssuer,
    #[error("the issuer signature is wrong")]
    BadIssuerSignature,
    #[error("signed by an issuer key that has been retired")]
    RetiredIssuer,
    #[error("the phone's signature is wrong")]
    BadDeviceSignature,
    #[error("the code is from another time: check the phone's clock, or it is a screenshot")]
    WrongTime,
    #[error("this code has already been used")]
    Replayed,
    #[error("the pass is for another compound")]
    WrongCompound,
    #[error("the pass is not valid yet")]
    NotYetValid,
    #[error("the pass has expired")]
    Expired,
    #[error("the rider's pass has been revoked")]
    RiderRevoked,
    #[error("the rider's phone has been revoked")]
    DeviceRevoked,
    #[error("the rider is already inside")]
    AlreadyInside,
    #[error("the rider has not entered")]
    NotInside,
}

impl Deny {
    /// Every refusal, in the order of the checks.
    pub const ALL: [Deny; 14] = [
        Deny::Malformed,
        Deny::UnknownIssuer,
        Deny::BadIssuerSignature,
        Deny::RetiredIssuer,
        Deny::BadDeviceSignature,
        Deny::WrongTime,
        Deny::Replayed,
        Deny::WrongCompound,
        Deny::NotYetValid,
        Deny::Expired,
        Deny::RiderRevoked,
        Deny::DeviceRevoked,
        Deny::AlreadyInside,
        Deny::NotInside,
    ];

    /// A stable code for logs, the API and the pages.
    pub fn code(self) -> &'static str {
        match self {
            Deny::Malformed => "malformed",
            Deny::UnknownIssuer => "unknown_issuer",
            Deny::BadIssuerSignature => "bad_issuer_signature",
            Deny::RetiredIssuer => "retired_issuer",
            Deny::BadDeviceSignature => "bad_device_signature",
            Deny::WrongTime => "wrong_time",
            Deny::Replayed => "replayed",
            Deny::WrongCompound => "wrong_compound",
            Deny::NotYetValid => "not_yet_valid",
            Deny::Expired => "expired",
            Deny::RiderRevoked => "rider_revoked",
            Deny::DeviceRevoked => "device_revoked",
            Deny::AlreadyInside => "already_inside",
            Deny::NotInside => "not_inside",
        }
    }
}

/// Which way the rider passes the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Entry,
    Exit,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Entry => "entry",
            Direction::Exit => "exit",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        match s.trim() {
            "entry" => Some(Direction::Entry),
            "exit" => Some(Direction::Exit),
            _ => None,
        }
    }
}

/// What a gate remembers and looks up: supplied by the server (its database) or the
/// gate box (its synced lists and local journal).
pub trait GateLedger {
    /// Records that (ticket, step) was presented; `false` if it already was.
    fn first_use(&mut self, ticket: &[u8; 32], step: u64) -> bool;
    fn rider_revoked(&self, pseudonym: &[u8; 16]) -> bool;
    fn device_revoked(&self, device_key: &[u8; 32]) -> bool;
    /// Whether the holder of this ticket pseudonym is inside the compound now.
    fn inside(&self, pseudonym: &[u8; 16]) -> bool;
}

/// A gate: the compound it guards and the issuer keys it trusts.
pub struct Gate<'a> {
    pub compound: u64,
    pub trust: &'a TrustList,
}

/// An accepted scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admit {
    pub ticket: Ticket,
    pub step: u64,
    pub direction: Direction,
}

impl Gate<'_> {
    /// Checks a scanned QR text at `now` (the gate's Unix time) for `direction`, in the
    /// order the design fixes. The ledger's replay record is written at step 4, so a
    /// code that fails a later check is spent too.
    pub fn check(
        &self,
        qr: &str,
        now: u64,
        direction: Direction,
        ledger: &mut impl GateLedger,
    ) -> Result<Admit, Deny> {
        let pass = Pass::decode(qr)?;
        // 1. The issuer signature, by a key trusted now.
        let ticket = self.trust.verify(&pass.ticket, now)?;
        // 2. The device signature over (ticket digest, step, compound): the compound
        //    signed is the ticket's, so a pass cannot be bent to another gate.
        let device =
            VerifyingKey::from_bytes(&ticket.claims.device_key).map_err(|_| Deny::Malformed)?;
        let message = qr::proof_message(&ticket.digest, pass.step, ticket.claims.compound);
        device
            .verify(&message, &Signature::from_bytes(&pass.proof))
            .map_err(|_| Deny::BadDeviceSignature)?;
        // 3. The step is the gate's, give or take one.
        if pass.step.abs_diff(step_of(now)) > 1 {
            return Err(Deny::WrongTime);
        }
        // 4. Never seen before.
        if !ledger.first_use(&ticket.digest, pass.step) {
            return Err(Deny::Replayed);
        }
        // 5. This compound.
        if ticket.claims.compound != self.compound {
            return Err(Deny::WrongCompound);
        }
        // 6. Inside the validity window.
        if now < ticket.claims.not_before {
            return Err(Deny::NotYetValid);
        }
        if now >= ticket.claims.not_after {
            return Err(Deny::Expired);
        }
        // 7. Not revoked.
        if ledger.rider_revoked(&ticket.claims.pseudonym) {
            return Err(Deny::RiderRevoked);
        }
        if ledger.device_revoked(&ticket.claims.device_key) {
            return Err(Deny::DeviceRevoked);
        }
        // 8. In and out in turn.
        let inside = ledger.inside(&ticket.claims.pseudonym);
        match (direction, inside) {
            (Direction::Entry, true) => return Err(Deny::AlreadyInside),
            (Direction::Exit, false) => return Err(Deny::NotInside),
            _ => {}
        }
        Ok(Admit {
            ticket,
            step: pass.step,
            direction,
        })
    }
}

/// A ledger in memory: what a test, a benchmark or a gate box's working set holds.
/// Replay records older than two steps are dropped by [`MemoryLedger::forget_before`].
#[derive(Debug, Default, Clone)]
pub struct MemoryLedger {
    pub seen: std::collections::HashSet<([u8; 32], u64)>,
    pub revoked_riders: std::collections::HashSet<[u8; 16]>,
    pub revoked_devices: std::collections::HashSet<[u8; 32]>,
    pub inside: std::collections::HashSet<[u8; 16]>,
}

impl MemoryLedger {
    /// Applies an accepted scan: entering puts the pseudonym inside, leaving takes it out.
    pub fn record(&mut self, admit: &Admit) {
        match admit.direction {
            Direction::Entry => self.inside.insert(admit.ticket.claims.pseudonym),
            Direction::Exit => self.inside.remove(&admit.ticket.claims.pseudonym),
        };
    }

    /// Drops replay records of steps before `step`: they can never be accepted again
    /// (the time check refuses them first).
    pub fn forget_before(&mut self, step: u64) {
        self.seen.retain(|(_, s)| *s >= step);
    }
}

impl GateLedger for MemoryLedger {
    fn first_use(&mut self, ticket: &[u8; 32], step: u64) -> bool {
        self.seen.insert((*ticket, step))
    }
    fn rider_revoked(&self, pseudonym: &[u8; 16]) -> bool {
        self.revoked_riders.contains(pseudonym)
    }
    fn device_revoked(&self, device_key: &[u8; 32]) -> bool {
        self.revoked_devices.contains(device_key)
    }
    fn inside(&self, pseudonym: &[u8; 16]) -> bool {
        self.inside.contains(pseudonym)
    }
}

#[cfg(test)]
mod tests;
