//! The points scheme over HTTP (`/api/v1/rewards`): rules and awards with their
//! idempotency, caps and batch all-or-nothing, a rider's quarterly redemption and its
//! refusals, honours confirmed from the shortlist, the platform's own award for a
//! confirmed sentinel report, and bad input for each. Each runs on every engine.

mod common;

use common::*;
use lianxin_domain::draft::{PersonDraft, RawPerson};
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
    awards_are_idempotent_capped_and_batches_all_or_nothing,
    a_rider_redeems_once_a_quarter_and_never_oversells,
    honours_are_confirmed_from_the_shortlist,
    a_confirmed_sentinel_report_earns_its_rider_points,
    bad_rewards_input_is_a_clear_4xx,
);

fn api(app: &App, path: &str) -> String {
    format!("{}/api/v1{path}", app.base)
}

/// A signed-in browser-like session (cookie + CSRF header).
struct Session {
    c: reqwest::Client,
    csrf: String,
    base: String,
}

impl Session {
    async fn new(app: &App, username: &str) -> Session {
        let (c, csrf) = login(app, username).await;
        Session {
            c,
            csrf,
            base: format!("{}/api/v1", app.base),
        }
    }
    async fn get(&self, path: &str) -> reqwest::Response {
        self.c
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
    async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }
    async fn send(&self, method: &str, path: &str, body: Value) -> reqwest::Response {
        self.c
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.send("POST", path, body).await
    }
}

/// A person, and a rider account bound to them (`username`).
async fn rider_with_person(app: &App, username: &str, name: &str) -> i64 {
    let actor = Actor::system("test");
    let d = PersonDraft::parse(
        &RawPerson {
            name: name.into(),
            place_code: "150207.BYXL.KY".into(),
            ..Default::default()
        },
        &app.key,
    )
    .unwrap();
    let person = app
        .store
        .create_person(&actor, &DataScope::everything(), &d)
        .await
        .unwrap();
    app.store
        .create_account(
            &actor,
            &NewAccount {
                username: username.into(),
                display_name: name.into(),
                password_hash: password_hash().to_string(),
                role: Role::Rider,
                scope_place_code: None,
                scope_org_code: None,
                person_id: Some(person.id),
            },
        )
        .await
        .unwrap();
    person.id
}

async fn org_id(app: &App, code: &str) -> i64 {
    app.store.org_by_code(code).await.unwrap().unwrap().id
}

