//! The contact-point part of the storage contract, on every engine this machine
//! offers: points and links, the re-match that a post's end opens inside the same
//! transaction, the handover, visits and their tallies.

use chrono::NaiveDate;
use lianxin_domain::contact::{PointIndicators, PointKind, RematchStatus, VisitKind};
use lianxin_domain::draft::*;
use lianxin_domain::pii::PiiKey;
use lianxin_domain::relation::Validity;
use lianxin_domain::role::DataScope;
use lianxin_store::audit::Actor;
use lianxin_store::contact::{NewPoint, NewVisit};
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
        a_post_ending_opens_rematches_and_the_successor_takes_over,
        visits_are_tallied_and_checked,
    );
}

fn actor() -> Actor {
    Actor::system("test")
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Places, the district committee, and officials with posts from 2024 (the last
/// without one). Returns the people's ids.
async fn seed(store: &Store) -> Vec<i64> {
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
        store.create_place(&actor(), &all, &d).await.unwrap();
    }
    let org = OrgDraft::parse(&RawOrg {
        code: "JY-QW".into(),
        name: "九原区委".into(),
        kind: "party_committee".into(),
        parent_code: None,
        serves: vec!["150207".into()],
    })
    .unwrap();
    store.create_org(&actor(), &all, &org).await.unwrap();
    let key = PiiKey::from_master(&[3; 32]);
    let mut ids = Vec::new();
    for (name, post) in [
        ("甲", Some("区委常委")),
        ("乙", Some("副区长")),
        ("丙", None),
    ] {
        let p = store
            .create_person(
                &actor(),
                &all,
                &PersonDraft::parse(
                    &RawPerson {
                        name: name.into(),
                        place_code: "150207".into(),
                        ..Default::default()
                    },
                    &key,
                )
                .unwrap(),
            )
            .await
            .unwrap();
        if let Some(post) = post {
            let d = RelationDraft::parse(&RawRelation {
                kind: "holds_post".into(),
                org_code: Some("JY-QW".into()),
                post: Some(post.into()),
                valid_from: "2024-01-01".into(),
                ..Default::default()
            })
            .unwrap();
            store
                .create_relation(&actor(), &all, p.id, &d)
                .await
                .unwrap();
        }
        ids.push(p.id);
    }
    ids
}

async fn point(store: &Store, code: &str, ind: (u8, u8, u8)) -> i64 {
    store
        .create_point(
            &actor(),
            &DataScope::everything(),
            &NewPoint {
                kind: PointKind::Community,
                name: None,
                place_code: code.into(),
                org_code: None,
                sector: None,
                indicators: PointIndicators::new(ind.0, ind.1, ind.2).unwrap(),
            },
        )
        .await
        .unwrap()
        .id
}

async fn a_post_ending_opens_rematches_and_the_successor_takes_over(store: &Store, _: Engine) {
    let ids = seed(store).await;
    let all = DataScope::everything();
    let ky = point(store, "150207.BYXL.KY", (90, 90, 60)).await;
    let hy = point(store, "150207.BYXL.HY", (30, 30, 30)).await;
    let from = Validity::new(day("2025-01-01"), None).unwrap();
    store
        .link_official(&actor(), &all, ky, ids[0], from)
        .await
        .unwrap();
    store
        .link_official(&actor(), &all, hy, ids[0], from)
        .await
        .unwrap();
    // The same point twice over overlapping days is refused, as is a person without a post.
    let e = store
        .link_official(&actor(), &all, ky, ids[0], from)
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid(ref v) if v.code == "overlapping_link"),
        "{e:?}"
    );
    let e = store
        .link_official(&actor(), &all, hy, ids[2], from)
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Invalid(ref v) if v.code == "holds_no_post"),
        "{e:?}"
    );

    // 甲's post ends on 2026-03-01: both links end that day, two re-matches open.
    let post = store
        .relations_of_person(ids[0])
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.post.is_some())
        .unwrap();
    let end = day("2026-03-01");
    store
        .end_relation(&actor(), &all, post.id, end)
        .await
        .unwrap();
    let open = store.rematches(&all, &[RematchStatus::Open]).await.unwrap();
    assert_eq!(open.len(), 2);
    for link in store.links_of_person(ids[0]).await.unwrap() {
        assert_eq!(link.valid_to, Some(end));
    }
    let rid = open.iter().find(|r| r.point_id == ky).unwrap().id;
    // Candidates hold a post on the day: only 乙 now.
    let candidates = store.successor_candidates(rid, &all, end).await.unwrap();
    assert_eq!(
        candidates.iter().map(|c| c.person_id).collect::<Vec<_>>(),
        [ids[1]]
    );
    let e = store
        .confirm_rematch(&actor(), &all, rid, ids[2], end)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(ref v) if v.code == "holds_no_post"));
    let r = store
        .confirm_rematch(&actor(), &all, rid, ids[1], end)
        .await
        .unwrap();
    assert_eq!(r.status, RematchStatus::Confirmed);
    // Only the successor acknowledges; then the point is linked again.
    assert!(store
        .acknowledge_rematch(&actor(), ids[0], rid, end)
        .await
        .is_err());
    let r = store
        .acknowledge_rematch(&actor(), ids[1], rid, end)
        .await
        .unwrap();
    assert_eq!(r.status, RematchStatus::Acknowledged);
    let links = store.point_links(ky).await.unwrap();
    assert_eq!(links.len(), 2);
    assert_eq!(
        (links[1].person_id, links[1].rematch_id),
        (ids[1], Some(rid))
    );
    // A second acknowledgement is a conflict.
    assert!(matches!(
        store.acknowledge_rematch(&actor(), ids[1], rid, end).await,
        Err(StoreError::Conflict { .. })
    ));
    // Every step is on the audit trail, and the chain holds.
    assert!(matches!(
        store.audit_verify().await.unwrap(),
        lianxin_store::audit::Verification::Intact { .. }
    ));
}

