//! The security tests the design names, one each, plus tampering everywhere.

use super::*;
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

const COMPOUND: u64 = 4207;
/// 2026-11-28 12:00:00 UTC.
const NOW: u64 = 1_795_867_200;

struct World {
    issuer: Issuer,
    trust: TrustList,
    device: SigningKey,
    claims: Claims,
}

fn key(seed: u64) -> SigningKey {
    SigningKey::generate(&mut StdRng::seed_from_u64(seed))
}

fn world() -> World {
    let issuer = Issuer {
        kid: KeyId::from_slice(b"k2026a").unwrap(),
        key: key(1),
    };
    let trust = TrustList {
        keys: vec![TrustedKey {
            kid: issuer.kid,
            key: issuer.key.verifying_key(),
            accepted_until: None,
        }],
    };
    let device = key(2);
    let claims = Claims {
        pseudonym: [7; 16],
        order_hash: order_hash(b"order-key", "meituan", "MT-20261128-0001"),
        compound: COMPOUND,
        not_before: NOW - 600,
        not_after: NOW + 3600,
        device_key: device.verifying_key().to_bytes(),
    };
    World {
        issuer,
        trust,
        device,
        claims,
    }
}

impl World {
    fn qr_at(&self, unix: u64) -> String {
        let ticket = self.issuer.issue(&self.claims);
        Pass::prove(&ticket, self.claims.compound, step_of(unix), &self.device).encode()
    }

    fn gate(&self) -> Gate<'_> {
        Gate {
            compound: COMPOUND,
            trust: &self.trust,
        }
    }

    fn check(&self, qr: &str, now: u64, ledger: &mut MemoryLedger) -> Result<Admit, Deny> {
        self.gate().check(qr, now, Direction::Entry, ledger)
    }
}

#[test]
fn a_good_pass_is_admitted_and_says_nothing_personal() {
    let w = world();
    let qr = w.qr_at(NOW);
    assert!(qr.starts_with(PASS_PREFIX));
    assert!(
        qr.bytes()
            .all(|c| b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(&c)),
        "QR alphanumeric mode only"
    );
    assert!(qr.len() < 420, "{} characters", qr.len());
    let admit = w.check(&qr, NOW, &mut MemoryLedger::default()).unwrap();
    assert_eq!(admit.ticket.claims, w.claims);
    assert_eq!(admit.direction, Direction::Entry);
}

#[test]
fn a_forged_signature_is_refused() {
    let w = world();
    // Someone with their own key signs claims under the real key id.
    let forger = Issuer {
        kid: w.issuer.kid,
        key: key(99),
    };
    let ticket = forger.issue(&w.claims);
    let qr = Pass::prove(&ticket, COMPOUND, step_of(NOW), &w.device).encode();
    assert_eq!(
        w.check(&qr, NOW, &mut MemoryLedger::default()),
        Err(Deny::BadIssuerSignature)
    );
    // And a valid ticket whose device proof was made with another phone's key.
    let real = w.issuer.issue(&w.claims);
    let qr = Pass::prove(&real, COMPOUND, step_of(NOW), &key(98)).encode();
    assert_eq!(
        w.check(&qr, NOW, &mut MemoryLedger::default()),
        Err(Deny::BadDeviceSignature)
    );
}

#[test]
fn a_wrong_issuer_key_is_refused() {
    let w = world();
    let stranger = Issuer {
        kid: KeyId::from_slice(b"other").unwrap(),
        key: key(5),
    };
    let ticket = stranger.issue(&w.claims);
    let qr = Pass::prove(&ticket, COMPOUND, step_of(NOW), &w.device).encode();
    assert_eq!(
        w.check(&qr, NOW, &mut MemoryLedger::default()),
        Err(Deny::UnknownIssuer)
    );
}

#[test]
fn an_expired_or_early_ticket_is_refused() {
    let w = world();
    let after = w.claims.not_after;
    let qr = w.qr_at(after);
    assert_eq!(
        w.check(&qr, after, &mut MemoryLedger::default()),
        Err(Deny::Expired)
    );
    let before = w.claims.not_before - 1;
    let qr = w.qr_at(before);
    assert_eq!(
        w.check(&qr, before, &mut MemoryLedger::default()),
        Err(Deny::NotYetValid)
    );
    // The last second of the window still passes.
    let last = after - 1;
    assert!(w
        .check(&w.qr_at(last), last, &mut MemoryLedger::default())
        .is_ok());
}

