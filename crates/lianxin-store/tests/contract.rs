//! The storage contract: every test here runs on every engine this machine offers
//! (SQLite always, PostgreSQL when `LIANXIN_TEST_DATABASE_URL` is set), so the two
//! engines are held to one behaviour.

use lianxin_domain::draft::*;
use lianxin_domain::pii::PiiKey;
use lianxin_domain::relation::parse_day;
use lianxin_domain::role::{DataScope, Role};
use lianxin_store::accounts::NewAccount;
use lianxin_store::audit::{Actor, Verification};
use lianxin_store::testing::TestStore;
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
        place_tree_and_rules,
        organisations_and_scope,
        people_keep_personal_data_protected,
        relations_answer_who_was_responsible_on_a_day,
        imports_apply_whole_or_not_at_all,
        audit_chain_catches_tampering,
        accounts_sessions_and_tokens,
        concurrent_writes_keep_one_audit_chain,
        relations_respect_scope_and_time,
        a_failing_write_does_not_sink_its_neighbours,
        demands_store_steps_photos_and_cells,
        demand_steps_refuse_a_stale_version,
        idempotency_claims,
        routing_rules_and_time_limits,
        rates_over_months_agree_with_a_scan,
    );
}

fn admin() -> Actor {
    Actor::system("test")
}

fn raw_place(code: &str, name: &str, level: &str, parent: Option<&str>) -> PlaceDraft {
    PlaceDraft::parse(&RawPlace {
        code: code.into(),
        name: name.into(),
        level: level.into(),
        parent_code: parent.map(Into::into),
        lat: None,
        lon: None,
    })
    .unwrap()
}

async fn seed_places(store: &Store) {
    let all = DataScope::everything();
    for (code, name, level, parent) in [
        ("150000", "内蒙古自治区", "region", None),
        ("150200", "包头市", "city", Some("150000")),
        ("150207", "九原区", "county", Some("150200")),
        ("150207.BYXL", "白音席勒街道", "town", Some("150207")),
        ("150207.BYXL.KY", "开元社区", "village", Some("150207.BYXL")),
        ("150207.BYXL.HY", "和谐社区", "village", Some("150207.BYXL")),
        ("150400", "赤峰市", "city", Some("150000")),
    ] {
        store
            .create_place(&admin(), &all, &raw_place(code, name, level, parent))
            .await
            .unwrap();
    }
}

fn scope_of(path: &str) -> DataScope {
    DataScope {
        place_path: Some(path.into()),
        org_path: None,
    }
}

async fn place_tree_and_rules(store: &Store, _: Engine) {
    seed_places(store).await;
    let all = DataScope::everything();
    let ky = store
        .place_by_code("150207.BYXL.KY")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ky.path, "/150000/150200/150207/150207.BYXL/150207.BYXL.KY/");
    assert_eq!(ky.region, "150200");
    let roots = store.place_children(None, &all).await.unwrap();
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0].1, 2, "the region has two cities");
    let street = store.place_by_code("150207.BYXL").await.unwrap().unwrap();
    let kids = store.place_children(Some(street.id), &all).await.unwrap();
    assert_eq!(
        kids.iter()
            .map(|(p, _)| p.code.as_str())
            .collect::<Vec<_>>(),
        ["150207.BYXL.HY", "150207.BYXL.KY"]
    );
    let chain = store.place_ancestors(&ky).await.unwrap();
    assert_eq!(chain.first().unwrap().code, "150000");
    assert_eq!(chain.last().unwrap().code, "150207.BYXL.KY");

    // Duplicate codes conflict; unknown parents and misfit codes are refused.
    let dup = store
        .create_place(
            &admin(),
            &all,
            &raw_place("150207", "九原区", "county", Some("150200")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(dup, StoreError::Conflict { ref field, .. } if field == "code"),
        "{dup:?}"
    );
    let orphan = store
        .create_place(
            &admin(),
            &all,
            &raw_place("150299.X", "x", "town", Some("150299")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(orphan, StoreError::Invalid(ref v) if v.field == "parent_code"),
        "{orphan:?}"
    );
    let misfit = store
        .create_place(
            &admin(),
            &all,
            &raw_place("150404", "松山区", "county", Some("150200")),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(misfit, StoreError::Invalid(ref v) if v.field == "code"),
        "{misfit:?}"
    );

    // A scoped reader sees its subtree, and its own root at the top.
    let scope = scope_of(&street.path);
    assert!(store.place(ky.id, &scope).await.is_ok());
    let chifeng = store.place_by_code("150400").await.unwrap().unwrap();
    assert!(matches!(
        store.place(chifeng.id, &scope).await,
        Err(StoreError::NotFound { .. })
    ));
    let roots = store.place_children(None, &scope).await.unwrap();
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0].0.code, "150207.BYXL");
    // A scoped writer cannot create outside its scope.
    let outside = store
        .create_place(
            &admin(),
            &scope_of(&ky.path),
            &raw_place(
                "150207.BYXL.HY.G1",
                "一网格",
                "grid",
                Some("150207.BYXL.HY"),
            ),
        )
        .await
        .unwrap_err();
    // Reported exactly like a missing place, so scoped writers cannot probe codes.
    assert!(
        matches!(outside, StoreError::Invalid(ref v) if v.code == "unknown_place" && v.field == "parent_code"),
        "{outside:?}"
    );
    let found = store.search_places("开元", &all, 10).await.unwrap();
    assert_eq!(found.len(), 1);
    let renamed = store
        .rename_place(&admin(), &all, ky.id, "开元社区（新）")
        .await
        .unwrap();
    assert_eq!(renamed.name, "开元社区（新）");
}

