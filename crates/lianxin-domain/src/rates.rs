//! The three rates by which demand handling is judged (接诉即办考核): 响应率 (responded),
//! 解决率 (resolved) and 满意率 (satisfied).
//!
//! The definitions, with the reasons for each choice and a worked example, are in
//! `docs/rates.md`; this module is their single executable statement. In short, for the
//! demands received in a period, each judged as of an instant `now`:
//!
//! - **响应率** = responded within the response time limit ÷ demands whose response is
//!   judged (they responded, or their response deadline has passed). *Responded* means the
//!   handling unit started work (`in_progress`) or answered (`answered`), whichever came
//!   first; within the limit means before the deadline instant (`calendar::is_overdue`).
//! - **解决率** = resolved ÷ demands whose resolution is judged (closed, or past the
//!   handling deadline while the work is with the units rather than awaiting the reporter's
//!   rating). *Resolved* means closed and the reporter's latest rating is not 不满意 — so a
//!   demand closed unrated after its rating window counts, unless its last rating was 不满意.
//! - **满意率** = rated 满意 or 基本满意 ÷ demands the reporter has rated, by the latest
//!   rating. [`Rates::strict_satisfaction`] counts 满意 alone. Unrated demands are not in
//!   the denominator.
//! - Rejected (不予受理) and merged (已合并) demands are in none of the rates; they are
//!   counted beside them so that the dashboard shows them.
//!
//! Rates are never averaged. Each demand contributes a [`RateCounts`] of zeros and ones;
//! counts are summed over any set of demands ([`RateCounts::merge`] is associative and
//! commutative), and a rate is taken only from the sum. The store keeps one `RateCounts` per
//! unit × place × receipt day and answers any period by adding cells, whatever the number
//! of demands. A demand's contribution changes only when its facts change (a loop step) or
//! when one of its deadlines passes ([`DemandOutcome::next_change`]); at each such instant
//! the store subtracts the old contribution ([`RateCounts::checked_sub`]) and adds the new.

use crate::calendar::{is_overdue, local_day};
use crate::demand::{LoopState, Rating, Status};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The facts about one demand that the rates are judged from, all taken from its loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemandOutcome {
    /// When it was received (受理). Its Shanghai day is the cell it is counted in.
    pub received_at: DateTime<Utc>,
    /// 响应时限: the instant by which the handling unit must take it up. Where a deployment
    /// has only the demand's time limit, this is the same instant as `handling_deadline`.
    pub response_deadline: DateTime<Utc>,
    /// 办理时限: the deadline of the demand's time limit, computed at receipt
    /// (`HolidayCalendar::deadline`). Not moved by a reopen.
    pub handling_deadline: DateTime<Utc>,
    /// The first time a handling unit started work or answered: the first step into
    /// `in_progress` or `answered`, whichever came first. Assessment and assignment do not
    /// count; the reporter sees nothing of them.
    pub first_response_at: Option<DateTime<Utc>>,
    /// The loop status now.
    pub status: Status,
    /// The reporter's latest rating, of whichever answer. A later answer that goes unrated
    /// does not erase it: silence after 不满意 is not consent.
    pub rating: Option<Rating>,
}

impl DemandOutcome {
    /// The outcome of a demand whose loop is in `state`. The loop keeps the latest rating
    /// across a reopen, which is the rating the rates use.
    pub fn from_loop(
        state: &LoopState,
        received_at: DateTime<Utc>,
        response_deadline: DateTime<Utc>,
        handling_deadline: DateTime<Utc>,
        first_response_at: Option<DateTime<Utc>>,
    ) -> Self {
        DemandOutcome {
            received_at,
            response_deadline,
            handling_deadline,
            first_response_at,
            status: state.status,
            rating: state.rating,
        }
    }

    /// The Shanghai calendar day it is counted in: its receipt day (受理日).
    pub fn day(&self) -> NaiveDate {
        local_day(self.received_at)
    }