#[test]
fn a_replayed_qr_is_refused() {
    let w = world();
    let mut ledger = MemoryLedger::default();
    let qr = w.qr_at(NOW);
    w.check(&qr, NOW, &mut ledger).unwrap();
    // The same code again within its step, even for the other direction.
    assert_eq!(
        w.gate().check(&qr, NOW + 5, Direction::Exit, &mut ledger),
        Err(Deny::Replayed)
    );
    // A screenshot shown two minutes later, at a gate that never saw it.
    assert_eq!(
        w.check(&qr, NOW + 120, &mut MemoryLedger::default()),
        Err(Deny::WrongTime)
    );
}

#[test]
fn a_pass_for_another_compound_is_refused() {
    let w = world();
    let qr = w.qr_at(NOW);
    let other = Gate {
        compound: COMPOUND + 1,
        trust: &w.trust,
    };
    assert_eq!(
        other.check(&qr, NOW, Direction::Entry, &mut MemoryLedger::default()),
        Err(Deny::WrongCompound)
    );
}

#[test]
fn a_revoked_rider_or_device_is_refused() {
    let w = world();
    let mut ledger = MemoryLedger::default();
    ledger.revoked_riders.insert(w.claims.pseudonym);
    assert_eq!(
        w.check(&w.qr_at(NOW), NOW, &mut ledger),
        Err(Deny::RiderRevoked)
    );
    let mut ledger = MemoryLedger::default();
    ledger.revoked_devices.insert(w.claims.device_key);
    assert_eq!(
        w.check(&w.qr_at(NOW), NOW, &mut ledger),
        Err(Deny::DeviceRevoked)
    );
}

#[test]
fn a_rotated_issuer_key_is_accepted_during_the_overlap_only() {
    let mut w = world();
    let old = w.issuer.issue(&w.claims);
    // Rotation: a new key under a new id; the old one is accepted for one more hour.
    let new = Issuer {
        kid: KeyId::from_slice(b"k2026b").unwrap(),
        key: key(3),
    };
    let retire = NOW + 3600;
    w.trust.keys[0].accepted_until = Some(retire);
    w.trust.keys.push(TrustedKey {
        kid: new.kid,
        key: new.key.verifying_key(),
        accepted_until: None,
    });
    let qr_old = |at: u64| Pass::prove(&old, COMPOUND, step_of(at), &w.device).encode();
    let mut claims = w.claims.clone();
    claims.not_after = NOW + 7200;
    let fresh = new.issue(&claims);
    assert!(w
        .check(&qr_old(NOW), NOW, &mut MemoryLedger::default())
        .is_ok());
    let at = retire - 1;
    assert!(w
        .check(&qr_old(at), at, &mut MemoryLedger::default())
        .is_ok());
    let at = retire;
    let mut w_claims_later = w.claims.clone();
    w_claims_later.not_after = NOW + 7200;
    let old_long = w.issuer.issue(&w_claims_later);
    let qr = Pass::prove(&old_long, COMPOUND, step_of(at), &w.device).encode();
    assert_eq!(
        w.check(&qr, at, &mut MemoryLedger::default()),
        Err(Deny::RetiredIssuer)
    );
    let qr = Pass::prove(&fresh, COMPOUND, step_of(at), &w.device).encode();
    assert!(w.check(&qr, at, &mut MemoryLedger::default()).is_ok());
    // Two keys may share an id across a rotation: each is tried.
    w.trust.keys.push(TrustedKey {
        kid: new.kid,
        key: key(4).verifying_key(),
        accepted_until: None,
    });
    w.trust.keys.swap(1, 2);
    let qr = Pass::prove(&fresh, COMPOUND, step_of(at + 60), &w.device).encode();
    assert!(w.check(&qr, at + 60, &mut MemoryLedger::default()).is_ok());
}

#[test]
fn clock_skew_is_tolerated_by_one_step_and_no_more() {
    let w = world();
    let gate_step = step_of(NOW);
    for (phone_step, ok) in [
        (gate_step - 2, false),
        (gate_step - 1, true),
        (gate_step, true),
        (gate_step + 1, true),
        (gate_step + 2, false),
    ] {
        let ticket = w.issuer.issue(&w.claims);
        let qr = Pass::prove(&ticket, COMPOUND, phone_step, &w.device).encode();
        let r = w.check(&qr, NOW, &mut MemoryLedger::default());
        if ok {
            assert!(r.is_ok(), "step {phone_step}: {r:?}");
        } else {
            assert_eq!(r, Err(Deny::WrongTime), "step {phone_step}");
        }
    }
}

