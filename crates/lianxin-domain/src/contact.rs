//! Officials' contact points (党建联系点), their visits, household-visit coverage and
//! organisation tiers (抓两头带中间): the pure rules, ahead of their storage and pages
//! (issue [3/6]).
//!
//! - A point's **priority** is a weighted sum of three indicators — task load (任务重),
//!   weakness (基础弱) and complexity (情况复杂) — each on 0–100. Weights are
//!   configurable; the score comes with each indicator's share, so the screen can say
//!   why a point ranks where it does.
//! - When an official's post ends, the point needs a **successor**: candidates are
//!   ranked by whether they hold the same post, then by how little they already carry
//!   (sum of their points' priorities), then by name for a stable order.
//! - **Coverage** is the share of a grid's (or community's) households visited at least
//!   once in a period.
//! - **Tiers** sort organisations into advanced, middle and lagging by their indicator
//!   score, with the evidence (each indicator and the thresholds) kept beside the tier.

use crate::ValidationError;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What a contact point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    /// 村
    Village,
    /// 社区
    Community,
    /// 机关、企业、非公或社会组织
    Organisation,
    /// 行业或群体，如外卖骑手
    Sector,
}

impl PointKind {
    pub const ALL: [PointKind; 4] = [
        PointKind::Village,
        PointKind::Community,
        PointKind::Organisation,
        PointKind::Sector,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PointKind::Village => "village",
            PointKind::Community => "community",
            PointKind::Organisation => "organisation",
            PointKind::Sector => "sector",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            PointKind::Village => "村",
            PointKind::Community => "社区",
            PointKind::Organisation => "组织",
            PointKind::Sector => "行业群体",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            PointKind::Village => "Village",
            PointKind::Community => "Community",
            PointKind::Organisation => "Organisation",
            PointKind::Sector => "Sector",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        PointKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| {
                ValidationError::new(
                    "kind",
                    "invalid_kind",
                    "kind must be village, community, organisation or sector",
                )
            })
    }
}

/// Where a re-match stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RematchStatus {
    /// The post ended; nobody is linked yet.
    Open,
    /// An admin chose the successor; the handover awaits their acknowledgement.
    Confirmed,
    /// The successor took over: the point is linked again.
    Acknowledged,
}

impl RematchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RematchStatus::Open => "open",
            RematchStatus::Confirmed => "confirmed",
            RematchStatus::Acknowledged => "acknowledged",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        [
            RematchStatus::Open,
            RematchStatus::Confirmed,
            RematchStatus::Acknowledged,
        ]
        .into_iter()
        .find(|k| k.as_str() == s.trim())
        .ok_or_else(|| {
            ValidationError::new(
                "status",
                "invalid_status",
                "status must be open, confirmed or acknowledged",
            )
        })
    }
}

/// The assignment rules for links: an official is linked to a point once over any
/// day, and holds at most `max_points` points on any day. `existing` are the
/// official's links (point, validity).
pub fn check_link(
    existing: &[(i64, crate::relation::Validity)],
    point: i64,
    validity: crate::relation::Validity,
    max_points: usize,
) -> Result<(), ValidationError> {
    if existing
        .iter()
        .any(|(p, v)| *p == point && v.overlaps(&validity))
    {
        return Err(ValidationError::new(
            "point",
            "overlapping_link",
            "the official is already linked to this point over those days",
        ));
    }
    // The most points held on one day of the new range: the count only rises where a
    // link starts, so checking the new range's first day and every start inside it is
    // enough.
    let starts = std::iter::once(validity.from).chain(
        existing
            .iter()
            .map(|(_, v)| v.from)
            .filter(|d| validity.contains(*d)),
    );
    let busiest = starts
        .map(|day| existing.iter().filter(|(_, v)| v.contains(day)).count())
        .max()
        .unwrap_or(0);
    if busiest + 1 > max_points {
        return Err(ValidationError::new(
            "point",
            "too_many_points",
            format!("an official holds at most {max_points} contact points at a time"),
        ));
    }
    Ok(())
}

/// How much each indicator counts towards a point's priority.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PriorityWeights {
    pub task_load: f64,
    pub weakness: f64,
    pub complexity: f64,
}

impl Default for PriorityWeights {
    /// Equal weights: the article names the three reasons side by side.
    fn default() -> Self {
        PriorityWeights {
            task_load: 1.0,
            weakness: 1.0,
            complexity: 1.0,
        }
    }
}

