//! The storage contract of organisation tiers (抓两头带中间): indicators and the tier
//! board, indicator imports, improvement plans with actions, designations. Every test
//! runs on SQLite, and on PostgreSQL when `LIANXIN_TEST_DATABASE_URL` is set.

use chrono::NaiveDate;
use lianxin_domain::draft::*;
use lianxin_domain::role::DataScope;
use lianxin_domain::tiers::{parse_indicator_csv, ActionStatus, Indicator, Standing};
use lianxin_store::audit::{Actor, Verification};
use lianxin_store::{Engine, Store, StoreError};

macro_rules! on_every_engine {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                for engine in lianxin_store::testing::engines() {
                    let store = lianxin_store::testing::TestStore::new(engine).await.expect("test store");
                    super::$name(&store, engine).await;
                }
            }
        )*
    };
}

mod run {
    on_every_engine!(
        tiers_are_computed_with_their_evidence,
        scope_hides_other_organisations,
        indicator_imports_apply_whole_or_not_at_all,
        plans_track_actions_and_what_is_overdue,
        designations_are_unique_per_title_and_year,
    );
}

fn admin() -> Actor {
    Actor::system("test")
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// The day the tests look from: mid-2026.
fn today() -> NaiveDate {
    day("2026-06-10")
}

fn scope_of(path: &str) -> DataScope {
    DataScope {
        place_path: Some(path.into()),
        org_path: None,
    }
}

const KY: &str = "/150000/150200/150207/150207.BYXL/150207.BYXL.KY/";
const HY: &str = "/150000/150200/150207/150207.BYXL/150207.BYXL.HY/";

/// 九原区 with one street and two communities; a district committee, a street
/// working committee, a branch in each community, and a property company.
async fn seed(store: &Store) {
    let all = DataScope::everything();
    for (code, name, level, parent) in [
        ("150000", "内蒙古自治区", "region", None),
        ("150200", "包头市", "city", Some("150000")),
        ("150207", "九原区", "county", Some("150200")),
        ("150207.BYXL", "白音席勒街道", "town", Some("150207")),
        ("150207.BYXL.KY", "开元社区", "village", Some("150207.BYXL")),
        ("150207.BYXL.HY", "和谐社区", "village", Some("150207.BYXL")),
    ] {
        let d = PlaceDraft::parse(&RawPlace {
            code: code.into(),
            name: name.into(),
            level: level.into(),
            parent_code: parent.map(Into::into),
            lat: None,
            lon: None,
        })
        .unwrap();
        store.create_place(&admin(), &all, &d).await.unwrap();
    }
    for (code, name, kind, parent, serves) in [
        ("JY-QW", "九原区委", "party_committee", None, "150207"),
        (
            "BYXL-DGW",
            "白音席勒街道党工委",
            "party_committee",
            Some("JY-QW"),
            "150207.BYXL",
        ),
        (
            "KY-ZB",
            "开元社区党支部",
            "branch",
            Some("BYXL-DGW"),
            "150207.BYXL.KY",
        ),
        (
            "HY-ZB",
            "和谐社区党支部",
            "branch",
            Some("BYXL-DGW"),
            "150207.BYXL.HY",
        ),
        (
            "KY-WY",
            "开元物业",
            "property_company",
            None,
            "150207.BYXL.KY",
        ),
    ] {
        let d = OrgDraft::parse(&RawOrg {
            code: code.into(),
            name: name.into(),
            kind: kind.into(),
            parent_code: parent.map(Into::into),
            serves: vec![serves.into()],
        })
        .unwrap();
        store.create_org(&admin(), &all, &d).await.unwrap();
    }
}

async fn org_id(store: &Store, code: &str) -> i64 {
    store.org_by_code(code).await.unwrap().unwrap().id
}

fn ind(name: &str, value: f64, note: &str) -> Indicator {
    Indicator::parse(name, value, note).unwrap()
}

fn invalid_field(e: StoreError) -> (String, &'static str) {
    match e {
        StoreError::Invalid(v) => (v.field, v.code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn tiers_are_computed_with_their_evidence(store: &Store, _: Engine) {
    seed(store).await;
    let all = DataScope::everything();
    let (ky, hy, street, district, wy) = (
        org_id(store, "KY-ZB").await,
        org_id(store, "HY-ZB").await,
        org_id(store, "BYXL-DGW").await,
        org_id(store, "JY-QW").await,
        org_id(store, "KY-WY").await,
    );
    let t = store.tier_thresholds().await.unwrap();
    assert_eq!(
        (t.advanced, t.lagging),
        (80.0, 60.0),
        "the migration's defaults"
    );

    // 开元: (90 + 70 + 80) / 3 = 80 — exactly the advanced threshold, so advanced.
    let got = store
        .set_indicators(
            &admin(),
            &all,
            ky,
            2026,
            &[
                ind("组织生活", 90.0, "三会一课记录齐全，12次"),
                ind("党员教育", 70.0, "集中学习10次，缺2次"),
                ind("服务群众", 80.0, "办结群众诉求40件"),
            ],
            today(),
        )
        .await
        .unwrap();
    assert_eq!(got.standing, Standing::Advanced);
    let f = got.finding.as_ref().unwrap();
    assert!((f.score - 80.0).abs() < 1e-9);
    assert_eq!(f.evidence.len(), 3);
    // 和谐: (50 + 65) / 2 = 57.5 < 60, lagging.
    store
        .set_indicators(
            &admin(),
            &all,
            hy,
            2026,
            &[
                ind("组织生活", 50.0, "全年仅开支委会4次"),
                ind("阵地建设", 65.0, "活动室未挂牌"),
            ],
            today(),
        )
        .await
        .unwrap();
    // 街道党工委: (70 + 75) / 2 = 72.5, middle.
    store
        .set_indicators(
            &admin(),
            &all,
            street,
            2026,
            &[
                ind("组织生活", 70.0, "记录基本齐全"),
                ind("作用发挥", 75.0, "牵头共建项目3个"),
            ],
            today(),
        )
        .await
        .unwrap();

    let board = store.tier_board(&all, 2026, today()).await.unwrap();
    let order: Vec<(&str, Standing)> = board
        .orgs
        .iter()
        .map(|o| (o.org.code.as_str(), o.standing))
        .collect();
    // Lagging first, then middle, advanced; the district committee has no
    // indicators and comes last; the property company is not a party organisation.
    assert_eq!(
        order,
        [
            ("HY-ZB", Standing::Lagging),
            ("BYXL-DGW", Standing::Middle),
            ("KY-ZB", Standing::Advanced),
            ("JY-QW", Standing::NotAssessed),
        ]
    );
    assert_eq!(
        (
            board.counts.lagging,
            board.counts.middle,
            board.counts.advanced,
            board.counts.not_assessed
        ),
        (1, 1, 1, 1)
    );
    let hy_row = &board.orgs[0];
    assert!((hy_row.finding.as_ref().unwrap().score - 57.5).abs() < 1e-9);
    // The evidence travels with the tier, in the order it was given.
    assert_eq!(
        hy_row
            .indicators
            .iter()
            .map(|i| (i.name.as_str(), i.value, i.note.as_str()))
            .collect::<Vec<_>>(),
        [
            ("组织生活", 50.0, "全年仅开支委会4次"),
            ("阵地建设", 65.0, "活动室未挂牌")
        ]
    );
    assert!(board.orgs[3].finding.is_none() && board.orgs[3].indicators.is_empty());
    assert_eq!(board.orgs[3].org.id, district);
    // Another year has its own indicators: nothing assessed in 2025.
    let last_year = store.tier_board(&all, 2025, today()).await.unwrap();
    assert_eq!(last_year.counts.not_assessed, 4);

    // Setting a year's indicators replaces the set.
    let again = store
        .set_indicators(
            &admin(),
            &all,
            ky,
            2026,
            &[ind("组织生活", 60.0, "复核后下调")],
            today(),
        )
        .await
        .unwrap();
    assert_eq!(again.standing, Standing::Middle);
    assert_eq!(again.indicators.len(), 1);
    let detail = store.org_tier(&all, ky, 2026, today()).await.unwrap();
    assert_eq!(detail.tier.indicators.len(), 1);
    assert_eq!(detail.tier.indicators[0].note, "复核后下调");

    // Refusals: not a party organisation, a year out of range, an unknown org.
    let e = store
        .set_indicators(&admin(), &all, wy, 2026, &[ind("x", 1.0, "n")], today())
        .await
        .unwrap_err();
    assert_eq!(invalid_field(e), ("org_id".into(), "not_party_org"));
    let e = store
        .set_indicators(&admin(), &all, ky, 1999, &[ind("x", 1.0, "n")], today())
        .await
        .unwrap_err();
    assert_eq!(invalid_field(e).0, "year");
    let e = store
        .set_indicators(&admin(), &all, 9999, 2026, &[ind("x", 1.0, "n")], today())
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound { .. }), "{e:?}");
    let e = store
        .set_indicators(&admin(), &all, ky, 2026, &[], today())
        .await
        .unwrap_err();
    assert_eq!(invalid_field(e).0, "indicators");
    assert!(matches!(
        store.org_tier(&all, wy, 2026, today()).await,
        Err(StoreError::Invalid(_))
    ));

    // Every change is on the audit trail, and the chain holds.
    let entries = store.audit_entries(0, 1000).await.unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.entity == "org_indicators")
            .count(),
        4
    );
    assert!(matches!(
        store.audit_verify().await.unwrap(),
        Verification::Intact { .. }
    ));
}

