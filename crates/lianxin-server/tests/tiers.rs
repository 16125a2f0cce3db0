//! Organisation tiers (抓两头带中间) through the API and the pages: the board with its
//! evidence, bad input, scope, forms and the CSV export. Each runs on every engine
//! available.

mod common;

use common::*;
use lianxin_domain::role::{DataScope, Role};
use lianxin_store::accounts::NewAccount;
use lianxin_store::audit::Actor;
use serde_json::{json, Value};

macro_rules! on_every_engine {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                for engine in engines() {
                    let app = spawn_app(engine).await;
                    cases::$name(&app).await;
                }
            }
        )*
    };
}

on_every_engine!(
    the_board_tiers_with_evidence,
    bad_input_is_a_clear_4xx,
    scope_limits_what_is_seen_and_changed,
    pages_forms_and_the_csv_export,
);

async fn org_id(app: &App, code: &str) -> i64 {
    app.store.org_by_code(code).await.unwrap().unwrap().id
}

fn api(app: &App, path: &str) -> String {
    format!("{}/api/v1{path}", app.base)
}

async fn put_json(c: &reqwest::Client, csrf: &str, url: String, body: Value) -> reqwest::Response {
    c.put(url)
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn post_json(c: &reqwest::Client, csrf: &str, url: String, body: Value) -> reqwest::Response {
    c.post(url)
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// An administrator (the organisation department) scoped to 和谐社区 only.
async fn scoped_admin(app: &App) {
    app.store
        .create_account(
            &Actor::system("test"),
            &NewAccount {
                username: "hx.admin".into(),
                display_name: "hx.admin".into(),
                password_hash: lianxin_server::auth::hash_password(PASSWORD).unwrap(),
                role: Role::Admin,
                scope_place_code: Some("150207.BYXL.HX".into()),
                scope_org_code: None,
                person_id: None,
            },
        )
        .await
        .unwrap();
}

/// A property company serving 开元: an organisation that is not tiered.
async fn property_company(app: &App) -> i64 {
    let d = lianxin_domain::draft::OrgDraft::parse(&lianxin_domain::draft::RawOrg {
        code: "KY-PM".into(),
        name: "开元物业公司".into(),
        kind: "property_company".into(),
        parent_code: None,
        serves: vec!["150207.BYXL.KY".into()],
    })
    .unwrap();
    app.store
        .create_org(&Actor::system("test"), &DataScope::everything(), &d)
        .await
        .unwrap()
        .id
}

mod cases {
    use super::*;

    pub async fn the_board_tiers_with_evidence(app: &App) {
        let (c, csrf) = login(app, "admin").await;
        let (ky, hx, street) = (
            org_id(app, "KY-DW").await,
            org_id(app, "HX-DW").await,
            org_id(app, "BYXL-DGW").await,
        );
        // 开元: (55 + 60) / 2 = 57.5 < 60 → lagging.
        let r = put_json(
            &c,
            &csrf,
            api(app, &format!("/tiers/orgs/{ky}/indicators")),
            json!({ "year": 2026, "indicators": [
                { "name": "组织生活", "value": 55, "note": "全年支委会仅4次" },
                { "name": "服务群众", "value": 60, "note": "诉求办结率60%" },
            ]}),
        )
        .await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["tier"]["standing"], "lagging");
        assert_eq!(body["tier"]["finding"]["score"], 57.5);
        // 和谐: (90 + 85 + 80) / 3 = 85 → advanced; 街道: 70 → middle.
        put_json(
            &c,
            &csrf,
            api(app, &format!("/tiers/orgs/{hx}/indicators")),
            json!({ "year": 2026, "indicators": [
                { "name": "组织生活", "value": 90, "note": "三会一课记录齐全" },
                { "name": "党员教育", "value": 85, "note": "集中学习12次" },
                { "name": "服务群众", "value": 80, "note": "办结诉求52件" },
            ]}),
        )
        .await;
        put_json(
            &c,
            &csrf,
            api(app, &format!("/tiers/orgs/{street}/indicators")),
            json!({ "year": 2026, "indicators": [
                { "name": "作用发挥", "value": 70, "note": "共建项目3个" },
            ]}),
        )
        .await;

        let board: Value = c
            .get(api(app, "/tiers?year=2026"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let board = &board["board"];
        assert_eq!(
            board["thresholds"],
            json!({ "advanced": 80.0, "lagging": 60.0 })
        );
        let rows = board["orgs"].as_array().unwrap();
        let order: Vec<(&str, &str)> = rows
            .iter()
            .map(|o| {
                (
                    o["org"]["code"].as_str().unwrap(),
                    o["standing"].as_str().unwrap(),
                )
            })
            .collect();
        // Lagging first; the two committees without indicators last.
        assert_eq!(
            &order[..3],
            [
                ("KY-DW", "lagging"),
                ("BYXL-DGW", "middle"),
                ("HX-DW", "advanced")
            ]
        );
        assert!(order[3..].iter().all(|(_, s)| *s == "not_assessed"));
        assert_eq!(board["counts"]["not_assessed"], 2);
        // The evidence is on the board: each value with its note.
        assert_eq!(rows[0]["indicators"][0]["note"], "全年支委会仅4次");
        assert_eq!(rows[0]["finding"]["evidence"][1], json!(["服务群众", 60.0]));
        assert_eq!(rows[2]["finding"]["score"], 85.0);

        // A plan for the lagging one, with an action, marked done.
        let r = post_json(
            &c,
            &csrf,
            api(app, &format!("/tiers/orgs/{ky}/plans")),
            json!({ "year": 2026, "title": "开元社区党委整顿提升方案" }),
        )
        .await;
        assert_eq!(r.status(), 201);
        let plan: Value = r.json().await.unwrap();
        let plan_id = plan["plan"]["id"].as_i64().unwrap();
        let r = post_json(
            &c,
            &csrf,
            api(app, &format!("/tiers/plans/{plan_id}/actions")),
            json!({ "title": "规范三会一课", "due_on": "2026-12-31" }),
        )
        .await;
        assert_eq!(r.status(), 201);
        let action: Value = r.json().await.unwrap();
        let action_id = action["action"]["id"].as_i64().unwrap();
        let r = post_json(
            &c,
            &csrf,
            api(app, &format!("/tiers/actions/{action_id}/done")),
            json!({ "note": "已建立月度计划", "done_on": "2026-01-05" }),
        )
        .await;
        assert_eq!(r.status(), 200);
        let done: Value = r.json().await.unwrap();
        assert_eq!(done["action"]["status"], "done");
        let detail: Value = c
            .get(api(app, &format!("/tiers/orgs/{ky}?year=2026")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(detail["plans"][0]["actions"][0]["note"], "已建立月度计划");
        assert_eq!(detail["tier"]["standing"], "lagging");

        // Designations, listed by year.
        let r = post_json(
            &c,
            &csrf,
            api(app, &format!("/tiers/orgs/{hx}/designations")),
            json!({ "title": "模范支部", "year": 2025 }),
        )
        .await;
        assert_eq!(r.status(), 201);
        let list: Value = c
            .get(api(app, "/tiers/designations?year=2025"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["designations"][0]["org_code"], "HX-DW");
        assert_eq!(list["designations"][0]["title"], "模范支部");
        let none: Value = c
            .get(api(app, "/tiers/designations?year=2024"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(none["designations"], json!([]));

        // Imports replace each (organisation, year) they name.
        let r = post_json(
            &c,
            &csrf,
            api(app, "/tiers/import"),
            json!({ "csv": "org_code,year,name,value,note\nKY-DW,2026,组织生活,85,整改后复查\nKY-DW,2026,服务群众,80,办结率90%\n" }),
        )
        .await;
        assert_eq!(r.status(), 201);
        let detail: Value = c
            .get(api(app, &format!("/tiers/orgs/{ky}?year=2026")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(detail["tier"]["standing"], "advanced");
        assert_eq!(detail["tier"]["indicators"][0]["note"], "整改后复查");
    }

    pub async fn bad_input_is_a_clear_4xx(app: &App) {
        let (c, csrf) = login(app, "admin").await;
        let ky = org_id(app, "KY-DW").await;
        let url = api(app, &format!("/tiers/orgs/{ky}/indicators"));
        let set = |v: Value| put_json(&c, &csrf, url.clone(), v);

        let e = expect_error(
            set(json!({ "year": 2026, "indicators": [{ "name": "组织生活", "value": 120, "note": "n" }] }))
                .await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "indicators[0].value");
        let e = expect_error(
            set(json!({ "year": 2026, "indicators": [{ "name": "组织生活", "value": 80 }] })).await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "indicators[0].note");
        let e = expect_error(
            set(json!({ "year": 2026, "indicators": [
                { "name": "a", "value": 80, "note": "n" }, { "name": "a", "value": 70, "note": "n" }
            ] }))
            .await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "indicators[1].name");
        let e = expect_error(
            set(json!({ "year": 2026, "indicators": [] })).await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "indicators");
        let e = expect_error(
            set(json!({ "year": 1999, "indicators": [{ "name": "a", "value": 1, "note": "n" }] }))
                .await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "year");
        let e = expect_error(
            set(json!({ "year": "今年", "indicators": [] })).await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "year");
        let e = expect_error(
            set(json!({ "year": 2026, "indicators": [{ "name": "a", "value": "high", "note": "n" }] }))
                .await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "indicators[0].value");
        // Unknown organisation, and one that is not a party organisation.
        expect_error(
            put_json(
                &c,
                &csrf,
                api(app, "/tiers/orgs/9999/indicators"),
                json!({ "year": 2026, "indicators": [{ "name": "a", "value": 1, "note": "n" }] }),
            )
            .await,
            404,
            "not_found",
        )
        .await;
        let pm = property_company(app).await;
        let e = expect_error(
            put_json(
                &c,
                &csrf,
                api(app, &format!("/tiers/orgs/{pm}/indicators")),
                json!({ "year": 2026, "indicators": [{ "name": "a", "value": 1, "note": "n" }] }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "org_id");
        expect_error(
            c.get(api(app, "/tiers/orgs/abc")).send().await.unwrap(),
            400,
            "invalid_path",
        )
        .await;
        let e = expect_error(
            c.get(api(app, "/tiers?year=abc")).send().await.unwrap(),
            400,
            "invalid_query",
        )
        .await;
        assert_eq!(e["error"]["field"], "year");
        expect_error(
            c.get(api(app, "/tiers?year=1800")).send().await.unwrap(),
            400,
            "invalid_query",
        )
        .await;

        // Imports: the first bad row is named, nothing is written.
        let e = expect_error(
            post_json(
                &c,
                &csrf,
                api(app, "/tiers/import"),
                json!({ "csv": "org_code,year,name,value,note\nKY-DW,2026,a,90,n\nKY-DW,2026,b,120,n\n" }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "value");
        assert!(e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("row 3:"));
        let e = expect_error(
            post_json(
                &c,
                &csrf,
                api(app, "/tiers/import"),
                json!({ "csv": "org_code,year,name,value,note\nKY-DW,2026,a,90,n\nNOPE,2026,b,20,n\n" }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "org_code");
        assert!(e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("row 3:"));
        let detail: Value = c
            .get(api(app, &format!("/tiers/orgs/{ky}?year=2026")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            detail["tier"]["standing"], "not_assessed",
            "nothing was imported"
        );
        expect_error(
            post_json(&c, &csrf, api(app, "/tiers/import"), json!({ "csv": "" })).await,
            422,
            "invalid_field",
        )
        .await;

        // Designations: twice the same title and year is a conflict naming the title.
        let url = api(app, &format!("/tiers/orgs/{ky}/designations"));
        let r = post_json(
            &c,
            &csrf,
            url.clone(),
            json!({ "title": "模范支部", "year": 2025 }),
        )
        .await;
        assert_eq!(r.status(), 201);
        let e = expect_error(
            post_json(
                &c,
                &csrf,
                url.clone(),
                json!({ "title": "模范支部", "year": 2025 }),
            )
            .await,
            409,
            "conflict",
        )
        .await;
        assert_eq!(e["error"]["field"], "title");
        assert!(e["error"]["message"].as_str().unwrap().contains("模范支部"));
        let e = expect_error(
            post_json(
                &c,
                &csrf,
                url.clone(),
                json!({ "title": " ", "year": 2025 }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "title");

        // Plans and actions.
        let r = post_json(
            &c,
            &csrf,
            api(app, &format!("/tiers/orgs/{ky}/plans")),
            json!({ "year": 2026, "title": "整改方案" }),
        )
        .await;
        let plan_id = r.json::<Value>().await.unwrap()["plan"]["id"]
            .as_i64()
            .unwrap();
        let e = expect_error(
            post_json(
                &c,
                &csrf,
                api(app, &format!("/tiers/plans/{plan_id}/actions")),
                json!({ "title": "x", "due_on": "next week" }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "due_on");
        expect_error(
            post_json(
                &c,
                &csrf,
                api(app, "/tiers/plans/9999/actions"),
                json!({ "title": "x", "due_on": "2026-05-01" }),
            )
            .await,
            404,
            "not_found",
        )
        .await;
        let r = post_json(
            &c,
            &csrf,
            api(app, &format!("/tiers/plans/{plan_id}/actions")),
            json!({ "title": "配齐班子", "due_on": "2026-05-01" }),
        )
        .await;
        let action_id = r.json::<Value>().await.unwrap()["action"]["id"]
            .as_i64()
            .unwrap();
        let done_url = api(app, &format!("/tiers/actions/{action_id}/done"));
        let e = expect_error(
            post_json(
                &c,
                &csrf,
                done_url.clone(),
                json!({ "note": "n", "done_on": "2999-01-01" }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "done_on");
        let e = expect_error(
            post_json(&c, &csrf, done_url.clone(), json!({ "note": "" })).await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(e["error"]["field"], "note");
        let r = post_json(&c, &csrf, done_url.clone(), json!({ "note": "已补选" })).await;
        assert_eq!(r.status(), 200);
        expect_error(
            post_json(&c, &csrf, done_url.clone(), json!({ "note": "again" })).await,
            409,
            "conflict",
        )
        .await;
        expect_error(
            post_json(
                &c,
                &csrf,
                api(app, "/tiers/actions/9999/done"),
                json!({ "note": "n" }),
            )
            .await,
            404,
            "not_found",
        )
        .await;
        // Malformed bodies.
        expect_error(
            c.post(api(app, &format!("/tiers/orgs/{ky}/plans")))
                .header("x-csrf-token", &csrf)
                .header("content-type", "application/json")
                .body("{\"year\": 2026,")
                .send()
                .await
                .unwrap(),
            400,
            "malformed_json",
        )
        .await;

        // Roles: an official reads but does not change; a resident does neither.
        let (official, ocsrf) = login(app, "official").await;
        assert_eq!(
            official
                .get(api(app, "/tiers"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        expect_error(
            post_json(
                &official,
                &ocsrf,
                api(app, &format!("/tiers/orgs/{ky}/designations")),
                json!({ "title": "五星级党支部", "year": 2025 }),
            )
            .await,
            403,
            "forbidden",
        )
        .await;
        let (resident, _) = login(app, "resident").await;
        expect_error(
            resident.get(api(app, "/tiers")).send().await.unwrap(),
            403,
            "forbidden",
        )
        .await;
    }

    pub async fn scope_limits_what_is_seen_and_changed(app: &App) {
        let (c, csrf) = login(app, "admin").await;
        let (ky, hx) = (org_id(app, "KY-DW").await, org_id(app, "HX-DW").await);
        for id in [ky, hx] {
            put_json(
                &c,
                &csrf,
                api(app, &format!("/tiers/orgs/{id}/indicators")),
                json!({ "year": 2026, "indicators": [{ "name": "组织生活", "value": 70, "note": "n" }] }),
            )
            .await;
        }
        let r = post_json(
            &c,
            &csrf,
            api(app, &format!("/tiers/orgs/{ky}/plans")),
            json!({ "year": 2026, "title": "开元方案" }),
        )
        .await;
        let ky_plan = r.json::<Value>().await.unwrap()["plan"]["id"]
            .as_i64()
            .unwrap();
        let r = post_json(
            &c,
            &csrf,
            api(app, &format!("/tiers/plans/{ky_plan}/actions")),
            json!({ "title": "开元任务", "due_on": "2026-05-01" }),
        )
        .await;
        let ky_action = r.json::<Value>().await.unwrap()["action"]["id"]
            .as_i64()
            .unwrap();

        // A community worker of 开元 sees only the organisations serving 开元.
        let (worker, _) = login(app, "ky.worker").await;
        let board: Value = worker
            .get(api(app, "/tiers?year=2026"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let codes: Vec<&str> = board["board"]["orgs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["org"]["code"].as_str().unwrap())
            .collect();
        assert!(
            codes.contains(&"KY-DW") && !codes.contains(&"HX-DW"),
            "{codes:?}"
        );
        expect_error(
            worker
                .get(api(app, &format!("/tiers/orgs/{hx}")))
                .send()
                .await
                .unwrap(),
            404,
            "not_found",
        )
        .await;
        let plan = worker
            .get(api(app, &format!("/tiers/plans/{ky_plan}")))
            .send()
            .await
            .unwrap();
        assert_eq!(plan.status(), 200, "开元's plan is in 开元's scope");

        // The district official sees every party organisation of the district.
        let (official, _) = login(app, "official").await;
        let board: Value = official
            .get(api(app, "/tiers?year=2026"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(board["board"]["orgs"].as_array().unwrap().len(), 5);

        // An organisation department scoped to 和谐 cannot touch 开元's plan,
        // action, indicators or designations: they do not exist for it.
        scoped_admin(app).await;
        let (hxa, hcsrf) = login(app, "hx.admin").await;
        expect_error(
            post_json(
                &hxa,
                &hcsrf,
                api(app, &format!("/tiers/plans/{ky_plan}/actions")),
                json!({ "title": "x", "due_on": "2026-05-01" }),
            )
            .await,
            404,
            "not_found",
        )
        .await;
        expect_error(
            post_json(
                &hxa,
                &hcsrf,
                api(app, &format!("/tiers/actions/{ky_action}/done")),
                json!({ "note": "not mine" }),
            )
            .await,
            404,
            "not_found",
        )
        .await;
        expect_error(
            put_json(
                &hxa,
                &hcsrf,
                api(app, &format!("/tiers/orgs/{ky}/indicators")),
                json!({ "year": 2026, "indicators": [{ "name": "a", "value": 99, "note": "n" }] }),
            )
            .await,
            404,
            "not_found",
        )
        .await;
        expect_error(
            post_json(
                &hxa,
                &hcsrf,
                api(app, &format!("/tiers/orgs/{ky}/designations")),
                json!({ "title": "模范支部", "year": 2025 }),
            )
            .await,
            404,
            "not_found",
        )
        .await;
        expect_error(
            post_json(
                &hxa,
                &hcsrf,
                api(app, "/tiers/import"),
                json!({ "csv": "org_code,year,name,value,note\nKY-DW,2026,a,99,n\n" }),
            )
            .await,
            422,
            "invalid_field",
        )
        .await;
        // Its own organisation it may manage.
        let r = post_json(
            &hxa,
            &hcsrf,
            api(app, &format!("/tiers/orgs/{hx}/plans")),
            json!({ "year": 2026, "title": "和谐方案" }),
        )
        .await;
        assert_eq!(r.status(), 201);
        // 开元's action is untouched, and its value unchanged.
        let detail: Value = c
            .get(api(app, &format!("/tiers/orgs/{ky}?year=2026")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(detail["plans"][0]["actions"][0]["done_on"], Value::Null);
        assert_eq!(detail["tier"]["indicators"][0]["value"], 70.0);
    }

    /// The part of a page from the element with `id` to the next `</section>`.
    fn section<'a>(html: &'a str, id: &str) -> &'a str {
        let start = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id}"));
        let rest = &html[start..];
        &rest[..rest.find("</section>").unwrap_or(rest.len())]
    }

    pub async fn pages_forms_and_the_csv_export(app: &App) {
        let (c, _) = login(app, "admin").await;
        let ky = org_id(app, "KY-DW").await;
        let page = c
            .get(format!("{}/tiers/org/{ky}?year=2026", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("id=\"indicators-form\""));
        let csrf = form_csrf(&html);

        // The indicators form: lagging, (50 + 55) / 2 = 52.5.
        let form = [
            ("csrf", csrf.as_str()),
            ("year", "2026"),
            ("name_0", "组织生活"),
            ("value_0", "50"),
            ("note_0", "记录不全，缺会5次"),
            ("name_1", "服务群众"),
            ("value_1", "55"),
            ("note_1", "办结率低"),
            ("name_2", ""),
            ("value_2", ""),
            ("note_2", ""),
        ];
        let r = c
            .post(format!("{}/tiers/org/{ky}/indicators", app.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(
            r.headers()["location"],
            format!("/tiers/org/{ky}?year=2026&ok=indicators").as_str()
        );
        let html = c
            .get(format!("{}/tiers?year=2026", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for label in ["先进", "中间", "后进", "未评定"] {
            assert!(html.contains(label), "{label}");
        }
        assert!(
            html.contains("≥80") && html.contains("&lt;60"),
            "thresholds shown"
        );
        let lagging = section(&html, "tier-lagging");
        assert!(lagging.contains("KY-DW 党委"), "{lagging}");
        assert!(lagging.contains("52.5") && lagging.contains("记录不全，缺会5次"));
        assert!(!section(&html, "tier-advanced").contains("KY-DW 党委"));

        // A refused form comes back with the reason and what was typed.
        let bad = [
            ("csrf", csrf.as_str()),
            ("year", "2026"),
            ("name_0", "组织生活"),
            ("value_0", "120"),
            ("note_0", "保留的依据"),
        ];
        let r = c
            .post(format!("{}/tiers/org/{ky}/indicators", app.base))
            .form(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let html = r.text().await.unwrap();
        assert!(html.contains("分值须为 0 到 100 之间的数字"));
        assert!(html.contains("value=\"保留的依据\""));
        // Without the CSRF token: refused.
        let r = c
            .post(format!("{}/tiers/org/{ky}/indicators", app.base))
            .form(&form[1..])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);

        // A plan, an action, marked done, all from the page.
        let r = c
            .post(format!("{}/tiers/org/{ky}/plans", app.base))
            .form(&[
                ("csrf", csrf.as_str()),
                ("year", "2026"),
                ("title", "开元整顿方案"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let html = c
            .get(format!("{}/tiers/org/{ky}?year=2026", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let i = html.find("action=\"/tiers/plans/").unwrap() + "action=\"/tiers/plans/".len();
        let plan_id: i64 = html[i..].split('/').next().unwrap().parse().unwrap();
        let r = c
            .post(format!("{}/tiers/plans/{plan_id}/actions", app.base))
            .form(&[
                ("csrf", csrf.as_str()),
                ("title", "配齐支委"),
                ("due_on", "2026-03-01"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let html = c
            .get(format!("{}/tiers/org/{ky}?year=2026", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("配齐支委"));
        let i = html.find("action=\"/tiers/actions/").unwrap() + "action=\"/tiers/actions/".len();
        let action_id: i64 = html[i..].split('/').next().unwrap().parse().unwrap();
        let r = c
            .post(format!("{}/tiers/actions/{action_id}/done", app.base))
            .form(&[
                ("csrf", csrf.as_str()),
                ("plan_id", &plan_id.to_string()),
                ("note", "补选委员2名"),
                ("done_on", "2026-02-20"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let html = c
            .get(format!("{}/tiers/org/{ky}?year=2026", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("补选委员2名") && html.contains("已完成"));

        // Designations: the second award of the same title and year is explained.
        let award = [
            ("csrf", csrf.as_str()),
            ("page_year", "2026"),
            ("title", "模范支部"),
            ("year", "2025"),
        ];
        let r = c
            .post(format!("{}/tiers/org/{ky}/designations", app.base))
            .form(&award)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let r = c
            .post(format!("{}/tiers/org/{ky}/designations", app.base))
            .form(&award)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        assert!(r.text().await.unwrap().contains("该组织本年度已获得此称号"));

        // An import with a bad third row names it.
        let r = c
            .post(format!("{}/tiers/import", app.base))
            .form(&[
                ("csrf", csrf.as_str()),
                (
                    "csv",
                    "org_code,year,name,value,note\nHX-DW,2026,a,90,n\nHX-DW,2026,b,,n\n",
                ),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        assert!(r.text().await.unwrap().contains("第3行"));

        // The CSV export carries each indicator with its evidence.
        let r = c
            .get(format!("{}/tiers.csv?year=2026", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let text = r.text().await.unwrap();
        assert!(text.starts_with('\u{feff}'));
        assert!(text.contains("组织代码,组织,年度,等次,得分,指标,分值,依据"));
        assert!(
            text.contains("KY-DW,KY-DW 党委,2026,后进,52.5,组织生活,50,\"记录不全，缺会5次\"")
                || text.contains("KY-DW,KY-DW 党委,2026,后进,52.5,组织生活,50,记录不全，缺会5次"),
            "{text}"
        );
        assert!(text.contains("KY-DW,KY-DW 党委,2026,后进,52.5,服务群众,55,办结率低"));
        assert!(text.contains("HX-DW,HX-DW 党委,2026,未评定,,,,"));
        let r = c
            .get(format!("{}/tiers.csv?year=abc", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);

        // Who may see what: an official reads without forms; a resident is refused;
        // a visitor is sent to log in.
        let (official, _) = login(app, "official").await;
        let html = official
            .get(format!("{}/tiers/org/{ky}?year=2026", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("记录不全") && !html.contains("indicators-form"));
        let r = official
            .post(format!("{}/tiers/org/{ky}/plans", app.base))
            .form(&[("csrf", csrf.as_str()), ("year", "2026"), ("title", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let (resident, _) = login(app, "resident").await;
        let r = resident
            .get(format!("{}/tiers", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        let r = client()
            .get(format!("{}/tiers.csv", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let r = c
            .get(format!("{}/tiers/org/999999", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);

        // English.
        c.get(format!("{}/lang?to=en&back=/tiers", app.base))
            .send()
            .await
            .unwrap();
        let html = c
            .get(format!("{}/tiers?year=2026", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("Advanced")
                && html.contains("Lagging")
                && html.contains("Organisation tiers")
        );
    }
}