impl PriorityWeights {
    /// Weights must be finite, not negative, and not all zero.
    pub fn new(task_load: f64, weakness: f64, complexity: f64) -> Result<Self, ValidationError> {
        let all = [task_load, weakness, complexity];
        if all.iter().any(|w| !w.is_finite() || *w < 0.0) || all.iter().sum::<f64>() <= 0.0 {
            return Err(ValidationError::new(
                "weights",
                "invalid_weights",
                "weights must be zero or more, and not all zero",
            ));
        }
        Ok(PriorityWeights {
            task_load,
            weakness,
            complexity,
        })
    }
}

/// A point's indicators, each 0–100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointIndicators {
    pub task_load: u8,
    pub weakness: u8,
    pub complexity: u8,
}

impl PointIndicators {
    pub fn new(task_load: u8, weakness: u8, complexity: u8) -> Result<Self, ValidationError> {
        if [task_load, weakness, complexity].iter().any(|v| *v > 100) {
            return Err(ValidationError::new(
                "indicators",
                "out_of_range",
                "each indicator is 0 to 100",
            ));
        }
        Ok(PointIndicators {
            task_load,
            weakness,
            complexity,
        })
    }
}

/// A priority score (0–100) and what it is made of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Priority {
    pub score: f64,
    /// (indicator, its value, its weight share 0–1, points it adds to the score).
    pub parts: Vec<(&'static str, u8, f64, f64)>,
}

/// The weighted mean of the indicators, with each one's contribution.
pub fn priority(ind: PointIndicators, w: PriorityWeights) -> Priority {
    let total = w.task_load + w.weakness + w.complexity;
    let parts: Vec<(&'static str, u8, f64, f64)> = [
        ("task_load", ind.task_load, w.task_load),
        ("weakness", ind.weakness, w.weakness),
        ("complexity", ind.complexity, w.complexity),
    ]
    .into_iter()
    .map(|(name, v, weight)| {
        let share = weight / total;
        (name, v, share, f64::from(v) * share)
    })
    .collect();
    Priority {
        score: parts.iter().map(|p| p.3).sum(),
        parts,
    }
}

/// A point at or above this score must never be left without an official.
pub const HIGH_PRIORITY: f64 = 70.0;

/// An official who could take over a point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub person_id: i64,
    pub name: String,
    /// The post they hold now (e.g. 区委常委).
    pub post: String,
    /// The sum of the priorities of the points they are linked to now.
    pub load: f64,
}

/// Candidates ranked as successors for a point whose official held `post`: the same
/// post first, then the lightest load, then by name and id so the order is stable.
pub fn rank_successors(post: &str, mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    candidates.sort_by(|a, b| {
        (a.post != post)
            .cmp(&(b.post != post))
            .then(a.load.total_cmp(&b.load))
            .then(a.name.cmp(&b.name))
            .then(a.person_id.cmp(&b.person_id))
    });
    candidates
}

/// A handover goes only to someone who holds a post on the day: `posts` are the
/// validity ranges of the successor's `holds_post` relations.
pub fn check_successor_holds_post(
    posts: &[crate::relation::Validity],
    on: NaiveDate,
) -> Result<(), ValidationError> {
    if posts.iter().any(|v| v.contains(on)) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "successor",
            "holds_no_post",
            "the successor holds no post on that day",
        ))
    }
}

/// A household belongs to one grid at a time: a new assignment may not overlap an
/// existing one to another grid. `existing` are (grid, validity) of the household's
/// current assignments.
pub fn check_single_grid(
    existing: &[(i64, crate::relation::Validity)],
    grid: i64,
    validity: crate::relation::Validity,
) -> Result<(), ValidationError> {
    match existing
        .iter()
        .find(|(g, v)| *g != grid && v.overlaps(&validity))
    {
        Some((g, _)) => Err(ValidationError::new(
            "grid",
            "household_in_two_grids",
            format!("the household is already in grid {g} over those days; end that first"),
        )),
        None => Ok(()),
    }
}

/// Kinds of visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitKind {
    /// 入户走访
    Household,
    /// 座谈
    Forum,
    /// 调研检查
    Inspection,
}