async fn scope_hides_other_organisations(store: &Store, _: Engine) {
    seed(store).await;
    let all = DataScope::everything();
    let (ky, hy) = (org_id(store, "KY-ZB").await, org_id(store, "HY-ZB").await);
    for id in [ky, hy] {
        store
            .set_indicators(
                &admin(),
                &all,
                id,
                2026,
                &[ind("组织生活", 85.0, "n")],
                today(),
            )
            .await
            .unwrap();
    }
    let ky_scope = scope_of(KY);
    let board = store.tier_board(&ky_scope, 2026, today()).await.unwrap();
    assert_eq!(
        board
            .orgs
            .iter()
            .map(|o| o.org.code.as_str())
            .collect::<Vec<_>>(),
        ["KY-ZB"]
    );
    // Outside the scope is not found, for reads and writes alike.
    assert!(matches!(
        store.org_tier(&ky_scope, hy, 2026, today()).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .set_indicators(
                &admin(),
                &ky_scope,
                hy,
                2026,
                &[ind("x", 1.0, "n")],
                today()
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .award_designation(&admin(), &ky_scope, hy, "模范支部", 2025)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .create_plan(&admin(), &ky_scope, hy, 2026, "整改")
            .await,
        Err(StoreError::NotFound { .. })
    ));
    // The street's scope holds both branches and the street committee.
    let street = store
        .tier_board(
            &scope_of("/150000/150200/150207/150207.BYXL/"),
            2026,
            today(),
        )
        .await
        .unwrap();
    assert_eq!(street.orgs.len(), 3);
}

async fn indicator_imports_apply_whole_or_not_at_all(store: &Store, _: Engine) {
    seed(store).await;
    let all = DataScope::everything();
    let ky = org_id(store, "KY-ZB").await;
    store
        .set_indicators(
            &admin(),
            &all,
            ky,
            2026,
            &[ind("旧指标", 10.0, "旧")],
            today(),
        )
        .await
        .unwrap();
    let audit_before = store.audit_count().await.unwrap();

    // Row 4 names an organisation that does not exist: nothing is written.
    let bad = "org_code,year,name,value,note\n\
               KY-ZB,2026,组织生活,90,记录齐全\n\
               HY-ZB,2026,组织生活,40,缺会\n\
               NOPE,2026,组织生活,40,缺会\n";
    let rows = parse_indicator_csv(bad).unwrap();
    let e = store
        .import_indicators(&admin(), &all, &rows, |_| {})
        .await
        .unwrap_err();
    assert_eq!(e.row, 4);
    assert!(
        matches!(&e.error, StoreError::Invalid(v) if v.field == "org_code" && v.code == "unknown_org"),
        "{e:?}"
    );
    // A property company cannot be tiered: refused at its row.
    let rows = parse_indicator_csv(
        "org_code,year,name,value,note\nKY-ZB,2026,a,90,n\nKY-WY,2026,a,90,n\n",
    )
    .unwrap();
    let e = store
        .import_indicators(&admin(), &all, &rows, |_| {})
        .await
        .unwrap_err();
    assert_eq!(e.row, 3);
    // A scoped importer cannot reach other communities' organisations.
    let rows = parse_indicator_csv("org_code,year,name,value,note\nHY-ZB,2026,a,90,n\n").unwrap();
    let e = store
        .import_indicators(&admin(), &scope_of(KY), &rows, |_| {})
        .await
        .unwrap_err();
    assert_eq!(e.row, 2);
    let board = store.tier_board(&all, 2026, today()).await.unwrap();
    let ky_row = board.orgs.iter().find(|o| o.org.id == ky).unwrap();
    assert_eq!(
        ky_row.indicators[0].name, "旧指标",
        "the old set is untouched"
    );
    assert_eq!(store.audit_count().await.unwrap(), audit_before);

    // A good file replaces each (organisation, year) it names, in file order.
    let good = "org_code,year,name,value,note\n\
                KY-ZB,2026,组织生活,90,记录齐全\n\
                HY-ZB,2026,组织生活,40,缺会\n\
                KY-ZB,2026,服务群众,80,\"办结40件, 满意率95%\"\n";
    let rows = parse_indicator_csv(good).unwrap();
    let mut seen = 0;
    let n = store
        .import_indicators(&admin(), &all, &rows, |i| seen = i)
        .await
        .unwrap();
    assert_eq!((n, seen), (3, 3));
    let board = store.tier_board(&all, 2026, today()).await.unwrap();
    let ky_row = board.orgs.iter().find(|o| o.org.id == ky).unwrap();
    assert_eq!(
        ky_row
            .indicators
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>(),
        ["组织生活", "服务群众"]
    );
    assert_eq!(ky_row.indicators[1].note, "办结40件, 满意率95%");
    assert!((ky_row.finding.as_ref().unwrap().score - 85.0).abs() < 1e-9);
    assert_eq!(board.orgs[0].org.code, "HY-ZB");
    assert_eq!(board.orgs[0].standing, Standing::Lagging);
    // One audit entry per (organisation, year) replaced.
    assert_eq!(store.audit_count().await.unwrap(), audit_before + 2);
}

async fn plans_track_actions_and_what_is_overdue(store: &Store, _: Engine) {
    seed(store).await;
    let all = DataScope::everything();
    let (ky, hy) = (org_id(store, "KY-ZB").await, org_id(store, "HY-ZB").await);
    let plan = store
        .create_plan(&admin(), &all, hy, 2026, "和谐社区党支部整顿提升方案")
        .await
        .unwrap();
    assert_eq!((plan.org_id, plan.year), (hy, 2026));
    let early = store
        .add_plan_action(
            &admin(),
            &all,
            plan.id,
            "配齐支部委员",
            day("2026-03-01"),
            today(),
        )
        .await
        .unwrap();
    assert_eq!(early.status, ActionStatus::Overdue);
    let due_today = store
        .add_plan_action(&admin(), &all, plan.id, "规范三会一课", today(), today())
        .await
        .unwrap();
    assert_eq!(
        due_today.status,
        ActionStatus::Open,
        "due today is not late yet"
    );
    store
        .add_plan_action(
            &admin(),
            &all,
            plan.id,
            "活动阵地挂牌",
            day("2026-09-01"),
            today(),
        )
        .await
        .unwrap();
    let board = store.tier_board(&all, 2026, today()).await.unwrap();
    let row = board.orgs.iter().find(|o| o.org.id == hy).unwrap();
    assert_eq!((row.plans, row.overdue_actions), (1, 1));
    // The same plan seen a day later: today's action is overdue too.
    let later = store.plan(&all, plan.id, day("2026-06-11")).await.unwrap();
    assert_eq!(
        later
            .actions
            .iter()
            .filter(|a| a.status == ActionStatus::Overdue)
            .count(),
        2
    );

    // Marking done: with a note, not in the future, once.
    let done = store
        .complete_action(
            &admin(),
            &all,
            early.id,
            day("2026-06-09"),
            "补选委员2名",
            today(),
        )
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.done_on, done.note.as_str()),
        (ActionStatus::Done, Some(day("2026-06-09")), "补选委员2名")
    );
    let e = store
        .complete_action(&admin(), &all, early.id, today(), "again", today())
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e:?}");
    let e = store
        .complete_action(
            &admin(),
            &all,
            due_today.id,
            day("2026-06-11"),
            "n",
            today(),
        )
        .await
        .unwrap_err();
    assert_eq!(invalid_field(e), ("done_on".into(), "in_future"));
    let e = store
        .complete_action(&admin(), &all, due_today.id, today(), " ", today())
        .await
        .unwrap_err();
    assert_eq!(invalid_field(e).0, "note");
    let board = store.tier_board(&all, 2026, today()).await.unwrap();
    let row = board.orgs.iter().find(|o| o.org.id == hy).unwrap();
    assert_eq!(row.overdue_actions, 0);

    // Someone scoped to 开元 cannot touch 和谐's plan or its actions.
    let ky_scope = scope_of(KY);
    assert!(matches!(
        store
            .add_plan_action(&admin(), &ky_scope, plan.id, "x", today(), today())
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .complete_action(&admin(), &ky_scope, due_today.id, today(), "n", today())
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.plan(&ky_scope, plan.id, today()).await,
        Err(StoreError::NotFound { .. })
    ));
    // But sees its own.
    let own = store
        .create_plan(&admin(), &ky_scope, ky, 2026, "巩固提升")
        .await
        .unwrap();
    let detail = store.org_tier(&ky_scope, ky, 2026, today()).await.unwrap();
    assert_eq!(detail.plans.len(), 1);
    assert_eq!(detail.plans[0].id, own.id);
    let detail = store.org_tier(&all, hy, 2026, today()).await.unwrap();
    assert_eq!(detail.plans[0].actions.len(), 3);
    let e = store
        .create_plan(&admin(), &all, hy, 2026, "")
        .await
        .unwrap_err();
    assert_eq!(invalid_field(e).0, "title");
}

