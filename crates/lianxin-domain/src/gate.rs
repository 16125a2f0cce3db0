//! What a compound and its property company read off the gate log: entries per hour
//! of the (Shanghai) day, and the time a rider spends at the gate.
//!
//! "Time at the gate" is what the 新通码 exists to cut. The log cannot see a rider
//! walk up, so it is measured from what it does see, per passing scan:
//! - the server's own time from the request to the logged decision (`took_ms`), and
//! - when the same pass was refused at the same gate, the same way (in or out),
//!   shortly before (a stale code, a clock out of step), the time from that first
//!   attempt. A refusal one way is no delay to a pass the other way.
//!
//! A rider let in on the first try has spent only the check's milliseconds; one who
//! had to retry has spent the minutes between. Attempts refused before the issuer
//! signature held carry no pseudonym and cannot be tied to a rider: they are counted
//! among the refusals but not in anybody's time.

use crate::calendar::SHANGHAI;
use chrono::{DateTime, Timelike, Utc};
use std::collections::{BTreeMap, HashMap};

/// An earlier refusal of the same pass at the same gate counts towards the time at
/// the gate when it is at most this long before the pass.
pub const RETRY_WINDOW_SECONDS: i64 = 10 * 60;

/// One logged scan, as the statistics need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanFact {
    pub at: DateTime<Utc>,
    pub gate_id: i64,
    pub pseudonym: Option<String>,
    pub entry: bool,
    /// `pass`, or the refusal's reason code.
    pub outcome: String,
    pub took_ms: Option<i64>,
}

impl ScanFact {
    fn passed(&self) -> bool {
        self.outcome == "pass"
    }
}

/// The figures over a set of scans.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GateStats {
    /// Entries let in, by hour of the Shanghai day (0–23).
    pub entries_by_hour: [u32; 24],
    pub entries: u32,
    pub exits: u32,
    /// Refusals by reason code, most frequent first (ties by code).
    pub refusals: Vec<(String, u32)>,
    /// The median time at the gate of the passes, in milliseconds.
    pub median_ms_at_gate: Option<i64>,
    /// Passes let through on the first attempt, as a share of all passes.
    pub first_try_share: Option<f64>,
}

