//! The community API and pages (双进双服务): households in grids, registrations, the
//! needs list, service records and coverage, over HTTP as clients use them.

mod common;

use common::{expect_error, login, spawn_app, App};
use lianxin_domain::community::Quarter;
use lianxin_domain::contact::VisitKind;
use lianxin_domain::draft::*;
use lianxin_domain::role::DataScope;
use lianxin_store::audit::Actor;
use lianxin_store::contact::NewVisit;
use lianxin_store::Engine;
use serde_json::{json, Value};

const G1: &str = "150207.BYXL.KY.G1";
const G2: &str = "150207.BYXL.KY.G2";
const HX_G: &str = "150207.BYXL.HX.G1";

fn hh(grid: &str, n: u32) -> String {
    format!("{grid}.B1.H{n}")
}

/// Two grids in 开元 (two households each) and one in 和谐 (one household), the
/// employer 水务局, and party members 李 and 赵 living in 开元.
async fn seed(app: &App) -> (i64, i64) {
    let actor = Actor::system("test");
    let all = DataScope::everything();
    let mut places = Vec::new();
    for (grid, community, n) in [
        (G1, "150207.BYXL.KY", 2),
        (G2, "150207.BYXL.KY", 2),
        (HX_G, "150207.BYXL.HX", 1),
    ] {
        places.push((grid.to_string(), "grid", community.to_string()));
        places.push((format!("{grid}.B1"), "building", grid.to_string()));
        for i in 1..=n {
            places.push((hh(grid, i), "household", format!("{grid}.B1")));
        }
    }
    for (code, level, parent) in places {
        let d = PlaceDraft::parse(&RawPlace {
            code: code.clone(),
            name: format!("{level} {code}"),
            level: level.into(),
            parent_code: Some(parent),
            ..Default::default()
        })
        .unwrap();
        app.store.create_place(&actor, &all, &d).await.unwrap();
    }
    let org = OrgDraft::parse(&RawOrg {
        code: "JY-SWJ".into(),
        name: "九原区水务局".into(),
        kind: "government_department".into(),
        parent_code: None,
        serves: vec![],
    })
    .unwrap();
    app.store.create_org(&actor, &all, &org).await.unwrap();
    let mut ids = Vec::new();
    for name in ["李党员", "赵党员"] {
        let d = PersonDraft::parse(
            &RawPerson {
                name: name.into(),
                party_member: Some(true),
                place_code: hh(G1, 1),
                ..Default::default()
            },
            &app.key,
        )
        .unwrap();
        ids.push(app.store.create_person(&actor, &all, &d).await.unwrap().id);
    }
    (ids[0], ids[1])
}