async fn organisations_and_scope(store: &Store, _: Engine) {
    seed_places(store).await;
    let all = DataScope::everything();
    let org = |code: &str, kind: &str, parent: Option<&str>, serves: &[&str]| {
        OrgDraft::parse(&RawOrg {
            code: code.into(),
            name: format!("{code} 组织"),
            kind: kind.into(),
            parent_code: parent.map(Into::into),
            serves: serves.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    };
    store
        .create_org(
            &admin(),
            &all,
            &org("JY-DW", "party_committee", None, &["150207"]),
        )
        .await
        .unwrap();
    store
        .create_org(
            &admin(),
            &all,
            &org(
                "KY-DW",
                "party_committee",
                Some("JY-DW"),
                &["150207.BYXL.KY"],
            ),
        )
        .await
        .unwrap();
    store
        .create_org(
            &admin(),
            &all,
            &org("HY-DZB", "branch", Some("JY-DW"), &["150207.BYXL.HY"]),
        )
        .await
        .unwrap();
    let bad = store
        .create_org(
            &admin(),
            &all,
            &org("X", "party_committee", Some("HY-DZB"), &[]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(bad, StoreError::Invalid(ref v) if v.field == "parent_code"),
        "{bad:?}"
    );

    let ky = store
        .place_by_code("150207.BYXL.KY")
        .await
        .unwrap()
        .unwrap();
    let ky_scope = scope_of(&ky.path);
    let seen = store.search_orgs("", None, &ky_scope, 50).await.unwrap();
    assert_eq!(
        seen.iter().map(|o| o.code.as_str()).collect::<Vec<_>>(),
        ["KY-DW"]
    );
    let hy = store.org_by_code("HY-DZB").await.unwrap().unwrap();
    assert!(matches!(
        store.org(hy.id, &ky_scope).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.org_places(hy.id).await.unwrap()[0].code,
        "150207.BYXL.HY"
    );
    let jy = store.org_by_code("JY-DW").await.unwrap().unwrap();
    assert_eq!(store.org_children(jy.id, &all).await.unwrap().len(), 2);
    // Org-scoped account sees the subtree of its organisation.
    let org_scope = DataScope {
        place_path: None,
        org_path: Some(jy.path.clone()),
    };
    assert_eq!(
        store
            .search_orgs("", None, &org_scope, 50)
            .await
            .unwrap()
            .len(),
        3
    );
}

async fn people_keep_personal_data_protected(store: &Store, _: Engine) {
    seed_places(store).await;
    let all = DataScope::everything();
    let key = PiiKey::from_master(&[3; 32]);
    let draft = PersonDraft::parse(
        &RawPerson {
            name: "测试人员甲".into(),
            phone: Some("13912345678".into()),
            id_card: Some("11010519491231002X".into()),
            party_member: Some(true),
            party_joined: Some("2010-07-01".into()),
            place_code: "150207.BYXL.KY".into(),
        },
        &key,
    )
    .unwrap();
    let p = store.create_person(&admin(), &all, &draft).await.unwrap();
    assert_eq!(p.phone_masked.as_deref(), Some("139****5678"));
    assert!(p.has_id_card && p.party_member);
    // The same ID card cannot be registered twice.
    let again = store
        .create_person(&admin(), &all, &draft)
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict { ref field, .. } if field == "id_card"));
    // Found by phone through the keyed hash, without the number being stored.
    let hash = key.keyed_hash("phone", "13912345678");
    let found = store
        .search_people("", Some(&hash), &all, 10, 0)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let pool = sqlx::AnyPool::connect(&tamper_url(store)).await.unwrap();
    let sealed: String = sqlx::query_scalar("SELECT phone_enc FROM people WHERE id = $1")
        .bind(p.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(key.decrypt(&sealed).unwrap(), "13912345678");
    // Nothing in the audit trail carries the raw number.
    for e in store.audit_entries(0, 1000).await.unwrap() {
        assert!(!e.after.unwrap_or_default().contains("13912345678"));
    }
    // Out of scope: not found.
    let hy = store
        .place_by_code("150207.BYXL.HY")
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store.person(p.id, &scope_of(&hy.path)).await,
        Err(StoreError::NotFound { .. })
    ));
    // Nor can a worker scoped elsewhere register someone there: the place is
    // reported as unknown, exactly like a missing one.
    let ky = store
        .place_by_code("150207.BYXL.KY")
        .await
        .unwrap()
        .unwrap();
    let elsewhere = PersonDraft::parse(
        &RawPerson {
            name: "越界".into(),
            place_code: "150207.BYXL.HY".into(),
            ..Default::default()
        },
        &key,
    )
    .unwrap();
    let err = store
        .create_person(&admin(), &scope_of(&ky.path), &elsewhere)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(ref v) if v.code == "unknown_place"),
        "{err:?}"
    );
    assert!(store
        .search_people("测试", None, &scope_of(&hy.path), 10, 0)
        .await
        .unwrap()
        .is_empty());
    let stats = store.registry_stats(&all).await.unwrap();
    assert_eq!((stats.people, stats.party_members), (1, 1));
    assert_eq!(stats.people_by_city[0].0, "150200");
}