async fn visits_are_tallied_and_checked(store: &Store, _: Engine) {
    let ids = seed(store).await;
    let all = DataScope::everything();
    let ky = point(store, "150207.BYXL.KY", (50, 50, 50)).await;
    let visit = |d: &str, person: i64| NewVisit {
        point_id: Some(ky),
        person_id: person,
        kind: VisitKind::Forum,
        visited_on: day(d),
        place_code: None,
        participants: vec!["书记".into()],
        notes: "座谈".into(),
        follow_up: None,
        photos: Vec::new(),
    };
    let today = day("2026-06-30");
    for (d, p) in [
        ("2025-12-31", ids[0]),
        ("2026-01-02", ids[0]),
        ("2026-05-01", ids[0]),
        ("2026-06-30", ids[1]),
    ] {
        store
            .record_visit(&actor(), &all, &visit(d, p), today)
            .await
            .unwrap();
    }
    let e = store
        .record_visit(&actor(), &all, &visit("2026-07-01", ids[0]), today)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(ref v) if v.code == "visit_in_future"));
    let fast = store.district_view(&all, 2026, today).await.unwrap();
    let slow = store
        .district_view_by_scan(&all, 2026, today)
        .await
        .unwrap();
    assert_eq!(fast, slow);
    assert_eq!(fast.totals.visits, 3, "2025's visit is not in 2026");
    let v2025 = store.district_view(&all, 2025, today).await.unwrap();
    assert_eq!(v2025.totals.visits, 1);
    let listed = store
        .visits(
            &all,
            &lianxin_store::contact::VisitQuery {
                point_id: Some(ky),
                from: Some(day("2026-01-01")),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|v| v.visited_on.to_string())
            .collect::<Vec<_>>(),
        ["2026-06-30", "2026-05-01", "2026-01-02"]
    );
}