async fn post_json(
    c: &reqwest::Client,
    app: &App,
    csrf: &str,
    path: &str,
    body: Value,
) -> reqwest::Response {
    c.post(format!("{}/api/v1{path}", app.base))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get_json(c: &reqwest::Client, app: &App, path: &str) -> (u16, Value) {
    let r = c
        .get(format!("{}/api/v1{path}", app.base))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn a_household_in_two_grids_is_a_clear_422() {
    for engine in common::engines() {
        let app = spawn_app(engine).await;
        seed(&app).await;
        let (c, csrf) = login(&app, "ky.worker").await;
        let r = post_json(
            &c,
            &app,
            &csrf,
            "/grid-households",
            json!({ "household_code": hh(G1, 1), "grid_code": G1, "valid_from": "2025-01-01" }),
        )
        .await;
        assert_eq!(r.status(), 201);
        let a: Value = r.json().await.unwrap();
        assert_eq!(a["assignment"]["grid_code"], G1);
        let r = post_json(
            &c,
            &app,
            &csrf,
            "/grid-households",
            json!({ "household_code": hh(G1, 1), "grid_code": G2, "valid_from": "2025-06-01" }),
        )
        .await;
        let body = expect_error(r, 422, "invalid_field").await;
        assert_eq!(body["error"]["reason"], "household_in_two_grids");
        assert_eq!(body["error"]["field"], "grid_code");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already in another grid"));
        // Other bad input: each a 4xx naming its field, never a 500.
        for (body, status, code, field) in [
            (
                json!({ "household_code": hh(G1, 2), "grid_code": G1, "valid_from": "2025-13-01" }),
                422,
                "invalid_field",
                "valid_from",
            ),
            (
                json!({ "grid_code": G1 }),
                422,
                "invalid_field",
                "household_code",
            ),
            (
                json!({ "household_code": G1, "grid_code": G2 }),
                422,
                "invalid_field",
                "household_code",
            ),
            // 和谐's household is outside the worker's scope: unknown, as if missing.
            (
                json!({ "household_code": hh(HX_G, 1), "grid_code": HX_G }),
                422,
                "invalid_field",
                "household_code",
            ),
            (
                json!({ "household_code": hh(G1, 2), "grid_code": HX_G }),
                422,
                "invalid_field",
                "grid_code",
            ),
        ] {
            let r = post_json(&c, &app, &csrf, "/grid-households", body.clone()).await;
            let e = expect_error(r, status, code).await;
            assert_eq!(e["error"]["field"], field, "{body}");
        }
        // Ending and moving on the same day is fine; the grid lists it.
        let id = a["assignment"]["id"].as_i64().unwrap();
        let r = post_json(
            &c,
            &app,
            &csrf,
            &format!("/grid-households/{id}/end"),
            json!({ "on": "2025-06-01" }),
        )
        .await;
        assert_eq!(r.status(), 200);
        let r = post_json(
            &c,
            &app,
            &csrf,
            "/grid-households",
            json!({ "household_code": hh(G1, 1), "grid_code": G2, "valid_from": "2025-06-01" }),
        )
        .await;
        assert_eq!(r.status(), 201);
        let g2 = app.store.place_by_code(G2).await.unwrap().unwrap();
        let (status, v) = get_json(
            &c,
            &app,
            &format!("/grids/{}/households?on=2025-06-01", g2.id),
        )
        .await;
        assert_eq!((status, v["count"].as_i64()), (200, Some(1)));
        let (status, v) = get_json(&c, &app, &format!("/grids/{}/households?on=x", g2.id)).await;
        assert_eq!((status, v["error"]["field"].as_str()), (400, Some("on")));
    }
}

#[tokio::test]
async fn members_register_once_and_only_registered_members_claim() {
    for engine in common::engines() {
        let app = spawn_app(engine).await;
        let (li, zhao) = seed(&app).await;
        let (c, csrf) = login(&app, "admin").await;
        let r = post_json(
            &c,
            &app,
            &csrf,
            "/registrations",
            json!({
                "kind": "member", "person_id": li, "community_code": "150207.BYXL.KY",
                "grid_code": G1, "employer_code": "JY-SWJ", "skills": ["水电维修", "法律咨询"],
                "valid_from": "2025-01-01"
            }),
        )
        .await;
        assert_eq!(r.status(), 201);
        let reg: Value = r.json().await.unwrap();
        assert_eq!(reg["registration"]["employer_name"], "九原区水务局");
        // A second community over shared days: the rule's own code, naming the field.
        let r = post_json(
            &c,
            &app,
            &csrf,
            "/registrations",
            json!({
                "kind": "member", "person_id": li, "community_code": "150207.BYXL.HX",
                "grid_code": HX_G, "valid_from": "2025-03-01"
            }),
        )
        .await;
        let e = expect_error(r, 422, "invalid_field").await;
        assert_eq!(e["error"]["reason"], "overlapping_registration");
        assert_eq!(e["error"]["field"], "valid_from");
        let r = post_json(
            &c,
            &app,
            &csrf,
            "/registrations",
            json!({ "kind": "club", "community_code": "150207.BYXL.KY" }),
        )
        .await;
        assert_eq!(
            expect_error(r, 422, "invalid_field").await["error"]["field"],
            "kind"
        );
        // Skills filter.
        let ky = app
            .store
            .place_by_code("150207.BYXL.KY")
            .await
            .unwrap()
            .unwrap();
        let (_, v) = get_json(
            &c,
            &app,
            &format!(
                "/registrations?community_id={}&skill=%E6%B0%B4%E7%94%B5%E7%BB%B4%E4%BF%AE",
                ky.id
            ),
        )
        .await;
        assert_eq!(v["registrations"].as_array().unwrap().len(), 1);
        let (status, v) = get_json(&c, &app, "/registrations").await;
        assert_eq!(
            (status, v["error"]["field"].as_str()),
            (400, Some("community_id"))
        );

        let r = post_json(
            &c,
            &app,
            &csrf,
            "/needs",
            json!({ "community_code": "150207.BYXL.KY", "grid_code": G1, "title": "独居老人水管漏水", "skills": "水电维修" }),
        )
        .await;
        assert_eq!(r.status(), 201);
        let need: Value = r.json().await.unwrap();
        let id = need["need"]["id"].as_i64().unwrap();
        // 赵 never registered: a clear refusal.
        let r = post_json(
            &c,
            &app,
            &csrf,
            &format!("/needs/{id}/claim"),
            json!({ "person_id": zhao }),
        )
        .await;
        let e = expect_error(r, 422, "invalid_field").await;
        assert_eq!(e["error"]["reason"], "not_registered");
        assert_eq!(e["error"]["field"], "person_id");
        // The admin has no person of their own to claim as.
        let r = post_json(&c, &app, &csrf, &format!("/needs/{id}/claim"), json!({})).await;
        assert_eq!(
            expect_error(r, 422, "invalid_field").await["error"]["field"],
            "person_id"
        );
        let r = post_json(
            &c,
            &app,
            &csrf,
            &format!("/needs/{id}/claim"),
            json!({ "person_id": li }),
        )
        .await;
        assert_eq!(r.status(), 200);
        let r = post_json(
            &c,
            &app,
            &csrf,
            &format!("/needs/{id}/claim"),
            json!({ "person_id": li }),
        )
        .await;
        expect_error(r, 409, "wrong_state").await;
        let r = post_json(
            &c,
            &app,
            &csrf,
            &format!("/needs/{id}/complete"),
            json!({ "hours": "two", "outcome": "修好" }),
        )
        .await;
        assert_eq!(
            expect_error(r, 422, "invalid_field").await["error"]["field"],
            "hours"
        );
        let r = post_json(
            &c,
            &app,
            &csrf,
            &format!("/needs/{id}/complete"),
            json!({ "hours": 1.5, "outcome": "更换了水管" }),
        )
        .await;
        assert_eq!(r.status(), 200);
        let (_, v) = get_json(&c, &app, &format!("/people/{li}/service-record")).await;
        assert_eq!(v["service_record"]["done"], 1);
        assert_eq!(v["service_record"]["hours"], 1.5);
        let org = app.store.org_by_code("JY-SWJ").await.unwrap().unwrap();
        let q = Quarter::containing(lianxin_domain::calendar::local_day(chrono::Utc::now()));
        let (_, v) = get_json(
            &c,
            &app,
            &format!("/orgs/{}/service-report?quarter={q}", org.id),
        )
        .await;
        assert_eq!(v["report"]["quarter"], q.to_string());
        assert_eq!(v["report"]["members"][0]["person_name"], "李党员");
        assert_eq!(v["report"]["hours"], 1.5);
        let (status, v) = get_json(
            &c,
            &app,
            &format!("/orgs/{}/service-report?quarter=2026Q5", org.id),
        )
        .await;
        assert_eq!(
            (status, v["error"]["field"].as_str()),
            (400, Some("quarter"))
        );
    }
}

#[tokio::test]
async fn scope_and_permissions_hold() {
    let app = spawn_app(Engine::Sqlite).await;
    seed(&app).await;
    let (admin, csrf) = login(&app, "admin").await;
    let r = post_json(
        &admin,
        &app,
        &csrf,
        "/needs",
        json!({ "community_code": "150207.BYXL.HX", "title": "和谐社区的需求" }),
    )
    .await;
    let hx_need = r.json::<Value>().await.unwrap()["need"]["id"]
        .as_i64()
        .unwrap();
    let (worker, wcsrf) = login(&app, "ky.worker").await;
    let (status, _) = get_json(&worker, &app, &format!("/needs/{hx_need}")).await;
    assert_eq!(status, 404, "another community's need is not found");
    let (_, v) = get_json(&worker, &app, "/needs").await;
    assert!(v["needs"].as_array().unwrap().is_empty());
    let r = post_json(
        &worker,
        &app,
        &wcsrf,
        &format!("/needs/{hx_need}/release"),
        json!({}),
    )
    .await;
    expect_error(r, 404, "not_found").await;
    let r = post_json(
        &worker,
        &app,
        &wcsrf,
        "/needs",
        json!({ "community_code": "150207.BYXL.HX", "title": "越界" }),
    )
    .await;
    assert_eq!(
        expect_error(r, 422, "invalid_field").await["error"]["field"],
        "community_code"
    );
    let (_, v) = get_json(&worker, &app, "/coverage").await;
    let grids: Vec<&str> = v["coverage"]["grids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["grid_code"].as_str().unwrap())
        .collect();
    assert_eq!(grids, [G1, G2]);
    // An official reads but keeps nothing; a resident does neither.
    let (official, ocsrf) = login(&app, "official").await;
    assert_eq!(get_json(&official, &app, "/coverage").await.0, 200);
    let r = post_json(
        &official,
        &app,
        &ocsrf,
        "/needs",
        json!({ "community_code": "150207.BYXL.KY", "title": "x" }),
    )
    .await;
    expect_error(r, 403, "forbidden").await;
    let (resident, _) = login(&app, "resident").await;
    assert_eq!(get_json(&resident, &app, "/needs").await.0, 403);
    let page = resident
        .get(format!("{}/coverage", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403);
}

/// Coverage over the API, the page and the CSV agree: of 开元's four households, G1's
/// H1 was visited twice and G2's H1 once, so G1 is 1/2, G2 is 1/2 and 开元 2/4.
#[tokio::test]
async fn coverage_page_and_csv_export() {
    let app = spawn_app(Engine::Sqlite).await;
    let (li, _) = seed(&app).await;
    let actor = Actor::system("test");
    let all = DataScope::everything();
    for (grid, i) in [(G1, 1), (G1, 2), (G2, 1), (G2, 2)] {
        app.store
            .assign_household(
                &actor,
                &all,
                &lianxin_store::grids::HouseholdRow {
                    household_code: hh(grid, i),
                    grid_code: grid.into(),
                    valid_from: "2025-01-01".parse().unwrap(),
                },
            )
            .await
            .unwrap();
    }
    for (household, on) in [
        (hh(G1, 1), "2026-01-05"),
        (hh(G1, 1), "2026-02-05"),
        (hh(G2, 1), "2026-03-01"),
    ] {
        app.store
            .record_visit(
                &actor,
                &all,
                &NewVisit {
                    point_id: None,
                    person_id: li,
                    kind: VisitKind::Household,
                    visited_on: on.parse().unwrap(),
                    place_code: Some(household),
                    participants: vec![],
                    notes: "入户走访".into(),
                    follow_up: None,
                    photos: vec![],
                },
                "2026-06-30".parse().unwrap(),
            )
            .await
            .unwrap();
    }
    let (c, _) = login(&app, "ky.worker").await;
    let (_, v) = get_json(&c, &app, "/coverage?from=2026-01-01&to=2026-03-31").await;
    let cov = &v["coverage"];
    assert_eq!(cov["total"], json!({ "households": 4, "visited": 2 }));
    assert_eq!(cov["communities"][0]["share"], 0.5);
    let (status, v) = get_json(&c, &app, "/coverage?from=2026-04-01&to=2026-03-01").await;
    assert_eq!((status, v["error"]["field"].as_str()), (400, Some("to")));
    let page = c
        .get(format!(
            "{}/coverage?from=2026-01-01&to=2026-03-31",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("入户走访覆盖"), "Chinese first");
    assert!(html.contains("data-grid=\"150207.BYXL.KY.G1\""));
    assert!(html.contains("50.00%"));
    assert!(
        html.contains("background:hsl(60,70%,82%)"),
        "half visited is amber"
    );
    let csv = c
        .get(format!(
            "{}/coverage.csv?from=2026-01-01&to=2026-03-31",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    assert!(text.starts_with('\u{feff}'));
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines[0], "社区,网格编码,网格,户数,已走访,覆盖率,统计期");
    assert!(
        lines.contains(
            &format!("开元社区,{G1},grid {G1},2,1,50.00%,2026-01-01 ~ 2026-03-31").as_str()
        ),
        "{text}"
    );
    assert!(
        lines.contains(&"合计,,,4,2,50.00%,2026-01-01 ~ 2026-03-31"),
        "{text}"
    );
    // 和谐 is outside the worker's scope: asking for it is refused, not shown.
    let r = c
        .get(format!("{}/coverage.csv?place=150207.BYXL.HX", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

/// The pages work the loop a community worker does on a phone: register a member,
/// post a need, claim it (refused for someone not registered), complete it, and read
/// the quarter's report to the employer as CSV.
#[tokio::test]
async fn needs_and_registrations_through_the_pages() {
    let app = spawn_app(Engine::Sqlite).await;
    let (li, zhao) = seed(&app).await;
    let (c, csrf) = login(&app, "ky.worker").await;
    let page = |path: &str| {
        let c = c.clone();
        let url = format!("{}{path}", app.base);
        async move { c.get(url).send().await.unwrap() }
    };
    let form = |path: &str, fields: Vec<(&'static str, String)>| {
        let c = c.clone();
        let url = format!("{}{path}", app.base);
        let mut fields = fields;
        fields.push(("csrf", csrf.clone()));
        async move { c.post(url).form(&fields).send().await.unwrap() }
    };
    let html = page("/registrations").await.text().await.unwrap();
    assert!(
        html.contains("开元社区"),
        "the worker's community is chosen"
    );
    assert!(html.contains(&format!("value=\"{li}\"")), "李 is offered");
    let r = form(
        "/registrations",
        vec![
            ("kind", "member".into()),
            ("person_id", li.to_string()),
            ("community_code", "150207.BYXL.KY".into()),
            ("grid_code", G1.into()),
            ("employer_code", "JY-SWJ".into()),
            ("skills", "水电维修、法律咨询".into()),
            ("valid_from", "2025-01-01".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    // Twice over the same days: the page explains, in Chinese, with a 422.
    let r = form(
        "/registrations",
        vec![
            ("kind", "member".into()),
            ("person_id", li.to_string()),
            ("community_code", "150207.BYXL.KY".into()),
            ("grid_code", G2.into()),
            ("valid_from", "2025-05-01".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), 422);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("同一时间只能在一个社区报到"));
    // A household in two grids, through the page.
    let assign = |grid: &str| {
        form(
            "/grid-households",
            vec![
                ("household_code", hh(G1, 2)),
                ("grid_code", grid.into()),
                ("community_code", "150207.BYXL.KY".into()),
                ("valid_from", "2025-01-01".into()),
            ],
        )
    };
    assert_eq!(assign(G1).await.status(), 303);
    let r = assign(G2).await;
    assert_eq!(r.status(), 422);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("一户同一时间只能在一个网格"));

    let r = form(
        "/needs",
        vec![
            ("community_code", "150207.BYXL.KY".into()),
            ("grid_code", G1.into()),
            ("title", "楼道灯维修".into()),
            ("skills", "水电维修".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let need = app
        .store
        .needs(&DataScope::everything(), None, None, 10)
        .await
        .unwrap()[0]
        .id;
    let html = page("/needs").await.text().await.unwrap();
    assert!(
        html.contains("楼道灯维修") && html.contains("李党员 ★"),
        "{html}"
    );
    let r = form(
        &format!("/needs/{need}/claim"),
        vec![("person_id", zhao.to_string())],
    )
    .await;
    assert_eq!(r.status(), 422);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("只有在本社区报到的党员才能认领"));
    let r = form(
        &format!("/needs/{need}/claim"),
        vec![("person_id", li.to_string())],
    )
    .await;
    assert_eq!(r.status(), 303);
    let r = form(
        &format!("/needs/{need}/complete"),
        vec![("hours", "-1".into()), ("outcome", "修好".into())],
    )
    .await;
    assert_eq!(r.status(), 422);
    let r = form(
        &format!("/needs/{need}/complete"),
        vec![("hours", "2".into()), ("outcome", "更换灯泡".into())],
    )
    .await;
    assert_eq!(r.status(), 303);
    let html = page("/needs?status=done").await.text().await.unwrap();
    assert!(html.contains("已完成") && html.contains("更换灯泡"));
    // A form without the CSRF token is refused.
    let r = c
        .post(format!("{}/needs/{need}/release", app.base))
        .form(&[("x", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let org = app.store.org_by_code("JY-SWJ").await.unwrap().unwrap();
    let html = page(&format!("/service-records?person={li}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"record-hours\">2<"), "{html}");
    let q = Quarter::containing(lianxin_domain::calendar::local_day(chrono::Utc::now()));
    let html = page(&format!("/service-records?org={}&quarter={q}", org.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("九原区水务局") && html.contains("id=\"report-hours\">2<"));
    let csv = page(&format!("/service-records.csv?org={}&quarter={q}", org.id)).await;
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.unwrap();
    assert!(
        text.contains(&format!(
            "李党员,开元社区,grid {G1},水电维修、法律咨询,1,2,楼道灯维修,九原区水务局,{q}"
        )),
        "{text}"
    );
    // English on the switch.
    let r = page("/lang?to=en&back=/needs").await;
    assert_eq!(r.status(), 303);
    let en = page("/needs").await.text().await.unwrap();
    assert!(en.contains("Needs list") && en.contains("Done"), "{en}");
}