impl VisitKind {
    pub const ALL: [VisitKind; 3] = [
        VisitKind::Household,
        VisitKind::Forum,
        VisitKind::Inspection,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VisitKind::Household => "household",
            VisitKind::Forum => "forum",
            VisitKind::Inspection => "inspection",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        VisitKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| {
                ValidationError::new(
                    "kind",
                    "invalid_kind",
                    "kind must be household, forum or inspection",
                )
            })
    }
}

/// A visit's date may be today (Shanghai) or earlier, never later.
pub fn check_visit_date(date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, ValidationError> {
    if date > today {
        return Err(ValidationError::new(
            "date",
            "visit_in_future",
            "a visit cannot be dated in the future",
        ));
    }
    Ok(date)
}

/// Household-visit coverage of one area: how many of its households were visited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Coverage {
    pub households: u64,
    pub visited: u64,
}

impl Coverage {
    /// The share visited, `None` for an area without households.
    pub fn share(&self) -> Option<f64> {
        (self.households > 0).then(|| self.visited as f64 / self.households as f64)
    }
}

/// Coverage per area: `households` maps each household to its area (a grid or a
/// community); `visited` lists the households visited in the period (repeats and
/// households outside every area are ignored). Every area of `households` appears,
/// visited or not.
pub fn coverage(
    households: &BTreeMap<i64, i64>,
    visited: impl IntoIterator<Item = i64>,
) -> BTreeMap<i64, Coverage> {
    let mut out: BTreeMap<i64, Coverage> = BTreeMap::new();
    for area in households.values() {
        out.entry(*area)
            .or_insert(Coverage {
                households: 0,
                visited: 0,
            })
            .households += 1;
    }
    let seen: BTreeSet<i64> = visited.into_iter().collect();
    for h in seen {
        if let Some(area) = households.get(&h) {
            if let Some(c) = out.get_mut(area) {
                c.visited += 1;
            }
        }
    }
    out
}

/// The tiers of 抓两头带中间.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// 先进
    Advanced,
    /// 中间
    Middle,
    /// 后进
    Lagging,
}

/// Where the tiers begin: a score at or above `advanced` is advanced; below `lagging`
/// it is lagging.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TierThresholds {
    pub advanced: f64,
    pub lagging: f64,
}

impl TierThresholds {
    pub fn new(advanced: f64, lagging: f64) -> Result<Self, ValidationError> {
        if !(0.0..=100.0).contains(&lagging)
            || !(0.0..=100.0).contains(&advanced)
            || lagging >= advanced
        {
            return Err(ValidationError::new(
                "thresholds",
                "invalid_thresholds",
                "thresholds are 0 to 100, the lagging one below the advanced one",
            ));
        }
        Ok(TierThresholds { advanced, lagging })
    }
}

/// An organisation's tier with its evidence: the indicator values (0–100 each) and
/// their mean, which is compared with the thresholds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierFinding {
    pub tier: Tier,
    pub score: f64,
    pub evidence: Vec<(String, f64)>,
    pub thresholds: TierThresholds,
}