async fn designations_are_unique_per_title_and_year(store: &Store, _: Engine) {
    seed(store).await;
    let all = DataScope::everything();
    let (ky, hy, wy) = (
        org_id(store, "KY-ZB").await,
        org_id(store, "HY-ZB").await,
        org_id(store, "KY-WY").await,
    );
    let d = store
        .award_designation(&admin(), &all, ky, "模范支部", 2025)
        .await
        .unwrap();
    assert_eq!((d.org_code.as_str(), d.year), ("KY-ZB", 2025));
    let e = store
        .award_designation(&admin(), &all, ky, " 模范支部 ", 2025)
        .await
        .unwrap_err();
    match e {
        StoreError::Conflict { field, message } => {
            assert_eq!(field, "title");
            assert!(
                message.contains("模范支部") && message.contains("2025"),
                "{message}"
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    store
        .award_designation(&admin(), &all, ky, "模范支部", 2026)
        .await
        .unwrap();
    store
        .award_designation(&admin(), &all, ky, "五星级党支部", 2025)
        .await
        .unwrap();
    store
        .award_designation(&admin(), &all, hy, "模范支部", 2025)
        .await
        .unwrap();
    let e = store
        .award_designation(&admin(), &all, wy, "模范支部", 2025)
        .await
        .unwrap_err();
    assert_eq!(invalid_field(e).1, "not_party_org");
    assert_eq!(store.designations(&all, Some(2025)).await.unwrap().len(), 3);
    assert_eq!(store.designations(&all, None).await.unwrap().len(), 4);
    assert_eq!(
        store
            .designations(&scope_of(HY), Some(2025))
            .await
            .unwrap()
            .iter()
            .map(|d| d.org_code.as_str())
            .collect::<Vec<_>>(),
        ["HY-ZB"]
    );
    let board = store.tier_board(&all, 2025, today()).await.unwrap();
    let row = board.orgs.iter().find(|o| o.org.id == ky).unwrap();
    assert_eq!(row.designations, ["五星级党支部", "模范支部"]);
}
