//! The demo's points for the new employment groups (以积分享兑换) in 东胜区, Ordos:
//! the five task types as rules (one with a second version), the district's social
//! work department as the issuer of automatic awards, a catalogue of five items from
//! three organisations, forty riders and couriers with a year of synthetic awards, a
//! few redemptions in past quarters and one correction. All of it is invented and
//! labelled 示例.
//!
//! Everything goes through the store's own calls (rules, issuer, items, restocks, one
//! import of the awards, redemptions, a correction), so the ledger balances and every
//! balance is explained by its history. The `rider` login's person is one of the
//! riders: it has a balance, a history with an award of each kind, a redemption last
//! quarter and a correction, and may redeem today (nothing redeemed this quarter).

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use lianxin_domain::draft::{PersonDraft, RawPerson};
use lianxin_domain::points::{
    quarter_of, Account, Asset, Cap, Multipliers, Period, Quality, RuleDraft, Window,
};
use lianxin_domain::role::DataScope;
use lianxin_server::AppState;
use lianxin_store::audit::Actor;
use lianxin_store::points::{AwardRequest, NewItem};
use lianxin_store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LOADED_MARKER: &str = "demo_points_loaded";
/// Where the riders and couriers are registered: 东胜区.
const DISTRICT: &str = "150602";
/// The issuing organisation: 东胜区委社会工作部.
const ISSUER: &str = "DS-SGB";
const DELIVERY: &str = "DS-WMPS";
const EXPRESS: &str = "DS-KDWL";
const RIDERS: usize = 24;
const COURIERS: usize = 16;
/// Days of synthetic awards before now.
const HISTORY_DAYS: i64 = 365;

/// Loads the points demo once (after the rider gate pass, whose `rider` login it uses).
pub async fn ensure_loaded(state: &AppState) -> Result<()> {
    if state.store.meta_get(LOADED_MARKER).await?.is_some() {
        return Ok(());
    }
    load(state).await?;
    state
        .store
        .meta_set(LOADED_MARKER, &lianxin_store::now_text())
        .await?;
    Ok(())
}

async fn org_id(store: &Store, code: &str) -> Result<i64> {
    Ok(store
        .org_by_code(code)
        .await?
        .with_context(|| format!("the demo organisation {code} is missing"))?
        .id)
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗", "梁", "宋", "郑", "韩", "唐", "冯", "董", "曹", "袁", "邓", "许", "苏",
    "乌", "宝", "包", "白", "巴", "其",
];
const GIVEN: &[&str] = &[
    "志强",
    "海军",
    "建华",
    "晓东",
    "文博",
    "俊杰",
    "浩然",
    "子涵",
    "宇航",
    "鹏飞",
    "春生",
    "立新",
    "红梅",
    "丽娟",
    "晓燕",
    "雅琴",
    "巴特尔",
    "苏和",
    "额尔敦",
    "那日苏",
    "永刚",
    "学军",
    "金龙",
    "国庆",
];

/// A task one person may complete: the rule, how often per week on average, and the
/// organisation whose pool pays it.
struct Habit {
    rule: &'static str,
    per_week: f64,
    org: i64,
}

fn rule(
    code: &str,
    category: &str,
    points: i64,
    cap: Option<(Period, i64)>,
    valid_from: DateTime<Utc>,
) -> RuleDraft {
    RuleDraft {
        code: code.into(),
        category: category.into(),
        points,
        multipliers: Multipliers {
            basic: 100,
            good: 120,
            excellent: 150,
        },
        cap: cap.map(|(period, points)| Cap { period, points }),
        valid_from,
    }
}

fn quality(rng: &mut StdRng) -> Quality {
    match rng.gen_range(0..10) {
        0..=5 => Quality::Basic,
        6..=8 => Quality::Good,
        _ => Quality::Excellent,
    }
}

/// Poisson-ish: the number of completions on one day at `per_week` a week.
fn completions(rng: &mut StdRng, per_week: f64) -> u32 {
    let per_day = per_week / 7.0;
    let mut n = 0;
    let mut p = per_day;
    while p > 0.0 {
        if rng.gen_bool(p.min(1.0)) {
            n += 1;
        }
        p -= 1.0;
    }
    n
}