#[test]
fn entries_and_exits_alternate() {
    let w = world();
    let mut ledger = MemoryLedger::default();
    // An exit without an entry.
    assert_eq!(
        w.gate()
            .check(&w.qr_at(NOW), NOW, Direction::Exit, &mut ledger),
        Err(Deny::NotInside)
    );
    let t = NOW + 30;
    let admit = w
        .gate()
        .check(&w.qr_at(t), t, Direction::Entry, &mut ledger)
        .unwrap();
    ledger.record(&admit);
    // A double entry.
    let t = NOW + 60;
    assert_eq!(
        w.gate()
            .check(&w.qr_at(t), t, Direction::Entry, &mut ledger),
        Err(Deny::AlreadyInside)
    );
    let t = NOW + 90;
    let admit = w
        .gate()
        .check(&w.qr_at(t), t, Direction::Exit, &mut ledger)
        .unwrap();
    ledger.record(&admit);
    assert!(ledger.inside.is_empty());
}

#[test]
fn other_versions_and_junk_are_malformed() {
    let w = world();
    let qr = w.qr_at(NOW);
    for bad in [
        qr.replacen("LX1:", "LX2:", 1),
        "".to_string(),
        "LX1:".to_string(),
        "https://example.com".to_string(),
        format!("LX1:{}", "A".repeat(5000)),
    ] {
        assert_eq!(
            w.check(&bad, NOW, &mut MemoryLedger::default()),
            Err(Deny::Malformed),
            "{bad:.40}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Any single character of the QR changed: never admitted, never a panic.
    #[test]
    fn tampering_with_any_character_is_refused(pos in 0usize..400, c in 0u8..45) {
        let w = world();
        let qr = w.qr_at(NOW);
        let pos = pos % qr.len();
        let replacement = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"[usize::from(c)];
        prop_assume!(qr.as_bytes()[pos] != replacement);
        let mut bytes = qr.into_bytes();
        bytes[pos] = replacement;
        let tampered = String::from_utf8(bytes).unwrap();
        prop_assert!(w.check(&tampered, NOW, &mut MemoryLedger::default()).is_err());
    }

    /// Any bit of the ticket or the proof flipped (re-encoded validly): refused.
    #[test]
    fn flipping_any_bit_of_the_pass_is_refused(bit in 0usize..4000, in_ticket in any::<bool>()) {
        let w = world();
        let mut pass = Pass::decode(&w.qr_at(NOW)).unwrap();
        if in_ticket {
            let i = bit % (pass.ticket.len() * 8);
            pass.ticket[i / 8] ^= 1 << (i % 8);
        } else {
            let i = bit % 512;
            pass.proof[i / 8] ^= 1 << (i % 8);
        }
        prop_assert!(w.check(&pass.encode(), NOW, &mut MemoryLedger::default()).is_err());
    }

    /// The decoder takes any text without panicking (the CI-run form of the fuzz
    /// target in `fuzz/`).
    #[test]
    fn decoding_anything_never_panics(text in "LX1:[0-9A-Z $%*+./:-]{0,600}") {
        let w = world();
        let _ = w.check(&text, NOW, &mut MemoryLedger::default());
    }
}

/// The online gate reads the claims before the check (to look up the rider and the
/// device) and the key id (to pick its trust list): they are the very bytes the
/// issuer signed, and nothing is said about a forgery until the check runs.
#[test]
fn unverified_claims_and_kid_are_the_signed_ones() {
    let w = world();
    let ticket = w.issuer.issue(&w.claims);
    assert_eq!(unverified_claims(&ticket).unwrap(), w.claims);
    assert_eq!(ticket::unverified_kid(&ticket), Some(w.issuer.kid));
    // A ticket signed by someone else still parses, but the check refuses it.
    let forged = Issuer {
        kid: w.issuer.kid,
        key: key(99),
    }
    .issue(&w.claims);
    assert_eq!(unverified_claims(&forged).unwrap(), w.claims);
    let qr = Pass::prove(&forged, COMPOUND, step_of(NOW), &w.device).encode();
    let mut ledger = MemoryLedger::default();
    assert_eq!(
        w.gate().check(&qr, NOW, Direction::Entry, &mut ledger),
        Err(Deny::BadIssuerSignature)
    );
    assert_eq!(unverified_claims(b"junk"), Err(Deny::Malformed));
    assert_eq!(ticket::unverified_kid(b"junk"), None);
}