async fn relations_answer_who_was_responsible_on_a_day(store: &Store, _: Engine) {
    seed_places(store).await;
    let all = DataScope::everything();
    let key = PiiKey::from_master(&[3; 32]);
    let mut ids = vec![];
    for name in ["甲干部", "乙干部"] {
        let d = PersonDraft::parse(
            &RawPerson {
                name: name.into(),
                place_code: "150207".into(),
                ..Default::default()
            },
            &key,
        )
        .unwrap();
        ids.push(store.create_person(&admin(), &all, &d).await.unwrap().id);
    }
    let assign = |from: &str| {
        RelationDraft::parse(&RawRelation {
            kind: "assigned_to".into(),
            place_code: Some("150207.BYXL.KY".into()),
            valid_from: from.into(),
            ..Default::default()
        })
        .unwrap()
    };
    let first = store
        .create_relation(&admin(), &all, ids[0], &assign("2024-01-01"))
        .await
        .unwrap();
    store
        .end_relation(
            &admin(),
            &all,
            first.id,
            parse_day("d", "2025-03-01").unwrap(),
        )
        .await
        .unwrap();
    store
        .create_relation(&admin(), &all, ids[1], &assign("2025-03-01"))
        .await
        .unwrap();
    let ky = store
        .place_by_code("150207.BYXL.KY")
        .await
        .unwrap()
        .unwrap();
    let on = |d: &str| parse_day("d", d).unwrap();
    let who = |rels: Vec<lianxin_store::registry::Relation>| {
        rels.into_iter().map(|r| r.person_name).collect::<Vec<_>>()
    };
    assert_eq!(
        who(store
            .responsible_for(ky.id, on("2025-02-28"))
            .await
            .unwrap()),
        ["甲干部"]
    );
    assert_eq!(
        who(store
            .responsible_for(ky.id, on("2025-06-01"))
            .await
            .unwrap()),
        ["乙干部"]
    );
    assert!(store
        .responsible_for(ky.id, on("2023-06-01"))
        .await
        .unwrap()
        .is_empty());
    // Ending twice is refused; history stays.
    assert!(store
        .end_relation(&admin(), &all, first.id, on("2025-04-01"))
        .await
        .is_err());
    assert_eq!(
        store.relations_of_person(ids[0]).await.unwrap()[0].valid_to,
        Some(on("2025-03-01"))
    );
}

async fn imports_apply_whole_or_not_at_all(store: &Store, _: Engine) {
    seed_places(store).await;
    let rows = vec![
        raw_place("150207.SH", "沙河街道", "town", Some("150207")),
        raw_place("150207.SH.HY", "花园社区", "village", Some("150207.SH")),
        raw_place("150207.SH.X", "错误", "village", Some("150207.NOPE")),
    ];
    let before = store.audit_count().await.unwrap();
    let err = store
        .import_places(&admin(), &rows, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.row, 4, "third data row is spreadsheet row 4");
    assert!(
        store.place_by_code("150207.SH").await.unwrap().is_none(),
        "nothing was applied"
    );
    assert_eq!(store.audit_count().await.unwrap(), before);
    let n = store
        .import_places(&admin(), &rows[..2], |_| {})
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert!(store.place_by_code("150207.SH.HY").await.unwrap().is_some());
}

