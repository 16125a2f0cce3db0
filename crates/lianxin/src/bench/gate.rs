//! `bench gate`, in-process part: how many passes one machine verifies per second
//! with the whole gate check (`lianxin_pass::Gate::check`: decoding, the issuer and
//! device signatures, the time, replay, compound, window, revocation and entry
//! checks), against the physical limit — bare Ed25519 verification of the same two
//! signatures over the same bytes (the device key parsed from its 32 bytes, since
//! every pass brings its own). Both run on every core, one thread per core, on
//! passes prepared beforehand (each a different ticket, so none is a replay).
//!
//! The HTTP half (scans through `/api/v1/gate/scan` with 64 gates and durable
//! logging) is `gate_http`; `bench gate` runs both and sets them side by side.

use super::{median, Row};
use anyhow::{ensure, Result};
use ed25519_dalek::{Signature, SigningKey, Verifier, VerifyingKey};
use lianxin_pass::{
    order_hash, step_of, Claims, Direction, Gate, Issuer, KeyId, MemoryLedger, Pass, TrustList,
    TrustedKey,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

pub struct Scale {
    pub name: &'static str,
    /// Passes prepared per thread (each verified once per run).
    pub passes: usize,
    pub runs: usize,
    /// The HTTP load (`gate_http`).
    pub http: super::gate_http::Plan,
}

impl Scale {
    pub const FULL: Scale = Scale {
        name: "full",
        passes: 40_000,
        runs: 5,
        http: super::gate_http::Plan {
            runs: 3,
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(5),
        },
    };
    pub const QUICK: Scale = Scale {
        name: "quick",
        passes: 8_000,
        runs: 3,
        http: super::gate_http::Plan {
            runs: 2,
            warmup: Duration::from_millis(500),
            measure: Duration::from_millis(2500),
        },
    };
}

const COMPOUND: u64 = 4207;

/// One thread's work: the QR texts, and for the bare limit each pass's two
/// signatures with the bytes they sign. The issuer key is parsed once (a gate holds
/// its trust list parsed); the device key comes with every pass, so the limit parses
/// it each time, as any verifier of that pass must.
struct Prepared {
    qrs: Vec<String>,
    bare: Vec<Bare>,
}

struct Bare {
    issuer: VerifyingKey,
    issued: Vec<u8>,
    issuer_sig: Signature,
    device: [u8; 32],
    proof_msg: Vec<u8>,
    proof: Signature,
}

impl Bare {
    fn verify(&self) -> bool {
        self.issuer.verify(&self.issued, &self.issuer_sig).is_ok()
            && VerifyingKey::from_bytes(&self.device)
                .is_ok_and(|k| k.verify(&self.proof_msg, &self.proof).is_ok())
    }
}

fn prepare(seed: u64, n: usize, issuer: &Issuer, now: u64) -> Result<Prepared> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut qrs = Vec::with_capacity(n);
    let mut bare = Vec::with_capacity(n);
    for i in 0..n {
        let device = SigningKey::generate(&mut rng);
        let claims = Claims {
            pseudonym: rng.gen(),
            order_hash: order_hash(b"bench", "meituan", &format!("MT-{seed}-{i}")),
            compound: COMPOUND,
            not_before: now - 60,
            not_after: now + 3600,
            device_key: device.verifying_key().to_bytes(),
        };
        let ticket = issuer.issue(&claims);
        let pass = Pass::prove(&ticket, COMPOUND, step_of(now), &device);
        let (issued, issuer_sig) = lianxin_pass::ticket::signed_message(&ticket)
            .map_err(|e| anyhow::anyhow!("preparing a pass: {e}"))?;
        let digest: [u8; 32] = sha2::Digest::finalize(sha2::Digest::chain_update(
            <sha2::Sha256 as sha2::Digest>::new(),
            &ticket,
        ))
        .into();
        let proof_msg = lianxin_pass::qr::proof_message(&digest, pass.step, COMPOUND);
        bare.push(Bare {
            issuer: issuer.key.verifying_key(),
            issued,
            issuer_sig: Signature::from_bytes(&issuer_sig),
            device: device.verifying_key().to_bytes(),
            proof_msg: proof_msg.to_vec(),
            proof: Signature::from_bytes(&pass.proof),
        });
        qrs.push(pass.encode());
    }
    Ok(Prepared { qrs, bare })
}

/// Runs `work` on every prepared set at once, one thread each; passes per second.
fn on_all_cores(sets: &[Prepared], work: impl Fn(&Prepared) -> usize + Sync) -> Result<f64> {
    let started = Instant::now();
    let done: usize = std::thread::scope(|s| {
        let handles: Vec<_> = sets.iter().map(|p| s.spawn(|| work(p))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench thread panicked"))
            .sum()
    });
    let total: usize = sets.iter().map(|p| p.qrs.len()).sum();
    ensure!(done == total, "only {done} of {total} passes were verified");
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

pub fn run(scale: &Scale) -> Result<(String, Vec<Row>)> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let now = chrono::Utc::now().timestamp() as u64;
    let issuer = Issuer {
        kid: KeyId::from_slice(b"bench").expect("a short key id"),
        key: SigningKey::generate(&mut StdRng::seed_from_u64(1)),
    };
    let trust = TrustList {
        keys: vec![TrustedKey {
            kid: issuer.kid,
            key: issuer.key.verifying_key(),
            accepted_until: None,
        }],
    };
    eprintln!(
        "bench: preparing {} passes on {threads} threads",
        scale.passes * threads
    );
    let sets: Vec<Prepared> = (0..threads)
        .map(|t| prepare(100 + t as u64, scale.passes, &issuer, now))
        .collect::<Result<_>>()?;
    let size = sets[0].qrs[0].len();
    let gate = Gate {
        compound: COMPOUND,
        trust: &trust,
    };
    let (mut full, mut bare) = (Vec::new(), Vec::new());
    for run in 1..=scale.runs {
        // Alternate, so a slow patch of a shared machine lands on both.
        let b = on_all_cores(&sets, |p| p.bare.iter().filter(|b| b.verify()).count())?;
        let f = on_all_cores(&sets, |p| {
            let mut ledger = MemoryLedger::default();
            p.qrs
                .iter()
                .filter(|qr| gate.check(qr, now, Direction::Entry, &mut ledger).is_ok())
                .count()
        })?;
        eprintln!(
            "bench:   run {run}/{}: full check {f:.0}/s, two bare signatures {b:.0}/s",
            scale.runs
        );
        full.push(f);
        bare.push(b);
    }
    let (full, bare) = (median(&full), median(&bare));
    let facts = format!(
        "gate: {threads} threads × {} passes per run, {} runs; a QR is {size} characters",
        scale.passes, scale.runs
    );
    Ok((
        facts,
        vec![
            Row::new("full gate check, in-process, all cores", full, "passes/s")
                .against("2 bare Ed25519 verifications", bare)
                .target(">= 90% of the limit", full >= 0.9 * bare),
        ],
    ))
}
