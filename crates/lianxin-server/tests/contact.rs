//! Contact points over HTTP: points and their priority, links, the re-match and
//! handover when a post ends, visits with the demands they collect, the district
//! view, and the bad inputs the issue names.

mod common;

use common::{expect_error, login, spawn_app, App, PASSWORD};
use lianxin_domain::draft::*;
use lianxin_domain::role::{DataScope, Role};
use lianxin_store::accounts::NewAccount;
use lianxin_store::audit::Actor;
use serde_json::{json, Value};

/// Officials of the test district: (name, post or none, login).
const OFFICIALS: [(&str, Option<&str>, Option<&str>); 4] = [
    ("甲书记", Some("区委常委"), Some("off.a")),
    ("乙部长", Some("区委副书记"), Some("off.b")),
    ("丙常委", Some("区委常委"), Some("off.c")),
    ("丁群众", None, None),
];

/// Creates the officials (with posts at JY-QW from 2024) and their logins; returns
/// their person ids in `OFFICIALS` order.
async fn officials(app: &App) -> Vec<i64> {
    let actor = Actor::system("test");
    let all = DataScope::everything();
    let mut ids = Vec::new();
    for (name, post, login) in OFFICIALS {
        let p = app
            .store
            .create_person(
                &actor,
                &all,
                &PersonDraft::parse(
                    &RawPerson {
                        name: name.into(),
                        party_member: Some(true),
                        place_code: "150207".into(),
                        ..Default::default()
                    },
                    &app.key,
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
            app.store
                .create_relation(&actor, &all, p.id, &d)
                .await
                .unwrap();
        }
        if let Some(username) = login {
            app.store
                .create_account(
                    &actor,
                    &NewAccount {
                        username: username.into(),
                        display_name: name.into(),
                        password_hash: lianxin_server::auth::hash_password(PASSWORD).unwrap(),
                        role: Role::Official,
                        scope_place_code: Some("150207".into()),
                        scope_org_code: None,
                        person_id: Some(p.id),
                    },
                )
                .await
                .unwrap();
        }
        ids.push(p.id);
    }
    ids
}

async fn post(c: &reqwest::Client, csrf: &str, url: String, body: Value) -> reqwest::Response {
    c.post(url)
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get(c: &reqwest::Client, url: String) -> Value {
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}

/// Creates a community point with these indicators; returns its id.
async fn point(app: &App, c: &reqwest::Client, csrf: &str, place: &str, ind: [u8; 3]) -> i64 {
    let r = post(
        c,
        csrf,
        format!("{}/api/v1/points", app.base),
        json!({"kind": "community", "place": place, "task_load": ind[0], "weakness": ind[1], "complexity": ind[2]}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let b: Value = r.json().await.unwrap();
    b["point"]["id"].as_i64().unwrap()
}

async fn link(
    app: &App,
    c: &reqwest::Client,
    csrf: &str,
    point: i64,
    person: i64,
) -> reqwest::Response {
    post(
        c,
        csrf,
        format!("{}/api/v1/points/{point}/links", app.base),
        json!({"person_id": person, "valid_from": "2025-01-01"}),
    )
    .await
}

fn reason(b: &Value) -> &str {
    b["error"]["reason"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_post_change_opens_a_rematch_and_the_successor_takes_over() {
    for engine in common::engines() {
        a_post_change_opens_a_rematch_and_the_successor_takes_over_on(spawn_app(engine).await)
            .await;
    }
}

async fn a_post_change_opens_a_rematch_and_the_successor_takes_over_on(app: App) {
    let ids = officials(&app).await;
    let (admin, acsrf) = login(&app, "admin").await;
    let ky = point(&app, &admin, &acsrf, "150207.BYXL.KY", [90, 80, 80]).await;
    let hx = point(&app, &admin, &acsrf, "150207.BYXL.HX", [40, 40, 40]).await;
    // The priority is explained: (90 + 80 + 80) / 3 with equal weights.
    let p = get(&admin, format!("{}/api/v1/points/{ky}", app.base)).await;
    assert!(
        (p["priority"]["score"].as_f64().unwrap() - 83.3).abs() < 0.05,
        "{p}"
    );
    assert_eq!(p["priority"]["parts"].as_array().unwrap().len(), 3);
    assert_eq!(p["priority"]["high"], true);
    assert_eq!(link(&app, &admin, &acsrf, ky, ids[0]).await.status(), 201);
    assert_eq!(link(&app, &admin, &acsrf, hx, ids[1]).await.status(), 201);

    // 甲 visits the point, collects a demand and promises a follow-up.
    let (a, a_csrf) = login(&app, "off.a").await;
    let today = lianxin_domain::calendar::local_day(chrono::Utc::now());
    let r = post(
        &a,
        &a_csrf,
        format!("{}/api/v1/visits", app.base),
        json!({
            "point_id": ky, "kind": "forum", "date": today.to_string(),
            "participants": ["社区书记", "居民代表"], "notes": "座谈了解加装电梯意见",
            "follow_up": "两周后回访",
            "demands": [{"category": "utilities", "description": "3号楼冬季暖气不热"}],
        }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let visit = v["visit"]["id"].as_i64().unwrap();
    let demand = v["demands"][0]["id"].as_i64().unwrap();
    let shown = get(&a, format!("{}/api/v1/visits/{visit}", app.base)).await;
    assert_eq!(
        shown["demands"][0]["id"], demand,
        "the visit shows its demand's follow-up"
    );
    assert_eq!(
        shown["visit"]["participants"],
        json!(["社区书记", "居民代表"])
    );
    let d = get(&admin, format!("{}/api/v1/demands/{demand}", app.base)).await;
    assert_eq!(d["demand"]["channel"], "visit", "{d}");

    // 甲's post ends: the link ends the same day and a re-match opens.
    let rels = get(
        &admin,
        format!("{}/api/v1/people/{}/relations", app.base, ids[0]),
    )
    .await;
    let post_id = rels["relations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "holds_post")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = post(
        &admin,
        &acsrf,
        format!("{}/api/v1/relations/{post_id}/end", app.base),
        json!({"on": today.to_string()}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let open = get(&admin, format!("{}/api/v1/rematches?status=open", app.base)).await;
    let list = open["rematches"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{open}");
    assert_eq!(list[0]["point_id"], ky);
    let rid = list[0]["id"].as_i64().unwrap();
    // Until someone takes over, the district view warns: the point is high priority.
    let view = get(&admin, format!("{}/api/v1/governance/district", app.base)).await;
    let warned = |view: &Value, code: &str| {
        view["view"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == code && w["point_id"] == ky)
    };
    assert!(warned(&view, "unlinked_high_priority"), "{view}");

    // Candidates: the same post first (丙), then 乙; 丁 holds no post and is absent.
    let m = get(&admin, format!("{}/api/v1/rematches/{rid}", app.base)).await;
    let names: Vec<&str> = m["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["丙常委", "乙部长"], "{m}");

    // A handover to someone who holds no post is refused.
    let r = post(
        &admin,
        &acsrf,
        format!("{}/api/v1/rematches/{rid}/confirm", app.base),
        json!({"successor_id": ids[3]}),
    )
    .await;
    let b = expect_error(r, 422, "invalid_field").await;
    assert_eq!(reason(&b), "holds_no_post", "{b}");

    // The admin confirms 丙; the open demand and the follow-up are handed over.
    let r = post(
        &admin,
        &acsrf,
        format!("{}/api/v1/rematches/{rid}/confirm", app.base),
        json!({"successor_id": ids[2]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    let kinds: Vec<(&str, i64)> = b["rematch"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["kind"].as_str().unwrap(), i["item_id"].as_i64().unwrap()))
        .collect();
    assert_eq!(kinds, [("demand", demand), ("follow_up", visit)], "{b}");
    // Confirming twice is a conflict, not a second successor.
    let r = post(
        &admin,
        &acsrf,
        format!("{}/api/v1/rematches/{rid}/confirm", app.base),
        json!({"successor_id": ids[1]}),
    )
    .await;
    expect_error(r, 409, "conflict").await;
    // Still unlinked until the successor acknowledges, with the handover pending.
    let view = get(&admin, format!("{}/api/v1/governance/district", app.base)).await;
    assert!(warned(&view, "unlinked_high_priority") && warned(&view, "handover_pending"));

    // Only the successor can acknowledge.
    let (b_client, b_csrf) = login(&app, "off.b").await;
    let r = post(
        &b_client,
        &b_csrf,
        format!("{}/api/v1/rematches/{rid}/acknowledge", app.base),
        json!({}),
    )
    .await;
    expect_error(r, 404, "not_found").await;
    let (c, c_csrf) = login(&app, "off.c").await;
    let mine = get(&c, format!("{}/api/v1/handovers", app.base)).await;
    assert_eq!(mine["handovers"][0]["id"], rid);
    let r = post(
        &c,
        &c_csrf,
        format!("{}/api/v1/rematches/{rid}/acknowledge", app.base),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let view = get(&admin, format!("{}/api/v1/governance/district", app.base)).await;
    assert!(!warned(&view, "unlinked_high_priority") && !warned(&view, "handover_pending"));
    let p = get(&admin, format!("{}/api/v1/points/{ky}", app.base)).await;
    let links = p["links"].as_array().unwrap();
    assert_eq!(links.len(), 2, "the history keeps both: {p}");
    assert_eq!(links[0]["valid_to"], today.to_string());
    assert_eq!(links[1]["person_id"], ids[2]);
    assert_eq!(links[1]["rematch_id"], rid);
    // The follow-up is 丙's now: 甲 can no longer close it, 丙 can.
    let r = post(
        &a,
        &a_csrf,
        format!("{}/api/v1/visits/{visit}/follow-up", app.base),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 409);
    let r = post(
        &c,
        &c_csrf,
        format!("{}/api/v1/visits/{visit}/follow-up", app.base),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error() {
    let app = spawn_app(lianxin_store::Engine::Sqlite).await;
    let ids = officials(&app).await;
    let (admin, acsrf) = login(&app, "admin").await;
    let ky = point(&app, &admin, &acsrf, "150207.BYXL.KY", [50, 50, 50]).await;
    let hx = point(&app, &admin, &acsrf, "150207.BYXL.HX", [50, 50, 50]).await;
    assert_eq!(link(&app, &admin, &acsrf, ky, ids[0]).await.status(), 201);

    // Overlapping assignments the rules forbid: the same point twice …
    let b = expect_error(
        link(&app, &admin, &acsrf, ky, ids[0]).await,
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(reason(&b), "overlapping_link");
    // … and more points than the rules allow.
    let r = admin
        .put(format!("{}/api/v1/governance/rules", app.base))
        .header("x-csrf-token", &acsrf)
        .json(&json!({"weight_task_load": 1.0, "weight_weakness": 1.0, "weight_complexity": 1.0,
            "min_visits_per_year": 4, "max_points_per_official": 1, "tier_advanced": 80.0, "tier_lagging": 60.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b = expect_error(
        link(&app, &admin, &acsrf, hx, ids[0]).await,
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(reason(&b), "too_many_points");
    // A link for someone who holds no post.
    let b = expect_error(
        link(&app, &admin, &acsrf, hx, ids[3]).await,
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(reason(&b), "holds_no_post");
    // Rules that make no sense.
    let r = admin
        .put(format!("{}/api/v1/governance/rules", app.base))
        .header("x-csrf-token", &acsrf)
        .json(&json!({"weight_task_load": 0.0, "weight_weakness": 0.0, "weight_complexity": 0.0,
            "min_visits_per_year": 4, "max_points_per_official": 2, "tier_advanced": 80.0, "tier_lagging": 60.0}))
        .send()
        .await
        .unwrap();
    expect_error(r, 422, "invalid_field").await;
    // Indicators out of range, and a point at a place that does not exist.
    let r = post(&admin, &acsrf, format!("{}/api/v1/points", app.base),
        json!({"kind": "community", "place": "150207.BYXL.HX", "task_load": 101, "weakness": 1, "complexity": 1})).await;
    assert_eq!(r.status(), 422);
    let r = post(&admin, &acsrf, format!("{}/api/v1/points", app.base),
        json!({"kind": "community", "place": "150207.NOPE", "task_load": 1, "weakness": 1, "complexity": 1})).await;
    expect_error(r, 422, "invalid_field").await;
    // The same place twice is a conflict.
    let r = post(&admin, &acsrf, format!("{}/api/v1/points", app.base),
        json!({"kind": "community", "place": "150207.BYXL.KY", "task_load": 1, "weakness": 1, "complexity": 1})).await;
    expect_error(r, 409, "conflict").await;

    // A visit dated in the future; nothing is saved, and a bad demand on a visit
    // leaves no visit behind either.
    let (a, a_csrf) = login(&app, "off.a").await;
    let tomorrow = lianxin_domain::calendar::local_day(chrono::Utc::now())
        .succ_opt()
        .unwrap();
    let r = post(
        &a,
        &a_csrf,
        format!("{}/api/v1/visits", app.base),
        json!({"point_id": ky, "kind": "household", "date": tomorrow.to_string()}),
    )
    .await;
    let b = expect_error(r, 422, "invalid_field").await;
    assert_eq!(reason(&b), "visit_in_future");
    let r = post(
        &a,
        &a_csrf,
        format!("{}/api/v1/visits", app.base),
        json!({"point_id": ky, "kind": "household", "date": "2025-06-01",
               "demands": [{"category": "no_such_category", "description": "x"}]}),
    )
    .await;
    let b = expect_error(r, 422, "invalid_field").await;
    assert!(
        b["error"]["field"]
            .as_str()
            .unwrap()
            .starts_with("demands[0]."),
        "{b}"
    );
    let r = post(
        &a,
        &a_csrf,
        format!("{}/api/v1/visits", app.base),
        json!({"point_id": ky, "kind": "walkabout", "date": "2025-06-01"}),
    )
    .await;
    expect_error(r, 422, "invalid_field").await;
    let visits = get(&a, format!("{}/api/v1/visits", app.base)).await;
    assert_eq!(
        visits["visits"].as_array().unwrap().len(),
        0,
        "nothing was saved"
    );
    // Officials record their own visits only; roles without the permission cannot.
    let r = post(
        &a,
        &a_csrf,
        format!("{}/api/v1/visits", app.base),
        json!({"point_id": ky, "person_id": ids[1], "kind": "forum", "date": "2025-06-01"}),
    )
    .await;
    expect_error(r, 403, "forbidden").await;
    let (res, res_csrf) = login(&app, "resident").await;
    let r = post(
        &res,
        &res_csrf,
        format!("{}/api/v1/visits", app.base),
        json!({"point_id": ky, "kind": "forum", "date": "2025-06-01"}),
    )
    .await;
    expect_error(r, 403, "forbidden").await;
    // A community worker sees only their community's points.
    let (w, _) = login(&app, "ky.worker").await;
    let pts = get(&w, format!("{}/api/v1/points", app.base)).await;
    assert_eq!(pts["points"].as_array().unwrap().len(), 1);
    let r = w
        .get(format!("{}/api/v1/points/{hx}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn the_district_view_counts_what_was_recorded_and_exports_it() {
    for engine in common::engines() {
        the_district_view_counts_what_was_recorded_and_exports_it_on(spawn_app(engine).await).await;
    }
}

async fn the_district_view_counts_what_was_recorded_and_exports_it_on(app: App) {
    let ids = officials(&app).await;
    let (admin, acsrf) = login(&app, "admin").await;
    let ky = point(&app, &admin, &acsrf, "150207.BYXL.KY", [50, 50, 50]).await;
    let hx = point(&app, &admin, &acsrf, "150207.BYXL.HX", [20, 20, 20]).await;
    link(&app, &admin, &acsrf, ky, ids[0]).await;
    link(&app, &admin, &acsrf, hx, ids[1]).await;
    let (a, a_csrf) = login(&app, "off.a").await;
    let (b, b_csrf) = login(&app, "off.b").await;
    let year = 2025;
    // 甲: three visits to KY with two demands in all; 乙: one visit to HX, no demand.
    for (i, demands) in [1, 1, 0].into_iter().enumerate() {
        let list: Vec<Value> = (0..demands)
            .map(|_| json!({"category": "other", "description": format!("诉求{i}")}))
            .collect();
        let r = post(&a, &a_csrf, format!("{}/api/v1/visits", app.base),
            json!({"point_id": ky, "kind": "household", "date": format!("{year}-0{}-10", i + 3), "demands": list})).await;
        let st = r.status();
        assert_eq!(st, 201, "{}", r.text().await.unwrap());
    }
    let r = post(
        &b,
        &b_csrf,
        format!("{}/api/v1/visits", app.base),
        json!({"point_id": hx, "kind": "inspection", "date": format!("{year}-05-01")}),
    )
    .await;
    assert_eq!(r.status(), 201);
    // Demands collected now count in this year's view (received today); visits in 2025's.
    let v = get(
        &admin,
        format!("{}/api/v1/governance/district?year={year}", app.base),
    )
    .await;
    assert_eq!(v["view"]["totals"]["visits"], 4, "{v}");
    let this_year = lianxin_domain::calendar::local_day(chrono::Utc::now());
    // Answer one of the two demands: the share answered and the time to answer move.
    let mine = get(&admin, format!("{}/api/v1/demands?limit=10", app.base)).await;
    let first = mine["demands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .min()
        .unwrap();
    let ky_unit = app.store.org_by_code("KY-DW").await.unwrap().unwrap().id;
    for step in [
        json!({"action": "assess"}),
        json!({"action": "assign", "unit_id": ky_unit}),
        json!({"action": "start"}),
        json!({"action": "answer", "text": "已处理"}),
    ] {
        let r = post(
            &admin,
            &acsrf,
            format!("{}/api/v1/demands/{first}/actions", app.base),
            step,
        )
        .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let now = get(
        &admin,
        format!(
            "{}/api/v1/governance/district?year={}",
            app.base,
            chrono::Datelike::year(&this_year)
        ),
    )
    .await;
    assert_eq!(now["view"]["totals"]["demands"], 2, "{now}");
    assert_eq!(now["view"]["totals"]["answered"], 1, "{now}");
    assert!(now["view"]["totals"]["median_hours_to_answer"]
        .as_f64()
        .is_some_and(|h| h >= 0.0));
    let by_official: Vec<(String, i64)> = v["view"]["officials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                o["figures"]["visits"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_official,
        [("甲书记".to_string(), 3), ("乙部长".to_string(), 1)]
    );
    // 2025 is past: the norm (4 a year) is owed in full, so both points are behind.
    let behind = v["view"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["code"] == "visits_behind")
        .count();
    assert_eq!(behind, 2);
    // The tallies agree with counting the visits table.
    let scope = DataScope::everything();
    let fast = app
        .store
        .district_view(&scope, year, this_year)
        .await
        .unwrap();
    let slow = app
        .store
        .district_view_by_scan(&scope, year, this_year)
        .await
        .unwrap();
    assert_eq!(fast, slow);
    // A bad year is a clear error.
    let r = admin
        .get(format!(
            "{}/api/v1/governance/district?year=99999",
            app.base
        ))
        .send()
        .await
        .unwrap();
    expect_error(r, 422, "invalid_field").await;

    // The page and its exports.
    let page = admin
        .get(format!("{}/governance?year={year}", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("2 名领导干部，走访 4 次"),
        "the headline counts them"
    );
    let csv = admin
        .get(format!("{}/governance/officials.csv?year={year}", app.base))
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("officials-2025.csv"));
    let text = csv.text().await.unwrap();
    assert!(text.starts_with('\u{feff}'));
    assert!(text.contains("甲书记,区委常委,1,3,"), "{text}");
    // Officials see their own points and the visit form on their page.
    let mine = a
        .get(format!("{}/points", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(mine.contains("id=\"my-points\"") && mine.contains(&format!("/visits/new?point={ky}")));
}