async fn audit_chain_catches_tampering(store: &Store, engine: Engine) {
    seed_places(store).await;
    assert_eq!(
        store.audit_verify().await.unwrap(),
        Verification::Intact { entries: 7 }
    );
    // The triggers refuse a careless edit.
    let sql = "UPDATE audit_log SET actor = 'x' WHERE seq = 3";
    assert!(tamper(store, sql).await.is_err());
    // Someone who drops them first is caught by the chain.
    let drop = match engine {
        Engine::Sqlite => "DROP TRIGGER audit_log_no_update",
        Engine::Postgres => "DROP TRIGGER audit_log_no_change ON audit_log",
    };
    tamper(store, drop).await.unwrap();
    tamper(
        store,
        "UPDATE audit_log SET after_json = '{\"name\":\"forged\"}' WHERE seq = 3",
    )
    .await
    .unwrap();
    match store.audit_verify().await.unwrap() {
        Verification::Broken(b) => assert_eq!(b.seq, 3),
        other => panic!("tampering not caught: {other:?}"),
    }
}

async fn tamper(store: &Store, sql: &str) -> Result<(), sqlx::Error> {
    let pool = sqlx::AnyPool::connect(&tamper_url(store)).await?;
    let r = sqlx::raw_sql(sql).execute(&pool).await.map(|_| ());
    pool.close().await;
    r
}

fn tamper_url(store: &Store) -> String {
    let u = store.url().to_string();
    if u.starts_with("sqlite") {
        format!("{u}?mode=rw")
    } else {
        u
    }
}

