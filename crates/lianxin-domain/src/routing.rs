//! Routing: which unit answers a demand, and the escalation chain above it.
//!
//! Rules map a category and a place subtree to a responsible unit. A demand goes to
//! the rule with the *deepest* place that contains the demand's place; at equal
//! depth a rule naming the category beats a catch-all. The escalation chain is the
//! same question asked again at each level above the matched rule's place — so a
//! community's overdue demand climbs to the street, the district department, the
//! league/city — with repeated units dropped. Places are given by materialised path
//! (`/150000/152500/152502/…/`), so "contains" is a prefix test and nothing here
//! needs the database.
//!
//! A demand that no rule covers is an explicit error, never a silent drop: the
//! caller must show it to someone (a body with no contact never receives reports).

use crate::demand::UnitId;
use serde::{Deserialize, Serialize};

/// One routing rule: demands of `category` (or any, when `None`) at a place inside
/// `place_path` go to `unit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingRule {
    pub category: Option<String>,
    pub place_path: String,
    pub unit: UnitId,
}

/// Where a demand goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub unit: UnitId,
    /// The place of the rule that matched.
    pub place_path: String,
    /// The units above, nearest first, for escalation.
    pub escalation: Vec<UnitId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no routing rule covers category {category} at this place")]
pub struct Unroutable {
    pub category: String,
}

/// A set of routing rules.
#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    rules: Vec<RoutingRule>,
}

/// The prefixes of a path from itself upwards: `/a/b/` → [`/a/b/`, `/a/`].
fn levels(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    (1..=parts.len())
        .rev()
        .map(|n| format!("/{}/", parts[..n].join("/")))
        .collect()
}

impl RoutingTable {
    pub fn new(rules: Vec<RoutingRule>) -> Self {
        RoutingTable { rules }
    }

    /// The best rule defined exactly at `level` for `category`.
    fn at_level(&self, category: &str, level: &str) -> Option<&RoutingRule> {
        let mut candidates = self.rules.iter().filter(|r| r.place_path == level);
        let specific = candidates
            .clone()
            .find(|r| r.category.as_deref() == Some(category));
        specific.or_else(|| candidates.find(|r| r.category.is_none()))
    }

    pub fn route(&self, category: &str, place_path: &str) -> Result<Route, Unroutable> {
        let mut chain = levels(place_path)
            .into_iter()
            .filter_map(|level| self.at_level(category, &level).map(|r| (level, r.unit)));
        let (matched, unit) = chain.next().ok_or_else(|| Unroutable {
            category: category.to_string(),
        })?;
        let mut escalation: Vec<UnitId> = Vec::new();
        for (_, u) in chain {
            if u != unit && !escalation.contains(&u) {
                escalation.push(u);
            }
        }
        Ok(Route {
            unit,
            place_path: matched,
            escalation,
        })
    }

    /// Rules that can never match because a rule at the same place and category
    /// comes first: shown to admins as likely mistakes.
    pub fn shadowed(&self) -> Vec<&RoutingRule> {
        let mut seen = std::collections::HashSet::new();
        self.rules
            .iter()
            .filter(|r| !seen.insert((r.place_path.as_str(), r.category.as_deref())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// How many levels a path has: `/150000/152500/` → 2.
    fn depth(path: &str) -> usize {
        path.split('/').filter(|s| !s.is_empty()).count()
    }

    const LEAGUE: &str = "/150000/152500/";
    const CITY: &str = "/150000/152500/152502/";
    const STREET: &str = "/150000/152500/152502/152502.XL/";
    const COMMUNITY: &str = "/150000/152500/152502/152502.XL/152502.XL.HT/";

    fn rule(category: Option<&str>, path: &str, unit: UnitId) -> RoutingRule {
        RoutingRule {
            category: category.map(Into::into),
            place_path: path.into(),
            unit,
        }
    }

    /// Xilingol's five-party linkage, in miniature: community → street → city
    /// department → league.
    fn table() -> RoutingTable {
        RoutingTable::new(rules())
    }

    fn rules() -> Vec<RoutingRule> {
        vec![
            rule(None, LEAGUE, 1),
            rule(None, CITY, 2),
            rule(Some("utilities"), CITY, 3),
            rule(None, STREET, 4),
            rule(None, COMMUNITY, 5),
        ]
    }

    #[test]
    fn deepest_rule_wins_and_escalation_climbs() {
        let r = table().route("road", &format!("{COMMUNITY}G01/")).unwrap();
        assert_eq!((r.unit, r.escalation.clone()), (5, vec![4, 2, 1]));
        assert_eq!(depth(&r.place_path), 5);
        // A category rule at the city level replaces the catch-all there.
        let r = table().route("utilities", COMMUNITY).unwrap();
        assert_eq!(r.escalation, vec![4, 3, 1]);
        let r = table().route("road", "/150000/152500/152501/").unwrap();
        assert_eq!((r.unit, r.escalation), (1, vec![]));
    }

    #[test]
    fn unroutable_is_an_error() {
        let err = table().route("road", "/150000/150200/").unwrap_err();
        assert_eq!(err.category, "road");
        // A prefix that is not a whole level does not match.
        let t = RoutingTable::new(vec![rule(None, "/150000/1525/", 9)]);
        assert!(t.route("x", LEAGUE).is_err());
    }

    #[test]
    fn duplicate_rules_are_reported() {
        let mut rules = rules();
        rules.push(rule(None, STREET, 99));
        assert_eq!(
            RoutingTable::new(rules).shadowed(),
            vec![&rule(None, STREET, 99)]
        );
        assert!(table().shadowed().is_empty());
    }

    proptest! {
        /// Whatever the rules, a route's unit is the deepest covering rule's unit,
        /// and the chain never repeats a unit or contains the routed unit.
        #[test]
        fn routes_are_consistent(
            rules in proptest::collection::vec((0usize..4, proptest::option::of("[ab]"), 1i64..6), 0..12),
            place_depth in 1usize..5,
            category in "[ab]",
        ) {
            let paths = [LEAGUE, CITY, STREET, COMMUNITY];
            let rules: Vec<RoutingRule> =
                rules.into_iter().map(|(d, c, u)| rule(c.as_deref(), paths[d], u)).collect();
            let place = paths[place_depth - 1];
            let table = RoutingTable::new(rules.clone());
            match table.route(&category, place) {
                Ok(r) => {
                    prop_assert!(place.starts_with(&r.place_path));
                    let deeper = rules.iter().any(|x| {
                        place.starts_with(&x.place_path)
                            && depth(&x.place_path) > depth(&r.place_path)
                            && x.category.as_deref().is_none_or(|c| c == category)
                    });
                    prop_assert!(!deeper, "a deeper rule was ignored");
                    let mut seen = std::collections::HashSet::new();
                    prop_assert!(r.escalation.iter().all(|u| *u != r.unit && seen.insert(*u)));
                }
                Err(_) => prop_assert!(!rules.iter().any(|x| place.starts_with(&x.place_path)
                    && x.category.as_deref().is_none_or(|c| c == category))),
            }
        }
    }
}