/// The statistics of `scans` (any order).
pub fn stats(scans: &[ScanFact]) -> GateStats {
    let mut out = GateStats::default();
    let mut sorted: Vec<&ScanFact> = scans.iter().collect();
    sorted.sort_by_key(|s| s.at);
    // The first refusal of each (gate, pseudonym, direction) not yet followed by a
    // pass that way: a replayed entry code is no delay to the rider's exit.
    let mut pending: HashMap<(i64, &str, bool), DateTime<Utc>> = HashMap::new();
    let mut refusals: BTreeMap<&str, u32> = BTreeMap::new();
    let mut times = Vec::new();
    let mut first_try = 0u32;
    for s in sorted {
        if !s.passed() {
            *refusals.entry(s.outcome.as_str()).or_default() += 1;
            if let Some(p) = &s.pseudonym {
                // The first refusal still inside the window: an older one no longer
                // counts, so a newer one takes its place.
                let first = pending
                    .entry((s.gate_id, p.as_str(), s.entry))
                    .or_insert(s.at);
                if (s.at - *first).num_seconds() > RETRY_WINDOW_SECONDS {
                    *first = s.at;
                }
            }
            continue;
        }
        if s.entry {
            out.entries += 1;
            out.entries_by_hour[s.at.with_timezone(&SHANGHAI).hour() as usize] += 1;
        } else {
            out.exits += 1;
        }
        let retried = s
            .pseudonym
            .as_deref()
            .and_then(|p| pending.remove(&(s.gate_id, p, s.entry)))
            .map(|first| (s.at - first).num_milliseconds())
            .filter(|ms| *ms <= RETRY_WINDOW_SECONDS * 1000);
        if retried.is_none() {
            first_try += 1;
        }
        times.push(retried.unwrap_or(0) + s.took_ms.unwrap_or(0).max(0));
    }
    let mut refusals: Vec<(String, u32)> = refusals
        .into_iter()
        .map(|(code, n)| (code.to_string(), n))
        .collect();
    refusals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.refusals = refusals;
    if !times.is_empty() {
        times.sort_unstable();
        let n = times.len();
        out.median_ms_at_gate = Some(if n % 2 == 1 {
            times[n / 2]
        } else {
            (times[n / 2 - 1] + times[n / 2]) / 2
        });
        out.first_try_share = Some(f64::from(first_try) / n as f64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn scan(sec: i64, gate: i64, who: Option<&str>, entry: bool, outcome: &str) -> ScanFact {
        ScanFact {
            at: Utc.timestamp_opt(1_790_000_000 + sec, 0).unwrap(),
            gate_id: gate,
            pseudonym: who.map(str::to_string),
            entry,
            outcome: outcome.to_string(),
            took_ms: Some(4),
        }
    }

    #[test]
    fn first_try_passes_spend_only_the_check() {
        let s = stats(&[
            scan(0, 1, Some("a"), true, "pass"),
            scan(10, 1, Some("b"), true, "pass"),
            scan(20, 1, Some("a"), false, "pass"),
        ]);
        assert_eq!((s.entries, s.exits), (2, 1));
        assert_eq!(s.median_ms_at_gate, Some(4));
        assert_eq!(s.first_try_share, Some(1.0));
    }

    #[test]
    fn a_retry_counts_from_the_first_refusal_at_that_gate() {
        let s = stats(&[
            scan(100, 1, Some("a"), true, "pass"),
            scan(10, 1, Some("a"), true, "wrong_time"),
            scan(40, 1, Some("a"), true, "replayed"),
        ]);
        // 90 s from the first refusal, plus the check.
        assert_eq!(s.median_ms_at_gate, Some(90_004));
        assert_eq!(s.first_try_share, Some(0.0));
        assert_eq!(
            s.refusals,
            vec![("replayed".to_string(), 1), ("wrong_time".to_string(), 1)]
        );
    }

    #[test]
    fn a_stale_refusal_gives_way_to_a_newer_one() {
        let s = stats(&[
            scan(0, 1, Some("a"), true, "expired"),
            scan(RETRY_WINDOW_SECONDS + 100, 1, Some("a"), true, "wrong_time"),
            scan(RETRY_WINDOW_SECONDS + 130, 1, Some("a"), true, "pass"),
        ]);
        assert_eq!(s.median_ms_at_gate, Some(30_004));
        assert_eq!(s.first_try_share, Some(0.0));
    }

    #[test]
    fn a_refusal_one_way_is_no_delay_the_other_way() {
        let s = stats(&[
            scan(0, 1, Some("a"), true, "pass"),
            scan(5, 1, Some("a"), true, "replayed"),
            scan(300, 1, Some("a"), false, "pass"),
        ]);
        assert_eq!(s.median_ms_at_gate, Some(4));
        assert_eq!(s.first_try_share, Some(1.0));
    }

    #[test]
    fn refusals_elsewhere_long_ago_or_anonymous_do_not_count() {
        let s = stats(&[
            scan(0, 2, Some("a"), true, "replayed"), // another gate
            scan(0, 1, None, true, "malformed"),     // nobody to tie it to
            scan(-(RETRY_WINDOW_SECONDS + 60), 1, Some("b"), true, "expired"),
            scan(30, 1, Some("a"), true, "pass"),
            scan(30, 1, Some("b"), true, "pass"),
        ]);
        assert_eq!(s.median_ms_at_gate, Some(4));
        assert_eq!(s.refusals.len(), 3);
    }

    #[test]
    fn entries_fall_in_the_shanghai_hour() {
        // 1_790_000_000 is 2026-09-21 14:13:20 UTC, 22:13 in Shanghai.
        let s = stats(&[scan(0, 1, Some("a"), true, "pass")]);
        assert_eq!(s.entries_by_hour[22], 1);
        assert_eq!(s.entries_by_hour.iter().sum::<u32>(), 1);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let mut a = scan(0, 1, Some("a"), true, "pass");
        a.took_ms = Some(2);
        let mut b = scan(1, 1, Some("b"), true, "pass");
        b.took_ms = Some(10);
        assert_eq!(stats(&[a, b]).median_ms_at_gate, Some(6));
        assert_eq!(stats(&[]).median_ms_at_gate, None);
    }
}
