//! The points ledger under a seeded random simulation: awards and their retries
//! (same content → same outcome, changed content → 409), concurrent redemptions,
//! corrections, restocks, small imports and crashes (the store dropped and opened
//! again on the same database). After every step the ledger's invariants are checked.
//! Plus the contract of each operation, and 1,000 concurrent redemptions of an item
//! with 10 in stock. Every test runs on SQLite, and on PostgreSQL when
//! `LIANXIN_TEST_DATABASE_URL` is set.
//!
//! A failing seed is printed; rerun it alone with `LIANXIN_SIM_SEED=<seed>`.

use chrono::{DateTime, Duration, TimeZone, Utc};
use lianxin_domain::calendar::SHANGHAI;
use lianxin_domain::points::{
    Account, Asset, Cap, Multipliers, Period, Quality, RuleDraft, Window,
};
use lianxin_store::audit::Actor;
use lianxin_store::points::{AwardOutcome, AwardRequest, NewItem};
use lianxin_store::testing::{engines, TempDir, TestStore};
use lianxin_store::{Engine, Store, StoreError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

fn admin() -> Actor {
    Actor::system("test")
}

fn local(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    SHANGHAI
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn code(e: &StoreError) -> String {
    match e {
        StoreError::Invalid(v) => v.code.to_string(),
        StoreError::Conflict { field, .. } => format!("conflict:{field}"),
        other => format!("other:{other}"),
    }
}

/// A database for one test that survives dropping its `Store`.
struct Db {
    url: String,
    _dir: Option<TempDir>,
    _pg: Option<TestStore>,
}

async fn db(engine: Engine) -> Db {
    match engine {
        Engine::Sqlite => {
            let dir = TempDir::new("lianxin-points").unwrap();
            let url = format!("sqlite://{}", dir.0.join("points.db").display());
            Db {
                url,
                _dir: Some(dir),
                _pg: None,
            }
        }
        Engine::Postgres => {
            let t = TestStore::new(engine).await.unwrap();
            Db {
                url: t.url().to_string(),
                _dir: None,
                _pg: Some(t),
            }
        }
    }
}

async fn rules(store: &Store) {
    let from = local(2025, 1, 1, 0);
    for (code, points, cap) in [
        (
            "volunteer_hour",
            10,
            Some(Cap {
                period: Period::Day,
                points: 30,
            }),
        ),
        ("good_rating", 5, None),
        (
            "sentinel_report_confirmed",
            20,
            Some(Cap {
                period: Period::Week,
                points: 50,
            }),
        ),
    ] {
        store
            .points_put_rule(
                &admin(),
                RuleDraft {
                    code: code.into(),
                    category: "rider".into(),
                    points,
                    multipliers: Multipliers::default(),
                    cap,
                    valid_from: from,
                },
            )
            .await
            .unwrap();
    }
}

/// The ledger's invariants, checked against the database.
async fn check(store: &Store, what: &str) {
    let balances = store.points_balances().await.unwrap();
    let replay = store.points_replay_all().await.unwrap();
    for (key, b) in &balances {
        assert_eq!(
            *b,
            replay.get(key).copied().unwrap_or(0),
            "{what}: balance of {key:?} differs from its history"
        );
        if !key.0.may_go_negative() {
            assert!(*b >= 0, "{what}: {key:?} is negative ({b})");
        }
    }
    for (key, r) in &replay {
        assert!(
            balances.contains_key(key) || *r == 0,
            "{what}: {key:?} has history but no balance"
        );
    }
    for t in store.points_totals().await.unwrap() {
        assert_eq!(t.debits, t.credits, "{what}: {t:?}");
        assert_eq!(
            t.balances, 0,
            "{what}: balances of {} do not sum to 0",
            t.asset
        );
    }
    for (p, y, q, n) in store.points_redemption_counts().await.unwrap() {
        assert_eq!(n, 1, "{what}: person {p} redeemed {n} times in {y}Q{q}");
    }
    let (dup, _) = store.points_award_counts().await.unwrap();
    assert_eq!(dup, 0, "{what}: an award id was paid twice");
}

fn same(a: &AwardOutcome, b: &AwardOutcome) -> bool {
    AwardOutcome {
        replayed: false,
        ..a.clone()
    } == AwardOutcome {
        replayed: false,
        ..b.clone()
    }
}

const PERSONS: i64 = 8;
const RULES: [&str; 3] = ["volunteer_hour", "good_rating", "sentinel_report_confirmed"];
const QUALITIES: [Quality; 3] = [Quality::Basic, Quality::Good, Quality::Excellent];

async fn simulate(engine: Engine, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let db = db(engine).await;
    let mut store = Store::open(&db.url).await.unwrap();
    rules(&store).await;
    let mut items = Vec::new();
    for (org, cost, stock) in [(1, 15, 3), (2, 40, 2)] {
        let item = store
            .points_add_item(
                &admin(),
                NewItem {
                    org_id: org,
                    name: format!("item {cost}"),
                    cost,
                    window: Window::WHOLE_QUARTER,
                },
            )
            .await
            .unwrap();
        store
            .points_restock(&admin(), item.id, stock)
            .await
            .unwrap();
        items.push(item.id);
    }
    let mut now = local(2026, 1, 1, 8);
    let mut given: Vec<(AwardRequest, AwardOutcome)> = Vec::new();
    let mut event = 0u64;
    let new_request = |rng: &mut StdRng, event: &mut u64, now| {
        *event += 1;
        AwardRequest {
            event_ref: format!("ev:{seed}:{event}"),
            person_id: rng.gen_range(1..=PERSONS),
            org_id: rng.gen_range(1..=2),
            rule_code: RULES[rng.gen_range(0..RULES.len())].into(),
            quality: QUALITIES[rng.gen_range(0..3)],
            at: now,
        }
    };
    for step in 0..steps {
        now += Duration::minutes(rng.gen_range(0..(36 * 60)));
        let what = format!("{engine:?} seed {seed} step {step}");
        let roll = rng.gen_range(0..100);
        if roll < 40 {
            let r = new_request(&mut rng, &mut event, now);
            let out = store.points_award(&admin(), r.clone()).await.unwrap();
            assert!(!out.replayed && out.points <= out.requested, "{what}");
            given.push((r, out));
        } else if roll < 52 && !given.is_empty() {
            let (r, first) = given[rng.gen_range(0..given.len())].clone();
            let again = store.points_award(&admin(), r).await.unwrap();
            assert!(
                again.replayed && same(&first, &again),
                "{what}: replay differs"
            );
        } else if roll < 57 && !given.is_empty() {
            let (mut r, _) = given[rng.gen_range(0..given.len())].clone();
            r.quality = match r.quality {
                Quality::Basic => Quality::Good,
                _ => Quality::Basic,
            };
            let e = store.points_award(&admin(), r).await.unwrap_err();
            assert_eq!(code(&e), "conflict:award_id", "{what}");
        } else if roll < 72 {
            let n = rng.gen_range(2..=6);
            let mut tasks = Vec::new();
            for _ in 0..n {
                let s = store.clone();
                let person = rng.gen_range(1..=PERSONS);
                let item = items[rng.gen_range(0..items.len())];
                tasks.push(tokio::spawn(async move {
                    s.points_redeem(&admin(), person, item, now).await
                }));
            }
            for t in tasks {
                if let Err(e) = t.await.unwrap() {
                    let c = code(&e);
                    assert!(
                        [
                            "out_of_stock",
                            "insufficient_points",
                            "already_redeemed_this_quarter"
                        ]
                        .contains(&c.as_str()),
                        "{what}: {c}"
                    );
                }
            }
        } else if roll < 82 {
            let person = rng.gen_range(1..=PERSONS);
            let history = store.points_history(person).await.unwrap();
            if !history.is_empty() {
                let t = &history[rng.gen_range(0..history.len())];
                match store
                    .points_correct(&admin(), t.id, "entered by mistake")
                    .await
                {
                    Ok(c) => {
                        assert_eq!((c.debit, c.credit, c.amount), (t.credit, t.debit, t.amount));
                        assert_eq!(c.reverses_id, Some(t.id));
                    }
                    Err(e) => {
                        let c = code(&e);
                        assert!(
                            ["conflict:transfer_id", "insufficient_points"].contains(&c.as_str()),
                            "{what}: {c}"
                        );
                    }
                }
            }
        } else if roll < 87 {
            let item = items[rng.gen_range(0..items.len())];
            store
                .points_restock(&admin(), item, rng.gen_range(1..3))
                .await
                .unwrap();
        } else if roll < 93 {
            // A small import, with a repeat of an earlier award inside.
            let mut batch: Vec<AwardRequest> = (0..rng.gen_range(1..20))
                .map(|_| new_request(&mut rng, &mut event, now))
                .collect();
            if let Some((r, _)) = given.last() {
                batch.push(r.clone());
            }
            let summary = store
                .points_import_awards(&admin(), batch.clone())
                .await
                .unwrap();
            assert_eq!(summary.awarded + summary.replayed, batch.len(), "{what}");
            for r in batch {
                let out = store.points_award(&admin(), r.clone()).await.unwrap();
                assert!(out.replayed, "{what}");
                given.push((r, out));
            }
        } else {
            // A crash: the process goes away and a new one opens the same database.
            drop(store);
            store = Store::open(&db.url).await.unwrap();
        }
        check(&store, &what).await;
    }
    // Caps held: no person keeps more than a cap under a capped rule in one period,
    // counting corrections (a reversal gives room back, its reversal takes it again).
    let keys: HashMap<String, (i64, String, String)> = given
        .iter()
        .filter_map(|(r, out)| {
            let period = match r.rule_code.as_str() {
                "volunteer_hour" => Period::Day,
                "sentinel_report_confirmed" => Period::Week,
                _ => return None,
            };
            Some((
                out.award_id.clone(),
                (r.person_id, r.rule_code.clone(), period.key(r.at)),
            ))
        })
        .collect();
    let mut roots: HashMap<i64, ((i64, String, String), u32)> = HashMap::new();
    let mut per_period: HashMap<(i64, String, String), i64> = HashMap::new();
    for t in store.points_transfers(0, i64::MAX).await.unwrap() {
        let (key, depth) = if let Some(key) = t.award_id.as_ref().and_then(|a| keys.get(a)) {
            (key.clone(), 0)
        } else if let Some((key, d)) = t.reverses_id.and_then(|r| roots.get(&r)) {
            (key.clone(), d + 1)
        } else {
            continue;
        };
        let sign = if depth % 2 == 0 { 1 } else { -1 };
        *per_period.entry(key.clone()).or_default() += sign * t.amount;
        roots.insert(t.id, (key, depth));
    }
    for ((p, rule, key), n) in per_period {
        let cap = if rule == "volunteer_hour" { 30 } else { 50 };
        assert!(
            n <= cap,
            "seed {seed}: person {p} earned {n} under {rule} in {key}"
        );
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ledger_survives_a_random_simulation() {
    let seeds: Vec<u64> = match std::env::var("LIANXIN_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("a numeric seed")],
        Err(_) => (1..=20).collect(),
    };
    let steps = std::env::var("LIANXIN_SIM_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for engine in engines() {
        // PostgreSQL pays a round trip per statement: fewer seeds there by default.
        let seeds = match engine {
            Engine::Postgres if std::env::var("LIANXIN_SIM_SEED").is_err() => &seeds[..6],
            _ => &seeds[..],
        };
        // Seeds run side by side, a few at a time.
        for group in seeds.chunks(4) {
            futures::future::join_all(group.iter().map(|&seed| simulate(engine, seed, steps)))
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_redemptions_never_oversell() {
    for engine in engines() {
        let store = TestStore::new(engine).await.unwrap();
        rules(&store).await;
        let item = store
            .points_add_item(
                &admin(),
                NewItem {
                    org_id: 1,
                    name: "保温杯".into(),
                    cost: 20,
                    window: Window::WHOLE_QUARTER,
                },
            )
            .await
            .unwrap();
        store.points_restock(&admin(), item.id, 10).await.unwrap();
        let at = local(2026, 5, 10, 12);
        let awards: Vec<AwardRequest> = (1..=1000)
            .flat_map(|p| {
                (0..5).map(move |k| AwardRequest {
                    event_ref: format!("rating:{p}:{k}"),
                    person_id: p,
                    org_id: 1,
                    rule_code: "good_rating".into(),
                    quality: Quality::Basic,
                    at,
                })
            })
            .collect();
        store.points_import_awards(&admin(), awards).await.unwrap();
        let tasks: Vec<_> = (1..=1000)
            .map(|p| {
                let s = store.store.clone();
                let id = item.id;
                tokio::spawn(async move { s.points_redeem(&admin(), p, id, at).await })
            })
            .collect();
        let (mut ok, mut out) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert_eq!(code(&e), "out_of_stock");
                    out += 1;
                }
            }
        }
        assert_eq!((ok, out), (10, 990), "{engine:?}");
        assert_eq!(store.points_item(item.id).await.unwrap().stock, 0);
        assert_eq!(
            store
                .points_balance(Account::Sink, Asset::Points)
                .await
                .unwrap(),
            200
        );
        check(&store, &format!("{engine:?} after 1,000 redemptions")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awards_follow_rules_caps_and_versions() {
    for engine in engines() {
        let store = TestStore::new(engine).await.unwrap();
        rules(&store).await;
        let at = local(2026, 3, 2, 9);
        let req = |ev: &str, q: Quality, at| AwardRequest {
            event_ref: ev.into(),
            person_id: 7,
            org_id: 1,
            rule_code: "volunteer_hour".into(),
            quality: q,
            at,
        };
        // 15 + 15 reach the day cap of 30; the third gets nothing, the next day again.
        let a = store
            .points_award(&admin(), req("v1", Quality::Excellent, at))
            .await
            .unwrap();
        assert_eq!((a.requested, a.points), (15, 15));
        let b = store
            .points_award(&admin(), req("v2", Quality::Good, at))
            .await
            .unwrap();
        assert_eq!((b.requested, b.points), (12, 12));
        let c = store
            .points_award(&admin(), req("v3", Quality::Basic, at))
            .await
            .unwrap();
        assert_eq!(
            (c.requested, c.points, c.transfer_id),
            (10, 3, c.transfer_id)
        );
        let d = store
            .points_award(&admin(), req("v4", Quality::Basic, at))
            .await
            .unwrap();
        assert_eq!((d.points, d.transfer_id), (0, None));
        let e = store
            .points_award(&admin(), req("v5", Quality::Basic, at + Duration::days(1)))
            .await
            .unwrap();
        assert_eq!(e.points, 10);
        // A new version applies from its start; earlier events keep the old one.
        store
            .points_put_rule(
                &admin(),
                RuleDraft {
                    code: "good_rating".into(),
                    category: "rider".into(),
                    points: 8,
                    multipliers: Multipliers::default(),
                    cap: None,
                    valid_from: local(2026, 4, 1, 0),
                },
            )
            .await
            .unwrap();
        let rating = |ev: &str, at| AwardRequest {
            rule_code: "good_rating".into(),
            ..req(ev, Quality::Basic, at)
        };
        let old = store
            .points_award(&admin(), rating("r1", at))
            .await
            .unwrap();
        let new = store
            .points_award(&admin(), rating("r2", local(2026, 4, 1, 0)))
            .await
            .unwrap();
        assert_eq!((old.rule_version, old.points), (1, 5));
        assert_eq!((new.rule_version, new.points), (2, 8));
        // Idempotency.
        let again = store
            .points_award(&admin(), rating("r1", at))
            .await
            .unwrap();
        assert!(again.replayed && same(&old, &again));
        let changed = store
            .points_award(&admin(), rating("r1", at + Duration::hours(1)))
            .await
            .unwrap_err();
        assert_eq!(code(&changed), "conflict:award_id");
        let unknown = store
            .points_award(
                &admin(),
                AwardRequest {
                    rule_code: "no_such_rule".into(),
                    ..req("x", Quality::Basic, at)
                },
            )
            .await
            .unwrap_err();
        assert_eq!(code(&unknown), "unknown_rule");
        // Balance and history explain each other.
        let balance = store
            .points_balance(Account::Person(7), Asset::Points)
            .await
            .unwrap();
        assert_eq!(balance, 15 + 12 + 3 + 10 + 5 + 8);
        let history = store.points_history(7).await.unwrap();
        assert_eq!(history.len(), 6);
        assert!(history
            .iter()
            .all(|t| t.reason == "award" && t.refs["event"].is_string()));
        assert_eq!(
            store
                .points_replay_balance(Account::Person(7), Asset::Points)
                .await
                .unwrap(),
            balance
        );
        // A correction reverses, and gives back room under the cap.
        let fix = store
            .points_correct(&admin(), a.transfer_id.unwrap(), "double entry")
            .await
            .unwrap();
        assert_eq!(fix.reverses_id, a.transfer_id);
        let again = store
            .points_correct(&admin(), a.transfer_id.unwrap(), "twice")
            .await
            .unwrap_err();
        assert_eq!(code(&again), "conflict:transfer_id");
        let f = store
            .points_award(&admin(), req("v6", Quality::Basic, at))
            .await
            .unwrap();
        assert_eq!(f.points, 10);
        check(&store, "awards").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redemptions_refuse_in_their_own_words() {
    for engine in engines() {
        let store = TestStore::new(engine).await.unwrap();
        rules(&store).await;
        let item = store
            .points_add_item(
                &admin(),
                NewItem {
                    org_id: 1,
                    name: "雨衣".into(),
                    cost: 12,
                    // The last 17 days of each quarter.
                    window: Window::new(76, 92).unwrap(),
                },
            )
            .await
            .unwrap();
        let in_window = local(2026, 3, 20, 10);
        let award = |p: i64, ev: &str| AwardRequest {
            event_ref: ev.into(),
            person_id: p,
            org_id: 1,
            rule_code: "good_rating".into(),
            quality: Quality::Basic,
            at: in_window,
        };
        for ev in ["a", "b", "c"] {
            store.points_award(&admin(), award(1, ev)).await.unwrap();
        }
        let actor = admin();
        let redeem = |p, at| store.points_redeem(&actor, p, item.id, at);
        assert_eq!(
            code(&redeem(1, in_window).await.unwrap_err()),
            "out_of_stock"
        );
        store.points_restock(&admin(), item.id, 2).await.unwrap();
        assert_eq!(
            code(&redeem(1, local(2026, 3, 1, 10)).await.unwrap_err()),
            "outside_window"
        );
        assert_eq!(
            code(&redeem(2, in_window).await.unwrap_err()),
            "insufficient_points"
        );
        let r = redeem(1, in_window).await.unwrap();
        assert_eq!((r.year, r.quarter, r.cost), (2026, 1, 12));
        assert_eq!(
            code(&redeem(1, local(2026, 3, 30, 10)).await.unwrap_err()),
            "already_redeemed_this_quarter"
        );
        assert_eq!(store.points_item(item.id).await.unwrap().stock, 1);
        assert_eq!(
            store
                .points_balance(Account::Person(1), Asset::Points)
                .await
                .unwrap(),
            3
        );
        assert_eq!(
            store
                .points_balance(Account::Person(1), Asset::Item(item.id))
                .await
                .unwrap(),
            1
        );
        // Refusals left nothing behind: no redemption row for person 2.
        assert_eq!(store.points_redemption_counts().await.unwrap().len(), 1);
        check(&store, "redemptions").await;
    }
}

/// A random request for the batch oracle: few events, persons and days, so repeats,
/// conflicts (same event, person and rule with other content) and caps are common,
/// plus a rule that does not exist.
fn random_request(rng: &mut StdRng) -> AwardRequest {
    let rules = [
        "volunteer_hour",
        "good_rating",
        "sentinel_report_confirmed",
        "no_such_rule",
    ];
    AwardRequest {
        event_ref: format!("e{}", rng.gen_range(0..12)),
        person_id: rng.gen_range(1..=3),
        org_id: rng.gen_range(1..=2),
        rule_code: rules[rng.gen_range(0..rules.len())].into(),
        quality: QUALITIES[rng.gen_range(0..QUALITIES.len())],
        at: local(2026, 3, rng.gen_range(2..=4), 9),
    }
}

/// `points_award_batch` (concurrent single awards gathered into one transaction) gives
/// each request exactly what `points_award` one after another gives it: the same
/// outcome, replay flag, refusal and transfer, and the same ledger after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_awards_equal_awards_one_by_one() {
    for engine in engines() {
        for seed in 0..8u64 {
            let (one_db, batch_db) = (db(engine).await, db(engine).await);
            let one = Store::open(&one_db.url).await.unwrap();
            let batched = Store::open(&batch_db.url).await.unwrap();
            rules(&one).await;
            rules(&batched).await;
            let mut rng = StdRng::seed_from_u64(seed);
            for round in 0..6 {
                let n = rng.gen_range(1..40);
                let requests: Vec<AwardRequest> =
                    (0..n).map(|_| random_request(&mut rng)).collect();
                let mut expected = Vec::new();
                for r in &requests {
                    expected.push(one.points_award(&admin(), r.clone()).await);
                }
                let got = batched
                    .points_award_batch(&admin(), requests.clone())
                    .await
                    .unwrap();
                assert_eq!(got.len(), expected.len());
                for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
                    let what = format!(
                        "{engine:?} seed {seed} round {round} request {i}: {:?}",
                        requests[i]
                    );
                    match (e, g) {
                        (Ok(e), Ok(g)) => assert_eq!(e, g, "{what}"),
                        (Err(e), Err(g)) => assert_eq!(code(e), code(g), "{what}"),
                        _ => panic!("{what}: one by one {e:?}, batched {g:?}"),
                    }
                }
                check(&batched, &format!("seed {seed} round {round}")).await;
                assert_eq!(
                    one.points_balances().await.unwrap(),
                    batched.points_balances().await.unwrap(),
                    "seed {seed} round {round}: the ledgers differ"
                );
            }
        }
    }
}