/// An API token of the administrator with the given scopes.
async fn token(app: &App, admin: &Session, scopes: &[&str]) -> String {
    let admin_id = app
        .store
        .account_by_username("admin")
        .await
        .unwrap()
        .unwrap()
        .0
        .id;
    let r = admin
        .post(
            "/tokens",
            json!({"account_id": admin_id, "name": "platform", "scopes": scopes}),
        )
        .await;
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn add_rule(admin: &Session, body: Value) {
    let r = admin.post("/rewards/rules", body.clone()).await;
    assert_eq!(r.status(), 201, "{body}: {}", r.text().await.unwrap());
}

mod cases {
    use super::*;

    pub async fn awards_are_idempotent_capped_and_batches_all_or_nothing(app: &App) {
        let admin = Session::new(app, "admin").await;
        let person = rider_with_person(app, "rider.li", "李骑手").await;
        let org = org_id(app, "BYXL-DGW").await;
        add_rule(
            &admin,
            json!({"code": "volunteer_hour", "category": "rider", "points": 10,
                   "multipliers": {"basic": 100, "good": 120, "excellent": 150},
                   "cap": {"period": "week", "points": 40},
                   "valid_from": "2026-01-01T00:00:00Z"}),
        )
        .await;
        let bearer = token(app, &admin, &["rewards:write"]).await;
        let http = reqwest::Client::new();
        let award = |body: Value| {
            let (http, bearer, url) = (http.clone(), bearer.clone(), api(app, "/rewards/awards"));
            async move {
                http.post(url)
                    .bearer_auth(bearer)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
            }
        };
        let at = "2026-11-16T09:00:00Z"; // a Monday in Shanghai
        let first = json!({"event_ref": "need:1:h1", "person_id": person, "org_id": org,
                           "rule": "volunteer_hour", "quality": "good", "at": at});
        let r = award(first.clone()).await;
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["award"]["points"], 12, "10 × 120 %");
        assert_eq!(v["award"]["replayed"], false);
        let award_id = v["award"]["award_id"].as_str().unwrap().to_string();

        // A retry gets the same answer and awards nothing more.
        let r = award(first.clone()).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["award"]["replayed"], true);
        assert_eq!(v["award"]["award_id"], award_id.as_str());
        assert_eq!(v["award"]["points"], 12);
        // The same event, person and rule with other content is a conflict.
        let mut changed = first.clone();
        changed["quality"] = json!("excellent");
        expect_error(award(changed).await, 409, "conflict").await;

        // The week's cap of 40: 12 + 12 + 12 + 4, then nothing.
        let mut given = vec![12];
        for h in 2..=5 {
            let r = award(json!({"event_ref": format!("need:1:h{h}"), "person_id": person,
                                 "org_id": org, "rule": "volunteer_hour", "quality": "good", "at": at}))
            .await;
            assert_eq!(r.status(), 201);
            given.push(
                r.json::<Value>().await.unwrap()["award"]["points"]
                    .as_i64()
                    .unwrap(),
            );
        }
        assert_eq!(given, vec![12, 12, 12, 4, 0]);
        let statement = admin.get_json(&format!("/rewards/people/{person}")).await;
        assert_eq!(statement["balance"], 40);
        assert_eq!(
            statement["history"].as_array().unwrap().len(),
            4,
            "the 0 gave no transfer"
        );
        assert_eq!(statement["history"][0]["reason"], "award");

        // A batch with a bad second row applies nothing and names the row.
        let batch = |rows: Vec<Value>| {
            let (http, bearer, url) = (
                http.clone(),
                bearer.clone(),
                api(app, "/rewards/awards/batch"),
            );
            async move {
                http.post(url)
                    .bearer_auth(bearer)
                    .json(&json!({ "awards": rows }))
                    .send()
                    .await
                    .unwrap()
            }
        };
        let next_week = "2026-11-23T09:00:00Z";
        let row = |e: &str| {
            json!({"event_ref": e, "person_id": person, "org_id": org,
                   "rule": "volunteer_hour", "at": next_week})
        };
        let mut bad = row("need:2:h2");
        bad["quality"] = json!("superb");
        let v = expect_error(
            batch(vec![row("need:2:h1"), bad]).await,
            422,
            "invalid_field",
        )
        .await;
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with("row 2"),
            "{v}"
        );
        assert_eq!(v["error"]["field"], "awards[1]");
        let v = expect_error(
            batch(vec![row("need:2:h1"), row(""), row("need:2:h3")]).await,
            422,
            "invalid_field",
        )
        .await;
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with("row 2"),
            "{v}"
        );
        assert_eq!(
            admin.get_json(&format!("/rewards/people/{person}")).await["balance"],
            40,
            "nothing of a refused batch was applied"
        );
        let r = batch(vec![row("need:2:h1"), row("need:2:h2"), row("need:2:h1")]).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["imported"]["awarded"], 2);
        assert_eq!(
            v["imported"]["replayed"], 1,
            "a repeat inside the batch is folded"
        );
        assert_eq!(v["imported"]["points"], 20);
        assert_eq!(
            admin.get_json(&format!("/rewards/people/{person}")).await["balance"],
            60
        );

        // 60 concurrent requests for one event (gathered into batches by the server):
        // half one content, half another. Exactly one is new; the rest of its content
        // are replays of it, the other content conflicts.
        let racing = |quality: &'static str| {
            json!({"event_ref": "race:1", "person_id": person, "org_id": org,
                   "rule": "volunteer_hour", "quality": quality, "at": next_week})
        };
        let answers = futures::future::join_all((0..60).map(|i| {
            let body = racing(if i % 2 == 0 { "basic" } else { "excellent" });
            let (http, bearer, url) = (http.clone(), bearer.clone(), api(app, "/rewards/awards"));
            async move {
                let r = http
                    .post(url)
                    .bearer_auth(bearer)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap();
                (i % 2, status, v)
            }
        }))
        .await;
        let created: Vec<_> = answers.iter().filter(|a| a.1 == 201).collect();
        assert_eq!(created.len(), 1, "{answers:?}");
        let winner = created[0].0;
        for (side, status, v) in &answers {
            if *side == winner {
                assert!(*status == 201 || *status == 200, "{v}");
                assert_eq!(v["award"]["award_id"], created[0].2["award"]["award_id"]);
                assert_eq!(
                    v["award"]["transfer_id"],
                    created[0].2["award"]["transfer_id"]
                );
            } else {
                assert_eq!(*status, 409, "{v}");
            }
        }
        let won = created[0].2["award"]["points"].as_i64().unwrap();
        assert_eq!(
            admin.get_json(&format!("/rewards/people/{person}")).await["balance"],
            60 + won
        );
        // 40 concurrent awards of 40 different events: each given once.
        let answers = futures::future::join_all((0..40).map(|i| {
            let body = json!({"event_ref": format!("burst:{i}"), "person_id": person, "org_id": org,
                              "rule": "volunteer_hour", "at": "2026-11-09T09:00:00Z"});
            let (http, bearer, url) = (http.clone(), bearer.clone(), api(app, "/rewards/awards"));
            async move {
                http.post(url)
                    .bearer_auth(bearer)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        }))
        .await;
        // The week's cap of 40 holds across the batch: 10 + 10 + 10 + 10, then 0s.
        let given: i64 = answers
            .iter()
            .map(|v| v["award"]["points"].as_i64().unwrap())
            .sum();
        assert_eq!(given, 40, "{answers:?}");
        let balance_before_ledger = 60 + won + 40;
        assert_eq!(
            admin.get_json(&format!("/rewards/people/{person}")).await["balance"],
            balance_before_ledger
        );

        // The ledger balances: debits = credits, balances sum to 0.
        let ledger = admin.get_json("/rewards/ledger").await;
        let points = ledger["totals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["asset"] == "points")
            .unwrap()
            .clone();
        assert_eq!(points["debits"], points["credits"]);
        assert_eq!(points["balances"], 0);
        assert_eq!(points["debits"], balance_before_ledger);

        // A rider cannot award; a read-only token cannot either.
        let rider = Session::new(app, "rider.li").await;
        expect_error(
            rider.post("/rewards/awards", first.clone()).await,
            403,
            "forbidden",
        )
        .await;
        let reader = token(app, &admin, &["rewards:read"]).await;
        let r = http
            .post(api(app, "/rewards/awards"))
            .bearer_auth(reader)
            .json(&first)
            .send()
            .await
            .unwrap();
        expect_error(r, 403, "forbidden").await;
    }

    pub async fn a_rider_redeems_once_a_quarter_and_never_oversells(app: &App) {
        let admin = Session::new(app, "admin").await;
        let li = rider_with_person(app, "rider.li", "李骑手").await;
        let wang = rider_with_person(app, "rider.wang", "王骑手").await;
        let org = org_id(app, "BYXL-DGW").await;
        add_rule(
            &admin,
            json!({"code": "training_attended", "category": "rider", "points": 50,
                   "valid_from": "2020-01-01T00:00:00Z"}),
        )
        .await;
        for (person, event) in [(li, "t1"), (wang, "t1")] {
            let r = admin
                .post(
                    "/rewards/awards",
                    json!({"event_ref": event, "person_id": person, "org_id": org,
                           "rule": "training_attended", "at": "2026-10-10T02:00:00Z"}),
                )
                .await;
            assert_eq!(r.status(), 201);
        }
        let r = admin
            .post(
                "/rewards/items",
                json!({"org_id": org, "name": "电动车头盔", "cost": 30, "stock": 1}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let helmet = r.json::<Value>().await.unwrap()["item"].clone();
        assert_eq!(helmet["stock"], 1);
        let helmet = helmet["id"].as_i64().unwrap();
        let r = admin
            .post(
                "/rewards/items",
                json!({"org_id": org, "name": "体检套餐", "cost": 80, "stock": 5}),
            )
            .await;
        let checkup = r.json::<Value>().await.unwrap()["item"]["id"]
            .as_i64()
            .unwrap();

        let rider = Session::new(app, "rider.li").await;
        let me = rider.get_json("/rewards/me").await;
        assert_eq!(me["balance"], 50);
        assert!(me["quarter"]["redeemed"].is_null());
        assert_eq!(me["items"].as_array().unwrap().len(), 2);
        // Too dear: 422, nothing moves.
        let v = expect_error(
            rider
                .post("/rewards/me/redeem", json!({"item_id": checkup}))
                .await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(v["error"]["reason"], "insufficient_points");
        let r = rider
            .post("/rewards/me/redeem", json!({"item_id": helmet}))
            .await;
        assert_eq!(r.status(), 201);
        let me = rider.get_json("/rewards/me").await;
        assert_eq!(me["balance"], 20);
        assert!(!me["quarter"]["redeemed"].is_null());
        assert_eq!(me["quarter"]["redeemed"]["item_name"], "电动车头盔");
        let last = me["history"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["reason"], "redemption");
        // Once a quarter.
        let v = expect_error(
            rider
                .post("/rewards/me/redeem", json!({"item_id": helmet}))
                .await,
            409,
            "conflict",
        )
        .await;
        assert_eq!(v["error"]["reason"], "already_redeemed_this_quarter");
        // The last helmet is gone: 王 is refused, and keeps his points.
        let wang_s = Session::new(app, "rider.wang").await;
        let v = expect_error(
            wang_s
                .post("/rewards/me/redeem", json!({"item_id": helmet}))
                .await,
            409,
            "conflict",
        )
        .await;
        assert_eq!(v["error"]["reason"], "out_of_stock");
        assert_eq!(wang_s.get_json("/rewards/me").await["balance"], 50);
        assert!(wang_s.get_json("/rewards/me").await["quarter"]["redeemed"].is_null());

        // 20 riders at once for 3 units: exactly 3 get one.
        let r = admin
            .post(
                "/rewards/items",
                json!({"org_id": org, "name": "保温箱", "cost": 10, "stock": 3}),
            )
            .await;
        let bag = r.json::<Value>().await.unwrap()["item"]["id"]
            .as_i64()
            .unwrap();
        let mut sessions = Vec::new();
        for i in 0..20 {
            let name = format!("rider.c{i}");
            let p = rider_with_person(app, &name, &format!("骑手{i}")).await;
            admin
                .post(
                    "/rewards/awards",
                    json!({"event_ref": "t1", "person_id": p, "org_id": org, "rule": "training_attended", "at": "2026-10-10T02:00:00Z"}),
                )
                .await;
            sessions.push(Session::new(app, &name).await);
        }
        let results = futures::future::join_all(
            sessions
                .iter()
                .map(|s| s.post("/rewards/me/redeem", json!({"item_id": bag}))),
        )
        .await;
        let ok = results.iter().filter(|r| r.status() == 201).count();
        let sold_out = results.iter().filter(|r| r.status() == 409).count();
        assert_eq!((ok, sold_out), (3, 17));
        let items = admin
            .get_json(&format!("/rewards/items?org_id={org}"))
            .await;
        let bag_now = items["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == bag)
            .unwrap()
            .clone();
        assert_eq!(bag_now["stock"], 0);

        // Restock and a correction of 李's redemption transfer.
        let r = admin
            .post(
                &format!("/rewards/items/{helmet}/restock"),
                json!({"units": 4}),
            )
            .await;
        assert_eq!(r.status(), 201);
        assert_eq!(r.json::<Value>().await.unwrap()["item"]["stock"], 4);
        let me = rider.get_json("/rewards/me").await;
        let redemption_transfer = me["history"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["reason"] == "redemption" && t["asset"] == "points")
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        let r = admin
            .post(
                &format!("/rewards/transfers/{redemption_transfer}/correct"),
                json!({"reason": "头盔尺码不合，退回积分"}),
            )
            .await;
        assert_eq!(r.status(), 201);
        assert_eq!(rider.get_json("/rewards/me").await["balance"], 50);
        let r = admin
            .post(
                &format!("/rewards/transfers/{redemption_transfer}/correct"),
                json!({"reason": "again"}),
            )
            .await;
        expect_error(r, 409, "conflict").await;
    }

    pub async fn honours_are_confirmed_from_the_shortlist(app: &App) {
        let admin = Session::new(app, "admin").await;
        let org = org_id(app, "BYXL-DGW").await;
        add_rule(
            &admin,
            json!({"code": "council_attended", "category": "rider", "points": 5,
                   "valid_from": "2020-01-01T00:00:00Z"}),
        )
        .await;
        let mut people = Vec::new();
        for i in 0..12 {
            people.push(rider_with_person(app, &format!("rider.h{i}"), &format!("荣誉{i}")).await);
        }
        // Person i attends i + 1 councils in 2025, so the last is first.
        let mut rows = Vec::new();
        for (i, p) in people.iter().enumerate() {
            for k in 0..=i {
                rows.push(json!({"event_ref": format!("council:{k}"), "person_id": p,
                                 "org_id": org, "rule": "council_attended",
                                 "at": format!("2025-0{}-10T02:00:00Z", 1 + k % 9)}));
            }
        }
        let r = admin
            .post("/rewards/awards/batch", json!({ "awards": rows }))
            .await;
        assert_eq!(r.status(), 200);
        let v = admin.get_json("/rewards/honours?year=2025").await;
        let ranking = v["ranking"].as_array().unwrap();
        assert_eq!(ranking.len(), 12);
        assert_eq!(ranking[0]["person_id"], people[11]);
        assert_eq!(ranking[0]["points"], 60);
        assert_eq!(ranking[0]["rank"], 1);
        assert_eq!(ranking[11]["person_id"], people[0]);
        // 2026 has none of these.
        assert!(
            admin.get_json("/rewards/honours?year=2026").await["ranking"]
                .as_array()
                .unwrap()
                .is_empty()
        );

        // The lowest two are not on the shortlist of 10.
        let v = expect_error(
            admin
                .post(
                    "/rewards/honours/confirm",
                    json!({"year": 2025, "category": "rider", "title": "先锋骑手",
                           "person_ids": [people[11], people[0]]}),
                )
                .await,
            422,
            "invalid_field",
        )
        .await;
        assert_eq!(v["error"]["reason"], "not_on_shortlist");
        let r = admin
            .post(
                "/rewards/honours/confirm",
                json!({"year": 2025, "category": "rider", "title": "先锋骑手",
                       "person_ids": [people[10], people[11]]}),
            )
            .await;
        assert_eq!(r.status(), 201);
        let honours = r.json::<Value>().await.unwrap()["honours"].clone();
        assert_eq!(honours[0]["name"], "荣誉11");
        assert_eq!(honours[0]["certificate_no"], "2025-rider-001");
        assert_eq!(honours[1]["certificate_no"], "2025-rider-002");
        assert_eq!(honours[1]["title"], "先锋骑手");
        let r = admin
            .post(
                "/rewards/honours/confirm",
                json!({"year": 2025, "category": "rider", "title": "先锋骑手",
                       "person_ids": [people[9]]}),
            )
            .await;
        expect_error(r, 409, "conflict").await;
        let v = admin.get_json("/rewards/honours?year=2025").await;
        assert_eq!(v["honours"].as_array().unwrap().len(), 2);
        assert_eq!(v["ranking"][0]["confirmed"], true);
        assert_eq!(v["ranking"][2]["confirmed"], false);
        // Spending does not cost a place: ranking is by points earned.
        let r = admin
            .post(
                "/rewards/items",
                json!({"org_id": org, "name": "理发券", "cost": 60, "stock": 1}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }

    pub async fn a_confirmed_sentinel_report_earns_its_rider_points(app: &App) {
        let admin = Session::new(app, "admin").await;
        rider_with_person(app, "rider.s", "哨兵骑手").await;
        let org = org_id(app, "BYXL-DGW").await;
        add_rule(
            &admin,
            json!({"code": "sentinel_report_confirmed", "category": "rider", "points": 20,
                   "valid_from": "2020-01-01T00:00:00Z"}),
        )
        .await;
        let rider = Session::new(app, "rider.s").await;
        let submit = |desc: &'static str| {
            rider.post(
                "/demands",
                // A rider's own report is a sentinel report without naming the channel.
                json!({"kind": "help", "category": "public_safety",
                       "place": "150207.BYXL.KY", "description": desc}),
            )
        };
        let r = submit("小区北门消防通道被堵，电动车堆了一排。").await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let kept = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        let d = rider.get_json(&format!("/demands/{kept}")).await;
        assert_eq!(d["demand"]["channel"], "rider_sentinel", "{d}");
        let r = submit("路口井盖松动，骑车经过有响声。").await;
        let rejected = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

        // No issuing organisation yet: nothing is given.
        let v = admin.post("/rewards/pending", json!({})).await;
        assert_eq!(
            v.json::<Value>().await.unwrap()["given"]["sentinel_reports"],
            0
        );
        let r = admin
            .send("PUT", "/rewards/settings", json!({"issuer_org_id": org}))
            .await;
        assert_eq!(r.status(), 200);
        // Received but not yet accepted: still nothing.
        let v = admin.post("/rewards/pending", json!({})).await;
        assert_eq!(
            v.json::<Value>().await.unwrap()["given"]["sentinel_reports"],
            0
        );

        let worker = Session::new(app, "ky.worker").await;
        let r = worker
            .post(
                &format!("/demands/{kept}/actions"),
                json!({"action": "assess", "urgency": "ordinary"}),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let r = worker
            .post(
                &format!("/demands/{rejected}/actions"),
                json!({"action": "reject", "reason": "重复上报"}),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let v: Value = admin
            .post("/rewards/pending", json!({}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["given"]["sentinel_reports"], 1);
        assert_eq!(v["given"]["points"], 20);
        // Again: nothing twice.
        let v: Value = admin
            .post("/rewards/pending", json!({}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["given"]["sentinel_reports"], 0);
        let me = rider.get_json("/rewards/me").await;
        assert_eq!(me["balance"], 20);
        let refs = &me["history"][0]["refs"];
        assert_eq!(refs["event"], format!("demand:{kept}"));
        assert_eq!(refs["rule"], "sentinel_report_confirmed");

        // The server's sweeper reads only the demand events after its mark.
        let system = Actor::system("test");
        let mark = app
            .store
            .points_award_pending(&system, 100, 0)
            .await
            .unwrap()
            .next_event;
        let r = submit("桥下积水，电动车无法通行。").await;
        let third = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        let r = worker
            .post(
                &format!("/demands/{third}/actions"),
                json!({"action": "assess", "urgency": "ordinary"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let beyond = app
            .store
            .points_award_pending(&system, 100, i64::MAX / 2)
            .await
            .unwrap();
        assert_eq!(
            beyond.sentinel_reports, 0,
            "events before the mark are not read"
        );
        let since = app
            .store
            .points_award_pending(&system, 100, mark)
            .await
            .unwrap();
        assert_eq!((since.sentinel_reports, since.points), (1, 20));
        assert!(since.next_event > mark);
        let after = app
            .store
            .points_award_pending(&system, 100, since.next_event)
            .await
            .unwrap();
        assert_eq!(after.sentinel_reports, 0);
        assert_eq!(rider.get_json("/rewards/me").await["balance"], 40);
    }

    pub async fn bad_rewards_input_is_a_clear_4xx(app: &App) {
        let admin = Session::new(app, "admin").await;
        let person = rider_with_person(app, "rider.b", "边界骑手").await;
        let org = org_id(app, "BYXL-DGW").await;
        let award = |body: Value| admin.post("/rewards/awards", body);
        let base = json!({"event_ref": "e1", "person_id": person, "org_id": org, "rule": "nope",
                          "at": "2026-10-10T02:00:00Z"});
        let v = expect_error(award(base.clone()).await, 422, "invalid_field").await;
        assert_eq!(v["error"]["reason"], "unknown_rule");
        let mut b = base.clone();
        b["person_id"] = json!(999_999);
        let v = expect_error(award(b).await, 422, "invalid_field").await;
        assert_eq!(v["error"]["reason"], "unknown_person");
        let mut b = base.clone();
        b["org_id"] = json!(999_999);
        let v = expect_error(award(b).await, 422, "invalid_field").await;
        assert_eq!(v["error"]["reason"], "unknown_org");
        let mut b = base.clone();
        b["at"] = json!("2999-01-01T00:00:00Z");
        let v = expect_error(award(b).await, 422, "invalid_field").await;
        assert_eq!(v["error"]["reason"], "event_in_future");
        let mut b = base.clone();
        b["quality"] = json!("superb");
        expect_error(award(b).await, 422, "invalid_field").await;
        let mut b = base.clone();
        b["surprise"] = json!(1);
        expect_error(award(b).await, 422, "invalid_field").await;
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove("at");
        expect_error(award(b).await, 422, "invalid_field").await;
        let r = admin
            .c
            .post(api(app, "/rewards/awards"))
            .header("x-csrf-token", &admin.csrf)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        expect_error(r, 400, "malformed_json").await;
        expect_error(
            admin
                .post("/rewards/awards/batch", json!({"awards": []}))
                .await,
            422,
            "invalid_field",
        )
        .await;
        // Rules.
        for bad in [
            json!({"code": "Bad Code", "category": "rider", "points": 5}),
            json!({"code": "ok_code", "category": "rider", "points": 0}),
            json!({"code": "ok_code", "category": "rider", "points": 5, "cap": {"period": "year", "points": 5}}),
            json!({"code": "ok_code", "category": "rider", "points": 5, "multipliers": {"basic": 0, "good": 100, "excellent": 100}}),
        ] {
            let r = admin.post("/rewards/rules", bad.clone()).await;
            assert_eq!(r.status(), 422, "{bad}");
        }
        // Items, restock, correction, honours.
        for bad in [
            json!({"org_id": org, "name": "", "cost": 5}),
            json!({"org_id": org, "name": "x", "cost": 0}),
            json!({"org_id": org, "name": "x", "cost": 5, "window_first": 50, "window_last": 10}),
            json!({"org_id": org, "name": "x", "cost": 5, "stock": -1}),
            json!({"org_id": 999_999, "name": "x", "cost": 5}),
        ] {
            let r = admin.post("/rewards/items", bad.clone()).await;
            assert_eq!(r.status(), 422, "{bad}");
        }
        expect_error(
            admin
                .post("/rewards/items/999999/restock", json!({"units": 1}))
                .await,
            404,
            "not_found",
        )
        .await;
        expect_error(
            admin
                .post("/rewards/items/1/restock", json!({"units": 0}))
                .await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            admin
                .post("/rewards/transfers/999999/correct", json!({"reason": "x"}))
                .await,
            404,
            "not_found",
        )
        .await;
        expect_error(
            admin
                .post(
                    "/rewards/honours/confirm",
                    json!({"year": 1900, "category": "rider", "title": "x", "person_ids": [1]}),
                )
                .await,
            422,
            "invalid_field",
        )
        .await;
        expect_error(
            admin.get("/rewards/honours?year=abc").await,
            400,
            "invalid_query",
        )
        .await;
        expect_error(admin.get("/rewards/people/999999").await, 404, "not_found").await;
        let r = admin
            .send(
                "PUT",
                "/rewards/settings",
                json!({"issuer_org_id": 999_999}),
            )
            .await;
        assert_eq!(r.status(), 422);
        // Who may do what.
        expect_error(admin.get("/rewards/me").await, 403, "forbidden").await;
        let resident = Session::new(app, "resident").await;
        expect_error(resident.get("/rewards/rules").await, 403, "forbidden").await;
        expect_error(resident.get("/rewards/items").await, 403, "forbidden").await;
        let official = Session::new(app, "official").await;
        assert_eq!(official.get("/rewards/ledger").await.status(), 200);
        expect_error(
            official
                .post(
                    "/rewards/rules",
                    json!({"code": "x", "category": "rider", "points": 5}),
                )
                .await,
            403,
            "forbidden",
        )
        .await;
        let rider = Session::new(app, "rider.b").await;
        expect_error(
            rider
                .post("/rewards/me/redeem", json!({"item_id": 999_999}))
                .await,
            404,
            "not_found",
        )
        .await;
        expect_error(rider.get("/rewards/ledger").await, 403, "forbidden").await;
        // Without a session at all.
        let r = client().get(api(app, "/rewards/me")).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
}
