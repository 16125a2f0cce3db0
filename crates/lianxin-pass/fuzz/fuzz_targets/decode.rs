//! Any bytes, as QR text, through the whole gate check: it must never panic, and
//! nothing but a real pass may be admitted (no trusted key here, so nothing is).
#![no_main]

use lianxin_pass::{Direction, Gate, MemoryLedger, TrustList};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let trust = TrustList::default();
    let gate = Gate { compound: 1, trust: &trust };
    let mut ledger = MemoryLedger::default();
    assert!(gate
        .check(&text, 1_800_000_000, Direction::Entry, &mut ledger)
        .is_err());
    // The decoder alone, on the text with the prefix forced.
    let _ = lianxin_pass::Pass::decode(&format!("LX1:{text}"));
});
