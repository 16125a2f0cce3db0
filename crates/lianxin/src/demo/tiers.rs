//! Organisation tiers of the demo world (抓两头带中间): this year's indicators for most
//! party organisations of `demo/world.toml`, spread so that the board has advanced,
//! middle and lagging organisations (and a few not yet assessed), an improvement plan
//! with tracked actions for a lagging village branch, and model designations.
//!
//! Every value carries a note that reads like the evidence an organisation department
//! would record. The figures are illustrative, not taken from any real assessment.

use anyhow::{Context, Result};
use chrono::NaiveDate;
use lianxin_domain::calendar::local_day;
use lianxin_domain::role::DataScope;
use lianxin_domain::tiers::Indicator;
use lianxin_store::audit::Actor;
use lianxin_store::Store;

/// The year the demo assesses: the current one, so the board is never stale.
fn this_year(today: NaiveDate) -> i64 {
    i64::from(chrono::Datelike::year(&today))
}

/// The five indicators, and how far each sits from the organisation's mean (they sum
/// to zero, so the score is the base below).
const INDICATORS: [(&str, f64); 5] = [
    ("组织生活", 4.0),
    ("党员教育", -3.0),
    ("服务群众", 2.0),
    ("阵地建设", -5.0),
    ("作用发挥", 2.0),
];

/// (organisation code, the mean of its indicators). Organisations of the world that
/// are not listed stay "not assessed".
const SCORES: &[(&str, f64)] = &[
    ("JY-QW", 88.0),
    ("JY-BYXL-DGW", 84.0),
    ("JY-BYXL-KY", 91.0),
    ("JY-SHAHE-DGW", 76.0),
    ("JY-SHAHE-HY", 81.0),
    ("JY-SRL-DGW", 72.0),
    ("JY-SAIHAN-DGW", 69.0),
    ("JY-HLGE-DW", 63.0),
    ("JY-MC-DW", 58.0),
    ("JY-HYHT-DW", 66.0),
    ("JY-BYXL-EDSHX", 52.0),
    ("HHHT-LXGW", 78.0),
    ("HHHT-WMPS", 86.0),
    ("HHHT-KDWL", 62.0),
    ("DS-QW", 74.0),
    ("DS-WMPS", 83.0),
    ("DS-KDWL", 57.0),
    ("SS-QW", 79.0),
    ("SS-QN-DGW", 71.0),
    ("SS-GZ-DW", 65.0),
    ("SS-GZ-GD", 55.0),
    ("SS-QN-BC", 82.0),
    ("SS-XY-MG", 80.0),
    ("XLHT-SW", 85.0),
    ("XLHT-XRTL-DGW", 77.0),
    ("XLHT-XRTL-HRM", 89.0),
    ("YKS-BKT-DW", 68.0),
    ("YKS-BKT-EDHZ", 87.0),
];

/// (organisation code, title, years before this one).
const DESIGNATIONS: &[(&str, &str, i64)] = &[
    ("YKS-BKT-EDHZ", "模范支部", 1),
    ("YKS-BKT-EDHZ", "五星级党支部", 1),
    ("JY-BYXL-KY", "先进基层党组织", 1),
    ("XLHT-XRTL-HRM", "先进基层党组织", 1),
    ("HHHT-WMPS", "坚强堡垒", 1),
    ("JY-BYXL-KY", "五星级党支部", 0),
];

/// The evidence behind a value, worded as the record would be.
fn note(name: &str, value: f64) -> String {
    let v = value.round() as i64;
    match name {
        "组织生活" => format!(
            "全年支委会{}次、党员大会{}次、党课{}次，记录{}",
            (v / 8).max(2),
            (v / 25).max(1),
            (v / 22).max(1),
            if v >= 80 {
                "完整"
            } else if v >= 60 {
                "基本完整"
            } else {
                "不全，缺会较多"
            }
        ),
        "党员教育" => format!(
            "集中学习{}次，党员参学率{}%",
            (v / 7).max(2),
            v.clamp(40, 99)
        ),
        "服务群众" => format!(
            "收集群众诉求{}件，按期办结{}件",
            v / 2 + 10,
            (v / 2 + 10) * v / 100
        ),
        "阵地建设" => format!(
            "党群服务中心{}㎡，{}",
            v * 3,
            if v >= 70 {
                "标识制度上墙、每周开放"
            } else {
                "未统一挂牌，开放时间不固定"
            }
        ),
        _ => format!(
            "牵头共建项目{}个，党员志愿服务{}小时",
            (v / 20).max(1),
            v * 12
        ),
    }
}