async fn load(state: &AppState) -> Result<()> {
    let store = &state.store;
    let actor = Actor::system("demo");
    let now = Utc::now();
    let mut rng = StdRng::seed_from_u64(20261201);
    let issuer = org_id(store, ISSUER).await?;
    let delivery = org_id(store, DELIVERY).await?;
    let express = org_id(store, EXPRESS).await?;

    // Rules, in force from before the year of history; 居民好评 was raised three
    // months ago (version 2), so the desk shows a rule's versions.
    let since = now - Duration::days(HISTORY_DAYS + 30);
    for draft in [
        rule(
            "sentinel_report_confirmed",
            "rider",
            20,
            Some((Period::Month, 100)),
            since,
        ),
        rule("good_rating", "rider", 5, Some((Period::Week, 30)), since),
        rule(
            "good_rating",
            "rider",
            8,
            Some((Period::Week, 40)),
            now - Duration::days(90),
        ),
        rule(
            "volunteer_hour",
            "courier",
            10,
            Some((Period::Week, 40)),
            since,
        ),
        rule(
            "training_attended",
            "courier",
            15,
            Some((Period::Month, 30)),
            since,
        ),
        rule(
            "council_attended",
            "courier",
            20,
            Some((Period::Quarter, 60)),
            since,
        ),
    ] {
        store.points_put_rule(&actor, draft).await?;
    }
    store.points_set_issuer(&actor, Some(issuer)).await?;

    // The catalogue: (organisation, name, cost, window, stock).
    let catalogue: [(i64, &str, i64, Window, i64); 5] = [
        (
            delivery,
            "电动车头盔（示例）",
            300,
            Window::WHOLE_QUARTER,
            20,
        ),
        (delivery, "保温箱（示例）", 500, Window::WHOLE_QUARTER, 8),
        (
            express,
            "话费充值卡50元（示例）",
            200,
            Window::WHOLE_QUARTER,
            30,
        ),
        (issuer, "体检套餐（示例）", 800, Window::new(1, 15)?, 5),
        // Out of stock until the desk restocks it.
        (issuer, "理发券（示例）", 50, Window::WHOLE_QUARTER, 0),
    ];
    let mut items = Vec::new();
    for (org, name, cost, window, stock) in catalogue {
        let item = store
            .points_add_item(
                &actor,
                NewItem {
                    org_id: org,
                    name: name.into(),
                    cost,
                    window,
                },
            )
            .await?;
        if stock > 0 {
            store.points_restock(&actor, item.id, stock).await?;
        }
        items.push(item);
    }

    // Forty riders and couriers registered in 东胜区; the `rider` login's person first.
    let all = DataScope::everything();
    let mut people: Vec<(i64, bool, f64)> = Vec::new();
    let rider_login = store
        .account_by_username("rider")
        .await?
        .and_then(|(a, _)| a.person_id);
    if let Some(p) = rider_login {
        people.push((p, true, 0.6));
    }
    let mut used = std::collections::HashSet::new();
    while people.len() < RIDERS + COURIERS {
        let name = format!(
            "{}{}",
            SURNAMES[rng.gen_range(0..SURNAMES.len())],
            GIVEN[rng.gen_range(0..GIVEN.len())]
        );
        if !used.insert(name.clone()) {
            continue;
        }
        let draft = PersonDraft::parse(
            &RawPerson {
                name,
                place_code: DISTRICT.into(),
                ..Default::default()
            },
            &state.pii,
        )?;
        let person = store.create_person(&actor, &all, &draft).await?;
        let is_rider = people.iter().filter(|p| p.1).count() < RIDERS;
        // How keen: from a few completions a month to several a week.
        let keen = rng.gen_range(0.25..1.3);
        people.push((person.id, is_rider, keen));
    }

    // A year of awards, imported in one batch.
    let mut requests = Vec::new();
    for (person, is_rider, keen) in &people {
        let habits: Vec<Habit> = if *is_rider {
            vec![
                Habit {
                    rule: "sentinel_report_confirmed",
                    per_week: 1.0 * keen,
                    org: issuer,
                },
                Habit {
                    rule: "good_rating",
                    per_week: 3.0 * keen,
                    org: delivery,
                },
                Habit {
                    rule: "training_attended",
                    per_week: 0.2 * keen,
                    org: delivery,
                },
                Habit {
                    rule: "volunteer_hour",
                    per_week: 0.5 * keen,
                    org: issuer,
                },
            ]
        } else {
            vec![
                Habit {
                    rule: "volunteer_hour",
                    per_week: 2.5 * keen,
                    org: issuer,
                },
                Habit {
                    rule: "training_attended",
                    per_week: 0.4 * keen,
                    org: express,
                },
                Habit {
                    rule: "council_attended",
                    per_week: 0.3 * keen,
                    org: issuer,
                },
                Habit {
                    rule: "good_rating",
                    per_week: 1.0 * keen,
                    org: express,
                },
            ]
        };
        for day in (1..=HISTORY_DAYS).rev() {
            for h in &habits {
                for n in 0..completions(&mut rng, h.per_week) {
                    // Between 08:00 and 21:00 Shanghai (00:00–13:00 UTC).
                    let at =
                        now - Duration::days(day) + Duration::minutes(rng.gen_range(-300..480));
                    requests.push(AwardRequest {
                        event_ref: format!("demo:{}:{person}:d{day}:{n}", h.rule),
                        person_id: *person,
                        org_id: h.org,
                        rule_code: h.rule.into(),
                        quality: quality(&mut rng),
                        at,
                    });
                }
            }
        }
    }
    if let Some(p) = rider_login {
        // The login's history has one award of each kind in the last weeks.
        for (i, (code, org)) in [
            ("sentinel_report_confirmed", issuer),
            ("good_rating", delivery),
            ("training_attended", delivery),
            ("volunteer_hour", issuer),
            ("council_attended", issuer),
        ]
        .into_iter()
        .enumerate()
        {
            requests.push(AwardRequest {
                event_ref: format!("demo:{code}:{p}:recent{i}"),
                person_id: p,
                org_id: org,
                rule_code: code.into(),
                quality: if i == 0 {
                    Quality::Excellent
                } else {
                    Quality::Good
                },
                at: now - Duration::days(3 + 2 * i as i64) - Duration::hours(2),
            });
        }
    }
    store.points_import_awards(&actor, requests).await?;

    // Redemptions in past quarters (never this one, so the `rider` login may redeem
    // today): the login took a 保温箱 last quarter; a few others took what they could.
    let (year, quarter) = quarter_of(now);
    let last_quarter = (1..=4)
        .map(|k| now - Duration::days(30 * k))
        .find(|t| quarter_of(*t) != (year, quarter))
        .unwrap_or(now - Duration::days(100));
    let earlier = last_quarter - Duration::days(92);
    if let Some(p) = rider_login {
        store
            .points_redeem(&actor, p, items[1].id, last_quarter)
            .await?;
    }
    for (k, (person, _, _)) in people.iter().skip(1).take(8).enumerate() {
        let item = &items[[0, 2, 1][k % 3]];
        let at = if k % 2 == 0 { last_quarter } else { earlier };
        let balance = store
            .points_balance(Account::Person(*person), Asset::Points)
            .await?;
        if balance >= item.cost {
            store.points_redeem(&actor, *person, item.id, at).await?;
        }
    }

    // One correction: an award of the login's reversed — the same hazard reported
    // twice (a correction is a new transfer, never an edit).
    let target = match rider_login {
        Some(p) => Some(p),
        None => people.first().map(|p| p.0),
    };
    if let Some(p) = target {
        let history = store.points_history(p).await?;
        let award = history
            .iter()
            .filter(|t| t.reason == "award" && t.asset == Asset::Points)
            .nth(10)
            .or_else(|| history.iter().find(|t| t.reason == "award"));
        if let Some(t) = award {
            store
                .points_correct(&actor, t.id, "同一隐患被重复上报，撤销重复记分（示例）")
                .await?;
        }
    }
    Ok(())
}