async fn accounts_sessions_and_tokens(store: &Store, _: Engine) {
    seed_places(store).await;
    let acct = store
        .create_account(
            &admin(),
            &NewAccount {
                username: "KY.Worker".into(),
                display_name: "开元社区工作者".into(),
                password_hash: "$argon2id$dummy".into(),
                role: Role::CommunityWorker,
                scope_place_code: Some("150207.BYXL.KY".into()),
                scope_org_code: None,
                person_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(acct.username, "ky.worker");
    assert_eq!(
        acct.scope.place_path.as_deref(),
        Some("/150000/150200/150207/150207.BYXL/150207.BYXL.KY/")
    );
    let dup = store
        .create_account(
            &admin(),
            &NewAccount {
                username: "ky.worker".into(),
                display_name: "x".into(),
                password_hash: "x".into(),
                role: Role::Resident,
                scope_place_code: None,
                scope_org_code: None,
                person_id: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Conflict { .. }));
    let (found, hash) = store
        .account_by_username("KY.WORKER")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, hash.as_str()), (acct.id, "$argon2id$dummy"));

    store
        .create_session(acct.id, "live", "2999-01-01T00:00:00.000Z")
        .await
        .unwrap();
    store
        .create_session(acct.id, "old", "2000-01-01T00:00:00.000Z")
        .await
        .unwrap();
    assert_eq!(
        store.session_account("live").await.unwrap().unwrap().id,
        acct.id
    );
    assert!(store.session_account("old").await.unwrap().is_none());
    assert_eq!(store.purge_expired_sessions().await.unwrap(), 1);
    store.delete_session("live").await.unwrap();
    assert!(store.session_account("live").await.unwrap().is_none());

    let t = store
        .create_api_token(
            &admin(),
            acct.id,
            "gate",
            "tokhash",
            &["registry:read".into()],
            None,
        )
        .await
        .unwrap();
    assert_eq!(t.scopes, ["registry:read"]);
    assert!(store.api_token_account("tokhash").await.unwrap().is_some());
    store.revoke_api_token(&admin(), t.id).await.unwrap();
    assert!(store.api_token_account("tokhash").await.unwrap().is_none());
    assert!(matches!(
        store.revoke_api_token(&admin(), t.id).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.revoke_api_token(&admin(), 9999).await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn concurrent_writes_keep_one_audit_chain(store: &Store, _: Engine) {
    seed_places(store).await;
    let all = DataScope::everything();
    let mut tasks = vec![];
    for i in 0..40 {
        let store = store.clone();
        let all = all.clone();
        tasks.push(tokio::spawn(async move {
            let d = raw_place(
                &format!("150207.BYXL.KY.G{i}"),
                &format!("第{i}网格"),
                "grid",
                Some("150207.BYXL.KY"),
            );
            store.create_place(&Actor::system("c"), &all, &d).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        store.audit_verify().await.unwrap(),
        Verification::Intact { entries: 47 }
    );
    let ky = store
        .place_by_code("150207.BYXL.KY")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.place_children(Some(ky.id), &all).await.unwrap().len(),
        40
    );
}

#[tokio::test]
async fn sqlite_backup_is_a_consistent_copy() {
    let store = TestStore::new(Engine::Sqlite).await.unwrap();
    seed_places(&store).await;
    let dir = lianxin_store::testing::TempDir::new("lianxin-backup").unwrap();
    let dest = dir.0.join("copy.db");
    store.backup_to(&dest).await.unwrap();
    assert!(
        store.backup_to(&dest).await.is_err(),
        "an existing file is never overwritten"
    );
    let copy = Store::open(&format!("sqlite://{}", dest.display()))
        .await
        .unwrap();
    assert!(copy
        .place_by_code("150207.BYXL.KY")
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        copy.audit_verify().await.unwrap(),
        Verification::Intact { entries: 7 }
    );
}

async fn relations_respect_scope_and_time(store: &Store, _: Engine) {
    seed_places(store).await;
    let all = DataScope::everything();
    let key = PiiKey::from_master(&[3; 32]);
    for (code, serves) in [("KY-DW", "150207.BYXL.KY"), ("HY-DW", "150207.BYXL.HY")] {
        let d = OrgDraft::parse(&RawOrg {
            code: code.into(),
            name: code.into(),
            kind: "party_committee".into(),
            parent_code: None,
            serves: vec![serves.into()],
        })
        .unwrap();
        store.create_org(&admin(), &all, &d).await.unwrap();
    }
    // Someone living in Chifeng, a member of 开元社区's committee for a while.
    let person = store
        .create_person(
            &admin(),
            &all,
            &PersonDraft::parse(
                &RawPerson {
                    name: "流动党员".into(),
                    place_code: "150400".into(),
                    ..Default::default()
                },
                &key,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let member = |org: &str, to: Option<&str>| {
        RelationDraft::parse(&RawRelation {
            kind: "member_of".into(),
            org_code: Some(org.into()),
            valid_from: "2020-01-01".into(),
            valid_to: to.map(Into::into),
            ..Default::default()
        })
        .unwrap()
    };
    let ky = store.org_by_code("KY-DW").await.unwrap().unwrap();
    let org_scope = DataScope {
        place_path: None,
        org_path: Some(ky.path.clone()),
    };
    // A relation to an organisation outside the caller's scope is refused as unknown.
    let ky_place = store
        .place_by_code("150207.BYXL.KY")
        .await
        .unwrap()
        .unwrap();
    let place_scope = scope_of(&ky_place.path);
    let local = store
        .create_person(
            &admin(),
            &all,
            &PersonDraft::parse(
                &RawPerson {
                    name: "本地".into(),
                    place_code: "150207.BYXL.KY".into(),
                    ..Default::default()
                },
                &key,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let err = store
        .create_relation(&admin(), &place_scope, local.id, &member("HY-DW", None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(ref v) if v.code == "unknown_org"),
        "{err:?}"
    );
    store
        .create_relation(&admin(), &place_scope, local.id, &member("KY-DW", None))
        .await
        .unwrap();
    // A current membership makes the person visible to the org-scoped account; an
    // ended one does not.
    let rel = store
        .create_relation(&admin(), &all, person.id, &member("KY-DW", None))
        .await
        .unwrap();
    assert!(store.person(person.id, &org_scope).await.is_ok());
    store
        .end_relation(
            &admin(),
            &all,
            rel.id,
            parse_day("d", "2024-01-01").unwrap(),
        )
        .await
        .unwrap();
    assert!(matches!(
        store.person(person.id, &org_scope).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// On SQLite concurrent writes share one transaction; a write that fails must roll
/// back only itself, and every other write in the batch must still commit.
async fn a_failing_write_does_not_sink_its_neighbours(store: &Store, _: Engine) {
    seed_places(store).await;
    let all = DataScope::everything();
    let mut tasks = vec![];
    for i in 0..60 {
        let store = store.clone();
        let all = all.clone();
        tasks.push(tokio::spawn(async move {
            // Every third write reuses a code: all but the first of each such pair fail.
            let code = if i % 3 == 0 {
                format!("150207.BYXL.KY.D{}", i / 6)
            } else {
                format!("150207.BYXL.KY.U{i}")
            };
            let d = raw_place(&code, "网格", "grid", Some("150207.BYXL.KY"));
            (
                code,
                store.create_place(&Actor::system("c"), &all, &d).await,
            )
        }));
    }
    let mut ok = std::collections::HashSet::new();
    let mut conflicts = 0;
    for t in tasks {
        let (code, r) = t.await.unwrap();
        match r {
            Ok(p) => assert!(ok.insert(p.code), "{code} created twice"),
            Err(StoreError::Conflict { .. }) => conflicts += 1,
            Err(e) => panic!("{code}: {e:?}"),
        }
    }
    assert_eq!((ok.len(), conflicts), (50, 10));
    let ky = store
        .place_by_code("150207.BYXL.KY")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.place_children(Some(ky.id), &all).await.unwrap().len(),
        50
    );
    assert_eq!(
        store.audit_verify().await.unwrap(),
        Verification::Intact { entries: 57 }
    );
}

// ----- the demand loop -----

async fn seed_loop(store: &Store) -> (i64, i64, lianxin_store::registry::Place) {
    use lianxin_store::demands::Category;
    seed_places(store).await;
    let all = DataScope::everything();
    let org = store
        .create_org(
            &admin(),
            &all,
            &OrgDraft::parse(&RawOrg {
                code: "KY-DW".into(),
                name: "开元社区党委".into(),
                kind: "party_committee".into(),
                parent_code: None,
                serves: vec!["150207.BYXL.KY".into()],
            })
            .unwrap(),
        )
        .await
        .unwrap();
    let other = store
        .create_org(
            &admin(),
            &all,
            &OrgDraft::parse(&RawOrg {
                code: "BYXL-DGW".into(),
                name: "白音席勒街道党工委".into(),
                kind: "party_committee".into(),
                parent_code: None,
                serves: vec!["150207.BYXL".into()],
            })
            .unwrap(),
        )
        .await
        .unwrap();
    store
        .upsert_category(
            &admin(),
            &Category {
                code: "other".into(),
                name_zh: "其他".into(),
                name_en: "Other".into(),
                description: String::new(),
                default_urgency: lianxin_domain::demand::Urgency::Ordinary,
                attributes: serde_json::json!([{"code": "x"}]),
                keywords: String::new(),
                sort: 1,
                active: true,
            },
        )
        .await
        .unwrap();
    let place = store
        .place_by_code("150207.BYXL.KY")
        .await
        .unwrap()
        .unwrap();
    (org.id, other.id, place)
}

fn new_demand(
    owner: i64,
    place: &lianxin_store::registry::Place,
    token: &str,
    photos: Vec<Vec<u8>>,
) -> lianxin_store::demands::NewDemand {
    use lianxin_domain::demand::{LoopState, Status, Urgency};
    use lianxin_domain::rates::{DemandOutcome, RateCounts};
    let now = chrono::Utc::now();
    let deadline = now + chrono::Duration::days(7);
    let state = LoopState::received(owner, deadline, now).unwrap();
    let outcome = DemandOutcome::from_loop(&state, now, deadline, deadline, None);
    assert_eq!(outcome.status, Status::Received);
    lianxin_store::demands::NewDemand {
        region: place.region.clone(),
        kind: lianxin_domain::intake::DemandKind::Help,
        category: "other".into(),
        urgency: Urgency::Ordinary,
        channel: lianxin_domain::intake::Channel::Web,
        title: "楼道灯".into(),
        description: "楼道灯坏了".into(),
        place_id: place.id,
        place_path: place.path.clone(),
        lat: Some(40.6),
        lon: None,
        address: None,
        attributes: Some(serde_json::json!({"x": "1"})),
        reporter_account_id: None,
        reporter_name: Some("王".into()),
        reporter_phone: None,
        token_hash: PiiKey::token_hash(token),
        status: Status::Received,
        owner_id: owner,
        handler_id: None,
        deadline,
        response_deadline: deadline,
        handling_deadline: deadline,
        timer_at: Some(deadline),
        timer_kind: Some("overdue".into()),
        counted_bits: RateCounts::of(&outcome, now).to_bits().unwrap(),
        received_at: now,
        visit_id: None,
        photos: photos
            .into_iter()
            .map(|bytes| lianxin_store::demands::NewPhoto {
                content_type: "image/png".into(),
                sha256: "x".into(),
                bytes,
            })
            .collect(),
        event: lianxin_store::demands::NewEvent {
            actor: "public".into(),
            actor_name: "居民".into(),
            action: "submit".into(),
            unit_id: Some(owner),
            note: None,
        },
    }
}

async fn demands_store_steps_photos_and_cells(store: &Store, _: Engine) {
    use lianxin_domain::demand::Status;
    use lianxin_store::demands::{DemandQuery, NewEvent, RateGroup, Step};
    let (ky, street, place) = seed_loop(store).await;
    // Binary photos round-trip byte for byte (all 256 byte values).
    let photo: Vec<u8> = (0..=255u8).collect();
    let id = store
        .insert_demand(new_demand(ky, &place, "tok-1", vec![photo.clone()]))
        .await
        .unwrap();
    let d = store.demand(id).await.unwrap();
    assert_eq!(d.status, Status::Received);
    assert_eq!(d.owner_name, "开元社区党委");
    assert_eq!(d.place_code, "150207.BYXL.KY");
    assert_eq!(d.photo_count, 1);
    assert_eq!(d.attributes, Some(serde_json::json!({"x": "1"})));
    let photo_id = store.demand_photo_ids(id).await.unwrap()[0];
    assert_eq!(store.demand_photo(id, photo_id).await.unwrap().1, photo);
    assert_eq!(
        store
            .demand_by_token(&PiiKey::token_hash("tok-1"))
            .await
            .unwrap()
            .map(|d| d.id),
        Some(id)
    );
    assert!(store
        .demand_by_token(&PiiKey::token_hash("tok-2"))
        .await
        .unwrap()
        .is_none());
    // A second demand with the same token hash is refused whole: no orphan photo.
    let again = store
        .insert_demand(new_demand(ky, &place, "tok-1", vec![vec![1, 2, 3]]))
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict { .. })),
        "{again:?}"
    );
    // A step moves the owner; the rate cell follows it.
    let moved = store
        .demand_step(id, move |d| {
            let mut next = d.clone();
            next.status = Status::Assessed;
            next.owner_id = street;
            next.counted_unit = street;
            next.timer_at = None;
            Ok(Step {
                at: chrono::Utc::now(),
                next,
                event: Some(NewEvent {
                    actor: "test".into(),
                    actor_name: "测试".into(),
                    action: "assess".into(),
                    unit_id: None,
                    note: Some("备注".into()),
                }),
                notices: vec![lianxin_store::demands::NewNotice {
                    unit_id: Some(street),
                    account_id: None,
                    kind: "assigned".into(),
                }],
            })
        })
        .await
        .unwrap();
    assert_eq!(moved.version, 2);
    assert_eq!(moved.owner_name, "白音席勒街道党工委");
    let events = store.demand_events(id).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].from_status, Some(Status::Received));
    assert_eq!(events[1].note.as_deref(), Some("备注"));
    let today = lianxin_domain::calendar::local_day(chrono::Utc::now());
    let by_unit = store
        .rate_counts(today, today, None, None, RateGroup::Unit)
        .await
        .unwrap();
    let street_row = by_unit
        .iter()
        .find(|r| r.key == street.to_string())
        .expect("the street's cell");
    assert_eq!(street_row.counts.received, 1);
    let ky_row = by_unit.iter().find(|r| r.key == ky.to_string());
    assert!(ky_row.is_none_or(|r| r.counts.received == 0));
    assert_eq!(
        store.notices(Some(&[street]), None, 10).await.unwrap()[0].kind,
        "assigned"
    );
    // The queue's query by unit and by place.
    let q = DemandQuery {
        units: Some(vec![street]),
        limit: 10,
        ..DemandQuery::default()
    };
    assert_eq!(store.search_demands(&q).await.unwrap().len(), 1);
    let q = DemandQuery {
        units: Some(vec![9999]),
        place_path: Some("/150000/150400/".into()),
        limit: 10,
        ..DemandQuery::default()
    };
    assert!(store.search_demands(&q).await.unwrap().is_empty());
    // The history is append-only.
    let edit = sqlx_edit(store, "UPDATE demand_events SET note = 'x'").await;
    assert!(edit.is_err());
}

async fn sqlx_edit(store: &Store, sql: &str) -> Result<(), String> {
    let pool = sqlx::AnyPool::connect(&any_url(store))
        .await
        .map_err(|e| e.to_string())?;
    sqlx::query(sql)
        .execute(&pool)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn any_url(store: &Store) -> String {
    store.url().to_string()
}

async fn demand_steps_refuse_a_stale_version(store: &Store, _: Engine) {
    use lianxin_domain::demand::Status;
    use lianxin_store::demands::Step;
    let (ky, _, place) = seed_loop(store).await;
    let id = store
        .insert_demand(new_demand(ky, &place, "tok-3", vec![]))
        .await
        .unwrap();
    let stale = store.demand(id).await.unwrap();
    let step = |d: &lianxin_store::demands::Demand, status| {
        let mut next = d.clone();
        next.status = status;
        Step {
            at: chrono::Utc::now(),
            next,
            event: None,
            notices: vec![],
        }
    };
    store
        .demand_step(id, move |d| Ok(step(d, Status::Assessed)))
        .await
        .unwrap();
    // A decision based on an old read loses: the version moved on.
    let r = store
        .demand_step(id, move |_| Ok(step(&stale, Status::Rejected)))
        .await;
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "{r:?}");
    assert_eq!(store.demand(id).await.unwrap().status, Status::Assessed);
    // A refusal writes nothing.
    let r = store
        .demand_step(id, |_| {
            Err(StoreError::Invalid(lianxin_domain::ValidationError::new(
                "action",
                "wrong_state",
                "no",
            )))
        })
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))));
    assert_eq!(store.demand(id).await.unwrap().version, 2);
    // Timers: due ones are found, in order.
    let far = chrono::Utc::now() + chrono::Duration::days(30);
    assert_eq!(store.due_demands(far, 10).await.unwrap(), vec![id]);
    assert!(store
        .due_demands(chrono::Utc::now(), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.next_timer().await.unwrap().is_some());
}

async fn idempotency_claims(store: &Store, _: Engine) {
    use lianxin_store::demands::Claim;
    assert_eq!(
        store.claim_idempotency_key("k", "h1", 60).await.unwrap(),
        Claim::New
    );
    assert_eq!(
        store.claim_idempotency_key("k", "h1", 60).await.unwrap(),
        Claim::InFlight
    );
    assert_eq!(
        store.claim_idempotency_key("k", "h2", 60).await.unwrap(),
        Claim::Mismatch
    );
    store
        .record_idempotent_response("k", 201, "application/json\n{}")
        .await
        .unwrap();
    assert_eq!(
        store.claim_idempotency_key("k", "h1", 60).await.unwrap(),
        Claim::Replay {
            status: 201,
            body: "application/json\n{}".into()
        }
    );
    // A released claim runs again; a stale one is taken over.
    store.claim_idempotency_key("r", "h", 60).await.unwrap();
    store.release_idempotency_key("r").await.unwrap();
    assert_eq!(
        store.claim_idempotency_key("r", "h", 60).await.unwrap(),
        Claim::New
    );
    assert_eq!(
        store.claim_idempotency_key("r", "h", -1).await.unwrap(),
        Claim::New
    );
    let purged = store
        .purge_idempotency_keys(chrono::Utc::now() + chrono::Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(purged, 2);
}

async fn routing_rules_and_time_limits(store: &Store, _: Engine) {
    use lianxin_domain::calendar::TimeLimit;
    use lianxin_domain::demand::Urgency;
    let (ky, street, place) = seed_loop(store).await;
    let street_place = store.place_by_code("150207.BYXL").await.unwrap().unwrap();
    let r1 = store
        .create_routing_rule(&admin(), None, place.id, ky)
        .await
        .unwrap();
    store
        .create_routing_rule(&admin(), Some("other"), street_place.id, street)
        .await
        .unwrap();
    let dup = store
        .create_routing_rule(&admin(), None, place.id, street)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })));
    let rules = store.routing_rules().await.unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].place_code, "150207.BYXL", "ordered by path");
    assert_eq!(rules[1].category, None);
    store.delete_routing_rule(&admin(), r1).await.unwrap();
    assert!(matches!(
        store.delete_routing_rule(&admin(), r1).await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .set_time_limit(
            &admin(),
            Some("other"),
            Urgency::Emergency,
            Some(TimeLimit::parse("4h").unwrap()),
        )
        .await
        .unwrap();
    store
        .set_time_limit(
            &admin(),
            None,
            Urgency::Ordinary,
            Some(TimeLimit::parse("5wd").unwrap()),
        )
        .await
        .unwrap();
    let limits = store.time_limits().await.unwrap();
    assert_eq!(limits.len(), 2);
    assert!(limits
        .iter()
        .any(|l| l.category.is_none() && l.time_limit == "5wd"));
    store
        .set_time_limit(&admin(), None, Urgency::Ordinary, None)
        .await
        .unwrap();
    assert_eq!(store.time_limits().await.unwrap().len(), 1);
    store
        .set_calendar_year(&admin(), 2027, "[2027]\n")
        .await
        .unwrap();
    assert_eq!(store.calendar_years().await.unwrap()[0].0, 2027);
    // Every change is on the audit trail.
    assert!(matches!(
        store.audit_verify().await.unwrap(),
        Verification::Intact { .. }
    ));
    let cats = store.categories(true).await.unwrap();
    assert_eq!(cats[0].attributes, serde_json::json!([{"code": "x"}]));
}

async fn rates_over_months_agree_with_a_scan(store: &Store, _: Engine) {
    use lianxin_domain::rates::RateCounts;
    use lianxin_store::demands::RateGroup;
    let (ky, street, place) = seed_loop(store).await;
    let now = chrono::Utc::now();
    // Demands received over the last 100 days, for two units: whole months and edge days.
    let mut demands = Vec::new();
    for k in 0..100i64 {
        let mut d = new_demand(
            if k % 3 == 0 { street } else { ky },
            &place,
            &format!("tok-m{k}"),
            vec![],
        );
        d.received_at = now - chrono::Duration::days(k) - chrono::Duration::hours(k % 7);
        demands.push(d);
    }
    assert_eq!(store.import_demands(&demands).await.unwrap(), 100);
    let today = lianxin_domain::calendar::local_day(now);
    for (from, to) in [
        (today - chrono::Duration::days(99), today),
        (
            today - chrono::Duration::days(40),
            today - chrono::Duration::days(3),
        ),
        (
            today - chrono::Duration::days(65),
            today - chrono::Duration::days(31),
        ),
        (today, today),
    ] {
        let scan = store
            .rate_counts_by_scan(from, to, None, now)
            .await
            .unwrap();
        let total = store
            .rate_counts(from, to, None, None, RateGroup::Total)
            .await
            .unwrap();
        assert_eq!(total.len(), 1);
        assert_eq!(total[0].counts, scan, "{from}..{to}");
        let mut by_unit = RateCounts::default();
        for row in store
            .rate_counts(from, to, None, None, RateGroup::Unit)
            .await
            .unwrap()
        {
            by_unit.merge(&row.counts);
        }
        assert_eq!(by_unit, scan, "{from}..{to} by unit");
        let by_day = store
            .rate_counts(from, to, Some(&place.path), None, RateGroup::Day)
            .await
            .unwrap();
        assert_eq!(
            by_day.iter().map(|r| r.counts.received).sum::<u64>(),
            scan.received
        );
    }
}