    /// Rejected (不予受理) or merged into another demand (已合并): in none of the rates.
    pub fn is_excluded(&self) -> bool {
        matches!(self.status, Status::Rejected | Status::Merged)
    }

    /// Whether its response is judged at `now`: it has responded, or the response
    /// deadline has passed. An open demand that has not responded and is still within its
    /// limit is not judged yet.
    pub fn response_judged(&self, now: DateTime<Utc>) -> bool {
        !self.is_excluded()
            && (self.first_response_at.is_some() || is_overdue(now, self.response_deadline))
    }

    /// Whether it responded within the limit: before the deadline instant, which is
    /// itself already overdue.
    pub fn responded_in_time(&self) -> bool {
        !self.is_excluded()
            && self
                .first_response_at
                .is_some_and(|at| !is_overdue(at, self.response_deadline))
    }

    /// Whether its resolution is judged at `now`: it is closed, or the handling deadline
    /// has passed while the work is with the units. An answer awaiting the reporter's
    /// rating (`answered`) waits for that verdict.
    pub fn resolution_judged(&self, now: DateTime<Utc>) -> bool {
        match self.status {
            Status::Rejected | Status::Merged | Status::Answered => false,
            Status::Closed => true,
            _ => is_overdue(now, self.handling_deadline),
        }
    }

    /// Whether it is resolved: closed, and the reporter's latest rating is not 不满意
    /// (满意, 基本满意, or no rating at all when the rating window ran out).
    pub fn is_resolved(&self) -> bool {
        self.status == Status::Closed && self.rating != Some(Rating::Unsatisfied)
    }

    /// Whether it is in the 满意率: not excluded, and rated at least once.
    pub fn is_rated(&self) -> bool {
        !self.is_excluded() && self.rating.is_some()
    }

    /// The next instant after `now` at which its contribution would change with no new
    /// step of the loop: a response deadline not yet reached without a response, or a
    /// handling deadline not yet reached while the work is with the units. `None` when only
    /// a loop step can change it. The store re-evaluates the demand then.
    pub fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_excluded() {
            return None;
        }
        let response = (self.first_response_at.is_none()
            && !is_overdue(now, self.response_deadline))
        .then_some(self.response_deadline);
        let handling = (!matches!(self.status, Status::Closed | Status::Answered)
            && !is_overdue(now, self.handling_deadline))
        .then_some(self.handling_deadline);
        match (response, handling) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Summable counters for the three rates: numerators and denominators, plus what was
/// left out. Built with [`RateCounts::add`], combined with [`RateCounts::merge`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RateCounts {
    /// 受理量: every demand added, excluded ones included.
    pub received: u64,
    /// 不予受理: rejected, in no rate.
    pub rejected: u64,
    /// 已合并: merged into another demand, in no rate.
    pub merged: u64,
    /// 应响应: the 响应率 denominator.
    pub response_due: u64,
    /// 按时响应: the 响应率 numerator.
    pub responded_in_time: u64,
    /// 应解决: the 解决率 denominator.
    pub resolution_due: u64,
    /// 已解决: the 解决率 numerator.
    pub resolved: u64,
    /// 参评: the 满意率 denominator (demands with a rating).
    pub rated: u64,
    /// 满意 + 基本满意: the 满意率 numerator.
    pub satisfied: u64,
    /// 满意 alone: the numerator of the strict 满意率.
    pub strictly_satisfied: u64,
}

impl RateCounts {
    /// The contribution of one demand judged at `now`: every counter is 0 or 1.
    pub fn of(outcome: &DemandOutcome, now: DateTime<Utc>) -> Self {
        let one = |b: bool| u64::from(b);
        RateCounts {
            received: 1,
            rejected: one(outcome.status == Status::Rejected),
            merged: one(outcome.status == Status::Merged),
            response_due: one(outcome.response_judged(now)),
            responded_in_time: one(outcome.responded_in_time()),
            resolution_due: one(outcome.resolution_judged(now)),
            resolved: one(outcome.resolution_judged(now) && outcome.is_resolved()),
            rated: one(outcome.is_rated()),
            satisfied: one(outcome.is_rated()
                && matches!(
                    outcome.rating,
                    Some(Rating::Satisfied | Rating::BasicallySatisfied)
                )),
            strictly_satisfied: one(outcome.is_rated() && outcome.rating == Some(Rating::Satisfied)),
        }
    }

