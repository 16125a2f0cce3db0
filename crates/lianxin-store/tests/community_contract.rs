//! The storage contract of grids, households, 双进 registrations, needs and coverage
//! (`lianxin_store::grids`): every test runs on every engine this machine offers
//! (SQLite always, PostgreSQL when `LIANXIN_TEST_DATABASE_URL` is set).

use chrono::NaiveDate;
use lianxin_domain::community::{NeedStatus, Quarter, RegistrationKind};
use lianxin_domain::contact::{coverage, Coverage, VisitKind};
use lianxin_domain::draft::*;
use lianxin_domain::pii::PiiKey;
use lianxin_domain::role::DataScope;
use lianxin_store::audit::{Actor, Verification};
use lianxin_store::contact::NewVisit;
use lianxin_store::grids::{HouseholdRow, NewNeed, NewRegistration};
use lianxin_store::{Engine, Store, StoreError};
use std::collections::BTreeMap;

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
        households_sit_in_one_grid_at_a_time,
        household_imports_apply_whole_or_not_at_all,
        coverage_matches_the_hand_computed_fixture,
        members_register_with_one_community_at_a_time,
        needs_are_claimed_by_registered_members_and_reported,
    );
}

fn actor() -> Actor {
    Actor::system("test")
}

fn all() -> DataScope {
    DataScope::everything()
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn code_of(e: StoreError) -> (&'static str, String) {
    match e {
        StoreError::Invalid(v) => (v.code, v.field),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// 开元社区 with grids G1 (building B1: H1–H4, H8) and G2 (building B2: H5–H7), and
/// 和谐社区 with grid G3 and one household (H9).
async fn seed(store: &Store) {
    let mut places = vec![
        ("150000", "内蒙古自治区", "region", None),
        ("150200", "包头市", "city", Some("150000")),
        ("150207", "九原区", "county", Some("150200")),
        ("150207.BYXL", "白音席勒街道", "town", Some("150207")),
        ("150207.BYXL.KY", "开元社区", "village", Some("150207.BYXL")),
        ("150207.BYXL.HX", "和谐社区", "village", Some("150207.BYXL")),
        (
            "150207.BYXL.KY.G1",
            "第一网格",
            "grid",
            Some("150207.BYXL.KY"),
        ),
        (
            "150207.BYXL.KY.G2",
            "第二网格",
            "grid",
            Some("150207.BYXL.KY"),
        ),
        (
            "150207.BYXL.HX.G3",
            "和谐网格",
            "grid",
            Some("150207.BYXL.HX"),
        ),
        (
            "150207.BYXL.KY.G1.B1",
            "1号楼",
            "building",
            Some("150207.BYXL.KY.G1"),
        ),
        (
            "150207.BYXL.KY.G2.B2",
            "2号楼",
            "building",
            Some("150207.BYXL.KY.G2"),
        ),
        (
            "150207.BYXL.HX.G3.B9",
            "9号楼",
            "building",
            Some("150207.BYXL.HX.G3"),
        ),
    ];
    let households: Vec<(String, String)> = (1..=8)
        .map(|i| {
            let b = if (5..=7).contains(&i) {
                "G2.B2"
            } else {
                "G1.B1"
            };
            (
                format!("150207.BYXL.KY.{b}.H{i}"),
                format!("150207.BYXL.KY.{b}"),
            )
        })
        .chain([(
            "150207.BYXL.HX.G3.B9.H9".to_string(),
            "150207.BYXL.HX.G3.B9".to_string(),
        )])
        .collect();
    for (code, parent) in &households {
        places.push((code.as_str(), "户", "household", Some(parent.as_str())));
    }
    let drafts: Vec<PlaceDraft> = places
        .iter()
        .map(|(code, name, level, parent)| {
            PlaceDraft::parse(&RawPlace {
                code: code.to_string(),
                name: name.to_string(),
                level: level.to_string(),
                parent_code: parent.map(Into::into),
                lat: None,
                lon: None,
            })
            .unwrap()
        })
        .collect();
    store
        .import_places(&actor(), &drafts, |_| {})
        .await
        .unwrap();
}

fn hh(i: u32) -> String {
    match i {
        5..=7 => format!("150207.BYXL.KY.G2.B2.H{i}"),
        9 => "150207.BYXL.HX.G3.B9.H9".into(),
        _ => format!("150207.BYXL.KY.G1.B1.H{i}"),
    }
}

fn row(household: &str, grid: &str, from: &str) -> HouseholdRow {
    HouseholdRow {
        household_code: household.into(),
        grid_code: grid.into(),
        valid_from: d(from),
    }
}

const G1: &str = "150207.BYXL.KY.G1";
const G2: &str = "150207.BYXL.KY.G2";
const G3: &str = "150207.BYXL.HX.G3";

fn ky_scope() -> DataScope {
    DataScope {
        place_path: Some("/150000/150200/150207/150207.BYXL/150207.BYXL.KY/".into()),
        org_path: None,
    }
}

async fn person(store: &Store, name: &str, place: &str, party: bool) -> i64 {
    let key = PiiKey::from_master(&[5; 32]);
    let d = PersonDraft::parse(
        &RawPerson {
            name: name.into(),
            party_member: Some(party),
            place_code: place.into(),
            ..Default::default()
        },
        &key,
    )
    .unwrap();
    store.create_person(&actor(), &all(), &d).await.unwrap().id
}

async fn org(store: &Store, code: &str, name: &str, kind: &str) -> i64 {
    let d = OrgDraft::parse(&RawOrg {
        code: code.into(),
        name: name.into(),
        kind: kind.into(),
        parent_code: None,
        serves: vec![],
    })
    .unwrap();
    store.create_org(&actor(), &all(), &d).await.unwrap().id
}

async fn households_sit_in_one_grid_at_a_time(store: &Store, _: Engine) {
    seed(store).await;
    let a = store
        .assign_household(&actor(), &all(), &row(&hh(1), G1, "2025-01-01"))
        .await
        .unwrap();
    assert_eq!((a.grid_code.as_str(), a.valid_to), (G1, None));
    // The same household in a second grid over shared days: refused, named.
    let e = store
        .assign_household(&actor(), &all(), &row(&hh(1), G2, "2025-06-01"))
        .await
        .unwrap_err();
    assert_eq!(code_of(e), ("household_in_two_grids", "grid_code".into()));
    // Twice in the same grid would count it twice.
    let e = store
        .assign_household(&actor(), &all(), &row(&hh(1), G1, "2025-06-01"))
        .await
        .unwrap_err();
    assert_eq!(code_of(e).0, "already_assigned");
    // Levels and communities are checked.
    let e = store
        .assign_household(&actor(), &all(), &row(G1, G2, "2025-01-01"))
        .await
        .unwrap_err();
    assert_eq!(code_of(e), ("not_a_household", "household_code".into()));
    let e = store
        .assign_household(
            &actor(),
            &all(),
            &row(&hh(2), "150207.BYXL.KY", "2025-01-01"),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(e), ("not_a_grid", "grid_code".into()));
    let e = store
        .assign_household(&actor(), &all(), &row(&hh(2), G3, "2025-01-01"))
        .await
        .unwrap_err();
    assert_eq!(code_of(e), ("grid_outside_community", "grid_code".into()));
    // A community worker of 开元 cannot name 和谐's places: unknown, as if missing.
    let e = store
        .assign_household(&actor(), &ky_scope(), &row(&hh(9), G3, "2025-01-01"))
        .await
        .unwrap_err();
    assert_eq!(code_of(e), ("unknown_place", "household_code".into()));
    // Redrawing: end the assignment, then the household moves on that day.
    let ended = store
        .end_assignment(&actor(), &ky_scope(), a.id, d("2026-03-01"))
        .await
        .unwrap();
    assert_eq!(ended.valid_to, Some(d("2026-03-01")));
    assert!(store
        .end_assignment(&actor(), &all(), a.id, d("2026-04-01"))
        .await
        .is_err());
    store
        .assign_household(&actor(), &ky_scope(), &row(&hh(1), G2, "2026-03-01"))
        .await
        .unwrap();
    let g1 = store.place_by_code(G1).await.unwrap().unwrap();
    let g2 = store.place_by_code(G2).await.unwrap().unwrap();
    let in_g1 = store
        .grid_households(&all(), g1.id, d("2026-02-28"))
        .await
        .unwrap();
    assert_eq!(in_g1.len(), 1);
    assert!(store
        .grid_households(&all(), g1.id, d("2026-03-01"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .grid_households(&all(), g2.id, d("2026-03-01"))
            .await
            .unwrap()[0]
            .household_code,
        hh(1)
    );
    let h1 = store.place_by_code(&hh(1)).await.unwrap().unwrap();
    let history = store.household_grids(&all(), h1.id).await.unwrap();
    assert_eq!(history.len(), 2);
    // Out of scope: not found.
    let hx = DataScope {
        place_path: Some("/150000/150200/150207/150207.BYXL/150207.BYXL.HX/".into()),
        org_path: None,
    };
    assert!(matches!(
        store.grid_households(&hx, g1.id, d("2026-03-01")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .end_assignment(&actor(), &hx, a.id, d("2026-05-01"))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.audit_verify().await.unwrap(),
        Verification::Intact { .. }
    ));
}

async fn household_imports_apply_whole_or_not_at_all(store: &Store, _: Engine) {
    seed(store).await;
    // Row 4 puts H1 in a second grid: nothing of the file lands.
    let bad = [
        row(&hh(1), G1, "2025-01-01"),
        row(&hh(2), G1, "2025-01-01"),
        row(&hh(1), G2, "2025-02-01"),
    ];
    let e = store
        .import_grid_households(&actor(), &bad, |_| {})
        .await
        .unwrap_err();
    assert_eq!(e.row, 4);
    assert_eq!(code_of(e.error).0, "household_in_two_grids");
    let g1 = store.place_by_code(G1).await.unwrap().unwrap();
    assert!(store
        .grid_households(&all(), g1.id, d("2025-03-01"))
        .await
        .unwrap()
        .is_empty());
    let mut seen = 0;
    let n = store
        .import_grid_households(&actor(), &bad[..2], |i| seen = i)
        .await
        .unwrap();
    assert_eq!((n, seen), (2, 2));
    assert_eq!(
        store
            .grid_households(&all(), g1.id, d("2025-03-01"))
            .await
            .unwrap()
            .len(),
        2
    );
}

/// The hand-computed fixture. Period 2026-01-01 … 2026-03-31 (both days included).
///
/// Households (assignments valid on 2026-03-31, the period's last day):
/// - G1: H1, H2, H3 — H4 was in G1 until it moved to G2 on 2026-03-01; H8 joins G1
///   only on 2026-04-01, after the period.
/// - G2: H4, H5, H6, H7.
/// - G3 (和谐社区): no household assigned.
///
/// Visits:
/// - H1 household visit 01-05, and again 02-10 (a repeat counts once);
/// - H2 household visit 2025-12-31 (before the period: not counted);
/// - H3 household visit 04-01 (after the period: not counted), and a forum held at H3
///   on 02-01 (not a household visit: not counted);
/// - H4 household visit 01-20 (while still in G1; H4 counts where it is at the end: G2);
/// - H5 household visit 03-31 (the last day counts); H7 on 01-01 (the first day counts).
///
/// So G1: 1 of 3 visited = 1/3; G2: H4, H5, H7 = 3 of 4 = 3/4; G3: 0 of 0, no share;
/// 开元社区: (1 + 3) of (3 + 4) = 4/7.
async fn coverage_matches_the_hand_computed_fixture(store: &Store, _: Engine) {
    seed(store).await;
    for i in [1, 2, 3, 5, 6, 7] {
        let grid = if i >= 5 { G2 } else { G1 };
        store
            .assign_household(&actor(), &all(), &row(&hh(i), grid, "2025-01-01"))
            .await
            .unwrap();
    }
    let h4 = store
        .assign_household(&actor(), &all(), &row(&hh(4), G1, "2025-01-01"))
        .await
        .unwrap();
    store
        .end_assignment(&actor(), &all(), h4.id, d("2026-03-01"))
        .await
        .unwrap();
    store
        .assign_household(&actor(), &all(), &row(&hh(4), G2, "2026-03-01"))
        .await
        .unwrap();
    store
        .assign_household(&actor(), &all(), &row(&hh(8), G1, "2026-04-01"))
        .await
        .unwrap();
    let worker = person(store, "网格员", "150207.BYXL.KY", false).await;
    let visits = [
        (1, VisitKind::Household, "2026-01-05"),
        (1, VisitKind::Household, "2026-02-10"),
        (2, VisitKind::Household, "2025-12-31"),
        (3, VisitKind::Household, "2026-04-01"),
        (3, VisitKind::Forum, "2026-02-01"),
        (4, VisitKind::Household, "2026-01-20"),
        (5, VisitKind::Household, "2026-03-31"),
        (7, VisitKind::Household, "2026-01-01"),
    ];
    for (i, kind, on) in visits {
        store
            .record_visit(
                &actor(),
                &all(),
                &NewVisit {
                    point_id: None,
                    person_id: worker,
                    kind,
                    visited_on: d(on),
                    place_code: Some(hh(i)),
                    participants: vec![],
                    notes: "入户走访".into(),
                    follow_up: None,
                    photos: vec![],
                },
                d("2026-06-30"),
            )
            .await
            .unwrap();
    }
    let (from, to) = (d("2026-01-01"), d("2026-03-31"));
    let report = store.coverage(&all(), None, from, to).await.unwrap();
    let grid = |code: &str| {
        report
            .grids
            .iter()
            .find(|g| g.grid_code == code)
            .unwrap()
            .clone()
    };
    let cov = |households, visited| Coverage {
        households,
        visited,
    };
    assert_eq!(grid(G1).coverage, cov(3, 1));
    assert_eq!(grid(G1).share, Some(1.0 / 3.0));
    assert_eq!(grid(G2).coverage, cov(4, 3));
    assert_eq!(grid(G2).share, Some(3.0 / 4.0));
    assert_eq!(grid(G3).coverage, cov(0, 0));
    assert_eq!(grid(G3).share, None);
    let ky = report
        .communities
        .iter()
        .find(|c| c.community_code == "150207.BYXL.KY")
        .unwrap();
    assert_eq!((ky.coverage, ky.grids), (cov(7, 4), 2));
    assert_eq!(ky.share, Some(4.0 / 7.0));
    assert_eq!(report.total, cov(7, 4));
    assert_eq!(report.communities.len(), 2);

    // The same figures from the domain's rule over the raw rows.
    let mut households = BTreeMap::new();
    for g in &report.grids {
        for a in store.grid_households(&all(), g.grid_id, to).await.unwrap() {
            households.insert(a.household_id, a.grid_id);
        }
    }
    let visited: Vec<i64> = {
        let pool = sqlx::AnyPool::connect(store.url()).await.unwrap();
        let ids = sqlx::query_scalar(
            "SELECT place_id FROM visits WHERE kind = 'household' AND visited_on >= $1 AND visited_on <= $2",
        )
        .bind(from.to_string())
        .bind(to.to_string())
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        ids
    };
    let by_rule = coverage(&households, visited);
    for g in &report.grids {
        let expected = by_rule.get(&g.grid_id).copied().unwrap_or(cov(0, 0));
        assert_eq!(g.coverage, expected, "{}", g.grid_code);
    }

    // Narrowed to one community, and seen from a scope: the same grids' figures.
    let ky_place = store
        .place_by_code("150207.BYXL.KY")
        .await
        .unwrap()
        .unwrap();
    let only_ky = store
        .coverage(&all(), Some(ky_place.id), from, to)
        .await
        .unwrap();
    assert_eq!(only_ky.grids.len(), 2);
    assert_eq!(only_ky.total, cov(7, 4));
    let scoped = store.coverage(&ky_scope(), None, from, to).await.unwrap();
    assert_eq!(scoped.grids, only_ky.grids);
    let hx_place = store
        .place_by_code("150207.BYXL.HX")
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store
            .coverage(&ky_scope(), Some(hx_place.id), from, to)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    // A later period sees H8 in G1 and H3's April visit.
    let april = store
        .coverage(&all(), None, d("2026-04-01"), d("2026-04-30"))
        .await
        .unwrap();
    let g1 = april.grids.iter().find(|g| g.grid_code == G1).unwrap();
    assert_eq!(g1.coverage, cov(4, 1));
    // A period that ends before it starts is refused.
    let e = store.coverage(&all(), None, to, from).await.unwrap_err();
    assert_eq!(code_of(e).0, "invalid_period");
}

fn member(person_id: i64, community: &str, grid: &str, from: &str) -> NewRegistration {
    NewRegistration {
        kind: RegistrationKind::Member,
        person_id: Some(person_id),
        org_code: None,
        community_code: community.into(),
        grid_code: Some(grid.into()),
        employer_code: None,
        skills: vec!["法律咨询".into(), "水电维修".into()],
        valid_from: d(from),
    }
}

async fn members_register_with_one_community_at_a_time(store: &Store, _: Engine) {
    seed(store).await;
    let employer = org(store, "JY-SWJ", "九原区水务局", "government_department").await;
    let li = person(store, "李党员", "150207.BYXL.KY", true).await;
    let wang = person(store, "王群众", "150207.BYXL.KY", false).await;
    let mut reg = member(li, "150207.BYXL.KY", G1, "2025-01-01");
    reg.employer_code = Some("JY-SWJ".into());
    let r = store.register(&actor(), &ky_scope(), &reg).await.unwrap();
    assert_eq!(
        (r.kind, r.grid_code.as_deref(), r.employer_id),
        (RegistrationKind::Member, Some(G1), Some(employer))
    );
    assert_eq!(r.skills, ["法律咨询", "水电维修"]);
    // With a second community over shared days: refused.
    let e = store
        .register(
            &actor(),
            &all(),
            &member(li, "150207.BYXL.HX", G3, "2025-06-01"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        code_of(e),
        ("overlapping_registration", "valid_from".into())
    );
    // Only party members; the grid must be the community's; a member needs a grid.
    let e = store
        .register(
            &actor(),
            &all(),
            &member(wang, "150207.BYXL.KY", G1, "2025-01-01"),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(e).0, "not_a_party_member");
    let zhao = person(store, "赵党员", "150207.BYXL.KY", true).await;
    let e = store
        .register(
            &actor(),
            &all(),
            &member(zhao, "150207.BYXL.KY", G3, "2025-01-01"),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(e), ("grid_outside_community", "grid_code".into()));
    let mut no_grid = member(zhao, "150207.BYXL.KY", G1, "2025-01-01");
    no_grid.grid_code = None;
    assert_eq!(
        code_of(
            store
                .register(&actor(), &all(), &no_grid)
                .await
                .unwrap_err()
        ),
        ("required", "grid_code".into())
    );
    let mut bad_employer = member(zhao, "150207.BYXL.KY", G2, "2025-01-01");
    bad_employer.employer_code = Some("NOPE".into());
    assert_eq!(
        code_of(
            store
                .register(&actor(), &all(), &bad_employer)
                .await
                .unwrap_err()
        )
        .0,
        "unknown_org"
    );
    let mut zr = member(zhao, "150207.BYXL.KY", G2, "2025-03-01");
    zr.skills = vec!["心理疏导".into()];
    store.register(&actor(), &all(), &zr).await.unwrap();
    // An organisation registers too.
    org(store, "JY-SWJ-DZB", "水务局党支部", "branch").await;
    let o = store
        .register(
            &actor(),
            &all(),
            &NewRegistration {
                kind: RegistrationKind::Org,
                person_id: None,
                org_code: Some("JY-SWJ-DZB".into()),
                community_code: "150207.BYXL.KY".into(),
                grid_code: None,
                employer_code: None,
                skills: vec!["法律咨询".into()],
                valid_from: d("2025-01-01"),
            },
        )
        .await
        .unwrap();
    assert_eq!(o.org_name.as_deref(), Some("水务局党支部"));
    let ky = store
        .place_by_code("150207.BYXL.KY")
        .await
        .unwrap()
        .unwrap();
    let on = d("2025-06-01");
    let listed = store
        .registrations(&all(), ky.id, on, None, None)
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    let lawyers = store
        .registrations(&all(), ky.id, on, None, Some("法律咨询"))
        .await
        .unwrap();
    assert_eq!(lawyers.len(), 2, "李 and the branch list 法律咨询");
    // A skill matches whole, never a part of another.
    assert!(store
        .registrations(&all(), ky.id, on, None, Some("法律"))
        .await
        .unwrap()
        .is_empty());
    let members = store
        .registrations(&all(), ky.id, on, Some(RegistrationKind::Member), None)
        .await
        .unwrap();
    assert_eq!(members.len(), 2);
    // Before 赵 registered, only 李 and the branch.
    assert_eq!(
        store
            .registrations(&all(), ky.id, d("2025-02-01"), None, None)
            .await
            .unwrap()
            .len(),
        2
    );
    // Ending and moving: 李 registers with 和谐 from the day the first one ends.
    store
        .end_registration(&actor(), &ky_scope(), r.id, d("2026-01-01"))
        .await
        .unwrap();
    store
        .register(
            &actor(),
            &all(),
            &member(li, "150207.BYXL.HX", G3, "2026-01-01"),
        )
        .await
        .unwrap();
    // Scope: 和谐's list is not found for a 开元 worker.
    let hx = store
        .place_by_code("150207.BYXL.HX")
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store
            .registrations(&ky_scope(), hx.id, on, None, None)
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn needs_are_claimed_by_registered_members_and_reported(store: &Store, _: Engine) {
    seed(store).await;
    let employer = org(store, "JY-SWJ", "九原区水务局", "government_department").await;
    let li = person(store, "李党员", "150207.BYXL.KY", true).await;
    let zhao = person(store, "赵党员", "150207.BYXL.KY", true).await;
    let mut reg = member(li, "150207.BYXL.KY", G1, "2025-01-01");
    reg.employer_code = Some("JY-SWJ".into());
    store.register(&actor(), &all(), &reg).await.unwrap();
    let need = store
        .post_need(
            &actor(),
            &ky_scope(),
            &NewNeed {
                community_code: "150207.BYXL.KY".into(),
                grid_code: Some(G1.into()),
                title: "独居老人水管漏水".into(),
                detail: "1号楼".into(),
                skills: vec!["水电维修".into()],
            },
        )
        .await
        .unwrap();
    assert_eq!(need.status, NeedStatus::Open);
    // 赵 is not registered with the community: refused.
    let e = store
        .claim_need(&actor(), &all(), need.id, zhao, d("2026-07-02"))
        .await
        .unwrap_err();
    assert_eq!(code_of(e), ("not_registered", "person_id".into()));
    // Completing an open need is the wrong step.
    let e = store
        .complete_need(
            &actor(),
            &all(),
            need.id,
            2.0,
            "修好了",
            d("2026-07-02"),
            d("2026-07-02"),
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(e).0, "wrong_state");
    let claimed = store
        .claim_need(&actor(), &all(), need.id, li, d("2026-07-02"))
        .await
        .unwrap();
    assert_eq!(
        (claimed.status, claimed.claimed_by_name.as_deref()),
        (NeedStatus::Claimed, Some("李党员"))
    );
    assert_eq!(
        code_of(
            store
                .claim_need(&actor(), &all(), need.id, li, d("2026-07-02"))
                .await
                .unwrap_err()
        )
        .0,
        "wrong_state"
    );
    let released = store.release_need(&actor(), &all(), need.id).await.unwrap();
    assert_eq!(
        (released.status, released.claimed_by),
        (NeedStatus::Open, None)
    );
    store
        .claim_need(&actor(), &all(), need.id, li, d("2026-07-02"))
        .await
        .unwrap();
    let today = lianxin_domain::calendar::local_day(chrono::Utc::now());
    let e = store
        .complete_need(&actor(), &all(), need.id, 0.0, "修好了", today, today)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), ("invalid_hours", "hours".into()));
    let e = store
        .complete_need(
            &actor(),
            &all(),
            need.id,
            2.0,
            "修好了",
            today.succ_opt().unwrap(),
            today,
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(e), ("in_future", "done_on".into()));
    let done = store
        .complete_need(&actor(), &all(), need.id, 2.5, "更换了水管", today, today)
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.hours, done.done_on),
        (NeedStatus::Done, Some(2.5), Some(today))
    );
    // A second need, done too: the record sums both.
    let second = store
        .post_need(
            &actor(),
            &all(),
            &NewNeed {
                community_code: "150207.BYXL.KY".into(),
                grid_code: None,
                title: "法律咨询".into(),
                detail: String::new(),
                skills: vec![],
            },
        )
        .await
        .unwrap();
    store
        .claim_need(&actor(), &all(), second.id, li, today)
        .await
        .unwrap();
    store
        .complete_need(&actor(), &all(), second.id, 1.25, "答复了", today, today)
        .await
        .unwrap();
    let record = store.service_record(&ky_scope(), li).await.unwrap();
    assert_eq!((record.done, record.hours), (2, 3.75));
    // Each hour of service earns volunteer_hour points (2.5 h → 3, 1.25 h → 1), once
    // an issuing organisation is set, and never twice.
    use lianxin_domain::points::{Account, Asset, Multipliers, RuleDraft};
    store
        .points_put_rule(
            &actor(),
            RuleDraft {
                code: "volunteer_hour".into(),
                category: "rider".into(),
                points: 10,
                multipliers: Multipliers::default(),
                cap: None,
                valid_from: chrono::Utc::now() - chrono::Duration::days(30),
            },
        )
        .await
        .unwrap();
    let pending = store.points_award_pending(&actor(), 100, 0).await.unwrap();
    assert_eq!(pending.volunteer_hours, 0, "no issuing organisation yet");
    store
        .points_set_issuer(&actor(), Some(employer))
        .await
        .unwrap();
    let pending = store.points_award_pending(&actor(), 100, 0).await.unwrap();
    assert_eq!((pending.volunteer_hours, pending.points), (4, 40));
    let again = store.points_award_pending(&actor(), 100, 0).await.unwrap();
    assert_eq!(again.volunteer_hours, 0);
    assert_eq!(
        store
            .points_balance(Account::Person(li), Asset::Points)
            .await
            .unwrap(),
        40
    );
    assert_eq!(record.registrations.len(), 1);
    let quarter = Quarter::containing(today);
    let report = store
        .employer_report(&ky_scope(), employer, quarter)
        .await
        .unwrap();
    assert_eq!(report.members.len(), 1);
    assert_eq!(
        (
            report.members[0].person_name.as_str(),
            report.members[0].done,
            report.hours
        ),
        ("李党员", 2, 3.75)
    );
    // The quarter before holds no service.
    let before = store
        .employer_report(&ky_scope(), employer, quarter.previous())
        .await
        .unwrap();
    assert_eq!((before.done, before.hours), (0, 0.0));
    // Needs of 开元 are not found from 和谐, nor listed there.
    let hx = DataScope {
        place_path: Some("/150000/150200/150207/150207.BYXL/150207.BYXL.HX/".into()),
        org_path: None,
    };
    assert!(matches!(
        store.need(&hx, need.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.release_need(&actor(), &hx, need.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.needs(&hx, None, None, 50).await.unwrap().is_empty());
    assert_eq!(
        store
            .needs(&ky_scope(), None, None, 50)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .needs(&all(), None, Some(NeedStatus::Open), 50)
            .await
            .unwrap()
            .len(),
        0
    );
    assert!(matches!(
        store.audit_verify().await.unwrap(),
        Verification::Intact { .. }
    ));
}