/// Loads the demo tiers; call after the world (its organisations) is loaded.
pub async fn load(store: &Store) -> Result<()> {
    let actor = Actor::system("demo");
    let all = DataScope::everything();
    let today = local_day(chrono::Utc::now());
    let year = this_year(today);
    for (code, base) in SCORES {
        let org = store
            .org_by_code(code)
            .await?
            .with_context(|| format!("demo tiers: no organisation {code}"))?;
        let set = INDICATORS
            .iter()
            .map(|(name, offset)| {
                let value = (base + offset).clamp(0.0, 100.0);
                Indicator::parse(name, value, &note(name, value))
            })
            .collect::<Result<Vec<_>, _>>()?;
        store
            .set_indicators(&actor, &all, org.id, year, &set, today)
            .await
            .with_context(|| format!("demo tiers: indicators of {code}"))?;
    }

    // 二道沙河西村党支部 is lagging: an improvement plan with tracked actions, one
    // done, one past its day, one still to come.
    let lagging = store
        .org_by_code("JY-BYXL-EDSHX")
        .await?
        .context("demo tiers: no organisation JY-BYXL-EDSHX")?;
    let plan = store
        .create_plan(
            &actor,
            &all,
            lagging.id,
            year,
            &format!("二道沙河西村党支部整顿提升方案（{year}）"),
        )
        .await?;
    // Due dates around today: one long past (and done), one past, one ahead.
    let actions = [
        ("配齐配强支部班子，补选支委2名", -240),
        ("规范“三会一课”，建立月度计划和台账", -60),
        ("党群服务中心统一挂牌，固定开放时间", 30),
    ];
    let mut ids = Vec::new();
    for (title, days) in actions {
        let due = today + chrono::Duration::days(days);
        let a = store
            .add_plan_action(&actor, &all, plan.id, title, due, today)
            .await?;
        ids.push(a.id);
    }
    let done_on = today - chrono::Duration::days(250);
    store
        .complete_action(
            &actor,
            &all,
            ids[0],
            done_on,
            "经党员大会选举补选支委2名，街道党工委已批复",
            today,
        )
        .await?;

    for (code, title, years_ago) in DESIGNATIONS {
        let org = store
            .org_by_code(code)
            .await?
            .with_context(|| format!("demo tiers: no organisation {code}"))?;
        store
            .award_designation(&actor, &all, org.id, title, year - years_ago)
            .await
            .with_context(|| format!("demo tiers: {title} for {code}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_keep_the_mean_and_notes_read_as_evidence() {
        let sum: f64 = INDICATORS.iter().map(|(_, o)| o).sum();
        assert_eq!(sum, 0.0);
        for (name, _) in INDICATORS {
            for v in [0.0, 52.0, 100.0] {
                assert!(Indicator::parse(name, v, &note(name, v)).is_ok());
            }
        }
        assert!(note("组织生活", 50.0).contains("记录不全"));
    }

    #[test]
    fn the_demo_spreads_over_every_tier() {
        let t = lianxin_domain::contact::TierThresholds::new(80.0, 60.0).unwrap();
        let tier = |b: f64| {
            let pairs: Vec<(String, f64)> = INDICATORS
                .iter()
                .map(|(n, o)| (n.to_string(), b + o))
                .collect();
            lianxin_domain::contact::tier(&pairs, t).unwrap().tier
        };
        use lianxin_domain::contact::Tier;
        let tiers: Vec<Tier> = SCORES.iter().map(|(_, b)| tier(*b)).collect();
        for want in [Tier::Advanced, Tier::Middle, Tier::Lagging] {
            assert!(tiers.contains(&want), "{want:?}");
        }
        assert_eq!(tier(52.0), Tier::Lagging, "the branch with the plan lags");
    }

    #[tokio::test]
    async fn loads_onto_the_demo_world() {
        let store = lianxin_store::testing::TestStore::new(lianxin_store::Engine::Sqlite)
            .await
            .unwrap();
        let key = lianxin_domain::pii::PiiKey::from_master(&[7; 32]);
        // The world's load runs this module's `load` too.
        crate::demo::ensure_loaded(&store, &key).await.unwrap();
        let today = local_day(chrono::Utc::now());
        let board = store
            .tier_board(&DataScope::everything(), this_year(today), today)
            .await
            .unwrap();
        assert_eq!(
            board.counts.advanced + board.counts.middle + board.counts.lagging,
            SCORES.len() as i64
        );
        assert!(board.counts.lagging > 0 && board.counts.advanced > 0);
        assert!(board.counts.not_assessed > 0, "some stay to be assessed");
        let first = &board.orgs[0];
        assert_eq!(first.standing, lianxin_domain::tiers::Standing::Lagging);
        let edshx = board
            .orgs
            .iter()
            .find(|o| o.org.code == "JY-BYXL-EDSHX")
            .unwrap();
        assert_eq!((edshx.plans, edshx.overdue_actions), (1, 1));
        assert_eq!(
            store
                .designations(&DataScope::everything(), Some(this_year(today) - 1))
                .await
                .unwrap()
                .len(),
            5
        );
    }
}