    /// Counts one more demand, judged at `now`.
    pub fn add(&mut self, outcome: &DemandOutcome, now: DateTime<Utc>) {
        self.merge(&RateCounts::of(outcome, now));
    }

    /// Adds the counts of another set of demands. Associative and commutative, so cells
    /// can be summed in any grouping and order. Saturates rather than wraps, which keeps
    /// both properties (the sum is `min(true sum, u64::MAX)`) and cannot be reached by
    /// counting demands.
    pub fn merge(&mut self, other: &RateCounts) {
        for (mine, theirs) in self.fields_mut().into_iter().zip(other.fields()) {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// These counts without `other`, or `None` if a counter would go below zero. Meant
    /// for taking back a contribution that was added before, when a demand changes.
    pub fn checked_sub(&self, other: &RateCounts) -> Option<RateCounts> {
        let mut out = *self;
        for (mine, theirs) in out.fields_mut().into_iter().zip(other.fields()) {
            *mine = mine.checked_sub(theirs)?;
        }
        Some(out)
    }

    /// The rates; each is `None` when its denominator is zero.
    pub fn rates(&self) -> Rates {
        Rates {
            response: ratio(self.responded_in_time, self.response_due),
            resolution: ratio(self.resolved, self.resolution_due),
            satisfaction: ratio(self.satisfied, self.rated),
            strict_satisfaction: ratio(self.strictly_satisfied, self.rated),
        }
    }

    /// The relations every sum of contributions keeps, for checking counts read back from
    /// storage: numerators within denominators, denominators within the demands judged.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let judged = self
            .received
            .checked_sub(self.rejected)
            .and_then(|n| n.checked_sub(self.merged))
            .ok_or("more demands excluded than received")?;
        if self.responded_in_time > self.response_due {
            return Err("more responded in time than judged for response");
        }
        if self.resolved > self.resolution_due {
            return Err("more resolved than judged for resolution");
        }
        if self.strictly_satisfied > self.satisfied || self.satisfied > self.rated {
            return Err("satisfied counts exceed the rated");
        }
        if self.response_due.max(self.resolution_due).max(self.rated) > judged {
            return Err("a denominator exceeds the demands not excluded");
        }
        Ok(())
    }

    /// One demand's contribution (every counter 0 or 1) as a bit set, so the store can
    /// remember exactly what it added. `None` if a counter is above 1.
    pub fn to_bits(&self) -> Option<u16> {
        let mut bits = 0u16;
        for (i, v) in self.fields().into_iter().enumerate() {
            match v {
                0 => {}
                1 => bits |= 1 << i,
                _ => return None,
            }
        }
        Some(bits)
    }

    /// The contribution a bit set from [`RateCounts::to_bits`] stands for.
    pub fn from_bits(bits: u16) -> RateCounts {
        let mut out = RateCounts::default();
        for (i, f) in out.fields_mut().into_iter().enumerate() {
            *f = u64::from(bits >> i & 1);
        }
        out
    }

    /// The counters in a fixed order (the order of the storage columns).
    pub fn fields(&self) -> [u64; 10] {
        [
            self.received,
            self.rejected,
            self.merged,
            self.response_due,
            self.responded_in_time,
            self.resolution_due,
            self.resolved,
            self.rated,
            self.satisfied,
            self.strictly_satisfied,
        ]
    }

    /// Builds counts from the counters in the order of [`RateCounts::fields`].
    pub fn from_fields(values: [u64; 10]) -> RateCounts {
        let mut out = RateCounts::default();
        for (f, v) in out.fields_mut().into_iter().zip(values) {
            *f = v;
        }
        out
    }

    fn fields_mut(&mut self) -> [&mut u64; 10] {
        [
            &mut self.received,
            &mut self.rejected,
            &mut self.merged,
            &mut self.response_due,
            &mut self.responded_in_time,
            &mut self.resolution_due,
            &mut self.resolved,
            &mut self.rated,
            &mut self.satisfied,
            &mut self.strictly_satisfied,
        ]
    }
}

/// The rates of a [`RateCounts`], each between 0 and 1, `None` when nothing was judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// 响应率
    pub response: Option<f64>,
    /// 解决率
    pub resolution: Option<f64>,
    /// 满意率: 满意 and 基本满意 over the rated.
    pub satisfaction: Option<f64>,
    /// 满意率 in the strict sense: 满意 alone over the rated.
    pub strict_satisfaction: Option<f64>,
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// A rate as a percentage with two decimals, rounded half away from zero (`0.9801` →
/// `"98.01%"`); `"—"` when there is no rate.
pub fn percent(rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!("{:.2}%", (r * 10_000.0).round() / 100.0),
        None => "—".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demand::{Actor, Command};
    use chrono::Duration;
    use proptest::prelude::*;

    fn t(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The evaluation instant of the worked example: 2025-09-11 10:00 Beijing time.
    fn now() -> DateTime<Utc> {
        t("2025-09-11T02:00:00Z")
    }

    /// A demand received at `received` with a 24-hour response limit and a 7-day handling
    /// limit (wall-clock here, for easy arithmetic; the store uses the calendar).
    fn demand(
        received: DateTime<Utc>,
        responded_after_h: Option<i64>,
        status: Status,
        rating: Option<Rating>,
    ) -> DemandOutcome {
        DemandOutcome {
            received_at: received,
            response_deadline: received + Duration::hours(24),
            handling_deadline: received + Duration::days(7),
            first_response_at: responded_after_h.map(|h| received + Duration::hours(h)),
            status,
            rating,
        }
    }

    /// The ten demands of the worked example in `docs/rates.md`.
    fn ten() -> Vec<DemandOutcome> {
        use Rating::*;
        use Status::*;
        let early = t("2025-09-01T02:00:00Z");
        let three_days_ago = now() - Duration::days(3);
        let two_hours_ago = now() - Duration::hours(2);
        vec![
            // 1. responded in 2 h, closed, 满意
            demand(early, Some(2), Closed, Some(Satisfied)),
            // 2. responded in 5 h, closed, 基本满意
            demand(early, Some(5), Closed, Some(BasicallySatisfied)),
            // 3. responded late (30 h), answered, closed unrated after the rating window
            demand(early, Some(30), Closed, None),
            // 4. responded in 3 h, rated 不满意, reopened, still with the unit past its limit
            demand(early, Some(3), Assigned, Some(Unsatisfied)),
            // 5. responded in 4 h, 不满意, reworked, re-rated 满意, closed
            demand(early, Some(4), Closed, Some(Satisfied)),
            // 6. received two hours ago, nothing done yet: not judged
            demand(two_hours_ago, None, Received, None),
            // 7. received three days ago, assessed, never taken up
            demand(three_days_ago, None, Assessed, None),
            // 8. received two hours ago, work started after one: responded, not yet due
            demand(two_hours_ago, Some(1), InProgress, None),
            // 9. rejected (不予受理)
            demand(early, None, Rejected, None),
            // 10. merged into a duplicate (已合并)
            demand(early, None, Merged, None),
        ]
    }

    fn counts(outcomes: &[DemandOutcome], at: DateTime<Utc>) -> RateCounts {
        let mut c = RateCounts::default();
        for o in outcomes {
            c.add(o, at);
        }
        c
    }

    #[test]
    fn the_worked_example_of_ten_demands() {
        let demands = ten();
        // Per demand: (response judged, in time, resolution judged, resolved, rated,
        // satisfied, strictly satisfied), as tabulated in docs/rates.md.
        let expected = [
            (1, 1, 1, 1, 1, 1, 1),
            (1, 1, 1, 1, 1, 1, 0),
            (1, 0, 1, 1, 0, 0, 0),
            (1, 1, 1, 0, 1, 0, 0),
            (1, 1, 1, 1, 1, 1, 1),
            (0, 0, 0, 0, 0, 0, 0),
            (1, 0, 0, 0, 0, 0, 0),
            (1, 1, 0, 0, 0, 0, 0),
            (0, 0, 0, 0, 0, 0, 0),
            (0, 0, 0, 0, 0, 0, 0),
        ];
        for (i, (d, e)) in demands.iter().zip(expected).enumerate() {
            let c = RateCounts::of(d, now());
            let got = (
                c.response_due,
                c.responded_in_time,
                c.resolution_due,
                c.resolved,
                c.rated,
                c.satisfied,
                c.strictly_satisfied,
            );
            assert_eq!(got, e, "demand {}", i + 1);
        }
        let c = counts(&demands, now());
        assert_eq!(
            c,
            RateCounts {
                received: 10,
                rejected: 1,
                merged: 1,
                response_due: 7,
                responded_in_time: 5,
                resolution_due: 5,
                resolved: 4,
                rated: 4,
                satisfied: 3,
                strictly_satisfied: 2,
            }
        );
        let r = c.rates();
        assert_eq!(percent(r.response), "71.43%");
        assert_eq!(percent(r.resolution), "80.00%");
        assert_eq!(percent(r.satisfaction), "75.00%");
        assert_eq!(percent(r.strict_satisfaction), "50.00%");
        assert_eq!(c.check_invariants(), Ok(()));

        // The same demands in their receipt-day cells, as tabulated in docs/rates.md.
        let mut cells = std::collections::BTreeMap::<NaiveDate, RateCounts>::new();
        for d in &demands {
            cells.entry(d.day()).or_default().add(d, now());
        }
        let day = |m, d| NaiveDate::from_ymd_opt(2025, m, d).unwrap();
        let row = |c: &RateCounts| {
            [
                c.received,
                c.rejected,
                c.merged,
                c.response_due,
                c.responded_in_time,
                c.resolution_due,
                c.resolved,
                c.rated,
                c.satisfied,
                c.strictly_satisfied,
            ]
        };
        assert_eq!(row(&cells[&day(9, 1)]), [7, 1, 1, 5, 4, 5, 4, 4, 3, 2]);
        assert_eq!(row(&cells[&day(9, 8)]), [1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(row(&cells[&day(9, 11)]), [2, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
        assert_eq!(cells.len(), 3);
        let mut sum = RateCounts::default();
        cells.values().for_each(|cell| sum.merge(cell));
        assert_eq!(sum, c);
    }

    #[test]
    fn the_example_a_week_later() {
        // No step is taken, but the clock passes every deadline: 6 is now due for a
        // response it never gave, and 6, 7 and 8 are due for resolution, unresolved.
        let later = now() + Duration::days(7);
        let c = counts(&ten(), later);
        assert_eq!((c.responded_in_time, c.response_due), (5, 8));
        assert_eq!((c.resolved, c.resolution_due), (4, 8));
        assert_eq!((c.satisfied, c.rated), (3, 4));
    }

    #[test]
    fn the_deadline_instant_is_already_late() {
        let received = t("2025-09-01T02:00:00Z");
        let mut d = demand(received, Some(24), Status::InProgress, None);
        assert!(!d.responded_in_time(), "responding at the deadline is late");
        d.first_response_at = Some(received + Duration::hours(24) - Duration::milliseconds(1));
        assert!(d.responded_in_time());
        let silent = demand(received, None, Status::Assigned, None);
        let deadline = silent.response_deadline;
        assert!(!silent.response_judged(deadline - Duration::milliseconds(1)));
        assert!(silent.response_judged(deadline));
    }

    #[test]
    fn rejected_and_merged_count_only_beside_the_rates() {
        let received = t("2025-09-01T02:00:00Z");
        for status in [Status::Rejected, Status::Merged] {
            // Even with a response and a rating from before it was rejected.
            let d = demand(received, Some(1), status, Some(Rating::Unsatisfied));
            let c = RateCounts::of(&d, now());
            assert_eq!(c.received, 1);
            assert_eq!(c.rejected + c.merged, 1);
            assert_eq!(
                (c.response_due, c.resolution_due, c.rated),
                (0, 0, 0),
                "{status:?}"
            );
            assert_eq!(d.next_change(now()), None);
        }
    }

    #[test]
    fn the_latest_rating_counts_and_silence_does_not_overturn_it() {
        let received = t("2025-09-01T02:00:00Z");
        // Rated 不满意, reworked, answered again and closed unrated: still 不满意, not resolved.
        let d = demand(received, Some(2), Status::Closed, Some(Rating::Unsatisfied));
        let c = RateCounts::of(&d, now());
        assert_eq!((c.resolved, c.resolution_due), (0, 1));
        assert_eq!((c.satisfied, c.rated), (0, 1));
        // Closed unrated, never rated: resolved, and not in the 满意率.
        let d = demand(received, Some(2), Status::Closed, None);
        let c = RateCounts::of(&d, now());
        assert_eq!((c.resolved, c.resolution_due, c.rated), (1, 1, 0));
        // Answered and awaiting the rating past the limit: the verdict is awaited.
        let d = demand(received, Some(2), Status::Answered, None);
        assert!(!d.resolution_judged(now()));
    }

    #[test]
    fn rates_of_nothing_are_none() {
        let r = RateCounts::default().rates();
        assert_eq!(
            r,
            Rates {
                response: None,
                resolution: None,
                satisfaction: None,
                strict_satisfaction: None
            }
        );
        assert_eq!(percent(r.response), "—");
    }

    #[test]
    fn percent_has_two_decimals() {
        // Beijing E-Town 2022.
        assert_eq!(percent(ratio(9801, 10_000)), "98.01%");
        assert_eq!(percent(ratio(9620, 10_000)), "96.20%");
        assert_eq!(percent(ratio(9599, 10_000)), "95.99%");
        assert_eq!(percent(Some(1.0)), "100.00%");
        assert_eq!(percent(Some(0.0)), "0.00%");
        assert_eq!(percent(ratio(1, 32)), "3.13%", "3.125 rounds up");
        assert_eq!(percent(ratio(2, 3)), "66.67%");
    }

    #[test]
    fn outcomes_follow_the_loop() {
        let t0 = t("2025-09-01T02:00:00Z");
        let limit = t0 + Duration::days(7);
        let response = t0 + Duration::hours(24);
        let mut s = LoopState::received(1, limit, t0).unwrap();
        let steps = [
            (Command::Assess { deadline: limit }, Actor::Unit(1)),
            (
                Command::Assign {
                    unit: 2,
                    deadline: limit,
                },
                Actor::Unit(1),
            ),
            (Command::Start, Actor::Unit(2)),
            (
                Command::Answer {
                    rating_deadline: limit,
                },
                Actor::Unit(2),
            ),
            (
                Command::Rate {
                    rating: Rating::Unsatisfied,
                    rework_deadline: Some(limit),
                },
                Actor::Reporter,
            ),
        ];
        let mut clock = t0;
        let mut first_response = None;
        for (cmd, actor) in steps {
            clock += Duration::hours(1);
            s = s.apply(&cmd, actor, clock).unwrap();
            if matches!(s.status, Status::InProgress | Status::Answered) {
                first_response.get_or_insert(clock);
            }
        }
        let o = DemandOutcome::from_loop(&s, t0, response, limit, first_response);
        assert_eq!(o.first_response_at, Some(t0 + Duration::hours(3)));
        assert_eq!(
            (o.status, o.rating),
            (Status::Assigned, Some(Rating::Unsatisfied))
        );
        let c = RateCounts::of(&o, clock);
        assert_eq!((c.responded_in_time, c.response_due), (1, 1));
        assert_eq!((c.resolution_due, c.rated, c.satisfied), (0, 1, 0));
        assert_eq!(o.next_change(clock), Some(limit));
        assert_eq!(o.day(), NaiveDate::from_ymd_opt(2025, 9, 1).unwrap());
        // Reworked, answered, and this time 基本满意: closed, resolved, satisfied.
        s = s
            .apply(
                &Command::Answer {
                    rating_deadline: limit,
                },
                Actor::Unit(2),
                clock,
            )
            .unwrap();
        s = s
            .apply(
                &Command::Rate {
                    rating: Rating::BasicallySatisfied,
                    rework_deadline: None,
                },
                Actor::Reporter,
                clock,
            )
            .unwrap();
        let o = DemandOutcome::from_loop(&s, t0, response, limit, first_response);
        let c = RateCounts::of(&o, clock);
        assert_eq!((c.resolved, c.resolution_due), (1, 1));
        assert_eq!((c.satisfied, c.strictly_satisfied, c.rated), (1, 0, 1));
        assert_eq!(o.next_change(clock), None);
    }

    #[test]
    fn the_receipt_day_is_the_shanghai_day() {
        // 23:30 UTC on 31 August is 07:30 on 1 September in Beijing.
        let d = demand(t("2025-08-31T23:30:00Z"), None, Status::Received, None);
        assert_eq!(d.day(), NaiveDate::from_ymd_opt(2025, 9, 1).unwrap());
    }

    #[test]
    fn invariants_catch_impossible_counts() {
        let ok = counts(&ten(), now());
        assert!(ok.check_invariants().is_ok());
        let bad = RateCounts {
            responded_in_time: ok.response_due + 1,
            ..ok
        };
        assert!(bad.check_invariants().is_err());
        let bad = RateCounts { rejected: 11, ..ok };
        assert!(bad.check_invariants().is_err());
        let bad = RateCounts {
            strictly_satisfied: ok.satisfied + 1,
            ..ok
        };
        assert!(bad.check_invariants().is_err());
    }

    fn status() -> impl Strategy<Value = Status> {
        use Status::*;
        prop_oneof![
            Just(Received),
            Just(Assessed),
            Just(Assigned),
            Just(InProgress),
            Just(Answered),
            Just(Closed),
            Just(Rejected),
            Just(Merged),
        ]
    }

    fn rating() -> impl Strategy<Value = Option<Rating>> {
        proptest::option::of(prop_oneof![
            Just(Rating::Satisfied),
            Just(Rating::BasicallySatisfied),
            Just(Rating::Unsatisfied),
        ])
    }

    /// Any outcome received in the 30 days before the example's `now`, with deadlines
    /// and a response anywhere from just after receipt to a month later.
    fn outcome() -> impl Strategy<Value = DemandOutcome> {
        (
            0i64..30 * 24,
            1i64..72,
            1i64..400,
            proptest::option::of(0i64..720),
            status(),
            rating(),
        )
            .prop_map(|(ago_h, resp_h, handle_h, first_h, status, rating)| {
                let received = now() - Duration::hours(ago_h);
                DemandOutcome {
                    received_at: received,
                    response_deadline: received + Duration::hours(resp_h),
                    handling_deadline: received + Duration::hours(handle_h),
                    first_response_at: first_h.map(|h| received + Duration::minutes(h * 30)),
                    status,
                    rating,
                }
            })
    }

    fn outcomes() -> impl Strategy<Value = Vec<DemandOutcome>> {
        proptest::collection::vec(outcome(), 0..40)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Summing the counts of parts, in any grouping and order, is counting the whole.
        #[test]
        fn merging_parts_equals_adding_the_whole(all in outcomes(), a in 0usize..40, b in 0usize..40) {
            let (i, j) = (a.min(b).min(all.len()), a.max(b).min(all.len()));
            let whole = counts(&all, now());
            let [x, y, z] = [&all[..i], &all[i..j], &all[j..]].map(|part| counts(part, now()));
            let mut left = x; // (x + y) + z
            left.merge(&y);
            left.merge(&z);
            let mut yz = y; // x + (y + z)
            yz.merge(&z);
            let mut right = x;
            right.merge(&yz);
            let mut reversed = z; // z + y + x
            reversed.merge(&y);
            reversed.merge(&x);
            prop_assert_eq!(left, whole);
            prop_assert_eq!(right, whole);
            prop_assert_eq!(reversed, whole);
            prop_assert_eq!(whole.checked_sub(&yz), Some(x), "a part can be taken back out");
            prop_assert!(whole.check_invariants().is_ok());
        }

        /// Every rate lies in [0, 1], and is None exactly when its denominator is zero.
        #[test]
        fn rates_are_fractions_or_none(all in outcomes(), hours in -24i64..2000) {
            let c = counts(&all, now() + Duration::hours(hours));
            let r = c.rates();
            for (rate, den) in [
                (r.response, c.response_due),
                (r.resolution, c.resolution_due),
                (r.satisfaction, c.rated),
                (r.strict_satisfaction, c.rated),
            ] {
                prop_assert_eq!(rate.is_none(), den == 0);
                if let Some(x) = rate {
                    prop_assert!((0.0..=1.0).contains(&x), "{} out of range", x);
                }
            }
            prop_assert!(r.strict_satisfaction <= r.satisfaction);
        }

        /// A closed demand rated 满意 or 基本满意, responded in time, lowers no rate.
        #[test]
        fn a_good_demand_never_lowers_a_rate(all in outcomes(), base in outcome(), strict in proptest::bool::ANY) {
            let good = DemandOutcome {
                first_response_at: Some(base.received_at),
                status: Status::Closed,
                rating: Some(if strict { Rating::Satisfied } else { Rating::BasicallySatisfied }),
                ..base
            };
            let before = counts(&all, now()).rates();
            let mut c = counts(&all, now());
            c.add(&good, now());
            let after = c.rates();
            for (b, a) in [
                (before.response, after.response),
                (before.resolution, after.resolution),
                (before.satisfaction, after.satisfaction),
            ] {
                prop_assert!(a.is_some());
                if let (Some(b), Some(a)) = (b, a) {
                    prop_assert!(a >= b, "{} fell to {}", b, a);
                }
            }
        }

        /// A demand's contribution is constant until `next_change`, and as time passes with
        /// no step of the loop its judgements only accumulate.
        #[test]
        fn contributions_change_only_at_next_change(o in outcome(), step_min in 0i64..20_000, late_min in 0i64..20_000) {
            let at = now();
            let c = RateCounts::of(&o, at);
            let later = at + Duration::minutes(step_min);
            match o.next_change(at) {
                Some(next) => {
                    prop_assert!(next > at);
                    let probe = later.min(next - Duration::milliseconds(1));
                    prop_assert_eq!(RateCounts::of(&o, probe), c);
                    prop_assert_ne!(RateCounts::of(&o, next), c, "something changes at next_change");
                }
                None => prop_assert_eq!(RateCounts::of(&o, later), c),
            }
            let even_later = RateCounts::of(&o, later + Duration::minutes(late_min));
            let then = RateCounts::of(&o, later);
            prop_assert!(even_later.response_due >= then.response_due);
            prop_assert!(even_later.resolution_due >= then.resolution_due);
            prop_assert_eq!(even_later.rated, then.rated);
            prop_assert!(c.check_invariants().is_ok());
        }
    }

    #[test]
    fn a_contribution_round_trips_through_bits() {
        for bits in 0u16..1024 {
            let c = RateCounts::from_bits(bits);
            assert_eq!(c.to_bits(), Some(bits));
            assert_eq!(RateCounts::from_fields(c.fields()), c);
        }
        let mut two = RateCounts::from_bits(1);
        two.merge(&RateCounts::from_bits(1));
        assert_eq!(two.to_bits(), None);
    }
}