/// Tiers an organisation by the mean of its indicators. No indicator at all is an
/// error: a tier without evidence is not a finding.
pub fn tier(
    indicators: &[(String, f64)],
    t: TierThresholds,
) -> Result<TierFinding, ValidationError> {
    if indicators.is_empty() || indicators.iter().any(|(_, v)| !(0.0..=100.0).contains(v)) {
        return Err(ValidationError::new(
            "indicators",
            "no_evidence",
            "give at least one indicator, each 0 to 100",
        ));
    }
    let score = indicators.iter().map(|(_, v)| v).sum::<f64>() / indicators.len() as f64;
    let tier = if score >= t.advanced {
        Tier::Advanced
    } else if score < t.lagging {
        Tier::Lagging
    } else {
        Tier::Middle
    };
    Ok(TierFinding {
        tier,
        score,
        evidence: indicators.to_vec(),
        thresholds: t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relation::Validity;
    use proptest::prelude::*;

    fn days(from: &str, to: Option<&str>) -> Validity {
        Validity::new(from.parse().unwrap(), to.map(|t| t.parse().unwrap())).unwrap()
    }

    #[test]
    fn links_refuse_overlaps_and_too_many_points() {
        let existing = vec![
            (1, days("2025-01-01", None)),
            (2, days("2025-01-01", Some("2025-07-01"))),
        ];
        // The same point again over overlapping days.
        let e = check_link(&existing, 1, days("2025-03-01", None), 2).unwrap_err();
        assert_eq!(e.code, "overlapping_link");
        // A third point while two are held.
        let e = check_link(&existing, 3, days("2025-03-01", None), 2).unwrap_err();
        assert_eq!(e.code, "too_many_points");
        // After point 2's link ended there is room.
        check_link(&existing, 3, days("2025-07-01", None), 2).unwrap();
        // A range that starts before point 2's link and runs into it still counts it.
        let e = check_link(&existing, 3, days("2024-06-01", None), 2).unwrap_err();
        assert_eq!(e.code, "too_many_points");
        // The same point after the earlier link ended is fine.
        let ended = vec![(1, days("2024-01-01", Some("2025-01-01")))];
        check_link(&ended, 1, days("2025-01-01", None), 1).unwrap();
    }

    #[test]
    fn point_kinds_and_rematch_statuses_round_trip() {
        for k in PointKind::ALL {
            assert_eq!(PointKind::parse(k.as_str()).unwrap(), k);
        }
        assert!(PointKind::parse("street").is_err());
        for s in [
            RematchStatus::Open,
            RematchStatus::Confirmed,
            RematchStatus::Acknowledged,
        ] {
            assert_eq!(RematchStatus::parse(s.as_str()).unwrap(), s);
        }
    }

    #[test]
    fn priority_is_explained() {
        let p = priority(
            PointIndicators::new(90, 60, 30).unwrap(),
            PriorityWeights::new(2.0, 1.0, 1.0).unwrap(),
        );
        // 90 × 0.5 + 60 × 0.25 + 30 × 0.25 = 67.5
        assert!((p.score - 67.5).abs() < 1e-9);
        assert_eq!(p.parts[0], ("task_load", 90, 0.5, 45.0));
        assert!(p.score < HIGH_PRIORITY);
        assert!(PriorityWeights::new(0.0, 0.0, 0.0).is_err());
        assert!(PriorityWeights::new(-1.0, 1.0, 1.0).is_err());
        assert!(PriorityWeights::new(f64::NAN, 1.0, 1.0).is_err());
        assert!(PointIndicators::new(101, 0, 0).is_err());
    }

    #[test]
    fn successors_hold_the_post_then_carry_least() {
        let c = |id, name: &str, post: &str, load| Candidate {
            person_id: id,
            name: name.into(),
            post: post.into(),
            load,
        };
        let ranked = rank_successors(
            "区委常委",
            vec![
                c(1, "甲", "副区长", 10.0),
                c(2, "乙", "区委常委", 150.0),
                c(3, "丙", "区委常委", 80.0),
                c(4, "丁", "副区长", 5.0),
            ],
        );
        let ids: Vec<i64> = ranked.iter().map(|c| c.person_id).collect();
        assert_eq!(ids, [3, 2, 4, 1]);
    }

    #[test]
    fn visits_are_not_in_the_future() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        assert!(check_visit_date(today, today).is_ok());
        assert_eq!(
            check_visit_date(today.succ_opt().unwrap(), today)
                .unwrap_err()
                .code,
            "visit_in_future"
        );
        assert_eq!(VisitKind::parse("forum").unwrap(), VisitKind::Forum);
        assert!(VisitKind::parse("party").is_err());
    }

    #[test]
    fn handovers_and_grids_follow_the_rules() {
        use crate::relation::Validity;
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let held = [Validity::new(d("2024-01-01"), Some(d("2026-06-01"))).unwrap()];
        assert!(check_successor_holds_post(&held, d("2026-05-31")).is_ok());
        assert_eq!(
            check_successor_holds_post(&held, d("2026-06-01"))
                .unwrap_err()
                .code,
            "holds_no_post"
        );
        assert!(check_successor_holds_post(&[], d("2026-01-01")).is_err());
        let in_grid_1 = [(
            1,
            Validity::new(d("2026-01-01"), Some(d("2026-07-01"))).unwrap(),
        )];
        // Another grid while still in grid 1: refused; from the day it ends: fine.
        let overlapping = Validity::new(d("2026-06-01"), None).unwrap();
        assert_eq!(
            check_single_grid(&in_grid_1, 2, overlapping)
                .unwrap_err()
                .code,
            "household_in_two_grids"
        );
        let after = Validity::new(d("2026-07-01"), None).unwrap();
        assert!(check_single_grid(&in_grid_1, 2, after).is_ok());
        assert!(check_single_grid(&in_grid_1, 1, overlapping).is_ok());
    }

    /// A hand-computed fixture: grid 1 has households 10–13, grid 2 has 20–21, grid 3
    /// has 30. Visits: 10, 10 again, 12, 21, and 99 (no grid). Grid 1: 2 of 4 = 50%;
    /// grid 2: 1 of 2 = 50%; grid 3: 0 of 1.
    #[test]
    fn coverage_matches_the_hand_computed_fixture() {
        let households: BTreeMap<i64, i64> = [
            (10, 1),
            (11, 1),
            (12, 1),
            (13, 1),
            (20, 2),
            (21, 2),
            (30, 3),
        ]
        .into_iter()
        .collect();
        let c = coverage(&households, [10, 10, 12, 21, 99]);
        assert_eq!(
            c[&1],
            Coverage {
                households: 4,
                visited: 2
            }
        );
        assert_eq!(
            c[&2],
            Coverage {
                households: 2,
                visited: 1
            }
        );
        assert_eq!(
            c[&3],
            Coverage {
                households: 1,
                visited: 0
            }
        );
        assert_eq!(c[&1].share(), Some(0.5));
        assert_eq!(c[&3].share(), Some(0.0));
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn tiers_carry_their_evidence() {
        let t = TierThresholds::new(80.0, 60.0).unwrap();
        let f = tier(&[("组织生活".into(), 90.0), ("服务群众".into(), 80.0)], t).unwrap();
        assert_eq!(f.tier, Tier::Advanced);
        assert_eq!(f.score, 85.0);
        assert_eq!(f.evidence.len(), 2);
        assert_eq!(tier(&[("x".into(), 70.0)], t).unwrap().tier, Tier::Middle);
        assert_eq!(tier(&[("x".into(), 59.9)], t).unwrap().tier, Tier::Lagging);
        assert!(tier(&[], t).is_err());
        assert!(tier(&[("x".into(), 101.0)], t).is_err());
        assert!(TierThresholds::new(50.0, 60.0).is_err());
    }

    proptest! {
        /// A priority is within 0–100 and its parts add up to it, whatever the weights.
        #[test]
        fn priority_parts_add_up(a in 0u8..=100, b in 0u8..=100, c in 0u8..=100,
                                 wa in 0.0f64..10.0, wb in 0.0f64..10.0, wc in 0.01f64..10.0) {
            let p = priority(PointIndicators::new(a, b, c).unwrap(), PriorityWeights::new(wa, wb, wc).unwrap());
            prop_assert!((0.0..=100.0 + 1e-9).contains(&p.score));
            let sum: f64 = p.parts.iter().map(|x| x.3).sum();
            prop_assert!((sum - p.score).abs() < 1e-9);
            let shares: f64 = p.parts.iter().map(|x| x.2).sum();
            prop_assert!((shares - 1.0).abs() < 1e-9);
        }

        /// Two validity ranges overlap exactly when some day lies in both.
        #[test]
        fn overlap_means_a_shared_day(a in 0i64..40, la in 1i64..20, b in 0i64..40, lb in 1i64..20, open_a: bool, open_b: bool) {
            use crate::relation::Validity;
            let day = |n: i64| NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(n);
            let va = Validity::new(day(a), (!open_a).then(|| day(a + la))).unwrap();
            let vb = Validity::new(day(b), (!open_b).then(|| day(b + lb))).unwrap();
            let shared = (0..100).any(|n| va.contains(day(n)) && vb.contains(day(n)));
            prop_assert_eq!(va.overlaps(&vb), shared);
            prop_assert_eq!(va.overlaps(&vb), vb.overlaps(&va));
        }

        /// Coverage never counts more visited households than an area has, and adds up
        /// to the distinct visited households that belong to some area.
        #[test]
        fn coverage_is_bounded(
            homes in proptest::collection::btree_map(0i64..200, 0i64..5, 0..100),
            visits in proptest::collection::vec(0i64..250, 0..300),
        ) {
            let c = coverage(&homes, visits.iter().copied());
            let mut total = 0;
            for cov in c.values() {
                prop_assert!(cov.visited <= cov.households);
                total += cov.visited;
            }
            let distinct: BTreeSet<i64> = visits.into_iter().filter(|v| homes.contains_key(v)).collect();
            prop_assert_eq!(total, distinct.len() as u64);
        }
    }
}
